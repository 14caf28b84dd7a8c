// PerfBuffer: samples of a BPF_MAP_TYPE_PERF_EVENT_ARRAY (one buffer per
// CPU), as an async iterable of {cpu, data} and, when the kernel had to drop
// samples, {cpu, lost}: lost samples are never silent.
import { addon } from './internal/addon.js';
import { checkInt, fail, invalidArgType } from './internal/errors.js';
import { BadRecord, EventStream, typeDecoder, type EventStreamCounters, type EventStreamOptions, type OneDecoder, type TypedStreamOptions } from './internal/stream.js';
import type { Layout } from './layout.js';
import type { Decoded } from './codec.js';
import { BpfMap } from './map.js';

/** A sample (perf_buffer's sample_cb): `data` and the CPU it was written on. */
export interface PerfSample<T = Buffer> {
  cpu: number;
  /** The sample (a copy; the kernel pads raw samples to 8 bytes minus 4, so it may end in padding). */
  data: T;
  lost?: undefined;
}

/** Samples the kernel dropped on one CPU (perf_buffer's lost_cb). */
export interface PerfLost {
  cpu: number;
  /** How many samples the kernel dropped on this CPU because its buffer was full. */
  lost: number;
  data?: undefined;
}

/** What a PerfBuffer yields: a sample, or a count of lost ones (tell them apart by `lost`). */
export type PerfEvent<T = Buffer> = PerfSample<T> | PerfLost;

/**
 * How a PerfBuffer decodes samples: give at most one of `decode`, `type`
 * (with `btf` for a type from another file) and `layout`. The kernel pads
 * a raw sample to 8 bytes minus 4, so a record decoded by type may carry up
 * to 7 bytes past what the program sent: a char tail stops at its NUL, a
 * tail of other elements may hold them (send a count with it).
 */
export interface PerfBufferOptions<T> extends EventStreamOptions, TypedStreamOptions<T> {
  /** Pages per CPU buffer, a power of two (default 64). */
  pageCount?: number;
  /** Turns a sample (a copy, safe to keep) into the value yielded, given its CPU; default: the Buffer. */
  decode?: (sample: Buffer, cpu: number) => T;
}

/** What `stats` gives: the stream's counters and the samples lost so far. */
export interface PerfBufferStats extends EventStreamCounters {
  /** Samples the kernel reported lost, over all CPUs. */
  lost: number;
}

/**
 * The class behind PerfBuffer: its methods and properties (close(), stats,
 * batches(), the async iterator). Make one with `new PerfBuffer(...)`, whose
 * signatures type the records; `x instanceof PerfBuffer` works.
 */
export class PerfBufferImpl<T = Buffer> extends EventStream<PerfEvent<T>> {
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
    if (opts === null || typeof opts !== 'object') invalidArgType('opts', 'an object', opts);
    if (opts.decode !== undefined && typeof opts.decode !== 'function') invalidArgType('opts.decode', 'a function', opts.decode);
    const typed = typeDecoder([map], opts);
    const decode = opts.decode;
    const fd = map.liveFd();
    let undo: (() => void) | undefined;
    super('perf_buffer__consume', (onBatch) => new addon.NativePerfBuffer(fd, pages, onBatch), (b, at, len, cpu, kind) => {
      if (kind === 1) {
        const lost = Number(b.view!.getBigUint64(at, true));
        this.#lost += lost;
        return { cpu, lost };
      }
      if (typed) {
        const data = typed(b, at, len);
        // a record the type cannot decode: the stream skips and reports it
        if (data instanceof BadRecord) return data;
        return { cpu, data: data as T };
      }
      const data = b.data(at, len);
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

  /** close(), for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * The constructor's signatures, so that the sample type follows the
 * options: Buffers by default, T from `decode` or `layout`, and for `type`
 * the documented `Decoded` unless T is given (`new PerfBuffer<Event>(m,
 * { type: 'struct event' })`).
 */

/** The constructor signatures of PerfBuffer: the record type follows from `layout`, a type argument with `type`, or Buffer. */
export interface PerfBufferConstructor {
  new <T = Decoded>(map: BpfMap, opts: PerfBufferOptions<T> & { type: string; layout?: undefined; decode?: undefined }): PerfBuffer<T>;
  new <T>(map: BpfMap, opts: PerfBufferOptions<T> & { layout: Layout<T>; type?: undefined; decode?: undefined }): PerfBuffer<T>;
  new <T = Buffer>(map: BpfMap, opts?: PerfBufferOptions<T> & { type?: undefined; layout?: undefined }): PerfBuffer<T>;
  /** Options whose kind is known only at run time: T is what the caller says. */
  new <T = unknown>(map: BpfMap, opts?: PerfBufferOptions<T> & OneDecoder<T>): PerfBuffer<T>;
  readonly prototype: PerfBuffer<unknown>;
}

/**
 * Samples of a BPF_MAP_TYPE_PERF_EVENT_ARRAY (one buffer per CPU) as an
 * async iterable of {cpu, data} and, when the kernel had to drop samples,
 * {cpu, lost}. `data` is a Buffer, or decoded by `decode`, a BTF `type`
 * (from the map's object or `btf`) or a `layout`; a sample too short for
 * the type is skipped and reported (`onError`, else stats.decodeErrors and
 * a warning).
 */
export type PerfBuffer<T = Buffer> = PerfBufferImpl<T>;
/**
 * A consumer of a BPF_MAP_TYPE_PERF_EVENT_ARRAY (libbpf's perf_buffer: one
 * buffer of `pageCount` pages per CPU), polled on the event loop:
 * `for await` yields `{ cpu, data }` samples and `{ cpu, lost }` when the
 * kernel dropped some. Ownership and closing as RingBuffer's; a failed poll
 * rejects the pending read with a BpfError (op perf_buffer__consume).
 * @example
 * using pb = new PerfBuffer(obj.map('events'), { pageCount: 64 });
 * for await (const ev of pb) if ('lost' in ev) console.warn(ev.lost, 'lost on CPU', ev.cpu); else handle(ev.data);
 */
export const PerfBuffer = PerfBufferImpl as PerfBufferConstructor;
