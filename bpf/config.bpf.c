// SPDX-License-Identifier: GPL-2.0
// Object options under test: a map pinned by name (pinRoot decides where,
// and a second object reuses it), and a Kconfig extern (kconfig sets it).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int CONFIG_LIBBPF_NODE_VALUE __kconfig __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shared_counter SEC(".maps");

// Adds the Kconfig value to the shared counter and returns the Kconfig value.
// A socket filter, run with BPF_PROG_TEST_RUN (at least an Ethernet header
// of data).
SEC("socket")
int read_config(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&shared_counter, &key);

	if (v)
		__sync_fetch_and_add(v, CONFIG_LIBBPF_NODE_VALUE);
	return CONFIG_LIBBPF_NODE_VALUE;
}

char LICENSE[] SEC("license") = "GPL";
