// SPDX-License-Identifier: GPL-2.0
// What profile.bpf.c and offcpu.bpf.c share with their reader
// (examples/stacks.ts): the key of the counts map. One entry per distinct
// (thread, kernel stack, user stack); the value is a u64 (samples for the
// profiler, nanoseconds off CPU for offcpu). A stack id below 0 is the
// -errno bpf_get_stackid() returned (-EFAULT: no user stack, as for kernel
// threads; -EEXIST/-ENOMEM: the stack map was full).
#ifndef PROFILE_H
#define PROFILE_H

#define TASK_COMM_LEN 16
// PERF_MAX_STACK_DEPTH: the kernel's default limit of frames per stack.
#define MAX_STACK_DEPTH 127

struct stack_key {
	__u32 pid;	/* the thread (kernel pid) */
	__u32 tgid;	/* the process */
	__s32 kstack;	/* kernel stack id in `stacks`, or -errno */
	__s32 ustack;	/* user stack id in `stacks`, or -errno */
	char comm[TASK_COMM_LEN];
};

#endif
