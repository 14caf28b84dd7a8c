// The perf buffer benchmark's producer (bench/): every getppid() of the
// process whose tgid is in target[0] writes a 16-byte record to the perf
// event array, as bench/consumer.c (perf_buffer__poll) and
// bench/perfbuf.ts (PerfBuffer) consume it. Failed outputs (the CPU's
// buffer full) are counted in drops[0]; the consumers see them as lost too.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} target SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

struct record {
	__u64 seq;
	__u64 ts;
};

__u64 seq;

SEC("tracepoint/syscalls/sys_enter_getppid")
int perf_getppid(void *ctx)
{
	__u32 key = 0;
	__u64 *want = bpf_map_lookup_elem(&target, &key);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct record r;

	if (!want || *want != tgid)
		return 0;
	r.seq = __sync_fetch_and_add(&seq, 1);
	r.ts = bpf_ktime_get_ns();
	if (bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &r, sizeof(r))) {
		__u64 *d = bpf_map_lookup_elem(&drops, &key);

		if (d)
			__sync_fetch_and_add(d, 1);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
