// SPDX-License-Identifier: GPL-2.0
// Tracing programs for the attach tests, each counting in its own slot of
// `hits` (hits.h). The iterators are in iter_test.bpf.c.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#define NR_GETPPID 110 /* x86_64 */

enum slot { TP, RAW_TP, TP_BTF, UPROBE, URETPROBE, USDT, PERF, NSLOTS_ };

#define NSLOTS NSLOTS_
#include "hits.h"

// Perf event samples per CPU.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 64);
} cpu_hits SEC(".maps");

// What the probes saw: [0] last uretprobe value, [1] [2] last USDT arguments,
// [3] USDT cookie.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __s64);
	__uint(max_entries, 4);
} seen SEC(".maps");

static void see(__u32 key, __s64 value)
{
	bpf_map_update_elem(&seen, &key, &value, BPF_ANY);
}

SEC("tp")
int on_tracepoint(void *ctx)
{
	if (mine())
		hit(TP);
	return 0;
}

SEC("raw_tp")
int on_raw_tracepoint(struct bpf_raw_tracepoint_args *ctx)
{
	if (ctx->args[1] == NR_GETPPID && mine())
		hit(RAW_TP);
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(on_tp_btf, struct pt_regs *regs, long id)
{
	if (id == NR_GETPPID && mine())
		hit(TP_BTF);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(on_uprobe, int a, int b)
{
	if (mine())
		hit(UPROBE);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(on_uretprobe, int ret)
{
	if (mine()) {
		hit(URETPROBE);
		see(0, ret);
	}
	return 0;
}

SEC("usdt")
int BPF_USDT(on_usdt, int i, long triple)
{
	if (mine()) {
		hit(USDT);
		see(1, i);
		see(2, triple);
		see(3, (__s64)bpf_usdt_cookie(ctx));
	}
	return 0;
}

SEC("perf_event")
int on_perf_event(void *ctx)
{
	__u32 cpu = bpf_get_smp_processor_id();
	__u64 *v = bpf_map_lookup_elem(&cpu_hits, &cpu);

	if (v)
		__sync_fetch_and_add(v, 1);
	hit(PERF);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
