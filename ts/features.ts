// What the running kernel can do, found by trying: libbpf's own probes for
// program types, map types and helpers, and small real loads, attaches and
// map operations (native/features.cc) for the rest. Never guessed from the
// kernel's version. Each answer is cached for the life of the process and is
// `true` or a reason: what the feature needs, and what this kernel said.
import { helpers as HELPERS } from './asm.js';
import { errnoName } from './errors.js';
import { addon } from './internal/addon.js';
import { invalidArgValue } from './internal/errors.js';
import { PRIVILEGE_HINT, privileged } from './internal/privileges.js';
import { MAP_TYPES, PROG_TYPES, type MapType, type ProgramType } from './types.js';

/** `true`, or why not: `'kprobe.multi links need Linux 5.18 with CONFIG_FPROBE (this kernel: EOPNOTSUPP from bpf_link_create)'`. */
export type FeatureResult = true | string;

const cache = new Map<string, FeatureResult>();
function cached(key: string, probe: () => FeatureResult): FeatureResult {
  let r = cache.get(key);
  if (r === undefined) {
    r = probe();
    cache.set(key, r);
  }
  return r;
}

function because(needs: string, errno: number, op: string): string {
  const [code] = errnoName(errno);
  if (errno === 1 && !privileged()) return `${needs}; not permitted here (EPERM from ${op}): ${PRIVILEGE_HINT}`;
  return `${needs} (this kernel: ${code} from ${op})`;
}

function tried(name: string, needs: string, arg?: string): FeatureResult {
  return cached(arg === undefined ? name : `${name}:${arg}`, () => {
    const failed = addon.probeFeature(name, arg);
    return failed === null ? true : because(needs, failed.errno, failed.op);
  });
}

// libbpf_probe_*: 1 yes, 0 no, < 0 the probe itself failed.
function libbpfProbe(key: string, what: string, op: string, run: () => number): FeatureResult {
  return cached(key, () => {
    const r = run();
    if (r === 1) return true;
    const needs = `${what} are not in this kernel`;
    if (r === 0) return `${needs} (this kernel: not supported, by ${op})`;
    // libbpf answers EOPNOTSUPP for types newer than itself.
    if (r === -95) return `cannot tell: libbpf ${addon.libbpfVersion} does not know ${what} (${op}: EOPNOTSUPP)`;
    return because(needs, -r, op);
  });
}

function typeIndex<T extends string>(table: readonly T[], what: string, name: T): number {
  const v = table.indexOf(name);
  if (v <= 0) invalidArgValue(what, name, `must be one of ${table.slice(1).join(', ')}`);
  return v;
}

// What each probed feature needs, as the kernel's history has it: the
// reasons say it, the answer comes from the probe.
const NEEDS = {
  kprobes: 'kprobes need a kernel built with CONFIG_KPROBES and CONFIG_KPROBE_EVENTS',
  kprobeMulti: 'kprobe.multi links need Linux 5.18 with CONFIG_FPROBE',
  uprobeMulti: 'uprobe.multi links need Linux 6.6',
  tcx: 'tcx links need Linux 6.6',
  bpfCookie: 'BPF cookies (perf_event links) need Linux 5.15',
  trampolines: 'fentry/fexit/fmod_ret programs need BPF trampolines (Linux 5.5 on x86_64, 6.0 on arm64)',
  lsm: 'BPF LSM programs need Linux 5.7 with CONFIG_BPF_LSM and bpf in the lsm= boot list',
  lookupAndDeleteHash: 'lookup_and_delete on hash and LRU maps needs Linux 5.14',
  batchOps: 'batch map operations need Linux 5.6',
  netfilter: 'netfilter programs need Linux 6.4',
  structOps: 'struct_ops (BPF tcp_congestion_ops) needs Linux 5.6 with CONFIG_BPF_JIT and kernel BTF',
  structOpsLink: 'struct_ops links (maps with BPF_F_LINK) need Linux 6.4',
} as const;

const ITERATORS: Record<string, string> = {
  task: 'task iterators need Linux 5.8',
  bpf_map: 'map iterators need Linux 5.8',
  bpf_map_elem: 'map element iterators need Linux 5.9',
  tcp: 'TCP socket iterators need Linux 5.9',
};

/**
 * Kernel feature probes: what the running kernel can do, found by trying
 * (libbpf's libbpf_probe_bpf_prog_type / _map_type / _helper, and small real
 * loads, attaches and map operations), never guessed from the kernel
 * version. Each answer is `true` or a reason string, cached for the life of
 * the process. The names are those a BpfError's `unsupported` gives. A
 * probe that is not permitted (no CAP_BPF) answers with a reason saying so.
 *
 * @example
 * ```ts
 * import { features } from 'libbpf-node';
 * if (features.kprobeMulti() !== true) prog.attachKprobe('tcp_v4_connect');
 * console.table(features.report());
 * ```
 */
export const features = {
  /** A program type (libbpf_probe_bpf_prog_type). */
  programType(type: ProgramType): FeatureResult {
    const v = typeIndex(PROG_TYPES, 'type', type);
    return libbpfProbe(`prog:${type}`, `${type} programs`, 'libbpf_probe_bpf_prog_type',
      () => addon.probeType('prog', v));
  },

  /** A map type (libbpf_probe_bpf_map_type). */
  mapType(type: MapType): FeatureResult {
    const v = typeIndex(MAP_TYPES, 'type', type);
    return libbpfProbe(`map:${type}`, `${type} maps`, 'libbpf_probe_bpf_map_type',
      () => addon.probeType('map', v));
  },

  /** A helper in programs of a type: `helper('socket_filter', 'bpf_loop')` (libbpf_probe_bpf_helper). */
  helper(programType: ProgramType, helper: string): FeatureResult {
    const p = typeIndex(PROG_TYPES, 'programType', programType);
    const name = String(helper).replace(/^bpf_/, '');
    if (!Object.hasOwn(HELPERS, name) || name === 'unspec') invalidArgValue('helper', helper, 'is not a BPF helper this library knows');
    const id = HELPERS[name as keyof typeof HELPERS];
    return libbpfProbe(`helper:${programType}:${name}`, `calls of bpf_${name}() from ${programType} programs`,
      'a program calling it', () => addon.probeType('helper', p, id));
  },

  /** kprobes through the kprobe PMU (perf_event_open on vprintk, with a program). */
  kprobes: (): FeatureResult => tried('kprobes', NEEDS.kprobes),
  /** kprobe.multi links (a real link on vprintk). */
  kprobeMulti: (): FeatureResult => tried('kprobe_multi', NEEDS.kprobeMulti),
  /** uprobe.multi links (probed as libbpf does: the kernel gets as far as checking the path). */
  uprobeMulti: (): FeatureResult => tried('uprobe_multi', NEEDS.uprobeMulti),
  /** tcx links (a real link on lo whose program says TCX_NEXT, detached at once). */
  tcx: (): FeatureResult => tried('tcx', NEEDS.tcx),
  /** BPF cookies on perf_event links (what USDT and uprobe cookies need). */
  bpfCookie: (): FeatureResult => tried('bpf_cookie', NEEDS.bpfCookie),
  /** fentry/fexit: a program attached through a BPF trampoline (on bpf_fentry_test1). */
  trampolines: (): FeatureResult => tried('fentry', NEEDS.trampolines),
  /** BPF LSM: a program attached to the file_open hook. */
  lsm: (): FeatureResult => tried('lsm', NEEDS.lsm),
  /** BPF ring buffers (the map type). */
  ringbuf: (): FeatureResult => features.mapType('ringbuf'),
  /** bpf_map_lookup_and_delete_elem on a hash map. */
  lookupAndDeleteHash: (): FeatureResult => tried('lookup_and_delete_hash', NEEDS.lookupAndDeleteHash),
  /** bpf_map_lookup_batch and friends. */
  batchOps: (): FeatureResult => tried('batch_ops', NEEDS.batchOps),
  /** A bpf_iter target: 'task', 'bpf_map_elem', ... (a real iterator link). */
  iterator(target: string): FeatureResult {
    if (typeof target !== 'string' || !/^[a-z0-9_]+$/.test(target)) invalidArgValue('target', target, 'is not an iterator target name');
    return tried('iter', ITERATORS[target] ?? `${target} iterators are not in this kernel`, target);
  },
  /** task iterators: `iterator('task')` (Linux 5.8). */
  iterTask: (): FeatureResult => features.iterator('task'),
  /** map element iterators: `iterator('bpf_map_elem')` (Linux 5.9). */
  iterMapElem: (): FeatureResult => features.iterator('bpf_map_elem'),
  /** BPF_PROG_TYPE_SYSCALL programs (run through BPF_PROG_TEST_RUN). */
  syscallPrograms: (): FeatureResult => features.programType('syscall'),
  /** bpf_loop() (in SYSCALL programs, as the tests' producers use it). */
  bpfLoop: (): FeatureResult => {
    const syscall = features.programType('syscall');
    return syscall === true ? features.helper('syscall', 'bpf_loop') : `bpf_loop() needs Linux 5.17; ${syscall}`;
  },

  /** BPF_PROG_TYPE_NETFILTER programs (a real load; Linux 6.4). */
  netfilter: (): FeatureResult => tried('netfilter', NEEDS.netfilter),
  /** struct_ops maps of tcp_congestion_ops (a real map creation with the kernel's value type; Linux 5.6). */
  structOps: (): FeatureResult => tried('struct_ops', NEEDS.structOps),
  /** struct_ops maps with BPF_F_LINK, registered by a kernel link (Linux 6.4). */
  structOpsLink: (): FeatureResult => {
    const base = features.structOps();
    return base === true ? tried('struct_ops_link', NEEDS.structOpsLink) : base;
  },
  /** BPF_MAP_TYPE_USER_RINGBUF maps (Linux 6.1). */
  userRingbuf: (): FeatureResult => features.mapType('user_ringbuf'),

  /** Every named probe above, run now: a table of what this kernel has. */
  report(): Record<string, FeatureResult> {
    const names = ['kprobes', 'kprobeMulti', 'uprobeMulti', 'tcx', 'bpfCookie', 'trampolines', 'lsm', 'ringbuf',
      'lookupAndDeleteHash', 'batchOps', 'iterTask', 'iterMapElem', 'syscallPrograms', 'bpfLoop',
      'netfilter', 'structOps', 'structOpsLink', 'userRingbuf'] as const;
    return Object.fromEntries(names.map((n) => [n, features[n]()]));
  },
};
