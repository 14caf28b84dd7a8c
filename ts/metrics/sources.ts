// What the exporters share: metrics described once (name, help, kind) and
// read from BPF maps and programs when a scrape or an export asks for them,
// never on a timer, so what a dashboard sees is what the kernel held at that
// moment. The exporters (prometheus.ts, otel.ts) only change the shape.
//
// Everything here is imported as types from the core: requiring
// 'libbpf-node/metrics' loads no addon and no metrics library by itself.
import type { BpfMap, PerCpuElement } from '../map.js';
import { invalidArgType, invalidArgValue, invalidState } from '../internal/errors.js';
import { log2SlotRange } from '../histogram.js';

/** Label names to values, as Prometheus labels or OpenTelemetry attributes. */
export type MetricLabels = Readonly<Record<string, string>>;

/** One value of a counter or gauge, with its labels. */
export interface ScalarPoint {
  readonly labels: MetricLabels;
  readonly value: number;
}

/**
 * One histogram, with explicit bucket bounds as Prometheus and OpenTelemetry
 * both take them: `counts[i]` counts the values in (bounds[i-1], bounds[i]]
 * (not cumulative), and `counts[bounds.length]` those above the last bound.
 */
export interface HistogramPoint {
  readonly labels: MetricLabels;
  /** Upper bounds, inclusive, ascending. */
  readonly bounds: readonly number[];
  /** Per bucket, `bounds.length + 1` of them. */
  readonly counts: readonly number[];
  readonly count: number;
  readonly sum: number;
  /** true when `sum` is estimated from the buckets (no `sum` option). */
  readonly sumEstimated: boolean;
}

interface MetricBase {
  /** The metric's name, e.g. `runqlat_latency_seconds` (Prometheus' naming rules). */
  readonly name: string;
  /** Its description (Prometheus' HELP line). */
  readonly help: string;
  /** Its unit, for OpenTelemetry (UCUM, e.g. 's', '{packet}'); '' when none. */
  readonly unit: string;
}

/** A counter (only grows) or a gauge, read from the kernel on each collect(). */
export interface ScalarMetric extends MetricBase {
  readonly kind: 'counter' | 'gauge';
  /** Reads the values now, one point per label set. */
  collect(): Promise<ScalarPoint[]>;
}

/** A histogram read from the kernel on each collect(). */
export interface HistogramMetric extends MetricBase {
  readonly kind: 'histogram';
  /** Reads the histograms now, one per label set. */
  collect(): Promise<HistogramPoint[]>;
}

/** A metric the exporters take: made by mapCounter(), mapLog2Histogram() or programStats(). */
export type BpfMetric = ScalarMetric | HistogramMetric;

/** A value that counts: a number or a bigint (converted to a double on export). */
export type CountValue = number | bigint;

interface CommonOptions {
  /** The metric's name: letters, digits, `_` and `:`, not starting with a digit. */
  name: string;
  /** Its description (required: Prometheus' HELP line, OpenTelemetry's description). */
  help: string;
  /** Its unit for OpenTelemetry (default ''). Prometheus carries units in the name. */
  unit?: string;
}

/** Options of mapCounter(). */
export interface MapCounterOptions<K, V> extends CommonOptions {
  /** 'counter' (default: the value only grows) or 'gauge'. */
  kind?: 'counter' | 'gauge';
  /**
   * The labels of an element, from its key (decoded from the map's BTF).
   * Default: `{ key: String(key) }` for number and bigint keys; maps with
   * other keys need this. Returning `null` leaves the element out.
   */
  labels?: (key: K) => MetricLabels | null;
  /**
   * The value of an element. Default: numbers and bigints as they are, and
   * raw values of 4 or 8 bytes as unsigned little-endian integers. On a
   * per-CPU map it is called once per CPU and the results are added up.
   */
  value?: (value: PerCpuElement<V>, key: K) => CountValue;
}

/** Options of mapLog2Histogram(). */
export interface MapLog2HistogramOptions<K, V> extends CommonOptions {
  /**
   * The labels of a histogram, from the key it is kept under. Default: none
   * when the map holds one histogram (an array of one element), else
   * `{ key: String(key) }` for number and bigint keys. Returning `null`
   * leaves the element out. The name `le` is Prometheus' own.
   */
  labels?: (key: K) => MetricLabels | null;
  /**
   * The log2 slots of an element: slot i counts values in [2^i, 2^(i+1) - 1]
   * (slot 0: 0 and 1), as bcc's and libbpf-tools' log2l() file them.
   * Default: the value itself when it is an array of numbers or bigints,
   * else its `slots` member (`struct hist { __u32 slots[N]; }`). On a
   * per-CPU map it is called once per CPU and the slots are added up.
   */
  slots?: (value: PerCpuElement<V>, key: K) => ArrayLike<CountValue>;
  /**
   * The exact sum of the values, when the program keeps one. Without it
   * `_sum` is an estimate: each count at its slot's midpoint (and at the
   * lower bound of an open last slot), which is what log2 slots allow.
   */
  sum?: (value: PerCpuElement<V>, key: K) => CountValue;
  /**
   * Divides the bounds and the sum, to export in a base unit: 1e6 for a
   * program that files microseconds, exported as seconds. Default 1.
   */
  divisor?: number;
  /**
   * Whether the last slot also counts every larger value, as libbpf-tools
   * clamp the slot to MAX_SLOTS - 1 (default true): then it has no finite
   * upper bound and is counted only in the `+Inf` bucket.
   */
  lastSlotOpen?: boolean;
}

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function checkCommon(opts: unknown, fn: string): asserts opts is CommonOptions {
  if (opts === null || typeof opts !== 'object') invalidArgType('options', 'an object', opts);
  const o = opts as Record<string, unknown>;
  if (typeof o['name'] !== 'string') invalidArgType('options.name', 'of type string', o['name']);
  if (!NAME_RE.test(o['name'])) {
    invalidArgValue('options.name', o['name'], `of ${fn}() must be a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)`);
  }
  if (typeof o['help'] !== 'string') invalidArgType('options.help', 'of type string', o['help']);
  if (o['unit'] !== undefined && typeof o['unit'] !== 'string') invalidArgType('options.unit', 'of type string', o['unit']);
  for (const f of ['labels', 'value', 'slots', 'sum']) {
    if (o[f] !== undefined && typeof o[f] !== 'function') invalidArgType(`options.${f}`, 'of type function', o[f]);
  }
}

function checkMap(map: unknown): asserts map is BpfMap {
  // Structural: the metrics module must not load the addon to check a class.
  const m = map as { entries?: unknown; perCpu?: unknown } | null;
  if (m === null || typeof m !== 'object' || typeof m.entries !== 'function') invalidArgType('map', 'a BpfMap', map);
}

/** Label sets are checked on every collect: a bad one must not become a scrape Prometheus rejects later. */
function checkLabels(metric: string, labels: unknown, reserved?: string): MetricLabels {
  if (labels === null || typeof labels !== 'object') {
    invalidArgType(`the labels of ${metric}`, 'an object of strings', labels);
  }
  for (const [k, v] of Object.entries(labels)) {
    if (!LABEL_RE.test(k) || k.startsWith('__') || k === reserved) {
      invalidArgValue(`labels of ${metric}`, k, `must be label names ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __${reserved ? `, not '${reserved}'` : ''})`);
    }
    if (typeof v !== 'string') invalidArgType(`the label ${k} of ${metric}`, 'of type string', v);
  }
  return labels as MetricLabels;
}

function defaultLabels(metric: string, key: unknown): MetricLabels {
  if (typeof key === 'number' || typeof key === 'bigint') return { key: String(key) };
  return invalidArgValue(`options.labels of ${metric}`, key,
    'is needed for a map whose keys are not numbers: pass options.labels, a function from a key to labels');
}

function toNumber(metric: string, v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (Buffer.isBuffer(v)) {
    if (v.length === 8) return Number(v.readBigUInt64LE(0));
    if (v.length === 4) return v.readUInt32LE(0);
  }
  return invalidArgValue(`options.value of ${metric}`, v,
    'is needed for values that are not numbers (or raw 4- or 8-byte integers): pass options.value, a function from a value to a number or bigint');
}

async function* readEntries<K, V>(metric: string, map: BpfMap<K, V>): AsyncGenerator<[K, V]> {
  if (map.closed) invalidState(`${metric}: its map '${map.name}' is closed`);
  // Batches (bpf_map_lookup_batch) where the kernel allows, one syscall per
  // 4096 elements instead of two per element.
  for await (const e of map.entries()) yield e;
}

/** A per-CPU map's value is one element per possible CPU: each goes through `f`. */
function perCpu<V, T>(map: BpfMap<unknown, V>, value: V, f: (v: PerCpuElement<V>) => T): T[] {
  if (map.perCpu && Array.isArray(value)) return (value as PerCpuElement<V>[]).map(f);
  return [f(value as PerCpuElement<V>)];
}

/**
 * A counter (or gauge) with one value per map element: the packet counts of
 * an array keyed by protocol, the calls of a hash keyed by pid. The map is
 * read on each collect().
 *
 * @example
 * ```ts
 * const PROTO: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp' };
 * const packets = mapCounter(obj.map<number, bigint>('counts'), {
 *   name: 'sockstat_packets_total', help: 'Packets seen on lo, per IP protocol',
 *   labels: (proto) => (PROTO[proto] ? { protocol: PROTO[proto] } : null),
 * });
 * ```
 */
export function mapCounter<K, V>(map: BpfMap<K, V>, options: MapCounterOptions<K, V>): ScalarMetric {
  checkMap(map);
  checkCommon(options, 'mapCounter');
  const { name, help, unit = '', labels, value } = options;
  const kind = options.kind ?? 'counter';
  if (kind !== 'counter' && kind !== 'gauge') invalidArgValue('options.kind', kind, "must be 'counter' or 'gauge'");
  return {
    name, help, unit, kind,
    async collect(): Promise<ScalarPoint[]> {
      const points: ScalarPoint[] = [];
      for await (const [k, v] of readEntries(name, map)) {
        const l = labels ? labels(k) : defaultLabels(name, k);
        if (l === null) continue;
        const parts = perCpu(map, v, (e) => toNumber(name, value ? value(e, k) : e));
        points.push({ labels: checkLabels(name, l), value: parts.reduce((a, b) => a + b, 0) });
      }
      return points;
    },
  };
}

function defaultSlots(metric: string, v: unknown): ArrayLike<CountValue> {
  const isCounts = (a: unknown): a is ArrayLike<CountValue> =>
    (Array.isArray(a) || (ArrayBuffer.isView(a) && !(a instanceof DataView) && !Buffer.isBuffer(a))) &&
    Array.prototype.every.call(a, (x: unknown) => typeof x === 'number' || typeof x === 'bigint');
  if (isCounts(v)) return v;
  const slots = v !== null && typeof v === 'object' ? (v as { slots?: unknown }).slots : undefined;
  if (isCounts(slots)) return slots;
  return invalidArgValue(`options.slots of ${metric}`, v,
    'is needed for values that are neither arrays of counts nor objects with a `slots` array: pass options.slots');
}

/**
 * A histogram per map element from the log2 slots a BPF program keeps (as
 * runqlat's `struct hist { __u32 slots[26]; }`), with Prometheus buckets
 * `le = (2^(i+1) - 1) / divisor` for slot i: log2 slot i holds the integers
 * 2^i … 2^(i+1) - 1, so that bound is exact for the integer values the
 * program filed. See MapLog2HistogramOptions for `_sum`.
 *
 * @example
 * ```ts
 * // runqlat files microseconds; export seconds, Prometheus' base unit
 * const latency = mapLog2Histogram(obj.map<number, { slots: Uint32Array }>('hists'), {
 *   name: 'runqlat_latency_seconds', help: 'Run queue latency', unit: 's', divisor: 1e6,
 * });
 * ```
 */
export function mapLog2Histogram<K, V>(map: BpfMap<K, V>, options: MapLog2HistogramOptions<K, V>): HistogramMetric {
  checkMap(map);
  checkCommon(options, 'mapLog2Histogram');
  const { name, help, unit = '', labels, slots, sum } = options;
  const divisor = options.divisor ?? 1;
  if (typeof divisor !== 'number' || !Number.isFinite(divisor) || divisor <= 0) {
    invalidArgValue('options.divisor', divisor, 'must be a finite number above 0');
  }
  const lastSlotOpen = options.lastSlotOpen ?? true;
  if (typeof lastSlotOpen !== 'boolean') invalidArgType('options.lastSlotOpen', 'of type boolean', lastSlotOpen);
  return {
    name, help, unit, kind: 'histogram',
    async collect(): Promise<HistogramPoint[]> {
      // One histogram without labels for the usual array of one element.
      const single = map.type === 'array' || map.type === 'percpu_array' ? map.maxEntries === 1 : false;
      const points: HistogramPoint[] = [];
      for await (const [k, v] of readEntries(name, map)) {
        const l = labels ? labels(k) : single ? {} : defaultLabels(name, k);
        if (l === null) continue;
        let total: number[] = [];
        let exactSum = 0;
        for (const s of perCpu(map, v, (e) => slots ? slots(e, k) : defaultSlots(name, e))) {
          if (total.length === 0) total = new Array<number>(s.length).fill(0);
          if (s.length !== total.length) invalidState(`${name}: slots of different lengths (${total.length}, ${s.length})`);
          for (let i = 0; i < s.length; i++) total[i]! += Number(s[i]);
        }
        if (sum) exactSum = perCpu(map, v, (e) => Number(sum(e, k))).reduce((a, b) => a + b, 0);
        points.push(histogramPoint(checkLabels(name, l, 'le'), total, divisor, lastSlotOpen, sum ? exactSum : undefined));
      }
      return points;
    },
  };
}

/** Log2 slots as explicit buckets (exported for the tests of the bounds). @internal */
export function histogramPoint(labels: MetricLabels, slots: readonly number[], divisor: number, lastSlotOpen: boolean,
  exactSum: number | undefined): HistogramPoint {
  const n = slots.length;
  const finite = lastSlotOpen ? n - 1 : n;
  const bounds: number[] = [];
  const counts: number[] = [];
  let estimate = 0;
  for (let i = 0; i < n; i++) {
    const { low, high } = log2SlotRange(i);
    if (i < finite) {
      bounds.push(Number(high) / divisor);
      counts.push(slots[i]!);
      // Slot 0 holds 0 and 1; slot i the integers low … high: their midpoint.
      estimate += slots[i]! * ((Number(low) + Number(high)) / 2);
    } else {
      counts.push(slots[i]!);
      // Open: at least its lower bound, all we know.
      estimate += slots[i]! * Number(low);
    }
  }
  if (finite === n) counts.push(0);
  const count = slots.reduce((a, b) => a + b, 0);
  return {
    labels, bounds, counts, count,
    sum: (exactSum ?? estimate) / divisor,
    sumEstimated: exactSum === undefined,
  };
}

/** What programStats() reads of a program: BpfProgram has it. */
export interface ProgramStatsSource {
  readonly name: string;
  /** bpf_prog_get_info_by_fd: the run statistics (counted while enableStats() is on). */
  info(): { readonly runCount: CountValue; readonly runTimeNs: CountValue };
}

/** Options of programStats(). */
export interface ProgramStatsOptions<P extends ProgramStatsSource> {
  /** The metric names' prefix (default 'bpf_program'): `<prefix>_runs_total` and `<prefix>_run_time_seconds_total`. */
  prefix?: string;
  /** The labels of a program (default `{ program: name }`); `null` leaves it out. */
  labels?: (program: P) => MetricLabels | null;
}

/**
 * Two counters per program, from the kernel's run statistics: how many times
 * it ran (`<prefix>_runs_total`) and the time it spent (`<prefix>_run_time_seconds_total`,
 * from run_time_ns). The kernel counts only while statistics are on
 * (`enableStats()`, or the sysctl kernel.bpf_stats_enabled); otherwise both
 * stay 0. `programs` is read on each collect: a function can return the
 * programs of the moment.
 */
export function programStats<P extends ProgramStatsSource>(programs: Iterable<P> | (() => Iterable<P>),
  options: ProgramStatsOptions<P> = {}): [ScalarMetric, ScalarMetric] {
  if (programs === null || (typeof programs !== 'function' && typeof (programs as Iterable<P>)[Symbol.iterator] !== 'function')) {
    invalidArgType('programs', 'an iterable of programs or a function returning one', programs);
  }
  if (options === null || typeof options !== 'object') invalidArgType('options', 'an object', options);
  const prefix = options.prefix ?? 'bpf_program';
  if (typeof prefix !== 'string' || !NAME_RE.test(prefix)) invalidArgValue('options.prefix', prefix, 'must be a metric name');
  const labels = options.labels;
  if (labels !== undefined && typeof labels !== 'function') invalidArgType('options.labels', 'of type function', labels);
  const read = (what: 'runCount' | 'runTimeNs', metric: string, scale: number) => async (): Promise<ScalarPoint[]> => {
    const list = typeof programs === 'function' ? programs() : programs;
    const points: ScalarPoint[] = [];
    for (const p of list) {
      const l = labels ? labels(p) : { program: p.name };
      if (l === null) continue;
      points.push({ labels: checkLabels(metric, l), value: Number(p.info()[what]) / scale });
    }
    return points;
  };
  const runs = `${prefix}_runs_total`;
  const time = `${prefix}_run_time_seconds_total`;
  return [
    { name: runs, help: 'Times the BPF program ran (while run statistics were enabled)', unit: '{run}', kind: 'counter', collect: read('runCount', runs, 1) },
    { name: time, help: 'Time the BPF program spent running (while run statistics were enabled)', unit: 's', kind: 'counter', collect: read('runTimeNs', time, 1e9) },
  ];
}
