// SPDX-License-Identifier: GPL-2.0
// The socket filter of the kernel's samples/bpf/sock_example.c, in
// restricted C: count packets per IP protocol in an array map keyed by the
// protocol number. The program returns 0, so the socket itself receives
// nothing; only the counts matter.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>

// LD_ABS, as BPF_LD_ABS(BPF_B, ...) in the hand-written form.
unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 256);
} counts SEC(".maps");

SEC("socket")
int count_packets(struct __sk_buff *skb)
{
	__u32 proto = load_byte(skb, ETH_HLEN + offsetof(struct iphdr, protocol));
	__u64 *value = bpf_map_lookup_elem(&counts, &proto);

	if (value)
		__sync_fetch_and_add(value, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
