//! Trace events as sockscope shows them: one ring buffer record decoded
//! into names and units ([`Event::from_raw`]), plus the events user space
//! adds (TIME-WAIT inferred from a close, and its check against the socket
//! table). JSON field names are stable and documented in the README.
//!
//! Times are nanoseconds since the trace started (`t_ns`); endpoints and
//! states use the same vocabulary as `sockscope ls --json`.

use crate::abi::{self, Kind, OwnerSrc, RawEvent, Sys, body};
use crate::names::{self, Reasons};
use serde::Serialize;
use sockscope::model::{Endpoint, Family, Proto, State};
use std::net::{IpAddr, SocketAddr};

/// One thing that happened, attributed to a connection and a process.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// Nanoseconds since the trace started.
    pub t_ns: u64,
    /// Connection number (`#N` in the timeline); null for a packet that
    /// belongs to no connection sockscope saw.
    pub conn: Option<u64>,
    #[serde(flatten)]
    pub what: What,
    pub proto: Option<Proto>,
    pub family: Option<Family>,
    pub local: Option<Endpoint>,
    pub peer: Option<Endpoint>,
    /// The socket's state when the event happened (after it, for state
    /// changes).
    pub state: Option<State>,
    /// The process the socket belongs to, when known.
    pub pid: Option<u32>,
    pub comm: Option<Comm>,
    /// Its fd for the socket; for a connection not accepted yet, the
    /// listener's fd.
    pub fd: Option<i32>,
    /// How the owner was known: "task" (it made this syscall), "socket"
    /// (an earlier syscall on the socket), "listener" (not accepted yet:
    /// the listener's owner), "snapshot" (fd tables read at start).
    pub owner: Option<&'static str>,
    /// Thread that ran, for syscalls and data.
    pub tid: Option<u32>,
    /// Kernel address of the socket (its identity while it lives), as hex.
    #[serde(serialize_with = "crate::event::hex")]
    pub sk: u64,
    /// Socket cookie (as `ls -e` shows it), when the kernel had made one.
    pub cookie: Option<u64>,
    /// Inode of the socket's network namespace.
    pub netns: u32,
}

/// What happened, by kind (`"kind"` in JSON).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum What {
    /// A TCP state change, as sock:inet_sock_set_state reports it.
    State {
        old_state: State,
        new_state: State,
    },
    /// TIME-WAIT inferred: the kernel reported FIN-WAIT-2 (or CLOSING) ->
    /// CLOSE without a reset, which is where it swaps the socket for a
    /// timewait socket (the tracepoint never reports TIME-WAIT itself).
    TimeWait {
        from_state: State,
    },
    /// The socket table checked for that timewait socket.
    TimeWaitCheck {
        found: bool,
        /// Its state there ("time-wait", or "fin-wait-2" while the peer's
        /// FIN has not arrived).
        table_state: Option<State>,
    },
    Retransmit {
        bytes: u32,
        err: i32,
    },
    /// The kernel sent a SYN-ACK again for a half-open connection.
    RetransmitSynack {},
    ResetSent {
        reason: String,
        reason_code: u32,
        /// True when no socket matched the segment (a closed port).
        no_socket: bool,
    },
    ResetReceived {
        /// What a reset in that state means.
        meaning: &'static str,
    },
    /// The socket was freed (tcp:tcp_destroy_sock): bcc tcplife's totals.
    Destroy {
        /// From its first state change; null when that was before the trace.
        duration_us: Option<u64>,
        bytes_acked: u64,
        bytes_received: u64,
        bytes_sent: u64,
        bytes_retrans: u64,
        retransmits: u32,
        segs_in: u32,
        segs_out: u32,
        srtt_us: u32,
    },
    /// A TCP packet the kernel dropped, with its reason.
    Drop {
        reason: String,
        reason_code: u32,
        bytes: u32,
        tcp_flags: &'static str,
        /// The packet's own direction.
        from: Option<Endpoint>,
        to: Option<Endpoint>,
        /// "in" (toward this connection's socket) or "out" (sent by it),
        /// when the packet matched a connection.
        direction: Option<&'static str>,
    },
    Syscall {
        syscall: &'static str,
        /// The fd argument (the listener's, for accept; the top-level
        /// `fd` is the socket's own, e.g. the new fd accept returned).
        sys_fd: Option<i32>,
        ret: i64,
        errno: Option<&'static str>,
        duration_us: u64,
        /// Boxed, and only when there are any: most syscalls have none,
        /// and events are moved a lot.
        #[serde(skip_serializing_if = "no_args")]
        args: Args,
    },
    /// Data handed to the socket (sock:sock_send_length).
    Send {
        syscall: &'static str,
        /// The fd argument of the syscall.
        sys_fd: Option<i32>,
        /// Bytes taken, or null on error.
        bytes: Option<u32>,
        errno: Option<&'static str>,
    },
    /// A TCP segment at a network device: leaving (net:net_dev_queue,
    /// where tcpdump sees it too) or arriving (net:netif_receive_skb).
    /// `local`/`peer` are the connection's ends in both directions.
    Packet {
        /// "in" (arriving at `local`) or "out" (sent by `local`).
        direction: &'static str,
        /// "SYN|ACK", as the drop events write them (ECE, CWR included).
        tcp_flags: &'static str,
        /// Sequence and acknowledgement numbers as on the wire.
        seq: u32,
        ack: u32,
        /// Relative to the sender's initial sequence number (the first
        /// seen, minus one, when the SYN was not): what tcpdump -S leaves
        /// out and Wireshark shows; `rel_ack` is null without ACK.
        rel_seq: Option<u32>,
        rel_ack: Option<u32>,
        /// TCP payload bytes (a GSO packet counts all of its segments).
        len: u32,
        /// Window field as on the wire (not scaled).
        window: u16,
        #[serde(skip_serializing_if = "Option::is_none")]
        mss: Option<u16>,
        #[serde(skip_serializing_if = "Option::is_none")]
        wscale: Option<u8>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        sack_permitted: bool,
        /// SACK blocks [left, right) relative as `rel_ack` is.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        sack: Vec<[u32; 2]>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ts_val: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ts_ecr: Option<u32>,
        /// Interface index (of the network namespace `netns`).
        ifindex: u32,
        /// CPU that handled it.
        cpu: u32,
        /// It ran in a softirq (the receive path, or a segment the kernel
        /// sent in answer, such as a SYN-ACK): no process was involved.
        softirq: bool,
    },
    /// A wait (select, pselect6, poll, ppoll, epoll_wait, epoll_pwait,
    /// epoll_pwait2) of a process that owns a traced socket: at entry
    /// ("enter": it is about to block) and at exit ("exit", with what it
    /// returned and how long it waited).
    Wait {
        syscall: &'static str,
        phase: &'static str,
        /// exit only
        ret: Option<i64>,
        errno: Option<&'static str>,
        duration_us: Option<u64>,
        /// exit: the CPU that woke it, when a wakeup was seen.
        wake_cpu: Option<u32>,
        /// exit: from the packet that woke it (its arrival at the device)
        /// to the syscall's return: what the application's reaction cost.
        packet_to_return_us: Option<u64>,
        /// nfds / maxevents (enter).
        #[serde(skip_serializing_if = "Option::is_none")]
        nfds: Option<u32>,
    },
    /// The owner blocked in a traced wait was woken (sched:sched_wakeup;
    /// the first wakeup of each wait).
    Wake {
        /// The wait it was blocked in.
        syscall: &'static str,
        /// CPU that ran the wakeup.
        cpu: u32,
        /// The task that woke it, when the wakeup was not a packet's
        /// (e.g. data on another fd, a timer); null in softirq.
        waker_pid: Option<u32>,
        /// A traced packet was being received on that CPU: the wakeup is
        /// its doing. `local`/`peer` are that packet's connection.
        by_packet: bool,
        /// From that packet's arrival at the device to the wakeup.
        packet_to_wake_us: Option<u64>,
    },
    /// Data read from the socket (sock:sock_recv_length); 0 bytes is EOF.
    Recv {
        syscall: &'static str,
        sys_fd: Option<i32>,
        bytes: Option<u32>,
        errno: Option<&'static str>,
        /// recv flags (MSG_PEEK = 2, ...), when not 0.
        #[serde(skip_serializing_if = "Option::is_none")]
        flags: Option<i32>,
    },
}

/// Arguments of a socket syscall, decoded where sockscope read them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SysArgs {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u64>,
    /// bind / connect: the sockaddr passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backlog: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub how: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optval: Option<String>,
}

impl SysArgs {
    pub fn is_empty(&self) -> bool {
        *self == SysArgs::default()
    }
}

fn no_args<T: std::ops::Deref<Target = SysArgs>>(a: &T) -> bool {
    a.is_empty()
}

/// A syscall's arguments: no allocation when there are none (close,
/// accept, fcntl without flags...); reads as an empty [`SysArgs`] then.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Args(Option<Box<SysArgs>>);

static NO_ARGS: SysArgs = SysArgs {
    domain: None,
    r#type: None,
    protocol: None,
    addr: None,
    backlog: None,
    how: None,
    flags: None,
    level: None,
    optname: None,
    optval: None,
};

impl std::ops::Deref for Args {
    type Target = SysArgs;
    fn deref(&self) -> &SysArgs {
        self.0.as_deref().unwrap_or(&NO_ARGS)
    }
}

impl From<SysArgs> for Args {
    fn from(a: SysArgs) -> Args {
        Args((!a.is_empty()).then(|| Box::new(a)))
    }
}

impl Serialize for Args {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

/// A command name as the kernel keeps it (16 bytes, NUL-padded): copied,
/// never allocated, since every event carries one. JSON: a string.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Comm(pub [u8; 16]);

impl Comm {
    /// The name (up to the first NUL; invalid UTF-8 replaced).
    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        let end = self.0.iter().position(|&c| c == 0).unwrap_or(16);
        String::from_utf8_lossy(&self.0[..end])
    }
}

impl From<&str> for Comm {
    fn from(s: &str) -> Comm {
        let mut b = [0u8; 16];
        let mut n = s.len().min(15);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        b[..n].copy_from_slice(&s.as_bytes()[..n]);
        Comm(b)
    }
}

/// For text: the name escaped (a process names itself, with any bytes, so
/// control characters and bytes that are not UTF-8 are made visible). JSON
/// uses `Serialize`, which writes the name itself.
impl std::fmt::Display for Comm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let end = self.0.iter().position(|&c| c == 0).unwrap_or(16);
        f.write_str(&sockscope::escape::escape_bytes(&self.0[..end]))
    }
}

impl std::fmt::Debug for Comm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl Serialize for Comm {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_str())
    }
}

/// A number as "0x..." in JSON.
pub fn hex<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:#x}"))
}

fn state_of(n: u32) -> Option<State> {
    u8::try_from(n).ok().and_then(State::from_kernel)
}

fn endpoint(ip: Option<IpAddr>, port: u16) -> Option<Endpoint> {
    ip.map(|addr| Endpoint::Inet { addr, port })
}

/// The socket address of an endpoint.
pub fn sockaddr(e: &Option<Endpoint>) -> Option<SocketAddr> {
    match e {
        Some(Endpoint::Inet { addr, port }) => Some(SocketAddr::new(*addr, *port)),
        _ => None,
    }
}

/// What a reset received in `state` means to the application.
pub fn reset_meaning(state: Option<State>) -> &'static str {
    match state {
        Some(State::SynSent) => {
            "connection refused: nothing listens on that port (connect fails with ECONNREFUSED)"
        }
        Some(State::SynRecv) => "the peer aborted the handshake",
        Some(State::Established | State::CloseWait) => {
            "the peer aborted the connection: reads and writes fail with ECONNRESET"
        }
        Some(State::FinWait1 | State::FinWait2 | State::Closing | State::LastAck) => {
            "the peer aborted while closing"
        }
        _ => "the peer aborted the connection",
    }
}

fn errno(ret: i64) -> Option<&'static str> {
    if ret < 0 {
        names::errno_name(-ret)
    } else {
        None
    }
}

impl Event {
    /// Decode a record; `start_ns` is the monotonic time the trace started.
    pub fn from_raw(r: &RawEvent, reasons: &Reasons, start_ns: u64) -> Event {
        Event::decode(r, reasons, start_ns, true)
    }

    /// [`Event::from_raw`] without what only an event's text needs (a
    /// syscall's decoded arguments), for a trace that shows no events:
    /// connections are joined and counted the same.
    pub fn from_raw_lean(r: &RawEvent, reasons: &Reasons, start_ns: u64) -> Event {
        Event::decode(r, reasons, start_ns, false)
    }

    fn decode(r: &RawEvent, reasons: &Reasons, start_ns: u64, detail: bool) -> Event {
        let packet = r.flags & abi::FLAG_PACKET_TUPLE != 0;
        let src = endpoint(r.local_ip(), r.sport);
        let dst = endpoint(r.peer_ip(), r.dport);
        let state = state_of(u32::from(r.state));
        let what = match r.kind {
            Kind::State => What::State {
                old_state: state_of(r.b_u32(body::STATE_OLD)).unwrap_or(State::Close),
                new_state: state_of(r.b_u32(body::STATE_NEW)).unwrap_or(State::Close),
            },
            Kind::Retransmit => What::Retransmit {
                bytes: r.b_u32(body::RETRANS_LEN),
                err: r.b_i32(body::RETRANS_ERR),
            },
            Kind::RetransmitSynack => What::RetransmitSynack {},
            Kind::ResetSent => {
                let code = r.b_u32(body::RESET_REASON);
                What::ResetSent {
                    reason: reasons.reset_name(code),
                    reason_code: code,
                    no_socket: r.sk == 0,
                }
            }
            Kind::ResetReceived => What::ResetReceived {
                meaning: reset_meaning(state_of(r.b_u32(body::RESET_STATE))),
            },
            Kind::Destroy => {
                // From the kernel's births when it keeps them; else 0
                // and the tracker times the socket.
                let born = r.b_u64(body::DESTROY_BORN);
                What::Destroy {
                    duration_us: (born != 0 && born <= r.ts_ns).then(|| (r.ts_ns - born) / 1000),
                    bytes_acked: r.b_u64(body::DESTROY_ACKED),
                    bytes_received: r.b_u64(body::DESTROY_RECEIVED),
                    bytes_sent: r.b_u64(body::DESTROY_SENT),
                    bytes_retrans: r.b_u64(body::DESTROY_RETRANS_BYTES),
                    retransmits: r.b_u32(body::DESTROY_RETRANS),
                    segs_in: r.b_u32(body::DESTROY_SEGS_IN),
                    segs_out: r.b_u32(body::DESTROY_SEGS_OUT),
                    srtt_us: r.b_u32(body::DESTROY_SRTT) >> 3,
                }
            }
            Kind::Drop => {
                let code = r.b_u32(body::DROP_REASON);
                What::Drop {
                    reason: reasons.drop_name(code),
                    reason_code: code,
                    bytes: r.b_u32(body::DROP_LEN),
                    tcp_flags: names::tcp_flags(r.body[body::DROP_FLAGS]),
                    from: src.clone(),
                    to: dst.clone(),
                    // Dropped on the receive path by a socket that was
                    // found (a listener, say): it was coming in.
                    direction: (r.body[body::DROP_RX_SK] != 0).then_some("in"),
                }
            }
            Kind::Syscall => syscall(r, detail),
            Kind::Packet => packet_what(r),
            Kind::Wait | Kind::Wake => wait_what(r),
            Kind::Send | Kind::Recv => {
                let sys = Sys::from_u16(r.b_u16(body::IO_SYS));
                let fd = r.b_i32(body::IO_FD);
                let ret = i64::from(r.b_i32(body::IO_RET));
                let fd = (fd >= 0).then_some(fd);
                let bytes = u32::try_from(ret).ok();
                if r.kind == Kind::Send {
                    What::Send {
                        syscall: sys.name(),
                        sys_fd: fd,
                        bytes,
                        errno: errno(ret),
                    }
                } else {
                    let flags = r.b_i32(body::IO_FLAGS);
                    What::Recv {
                        syscall: sys.name(),
                        sys_fd: fd,
                        bytes,
                        errno: errno(ret),
                        flags: (flags != 0).then_some(flags),
                    }
                }
            }
        };
        let owner = match r.owner_src {
            OwnerSrc::None => None,
            OwnerSrc::Task => Some("task"),
            OwnerSrc::Socket => Some("socket"),
            OwnerSrc::Listener => Some("listener"),
            OwnerSrc::Snapshot => Some("snapshot"),
        };
        let has_owner = r.pid != 0 && owner.is_some();
        let (local, peer) = if packet { (None, None) } else { (src, dst) };
        Event {
            t_ns: r.ts_ns.saturating_sub(start_ns),
            conn: None,
            what,
            proto: match r.protocol {
                abi::IPPROTO_TCP => Some(Proto::Tcp),
                abi::IPPROTO_UDP => Some(Proto::Udp),
                _ => None,
            },
            family: match r.family {
                abi::AF_INET => Some(Family::Inet),
                abi::AF_INET6 => Some(Family::Inet6),
                _ => None,
            },
            local,
            peer,
            state,
            pid: has_owner.then_some(r.pid),
            comm: has_owner.then_some(Comm(r.comm)),
            fd: if has_owner && r.fd >= 0 {
                Some(r.fd)
            } else {
                None
            },
            owner: if has_owner { owner } else { None },
            tid: (r.tid != 0).then_some(r.tid),
            sk: r.sk,
            cookie: (r.cookie != 0).then_some(r.cookie),
            netns: r.netns,
        }
    }

    /// An event sockscope inferred rather than read from the kernel: the
    /// TIME-WAIT that follows a FIN-WAIT-2/CLOSING close, and its check in
    /// the socket table. Not counted among the events read.
    pub fn inferred(&self) -> bool {
        matches!(
            self.what,
            What::TimeWait { .. } | What::TimeWaitCheck { .. }
        )
    }

    /// The TCP kind name, as in JSON.
    pub fn kind(&self) -> &'static str {
        match &self.what {
            What::State { .. } => "state",
            What::TimeWait { .. } => "time_wait",
            What::TimeWaitCheck { .. } => "time_wait_check",
            What::Retransmit { .. } => "retransmit",
            What::RetransmitSynack {} => "retransmit_synack",
            What::ResetSent { .. } => "reset_sent",
            What::ResetReceived { .. } => "reset_received",
            What::Destroy { .. } => "destroy",
            What::Drop { .. } => "drop",
            What::Syscall { .. } => "syscall",
            What::Send { .. } => "send",
            What::Recv { .. } => "recv",
            What::Packet { .. } => "packet",
            What::Wait { .. } => "wait",
            What::Wake { .. } => "wake",
        }
    }

    /// One line saying what happened (no time, no process).
    pub fn describe(&self) -> String {
        let ep = |e: &Option<Endpoint>| match sockaddr(e) {
            Some(a) => a.to_string(),
            None => "?".into(),
        };
        match &self.what {
            What::State {
                old_state,
                new_state,
            } => {
                let mut s = format!("{} → {}", label(*old_state), label(*new_state));
                if let Some(h) = state_hint(*old_state, *new_state) {
                    s.push_str("  ");
                    s.push_str(h);
                }
                s
            }
            What::TimeWait { from_state } => format!(
                "{} → TIME-WAIT  (inferred: the kernel swapped the socket for a timewait socket; \
                 the tracepoint reports it as CLOSE)",
                label(*from_state)
            ),
            What::TimeWaitCheck { found, table_state } => match (found, table_state) {
                (true, Some(s)) => {
                    format!("socket table: timewait socket present, state {}", label(*s))
                }
                _ => {
                    "socket table: no timewait socket for this connection (it was not kept)".into()
                }
            },
            What::Retransmit { bytes, err } => {
                let what = match self.state {
                    Some(State::SynSent) => "SYN retransmitted".to_string(),
                    _ if *bytes == 0 => "retransmit (no data: SYN/FIN or probe)".to_string(),
                    _ => format!("retransmit of {bytes} bytes"),
                };
                if *err != 0 {
                    format!("{what} (failed: {})", names::errno_text(i64::from(*err)))
                } else {
                    what
                }
            }
            What::RetransmitSynack {} => {
                "SYN-ACK retransmitted (half-open: the final ACK has not arrived)".into()
            }
            What::ResetSent {
                reason, no_socket, ..
            } => {
                if *no_socket {
                    format!(
                        "RST sent: no socket for this segment ({reason}), to {}",
                        ep(&self.peer)
                    )
                } else {
                    format!("RST sent ({reason})")
                }
            }
            What::ResetReceived { meaning } => format!("RST received: {meaning}"),
            What::Destroy {
                duration_us,
                bytes_acked,
                bytes_received,
                retransmits,
                srtt_us,
                ..
            } => {
                let d = match duration_us {
                    Some(us) => format!("after {}", fmt_us(*us)),
                    None => "(born before the trace)".into(),
                };
                format!(
                    "socket freed {d}: {} sent and acked, {} received, {retransmits} retransmits, srtt {}",
                    fmt_bytes(*bytes_acked),
                    fmt_bytes(*bytes_received),
                    fmt_us(u64::from(*srtt_us))
                )
            }
            What::Drop {
                reason,
                bytes,
                tcp_flags,
                from,
                to,
                ..
            } => {
                let flags = if tcp_flags.is_empty() {
                    String::new()
                } else {
                    format!(" [{tcp_flags}]")
                };
                format!(
                    "packet dropped: {reason}  {} → {}{flags} {bytes} bytes",
                    ep(from),
                    ep(to)
                )
            }
            What::Syscall {
                syscall,
                sys_fd,
                ret,
                errno,
                args,
                ..
            } => {
                let mut a: Vec<String> = Vec::new();
                if let Some(fd) = sys_fd {
                    a.push(fd.to_string());
                }
                if let Some(d) = &args.domain {
                    a.push(d.clone());
                }
                if let Some(t) = &args.r#type {
                    a.push(t.clone());
                }
                if let Some(p) = args.protocol {
                    a.push(p.to_string());
                }
                if let Some(e) = &args.addr {
                    a.push(ep(&Some(e.clone())));
                }
                if let Some(b) = args.backlog {
                    a.push(b.to_string());
                }
                if let Some(h) = &args.how {
                    a.push(h.clone());
                }
                if let (Some(l), Some(o)) = (&args.level, &args.optname) {
                    a.push(l.clone());
                    a.push(o.clone());
                    a.push(args.optval.clone().unwrap_or_else(|| "…".into()));
                }
                if let Some(f) = &args.flags {
                    a.push(f.clone());
                }
                let r = match errno {
                    Some(e) => format!("-{e}"),
                    None => ret.to_string(),
                };
                let mut s = format!("{syscall}({}) = {r}", a.join(", "));
                if *syscall == "accept" || *syscall == "accept4" {
                    if *ret >= 0 {
                        s.push_str(&format!(
                            "  new fd for {} ← {}",
                            ep(&self.local),
                            ep(&self.peer)
                        ));
                    }
                } else if *syscall == "connect" {
                    s.push_str(&format!("  {} → {}", ep(&self.local), ep(&self.peer)));
                }
                s
            }
            What::Send {
                syscall,
                sys_fd: fd,
                bytes,
                errno,
            } => io_text(syscall, *fd, *bytes, *errno, "sent"),
            What::Packet { .. } => packet_text(&self.what),
            What::Wait {
                syscall,
                phase,
                ret,
                errno,
                duration_us,
                wake_cpu,
                packet_to_return_us,
                ..
            } => {
                if *phase == "enter" {
                    format!("{syscall}() waits")
                } else {
                    let r = match (errno, ret) {
                        (Some(e), _) => format!("-{e}"),
                        (None, Some(r)) => r.to_string(),
                        (None, None) => "?".into(),
                    };
                    let mut t = format!(
                        "{syscall}() = {r} after {}",
                        fmt_us(duration_us.unwrap_or(0))
                    );
                    if let Some(c) = wake_cpu {
                        t.push_str(&format!(", woken on cpu {c}"));
                    }
                    if let Some(l) = packet_to_return_us {
                        t.push_str(&format!(", {} after the packet", fmt_us(*l)));
                    }
                    t
                }
            }
            What::Wake {
                syscall,
                cpu,
                waker_pid,
                by_packet,
                packet_to_wake_us,
            } => {
                let by = match (by_packet, waker_pid) {
                    (true, _) => format!(
                        "by a packet ({} after it arrived, softirq)",
                        fmt_us(packet_to_wake_us.unwrap_or(0))
                    ),
                    (false, Some(p)) => format!("by pid {p}"),
                    (false, None) => "in softirq".into(),
                };
                format!("wakeup in {syscall}() on cpu {cpu} {by}")
            }
            What::Recv {
                syscall,
                sys_fd: fd,
                bytes,
                errno,
                ..
            } => {
                if *bytes == Some(0) {
                    format!(
                        "{syscall}({}) = 0  end of stream: the peer closed its side",
                        fd_text(*fd)
                    )
                } else {
                    io_text(syscall, *fd, *bytes, *errno, "received")
                }
            }
        }
    }
}

fn packet_what(r: &RawEvent) -> What {
    let b = &r.body;
    let opts = b[body::PKT_OPTS];
    let has = |bit: u8| opts & bit != 0;
    let n = usize::from(b[body::PKT_SACK_N].min(4));
    let sack = if n == 0 {
        Vec::new()
    } else {
        (0..n)
            .map(|i| {
                [
                    r.b_u32(body::PKT_SACK + 8 * i),
                    r.b_u32(body::PKT_SACK + 8 * i + 4),
                ]
            })
            .collect()
    };
    What::Packet {
        direction: if b[body::PKT_DIR] == abi::PKT_IN {
            "in"
        } else {
            "out"
        },
        tcp_flags: names::tcp_flags(b[body::PKT_FLAGS]),
        seq: r.b_u32(body::PKT_SEQ),
        ack: r.b_u32(body::PKT_ACK),
        rel_seq: None,
        rel_ack: None,
        len: r.b_u32(body::PKT_LEN),
        window: r.b_u16(body::PKT_WINDOW),
        mss: has(abi::PKT_MSS).then(|| r.b_u16(body::PKT_MSS)),
        wscale: has(abi::PKT_WSCALE).then_some(b[body::PKT_WSCALE]),
        sack_permitted: has(abi::PKT_SACK_PERM),
        sack,
        ts_val: has(abi::PKT_TS).then(|| r.b_u32(body::PKT_TSVAL)),
        ts_ecr: has(abi::PKT_TS).then(|| r.b_u32(body::PKT_TSECR)),
        ifindex: r.b_u32(body::PKT_IFINDEX),
        cpu: r.cpu,
        softirq: b[body::PKT_SOFTIRQ] != 0,
    }
}

fn wait_what(r: &RawEvent) -> What {
    let b = &r.body;
    let sys = Sys::from_u16(r.b_u16(body::WAIT_SYS)).name();
    let cause_ns = r.b_u64(body::WAIT_CAUSE_NS);
    let by_packet = b[body::WAIT_CAUSE] != 0 && cause_ns != 0;
    let cpu = r.b_u32(body::WAIT_WAKE_CPU);
    let wake_ns = r.b_u64(body::WAIT_WAKE_NS);
    if r.kind == Kind::Wake {
        let waker = r.b_i32(body::WAIT_WAKER);
        return What::Wake {
            syscall: sys,
            cpu,
            waker_pid: (!by_packet && waker > 0).then_some(waker as u32),
            by_packet,
            packet_to_wake_us: by_packet.then(|| wake_ns.saturating_sub(cause_ns) / 1000),
        };
    }
    let exit = b[body::WAIT_PHASE] == abi::WAIT_EXIT;
    let ret = r.b_i64(body::WAIT_RET);
    What::Wait {
        syscall: sys,
        phase: if exit { "exit" } else { "enter" },
        ret: exit.then_some(ret),
        errno: if exit { errno(ret) } else { None },
        duration_us: exit.then(|| r.b_u64(body::WAIT_DUR) / 1000),
        wake_cpu: (exit && wake_ns != 0).then_some(cpu),
        packet_to_return_us: (exit && by_packet).then(|| r.ts_ns.saturating_sub(cause_ns) / 1000),
        nfds: (!exit).then(|| r.b_u32(body::WAIT_ARG)),
    }
}

/// A packet's one-line text: direction, flags, seq/ack (relative when
/// known), length, window and options.
fn packet_text(w: &What) -> String {
    let What::Packet {
        direction,
        tcp_flags,
        seq,
        ack,
        rel_seq,
        rel_ack,
        len,
        window,
        mss,
        wscale,
        sack_permitted,
        sack,
        softirq,
        ..
    } = w
    else {
        return String::new();
    };
    let arrow = if *direction == "in" {
        "← in "
    } else {
        "→ out"
    };
    let mut s = format!("{arrow} [{tcp_flags}] seq {}", rel_seq.unwrap_or(*seq));
    if tcp_flags.contains("ACK") {
        s.push_str(&format!(" ack {}", rel_ack.unwrap_or(*ack)));
    }
    s.push_str(&format!(" win {window} len {len}"));
    if let Some(m) = mss {
        s.push_str(&format!(" mss {m}"));
    }
    if let Some(w) = wscale {
        s.push_str(&format!(" wscale {w}"));
    }
    if *sack_permitted {
        s.push_str(" sackOK");
    }
    for [l, r] in sack {
        s.push_str(&format!(" sack {l}-{r}"));
    }
    if *softirq {
        s.push_str("  (softirq)");
    }
    s
}

fn fd_text(fd: Option<i32>) -> String {
    fd.map_or_else(|| "?".into(), |f| f.to_string())
}

fn io_text(
    sys: &str,
    fd: Option<i32>,
    bytes: Option<u32>,
    errno: Option<&str>,
    verb: &str,
) -> String {
    match (bytes, errno) {
        (Some(b), _) => format!(
            "{sys}({}) = {b}  {} {verb}",
            fd_text(fd),
            fmt_bytes(u64::from(b))
        ),
        (None, Some(e)) => format!("{sys}({}) = -{e}", fd_text(fd)),
        (None, None) => format!("{sys}({}) failed", fd_text(fd)),
    }
}

/// A TCP state as the kernel's headers spell it (ESTABLISHED, CLOSE...),
/// for timelines and diagrams.
pub fn label(s: State) -> &'static str {
    match s {
        State::Established => "ESTABLISHED",
        State::Close => "CLOSE",
        s => s.ss_label(),
    }
}

/// What a transition means, in the seed's words.
pub fn state_hint(old: State, new: State) -> Option<&'static str> {
    use State::*;
    Some(match (old, new) {
        (Close, Listen) => "listening",
        (Close, SynSent) => "SYN sent",
        (SynSent, Established) => "SYN-ACK received, ACK sent: connected",
        (Listen, SynRecv) => {
            "SYN, SYN-ACK, ACK: the kernel finished the handshake without the application"
        }
        (SynRecv, Established) => "queued for accept()",
        (Established, FinWait1) => "FIN sent (close or shutdown)",
        (FinWait1, FinWait2) => "ACK of our FIN received",
        (FinWait1, Closing) => "FIN received while ours is unacknowledged (simultaneous close)",
        (Established, CloseWait) => "FIN received: the peer closed its side",
        (CloseWait, LastAck) => "FIN sent",
        (LastAck, Close) => "ACK of our FIN received",
        (FinWait2, Close) | (Closing, Close) => "timewait socket takes over",
        (SynSent, Close) => "connect failed",
        (Listen, Close) => "listener closed",
        _ => return None,
    })
}

/// "1.5 ms", "250 µs", "2.00 s".
pub fn fmt_us(us: u64) -> String {
    if us < 1000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else {
        format!("{:.2} s", us as f64 / 1e6)
    }
}

/// "6 B", "1.5 KiB", "3.2 MiB": the library's one byte formatter.
pub use sockscope::view::units::bytes as fmt_bytes;

fn syscall(r: &RawEvent, detail: bool) -> What {
    let sys = Sys::from_u16(r.b_u16(body::SYS_SYS));
    let ret = r.b_i64(body::SYS_RET);
    let fd = r.b_i32(body::SYS_FD);
    let arg = |i: usize| r.b_u64(body::SYS_ARG + 8 * i);
    let mut args = SysArgs::default();
    let sa_family = r.body[body::SYS_ADDR_FAMILY];
    match sys {
        _ if !detail => {}
        Sys::Socket => {
            args.domain = Some(names::family_name(arg(0)));
            args.r#type = Some(names::socket_type_name(arg(1)));
            args.protocol = Some(arg(2));
        }
        Sys::Bind | Sys::Connect => {
            let a = r.b_arr16(body::SYS_ADDR);
            args.addr = endpoint(abi::ip_of(sa_family, &a), r.b_u16(body::SYS_ADDR_PORT));
        }
        Sys::Listen => args.backlog = Some(arg(0) as i32 as i64),
        Sys::Shutdown => args.how = Some(names::shutdown_name(arg(0))),
        Sys::Accept4 => args.flags = Some(names::accept_flags_name(arg(0))),
        Sys::Fcntl => {
            args.optname = Some("F_SETFL".into());
            args.flags = Some(if arg(1) & 0o4000 != 0 {
                "O_NONBLOCK".into()
            } else {
                "~O_NONBLOCK".into()
            });
        }
        Sys::Setsockopt => {
            let optlen = r.b_u16(body::SYS_ADDR_PORT);
            args.level = Some(names::sockopt_level_name(arg(0)));
            args.optname = Some(names::sockopt_name(arg(0), arg(1)));
            args.optval = Some(names::sockopt_value(arg(0), arg(1), arg(2), optlen));
        }
        _ => {}
    }
    What::Syscall {
        syscall: sys.name(),
        sys_fd: (sys != Sys::Socket && fd >= 0).then_some(fd),
        ret,
        errno: errno(ret),
        duration_us: r.b_u64(body::SYS_DUR) / 1000,
        args: args.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{AF_INET, IPPROTO_TCP};

    pub(crate) fn raw(kind: Kind) -> RawEvent {
        RawEvent {
            kind,
            family: AF_INET,
            state: 1,
            sport: 5000,
            dport: 40312,
            ts_ns: 2_000_000,
            sk: 0xffff_0000_0000_1000,
            cookie: 0,
            netns: 4026532000,
            pid: 42,
            tid: 42,
            fd: 4,
            saddr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            daddr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            comm: *b"ncat\0\0\0\0\0\0\0\0\0\0\0\0",
            owner_src: OwnerSrc::Task,
            protocol: IPPROTO_TCP,
            flags: 0,
            cpu: 0,
            body: [0; 72],
        }
    }

    #[test]
    fn state_event_json() {
        let mut r = raw(Kind::State);
        r.state = 3;
        r.body[0] = 10;
        r.body[4] = 3;
        r.owner_src = OwnerSrc::Listener;
        r.tid = 0;
        r.fd = 3;
        let e = Event::from_raw(&r, &Reasons::default(), 1_000_000);
        let j = serde_json::to_value(&e).unwrap();
        assert_eq!(
            j,
            serde_json::json!({
                "t_ns": 1_000_000, "conn": null, "kind": "state",
                "old_state": "listening", "new_state": "syn-recv",
                "proto": "tcp", "family": "inet",
                "local": {"addr": "127.0.0.1", "port": 5000},
                "peer": {"addr": "127.0.0.1", "port": 40312},
                "state": "syn-recv", "pid": 42, "comm": "ncat", "fd": 3,
                "owner": "listener", "tid": null, "sk": "0xffff000000001000",
                "cookie": null, "netns": 4026532000u32
            })
        );
        assert_eq!(
            e.describe(),
            "LISTEN → SYN-RECV  SYN, SYN-ACK, ACK: the kernel finished the handshake without the application"
        );
    }

    #[test]
    fn syscall_events() {
        let mut r = raw(Kind::Syscall);
        r.body[0] = Sys::Setsockopt as u8;
        r.body[4..8].copy_from_slice(&4i32.to_le_bytes());
        r.body[24] = 1; // SOL_SOCKET
        r.body[32] = 13; // SO_LINGER
        r.body[40] = 1; // l_onoff = 1, l_linger = 0
        r.body[64] = 8; // optlen
        let e = Event::from_raw(&r, &Reasons::default(), 0);
        assert_eq!(
            e.describe(),
            "setsockopt(4, SOL_SOCKET, SO_LINGER, {l_onoff=1, l_linger=0}) = 0"
        );
        // Lean (nothing shown): the same event without its arguments.
        let lean = Event::from_raw_lean(&r, &Reasons::default(), 0);
        let What::Syscall { args, .. } = &lean.what else {
            panic!("{lean:?}")
        };
        assert!(args.is_empty(), "{lean:?}");
        let mut full = e.clone();
        if let What::Syscall { args, .. } = &mut full.what {
            *args = Args::default();
        }
        assert_eq!(lean, full);
        assert!(serde_json::to_value(&lean).unwrap().get("args").is_none());

        let mut r = raw(Kind::Syscall);
        r.body[0] = Sys::Accept as u8;
        r.body[4..8].copy_from_slice(&3i32.to_le_bytes());
        r.body[8..16].copy_from_slice(&4i64.to_le_bytes());
        let e = Event::from_raw(&r, &Reasons::default(), 0);
        assert_eq!(
            e.describe(),
            "accept(3) = 4  new fd for 127.0.0.1:5000 ← 127.0.0.1:40312"
        );

        let mut r = raw(Kind::Syscall);
        r.body[0] = Sys::Connect as u8;
        r.body[4..8].copy_from_slice(&3i32.to_le_bytes());
        r.body[8..16].copy_from_slice(&(-111i64).to_le_bytes());
        r.body[2] = AF_INET;
        r.body[48..52].copy_from_slice(&[127, 0, 0, 1]);
        r.body[64..66].copy_from_slice(&5001u16.to_le_bytes());
        let e = Event::from_raw(&r, &Reasons::default(), 0);
        let j = serde_json::to_value(&e).unwrap();
        assert_eq!(j["syscall"], "connect");
        assert_eq!(j["errno"], "ECONNREFUSED");
        assert_eq!(
            j["args"],
            serde_json::json!({"addr": {"addr": "127.0.0.1", "port": 5001}})
        );
        assert!(
            e.describe()
                .starts_with("connect(3, 127.0.0.1:5001) = -ECONNREFUSED")
        );
    }

    #[test]
    fn io_and_reasons() {
        let mut r = raw(Kind::Send);
        r.body[0] = Sys::Sendto as u8;
        r.body[4..8].copy_from_slice(&4i32.to_le_bytes());
        r.body[8..12].copy_from_slice(&6i32.to_le_bytes());
        let e = Event::from_raw(&r, &Reasons::default(), 0);
        assert_eq!(e.describe(), "sendto(4) = 6  6 B sent");
        let mut r = raw(Kind::Recv);
        r.body[0] = Sys::Recvfrom as u8;
        r.body[4..8].copy_from_slice(&4i32.to_le_bytes());
        r.body[8..12].copy_from_slice(&(-104i32).to_le_bytes());
        let e = Event::from_raw(&r, &Reasons::default(), 0);
        assert_eq!(e.describe(), "recvfrom(4) = -ECONNRESET");

        let mut reasons = Reasons::default();
        reasons.drop.insert(40, "TCP_LISTEN_OVERFLOW".into());
        let mut r = raw(Kind::Drop);
        r.flags = abi::FLAG_PACKET_TUPLE;
        r.body[0] = 40;
        r.body[16] = 0x10;
        let e = Event::from_raw(&r, &reasons, 0);
        assert_eq!(e.local, None, "a packet's tuple is not the socket's");
        assert_eq!(
            e.describe(),
            "packet dropped: TCP_LISTEN_OVERFLOW  127.0.0.1:5000 → 127.0.0.1:40312 [ACK] 0 bytes"
        );
    }

    #[test]
    fn packet_events() {
        let mut r = raw(Kind::Packet);
        r.owner_src = OwnerSrc::None;
        r.pid = 0;
        r.cpu = 1;
        r.body[body::PKT_DIR] = abi::PKT_OUT;
        r.body[body::PKT_FLAGS] = 0x12;
        r.body[body::PKT_OPTS] = abi::PKT_MSS | abi::PKT_WSCALE | abi::PKT_SACK_PERM | abi::PKT_TS;
        r.body[body::PKT_WSCALE] = 7;
        r.body[body::PKT_IFINDEX] = 1;
        r.body[8..12].copy_from_slice(&100u32.to_le_bytes());
        r.body[12..16].copy_from_slice(&201u32.to_le_bytes());
        r.body[20..22].copy_from_slice(&65483u16.to_le_bytes());
        r.body[22..24].copy_from_slice(&65495u16.to_le_bytes());
        r.body[body::PKT_SOFTIRQ] = 4;
        r.body[28..32].copy_from_slice(&9u32.to_le_bytes());
        let e = Event::from_raw(&r, &Reasons::default(), 0);
        let j = serde_json::to_value(&e).unwrap();
        assert_eq!(j["kind"], "packet");
        assert_eq!(j["direction"], "out");
        assert_eq!(j["tcp_flags"], "SYN|ACK");
        assert_eq!(
            (j["seq"].as_u64(), j["ack"].as_u64()),
            (Some(100), Some(201))
        );
        assert_eq!(
            (j["mss"].as_u64(), j["wscale"].as_u64()),
            (Some(65495), Some(7))
        );
        assert_eq!(
            (j["ts_val"].as_u64(), j["ts_ecr"].as_u64()),
            (Some(9), Some(0))
        );
        assert_eq!(j["sack_permitted"], true);
        assert!(j.get("sack").is_none(), "no blocks: {j}");
        assert_eq!(
            (j["softirq"].as_bool(), j["cpu"].as_u64()),
            (Some(true), Some(1))
        );
        assert_eq!(
            j["local"],
            serde_json::json!({"addr": "127.0.0.1", "port": 5000})
        );
        assert_eq!(
            e.describe(),
            "→ out [SYN|ACK] seq 100 ack 201 win 65483 len 0 mss 65495 wscale 7 sackOK  (softirq)"
        );
    }

    #[test]
    fn wait_and_wake_events() {
        let mut r = raw(Kind::Wake);
        r.body[0] = Sys::Pselect6 as u8;
        r.body[body::WAIT_CAUSE] = 1;
        r.body[24..32].copy_from_slice(&5_040_000u64.to_le_bytes());
        r.body[32..40].copy_from_slice(&5_000_000u64.to_le_bytes());
        r.body[40..44].copy_from_slice(&1u32.to_le_bytes());
        let e = Event::from_raw(&r, &Reasons::default(), 0);
        assert_eq!(
            e.describe(),
            "wakeup in pselect6() on cpu 1 by a packet (40 µs after it arrived, softirq)"
        );
        let mut r = raw(Kind::Wait);
        r.ts_ns = 5_100_000;
        r.body[0] = Sys::Select as u8;
        r.body[body::WAIT_PHASE] = abi::WAIT_EXIT;
        r.body[body::WAIT_CAUSE] = 1;
        r.body[8..16].copy_from_slice(&1i64.to_le_bytes());
        r.body[16..24].copy_from_slice(&2_000_000u64.to_le_bytes());
        r.body[24..32].copy_from_slice(&5_040_000u64.to_le_bytes());
        r.body[32..40].copy_from_slice(&5_000_000u64.to_le_bytes());
        let e = Event::from_raw(&r, &Reasons::default(), 0);
        let j = serde_json::to_value(&e).unwrap();
        assert_eq!(
            (
                &j["phase"],
                &j["ret"],
                &j["duration_us"],
                &j["packet_to_return_us"]
            ),
            (&"exit".into(), &1.into(), &2000.into(), &100.into())
        );
        assert_eq!(
            e.describe(),
            "select() = 1 after 2.0 ms, woken on cpu 0, 100 µs after the packet"
        );
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_us(250), "250 µs");
        assert_eq!(fmt_us(1500), "1.5 ms");
        assert_eq!(fmt_us(2_000_000), "2.00 s");
        assert_eq!(fmt_bytes(6), "6 B");
        assert_eq!(fmt_bytes(1536), "1.5 KiB");
    }
}
