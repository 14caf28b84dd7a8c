// SPDX-License-Identifier: GPL-2.0
// A BPF_PROG_TYPE_SYSCALL program (Linux 5.14), run only through
// BPF_PROG_TEST_RUN (no data, no repeat): bump adds one to slot 0 of
// `counter` and returns the new value.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} counter SEC(".maps");

SEC("syscall")
int bump(void *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&counter, &key);

	if (!v)
		return -1;
	*v += 1;
	return *v;
}

char LICENSE[] SEC("license") = "GPL";
