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

/* Add one to the counter at key k of map m. */
static __always_inline void ssc_add(void *m, const void *k)
{
	__u64 *v = bpf_map_lookup_elem(m, k);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	__u64 one = 1;
	if (bpf_map_update_elem(m, k, &one, BPF_NOEXIST) == 0)
		return;
	/* Another CPU made it first, or the map is full. */
	v = bpf_map_lookup_elem(m, k);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	__u32 zero = 0;
	__u64 *full = bpf_map_lookup_elem(&port_counts_full, &zero);
	if (full)
		__sync_fetch_and_add(full, 1);
}

static __always_inline void ssc_count(__u32 netns, __u16 port, __u8 kind)
{
	struct ssc_key k = {};
	k.netns = netns;
	k.port = port;
	k.kind = kind;
	ssc_add(&port_counts, &k);
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

SEC("tp_btf/tcp_retransmit_skb")
int ssc_retransmit(unsigned long long *ctx)
{
	const struct sock *sk = (const void *)CTX_ARG(ctx, 0);
	if (!sk)
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
	ssc_add(&drop_counts, &k);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
