// SPDX-License-Identifier: GPL-2.0
// Compiles, but the verifier must reject it: the map value is dereferenced
// without the NULL check, so the log ends with "invalid mem access
// 'map_value_or_null'". A hash map: recent verifiers know that an array
// lookup with a constant in-range key cannot miss.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 4);
} values SEC(".maps");

SEC("socket")
int ok_prog(struct __sk_buff *skb)
{
	return 0;
}

SEC("socket")
int unchecked_lookup(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&values, &key);

	return *v;
}

char LICENSE[] SEC("license") = "GPL";
