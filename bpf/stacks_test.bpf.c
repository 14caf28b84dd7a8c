/* SPDX-License-Identifier: GPL-2.0 */
/* Stacks for test/26 and test/27: kernel and user stack ids of one process
 * (target_tgid) in a stack-trace map, from a syscall tracepoint and from a
 * perf event (CPU-clock samples); and the same stacks copied by
 * bpf_get_stack() into ring buffer records. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define DEPTH 64

const volatile __u32 target_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, DEPTH * sizeof(__u64));
	__uint(max_entries, 1024);
} stacks SEC(".maps");

/* a stack seen: its kernel and user stack ids (negative: the errno of bpf_get_stackid) */
struct stack_key {
	__s32 kstack;
	__s32 ustack;
};

/* samples per (kernel stack, user stack), from either program */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct stack_key);
	__type(value, __u64);
	__uint(max_entries, 1024);
} counts SEC(".maps");

/* the record of one getppid(): both stacks as bpf_get_stack() wrote them */
struct stack_event {
	__u32 pid;
	__s32 kstack_bytes;
	__s32 ustack_bytes;
	__u32 pad;
	__u64 kstack[DEPTH];
	__u64 ustack[DEPTH];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

__u64 tracepoint_calls = 0;
__u64 perf_samples = 0;

static __always_inline void count(void *ctx)
{
	struct stack_key key = {
		.kstack = bpf_get_stackid(ctx, &stacks, 0),
		.ustack = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK),
	};
	__u64 one = 1, *n;

	n = bpf_map_lookup_elem(&counts, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int stack_getppid(void *ctx)
{
	struct stack_event *e;

	if (bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	__sync_fetch_and_add(&tracepoint_calls, 1);
	count(ctx);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = target_tgid;
	e->pad = 0;
	/* bpf_get_stack() returns the bytes it wrote (or -errno); past them
	 * the record holds what the ring held before: user space reads only
	 * the bytes written. */
	e->kstack_bytes = bpf_get_stack(ctx, e->kstack, sizeof(e->kstack), 0);
	e->ustack_bytes = bpf_get_stack(ctx, e->ustack, sizeof(e->ustack), BPF_F_USER_STACK);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("perf_event")
int stack_sample(void *ctx)
{
	if (bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	__sync_fetch_and_add(&perf_samples, 1);
	count(ctx);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
