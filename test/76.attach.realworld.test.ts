// Objects shaped like the tools people copy (libbpf-bootstrap,
// libbpf-tools): bpf/mixed_tool.bpf.c mixes a tracepoint libbpf attaches
// by its section with programs that need a target (tc, XDP, socket filter,
// perf event, cgroup, flow dissector, sk_skb/sk_msg, and kprobe, uprobe,
// USDT, raw_tp naming none). obj.attach() attaches the one and says what to
// call for each of the others; prog.attach() on those names the method.
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { existsSync, fstatSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { BpfError, BpfObject, BpfSkeleton, features } from '../ts/index.js';
import { ROOT, ensureTracefs, itIf, obj, pinPath, throwsWith, withoutFdLeak } from './helpers.js';

const C = { GETPPID: 0, TC_ECHO: 1, PROBE: 2, OTHER: 3 } as const;
const count = (o: BpfObject, slot: number): number => Number(o.map<number, bigint>('counts').lookup(slot)!);
const getppid = (n: number): void => {
  for (let i = 0; i < n; i++) void process.ppid;
};

// What obj.attach() must say of each program of mixed_tool that it skips.
const SKIPPED: Record<string, RegExp> = {
  tc_count_echo: /^SEC\("tc"\) needs an interface and a direction: use prog\.attachTc\(ifname, \{ direction: 'ingress' \| 'egress' \}\)$/,
  xdp_pass: /^SEC\("xdp"\) needs an interface: use prog\.attachXdp\(ifname\)$/,
  socket_count: /^SEC\("socket"\) is a socket filter: use prog\.attachSocket\(socket\)/,
  perf_sample: /^SEC\("perf_event"\) needs a perf event: use prog\.attachPerfEvent\(\{ type, config, sampleFreq \| samplePeriod \}\)$/,
  cgroup_count: /^SEC\("cgroup_skb\/ingress"\) needs a cgroup: use prog\.attachCgroup\(path\)$/,
  dissect: /^SEC\("flow_dissector"\) needs a network namespace: use prog\.attachNetns\(path\)/,
  skb_verdict: /^SEC\("sk_skb\/stream_verdict"\) runs on a sockmap or sockhash: use prog\.attachSockmap\(map\)$/,
  msg_verdict: /^SEC\("sk_msg"\) runs on a sockmap or sockhash: use prog\.attachSockmap\(map\)$/,
  kprobe_any: /^SEC\("kprobe"\) names no kernel function: use prog\.attachKprobe\(func\)$/,
  uprobe_any: /^SEC\("uprobe"\) names no binary: use prog\.attachUprobe\(\{ binary, symbol \}\)$/,
  usdt_any: /^SEC\("usdt"\) names no probe: use prog\.attachUsdt\(\{ binary, provider, name \}\)$/,
  raw_tp_any: /^SEC\("raw_tp"\) names no tracepoint: use prog\.attachRawTracepoint\(name\)$/,
  ksyscall_getppid: /^autoload is off: the program was not loaded$/,
};

describe('attach: real-world objects (obj.attach() reports what it skips)', function () {
  let o: BpfObject | undefined;
  before(ensureTracefs);
  afterEach(() => o?.close());

  function load(setup?: (x: BpfObject) => void): BpfObject {
    const x = new BpfObject(obj('mixed_tool'));
    setup?.(x);
    x.load();
    x.map('settings').update(0, BigInt(process.pid));
    return x;
  }

  it('obj.attach(): the tracepoint is attached and fires; every other program is in `skipped` with the method to use', function () {
    o = load();
    const result = o.attach();
    // Both shapes of the API: an array of links, and { links, skipped }.
    const { links, skipped } = result;
    assert.ok(Array.isArray(result));
    assert.equal(result.length, 1);
    assert.deepEqual(links, [...result]);
    assert.equal(links[0]!.programId, o.program('handle_getppid').id);
    assert.deepEqual(o.program('handle_getppid').links, links);
    getppid(11);
    assert.equal(count(o, C.GETPPID), 11);

    assert.deepEqual(skipped.map((s) => s.program.name).sort(), Object.keys(SKIPPED).sort());
    for (const s of skipped) {
      assert.match(s.reason, SKIPPED[s.program.name]!, s.program.name);
      assert.equal(s.program, o.program(s.program.name));
      assert.equal(s.program.links.length, 0, `${s.program.name} has nothing attached`);
      if (s.program.name === 'ksyscall_getppid') assert.equal(s.error, undefined);
      else assert.ok(s.error instanceof BpfError && s.error.code === 'EOPNOTSUPP' && s.error.op === 'bpf_program__attach');
    }
    // The extra properties do not make the result compare or spread
    // differently from the plain array of links it used to be.
    assert.deepEqual(Object.keys(result), ['0']);
    assert.deepEqual(result, links);

    links[0]!.detach();
    getppid(3);
    assert.equal(count(o, C.GETPPID), 11);
  });

  it('prog.attach() on a program that needs a target: BpfError EOPNOTSUPP (bpf_program__attach) naming the method, nothing attached, no fd leaked', function () {
    o = load();
    const x = o;
    withoutFdLeak(() => {
      for (const [name, re] of Object.entries(SKIPPED)) {
        if (name === 'ksyscall_getppid') continue;
        const p = x.program(name);
        assert.throws(() => p.attach(), (err: unknown) => {
          assert.ok(err instanceof BpfError, String(err));
          assert.equal(err.code, 'EOPNOTSUPP');
          assert.equal(err.errno, 95);
          assert.equal(err.op, 'bpf_program__attach');
          assert.equal(err.program, name);
          assert.ok(err.message.startsWith(`bpf_program__attach(${p.section}) failed: EOPNOTSUPP: program '${name}': `), err.message);
          assert.match(err.message.replace(/^.*?: program '[^']+': /, ''), re);
          return true;
        });
        assert.equal(p.links.length, 0);
      }
    });
  });

  it('a program that names its target still attaches by prog.attach() (the hint is only for those that do not)', function () {
    o = load();
    const link = o.program('handle_getppid').attach();
    getppid(4);
    assert.equal(count(o, C.GETPPID), 4);
    link.detach();
  });

  it("a skeleton's attach() has the same result: links and skipped", function () {
    o = load();
    const skel = new BpfSkeleton(o);
    const { links, skipped } = skel.attach();
    assert.equal(links.length, 1);
    assert.equal(skipped.length, Object.keys(SKIPPED).length);
    getppid(2);
    assert.equal(count(o, C.GETPPID), 2);
  });

  // A hook this kernel lacks is an error: the program was meant to run.
  const kprobes = features.kprobes();
  itIf('noKprobes', kprobes === true ? 'this kernel has kprobes (the next test attaches one)' : true)(
    'a program whose hook this kernel lacks (ksyscall without kprobes): obj.attach() throws the probe\'s reason, nothing stays attached',
    function () {
      o = load((x) => (x.program('ksyscall_getppid').autoload = true));
      assert.throws(() => o!.attach(), (e: unknown) => {
        assert.ok(e instanceof BpfError);
        assert.equal(e.unsupported, 'kprobes');
        assert.match(e.message, /kprobes need a kernel built with CONFIG_KPROBES/);
        return true;
      });
      for (const p of o.programs.values()) assert.equal(p.links.length, 0, `${p.name} was detached`);
      getppid(2);
      assert.equal(count(o, C.GETPPID), 0);
    });

  itIf('kprobes', kprobes)('with kprobes, obj.attach() attaches SEC("ksyscall/getppid") too (it names its target)', function () {
    o = load((x) => (x.program('ksyscall_getppid').autoload = true));
    const { links, skipped } = o.attach();
    assert.equal(links.length, 2);
    assert.ok(!skipped.some((s) => s.program.name === 'ksyscall_getppid'));
    getppid(5);
    assert.equal(count(o, C.GETPPID), 10, 'the tracepoint and the ksyscall each counted 5');
  });
});

// The USDT target of test/70 (lbn:tick once per iteration, lbn_add() too).
const TARGET = path.join(tmpdir(), `lbn-target76-${process.pid}`);

describe('attach: USDT links (libbpf makes them of uprobes: no fd of their own)', function () {
  let o: BpfObject | undefined;
  const runTarget = (n: number): void => {
    spawnSync(TARGET, [String(n)], { input: 'go\n' });
  };
  before(function () {
    execFileSync('gcc', ['-O2', '-o', TARGET, path.join(ROOT, 'test', 'fixtures', 'target.c')]);
  });
  after(() => rmSync(TARGET, { force: true }));
  beforeEach(() => {
    o = new BpfObject(obj('mixed_tool')).load();
    o.map('settings').update(0, 0n); // every process: the target is a child
  });
  afterEach(() => o?.close());

  // libbpf needs BPF cookies for USDT in a PIE (a shared object to it) without a pid.
  const usdtIt = itIf('bpfCookie', features.bpfCookie());

  usdtIt("a USDT link: type 'usdt', fd -1 (never stdin), no link id, the program's id; it counts, and detach() removes its uprobes", function () {
    const x = o!;
    const stdin = fstatSync(0);
    withoutFdLeak(() => {
      const link = x.program('usdt_any').attachUsdt({ binary: TARGET, provider: 'lbn', name: 'tick' });
      assert.equal(link.type, 'usdt');
      assert.equal(link.fd, -1);
      assert.equal(link.id, undefined);
      assert.equal(link.programId, x.program('usdt_any').id);
      runTarget(7);
      assert.equal(count(x, C.PROBE), 7);
      link.detach();
      assert.equal(link.attached, false);
      runTarget(5);
      assert.equal(count(x, C.PROBE), 7, 'no uprobe left after detach()');
    });
    // fd 0 is still the same open file: the USDT link's "fd" (0 in libbpf) was never closed.
    const after = fstatSync(0);
    assert.deepEqual([after.dev, after.ino, after.mode], [stdin.dev, stdin.ino, stdin.mode]);
  });

  usdtIt('pin(), unpin() and update() on a USDT link: BpfError EOPNOTSUPP saying why, no pin made, the link still counting', function () {
    const link = o!.program('usdt_any').attachUsdt({ binary: TARGET, provider: 'lbn', name: 'tick' });
    const where = pinPath('usdt-link');
    try {
      throwsWith(() => link.pin(where), {
        code: 'EOPNOTSUPP', op: 'bpf_link__pin', target: where,
        message: /^bpf_link__pin\(.*\) failed: EOPNOTSUPP \(operation not supported\): a USDT attachment is no single kernel link: libbpf makes it of one uprobe per probe site/,
      }, BpfError);
      assert.equal(existsSync(where), false);
      throwsWith(() => link.unpin(), { code: 'EOPNOTSUPP', op: 'bpf_link__unpin', message: /USDT/ }, BpfError);
      throwsWith(() => link.update(o!.program('uprobe_any')), { code: 'EOPNOTSUPP', op: 'bpf_link_update', message: /USDT/ }, BpfError);
      runTarget(3);
      assert.equal(count(o!, C.PROBE), 3);
    } finally {
      rmSync(where, { force: true });
    }
  });

  it("a uprobe's link (a perf_event kernel link here, perf_event_legacy before 5.15): fd, type and the program's id", function () {
    const link = o!.program('uprobe_any').attachUprobe({ binary: TARGET, symbol: 'lbn_add' });
    assert.equal(link.programId, o!.program('uprobe_any').id);
    if (features.bpfCookie() === true) {
      assert.equal(link.type, 'perf_event');
      assert.ok(link.fd > 0);
      assert.equal(typeof link.id, 'number');
    } else {
      // The perf event's fd: no kernel link object, so no link id.
      assert.equal(link.type, 'perf_event_legacy');
      assert.ok(link.fd > 0);
      assert.equal(link.id, undefined);
    }
    runTarget(4);
    assert.equal(count(o!, C.PROBE), 4);
    link.detach();
    runTarget(2);
    assert.equal(count(o!, C.PROBE), 4);
  });
});

// Classic tc filters on one end of a veth pair whose other end is in a
// network namespace of this test: pings sent from the namespace arrive on
// the ingress of DEV here. DEV has no address (nothing of the host's
// routing changes); the namespace reaches "10.79.0.1" through a permanent
// neighbour entry with DEV's MAC, so the echo requests go out and none is
// answered.
describe('attach: classic tc filters and their clsact qdisc', function () {
  const NS = `lbn76-${process.pid}`;
  const DEV = `l76a${process.pid % 100000}`;
  const PEER = `l76b${process.pid % 100000}`;
  let o: BpfObject | undefined;
  const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  const tc = (...args: string[]): string => execFileSync('tc', args, { encoding: 'utf8', timeout: 10_000 });
  const qdiscs = (): string[] => (JSON.parse(tc('-j', 'qdisc', 'show', 'dev', DEV)) as { kind: string }[]).map((q) => q.kind);
  const hasClsact = (): boolean => qdiscs().includes('clsact');
  const filters = (dir: 'ingress' | 'egress'): string => tc('filter', 'show', 'dev', DEV, dir).trim();
  const ping = (n: number): void => {
    spawnSync('ip', ['netns', 'exec', NS, 'ping', '-n', '-q', '-c', String(n), '-i', '0.05', '-W', '0.2', '10.79.0.1'], { timeout: 10_000 });
  };
  const echoes = (): number => count(o!, C.TC_ECHO);
  // A filter of "another tool": tc's own, classic BPF accepting every packet.
  const otherFilter = (): void => void tc('filter', 'add', 'dev', DEV, 'egress', 'pref', '7', 'bpf', 'bytecode', '1,6 0 0 4294967295,');

  before(function () {
    ip('netns', 'add', NS);
    ip('link', 'add', DEV, 'type', 'veth', 'peer', 'name', PEER, 'netns', NS);
    ip('link', 'set', DEV, 'up');
    const mac = readFileSync(`/sys/class/net/${DEV}/address`, 'utf8').trim();
    ip('-n', NS, 'link', 'set', PEER, 'up');
    ip('-n', NS, 'addr', 'add', '10.79.0.2/24', 'dev', PEER);
    ip('-n', NS, 'neigh', 'add', '10.79.0.1', 'lladdr', mac, 'dev', PEER, 'nud', 'permanent');
  });
  after(function () {
    spawnSync('ip', ['netns', 'del', NS]); // takes the pair with it
    spawnSync('ip', ['link', 'del', DEV]);
  });
  beforeEach(() => {
    o = new BpfObject(obj('mixed_tool')).load();
    spawnSync('tc', ['qdisc', 'del', 'dev', DEV, 'clsact']);
  });
  afterEach(() => {
    o?.close();
    spawnSync('tc', ['qdisc', 'del', 'dev', DEV, 'clsact']);
  });

  it('a filter counts the pings; the clsact qdisc it made is there while attached and gone after detach()', function () {
    assert.equal(hasClsact(), false);
    const link = o!.program('tc_count_echo').attachTc(DEV, { direction: 'ingress', tcx: false });
    assert.equal(link.type, 'tc');
    assert.equal(link.fd, -1);
    assert.equal(link.programId, o!.program('tc_count_echo').id);
    assert.equal(hasClsact(), true);
    assert.match(filters('ingress'), /tc_count_echo/);
    ping(5);
    assert.equal(echoes(), 5);
    link.detach();
    assert.deepEqual([hasClsact(), filters('ingress')], [false, '']);
    ping(2);
    assert.equal(echoes(), 5);
  });

  it('two filters on the qdisc it made (ingress and egress): the qdisc goes with the last of them', function () {
    const p = o!.program('tc_count_echo');
    const a = p.attachTc(DEV, { direction: 'ingress', tcx: false });
    const b = p.attachTc(DEV, { direction: 'egress', tcx: false });
    a.detach();
    assert.equal(hasClsact(), true, 'the egress filter still uses it');
    assert.match(filters('egress'), /tc_count_echo/);
    b.detach();
    assert.equal(hasClsact(), false);
  });

  it('a qdisc that was there before is kept (another filter of someone else too); destroyHook: true removes it when nothing is left on it', function () {
    tc('qdisc', 'add', 'dev', DEV, 'clsact');
    const p = o!.program('tc_count_echo');
    p.attachTc(DEV, { direction: 'ingress', tcx: false }).detach();
    assert.equal(hasClsact(), true);
    // Ours (destroyHook) but with a filter of "another tool" on it: kept.
    otherFilter();
    p.attachTc(DEV, { direction: 'ingress', tcx: false, destroyHook: true }).detach();
    assert.equal(hasClsact(), true);
    assert.match(filters('egress'), /pref 7 bpf .*bytecode/);
    tc('filter', 'del', 'dev', DEV, 'egress', 'pref', '7');
    p.attachTc(DEV, { direction: 'ingress', tcx: false, destroyHook: true }).detach();
    assert.equal(hasClsact(), false);
  });

  it('the qdisc it made is kept with destroyHook: false, and while another filter is on it', function () {
    const p = o!.program('tc_count_echo');
    p.attachTc(DEV, { direction: 'ingress', tcx: false, destroyHook: false }).detach();
    assert.equal(hasClsact(), true);
    tc('qdisc', 'del', 'dev', DEV, 'clsact');
    const link = p.attachTc(DEV, { direction: 'ingress', tcx: false });
    otherFilter();
    link.detach();
    assert.equal(hasClsact(), true, 'a filter of someone else is on it');
    assert.match(filters('egress'), /pref 7 bpf .*bytecode/);
  });

  it('closing the object detaches the filter and removes the qdisc it made', function () {
    o!.program('tc_count_echo').attachTc(DEV, { direction: 'ingress', tcx: false });
    assert.equal(hasClsact(), true);
    o!.close();
    assert.deepEqual([hasClsact(), filters('ingress')], [false, '']);
  });

  it('a process that exits (process.exit(), an uncaught exception) with a filter attached leaves neither filter nor qdisc', function () {
    for (const end of ['process.exit(0)', "throw new Error('boom')"]) {
      const script = `const { BpfObject } = require(${JSON.stringify(path.join(ROOT, 'dist', 'ts', 'index.js'))});
        const o = new BpfObject(${JSON.stringify(obj('mixed_tool'))}).load();
        o.program('tc_count_echo').attachTc(${JSON.stringify(DEV)}, { direction: 'ingress', tcx: false });
        process.stdout.write(require('node:child_process').execFileSync('tc', ['-j', 'qdisc', 'show', 'dev', ${JSON.stringify(DEV)}], { encoding: 'utf8' }));
        ${end};`;
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
      assert.match(r.stdout, /"clsact"/, `attached in the child (${end}): ${r.stderr}`);
      assert.deepEqual([hasClsact(), filters('ingress')], [false, ''], end);
    }
  });

  it('misuse: destroyHook must be a boolean (TypeError before any syscall)', function () {
    throwsWith(() => o!.program('tc_count_echo').attachTc(DEV, { direction: 'ingress', tcx: false, destroyHook: 'yes' as unknown as boolean }),
      { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    assert.equal(hasClsact(), false);
  });
});
