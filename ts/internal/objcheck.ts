// A BPF object is checked here before libbpf opens it (issue 11). libbpf
// 1.1 trusts much of what it reads: an out-of-range type id or string
// offset in .BTF, a typedef loop, a relocated ld_imm64 cut off at the end of
// a function, a CO-RE access string with a negative index, or a .kconfig
// extern larger than an int make it read or write out of bounds, loop
// forever or return an error pointer it does not recognise itself (libbpf
// 1.3 added btf_sanity_check(), which covers the .BTF part). Some other
// malformations make it fail without saying why. The rules below are what a
// well-formed object (clang's, bpftool's, the kernel's own BTF) satisfies;
// each failure names the part of the object that breaks one.
//
// What libbpf already rejects safely, with its own message, is left to it:
// a file that is not ELF at all (no magic), and whatever it reports itself
// after these checks (a missing license, an unknown map attribute, ...).

import { readFileSync, statSync } from 'node:fs';
import { BpfError } from '../errors.js';

const ELF_MAGIC = 0x464c457f; // "\x7fELF"
const SHT_PROGBITS = 1;
const SHT_SYMTAB = 2;
const SHT_STRTAB = 3;
const SHT_NOBITS = 8;
const SHT_REL = 9;
const SHF_EXECINSTR = 4n;
const SHN_LORESERVE = 0xff00;
const SHN_ABS = 0xfff1;
const SHN_COMMON = 0xfff2;
const SHN_XINDEX = 0xffff;
const STT_OBJECT = 1;
const STT_FUNC = 2;
const STB_GLOBAL = 1;
const STB_WEAK = 2;
const EM_BPF = 247;
const BPF_LD_IMM64 = 0x18;

const KIND = {
  INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, FWD: 7, TYPEDEF: 8, VOLATILE: 9, CONST: 10,
  RESTRICT: 11, FUNC: 12, FUNC_PROTO: 13, VAR: 14, DATASEC: 15, FLOAT: 16, DECL_TAG: 17, TYPE_TAG: 18, ENUM64: 19,
} as const;
const KIND_NAMES = ['UNKN', 'INT', 'PTR', 'ARRAY', 'STRUCT', 'UNION', 'ENUM', 'FWD', 'TYPEDEF', 'VOLATILE', 'CONST',
  'RESTRICT', 'FUNC', 'FUNC_PROTO', 'VAR', 'DATASEC', 'FLOAT', 'DECL_TAG', 'TYPE_TAG', 'ENUM64'];
/** Kinds that only point at another type (no size of their own). */
const MODIFIER = new Set<number>([KIND.TYPEDEF, KIND.VOLATILE, KIND.CONST, KIND.RESTRICT, KIND.TYPE_TAG]);

const BTF_MAX_TYPE = 0xfffff;
const BTF_MAX_STR_OFFSET = 0x7fffffff;
/** Deeper nesting than this (by value, or through modifiers and pointers) is no C type. */
const MAX_DEPTH = 1024;
const BPF_CORE_SPEC_MAX_LEN = 64;
const BPF_CORE_MAX_KIND = 12; // BPF_CORE_TYPE_MATCHES
const INT_MAX = 0x7fffffff;

class Malformed extends Error {}

function bad(message: string): never {
  throw new Malformed(message);
}

function hex(n: number | bigint): string {
  return `0x${n.toString(16)}`;
}

/** A name from the object, printable and short, for a message. */
function shown(s: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = s.replace(/[\x00-\x1f\x7f-\xff]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return clean.length > 64 ? `${clean.slice(0, 61)}...` : clean;
}

// ------------------------------------------------------------------- BTF

/** The parsed type table of a .BTF section (offsets into `raw`). */
export interface CheckedBtf {
  raw: Buffer;
  /** Number of types, void (0) included. */
  count: number;
  /** Where each type's record starts in `raw` (0 for void). */
  rec: Uint32Array;
  info: Uint32Array;
  strStart: number;
  strLen: number;
}

const kindOf = (b: CheckedBtf, id: number): number => (b.info[id]! >>> 24) & 0x1f;
const vlenOf = (b: CheckedBtf, id: number): number => b.info[id]! & 0xffff;
const kflagOf = (b: CheckedBtf, id: number): boolean => (b.info[id]! >>> 31) === 1;
const sizeOrType = (b: CheckedBtf, id: number): number => (id === 0 ? 0 : b.raw.readUInt32LE(b.rec[id]! + 8));

function str(b: CheckedBtf, off: number): string {
  if (off >= b.strLen) return '';
  const start = b.strStart + off;
  return b.raw.toString('latin1', start, b.raw.indexOf(0, start));
}

function nameOf(b: CheckedBtf, id: number): string {
  return id === 0 ? '' : str(b, b.raw.readUInt32LE(b.rec[id]!));
}

function typeLabel(b: CheckedBtf, id: number): string {
  if (id === 0) return 'BTF type 0 (void)';
  const kind = kindOf(b, id);
  const nameOff = b.raw.readUInt32LE(b.rec[id]!);
  const name = nameOff < b.strLen ? nameOf(b, id) : '';
  return `BTF type ${id} (${KIND_NAMES[kind] ?? `kind ${kind}`}${name ? ` '${shown(name)}'` : ''})`;
}

function recordSize(kind: number, vlen: number): number {
  switch (kind) {
    case KIND.INT: case KIND.VAR: case KIND.DECL_TAG: return 16;
    case KIND.ARRAY: return 24;
    case KIND.STRUCT: case KIND.UNION: case KIND.DATASEC: case KIND.ENUM64: return 12 + 12 * vlen;
    case KIND.ENUM: case KIND.FUNC_PROTO: return 12 + 8 * vlen;
    default: return 12; // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
  }
}

/** The ids a type refers to, with what refers (for messages). */
function references(b: CheckedBtf, id: number): [number, string][] {
  const r = b.rec[id]!;
  const raw = b.raw;
  const kind = kindOf(b, id);
  const vlen = vlenOf(b, id);
  switch (kind) {
    case KIND.PTR: case KIND.TYPEDEF: case KIND.VOLATILE: case KIND.CONST: case KIND.RESTRICT:
    case KIND.TYPE_TAG: case KIND.VAR: case KIND.DECL_TAG: case KIND.FUNC:
      return [[raw.readUInt32LE(r + 8), 'its type']];
    case KIND.ARRAY:
      return [[raw.readUInt32LE(r + 12), 'its element type'], [raw.readUInt32LE(r + 16), 'its index type']];
    case KIND.STRUCT: case KIND.UNION: {
      const out: [number, string][] = [];
      for (let i = 0; i < vlen; i++) out.push([raw.readUInt32LE(r + 12 + 12 * i + 4), `member ${i}`]);
      return out;
    }
    case KIND.FUNC_PROTO: {
      const out: [number, string][] = [[raw.readUInt32LE(r + 8), 'its return type']];
      for (let i = 0; i < vlen; i++) out.push([raw.readUInt32LE(r + 12 + 8 * i + 4), `parameter ${i}`]);
      return out;
    }
    case KIND.DATASEC: {
      const out: [number, string][] = [];
      for (let i = 0; i < vlen; i++) out.push([raw.readUInt32LE(r + 12 + 12 * i), `variable ${i}`]);
      return out;
    }
    default:
      return [];
  }
}

/** The string offsets in a type's record, with what they name. */
function strings(b: CheckedBtf, id: number): [number, string][] {
  const r = b.rec[id]!;
  const raw = b.raw;
  const out: [number, string][] = [[raw.readUInt32LE(r), 'its name']];
  const vlen = vlenOf(b, id);
  switch (kindOf(b, id)) {
    case KIND.STRUCT: case KIND.UNION:
      for (let i = 0; i < vlen; i++) out.push([raw.readUInt32LE(r + 12 + 12 * i), `the name of member ${i}`]);
      break;
    case KIND.ENUM:
      for (let i = 0; i < vlen; i++) out.push([raw.readUInt32LE(r + 12 + 8 * i), `the name of value ${i}`]);
      break;
    case KIND.ENUM64:
      for (let i = 0; i < vlen; i++) out.push([raw.readUInt32LE(r + 12 + 12 * i), `the name of value ${i}`]);
      break;
    case KIND.FUNC_PROTO:
      for (let i = 0; i < vlen; i++) out.push([raw.readUInt32LE(r + 12 + 8 * i), `the name of parameter ${i}`]);
      break;
    default:
  }
  return out;
}

/**
 * Walks the reference graph without the edges out of the kinds in `cut`:
 * a cycle there is a type that contains itself. Also bounds the depth.
 */
function checkAcyclic(b: CheckedBtf, cut: ReadonlySet<number>, what: string): void {
  const n = b.count;
  const state = new Uint8Array(n); // 0 new, 1 on the stack, 2 done
  const depth = new Uint32Array(n);
  const stack: number[] = [];
  const next: number[] = [];
  const edges = (id: number): number[] => (cut.has(kindOf(b, id)) ? [] : references(b, id).map(([t]) => t).filter((t) => t !== 0));
  const lists: number[][] = [];
  for (let root = 1; root < n; root++) {
    if (state[root] !== 0) continue;
    stack.push(root);
    lists.push(edges(root));
    next.push(0);
    state[root] = 1;
    while (stack.length > 0) {
      const top = stack.length - 1;
      const id = stack[top]!;
      const list = lists[top]!;
      if (next[top]! < list.length) {
        const t = list[next[top]!++]!;
        if (state[t] === 1) {
          const loop = stack.slice(stack.indexOf(t)).concat(t);
          bad(`${typeLabel(b, t)}: reference loop ${loop.join(' -> ')} (${what})`);
        }
        if (state[t] === 0) {
          state[t] = 1;
          stack.push(t);
          lists.push(edges(t));
          next.push(0);
        }
        continue;
      }
      let d = 0;
      for (const t of list) d = Math.max(d, depth[t]! + 1);
      if (d > MAX_DEPTH) bad(`${typeLabel(b, id)}: its references nest more than ${MAX_DEPTH} deep`);
      depth[id] = d;
      state[id] = 2;
      stack.pop();
      lists.pop();
      next.pop();
    }
  }
}

/** The type behind typedefs and qualifiers (as libbpf's skip_mods_and_typedefs). */
function skipMods(b: CheckedBtf, id: number): number {
  for (let i = 0; i <= MAX_DEPTH && id !== 0 && MODIFIER.has(kindOf(b, id)); i++) id = sizeOrType(b, id);
  return id;
}

/**
 * The size of a type as libbpf's btf__resolve_size() computes it, or
 * undefined where it has none (void, functions, forward declarations).
 */
export function resolvedSize(b: CheckedBtf, id: number): number | undefined {
  let nelems = 1;
  for (let i = 0; i <= MAX_DEPTH && id !== 0; i++) {
    const kind = kindOf(b, id);
    switch (kind) {
      case KIND.INT: case KIND.STRUCT: case KIND.UNION: case KIND.ENUM: case KIND.ENUM64: case KIND.DATASEC: case KIND.FLOAT:
        return nelems * sizeOrType(b, id);
      case KIND.PTR:
        return nelems * 8;
      case KIND.TYPEDEF: case KIND.VOLATILE: case KIND.CONST: case KIND.RESTRICT: case KIND.VAR: case KIND.DECL_TAG: case KIND.TYPE_TAG:
        id = sizeOrType(b, id);
        break;
      case KIND.ARRAY:
        nelems *= b.raw.readUInt32LE(b.rec[id]! + 20);
        id = b.raw.readUInt32LE(b.rec[id]! + 12);
        break;
      default:
        return undefined;
    }
  }
  return undefined;
}

/**
 * Checks raw BTF (a .BTF section, or a BTF file) the way the kernel and
 * libbpf 1.3+ do, for what libbpf 1.1 relies on without checking.
 */
export function checkBtf(raw: Buffer): CheckedBtf {
  if (raw.length < 24) bad(`BTF header: the BTF data holds ${raw.length} bytes, less than the 24-byte header`);
  const magic = raw.readUInt16LE(0);
  if (magic === 0x9feb) bad('BTF header: big-endian BTF (magic 0x9feb) in a little-endian object');
  if (magic !== 0xeb9f) bad(`BTF header: bad magic ${hex(magic)} (not 0xeb9f)`);
  if (raw[2] !== 1) bad(`BTF header: version ${raw[2]} (only version 1 exists)`);
  if (raw[3] !== 0) bad(`BTF header: flags ${hex(raw[3]!)} (none are defined)`);
  const hdrLen = raw.readUInt32LE(4);
  if (hdrLen < 24 || hdrLen > raw.length) bad(`BTF header: header length ${hdrLen} (the header is 24 bytes, the BTF data ${raw.length})`);
  const typeOff = raw.readUInt32LE(8);
  const typeLen = raw.readUInt32LE(12);
  const strOff = raw.readUInt32LE(16);
  const strLen = raw.readUInt32LE(20);
  const data = raw.length - hdrLen;
  if (typeOff % 4 !== 0) bad(`BTF header: the type section offset ${typeOff} is not a multiple of 4`);
  if (typeOff + typeLen > strOff) {
    bad(`BTF header: the type section (offset ${typeOff}, ${typeLen} bytes) runs into the string section (offset ${strOff})`);
  }
  if (strOff + strLen > data) {
    bad(`BTF header: the string section (offset ${strOff}, ${strLen} bytes) ends beyond the ${data} bytes of BTF data`);
  }
  const strStart = hdrLen + strOff;
  if (strLen === 0) bad('BTF header: the string section is empty (it must at least hold the empty string)');
  if (strLen - 1 > BTF_MAX_STR_OFFSET) bad(`BTF header: the string section holds ${strLen} bytes, more than BTF allows`);
  if (raw[strStart] !== 0) bad('BTF strings: the string section does not start with the empty string');
  if (raw[strStart + strLen - 1] !== 0) bad('BTF strings: the last string is not NUL-terminated');

  // the type records
  const recs: number[] = [0];
  const infos: number[] = [0];
  const typesStart = hdrLen + typeOff;
  const end = typesStart + typeLen;
  let p = typesStart;
  while (p < end) {
    const id = recs.length;
    if (id > BTF_MAX_TYPE) bad(`BTF: more than ${BTF_MAX_TYPE} types`);
    if (p + 12 > end) bad(`BTF type ${id}: the type section ends ${end - p} bytes into its record`);
    const info = raw.readUInt32LE(p + 4);
    const kind = (info >>> 24) & 0x1f;
    if (kind === 0 || kind > KIND.ENUM64) bad(`BTF type ${id}: unknown kind ${kind}`);
    if ((info & 0x60ff0000) !== 0) bad(`BTF type ${id} (${KIND_NAMES[kind]}): unused bits of its info word are set (${hex(info)})`);
    const size = recordSize(kind, info & 0xffff);
    if (p + size > end) {
      bad(`BTF type ${id} (${KIND_NAMES[kind]}): its ${size}-byte record (vlen ${info & 0xffff}) runs past the end of the type section`);
    }
    recs.push(p);
    infos.push(info);
    p += size;
  }
  const b: CheckedBtf = { raw, count: recs.length, rec: Uint32Array.from(recs), info: Uint32Array.from(infos), strStart, strLen };
  const last = b.count - 1;

  // every string offset and type id in range
  for (let id = 1; id < b.count; id++) {
    for (const [off, what] of strings(b, id)) {
      if (off >= strLen) {
        bad(`${typeLabel(b, id)}: ${what} is at string offset ${off}, beyond the ${strLen}-byte string section`);
      }
    }
    for (const [t, what] of references(b, id)) {
      if (t > last) bad(`${typeLabel(b, id)}: ${what} refers to type ${t}, beyond the last type ${last}`);
    }
  }

  // kind by kind
  for (let id = 1; id < b.count; id++) {
    const kind = kindOf(b, id);
    const vlen = vlenOf(b, id);
    const r = b.rec[id]!;
    const label = (): string => typeLabel(b, id);
    switch (kind) {
      case KIND.INT: {
        const size = raw.readUInt32LE(r + 8);
        const enc = raw.readUInt32LE(r + 12);
        const bits = enc & 0xff;
        const offset = (enc >>> 16) & 0xff;
        const encoding = enc >>> 24;
        if (vlen !== 0) bad(`${label()}: vlen ${vlen} (must be 0)`);
        if (![1, 2, 4, 8, 16].includes(size)) bad(`${label()}: size ${size} (an integer has 1, 2, 4, 8 or 16 bytes)`);
        if ((enc & 0xf0000000) !== 0 || offset + bits > 128 || Math.ceil((offset + bits) / 8) > size) {
          bad(`${label()}: encoding ${hex(enc)} does not fit ${size} bytes (${bits} bits at bit ${offset})`);
        }
        if (encoding !== 0 && encoding !== 1 && encoding !== 2 && encoding !== 4) bad(`${label()}: unknown encoding flags ${hex(encoding)}`);
        break;
      }
      case KIND.PTR: case KIND.TYPEDEF: case KIND.VOLATILE: case KIND.CONST: case KIND.RESTRICT:
      case KIND.TYPE_TAG: case KIND.FWD: case KIND.ARRAY:
        if (vlen !== 0) bad(`${label()}: vlen ${vlen} (must be 0)`);
        break;
      case KIND.FLOAT: {
        const size = raw.readUInt32LE(r + 8);
        if (vlen !== 0) bad(`${label()}: vlen ${vlen} (must be 0)`);
        if (![2, 4, 8, 12, 16].includes(size)) bad(`${label()}: size ${size} (a float has 2, 4, 8, 12 or 16 bytes)`);
        break;
      }
      case KIND.ENUM: case KIND.ENUM64: {
        const size = raw.readUInt32LE(r + 8);
        if (![1, 2, 4, 8].includes(size)) bad(`${label()}: size ${size} (an enum has 1, 2, 4 or 8 bytes)`);
        break;
      }
      case KIND.FUNC: {
        if (vlen > 2) bad(`${label()}: linkage ${vlen} (static 0, global 1, extern 2)`);
        if (nameOf(b, id) === '') bad(`${label()}: a function without a name`);
        const proto = raw.readUInt32LE(r + 8);
        if (kindOf(b, proto) !== KIND.FUNC_PROTO || proto === 0) {
          bad(`${label()}: its type ${proto} is ${proto === 0 ? 'void' : KIND_NAMES[kindOf(b, proto)]}, not a FUNC_PROTO`);
        }
        break;
      }
      case KIND.VAR: {
        const linkage = raw.readUInt32LE(r + 12);
        if (vlen !== 0) bad(`${label()}: vlen ${vlen} (must be 0)`);
        if (linkage > 2) bad(`${label()}: linkage ${linkage} (static 0, global 1, extern 2)`);
        if (nameOf(b, id) === '') bad(`${label()}: a variable without a name`);
        break;
      }
      case KIND.DECL_TAG: {
        const idx = raw.readInt32LE(r + 12);
        const target = raw.readUInt32LE(r + 8);
        if (vlen !== 0) bad(`${label()}: vlen ${vlen} (must be 0)`);
        if (idx < -1) bad(`${label()}: component index ${idx}`);
        if (idx >= 0) {
          const tk = kindOf(b, target);
          const holder = tk === KIND.FUNC ? sizeOrType(b, target) : target;
          const hk = kindOf(b, holder);
          if (target === 0 || (hk !== KIND.STRUCT && hk !== KIND.UNION && hk !== KIND.FUNC_PROTO) || idx >= vlenOf(b, holder)) {
            bad(`${label()}: component ${idx} of ${typeLabel(b, target)}, which has no such member or parameter`);
          }
        }
        break;
      }
      case KIND.DATASEC: {
        const secSize = raw.readUInt32LE(r + 8);
        if (nameOf(b, id) === '') bad(`${label()}: a data section without a name`);
        const ksyms = nameOf(b, id) === '.ksyms';
        for (let i = 0; i < vlen; i++) {
          const q = r + 12 + 12 * i;
          const t = raw.readUInt32LE(q);
          const off = raw.readUInt32LE(q + 4);
          const sz = raw.readUInt32LE(q + 8);
          const tk = kindOf(b, t);
          if (t === 0 || (tk !== KIND.VAR && !(tk === KIND.FUNC && ksyms))) {
            bad(`${label()}: variable ${i} is ${typeLabel(b, t)}, not a VAR${ksyms ? ' or FUNC' : ''}`);
          }
          if (off + sz > 0xffffffff || (secSize !== 0 && off + sz > secSize)) {
            bad(`${label()}: variable ${i} (${typeLabel(b, t)}) at offset ${off}, ${sz} bytes, ends beyond the section's ${secSize} bytes`);
          }
        }
        break;
      }
      default:
    }
  }

  // No type contains itself: a loop must go through a struct or union (by
  // name, as C refers to itself) and through a pointer (not by value).
  checkAcyclic(b, new Set([KIND.STRUCT, KIND.UNION]), 'not through a struct or union');
  checkAcyclic(b, new Set([KIND.PTR]), 'not through a pointer: the type contains itself');

  // member offsets, now that sizes resolve
  for (let id = 1; id < b.count; id++) {
    const kind = kindOf(b, id);
    if (kind !== KIND.STRUCT && kind !== KIND.UNION) continue;
    const r = b.rec[id]!;
    const size = raw.readUInt32LE(r + 8);
    const kflag = kflagOf(b, id);
    for (let i = 0; i < vlenOf(b, id); i++) {
      const q = r + 12 + 12 * i;
      const t = raw.readUInt32LE(q + 4);
      const o = raw.readUInt32LE(q + 8);
      const bitfield = kflag ? o >>> 24 : 0;
      const bitOff = kflag ? o & 0xffffff : o;
      // an int member of a struct without kflag may be a bitfield of the
      // int's own bits (the encoding before kflag)
      const m = skipMods(b, t);
      const intBits = !kflag && m !== 0 && kindOf(b, m) === KIND.INT
        ? ((raw.readUInt32LE(b.rec[m]! + 12) >>> 16) & 0xff) + (raw.readUInt32LE(b.rec[m]! + 12) & 0xff) : undefined;
      const bits = bitfield !== 0 ? bitfield : intBits ?? (resolvedSize(b, t) ?? 0) * 8;
      if (bitOff + bits > size * 8) {
        const mname = str(b, raw.readUInt32LE(q));
        bad(`${typeLabel(b, id)}: member ${i}${mname ? ` '${shown(mname)}'` : ''} (type ${t}) at bit ${bitOff}, ${bits} bits, ends beyond the ${size}-byte ${KIND_NAMES[kind]}`);
      }
    }
  }
  return b;
}

// ------------------------------------------------------------------- ELF

interface Shdr {
  index: number;
  name: string;
  type: number;
  flags: bigint;
  offset: number;
  size: number;
  link: number;
  info: number;
  entsize: number;
}

interface Sym {
  index: number;
  name: string;
  info: number;
  shndx: number;
  value: bigint;
  size: bigint;
}

interface Func {
  start: number;
  end: number;
  name: string;
}

interface Elf {
  image: Buffer;
  sections: Shdr[];
  symbols: Sym[];
  /** Functions (STT_FUNC symbols) by section, as libbpf makes programs of them. */
  funcs: Map<number, Func[]>;
  /** The first section of each name (elf_sec_by_name()). */
  byName: Map<string, Shdr>;
  /** The first global or weak object symbol of each name (find_elf_var_sym()). */
  globals: Map<string, Sym>;
  funcIndex: Map<number, FuncIndex>;
}

function sectionLabel(s: Shdr): string {
  return `ELF section ${s.index} ('${shown(s.name)}')`;
}

/** What libbpf leaves alone (ignore_elf_section()). */
function ignored(s: Shdr): boolean {
  if (s.type === SHT_STRTAB || s.type === 0x6fff4c03 /* SHT_LLVM_ADDRSIG */) return true;
  if (s.type === SHT_PROGBITS && s.size === 0 && s.name === '.text') return true;
  if (s.name.startsWith('.debug_')) return true;
  if (s.name.startsWith('.rel')) {
    const target = s.name.slice(4);
    if (target.startsWith('.debug_') || target === '.BTF' || target === '.BTF.ext') return true;
  }
  return false;
}

function cstr(image: Buffer, sec: Shdr, off: number, what: string): string {
  if (off >= sec.size) bad(`${what} is at offset ${off} of the string table ${sectionLabel(sec)}, beyond its ${sec.size} bytes`);
  const start = sec.offset + off;
  const end = image.indexOf(0, start);
  if (end < 0 || end >= sec.offset + sec.size) bad(`${what} (at offset ${off} of ${sectionLabel(sec)}) is not NUL-terminated`);
  return image.toString('latin1', start, end);
}

/** The ELF header and the section headers, checked, with their names. */
function readSections(image: Buffer): Shdr[] {
  if (image.length < 64) bad(`ELF header: the object holds ${image.length} bytes, less than a 64-bit ELF header`);
  if (image[4] !== 2) bad(`ELF header: class ${image[4]}: not a 64-bit ELF object`);
  if (image[5] !== 1) bad(`ELF header: data encoding ${image[5]}: not a little-endian ELF object`);
  const type = image.readUInt16LE(0x10);
  const machine = image.readUInt16LE(0x12);
  if (type !== 1) bad(`ELF header: type ${type}: not a relocatable object (ET_REL)`);
  if (machine !== 0 && machine !== EM_BPF) bad(`ELF header: machine ${machine}: not a BPF object (EM_BPF is 247)`);
  const shoff = image.readBigUInt64LE(0x28);
  const shentsize = image.readUInt16LE(0x3a);
  let shnum = image.readUInt16LE(0x3c);
  let shstrndx = image.readUInt16LE(0x3e);
  if (shoff === 0n) bad('ELF header: no section header table');
  if (shentsize !== 64) bad(`ELF header: section header size ${shentsize} (64 in a 64-bit object)`);
  if (shoff + 64n > BigInt(image.length)) bad(`ELF header: the section header table at ${shoff} is beyond the ${image.length}-byte object`);
  const at = Number(shoff);
  // extended numbering: the counts are in section 0
  if (shnum === 0) {
    const n = image.readBigUInt64LE(at + 32);
    if (n > BigInt(image.length)) bad(`ELF section 0: extended section count ${n} is beyond the object`);
    shnum = Number(n);
  }
  if (shstrndx === SHN_XINDEX) shstrndx = image.readUInt32LE(at + 40);
  if (shnum === 0) bad('ELF header: no sections');
  if (shoff + 64n * BigInt(shnum) > BigInt(image.length)) {
    bad(`ELF header: the table of ${shnum} section headers at offset ${shoff} ends beyond the ${image.length}-byte object`);
  }
  if (shstrndx === 0 || shstrndx >= shnum) bad(`ELF header: the section name string table is section ${shstrndx}, of ${shnum} sections`);

  const sections: Shdr[] = [];
  for (let i = 0; i < shnum; i++) {
    const h = at + 64 * i;
    const type = image.readUInt32LE(h + 4);
    const offset = image.readBigUInt64LE(h + 24);
    const size = image.readBigUInt64LE(h + 32);
    const label = `ELF section ${i}`;
    if (i > 0 && type !== SHT_NOBITS && offset + size > BigInt(image.length)) {
      bad(`${label}: its ${size} bytes at offset ${offset} end beyond the ${image.length}-byte object`);
    }
    if (i > 0 && type === SHT_NOBITS && size > 0xffffffffn) bad(`${label}: ${size} bytes of zeros (more than 4 GiB)`);
    sections.push({
      index: i, name: '', type, flags: image.readBigUInt64LE(h + 8),
      offset: i > 0 && type !== SHT_NOBITS ? Number(offset) : 0, size: i > 0 ? Number(size) : 0,
      link: image.readUInt32LE(h + 40), info: image.readUInt32LE(h + 44), entsize: Number(image.readBigUInt64LE(h + 56)),
    });
  }
  const shstr = sections[shstrndx]!;
  if (shstr.type !== SHT_STRTAB) bad(`ELF header: the section name string table (section ${shstrndx}) is not a string table (type ${shstr.type})`);
  for (let i = 1; i < shnum; i++) {
    const s = sections[i]!;
    s.name = cstr(image, shstr, image.readUInt32LE(at + 64 * i), `ELF section ${i}: its name`);
  }
  return sections;
}

function readElf(image: Buffer): Elf {
  const sections = readSections(image);
  const shnum = sections.length;

  // the symbol table
  const symtabs = sections.filter((s) => s.type === SHT_SYMTAB);
  if (symtabs.length === 0) bad('ELF: no symbol table (a stripped object?)');
  if (symtabs.length > 1) bad(`ELF: ${symtabs.length} symbol tables (sections ${symtabs.map((s) => s.index).join(', ')})`);
  const symtab = symtabs[0]!;
  if (symtab.entsize !== 24) bad(`${sectionLabel(symtab)}: symbol size ${symtab.entsize} (24 in a 64-bit object)`);
  if (symtab.size % 24 !== 0) bad(`${sectionLabel(symtab)}: ${symtab.size} bytes is not a whole number of symbols`);
  if (symtab.link === 0 || symtab.link >= shnum) bad(`${sectionLabel(symtab)}: its string table is section ${symtab.link}, of ${shnum} sections`);
  const strtab = sections[symtab.link]!;
  if (strtab.type !== SHT_STRTAB) bad(`${sectionLabel(symtab)}: its string table ${sectionLabel(strtab)} is not a string table (type ${strtab.type})`);
  const symbols: Sym[] = [];
  for (let i = 0, o = symtab.offset; i < symtab.size / 24; i++, o += 24) {
    const shndx = image.readUInt16LE(o + 6);
    const sym: Sym = {
      index: i, name: cstr(image, strtab, image.readUInt32LE(o), `ELF symbol ${i}: its name`), info: image[o + 4]!, shndx,
      value: image.readBigUInt64LE(o + 8), size: image.readBigUInt64LE(o + 16),
    };
    if (shndx >= shnum && shndx !== SHN_ABS && shndx !== SHN_COMMON) {
      bad(`ELF symbol ${i} ('${shown(sym.name)}'): its section ${shndx >= SHN_LORESERVE ? hex(shndx) : shndx} is ${shndx >= SHN_LORESERVE ? 'a reserved index libbpf does not handle' : `beyond the last section ${shnum - 1}`}`);
    }
    symbols.push(sym);
  }

  // functions, where libbpf makes programs of them (bpf_object__add_programs)
  const funcs = new Map<number, Func[]>();
  for (const sym of symbols) {
    if ((sym.info & 0xf) !== STT_FUNC || sym.shndx === 0 || sym.shndx >= shnum) continue;
    const s = sections[sym.shndx]!;
    if (s.type !== SHT_PROGBITS || (s.flags & SHF_EXECINSTR) === 0n || s.size === 0 || ignored(s)) continue;
    if (sym.value + sym.size > BigInt(s.size)) {
      bad(`ELF symbol ${sym.index} ('${shown(sym.name)}'): function at offset ${sym.value}, ${sym.size} bytes, ends beyond its ${sectionLabel(s)} of ${s.size} bytes`);
    }
    const list = funcs.get(s.index) ?? [];
    list.push({ start: Number(sym.value), end: Number(sym.value + sym.size), name: sym.name });
    funcs.set(s.index, list);
  }
  // what libbpf looks up by name finds the first of a name
  const byName = new Map<string, Shdr>();
  for (const s of sections) if (s.index > 0 && !byName.has(s.name)) byName.set(s.name, s);
  const globals = new Map<string, Sym>();
  for (const sym of symbols) {
    const bind = sym.info >> 4;
    if ((sym.info & 0xf) === STT_OBJECT && (bind === STB_GLOBAL || bind === STB_WEAK) && !globals.has(sym.name)) globals.set(sym.name, sym);
  }
  return { image, sections, symbols, funcs, byName, globals, funcIndex: new Map() };
}

/**
 * An instruction libbpf rewrites (a relocation, a CO-RE record): a 16-byte
 * ld_imm64 there must lie whole inside each function that holds it, as
 * libbpf writes its second half.
 */
function checkInsnRoom(elf: Elf, sec: Shdr, off: number, what: string): void {
  if (sec.type !== SHT_PROGBITS || off % 8 !== 0 || off + 8 > sec.size) return; // libbpf rejects these itself
  const code = elf.image[sec.offset + off]!;
  if (code !== BPF_LD_IMM64) return;
  const f = innermost(elf, sec.index, off);
  if (f && off + 16 > f.end) {
    bad(`${what}: the 16-byte ld_imm64 instruction at offset ${off} of ${sectionLabel(sec)} runs past the end of function '${shown(f.name)}' (offset ${f.end})`);
  }
}

interface FuncIndex {
  /** Where the set of functions covering an offset changes, ascending. */
  bounds: number[];
  /** From bounds[i] up to bounds[i + 1]: the covering function that ends first. */
  first: (Func | undefined)[];
}

/** Of the functions of a section that hold `off`, the one that ends first. */
function innermost(elf: Elf, shndx: number, off: number): Func | undefined {
  let index = elf.funcIndex.get(shndx);
  if (!index) {
    // a sweep over the function boundaries (functions may overlap in a
    // malformed object, and there may be many of them)
    const funcs = (elf.funcs.get(shndx) ?? []).filter((f) => f.end > f.start).sort((a, b) => a.start - b.start);
    const bounds = [...new Set(funcs.flatMap((f) => [f.start, f.end]))].sort((a, b) => a - b);
    const first: (Func | undefined)[] = [];
    const heap: Func[] = [];
    const push = (f: Func): void => {
      heap.push(f);
      for (let i = heap.length - 1; i > 0;) {
        const up = (i - 1) >> 1;
        if (heap[up]!.end <= heap[i]!.end) break;
        [heap[up], heap[i]] = [heap[i]!, heap[up]!];
        i = up;
      }
    };
    const pop = (): void => {
      const last = heap.pop()!;
      if (heap.length === 0) return;
      heap[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && heap[l]!.end < heap[m]!.end) m = l;
        if (r < heap.length && heap[r]!.end < heap[m]!.end) m = r;
        if (m === i) break;
        [heap[m], heap[i]] = [heap[i]!, heap[m]!];
        i = m;
      }
    };
    let next = 0;
    for (const b of bounds) {
      while (next < funcs.length && funcs[next]!.start <= b) push(funcs[next++]!);
      while (heap.length > 0 && heap[0]!.end <= b) pop();
      first.push(heap[0]);
    }
    index = { bounds, first };
    elf.funcIndex.set(shndx, index);
  }
  const { bounds, first } = index;
  let lo = 0;
  let hi = bounds.length - 1;
  if (hi < 0 || off < bounds[0]!) return undefined;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (bounds[mid]! <= off) lo = mid;
    else hi = mid - 1;
  }
  return first[lo];
}

function checkRelocations(elf: Elf): void {
  const { sections, symbols, image } = elf;
  for (const s of sections) {
    if (s.type !== SHT_REL || ignored(s)) continue;
    const label = sectionLabel(s);
    if (s.entsize !== 16) bad(`${label}: relocation size ${s.entsize} (16 in a 64-bit object)`);
    if (s.info === 0 || s.info >= sections.length) bad(`${label}: relocates section ${s.info}, of ${sections.length} sections`);
    if (s.link >= sections.length) bad(`${label}: its symbol table is section ${s.link}, of ${sections.length} sections`);
    if (s.size % 16 !== 0) bad(`${label}: ${s.size} bytes is not a whole number of relocations`);
    const target = sections[s.info]!;
    const code = (target.flags & SHF_EXECINSTR) !== 0n;
    if (!code && s.name !== '.rel.maps' && s.name !== '.rel.struct_ops' && s.name !== '.rel.struct_ops.link') continue;
    for (let i = 0, o = s.offset; i < s.size / 16; i++, o += 16) {
      const offset = image.readBigUInt64LE(o);
      const sym = image.readUInt32LE(o + 12);
      const what = `ELF relocation ${i} of ${label}`;
      if (sym >= symbols.length) bad(`${what}: symbol ${sym}, beyond the last symbol ${symbols.length - 1}`);
      if (code && offset < BigInt(target.size)) checkInsnRoom(elf, target, Number(offset), what);
    }
  }
}

// --------------------------------------------------------------- BTF.ext

function checkBtfExt(elf: Elf, sec: Shdr, btf: CheckedBtf): void {
  const raw = elf.image.subarray(sec.offset, sec.offset + sec.size);
  if (raw.length < 8) bad(`BTF.ext header: the section holds ${raw.length} bytes, less than its header`);
  const magic = raw.readUInt16LE(0);
  if (magic !== 0xeb9f) bad(`BTF.ext header: bad magic ${hex(magic)} (not 0xeb9f)`);
  if (raw[2] !== 1) bad(`BTF.ext header: version ${raw[2]} (only version 1 exists)`);
  if (raw[3] !== 0) bad(`BTF.ext header: flags ${hex(raw[3]!)} (none are defined)`);
  const hdrLen = raw.readUInt32LE(4);
  if (hdrLen < 24 || hdrLen > raw.length) bad(`BTF.ext header: header length ${hdrLen} (at least 24, and the section holds ${raw.length} bytes)`);
  const parts: [string, number, number, number][] = [
    ['func_info', raw.readUInt32LE(8), raw.readUInt32LE(12), 8],
    ['line_info', raw.readUInt32LE(16), raw.readUInt32LE(20), 16],
  ];
  if (hdrLen >= 32) parts.push(['core_relo', raw.readUInt32LE(24), raw.readUInt32LE(28), 16]);
  const last = btf.count - 1;
  for (const [part, off, len, minRec] of parts) {
    if (len === 0) continue;
    const where = `BTF.ext ${part}`;
    if (off % 4 !== 0) bad(`${where}: offset ${off} is not a multiple of 4`);
    const start = hdrLen + off;
    if (start + len > raw.length) bad(`${where}: ${len} bytes at offset ${off} end beyond the ${raw.length}-byte section`);
    if (len < 4) bad(`${where}: no record size`);
    const recSize = raw.readUInt32LE(start);
    if (recSize < minRec || recSize % 4 !== 0) bad(`${where}: record size ${recSize} (at least ${minRec}, a multiple of 4)`);
    if (len === 4) bad(`${where}: no records`);
    let p = start + 4;
    const end = start + len;
    for (let n = 0; p < end; n++) {
      if (p + 8 > end) bad(`${where}: section ${n}: its header runs past the end`);
      const nameOff = raw.readUInt32LE(p);
      const count = raw.readUInt32LE(p + 4);
      if (nameOff >= btf.strLen) bad(`${where}: section ${n}: its name is at string offset ${nameOff}, beyond the ${btf.strLen}-byte string section`);
      const secName = str(btf, nameOff);
      const wsec = `${where} of section '${shown(secName)}'`;
      if (count === 0) bad(`${wsec}: no records`);
      if (p + 8 + count * recSize > end) bad(`${wsec}: ${count} records of ${recSize} bytes run past the end`);
      const code = elf.byName.get(secName);
      p += 8;
      for (let i = 0; i < count; i++, p += recSize) {
        const insnOff = raw.readUInt32LE(p);
        const rec = `${wsec}, record ${i}`;
        if (part === 'func_info') {
          const t = raw.readUInt32LE(p + 4);
          if (t > last) bad(`${rec}: type ${t}, beyond the last type ${last}`);
        } else if (part === 'line_info') {
          const file = raw.readUInt32LE(p + 4);
          const line = raw.readUInt32LE(p + 8);
          if (file >= btf.strLen || line >= btf.strLen) {
            bad(`${rec}: string offset ${file >= btf.strLen ? file : line}, beyond the ${btf.strLen}-byte string section`);
          }
        } else {
          const t = raw.readUInt32LE(p + 4);
          const access = raw.readUInt32LE(p + 8);
          const kind = raw.readUInt32LE(p + 12);
          if (t > last) bad(`${rec}: type ${t}, beyond the last type ${last}`);
          if (kind > BPF_CORE_MAX_KIND) bad(`${rec}: unknown relocation kind ${kind}`);
          if (access >= btf.strLen) bad(`${rec}: its access string is at offset ${access}, beyond the ${btf.strLen}-byte string section`);
          const spec = str(btf, access);
          const parts = spec.split(':');
          if (!/^[0-9]+(:[0-9]+)*$/.test(spec) || parts.length > BPF_CORE_SPEC_MAX_LEN || parts.some((x) => Number(x) > INT_MAX)) {
            bad(`${rec}: access string '${shown(spec)}' is not a list of at most ${BPF_CORE_SPEC_MAX_LEN} indexes like '0:1:2'`);
          }
          if (code && code.type === SHT_PROGBITS) checkInsnRoom(elf, code, insnOff, rec);
        }
      }
    }
  }
}

// ------------------------------------------------------------- ELF + BTF

function checkDataSections(elf: Elf, btf: CheckedBtf): void {
  const raw = btf.raw;
  for (let id = 1; id < btf.count; id++) {
    if (kindOf(btf, id) !== KIND.DATASEC) continue;
    const name = nameOf(btf, id);
    const r = btf.rec[id]!;
    const dsize = raw.readUInt32LE(r + 8);
    const vlen = vlenOf(btf, id);
    if (name === '.kconfig') {
      // libbpf keeps an extern's size, and their offsets in the .kconfig
      // map, in an int (bpf_object__collect_externs)
      let total = 0;
      for (let i = 0; i < vlen; i++) {
        const v = raw.readUInt32LE(r + 12 + 12 * i);
        const size = resolvedSize(btf, sizeOrType(btf, v));
        if (size !== undefined && (size === 0 || size > INT_MAX)) {
          bad(`${typeLabel(btf, v)} in DATASEC '.kconfig': an extern of ${size} bytes (a Kconfig value has 1 to ${INT_MAX})`);
        }
        total += (size ?? 0) + 8;
        if (total > INT_MAX) bad(`DATASEC '.kconfig': its externs add up to more than ${INT_MAX} bytes`);
      }
      continue;
    }
    if (name === '.ksyms') continue;
    // libbpf sizes the section from ELF and places its variables by their
    // symbols when the compiler left that to it (btf_fixup_datasec)
    const sec = elf.byName.get(name);
    const label = typeLabel(btf, id);
    if (dsize === 0 && (!sec || sec.size === 0)) bad(`${label}: no ELF section '${shown(name)}' with data to size it`);
    const secSize = dsize !== 0 ? dsize : sec!.size;
    const structOps = name.startsWith('.struct_ops');
    for (let i = 0; i < vlen; i++) {
      const q = r + 12 + 12 * i;
      const v = raw.readUInt32LE(q);
      const vsize = raw.readUInt32LE(q + 8);
      const linkage = raw.readUInt32LE(btf.rec[v]! + 12);
      let off = BigInt(raw.readUInt32LE(q + 4));
      if (linkage === 1) {
        const vname = nameOf(btf, v);
        const sym = elf.globals.get(vname);
        if (!sym) bad(`${typeLabel(btf, v)} in DATASEC '${shown(name)}': no global ELF symbol '${shown(vname)}' for it`);
        if (dsize === 0) off = sym.value;
      }
      const typeSize = structOps ? resolvedSize(btf, sizeOrType(btf, v)) ?? 0 : 0;
      const need = BigInt(Math.max(vsize, typeSize));
      const limit = sec ? Math.min(secSize, sec.size) : secSize;
      if (off + need > BigInt(limit)) {
        bad(`${typeLabel(btf, v)} in DATASEC '${shown(name)}': at offset ${off}, ${need} bytes, it ends beyond the section's ${limit} bytes`);
      }
    }
  }
}

function checkObject(image: Buffer): void {
  const elf = readElf(image);
  checkRelocations(elf);
  // libbpf takes the last of each (bpf_object__elf_collect)
  const btfSecs = elf.sections.filter((s) => s.index > 0 && s.name === '.BTF' && !ignored(s));
  const extSecs = elf.sections.filter((s) => s.index > 0 && s.name === '.BTF.ext' && !ignored(s));
  for (const s of [...btfSecs, ...extSecs]) {
    if (s.type !== SHT_PROGBITS) bad(`${sectionLabel(s)}: type ${s.type}, not PROGBITS`);
  }
  const btfSec = btfSecs.at(-1);
  const extSec = extSecs.at(-1);
  if (!btfSec) return;
  const btf = checkBtf(image.subarray(btfSec.offset, btfSec.offset + btfSec.size));
  if (extSec) checkBtfExt(elf, extSec, btf);
  checkDataSections(elf, btf);
}

/**
 * What is wrong with a BPF object image, or undefined where nothing is (or
 * where it is no ELF at all, which libbpf says itself).
 */
export function objectProblem(image: Buffer): string | undefined {
  if (image.length === 0) return 'the object is empty';
  if (image.length < 4 || image.readUInt32LE(0) !== ELF_MAGIC) return undefined;
  try {
    checkObject(image);
    return undefined;
  } catch (e) {
    if (e instanceof Malformed) return e.message;
    // a check that read out of bounds: the object is malformed somewhere
    // this validator did not expect; better refused than handed to libbpf
    return `malformed object (${e instanceof Error ? e.message : String(e)})`;
  }
}

/** What is wrong with raw BTF (a btfCustomPath file), or undefined. */
export function btfProblem(raw: Buffer): string | undefined {
  try {
    checkBtf(raw);
    return undefined;
  } catch (e) {
    if (e instanceof Malformed) return e.message;
    return `malformed BTF (${e instanceof Error ? e.message : String(e)})`;
  }
}

// ------------------------------------------------------------ the guard

const LIBBPF_ERRNO__FORMAT = 4001;
/** readFileSync's limit; no BPF object comes near it. */
const MAX_FILE = 2 ** 31 - 1;

/** A regular file's bytes; undefined where libbpf is left to report why it cannot read it. */
function readRegular(path: string, fail: (problem: string) => never): Buffer | undefined {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) return undefined;
    size = st.size;
  } catch {
    return undefined;
  }
  if (size > MAX_FILE) fail(`the file holds ${size} bytes, more than ${MAX_FILE}`);
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}

/** What is wrong with a BTF file as libbpf's btf__parse() reads it (raw BTF, or an ELF file's .BTF). */
function customBtfProblem(raw: Buffer): string | undefined {
  if (raw.length >= 2 && raw.readUInt16LE(0) === 0xeb9f) return btfProblem(raw);
  if (raw.length < 4 || raw.readUInt32LE(0) !== ELF_MAGIC) return undefined;
  try {
    const btf = readSections(raw).filter((s) => s.index > 0 && s.name === '.BTF');
    if (btf.length === 0) return undefined;
    const s = btf[0]!;
    if (s.type === SHT_NOBITS) return `${sectionLabel(s)}: no data (NOBITS)`;
    checkBtf(raw.subarray(s.offset, s.offset + s.size));
    return undefined;
  } catch (e) {
    if (e instanceof Malformed) return e.message;
    return `malformed BTF file (${e instanceof Error ? e.message : String(e)})`;
  }
}

/**
 * Throws a BpfError (LIBBPF_ERRNO__FORMAT, naming the problem) for an
 * object (a path or an image) or a btfCustomPath file that would crash
 * libbpf 1.1, or that libbpf would refuse without saying why.
 */
export function refuseMalformed(src: string | Buffer, opts: { name?: string; btfCustomPath?: string }): void {
  const file = typeof src === 'string';
  const op = file ? 'bpf_object__open_file' : 'bpf_object__open_mem';
  const target = file ? src : opts.name ?? '<buffer>';
  const fail = (problem: string, o = op, t = target): never => {
    throw new BpfError({ errno: LIBBPF_ERRNO__FORMAT, op: o, target: t, log: `${problem}\n` });
  };
  const image = file ? readRegular(src, fail) : src;
  const problem = image && objectProblem(image);
  if (problem !== undefined) fail(problem);
  if (opts.btfCustomPath !== undefined) {
    const path = opts.btfCustomPath;
    const raw = readRegular(path, (p) => fail(p, 'btf__parse', path));
    const p = raw && customBtfProblem(raw);
    if (p !== undefined) fail(p, 'btf__parse', path);
  }
}
