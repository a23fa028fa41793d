/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * packet.h: the TCP 4-tuple and flags of a packet, read from an sk_buff's
 * IPv4 or IPv6 header and TCP header (for resets sent without a socket and
 * for dropped packets). IPv6 extension headers are not followed.
 */
#ifndef SOCKSCOPE_PACKET_H
#define SOCKSCOPE_PACKET_H

#include "common.h"

/* Fill family, addresses and ports as the packet carries them (source in
 * saddr/sport) and the TCP flags. False when it is not a TCP packet with
 * headers we can find. */
static __always_inline bool skb_tuple(struct ss_event *e, const struct sk_buff *skb,
				      __u8 *tcp_flags)
{
	unsigned char *head = NULL;
	__u16 nh = 0, th = 0;
	__be16 proto = 0;

	KREAD(head, skb->head);
	KREAD(nh, skb->network_header);
	KREAD(th, skb->transport_header);
	KREAD(proto, skb->protocol);
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
		e->family = AF_INET;
		__builtin_memcpy(e->saddr, &ip.saddr, 4);
		__builtin_memcpy(e->daddr, &ip.daddr, 4);
	} else if (proto == ETH_P_IPV6) {
		struct ipv6hdr ip6;
		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh))
			return false;
		if ((ip6.priority_version >> 4) != 6 || ip6.nexthdr != IPPROTO_TCP)
			return false;
		if (th == 0xffff || th <= nh)
			th = nh + sizeof(struct ipv6hdr);
		e->family = AF_INET6;
		__builtin_memcpy(e->saddr, &ip6.saddr, 16);
		__builtin_memcpy(e->daddr, &ip6.daddr, 16);
	} else {
		return false;
	}
	struct tcphdr tcp;
	if (bpf_probe_read_kernel(&tcp, sizeof(tcp), head + th))
		return false;
	e->sport = __builtin_bswap16(tcp.source);
	e->dport = __builtin_bswap16(tcp.dest);
	*tcp_flags = tcp.flags;
	return true;
}

/* Namespace of a packet: its device's, else its socket's. */
static __always_inline __u32 skb_netns(const struct sk_buff *skb)
{
	struct net_device *dev = NULL;
	struct sock *sk = NULL;
	KREAD(dev, skb->dev);
	if (dev) {
		struct net *net = NULL;
		KREAD(net, dev->nd_net.net);
		return net_inum(net);
	}
	KREAD(sk, skb->sk);
	if (sk)
		return sk_netns(&sk->__sk_common);
	return 0;
}

/* Swap source and destination: a packet that came in, seen from the
 * receiving end. */
static __always_inline void swap_tuple(struct ss_event *e)
{
	__u8 t[16];
	__u16 p = e->sport;
	e->sport = e->dport;
	e->dport = p;
	__builtin_memcpy(t, e->saddr, 16);
	__builtin_memcpy(e->saddr, e->daddr, 16);
	__builtin_memcpy(e->daddr, t, 16);
}

#endif
