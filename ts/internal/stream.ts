// The consumer side shared by RingBuffer and PerfBuffer. The addon delivers
// records in batches (one call per wakeup); they wait here in an
// index-based queue until an iterator takes them. Polling is paused above a
// high-water mark so the kernel's buffer fills instead of Node's memory, and
// the poll handle keeps the process alive only while someone waits.
import { BpfError } from '../errors.js';
import { Btf } from '../btf.js';
import { codecFor, type Codec } from '../codec.js';
import { Layout } from '../layout.js';
import type { BpfMap } from '../map.js';
import { checkInt, fail, invalidArgType } from './errors.js';
import { viewOf } from './views.js';
import { performance } from 'node:perf_hooks';

export interface NativeStream {
  resume(): void;
  pause(): void;
  ref(): void;
  unref(): void;
  consume(): number;
  close(): void;
}

/**
 * The addon's call on each wakeup: a batch it filled, or (a stream with a
 * `pull`) null, and the stream reads the records itself and returns how
 * many it took.
 */
export type OnBatch = (batch: Buffer | null, count: number, errno: number) => number | void;

/** Where each record of a batch is, noted by whoever made it (the mapped ring reader). */
export interface BatchIndex {
  readonly offsets: Uint32Array;
  readonly lengths: Uint32Array;
  readonly sources: Uint16Array;
}

/**
 * Records waiting for a reader, in one of three forms (one class, so that
 * the code taking records sees a single shape):
 * - framed: a copy the addon filled, `count` frames of an 8-byte header
 *   {u32 len; u16 source; u16 kind} and data padded to 8 bytes; `off` is
 *   the byte offset of the next frame;
 * - indexed: a copy of ring records with `index` saying where each one is
 *   (nothing rewritten in the copy); `off` is the next record's number;
 * - in a mapped ring: `ring` decodes record `off` straight from the
 *   kernel's pages when a reader takes it (so a decoded object lives only
 *   as long as its reader keeps it, not while it waits in the queue), and
 *   releases the ring space once the batch is used up.
 */
export class Batch {
  /** The next frame's byte offset (framed), or the next record's number. */
  off = 0;
  /** The copy's ArrayBuffer and where the copy starts in it (Buffer#buffer is a slow getter). */
  readonly ab: ArrayBuffer | undefined;
  readonly base: number;
  /** The copy as a DataView, for decoders. */
  readonly view: DataView | undefined;

  private constructor(
    readonly buf: Buffer | undefined,
    /** The framed copy as 32-bit words, for the headers. */
    readonly words: Uint32Array | undefined,
    readonly index: BatchIndex | undefined,
    readonly ring: RingRecords | undefined,
    /** Records not taken yet. */
    public left: number,
  ) {
    this.ab = buf?.buffer as ArrayBuffer | undefined;
    this.base = buf ? buf.byteOffset : 0;
    this.view = buf ? new DataView(this.ab!, this.base, buf.length) : undefined;
  }

  /** `count` frames in `buf` (4-byte aligned: the addon's batches are fresh allocations). */
  static framed(buf: Buffer, count: number): Batch {
    return new Batch(buf, new Uint32Array(buf.buffer, buf.byteOffset, buf.length >>> 2), undefined, undefined, count);
  }

  static indexed(buf: Buffer, index: BatchIndex): Batch {
    return new Batch(buf, undefined, index, undefined, index.offsets.length);
  }

  static inRing(ring: RingRecords, count: number): Batch {
    return new Batch(undefined, undefined, undefined, ring, count);
  }

  /** Bytes `at` … `at + len` of the copy as a Buffer (no further copy). */
  data(at: number, len: number): Buffer {
    return viewOf(this.ab!, this.base + at, len);
  }
}

/** Records still in a mapped ring (ring_reader.ts): decoded when taken. */
export interface RingRecords {
  /** Record `i` of the batch, decoded (or a BadRecord). */
  read(i: number): unknown;
  /** Every record was taken: the ring may reuse their space. */
  release(): void;
}

/**
 * Turns one record of a raw batch into what the stream yields (or a
 * BadRecord): its data is `len` bytes at `at` in the batch; `source` is
 * the ring index or CPU, `kind` 1 for a perf buffer's lost-records count.
 */
export type RecordRead<T> = (batch: Batch, at: number, len: number, source: number, kind: number) => T | BadRecord;

/**
 * A stream that reads its records itself (from a mapped ring): `drain` is
 * called on each wakeup and by consume(), hands what it took to `push` and
 * returns the number of records; `holding` says whether queued batches
 * still hold ring space (records decoded when taken).
 */
export interface Pull {
  drain(push: (batch: Batch, bytes: number) => void): number;
  holding(): boolean;
}

/** Options every event stream takes. */
export interface EventStreamOptions {
  /** Aborting closes the stream; a pending read rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Records queued in JavaScript before polling pauses (default 65536). */
  highWaterMark?: number;
}

/**
 * How records are decoded by type: `type` names a BTF type, looked up in
 * `btf` if given (Btf.fromFile('types.bpf.o'): event types that never reach
 * the object's BTF) else in the map's object's BTF; or `layout` is a
 * struct() layout declared in TypeScript. Records may be shorter than the
 * type: see Codec.decodeRecord().
 */
export interface TypedStreamOptions<T> {
  /** Decode each record as this BTF type, e.g. 'struct event'. */
  type?: string;
  /** Where to find `type` (default: the BTF of the map's object). */
  btf?: Btf;
  /** Or decode each record with this layout (struct({...})); records are typed by it. */
  layout?: Layout<T>;
  /**
   * Called for a record the type or layout cannot decode (shorter than its
   * fixed members), with the error and a copy of the record; the record is
   * skipped and the stream goes on. Without it such records are counted in
   * `stats.decodeErrors` and the first one is reported once with
   * process.emitWarning(). An exception thrown here ends the stream.
   */
  onError?: (error: Error, record: Buffer) => void;
}

/** What a decoder returns for a record it could not decode: the stream skips and reports it. */
export class BadRecord {
  constructor(readonly error: Error, readonly record: Buffer) {}
}

/** Stream options with at most one of decode, type and layout (for the constructors' signatures). */
export type OneDecoder<T> =
  | { type?: undefined; layout?: undefined }
  | { type: string; layout?: undefined; decode?: undefined }
  | { layout: Layout<T>; type?: undefined; decode?: undefined };

/**
 * The codec records are decoded with, by BTF type or layout (undefined
 * where neither is given); the options are checked here.
 */
export function typeCodec(maps: readonly BpfMap[], opts: TypedStreamOptions<unknown> & { decode?: unknown }): Codec | undefined {
  const { type, btf, layout } = opts;
  if (layout !== undefined && !(layout instanceof Layout)) invalidArgType('opts.layout', 'a Layout (from struct() or array())', layout);
  if (btf !== undefined && !(btf instanceof Btf)) invalidArgType('opts.btf', 'a Btf (Btf.fromFile(), Btf.parse())', btf);
  if (opts.onError !== undefined && typeof opts.onError !== 'function') invalidArgType('opts.onError', 'a function', opts.onError);
  if (type !== undefined && typeof type !== 'string') invalidArgType('opts.type', 'a BTF type name such as \'struct event\'', type);
  const given = [opts.decode !== undefined && 'decode', type !== undefined && 'type', layout !== undefined && 'layout'].filter(Boolean);
  if (given.length > 1) fail(TypeError, 'ERR_INVALID_ARG_VALUE', `opts.${given.join(' and opts.')} exclude each other: give one way to decode records`);
  if (btf !== undefined && type === undefined) fail(TypeError, 'ERR_INVALID_ARG_VALUE', 'opts.btf needs opts.type: the name of the type to decode records as');
  let codec: Codec;
  if (layout !== undefined) {
    codec = layout.codec;
  } else if (type !== undefined) {
    const from = btf ?? maps[0]!.btf;
    if (!from) return fail(TypeError, 'ERR_INVALID_ARG_VALUE', `map '${maps[0]!.name}' has no BTF to find '${type}' in; give opts.btf (Btf.fromFile()) or opts.layout`);
    if (!from.find(type)) {
      return fail(TypeError, 'ERR_INVALID_ARG_VALUE', btf
        ? `no BTF type named '${type}' in opts.btf`
        : `no BTF type named '${type}' in the BTF of map '${maps[0]!.name}'s object (a type the program only sends is not there: give opts.btf = Btf.fromFile('types.bpf.o') or opts.layout)`);
    }
    codec = codecFor(from, type);
  } else {
    return undefined;
  }
  return codec;
}

/**
 * A record decoder by BTF type or layout (undefined where neither is
 * given): straight from the batch, no Buffer and no DataView per record.
 */
export function typeDecoder(maps: readonly BpfMap[], opts: TypedStreamOptions<unknown> & { decode?: unknown }): ((batch: Batch, at: number, len: number) => unknown) | undefined {
  const codec = typeCodec(maps, opts);
  if (codec === undefined) return undefined;
  return (b, at, len) => {
    try {
      return codec.decodeRecordAt(b.view!, b.buf!, at, len);
    } catch (e) {
      return new BadRecord(e as Error, b.data(at, len));
    }
  };
}

/** Counters of a ring or perf buffer since it was made. */
export interface EventStreamCounters {
  /** Records handed to JavaScript. */
  records: number;
  /** Bytes of those records' data. */
  bytes: number;
  /** Batches (wakeups that delivered records). */
  batches: number;
  /** Records waiting in JavaScript for a reader. */
  queued: number;
  /**
   * Records skipped because the type or layout could not decode them (too
   * short for its fixed members); also counted in `records`.
   */
  decodeErrors: number;
}

// See EventStream#turnStart.
const YIELD_CHECK = 1024;
const YIELD_MS = 2;

// No record to give: every queued one was skipped.
const NONE: unique symbol = Symbol('none');

// What a read takes: one record, every queued record, or one batch as it
// arrived (a RecordBatch).
type ReadMode = 'one' | 'all' | 'records';
type Taken<T> = T | T[] | RecordBatch;

interface Waiter<T> {
  resolve(r: IteratorResult<Taken<T>>): void;
  reject(e: unknown): void;
  mode: ReadMode;
}

/**
 * The raw records of one batch as they arrived, in one Buffer (a copy: the
 * kernel's ring is already released): what RingBuffer.recordBatches()
 * yields. No object is made per record unless asked for (at(), the
 * iterator): a consumer that reads `buffer` at `offsets[i]` for
 * `lengths[i]` bytes does no allocation per record, which is what lets
 * JavaScript keep up with a producer at C's rates.
 */
export class RecordBatch implements Iterable<Buffer> {
  // The copy's ArrayBuffer and where the copy starts in it, read once
  // (Buffer#buffer is a slow getter, and at() runs once per record).
  readonly #ab: ArrayBuffer;
  readonly #base: number;

  /** @internal */
  constructor(
    /** The batch's bytes; records are at `offsets`, other bytes are framing. */
    readonly buffer: Buffer,
    /** Byte offset of each record's data in `buffer`. */
    readonly offsets: Uint32Array,
    /** Length of each record in bytes. */
    readonly lengths: Uint32Array,
    /** Which ring (index in the RingBuffer's maps) each record came from. */
    readonly sources: Uint16Array,
  ) {
    this.#ab = buffer.buffer as ArrayBuffer;
    this.#base = buffer.byteOffset;
  }

  /** Records in the batch. */
  get length(): number {
    return this.offsets.length;
  }

  /** Record `i` as a Buffer over the batch's copy (no further copy). */
  at(i: number): Buffer {
    if (!Number.isInteger(i) || i < 0 || i >= this.offsets.length) {
      fail(RangeError, 'ERR_OUT_OF_RANGE', `record index must be an integer from 0 to ${this.offsets.length - 1}; received ${String(i)}`);
    }
    return viewOf(this.#ab, this.#base + this.offsets[i]!, this.lengths[i]!);
  }

  /** The records as Buffers over the batch's copy, in order. */
  *[Symbol.iterator](): IterableIterator<Buffer> {
    for (let i = 0; i < this.offsets.length; i++) yield viewOf(this.#ab, this.#base + this.offsets[i]!, this.lengths[i]!);
  }
}

// Streams with a pending read, kept reachable: the awaiting code is held
// only by the stream's own waiters.
const reading = new Set<object>();

// Open streams are closed when the process exits, before Node tears down
// its handles (a poll firing during teardown has no JavaScript to call).
const open = new Set<WeakRef<EventStream<unknown>>>();
let exitHook = false;
function closeAtExit(s: EventStream<unknown>): WeakRef<EventStream<unknown>> {
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const ref of open) ref.deref()?.close();
    });
  }
  const ref = new WeakRef(s);
  open.add(ref);
  return ref;
}

export class EventStream<T> implements AsyncIterable<T> {
  #native: NativeStream | undefined;
  #read1: RecordRead<T>;
  #batches: (Batch | undefined)[] = [];
  #pull: Pull | undefined;
  readonly #push = (b: Batch, bytes: number): void => {
    this.#batches.push(b);
    const c = this.counters;
    c.records += b.left;
    c.batches++;
    c.bytes += bytes;
    c.queued += b.left;
  };
  #head = 0;
  // Fairness to the rest of the process: `for await` over records that are
  // already queued runs as one chain of microtasks, which holds the event
  // loop until the queue is empty (65,536 records at a few hundred ns each
  // is tens of ms: timers, I/O and HTTP requests wait). Every
  // YIELD_CHECK reads the time; past YIELD_MS since the turn began, the
  // next read resolves from setImmediate, so the loop runs its other
  // handles in between. The check is amortised: one clock read per 1,024
  // records, or per batch for batches() and recordBatches().
  #turnStart = 0;
  #sinceCheck = 0;
  #waiters: Waiter<T>[] = [];
  #error: unknown;
  #paused = false;
  // Polling stopped while queued records hold ring space (#pullNow).
  #held = false;
  #highWaterMark: number;
  #signal: AbortSignal | undefined;
  #onAbort: (() => void) | undefined;
  #onClose: (() => void) | undefined;
  #openRef: WeakRef<EventStream<unknown>> | undefined;
  readonly counters: EventStreamCounters = { records: 0, bytes: 0, batches: 0, queued: 0, decodeErrors: 0 };
  #onError: ((error: Error, record: Buffer) => void) | undefined;
  #warned = false;
  // Held here so the addon's weak reference to it lives as long as the stream.
  readonly #onBatch: OnBatch;
  readonly #op: string;

  /** `read` turns one record of a raw batch into a value. */
  constructor(op: string, start: (onBatch: OnBatch) => NativeStream,
    read: RecordRead<T>, opts: EventStreamOptions, onClose?: () => void, pull?: Pull) {
    if (opts === null || typeof opts !== 'object') invalidArgType('opts', 'an object', opts);
    this.#highWaterMark = checkInt('opts.highWaterMark', opts.highWaterMark ?? 65536, 1, 0x7fff_ffff);
    this.#op = op;
    this.#read1 = read;
    this.#onClose = onClose;
    this.#pull = pull;
    const onError = (opts as { onError?: unknown }).onError;
    if (onError !== undefined && typeof onError !== 'function') invalidArgType('opts.onError', 'a function', onError);
    this.#onError = onError as ((error: Error, record: Buffer) => void) | undefined;
    this.#onBatch = (batch, count, errno) => this.#deliver(batch, count, errno);
    const signal = opts.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) invalidArgType('opts.signal', 'an AbortSignal', signal);
    if (signal?.aborted) {
      this.#error = signal.reason;
      return;
    }
    this.#native = start(this.#onBatch);
    this.#openRef = closeAtExit(this as EventStream<unknown>);
    if (signal) {
      this.#signal = signal;
      this.#onAbort = () => this.#fail(signal.reason);
      signal.addEventListener('abort', this.#onAbort, { once: true });
    }
  }

  get closed(): boolean {
    return this.#native === undefined;
  }

  /** @internal The addon, while open. */
  get native(): NativeStream | undefined {
    return this.#native;
  }

  #deliver(batch: Buffer | null, count: number, errno: number): number {
    if (errno !== 0) {
      this.#fail(new BpfError({ errno, op: this.#op, log: '' }));
      return 0;
    }
    if (this.#pull) return this.#pullNow();
    if (batch === null || count === 0 || !this.#native) return 0;
    this.#push(Batch.framed(batch, count), batch.length - 8 * count); // data, with its padding to 8 bytes
    this.#afterArrival();
    return count;
  }

  // Reads what the mapped ring holds now (one budget's worth).
  #pullNow(): number {
    if (!this.#native || !this.#pull) return 0;
    const n = this.#pull.drain(this.#push);
    if (n > 0) {
      this.#afterArrival();
    } else if (!this.#held && this.#pull.holding()) {
      // Nothing new, but records queued here still hold ring space, so the
      // ring stays readable and the poll would fire again at once (a busy
      // loop while the reader is elsewhere). Stop polling until a batch is
      // used up and its space released (#take); new records wait in the
      // ring meanwhile.
      this.#held = true;
      this.#native.pause();
    }
    return n;
  }

  // A queued batch gave its ring space back: poll again.
  #released(): void {
    if (this.#held) {
      this.#held = false;
      if (!this.#paused) this.#native?.resume();
    }
  }

  #afterArrival(): void {
    this.#turnStart = performance.now();
    this.#sinceCheck = 0;
    this.#serve();
    if (this.counters.queued >= this.#highWaterMark && !this.#paused && this.#native) {
      this.#paused = true;
      if (!this.#held) this.#native.pause();
    }
  }

  // The next record that decodes, or NONE once the queue is empty; bad
  // records are reported and skipped.
  #take(): T | typeof NONE {
    while (this.counters.queued > 0) {
      const b = this.#batches[this.#head]!;
      this.counters.queued--;
      if (--b.left === 0) this.#shift();
      let v: T | BadRecord;
      if (b.ring !== undefined) {
        v = b.ring.read(b.off++) as T | BadRecord;
        if (b.left === 0) {
          b.ring.release();
          this.#released();
        }
      } else if (b.index !== undefined) {
        const i = b.off++;
        const x = b.index;
        v = this.#read1(b, x.offsets[i]!, x.lengths[i]!, x.sources[i]!, 0);
      } else {
        const w = b.words!;
        const o = b.off >>> 2;
        const len = w[o]!;
        const meta = w[o + 1]!;
        b.off += 8 + ((len + 7) & ~7);
        v = this.#read1(b, (o << 2) + 8, len, meta & 0xffff, meta >>> 16);
      }
      if (v instanceof BadRecord) this.#badRecord(v);
      else return v;
    }
    return NONE;
  }

  // The head batch is used up.
  #shift(): void {
    this.#batches[this.#head++] = undefined;
    if (this.#head === this.#batches.length) {
      this.#batches.length = 0;
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#batches.length) {
      this.#batches = this.#batches.slice(this.#head);
      this.#head = 0;
    }
  }

  // What is left of the head batch as a RecordBatch: one walk over the
  // frame headers (discarded ring records are left out), no copy.
  #takeRecords(): RecordBatch | typeof NONE {
    if (this.counters.queued === 0) return NONE;
    const b = this.#batches[this.#head]!;
    if (b.buf === undefined) throw new Error('internal: decoded records in a raw stream');
    const n = b.left;
    this.counters.queued -= n;
    b.left = 0;
    this.#shift();
    const x = b.index;
    if (x !== undefined) {
      // the ring reader noted where its records are
      const from = b.off;
      return from === 0
        ? new RecordBatch(b.buf, x.offsets, x.lengths, x.sources)
        : new RecordBatch(b.buf, x.offsets.subarray(from), x.lengths.subarray(from), x.sources.subarray(from));
    }
    const offsets = new Uint32Array(n);
    const lengths = new Uint32Array(n);
    const sources = new Uint16Array(n);
    const w = b.words!;
    let off = b.off;
    for (let i = 0; i < n; i++) {
      const len = w[off >>> 2]!;
      offsets[i] = off + 8;
      lengths[i] = len;
      sources[i] = w[(off >>> 2) + 1]! & 0xffff;
      off += 8 + ((len + 7) & ~7);
    }
    b.off = off;
    return new RecordBatch(b.buf, offsets, lengths, sources);
  }

  // A record that could not be decoded: the stream goes on; the user's
  // onError hears of it, or the counter and a warning (once per stream).
  #badRecord(bad: BadRecord): void {
    this.counters.decodeErrors++;
    if (this.#onError) {
      this.#onError(bad.error, Buffer.from(bad.record));
      return;
    }
    if (this.#warned) return;
    this.#warned = true;
    process.emitWarning(`${this.constructor.name.replace(/Impl$/, '')}: a record could not be decoded and was skipped: ${bad.error.message}. ` +
      'Further ones are counted in stats.decodeErrors; pass opts.onError to handle each.', { type: 'LibbpfNodeWarning', code: 'LIBBPF_NODE_UNDECODED_RECORD' });
  }

  // What is left of the head batch (one arrival): a read never takes more
  // than one, so that batches() hands the event loop back between them as
  // for await does between records.
  #takeAll(): T[] {
    const out: T[] = [];
    const first = this.#batches[this.#head];
    while (this.counters.queued > 0 && (out.length === 0 || this.#batches[this.#head] === first)) {
      const v = this.#take();
      if (v === NONE) break;
      out.push(v);
    }
    return out;
  }

  #afterTake(): void {
    if (this.#paused && this.#native && this.counters.queued <= this.#highWaterMark >> 1) {
      this.#paused = false;
      if (!this.#held) this.#native.resume();
    }
  }

  // A record that cannot be decoded by a user's decode() (or an onError
  // that throws) ends the stream: the read that met it rejects with that
  // error. `none`: every queued record was skipped.
  #takeOrFail(mode: ReadMode): { value: Taken<T> } | { error: unknown } | { none: true } {
    try {
      const value = mode === 'one' ? this.#take() : mode === 'all' ? this.#takeAll() : this.#takeRecords();
      if (value === NONE || (mode === 'all' && (value as T[]).length === 0)) return { none: true };
      return { value };
    } catch (error) {
      this.#fail(error);
      return { error };
    }
  }

  #serve(): void {
    while (this.#waiters.length > 0 && this.counters.queued > 0) {
      const w = this.#waiters.shift()!; // a handful of readers at most
      const r = this.#takeOrFail(w.mode);
      if ('none' in r) {
        this.#waiters.unshift(w);
        break;
      }
      if ('error' in r) {
        w.reject(r.error);
        // the stream failed: the other waiters were rejected by #fail
        return;
      }
      w.resolve({ value: r.value, done: false });
    }
    if (this.#waiters.length === 0) this.#idle();
    this.#afterTake();
  }

  #idle(): void {
    if (reading.delete(this)) this.#native?.unref();
  }

  #read(mode: ReadMode): Promise<IteratorResult<Taken<T>>> {
    if (this.counters.queued > 0) {
      // A read of a batch is checked every time (one clock read per batch).
      if (mode !== 'one' || ++this.#sinceCheck >= YIELD_CHECK) {
        this.#sinceCheck = 0;
        const now = performance.now();
        if (now - this.#turnStart > YIELD_MS) {
          return new Promise((resolve) => setImmediate(() => {
            this.#turnStart = performance.now();
            resolve(this.#read(mode));
          }));
        }
      }
      const r = this.#takeOrFail(mode);
      if ('error' in r) return Promise.reject(r.error);
      this.#afterTake();
      if (!('none' in r)) return Promise.resolve({ value: r.value, done: false });
    }
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (!this.#native) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject, mode });
      if (!reading.has(this)) {
        reading.add(this);
        this.#native!.ref();
      }
    });
  }

  /** The next record (what `for await` calls). */
  next(): Promise<IteratorResult<T>> {
    // The common case, once per record: a record is queued, polling is
    // not paused and the turn's time needs no check yet.
    if (this.counters.queued > 0 && !this.#paused && this.#sinceCheck < YIELD_CHECK - 1) {
      this.#sinceCheck++;
      let v: T | typeof NONE;
      try {
        v = this.#take();
      } catch (error) {
        this.#fail(error);
        return Promise.reject(error);
      }
      if (v !== NONE) return Promise.resolve({ value: v, done: false });
    }
    return this.#read('one') as Promise<IteratorResult<T>>;
  }

  /** The records of one arrival that are still queued (one wakeup's, or one 64 KiB copy's), or the next to arrive. */
  nextBatch(): Promise<IteratorResult<T[]>> {
    return this.#read('all') as Promise<IteratorResult<T[]>>;
  }

  /** `for await (const r of stream)`: records one at a time; leaving the loop early closes the stream. */
  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this.#iterator(() => this.next());
  }

  /** Yields arrays of records, one per arrival (one wakeup, or one 64 KiB copy of a mapped ring). */
  batches(): AsyncIterableIterator<T[]> {
    return this.#iterator(() => this.nextBatch());
  }

  /**
   * @internal Raw streams only (RingBuffer.recordBatches()): yields each
   * batch as it arrived, as a RecordBatch.
   */
  protected recordBatchIterator(): AsyncIterableIterator<RecordBatch> {
    return this.#iterator(() => this.#read('records') as Promise<IteratorResult<RecordBatch>>);
  }

  #iterator<R>(next: () => Promise<IteratorResult<R>>): AsyncIterableIterator<R> {
    const it: AsyncIterableIterator<R> = {
      next,
      // `break` out of a for await: stop and release everything.
      return: async () => {
        this.close();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  /** Drains what the kernel holds now, without waiting; returns records delivered. */
  consume(): number {
    if (this.#pull) return this.#pullNow();
    return this.#native ? this.#native.consume() : 0;
  }

  #fail(error: unknown): void {
    this.#error = error;
    const waiters = this.#waiters;
    this.#waiters = [];
    this.#release();
    for (const w of waiters) w.reject(error);
  }

  #release(): void {
    if (!this.#native) return;
    this.#idle();
    if (this.#openRef) open.delete(this.#openRef);
    this.#native.close();
    this.#native = undefined;
    this.#batches = [];
    this.#head = 0;
    this.counters.queued = 0;
    if (this.#onAbort) this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#onClose?.();
  }

  /** Stops polling and releases the kernel buffers; pending reads end (done). Idempotent. */
  close(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    this.#release();
    for (const w of waiters) w.resolve({ value: undefined, done: true });
  }
}
