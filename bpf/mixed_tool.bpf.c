// SPDX-License-Identifier: GPL-2.0
// An object shaped like the tools people start from (libbpf-bootstrap,
// libbpf-tools): one program libbpf attaches by its section (a tracepoint)
// next to programs whose sections name no target (tc, XDP, socket filter,
// perf event, cgroup, flow dissector, sk_skb/sk_msg, and kprobe, uprobe,
// USDT and raw_tp without a function, binary or probe). obj.attach() must
// attach the first and say, for each of the others, what to call instead.
// `counts`: [0] getppid() calls of process settings[0], [1] IPv4 ICMP echo
// requests seen by the tc program, [2] uprobe/USDT hits of process settings[0],
// [3] every other program.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#define ETH_P_IP 0x0800
#define ICMP_ECHO 8
#define TC_ACT_OK 0

enum { GETPPID, TC_ECHO, PROBE, OTHER, NCOUNTS };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, NCOUNTS);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 2);
} socks SEC(".maps");

static void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&counts, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static bool mine(void)
{
	__u32 key = 0;
	__u64 *pid = bpf_map_lookup_elem(&settings, &key);

	return pid && (!*pid || *pid == bpf_get_current_pid_tgid() >> 32);
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int handle_getppid(void *ctx)
{
	if (mine())
		count(GETPPID);
	return 0;
}

// Counts IPv4 ICMP echo requests (what ping sends) and lets every packet pass.
SEC("tc")
int tc_count_echo(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct icmphdr *icmp;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != 1 /* ICMP */)
		return TC_ACT_OK;
	icmp = (void *)ip + ip->ihl * 4;
	if ((void *)(icmp + 1) <= end && icmp->type == ICMP_ECHO)
		count(TC_ECHO);
	return TC_ACT_OK;
}

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	count(OTHER);
	return XDP_PASS;
}

SEC("socket")
int socket_count(struct __sk_buff *skb)
{
	count(OTHER);
	return skb->len;
}

SEC("perf_event")
int perf_sample(void *ctx)
{
	count(OTHER);
	return 0;
}

SEC("cgroup_skb/ingress")
int cgroup_count(struct __sk_buff *skb)
{
	count(OTHER);
	return 1;
}

SEC("flow_dissector")
int dissect(struct __sk_buff *skb)
{
	return BPF_OK;
}

SEC("sk_skb/stream_verdict")
int skb_verdict(struct __sk_buff *skb)
{
	return SK_PASS;
}

SEC("sk_msg")
int msg_verdict(struct sk_msg_md *msg)
{
	return SK_PASS;
}

SEC("kprobe")
int BPF_KPROBE(kprobe_any)
{
	count(OTHER);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(uprobe_any)
{
	if (mine())
		count(PROBE);
	return 0;
}

SEC("usdt")
int BPF_USDT(usdt_any)
{
	if (mine())
		count(PROBE);
	return 0;
}

// Off by default ("?": libbpf's autoload off); tests turn it on.
SEC("?ksyscall/getppid")
int ksyscall_getppid(void *ctx)
{
	if (mine())
		count(GETPPID);
	return 0;
}

SEC("raw_tp")
int raw_tp_any(void *ctx)
{
	count(OTHER);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
