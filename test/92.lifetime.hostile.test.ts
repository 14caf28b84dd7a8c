// What a hostile or careless user does to the process around the library:
// Workers terminated mid-load, buffers dropped without close(), absurd
// test-run sizes, and a process that dies with netlink XDP and tc filters
// attached. Each case ran into a crash, a leak or a leftover attachment once.
import { strict as assert } from 'node:assert';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { BpfError, BpfLink, BpfMap, BpfObject, Btf, PerfBuffer, RingBuffer, features } from '../ts/index.js';
import { ROOT, itIf, obj, openFds, pinPath } from './helpers.js';

const INDEX = path.join(ROOT, 'dist', 'ts', 'index.js');

function script(name: string, body: string): string {
  const file = path.join(tmpdir(), `lbn-${process.pid}-${name}.js`);
  writeFileSync(file, body);
  return file;
}

describe('lifetime: what users do around the library', function () {
  this.timeout(120_000);

  it('a Worker terminated while loadAsync() runs, on success and on failure: the process lives on', function () {
    this.timeout(300_000); // 24 Workers; fewer in a VM, whose CPU is emulated
    const file = script('worker', `
const { Worker } = require('node:worker_threads');
const code = \`
const { BpfObject } = require(${JSON.stringify(INDEX)});
const { parentPort, workerData } = require('node:worker_threads');
new BpfObject(workerData).loadAsync().then(() => {}, () => {});
parentPort.postMessage('started');
\`;
(async () => {
  for (let i = 0; i < ${process.env.RUN_IN_VM ? 3 : 12}; i++) {
    for (const f of [${JSON.stringify(obj('big_reject'))}, ${JSON.stringify(obj('test_progs'))}]) {
      const w = new Worker(code, { eval: true, workerData: f });
      await new Promise((r) => w.once('message', r));
      await new Promise((r) => setTimeout(r, i % 4));
      await w.terminate();
    }
  }
  console.log('survived');
})();
`);
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 280_000 });
    assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'survived');
  });

  // ring_edge's producer is a syscall program looping with bpf_loop (5.17).
  itIf('bpfLoop', features.bpfLoop())('a Worker terminated while its RingBuffer takes records (drain \'loop\' and \'thread\', records held, batches waiting): the process lives on, the drain threads end', function () {
    this.timeout(300_000);
    const file = script('ring-worker', `
const { Worker } = require('node:worker_threads');
const { readdirSync } = require('node:fs');
const code = \`
const { BpfObject, RingBuffer } = require(${JSON.stringify(INDEX)});
const { parentPort, workerData } = require('node:worker_threads');
const o = new BpfObject(${JSON.stringify(obj('ring_edge'))}).load();
const rb = new RingBuffer(o.map('edge'), { drain: workerData.drain, batchSize: 20 });
const args = (start, count) => { const b = Buffer.alloc(32); b.writeBigUInt64LE(BigInt(start), 0); b.writeBigUInt64LE(BigInt(count), 8); return b; };
const kept = [];
(async () => {
  for (let round = 0; ; round++) {
    // More than the loop takes each round: batches wait in the thread's queue.
    o.program('produce_discard').testRun({ ctx: args(round * 150, 150) });
    for (let i = 0; i < 100; i++) {
      const r = (await rb.next()).value;
      if (i % 10 === 0) kept.push(r);
    }
    if (round === 3) parentPort.postMessage('taking');
  }
})();
\`;
const threads = () => readdirSync('/proc/self/task').length;
(async () => {
  // libuv starts its thread pool at first use: start it before counting.
  await require('node:fs/promises').readFile('/proc/self/status');
  const before = threads();
  for (let i = 0; i < ${process.env.RUN_IN_VM ? 4 : 16}; i++) {
    const w = new Worker(code, { eval: true, workerData: { drain: i % 2 ? 'thread' : 'loop' } });
    let failed;
    w.once('error', (e) => { failed = e; });
    await Promise.race([new Promise((r) => w.once('message', r)), new Promise((r) => w.once('exit', r))]);
    if (failed) throw failed;
    await new Promise((r) => setTimeout(r, i % 5));
    await w.terminate();
  }
  // Worker threads and drain threads end with terminate(); a thread may
  // still be on its way out for a moment (slow in an emulated VM): one
  // count, taken once they are back to the baseline or after 10 s.
  let after = threads();
  for (let t = 0; t < 100 && after !== before; t++) {
    await new Promise((r) => setTimeout(r, 100));
    after = threads();
  }
  console.log(before === after ? 'survived' : 'threads: ' + before + ' before, ' + after + ' after');
})().catch((e) => { console.error(e); process.exit(1); });
`);
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 280_000 });
    assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'survived');
  });

  it('dropped RingBuffers and PerfBuffers are collected while their maps live: fds and memory come back', async function () {
    const o = new BpfObject(obj('ring_test')).load();
    const pe = BpfMap.create({ type: 'perf_event_array', keySize: 4, valueSize: 4, maxEntries: 2 });
    try {
      const ring = [...o.maps.values()].find((m) => m.type === 'ringbuf')!;
      const before = openFds();
      (() => {
        for (let i = 0; i < 200; i++) {
          new RingBuffer(ring);
          new PerfBuffer(pe, { pageCount: 1 });
        }
      })();
      assert.ok(openFds() >= before + 200, 'each buffer holds fds while it lives');
      for (let i = 0; i < 20 && openFds() > before; i++) {
        global.gc!();
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(openFds(), before);
      // A buffer kept by the user still closes with its map's object.
      const kept = new RingBuffer(ring);
      o.close();
      assert.equal(kept.closed, true);
    } finally {
      o.close();
      pe.close();
    }
  });

  it('testRun({dataOutSize}) beyond 16 MiB: RangeError before any allocation; a large room is not zero-filled up front', function () {
    const o = new BpfObject(obj('test_progs')).load();
    try {
      const p = o.program('sock_len');
      assert.throws(() => p.testRun({ data: Buffer.alloc(64), dataOutSize: 2 ** 31 - 1 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
      const rss = process.memoryUsage().rss;
      const r = p.testRun({ data: Buffer.alloc(64), dataOutSize: 16 << 20 });
      assert.equal(r.retval, 64 - 14); // the frame's length past its Ethernet header
      assert.equal(r.dataOut!.length, 64);
      assert.ok(process.memoryUsage().rss - rss < 8 << 20, 'the 16 MiB room was not touched');
    } finally {
      o.close();
    }
  });
});

// A process that attached XDP through netlink and a classic tc filter, then
// ended as `how` says, in a network namespace of its own; what bpftool sees
// there afterwards.
describe('lifetime: nothing stays attached when the process goes', function () {
  this.timeout(120_000);
  const ns = `lbn-exit-${process.pid}`;
  const inNs = (...cmd: string[]): string => execFileSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8' });
  before(() => {
    execFileSync('ip', ['netns', 'add', ns]);
    inNs('ip', 'link', 'set', 'lo', 'up');
  });
  after(() => execFileSync('ip', ['netns', 'del', ns]));

  const left = (): string[] => {
    const net = JSON.parse(inNs('bpftool', '-j', 'net', 'show')) as Array<Record<string, unknown[]>>;
    return net.flatMap((e) => Object.entries(e).flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => `${k}: ${JSON.stringify(x)}`) : [])));
  };

  // The child attaches, says so, and waits for 'go' on stdin before it ends
  // as `ending` says (or is signalled), so that what is attached is seen
  // first however slow the machine (a VM under emulation).
  function run(how: string, ending: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; during: string[] }> {
    const file = script(`exit-${how.split(' ')[0]}`, `
const { BpfObject } = require(${JSON.stringify(INDEX)});
const o = new BpfObject(${JSON.stringify(obj('net_test'))}).load();
o.program('xdp_filter').attachXdp('lo', { replace: true, mode: 'generic' });
o.program('tc_filter').attachTc('lo', { direction: 'ingress', tcx: false });
o.program('tc_filter').attachTc('lo', { direction: 'egress', priority: 7 });
process.stdin.once('data', () => { ${ending} });
${how.includes('own handler') ? "process.on('SIGTERM', () => { console.log('app handler'); setTimeout(() => process.exit(0), 100); });" : ''}
console.log('attached');
setInterval(() => {}, 1000);
`);
    return new Promise((resolve) => {
      const child = spawn('ip', ['netns', 'exec', ns, process.execPath, file], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let during: string[] | undefined;
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('attached') && during === undefined) {
          during = left();
          if (how.startsWith('SIG')) child.kill(how.split(' ')[0] as NodeJS.Signals);
          else child.stdin.write('go\n');
        }
      });
      child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
      child.on('exit', (code, signal) => resolve({ code, signal, out, during: during ?? [] }));
    });
  }

  const cases: Array<[string, string, (r: { code: number | null; signal: NodeJS.Signals | null; out: string }) => void]> = [
    ['process.exit()', 'process.exit(3);', (r) => assert.equal(r.code, 3)],
    ['an uncaught exception', "throw new Error('boom');", (r) => {
      assert.equal(r.code, 1);
      assert.match(r.out, /boom/);
    }],
    ['SIGTERM (no handler: the process still dies of it)', '', (r) => assert.equal(r.signal, 'SIGTERM')],
    ['SIGINT (no handler: the process still dies of it)', '', (r) => assert.equal(r.signal, 'SIGINT')],
    ["SIGTERM with the application's own handler, which exits later", '',
      (r) => {
        assert.equal(r.code, 0);
        assert.match(r.out, /app handler/);
      }],
  ];
  for (const [how, ending, check] of cases) {
    it(`after ${how}: bpftool net shows nothing left on the interface`, async function () {
      const r = await run(how, ending);
      assert.ok(r.during.some((l) => l.startsWith('xdp: ') && l.includes('"mode":"generic"')), `attached while running: ${r.during.join('; ')} ${r.out}`);
      // bpftool 7.1 shows the egress filter on new kernels only; ingress everywhere.
      assert.ok(r.during.some((l) => l.includes('tc_filter') && l.includes('clsact/ingress')), r.during.join('; '));
      check(r);
      assert.deepEqual(left(), []);
    });
  }
});

describe('errors say what is wrong', function () {
  this.timeout(60_000);

  it('as an unprivileged user: EPERM says the process may not use BPF, not RLIMIT_MEMLOCK; bpf_map_create too', function () {
    const file = script('unprivileged', `
const { BpfObject, BpfMap } = require(${JSON.stringify(INDEX)});
const out = [];
for (const f of [() => new BpfObject(${JSON.stringify(obj('test_progs'))}).load(),
                 () => BpfMap.create({ type: 'hash', keySize: 4, valueSize: 4, maxEntries: 1 })]) {
  try { f(); out.push('no error'); } catch (e) { out.push({ name: e.name, code: e.code, message: e.message, log: e.log }); }
}
console.log(JSON.stringify(out));
`);
    // Root without a single capability (bounding and inheritable sets
    // emptied): as unprivileged as any user, and still able to read this
    // checkout wherever it is (a directory only root may enter, in CI).
    const r = spawnSync('setpriv', ['--bounding-set=-all', '--inh-caps=-all', process.execPath, file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const [load, create] = JSON.parse(r.stdout) as Array<{ name: string; code: string; message: string; log: string }>;
    for (const e of [load!, create!]) {
      assert.equal(e.name, 'BpfError');
      assert.equal(e.code, 'EPERM');
      assert.match(e.message, /this process may not use BPF: run as root, or with CAP_BPF and CAP_PERFMON/);
      assert.doesNotMatch(e.message, /RLIMIT_MEMLOCK/);
    }
    assert.match(load!.message, /^bpf_object__load\(test_progs\)/);
    assert.match(create!.message, /^bpf_map_create/);
    assert.match(load!.log, /RLIMIT_MEMLOCK|Operation not permitted/, 'what libbpf said is kept in log');
  });

  it('libbpf lines of every level reach e.log (debug included, unmarked); the message takes the warning that names the cause', function () {
    const e = (() => {
      try {
        BpfObject.fromBuffer(Buffer.from('this is not an ELF object at all'));
      } catch (err) {
        return err as import('../ts/index.js').BpfError;
      }
      throw new Error('opened');
    })();
    assert.match(e.log, /loading object 'mem_object' from buffer/); // a debug-level line
    assert.doesNotMatch(e.log, /\x02/);
    assert.match(e.message, /: elf: 'mem_object' is not a proper ELF object$/);
  });

  it('Btf.parse of BTF whose typedef refers to itself: a BpfError naming the loop, not a stack overflow in the codecs', function () {
    const hdr = Buffer.alloc(24);
    hdr.writeUInt16LE(0xeb9f, 0);
    hdr[2] = 1; // version
    hdr.writeUInt32LE(24, 4); // header length
    const type = Buffer.alloc(12);
    type.writeUInt32LE(1, 0); // name 'a'
    type.writeUInt32LE(8 << 24, 4); // TYPEDEF
    type.writeUInt32LE(1, 8); // of type 1: itself
    const strings = Buffer.from('\0a\0');
    hdr.writeUInt32LE(0, 8);
    hdr.writeUInt32LE(type.length, 12);
    hdr.writeUInt32LE(type.length, 16);
    hdr.writeUInt32LE(strings.length, 20);
    assert.throws(() => Btf.parse(Buffer.concat([hdr, type, strings])), (e: unknown) =>
      e instanceof BpfError && e.code === 'LIBBPF_ERRNO__FORMAT' && e.op === 'btf__parse' && /TYPEDEF 'a'\): reference loop 1 -> 1/.test(e.message));
  });

  it("new BpfObject('/tmp'): EISDIR naming the path, and no fd left per call", function () {
    const before = openFds();
    for (let i = 0; i < 20; i++) {
      assert.throws(() => new BpfObject(tmpdir()), (e: unknown) => e instanceof Error && (e as { code?: string }).code === 'EISDIR' &&
        e.name === 'BpfError' && e.message.includes(tmpdir()));
    }
    assert.equal(openFds(), before);
  });

  it('an in-memory object is named mem_object (not by its address) unless a name is given', function () {
    const image = readFileSync(obj('globals_test'));
    const a = BpfObject.fromBuffer(image);
    const b = BpfObject.fromBuffer(image, { name: 'mine' });
    try {
      assert.equal(a.name, 'mem_object');
      assert.equal(b.name, 'mine');
      assert.ok([...a.maps.keys()].includes('mem_obje.bss'), [...a.maps.keys()].join());
    } finally {
      a.close();
      b.close();
    }
  });

  it('update({flags: null}) is a TypeError, not a silent "any"; a raw map refuses -1 as a key as its typed twin does', function () {
    const m = BpfMap.create({ type: 'array', keySize: 4, valueSize: 8, maxEntries: 2 });
    try {
      assert.throws(() => m.update(0, 1n, { flags: null as never }), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
      assert.throws(() => m.lookup(-1), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
      assert.throws(() => m.update(-1, 1n), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
      assert.throws(() => m.update(2 ** 32, 1n), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
      m.update(1, -1n); // values keep their sign
      assert.equal(m.lookup(1)?.readBigInt64LE(), -1n);
    } finally {
      m.close();
    }
  });

  it('BpfLink.fromPin() of a pinned map is EINVAL saying it is a map, not a link of some type', function () {
    const m = BpfMap.create({ type: 'array', keySize: 4, valueSize: 4, maxEntries: 1 });
    const p = pinPath('not-a-link');
    m.pin(p);
    try {
      assert.throws(() => BpfLink.fromPin(p), (e: unknown) => e instanceof Error && (e as { code?: string }).code === 'EINVAL' &&
        /is not a pinned link \(it is a bpf-map\)/.test(e.message));
    } finally {
      unlinkSync(p);
      m.close();
    }
  });
});
