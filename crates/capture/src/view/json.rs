//! JSON objects for packets, conversations and the capture summary.
//!
//! Every object has a `"type"`: `"packet"`, `"conversation"` or
//! `"summary"`. Field names are stable and documented in the README; times
//! are integers with their unit in the name (`ts_ns`, `ack_rtt_ns`,
//! `duration_ns`), sizes are bytes (`payload_bytes`, `wire_bytes`).
//! Sequence numbers are relative (Wireshark's) with the raw value beside
//! them (`seq` and `seq_abs`). Analysis flags use Wireshark's
//! `tcp.analysis.*` field names without the prefix, so
//! `"analysis":["retransmission","fast_retransmission"]` is what tshark
//! reports as `tcp.analysis.retransmission` and
//! `tcp.analysis.fast_retransmission`.

use super::Procs;
use crate::analysis::{Conversation, DirStats, End, Ep, Info, flags};
use crate::decode::{Net, Packet, TcpOption, Transport, tcpflag};
use crate::procs::Label;
use serde::Serialize;
use std::net::IpAddr;

#[derive(Serialize)]
pub struct PacketJson<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub frame: u64,
    pub ts_ns: u64,
    pub iface: u32,
    pub captured_bytes: u32,
    pub wire_bytes: u32,
    /// "in" / "out" / ... for cooked and live captures.
    pub direction: Option<&'static str>,
    pub vlan: Option<u16>,
    /// "ipv4", "ipv6", "arp" or null.
    pub net: Option<&'static str>,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub ttl: Option<u8>,
    /// "tcp", "udp", "icmp", "icmp6", "fragment", "other" or null.
    pub proto: Option<&'static str>,
    pub ip_proto: Option<u8>,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    pub tcp: Option<TcpJson>,
    pub udp: Option<UdpJson>,
    pub icmp: Option<IcmpJson>,
    /// A TCP header cut short (or with a bad length) whose first 16 bytes
    /// are there: its ports and the stream Wireshark gives it.
    pub partial_tcp: Option<PartialTcpJson>,
    /// The TCP and UDP headers of the packets an sFlow datagram samples
    /// (null for other packets): set with [`sampled`].
    pub sampled: Option<Vec<QuotedJson>>,
    pub malformed: Option<String>,
    pub process: Option<ProcsJson<'a>>,
    /// The outer headers when the packet came through a tunnel
    /// (then the fields above are the inner packet's).
    pub tunnel: Option<TunnelJson>,
}

#[derive(Serialize)]
pub struct TunnelJson {
    /// "vxlan", "geneve", "gre", "erspan" or "gtp_u".
    pub kind: crate::decode::TunnelKind,
    /// The VNI, GRE key, ERSPAN session or GTP-U TEID; null for GRE
    /// without a key and ERSPAN type I.
    pub vni: Option<u32>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
}

#[derive(Serialize)]
pub struct TcpJson {
    /// Wireshark's tcp.stream.
    pub stream: Option<u32>,
    pub from_client: Option<bool>,
    pub flags: Vec<&'static str>,
    /// The 12 flag bits as a number (tcp.flags).
    pub flags_raw: u16,
    pub seq: u32,
    /// Relative; null when the ACK flag is off (the field means nothing).
    pub ack: Option<u32>,
    pub next_seq: u32,
    pub seq_abs: u32,
    pub ack_abs: u32,
    pub payload_bytes: u32,
    /// The window field as sent.
    pub window: u16,
    /// The window after scaling (tcp.window_size).
    pub window_bytes: u32,
    pub urgent: u16,
    pub header_bytes: u8,
    pub options: Vec<OptJson>,
    pub analysis: Vec<&'static str>,
    pub dup_ack_num: Option<u32>,
    pub dup_ack_frame: Option<u64>,
    pub acks_frame: Option<u64>,
    pub ack_rtt_ns: Option<i64>,
    pub bytes_in_flight: Option<u32>,
    pub push_bytes_sent: Option<u32>,
    pub rto_ns: Option<u64>,
    pub rto_frame: Option<u64>,
}

#[derive(Serialize)]
pub struct OptJson {
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecr: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocks: Option<Vec<[u32; 2]>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u8>,
}

#[derive(Serialize)]
pub struct UdpJson {
    pub stream: Option<u32>,
    pub payload_bytes: u32,
    pub length: u16,
}

#[derive(Serialize)]
pub struct IcmpJson {
    #[serde(rename = "type")]
    pub kind: u8,
    pub code: u8,
    /// The packet an error message quotes.
    pub quoted: Option<QuotedJson>,
}

#[derive(Serialize)]
pub struct QuotedJson {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ip_proto: u8,
    /// Null unless a TCP header (16 bytes or more) or a UDP header is
    /// quoted.
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    /// The quoted header's `tcp.stream` or `udp.stream` (by `ip_proto`),
    /// as Wireshark numbers it: its conversation's, or a new index that
    /// the conversation's first packet then carries.
    pub stream: Option<u32>,
}

/// The `sampled` field: headers from [`crate::decode::sflow_sampled`]
/// with the streams [`crate::analysis::Analyzer::number_seen`] gave them.
pub fn sampled(h: &[(crate::decode::Quoted, Option<u32>)]) -> Option<Vec<QuotedJson>> {
    (!h.is_empty()).then(|| {
        h.iter()
            .map(|(q, stream)| QuotedJson {
                src: q.src,
                dst: q.dst,
                ip_proto: q.proto,
                sport: q.ports.map(|x| x.0),
                dport: q.ports.map(|x| x.1),
                stream: *stream,
            })
            .collect()
    })
}

#[derive(Serialize)]
pub struct PartialTcpJson {
    pub sport: u16,
    pub dport: u16,
    pub stream: Option<u32>,
}

#[derive(Serialize)]
pub struct ProcsJson<'a> {
    pub src: Option<&'a Label>,
    pub dst: Option<&'a Label>,
}

fn opt_json(o: &TcpOption, base: u32) -> OptJson {
    let mut j = OptJson {
        kind: "",
        value: None,
        ecr: None,
        blocks: None,
        code: None,
    };
    match *o {
        TcpOption::Eol => j.kind = "eol",
        TcpOption::Nop => j.kind = "nop",
        TcpOption::Mss(m) => {
            j.kind = "mss";
            j.value = Some(m as u32);
        }
        TcpOption::WindowScale(w) => {
            j.kind = "wscale";
            j.value = Some(w as u32);
        }
        TcpOption::SackPermitted => j.kind = "sack_permitted",
        TcpOption::Sack { blocks, count } => {
            j.kind = "sack";
            j.blocks = Some(
                blocks
                    .iter()
                    .take(count as usize)
                    .map(|(l, r)| [l.wrapping_sub(base), r.wrapping_sub(base)])
                    .collect(),
            );
        }
        TcpOption::Timestamps { val, ecr } => {
            j.kind = "timestamps";
            j.value = Some(val);
            j.ecr = Some(ecr);
        }
        TcpOption::Unknown { kind, .. } => {
            j.kind = "unknown";
            j.code = Some(kind);
        }
        TcpOption::Bad { kind, .. } => {
            j.kind = "bad";
            j.code = Some(kind);
        }
    }
    j
}

/// The JSON object for one packet.
pub fn packet<'a>(frame: u64, p: &Packet, info: &Info, procs: Option<&'a Procs>) -> PacketJson<'a> {
    let (net, ttl) = match &p.net {
        Net::Ipv4(h) => (Some("ipv4"), Some(h.ttl)),
        Net::Ipv6(h) => (Some("ipv6"), Some(h.hop_limit)),
        Net::Arp(_) => (Some("arp"), None),
        Net::None => (None, None),
    };
    let proto = match &p.transport {
        Transport::Tcp(_) => Some("tcp"),
        Transport::Udp(_) => Some("udp"),
        Transport::Icmp(i) => Some(if i.v6 { "icmp6" } else { "icmp" }),
        Transport::Fragment { .. } => Some("fragment"),
        Transport::Other { .. } => Some("other"),
        Transport::None => None,
    };
    let (sport, dport) = p.ports().map_or((None, None), |(a, b)| (Some(a), Some(b)));
    let tcp = p.tcp().map(|t| {
        let ti = match info {
            Info::Tcp(ti) => Some(ti),
            _ => None,
        };
        let base = ti.map_or(0, |i| i.ack_base);
        let nz64 = |v: u64| (v != 0).then_some(v);
        let nz32 = |v: u32| (v != 0).then_some(v);
        TcpJson {
            stream: ti.map(|i| i.stream),
            from_client: ti.map(|i| i.from_client),
            flags: tcpflag::NAMES
                .iter()
                .filter(|(b, _)| t.flags & b != 0)
                .map(|(_, n)| *n)
                .collect(),
            flags_raw: t.flags,
            seq: ti.map_or(t.seq, |i| i.seq_rel),
            ack: t.has(tcpflag::ACK).then(|| ti.map_or(t.ack, |i| i.ack_rel)),
            next_seq: ti.map_or(t.seq.wrapping_add(t.payload_len), |i| i.next_seq_rel),
            seq_abs: t.seq,
            ack_abs: t.ack,
            payload_bytes: t.payload_len,
            window: t.window,
            window_bytes: ti.map_or(t.window as u32, |i| i.window),
            urgent: t.urgent,
            header_bytes: t.header_len,
            options: t.options.iter().map(|o| opt_json(&o, base)).collect(),
            analysis: ti.map_or_else(Vec::new, |i| flags::wireshark_fields(i.flags).collect()),
            dup_ack_num: ti.and_then(|i| nz32(i.dup_ack_num)),
            dup_ack_frame: ti.and_then(|i| (i.dup_ack_num != 0).then_some(i.dup_ack_frame)),
            acks_frame: ti.and_then(|i| nz64(i.acks_frame)),
            // Wireshark gives no RTT when the time between the two frames
            // is zero (a negative one it shows).
            ack_rtt_ns: ti
                .and_then(|i| (i.acks_frame != 0 && i.ack_rtt_ns != 0).then_some(i.ack_rtt_ns)),
            bytes_in_flight: ti.and_then(|i| nz32(i.bytes_in_flight)),
            push_bytes_sent: ti.and_then(|i| (i.bytes_in_flight != 0).then_some(i.push_bytes_sent)),
            rto_ns: ti.and_then(|i| (i.flags & flags::RETRANSMISSION != 0).then_some(i.rto_ns)),
            rto_frame: ti
                .and_then(|i| (i.flags & flags::RETRANSMISSION != 0).then_some(i.rto_frame)),
        }
    });
    let udp = p.udp().map(|u| UdpJson {
        stream: match info {
            Info::Udp { stream, .. } => Some(*stream),
            _ => None,
        },
        payload_bytes: u.payload_len,
        length: u.len,
    });
    let seen = match info {
        Info::Seen { stream, .. } => Some(*stream),
        _ => None,
    };
    let icmp = match &p.transport {
        Transport::Icmp(i) => Some(IcmpJson {
            kind: i.kind,
            code: i.code,
            quoted: i.quoted.map(|q| QuotedJson {
                src: q.src,
                dst: q.dst,
                ip_proto: q.proto,
                sport: q.ports.map(|x| x.0),
                dport: q.ports.map(|x| x.1),
                stream: seen,
            }),
        }),
        _ => None,
    };
    let partial_tcp = match (&p.transport, p.partial_tcp) {
        (Transport::Other { proto: 6, .. }, Some(t)) => Some(PartialTcpJson {
            sport: t.sport,
            dport: t.dport,
            stream: seen,
        }),
        _ => None,
    };
    PacketJson {
        kind: "packet",
        frame,
        ts_ns: p.ts_ns,
        iface: p.iface,
        captured_bytes: p.captured_len,
        wire_bytes: p.wire_len,
        direction: p.pkttype.map(|t| match t {
            crate::decode::PacketType::Host => "in",
            crate::decode::PacketType::Outgoing => "out",
            crate::decode::PacketType::Broadcast => "broadcast",
            crate::decode::PacketType::Multicast => "multicast",
            crate::decode::PacketType::OtherHost => "otherhost",
            crate::decode::PacketType::Other => "other",
        }),
        vlan: p.vlan,
        net,
        src: p.src_ip(),
        dst: p.dst_ip(),
        ttl,
        proto,
        ip_proto: p.ip_proto(),
        sport,
        dport,
        tcp,
        udp,
        icmp,
        partial_tcp,
        sampled: None,
        malformed: p.malformed.map(|m| m.to_string()),
        process: procs.filter(|p| !p.is_empty()).map(|p| ProcsJson {
            src: p.src.as_ref(),
            dst: p.dst.as_ref(),
        }),
        tunnel: p.tunnel.map(|t| TunnelJson {
            kind: t.kind,
            vni: t.vni,
            src: t.src,
            dst: t.dst,
            sport: t.sport,
            dport: t.dport,
        }),
    }
}

#[derive(Serialize)]
pub struct ConvJson<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// "tcp" or "udp".
    pub proto: &'static str,
    pub stream: u32,
    pub client: &'a Ep,
    pub server: &'a Ep,
    pub first_frame: u64,
    pub last_frame: u64,
    pub start_ns: u64,
    pub duration_ns: u64,
    pub packets: u64,
    pub bytes: u64,
    pub handshake_rtt_ns: Option<u64>,
    pub synack_ns: Option<u64>,
    pub retransmissions: u64,
    /// "fin", "half_closed", "rst" or "open".
    pub end: End,
    /// "client" or "server": who sent the first FIN.
    pub closed_by: Option<&'static str>,
    /// "client" or "server": who sent the first RST.
    pub reset_by: Option<&'static str>,
    pub client_to_server: &'a DirStats,
    pub server_to_client: &'a DirStats,
    pub client_process: Option<&'a Label>,
    pub server_process: Option<&'a Label>,
}

fn side(b: Option<bool>) -> Option<&'static str> {
    b.map(|c| if c { "client" } else { "server" })
}

/// The JSON object for one conversation.
pub fn conversation<'a>(
    c: &'a Conversation,
    client_process: Option<&'a Label>,
    server_process: Option<&'a Label>,
) -> ConvJson<'a> {
    ConvJson {
        kind: "conversation",
        proto: if c.udp { "udp" } else { "tcp" },
        stream: c.stream,
        client: &c.client,
        server: &c.server,
        first_frame: c.first_frame,
        last_frame: c.last_frame,
        start_ns: c.start_ns,
        duration_ns: c.duration_ns(),
        packets: c.packets(),
        bytes: c.bytes(),
        handshake_rtt_ns: c.handshake_rtt_ns,
        synack_ns: c.synack_ns,
        retransmissions: c.retransmissions(),
        end: if c.udp { End::Open } else { c.end() },
        closed_by: side(c.closed_by_client),
        reset_by: side(c.reset_by_client),
        client_to_server: &c.c2s,
        server_to_client: &c.s2c,
        client_process,
        server_process,
    }
}

/// The closing summary object.
#[derive(Serialize, Default, Clone, Debug)]
pub struct Summary {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Packets read (file) or received (live), before the filter.
    pub packets_seen: u64,
    /// Packets that passed the filter and were shown.
    pub packets_shown: u64,
    pub malformed: u64,
    pub tcp_conversations: u64,
    pub udp_flows: u64,
    /// IPv4 and IPv6 datagrams put back together from fragments.
    pub reassembled: u64,
    /// IPv4 and IPv6 fragments given up (memory caps, bad offsets) or left waiting
    /// for the rest of their datagram at the end.
    pub fragments_dropped: u64,
    /// Conversations followed at once at most (`--max-tracked`).
    pub max_tracked: u64,
    /// Conversations dropped from the analysis to make room for newer
    /// ones (a later packet of one starts a new stream).
    pub conversations_evicted: u64,
    /// Live capture: packets the kernel dropped because the ring was full.
    pub dropped_by_kernel: Option<u64>,
    /// Live capture: packets the kernel's filter passed.
    pub received_by_filter: Option<u64>,
}
