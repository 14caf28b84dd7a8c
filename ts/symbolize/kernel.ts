// Kernel addresses by /proc/kallsyms: text symbols (t, T, w, W) of the
// kernel image, its modules ("name\t[module]") and BPF programs ("[bpf]"),
// read once per process and sorted, then binary search. kallsyms gives
// no sizes: an address belongs to the nearest symbol below it.
import { readFileSync } from 'node:fs';
import { BpfError } from '../errors.js';
import { invalidArgType, invalidState } from '../internal/errors.js';
import { toAddr } from './addr.js';
import { asReturnAddress, type Frame } from './frame.js';
import type { Symbolizer } from './index.js';

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
  // Addresses as two 32-bit halves: BigInt per line would be most of the
  // parse (kallsyms has ~150k lines).
  const lines = text.split('\n');
  const hi = new Uint32Array(lines.length);
  const lo = new Uint32Array(lines.length);
  const names: string[] = [];
  const modules: (string | undefined)[] = [];
  let n = 0;
  let nonZero = false;
  let seen = 0;
  for (const line of lines) {
    // "ffffffff81000000 T _stext" or "ffffffffc0a01000 t foo\t[mod]"
    const sp1 = line.indexOf(' ');
    if (sp1 < 1 || sp1 > 16 || line[sp1 + 2] !== ' ') continue;
    seen++;
    if (!TEXT.has(line[sp1 + 1]!)) continue;
    const h = sp1 > 8 ? parseInt(line.slice(0, sp1 - 8), 16) : 0;
    const l = parseInt(line.slice(Math.max(0, sp1 - 8), sp1), 16);
    if (Number.isNaN(h) || Number.isNaN(l)) continue;
    if (h === 0 && l === 0) continue;
    nonZero = true;
    const rest = line.slice(sp1 + 3);
    const tab = rest.indexOf('\t');
    hi[n] = h;
    lo[n] = l;
    names.push(tab < 0 ? rest : rest.slice(0, tab));
    modules.push(tab < 0 ? undefined : rest.slice(tab + 1).replace(/^\[|\]$/g, ''));
    n++;
  }
  if (seen > 0 && !nonZero) {
    throw new BpfError({ errno: 1, op: 'open', target: path, log: '' },
      `${path} lists every symbol at address 0: the kernel hides kernel addresses from this process ` +
      '(kernel.kptr_restrict, or kernel.perf_event_paranoid > 1 without CAP_SYSLOG); run as root or with CAP_SYSLOG, or lower kernel.kptr_restrict');
  }
  if (n === 0) {
    throw new BpfError({ errno: 61, op: 'open', target: path, log: '' }, `${path} lists no kernel text symbols`);
  }
  // mostly sorted already (the kernel image, then each module): a stable sort is quick
  const order = Uint32Array.from({ length: n }, (_, i) => i).sort((a, b) => hi[a]! - hi[b]! || lo[a]! - lo[b]!);
  const addrs = new BigUint64Array(n);
  order.forEach((i, at) => { addrs[at] = (BigInt(hi[i]!) << 32n) | BigInt(lo[i]!); });
  return { addrs, names: Array.from(order, (i) => names[i]!), modules: Array.from(order, (i) => modules[i]) };
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
    this.#live();
    return this.#resolve(toAddr('addr', addr));
  }

  #resolve(a: bigint): Frame {
    const t = this.#live();
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
    this.#live();
    if (!Array.isArray(addrs)) invalidArgType('addrs', 'an array of addresses', addrs);
    return addrs.map((a, i) => this.#resolve(toAddr(`addrs[${i}]`, a)));
  }

  resolveStack(stack: readonly (bigint | number)[]): Frame[] {
    this.#live();
    if (!Array.isArray(stack)) invalidArgType('stack', 'an array of addresses', stack);
    return stack.map((x, i) => {
      const a = toAddr(`stack[${i}]`, x);
      return i === 0 || a === 0n ? this.#resolve(a) : asReturnAddress(this.#resolve(a - 1n), a);
    });
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

  /** close(), for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
