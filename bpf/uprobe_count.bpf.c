// SPDX-License-Identifier: GPL-2.0
// Counts calls to whatever function the program is attached to (a uprobe),
// in `calls` (.bss), for one process when attached with a pid.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u64 calls = 0;

SEC("uprobe")
int count_calls(void *ctx)
{
	__sync_fetch_and_add(&calls, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
