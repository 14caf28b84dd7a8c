// libbpf-node/metrics: maps and program statistics as Prometheus metrics
// (a real prom-client Registry) and OpenTelemetry data points (the real SDK),
// with values the kernel filed: a socket filter run on known packets with
// BPF_PROG_TEST_RUN (bpf/metrics_test.bpf.c), the sock_example filter on
// real traffic, and runqlat on the scheduler's tracepoints.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { closeSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import * as path from 'node:path';
import { Registry } from 'prom-client';
import { MeterProvider, MetricReader, DataPointType, type HistogramMetricData, type SumMetricData } from '@opentelemetry/sdk-metrics';
import { BpfObject, enableStats, openRawSocket, type BpfMap, type PerCpu } from '../ts/index.js';
import {
  mapCounter, mapLog2Histogram, observeOtel, otelMetricProducer, programStats, prometheusCollector, registerPrometheus,
  type HistogramPoint,
} from '../ts/metrics/index.js';
import { ROOT, obj, throwsWith } from './helpers.js';

interface LenHist { slots: BigUint64Array; sum: bigint }

/** floor(log2(v)), 0 for 0 and 1: the slot the BPF side files v in. */
const slotOf = (v: number): number => (v <= 1 ? 0 : Math.floor(Math.log2(v)));

/** Prometheus text lines of one metric family, as `name{labels} value`. */
function lines(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

// A reader that only collects when asked: the SDK's own collection path
// (MetricReader.collect, with extra producers), without an exporter.
class PullReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

describe('metrics: BPF maps as Prometheus and OpenTelemetry metrics', function () {
  // Generous: the VMs of CI run under TCG, where runqlat's test took 9 s.
  this.timeout(60_000);
  let o: BpfObject;
  let hists: BpfMap<number, LenHist>;
  let packets: BpfMap<number, PerCpu<bigint>>;
  // Lengths (after the Ethernet header) filed per class by file_len.
  const SENT: [number, number][] = [[1, 1], [1, 100], [1, 5], [1, 64], [2, 3000], [2, 1000], [3, 2]];

  before(function () {
    o = new BpfObject(obj('metrics_test')).load();
    hists = o.map<number, LenHist>('len_hists');
    packets = o.map<number, PerCpu<bigint>>('packets');
    const prog = o.program('file_len');
    for (const [cls, len] of SENT) {
      const data = Buffer.alloc(14 + len);
      data[14] = cls;
      prog.testRun({ data });
    }
  });
  after(() => o?.close());

  const sent = SENT;

  it('mapCounter: per-CPU counts from the kernel, summed over CPUs, labelled by the key function', async function () {
    const metric = mapCounter(packets, {
      name: 'test_packets_total', help: 'Packets per class',
      labels: (cls) => (cls === 0 ? null : { class: String(cls) }),
    });
    const points = await metric.collect();
    assert.equal(points.length, 7, 'class 0 left out by returning null');
    for (const p of points) {
      const cls = Number(p.labels['class']);
      const inMap = packets.lookup(cls)!.reduce((a, b) => a + b, 0n);
      assert.equal(p.value, Number(inMap));
      assert.equal(p.value, sent.filter(([c]) => c === cls).length);
    }
    const reg = new Registry();
    using _ = registerPrometheus(reg, [metric]);
    const text = await reg.metrics();
    assert.match(text, /^# TYPE test_packets_total counter$/m);
    assert.deepEqual(lines(text, 'test_packets_total').slice(0, 3),
      ['test_packets_total{class="1"} 4', 'test_packets_total{class="2"} 2', 'test_packets_total{class="3"} 1']);
  });

  it('mapLog2Histogram: the kernel\'s log2 slots as cumulative buckets le=2^(i+1)-1, with the program\'s exact sum', async function () {
    const metric = mapLog2Histogram(hists, {
      name: 'test_length_bytes', help: 'Packet lengths', unit: 'By',
      labels: (cls) => ({ class: String(cls) }), sum: (v) => v.sum,
    });
    const points = await metric.collect();
    assert.deepEqual(points.map((p) => p.labels['class']).sort(), ['1', '2', '3']);
    const p1 = points.find((p) => p.labels['class'] === '1')!;
    // 16 slots, the last one open (clamped): 15 finite bounds 1, 3, 7, … 32767.
    assert.deepEqual(p1.bounds, Array.from({ length: 15 }, (_, i) => 2 ** (i + 1) - 1));
    const lens = sent.filter(([c]) => c === 1).map(([, l]) => l);
    const expected = new Array<number>(16).fill(0);
    for (const l of lens) expected[slotOf(l)]!++;
    assert.deepEqual(p1.counts, expected);
    assert.deepEqual(p1.counts, Array.from(hists.lookup(1)!.slots, Number), 'what the map holds');
    assert.equal(p1.count, lens.length);
    assert.equal(p1.sum, lens.reduce((a, b) => a + b, 0));
    assert.equal(p1.sumEstimated, false);

    const reg = new Registry();
    reg.registerMetric(prometheusCollector(metric) as never);
    const text = await reg.metrics();
    assert.match(text, /^# TYPE test_length_bytes histogram$/m);
    const c1 = lines(text, 'test_length_bytes_bucket').filter((l) => l.includes('class="1"'));
    assert.equal(c1.length, 16);
    // 1 → le 1; 5 → le 7; 64 and 100 → le 127: cumulative.
    assert.ok(c1.includes('test_length_bytes_bucket{class="1",le="1"} 1'));
    assert.ok(c1.includes('test_length_bytes_bucket{class="1",le="3"} 1'));
    assert.ok(c1.includes('test_length_bytes_bucket{class="1",le="7"} 2'));
    assert.ok(c1.includes('test_length_bytes_bucket{class="1",le="63"} 2'));
    assert.ok(c1.includes('test_length_bytes_bucket{class="1",le="127"} 4'));
    assert.equal(c1.at(-1), 'test_length_bytes_bucket{class="1",le="+Inf"} 4');
    assert.ok(text.includes('test_length_bytes_sum{class="1"} 170\n'));
    assert.ok(text.includes('test_length_bytes_count{class="1"} 4\n'));
    assert.ok(text.includes('test_length_bytes_sum{class="2"} 4000\n'));
  });

  it('without a sum the _sum is the slots\' midpoint estimate, and marked so; divisor scales bounds and sum', async function () {
    const metric = mapLog2Histogram(hists, {
      name: 'test_length_kb', help: 'Packet lengths in kB', divisor: 1000,
      labels: (cls) => (cls === 2 ? { class: '2' } : null),
    });
    const [p] = await metric.collect() as [HistogramPoint];
    // 3000 in slot 11 (2048 … 4095), 1000 in slot 9 (512 … 1023).
    assert.equal(p.sumEstimated, true);
    assert.equal(p.sum, ((2048 + 4095) / 2 + (512 + 1023) / 2) / 1000);
    assert.equal(p.bounds[0], 0.001);
    assert.equal(p.bounds[11], 4.095);
  });

  it('the open last slot is only in +Inf; lastSlotOpen: false gives it a bound', async function () {
    // What a clamped slot holds, put there as the program would.
    const big = { slots: new BigUint64Array(16), sum: 100_000n };
    big.slots[15] = 1n;
    hists.update(5, big);
    try {
      const open = mapLog2Histogram(hists, { name: 'a', help: 'a', labels: (k) => (k === 5 ? {} : null) });
      const [p] = await open.collect() as [HistogramPoint];
      assert.equal(p.bounds.length, 15);
      assert.deepEqual(p.counts.slice(-2), [0, 1], 'counted above the last finite bound');
      assert.equal(p.sum, 2 ** 15, 'estimated at the open slot\'s lower bound');
      const closed = mapLog2Histogram(hists, { name: 'b', help: 'b', lastSlotOpen: false, labels: (k) => (k === 5 ? {} : null) });
      const [q] = await closed.collect() as [HistogramPoint];
      assert.equal(q.bounds.length, 16);
      assert.equal(q.bounds[15], 65535);
      assert.deepEqual(q.counts.slice(-2), [1, 0]);
    } finally {
      hists.delete(5);
    }
  });

  it('sock_example on real traffic: the counts a scrape shows are those the map holds', async function () {
    const so = new BpfObject(obj('sock_example')).load();
    try {
      const counts = so.map<number, bigint>('counts');
      const PROTO: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp' };
      const metric = mapCounter(counts, {
        name: 'sockstat_packets_total', help: 'Packets on lo per IP protocol',
        labels: (proto) => (PROTO[proto] ? { protocol: PROTO[proto]! } : null),
      });
      const sock = openRawSocket('lo');
      try {
        so.program('count_packets').attachSocket(sock);
        const rx = createSocket('udp4');
        const tx = createSocket('udp4');
        await new Promise<void>((r) => rx.bind(0, '127.0.0.1', r));
        let got = 0;
        const all = new Promise<void>((r) => rx.on('message', () => ++got === 5 && r()));
        for (let i = 0; i < 5; i++) tx.send('x', rx.address().port, '127.0.0.1');
        await all;
        rx.close();
        tx.close();
      } finally {
        closeSync(sock); // the filter goes with its socket: the counts stop moving
      }
      const reg = new Registry();
      using _ = registerPrometheus(reg, [metric]);
      const text = await reg.metrics();
      const udp = counts.lookup(17)!;
      assert.ok(udp >= 10n, `5 datagrams pass lo's raw socket twice each; saw ${udp}`);
      assert.deepEqual(lines(text, 'sockstat_packets_total'), [
        `sockstat_packets_total{protocol="icmp"} ${counts.lookup(1)}`,
        `sockstat_packets_total{protocol="tcp"} ${counts.lookup(6)}`,
        `sockstat_packets_total{protocol="udp"} ${udp}`,
      ]);
    } finally {
      so.close();
    }
  });

  it('runqlat on the scheduler: its struct hist as a histogram in seconds, read as the map holds it', async function () {
    const ro = new BpfObject(obj('runqlat')).load();
    try {
      const map = ro.map<number, { slots: Uint32Array }>('hists');
      const metric = mapLog2Histogram(map, { name: 'runqlat_latency_seconds', help: 'Run queue latency', unit: 's', divisor: 1e6 });
      const links = ro.attach();
      // Wake-ups to measure: short sleeps in child processes.
      execFileSync('sh', ['-c', 'for i in 1 2 3 4 5; do sleep 0.01; done']);
      for (const l of links.links) l.detach();
      const [p] = await metric.collect() as [HistogramPoint];
      const slots = Array.from(map.lookup(0)!.slots);
      assert.deepEqual(p.labels, {}, 'one histogram: no labels');
      assert.deepEqual(p.counts, slots);
      assert.ok(p.count > 0, 'the scheduler switched tasks');
      assert.equal(p.bounds[0], 0.000001);
      assert.equal(p.bounds[9], 0.001023);
      const reg = new Registry();
      using _ = registerPrometheus(reg, [metric]);
      const text = await reg.metrics();
      assert.ok(text.includes(`runqlat_latency_seconds_count ${p.count}\n`));
      assert.ok(text.includes(`runqlat_latency_seconds_bucket{le="0.000001"} ${slots[0]}\n`));
      assert.ok(text.includes(`runqlat_latency_seconds_bucket{le="+Inf"} ${p.count}\n`));
    } finally {
      ro.close();
    }
  });

  it('programStats: runCount and runTimeNs from prog.info() as counters, seconds for the time; runs counted exactly', async function () {
    using _stats = enableStats();
    const prog = o.program('file_len');
    const [runs, time] = programStats(() => [prog, o.program('file_len')], {
      prefix: 'test_prog', labels: (p) => (p === prog ? { program: p.name, id: String(p.info().id) } : null),
    });
    assert.equal(runs.name, 'test_prog_runs_total');
    assert.equal(time.name, 'test_prog_run_time_seconds_total');
    const data = Buffer.alloc(64);
    data[14] = 7;
    prog.testRun({ data });
    const [r0] = await runs.collect();
    const info0 = prog.info();
    assert.equal(r0!.value, Number(info0.runCount));
    assert.ok(r0!.value >= 1);
    assert.deepEqual(r0!.labels, { program: 'file_len', id: String(info0.id) });
    prog.testRun({ data, repeat: 10 });
    const [r1] = await runs.collect();
    const [t1] = await time.collect();
    const info1 = prog.info();
    assert.equal(r1!.value - r0!.value, 10, 'ten more runs');
    assert.equal(t1!.value, Number(info1.runTimeNs) / 1e9);
    assert.ok(t1!.value > 0);
    const reg = new Registry();
    using _reg = registerPrometheus(reg, [runs, time]);
    const text = await reg.metrics();
    assert.ok(text.includes(`test_prog_runs_total{program="file_len",id="${info1.id}"} ${info1.runCount}\n`), text);
    throwsWith(() => programStats(42 as never), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => programStats([], { prefix: 'bad prefix' }), { code: 'ERR_INVALID_ARG_VALUE' }, TypeError);
  });

  it('OpenTelemetry: observable counters through the API, histograms through a MetricProducer on the SDK reader', async function () {
    const counter = mapCounter(packets, { name: 'test_packets', help: 'Packets per class', unit: '{packet}', labels: (c) => ({ class: String(c) }) });
    const histogram = mapLog2Histogram(hists, { name: 'test_length', help: 'Packet lengths', unit: 'By', labels: (c) => ({ class: String(c) }), sum: (v) => v.sum });
    assert.throws(() => observeOtel(new MeterProvider().getMeter('x'), [histogram as never]),
      { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: /otelMetricProducer/ });

    const reader = new PullReader({ metricProducers: [otelMetricProducer([histogram], { scope: { name: 'test' } })] });
    const provider = new MeterProvider({ readers: [reader] });
    using _ = observeOtel(provider.getMeter('libbpf-node-test'), [counter]);
    try {
      const { resourceMetrics, errors } = await reader.collect();
      assert.deepEqual(errors, []);
      const all = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
      const sum = all.find((m) => m.descriptor.name === 'test_packets') as SumMetricData;
      assert.equal(sum.dataPointType, DataPointType.SUM);
      assert.equal(sum.isMonotonic, true);
      assert.equal(sum.descriptor.unit, '{packet}');
      const byClass = new Map(sum.dataPoints.map((d) => [d.attributes['class'], d.value]));
      assert.equal(byClass.get('1'), 4);
      assert.equal(byClass.get('2'), 2);

      const h = all.find((m) => m.descriptor.name === 'test_length') as HistogramMetricData;
      assert.equal(h.dataPointType, DataPointType.HISTOGRAM);
      const d1 = h.dataPoints.find((d) => d.attributes['class'] === '1')!;
      assert.deepEqual(d1.value.buckets.boundaries.slice(0, 3), [1, 3, 7]);
      assert.deepEqual(d1.value.buckets.counts, Array.from(hists.lookup(1)!.slots, Number));
      assert.equal(d1.value.count, 4);
      assert.equal(d1.value.sum, 170);
    } finally {
      await provider.shutdown();
    }
  });

  it('misuse: TypeErrors with codes before any read; a closed map fails the scrape with ERR_INVALID_STATE', async function () {
    throwsWith(() => mapCounter(packets, { name: '9bad', help: '' }), { code: 'ERR_INVALID_ARG_VALUE' }, TypeError);
    throwsWith(() => mapCounter(packets, { name: 'ok', help: 1 as never }), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => mapCounter(packets, { name: 'ok', help: '', labels: 'class' as never }), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => mapCounter({} as never, { name: 'ok', help: '' }), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => mapLog2Histogram(hists, { name: 'ok', help: '', divisor: 0 }), { code: 'ERR_INVALID_ARG_VALUE' }, TypeError);
    throwsWith(() => registerPrometheus({} as never, []), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    // Labels checked at each read: Prometheus would reject them later, far from the cause.
    await assert.rejects(mapCounter(packets, { name: 'ok', help: '', labels: () => ({ 'bad-name': 'x' }) }).collect(),
      { code: 'ERR_INVALID_ARG_VALUE' });
    await assert.rejects(mapLog2Histogram(hists, { name: 'ok', help: '', labels: () => ({ le: '1' }) }).collect(),
      { code: 'ERR_INVALID_ARG_VALUE', message: /'le'/ });
    // A histogram value that is neither counts nor has `slots`: say what to pass.
    await assert.rejects(mapLog2Histogram(packets as never, { name: 'ok', help: '' }).collect(), { code: 'ERR_INVALID_ARG_VALUE', message: /options\.slots/ });
    // Duplicate names: the registry is left as it was.
    const reg = new Registry();
    const a = mapCounter(packets, { name: 'dup_total', help: '' });
    using first = registerPrometheus(reg, [a]);
    assert.throws(() => registerPrometheus(reg, [mapCounter(packets, { name: 'other_total', help: '' }), a]), /already been registered/);
    assert.deepEqual(reg.getMetricsAsArray().map((m) => m.name), ['dup_total']);
    first.unregister();
    first.unregister();
    assert.deepEqual(reg.getMetricsAsArray(), []);

    const co = new BpfObject(obj('metrics_test')).load();
    const m = mapCounter(co.map('packets'), { name: 'closed_total', help: '' });
    using _ = registerPrometheus(reg, [m]);
    co.close();
    await assert.rejects(reg.metrics(), { code: 'ERR_INVALID_STATE', message: /closed_total.*packets.*closed/ });
  });

  it("'libbpf-node/metrics' is a subpath export that loads neither the addon nor prom-client nor OpenTelemetry", function () {
    const out = execFileSync(process.execPath, ['-e', `
      const m = require('libbpf-node/metrics');
      const loaded = Object.keys(require.cache);
      console.log(JSON.stringify({
        exports: Object.keys(m).sort(),
        addon: loaded.some((f) => f.endsWith('.node') || f.endsWith('/ts/index.js')),
        libs: loaded.filter((f) => /prom-client|@opentelemetry/.test(f)).length,
      }));`], { cwd: ROOT, encoding: 'utf8' });
    assert.deepEqual(JSON.parse(out), {
      exports: ['mapCounter', 'mapLog2Histogram', 'observeOtel', 'otelMetricProducer', 'programStats', 'prometheusCollector', 'registerPrometheus'],
      addon: false,
      libs: 0,
    });
    assert.equal(require.resolve('libbpf-node/metrics', { paths: [ROOT] }), path.join(ROOT, 'dist', 'ts', 'metrics', 'index.js'));
  });
});
