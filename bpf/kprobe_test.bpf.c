// SPDX-License-Identifier: GPL-2.0
// Programs that need kprobes, BPF trampolines (fentry/fexit) or the BPF LSM:
// the host kernel of this project has none of them, so the tests that load
// these run in a VM (../shared/vm). Each counts the getppid() calls (or
// file opens) of process `settings[0]` in its own slot of `hits`.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

enum slot { KPROBE, KRETPROBE, KSYSCALL, KPROBE_MULTI, FENTRY, FEXIT, LSM, NSLOTS };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, NSLOTS);
} hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} settings SEC(".maps");

static void hit(enum slot s)
{
	__u32 key = 0;
	__u64 *target = bpf_map_lookup_elem(&settings, &key);

	if (!target || *target != bpf_get_current_pid_tgid() >> 32)
		return;
	key = s;
	__u64 *v = bpf_map_lookup_elem(&hits, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("kprobe")
int on_kprobe(void *ctx)
{
	hit(KPROBE);
	return 0;
}

SEC("kretprobe")
int on_kretprobe(void *ctx)
{
	hit(KRETPROBE);
	return 0;
}

SEC("ksyscall")
int on_ksyscall(void *ctx)
{
	hit(KSYSCALL);
	return 0;
}

SEC("kprobe.multi")
int on_kprobe_multi(void *ctx)
{
	hit(KPROBE_MULTI);
	return 0;
}

// The target is set from JavaScript (attachTarget) before load. The
// syscall wrappers (__x64_sys_*) have no BTF, so these count opens.
SEC("fentry")
int on_fentry(void *ctx)
{
	hit(FENTRY);
	return 0;
}

SEC("fexit/do_sys_openat2")
int on_fexit(void *ctx)
{
	hit(FEXIT);
	return 0;
}

SEC("lsm/file_open")
int BPF_PROG(on_file_open, struct file *file)
{
	hit(LSM);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
