// OpenTelemetry: counters and gauges can go through the metrics API as
// observable instruments (callbacks run at collection), but the API has no
// instrument that takes a histogram already aggregated in the kernel. The
// SDK's MetricReader does take extra MetricProducers whose collect() returns
// finished data points: otelMetricProducer() is one, and carries every kind,
// histograms as HISTOGRAM points with explicit bounds (what OTLP and the
// Prometheus exporter expect).
//
// Only types are imported from @opentelemetry/*: the user's Meter and reader
// are used as given. The enum values below are those of the OTLP data model,
// which the SDK's enums mirror (DataPointType, AggregationTemporality,
// ValueType); they are written out so no OpenTelemetry code is loaded here.
import type { Attributes, Meter, ObservableCallback, ObservableCounter, ObservableGauge } from '@opentelemetry/api';
import type {
  AggregationTemporality, CollectionResult, DataPointType, MetricData, MetricProducer,
} from '@opentelemetry/sdk-metrics';
import { invalidArgType, invalidArgValue } from '../internal/errors.js';
import type { BpfMetric, ScalarMetric } from './sources.js';

const CUMULATIVE = 1 as AggregationTemporality.CUMULATIVE;
const HISTOGRAM = 0 as DataPointType.HISTOGRAM;
const GAUGE = 2 as DataPointType.GAUGE;
const SUM = 3 as DataPointType.SUM;
const DOUBLE = 1; // ValueType.DOUBLE: every value is exported as a double

type Resource = CollectionResult['resourceMetrics']['resource'];
type HrTime = [number, number];

function hrNow(): HrTime {
  const ns = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
  return [Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)];
}

function checkMetrics(metrics: unknown): BpfMetric[] {
  if (metrics === null || typeof metrics !== 'object' || typeof (metrics as Iterable<BpfMetric>)[Symbol.iterator] !== 'function') {
    invalidArgType('metrics', 'an iterable of metrics', metrics);
  }
  const list = [...(metrics as Iterable<unknown>)];
  list.forEach((m, i) => {
    const o = m as Partial<BpfMetric> | null;
    if (o === null || typeof o !== 'object' || typeof o.name !== 'string' || typeof o.collect !== 'function' ||
      (o.kind !== 'counter' && o.kind !== 'gauge' && o.kind !== 'histogram')) {
      invalidArgType(`metrics[${i}]`, 'a metric from mapCounter(), mapLog2Histogram() or programStats()', m);
    }
  });
  return list as BpfMetric[];
}

/** What observeOtel() returns: removes the callbacks, also on `using`. */
export interface OtelRegistration extends Disposable {
  /** Stops observing (the instruments stay in the Meter, without values); idempotent. */
  unregister(): void;
}

/**
 * Observable instruments on `meter` (an ObservableCounter per counter, an
 * ObservableGauge per gauge) whose callbacks read the kernel at each
 * collection. Histograms cannot go through the API: use
 * otelMetricProducer() for them (passing one here throws a TypeError that
 * says so).
 */
export function observeOtel(meter: Meter, metrics: Iterable<ScalarMetric>): OtelRegistration {
  const mtr = meter as Partial<Meter> | null;
  if (mtr === null || typeof mtr !== 'object' || typeof mtr.createObservableCounter !== 'function') {
    invalidArgType('meter', 'an OpenTelemetry Meter', meter);
  }
  const list = checkMetrics(metrics);
  for (const m of list) {
    if (m.kind === 'histogram') {
      invalidArgValue('metrics', m.name,
        'is a histogram, which the OpenTelemetry API cannot take pre-aggregated: pass it to otelMetricProducer() instead');
    }
  }
  const observed: [ObservableCounter | ObservableGauge, ObservableCallback][] = [];
  for (const m of list as ScalarMetric[]) {
    const opts = { description: m.help, unit: m.unit };
    const inst = m.kind === 'counter' ? meter.createObservableCounter(m.name, opts) : meter.createObservableGauge(m.name, opts);
    const cb: ObservableCallback = async (result) => {
      for (const p of await m.collect()) result.observe(p.value, p.labels as Attributes);
    };
    inst.addCallback(cb);
    observed.push([inst, cb]);
  }
  let live = true;
  const unregister = (): void => {
    if (!live) return;
    live = false;
    for (const [inst, cb] of observed) inst.removeCallback(cb);
  };
  return { unregister, [Symbol.dispose]: unregister };
}

/** Options of otelMetricProducer(). */
export interface OtelProducerOptions {
  /** The instrumentation scope of the metrics (default `{ name: 'libbpf-node' }`). */
  scope?: { name: string; version?: string };
}

// The MetricReader keeps its own SDK's Resource and drops producers' (see
// MetricReader.collect); this empty one only fills the type.
const EMPTY_RESOURCE: Resource = {
  attributes: {},
  asyncAttributesPending: false,
  merge(other: Resource | null): Resource { return other ?? EMPTY_RESOURCE; },
  getRawAttributes() { return []; },
};

/**
 * A MetricProducer for the SDK's MetricReader (`metricProducers` option of
 * PeriodicExportingMetricReader, or any reader): at each collection it reads
 * the kernel and returns counters as cumulative monotonic sums, gauges as
 * gauges and log2 histograms as explicit-bucket histograms (bounds
 * `2^(i+1) - 1`, divided by the histogram's divisor). Cumulative points
 * start when the producer was made. A metric that fails to read is left out
 * and its error is in the result's `errors` (the reader reports them).
 *
 * @example
 * ```ts
 * const reader = new PeriodicExportingMetricReader({
 *   exporter: new OTLPMetricExporter(), metricProducers: [otelMetricProducer([latency, packets])],
 * });
 * new MeterProvider({ readers: [reader] });
 * ```
 */
export function otelMetricProducer(metrics: Iterable<BpfMetric>, options: OtelProducerOptions = {}): MetricProducer {
  const list = checkMetrics(metrics);
  if (options === null || typeof options !== 'object') invalidArgType('options', 'an object', options);
  const scope = options.scope ?? { name: 'libbpf-node' };
  if (scope === null || typeof scope !== 'object' || typeof scope.name !== 'string') {
    invalidArgType('options.scope', 'an object with a name', scope);
  }
  const startTime = hrNow();
  return {
    async collect(): Promise<CollectionResult> {
      const errors: unknown[] = [];
      // In the order given, whichever read finishes first.
      const read = await Promise.all(list.map(async (m): Promise<MetricData | null> => {
        try {
          const descriptor = { name: m.name, description: m.help, unit: m.unit, valueType: DOUBLE };
          if (m.kind === 'histogram') {
            const points = await m.collect();
            const endTime = hrNow();
            return {
              descriptor, aggregationTemporality: CUMULATIVE, dataPointType: HISTOGRAM,
              dataPoints: points.map((p) => ({
                startTime, endTime, attributes: { ...p.labels },
                value: { buckets: { boundaries: [...p.bounds], counts: [...p.counts] }, sum: p.sum, count: p.count },
              })),
            };
          }
          const points = await m.collect();
          const endTime = hrNow();
          const dataPoints = points.map((p) => ({ startTime, endTime, attributes: { ...p.labels }, value: p.value }));
          return m.kind === 'counter'
            ? { descriptor, aggregationTemporality: CUMULATIVE, dataPointType: SUM, isMonotonic: true, dataPoints }
            : { descriptor, aggregationTemporality: CUMULATIVE, dataPointType: GAUGE, dataPoints };
        } catch (e) {
          errors.push(e);
          return null;
        }
      }));
      const data = read.filter((d): d is MetricData => d !== null);
      return { resourceMetrics: { resource: EMPTY_RESOURCE, scopeMetrics: [{ scope, metrics: data }] }, errors };
    },
  };
}
