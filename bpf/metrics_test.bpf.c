// SPDX-License-Identifier: GPL-2.0
// Maps for the metrics export tests (test/98), filled by a socket filter run
// with BPF_PROG_TEST_RUN so the kernel files known packets: a log2
// histogram of packet lengths per "class" (the first byte after the
// Ethernet header) that also keeps the exact sum, and per-CPU packet
// counters per class. Loads on Linux 5.10 (no vmlinux.h needed).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_SLOTS 16
#define MAX_CLASSES 8

struct len_hist {
	__u64 slots[MAX_SLOTS];
	__u64 sum;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct len_hist);
	__uint(max_entries, MAX_CLASSES);
} len_hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, MAX_CLASSES);
} packets SEC(".maps");

// The slot of v as bcc's log2l() files it: floor(log2(v)), 0 for 0 and 1.
static __always_inline __u32 log2_slot(__u32 v)
{
	__u32 r = 0;

#pragma unroll
	for (int i = 16; i > 0; i >>= 1) {
		if (v >= (1u << i)) {
			v >>= i;
			r += i;
		}
	}
	return r;
}

SEC("socket")
int file_len(struct __sk_buff *skb)
{
	static const struct len_hist zero;
	__u8 class = 0;
	__u32 key, slot;
	struct len_hist *h;
	__u64 *n;

	if (bpf_skb_load_bytes(skb, 0, &class, 1))
		return 0;
	key = class % MAX_CLASSES;
	n = bpf_map_lookup_elem(&packets, &key);
	if (n)
		*n += 1;
	h = bpf_map_lookup_elem(&len_hists, &key);
	if (!h) {
		bpf_map_update_elem(&len_hists, &key, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&len_hists, &key);
		if (!h)
			return 0;
	}
	slot = log2_slot(skb->len);
	// The last slot also counts everything longer (as libbpf-tools clamp).
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	__sync_fetch_and_add(&h->slots[slot], 1);
	__sync_fetch_and_add(&h->sum, skb->len);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
