//! `sockscope lab serve`: the web server of seed 004, in five process models.
//!
//! - `single`: one process, one connection at a time (poll on it and the
//!   signals); a connection is kept alive only while no other client is
//!   waiting.
//! - `fork`: the parent accepts, a child per connection serves it (seed 004)
//!   as `single` does; the parent reaps children as SIGCHLD arrives, so none
//!   stays a zombie.
//! - `prefork N`: N worker processes share one listening socket, each runs
//!   an epoll loop; a master process forks them, restarts one that dies and
//!   stops them on SIGTERM.
//! - `reuseport N`: as prefork, but each worker has its own listening socket
//!   bound with SO_REUSEPORT to the same address (seed 001): the kernel
//!   spreads connections over the N accept queues.
//! - `epoll`: one process, nonblocking sockets, one epoll loop.
//!
//! Every socket is nonblocking and every timeout is the connection's own
//! deadline (see [`crate::conn`]): the models differ only in how they wait.
//!
//! SIGTERM (or SIGINT, SIGHUP) closes the listening sockets at once (new
//! clients are refused), lets requests in flight finish within the grace
//! period (their responses say `Connection: close`), closes idle keep-alive
//! connections and exits 0; a master or fork parent forwards it to its
//! children and waits for all of them, killing any still there a second
//! after the grace period.

use crate::conn::{self, Conn, Cx, Want};
use crate::signals;
use crate::sys::{self, Exit, Opt};
use crate::trace::Tracer;
use rustix::event::epoll::EventFlags;
use rustix::fd::{AsRawFd, OwnedFd};
use rustix::io::Errno;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The process model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    Single,
    Fork,
    Prefork(usize),
    Reuseport(usize),
    Epoll,
}

impl Model {
    pub fn name(self) -> String {
        match self {
            Model::Single => "single".into(),
            Model::Fork => "fork".into(),
            Model::Prefork(n) => format!("prefork {n}"),
            Model::Reuseport(n) => format!("reuseport {n}"),
            Model::Epoll => "epoll".into(),
        }
    }
}

/// Largest worker count for prefork and reuseport.
pub const MAX_WORKERS: usize = 256;

#[derive(Clone, Debug)]
pub struct Config {
    pub model: Model,
    pub addr: SocketAddr,
    /// listen(2) backlog (the kernel caps it at net.core.somaxconn).
    pub backlog: i32,
    pub root: PathBuf,
    /// Listen, never accept: the accept queue fills and stays full.
    pub pause_accept: bool,
    pub trace: bool,
    pub header_timeout: Duration,
    pub send_timeout: Duration,
    /// After SIGTERM, how long requests in flight have to finish.
    pub grace: Duration,
    /// Connections served at once per process (epoll models), or children
    /// at once (fork); more get 503.
    pub max_conns: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            model: Model::Fork,
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            backlog: 511,
            root: PathBuf::from("."),
            pause_accept: false,
            trace: false,
            header_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(30),
            grace: Duration::from_secs(10),
            max_conns: 1024,
        }
    }
}

/// What the caller is told once the server listens.
#[derive(Clone, Debug)]
pub struct Ready {
    pub addr: SocketAddr,
    pub pid: u32,
    pub root: PathBuf,
    /// Listening socket fds in the process that made them.
    pub listeners: Vec<i32>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot serve directory {root}: {source}")]
    Root {
        root: String,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {call}: {source}{hint}")]
    Listen {
        addr: SocketAddr,
        call: &'static str,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error("{call}: {source}")]
    Sys {
        call: &'static str,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error("the workers keep dying at start ({0} failures); see their output above")]
    Workers(usize),
}

impl sockscope::error::Classify for ServeError {
    fn kind(&self) -> sockscope::error::Kind {
        use sockscope::error::Kind;
        match self {
            ServeError::Root { .. } | ServeError::Config(_) => Kind::Usage,
            // A port in use or an address not here: another --addr fixes it.
            ServeError::Listen { source, .. }
                if matches!(
                    source.raw_os_error(),
                    Some(libc::EADDRINUSE | libc::EADDRNOTAVAIL)
                ) =>
            {
                Kind::Usage
            }
            // A port below 1024 without the privilege to bind it.
            ServeError::Listen { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                Kind::Privilege
            }
            _ => Kind::System,
        }
    }
}

fn sys_err(call: &'static str) -> impl Fn(Errno) -> ServeError {
    move |e| ServeError::Sys {
        call,
        source: e.into(),
    }
}

/// Raise the soft open-files limit to the hard one (at most 65536): every
/// connection is a file descriptor. Returns the soft limit in force.
fn raise_nofile() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    let want = l.maximum.unwrap_or(65_536).min(65_536);
    if l.current.is_some_and(|c| c < want) {
        l.current = Some(want);
        let _ = setrlimit(Resource::Nofile, l);
    }
    getrlimit(Resource::Nofile).current.unwrap_or(1024)
}

/// socket, setsockopt, bind, listen: one listening socket.
fn listener(
    t: Tracer,
    addr: SocketAddr,
    backlog: i32,
    reuseport: bool,
    nonblock: bool,
) -> Result<OwnedFd, ServeError> {
    let fail = |call: &'static str| {
        move |e: Errno| {
            let hint = match e {
                Errno::ADDRINUSE => {
                    " (another socket is bound there: find it with `sockscope ls -tlp`, or pick another --addr)"
                }
                Errno::ACCESS => " (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
                Errno::ADDRNOTAVAIL => " (no interface has that address)",
                _ => "",
            };
            ServeError::Listen {
                addr,
                call,
                source: e.into(),
                hint,
            }
        }
    };
    let fd = sys::socket(t, addr.is_ipv6(), nonblock).map_err(fail("socket"))?;
    sys::setsockopt(t, &fd, Opt::ReuseAddr).map_err(fail("setsockopt(SO_REUSEADDR)"))?;
    if reuseport {
        sys::setsockopt(t, &fd, Opt::ReusePort).map_err(fail("setsockopt(SO_REUSEPORT)"))?;
    }
    sys::bind(t, &fd, &addr).map_err(fail("bind"))?;
    sys::listen(t, &fd, backlog).map_err(fail("listen"))?;
    Ok(fd)
}

/// Run the server until SIGTERM / SIGINT / SIGHUP. `ready` is called once
/// every listening socket is bound (before any worker starts).
pub fn serve(cfg: &Config, ready: impl FnOnce(&Ready)) -> Result<(), ServeError> {
    let t = Tracer::new(cfg.trace);
    match cfg.model {
        Model::Prefork(n) | Model::Reuseport(n) if n == 0 || n > MAX_WORKERS => {
            return Err(ServeError::Config(format!(
                "{}: the number of workers must be 1 to {MAX_WORKERS}",
                cfg.model.name()
            )));
        }
        _ => {}
    }
    if cfg.backlog < 0 {
        return Err(ServeError::Config("--backlog must be 0 or more".into()));
    }
    signals::ignore_sigpipe();
    let nofile = raise_nofile();
    let max_conns = cfg
        .max_conns
        .clamp(1, (nofile.saturating_sub(64)).max(16) as usize);
    let (root, root_path) = conn::open_root(t, &cfg.root).map_err(|e| ServeError::Root {
        root: sockscope::view::escape::escape_bytes(cfg.root.as_os_str().as_encoded_bytes())
            .into_owned(),
        source: e,
    })?;
    let set = sys::server_sigset();
    sys::sigprocmask(t, true, &set, "TERM INT CHLD HUP").map_err(sys_err("sigprocmask"))?;
    let sigfd = sys::signalfd(t, &set).map_err(sys_err("signalfd"))?;

    let nonblock = true;
    let mut listeners = Vec::new();
    let mut addr = cfg.addr;
    let count = match cfg.model {
        Model::Reuseport(n) => n,
        _ => 1,
    };
    for _ in 0..count {
        let l = listener(
            t,
            addr,
            cfg.backlog,
            matches!(cfg.model, Model::Reuseport(_)),
            nonblock,
        )?;
        if addr.port() == 0 {
            // Port 0: the kernel picked one; the other reuseport sockets join it.
            addr = sys::local_addr(t, &l).map_err(sys_err("getsockname"))?;
        }
        listeners.push(l);
    }
    ready(&Ready {
        addr,
        pid: std::process::id(),
        root: root_path.clone(),
        listeners: listeners.iter().map(|l| l.as_raw_fd()).collect(),
    });

    let mut cx = Cx {
        t,
        root,
        root_path,
        openat2: true,
        header_timeout: cfg.header_timeout,
        send_timeout: cfg.send_timeout,
        grace: cfg.grace,
        stopping: false,
        stop_deadline: None,
        now: Instant::now(),
        yield_to: None,
        date: Default::default(),
    };
    match cfg.model {
        Model::Single => run_single(&mut cx, listeners, sigfd, cfg.pause_accept),
        Model::Fork => run_fork(&mut cx, listeners, sigfd, cfg.pause_accept, max_conns),
        Model::Epoll => worker(
            &mut cx,
            listeners,
            sigfd,
            false,
            cfg.pause_accept,
            max_conns,
        ),
        Model::Prefork(n) | Model::Reuseport(n) => {
            master(&mut cx, listeners, sigfd, n, cfg.pause_accept, max_conns)
        }
    }
}

/// Wait (signals only) until asked to stop.
fn wait_for_stop(t: Tracer, sigfd: &OwnedFd) {
    loop {
        let _ = sys::poll_in(t, sigfd, sigfd, -1);
        if sys::read_signals(t, sigfd) & signals::stop_bits() != 0 {
            return;
        }
    }
}

/// Milliseconds from `now` to `at`, rounded up, for a poll timeout.
fn ms_until(now: Instant, at: Instant) -> i32 {
    let d = at.saturating_duration_since(now);
    d.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
}

/// Serve one connection (single model, fork child) until it closes, times
/// out or the server stops: drive it, then poll it and the signalfd with
/// its deadline as the timeout. A stop signal closes `listener` at once.
fn serve_polled(
    cx: &mut Cx,
    conn: &mut Conn,
    fd: OwnedFd,
    sigfd: &OwnedFd,
    listener: &mut Option<OwnedFd>,
) {
    let t = cx.t;
    cx.now = Instant::now();
    conn.open(fd, cx);
    loop {
        let events = match conn.drive(cx) {
            Want::Close => break,
            Want::Read => libc::POLLIN | libc::POLLRDHUP,
            Want::Write => libc::POLLOUT,
        };
        let Some(cfd) = conn.fd() else { break };
        let r = sys::poll2(
            t,
            (cfd, events),
            (sigfd, libc::POLLIN),
            ms_until(cx.now, conn.deadline),
        );
        cx.now = Instant::now();
        let (cr, sr) = match r {
            Ok(r) => r,
            Err(Errno::INTR) => (0, 0),
            Err(_) => break,
        };
        if sr != 0 && sys::read_signals(t, sigfd) & signals::stop_bits() != 0 && !cx.stopping {
            cx.begin_stop();
            if let Some(l) = listener.take() {
                cx.yield_to = None;
                sys::close(t, l);
            }
            if conn.on_stop(cx) {
                break;
            }
        }
        if cr & (libc::POLLIN | libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0 {
            conn.readable = true;
        }
        if cr & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0 {
            conn.hup = true;
        }
        // Whether or not it is ready: a client trickling bytes fast enough
        // to wake every poll must still meet its deadline.
        if cx.now >= conn.deadline {
            conn.time_out(cx);
            break;
        }
    }
    conn.close(cx);
}

fn run_single(
    cx: &mut Cx,
    mut listeners: Vec<OwnedFd>,
    sigfd: OwnedFd,
    pause: bool,
) -> Result<(), ServeError> {
    let t = cx.t;
    let mut l = Some(
        listeners
            .pop()
            .ok_or(ServeError::Config("no listener".into()))?,
    );
    if pause {
        wait_for_stop(t, &sigfd);
        if let Some(l) = l {
            sys::close(t, l);
        }
        return Ok(());
    }
    let mut conn = Conn::new();
    cx.yield_to = l.as_ref().map(|l| l.as_raw_fd());
    while let Some(lfd) = &l {
        let (lr, sr) = match sys::poll_in(t, lfd, &sigfd, -1) {
            Ok(r) => r,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(sys_err("poll")(e)),
        };
        if sr && sys::read_signals(t, &sigfd) & signals::stop_bits() != 0 {
            break;
        }
        if !lr {
            continue;
        }
        match sys::accept(t, lfd, true) {
            Ok(fd) => {
                serve_polled(cx, &mut conn, fd, &sigfd, &mut l);
                if cx.stopping {
                    break;
                }
            }
            Err(e) => accept_trouble(e),
        }
    }
    if let Some(l) = l {
        sys::close(t, l);
    }
    Ok(())
}

/// After a failed accept: out of file descriptors is worth a pause (the
/// listener stays readable, retrying at once would spin); the rest (a
/// connection reset before it was accepted, EINTR, EAGAIN) is not.
fn accept_trouble(e: Errno) {
    if matches!(
        e,
        Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM
    ) {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reap every child that has ended; returns their pids.
fn reap_all(t: Tracer, children: &mut Vec<i32>) -> Vec<(i32, Exit)> {
    let mut out = Vec::new();
    while let Ok(Some((pid, how))) = sys::reap(t, false) {
        children.retain(|&c| c != pid);
        out.push((pid, how));
    }
    out
}

fn run_fork(
    cx: &mut Cx,
    mut listeners: Vec<OwnedFd>,
    sigfd: OwnedFd,
    pause: bool,
    max_children: usize,
) -> Result<(), ServeError> {
    let t = cx.t;
    let mut l = Some(
        listeners
            .pop()
            .ok_or(ServeError::Config("no listener".into()))?,
    );
    if pause {
        wait_for_stop(t, &sigfd);
        if let Some(l) = l {
            sys::close(t, l);
        }
        return Ok(());
    }
    let parent = rustix::process::getpid().as_raw_nonzero().get();
    let mut children: Vec<i32> = Vec::new();
    let mut conn = Conn::new();
    let mut kill_at: Option<Instant> = None;
    loop {
        let timeout = kill_at.map_or(-1, |k| ms_until(Instant::now(), k));
        let (lr, sr) = match &l {
            Some(lfd) => sys::poll_in(t, lfd, &sigfd, timeout),
            None => sys::poll_in(t, &sigfd, &sigfd, timeout).map(|(a, _)| (false, a)),
        }
        .or_else(|e| {
            if e == Errno::INTR {
                Ok((false, false))
            } else {
                Err(e)
            }
        })
        .map_err(sys_err("poll"))?;
        if sr {
            let m = sys::read_signals(t, &sigfd);
            if m & signals::bit(libc::SIGCHLD) != 0 {
                reap_all(t, &mut children);
            }
            if m & signals::stop_bits() != 0 && l.is_some() {
                if let Some(lfd) = l.take() {
                    sys::close(t, lfd);
                }
                for &c in &children {
                    let _ = sys::kill(t, c, libc::SIGTERM);
                }
                kill_at = Some(Instant::now() + cx.grace + Duration::from_secs(1));
            }
        }
        if l.is_none() {
            // Stopping: children left to wait for?
            reap_all(t, &mut children);
            if children.is_empty() {
                return Ok(());
            }
            if kill_at.is_some_and(|k| Instant::now() >= k) {
                kill_and_reap(t, &mut children);
                return Ok(());
            }
            continue;
        }
        if !lr {
            continue;
        }
        let Some(lfd) = &l else { continue };
        let fd = match sys::accept(t, lfd, true) {
            Ok(fd) => fd,
            Err(e) => {
                accept_trouble(e);
                continue;
            }
        };
        if children.len() >= max_children {
            conn::reject_busy(cx, fd);
            continue;
        }
        // SAFETY: the server process is single-threaded.
        match unsafe { sys::fork(t) } {
            Ok(Some(pid)) => {
                children.push(pid);
                sys::close(t, fd);
            }
            Ok(None) => {
                // The child: it serves this one connection. It does not need
                // the listening socket; it keeps the signalfd, which reads
                // the signals sent to the child (they stay blocked).
                if let Some(lfd) = l.take() {
                    sys::close(t, lfd);
                }
                if signals::die_with_parent(libc::SIGTERM, parent) {
                    signals::exit_now(0);
                }
                serve_polled(cx, &mut conn, fd, &sigfd, &mut None);
                signals::exit_now(0);
            }
            Err(_) => {
                conn::reject_busy(cx, fd);
            }
        }
    }
}

/// The grace period is over: SIGKILL the children still there and reap them.
fn kill_and_reap(t: Tracer, children: &mut Vec<i32>) {
    for &c in children.iter() {
        let _ = sys::kill(t, c, libc::SIGKILL);
    }
    while !children.is_empty() {
        match sys::reap(t, true) {
            Ok(Some((p, _))) => children.retain(|&c| c != p),
            Err(Errno::INTR) => continue,
            _ => break,
        }
    }
}

/// The master of prefork / reuseport: forks the workers, restarts one that
/// dies, forwards stop signals and waits for every worker.
fn master(
    cx: &mut Cx,
    mut listeners: Vec<OwnedFd>,
    sigfd: OwnedFd,
    n: usize,
    pause: bool,
    max_conns: usize,
) -> Result<(), ServeError> {
    let t = cx.t;
    let me = rustix::process::getpid().as_raw_nonzero().get();
    let shared = listeners.len() == 1;
    // (pid, worker index, started)
    let mut workers: Vec<(i32, usize, Instant)> = Vec::new();
    let mut failures = 0usize;
    let spawn = |i: usize,
                 workers: &mut Vec<(i32, usize, Instant)>,
                 listeners: &mut Vec<OwnedFd>,
                 sigfd: &mut Option<OwnedFd>,
                 cx: &mut Cx|
     -> Result<(), ServeError> {
        // SAFETY: the server process is single-threaded.
        match unsafe { sys::fork(t) }.map_err(sys_err("fork"))? {
            Some(pid) => {
                workers.push((pid, i, Instant::now()));
                Ok(())
            }
            None => {
                if let Some(s) = sigfd.take() {
                    sys::close(t, s);
                }
                let mine: Vec<OwnedFd> = if shared {
                    std::mem::take(listeners)
                } else {
                    let mut all = std::mem::take(listeners);
                    let keep = all.remove(i);
                    for other in all {
                        sys::close(t, other);
                    }
                    vec![keep]
                };
                if signals::die_with_parent(libc::SIGTERM, me) {
                    signals::exit_now(0);
                }
                let code = match sys::signalfd(t, &sys::server_sigset()) {
                    Ok(s) => match worker(cx, mine, s, shared && n > 1, pause, max_conns) {
                        Ok(()) => 0,
                        Err(e) => {
                            crate::trace::write_all_stdout(
                                format!("sockscope lab serve: worker {i}: {e}\n").as_bytes(),
                            );
                            1
                        }
                    },
                    Err(_) => 1,
                };
                signals::exit_now(code);
            }
        }
    };
    let mut sig = Some(sigfd);
    for i in 0..n {
        spawn(i, &mut workers, &mut listeners, &mut sig, cx)?;
    }
    let sigfd = sig
        .take()
        .ok_or(ServeError::Config("signalfd lost".into()))?;
    let mut stopping = false;
    let mut pids: Vec<i32> = workers.iter().map(|w| w.0).collect();
    let mut kill_at: Option<Instant> = None;
    loop {
        let timeout = kill_at.map_or(-1, |k| ms_until(Instant::now(), k));
        match sys::poll_in(t, &sigfd, &sigfd, timeout) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(sys_err("poll")(e)),
        }
        let m = sys::read_signals(t, &sigfd);
        if m & signals::stop_bits() != 0 && !stopping {
            stopping = true;
            // The master's copies of the listening sockets go first: the
            // kernel keeps accepting while any process holds one open.
            for l in listeners.drain(..) {
                sys::close(t, l);
            }
            for w in &workers {
                let _ = sys::kill(t, w.0, libc::SIGTERM);
            }
            kill_at = Some(Instant::now() + cx.grace + Duration::from_secs(1));
        }
        if m & signals::bit(libc::SIGCHLD) != 0 {
            for (pid, how) in reap_all(t, &mut pids) {
                let Some(pos) = workers.iter().position(|w| w.0 == pid) else {
                    continue;
                };
                let (_, i, started) = workers.remove(pos);
                if stopping {
                    continue;
                }
                if how != Exit::Code(0) && started.elapsed() < Duration::from_secs(1) {
                    failures += 1;
                }
                if failures > 3 * n {
                    for w in &workers {
                        let _ = sys::kill(t, w.0, libc::SIGTERM);
                    }
                    while !workers.is_empty() {
                        if let Ok(Some((p, _))) = sys::reap(t, true) {
                            workers.retain(|w| w.0 != p);
                        } else {
                            break;
                        }
                    }
                    return Err(ServeError::Workers(failures));
                }
                let mut none = None;
                spawn(i, &mut workers, &mut listeners, &mut none, cx)?;
                pids = workers.iter().map(|w| w.0).collect();
            }
        }
        if stopping && workers.is_empty() {
            break;
        }
        if kill_at.is_some_and(|k| Instant::now() >= k) {
            kill_and_reap(t, &mut pids);
            break;
        }
    }
    for l in listeners {
        sys::close(t, l);
    }
    Ok(())
}

const SIG_TAG: u64 = u64::MAX;
const LISTENER_TAG: u64 = u64::MAX - 1 - MAX_WORKERS as u64;

/// One epoll loop: accept on `listeners`, serve every connection
/// nonblocking, stop on a signal once the requests in flight are answered.
/// `shared`: the listener is shared with other workers (prefork): every
/// worker is woken for a new connection (no EPOLLEXCLUSIVE, which would wake
/// the same worker every time), so each takes only a few per wakeup and
/// leaves the rest to the others.
fn worker(
    cx: &mut Cx,
    mut listeners: Vec<OwnedFd>,
    sigfd: OwnedFd,
    shared: bool,
    pause: bool,
    max_conns: usize,
) -> Result<(), ServeError> {
    let t = cx.t;
    let ep = sys::epoll_create(t).map_err(sys_err("epoll_create1"))?;
    if !pause {
        for (i, l) in listeners.iter().enumerate() {
            sys::epoll_add(t, &ep, l, LISTENER_TAG + i as u64, EventFlags::IN)
                .map_err(sys_err("epoll_ctl"))?;
        }
    }
    sys::epoll_add(t, &ep, &sigfd, SIG_TAG, EventFlags::IN).map_err(sys_err("epoll_ctl"))?;
    let batch = if shared { 4 } else { 64 };
    let conn_flags = EventFlags::IN | EventFlags::OUT | EventFlags::RDHUP | EventFlags::ET;
    let mut slots: Vec<Conn> = Vec::new();
    let mut active = 0usize;
    let mut events = Vec::with_capacity(256);
    let mut last_sweep = Instant::now();
    loop {
        let timeout = if active > 0 { 1000 } else { -1 };
        match sys::epoll_wait(t, &ep, &mut events, timeout) {
            Ok(_) => {}
            Err(Errno::INTR) => continue,
            Err(e) => return Err(sys_err("epoll_wait")(e)),
        }
        cx.now = Instant::now();
        for ev in events.iter() {
            let flags = ev.flags;
            let data = ev.data.u64();
            if data == SIG_TAG {
                if sys::read_signals(t, &sigfd) & signals::stop_bits() != 0 && !cx.stopping {
                    cx.begin_stop();
                    for l in listeners.drain(..) {
                        let _ = sys::epoll_del(t, &ep, &l);
                        sys::close(t, l);
                    }
                    for c in slots.iter_mut() {
                        if !c.is_open() {
                            continue;
                        }
                        let close =
                            c.on_stop(cx) || (!c.is_writing() && c.drive(cx) == Want::Close);
                        if close {
                            c.close(cx);
                            active -= 1;
                        }
                    }
                }
                continue;
            }
            if data >= LISTENER_TAG {
                let Some(l) = listeners.get((data - LISTENER_TAG) as usize) else {
                    continue;
                };
                for _ in 0..batch {
                    match sys::accept(t, l, true) {
                        Ok(fd) => {
                            if active >= max_conns {
                                conn::reject_busy(cx, fd);
                                continue;
                            }
                            let _ = sys::setsockopt(t, &fd, Opt::NoDelay);
                            let n = fd.as_raw_fd() as usize;
                            if sys::epoll_add(t, &ep, &fd, n as u64, conn_flags).is_err() {
                                sys::close(t, fd);
                                continue;
                            }
                            if slots.len() <= n {
                                slots.resize_with(n + 1, Conn::new);
                            }
                            slots[n].open(fd, cx);
                            active += 1;
                        }
                        Err(Errno::INTR | Errno::CONNABORTED) => continue,
                        Err(e) => {
                            accept_trouble(e);
                            break;
                        }
                    }
                }
                continue;
            }
            let Some(c) = slots.get_mut(data as usize) else {
                continue;
            };
            if !c.is_open() {
                continue;
            }
            if flags
                .intersects(EventFlags::IN | EventFlags::RDHUP | EventFlags::HUP | EventFlags::ERR)
            {
                c.readable = true;
            }
            if flags.intersects(EventFlags::RDHUP | EventFlags::HUP | EventFlags::ERR) {
                c.hup = true;
            }
            if c.drive(cx) == Want::Close {
                c.close(cx);
                active -= 1;
            }
        }
        if cx.now.duration_since(last_sweep) >= Duration::from_secs(1) {
            last_sweep = cx.now;
            for c in slots.iter_mut() {
                if c.is_open() && cx.now >= c.deadline {
                    c.time_out(cx);
                    c.close(cx);
                    active -= 1;
                }
            }
        }
        if cx.stopping && active == 0 {
            break;
        }
    }
    for l in listeners {
        sys::close(t, l);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names() {
        assert_eq!(Model::Prefork(2).name(), "prefork 2");
        assert_eq!(Model::Reuseport(4).name(), "reuseport 4");
        assert_eq!(Model::Single.name(), "single");
    }

    #[test]
    fn bad_worker_counts_are_config_errors() {
        let cfg = Config {
            model: Model::Prefork(0),
            ..Config::default()
        };
        let e = serve(&cfg, |_| {}).unwrap_err();
        assert_eq!(
            sockscope::error::Classify::kind(&e),
            sockscope::error::Kind::Usage,
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "prefork 0: the number of workers must be 1 to 256"
        );
    }
}
