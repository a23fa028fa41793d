//! The model: plain data describing sockets and who owns them.
//!
//! Every source (netlink sock_diag, /proc/net/*) fills the same types. A field
//! that a source cannot know is `None`, never a made-up zero: /proc/net/tcp does
//! not carry a listener's backlog, so a socket read from it has `send_q: None`
//! when it is a listener.
//!
//! JSON field names are stable and documented in the README; numbers carry
//! their unit in the name where the unit is fixed.

pub mod counters;
pub mod owners;
pub mod process;

pub use counters::Counters;
pub use owners::{OwnerRef, OwnerScan, OwnerScanBuilder};
pub use process::{FdEntry, FdInfo, FdTarget, ProcessInfo};

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

/// Transport protocol / socket kind, as ss calls them in its `Netid` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Proto {
    Tcp,
    Udp,
    Udplite,
    Raw,
    UnixStream,
    UnixDgram,
    UnixSeqpacket,
}

impl Proto {
    /// Short name as ss prints it in the Netid column.
    pub fn short(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Udplite => "udplite",
            Proto::Raw => "raw",
            Proto::UnixStream => "u_str",
            Proto::UnixDgram => "u_dgr",
            Proto::UnixSeqpacket => "u_seq",
        }
    }
    pub fn is_unix(self) -> bool {
        matches!(
            self,
            Proto::UnixStream | Proto::UnixDgram | Proto::UnixSeqpacket
        )
    }
    pub fn is_inet(self) -> bool {
        !self.is_unix()
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short())
    }
}

/// Address family of a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Inet,
    Inet6,
    Unix,
}

/// Socket state, numbered as the kernel numbers TCP states
/// (include/net/tcp_states.h). UDP, RAW and UNIX sockets reuse these numbers:
/// `Established` for connected, `Close` for unconnected, `Listen` for a UNIX
/// listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum State {
    Established = 1,
    SynSent = 2,
    SynRecv = 3,
    #[serde(rename = "fin-wait-1")]
    FinWait1 = 4,
    #[serde(rename = "fin-wait-2")]
    FinWait2 = 5,
    TimeWait = 6,
    #[serde(rename = "closed")]
    Close = 7,
    CloseWait = 8,
    LastAck = 9,
    #[serde(rename = "listening")]
    Listen = 10,
    Closing = 11,
    NewSynRecv = 12,
    BoundInactive = 13,
}

impl State {
    pub const ALL: [State; 13] = [
        State::Established,
        State::SynSent,
        State::SynRecv,
        State::FinWait1,
        State::FinWait2,
        State::TimeWait,
        State::Close,
        State::CloseWait,
        State::LastAck,
        State::Listen,
        State::Closing,
        State::NewSynRecv,
        State::BoundInactive,
    ];

    /// From the kernel's number (tcp_states.h). Unknown numbers give `None`.
    pub fn from_kernel(n: u8) -> Option<State> {
        State::ALL.get((n as usize).wrapping_sub(1)).copied()
    }

    pub fn kernel_number(self) -> u8 {
        self as u8
    }

    /// Bit of this state in a kernel state mask (`1 << state`), as
    /// inet_diag's `idiag_states` and unix_diag's `udiag_states` take it.
    pub fn bit(self) -> u32 {
        1 << (self as u32)
    }

    /// The label ss prints in its State column.
    pub fn ss_label(self) -> &'static str {
        match self {
            State::Established => "ESTAB",
            State::SynSent => "SYN-SENT",
            State::SynRecv => "SYN-RECV",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::TimeWait => "TIME-WAIT",
            State::Close => "UNCONN",
            State::CloseWait => "CLOSE-WAIT",
            State::LastAck => "LAST-ACK",
            State::Listen => "LISTEN",
            State::Closing => "CLOSING",
            State::NewSynRecv => "NEW-SYN-RECV",
            State::BoundInactive => "BOUND-INACTIVE",
        }
    }

    /// The name used in filters and JSON (ss's filter names).
    pub fn name(self) -> &'static str {
        match self {
            State::Established => "established",
            State::SynSent => "syn-sent",
            State::SynRecv => "syn-recv",
            State::FinWait1 => "fin-wait-1",
            State::FinWait2 => "fin-wait-2",
            State::TimeWait => "time-wait",
            State::Close => "closed",
            State::CloseWait => "close-wait",
            State::LastAck => "last-ack",
            State::Listen => "listening",
            State::Closing => "closing",
            State::NewSynRecv => "new-syn-recv",
            State::BoundInactive => "bound-inactive",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ss_label())
    }
}

/// A set of states as a kernel bit mask (`1 << State as u8`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct StateSet(pub u32);

impl StateSet {
    pub const EMPTY: StateSet = StateSet(0);
    /// Every state the kernel reports (bits 1..=13).
    pub const ALL: StateSet = StateSet(0x3ffe);

    pub fn of(states: &[State]) -> StateSet {
        StateSet(states.iter().fold(0, |m, s| m | s.bit()))
    }
    pub fn contains(self, s: State) -> bool {
        self.0 & s.bit() != 0
    }
    pub fn union(self, o: StateSet) -> StateSet {
        StateSet(self.0 | o.0)
    }
    pub fn intersect(self, o: StateSet) -> StateSet {
        StateSet(self.0 & o.0)
    }
    pub fn without(self, o: StateSet) -> StateSet {
        StateSet(self.0 & !o.0)
    }
    pub fn is_empty(self) -> bool {
        self.0 & Self::ALL.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = State> {
        State::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

/// One end of a socket.
///
/// INET sockets have an address and port (`scope_id` set for link-local IPv6
/// bound to an interface). UNIX sockets have a path (abstract names start with
/// `@`; `None` for an unnamed socket) and the inode of the socket the end is:
/// for `local` the socket itself, for `peer` the peer socket (0 when there is
/// none). `Unknown` is an end the source cannot tell (a UNIX socket's peer
/// read from /proc/net/unix, which does not list peers): JSON `null`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Endpoint {
    Inet { addr: IpAddr, port: u16 },
    Unix { path: Option<String>, inode: u64 },
    Unknown,
}

impl Endpoint {
    pub fn port(&self) -> Option<u16> {
        match self {
            Endpoint::Inet { port, .. } => Some(*port),
            Endpoint::Unix { .. } | Endpoint::Unknown => None,
        }
    }
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Endpoint::Inet { addr, .. } => Some(*addr),
            Endpoint::Unix { .. } | Endpoint::Unknown => None,
        }
    }
}

/// A process file descriptor that refers to a socket.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Owner {
    pub pid: u32,
    pub fd: u32,
    /// Command name (/proc/PID/comm).
    pub comm: String,
    /// Effective uid of the process (the owner of /proc/PID), when known.
    pub uid: Option<u32>,
    /// The thread whose fd table holds `fd`, when that table is not the
    /// process's main one (a thread that unshared its fd table, or a
    /// process whose main thread has exited): the fd is then
    /// `/proc/PID/task/TID/fd/FD`. Absent for the common case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<u32>,
}

impl Owner {
    /// Where the fd lives under /proc: `PID/fd/FD` or `PID/task/TID/fd/FD`.
    pub fn fd_path(&self) -> String {
        match self.tid {
            Some(t) => format!("/proc/{}/task/{t}/fd/{}", self.pid, self.fd),
            None => format!("/proc/{}/fd/{}", self.pid, self.fd),
        }
    }
}

/// A network namespace, identified by the inode of its nsfs file.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Netns {
    pub inode: u64,
    /// Name under /run/netns, if the namespace has one there.
    pub name: Option<String>,
}

impl fmt::Display for Netns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => f.write_str(n),
            None => write!(f, "net:[{}]", self.inode),
        }
    }
}

/// The kernel timer pending on a socket (ss -o, /proc/net/tcp `tr tm->when`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// No timer pending.
    Off,
    /// Retransmit (or loss probe / RACK reorder) timer.
    On,
    /// Keepalive timer.
    Keepalive,
    /// TIME-WAIT timer.
    Timewait,
    /// Zero-window probe timer.
    Persist,
    /// Anything the kernel numbers that we do not know.
    Unknown,
}

impl TimerKind {
    /// From the number in /proc/net/tcp's `tr` field and inet_diag's
    /// `idiag_timer` (both: 0 none, 1 retransmit, 2 keepalive, 3 time-wait,
    /// 4 zero-window probe).
    pub fn from_kernel(n: u8) -> TimerKind {
        match n {
            0 => TimerKind::Off,
            1 => TimerKind::On,
            2 => TimerKind::Keepalive,
            3 => TimerKind::Timewait,
            4 => TimerKind::Persist,
            _ => TimerKind::Unknown,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            TimerKind::Off => "off",
            TimerKind::On => "on",
            TimerKind::Keepalive => "keepalive",
            TimerKind::Timewait => "timewait",
            TimerKind::Persist => "persist",
            TimerKind::Unknown => "unknown",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Timer {
    pub kind: TimerKind,
    /// Milliseconds until the timer fires (negative if overdue).
    pub expires_ms: i64,
    /// Retransmits (or probes) so far for this timer.
    pub retrans: u32,
}

/// Which kernel interface a socket was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Netlink,
    Proc,
    /// A BPF socket iterator (`iter/tcp`).
    Bpf,
}

/// One socket as the kernel reports it, with its owners once joined.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Socket {
    pub proto: Proto,
    pub family: Family,
    pub state: State,
    /// Bytes in the receive queue; for a TCP listener, connections waiting in
    /// the accept queue. `None` when the source does not say.
    pub recv_q: Option<u32>,
    /// Bytes in the send queue; for a TCP listener, the backlog limit given
    /// to listen(). `None` when the source does not say (/proc for
    /// listeners).
    pub send_q: Option<u32>,
    pub local: Endpoint,
    pub peer: Endpoint,
    /// Socket inode (the N in `socket:[N]`); 0 for sockets that have none
    /// (TIME-WAIT, SYN-RECV request socks).
    pub inode: u64,
    pub uid: Option<u32>,
    /// Kernel socket cookie (ss `sk:`), unique while the socket lives.
    pub cookie: Option<u64>,
    /// cgroup v2 id of the socket's cgroup.
    pub cgroup_id: Option<u64>,
    /// shutdown() state: bit 0 receive side shut, bit 1 send side shut.
    pub shutdown: Option<u8>,
    /// IPV6_V6ONLY, for IPv6 sockets.
    pub v6only: Option<bool>,
    /// Interface index the socket is bound to (SO_BINDTODEVICE), when set.
    pub bound_ifindex: Option<u32>,
    /// Name of that interface in the socket's namespace (`if7` when the
    /// index names no interface any more, as ss prints it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_ifname: Option<Box<str>>,
    pub timer: Option<Timer>,
    /// The namespace the socket lives in, when more than one was read or one
    /// was asked for.
    pub netns: Option<Box<Netns>>,
    pub source: SourceKind,
    /// TCP internals (`ls -i`): tcp_info as the kernel sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_info: Option<Box<TcpInfo>>,
    /// Socket memory (`ls -m`): the kernel's skmeminfo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skmem: Option<Box<SkMem>>,
    /// Congestion control algorithm (`ls -i`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cong: Option<Box<str>>,
    /// Processes holding a descriptor on this socket (filled by the join; empty
    /// when owners were not asked for or none could be seen).
    pub owners: Vec<Owner>,
}

impl Socket {
    /// A socket with the given identity and every optional field unknown.
    pub fn new(
        proto: Proto,
        family: Family,
        state: State,
        local: Endpoint,
        peer: Endpoint,
        source: SourceKind,
    ) -> Socket {
        Socket {
            proto,
            family,
            state,
            recv_q: None,
            send_q: None,
            local,
            peer,
            inode: 0,
            uid: None,
            cookie: None,
            cgroup_id: None,
            shutdown: None,
            v6only: None,
            bound_ifindex: None,
            bound_ifname: None,
            timer: None,
            netns: None,
            source,
            tcp_info: None,
            skmem: None,
            cong: None,
            owners: Vec::new(),
        }
    }

    pub fn is_listener(&self) -> bool {
        self.state == State::Listen
    }
}

/// Socket memory as the kernel accounts it (`struct sock` fields reported in
/// INET_DIAG_SKMEMINFO / UNIX_DIAG_MEMINFO, include/uapi/linux/sock_diag.h
/// SK_MEMINFO_*). All in bytes except `drops` (packets).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkMem {
    /// Receive queue memory allocated (ss `r`).
    pub rmem_alloc_bytes: u32,
    /// Receive buffer limit, SO_RCVBUF (ss `rb`).
    pub rcvbuf_bytes: u32,
    /// Transmit memory allocated (ss `t`).
    pub wmem_alloc_bytes: u32,
    /// Send buffer limit, SO_SNDBUF (ss `tb`).
    pub sndbuf_bytes: u32,
    /// Memory reserved but not used (ss `f`).
    pub fwd_alloc_bytes: u32,
    /// Memory queued for sending (ss `w`).
    pub wmem_queued_bytes: u32,
    /// Option memory (ss `o`).
    pub optmem_bytes: u32,
    /// Backlog queue memory, packets arriving while the socket is locked (ss `bl`).
    pub backlog_bytes: u32,
    /// Packets dropped before reaching the socket (ss `d`).
    pub drops: u32,
}

/// TCP internals from `struct tcp_info` (include/uapi/linux/tcp.h). The
/// struct grows with every kernel; fields the running kernel did not send
/// are `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpInfo {
    /// Bytes of tcp_info the kernel sent.
    pub len: usize,
    /// Congestion avoidance state: open, disorder, cwr, recovery, loss.
    /// (A `Cow`: decoding borrows a static name, no allocation.)
    pub ca_state: Cow<'static, str>,
    /// Unrecovered RTO timeouts in a row.
    pub retransmits: u8,
    pub probes: u8,
    pub backoff: u8,
    /// Negotiated options: timestamps, sack, wscale, ecn, ecn_seen, syn_data.
    pub options: Vec<Cow<'static, str>>,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    pub rto_us: u32,
    pub ato_us: u32,
    pub snd_mss: u32,
    pub rcv_mss: u32,
    pub unacked: u32,
    pub sacked: u32,
    pub lost: u32,
    pub retrans: u32,
    pub last_data_sent_ms: u32,
    pub last_data_recv_ms: u32,
    pub last_ack_recv_ms: u32,
    pub pmtu: u32,
    pub rcv_ssthresh: u32,
    pub rtt_us: u32,
    pub rttvar_us: u32,
    pub snd_ssthresh: u32,
    /// Congestion window, in segments.
    pub snd_cwnd: u32,
    pub advmss: u32,
    pub reordering: u32,
    pub rcv_rtt_us: u32,
    pub rcv_space: u32,
    pub total_retrans: u32,
    pub pacing_rate_bytes_per_s: Option<u64>,
    pub max_pacing_rate_bytes_per_s: Option<u64>,
    pub bytes_acked: Option<u64>,
    pub bytes_received: Option<u64>,
    pub segs_out: Option<u32>,
    pub segs_in: Option<u32>,
    pub notsent_bytes: Option<u32>,
    pub min_rtt_us: Option<u32>,
    pub data_segs_in: Option<u32>,
    pub data_segs_out: Option<u32>,
    pub delivery_rate_bytes_per_s: Option<u64>,
    pub delivery_rate_app_limited: Option<bool>,
    pub busy_time_us: Option<u64>,
    pub rwnd_limited_us: Option<u64>,
    pub sndbuf_limited_us: Option<u64>,
    pub delivered: Option<u32>,
    pub delivered_ce: Option<u32>,
    pub bytes_sent: Option<u64>,
    pub bytes_retrans: Option<u64>,
    pub dsack_dups: Option<u32>,
    pub reord_seen: Option<u32>,
    pub rcv_ooopack: Option<u32>,
    pub snd_wnd_bytes: Option<u32>,
    pub rcv_wnd_bytes: Option<u32>,
    pub rehash: Option<u32>,
    pub total_rto: Option<u16>,
    pub total_rto_recoveries: Option<u16>,
    pub total_rto_time_ms: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_json_names_are_the_filter_names() {
        for s in State::ALL {
            let j = serde_json::to_string(&s).unwrap();
            assert_eq!(j, format!("\"{}\"", s.name()), "{s:?}");
            assert_eq!(serde_json::from_str::<State>(&j).unwrap(), s);
        }
    }
}
