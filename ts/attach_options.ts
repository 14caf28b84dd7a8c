// Options of BpfProgram's attach methods, and the names they accept.
import type { AttachType } from './types.js';
import type { BpfMap } from './map.js';

export interface KprobeOptions {
  /** A kretprobe: run at the function's return. */
  retprobe?: boolean;
  /** Bytes into the function. */
  offset?: number;
}

export interface KsyscallOptions {
  retprobe?: boolean;
}

export interface KprobeMultiOptions {
  /** A glob over kernel function names, e.g. 'tcp_v4_*'. */
  pattern?: string;
  /** Or the exact functions. */
  symbols?: readonly string[];
  retprobe?: boolean;
}

export interface UprobeOptions {
  /** A path, or a library name libbpf resolves (e.g. 'libc.so.6'). */
  binary: string;
  /** A function of the binary, resolved by libbpf ... */
  symbol?: string;
  /** ... or an offset in it (added to the symbol's when both are given). */
  offset?: number;
  /** Only this process (default: every process that maps the binary). */
  pid?: number;
  retprobe?: boolean;
}

export interface UsdtOptions {
  binary: string;
  provider: string;
  name: string;
  pid?: number;
  /** Read in the program with bpf_usdt_cookie(). */
  cookie?: bigint;
}

/** perf_event_attr.type, by name or number. */
export const PERF_TYPES = { hardware: 0, software: 1, tracepoint: 2, hw_cache: 3, raw: 4, breakpoint: 5 } as const;

/** perf_event_attr.config for the hardware and software types, by name. */
export const PERF_CONFIGS = {
  hardware: {
    'cpu-cycles': 0, instructions: 1, 'cache-references': 2, 'cache-misses': 3, 'branch-instructions': 4,
    'branch-misses': 5, 'bus-cycles': 6, 'stalled-cycles-frontend': 7, 'stalled-cycles-backend': 8, 'ref-cpu-cycles': 9,
  },
  software: {
    'cpu-clock': 0, 'task-clock': 1, 'page-faults': 2, 'context-switches': 3, 'cpu-migrations': 4,
    'page-faults-min': 5, 'page-faults-maj': 6, 'alignment-faults': 7, 'emulation-faults': 8, dummy: 9, 'bpf-output': 10,
  },
} as const;

export interface PerfEventOptions {
  type: keyof typeof PERF_TYPES | number;
  /** A number, or a name of PERF_CONFIGS for the hardware and software types. */
  config: number | bigint | string;
  /** Samples a second (perf_event_attr.freq) ... */
  sampleFreq?: number;
  /** ... or one sample every N events. */
  samplePeriod?: number;
  /** A CPU, or 'all' (default): one perf event, and one link, per online CPU. */
  cpu?: number | 'all';
  /** Only this process (default: all, -1). */
  pid?: number;
}

export interface XdpOptions {
  /** Driver ('native'), generic skb ('generic') or hardware ('offload'); default: what the driver offers. */
  mode?: 'native' | 'generic' | 'offload';
  /**
   * Replace the program the interface runs now (netlink attach) instead of
   * making a link, which the kernel refuses while another program is there.
   */
  replace?: boolean;
}

export interface TcOptions {
  direction: 'ingress' | 'egress';
  /** A tc filter priority and handle (classic tc; default: picked by the kernel). */
  priority?: number;
  handle?: number;
  /**
   * tcx (a kernel link, Linux 6.6 and newer): default when no priority or
   * handle is given and the kernel has it; false forces a classic tc filter.
   */
  tcx?: boolean;
  /**
   * A classic tc filter hangs on the interface's clsact qdisc, made when
   * missing. On detach (and at exit) the qdisc is removed when no filter is
   * left on it, by default only if this process made it; `true`: also when
   * it was there before; `false`: never. (A tcx link needs no qdisc.)
   */
  destroyHook?: boolean;
}

export interface CgroupOptions {
  /** The attach type, where the section does not fix it (e.g. 'cgroup_inet_egress'). */
  type?: AttachType;
}

export interface SockmapOptions {
  /** Default: the program's expected attach type (sk_msg_verdict for SEC("sk_msg")). */
  type?: AttachType;
}

export interface IterOptions {
  /** The map a map-element iterator walks. */
  map?: BpfMap;
}
