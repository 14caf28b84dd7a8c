// Errors of failed libbpf and kernel calls. The classes live here and the
// addon builds them through makeError(), handed over once at start-up, so
// that `instanceof` works and C++ never invents an error shape.
import { getSystemErrorMap } from 'node:util';
import { PRIVILEGE_HINT, privileged } from './internal/privileges.js';

const systemErrors = getSystemErrorMap();

/**
 * What the addon reports about a failed call (internal).
 * @inline
 */
export interface FailureInfo {
  errno: number;
  op: string;
  target?: string;
  log: string;
  program?: string;
  verifierLog?: string;
  /** The kernel feature whose absence made the call fail (see `features`). */
  unsupported?: string;
}

// Where libuv's name differs from the kernel's, or the kernel leaks an
// internal errno (include/linux/errno.h) through bpf(2).
const KERNEL_ERRNO: Record<number, [string, string]> = {
  95: ['EOPNOTSUPP', 'operation not supported'],
  512: ['ERESTARTSYS', 'restart syscall (kernel internal)'],
  524: ['ENOTSUPP', 'operation not supported (kernel internal)'],
};

// libbpf's own error numbers (enum libbpf_errno, LIBBPF_ERRNO__START 4000),
// with libbpf_strerror()'s texts.
const LIBBPF_ERRNO = [
  ['LIBELF', 'Something wrong in libelf'],
  ['FORMAT', 'BPF object format invalid'],
  ['KVERSION', "'version' section incorrect or lost"],
  ['ENDIAN', 'Endian mismatch'],
  ['INTERNAL', 'Internal error in libbpf'],
  ['RELOC', 'Relocation failed'],
  ['LOAD', 'Load program failure for unknown reason'],
  ['VERIFY', 'Kernel verifier blocks program loading'],
  ['PROG2BIG', 'Program too big'],
  ['KVER', 'Incorrect kernel version'],
  ['PROGTYPE', "Kernel doesn't support this program type"],
  ['WRNGPID', 'Wrong pid in netlink message'],
  ['INVSEQ', 'Invalid netlink sequence'],
  ['NLPARSE', 'Incorrect netlink message parsing'],
] as const;

/** @internal The errno name and its text. */
export function errnoName(errno: number): [string, string] {
  const libbpf = LIBBPF_ERRNO[errno - 4000];
  if (libbpf) return [`LIBBPF_ERRNO__${libbpf[0]}`, libbpf[1]];
  const entry = KERNEL_ERRNO[errno] ?? systemErrors.get(-errno);
  return entry ? [entry[0], entry[1]] : [`E${errno}`, `errno ${errno}`];
}

// What libbpf printed during a failed call arrives with its debug-level
// lines marked (\x02, native/errors.cc): they are kept in `log` unmarked,
// and they are where the cause is when nothing louder says it.
const DEBUG_MARK = '\x02';

// Lines that say that something failed, or what libbpf did next, but not why.
const NOT_A_CAUSE = [
  /^Failed to bump RLIMIT_MEMLOCK/,
  /^permission error while running as root; try raising 'ulimit -l'/,
  /Retrying without BTF\.?$/,
  /^failed to load object '/,
  /^prog '[^']*': failed to load: -?\d+$/,
  /^(elf|sec|map|prog) '?[^ ]*'?: (found|collecting|skipping)/,
];

function lines(log: string): Array<{ text: string; debug: boolean }> {
  return log.split('\n').map((l) => {
    const debug = l.startsWith(DEBUG_MARK);
    return { text: (debug ? l.slice(1) : l).trim().replace(/^libbpf: /, ''), debug };
  }).filter((l) => l.text !== '');
}

// libbpf prints the cause first and the "failed to ..." lines of its callers
// after it: the first line at warning level that names a cause is the
// headline; without one, the last debug line before the failure.
function mostSpecific(log: string): string {
  const all = lines(log).filter((l) => !NOT_A_CAUSE.some((re) => re.test(l.text)));
  return (all.find((l) => !l.debug) ?? all.at(-1))?.text ?? '';
}

/**
 * A libbpf or kernel call failed: the errno it returned (`code`, `errno`),
 * the libbpf function (`op`), what it was applied to (`target`), and what
 * libbpf printed meanwhile (`log`). The message leads with the most
 * specific line libbpf printed; where the process lacks the capabilities
 * for BPF (EPERM), it says so instead.
 *
 * Thrown by the library (never made by user code): by `new BpfObject()`
 * and load(), map operations, attach methods, pins, ring and perf buffer
 * polls (op ring_buffer__consume / perf_buffer__consume, rejecting the
 * pending read). libbpf's own errors (LIBBPF_ERRNO__*, 4000 and up) are
 * named as such. Misuse of the API is not a BpfError but a TypeError or
 * RangeError with a Node-style `code` (ERR_INVALID_ARG_TYPE,
 * ERR_INVALID_ARG_VALUE, ERR_OUT_OF_RANGE, ERR_INVALID_STATE, ...). A
 * BpfError has no resources: nothing to close.
 *
 * @example
 * ```ts
 * try {
 *   prog.attachKprobeMulti({ pattern: 'tcp_v4_*' });
 * } catch (e) {
 *   if (!(e instanceof BpfError)) throw e;
 *   console.error(e.op, e.code, e.unsupported); // op 'bpf_program__attach_kprobe_multi_opts'; unsupported 'kprobeMulti' where the kernel lacks it
 * }
 * ```
 */
export class BpfError extends Error {
  /** The errno name, e.g. 'ENOENT'. */
  readonly code: string;
  /** The positive errno value. */
  readonly errno: number;
  /** The libbpf (or libc) function that failed, e.g. 'bpf_object__load'. */
  readonly op: string;
  /** What the call was applied to: a path, a map or program name. */
  readonly target: string | undefined;
  /** What libbpf printed during this call (warnings and info), raw. */
  readonly log: string;
  /**
   * The kernel feature this kernel lacks, where that was the cause: a name
   * of `features` ('kprobeMulti', 'tcx', 'ringbuf', ...), 'programType:syscall',
   * 'helper:bpf_loop', 'iterator:bpf_map_elem'. The message says what the probe found.
   */
  readonly unsupported: string | undefined;
  /** The program a failed load was about, where libbpf said. */
  readonly program: string | undefined;

  /**
   * Made by the library from what the addon reports; `message` replaces the
   * generated one ('op(target) failed: CODE (text): detail').
   */
  constructor(info: FailureInfo, message?: string) {
    const [code, text] = errnoName(info.errno);
    const what = info.target ? `${info.op}(${info.target})` : info.op;
    // EPERM in a process without the capabilities: that is the cause, whatever
    // libbpf guessed (RLIMIT_MEMLOCK, a kernel without BPF); its lines stay in `log`.
    const detail = info.errno === 1 && !privileged() ? `this process may not use BPF: ${PRIVILEGE_HINT}` : mostSpecific(info.log);
    super(message ?? `${what} failed: ${code} (${text})${detail ? `: ${detail}` : ''}`);
    this.name = new.target.name;
    this.code = code;
    this.errno = info.errno;
    this.op = info.op;
    this.target = info.target;
    this.log = info.log.replaceAll(DEBUG_MARK, '');
    this.unsupported = info.unsupported;
    this.program = info.program;
  }

  /** @internal The same failure, saying that the kernel lacks `feature` (`reason`, from the probe). */
  becauseUnsupported(feature: string, reason: string, program = this.program): BpfError {
    const e = new BpfError({ errno: this.errno, op: this.op, target: this.target, log: this.log, program,
      unsupported: feature }, `${this.message}\n  unsupported: ${reason}`);
    Object.defineProperty(e, 'cause', { value: this, enumerable: false, writable: true, configurable: true });
    return e;
  }
}

const SHOWN_LINES = 6;

/**
 * The verifier rejected a program (BPF_PROG_LOAD failed with a log that
 * shows instructions processed); `verifierLog` holds its whole output,
 * and the message its last lines. Thrown by BpfObject#load /
 * BpfObject#loadAsync (op bpf_object__load) and BpfProgram.load (op
 * bpf_prog_load). A program the kernel refused before verifying it (a
 * program or attach type this kernel does not allow) is a plain BpfError.
 *
 * @example
 * ```ts
 * try {
 *   obj.load();
 * } catch (e) {
 *   if (e instanceof VerifierError) console.error(e.program, e.verifierLog);
 *   throw e;
 * }
 * ```
 */
export class VerifierError extends BpfError {
  /** The program the verifier rejected. */
  declare readonly program: string;
  /** The verifier's output, raw and complete. */
  readonly verifierLog: string;

  constructor(info: FailureInfo) {
    const lines = (info.verifierLog ?? '').split('\n').filter((l) => l.trim() !== '');
    const shown = lines.slice(-SHOWN_LINES);
    const omitted = lines.length - shown.length;
    const [code] = errnoName(info.errno);
    super(info,
      `${info.op}: the verifier rejected program '${info.program ?? ''}' (${code}):\n` +
      (omitted > 0 ? `  (${omitted} line(s) omitted)\n` : '') +
      shown.map((l) => `  ${l}`).join('\n'));
    this.program = info.program ?? '';
    this.verifierLog = info.verifierLog ?? '';
  }
}

// The verifier's closing line when it never looked at an instruction: the
// kernel turned the program down before verification (its type or attach
// type is not allowed here), which is no verifier rejection.
const NOTHING_VERIFIED = /^processed 0 insns/m;

/** @internal */
export function makeError(info: FailureInfo): BpfError {
  const log = info.verifierLog ?? '';
  if (log === '') return new BpfError(info);
  if (!NOTHING_VERIFIED.test(log)) return new VerifierError(info);
  const [code, text] = errnoName(info.errno);
  const who = info.errno === 1 && !privileged() ? `; ${PRIVILEGE_HINT}` : '';
  return new BpfError({ ...info, log: info.log + log },
    `${info.op}: the kernel refused program '${info.program ?? ''}' (${code}, ${text}) before verifying it: ` +
    `its program type or attach type is not allowed on this kernel${who}`);
}
