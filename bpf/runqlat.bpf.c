// SPDX-License-Identifier: GPL-2.0
// Run queue latency (like bcc's runqlat): the time from a task's wakeup to
// its running, in a log2 histogram of microseconds.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define MAX_SLOTS 26

struct hist {
	__u32 slots[MAX_SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 10240);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct hist);
	__uint(max_entries, 1);
} hists SEC(".maps");

static __always_inline __u64 log2(__u32 v)
{
	__u32 shift, r;

	r = (v > 0xFFFF) << 4; v >>= r;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

static __always_inline __u64 log2l(__u64 v)
{
	__u32 hi = v >> 32;

	return hi ? log2(hi) + 32 : log2(v);
}

static int enqueue(struct task_struct *p)
{
	__u32 pid = p->pid;
	__u64 ts = bpf_ktime_get_ns();

	if (pid)
		bpf_map_update_elem(&start, &pid, &ts, BPF_ANY);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup, struct task_struct *p)
{
	return enqueue(p);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new, struct task_struct *p)
{
	return enqueue(p);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 pid = next->pid, zero = 0;
	__u64 *tsp, slot;
	struct hist *h;

	tsp = bpf_map_lookup_elem(&start, &pid);
	if (!tsp)
		return 0;
	slot = log2l((bpf_ktime_get_ns() - *tsp) / 1000);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	h = bpf_map_lookup_elem(&hists, &zero);
	if (h)
		__sync_fetch_and_add(&h->slots[slot], 1);
	bpf_map_delete_elem(&start, &pid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
