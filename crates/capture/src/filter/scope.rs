//! Which conversations a filter can show a packet of: lets `capture -r F
//! EXPR` skip the analysis of conversations that no frame of could pass.
//!
//! The filter runs on each frame's bytes (libpcap's meaning), while the
//! analysis follows conversations of the decoded packet, which may be the
//! inner packet of a tunnel, sit behind VLAN tags, MPLS labels or PPPoE,
//! or be put back together from fragments. A shown packet's relative
//! numbers and analysis flags depend on every earlier packet of its
//! conversation, shown or not, so a conversation may be left out only
//! when no frame whose decoded packet belongs to it can pass the filter.
//!
//! [`may_show`] decides that from the conversation's key alone, by
//! evaluating the expression in three-valued logic (no frame / some
//! frames / every frame) over three kinds of frame that decode to the
//! conversation:
//!
//! - plain: the analysed IP header where the link puts the network header,
//!   not a fragment: addresses, ports and protocol are the key's;
//! - wrapped: behind VLAN tags, MPLS or PPPoE, or a fragment: each address,
//!   port or protocol test either reads the analysed headers or fails
//!   (libpcap checks the ethertype and the fragment offset first), so a
//!   test that no plain frame passes no wrapped frame passes either;
//! - tunnelled (VXLAN, Geneve, GTP-U over UDP; GRE, ERSPAN): the outer
//!   headers are unknown, except that they are not TCP, ICMP or ARP.
//!
//! Tests after a `vlan`, `mpls`, `pppoes` or `geneve` keyword read shifted offsets (after
//! `geneve`, the packet inside the tunnel), and tests of bytes,
//! lengths and link-layer fields are not decided from a key: they count
//! as "some frames". The answer errs only towards analysing.

use super::parse::{Arith, Dir, Expr, Prim, Proto};
use std::net::IpAddr;

/// A conversation as the analysis keys it: TCP or UDP, both endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvKey {
    pub tcp: bool,
    pub a: IpAddr,
    pub pa: u16,
    pub b: IpAddr,
    pub pb: u16,
}

impl ConvKey {
    fn v6(&self) -> bool {
        self.a.is_ipv6()
    }
}

/// Three-valued truth over the frames of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tri {
    /// No frame passes.
    No,
    /// Some frames may pass.
    Some,
    /// Every frame passes.
    All,
}

impl Tri {
    fn and(self, o: Tri) -> Tri {
        match (self, o) {
            (Tri::No, _) | (_, Tri::No) => Tri::No,
            (Tri::All, Tri::All) => Tri::All,
            _ => Tri::Some,
        }
    }
    fn or(self, o: Tri) -> Tri {
        match (self, o) {
            (Tri::All, _) | (_, Tri::All) => Tri::All,
            (Tri::No, Tri::No) => Tri::No,
            _ => Tri::Some,
        }
    }
    fn not(self) -> Tri {
        match self {
            Tri::No => Tri::All,
            Tri::All => Tri::No,
            Tri::Some => Tri::Some,
        }
    }
    fn from(b: bool) -> Tri {
        if b { Tri::All } else { Tri::No }
    }
    /// Known for some frames only: never more than "some".
    fn weak(self) -> Tri {
        if self == Tri::No { Tri::No } else { Tri::Some }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Wrapped,
    Tunnelled,
}

/// Can a frame whose decoded packet belongs to conversation `k` pass
/// `expr`? False only when none can (then the conversation's analysis
/// changes no shown packet).
pub fn may_show(expr: &Expr, k: &ConvKey) -> bool {
    [Kind::Plain, Kind::Wrapped, Kind::Tunnelled]
        .into_iter()
        .any(|kind| eval(expr, k, kind) != Tri::No)
}

fn eval(e: &Expr, k: &ConvKey, kind: Kind) -> Tri {
    match e {
        Expr::And(a, b) => {
            let l = eval(a, k, kind);
            if l == Tri::No {
                return Tri::No;
            }
            l.and(eval(b, k, kind))
        }
        Expr::Or(a, b) => {
            let l = eval(a, k, kind);
            if l == Tri::All {
                return Tri::All;
            }
            l.or(eval(b, k, kind))
        }
        Expr::Not(a) => eval(a, k, kind).not(),
        Expr::Prim { prim, vlan } => {
            if *vlan > 0 {
                return Tri::Some;
            }
            match kind {
                Kind::Plain => plain(prim, k),
                Kind::Wrapped => match prim {
                    // The first tag test reads the frame's own tags.
                    Prim::Vlan { .. } | Prim::Mpls { .. } | Prim::Pppoes { .. } => Tri::Some,
                    _ => plain(prim, k).weak(),
                },
                Kind::Tunnelled => tunnelled(prim),
            }
        }
        Expr::Rel { l, r, .. } => {
            // A load of a protocol's bytes fails (and so the comparison)
            // on packets not of that protocol.
            let mut need = Tri::All;
            let mut shifted = false;
            loads(l, &mut |p, v| {
                shifted |= v > 0;
                need = need.and(load_needs(p, k, kind));
            });
            loads(r, &mut |p, v| {
                shifted |= v > 0;
                need = need.and(load_needs(p, k, kind));
            });
            if shifted || need != Tri::No {
                Tri::Some
            } else {
                Tri::No
            }
        }
    }
}

/// Every `proto[...]` load in `a`: its protocol and vlan count.
fn loads(a: &Arith, f: &mut dyn FnMut(Proto, u8)) {
    match a {
        Arith::Num(_) | Arith::Len => {}
        Arith::Load {
            proto, index, vlan, ..
        } => {
            f(*proto, *vlan);
            loads(index, f);
        }
        Arith::Bin(_, x, y) => {
            loads(x, f);
            loads(y, f);
        }
        Arith::Neg(x) => loads(x, f),
    }
}

/// Whether frames of `k` of this kind are of the protocol a `proto[...]`
/// load checks first (IPv4 for ip, tcp, udp and icmp loads).
fn load_needs(p: Proto, k: &ConvKey, kind: Kind) -> Tri {
    let v4 = !k.v6();
    let t = match p {
        Proto::Ether => return Tri::All,
        Proto::Ip => v4,
        Proto::Ip6 => !v4,
        Proto::Tcp => v4 && k.tcp,
        Proto::Udp => v4 && !k.tcp,
        Proto::Icmp | Proto::Icmp6 | Proto::Arp => false,
    };
    match (kind, p) {
        (Kind::Tunnelled, Proto::Tcp | Proto::Icmp | Proto::Icmp6 | Proto::Arp) => Tri::No,
        (Kind::Tunnelled, _) => Tri::Some,
        (Kind::Plain, _) => Tri::from(t),
        (Kind::Wrapped, _) => Tri::from(t).weak(),
    }
}

/// A primitive on the plain frames of `k`.
fn plain(prim: &Prim, k: &ConvKey) -> Tri {
    let v6 = k.v6();
    match prim {
        Prim::Proto(p) => match p {
            Proto::Ether => Tri::All,
            Proto::Ip => Tri::from(!v6),
            Proto::Ip6 => Tri::from(v6),
            Proto::Arp | Proto::Icmp | Proto::Icmp6 => Tri::No,
            // IPv6: only right after the fixed header (or a first
            // fragment header), so extension headers hide it.
            Proto::Tcp if v6 => Tri::from(k.tcp).weak(),
            Proto::Udp if v6 => Tri::from(!k.tcp).weak(),
            Proto::Tcp => Tri::from(k.tcp),
            Proto::Udp => Tri::from(!k.tcp),
        },
        Prim::Net {
            dir,
            addr,
            prefix,
            proto,
        } => {
            let fam_ok = match proto {
                Some(Proto::Arp) => false,
                Some(Proto::Ip) => !v6,
                Some(Proto::Ip6) => v6,
                _ => true,
            };
            if !fam_ok || addr.is_ipv6() != v6 {
                return Tri::No;
            }
            sides(
                *dir,
                in_net(k.a, *addr, *prefix),
                in_net(k.b, *addr, *prefix),
            )
        }
        Prim::Port {
            dir,
            lo,
            hi,
            proto,
            family,
        } => {
            let proto_ok = match proto {
                Some(Proto::Tcp) => k.tcp,
                Some(Proto::Udp) => !k.tcp,
                _ => true,
            };
            let fam_ok = match family {
                Some(Proto::Ip) => !v6,
                Some(Proto::Ip6) => v6,
                _ => true,
            };
            if !proto_ok || !fam_ok {
                return Tri::No;
            }
            let r = sides(*dir, (lo..=hi).contains(&&k.pa), (lo..=hi).contains(&&k.pb));
            if v6 { r.weak() } else { r }
        }
        Prim::IpProto { family, proto } => {
            let want = if k.tcp { 6 } else { 17 };
            match family {
                Some(Proto::Ip) if v6 => Tri::No,
                Some(Proto::Ip6) if !v6 => Tri::No,
                // IPv6 extension headers come before it.
                _ if v6 => Tri::Some,
                _ => Tri::from(*proto == want),
            }
        }
        // An untagged frame: neither a tag, a label nor PPPoE.
        Prim::Vlan { .. } | Prim::Mpls { .. } | Prim::Pppoes { .. } => Tri::No,
        // UDP to port 6081 that sockscope did not decode as Geneve
        // (libpcap checks less).
        Prim::Geneve { .. } => {
            if !k.tcp && (k.pa == 6081 || k.pb == 6081) {
                Tri::Some
            } else {
                Tri::No
            }
        }
        Prim::EtherHost { .. } | Prim::EtherProto(_) | Prim::Broadcast | Prim::Multicast(_) => {
            Tri::Some
        }
    }
}

/// A primitive on tunnelled frames: the outer headers are UDP or GRE.
fn tunnelled(prim: &Prim) -> Tri {
    match prim {
        Prim::Proto(Proto::Ether) => Tri::All,
        Prim::Proto(Proto::Tcp | Proto::Icmp | Proto::Icmp6 | Proto::Arp) => Tri::No,
        Prim::Port {
            proto: Some(Proto::Tcp),
            ..
        } => Tri::No,
        Prim::Net {
            proto: Some(Proto::Arp),
            ..
        } => Tri::No,
        _ => Tri::Some,
    }
}

/// A direction qualifier over a conversation whose frames go both ways:
/// whether the `a` and `b` sides pass the test.
fn sides(dir: Dir, a: bool, b: bool) -> Tri {
    match dir {
        Dir::Either => Tri::from(a || b),
        Dir::Both => Tri::from(a && b),
        // src (or dst) is one side in one direction and the other side in
        // the other; a conversation may have packets one way only.
        Dir::Src | Dir::Dst => {
            if a && b {
                Tri::All
            } else if a || b {
                Tri::Some
            } else {
                Tri::No
            }
        }
    }
}

fn in_net(a: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (a, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix.min(32)))
            };
            u32::from(a) & m == u32::from(n) & m
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix.min(128)))
            };
            u128::from(a) & m == u128::from(n) & m
        }
        _ => false,
    }
}

/// The conversation key of a decoded packet (the analysis follows TCP and
/// UDP over IPv4 and IPv6); None for other packets.
pub fn key_of(p: &crate::decode::Packet) -> Option<ConvKey> {
    use crate::decode::{Net, Transport};
    let (tcp, pa, pb) = match &p.transport {
        Transport::Tcp(t) => (true, t.sport, t.dport),
        Transport::Udp(u) => (false, u.sport, u.dport),
        _ => return None,
    };
    let (a, b) = match &p.net {
        Net::Ipv4(h) => (IpAddr::V4(h.src), IpAddr::V4(h.dst)),
        Net::Ipv6(h) => (IpAddr::V6(h.src), IpAddr::V6(h.dst)),
        _ => return None,
    };
    Some(ConvKey { tcp, a, pa, b, pb })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shows(expr: &str, tcp: bool, a: &str, pa: u16, b: &str, pb: u16) -> bool {
        let words: Vec<String> = expr.split(' ').map(String::from).collect();
        let e = crate::filter::parse::parse_words(&words).unwrap().unwrap();
        let k = ConvKey {
            tcp,
            a: a.parse().unwrap(),
            pa,
            b: b.parse().unwrap(),
            pb,
        };
        may_show(&e, &k)
    }

    #[test]
    fn conversations_no_frame_of_can_pass_are_left_out() {
        let t = |e| shows(e, true, "10.0.0.1", 40000, "10.0.0.2", 22);
        // Decided by the key.
        assert!(!t("tcp port 80"));
        assert!(t("tcp port 22"));
        assert!(!t("tcp and host 10.9.9.9"));
        assert!(t("tcp and src host 10.0.0.2"));
        assert!(!t("tcp and src host 10.0.0.2 and dst host 10.0.0.3"));
        assert!(!t("tcp port 9000 and tcp[tcpflags] & tcp-push != 0"));
        assert!(!t("icmp or arp"));
        assert!(!t("tcp[13] = 2 and tcp port 80"));
        assert!(!t("tcp and net 192.168.0.0/16"));
        assert!(t("tcp and net 10.0.0.0/8"));
        assert!(!t("ip proto 17 and tcp"));
        // A tunnel's outer headers may pass an address, port or UDP test
        // whatever the inner conversation is.
        assert!(t("port 80"));
        assert!(t("host 10.9.9.9"));
        assert!(t("udp"));
        assert!(t("ip6"));
        // Non-first fragments of port 22 pass `not port 22`.
        assert!(t("tcp and not port 22"));
        // Byte tests are not decided from the key.
        assert!(t("tcp and ip[8] < 64"));
        // After `vlan`, tests read other bytes of untagged frames.
        assert!(t("vlan and tcp port 80"));
        // Plain frames have no label; labelled ones are "wrapped".
        assert!(t("mpls and tcp port 80"));
        assert!(!t("tcp port 80 and geneve"));
        // A Geneve tunnel may carry any conversation.
        assert!(t("geneve 7"));
        // Tests after `geneve` read the inner packet (the conversation
        // the frame decodes to); not decided from the key.
        assert!(t("geneve and tcp port 80"));
        assert!(t("geneve 7 and host 10.0.0.1 and tcp[13] = 2"));
        let u = |e| shows(e, false, "fd00::1", 5353, "fd00::2", 5353);
        assert!(!u("tcp"));
        assert!(u("ip and udp"));
        assert!(!u("ip and tcp"));
        assert!(u("udp port 5353"));
        assert!(u("udp port 53 and ip6 host fd00::9"));
        assert!(!u("tcp port 5353 and ip6 host fd00::1"));
        assert!(!u("tcp[0] = 1"));
    }
}
