// The whole kernel: BpfProgram/BpfMap/BpfLink.list() (bpf_*_get_next_id),
// fromId, attach queries (BPF_PROG_QUERY, bpf_xdp_query), compared with
// what bpftool shows.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { BpfError, BpfLink, BpfMap, BpfObject, BpfProgram, Btf, features, queryPrograms, queryTc, queryXdp } from '../ts/index.js';
import { bpftool, itIf, obj, openFds, throwsWith } from './helpers.js';
import { scratchCgroup } from './info_helpers.js';

async function collect<T extends { close(): void }>(it: AsyncIterable<T>, pick: (x: T) => number): Promise<Set<number>> {
  const ids = new Set<number>();
  for await (const x of it) {
    try {
      ids.add(pick(x));
    } finally {
      x.close();
    }
  }
  return ids;
}

describe('the whole kernel: list(), fromId(), attach queries', function () {
  let o: BpfObject;
  before(() => {
    o = new BpfObject(obj('info_test')).load();
  });
  after(() => o.close());

  it('BpfProgram.list() finds our programs, and every program bpftool showed before and after (each closed: no fd left)', async function () {
    const fds = openFds();
    const ours = ['info_count', 'info_cgroup', 'info_xdp'].map((n) => o.program(n).id!);
    const before = new Set(bpftool<{ id: number }[]>('prog', 'show').map((p) => p.id));
    const listed = await collect(BpfProgram.list(), (p) => p.info().id);
    const after = new Set(bpftool<{ id: number }[]>('prog', 'show').map((p) => p.id));
    for (const id of ours) assert.ok(listed.has(id), `program ${id} listed`);
    // Others load and unload programs meanwhile: what was there before and after was there throughout.
    for (const id of before) if (after.has(id)) assert.ok(listed.has(id), `program ${id} (bpftool) listed`);
    assert.equal(openFds(), fds);
  });

  it('BpfMap.list() finds our maps with the names and types bpftool map show gives', async function () {
    const fds = openFds();
    const shown = new Map(bpftool<{ id: number; name: string; type: string }[]>('map', 'show').map((m) => [m.id, m]));
    const seen = new Map<number, { name: string; type: string }>();
    for await (const m of BpfMap.list()) {
      using map = m;
      seen.set(map.id, { name: map.name, type: map.type });
    }
    for (const name of ['info_runs', 'info_other']) {
      const id = o.map(name).id;
      assert.deepEqual(seen.get(id), { name, type: shown.get(id)?.type });
    }
    let compared = 0;
    for (const [id, m] of seen) {
      const s = shown.get(id);
      if (!s) continue;
      assert.equal(m.type, s.type, `map ${id}`);
      if (s.name) assert.equal(m.name, s.name, `map ${id}`);
      compared++;
    }
    assert.ok(compared >= 2);
    assert.equal(openFds(), fds);
  });

  it('BpfLink.list() finds our link with bpftool link show\'s type and program', async function () {
    using link = o.program('info_raw_tp').attachRawTracepoint('sys_enter');
    const id = link.info().id;
    const shown = bpftool<{ id: number; type: string; prog_id: number }[]>('link', 'show');
    const listed = new Map<number, { type: string; progId: number }>();
    for await (const l of BpfLink.list()) {
      using each = l;
      const i = each.info();
      listed.set(i.id, { type: i.type, progId: i.progId });
    }
    assert.deepEqual(listed.get(id), { type: 'raw_tracepoint', progId: o.program('info_raw_tp').id });
    for (const s of shown) {
      const l = listed.get(s.id);
      if (l) assert.deepEqual([l.type, l.progId], [s.type, s.prog_id], `link ${s.id}`);
    }
    // the listed handles were closed: our link is still attached
    assert.equal(link.info().id, id);
  });

  it('list() goes on past objects that vanish during the walk', async function () {
    const gone = new BpfObject(obj('info_test')).load();
    const goneIds = new Set([...gone.programs.values()].map((p) => p.id!));
    const it = BpfProgram.list()[Symbol.asyncIterator]();
    const first = await it.next();
    assert.equal(first.done, false);
    (first.value as BpfProgram).close();
    gone.close(); // its programs are the newest ids, not reached yet
    let n = 0;
    for (let r = await it.next(); !r.done; r = await it.next()) {
      assert.ok(!goneIds.has(r.value.id!), 'a closed program is not listed');
      r.value.close();
      n++;
    }
    assert.ok(n > 0);
  });

  it('fromId of an id that is gone is BpfError ENOENT; a bad id is a RangeError', function () {
    throwsWith(() => BpfLink.fromId(0xffff_fff0), { code: 'ENOENT', op: 'bpf_link_get_fd_by_id' });
    throwsWith(() => BpfLink.fromId(0), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
    throwsWith(() => BpfLink.fromId(1.5), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
  });

  it('queryPrograms() on a cgroup finds the program we attached and one bpftool attached', function () {
    const cg = scratchCgroup('query');
    try {
      assert.deepEqual(queryPrograms({ cgroup: cg.dir }, 'cgroup_inet_egress').programIds, []);
      const prog = o.program('info_cgroup');
      {
        using link = prog.attachCgroup(cg.dir);
        assert.deepEqual(queryPrograms({ cgroup: cg.dir }, 'cgroup_inet_egress').programIds, [prog.id]);
        assert.deepEqual(queryPrograms({ cgroup: cg.dir }, 'cgroup_inet_ingress').programIds, []);
        assert.ok(link.attached);
      }
      assert.deepEqual(queryPrograms({ cgroup: cg.dir }, 'cgroup_inet_egress').programIds, []);
      // attached by another tool (bpf_prog_attach, not a link)
      execFileSync('bpftool', ['cgroup', 'attach', cg.dir, 'egress', 'id', String(prog.id), 'multi']);
      try {
        const r = queryPrograms({ cgroup: cg.dir }, 'cgroup_inet_egress');
        assert.deepEqual(r.programIds, [prog.id]);
        assert.equal(r.attachFlags, 2); // BPF_F_ALLOW_MULTI
      } finally {
        execFileSync('bpftool', ['cgroup', 'detach', cg.dir, 'egress', 'id', String(prog.id)]);
      }
      assert.deepEqual(queryPrograms({ cgroup: cg.dir }, 'cgroup_inet_egress').programIds, []);
    } finally {
      cg.remove();
    }
  });

  it('queryPrograms() checks its arguments before any syscall', function () {
    throwsWith(() => queryPrograms(null as never, 'cgroup_inet_egress'), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => queryPrograms({ cgroup: '/nonexistent-lbn' }, 'cgroup_inet_egress'), { code: 'ERR_INVALID_ARG_VALUE' }, TypeError);
    throwsWith(() => queryPrograms({ cgroup: '/tmp' }, 'nope' as never), { code: 'ERR_INVALID_ARG_VALUE' }, TypeError);
    throwsWith(() => queryPrograms({ ifname: 'lbn-no-such-if' }, 'tcx_ingress'), { code: 'ERR_INVALID_ARG_VALUE' }, TypeError);
    throwsWith(() => queryXdp(-1), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
    throwsWith(() => queryTc(-1), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
    throwsWith(() => queryTc('lbn-no-such-if'), { code: 'ERR_INVALID_ARG_VALUE' }, TypeError);
    throwsWith(() => queryTc({} as never), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
  });

  it('queryTc() on an interface index that does not exist is BpfError ENODEV (the kernel would dump nothing)', function () {
    throwsWith(() => queryTc(0x7fff_fff0), { code: 'ENODEV', op: 'if_indextoname', target: /2147483632/ }, BpfError);
  });

  describe('on a veth pair of our own', function () {
    const a = `lbnq${process.pid % 100000}a`, b = `lbnq${process.pid % 100000}b`;
    before(() => execFileSync('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]));
    after(() => execFileSync('ip', ['link', 'del', a]));

    it('queryXdp() and link.info() see our XDP link, as bpftool net shows it; nothing after detach()', function () {
      assert.equal(queryXdp(a).mode, 'none');
      {
        using link = o.program('info_xdp').attachXdp(a);
        const q = queryXdp(a);
        assert.equal(q.programId, o.program('info_xdp').id);
        assert.ok(q.mode === 'drv' || q.mode === 'skb');
        const info = link.info();
        assert.equal(info.type, 'xdp');
        const ifindex = Number(execFileSync('cat', [`/sys/class/net/${a}/ifindex`], { encoding: 'utf8' }));
        assert.equal(info.ifindex, ifindex);
        const net = bpftool<[{ xdp: { devname: string; id: number }[] }]>('net', 'show', 'dev', a);
        assert.deepEqual(net[0].xdp.map((x) => [x.devname, x.id]), [[a, q.programId]]);
        link.forceDetach();
        assert.equal(queryXdp(a).mode, 'none');
        assert.equal(link.info().ifindex ?? 0, 0);
      }
      assert.equal(queryXdp(a).mode, 'none');
    });

    itIf('tcx', features.tcx())('queryPrograms() on tcx_ingress lists our tc program; link.info() has ifindex and attach type', function () {
      using link = o.program('info_tc').attachTc(b, { direction: 'ingress' });
      const ifindex = Number(execFileSync('cat', [`/sys/class/net/${b}/ifindex`], { encoding: 'utf8' }));
      assert.deepEqual(queryPrograms({ ifname: b }, 'tcx_ingress').programIds, [o.program('info_tc').id]);
      assert.deepEqual(queryPrograms({ ifindex }, 'tcx_egress').programIds, []);
      const info = link.info();
      assert.deepEqual([info.type, info.ifindex, info.attachType], ['tcx', ifindex, 'tcx_ingress']);
    });

    it('queryTc() lists classic tc filters (attachTc tcx: false, and tc filter add) as bpftool net does; [] without clsact and after detach', function () {
      const prog = o.program('info_tc');
      const ifindex = Number(execFileSync('cat', [`/sys/class/net/${a}/ifindex`], { encoding: 'utf8' }));
      assert.deepEqual(queryTc(a), [], 'no clsact qdisc yet');
      assert.deepEqual(queryTc(ifindex), []);
      const netTc = (): [string, string, number][] =>
        bpftool<[{ tc: { kind: string; name: string; id: number }[] }]>('net', 'show', 'dev', a)[0].tc.map((t) => [t.kind, t.name, t.id]);
      const tcName = `info_tc:[${prog.id}]`; // libbpf names its filters prog:[id]
      {
        using _in1 = prog.attachTc(a, { direction: 'ingress', tcx: false, priority: 1, handle: 1 });
        using in2 = prog.attachTc(a, { direction: 'ingress', tcx: false, priority: 2, handle: 7 });
        using _eg = prog.attachTc(ifindex, { direction: 'egress', tcx: false, priority: 3, handle: 2 });
        // One made by tc itself (its own load of the same object): another program id.
        execFileSync('tc', ['filter', 'add', 'dev', a, 'ingress', 'pref', '5', 'bpf', 'da', 'obj', obj('info_test'), 'sec', 'tc']);
        const q = queryTc(a);
        const tcId = q.find((f) => f.priority === 5)?.programId;
        assert.ok(tcId !== undefined && tcId !== prog.id, `tc's filter has its own program (${tcId})`);
        const base = { protocol: 3, directAction: true }; // ETH_P_ALL ('protocol all'), 'da'
        assert.deepEqual(q, [
          { attachPoint: 'ingress', handle: 1, priority: 1, programId: prog.id, name: tcName, ...base },
          { attachPoint: 'ingress', handle: 7, priority: 2, programId: prog.id, name: tcName, ...base },
          { attachPoint: 'ingress', handle: 1, priority: 5, programId: tcId, name: 'info_test.bpf.o:[tc]', ...base },
          { attachPoint: 'egress', handle: 2, priority: 3, programId: prog.id, name: tcName, ...base },
        ]);
        assert.equal(prog.info().id, prog.id);
        assert.deepEqual(queryTc(ifindex), q);
        assert.deepEqual(q.map((f) => [`clsact/${f.attachPoint}`, f.name, f.programId]), netTc(), 'as bpftool net show');
        assert.deepEqual(queryTc(b), [], 'the peer has no clsact');
        in2.detach();
        assert.deepEqual(queryTc(a).map((f) => f.priority), [1, 5, 3]);
        execFileSync('tc', ['filter', 'del', 'dev', a, 'ingress', 'pref', '5']);
      }
      assert.deepEqual(queryTc(a), [], 'after detach');
      assert.deepEqual(netTc(), []);
    });
  });
});

// The smallest module BTF there is, if any (a probe: the host's kernel has
// none; Debian's have one per module).
function moduleWithBtf(): string | undefined {
  let names: string[];
  try {
    names = readdirSync('/sys/kernel/btf').filter((n) => n !== 'vmlinux');
  } catch {
    return undefined;
  }
  return names.map((n) => [n, statSync(`/sys/kernel/btf/${n}`).size] as const).sort((a, b) => a[1] - b[1])[0]?.[0];
}
const MODULE = moduleWithBtf();

describe('kernel module BTF: Btf.kernel(module)', function () {
  this.timeout(60_000); // vmlinux's BTF is parsed once, in seconds
  itIf('moduleBtf', MODULE ? true : 'no loaded kernel module has BTF (/sys/kernel/btf has only vmlinux)')(
    `Btf.kernel('${MODULE ?? 'a module'}') has the types bpftool btf dump shows, after vmlinux's ids, and finds vmlinux's too`, function () {
      const mod = MODULE!;
      const base = Btf.kernel();
      const btf = Btf.kernel(mod);
      assert.equal(Btf.kernel(mod), btf, 'parsed once');
      const own = [...btf.types()].filter((t) => t.id >= base.length);
      assert.ok(own.length > 0);
      for (const t of own) assert.notEqual(t.kind, 'unknown', `type ${t.id}`);
      // The module's functions are the kernel's symbols of that module.
      const funcs = new Set(own.filter((t) => t.kind === 'func').map((t) => t.name));
      const syms = new Set(readFileSync('/proc/kallsyms', 'utf8').split('\n')
        .filter((l) => l.endsWith(`[${mod}]`)).map((l) => l.split(/\s+/)[2]));
      const known = [...funcs].filter((f) => syms.has(f));
      assert.ok(funcs.size > 0 && known.length >= funcs.size / 2, `${known.length} of ${funcs.size} BTF functions are ${mod}'s symbols`);
      // bpftool 7.1 reads the BTF of kernels up to 6.x; where it can, it shows the same types.
      let dump: { types: { id: number; kind: string; name: string }[] } | undefined;
      try {
        dump = bpftool('btf', 'dump', 'file', `/sys/kernel/btf/${mod}`, 'base', '/sys/kernel/btf/vmlinux');
      } catch {
        dump = undefined;
      }
      if (dump) {
        const shown = dump.types.filter((t) => t.id >= base.length);
        assert.equal(own.length, shown.length);
        for (const t of shown) {
          const ours = btf.type(t.id);
          assert.equal(ours.kind, t.kind.toLowerCase(), `type ${t.id}`);
          assert.equal(ours.name, t.name === '(anon)' ? '' : t.name, `type ${t.id}`);
        }
      }
      // base types are there under their ids
      const task = base.find('struct task_struct');
      assert.ok(task);
      assert.equal(btf.type(task.id).name, 'task_struct');
    });

  it('a module that is not loaded is a BpfError ENOENT that says so; a bad name a TypeError', function () {
    const e = throwsWith(() => Btf.kernel('lbn_no_such_module'), { code: 'ENOENT', op: 'btf__load_module_btf' }, BpfError);
    assert.match(e.message, /'lbn_no_such_module' is not loaded/);
    throwsWith(() => Btf.kernel('../etc'), { code: 'ERR_INVALID_ARG_VALUE' }, TypeError);
    assert.equal(Btf.kernel('vmlinux'), Btf.kernel());
  });
});
