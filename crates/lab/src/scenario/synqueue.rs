//! `syn-queue`: half-open connections and SYN cookies.
//!
//! An nftables rule inside the namespace drops every pure ACK sent to the
//! server ports, so the clients' final handshake ACK never arrives. Each
//! client believes it is connected (it got the SYN-ACK); the server keeps a
//! request socket in SYN-RECV and retransmits its SYN-ACK. Those request
//! sockets are the SYN queue. On current kernels its limit is the listen
//! backlog (`inet_csk_reqsk_queue_is_full`: queue length > backlog).
//!
//! When it is full: with net.ipv4.tcp_syncookies=0 a new SYN is dropped
//! (TcpExt.TCPReqQFullDrop) and that client stays in SYN-SENT; with
//! tcp_syncookies=1 the kernel answers with a SYN-ACK whose sequence number
//! encodes the connection (a cookie, TcpExt.SyncookiesSent) and keeps no
//! state at all. When that client's ACK finally gets through, the cookie is
//! checked (TcpExt.SyncookiesRecv) and the connection is created directly
//! in the accept queue: here that ACK rides on the client's first data
//! segment, which the rule lets through (it is not a pure ACK). Both
//! sysctls, and the nftables table, belong to the namespace and vanish
//! with it.

use super::*;
use sockscope::model::State;
use std::io::Write as _;
use std::process::{Command, Stdio};

const TABLE: &str = "sockscope_lab";
const PORTS: [u16; 3] = [5000, 5001, 5002];
const BACKLOG: i32 = 4;
const CLIENTS: usize = 8;

/// Run `nft -f -` with `script` in this thread's namespace.
fn nft(script: &str) -> Result<(), LabError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                LabError::MissingTool {
                    tool: "nft",
                    package: "nftables",
                    why: "an nftables rule in the namespace drops the clients' final ACK",
                }
            } else {
                LabError::Sys {
                    what: "running nft".into(),
                    source: e,
                }
            }
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(script.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| LabError::Sys {
        what: "running nft".into(),
        source: e,
    })?;
    if !out.status.success() {
        return Err(LabError::Other(format!(
            "nft refused the rule: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn syn_recv_on(socks: &[Socket], port: u16) -> Vec<&Socket> {
    socks
        .iter()
        .filter(|s| s.local.port() == Some(port) && s.state == State::SynRecv)
        .collect()
}

fn clients_of(socks: &[Socket], port: u16, st: State) -> usize {
    socks
        .iter()
        .filter(|s| s.peer.port() == Some(port) && s.state == st)
        .count()
}

fn connect_many(port: u16, n: usize, wait_ms: i32) -> Result<Vec<(OwnedFd, bool)>, LabError> {
    let mut v = Vec::new();
    for _ in 0..n {
        let (c, r) = tcp_connect(port, true)?;
        r.map_err(sys("connect"))?;
        let done = writable_within(&c, wait_ms);
        v.push((c, done));
    }
    Ok(v)
}

pub fn run(cx: &mut Ctx<'_>) -> Result<(), LabError> {
    cx.step("nftables in the namespace: drop every pure ACK sent to ports 5000-5002");
    let ports = PORTS.map(|p| p.to_string()).join(", ");
    nft(&format!(
        "table inet {TABLE} {{\n  chain out {{\n    type filter hook output priority 0; policy accept;\n    \
tcp dport {{ {ports} }} tcp flags & (fin|syn|rst|psh|ack) == ack counter drop\n  }}\n}}\n"
    ))?;
    cx.note(format!(
        "table inet {TABLE}: tcp dport {{ {ports} }} tcp flags & (fin|syn|rst|psh|ack) == ack drop"
    ));
    for k in [
        "net.ipv4.tcp_syncookies",
        "net.ipv4.tcp_max_syn_backlog",
        "net.ipv4.tcp_synack_retries",
        "net.core.somaxconn",
    ] {
        let v = crate::observe::sysctl(k)?;
        cx.sysctl(k, v);
    }

    cx.step(format!(
        "listen(127.0.0.1:{}, backlog 8); 3 clients connect (blocking)",
        PORTS[0]
    ));
    let l0 = tcp_listen(PORTS[0], 8, false)?;
    let mut c0 = Vec::new();
    for _ in 0..3 {
        let (c, r) = tcp_connect(PORTS[0], false)?;
        r.map_err(sys("connect"))?;
        c0.push(c);
    }
    cx.note("each connect() returned 0: the client got the SYN-ACK and sent its ACK, which nftables dropped");
    let socks = tcp_when(3000, |s| syn_recv_on(s, PORTS[0]).len() == 3)?;
    let sr = syn_recv_on(&socks, PORTS[0]);
    cx.show(
        in_state(&socks, State::Listen)
            .into_iter()
            .chain(sr.iter().copied()),
    );
    cx.check_eq("SYN-RECV request sockets on the listener", 3, sr.len());
    cx.check_eq(
        "clients that think they are connected (ESTAB)",
        3,
        clients_of(&socks, PORTS[0], State::Established),
    );
    cx.check_eq(
        "accept queue (nothing completed the handshake)",
        0,
        in_state(&socks, State::Listen)
            .first()
            .map_or("-".into(), |s| q(s.recv_q)),
    );
    cx.check_eq(
        "request sockets have no file (inode 0) and no owner",
        "inode 0, no owner",
        if sr.iter().all(|s| s.inode == 0 && s.owners.is_empty()) {
            "inode 0, no owner"
        } else {
            "some have an inode or owner"
        },
    );
    drop((c0, l0));

    // The SYN queue overflows, without syncookies.
    cx.step(format!(
        "sysctl tcp_syncookies=0; listen(127.0.0.1:{}, backlog {BACKLOG}); {CLIENTS} clients connect",
        PORTS[1]
    ));
    crate::observe::set_sysctl("net.ipv4.tcp_syncookies", "0")?;
    crate::observe::set_sysctl("net.ipv4.tcp_max_syn_backlog", "128")?;
    cx.sysctl("net.ipv4.tcp_syncookies", "0");
    cx.sysctl("net.ipv4.tcp_max_syn_backlog", "128");
    let l1 = tcp_listen(PORTS[1], BACKLOG, false)?;
    let before = crate::observe::netstat()?;
    let c1 = connect_many(PORTS[1], CLIENTS, 200)?;
    let socks = crate::observe::tcp()?;
    let d = crate::observe::netstat()?.delta(&before);
    let sr = syn_recv_on(&socks, PORTS[1]);
    let queued = sr.len();
    cx.show(sr.iter().copied());
    let limit = BACKLOG as usize + 1;
    cx.note(
        "the limit is the listen backlog (queue full when longer than it); tcp_max_syn_backlog (128 here) \
would only drop earlier, with syncookies off, once the queue nears it"
    );
    cx.note(format!(
        "{queued} request sockets; the rest of the {CLIENTS} SYNs were dropped, those clients retransmit from SYN-SENT"
    ));
    cx.check_eq(
        format!("SYN queue length when full (backlog {BACKLOG})"),
        limit,
        queued,
    );
    cx.check_eq(
        "clients left in SYN-SENT",
        CLIENTS - limit,
        clients_of(&socks, PORTS[1], State::SynSent),
    );
    cx.check_eq(
        "clients whose connect() completed",
        limit,
        c1.iter().filter(|c| c.1).count(),
    );
    let v = d.get("TcpExt.TCPReqQFullDrop").unwrap_or(0);
    cx.counter("TcpExt.TCPReqQFullDrop", v);
    cx.check_at_least(
        "TcpExt.TCPReqQFullDrop rose (SYNs dropped, queue full)",
        (CLIENTS - limit) as i64,
        v,
    );
    drop((c1, l1));

    // The same with syncookies.
    cx.step(format!(
        "sysctl tcp_syncookies=1; listen(127.0.0.1:{}, backlog {BACKLOG}); {CLIENTS} clients connect",
        PORTS[2]
    ));
    crate::observe::set_sysctl("net.ipv4.tcp_syncookies", "1")?;
    cx.sysctl("net.ipv4.tcp_syncookies", "1");
    let l2 = tcp_listen(PORTS[2], BACKLOG, false)?;
    let before = crate::observe::netstat()?;
    let c2 = connect_many(PORTS[2], CLIENTS, 200)?;
    let socks = crate::observe::tcp()?;
    let d = crate::observe::netstat()?.delta(&before);
    let sr = syn_recv_on(&socks, PORTS[2]);
    let with_state: Vec<u16> = sr.iter().filter_map(|s| s.peer.port()).collect();
    let cookie_clients: Vec<&OwnedFd> = c2
        .iter()
        .map(|c| &c.0)
        .filter(|c| !with_state.contains(&local_port(c)))
        .collect();
    cx.show(sr.iter().copied());
    cx.note(format!(
        "{} request sockets; {} clients got a cookie SYN-ACK instead: connected on their side, nothing on the server",
        sr.len(),
        cookie_clients.len()
    ));
    cx.check_eq(
        format!("SYN queue length (backlog {BACKLOG})"),
        limit,
        sr.len(),
    );
    cx.check_eq(
        "clients whose connect() completed (all: cookies answer every SYN)",
        CLIENTS,
        c2.iter().filter(|c| c.1).count(),
    );
    let sent = d.get("TcpExt.SyncookiesSent").unwrap_or(0);
    cx.counter("TcpExt.SyncookiesSent", sent);
    cx.check_eq(
        "TcpExt.SyncookiesSent (one per SYN beyond the queue)",
        CLIENTS - limit,
        sent,
    );
    cx.check_eq(
        "server-side sockets for the cookie clients",
        0,
        cookie_clients
            .iter()
            .filter(|c| by_ports(&socks, PORTS[2], local_port(c)).is_some())
            .count(),
    );

    cx.step(
        "each cookie client sends one byte: a data segment is not a pure ACK, so it passes the rule, and its ACK field carries the cookie",
    );
    let before = crate::observe::netstat()?;
    for c in &cookie_clients {
        let _ = rustix::net::send(c, b"x", rustix::net::SendFlags::NOSIGNAL);
    }
    let ports: Vec<u16> = cookie_clients.iter().map(local_port).collect();
    let socks = tcp_when(3000, |s| {
        ports
            .iter()
            .filter(|p| by_ports(s, PORTS[2], **p).is_some_and(|s| s.state == State::Established))
            .count()
            == ports.len()
    })?;
    let d = crate::observe::netstat()?.delta(&before);
    let created: Vec<&Socket> = ports
        .iter()
        .filter_map(|p| by_ports(&socks, PORTS[2], *p))
        .collect();
    cx.show(created.iter().copied());
    let recv = d.get("TcpExt.SyncookiesRecv").unwrap_or(0);
    cx.counter("TcpExt.SyncookiesRecv", recv);
    cx.check_eq(
        "TcpExt.SyncookiesRecv (valid cookies checked)",
        ports.len(),
        recv,
    );
    cx.check_eq(
        "cookie clients now ESTAB on the server, waiting in the accept queue",
        ports.len(),
        created
            .iter()
            .filter(|s| s.state == State::Established && s.inode == 0)
            .count(),
    );
    drop((c2, l2));
    Ok(())
}
