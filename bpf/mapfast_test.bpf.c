// SPDX-License-Identifier: GPL-2.0
// Maps for the batch and memory tests (test/23, test/24) and bench/maps.ts:
// - counts (hash u32 -> struct hit) and slots (array u32 -> u64), filled by
//   `fill` so that batch reads see values the kernel wrote;
// - shared (array u32 -> u64, BPF_F_MMAPABLE): `fill` writes it, and `echo`
//   copies shared[0] * 2 into shared[1] and into `seen` (a value user space
//   wrote through map.memory(), as a BPF program read it);
// - .bss `ticks`, also mmapable (global data), bumped by `fill`;
// - bench_array, bench_hash: u32 -> u64 for bench/maps.ts.
// Socket filters, run with BPF_PROG_TEST_RUN on a dummy frame (a socket
// filter loads on every kernel we test; SEC("syscall") needs 5.14).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define FILL_N 64

struct hit {
	__u64 count;
	__u32 pid;
	__u32 flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct hit);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FILL_N);
	__type(key, __u32);
	__type(value, __u64);
} slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} shared SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

// For bench/maps.ts: typed (BTF u32 -> u64) twins of the C bench's maps.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} bench_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} bench_hash SEC(".maps");

__u64 ticks = 0;

SEC("socket")
int fill(struct __sk_buff *skb)
{
	for (__u32 i = 0; i < FILL_N; i++) {
		struct hit h = { .count = i * 10 + 1, .pid = 1000 + i, .flags = i & 3 };
		__u64 v = (__u64)i * i + 7;
		__u32 k = i;

		bpf_map_update_elem(&counts, &k, &h, BPF_ANY);
		bpf_map_update_elem(&slots, &k, &v, BPF_ANY);
		if (i < 16) {
			__u64 *p = bpf_map_lookup_elem(&shared, &k);

			if (p)
				*p = 0x1000 + i;
		}
	}
	ticks++;
	return 0;
}

SEC("socket")
int echo(struct __sk_buff *skb)
{
	__u32 k0 = 0, k1 = 1;
	__u64 *a = bpf_map_lookup_elem(&shared, &k0);
	__u64 *b = bpf_map_lookup_elem(&shared, &k1);

	if (!a || !b)
		return 1;
	*b = *a * 2;
	bpf_map_update_elem(&seen, &k0, a, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
