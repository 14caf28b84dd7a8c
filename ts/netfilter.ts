// Netfilter hooks for SEC("netfilter") programs (BPF_PROG_TYPE_NETFILTER,
// Linux 6.4): the names BpfProgram#attachNetfilter accepts, their values in
// the kernel's uapi, and the checks made before bpf_link_create.
import { checkInt, fail, invalidArgType, invalidArgValue } from './internal/errors.js';

/** Protocol families a netfilter program can hook (NFPROTO_*), by name. */
export const NETFILTER_FAMILIES = { ipv4: 2, ipv6: 10 } as const;
/** 'ipv4' (NFPROTO_IPV4) or 'ipv6' (NFPROTO_IPV6). */
export type NetfilterFamily = keyof typeof NETFILTER_FAMILIES;

/** The hooks (enum nf_inet_hooks, NF_INET_*), by name. */
export const NETFILTER_HOOKS = { prerouting: 0, local_in: 1, forward: 2, local_out: 3, postrouting: 4 } as const;
/** 'prerouting', 'local_in', 'forward', 'local_out' or 'postrouting'. */
export type NetfilterHook = keyof typeof NETFILTER_HOOKS;

/** BPF_F_NETFILTER_IP_DEFRAG (Linux 6.6): the program sees reassembled IP packets. */
const IP_DEFRAG = 1;

/** Options of BpfProgram#attachNetfilter (a BPF_NETFILTER link). */
export interface NetfilterOptions {
  /** The protocol family. */
  pf: NetfilterFamily;
  /** The hook. */
  hooknum: NetfilterHook;
  /**
   * Where among the hook's functions the program runs: lower runs first.
   * The kernel refuses INT_MIN and INT_MAX (NF_IP_PRI_FIRST/LAST) and, with
   * ipDefrag, anything at or before defragmentation (-400).
   */
  priority: number;
  /** Raw BPF_F_NETFILTER_* flags (default 0); `ipDefrag` sets the one the kernel has. */
  flags?: number;
  /** BPF_F_NETFILTER_IP_DEFRAG (Linux 6.6): run after IP defragmentation. */
  ipDefrag?: boolean;
}

/** @internal The checked options: [pf, hooknum, priority, flags, a label for errors]. */
export function netfilterArgs(opts: NetfilterOptions): [number, number, number, number, string] {
  if (opts === null || typeof opts !== 'object') invalidArgType('opts', 'an object with pf, hooknum and priority', opts);
  const { pf, hooknum } = opts;
  if (typeof pf !== 'string') invalidArgType('opts.pf', `one of ${Object.keys(NETFILTER_FAMILIES).map((k) => `'${k}'`).join(', ')}`, pf);
  if (!Object.hasOwn(NETFILTER_FAMILIES, pf)) invalidArgValue('opts.pf', pf, `must be one of ${Object.keys(NETFILTER_FAMILIES).map((k) => `'${k}'`).join(', ')}`);
  if (typeof hooknum !== 'string') invalidArgType('opts.hooknum', `one of ${Object.keys(NETFILTER_HOOKS).map((k) => `'${k}'`).join(', ')}`, hooknum);
  if (!Object.hasOwn(NETFILTER_HOOKS, hooknum)) invalidArgValue('opts.hooknum', hooknum, `must be one of ${Object.keys(NETFILTER_HOOKS).map((k) => `'${k}'`).join(', ')}`);
  if (opts.priority === undefined) fail(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "opts.priority" argument must be of type number. Received undefined (netfilter hooks have no default priority)');
  // INT_MIN and INT_MAX are netfilter's own first and last places.
  const priority = checkInt('opts.priority', opts.priority, -0x7fff_ffff, 0x7fff_fffe);
  let flags = opts.flags === undefined ? 0 : checkInt('opts.flags', opts.flags, 0, 0xffff_ffff);
  if (opts.ipDefrag !== undefined && typeof opts.ipDefrag !== 'boolean') invalidArgType('opts.ipDefrag', 'of type boolean', opts.ipDefrag);
  if (opts.ipDefrag) flags |= IP_DEFRAG;
  return [NETFILTER_FAMILIES[pf], NETFILTER_HOOKS[hooknum], priority, flags >>> 0, `netfilter ${pf} ${hooknum} priority ${priority}`];
}
