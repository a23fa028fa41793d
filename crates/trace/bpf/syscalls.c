/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * syscalls.c: the socket syscalls of processes: socket, bind, listen,
 * accept, accept4, connect, shutdown, setsockopt and close, with fd,
 * arguments, return value and duration.
 *
 * Two ways in, the same code behind them:
 * - ss_sc_exit on the per-syscall tracepoints (syscalls:sys_exit_close,
 *   ...) of those nine syscalls, and ss_sc_enter on the entry of four of
 *   them: other syscalls run no BPF at all. Attaching needs tracefs (for
 *   the events' ids).
 * - ss_sys_enter / ss_sys_exit on raw_syscalls:sys_enter/sys_exit as BTF
 *   tracepoints, when tracefs is not mounted: they run for every syscall
 *   on the machine and return at once for the others, which costs a busy
 *   server ~10% per hook; the loader only uses them as a fallback.
 *
 * Most of the work happens at exit, where the arguments are still in the
 * task's saved user registers and the fd still names the socket; the
 * entry hooks exist only where the exit cannot do alone:
 * - close: at exit the fd is gone, so the entry finds the socket behind it
 *   (walking the task's fd table) and keeps its identity;
 * - accept, accept4, connect: they may block, so the entry keeps the time
 *   for the syscall's duration (and nothing else: it is cheap).
 * The other five (socket, bind, listen, shutdown, setsockopt) never block
 * for long and report no duration. socket() and accept() resolve their
 * new fd at exit. Only INET and INET6 sockets are reported. With a pid or
 * command filter, every syscall also teaches the owner map which process
 * and fd use the socket, and a successful listen() records the listener's
 * owner for the connections it will queue (without such a filter, user
 * space attributes events to processes itself, from these same syscalls).
 *
 * read/write/send/recv are not here: sock_send_length / sock_recv_length
 * (io.c) fire only for sockets and carry the socket itself.
 */

#if defined(__TARGET_ARCH_x86)
#define NR_READ 0
#define NR_WRITE 1
#define NR_CLOSE 3
#define NR_READV 19
#define NR_WRITEV 20
#define NR_SENDFILE 40
#define NR_SOCKET 41
#define NR_CONNECT 42
#define NR_ACCEPT 43
#define NR_SENDTO 44
#define NR_RECVFROM 45
#define NR_SENDMSG 46
#define NR_RECVMSG 47
#define NR_SHUTDOWN 48
#define NR_BIND 49
#define NR_LISTEN 50
#define NR_SETSOCKOPT 54
#define NR_FCNTL 72
#define NR_SPLICE 275
#define NR_ACCEPT4 288
#define NR_RECVMMSG 299
#define NR_SENDMMSG 307
#elif defined(__TARGET_ARCH_arm64)
/* include/uapi/asm-generic/unistd.h */
#define NR_FCNTL 25
#define NR_CLOSE 57
#define NR_READ 63
#define NR_WRITE 64
#define NR_READV 65
#define NR_WRITEV 66
#define NR_SENDFILE 71
#define NR_SPLICE 76
#define NR_SOCKET 198
#define NR_BIND 200
#define NR_LISTEN 201
#define NR_ACCEPT 202
#define NR_CONNECT 203
#define NR_SENDTO 206
#define NR_RECVFROM 207
#define NR_SETSOCKOPT 208
#define NR_SHUTDOWN 210
#define NR_SENDMSG 211
#define NR_RECVMSG 212
#define NR_ACCEPT4 242
#define NR_RECVMMSG 243
#define NR_SENDMMSG 269
#endif

/* The syscalls traced at entry and exit. */
static __always_inline __u16 entry_sys(long nr)
{
	switch (nr) {
	case NR_SOCKET: return SYS_SOCKET;
	case NR_BIND: return SYS_BIND;
	case NR_LISTEN: return SYS_LISTEN;
	case NR_ACCEPT: return SYS_ACCEPT;
	case NR_ACCEPT4: return SYS_ACCEPT4;
	case NR_CONNECT: return SYS_CONNECT;
	case NR_SHUTDOWN: return SYS_SHUTDOWN;
	case NR_SETSOCKOPT: return SYS_SETSOCKOPT;
	case NR_CLOSE: return SYS_CLOSE;
	case NR_FCNTL: return SYS_FCNTL;
	default: return SYS_OTHER;
	}
}

#define F_SETFL 4

/* The syscalls whose entry is hooked (see the top of this file). */
static __always_inline bool entry_hooked(__u16 sys)
{
	return sys == SYS_CLOSE || sys == SYS_ACCEPT || sys == SYS_ACCEPT4 || sys == SYS_CONNECT;
}

/* The syscalls that reach sock_sendmsg / sock_recvmsg (io.c). */
static __always_inline __u16 io_sys(long nr)
{
	switch (nr) {
	case NR_READ: return SYS_READ;
	case NR_WRITE: return SYS_WRITE;
	case NR_SENDTO: return SYS_SENDTO;
	case NR_RECVFROM: return SYS_RECVFROM;
	case NR_SENDMSG: return SYS_SENDMSG;
	case NR_RECVMSG: return SYS_RECVMSG;
	case NR_READV: return SYS_READV;
	case NR_WRITEV: return SYS_WRITEV;
	case NR_SENDMMSG: return SYS_SENDMMSG;
	case NR_RECVMMSG: return SYS_RECVMMSG;
	case NR_SENDFILE: return SYS_SENDFILE;
	case NR_SPLICE: return SYS_SPLICE;
	default: return SYS_OTHER;
	}
}

/* A syscall between entry and exit, per thread. */
struct inflight {
	__u64 ts;
	__u16 sys;
	__u16 _pad;
	__s32 fd;
	/* close: the socket as it was before the fd went away */
	__u64 sk;
	struct ss_event id;
};

/* Per task: the syscall between its entry and exit (task-local storage:
 * no hashing, no locks, freed with the task). `sys` is 0 when none. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct inflight);
} inflight SEC(".maps");

/* The file behind fd in the current task's fd table (a plain address),
 * or NULL: one probe read, for the fd array's slot. */
static __always_inline struct file *fd_file(long fd)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct file *f = NULL;

	if (fd < 0)
		return NULL;
	struct files_struct *files = t->files;
	if (!files)
		return NULL;
	struct fdtable *fdt = files->fdt;
	if (!fdt)
		return NULL;
	if ((unsigned long)fd >= fdt->max_fds)
		return NULL;
	struct file **fds = fdt->fd;
	if (!fds || bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]))
		return NULL;
	return f;
}

/* The socket behind fd as a BTF pointer (bpf_rdonly_cast), or NULL when
 * the fd is not a socket: direct loads after the fd array's slot. */
static __always_inline const struct sock *fd_sock_btf(long fd)
{
	struct file *f = fd_file(fd);
	if (!f)
		return NULL;
	struct file *file = CAST(struct file, f);
	struct inode *ino = file->f_inode;
	if (!ino || (ino->i_mode & S_IFMT) != S_IFSOCK)
		return NULL;
	void *priv = file->private_data;
	if (!priv)
		return NULL;
	struct socket *so = CAST(struct socket, priv);
	return so->sk;
}

/* The socket behind fd with probe reads (kernels without the kfunc), or
 * NULL when the fd is not a socket. */
static __always_inline const struct sock *fd_sock(long fd)
{
	struct inode *ino = NULL;
	struct socket *so = NULL;
	struct sock *sk = NULL;
	unsigned short mode = 0;

	struct file *f = fd_file(fd);
	if (!f)
		return NULL;
	/* f_inode and private_data sit side by side in struct file: one
	 * read for both when they fit a 32-byte window. */
	__u32 o_ino = FIELD_OFFSET(f->f_inode);
	__u32 o_priv = FIELD_OFFSET(f->private_data);
	__u32 lo = o_ino < o_priv ? o_ino : o_priv;
	__u8 w[32] = {};
	if (o_ino - lo <= 24 && o_priv - lo <= 24 && !bpf_probe_read_kernel(w, 32, (const __u8 *)f + lo)) {
		__builtin_memcpy(&ino, &w[o_ino - lo], 8);
		__builtin_memcpy(&so, &w[o_priv - lo], 8);
	} else {
		KREAD(ino, f->f_inode);
		KREAD(so, f->private_data);
	}
	if (!ino || !so)
		return NULL;
	KREAD(mode, ino->i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	KREAD(sk, so->sk);
	return sk;
}

/* The syscalls after which a socket made by socket() has its ports (a
 * TCP Fast Open sendto aside): where a rejected socket's held socket()
 * event is forgotten (see held_socket). */
static __always_inline bool ports_decided(__u16 sys)
{
	return sys == SYS_CONNECT || sys == SYS_BIND || sys == SYS_LISTEN;
}

/* Copy a sockaddr_in / sockaddr_in6 argument into the event. */
static __always_inline void read_sockaddr(struct ss_event *e, const void *uaddr, long len)
{
	__u8 buf[8];
	__u16 family = 0;

	if (!uaddr || len < 8)
		return;
	if (bpf_probe_read_user(buf, 8, uaddr))
		return;
	__builtin_memcpy(&family, buf, 2);
	e->u.sys.addr_family = family;
	e->u.sys.addr_port = ((__u16)buf[2] << 8) | buf[3];
	if (family == AF_INET) {
		__builtin_memcpy(e->u.sys.addr, &buf[4], 4);
	} else if (family == AF_INET6 && len >= 24) {
		bpf_probe_read_user(e->u.sys.addr, 16, (const __u8 *)uaddr + 8);
	}
}

/* The INET or INET6 socket behind fd through BTF pointers (kernels with
 * the kfunc), or NULL when the fd is not such a socket. With `early`
 * (the caller keeps no owners and wants nothing of a rejected socket), a
 * socket the port filter rejects is found out before anything else is
 * read: *rejected is set and the socket returned; the same for a socket
 * whose ports are both unknown with `unknown_rejected`. */
static __always_inline const struct sock *fd_inet_sock_btf(long fd, bool early,
							     bool unknown_rejected, bool *rejected)
{
	const struct sock *sk = fd_sock_btf(fd);
	if (!sk)
		return NULL;
	__u16 family = sk->__sk_common.skc_family;
	if (family != AF_INET && family != AF_INET6)
		return NULL;
	if ((early && cfg_filter_port) || unknown_rejected) {
		if (cfg_netns) {
			struct net *net = sk->__sk_common.skc_net.net;
			if ((net ? net->ns.inum : 0) != cfg_netns)
				return NULL;
		}
		if (unknown_rejected && !sk->__sk_common.skc_num && !sk->__sk_common.skc_dport) {
			*rejected = true;
			return sk;
		}
		if (early && ports_rejected(&sk->__sk_common)) {
			*rejected = true;
			return sk;
		}
	}
	return sk;
}

/* A socket's identity, cookie and protocol into e (BTF pointers). */
static __always_inline __u64 fill_inet_sock_btf(struct ss_event *e, const struct sock *sk)
{
	fill_sock_btf(e, &sk->__sk_common);
	e->cookie = sk->__sk_common.skc_cookie.counter;
	e->protocol = (__u8)sk->sk_protocol;
	return (__u64)sk;
}

/* The INET or INET6 socket behind fd, its identity, cookie and protocol
 * filled into e; 0 when the fd is not such a socket. `early`,
 * `unknown_rejected` and *rejected as for fd_inet_sock_btf (then e is
 * left as it was). */
static __always_inline __u64 fd_fill_or_reject(struct ss_event *e, long fd, bool early,
					       bool unknown_rejected, bool *rejected)
{
	__u16 family;
	if (cfg_kfunc_cast) {
		const struct sock *sk = fd_inet_sock_btf(fd, early, unknown_rejected, rejected);
		if (!sk || *rejected)
			return (__u64)sk;
		return fill_inet_sock_btf(e, sk);
	}
	const struct sock *sk = fd_sock(fd);
	if (!sk)
		return 0;
	family = fill_sock(e, sk);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	KREAD(e->protocol, sk->sk_protocol);
	return (__u64)sk;
}

static __always_inline __u64 fd_fill(struct ss_event *e, long fd)
{
	bool rejected = false;
	return fd_fill_or_reject(e, fd, false, false, &rejected);
}

static __always_inline bool task_passes(void)
{
	if (!owner_filtering())
		return true;
	char comm[16];
	bpf_get_current_comm(comm, 16);
	return owner_passes(bpf_get_current_pid_tgid() >> 32, comm);
}

/* Not sockscope itself, in the traced namespace, passing the owner
 * filters: the checks every hook makes first. */
static __always_inline bool task_wanted(void)
{
	if ((bpf_get_current_pid_tgid() >> 32) == cfg_self)
		return false;
	if (cfg_netns && task_netns() != cfg_netns)
		return false;
	return task_passes();
}

/* Syscall entry (close, accept, accept4, connect only): the time, and for
 * close the socket behind the fd, kept for the exit. `fd` is the first
 * argument. */
static __always_inline int enter_common(__u16 sys, long fd)
{
	if (cfg_syscall_noop || !entry_hooked(sys) || !task_wanted())
		return 0;
	struct inflight *in = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), NULL,
						   BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!in)
		return 0;
	in->sys = SYS_OTHER; /* not valid until filled */
	in->fd = (int)fd;
	in->sk = 0;
	if (sys == SYS_CLOSE) {
		/* With a port or address filter, a socket whose ports are
		 * known and do not match is done with here (the port test
		 * first, before its identity is read). */
		bool rejected = false;
		__builtin_memset(in->id.saddr, 0, sizeof(in->id.saddr));
		__builtin_memset(in->id.daddr, 0, sizeof(in->id.daddr));
		in->sk = fd_fill_or_reject(&in->id, (long)(int)fd, true, false, &rejected);
		if (rejected) {
			filtered(SS_SYSCALL);
			return 0;
		}
		if (!in->sk)
			return 0;
		in->id.sk = in->sk;
		if ((cfg_filter_port || cfg_filter_addr) && (in->id.sport || in->id.dport) &&
		    !tuple_passes(&in->id)) {
			filtered(SS_SYSCALL);
			return 0;
		}
	}
	in->ts = bpf_ktime_get_ns();
	in->sys = sys;
	return 0;
}

/* Syscall exit: the arguments (still in the saved user registers), the
 * socket and the return value, joined into one event. */
static __always_inline int exit_common(__u16 sys, long ret)
{
	if (cfg_syscall_noop)
		return 0;
	__u64 start = 0;
	struct inflight *in = NULL;
	if (entry_hooked(sys)) {
		in = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), NULL, 0);
		if (in && in->sys == sys) {
			in->sys = SYS_OTHER;
			start = in->ts;
		} else {
			in = NULL;
		}
		/* close needs what its entry kept; accept and connect without
		 * an entry (already blocked when tracing started, or the
		 * entry's checks failed) go on with no duration. */
		if (sys == SYS_CLOSE && !in)
			return 0;
		if (!in && !task_wanted())
			return 0;
	} else if (!task_wanted()) {
		return 0;
	}

	struct pt_regs *regs = bpf_task_pt_regs(bpf_get_current_task_btf());
	unsigned long a0 = SYSCALL_ARG0(regs);
	/* fcntl: only F_SETFL (O_NONBLOCK on and off), and only when it
	 * worked; F_GETFL and the rest say nothing about the socket. */
	if (sys == SYS_FCNTL && (SYSCALL_ARG1(regs) != F_SETFL || ret != 0))
		return 0;
	/* socket, accept, accept4 that worked: the new socket is the one the
	 * event is about (a failed accept: the listener). */
	bool new_fd = (sys == SYS_SOCKET || sys == SYS_ACCEPT || sys == SYS_ACCEPT4) && ret >= 0;
	bool by_fd = !(sys == SYS_CLOSE && in) && (sys != SYS_SOCKET || ret >= 0);
	/* Without owner bookkeeping, a socket the port filter rejects is
	 * done with as soon as its ports are read, before the event is made
	 * or the clock read (the common case under a port filter: wanted
	 * sockets are few). fcntl on a socket whose ports are unknown: see
	 * below. */
	const struct sock *found = NULL;
	if (cfg_kfunc_cast && by_fd) {
		bool rejected = false;
		found = fd_inet_sock_btf(new_fd ? ret : (long)(int)a0,
					 !owner_filtering() && sys != SYS_CLOSE,
					 sys == SYS_FCNTL && (cfg_filter_port || cfg_filter_addr), &rejected);
		if (rejected) {
			if (ports_decided(sys))
				forget_held((__u64)found);
			filtered(SS_SYSCALL);
			return 0;
		}
		if (!found)
			return 0;
	}

	struct ss_event e = {};
	e.ts_ns = bpf_ktime_get_ns();
	e.kind = SS_SYSCALL;
	e.u.sys.sys = sys;
	e.u.sys.fd = sys == SYS_SOCKET ? -1 : (int)a0;
	e.u.sys.ret = ret;
	e.u.sys.dur_ns = start ? e.ts_ns - start : 0;
	__s32 owner_fd = new_fd ? (__s32)ret : e.u.sys.fd;

	__u64 sk = 0;
	if (sys == SYS_CLOSE && in) {
		sk = in->sk;
		e.family = in->id.family;
		e.state = in->id.state;
		e.sport = in->id.sport;
		e.dport = in->id.dport;
		e.netns = in->id.netns;
		e.cookie = in->id.cookie;
		e.protocol = in->id.protocol;
		__builtin_memcpy(e.saddr, in->id.saddr, 16);
		__builtin_memcpy(e.daddr, in->id.daddr, 16);
	} else if (found) {
		sk = fill_inet_sock_btf(&e, found);
	} else if (by_fd) {
		/* Kernels without the kfunc: probe reads. */
		bool rejected = false;
		sk = fd_fill_or_reject(&e, new_fd ? ret : (long)(int)a0,
				       !owner_filtering() && sys != SYS_CLOSE,
				       sys == SYS_FCNTL && (cfg_filter_port || cfg_filter_addr),
				       &rejected);
		if (rejected) {
			if (ports_decided(sys))
				forget_held(sk);
			filtered(SS_SYSCALL);
			return 0;
		}
	}
	if (!sk)
		return 0;
	e.sk = sk;
	if (cfg_netns && e.netns != cfg_netns)
		return 0;
	/* A socket the port or address filter rejects needs no owner either
	 * (its other events are filtered out the same way). */
	/* A close passed the filter at entry (its exit may come after the
	 * socket was destroyed and its port given back). */
	bool wanted = (sys == SYS_CLOSE && in) || tuple_passes(&e);
	if (!wanted && ports_decided(sys))
		forget_held(sk);
	if (!wanted && !owner_filtering()) {
		filtered(SS_SYSCALL);
		return 0;
	}

	/* fcntl on a socket whose ports are unknown says nothing a port or
	 * address filter could keep (wrk sets O_NONBLOCK before connect on
	 * every connection): left out under such a filter. */
	if (sys == SYS_FCNTL && (cfg_filter_port || cfg_filter_addr) && !e.sport && !e.dport) {
		filtered(SS_SYSCALL);
		return 0;
	}
	switch (sys) {
	case SYS_SOCKET:
		e.u.sys.arg[0] = a0;
		e.u.sys.arg[1] = SYSCALL_ARG1(regs);
		e.u.sys.arg[2] = SYSCALL_ARG2(regs);
		break;
	case SYS_BIND:
	case SYS_CONNECT:
		read_sockaddr(&e, (const void *)SYSCALL_ARG1(regs), (long)(int)SYSCALL_ARG2(regs));
		break;
	case SYS_LISTEN:
	case SYS_SHUTDOWN:
		e.u.sys.arg[0] = SYSCALL_ARG1(regs);
		break;
	case SYS_ACCEPT4:
		e.u.sys.arg[0] = SYSCALL_ARG3(regs);
		break;
	case SYS_FCNTL:
		e.u.sys.arg[0] = SYSCALL_ARG1(regs); /* cmd */
		e.u.sys.arg[1] = SYSCALL_ARG2(regs); /* the new file status flags */
		break;
	case SYS_SETSOCKOPT: {
		e.u.sys.arg[0] = SYSCALL_ARG1(regs); /* level */
		e.u.sys.arg[1] = SYSCALL_ARG2(regs); /* optname */
		/* the value: an int, or struct linger {onoff, linger} */
		const void *val = (const void *)SYSCALL_ARG3(regs);
		long optlen = (long)(int)SYSCALL_ARG4(regs);
		__u64 v = 0;
		if (optlen >= 8)
			bpf_probe_read_user(&v, 8, val);
		else if (optlen >= 4)
			bpf_probe_read_user(&v, 4, val);
		e.u.sys.arg[2] = v;
		e.u.sys.addr_port = (__u16)optlen;
		break;
	}
	default:
		break;
	}
	task_owner(&e, owner_fd);

	/* Owner bookkeeping, when the kernel attributes events. */
	if (kernel_owners()) {
		learn_owner(e.sk, &e, sys == SYS_CLOSE && ret == 0);
		if (sys == SYS_LISTEN && ret == 0) {
			struct ss_listen_key k = {};
			struct ss_listen_val v = {};
			k.netns = e.netns;
			k.port = e.sport;
			v.owner.pid = e.pid;
			v.owner.fd = e.fd;
			__builtin_memcpy(v.owner.comm, e.comm, 16);
			v.owner.src = SS_OWNER_SOCKET;
			v.sk = e.sk;
			bpf_map_update_elem(&listeners, &k, &v, BPF_ANY);
		}
	}

	if (!kind_on(SS_SYSCALL))
		return 0;
	if (!state_passes(e.state, e.state) || !wanted) {
		filtered(SS_SYSCALL);
		return 0;
	}
	/* A process waits for a traced socket once that socket's ports are
	 * known (an unbound socket passes the filters only as unknown). */
	if (e.sport || e.dport)
		note_waiter(e.pid);
	if (sys == SYS_SOCKET && ret >= 0)
		emit_new_socket(&e);
	else
		emit(&e);
	return 0;
}

/* raw_syscalls, as BTF tracepoints: every syscall (the fallback). */
SEC("tp_btf/sys_enter")
int ss_sys_enter(unsigned long long *ctx)
{
	if (cfg_noop_all || cfg_emit_only)
		return 0;
	struct pt_regs *regs = (void *)CTX_ARG(ctx, 0);
	__u16 sys = entry_sys((long)CTX_ARG(ctx, 1));
	if (sys == SYS_OTHER)
		return 0;
	return enter_common(sys, (long)SYSCALL_ARG0(regs));
}

SEC("tp_btf/sys_exit")
int ss_sys_exit(unsigned long long *ctx)
{
	if (cfg_noop_all)
		return 0;
	struct pt_regs *regs = (void *)CTX_ARG(ctx, 0);
	__u16 sys = entry_sys((long)SYSCALL_NR(regs));
	if (sys == SYS_OTHER)
		return 0;
	if (cfg_emit_only)
		return emit_only(SS_SYSCALL);
	return exit_common(sys, (long)CTX_ARG(ctx, 1));
}

/* The per-syscall tracepoints' records (the events' format files:
 * syscalls/sys_enter_NAME/format, sys_exit_NAME/format). */
struct sc_enter_rec {
	__u64 common;
	int nr;
	int _pad;
	unsigned long args[6];
};

struct sc_exit_rec {
	__u64 common;
	int nr;
	int _pad;
	long ret;
};

/* syscalls:sys_enter_NAME for close, accept, accept4 and connect (the
 * loader attaches this one program to each). Only the first argument is
 * read: one program serves all four events, so it may only read the
 * record as far as the shortest one goes (close: one argument); the
 * kernel refuses to attach a program whose reads go further. */
SEC("tracepoint/syscalls/sys_enter")
int ss_sc_enter(struct sc_enter_rec *ctx)
{
	if (cfg_noop_all || cfg_emit_only)
		return 0;
	__u16 sys = entry_sys(ctx->nr);
	if (sys == SYS_OTHER)
		return 0;
	return enter_common(sys, (long)ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_exit")
int ss_sc_exit(struct sc_exit_rec *ctx)
{
	if (cfg_noop_all)
		return 0;
	__u16 sys = entry_sys(ctx->nr);
	if (sys == SYS_OTHER)
		return 0;
	if (cfg_emit_only)
		return emit_only(SS_SYSCALL);
	return exit_common(sys, ctx->ret);
}
