// A small ELF64 (little-endian) reader for symbolization: the program
// headers (PT_LOAD: file offset -> virtual address), the build id, and the
// function symbols of .symtab (or .dynsym where the file is stripped),
// sorted once for binary search. Only the headers and the symbol and string
// sections are read, at their offsets (fs.readSync): node's binary is
// ~100 MB, of which the symbols are ~10.
import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';

/** A PT_LOAD segment. */
export interface LoadSegment {
  readonly offset: number;
  readonly vaddr: number;
  readonly filesz: number;
  readonly memsz: number;
  readonly executable: boolean;
}

/** A function symbol found for an address. */
export interface ElfSymbol {
  readonly name: string;
  /** Its address in the ELF's own address space. */
  readonly start: number;
  readonly size: number;
}

const SHT_SYMTAB = 2;
const SHT_NOTE = 7;
const SHT_DYNSYM = 11;
const SHF_EXECINSTR = 0x4;
const PT_LOAD = 1;
const PF_X = 1;
const STT_NOTYPE = 0;
const STT_FUNC = 2;
const STT_GNU_IFUNC = 10;
const NT_GNU_BUILD_ID = 3;
// A sanity bound on the sections read whole (symbols and their strings):
// larger is not an ELF we can use (or not an ELF).
const MAX_SECTION = 512 * 1024 * 1024;

interface Section { name: number; type: number; flags: bigint; addr: number; offset: number; size: number; link: number; entsize: number }

function readAt(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, offset + done);
    if (n === 0) break;
    done += n;
  }
  if (done < length) throw new Error(`short read: ${done} of ${length} bytes at offset ${offset}`);
  return buf;
}

/** Why a file could not be used, kept so that frames can say it. */
export class ElfError extends Error {}

/**
 * One ELF file's load segments, build id and function symbols. Reading
 * throws ElfError for files that are not ELF64 little-endian.
 */
export class ElfFile {
  readonly path: string;
  readonly segments: readonly LoadSegment[];
  readonly buildId: string | undefined;
  /** True for ET_DYN (PIE executables, shared objects). */
  readonly dynamic: boolean;
  /** Which table the symbols came from: 'symtab', 'dynsym', a debug file's symtab, or none. */
  symbolSource: 'symtab' | 'dynsym' | 'debuglink' | 'none' = 'none';
  // Symbols sorted by start; names decoded on demand from the string table.
  #starts = new Float64Array(0);
  #sizes = new Float64Array(0);
  #nameOffsets = new Uint32Array(0);
  #strings: Buffer = Buffer.alloc(0);
  readonly #names = new Map<number, string>();

  constructor(path: string, opts: { debugDirs?: readonly string[] } = {}) {
    this.path = path;
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      throw new ElfError(`cannot open ${path}: ${(e as Error).message}`);
    }
    try {
      const fileSize = fstatSync(fd).size;
      if (fileSize < 64) throw new ElfError(`${path}: not an ELF file (${fileSize} bytes)`);
      const eh = readAt(fd, 0, 64);
      if (eh.readUInt32BE(0) !== 0x7f454c46) throw new ElfError(`${path}: not an ELF file`);
      if (eh[4] !== 2 || eh[5] !== 1) throw new ElfError(`${path}: not a 64-bit little-endian ELF file`);
      this.dynamic = eh.readUInt16LE(16) === 3;
      const phoff = Number(eh.readBigUInt64LE(32));
      const shoff = Number(eh.readBigUInt64LE(40));
      const phentsize = eh.readUInt16LE(54);
      const phnum = eh.readUInt16LE(56);
      const shentsize = eh.readUInt16LE(58);
      const shnum = eh.readUInt16LE(60);
      const shstrndx = eh.readUInt16LE(62);

      const segments: LoadSegment[] = [];
      let noteSegments: { offset: number; size: number }[] = [];
      if (phnum > 0 && phentsize >= 56 && phoff + phnum * phentsize <= fileSize) {
        const ph = readAt(fd, phoff, phnum * phentsize);
        for (let i = 0; i < phnum; i++) {
          const o = i * phentsize;
          const type = ph.readUInt32LE(o);
          if (type === PT_LOAD) {
            segments.push({
              offset: Number(ph.readBigUInt64LE(o + 8)), vaddr: Number(ph.readBigUInt64LE(o + 16)),
              filesz: Number(ph.readBigUInt64LE(o + 32)), memsz: Number(ph.readBigUInt64LE(o + 40)),
              executable: (ph.readUInt32LE(o + 4) & PF_X) !== 0,
            });
          } else if (type === 4 /* PT_NOTE */) {
            noteSegments.push({ offset: Number(ph.readBigUInt64LE(o + 8)), size: Number(ph.readBigUInt64LE(o + 32)) });
          }
        }
      }
      this.segments = segments;

      let sections: Section[] = [];
      if (shnum > 0 && shentsize >= 64 && shoff + shnum * shentsize <= fileSize) {
        const sh = readAt(fd, shoff, shnum * shentsize);
        for (let i = 0; i < shnum; i++) {
          const o = i * shentsize;
          sections.push({
            name: sh.readUInt32LE(o), type: sh.readUInt32LE(o + 4), flags: sh.readBigUInt64LE(o + 8),
            addr: Number(sh.readBigUInt64LE(o + 16)), offset: Number(sh.readBigUInt64LE(o + 24)),
            size: Number(sh.readBigUInt64LE(o + 32)), link: sh.readUInt32LE(o + 40), entsize: Number(sh.readBigUInt64LE(o + 56)),
          });
        }
      }
      const sane = (s: Section): boolean => s.size <= MAX_SECTION && s.offset + s.size <= fileSize;
      sections = sections.map((s) => (sane(s) ? s : { ...s, type: 0 }));
      const shstr = sections[shstrndx];
      const names = shstr && shstr.type !== 0 && shstr.type !== 8 ? readAt(fd, shstr.offset, shstr.size) : undefined;
      const nameOf = (s: Section): string => {
        if (!names) return '';
        const end = names.indexOf(0, s.name);
        return names.toString('latin1', s.name, end < 0 ? names.length : end);
      };

      // The build id: the .note.gnu.build-id section, else any PT_NOTE.
      const buildIdNote = sections.find((s) => s.type === SHT_NOTE && nameOf(s) === '.note.gnu.build-id');
      if (buildIdNote) noteSegments = [{ offset: buildIdNote.offset, size: buildIdNote.size }, ...noteSegments];
      let buildId: string | undefined;
      for (const n of noteSegments) {
        if (n.size > 1 << 16 || n.offset + n.size > fileSize) continue;
        buildId = findBuildId(readAt(fd, n.offset, n.size));
        if (buildId) break;
      }
      this.buildId = buildId;

      // Symbols: .symtab, else .dynsym; a stripped file's .symtab may be in
      // a debug file found by build id (/usr/lib/debug/.build-id/ab/cdef.debug).
      const symtab = sections.find((s) => s.type === SHT_SYMTAB);
      const dynsym = sections.find((s) => s.type === SHT_DYNSYM);
      if (symtab && this.#load(fd, sections, symtab)) {
        this.symbolSource = 'symtab';
      } else if (!symtab && buildId && this.#loadDebugFile(buildId, opts.debugDirs ?? ['/usr/lib/debug'])) {
        this.symbolSource = 'debuglink';
      } else if (dynsym && this.#load(fd, sections, dynsym)) {
        this.symbolSource = 'dynsym';
      }
    } finally {
      closeSync(fd);
    }
  }

  #loadDebugFile(buildId: string, dirs: readonly string[]): boolean {
    for (const dir of dirs) {
      const p = `${dir}/.build-id/${buildId.slice(0, 2)}/${buildId.slice(2)}.debug`;
      if (!existsSync(p)) continue;
      try {
        const dbg = new ElfFile(p, { debugDirs: [] });
        if (dbg.symbolSource !== 'symtab' || dbg.buildId !== buildId) continue;
        this.#starts = dbg.#starts;
        this.#sizes = dbg.#sizes;
        this.#nameOffsets = dbg.#nameOffsets;
        this.#strings = dbg.#strings;
        return true;
      } catch {
        // an unreadable debug file: the file's own symbols then
      }
    }
    return false;
  }

  // Reads one symbol table and its strings; keeps function symbols (and
  // untyped ones in executable sections: assembly labels).
  #load(fd: number, sections: readonly Section[], table: Section): boolean {
    const strs = sections[table.link];
    if (!strs || strs.type === 0 || table.entsize !== 24 || table.type === 0) return false;
    const syms = readAt(fd, table.offset, table.size);
    const count = Math.floor(table.size / 24);
    const strings = readAt(fd, strs.offset, strs.size);
    // filled up to n, in typed arrays: node's binary has ~100k symbols
    const starts = new Float64Array(count);
    const sizes = new Float64Array(count);
    const nameOffs = new Uint32Array(count);
    const ranks = new Uint8Array(count);
    const execSection = sections.map((sec) => (sec.flags & BigInt(SHF_EXECINSTR)) !== 0n);
    let n = 0;
    for (let i = 1; i < count; i++) {
      const o = i * 24;
      const info = syms[o + 4]!;
      const type = info & 0xf;
      const shndx = syms.readUInt16LE(o + 6);
      if (shndx === 0 || shndx >= 0xff00) continue; // undefined, absolute, common
      if (!(type === STT_FUNC || type === STT_GNU_IFUNC || (type === STT_NOTYPE && execSection[shndx]))) continue;
      const name = syms.readUInt32LE(o);
      // values past 2^53 are no user-space code
      const value = syms.readUInt32LE(o + 8) + syms.readUInt32LE(o + 12) * 0x1_0000_0000;
      if (value === 0 || name === 0 || name >= strings.length) continue;
      starts[n] = value;
      sizes[n] = syms.readUInt32LE(o + 16) + syms.readUInt32LE(o + 20) * 0x1_0000_0000;
      nameOffs[n] = name;
      let underscores = 0;
      while (strings[name + underscores] === 0x5f && underscores < 8) underscores++;
      ranks[n] = (info >> 4 === 0 ? 0 : 16) + (8 - underscores);
      n++;
    }
    if (n === 0) return false;
    // Sorted by start; among aliases (symbols at one address) the one to
    // show last, where lookup() lands: sized, global, fewest leading '_'
    // (libc's getpid rather than __getpid).
    const order = Uint32Array.from({ length: n }, (_, i) => i).sort((a, b) => starts[a]! - starts[b]! || sizes[a]! - sizes[b]! || ranks[a]! - ranks[b]!);
    this.#starts = Float64Array.from(order, (i) => starts[i]!);
    this.#sizes = Float64Array.from(order, (i) => sizes[i]!);
    this.#nameOffsets = Uint32Array.from(order, (i) => nameOffs[i]!);
    this.#strings = strings;
    return true;
  }

  /** Number of function symbols. */
  get symbolCount(): number { return this.#starts.length; }

  /** The address in the ELF's own address space of a byte at `fileOffset`, if a PT_LOAD maps it. */
  vaddrOf(fileOffset: number): number | undefined {
    for (const s of this.segments) {
      if (fileOffset >= s.offset && fileOffset < s.offset + Math.max(s.filesz, 1)) return fileOffset - s.offset + s.vaddr;
    }
    return undefined;
  }

  #name(i: number): string {
    const off = this.#nameOffsets[i]!;
    let n = this.#names.get(off);
    if (n === undefined) {
      const end = this.#strings.indexOf(0, off);
      n = this.#strings.toString('utf8', off, end < 0 ? this.#strings.length : end);
      this.#names.set(off, n);
    }
    return n;
  }

  /** The function symbol containing `vaddr` (an address in the ELF's space), if any. */
  lookup(vaddr: number): ElfSymbol | undefined {
    const starts = this.#starts;
    let lo = 0;
    let hi = starts.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (starts[mid]! <= vaddr) {
        at = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (at < 0) return undefined;
    // The nearest symbol below; where it is sized and ends before vaddr, a
    // few earlier ones may still contain it (nested or overlapping symbols).
    for (let i = at; i >= 0 && i > at - 16; i--) {
      const start = starts[i]!;
      const size = this.#sizes[i]!;
      if (size === 0 ? i === at && (at + 1 >= starts.length || vaddr < starts[at + 1]!) && vaddr - start < 4096 : vaddr < start + size) {
        return { name: this.#name(i), start, size };
      }
    }
    return undefined;
  }
}

// Walks ELF notes for NT_GNU_BUILD_ID with owner "GNU".
function findBuildId(notes: Buffer): string | undefined {
  let o = 0;
  while (o + 12 <= notes.length) {
    const namesz = notes.readUInt32LE(o);
    const descsz = notes.readUInt32LE(o + 4);
    const type = notes.readUInt32LE(o + 8);
    const nameAt = o + 12;
    const descAt = nameAt + Math.ceil(namesz / 4) * 4;
    const next = descAt + Math.ceil(descsz / 4) * 4;
    if (next > notes.length || namesz > notes.length) return undefined;
    if (type === NT_GNU_BUILD_ID && namesz === 4 && notes.toString('latin1', nameAt, nameAt + 3) === 'GNU') {
      return notes.toString('hex', descAt, descAt + descsz);
    }
    o = next;
  }
  return undefined;
}
