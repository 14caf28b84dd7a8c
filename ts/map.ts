// BpfMap: a map of a BpfObject, or a standalone one (BpfMap.create, a pin).
// Buffer from its module: the global one is a getter that costs a
// runtime property lookup on every use, which shows in per-op profiles.
import { Buffer } from 'node:buffer';
import { unlinkSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Btf } from './btf.js';
import { BpfError } from './errors.js';
import { features } from './features.js';
import { needing } from './internal/unsupported.js';
import { codecFor, wordsOf, type Codec, type Decoded, type Words } from './codec.js';
import { Layout } from './layout.js';
import { stackCodec, stackIdCodec, type StackTrace } from './stacks.js';
import type { BpfLink } from './link.js';
import { attachStructOps } from './struct_ops.js';
import { addon, numPossibleCpus, type NativeMap, type NativeMapInfo } from './internal/addon.js';
import { encode, encodeInto, type Scalar } from './internal/codec.js';
import { view, viewOf, bufferOf } from './internal/views.js';
import { checkInt, checkString, fail, invalidArgType, invalidArgValue, invalidState, outOfRange } from './internal/errors.js';
import { mapInfo, native as introspect, type MapInfo } from './introspect.js';
import { MAP_TYPES, PER_CPU_MAP_TYPES, typeName, type MapType, type PerCpuMapType } from './types.js';

/**
 * A key: raw bytes of the map's key size, or an integer for 1/2/4/8-byte keys.
 * @useDeclaredType
 */
export type MapKey = Scalar;
/**
 * A value: raw bytes of the map's value size, or an integer for 1/2/4/8-byte values.
 * @useDeclaredType
 */
export type MapValue = Scalar;
/** What one raw lookup yields: a Buffer, or one Buffer per possible CPU for per-CPU maps. */
export type MapLookupResult = Buffer | Buffer[];

declare const perCpuBrand: unique symbol;
/**
 * A per-CPU map's value: one T per possible CPU (a plain array at run time).
 * The brand tells it apart from a value type that is itself an array.
 */
export type PerCpu<T> = T[] & { readonly [perCpuBrand]: true };
/** The raw counterpart of a value type V: one Buffer per CPU where V is per-CPU. */
export type RawOf<V> = unknown extends V ? MapLookupResult
  : [V] extends [MapLookupResult] ? V // raw already
  : [V] extends [PerCpu<unknown>] ? PerCpu<Buffer>
  : Buffer;
/** One CPU's value of a per-CPU value type, else the type itself. */
export type PerCpuElement<V> = V extends PerCpu<infer E> ? E : V;

/**
 * The typed arrays a codec decodes C arrays of integers and floats to.
 * @inline
 */
type TypedArray = Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | Float64Array;
/**
 * What an encoder takes for a decoded type T: members may be left out
 * (written as zeros), 64-bit integers may be numbers, arrays may be shorter
 * (typed arrays may be plain arrays). Enum members also take their names at
 * run time; give those with a cast.
 */
export type Encodable<T> =
  T extends bigint ? bigint | number
  : T extends number | string | boolean ? T
  : T extends BigInt64Array | BigUint64Array ? T | readonly (bigint | number)[]
  : T extends TypedArray ? T | readonly number[]
  : T extends readonly (infer E)[] ? readonly Encodable<E>[]
  : T extends object ? { [P in keyof T]?: Encodable<T[P]> }
  : T;
/**
 * What key parameters take: a raw map's numbers, bigints or bytes (or null,
 * for queues and stacks); a decoded map's K (or its bytes).
 */
export type MapKeyIn<K> = unknown extends K ? unknown
  : [K] extends [null] ? null
  : [K] extends [Buffer] ? MapKey | null
  : Encodable<K> | Uint8Array;
/** What update() takes: one value, or for per-CPU maps one per possible CPU. */
export type MapValueIn<V> = unknown extends V ? unknown
  : [V] extends [MapLookupResult] ? MapValue | readonly MapValue[] // raw
  : [V] extends [PerCpu<infer E>] ? Encodable<E> | Uint8Array | readonly (Encodable<E> | Uint8Array)[]
  : Encodable<V> | Uint8Array;

/** The flags of bpf_map_update_elem() by name: any = BPF_ANY (0), noexist = BPF_NOEXIST (1), exist = BPF_EXIST (2). */
export const UPDATE_FLAGS = { any: 0, noexist: 1, exist: 2 } as const;
/** A name of UPDATE_FLAGS: 'any', 'noexist' or 'exist'. */
export type UpdateFlag = keyof typeof UPDATE_FLAGS;

/** Options of BpfMap#update (bpf_map_update_elem). */
export interface MapUpdateOptions {
  /**
   * 'any' (BPF_ANY, default) creates or replaces; 'noexist' (BPF_NOEXIST)
   * only creates, else BpfError EEXIST; 'exist' (BPF_EXIST) only replaces,
   * else BpfError ENOENT. Another name is a TypeError ERR_INVALID_ARG_VALUE.
   */
  flags?: UpdateFlag;
}

/**
 * Options of BpfMap.create (bpf_map_create). Sizes and counts are u32
 * (else RangeError ERR_OUT_OF_RANGE); whether 0 is allowed is the kernel's
 * call (ring buffers, queues and stacks take a key size of 0).
 */
export interface MapCreateOptions<T extends MapType = MapType> {
  /** The map type (BPF_MAP_TYPE_*, by libbpf's name), not 'unspec'. */
  type: T;
  /** key_size, in bytes. */
  keySize: number;
  /** value_size, in bytes (per CPU for per-CPU maps). */
  valueSize: number;
  /** max_entries (for a ring buffer: its size in bytes, a power-of-2 multiple of the page size). */
  maxEntries: number;
  /** map_name (the kernel keeps at most 15 bytes). */
  name?: string;
  /** BPF_F_* map flags, e.g. BPF_F_NO_PREALLOC (1). */
  flags?: number;
}

/** Maps whose values user space reads as kernel ids: program ids (prog_array), map ids (maps of maps). */
export type IdMapType = 'prog_array' | 'array_of_maps' | 'hash_of_maps';
/** Maps whose values the kernel does not give to user space: dumps give undefined (see BpfMap#valuesUnreadable). */
export type UnreadableMapType = 'cgroup_array' | 'perf_event_array' | 'xskmap';

/** The value type a lookup yields for a map type made with BpfMap.create(). */
export type LookupResultOf<T extends MapType> = [T] extends [IdMapType] ? number
  : [T] extends ['stack_trace'] ? StackTrace
  : [T] extends [UnreadableMapType] ? undefined
  : T extends PerCpuMapType ? PerCpu<Buffer> : Buffer;

/** The key type of a map made with BpfMap.create(): stack ids (numbers) for stack-trace maps with 4-byte keys, else Buffer. */
export type KeyOf<T extends MapType> = [T] extends ['stack_trace'] ? number : Buffer;

/** innerMap's options form: a template made like BpfMap.create's maps. */
export type InnerMapOptions = MapCreateOptions;

/** Options of BpfMap#entries, for its `for await` side (bpf_map_lookup_batch). */
export interface MapEntriesOptions {
  /** Elements per bpf_map_lookup_batch call (default 4096, 1 … 2^24); grown where a hash bucket needs more (ENOSPC). */
  batchSize?: number;
  /** false: always key by key (bpf_map_get_next_key + lookup), even where batches work. Default: batches, where the kernel and map type allow them. */
  batch?: boolean;
}

/** Options of the batch operations (lookupBatch, deleteBatch, lookupAndDeleteBatch). */
export interface MapBatchOptions {
  /**
   * false: one element syscall per key (all in one call into the addon),
   * even where the kernel has batch operations for the map type. Default:
   * batch operations where the kernel (5.6) and the map type have them.
   */
  batch?: boolean;
  /** Elements per kernel batch when reading the whole map (default 4096). */
  batchSize?: number;
}

/**
 * The whole map as two columns (BpfMap#lookupBatchRaw): entry i's key is
 * `keys` at `i * keySize`, its value `values` at `i * valueBytes`. Both are
 * copies the caller owns.
 */
export interface MapColumns {
  /** Entries read. */
  readonly count: number;
  readonly keySize: number;
  /** Bytes per value: the value size, or for per-CPU maps one 8-byte aligned slot per possible CPU. */
  readonly valueBytes: number;
  readonly keys: Buffer;
  readonly values: Buffer;
}

/**
 * How far a dump with BpfMap#lookupBatchInto() has got: the kernel's batch
 * position (BPF_MAP_LOOKUP_BATCH's out_batch, handed back as in_batch), or
 * the last key where the map is read key by key. One cursor serves one pass
 * over one map; `reset()` starts a new pass.
 */
export class MapBatchCursor {
  /** True once the pass has read the whole map (lookupBatchInto() returns 0 from then on). */
  get done(): boolean {
    return cursorState(this).done;
  }

  /** Starts again from the map's first entry (the cursor may then serve another map). */
  reset(): void {
    cursors.set(this, freshCursor());
  }
}

interface CursorState {
  map: object | undefined;
  batches: boolean | undefined;
  // The kernel's token: `pos` goes in (null before the first call), `next`
  // comes out; swapped after each call.
  pos: Buffer | null;
  next: Buffer | null;
  // Key by key: the last key read.
  lastKey: Buffer | null;
  done: boolean;
}

// Kept out of the class so that users see no internal fields.
const cursors = new WeakMap<MapBatchCursor, CursorState>();
const freshCursor = (): CursorState => ({ map: undefined, batches: undefined, pos: null, next: null, lastKey: null, done: false });
function cursorState(c: MapBatchCursor): CursorState {
  let st = cursors.get(c);
  if (st === undefined) {
    if (!(c instanceof MapBatchCursor)) invalidArgType('cursor', 'a MapBatchCursor', c);
    st = freshCursor();
    cursors.set(c, st);
  }
  return st;
}

/** Options of updateBatch(): the batch options and the update flag. */
export interface MapUpdateBatchOptions extends MapBatchOptions {
  /**
   * As update()'s. The kernel's update batch takes only 'any'; 'noexist'
   * and 'exist' go key by key.
   */
  flags?: UpdateFlag;
}

/** What entries() returns: iterable with `for...of` and with `for await...of`. */
export type MapEntries<K, V> = IterableIterator<[K, V]> & AsyncIterable<[K, V]>;

/** Options of BpfMap#watch. */
export interface MapWatchOptions {
  /** Milliseconds between snapshots (default 1000; 1 … 2^31 - 1). */
  intervalMs?: number;
  /** Ends the watch: the iterator rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Yield only what changed since the previous tick. */
  changes?: boolean;
}

/** What changed between two ticks of watch({changes: true}). */
export interface MapChanges<K, V> {
  /** Entries that appeared or whose value changed. */
  updated: [K, V][];
  /** Keys that are gone. */
  deleted: K[];
}

function sameValue(a: Buffer | Buffer[] | undefined, b: Buffer | Buffer[] | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  return a.length === b.length && a.every((x, i) => x.equals(b[i]!));
}

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** What a map belongs to (its BpfObject). */
export interface MapOwner {
  readonly state: string;
  readonly btf: Btf | null;
}

const PER_CPU = new Set<string>(PER_CPU_MAP_TYPES);
// What the kernel answers a lookup of a value it does not give to user space.
const UNREADABLE_CODES = new Set(['ENOTSUPP', 'EOPNOTSUPP', 'ENOSPC']);
/** What closes with a map: its ring and perf buffers. */
interface Dependent {
  close(): void;
}
// A dependent the user dropped leaves the map's set once collected.
const forgetWhenCollected = new FinalizationRegistry<{ deps: Set<WeakRef<Dependent>>; ref: WeakRef<Dependent> }>(
  ({ deps, ref }) => deps.delete(ref));
const HASH_LIKE = new Set<string>(['hash', 'percpu_hash', 'lru_hash', 'lru_percpu_hash']);
// The map types with BPF_MAP_{LOOKUP,UPDATE}_BATCH (Linux 5.6: htab and
// array ops); the hash types also delete and lookup-and-delete in batches.
const BATCHED = new Set<string>([...HASH_LIKE, 'array', 'percpu_array']);
const UNDELETABLE = new Set<string>(['array', 'percpu_array']);
const ID_MAPS = new Set<string>(['prog_array', 'array_of_maps', 'hash_of_maps']);
const MAPS_OF_MAPS = new Set<string>(['array_of_maps', 'hash_of_maps']);
const BPF_F_NUMA_NODE = 1 << 2;
const BPF_F_RDONLY = 1 << 3;
const BPF_F_RDONLY_PROG = 1 << 7;
const BPF_F_MMAPABLE = 1 << 10;

// Why the kernel gives user space no values of these map types (its
// map_lookup_elem from the bpf() syscall; checked on Linux 6.18): dumps give
// undefined for them instead of failing. Socket maps give socket cookies
// where their values are 8 bytes wide, else nothing (see unreadableReason).
const UNREADABLE: Readonly<Record<string, string>> = {
  cgroup_array: 'the kernel does not give cgroup_array values (cgroup references) to user space: ENOTSUPP',
  perf_event_array: 'the kernel does not give perf_event_array values (perf event references) to user space: ENOTSUPP',
  xskmap: 'the kernel does not give xskmap values (AF_XDP socket references) to user space: EOPNOTSUPP',
};

function unreadableReason(type: string, valueSize: number): string | undefined {
  if (Object.hasOwn(UNREADABLE, type)) return UNREADABLE[type];
  if ((type === 'sockmap' || type === 'sockhash' || type === 'reuseport_sockarray') && valueSize !== 8) {
    return `the kernel gives ${type} values (socket cookies) to user space only where the value size is 8: ENOSPC`;
  }
  return undefined;
}

// Where a zero size or entry count is what the kernel (or libbpf, which
// fills it in) wants; checked against Linux 6.18 with bpf_map_create and
// against libbpf 1.1's bpf_object__create_map. Every other type refuses a 0
// with a bare EINVAL that libbpf 1.1 reports as "Retrying without BTF".
const ZERO_KEY_OK = new Set<string>(['ringbuf', 'user_ringbuf', 'bloom_filter', 'queue', 'stack', 'arena']);
const ZERO_VALUE_OK = new Set<string>(['ringbuf', 'user_ringbuf', 'arena']);
// perf_event_array: libbpf makes it one slot per possible CPU; local and
// cgroup storages must declare 0.
const ZERO_ENTRIES_OK = new Set<string>(['perf_event_array', 'cgroup_storage', 'percpu_cgroup_storage',
  'sk_storage', 'inode_storage', 'task_storage', 'cgrp_storage']);
// libbpf sizes these itself (from the kernel's BTF).
const SIZED_BY_LIBBPF = new Set<string>(['struct_ops']);

// What a map and its raw view share: one fd, one life.
interface MapCore {
  readonly native: NativeMap;
  readonly owner: MapOwner | undefined;
  // Kept for messages about a map whose object is gone.
  readonly name: string;
  info: NativeMapInfo | undefined;
  closed: boolean;
  pinPath: string | undefined;
  // Consumers of this map (ring and perf buffers), closed with it.
  /** Weak: a consumer the user dropped is collected (and its native side closed) while the map lives on. */
  readonly dependents: Set<WeakRef<Dependent>>;
  // The kernel's BTF of a map without an object (a pin), once read.
  btf: Btf | null | undefined;
  // Key and value type ids as the object declares them: libbpf zeroes them
  // at load for map types the kernel takes no BTF for (queues, stacks,
  // perf event arrays) and for maps whose key has no type, but the object's
  // BTF still describes the bytes.
  readonly keyTypeId: number;
  readonly valueTypeId: number;
  readonly internal: boolean;
  // What innerMap was given (for its getter).
  innerMap: BpfMap | InnerMapOptions | undefined;
  // Set when a dump met a value the kernel would not give (a map type not in UNREADABLE).
  unreadable: string | undefined;
  // The per-op fast path's buffers, made at the first element operation.
  scratch: Scratch | undefined;
  // The ArrayBuffer memory() maps, detached at close.
  memory: ArrayBuffer | undefined;
}

// One key and one value, in memory the addon allocated once per map: the
// element operations write the key here and the kernel writes the value
// here, so a lookup allocates only what it returns (a copy, or the decoded
// value) and the native call unwraps nothing but a number. Never handed to
// the user.
interface Scratch {
  readonly u8: Buffer;
  readonly dv: DataView;
  readonly words: Words;
  readonly key: Buffer;
  readonly value: Buffer;
  readonly valueOffset: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly valueBytes: number;
  // Checked once: the type decides these.
  readonly perCpu: boolean;
  readonly bloom: boolean;
  readonly idValue: boolean;
  readonly hashLike: boolean;
  // The addon's element operations on these bytes.
  readonly lookup: (flags: number) => boolean;
  readonly update: (flags: number) => void;
  readonly delete: () => boolean;
  readonly lookupAndDelete: () => boolean;
  // bpf_map_get_next_key from `key` (or the first key) into `next`.
  readonly next: Buffer;
  readonly nextKey: (fromKey: boolean) => boolean;
}

// What the fast path needs of one view (raw, decoded, typed()).
interface ViewFast {
  readonly key: IntKind | undefined;
  readonly value: IntKind | undefined;
  // Decodes a (non-per-CPU) value; undefined: the value is a Buffer copy.
  readonly valueCodec: Codec | undefined;
}

// The 4- and 8-byte integers the fast path writes itself.
interface IntKind {
  readonly size: 4 | 8;
  readonly min: number;
  readonly max: number;
  readonly bmin: bigint;
  readonly bmax: bigint;
}
const intKind = (size: 4 | 8, signed: boolean | 'either'): IntKind => {
  const bits = BigInt(size * 8);
  const bmin = signed === false ? 0n : -(1n << (bits - 1n));
  const bmax = signed === true ? (1n << (bits - 1n)) - 1n : (1n << bits) - 1n;
  // numbers: within the safe integers
  return { size, bmin, bmax, min: Math.max(Number(bmin), Number.MIN_SAFE_INTEGER), max: Math.min(Number(bmax), Number.MAX_SAFE_INTEGER) };
};
// Raw keys know no sign (see encode()); raw values take either.
const RAW_KEY_INT = { 4: intKind(4, false), 8: intKind(8, false) } as const;
const RAW_VALUE_INT = { 4: intKind(4, 'either'), 8: intKind(8, 'either') } as const;

// The integer a BTF codec encodes, found by decoding all-ones bytes: -1 for
// a signed int, 2^n - 1 for an unsigned one; anything else (enums decode to
// names, floats to NaN, bools to true) goes through the codec.
function codecInt(codec: Codec): IntKind | undefined {
  if (codec.size !== 4 && codec.size !== 8) return undefined;
  let v: unknown;
  try {
    v = codec.decode(Buffer.alloc(codec.size, 0xff));
  } catch {
    return undefined;
  }
  if (codec.size === 4 && typeof v === 'number') return v === -1 ? intKind(4, true) : v === 0xffff_ffff ? intKind(4, false) : undefined;
  if (codec.size === 8 && typeof v === 'bigint') return v === -1n ? intKind(8, true) : v === 0xffff_ffff_ffff_ffffn ? intKind(8, false) : undefined;
  return undefined;
}

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// The element ops of every map's scratch (NativeMap.scratchOps()), made at
// the first one: module-level constants, so that each call site calls one
// function whichever map it serves.
interface ScratchOps {
  readonly slot: Uint32Array;
  readonly lookup: () => void;
  readonly update: () => void;
  readonly del: () => void;
  readonly lookupAndDelete: () => void;
  readonly nextKey: () => void;
}
let scratchOpsMade: ScratchOps | undefined;
function scratchOps(): ScratchOps {
  if (scratchOpsMade) return scratchOpsMade;
  const [slot, lookup, update, del, lookupAndDelete, nextKey] = addon.NativeMap.scratchOps();
  scratchOpsMade = { slot: new Uint32Array(slot), lookup, update, del, lookupAndDelete, nextKey };
  return scratchOpsMade;
}

// Whether `v` is an integer `k` holds and putInt() writes; where not, the
// general encoder handles it (and says what is wrong).
function fitsInt(k: IntKind | undefined, v: unknown): boolean {
  if (k === undefined) return false;
  if (typeof v === 'number') return Number.isInteger(v) && v >= k.min && v <= k.max && (k.size === 4 || v >= 0);
  return typeof v === 'bigint' && k.size === 8 && v >= k.bmin && v <= k.bmax;
}

function putInt(s: Scratch, off: number, k: IntKind, v: number | bigint): void {
  if (typeof v === 'bigint') {
    s.dv.setBigUint64(off, BigInt.asUintN(64, v), LE);
  } else if (k.size === 4) {
    s.dv.setUint32(off, v >>> 0, LE);
  } else {
    const lo = v % 0x1_0000_0000;
    s.dv.setUint32(off + (LE ? 0 : 4), lo, LE);
    s.dv.setUint32(off + (LE ? 4 : 0), (v - lo) / 0x1_0000_0000, LE);
  }
}

interface MapCodecs {
  // Absent where the key has no BTF type (a key_size declaration): keys stay Buffers.
  readonly key: Codec | undefined;
  readonly value: Codec;
  // The value type decodes to an array: per-CPU values need telling apart from it.
  readonly arrayValue: boolean;
}

const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;

/** One batch read from the kernel: its rooms, how many it holds, whether it was the last, the batch size used. */
interface Batch { keys: Buffer; values: Buffer; count: number; last: boolean; chunk: number }

/**
 * A map. Where the map's object declares its key and value types in BTF
 * (`__type(key, u32)`, `__type(value, struct stats)`), keys and values are
 * JavaScript values encoded and decoded with codecs of those types:
 * `map.lookup({pid: 1})` gives `{count: 3n, comm: 'bash'}`, and per-CPU maps
 * give an array with one value per possible CPU. Buffers are accepted as
 * raw keys and values everywhere; `map.raw` is the same map giving Buffers.
 * Maps without BTF types (BpfMap.create, pins, global data sections) are raw,
 * except stack-trace maps (BPF_MAP_TYPE_STACK_TRACE), whose values always
 * decode to the stack's addresses as bigint[] (innermost first, trimmed at
 * the first 0; see decodeStack) and whose 4-byte keys (stack ids) to numbers.
 *
 * Obtained from an object (`obj.map('name')`, `obj.maps`, a skeleton's
 * `maps`), made standalone with BpfMap.create() (bpf_map_create), or opened
 * with BpfMap.fromPin() (bpf_obj_get) and BpfMap.fromId()
 * (bpf_map_get_fd_by_id). Element operations need the map in the kernel: on
 * a map of an object not loaded yet they throw ERR_INVALID_STATE; setters
 * (libbpf's bpf_map__set_*) work only on a map of an object before load().
 *
 * Ownership: a map of an object belongs to it (and keeps it alive); its fd
 * is closed by the object's close(), and the map's own close() only ends
 * this handle's use. A standalone, pinned or by-id map owns its fd:
 * close() closes it. Either way close() also closes the RingBuffer and
 * PerfBuffer reading the map, is idempotent, and is what `using` calls
 * (Symbol.dispose); the `raw` view shares the same fd and life. After
 * close() (or the object's), every use throws a TypeError with code
 * ERR_INVALID_STATE.
 *
 * Kernel failures throw BpfError with `op` naming the libbpf call
 * (bpf_map_update_elem, bpf_map_lookup_batch, bpf_obj_pin, ...); keys and
 * values that do not fit throw RangeError ERR_OUT_OF_RANGE or
 * ERR_INVALID_BUFFER_SIZE before the syscall.
 *
 * @example
 * ```ts
 * // __type(key, u32); __type(value, u64) in the BPF object
 * const counts = obj.map<number, bigint>('counts');
 * counts.update(1, 10n);
 * counts.lookup(1);                   // 10n
 * for (const [k, v] of counts) console.log(k, v);
 *
 * using ids = BpfMap.create({ type: 'array', keySize: 4, valueSize: 8, maxEntries: 16 });
 * ids.update(0, 42n);                 // raw: numbers are written in host order
 * ids.lookup(0);                      // <Buffer 2a 00 00 00 00 00 00 00> (little-endian host)
 * ```
 */
export class BpfMap<K = unknown, V = unknown> {
  readonly #core: MapCore;
  // False for the raw view.
  readonly #decoding: boolean;
  // null: raw; an Error: types the codecs cannot handle; undefined: not worked out yet.
  #codecCache: MapCodecs | Error | null | undefined;
  #rawView: BpfMap<Buffer, RawOf<V>> | undefined;
  // The integer kinds of this view's keys and values, and its value codec
  // (per view: the codecs differ).
  #intsCache: ViewFast | undefined;

  /** @internal Maps are made by BpfObject, BpfMap.create() and BpfMap.fromPin(). */
  constructor(native: NativeMap, owner?: MapOwner, shared?: MapCore) {
    let core = shared;
    if (!core) {
      const info = native.info();
      core = {
        native, owner, name: info.name, info: undefined, closed: false, pinPath: undefined, dependents: new Set(),
        btf: owner ? null : undefined,
        keyTypeId: info.btfKeyTypeId, valueTypeId: info.btfValueTypeId, internal: info.internal,
        innerMap: undefined, unreadable: undefined, scratch: undefined, memory: undefined,
      };
    }
    this.#core = core;
    this.#decoding = shared === undefined;
  }

  /** Creates a map without an object (bpf_map_create). Its keys and values are raw. */
  static create<T extends MapType>(opts: MapCreateOptions<T>): BpfMap<KeyOf<T>, LookupResultOf<T>> {
    if (opts === null || typeof opts !== 'object') invalidArgType('opts', 'an object', opts);
    const type = MAP_TYPES.indexOf(opts.type);
    if (type <= 0) invalidArgValue('opts.type', opts.type, `must be one of ${MAP_TYPES.slice(1).join(', ')}`);
    const u32 = 0xffff_ffff;
    checkInt('opts.keySize', opts.keySize, 0, u32);
    checkInt('opts.valueSize', opts.valueSize, 0, u32);
    checkInt('opts.maxEntries', opts.maxEntries, 0, u32);
    const flags = opts.flags === undefined ? 0 : checkInt('opts.flags', opts.flags, 0, u32);
    const name = opts.name === undefined ? null : checkString('opts.name', opts.name);
    return new BpfMap(addon.NativeMap.create(type, name, opts.keySize, opts.valueSize, opts.maxEntries, flags));
  }

  /**
   * Opens a map pinned in bpffs (bpf_obj_get). Where the kernel holds BTF
   * key/value types for it (a map of a BTF-enabled object, pinned by any
   * loader), its keys and values are decoded with them.
   */
  static fromPin<K = unknown, V = unknown>(path: string): BpfMap<K, V> {
    return new BpfMap(addon.NativeMap.fromPin(checkString('path', path)));
  }

  /**
   * Opens a map by its kernel id (bpf_map_get_fd_by_id): any loader's map,
   * or an inner map whose id a map of maps holds. The BpfMap owns its fd:
   * close() it (or `using`) when done.
   */
  static fromId<K = unknown, V = unknown>(id: number): BpfMap<K, V> {
    return new BpfMap(addon.NativeMap.fromId(checkInt('id', id, 1, 0xffff_ffff)));
  }

  /**
   * Every map in the kernel (bpf_map_get_next_id), opened one at a time as
   * the iteration reaches it; a map gone in between is skipped. Each BpfMap
   * owns its fd: close() it (or `using`).
   */
  static async *list(): AsyncGenerator<BpfMap, void, undefined> {
    for (let id = introspect.nextId('map', 0); id !== 0; id = introspect.nextId('map', id)) {
      let map: BpfMap;
      try {
        map = BpfMap.fromId(id);
      } catch (e) {
        if (e instanceof BpfError && e.code === 'ENOENT') continue;
        throw e;
      }
      yield map;
    }
  }

  /**
   * What the kernel says of the map (bpf_obj_get_info_by_fd): id, type,
   * name, sizes, flags, BTF ids. Before load() or after close(): TypeError
   * ERR_INVALID_STATE.
   */
  info(): MapInfo {
    this.#loaded();
    const fd = this.#meta().fd;
    if (fd < 0) invalidState(`map ${this.#label} was not created (autocreate off?)`);
    return mapInfo(fd);
  }

  #live(): NativeMap {
    const c = this.#core;
    if (c.closed) invalidState(`map ${this.#label} is closed`);
    if (c.owner?.state === 'closed') invalidState(`map ${this.#label} belongs to a closed BpfObject`);
    return c.native;
  }

  #loaded(): NativeMap {
    const native = this.#live();
    const owner = this.#core.owner;
    if (owner && owner.state !== 'loaded') {
      invalidState(`map ${this.#label} is not in the kernel yet: load() its BpfObject first`);
    }
    return native;
  }

  // A map of an object that is not loaded yet: its settings can change.
  #preLoad(what: string): NativeMap {
    const native = this.#live();
    const owner = this.#core.owner;
    if (!owner) invalidState(`${what} of map ${this.#label} cannot change: the map exists (only a BpfObject's maps are set before load())`);
    if (owner.state !== 'opened') invalidState(`${what} of map ${this.#label} can only change before load(); its BpfObject is ${owner.state}`);
    return native;
  }

  // Metadata is fixed once the map exists, so it is read once.
  #meta(): NativeMapInfo {
    const c = this.#core;
    if (c.info) return c.info;
    const info = this.#live().info();
    if (!c.owner || c.owner.state === 'loaded') c.info = info;
    return info;
  }

  // The codecs of the key and value types, null for a raw map, or why
  // there are none.
  #typing(): MapCodecs | Error | null {
    if (this.#codecCache !== undefined) return this.#codecCache;
    const c = this.#core;
    let typing: MapCodecs | Error | null = null;
    // Global data (a DATASEC value) is reached through obj.rodata/.data/.bss.
    const btf = this.#decoding && c.valueTypeId !== 0 && !c.internal ? this.btf : null;
    const kind = btf?.resolve(c.valueTypeId).kind;
    if (this.#decoding && this.type === 'stack_trace') {
      // Stack maps decode to bigint[] (trimmed at the first 0) whatever
      // their BTF says (usually nothing: key_size/value_size only); ids are
      // u32 numbers. The depth can change until load: cached only then.
      const m = this.#meta();
      const key = c.keyTypeId && btf ? codecFor(btf, c.keyTypeId) : m.keySize === 4 ? stackIdCodec() : undefined;
      const stacks: MapCodecs = { key, value: stackCodec(m.valueSize), arrayValue: true };
      if (c.info) this.#codecCache = stacks;
      return stacks;
    }
    if (btf && kind !== 'datasec') {
      try {
        const value = codecFor(btf, c.valueTypeId);
        // char arrays decode to strings, not arrays
        const arrayValue = kind === 'array' && typeof value.decode(Buffer.alloc(value.size)) !== 'string';
        typing = { key: c.keyTypeId ? codecFor(btf, c.keyTypeId) : undefined, value, arrayValue };
      } catch (e) {
        typing = new TypeError(`map ${this.#label}: its BTF key/value types cannot be decoded (${(e as Error).message}); use map.raw for bytes`);
        (typing as Error & { code: string }).code = 'ERR_INVALID_STATE';
      }
    }
    this.#codecCache = typing;
    return typing;
  }

  #codecs(): MapCodecs | null {
    const t = this.#typing();
    if (t instanceof Error) throw t;
    return t;
  }

  // For getters, which describe rather than fail.
  #codecsOrNull(): MapCodecs | null {
    const t = this.#typing();
    return t instanceof Error ? null : t;
  }

  /** The map's name (bpf_map__name; the kernel's map_name, at most 15 bytes, for maps opened by pin or id). */
  get name(): string { return this.#core.name; }
  get #label(): string { return this.#core.name ? `'${this.#core.name}'` : '(unnamed)'; }
  // The setters below are libbpf's bpf_map__set_*: on a map of a BpfObject
  // before load() only (a TypeError with code ERR_INVALID_STATE after).
  /** The map type (BPF_MAP_TYPE_*, by libbpf's name; 'unknown(N)' for types newer than this library). Settable before load(). */
  get type(): MapType { return typeName(MAP_TYPES, this.#meta().type); }
  set type(t: MapType) {
    const v = MAP_TYPES.indexOf(t);
    if (v <= 0) invalidArgValue('type', t, 'is not a map type');
    this.#preLoad('type').set('type', v);
  }
  /** key_size in bytes (bpf_map__key_size); settable before load(). */
  get keySize(): number { return this.#meta().keySize; }
  set keySize(n: number) {
    this.#preLoad('keySize').set('keySize', checkInt('keySize', n, 0, 0xffff_ffff));
  }
  /** value_size in bytes (bpf_map__value_size; one CPU's value for per-CPU maps); settable before load(). */
  get valueSize(): number { return this.#meta().valueSize; }
  /** E.g. a stack-trace map's depth * 8, which tools set at run time. */
  set valueSize(n: number) {
    this.#preLoad('valueSize').set('valueSize', checkInt('valueSize', n, 0, 0xffff_ffff));
  }
  /** BPF_F_* map flags. */
  get flags(): number { return this.#meta().flags; }
  set flags(n: number) {
    this.#preLoad('flags').set('flags', checkInt('flags', n, 0, 0xffff_ffff));
  }
  /**
   * The NUMA node the map's memory comes from, as set before load (0 for
   * maps made elsewhere: the kernel does not report it). Setting it also
   * sets BPF_F_NUMA_NODE in flags, without which the kernel ignores it.
   */
  get numaNode(): number { return this.#meta().numaNode ?? 0; }
  set numaNode(n: number) {
    const native = this.#preLoad('numaNode');
    native.set('numaNode', checkInt('numaNode', n, 0, 0xffff_ffff));
    native.set('flags', (this.#meta().flags | BPF_F_NUMA_NODE) >>> 0);
  }
  /** map_extra: a bloom filter's number of hash functions (1-15; 0: the kernel's 5). */
  get mapExtra(): bigint { return this.#meta().mapExtra; }
  set mapExtra(v: bigint) {
    let x: bigint;
    if (typeof v === 'bigint') x = v;
    else if (typeof v === 'number') x = BigInt(checkInt('mapExtra', v, 0, Number.MAX_SAFE_INTEGER));
    else x = invalidArgType('mapExtra', 'of type bigint', v);
    if (x < 0n || x > 0xffff_ffff_ffff_ffffn) outOfRange('mapExtra', '>= 0n && < 2n ** 64n', v);
    this.#preLoad('mapExtra').set('mapExtra', x);
  }
  /** The device of an offloaded map (0: none). */
  get ifindex(): number { return this.#meta().ifindex; }
  set ifindex(n: number) {
    this.#preLoad('ifindex').set('ifindex', checkInt('ifindex', n, 0, 0x7fff_ffff));
  }
  /**
   * Where load() pins the map (or reuses the map pinned there); undefined
   * for none. A BpfObject's `pinRoot` sets it for LIBBPF_PIN_BY_NAME maps.
   */
  get pinPath(): string | undefined { return this.#meta().pinPath; }
  set pinPath(path: string | undefined) {
    const p = path === undefined ? null : checkString('pinPath', path);
    this.#preLoad('pinPath').set('pinPath', p);
  }
  /** false: load() creates no map (a program using it then fails to load). */
  get autocreate(): boolean { return this.#meta().autocreate ?? true; }
  set autocreate(on: boolean) {
    if (typeof on !== 'boolean') invalidArgType('autocreate', 'of type boolean', on);
    this.#preLoad('autocreate').set('autocreate', on);
  }
  /**
   * The template of a map of maps' inner maps, for an outer map declared
   * without `__array(values, ...)`: a map (its type, sizes and flags count,
   * not its contents) or BpfMap.create's options (a template made and
   * dropped here). libbpf takes one per map.
   */
  get innerMap(): BpfMap | InnerMapOptions | undefined { return this.#core.innerMap; }
  set innerMap(template: BpfMap | InnerMapOptions | undefined) {
    if (template === null || typeof template !== 'object') invalidArgType('innerMap', 'a BpfMap or map options', template);
    const native = this.#preLoad('innerMap');
    if (!MAPS_OF_MAPS.has(this.type)) invalidState(`innerMap applies to maps of maps; map ${this.#label} is a ${this.type}`);
    if (template instanceof BpfMap) {
      native.setInnerMapFd(template.liveFd());
    } else {
      const made = BpfMap.create(template);
      try {
        native.setInnerMapFd(made.fd);
      } finally {
        made.close();
      }
    }
    this.#core.innerMap = template;
  }

  /**
   * Makes load() use an existing map (a fd, or a BpfMap of another object
   * or made elsewhere) instead of creating this one (bpf_map__reuse_fd):
   * both then see the same elements. The map takes the other's definition
   * (type, sizes, name). Before load() only.
   */
  reuseFd(map: BpfMap | number): void {
    const fd = map instanceof BpfMap ? map.liveFd()
      : typeof map === 'number' ? checkInt('fd', map, 0, 0x7fff_ffff)
      : invalidArgType('map', 'a BpfMap or a map fd', map);
    this.#preLoad('reuseFd').reuseFd(fd);
  }

  /** True once reuseFd() was called on this map of an object. */
  get reused(): boolean { return this.#meta().reused ?? false; }

  /**
   * Why dumps (entries(), values(), watch()) give undefined values for this
   * map: the kernel gives user space no values of its type (cgroup and perf
   * event arrays, xskmaps; socket maps whose values are not 8 bytes), or
   * refused one during a dump. undefined where values are read.
   */
  get valuesUnreadable(): string | undefined {
    return unreadableReason(this.type, this.valueSize) ?? this.#core.unreadable;
  }
  /** -1 until the object is loaded. */
  get fd(): number { return this.#meta().fd; }
  /** The kernel's map id (0 until loaded). */
  get id(): number { return this.#meta().id; }
  /** True for the maps libbpf makes for global data (.data, .bss, .rodata, .kconfig). */
  get internal(): boolean { return this.#meta().internal; }
  /** True for per-CPU map types (percpu_hash, percpu_array, lru_percpu_hash, percpu_cgroup_storage): one value per possible CPU. */
  get perCpu(): boolean { return PER_CPU.has(this.type); }
  /**
   * BTF type ids of key and value as libbpf and the kernel report them (0
   * without BTF, and 0 after load for map types created without BTF, such
   * as queues and stacks). Decoding uses the types the object declares.
   */
  get btfKeyTypeId(): number { return this.#meta().btfKeyTypeId; }
  /** The value's BTF type id (see btfKeyTypeId). */
  get btfValueTypeId(): number { return this.#meta().btfValueTypeId; }
  /** True after close(), or once the map's object is closed. */
  get closed(): boolean { return this.#core.closed || this.#core.owner?.state === 'closed'; }
  /** True where keys and values are decoded from BTF; false for raw maps and views. */
  get decoded(): boolean { return this.#codecsOrNull() !== null; }
  /** C names of the key and value types ('u32', 'struct stats'), undefined where raw. */
  get keyType(): string | undefined { return this.#codecsOrNull()?.key?.typeName; }
  /** The C name of the value type, undefined where raw. */
  get valueType(): string | undefined { return this.#codecsOrNull()?.value.typeName; }

  /**
   * The same map with Buffers for keys and values (per-CPU: one Buffer per
   * CPU). It is a second handle on the same map, not a copy: closing it
   * closes the map.
   */
  get raw(): BpfMap<Buffer, RawOf<V>> {
    if (this.#rawView) return this.#rawView; // also a typed() view's
    if (!this.#decoding) return this as unknown as BpfMap<Buffer, RawOf<V>>;
    this.#rawView ??= new BpfMap<Buffer, RawOf<V>>(this.#core.native, this.#core.owner, this.#core);
    return this.#rawView;
  }

  /**
   * The same map (a second handle, like `raw`) with keys and values
   * decoded by other types: layouts (struct({...})) or BTF type names,
   * looked up in `btf` (Btf.fromFile('types.bpf.o')) or the map's own BTF.
   * For maps whose types never reached the object's BTF. Without `key`,
   * keys stay Buffers (and numbers). The sizes must match the map's.
   */
  typed<V = Decoded>(types: { value: Layout<V> | string; key?: undefined; btf?: Btf }): BpfMap<Buffer, V>;
  typed<K = Decoded, V = Decoded>(types: { key: Layout<K> | string; value: Layout<V> | string; btf?: Btf }): BpfMap<K, V>;
  typed(types: { key?: Layout<unknown> | string; value: Layout<unknown> | string; btf?: Btf }): BpfMap<unknown, unknown> {
    if (types === null || typeof types !== 'object') invalidArgType('types', 'an object such as { value: layout }', types);
    if (types.btf !== undefined && !(types.btf instanceof Btf)) invalidArgType('types.btf', 'a Btf (Btf.fromFile(), Btf.parse())', types.btf);
    const m = this.#meta();
    const codecOf = (what: 'key' | 'value', t: unknown, size: number): Codec => {
      let c: Codec;
      if (t instanceof Layout) {
        c = t.codec;
      } else if (typeof t === 'string') {
        const btf = types.btf ?? this.btf;
        if (!btf) fail(TypeError, 'ERR_INVALID_ARG_VALUE', `map ${this.#label} has no BTF to find '${t}' in; give types.btf`);
        if (!btf.find(t)) fail(TypeError, 'ERR_INVALID_ARG_VALUE', `types.${what}: no BTF type named '${t}'${types.btf ? ' in types.btf' : ` in the BTF of map ${this.#label}`}`);
        c = codecFor(btf, t);
      } else {
        return invalidArgType(`types.${what}`, 'a Layout or a BTF type name', t);
      }
      if (c.size !== size) fail(TypeError, 'ERR_INVALID_ARG_VALUE', `types.${what}: ${c.typeName} is ${c.size} bytes, map ${this.#label} has ${size}-byte ${what}s`);
      return c;
    };
    const key = types.key === undefined ? undefined : codecOf('key', types.key, m.keySize);
    const value = codecOf('value', types.value, m.valueSize);
    const sample = value.decode(Buffer.alloc(value.size));
    const v = new BpfMap<unknown, unknown>(this.#core.native, this.#core.owner, this.#core);
    v.#codecCache = { key, value, arrayValue: Array.isArray(sample) || ArrayBuffer.isView(sample) };
    v.#rawView = this.raw as BpfMap<Buffer, never>;
    return v;
  }

  /** max_entries (bpf_map__max_entries). */
  get maxEntries(): number { return this.#meta().maxEntries; }
  /** Settable on a map of an object before load() (bpf_map__set_max_entries). */
  set maxEntries(n: number) {
    checkInt('maxEntries', n, 0, 0xffff_ffff);
    this.#preLoad('maxEntries').setMaxEntries(n);
  }

  /**
   * @internal What makes load() fail for this map before the kernel sees
   * it: a size or entry count of 0 where its type needs one (the ELF left
   * it for the loader to set). undefined when nothing is missing.
   */
  missingSetting(): string | undefined {
    const m = this.#meta();
    if (m.autocreate === false || m.reused || !this.#core.owner) return undefined;
    const type = this.type;
    if (SIZED_BY_LIBBPF.has(type)) return undefined;
    const what = (field: string, setter: string): string =>
      `map ${this.#label} (${type}): ${field} is 0; set map.${setter} before load()`;
    if (m.valueSize === 0 && !ZERO_VALUE_OK.has(type) && type !== 'perf_event_array') return what('value_size', 'valueSize');
    if (m.keySize === 0 && !ZERO_KEY_OK.has(type) && type !== 'perf_event_array') return what('key_size', 'keySize');
    if (m.maxEntries === 0 && !ZERO_ENTRIES_OK.has(type)) return what('max_entries', 'maxEntries');
    return undefined;
  }

  #key(key: unknown): Buffer | null {
    const size = this.#meta().keySize;
    if (size === 0) {
      if (key !== null && key !== undefined) invalidArgValue('key', key, `must be null: map '${this.name}' has no keys`);
      return null;
    }
    const codec = this.#codecs()?.key;
    if (codec && !isBytes(key)) return codec.encode(key, 'key');
    return encode('key', key as MapKey, size, true);
  }

  #keyOut(raw: Buffer): K {
    const codec = this.#codecs()?.key;
    return (codec ? codec.decode(raw) : raw) as K;
  }

  #value(given: unknown): Buffer {
    const m = this.#meta();
    // A map of maps holds maps: a BpfMap stands for its fd.
    const value = given instanceof BpfMap && MAPS_OF_MAPS.has(this.type) ? given.liveFd() : given;
    const codec = this.#codecs()?.value;
    const into = (name: string, v: unknown, out: Buffer, off: number): void => {
      if (codec && !isBytes(v)) out.set(codec.encode(v, name), off);
      else encodeInto(name, v as MapValue, m.valueSize, out, off);
    };
    if (!this.perCpu) {
      if (codec && !isBytes(value)) return codec.encode(value);
      if (Array.isArray(value)) invalidArgType('value', 'a Buffer, number or bigint (not an array)', value);
      return encode('value', value as MapValue, m.valueSize);
    }
    // One slot per possible CPU, each padded to 8 bytes; a single value is
    // written to every CPU's slot. Where the value type is an array, an
    // array of arrays is the per-CPU form.
    const cpus = numPossibleCpus();
    const slot = m.valueBytes / cpus;
    const out = Buffer.alloc(m.valueBytes);
    const arrayLike = (v: unknown): boolean => Array.isArray(v) || ArrayBuffer.isView(v);
    const perCpu = Array.isArray(value) && (!this.#codecs()?.arrayValue || value.every(arrayLike));
    if (perCpu) {
      if (value.length !== cpus) {
        fail(RangeError, 'ERR_INVALID_ARG_VALUE',
          `per-CPU map '${m.name}' needs one value per possible CPU (${cpus}), got ${value.length}`);
      }
      value.forEach((v: unknown, cpu) => into(`value[${cpu}]`, v, out, cpu * slot));
    } else {
      // Encoded once, copied to every CPU's slot.
      into('value', value, out, 0);
      for (let cpu = 1; cpu < cpus; cpu++) out.copy(out, cpu * slot, 0, m.valueSize);
    }
    return out;
  }

  // The value as the kernel gave it: per-CPU maps split into one Buffer per CPU.
  #split(raw: Buffer): MapLookupResult {
    if (!this.perCpu) return raw;
    const m = this.#meta();
    const cpus = numPossibleCpus();
    const slot = m.valueBytes / cpus;
    const values: Buffer[] = [];
    for (let cpu = 0; cpu < cpus; cpu++) values.push(raw.subarray(cpu * slot, cpu * slot + m.valueSize));
    return values;
  }

  #decode(v: MapLookupResult | undefined): V {
    if (v === undefined) return undefined as V;
    // Program and map ids, whatever the declared value type.
    if (this.#decoding && Buffer.isBuffer(v) && v.length === 4 && ID_MAPS.has(this.type)) return v.readUInt32LE(0) as V;
    const codec = this.#codecs()?.value;
    if (!codec) return v as V;
    return (Array.isArray(v) ? v.map((b) => codec.decode(b)) : codec.decode(v)) as V;
  }

  #result(raw: Buffer): V {
    return this.#decode(this.#split(raw));
  }

  // The scratch buffers, made at the first element operation (after load:
  // the sizes are final).
  #scratch(): Scratch {
    const c = this.#core;
    if (c.scratch) return c.scratch;
    const native = this.#loaded();
    const m = this.#meta();
    const type = this.type;
    const valueOffset = Math.max(8, Math.ceil(m.keySize / 8) * 8);
    const nextOffset = valueOffset + Math.ceil(Math.max(m.valueBytes, 8) / 8) * 8;
    const ctlOffset = nextOffset + Math.ceil(Math.max(m.keySize, 8) / 8) * 8;
    const [ab, slot] = native.scratch(valueOffset, ctlOffset + 8, m.keySize !== 0, nextOffset, ctlOffset);
    const u8 = Buffer.from(ab);
    // The ops take their argument from ctl[0] and leave their result in ctl[1]:
    // a Node-API call with no value to convert either way costs least. The
    // same op functions serve every map (see scratchOps()): the slot word
    // says which. The native map leaves its slot only when collected, and
    // the core that holds this scratch holds it too.
    const ctl = new Uint32Array(ab, ctlOffset, 2);
    const op = scratchOps();
    const at = op.slot;
    const scratch: Scratch = {
      lookup: (flags) => {
        ctl[0] = flags;
        at[0] = slot;
        op.lookup();
        return ctl[1] !== 0;
      },
      update: (flags) => {
        ctl[0] = flags;
        at[0] = slot;
        op.update();
      },
      delete: () => {
        at[0] = slot;
        op.del();
        return ctl[1] !== 0;
      },
      lookupAndDelete: () => {
        at[0] = slot;
        op.lookupAndDelete();
        return ctl[1] !== 0;
      },
      nextKey: (fromKey) => {
        ctl[0] = fromKey ? 1 : 0;
        at[0] = slot;
        op.nextKey();
        return ctl[1] !== 0;
      },
      next: u8.subarray(nextOffset, nextOffset + m.keySize),
      u8, dv: new DataView(ab), words: wordsOf(ab), key: u8.subarray(0, m.keySize), value: u8.subarray(valueOffset, valueOffset + m.valueBytes),
      valueOffset, keySize: m.keySize, valueSize: m.valueSize, valueBytes: m.valueBytes,
      perCpu: PER_CPU.has(type), bloom: type === 'bloom_filter', idValue: ID_MAPS.has(type) && m.valueBytes === 4,
      hashLike: HASH_LIKE.has(type),
    };
    c.scratch = scratch;
    return scratch;
  }

  #ints(s: Scratch): ViewFast {
    if (this.#intsCache) return this.#intsCache;
    const codecs = this.#codecs();
    const raw = (table: typeof RAW_KEY_INT, size: number): IntKind | undefined => (size === 4 || size === 8 ? table[size] : undefined);
    this.#intsCache = {
      key: codecs?.key ? codecInt(codecs.key) : raw(RAW_KEY_INT, s.keySize),
      value: s.perCpu ? undefined : codecs ? codecInt(codecs.value) : raw(RAW_VALUE_INT, s.valueSize),
      valueCodec: s.perCpu ? undefined : codecs?.value,
    };
    return this.#intsCache;
  }

  // Writes `key` into the scratch. Encoders (which may run user code: a
  // getter, a toString) run before anything is written, so that nothing
  // between the write and the syscall can touch the scratch.
  #keyIn(s: Scratch, key: unknown): void {
    if (s.keySize === 0) {
      this.#key(key); // null only
      return;
    }
    const k = this.#ints(s).key;
    if (fitsInt(k, key)) putInt(s, 0, k!, key as number | bigint);
    else s.key.set(this.#key(key)!);
  }

  // The value the kernel wrote into the scratch, as the user receives it:
  // decoded (the codecs build new values) or a copy they own.
  #valueOut(s: Scratch): V {
    if (this.#decoding && s.idValue) return s.dv.getUint32(s.valueOffset, LE) as V;
    const codec = (this.#intsCache ?? this.#ints(s)).valueCodec;
    if (codec) return codec.decodeAt(s.dv, s.u8, s.valueOffset, s.words) as V;
    const n = s.valueBytes;
    const copy = Buffer.allocUnsafe(n);
    if (n <= 32) {
      // A byte loop the JIT inlines: TypedArray#set goes through a builtin
      // and memmove, which costs more than the copy for small values.
      const u8 = s.u8;
      for (let i = 0, at = s.valueOffset; i < n; i++) copy[i] = u8[at + i]!;
    } else {
      copy.set(s.value);
    }
    return (s.perCpu ? this.#result(copy) : copy) as V;
  }

  // The element methods take MapKeyIn<Q>/MapValueIn<T> of a method type
  // parameter defaulting to K/V rather than of K/V themselves: TypeScript
  // cannot measure the variance of a class parameter used inside a
  // conditional type and would make BpfMap invariant, so that a
  // BpfMap<number, bigint> could not be passed where a BpfMap is expected.

  /**
   * The value under `key`, or undefined. Per-CPU maps give one value per
   * possible CPU.
   */
  lookup<Q extends K = K>(key: Q | MapKeyIn<Q>): V | undefined {
    this.#loaded();
    const s = this.#core.scratch ?? this.#scratch();
    if (s.bloom) invalidState(`map ${this.#label} is a bloom filter: it has no values to look up; use has(value)`);
    this.#keyIn(s, key);
    return s.lookup(0) ? this.#valueOut(s) : undefined;
  }

  #bloom(what: string): NativeMap {
    const native = this.#loaded();
    if (this.type !== 'bloom_filter') invalidState(`${what} applies to bloom filters; map ${this.#label} is a ${this.type}`);
    return native;
  }

  /**
   * Adds a value to a bloom filter (BPF_MAP_UPDATE_ELEM with no key, as
   * bpf_map_push_elem does on the BPF side).
   */
  add<T extends V = V>(value: T | MapValueIn<T>): void {
    this.#bloom('add()');
    const s = this.#scratch();
    s.value.set(this.#value(value));
    s.update(0);
  }

  /**
   * Whether a bloom filter may hold `value` (BPF_MAP_LOOKUP_ELEM with no
   * key: the kernel tests the value passed in): false is certain, true is
   * "probably" (the filter's false positives).
   */
  has<T extends V = V>(value: T | MapValueIn<T>): boolean {
    this.#bloom('has()');
    const s = this.#scratch();
    s.value.set(this.#value(value));
    return s.lookup(0);
  }

  /**
   * The inner map that a map of maps holds under `key`, opened by its id:
   * a BpfMap that owns its fd, to close() (or `using`) when done; undefined
   * where the slot is empty.
   */
  lookupMap<Q extends K = K>(key: Q | MapKeyIn<Q>): BpfMap | undefined {
    const native = this.#loaded();
    if (!MAPS_OF_MAPS.has(this.type)) invalidState(`lookupMap() applies to maps of maps; map ${this.#label} is a ${this.type}`);
    const out = Buffer.alloc(4);
    if (!native.lookup(this.#key(key), out, 0)) return undefined;
    return BpfMap.fromId(out.readUInt32LE(0));
  }

  /**
   * Creates or replaces the value under `key` (queues and stacks: key null
   * pushes). For per-CPU maps, pass one value per possible CPU (an array),
   * or one value for all of them; where the value type is itself an array,
   * the per-CPU form is an array of arrays.
   */
  update<Q extends K = K, T extends V = V>(key: Q | MapKeyIn<Q>, value: T | MapValueIn<T>, opts?: MapUpdateOptions): void {
    this.#loaded();
    const flags = opts === undefined || opts.flags === undefined ? 0 : this.#updateFlag(opts.flags);
    const s = this.#core.scratch ?? this.#scratch();
    const ints = this.#ints(s);
    // Both encoded before either is written (see #keyIn).
    const vFast = fitsInt(ints.value, value);
    const v = vFast ? undefined : this.#value(value);
    const kFast = fitsInt(ints.key, key);
    const k = kFast ? undefined : this.#key(key);
    if (kFast) putInt(s, 0, ints.key!, key as number | bigint);
    else if (k) s.key.set(k);
    if (vFast) putInt(s, s.valueOffset, ints.value!, value as number | bigint);
    else s.value.set(v!);
    s.update(flags);
  }

  #updateFlag(flag: unknown): number {
    if (typeof flag !== 'string' || !Object.hasOwn(UPDATE_FLAGS, flag)) invalidArgValue('opts.flags', flag, "must be 'any', 'noexist' or 'exist'");
    return UPDATE_FLAGS[flag as UpdateFlag];
  }

  /** Deletes `key`; false if it was not there. */
  delete<Q extends K = K>(key: Q | MapKeyIn<Q>): boolean {
    this.#loaded();
    const s = this.#core.scratch ?? this.#scratch();
    this.#keyIn(s, key);
    return s.delete();
  }

  /** Looks up and deletes in one step (also pops queues and stacks: key null). */
  lookupAndDelete<Q extends K = K>(key: Q | MapKeyIn<Q>): V | undefined {
    this.#loaded();
    const s = this.#core.scratch ?? this.#scratch();
    this.#keyIn(s, key);
    // Hash maps gained lookup_and_delete after queues and stacks (5.14).
    const found = s.hashLike
      ? needing('lookupAndDeleteHash', features.lookupAndDeleteHash, () => s.lookupAndDelete())
      : s.lookupAndDelete();
    return found ? this.#valueOut(s) : undefined;
  }

  // Whether the batch syscalls serve this map: the kernel has them, the map
  // type has them, and the caller did not ask for key by key.
  #batches(opts: MapBatchOptions | undefined, types: Set<string> = BATCHED): boolean {
    if (opts?.batch === false) return false;
    return types.has(this.type) && features.batchOps() === true;
  }

  #batchOpts<O extends MapBatchOptions>(opts: O | undefined): O | undefined {
    if (opts !== undefined && (opts === null || typeof opts !== 'object')) invalidArgType('opts', 'an object', opts);
    if (opts?.batch !== undefined && typeof opts.batch !== 'boolean') invalidArgType('opts.batch', 'of type boolean', opts.batch);
    return opts;
  }

  // Keys given to a batch method, encoded back to back.
  #keysIn(keys: unknown, what = 'keys'): { bytes: Buffer; count: number } {
    if (keys === null || typeof keys !== 'object' || typeof (keys as Iterable<unknown>)[Symbol.iterator] !== 'function') {
      invalidArgType(what, 'an iterable of keys', keys);
    }
    const size = this.#meta().keySize;
    if (size === 0) invalidState(`map ${this.#label} has no keys: batch operations take keyed maps`);
    const list = [...(keys as Iterable<unknown>)];
    const bytes = Buffer.alloc(list.length * size);
    list.forEach((k, i) => bytes.set(this.#key(k)!, i * size));
    return { bytes, count: list.length };
  }

  // Entries read by a batch or per-key syscall: `count` keys and values
  // back to back in buffers made for this call (the user owns them),
  // appended to `out`. Raw keys and values are views of those buffers.
  #entriesOut(keys: Buffer, values: Buffer, count: number, found?: Buffer, out: [K, V][] = []): [K, V][] {
    const m = this.#meta();
    const ks = m.keySize;
    const vs = m.valueBytes;
    const codecs = this.#codecs();
    const keyCodec = codecs?.key;
    // Plain bytes both ways: no per-entry decoding calls.
    const plain = !codecs && !this.perCpu && !(this.#decoding && vs === 4 && ID_MAPS.has(this.type));
    // Buffer#buffer is a slow getter: read once, not twice per entry.
    const kab = keys.buffer as ArrayBuffer;
    const vab = values.buffer as ArrayBuffer;
    const kb = keys.byteOffset;
    const vb = values.byteOffset;
    for (let i = 0; i < count; i++) {
      if (found && found[i] === 0) continue;
      if (plain) {
        out.push([viewOf(kab, kb + i * ks, ks) as K, viewOf(vab, vb + i * vs, vs) as V]);
      } else {
        const k = viewOf(kab, kb + i * ks, ks);
        out.push([(keyCodec ? keyCodec.decode(k) : k) as K, this.#result(viewOf(vab, vb + i * vs, vs))]);
      }
    }
    return out;
  }

  // The whole map by BPF_MAP_LOOKUP_BATCH (or _AND_DELETE_BATCH with `del`).
  #dumpBatches(native: NativeMap, opts: MapBatchOptions | undefined, del: boolean): [K, V][] {
    const m = this.#meta();
    let chunk = checkInt('opts.batchSize', opts?.batchSize ?? 4096, 1, 1 << 24);
    const token = Buffer.alloc(Math.max(m.keySize, 8));
    let inToken: Buffer | null = null;
    const all: [K, V][] = [];
    for (;;) {
      const b = this.#readBatch(native, inToken, token, chunk, del);
      chunk = b.chunk;
      this.#entriesOut(b.keys, b.values, b.count, undefined, all);
      if (b.last) return all;
      inToken = Buffer.from(token);
    }
  }

  // One BPF_MAP_LOOKUP(_AND_DELETE)_BATCH of up to `chunk` elements after
  // `inToken` (null: from the start), the next token written into `out`.
  // The key and value rooms are not zeroed: the kernel only writes them.
  #readBatch(native: NativeMap, inToken: Buffer | null, out: Buffer, chunk: number, del = false):
    Batch {
    const m = this.#meta();
    for (;;) {
      const keys = Buffer.allocUnsafeSlow(chunk * m.keySize);
      const values = Buffer.allocUnsafeSlow(chunk * m.valueBytes);
      try {
        const [count, last] = native.lookupBatch(inToken, out, keys, values, chunk, del);
        return { keys, values, count, last, chunk };
      } catch (e) {
        // A hash bucket holds more elements than a batch: retry with room.
        if (e instanceof BpfError && e.code === 'ENOSPC' && chunk < 1 << 24) {
          chunk *= 4;
          continue;
        }
        throw e;
      }
    }
  }

  /**
   * Many values at once. Without `keys`: every [key, value] of the map,
   * read in batches (BPF_MAP_LOOKUP_BATCH) where the kernel and map type
   * have them, else key by key. With `keys`: the entries of those keys that
   * are in the map, in their order (one lookup syscall per key, all in one
   * call into the addon: the kernel has no batch lookup by key).
   */
  lookupBatch<Q extends K = K>(keys?: Iterable<Q | MapKeyIn<Q>>, opts?: MapBatchOptions): [K, V][] {
    const o = this.#batchOpts(opts);
    const native = this.#loaded();
    const m = this.#meta();
    if (this.type === 'bloom_filter') invalidState(`map ${this.#label} is a bloom filter: it has no values to look up; use has(value)`);
    if (keys === undefined || keys === null) {
      if (this.#batches(o) && unreadableReason(this.type, m.valueSize) === undefined) return this.#dumpBatches(native, o, false);
      return [...this.#syncEntries()];
    }
    const { bytes, count } = this.#keysIn(keys);
    const values = Buffer.alloc(count * m.valueBytes);
    const found = Buffer.alloc(count);
    native.eachElem(0, bytes, values, count, 0, found);
    return this.#entriesOut(bytes, values, count, found);
  }

  /**
   * The whole map as raw columns: every key back to back in one Buffer,
   * every value in another, read by BPF_MAP_LOOKUP_BATCH straight into
   * them (key by key where the kernel or map type has no batches). No
   * object per entry: the way to dump a large map at the kernel's pace,
   * for callers that read the bytes themselves.
   *
   * ```ts
   * const { count, keys, values } = map.lookupBatchRaw();
   * for (let i = 0; i < count; i++) total += values.readBigUInt64LE(i * 8);
   * ```
   */
  lookupBatchRaw(opts?: MapBatchOptions): MapColumns {
    const o = this.#batchOpts(opts);
    const native = this.#loaded();
    const m = this.#meta();
    const ks = m.keySize;
    const vs = m.valueBytes;
    this.#columnsReadable('lookupBatchRaw()', m);
    let chunk = checkInt('opts.batchSize', o?.batchSize ?? 4096, 1, 1 << 24);
    // Room for the map's capacity and one more batch up front (capped;
    // grown if a map type holds more than max_entries, which none should):
    // every call asks the kernel for up to `chunk` entries, so a full map's
    // last call needs that much room past its elements. Without it, a full
    // 1M-entry map doubled both columns (24 MB allocated, 12 MB copied) for
    // its last batch, a third of the dump's time.
    let cap = Math.min(m.maxEntries, 1 << 20) + chunk;
    let keys = Buffer.allocUnsafeSlow(cap * ks);
    let values = Buffer.allocUnsafeSlow(cap * vs);
    let count = 0;
    const grow = (need: number): void => {
      if (need <= cap) return;
      while (cap < need) cap *= 2;
      const k = Buffer.allocUnsafeSlow(cap * ks);
      const v = Buffer.allocUnsafeSlow(cap * vs);
      keys.copy(k, 0, 0, count * ks);
      values.copy(v, 0, 0, count * vs);
      keys = k;
      values = v;
    };
    if (this.#batches(o)) {
      const token = Buffer.alloc(Math.max(ks, 8));
      let inToken: Buffer | null = null;
      for (;;) {
        grow(count + chunk);
        let got: [number, boolean];
        try {
          got = native.lookupBatch(inToken, token, keys.subarray(count * ks), values.subarray(count * vs), chunk, false);
        } catch (e) {
          // A hash bucket holds more elements than a batch: retry with room.
          if (e instanceof BpfError && e.code === 'ENOSPC' && chunk < 1 << 24) {
            chunk *= 4;
            continue;
          }
          throw e;
        }
        count += got[0];
        if (got[1]) break;
        inToken = Buffer.from(token);
      }
    } else {
      for (const k of this.#rawKeys()) {
        const sc = this.#scratch();
        sc.key.set(k);
        if (!sc.lookup(0)) continue; // deleted meanwhile
        grow(count + 1);
        keys.set(k, count * ks);
        values.set(sc.value, count * vs);
        count++;
      }
    }
    return { count, keySize: ks, valueBytes: vs, keys: keys.subarray(0, count * ks), values: values.subarray(0, count * vs) };
  }

  // What lookupBatchRaw() and lookupBatchInto() need: keys, and values
  // user space may read.
  #columnsReadable(what: string, m: { keySize: number; valueSize: number }): void {
    if (m.keySize === 0) invalidState(`map ${this.#label} has no keys: ${what} reads keyed maps`);
    const why = unreadableReason(this.type, m.valueSize);
    if (why !== undefined) invalidState(`map ${this.#label}: ${why}`);
    if (this.type === 'bloom_filter') invalidState(`map ${this.#label} is a bloom filter: it has no values to look up; use has(value)`);
  }

  /**
   * The next entries of a pass over the map, read into buffers the caller
   * owns, as a C program calls bpf_map_lookup_batch() in a loop (cilium/ebpf's
   * BatchLookup): entry i's key goes to `keys` at i * keySize and its value
   * to `values` at i * valueBytes (as lookupBatchRaw()'s columns). Returns
   * how many entries were written, at most what both buffers hold; 0 once
   * the pass is done. Reusing two buffers dumps a map of any size in bounded
   * memory, with no allocation per batch; the buffers' room is the batch
   * size. Key by key where the kernel or the map type has no batches (or
   * with `{ batch: false }`): there, as with bpf_map_get_next_key() in C, a
   * hash map whose last key read was deleted meanwhile starts the pass
   * again from its first key, so entries can come twice; kernel batches
   * hold their place. A hash bucket with more elements than the buffers
   * hold is a BpfError ENOSPC that leaves the cursor where it was: call
   * again with larger buffers.
   *
   * ```ts
   * const cursor = new MapBatchCursor();
   * const keys = Buffer.alloc(4096 * 4), values = Buffer.alloc(4096 * 8);
   * for (let n; (n = map.lookupBatchInto(cursor, keys, values)) > 0;) {
   *   for (let i = 0; i < n; i++) total += values.readBigUInt64LE(i * 8);
   * }
   * ```
   */
  lookupBatchInto(cursor: MapBatchCursor, keys: Uint8Array, values: Uint8Array, opts?: Pick<MapBatchOptions, 'batch'>): number {
    const st = cursorState(cursor);
    const o = this.#batchOpts(opts);
    const native = this.#loaded();
    const m = this.#meta();
    const ks = m.keySize;
    const vs = m.valueBytes;
    if (!(keys instanceof Uint8Array)) invalidArgType('keys', 'a Buffer or Uint8Array', keys);
    if (!(values instanceof Uint8Array)) invalidArgType('values', 'a Buffer or Uint8Array', values);
    this.#columnsReadable('lookupBatchInto()', m);
    const room = Math.min(Math.floor(keys.length / ks), Math.floor(values.length / vs));
    if (room < 1) outOfRange('keys and values', `room for at least one entry (${ks} and ${vs} bytes)`, `${keys.length} and ${values.length} bytes`);
    const batches = this.#batches(o);
    // The map itself, not this view of it: map.raw and typed() views share it.
    if (st.map === undefined) {
      st.map = this.#core;
      st.batches = batches;
    } else if (st.map !== this.#core) {
      invalidState('this MapBatchCursor is in a pass over another map: reset() it, or use a new one');
    } else if (st.batches !== batches) {
      invalidState('this MapBatchCursor is in a pass read ' + (st.batches ? 'in kernel batches' : 'key by key') + ': keep opts.batch as it was');
    }
    if (st.done) return 0;
    if (!batches) return this.#keysInto(st, keys, values, room);
    const token = Math.max(ks, 8);
    st.next ??= Buffer.alloc(token);
    let got: [number, boolean];
    try {
      got = native.lookupBatch(st.pos, st.next, bufferOf(keys), bufferOf(values), room, false);
    } catch (e) {
      if (!(e instanceof BpfError) || e.code !== 'ENOSPC') throw e;
      // Say why: the generic text is 'no space left on device'.
      throw new BpfError({ errno: e.errno, op: e.op, target: e.target, log: e.log },
        `${e.target ? `${e.op}(${e.target})` : e.op} failed: ENOSPC: a hash bucket holds more elements than the buffers' ${room} ` +
        `entr${room === 1 ? 'y' : 'ies'}; the cursor has not moved: call again with larger buffers`);
    }
    const [count, last] = got;
    if (last) {
      st.done = true;
    } else {
      const pos = st.pos ?? Buffer.alloc(token);
      st.pos = st.next;
      st.next = pos;
    }
    return count;
  }

  // lookupBatchInto() key by key: next key after the cursor's, then its value.
  #keysInto(st: CursorState, keys: Uint8Array, values: Uint8Array, room: number): number {
    const s = this.#scratch();
    const ks = s.keySize;
    const vs = s.valueBytes;
    let n = 0;
    while (n < room) {
      let found: boolean;
      try {
        if (st.lastKey !== null) s.key.set(st.lastKey);
        if (!s.nextKey(st.lastKey !== null)) {
          st.done = true;
          break;
        }
        s.key.set(s.next);
        found = s.lookup(0);
      } catch (e) {
        // What this call wrote is returned; the cursor stays before the
        // key that failed, so the next call meets the error again.
        if (n > 0) return n;
        throw e;
      }
      st.lastKey ??= Buffer.alloc(ks);
      st.lastKey.set(s.key);
      if (!found) continue; // deleted meanwhile
      keys.set(s.key, n * ks);
      values.set(s.value, n * vs);
      n++;
    }
    return n;
  }

  /**
   * Creates or replaces many elements (BPF_MAP_UPDATE_BATCH where the
   * kernel and map type have it, else one update syscall per key in one
   * call into the addon). Every key and value is encoded before anything is
   * written; the kernel stops at the first element it refuses and throws
   * its error, the elements before it being written. Returns the number
   * written.
   */
  updateBatch<Q extends K = K, T extends V = V>(
    entries: Iterable<readonly [Q | MapKeyIn<Q>, T | MapValueIn<T>]> | ReadonlyMap<Q, T>, opts?: MapUpdateBatchOptions,
  ): number {
    const o = this.#batchOpts(opts);
    const flags = o?.flags === undefined ? 0 : this.#updateFlag(o.flags);
    const native = this.#loaded();
    const m = this.#meta();
    if (entries === null || typeof entries !== 'object' || typeof (entries as Iterable<unknown>)[Symbol.iterator] !== 'function') {
      invalidArgType('entries', 'an iterable of [key, value] pairs (or a Map)', entries);
    }
    const list = [...(entries as Iterable<unknown>)];
    list.forEach((e, i) => {
      if (!Array.isArray(e) || e.length !== 2) invalidArgType(`entries[${i}]`, 'a [key, value] pair', e);
    });
    const { bytes, count } = this.#keysIn(list.map((e) => (e as unknown[])[0]), 'entries keys');
    const values = Buffer.alloc(count * m.valueBytes);
    list.forEach((e, i) => values.set(this.#value((e as unknown[])[1]), i * m.valueBytes));
    if (count === 0) return 0;
    if (flags === 0 && this.#batches(o)) return native.updateBatch(bytes, values, count, 0);
    return native.eachElem(1, bytes, values, count, flags, null);
  }

  /**
   * Deletes many keys (BPF_MAP_DELETE_BATCH where the kernel and map type
   * have it, else one delete syscall per key in one call into the addon).
   * Keys that are not in the map are skipped, as delete() answers false for
   * them. Returns the number deleted. Arrays have no deletes.
   */
  deleteBatch<Q extends K = K>(keys: Iterable<Q | MapKeyIn<Q>>, opts?: MapBatchOptions): number {
    const o = this.#batchOpts(opts);
    const native = this.#loaded();
    if (UNDELETABLE.has(this.type)) invalidState(`map ${this.#label} is a ${this.type}: its elements cannot be deleted (update them instead)`);
    const { bytes, count } = this.#keysIn(keys);
    if (count === 0) return 0;
    const size = this.#meta().keySize;
    if (!this.#batches(o, HASH_LIKE)) {
      const found = Buffer.alloc(count);
      native.eachElem(2, bytes, null, count, 0, found);
      return found.reduce((n, f) => n + f, 0);
    }
    // The kernel stops at a missing key: go on after it.
    let deleted = 0;
    for (let at = 0; at < count;) {
      const [done, missing] = native.deleteBatch(view(bytes, at * size, (count - at) * size), count - at);
      deleted += done;
      at += done + (missing ? 1 : 0);
      if (!missing && done === 0) break;
    }
    return deleted;
  }

  /**
   * Takes every element out of the map and returns them
   * (BPF_MAP_LOOKUP_AND_DELETE_BATCH on hash maps where the kernel has it;
   * else key by key: lookup_and_delete per key, or a lookup then a delete
   * where the kernel has no lookup_and_delete for the type). Elements added
   * meanwhile may stay. Arrays have no deletes; queues and stacks pop with
   * lookupAndDelete(null).
   */
  lookupAndDeleteBatch(opts?: MapBatchOptions): [K, V][] {
    const o = this.#batchOpts(opts);
    const native = this.#loaded();
    const type = this.type;
    if (UNDELETABLE.has(type)) invalidState(`map ${this.#label} is a ${type}: its elements cannot be deleted, so there is no lookupAndDeleteBatch(); use lookupBatch()`);
    if (this.#meta().keySize === 0) invalidState(`map ${this.#label} is a ${type}: pop it with lookupAndDelete(null)`);
    if (this.#batches(o, HASH_LIKE)) return this.#dumpBatches(native, o, true);
    const m = this.#meta();
    const keys = [...this.#rawKeys()];
    const bytes = Buffer.alloc(keys.length * m.keySize);
    keys.forEach((k, i) => bytes.set(k, i * m.keySize));
    const values = Buffer.alloc(keys.length * m.valueBytes);
    const found = Buffer.alloc(keys.length);
    if (HASH_LIKE.has(type) && features.lookupAndDeleteHash() === true) {
      native.eachElem(3, bytes, values, keys.length, 0, found);
    } else {
      native.eachElem(0, bytes, values, keys.length, 0, found);
      native.eachElem(2, bytes, null, keys.length, 0, null);
    }
    return this.#entriesOut(bytes, values, keys.length, found);
  }

  /**
   * The memory of a BPF_F_MMAPABLE array (or of an object's .data, .bss and
   * .data.* sections), mapped into this process: reads and writes through
   * the DataView (or typed arrays over `view.buffer`) are plain memory
   * accesses, no syscall, seen by the BPF programs as they happen and
   * seeing theirs (with no ordering beyond what the CPU gives; use Atomics
   * on an Int32Array/BigInt64Array view for counters both sides change).
   * Element i of an array is at i * valueSize rounded up to 8. Every call
   * gives a view of the same mapping.
   *
   * Lifetime: the mapping belongs to the ArrayBuffer, and is unmapped when
   * that is garbage collected, never before. close() of the map (or of its
   * object) detaches the ArrayBuffer: views made before then are empty
   * afterwards (DataView accessors throw a TypeError, typed arrays have
   * length 0), so no view ever points at unmapped memory or at a map that
   * was meant to be gone.
   *
   * Read-only maps (a loaded .rodata, BPF_F_RDONLY maps, frozen maps) are
   * refused: JavaScript has no read-only ArrayBuffer, and a write to a
   * read-only page would kill the process. Read them with lookup() or
   * obj.rodata.
   */
  memory(): DataView {
    const native = this.#loaded();
    const c = this.#core;
    if (!c.memory) {
      const m = this.#meta();
      if (this.type !== 'array' || (m.flags & BPF_F_MMAPABLE) === 0) {
        invalidState(`memory() applies to arrays made with BPF_F_MMAPABLE (and data sections); map ${this.#label} is a ${this.type}` +
          `${this.type === 'array' ? ' without BPF_F_MMAPABLE' : ''}`);
      }
      if ((m.flags & BPF_F_RDONLY) !== 0 || (m.internal && (m.flags & BPF_F_RDONLY_PROG) !== 0)) {
        invalidState(`map ${this.#label} is read-only for user space: memory() maps only writable maps; read it with lookup()${m.internal ? ' or the object\'s rodata' : ''}`);
      }
      c.memory = native.memory(Math.ceil(m.valueSize / 8) * 8 * m.maxEntries);
    }
    return new DataView(c.memory);
  }

  /** Makes the map read-only for user space (bpf_map_freeze). */
  freeze(): void {
    this.#loaded().freeze();
  }

  // Keys through the scratch: each yielded key is a Buffer of its own. The
  // previous key is written back before each step, as code run between
  // steps may have used the scratch.
  *#rawKeys(): IterableIterator<Buffer> {
    this.#loaded();
    const s = this.#scratch();
    let prev: Buffer | null = null;
    for (;;) {
      this.#loaded();
      if (prev) s.key.set(prev);
      if (!s.nextKey(prev !== null)) return;
      const next = Buffer.allocUnsafe(s.keySize);
      next.set(s.next);
      yield next;
      prev = next;
    }
  }

  /** The keys, in the kernel's order (bpf_map_get_next_key). */
  *keys(): IterableIterator<K> {
    for (const k of this.#rawKeys()) yield this.#keyOut(k);
  }

  /** The values (elements deleted while iterating are skipped). */
  *values(): IterableIterator<V> {
    for (const [, v] of this.#syncEntries()) yield v;
  }

  *#syncEntries(): IterableIterator<[K, V]> {
    const m = this.#meta();
    let unreadable = unreadableReason(this.type, m.valueSize) !== undefined;
    for (const k of this.#rawKeys()) {
      if (unreadable) {
        yield [this.#keyOut(k), undefined as V];
        continue;
      }
      const s = this.#scratch();
      s.key.set(k);
      let found: boolean;
      try {
        found = s.lookup(0);
      } catch (e) {
        // A map type whose values the kernel keeps to itself, not in the
        // table: the reason is kept for valuesUnreadable.
        if (!(e instanceof BpfError) || !UNREADABLE_CODES.has(e.code)) throw e;
        this.#core.unreadable = `the kernel gives no ${this.type} values to user space: ${e.code}`;
        unreadable = true;
        yield [this.#keyOut(k), undefined as V];
        continue;
      }
      if (found) yield [this.#keyOut(k), this.#valueOut(s)];
    }
  }

  /**
   * [key, value] pairs (elements deleted while iterating are skipped). The
   * result is iterable both ways: `for...of` walks key by key
   * (bpf_map_get_next_key + lookup); `for await...of` reads in batches
   * (bpf_map_lookup_batch) where the kernel and the map type allow it,
   * yielding to the event loop between batches.
   */
  entries(opts: MapEntriesOptions = {}): MapEntries<K, V> {
    if (opts === null || typeof opts !== 'object') invalidArgType('opts', 'an object', opts);
    const it = this.#syncEntries() as MapEntries<K, V>;
    it[Symbol.asyncIterator] = () => this.#asyncEntries(opts);
    return it;
  }

  /** `for (const [k, v] of map)`: entries() key by key. */
  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.#syncEntries();
  }

  // Batches of bpf_map_lookup_batch, handed out one entry at a time without
  // an async generator (whose per-entry cost is twice a resolved promise's).
  #asyncEntries(opts: MapEntriesOptions): AsyncIterableIterator<[K, V]> {
    if (opts === null || typeof opts !== 'object') invalidArgType('opts', 'an object', opts);
    const native = this.#loaded();
    const m = this.#meta();
    let chunk = checkInt('opts.batchSize', opts.batchSize ?? 4096, 1, 1 << 24);
    let token: Buffer | null = null;
    const out = Buffer.alloc(Math.max(m.keySize, 8));
    let entries: [K, V][] = [];
    let at = 0;
    // Unreadable values: key by key, which yields undefined for them.
    const byKey = opts.batch === false || unreadableReason(this.type, m.valueSize) !== undefined;
    let state: 'batch' | 'done' | 'keys' = byKey ? 'keys' : 'batch';
    let keyByKey: Iterator<[K, V]> | undefined;

    // The next batch, or false when there is none (or the map type has no
    // batch operations: then key by key).
    const fill = (): boolean => {
      let b: Batch;
      try {
        b = this.#readBatch(native, token, out, chunk);
      } catch (e) {
        const code = e instanceof BpfError ? e.code : '';
        if (token === null && (code === 'EINVAL' || code === 'ENOTSUPP' || code === 'EOPNOTSUPP')) {
          state = 'keys';
          return false;
        }
        throw e;
      }
      const { keys, values, count, last } = b;
      chunk = b.chunk;
      entries = this.#entriesOut(keys, values, count);
      at = 0;
      if (last) state = 'done';
      else token = Buffer.from(out);
      return count > 0 || !last;
    };
    const finished: IteratorResult<[K, V]> = { value: undefined, done: true };
    const refill = async (): Promise<IteratorResult<[K, V]>> => {
      if (state === 'batch') {
        if (token !== null) await yieldToLoop(); // between batches, not before the first
        while (state === 'batch' && at >= entries.length) fill();
        if (at < entries.length) return { value: entries[at++]!, done: false };
      }
      if (state === 'keys') {
        keyByKey ??= this.#syncEntries();
        const r = keyByKey.next();
        if ((++at & 4095) === 0) await yieldToLoop();
        return r;
      }
      return finished;
    };
    const it: AsyncIterableIterator<[K, V]> = {
      next: () => (at < entries.length ? Promise.resolve({ value: entries[at++]!, done: false }) : refill()),
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  /**
   * A snapshot of the map now and then every `intervalMs` (default 1000);
   * with `changes: true`, only what changed since the previous tick (bytes
   * compared). Ends when `signal` aborts (rejecting with its reason, like
   * Node's timers).
   */
  watch(opts: MapWatchOptions & { changes: true }): AsyncIterableIterator<MapChanges<K, V>>;
  watch(opts?: MapWatchOptions & { changes?: false }): AsyncIterableIterator<[K, V][]>;
  async *watch(opts: MapWatchOptions = {}): AsyncIterableIterator<[K, V][] | MapChanges<K, V>> {
    if (opts === null || typeof opts !== 'object') invalidArgType('opts', 'an object', opts);
    const interval = checkInt('opts.intervalMs', opts.intervalMs ?? 1000, 1, 0x7fff_ffff);
    const signal = opts.signal;
    const raw = this.raw;
    const decoded = (e: readonly [Buffer, MapLookupResult | undefined]): [K, V] => [this.#keyOut(e[0]), this.#decode(e[1])];
    let previous = new Map<string, [Buffer, MapLookupResult | undefined]>();
    for (let first = true; ; first = false) {
      if (!first) {
        try {
          await sleep(interval, undefined, { signal });
        } catch (e) {
          throw signal?.aborted ? signal.reason : e; // the reason, not the timer's AbortError
        }
      }
      signal?.throwIfAborted();
      const snapshot: [Buffer, MapLookupResult | undefined][] = [];
      for await (const [k, v] of raw.entries()) snapshot.push([k as Buffer, v as MapLookupResult | undefined]);
      if (!opts.changes) {
        yield snapshot.map(decoded);
        continue;
      }
      const current = new Map(snapshot.map((e) => [e[0].toString('hex'), e] as const));
      const updated = snapshot.filter(([k, v]) => {
        const before = previous.get(k.toString('hex'));
        return !before || !sameValue(before[1], v);
      });
      const deleted = [...previous.keys()].filter((k) => !current.has(k)).map((k) => this.#keyOut(previous.get(k)![0]));
      previous = current;
      yield { updated: updated.map(decoded), deleted };
    }
  }

  /**
   * Registers a struct_ops map (a tcp_congestion_ops of BPF programs, ...)
   * with its kernel subsystem (bpf_map__attach_struct_ops); the link's
   * detach() (or close(), `using`, the object's close(), the process's
   * exit) unregisters it. A kernel link where the map has BPF_F_LINK
   * (SEC(".struct_ops.link"), libbpf 1.2+, Linux 6.4+); otherwise a
   * registration whose link type is 'struct_ops' and has no fd to pin.
   * With libbpf 1.1, `map.flags |= 1 << 13` (BPF_F_LINK) before load gives
   * the kernel link too. obj.attach() does this for every struct_ops map of
   * the object. A map without BPF_F_LINK registers once (EBUSY after its
   * detach: load the object again).
   */
  attachStructOps(): BpfLink {
    return attachStructOps(this, this.#loaded());
  }

  /** Pins the map in bpffs (bpf_obj_pin), so it outlives this process. */
  pin(path: string): void {
    this.#loaded().pin(checkString('path', path));
    this.#core.pinPath = path;
  }

  /** Removes a pin (by default the one pin() made). */
  unpin(path: string | undefined = this.#core.pinPath ?? this.#meta().pinPath): void {
    if (path === undefined) invalidState(`map '${this.name}' has no pin to remove`);
    unlinkSync(checkString('path', path));
    if (path === this.#core.pinPath) this.#core.pinPath = undefined;
  }

  /** The BTF of the map's object, or for a pin the kernel's BTF of the map (null without one). */
  get btf(): Btf | null {
    const c = this.#core;
    if (c.owner) return c.owner.btf;
    if (c.btf === undefined) {
      const raw = this.#live().btf();
      c.btf = raw ? Btf.parse(raw) : null;
    }
    return c.btf;
  }

  /** @internal Closes `d` when this map (or its object) closes; returns the undo. */
  addDependent(d: Dependent): () => void {
    const deps = this.#core.dependents;
    const ref = new WeakRef(d);
    deps.add(ref);
    forgetWhenCollected.register(d, { deps, ref }, ref);
    return () => {
      deps.delete(ref);
      forgetWhenCollected.unregister(ref);
    };
  }

  /** @internal This map's consumers end first: their object is closing. */
  closeDependents(): void {
    const c = this.#core;
    const deps = c.dependents;
    for (const ref of [...deps]) ref.deref()?.close();
    deps.clear();
    // Views from memory() go empty now; the pages go when they are collected.
    if (c.memory) {
      c.native.detachMemory(c.memory);
      c.memory = undefined;
    }
  }

  /** Closes a standalone map's fd (and its raw view); a map of an object closes with the object. */
  close(): void {
    const c = this.#core;
    if (c.closed) return;
    this.closeDependents();
    c.closed = true;
    if (!c.owner) c.native.close();
  }

  /** @internal The bytes of a global variable (data sections only). */
  readGlobal(offset: number, size: number): Buffer {
    return this.#live().readGlobal(offset, size);
  }

  /** @internal */
  writeGlobal(offset: number, bytes: Buffer): void {
    this.#live().writeGlobal(offset, bytes);
  }

  /** @internal The fd of a map that is in the kernel, for consumers. */
  liveFd(): number {
    this.#loaded();
    return this.#meta().fd;
  }

  /** close(), for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
