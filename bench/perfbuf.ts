// The Node consumer of the perf buffer benchmark: `for await` over a
// PerfBuffer on perf_bench's events, fed by bench/producer's getppid loop
// (a tracepoint), exactly as bench/consumer.c perfbuf is. One JSON line.
//   node perfbuf.js TOTAL PRODUCER PAGES
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { BpfObject, PerfBuffer } from '../ts/index.js';

async function main(): Promise<void> {
  const [totalArg, producer, pagesArg] = process.argv.slice(2) as [string, string, string];
  const total = Number(totalArg);
  const obj = new BpfObject(path.join(__dirname, '..', '..', 'bpf', 'perf_bench.bpf.o')).load();
  const pb = new PerfBuffer(obj.map('events'), { pageCount: Number(pagesArg) });
  const child = spawn(producer, ['getppid', totalArg], { stdio: ['pipe', 'inherit', 'inherit'] });
  obj.map('target').update(0, BigInt(child.pid!));
  const link = obj.program('perf_getppid').attach();
  let received = 0;
  let lost = 0;
  let sum = 0;
  let exited = false;
  child.on('exit', () => {
    exited = true;
    // What the buffers still hold arrives now; then the stream ends.
    while (pb.consume() > 0);
    if (pb.counters.queued === 0) pb.close();
  });
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  child.stdin!.write('go\n');
  for await (const e of pb) {
    if (e.lost !== undefined) {
      lost += e.lost;
    } else {
      // the same work as C's consumer: the length checked, the data read
      if (e.data.length < 16) throw new Error(`record of ${e.data.length} bytes`); // perf pads raw samples: 20 bytes here
      sum += e.data[0]!;
      received++;
    }
    if (exited && pb.counters.queued === 0) pb.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  delay.disable();
  const drops = Number(obj.map<number, bigint>('drops').lookup(0));
  link.detach();
  obj.close();
  console.log(JSON.stringify({
    consumer: 'node', mode: 'perfbuf', produced: total, received, drops, lost, seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    maxRssKb: Math.round(process.resourceUsage().maxRSS),
    loopDelayP99Ms: delay.percentile(99) / 1e6,
    checked: sum,
  }));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
