// SPDX-License-Identifier: GPL-2.0
// A netfilter program (BPF_PROG_TYPE_NETFILTER, Linux 6.4) for
// test/78.attach.netfilter: counts the IPv4 UDP datagrams to one port (set
// by the test in `port`, so that other traffic on lo does not count) and
// their payload bytes, and always accepts.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define NF_ACCEPT 1

__u16 port;       // host order; 0 counts nothing
__u64 packets;    // datagrams to `port` seen
__u64 bytes;      // their UDP payload bytes
__u64 hook_calls; // every packet the hook saw (any protocol)

SEC("netfilter")
int count_udp(struct bpf_nf_ctx *ctx)
{
	struct sk_buff *skb = ctx->skb;
	struct iphdr iph;
	struct udphdr udph;
	unsigned char *ip;

	__sync_fetch_and_add(&hook_calls, 1);
	if (port == 0)
		return NF_ACCEPT;
	// The packet's bytes are read by address: at local_in the network
	// header is set, and the UDP header follows the IPv4 options.
	ip = skb->head + skb->network_header;
	if (bpf_probe_read_kernel(&iph, sizeof(iph), ip) || iph.version != 4 || iph.protocol != IPPROTO_UDP)
		return NF_ACCEPT;
	if (bpf_probe_read_kernel(&udph, sizeof(udph), ip + iph.ihl * 4))
		return NF_ACCEPT;
	if (udph.dest != bpf_htons(port))
		return NF_ACCEPT;
	__sync_fetch_and_add(&packets, 1);
	__sync_fetch_and_add(&bytes, bpf_ntohs(udph.len) - sizeof(udph));
	return NF_ACCEPT;
}

char LICENSE[] SEC("license") = "GPL";
