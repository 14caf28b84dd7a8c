// SPDX-License-Identifier: GPL-2.0
// Off-CPU time by stack (the way bcc's and libbpf-tools' `offcputime`
// work): at sched_switch the task leaving the CPU (still `current`) has its
// stacks taken and a timestamp stored; when it is switched in again, the
// time it spent off CPU is added to the counts entry of those stacks.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "profile.h"

// Configuration, set before load: 0 = every process.
const volatile __u32 target_tgid = 0;
const volatile bool user_stacks_only = false;
const volatile bool kernel_stacks_only = false;
// Off-CPU spells outside [min_ns, max_ns] are not counted.
const volatile __u64 min_ns = 1;
const volatile __u64 max_ns = ~0ULL;

// include/linux/sched.h (a macro, so not in vmlinux.h)
#define PF_KTHREAD 0x00200000

struct start_t {
	__u64 ts;
	struct stack_key key;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct start_t);
	__uint(max_entries, 10240);
} start SEC(".maps");

// The maps stacks, counts and dropped: profile.h.

static __always_inline bool wanted(struct task_struct *t)
{
	// Kernel threads have no user stack: skipped when only user stacks are wanted.
	if (user_stacks_only && (t->flags & PF_KTHREAD))
		return false;
	return t->pid != 0 && (!target_tgid || t->tgid == target_tgid);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 pid = prev->pid, zero = 0;
	struct start_t s = {}, *sp;
	__u64 now = bpf_ktime_get_ns(), delta, *val;

	if (wanted(prev)) {
		s.ts = now;
		s.key.pid = pid;
		s.key.tgid = prev->tgid;
		bpf_probe_read_kernel_str(&s.key.comm, sizeof(s.key.comm), prev->comm);
		// prev is still current here: its stacks are the ones that block.
		s.key.kstack = user_stacks_only ? -1 : bpf_get_stackid(ctx, &stacks, 0);
		s.key.ustack = kernel_stacks_only ? -1 : bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
		bpf_map_update_elem(&start, &pid, &s, BPF_ANY);
	}

	pid = next->pid;
	sp = bpf_map_lookup_elem(&start, &pid);
	if (!sp)
		return 0;
	delta = now - sp->ts;
	if (delta >= min_ns && delta <= max_ns) {
		val = bpf_map_lookup_elem(&counts, &sp->key);
		if (val) {
			__sync_fetch_and_add(val, delta);
		} else if (bpf_map_update_elem(&counts, &sp->key, &delta, BPF_NOEXIST)) {
			val = bpf_map_lookup_elem(&counts, &sp->key);
			if (val)
				__sync_fetch_and_add(val, delta);
			else if ((val = bpf_map_lookup_elem(&dropped, &zero)))
				__sync_fetch_and_add(val, 1);
		}
	}
	bpf_map_delete_elem(&start, &pid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
