// SPDX-License-Identifier: GPL-2.0
// A CPU profiler (the way bcc's and libbpf-tools' `profile` work): a
// perf_event program, attached to a software cpu-clock event on every CPU
// at some frequency, counts each sample under the key (thread, comm,
// kernel stack id, user stack id). Stacks are kept, deduplicated, in a
// stack trace map; user space reads both maps at the end and symbolizes.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "profile.h"

// Configuration, set before load: 0 = every process.
const volatile __u32 target_tgid = 0;
// Skip the kernel or the user half (bcc's -U / -K).
const volatile bool user_stacks_only = false;
const volatile bool kernel_stacks_only = false;
// Count the idle task (pid 0) too; bcc leaves it out unless -I.
const volatile bool include_idle = false;

// The maps stacks, counts and dropped: profile.h.

SEC("perf_event")
int do_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, pid = id, zero = 0;
	struct stack_key key = {};
	__u64 one = 1, *val;

	if (!include_idle && pid == 0)
		return 0;
	if (target_tgid && tgid != target_tgid)
		return 0;
	key.pid = pid;
	key.tgid = tgid;
	bpf_get_current_comm(&key.comm, sizeof(key.comm));
	key.kstack = user_stacks_only ? -1 : bpf_get_stackid(ctx, &stacks, 0);
	key.ustack = kernel_stacks_only ? -1 : bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);

	val = bpf_map_lookup_elem(&counts, &key);
	if (val) {
		__sync_fetch_and_add(val, 1);
	} else if (bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST)) {
		// Another CPU may have created it meanwhile.
		val = bpf_map_lookup_elem(&counts, &key);
		if (val)
			__sync_fetch_and_add(val, 1);
		else if ((val = bpf_map_lookup_elem(&dropped, &zero)))
			__sync_fetch_and_add(val, 1);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
