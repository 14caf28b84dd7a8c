// SPDX-License-Identifier: GPL-2.0
// Global variables in every data section: configuration in .rodata (set
// before load), counters in .bss and .data (read live after load).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 targ_tgid = 0;	/* 0: every process */
const volatile char label[8] = "none";
const volatile __s16 step = 1;

__u64 calls = 0;
__u32 last_tgid = 0;

int data_counter = 5;
struct {
	__u32 a;
	__u16 b;
} pair = { 1, 2 };

__u64 custom_hits SEC(".data.custom") = 100;

SEC("tp/syscalls/sys_enter_getppid")
int count_getppid(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (targ_tgid && tgid != targ_tgid)
		return 0;
	calls++;
	last_tgid = tgid;
	data_counter += step;
	custom_hits++;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
