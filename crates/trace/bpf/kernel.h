/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * kernel.h: the few kernel types sockscope's BPF programs read, declared by
 * hand instead of including a generated multi-megabyte vmlinux.h.
 *
 * Every struct here carries preserve_access_index, so clang records each
 * field access as a CO-RE relocation: the loader (aya) rewrites the offset
 * against the running kernel's BTF (/sys/kernel/btf/vmlinux). Only the
 * member names, and the sizes of the members that are read, must match the
 * kernel; order and the other members do not matter. Anonymous unions in
 * the kernel (sock_common's address and port pairs) are found by name.
 *
 * Fixed user-space ABI headers (IPv4, IPv6 and TCP headers) are plain
 * structs: their layout never changes.
 */
#ifndef SOCKSCOPE_KERNEL_H
#define SOCKSCOPE_KERNEL_H

typedef unsigned char __u8;
typedef signed char __s8;
typedef unsigned short __u16;
typedef short __s16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef _Bool bool;
#define true 1
#define false 0
#define NULL ((void *)0)

#define __core __attribute__((preserve_access_index))

/* include/uapi/linux/in6.h */
struct in6_addr {
	union {
		__u8 u6_addr8[16];
		__be32 u6_addr32[4];
	} in6_u;
} __core;

/* include/linux/ns_common.h */
struct ns_common {
	unsigned int inum;
} __core;

/* include/net/net_namespace.h */
struct net {
	struct ns_common ns;
} __core;

/* include/net/net_namespace.h: possible_net_t */
typedef struct {
	struct net *net;
} __core possible_net_t;

/* include/linux/types.h: atomic64_t */
typedef struct {
	__s64 counter;
} __core atomic64_t;

/* include/net/sock.h: the part every socket (full, request, timewait) shares */
struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	unsigned char skc_state;
	possible_net_t skc_net;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
	atomic64_t skc_cookie;
} __core;

/* include/net/sock.h */
struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
	__u16 sk_type;
	__u32 sk_ack_backlog;
	__u32 sk_max_ack_backlog;
} __core;

/* include/net/request_sock.h */
struct request_sock {
	struct sock_common __req_common;
} __core;

/* include/linux/tcp.h: the counters tcp_destroy_sock reports */
struct tcp_sock {
	__u32 segs_in;
	__u32 segs_out;
	__u32 srtt_us;
	__u32 total_retrans;
	__u64 bytes_received;
	__u64 bytes_acked;
	__u64 bytes_sent;
	__u64 bytes_retrans;
} __core;

/* include/linux/net.h */
struct socket {
	struct sock *sk;
} __core;

/* include/linux/fs.h */
struct inode {
	unsigned short i_mode;
	unsigned long i_ino;
} __core;

struct file {
	struct inode *f_inode;
	void *private_data;
} __core;

/* include/linux/fdtable.h */
struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __core;

struct files_struct {
	struct fdtable *fdt;
} __core;

/* include/linux/nsproxy.h */
struct nsproxy {
	struct net *net_ns;
} __core;

/* include/linux/sched.h */
struct task_struct {
	unsigned int flags;
	int pid;
	int tgid;
	char comm[16];
	struct files_struct *files;
	struct nsproxy *nsproxy;
} __core;

/* include/linux/netdevice.h */
struct net_device {
	possible_net_t nd_net;
	int ifindex;
} __core;

/* include/linux/skbuff.h */
struct sk_buff {
	struct net_device *dev;
	struct sock *sk;
	unsigned int len;
	__be16 protocol;
	__u16 transport_header;
	__u16 network_header;
	unsigned char *head;
	unsigned char *data;
} __core;

/* arch/x86/include/asm/ptrace.h, arch/arm64/include/asm/ptrace.h.
 * SYSCALL_NR and SYSCALL_ARGn name the saved registers, read directly
 * through the BTF pointer the tracepoint or bpf_task_pt_regs() gives. */
#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	unsigned long di;
	unsigned long si;
	unsigned long dx;
	unsigned long r10;
	unsigned long r8;
	unsigned long orig_ax;
} __core;
#define SYSCALL_NR(regs) ((regs)->orig_ax)
#define SYSCALL_ARG0(regs) ((regs)->di)
#define SYSCALL_ARG1(regs) ((regs)->si)
#define SYSCALL_ARG2(regs) ((regs)->dx)
#define SYSCALL_ARG3(regs) ((regs)->r10)
#define SYSCALL_ARG4(regs) ((regs)->r8)
#elif defined(__TARGET_ARCH_arm64)
struct pt_regs {
	unsigned long long regs[31];
	unsigned long long orig_x0;
	int syscallno;
} __core;
#define SYSCALL_NR(regs) ((regs)->syscallno)
/* x0 is overwritten by the return value; orig_x0 keeps the first argument */
#define SYSCALL_ARG0(regs) ((regs)->orig_x0)
#define SYSCALL_ARG1(regs) ((regs)->regs[1])
#define SYSCALL_ARG2(regs) ((regs)->regs[2])
#define SYSCALL_ARG3(regs) ((regs)->regs[3])
#define SYSCALL_ARG4(regs) ((regs)->regs[4])
#else
#error "define __TARGET_ARCH_x86 or __TARGET_ARCH_arm64"
#endif

/* Fixed wire formats: include/uapi/linux/ip.h, ipv6.h, tcp.h */
struct iphdr {
	__u8 ihl_version; /* ihl in the low nibble (little endian bitfield) */
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__u16 check;
	__be32 saddr;
	__be32 daddr;
};

struct ipv6hdr {
	__u8 priority_version;
	__u8 flow_lbl[3];
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	struct in6_addr saddr;
	struct in6_addr daddr;
};

struct tcphdr {
	__be16 source;
	__be16 dest;
	__be32 seq;
	__be32 ack_seq;
	__u8 doff_res;
	__u8 flags; /* FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10 URG 0x20 */
	__be16 window;
	__u16 check;
	__u16 urg_ptr;
};

/* Constants: include/linux/socket.h, include/uapi/linux/in.h,
 * include/net/tcp_states.h, include/uapi/linux/if_ether.h,
 * include/uapi/linux/stat.h, include/linux/sched.h */
#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_FIN_WAIT1 4
#define TCP_FIN_WAIT2 5
#define TCP_TIME_WAIT 6
#define TCP_CLOSE 7
#define TCP_CLOSE_WAIT 8
#define TCP_LAST_ACK 9
#define TCP_LISTEN 10
#define TCP_CLOSING 11
#define TCP_NEW_SYN_RECV 12
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define PF_KTHREAD 0x00200000

#endif
