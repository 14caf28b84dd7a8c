// Errors of failed libbpf and kernel calls. The classes live here and the
// addon builds them through makeError(), handed over once at start-up, so
// that `instanceof` works and C++ never invents an error shape.
import { getSystemErrorMap } from 'node:util';

const systemErrors = getSystemErrorMap();

/** What the addon reports about a failed call (internal). */
export interface FailureInfo {
  errno: number;
  op: string;
  target?: string;
  log: string;
  program?: string;
  verifierLog?: string;
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

// libbpf prints the cause first and the "failed to ..." lines of its callers
// after it, so the first line is the one worth a headline.
function firstLine(text: string): string {
  const line = text.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? '';
  return line.replace(/^libbpf: /, '');
}

/** A libbpf or kernel call failed. */
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

  constructor(info: FailureInfo, message?: string) {
    const [code, text] = errnoName(info.errno);
    const what = info.target ? `${info.op}(${info.target})` : info.op;
    const detail = firstLine(info.log);
    super(message ?? `${what} failed: ${code} (${text})${detail ? `: ${detail}` : ''}`);
    this.name = new.target.name;
    this.code = code;
    this.errno = info.errno;
    this.op = info.op;
    this.target = info.target;
    this.log = info.log;
  }
}

const SHOWN_LINES = 6;

/** The verifier rejected a program; `verifierLog` holds its whole output. */
export class VerifierError extends BpfError {
  /** The program the verifier rejected. */
  readonly program: string;
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

/** @internal */
export function makeError(info: FailureInfo): BpfError {
  return info.verifierLog !== undefined && info.verifierLog !== ''
    ? new VerifierError(info)
    : new BpfError(info);
}
