/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * retransmit.c: segments the kernel sends again (tcp:tcp_retransmit_skb)
 * and SYN-ACKs it repeats for a half-open connection
 * (tcp:tcp_retransmit_synack, which runs on the listener with the request
 * socket that stands for the connection until the handshake ends).
 */

SEC("tp_btf/tcp_retransmit_skb")
int ss_retransmit(unsigned long long *ctx)
{
	if (cfg_noop_all || cfg_emit_only)
		return 0;
	const struct sock *sk = (const void *)CTX_ARG(ctx, 0);
	const struct sk_buff *skb = (const void *)CTX_ARG(ctx, 1);
	int err = (int)CTX_ARG(ctx, 2);

	struct ss_event e = {};
	e.ts_ns = bpf_ktime_get_ns();
	e.kind = SS_RETRANSMIT;
	e.protocol = IPPROTO_TCP;
	e.sk = (__u64)sk;
	fill_sock_btf(&e, &sk->__sk_common);
	if (cfg_netns && e.netns != cfg_netns)
		return 0;
	if (!state_passes(e.state, e.state) || !tuple_passes(&e)) {
		filtered(SS_RETRANSMIT);
		return 0;
	}
	e.u.retrans.state = e.state;
	e.u.retrans.err = err;
	e.u.retrans.skb = (__u64)skb;
	e.u.retrans.len = skb->len;
	e.cookie = bpf_get_socket_cookie(sk);
	lookup_owner(&e, e.sk, e.cookie, false);
	if (owner_filtering() && (!e.pid || !owner_passes(e.pid, e.comm))) {
		filtered(SS_RETRANSMIT);
		return 0;
	}
	emit(&e);
	return 0;
}

SEC("tp_btf/tcp_retransmit_synack")
int ss_retransmit_synack(unsigned long long *ctx)
{
	if (cfg_noop_all || cfg_emit_only)
		return 0;
	const struct sock *listener = (const void *)CTX_ARG(ctx, 0);
	const struct request_sock *req = (const void *)CTX_ARG(ctx, 1);

	struct ss_event e = {};
	e.ts_ns = bpf_ktime_get_ns();
	e.kind = SS_RETRANSMIT_SYNACK;
	e.protocol = IPPROTO_TCP;
	e.sk = (__u64)req;
	e.flags = SS_F_NOT_FULLSOCK;
	fill_sock_btf(&e, &req->__req_common);
	if (cfg_netns && e.netns != cfg_netns)
		return 0;
	e.state = TCP_SYN_RECV;
	if (!state_passes(TCP_SYN_RECV, TCP_SYN_RECV) || !tuple_passes(&e)) {
		filtered(SS_RETRANSMIT_SYNACK);
		return 0;
	}
	e.u.synack.listener = (__u64)listener;
	e.u.synack.req = (__u64)req;
	lookup_owner(&e, (__u64)listener, 0, true);
	if (e.pid)
		e.owner_src = SS_OWNER_LISTENER; /* the listener's owner, via the listener */
	if (owner_filtering() && (!e.pid || !owner_passes(e.pid, e.comm))) {
		filtered(SS_RETRANSMIT_SYNACK);
		return 0;
	}
	emit(&e);
	return 0;
}
