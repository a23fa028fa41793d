//! Filtering frames read from files, as libpcap does it: the filter is
//! compiled to classic BPF for the file's link type and run on the bytes
//! that were captured, so a file and a live capture share one generator
//! and `-r F EXPR` selects what `tcpdump -r F EXPR` selects.
//!
//! Ethernet frames run the [`Linkage::Ethernet`] program (VLAN tags in the
//! bytes). Other link types with a network-layer payload (Linux cooked v1
//! and v2, raw IP, BSD and OpenBSD loopback, FDDI, 802.11, PPP, Cisco
//! HDLC, ARCnet) run the [`Linkage::NetworkOnly`] program on the network
//! header, with the ethertype given as skb->protocol, as the kernel does on
//! a cooked socket (ARCnet: libpcap's fixed offset and ARCnet types).
//! Link-layer primitives (`ether host`, `vlan`, `broadcast`) are errors
//! there, as in tcpdump. NFLOG and IP over InfiniBand run the
//! [`Linkage::Opaque`] program: lengths only, protocol tests refused as
//! tcpdump refuses them. Frames of other link types never match a
//! non-empty filter.

use super::bpf::{self, Insn};
use super::{Filter, FilterError, Linkage};
use crate::decode::{ethertype, linktype};

/// Where the network header starts and its ethertype, for the link types
/// run as cooked packets; None for Ethernet and unknown link types.
fn network_start(link: u32, data: &[u8]) -> Option<(usize, u16)> {
    let be16 = |o: usize| Some(u16::from_be_bytes([*data.get(o)?, *data.get(o + 1)?]));
    match link {
        linktype::LINUX_SLL => Some((16, be16(14)?)),
        linktype::LINUX_SLL2 => Some((20, be16(0)?)),
        linktype::RAW | linktype::RAW_12 | linktype::RAW_14 | linktype::IPV4 | linktype::IPV6 => {
            let et = match data.first()? >> 4 {
                4 => ethertype::IPV4,
                6 => ethertype::IPV6,
                _ => 0,
            };
            Some((0, et))
        }
        linktype::NULL | linktype::LOOP => {
            let raw: [u8; 4] = data.get(..4)?.try_into().ok()?;
            let be = u32::from_be_bytes(raw);
            let le = u32::from_le_bytes(raw);
            let fam = if link == linktype::LOOP || be <= 0xffff {
                be
            } else {
                le
            };
            let et = match fam {
                2 => ethertype::IPV4,
                10 | 24 | 28 | 30 => ethertype::IPV6,
                _ => 0,
            };
            Some((4, et))
        }
        linktype::FDDI | linktype::IEEE802_11 | linktype::IEEE802_11_RADIOTAP => {
            crate::decode::llc_network_start(link, data)
        }
        // libpcap takes the address and control bytes as always there:
        // the protocol at 2, the packet at 4.
        linktype::PPP | linktype::PPP_HDLC => {
            let et = match be16(2)? {
                0x0021 => ethertype::IPV4,
                0x0057 => ethertype::IPV6,
                0x0281 => ethertype::MPLS,
                0x0283 => ethertype::MPLS_MULTICAST,
                _ => 0,
            };
            Some((4, et))
        }
        // Cisco HDLC: the Ethernet type at 2, the packet at 4.
        linktype::C_HDLC => Some((4, be16(2)?)),
        // ARCnet: libpcap reads the ARCnet type and takes the packet at a
        // fixed offset (that of RFC 1201 packets).
        linktype::ARCNET => Some((6, crate::decode::arcnet_type(*data.get(2)?))),
        linktype::ARCNET_LINUX => Some((8, crate::decode::arcnet_type(*data.get(4)?))),
        _ => None,
    }
}

/// A filter ready to run on file frames: one compiled program per link
/// type, made the first time a frame of that type arrives.
pub struct FileMatcher {
    filter: Filter,
    progs: Vec<(u32, Vec<Insn>)>,
}

impl FileMatcher {
    pub fn new(filter: Filter) -> FileMatcher {
        FileMatcher {
            filter,
            progs: Vec::new(),
        }
    }

    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// Does the frame (`data` as captured, `wire_len` on the wire) pass?
    /// An error when the filter cannot apply to this link type.
    pub fn matches(&mut self, link: u32, data: &[u8], wire_len: u32) -> Result<bool, FilterError> {
        if self.filter.is_empty() {
            return Ok(true);
        }
        let linkage = match link {
            linktype::ETHERNET => Linkage::Ethernet,
            linktype::LINUX_SLL
            | linktype::LINUX_SLL2
            | linktype::RAW
            | linktype::RAW_12
            | linktype::RAW_14
            | linktype::IPV4
            | linktype::IPV6
            | linktype::NULL
            | linktype::LOOP
            | linktype::FDDI
            | linktype::IEEE802_11
            | linktype::IEEE802_11_RADIOTAP
            | linktype::PPP
            | linktype::PPP_HDLC
            | linktype::C_HDLC
            | linktype::ARCNET
            | linktype::ARCNET_LINUX => Linkage::NetworkOnly,
            // tcpdump tests only lengths on these.
            linktype::NFLOG | linktype::IPOIB => Linkage::Opaque,
            _ => return Ok(false),
        };
        let base = link;
        let i = match self.progs.iter().position(|(l, _)| *l == base) {
            Some(i) => i,
            None => {
                let prog = self
                    .filter
                    .compile(linkage, 262_144)
                    .map_err(|e| FilterError {
                        at: e.at,
                        message: format!("{} (link type {})", e.message, linktype::name(base)),
                    })?;
                self.progs.push((base, prog));
                self.progs.len() - 1
            }
        };
        let prog = &self.progs[i].1;
        let (pkt, meta) = if matches!(linkage, Linkage::Ethernet | Linkage::Opaque) {
            (
                data,
                bpf::Meta {
                    wire_len,
                    ..Default::default()
                },
            )
        } else {
            let Some((off, et)) = network_start(base, data) else {
                return Ok(false);
            };
            let pkt = data.get(off..).unwrap_or(&[]);
            (
                pkt,
                bpf::Meta {
                    protocol: et,
                    // `len` is the record's length, link header included,
                    // as in tcpdump.
                    wire_len,
                    ..Default::default()
                },
            )
        };
        Ok(bpf::run(prog, pkt, &meta) != 0)
    }
}
