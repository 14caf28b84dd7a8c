// SPDX-License-Identifier: GPL-2.0
// The perf buffer producer: perf_getppid writes a sample {cpu, tgid, seq}
// into the perf buffer of the CPU it runs on for every getppid() call of
// any process; seq counts the samples of each CPU (from 0). Failed outputs
// are counted in drops[0].
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} drops SEC(".maps");

// The next seq of each CPU. Per CPU, a plain increment: a tracepoint
// program does not run twice at once on one CPU (and an atomic fetch-add
// needs Linux 5.12).
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} seqs SEC(".maps");

struct perf_sample {
	__u32 cpu;
	__u32 tgid;
	__u64 seq;
};

SEC("tracepoint/syscalls/sys_enter_getppid")
int perf_getppid(void *ctx)
{
	__u32 zero = 0;
	__u64 *seq = bpf_map_lookup_elem(&seqs, &zero);
	__u64 *dropped;
	struct perf_sample s = {
		.cpu = bpf_get_smp_processor_id(),
		.tgid = bpf_get_current_pid_tgid() >> 32,
	};

	if (!seq)
		return 0;
	s.seq = (*seq)++;
	if (bpf_perf_event_output(ctx, &perf_events, BPF_F_CURRENT_CPU, &s, sizeof(s))) {
		dropped = bpf_map_lookup_elem(&drops, &zero);
		if (dropped)
			__sync_fetch_and_add(dropped, 1);
	}
	return 0;
}

// BPF_PROG_TEST_RUN with ctx = { u64 count } (a raw tracepoint's
// arguments): writes min(count, 1024) samples {cpu, tgid, seq = 0, 1, ...}
// into this CPU's buffer and returns how many fit. Also a program the
// verifier takes a while over (a 1,024-iteration loop).
SEC("raw_tp")
int perf_burst(__u64 *ctx)
{
	__u64 n = ctx[0];
	int i, written = 0;

	for (i = 0; i < 1024 && i < n; i++) {
		struct perf_sample s = {
			.cpu = bpf_get_smp_processor_id(),
			.tgid = bpf_get_current_pid_tgid() >> 32,
			.seq = i,
		};

		if (bpf_perf_event_output(ctx, &perf_events, BPF_F_CURRENT_CPU, &s, sizeof(s)) == 0)
			written++;
	}
	return written;
}

char LICENSE[] SEC("license") = "GPL";
