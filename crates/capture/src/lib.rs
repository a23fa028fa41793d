//! Packet capture and TCP analysis for `sockscope capture`.
//!
//! Data flows one way, as in the rest of sockscope:
//!
//! ```text
//! pcap / pcapng file ─┐                                   ┌─> view::line  (tcpdump-like lines)
//!                     ├─> Record ─> decode ─> Packet ─> analysis ─> view::conv  (conversation table)
//! live (AF_PACKET) ───┘   (link type,           (TCP state per    ├─> view::flow  (text / SVG diagrams)
//!                          timestamp, bytes)     conversation)    └─> view::json  (JSON / JSON lines)
//!                                      filter: cBPF, run by the      procs (pid / comm labels)
//!                                      kernel (live) or in-process (files)
//! ```
//!
//! - [`pcap`] reads pcap (both byte orders, µs and ns) and pcapng (SHB, IDB,
//!   EPB, SPB, several interfaces and sections) as a stream, and writes pcapng
//!   with a comment per packet.
//! - [`decode`] turns the bytes of one frame into a [`decode::Packet`]:
//!   Ethernet, 802.1Q, Linux cooked v1/v2, raw IP, BSD loopback, PPP; IPv4 and
//!   IPv6 (extension headers skipped); TCP with all flags and options; UDP;
//!   ICMP; ARP; 802.3/LLC; MPLS and PPPoE sessions carrying IP; tunnels:
//!   VXLAN, Geneve, GRE (IP or Ethernet), ERSPAN I/II/III and GTP-U (the
//!   inner packet is decoded, the outer headers kept). Bad input gives a
//!   packet marked malformed, never a panic; an IP header that counts bytes
//!   never sent is flagged and lengths use the bytes that were there.
//! - [`analysis`] follows TCP conversations as Wireshark 4.0 does: relative
//!   sequence numbers, handshake RTT, window scaling and the `tcp.analysis.*`
//!   flags, with the same definitions.
//! - [`filter`] is tcpdump's filter language compiled to classic BPF: run
//!   by the kernel on live capture and by an interpreter on file frames.
//! - [`live`] captures through an AF_PACKET socket with a TPACKET_V3 ring.
//! - [`reasm`] puts IPv4 and IPv6 fragments back together (capped,
//!   counted).
//! - [`procs`] labels packets with the process that owns the local socket.
//! - [`view`] renders lines, conversation tables, flow diagrams and JSON.
//!
//! Memory: nothing holds the whole capture. The analysis state is kept for
//! at most `--max-tracked` conversations at once (a slot pool; the least
//! recently used is dropped, counted and reported); conversation summaries
//! (compact, one per conversation) only when a view needs them (`--conv`,
//! JSON, diagrams), not for packet lines.

// Unsafe code is fenced: the packet ring and the socket calls rustix does
// not wrap (live::ring, live::sys), getifaddrs (procs::local_addresses)
// and localtime_r (view::line). The rest of the crate is safe code.
#![deny(unsafe_code)]

pub mod analysis;
pub mod decode;
pub mod filter;
pub mod fuzzing;
pub mod live;
pub mod pcap;
pub mod procs;
pub mod reasm;
pub mod view;
