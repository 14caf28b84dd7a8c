// The shape every symbolizer gives: one frame per address.

/**
 * What an address was found to be: kernel code ('kernel'), a function of an
 * ELF file the process mapped ('native'), code V8 compiled, named by its perf
 * map ('js'), or nothing known ('unknown': `mapping` says where it falls).
 */
export type FrameKind = 'kernel' | 'native' | 'js' | 'unknown';

/**
 * One resolved address. Which fields are set depends on `kind`:
 *
 * | kind | name, offset | module | mapping | elfAddr, buildId |
 * | --- | --- | --- | --- | --- |
 * | 'kernel' | kallsyms symbol, addr - its start | kernel module name; undefined for vmlinux | | |
 * | 'native' | ELF symbol (demangled), addr - its start | mapped file's path, as the process sees it | the same path | set |
 * | 'js' | perf map name (e.g. `JS:*fib /app/x.js:3:13`), addr - code start | | `[anon]`, `[anon:...]`, a memfd | |
 * | 'unknown' | | the file, where file-backed | `[anon]`, `[heap]`, `[stack]`, `[vdso]`, a path, `[kernel]`, `[unmapped]` | set where file-backed |
 */
export interface Frame {
  /** The address resolved. */
  readonly addr: bigint;
  readonly kind: FrameKind;
  /** The symbol (function) name; C++ names demangled where c++filt is installed. */
  readonly name?: string;
  /** addr minus the symbol's start. */
  readonly offset?: bigint;
  /** Kernel: the module ('ext4'; undefined for the kernel image). User space: the mapped file's path. */
  readonly module?: string;
  /** User space: the mapping the address falls in, by the name /proc/PID/maps gives it ('[anon]' for an unnamed one). */
  readonly mapping?: string;
  /**
   * File-backed user frames: the address in the ELF file's own address
   * space (what `nm`, `addr2line -e file` and pprof take), after PIE and
   * shared-object load bias.
   */
  readonly elfAddr?: bigint;
  /** The mapped ELF file's GNU build id (hex), where it has one. */
  readonly buildId?: string;
  /** The symbol as the ELF names it, where demangling changed it. */
  readonly mangledName?: string;
}

/** @internal A frame looked up at addr - 1 (a return address), reported for `addr`. */
export function asReturnAddress(f: Frame, addr: bigint): Frame {
  const out: { -readonly [K in keyof Frame]: Frame[K] } = { ...f, addr };
  if (f.offset !== undefined) out.offset = f.offset + 1n;
  if (f.elfAddr !== undefined) out.elfAddr = f.elfAddr + 1n;
  return out;
}

/**
 * A frame as one line, the way perf script and bcc's tools print frames
 * (without the address): `name [libc.so.6]` for native code (the file's
 * base name), `name [ext4]` for a kernel module's, plain `name` for the
 * kernel image and JavaScript, `[unknown] [heap]` with the mapping for the
 * rest. `offset: true` adds `+0x1f` after the name; `module: false` leaves
 * the bracket out.
 */
export function formatFrame(f: Frame, opts: { offset?: boolean; module?: boolean } = {}): string {
  const place = f.kind === 'kernel' ? f.module : f.module ?? f.mapping;
  const where = place === undefined ? '' : ` [${f.kind === 'kernel' ? place : basename(place)}]`;
  const mod = opts.module === false ? '' : where;
  if (f.name === undefined) return `[unknown]${mod}`;
  const off = opts.offset && f.offset !== undefined ? `+0x${f.offset.toString(16)}` : '';
  return `${f.name}${off}${f.kind === 'js' ? '' : mod}`;
}

function basename(p: string): string {
  if (p.startsWith('[')) return p.slice(1, -1);
  const i = p.lastIndexOf('/');
  return i < 0 ? p : p.slice(i + 1);
}
