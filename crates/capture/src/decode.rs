//! Decoding one captured frame into a [`Packet`].
//!
//! Supported link layers (pcap LINKTYPE numbers): Ethernet (1) with any
//! number of 802.1Q / 802.1ad tags, Linux cooked capture v1 (113) and v2
//! (276), raw IP (101, and 228 / 229 for IPv4-only / IPv6-only), BSD
//! loopback "null" (0, host byte order) and OpenBSD loop (108, network byte
//! order), FDDI (10), IEEE 802.11 data frames (105, and 127 behind a
//! radiotap header; also inside Aruba's GRE, protocol 0x8200), PPP (9, 50),
//! Cisco HDLC (104), ARCnet (7 BSD, 129 Linux; RFC 1201 and RFC 1051
//! headers), Linux NFLOG (239: the payload TLV), IP over InfiniBand (242).
//! 802.2 LLC/SNAP with an Ethernet type (802.3 and FDDI frames, 802.11
//! payloads) leads on to IP. Inside Ethernet: MPLS label stacks, PPPoE
//! sessions (PPP protocol of one or two bytes), 802.1ah provider backbone
//! bridging (0x88e7) and Cisco FabricPath (0x8903) lead on to the inner
//! frame, 802.1BR E-Tags (0x893f) and Cisco VN-Tags (0x8926) are skipped.
//!
//! Network and transport: IPv4 (options skipped by the header length),
//! IPv6 (hop-by-hop, routing, fragment, destination options, AH and mobility
//! headers skipped), IPsec AH on IPv4 skipped too, TCP (all twelve flag
//! bits, options kept raw and parsed on demand by [`TcpOptions::iter`]),
//! UDP, ICMP / ICMPv6 type and code (and the start of the packet an error
//! quotes), ARP. IPComp payloads are compressed and not decoded. Tunnels
//! ([`Packet::tunnel`]): VXLAN, Geneve, GTP-U, GRE (in IP, and in UDP on
//! port 4754), ERSPAN, WCCP redirection, IP in IP (protocols 4 and 41),
//! AYIYA (UDP 5072); nested up to 4 deep (GRE in Geneve, ...), with the
//! innermost tunnel's outer headers in [`Packet::tunnel`].
//!
//! Lengths follow what the headers claim, as tcpdump and Wireshark do: the
//! TCP payload length is the IP payload length minus the TCP header, even
//! when the capture was cut short by the snap length. Anything the bytes
//! cannot support (a header cut off, a length field smaller than the header
//! it describes, an option running past the header) sets
//! [`Packet::malformed`] with the reason; decoding never panics.

use serde::Serialize;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// pcap link-layer types this decoder understands.
pub mod linktype {
    /// BSD loopback: 4-byte address family in the capturing host's byte order.
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    /// Raw IP, as some systems wrote DLT_RAW into files.
    pub const RAW_12: u32 = 12;
    pub const RAW_14: u32 = 14;
    pub const RAW: u32 = 101;
    /// OpenBSD loopback: 4-byte address family in network byte order.
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1 (16-byte header).
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    /// Linux cooked capture v2 (20-byte header).
    pub const LINUX_SLL2: u32 = 276;
    /// FDDI: frame control, two 6-byte addresses, then 802.2 LLC.
    pub const FDDI: u32 = 10;
    /// IEEE 802.11 frames without a radio header.
    pub const IEEE802_11: u32 = 105;
    /// IEEE 802.11 behind a radiotap header (its length in bytes 2-3).
    pub const IEEE802_11_RADIOTAP: u32 = 127;
    /// PPP: address and control (0xff 0x03, may be left out), protocol.
    pub const PPP: u32 = 9;
    /// PPP in HDLC-like framing (RFC 1662), as PPP.
    pub const PPP_HDLC: u32 = 50;
    /// Cisco HDLC: address, control, then an Ethernet type.
    pub const C_HDLC: u32 = 104;
    /// ARCnet (BSD): source, destination, ARCnet type.
    pub const ARCNET: u32 = 7;
    /// ARCnet (Linux): source, destination, a 2-byte offset, ARCnet type.
    pub const ARCNET_LINUX: u32 = 129;
    /// Linux netfilter NFLOG: family, version, resource id, then TLVs of
    /// which type 9 holds the packet.
    pub const NFLOG: u32 = 239;
    /// IP over InfiniBand (RFC 4391) with its 44-byte pseudo-header.
    pub const IPOIB: u32 = 242;

    /// The name tcpdump uses in "link-type NAME".
    pub fn name(link: u32) -> &'static str {
        match link {
            NULL => "NULL",
            ETHERNET => "EN10MB",
            RAW | RAW_12 | RAW_14 => "RAW",
            LOOP => "LOOP",
            LINUX_SLL => "LINUX_SLL",
            IPV4 => "IPV4",
            IPV6 => "IPV6",
            LINUX_SLL2 => "LINUX_SLL2",
            FDDI => "FDDI",
            IEEE802_11 => "IEEE802_11",
            IEEE802_11_RADIOTAP => "IEEE802_11_RADIO",
            PPP => "PPP",
            PPP_HDLC => "PPP_HDLC",
            C_HDLC => "C_HDLC",
            ARCNET => "ARCNET",
            ARCNET_LINUX => "ARCNET_LINUX",
            NFLOG => "NFLOG",
            IPOIB => "IPOIB",
            _ => "unknown",
        }
    }

    /// True for the link types [`super::decode`] handles.
    pub fn supported(link: u32) -> bool {
        matches!(
            link,
            NULL | ETHERNET
                | RAW
                | RAW_12
                | RAW_14
                | LOOP
                | LINUX_SLL
                | IPV4
                | IPV6
                | LINUX_SLL2
                | FDDI
                | IEEE802_11
                | IEEE802_11_RADIOTAP
                | PPP
                | PPP_HDLC
                | C_HDLC
                | ARCNET
                | ARCNET_LINUX
                | NFLOG
                | IPOIB
        )
    }
}

/// Ethertypes we look at.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const VLAN: u16 = 0x8100;
    pub const QINQ: u16 = 0x88a8;
    pub const QINQ_OLD: u16 = 0x9100;
    pub const IPV6: u16 = 0x86dd;
    pub const MPLS: u16 = 0x8847;
    pub const MPLS_MULTICAST: u16 = 0x8848;
    pub const PPPOE_SESSION: u16 = 0x8864;
    /// Transparent Ethernet Bridging (GRE carrying Ethernet).
    pub const TEB: u16 = 0x6558;
    /// Aruba's GRE protocol type for the 802.11 frames its access points
    /// tunnel to the controller.
    pub const ARUBA_WLAN: u16 = 0x8200;
    pub const ERSPAN_2: u16 = 0x88be;
    pub const ERSPAN_3: u16 = 0x22eb;
    /// Cisco WCCP redirection in GRE.
    pub const WCCP: u16 = 0x883e;
    /// IEEE 802.1ah provider backbone bridging: an I-TAG, then the
    /// customer's Ethernet header.
    pub const PBB: u16 = 0x88e7;
    /// Cisco FabricPath: a 2-byte FTag/TTL, then the inner Ethernet
    /// header.
    pub const FABRICPATH: u16 = 0x8903;
    /// IEEE 802.1BR E-Tag: 6 bytes of tag, then an Ethernet type.
    pub const ETAG: u16 = 0x893f;
    /// Cisco VN-Tag: 4 bytes of tag, then an Ethernet type.
    pub const VNTAG: u16 = 0x8926;
}

/// IP protocol numbers we look at.
pub mod ipproto {
    pub const HOPOPT: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const GRE: u8 = 47;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    /// IPv4 in IP (RFC 2003), IPv6 in IP (RFC 4213).
    pub const IPIP: u8 = 4;
    pub const IPV6: u8 = 41;
    /// IP payload compression (RFC 3173).
    pub const IPCOMP: u8 = 108;
    pub const NONE: u8 = 59;
    pub const DSTOPTS: u8 = 60;
    pub const MOBILITY: u8 = 135;
    pub const HIP: u8 = 139;
    pub const SHIM6: u8 = 140;
}

/// TCP flag bits as they sit in the 12 low bits of header bytes 12..14.
pub mod tcpflag {
    pub const FIN: u16 = 0x001;
    pub const SYN: u16 = 0x002;
    pub const RST: u16 = 0x004;
    pub const PSH: u16 = 0x008;
    pub const ACK: u16 = 0x010;
    pub const URG: u16 = 0x020;
    pub const ECE: u16 = 0x040;
    pub const CWR: u16 = 0x080;
    /// AE (formerly NS, RFC 3540; now AccECN).
    pub const AE: u16 = 0x100;
    /// The three reserved bits.
    pub const RESERVED: u16 = 0xe00;
    /// (bit, lower-case name) in the order JSON lists them.
    pub const NAMES: [(u16, &str); 9] = [
        (FIN, "fin"),
        (SYN, "syn"),
        (RST, "rst"),
        (PSH, "psh"),
        (ACK, "ack"),
        (URG, "urg"),
        (ECE, "ece"),
        (CWR, "cwr"),
        (AE, "ae"),
    ];
}

/// Which layer a malformation was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    Link,
    Vlan,
    Ipv4,
    Ipv6,
    Tcp,
    Udp,
    Icmp,
    Arp,
    /// IPsec Authentication Header.
    Ah,
}

impl Layer {
    fn name(self) -> &'static str {
        match self {
            Layer::Link => "link-layer",
            Layer::Vlan => "802.1Q",
            Layer::Ipv4 => "IPv4",
            Layer::Ipv6 => "IPv6",
            Layer::Tcp => "TCP",
            Layer::Udp => "UDP",
            Layer::Icmp => "ICMP",
            Layer::Ah => "AH",
            Layer::Arp => "ARP",
        }
    }
}

/// Why a packet could not be fully decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// The captured bytes end inside a header.
    Truncated { layer: Layer, need: u32, have: u32 },
    /// The IP version nibble does not match the link layer's protocol.
    BadVersion { layer: Layer, found: u8 },
    /// A header-length field is smaller than the fixed header.
    BadHeaderLength { layer: Layer, len: u32 },
    /// A total-length field is smaller than the header it contains.
    BadTotalLength { layer: Layer, len: u32 },
    /// A TCP option's length byte is impossible (under 2, or past the header).
    BadOption { kind: u8, offset: u32 },
    /// The pcap link type is not one this decoder knows.
    UnsupportedLink(u32),
    /// The IP header's length runs past the end of the packet as it was on
    /// the wire (not merely past the snap length): `missing` bytes the
    /// header counts were never sent. Lengths and sequence analysis use
    /// the bytes that were there, as Wireshark does.
    TruncatedIp { layer: Layer, missing: u32 },
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Malformed::Truncated { layer, need, have } => write!(
                f,
                "truncated {} header: needs {need} bytes, {have} captured",
                layer.name()
            ),
            Malformed::BadVersion { layer, found } => {
                write!(f, "{} packet with IP version {found}", layer.name())
            }
            Malformed::BadHeaderLength { layer, len } => {
                write!(f, "bogus {} header length {len}", layer.name())
            }
            Malformed::BadTotalLength { layer, len } => {
                write!(f, "bogus {} total length {len}", layer.name())
            }
            Malformed::BadOption { kind, offset } => {
                write!(f, "bad TCP option {kind} at option byte {offset}")
            }
            Malformed::UnsupportedLink(l) => write!(f, "unsupported link type {l}"),
            Malformed::TruncatedIp { layer, missing } => write!(
                f,
                "truncated-{} - {missing} bytes missing",
                if layer == Layer::Ipv6 { "ip6" } else { "ip" }
            ),
        }
    }
}

impl Serialize for Malformed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Linux packet type (sll_pkttype), when the link layer says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PacketType {
    Host,
    Broadcast,
    Multicast,
    OtherHost,
    Outgoing,
    Other,
}

impl PacketType {
    pub fn from_linux(n: u16) -> PacketType {
        match n {
            0 => PacketType::Host,
            1 => PacketType::Broadcast,
            2 => PacketType::Multicast,
            3 => PacketType::OtherHost,
            4 => PacketType::Outgoing,
            _ => PacketType::Other,
        }
    }
    /// Short label, as tcpdump prints it for `-i any` ("In" / "Out").
    pub fn label(self) -> &'static str {
        match self {
            PacketType::Outgoing => "Out",
            PacketType::Host => "In",
            PacketType::Broadcast => "B",
            PacketType::Multicast => "M",
            PacketType::OtherHost => "P",
            PacketType::Other => "?",
        }
    }
}

/// An 802.2 LLC header (802.3 frames: the Ethernet type field is a
/// length, under 0x0600).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Llc {
    pub dsap: u8,
    pub ssap: u8,
    pub control: u8,
    /// The 802.3 length field.
    pub length: u16,
}

/// A tunnel the packet came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TunnelKind {
    /// RFC 7348, UDP port 4789.
    Vxlan,
    /// RFC 8926, UDP port 6081.
    Geneve,
    /// RFC 2784/2890, IP protocol 47, carrying IP or Ethernet (the key,
    /// if any, in `vni`).
    Gre,
    /// Cisco ERSPAN type I, II or III in GRE (the session id in `vni`).
    Erspan,
    /// 3GPP GTP-U, UDP port 2152 (the TEID in `vni`).
    GtpU,
    /// IP in IP: IPv4 or IPv6 as IP protocol 4 or 41 (RFC 2003, 4213).
    Ipip,
    /// AYIYA (Anything In Anything), UDP port 5072, carrying IP.
    Ayiya,
}

/// The outer headers of a decapsulated packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tunnel {
    pub kind: TunnelKind,
    /// VXLAN and Geneve: the 24-bit virtual network identifier; GRE: the
    /// key (None without one); ERSPAN: the session id (None for type I,
    /// which has none); GTP-U: the TEID.
    pub vni: Option<u32>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
}

/// An IPv4 header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4 {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub tos: u8,
    pub ttl: u8,
    pub id: u16,
    pub proto: u8,
    pub header_len: u8,
    /// Total length as the header claims (0 on TSO-captured packets).
    pub total_len: u16,
    pub dont_fragment: bool,
    pub more_fragments: bool,
    /// Fragment offset in bytes.
    pub frag_offset: u16,
    /// The final destination of a loose or strict source route option
    /// whose route is not used up: Wireshark's `ip.dst` and the address
    /// its conversations are keyed on (`dst` is then the next hop).
    pub route_dst: Option<Ipv4Addr>,
}

/// An IPv6 header (plus how much extension-header space was skipped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6 {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub traffic_class: u8,
    pub flow_label: u32,
    pub hop_limit: u8,
    /// The Next Header field of the fixed header.
    pub next_header: u8,
    /// The protocol after all extension headers.
    pub proto: u8,
    pub payload_len: u16,
    /// Bytes of extension headers skipped.
    pub ext_len: u16,
    /// Fragment header: (offset in bytes, more fragments, identification).
    pub fragment: Option<(u16, bool, u32)>,
}

/// The network layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Net {
    /// Nothing decoded (unknown ethertype, or the link layer was malformed).
    None,
    Ipv4(Ipv4),
    Ipv6(Ipv6),
    Arp(Arp),
}

/// An ARP packet for IPv4 over Ethernet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    pub op: u16,
    pub sender_mac: [u8; 6],
    pub sender_ip: Ipv4Addr,
    pub target_mac: [u8; 6],
    pub target_ip: Ipv4Addr,
}

/// TCP options, kept as the raw bytes of the header (at most 40).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TcpOptions {
    raw: [u8; 40],
    len: u8,
}

impl fmt::Debug for TcpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Default for TcpOptions {
    fn default() -> Self {
        TcpOptions {
            raw: [0; 40],
            len: 0,
        }
    }
}

/// One TCP option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpOption {
    Eol,
    Nop,
    Mss(u16),
    WindowScale(u8),
    SackPermitted,
    /// Up to four SACK blocks (left edge, right edge), absolute.
    Sack {
        blocks: [(u32, u32); 4],
        count: u8,
    },
    Timestamps {
        val: u32,
        ecr: u32,
    },
    /// Any other kind; `len` is the option's length byte.
    Unknown {
        kind: u8,
        len: u8,
    },
    /// An option whose length byte is impossible; iteration stops after it.
    Bad {
        kind: u8,
        offset: u8,
    },
}

impl TcpOptions {
    pub fn from_bytes(b: &[u8]) -> TcpOptions {
        let mut o = TcpOptions::default();
        let n = b.len().min(40);
        o.raw[..n].copy_from_slice(&b[..n]);
        o.len = n as u8;
        o
    }
    pub fn bytes(&self) -> &[u8] {
        &self.raw[..self.len as usize]
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn iter(&self) -> TcpOptionIter<'_> {
        TcpOptionIter {
            b: self.bytes(),
            pos: 0,
            done: false,
        }
    }
    pub fn mss(&self) -> Option<u16> {
        self.iter().find_map(|o| match o {
            TcpOption::Mss(m) => Some(m),
            _ => None,
        })
    }
    pub fn window_scale(&self) -> Option<u8> {
        self.iter().find_map(|o| match o {
            TcpOption::WindowScale(w) => Some(w),
            _ => None,
        })
    }
    pub fn sack_permitted(&self) -> bool {
        self.iter().any(|o| o == TcpOption::SackPermitted)
    }
    pub fn timestamps(&self) -> Option<(u32, u32)> {
        self.iter().find_map(|o| match o {
            TcpOption::Timestamps { val, ecr } => Some((val, ecr)),
            _ => None,
        })
    }
    /// The SACK blocks of the first SACK option.
    pub fn sack_blocks(&self) -> ([(u32, u32); 4], usize) {
        self.iter()
            .find_map(|o| match o {
                TcpOption::Sack { blocks, count } => Some((blocks, count as usize)),
                _ => None,
            })
            .unwrap_or(([(0, 0); 4], 0))
    }
    /// The first impossible option, if any.
    pub fn first_bad(&self) -> Option<(u8, u8)> {
        self.iter().find_map(|o| match o {
            TcpOption::Bad { kind, offset } => Some((kind, offset)),
            _ => None,
        })
    }
}

/// Iterator over [`TcpOptions`].
pub struct TcpOptionIter<'a> {
    b: &'a [u8],
    pos: usize,
    done: bool,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Iterator for TcpOptionIter<'_> {
    type Item = TcpOption;
    fn next(&mut self) -> Option<TcpOption> {
        if self.done || self.pos >= self.b.len() {
            return None;
        }
        let at = self.pos;
        let kind = self.b[at];
        match kind {
            0 => {
                // Everything after End of Option List is padding.
                self.done = true;
                return Some(TcpOption::Eol);
            }
            1 => {
                self.pos += 1;
                return Some(TcpOption::Nop);
            }
            _ => {}
        }
        let bad = TcpOption::Bad {
            kind,
            offset: at as u8,
        };
        let Some(&len) = self.b.get(at + 1) else {
            self.done = true;
            return Some(bad);
        };
        let l = len as usize;
        if l < 2 || at + l > self.b.len() {
            self.done = true;
            return Some(bad);
        }
        self.pos += l;
        let body = &self.b[at + 2..at + l];
        let opt = match (kind, body.len()) {
            (2, 2) => TcpOption::Mss(be16(body, 0)),
            (3, 1) => TcpOption::WindowScale(body[0]),
            (4, 0) => TcpOption::SackPermitted,
            (5, n) if n.is_multiple_of(8) && n <= 32 => {
                let mut blocks = [(0, 0); 4];
                let count = n / 8;
                for (i, b) in blocks.iter_mut().enumerate().take(count) {
                    *b = (be32(body, i * 8), be32(body, i * 8 + 4));
                }
                TcpOption::Sack {
                    blocks,
                    count: count as u8,
                }
            }
            (8, 8) => TcpOption::Timestamps {
                val: be32(body, 0),
                ecr: be32(body, 4),
            },
            (2..=5 | 8, _) => {
                self.done = true;
                bad
            }
            _ => TcpOption::Unknown { kind, len },
        };
        Some(opt)
    }
}

/// A TCP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tcp {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    /// The twelve flag bits (see [`tcpflag`]).
    pub flags: u16,
    /// The window field as sent (not scaled).
    pub window: u16,
    pub checksum: u16,
    pub urgent: u16,
    pub header_len: u8,
    /// Payload bytes as the IP header accounts them (may exceed what was captured).
    pub payload_len: u32,
    pub options: TcpOptions,
}

impl Tcp {
    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }
}

/// A UDP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Udp {
    pub sport: u16,
    pub dport: u16,
    /// The UDP length field.
    pub len: u16,
    /// Payload bytes as the IP header accounts them.
    pub payload_len: u32,
}

/// ICMP or ICMPv6 type and code, and the echo identifier / sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Icmp {
    pub v6: bool,
    pub kind: u8,
    pub code: u8,
    pub id: u16,
    pub seq: u16,
    /// Bytes after the 8-byte ICMP header, as the IP header accounts them.
    pub payload_len: u32,
    /// The start of the packet an error message quotes.
    pub quoted: Option<Quoted>,
}

/// The start of the packet an ICMP or ICMPv6 error quotes (destination
/// unreachable, source quench, redirect, time exceeded, parameter
/// problem; ICMPv6 1 to 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quoted {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The IP protocol (IPv6: the next header after the fixed header).
    pub proto: u8,
    /// The ports of a quoted TCP header of at least 16 bytes, or of a UDP
    /// header: the headers Wireshark dissects there, giving each a stream
    /// index ([`crate::analysis::Info::Seen`]).
    pub ports: Option<(u16, u16)>,
}

/// A TCP header Wireshark still numbers as a stream although it is not
/// whole: its first 16 bytes (ports to window) are there, but the header
/// is cut short, or its length field is below 20 or beyond the segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartialTcp {
    pub sport: u16,
    pub dport: u16,
}

/// The transport layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    None,
    Tcp(Tcp),
    Udp(Udp),
    Icmp(Icmp),
    /// A non-first IP fragment: the transport header is in another packet.
    Fragment {
        proto: u8,
        len: u32,
    },
    /// Some other IP protocol, with its payload length.
    Other {
        proto: u8,
        len: u32,
    },
}

/// One decoded frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Interface (pcapng interface id, or 0).
    pub iface: u32,
    pub link: u32,
    pub captured_len: u32,
    pub wire_len: u32,
    /// Linux packet type (cooked captures and live capture), when known.
    pub pkttype: Option<PacketType>,
    /// Outermost VLAN id, if the frame was tagged.
    pub vlan: Option<u16>,
    /// The ethertype of the network layer (after VLAN tags), 0 if none
    /// (an 802.3 frame, whose type field is a length, has [`Packet::llc`]).
    pub ethertype: u16,
    /// The 802.2 LLC header of an 802.3 frame.
    pub llc: Option<Llc>,
    /// The VXLAN or Geneve tunnel the packet came through: then `net`
    /// and `transport` are the inner packet's (the outer headers are here).
    pub tunnel: Option<Tunnel>,
    /// Offset of the UDP payload in the frame (to look for a tunnel).
    pub(crate) udp_payload_at: Option<usize>,
    /// Offset of a GRE header in the frame.
    pub(crate) gre_at: Option<usize>,
    /// Offset of an IP packet carried as IP protocol 4 or 41.
    pub(crate) ipip_at: Option<usize>,
    /// Offset of the IPv4 or IPv6 header in the frame (for reassembly).
    pub(crate) net_at: Option<usize>,
    pub net: Net,
    pub transport: Transport,
    pub malformed: Option<Malformed>,
    /// A TCP header too short to decode that Wireshark numbers anyway
    /// (then `transport` is [`Transport::Other`] with protocol 6).
    pub partial_tcp: Option<PartialTcp>,
}

impl Packet {
    fn empty(ts_ns: u64, link: u32, captured_len: u32, wire_len: u32) -> Packet {
        Packet {
            ts_ns,
            iface: 0,
            link,
            captured_len,
            wire_len,
            pkttype: None,
            vlan: None,
            ethertype: 0,
            llc: None,
            tunnel: None,
            udp_payload_at: None,
            ipip_at: None,
            gre_at: None,
            net_at: None,
            net: Net::None,
            transport: Transport::None,
            malformed: None,
            partial_tcp: None,
        }
    }
    /// A piece of a fragmented IP datagram (first or later).
    pub fn is_fragment(&self) -> bool {
        match &self.net {
            Net::Ipv4(h) => h.more_fragments || h.frag_offset != 0,
            Net::Ipv6(h) => h.fragment.is_some(),
            _ => false,
        }
    }

    pub fn tcp(&self) -> Option<&Tcp> {
        match &self.transport {
            Transport::Tcp(t) => Some(t),
            _ => None,
        }
    }
    pub fn udp(&self) -> Option<&Udp> {
        match &self.transport {
            Transport::Udp(u) => Some(u),
            _ => None,
        }
    }
    pub fn src_ip(&self) -> Option<IpAddr> {
        match &self.net {
            Net::Ipv4(h) => Some(IpAddr::V4(h.src)),
            Net::Ipv6(h) => Some(IpAddr::V6(h.src)),
            _ => None,
        }
    }
    pub fn dst_ip(&self) -> Option<IpAddr> {
        match &self.net {
            Net::Ipv4(h) => Some(IpAddr::V4(h.dst)),
            Net::Ipv6(h) => Some(IpAddr::V6(h.dst)),
            _ => None,
        }
    }
    /// The IP protocol number (after IPv6 extension headers).
    pub fn ip_proto(&self) -> Option<u8> {
        match &self.net {
            Net::Ipv4(h) => Some(h.proto),
            Net::Ipv6(h) => Some(h.proto),
            _ => None,
        }
    }
    /// Source and destination ports, for TCP and UDP.
    pub fn ports(&self) -> Option<(u16, u16)> {
        match &self.transport {
            Transport::Tcp(t) => Some((t.sport, t.dport)),
            Transport::Udp(u) => Some((u.sport, u.dport)),
            _ => None,
        }
    }
}

/// Decode one frame of link type `link`. `wire_len` is the original length
/// (before the snap length cut it).
pub fn decode(link: u32, data: &[u8], ts_ns: u64, wire_len: u32) -> Packet {
    let mut p = decode_frame(link, data, ts_ns, wire_len);
    // A fragment of a tunnel packet waits for reassembly (crate::reasm):
    // the tunnel is opened on the whole datagram, at the frame that
    // completes it, as Wireshark does.
    // Tunnels inside tunnels (Geneve carrying GRE, ...): up to 4 levels;
    // `tunnel` then holds the innermost one's outer headers.
    for _ in 0..4 {
        let open = p.udp_payload_at.is_some() || p.gre_at.is_some() || p.ipip_at.is_some();
        if !open || p.is_fragment() || !decapsulate(&mut p, data) {
            break;
        }
    }
    p
}

/// The tunnel header at the start of `b`: its kind, identifier, length and
/// the link type of what follows (Ethernet or raw IP); None when it is not
/// one we decode.
fn tunnel_header(
    dport: u16,
    sport: u16,
    b: &[u8],
) -> Option<(TunnelKind, Option<u32>, usize, u32)> {
    let vni = |o: usize| {
        Some(u32::from_be_bytes([
            0,
            *b.get(o)?,
            *b.get(o + 1)?,
            *b.get(o + 2)?,
        ]))
    };
    let eth = linktype::ETHERNET;
    match dport {
        // Whatever the flags say, as Wireshark and tcpdump decode it.
        4789 if b.len() >= 8 => Some((TunnelKind::Vxlan, Some(vni(4)?), 8, eth)),
        // Version 0, protocol type Transparent Ethernet Bridging.
        // Version 0, carrying Ethernet (Transparent Ethernet Bridging) or
        // IP directly (as Google Cloud's Geneve does).
        6081 if b.len() >= 8 && b[0] >> 6 == 0 => {
            let opts = (b[0] & 0x3f) as usize * 4;
            let inner = match be16(b, 2) {
                ethertype::TEB => eth,
                ethertype::IPV4 | ethertype::IPV6 => linktype::RAW,
                _ => return None,
            };
            Some((TunnelKind::Geneve, Some(vni(4)?), 8 + opts, inner))
        }
        _ if dport == 2152 || sport == 2152 => gtp_u(b),
        // GRE in UDP (RFC 8086).
        4754 => gre_header(b),
        _ if dport == 5072 || sport == 5072 => ayiya(b),
        _ => None,
    }
}

/// AYIYA: identity length (a power of 2) and type, signature length (in
/// 4-byte words) and hash method, authentication method and opcode, next
/// header, epoch, identity, signature; a forwarded (opcode 1) IPv4 or IPv6
/// packet follows.
fn ayiya(b: &[u8]) -> Option<(TunnelKind, Option<u32>, usize, u32)> {
    if b.len() < 8 || b[2] & 0x0f != 1 || !matches!(b[3], ipproto::IPIP | ipproto::IPV6) {
        return None;
    }
    let len = 8 + (1usize << (b[0] >> 4)) + usize::from(b[1] >> 4) * 4;
    (b.len() > len).then_some((TunnelKind::Ayiya, None, len, linktype::RAW))
}

/// GTP-U version 1, a G-PDU (message type 255) carrying IP: the TEID and
/// the header length (with the optional fields and extension headers).
fn gtp_u(b: &[u8]) -> Option<(TunnelKind, Option<u32>, usize, u32)> {
    if b.len() < 8 || b[0] >> 5 != 1 || b[0] & 0x10 == 0 || b[1] != 0xff {
        return None;
    }
    let teid = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    let mut at = 8;
    if b[0] & 0x07 != 0 {
        // Sequence number, N-PDU number, next extension header type.
        at += 4;
        let mut next = *b.get(at - 1)?;
        while next != 0 {
            // Each extension header: length in 4-byte units, content, next type.
            let units = *b.get(at)? as usize;
            if units == 0 {
                return None;
            }
            at += units * 4;
            next = *b.get(at - 1)?;
        }
    }
    match b.get(at)? >> 4 {
        4 | 6 => Some((TunnelKind::GtpU, Some(teid), at, linktype::RAW)),
        _ => None,
    }
}

/// A GRE header (RFC 2784, key and sequence of RFC 2890) and, for ERSPAN,
/// its own header: the kind, key or session id, length of both, and the
/// link type of the payload.
fn gre_header(b: &[u8]) -> Option<(TunnelKind, Option<u32>, usize, u32)> {
    if b.len() < 4 {
        return None;
    }
    let flags = be16(b, 0);
    // Version 0 only (1 is PPTP's enhanced GRE).
    if flags & 0x7 != 0 {
        return None;
    }
    let proto = be16(b, 2);
    let mut at = 4;
    if flags & 0x8000 != 0 {
        at += 4; // checksum and reserved
    }
    let mut key = None;
    if flags & 0x2000 != 0 {
        key = Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?));
        at += 4;
    }
    let seq = flags & 0x1000 != 0;
    if seq {
        at += 4;
    }
    if b.len() < at {
        return None;
    }
    match proto {
        ethertype::IPV4 | ethertype::IPV6 => Some((TunnelKind::Gre, key, at, linktype::RAW)),
        ethertype::TEB => Some((TunnelKind::Gre, key, at, linktype::ETHERNET)),
        // Cisco WCCP redirection: IPv4, after a 4-byte WCCPv2 redirect
        // header unless an IPv4 header starts right away (WCCPv1).
        ethertype::WCCP => {
            let at = if b.get(at)? >> 4 == 4 { at } else { at + 4 };
            Some((TunnelKind::Gre, key, at, linktype::RAW))
        }
        ethertype::ARUBA_WLAN => Some((TunnelKind::Gre, key, at, linktype::IEEE802_11)),
        // Type I has no sequence number and no header of its own.
        ethertype::ERSPAN_2 if !seq => Some((TunnelKind::Erspan, None, at, linktype::ETHERNET)),
        ethertype::ERSPAN_2 => {
            let e = b.get(at..at + 8)?;
            (e[0] >> 4 == 1).then_some(())?;
            let session = u32::from(be16(e, 2) & 0x03ff);
            Some((
                TunnelKind::Erspan,
                Some(session),
                at + 8,
                linktype::ETHERNET,
            ))
        }
        ethertype::ERSPAN_3 => {
            let e = b.get(at..at + 12)?;
            (e[0] >> 4 == 2).then_some(())?;
            let session = u32::from(be16(e, 2) & 0x03ff);
            // The O flag: an 8-byte platform-specific subheader follows.
            let sub = if e[11] & 0x01 != 0 { 8 } else { 0 };
            Some((
                TunnelKind::Erspan,
                Some(session),
                at + 12 + sub,
                linktype::ETHERNET,
            ))
        }
        _ => None,
    }
}

/// One level of tunnel: a packet whose UDP payload is VXLAN, Geneve or
/// GTP-U, or whose IP payload is GRE (or ERSPAN in GRE), with an IP packet
/// inside becomes the inner packet, with the outer headers in
/// [`Packet::tunnel`] (and its frame lengths and capture metadata).
fn decapsulate(p: &mut Packet, data: &[u8]) -> bool {
    let (at, sport, dport, payload_len, head) = match (p.transport, p.udp_payload_at, p.gre_at) {
        (Transport::Other { len, .. }, _, _) if p.ipip_at.is_some() => {
            let at = p.ipip_at.unwrap_or(0);
            (
                at,
                0,
                0,
                len,
                Some((TunnelKind::Ipip, None, 0, linktype::RAW)),
            )
        }
        (Transport::Udp(u), Some(at), _) => {
            let Some(b) = data.get(at..) else {
                return false;
            };
            (
                at,
                u.sport,
                u.dport,
                u.payload_len,
                tunnel_header(u.dport, u.sport, b),
            )
        }
        (Transport::Other { len, .. }, _, Some(at)) => {
            let Some(b) = data.get(at..) else {
                return false;
            };
            (at, 0, 0, len, gre_header(b))
        }
        _ => return false,
    };
    let Some((kind, vni, hdr, inner_link)) = head else {
        return false;
    };
    let Some(inner) = data.get(at + hdr..) else {
        return false;
    };
    let (Some(src), Some(dst)) = (p.src_ip(), p.dst_ip()) else {
        return false;
    };
    let inner_wire = (payload_len as usize).saturating_sub(hdr).max(inner.len());
    let mut q = decode_frame(inner_link, inner, p.ts_ns, inner_wire as u32);
    if !matches!(q.net, Net::Ipv4(_) | Net::Ipv6(_)) {
        return false;
    }
    q.tunnel = Some(Tunnel {
        kind,
        vni,
        src,
        dst,
        sport,
        dport,
    });
    q.iface = p.iface;
    q.link = p.link;
    q.captured_len = p.captured_len;
    q.wire_len = p.wire_len;
    q.pkttype = p.pkttype;
    // Offsets in the frame, not in the inner slice (a tunnel inside is
    // opened next).
    let shift = |o: Option<usize>| o.map(|n| n + at + hdr);
    q.udp_payload_at = shift(q.udp_payload_at);
    q.gre_at = shift(q.gre_at);
    q.ipip_at = shift(q.ipip_at);
    q.net_at = shift(q.net_at);
    if q.malformed.is_none() {
        q.malformed = p.malformed;
    }
    *p = q;
    true
}

/// Where a PPP frame's payload starts and its protocol as an ethertype (0
/// for protocols other than IPv4, IPv6 and MPLS); None when the header is
/// cut. Address and control may be compressed away, and the protocol to
/// one byte (odd) when it fits (RFC 1661 6.5, 6.6).
pub fn ppp_network_start(data: &[u8]) -> Option<(u16, usize)> {
    let off = if data.starts_with(&[0xff, 0x03]) {
        2
    } else {
        0
    };
    let (proto, len) = match data.get(off) {
        Some(&b) if b & 1 == 1 => (u16::from(b), 1),
        Some(_) if data.len() >= off + 2 => (be16(data, off), 2),
        _ => return None,
    };
    let et = match proto {
        0x0021 => ethertype::IPV4,
        0x0057 => ethertype::IPV6,
        0x0281 => ethertype::MPLS,
        0x0283 => ethertype::MPLS_MULTICAST,
        _ => 0,
    };
    Some((et, off + len))
}

fn decode_frame(link: u32, data: &[u8], ts_ns: u64, wire_len: u32) -> Packet {
    let mut p = Packet::empty(ts_ns, link, data.len() as u32, wire_len);
    let (ethertype, off) = match link {
        linktype::ETHERNET => match ethernet(data, &mut p) {
            Some(x) => x,
            None => return p,
        },
        linktype::LINUX_SLL => {
            if data.len() < 16 {
                p.malformed = Some(trunc(Layer::Link, 16, data.len()));
                return p;
            }
            p.pkttype = Some(PacketType::from_linux(be16(data, 0)));
            match vlan_tags(data, be16(data, 14), 16, &mut p) {
                Some(x) => x,
                None => return p,
            }
        }
        linktype::LINUX_SLL2 => {
            if data.len() < 20 {
                p.malformed = Some(trunc(Layer::Link, 20, data.len()));
                return p;
            }
            p.pkttype = Some(PacketType::from_linux(data[10] as u16));
            match vlan_tags(data, be16(data, 0), 20, &mut p) {
                Some(x) => x,
                None => return p,
            }
        }
        linktype::RAW | linktype::RAW_12 | linktype::RAW_14 => match data.first() {
            Some(b) if b >> 4 == 4 => (ethertype::IPV4, 0),
            Some(b) if b >> 4 == 6 => (ethertype::IPV6, 0),
            Some(b) => {
                p.malformed = Some(Malformed::BadVersion {
                    layer: Layer::Ipv4,
                    found: b >> 4,
                });
                return p;
            }
            None => {
                p.malformed = Some(trunc(Layer::Ipv4, 1, 0));
                return p;
            }
        },
        linktype::IPV4 => (ethertype::IPV4, 0),
        linktype::IPV6 => (ethertype::IPV6, 0),
        linktype::PPP | linktype::PPP_HDLC => match ppp_network_start(data) {
            Some(x) => x,
            None => {
                let need = if data.starts_with(&[0xff, 0x03]) {
                    4
                } else {
                    2
                };
                p.malformed = Some(trunc(Layer::Link, need, data.len()));
                return p;
            }
        },
        linktype::FDDI => {
            // Frame control, destination, source (bit-swapped addresses,
            // not shown), then 802.2 LLC.
            if data.len() < 13 {
                p.malformed = Some(trunc(Layer::Link, 13, data.len()));
                return p;
            }
            match llc_snap(data, 13, &mut p) {
                Some(x) => x,
                None => return p,
            }
        }
        linktype::IEEE802_11 => match ieee80211(data, 0, &mut p) {
            Some(x) => x,
            None => return p,
        },
        linktype::IEEE802_11_RADIOTAP => {
            if data.len() < 4 {
                p.malformed = Some(trunc(Layer::Link, 4, data.len()));
                return p;
            }
            let len = u16::from_le_bytes([data[2], data[3]]) as usize;
            match ieee80211(data, len, &mut p) {
                Some(x) => x,
                None => return p,
            }
        }
        linktype::C_HDLC
        | linktype::ARCNET
        | linktype::ARCNET_LINUX
        | linktype::NFLOG
        | linktype::IPOIB => match other_link_start(link, data) {
            Ok(x) => x,
            Err(need) => {
                p.malformed = Some(trunc(Layer::Link, need, data.len()));
                return p;
            }
        },
        linktype::NULL | linktype::LOOP => {
            if data.len() < 4 {
                p.malformed = Some(trunc(Layer::Link, 4, data.len()));
                return p;
            }
            let raw = [data[0], data[1], data[2], data[3]];
            let fam = if link == linktype::LOOP {
                u32::from_be_bytes(raw)
            } else {
                // Host byte order of the machine that wrote the file: the
                // family is small, so whichever reading is small is right.
                let le = u32::from_le_bytes(raw);
                if le <= 0xffff {
                    le
                } else {
                    u32::from_be_bytes(raw)
                }
            };
            let et = match fam {
                2 => ethertype::IPV4,
                // AF_INET6 is 24 (NetBSD, OpenBSD), 28 (FreeBSD), 30 (macOS), 10 (Linux).
                10 | 24 | 28 | 30 => ethertype::IPV6,
                _ => 0,
            };
            (et, 4)
        }
        other => {
            p.malformed = Some(Malformed::UnsupportedLink(other));
            return p;
        }
    };
    // Where the network layer must end (absolute), when a shim says so.
    let mut limit = usize::MAX;
    let (ethertype, off) = match shims(data, ethertype, off, &mut p, &mut limit, wire_len) {
        Some(x) => x,
        None => return p,
    };
    let (ethertype, off) = if ethertype < 0x0600 && matches!(link, linktype::ETHERNET) {
        // 802.3: the type field is a length; 802.2 LLC follows.
        let length = ethertype;
        match llc_snap(data, off, &mut p) {
            Some((0, _)) | None => {
                if let Some(l) = p.llc.as_mut() {
                    l.length = length;
                }
                return p;
            }
            Some((et, at)) => {
                if let Some(l) = p.llc.as_mut() {
                    l.length = length;
                }
                (et, at)
            }
        }
    } else {
        (ethertype, off)
    };
    let rest = &data[off.min(data.len())..limit.clamp(off.min(data.len()), data.len())];
    p.ethertype = ethertype;
    // Bytes of the network layer on the wire (the capture may hold fewer).
    let wire = (wire_len as usize)
        .min(limit)
        .saturating_sub(off)
        .max(rest.len());
    match ethertype {
        ethertype::IPV4 => {
            p.net_at = Some(off);
            ipv4(rest, off, wire, &mut p)
        }
        ethertype::IPV6 => {
            p.net_at = Some(off);
            ipv6(rest, off, wire, &mut p)
        }
        ethertype::ARP => arp(rest, &mut p),
        _ => {}
    }
    p
}

/// ARCnet types (RFC 1201 and the older RFC 1051 ones) as Ethernet types
/// (0 for the others).
pub fn arcnet_type(t: u8) -> u16 {
    match t {
        0xd4 | 0xf0 => ethertype::IPV4,
        0xd5 | 0xf1 => ethertype::ARP,
        0xc4 => ethertype::IPV6,
        _ => 0,
    }
}

/// The Ethernet type and the start of the network header for Cisco HDLC,
/// ARCnet, NFLOG and IP over InfiniBand frames; `Err(bytes needed)` when
/// the link header is cut short.
fn other_link_start(link: u32, data: &[u8]) -> Result<(u16, usize), usize> {
    let need = |n: usize| if data.len() < n { Err(n) } else { Ok(()) };
    match link {
        linktype::C_HDLC => {
            need(4)?;
            Ok((be16(data, 2), 4))
        }
        // ARCnet: RFC 1051 types have a 1-byte header after the addresses;
        // RFC 1201 ones add a split flag and a sequence number, and an
        // exception packet (flag 0xff) 4 more bytes.
        linktype::ARCNET | linktype::ARCNET_LINUX => {
            let at = if link == linktype::ARCNET { 2 } else { 4 };
            need(at + 1)?;
            let t = data[at];
            if matches!(t, 0xf0 | 0xf1) {
                return Ok((arcnet_type(t), at + 1));
            }
            need(at + 4)?;
            let off = if data[at + 1] == 0xff { at + 8 } else { at + 4 };
            need(off)?;
            Ok((arcnet_type(t), off))
        }
        // NFLOG: a 4-byte header (address family first), then TLVs
        // (little-endian length including the 4-byte TLV header, type;
        // padded to 4 bytes); type 9 is the packet.
        linktype::NFLOG => {
            need(4)?;
            let et = match data[0] {
                2 => ethertype::IPV4,
                10 => ethertype::IPV6,
                _ => 0,
            };
            let mut off = 4;
            loop {
                need(off + 4)?;
                let len = usize::from(u16::from_le_bytes([data[off], data[off + 1]]));
                let ty = u16::from_le_bytes([data[off + 2], data[off + 3]]);
                if len < 4 {
                    return Err(off + 4);
                }
                if ty == 9 {
                    return Ok((et, off + 4));
                }
                off += (len + 3) & !3;
            }
        }
        // IP over InfiniBand: the 40-byte pseudo-header with the
        // addresses, then the 4-byte IPoIB header (type, reserved).
        linktype::IPOIB => {
            need(44)?;
            Ok((be16(data, 40), 44))
        }
        _ => Err(0),
    }
}

fn trunc(layer: Layer, need: usize, have: usize) -> Malformed {
    Malformed::Truncated {
        layer,
        need: need as u32,
        have: have as u32,
    }
}

fn ethernet(data: &[u8], p: &mut Packet) -> Option<(u16, usize)> {
    if data.len() < 14 {
        p.malformed = Some(trunc(Layer::Link, 14, data.len()));
        return None;
    }
    vlan_tags(data, be16(data, 12), 14, p)
}

/// For link types whose network layer follows an 802.2 LLC/SNAP header
/// (FDDI, 802.11 with or without radiotap): where the network header
/// starts and its Ethernet type, for filters that run on it. None for
/// other link types and frames that carry no network layer.
pub fn llc_network_start(link: u32, data: &[u8]) -> Option<(usize, u16)> {
    let mut scratch = Packet::empty(0, link, data.len() as u32, data.len() as u32);
    let r = match link {
        linktype::FDDI if data.len() >= 13 => llc_snap(data, 13, &mut scratch),
        linktype::IEEE802_11 => ieee80211(data, 0, &mut scratch),
        linktype::IEEE802_11_RADIOTAP if data.len() >= 4 => ieee80211(
            data,
            u16::from_le_bytes([data[2], data[3]]) as usize,
            &mut scratch,
        ),
        _ => None,
    };
    r.filter(|&(et, _)| et != 0).map(|(et, off)| (off, et))
}

/// An 802.2 LLC header at `off`: kept in [`Packet::llc`]; with SNAP
/// (AA AA 03) and an Ethernet organisation code (00 00 00, or Cisco's
/// 00 00 F8), the Ethernet type it carries and where that payload starts.
/// `(0, off)` for LLC without an Ethernet type.
fn llc_snap(data: &[u8], off: usize, p: &mut Packet) -> Option<(u16, usize)> {
    let Some(h) = data.get(off..off + 3) else {
        p.malformed = Some(trunc(Layer::Link, off + 3, data.len()));
        return None;
    };
    p.llc = Some(Llc {
        dsap: h[0],
        ssap: h[1],
        control: h[2],
        length: 0,
    });
    if h != [0xaa, 0xaa, 0x03] {
        return Some((0, off));
    }
    let Some(snap) = data.get(off + 3..off + 8) else {
        p.malformed = Some(trunc(Layer::Link, off + 8, data.len()));
        return None;
    };
    if snap[..3] != [0, 0, 0] && snap[..3] != [0, 0, 0xf8] {
        return Some((0, off));
    }
    p.llc = None;
    Some((be16(snap, 3), off + 8))
}

/// An IEEE 802.11 frame at `off`: for a data frame that carries a
/// payload in the clear, the Ethernet type of its LLC/SNAP payload and
/// where that starts. Management, control, null-data and protected
/// frames carry nothing to decode: `(0, off)`.
fn ieee80211(data: &[u8], off: usize, p: &mut Packet) -> Option<(u16, usize)> {
    let Some(fc) = data.get(off..off + 2) else {
        p.malformed = Some(trunc(Layer::Link, off + 2, data.len()));
        return None;
    };
    let (fc0, fc1) = (fc[0], fc[1]);
    let kind = (fc0 >> 2) & 0x3;
    let subtype = fc0 >> 4;
    // Data frames only; subtypes with bit 2 set carry no data; the
    // protected bit means the payload is encrypted.
    if kind != 2 || subtype & 0x4 != 0 || fc1 & 0x40 != 0 {
        return Some((0, off));
    }
    let mut len = 24;
    if fc1 & 0x03 == 0x03 {
        len += 6; // to and from the distribution system: a fourth address
    }
    if subtype & 0x8 != 0 {
        len += 2; // QoS control
        if fc1 & 0x80 != 0 {
            len += 4; // HT control, with the order bit
        }
    }
    if data.len() < off + len {
        p.malformed = Some(trunc(Layer::Link, off + len, data.len()));
        return None;
    }
    llc_snap(data, off + len, p)
}

/// Skip MPLS label stacks and PPPoE session headers (with VLAN tags
/// between them) that carry IP: the ethertype of what they carry and
/// where it starts. Anything else is left as it is.
/// MPLS, PPPoE, VLAN tags, 802.1ah and FabricPath from `off` (just after
/// an Ethernet type `et`): the type and offset of what follows. PPPoE's
/// payload length and FabricPath's inner FCS (which tshark assumes there)
/// end the network layer early: `limit` (an offset in `data`) then says
/// where, as tshark bounds it.
fn shims(
    data: &[u8],
    mut et: u16,
    mut off: usize,
    p: &mut Packet,
    limit: &mut usize,
    wire_len: u32,
) -> Option<(u16, usize)> {
    for _ in 0..8 {
        match et {
            ethertype::MPLS | ethertype::MPLS_MULTICAST => {
                // Label stack entries up to the bottom-of-stack bit.
                let mut n = 0;
                loop {
                    let Some(e) = data.get(off..off + 4) else {
                        p.malformed = Some(trunc(Layer::Link, off + 4, data.len()));
                        return None;
                    };
                    off += 4;
                    n += 1;
                    if e[2] & 0x01 != 0 || n > 16 {
                        break;
                    }
                }
                // What follows has no type: IP by its version nibble, as
                // Wireshark and tcpdump guess it.
                et = match data.get(off).map(|b| b >> 4) {
                    Some(4) => ethertype::IPV4,
                    Some(6) => ethertype::IPV6,
                    _ => return Some((et, off)),
                };
            }
            ethertype::PPPOE_SESSION => {
                // The PPP protocol may be compressed to one byte (RFC 1661
                // 6.5) and address and control may be there.
                let Some((ppp, at)) = data.get(off + 6..).and_then(ppp_network_start) else {
                    p.malformed = Some(trunc(Layer::Link, off + 8, data.len()));
                    return None;
                };
                if !matches!(ppp, ethertype::IPV4 | ethertype::IPV6) {
                    return Some((et, off));
                }
                let len = usize::from(be16(data, off + 4));
                *limit = (*limit).min(off + 6 + len);
                et = ppp;
                off += 6 + at;
            }
            // An I-TAG (4 bytes), then the customer's addresses and type.
            ethertype::PBB => {
                let Some(h) = data.get(off..off + 18) else {
                    p.malformed = Some(trunc(Layer::Link, off + 18, data.len()));
                    return None;
                };
                et = be16(h, 16);
                off += 18;
            }
            ethertype::ETAG | ethertype::VNTAG => {
                let n = if et == ethertype::ETAG { 6 } else { 4 };
                let Some(h) = data.get(off..off + n + 2) else {
                    p.malformed = Some(trunc(Layer::Link, off + n + 2, data.len()));
                    return None;
                };
                et = be16(h, n);
                off += n + 2;
            }
            // FTag and TTL (2 bytes), then the inner addresses and type.
            ethertype::FABRICPATH => {
                let Some(h) = data.get(off..off + 16) else {
                    p.malformed = Some(trunc(Layer::Link, off + 16, data.len()));
                    return None;
                };
                et = be16(h, 14);
                off += 16;
                *limit = (*limit).min((wire_len as usize).saturating_sub(4));
            }
            ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD => {
                (et, off) = vlan_tags(data, et, off, p)?;
            }
            _ => break,
        }
    }
    Some((et, off))
}

/// Skip 802.1Q / 802.1ad tags starting at `off` (just after an ethertype).
fn vlan_tags(data: &[u8], mut et: u16, mut off: usize, p: &mut Packet) -> Option<(u16, usize)> {
    let mut depth = 0;
    while matches!(et, ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD) {
        if data.len() < off + 4 {
            p.malformed = Some(trunc(Layer::Vlan, off + 4, data.len()));
            return None;
        }
        if p.vlan.is_none() {
            p.vlan = Some(be16(data, off) & 0x0fff);
        }
        et = be16(data, off + 2);
        off += 4;
        depth += 1;
        if depth > 8 {
            break;
        }
    }
    Some((et, off))
}

/// The last address of a loose (131) or strict (137) source route option
/// in IPv4 options `o` whose pointer has not passed its end.
fn source_route_dst(o: &[u8]) -> Option<Ipv4Addr> {
    let mut i = 0;
    while i < o.len() {
        match o[i] {
            0 => return None,
            1 => i += 1,
            kind => {
                let len = usize::from(*o.get(i + 1)?);
                if len < 2 || i + len > o.len() {
                    return None;
                }
                if matches!(kind, 131 | 137) && len >= 7 && usize::from(o[i + 2]) <= len {
                    let a = &o[i + len - 4..i + len];
                    return Some(Ipv4Addr::new(a[0], a[1], a[2], a[3]));
                }
                i += len;
            }
        }
    }
    None
}

/// IPv4 in `b` (as captured), of which `wire` bytes were on the wire.
fn ipv4(b: &[u8], at: usize, wire: usize, p: &mut Packet) {
    if b.len() < 20 {
        p.malformed = Some(trunc(Layer::Ipv4, 20, b.len()));
        return;
    }
    let version = b[0] >> 4;
    if version != 4 {
        p.malformed = Some(Malformed::BadVersion {
            layer: Layer::Ipv4,
            found: version,
        });
        return;
    }
    let hl = ((b[0] & 0x0f) as usize) * 4;
    if hl < 20 {
        p.malformed = Some(Malformed::BadHeaderLength {
            layer: Layer::Ipv4,
            len: hl as u32,
        });
        return;
    }
    if b.len() < hl {
        p.malformed = Some(trunc(Layer::Ipv4, hl, b.len()));
        return;
    }
    let total = be16(b, 2);
    let frag = be16(b, 6);
    let h = Ipv4 {
        src: Ipv4Addr::new(b[12], b[13], b[14], b[15]),
        dst: Ipv4Addr::new(b[16], b[17], b[18], b[19]),
        tos: b[1],
        ttl: b[8],
        id: be16(b, 4),
        proto: b[9],
        header_len: hl as u8,
        total_len: total,
        dont_fragment: frag & 0x4000 != 0,
        more_fragments: frag & 0x2000 != 0,
        frag_offset: (frag & 0x1fff) * 8,
        route_dst: source_route_dst(&b[20..hl]),
    };
    p.net = Net::Ipv4(h);
    // A total length of 0 is what TSO hands to a capture on the sender:
    // trust the captured bytes then, as Wireshark does.
    let ip_len = if total == 0 {
        wire
    } else if (total as usize) < hl {
        p.malformed = Some(Malformed::BadTotalLength {
            layer: Layer::Ipv4,
            len: total as u32,
        });
        return;
    } else if total as usize > wire {
        p.malformed = Some(Malformed::TruncatedIp {
            layer: Layer::Ipv4,
            missing: (total as usize - wire) as u32,
        });
        wire
    } else {
        total as usize
    };
    let payload_len = (ip_len - hl) as u32;
    let payload = &b[hl..ip_len.min(b.len())];
    if h.frag_offset != 0 {
        p.transport = Transport::Fragment {
            proto: h.proto,
            len: payload_len,
        };
        return;
    }
    transport(h.proto, payload, at + hl, payload_len, false, p);
}

/// IPv6 in `b` (as captured), of which `wire` bytes were on the wire.
fn ipv6(b: &[u8], at: usize, wire: usize, p: &mut Packet) {
    if b.len() < 40 {
        p.malformed = Some(trunc(Layer::Ipv6, 40, b.len()));
        return;
    }
    let version = b[0] >> 4;
    if version != 6 {
        p.malformed = Some(Malformed::BadVersion {
            layer: Layer::Ipv6,
            found: version,
        });
        return;
    }
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src.copy_from_slice(&b[8..24]);
    dst.copy_from_slice(&b[24..40]);
    let payload_len = be16(b, 4);
    let next = b[6];
    let mut h = Ipv6 {
        src: Ipv6Addr::from(src),
        dst: Ipv6Addr::from(dst),
        traffic_class: ((be16(b, 0) >> 4) & 0xff) as u8,
        flow_label: be32(b, 0) & 0x000f_ffff,
        hop_limit: b[7],
        next_header: next,
        proto: next,
        payload_len,
        ext_len: 0,
        fragment: None,
    };
    // Skip extension headers.
    let mut off = 40usize;
    let mut proto = next;
    let mut fragmented_later = false;
    for _ in 0..16 {
        match proto {
            ipproto::HOPOPT
            | ipproto::ROUTING
            | ipproto::DSTOPTS
            | ipproto::MOBILITY
            | ipproto::HIP
            | ipproto::SHIM6 => {
                if b.len() < off + 2 {
                    h.proto = proto;
                    p.net = Net::Ipv6(h);
                    p.malformed = Some(trunc(Layer::Ipv6, off + 2, b.len()));
                    return;
                }
                let len = (b[off + 1] as usize + 1) * 8;
                proto = b[off];
                off += len;
            }
            ipproto::AH => {
                if b.len() < off + 2 {
                    h.proto = proto;
                    p.net = Net::Ipv6(h);
                    p.malformed = Some(trunc(Layer::Ipv6, off + 2, b.len()));
                    return;
                }
                let len = (b[off + 1] as usize + 2) * 4;
                proto = b[off];
                off += len;
            }
            ipproto::FRAGMENT => {
                if b.len() < off + 8 {
                    h.proto = proto;
                    p.net = Net::Ipv6(h);
                    p.malformed = Some(trunc(Layer::Ipv6, off + 8, b.len()));
                    return;
                }
                let fo = be16(b, off + 2);
                let offset = fo & 0xfff8;
                h.fragment = Some((offset, fo & 1 != 0, be32(b, off + 4)));
                fragmented_later = offset != 0;
                proto = b[off];
                off += 8;
            }
            _ => break,
        }
    }
    h.proto = proto;
    h.ext_len = (off - 40).min(u16::MAX as usize) as u16;
    p.net = Net::Ipv6(h);
    let ip_end = if payload_len == 0 {
        // Jumbogram or TSO: trust the capture.
        wire.max(off)
    } else if 40 + payload_len as usize > wire {
        p.malformed = Some(Malformed::TruncatedIp {
            layer: Layer::Ipv6,
            missing: (40 + payload_len as usize - wire) as u32,
        });
        wire
    } else {
        40 + payload_len as usize
    };
    if ip_end < off {
        p.malformed = Some(Malformed::BadTotalLength {
            layer: Layer::Ipv6,
            len: payload_len as u32,
        });
        return;
    }
    let plen = (ip_end - off) as u32;
    if b.len() < off {
        p.malformed = Some(trunc(Layer::Ipv6, off, b.len()));
        return;
    }
    if fragmented_later {
        p.transport = Transport::Fragment { proto, len: plen };
        return;
    }
    let payload = &b[off..ip_end.min(b.len())];
    transport(proto, payload, at + off, plen, true, p);
}

/// The transport header in `b`, which starts `at` bytes into the frame.
fn transport(proto: u8, b: &[u8], at: usize, payload_len: u32, v6: bool, p: &mut Packet) {
    // IPsec AH (RFC 4302) authenticates, leaving what follows readable:
    // skip it (IPv6 did so with the extension headers).
    let (mut proto, mut b, mut at, mut payload_len) = (proto, b, at, payload_len);
    for _ in 0..4 {
        if proto != ipproto::AH {
            break;
        }
        let len = b.get(1).map_or(0, |&l| (usize::from(l) + 2) * 4);
        if b.len() < 8 || b.len() < len {
            p.malformed = Some(trunc(Layer::Ah, len.max(8), b.len()));
            p.transport = Transport::Other {
                proto,
                len: payload_len,
            };
            return;
        }
        proto = b[0];
        b = &b[len..];
        at += len;
        payload_len = payload_len.saturating_sub(len as u32);
    }
    match proto {
        ipproto::IPIP | ipproto::IPV6 => {
            p.transport = Transport::Other {
                proto,
                len: payload_len,
            };
            p.ipip_at = Some(at);
        }
        ipproto::TCP => tcp(b, payload_len, p),
        ipproto::UDP => {
            if b.len() < 8 {
                p.malformed = Some(trunc(Layer::Udp, 8, b.len()));
                p.transport = Transport::Other {
                    proto,
                    len: payload_len,
                };
                return;
            }
            p.transport = Transport::Udp(Udp {
                sport: be16(b, 0),
                dport: be16(b, 2),
                len: be16(b, 4),
                payload_len: payload_len.saturating_sub(8),
            });
            p.udp_payload_at = Some(at + 8);
        }
        ipproto::GRE => {
            p.transport = Transport::Other {
                proto,
                len: payload_len,
            };
            p.gre_at = Some(at);
        }
        ipproto::ICMP | ipproto::ICMPV6 if (proto == ipproto::ICMPV6) == v6 => {
            if b.len() < 8 {
                p.malformed = Some(trunc(Layer::Icmp, 8, b.len()));
                p.transport = Transport::Other {
                    proto,
                    len: payload_len,
                };
                return;
            }
            let error = if v6 {
                matches!(b[0], 1..=4)
            } else {
                matches!(b[0], 3 | 4 | 5 | 11 | 12)
            };
            p.transport = Transport::Icmp(Icmp {
                v6,
                kind: b[0],
                code: b[1],
                id: be16(b, 4),
                seq: be16(b, 6),
                payload_len: payload_len.saturating_sub(8),
                quoted: if error { quoted(&b[8..], v6) } else { None },
            });
        }
        _ => {
            p.transport = Transport::Other {
                proto,
                len: payload_len,
            }
        }
    }
}

/// The TCP or UDP header of `q` that Wireshark numbers as a stream, with
/// its addresses: its own segment, a TCP header cut short, or the header
/// an ICMP error quotes.
pub fn numbered_header(q: &Packet) -> Option<Quoted> {
    let (src, dst) = (q.src_ip()?, q.dst_ip()?);
    let one = |proto: u8, ports: (u16, u16)| Quoted {
        src,
        dst,
        proto,
        ports: Some(ports),
    };
    match &q.transport {
        Transport::Tcp(t) => Some(one(ipproto::TCP, (t.sport, t.dport))),
        Transport::Udp(u) => Some(one(ipproto::UDP, (u.sport, u.dport))),
        Transport::Other { proto: 6, .. } => {
            q.partial_tcp.map(|t| one(ipproto::TCP, (t.sport, t.dport)))
        }
        Transport::Icmp(i) => i.quoted.filter(|x| x.ports.is_some()),
        _ => None,
    }
}

/// sFlow's UDP port (RFC 3176; version 5 at sflow.org).
pub const SFLOW_PORT: u16 = 6343;
/// Sampled headers read from one sFlow datagram, at most.
pub const MAX_SAMPLED: usize = 64;

/// The headers Wireshark numbers inside the packet headers sampled by an
/// sFlow version 5 datagram to or from UDP port 6343 ([`SFLOW_PORT`]):
/// flow samples (plain and expanded) whose raw packet header records hold
/// an Ethernet frame, an IPv4 or an IPv6 packet. Wireshark dissects them
/// as it does packets quoted in ICMP errors: numbered, not analysed. Empty
/// for other packets, for datagrams put back together from fragments or
/// inside a tunnel, and past [`MAX_SAMPLED`] headers.
pub fn sflow_sampled(p: &Packet, data: &[u8]) -> Vec<Quoted> {
    let mut out = Vec::new();
    let (Transport::Udp(u), Some(at), Some(_), None) =
        (&p.transport, p.udp_payload_at, p.net_at, &p.tunnel)
    else {
        return out;
    };
    if u.sport != SFLOW_PORT && u.dport != SFLOW_PORT {
        return out;
    }
    let Some(b) = data.get(at..) else {
        return out;
    };
    let b = &b[..b.len().min(u.payload_len as usize)];
    let w = |o: usize| -> Option<u32> {
        Some(u32::from_be_bytes(
            b.get(o..o.checked_add(4)?)?.try_into().ok()?,
        ))
    };
    let walk = |out: &mut Vec<Quoted>| -> Option<()> {
        if w(0)? != 5 {
            return None;
        }
        let agent = match w(4)? {
            1 => 4,
            2 => 16,
            _ => return None,
        };
        // Sub-agent id, sequence number, uptime, number of samples.
        let mut off = 8 + agent + 12;
        let samples = w(off)?;
        off += 4;
        for _ in 0..samples.min(1024) {
            let (format, len) = (w(off)?, w(off + 4)? as usize);
            let body = off + 8;
            let end = body.checked_add(len)?;
            off = end;
            // Enterprise 0: 1 is a flow sample, 3 an expanded one (with
            // wider interface fields); the record count ends the fields.
            let fields = match format {
                1 => 32,
                3 => 44,
                _ => continue,
            };
            let records = w(body + fields - 4)?;
            let mut r = body + fields;
            for _ in 0..records.min(1024) {
                let (rformat, rlen) = (w(r)?, w(r + 4)? as usize);
                let rb = r + 8;
                r = rb.checked_add(rlen)?;
                if r > end {
                    return None;
                }
                // A raw packet header: protocol, frame length, bytes
                // stripped, header length, the header (padded to 4).
                if rformat != 1 {
                    continue;
                }
                let link = match w(rb)? {
                    1 => linktype::ETHERNET,
                    11 => linktype::IPV4,
                    12 => linktype::IPV6,
                    _ => continue,
                };
                let frame_len = w(rb + 4)?;
                let hlen = w(rb + 12)? as usize;
                let padded = hlen.checked_add(3)? & !3;
                let hdr = b.get(rb + 16..(rb + 16).checked_add(padded)?.min(r))?;
                let q = decode(link, hdr, p.ts_ns, frame_len.max(hdr.len() as u32));
                if let Some(h) = numbered_header(&q) {
                    if out.len() == MAX_SAMPLED {
                        return None;
                    }
                    out.push(h);
                }
            }
        }
        Some(())
    };
    let _ = walk(&mut out);
    out
}

/// The packet quoted by an ICMP (`v6` false) or ICMPv6 error, from the
/// bytes after the ICMP header; None unless its IP header is all there.
fn quoted(b: &[u8], v6: bool) -> Option<Quoted> {
    let (src, dst, proto, rest) = if v6 {
        if b.len() < 40 || b[0] >> 4 != 6 {
            return None;
        }
        let a = |o: usize| -> Option<IpAddr> {
            let o: [u8; 16] = b.get(o..o + 16)?.try_into().ok()?;
            Some(IpAddr::from(o))
        };
        let avail = (be16(b, 4) as usize).min(b.len() - 40);
        (a(8)?, a(24)?, b[6], &b[40..40 + avail])
    } else {
        let hl = usize::from(*b.first()? & 0x0f) * 4;
        if b.len() < 20 || b[0] >> 4 != 4 || hl < 20 || b.len() < hl {
            return None;
        }
        let src = IpAddr::from([b[12], b[13], b[14], b[15]]);
        let dst = IpAddr::from([b[16], b[17], b[18], b[19]]);
        // A later fragment has no transport header.
        if be16(b, 6) & 0x1fff != 0 {
            return Some(Quoted {
                src,
                dst,
                proto: b[9],
                ports: None,
            });
        }
        let total = be16(b, 2) as usize;
        let end = if total >= hl {
            total.min(b.len())
        } else {
            b.len()
        };
        (src, dst, b[9], &b[hl..end])
    };
    let need = match proto {
        ipproto::TCP => 16,
        ipproto::UDP => 8,
        _ => usize::MAX,
    };
    Some(Quoted {
        src,
        dst,
        proto,
        ports: (rest.len() >= need).then(|| (be16(rest, 0), be16(rest, 2))),
    })
}

fn tcp(b: &[u8], seg_len: u32, p: &mut Packet) {
    // Whatever goes wrong below, Wireshark numbers a header with its
    // first 16 bytes (it looks its conversation up before checking the
    // header length).
    if b.len() >= 16 {
        p.partial_tcp = Some(PartialTcp {
            sport: be16(b, 0),
            dport: be16(b, 2),
        });
    }
    if b.len() < 20 {
        p.malformed = Some(trunc(Layer::Tcp, 20, b.len()));
        p.transport = Transport::Other {
            proto: ipproto::TCP,
            len: seg_len,
        };
        return;
    }
    let hl = ((b[12] >> 4) as usize) * 4;
    if hl < 20 {
        p.malformed = Some(Malformed::BadHeaderLength {
            layer: Layer::Tcp,
            len: hl as u32,
        });
        p.transport = Transport::Other {
            proto: ipproto::TCP,
            len: seg_len,
        };
        return;
    }
    if b.len() < hl {
        p.malformed = Some(trunc(Layer::Tcp, hl, b.len()));
        p.transport = Transport::Other {
            proto: ipproto::TCP,
            len: seg_len,
        };
        return;
    }
    if (seg_len as usize) < hl {
        p.malformed = Some(Malformed::BadHeaderLength {
            layer: Layer::Tcp,
            len: hl as u32,
        });
        p.transport = Transport::Other {
            proto: ipproto::TCP,
            len: seg_len,
        };
        return;
    }
    p.partial_tcp = None;
    let options = TcpOptions::from_bytes(&b[20..hl]);
    if let Some((kind, offset)) = options.first_bad() {
        p.malformed = Some(Malformed::BadOption {
            kind,
            offset: offset as u32,
        });
    }
    p.transport = Transport::Tcp(Tcp {
        sport: be16(b, 0),
        dport: be16(b, 2),
        seq: be32(b, 4),
        ack: be32(b, 8),
        flags: be16(b, 12) & 0x0fff,
        window: be16(b, 14),
        checksum: be16(b, 16),
        urgent: be16(b, 18),
        header_len: hl as u8,
        payload_len: seg_len - hl as u32,
        options,
    });
}

fn arp(b: &[u8], p: &mut Packet) {
    if b.len() < 28 {
        p.malformed = Some(trunc(Layer::Arp, 28, b.len()));
        return;
    }
    // Only Ethernet / IPv4 ARP has this layout.
    if be16(b, 0) != 1 || be16(b, 2) != ethertype::IPV4 || b[4] != 6 || b[5] != 4 {
        return;
    }
    let mac = |at: usize| {
        let mut m = [0u8; 6];
        m.copy_from_slice(&b[at..at + 6]);
        m
    };
    p.net = Net::Arp(Arp {
        op: be16(b, 6),
        sender_mac: mac(8),
        sender_ip: Ipv4Addr::new(b[14], b[15], b[16], b[17]),
        target_mac: mac(18),
        target_ip: Ipv4Addr::new(b[24], b[25], b[26], b[27]),
    });
}

#[cfg(test)]
pub(crate) mod tests_support {
    /// An Ethernet + IPv4 + TCP SYN as Linux sends it on lo.
    pub fn syn_frame() -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        // IPv4, 20-byte header, total length 60.
        f.extend_from_slice(&[
            0x45, 0, 0, 60, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 2,
        ]);
        // TCP 43210 -> 8080, seq 1000, data offset 10 (40 bytes), SYN, win 65495.
        f.extend_from_slice(&[
            0xa8, 0xca, 0x1f, 0x90, 0, 0, 0x03, 0xe8, 0, 0, 0, 0, 0xa0, 0x02, 0xff, 0xd7, 0, 0, 0,
            0,
        ]);
        // mss 65495, sackOK, TS val 1 ecr 0, nop, wscale 7
        f.extend_from_slice(&[
            2, 4, 0xff, 0xd7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ]);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tests_support::syn_frame;

    /// The SYN's IP packet (no link header).
    fn syn_ip() -> Vec<u8> {
        syn_frame()[14..].to_vec()
    }

    fn assert_syn(p: &Packet) {
        let t = p.tcp().unwrap_or_else(|| panic!("no TCP in {p:?}"));
        assert_eq!((t.sport, t.dport, t.seq), (43210, 8080, 1000));
        assert_eq!(p.src_ip(), Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1))));
        assert!(p.malformed.is_none(), "{p:?}");
    }

    const SNAP_IPV4: [u8; 8] = [0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];

    #[test]
    fn llc_snap_on_8023_leads_to_ip() {
        let ip = syn_ip();
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&((ip.len() + 8) as u16).to_be_bytes());
        f.extend_from_slice(&SNAP_IPV4);
        f.extend_from_slice(&ip);
        assert_syn(&decode(linktype::ETHERNET, &f, 0, f.len() as u32));
        // Plain LLC (no SNAP) stays an LLC frame with its length.
        let mut g = vec![0u8; 12];
        g.extend_from_slice(&[0, 3, 0x42, 0x42, 0x03]);
        let p = decode(linktype::ETHERNET, &g, 0, g.len() as u32);
        assert_eq!(p.llc.map(|l| (l.dsap, l.length)), Some((0x42, 3)));
        assert!(p.tcp().is_none());
    }

    #[test]
    fn fddi_with_snap() {
        let mut f = vec![0x50];
        f.extend_from_slice(&[0u8; 12]);
        f.extend_from_slice(&SNAP_IPV4);
        f.extend_from_slice(&syn_ip());
        assert_syn(&decode(linktype::FDDI, &f, 0, f.len() as u32));
        let short = &f[..10];
        assert!(decode(linktype::FDDI, short, 0, 10).malformed.is_some());
    }

    /// An 802.11 QoS data frame to the distribution system carrying `ip`.
    fn wlan_qos_data(ip: &[u8], protected: bool) -> Vec<u8> {
        let fc1 = 0x01 | if protected { 0x40 } else { 0 };
        let mut f = vec![0x88, fc1, 0, 0];
        f.extend_from_slice(&[0u8; 18]); // three addresses
        f.extend_from_slice(&[0, 0]); // sequence control
        f.extend_from_slice(&[0, 0]); // QoS control
        f.extend_from_slice(&SNAP_IPV4);
        f.extend_from_slice(ip);
        f
    }

    #[test]
    fn ieee80211_data_plain_and_behind_radiotap() {
        let f = wlan_qos_data(&syn_ip(), false);
        assert_syn(&decode(linktype::IEEE802_11, &f, 0, f.len() as u32));
        let mut r = vec![0, 0, 8, 0, 0, 0, 0, 0];
        r.extend_from_slice(&f);
        assert_syn(&decode(
            linktype::IEEE802_11_RADIOTAP,
            &r,
            0,
            r.len() as u32,
        ));
        // Encrypted payloads are not decoded.
        let e = wlan_qos_data(&syn_ip(), true);
        assert!(
            decode(linktype::IEEE802_11, &e, 0, e.len() as u32)
                .tcp()
                .is_none()
        );
    }

    /// Ethernet + IPv4 (10.0.0.1 > 10.0.0.2, proto 47) + GRE with `proto`.
    fn gre_frame(proto: u16, inner: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let total = (20 + 4 + inner.len()) as u16;
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0, 1, 0, 0, 64, 47, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(&proto.to_be_bytes());
        f.extend_from_slice(inner);
        f
    }

    #[test]
    fn aruba_gre_carries_80211() {
        let f = gre_frame(ethertype::ARUBA_WLAN, &wlan_qos_data(&syn_ip(), false));
        let p = decode(linktype::ETHERNET, &f, 0, f.len() as u32);
        assert_syn(&p);
        let t = p.tunnel.expect("tunnel");
        assert_eq!((t.kind, t.vni), (TunnelKind::Gre, None));
    }

    #[test]
    fn a_fragmented_tunnel_packet_is_not_opened_before_reassembly() {
        let mut f = gre_frame(ethertype::IPV4, &syn_ip());
        // More fragments: only a piece of the GRE datagram.
        f[14 + 6] = 0x20;
        let p = decode(linktype::ETHERNET, &f, 0, f.len() as u32);
        assert!(p.tunnel.is_none() && p.tcp().is_none(), "{p:?}");
        assert!(p.is_fragment());
        f[14 + 6] = 0;
        let p = decode(linktype::ETHERNET, &f, 0, f.len() as u32);
        assert_syn(&p);
    }

    #[test]
    fn syn_decodes_every_field() {
        let f = syn_frame();
        let p = decode(linktype::ETHERNET, &f, 5, f.len() as u32);
        assert_eq!(p.malformed, None);
        let Net::Ipv4(ip) = p.net else {
            panic!("not ipv4")
        };
        assert_eq!(ip.src, Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(ip.dst, Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!((ip.ttl, ip.id, ip.dont_fragment), (64, 0x1234, true));
        let t = p.tcp().unwrap();
        assert_eq!((t.sport, t.dport, t.seq, t.ack), (43210, 8080, 1000, 0));
        assert_eq!(
            (t.flags, t.window, t.header_len, t.payload_len),
            (2, 65495, 40, 0)
        );
        let opts: Vec<_> = t.options.iter().collect();
        assert_eq!(
            opts,
            vec![
                TcpOption::Mss(65495),
                TcpOption::SackPermitted,
                TcpOption::Timestamps { val: 1, ecr: 0 },
                TcpOption::Nop,
                TcpOption::WindowScale(7)
            ]
        );
        assert_eq!(t.options.mss(), Some(65495));
        assert_eq!(t.options.window_scale(), Some(7));
        assert!(t.options.sack_permitted());
    }

    #[test]
    fn ppp_links_carry_ip_and_mpls() {
        let f = syn_frame();
        let ip = &f[14..];
        let label = [0x18, 0x93, 0x0d, 0x40]; // label 100656, bottom of stack
        for (link, head) in [
            (linktype::PPP, vec![0xff, 0x03, 0x00, 0x21]),
            (linktype::PPP_HDLC, vec![0xff, 0x03, 0x00, 0x21]),
            (linktype::PPP, vec![0x21]),
            (
                linktype::PPP,
                [&[0xff, 0x03, 0x02, 0x81][..], &label].concat(),
            ),
        ] {
            let fr = [&head[..], ip].concat();
            let p = decode(link, &fr, 5, fr.len() as u32);
            assert_eq!(p.malformed, None, "{head:?}");
            assert_eq!(p.tcp().map(|t| (t.sport, t.dport)), Some((43210, 8080)));
        }
        let p = decode(linktype::PPP, &[0xff, 0x03], 5, 2);
        assert!(p.malformed.is_some());
    }

    #[test]
    fn geneve_carrying_ip_is_decapsulated() {
        let f = syn_frame();
        for (proto, inner) in [(ethertype::IPV4, &f[14..]), (ethertype::TEB, &f[..])] {
            // Geneve version 0, 8 bytes of options, VNI 5.
            let mut g = vec![0x02, 0];
            g.extend_from_slice(&proto.to_be_bytes());
            g.extend_from_slice(&[0, 0, 5, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
            g.extend_from_slice(inner);
            let mut u = vec![0xc3, 0x50, 0x17, 0xc1];
            u.extend_from_slice(&((8 + g.len()) as u16).to_be_bytes());
            u.extend_from_slice(&[0, 0]);
            u.extend_from_slice(&g);
            let mut ip = vec![0x45, 0];
            ip.extend_from_slice(&((20 + u.len()) as u16).to_be_bytes());
            ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
            ip.extend_from_slice(&u);
            let mut fr = f[..14].to_vec();
            fr.extend_from_slice(&ip);
            let p = decode(linktype::ETHERNET, &fr, 5, fr.len() as u32);
            let t = p.tunnel.expect("a Geneve tunnel");
            assert_eq!((t.kind, t.vni), (TunnelKind::Geneve, Some(5)));
            assert_eq!(p.tcp().map(|t| (t.sport, t.dport)), Some((43210, 8080)));
            assert_eq!(p.malformed, None);
        }
    }

    #[test]
    fn vlan_and_ipv4_options_are_skipped() {
        let f = syn_frame();
        let mut v = f[..12].to_vec();
        v.extend_from_slice(&[0x81, 0x00, 0x20, 0x64]); // VLAN 100
        v.extend_from_slice(&f[12..14]);
        // IPv4 header with 4 bytes of options (IHL 6), total length 64.
        let mut ip = f[14..34].to_vec();
        ip[0] = 0x46;
        ip[3] = 64;
        ip.extend_from_slice(&[1, 1, 1, 0]);
        v.extend_from_slice(&ip);
        v.extend_from_slice(&f[34..]);
        let p = decode(linktype::ETHERNET, &v, 0, v.len() as u32);
        assert_eq!(p.malformed, None);
        assert_eq!(p.vlan, Some(100));
        assert_eq!(p.tcp().unwrap().dport, 8080);
        assert_eq!(p.tcp().unwrap().payload_len, 0);
    }

    #[test]
    fn ipv6_extension_headers_are_skipped() {
        let mut b = vec![0x60, 0, 0, 0, 0, 36, 0, 64];
        b.extend_from_slice(&[0; 15]);
        b.push(1);
        b.extend_from_slice(&[0; 15]);
        b.push(1);
        // Next header: hop-by-hop (0) -> 8 bytes -> dstopts (60) 8 bytes -> UDP.
        b[6] = 0;
        b.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
        b.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
        b.extend_from_slice(&[0x13, 0x88, 0, 53, 0, 20, 0, 0]);
        b.extend_from_slice(&[0; 12]);
        let p = decode(linktype::RAW, &b, 0, b.len() as u32);
        assert_eq!(p.malformed, None);
        let Net::Ipv6(h) = p.net else { panic!() };
        assert_eq!((h.next_header, h.proto, h.ext_len), (0, 17, 16));
        let u = p.udp().unwrap();
        assert_eq!((u.sport, u.dport, u.payload_len), (5000, 53, 12));
    }

    #[test]
    fn cooked_v1_and_v2() {
        let f = syn_frame();
        let mut sll = vec![0, 4, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(&f[14..]);
        let p = decode(linktype::LINUX_SLL, &sll, 0, sll.len() as u32);
        assert_eq!(p.pkttype, Some(PacketType::Outgoing));
        assert_eq!(p.tcp().unwrap().sport, 43210);
        let mut sll2 = vec![
            0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        sll2.extend_from_slice(&f[14..]);
        let p = decode(linktype::LINUX_SLL2, &sll2, 0, sll2.len() as u32);
        assert_eq!(p.pkttype, Some(PacketType::Host));
        assert_eq!(p.tcp().unwrap().sport, 43210);
    }

    #[test]
    fn every_prefix_of_a_frame_decodes_without_panic() {
        let f = syn_frame();
        for n in 0..f.len() {
            let p = decode(linktype::ETHERNET, &f[..n], 0, f.len() as u32);
            assert!(p.malformed.is_some(), "prefix {n} should be malformed");
        }
    }

    #[test]
    fn bad_tcp_option_is_reported() {
        let mut f = syn_frame();
        let last = f.len() - 3; // wscale option: kind 3 length 3 -> length 9
        f[last + 1] = 9;
        let p = decode(linktype::ETHERNET, &f, 0, f.len() as u32);
        assert_eq!(
            p.malformed,
            Some(Malformed::BadOption {
                kind: 3,
                offset: 17
            })
        );
        assert_eq!(
            p.malformed.unwrap().to_string(),
            "bad TCP option 3 at option byte 17"
        );
        assert!(p.tcp().is_some(), "the header itself still decodes");
    }

    #[test]
    fn ip_total_length_below_header_is_malformed() {
        let mut f = syn_frame();
        f[14 + 3] = 10;
        let p = decode(linktype::ETHERNET, &f, 0, f.len() as u32);
        assert_eq!(
            p.malformed.unwrap().to_string(),
            "bogus IPv4 total length 10"
        );
    }
}
