// UserRingBuffer: the producer side of a BPF_MAP_TYPE_USER_RINGBUF map
// (Linux 6.1), where user space writes records and BPF programs take them
// with bpf_user_ringbuf_drain(). Records are plain bytes, or values encoded
// by a BTF type or a layout. Nothing here waits: a full ring is a BpfError
// ENOSPC (or `false` from trySubmit()), since libbpf's blocking reserve
// would stall the event loop until the kernel drained.
import { Btf } from './btf.js';
import { codecFor, type Codec } from './codec.js';
import { addon, type NativeUserRingBuffer } from './internal/addon.js';
import { checkInt, fail, invalidArgType, invalidState } from './internal/errors.js';
import { Layout } from './layout.js';
import { BpfError } from './errors.js';
import { BpfMap } from './map.js';
import { bufferOf } from './internal/views.js';

// BPF_RINGBUF_HDR_SZ: every sample is preceded by an 8-byte header.
const HEADER = 8;

/** How a UserRingBuffer encodes the values given to submit(): at most one of `type` (with `btf`) and `layout`. */
export interface UserRingBufferOptions<T> {
  /** Encode values as this BTF type, e.g. 'struct request' (found in the map's object, or `btf`). */
  type?: string;
  /** Where to find `type` (default: the BTF of the map's object). */
  btf?: Btf;
  /** Or encode values with this layout (struct({...})); values are typed by it. */
  layout?: Layout<T>;
}

/** One record reserved in the ring: write `buffer`, then submit() or discard(). */
export interface UserRingBufferSample {
  /**
   * The record's bytes in the ring itself (no copy). It is emptied
   * (length 0) by submit(), discard() and the ring's close(): keep no
   * other view of it.
   */
  readonly buffer: Buffer;
  /** Hands the record to the kernel. */
  submit(): void;
  /** Drops the record; the kernel skips it. */
  discard(): void;
}

/** What a UserRingBuffer takes: bytes, or with a type or layout its values. */
export type UserRecord<T> = Buffer | Uint8Array | T;

function encoderOf(map: BpfMap, opts: UserRingBufferOptions<unknown>): Codec | undefined {
  if (opts === null || typeof opts !== 'object') invalidArgType('opts', 'an object', opts);
  const { type, btf, layout } = opts;
  if (layout !== undefined && !(layout instanceof Layout)) invalidArgType('opts.layout', 'a Layout (from struct() or array())', layout);
  if (btf !== undefined && !(btf instanceof Btf)) invalidArgType('opts.btf', 'a Btf (Btf.fromFile(), Btf.parse())', btf);
  if (type !== undefined && typeof type !== 'string') invalidArgType('opts.type', 'a BTF type name such as \'struct request\'', type);
  if (type !== undefined && layout !== undefined) fail(TypeError, 'ERR_INVALID_ARG_VALUE', 'opts.type and opts.layout exclude each other: give one way to encode records');
  if (btf !== undefined && type === undefined) fail(TypeError, 'ERR_INVALID_ARG_VALUE', 'opts.btf needs opts.type: the name of the type to encode records as');
  if (layout !== undefined) return layout.codec as Codec;
  if (type === undefined) return undefined;
  const from = btf ?? map.btf;
  if (!from) fail(TypeError, 'ERR_INVALID_ARG_VALUE', `map '${map.name}' has no BTF to find '${type}' in; give opts.btf (Btf.fromFile()) or opts.layout`);
  if (!from.find(type)) {
    fail(TypeError, 'ERR_INVALID_ARG_VALUE', btf
      ? `no BTF type named '${type}' in opts.btf`
      : `no BTF type named '${type}' in the BTF of map '${map.name}'s object (a type the program only receives through a dynptr may not be there: give opts.btf or opts.layout)`);
  }
  return codecFor(from, type);
}

/**
 * The class behind UserRingBuffer (see there); `new UserRingBuffer(map,
 * opts)` types its records from `layout` or a type argument.
 */
export class UserRingBufferImpl<T = Buffer> {
  #map: BpfMap;
  #native: NativeUserRingBuffer | undefined;
  #codec: Codec | undefined;
  #maxRecord: number;
  #forget: () => void;
  #submitted = 0;
  #bytes = 0;

  constructor(map: BpfMap, opts: UserRingBufferOptions<T> = {}) {
    if (!(map instanceof BpfMap)) invalidArgType('map', 'a BpfMap', map);
    if (map.type !== 'user_ringbuf') {
      fail(TypeError, 'ERR_INVALID_ARG_VALUE', `UserRingBuffer needs a BPF_MAP_TYPE_USER_RINGBUF map; map '${map.name}' is of type ${map.type}`);
    }
    this.#codec = encoderOf(map, opts as UserRingBufferOptions<unknown>);
    const fd = map.liveFd();
    this.#map = map;
    // libbpf refuses a sample whose header and data exceed the ring.
    this.#maxRecord = map.maxEntries - HEADER;
    this.#native = new addon.NativeUserRingBuffer(fd, `map '${map.name}'`);
    this.#forget = map.addDependent(this);
  }

  #live(): NativeUserRingBuffer {
    if (!this.#native) invalidState('UserRingBuffer is closed');
    if (this.#map.closed) {
      this.close();
      invalidState('UserRingBuffer is closed (its map was closed)');
    }
    return this.#native;
  }

  #bytesOf(record: UserRecord<T>, what: string): Buffer {
    let b: Buffer;
    if (record instanceof Uint8Array) b = bufferOf(record);
    else if (this.#codec) b = this.#codec.encode(record, what);
    else return invalidArgType(what, 'a Buffer or Uint8Array (give opts.type or opts.layout to submit values)', record);
    if (b.length === 0) fail(RangeError, 'ERR_OUT_OF_RANGE', `The value of "${what}" is out of range. A record must not be empty`);
    if (b.length > this.#maxRecord) {
      fail(RangeError, 'ERR_OUT_OF_RANGE',
        `The value of "${what}" is out of range. A record of map '${this.#map.name}' holds at most ${this.#maxRecord} bytes (the ring's ${this.#map.maxEntries} less the 8-byte header). Received ${b.length} bytes`);
    }
    return b;
  }

  /** The ring this writes to. */
  get map(): BpfMap { return this.#map; }

  /** False once closed (by close(), or by its map's object closing). */
  get closed(): boolean { return this.#native === undefined || this.#map.closed; }

  /**
   * Writes one record: bytes as they are, or a value encoded by the type
   * or layout. A full ring is a BpfError ENOSPC (op
   * user_ring_buffer__reserve): nothing was written, try again once the
   * BPF side has drained.
   */
  submit(record: UserRecord<T>): void {
    const native = this.#live();
    const b = this.#bytesOf(record, 'record');
    native.submit(b);
    this.#submitted++;
    this.#bytes += b.length;
  }

  /** submit(), but a full ring is `false` instead of an error. */
  trySubmit(record: UserRecord<T>): boolean {
    try {
      this.submit(record);
      return true;
    } catch (e) {
      if (e instanceof BpfError && e.code === 'ENOSPC') return false;
      throw e;
    }
  }

  /**
   * Writes records in order, in one native call, until the ring is full;
   * returns how many were written (the rest were not: submit them later).
   * Every record is checked (and encoded) before the first is written.
   */
  submitMany(records: Iterable<UserRecord<T>>): number {
    const native = this.#live();
    if (records === null || typeof records !== 'object' || typeof (records as Iterable<unknown>)[Symbol.iterator] !== 'function') {
      invalidArgType('records', 'an iterable of records', records);
    }
    const parts: Buffer[] = [];
    for (const r of records) parts.push(this.#bytesOf(r, `records[${parts.length}]`));
    if (parts.length === 0) return 0;
    const lengths = Uint32Array.from(parts, (p) => p.length);
    const n = native.submitBatch(Buffer.concat(parts), lengths);
    this.#submitted += n;
    for (let i = 0; i < n; i++) this.#bytes += lengths[i]!;
    return n;
  }

  /**
   * Reserves a record of `size` bytes in the ring, to be written in place
   * and then submitted or discarded. Until then the kernel drains nothing
   * past it: commit reservations promptly. A full ring is a BpfError ENOSPC.
   */
  reserve(size: number): UserRingBufferSample {
    const native = this.#live();
    checkInt('size', size, 1, this.#maxRecord);
    const ab = native.reserve(size);
    const buffer = Buffer.from(ab);
    // The closures hold this buffer (and so the native ring) while the
    // sample is reachable: its pages cannot be freed under `buffer`.
    const commit = (discard: boolean): void => {
      if (!this.#native) invalidState('UserRingBuffer is closed');
      if (!native.commit(ab, discard)) invalidState('this sample was already submitted or discarded');
      if (!discard) {
        this.#submitted++;
        this.#bytes += size;
      }
    };
    return Object.freeze({ buffer, submit: () => commit(false), discard: () => commit(true) });
  }

  /** Bytes written (or reserved) that the BPF side has not drained yet, headers included. */
  get pendingBytes(): number {
    return this.#live().pending();
  }

  /** What this buffer has written: records and their bytes (headers not counted). */
  get stats(): { submitted: number; bytes: number } {
    return { submitted: this.#submitted, bytes: this.#bytes };
  }

  /** Frees the producer (reservations not committed are discarded). Idempotent. */
  close(): void {
    const native = this.#native;
    if (!native) return;
    this.#native = undefined;
    this.#forget();
    native.close();
  }

  /** close(), for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** The constructor signatures of UserRingBuffer: the record type follows from `layout`, a type argument with `type`, or Buffer. */
export interface UserRingBufferConstructor {
  new <T = Record<string, unknown>>(map: BpfMap, opts: UserRingBufferOptions<T> & { type: string; layout?: undefined }): UserRingBuffer<T>;
  new <T>(map: BpfMap, opts: UserRingBufferOptions<T> & { layout: Layout<T>; type?: undefined }): UserRingBuffer<T>;
  new (map: BpfMap, opts?: { type?: undefined; layout?: undefined; btf?: undefined }): UserRingBuffer<Buffer>;
  readonly prototype: UserRingBuffer<unknown>;
}

/** A producer of one BPF_MAP_TYPE_USER_RINGBUF map; see UserRingBuffer. */
export type UserRingBuffer<T = Buffer> = UserRingBufferImpl<T>;
/**
 * The producer side of a BPF_MAP_TYPE_USER_RINGBUF map (Linux 6.1,
 * libbpf's user_ring_buffer): records written here are taken by BPF
 * programs with bpf_user_ringbuf_drain(). Records are Buffers, or values
 * encoded by a BTF `type` (from the map's object or `btf`) or a `layout`.
 * Never blocks: a full ring is a BpfError ENOSPC from submit() and
 * reserve(), `false` from trySubmit(), a short count from submitMany().
 * The map holds it (weakly) and closes it when its object closes; close()
 * is idempotent, `using` calls it; after close every method throws
 * TypeError ERR_INVALID_STATE.
 * @example
 * using urb = new UserRingBuffer(obj.map('requests'), { type: 'struct request' });
 * urb.submit({ kind: 1, value: 42n });
 * obj.program('drain').testRun();
 */
export const UserRingBuffer = UserRingBufferImpl as UserRingBufferConstructor;
