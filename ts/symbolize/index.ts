// Symbolizer: addresses (from stack maps, bpf_get_stack records, perf
// samples) to names. Symbolizer.kernel() and Symbolizer.process(pid) make
// the two kinds; each is usable alone.
import { KernelSymbolizer, type KernelSymbolizerOptions } from './kernel.js';
import { ProcessSymbolizer, type ProcessSymbolizerOptions } from './process.js';
import type { Symbolizer as SymbolizerShape } from './frame.js';

export { KernelSymbolizer, ProcessSymbolizer };
export type { KernelSymbolizerOptions, ProcessSymbolizerOptions };
export type { ProcessMapping } from './process.js';
export { formatFrame } from './frame.js';
export type { Frame, FrameKind } from './frame.js';

/** What Symbolizer.kernel() and Symbolizer.process() give (see Frame). */
export type Symbolizer = SymbolizerShape;

/**
 * The symbolizers' factories.
 *
 * @example
 * ```ts
 * const ksyms = Symbolizer.kernel();
 * ksyms.resolve(0xffffffff81e00000n); // { addr, kind: 'kernel', name: 'entry_SYSCALL_64', offset: 0n }
 * using usyms = Symbolizer.process(pid);
 * for (const f of usyms.resolveAll(stacks.lookup(id)!)) console.log(formatFrame(f, { offset: true }));
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
