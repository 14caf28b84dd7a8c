// PerfBuffer against the real kernel: the tracepoint program perf_getppid
// (perf_test.bpf.c) writes a sample {u32 cpu; u32 tgid; u64 seq} into the
// perf buffer of the CPU it runs on for every getppid(2) of any process.
// Every `process.ppid` read in Node is one getppid(2) call, and `taskset`
// pins child processes to one CPU, so the tests know which samples to expect
// where; samples of other processes are filtered out by tgid.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BpfMap, BpfObject, PerfBuffer, type PerfEvent } from '../ts/index.js';
import { ROOT, ensureTracefs, obj, throwsWith, withoutFdLeak } from './helpers.js';

/** CPUs from a sysfs list such as "0-3,5". */
function cpuList(file: string): number[] {
  const out: number[] = [];
  for (const part of readFileSync(file, 'utf8').trim().split(',')) {
    const [lo, hi] = part.split('-').map(Number);
    for (let c = lo!; c <= (hi ?? lo!); c++) out.push(c);
  }
  return out;
}
const ONLINE = cpuList('/sys/devices/system/cpu/online');

function callGetppid(n: number): void {
  for (let i = 0; i < n; i++) void process.ppid; // each read is a getppid(2)
}

/** Runs `node -e` pinned to `cpu`, making `calls` getppid calls; returns its pid. */
function getppidOn(cpu: number, calls: number): number {
  const r = spawnSync('taskset', ['-c', String(cpu), process.execPath, '-e',
    `for (let i = 0; i < ${calls}; i++) process.ppid`], { timeout: 10_000 });
  assert.equal(r.status, 0, `taskset child on CPU ${cpu}: status ${r.status}, ${String(r.stderr)}`);
  return r.pid;
}

interface Sample { cpu: number; tgid: number; seq: bigint }
const sampleOf = (b: Buffer): Sample => ({ cpu: b.readUInt32LE(0), tgid: b.readUInt32LE(4), seq: b.readBigUInt64LE(8) });

/**
 * Reads with next() until `stop` returns true (true), or until `ms` pass:
 * then the buffer is closed, which ends the pending read (false).
 */
async function readUntil<T>(pb: PerfBuffer<T>, stop: (e: PerfEvent<T>) => boolean, ms = 5_000): Promise<boolean> {
  const timer = setTimeout(() => pb.close(), ms);
  try {
    for (;;) {
      const r = await pb.next();
      if (r.done) return false;
      if (stop(r.value)) return true;
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * One turn of the event loop through its poll phase, so that libuv watches
 * the buffer's fd before samples are written. Samples that are already in
 * the rings when the fd is first watched are the subject of their own test
 * ('samples written before the first poll ...'); the other tests do not
 * depend on that case.
 */
const watched = (): Promise<void> => sleep(10);

/** Whether `p` is still pending after `ms`. */
async function pendingAfter(p: Promise<unknown>, ms: number): Promise<boolean> {
  const settled = Symbol('settled');
  const r = await Promise.race([p.then(() => settled, () => settled), sleep(ms, 'pending')]);
  return r === 'pending';
}

describe('PerfBuffer', function () {
  this.timeout(15_000);
  let o: BpfObject;
  before(() => ensureTracefs());
  beforeEach(() => {
    o = new BpfObject(obj('perf_test')).load();
  });
  afterEach(() => o.close());

  const attach = (): void => {
    o.program('perf_getppid').attach();
  };
  const drops = (): number => Number(o.map<number, bigint>('drops').lookup(0)!);

  it('delivers samples from every CPU, each in the buffer of the CPU that wrote it', async function () {
    const pb = new PerfBuffer(o.map('perf_events'));
    attach();
    await watched();
    const CALLS = 50;
    const childCpu = new Map<number, number>(); // pid -> the CPU it was pinned to
    for (const c of ONLINE) childCpu.set(getppidOn(c, CALLS), c);
    const perChild = new Map<number, number>();
    let samples = 0;
    const complete = (): boolean =>
      [...childCpu.keys()].every((pid) => (perChild.get(pid) ?? 0) >= CALLS);
    const reached = await readUntil(pb, (e) => {
      if (e.lost !== undefined) assert.fail(`${e.lost} samples lost on CPU ${e.cpu} with a 256 KiB buffer`);
      samples++;
      const s = sampleOf(e.data);
      // BPF_F_CURRENT_CPU: the CPU the program ran on is the buffer's CPU.
      assert.equal(s.cpu, e.cpu, `a sample written on CPU ${s.cpu} arrived from CPU ${e.cpu}'s buffer`);
      const pinned = childCpu.get(s.tgid);
      if (pinned !== undefined) {
        assert.equal(e.cpu, pinned, `child ${s.tgid} pinned to CPU ${pinned}`);
        perChild.set(s.tgid, (perChild.get(s.tgid) ?? 0) + 1);
      }
      return complete();
    });
    const got = [...childCpu].map(([pid, c]) => `CPU ${c}: ${perChild.get(pid) ?? 0}`).join(', ');
    assert.ok(reached, `within 5 s, samples of the pinned children: ${got} (of ${samples} samples in all)`);
    assert.equal(pb.closed, false);
    pb.close();
    assert.equal(pb.closed, true);
  });

  it('N getppid calls of this process give exactly N samples, seq increasing on each CPU', async function () {
    const pb = new PerfBuffer(o.map('perf_events'));
    attach();
    await watched();
    const N = 1_000;
    callGetppid(N);
    let mine = 0;
    const lastSeq = new Map<number, bigint>();
    const take = (e: PerfEvent): void => {
      if (e.lost !== undefined) assert.fail(`${e.lost} samples lost on CPU ${e.cpu}`);
      const s = sampleOf(e.data);
      const prev = lastSeq.get(e.cpu);
      if (prev !== undefined && s.seq <= prev) assert.fail(`CPU ${e.cpu}: seq ${s.seq} after ${prev}`);
      lastSeq.set(e.cpu, s.seq);
      if (s.tgid === process.pid) mine++;
    };
    const reached = await readUntil(pb, (e) => {
      take(e);
      return mine >= N;
    });
    assert.ok(reached, `${mine} of ${N} samples within 5 s`);
    // Whatever else the kernel holds now, and what was queued behind it.
    pb.consume();
    while (pb.stats.queued > 0) {
      const r = await pb.next();
      assert.equal(r.done, false);
      if (!r.done) take(r.value);
    }
    assert.equal(mine, N);
    assert.equal(drops(), 0, 'no failed bpf_perf_event_output');
    assert.equal(pb.stats.lost, 0);
    assert.ok(pb.stats.records >= N && pb.stats.batches >= 1, JSON.stringify(pb.stats));
    pb.close();
  });

  it('samples written before the first poll of a new buffer arrive at once, without another wakeup', async function () {
    // Mocha runs this inside a setImmediate callback: the buffer is made
    // while the event loop runs, and the samples are in the rings before
    // libuv first polls its fd. Nothing else wakes the loop but the guard.
    const pb = new PerfBuffer(o.map('perf_events'));
    attach();
    callGetppid(10);
    const t0 = Date.now();
    const guard = setTimeout(() => pb.close(), 3_000);
    let r: IteratorResult<PerfEvent>;
    try {
      r = await pb.next();
    } finally {
      clearTimeout(guard);
    }
    const ms = Date.now() - t0;
    assert.equal(r.done, false, 'no sample within 3 s');
    assert.ok(ms < 1_000, `the first sample took ${ms} ms: it waited for an unrelated wakeup (the guard timer)`);
    pb.close();
  });

  it('a one-page buffer that overflows reports the lost samples: as {cpu, lost} events and in stats.lost', async function () {
    const pb = new PerfBuffer(o.map('perf_events'), { pageCount: 1 });
    attach();
    await watched();
    const CALLS = 20_000;
    // The consumer cannot run during this loop: a 4 KiB ring holds ~128 samples.
    callGetppid(CALLS);
    let mine = 0;
    let lostSum = 0;
    let lostEvents = 0;
    const reader = (async () => {
      for await (const e of pb) {
        if (e.lost !== undefined) {
          assert.ok(Number.isInteger(e.lost) && e.lost > 0, `lost: ${e.lost}`);
          assert.ok(ONLINE.includes(e.cpu), `lost event of CPU ${e.cpu}`);
          lostSum += e.lost;
          lostEvents++;
        } else if (sampleOf(e.data).tgid === process.pid) {
          mine++;
        }
      }
    })();
    await sleep(100); // the reader empties the rings
    // The kernel writes its PERF_RECORD_LOST before the next sample that fits
    // in the ring: give every CPU's ring one.
    for (const c of ONLINE) {
      getppidOn(c, 5);
      await sleep(20);
    }
    const deadline = Date.now() + 3_000;
    while (Date.now() < deadline && (lostSum === 0 || lostSum < drops())) await sleep(20);
    pb.close();
    await reader;
    const failed = drops();
    assert.ok(lostEvents > 0, `no lost events (${mine} samples of this process, ${failed} failed outputs)`);
    assert.equal(pb.stats.lost, lostSum, 'stats.lost is the sum of the lost events');
    assert.ok(mine < CALLS, `${mine} samples of ${CALLS} arrived through a 4 KiB ring`);
    assert.ok(mine + pb.stats.lost >= CALLS, `received ${mine} + lost ${pb.stats.lost} < ${CALLS}`);
    // A full ring fails bpf_perf_event_output (-ENOSPC) as well: the BPF
    // side counts exactly the samples the kernel reports lost.
    assert.equal(failed, lostSum, 'drops[0] (failed outputs) = samples reported lost');
  });

  it('batches() yields arrays of events; decode maps each sample (and gets its CPU)', async function () {
    let decoded = 0;
    const pb = new PerfBuffer(o.map('perf_events'), {
      decode: (b: Buffer, cpu: number): Sample & { bufferCpu: number; length: number } => {
        decoded++;
        return { ...sampleOf(b), bufferCpu: cpu, length: b.length };
      },
    });
    attach();
    await watched();
    const N = 300;
    callGetppid(N);
    const timer = setTimeout(() => pb.close(), 5_000);
    let mine = 0;
    let arrays = 0;
    let events = 0;
    try {
      for await (const batch of pb.batches()) {
        assert.ok(Array.isArray(batch), 'a batch is an array');
        assert.ok(batch.length >= 1, 'a batch is never empty');
        arrays++;
        for (const e of batch) {
          events++;
          if (e.lost !== undefined) assert.fail(`${e.lost} samples lost on CPU ${e.cpu}`);
          const d = e.data;
          assert.equal(d.bufferCpu, e.cpu, 'decode gets the CPU of the sample');
          assert.equal(d.cpu, e.cpu);
          // 16 bytes of sample; the kernel pads raw data to 8 bytes minus 4
          assert.equal(d.length, 20);
          if (d.tgid === process.pid) mine++;
        }
        if (mine >= N) break;
      }
    } finally {
      clearTimeout(timer);
    }
    assert.equal(mine, N);
    assert.equal(decoded, events, 'decode ran once per sample');
    assert.ok(arrays >= 1 && arrays <= events);
    assert.equal(pb.closed, true, 'break out of batches() closes the buffer');
  });

  it('a decode that throws: the read rejects with its error (next() does not throw)', async function () {
    const bad = new Error('bad sample');
    const pb = new PerfBuffer(o.map('perf_events'), {
      decode: (): never => {
        throw bad;
      },
    });
    attach();
    callGetppid(5);
    assert.ok(pb.consume() >= 5, 'consume() delivers what the rings hold');
    let read: Promise<IteratorResult<PerfEvent<never>>>;
    try {
      read = pb.next();
    } catch (e) {
      assert.fail(`next() threw synchronously instead of rejecting: ${String(e)}`);
    }
    await assert.rejects(read, (e: unknown) => e === bad);
    pb.close();
  });

  it('break out of for await closes the buffer; later reads are done', async function () {
    const pb = new PerfBuffer(o.map('perf_events'));
    attach();
    await watched();
    callGetppid(10);
    let n = 0;
    for await (const e of pb) {
      assert.equal(e.lost, undefined);
      n++;
      break;
    }
    assert.equal(n, 1);
    assert.equal(pb.closed, true);
    assert.deepEqual(await pb.next(), { value: undefined, done: true });
    assert.equal(pb.consume(), 0);
  });

  it('close() during a pending read resolves it as done', async function () {
    const pb = new PerfBuffer(o.map('perf_events')); // nothing attached: nothing arrives
    const read = pb.next();
    assert.ok(await pendingAfter(read, 50), 'the read waits for a sample');
    pb.close();
    assert.deepEqual(await read, { value: undefined, done: true });
    assert.equal(pb.closed, true);
    pb.close(); // idempotent
  });

  it('aborting the signal during a pending read rejects the for await with the reason and closes', async function () {
    const ac = new AbortController();
    const pb = new PerfBuffer(o.map('perf_events'), { signal: ac.signal });
    const reason = new Error('stop');
    let n = 0;
    const loop = (async () => {
      for await (const e of pb) n += e.cpu >= 0 ? 1 : 0;
    })();
    await sleep(30);
    assert.equal(pb.closed, false);
    ac.abort(reason);
    await assert.rejects(loop, (e: unknown) => e === reason);
    assert.equal(n, 0);
    assert.equal(pb.closed, true);
  });

  it('a signal that is already aborted: the first next() rejects with its reason', async function () {
    const reason = new Error('aborted before');
    const pb = new PerfBuffer(o.map('perf_events'), { signal: AbortSignal.abort(reason) });
    assert.equal(pb.closed, true);
    await assert.rejects(pb.next(), (e: unknown) => e === reason);
  });

  it('closing the BpfObject under a live PerfBuffer ends its pending read (done)', async function () {
    const pb = new PerfBuffer(o.map('perf_events'));
    attach();
    await watched();
    callGetppid(3);
    // One read is served, the next waits: nothing more comes from this process.
    assert.equal((await pb.next()).done, false);
    while (pb.stats.queued > 0) await pb.next();
    const read = pb.next(); // the queue is empty: this read waits
    o.close();
    assert.deepEqual(await read, { value: undefined, done: true });
    assert.equal(pb.closed, true);
    assert.deepEqual(await pb.next(), { value: undefined, done: true });
    pb.close(); // still idempotent
  });

  it('closing a standalone perf_event_array map ends a PerfBuffer over it', async function () {
    const map = BpfMap.create({ type: 'perf_event_array', keySize: 4, valueSize: 4, maxEntries: ONLINE.length });
    try {
      const pb = new PerfBuffer(map);
      assert.equal(pb.map, map);
      const read = pb.next();
      assert.ok(await pendingAfter(read, 20));
      map.close();
      assert.deepEqual(await read, { value: undefined, done: true });
      assert.equal(pb.closed, true);
    } finally {
      map.close();
    }
  });

  it('bad input: a map of another type, a pageCount that is not a power of two, a map not loaded yet', function () {
    for (const name of ['drops', 'seqs']) { // an array, a per-CPU array
      withoutFdLeak(() => {
        throwsWith(() => new PerfBuffer(o.map(name)),
          { code: 'ERR_INVALID_ARG_VALUE', message: new RegExp(`'${name}'`) }, TypeError);
      });
    }
    for (const pageCount of [3, 0, 6, 1.5]) {
      withoutFdLeak(() => {
        throwsWith(() => new PerfBuffer(o.map('perf_events'), { pageCount }), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
      });
    }
    const opened = new BpfObject(obj('perf_test'));
    try {
      withoutFdLeak(() => {
        throwsWith(() => new PerfBuffer(opened.map('perf_events')),
          { code: 'ERR_INVALID_STATE', message: /perf_events/ }, TypeError);
      });
    } finally {
      opened.close();
    }
    const closed = new BpfObject(obj('perf_test')).load();
    const m = closed.map('perf_events');
    closed.close();
    withoutFdLeak(() => {
      throwsWith(() => new PerfBuffer(m), { code: 'ERR_INVALID_STATE' }, TypeError);
    });
  });

  it('bad input: highWaterMark, like pageCount, is a number out of range (RangeError) or of the wrong type (TypeError)', function () {
    for (const highWaterMark of [0, -1, 1.5]) {
      withoutFdLeak(() => {
        throwsWith(() => new PerfBuffer(o.map('perf_events'), { highWaterMark }), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
      });
    }
    withoutFdLeak(() => {
      throwsWith(() => new PerfBuffer(o.map('perf_events'), { highWaterMark: '1' as unknown as number }),
        { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    });
  });
});

describe('PerfBuffer fed by BPF_PROG_TEST_RUN of a raw tracepoint program on a chosen CPU (perf_test perf_burst)', function () {
  let o: BpfObject;
  beforeEach(() => {
    o = new BpfObject(obj('perf_test')).load();
  });
  afterEach(() => o.close());
  // raw_tp's context is its u64 arguments: { count }; BPF_F_TEST_RUN_ON_CPU runs it on opts.cpu
  const burst = (count: number, cpu: number): number => {
    const ctx = Buffer.alloc(8);
    ctx.writeBigUInt64LE(BigInt(count));
    const r = o.program('perf_burst').testRun({ ctx, flags: 1, cpu });
    assert.equal(r.ctxOut, undefined, 'a raw tracepoint has no ctx_out (asking for one is EINVAL)');
    return r.retval;
  };

  it('on every online CPU: N samples written there arrive from that CPU\'s buffer, exactly seq 0..N-1', async function () {
    const pb = new PerfBuffer(o.map('perf_events'), { pageCount: 16 });
    for (const cpu of ONLINE) {
      assert.equal(burst(1000, cpu), 1000);
      const seqs: number[] = [];
      while (seqs.length < 1000) {
        for (const e of (await pb.nextBatch()).value as PerfEvent[]) {
          if (e.lost !== undefined) assert.fail(`${e.lost} lost on CPU ${e.cpu}`);
          assert.equal(e.data.length, 20, 'a 16-byte sample, padded by the kernel to 8 bytes minus 4');
          const s = sampleOf(e.data);
          // (tgid is not ours: a run on another CPU goes there by IPI)
          assert.deepEqual([e.cpu, s.cpu], [cpu, cpu]);
          seqs.push(Number(s.seq));
        }
      }
      assert.deepEqual(seqs, Array.from({ length: 1000 }, (_, i) => i));
    }
    pb.close();
  });

  it('a one-page buffer overflowed by one burst: the samples that fit, then one lost notice with the exact count of the rest', async function () {
    const pb = new PerfBuffer(o.map('perf_events'), { pageCount: 1 });
    const cpu = ONLINE[ONLINE.length - 1]!;
    const fit = burst(1000, cpu);
    assert.ok(fit > 0 && fit < 1000, `${fit} of 1000 fit in one page`);
    const events: PerfEvent[] = [];
    while (events.length < fit) events.push(...((await pb.nextBatch()).value as PerfEvent[]));
    // The kernel writes its lost notice with the next sample that finds room.
    assert.equal(burst(1, cpu), 1);
    while (events.length < fit + 2) events.push(...((await pb.nextBatch()).value as PerfEvent[]));
    assert.deepEqual(events.map((e) => e.lost === undefined ? Number(sampleOf(e.data).seq) : `lost ${e.lost}`),
      [...Array.from({ length: fit }, (_, i) => i), `lost ${1000 - fit}`, 0]);
    assert.equal(pb.stats.lost, 1000 - fit);
    pb.close();
  });
});

describe('PerfBuffer and the event loop', function () {
  this.timeout(30_000);
  const lib = path.join(ROOT, 'dist', 'ts', 'index.js');
  const scripts: string[] = [];
  before(() => ensureTracefs());
  after(() => {
    for (const s of scripts) rmSync(s, { force: true });
  });

  // Runs a CommonJS script that has `L` (the library) and `o` (perf_test,
  // loaded) in scope; it must end by itself.
  function runChild(name: string, body: string): string {
    const file = path.join(tmpdir(), `libbpf-node-perf-${process.pid}-${name}.js`);
    scripts.push(file);
    writeFileSync(file, [
      `const L = require(${JSON.stringify(lib)});`,
      `const o = new L.BpfObject(${JSON.stringify(obj('perf_test'))}).load();`,
      body,
    ].join('\n'));
    const started = Date.now();
    const r = spawnSync(process.execPath, [file], { timeout: 10_000, encoding: 'utf8' });
    const ms = Date.now() - started;
    const why = r.signal === 'SIGTERM' ? 'killed at the timeout: it did not exit by itself' : 'it crashed';
    assert.equal(r.signal, null, `${name}: ended by ${r.signal} after ${ms} ms (${why}): ${r.stderr.split('\n')[0]}`);
    assert.equal(r.status, 0, `${name}: exit status ${r.status}: ${r.stderr}`);
    return r.stdout;
  }

  it('exits by itself after breaking out of for await, without closing anything', function () {
    const out = runChild('break', `
      const pb = new L.PerfBuffer(o.map('perf_events'));
      o.program('perf_getppid').attach();
      (async () => {
        process.ppid;
        for await (const e of pb) { console.log('sample', e.cpu); break; }
      })();
    `);
    assert.match(out, /^sample \d+$/m);
  });

  it('exits by itself with a PerfBuffer that is never read', function () {
    const out = runChild('idle', `
      const pb = new L.PerfBuffer(o.map('perf_events'));
      o.program('perf_getppid').attach();
      for (let i = 0; i < 100; i++) process.ppid;
      console.log('closed', pb.closed);
    `);
    assert.equal(out.trim(), 'closed false');
  });

  it('a pending read keeps the process alive; once served, nothing does', function () {
    // The only other thing in the loop is an unref'd timer: without the
    // reading poll handle the process would exit before it fires.
    const out = runChild('pending', `
      const pb = new L.PerfBuffer(o.map('perf_events'));
      o.program('perf_getppid').attach();
      pb.next().then((r) => console.log('got', r.done ? 'done' : 'sample'));
      setTimeout(() => { for (let i = 0; i < 10; i++) process.ppid; }, 300).unref();
    `);
    assert.equal(out.trim(), 'got sample');
  });

  it('a decode that throws while a read waits: the read rejects with its error, no crash', function () {
    const out = runChild('decode-throws', `
      const bad = new Error('bad sample');
      const pb = new L.PerfBuffer(o.map('perf_events'), { decode: () => { throw bad; } });
      o.program('perf_getppid').attach();
      pb.next().then(() => console.log('resolved'), (e) => console.log('rejected', e === bad));
      setTimeout(() => { for (let i = 0; i < 10; i++) process.ppid; }, 50);
    `);
    assert.equal(out.trim(), 'rejected true');
  });
});
