// Symbolizer: addresses (from stack maps, bpf_get_stack records, perf
// samples) to names. Symbolizer.kernel() and Symbolizer.process(pid) make
// the two kinds; each is usable alone.
import { KernelSymbolizer, type KernelSymbolizerOptions } from './kernel.js';
import { ProcessSymbolizer, type ProcessSymbolizerOptions } from './process.js';
import type { Frame } from './frame.js';

export { KernelSymbolizer, ProcessSymbolizer };
export type { KernelSymbolizerOptions, ProcessSymbolizerOptions };
export type { ProcessMapping } from './process.js';
export { formatFrame } from './frame.js';
export type { Frame, FrameKind } from './frame.js';

/**
 * What Symbolizer.kernel() and Symbolizer.process() give: resolve one
 * address or a batch, refresh what changed, close.
 */
export interface Symbolizer {
  /** 'kernel' or 'process'. */
  readonly kind: 'kernel' | 'process';
  /** A frame for `addr` (a bigint; a non-negative safe integer number is accepted too). Never throws for an address it cannot resolve: the frame is 'unknown'. */
  resolve(addr: bigint | number): Frame;
  /** resolve() for each address, in order; cheaper than one by one (C++ names are demangled in one batch). */
  resolveAll(addrs: readonly (bigint | number)[]): Frame[];
  /**
   * A stack, innermost frame first (what stack maps and decodeStack give):
   * like resolveAll(), but the frames after the first are return
   * addresses, so each is looked up at addr - 1 (inside the call
   * instruction): a call that ends its function (to a function that never
   * returns) then still names the caller, not whatever follows it. The
   * frames keep `addr`; `offset` and `elfAddr` are of `addr`.
   */
  resolveStack(stack: readonly (bigint | number)[]): Frame[];
  /** Re-reads what may have changed: kallsyms (modules, BPF programs); a process's maps and perf map. */
  refresh(): void;
  readonly closed: boolean;
  /** Drops the caches this symbolizer holds; idempotent; use after close throws ERR_INVALID_STATE. */
  close(): void;
  /** close(), for `using`. */
  [Symbol.dispose](): void;
}

/**
 * The symbolizers' factories.
 *
 * @example
 * ```ts
 * const ksyms = Symbolizer.kernel();
 * ksyms.resolve(0xffffffff81e00000n); // { addr, kind: 'kernel', name: 'entry_SYSCALL_64', offset: 0n }
 * using usyms = Symbolizer.process(pid);
 * for (const f of usyms.resolveStack(stacks.lookup(id)!)) console.log(formatFrame(f, { offset: true }));
 * ```
 */
export const Symbolizer = {
  /**
   * Kernel addresses by /proc/kallsyms: `{ name, offset, module? }` with
   * kind 'kernel'. Needs a process that sees kernel addresses (root, or
   * CAP_SYSLOG): where kallsyms shows only zeros, a BpfError (EPERM, op
   * 'open') says so. The table is read once per process; refresh() re-reads it.
   */
  kernel(opts?: KernelSymbolizerOptions): KernelSymbolizer {
    return new KernelSymbolizer(opts);
  },
  /**
   * User-space addresses of process `pid` by its mapped ELF files and V8's
   * perf map (see ProcessSymbolizer). A pid that does not exist is a
   * BpfError with code ESRCH (op 'open', target /proc/PID/maps).
   */
  process(pid: number, opts?: ProcessSymbolizerOptions): ProcessSymbolizer {
    return new ProcessSymbolizer(pid, opts);
  },
} as const;
