/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * reset.c: resets sent (tcp:tcp_send_reset, with the kernel's reason, and
 * a NULL socket when a segment arrived for no socket: a closed port) and
 * received (tcp:tcp_receive_reset; the tracepoint carries no reason, user
 * space explains it from the state).
 */

SEC("tp_btf/tcp_send_reset")
int ss_send_reset(unsigned long long *ctx)
{
	if (cfg_noop_all || cfg_emit_only)
		return 0;
	const struct sock *sk = (const void *)CTX_ARG(ctx, 0);
	const struct sk_buff *skb = (const void *)CTX_ARG(ctx, 1);
	__u32 reason = (__u32)CTX_ARG(ctx, 2);
	__u8 tcp_flags = 0;

	struct ss_event e = {};
	e.ts_ns = bpf_ktime_get_ns();
	e.kind = SS_RESET_SENT;
	e.protocol = IPPROTO_TCP;
	e.sk = (__u64)sk;
	if (sk) {
		fill_sock_btf(&e, &sk->__sk_common);
		if (e.state == TCP_TIME_WAIT || e.state == TCP_NEW_SYN_RECV)
			e.flags |= SS_F_NOT_FULLSOCK;
	} else {
		/* The segment that made us reset: seen from our end, its
		 * destination is local. */
		if (!skb || !skb_tuple(&e, skb, &tcp_flags))
			return 0;
		swap_tuple(&e);
		e.netns = skb_netns(skb);
	}
	if (cfg_netns && e.netns != cfg_netns)
		return 0;
	if (!state_passes(e.state, e.state) || !tuple_passes(&e)) {
		filtered(SS_RESET_SENT);
		return 0;
	}
	e.u.reset.state = e.state;
	e.u.reset.reason = reason;
	e.u.reset.skb = (__u64)skb;
	if (sk) {
		e.cookie = bpf_get_socket_cookie(sk);
		lookup_owner(&e, e.sk, e.cookie, e.state == TCP_NEW_SYN_RECV);
	} else {
		e.fd = -1;
	}
	if (owner_filtering() && (!e.pid || !owner_passes(e.pid, e.comm))) {
		filtered(SS_RESET_SENT);
		return 0;
	}
	emit(&e);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int ss_receive_reset(unsigned long long *ctx)
{
	if (cfg_noop_all || cfg_emit_only)
		return 0;
	const struct sock *sk = (const void *)CTX_ARG(ctx, 0);

	struct ss_event e = {};
	e.ts_ns = bpf_ktime_get_ns();
	e.kind = SS_RESET_RECEIVED;
	e.protocol = IPPROTO_TCP;
	e.sk = (__u64)sk;
	fill_sock_btf(&e, &sk->__sk_common);
	if (cfg_netns && e.netns != cfg_netns)
		return 0;
	if (!state_passes(e.state, e.state) || !tuple_passes(&e)) {
		filtered(SS_RESET_RECEIVED);
		return 0;
	}
	e.u.reset.state = e.state;
	e.cookie = bpf_get_socket_cookie(sk);
	lookup_owner(&e, e.sk, e.cookie, false);
	if (owner_filtering() && (!e.pid || !owner_passes(e.pid, e.comm))) {
		filtered(SS_RESET_RECEIVED);
		return 0;
	}
	emit(&e);
	return 0;
}
