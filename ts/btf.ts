// BTF, the kernel's type format: parsed here from its raw form (the
// object's, as libbpf fixed it up, or the kernel's /sys/kernel/btf/vmlinux)
// so that types can be described and turned into codecs in JavaScript.
import { existsSync, readFileSync } from 'node:fs';
import { BpfError } from './errors.js';
import { btfProblem } from './internal/objcheck.js';
import { fail, invalidArgType } from './internal/errors.js';
import { viewOfBytes } from './internal/views.js';

/** BTF kinds by name, as BTF_KIND_* of include/uapi/linux/btf.h: index = kind value (BTF_KIND_INT = 1 ... BTF_KIND_ENUM64 = 19). */
export const BTF_KINDS = [
  'unknown', 'int', 'ptr', 'array', 'struct', 'union', 'enum', 'fwd', 'typedef', 'volatile', 'const',
  'restrict', 'func', 'func_proto', 'var', 'datasec', 'float', 'decl_tag', 'type_tag', 'enum64',
] as const;
/** A BTF kind by name: 'int', 'struct', 'datasec', ... */
export type BtfKind = (typeof BTF_KINDS)[number];

/** A struct or union member (struct btf_member). */
export interface BtfMember {
  name: string;
  type: number;
  /** Offset from the start of the struct, in bits. */
  bitOffset: number;
  /** Width of a bitfield in bits; 0 for an ordinary member. */
  bitfieldSize: number;
}

/** An enumerator (struct btf_enum, or btf_enum64 whose value is a bigint). */
export interface BtfEnumValue {
  name: string;
  value: number | bigint;
}

/** A func_proto parameter (struct btf_param). */
export interface BtfParam {
  name: string;
  type: number;
}

/** A variable of a datasec (struct btf_var_secinfo): its type id, byte offset and size. */
export interface BtfVarInfo {
  type: number;
  offset: number;
  size: number;
}

/**
 * Fields every BTF type has.
 * @inline
 */
interface Base {
  /** The type id (0: void). */
  id: number;
  /** The name ('' for anonymous types). */
  name: string;
}

/** One parsed BTF type: id, name and the fields of its kind (a union discriminated by `kind`; id 0 is 'void'). */
export type BtfType = Base & (
  | { kind: 'void' }
  | { kind: 'int'; size: number; bits: number; bitOffset: number; signed: boolean; char: boolean; bool: boolean }
  | { kind: 'ptr' | 'typedef' | 'volatile' | 'const' | 'restrict' | 'type_tag'; type: number }
  | { kind: 'array'; type: number; indexType: number; nelems: number }
  | { kind: 'struct' | 'union'; size: number; members: BtfMember[] }
  | { kind: 'enum' | 'enum64'; size: number; signed: boolean; values: BtfEnumValue[] }
  | { kind: 'fwd'; union: boolean }
  | { kind: 'func'; type: number; linkage: number }
  | { kind: 'func_proto'; type: number; params: BtfParam[] }
  | { kind: 'var'; type: number; linkage: number }
  | { kind: 'datasec'; size: number; vars: BtfVarInfo[] }
  | { kind: 'float'; size: number }
  | { kind: 'decl_tag'; type: number; componentIdx: number }
  | { kind: 'unknown' }
);

const MODIFIERS = new Set(['typedef', 'volatile', 'const', 'restrict', 'type_tag']);
const TAGGED = new Set(['struct', 'union', 'enum', 'enum64', 'fwd']);

let kernelBtf: Btf | undefined;
const moduleBtfs = new Map<string, Btf>();
// vmlinux's raw BTF, kept once a module's BTF needed it: module BTF refers
// to its strings.
let vmlinuxRaw: Buffer | undefined;
function kernelRaw(): Buffer {
  vmlinuxRaw ??= readFileSync('/sys/kernel/btf/vmlinux');
  return vmlinuxRaw;
}

/**
 * Parsed BTF (the kernel's type format, include/uapi/linux/btf.h), to look
 * up and describe types and to build codecs. Obtained from `obj.btf` and
 * `map.btf` (the object's BTF as libbpf fixed it up, or a pinned map's from
 * the kernel), `Btf.kernel()` (/sys/kernel/btf/vmlinux, parsed once),
 * `Btf.fromFile(path)` (an ELF's .BTF or a raw BTF file) or
 * `Btf.parse(bytes)`. Plain immutable data: no fd, nothing to close; it
 * stays usable after its object is closed. Malformed BTF is a BpfError
 * LIBBPF_ERRNO__FORMAT (op btf__parse); a bad type id a RangeError
 * ERR_OUT_OF_RANGE.
 * @example
 * const btf = Btf.kernel();
 * const t = btf.find('struct task_struct');
 * if (t) console.log(btf.typeName(t.id), btf.sizeof(t.id));
 */
export class Btf {
  readonly #types: BtfType[];
  readonly #byName = new Map<string, BtfType[]>();

  private constructor(types: BtfType[]) {
    this.#types = types;
    for (const t of types) {
      if (!t.name) continue;
      const list = this.#byName.get(t.name);
      if (list) list.push(t);
      else this.#byName.set(t.name, [t]);
    }
  }

  /**
   * Parses raw BTF (a .BTF section, /sys/kernel/btf/vmlinux), or the .BTF
   * section of an ELF image (a types file read into memory).
   */
  static parse(raw: Buffer | Uint8Array): Btf {
    if (!(raw instanceof Uint8Array)) invalidArgType('raw', 'a Buffer', raw);
    // A Buffer of our own over the caller's bytes (even for a Buffer: its
    // own properties, whatever they were made to say, are not read).
    let buf = viewOfBytes(raw);
    if (buf.length >= 4 && buf.readUInt32LE(0) === 0x464c457f) {
      buf = elfBtf(buf, (problem) => {
        throw new BpfError({ errno: 4001, op: 'btf__parse', log: problem },
          `btf__parse failed: LIBBPF_ERRNO__FORMAT (BPF object format invalid): ${problem}`);
      });
    }
    // Malformed BTF (a type that contains itself, ids and offsets out of
    // range) would send the codecs into endless recursion or past their
    // views: refused here, as libbpf's btf__parse() refuses it.
    const problem = btfProblem(buf);
    if (problem !== undefined) {
      throw new BpfError({ errno: 4001, op: 'btf__parse', log: problem },
        `btf__parse failed: LIBBPF_ERRNO__FORMAT (BPF object format invalid): ${problem}`);
    }
    return new Btf(parse(buf));
  }

  /**
   * The BTF of a file: an ELF object's .BTF section (e.g. a header's types
   * compiled once with `clang -g -target bpf -c types.c`), or raw BTF (a
   * /sys/kernel/btf file, `bpftool btf dump ... format raw`). Types there
   * decode records whose type never reached the map's own object:
   * `new RingBuffer(map, { type: 'struct event', btf: Btf.fromFile('types.bpf.o') })`.
   * Malformed BTF is refused as Btf.parse() refuses it.
   */
  static fromFile(path: string): Btf {
    if (typeof path !== 'string') invalidArgType('path', 'of type string', path);
    if (path.length === 0) fail(TypeError, 'ERR_INVALID_ARG_VALUE', 'The argument \'path\' must be a non-empty string');
    let image: Buffer;
    try {
      image = readFileSync(path);
    } catch (e) {
      const errno = -((e as { errno?: number }).errno ?? -5);
      throw new BpfError({ errno: Math.abs(errno), op: 'btf__parse', target: path, log: `${(e as Error).message}\n` });
    }
    const refuse = (problem: string): never => {
      throw new BpfError({ errno: 4001, op: 'btf__parse', target: path, log: `${problem}\n` },
        `btf__parse failed: LIBBPF_ERRNO__FORMAT (BPF object format invalid): ${path}: ${problem}`);
    };
    let raw: Buffer;
    if (image.length >= 2 && image.readUInt16LE(0) === 0xeb9f) raw = image;
    else if (image.length >= 4 && image.readUInt32LE(0) === 0x464c457f) raw = elfBtf(image, refuse);
    else return refuse('neither an ELF file nor raw BTF (no 0x7f ELF or 0xeB9F magic)');
    const problem = btfProblem(raw);
    if (problem !== undefined) refuse(problem);
    return new Btf(parse(raw));
  }

  /** @internal Types made in JavaScript (layouts): ids are their indexes, 0 being void. */
  static fromTypes(types: BtfType[]): Btf {
    return new Btf(types);
  }

  /**
   * The running kernel's BTF (/sys/kernel/btf/vmlinux), parsed once (the
   * kernel checked it). With a module's name, that module's BTF
   * (/sys/kernel/btf/<module>, what btf__load_module_btf reads through the
   * kernel): split BTF on top of vmlinux's, so its types have the ids after
   * vmlinux's and vmlinux's types are found in it too. A module that is not
   * loaded, or was built without BTF, is a BpfError ENOENT saying which;
   * a module built into the kernel gives vmlinux's BTF, where its types are.
   * @example
   * ```ts
   * Btf.kernel('nf_conntrack').find('struct nf_conn');
   * ```
   */
  static kernel(module?: string): Btf {
    if (module === undefined || module === 'vmlinux') {
      kernelBtf ??= new Btf(parse(readFileSync('/sys/kernel/btf/vmlinux')));
      return kernelBtf;
    }
    if (typeof module !== 'string') invalidArgType('module', 'of type string', module);
    if (!/^[\w-]+$/.test(module)) fail(TypeError, 'ERR_INVALID_ARG_VALUE', `The argument 'module' must be a kernel module's name. Received '${module}'`);
    let btf = moduleBtfs.get(module);
    if (btf) return btf;
    const file = `/sys/kernel/btf/${module}`;
    let raw: Buffer;
    try {
      raw = readFileSync(file);
    } catch (e) {
      // /sys/module has built-in modules too (with parameters); only
      // loadable ones have an initstate. A built-in module's types are vmlinux's.
      if (existsSync(`/sys/module/${module}`) && !existsSync(`/sys/module/${module}/initstate`)) return Btf.kernel();
      const loaded = existsSync(`/sys/module/${module}/initstate`);
      const why = loaded
        ? `module '${module}' is loaded but has no BTF (a kernel built without CONFIG_DEBUG_INFO_BTF_MODULES, or a module built out of tree without it)`
        : `module '${module}' is not loaded (modprobe ${module}), or no such module exists`;
      throw new BpfError({ errno: 2, op: 'btf__load_module_btf', target: module, log: `${file}: ${(e as Error).message}\n` },
        `btf__load_module_btf(${module}) failed: ENOENT: ${why}`);
    }
    btf = new Btf(parse(raw, { types: Btf.kernel().#types, raw: kernelRaw() }));
    moduleBtfs.set(module, btf);
    return btf;
  }

  /** Type ids run from 0 (void) to length - 1. */
  get length(): number {
    return this.#types.length;
  }

  /** Every type, in id order (0: void first). */
  types(): IterableIterator<BtfType> {
    return this.#types.values();
  }

  /** The type with this id; a RangeError ERR_OUT_OF_RANGE if there is none. */
  type(id: number): BtfType {
    const t = Number.isInteger(id) ? this.#types[id] : undefined;
    if (!t) fail(RangeError, 'ERR_OUT_OF_RANGE', `no BTF type with id ${String(id)} (there are ${this.#types.length})`);
    return t;
  }

  /**
   * A type by name: 'u32', 'struct event', 'union x', 'enum state' (C's
   * tags), or a bare name with `kind`.
   */
  find(name: string, kind?: BtfKind): BtfType | undefined {
    if (typeof name !== 'string') invalidArgType('name', 'of type string', name);
    const m = /^(struct|union|enum)\s+(\S+)$/.exec(name.trim());
    const bare = m ? m[2]! : name.trim();
    const kinds = m ? (m[1] === 'enum' ? ['enum', 'enum64'] : [m[1]!]) : kind ? [kind] : undefined;
    const list = this.#byName.get(bare) ?? [];
    // a definition wins over a forward declaration
    return list.find((t) => (kinds ? kinds.includes(t.kind) : true) && t.kind !== 'fwd')
      ?? list.find((t) => (kinds ? kinds.includes(t.kind) || t.kind === 'fwd' : true));
  }

  /** The type behind typedefs and qualifiers. */
  resolve(id: number): BtfType {
    let t = this.type(id);
    for (let depth = 0; MODIFIERS.has(t.kind); depth++) {
      if (depth > 64) fail(RangeError, 'ERR_OUT_OF_RANGE', `BTF type ${id}: modifier loop`);
      t = this.type((t as { type: number }).type);
    }
    return t;
  }

  /** The size of a type in bytes. */
  sizeof(id: number): number {
    const t = this.resolve(id);
    switch (t.kind) {
      case 'int': case 'struct': case 'union': case 'enum': case 'enum64': case 'float': case 'datasec':
        return t.size;
      case 'ptr':
        return 8;
      case 'array':
        return t.nelems * this.sizeof(t.type);
      default:
        return fail(TypeError, 'ERR_INVALID_ARG_VALUE', `BTF type ${id} (${t.kind}) has no size`);
    }
  }

  /** A C-like name for a type: 'struct event', 'char[16]', 'u64 *'. */
  typeName(id: number): string {
    const t = this.type(id);
    switch (t.kind) {
      case 'void': return 'void';
      case 'ptr': return `${this.typeName(t.type)} *`;
      case 'array': return `${this.typeName(t.type)}[${t.nelems}]`;
      case 'const': case 'volatile': case 'restrict': return `${t.kind} ${this.typeName(t.type)}`;
      case 'type_tag': return this.typeName(t.type);
      case 'func_proto': return `${this.typeName(t.type)} (*)(${t.params.map((p) => this.typeName(p.type)).join(', ')})`;
      default:
        if (TAGGED.has(t.kind)) return `${t.kind === 'enum64' ? 'enum' : t.kind === 'fwd' ? (t as { union: boolean }).union ? 'union' : 'struct' : t.kind} ${t.name || '(anon)'}`;
        return t.name || `(anon ${t.kind})`;
    }
  }
}

// The .BTF section of a 64-bit little-endian ELF file (any type: a BPF
// object, a vmlinux), every read bounds-checked.
function elfBtf(image: Buffer, refuse: (problem: string) => never): Buffer {
  if (image.length < 64 || image[4] !== 2 || image[5] !== 1) refuse('not a 64-bit little-endian ELF file');
  const shoff = Number(image.readBigUInt64LE(0x28));
  const shentsize = image.readUInt16LE(0x3a);
  let shnum = image.readUInt16LE(0x3c);
  let shstrndx = image.readUInt16LE(0x3e);
  if (shoff === 0 || shentsize !== 64 || shoff + 64 > image.length) refuse('ELF header: no usable section header table');
  if (shnum === 0) shnum = Number(image.readBigUInt64LE(shoff + 32));
  if (shstrndx === 0xffff) shstrndx = image.readUInt32LE(shoff + 40);
  if (shoff + 64 * shnum > image.length || shstrndx >= shnum) refuse('ELF header: the section headers run past the file');
  const sec = (i: number): { type: number; offset: number; size: number; name: number } => {
    const h = shoff + 64 * i;
    const offset = Number(image.readBigUInt64LE(h + 24));
    const size = Number(image.readBigUInt64LE(h + 32));
    return { name: image.readUInt32LE(h), type: image.readUInt32LE(h + 4), offset, size };
  };
  const strtab = sec(shstrndx);
  if (strtab.offset + strtab.size > image.length) refuse('ELF: the section name table runs past the file');
  for (let i = 1; i < shnum; i++) {
    const s = sec(i);
    if (s.name >= strtab.size) continue;
    const start = strtab.offset + s.name;
    const end = image.indexOf(0, start);
    if (end < 0 || end >= strtab.offset + strtab.size || image.toString('latin1', start, end) !== '.BTF') continue;
    if (s.type === 8 /* SHT_NOBITS */ || s.offset + s.size > image.length) refuse(`ELF section ${i} (.BTF) holds no data or runs past the file`);
    return image.subarray(s.offset, s.offset + s.size);
  }
  return refuse('the ELF file has no .BTF section (compile with clang -g -target bpf)');
}

// The BTF wire format (include/uapi/linux/btf.h).
// `base`: the BTF this split BTF (a kernel module's) extends: type ids go
// on after base's, string offsets past base's strings are this one's.
function parse(raw: Buffer, base?: { types: readonly BtfType[]; raw: Buffer }): BtfType[] {
  if (raw.length < 24 || raw.readUInt16LE(0) !== 0xeb9f) {
    fail(TypeError, 'ERR_INVALID_ARG_VALUE', 'not BTF: no 0xeB9F magic (big-endian BTF is not supported)');
  }
  const hdrLen = raw.readUInt32LE(4);
  const typeOff = hdrLen + raw.readUInt32LE(8);
  const typeLen = raw.readUInt32LE(12);
  const strOff = hdrLen + raw.readUInt32LE(16);
  const strLen = raw.readUInt32LE(20);
  if (typeOff + typeLen > raw.length || strOff + strLen > raw.length) {
    fail(RangeError, 'ERR_OUT_OF_RANGE', 'BTF is truncated');
  }
  const baseStrLen = base ? base.raw.readUInt32LE(20) : 0;
  const baseStrOff = base ? base.raw.readUInt32LE(4) + base.raw.readUInt32LE(16) : 0;
  const str = (off: number): string => {
    if (off === 0) return '';
    if (base && off < baseStrLen) {
      const start = baseStrOff + off;
      const end = base.raw.indexOf(0, start);
      return base.raw.toString('latin1', start, end < 0 ? baseStrOff + baseStrLen : end);
    }
    const start = strOff + off - baseStrLen;
    const end = raw.indexOf(0, start);
    return raw.toString('latin1', start, end < 0 || end > strOff + strLen ? strOff + strLen : end);
  };
  const types: BtfType[] = base ? [...base.types] : [{ id: 0, kind: 'void', name: '' }];
  let p = typeOff;
  const end = typeOff + typeLen;
  const u32 = (): number => {
    const v = raw.readUInt32LE(p);
    p += 4;
    return v;
  };
  while (p < end) {
    const id = types.length;
    const name = str(u32());
    const info = u32();
    const sizeOrType = u32();
    const vlen = info & 0xffff;
    const kind = BTF_KINDS[(info >>> 24) & 0x1f] ?? 'unknown';
    const kflag = (info >>> 31) === 1;
    switch (kind) {
      case 'int': {
        const enc = u32();
        const e = enc >>> 24;
        types.push({ id, name, kind, size: sizeOrType, bits: enc & 0xff, bitOffset: (enc >>> 16) & 0xff,
          signed: (e & 1) !== 0, char: (e & 2) !== 0, bool: (e & 4) !== 0 });
        break;
      }
      case 'ptr': case 'typedef': case 'volatile': case 'const': case 'restrict': case 'type_tag':
        types.push({ id, name, kind, type: sizeOrType });
        break;
      case 'array': {
        const type = u32();
        const indexType = u32();
        types.push({ id, name, kind, type, indexType, nelems: u32() });
        break;
      }
      case 'struct': case 'union': {
        const members: BtfMember[] = [];
        for (let i = 0; i < vlen; i++) {
          const mname = str(u32());
          const type = u32();
          const off = u32();
          members.push(kflag
            ? { name: mname, type, bitOffset: off & 0xffffff, bitfieldSize: off >>> 24 }
            : { name: mname, type, bitOffset: off, bitfieldSize: 0 });
        }
        types.push({ id, name, kind, size: sizeOrType, members });
        break;
      }
      case 'enum': {
        const values: BtfEnumValue[] = [];
        for (let i = 0; i < vlen; i++) {
          const vname = str(u32());
          const v = u32();
          values.push({ name: vname, value: kflag ? v | 0 : v });
        }
        types.push({ id, name, kind, size: sizeOrType, signed: kflag, values });
        break;
      }
      case 'enum64': {
        const values: BtfEnumValue[] = [];
        for (let i = 0; i < vlen; i++) {
          const vname = str(u32());
          const lo = BigInt(u32());
          const hi = BigInt(u32());
          const v = (hi << 32n) | lo;
          values.push({ name: vname, value: kflag ? BigInt.asIntN(64, v) : v });
        }
        types.push({ id, name, kind, size: sizeOrType, signed: kflag, values });
        break;
      }
      case 'fwd':
        types.push({ id, name, kind, union: kflag });
        break;
      case 'func':
        types.push({ id, name, kind, type: sizeOrType, linkage: vlen });
        break;
      case 'func_proto': {
        const params: BtfParam[] = [];
        for (let i = 0; i < vlen; i++) params.push({ name: str(u32()), type: u32() });
        types.push({ id, name, kind, type: sizeOrType, params });
        break;
      }
      case 'var':
        types.push({ id, name, kind, type: sizeOrType, linkage: u32() });
        break;
      case 'datasec': {
        const vars: BtfVarInfo[] = [];
        for (let i = 0; i < vlen; i++) vars.push({ type: u32(), offset: u32(), size: u32() });
        types.push({ id, name, kind, size: sizeOrType, vars });
        break;
      }
      case 'float':
        types.push({ id, name, kind, size: sizeOrType });
        break;
      case 'decl_tag':
        types.push({ id, name, kind, type: sizeOrType, componentIdx: raw.readInt32LE((p += 4) - 4) });
        break;
      default:
        fail(TypeError, 'ERR_INVALID_ARG_VALUE', `BTF type ${id}: unknown kind ${(info >>> 24) & 0x1f}`);
    }
  }
  return types;
}
