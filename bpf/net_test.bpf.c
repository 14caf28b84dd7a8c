// SPDX-License-Identifier: GPL-2.0
// Networking programs for the attach tests. The UDP filters drop datagrams
// to port DROP_PORT and let every other packet pass; each counts what it
// saw in `pkts`: [slot*2] passed, [slot*2+1] dropped.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define DROP_PORT 7777

enum slot { XDP, TC, CGROUP, SK_LOOKUP, NSLOTS };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, NSLOTS * 2);
} pkts SEC(".maps");

// Bytes sent through sockets in `sockets` (sk_msg).
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 2);
} msg_bytes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u64));
	__uint(max_entries, 4);
} sockets SEC(".maps");

static void count(enum slot s, int dropped)
{
	__u32 key = s * 2 + dropped;
	__u64 *v = bpf_map_lookup_elem(&pkts, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

// The UDP destination port of an Ethernet frame, or 0.
static __u16 udp_dport(void *data, void *end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_UDP)
		return 0;
	udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > end)
		return 0;
	return bpf_ntohs(udp->dest);
}

SEC("xdp")
int xdp_filter(struct xdp_md *ctx)
{
	int drop = udp_dport((void *)(long)ctx->data, (void *)(long)ctx->data_end) == DROP_PORT;

	count(XDP, drop);
	return drop ? XDP_DROP : XDP_PASS;
}

SEC("tc")
int tc_filter(struct __sk_buff *skb)
{
	int drop = udp_dport((void *)(long)skb->data, (void *)(long)skb->data_end) == DROP_PORT;

	count(TC, drop);
	return drop ? TC_ACT_SHOT : TC_ACT_OK;
}

// cgroup skb programs see the IP header first (no Ethernet header).
SEC("cgroup_skb/egress")
int cgroup_filter(struct __sk_buff *skb)
{
	struct iphdr ip;
	struct udphdr udp;
	int drop = 0;

	if (skb->protocol == bpf_htons(ETH_P_IP) && !bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) &&
	    ip.protocol == IPPROTO_UDP && !bpf_skb_load_bytes(skb, ip.ihl * 4, &udp, sizeof(udp)))
		drop = bpf_ntohs(udp.dest) == DROP_PORT;
	count(CGROUP, drop);
	return !drop;
}

SEC("sk_lookup")
int lookup_filter(struct bpf_sk_lookup *ctx)
{
	int drop = ctx->protocol == IPPROTO_UDP && ctx->local_port == DROP_PORT;

	count(SK_LOOKUP, drop);
	return drop ? SK_DROP : SK_PASS;
}

SEC("sk_msg")
int count_msg(struct sk_msg_md *msg)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&msg_bytes, &key);

	if (v)
		__sync_fetch_and_add(v, msg->size);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
