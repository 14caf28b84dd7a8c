/* SPDX-License-Identifier: GPL-2.0 */
/* Programs whose settings the tests change before load: flags, log level,
 * expected attach type, attach target, autoattach, and a map that is not
 * created (autocreate off). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

__u64 enter_calls = 0;
__u64 other_calls = 0;
const volatile __u32 target_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} optional_map SEC(".maps");

/* a misaligned packet read: fine on x86_64 unless BPF_F_STRICT_ALIGNMENT */
SEC("xdp")
int unaligned(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;

	if (data + 8 > end)
		return XDP_PASS;
	return *(volatile __u32 *)(data + 1) == 0 ? XDP_DROP : XDP_PASS;
}

/* a section libbpf knows no program type for: prog.type must be set */
SEC("?lbn_custom")
int custom_section(struct __sk_buff *skb)
{
	return 0;
}

/* 32-bit arithmetic: with BPF_F_TEST_RND_HI32 the verifier pads each 32-bit
 * definition whose upper half is unused with a random upper half */
SEC("socket")
int alu32(struct __sk_buff *skb)
{
	__u32 a = skb->len, b = skb->protocol;

	a = a * 3 + b;
	a ^= b << 3;
	return a & 1;
}

/* ctx->src_ip4 is readable only for the post_bind attach types */
SEC("?cgroup/sock_create")
int post_bind_only(struct bpf_sock *sk)
{
	return sk->src_ip4 == 0x0100007f;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int count_enter(void *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) == target_tgid)
		__sync_fetch_and_add(&enter_calls, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int count_other(void *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) == target_tgid)
		__sync_fetch_and_add(&other_calls, 1);
	return 0;
}

/* a BTF tracepoint whose target the tests change (sys_enter -> sys_exit) */
/* the second arguments it saw from this process: syscall numbers at
 * sys_enter, return values at sys_exit */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __s64);
	__type(value, __u64);
	__uint(max_entries, 1024);
} btf_tp_args SEC(".maps");

SEC("?tp_btf/sys_enter")
int btf_tp(u64 *ctx)
{
	__s64 arg = (__s64)ctx[1];
	__u64 one = 1;

	if ((bpf_get_current_pid_tgid() >> 32) == target_tgid)
		bpf_map_update_elem(&btf_tp_args, &arg, &one, BPF_ANY);
	return 0;
}

/* uses the map that a test leaves uncreated */
SEC("?socket")
int uses_optional(struct __sk_buff *skb)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&optional_map, &k);

	return v ? 1 : 0;
}

char LICENSE[] SEC("license") = "GPL";
