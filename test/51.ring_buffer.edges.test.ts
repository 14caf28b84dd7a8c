// RingBuffer read from the mapped ring (internal/ring_reader.ts), at its
// edges, against the real kernel: ring_edge's 16 KiB ring makes records
// wrap past the end of the data area often; records the BPF side discarded
// must vanish and free their space; a record reserved but not yet committed
// (busy) stops the reader until it is, even with committed records behind
// it, and even where it crosses the end of the data area.
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { BpfObject, RingBuffer, features, struct, type RecordBatch } from '../ts/index.js';
import type { NativeRingThread } from '../ts/internal/addon.js';
import { ROOT, itIf, obj, pinPath } from './helpers.js';

const SIZE = 16 * 1024; // ring_edge's ring

// struct edge_args { u64 start, count, discard_every, hold_ns; }
function args(start: number, count: number, discardEvery = 0, holdNs = 0): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigUInt64LE(BigInt(start), 0);
  b.writeBigUInt64LE(BigInt(count), 8);
  b.writeBigUInt64LE(BigInt(discardEvery), 16);
  b.writeBigUInt64LE(BigInt(holdNs), 24);
  return b;
}

// ring_edge.bpf.c's var_len(): 2..1000 bytes.
const varLen = (seq: number): number => 8 * ((seq % 125) + 1) - (seq % 7);
// The ring's footprint of a record: 8-byte header, data padded to 8.
const footprint = (len: number): number => (len + 15) & ~7;

const Rec40 = struct({ seq: 'u64', triple: 'u64', inv: 'u64', seven: 'u64', tag: 'u64' });

describe('RingBuffer over the mapped ring: wrap-around, discarded and busy records', function () {
  const it = itIf('bpfLoop', features.bpfLoop());
  let o: BpfObject;
  beforeEach(() => {
    o = new BpfObject(obj('ring_edge')).load();
  });
  afterEach(() => o.close());
  const drops = (): number => Number(o.map<number, bigint>('drops').lookup(0)!);
  const run = (prog: string, ctx: Buffer): number => o.program(prog).testRun({ ctx }).retval;

  it('records of every length cross the end of the data area intact: 3,000 records, exact bytes, in order', async function () {
    const rb = new RingBuffer(o.map('edge'), { batchSize: 7 });
    const N = 3_000;
    const CHUNK = 15; // at most 15 * 1008 bytes: under the ring's 16 KiB
    let pos = 0;
    let crossing = 0;
    let seq = 0;
    const consumer = (async () => {
      for await (const r of rb) {
        const len = varLen(seq);
        if (r.length !== len) assert.fail(`record ${seq}: ${r.length} bytes, expected ${len}`);
        for (let k = 0; k < len; k++) {
          // byte k of the little-endian u64 word (seq << 16 | j), j = k >> 3
          const word = (BigInt(seq) << 16n) | BigInt(k >> 3);
          const want = Number((word >> BigInt(8 * (k & 7))) & 0xffn);
          if (r[k] !== want) assert.fail(`record ${seq} byte ${k}: ${r[k]}, expected ${want}`);
        }
        const at = pos % SIZE;
        if (at + footprint(len) > SIZE) crossing++;
        pos += footprint(len);
        if (++seq === N) break;
      }
    })();
    for (let start = 0; start < N; start += CHUNK) {
      const count = Math.min(CHUNK, N - start);
      assert.equal(run('produce_var', args(start, count)), count);
      while (rb.stats.records < start + count) await tick();
    }
    await consumer;
    assert.equal(seq, N);
    assert.equal(drops(), 0);
    assert.ok(crossing >= 50, `${crossing} records crossed the end of the ring`);
    assert.ok(pos > 50 * SIZE, 'the ring wrapped many times');
  });

  for (const mode of ['raw', 'layout'] as const) {
    it(`discarded records vanish and free their space (${mode}): 2 in 3 of 3,000 delivered, each batch ending on a discard`, async function () {
      const rb = mode === 'raw' ? new RingBuffer(o.map('edge')) : new RingBuffer(o.map('edge'), { layout: Rec40 });
      const seqs: number[] = [];
      let first: unknown;
      const CHUNK = 300; // 300 * 48 bytes: under 16 KiB; seq 1..3000, the last of each chunk % 3 == 0
      for (let start = 1; start <= 3_000; start += CHUNK) {
        assert.equal(run('produce_discard', args(start, CHUNK, 3)), CHUNK);
        const want = seqs.length + 200;
        for (;;) {
          const batch = (await rb.nextBatch()).value as (Buffer | { seq: bigint; triple: bigint; inv: bigint; seven: bigint; tag: bigint })[];
          for (const r of batch) {
            const v = Buffer.isBuffer(r) ? Rec40.codec.decodeRecord(r) : r;
            if (Buffer.isBuffer(r)) assert.equal(r.length, 40);
            first ??= v;
            const s = Number(v.seq);
            assert.deepEqual(v, { seq: BigInt(s), triple: BigInt(s * 3), inv: ~BigInt(s) & 0xffff_ffff_ffff_ffffn, seven: 7n, tag: 0xabcdefn });
            seqs.push(s);
          }
          if (seqs.length >= want) break;
        }
        assert.equal(rb.stats.availableBytes, 0, 'the trailing discarded record was released too');
      }
      const expected = Array.from({ length: 3_000 }, (_, i) => i + 1).filter((s) => s % 3 !== 0);
      assert.deepEqual(seqs, expected);
      assert.equal(drops(), 0, 'discarded space came back: no reserve failed');
      assert.deepEqual(first, { seq: 1n, triple: 3n, inv: ~1n & 0xffff_ffff_ffff_ffffn, seven: 7n, tag: 0xabcdefn },
        'a record kept by the user is a copy: the ring reused its pages ten times since');
      assert.equal(rb.stats.records, 2_000);
      rb.close();
    });
  }

  it('64-bit members decoded from the pages (read as words where aligned): signed, unsigned and unaligned (packed) agree with decoding a copy byte for byte', async function () {
    // The same 40-byte records (seq, 3 seq, ~seq, 7, 0xabcdef) seen three ways.
    const Signed = struct({ seq: 's64', triple: 's64', inv: 's64', seven: 's64', tag: 's64' });
    const Packed = struct({ lo: 'u32', mid: 'u64', smid: 's64', rest: 'u64', high: 'u32', end: 's32' }, { packed: true });
    assert.deepEqual(Packed.offsets, { lo: 0, mid: 4, smid: 12, rest: 20, high: 28, end: 32 });
    const record = (s: number): Buffer => {
      const b = Buffer.alloc(40);
      [BigInt(s), BigInt(s * 3), ~BigInt(s) & 0xffff_ffff_ffff_ffffn, 7n, 0xabcdefn].forEach((v, i) => b.writeBigUInt64LE(v, 8 * i));
      return b;
    };
    const N = 200;
    for (const layout of [Signed, Packed, Rec40] as const) {
      const rb = new RingBuffer<unknown>(o.map('edge'), { layout } as { layout: typeof Signed });
      // large seqs: the high words are not zero, ~seq has its sign bit set
      assert.equal(run('produce_discard', args(2 ** 40 + 12345, N)), N);
      const got: unknown[] = [];
      for await (const v of rb) if (got.push(v) === N) break;
      for (let i = 0; i < N; i++) assert.deepEqual(got[i], layout.codec.decodeRecord(record(2 ** 40 + 12345 + i)), `record ${i}`);
    }
    const first = Signed.codec.decodeRecord(record(2 ** 40 + 12345));
    assert.equal(first.inv, -(2n ** 40n + 12346n));
  });

  for (const drain of ['loop', 'thread'] as const) {
    it(`recordBatches() (${drain}): 3,000 records of every length and 1,000 discards, exact bytes and order from offsets/lengths, discards left out, mixed with next(); batches cut at 64 records or 700 bytes`, async function () {
      // batchBytes below the longest record (1,000 bytes): a batch may end
      // past it by one record, and the thread's copy grows past its first
      // allocation.
      const rb = new RingBuffer(o.map('edge'), { drain, batchSize: 64, batchBytes: 700 });
      const it = rb.recordBatches();
      let seq = 0;
      let batches = 0;
      const check = (r: Buffer, s: number): void => {
        const len = varLen(s);
        if (r.length !== len) assert.fail(`record ${s}: ${r.length} bytes, expected ${len}`);
        for (let k = 0; k < len; k++) {
          const word = (BigInt(s) << 16n) | BigInt(k >> 3);
          if (r[k] !== Number((word >> BigInt(8 * (k & 7))) & 0xffn)) assert.fail(`record ${s} byte ${k}`);
        }
      };
      for (let start = 0; start < 3_000; start += 15) {
        assert.equal(run('produce_var', args(start, 15)), 15);
        while (seq < start + 15) {
          if (seq % 150 === 7) {
            // a single record taken by next() between batches: order holds
            const r = await rb.next();
            check(r.value as Buffer, seq++);
            continue;
          }
          const { value: b, done } = await it.next();
          assert.equal(done, false);
          assert.ok(b.length > 0);
          assert.ok(b.length <= 64, `${b.length} records in a batch`);
          const data = Array.from(b.lengths).reduce((a, x) => a + x, 0);
          assert.ok(data - b.lengths[b.length - 1]! < 700, `${data} bytes in a batch of ${b.length}`);
          assert.equal(b.offsets.length, b.length);
          batches++;
          for (let i = 0; i < b.length; i++) {
            assert.equal(b.sources[i], 0);
            check(b.buffer.subarray(b.offsets[i], b.offsets[i]! + b.lengths[i]!), seq);
            assert.ok(b.at(i).equals(b.buffer.subarray(b.offsets[i], b.offsets[i]! + b.lengths[i]!)));
            seq++;
          }
          assert.deepEqual([...b].map((r) => r.length), Array.from(b.lengths));
          assert.throws(() => b.at(b.length), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
        }
      }
      assert.equal(seq, 3_000);
      assert.ok(batches >= 100, `${batches} batches`);
      // Discarded records: 2 in 3 arrive, the discarded ones are not in the batch.
      const seqs: number[] = [];
      assert.equal(run('produce_discard', args(1, 300, 3)), 300);
      while (seqs.length < 200) {
        const { value: b } = await it.next();
        for (let i = 0; i < b.length; i++) {
          assert.equal(b.lengths[i], 40);
          seqs.push(Number(b.buffer.readBigUInt64LE(b.offsets[i])));
        }
      }
      assert.deepEqual(seqs, Array.from({ length: 300 }, (_, i) => i + 1).filter((s) => s % 3 !== 0));
      assert.equal(drops(), 0);
      // Leaving the loop early closes the stream.
      await it.return!();
      assert.equal(rb.closed, true);
      // A decoding stream has no raw batches to give.
      const typed = new RingBuffer(o.map('edge'), { layout: Rec40 });
      assert.throws(() => typed.recordBatches(), { name: 'TypeError', code: 'ERR_INVALID_STATE' });
      typed.close();
    });
  }

  it('decoded records wait in the ring until taken: while the reader is away the poll is stopped (no busy loop); records produced meanwhile follow in order', async function () {
    const rb = new RingBuffer(o.map('edge'), { layout: Rec40 });
    assert.equal(run('produce_discard', args(0, 10)), 10);
    const it = rb[Symbol.asyncIterator]();
    assert.equal((await it.next()).value!.seq, 0n);
    assert.ok(rb.stats.availableBytes >= 9 * 48, 'the 9 queued records still hold their ring space');
    // The ring is readable (it holds those 9), so a poll left running would fire without end.
    const c0 = process.cpuUsage();
    await sleep(300);
    const c = process.cpuUsage(c0);
    assert.ok((c.user + c.system) / 1000 < 100, `${((c.user + c.system) / 1000).toFixed(0)} ms of CPU while waiting 300 ms`);
    assert.equal(run('produce_discard', args(10, 5)), 5); // while the poll is stopped
    const seqs: number[] = [];
    for (let i = 0; i < 14; i++) seqs.push(Number((await it.next()).value!.seq));
    assert.deepEqual(seqs, Array.from({ length: 14 }, (_, i) => i + 1));
    assert.equal(rb.stats.availableBytes, 0, 'every record taken: the ring is empty');
    assert.equal(drops(), 0);
    rb.close();
  });

  it('a drain larger than one copy (64 KiB) is split into batches at record boundaries; discards at the seams vanish; the order holds across them', async function () {
    const big = new BpfObject(obj('ring_edge'));
    big.map('edge').maxEntries = 1 << 20;
    big.load();
    try {
      // 20,000 records of 40 bytes (48 in the ring: 960,000 bytes), every
      // 5th discarded: one drain of the whole ring, 16,000 records.
      const rb = new RingBuffer(big.map('edge'), { batchSize: 1 << 20 });
      assert.equal(big.program('produce_discard').testRun({ ctx: args(1, 20_000, 5) }).retval, 20_000);
      const it = rb.recordBatches()[Symbol.asyncIterator]();
      const seqs: number[] = [];
      let batches = 0;
      // One record first, through next(): the rest of its batch follows as a RecordBatch.
      seqs.push(Number(((await rb.next()).value as Buffer).readBigUInt64LE(0)));
      while (seqs.length < 16_000) {
        const { value: b } = await it.next();
        batches++;
        assert.ok(b.buffer.length <= 64 << 10, `a batch of ${b.buffer.length} bytes`);
        for (let i = 0; i < b.length; i++) {
          assert.equal(b.lengths[i], 40);
          const s = b.buffer.readBigUInt64LE(b.offsets[i]);
          assert.equal(b.buffer.readBigUInt64LE(b.offsets[i]! + 8), s * 3n);
          seqs.push(Number(s));
        }
      }
      assert.ok(batches >= 14, `${batches} batches for 768,000 bytes of records`);
      assert.equal(rb.stats.batches, batches, 'one drain, split into that many batches (the first one began with next())');
      assert.deepEqual(seqs, Array.from({ length: 20_000 }, (_, i) => i + 1).filter((s) => s % 5 !== 0));
      assert.equal(rb.stats.availableBytes, 0);
      rb.close();
    } finally {
      big.close();
    }
  });

  it('records already queued do not hold the event loop: for await, batches() and recordBatches() each give it a turn every few ms', async function () {
    const big = new BpfObject(obj('ring_edge'));
    big.map('edge').maxEntries = 1 << 20;
    big.load();
    const spin = (ms: number): void => {
      const until = performance.now() + ms;
      while (performance.now() < until);
    };
    try {
      for (const how of ['for await', 'batches()', 'recordBatches()'] as const) {
        // 15,000 records of 40 bytes, all taken by the first wakeup (one
        // drain, about 11 copies of 64 KiB); about 150 ms of work on them,
        // 14 ms per copy. Held in one stretch, the loop would wait 150 ms.
        const rb = new RingBuffer(big.map('edge'), { batchSize: 1 << 20, highWaterMark: 1 << 20 });
        assert.equal(big.program('produce_discard').testRun({ ctx: args(0, 15_000) }).retval, 15_000);
        // Turns and gaps are counted from the first record on: the drain
        // before it (one wakeup's budget, here the whole ring) is not what
        // this test is about, and under emulation it alone can take 100 ms.
        let turns = 0;
        let longest = 0;
        let started = 0;
        let last = 0;
        let stop = false;
        const turn = (): void => {
          const now = performance.now();
          if (started > 0) {
            longest = Math.max(longest, now - last);
            turns++;
          }
          last = now;
          if (!stop) setImmediate(turn);
        };
        const begin = (): void => {
          if (started === 0) last = started = performance.now();
        };
        const seqs: bigint[] = [];
        const consumed = (async () => {
          if (how === 'for await') {
            for await (const r of rb) {
              begin();
              seqs.push(r.readBigUInt64LE(0));
              spin(0.01);
              if (seqs.length === 15_000) break;
            }
          } else if (how === 'batches()') {
            for await (const b of rb.batches()) {
              begin();
              for (const r of b) seqs.push(r.readBigUInt64LE(0));
              spin(b.length * 0.01);
              if (seqs.length === 15_000) break;
            }
          } else {
            for await (const b of rb.recordBatches()) {
              begin();
              for (let i = 0; i < b.length; i++) seqs.push(b.buffer.readBigUInt64LE(b.offsets[i]));
              spin(b.length * 0.01);
              if (seqs.length === 15_000) break;
            }
          }
        })();
        setImmediate(turn);
        await consumed;
        const took = performance.now() - started;
        stop = true;
        assert.equal(rb.stats.batches > 1 && rb.stats.records, 15_000);
        assert.deepEqual(seqs, Array.from({ length: 15_000 }, (_, i) => BigInt(i)), how);
        // Held in one stretch, the loop would wait the whole time (took).
        assert.ok(turns >= 8, `${how}: the event loop had ${turns} turns in ${took.toFixed(0)} ms of work`);
        assert.ok(longest < took / 2, `${how}: the event loop waited ${longest.toFixed(1)} ms at most, of ${took.toFixed(0)} ms`);
        assert.equal(rb.closed, true);
      }
    } finally {
      big.close();
    }
  });

  // The held record stays busy while a program spins on another CPU: with
  // one CPU (taskset) that program runs to its end before the test can look.
  const itTwoCpus = features.bpfLoop() === true
    ? itIf('twoCpus', availableParallelism() >= 2 || `this process may use ${availableParallelism()} CPU: the program holding the record would run to its end first`)
    : it;
  itTwoCpus('a busy record crossing the end of the data area stops the reader until it is committed; records behind it wait, then all arrive in order', async function () {
    const rb = new RingBuffer(o.map('edge'));
    // 341 records of 48 bytes put the producer 16 bytes before the end of
    // the data: the held record's header fits, its 16 bytes of data wrap.
    assert.equal(run('produce_discard', args(0, 341)), 341);
    for (let n = 0; n < 341;) n += (await rb.nextBatch()).value!.length;
    assert.equal(rb.stats.availableBytes, 0);
    const pin = pinPath('ring-edge-hold');
    o.program('hold').pin(pin);
    const worker = new Worker(`
      const { workerData, parentPort } = require('node:worker_threads');
      const { BpfProgram } = require(workerData.lib);
      const prog = BpfProgram.fromPin(workerData.pin);
      parentPort.postMessage(prog.testRun({ ctx: Buffer.from(workerData.ctx) }).retval);
      prog.close();
    `, { eval: true, workerData: { lib: path.join(ROOT, 'dist', 'ts', 'index.js'), pin, ctx: args(1_000_000, 0, 0, 60e9) } });
    // The record stays busy until the test sets release[0] (or a minute passes).
    const release = (): void => o.map<number, bigint>('release').update(0, 1n);
    const held = new Promise<number>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    try {
      // The reserve moves the producer position at once; the commit comes
      // when the test sets release[0]. Watched without yielding to the event loop, so the
      // RingBuffer cannot take anything meanwhile.
      const t0 = Date.now();
      let failed: unknown;
      worker.once('error', (e) => (failed = e));
      while (rb.stats.availableBytes < 24) {
        if (Date.now() - t0 > 10_000) assert.fail(`the hold program never reserved${failed ? `: ${String(failed)}` : ''}`);
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
      }
      assert.equal(run('produce_discard', args(0, 10)), 10); // committed, behind the busy one
      assert.equal(rb.consume(), 0, 'nothing is taken past a busy record');
      assert.equal(rb.stats.records, 341);
      assert.equal(rb.stats.availableBytes, 24 + 10 * 48);
      release();
      assert.equal(await held, 1);
      const got: number[] = [];
      for await (const r of rb) {
        got.push(Number(r.readBigUInt64LE(0)));
        if (got.length === 11) break;
      }
      assert.deepEqual(got, [1_000_000, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      assert.equal(drops(), 0);
    } finally {
      release();
      await held.catch(() => undefined);
      await worker.terminate();
      o.program('hold').unpin();
    }
  });

  // The mapped pages belong to ArrayBuffers inside the RingBuffer: close()
  // detaches them (unmapped at once), and a RingBuffer dropped unclosed is
  // unmapped when collected. Nothing is unmapped while JavaScript can reach it.
  const ringMappings = (): number => readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.endsWith('anon_inode:bpf-map')).length;
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 5; i++) {
      (globalThis as { gc?: () => void }).gc?.();
      await new Promise((r) => setTimeout(r, 5));
    }
  };

  it('close() unmaps the ring (two mappings per ring); a RingBuffer dropped unclosed is unmapped by GC; after close nothing is read, nothing crashes', async function () {
    await settle();
    const base = ringMappings();
    const rbs = Array.from({ length: 20 }, () => new RingBuffer(o.map('edge')));
    assert.equal(ringMappings(), base + 40);
    for (const rb of rbs) rb.close();
    await settle();
    assert.equal(ringMappings(), base);
    const closed = rbs[0]!;
    assert.equal(closed.consume(), 0);
    assert.equal(closed.stats.availableBytes, 0);
    assert.deepEqual(await closed.next(), { value: undefined, done: true });
    (() => {
      const dropped = new RingBuffer(o.map('edge'));
      void dropped;
    })();
    assert.equal(ringMappings(), base + 2);
    await settle();
    assert.equal(ringMappings(), base, 'collected: unmapped by the finalizers');
    // The ring itself is intact for the next reader.
    assert.equal(run('produce_discard', args(0, 5)), 5);
    const rb = new RingBuffer(o.map('edge'));
    const got: number[] = [];
    for await (const r of rb) {
      got.push(Number(r.readBigUInt64LE(0)));
      if (got.length === 5) break;
    }
    assert.deepEqual(got, [0, 1, 2, 3, 4]);
  });

  it('drain: \'thread\' takes records while the event loop is blocked: 30,000 records through a 16 KiB ring in one synchronous stretch, none dropped, in order (the loop alone drops them)', async function () {
    const sleepSync = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
    const CHUNK = 300; // 300 * 48 bytes: what the ring holds
    const N = 30_000;
    for (const drain of ['loop', 'thread'] as const) {
      o.map<number, bigint>('drops').update(0, 0n);
      const rb = new RingBuffer(o.map('edge'), { drain, highWaterMark: N });
      // The event loop does not run from here to the end of the loop below.
      for (let start = 0; start < N; start += CHUNK) {
        assert.equal(run('produce_discard', args(start, CHUNK)), CHUNK);
        if (drain === 'thread') {
          // The thread empties the ring by itself.
          const t0 = Date.now();
          while (rb.stats.availableBytes > 0) {
            if (Date.now() - t0 > 5_000) assert.fail(`the thread left ${rb.stats.availableBytes} bytes in the ring`);
            sleepSync(1);
          }
        }
      }
      const dropped = drops();
      let next = 0;
      let received = 0;
      for await (const r of rb) {
        const seq = Number(r.readBigUInt64LE(0));
        if (drain === 'thread' && seq !== next) assert.fail(`record ${next}: got ${seq}`);
        next = seq + 1;
        if (++received + dropped === N) break;
      }
      if (drain === 'thread') {
        assert.equal(dropped, 0);
        assert.equal(received, N);
      } else {
        assert.ok(dropped >= N - 400, `the loop path dropped ${dropped}: the ring held what one chunk writes`);
      }
    }
  });

  it('drain: \'thread\' reuses a batch\'s memory only once JavaScript lets go of it: 8,000 records in batches of 20, every third batch kept across collections keeps its bytes, the others\' memory is filled again', async function () {
    const gc = (globalThis as { gc?: () => void }).gc;
    assert.ok(gc, 'the suite runs with --expose-gc (.mocharc)');
    const rb = new RingBuffer(o.map('edge'), { drain: 'thread', batchSize: 20 });
    const it = rb.recordBatches();
    const kept: [RecordBatch, Buffer][] = [];
    let seq = 0;
    let batches = 0;
    for (let round = 0; round < 40; round++) {
      assert.equal(run('produce_discard', args(round * 200, 200)), 200);
      while (seq < (round + 1) * 200) {
        const { value: b, done } = await it.next();
        assert.equal(done, false);
        for (let i = 0; i < b.length; i++) assert.equal(Number(b.buffer.readBigUInt64LE(b.offsets[i])), seq++, 'in order');
        // A batch is one Buffer: kept whole, or let go whole.
        if (batches++ % 3 === 0) kept.push([b, Buffer.from(b.buffer)]);
      }
      // The batches let go are collected, and their memory goes back to
      // the thread for the next round's.
      gc!();
      await new Promise((resolve) => setImmediate(resolve));
    }
    for (const [b, copy] of kept) {
      if (!b.buffer.equals(copy)) assert.fail(`a batch from record ${copy.readBigUInt64LE(8)} changed after it was received`);
    }
    const reused = (rb.native as NativeRingThread).reused();
    assert.ok(reused >= 40, `${reused} of ${batches} batches in memory given back`);
    assert.equal(drops(), 0);
    await it.return!();
  });

  it('drain: \'thread\' holds at most queueBytes however large a batch could be: 10,000 records in a 1 MiB ring, a 64 KiB queue, the loop away; then all arrive in order', async function () {
    const big = new BpfObject(obj('ring_edge'));
    big.map('edge').maxEntries = 1 << 20;
    big.load();
    try {
      // batchSize 8192 and batchBytes 4 MiB (the defaults) allow batches far
      // larger than the queue.
      const rb = new RingBuffer(big.map('edge'), { drain: 'thread', queueBytes: 1 << 16 });
      const N = 10_000;
      assert.equal(big.program('produce_discard').testRun({ ctx: args(0, N) }).retval, N);
      // The event loop does not run here: the thread fills its queue, then waits.
      let left = -1;
      for (let t = 0; t < 400 && rb.stats.availableBytes !== left; t++) {
        left = rb.stats.availableBytes;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
      }
      const taken = N * 48 - rb.stats.availableBytes;
      assert.ok(taken > 0 && taken <= 1 << 16, `${taken} bytes taken into a 64 KiB queue`);
      let seq = 0;
      for await (const r of rb) {
        assert.equal(Number(r.readBigUInt64LE(0)), seq);
        if (++seq === N) break;
      }
      assert.equal(Number(big.map<number, bigint>('drops').lookup(0)), 0);
    } finally {
      big.close();
    }
  });

  it('drain: \'thread\' with a layout decodes in JavaScript, close() stops the thread and unmaps; bad options throw before anything is mapped', async function () {
    const rb = new RingBuffer(o.map('edge'), { drain: 'thread', layout: Rec40 });
    assert.equal(run('produce_discard', args(1, 10, 3)), 10);
    const seqs: bigint[] = [];
    for await (const v of rb) {
      seqs.push(v.seq);
      assert.equal(v.triple, v.seq * 3n);
      if (seqs.length === 7) break;
    }
    assert.deepEqual(seqs, [1n, 2n, 4n, 5n, 7n, 8n, 10n]);
    assert.equal(rb.closed, true);
    const base = ringMappings();
    const other = new RingBuffer(o.map('edge'), { drain: 'thread' });
    assert.equal(ringMappings(), base + 2);
    other.close();
    other.close();
    assert.equal(ringMappings(), base, 'unmapped by close(), after the thread ended');
    assert.equal(other.consume(), 0);
    // @ts-expect-error not a drain mode
    assert.throws(() => new RingBuffer(o.map('edge'), { drain: 'worker' }), { code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => new RingBuffer(o.map('edge'), { drain: 'thread', queueBytes: 10 }), { code: 'ERR_OUT_OF_RANGE' });
    assert.equal(ringMappings(), base);
  });

  it('drain: \'thread\' with its queue full: the thread waits, the ring fills, the kernel drops the rest; after the loop frees the queue every record is accounted for, in order', async function () {
    const rb = new RingBuffer(o.map('edge'), { drain: 'thread', queueBytes: 1 << 16, batchSize: 100 });
    const N = 6_000;
    // Synchronously: 20 runs of 300 records, far more than the 64 KiB
    // queue (48 bytes a record) and the 16 KiB ring hold together.
    for (let start = 0; start < N; start += 300) {
      assert.equal(run('produce_discard', args(start, 300)), 300);
      // Give the thread time to take the ring (it stops once its queue is
      // full: then the ring stays full); a loaded machine may not run it
      // within a fixed sleep.
      for (let t = 0; t < 50 && rb.stats.availableBytes > 0; t++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
    const dropped = drops();
    // The queue (1,365 records of 48 bytes) and the ring (341) took what they hold, the kernel dropped the rest.
    assert.ok(dropped > 0 && dropped < N - 1_365, `${dropped} dropped`);
    assert.ok(N - dropped <= 1_365 + 341 + 100, `${N - dropped} kept: more than the queue and the ring hold`);
    let received = 0;
    let last = -1;
    for await (const r of rb) {
      const seq = Number(r.readBigUInt64LE(0));
      assert.ok(seq > last, `${seq} after ${last}`);
      last = seq;
      if (++received + dropped === N) break;
    }
    assert.equal(received + dropped, N);
    // And it goes on after being full: more records arrive.
    const more = new RingBuffer(o.map('edge'), { drain: 'thread', queueBytes: 1 << 16 });
    assert.equal(run('produce_discard', args(N, 10)), 10);
    const got: number[] = [];
    for await (const r of more) {
      got.push(Number(r.readBigUInt64LE(0)));
      if (got.length === 10) break;
    }
    assert.deepEqual(got, Array.from({ length: 10 }, (_, i) => N + i));
  });
});
