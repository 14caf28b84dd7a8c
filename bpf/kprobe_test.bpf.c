// SPDX-License-Identifier: GPL-2.0
// Programs that need kprobes, BPF trampolines (fentry/fexit) or the BPF LSM:
// the host kernel of this project has none of them, so the tests that load
// these run in a VM (../shared/vm). Each counts the getppid() calls (or
// file opens) of process `settings[0]` in its own slot of `hits`.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

enum slot { KPROBE, KRETPROBE, KSYSCALL, KPROBE_MULTI, FENTRY, FEXIT, LSM, NSLOTS_ };

#define NSLOTS NSLOTS_
#include "hits.h"

static void count(enum slot s)
{
	if (mine())
		hit(s);
}

SEC("kprobe")
int on_kprobe(void *ctx)
{
	count(KPROBE);
	return 0;
}

SEC("kretprobe")
int on_kretprobe(void *ctx)
{
	count(KRETPROBE);
	return 0;
}

SEC("ksyscall")
int on_ksyscall(void *ctx)
{
	count(KSYSCALL);
	return 0;
}

SEC("kprobe.multi")
int on_kprobe_multi(void *ctx)
{
	count(KPROBE_MULTI);
	return 0;
}

// The target is set from JavaScript (attachTarget) before load. The
// syscall wrappers (__x64_sys_*) have no BTF, so these count opens.
SEC("fentry")
int on_fentry(void *ctx)
{
	count(FENTRY);
	return 0;
}

SEC("fexit/do_sys_openat2")
int on_fexit(void *ctx)
{
	count(FEXIT);
	return 0;
}

SEC("lsm/file_open")
int BPF_PROG(on_file_open, struct file *file)
{
	count(LSM);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
