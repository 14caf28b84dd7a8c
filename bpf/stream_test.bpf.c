// SPDX-License-Identifier: GPL-2.0
// Ring buffer producers for the streaming tests and benchmarks.
// - produce (SEC("syscall"), run with BPF_PROG_TEST_RUN): writes `count`
//   records {seq, ring} with consecutive sequence numbers into ring_a or
//   ring_b, using bpf_loop; failed reserves are counted in drops[0].
//   SYSCALL programs need Linux 5.14, bpf_loop 5.17.
// - ring_getppid: a 16-byte ring record {tgid, seq} per getppid() call of
//   process `config[0]` (the tracepoint producer of the benchmark); failed
//   reserves are counted in drops[2].
// The perf buffer producer is in perf_test.bpf.c, a ring buffer producer
// for older kernels in ring_test.bpf.c.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} ring_a SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} ring_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 4);
} drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 4);
} config SEC(".maps");

// All u64: clang passes a u32 count to bpf_loop in a 64-bit register whose
// upper half is the next field, and the verifier's inlined bpf_loop
// compares all 64 bits against its limit (E2BIG).
struct produce_args {
	__u64 start;
	__u64 count;
	__u64 ring;
	__u64 wakeup_every;	/* 0: the kernel's adaptive wakeups; N: one wakeup per N records */
};

struct record {
	__u64 seq;
	__u64 ring;
};

static void count_drop(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&drops, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static long produce_one(__u32 i, void *ctx)
{
	struct produce_args *a = ctx;
	struct record *r;

	if (a->ring)
		r = bpf_ringbuf_reserve(&ring_b, sizeof(*r), 0);
	else
		r = bpf_ringbuf_reserve(&ring_a, sizeof(*r), 0);
	if (!r) {
		count_drop(0);
		return 0;
	}
	r->seq = a->start + i;
	r->ring = a->ring;
	if (!a->wakeup_every)
		bpf_ringbuf_submit(r, 0);
	else if ((a->start + i + 1) % a->wakeup_every == 0)
		bpf_ringbuf_submit(r, BPF_RB_FORCE_WAKEUP);
	else
		bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
	return 0;
}

SEC("syscall")
int produce(struct produce_args *args)
{
	struct produce_args a = *args;

	return bpf_loop(a.count, produce_one, &a, 0);
}

// A typical 64-byte event, for the decoding benchmark (in BTF through the
// produce64 program's use of it as a map value type below).
struct event64 {
	__u64 ts;
	__u32 pid;
	__u32 tid;
	__u32 cpu;
	__s32 ret;
	char comm[16];
	__u64 a, b, c;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct event64);
	__uint(max_entries, 1);
} event64_template SEC(".maps");

static long produce64_one(__u32 i, void *ctx)
{
	__u32 zero = 0;
	struct event64 *t = bpf_map_lookup_elem(&event64_template, &zero);
	struct event64 *e;

	if (!t)
		return 1;
	e = bpf_ringbuf_reserve(&ring_a, sizeof(*e), 0);
	if (!e) {
		count_drop(0);
		return 0;
	}
	__builtin_memcpy(e, t, sizeof(*e));
	e->ts = bpf_ktime_get_ns();
	e->a = i;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

// Writes `count` struct event64 records (a copy of event64_template) into ring_a.
SEC("syscall")
int produce64(struct produce_args *args)
{
	return bpf_loop(args->count, produce64_one, 0, 0);
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int ring_getppid(void *ctx)
{
	__u32 key = 0;
	__u64 *target = bpf_map_lookup_elem(&config, &key);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct record *r;

	if (!target || *target != tgid)
		return 0;
	r = bpf_ringbuf_reserve(&ring_a, sizeof(*r), 0);
	if (!r) {
		count_drop(2);
		return 0;
	}
	r->seq = tgid;
	r->ring = bpf_ktime_get_ns();
	bpf_ringbuf_submit(r, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
