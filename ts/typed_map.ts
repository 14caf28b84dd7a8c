// A map's keys and values as JavaScript values, encoded and decoded with
// the codecs of their BTF types (map.typed). Per-CPU maps give an array of
// values, one per possible CPU. The BpfMap itself stays raw (Buffers).
import { codecFor, type Codec } from './codec.js';
import { fail } from './internal/errors.js';
import type { BpfMap, MapUpdateOptions } from './map.js';

/** One CPU's value of a per-CPU map's value type (an array), else the type itself. */
export type PerCpuElement<V> = V extends readonly (infer E)[] ? E : V;

/**
 * K and V are what lookup() takes and gives: for a per-CPU map, V is an
 * array (one value per possible CPU).
 */
export class TypedMap<K = unknown, V = unknown> {
  readonly #map: BpfMap;
  readonly #key: Codec<K> | undefined;
  readonly #value: Codec<unknown>;

  /** @internal */
  constructor(map: BpfMap) {
    const btf = map.btf;
    if (!btf || map.btfValueTypeId === 0) {
      fail(TypeError, 'ERR_INVALID_ARG_VALUE', `map '${map.name}' has no BTF key/value types (declare it with __type(key, ...) and __type(value, ...))`);
    }
    this.#map = map;
    this.#key = map.btfKeyTypeId ? codecFor<K>(btf, map.btfKeyTypeId) : undefined;
    this.#value = codecFor(btf, map.btfValueTypeId);
  }

  /** The raw map underneath. */
  get raw(): BpfMap {
    return this.#map;
  }

  /** C names of the key and value types, e.g. 'u32', 'struct stats'. */
  get keyType(): string { return this.#key?.typeName ?? 'void'; }
  get valueType(): string { return this.#value.typeName; }

  #k(key: K): Buffer | null {
    return this.#key ? this.#key.encode(key) : null;
  }

  #v(raw: Buffer | Buffer[]): V {
    return (Array.isArray(raw) ? raw.map((b) => this.#value.decode(b)) : this.#value.decode(raw)) as V;
  }

  lookup(key: K): V | undefined {
    const raw = this.#map.lookup(this.#k(key) as Buffer);
    return raw === undefined ? undefined : this.#v(raw);
  }

  /** Per-CPU maps take one value per CPU, or one value for all of them. */
  update(key: K, value: V | PerCpuElement<V>, opts?: MapUpdateOptions): void {
    const bytes = Array.isArray(value) ? value.map((v: unknown) => this.#value.encode(v)) : this.#value.encode(value);
    this.#map.update(this.#k(key) as Buffer, bytes, opts);
  }

  delete(key: K): boolean {
    return this.#map.delete(this.#k(key) as Buffer);
  }

  *entries(): IterableIterator<[K, V]> {
    for (const [k, v] of this.#map.entries()) yield [this.#key ? this.#key.decode(k) : (undefined as K), this.#v(v)];
  }

  *keys(): IterableIterator<K> {
    for (const k of this.#map.keys()) yield this.#key ? this.#key.decode(k) : (undefined as K);
  }

  *values(): IterableIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }
}
