/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * common.h: what every program shares: the configuration user space sets
 * before loading (read-only globals, so the verifier prunes what is off),
 * the maps (ring buffer, counters, owners, filters), and the small
 * functions that read a socket's identity, apply the filters, attribute an
 * event to a process and write it to the ring buffer.
 */
#ifndef SOCKSCOPE_COMMON_H
#define SOCKSCOPE_COMMON_H

#include "helpers.h"
#include "event.h"

/* ---- configuration (.rodata, patched by the loader) ---- */

/* Only sockets of this network namespace (its inode); 0: every namespace. */
const volatile __u32 cfg_netns = 0;
/* Which filter maps are in use. */
const volatile __u8 cfg_filter_port = 0;
const volatile __u8 cfg_filter_addr = 0;
const volatile __u8 cfg_filter_pid = 0;
const volatile __u8 cfg_filter_comm = 0;
/* The ports of the port filter, one bit per port (8 KiB): a test is a
 * load from read-only memory, not a map lookup, and every program that
 * sees a busy server's traffic makes it (twice) for every event. */
const volatile __u64 cfg_port_bits[1024] = {};
/* The kernel has the bpf_rdonly_cast kfunc and the loader linked it;
 * otherwise the loader turned its calls into moves and the code behind
 * this flag is never verified. */
const volatile __u8 cfg_kfunc_cast = 0;
/* Keep the births map (see above). */
const volatile __u8 cfg_kernel_births = 0;
/* Keep the owner maps and attribute events in the kernel (see above). */
const volatile __u8 cfg_kernel_owners = 0;
/* Benchmark only: the syscall programs return at once (what attaching
 * them costs by itself). */
const volatile __u8 cfg_syscall_noop = 0;
/* Benchmark only: every program returns at once (what attaching the
 * tracepoints costs by itself: the floor under any tracer using them). */
const volatile __u8 cfg_noop_all = 0;
/* Benchmark only: each program that writes events writes one empty event
 * of its kind per run and does nothing else; the others return at once
 * (see emit_only below). */
const volatile __u8 cfg_emit_only = 0;
/* States of interest as a mask (1 << TCP state); 0: all. */
const volatile __u32 cfg_states = 0;
/* Bit (1 << kind) for each kind of event to write; the programs of a kind
 * that is off still run where they keep the owner maps up to date. */
const volatile __u32 cfg_emit = 0xffffffff;
/* sockscope's own tgid, never traced. */
const volatile __u32 cfg_self = 0;
/* A drop reason not worth an event (QUEUE_PURGE: a closing socket's
 * queues freed, not a packet lost); its value comes from the kernel's
 * BTF, since reason numbers change between kernels. 0: none. */
const volatile __u32 cfg_drop_skip = 0;
/* Wake the reader only when this much is waiting in the ring buffer
 * (user space also polls every few tens of milliseconds): a wakeup per
 * event would cost more than the event. */
const volatile __u64 cfg_wakeup_bytes = 1 << 20;

/* ---- maps ---- */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SS_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* The owner maps below serve when the kernel must attribute events to
 * processes (cfg_kernel_owners): for the pid and command filters (events
 * that run outside their process, state changes in softirq, destroy,
 * drops, need an owner to be filtered by it), and when the syscall, data
 * or state events user space would attribute by are not all shown.
 * Otherwise the programs skip them (the verifier prunes the code, the
 * configuration being read-only), and user space attributes events to
 * processes itself: it sees the same syscalls, the start snapshot and the
 * listeners.
 *
 * socket address -> the process and fd last seen using it */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct ss_owner);
} owners SEC(".maps");

/* socket cookie -> owner, from user space's fd-table scan at start */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct ss_owner);
} cookie_owners SEC(".maps");

/* (netns, port) of a listener -> its owner, for connections not accepted yet */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct ss_listen_key);
	__type(value, struct ss_listen_val);
} listeners SEC(".maps");

/* socket address -> time of its first state change, for the lifetime in
 * the destroy event when user space cannot time it: when state changes
 * are not all shown (--events without state, --state, --pid, --comm).
 * Otherwise user space times sockets from the events it sees. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} births SEC(".maps");

/* filters: presence of a key means "wanted" (ports: cfg_port_bits) */

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ss_addr_key);
	__type(value, __u8);
} f_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} f_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, char[16]);
	__type(value, __u8);
} f_comms SEC(".maps");

static long (*bpf_ringbuf_output)(void *ringbuf, void *data, __u64 size,
				  __u64 flags) = (void *)130;
static __u64 (*bpf_ringbuf_query)(void *ringbuf, __u64 flags) = (void *)134;
#define BPF_RB_NO_WAKEUP 1
#define BPF_RB_FORCE_WAKEUP 2
#define BPF_RB_AVAIL_DATA 0

/* Processes that own a traced socket (tgid): their waits are traced. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} wait_pids SEC(".maps");

/* Whether a map ever got an entry, one slot per map: until then (a
 * filter that matched no socket yet, a port that saw no traffic) the
 * programs skip its lookups. Set before the first entry is written. */
#define USED_WAIT_PIDS 0
#define USED_PORT_PASSED 1
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} ever_used SEC(".maps");

static __always_inline bool map_ever_used(__u32 which)
{
	__u32 *used = bpf_map_lookup_elem(&ever_used, &which);
	return used && *used;
}

static __always_inline void map_now_used(__u32 which)
{
	__u32 *used = bpf_map_lookup_elem(&ever_used, &which);
	if (used && !*used)
		*used = 1;
}

static __always_inline bool wait_pids_any(void)
{
	return map_ever_used(USED_WAIT_PIDS);
}

/* ---- counters ---- */

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		*v += 1;
}

static __always_inline bool kind_on(__u32 kind)
{
	return (cfg_emit >> kind) & 1;
}

/* ---- socket identity ---- */

static __always_inline __u32 net_inum(struct net *net)
{
	__u32 inum = 0;
	if (net)
		KREAD(inum, net->ns.inum);
	return inum;
}

/* Namespace of a socket reached through a plain address. */
static __always_inline __u32 sk_netns(const struct sock_common *skc)
{
	struct net *net = NULL;
	KREAD(net, skc->skc_net.net);
	return net_inum(net);
}

/* Namespace of the running task (a BTF walk). */
static __always_inline __u32 task_netns(void)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct nsproxy *ns = t->nsproxy;
	if (!ns)
		return 0;
	struct net *net = ns->net_ns;
	return net ? net->ns.inum : 0;
}

/* Family, state, ports, addresses and namespace of any socket (full,
 * request or timewait: they all start with sock_common) reached through a
 * BTF pointer. Returns the family. */
static __always_inline __u16 fill_sock_btf(struct ss_event *e, const struct sock_common *skc)
{
	__u16 family = skc->skc_family;
	e->family = (__u8)family;
	e->state = skc->skc_state;
	e->sport = skc->skc_num;
	e->dport = __builtin_bswap16(skc->skc_dport);
	__u32 *s = (__u32 *)e->saddr;
	__u32 *d = (__u32 *)e->daddr;
	if (family == AF_INET) {
		s[0] = skc->skc_rcv_saddr;
		d[0] = skc->skc_daddr;
	} else if (family == AF_INET6) {
		s[0] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[0];
		s[1] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[1];
		s[2] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[2];
		s[3] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[3];
		d[0] = skc->skc_v6_daddr.in6_u.u6_addr32[0];
		d[1] = skc->skc_v6_daddr.in6_u.u6_addr32[1];
		d[2] = skc->skc_v6_daddr.in6_u.u6_addr32[2];
		d[3] = skc->skc_v6_daddr.in6_u.u6_addr32[3];
	}
	struct net *net = skc->skc_net.net;
	e->netns = net ? net->ns.inum : 0;
	return family;
}

/* The same through a plain address (what the syscall programs' fd-table
 * walk finds), plus the cookie the socket already has (0 if none was made
 * yet: the cookie helper is not allowed on such pointers). sock_common's
 * first 96 bytes hold all of it on 64-bit kernels since 4.x (ports,
 * family, state, IPv4 and IPv6 addresses, the namespace pointer, the
 * cookie), so it is one read; each field is taken at its CO-RE relocated
 * offset (a constant after relocation, so the verifier sees fixed stack
 * offsets). A field outside the window is read on its own. Probe reads
 * are what these programs spend most of their time on. */
#define FIELD_OFFSET(field) __builtin_preserve_field_info(field, 0 /* BYTE_OFFSET */)
#define SKC_WINDOW 96

static __always_inline __u16 fill_sock(struct ss_event *e, const void *skp)
{
	const struct sock_common *skc = skp;
	__u8 h[SKC_WINDOW] = {};

	if (bpf_probe_read_kernel(h, SKC_WINDOW, skc))
		return 0;
	__u32 o_family = FIELD_OFFSET(skc->skc_family);
	__u32 o_state = FIELD_OFFSET(skc->skc_state);
	__u32 o_num = FIELD_OFFSET(skc->skc_num);
	__u32 o_dport = FIELD_OFFSET(skc->skc_dport);
	__u32 o_saddr = FIELD_OFFSET(skc->skc_rcv_saddr);
	__u32 o_daddr = FIELD_OFFSET(skc->skc_daddr);
	if (o_family > SKC_WINDOW - 2 || o_state > SKC_WINDOW - 1 || o_num > SKC_WINDOW - 2 ||
	    o_dport > SKC_WINDOW - 2 || o_saddr > SKC_WINDOW - 4 || o_daddr > SKC_WINDOW - 4)
		return 0;
	__u16 family = 0, num = 0, dport = 0;
	__builtin_memcpy(&family, &h[o_family], 2);
	__builtin_memcpy(&num, &h[o_num], 2);
	__builtin_memcpy(&dport, &h[o_dport], 2);
	e->family = (__u8)family;
	e->state = h[o_state];
	e->sport = num;
	e->dport = __builtin_bswap16(dport);
	if (family == AF_INET) {
		__builtin_memcpy(e->saddr, &h[o_saddr], 4);
		__builtin_memcpy(e->daddr, &h[o_daddr], 4);
	} else if (family == AF_INET6) {
		__u32 o_v6s = FIELD_OFFSET(skc->skc_v6_rcv_saddr);
		__u32 o_v6d = FIELD_OFFSET(skc->skc_v6_daddr);
		if (o_v6s <= SKC_WINDOW - 16 && o_v6d <= SKC_WINDOW - 16) {
			__builtin_memcpy(e->saddr, &h[o_v6s], 16);
			__builtin_memcpy(e->daddr, &h[o_v6d], 16);
		} else {
			bpf_probe_read_kernel(e->saddr, 16,
					      __builtin_preserve_access_index(&skc->skc_v6_rcv_saddr));
			bpf_probe_read_kernel(e->daddr, 16,
					      __builtin_preserve_access_index(&skc->skc_v6_daddr));
		}
	}
	__u32 o_cookie = FIELD_OFFSET(skc->skc_cookie);
	if (o_cookie <= SKC_WINDOW - 8)
		__builtin_memcpy(&e->cookie, &h[o_cookie], 8);
	else
		KREAD(e->cookie, skc->skc_cookie.counter);
	struct net *net = NULL;
	__u32 o_net = FIELD_OFFSET(skc->skc_net);
	if (o_net <= SKC_WINDOW - 8)
		__builtin_memcpy(&net, &h[o_net], 8);
	else
		KREAD(net, skc->skc_net.net);
	e->netns = net_inum(net);
	return family;
}

/* The cookie a socket already has (0 if none was made yet); for sockets
 * reached through a plain pointer, where the cookie helper is not allowed. */
static __always_inline __u64 sk_cookie_peek(const void *skp)
{
	const struct sock_common *skc = skp;
	__u64 c = 0;
	KREAD(c, skc->skc_cookie.counter);
	return c;
}

/* ---- filters ---- */

/* Sockets whose local port the port filter wanted, by address. Closing a
 * socket gives its port back (inet_put_port sets skc_num to 0) before the
 * CLOSE state change, the reset's aftermath, the last read, close() and
 * destroy are reported: a server-side socket then shows port 0 and the
 * client's ephemeral port, which the filter would reject. Written at
 * state changes (a few per connection), read only for a socket whose
 * local port reads 0, forgotten at destroy. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} port_passed SEC(".maps");

static __always_inline bool port_passed_any(void)
{
	return map_ever_used(USED_PORT_PASSED);
}

static __always_inline void port_passed_add(__u64 sk)
{
	map_now_used(USED_PORT_PASSED);
	__u8 one = 1;
	bpf_map_update_elem(&port_passed, &sk, &one, BPF_ANY);
}

static __always_inline bool port_was_wanted(__u64 sk, __u16 sport)
{
	return sport == 0 && sk && port_passed_any() &&
	       bpf_map_lookup_elem(&port_passed, &sk) != NULL;
}

static __always_inline bool addr_wanted(const __u8 *addr, __u8 family)
{
	struct ss_addr_key k = {};
	k.prefixlen = 128;
	if (family == AF_INET) {
		k.addr[10] = 0xff;
		k.addr[11] = 0xff;
		__builtin_memcpy(&k.addr[12], addr, 4);
	} else {
		__builtin_memcpy(k.addr, addr, 16);
	}
	return bpf_map_lookup_elem(&f_addrs, &k) != NULL;
}

static __always_inline bool port_wanted(__u16 port)
{
	return (cfg_port_bits[port >> 6] >> (port & 63)) & 1;
}

/* The port filter on a socket reached through a BTF pointer, before any
 * event is built: true when its ports are known and none is wanted. */
static __always_inline bool ports_rejected(const struct sock_common *skc)
{
	if (!cfg_filter_port)
		return false;
	__u16 sport = skc->skc_num;
	__u16 dport = __builtin_bswap16(skc->skc_dport);
	return (sport || dport) && !port_wanted(sport) && !port_wanted(dport) &&
	       !port_was_wanted((__u64)skc, sport);
}

static __always_inline bool is_zero16(const __u8 *a)
{
	const __u64 *q = (const __u64 *)a;
	return q[0] == 0 && q[1] == 0;
}

/* Ports and addresses. A socket with neither port known yet (just made,
 * not bound) passes: user space holds its events until it learns where the
 * socket goes. */
static __always_inline bool tuple_passes(const struct ss_event *e)
{
	if (cfg_filter_port && (e->sport != 0 || e->dport != 0) && !port_wanted(e->sport) &&
	    !port_wanted(e->dport) && !port_was_wanted(e->sk, e->sport))
		return false;
	if (cfg_filter_addr && !(is_zero16(e->saddr) && is_zero16(e->daddr))) {
		if (!addr_wanted(e->saddr, e->family) && !addr_wanted(e->daddr, e->family))
			return false;
	}
	return true;
}

static __always_inline bool state_passes(__u32 a, __u32 b)
{
	if (!cfg_states)
		return true;
	return ((1u << (a & 31)) | (1u << (b & 31))) & cfg_states;
}

static __always_inline bool owner_passes(__u32 pid, const char *comm)
{
	if (cfg_filter_pid && !bpf_map_lookup_elem(&f_pids, &pid))
		return false;
	if (cfg_filter_comm) {
		char c[16];
		__builtin_memcpy(c, comm, 16);
		if (!bpf_map_lookup_elem(&f_comms, c))
			return false;
	}
	return true;
}

static __always_inline bool owner_filtering(void)
{
	return cfg_filter_pid || cfg_filter_comm;
}

static __always_inline bool kernel_owners(void)
{
	return cfg_kernel_owners;
}

/* ---- owners ---- */

static __always_inline void set_owner(struct ss_event *e, const struct ss_owner *o, __u8 src)
{
	e->pid = o->pid;
	e->fd = o->fd;
	__builtin_memcpy(e->comm, o->comm, 16);
	e->owner_src = src;
}

/* Who owns a socket, for events that run outside the owner's context. */
static __always_inline void lookup_owner(struct ss_event *e, __u64 sk, __u64 cookie,
					 bool via_listener)
{
	if (!kernel_owners()) {
		e->fd = -1;
		return;
	}
	struct ss_owner *o = bpf_map_lookup_elem(&owners, &sk);
	if (o) {
		set_owner(e, o, o->src ? o->src : SS_OWNER_SOCKET);
		return;
	}
	if (cookie) {
		o = bpf_map_lookup_elem(&cookie_owners, &cookie);
		if (o) {
			set_owner(e, o, SS_OWNER_SNAPSHOT);
			return;
		}
	}
	if (via_listener) {
		struct ss_listen_key k = {};
		k.netns = e->netns;
		k.port = e->sport;
		struct ss_listen_val *l = bpf_map_lookup_elem(&listeners, &k);
		if (l) {
			set_owner(e, &l->owner, SS_OWNER_LISTENER);
			/* Until accept() says otherwise, the connection belongs
			 * to whoever holds the listener. */
			struct ss_owner o2 = l->owner;
			o2.src = SS_OWNER_LISTENER;
			bpf_map_update_elem(&owners, &sk, &o2, BPF_NOEXIST);
			return;
		}
	}
	e->fd = -1;
}

/* The running task as the owner (process context only). */
static __always_inline void task_owner(struct ss_event *e, __s32 fd)
{
	__u64 pt = bpf_get_current_pid_tgid();
	e->pid = pt >> 32;
	e->tid = (__u32)pt;
	e->fd = fd;
	bpf_get_current_comm(e->comm, 16);
	e->owner_src = SS_OWNER_TASK;
}

/* Remember who uses a socket, writing the map only when it changes. */
static __always_inline void learn_owner(__u64 sk, const struct ss_event *e, bool closed)
{
	if (!kernel_owners() || e->fd < 0)
		return;
	struct ss_owner *cur = bpf_map_lookup_elem(&owners, &sk);
	if (cur && cur->pid == e->pid && cur->fd == e->fd && cur->closed == closed)
		return;
	struct ss_owner o = {};
	o.pid = e->pid;
	o.fd = e->fd;
	__builtin_memcpy(o.comm, e->comm, 16);
	o.src = SS_OWNER_SOCKET;
	o.closed = closed;
	bpf_map_update_elem(&owners, &sk, &o, BPF_ANY);
}

/* The running process owns a socket an event was just written for: with
 * wait events on, trace its waits (one lookup; a write only the first
 * time). */
static __always_inline void note_waiter(__u32 tgid)
{
	if (!((cfg_emit >> SS_WAIT) & 1) || !tgid)
		return;
	if (bpf_map_lookup_elem(&wait_pids, &tgid))
		return;
	map_now_used(USED_WAIT_PIDS);
	__u8 one = 1;
	bpf_map_update_elem(&wait_pids, &tgid, &one, BPF_ANY);
}

/* ---- output ---- */

/* Events are gathered per CPU into batches of up to SS_BATCH_MAX and
 * written to the ring buffer one batch per record: the ring buffer's lock
 * (one for every CPU) and its per-record work are then paid once per
 * batch instead of once per event; with both CPUs writing, that lock's
 * cache line moving between them was about half of what an unfiltered
 * event cost. A batch is written when it is full, when the event being
 * added is SS_BATCH_AGE_NS younger than its first, and at each timer
 * tick and idle entry of its CPU (batch.c), so no event waits in it more
 * than a tick (4 ms at HZ=250) or so: far less than the reader's
 * reordering window (30 ms). An event written while its CPU's batch is
 * in use (a program interrupted or preempted while adding to it) goes
 * to the ring buffer alone. cfg_batch 0: every event alone (the way to
 * compare). */
const volatile __u8 cfg_batch = 1;

struct ss_stage {
	__u64 busy; /* 1 while a program adds to or writes the batch */
	__u64 first_ts;
	__u32 n;
	__u32 _pad;
	/* The ring buffer record: this header, then n events. */
	struct ss_batch_head head;
	struct ss_event ev[SS_BATCH_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ss_stage);
} stage SEC(".maps");

static __always_inline void uncount(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		*v -= 1;
}

/* Wake the reader when the ring buffer holds cfg_wakeup_bytes. */
static __always_inline __u64 wake_flag(void)
{
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= cfg_wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* Write the batch of this CPU (the caller holds s->busy). Each event was
 * counted as written when added; if the ring buffer is full they are
 * counted lost instead. */
static __always_inline void flush_stage(struct ss_stage *s)
{
	__u32 n = s->n;
	if (n == 0 || n > SS_BATCH_MAX)
		return;
	s->head.version = SS_EVENT_VERSION;
	s->head.kind = SS_BATCH;
	s->head.count = (__u16)n;
	s->head._pad = 0;
	__u64 size = sizeof(struct ss_batch_head) + (__u64)n * sizeof(struct ss_event);
	/* clang writes the sum as an OR, whose bounds the verifier loses:
	 * hide what it knows and bound the size again. */
	asm volatile("" : "+r"(size));
	if (size > sizeof(struct ss_batch_head) + SS_BATCH_MAX * sizeof(struct ss_event))
		return;
	if (bpf_ringbuf_output(&events, &s->head, size, wake_flag())) {
		for (__u32 i = 0; i < SS_BATCH_MAX; i++) {
			if (i >= n)
				break;
			__u32 kind = s->ev[i].kind;
			uncount(kind);
			count(SS_STAT_LOST + kind);
		}
	}
	s->n = 0;
}

static __always_inline void output(struct ss_event *e)
{
	e->version = SS_EVENT_VERSION;
	e->cpu = bpf_get_smp_processor_id();
	if (cfg_batch) {
		__u32 zero = 0;
		struct ss_stage *s = bpf_map_lookup_elem(&stage, &zero);
		if (s && __sync_val_compare_and_swap(&s->busy, 0, 1) == 0) {
			__u32 n = s->n;
			if (n < SS_BATCH_MAX) {
				if (n == 0)
					s->first_ts = e->ts_ns;
				__builtin_memcpy(&s->ev[n], e, sizeof(*e));
				s->n = n + 1;
				count(e->kind);
				if (n + 1 == SS_BATCH_MAX || e->ts_ns - s->first_ts >= SS_BATCH_AGE_NS)
					flush_stage(s);
				__sync_lock_test_and_set(&s->busy, 0);
				return;
			}
			/* Not reached: a full batch is written at once. */
			__sync_lock_test_and_set(&s->busy, 0);
		}
	}
	/* How full the buffer is, asked about one event in 64 (picked by
	 * bits of its timestamp): enough to wake the reader soon after the
	 * threshold, without a query per event. */
	__u64 wake = BPF_RB_NO_WAKEUP;
	if (((e->ts_ns >> 6) & 63) == 0)
		wake = wake_flag();
	if (bpf_ringbuf_output(&events, e, sizeof(*e), wake))
		count(SS_STAT_LOST + e->kind);
	else
		count(e->kind);
}

/* cfg_emit_only: an empty event of this kind, timed and written the way
 * every event is (batched), nothing read from the kernel. With the reader
 * dropping what it takes (SOCKSCOPE_TRACE_DISCARD, implied), a run
 * measures what delivering one record per event costs by itself: the
 * floor under any tracer that streams each event to user space. */
static __always_inline int emit_only(__u8 kind)
{
	struct ss_event e = {};
	e.ts_ns = bpf_ktime_get_ns();
	e.kind = kind;
	output(&e);
	return 0;
}

/* Write this CPU's batch if it holds events and no program is adding to
 * it (one that is will write it later). */
static __always_inline void flush_here(void)
{
	__u32 zero = 0;
	struct ss_stage *s = bpf_map_lookup_elem(&stage, &zero);
	if (!s || s->n == 0)
		return;
	if (__sync_val_compare_and_swap(&s->busy, 0, 1) != 0)
		return;
	flush_stage(s);
	__sync_lock_test_and_set(&s->busy, 0);
}

/* With a port or address filter, a new socket's socket() event waits
 * until the socket's ports say whether it is wanted: the first event of
 * that socket which passes the filter sends it first; the bind, connect
 * or listen that finds its ports rejected forgets it.
 *
 * It waits in held_socket, a table indexed by a hash of the socket's
 * address (one slot per hash, no hashing map, no lock: socket() under
 * such a filter costs a copy), or, when that slot holds another socket
 * still undecided, in pending_socket (an LRU map; an insert there costs
 * ~10x more, it evicts when full). The slot is freed by the bind, connect
 * or listen that finds the socket's ports rejected. A socket whose ports
 * became known otherwise (a TCP Fast Open sendto) and were rejected keeps its
 * slot until another socket() hashed there finds it taken (and goes to
 * the LRU map) or a socket at the same address takes it: what the LRU
 * map did with every rejected socket's event. */
struct ss_held {
	__u64 sk; /* 0: free */
	struct ss_event e;
};

#define HELD_BITS 12

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << HELD_BITS);
	__type(key, __u32);
	__type(value, struct ss_held);
} held_socket SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct ss_event);
} pending_socket SEC(".maps");

/* A per-CPU word to turn a socket pointer into a number: the verifier
 * allows no arithmetic on a pointer, but what is read back from a map
 * value is a plain number. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} ptr_scratch SEC(".maps");

static __always_inline struct ss_held *held_slot(__u64 sk)
{
	__u32 zero = 0;
	volatile __u64 *w = bpf_map_lookup_elem(&ptr_scratch, &zero);
	if (!w)
		return NULL;
	*w = sk;
	__u64 n = *w;
	__u32 i = (__u32)((n * 0x9E3779B97F4A7C15ull) >> (64 - HELD_BITS));
	return bpf_map_lookup_elem(&held_socket, &i);
}

/* A socket whose ports are known and rejected: its held socket() event,
 * if it is in the table, will never be sent. */
static __always_inline void forget_held(__u64 sk)
{
	if (!(cfg_filter_port || cfg_filter_addr))
		return;
	struct ss_held *h = held_slot(sk);
	if (h && h->sk == sk)
		h->sk = 0;
}

static __always_inline void emit(struct ss_event *e)
{
	/* Any event of the socket sends its held socket() first, also one
	 * whose ports are still unknown (a setsockopt before bind): it passed
	 * the filter as unknown, and shown before socket() it would be out
	 * of order beyond what user space reorders. */
	if ((cfg_filter_port || cfg_filter_addr) && e->sk) {
		__u64 sk = e->sk;
		struct ss_held *h = held_slot(sk);
		if (h && h->sk == sk) {
			output(&h->e);
			h->sk = 0;
		} else {
			struct ss_event *p = bpf_map_lookup_elem(&pending_socket, &sk);
			if (p) {
				output(p);
				bpf_map_delete_elem(&pending_socket, &sk);
			}
		}
	}
	output(e);
}

/* A socket() event: held back when a filter on ports or addresses must
 * first learn where the socket goes. */
static __always_inline void emit_new_socket(struct ss_event *e)
{
	if (cfg_filter_port || cfg_filter_addr) {
		__u64 sk = e->sk;
		e->version = SS_EVENT_VERSION;
		struct ss_held *h = held_slot(sk);
		if (h && (h->sk == 0 || h->sk == sk)) {
			/* The event first, then the key that makes it valid. */
			h->sk = 0;
			__builtin_memcpy(&h->e, e, sizeof(*e));
			asm volatile("" ::: "memory");
			h->sk = sk;
			return;
		}
		bpf_map_update_elem(&pending_socket, &sk, e, BPF_ANY);
		return;
	}
	output(e);
}

static __always_inline void filtered(__u32 kind)
{
	count(SS_STAT_FILTERED + kind);
}

#endif
