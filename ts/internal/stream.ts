// The consumer side shared by RingBuffer and PerfBuffer. The addon delivers
// records in batches (one call per wakeup); they wait here in an
// index-based queue until an iterator takes them. Polling is paused above a
// high-water mark so the kernel's buffer fills instead of Node's memory, and
// the poll handle keeps the process alive only while someone waits.
import { BpfError } from '../errors.js';
import { codecFor } from '../codec.js';
import type { BpfMap } from '../map.js';
import { checkInt, fail, invalidArgType } from './errors.js';
import { view } from './views.js';

export interface NativeStream {
  resume(): void;
  pause(): void;
  ref(): void;
  unref(): void;
  consume(): number;
  close(): void;
}

export type OnBatch = (batch: Buffer | null, count: number, errno: number) => void;

/**
 * A batch as the addon delivers it: `count` frames of an 8-byte header
 * {u32 len; u16 source; u16 kind} and data padded to 8 bytes. Records are
 * read from it one at a time, when a reader takes them.
 */
export interface RawBatch {
  readonly buf: Buffer;
  /** The batch as 32-bit words, for the headers. */
  readonly words: Uint32Array;
  /** The batch as a DataView, made once, for decoders. */
  readonly view: DataView;
  /** Byte offset of the next frame. */
  off: number;
  /** Frames not read yet. */
  left: number;
}

/** The data of the frame at `b.off` (a view of the batch, which is a copy); advances past it. */
export function frameData(b: RawBatch): Buffer {
  const len = b.words[b.off >>> 2]!;
  const data = view(b.buf, b.off + 8, len);
  b.off += 8 + ((len + 7) & ~7);
  return data;
}

/** The header fields of the frame at `b.off`: source (ring index or CPU) and kind. */
export function frameSource(b: RawBatch): number {
  return b.words[(b.off >>> 2) + 1]! & 0xffff;
}

export function frameKind(b: RawBatch): number {
  return b.words[(b.off >>> 2) + 1]! >>> 16;
}

/** Options every event stream takes. */
export interface EventStreamOptions {
  /** Aborting closes the stream; a pending read rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Records queued in JavaScript before polling pauses (default 65536). */
  highWaterMark?: number;
}

/**
 * A record decoder by BTF type name (e.g. 'struct event'), from the BTF of
 * the map's object.
 */
export function typeDecoder(maps: readonly BpfMap[], type: unknown): (batch: RawBatch) => unknown {
  if (typeof type !== 'string') invalidArgType('opts.type', 'a BTF type name such as \'struct event\'', type);
  const btf = maps[0]!.btf;
  if (!btf) return fail(TypeError, 'ERR_INVALID_ARG_VALUE', `map '${maps[0]!.name}' has no BTF to find '${type}' in`);
  const codec = codecFor(btf, type);
  // Straight from the batch: no Buffer and no DataView per record.
  return (b) => {
    const len = b.words[b.off >>> 2]!;
    if (len < codec.size) fail(RangeError, 'ERR_OUT_OF_RANGE', `a ${len}-byte record is too small for ${codec.typeName} (${codec.size} bytes)`);
    const value = codec.decodeAt(b.view, b.buf, b.off + 8);
    b.off += 8 + ((len + 7) & ~7);
    return value;
  };
}

export interface EventStreamCounters {
  /** Records handed to JavaScript. */
  records: number;
  /** Bytes of those records' data. */
  bytes: number;
  /** Batches (wakeups that delivered records). */
  batches: number;
  /** Records waiting in JavaScript for a reader. */
  queued: number;
}

interface Waiter<T> {
  resolve(r: IteratorResult<T | T[]>): void;
  reject(e: unknown): void;
  batch: boolean;
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
  #read1: (batch: RawBatch) => T;
  #batches: (RawBatch | undefined)[] = [];
  #head = 0;
  #waiters: Waiter<T>[] = [];
  #error: unknown;
  #paused = false;
  #highWaterMark: number;
  #signal: AbortSignal | undefined;
  #onAbort: (() => void) | undefined;
  #onClose: (() => void) | undefined;
  #openRef: WeakRef<EventStream<unknown>> | undefined;
  readonly counters: EventStreamCounters = { records: 0, bytes: 0, batches: 0, queued: 0 };
  // Held here so the addon's weak reference to it lives as long as the stream.
  readonly #onBatch: OnBatch;
  readonly #op: string;

  /**
   * `read` turns the frame at the batch's offset into a value and advances
   * past it (with frameData()).
   */
  constructor(op: string, start: (onBatch: OnBatch) => NativeStream,
    read: (batch: RawBatch) => T, opts: EventStreamOptions, onClose?: () => void) {
    if (opts === null || typeof opts !== 'object') invalidArgType('opts', 'an object', opts);
    this.#highWaterMark = checkInt('opts.highWaterMark', opts.highWaterMark ?? 65536, 1, 0x7fff_ffff);
    this.#op = op;
    this.#read1 = read;
    this.#onClose = onClose;
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

  #deliver(batch: Buffer | null, count: number, errno: number): void {
    if (errno !== 0) {
      this.#fail(new BpfError({ errno, op: this.#op, log: '' }));
      return;
    }
    if (batch === null || count === 0 || !this.#native) return;
    // The addon's batches are fresh allocations, so 4-byte aligned.
    const words = new Uint32Array(batch.buffer, batch.byteOffset, batch.length >>> 2);
    this.#batches.push({ buf: batch, words, view: new DataView(batch.buffer, batch.byteOffset, batch.length), off: 0, left: count });
    const c = this.counters;
    c.records += count;
    c.batches++;
    c.bytes += batch.length - 8 * count; // data, with its padding to 8 bytes
    c.queued += count;
    this.#serve();
    if (c.queued >= this.#highWaterMark && !this.#paused) {
      this.#paused = true;
      this.#native.pause();
    }
  }

  #take(): T {
    const b = this.#batches[this.#head]!;
    this.counters.queued--;
    if (--b.left === 0) {
      this.#batches[this.#head++] = undefined;
      if (this.#head === this.#batches.length) {
        this.#batches.length = 0;
        this.#head = 0;
      } else if (this.#head >= 1024 && this.#head * 2 >= this.#batches.length) {
        this.#batches = this.#batches.slice(this.#head);
        this.#head = 0;
      }
    }
    return this.#read1(b);
  }

  #takeAll(): T[] {
    const out = new Array<T>(this.counters.queued);
    for (let i = 0; i < out.length; i++) out[i] = this.#take();
    return out;
  }

  #afterTake(): void {
    if (this.#paused && this.#native && this.counters.queued <= this.#highWaterMark >> 1) {
      this.#paused = false;
      this.#native.resume();
    }
  }

  // A record that cannot be decoded ends the stream: the read that met it
  // rejects with the decoder's error.
  #takeOrFail(batch: boolean): { value: T | T[] } | { error: unknown } {
    try {
      return { value: batch ? this.#takeAll() : this.#take() };
    } catch (error) {
      this.#fail(error);
      return { error };
    }
  }

  #serve(): void {
    while (this.#waiters.length > 0 && this.counters.queued > 0) {
      const w = this.#waiters.shift()!; // a handful of readers at most
      const r = this.#takeOrFail(w.batch);
      if ('error' in r) w.reject(r.error);
      else w.resolve({ value: r.value, done: false });
    }
    if (this.#waiters.length === 0) this.#idle();
    this.#afterTake();
  }

  #idle(): void {
    if (reading.delete(this)) this.#native?.unref();
  }

  #read(batch: boolean): Promise<IteratorResult<T | T[]>> {
    if (this.counters.queued > 0) {
      const r = this.#takeOrFail(batch);
      if ('error' in r) return Promise.reject(r.error);
      this.#afterTake();
      return Promise.resolve({ value: r.value, done: false });
    }
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (!this.#native) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject, batch });
      if (!reading.has(this)) {
        reading.add(this);
        this.#native!.ref();
      }
    });
  }

  /** The next record (what `for await` calls). */
  next(): Promise<IteratorResult<T>> {
    return this.#read(false) as Promise<IteratorResult<T>>;
  }

  /** Every record queued now, or the next batch to arrive. */
  nextBatch(): Promise<IteratorResult<T[]>> {
    return this.#read(true) as Promise<IteratorResult<T[]>>;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this.#iterator(() => this.next());
  }

  /** Yields arrays of records, one per arrival (or all that were waiting). */
  batches(): AsyncIterableIterator<T[]> {
    return this.#iterator(() => this.nextBatch());
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
