// Attaching tracing programs on this kernel: tracepoints, raw tracepoints,
// tp_btf, uprobes (by symbol, by library name), USDT, perf events and
// iterators. Each test counts what the attached program saw.
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { BpfError, BpfLink, BpfObject, features } from '../ts/index.js';
import { bpftool, ROOT, ensureBpffs, ensureTracefs, itIf, obj, withoutFdLeak } from './helpers.js';

const SLOT = { TP: 0, RAW_TP: 1, TP_BTF: 2, UPROBE: 3, URETPROBE: 4, USDT: 5, PERF: 6 } as const;
// Tracepoint and perf event attachments are perf_event bpf_links where the
// kernel has those (Linux 5.15, with BPF cookies); before, libbpf attaches
// through the perf event's ioctl, and there is no kernel link.
const PERF_LINKS = features.bpfCookie() === true;
const PERF_LINK = PERF_LINKS ? 'perf_event' : 'perf_event_legacy';

// The uprobe/USDT target, compiled for this run.
const TARGET = path.join(tmpdir(), `lbn-target-${process.pid}`);

describe('attach: tracing programs on this kernel', function () {
  let o: BpfObject;
  const hits = (slot: number): number => Number(o.map<number, bigint>('hits').lookup(slot)!);
  const seen = (i: number): bigint => o.map<number, bigint>('seen').lookup(i)!;
  const only = (pid: number): void => o.map('settings').update(0, BigInt(pid));
  const runTarget = (n: number): string =>
    spawnSync(TARGET, [String(n)], { input: 'go\n', encoding: 'utf8' }).stdout.trim();

  before(function () {
    ensureTracefs();
    ensureBpffs();
    execFileSync('gcc', ['-O2', '-o', TARGET, path.join(ROOT, 'test', 'fixtures', 'target.c')]);
  });
  after(() => rmSync(TARGET, { force: true }));
  beforeEach(() => {
    o = new BpfObject(obj('attach_test')).load();
  });
  afterEach(() => o.close());

  it('attachTracepoint(category, name): one hit per getppid() of this process', function () {
    only(process.pid);
    const link = o.program('on_tracepoint').attachTracepoint('syscalls', 'sys_enter_getppid');
    for (let i = 0; i < 17; i++) void process.ppid;
    assert.equal(hits(SLOT.TP), 17);
    assert.equal(link.type, PERF_LINK);
    link.detach();
    void process.ppid;
    assert.equal(hits(SLOT.TP), 17);
  });

  it('attachRawTracepoint(name) and tp_btf (by section): the syscall id is in their arguments', function () {
    only(process.pid);
    const raw = o.program('on_raw_tracepoint').attachRawTracepoint('sys_enter');
    const btf = o.program('on_tp_btf').attach();
    for (let i = 0; i < 9; i++) void process.ppid;
    assert.equal(hits(SLOT.RAW_TP), 9);
    assert.equal(hits(SLOT.TP_BTF), 9);
    assert.equal(raw.type, 'raw_tracepoint');
    assert.equal(btf.type, 'raw_tracepoint'); // tp_btf attaches through BPF_RAW_TRACEPOINT_OPEN too
  });

  it('uprobe and uretprobe by symbol: counted per call, the return value seen', function () {
    only(0);
    o.program('on_uprobe').attachUprobe({ binary: TARGET, symbol: 'lbn_add' });
    o.program('on_uretprobe').attachUprobe({ binary: TARGET, symbol: 'lbn_add', retprobe: true });
    assert.equal(runTarget(10), '135');
    assert.equal(hits(SLOT.UPROBE), 10);
    assert.equal(hits(SLOT.URETPROBE), 10);
    assert.equal(seen(0), 27n, 'lbn_add(9, 18) returned 27');
  });

  it('uprobe on a library given by name (libc.so.6), for one process only', function () {
    only(0);
    // A process that never runs TARGET: the pid filter must keep it out.
    const link = o.program('on_uprobe').attachUprobe({ binary: 'libc.so.6', symbol: 'getppid', pid: process.pid });
    runTarget(4);
    assert.equal(hits(SLOT.UPROBE), 0, 'other processes are not counted');
    link.detach();
    const all = o.program('on_uprobe').attachUprobe({ binary: 'libc.so.6', symbol: 'getppid' });
    only(0);
    const before = hits(SLOT.UPROBE);
    runTarget(6);
    assert.ok(hits(SLOT.UPROBE) - before >= 6);
    all.detach();
  });

  // libbpf needs BPF cookies for USDT in a PIE (a shared object to it) without a pid.
  itIf('bpfCookie', features.bpfCookie())('USDT: arguments and cookie reach the program', function () {
    only(0);
    o.program('on_usdt').attachUsdt({ binary: TARGET, provider: 'lbn', name: 'tick', cookie: 0x1234n });
    runTarget(5);
    assert.equal(hits(SLOT.USDT), 5);
    assert.deepEqual([seen(1), seen(2), seen(3)], [4n, 12n, 0x1234n]);
  });

  it('attachPerfEvent: one link per online CPU, samples from every CPU', function () {
    const links = o.program('on_perf_event').attachPerfEvent({ type: 'software', config: 'cpu-clock', sampleFreq: 1000 });
    try {
      const cpus = links.length;
      assert.ok(cpus >= 1);
      for (const l of links) assert.equal(l.type, PERF_LINK);
      // Keep every CPU busy for a while so its clock ticks.
      const spin = 'const t = Date.now(); while (Date.now() - t < 150);';
      for (let c = 0; c < cpus; c++) execFileSync('taskset', ['-c', String(c), process.execPath, '-e', spin]);
      for (let c = 0; c < cpus; c++) {
        const n = Number(o.map<number, bigint>('cpu_hits').lookup(c)!);
        assert.ok(n >= 10, `CPU ${c}: ${n} samples`);
      }
    } finally {
      links.forEach((l) => l.detach());
    }
    const one = o.program('on_perf_event').attachPerfEvent({ type: 'software', config: 0, samplePeriod: 1_000_000, cpu: 0 });
    assert.ok(one instanceof BpfLink);
    one.detach();
  });

  it('bpftool sees what was attached: program names and types, link ids', function () {
    only(process.pid);
    const tp = o.program('on_tracepoint').attachTracepoint('syscalls', 'sys_enter_getppid');
    const raw = o.program('on_raw_tracepoint').attachRawTracepoint('sys_enter');
    const links = bpftool<{ id: number; type: string; prog_id: number }[]>('link', 'show');
    // Without perf_event links, the tracepoint's attachment has no link id.
    assert.equal(tp.id === undefined, !PERF_LINKS, `tracepoint link id ${tp.id}`);
    const kernelLinks = PERF_LINKS ? [[tp, 'on_tracepoint', 'perf_event'], [raw, 'on_raw_tracepoint', 'raw_tracepoint']] as const
      : [[raw, 'on_raw_tracepoint', 'raw_tracepoint']] as const;
    for (const [link, prog, type] of kernelLinks) {
      const shown = links.find((l) => l.id === link.id);
      assert.ok(shown, `link ${link.id} listed`);
      assert.equal(shown.type, type);
      assert.equal(shown.prog_id, o.program(prog).id);
      const p = bpftool<{ name: string; type: string }>('prog', 'show', 'id', String(shown.prog_id));
      // the kernel keeps 15 characters; bpftool shows the full name from BTF
      assert.ok(prog.startsWith(p.name) && p.name.length >= 15 === prog.length >= 15, `${p.name} for ${prog}`);
    }
    assert.equal(bpftool<{ type: string }>('prog', 'show', 'id', String(o.program('on_tracepoint').id)).type, 'tracepoint');
  });

  it('link.update(): the link runs another program', function () {
    only(process.pid);
    const link = o.program('on_raw_tracepoint').attachRawTracepoint('sys_enter');
    const other = new BpfObject(obj('attach_test')).load();
    try {
      // raw tracepoint links cannot be updated: the kernel says so, the link stays.
      assert.throws(() => link.update(other.program('on_raw_tracepoint')), { name: 'BpfError', op: 'bpf_link_update' });
      assert.equal(link.attached, true);
    } finally {
      other.close();
    }
  });

  it('pinning across processes: a second process that opens the object with the same pinRoot shares its maps', function () {
    const root = path.join(ensureBpffs(), `libbpf-node-test-${process.pid}-xproc`);
    mkdirSync(root, { recursive: true });
    const kconfig = { CONFIG_LIBBPF_NODE_VALUE: 3 };
    const mine = new BpfObject(obj('config'), { pinRoot: root, kconfig }).load();
    try {
      mine.map('shared_counter').update(0, 100n);
      const script = `
        const { BpfObject } = require(${JSON.stringify(path.join(ROOT, 'dist', 'ts', 'index.js'))});
        const o = new BpfObject(${JSON.stringify(obj('config'))}, { pinRoot: ${JSON.stringify(root)}, kconfig: { CONFIG_LIBBPF_NODE_VALUE: 3 } }).load();
        const before = o.map('shared_counter').lookup(0);
        o.program('read_config').testRun({ data: Buffer.alloc(64) }); // a socket filter: a frame of data
        console.log(JSON.stringify({ before: String(before), id: o.map('shared_counter').id }));
        o.close();`;
      const r = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as { before: string; id: number };
      assert.equal(r.before, '100', 'the other process read what this one wrote');
      assert.equal(r.id, mine.map('shared_counter').id);
      assert.equal(mine.map<number, bigint>('shared_counter').lookup(0)!, 103n, 'and this one sees its write');
    } finally {
      mine.close();
      rmSync(root, { recursive: true, force: true });
    }
  });

  describe('bad input: a BpfError naming the target, nothing left attached, no fd leaked', function () {
    const fails = (fn: () => unknown, op: string, target: RegExp): void => {
      withoutFdLeak(() => {
        assert.throws(fn, (e: unknown) => {
          assert.ok(e instanceof BpfError, String(e));
          assert.equal(e.op, op);
          assert.match(e.message, target);
          return true;
        });
      });
    };

    it('a tracepoint or raw tracepoint that does not exist', function () {
      fails(() => o.program('on_tracepoint').attachTracepoint('syscalls', 'sys_enter_nope'), 'bpf_program__attach_tracepoint', /syscalls\/sys_enter_nope/);
      fails(() => o.program('on_raw_tracepoint').attachRawTracepoint('nope_tp'), 'bpf_program__attach_raw_tracepoint', /nope_tp/);
      assert.equal(o.program('on_tracepoint').links.length + o.program('on_raw_tracepoint').links.length, 0);
    });

    it('a binary without the symbol, and a binary that does not exist', function () {
      fails(() => o.program('on_uprobe').attachUprobe({ binary: TARGET, symbol: 'no_such_function' }), 'bpf_program__attach_uprobe_opts', /no_such_function/);
      fails(() => o.program('on_uprobe').attachUprobe({ binary: '/nonexistent/bin', symbol: 'main' }), 'bpf_program__attach_uprobe_opts', /\/nonexistent\/bin/);
      fails(() => o.program('on_usdt').attachUsdt({ binary: TARGET, provider: 'lbn', name: 'nope' }), 'bpf_program__attach_usdt', /lbn:nope/);
    });

    it('a program type that cannot attach there', function () {
      // a raw tracepoint program as a tracepoint
      fails(() => o.program('on_raw_tracepoint').attachTracepoint('syscalls', 'sys_enter_getppid'), 'bpf_program__attach_tracepoint', /sys_enter_getppid/);
    });

    it('misuse is caught before any syscall', function () {
      assert.throws(() => o.program('on_uprobe').attachUprobe({ binary: TARGET }), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
      assert.throws(() => o.program('on_perf_event').attachPerfEvent({ type: 'software', config: 'cpu-clock' }), { code: 'ERR_INVALID_ARG_VALUE' });
      assert.throws(() => o.program('on_perf_event').attachPerfEvent({ type: 'software', config: 'no-such-event', sampleFreq: 1 }), { code: 'ERR_INVALID_ARG_VALUE' });
      assert.throws(() => o.program('on_tracepoint').attachTracepoint('syscalls', 42 as unknown as string), { code: 'ERR_INVALID_ARG_TYPE' });
    });

    it('detach() twice is harmless', function () {
      const l = o.program('on_tracepoint').attachTracepoint('syscalls', 'sys_enter_getppid');
      l.detach();
      l.detach();
      assert.equal(l.attached, false);
    });
  });
});

describe('attach: iterators', function () {
  let o: BpfObject | undefined;
  // iter_test with only `name` loaded: each iterator needs its own target in the kernel.
  const load = (name: string): BpfObject => {
    const x = new BpfObject(obj('iter_test'));
    for (const p of x.programs.keys()) x.program(p).autoload = p === name;
    o = x;
    return x.load();
  };
  const read = (stream: NodeJS.ReadableStream): Promise<string> => new Promise<string>((resolve, reject) => {
    let out = '';
    stream.on('data', (d: Buffer | string) => (out += d.toString()));
    stream.on('error', reject);
    stream.on('close', () => resolve(out));
  });
  afterEach(() => {
    o?.close();
    o = undefined;
  });

  itIf('iterTask', features.iterTask())('iter(): a task iterator streams one line per task, this process among them', async function () {
    const text = await read(load('list_tasks').program('list_tasks').iter());
    const lines = text.trim().split('\n');
    assert.ok(lines.length > 5);
    assert.ok(lines.includes(`${process.pid} node`), 'this process is listed');
    assert.ok(lines.every((l) => /^\d+ \S/.test(l)), 'every line is "pid comm"');
  });

  itIf('iterMapElem', features.iterMapElem())('iter({map}): a map element iterator prints the map, then its link is gone', async function () {
    const x = load('dump_numbers');
    x.map('numbers').update(2, 41n);
    const text = await read(x.program('dump_numbers').iter({ map: x.map('numbers') }));
    assert.equal(text, '0 0\n1 0\n2 41\n3 0\n');
    assert.equal(x.program('dump_numbers').links.length, 0);
  });
});

describe('examples/uprobe-node', function () {
  it('counts the uv_fs_stat calls of its own node process, per second, exactly', function () {
    this.timeout(20_000);
    const out = execFileSync(process.execPath, [path.join(ROOT, 'dist', 'examples', 'uprobe-node.js'), '--seconds', '2'], { encoding: 'utf8' });
    assert.deepEqual(out.trim().split('\n'), [
      'uv_fs_stat calls/s: 100 (fs.statSync calls made: 100)',
      'uv_fs_stat calls/s: 200 (fs.statSync calls made: 200)',
      'total: 300 uv_fs_stat calls seen, 300 fs.statSync calls made',
    ]);
  });
});
