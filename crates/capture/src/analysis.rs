//! TCP conversation analysis with Wireshark's definitions.
//!
//! [`Analyzer::process`] takes decoded packets in capture order and keeps,
//! per conversation and per direction, the same state Wireshark 4.0's TCP
//! dissector keeps (`tcp_analyze_sequence_number` in packet-tcp.c): the
//! base sequence number, the highest sequence seen (`nextseq`), the highest
//! contiguous sequence to be acknowledged, the last ACK and window, the
//! duplicate-ACK counter and a bounded list of unacknowledged segments. From
//! it each packet gets its stream index, relative sequence and
//! acknowledgement numbers, scaled window and analysis flags:
//!
//! | flag | Wireshark field | definition |
//! | --- | --- | --- |
//! | [`flags::RETRANSMISSION`] | `tcp.analysis.retransmission` | carries data (or SYN/FIN) but does not advance the sequence |
//! | [`flags::FAST_RETRANSMISSION`] | `tcp.analysis.fast_retransmission` | ... and at least 2 duplicate ACKs for this seq came in the last 20 ms |
//! | [`flags::SPURIOUS_RETRANSMISSION`] | `tcp.analysis.spurious_retransmission` | all of its data was already acknowledged |
//! | [`flags::OUT_OF_ORDER`] | `tcp.analysis.out_of_order` | does not advance the sequence, sent within one handshake RTT (3 ms if unknown) of the highest segment |
//! | [`flags::LOST_SEGMENT`] | `tcp.analysis.lost_segment` | starts beyond the highest sequence seen: a segment before it was not captured |
//! | [`flags::ACK_LOST_SEGMENT`] | `tcp.analysis.ack_lost_segment` | acknowledges data that was never captured |
//! | [`flags::DUPLICATE_ACK`] | `tcp.analysis.duplicate_ack` | no data, same seq, ack and window as the previous segment |
//! | [`flags::ZERO_WINDOW`] | `tcp.analysis.zero_window` | window 0, no SYN/FIN/RST |
//! | [`flags::ZERO_WINDOW_PROBE`] | `tcp.analysis.zero_window_probe` | 1 byte at the next sequence while the peer's window is 0 |
//! | [`flags::ZERO_WINDOW_PROBE_ACK`] | `tcp.analysis.zero_window_probe_ack` | repeats the ACK and zero window after a probe |
//! | [`flags::WINDOW_FULL`] | `tcp.analysis.window_full` | data that reaches exactly the edge of the peer's advertised window |
//! | [`flags::WINDOW_UPDATE`] | `tcp.analysis.window_update` | no data, same seq and ack, window changed |
//! | [`flags::KEEP_ALIVE`] | `tcp.analysis.keep_alive` | 0 or 1 byte starting one byte before the next sequence |
//! | [`flags::KEEP_ALIVE_ACK`] | `tcp.analysis.keep_alive_ack` | repeats the ACK after a keep-alive |
//! | [`flags::REUSED_PORTS`] | `tcp.analysis.reused_ports` | a SYN with a new ISN on a 4-tuple already seen: a new stream |
//!
//! Wireshark also sets `tcp.analysis.retransmission` on fast and spurious
//! retransmissions; [`flags::wireshark_fields`] lists the fields a packet
//! carries in that sense.
//!
//! A conversation ([`Conversation`]) also collects what the `--conv` table
//! shows: endpoints (the client is whoever sent the first SYN), packets and
//! bytes each way, ISNs, MSS and window scale offered, the handshake RTT
//! (Wireshark's `tcp.analysis.initial_rtt`: SYN to the first pure ACK), flag
//! counts and how it ended. UDP flows get packet and byte counts.
//!
//! State is per conversation; the unacknowledged-segment list is capped at
//! 10 000 entries per direction, as in Wireshark.
//!
//! Stream numbers ([`Info::Seen`], [`Analyzer::number_seen`]): Wireshark
//! gives a `tcp.stream` (`udp.stream`) to every TCP (UDP) header it
//! dissects, also those it does not analyse: the start of a packet quoted
//! in an ICMP or ICMPv6 error, packet headers sampled by sFlow, and a TCP
//! header of which at least the first 16 bytes (ports to window) are there
//! but that is cut short or has a bad length field. Each such header takes
//! the index of its conversation (by addresses and ports), or, when the
//! conversation has no packet yet, the next index, which the
//! conversation's first packet then carries; it changes no analysis
//! state (no base sequence, so a later SYN with any ISN keeps that index).
//! The JSON carries these indices (`icmp.quoted.stream`,
//! `partial_tcp.stream`, `sampled[].stream`), so every index agrees with
//! tshark's. Conversations known only from such headers are remembered up
//! to [`MAX_SEEN`] and are not counted as conversations.

use crate::decode::{Net, Packet, Transport, tcpflag as tf};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

/// Analysis flag bits ([`TcpInfo::flags`]).
pub mod flags {
    pub const RETRANSMISSION: u32 = 1 << 0;
    pub const FAST_RETRANSMISSION: u32 = 1 << 1;
    pub const SPURIOUS_RETRANSMISSION: u32 = 1 << 2;
    pub const OUT_OF_ORDER: u32 = 1 << 3;
    pub const LOST_SEGMENT: u32 = 1 << 4;
    pub const ACK_LOST_SEGMENT: u32 = 1 << 5;
    pub const DUPLICATE_ACK: u32 = 1 << 6;
    pub const ZERO_WINDOW: u32 = 1 << 7;
    pub const ZERO_WINDOW_PROBE: u32 = 1 << 8;
    pub const ZERO_WINDOW_PROBE_ACK: u32 = 1 << 9;
    pub const WINDOW_FULL: u32 = 1 << 10;
    pub const WINDOW_UPDATE: u32 = 1 << 11;
    pub const KEEP_ALIVE: u32 = 1 << 12;
    pub const KEEP_ALIVE_ACK: u32 = 1 << 13;
    pub const REUSED_PORTS: u32 = 1 << 14;

    /// (bit, JSON / field name, Wireshark's info-column label), in the
    /// order Wireshark prints the labels.
    pub const ALL: [(u32, &str, &str); 15] = [
        (REUSED_PORTS, "reused_ports", "TCP Port numbers reused"),
        (RETRANSMISSION, "retransmission", "TCP Retransmission"),
        (
            FAST_RETRANSMISSION,
            "fast_retransmission",
            "TCP Fast Retransmission",
        ),
        (
            SPURIOUS_RETRANSMISSION,
            "spurious_retransmission",
            "TCP Spurious Retransmission",
        ),
        (OUT_OF_ORDER, "out_of_order", "TCP Out-Of-Order"),
        (
            LOST_SEGMENT,
            "lost_segment",
            "TCP Previous segment not captured",
        ),
        (
            ACK_LOST_SEGMENT,
            "ack_lost_segment",
            "TCP ACKed unseen segment",
        ),
        (WINDOW_UPDATE, "window_update", "TCP Window Update"),
        (WINDOW_FULL, "window_full", "TCP Window Full"),
        (KEEP_ALIVE, "keep_alive", "TCP Keep-Alive"),
        (KEEP_ALIVE_ACK, "keep_alive_ack", "TCP Keep-Alive ACK"),
        (DUPLICATE_ACK, "duplicate_ack", "TCP Dup ACK"),
        (
            ZERO_WINDOW_PROBE,
            "zero_window_probe",
            "TCP ZeroWindowProbe",
        ),
        (ZERO_WINDOW, "zero_window", "TCP ZeroWindow"),
        (
            ZERO_WINDOW_PROBE_ACK,
            "zero_window_probe_ack",
            "TCP ZeroWindowProbeAck",
        ),
    ];

    /// The `tcp.analysis.*` field names (without the prefix) present on a
    /// packet with these flags: fast and spurious retransmissions are also
    /// retransmissions.
    pub fn wireshark_fields(f: u32) -> impl Iterator<Item = &'static str> {
        let f = if f & (FAST_RETRANSMISSION | SPURIOUS_RETRANSMISSION) != 0 {
            f | RETRANSMISSION
        } else {
            f
        };
        ALL.iter()
            .filter(move |(b, _, _)| f & b != 0)
            .map(|(_, n, _)| *n)
    }
}

const MAX_UNACKED: usize = 10_000;

fn gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}
fn lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}
fn le(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}

/// `now - then` in nanoseconds, as Wireshark's unsigned arithmetic sees it
/// (a negative difference is enormous).
fn since(now: u64, then: u64) -> u64 {
    now.checked_sub(then).unwrap_or(u64::MAX)
}

/// A small, fast hasher for conversation keys (FxHash's multiply-rotate).
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(n as u64)
    }
    fn write_u16(&mut self, n: u16) {
        self.write_u64(n as u64)
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(n as u64)
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64)
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub type FxBuild = BuildHasherDefault<FxHasher>;

/// An (address, port) endpoint in compact form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ep {
    /// IPv4 addresses are stored as IPv4-mapped IPv6.
    pub addr: [u8; 16],
    pub port: u16,
    pub v6: bool,
}

impl Ep {
    pub fn ip(&self) -> IpAddr {
        if self.v6 {
            IpAddr::from(self.addr)
        } else {
            IpAddr::from([self.addr[12], self.addr[13], self.addr[14], self.addr[15]])
        }
    }
}

impl Serialize for Ep {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Ep", 2)?;
        st.serialize_field("addr", &self.ip())?;
        st.serialize_field("port", &self.port)?;
        st.end()
    }
}

/// Source and destination endpoints of a TCP or UDP packet.
pub fn endpoints(p: &Packet) -> Option<(Ep, Ep)> {
    let (sport, dport) = p.ports()?;
    match &p.net {
        Net::Ipv4(h) => {
            let m = |a: std::net::Ipv4Addr| a.to_ipv6_mapped().octets();
            Some((
                Ep {
                    addr: m(h.src),
                    port: sport,
                    v6: false,
                },
                // Wireshark keys the conversation on a source route's
                // final destination.
                Ep {
                    addr: m(h.route_dst.unwrap_or(h.dst)),
                    port: dport,
                    v6: false,
                },
            ))
        }
        Net::Ipv6(h) => Some((
            Ep {
                addr: h.src.octets(),
                port: sport,
                v6: true,
            },
            Ep {
                addr: h.dst.octets(),
                port: dport,
                v6: true,
            },
        )),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    lo: Ep,
    hi: Ep,
    udp: bool,
}

impl Key {
    /// The key, and whether `src` is the `lo` side.
    fn of(src: Ep, dst: Ep, udp: bool) -> (Key, bool) {
        if (src.addr, src.port) <= (dst.addr, dst.port) {
            (
                Key {
                    lo: src,
                    hi: dst,
                    udp,
                },
                true,
            )
        } else {
            (
                Key {
                    lo: dst,
                    hi: src,
                    udp,
                },
                false,
            )
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Unacked {
    frame: u64,
    seq: u32,
    nextseq: u32,
    ts: u64,
}

/// Per-direction state (Wireshark's `tcp_flow_t` and its analysis info).
#[derive(Clone, Debug)]
struct Flow {
    base_seq: u32,
    base_set: bool,
    /// -1 unknown, -2 no scaling, else the shift.
    win_scale: i8,
    window: u32,
    is_first_ack: bool,
    nextseq: u32,
    nextseqframe: u64,
    nextseqtime: u64,
    maxseqtobeacked: u32,
    lastack: u32,
    lastacktime: u64,
    lastnondupack: u64,
    dupacknum: i32,
    lastsegmentflags: u32,
    segments: VecDeque<Unacked>,
    valid_bif: bool,
    push_bytes_sent: u32,
    push_set_last: bool,
    /// SACK blocks of this direction's latest segment (at most 3 counted,
    /// as Wireshark does).
    sack: [(u32, u32); 3],
    nsack: u8,
}

impl Flow {
    fn new() -> Flow {
        Flow {
            base_seq: 0,
            base_set: false,
            win_scale: -1,
            window: u32::MAX,
            is_first_ack: false,
            nextseq: 0,
            nextseqframe: 0,
            nextseqtime: 0,
            maxseqtobeacked: 0,
            lastack: 0,
            lastacktime: 0,
            lastnondupack: 0,
            dupacknum: 0,
            lastsegmentflags: 0,
            segments: VecDeque::new(),
            valid_bif: true,
            push_bytes_sent: 0,
            push_set_last: false,
            sack: [(0, 0); 3],
            nsack: 0,
        }
    }
}

/// Counters and facts for one direction of a conversation.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DirStats {
    pub packets: u64,
    /// Bytes on the wire (frame lengths), as `tshark -z conv` counts them.
    pub bytes: u64,
    /// TCP/UDP payload bytes.
    pub payload_bytes: u64,
    /// Initial sequence number, when this side's SYN was seen.
    pub isn: Option<u32>,
    /// MSS option offered in the SYN.
    pub mss: Option<u16>,
    /// Window scale shift offered in the SYN.
    pub wscale: Option<u8>,
    pub sack_permitted: bool,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub retransmissions: u32,
    pub fast_retransmissions: u32,
    pub spurious_retransmissions: u32,
    pub out_of_order: u32,
    pub lost_segments: u32,
    pub ack_lost_segments: u32,
    pub duplicate_acks: u32,
    pub zero_windows: u32,
    pub zero_window_probes: u32,
    pub window_full: u32,
    pub window_updates: u32,
    pub keep_alives: u32,
}

/// How a conversation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// FIN from both sides.
    Fin,
    /// FIN from one side only.
    HalfClosed,
    /// Reset.
    Rst,
    /// Still open at the end of the capture (or UDP).
    Open,
}

impl End {
    pub fn name(self) -> &'static str {
        match self {
            End::Fin => "FIN",
            End::HalfClosed => "half-closed",
            End::Rst => "RST",
            End::Open => "open",
        }
    }
}

/// One TCP conversation or UDP flow: what the `--conv` table and the JSON
/// conversation objects show (the analysis state lives in the tracker).
#[derive(Clone, Debug)]
pub struct Conversation {
    pub udp: bool,
    /// Stream index (Wireshark's `tcp.stream` / `udp.stream`).
    pub stream: u32,
    /// The side that sent the first SYN; without a handshake, the side on
    /// the higher port (the first sender when ports are equal).
    pub client: Ep,
    pub server: Ep,
    pub first_frame: u64,
    pub last_frame: u64,
    pub start_ns: u64,
    pub end_ns: u64,
    /// Client to server, server to client.
    pub c2s: DirStats,
    pub s2c: DirStats,
    /// SYN to first pure ACK (Wireshark's initial RTT), ns.
    pub handshake_rtt_ns: Option<u64>,
    /// SYN to SYN-ACK, ns.
    pub synack_ns: Option<u64>,
    /// Which side sent the first FIN: true for the client.
    pub closed_by_client: Option<bool>,
    /// Which side sent the first RST: true for the client.
    pub reset_by_client: Option<bool>,
}

impl Conversation {
    pub fn end(&self) -> End {
        if self.c2s.rst || self.s2c.rst {
            End::Rst
        } else if self.c2s.fin && self.s2c.fin {
            End::Fin
        } else if self.c2s.fin || self.s2c.fin {
            End::HalfClosed
        } else {
            End::Open
        }
    }
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
    pub fn packets(&self) -> u64 {
        self.c2s.packets + self.s2c.packets
    }
    pub fn bytes(&self) -> u64 {
        self.c2s.bytes + self.s2c.bytes
    }
    /// Retransmissions of every kind, both directions.
    pub fn retransmissions(&self) -> u64 {
        u64::from(self.c2s.retransmissions) + u64::from(self.s2c.retransmissions)
    }
}

/// What the analysis says about one TCP packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpInfo {
    pub stream: u32,
    /// Sent by the conversation's client.
    pub from_client: bool,
    /// The base subtracted from seq (the ISN, or first seq - 1).
    pub seq_base: u32,
    /// The base subtracted from ack and SACK edges.
    pub ack_base: u32,
    pub seq_rel: u32,
    /// Relative when the ACK flag is set, else the raw field.
    pub ack_rel: u32,
    pub next_seq_rel: u32,
    pub seg_len: u32,
    /// Window after scaling (Wireshark's `tcp.window_size`).
    pub window: u32,
    /// Analysis flag bits ([`flags`]).
    pub flags: u32,
    pub dup_ack_num: u32,
    pub dup_ack_frame: u64,
    /// The frame this packet acknowledges, 0 if none.
    pub acks_frame: u64,
    /// Time since that frame, ns (0 if none); negative when the
    /// timestamps go backwards, as Wireshark shows it.
    pub ack_rtt_ns: i64,
    /// Bytes in flight after this segment, 0 if not computed.
    pub bytes_in_flight: u32,
    pub push_bytes_sent: u32,
    /// For retransmissions: time since the original, and its frame.
    pub rto_ns: u64,
    pub rto_frame: u64,
}

/// What the analysis says about a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Info {
    Tcp(TcpInfo),
    /// A UDP packet of flow `stream`.
    Udp {
        stream: u32,
        from_client: bool,
    },
    /// A TCP (or, with `udp`, UDP) header that is not the packet's own
    /// segment but that Wireshark dissects and numbers: quoted in an ICMP
    /// error, or a TCP header cut short ([`crate::decode::PartialTcp`]).
    /// `stream` is the index of its conversation, which it starts (for the
    /// stream numbers only) when it is new.
    Seen {
        stream: u32,
        udp: bool,
    },
    None,
}

/// Conversations followed at once by default ([`Analyzer::with_limits`]).
pub const DEFAULT_MAX_TRACKED: usize = 262_144;

/// The analysis state of one followed conversation: a slot of the
/// tracker's pool, found through the hash table by its key.
#[derive(Clone, Debug)]
struct Track {
    key: Key,
    /// Conversation number (order of first packet, TCP and UDP together):
    /// the index in [`Analyzer::conversations`] when summaries are kept.
    conv: u32,
    stream: u32,
    /// Whether the `lo` side of the key is the client.
    lo_is_client: bool,
    /// A packet of this conversation was seen.
    seen: bool,
    /// Used since the clock hand last passed (second-chance eviction).
    recent: bool,
    synack_seen: bool,
    flows: [Flow; 2],
    ts_mru_syn: u64,
    ts_first_rtt: u64,
    syn_ts: Option<u64>,
}

impl Track {
    fn new(key: Key, conv: u32, stream: u32, lo_is_client: bool) -> Track {
        Track {
            key,
            conv,
            stream,
            lo_is_client,
            seen: false,
            recent: false,
            synack_seen: false,
            flows: [Flow::new(), Flow::new()],
            ts_mru_syn: 0,
            ts_first_rtt: 0,
            syn_ts: None,
        }
    }
}

/// Counts of the tracker ([`Analyzer::tracking`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tracking {
    /// Conversations seen (TCP and UDP).
    pub conversations: u64,
    /// Conversations followed right now.
    pub tracked: usize,
    /// The most followed at once (`--max-tracked`).
    pub max_tracked: usize,
    /// Conversations whose analysis state was dropped to make room for a
    /// new one; a later packet of one of them starts a new stream.
    pub evicted: u64,
}

/// Follows the conversations of a capture.
///
/// Memory: the analysis state of at most `max_tracked` conversations (a
/// pool of slots; when it is full the least recently used one, by the
/// clock algorithm, is dropped and counted in [`Tracking::evicted`]), plus,
/// only when asked for, one compact [`Conversation`] summary per
/// conversation for the table and JSON.
pub struct Analyzer {
    map: HashMap<Key, u32, FxBuild>,
    slots: Vec<Track>,
    hand: usize,
    /// The slot of the last packet's conversation.
    last: usize,
    max_tracked: usize,
    keep_summaries: bool,
    convs: Vec<Conversation>,
    nconv: u32,
    tcp_streams: u32,
    udp_streams: u32,
    evicted: u64,
    /// Stream indices of conversations known only from headers that are
    /// numbered but not analysed ([`Info::Seen`]): the first packet of the
    /// conversation takes its index from here. At most [`MAX_SEEN`].
    seen: HashMap<Key, u32, FxBuild>,
    /// Stream indices taken by such headers and not (yet) by a packet of
    /// their conversation: TCP, UDP.
    seen_only: [u32; 2],
}

/// Conversations remembered from quoted or cut-short headers alone; past
/// this, such headers still take a new index but a later packet of their
/// conversation does not get it (it takes the next one).
pub const MAX_SEEN: usize = 65_536;

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer::new()
    }
}

impl Analyzer {
    /// Keeps a summary of every conversation, follows up to
    /// [`DEFAULT_MAX_TRACKED`] at once.
    pub fn new() -> Analyzer {
        Analyzer::with_limits(true, DEFAULT_MAX_TRACKED)
    }

    /// `keep_summaries`: keep a [`Conversation`] per conversation (for the
    /// table, JSON and diagrams; packet lines need none). `max_tracked`
    /// (at least 1): conversations followed at once.
    pub fn with_limits(keep_summaries: bool, max_tracked: usize) -> Analyzer {
        Analyzer {
            map: HashMap::default(),
            slots: Vec::new(),
            hand: 0,
            last: usize::MAX,
            max_tracked: max_tracked.max(1),
            keep_summaries,
            convs: Vec::new(),
            nconv: 0,
            tcp_streams: 0,
            udp_streams: 0,
            evicted: 0,
            seen: HashMap::default(),
            seen_only: [0, 0],
        }
    }

    /// All conversations, in order of first packet (empty when summaries
    /// are not kept).
    pub fn conversations(&self) -> &[Conversation] {
        &self.convs
    }

    /// TCP conversations (streams with a packet of their own; indices
    /// taken only by quoted, sampled or cut-short headers are not counted).
    pub fn tcp_streams(&self) -> u32 {
        self.tcp_streams - self.seen_only[0]
    }

    /// UDP flows, counted likewise.
    pub fn udp_streams(&self) -> u32 {
        self.udp_streams - self.seen_only[1]
    }

    pub fn tracking(&self) -> Tracking {
        Tracking {
            conversations: u64::from(self.nconv),
            tracked: self.map.len(),
            max_tracked: self.max_tracked,
            evicted: self.evicted,
        }
    }

    /// Conversation `i` ([`Analyzer::conversations`]).
    pub fn by_index(&self, i: usize) -> Option<&Conversation> {
        self.convs.get(i)
    }

    /// A slot for a new conversation: a new one while the pool is below
    /// its size, else the one the clock hand finds unused since its last
    /// pass (its conversation is dropped and counted).
    fn alloc_slot(&mut self, key: Key) -> usize {
        if self.slots.len() < self.max_tracked {
            self.slots.push(Track::new(key, 0, 0, true));
            return self.slots.len() - 1;
        }
        loop {
            let h = self.hand;
            self.hand = (h + 1) % self.slots.len();
            let t = &mut self.slots[h];
            if t.recent {
                t.recent = false;
            } else {
                self.map.remove(&t.key);
                self.evicted += 1;
                return h;
            }
        }
    }

    /// Start conversation `key` in slot `s` (new, or reused for a new
    /// stream on the same 4-tuple).
    fn begin(&mut self, s: usize, key: Key, src_is_lo: bool, frame: u64, ts: u64) {
        let udp = key.udp;
        let stream = match self.seen.remove(&key) {
            Some(s) => {
                self.seen_only[usize::from(udp)] -= 1;
                s
            }
            None => self.next_stream(udp),
        };
        let conv = self.nconv;
        self.nconv += 1;
        self.slots[s] = Track::new(key, conv, stream, src_is_lo);
        self.map.insert(key, s as u32);
        if self.keep_summaries {
            let (client, server) = if src_is_lo {
                (key.lo, key.hi)
            } else {
                (key.hi, key.lo)
            };
            self.convs.push(Conversation {
                udp,
                stream,
                client,
                server,
                first_frame: frame,
                last_frame: frame,
                start_ns: ts,
                end_ns: ts,
                c2s: DirStats::default(),
                s2c: DirStats::default(),
                handshake_rtt_ns: None,
                synack_ns: None,
                closed_by_client: None,
                reset_by_client: None,
            });
        }
    }

    fn next_stream(&mut self, udp: bool) -> u32 {
        let n = if udp {
            &mut self.udp_streams
        } else {
            &mut self.tcp_streams
        };
        *n += 1;
        *n - 1
    }

    /// The stream index of a TCP or UDP header that Wireshark numbers but
    /// does not analyse (quoted in an ICMP error, sampled by sFlow, a TCP
    /// header cut short): its conversation's, or a new index that the
    /// conversation's first packet then takes (Wireshark creates the
    /// conversation there). None for other protocols or without ports.
    pub fn number_seen(&mut self, h: &crate::decode::Quoted) -> Option<u32> {
        let udp = match h.proto {
            crate::decode::ipproto::TCP => false,
            crate::decode::ipproto::UDP => true,
            _ => return None,
        };
        let (sp, dp) = h.ports?;
        let ep = |a: IpAddr, port: u16| match a {
            IpAddr::V4(v) => Ep {
                addr: v.to_ipv6_mapped().octets(),
                port,
                v6: false,
            },
            IpAddr::V6(v) => Ep {
                addr: v.octets(),
                port,
                v6: true,
            },
        };
        let (key, _) = Key::of(ep(h.src, sp), ep(h.dst, dp), udp);
        let stream = if let Some(&s) = self.map.get(&key) {
            self.slots[s as usize].stream
        } else if let Some(&s) = self.seen.get(&key) {
            s
        } else {
            let s = self.next_stream(udp);
            self.seen_only[usize::from(udp)] += 1;
            if self.seen.len() < MAX_SEEN {
                self.seen.insert(key, s);
            }
            s
        };
        Some(stream)
    }

    /// The slot of `key`, starting a conversation when it has none.
    fn slot(&mut self, key: Key, src_lo: bool, frame: u64, ts: u64) -> usize {
        // A conversation's second packet marks it used: one-packet
        // conversations (scans, lone SYNs) are the first to go.
        // Packets come in bursts of one conversation: the slot of the last
        // packet is tried first (a slot holds a key's state exactly while
        // the table maps the key to it).
        if let Some(t) = self.slots.get_mut(self.last)
            && t.key == key
        {
            t.recent = true;
            return self.last;
        }
        let s = match self.map.get(&key) {
            Some(&s) => {
                self.slots[s as usize].recent = true;
                s as usize
            }
            None => {
                let s = self.alloc_slot(key);
                self.begin(s, key, src_lo, frame, ts);
                s
            }
        };
        self.last = s;
        s
    }

    /// Analyse one packet; `frame` is its 1-based number in the capture.
    /// The number returned with it is its conversation's (the index in
    /// [`Analyzer::conversations`] when summaries are kept).
    pub fn process(&mut self, frame: u64, p: &Packet) -> (Info, Option<usize>) {
        let Some((src, dst)) = endpoints(p) else {
            // An ICMP error quoting a TCP or UDP header, a TCP header cut
            // short.
            return match crate::decode::numbered_header(p) {
                Some(h) => match self.number_seen(&h) {
                    Some(stream) => (
                        Info::Seen {
                            stream,
                            udp: h.proto == crate::decode::ipproto::UDP,
                        },
                        None,
                    ),
                    None => (Info::None, None),
                },
                None => (Info::None, None),
            };
        };
        match &p.transport {
            Transport::Tcp(t) => {
                let (key, src_lo) = Key::of(src, dst, false);
                let t = *t;
                let (info, idx) = self.tcp(frame, p, key, src_lo, &t);
                (Info::Tcp(info), Some(idx))
            }
            Transport::Udp(u) => {
                let (key, src_lo) = Key::of(src, dst, true);
                let s = self.slot(key, src_lo, frame, p.ts_ns);
                let tr = &mut self.slots[s];
                tr.seen = true;
                let from_client = src_lo == tr.lo_is_client;
                let (stream, conv) = (tr.stream, tr.conv);
                if let Some(c) = self.convs.get_mut(conv as usize) {
                    c.last_frame = frame;
                    c.end_ns = c.end_ns.max(p.ts_ns);
                    let d = if from_client { &mut c.c2s } else { &mut c.s2c };
                    d.packets += 1;
                    d.bytes += p.wire_len as u64;
                    d.payload_bytes += u.payload_len as u64;
                }
                (
                    Info::Udp {
                        stream,
                        from_client,
                    },
                    Some(conv as usize),
                )
            }
            _ => (Info::None, None),
        }
    }

    fn tcp(
        &mut self,
        frame: u64,
        p: &Packet,
        key: Key,
        src_lo: bool,
        t: &crate::decode::Tcp,
    ) -> (TcpInfo, usize) {
        let now = p.ts_ns;
        let syn = t.has(tf::SYN);
        let ackf = t.has(tf::ACK);
        let mut ta: u32 = 0;
        let s = self.slot(key, src_lo, frame, now);
        // Flow index: 0 for packets from the `lo` side.
        let fi = if src_lo { 0 } else { 1 };
        let ri = 1 - fi;

        // A SYN with a new ISN on a known 4-tuple starts a new stream; the
        // same ISN is a retransmitted SYN (restore nextseq, RFC 793 3.4).
        if syn && !ackf {
            let f = &mut self.slots[s].flows[fi];
            if f.base_set && t.seq == f.base_seq {
                f.nextseq = f.maxseqtobeacked;
            } else if f.base_set {
                self.begin(s, key, src_lo, frame, now);
                ta |= flags::REUSED_PORTS;
            }
        }
        let keep = self.keep_summaries;
        let tr = &mut self.slots[s];
        let mut summary = if keep {
            self.convs.get_mut(tr.conv as usize)
        } else {
            None
        };
        if syn && ackf {
            let f = &mut tr.flows[fi];
            if f.base_set && t.seq != f.base_seq {
                f.base_seq = t.seq;
                ta |= flags::REUSED_PORTS;
            }
        }
        // The first packet is a SYN-ACK: its sender is the server. Without
        // a handshake, guess that the side on the lower port is the server.
        let (sport, dport) = (t.sport, t.dport);
        if !tr.seen && ((syn && ackf) || (!syn && sport < dport)) {
            if let Some(c) = summary.as_deref_mut() {
                std::mem::swap(&mut c.client, &mut c.server);
            }
            tr.lo_is_client = !tr.lo_is_client;
        }
        tr.seen = true;
        let from_client = src_lo == tr.lo_is_client;

        // Base sequence numbers.
        {
            let (a, b) = tr.flows.split_at_mut(1);
            let (fwd, rev) = if fi == 0 {
                (&mut a[0], &mut b[0])
            } else {
                (&mut b[0], &mut a[0])
            };
            if !fwd.base_set {
                fwd.base_seq = if syn { t.seq } else { t.seq.wrapping_sub(1) };
                fwd.base_set = true;
            }
            if !rev.base_set && ackf {
                rev.base_seq = t.ack.wrapping_sub(1);
                rev.base_set = true;
            }
            fwd.nsack = 0;
        }

        let mut info = TcpInfo {
            stream: tr.stream,
            from_client,
            ..TcpInfo::default()
        };
        analyze_seq(tr, fi, frame, now, t, &mut ta, &mut info);

        let fwd_base = tr.flows[fi].base_seq;
        let rev_base = tr.flows[ri].base_seq;
        info.seq_base = fwd_base;
        info.ack_base = rev_base;
        info.seq_rel = t.seq.wrapping_sub(fwd_base);
        info.ack_rel = if ackf {
            t.ack.wrapping_sub(rev_base)
        } else {
            t.ack
        };
        info.seg_len = t.payload_len;
        let sf = if t.flags & (tf::SYN | tf::FIN) != 0 {
            1
        } else {
            0
        };
        info.next_seq_rel = info.seq_rel.wrapping_add(t.payload_len).wrapping_add(sf);
        let ws = tr.flows[fi].win_scale;
        info.window = if !syn && ws >= 0 {
            (t.window as u32) << ws
        } else {
            t.window as u32
        };
        info.flags = ta;

        if syn {
            if !ackf {
                tr.ts_mru_syn = now;
                if tr.syn_ts.is_none() {
                    tr.syn_ts = Some(now);
                }
            } else if !tr.synack_seen
                && let Some(s) = tr.syn_ts
            {
                tr.synack_seen = true;
                if let Some(c) = summary.as_deref_mut() {
                    c.synack_ns = Some(now.saturating_sub(s));
                }
            }
            tr.flows[fi].is_first_ack = true;
        }
        if t.flags & (tf::SYN | tf::ACK) == tf::ACK {
            if tr.ts_mru_syn != 0 && tr.ts_first_rtt == 0 {
                tr.ts_first_rtt = now.saturating_sub(tr.ts_mru_syn);
                if tr.ts_first_rtt != 0
                    && let Some(c) = summary.as_deref_mut()
                {
                    c.handshake_rtt_ns = Some(tr.ts_first_rtt);
                }
            }
            tr.flows[fi].is_first_ack = false;
        }

        // Options: SACK blocks of this segment, window scale.
        let mut nsack = 0usize;
        let mut wscale = None;
        for o in t.options.iter() {
            match o {
                crate::decode::TcpOption::Sack { blocks, count } => {
                    for b in blocks.iter().take(count as usize) {
                        if nsack < 3 {
                            tr.flows[fi].sack[nsack] = *b;
                            nsack += 1;
                        }
                    }
                }
                crate::decode::TcpOption::WindowScale(s) => wscale = Some(s),
                _ => {}
            }
        }
        tr.flows[fi].nsack = nsack as u8;
        if let Some(s) = wscale {
            tr.flows[fi].win_scale = s.min(14) as i8;
        }
        if syn {
            // Window scaling is used only if both SYNs offered it.
            let rev_ws = tr.flows[ri].win_scale;
            if tr.flows[fi].win_scale == -1 {
                tr.flows[fi].win_scale = -2;
                tr.flows[ri].win_scale = -2;
            } else if ackf && rev_ws == -2 {
                tr.flows[fi].win_scale = -2;
            }
        }
        let conv = tr.conv as usize;

        // Summary.
        if let Some(c) = summary {
            c.last_frame = frame;
            c.end_ns = c.end_ns.max(now);
            let d = if from_client { &mut c.c2s } else { &mut c.s2c };
            d.packets += 1;
            d.bytes += p.wire_len as u64;
            d.payload_bytes += t.payload_len as u64;
            if syn {
                d.syn = true;
                if d.isn.is_none() {
                    d.isn = Some(t.seq);
                    d.mss = t.options.mss();
                    d.wscale = t.options.window_scale();
                    d.sack_permitted = t.options.sack_permitted();
                }
            }
            if t.has(tf::FIN) {
                d.fin = true;
                if c.closed_by_client.is_none() {
                    c.closed_by_client = Some(from_client);
                }
            }
            if t.has(tf::RST) {
                d.rst = true;
                if c.reset_by_client.is_none() {
                    c.reset_by_client = Some(from_client);
                }
            }
            let d = if from_client { &mut c.c2s } else { &mut c.s2c };
            let count = |n: &mut u32, bit: u32| {
                if ta & bit != 0 {
                    *n = n.saturating_add(1);
                }
            };
            count(
                &mut d.retransmissions,
                flags::RETRANSMISSION | flags::FAST_RETRANSMISSION | flags::SPURIOUS_RETRANSMISSION,
            );
            count(&mut d.fast_retransmissions, flags::FAST_RETRANSMISSION);
            count(
                &mut d.spurious_retransmissions,
                flags::SPURIOUS_RETRANSMISSION,
            );
            count(&mut d.out_of_order, flags::OUT_OF_ORDER);
            count(&mut d.lost_segments, flags::LOST_SEGMENT);
            count(&mut d.ack_lost_segments, flags::ACK_LOST_SEGMENT);
            count(&mut d.duplicate_acks, flags::DUPLICATE_ACK);
            count(&mut d.zero_windows, flags::ZERO_WINDOW);
            count(&mut d.zero_window_probes, flags::ZERO_WINDOW_PROBE);
            count(&mut d.window_full, flags::WINDOW_FULL);
            count(&mut d.window_updates, flags::WINDOW_UPDATE);
            count(&mut d.keep_alives, flags::KEEP_ALIVE);
        }
        (info, conv)
    }
}
/// Wireshark's `tcp_analyze_sequence_number`, on conversation `c` for a
/// segment in direction `fi`.
#[allow(clippy::too_many_arguments)]
fn analyze_seq(
    c: &mut Track,
    fi: usize,
    frame: u64,
    now: u64,
    t: &crate::decode::Tcp,
    ta: &mut u32,
    info: &mut TcpInfo,
) {
    use flags::*;
    let seq = t.seq;
    let ack = t.ack;
    let seglen = t.payload_len;
    let fl = t.flags;
    let window = t.window as u32;
    let no_sfr = fl & (tf::SYN | tf::FIN | tf::RST) == 0;
    let first_rtt = c.ts_first_rtt;
    let (a, b) = c.flows.split_at_mut(1);
    let (fwd, rev) = if fi == 0 {
        (&mut a[0], &mut b[0])
    } else {
        (&mut b[0], &mut a[0])
    };

    if fl & tf::ACK != 0 {
        rev.valid_bif = true;
    }

    'fwd: {
        // Zero window probe.
        if seglen == 1 && seq == fwd.nextseq && rev.window == 0 {
            *ta |= ZERO_WINDOW_PROBE;
            break 'fwd;
        }
        if window == 0 && no_sfr {
            *ta |= ZERO_WINDOW;
        }
        // Previous segment not captured.
        if fwd.nextseq != 0 && gt(seq, fwd.nextseq) && fl & tf::RST == 0 {
            *ta |= LOST_SEGMENT;
            fwd.valid_bif = false;
        }
        // Keep-alive.
        if (seglen == 0 || seglen == 1) && seq == fwd.nextseq.wrapping_sub(1) && no_sfr {
            *ta |= KEEP_ALIVE;
        }
        // Window update.
        if seglen == 0
            && window != 0
            && window != fwd.window
            && seq == fwd.nextseq
            && ack == fwd.lastack
            && no_sfr
        {
            *ta |= WINDOW_UPDATE;
        }
        // Window full.
        if seglen > 0 && rev.win_scale != -1 && no_sfr {
            let shift = if rev.is_first_ack || rev.win_scale == -2 {
                0
            } else {
                rev.win_scale as u32
            };
            if seq.wrapping_add(seglen) == rev.lastack.wrapping_add(rev.window.wrapping_shl(shift))
            {
                *ta |= WINDOW_FULL;
            }
        }
        let repeats = seglen == 0 && seq == fwd.nextseq && ack == fwd.lastack && no_sfr;
        // Keep-alive ACK.
        if repeats && window != 0 && window == fwd.window && rev.lastsegmentflags & KEEP_ALIVE != 0
        {
            *ta |= KEEP_ALIVE_ACK;
            break 'fwd;
        }
        // Zero window probe ACK.
        if repeats
            && window == 0
            && window == fwd.window
            && rev.lastsegmentflags & ZERO_WINDOW_PROBE != 0
        {
            *ta |= ZERO_WINDOW_PROBE_ACK;
            break 'fwd;
        }
        // Duplicate ACK.
        if repeats && window != 0 && window == fwd.window {
            fwd.dupacknum = if fwd.dupacknum == -1 {
                1
            } else {
                fwd.dupacknum + 1
            };
            *ta |= DUPLICATE_ACK;
            info.dup_ack_num = fwd.dupacknum.max(0) as u32;
            info.dup_ack_frame = fwd.lastnondupack;
        }
    }
    if ack != fwd.lastack {
        fwd.lastnondupack = frame;
        fwd.dupacknum = 0;
    }

    // ACKed unseen segment.
    if rev.maxseqtobeacked != 0 && gt(ack, rev.maxseqtobeacked) && fl & tf::ACK != 0 {
        if lt(rev.maxseqtobeacked, rev.nextseq) {
            rev.maxseqtobeacked = rev.nextseq;
            *ta |= ACK_LOST_SEGMENT;
        } else {
            if rev.dupacknum == 0 {
                *ta |= ACK_LOST_SEGMENT;
            }
            rev.dupacknum = -1;
        }
    }

    // Retransmission, fast retransmission, spurious, out-of-order.
    let sf = fl & (tf::SYN | tf::FIN) != 0;
    'rt: {
        if !(seglen > 0 || sf) {
            break 'rt;
        }
        let mut not_advanced = fwd.nextseq != 0 && lt(seq, fwd.nextseq);
        if *ta & KEEP_ALIVE != 0 {
            break 'rt;
        }
        if seglen > 1 && fwd.nextseq.wrapping_sub(1) == seq {
            not_advanced = false;
        }
        if seglen > 0 && rev.lastack != 0 && le(seq.wrapping_add(seglen), rev.lastack) {
            *ta |= SPURIOUS_RETRANSMISSION;
            break 'rt;
        }
        if not_advanced
            && rev.dupacknum >= 2
            && rev.lastack == seq
            && since(now, rev.lastacktime) < 20_000_000
        {
            *ta |= FAST_RETRANSMISSION;
            break 'rt;
        }
        let thres = if first_rtt == 0 { 3_000_000 } else { first_rtt };
        if not_advanced
            && since(now, fwd.nextseqtime) < thres
            && fwd.nextseq != seq.wrapping_add(seglen).wrapping_add(u32::from(sf))
        {
            *ta |= OUT_OF_ORDER;
            break 'rt;
        }
        if not_advanced {
            *ta |= RETRANSMISSION;
            info.rto_ns = since(now, fwd.nextseqtime);
            info.rto_frame = fwd.nextseqframe;
            // The oldest unacknowledged segment is the likely original.
            if let Some(u) = fwd.segments.back() {
                info.rto_ns = since(now, u.ts);
                info.rto_frame = u.frame;
            }
        }
    }

    let mut nextseq = seq.wrapping_add(seglen);
    if (seglen != 0 || sf) && fwd.segments.len() < MAX_UNACKED {
        if sf {
            nextseq = nextseq.wrapping_add(1);
        }
        fwd.segments.push_front(Unacked {
            frame,
            seq,
            nextseq,
            ts: now,
        });
    }
    let zwp = *ta & ZERO_WINDOW_PROBE != 0;
    if (gt(nextseq, fwd.nextseq) || fwd.nextseq == 0) && !zwp {
        fwd.nextseq = nextseq;
        fwd.nextseqframe = frame;
        fwd.nextseqtime = now;
    }
    if (seq == fwd.maxseqtobeacked || fwd.maxseqtobeacked == 0) && !zwp {
        fwd.maxseqtobeacked = fwd.nextseq;
    }
    fwd.window = window;
    fwd.lastack = ack;
    fwd.lastacktime = now;
    fwd.lastsegmentflags = *ta;

    // Drop the reverse direction's segments this ACK covers.
    let mut i = 0;
    while i < rev.segments.len() {
        let u = &mut rev.segments[i];
        if ack == u.nextseq {
            info.acks_frame = u.frame;
            info.ack_rtt_ns =
                (now as i128 - u.ts as i128).clamp(i64::MIN as i128, i64::MAX as i128) as i64;
        } else if gt(ack, u.seq) && le(ack, u.nextseq) {
            u.seq = ack;
            continue;
        } else if gt(u.nextseq, ack) {
            i += 1;
            continue;
        }
        rev.segments.remove(i);
    }

    // Bytes in flight (payload-based, as Wireshark's default).
    if seglen != 0 && fwd.valid_bif && !fwd.segments.is_empty() {
        let base = fwd.base_seq;
        let head = fwd.segments[0];
        let mut first = head.seq.wrapping_sub(base);
        let mut last = head.nextseq.wrapping_sub(base);
        for u in &fwd.segments {
            last = last.max(u.nextseq.wrapping_sub(base));
            first = first.min(u.seq.wrapping_sub(base));
        }
        let mut in_flight = last.wrapping_sub(first);
        let delivered = rev.sack[..rev.nsack as usize]
            .iter()
            .fold(0u32, |d, (l, r)| d.wrapping_add(r.wrapping_sub(*l)));
        in_flight = in_flight.wrapping_sub(delivered);
        if in_flight > 0 && in_flight < 2_000_000_000 {
            info.bytes_in_flight = in_flight - u32::from(sf);
        }
        let psh = fl & tf::PSH != 0;
        if psh && !fwd.push_set_last {
            fwd.push_bytes_sent = fwd.push_bytes_sent.wrapping_add(seglen);
            fwd.push_set_last = true;
        } else if psh {
            fwd.push_bytes_sent = seglen;
        } else if fwd.push_set_last {
            fwd.push_bytes_sent = seglen;
            fwd.push_set_last = false;
        } else {
            fwd.push_bytes_sent = fwd.push_bytes_sent.wrapping_add(seglen);
        }
        info.push_bytes_sent = fwd.push_bytes_sent;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Ipv4, Tcp, TcpOptions};
    use std::net::Ipv4Addr;

    #[allow(clippy::too_many_arguments)]
    /// Build a TCP packet between 10.0.0.1:1000 (client) and 10.0.0.2:80.
    fn pkt(
        ts_us: u64,
        c2s: bool,
        seq: u32,
        ack: u32,
        fl: u16,
        win: u16,
        len: u32,
        opts: &[u8],
    ) -> Packet {
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let (src, dst, sport, dport) = if c2s {
            (a, b, 1000, 80)
        } else {
            (b, a, 80, 1000)
        };
        Packet {
            ts_ns: (1_000_000 + ts_us) * 1000,
            iface: 0,
            link: 1,
            captured_len: 54,
            wire_len: 54 + len,
            pkttype: None,
            vlan: None,
            ethertype: 0x800,
            llc: None,
            tunnel: None,
            udp_payload_at: None,
            gre_at: None,
            ipip_at: None,
            net_at: None,
            net: Net::Ipv4(Ipv4 {
                src,
                dst,
                tos: 0,
                ttl: 64,
                id: 0,
                proto: 6,
                header_len: 20,
                total_len: 40 + len as u16,
                dont_fragment: true,
                more_fragments: false,
                frag_offset: 0,
                route_dst: None,
            }),
            transport: Transport::Tcp(Tcp {
                sport,
                dport,
                seq,
                ack,
                flags: fl,
                window: win,
                checksum: 0,
                urgent: 0,
                header_len: 20 + opts.len() as u8,
                payload_len: len,
                options: TcpOptions::from_bytes(opts),
            }),
            malformed: None,
            partial_tcp: None,
        }
    }

    const S: u16 = tf::SYN;
    const A: u16 = tf::ACK;
    const P: u16 = tf::PSH;
    const F: u16 = tf::FIN;

    fn run(pkts: &[Packet]) -> (Vec<TcpInfo>, Analyzer) {
        let mut an = Analyzer::new();
        let v = pkts
            .iter()
            .enumerate()
            .map(|(i, p)| match an.process(i as u64 + 1, p).0 {
                Info::Tcp(t) => t,
                _ => panic!("not tcp"),
            })
            .collect();
        (v, an)
    }

    #[test]
    fn handshake_data_fin_relative_numbers_and_summary() {
        let ws7 = [1, 3, 3, 7];
        let p = [
            pkt(0, true, 1000, 0, S, 64240, 0, &ws7),
            pkt(100, false, 5000, 1001, S | A, 65160, 0, &ws7),
            pkt(200, true, 1001, 5001, A, 502, 0, &[]),
            pkt(300, true, 1001, 5001, P | A, 502, 10, &[]),
            pkt(400, false, 5001, 1011, A, 509, 0, &[]),
            pkt(500, true, 1011, 5001, F | A, 502, 0, &[]),
            pkt(600, false, 5001, 1012, F | A, 509, 0, &[]),
            pkt(700, true, 1012, 5002, A, 502, 0, &[]),
        ];
        let (v, an) = run(&p);
        let rel: Vec<_> = v
            .iter()
            .map(|i| (i.seq_rel, i.ack_rel, i.next_seq_rel))
            .collect();
        assert_eq!(
            rel,
            vec![
                (0, 0, 1),
                (0, 1, 1),
                (1, 1, 1),
                (1, 1, 11),
                (1, 11, 1),
                (11, 1, 12),
                (1, 12, 2),
                (12, 2, 12)
            ]
        );
        assert_eq!(v[3].window, 502 << 7);
        assert_eq!(v[0].window, 64240, "SYN windows are never scaled");
        assert!(v.iter().all(|i| i.flags == 0), "{v:?}");
        assert_eq!((v[4].acks_frame, v[4].ack_rtt_ns), (4, 100_000));
        assert_eq!(v[3].bytes_in_flight, 10);
        let c = &an.conversations()[0];
        assert_eq!(c.handshake_rtt_ns, Some(200_000));
        assert_eq!(c.synack_ns, Some(100_000));
        assert_eq!(c.end(), End::Fin);
        assert_eq!(
            (c.c2s.packets, c.s2c.packets, c.c2s.payload_bytes),
            (5, 3, 10)
        );
        assert_eq!(
            (c.c2s.isn, c.s2c.isn, c.c2s.wscale),
            (Some(1000), Some(5000), Some(7))
        );
        assert_eq!(c.closed_by_client, Some(true));
    }

    #[test]
    fn retransmission_dup_acks_fast_retransmission_lost_segment() {
        let p = [
            pkt(0, true, 1000, 0, S, 1000, 0, &[]),
            pkt(10, false, 5000, 1001, S | A, 1000, 0, &[]),
            pkt(20, true, 1001, 5001, A, 1000, 0, &[]),
            // Segment 1001..1101 is sent but a later one arrives first.
            pkt(30, true, 1101, 5001, A, 1000, 100, &[]), // lost segment (1001 not seen)
            pkt(40, false, 5001, 1001, A, 1000, 0, &[]),  // same as the SYN-ACK: dup ack 1
            pkt(41, false, 5001, 1001, A, 1000, 0, &[]),  // dup ack 2
            pkt(42, false, 5001, 1001, A, 1000, 0, &[]),  // dup ack 3
            pkt(50, true, 1001, 5001, A, 1000, 100, &[]), // fast retransmission
            pkt(400_000, true, 1001, 5001, A, 1000, 100, &[]), // plain retransmission
        ];
        let (v, _) = run(&p);
        assert_eq!(v[3].flags, flags::LOST_SEGMENT);
        let dups: Vec<_> = v[4..7]
            .iter()
            .map(|i| (i.flags, i.dup_ack_num, i.dup_ack_frame))
            .collect();
        assert_eq!(
            dups,
            vec![
                (flags::DUPLICATE_ACK, 1, 2),
                (flags::DUPLICATE_ACK, 2, 2),
                (flags::DUPLICATE_ACK, 3, 2)
            ]
        );
        assert_eq!(v[7].flags, flags::FAST_RETRANSMISSION);
        assert_eq!(v[8].flags, flags::RETRANSMISSION);
        assert_eq!((v[8].rto_frame, v[8].rto_ns), (4, 399_970_000));
        let names: Vec<_> = flags::wireshark_fields(v[7].flags).collect();
        assert_eq!(names, vec!["retransmission", "fast_retransmission"]);
    }

    #[test]
    fn zero_window_probe_and_window_update() {
        let p = [
            pkt(0, true, 1000, 0, S, 1000, 0, &[]),
            pkt(10, false, 5000, 1001, S | A, 1000, 0, &[]),
            pkt(20, true, 1001, 5001, A, 1000, 0, &[]),
            pkt(30, true, 1001, 5001, A, 1000, 100, &[]),
            pkt(40, false, 5001, 1101, A, 0, 0, &[]), // zero window
            pkt(50, true, 1101, 5001, A, 1000, 1, &[]), // probe
            pkt(60, false, 5001, 1101, A, 0, 0, &[]), // probe ack
            pkt(70, false, 5001, 1101, A, 500, 0, &[]), // window update
        ];
        let (v, _) = run(&p);
        assert_eq!(v[4].flags, flags::ZERO_WINDOW);
        assert_eq!(v[5].flags, flags::ZERO_WINDOW_PROBE);
        assert_eq!(
            v[6].flags,
            flags::ZERO_WINDOW | flags::ZERO_WINDOW_PROBE_ACK
        );
        assert_eq!(v[7].flags, flags::WINDOW_UPDATE);
    }

    #[test]
    fn keep_alive_and_port_reuse() {
        let p = [
            pkt(0, true, 1000, 0, S, 1000, 0, &[]),
            pkt(10, false, 5000, 1001, S | A, 1000, 0, &[]),
            pkt(20, true, 1001, 5001, A, 1000, 0, &[]),
            pkt(30, true, 1000, 5001, A, 1000, 0, &[]), // keep-alive
            pkt(40, false, 5001, 1001, A, 1000, 0, &[]), // keep-alive ack
            pkt(50, true, 9000, 0, S, 1000, 0, &[]),    // new ISN: new stream
        ];
        let (v, an) = run(&p);
        assert_eq!(v[3].flags, flags::KEEP_ALIVE);
        assert_eq!(v[4].flags, flags::KEEP_ALIVE_ACK);
        assert_eq!((v[5].stream, v[5].flags), (1, flags::REUSED_PORTS));
        assert_eq!(an.conversations().len(), 2);
    }
}

#[cfg(test)]
mod tracking_tests {
    use super::*;
    use crate::decode::{Ipv4, Tcp, TcpOptions};
    use std::net::Ipv4Addr;

    /// A SYN from 10.0.0.1:`sport` to 10.0.0.2:80.
    fn syn(sport: u16, seq: u32) -> Packet {
        Packet {
            ts_ns: 1_000_000_000 + u64::from(sport),
            iface: 0,
            link: 1,
            captured_len: 54,
            wire_len: 54,
            pkttype: None,
            vlan: None,
            ethertype: 0x800,
            llc: None,
            tunnel: None,
            udp_payload_at: None,
            gre_at: None,
            ipip_at: None,
            net_at: None,
            net: Net::Ipv4(Ipv4 {
                src: Ipv4Addr::new(10, 0, 0, 1),
                dst: Ipv4Addr::new(10, 0, 0, 2),
                tos: 0,
                ttl: 64,
                id: 0,
                proto: 6,
                header_len: 20,
                total_len: 40,
                dont_fragment: true,
                more_fragments: false,
                frag_offset: 0,
                route_dst: None,
            }),
            transport: Transport::Tcp(Tcp {
                sport,
                dport: 80,
                seq,
                ack: 0,
                flags: tf::SYN,
                window: 1000,
                checksum: 0,
                urgent: 0,
                header_len: 20,
                payload_len: 0,
                options: TcpOptions::from_bytes(&[]),
            }),
            malformed: None,
            partial_tcp: None,
        }
    }

    fn stream_of(an: &mut Analyzer, frame: u64, p: &Packet) -> u32 {
        match an.process(frame, p).0 {
            Info::Tcp(t) => t.stream,
            other => panic!("not tcp: {other:?}"),
        }
    }

    #[test]
    fn state_is_bounded_and_the_least_recently_used_is_evicted_and_counted() {
        let mut an = Analyzer::with_limits(true, 3);
        // Conversations 0, 1, 2 fill the pool; 0 is used again.
        for (f, port) in [(1, 1000), (2, 1001), (3, 1002), (4, 1000)] {
            stream_of(&mut an, f, &syn(port, 7));
        }
        // A fourth conversation evicts one not used since: 1 (0 was used).
        assert_eq!(stream_of(&mut an, 5, &syn(1003, 7)), 3);
        let t = an.tracking();
        assert_eq!((t.tracked, t.max_tracked, t.evicted), (3, 3, 1));
        assert_eq!(t.conversations, 4);
        // 0 is still followed: a retransmitted SYN keeps its stream.
        assert_eq!(stream_of(&mut an, 6, &syn(1000, 7)), 0);
        // 1 was dropped: it comes back as a new stream, and that is counted.
        assert_eq!(stream_of(&mut an, 7, &syn(1001, 7)), 4);
        let t = an.tracking();
        assert_eq!((t.tracked, t.evicted, t.conversations), (3, 2, 5));
        // Summaries stay for every conversation, evicted or not.
        let streams: Vec<u32> = an.conversations().iter().map(|c| c.stream).collect();
        assert_eq!(streams, vec![0, 1, 2, 3, 4]);
        assert_eq!(an.conversations()[0].c2s.packets, 3);
    }

    #[test]
    fn without_summaries_the_analysis_is_the_same() {
        let pkts: Vec<Packet> = (0..50u16).map(|i| syn(2000 + i % 7, 100)).collect();
        let mut with = Analyzer::with_limits(true, 4);
        let mut without = Analyzer::with_limits(false, 4);
        for (i, p) in pkts.iter().enumerate() {
            let f = i as u64 + 1;
            assert_eq!(with.process(f, p), without.process(f, p));
        }
        assert!(without.conversations().is_empty());
        assert_eq!(with.tracking(), without.tracking());
        assert!(with.tracking().evicted > 0);
    }

    #[test]
    fn per_conversation_memory_is_compact() {
        // What a million conversations cost: the summary always (--conv),
        // the analysis state for the followed ones only.
        let summary = std::mem::size_of::<Conversation>();
        let track = std::mem::size_of::<Track>();
        assert!(summary <= 320, "Conversation is {summary} bytes");
        assert!(track <= 360, "Track is {track} bytes");
    }
}
