//! The event layout the BPF programs write to the ring buffer
//! (`bpf/event.h`, version [`EVENT_VERSION`]), decoded field by field at
//! fixed offsets into [`RawEvent`]. Nothing here is `unsafe`: a record is a
//! byte slice, and one that is short or of another version is an error,
//! never a misread.
//!
//! Also the kernel constants the events carry: TCP states
//! (include/net/tcp_states.h), address families (include/linux/socket.h)
//! and sockscope's own syscall numbering (`enum ss_sys`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `SS_EVENT_VERSION` in bpf/event.h.
pub const EVENT_VERSION: u8 = 1;
/// `SS_EVENT_SIZE` in bpf/event.h.
pub const EVENT_SIZE: usize = 176;
/// A batch record (bpf/event.h, struct ss_batch_head): its kind byte,
/// the header's size, and the most events one holds.
pub const BATCH_KIND: u8 = 0x80;
pub const BATCH_HEAD: usize = 8;
pub const BATCH_MAX: usize = 16;

/// Counter indexes in the `stats` per-CPU array (bpf/event.h).
pub const STAT_LOST: u32 = 16;
pub const STAT_FILTERED: u32 = 32;
pub const STAT_MAX: u32 = 48;

pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

/// `enum ss_kind`: which program wrote the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    State = 1,
    Retransmit = 2,
    RetransmitSynack = 3,
    ResetSent = 4,
    ResetReceived = 5,
    Destroy = 6,
    Drop = 7,
    Syscall = 8,
    Send = 9,
    Recv = 10,
    Packet = 11,
    Wait = 12,
    Wake = 13,
}

impl Kind {
    pub const ALL: [Kind; 13] = [
        Kind::State,
        Kind::Retransmit,
        Kind::RetransmitSynack,
        Kind::ResetSent,
        Kind::ResetReceived,
        Kind::Destroy,
        Kind::Drop,
        Kind::Syscall,
        Kind::Send,
        Kind::Recv,
        Kind::Packet,
        Kind::Wait,
        Kind::Wake,
    ];
    pub fn from_u8(n: u8) -> Option<Kind> {
        Kind::ALL.get((n as usize).wrapping_sub(1)).copied()
    }
    /// Name in JSON (`"kind"`) and in counters.
    pub fn name(self) -> &'static str {
        match self {
            Kind::State => "state",
            Kind::Retransmit => "retransmit",
            Kind::RetransmitSynack => "retransmit_synack",
            Kind::ResetSent => "reset_sent",
            Kind::ResetReceived => "reset_received",
            Kind::Destroy => "destroy",
            Kind::Drop => "drop",
            Kind::Syscall => "syscall",
            Kind::Send => "send",
            Kind::Recv => "recv",
            Kind::Packet => "packet",
            Kind::Wait => "wait",
            Kind::Wake => "wake",
        }
    }
    /// The tracepoint behind it.
    pub fn tracepoint(self) -> &'static str {
        match self {
            Kind::State => "sock:inet_sock_set_state",
            Kind::Retransmit => "tcp:tcp_retransmit_skb",
            Kind::RetransmitSynack => "tcp:tcp_retransmit_synack",
            Kind::ResetSent => "tcp:tcp_send_reset",
            Kind::ResetReceived => "tcp:tcp_receive_reset",
            Kind::Destroy => "tcp:tcp_destroy_sock",
            Kind::Drop => "skb:kfree_skb",
            Kind::Syscall => "raw_syscalls:sys_enter/sys_exit",
            Kind::Send => "sock:sock_send_length",
            Kind::Recv => "sock:sock_recv_length",
            Kind::Packet => "net:net_dev_queue/netif_receive_skb",
            Kind::Wait => {
                "syscalls:sys_enter/exit_{select,pselect6,poll,ppoll,epoll_wait,epoll_pwait,epoll_pwait2}"
            }
            Kind::Wake => "sched:sched_wakeup",
        }
    }
    pub fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// `enum ss_owner_src`: how the kernel side knew the owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OwnerSrc {
    None,
    Task,
    Socket,
    Listener,
    Snapshot,
}

impl OwnerSrc {
    pub fn from_u8(n: u8) -> OwnerSrc {
        match n {
            1 => OwnerSrc::Task,
            2 => OwnerSrc::Socket,
            3 => OwnerSrc::Listener,
            4 => OwnerSrc::Snapshot,
            _ => OwnerSrc::None,
        }
    }
}

/// `enum ss_sys`: sockscope's syscall numbering (the same on every
/// architecture).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sys {
    Other,
    Socket,
    Bind,
    Listen,
    Accept,
    Accept4,
    Connect,
    Shutdown,
    Setsockopt,
    Close,
    Read,
    Write,
    Sendto,
    Recvfrom,
    Sendmsg,
    Recvmsg,
    Readv,
    Writev,
    Sendmmsg,
    Recvmmsg,
    Sendfile,
    Splice,
    Fcntl,
    Select,
    Pselect6,
    Poll,
    Ppoll,
    EpollWait,
    EpollPwait,
    EpollPwait2,
}

impl Sys {
    pub fn from_u16(n: u16) -> Sys {
        use Sys::*;
        const T: [Sys; 30] = [
            Other,
            Socket,
            Bind,
            Listen,
            Accept,
            Accept4,
            Connect,
            Shutdown,
            Setsockopt,
            Close,
            Read,
            Write,
            Sendto,
            Recvfrom,
            Sendmsg,
            Recvmsg,
            Readv,
            Writev,
            Sendmmsg,
            Recvmmsg,
            Sendfile,
            Splice,
            Fcntl,
            Select,
            Pselect6,
            Poll,
            Ppoll,
            EpollWait,
            EpollPwait,
            EpollPwait2,
        ];
        T.get(n as usize).copied().unwrap_or(Other)
    }
    pub fn name(self) -> &'static str {
        use Sys::*;
        match self {
            Other => "other",
            Socket => "socket",
            Bind => "bind",
            Listen => "listen",
            Accept => "accept",
            Accept4 => "accept4",
            Connect => "connect",
            Shutdown => "shutdown",
            Setsockopt => "setsockopt",
            Close => "close",
            Read => "read",
            Write => "write",
            Sendto => "sendto",
            Recvfrom => "recvfrom",
            Sendmsg => "sendmsg",
            Recvmsg => "recvmsg",
            Readv => "readv",
            Writev => "writev",
            Sendmmsg => "sendmmsg",
            Recvmmsg => "recvmmsg",
            Sendfile => "sendfile",
            Splice => "splice",
            Fcntl => "fcntl",
            Select => "select",
            Pselect6 => "pselect6",
            Poll => "poll",
            Ppoll => "ppoll",
            EpollWait => "epoll_wait",
            EpollPwait => "epoll_pwait",
            EpollPwait2 => "epoll_pwait2",
        }
    }
}

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("ring buffer record of {0} bytes, expected {EVENT_SIZE}")]
    Size(usize),
    #[error(
        "event layout version {0}, this sockscope reads version {EVENT_VERSION} (BPF object and program do not match)"
    )]
    Version(u8),
    #[error("unknown event kind {0}")]
    Kind(u8),
}

/// One ring buffer record, decoded but not interpreted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEvent {
    pub kind: Kind,
    pub family: u8,
    /// Socket state at the event (for state changes: the new state).
    pub state: u8,
    /// Local port (or the packet's source port, with [`FLAG_PACKET_TUPLE`]).
    pub sport: u16,
    pub dport: u16,
    pub ts_ns: u64,
    pub sk: u64,
    pub cookie: u64,
    pub netns: u32,
    pub pid: u32,
    pub tid: u32,
    pub fd: i32,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub comm: [u8; 16],
    pub owner_src: OwnerSrc,
    pub protocol: u8,
    pub flags: u16,
    pub cpu: u32,
    pub body: [u8; 72],
}

/// `SS_F_NOT_FULLSOCK`: a request or timewait socket.
pub const FLAG_NOT_FULLSOCK: u16 = 1;
/// `SS_F_PACKET_TUPLE`: the tuple is a packet's, source first.
pub const FLAG_PACKET_TUPLE: u16 = 2;

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn i32_at(b: &[u8], o: usize) -> i32 {
    u32_at(b, o) as i32
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}
fn arr16(b: &[u8], o: usize) -> [u8; 16] {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[o..o + 16]);
    a
}

impl RawEvent {
    /// Decode one record (exactly [`EVENT_SIZE`] bytes; the ring buffer
    /// may round the size up, so longer input is accepted and the tail
    /// ignored).
    pub fn decode(b: &[u8]) -> Result<RawEvent, DecodeError> {
        if b.len() < EVENT_SIZE {
            return Err(DecodeError::Size(b.len()));
        }
        if b[0] != EVENT_VERSION {
            return Err(DecodeError::Version(b[0]));
        }
        let kind = Kind::from_u8(b[1]).ok_or(DecodeError::Kind(b[1]))?;
        let mut body = [0u8; 72];
        body.copy_from_slice(&b[104..176]);
        Ok(RawEvent {
            kind,
            family: b[2],
            state: b[3],
            sport: u16_at(b, 4),
            dport: u16_at(b, 6),
            ts_ns: u64_at(b, 8),
            sk: u64_at(b, 16),
            cookie: u64_at(b, 24),
            netns: u32_at(b, 32),
            pid: u32_at(b, 36),
            tid: u32_at(b, 40),
            fd: i32_at(b, 44),
            saddr: arr16(b, 48),
            daddr: arr16(b, 64),
            comm: arr16(b, 80),
            owner_src: OwnerSrc::from_u8(b[96]),
            protocol: b[97],
            flags: u16_at(b, 98),
            cpu: u32_at(b, 100),
            body,
        })
    }

    /// The owner's command name (up to the first NUL).
    pub fn comm(&self) -> String {
        comm_str(&self.comm)
    }

    pub fn local_ip(&self) -> Option<IpAddr> {
        ip_of(self.family, &self.saddr)
    }
    pub fn peer_ip(&self) -> Option<IpAddr> {
        ip_of(self.family, &self.daddr)
    }

    /// Body fields, by offset inside the body.
    pub fn b_u16(&self, o: usize) -> u16 {
        u16_at(&self.body, o)
    }
    pub fn b_u32(&self, o: usize) -> u32 {
        u32_at(&self.body, o)
    }
    pub fn b_i32(&self, o: usize) -> i32 {
        i32_at(&self.body, o)
    }
    pub fn b_u64(&self, o: usize) -> u64 {
        u64_at(&self.body, o)
    }
    pub fn b_i64(&self, o: usize) -> i64 {
        u64_at(&self.body, o) as i64
    }
    pub fn b_arr16(&self, o: usize) -> [u8; 16] {
        arr16(&self.body, o)
    }

    /// Encode (the inverse of [`RawEvent::decode`]): for tests and
    /// fixtures.
    pub fn encode(&self) -> [u8; EVENT_SIZE] {
        let mut b = [0u8; EVENT_SIZE];
        b[0] = EVENT_VERSION;
        b[1] = self.kind as u8;
        b[2] = self.family;
        b[3] = self.state;
        b[4..6].copy_from_slice(&self.sport.to_le_bytes());
        b[6..8].copy_from_slice(&self.dport.to_le_bytes());
        b[8..16].copy_from_slice(&self.ts_ns.to_le_bytes());
        b[16..24].copy_from_slice(&self.sk.to_le_bytes());
        b[24..32].copy_from_slice(&self.cookie.to_le_bytes());
        b[32..36].copy_from_slice(&self.netns.to_le_bytes());
        b[36..40].copy_from_slice(&self.pid.to_le_bytes());
        b[40..44].copy_from_slice(&self.tid.to_le_bytes());
        b[44..48].copy_from_slice(&self.fd.to_le_bytes());
        b[48..64].copy_from_slice(&self.saddr);
        b[64..80].copy_from_slice(&self.daddr);
        b[80..96].copy_from_slice(&self.comm);
        b[96] = match self.owner_src {
            OwnerSrc::None => 0,
            OwnerSrc::Task => 1,
            OwnerSrc::Socket => 2,
            OwnerSrc::Listener => 3,
            OwnerSrc::Snapshot => 4,
        };
        b[97] = self.protocol;
        b[98..100].copy_from_slice(&self.flags.to_le_bytes());
        b[100..104].copy_from_slice(&self.cpu.to_le_bytes());
        b[104..176].copy_from_slice(&self.body);
        b
    }
}

/// A NUL-padded kernel string.
pub fn comm_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// An address as the events carry it: IPv4 in the first four bytes.
pub fn ip_of(family: u8, a: &[u8; 16]) -> Option<IpAddr> {
    match family {
        AF_INET => Some(IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))),
        AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(*a))),
        _ => None,
    }
}

/// Body offsets per kind (bpf/event.h, relative to the body at 104).
pub mod body {
    // struct ss_state_body
    pub const STATE_OLD: usize = 0;
    pub const STATE_NEW: usize = 4;
    pub const STATE_BORN: usize = 8;
    // struct ss_retrans_body
    pub const RETRANS_STATE: usize = 0;
    pub const RETRANS_ERR: usize = 4;
    pub const RETRANS_LEN: usize = 16;
    // struct ss_synack_body
    pub const SYNACK_LISTENER: usize = 0;
    // struct ss_reset_body
    pub const RESET_STATE: usize = 0;
    pub const RESET_REASON: usize = 4;
    // struct ss_destroy_body
    pub const DESTROY_BORN: usize = 0;
    pub const DESTROY_ACKED: usize = 8;
    pub const DESTROY_RECEIVED: usize = 16;
    pub const DESTROY_SENT: usize = 24;
    pub const DESTROY_RETRANS_BYTES: usize = 32;
    pub const DESTROY_RETRANS: usize = 40;
    pub const DESTROY_SEGS_IN: usize = 44;
    pub const DESTROY_SEGS_OUT: usize = 48;
    pub const DESTROY_SRTT: usize = 52;
    // struct ss_drop_body
    pub const DROP_REASON: usize = 0;
    pub const DROP_LEN: usize = 4;
    pub const DROP_LOCATION: usize = 8;
    pub const DROP_FLAGS: usize = 16;
    pub const DROP_RX_SK: usize = 17;
    // struct ss_sys_body
    pub const SYS_SYS: usize = 0;
    pub const SYS_ADDR_FAMILY: usize = 2;
    pub const SYS_FD: usize = 4;
    pub const SYS_RET: usize = 8;
    pub const SYS_DUR: usize = 16;
    pub const SYS_ARG: usize = 24;
    pub const SYS_ADDR: usize = 48;
    pub const SYS_ADDR_PORT: usize = 64;
    // struct ss_io_body
    pub const IO_SYS: usize = 0;
    pub const IO_FD: usize = 4;
    pub const IO_RET: usize = 8;
    pub const IO_FLAGS: usize = 12;
    // struct ss_packet_body
    pub const PKT_DIR: usize = 0;
    pub const PKT_FLAGS: usize = 1;
    pub const PKT_WSCALE: usize = 2;
    pub const PKT_OPTS: usize = 3;
    pub const PKT_IFINDEX: usize = 4;
    pub const PKT_SEQ: usize = 8;
    pub const PKT_ACK: usize = 12;
    pub const PKT_LEN: usize = 16;
    pub const PKT_WINDOW: usize = 20;
    pub const PKT_MSS: usize = 22;
    pub const PKT_SACK_N: usize = 24;
    pub const PKT_SOFTIRQ: usize = 25;
    pub const PKT_TSVAL: usize = 28;
    pub const PKT_TSECR: usize = 32;
    pub const PKT_SACK: usize = 36;
    // struct ss_wait_body
    pub const WAIT_SYS: usize = 0;
    pub const WAIT_PHASE: usize = 2;
    pub const WAIT_CAUSE: usize = 3;
    pub const WAIT_WAKER: usize = 4;
    pub const WAIT_RET: usize = 8;
    pub const WAIT_DUR: usize = 16;
    pub const WAIT_WAKE_NS: usize = 24;
    pub const WAIT_CAUSE_NS: usize = 32;
    pub const WAIT_WAKE_CPU: usize = 40;
    pub const WAIT_ARG: usize = 44;
}

/// `SS_WAIT_ENTER` / `SS_WAIT_EXIT` (struct ss_wait_body's phase).
pub const WAIT_ENTER: u8 = 1;
pub const WAIT_EXIT: u8 = 2;

/// `SS_PKT_IN` / `SS_PKT_OUT` (struct ss_packet_body's dir).
pub const PKT_IN: u8 = 1;
pub const PKT_OUT: u8 = 2;
/// `SS_PKT_*` option bits (struct ss_packet_body's opts).
pub const PKT_SACK_PERM: u8 = 1;
pub const PKT_TS: u8 = 2;
pub const PKT_MSS: u8 = 4;
pub const PKT_WSCALE: u8 = 8;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RawEvent {
        let mut body = [0u8; 72];
        body[0] = 10;
        body[4] = 3;
        RawEvent {
            kind: Kind::State,
            family: AF_INET,
            state: 3,
            sport: 5000,
            dport: 40312,
            ts_ns: 123_456_789,
            sk: 0xffff_8881_0000_1000,
            cookie: 42,
            netns: 4026532000,
            pid: 77,
            tid: 0,
            fd: -1,
            saddr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            daddr: [127, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            comm: *b"ncat\0\0\0\0\0\0\0\0\0\0\0\0",
            owner_src: OwnerSrc::Listener,
            protocol: IPPROTO_TCP,
            flags: 0,
            cpu: 1,
            body,
        }
    }

    #[test]
    fn decode_is_the_inverse_of_encode() {
        let e = sample();
        let b = e.encode();
        assert_eq!(RawEvent::decode(&b), Ok(e.clone()));
        assert_eq!(e.comm(), "ncat");
        assert_eq!(e.local_ip(), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(e.peer_ip(), Some("127.0.0.2".parse().unwrap()));
        assert_eq!(e.b_u32(body::STATE_OLD), 10);
        assert_eq!(e.b_u32(body::STATE_NEW), 3);
    }

    #[test]
    fn layout_offsets_match_event_h() {
        // Hand-placed bytes at the offsets event.h documents.
        let mut b = [0u8; EVENT_SIZE];
        b[0] = EVENT_VERSION;
        b[1] = Kind::Syscall as u8;
        b[2] = AF_INET6;
        b[4..6].copy_from_slice(&8080u16.to_le_bytes());
        b[16..24].copy_from_slice(&7u64.to_le_bytes());
        b[36..40].copy_from_slice(&1234u32.to_le_bytes());
        b[44..48].copy_from_slice(&(-1i32).to_le_bytes());
        b[80..84].copy_from_slice(b"nc\0\0");
        b[104..106].copy_from_slice(&4u16.to_le_bytes());
        b[112..120].copy_from_slice(&(-11i64).to_le_bytes());
        let e = RawEvent::decode(&b).unwrap();
        assert_eq!(e.kind, Kind::Syscall);
        assert_eq!(e.family, AF_INET6);
        assert_eq!((e.sport, e.sk, e.pid, e.fd), (8080, 7, 1234, -1));
        assert_eq!(e.comm(), "nc");
        assert_eq!(Sys::from_u16(e.b_u16(body::SYS_SYS)), Sys::Accept);
        assert_eq!(e.b_i64(body::SYS_RET), -11);
    }

    #[test]
    fn bad_records_are_errors() {
        let mut b = sample().encode();
        assert_eq!(RawEvent::decode(&b[..100]), Err(DecodeError::Size(100)));
        b[0] = 9;
        assert_eq!(RawEvent::decode(&b), Err(DecodeError::Version(9)));
        b[0] = EVENT_VERSION;
        b[1] = 99;
        assert_eq!(RawEvent::decode(&b), Err(DecodeError::Kind(99)));
    }

    #[test]
    fn syscall_numbering_matches_event_h() {
        assert_eq!(Sys::from_u16(9), Sys::Close);
        assert_eq!(Sys::from_u16(12), Sys::Sendto);
        assert_eq!(Sys::from_u16(21), Sys::Splice);
        assert_eq!(Sys::from_u16(500), Sys::Other);
        for (i, k) in Kind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i + 1);
            assert_eq!(Kind::from_u8(i as u8 + 1), Some(*k));
        }
    }
}
