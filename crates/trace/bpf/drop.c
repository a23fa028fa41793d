/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * drop.c: TCP packets the kernel freed with a drop reason (skb:kfree_skb):
 * no socket for them, a full accept queue, a netfilter rule, a bad
 * sequence number... Packets dropped "for no particular reason"
 * (NOT_SPECIFIED), the queues of a closing socket being freed
 * (QUEUE_PURGE, see cfg_drop_skip) and non-TCP packets are skipped. The tuple is the
 * packet's own (source first); user space matches it to a connection
 * either way round.
 */

#define SKB_DROP_REASON_NOT_SPECIFIED 2

SEC("tp_btf/kfree_skb")
int ss_drop(unsigned long long *ctx)
{
	if (cfg_noop_all || cfg_emit_only)
		return 0;
	const struct sk_buff *skb = (const void *)CTX_ARG(ctx, 0);
	__u64 location = CTX_ARG(ctx, 1);
	__u32 reason = (__u32)CTX_ARG(ctx, 2);
	const struct sock *rx_sk = (const void *)CTX_ARG(ctx, 3);
	__u8 tcp_flags = 0;

	if (reason <= SKB_DROP_REASON_NOT_SPECIFIED || (cfg_drop_skip && reason == cfg_drop_skip))
		return 0;

	struct ss_event e = {};
	if (!skb_tuple(&e, skb, &tcp_flags))
		return 0;
	e.ts_ns = bpf_ktime_get_ns();
	e.kind = SS_DROP;
	e.protocol = IPPROTO_TCP;
	e.flags = SS_F_PACKET_TUPLE;
	e.netns = skb_netns(skb);
	if (cfg_netns && e.netns != cfg_netns)
		return 0;
	if (!tuple_passes(&e)) {
		filtered(SS_DROP);
		return 0;
	}
	const struct sock *sk = rx_sk;
	if (!sk)
		KREAD(sk, skb->sk);
	e.sk = (__u64)sk;
	e.u.drop.reason = reason;
	e.u.drop.location = location;
	e.u.drop.tcp_flags = tcp_flags;
	e.u.drop.rx_sk = rx_sk != NULL;
	KREAD(e.u.drop.len, skb->len);
	if (sk) {
		KREAD(e.state, sk->__sk_common.skc_state);
		if (!state_passes(e.state, e.state)) {
			filtered(SS_DROP);
			return 0;
		}
		e.cookie = sk_cookie_peek(sk);
		lookup_owner(&e, e.sk, e.cookie, false);
	} else {
		e.fd = -1;
	}
	if (owner_filtering() && (!e.pid || !owner_passes(e.pid, e.comm))) {
		filtered(SS_DROP);
		return 0;
	}
	emit(&e);
	return 0;
}
