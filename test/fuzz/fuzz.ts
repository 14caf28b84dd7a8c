// Fuzzer for BpfObject.fromBuffer() (issue 11: no object a user opens may
// crash the process). It mutates the BPF objects of bpf/ where libbpf reads
// them (the .BTF type records and strings, .BTF.ext, the ELF header and
// section headers, symbols, relocations, instructions; truncations), opens
// each mutant with the public API in a child process, loads some of those
// that open, and closes everything. A child that dies (signal, abort, a
// non-zero exit, or silence for 60 s that happens again when the batch is
// repeated) crashed: its batch is bisected down to the mutant
// that did it, saved as test/fuzz/crashes/<hash>.bpf.o (with a .txt saying
// which mutation). Every rejection must be a BpfError whose message names a
// cause; anything else counts as a bad error.
//
//   node dist/test/fuzz/fuzz.js --seconds 120 --seed 1
//
// Options: --seconds N (default 60), --count N (stop after N mutants),
// --seed S (default: random, printed), --batch N (mutants per child, 200),
// --out DIR (crashes, default test/fuzz/crashes), --load-every K (load
// mutant n where n % K == 0, if it opens and its maps ask the kernel for
// less than 64 MiB; 0: never; default 25), --objects DIR
// (default bpf/), --unguarded (open with the addon directly, without the
// object check: shows what libbpf itself does with the mutants),
// --quiet (no progress lines). Exit status: 0 when no crash and no bad error, 1 otherwise.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = path.join(__dirname, '..', '..', '..');

// ------------------------------------------------------------------ random

/** xorshift128+ on two 32-bit halves: deterministic from a seed string. */
export class Rng {
  #s: Uint32Array;
  constructor(seed: string) {
    const h = createHash('sha256').update(seed).digest();
    this.#s = new Uint32Array([h.readUInt32LE(0) | 1, h.readUInt32LE(4), h.readUInt32LE(8), h.readUInt32LE(12) | 1]);
  }
  u32(): number {
    const s = this.#s;
    let t = s[3]!;
    const x = s[0]!;
    s[3] = s[2]!;
    s[2] = s[1]!;
    s[1] = x;
    t ^= t << 11;
    t ^= t >>> 8;
    s[0] = (t ^ x ^ (x >>> 19)) >>> 0;
    return s[0]!;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return n <= 0 ? 0 : Math.floor((this.u32() / 0x1_0000_0000) * n);
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }
}

// ------------------------------------------------------------ seed layout

interface Field {
  off: number;
  width: 1 | 2 | 4 | 8;
  what: string;
  /** Values worth trying here besides the generic ones. */
  hints?: number[];
}

interface Section {
  index: number;
  name: string;
  type: number;
  flags: bigint;
  offset: number;
  size: number;
  link: number;
  info: number;
  entsize: number;
  hdr: number;
}

/** Where the interesting fields of one seed object are. */
export interface Layout {
  name: string;
  image: Buffer;
  groups: Map<string, Field[]>;
  /** Byte ranges for random byte edits and truncations. */
  ranges: Map<string, [number, number]>;
  loadable: boolean;
}

const KIND_NAMES = ['unkn', 'int', 'ptr', 'array', 'struct', 'union', 'enum', 'fwd', 'typedef', 'volatile', 'const',
  'restrict', 'func', 'func_proto', 'var', 'datasec', 'float', 'decl_tag', 'type_tag', 'enum64'];

function push(groups: Map<string, Field[]>, group: string, f: Field): void {
  const list = groups.get(group);
  if (list) list.push(f);
  else groups.set(group, [f]);
}

function sections(b: Buffer): Section[] {
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shnum = b.readUInt16LE(0x3c);
  const shstrndx = b.readUInt16LE(0x3e);
  const raw: Omit<Section, 'name'>[] = [];
  for (let i = 0; i < shnum; i++) {
    const h = shoff + i * 64;
    raw.push({
      index: i, type: b.readUInt32LE(h + 4), flags: b.readBigUInt64LE(h + 8), offset: Number(b.readBigUInt64LE(h + 24)),
      size: Number(b.readBigUInt64LE(h + 32)), link: b.readUInt32LE(h + 40), info: b.readUInt32LE(h + 44),
      entsize: Number(b.readBigUInt64LE(h + 56)), hdr: h,
    });
  }
  const strs = raw[shstrndx]!;
  return raw.map((s) => {
    const nameOff = b.readUInt32LE(s.hdr);
    const start = strs.offset + nameOff;
    return { ...s, name: b.toString('latin1', start, b.indexOf(0, start)) };
  });
}

export function layout(file: string): Layout {
  const image = readFileSync(file);
  const groups = new Map<string, Field[]>();
  const ranges = new Map<string, [number, number]>();
  const secs = sections(image);
  const shnum = secs.length;

  // ELF header
  push(groups, 'elf-header', { off: 0x28, width: 8, what: 'e_shoff', hints: [image.length, image.length - 64] });
  push(groups, 'elf-header', { off: 0x3a, width: 2, what: 'e_shentsize', hints: [0, 40, 63, 65, 128] });
  push(groups, 'elf-header', { off: 0x3c, width: 2, what: 'e_shnum', hints: [0, 1, shnum - 1, shnum + 1, 0xff00] });
  push(groups, 'elf-header', { off: 0x3e, width: 2, what: 'e_shstrndx', hints: [0, shnum - 1, shnum, 0xffff, 0xff00] });
  push(groups, 'elf-header', { off: 0x10, width: 2, what: 'e_type', hints: [0, 2, 3] });
  push(groups, 'elf-header', { off: 0x12, width: 2, what: 'e_machine', hints: [0, 62] });
  push(groups, 'elf-header', { off: 0x04, width: 1, what: 'EI_CLASS', hints: [0, 1, 3] });
  push(groups, 'elf-header', { off: 0x05, width: 1, what: 'EI_DATA', hints: [0, 2] });
  push(groups, 'elf-header', { off: 0x34, width: 2, what: 'e_ehsize', hints: [0, 32, 0xffff] });

  for (const s of secs) {
    const w = `section ${s.index} (${s.name})`;
    push(groups, 'section-header', { off: s.hdr, width: 4, what: `${w} sh_name` });
    push(groups, 'section-header', { off: s.hdr + 4, width: 4, what: `${w} sh_type`, hints: [0, 1, 2, 3, 8, 9, 0x6fff4c03] });
    push(groups, 'section-header', { off: s.hdr + 8, width: 8, what: `${w} sh_flags`, hints: [0, 2, 3, 4, 6] });
    push(groups, 'section-header', { off: s.hdr + 24, width: 8, what: `${w} sh_offset`, hints: [image.length, image.length - 1] });
    push(groups, 'section-header', { off: s.hdr + 32, width: 8, what: `${w} sh_size`, hints: [0, image.length, s.size + 8, s.size - 8] });
    push(groups, 'section-header', { off: s.hdr + 40, width: 4, what: `${w} sh_link`, hints: [0, shnum, shnum - 1] });
    push(groups, 'section-header', { off: s.hdr + 44, width: 4, what: `${w} sh_info`, hints: [0, shnum, shnum - 1] });
    push(groups, 'section-header', { off: s.hdr + 56, width: 8, what: `${w} sh_entsize`, hints: [0, 8, 16, 24] });
    if (s.type === 8) continue; // NOBITS
    if (s.size > 0) ranges.set(s.name || `#${s.index}`, [s.offset, s.offset + s.size]);

    if (s.type === 2) { // SYMTAB
      for (let i = 0, o = s.offset; o + 24 <= s.offset + s.size; i++, o += 24) {
        const sw = `symbol ${i}`;
        push(groups, 'symbol', { off: o, width: 4, what: `${sw} st_name` });
        push(groups, 'symbol', { off: o + 4, width: 1, what: `${sw} st_info`, hints: [0x10, 0x11, 0x12, 0x20, 0x03, 0x00] });
        push(groups, 'symbol', { off: o + 5, width: 1, what: `${sw} st_other`, hints: [0, 1, 2, 3] });
        push(groups, 'symbol', { off: o + 6, width: 2, what: `${sw} st_shndx`, hints: [0, shnum, shnum - 1, 0xfff1, 0xfff2, 0xffff] });
        push(groups, 'symbol', { off: o + 8, width: 8, what: `${sw} st_value`, hints: [0, 4, 8] });
        push(groups, 'symbol', { off: o + 16, width: 8, what: `${sw} st_size`, hints: [0, 4, 8, 16] });
      }
    } else if (s.type === 9) { // REL
      for (let i = 0, o = s.offset; o + 16 <= s.offset + s.size; i++, o += 16) {
        const rw = `${s.name} relocation ${i}`;
        push(groups, 'relocation', { off: o, width: 8, what: `${rw} r_offset`, hints: [0, 8, 16, s.size] });
        push(groups, 'relocation', { off: o + 8, width: 4, what: `${rw} r_info type`, hints: [0, 1, 2, 3, 10] });
        push(groups, 'relocation', { off: o + 12, width: 4, what: `${rw} r_info symbol`, hints: [0, 1, 2] });
      }
    } else if ((s.flags & 4n) !== 0n && s.type === 1) { // code
      for (let i = 0, o = s.offset; o + 8 <= s.offset + s.size; i++, o += 8) {
        const iw = `${s.name} insn ${i}`;
        push(groups, 'insn', { off: o, width: 1, what: `${iw} code`, hints: [0x18, 0x85, 0x95, 0x05, 0x00] });
        push(groups, 'insn', { off: o + 1, width: 1, what: `${iw} regs`, hints: [0x10, 0x20, 0x40, 0x01] });
        push(groups, 'insn', { off: o + 4, width: 4, what: `${iw} imm`, hints: [0, 1, -1 >>> 0, 8] });
      }
    } else if (s.name === '.BTF') {
      btfFields(image, s.offset, s.size, groups, ranges);
    } else if (s.name === '.BTF.ext') {
      btfExtFields(image, s.offset, s.size, groups);
    } else if (s.name === '.maps' || s.name.startsWith('.rodata') || s.name.startsWith('.data')) {
      for (let o = s.offset; o + 4 <= s.offset + s.size; o += 4) push(groups, 'data', { off: o, width: 4, what: `${s.name}+${o - s.offset}` });
    }
  }
  return { name: path.basename(file), image, groups, ranges, loadable: image.length < 100_000 };
}

function btfFields(b: Buffer, base: number, size: number, groups: Map<string, Field[]>, ranges: Map<string, [number, number]>): void {
  const hdrLen = b.readUInt32LE(base + 4);
  const typeOff = base + hdrLen + b.readUInt32LE(base + 8);
  const typeLen = b.readUInt32LE(base + 12);
  const strOff = base + hdrLen + b.readUInt32LE(base + 16);
  const strLen = b.readUInt32LE(base + 20);
  const end = typeOff + typeLen;
  let count = 1;
  for (let p = typeOff; p < end; count++) p += btfRecordSize(b, p);
  const ids = [0, 1, count - 1, count, count + 1, 0xfffff, 0x100000];
  const strs = [0, 1, strLen - 1, strLen, strLen + 1, 0x7fffffff];
  push(groups, 'btf-header', { off: base + 2, width: 1, what: 'BTF version', hints: [0, 2] });
  push(groups, 'btf-header', { off: base + 3, width: 1, what: 'BTF flags', hints: [1] });
  for (const [i, n] of ['hdr_len', 'type_off', 'type_len', 'str_off', 'str_len'].entries()) {
    push(groups, 'btf-header', { off: base + 4 + 4 * i, width: 4, what: `BTF header ${n}`, hints: [0, 4, 24, typeLen, strLen, size] });
  }
  ranges.set('.BTF strings', [strOff, strOff + strLen]);
  ranges.set('.BTF types', [typeOff, end]);
  let id = 1;
  for (let p = typeOff; p < end; id++) {
    const info = b.readUInt32LE(p + 4);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    const w = `BTF type ${id} (${KIND_NAMES[kind] ?? kind})`;
    push(groups, 'btf-type', { off: p, width: 4, what: `${w} name_off`, hints: strs });
    push(groups, 'btf-type', { off: p + 4, width: 4, what: `${w} info`,
      hints: [info ^ 0x80000000, (info & ~0x1f000000) | (20 << 24), (info & ~0xffff) | (vlen + 1), (info & ~0xffff) | 0xffff,
        (info & 0xffff) | (((kind % 19) + 1) << 24), (info & ~0xffff) | Math.max(0, vlen - 1)].map((v) => v >>> 0) });
    // references to itself and its neighbours make loops
    const near = [id, id - 1, id + 1, id - 2];
    push(groups, 'btf-type', { off: p + 8, width: 4, what: `${w} size/type`, hints: [...ids, ...near, 0x80000000, 0xffffffff] });
    const rec = btfRecordSize(b, p);
    for (let o = 12; o < rec; o += 4) {
      const v = b.readUInt32LE(p + o);
      push(groups, 'btf-type', { off: p + o, width: 4, what: `${w} +${o}`, hints: [...ids, ...near, ...strs, v ^ 0x80000000, 0xffffffff] });
    }
    p += rec;
  }
}

function btfRecordSize(b: Buffer, p: number): number {
  const info = b.readUInt32LE(p + 4);
  const kind = (info >>> 24) & 0x1f;
  const vlen = info & 0xffff;
  switch (kind) {
    case 1: case 14: case 17: return 16;
    case 3: return 24;
    case 4: case 5: case 15: return 12 + 12 * vlen;
    case 6: case 13: return 12 + 8 * vlen;
    case 19: return 12 + 12 * vlen;
    default: return 12;
  }
}

function btfExtFields(b: Buffer, base: number, size: number, groups: Map<string, Field[]>): void {
  const hdrLen = b.readUInt32LE(base + 4);
  push(groups, 'btf-ext', { off: base + 2, width: 1, what: 'BTF.ext version', hints: [0, 2] });
  push(groups, 'btf-ext', { off: base + 3, width: 1, what: 'BTF.ext flags', hints: [1] });
  const names = ['hdr_len', 'func_info_off', 'func_info_len', 'line_info_off', 'line_info_len', 'core_relo_off', 'core_relo_len'];
  for (let i = 0; i < names.length && 4 + 4 * i < hdrLen; i++) {
    push(groups, 'btf-ext', { off: base + 4 + 4 * i, width: 4, what: `BTF.ext ${names[i]}`, hints: [0, 4, 24, 32, size] });
  }
  // the record areas: every u32 of them (record sizes, section name
  // offsets, counts, insn offsets, type ids, string offsets, kinds)
  for (let o = base + hdrLen; o + 4 <= base + size; o += 4) {
    push(groups, 'btf-ext', { off: o, width: 4, what: `BTF.ext +${o - base}`, hints: [0, 1, 8, 0xffff, 0x7fffffff, 0xffffffff] });
  }
}

// ---------------------------------------------------------------- mutation

export interface Mutant {
  seed: string;
  object: string;
  image: Buffer;
  what: string[];
  load: boolean;
}

function readField(b: Buffer, f: Field): bigint {
  switch (f.width) {
    case 1: return BigInt(b.readUInt8(f.off));
    case 2: return BigInt(b.readUInt16LE(f.off));
    case 4: return BigInt(b.readUInt32LE(f.off));
    default: return b.readBigUInt64LE(f.off);
  }
}

function writeField(b: Buffer, f: Field, v: bigint): void {
  const mask = (1n << BigInt(f.width * 8)) - 1n;
  const x = v & mask;
  switch (f.width) {
    case 1: b.writeUInt8(Number(x), f.off); break;
    case 2: b.writeUInt16LE(Number(x), f.off); break;
    case 4: b.writeUInt32LE(Number(x), f.off); break;
    default: b.writeBigUInt64LE(x, f.off);
  }
}

function newValue(rng: Rng, f: Field, old: bigint): bigint {
  const bits = f.width * 8;
  const r = rng.int(10);
  if (r < 3) return old ^ (1n << BigInt(rng.int(bits)));
  if (r < 5 && f.hints?.length) return BigInt.asUintN(bits, BigInt(rng.pick(f.hints)));
  if (r < 7) return old + BigInt(rng.int(33) - 16);
  if (r < 8) return BigInt(rng.pick([0, 1, 2, 4, 8, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff]));
  if (r < 9) return (1n << BigInt(bits - 1)) - BigInt(rng.int(2)); // 0x7f.. or 0x80..
  return BigInt(rng.u32()) | (bits > 32 ? BigInt(rng.u32()) << 32n : 0n);
}

const GROUP_WEIGHTS: [string, number][] = [
  ['btf-type', 34], ['btf-header', 4], ['btf-strings', 5], ['btf-ext', 10], ['section-header', 12], ['elf-header', 3],
  ['symbol', 10], ['relocation', 7], ['insn', 5], ['data', 3], ['truncate', 3], ['bytes', 4],
];

function mutateOnce(rng: Rng, lay: Layout, b: Buffer): [Buffer, string] {
  for (;;) {
    let total = 0;
    for (const [, w] of GROUP_WEIGHTS) total += w;
    let x = rng.int(total);
    let group = GROUP_WEIGHTS[0]![0];
    for (const [g, w] of GROUP_WEIGHTS) {
      if (x < w) { group = g; break; }
      x -= w;
    }
    if (group === 'truncate') {
      const cut = rng.chance(0.5) ? rng.int(b.length) : b.length - 1 - rng.int(Math.min(256, b.length - 1));
      return [Buffer.from(b.subarray(0, cut)), `truncated to ${cut} bytes`];
    }
    if (group === 'bytes' || group === 'btf-strings') {
      const names = group === 'btf-strings' ? ['.BTF strings'] : [...lay.ranges.keys()];
      const name = rng.pick(names);
      const range = lay.ranges.get(name);
      if (!range || range[1] <= range[0]) continue;
      const o = range[0] + rng.int(range[1] - range[0]);
      if (o >= b.length) continue;
      const old = b[o]!;
      // NULs, separators, signs and digits matter in names and CO-RE access strings
      const v = rng.chance(0.3) ? rng.pick([0, 0x3a, 0x2d, 0x2b, 0x20, 0x39, 0x30])
        : rng.chance(0.5) ? old ^ (1 << rng.int(8)) : rng.int(256);
      b[o] = v;
      return [b, `${name} byte +${o - range[0]}: 0x${old.toString(16)} -> 0x${v.toString(16)}`];
    }
    const fields = lay.groups.get(group);
    if (!fields?.length) continue;
    const f = rng.pick(fields);
    if (f.off + f.width > b.length) continue;
    const old = readField(b, f);
    const v = newValue(rng, f, old);
    writeField(b, f, v);
    return [b, `${f.what}: 0x${old.toString(16)} -> 0x${readField(b, f).toString(16)}`];
  }
}

/** Mutant number `n` of run `seed`: the same every time. */
export function makeMutant(seed: string, n: number, layouts: Layout[], loadEvery: number): Mutant {
  const s = `${seed}/${n}`;
  const rng = new Rng(s);
  const lay = rng.pick(layouts);
  let b: Buffer = Buffer.from(lay.image);
  const what: string[] = [];
  const count = rng.chance(0.7) ? 1 : rng.chance(0.65) ? 2 : 3 + rng.int(2);
  for (let i = 0; i < count; i++) {
    const [nb, w] = mutateOnce(rng, lay, b);
    b = nb;
    what.push(w);
  }
  return { seed: s, object: lay.name, image: b, what, load: lay.loadable && loadEvery > 0 && n % loadEvery === 0 };
}

// ------------------------------------------------------------------ child

type Outcome = 'opened' | 'loaded' | 'load-failed' | 'rejected' | 'bad';

/**
 * Whether the maps of a mutant ask the kernel for more than we load: a
 * mutated max_entries (a per-CPU array of 2^31 entries) only measures the
 * kernel's allocator, and takes the shared machine's memory while it does.
 */
const MAP_BYTES_LIMIT = 64 << 20;
function tooBig(maps: Iterable<{ type: number | string; keySize: number; valueSize: number; maxEntries: number }>): boolean {
  for (const m of maps) {
    const name = String(m.type);
    const bytes = /ringbuf/.test(name) || m.type === 27 || m.type === 31 ? m.maxEntries
      : (m.keySize + m.valueSize + 64) * m.maxEntries * (/percpu|per_cpu/.test(name) || [5, 6, 10, 21].includes(m.type as number) ? 8 : 1);
    if (bytes > MAP_BYTES_LIMIT) return true;
  }
  return false;
}

function badReason(e: unknown, BpfErrorCtor: new (...a: never[]) => Error): string | undefined {
  if (!(e instanceof BpfErrorCtor)) {
    const name = e instanceof Error ? `${e.constructor.name}${(e as { code?: string }).code ? ` ${(e as { code?: string }).code}` : ''}` : typeof e;
    return `not a BpfError: ${name}: ${e instanceof Error ? e.message : String(e)}`;
  }
  // "op(target) failed: CODE (text)" and nothing after it: no cause given
  if (/ failed: [A-Za-z0-9_]+ \([^()]*\)\s*$/.test(e.message) || e.message.trim() === '') {
    return `BpfError without a cause: ${e.message}`;
  }
  return undefined;
}

async function child(batchFile: string, unguarded: boolean, pinRoot: string): Promise<void> {
  const lib = await import('../../ts/index.js');
  const { addon } = await import('../../ts/internal/addon.js');
  const raw = readFileSync(batchFile);
  const say = (line: string): void => {
    writeSync(1, `${line}\n`);
  };
  let p = 0;
  const n = raw.readUInt32LE(p);
  p += 4;
  for (let i = 0; i < n; i++) {
    const len = raw.readUInt32LE(p);
    const load = raw.readUInt32LE(p + 4) === 1;
    const image = raw.subarray(p + 8, p + 8 + len);
    p += 8 + len;
    say(`S ${i}`);
    let outcome: Outcome = 'rejected';
    let detail = '';
    if (unguarded) {
      type Raw = { load(): void; close(): void; maps(): unknown[]; programs(): unknown[] };
      let o: Raw | undefined;
      try {
        const r = new addon.NativeObject(Buffer.from(image), { pinRoot }) as unknown as Raw;
        o = r;
        const maps = r.maps() as { info(): { type: number; keySize: number; valueSize: number; maxEntries: number } }[];
        r.programs();
        outcome = 'opened';
        if (load && !tooBig(maps.map((m) => m.info()))) {
          try {
            r.load();
            outcome = 'loaded';
          } catch (e) {
            outcome = 'load-failed';
            detail = badReason(e, lib.BpfError) ?? '';
            if (detail) outcome = 'bad';
          }
        }
      } catch (e) {
        detail = badReason(e, lib.BpfError) ?? '';
        if (detail) outcome = 'bad';
      } finally {
        o?.close();
      }
    } else {
      let o: InstanceType<typeof lib.BpfObject> | undefined;
      try {
        o = lib.BpfObject.fromBuffer(image, { pinRoot });
        outcome = 'opened';
        // what a user looks at after open
        for (const m of o.maps.values()) void m.type;
        for (const pr of o.programs.values()) void pr.section;
        if (load && !tooBig(o.maps.values())) {
          try {
            o.load();
            outcome = 'loaded';
          } catch (e) {
            outcome = 'load-failed';
            detail = badReason(e, lib.BpfError) ?? '';
            if (detail) outcome = 'bad';
          }
        }
      } catch (e) {
        detail = badReason(e, lib.BpfError) ?? '';
        if (detail) outcome = 'bad';
      } finally {
        try {
          o?.close();
        } catch (e) {
          outcome = 'bad';
          detail = `close() threw: ${String(e)}`;
        }
      }
    }
    say(`R ${i} ${outcome}${detail ? ` ${JSON.stringify(detail)}` : ''}`);
  }
  say('DONE');
}

// ----------------------------------------------------------------- parent

interface RunResult {
  /** How the child ended: 'ok', or what killed it. */
  status: 'ok' | string;
  outcomes: Map<number, { outcome: Outcome; detail: string }>;
  /** The mutant the child had started and not finished when it died. */
  inFlight: number | undefined;
  stderr: string;
}

function writeBatch(file: string, mutants: Mutant[]): void {
  const parts: Buffer[] = [];
  const head = Buffer.alloc(4);
  head.writeUInt32LE(mutants.length);
  parts.push(head);
  for (const m of mutants) {
    const h = Buffer.alloc(8);
    h.writeUInt32LE(m.image.length, 0);
    h.writeUInt32LE(m.load ? 1 : 0, 4);
    parts.push(h, m.image);
  }
  writeFileSync(file, Buffer.concat(parts));
}

/** A child silent for this long (one mutant) has hung. */
const HANG_MS = 60_000;

function runChild(dir: string, mutants: Mutant[], opts: { unguarded: boolean; pinRoot: string }): Promise<RunResult> {
  const file = path.join(dir, 'batch.bin');
  writeBatch(file, mutants);
  return new Promise((resolve) => {
    const args = [__filename, '--child', file, '--pin-root', opts.pinRoot];
    if (opts.unguarded) args.push('--unguarded');
    const c = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const outcomes = new Map<number, { outcome: Outcome; detail: string }>();
    let inFlight: number | undefined;
    let done = false;
    let buf = '';
    let stderr = '';
    let hung = false;
    let timer = setTimeout(() => { hung = true; c.kill('SIGKILL'); }, HANG_MS);
    c.stdout.setEncoding('utf8');
    c.stdout.on('data', (d: string) => {
      clearTimeout(timer);
      timer = setTimeout(() => { hung = true; c.kill('SIGKILL'); }, HANG_MS);
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = /^([SR]) (\d+)(?: (\S+)(?: (.*))?)?$/.exec(line);
        if (m) {
          const i = Number(m[2]);
          if (m[1] === 'S') inFlight = i;
          else {
            inFlight = undefined;
            outcomes.set(i, { outcome: m[3] as Outcome, detail: m[4] ? JSON.parse(m[4]) as string : '' });
          }
        } else if (line === 'DONE') done = true;
      }
    });
    c.stderr.setEncoding('utf8');
    c.stderr.on('data', (d: string) => { if (stderr.length < 20_000) stderr += d; });
    c.on('close', (code, signal) => {
      clearTimeout(timer);
      const status = hung ? 'hang' : signal ? `signal ${signal}` : code !== 0 ? `exit ${code}` : done ? 'ok' : 'exit 0 before the end';
      resolve({ status, outcomes, inFlight, stderr });
    });
  });
}

function isCrash(r: RunResult): boolean {
  return r.status !== 'ok';
}

/** The mutants of `batch` that crash a child on their own (or the smallest crashing set found). */
async function bisect(dir: string, batch: Mutant[], first: RunResult, opts: { unguarded: boolean; pinRoot: string }): Promise<{ mutants: Mutant[]; status: string }> {
  // The one in flight is the usual culprit.
  if (first.inFlight !== undefined) {
    const alone = await runChild(dir, [batch[first.inFlight]!], opts);
    if (isCrash(alone)) return { mutants: [batch[first.inFlight]!], status: alone.status };
  }
  // Otherwise (a delayed effect: heap damage found later) halve the part
  // up to the crash until one half alone still crashes.
  let set = first.inFlight !== undefined ? batch.slice(0, first.inFlight + 1) : batch;
  let status = first.status;
  while (set.length > 1) {
    const half = set.length >> 1;
    const a = set.slice(0, half);
    const b = set.slice(half);
    const ra = await runChild(dir, a, opts);
    if (isCrash(ra)) { set = a; status = ra.status; continue; }
    const rb = await runChild(dir, b, opts);
    if (isCrash(rb)) { set = b; status = rb.status; continue; }
    break; // needs both halves: keep the set
  }
  return { mutants: set, status };
}

function saveCrash(out: string, ms: Mutant[], status: string, stderr: string): string[] {
  mkdirSync(out, { recursive: true });
  const names: string[] = [];
  for (const m of ms) {
    const hash = createHash('sha256').update(m.image).digest('hex').slice(0, 16);
    writeFileSync(path.join(out, `${hash}.bpf.o`), m.image);
    writeFileSync(path.join(out, `${hash}.txt`),
      `mutant ${m.seed} of ${m.object}: ${status}\n${m.what.map((w) => `  ${w}\n`).join('')}` +
      (ms.length > 1 ? `(crashes together with ${ms.length - 1} other mutant(s) of the same batch)\n` : '') +
      (stderr ? `stderr:\n${stderr.slice(-4000)}\n` : ''));
    names.push(`${hash}.bpf.o`);
  }
  return names;
}

async function parent(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '60' },
      count: { type: 'string' },
      seed: { type: 'string' },
      batch: { type: 'string', default: '200' },
      out: { type: 'string', default: path.join(ROOT, 'test', 'fuzz', 'crashes') },
      'load-every': { type: 'string', default: '25' },
      objects: { type: 'string', default: path.join(ROOT, 'bpf') },
      unguarded: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const seconds = Number(values.seconds);
  const count = values.count !== undefined ? Number(values.count) : Infinity;
  const seed = values.seed ?? createHash('sha256').update(`${Date.now()}-${process.pid}`).digest('hex').slice(0, 8);
  const batchSize = Math.max(1, Number(values.batch));
  const loadEvery = Number(values['load-every']);
  const opts = { unguarded: values.unguarded!, pinRoot: '' };
  if (![seconds, count, batchSize, loadEvery].every((n) => Number.isFinite(n) || n === Infinity)) {
    throw new TypeError('--seconds, --count, --batch and --load-every take numbers');
  }

  const files = readdirSync(values.objects!).filter((f) => f.endsWith('.bpf.o')).sort()
    .map((f) => path.join(values.objects!, f)).filter((f) => statSync(f).isFile());
  const layouts = files.map(layout);
  // progress lines (--quiet drops them); the seed, crashes and bad errors are always printed
  const log = (s: string): void => { if (!values.quiet) console.log(s); };
  const report = (s: string): void => console.log(s);
  const dir = mkdtempSync(path.join(tmpdir(), 'lbn-fuzz-'));
  // maps pinned by name go to a private directory, removed at the end
  opts.pinRoot = path.join('/sys/fs/bpf', `lbn-fuzz-${process.pid}`);
  report(`fuzz: seed ${seed}, ${layouts.length} objects (${layouts.map((l) => l.name).join(' ')}), batch ${batchSize}, ` +
    `${Number.isFinite(count) ? `${count} mutants` : `${seconds} s`}${opts.unguarded ? ', UNGUARDED' : ''}`);

  const deadline = Date.now() + seconds * 1000;
  let n = 0;
  let crashes = 0;
  let stalls = 0;
  let bad = 0;
  let opened = 0;
  let loaded = 0;
  let lastReport = Date.now();
  const badSeen = new Map<string, number>();
  const cleanup = (): void => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(opts.pinRoot, { recursive: true, force: true });
  };
  const interrupted = (sig: NodeJS.Signals): void => {
    cleanup();
    console.log(`fuzz: ${sig} after ${n} objects, ${crashes} crashes, ${bad} bad errors, ${opened} opened, ${loaded} loaded`);
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    while (n < count && (values.count !== undefined || Date.now() < deadline)) {
      const size = Math.min(batchSize, count - n);
      const batch: Mutant[] = [];
      for (let i = 0; i < size; i++) batch.push(makeMutant(seed, n + i, layouts, loadEvery));
      let r = await runChild(dir, batch, opts);
      if (r.status === 'hang') {
        // A child that stops answering may be a loop in libbpf, or a machine
        // so busy (or a kernel so slow to free maps) that a batch stalled: it
        // counts only if the batch stalls again.
        const again = await runChild(dir, batch, opts);
        if (!isCrash(again)) {
          stalls++;
          report(`STALL (not reproduced): a child stopped answering for ${HANG_MS / 1000} s at mutant ${batch[r.inFlight ?? 0]!.seed}; the batch ran through the second time`);
        }
        r = again;
      }
      for (const [i, { outcome, detail }] of r.outcomes) {
        if (outcome === 'opened' || outcome === 'loaded' || outcome === 'load-failed') opened++;
        if (outcome === 'loaded') loaded++;
        if (outcome === 'bad') {
          bad++;
          const key = detail.replace(/\d+/g, 'N').slice(0, 160);
          const seen = badSeen.get(key) ?? 0;
          badSeen.set(key, seen + 1);
          if (seen === 0) {
            const m = batch[i]!;
            report(`BAD ERROR: mutant ${m.seed} of ${m.object} (${m.what.join('; ')}): ${detail}`);
          }
        }
      }
      if (isCrash(r)) {
        const found = await bisect(dir, batch, r, opts);
        crashes++;
        const names = saveCrash(values.out!, found.mutants, found.status, r.stderr);
        const m = found.mutants[0]!;
        report(`CRASH (${found.status}): mutant ${m.seed} of ${m.object}: ${m.what.join('; ')} -> ${names.join(' ')}`);
        // the mutants after the crash did not run: count only what did
        n += r.inFlight !== undefined ? r.inFlight + 1 : r.outcomes.size;
        continue;
      }
      n += size;
      if (Date.now() - lastReport > 30_000) {
        lastReport = Date.now();
        log(`fuzz: ${n} objects so far, ${crashes} crashes, ${bad} bad errors, ${opened} opened, ${loaded} loaded`);
      }
    }
  } finally {
    cleanup();
  }
  if (badSeen.size > 1) report(`bad errors by kind: ${[...badSeen].map(([k, v]) => `${v}x ${k}`).join('\n  ')}`);
  if (stalls > 0) report(`fuzz: ${stalls} batch(es) stalled once and ran through when repeated (not counted as crashes)`);
  console.log(`fuzz: ${n} objects, ${crashes} crashes, ${bad} bad errors, ${opened} opened, ${loaded} loaded`);
  return crashes > 0 || bad > 0 ? 1 : 0;
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    const pinIdx = argv.indexOf('--pin-root');
    void child(argv[1]!, argv.includes('--unguarded'), pinIdx > 0 ? argv[pinIdx + 1]! : '/sys/fs/bpf').then(() => process.exit(0));
  } else {
    parent().then((code) => { process.exitCode = code; }, (e: unknown) => {
      console.error(e);
      process.exitCode = 2;
    });
  }
}
