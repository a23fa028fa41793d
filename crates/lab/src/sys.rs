//! Every syscall the lab server makes, in one place, each traced when
//! `--trace-syscalls` is on: `[pid N] accept4(3, 127.0.0.1:40112, SOCK_CLOEXEC) = 5`.
//!
//! The wrappers are thin: rustix where it has the call, libc for fork,
//! signals and close-with-result. They return rustix `Errno`s so callers can
//! match EAGAIN / EINTR cheaply. With tracing off a wrapper costs one branch.

use crate::trace::{self, Tracer};
use rustix::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use rustix::io::Errno;
use rustix::net::{self, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use std::ffi::CStr;
use std::fmt::Write;
use std::net::SocketAddr;
use std::time::Duration;

pub type Res<T> = Result<T, Errno>;

fn raw(fd: impl AsFd) -> i32 {
    fd.as_fd().as_raw_fd()
}

fn errno_now() -> Errno {
    Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// `socket(AF_INET[6], SOCK_STREAM|SOCK_CLOEXEC[|SOCK_NONBLOCK], IPPROTO_TCP)`.
pub fn socket(t: Tracer, v6: bool, nonblock: bool) -> Res<OwnedFd> {
    let mut flags = SocketFlags::CLOEXEC;
    if nonblock {
        flags |= SocketFlags::NONBLOCK;
    }
    let fam = if v6 {
        AddressFamily::INET6
    } else {
        AddressFamily::INET
    };
    let r = net::socket_with(fam, SocketType::STREAM, flags, Some(net::ipproto::TCP));
    t.emit(|l| {
        let _ = write!(
            l,
            "socket({}, SOCK_STREAM|SOCK_CLOEXEC{}, IPPROTO_TCP)",
            if v6 { "AF_INET6" } else { "AF_INET" },
            if nonblock { "|SOCK_NONBLOCK" } else { "" }
        );
        trace::result(l, &r.as_ref().map(raw).map_err(|e| *e));
    });
    r
}

/// The socket options the server sets.
#[derive(Clone, Copy, Debug)]
pub enum Opt {
    ReuseAddr,
    ReusePort,
    NoDelay,
    RcvTimeo(Duration),
    SndTimeo(Duration),
}

/// `setsockopt(fd, level, name, value)`.
pub fn setsockopt(t: Tracer, fd: impl AsFd, opt: Opt) -> Res<()> {
    use rustix::net::sockopt::{self, Timeout};
    let fd = fd.as_fd();
    let r = match opt {
        Opt::ReuseAddr => sockopt::set_socket_reuseaddr(fd, true),
        Opt::ReusePort => sockopt::set_socket_reuseport(fd, true),
        Opt::NoDelay => sockopt::set_tcp_nodelay(fd, true),
        Opt::RcvTimeo(d) => sockopt::set_socket_timeout(fd, Timeout::Recv, Some(d)),
        Opt::SndTimeo(d) => sockopt::set_socket_timeout(fd, Timeout::Send, Some(d)),
    };
    t.emit(|l| {
        let _ = match opt {
            Opt::ReuseAddr => write!(l, "setsockopt({}, SOL_SOCKET, SO_REUSEADDR, 1)", raw(fd)),
            Opt::ReusePort => write!(l, "setsockopt({}, SOL_SOCKET, SO_REUSEPORT, 1)", raw(fd)),
            Opt::NoDelay => write!(l, "setsockopt({}, IPPROTO_TCP, TCP_NODELAY, 1)", raw(fd)),
            Opt::RcvTimeo(d) => write!(
                l,
                "setsockopt({}, SOL_SOCKET, SO_RCVTIMEO, {}ms)",
                raw(fd),
                d.as_millis()
            ),
            Opt::SndTimeo(d) => write!(
                l,
                "setsockopt({}, SOL_SOCKET, SO_SNDTIMEO, {}ms)",
                raw(fd),
                d.as_millis()
            ),
        };
        trace::result(l, &r.map(|_| 0));
    });
    r
}

/// `bind(fd, addr)`.
pub fn bind(t: Tracer, fd: impl AsFd, addr: &SocketAddr) -> Res<()> {
    let r = net::bind(&fd, addr);
    t.emit(|l| {
        let _ = write!(l, "bind({}, {addr})", raw(&fd));
        trace::result(l, &r.map(|_| 0));
    });
    r
}

/// `listen(fd, backlog)`.
pub fn listen(t: Tracer, fd: impl AsFd, backlog: i32) -> Res<()> {
    let r = net::listen(&fd, backlog);
    t.emit(|l| {
        let _ = write!(l, "listen({}, {backlog})", raw(&fd));
        trace::result(l, &r.map(|_| 0));
    });
    r
}

/// `getsockname(fd)` as an IP socket address.
pub fn local_addr(t: Tracer, fd: impl AsFd) -> Res<SocketAddr> {
    let r =
        net::getsockname(&fd).and_then(|a| SocketAddr::try_from(a).map_err(|_| Errno::AFNOSUPPORT));
    t.emit(|l| {
        let _ = write!(l, "getsockname({})", raw(&fd));
        match &r {
            Ok(a) => {
                let _ = write!(l, " = 0 ({a})");
            }
            Err(e) => trace::errno(l, *e),
        }
    });
    r
}

/// `accept4(fd, &peer, SOCK_CLOEXEC[|SOCK_NONBLOCK])`: the new connection's
/// fd. The peer address is only fetched when tracing (it is only printed).
pub fn accept(t: Tracer, fd: impl AsFd, nonblock: bool) -> Res<OwnedFd> {
    let mut flags = SocketFlags::CLOEXEC;
    if nonblock {
        flags |= SocketFlags::NONBLOCK;
    }
    if !t.on {
        return net::accept_with(&fd, flags);
    }
    let r = net::acceptfrom_with(&fd, flags);
    t.emit(|l| {
        let _ = write!(l, "accept4({}, ", raw(&fd));
        match r.as_ref().ok().and_then(|(_, a)| a.clone()) {
            Some(a) => match SocketAddr::try_from(a) {
                Ok(a) => {
                    let _ = write!(l, "{a}");
                }
                Err(_) => {
                    let _ = write!(l, "?");
                }
            },
            None => {
                let _ = write!(l, "NULL");
            }
        }
        let _ = write!(
            l,
            ", SOCK_CLOEXEC{})",
            if nonblock { "|SOCK_NONBLOCK" } else { "" }
        );
        trace::result(l, &r.as_ref().map(|(f, _)| raw(f)).map_err(|e| *e));
    });
    r.map(|(f, _)| f)
}

/// `connect(fd, addr)` (scenarios only).
pub fn connect(t: Tracer, fd: impl AsFd, addr: &SocketAddr) -> Res<()> {
    let r = net::connect(&fd, addr);
    t.emit(|l| {
        let _ = write!(l, "connect({}, {addr})", raw(&fd));
        trace::result(l, &r.map(|_| 0));
    });
    r
}

/// `read(fd, buf, len)`.
pub fn read(t: Tracer, fd: impl AsFd, buf: &mut [u8]) -> Res<usize> {
    let r = rustix::io::read(&fd, &mut *buf);
    t.emit(|l| {
        let _ = write!(l, "read({}, ", raw(&fd));
        match r {
            Ok(n) => trace::quoted(l, &buf[..n], 60),
            Err(_) => {
                let _ = l.write_str("...");
            }
        }
        let _ = write!(l, ", {})", buf.len());
        trace::result(l, &r);
    });
    r
}

/// `recv(fd, buf, len, MSG_DONTWAIT)` (scenarios only).
pub fn recv_nowait(fd: impl AsFd, buf: &mut [u8]) -> Res<usize> {
    net::recv(&fd, buf, RecvFlags::DONTWAIT).map(|(n, _)| n)
}

/// Before closing a connection the server gives up on: `shutdown(SHUT_WR)`
/// (the response is followed by FIN), then read without waiting whatever
/// the client already sent, up to 256 KiB, so that close() does not answer
/// unread data with RST.
pub fn drain(t: Tracer, fd: impl AsFd) {
    shutdown_write(t, &fd);
    let mut buf = [0u8; 4096];
    let mut total = 0usize;
    while total < 256 * 1024 {
        match net::recv(&fd, &mut buf, RecvFlags::DONTWAIT) {
            Ok((n, _)) if n > 0 => total += n,
            _ => break,
        }
    }
    t.emit(|l| {
        let _ = write!(
            l,
            "recv({}, ..., MSG_DONTWAIT) until empty: {total} unread bytes dropped",
            raw(&fd)
        );
    });
}

/// `shutdown(fd, SHUT_WR)`: the client reads FIN after the response.
pub fn shutdown_write(t: Tracer, fd: impl AsFd) {
    let r = net::shutdown(&fd, net::Shutdown::Write);
    t.emit(|l| {
        let _ = write!(l, "shutdown({}, SHUT_WR)", raw(&fd));
        trace::result(l, &r.map(|_| 0));
    });
}

/// `sendto(fd, data, len, MSG_NOSIGNAL[|MSG_MORE][|MSG_DONTWAIT])`. MSG_MORE
/// when a body follows with sendfile, so head and body leave in one segment.
pub fn send(t: Tracer, fd: impl AsFd, data: &[u8], more: bool, dontwait: bool) -> Res<usize> {
    let mut flags = SendFlags::NOSIGNAL;
    if more {
        flags |= SendFlags::MORE;
    }
    if dontwait {
        flags |= SendFlags::DONTWAIT;
    }
    let r = net::send(&fd, data, flags);
    t.emit(|l| {
        let _ = write!(l, "sendto({}, ", raw(&fd));
        trace::quoted(l, data, 60);
        let _ = write!(
            l,
            ", {}, MSG_NOSIGNAL{}{})",
            data.len(),
            if more { "|MSG_MORE" } else { "" },
            if dontwait { "|MSG_DONTWAIT" } else { "" }
        );
        trace::result(l, &r);
    });
    r
}

/// `sendfile(out, in, &offset, count)`.
pub fn sendfile(
    t: Tracer,
    out: impl AsFd,
    file: impl AsFd,
    off: &mut u64,
    count: usize,
) -> Res<usize> {
    let before = *off;
    let r = rustix::fs::sendfile(&out, &file, Some(off), count);
    t.emit(|l| {
        let _ = write!(
            l,
            "sendfile({}, {}, [{before}], {count})",
            raw(&out),
            raw(&file)
        );
        trace::result(l, &r);
    });
    r
}

/// `openat2(dir, path, O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_NOCTTY, RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS)`:
/// the kernel refuses any path that would leave `dir` (`..`, absolute
/// symlinks, symlinks pointing out) with EXDEV. O_NONBLOCK so a FIFO in the
/// tree cannot block the server.
pub fn open_beneath(t: Tracer, dir: impl AsFd, path: &CStr) -> Res<OwnedFd> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let r = rustix::fs::openat2(
        &dir,
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    );
    t.emit(|l| {
        let _ = write!(l, "openat2({}, ", raw(&dir));
        trace::quoted(l, path.to_bytes(), 120);
        let _ =
            l.write_str(", O_RDONLY|O_NONBLOCK|O_CLOEXEC, RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS)");
        trace::result(l, &r.as_ref().map(raw).map_err(|e| *e));
    });
    r
}

/// What fstat says about an opened path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Regular,
    Directory,
    Other,
}

/// `fstat(fd)`: kind and size.
pub fn fstat(t: Tracer, fd: impl AsFd) -> Res<(FileKind, u64)> {
    let r = rustix::fs::fstat(&fd).map(|st| {
        let kind = match rustix::fs::FileType::from_raw_mode(st.st_mode) {
            rustix::fs::FileType::RegularFile => FileKind::Regular,
            rustix::fs::FileType::Directory => FileKind::Directory,
            _ => FileKind::Other,
        };
        (kind, st.st_size.max(0) as u64)
    });
    t.emit(|l| {
        let _ = write!(l, "fstat({})", raw(&fd));
        match &r {
            Ok((k, size)) => {
                let _ = write!(l, " = 0 ({k:?}, size {size})");
            }
            Err(e) => trace::errno(l, *e),
        }
    });
    r
}

/// `close(fd)`, with its result.
pub fn close(t: Tracer, fd: OwnedFd) {
    let n = fd.into_raw_fd();
    // SAFETY: `n` came from an OwnedFd we own and no longer use.
    let rc = unsafe { libc::close(n) };
    t.emit(|l| {
        let _ = write!(l, "close({n})");
        if rc == 0 {
            let _ = l.write_str(" = 0");
        } else {
            trace::errno(l, errno_now());
        }
    });
}

/// `fork()`: `Ok(Some(child))` in the parent, `Ok(None)` in the child.
///
/// # Safety
/// The caller must be single-threaded, or the child must only make
/// async-signal-safe calls until it execs or exits.
pub unsafe fn fork(t: Tracer) -> Res<Option<i32>> {
    // SAFETY: see the function's contract.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = errno_now();
        t.emit(|l| {
            let _ = l.write_str("fork()");
            trace::errno(l, e);
        });
        return Err(e);
    }
    t.emit(|l| {
        let _ = write!(l, "fork() = {pid}");
        if pid == 0 {
            let _ = l.write_str(" (in the child)");
        }
    });
    Ok((pid > 0).then_some(pid))
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

/// `wait4(-1, &status, WNOHANG)`: a child that ended, if any. `Err(ECHILD)`
/// when there are no children at all.
pub fn reap(t: Tracer, block: bool) -> Res<Option<(i32, Exit)>> {
    let mut status = 0;
    let flags = if block { 0 } else { libc::WNOHANG };
    // SAFETY: plain syscall with a valid out pointer.
    let pid = unsafe { libc::waitpid(-1, &mut status, flags) };
    let r = if pid < 0 {
        Err(errno_now())
    } else if pid == 0 {
        Ok(None)
    } else if libc::WIFSIGNALED(status) {
        Ok(Some((pid, Exit::Signal(libc::WTERMSIG(status)))))
    } else {
        Ok(Some((pid, Exit::Code(libc::WEXITSTATUS(status)))))
    };
    t.emit(|l| {
        let _ = write!(l, "wait4(-1, {})", if block { "0" } else { "WNOHANG" });
        match &r {
            Ok(None) => {
                let _ = l.write_str(" = 0 (no child has ended)");
            }
            Ok(Some((p, Exit::Code(c)))) => {
                let _ = write!(l, " = {p} (exited with {c})");
            }
            Ok(Some((p, Exit::Signal(s)))) => {
                let _ = write!(l, " = {p} (killed by signal {s})");
            }
            Err(e) => trace::errno(l, *e),
        }
    });
    r
}

/// `kill(pid, sig)`.
pub fn kill(t: Tracer, pid: i32, sig: i32) -> Res<()> {
    // SAFETY: plain syscall.
    let rc = unsafe { libc::kill(pid, sig) };
    let r = if rc == 0 { Ok(()) } else { Err(errno_now()) };
    t.emit(|l| {
        let _ = write!(l, "kill({pid}, {})", signal_name(sig));
        trace::result(l, &r.map(|_| 0));
    });
    r
}

pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGKILL => "SIGKILL",
        libc::SIGHUP => "SIGHUP",
        libc::SIGPIPE => "SIGPIPE",
        _ => "SIG?",
    }
}

/// `epoll_create1(EPOLL_CLOEXEC)`.
pub fn epoll_create(t: Tracer) -> Res<OwnedFd> {
    use rustix::event::epoll;
    let r = epoll::create(epoll::CreateFlags::CLOEXEC);
    t.emit(|l| {
        let _ = l.write_str("epoll_create1(EPOLL_CLOEXEC)");
        trace::result(l, &r.as_ref().map(raw).map_err(|e| *e));
    });
    r
}

/// `epoll_ctl(ep, EPOLL_CTL_ADD, fd, {flags, data})`.
pub fn epoll_add(
    t: Tracer,
    ep: impl AsFd,
    fd: impl AsFd,
    data: u64,
    flags: rustix::event::epoll::EventFlags,
) -> Res<()> {
    use rustix::event::epoll;
    let r = epoll::add(&ep, &fd, epoll::EventData::new_u64(data), flags);
    t.emit(|l| {
        let _ = write!(
            l,
            "epoll_ctl({}, EPOLL_CTL_ADD, {}, {:?})",
            raw(&ep),
            raw(&fd),
            flags
        );
        trace::result(l, &r.map(|_| 0));
    });
    r
}

/// `epoll_ctl(ep, EPOLL_CTL_DEL, fd)`.
pub fn epoll_del(t: Tracer, ep: impl AsFd, fd: impl AsFd) -> Res<()> {
    let r = rustix::event::epoll::delete(&ep, &fd);
    t.emit(|l| {
        let _ = write!(l, "epoll_ctl({}, EPOLL_CTL_DEL, {})", raw(&ep), raw(&fd));
        trace::result(l, &r.map(|_| 0));
    });
    r
}

/// `epoll_wait(ep, events, max, timeout_ms)`.
pub fn epoll_wait(
    t: Tracer,
    ep: impl AsFd,
    events: &mut Vec<rustix::event::epoll::Event>,
    timeout_ms: i64,
) -> Res<usize> {
    use rustix::event::{Timespec, epoll};
    events.clear();
    let ts = Timespec {
        tv_sec: timeout_ms / 1000,
        tv_nsec: (timeout_ms % 1000) * 1_000_000,
    };
    let r = epoll::wait(
        &ep,
        rustix::buffer::spare_capacity(events),
        (timeout_ms >= 0).then_some(&ts),
    );
    t.emit(|l| {
        let _ = write!(
            l,
            "epoll_wait({}, [...], {}, {timeout_ms})",
            raw(&ep),
            events.capacity()
        );
        trace::result(l, &r);
    });
    r
}

/// `poll(fds, timeout)` on up to two fds for POLLIN: which are readable.
pub fn poll_in(t: Tracer, a: impl AsFd, b: impl AsFd, timeout_ms: i32) -> Res<(bool, bool)> {
    poll2(t, (&a, libc::POLLIN), (&b, libc::POLLIN), timeout_ms).map(|(x, y)| (x != 0, y != 0))
}

/// `POLLIN|POLLRDHUP` for a trace line.
fn poll_events_name(l: &mut trace::Line, ev: i16) {
    let mut sep = "";
    for (bit, name) in [
        (libc::POLLIN, "POLLIN"),
        (libc::POLLOUT, "POLLOUT"),
        (libc::POLLRDHUP, "POLLRDHUP"),
    ] {
        if ev & bit != 0 {
            let _ = write!(l, "{sep}{name}");
            sep = "|";
        }
    }
}

/// `poll(fds, timeout)` on two fds, each with its events: their revents.
pub fn poll2(
    t: Tracer,
    a: (impl AsFd, i16),
    b: (impl AsFd, i16),
    timeout_ms: i32,
) -> Res<(i16, i16)> {
    let mut fds = [
        libc::pollfd {
            fd: raw(&a.0),
            events: a.1,
            revents: 0,
        },
        libc::pollfd {
            fd: raw(&b.0),
            events: b.1,
            revents: 0,
        },
    ];
    // SAFETY: valid array of two pollfds.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout_ms) };
    let r = if rc < 0 {
        Err(errno_now())
    } else {
        Ok((fds[0].revents, fds[1].revents))
    };
    t.emit(|l| {
        let _ = write!(l, "poll([{{fd={}, ", fds[0].fd);
        poll_events_name(l, a.1);
        let _ = write!(l, "}}, {{fd={}, ", fds[1].fd);
        poll_events_name(l, b.1);
        let _ = write!(l, "}}], 2, {timeout_ms})");
        trace::result(l, &r.map(|_| rc));
    });
    r
}

/// `poll({fd, POLLIN}, 1, 0)`: is a connection waiting in this listener's
/// accept queue?
pub fn pending(t: Tracer, fd: i32) -> bool {
    let mut p = [libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }];
    // SAFETY: one valid pollfd, no wait.
    let rc = unsafe { libc::poll(p.as_mut_ptr(), 1, 0) };
    t.emit(|l| {
        let _ = write!(l, "poll([{{fd={fd}, POLLIN}}], 1, 0) = {rc}");
    });
    rc == 1
}

/// The signal set the server handles through a signalfd.
pub fn server_sigset() -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGCHLD, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// `rt_sigprocmask(how, set)`.
pub fn sigprocmask(t: Tracer, block: bool, set: &libc::sigset_t, names: &str) -> Res<()> {
    let how = if block {
        libc::SIG_BLOCK
    } else {
        libc::SIG_UNBLOCK
    };
    // SAFETY: valid set pointer; null old set.
    let rc = unsafe { libc::sigprocmask(how, set, std::ptr::null_mut()) };
    let r = if rc == 0 { Ok(()) } else { Err(errno_now()) };
    t.emit(|l| {
        let _ = write!(
            l,
            "rt_sigprocmask({}, [{names}])",
            if block { "SIG_BLOCK" } else { "SIG_UNBLOCK" }
        );
        trace::result(l, &r.map(|_| 0));
    });
    r
}

/// `signalfd(-1, set, SFD_NONBLOCK|SFD_CLOEXEC)`.
pub fn signalfd(t: Tracer, set: &libc::sigset_t) -> Res<OwnedFd> {
    // SAFETY: valid set pointer.
    let fd = unsafe { libc::signalfd(-1, set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
    let r = if fd < 0 {
        Err(errno_now())
    } else {
        // SAFETY: a new fd we own.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    t.emit(|l| {
        let _ = l.write_str("signalfd(-1, [TERM INT CHLD HUP], SFD_NONBLOCK|SFD_CLOEXEC)");
        trace::result(l, &r.as_ref().map(raw).map_err(|e| *e));
    });
    r
}

/// Read every pending signal from a signalfd; returns them as a bit mask
/// (`1 << signo`). Empty when none is pending.
pub fn read_signals(t: Tracer, fd: impl AsFd) -> u64 {
    let mut mask = 0u64;
    let mut buf = [0u8; 128]; // sizeof(struct signalfd_siginfo)
    loop {
        match rustix::io::read(&fd, &mut buf) {
            Ok(n) if n >= 4 => {
                let signo = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
                t.emit(|l| {
                    let _ = write!(
                        l,
                        "read({}, {{ssi_signo={}}}, 128) = {n}",
                        raw(&fd),
                        signal_name(signo as i32)
                    );
                });
                if signo < 64 {
                    mask |= 1 << signo;
                }
            }
            Err(Errno::INTR) => continue,
            _ => return mask,
        }
    }
}

/// The fallback when the kernel has no openat2 (before Linux 5.6): resolve
/// the path with realpath(3) and refuse it unless it is still under `root`
/// (already canonical). Racy against a concurrent rename, which openat2 is
/// not; used only when openat2 answers ENOSYS.
pub fn open_checked(t: Tracer, root: &std::path::Path, rel: &CStr) -> Res<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    use std::os::unix::ffi::OsStrExt;
    let full = root.join(std::ffi::OsStr::from_bytes(rel.to_bytes()));
    let r = std::fs::canonicalize(&full)
        .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))
        .and_then(|canon| {
            if canon.starts_with(root) {
                rustix::fs::open(
                    &canon,
                    OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
                    Mode::empty(),
                )
            } else {
                Err(Errno::XDEV)
            }
        });
    t.emit(|l| {
        let _ = l.write_str("open(");
        trace::quoted(l, full.as_os_str().as_bytes(), 120);
        let _ = l.write_str(", O_RDONLY|O_NONBLOCK|O_CLOEXEC) [realpath + prefix check]");
        trace::result(l, &r.as_ref().map(raw).map_err(|e| *e));
    });
    r
}
