// The kernel's map, program and attach types by the names libbpf gives them
// (libbpf_bpf_*_type_str). The lists follow the uapi enums' order, so a
// name's index is its value; they are kept here rather than asked of the
// system libbpf so that types newer than it (libbpf 1.1 on Debian 12) still
// have names.

/**
 * The map types, `enum bpf_map_type` (BPF_MAP_TYPE_*) by libbpf's names
 * (libbpf_bpf_map_type_str): the index of a name is its value, so
 * `MAP_TYPES[1]` is 'hash', BPF_MAP_TYPE_HASH.
 */
export const MAP_TYPES = [
  'unspec', 'hash', 'array', 'prog_array', 'perf_event_array', 'percpu_hash', 'percpu_array',
  'stack_trace', 'cgroup_array', 'lru_hash', 'lru_percpu_hash', 'lpm_trie', 'array_of_maps',
  'hash_of_maps', 'devmap', 'sockmap', 'cpumap', 'xskmap', 'sockhash', 'cgroup_storage',
  'reuseport_sockarray', 'percpu_cgroup_storage', 'queue', 'stack', 'sk_storage', 'devmap_hash',
  'struct_ops', 'ringbuf', 'inode_storage', 'task_storage', 'bloom_filter', 'user_ringbuf',
  'cgrp_storage', 'arena',
] as const;
/** A map type by name: 'hash' for BPF_MAP_TYPE_HASH, 'ringbuf' for BPF_MAP_TYPE_RINGBUF, ... */
export type MapType = (typeof MAP_TYPES)[number];

/**
 * The program types, `enum bpf_prog_type` (BPF_PROG_TYPE_*) by libbpf's
 * names (libbpf_bpf_prog_type_str), index = value: 'sched_cls' is
 * BPF_PROG_TYPE_SCHED_CLS (tc), 'tracing' covers fentry/fexit/iterators.
 */
export const PROG_TYPES = [
  'unspec', 'socket_filter', 'kprobe', 'sched_cls', 'sched_act', 'tracepoint', 'xdp', 'perf_event',
  'cgroup_skb', 'cgroup_sock', 'lwt_in', 'lwt_out', 'lwt_xmit', 'sock_ops', 'sk_skb',
  'cgroup_device', 'sk_msg', 'raw_tracepoint', 'cgroup_sock_addr', 'lwt_seg6local', 'lirc_mode2',
  'sk_reuseport', 'flow_dissector', 'cgroup_sysctl', 'raw_tracepoint_writable', 'cgroup_sockopt',
  'tracing', 'struct_ops', 'ext', 'lsm', 'sk_lookup', 'syscall', 'netfilter',
] as const;
/** A program type by name: 'kprobe' for BPF_PROG_TYPE_KPROBE, 'xdp' for BPF_PROG_TYPE_XDP, ... */
export type ProgramType = (typeof PROG_TYPES)[number];

/**
 * The attach types, `enum bpf_attach_type` by libbpf's names
 * (libbpf_bpf_attach_type_str), index = value: 'cgroup_inet_ingress' is
 * BPF_CGROUP_INET_INGRESS (0), 'tcx_ingress' BPF_TCX_INGRESS.
 */
export const ATTACH_TYPES = [
  'cgroup_inet_ingress', 'cgroup_inet_egress', 'cgroup_inet_sock_create', 'cgroup_sock_ops',
  'sk_skb_stream_parser', 'sk_skb_stream_verdict', 'cgroup_device', 'sk_msg_verdict',
  'cgroup_inet4_bind', 'cgroup_inet6_bind', 'cgroup_inet4_connect', 'cgroup_inet6_connect',
  'cgroup_inet4_post_bind', 'cgroup_inet6_post_bind', 'cgroup_udp4_sendmsg', 'cgroup_udp6_sendmsg',
  'lirc_mode2', 'flow_dissector', 'cgroup_sysctl', 'cgroup_udp4_recvmsg', 'cgroup_udp6_recvmsg',
  'cgroup_getsockopt', 'cgroup_setsockopt', 'trace_raw_tp', 'trace_fentry', 'trace_fexit',
  'modify_return', 'lsm_mac', 'trace_iter', 'cgroup_inet4_getpeername', 'cgroup_inet6_getpeername',
  'cgroup_inet4_getsockname', 'cgroup_inet6_getsockname', 'xdp_devmap', 'cgroup_inet_sock_release',
  'xdp_cpumap', 'sk_lookup', 'xdp', 'sk_skb_verdict', 'sk_reuseport_select',
  'sk_reuseport_select_or_migrate', 'perf_event', 'trace_kprobe_multi', 'lsm_cgroup', 'struct_ops',
  'netfilter', 'tcx_ingress', 'tcx_egress', 'trace_uprobe_multi', 'cgroup_unix_connect',
  'cgroup_unix_sendmsg', 'cgroup_unix_recvmsg', 'cgroup_unix_getpeername',
  'cgroup_unix_getsockname', 'netkit_primary', 'netkit_peer', 'trace_kprobe_session',
  'trace_uprobe_session',
] as const;
/** An attach type by name: 'cgroup_inet_egress' for BPF_CGROUP_INET_EGRESS, 'sk_msg_verdict' for BPF_SK_MSG_VERDICT, ... */
export type AttachType = (typeof ATTACH_TYPES)[number];

/** Maps whose values hold one slot per possible CPU. */
export const PER_CPU_MAP_TYPES = ['percpu_hash', 'percpu_array', 'lru_percpu_hash', 'percpu_cgroup_storage'] as const;
/**
 * The per-CPU map types: 'percpu_hash', 'percpu_array', 'lru_percpu_hash'
 * and 'percpu_cgroup_storage'.
 * @useDeclaredType
 */
export type PerCpuMapType = (typeof PER_CPU_MAP_TYPES)[number];

/** A name for an enum value; values newer than this list read as 'unknown(N)'. */
export function typeName<T extends string>(table: readonly T[], value: number): T {
  return table[value] ?? (`unknown(${value})` as T);
}
