// The Node consumer of the ring buffer benchmark: `for await` over a
// RingBuffer on stream_test's ring_a (8 MiB), fed by bench/producer in
// another process, exactly as bench/consumer.c is. Prints one JSON line.
//   node ringbuf.js testrun|getppid TOTAL PRODUCER [WAKEUP_EVERY] [--rss]
// With --rss, the producer writes until TOTAL records have been *received*
// (it writes ten times as many, and is stopped then), and the RSS at 10M
// received is compared with the RSS at the end.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { BpfObject, RingBuffer } from '../ts/index.js';

async function main(): Promise<void> {
  const [mode, totalArg, producer, wakeupArg] = process.argv.slice(2) as [string, string, string, string?];
  const wakeup = wakeupArg && wakeupArg !== '--rss' ? wakeupArg : '0';
  const total = Number(totalArg);
  const rssProbe = process.argv.includes('--rss');
  const obj = new BpfObject(path.join(__dirname, '..', '..', 'bpf', 'stream_test.bpf.o'));
  obj.map('ring_a').maxEntries = 8 << 20;
  obj.load();
  const rb = new RingBuffer(obj.map('ring_a'));
  const pin = `/sys/fs/bpf/lbn-bench-node-${process.pid}`;
  let args: string[];
  let slot: number;
  if (mode === 'testrun') {
    obj.program('produce').pin(pin);
    args = ['testrun', pin, String(rssProbe ? total * 10 : total), '4096', wakeup];
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
  for await (const r of rb) {
    received++;
    if (r.length !== 16) throw new Error(`record of ${r.length} bytes`);
    if (rssProbe && received === 10_000_000) rssAt10M = process.memoryUsage.rss();
    if (rssProbe && received === total) {
      child.kill();
      break;
    }
    if (finishing && rb.counters.queued === 0) finish();
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  delay.disable();
  const drops = Number(obj.map<number, bigint>('drops').lookup(slot));
  if (mode === 'testrun') obj.program('produce').unpin();
  obj.close();
  console.log(JSON.stringify({
    consumer: 'node', mode, produced: total, received, drops, seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    maxRssKb: Math.round(process.resourceUsage().maxRSS),
    loopDelayP99Ms: delay.percentile(99) / 1e6,
    batches: rb.stats.batches,
    ...(rssProbe ? { rssAt10MKb: Math.round(rssAt10M / 1024), rssAtEndKb: Math.round(process.memoryUsage.rss() / 1024) } : {}),
  }));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
