//! The scenarios of `sockscope lab run`: each builds one situation with real
//! sockets in a private network namespace, records what sockscope observes
//! and checks what the kernel is expected to hold.
//!
//! A scenario is a function over a [`Ctx`]: it opens a step, does something,
//! observes, checks. Steps are handed to the caller as soon as the next one
//! starts, so the narration streams while the scenario runs. A scenario
//! returns an error only when it could not build the situation at all (no
//! privilege, no nft); a kernel that behaves differently shows as failed
//! checks in the [`Report`].

mod abort;
mod backlog;
mod closewait;
mod finclose;
mod forkserver;
mod handshake;
mod mss;
mod nagle;
mod refused;
mod reuseport;
mod synqueue;
mod timewait;
mod unix;
mod zerowindow;

use crate::netns::{self, NetnsError};
use crate::observe::ObserveError;
use crate::report::{Check, Report, Step};
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::io::Errno;
use rustix::net::{self, AddressFamily, SocketFlags, SocketType};
use sockscope::model::{Socket, State};
use std::fmt::Display;
use std::net::{SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

/// A scenario's name, one-line summary and body.
pub struct ScenarioInfo {
    pub name: &'static str,
    pub summary: &'static str,
    run: fn(&mut Ctx<'_>) -> Result<(), LabError>,
}

/// Every scenario, in the order `lab list` shows them.
pub static SCENARIOS: &[ScenarioInfo] = &[
    ScenarioInfo {
        name: "handshake",
        summary: "listen, connect, accept: the listener and the new connected socket share the local port; the 4-tuple; the new fd",
        run: handshake::run,
    },
    ScenarioInfo {
        name: "backlog",
        summary: "listen(N) and never accept: the accept queue holds N+1, later clients stay in SYN-SENT, ListenOverflows/ListenDrops rise",
        run: backlog::run,
    },
    ScenarioInfo {
        name: "syn-queue",
        summary: "half-open connections (final ACK dropped by nftables) wait in SYN-RECV; what tcp_syncookies does when that queue overflows",
        run: synqueue::run,
    },
    ScenarioInfo {
        name: "reuseport",
        summary: "K listeners with SO_REUSEPORT on one port and C connections: how the kernel spread them",
        run: reuseport::run,
    },
    ScenarioInfo {
        name: "time-wait",
        summary: "the side that closes first ends in TIME-WAIT, the other does not (whichever is client or server)",
        run: timewait::run,
    },
    ScenarioInfo {
        name: "close-wait",
        summary: "the peer closed, the application never calls close(): CLOSE-WAIT stays, with the process holding it named",
        run: closewait::run,
    },
    ScenarioInfo {
        name: "refused",
        summary: "connect to a port nobody listens on: the kernel answers RST, the client gets ECONNREFUSED",
        run: refused::run,
    },
    ScenarioInfo {
        name: "fork-server",
        summary: "seed 004's server: after fork() the listening socket is held by the parent and by every child",
        run: forkserver::run,
    },
    ScenarioInfo {
        name: "unix",
        summary: "a UNIX socket file, its inode and the socket's own inode, connected peers naming each other",
        run: unix::run,
    },
    ScenarioInfo {
        name: "fin-close",
        summary: "seed 002: the 4-way teardown on the wire (FIN, ACK, FIN, ACK, in order); the first closer ends in TIME-WAIT",
        run: finclose::run,
    },
    ScenarioInfo {
        name: "abort",
        summary: "seed 002: SO_LINGER {on, 0} then close(): an RST instead of a FIN on the wire, ECONNRESET for the peer, no TIME-WAIT",
        run: abort::run,
    },
    ScenarioInfo {
        name: "nagle",
        summary: "seed 002: small writes coalesce into one segment while data is unacked (Nagle); with TCP_NODELAY one segment per write",
        run: nagle::run,
    },
    ScenarioInfo {
        name: "zero-window",
        summary: "seed 002: a receiver that never reads: its window shrinks to 0 on the wire, the sender's Send-Q grows, persist timer and zero-window probes",
        run: zerowindow::run,
    },
    ScenarioInfo {
        name: "mss",
        summary: "seed 002: two namespaces over a veth with MTU 1500: MSS 1460 in the SYNs, a 3000-byte write in segments of at most the MSS (TSO and timestamps shown)",
        run: mss::run,
    },
];

/// Look a scenario up by name.
pub fn find(name: &str) -> Option<&'static ScenarioInfo> {
    SCENARIOS.iter().find(|s| s.name == name)
}

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("no scenario named '{0}'; `sockscope lab list` shows them")]
    NoSuchScenario(String),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Observe(#[from] ObserveError),
    #[error("{what}: {source}")]
    Sys {
        what: String,
        source: std::io::Error,
    },
    #[error(
        "{tool} is needed for this scenario ({why}): install it (Debian: apt-get install {package})"
    )]
    MissingTool {
        tool: &'static str,
        package: &'static str,
        why: &'static str,
    },
    #[error("{0}")]
    Other(String),
}

impl sockscope::error::Classify for LabError {
    fn kind(&self) -> sockscope::error::Kind {
        use sockscope::error::Kind;
        match self {
            LabError::Netns(e) => e.kind(),
            LabError::Sys { source, .. } => Kind::of_io(source),
            LabError::MissingTool { .. } => Kind::KernelFeature,
            _ => Kind::System,
        }
    }
}

/// Turn an errno into a [`LabError::Sys`] naming the call.
pub fn sys(what: impl Into<String>) -> impl FnOnce(Errno) -> LabError {
    let what = what.into();
    move |e| LabError::Sys {
        what,
        source: e.into(),
    }
}

/// The scenario's running state: finished steps, the step being built,
/// and who to hand finished steps to.
pub struct Ctx<'a> {
    steps: Vec<Step>,
    cur: Option<Step>,
    sink: &'a mut (dyn FnMut(&Step) + Send),
    /// This process's pid (owner of the scenario's sockets).
    pub me: u32,
}

impl<'a> Ctx<'a> {
    fn new(sink: &'a mut (dyn FnMut(&Step) + Send)) -> Ctx<'a> {
        Ctx {
            steps: Vec::new(),
            cur: None,
            sink,
            me: std::process::id(),
        }
    }

    fn flush(&mut self) {
        if let Some(s) = self.cur.take() {
            (self.sink)(&s);
            self.steps.push(s);
        }
    }

    /// Start a new step (the previous one is handed out).
    pub fn step(&mut self, did: impl Into<String>) {
        self.flush();
        self.cur = Some(Step {
            n: self.steps.len() + 1,
            did: did.into(),
            ..Default::default()
        });
    }

    fn cur(&mut self) -> &mut Step {
        if self.cur.is_none() {
            self.step("(setup)");
        }
        self.cur.get_or_insert_with(Step::default)
    }

    pub fn note(&mut self, n: impl Into<String>) {
        self.cur().notes.push(n.into());
    }

    /// Record sockets as observed in this step.
    pub fn show<'s>(&mut self, socks: impl IntoIterator<Item = &'s Socket>) {
        let v: Vec<Socket> = socks.into_iter().cloned().collect();
        self.cur().sockets.extend(v);
    }

    pub fn counter(&mut self, name: &str, v: i64) {
        self.cur().counters.insert(name.into(), v);
    }

    pub fn sysctl(&mut self, name: &str, v: impl Into<String>) {
        self.cur().sysctls.insert(name.into(), v.into());
    }

    /// Record a check; returns whether it passed.
    pub fn check(
        &mut self,
        what: impl Into<String>,
        expected: impl Into<String>,
        observed: impl Into<String>,
        ok: bool,
    ) -> bool {
        self.cur().checks.push(Check {
            what: what.into(),
            expected: expected.into(),
            observed: observed.into(),
            ok,
        });
        ok
    }

    /// Check that `observed` prints the same as `expected`.
    pub fn check_eq(
        &mut self,
        what: impl Into<String>,
        expected: impl Display,
        observed: impl Display,
    ) -> bool {
        let (e, o) = (expected.to_string(), observed.to_string());
        let ok = e == o;
        self.check(what, e, o, ok)
    }

    /// Check `observed >= min`.
    pub fn check_at_least(&mut self, what: impl Into<String>, min: i64, observed: i64) -> bool {
        self.check(
            what,
            format!("at least {min}"),
            observed.to_string(),
            observed >= min,
        )
    }

    fn finish(mut self, info: &ScenarioInfo, netns_inode: Option<u64>) -> Report {
        self.flush();
        let total = self.steps.iter().map(|s| s.checks.len()).sum();
        let failed = self
            .steps
            .iter()
            .flat_map(|s| &s.checks)
            .filter(|c| !c.ok)
            .count();
        Report {
            scenario: info.name.into(),
            summary: info.summary.into(),
            kernel: kernel_release(),
            netns_inode,
            steps: self.steps,
            checks_total: total,
            checks_failed: failed,
            ok: failed == 0 && total > 0,
        }
    }
}

/// `uname -r`.
pub fn kernel_release() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

/// Run the scenario `name` in a fresh private network namespace. Each step
/// is passed to `sink` as soon as it is complete.
pub fn run(name: &str, sink: &mut (dyn FnMut(&Step) + Send)) -> Result<Report, LabError> {
    let info = find(name).ok_or_else(|| LabError::NoSuchScenario(name.into()))?;
    netns::run_private(|| {
        let mut cx = Ctx::new(sink);
        let ino = netns::current_inode();
        (info.run)(&mut cx)?;
        Ok(cx.finish(info, ino))
    })?
}

// ---- Socket helpers shared by the scenarios (rustix, no std::net). ----

pub const LOOPBACK: [u8; 4] = [127, 0, 0, 1];

pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(LOOPBACK.into(), port))
}

/// socket + [SO_REUSEPORT] + bind(127.0.0.1:port) + listen(backlog).
pub fn tcp_listen(port: u16, backlog: i32, reuseport: bool) -> Result<OwnedFd, LabError> {
    let fd = net::socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(sys("socket"))?;
    if reuseport {
        net::sockopt::set_socket_reuseport(&fd, true).map_err(sys("setsockopt(SO_REUSEPORT)"))?;
    }
    net::bind(&fd, &addr(port)).map_err(sys(format!("bind(127.0.0.1:{port})")))?;
    net::listen(&fd, backlog).map_err(sys("listen"))?;
    Ok(fd)
}

/// A client socket connecting to 127.0.0.1:port. Blocking: returns once
/// connected (or refused). Nonblocking: returns at once (EINPROGRESS).
pub fn tcp_connect(port: u16, nonblock: bool) -> Result<(OwnedFd, Result<(), Errno>), LabError> {
    let mut flags = SocketFlags::CLOEXEC;
    if nonblock {
        flags |= SocketFlags::NONBLOCK;
    }
    let fd = net::socket_with(AddressFamily::INET, SocketType::STREAM, flags, None)
        .map_err(sys("socket"))?;
    let r = match net::connect(&fd, &addr(port)) {
        Err(Errno::INPROGRESS) if nonblock => Ok(()),
        r => r,
    };
    Ok((fd, r))
}

/// accept4 on a listener (blocking unless it is nonblocking).
pub fn accept(l: impl AsFd) -> Result<OwnedFd, LabError> {
    net::accept_with(l, SocketFlags::CLOEXEC).map_err(sys("accept4"))
}

/// The local port of a socket.
pub fn local_port(fd: impl AsFd) -> u16 {
    net::getsockname(fd)
        .ok()
        .and_then(|a| SocketAddr::try_from(a).ok())
        .map_or(0, |a| a.port())
}

/// The socket inode of a descriptor (the N of `socket:[N]`).
pub fn inode(fd: impl AsFd) -> u64 {
    rustix::fs::fstat(fd).map_or(0, |s| s.st_ino)
}

pub fn raw(fd: &OwnedFd) -> i32 {
    fd.as_raw_fd()
}

/// Wait up to `ms` for a socket to become writable (a nonblocking connect
/// completed). True if it did.
pub fn writable_within(fd: impl AsFd, ms: i32) -> bool {
    let mut p = [libc::pollfd {
        fd: fd.as_fd().as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    }];
    // SAFETY: one valid pollfd.
    let rc = unsafe { libc::poll(p.as_mut_ptr(), 1, ms) };
    rc == 1 && p[0].revents & libc::POLLOUT != 0 && p[0].revents & libc::POLLERR == 0
}

/// Poll `f` every 10 ms for up to `ms`; the last value it returned.
pub fn wait_until<T>(
    ms: u64,
    mut f: impl FnMut() -> Result<(T, bool), LabError>,
) -> Result<T, LabError> {
    let end = Instant::now() + Duration::from_millis(ms);
    loop {
        let (v, done) = f()?;
        if done || Instant::now() >= end {
            return Ok(v);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Poll the TCP table (cheaply, without the owner scan) until `done` holds
/// or `ms` pass, then read it once more with owners.
pub fn tcp_when(ms: u64, done: impl Fn(&[Socket]) -> bool) -> Result<Vec<Socket>, LabError> {
    wait_until(ms, || {
        let s = crate::observe::tcp_quick()?;
        Ok(((), done(&s)))
    })?;
    Ok(crate::observe::tcp()?)
}

/// Sockets whose local port is `port` (the server side of a connection, or
/// the listener).
pub fn on_local_port(socks: &[Socket], port: u16) -> Vec<&Socket> {
    socks
        .iter()
        .filter(|s| s.local.port() == Some(port))
        .collect()
}

pub fn in_state(socks: &[Socket], st: State) -> Vec<&Socket> {
    socks.iter().filter(|s| s.state == st).collect()
}

/// The one socket whose local and peer ports are these.
pub fn by_ports(socks: &[Socket], local: u16, peer: u16) -> Option<&Socket> {
    socks
        .iter()
        .find(|s| s.local.port() == Some(local) && s.peer.port() == Some(peer))
}

/// `pid N fd M` for each owner, sorted, joined.
pub fn owner_pairs(s: &Socket) -> String {
    let mut v: Vec<(u32, u32)> = s.owners.iter().map(|o| (o.pid, o.fd)).collect();
    v.sort();
    let v: Vec<String> = v.iter().map(|(p, f)| format!("pid {p} fd {f}")).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

pub fn q(v: Option<u32>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}
