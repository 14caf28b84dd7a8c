// BpfObject: open from a file and from memory, options, the pre-load
// settings libbpf allows, load (sync and on a worker), attach by section,
// and ownership: links live until the object is closed.
import { strict as assert } from 'node:assert';
import { copyFileSync, readFileSync, rmSync, existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { BpfError, BpfMap, BpfObject, BpfProgram, VerifierError, features } from '../ts/index.js';
import { ROOT, bpftool, ensureBpffs, ensureTracefs, obj, openFds } from './helpers.js';

const MAPS = ['array_map', 'hash_map', 'percpu_array_map', 'percpu_hash_map', 'lru_hash_map', 'getppid_calls', 'sock_packets'];
const PROGS = ['xdp_parity', 'sock_len', 'sock_count', 'count_getppid', 'raw_getppid'];
// A tracepoint attachment is a perf_event bpf_link where the kernel has
// those (Linux 5.15, with BPF cookies); before, libbpf attaches through the
// perf event's ioctl, and there is no kernel link.
const TRACEPOINT_LINK = features.bpfCookie() === true ? 'perf_event' : 'perf_event_legacy';
// A socket filter's test run: 64 bytes of frame; it sees 50 after the
// Ethernet header, and sock_len returns that length.
const FRAME = Buffer.alloc(64);

// getppid() calls this process made, as the tracepoint program counted them.
function getppidCalls(o: BpfObject): number {
  return Number(o.map<number, bigint>('getppid_calls').lookup(process.pid) ?? 0n);
}

function callGetppid(n: number): void {
  for (let i = 0; i < n; i++) void process.ppid; // each read is a getppid(2)
}

describe('BpfObject', function () {
  before(() => {
    ensureTracefs();
    ensureBpffs();
  });

  it('opens a file: name, maps and programs, nothing in the kernel yet', function () {
    const o = new BpfObject(obj('test_progs'));
    try {
      assert.equal(o.name, 'test_progs');
      assert.equal(o.state, 'opened');
      assert.deepEqual([...o.maps.keys()].sort(), [...MAPS].sort());
      assert.deepEqual([...o.programs.keys()].sort(), [...PROGS].sort());
      assert.ok(o.map('hash_map') instanceof BpfMap);
      assert.ok(o.program('sock_len') instanceof BpfProgram);
      assert.equal(o.map('hash_map').fd, -1);
      assert.equal(o.program('sock_len').fd, -1);
      assert.equal(o.program('count_getppid').section, 'tracepoint/syscalls/sys_enter_getppid');
      assert.equal(o.program('count_getppid').type, 'tracepoint');
    } finally {
      o.close();
    }
  });

  it('opens an in-memory image (fromBuffer) and loads it like the file', function () {
    const o = BpfObject.fromBuffer(readFileSync(obj('test_progs')), { name: 'from_mem' });
    try {
      assert.equal(o.name, 'from_mem');
      o.load();
      assert.equal(o.state, 'loaded');
      assert.equal(o.program('sock_len').testRun({ data: FRAME }).retval, 50);
    } finally {
      o.close();
    }
  });

  it('load() returns the object; maps and programs get fds and ids that bpftool sees', function () {
    const o = new BpfObject(obj('test_progs'));
    try {
      assert.equal(o.load(), o);
      const m = o.map('hash_map');
      const p = o.program('xdp_parity');
      assert.ok(m.fd > 0 && m.id > 0);
      assert.ok(p.fd > 0 && p.id !== undefined && p.id > 0);
      const shown = bpftool<{ id: number; name: string; type: string }>('map', 'show', 'id', String(m.id));
      assert.deepEqual([shown.id, shown.name, shown.type], [m.id, 'hash_map', 'hash']);
      const prog = bpftool<{ id: number; name: string; type: string; tag: string }>('prog', 'show', 'id', String(p.id));
      assert.deepEqual([prog.name, prog.type, prog.tag], ['xdp_parity', 'xdp', p.tag]);
    } finally {
      o.close();
    }
  });

  it('loadAsync() loads on a worker thread and resolves to the object', async function () {
    const o = new BpfObject(obj('test_progs'));
    try {
      const pending = o.loadAsync();
      assert.equal(o.state, 'loading');
      assert.throws(() => o.load(), { code: 'ERR_INVALID_STATE' });
      assert.equal(await pending, o);
      assert.equal(o.state, 'loaded');
      assert.equal(o.program('sock_len').testRun({ data: FRAME }).retval, 50);
    } finally {
      o.close();
    }
  });

  it('in a process under V8\'s CPU profiler (SIGPROF every 50 µs): a program the verifier takes milliseconds over loads, and a repeated testRun() of milliseconds finishes (the kernel gives up with EAGAIN and EINTR on a pending signal)', function () {
    const dir = mkdtempSync(path.join(tmpdir(), 'lbn-prof-'));
    try {
      // perf_test's perf_burst: a 1,024-iteration loop, tens of thousands of verifier steps
      const script = `const { BpfObject } = require(${JSON.stringify(path.join(ROOT, 'dist', 'ts', 'index.js'))});
        for (let i = 0; i < 3; i++) new BpfObject(${JSON.stringify(obj('perf_test'))}).load().close();
        const sock = new BpfObject(${JSON.stringify(obj('sock_example'))}).load();
        const r = [...sock.programs.values()][0].testRun({ data: Buffer.alloc(64), repeat: 500000 });
        console.log(r.durationNs > 0 ? 'loaded' : 'no duration');`;
      const r = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '50', '-e', script], { encoding: 'utf8' });
      assert.equal(r.stdout.trim(), 'loaded', r.stderr.split('\n').filter((l) => /Error|code:/.test(l)).join('\n'));
      assert.equal(r.status, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('close() during loadAsync() waits for the worker, then rejects; nothing leaks', async function () {
    const before = openFds();
    const o = new BpfObject(obj('test_progs'));
    const pending = o.loadAsync();
    o.close();
    await assert.rejects(pending, { code: 'ERR_INVALID_STATE' });
    assert.equal(o.state, 'closed');
    assert.equal(openFds(), before);
  });

  it('before load: maxEntries, autoload and a program type can change', function () {
    const o = new BpfObject(obj('test_progs'));
    try {
      o.map('lru_hash_map').maxEntries = 100;
      o.program('xdp_parity').autoload = false;
      o.program('sock_len').type = 'sched_cls';
      o.load();
      assert.equal(o.map('lru_hash_map').maxEntries, 100);
      assert.equal(bpftool<{ max_entries: number }>('map', 'show', 'id', String(o.map('lru_hash_map').id)).max_entries, 100);
      assert.equal(o.program('xdp_parity').fd, -1);
      assert.throws(() => o.program('xdp_parity').testRun({ data: Buffer.alloc(64) }), { code: 'ERR_INVALID_STATE' });
      const p = o.program('sock_len');
      assert.equal(p.type, 'sched_cls');
      assert.equal(bpftool<{ type: string }>('prog', 'show', 'id', String(p.id)).type, 'sched_cls');
      assert.equal(p.testRun({ data: Buffer.alloc(60) }).retval, 60);
      assert.throws(() => { o.map('hash_map').maxEntries = 5; }, { name: 'TypeError', code: 'ERR_INVALID_STATE' });
      assert.throws(() => { p.autoload = false; }, { name: 'TypeError', code: 'ERR_INVALID_STATE' });
    } finally {
      o.close();
    }
  });

  it('pinRoot: a map pinned by name is shared with a second object (libbpf map reuse)', function () {
    const root = path.join(ensureBpffs(), `libbpf-node-test-${process.pid}-root`);
    mkdirSync(root, { recursive: true });
    const kconfig = { CONFIG_LIBBPF_NODE_VALUE: 5 };
    const a = new BpfObject(obj('config'), { pinRoot: root, kconfig });
    const b = new BpfObject(obj('config'), { pinRoot: root, kconfig });
    try {
      a.load();
      assert.ok(existsSync(path.join(root, 'shared_counter')));
      b.load();
      assert.equal(b.map('shared_counter').id, a.map('shared_counter').id);
      a.program('read_config').testRun({ data: FRAME });
      b.program('read_config').testRun({ data: FRAME });
      assert.equal(a.map<number, bigint>('shared_counter').lookup(0)!, 10n);
    } finally {
      a.close();
      b.close();
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('kconfig sets extern __kconfig values, as a string or an object', function () {
    for (const kconfig of ['CONFIG_LIBBPF_NODE_VALUE=42', { CONFIG_LIBBPF_NODE_VALUE: 42 }]) {
      const root = path.join(ensureBpffs(), `libbpf-node-test-${process.pid}-kc`);
      mkdirSync(root, { recursive: true });
      const o = new BpfObject(obj('config'), { kconfig, pinRoot: root }).load();
      try {
        assert.equal(o.program('read_config').testRun({ data: FRAME }).retval, 42);
      } finally {
        o.close();
        rmSync(root, { recursive: true, force: true });
      }
    }
  });

  it('btfCustomPath: CO-RE relocations resolve against the BTF it names, not the running kernel\'s', function () {
    // A copy of the kernel's BTF under another name: execsnoop's BPF_CORE_READs resolve.
    const copy = path.join(tmpdir(), `libbpf-node-test-${process.pid}-vmlinux`);
    copyFileSync('/sys/kernel/btf/vmlinux', copy);
    try {
      const o = new BpfObject(obj('execsnoop'), { btfCustomPath: copy }).load();
      assert.ok(o.program('enter_execve').fd > 0);
      o.close();
    } finally {
      rmSync(copy, { force: true });
    }
    // BTF without the kernel's types (test_progs' own): the relocations
    // cannot resolve, and the verifier refuses the poisoned instruction.
    const foreign = new BpfObject(obj('execsnoop'), { btfCustomPath: obj('test_progs') });
    const e = (() => {
      try {
        foreign.load();
      } catch (err) {
        return err;
      } finally {
        foreign.close();
      }
      return undefined;
    })();
    assert.ok(e instanceof VerifierError, String(e));
    assert.match(e.verifierLog, /failed to resolve CO-RE relocation .*struct (trace_event_raw_sys_(enter|exit)|task_struct)/);
    const before = openFds();
    const missing = new BpfObject(obj('execsnoop'), { btfCustomPath: '/nonexistent/vmlinux' });
    assert.throws(() => missing.load(),
      (err: unknown) => err instanceof BpfError && err.code === 'ENOENT' && /target BTF/.test(err.message));
    assert.equal(missing.state, 'failed');
    missing.close();
    assert.equal(openFds(), before);
  });

  it('kernelLogLevel keeps each program\'s verifier log of a successful load', function () {
    const o = new BpfObject(obj('sock_example'), { kernelLogLevel: 1 }).load();
    try {
      assert.match(o.program('count_packets').verifierLog ?? '', /processed \d+ insns/);
    } finally {
      o.close();
    }
  });

  it('attach() attaches the programs whose section names a target and skips the rest', function () {
    const o = new BpfObject(obj('test_progs')).load();
    try {
      const links = o.attach();
      assert.equal(links.length, 1); // only the tracepoint: socket, xdp and raw_tp (no name) need a target
      assert.equal(links[0]!.type, TRACEPOINT_LINK);
      callGetppid(25);
      assert.equal(getppidCalls(o), 25);
      links[0]!.detach();
      callGetppid(5);
      assert.equal(getppidCalls(o), 25);
    } finally {
      o.close();
    }
  });

  it('links stay attached while the object is alive even when nothing references them (GC)', function () {
    const gc = (globalThis as { gc?: () => void }).gc;
    assert.ok(gc, 'run mocha with --expose-gc (.mocharc.json)');
    let ref: WeakRef<BpfObject>;
    (() => {
      const o = new BpfObject(obj('test_progs')).load();
      o.attach();
      ref = new WeakRef(o);
    })();
    gc();
    callGetppid(7);
    const o = ref!.deref();
    assert.ok(o, 'an object with attached links must not be collected');
    try {
      assert.equal(getppidCalls(o), 7);
    } finally {
      o.close();
    }
  });

  it('close() detaches every link and is idempotent; Symbol.dispose closes', function () {
    const o = new BpfObject(obj('test_progs')).load();
    const [link] = o.attach();
    o.close();
    o.close();
    assert.equal(o.state, 'closed');
    assert.equal(link!.attached, false);
    const d = new BpfObject(obj('test_progs'));
    d[Symbol.dispose]();
    assert.equal(d.state, 'closed');
  });

  it('a rejected program whose log overflows the first buffer: the object is re-opened with a larger one', function () {
    const o = new BpfObject(obj('big_reject'));
    try {
      assert.throws(() => o.load(), (e: unknown) => {
        assert.ok(e instanceof VerifierError, String(e));
        assert.equal(e.code, 'EACCES');
        assert.equal(e.program, 'long_then_bad');
        // More than the first 1 MiB buffer held: the object was re-opened
        // with a larger one (big_reject logs more than that on every kernel).
        assert.ok(e.verifierLog.length > 1 << 20, `log of ${e.verifierLog.length} bytes`);
        // The whole of it: the first instruction (a log that outgrows its
        // buffer loses its beginning since Linux 6.4) ...
        assert.match(e.verifierLog, /^0: \(b7\) r1 = 0\b/m);
        // ... and the end, the reason and the verifier's summary.
        assert.match(e.verifierLog, /invalid mem access 'map_value_or_null'\nprocessed \d+ insns \(limit \d+\)[^\n]*\n?$/);
        assert.match(e.message, /invalid mem access 'map_value_or_null'/);
        return true;
      });
      assert.equal(o.state, 'failed');
    } finally {
      o.close();
    }
  });

  it('attach errors: a program without a target is EOPNOTSUPP from bpf_program__attach', function () {
    const o = new BpfObject(obj('test_progs')).load();
    try {
      assert.throws(() => o.program('sock_len').attach(), (e: unknown) =>
        e instanceof BpfError && e.code === 'EOPNOTSUPP' && e.op === 'bpf_program__attach' && /sock_len/.test(e.message));
    } finally {
      o.close();
    }
  });
});
