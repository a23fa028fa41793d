/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * netdev.c: TCP segments at the network devices, parsed in the kernel.
 *
 * - leaving: net:net_dev_queue (__dev_queue_xmit, before the qdisc; the
 *   network header is set, skb->data is at the link-layer header);
 * - arriving: net:netif_receive_skb (__netif_receive_skb_core, which the
 *   GRO, backlog and plain NAPI paths all reach; skb->data is at the
 *   network header, which is not reset yet).
 *
 * Each is read for IPv4 or IPv6 (no extension headers) carrying TCP:
 * ports, addresses, flags, seq, ack, window, payload length and the
 * options that matter (MSS, window scale, SACK permitted and blocks,
 * timestamps), the device's ifindex and whether a softirq was running on
 * the CPU (softirq_entry/exit keep a per-CPU flag while packet events are
 * on). The event's tuple is the local end's first in both directions.
 *
 * Filters run before the event is built: namespace (the device's), ports
 * and addresses (either end), and with a pid or command filter the owner
 * of the packet's socket (leaving: skb->sk; arriving: a tuple the owner
 * already sent on, or the owner of the listener a SYN is for).
 */

/* Per CPU: the softirq running (vector + 1, 0: none), a count of the
 * softirqs entered on this CPU (which one is running: no clock read per
 * softirq, the softirq hooks run for every softirq of the host), and the
 * last traced packet that arrived on this CPU and in which softirq (for
 * the wakeup it causes: wait.c). */
struct ss_cpu_state {
	__u32 vec;
	__u32 _pad;
	__u64 gen;
	__u64 rx_gen;
	__u64 rx_ts;
	struct ss_event rx; /* tuple, netns, family of that packet */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ss_cpu_state);
} softirq_now SEC(".maps");

SEC("tp_btf/softirq_entry")
int ss_softirq_entry(unsigned long long *ctx)
{
	if (cfg_noop_all || cfg_emit_only)
		return 0;
	__u32 k = 0;
	struct ss_cpu_state *v = bpf_map_lookup_elem(&softirq_now, &k);
	if (v) {
		v->vec = (__u32)CTX_ARG(ctx, 0) + 1;
		v->gen += 1;
	}
	return 0;
}

SEC("tp_btf/softirq_exit")
int ss_softirq_exit(unsigned long long *ctx)
{
	if (cfg_noop_all || cfg_emit_only)
		return 0;
	__u32 k = 0;
	struct ss_cpu_state *v = bpf_map_lookup_elem(&softirq_now, &k);
	if (v)
		v->vec = 0;
	return 0;
}

/* A connection's tuple, local end first: the owner filter's memory of
 * connections whose owner passed, for the packets that arrive (they carry
 * no socket yet at the device). */
struct ss_tuple_key {
	__u32 netns;
	__u16 lport;
	__u16 rport;
	__u8 laddr[16];
	__u8 raddr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ss_tuple_key);
	__type(value, __u8);
} owned_tuples SEC(".maps");

static __always_inline void tuple_key_of(struct ss_tuple_key *k, const struct ss_event *e)
{
	k->netns = e->netns;
	k->lport = e->sport;
	k->rport = e->dport;
	__builtin_memcpy(k->laddr, e->saddr, 16);
	__builtin_memcpy(k->raddr, e->daddr, 16);
}

/* An index into the 64-byte header buffer, masked where the verifier sees
 * it (clang drops a plain `& 63` it can prove redundant, and the verifier
 * then cannot bound the read). */
static __always_inline __u32 idx63(__u32 v)
{
	asm volatile("%0 &= 63" : "+r"(v));
	return v;
}

#define AT(b, p) ((b)[idx63(p)])

static __always_inline __u32 be32_at(const __u8 *b, __u32 p)
{
	return ((__u32)AT(b, p) << 24) | ((__u32)AT(b, p + 1) << 16) | ((__u32)AT(b, p + 2) << 8) |
	       (__u32)AT(b, p + 3);
}

/* The TCP header and its options (at most 60 bytes) */
struct tcp_full {
	__u8 b[64];
};

/* Options: MSS, window scale, SACK permitted, SACK blocks, timestamps.
 * The loop only notes where each kind of option starts, in a slot per
 * kind (with the kind, since kinds above 15 share slots): three paths per
 * iteration, so the verifier's states converge at load time. 16 options
 * at most: real stacks send 5 or 6 with their NOPs. The values are read
 * after the loop. */
static __always_inline void parse_options(struct ss_packet_body *p, const __u8 *b, __u32 end,
					  const void *hdr)
{
	__u32 slot[16] = {};
	__u32 pos = 20;
#pragma clang loop unroll(disable)
	for (int i = 0; i < 16; i++) {
		/* pos < end <= 60 here: the mask changes nothing but gives the
		 * verifier one range for every iteration. */
		pos = idx63(pos);
		if (pos + 1 >= end)
			break;
		__u8 kind = AT(b, pos);
		if (kind == 0)
			break;
		__u32 len = 1;
		if (kind != 1) {
			len = AT(b, pos + 1);
			if (len < 2)
				break;
			slot[kind & 15] = pos | ((__u32)kind << 8) | (len << 16);
		}
		pos += len;
	}
	__u32 s_mss = slot[2], s_ws = slot[3], s_sack = slot[5], s_ts = slot[8];
	if (((slot[4] >> 8) & 0xff) == 4)
		p->opts |= SS_PKT_SACK_PERM;
	__u32 o_mss = ((s_mss >> 8) & 0xff) == 2 ? s_mss & 0xff : 0;
	__u32 o_ws = ((s_ws >> 8) & 0xff) == 3 ? s_ws & 0xff : 0;
	__u32 o_sack = ((s_sack >> 8) & 0xff) == 5 ? s_sack & 0xff : 0;
	__u32 o_ts = ((s_ts >> 8) & 0xff) == 8 ? s_ts & 0xff : 0;
	__u32 sack_len = s_sack >> 16;
	/* The values, read from the packet again by address: offsets found
	 * in the loop must not index the stack (the verifier would then
	 * track each of them exactly and never merge the loop's states). */
	if (o_mss && o_mss + 4 <= end) {
		__u8 v[2] = {};
		bpf_probe_read_kernel(v, 2, (const __u8 *)hdr + o_mss + 2);
		p->mss = ((__u16)v[0] << 8) | v[1];
		p->opts |= SS_PKT_MSS;
	}
	if (o_ws && o_ws + 3 <= end) {
		bpf_probe_read_kernel(&p->wscale, 1, (const __u8 *)hdr + o_ws + 2);
		p->opts |= SS_PKT_WSCALE;
	}
	if (o_ts && o_ts + 10 <= end) {
		__u32 v[2] = {};
		bpf_probe_read_kernel(v, 8, (const __u8 *)hdr + o_ts + 2);
		p->tsval = __builtin_bswap32(v[0]);
		p->tsecr = __builtin_bswap32(v[1]);
		p->opts |= SS_PKT_TS;
	}
	if (o_sack && o_sack + sack_len <= end && sack_len >= 10) {
		__u32 n = (sack_len - 2) / 8;
		if (n > 4)
			n = 4;
		__u32 v[8] = {};
		bpf_probe_read_kernel(v, 32, (const __u8 *)hdr + o_sack + 2);
		p->sack_n = (__u8)n;
		for (int j = 0; j < 8; j++)
			p->sack[j] = j < (int)(2 * n) ? __builtin_bswap32(v[j]) : 0;
	}
}

static __always_inline int ss_packet(const struct sk_buff *skb, __u8 dir)
{
	if (!skb)
		return 0;
	struct net_device *dev = NULL;
	__u32 netns = 0;
	if (cfg_netns) {
		dev = skb->dev;
		if (!dev)
			return 0;
		struct net *net = dev->nd_net.net;
		netns = net ? net->ns.inum : 0;
		if (netns != cfg_netns)
			return 0;
	}
	/* A segment leaving a TCP socket whose local port is known carries
	 * that socket's ports: the port filter rejects it with a few loads,
	 * without reading the packet. Other segments (a socket that gave its
	 * port back before its last RST, the control socket that answers
	 * for closed ports and timewait sockets, other protocols) are read. */
	if (cfg_filter_port && dir == SS_PKT_OUT) {
		const struct sock *osk = skb->sk;
		if (osk) {
			__u8 st = osk->__sk_common.skc_state;
			__u16 sp = osk->__sk_common.skc_num;
			__u16 dp = __builtin_bswap16(osk->__sk_common.skc_dport);
			if (sp && dp && !port_wanted(sp) && !port_wanted(dp) &&
			    (st == TCP_NEW_SYN_RECV || st == TCP_TIME_WAIT ||
			     osk->sk_protocol == IPPROTO_TCP)) {
				filtered(SS_PACKET);
				return 0;
			}
		}
	}
	unsigned char *head = skb->head;
	unsigned char *data = skb->data;
	if (!head || !data)
		return 0;
	__u32 nh;
	if (dir == SS_PKT_OUT) {
		nh = skb->network_header;
		if (nh == 0xffff)
			return 0;
	} else {
		nh = (__u32)(data - head);
	}
	__u16 proto = __builtin_bswap16(skb->protocol);
	/* The IP header and the TCP ports after it in one read (IPv4
	 * without options, IPv6): the port filter, the test most packets
	 * fail on a busy host, needs nothing else. The rest of the TCP
	 * header is read only for a packet that passes. */
	union {
		struct iphdr ip;
		struct ipv6hdr ip6;
		__u8 b[sizeof(struct ipv6hdr) + 4];
	} h = {};
	__u8 ports[4] = {};
	__u32 th;
	if (proto == ETH_P_IP) {
		if (bpf_probe_read_kernel(&h, sizeof(struct iphdr) + 4, head + nh))
			return 0;
		if ((h.ip.ihl_version >> 4) != 4 || h.ip.protocol != IPPROTO_TCP)
			return 0;
		/* Not a first fragment: no TCP header here. */
		if (__builtin_bswap16(h.ip.frag_off) & 0x1fff)
			return 0;
		__u32 ihl = (h.ip.ihl_version & 0x0f) * 4;
		th = nh + ihl;
		if (ihl == sizeof(struct iphdr))
			__builtin_memcpy(ports, &h.b[sizeof(struct iphdr)], 4);
		else if (bpf_probe_read_kernel(ports, 4, head + th))
			return 0;
	} else if (proto == ETH_P_IPV6) {
		if (bpf_probe_read_kernel(&h, sizeof(h), head + nh))
			return 0;
		if ((h.ip6.priority_version >> 4) != 6 || h.ip6.nexthdr != IPPROTO_TCP)
			return 0;
		th = nh + sizeof(struct ipv6hdr);
		__builtin_memcpy(ports, &h.b[sizeof(struct ipv6hdr)], 4);
	} else {
		return 0;
	}
	__u16 sport = ((__u16)ports[0] << 8) | ports[1];
	__u16 dport = ((__u16)ports[2] << 8) | ports[3];
	if (cfg_filter_port && !port_wanted(sport) && !port_wanted(dport)) {
		filtered(SS_PACKET);
		return 0;
	}
	struct ss_event e = {};
	if (proto == ETH_P_IP) {
		e.family = AF_INET;
		__builtin_memcpy(e.saddr, &h.ip.saddr, 4);
		__builtin_memcpy(e.daddr, &h.ip.daddr, 4);
	} else {
		e.family = AF_INET6;
		__builtin_memcpy(e.saddr, &h.ip6.saddr, 16);
		__builtin_memcpy(e.daddr, &h.ip6.daddr, 16);
	}
	if (!cfg_netns) {
		dev = skb->dev;
		if (!dev)
			return 0;
		struct net *net = dev->nd_net.net;
		netns = net ? net->ns.inum : 0;
	}
	e.netns = netns;
	e.sport = sport;
	e.dport = dport;
	/* Local end first. */
	if (dir == SS_PKT_IN)
		swap_tuple(&e);
	if (cfg_filter_addr && !tuple_passes(&e)) {
		filtered(SS_PACKET);
		return 0;
	}

	e.kind = SS_PACKET;
	e.protocol = IPPROTO_TCP;
	e.fd = -1;
	struct sock *sk = dir == SS_PKT_OUT ? skb->sk : NULL;
	if (sk) {
		__u8 st = sk->__sk_common.skc_state;
		e.state = st;
		if (st == TCP_NEW_SYN_RECV || st == TCP_TIME_WAIT)
			e.flags |= SS_F_NOT_FULLSOCK;
		else
			e.sk = (__u64)sk;
	}
	if (owner_filtering()) {
		struct ss_tuple_key k = {};
		tuple_key_of(&k, &e);
		if (dir == SS_PKT_OUT) {
			if (!sk)
				return 0;
			lookup_owner(&e, (__u64)sk, 0, e.state == TCP_NEW_SYN_RECV);
			if (!e.pid || !owner_passes(e.pid, e.comm)) {
				filtered(SS_PACKET);
				return 0;
			}
			__u8 one = 1;
			bpf_map_update_elem(&owned_tuples, &k, &one, BPF_ANY);
		} else if (!bpf_map_lookup_elem(&owned_tuples, &k)) {
			struct ss_listen_key lk = {};
			lk.netns = e.netns;
			lk.port = e.sport;
			struct ss_listen_val *l = bpf_map_lookup_elem(&listeners, &lk);
			if (!l || !owner_passes(l->owner.pid, l->owner.comm)) {
				filtered(SS_PACKET);
				return 0;
			}
			set_owner(&e, &l->owner, SS_OWNER_LISTENER);
		}
	}
	if (!kind_on(SS_PACKET))
		return 0;

	struct tcp_full t = {};
	if (bpf_probe_read_kernel(t.b, 60, head + th))
		return 0;
	struct ss_packet_body *p = &e.u.pkt;
	p->dir = dir;
	p->seq = be32_at(t.b, 4);
	p->ack = be32_at(t.b, 8);
	__u32 doff = (t.b[12] >> 4) * 4;
	p->tcp_flags = t.b[13];
	p->window = ((__u16)t.b[14] << 8) | t.b[15];
	if (doff > 20)
		parse_options(p, t.b, doff, head + th);
	/* Payload: what the skb holds past the TCP header (GSO packets
	 * included), counted from skb->data as skb->len is. */
	__u32 skb_len = skb->len;
	__u32 hdr_end = th + doff - (__u32)(data - head);
	p->len = skb_len > hdr_end ? skb_len - hdr_end : 0;
	p->ifindex = (__u32)dev->ifindex;
	__u32 zero = 0;
	struct ss_cpu_state *si = bpf_map_lookup_elem(&softirq_now, &zero);
	p->softirq = si ? (__u8)si->vec : 0;
	if (!p->softirq) {
		__u64 pt = bpf_get_current_pid_tgid();
		e.tid = (__u32)pt;
	}
	e.ts_ns = bpf_ktime_get_ns();
	if (si && dir == SS_PKT_IN) {
		si->rx_gen = si->gen;
		si->rx_ts = e.ts_ns;
		si->rx.family = e.family;
		si->rx.sport = e.sport;
		si->rx.dport = e.dport;
		si->rx.netns = e.netns;
		__builtin_memcpy(si->rx.saddr, e.saddr, 16);
		__builtin_memcpy(si->rx.daddr, e.daddr, 16);
	}
	emit(&e);
	return 0;
}

SEC("tp_btf/net_dev_queue")
int ss_pkt_out(unsigned long long *ctx)
{
	if (cfg_noop_all)
		return 0;
	if (cfg_emit_only)
		return emit_only(SS_PACKET);
	return ss_packet((const struct sk_buff *)CTX_ARG(ctx, 0), SS_PKT_OUT);
}

SEC("tp_btf/netif_receive_skb")
int ss_pkt_in(unsigned long long *ctx)
{
	if (cfg_noop_all)
		return 0;
	if (cfg_emit_only)
		return emit_only(SS_PACKET);
	return ss_packet((const struct sk_buff *)CTX_ARG(ctx, 0), SS_PKT_IN);
}
