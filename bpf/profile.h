// SPDX-License-Identifier: GPL-2.0
// What profile.bpf.c and offcpu.bpf.c share with their reader
// (examples/stacks.ts): the key of the counts map, and the maps. One entry per distinct
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

// The maps both programs fill, as the reader expects them (included after
// bpf_helpers.h). stacks: the kernel and user stacks, deduplicated; each
// entry preallocates 1 KiB, and the tool may resize it before load.
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MAX_STACK_DEPTH * sizeof(__u64));
	__uint(max_entries, 4096);
} stacks SEC(".maps");

// counts: samples (profile) or nanoseconds off CPU (offcpu) per key.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct stack_key);
	__type(value, __u64);
	__uint(max_entries, 10240);
} counts SEC(".maps");

// dropped: events that found the counts map full (user space reports them).
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} dropped SEC(".maps");

#endif
