/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * state.c: every TCP state change (sock:inet_sock_set_state), including a
 * server's new socket going LISTEN -> SYN-RECV -> ESTABLISHED before
 * accept() and each step of a close. The kernel never reports TIME-WAIT
 * here (the socket is swapped for a timewait socket and goes to CLOSE);
 * user space infers it from FIN-WAIT-2/CLOSING -> CLOSE.
 *
 * With an owner filter, also forgets a listener's owner when the
 * listener closes. Records a socket's first state change (births) only
 * when user space will not see them all; otherwise it times sockets.
 */

SEC("tp_btf/inet_sock_set_state")
int ss_state(unsigned long long *ctx)
{
	if (cfg_noop_all)
		return 0;
	if (cfg_emit_only)
		return emit_only(SS_STATE);
	const struct sock *sk = (const void *)CTX_ARG(ctx, 0);
	__u32 oldstate = (__u32)CTX_ARG(ctx, 1);
	__u32 newstate = (__u32)CTX_ARG(ctx, 2);
	__u64 skp = (__u64)sk;
	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	/* Without owner filters nothing below matters for a socket the port
	 * filter rejects. */
	if (!owner_filtering() && ports_rejected(&sk->__sk_common)) {
		filtered(SS_STATE);
		return 0;
	}

	struct ss_event e = {};
	e.ts_ns = bpf_ktime_get_ns();
	e.kind = SS_STATE;
	e.protocol = IPPROTO_TCP;
	e.sk = skp;
	fill_sock_btf(&e, &sk->__sk_common);
	if (cfg_netns && e.netns != cfg_netns)
		return 0;

	if (kernel_owners() && oldstate == TCP_LISTEN && newstate == TCP_CLOSE) {
		struct ss_listen_key k = {};
		k.netns = e.netns;
		k.port = e.sport;
		struct ss_listen_val *l = bpf_map_lookup_elem(&listeners, &k);
		if (l && l->sk == skp)
			bpf_map_delete_elem(&listeners, &k);
	}

	if (!tuple_passes(&e)) {
		filtered(SS_STATE);
		return 0;
	}
	if (cfg_filter_port && e.sport && port_wanted(e.sport)) {
		port_passed_add(skp);
	}
	if (cfg_kernel_births) {
		__u64 *born = bpf_map_lookup_elem(&births, &skp);
		if (born) {
			e.u.state.born_ns = *born;
		} else {
			e.u.state.born_ns = e.ts_ns;
			bpf_map_update_elem(&births, &skp, &e.ts_ns, BPF_ANY);
		}
	}
	if (!kind_on(SS_STATE))
		return 0;
	e.state = newstate;
	e.u.state.oldstate = oldstate;
	e.u.state.newstate = newstate;
	if (!state_passes(oldstate, newstate)) {
		filtered(SS_STATE);
		return 0;
	}
	e.cookie = bpf_get_socket_cookie(sk);
	/* A connection a listener made (SYN-RECV) belongs to the listener's
	 * owner until accept(). */
	lookup_owner(&e, skp, e.cookie, oldstate == TCP_LISTEN || oldstate == TCP_SYN_RECV);
	if (owner_filtering() && (!e.pid || !owner_passes(e.pid, e.comm))) {
		filtered(SS_STATE);
		return 0;
	}
	emit(&e);
	return 0;
}
