/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * destroy.c: a TCP socket freed (tcp:tcp_destroy_sock), with the totals
 * bcc's tcplife prints: how long it lived, bytes acked and received,
 * retransmits, segments and the smoothed RTT. The lifetime comes from
 * the births map when state.c keeps it, else user space times it from
 * the socket's first state change. Forgets the socket's birth and (with
 * an owner filter) owner so the maps never hold a freed address.
 */

SEC("tp_btf/tcp_destroy_sock")
int ss_destroy(unsigned long long *ctx)
{
	if (cfg_noop_all)
		return 0;
	if (cfg_emit_only)
		return emit_only(SS_DESTROY);
	const struct sock *sk = (const void *)CTX_ARG(ctx, 0);
	__u64 skp = (__u64)sk;

	if (!owner_filtering() && ports_rejected(&sk->__sk_common)) {
		filtered(SS_DESTROY);
		return 0;
	}
	bool port_known = cfg_filter_port && port_was_wanted(skp, sk->__sk_common.skc_num);
	if (cfg_filter_port && port_passed_any())
		bpf_map_delete_elem(&port_passed, &skp);
	struct ss_event e = {};
	e.ts_ns = bpf_ktime_get_ns();
	e.kind = SS_DESTROY;
	e.protocol = IPPROTO_TCP;
	e.sk = skp;
	fill_sock_btf(&e, &sk->__sk_common);

	if (cfg_kernel_births) {
		__u64 *born = bpf_map_lookup_elem(&births, &skp);
		if (born)
			e.u.destroy.born_ns = *born;
		bpf_map_delete_elem(&births, &skp);
	}
	struct ss_owner *o = NULL;
	if (kernel_owners()) {
		o = bpf_map_lookup_elem(&owners, &skp);
		if (o)
			set_owner(&e, o, SS_OWNER_SOCKET);
		bpf_map_delete_elem(&owners, &skp);
	}

	if (cfg_netns && e.netns != cfg_netns)
		return 0;
	if (!kind_on(SS_DESTROY))
		return 0;
	if (!state_passes(e.state, e.state) || (!port_known && !tuple_passes(&e))) {
		filtered(SS_DESTROY);
		return 0;
	}
	const struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
	if (tp) {
		e.u.destroy.bytes_acked = tp->bytes_acked;
		e.u.destroy.bytes_received = tp->bytes_received;
		e.u.destroy.bytes_sent = tp->bytes_sent;
		e.u.destroy.bytes_retrans = tp->bytes_retrans;
		e.u.destroy.total_retrans = tp->total_retrans;
		e.u.destroy.segs_in = tp->segs_in;
		e.u.destroy.segs_out = tp->segs_out;
		e.u.destroy.srtt_us = tp->srtt_us;
	}
	e.cookie = bpf_get_socket_cookie(sk);
	if (!o)
		lookup_owner(&e, skp, e.cookie, false);
	if (owner_filtering() && (!e.pid || !owner_passes(e.pid, e.comm))) {
		filtered(SS_DESTROY);
		return 0;
	}
	emit(&e);
	return 0;
}
