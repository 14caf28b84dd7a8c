// SPDX-License-Identifier: GPL-2.0
// A program the verifier rejects after walking 80,000 instructions: its log
// overflows the first 1 MiB buffer on every kernel (Linux 5.10 logs about
// 19 bytes an instruction, newer kernels add the registers' state), so
// loading the object tests that the library re-opens it with a larger
// buffer and reports the whole log.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 4);
} values SEC(".maps");

#define X10(s) s s s s s s s s s s
#define X10000(s) X10(X10(X10(X10(s))))

SEC("socket")
int long_then_bad(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *v;

	X10000(asm volatile("r1 = 0" ::: "r1"); asm volatile("r1 = 0" ::: "r1");
	       asm volatile("r1 = 0" ::: "r1"); asm volatile("r1 = 0" ::: "r1");
	       asm volatile("r1 = 0" ::: "r1"); asm volatile("r1 = 0" ::: "r1");
	       asm volatile("r1 = 0" ::: "r1"); asm volatile("r1 = 0" ::: "r1");)
	v = bpf_map_lookup_elem(&values, &key);
	return *v; /* no NULL check: rejected */
}

char LICENSE[] SEC("license") = "GPL";
