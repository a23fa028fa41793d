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
 *
 * A separate object from trace.bpf.c, so that exporting loads only these
 * three small programs and one map. Built by build.sh like the tracer.
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

/* Keys that found the map full (user space reports them as folded). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} port_counts_full SEC(".maps");

static __always_inline void ssc_count(__u32 netns, __u16 port, __u8 kind)
{
	struct ssc_key k = {};
	k.netns = netns;
	k.port = port;
	k.kind = kind;
	__u64 *v = bpf_map_lookup_elem(&port_counts, &k);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	__u64 one = 1;
	if (bpf_map_update_elem(&port_counts, &k, &one, BPF_NOEXIST) == 0)
		return;
	/* Another CPU made it first, or the map is full. */
	v = bpf_map_lookup_elem(&port_counts, &k);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	__u32 zero = 0;
	__u64 *full = bpf_map_lookup_elem(&port_counts_full, &zero);
	if (full)
		__sync_fetch_and_add(full, 1);
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

char LICENSE[] SEC("license") = "Dual MIT/GPL";
