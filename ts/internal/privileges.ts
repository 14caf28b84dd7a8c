// Whether this process holds what BPF needs, so that an EPERM can be told
// apart: the kernel refusing a program or attach type, or us lacking rights.
import { readFileSync } from 'node:fs';

const CAP_SYS_ADMIN = 21n;
const CAP_PERFMON = 38n;
const CAP_BPF = 39n;

/** CAP_SYS_ADMIN, or CAP_BPF with CAP_PERFMON, in the effective set. */
export function privileged(): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  if (!m) return false;
  const caps = BigInt(`0x${m[1]}`);
  const has = (c: bigint): boolean => ((caps >> c) & 1n) === 1n;
  return has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON));
}

export const PRIVILEGE_HINT = 'run as root, or with CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN before Linux 5.8)';
