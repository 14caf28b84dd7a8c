// Codecs from BTF: for one type, a decode and an encode function generated
// once (straight-line DataView accesses for each member), not a walk over
// the type tree for every value.
//   int 1-8 bytes (64-bit as bigint), bool, char arrays as strings, other
//   arrays as typed arrays (numbers) or arrays, enums as numbers (names in
//   `enums`), structs and unions as plain objects, bitfields, pointers as
//   bigint; padding is skipped. encode() is the inverse and rejects what
//   does not fit.
import { Btf, type BtfMember, type BtfType } from './btf.js';
import { fail } from './internal/errors.js';
import { dataViewOf } from './internal/views.js';

/** The typed arrays codecs give for arrays of integers and floats. */
export type DecodedTypedArray = Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array
  | BigInt64Array | BigUint64Array | Float32Array | Float64Array;

/**
 * What a codec decodes a BTF type to, where the type is known only at run
 * time (`{ type: 'struct event' }` without a type argument): integers up to
 * 32 bits, enums and floats as numbers, 64-bit integers and pointers as
 * bigint, bool as boolean, char arrays as strings, other integer and float
 * arrays as typed arrays, other arrays as arrays, structs and unions as
 * objects of their members. Give the type (`new RingBuffer<Event>(...)`)
 * or use a layout to have it statically.
 */
export type Decoded = number | bigint | boolean | string | DecodedTypedArray | Decoded[] | { [member: string]: Decoded };

/**
 * Encoder and decoder of one BTF type, compiled once per Btf and type by
 * codecFor() (or made from a TypeScript layout by struct()): integers of 1 to
 * 8 bytes (64-bit ones as bigint), char arrays as strings, other arrays as
 * typed or plain arrays, enums as numbers, structs and unions as objects,
 * pointers as bigint. Holds no resources.
 */
export interface Codec<T = unknown> {
  /** The C name of the type, e.g. 'struct event'. */
  readonly typeName: string;
  readonly size: number;
  /** Reads a value at `offset` of `bytes` (which must hold `size` bytes from there). */
  decode(bytes: Uint8Array, offset?: number): T;
  /**
   * @internal decode() over a DataView the caller keeps for many values
   * (a batch of records), unchecked: the caller knows the bounds.
   */
  decodeAt(dv: DataView, bytes: Uint8Array, offset: number, words?: Words): T;
  /**
   * Bytes a record must hold to be decoded: every member but a trailing
   * array, which records may cut short (tools send only its used part).
   * `size` for types that do not end in an array.
   */
  readonly minSize: number;
  /** True where the type ends in an array (char or other) that a record may cut short, or a flexible one. */
  readonly variable: boolean;
  /**
   * Decodes one record of any length, as ring and perf buffers deliver
   * them: members that fit are decoded, a trailing array is cut to the
   * bytes present (a string ends at its NUL or at the end of the record; a
   * flexible array takes every byte present), bytes past the type are
   * ignored. A record shorter than `minSize` throws a RangeError
   * (ERR_OUT_OF_RANGE) naming the member it cuts.
   */
  decodeRecord(bytes: Uint8Array): T;
  /** @internal decodeRecord() over a DataView of a batch: `len` bytes at `offset`. */
  decodeRecordAt(dv: DataView, bytes: Uint8Array, offset: number, len: number, words?: Words): T;
  /**
   * A new Buffer of `size` bytes holding `value`; throws, writing nothing,
   * if it does not fit. `path` names the value in messages (default 'value').
   */
  encode(value: T, path?: string): Buffer;
  /** Each enum type's names by value, for the enums the type contains. */
  readonly enums: ReadonlyMap<string, ReadonlyMap<number | bigint, string>>;
}

/**
 * @internal The bytes of a decodeAt()/decodeRecordAt() call as 64-bit
 * words, for buffers decoded many times (a mapped ring, a map's scratch):
 * views from byte 0 of the same ArrayBuffer as `bytes` and `dv`, which
 * must then start at byte 0 too. A 64-bit member at an 8-aligned offset
 * is read as an element (about 5 ns, inlined by the JIT) rather than with
 * DataView#getBigUint64 (about 12 ns, a builtin call): records often hold
 * several (timestamps, counters, pointers).
 */
export interface Words {
  readonly u: BigUint64Array;
  readonly s: BigInt64Array;
}

/** @internal Words over an ArrayBuffer (its whole 8-byte words). */
export function wordsOf(ab: ArrayBuffer): Words {
  const n = Math.floor(ab.byteLength / 8);
  return { u: new BigUint64Array(ab, 0, n), s: new BigInt64Array(ab, 0, n) };
}

// The generated code calls these.
// Buffer's own UTF-8 decoder, which takes any Uint8Array: half the cost of
// wrapping the bytes in a Buffer first.
const utf8Slice = (Buffer.prototype as unknown as { utf8Slice(this: Uint8Array, start: number, end: number): string }).utf8Slice;

// ASCII strings of up to 16 bytes (comm, short names: most strings in
// records) as String.fromCharCode with the bytes as arguments, one case per
// length: about half the time of utf8Slice, a call into C++ that costs more
// than the decoding itself at these lengths (25 against 52 ns for a
// 9-byte comm here, measured with a loop over 64 Ki records).
// eslint-disable-next-line @typescript-eslint/no-implied-eval
const asciiShort = new Function('utf8Slice', `const f = String.fromCharCode;
  return (u8, at, n) => {
    switch (n) {
      case 0: return '';
      ${Array.from({ length: 16 }, (_, n) => `case ${n + 1}: return f(${Array.from({ length: n + 1 }, (_, i) => `u8[at + ${i}]`).join(', ')});`).join('\n      ')}
    }
    return utf8Slice.call(u8, at, at + n);
  };`)(utf8Slice) as (u8: Uint8Array, at: number, n: number) => string;

const helpers = {
  // A char array: up to its first NUL, as UTF-8.
  str(u8: Uint8Array, at: number, n: number): string {
    let end = at;
    let high = 0;
    const stop = at + n;
    while (end < stop) {
      const b = u8[end]!;
      if (b === 0) break;
      high |= b;
      end++;
    }
    return high < 0x80 ? asciiShort(u8, at, end - at) : utf8Slice.call(u8, at, end);
  },
  // A bitfield of `width` bits at bit `shift` of the `bytes` bytes at `at`.
  bits(u8: Uint8Array, at: number, bytes: number, shift: number, width: number, signed: boolean, big: boolean): number | bigint {
    let v = 0n;
    for (let i = bytes - 1; i >= 0; i--) v = (v << 8n) | BigInt(u8[at + i]!);
    v = (v >> BigInt(shift)) & ((1n << BigInt(width)) - 1n);
    if (signed) v = BigInt.asIntN(width, v);
    return big ? v : Number(v);
  },
  setBits(u8: Uint8Array, at: number, bytes: number, shift: number, width: number, value: bigint): void {
    let v = 0n;
    for (let i = bytes - 1; i >= 0; i--) v = (v << 8n) | BigInt(u8[at + i]!);
    const mask = ((1n << BigInt(width)) - 1n) << BigInt(shift);
    v = (v & ~mask) | ((BigInt.asUintN(width, value) << BigInt(shift)) & mask);
    for (let i = 0; i < bytes; i++) {
      u8[at + i] = Number(v & 0xffn);
      v >>= 8n;
    }
  },
  // A record shorter than its type's fixed part: name the member it cuts.
  short(typeName: string, len: number, min: number, size: number, fields: readonly (readonly [string, number, number])[]): never {
    const cut = fields.find((f) => f[2] > len);
    const where = cut ? `: it ends inside member '${cut[0]}' (bytes ${cut[1]}..${cut[2] - 1})` : '';
    return fail(RangeError, 'ERR_OUT_OF_RANGE',
      `a ${len}-byte record is too short for ${typeName} (${size} bytes, at least ${min} needed${min < size ? ' before its trailing array' : ''})${where}`);
  },
  fail(Ctor: TypeErrorConstructor | RangeErrorConstructor, code: 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE' | 'ERR_OUT_OF_RANGE', msg: string): never {
    return fail(Ctor, code, msg);
  },
  int(path: string, v: unknown, min: bigint, max: bigint): bigint {
    if (typeof v !== 'number' && typeof v !== 'bigint') helpers.fail(TypeError, 'ERR_INVALID_ARG_TYPE', `${path} must be a number or bigint, got ${typeof v}`);
    if (typeof v === 'number' && !Number.isSafeInteger(v)) helpers.fail(RangeError, 'ERR_OUT_OF_RANGE', `${path} must be an integer, got ${v}`);
    const b = BigInt(v as number | bigint);
    if (b < min || b > max) helpers.fail(RangeError, 'ERR_OUT_OF_RANGE', `${path} must be >= ${min} and <= ${max}, got ${b}`);
    return b;
  },
  object(path: string, v: unknown, known: ReadonlySet<string>): Record<string, unknown> {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) helpers.fail(TypeError, 'ERR_INVALID_ARG_TYPE', `${path} must be an object`);
    for (const k of Object.keys(v as object)) {
      if (!known.has(k)) helpers.fail(TypeError, 'ERR_INVALID_ARG_VALUE', `${path} has no member '${k}' (it has: ${[...known].join(', ')})`);
    }
    return v as Record<string, unknown>;
  },
};
type Helpers = typeof helpers;

interface Field {
  name: string;
  type: number;
  byteOffset: number;
  bitOffset: number; // within the struct, for bitfields
  bitfieldSize: number;
}

class Generator {
  readonly enums = new Map<string, Map<number | bigint, string>>();
  readonly consts: unknown[] = [];
  #fn = 0;
  readonly fns: string[] = [];

  constructor(readonly btf: Btf) {}

  konst(v: unknown): string {
    this.consts.push(v);
    return `K[${this.consts.length - 1}]`;
  }

  // Members of a struct or union, anonymous ones flattened into their parent
  // as C does.
  fields(t: BtfType & { members: BtfMember[] }, base: number): Field[] {
    const out: Field[] = [];
    for (const m of t.members) {
      const r = this.btf.resolve(m.type);
      if (!m.name && (r.kind === 'struct' || r.kind === 'union')) {
        out.push(...this.fields(r, base + m.bitOffset));
      } else if (m.name) {
        const bit = base + m.bitOffset;
        out.push({ name: m.name, type: m.type, byteOffset: Math.floor(bit / 8), bitOffset: bit, bitfieldSize: m.bitfieldSize });
      }
    }
    return out;
  }

  charLike(t: BtfType): boolean {
    // plain char only: unsigned char and signed char (u8, s8) arrays are bytes
    return t.kind === 'int' && t.size === 1 && (t.char || t.name === 'char');
  }

  // An expression for the value of type `id` at byte `o + off`.
  dec(id: number, off: string): string {
    const t = this.btf.resolve(id);
    const at = `o + ${off}`;
    switch (t.kind) {
      case 'int':
      case 'enum':
      case 'enum64': {
        if (t.kind === 'enum' || t.kind === 'enum64') this.enumNames(t);
        if (t.kind === 'int' && t.bool) return `(dv.getUint8(${at}) !== 0)`;
        const signed = t.signed;
        switch (t.size) {
          case 1: return `dv.${signed ? 'getInt8' : 'getUint8'}(${at})`;
          case 2: return `dv.${signed ? 'getInt16' : 'getUint16'}(${at}, true)`;
          case 4: return `dv.${signed ? 'getInt32' : 'getUint32'}(${at}, true)`;
          case 8: return this.u64(at, signed);
          case 16: return `BigInt.as${signed ? 'Int' : 'Uint'}N(128, (dv.getBigUint64(${at} + 8, true) << 64n) | dv.getBigUint64(${at}, true))`;
          default: return fail(TypeError, 'ERR_INVALID_ARG_VALUE', `no codec for a ${t.size}-byte integer`);
        }
      }
      case 'ptr': return this.u64(at, false);
      case 'float': return t.size === 4 ? `dv.getFloat32(${at}, true)` : `dv.getFloat64(${at}, true)`;
      case 'array': {
        const elem = this.btf.resolve(t.type);
        if (this.charLike(elem)) return `H.str(u8, ${at}, ${t.nelems})`;
        const typed = this.typedArray(elem);
        const esize = this.btf.sizeof(t.type);
        if (typed) return `new ${typed}(u8.buffer.slice(u8.byteOffset + ${at}, u8.byteOffset + ${at} + ${t.nelems * esize}))`;
        const f = this.fn(`const a = new Array(${t.nelems}); for (let i = 0; i < ${t.nelems}; i++) a[i] = ${this.dec(t.type, `i * ${esize}`)}; return a;`);
        return `${f}(dv, u8, ${at}, 0, w)`;
      }
      case 'struct':
      case 'union': {
        const fields = this.fields(t, 0);
        const body = fields.map((f) => `${JSON.stringify(f.name)}: ${f.bitfieldSize ? this.decBits(f) : this.dec(f.type, String(f.byteOffset))}`);
        return `${this.fn(`return { ${body.join(', ')} };`)}(dv, u8, ${at}, 0, w)`;
      }
      default:
        return fail(TypeError, 'ERR_INVALID_ARG_VALUE', `no codec for BTF kind ${t.kind} (${this.btf.typeName(id)})`);
    }
  }

  // The trailing array a record may cut: a struct's last member, if it is
  // a named array (not a bitfield).
  tail(id: number): { name: string; byteOffset: number; type: number; nelems: number; esize: number } | undefined {
    const t = this.btf.resolve(id);
    if (t.kind !== 'struct') return undefined;
    const m = t.members[t.members.length - 1];
    if (!m || !m.name || m.bitfieldSize !== 0 || m.bitOffset % 8 !== 0) return undefined;
    const a = this.btf.resolve(m.type);
    if (a.kind !== 'array') return undefined;
    return { name: m.name, byteOffset: m.bitOffset / 8, type: a.type, nelems: a.nelems, esize: this.btf.sizeof(a.type) };
  }

  // An expression for the first `n` (an expression) elements of an array
  // of `elemId` at byte `o + off`.
  decTail(elemId: number, off: number, n: string): string {
    const elem = this.btf.resolve(elemId);
    const esize = this.btf.sizeof(elemId);
    const at = `o + ${off}`;
    if (this.charLike(elem)) return `H.str(u8, ${at}, ${n})`;
    const typed = this.typedArray(elem);
    if (typed) return `new ${typed}(u8.buffer.slice(u8.byteOffset + ${at}, u8.byteOffset + ${at} + ${n} * ${esize}))`;
    const f = this.fn(`const a = new Array(v); for (let i = 0; i < v; i++) a[i] = ${this.dec(elemId, `i * ${esize}`)}; return a;`, true);
    return `${f}(dv, u8, ${at}, ${n}, w)`;
  }

  // A 64-bit integer at `at`: an element of the words where the caller
  // gave them and the offset is aligned, else through the DataView.
  u64(at: string, signed: boolean): string {
    return `(w !== undefined && ((${at}) & 7) === 0 ? w.${signed ? 's' : 'u'}[(${at}) >>> 3] : dv.${signed ? 'getBigInt64' : 'getBigUint64'}(${at}, true))`;
  }

  // decodeRecordAt's body: the whole-type decoder when the record is long
  // enough and fixed, else fixed members plus the trailing array cut to
  // what is present.
  decRecord(id: number, size: number, typeName: string, decodeExpr: string): { body: string; min: number; variable: boolean } {
    const t = this.btf.resolve(id);
    const tail = this.tail(id);
    const fields = t.kind === 'struct' || t.kind === 'union' ? this.fields(t, 0) : [];
    const spans = fields
      .filter((f) => !(tail && f.name === tail.name && f.byteOffset === tail.byteOffset))
      .map((f) => [f.name, f.byteOffset, f.bitfieldSize ? Math.ceil((f.bitOffset + f.bitfieldSize) / 8) : f.byteOffset + this.btf.sizeof(f.type)] as const)
      .sort((a, b) => a[1] - b[1]);
    const min = tail ? spans.reduce((m, f) => Math.max(m, f[2]), 0) : size;
    const short = `H.short(${JSON.stringify(typeName)}, len, ${min}, ${size}, ${this.konst(spans)})`;
    if (!tail || t.kind !== 'struct') {
      return { body: `if (len < ${size}) ${short}; return ${decodeExpr};`, min, variable: false };
    }
    const flexible = tail.nelems === 0;
    const n = tail.esize === 0 ? '0'
      : `Math.max(0, ${flexible ? '' : `Math.min(${tail.nelems}, `}Math.floor((len - ${tail.byteOffset}) / ${tail.esize})${flexible ? '' : ')'})`;
    const members = fields.map((f) => {
      const isTail = f.name === tail.name && f.byteOffset === tail.byteOffset;
      const v = isTail ? this.decTail(tail.type, tail.byteOffset, 'n') : f.bitfieldSize ? this.decBits(f) : this.dec(f.type, String(f.byteOffset));
      return `${JSON.stringify(f.name)}: ${v}`;
    });
    const body = `${flexible ? '' : `if (len >= ${size}) return ${decodeExpr}; `}if (len < ${min}) ${short}; const n = ${n}; return { ${members.join(', ')} };`;
    return { body, min, variable: true };
  }

  decBits(f: Field): string {
    const t = this.btf.resolve(f.type);
    const signed = (t.kind === 'int' || t.kind === 'enum') && t.signed;
    const byte = Math.floor(f.bitOffset / 8);
    const shift = f.bitOffset % 8;
    const bytes = Math.ceil((shift + f.bitfieldSize) / 8);
    return `H.bits(u8, o + ${byte}, ${bytes}, ${shift}, ${f.bitfieldSize}, ${signed}, ${f.bitfieldSize > 32})`;
  }

  typedArray(elem: BtfType): string | undefined {
    if (elem.kind === 'float') return elem.size === 4 ? 'Float32Array' : 'Float64Array';
    if (elem.kind !== 'int' || elem.bool) return undefined;
    const s = elem.signed;
    return ({ 1: s ? 'Int8Array' : 'Uint8Array', 2: s ? 'Int16Array' : 'Uint16Array', 4: s ? 'Int32Array' : 'Uint32Array', 8: s ? 'BigInt64Array' : 'BigUint64Array' } as Record<number, string>)[elem.size];
  }

  enumNames(t: BtfType & { kind: 'enum' | 'enum64' }): void {
    this.enums.set(this.btf.typeName(t.id), new Map(t.values.map((v) => [v.value, v.name])));
  }

  // Statements writing `v` (an expression) as type `id` at byte `o + off`.
  enc(id: number, off: string, v: string, path: string): string {
    const t = this.btf.resolve(id);
    const at = `o + ${off}`;
    // Messages name the value by the caller's path (P: 'key', 'value[1]')
    // and this suffix ('.comm', '[]').
    const p = `(P + ${JSON.stringify(path)})`;
    switch (t.kind) {
      case 'int':
      case 'enum':
      case 'enum64': {
        if (t.kind === 'int' && t.bool) return `dv.setUint8(${at}, ${v} ? 1 : 0);`;
        let value = v;
        if (t.kind !== 'int') {
          // an enum also takes its value's name
          const byName = this.konst(new Map(t.values.map((x) => [x.name, x.value])));
          value = `(typeof ${v} === 'string' ? (${byName}.has(${v}) ? ${byName}.get(${v}) : H.fail(TypeError, 'ERR_INVALID_ARG_VALUE', ${p} + ': no enumerator ' + ${v})) : ${v})`;
        }
        const bits = BigInt(t.size * 8);
        const [min, max] = t.signed ? [-(1n << (bits - 1n)), (1n << (bits - 1n)) - 1n] : [0n, (1n << bits) - 1n];
        const big = `H.int(${p}, ${value}, ${this.konst(min)}, ${this.konst(max)})`;
        switch (t.size) {
          case 1: return `dv.setUint8(${at}, Number(BigInt.asUintN(8, ${big})));`;
          case 2: return `dv.setUint16(${at}, Number(BigInt.asUintN(16, ${big})), true);`;
          case 4: return `dv.setUint32(${at}, Number(BigInt.asUintN(32, ${big})), true);`;
          case 8: return `dv.setBigUint64(${at}, BigInt.asUintN(64, ${big}), true);`;
          default: { const b = `b${this.#fn++}`; return `{ const ${b} = BigInt.asUintN(128, ${big}); dv.setBigUint64(${at}, BigInt.asUintN(64, ${b}), true); dv.setBigUint64(${at} + 8, ${b} >> 64n, true); }`; }
        }
      }
      case 'ptr': return `dv.setBigUint64(${at}, BigInt.asUintN(64, H.int(${p}, ${v}, 0n, ${this.konst((1n << 64n) - 1n)})), true);`;
      case 'float': return `if (typeof ${v} !== 'number') H.fail(TypeError, 'ERR_INVALID_ARG_TYPE', ${p} + ' must be a number'); dv.${t.size === 4 ? 'setFloat32' : 'setFloat64'}(${at}, ${v}, true);`;
      case 'array': {
        const elem = this.btf.resolve(t.type);
        const esize = this.btf.sizeof(t.type);
        if (this.charLike(elem)) {
          return `{ if (typeof ${v} !== 'string') H.fail(TypeError, 'ERR_INVALID_ARG_TYPE', ${p} + ' must be a string'); ` +
            `const utf8 = Buffer.from(${v}, 'utf8'); if (utf8.length > ${t.nelems}) H.fail(RangeError, 'ERR_OUT_OF_RANGE', ${p} + ' is ' + utf8.length + ' bytes, longer than its char[${t.nelems}]'); u8.set(utf8, ${at}); }`;
        }
        const f = this.fn(`if (v === null || typeof v !== 'object' || typeof v.length !== 'number') H.fail(TypeError, 'ERR_INVALID_ARG_TYPE', ${p} + ' must be an array'); ` +
          `if (v.length > ${t.nelems}) H.fail(RangeError, 'ERR_OUT_OF_RANGE', ${p} + ' has ' + v.length + ' elements, more than ${t.nelems}'); ` +
          `for (let i = 0; i < v.length; i++) { ${this.enc(t.type, `i * ${esize}`, 'v[i]', `${path}[]`)} }`, true);
        return `${f}(dv, u8, ${at}, ${v});`;
      }
      case 'struct':
      case 'union': {
        const fields = this.fields(t, 0);
        const known = this.konst(new Set(fields.map((f) => f.name)));
        const body = fields.map((f) => {
          const fv = `s[${JSON.stringify(f.name)}]`;
          const fpath = `${path}.${f.name}`;
          if (f.bitfieldSize) {
            const r = this.btf.resolve(f.type);
            const signed = (r.kind === 'int' || r.kind === 'enum') && r.signed;
            const w = BigInt(f.bitfieldSize);
            const [min, max] = signed ? [-(1n << (w - 1n)), (1n << (w - 1n)) - 1n] : [0n, (1n << w) - 1n];
            const byte = Math.floor(f.bitOffset / 8);
            const shift = f.bitOffset % 8;
            return `if (${fv} !== undefined) H.setBits(u8, o + ${byte}, ${Math.ceil((shift + f.bitfieldSize) / 8)}, ${shift}, ${f.bitfieldSize}, H.int((P + ${JSON.stringify(fpath)}), ${fv}, ${this.konst(min)}, ${this.konst(max)}));`;
          }
          return `if (${fv} !== undefined) { ${this.enc(f.type, String(f.byteOffset), fv, fpath)} }`;
        });
        const f = this.fn(`const s = H.object(${p}, v, ${known}); ${body.join(' ')}`, true);
        return `${f}(dv, u8, ${at}, ${v});`;
      }
      default:
        return fail(TypeError, 'ERR_INVALID_ARG_VALUE', `no codec for BTF kind ${t.kind} (${this.btf.typeName(id)})`);
    }
  }

  fn(body: string, withValue = false): string {
    const name = `f${this.#fn++}`;
    // v: the value encoded, or a decoded tail's length; w: Words or undefined
    this.fns.push(`function ${name}(dv, u8, o, ${withValue ? 'v' : '_'}, w) { ${body} }`);
    return name;
  }
}

const cache = new WeakMap<Btf, Map<number, Codec>>();

/** The codec of a BTF type (by id or C name), compiled once per Btf and type. */
export function codecFor<T = unknown>(btf: Btf, type: number | string): Codec<T> {
  let id: number;
  if (typeof type === 'string') {
    const t = btf.find(type);
    if (!t) fail(TypeError, 'ERR_INVALID_ARG_VALUE', `no BTF type named '${type}'`);
    id = t.id;
  } else {
    id = btf.type(type).id;
  }
  let perBtf = cache.get(btf);
  if (!perBtf) cache.set(btf, (perBtf = new Map()));
  const hit = perBtf.get(id);
  if (hit) return hit as Codec<T>;

  const g = new Generator(btf);
  const size = btf.sizeof(id);
  const typeName = btf.typeName(id);
  const decodeExpr = g.dec(id, '0');
  const encodeStmts = g.enc(id, '0', 'v', '');
  const record = g.decRecord(id, size, typeName, decodeExpr);
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const make = new Function('H', 'K', `'use strict';
    let P = 'value';
    ${g.fns.join('\n')}
    return {
      decode(bytes, offset = 0) {
        if (bytes.length - offset < ${size}) H.fail(RangeError, 'ERR_OUT_OF_RANGE', ${JSON.stringify(typeName)} + ' needs ${size} bytes, got ' + (bytes.length - offset));
        const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        const u8 = bytes, o = offset, w = undefined;
        return ${decodeExpr};
      },
      decodeAt(dv, u8, o, w) {
        return ${decodeExpr};
      },
      decodeRecordAt(dv, u8, o, len, w) {
        ${record.body}
      },
      encode(v, path = 'value') {
        P = path;
        const u8 = Buffer.alloc(${size});
        const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
        const o = 0;
        ${encodeStmts}
        return u8;
      },
    };`) as (h: Helpers, k: unknown[]) => Pick<Codec<T>, 'decode' | 'decodeAt' | 'encode' | 'decodeRecord' | 'decodeRecordAt'>;
  const fns = make(helpers, g.consts);
  const codec: Codec<T> = {
    typeName, size, enums: g.enums, minSize: record.min, variable: record.variable,
    decode: fns.decode, decodeAt: fns.decodeAt, encode: fns.encode, decodeRecordAt: fns.decodeRecordAt,
    decodeRecord: (bytes) => {
      if (!(bytes instanceof Uint8Array)) helpers.fail(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "bytes" argument must be a Buffer or Uint8Array');
      return fns.decodeRecordAt(dataViewOf(bytes), bytes, 0, bytes.length);
    },
  };
  perBtf.set(id, codec as Codec);
  return codec;
}
