// SPDX-License-Identifier: GPL-2.0
// The kernel side of test/52.user_ring_buffer: user space writes requests
// into a BPF_MAP_TYPE_USER_RINGBUF (Linux 6.1), and the SYSCALL program
// `drain` (run through BPF_PROG_TEST_RUN) takes every committed sample with
// bpf_user_ringbuf_drain(), counting samples and bytes and summing the
// requests' values, so the test can check exactly what arrived.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct urb_request {
	__u32 kind;
	__u32 len;
	__u64 value;
	char tag[8];
};

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 4096);
} requests SEC(".maps");

// What the drains saw, read by the test through obj.globals('.bss').
__u64 samples;        // every sample drained
__u64 short_samples;  // those shorter than struct urb_request
__u64 value_sum;      // sum of request.value
__u64 kind_sum;       // sum of request.kind
char last_tag[8];     // the tag of the last full request
// A type the program only receives: kept in BTF for { type: 'struct urb_request' }.
struct urb_request request_type_anchor;

static long on_sample(struct bpf_dynptr *sample, void *ctx)
{
	struct urb_request req;

	samples++;
	if (bpf_dynptr_read(&req, sizeof(req), sample, 0, 0)) {
		short_samples++;
		return 0;
	}
	value_sum += req.value;
	kind_sum += req.kind;
	__builtin_memcpy(last_tag, req.tag, sizeof(last_tag));
	return 0;
}

// Returns how many samples this run drained (or the helper's -errno).
SEC("syscall")
int drain(void *ctx)
{
	return bpf_user_ringbuf_drain(&requests, on_sample, NULL, 0);
}

char LICENSE[] SEC("license") = "GPL";
