// The consumer side shared by RingBuffer and PerfBuffer. The addon delivers
// records in batches (one call per wakeup); they wait here in an
// index-based queue until an iterator takes them. Polling is paused above a
// high-water mark so the kernel's buffer fills instead of Node's memory, and
// the poll handle keeps the process alive only while someone waits.
import { BpfError } from '../errors.js';
import { invalidArgType } from './errors.js';

export interface NativeStream {
  resume(): void;
  pause(): void;
  ref(): void;
  unref(): void;
  consume(): number;
  close(): void;
}

export type OnBatch = (batch: Buffer | null, count: number, errno: number) => void;

/** Options every event stream takes. */
export interface EventStreamOptions {
  /** Aborting closes the stream; a pending read rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Records queued in JavaScript before polling pauses (default 65536). */
  highWaterMark?: number;
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

export class EventStream<T> implements AsyncIterable<T> {
  #native: NativeStream | undefined;
  #parse: (batch: Buffer, count: number) => T[];
  #batches: (T[] | undefined)[] = [];
  #head = 0;
  #pos = 0;
  #waiters: Waiter<T>[] = [];
  #error: unknown;
  #paused = false;
  #highWaterMark: number;
  #signal: AbortSignal | undefined;
  #onAbort: (() => void) | undefined;
  #onClose: (() => void) | undefined;
  readonly counters: EventStreamCounters = { records: 0, bytes: 0, batches: 0, queued: 0 };
  // Held here so the addon's weak reference to it lives as long as the stream.
  readonly #onBatch: OnBatch;
  readonly #op: string;

  constructor(op: string, open: (onBatch: OnBatch) => NativeStream,
    parse: (batch: Buffer, count: number) => T[], opts: EventStreamOptions, onClose?: () => void) {
    if (opts === null || typeof opts !== 'object') invalidArgType('opts', 'an object', opts);
    const hwm = opts.highWaterMark ?? 65536;
    if (!Number.isInteger(hwm) || hwm < 1) invalidArgType('opts.highWaterMark', 'a positive integer', hwm);
    this.#highWaterMark = hwm;
    this.#op = op;
    this.#parse = parse;
    this.#onClose = onClose;
    this.#onBatch = (batch, count, errno) => this.#deliver(batch, count, errno);
    const signal = opts.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) invalidArgType('opts.signal', 'an AbortSignal', signal);
    if (signal?.aborted) {
      this.#error = signal.reason;
      return;
    }
    this.#native = open(this.#onBatch);
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
    let items: T[];
    try {
      items = this.#parse(batch, count);
    } catch (e) {
      this.#fail(e);
      return;
    }
    const c = this.counters;
    c.records += items.length;
    c.batches++;
    c.bytes += batch.length - 8 * count; // minus the frame headers (padding counts)
    this.#batches.push(items);
    c.queued += items.length;
    this.#serve();
    if (c.queued >= this.#highWaterMark && !this.#paused) {
      this.#paused = true;
      this.#native.pause();
    }
  }

  #take(): T {
    const batch = this.#batches[this.#head]!;
    const v = batch[this.#pos++]!;
    if (this.#pos === batch.length) {
      this.#batches[this.#head++] = undefined;
      this.#pos = 0;
      if (this.#head === this.#batches.length) {
        this.#batches.length = 0;
        this.#head = 0;
      } else if (this.#head >= 1024 && this.#head * 2 >= this.#batches.length) {
        this.#batches = this.#batches.slice(this.#head);
        this.#head = 0;
      }
    }
    this.counters.queued--;
    return v;
  }

  #takeAll(): T[] {
    const first = this.#batches[this.#head]!;
    let out = this.#pos === 0 ? first : first.slice(this.#pos);
    for (let i = this.#head + 1; i < this.#batches.length; i++) out = out.concat(this.#batches[i]!);
    this.#batches.length = 0;
    this.#head = 0;
    this.#pos = 0;
    this.counters.queued = 0;
    return out;
  }

  #afterTake(): void {
    if (this.#paused && this.#native && this.counters.queued <= this.#highWaterMark >> 1) {
      this.#paused = false;
      this.#native.resume();
    }
  }

  #serve(): void {
    while (this.#waiters.length > 0 && this.counters.queued > 0) {
      const w = this.#waiters.shift()!; // a handful of readers at most
      w.resolve(w.batch ? { value: this.#takeAll(), done: false } : { value: this.#take(), done: false });
    }
    if (this.#waiters.length === 0) this.#idle();
    this.#afterTake();
  }

  #idle(): void {
    if (reading.delete(this)) this.#native?.unref();
  }

  #read(batch: boolean): Promise<IteratorResult<T | T[]>> {
    if (this.counters.queued > 0) {
      const value = batch ? this.#takeAll() : this.#take();
      this.#afterTake();
      return Promise.resolve({ value, done: false });
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
    const it: AsyncIterableIterator<T> = {
      next: () => this.next(),
      // `break` out of a for await: stop and release everything.
      return: async () => {
        this.close();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  /** Yields arrays of records, one per arrival (or all that were waiting). */
  batches(): AsyncIterableIterator<T[]> {
    const it: AsyncIterableIterator<T[]> = {
      next: () => this.nextBatch(),
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
    this.#native.close();
    this.#native = undefined;
    this.#batches = [];
    this.#head = 0;
    this.#pos = 0;
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
