// libbpf-node/metrics: BPF maps and program statistics as metrics for the
// monitoring a fleet already runs, Prometheus (through prom-client) and
// OpenTelemetry (through the metrics SDK). Kept apart from the core entry so
// that `import 'libbpf-node'` never needs either library: both are optional
// peer dependencies, used as the caller hands them in (a Registry, a Meter,
// a MetricReader), never imported here.
export { mapCounter, mapLog2Histogram, programStats } from './sources.js';
export type {
  BpfMetric, ScalarMetric, HistogramMetric, ScalarPoint, HistogramPoint, MetricLabels, CountValue,
  MapCounterOptions, MapLog2HistogramOptions, ProgramStatsOptions, ProgramStatsSource,
} from './sources.js';
export { prometheusCollector, registerPrometheus } from './prometheus.js';
export type { PrometheusCollector, PrometheusRegistry, PrometheusRegistration, PrometheusValue } from './prometheus.js';
export { observeOtel, otelMetricProducer } from './otel.js';
export type { OtelRegistration, OtelProducerOptions } from './otel.js';
