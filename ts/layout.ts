// Record layouts declared in TypeScript: struct({pid: 'u32', comm:
// 'char[16]'}) lays the fields out as C does (each at its alignment, the
// struct padded to its largest one) and turns the layout into BTF types, so
// the codec is the very one a BTF type of the same shape gets (codec.ts),
// and the TypeScript type of the decoded value is inferred from the field
// strings. For event types that never reach an object's BTF.
import { Btf, type BtfMember, type BtfType } from './btf.js';
import { codecFor, type Codec } from './codec.js';
import { fail, invalidArgType, invalidArgValue } from './internal/errors.js';

/** The scalar field types: fixed-width integers as the kernel names them, bool, char, floats. */
export type LayoutScalar = 'u8' | 'u16' | 'u32' | 'u64' | 's8' | 's16' | 's32' | 's64' | 'bool' | 'char' | 'f32' | 'f64';

/**
 * A field: a scalar ('u32'), an array of scalars ('char[16]', 'u64[4]'; a
 * last field may be a flexible array, 'char[]'), a nested layout, or
 * array(layout, n).
 */
export type LayoutField = LayoutScalar | `${LayoutScalar}[${number}]` | `${LayoutScalar}[]` | Layout<unknown>;

/**
 * The value of a scalar field: bigint for 64-bit integers, boolean for bool, else number.
 */
export type ScalarValue<S> = S extends 'u64' | 's64' ? bigint : S extends 'bool' ? boolean : number;
/**
 * The value of an array field: a string for char arrays, else a typed array.
 */
export type ScalarArray<S> =
  S extends 'char' ? string
  : S extends 'u8' ? Uint8Array : S extends 's8' ? Int8Array
  : S extends 'u16' ? Uint16Array : S extends 's16' ? Int16Array
  : S extends 'u32' ? Uint32Array : S extends 's32' ? Int32Array
  : S extends 'u64' ? BigUint64Array : S extends 's64' ? BigInt64Array
  : S extends 'f32' ? Float32Array : S extends 'f64' ? Float64Array
  : boolean[];

/** The decoded value of one field. */
export type LayoutFieldValue<F> =
  F extends Layout<infer T> ? T
  : F extends `${infer S extends LayoutScalar}[${string}]` ? ScalarArray<S>
  : F extends LayoutScalar ? ScalarValue<F>
  : never;

/** The decoded value of a struct whose fields are F. */
export type StructValue<F extends Readonly<Record<string, LayoutField>>> = { -readonly [K in keyof F]: LayoutFieldValue<F[K]> };

/** The TypeScript type of what a layout decodes: `type Event = LayoutValue<typeof Event>`. */
export type LayoutValue<L> = L extends Layout<infer T> ? T : never;

/** Options of struct(): the C name and packing. */
export interface StructOptions {
  /** The C name, in messages and skeletons (default 'struct (anon)'), e.g. 'event'. */
  name?: string;
  /** No padding: every field at alignment 1 (__attribute__((packed))). */
  packed?: boolean;
}

const SCALARS: Readonly<Record<LayoutScalar, { size: number; signed: boolean; kind: 'int' | 'bool' | 'char' | 'float'; c: string }>> = {
  u8: { size: 1, signed: false, kind: 'int', c: 'u8' },
  u16: { size: 2, signed: false, kind: 'int', c: 'u16' },
  u32: { size: 4, signed: false, kind: 'int', c: 'u32' },
  u64: { size: 8, signed: false, kind: 'int', c: 'u64' },
  s8: { size: 1, signed: true, kind: 'int', c: 's8' },
  s16: { size: 2, signed: true, kind: 'int', c: 's16' },
  s32: { size: 4, signed: true, kind: 'int', c: 's32' },
  s64: { size: 8, signed: true, kind: 'int', c: 's64' },
  bool: { size: 1, signed: false, kind: 'bool', c: '_Bool' },
  char: { size: 1, signed: true, kind: 'char', c: 'char' },
  f32: { size: 4, signed: true, kind: 'float', c: 'float' },
  f64: { size: 8, signed: true, kind: 'float', c: 'double' },
};

// BTF sizes are 32-bit; a record past 1 GiB is a mistake, not an event.
const MAX_SIZE = 1 << 30;

type Node =
  | { kind: 'scalar'; scalar: LayoutScalar }
  | { kind: 'array'; elem: Node; count: number } // count 0: flexible
  | { kind: 'struct'; name: string; packed: boolean; fields: { name: string; node: Node; offset: number }[]; size: number; align: number };

function sizeOf(n: Node): number {
  switch (n.kind) {
    case 'scalar': return SCALARS[n.scalar].size;
    case 'array': return n.count * sizeOf(n.elem);
    case 'struct': return n.size;
  }
}

function alignOf(n: Node): number {
  switch (n.kind) {
    case 'scalar': return SCALARS[n.scalar].size;
    case 'array': return alignOf(n.elem);
    case 'struct': return n.align;
  }
}

const ARRAY_RE = /^([a-z0-9_]+)\[(\d*)\]$/;

function parseField(path: string, spec: unknown): Node {
  if (spec instanceof Layout) return spec.node;
  if (typeof spec !== 'string') invalidArgType(path, 'a field type string such as \'u32\' or \'char[16]\', or a Layout', spec);
  if (Object.hasOwn(SCALARS, spec)) return { kind: 'scalar', scalar: spec as LayoutScalar };
  const m = ARRAY_RE.exec(spec);
  if (m && Object.hasOwn(SCALARS, m[1]!)) {
    const count = m[2] === '' ? 0 : Number(m[2]);
    const elem: Node = { kind: 'scalar', scalar: m[1] as LayoutScalar };
    if (!Number.isSafeInteger(count) || count * sizeOf(elem) > MAX_SIZE || (m[2] !== '' && count === 0) || /^0\d/.test(m[2]!)) {
      invalidArgValue(path, spec, `must have a count from 1 to ${MAX_SIZE / sizeOf(elem)} ('[]' for a flexible last field)`);
    }
    return { kind: 'array', elem, count };
  }
  return invalidArgValue(path, spec, `is not a field type: one of ${Object.keys(SCALARS).join(', ')}, an array of them ('char[16]', 'u8[]'), a struct(...) or array(...)`);
}

/**
 * A record layout: its size, alignment, member offsets and codec. Made by
 * struct() and array(); decodes to T.
 */
export class Layout<T> {
  /** @internal */
  readonly node: Node;
  #codec: Codec<T> | undefined;
  #btf: Btf | undefined;
  #id = 0;

  /** @internal Use struct() or array(). */
  constructor(node: Node) {
    this.node = node;
  }

  /** Bytes a whole record takes (a flexible last array counts 0). */
  get size(): number { return sizeOf(this.node); }
  get align(): number { return alignOf(this.node); }
  /** The C name: 'struct event', 'u32[4]'. */
  get typeName(): string { return this.codec.typeName; }

  /** Byte offset of each field of a struct layout. */
  get offsets(): Readonly<Record<string, number>> {
    const n = this.node;
    return n.kind === 'struct' ? Object.fromEntries(n.fields.map((f) => [f.name, f.offset])) : {};
  }

  /** The layout as BTF (its own, made on first use) and the type's id there. */
  get btf(): Btf {
    this.#build();
    return this.#btf!;
  }

  get typeId(): number {
    this.#build();
    return this.#id;
  }

  /** The codec: the one a BTF type of this shape gets. */
  get codec(): Codec<T> {
    this.#codec ??= codecFor<T>(this.btf, this.typeId);
    return this.#codec;
  }

  /** Decodes a whole record (at least `size` bytes). */
  decode(bytes: Uint8Array, offset = 0): T {
    return this.codec.decode(bytes, offset);
  }

  /** Decodes what a record holds: a trailing array cut to the bytes present. */
  decodeRecord(bytes: Uint8Array): T {
    return this.codec.decodeRecord(bytes);
  }

  /** The value as bytes laid out as in C (padding zeroed). */
  encode(value: T): Buffer {
    return this.codec.encode(value);
  }

  #build(): void {
    if (this.#btf) return;
    const types: BtfType[] = [{ id: 0, kind: 'void', name: '' }];
    const scalarIds = new Map<LayoutScalar, number>();
    // BtfType is a union: spread per member, so its members are checked
    type Draft = BtfType extends infer U ? U extends BtfType ? Omit<U, 'id'> : never : never;
    const add = (t: Draft): number => {
      const id = types.length;
      types.push({ ...t, id } as BtfType);
      return id;
    };
    const scalar = (s: LayoutScalar): number => {
      let id = scalarIds.get(s);
      if (id !== undefined) return id;
      const d = SCALARS[s];
      id = d.kind === 'float'
        ? add({ kind: 'float', name: d.c, size: d.size })
        : add({ kind: 'int', name: d.c, size: d.size, bits: d.size * 8, bitOffset: 0, signed: d.signed, char: d.kind === 'char', bool: d.kind === 'bool' });
      scalarIds.set(s, id);
      return id;
    };
    const emit = (n: Node): number => {
      switch (n.kind) {
        case 'scalar': return scalar(n.scalar);
        case 'array': {
          const elem = emit(n.elem);
          return add({ kind: 'array', name: '', type: elem, indexType: scalar('u32'), nelems: n.count });
        }
        case 'struct': {
          const members: BtfMember[] = n.fields.map((f) => ({ name: f.name, type: emit(f.node), bitOffset: f.offset * 8, bitfieldSize: 0 }));
          return add({ kind: 'struct', name: n.name, size: sizeOf(n), members });
        }
      }
    };
    this.#id = emit(this.node);
    this.#btf = Btf.fromTypes(types);
  }
}

/**
 * A struct layout, laid out as C lays out the same members in this order:
 *
 *   const Event = struct({ pid: 'u32', comm: 'char[16]', args: 'char[7680]' }, { name: 'event' });
 *   type Event = LayoutValue<typeof Event>;   // { pid: number; comm: string; args: string }
 *
 * u8..u32/s8..s32, char, f32/f64 decode to numbers, u64/s64 to bigint,
 * bool to boolean, char[N] to a string (up to the first NUL), other scalar
 * arrays to typed arrays (bool[N] to boolean[]), nested layouts to objects.
 */
export function struct<const F extends Readonly<Record<string, LayoutField>>>(fields: F, opts: StructOptions = {}): Layout<StructValue<F>> {
  if (fields === null || typeof fields !== 'object' || Array.isArray(fields) || fields instanceof Layout) {
    invalidArgType('fields', 'an object of field names and types', fields);
  }
  if (opts === null || typeof opts !== 'object') invalidArgType('opts', 'an object', opts);
  const { name = '', packed = false } = opts;
  if (typeof name !== 'string' || (name !== '' && !/^[A-Za-z_]\w*$/.test(name))) invalidArgValue('opts.name', name, 'must be a C identifier');
  if (typeof packed !== 'boolean') invalidArgType('opts.packed', 'a boolean', packed);
  const entries = Object.entries(fields);
  if (entries.length === 0) invalidArgValue('fields', fields, 'must name at least one field');
  let offset = 0;
  let align = 1;
  const out: { name: string; node: Node; offset: number }[] = [];
  entries.forEach(([fname, spec], i) => {
    const path = `fields.${fname}`;
    if (!/^[A-Za-z_$][\w$]*$/.test(fname)) invalidArgValue('fields', fname, 'field names must be identifiers');
    const node = parseField(path, spec);
    const flexible = (node.kind === 'array' && node.count === 0) || (node.kind === 'struct' && hasFlexibleTail(node));
    if (flexible && i !== entries.length - 1) invalidArgValue(path, spec, 'a flexible array (\'[]\') must be the last field');
    const a = packed ? 1 : alignOf(node);
    offset = Math.ceil(offset / a) * a;
    out.push({ name: fname, node, offset });
    offset += sizeOf(node);
    align = Math.max(align, a);
    if (offset > MAX_SIZE) fail(RangeError, 'ERR_OUT_OF_RANGE', `struct ${name || '(anon)'} would take more than ${MAX_SIZE} bytes`);
  });
  const node = { kind: 'struct' as const, name, packed, fields: out, size: Math.ceil(offset / align) * align, align };
  return new Layout<StructValue<F>>(node);
}

function hasFlexibleTail(n: Node & { kind: 'struct' }): boolean {
  const last = n.fields[n.fields.length - 1]?.node;
  return last !== undefined && last.kind === 'array' && last.count === 0;
}

/** An array layout of `count` elements: array(Point, 4) decodes to Point[] (a field type as for struct()). */
export function array<const F extends LayoutField>(elem: F, count: number): Layout<
  F extends Layout<infer T> ? T[] : F extends LayoutScalar ? ScalarArray<F> : never> {
  const e = parseField('elem', elem);
  if ((e.kind === 'array' && e.count === 0) || (e.kind === 'struct' && hasFlexibleTail(e))) invalidArgValue('elem', elem, 'cannot end in a flexible array');
  if (!Number.isSafeInteger(count) || count < 1 || count * sizeOf(e) > MAX_SIZE) {
    fail(RangeError, 'ERR_OUT_OF_RANGE', `The value of "count" is out of range. It must be an integer from 1 to ${Math.floor(MAX_SIZE / Math.max(1, sizeOf(e)))}. Received ${String(count)}`);
  }
  return new Layout({ kind: 'array', elem: e, count });
}
