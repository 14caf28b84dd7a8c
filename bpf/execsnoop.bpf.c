// SPDX-License-Identifier: GPL-2.0
// execsnoop, the way libbpf-tools' tool works (our own code): execve()'s
// entry stores pid, parent, uid and the arguments (NUL-separated, at most
// max_args) in a struct event (execsnoop.h) kept per thread; its exit adds
// the return value and the new command name and sends only the used part of
// the record, sizeof(*e) - FULL_MAX_ARGS_ARR + args_size bytes, through the
// ring buffer `events`. Records the ring has no room for are counted in
// `dropped`: a ring buffer has no lost-record notice, only the producer
// sees a failed output.
//
// struct event is only in the header: the maps are sized, not typed, so the
// type is not in this object's BTF (execsnoop_types.bpf.o carries it).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "execsnoop.h"

const volatile int max_args = DEFAULT_MAXARGS;

__u64 dropped = 0;

// The record of each thread inside execve(), by thread id. Not
// preallocated: 7.7 KB a record.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct event));
	__uint(map_flags, BPF_F_NO_PREALLOC);
} execs SEC(".maps");

// Zeros to start each record from (never written).
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct event));
} blank SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

SEC("tp/syscalls/sys_enter_execve")
int enter_execve(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, zero = 0;
	const char **argv = (const char **)ctx->args[1];
	struct task_struct *task;
	unsigned int size;
	const char *argp;
	struct event *e;
	void *zeros;
	int ret, i, count;

	zeros = bpf_map_lookup_elem(&blank, &zero);
	if (!zeros || bpf_map_update_elem(&execs, &tid, zeros, BPF_NOEXIST))
		return 0;
	e = bpf_map_lookup_elem(&execs, &tid);
	if (!e)
		return 0;
	e->pid = id >> 32;
	task = (struct task_struct *)bpf_get_current_task();
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (__u32)bpf_get_current_uid_gid();

	// the file name first, then argv[1..] (argv[0] usually repeats it)
	ret = bpf_probe_read_user_str(e->args, ARGSIZE, (const char *)ctx->args[0]);
	if (ret < 0 || ret > ARGSIZE)
		return 0;
	size = ret;
	count = 1;
	for (i = 1; i < TOTAL_MAX_ARGS && i < max_args; i++) {
		if (bpf_probe_read_user(&argp, sizeof(argp), &argv[i]) || !argp)
			break;
		if (size > LAST_ARG)
			break;
		ret = bpf_probe_read_user_str(&e->args[size], ARGSIZE, argp);
		if (ret < 0 || ret > ARGSIZE)
			break;
		size += ret;
		count++;
	}
	e->args_count = count;
	e->args_size = size;
	return 0;
}

SEC("tp/syscalls/sys_exit_execve")
int exit_execve(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct event *e = bpf_map_lookup_elem(&execs, &tid);
	unsigned int len;

	if (!e)
		return 0;
	e->retval = ctx->ret;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	len = sizeof(*e) - FULL_MAX_ARGS_ARR + e->args_size;
	if (len <= sizeof(*e) && bpf_ringbuf_output(&events, e, len, 0))
		__sync_fetch_and_add(&dropped, 1);
	bpf_map_delete_elem(&execs, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
