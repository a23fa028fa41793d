/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * counters.bpf.c: the programs behind `sockscope export --bpf`. They count
 * in a kernel map, per network namespace, local port and kind, and write
 * nothing else: no ring buffer, no per-event traffic to user space, which
 * reads the map when Prometheus scrapes.
 *
 *   retransmits    tcp:tcp_retransmit_skb   (the sending socket's port)
 *   resets sent    tcp:tcp_send_reset       (the socket's port; with no
 *                                            socket, a segment to a closed
 *                                            port: its destination port)
 *   resets recvd   tcp:tcp_receive_reset    (the receiving socket's port)
 *   drops          skb:kfree_skb            (TCP packets freed with a drop
 *                                            reason, by reason: the port of
 *                                            the packet's socket, else the
 *                                            destination port it arrived for)
 *
 * and two histograms per listener port, log2 buckets of microseconds:
 *
 *   handshake      sock:inet_sock_set_state, SYN-RECV to ESTABLISHED:
 *                  from the first SYN-ACK (sent as the SYN came in) to
 *                  the final ACK; tcp:tcp_retransmit_synack keeps when
 *                  the first SYN-ACK went for the handshakes that need
 *                  a retransmit
 *   duration       sock:inet_sock_set_state (a connection a listener
 *                  accepted, from ESTABLISHED until it reaches CLOSE)
 *
 * A separate object from trace.bpf.c, so that exporting loads only these
 * small programs and their maps. Built by build.sh like the tracer.
 */

#include "helpers.h"

/* The kinds, as user space numbers them (src/portcount.rs). */
#define SSC_RETRANSMIT 0
#define SSC_RESET_SENT 1
#define SSC_RESET_RECEIVED 2

struct ssc_key {
	__u32 netns;
	__u16 port;
	__u8 kind;
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ssc_key);
	__type(value, __u64);
} port_counts SEC(".maps");

/* Drops: (netns, local port, reason) -> packets. */
struct ssc_drop_key {
	__u32 netns;
	__u16 port;
	__u16 pad;
	__u32 reason;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ssc_drop_key);
	__type(value, __u64);
} drop_counts SEC(".maps");

/* Histograms: (netns, port, kind, slot) -> count; slot s counts values
 * of [2^s, 2^(s+1)) microseconds (slot 0 also 0), slot SSC_SLOT_SUM the
 * sum of the values in nanoseconds. */
#define SSC_HIST_DURATION 0
#define SSC_HIST_HANDSHAKE 1
#define SSC_SLOT_SUM 255

struct ssc_hist_key {
	__u32 netns;
	__u16 port;
	__u8 kind;
	__u8 slot;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, struct ssc_hist_key);
	__type(value, __u64);
} hist_counts SEC(".maps");

/* Connections a listener accepted, while established: socket address ->
 * when, and where (the port may be gone from the socket at close). An
 * LRU map, so that sockets it never saw close cannot fill it. */
struct ssc_born {
	__u64 ns;
	__u32 netns;
	__u16 port;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct ssc_born);
} born SEC(".maps");

/* Keys that found a map full (user space reports them as uncounted). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} port_counts_full SEC(".maps");

/* Drop reasons that are no packet lost, as this kernel numbers them
 * (user space reads them from its BTF enum skb_drop_reason before
 * loading): SKB_CONSUMED, NOT_SPECIFIED (kfree_skb() without a reason:
 * mostly not a network drop) and QUEUE_PURGE (a closing socket's queues
 * freed). 0 (SKB_NOT_DROPPED_YET) is never a drop. */
const volatile __u32 cfg_drop_skip[3] = {};


/* Add n to the counter at key k of map m. */
static __always_inline void ssc_add_n(void *m, const void *k, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(m, k);
	if (v) {
		__sync_fetch_and_add(v, n);
		return;
	}
	if (bpf_map_update_elem(m, k, &n, BPF_NOEXIST) == 0)
		return;
	/* Another CPU made it first, or the map is full. */
	v = bpf_map_lookup_elem(m, k);
	if (v) {
		__sync_fetch_and_add(v, n);
		return;
	}
	__u32 zero = 0;
	__u64 *full = bpf_map_lookup_elem(&port_counts_full, &zero);
	if (full)
		__sync_fetch_and_add(full, 1);
}

/* floor(log2(v)), 0 for 0 */
static __always_inline __u8 ssc_log2(__u64 v)
{
	__u8 r = 0;
	if (v >> 32) {
		v >>= 32;
		r += 32;
	}
	if (v >> 16) {
		v >>= 16;
		r += 16;
	}
	if (v >> 8) {
		v >>= 8;
		r += 8;
	}
	if (v >> 4) {
		v >>= 4;
		r += 4;
	}
	if (v >> 2) {
		v >>= 2;
		r += 2;
	}
	if (v >> 1)
		r += 1;
	return r;
}

/* One value of ns nanoseconds into a histogram. */
static __always_inline void ssc_observe(__u32 netns, __u16 port, __u8 kind, __u64 ns)
{
	struct ssc_hist_key k = {};
	k.netns = netns;
	k.port = port;
	k.kind = kind;
	k.slot = ssc_log2(ns / 1000);
	ssc_add_n(&hist_counts, &k, 1);
	k.slot = SSC_SLOT_SUM;
	ssc_add_n(&hist_counts, &k, ns);
}

static __always_inline void ssc_count(__u32 netns, __u16 port, __u8 kind)
{
	struct ssc_key k = {};
	k.netns = netns;
	k.port = port;
	k.kind = kind;
	ssc_add_n(&port_counts, &k, 1);
}

/* include/net/inet_sock.h: the source port, which stays set after a
 * closing socket left the port tables (and skc_num became 0), as when
 * close() with SO_LINGER 0 resets the connection. */
struct inet_sock {
	__be16 inet_sport;
} __core;

/* The socket's local port. */
static __always_inline __u16 ssc_port(const struct sock *sk)
{
	__u16 port = sk->__sk_common.skc_num;
	if (!port) {
		/* Beyond struct sock as the verifier types it: a probe read. */
		__be16 sport = 0;
		KREAD(sport, ((const struct inet_sock *)sk)->inet_sport);
		port = __builtin_bswap16(sport);
	}
	return port;
}

static __always_inline __u32 ssc_netns(const struct sock_common *skc)
{
	struct net *net = skc->skc_net.net;
	return net ? net->ns.inum : 0;
}

/* The kernel's tcp_retransmit_skb tracepoint has a third argument, err,
 * and fires for failed attempts too on newer kernels (user space reads the
 * argument count from the BTF). Off, the read of it is dead code the
 * verifier never sees, as older kernels refuse it. */
const volatile __u8 cfg_retransmit_err = 0;

SEC("tp_btf/tcp_retransmit_skb")
int ssc_retransmit(unsigned long long *ctx)
{
	const struct sock *sk = (const void *)CTX_ARG(ctx, 0);
	if (!sk)
		return 0;
	if (cfg_retransmit_err && (int)CTX_ARG(ctx, 2) != 0)
		return 0;
	ssc_count(ssc_netns(&sk->__sk_common), ssc_port(sk), SSC_RETRANSMIT);
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int ssc_send_reset(unsigned long long *ctx)
{
	const struct sock *sk = (const void *)CTX_ARG(ctx, 0);
	const struct sk_buff *skb = (const void *)CTX_ARG(ctx, 1);
	if (sk) {
		ssc_count(ssc_netns(&sk->__sk_common), ssc_port(sk), SSC_RESET_SENT);
		return 0;
	}
	/* No socket: the segment that arrived for none. Its destination port
	 * is ours; its namespace is its device's. */
	if (!skb)
		return 0;
	unsigned char *head = skb->head;
	__u16 th = skb->transport_header;
	if (!head || th == 0xffff)
		return 0;
	__be16 dest = 0;
	if (bpf_probe_read_kernel(&dest, sizeof(dest), head + th + 2))
		return 0;
	__u32 netns = 0;
	struct net_device *dev = skb->dev;
	if (dev) {
		struct net *net = dev->nd_net.net;
		netns = net ? net->ns.inum : 0;
	}
	ssc_count(netns, __builtin_bswap16(dest), SSC_RESET_SENT);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int ssc_receive_reset(unsigned long long *ctx)
{
	const struct sock *sk = (const void *)CTX_ARG(ctx, 0);
	if (!sk)
		return 0;
	ssc_count(ssc_netns(&sk->__sk_common), ssc_port(sk), SSC_RESET_RECEIVED);
	return 0;
}

/* The source and destination ports (network byte order) of a TCP packet
 * over IPv4 or IPv6; false for anything else or headers not set. */
static __always_inline bool ssc_tcp_ports(const struct sk_buff *skb, __be16 ports[2])
{
	unsigned char *head = skb->head;
	__u16 nh = skb->network_header;
	__u16 th = skb->transport_header;
	__be16 proto = skb->protocol;
	if (!head || nh == 0xffff)
		return false;
	proto = __builtin_bswap16(proto);
	if (proto == ETH_P_IP) {
		struct iphdr ip;
		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh))
			return false;
		if ((ip.ihl_version >> 4) != 4 || ip.protocol != IPPROTO_TCP)
			return false;
		if (th == 0xffff || th <= nh)
			th = nh + (ip.ihl_version & 0x0f) * 4;
	} else if (proto == ETH_P_IPV6) {
		struct ipv6hdr ip6;
		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh))
			return false;
		if ((ip6.priority_version >> 4) != 6 || ip6.nexthdr != IPPROTO_TCP)
			return false;
		if (th == 0xffff || th <= nh)
			th = nh + sizeof(struct ipv6hdr);
	} else {
		return false;
	}
	return bpf_probe_read_kernel(ports, 2 * sizeof(__be16), head + th) == 0;
}

/* skb:kfree_skb(skb, location, reason[, rx_sk]): a packet dropped, with
 * the kernel's reason. Only TCP packets (IPv4 or IPv6 without extension
 * headers) count. The local port: the packet's socket's, when it has one
 * (sent, or queued to a socket); else the destination port, the packet
 * having arrived for it (a segment to a closed port, one a netfilter rule
 * dropped on input). The namespace: the device's, else the socket's. */
SEC("tp_btf/kfree_skb")
int ssc_drop(unsigned long long *ctx)
{
	const struct sk_buff *skb = (const void *)CTX_ARG(ctx, 0);
	__u32 reason = (__u32)CTX_ARG(ctx, 2);
	if (!skb || reason == 0 || reason == cfg_drop_skip[0] || reason == cfg_drop_skip[1] ||
	    reason == cfg_drop_skip[2])
		return 0;
	__be16 ports[2] = {};
	if (!ssc_tcp_ports(skb, ports))
		return 0;
	const struct sock *sk = skb->sk;
	struct ssc_drop_key k = {};
	k.reason = reason;
	if (sk) {
		k.port = ssc_port(sk);
		k.netns = ssc_netns(&sk->__sk_common);
	} else {
		k.port = __builtin_bswap16(ports[1]);
	}
	struct net_device *dev = skb->dev;
	if (dev) {
		struct net *net = dev->nd_net.net;
		if (net)
			k.netns = net->ns.inum;
	}
	ssc_add_n(&drop_counts, &k, 1);
	return 0;
}

/* include/linux/tcp.h: when the first SYN-ACK of a request socket went
 * out (tcp_clock_us: CLOCK_MONOTONIC microseconds) */
struct tcp_request_sock {
	__u64 snt_synack;
} __core;

/* Handshakes whose SYN-ACK went again: (netns, local port, remote port)
 * -> when the first SYN-ACK went, in nanoseconds. The connection's
 * socket is not made yet; the key is what it will share with it. */
struct ssc_conn_key {
	__u32 netns;
	__u16 lport;
	__u16 rport;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ssc_conn_key);
	__type(value, __u64);
} synack_first SEC(".maps");

/* tcp:tcp_retransmit_synack(listener, req): the handshake will need more
 * than one round trip; remember when its first SYN-ACK went. */
SEC("tp_btf/tcp_retransmit_synack")
int ssc_synack(unsigned long long *ctx)
{
	const struct sock *listener = (const void *)CTX_ARG(ctx, 0);
	const struct request_sock *req = (const void *)CTX_ARG(ctx, 1);
	if (!listener || !req)
		return 0;
	__u64 first_us = 0;
	KREAD(first_us, ((const struct tcp_request_sock *)req)->snt_synack);
	if (!first_us)
		return 0;
	struct ssc_conn_key k = {};
	k.netns = ssc_netns(&listener->__sk_common);
	k.lport = req->__req_common.skc_num;
	k.rport = req->__req_common.skc_dport;
	__u64 first_ns = first_us * 1000;
	bpf_map_update_elem(&synack_first, &k, &first_ns, BPF_NOEXIST);
	return 0;
}

/* A connection a listener accepted is established: its handshake took
 * from the first SYN-ACK to now. Without a SYN-ACK retransmit the kernel
 * measured exactly that as the socket's first round trip
 * (tcp_synack_rtt_meas: now - snt_synack, just before this state change),
 * which is its smoothed RTT now (srtt_us holds 8 x the first sample). */
static __always_inline void ssc_handshake(const struct sock *sk, __u32 netns, __u16 port, __u64 now)
{
	struct ssc_conn_key k = {};
	k.netns = netns;
	k.lport = port;
	k.rport = sk->__sk_common.skc_dport;
	__u64 *first = bpf_map_lookup_elem(&synack_first, &k);
	if (first) {
		__u64 then = *first;
		bpf_map_delete_elem(&synack_first, &k);
		if (now > then)
			ssc_observe(netns, port, SSC_HIST_HANDSHAKE, now - then);
		return;
	}
	const struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return;
	__u32 srtt = tp->srtt_us >> 3;
	if (srtt)
		ssc_observe(netns, port, SSC_HIST_HANDSHAKE, (__u64)srtt * 1000);
}

/* sock:inet_sock_set_state(sk, oldstate, newstate): a TCP connection a
 * listener accepted (SYN-RECV to ESTABLISHED) is timed from then until it
 * reaches CLOSE, whichever way (FIN, reset, timeout). */
SEC("tp_btf/inet_sock_set_state")
int ssc_state(unsigned long long *ctx)
{
	const struct sock *sk = (const void *)CTX_ARG(ctx, 0);
	int oldstate = (int)CTX_ARG(ctx, 1);
	int newstate = (int)CTX_ARG(ctx, 2);
	if (!sk || sk->sk_protocol != IPPROTO_TCP)
		return 0;
	__u64 key = (__u64)sk;
	if (oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED) {
		struct ssc_born b = {};
		b.ns = bpf_ktime_get_ns();
		b.netns = ssc_netns(&sk->__sk_common);
		b.port = sk->__sk_common.skc_num;
		bpf_map_update_elem(&born, &key, &b, BPF_ANY);
		ssc_handshake(sk, b.netns, b.port, b.ns);
		return 0;
	}
	if (newstate != TCP_CLOSE)
		return 0;
	struct ssc_born *b = bpf_map_lookup_elem(&born, &key);
	if (!b)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	if (now > b->ns)
		ssc_observe(b->netns, b->port, SSC_HIST_DURATION, now - b->ns);
	bpf_map_delete_elem(&born, &key);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
