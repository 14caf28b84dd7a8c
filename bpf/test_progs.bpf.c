// SPDX-License-Identifier: GPL-2.0
// Programs and maps the tests load: one map of each common type, and a
// program of each kind that runs on this kernel without an attach point
// (BPF_PROG_TEST_RUN) or on a tracepoint (by section, or a raw one by
// name). Every
// program here loads on Linux 5.10; those that need newer kernels are in
// objects of their own (syscall_test.bpf.c).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

#define NR_GETPPID 110 /* x86_64 */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 8);
} array_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 64);
} hash_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 4);
} percpu_array_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, __u64);
	__type(value, __u32);
	__uint(max_entries, 16);
} percpu_hash_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 32);
} lru_hash_map SEC(".maps");

// getppid() calls per calling process, filled by count_getppid or
// raw_getppid, whichever is attached.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1024);
} getppid_calls SEC(".maps");

// Packets seen by sock_count, in slot 0.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} sock_packets SEC(".maps");

// XDP_DROP for frames whose first byte is odd, XDP_PASS otherwise.
SEC("xdp")
int xdp_parity(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;

	if (data + 1 > end)
		return XDP_ABORTED;
	return data[0] & 1 ? XDP_DROP : XDP_PASS;
}

// Returns the packet length: a socket filter's verdict is how many bytes
// to keep.
SEC("socket")
int sock_len(struct __sk_buff *skb)
{
	return skb->len;
}

// Counts the packets of the socket it is attached to and keeps them whole.
SEC("socket")
int sock_count(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&sock_packets, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
	return skb->len;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int count_getppid(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 one = 1, *v = bpf_map_lookup_elem(&getppid_calls, &tgid);

	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&getppid_calls, &tgid, &one, BPF_NOEXIST);
	return 0;
}

// count_getppid on the raw sys_enter tracepoint, attached by name
// (attachRawTracepoint('sys_enter')): its attachment is a kernel bpf_link,
// with an id and pinnable, on every kernel (a tracepoint's is since 5.15).
SEC("raw_tp")
int raw_getppid(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 tgid;
	__u64 one = 1, *v;

	if (ctx->args[1] != NR_GETPPID)
		return 0;
	tgid = bpf_get_current_pid_tgid() >> 32;
	v = bpf_map_lookup_elem(&getppid_calls, &tgid);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&getppid_calls, &tgid, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
