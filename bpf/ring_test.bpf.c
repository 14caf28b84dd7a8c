// SPDX-License-Identifier: GPL-2.0
// A ring buffer fed by a tracepoint (ring buffers: Linux 5.8): ring_getppid
// writes a record {tgid, cpu, seq} into `ring` for every getppid() call of
// process settings[0]; seq counts that process's calls from 0. Failed
// reserves are counted in drops[0].
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} ring SEC(".maps");

// [0]: the process whose calls are recorded.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} settings SEC(".maps");

// [0]: failed reserves; [1]: the next seq.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 2);
} counters SEC(".maps");

struct record {
	__u32 tgid;
	__u32 cpu;
	__u64 seq;
};

SEC("tracepoint/syscalls/sys_enter_getppid")
int ring_getppid(void *ctx)
{
	__u32 key = 0, next = 1;
	__u64 *target = bpf_map_lookup_elem(&settings, &key);
	__u64 *drops = bpf_map_lookup_elem(&counters, &key);
	__u64 *seq = bpf_map_lookup_elem(&counters, &next);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct record *r;

	if (!target || !drops || !seq || *target != tgid)
		return 0;
	r = bpf_ringbuf_reserve(&ring, sizeof(*r), 0);
	if (!r) {
		__sync_fetch_and_add(drops, 1);
		return 0;
	}
	r->tgid = tgid;
	r->cpu = bpf_get_smp_processor_id();
	/* the calls of one process: a plain increment (a fetch-add needs 5.12) */
	r->seq = (*seq)++;
	bpf_ringbuf_submit(r, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
