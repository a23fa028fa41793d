/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * wait.c: how long the owners of traced sockets wait for them, and what
 * wakes them.
 *
 * - select, pselect6, poll, ppoll, epoll_wait, epoll_pwait, epoll_pwait2
 *   (per-syscall tracepoints, like syscalls.c) of a process in wait_pids
 *   (a process that made a traced socket syscall or moved data on a
 *   traced socket): an event at entry and one at exit with the return
 *   value and the time blocked;
 * - sched:sched_wakeup of a task blocked in such a wait (the first one per
 *   wait): the CPU that woke it, the waker, and when a traced packet is
 *   being received in a softirq on that CPU, that packet's connection and
 *   time, so that user space can say how long from the packet to the
 *   syscall's return. The check is a task-local storage lookup: tasks
 *   that never waited in a traced wait cost one lookup per wakeup.
 */

struct ss_waiting {
	__u64 start;
	__u64 wake_ns;
	__u64 cause_ns;
	__u16 sys;
	__u8 active;
	__u8 cause;
	__u32 wake_cpu;
	struct ss_event cause_tuple;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ss_waiting);
} waiting SEC(".maps");

#if defined(__TARGET_ARCH_x86)
#define NR_POLL 7
#define NR_SELECT 23
#define NR_EPOLL_WAIT 232
#define NR_PSELECT6 270
#define NR_PPOLL 271
#define NR_EPOLL_PWAIT 281
#define NR_EPOLL_PWAIT2 441
#elif defined(__TARGET_ARCH_arm64)
/* no select, poll or epoll_wait on arm64 */
#define NR_POLL -1
#define NR_SELECT -2
#define NR_EPOLL_WAIT -3
#define NR_PSELECT6 72
#define NR_PPOLL 73
#define NR_EPOLL_PWAIT 22
#define NR_EPOLL_PWAIT2 441
#endif

static __always_inline __u16 wait_sys(long nr)
{
	switch (nr) {
	case NR_SELECT: return SYS_SELECT;
	case NR_PSELECT6: return SYS_PSELECT6;
	case NR_POLL: return SYS_POLL;
	case NR_PPOLL: return SYS_PPOLL;
	case NR_EPOLL_WAIT: return SYS_EPOLL_WAIT;
	case NR_EPOLL_PWAIT: return SYS_EPOLL_PWAIT;
	case NR_EPOLL_PWAIT2: return SYS_EPOLL_PWAIT2;
	default: return SYS_OTHER;
	}
}

static __always_inline void wait_event(struct ss_event *e, __u16 sys, __u8 phase)
{
	e->kind = SS_WAIT;
	e->ts_ns = bpf_ktime_get_ns();
	e->fd = -1;
	e->u.wait.sys = sys;
	e->u.wait.phase = phase;
	e->u.wait.wake_cpu = (__u32)-1;
	e->u.wait.timeout = -1;
	__u64 pt = bpf_get_current_pid_tgid();
	e->pid = pt >> 32;
	e->tid = (__u32)pt;
	e->owner_src = SS_OWNER_TASK;
	bpf_get_current_comm(e->comm, 16);
}

SEC("tracepoint/syscalls/sys_enter_wait")
int ss_wait_enter(struct sc_enter_rec *ctx)
{
	if (cfg_noop_all || cfg_emit_only)
		return 0;
	__u16 sys = wait_sys(ctx->nr);
	if (sys == SYS_OTHER)
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!wait_pids_any() || !bpf_map_lookup_elem(&wait_pids, &tgid))
		return 0;
	struct ss_waiting *w = bpf_task_storage_get(&waiting, bpf_get_current_task_btf(), NULL,
						    BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!w)
		return 0;
	struct ss_event e = {};
	wait_event(&e, sys, SS_WAIT_ENTER);
	e.u.wait.arg = (__u32)ctx->args[0];
	w->start = e.ts_ns;
	w->wake_ns = 0;
	w->cause_ns = 0;
	w->cause = 0;
	w->wake_cpu = (__u32)-1;
	w->sys = sys;
	w->active = 1;
	if (cfg_netns)
		e.netns = task_netns();
	output(&e);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_wait")
int ss_wait_exit(struct sc_exit_rec *ctx)
{
	if (cfg_noop_all || cfg_emit_only)
		return 0;
	__u16 sys = wait_sys(ctx->nr);
	if (sys == SYS_OTHER)
		return 0;
	struct ss_waiting *w = bpf_task_storage_get(&waiting, bpf_get_current_task_btf(), NULL, 0);
	if (!w || !w->active || w->sys != sys)
		return 0;
	w->active = 0;
	struct ss_event e = {};
	wait_event(&e, sys, SS_WAIT_EXIT);
	e.u.wait.ret = ctx->ret;
	e.u.wait.dur_ns = e.ts_ns - w->start;
	e.u.wait.wake_ns = w->wake_ns;
	e.u.wait.wake_cpu = w->wake_cpu;
	e.u.wait.cause_ns = w->cause_ns;
	e.u.wait.cause = w->cause;
	if (w->cause) {
		e.family = w->cause_tuple.family;
		e.sport = w->cause_tuple.sport;
		e.dport = w->cause_tuple.dport;
		e.netns = w->cause_tuple.netns;
		__builtin_memcpy(e.saddr, w->cause_tuple.saddr, 16);
		__builtin_memcpy(e.daddr, w->cause_tuple.daddr, 16);
	} else if (cfg_netns) {
		e.netns = task_netns();
	}
	output(&e);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int ss_wakeup(unsigned long long *ctx)
{
	if (cfg_noop_all || cfg_emit_only)
		return 0;
	struct task_struct *p = (struct task_struct *)CTX_ARG(ctx, 0);
	struct ss_waiting *w = bpf_task_storage_get(&waiting, p, NULL, 0);
	if (!w || !w->active || w->wake_ns)
		return 0;
	struct ss_event e = {};
	e.kind = SS_WAKE;
	e.ts_ns = bpf_ktime_get_ns();
	e.fd = -1;
	e.pid = p->tgid;
	e.tid = p->pid;
	e.owner_src = SS_OWNER_TASK;
	__builtin_memcpy(e.comm, p->comm, 16);
	e.u.wait.sys = w->sys;
	e.u.wait.wake_ns = e.ts_ns;
	e.u.wait.wake_cpu = bpf_get_smp_processor_id();
	e.u.wait.timeout = -1;
	w->wake_ns = e.ts_ns;
	w->wake_cpu = e.u.wait.wake_cpu;
	__u32 zero = 0;
	struct ss_cpu_state *si = bpf_map_lookup_elem(&softirq_now, &zero);
	if (si && si->vec && si->rx_ts && si->rx_gen == si->gen) {
		w->cause = 1;
		w->cause_ns = si->rx_ts;
		w->cause_tuple.family = si->rx.family;
		w->cause_tuple.sport = si->rx.sport;
		w->cause_tuple.dport = si->rx.dport;
		w->cause_tuple.netns = si->rx.netns;
		__builtin_memcpy(w->cause_tuple.saddr, si->rx.saddr, 16);
		__builtin_memcpy(w->cause_tuple.daddr, si->rx.daddr, 16);
		e.u.wait.cause = 1;
		e.u.wait.cause_ns = si->rx_ts;
		e.family = si->rx.family;
		e.sport = si->rx.sport;
		e.dport = si->rx.dport;
		e.netns = si->rx.netns;
		__builtin_memcpy(e.saddr, si->rx.saddr, 16);
		__builtin_memcpy(e.daddr, si->rx.daddr, 16);
	} else {
		e.u.wait.waker_pid = (__s32)(bpf_get_current_pid_tgid() >> 32);
	}
	output(&e);
	return 0;
}
