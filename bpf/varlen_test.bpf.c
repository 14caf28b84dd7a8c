// SPDX-License-Identifier: GPL-2.0
// Variable-length records as tools send them: for each getppid() of process
// targ_tgid, a struct event (varlen.h) whose first lens[seq % 8] bytes are
// sent, through the ring buffer `rb` and the perf buffer `pb` alike. A length
// short of the text's offset cuts a fixed field; one past it sends part of
// the text (text is the NUL-terminated string `text`). Records neither
// could take are counted in `dropped`.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "varlen.h"

#define RECORD_MAX (sizeof(struct event) + VARLEN_MAX_TEXT)

const volatile __u32 targ_tgid = 0;
const volatile __u32 lens[8] = {};
// In .data, not .rodata: clang folds a copy out of a const array into
// stores of its initial zeros, volatile or not, once the cast drops it.
char text[VARLEN_MAX_TEXT] = "(set before load)";

__u32 seq = 0;
__u64 dropped = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} pb SEC(".maps");

// Room for one record, sized rather than typed so that struct event stays
// out of this object's BTF.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, RECORD_MAX);
} scratch SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int varlen_getppid(void *ctx)
{
	__u32 zero = 0, tgid = bpf_get_current_pid_tgid() >> 32;
	struct event *e;
	__u32 i, len;

	if (tgid != targ_tgid)
		return 0;
	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	i = seq++;
	e->seq = i;
	e->flags = 0xa5;
	e->pid = tgid;
	e->nr = 0x100000000ULL + i;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	__builtin_memcpy(e->text, text, VARLEN_MAX_TEXT);
	len = lens[i & 7];
	if (len > RECORD_MAX)
		len = RECORD_MAX;
	if (bpf_ringbuf_output(&rb, e, len, 0))
		__sync_fetch_and_add(&dropped, 1);
	bpf_perf_event_output(ctx, &pb, BPF_F_CURRENT_CPU, e, len);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
