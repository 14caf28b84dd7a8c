// Kernel addresses by /proc/kallsyms: text symbols (t, T, w, W) of the
// kernel image, its modules ("name\t[module]") and BPF programs ("[bpf]"),
// read once per process and sorted, then binary search. kallsyms gives
// no sizes: an address belongs to the nearest symbol below it.
import { readFileSync } from 'node:fs';
import { BpfError } from '../errors.js';
import { invalidState } from '../internal/errors.js';
import { toAddr } from './addr.js';
import type { Frame, Symbolizer } from './frame.js';

/** Options of Symbolizer.kernel(). */
export interface KernelSymbolizerOptions {
  /** The kallsyms file (default '/proc/kallsyms'): another host's copy, for offline symbolization. */
  path?: string;
}

interface Table {
  // sorted by address; BigUint64Array: kernel addresses need all 64 bits
  readonly addrs: BigUint64Array;
  readonly names: readonly string[];
  readonly modules: readonly (string | undefined)[];
}

// One table per file, shared by every KernelSymbolizer of the process:
// kallsyms is ~150k lines, parsed in ~100 ms.
const tables = new Map<string, Table>();
const TEXT = new Set(['t', 'T', 'w', 'W']);
// Past the last symbol (or past a module's last one), how far an address
// still counts as inside it: kallsyms does not say where code ends.
const MAX_TAIL = 0x10000n;

function parse(path: string): Table {
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new BpfError({ errno: -(err.errno ?? -2), op: 'open', target: path, log: `${err.message}\n` });
  }
  const rows: { addr: bigint; name: string; module: string | undefined }[] = [];
  let nonZero = false;
  let seen = 0;
  for (const line of text.split('\n')) {
    // "ffffffff81000000 T _stext" or "ffffffffc0a01000 t foo\t[mod]"
    const sp1 = line.indexOf(' ');
    if (sp1 < 0 || line[sp1 + 2] !== ' ') continue;
    seen++;
    if (!TEXT.has(line[sp1 + 1]!)) continue;
    const addr = BigInt(`0x${line.slice(0, sp1)}`);
    if (addr === 0n) continue;
    nonZero = true;
    const rest = line.slice(sp1 + 3);
    const tab = rest.indexOf('\t');
    const name = tab < 0 ? rest : rest.slice(0, tab);
    const module = tab < 0 ? undefined : rest.slice(tab + 1).replace(/^\[|\]$/g, '');
    rows.push({ addr, name, module });
  }
  if (seen > 0 && !nonZero) {
    throw new BpfError({ errno: 1, op: 'open', target: path, log: '' },
      `${path} lists every symbol at address 0: the kernel hides kernel addresses from this process ` +
      '(kernel.kptr_restrict, or kernel.perf_event_paranoid > 1 without CAP_SYSLOG); run as root or with CAP_SYSLOG, or lower kernel.kptr_restrict');
  }
  if (rows.length === 0) {
    throw new BpfError({ errno: 61, op: 'open', target: path, log: '' }, `${path} lists no kernel text symbols`);
  }
  rows.sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0));
  return {
    addrs: BigUint64Array.from(rows, (r) => r.addr),
    names: rows.map((r) => r.name),
    modules: rows.map((r) => r.module),
  };
}

/**
 * Kernel addresses to symbols by /proc/kallsyms (Symbolizer.kernel()). The
 * table is read once per process and shared; refresh() re-reads it (after
 * modules or BPF programs were loaded). Holds no fds.
 */
export class KernelSymbolizer implements Symbolizer {
  readonly kind = 'kernel' as const;
  readonly #path: string;
  #table: Table | undefined;
  #closed = false;

  /** @internal Use Symbolizer.kernel(). */
  constructor(opts: KernelSymbolizerOptions = {}) {
    this.#path = opts.path ?? '/proc/kallsyms';
    this.#table = tables.get(this.#path);
    if (!this.#table) {
      this.#table = parse(this.#path);
      tables.set(this.#path, this.#table);
    }
  }

  #live(): Table {
    if (this.#closed || !this.#table) invalidState('this kernel symbolizer is closed');
    return this.#table;
  }

  /** Number of text symbols known. */
  get size(): number { return this.#live().addrs.length; }

  resolve(addr: bigint | number): Frame {
    const t = this.#live();
    const a = toAddr('addr', addr);
    const addrs = t.addrs;
    let lo = 0;
    let hi = addrs.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (addrs[mid]! <= a) {
        at = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (at < 0) return { addr: a, kind: 'unknown', mapping: '[kernel]' };
    const offset = a - addrs[at]!;
    const module = t.modules[at];
    // The last symbol of the table, or of a module, has no end: far past it is not it.
    const last = at === addrs.length - 1 || t.modules[at + 1] !== module;
    if (last && offset >= MAX_TAIL) return { addr: a, kind: 'unknown', mapping: '[kernel]' };
    return module === undefined ? { addr: a, kind: 'kernel', name: t.names[at]!, offset } : { addr: a, kind: 'kernel', name: t.names[at]!, offset, module };
  }

  resolveAll(addrs: readonly (bigint | number)[]): Frame[] {
    if (!Array.isArray(addrs)) toAddr('addrs', addrs); // throws the type error
    return addrs.map((a) => this.resolve(a));
  }

  refresh(): void {
    this.#live();
    this.#table = parse(this.#path);
    tables.set(this.#path, this.#table);
  }

  get closed(): boolean { return this.#closed; }

  close(): void {
    this.#closed = true;
    this.#table = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
