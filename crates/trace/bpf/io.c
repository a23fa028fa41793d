/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * io.c: data a process sends or receives on a socket
 * (sock:sock_send_length, sock:sock_recv_length). Both fire in the
 * process's context inside sock_sendmsg / sock_recvmsg, with the socket
 * and the byte count (or -errno), so they link read/write/send/recv to
 * the kernel socket without looking at every read and write on the system.
 * The syscall and fd are read from the task's saved user registers.
 */

static __always_inline int ss_io(unsigned long long *ctx, __u8 kind)
{
	const struct sock *sk = (const void *)CTX_ARG(ctx, 0);
	int ret = (int)CTX_ARG(ctx, 1);
	int flags = (int)CTX_ARG(ctx, 2);
	__u64 pt = bpf_get_current_pid_tgid();

	if ((pt >> 32) == cfg_self || !sk)
		return 0;
	__u16 family = sk->__sk_common.skc_family;
	if (family != AF_INET && family != AF_INET6)
		return 0;
	if (ports_rejected(&sk->__sk_common)) {
		filtered(kind);
		return 0;
	}

	struct ss_event e = {};
	e.ts_ns = bpf_ktime_get_ns();
	e.kind = kind;
	e.sk = (__u64)sk;
	fill_sock_btf(&e, &sk->__sk_common);
	if (cfg_netns && e.netns != cfg_netns)
		return 0;
	/* The tuple and state filters first: cheapest, and a socket they
	 * reject needs no owner either. */
	if (!state_passes(e.state, e.state) || !tuple_passes(&e)) {
		filtered(kind);
		return 0;
	}
	e.protocol = (__u8)sk->sk_protocol;

	struct task_struct *t = bpf_get_current_task_btf();
	long nr = -1;
	unsigned long fd = (unsigned long)-1;
	if (!(t->flags & PF_KTHREAD)) {
		struct pt_regs *regs = bpf_task_pt_regs(t);
		nr = (long)SYSCALL_NR(regs);
		e.u.io.sys = io_sys(nr);
		if (e.u.io.sys != SYS_OTHER)
			fd = SYSCALL_ARG0(regs);
	}
	e.u.io.fd = e.u.io.sys != SYS_OTHER ? (__s32)fd : -1;
	e.u.io.ret = ret;
	e.u.io.flags = flags;
	task_owner(&e, e.u.io.fd);
	if (owner_filtering() && !owner_passes(e.pid, e.comm)) {
		filtered(kind);
		return 0;
	}
	learn_owner(e.sk, &e, false);

	if (!kind_on(kind))
		return 0;
	if (e.sport || e.dport)
		note_waiter(e.pid);
	e.cookie = bpf_get_socket_cookie(sk);
	emit(&e);
	return 0;
}

SEC("tp_btf/sock_send_length")
int ss_send(unsigned long long *ctx)
{
	if (cfg_noop_all)
		return 0;
	if (cfg_emit_only)
		return emit_only(SS_SEND);
	return ss_io(ctx, SS_SEND);
}

SEC("tp_btf/sock_recv_length")
int ss_recv(unsigned long long *ctx)
{
	if (cfg_noop_all)
		return 0;
	if (cfg_emit_only)
		return emit_only(SS_RECV);
	return ss_io(ctx, SS_RECV);
}
