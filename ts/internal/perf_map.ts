// V8's perf map (/tmp/perf-PID.map): one line per code object V8 made,
// "START SIZE name" with START and SIZE in hex without 0x, appended as V8
// compiles (and recompiles: a later line for an address supersedes an
// earlier one, since the garbage collector reuses code space). Read
// incrementally: a refresh reads only what was appended since.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export interface PerfMapEntry {
  readonly start: bigint;
  readonly size: bigint;
  readonly name: string;
}

export class PerfMap {
  readonly path: string;
  #entries: PerfMapEntry[] = [];
  // #entries sorted by start, later lines after earlier ones at one start;
  // rebuilt lazily after a read added lines.
  #sorted: PerfMapEntry[] | undefined;
  #readTo = 0;
  #partial = '';
  /** Why the file could not be read, at the last attempt (undefined: it was). */
  problem: string | undefined;

  // A file last written before this (ms since the epoch) is another
  // process's: pids are reused, and node leaves its perf map behind.
  readonly #notBefore: number;

  constructor(path: string, notBefore = 0) {
    this.path = path;
    this.#notBefore = notBefore;
  }

  get size(): number { return this.#entries.length; }

  /** Reads what was appended since the last read; true if lines were added. */
  update(): boolean {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch (e) {
      this.problem = (e as NodeJS.ErrnoException).code === 'ENOENT'
        ? `no perf map at ${this.path} (run the process with node --perf-basic-prof)` : (e as Error).message;
      return false;
    }
    this.problem = undefined;
    let added = false;
    try {
      const st = fstatSync(fd);
      if (st.mtimeMs < this.#notBefore) {
        this.problem = `${this.path} was last written before the process started: it is an earlier process's (pids are reused); ignored (run node with --perf-basic-prof)`;
        if (this.#entries.length > 0) this.#sorted = undefined;
        this.#entries = [];
        this.#readTo = 0;
        this.#partial = '';
        return false;
      }
      const size = st.size;
      if (size < this.#readTo) { // a new process with the same pid rewrote it
        this.#entries = [];
        this.#readTo = 0;
        this.#partial = '';
        added = true;
      }
      const buf = Buffer.allocUnsafe(1 << 20);
      while (this.#readTo < size) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, size - this.#readTo), this.#readTo);
        if (n === 0) break;
        this.#readTo += n;
        const text = this.#partial + buf.toString('utf8', 0, n);
        const lines = text.split('\n');
        // a line V8 is still writing: kept for the next read
        this.#partial = lines.pop() ?? '';
        for (const line of lines) {
          const e = parseLine(line);
          if (e) {
            this.#entries.push(e);
            added = true;
          }
        }
      }
    } finally {
      closeSync(fd);
    }
    if (added) this.#sorted = undefined;
    return added;
  }

  lookup(addr: bigint): PerfMapEntry | undefined {
    if (!this.#sorted) {
      // stable sort: the order of lines is kept among equal starts
      this.#sorted = [...this.#entries].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    }
    const s = this.#sorted;
    let lo = 0;
    let hi = s.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (s[mid]!.start <= addr) {
        at = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    // The latest entry at the nearest start below; code objects do not nest,
    // but a few entries back may cover it where sizes overlap.
    for (let i = at; i >= 0 && i > at - 8; i--) {
      const e = s[i]!;
      if (addr < e.start + e.size) return e;
    }
    return undefined;
  }
}

function parseLine(line: string): PerfMapEntry | undefined {
  const a = line.indexOf(' ');
  const b = a < 0 ? -1 : line.indexOf(' ', a + 1);
  if (b < 0) return undefined;
  const hex = /^(?:0x)?[0-9a-fA-F]+$/;
  const start = line.slice(0, a);
  const size = line.slice(a + 1, b);
  if (!hex.test(start) || !hex.test(size)) return undefined;
  return { start: BigInt(`0x${start.replace(/^0x/, '')}`), size: BigInt(`0x${size.replace(/^0x/, '')}`), name: line.slice(b + 1).trimEnd() };
}
