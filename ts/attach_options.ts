// Options of BpfProgram's attach methods, and the names they accept.
import type { AttachType } from './types.js';
import type { BpfMap } from './map.js';

/** Options of BpfProgram#attachKprobe (bpf_program__attach_kprobe_opts). */
export interface KprobeOptions {
  /** A kretprobe: run at the function's return. */
  retprobe?: boolean;
  /** Bytes into the function (default 0: its entry). */
  offset?: number;
}

/** Options of BpfProgram#attachKsyscall (bpf_program__attach_ksyscall). */
export interface KsyscallOptions {
  /** A kretprobe: run at the system call's return. */
  retprobe?: boolean;
}

/**
 * Options of BpfProgram#attachKprobeMulti (bpf_program__attach_kprobe_multi_opts):
 * exactly one of `pattern` and `symbols` (else TypeError ERR_INVALID_ARG_VALUE).
 */
export interface KprobeMultiOptions {
  /** A glob over kernel function names, e.g. 'tcp_v4_*'. */
  pattern?: string;
  /** Or the exact functions. */
  symbols?: readonly string[];
  /** kretprobes: run at the functions' return. */
  retprobe?: boolean;
}

/**
 * Options of BpfProgram#attachUprobe (bpf_program__attach_uprobe_opts): a
 * `symbol`, an `offset`, or both (neither is a TypeError ERR_INVALID_ARG_VALUE).
 */
export interface UprobeOptions {
  /** A path, or a library name libbpf resolves (e.g. 'libc.so.6'). */
  binary: string;
  /** A function of the binary, resolved by libbpf ... */
  symbol?: string;
  /** ... or an offset in it (added to the symbol's when both are given). */
  offset?: number;
  /** Only this process (default -1: every process that maps the binary). */
  pid?: number;
  /** A uretprobe: run at the function's return. */
  retprobe?: boolean;
}

/** Options of BpfProgram#attachUsdt (bpf_program__attach_usdt; needs BPF cookies, Linux 5.15). */
export interface UsdtOptions {
  /** The binary or library that holds the probe (a path, or a name libbpf resolves). */
  binary: string;
  /** The probe's provider, the first argument of DTRACE_PROBE / STAP_PROBE. */
  provider: string;
  /** The probe's name. */
  name: string;
  /** Only this process (default -1: every process). */
  pid?: number;
  /** Read in the program with bpf_usdt_cookie() (default 0n; a bigint, else TypeError ERR_INVALID_ARG_TYPE). */
  cookie?: bigint;
}

/** perf_event_attr.type by name: PERF_TYPE_HARDWARE (0) … PERF_TYPE_BREAKPOINT (5). */
export const PERF_TYPES = { hardware: 0, software: 1, tracepoint: 2, hw_cache: 3, raw: 4, breakpoint: 5 } as const;

/**
 * perf_event_attr.config for the hardware and software types, by the names
 * perf(1) uses: PERF_COUNT_HW_* ('cpu-cycles' = PERF_COUNT_HW_CPU_CYCLES, ...) and
 * PERF_COUNT_SW_* ('cpu-clock' = PERF_COUNT_SW_CPU_CLOCK, ...).
 */
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

/**
 * Options of BpfProgram#attachPerfEvent: a perf_event_open(2) of this
 * perf_event_attr, attached with bpf_program__attach_perf_event. Exactly one
 * of `sampleFreq` and `samplePeriod` (else TypeError ERR_INVALID_ARG_VALUE).
 */
export interface PerfEventOptions {
  /** perf_event_attr.type: a name of PERF_TYPES, or the number (a PMU's type from /sys/bus/event_source). */
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

/** Options of BpfProgram#attachXdp: a BPF_XDP link (bpf_link_create), or with `replace` a netlink attach (bpf_xdp_attach). */
export interface XdpOptions {
  /**
   * Driver ('native', XDP_FLAGS_DRV_MODE), generic skb ('generic',
   * XDP_FLAGS_SKB_MODE) or hardware ('offload', XDP_FLAGS_HW_MODE); default:
   * what the driver offers.
   */
  mode?: 'native' | 'generic' | 'offload';
  /**
   * Replace the program the interface runs now (netlink attach) instead of
   * making a link, which the kernel refuses while another program is there.
   */
  replace?: boolean;
}

/** Options of BpfProgram#attachTc: a tcx link (bpf_link_create with BPF_TCX_INGRESS/EGRESS) or a classic tc filter (bpf_tc_hook_create + bpf_tc_attach). */
export interface TcOptions {
  /** The hook: BPF_TC_INGRESS / BPF_TCX_INGRESS, or BPF_TC_EGRESS / BPF_TCX_EGRESS. */
  direction: 'ingress' | 'egress';
  /** A tc filter priority, 1-65535 (classic tc; default: picked by the kernel). */
  priority?: number;
  /** A tc filter handle, 1 … 2^32 - 1 (classic tc; default: picked by the kernel). */
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

/** Options of BpfProgram#attachCgroup: bpf_program__attach_cgroup, or bpf_link_create with `type`. */
export interface CgroupOptions {
  /** The attach type, where the section does not fix it (e.g. 'cgroup_inet_egress'). */
  type?: AttachType;
}

/** Options of BpfProgram#attachSockmap (bpf_prog_attach on the map). */
export interface SockmapOptions {
  /** Default: the program's expected attach type (sk_msg_verdict for SEC("sk_msg")). */
  type?: AttachType;
}

/** Options of BpfProgram#iter (bpf_program__attach_iter). */
export interface IterOptions {
  /** The map a map-element iterator walks. */
  map?: BpfMap;
}
