/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * event.h: the record every program writes to the ring buffer, and the
 * configuration user space hands to the programs. This is the contract with
 * crates/trace/src/abi.rs: change one, change the other, and bump
 * SS_EVENT_VERSION when the layout changes.
 *
 * Layout (little endian on the machines that run it, naturally aligned,
 * SS_EVENT_SIZE bytes):
 *
 *   0 version u8     1 kind u8     2 family u8    3 state u8
 *   4 sport u16 (local port, host order)   6 dport u16 (remote port)
 *   8 ts_ns u64 (CLOCK_MONOTONIC)
 *  16 sk u64 (kernel address of the socket: its identity while it lives)
 *  24 cookie u64 (socket cookie, 0 when unknown)
 *  32 netns u32 (inode of the socket's network namespace)
 *  36 pid u32 (owner's tgid, 0 when unknown)
 *  40 tid u32 (task that ran, in process context; 0 in softirq)
 *  44 fd s32 (owner's fd, -1 when unknown)
 *  48 saddr[16]  64 daddr[16] (IPv4 in the first 4 bytes)
 *  80 comm[16] (owner's command)
 *  96 owner_src u8   97 protocol u8   98 flags u16   100 cpu u32
 * 104 body (72 bytes, by kind, below)
 */
#ifndef SOCKSCOPE_EVENT_H
#define SOCKSCOPE_EVENT_H

#include "kernel.h"

#define SS_EVENT_VERSION 1
#define SS_EVENT_SIZE 176

enum ss_kind {
	SS_STATE = 1,		 /* sock:inet_sock_set_state */
	SS_RETRANSMIT = 2,	 /* tcp:tcp_retransmit_skb */
	SS_RETRANSMIT_SYNACK = 3, /* tcp:tcp_retransmit_synack */
	SS_RESET_SENT = 4,	 /* tcp:tcp_send_reset */
	SS_RESET_RECEIVED = 5,	 /* tcp:tcp_receive_reset */
	SS_DESTROY = 6,		 /* tcp:tcp_destroy_sock */
	SS_DROP = 7,		 /* skb:kfree_skb */
	SS_SYSCALL = 8,		 /* raw_syscalls:sys_enter / sys_exit */
	SS_SEND = 9,		 /* sock:sock_send_length */
	SS_RECV = 10,		 /* sock:sock_recv_length */
	SS_PACKET = 11,		 /* net:net_dev_queue / net:netif_receive_skb */
	SS_WAIT = 12,		 /* syscalls:sys_enter/exit_{select,poll,epoll_wait...} */
	SS_WAKE = 13,		 /* sched:sched_wakeup of a task blocked in a traced wait */
	SS_KIND_MAX = 14,
};

/* Where the owner fields came from. */
enum ss_owner_src {
	SS_OWNER_NONE = 0,
	SS_OWNER_TASK = 1,	/* the task that made the syscall */
	SS_OWNER_SOCKET = 2,	/* learned from an earlier syscall on this socket */
	SS_OWNER_LISTENER = 3,	/* not accepted yet: the listener's owner */
	SS_OWNER_SNAPSHOT = 4,	/* user space's fd-table scan at start */
};

/* Our own syscall numbers, the same on every architecture. */
enum ss_sys {
	SYS_OTHER = 0,
	SYS_SOCKET = 1,
	SYS_BIND = 2,
	SYS_LISTEN = 3,
	SYS_ACCEPT = 4,
	SYS_ACCEPT4 = 5,
	SYS_CONNECT = 6,
	SYS_SHUTDOWN = 7,
	SYS_SETSOCKOPT = 8,
	SYS_CLOSE = 9,
	SYS_READ = 10,
	SYS_WRITE = 11,
	SYS_SENDTO = 12,
	SYS_RECVFROM = 13,
	SYS_SENDMSG = 14,
	SYS_RECVMSG = 15,
	SYS_READV = 16,
	SYS_WRITEV = 17,
	SYS_SENDMMSG = 18,
	SYS_RECVMMSG = 19,
	SYS_SENDFILE = 20,
	SYS_SPLICE = 21,
	SYS_FCNTL = 22,
	SYS_SELECT = 23,
	SYS_PSELECT6 = 24,
	SYS_POLL = 25,
	SYS_PPOLL = 26,
	SYS_EPOLL_WAIT = 27,
	SYS_EPOLL_PWAIT = 28,
	SYS_EPOLL_PWAIT2 = 29,
};

/* flags (offset 98) */
#define SS_F_NOT_FULLSOCK 1 /* the socket was a request or timewait sock */
#define SS_F_PACKET_TUPLE 2 /* saddr/sport are the packet's source, not "local" */

struct ss_state_body {
	__u32 oldstate;
	__u32 newstate;
	__u64 born_ns; /* first state change seen, when the kernel keeps births (cfg_kernel_births); else 0 */
};

struct ss_retrans_body {
	__u32 state;
	__s32 err;
	__u64 skb;
	__u32 len;
	__u8 tcp_flags;
};

struct ss_synack_body {
	__u64 listener;
	__u64 req;
};

struct ss_reset_body {
	__u32 state;
	__u32 reason; /* enum sk_rst_reason (kernel BTF names it) */
	__u64 skb;
};

struct ss_destroy_body {
	__u64 born_ns; /* as in ss_state_body */
	__u64 bytes_acked;
	__u64 bytes_received;
	__u64 bytes_sent;
	__u64 bytes_retrans;
	__u32 total_retrans;
	__u32 segs_in;
	__u32 segs_out;
	__u32 srtt_us; /* smoothed RTT << 3, as the kernel keeps it */
};

struct ss_drop_body {
	__u32 reason; /* enum skb_drop_reason (kernel BTF names it) */
	__u32 len;
	__u64 location;
	__u8 tcp_flags;
	__u8 rx_sk;
};

struct ss_sys_body {
	__u16 sys;	 /* enum ss_sys */
	__u16 addr_family; /* sockaddr argument, 0 if none */
	__s32 fd;	 /* fd argument (listener for accept) */
	__s64 ret;
	__u64 dur_ns;
	__u64 arg[3];	 /* per syscall, see abi.rs */
	__u8 addr[16];	 /* sockaddr address */
	__u16 addr_port; /* sockaddr port, host order */
};

struct ss_io_body {
	__u16 sys;
	__u16 _pad;
	__s32 fd;
	__s32 ret;
	__s32 flags;
};

/* A TCP segment at a device: leaving (net:net_dev_queue, before the
 * qdisc, where tcpdump sees it too) or arriving (net:netif_receive_skb,
 * which every receive path goes through, GRO included). The event's tuple
 * is the local end's first (saddr/sport local) in both directions. */
#define SS_PKT_IN 1
#define SS_PKT_OUT 2
/* opts bits */
#define SS_PKT_SACK_PERM 1
#define SS_PKT_TS 2
#define SS_PKT_MSS 4
#define SS_PKT_WSCALE 8
struct ss_packet_body {
	__u8 dir;	/* SS_PKT_IN / SS_PKT_OUT */
	__u8 tcp_flags; /* FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10 URG 0x20 ECE 0x40 CWR 0x80 */
	__u8 wscale;	/* window scale option (SS_PKT_WSCALE) */
	__u8 opts;	/* SS_PKT_* */
	__u32 ifindex;
	__u32 seq;	/* host order, absolute */
	__u32 ack;
	__u32 len;	/* TCP payload bytes */
	__u16 window;	/* as on the wire (unscaled) */
	__u16 mss;	/* MSS option (SS_PKT_MSS) */
	__u8 sack_n;	/* SACK blocks (up to 4 kept) */
	__u8 softirq;	/* softirq vector + 1 running on this CPU, 0: none */
	__u16 _pad;
	__u32 tsval;	/* timestamps option (SS_PKT_TS) */
	__u32 tsecr;
	__u32 sack[8];	/* left, right edges of each block */
};

/* A wait of a process that owns a traced socket (SS_WAIT, at entry and at
 * exit) and its wakeup (SS_WAKE). For the exit and the wakeup, the event's
 * tuple is the connection of the packet that caused the wakeup (local end
 * first), when a traced packet was being received on the waking CPU. */
#define SS_WAIT_ENTER 1
#define SS_WAIT_EXIT 2
struct ss_wait_body {
	__u16 sys;	/* enum ss_sys */
	__u8 phase;	/* SS_WAIT_ENTER / SS_WAIT_EXIT (SS_WAKE: 0) */
	__u8 cause;	/* 1: the tuple is the causing packet's connection */
	__s32 waker_pid; /* SS_WAKE: the task that woke it (0 in softirq) */
	__s64 ret;	/* exit */
	__u64 dur_ns;	/* exit: since entry */
	__u64 wake_ns;	/* exit, wake: time of the (first) wakeup, 0 if none */
	__u64 cause_ns;	/* time of the causing packet, 0 if none */
	__u32 wake_cpu; /* CPU that ran the wakeup */
	__u32 arg;	/* nfds / maxevents */
	__s64 timeout;	/* select/poll/epoll timeout argument as given (ms for poll
			 * and epoll_wait; -1: none known) */
};

struct ss_event {
	__u8 version;
	__u8 kind;
	__u8 family;
	__u8 state;
	__u16 sport;
	__u16 dport;
	__u64 ts_ns;
	__u64 sk;
	__u64 cookie;
	__u32 netns;
	__u32 pid;
	__u32 tid;
	__s32 fd;
	__u8 saddr[16];
	__u8 daddr[16];
	char comm[16];
	__u8 owner_src;
	__u8 protocol;
	__u16 flags;
	__u32 cpu;
	union {
		struct ss_state_body state;
		struct ss_retrans_body retrans;
		struct ss_synack_body synack;
		struct ss_reset_body reset;
		struct ss_destroy_body destroy;
		struct ss_drop_body drop;
		struct ss_sys_body sys;
		struct ss_io_body io;
		struct ss_packet_body pkt;
		struct ss_wait_body wait;
		__u8 raw[72];
	} u;
};

_Static_assert(sizeof(struct ss_event) == SS_EVENT_SIZE, "event layout");

/* A ring buffer record is one event (SS_EVENT_SIZE bytes, kind < 16)
 * or a batch: this 8-byte header (kind SS_BATCH), then `count` events,
 * in the order the CPU that gathered them added them (about time order:
 * a program that ran in between, an interrupt, can add a later event
 * before an earlier one is added). See output() in common.h. */
#define SS_BATCH 0x80
#define SS_BATCH_MAX 16
#define SS_BATCH_AGE_NS 2000000ULL
struct ss_batch_head {
	__u8 version;
	__u8 kind;
	__u16 count;
	__u32 _pad;
};

/* Counters (per-CPU array "stats"): index = kind for events written,
 * SS_STAT_LOST + kind for events lost because the ring buffer was full,
 * SS_STAT_FILTERED + kind for events the kernel-side filter dropped. */
#define SS_STAT_LOST 16
#define SS_STAT_FILTERED 32
#define SS_STAT_MAX 48

/* An owner as the maps keep it. */
struct ss_owner {
	__u32 pid;
	__s32 fd;
	char comm[16];
	__u8 src;
	__u8 closed; /* the owner closed this fd; the socket lives on */
	__u16 _pad;
	__u32 _pad2;
};

struct ss_listen_key {
	__u32 netns;
	__u16 port;
	__u16 _pad;
};

struct ss_listen_val {
	struct ss_owner owner;
	__u64 sk;
};

/* LPM trie key for address filters: IPv4 as ::ffff:a.b.c.d */
struct ss_addr_key {
	__u32 prefixlen;
	__u8 addr[16];
};

#endif
