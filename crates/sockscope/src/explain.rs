//! Explain: the chain from a port to its process, and listener health.
//!
//! The seeds walk it by hand: port 8080 is `1F90` in /proc/net/tcp, the row
//! names an inode, `/proc/PID/fd/N -> socket:[INODE]` names the process,
//! fdinfo tells how it was opened, and for a listener the accept queue and
//! SYN queue tell how it copes. This module holds the pure parts of that
//! walk: parsing targets, decoding a /proc row field by field, and relating
//! a listener to its half-open and accepted connections and reuseport
//! siblings. Reading the kernel stays in `source`.

use crate::model::{Endpoint, Owner, Proto, Socket, State};
use crate::model::{FdInfo, ProcessInfo};
use crate::source::Kind;
use crate::source::procnet::{self, InetRow, UnixRow};
use serde::Serialize;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

/// What `sockscope who` was asked about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// `:8080`, `8080`, `8080/udp`, `:8080/tcp`
    Port { port: u16, proto: Option<String> },
    /// `127.0.0.1:8080`, `[::1]:22`, `[::1]:53/udp`
    Addr {
        addr: IpAddr,
        port: u16,
        proto: Option<String>,
    },
    /// `inode:35587`
    Inode { inode: u64 },
    /// `1234/3`: fd 3 of process 1234
    PidFd { pid: u32, fd: u32 },
    /// `/run/x.sock` or `@abstract`
    UnixPath { path: String },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "'{input}' is not a target: {why}\n  targets: :PORT  ADDR:PORT  [ADDR6]:PORT  PORT/udp  inode:N  PID/FD  /path/of/unix.sock  @abstract"
)]
pub struct TargetError {
    pub input: String,
    pub why: String,
}

fn parse_port(s: &str, input: &str) -> Result<u16, TargetError> {
    match s.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(p as u16),
        Ok(p) => Err(TargetError {
            input: input.into(),
            why: format!("port {p} is out of range (1-65535)"),
        }),
        Err(_) => Err(TargetError {
            input: input.into(),
            why: format!("'{s}' is not a port number"),
        }),
    }
}

const PROTOS: &[&str] = &["tcp", "udp", "udplite", "raw"];

/// Parse a `who` target.
pub fn parse_target(input: &str) -> Result<Target, TargetError> {
    let err = |why: &str| TargetError {
        input: input.into(),
        why: why.into(),
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("it is empty"));
    }
    if s.starts_with('/') || s.starts_with('@') {
        return Ok(Target::UnixPath { path: s.into() });
    }
    if let Some(n) = s.strip_prefix("inode:") {
        return n
            .parse()
            .map(|inode| Target::Inode { inode })
            .map_err(|_| err(&format!("'{n}' is not an inode number")));
    }
    // Split off "/proto" or "/fd".
    let (main, suffix) = match s.rsplit_once('/') {
        Some((m, x)) => (m, Some(x)),
        None => (s, None),
    };
    let mut proto = None;
    if let Some(x) = suffix {
        if let Ok(fd) = x.parse::<u32>() {
            let pid = main
                .parse::<u32>()
                .map_err(|_| err(&format!("'{main}' before '/{x}' is not a pid")))?;
            return Ok(Target::PidFd { pid, fd });
        }
        let lower = x.to_ascii_lowercase();
        if !PROTOS.contains(&lower.as_str()) {
            return Err(err(&format!(
                "'/{x}' is neither a protocol (tcp, udp, udplite, raw) nor an fd number"
            )));
        }
        proto = Some(lower);
    }
    if let Some(p) = main.strip_prefix(':') {
        return Ok(Target::Port {
            port: parse_port(p, input)?,
            proto,
        });
    }
    if main.bytes().all(|c| c.is_ascii_digit()) {
        return Ok(Target::Port {
            port: parse_port(main, input)?,
            proto,
        });
    }
    let (a, p) = if let Some(rest) = main.strip_prefix('[') {
        let (a, p) = rest
            .split_once("]:")
            .ok_or_else(|| err("an IPv6 address needs brackets and a port: [::1]:8080"))?;
        (a, p)
    } else {
        main.rsplit_once(':')
            .ok_or_else(|| err("an address needs a port: 127.0.0.1:8080"))?
    };
    let addr: IpAddr = a.parse().map_err(|_| {
        err(&format!(
            "'{a}' is not an IP address (host names are not resolved)"
        ))
    })?;
    Ok(Target::Addr {
        addr,
        port: parse_port(p, input)?,
        proto,
    })
}

impl Target {
    /// The socket kinds to read for this target.
    pub fn kinds(&self) -> Vec<Kind> {
        let by_name = |p: &Option<String>| match p.as_deref() {
            Some("tcp") => vec![Kind::Tcp],
            Some("udp") => vec![Kind::Udp],
            Some("udplite") => vec![Kind::Udplite],
            Some("raw") => vec![Kind::Raw],
            _ => vec![Kind::Tcp, Kind::Udp, Kind::Raw],
        };
        match self {
            Target::Port { proto, .. } | Target::Addr { proto, .. } => by_name(proto),
            Target::UnixPath { .. } => vec![Kind::Unix],
            Target::Inode { .. } | Target::PidFd { .. } => {
                vec![Kind::Tcp, Kind::Udp, Kind::Raw, Kind::Unix]
            }
        }
    }

    /// Does `s` match? (`PidFd` is resolved to an inode by the caller.)
    pub fn matches(&self, s: &Socket) -> bool {
        match self {
            Target::Port { port, .. } => s.local.port() == Some(*port),
            Target::Addr { addr, port, .. } => {
                s.local.port() == Some(*port)
                    && s.local
                        .ip()
                        .is_some_and(|a| same_ip(a, *addr) || a.is_unspecified())
            }
            Target::Inode { inode } => s.inode == *inode && *inode != 0,
            Target::PidFd { .. } => false,
            Target::UnixPath { path } => {
                matches!(&s.local, Endpoint::Unix { path: Some(p), .. } if p == path)
            }
        }
    }
}

/// Equal, counting an IPv4 address and its IPv4-mapped IPv6 form as one.
pub fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    let canon = |x: IpAddr| match x {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(x),
        v4 => v4,
    };
    canon(a) == canon(b)
}

/// An address as /proc/net prints it: the bytes in memory order read as
/// host-order 32-bit words, each as %08X.
pub fn proc_hex_addr(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => format!("{:08X}", u32::from_ne_bytes(a.octets())),
        IpAddr::V6(a) => a
            .octets()
            .chunks(4)
            .map(|c| format!("{:08X}", u32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
    }
}

/// One field of a /proc/net row: its name in the header, the text, and
/// what it means.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcField {
    pub name: &'static str,
    pub raw: String,
    pub meaning: String,
}

/// A socket's own line in /proc/net/*, verbatim and decoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcLine {
    pub file: String,
    pub header: String,
    pub line: String,
    pub fields: Vec<ProcField>,
}

fn tcp_state_name(st: u8) -> &'static str {
    State::from_kernel(st).map(State::ss_label).unwrap_or("?")
}

fn timer_name(tr: u8) -> &'static str {
    match tr {
        0 => "no timer pending",
        1 => "retransmit timer",
        2 => "keepalive timer",
        3 => "TIME-WAIT timer",
        4 => "zero-window probe timer",
        _ => "unknown timer",
    }
}

/// Decode an inet row field by field.
pub fn explain_inet_row(row: &InetRow, proto: Proto) -> Vec<ProcField> {
    let tok: Vec<&str> = row.raw_line.split_whitespace().collect();
    let t = |i: usize| tok.get(i).copied().unwrap_or("").to_string();
    let listen = row.st == State::Listen as u8 && proto == Proto::Tcp;
    let (txrx, trwhen) = (t(4), t(5));
    let (tx, rx) = txrx.split_once(':').unwrap_or(("", ""));
    let (tr, when) = trwhen.split_once(':').unwrap_or(("", ""));
    let mut f = vec![
        ProcField {
            name: "sl",
            raw: t(0),
            meaning: if proto == Proto::Tcp {
                "slot: the row's position in the kernel's walk of its hash tables".into()
            } else {
                "slot: the hash bucket the socket sits in".into()
            },
        },
        ProcField {
            name: "local_address",
            raw: t(1),
            meaning: format!(
                "{} port {} (port in hex; the address is the 32-bit words as stored, printed in host byte order)",
                row.local.ip(),
                row.local.port()
            ),
        },
        ProcField {
            name: "rem_address",
            raw: t(2),
            meaning: if row.remote.port() == 0 && row.remote.ip().is_unspecified() {
                "no peer (0 = any)".into()
            } else {
                format!("{} port {}", row.remote.ip(), row.remote.port())
            },
        },
        ProcField {
            name: "st",
            raw: t(3),
            meaning: format!("state {} = {}", row.st, tcp_state_name(row.st)),
        },
        ProcField {
            name: "tx_queue",
            raw: tx.into(),
            meaning: if proto == Proto::Tcp {
                format!("{} bytes sent but not yet acknowledged", row.tx_queue)
            } else {
                format!(
                    "{} bytes of send buffer memory in use (datagrams not yet handed to the device)",
                    row.tx_queue
                )
            },
        },
        ProcField {
            name: "rx_queue",
            raw: rx.into(),
            meaning: if listen {
                format!(
                    "accept queue: {} connection(s) the kernel completed, waiting for accept(); the backlog limit is not in this file",
                    row.rx_queue
                )
            } else if proto == Proto::Tcp {
                format!("{} bytes received but not yet read", row.rx_queue)
            } else {
                format!(
                    "{} bytes of receive buffer memory held by datagrams not yet read (kernel overhead included)",
                    row.rx_queue
                )
            },
        },
        ProcField {
            name: "tr",
            raw: tr.into(),
            meaning: if proto == Proto::Tcp {
                timer_name(row.tr).into()
            } else {
                "always 0: datagram sockets have no timers here".into()
            },
        },
        ProcField {
            name: "tm->when",
            raw: when.into(),
            meaning: format!(
                "{} clock ticks (USER_HZ=100) = {} ms until the timer fires",
                row.tm_when,
                row.expires_ms()
            ),
        },
        ProcField {
            name: "retrnsmt",
            raw: t(6),
            meaning: if proto == Proto::Tcp {
                format!("{} unrecovered retransmit timeouts", row.retrnsmt)
            } else {
                "always 0: only TCP retransmits".into()
            },
        },
        ProcField {
            name: "uid",
            raw: t(7),
            meaning: format!("socket owner uid {}", row.uid),
        },
        ProcField {
            name: "timeout",
            raw: t(8),
            meaning: if proto == Proto::Tcp {
                format!("{} unanswered keepalive / zero-window probes", row.timeout)
            } else {
                "always 0: only TCP probes".into()
            },
        },
        ProcField {
            name: "inode",
            raw: t(9),
            meaning: if row.inode == 0 {
                "0: no socket file (TIME-WAIT, half-open, or not yet accept()ed)".into()
            } else {
                format!(
                    "socket inode: find it as socket:[{}] in /proc/PID/fd",
                    row.inode
                )
            },
        },
    ];
    let rest_names: &[(&str, &str)] = if proto == Proto::Tcp && row.rest.len() >= 7 {
        &[
            ("refcount", "references held on the socket"),
            (
                "pointer",
                "kernel address of struct sock (hashed or zero without privilege)",
            ),
            ("rto", "retransmission timeout, clock ticks"),
            ("ato", "delayed-ACK timeout, clock ticks"),
            (
                "quick/pingpong",
                "(quick-ack count << 1) | interactive mode",
            ),
            ("cwnd", "congestion window, segments"),
            (
                "ssthresh",
                "slow-start threshold, segments (-1: still in initial slow start; for a listener: the TCP Fast Open queue limit)",
            ),
        ]
    } else if row.rest.len() >= 3 {
        &[
            ("ref", "references held on the socket"),
            (
                "pointer",
                "kernel address of struct sock (hashed or zero without privilege)",
            ),
            (
                "drops",
                "datagrams dropped because the receive buffer was full",
            ),
        ]
    } else {
        &[
            ("refcount", "references held on the socket"),
            (
                "pointer",
                "kernel address (hashed or zero without privilege)",
            ),
        ]
    };
    for (i, r) in row.rest.iter().enumerate() {
        let (name, meaning) = rest_names.get(i).copied().unwrap_or(("extra", ""));
        let meaning = match (name, r.parse::<i64>()) {
            ("rto" | "ato", Ok(ticks)) => format!("{meaning} = {} ms", ticks * 10),
            _ => meaning.to_string(),
        };
        f.push(ProcField {
            name,
            raw: r.clone(),
            meaning,
        });
    }
    f
}

/// Decode a /proc/net/unix row field by field.
pub fn explain_unix_row(row: &UnixRow) -> Vec<ProcField> {
    let st = match row.st {
        1 => "SS_UNCONNECTED (or established but without a file)",
        2 => "SS_CONNECTING: established, waiting in a listener's accept queue",
        3 => "SS_CONNECTED",
        4 => "SS_DISCONNECTING",
        _ => "?",
    };
    vec![
        ProcField {
            name: "Num",
            raw: row.num.clone(),
            meaning: "kernel address of the socket (hashed or zero without privilege)".into(),
        },
        ProcField {
            name: "RefCount",
            raw: format!("{:08X}", row.ref_count),
            meaning: format!("{} references", row.ref_count),
        },
        ProcField {
            name: "Protocol",
            raw: format!("{:08X}", row.protocol),
            meaning: "always 0 for UNIX sockets".into(),
        },
        ProcField {
            name: "Flags",
            raw: format!("{:08X}", row.flags),
            meaning: if row.is_listener() {
                "__SO_ACCEPTCON (0x10000): a listening socket".into()
            } else {
                "no flags".into()
            },
        },
        ProcField {
            name: "Type",
            raw: format!("{:04X}", row.sock_type),
            meaning: match row.sock_type {
                1 => "SOCK_STREAM",
                2 => "SOCK_DGRAM",
                5 => "SOCK_SEQPACKET",
                _ => "?",
            }
            .into(),
        },
        ProcField {
            name: "St",
            raw: format!("{:02X}", row.st),
            meaning: st.into(),
        },
        ProcField {
            name: "Inode",
            raw: row.inode.to_string(),
            meaning: format!("socket inode: socket:[{}] in /proc/PID/fd", row.inode),
        },
        ProcField {
            name: "Path",
            raw: row.path.clone().unwrap_or_default(),
            meaning: match &row.path {
                Some(p) if p.starts_with('@') => "abstract name (no file on disk)".into(),
                Some(_) => "the socket file it is bound to".into(),
                None => "unnamed".into(),
            },
        },
    ]
}

/// A socket's row of /proc/net, verbatim and decoded (pure: the row is
/// found by [`procnet::find_row`], which reads the kernel).
pub fn proc_line(found: &procnet::FoundRow) -> ProcLine {
    let file = format!("/proc/net/{}", found.table.file_name());
    match &found.row {
        procnet::Row::Unix(row) => ProcLine {
            file,
            header: found.header.clone(),
            line: row.raw_line.clone(),
            fields: explain_unix_row(row),
        },
        procnet::Row::Inet(row, proto) => ProcLine {
            file,
            header: found.header.clone(),
            line: row.raw_line.clone(),
            fields: explain_inet_row(row, *proto),
        },
    }
}

/// A listener and what hangs off it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ListenerHealth {
    pub listener: Socket,
    /// Connections completed by the kernel, waiting for accept().
    pub accept_queue: Option<u32>,
    /// The backlog given to listen() (after the somaxconn cap).
    pub backlog: Option<u32>,
    /// accept_queue / backlog in percent.
    pub fill_pct: Option<f64>,
    /// The kernel admits one more than the backlog: full when queue > backlog.
    pub full: bool,
    /// Half-open connections (SYN received, SYN-ACK sent, final ACK awaited).
    pub syn_recv: u32,
    /// The half-open connections themselves (request sockets: no inode).
    pub half_open: Vec<Socket>,
    /// Connections on the listener's port that are past the handshake
    /// (accepted or waiting in the queue), each with its own 4-tuple.
    pub children: Vec<Socket>,
    /// Other listeners bound to the same address and port (SO_REUSEPORT).
    pub reuseport_siblings: Vec<Socket>,
}

type Key = (Option<u64>, u16);

fn key(s: &Socket) -> Option<Key> {
    Some((s.netns.as_ref().map(|n| n.inode), s.local.port()?))
}

/// Does a listener bound to `listener` accept connections to `local`?
/// 0.0.0.0 takes IPv4; [::] takes IPv6 and, unless IPV6_V6ONLY, IPv4 too
/// (seen as IPv4-mapped addresses on its sockets).
fn covers(listener: IpAddr, v6only: Option<bool>, local: IpAddr) -> bool {
    if listener.is_unspecified() {
        return match listener {
            IpAddr::V4(_) => local.is_ipv4() || is_mapped(local),
            IpAddr::V6(_) if v6only == Some(true) => local.is_ipv6() && !is_mapped(local),
            IpAddr::V6(_) => true,
        };
    }
    same_ip(listener, local)
}

fn is_mapped(a: IpAddr) -> bool {
    matches!(a, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() && v6 != Ipv6Addr::UNSPECIFIED)
}

/// Relate every TCP listener in `sockets` to its half-open connections,
/// children and reuseport siblings. `sockets` should hold every TCP state
/// of the namespaces concerned.
pub fn listener_health(sockets: &[Socket]) -> Vec<ListenerHealth> {
    let mut by_port: HashMap<Key, Vec<&Socket>> = HashMap::new();
    for s in sockets.iter().filter(|s| s.proto == Proto::Tcp) {
        if let Some(k) = key(s) {
            by_port.entry(k).or_default().push(s);
        }
    }
    let mut out = Vec::new();
    for l in sockets
        .iter()
        .filter(|s| s.proto == Proto::Tcp && s.state == State::Listen)
    {
        let Some(k) = key(l) else { continue };
        let Some(laddr) = l.local.ip() else { continue };
        let same_port = &by_port[&k];
        // When a specific-address listener exists on the port, connections
        // to that address belong to it, not to a wildcard one.
        let specific: Vec<IpAddr> = same_port
            .iter()
            .filter(|s| s.state == State::Listen)
            .filter_map(|s| s.local.ip())
            .filter(|a| !a.is_unspecified())
            .collect();
        // With both 0.0.0.0 and a dual-stack [::] listening, IPv4
        // connections go to 0.0.0.0.
        let v4_wildcard = same_port.iter().any(|s| {
            s.state == State::Listen
                && s.local
                    .ip()
                    .is_some_and(|a| a.is_ipv4() && a.is_unspecified())
        });
        let wildcard_v4_takes =
            |a: IpAddr| laddr.is_ipv6() && v4_wildcard && (a.is_ipv4() || is_mapped(a));
        let mine = |s: &Socket| {
            let Some(a) = s.local.ip() else { return false };
            if laddr.is_unspecified() {
                covers(laddr, l.v6only, a)
                    && !specific.iter().any(|sp| same_ip(*sp, a))
                    && !wildcard_v4_takes(a)
            } else {
                same_ip(laddr, a)
            }
        };
        let half_open: Vec<Socket> = same_port
            .iter()
            .filter(|s| matches!(s.state, State::SynRecv | State::NewSynRecv) && mine(s))
            .map(|s| (*s).clone())
            .collect();
        let syn_recv = half_open.len() as u32;
        let children: Vec<Socket> = same_port
            .iter()
            .filter(|s| {
                !matches!(
                    s.state,
                    State::Listen | State::SynRecv | State::NewSynRecv | State::Close
                ) && mine(s)
            })
            .map(|s| (*s).clone())
            .collect();
        let siblings: Vec<Socket> = same_port
            .iter()
            .filter(|s| {
                s.state == State::Listen
                    && !std::ptr::eq(**s, l)
                    && s.family == l.family
                    && s.local.ip() == Some(laddr)
            })
            .map(|s| (*s).clone())
            .collect();
        let (aq, bl) = (l.recv_q, l.send_q);
        out.push(ListenerHealth {
            listener: l.clone(),
            accept_queue: aq,
            backlog: bl,
            fill_pct: match (aq, bl) {
                (Some(q), Some(b)) if b > 0 => Some(f64::from(q) * 100.0 / f64::from(b)),
                _ => None,
            },
            full: matches!((aq, bl), (Some(q), Some(b)) if q > b),
            syn_recv,
            half_open,
            children,
            reuseport_siblings: siblings,
        });
    }
    out
}

/// One owner of the socket, with everything /proc says about it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OwnerChain {
    pub owner: Owner,
    /// `/proc/PID/fd/N`
    pub fd_path: String,
    /// `socket:[INODE]`
    pub link: String,
    pub fdinfo: Option<FdInfo>,
    pub process: Option<ProcessInfo>,
}

/// The whole chain for one socket.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Chain {
    pub socket: Socket,
    /// The local port as /proc prints it (`1F90` for 8080).
    pub port_hex: Option<String>,
    /// The local address as /proc prints it (`0100007F` for 127.0.0.1).
    pub addr_hex: Option<String>,
    pub proc_line: Option<ProcLine>,
    pub owners: Vec<OwnerChain>,
    pub listener: Option<ListenerHealth>,
    /// For a UNIX socket: the peer socket and its owners.
    pub unix_peer: Option<Socket>,
}

/// Assemble the chain of `s` (one of `all`, the sockets read from
/// `namespaces`): its /proc row read in its namespace, every owner's fd,
/// fdinfo and process, its listener health and, for a UNIX socket, its
/// peer. Used by `who` and by the detail pane of `top`. A process or fd
/// found in `known` (read while the snapshot was taken) is not read again.
pub fn build_chain(
    s: &Socket,
    all: &[Socket],
    health: &[ListenerHealth],
    namespaces: &[crate::source::netns::OpenNetns],
    known: &crate::snapshot::ReadAhead,
) -> Chain {
    let listener = health
        .iter()
        .find(|h| h.listener.inode == s.inode && h.listener.cookie == s.cookie && s.is_listener())
        .cloned();
    build_chain_with(s, all, listener, namespaces, known)
}

/// [`build_chain`] given the listener's health (when `s` is a listener)
/// instead of a list to find it in: a caller that has no other use for
/// it moves it in rather than copying its connections.
pub fn build_chain_with(
    s: &Socket,
    all: &[Socket],
    listener: Option<ListenerHealth>,
    namespaces: &[crate::source::netns::OpenNetns],
    known: &crate::snapshot::ReadAhead,
) -> Chain {
    use crate::source::{netns, process};
    use std::path::Path;
    let ns = namespaces
        .iter()
        .find(|n| s.netns.as_ref().is_none_or(|x| x.inode == n.id.inode));
    let proc_line = ns.and_then(|ns| {
        netns::run_in(ns, || {
            crate::source::procnet::find_row(Path::new("/proc/thread-self/net"), s)
                .map(|row| proc_line(&row))
        })
        .ok()
        .flatten()
    });
    let owner_chain = |o: &crate::model::Owner| {
        let root = Path::new("/proc");
        let entry = match known.fds.get(&(o.pid, o.tid, o.fd)) {
            Some(e) => Some(e.clone()),
            None => process::read_fd_at(root, o.pid, o.tid, o.fd).ok(),
        };
        OwnerChain {
            owner: o.clone(),
            fd_path: o.fd_path(),
            link: entry
                .as_ref()
                .map(|e| e.link.clone())
                .unwrap_or_else(|| format!("socket:[{}]", s.inode)),
            fdinfo: entry.and_then(|e| e.info),
            process: match known.processes.get(&o.pid) {
                Some(p) => Some(p.clone()),
                None => process::read_process(root, o.pid).ok(),
            },
        }
    };
    // Each owner costs ~8 small /proc reads: a listener held by a hundred
    // pre-forked workers is read on two threads (the second half beside
    // the first, in order).
    let owners: Vec<OwnerChain> = if s.owners.len() >= 16 {
        let (a, b) = s.owners.split_at(s.owners.len() / 2);
        std::thread::scope(|sc| {
            let second = sc.spawn(|| b.iter().map(owner_chain).collect::<Vec<_>>());
            let mut v: Vec<OwnerChain> = a.iter().map(owner_chain).collect();
            match second.join() {
                Ok(rest) => v.extend(rest),
                Err(_) => v.extend(b.iter().map(owner_chain)),
            }
            v
        })
    } else {
        s.owners.iter().map(owner_chain).collect()
    };
    let unix_peer = match &s.peer {
        Endpoint::Unix { inode, .. } if *inode != 0 => all
            .iter()
            .find(|p| p.inode == *inode && p.proto.is_unix())
            .cloned(),
        _ => None,
    };
    Chain {
        socket: s.clone(),
        port_hex: s.local.port().map(|p| format!("{p:04X}")),
        addr_hex: s.local.ip().map(proc_hex_addr),
        proc_line,
        owners,
        listener,
        unix_peer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Family, SourceKind};

    #[test]
    fn targets() {
        assert_eq!(
            parse_target(":8080").unwrap(),
            Target::Port {
                port: 8080,
                proto: None
            }
        );
        assert_eq!(
            parse_target("53/udp").unwrap(),
            Target::Port {
                port: 53,
                proto: Some("udp".into())
            }
        );
        assert_eq!(
            parse_target("[::1]:22").unwrap(),
            Target::Addr {
                addr: "::1".parse().unwrap(),
                port: 22,
                proto: None
            }
        );
        assert_eq!(
            parse_target("127.0.0.1:80/tcp").unwrap(),
            Target::Addr {
                addr: "127.0.0.1".parse().unwrap(),
                port: 80,
                proto: Some("tcp".into())
            }
        );
        assert_eq!(
            parse_target("inode:35587").unwrap(),
            Target::Inode { inode: 35587 }
        );
        assert_eq!(
            parse_target("216/3").unwrap(),
            Target::PidFd { pid: 216, fd: 3 }
        );
        assert_eq!(
            parse_target("/run/a.sock").unwrap(),
            Target::UnixPath {
                path: "/run/a.sock".into()
            }
        );
        for bad in [
            "", ":0", ":70000", "inode:x", "abc/3", "80/sctp", "host:80", "::1:22", "1.2.3.4",
        ] {
            let e = parse_target(bad).unwrap_err();
            assert!(e.to_string().contains("targets:"), "{bad}: {e}");
        }
        assert!(
            parse_target(":70000")
                .unwrap_err()
                .why
                .contains("out of range")
        );
    }

    #[test]
    fn proc_hex_like_the_seed() {
        // Seed 000: 00000000:1F90 is 0.0.0.0:8080; on little endian
        // 127.0.0.1 prints as 0100007F.
        assert_eq!(format!("{:04X}", 8080), "1F90");
        assert_eq!(proc_hex_addr("0.0.0.0".parse().unwrap()), "00000000");
        if cfg!(target_endian = "little") {
            assert_eq!(proc_hex_addr("127.0.0.1".parse().unwrap()), "0100007F");
            assert_eq!(
                proc_hex_addr("::1".parse().unwrap()),
                "00000000000000000000000001000000"
            );
        }
    }

    fn tcp(state: State, local: &str, peer: &str) -> Socket {
        let ep = |s: &str| {
            let sa: std::net::SocketAddr = s.parse().unwrap();
            Endpoint::Inet {
                addr: sa.ip(),
                port: sa.port(),
            }
        };
        let mut s = Socket::new(
            Proto::Tcp,
            if local.starts_with('[') {
                Family::Inet6
            } else {
                Family::Inet
            },
            state,
            ep(local),
            ep(peer),
            SourceKind::Netlink,
        );
        s.recv_q = Some(0);
        s.send_q = Some(0);
        s
    }

    #[test]
    fn listener_children_half_open_and_siblings() {
        let mut l = tcp(State::Listen, "0.0.0.0:80", "0.0.0.0:0");
        l.recv_q = Some(6);
        l.send_q = Some(5);
        l.inode = 1;
        let mut l2 = l.clone();
        l2.inode = 2;
        let other = tcp(State::Listen, "127.0.0.1:81", "0.0.0.0:0");
        let v = vec![
            l,
            l2,
            other,
            tcp(State::Established, "127.0.0.1:80", "127.0.0.1:5000"),
            tcp(State::Established, "127.0.0.1:5000", "127.0.0.1:80"), // the client end
            tcp(State::SynRecv, "127.0.0.1:80", "127.0.0.1:5001"),
            tcp(State::TimeWait, "127.0.0.1:80", "127.0.0.1:5002"),
            tcp(State::Established, "127.0.0.1:81", "127.0.0.1:5003"),
        ];
        let h = listener_health(&v);
        assert_eq!(h.len(), 3);
        assert_eq!(h[0].accept_queue, Some(6));
        assert!(h[0].full, "6 in a backlog of 5 is the kernel's N+1: full");
        assert_eq!(h[0].fill_pct, Some(120.0));
        assert_eq!(h[0].syn_recv, 1);
        assert_eq!(h[0].children.len(), 2, "established + time-wait on :80");
        assert_eq!(h[0].reuseport_siblings.len(), 1);
        assert_eq!(h[0].reuseport_siblings[0].inode, 2);
        assert_eq!(h[2].children.len(), 1);
        assert_eq!(h[2].syn_recv, 0);
        assert!(h[2].reuseport_siblings.is_empty());
    }

    #[test]
    fn wildcard_yields_to_specific_listener() {
        let v = vec![
            tcp(State::Listen, "0.0.0.0:80", "0.0.0.0:0"),
            tcp(State::Listen, "127.0.0.1:80", "0.0.0.0:0"),
            tcp(State::Established, "127.0.0.1:80", "127.0.0.1:5000"),
            tcp(State::Established, "10.0.0.1:80", "10.0.0.2:5000"),
        ];
        let h = listener_health(&v);
        assert_eq!(h[0].children.len(), 1);
        assert_eq!(h[0].children[0].local.ip().unwrap().to_string(), "10.0.0.1");
        assert_eq!(h[1].children.len(), 1);
        assert!(h[0].reuseport_siblings.is_empty(), "different addresses");
    }

    #[test]
    fn v6only_wildcard_is_not_credited_with_ipv4() {
        // nginx's default pair: 0.0.0.0:80 and [::]:80 with IPV6_V6ONLY.
        let v4 = tcp(State::Listen, "0.0.0.0:80", "0.0.0.0:0");
        let mut v6 = tcp(State::Listen, "[::]:80", "[::]:0");
        v6.v6only = Some(true);
        let v = vec![
            v4,
            v6.clone(),
            tcp(State::Established, "127.0.0.1:80", "127.0.0.1:5000"),
            tcp(State::Established, "[::1]:80", "[::1]:5001"),
        ];
        let h = listener_health(&v);
        assert_eq!(h[0].children.len(), 1);
        assert!(h[0].children[0].local.ip().unwrap().is_ipv4());
        assert_eq!(h[1].children.len(), 1);
        assert!(h[1].children[0].local.ip().unwrap().is_ipv6());
        // A dual-stack [::] alone takes both, the IPv4 one as mapped.
        v6.v6only = Some(false);
        let v = vec![
            v6,
            tcp(
                State::Established,
                "[::ffff:127.0.0.1]:80",
                "[::ffff:127.0.0.1]:5000",
            ),
            tcp(State::Established, "[::1]:80", "[::1]:5001"),
        ];
        assert_eq!(listener_health(&v)[0].children.len(), 2);
    }

    #[test]
    fn udp_rows_get_udp_meanings() {
        let line = "  345: 0100007F:0035 00000000:0000 07 00000000:00000340 00:00000000 00000000     0        0 4242 2 0000000000000000 0";
        let row = procnet::parse_inet_line(line).unwrap();
        let f = explain_inet_row(&row, Proto::Udp);
        let get = |n: &str| f.iter().find(|x| x.name == n).unwrap();
        assert!(get("rx_queue").meaning.contains("datagrams"));
        assert!(get("retrnsmt").meaning.contains("only TCP"));
        assert_eq!(get("drops").raw, "0");
    }

    #[test]
    fn explains_a_real_listen_row() {
        let line = "   2: 00000000:1F90 00000000:0000 0A 00000000:00000003 00:00000000 00000000     0        0 1200452 1 0000000002730145 100 0 0 10 0";
        let row = procnet::parse_inet_line(line).unwrap();
        let f = explain_inet_row(&row, Proto::Tcp);
        let get = |n: &str| f.iter().find(|x| x.name == n).unwrap();
        assert!(
            get("local_address")
                .meaning
                .starts_with("0.0.0.0 port 8080")
        );
        assert_eq!(get("st").meaning, "state 10 = LISTEN");
        assert!(get("rx_queue").meaning.starts_with("accept queue: 3"));
        assert_eq!(get("inode").raw, "1200452");
        assert_eq!(get("cwnd").raw, "10");
        assert_eq!(f.last().unwrap().name, "ssthresh");
    }

    /// A port's snapshot reads its owners' processes and its listener's
    /// fds while the owner walk runs; the chain built from them is the
    /// chain built by reading /proc afresh.
    #[test]
    fn read_ahead_chain_is_the_fresh_chain() {
        use crate::source::netns::{self, NetnsTarget};
        use crate::source::{Kind, Request};
        if !crate::root_or_skip("explain::tests::read_ahead_chain_is_the_fresh_chain") {
            return;
        }
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let again = l.try_clone().unwrap();
        let port = l.local_addr().unwrap().port();
        let c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let namespaces = netns::open(&NetnsTarget::Current).unwrap();
        let req = Request::all_states(&[Kind::Tcp]);
        let snap =
            crate::snapshot::snapshot_port(&namespaces, &req, false, true, false, Some(port))
                .unwrap();
        let me = std::process::id();
        let fd_of = |f: &dyn std::os::fd::AsRawFd| f.as_raw_fd() as u32;
        let owners_via_bpf = snap.owners.as_ref().is_some_and(|o| o.via_bpf);
        // Without the BPF walk (no BTF, say) nothing is read ahead.
        if owners_via_bpf {
            assert!(
                snap.read_ahead.processes.contains_key(&me),
                "{:?}",
                snap.read_ahead
            );
            for fd in [fd_of(&l), fd_of(&again)] {
                assert!(
                    snap.read_ahead.fds.contains_key(&(me, None, fd)),
                    "listener fd {fd} read ahead: {:?}",
                    snap.read_ahead.fds.keys()
                );
            }
            // The client's end is not on the port; the accepted end (not
            // accepted yet: no fd) neither: only listener fds are read.
            assert!(!snap.read_ahead.fds.contains_key(&(me, None, fd_of(&c))));
        }
        let listener = snap
            .sockets
            .iter()
            .find(|s| s.is_listener() && s.local.port() == Some(port))
            .expect("the listener");
        let health = listener_health(&snap.sockets);
        let ahead = build_chain(
            listener,
            &snap.sockets,
            &health,
            &namespaces,
            &snap.read_ahead,
        );
        let fresh = build_chain(
            listener,
            &snap.sockets,
            &health,
            &namespaces,
            &crate::snapshot::ReadAhead::default(),
        );
        let view = |c: &Chain| {
            c.owners
                .iter()
                .map(|o| {
                    let p = o.process.as_ref().expect("our own process is readable");
                    (
                        o.fd_path.clone(),
                        o.link.clone(),
                        o.fdinfo.clone(),
                        (
                            p.pid,
                            p.comm.clone(),
                            p.cmdline.clone(),
                            p.exe.clone(),
                            p.uid,
                        ),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(ahead.owners.len(), 2, "both listener fds");
        assert_eq!(view(&ahead), view(&fresh));
        drop((l, again, c));
    }
}
