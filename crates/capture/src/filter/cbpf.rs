//! The classic BPF generator: an [`Expr`] to a program for packets that
//! begin as a [`Linkage`] says, with libpcap's meaning for every primitive
//! (checked against `tcpdump -d` by the tests).
//!
//! Generation goes through a small condition tree ([`Cond`]) whose leaves
//! are "statements, then a conditional jump"; [`Emit`] lays it out with
//! labels and resolves them into relative jumps at the end.

use super::FilterError;
use super::bpf::{self, Insn};
use super::parse::{Arith, BinOp, Dir, Expr, Prim, Proto, RelOp};
use crate::decode::ethertype;
use std::net::IpAddr;

/// How the packets handed to a compiled filter begin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Linkage {
    /// An Ethernet header with any VLAN tags still in the bytes: frames
    /// read from a file (what `tcpdump -r` and `tcpdump -y EN10MB -d` see).
    Ethernet,
    /// An Ethernet header on a Linux packet socket (SOCK_RAW on Ethernet
    /// and loopback): the kernel has moved the outer VLAN tag into skb
    /// metadata, read with the SKF_AD_VLAN_TAG(_PRESENT) ancillary loads
    /// as libpcap does on Linux; inner tags stay in the bytes.
    EthernetLive,
    /// The network header, with the ethertype in skb->protocol
    /// (AF_PACKET SOCK_DGRAM, "cooked", and files of other link types).
    Cooked,
    /// The network header, no ethertype (raw IP).
    RawIp,
    /// The network header, with the ethertype in skb->protocol and nothing
    /// known of the link layer: files of Linux cooked, raw IP and loopback
    /// link types, where tcpdump refuses link-layer tests.
    NetworkOnly,
    /// Frames whose network header sits at no fixed place and whose type
    /// libpcap cannot test (NFLOG, IP over InfiniBand): only lengths can
    /// be tested; protocol tests are refused as tcpdump refuses them.
    Opaque,
}

/// Internal condition tree compiled to BPF.
#[derive(Clone, Debug)]
enum Cond {
    True,
    False,
    /// Run `stmts`, then jump on `A op k` (or `A op X` when `x`).
    Jump {
        stmts: Vec<(u16, u32)>,
        op: u16,
        k: u32,
        x: bool,
    },
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
}

fn size_code(size: u8) -> u16 {
    match size {
        4 => bpf::W,
        2 => bpf::H,
        _ => bpf::B,
    }
}

fn jump(stmts: Vec<(u16, u32)>, op: u16, k: u32) -> Cond {
    Cond::Jump {
        stmts,
        op,
        k,
        x: false,
    }
}

/// `size` bytes at `off` == k.
fn test(size: u16, off: u32, k: u32) -> Cond {
    jump(vec![(bpf::LD | size | bpf::ABS, off)], bpf::JEQ, k)
}

/// (`size` bytes at `off`) & mask == k.
fn masked(size: u16, off: u32, mask: u32, k: u32) -> Cond {
    if mask == u32::MAX {
        return test(size, off, k);
    }
    if mask == 0 {
        return Cond::True;
    }
    jump(
        vec![
            (bpf::LD | size | bpf::ABS, off),
            (bpf::ALU | bpf::AND | bpf::K, mask),
        ],
        bpf::JEQ,
        k,
    )
}

/// tcpdump's refusal for [`Linkage::Opaque`].
fn opaque() -> FilterError {
    FilterError {
        at: "the filter".into(),
        message: "link-layer type filtering not implemented (as in tcpdump): only len, greater \
                  and less can be tested on this link type"
            .into(),
    }
}

fn unsupported(what: &str, link: Linkage) -> FilterError {
    let on = match link {
        Linkage::Cooked => {
            "packets without a link-layer header (a cooked capture, as on the 'any' interface, or a file of that link type)"
        }
        _ => "raw IP packets",
    };
    FilterError {
        at: format!("'{what}'"),
        message: format!(
            "{what} cannot be tested on {on}: capture on an Ethernet interface (-i eth0) or read an Ethernet capture"
        ),
    }
}

/// The scratch slot holding the variable part of the offsets on live
/// Ethernet after the first `vlan`: 0 when the kernel took the tag out of
/// the frame, 4 when it did not (libpcap's scheme, so verdicts agree).
const VSLOT: u32 = 15;

/// After `geneve`, the scratch slots holding where the packet inside the
/// tunnel starts (its Ethernet header, or its network header when the
/// Geneve protocol type is not Ethernet), where its ethertype is (the
/// inner Ethernet type field, or the Geneve protocol type field) and where
/// its network header starts: libpcap's scheme, so the tests after it read
/// the inner packet whatever the length of the Geneve options.
const GLINK: u32 = 12;
const GETH: u32 = 13;
const GNET: u32 = 14;
/// Slots below this are free for comparisons.
const FIRST_RESERVED: u32 = GLINK;

/// A header that `vlan`, `mpls`, `pppoes` or `geneve` puts before later
/// tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layer {
    Vlan,
    Mpls,
    Pppoes,
    /// Tests after it read the packet inside the tunnel, at offsets in
    /// [`GLINK`], [`GETH`] and [`GNET`].
    Geneve,
}

impl Layer {
    fn len(self) -> u32 {
        match self {
            Layer::Vlan | Layer::Mpls => 4,
            Layer::Pppoes => 8,
            // Never counted: the layers before a `geneve` are in its
            // offsets, and the parser refuses layers after it.
            Layer::Geneve => 0,
        }
    }
}

/// The layers of an expression, in the order of the text (the depth `d`
/// of a primitive counts those before it).
fn layers(e: &Expr, out: &mut Vec<Layer>) {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => {
            layers(a, out);
            layers(b, out);
        }
        Expr::Not(a) => layers(a, out),
        Expr::Prim { prim, .. } => match prim {
            Prim::Vlan { .. } => out.push(Layer::Vlan),
            Prim::Mpls { .. } => out.push(Layer::Mpls),
            Prim::Pppoes { .. } => out.push(Layer::Pppoes),
            Prim::Geneve { .. } => out.push(Layer::Geneve),
            _ => {}
        },
        Expr::Rel { .. } => {}
    }
}

pub(super) struct Gen {
    pub link: Linkage,
    /// A `vlan` test sets [`VSLOT`]: the program must zero it first.
    uses_vslot: std::cell::Cell<bool>,
    /// A `geneve` test sets [`GLINK`], [`GETH`] and [`GNET`]: zeroed first
    /// too (the kernel refuses a program that may read a slot unset).
    uses_geneve: std::cell::Cell<bool>,
    /// The `vlan`, `mpls`, `pppoes` and `geneve` keywords, in the order of
    /// the text.
    layers: Vec<Layer>,
}

impl Gen {
    fn all_before(&self, d: u8) -> &[Layer] {
        &self.layers[..(d as usize).min(self.layers.len())]
    }
    /// Is depth `d` inside a Geneve tunnel (after a `geneve`)?
    fn inner(&self, d: u8) -> bool {
        self.all_before(d).contains(&Layer::Geneve)
    }
    /// The layers before depth `d` that move its offsets: those after the
    /// last `geneve` (whose offsets are in scratch slots).
    fn before(&self, d: u8) -> &[Layer] {
        let b = self.all_before(d);
        match b.iter().rposition(|l| *l == Layer::Geneve) {
            Some(i) => &b[i + 1..],
            None => b,
        }
    }
    /// Live Ethernet after a first `vlan`: loads add [`VSLOT`].
    fn live_vlan(&self, d: u8) -> bool {
        self.link == Linkage::EthernetLive
            && !self.inner(d)
            && self.before(d).first() == Some(&Layer::Vlan)
    }
    /// The scratch slot whose value loads relative to the network header
    /// at depth `d` add, if any: [`GNET`] inside a Geneve tunnel (the
    /// network header then is at 0 plus the slot), [`VSLOT`] on live
    /// Ethernet after a first `vlan`.
    fn slot(&self, d: u8) -> Option<u32> {
        if self.inner(d) {
            Some(GNET)
        } else if self.live_vlan(d) {
            Some(VSLOT)
        } else {
            None
        }
    }
    /// X = the IPv4 header length (plus the variable offset): the
    /// statements before `ld [x + nh + off]`.
    fn iphl(&self, d: u8) -> Vec<(u16, u32)> {
        let nh = self.nh(d);
        if let Some(slot) = self.slot(d) {
            vec![
                (bpf::LDX | bpf::MEM, slot),
                (bpf::LD | bpf::B | bpf::IND, nh),
                (bpf::ALU | bpf::AND | bpf::K, 0xf),
                (bpf::ALU | bpf::LSH | bpf::K, 2),
                (bpf::ALU | bpf::ADD | bpf::X, 0),
                (bpf::MISC | bpf::TAX, 0),
            ]
        } else {
            vec![(bpf::LDX | bpf::B | bpf::MSH, nh)]
        }
    }
    /// Rewrite the network-relative loads of `c` (generated for depth `d`
    /// with constant offsets) to add the variable offset, when there is one.
    fn shift_var(&self, c: Cond, d: u8) -> Cond {
        match self.slot(d) {
            Some(slot) => self.rebase(c, slot, Some(d)),
            None => c,
        }
    }
    /// Rewrite the absolute packet loads of `c` to add the value of
    /// scratch `slot`; with `iphl_at`, also the IPv4 header length loads
    /// (`ldxb 4*([k]&0xf)`) of that depth.
    fn rebase(&self, c: Cond, slot: u32, iphl_at: Option<u8>) -> Cond {
        match c {
            Cond::Jump { stmts, op, k, x } => {
                let mut out = Vec::with_capacity(stmts.len() + 2);
                for (code, off) in stmts {
                    let abs = code & 0x07 == bpf::LD && code & 0xe0 == bpf::ABS;
                    if abs && off < bpf::SKF_AD_OFF {
                        out.push((bpf::LDX | bpf::MEM, slot));
                        out.push((code & !0xe0 | bpf::IND, off));
                    } else if code == bpf::LDX | bpf::B | bpf::MSH
                        && let Some(d) = iphl_at
                    {
                        out.extend(self.iphl(d));
                    } else {
                        out.push((code, off));
                    }
                }
                Cond::Jump {
                    stmts: out,
                    op,
                    k,
                    x,
                }
            }
            Cond::And(v) => Cond::And(
                v.into_iter()
                    .map(|c| self.rebase(c, slot, iphl_at))
                    .collect(),
            ),
            Cond::Or(v) => Cond::Or(
                v.into_iter()
                    .map(|c| self.rebase(c, slot, iphl_at))
                    .collect(),
            ),
            Cond::Not(c) => Cond::Not(Box::new(self.rebase(*c, slot, iphl_at))),
            c => c,
        }
    }
    /// Bytes the tags, labels and PPPoE headers before depth `d` add to
    /// the offsets (live, the first tag is in the metadata: [`Gen::var`]).
    fn shift(&self, d: u8) -> u32 {
        let b = self.before(d);
        let all: u32 = b.iter().map(|l| l.len()).sum();
        match self.link {
            Linkage::Ethernet => all,
            _ if self.inner(d) => all,
            Linkage::EthernetLive if self.live_vlan(d) => all - 4,
            Linkage::EthernetLive => all,
            // Without a link-layer header the tag is in the metadata.
            _ => b
                .iter()
                .filter(|l| **l != Layer::Vlan)
                .map(|l| l.len())
                .sum(),
        }
    }
    /// The last MPLS or PPPoE layer before depth `d`, if any: the one
    /// that says what comes next instead of an ethertype.
    fn last_non_vlan(&self, d: u8) -> Option<Layer> {
        self.before(d)
            .iter()
            .rev()
            .find(|l| **l != Layer::Vlan)
            .copied()
    }
    /// Offset of the network header at VLAN depth `d`.
    fn nh(&self, d: u8) -> u32 {
        if self.inner(d) {
            // Plus [`GNET`], added by [`Gen::shift_var`].
            return self.shift(d);
        }
        match self.link {
            Linkage::Ethernet | Linkage::EthernetLive => 14 + self.shift(d),
            _ => self.shift(d),
        }
    }
    fn ether(&self, et: u16, d: u8) -> Result<Cond, FilterError> {
        if self.link == Linkage::Opaque {
            return Err(opaque());
        }
        if self.inner(d) {
            return Ok(jump(
                vec![
                    (bpf::LDX | bpf::MEM, GETH),
                    (bpf::LD | bpf::H | bpf::IND, 0),
                ],
                bpf::JEQ,
                u32::from(et),
            ));
        }
        match self.last_non_vlan(d) {
            // After a label the payload has no type: libpcap takes the
            // bottom of the stack and the IP version nibble.
            Some(Layer::Mpls) => {
                let nh = self.nh(d);
                let bos = masked(bpf::B, nh - 2, 1, 1);
                let version = match et {
                    ethertype::IPV4 => 0x40,
                    ethertype::IPV6 => 0x60,
                    // ARP and the rest cannot follow a label: libpcap
                    // refuses them (and leaves them out of `host`).
                    _ => {
                        return Err(FilterError {
                            at: match et {
                                ethertype::ARP => "'arp'".into(),
                                0x8035 => "'rarp'".into(),
                                _ => format!("'ether proto {et:#06x}'"),
                            },
                            message: "unsupported protocol over mpls (as in tcpdump): \
                                      only ip and ip6 can follow a label"
                                .into(),
                        });
                    }
                };
                return Ok(Cond::And(vec![bos, masked(bpf::B, nh, 0xf0, version)]));
            }
            // After PPPoE: the PPP protocol field.
            Some(Layer::Pppoes) => {
                let ppp = match et {
                    ethertype::IPV4 => 0x0021,
                    ethertype::IPV6 => 0x0057,
                    ethertype::MPLS => 0x0281,
                    x => x,
                };
                return Ok(test(bpf::H, self.nh(d) - 2, u32::from(ppp)));
            }
            _ => {}
        }
        Ok(match self.link {
            Linkage::Ethernet | Linkage::EthernetLive => {
                test(bpf::H, 12 + self.shift(d), et as u32)
            }
            Linkage::Cooked | Linkage::NetworkOnly if d <= 1 => {
                test(bpf::H, bpf::SKF_AD_OFF + bpf::SKF_AD_PROTOCOL, et as u32)
            }
            Linkage::Cooked | Linkage::NetworkOnly => {
                return Err(unsupported("a second vlan", self.link));
            }
            Linkage::RawIp => match et {
                ethertype::IPV4 => masked(bpf::B, 0, 0xf0, 0x40),
                ethertype::IPV6 => masked(bpf::B, 0, 0xf0, 0x60),
                _ => Cond::False,
            },
            Linkage::Opaque => return Err(opaque()),
        })
    }
    /// A link-layer test at depth `d`: Ethernet, or inside a Geneve tunnel.
    fn need_ether(&self, what: &str, d: u8) -> Result<(), FilterError> {
        if self.link == Linkage::Opaque {
            return Err(opaque());
        }
        if self.inner(d) {
            return Ok(());
        }
        match self.link {
            Linkage::Ethernet | Linkage::EthernetLive => Ok(()),
            _ => Err(unsupported(what, self.link)),
        }
    }
    fn ip_proto(&self, p: u8, d: u8) -> Result<Cond, FilterError> {
        Ok(Cond::And(vec![
            self.ether(ethertype::IPV4, d)?,
            test(bpf::B, self.nh(d) + 9, p as u32),
        ]))
    }
    /// IPv6 next header right after the fixed header, or after a fragment
    /// header that comes first (what libpcap's `ip6 proto` checks).
    fn ip6_proto(&self, p: u8, d: u8) -> Result<Cond, FilterError> {
        let nh = self.nh(d);
        Ok(Cond::And(vec![
            self.ether(ethertype::IPV6, d)?,
            Cond::Or(vec![
                test(bpf::B, nh + 6, p as u32),
                Cond::And(vec![
                    test(bpf::B, nh + 6, 44),
                    test(bpf::B, nh + 40, p as u32),
                ]),
            ]),
        ]))
    }
    /// Not a non-first IPv4 fragment.
    fn not_frag(&self, d: u8) -> Cond {
        Cond::Not(Box::new(jump(
            vec![(bpf::LD | bpf::H | bpf::ABS, self.nh(d) + 6)],
            bpf::JSET,
            0x1fff,
        )))
    }
    fn addr_cond(&self, off: u32, net: IpAddr, prefix: u8) -> Cond {
        match net {
            IpAddr::V4(a) => {
                let m = if prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - prefix)
                };
                masked(bpf::W, off, m, u32::from(a) & m)
            }
            IpAddr::V6(a) => {
                let o = a.octets();
                let mut v = Vec::new();
                for w in 0..4u32 {
                    let bits = (prefix as i32 - 32 * w as i32).clamp(0, 32) as u32;
                    let m = if bits == 0 {
                        0
                    } else {
                        u32::MAX << (32 - bits)
                    };
                    let i = (w * 4) as usize;
                    let word = u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
                    if m != 0 {
                        v.push(masked(bpf::W, off + w * 4, m, word & m));
                    }
                }
                if v.is_empty() {
                    Cond::True
                } else {
                    Cond::And(v)
                }
            }
        }
    }
    fn dir(&self, dir: Dir, s: Cond, d: Cond) -> Cond {
        match dir {
            Dir::Src => s,
            Dir::Dst => d,
            Dir::Either => Cond::Or(vec![s, d]),
            Dir::Both => Cond::And(vec![s, d]),
        }
    }
    fn mac_cond(&self, off: u32, m: [u8; 6]) -> Cond {
        Cond::And(vec![
            test(
                bpf::W,
                off + 2,
                u32::from_be_bytes([m[2], m[3], m[4], m[5]]),
            ),
            test(bpf::H, off, u16::from_be_bytes([m[0], m[1]]) as u32),
        ])
    }
    fn prim(&self, p: &Prim, d: u8) -> Result<Cond, FilterError> {
        let c = self.prim_const(p, d)?;
        Ok(match p {
            // Inside a Geneve tunnel, link-layer tests read the inner
            // Ethernet header, and fail when the tunnel carries no
            // Ethernet (libpcap's checks).
            Prim::EtherHost { .. } | Prim::Broadcast | Prim::Multicast(Proto::Ether)
                if self.inner(d) =>
            {
                let no_ether = Cond::Jump {
                    stmts: vec![(bpf::LD | bpf::MEM, GLINK), (bpf::LDX | bpf::MEM, GNET)],
                    op: bpf::JEQ,
                    k: 0,
                    x: true,
                };
                Cond::And(vec![
                    Cond::Not(Box::new(no_ether)),
                    self.rebase(c, GLINK, None),
                ])
            }
            Prim::EtherHost { .. } | Prim::Broadcast | Prim::Multicast(Proto::Ether) => c,
            _ => self.shift_var(c, d),
        })
    }
    fn prim_const(&self, p: &Prim, d: u8) -> Result<Cond, FilterError> {
        if self.inner(d)
            && let Prim::Vlan { .. } | Prim::Mpls { .. } | Prim::Pppoes { .. } | Prim::Geneve { .. } =
                p
        {
            return Err(FilterError {
                at: "the tests after 'geneve'".into(),
                message: "vlan, mpls, pppoes and geneve inside a Geneve tunnel are not supported"
                    .into(),
            });
        }
        let nh = self.nh(d);
        Ok(match p {
            Prim::Proto(pt) => match pt {
                Proto::Ether => Cond::True,
                Proto::Ip => self.ether(ethertype::IPV4, d)?,
                Proto::Ip6 => self.ether(ethertype::IPV6, d)?,
                Proto::Arp => self.ether(ethertype::ARP, d)?,
                Proto::Tcp => Cond::Or(vec![self.ip_proto(6, d)?, self.ip6_proto(6, d)?]),
                Proto::Udp => Cond::Or(vec![self.ip_proto(17, d)?, self.ip6_proto(17, d)?]),
                Proto::Icmp => self.ip_proto(1, d)?,
                Proto::Icmp6 => self.ip6_proto(58, d)?,
            },
            Prim::IpProto { family, proto } => {
                let mut alts = Vec::new();
                if matches!(family, None | Some(Proto::Ip)) {
                    alts.push(self.ip_proto(*proto, d)?);
                }
                if matches!(family, None | Some(Proto::Ip6)) {
                    alts.push(self.ip6_proto(*proto, d)?);
                }
                Cond::Or(alts)
            }
            Prim::EtherProto(et) => self.ether(*et, d)?,
            Prim::EtherHost { dir, mac } => {
                self.need_ether("ether host", d)?;
                self.dir(*dir, self.mac_cond(6, *mac), self.mac_cond(0, *mac))
            }
            Prim::Broadcast => {
                self.need_ether("broadcast", d)?;
                self.mac_cond(0, [0xff; 6])
            }
            Prim::Multicast(Proto::Ip) => Cond::And(vec![
                self.ether(ethertype::IPV4, d)?,
                jump(vec![(bpf::LD | bpf::B | bpf::ABS, nh + 16)], bpf::JGE, 224),
            ]),
            Prim::Multicast(Proto::Ip6) => Cond::And(vec![
                self.ether(ethertype::IPV6, d)?,
                test(bpf::B, nh + 24, 255),
            ]),
            Prim::Multicast(_) => {
                self.need_ether("multicast", d)?;
                jump(vec![(bpf::LD | bpf::B | bpf::ABS, 0)], bpf::JSET, 1)
            }
            Prim::Vlan { id } => self.vlan(*id, d)?,
            Prim::Mpls { label } => self.mpls(*label, d)?,
            Prim::Pppoes { session } => self.pppoes(*session, d)?,
            Prim::Geneve { vni } => self.geneve(*vni, d)?,
            Prim::Net {
                dir,
                addr,
                prefix,
                proto,
            } => match addr {
                IpAddr::V4(_) => {
                    let mut alts = Vec::new();
                    if matches!(proto, None | Some(Proto::Ip)) {
                        alts.push(Cond::And(vec![
                            self.ether(ethertype::IPV4, d)?,
                            self.dir(
                                *dir,
                                self.addr_cond(nh + 12, *addr, *prefix),
                                self.addr_cond(nh + 16, *addr, *prefix),
                            ),
                        ]));
                    }
                    // libpcap leaves ARP out of a bare `host` after a
                    // label (and refuses `arp host` there).
                    let after_label = self.last_non_vlan(d) == Some(Layer::Mpls);
                    if proto == &Some(Proto::Arp) || proto.is_none() && !after_label {
                        let arp_like = match self.link {
                            Linkage::RawIp => Cond::False,
                            _ => Cond::Or(vec![
                                self.ether(ethertype::ARP, d)?,
                                self.ether(0x8035, d)?,
                            ]),
                        };
                        alts.push(Cond::And(vec![
                            arp_like,
                            self.dir(
                                *dir,
                                self.addr_cond(nh + 14, *addr, *prefix),
                                self.addr_cond(nh + 24, *addr, *prefix),
                            ),
                        ]));
                    }
                    Cond::Or(alts)
                }
                IpAddr::V6(_) => Cond::And(vec![
                    self.ether(ethertype::IPV6, d)?,
                    self.dir(
                        *dir,
                        self.addr_cond(nh + 8, *addr, *prefix),
                        self.addr_cond(nh + 24, *addr, *prefix),
                    ),
                ]),
            },
            Prim::Port {
                dir,
                lo,
                hi,
                proto,
                family,
            } => {
                let protos: Vec<u8> = match proto {
                    Some(Proto::Tcp) => vec![6],
                    Some(Proto::Udp) => vec![17],
                    _ => vec![132, 6, 17],
                };
                let range = |stmts: Vec<(u16, u32)>| -> Cond {
                    if lo == hi {
                        jump(stmts, bpf::JEQ, *lo as u32)
                    } else {
                        Cond::And(vec![
                            jump(stmts.clone(), bpf::JGE, *lo as u32),
                            Cond::Not(Box::new(jump(stmts, bpf::JGT, *hi as u32))),
                        ])
                    }
                };
                let after_ip = |off: u32| {
                    vec![
                        (bpf::LDX | bpf::B | bpf::MSH, nh),
                        (bpf::LD | bpf::H | bpf::IND, nh + off),
                    ]
                };
                let mut alts = Vec::new();
                if matches!(family, None | Some(Proto::Ip6)) {
                    alts.push(Cond::And(vec![
                        self.ether(ethertype::IPV6, d)?,
                        Cond::Or(
                            protos
                                .iter()
                                .map(|p| test(bpf::B, nh + 6, *p as u32))
                                .collect(),
                        ),
                        self.dir(
                            *dir,
                            range(vec![(bpf::LD | bpf::H | bpf::ABS, nh + 40)]),
                            range(vec![(bpf::LD | bpf::H | bpf::ABS, nh + 42)]),
                        ),
                    ]));
                }
                if matches!(family, None | Some(Proto::Ip)) {
                    alts.push(Cond::And(vec![
                        self.ether(ethertype::IPV4, d)?,
                        Cond::Or(
                            protos
                                .iter()
                                .map(|p| test(bpf::B, nh + 9, *p as u32))
                                .collect(),
                        ),
                        self.not_frag(d),
                        self.dir(*dir, range(after_ip(0)), range(after_ip(2))),
                    ]));
                }
                Cond::Or(alts)
            }
        })
    }
    /// `mpls [LABEL]` at depth `d`: the MPLS ethertype (or PPP protocol),
    /// or, after another label, that label not the bottom of the stack.
    fn mpls(&self, label: Option<u32>, d: u8) -> Result<Cond, FilterError> {
        // tcpdump: "no MPLS support" on cooked captures.
        self.need_ether("mpls", d)?;
        let nh = self.nh(d);
        let first = if self.last_non_vlan(d) == Some(Layer::Mpls) {
            Cond::Not(Box::new(masked(bpf::B, nh - 2, 1, 1)))
        } else {
            self.ether(ethertype::MPLS, d)?
        };
        let mut v = vec![first];
        if let Some(l) = label {
            v.push(masked(bpf::W, nh, 0xffff_f000, l << 12));
        }
        Ok(Cond::And(v))
    }
    /// `pppoes [SESSION]` at depth `d`.
    fn pppoes(&self, session: Option<u16>, d: u8) -> Result<Cond, FilterError> {
        if self.last_non_vlan(d).is_some() {
            return Err(FilterError {
                at: "pppoes".into(),
                message: "pppoes after mpls or pppoes is not supported (as in tcpdump)".into(),
            });
        }
        let mut v = vec![self.ether(ethertype::PPPOE_SESSION, d)?];
        if let Some(id) = session {
            v.push(masked(bpf::W, self.nh(d), 0xffff, u32::from(id)));
        }
        Ok(Cond::And(v))
    }
    /// `geneve [VNI]` at depth `d`: UDP to port 6081 over IPv4 (not a
    /// later fragment) or IPv6 (right after the fixed header), Geneve
    /// version 0, and the VNI; libpcap's checks.
    fn geneve(&self, vni: Option<u32>, d: u8) -> Result<Cond, FilterError> {
        let nh = self.nh(d);
        let udp4 = |off: u32, size: u16| {
            vec![
                (bpf::LDX | bpf::B | bpf::MSH, nh),
                (bpf::LD | size | bpf::IND, nh + off),
            ]
        };
        let mut v4 = vec![
            self.ether(ethertype::IPV4, d)?,
            test(bpf::B, nh + 9, 17),
            self.not_frag(d),
            jump(udp4(2, bpf::H), bpf::JEQ, 6081),
            jump(
                [udp4(8, bpf::B), vec![(bpf::ALU | bpf::AND | bpf::K, 0xc0)]].concat(),
                bpf::JEQ,
                0,
            ),
        ];
        let mut v6 = vec![
            self.ether(ethertype::IPV6, d)?,
            test(bpf::B, nh + 6, 17),
            test(bpf::H, nh + 42, 6081),
            masked(bpf::B, nh + 48, 0xc0, 0),
        ];
        if let Some(n) = vni {
            v4.push(jump(
                [
                    udp4(12, bpf::W),
                    vec![(bpf::ALU | bpf::AND | bpf::K, 0xffff_ff00)],
                ]
                .concat(),
                bpf::JEQ,
                n << 8,
            ));
            v6.push(masked(bpf::W, nh + 52, 0xffff_ff00, n << 8));
        }
        // Where the inner packet is, for the tests after this one.
        self.uses_geneve.set(true);
        v4.push(Self::geneve_offsets(self.iphl(d), nh + 8));
        let v6_x = match self.slot(d) {
            Some(s) => vec![(bpf::LDX | bpf::MEM, s)],
            None => vec![(bpf::LDX | bpf::IMM, 0)],
        };
        v6.push(Self::geneve_offsets(v6_x, nh + 48));
        Ok(Cond::Or(vec![Cond::And(v4), Cond::And(v6)]))
    }
    /// Store the inner packet's offsets in [`GLINK`], [`GETH`] and
    /// [`GNET`], given `x_setup` leaving in X the variable part of the
    /// Geneve header's offset and `konst` its constant part. The Geneve
    /// header: version and option length (in 4-byte words) in byte 0, the
    /// protocol type (an ethertype; 0x6558 is Ethernet) at 2, 8 bytes
    /// before the options. Always true.
    fn geneve_offsets(x_setup: Vec<(u16, u32)>, konst: u32) -> Cond {
        let mut head = x_setup;
        head.extend([
            (bpf::MISC | bpf::TXA, 0),
            (bpf::ALU | bpf::ADD | bpf::K, konst),
            (bpf::MISC | bpf::TAX, 0),
            (bpf::ALU | bpf::ADD | bpf::K, 2),
            (bpf::ST, GETH),
            (bpf::LD | bpf::B | bpf::IND, 0),
            (bpf::ALU | bpf::AND | bpf::K, 0x3f),
            (bpf::ALU | bpf::LSH | bpf::K, 2),
            (bpf::ALU | bpf::ADD | bpf::K, 8),
            (bpf::ALU | bpf::ADD | bpf::X, 0),
            (bpf::ST, GLINK),
            (bpf::ST, GNET),
            (bpf::LD | bpf::H | bpf::IND, 2),
        ]);
        // Ethernet inside: its type field and the header after it.
        let ether = vec![
            (bpf::LD | bpf::MEM, GLINK),
            (bpf::ALU | bpf::ADD | bpf::K, 12),
            (bpf::ST, GETH),
            (bpf::ALU | bpf::ADD | bpf::K, 2),
            (bpf::ST, GNET),
        ];
        Cond::Or(vec![
            Cond::Not(Box::new(jump(head, bpf::JEQ, 0x6558))),
            jump(ether, bpf::JGE, 0),
        ])
    }
    /// `vlan [ID]` at depth `d` (tags already passed by earlier `vlan`s).
    fn vlan(&self, id: Option<u16>, d: u8) -> Result<Cond, FilterError> {
        if self.last_non_vlan(d).is_some() {
            return Err(FilterError {
                at: "vlan".into(),
                message:
                    "vlan after mpls or pppoes is not supported (tcpdump: no VLAN match after MPLS)"
                        .into(),
            });
        }
        let ancillary = matches!(self.link, Linkage::EthernetLive | Linkage::Cooked) && d == 0;
        if ancillary {
            let present = test(bpf::B, bpf::SKF_AD_OFF + bpf::SKF_AD_VLAN_TAG_PRESENT, 1);
            let mut v = vec![present.clone()];
            if let Some(id) = id {
                v.push(masked(
                    bpf::H,
                    bpf::SKF_AD_OFF + bpf::SKF_AD_VLAN_TAG,
                    0x0fff,
                    id as u32,
                ));
            }
            if self.link == Linkage::Cooked {
                return Ok(Cond::And(v));
            }
            // No tag in the metadata: like libpcap, look for one in the
            // frame, and move later tests 4 bytes on whether or not it is
            // there.
            self.uses_vslot.set(true);
            let tpids = [ethertype::VLAN, ethertype::QINQ, ethertype::QINQ_OLD];
            let mut inline = vec![Cond::Or(
                tpids
                    .iter()
                    .enumerate()
                    .map(|(i, &t)| {
                        let mut st = vec![];
                        if i == 0 {
                            st.push((bpf::LD | bpf::IMM, 4));
                            st.push((bpf::ST, VSLOT));
                        }
                        st.push((bpf::LD | bpf::H | bpf::ABS, 12));
                        jump(st, bpf::JEQ, t as u32)
                    })
                    .collect(),
            )];
            if let Some(id) = id {
                inline.push(masked(bpf::H, 14, 0x0fff, id as u32));
            }
            inline.insert(0, Cond::Not(Box::new(present)));
            return Ok(Cond::Or(vec![Cond::And(v), Cond::And(inline)]));
        }
        self.need_ether("vlan", d)?;
        let lt = 12 + self.shift(d);
        let mut v = vec![Cond::Or(
            [ethertype::VLAN, ethertype::QINQ, ethertype::QINQ_OLD]
                .iter()
                .map(|&t| test(bpf::H, lt, t as u32))
                .collect(),
        )];
        if let Some(id) = id {
            v.push(masked(bpf::H, lt + 2, 0x0fff, id as u32));
        }
        Ok(Cond::And(v))
    }
    /// Code leaving the value of `a` in A; `conds` collects the protocol
    /// tests its loads need, `sp` is the next free scratch slot.
    fn arith(
        &self,
        a: &Arith,
        conds: &mut Vec<Cond>,
        out: &mut Vec<(u16, u32)>,
        sp: &mut u32,
    ) -> Result<(), FilterError> {
        match a {
            Arith::Num(k) => out.push((bpf::LD | bpf::IMM, *k)),
            Arith::Len => out.push((bpf::LD | bpf::W | bpf::LEN, 0)),
            Arith::Neg(x) => {
                self.arith(x, conds, out, sp)?;
                out.push((bpf::ALU | bpf::NEG, 0));
            }
            Arith::Bin(op, l, r) => {
                let code = match op {
                    BinOp::Add => bpf::ADD,
                    BinOp::Sub => bpf::SUB,
                    BinOp::Mul => bpf::MUL,
                    BinOp::Div => bpf::DIV,
                    BinOp::Mod => bpf::MOD,
                    BinOp::And => bpf::AND,
                    BinOp::Or => bpf::OR,
                    BinOp::Xor => bpf::XOR,
                    BinOp::Shl => bpf::LSH,
                    BinOp::Shr => bpf::RSH,
                };
                if let Arith::Num(k) = **r {
                    self.arith(l, conds, out, sp)?;
                    out.push((bpf::ALU | code | bpf::K, k));
                } else {
                    let slot = self.push_scratch(r, conds, out, sp)?;
                    self.arith(l, conds, out, sp)?;
                    out.push((bpf::LDX | bpf::MEM, slot));
                    *sp -= 1;
                    out.push((bpf::ALU | code | bpf::X, 0));
                }
            }
            Arith::Load {
                proto,
                index,
                size,
                vlan: d,
            } => {
                let d = *d;
                let first_cond = conds.len();
                let sz = size_code(*size);
                let nh = self.nh(d);
                let (base, transport) = match proto {
                    Proto::Ether => {
                        self.need_ether("ether[]", d)?;
                        (0, false)
                    }
                    Proto::Ip => {
                        conds.push(self.ether(ethertype::IPV4, d)?);
                        (nh, false)
                    }
                    Proto::Arp => {
                        conds.push(self.ether(ethertype::ARP, d)?);
                        (nh, false)
                    }
                    Proto::Ip6 => {
                        conds.push(self.ether(ethertype::IPV6, d)?);
                        (nh, false)
                    }
                    Proto::Icmp6 => {
                        conds.push(self.ether(ethertype::IPV6, d)?);
                        conds.push(test(bpf::B, nh + 6, 58));
                        (nh + 40, false)
                    }
                    Proto::Tcp | Proto::Udp | Proto::Icmp => {
                        let p = match proto {
                            Proto::Tcp => 6,
                            Proto::Udp => 17,
                            _ => 1,
                        };
                        conds.push(self.ip_proto(p, d)?);
                        conds.push(self.not_frag(d));
                        (nh, true)
                    }
                };
                // Protocol checks were made for constant offsets.
                // The variable part of the offset, if any: inside a Geneve
                // tunnel `ether[]` is relative to the inner packet.
                let slot = match proto {
                    Proto::Ether if self.inner(d) => Some(GLINK),
                    Proto::Ether => None,
                    _ => self.slot(d),
                };
                let var = slot.is_some();
                let slot = slot.unwrap_or(VSLOT);
                for c in conds.iter_mut().skip(first_cond) {
                    let shifted = self.shift_var(std::mem::replace(c, Cond::True), d);
                    *c = shifted;
                }
                match (&**index, transport) {
                    (Arith::Num(k), false) if !var => {
                        out.push((bpf::LD | sz | bpf::ABS, base.wrapping_add(*k)))
                    }
                    (Arith::Num(k), false) => {
                        out.push((bpf::LDX | bpf::MEM, slot));
                        out.push((bpf::LD | sz | bpf::IND, base.wrapping_add(*k)));
                    }
                    (Arith::Num(k), true) => {
                        out.extend(self.iphl(d));
                        out.push((bpf::LD | sz | bpf::IND, base.wrapping_add(*k)));
                    }
                    (ix, false) => {
                        self.arith(ix, conds, out, sp)?;
                        if var {
                            out.push((bpf::LDX | bpf::MEM, slot));
                            out.push((bpf::ALU | bpf::ADD | bpf::X, 0));
                        }
                        out.push((bpf::MISC | bpf::TAX, 0));
                        out.push((bpf::LD | sz | bpf::IND, base));
                    }
                    (ix, true) => {
                        let slot = self.push_scratch(ix, conds, out, sp)?;
                        out.extend(self.iphl(d));
                        out.push((bpf::LD | bpf::MEM, slot));
                        *sp -= 1;
                        out.push((bpf::ALU | bpf::ADD | bpf::X, 0));
                        out.push((bpf::MISC | bpf::TAX, 0));
                        out.push((bpf::LD | sz | bpf::IND, base));
                    }
                }
            }
        }
        Ok(())
    }
    /// Compute `a` and store it in a fresh scratch slot (returned).
    fn push_scratch(
        &self,
        a: &Arith,
        conds: &mut Vec<Cond>,
        out: &mut Vec<(u16, u32)>,
        sp: &mut u32,
    ) -> Result<u32, FilterError> {
        self.arith(a, conds, out, sp)?;
        if *sp >= FIRST_RESERVED {
            return Err(FilterError {
                at: "the comparison".into(),
                message: "too deeply nested for classic BPF's 16 scratch slots".into(),
            });
        }
        out.push((bpf::ST, *sp));
        *sp += 1;
        Ok(*sp - 1)
    }
    fn rel(&self, op: RelOp, l: &Arith, r: &Arith) -> Result<Cond, FilterError> {
        let mut conds = Vec::new();
        let mut out = Vec::new();
        let mut sp = 0;
        let x = if let Arith::Num(_) = r {
            self.arith(l, &mut conds, &mut out, &mut sp)?;
            false
        } else {
            let slot = self.push_scratch(r, &mut conds, &mut out, &mut sp)?;
            self.arith(l, &mut conds, &mut out, &mut sp)?;
            out.push((bpf::LDX | bpf::MEM, slot));
            true
        };
        let k = if let Arith::Num(k) = r { *k } else { 0 };
        let (jop, neg) = match op {
            RelOp::Eq => (bpf::JEQ, false),
            RelOp::Ne => (bpf::JEQ, true),
            RelOp::Gt => (bpf::JGT, false),
            RelOp::Ge => (bpf::JGE, false),
            RelOp::Lt => (bpf::JGE, true),
            RelOp::Le => (bpf::JGT, true),
        };
        let mut j = Cond::Jump {
            stmts: out,
            op: jop,
            k,
            x,
        };
        if neg {
            j = Cond::Not(Box::new(j));
        }
        conds.push(j);
        Ok(Cond::And(conds))
    }
    fn expr(&self, e: &Expr) -> Result<Cond, FilterError> {
        Ok(match e {
            Expr::And(a, b) => Cond::And(vec![self.expr(a)?, self.expr(b)?]),
            Expr::Or(a, b) => Cond::Or(vec![self.expr(a)?, self.expr(b)?]),
            Expr::Not(a) => Cond::Not(Box::new(self.expr(a)?)),
            Expr::Prim { prim, vlan } => self.prim(prim, *vlan)?,
            Expr::Rel { op, l, r } => self.rel(*op, l, r)?,
        })
    }
}

/// Jump target while generating: a label resolved at the end.
#[derive(Clone, Copy)]
struct Pending {
    code: u16,
    k: u32,
    jt: usize,
    jf: usize,
}

struct Emit {
    code: Vec<Pending>,
    /// label -> instruction index
    labels: Vec<usize>,
}

const UNSET: usize = usize::MAX;

impl Emit {
    fn label(&mut self) -> usize {
        self.labels.push(UNSET);
        self.labels.len() - 1
    }
    fn place(&mut self, l: usize) {
        self.labels[l] = self.code.len();
    }
    fn op(&mut self, code: u16, k: u32) {
        self.code.push(Pending {
            code,
            k,
            jt: UNSET,
            jf: UNSET,
        });
    }
    fn goto(&mut self, to: usize) {
        self.code.push(Pending {
            code: bpf::JMP | bpf::JA,
            k: 0,
            jt: to,
            jf: UNSET,
        });
    }
    fn cond(&mut self, c: &Cond, t: usize, f: usize) {
        match c {
            Cond::True => self.goto(t),
            Cond::False => self.goto(f),
            Cond::Not(a) => self.cond(a, f, t),
            Cond::And(v) => {
                for (i, c) in v.iter().enumerate() {
                    if i + 1 == v.len() {
                        self.cond(c, t, f);
                    } else {
                        let next = self.label();
                        self.cond(c, next, f);
                        self.place(next);
                    }
                }
                if v.is_empty() {
                    self.goto(t);
                }
            }
            Cond::Or(v) => {
                for (i, c) in v.iter().enumerate() {
                    if i + 1 == v.len() {
                        self.cond(c, t, f);
                    } else {
                        let next = self.label();
                        self.cond(c, t, next);
                        self.place(next);
                    }
                }
                if v.is_empty() {
                    self.goto(f);
                }
            }
            Cond::Jump { stmts, op, k, x } => {
                for &(code, k) in stmts {
                    self.op(code, k);
                }
                self.code.push(Pending {
                    code: bpf::JMP | op | if *x { bpf::X } else { bpf::K },
                    k: *k,
                    jt: t,
                    jf: f,
                });
            }
        }
    }
}

/// Compile `expr` (None accepts everything) for packets that begin as
/// `link` says; the program returns `snaplen` for a match, 0 otherwise.
pub fn compile(expr: Option<&Expr>, link: Linkage, snaplen: u32) -> Result<Vec<Insn>, FilterError> {
    let mut ls = Vec::new();
    if let Some(e) = expr {
        layers(e, &mut ls);
    }
    let g = Gen {
        link,
        uses_vslot: std::cell::Cell::new(false),
        uses_geneve: std::cell::Cell::new(false),
        layers: ls,
    };
    let cond = match expr {
        None => Cond::True,
        Some(e) => g.expr(e)?,
    };
    let mut em = Emit {
        code: Vec::new(),
        labels: Vec::new(),
    };
    if g.uses_vslot.get() || g.uses_geneve.get() {
        em.op(bpf::LD | bpf::IMM, 0);
    }
    if g.uses_vslot.get() {
        em.op(bpf::ST, VSLOT);
    }
    if g.uses_geneve.get() {
        for slot in [GLINK, GETH, GNET] {
            em.op(bpf::ST, slot);
        }
    }
    let accept = em.label();
    let reject = em.label();
    em.cond(&cond, accept, reject);
    em.place(accept);
    em.op(bpf::RET | bpf::K, snaplen);
    em.place(reject);
    em.op(bpf::RET | bpf::K, 0);
    let too_long = || FilterError {
        at: "the whole filter".into(),
        message:
            "too complex for classic BPF (jumps over 255 instructions or over 4096 instructions)"
                .into(),
    };
    if em.code.len() > 4096 {
        return Err(too_long());
    }
    let mut out = Vec::with_capacity(em.code.len());
    for (pc, p) in em.code.iter().enumerate() {
        let rel = |l: usize| -> Option<usize> {
            let target = *em.labels.get(l)?;
            target.checked_sub(pc + 1)
        };
        let mut i = Insn {
            code: p.code,
            jt: 0,
            jf: 0,
            k: p.k,
        };
        if p.code & 0x07 == bpf::JMP {
            if p.code & 0xf0 == bpf::JA {
                i.k = rel(p.jt).ok_or_else(too_long)? as u32;
            } else {
                let jt = rel(p.jt).ok_or_else(too_long)?;
                let jf = rel(p.jf).ok_or_else(too_long)?;
                if jt > 255 || jf > 255 {
                    return Err(too_long());
                }
                i.jt = jt as u8;
                i.jf = jf as u8;
            }
        }
        out.push(i);
    }
    Ok(out)
}
