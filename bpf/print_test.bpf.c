// For test/34 (libbpf's voice): a plain socket filter whose BTF carries a
// struct named lbn_bad_name. The test renames it to "lbn-bad-name" in the
// object's bytes: the kernel then rejects the BTF (not an identifier), and
// libbpf warns "Error loading .BTF into kernel ... BTF is optional,
// ignoring" and loads the program anyway: a warning on a call that succeeds.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct lbn_bad_name {
	int x;
};

struct lbn_bad_name print_var = {};

SEC("socket")
int print_prog(struct __sk_buff *skb)
{
	return print_var.x;
}
