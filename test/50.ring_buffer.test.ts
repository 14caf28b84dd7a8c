// RingBuffer against the real kernel. stream_test's SYSCALL program (run
// through BPF_PROG_TEST_RUN) writes records with sequence numbers with
// bpf_loop, many at a time (Linux 5.17); ring_test's tracepoint program
// writes one per getppid() of this process (ring buffers: Linux 5.8). The
// iterator must deliver each exactly once, in order, in batches.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import { BpfMap, BpfObject, RingBuffer, features } from '../ts/index.js';
import { ROOT, ensureTracefs, itIf, obj, openFds, throwsWith } from './helpers.js';

const RECORD = 16; // struct record { u64 seq; u64 ring; }

function producer(o: BpfObject): (start: number, count: number, ring?: 0 | 1) => void {
  const prog = o.program('produce');
  return (start, count, ring = 0) => {
    const ctx = Buffer.alloc(32); // struct produce_args { u64 start, count, ring, wakeup_every; }
    ctx.writeBigUInt64LE(BigInt(start), 0);
    ctx.writeBigUInt64LE(BigInt(count), 8);
    ctx.writeBigUInt64LE(BigInt(ring), 16);
    assert.equal(prog.testRun({ ctx }).retval, count);
  };
}

const drops = (o: BpfObject): number => Number(o.map<number, bigint>('drops').lookup(0)!);
const seqOf = (r: Buffer): number => Number(r.readBigUInt64LE(0));

describe('RingBuffer (records from bpf_loop)', function () {
  const it = itIf('bpfLoop', features.bpfLoop());
  let o: BpfObject;
  let produce: ReturnType<typeof producer>;
  beforeEach(() => {
    o = new BpfObject(obj('stream_test')).load();
    produce = producer(o);
  });
  afterEach(() => o.close());

  it('delivers 200,000 records exactly once and in order, over many batches', async function () {
    const K = 200_000;
    const CHUNK = 5_000; // under the 256 KiB ring's capacity (24 bytes a record)
    const rb = new RingBuffer(o.map('ring_a'), { batchSize: 512 });
    const consumer = (async () => {
      let expect = 0;
      for await (const r of rb) {
        assert.equal(r.length, RECORD);
        const seq = seqOf(r);
        if (seq !== expect) assert.fail(`record ${expect}: got sequence number ${seq}`);
        if (++expect === K) break;
      }
      return expect;
    })();
    for (let start = 0; start < K; start += CHUNK) {
      produce(start, CHUNK);
      while (rb.stats.records < start + CHUNK) await tick();
    }
    assert.equal(await consumer, K);
    assert.equal(drops(o), 0);
    const s = rb.stats;
    assert.equal(s.records, K);
    assert.equal(s.bytes, K * RECORD);
    assert.ok(s.batches >= K / 512, `${s.batches} batches`);
    assert.equal(rb.closed, true, 'break closes the buffer');
  });

  it('consumes two rings in one RingBuffer; decode sees which map a record came from', async function () {
    const a = o.map('ring_a');
    const b = o.map('ring_b');
    const rb = new RingBuffer([a, b], {
      decode: (r, map) => ({ seq: seqOf(r), ring: Number(r.readBigUInt64LE(8)), map }),
    });
    const N = 3_000;
    for (let start = 0; start < N; start += 1_000) {
      produce(start, 1_000, 0);
      produce(100_000 + start, 1_000, 1);
    }
    const next: [number, number] = [0, 100_000];
    let total = 0;
    for await (const e of rb) {
      assert.equal(e.map, e.ring === 0 ? a : b);
      assert.equal(e.seq, next[e.ring as 0 | 1]++, 'each ring in its own order');
      if (++total === 2 * N) break;
    }
    assert.deepEqual(next, [N, 100_000 + N]);
  });

  it('bounds each wakeup by batchSize: one busy ring cannot starve the event loop', async function () {
    const rb = new RingBuffer(o.map('ring_a'), { batchSize: 100 });
    produce(0, 5_000);
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 0);
    const sizes: number[] = [];
    try {
      for await (const batch of rb.batches()) {
        sizes.push(batch.length);
        if (sizes.reduce((x, y) => x + y, 0) === 5_000) break;
        await sleep(1); // a slow consumer: batches arrive while it sleeps
      }
    } finally {
      clearInterval(ticker);
    }
    assert.ok(rb.stats.batches >= 50, `${rb.stats.batches} wakeups for 5000 records`);
    assert.ok(ticks > 0, 'timers ran while the ring was drained');
  });

  it('backpressure: above highWaterMark polling pauses, the ring fills, the BPF side sees reserve failures', async function () {
    const rb = new RingBuffer(o.map('ring_a'), { highWaterMark: 1_000, batchSize: 100 });
    let produced = 0;
    for (let i = 0; i < 20; i++) {
      produce(produced, 2_000);
      produced += 2_000;
      await sleep(5); // the poll runs, but nobody reads
    }
    const s = rb.stats;
    assert.ok(s.queued >= 1_000 && s.queued < 1_000 + 100, `${s.queued} records queued in JS`);
    assert.ok(s.availableBytes > 200_000, `${s.availableBytes} bytes left in the ring`);
    const dropped = drops(o);
    assert.ok(dropped > 0, 'reserve failures counted by the program');
    // Every record produced was either delivered or counted as dropped.
    let delivered = 0;
    let last = -1;
    for await (const r of rb) {
      assert.ok(seqOf(r) > last);
      last = seqOf(r);
      delivered++;
      if (delivered + dropped === produced) break;
    }
    assert.equal(delivered + dropped, produced);
  });

  it('records are copies: they survive the ring reusing its pages', async function () {
    const rb = new RingBuffer(o.map('ring_a'));
    produce(7, 1);
    const first = (await rb.next()).value as Buffer;
    for (let start = 100; start < 60_000; start += 5_000) {
      produce(start, 5_000);
      while (rb.stats.records < start - 100 + 5_001) await tick();
      rb.batches(); // nothing: just keep the queue drained below
      while (rb.stats.queued > 0) await rb.next();
    }
    assert.equal(seqOf(first), 7);
    rb.close();
  });

});

describe('RingBuffer (records from a tracepoint)', function () {
  const it = itIf('ringbuf', features.ringbuf());
  const RECORD_TP = 16; // struct record { u32 tgid; u32 cpu; u64 seq; }
  let o: BpfObject;
  before(() => ensureTracefs());
  beforeEach(() => {
    o = new BpfObject(obj('ring_test')).load();
    o.map('settings').update(0, BigInt(process.pid));
  });
  afterEach(() => o.close());
  const attach = (): void => {
    o.program('ring_getppid').attach();
  };
  const callGetppid = (n: number): void => {
    for (let i = 0; i < n; i++) void process.ppid; // each read is a getppid(2)
  };
  const counter = (slot: 0 | 1): number => Number(o.map<number, bigint>('counters').lookup(slot)!);

  it('one record per getppid() of this process: 5,000 calls, 5,000 records, in order, in batches, none dropped', async function () {
    const rb = new RingBuffer(o.map('ring'), { batchSize: 64 });
    attach();
    const N = 5_000; // 24 bytes a record in the ring: half its 256 KiB
    callGetppid(N);
    let n = 0;
    for await (const r of rb) {
      assert.equal(r.length, RECORD_TP);
      assert.equal(r.readUInt32LE(0), process.pid);
      const seq = Number(r.readBigUInt64LE(8));
      if (seq !== n) assert.fail(`record ${n}: got sequence number ${seq}`);
      if (++n === N) break;
    }
    assert.equal(n, N);
    assert.equal(counter(0), 0, 'no failed reserve');
    assert.equal(counter(1), N, 'the program saw exactly the calls made');
    assert.equal(rb.stats.records, N);
    assert.equal(rb.stats.bytes, N * RECORD_TP);
    assert.ok(rb.stats.batches >= N / 64, `${rb.stats.batches} batches`);
    assert.equal(rb.closed, true, 'break closes the buffer');
  });

  it('AbortSignal: a pending read rejects with the signal\'s reason and the buffer closes', async function () {
    const ac = new AbortController();
    const rb = new RingBuffer(o.map('ring'), { signal: ac.signal });
    const reason = new Error('enough');
    setTimeout(() => ac.abort(reason), 20);
    await assert.rejects(async () => {
      for await (const r of rb) void r;
    }, (e: unknown) => e === reason);
    assert.equal(rb.closed, true);
    const already = new RingBuffer(o.map('ring'), { signal: AbortSignal.abort(reason) });
    await assert.rejects(already.next(), (e: unknown) => e === reason);
  });

  it('close() during iteration ends it cleanly', async function () {
    const rb = new RingBuffer(o.map('ring'));
    attach();
    callGetppid(10);
    setTimeout(() => rb.close(), 30);
    let n = 0;
    for await (const r of rb) {
      void r;
      n++;
    }
    assert.equal(n, 10);
    assert.equal(rb.closed, true);
    rb.close();
  });

  it('closing the BpfObject under a live RingBuffer ends the iteration, no crash', async function () {
    const other = new BpfObject(obj('ring_test')).load();
    const rb = new RingBuffer(other.map('ring'));
    setTimeout(() => other.close(), 20);
    const t0 = Date.now();
    for await (const r of rb) void r;
    assert.ok(Date.now() - t0 < 5_000);
    assert.equal(rb.closed, true);
  });

  it('break out of for await releases the poll handle: the process exits by itself', function () {
    const script = path.join(tmpdir(), `libbpf-node-rb-exit-${process.pid}.js`);
    writeFileSync(script, `
      const { BpfObject, RingBuffer } = require(${JSON.stringify(path.join(ROOT, 'dist', 'ts', 'index.js'))});
      const o = new BpfObject(${JSON.stringify(obj('ring_test'))}).load();
      o.map('settings').update(0, BigInt(process.pid));
      o.program('ring_getppid').attach();
      (async () => {
        const rb = new RingBuffer(o.map('ring'));
        for (let i = 0; i < 3; i++) process.ppid;
        for await (const r of rb) { console.log('got', Number(r.readBigUInt64LE(8))); break; }
        // also one that is never read: it must not keep the process alive
        new RingBuffer(o.map('ring'));
      })();
    `);
    try {
      const out = execFileSync(process.execPath, [script], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(out.trim(), 'got 0');
    } finally {
      rmSync(script, { force: true });
    }
  });

  it('bad input: not a ringbuf map, an object not loaded, nothing to consume; no fd leaks', function () {
    const before = openFds();
    throwsWith(() => new RingBuffer(o.map('counters')), { code: 'ERR_INVALID_ARG_VALUE', message: /counters/ }, TypeError);
    const hash = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 4, maxEntries: 4 });
    throwsWith(() => new RingBuffer(hash), { code: 'ERR_INVALID_ARG_VALUE' }, TypeError);
    hash.close();
    throwsWith(() => new RingBuffer([]), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => new RingBuffer(o.map('ring'), { batchSize: 0 }), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
    const unloaded = new BpfObject(obj('ring_test'));
    throwsWith(() => new RingBuffer(unloaded.map('ring')), { code: 'ERR_INVALID_STATE' }, TypeError);
    unloaded.close();
    assert.equal(openFds(), before);
  });
});

describe('examples/execsnoop', function () {
  it('prints bcc\'s columns for each exec live (comm, pid, ppid, ret, argv from a variable-length record), and exits cleanly on SIGINT', async function () {
    const { spawn, execFileSync: run } = await import('node:child_process');
    const { copyFileSync, rmSync } = await import('node:fs');
    const exe = path.join(tmpdir(), `lbn-exec-${process.pid}`); // comm: the first 15 characters
    copyFileSync('/bin/true', exe);
    const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'examples', 'execsnoop.js')], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      let err = '';
      let wanted: { re: RegExp; resolve: () => void } | undefined;
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (wanted?.re.test(out)) wanted.resolve();
      });
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const waitFor = (re: RegExp): Promise<void> => new Promise((resolve, reject) => {
        child.once('exit', () => reject(new Error(`execsnoop exited: ${out}${err}`)));
        if (re.test(out)) resolve();
        else wanted = { re, resolve };
      });
      await waitFor(/^PCOMM {12}PID {5}PPID {4}RET ARGS$/m);
      for (let i = 0; i < 3; i++) run(exe, ['one', `two-${i}`, 'three']);
      const comm = path.basename(exe).slice(0, 15);
      const mine = new RegExp(`^${comm} +(\\d+) +${process.pid} +0 ${exe} one two-(\\d) three$`, 'gm');
      await waitFor(new RegExp(`(${mine.source}[\\s\\S]*){3}`, 'm'));
      const rows = [...out.matchAll(mine)];
      assert.equal(rows.length, 3);
      assert.deepEqual(rows.map((r) => r[2]), ['0', '1', '2']);
      assert.equal(new Set(rows.map((r) => r[1])).size, 3, 'three different pids');
      // fixed-width columns: PCOMM 16, PID 7, PPID 7, RET 3
      assert.equal(rows[0]![0].indexOf(` ${process.pid} `), 16 + 1 + 7);
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGINT');
      assert.equal(await exited, 0);
      assert.match(err, /execs, 0 dropped by the BPF side/);
    } finally {
      child.kill('SIGKILL');
      rmSync(exe, { force: true });
    }
  });
});
