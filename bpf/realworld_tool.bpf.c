/* SPDX-License-Identifier: GPL-2.0 */
/* Maps declared the way copied tools (libbpf-tools, libbpf-bootstrap)
 * declare them: a stack-trace map whose value size the loader sets, a map
 * without max_entries, a cgroup array, a prog array, arrays and hashes of
 * maps (one without an inner template), a bloom filter. The object's name is
 * long enough for libbpf to truncate it in its internal maps' names
 * ("realworl.rodata"). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define MAX_STACK_DEPTH 127

const volatile __u32 target_tgid = 0;
__u64 stack_calls = 0;

/* value_size: MAX_STACK_DEPTH * 8, set before load (profile.c style) */
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__type(key, __u32);
} stackmap SEC(".maps");

/* max_entries: set before load */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __s64);
} stack_ids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, 2);
} cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, 4);
} jmp_table SEC(".maps");

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 4);
} inner_a SEC(".maps"), inner_b SEC(".maps");

/* an array of maps with its inner template and initial contents */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer_array SEC(".maps") = {
	.values = { &inner_a, &inner_b },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner);
} outer_hash SEC(".maps");

/* an outer map declared without a template: innerMap is set before load */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} outer_bare SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__type(value, __u64);
	__uint(max_entries, 64);
	__uint(map_extra, 3);
} bloom SEC(".maps");

/* the BPF side's answers: [0] how many of the values 0..15 it found in the bloom filter */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 16);
} results SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int stack_of_getppid(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__s64 id;

	if (tgid != target_tgid)
		return 0;
	id = bpf_get_stackid(ctx, &stackmap, 0);
	bpf_map_update_elem(&stack_ids, &tgid, &id, BPF_ANY);
	__sync_fetch_and_add(&stack_calls, 1);
	return 0;
}

static __always_inline void fill_slot(void *outer, __u32 key, __u32 slot, __u64 value)
{
	void *inner = bpf_map_lookup_elem(outer, &key);

	if (inner)
		bpf_map_update_elem(inner, &slot, &value, BPF_ANY);
}

/* writes 1000 + slot (outer_array[0]), 2000 + slot (outer_array[1]),
 * 3000 + slot (outer_hash[2]), 4000 + slot (outer_bare[0]) into slots 0..3 */
SEC("socket")
int fill_inner(struct __sk_buff *skb)
{
	__u32 slot;

	for (slot = 0; slot < 4; slot++) {
		fill_slot(&outer_array, 0, slot, 1000 + slot);
		fill_slot(&outer_array, 1, slot, 2000 + slot);
		fill_slot(&outer_hash, 2, slot, 3000 + slot);
		fill_slot(&outer_bare, 0, slot, 4000 + slot);
	}
	return 0;
}

/* pushes 10, 20, 30 into the bloom filter */
SEC("socket")
int bloom_push(struct __sk_buff *skb)
{
	__u64 v;

	v = 10;
	bpf_map_push_elem(&bloom, &v, 0);
	v = 20;
	bpf_map_push_elem(&bloom, &v, 0);
	v = 30;
	bpf_map_push_elem(&bloom, &v, 0);
	return 0;
}

static __always_inline void check(__u32 i)
{
	__u64 v = 100 + i;
	__u64 found = bpf_map_peek_elem(&bloom, &v) == 0;

	bpf_map_update_elem(&results, &i, &found, BPF_ANY);
}

/* results[i] = 1 where the bloom filter may hold 100 + i (i < 16) */
SEC("socket")
int bloom_check(struct __sk_buff *skb)
{
	__u32 i;

	for (i = 0; i < 16; i++)
		check(i);
	return 0;
}

/* tail call target, and a caller */
SEC("socket")
int tail_target(struct __sk_buff *skb)
{
	return 42;
}

SEC("socket")
int tail_caller(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &jmp_table, 0);
	return 7;
}

char LICENSE[] SEC("license") = "GPL";
