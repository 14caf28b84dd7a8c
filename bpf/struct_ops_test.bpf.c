// SPDX-License-Identifier: GPL-2.0
// A minimal Reno-like TCP congestion control of our own, registered as a
// struct_ops map (test/77.attach.struct_ops): while registered, "lbn_reno"
// is in net.ipv4.tcp_available_congestion_control and a connection can
// select it. Only the three members the kernel requires (ssthresh,
// cong_avoid, undo_cwnd) plus init, which counts the sockets that chose it.
// No kfuncs, so that it loads on 5.10 too.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

// Seen by the test through obj.globals('.bss').
__u64 inits;        // sockets that selected lbn_reno
__u64 cong_avoids;  // cong_avoid calls (ACKs that grew the window)

// The local ports of the sockets that selected lbn_reno, so the test can
// tell its own connection from any other.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 256);
} init_ports SEC(".maps");

static __always_inline struct tcp_sock *tcp_of(struct sock *sk)
{
	// The kernel hands struct_ops programs of tcp_congestion_ops their
	// socket as a tcp_sock (bpf_tcp_ca_is_valid_access promotes it).
	return (struct tcp_sock *)sk;
}

SEC("struct_ops/lbn_init")
void BPF_PROG(lbn_init, struct sock *sk)
{
	__u32 port = sk->__sk_common.skc_num;
	__u64 one = 1, *n;

	__sync_fetch_and_add(&inits, 1);
	n = bpf_map_lookup_elem(&init_ports, &port);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&init_ports, &port, &one, BPF_NOEXIST);
}

// Half the window on loss, never under two segments.
SEC("struct_ops/lbn_ssthresh")
__u32 BPF_PROG(lbn_ssthresh, struct sock *sk)
{
	__u32 half = tcp_of(sk)->snd_cwnd >> 1;

	return half > 2 ? half : 2;
}

// Slow start below ssthresh, then one segment more per window of ACKs.
SEC("struct_ops/lbn_cong_avoid")
void BPF_PROG(lbn_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	struct tcp_sock *tp = tcp_of(sk);
	__u32 cwnd = tp->snd_cwnd;

	__sync_fetch_and_add(&cong_avoids, 1);
	if (cwnd < tp->snd_ssthresh) {
		cwnd += acked;
		tp->snd_cwnd = cwnd < tp->snd_cwnd_clamp ? cwnd : tp->snd_cwnd_clamp;
		return;
	}
	if (tp->snd_cwnd_cnt + acked < cwnd) {
		tp->snd_cwnd_cnt += acked;
		return;
	}
	tp->snd_cwnd_cnt = 0;
	if (cwnd < tp->snd_cwnd_clamp)
		tp->snd_cwnd = cwnd + 1;
}

// After a spurious loss, back to the window before it.
SEC("struct_ops/lbn_undo_cwnd")
__u32 BPF_PROG(lbn_undo_cwnd, struct sock *sk)
{
	struct tcp_sock *tp = tcp_of(sk);

	return tp->snd_cwnd > tp->prior_cwnd ? tp->snd_cwnd : tp->prior_cwnd;
}

SEC(".struct_ops")
struct tcp_congestion_ops lbn_reno = {
	.init = (void *)lbn_init,
	.ssthresh = (void *)lbn_ssthresh,
	.cong_avoid = (void *)lbn_cong_avoid,
	.undo_cwnd = (void *)lbn_undo_cwnd,
	.name = "lbn_reno",
};

char LICENSE[] SEC("license") = "GPL";
