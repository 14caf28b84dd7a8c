// prom-client: each metric becomes a custom metric object (what
// registry.registerMetric() takes: name, help, type and an async get()),
// read when the registry renders /metrics. prom-client's own Histogram only
// takes observations one by one; a BPF program's histogram is already
// aggregated, so the `_bucket`/`_sum`/`_count` series are produced here.
//
// prom-client is not imported: the user's registry is used as given, so
// this works with whichever prom-client the service already has (15 is
// what the tests run).
import { invalidArgType, invalidArgValue } from '../internal/errors.js';
import type { BpfMetric, HistogramPoint } from './sources.js';

/** One line of a metric, as prom-client's registry renders it. */
export interface PrometheusValue {
  /** Set for a histogram's `_bucket`, `_sum` and `_count` lines. */
  metricName?: string;
  labels: Record<string, string>;
  value: number;
}

/** The custom metric prom-client's `registry.registerMetric()` takes. */
export interface PrometheusCollector {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  /** How prom-client's cluster support combines workers: their sum. */
  readonly aggregator: 'sum';
  /** Reads the kernel now (prom-client calls it on each scrape). */
  get(): Promise<{ name: string; help: string; type: 'counter' | 'gauge' | 'histogram'; aggregator: 'sum'; values: PrometheusValue[] }>;
  /** registry.resetMetrics() calls it; the kernel's values are not ours to reset, so it does nothing. */
  reset(): void;
}

/** What registerPrometheus() needs of a prom-client `Registry` (`register`, the default one, is one). */
export interface PrometheusRegistry {
  /** Adds a metric (typed `never` here so that prom-client's own signature, which names its classes, fits). */
  registerMetric(metric: never): void;
  /** Removes the metric of that name. */
  removeSingleMetric(name: string): void;
}

/** What registerPrometheus() returns: unregisters the metrics, also on `using`. */
export interface PrometheusRegistration extends Disposable {
  /** The collectors registered, one per metric. */
  readonly collectors: readonly PrometheusCollector[];
  /** Removes them from the registry; idempotent. */
  unregister(): void;
}

/** Go's strconv.FormatFloat(v, 'g', -1, 64) shape for `le`, as Prometheus' client libraries print it. */
function formatBound(v: number): string {
  return v === Infinity ? '+Inf' : String(v);
}

function histogramValues(name: string, p: HistogramPoint): PrometheusValue[] {
  const values: PrometheusValue[] = [];
  let cumulative = 0;
  for (let i = 0; i < p.bounds.length; i++) {
    cumulative += p.counts[i]!;
    values.push({ metricName: `${name}_bucket`, labels: { ...p.labels, le: formatBound(p.bounds[i]!) }, value: cumulative });
  }
  values.push({ metricName: `${name}_bucket`, labels: { ...p.labels, le: '+Inf' }, value: p.count });
  values.push({ metricName: `${name}_sum`, labels: { ...p.labels }, value: p.sum });
  values.push({ metricName: `${name}_count`, labels: { ...p.labels }, value: p.count });
  return values;
}

function checkMetric(m: unknown, what: string): asserts m is BpfMetric {
  const o = m as Partial<BpfMetric> | null;
  if (o === null || typeof o !== 'object' || typeof o.name !== 'string' || typeof o.collect !== 'function' ||
    (o.kind !== 'counter' && o.kind !== 'gauge' && o.kind !== 'histogram')) {
    invalidArgType(what, 'a metric from mapCounter(), mapLog2Histogram() or programStats()', m);
  }
}

/**
 * The prom-client custom metric of `metric`: register it with
 * `registry.registerMetric(collector)`, or use registerPrometheus().
 */
export function prometheusCollector(metric: BpfMetric): PrometheusCollector {
  checkMetric(metric, 'metric');
  const { name, help } = metric;
  const type = metric.kind;
  return {
    name, help, type, aggregator: 'sum',
    async get() {
      let values: PrometheusValue[];
      if (metric.kind === 'histogram') {
        values = (await metric.collect()).flatMap((p) => histogramValues(name, p));
      } else {
        values = (await metric.collect()).map((p) => ({ labels: { ...p.labels } as Record<string, string>, value: p.value }));
      }
      return { name, help, type, aggregator: 'sum', values };
    },
    reset() { /* the kernel's counters are not reset by a registry */ },
  };
}

/**
 * Registers `metrics` with a prom-client registry: they are read from the
 * kernel each time the registry renders (`await registry.metrics()`).
 *
 * @example
 * ```ts
 * import { register } from 'prom-client';
 * import { mapCounter, registerPrometheus } from 'libbpf-node/metrics';
 * using reg = registerPrometheus(register, [mapCounter(counts, { name: 'packets_total', help: 'Packets' })]);
 * ```
 */
export function registerPrometheus(registry: PrometheusRegistry, metrics: Iterable<BpfMetric>): PrometheusRegistration {
  const r = registry as Partial<PrometheusRegistry> | null;
  if (r === null || typeof r !== 'object' || typeof r.registerMetric !== 'function' || typeof r.removeSingleMetric !== 'function') {
    invalidArgType('registry', 'a prom-client Registry', registry);
  }
  if (metrics === null || typeof metrics !== 'object' || typeof (metrics as Iterable<BpfMetric>)[Symbol.iterator] !== 'function') {
    invalidArgType('metrics', 'an iterable of metrics', metrics);
  }
  const list = [...metrics];
  list.forEach((m, i) => checkMetric(m, `metrics[${i}]`));
  const names = new Set<string>();
  for (const m of list) {
    if (names.has(m.name)) invalidArgValue('metrics', m.name, 'must have different names');
    names.add(m.name);
  }
  const collectors = list.map(prometheusCollector);
  const done: PrometheusCollector[] = [];
  try {
    // prom-client throws for a name already registered: nothing is left half registered.
    for (const c of collectors) {
      registry.registerMetric(c as never);
      done.push(c);
    }
  } catch (e) {
    for (const c of done) registry.removeSingleMetric(c.name);
    throw e;
  }
  let registered = true;
  const unregister = (): void => {
    if (!registered) return;
    registered = false;
    for (const c of collectors) registry.removeSingleMetric(c.name);
  };
  return { collectors, unregister, [Symbol.dispose]: unregister };
}
