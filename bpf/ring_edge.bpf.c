// SPDX-License-Identifier: GPL-2.0
// Ring buffer edge cases for the consumer that reads the mapped ring
// (test/51.ring_buffer.edges.test.ts), all on a small ring so records wrap
// past the end of its data area often. SYSCALL programs run with
// BPF_PROG_TEST_RUN (Linux 5.14), bpf_loop (5.17):
// - produce_var: `count` records of varying length (2..1000 bytes, not all
//   multiples of 8), record seq holding the u64 words (seq << 16 | j),
//   cut to its length, written with bpf_ringbuf_output;
// - produce_discard: 40-byte records {seq, seq*3, ~seq, 7, 0xabcdef},
//   reserved and then discarded when seq % discard_every == 0, submitted
//   otherwise;
// - hold: reserves one 16-byte record {seq, 0}, keeps it reserved (busy)
//   until release[0] is set or hold_ns passed, then submits it.
// Failed reserves are counted in drops[0].
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024);
} edge SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} drops SEC(".maps");

struct scratch {
	__u64 w[125];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct scratch);
	__uint(max_entries, 1);
} scratch SEC(".maps");

// All u64, as in stream_test.bpf.c (bpf_loop compares all 64 bits of its count).
struct edge_args {
	__u64 start;
	__u64 count;
	__u64 discard_every;
	__u64 hold_ns;
};

struct rec40 {
	__u64 seq, triple, inv, seven, tag;
};

static void count_drop(void)
{
	__u32 zero = 0;
	__u64 *v = bpf_map_lookup_elem(&drops, &zero);

	if (v)
		__sync_fetch_and_add(v, 1);
}

// The length of record seq: 8 * (1 + seq % 125) - seq % 7, 2..1000 bytes.
static __u32 var_len(__u64 seq)
{
	__u32 words = (seq % 125) + 1;

	return words * 8 - (__u32)(seq % 7);
}

static long var_one(__u32 i, void *ctx)
{
	struct edge_args *a = ctx;
	__u64 seq = a->start + i;
	__u32 zero = 0;
	__u64 len = var_len(seq);
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);

	if (!s)
		return 1;
	for (int j = 0; j < 125; j++)
		s->w[j] = (seq << 16) | j;
	// Bounds the verifier can see (it does not follow var_len's arithmetic).
	asm volatile("" : "+r"(len));
	len &= 1023;
	if (len > 1000)
		len = 1000;
	if (bpf_ringbuf_output(&edge, s->w, len, 0))
		count_drop();
	return 0;
}

SEC("syscall")
int produce_var(struct edge_args *args)
{
	struct edge_args a = *args;

	return bpf_loop(a.count, var_one, &a, 0);
}

static long discard_one(__u32 i, void *ctx)
{
	struct edge_args *a = ctx;
	__u64 seq = a->start + i;
	struct rec40 *r = bpf_ringbuf_reserve(&edge, sizeof(*r), 0);

	if (!r) {
		count_drop();
		return 0;
	}
	r->seq = seq;
	r->triple = seq * 3;
	r->inv = ~seq;
	r->seven = 7;
	r->tag = 0xabcdef;
	if (a->discard_every && seq % a->discard_every == 0)
		bpf_ringbuf_discard(r, 0);
	else
		bpf_ringbuf_submit(r, 0);
	return 0;
}

SEC("syscall")
int produce_discard(struct edge_args *args)
{
	struct edge_args a = *args;

	return bpf_loop(a.count, discard_one, &a, 0);
}

// Set by the test when the held record may be committed: timing alone
// (a deadline) fails on a loaded machine, where the test can be
// descheduled for longer than any hold.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} release SEC(".maps");

static long wait_until(__u32 i, void *ctx)
{
	__u32 zero = 0;
	volatile __u64 *go = bpf_map_lookup_elem(&release, &zero);

	// 64 checks per bpf_loop step: 2^23 steps then hold for minutes at most
	for (int j = 0; j < 64; j++) {
		if ((go && *go) || bpf_ktime_get_ns() >= *(__u64 *)ctx)
			return 1;
	}
	return 0;
}

SEC("syscall")
int hold(struct edge_args *args)
{
	__u64 deadline = bpf_ktime_get_ns() + args->hold_ns;
	__u64 *r = bpf_ringbuf_reserve(&edge, 16, 0);

	if (!r) {
		count_drop();
		return 0;
	}
	r[0] = args->start;
	r[1] = 0;
	bpf_loop(1 << 23, wait_until, &deadline, 0);
	bpf_ringbuf_submit(r, 0);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
