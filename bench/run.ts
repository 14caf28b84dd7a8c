// npm run bench: builds the C baseline (bench/consumer.c, bench/producer.c,
// against the system libbpf) and runs it and the Node consumers on the same
// producers in this run, then prints ratios. Absolute numbers depend on the
// machine; the ratios are what the README quotes.
//   options: --quick (smaller counts), --json (raw results, one per line),
//   --maps (only the map section)
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');
const OUT = path.join(ROOT, 'bench', 'build');
const OBJ = path.join(ROOT, 'bpf', 'stream_test.bpf.o');
const quick = process.argv.includes('--quick');
const json = process.argv.includes('--json');

interface RingResult {
  consumer: string; mode: string; produced: number; received: number; drops: number;
  seconds: number; cpuSeconds: number; maxRssKb: number; loopDelayP99Ms?: number;
  rssAt10MKb?: number; rssAtEndKb?: number;
  memTrace?: { m: number; rssMb: number; heapTotalMb: number; heapUsedMb: number; arrayBuffersMb: number }[];
}
interface MapResult { consumer: string; entries: number; keyByKeySeconds: number; batchSeconds: number; lookupBatchSeconds?: number; lookupBatchRawSeconds?: number; lookupBatchIntoSeconds?: number }
// bench/maps.c and bench/maps.ts: ns of CPU time per operation.
interface MapOpsResult {
  consumer: string; ops: number;
  arrayLookupNs: number; arrayUpdateNs: number; hashLookupNs: number; hashUpdateNs: number;
  typedArrayLookupNs?: number; typedArrayUpdateNs?: number; typedHashLookupNs?: number; typedHashUpdateNs?: number;
  mmapableSyscallLookupNs: number; mmapReadNs: number; mmapDataViewReadNs?: number;
}
interface DecodeResult { rawPerSecond: number; decodedPerSecond: number; decodeNsPerRecord: number; decodedOverRaw: number }

function run<T>(cmd: string, args: string[]): T {
  const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const line = out.trim().split('\n').pop()!;
  if (json) console.log(line);
  return JSON.parse(line) as T;
}

function build(): { consumer: string; producer: string } {
  mkdirSync(OUT, { recursive: true });
  const cc = (name: string): string => {
    const exe = path.join(OUT, name);
    execFileSync('gcc', ['-O2', '-Wall', '-o', exe, path.join(ROOT, 'bench', `${name}.c`), '-lbpf'], { stdio: 'inherit' });
    return exe;
  };
  return { consumer: cc('consumer'), producer: cc('producer') };
}

const node = (script: string, args: string[]): string[] => [path.join(ROOT, 'dist', 'bench', script), ...args];
const rate = (r: RingResult): number => r.received / r.seconds;
const M = (n: number): string => `${(n / 1e6).toFixed(2)} M/s`;
const ns = (r: RingResult): string => `${((r.cpuSeconds * 1e9) / r.received).toFixed(0)} ns`;

// One table per producer: the C consumer first, then each Node consumer
// with its ratios to C; drops (failed reserves, counted by the BPF side)
// beside every rate, since a rate alone hides records the kernel dropped.
function ringRows(label: string, c: RingResult, nodes: [string, RingResult][], cName = 'C ring_buffer__poll'): void {
  console.log(`\n${label}`);
  console.log(`  ${'consumer'.padEnd(24)}${'events/s'.padStart(11)}${'received'.padStart(11)}${'drops'.padStart(10)}${'drop %'.padStart(8)}` +
    `${'CPU/event'.padStart(10)}${'peak RSS'.padStart(10)}${'loop p99'.padStart(10)}${'ev/s ÷ C'.padStart(10)}${'CPU ÷ C'.padStart(9)}`);
  const cpu = (r: RingResult): number => r.cpuSeconds / Math.max(1, r.received);
  for (const [name, r] of [[cName, c] as [string, RingResult], ...nodes]) {
    console.log(`  ${name.padEnd(24)}${M(rate(r)).padStart(11)}${String(r.received).padStart(11)}${String(r.drops).padStart(10)}` +
      `${`${((100 * r.drops) / r.produced).toFixed(1)}%`.padStart(8)}${ns(r).padStart(10)}${`${(r.maxRssKb / 1024).toFixed(0)} MiB`.padStart(10)}` +
      `${r.loopDelayP99Ms === undefined ? '' : `${r.loopDelayP99Ms.toFixed(1)} ms`}`.padStart(10) +
      `${r === c ? '' : (rate(r) / rate(c)).toFixed(2)}`.padStart(10) + `${r === c ? '' : (cpu(r) / cpu(c)).toFixed(2)}`.padStart(9));
  }
}

function main(): void {
  const { consumer, producer } = build();
  if (process.argv.includes('--maps')) return maps(consumer);
  const N = quick ? 5_000_000 : 20_000_000;
  const T = quick ? 500_000 : 2_000_000;

  console.log('Ring buffer, 8 MiB ring unless said, producer in another process; Node reads the mapped ring');
  const c1 = run<RingResult>(consumer, [OBJ, 'ringbuf', 'testrun', String(N), producer, '256']);
  const n1 = run<RingResult>('node', node('ringbuf.js', ['testrun', String(N), producer, '256']));
  const n1b = run<RingResult>('node', node('ringbuf.js', ['testrun', String(N), producer, '256', '--batches']));
  const n1t = run<RingResult>('node', node('ringbuf.js', ['testrun', String(N), producer, '256', '--thread']));
  const n1r = run<RingResult>('node', node('ringbuf.js', ['testrun', String(N), producer, '256', '--records']));
  ringRows(`16-byte records, BPF_PROG_TEST_RUN producer (bpf_loop, ${N / 1e6}M records, one wakeup per 256), flat out:`, c1,
    [['Node for await (Buffer)', n1], ['Node batches()', n1b], ['Node recordBatches()', n1r], ["Node drain: 'thread'", n1t]]);

  const c3 = run<RingResult>(consumer, [OBJ, 'ringbuf', 'testrun', String(N), producer, '0', '--event64']);
  const n3d = run<RingResult>('node', node('ringbuf.js', ['testrun', String(N), producer, '0', '--event64', '--decoded']));
  const n3r = run<RingResult>('node', node('ringbuf.js', ['testrun', String(N), producer, '0', '--event64']));
  ringRows(`64-byte struct event64 records, same producer (adaptive wakeups), C decoding into a struct, flat out:`, c3,
    [['Node for await, BTF', n3d], ['Node for await (Buffer)', n3r]]);
  console.log(`  decoded/raw events/s (Node): ${(rate(n3d) / rate(n3r)).toFixed(2)}`);

  const c2 = run<RingResult>(consumer, [OBJ, 'ringbuf', 'getppid', String(T), producer]);
  const n2 = run<RingResult>('node', node('ringbuf.js', ['getppid', String(T), producer]));
  ringRows(`Tracepoint producer (sys_enter_getppid, ${T / 1e6}M syscalls in a loop):`, c2, [['Node for await (Buffer)', n2]]);

  const PERF = path.join(ROOT, 'bpf', 'perf_bench.bpf.o');
  const cp = run<RingResult>(consumer, [PERF, 'perfbuf', String(T), producer, '64']);
  const np = run<RingResult>('node', node('perfbuf.js', [String(T), producer, '64']));
  ringRows(`Perf buffer, tracepoint producer (sys_enter_getppid, ${T / 1e6}M syscalls in a loop, 64 pages per CPU), 16-byte samples:`, cp,
    [['Node for await (PerfBuffer)', np]], 'C perf_buffer__poll');

  // A briefly busy event loop: 1 M records/s (1,000 every millisecond) for
  // P seconds; 500 ms in, the consumer stops for 100 ms (C: usleep; Node: a
  // synchronous busy loop). 256 KiB is the ring size our objects declare.
  const P = quick ? 1_000_000 : 3_000_000;
  for (const ring of [256 << 10, 8 << 20]) {
    const r = `--ring=${ring}`;
    const cs = run<RingResult>(consumer, [OBJ, 'ringbuf', 'paced', String(P), producer, '1000000', r, '--stall=100']);
    const ns0 = run<RingResult>('node', node('ringbuf.js', ['paced', String(P), producer, '1000000', r]));
    const nsb = run<RingResult>('node', node('ringbuf.js', ['paced', String(P), producer, '1000000', r, '--stall=100']));
    const nst = run<RingResult>('node', node('ringbuf.js', ['paced', String(P), producer, '1000000', r, '--stall=100', '--thread']));
    ringRows(`Event loop blocked for 100 ms at 1 M records/s (16-byte records, ${P / 1e6}M records, ${ring >> 10} KiB ring):`, cs,
      [['Node, loop not blocked', ns0], ['Node, loop blocked 100 ms', nsb], ["Node 'thread', blocked", nst]], 'C, blocked 100 ms');
  }

  // Twice: with V8's defaults, and with its young generation at its
  // ceiling (16 MiB semi-spaces, Node 20's maximum) from the start. V8 grows
  // the young generation once the bytes surviving scavenges add up to its
  // size, which in a long run they always do, whatever the library keeps
  // alive; the second run shows what RSS does without that step.
  const R = quick ? 20_000_000 : 100_000_000;
  for (const [how, flags] of [['V8 defaults', []], ['young generation fixed, --min-semi-space-size=16', ['--min-semi-space-size=16']]] as const) {
    const rss = run<RingResult>('node', [...flags, ...node('ringbuf.js', ['testrun', String(R), producer, '256', '--rss'])]);
    const grew = rss.rssAtEndKb! / rss.rssAt10MKb!;
    console.log(`\nNode RSS over a long run (${(rss.received / 1e6).toFixed(0)}M records received; ${how}): ` +
      `${(rss.rssAt10MKb! / 1024).toFixed(0)} MiB at 10M records, ${(rss.rssAtEndKb! / 1024).toFixed(0)} MiB at the end (x${grew.toFixed(2)})`);
    console.log('  every 10M records, MiB (RSS / V8 heap total / heap used / ArrayBuffers): ' +
      rss.memTrace!.map((t) => `${t.m}M ${t.rssMb}/${t.heapTotalMb}/${t.heapUsedMb}/${t.arrayBuffersMb}`).join(', '));
  }

  maps(consumer);

  const d = run<DecodeResult>('node', node('decode.js', [quick ? '10' : '40']));
  console.log('\nDecoding 64-byte records from BTF (struct event64) through for await:');
  console.log(`  raw ${M(d.rawPerSecond)}, decoded ${M(d.decodedPerSecond)}: decoding costs ${d.decodeNsPerRecord.toFixed(0)} ns/record, ` +
    `decoded/raw ${d.decodedOverRaw.toFixed(2)}`);
}

// The map section: iteration (bench/mapiter.ts against consumer.c mapiter)
// and per-op access. `--maps` runs only this section.
function maps(consumer: string): void {
  const E = quick ? 200_000 : 1_000_000;
  const cm = run<MapResult>(consumer, [OBJ, 'mapiter', String(E)]);
  const nm = run<MapResult>('node', node('mapiter.js', [String(E)]));
  console.log(`\nHash map iteration, ${E / 1e6}M entries (u32 -> u64; key by key once, batch dumps the fastest of 3 runs, both sides):`);
  console.log(`  ${''.padEnd(14)}${'key by key'.padStart(14)}${'batch'.padStart(14)}${'batch speedup'.padStart(15)}`);
  for (const r of [cm, nm]) {
    console.log(`  ${r.consumer.padEnd(14)}${M(E / r.keyByKeySeconds).padStart(14)}${M(E / r.batchSeconds).padStart(14)}` +
      `${`x${(r.keyByKeySeconds / r.batchSeconds).toFixed(2)}`.padStart(15)}`);
  }
  console.log(`  Node/C entries/s: key by key ${(cm.keyByKeySeconds / nm.keyByKeySeconds).toFixed(2)}, batch (for await) ${(cm.batchSeconds / nm.batchSeconds).toFixed(2)}` +
    `, batch (lookupBatch()) ${(cm.batchSeconds / nm.lookupBatchSeconds!).toFixed(2)}, batch (lookupBatchRaw()) ${(cm.batchSeconds / nm.lookupBatchRawSeconds!).toFixed(2)}` +
    `, batch (lookupBatchInto()) ${(cm.batchSeconds / nm.lookupBatchIntoSeconds!).toFixed(2)}`);

  mapOps();
}

// Per-op map access: bench/maps.c and bench/maps.ts, run in turns (C,
// Node, C, Node, ...) so that a change in the machine's load hits both;
// each figure is the fastest of its runs (CPU time per op).
function mapOps(): void {
  const exe = path.join(OUT, 'maps');
  execFileSync('gcc', ['-O2', '-Wall', '-o', exe, path.join(ROOT, 'bench', 'maps.c'), '-lbpf'], { stdio: 'inherit' });
  const n = String(quick ? 100_000 : 300_000);
  const fastest = (rs: MapOpsResult[]): MapOpsResult => {
    const out = { ...rs[0]! } as unknown as Record<string, number>;
    for (const r of rs.slice(1)) {
      for (const [k, v] of Object.entries(r)) if (typeof v === 'number' && k !== 'ops') out[k] = Math.min(out[k]!, v);
    }
    return out as unknown as MapOpsResult;
  };
  const cs: MapOpsResult[] = [];
  const ns: MapOpsResult[] = [];
  for (let round = 0; round < 3; round++) {
    cs.push(run<MapOpsResult>(exe, [n]));
    ns.push(run<MapOpsResult>('node', node('maps.js', [n])));
  }
  const c = fastest(cs);
  const v = fastest(ns);
  const f = (x: number): string => `${x.toFixed(0)} ns`;
  console.log(`\nPer-op map access, 1024 u32 -> u64, ${Number(n) / 1e3}k ops per run (CPU time per op; one bpf() syscall each):`);
  console.log(`  ${'operation'.padEnd(16)}${'C'.padStart(10)}${'Node raw'.padStart(11)}${'Node/C'.padStart(8)}${'Node typed'.padStart(12)}${'Node/C'.padStart(8)}`);
  const rows: [string, number, number, number | undefined][] = [
    ['array lookup', c.arrayLookupNs, v.arrayLookupNs, v.typedArrayLookupNs],
    ['array update', c.arrayUpdateNs, v.arrayUpdateNs, v.typedArrayUpdateNs],
    ['hash lookup', c.hashLookupNs, v.hashLookupNs, v.typedHashLookupNs],
    ['hash update', c.hashUpdateNs, v.hashUpdateNs, v.typedHashUpdateNs],
  ];
  for (const [label, cn, raw, typed] of rows) {
    console.log(`  ${label.padEnd(16)}${f(cn).padStart(10)}${f(raw).padStart(11)}${(raw / cn).toFixed(2).padStart(8)}` +
      `${typed === undefined ? '' : f(typed).padStart(12) + (typed / cn).toFixed(2).padStart(8)}`);
  }
  console.log(`  mmapable array, one u64 read: C syscall lookup ${f(c.mmapableSyscallLookupNs)}, ` +
    `Node lookup() ${f(v.mmapableSyscallLookupNs)}, Node memory() BigUint64Array ${v.mmapReadNs.toFixed(2)} ns, ` +
    `DataView ${v.mmapDataViewReadNs!.toFixed(2)} ns (C through the mapping ${c.mmapReadNs.toFixed(2)} ns)`);
  console.log(`  memory() reads vs C syscall lookups: x${(c.mmapableSyscallLookupNs / v.mmapReadNs).toFixed(0)} (BigUint64Array), ` +
    `x${(c.mmapableSyscallLookupNs / v.mmapDataViewReadNs!).toFixed(0)} (DataView) faster`);
}

main();
