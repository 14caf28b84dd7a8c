// RingBuffer: records of one or several BPF_MAP_TYPE_RINGBUF maps, as an
// async iterable. The rings are mapped into JavaScript and read from their
// pages on each wakeup (internal/ring_reader.ts): raw records are copied
// once per batch, typed ones decoded straight from the pages. libbpf's
// callback consumer (native/ring_buffer.cc, records copied in native code)
// is kept only for rings over 1 GiB, whose double mapping a typed array
// cannot span. With { drain: 'thread' } a native thread takes the records
// instead (native/ring_thread.cc), so a blocked event loop costs queue
// memory rather than records. See internal/stream.ts for the queue.
import { addon, type NativeRingBuffer, type NativeRingMmap, type NativeRingThread } from './internal/addon.js';
import { MAX_MAPPED_RING, RingReader } from './internal/ring_reader.js';
import { checkInt, fail, invalidArgType } from './internal/errors.js';
import { EventStream, RecordBatch, typeCodec, typeDecoder, type EventStreamCounters, type EventStreamOptions, type OneDecoder, type RecordRead, type TypedStreamOptions } from './internal/stream.js';
import type { Layout } from './layout.js';
import type { Decoded } from './codec.js';
import { BpfMap } from './map.js';

/**
 * How a RingBuffer decodes records: give at most one of `decode`, `type`
 * (with `btf` for a type from another file) and `layout`.
 */
export interface RingBufferOptions<T> extends EventStreamOptions, TypedStreamOptions<T> {
  /** Turns a record (a copy, safe to keep) into the value yielded; default: the Buffer itself. */
  decode?: (record: Buffer, map: BpfMap) => T;
  /** At most this many records per wakeup (default 8192), so one ring cannot starve the event loop. */
  batchSize?: number;
  /** At most about this many bytes per wakeup (default 4 MiB). */
  batchBytes?: number;
  /**
   * Who takes records out of the rings. 'loop' (default): JavaScript, on
   * each event-loop turn, straight from the mapped pages; while the loop is
   * busy the ring fills and, once full, the kernel drops records. 'thread':
   * a native thread keeps taking them into a queue in user space (at most
   * `queueBytes`) while JavaScript is busy, and the loop gets them in
   * batches; a blocked loop then costs memory, not records, up to the bound.
   */
  drain?: 'loop' | 'thread';
  /** With drain: 'thread', the most bytes the queue holds before the thread waits (default 64 MiB). */
  queueBytes?: number;
}

/** What `stats` gives: the stream's counters and the bytes still in the rings. */
export interface RingBufferStats extends EventStreamCounters {
  /** Bytes written by the BPF side and not yet consumed, summed over the rings. */
  availableBytes: number;
}

function ringMaps(maps: BpfMap | readonly BpfMap[]): BpfMap[] {
  const list = Array.isArray(maps) ? [...maps] : [maps];
  if (list.length === 0) invalidArgType('maps', 'a BpfMap or a non-empty array of them', maps);
  for (const m of list) {
    if (!(m instanceof BpfMap)) invalidArgType('maps', 'a BpfMap or an array of them', m);
    if (m.type !== 'ringbuf') {
      fail(TypeError, 'ERR_INVALID_ARG_VALUE', `RingBuffer needs BPF_MAP_TYPE_RINGBUF maps; map '${m.name}' is a ${m.type} map`);
    }
  }
  return list;
}

/**
 * The class behind RingBuffer: its methods and properties (close(), stats,
 * batches(), the async iterator). Make one with `new RingBuffer(...)`, whose
 * signatures type the records; `x instanceof RingBuffer` works.
 */
export class RingBufferImpl<T = Buffer> extends EventStream<T> {
  #maps: BpfMap[];
  #reader: RingReader | undefined;
  readonly #raw: boolean;

  constructor(maps: BpfMap | readonly BpfMap[], opts: RingBufferOptions<T> = {}) {
    const list = ringMaps(maps);
    const batchSize = checkInt('opts.batchSize', opts.batchSize ?? 8192, 1, 0x7fff_ffff);
    const batchBytes = checkInt('opts.batchBytes', opts.batchBytes ?? 4 << 20, 1, 0x7fff_ffff);
    if (opts === null || typeof opts !== 'object') invalidArgType('opts', 'an object', opts);
    if (opts.decode !== undefined && typeof opts.decode !== 'function') invalidArgType('opts.decode', 'a function', opts.decode);
    const decode = opts.decode;
    const fds = list.map((m) => m.liveFd());
    const undo: (() => void)[] = [];
    const drain = opts.drain ?? 'loop';
    if (drain !== 'loop' && drain !== 'thread') fail(TypeError, 'ERR_INVALID_ARG_VALUE', `opts.drain must be 'loop' or 'thread'; received ${String(drain)}`);
    const queueBytes = checkInt('opts.queueBytes', opts.queueBytes ?? 64 << 20, 1 << 16, 2 ** 40);
    const threaded = drain === 'thread';
    const mapped = !threaded && list.every((m) => m.maxEntries <= MAX_MAPPED_RING);
    const reader = mapped ? new RingReader(batchSize, batchBytes, typeCodec(list, opts)) : undefined;
    const typed = reader ? undefined : typeDecoder(list, opts) as RecordRead<T> | undefined;
    super('ring_buffer__consume', (onBatch) => {
      if (threaded) {
        const native = new addon.NativeRingThread(onBatch, queueBytes, batchSize, batchBytes);
        try {
          list.forEach((m, i) => native.add(fds[i]!, m.maxEntries));
          native.start();
        } catch (e) {
          native.close();
          throw e;
        }
        return native;
      }
      if (reader) {
        const native = new addon.NativeRingMmap(onBatch);
        try {
          list.forEach((m, i) => reader.add(native.add(fds[i]!, m.maxEntries), m.maxEntries));
        } catch (e) {
          native.close();
          throw e;
        }
        return native;
      }
      const native = new addon.NativeRingBuffer(fds[0]!, onBatch, batchSize, batchBytes);
      try {
        for (const fd of fds.slice(1)) native.add(fd);
      } catch (e) {
        native.close();
        throw e;
      }
      return native;
    }, typed ?? (decode ? (b, at, len, source) => decode(b.data(at, len), list[source]!) : (b, at, len) => b.data(at, len) as T),
    opts, () => undo.forEach((u) => u()), reader && { drain: (push) => reader.drain(push), holding: () => reader.holding() });
    this.#maps = list;
    this.#reader = reader;
    this.#raw = decode === undefined && opts.type === undefined && opts.layout === undefined;
    if (!this.closed) for (const m of list) undo.push(m.addDependent(this));
  }

  /** The rings this buffer consumes. */
  /**
   * Yields the records batch by batch as they arrive, each batch one copy
   * (a {@link RecordBatch}: `buffer`, `offsets`, `lengths`), with no
   * object made per record: the fastest way to take raw records, for
   * consumers that read the bytes themselves (at C's rates where `for
   * await` over records cannot keep up). Raw streams only: a RingBuffer
   * made with `decode`, `type` or `layout` throws. Records are taken in
   * order whichever iterator takes them. Leaving the loop early closes the
   * stream.
   *
   * ```ts
   * for await (const batch of rb.recordBatches()) {
   *   for (let i = 0; i < batch.length; i++) total += batch.buffer.readUInt32LE(batch.offsets[i]);
   * }
   * ```
   */
  recordBatches(): AsyncIterableIterator<RecordBatch> {
    if (!this.#raw) fail(TypeError, 'ERR_INVALID_STATE', 'recordBatches() gives raw records: this RingBuffer decodes them (opts.decode, type or layout); iterate it or use batches()');
    return this.recordBatchIterator();
  }

  get maps(): readonly BpfMap[] {
    return this.#maps;
  }

  get stats(): RingBufferStats {
    const native = this.native as NativeRingBuffer | NativeRingMmap | NativeRingThread | undefined;
    let availableBytes = 0;
    if (native) availableBytes = (this.#reader ? this.#reader.available() : (native as NativeRingBuffer | NativeRingThread).available()).reduce((a, b) => a + b, 0);
    return { ...this.counters, availableBytes };
  }

  /** close(), for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * The constructor's signatures, so that the record type follows the
 * options: Buffers by default, T from `decode` or `layout`, and for `type`
 * the documented `Decoded` unless T is given (`new RingBuffer<Event>(m,
 * { type: 'struct event' })`).
 */

/** The constructor signatures of RingBuffer: the record type follows from `layout`, a type argument with `type`, or Buffer. */
export interface RingBufferConstructor {
  new <T = Decoded>(maps: BpfMap | readonly BpfMap[], opts: RingBufferOptions<T> & { type: string; layout?: undefined; decode?: undefined }): RingBuffer<T>;
  new <T>(maps: BpfMap | readonly BpfMap[], opts: RingBufferOptions<T> & { layout: Layout<T>; type?: undefined; decode?: undefined }): RingBuffer<T>;
  new <T = Buffer>(maps: BpfMap | readonly BpfMap[], opts?: RingBufferOptions<T> & { type?: undefined; layout?: undefined }): RingBuffer<T>;
  /** Options whose kind is known only at run time: T is what the caller says. */
  new <T = unknown>(maps: BpfMap | readonly BpfMap[], opts?: RingBufferOptions<T> & OneDecoder<T>): RingBuffer<T>;
  readonly prototype: RingBuffer<unknown>;
}

/**
 * Records of one or several BPF_MAP_TYPE_RINGBUF maps, as an async
 * iterable: Buffers, or values decoded by `decode`, a BTF `type` (from the
 * map's object or `btf`) or a `layout`. A record too short for the type is
 * skipped and reported (`onError`, else stats.decodeErrors and a warning).
 */
export type RingBuffer<T = Buffer> = RingBufferImpl<T>;
/**
 * A consumer of one or several BPF_MAP_TYPE_RINGBUF maps, polled on the
 * event loop through libuv: `for await (const r of rb)`. Made with
 * `new RingBuffer(map | maps, opts)` on loaded maps. The maps hold it
 * (weakly) and close it when they or their object close; close() is
 * idempotent, `using` and leaving a `for await` call it, and aborting
 * `opts.signal` rejects the pending read with its reason. A failed poll
 * rejects the pending read with a BpfError.
 * @example
 * using rb = new RingBuffer(obj.map('events'), { type: 'struct event' });
 * for await (const e of rb) console.log(e);
 */
export const RingBuffer = RingBufferImpl as RingBufferConstructor;
