// The Node consumer of the ring buffer benchmark: `for await` over a
// RingBuffer on stream_test's ring_a (8 MiB), fed by bench/producer in
// another process, exactly as bench/consumer.c is. Prints one JSON line.
//   node ringbuf.js testrun|getppid|paced TOTAL PRODUCER [WAKEUP_EVERY|RATE] [--rss]
//     [--event64] (produce64's 64-byte struct event64 records) [--decoded]
//     (decoded from BTF, type 'struct event64') [--batches] (batches()
//     instead of for await over records) [--ring=BYTES] [--stall=MS] (block
//     the event loop for MS once, 500 ms after the start) [--thread]
//     (drain: 'thread')
// With --rss, the producer writes until TOTAL records have been *received*
// (it writes ten times as many, and is stopped then), and the RSS at 10M
// received is compared with the RSS at the end.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { BpfObject, RingBuffer } from '../ts/index.js';

async function main(): Promise<void> {
  const [mode, totalArg, producer, wakeupArg] = process.argv.slice(2) as [string, string, string, string?];
  const wakeup = wakeupArg && !wakeupArg.startsWith('--') ? wakeupArg : '0';
  const total = Number(totalArg);
  const rssProbe = process.argv.includes('--rss');
  const event64 = process.argv.includes('--event64');
  const decoded = process.argv.includes('--decoded');
  const batches = process.argv.includes('--batches');
  const records = process.argv.includes('--records');
  const flag = (name: string): number | undefined => {
    const a = process.argv.find((x) => x.startsWith(`--${name}=`));
    return a === undefined ? undefined : Number(a.slice(name.length + 3));
  };
  const stallMs = flag('stall');
  const obj = new BpfObject(path.join(__dirname, '..', '..', 'bpf', 'stream_test.bpf.o'));
  obj.map('ring_a').maxEntries = flag('ring') ?? 8 << 20;
  obj.load();
  if (event64) obj.map('event64_template').update(0, { pid: 4242, tid: 4243, cpu: 1, ret: -2, comm: 'benchmark', b: 7n, c: 8n });
  const thread = process.argv.includes('--thread');
  const drain = thread ? 'thread' : 'loop';
  const rb = decoded ? new RingBuffer<unknown>(obj.map('ring_a'), { type: 'struct event64', drain }) : new RingBuffer<unknown>(obj.map('ring_a'), { drain });
  const pin = `/sys/fs/bpf/lbn-bench-node-${process.pid}`;
  let args: string[];
  let slot: number;
  const prog = event64 ? 'produce64' : 'produce';
  if (mode === 'testrun') {
    obj.program(prog).pin(pin);
    args = ['testrun', pin, String(rssProbe ? total * 10 : total), '4096', wakeup];
    slot = 0;
  } else if (mode === 'paced') {
    obj.program(prog).pin(pin);
    args = ['paced', pin, String(total), wakeup];
    slot = 0;
  } else {
    args = ['getppid', String(total)];
    slot = 2;
  }
  const child = spawn(producer, args, { stdio: ['pipe', 'inherit', 'inherit'] });
  if (slot === 2) {
    obj.map('config').update(0, BigInt(child.pid!));
    obj.attach().forEach((l) => { if (l.programId !== obj.program('ring_getppid').id) l.detach(); });
  }

  let received = 0;
  let finishing = false;
  let rssAt10M = 0;
  // RSS and the live JavaScript heap at every 10M records: where RSS grows,
  // whether it is V8 sizing its heap (heapTotal) or something kept (heapUsed).
  const memTrace: { m: number; rssMb: number; heapTotalMb: number; heapUsedMb: number; arrayBuffersMb: number }[] = [];
  // The producer is done: drain what the ring still holds, then stop.
  const finish = (): void => {
    finishing = true;
    while (rb.consume() > 0);
    if (rb.counters.queued === 0) rb.close();
  };
  child.on('exit', finish);

  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  child.stdin!.write('go\n');
  if (stallMs !== undefined) {
    setTimeout(() => {
      const until = performance.now() + stallMs;
      while (performance.now() < until);
    }, 500);
  }
  let checked = 0;
  // The same work per record as bench/consumer.c: a length check, or the
  // decoded struct's fields read.
  const check = (r: unknown): void => {
    if (decoded) {
      const e = r as { pid: number; comm: string };
      if (e.pid === 4242 && e.comm === 'benchmark') checked++;
    } else if ((r as Buffer).length !== (event64 ? 64 : 16)) {
      throw new Error(`record of ${(r as Buffer).length} bytes`);
    }
  };
  if (records) {
    // recordBatches(): one copy per batch, the records read in place (the
    // same work as C's consumer: the length checked, the data read).
    let sum = 0;
    for await (const b of rb.recordBatches()) {
      const { buffer, offsets, lengths } = b;
      for (let i = 0; i < b.length; i++) {
        if (lengths[i] !== (event64 ? 64 : 16)) throw new Error(`record of ${lengths[i]} bytes`);
        sum += buffer[offsets[i]!]!;
      }
      received += b.length;
      if (finishing && rb.counters.queued === 0) finish();
    }
    if (sum < 0) throw new Error('unreachable');
  } else if (batches) {
    for await (const batch of rb.batches()) {
      for (const r of batch) check(r);
      received += batch.length;
      if (finishing && rb.counters.queued === 0) finish();
    }
  } else {
    for await (const r of rb) {
      received++;
      check(r);
      if (rssProbe && received === 10_000_000) rssAt10M = process.memoryUsage.rss();
      if (rssProbe && received % 10_000_000 === 0) {
        const m = process.memoryUsage();
        const mb = (n: number): number => Math.round(n / (1 << 20));
        memTrace.push({ m: received / 1e6, rssMb: mb(m.rss), heapTotalMb: mb(m.heapTotal), heapUsedMb: mb(m.heapUsed), arrayBuffersMb: mb(m.arrayBuffers) });
      }
      if (rssProbe && received === total) {
        child.kill();
        break;
      }
      if (finishing && rb.counters.queued === 0) finish();
    }
  }
  if (decoded && checked !== received) throw new Error(`${checked} of ${received} records decoded as expected`);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  delay.disable();
  const drops = Number(obj.map<number, bigint>('drops').lookup(slot));
  if (mode !== 'getppid') obj.program(prog).unpin();
  obj.close();
  console.log(JSON.stringify({
    consumer: 'node', mode: `${mode}${event64 ? (decoded ? ' event64 decoded' : ' event64 raw') : ''}${batches ? ' batches()' : ''}${records ? ' recordBatches()' : ''}${thread ? ' thread' : ''}`, produced: total, received, drops, seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    maxRssKb: Math.round(process.resourceUsage().maxRSS),
    loopDelayP99Ms: delay.percentile(99) / 1e6,
    batches: rb.stats.batches,
    ...(rssProbe ? { rssAt10MKb: Math.round(rssAt10M / 1024), rssAtEndKb: Math.round(process.memoryUsage.rss() / 1024), memTrace } : {}),
  }));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
