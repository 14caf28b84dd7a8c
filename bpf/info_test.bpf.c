// Programs for the introspection tests (test/32-35): a socket filter that
// counts its runs in a map (prog.info() map ids, runCount), a cgroup_skb
// program for attach queries, and tracepoint/raw_tp programs that
// bpf_printk a known marker for tracePipe().
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} info_runs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} info_other SEC(".maps");

// The process whose getppid() calls print the marker (0: none), and a
// per-test nonce so a line from an earlier run is never taken for this one.
__u32 printk_tgid = 0;
__u32 printk_nonce = 0;

SEC("socket")
int info_count(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&info_runs, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
	if (bpf_map_lookup_elem(&info_other, &key))
		return 1;
	return 0;
}

SEC("cgroup_skb/egress")
int info_cgroup(struct __sk_buff *skb)
{
	return 1;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int info_printk(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (printk_tgid == 0 || tgid != printk_tgid)
		return 0;
	bpf_printk("libbpf-node-marker %u", printk_nonce);
	return 0;
}

SEC("raw_tp/sys_enter")
int info_raw_tp(void *ctx)
{
	return 0;
}

SEC("xdp")
int info_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("tc")
int info_tc(struct __sk_buff *skb)
{
	return 0; /* TC_ACT_OK */
}
