// PerfBuffer: samples of a BPF_MAP_TYPE_PERF_EVENT_ARRAY (one buffer per
// CPU), as an async iterable of {cpu, data} and, when the kernel had to drop
// samples, {cpu, lost}: lost samples are never silent.
import { addon } from './internal/addon.js';
import { checkInt, fail, invalidArgType } from './internal/errors.js';
import { EventStream, frameData, frameKind, frameSource, typeDecoder, type EventStreamCounters, type EventStreamOptions } from './internal/stream.js';
import { BpfMap } from './map.js';

export interface PerfSample<T = Buffer> {
  cpu: number;
  /** The sample (a copy; the kernel pads raw samples to 8 bytes minus 4, so it may end in padding). */
  data: T;
  lost?: undefined;
}

export interface PerfLost {
  cpu: number;
  /** How many samples the kernel dropped on this CPU because its buffer was full. */
  lost: number;
  data?: undefined;
}

export type PerfEvent<T = Buffer> = PerfSample<T> | PerfLost;

export interface PerfBufferOptions<T> extends EventStreamOptions {
  /** Pages per CPU buffer, a power of two (default 64). */
  pageCount?: number;
  decode?: (sample: Buffer, cpu: number) => T;
  /** Or decode each sample as this BTF type of the map's object, e.g. 'struct event'. */
  type?: string;
}

export interface PerfBufferStats extends EventStreamCounters {
  /** Samples the kernel reported lost, over all CPUs. */
  lost: number;
}

export class PerfBuffer<T = Buffer> extends EventStream<PerfEvent<T>> {
  #lost = 0;
  #map: BpfMap;

  constructor(map: BpfMap, opts: PerfBufferOptions<T> = {}) {
    if (!(map instanceof BpfMap)) invalidArgType('map', 'a BpfMap', map);
    if (map.type !== 'perf_event_array') {
      fail(TypeError, 'ERR_INVALID_ARG_VALUE',
        `PerfBuffer needs a BPF_MAP_TYPE_PERF_EVENT_ARRAY map; map '${map.name}' is a ${map.type} map`);
    }
    const pages = checkInt('opts.pageCount', opts.pageCount ?? 64, 1, 1 << 20);
    if ((pages & (pages - 1)) !== 0) fail(RangeError, 'ERR_OUT_OF_RANGE', `opts.pageCount must be a power of two, got ${pages}`);
    if (opts.decode !== undefined && typeof opts.decode !== 'function') invalidArgType('opts.decode', 'a function', opts.decode);
    const typed = opts.decode || opts.type === undefined ? undefined : typeDecoder([map], opts.type);
    const decode = opts.decode;
    const fd = map.liveFd();
    let undo: (() => void) | undefined;
    super('perf_buffer__consume', (onBatch) => new addon.NativePerfBuffer(fd, pages, onBatch), (b) => {
      const cpu = frameSource(b);
      if (frameKind(b) === 1) {
        const lost = Number(frameData(b).readBigUInt64LE(0));
        this.#lost += lost;
        return { cpu, lost };
      }
      if (typed) return { cpu, data: typed(b) as T };
      const data = frameData(b);
      return { cpu, data: decode ? decode(data, cpu) : (data as T) };
    }, opts, () => undo?.());
    this.#map = map;
    if (!this.closed) undo = map.addDependent(this);
  }

  get map(): BpfMap {
    return this.#map;
  }

  get stats(): PerfBufferStats {
    return { ...this.counters, lost: this.#lost };
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
