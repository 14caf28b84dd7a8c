// SPDX-License-Identifier: GPL-2.0
// Values of every BTF kind the codecs handle, written by the kernel side:
// fill() writes samples[0]; check() reads samples[1] (written from
// JavaScript) and returns a checksum of its fields. The programs are socket
// filters, run with BPF_PROG_TEST_RUN (at least an Ethernet header of data):
// what they do needs no newer kernel than the maps do.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum color { RED = 1, GREEN = 2, BLUE = 4 };

struct inner {
	__u16 a;
	__s8 b;
};

struct sample {
	__u8 u8v;
	__s16 s16v;
	__u32 u32v;
	__s64 s64v;
	__u64 u64v;
	_Bool flag;
	char name[16];
	__u16 arr[4];
	enum color color;
	struct inner nested;
	union {
		__u32 as_u32;
		__u8 bytes[4];
	} un;
	__u32 bf_a : 3, bf_b : 5;
	__s32 bf_c : 7;
	void *ptr;
	struct inner inners[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct sample);
	__uint(max_entries, 2);
} samples SEC(".maps");

/* Map types libbpf creates without BTF (the kernel takes none for them),
 * a key declared only by its size, and array-valued types, per-CPU or
 * not: their values still decode with the types declared here. */
struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__type(value, struct inner);
	__uint(max_entries, 4);
} inner_queue SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__type(value, struct inner);
	__uint(max_entries, 4);
} inner_stack SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(key_size, sizeof(__u32));
	__type(value, __u64);
	__uint(max_entries, 4);
} sized_key SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64[2]);
	__uint(max_entries, 2);
} percpu_pairs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct inner[2]);
	__uint(max_entries, 2);
} inner_pairs SEC(".maps");

/* Named like what a generated skeleton imports or uses (Buffer, PerCpu):
 * the skeleton must rename them. */
struct buffer {
	__u32 len;
};

struct per_cpu {
	__u8 cpu;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct per_cpu);
	__uint(max_entries, 1);
} per_cpus SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct buffer);
	__uint(max_entries, 1);
} buffers SEC(".maps");

SEC("socket")
int fill(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct sample *s = bpf_map_lookup_elem(&samples, &key);

	if (!s)
		return -1;
	s->u8v = 200;
	s->s16v = -1234;
	s->u32v = 4000000000u;
	s->s64v = -5000000000ll;
	s->u64v = 18000000000000000000ull;
	s->flag = 1;
	__builtin_memcpy(s->name, "kernel-side", 12);
	s->arr[0] = 1;
	s->arr[1] = 2;
	s->arr[2] = 65535;
	s->arr[3] = 4;
	s->color = BLUE;
	s->nested.a = 7;
	s->nested.b = -8;
	s->un.as_u32 = 0x04030201;
	s->bf_a = 5;
	s->bf_b = 17;
	s->bf_c = -33;
	s->ptr = (void *)0xffff888012345678ull;
	s->inners[1].a = 11;
	s->inners[1].b = -12;
	return 0;
}

SEC("socket")
int check(struct __sk_buff *skb)
{
	__u32 key = 1;
	struct sample *s = bpf_map_lookup_elem(&samples, &key);

	if (!s)
		return -1;
	/* every field contributes, each scaled so that mistakes show (no
	 * signed division: BPF before v4 has none) */
	return s->u8v + s->s16v * 3 + (int)(s->u32v & 0x3ff) * 5 + (int)((__u64)s->s64v & 0x3ff) * 7 + s->flag * 11 +
	       s->name[0] * 13 + s->name[4] * 17 + s->arr[3] * 19 + s->color * 23 + s->nested.b * 29 +
	       s->un.bytes[2] * 31 + s->bf_a * 37 + s->bf_b * 41 + s->bf_c * 43 + s->inners[0].a * 47 +
	       (int)((__u64)s->ptr & 0xff) * 53;
}

SEC("socket")
int push_inner(struct __sk_buff *skb)
{
	struct inner v = { .a = 21, .b = -22 };
	__u32 key = 1;
	__u64 n = 1234567890123ull;

	bpf_map_push_elem(&inner_queue, &v, 0);
	v.a = 31;
	bpf_map_push_elem(&inner_stack, &v, 0);
	bpf_map_update_elem(&sized_key, &key, &n, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
