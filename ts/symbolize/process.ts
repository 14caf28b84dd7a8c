// User-space addresses of one process: its mappings (/proc/PID/maps), the
// function symbols of each mapped ELF file (read lazily, once per file for
// the whole process: cached by device and inode), and V8's perf map for
// code a JavaScript engine compiled at run time.
import { readFileSync, readlinkSync, statSync, type Stats } from 'node:fs';
import { BpfError } from '../errors.js';
import { checkInt, invalidArgType, invalidState } from '../internal/errors.js';
import { ElfError, ElfFile } from '../internal/elf.js';
import { PerfMap } from '../internal/perf_map.js';
import { demangleAll, demangled, isMangled } from '../internal/demangle.js';
import { toAddr } from './addr.js';
import { asReturnAddress, type Frame } from './frame.js';
import type { Symbolizer } from './index.js';

/** Options of Symbolizer.process(). */
export interface ProcessSymbolizerOptions {
  /**
   * V8's perf map: true (default) reads `/tmp/perf-PID.map` as the process
   * sees it (through /proc/PID/root, with its pid in its own namespace);
   * a string is another path; false: none.
   */
  perfMap?: boolean | string;
  /** Demangle C++ names with binutils' c++filt where it is installed (default true); else names stay mangled. */
  demangle?: boolean;
  /** Where debug files are found by build id (`DIR/.build-id/ab/cdef.debug`) for stripped files; default ['/usr/lib/debug']. */
  debugDirs?: readonly string[];
}

/** One line of /proc/PID/maps. */
export interface ProcessMapping {
  readonly start: bigint;
  /** First address past the mapping. */
  readonly end: bigint;
  /** 'r-xp' and the like. */
  readonly perms: string;
  /** Offset in the file of `start`. */
  readonly offset: bigint;
  /** The device (major:minor, hex) and inode of the file; inode 0 for anonymous memory. */
  readonly dev: string;
  readonly inode: number;
  /** The path or name the kernel gives ('' for anonymous memory; '[heap]', '[stack]', '[vdso]', '[anon:name]'), without ' (deleted)'. */
  readonly path: string;
  /** The file was deleted (or replaced) since it was mapped. */
  readonly deleted: boolean;
}

// ELF files by device and inode, shared by every symbolizer of this process
// (the same libc serves every process); an ElfError: why a file is unusable.
const elfCache = new Map<string, ElfFile | ElfError>();
const ELF_CACHE_MAX = 256;
// A process whose maps were re-read after a miss is not re-read for another
// miss before this long (a stack from a freed mapping would re-read each time).
const MAPS_REREAD_MS = 100;

const MAPS_RE = /^([0-9a-f]+)-([0-9a-f]+) (\S+) ([0-9a-f]+) (\S+) (\d+) *(.*)$/;

function parseMaps(text: string): ProcessMapping[] {
  const out: ProcessMapping[] = [];
  for (const line of text.split('\n')) {
    const m = MAPS_RE.exec(line);
    if (!m) continue;
    let path = m[7]!;
    const deleted = path.endsWith(' (deleted)');
    if (deleted) path = path.slice(0, -' (deleted)'.length);
    out.push({
      start: BigInt(`0x${m[1]}`), end: BigInt(`0x${m[2]}`), perms: m[3]!, offset: BigInt(`0x${m[4]}`),
      dev: m[5]!, inode: Number(m[6]), path, deleted,
    });
  }
  return out; // the kernel lists them sorted by address
}

function errnoOf(e: unknown): number {
  return -((e as NodeJS.ErrnoException).errno ?? -5);
}

/**
 * User-space addresses of one process to symbols (Symbolizer.process(pid)):
 * native code by the ELF symbols (.symtab, else .dynsym, else a debug file
 * found by build id) of the file mapped there, with PIE and shared-object
 * load offsets applied; JavaScript by V8's perf map; frames of anything
 * else are 'unknown' and name their mapping.
 *
 * The process's maps are read when the symbolizer is made (so create it
 * while the process lives: frames of a process that has exited still
 * resolve), and again on refresh() or when an address falls outside every
 * mapping. Files are read through /proc/PID/root where the process runs in
 * another mount namespace (a container), and through
 * /proc/PID/map_files where the file on disk is not the one mapped
 * (deleted or replaced). No fd is held between calls.
 *
 * JavaScript frames need the target to write a perf map: start it with
 * `node --perf-basic-prof` (also accepted in NODE_OPTIONS), or
 * `--perf-basic-prof-only-functions`, which leaves out stubs and
 * builtins. `v8.setFlagsFromString('--perf-basic-prof')` in a running
 * node 20 starts no perf map (V8 opens it only at start-up): the flag
 * must be there from the start. Without `--interpreted-frames-native-stack`,
 * functions running in the bytecode interpreter show as V8's
 * `Builtins_InterpreterEntryTrampoline` (a symbol of the node binary), and
 * only optimized (compiled) functions under their own names; with it, each
 * interpreted function gets its own copy of the trampoline, listed in the
 * perf map under the function's name.
 */
export class ProcessSymbolizer implements Symbolizer {
  readonly kind = 'process' as const;
  /** The process, by its pid in this namespace. */
  readonly pid: number;
  readonly #demangle: boolean;
  readonly #debugDirs: readonly string[];
  // How files of the process are reached: '' where it shares our mount
  // namespace (plain paths, which outlive the process), else /proc/PID/root.
  readonly #root: string;
  #maps: ProcessMapping[];
  #mapsReadAt: number;
  #perfMap: PerfMap | undefined;
  // The files of this process's mappings, once found (no key building per frame).
  #elfs = new Map<ProcessMapping, ElfFile | ElfError>();
  #closed = false;

  /** @internal Use Symbolizer.process(pid). */
  constructor(pid: number, opts: ProcessSymbolizerOptions = {}) {
    this.pid = checkInt('pid', pid, 1, 0x3fff_ffff);
    if (opts === null || typeof opts !== 'object') invalidArgType('opts', 'an object', opts);
    const { perfMap = true, demangle = true, debugDirs = ['/usr/lib/debug'] } = opts;
    if (typeof perfMap !== 'boolean' && typeof perfMap !== 'string') invalidArgType('opts.perfMap', 'a boolean or a path', perfMap);
    if (typeof demangle !== 'boolean') invalidArgType('opts.demangle', 'of type boolean', demangle);
    if (!Array.isArray(debugDirs) || !debugDirs.every((d) => typeof d === 'string')) invalidArgType('opts.debugDirs', 'an array of paths', debugDirs);
    this.#demangle = demangle;
    this.#debugDirs = debugDirs;
    this.#maps = this.#readMaps();
    this.#mapsReadAt = Date.now();
    this.#root = sameMountNamespace(this.pid) ? '' : `/proc/${this.pid}/root`;
    if (perfMap !== false) {
      const path = typeof perfMap === 'string' ? perfMap : `${this.#root}/tmp/perf-${namespacePid(this.pid)}.map`;
      this.#perfMap = new PerfMap(path, typeof perfMap === 'string' ? 0 : processStart(this.pid));
      this.#perfMap.update();
    }
  }

  #readMaps(): ProcessMapping[] {
    const path = `/proc/${this.pid}/maps`;
    let text: string;
    try {
      text = readFileSync(path, 'latin1');
    } catch (e) {
      const errno = errnoOf(e);
      if (errno === 2 || errno === 3) {
        throw new BpfError({ errno: 3, op: 'open', target: path, log: `${(e as Error).message}\n` },
          `open(${path}) failed: ESRCH (no such process): process ${this.pid} does not exist`);
      }
      throw new BpfError({ errno, op: 'open', target: path, log: `${(e as Error).message}\n` });
    }
    return parseMaps(text);
  }

  #live(): void {
    if (this.#closed) invalidState(`the symbolizer of process ${this.pid} is closed`);
  }

  /** The process's mappings as last read (sorted by address). */
  mappings(): readonly ProcessMapping[] {
    this.#live();
    return this.#maps;
  }

  /** The perf map's path, and how many entries it had at the last read (undefined without one). */
  get perfMap(): { path: string; entries: number; problem: string | undefined } | undefined {
    const p = this.#perfMap;
    return p && { path: p.path, entries: p.size, problem: p.problem };
  }

  #mappingOf(a: bigint): ProcessMapping | undefined {
    const maps = this.#maps;
    let lo = 0;
    let hi = maps.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const m = maps[mid]!;
      if (a < m.start) hi = mid - 1;
      else if (a >= m.end) lo = mid + 1;
      else return m;
    }
    return undefined;
  }

  // The ELF file mapped at `m`, read once (per device and inode).
  #elf(m: ProcessMapping): ElfFile | ElfError {
    let mine = this.#elfs.get(m);
    if (!mine) {
      mine = this.#sharedElf(m);
      this.#elfs.set(m, mine);
    }
    return mine;
  }

  #sharedElf(m: ProcessMapping): ElfFile | ElfError {
    // The path as the process sees it, where it is still the mapped file;
    // else the mapping itself (root only; works for deleted files).
    const candidates: string[] = [];
    if (!m.deleted) candidates.push(`${this.#root}${m.path}`);
    candidates.push(`/proc/${this.pid}/map_files/${m.start.toString(16)}-${m.end.toString(16)}`);
    for (const p of candidates) {
      let st: Stats;
      try {
        st = statSync(p);
      } catch {
        continue;
      }
      if (st.ino !== m.inode) continue;
      // device and inode name the file; size and mtime tell a file rewritten in place
      const key = `${m.dev}:${m.inode}:${st.size}:${st.mtimeMs}`;
      const hit = elfCache.get(key);
      if (hit) {
        elfCache.delete(key); // most recently used last
        elfCache.set(key, hit);
        return hit;
      }
      let result: ElfFile | ElfError;
      try {
        result = new ElfFile(p, { debugDirs: this.#debugDirs });
      } catch (e) {
        result = e instanceof ElfError ? e : new ElfError((e as Error).message);
      }
      elfCache.set(key, result);
      if (elfCache.size > ELF_CACHE_MAX) elfCache.delete(elfCache.keys().next().value!);
      return result;
    }
    return new ElfError(`${m.path}: the mapped file cannot be read`);
  }

  // A frame with the symbol's name as the file has it (demangled later).
  #frame(a: bigint): Frame {
    let m = this.#mappingOf(a);
    if (!m && Date.now() - this.#mapsReadAt >= MAPS_REREAD_MS) {
      // maps change (dlopen, new JIT regions): once more, while the process lives
      try {
        this.#maps = this.#readMaps();
        this.#elfs = new Map();
      } catch {
        // the process is gone: the maps read before stay
      }
      this.#mapsReadAt = Date.now();
      m = this.#mappingOf(a);
    }
    if (!m) return { addr: a, kind: 'unknown', mapping: '[unmapped]' };
    const mapping = m.path === '' ? '[anon]' : m.path;
    if (m.inode !== 0 && m.path.startsWith('/') && !m.path.startsWith('/memfd:')) {
      const elf = this.#elf(m);
      if (elf instanceof ElfFile) {
        const fileOffset = Number(a - m.start + m.offset);
        const v = elf.vaddrOf(fileOffset);
        const id = elf.buildId ? { buildId: elf.buildId } : {};
        if (v === undefined) return { addr: a, kind: 'unknown', module: m.path, mapping, ...id };
        const sym = elf.lookup(v);
        if (!sym) return { addr: a, kind: 'unknown', module: m.path, mapping, elfAddr: BigInt(v), ...id };
        return { addr: a, kind: 'native', name: sym.name, offset: BigInt(v - sym.start), module: m.path, mapping, elfAddr: BigInt(v), ...id };
      }
      return { addr: a, kind: 'unknown', module: m.path, mapping };
    }
    const pm = this.#perfMap;
    if (pm) {
      // code compiled since the last read is appended: read on a miss
      const e = pm.lookup(a) ?? (pm.update() ? pm.lookup(a) : undefined);
      if (e) return { addr: a, kind: 'js', name: e.name, offset: a - e.start, mapping };
    }
    return { addr: a, kind: 'unknown', mapping };
  }

  #named(f: Frame): Frame {
    if (!this.#demangle || f.kind !== 'native' || f.name === undefined || !isMangled(f.name)) return f;
    const d = demangled(f.name);
    return d === f.name ? f : { ...f, name: d, mangledName: f.name };
  }

  resolve(addr: bigint | number): Frame {
    this.#live();
    return this.#named(this.#frame(toAddr('addr', addr)));
  }

  resolveAll(addrs: readonly (bigint | number)[]): Frame[] {
    this.#live();
    if (!Array.isArray(addrs)) invalidArgType('addrs', 'an array of addresses', addrs);
    const frames = addrs.map((a, i) => this.#frame(toAddr(`addrs[${i}]`, a)));
    if (this.#demangle) demangleAll(frames.filter((f) => f.kind === 'native' && f.name !== undefined).map((f) => f.name!));
    return frames.map((f) => this.#named(f));
  }

  resolveStack(stack: readonly (bigint | number)[]): Frame[] {
    this.#live();
    if (!Array.isArray(stack)) invalidArgType('stack', 'an array of addresses', stack);
    const frames = stack.map((x, i) => {
      const a = toAddr(`stack[${i}]`, x);
      return i === 0 || a === 0n ? this.#frame(a) : asReturnAddress(this.#frame(a - 1n), a);
    });
    if (this.#demangle) demangleAll(frames.filter((f) => f.kind === 'native' && f.name !== undefined).map((f) => f.name!));
    return frames.map((f) => this.#named(f));
  }

  /** Re-reads the maps (while the process lives) and what the perf map gained. */
  refresh(): void {
    this.#live();
    this.#maps = this.#readMaps();
    this.#elfs = new Map();
    this.#mapsReadAt = Date.now();
    this.#perfMap?.update();
  }

  get closed(): boolean { return this.#closed; }

  close(): void {
    this.#closed = true;
    this.#maps = [];
    this.#elfs = new Map();
    this.#perfMap = undefined;
  }

  /** close(), for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

function sameMountNamespace(pid: number): boolean {
  try {
    return readlinkSync(`/proc/${pid}/ns/mnt`) === readlinkSync('/proc/self/ns/mnt');
  } catch {
    return true; // no namespace links (or no access to them): assume ours
  }
}

// The pid the process has in its own pid namespace (the last NSpid), the
// number V8 puts in the perf map's name.
function namespacePid(pid: number): number {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'latin1').split('\n').find((l) => l.startsWith('NSpid:'));
    const last = line?.trim().split(/\s+/).at(-1);
    return last && /^\d+$/.test(last) ? Number(last) : pid;
  } catch {
    return pid;
  }
}

// When the process started (ms since the epoch, to the second: the boot
// time is in seconds), from /proc/stat's btime and the process's start in
// clock ticks (USER_HZ, 100 on Linux); 0 where unknown.
function processStart(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // the fields after "(comm)", which may hold spaces and parentheses
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]); // starttime, field 22
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'latin1'))?.[1]);
    if (!Number.isFinite(ticks) || !Number.isFinite(btime)) return 0;
    // a second of slack: btime is rounded
    return (btime + ticks / 100 - 1) * 1000;
  } catch {
    return 0;
  }
}
