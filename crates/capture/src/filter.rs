//! A small tcpdump-like filter language, evaluated on decoded packets
//! ([`Filter::matches`], for `-r FILE`) and compiled to classic BPF for the
//! kernel ([`Filter::compile`], attached with SO_ATTACH_FILTER on live
//! capture).
//!
//! Grammar (a subset of pcap-filter(7)):
//!
//! ```text
//! expr    := and ( ("or" | "||") and )*
//! and     := not ( ("and" | "&&") not )*
//! not     := ("not" | "!") not | "(" expr ")" | primitive
//! primitive := [proto] [dir] [type] ID | proto
//! proto   := ip | ip6 | arp | tcp | udp | icmp | icmp6
//! dir     := src | dst | src or dst | src and dst
//! type    := host | net | port | portrange
//! ```
//!
//! `net` takes `10.0.0.0/8`, `10.0.0.0 mask 255.0.0.0` or a dotted prefix
//! (`net 10.1`). An ID without qualifiers repeats the previous ones, as in
//! tcpdump: `port 80 or 443`, `host 10.0.0.1 or 10.0.0.2`.
//!
//! The meaning is libpcap's, so `sockscope capture -r F EXPR` selects the
//! packets `tcpdump -r F EXPR` selects: `host` also matches ARP sender and
//! target addresses; `port` matches TCP, UDP and SCTP, IPv4 non-first
//! fragments never match, and IPv6 ports are read only right after the
//! fixed header (no extension header), as libpcap reads them; `tcp` on IPv6
//! also matches a fragment header followed by TCP. VLAN-tagged frames in a
//! file do not match network-level primitives (libpcap needs `vlan` for
//! them; the kernel strips tags before live filters run).

use crate::decode::{Net, Packet, Transport, ethertype};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad filter at {at}: {message}")]
pub struct FilterError {
    /// The word where the problem is ("end of filter" at the end).
    pub at: String,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Ip,
    Ip6,
    Arp,
    Tcp,
    Udp,
    Icmp,
    Icmp6,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Src,
    Dst,
    Either,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Type {
    Host,
    Net,
    Port,
    PortRange,
}

/// A primitive of the language.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prim {
    Proto(Proto),
    /// Address `addr` masked to `prefix` bits; `proto` limits to IPv4
    /// (ip), IPv6 (ip6) or ARP.
    Net {
        dir: Dir,
        addr: IpAddr,
        prefix: u8,
        proto: Option<Proto>,
    },
    /// Ports lo..=hi; `proto` is Tcp, Udp or None (TCP, UDP and SCTP);
    /// `family` limits to ip or ip6.
    Port {
        dir: Dir,
        lo: u16,
        hi: u16,
        proto: Option<Proto>,
        family: Option<Proto>,
    },
}

/// A parsed filter expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Prim(Prim),
}

/// A filter: empty (everything matches) or an expression.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub expr: Option<Expr>,
}

fn tokenize(words: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for w in words {
        let mut cur = String::new();
        let chars: Vec<char> = w.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if two == "&&" || two == "||" {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                out.push(two);
                i += 2;
                continue;
            }
            if c == '(' || c == ')' || (c == '!' && chars.get(i + 1) != Some(&'=')) {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                out.push(c.to_string());
            } else if c.is_whitespace() {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            } else {
                cur.push(c);
            }
            i += 1;
        }
        if !cur.is_empty() {
            out.push(cur);
        }
    }
    out
}

#[derive(Clone, Copy, Default)]
struct Quals {
    proto: Option<Proto>,
    dir: Option<Dir>,
    ty: Option<Type>,
}

struct Parser {
    toks: Vec<String>,
    pos: usize,
    last: Option<Quals>,
}

fn proto_kw(s: &str) -> Option<Proto> {
    Some(match s {
        "ip" => Proto::Ip,
        "ip6" => Proto::Ip6,
        "arp" => Proto::Arp,
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        "icmp" => Proto::Icmp,
        "icmp6" => Proto::Icmp6,
        _ => return None,
    })
}

fn type_kw(s: &str) -> Option<Type> {
    Some(match s {
        "host" => Type::Host,
        "net" => Type::Net,
        "port" => Type::Port,
        "portrange" => Type::PortRange,
        _ => return None,
    })
}

fn service_port(s: &str) -> Option<u16> {
    if let Ok(n) = s.parse::<u16>() {
        return Some(n);
    }
    Some(match s {
        "ftp-data" => 20,
        "ftp" => 21,
        "ssh" => 22,
        "telnet" => 23,
        "smtp" => 25,
        "domain" => 53,
        "http" | "www" => 80,
        "pop3" => 110,
        "ntp" => 123,
        "imap" => 143,
        "snmp" => 161,
        "https" => 443,
        "imaps" => 993,
        "pop3s" => 995,
        _ => return None,
    })
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.toks.get(self.pos).map(String::as_str)
    }
    fn peek_at(&self, n: usize) -> Option<&str> {
        self.toks.get(self.pos + n).map(String::as_str)
    }
    fn err(&self, message: impl Into<String>) -> FilterError {
        FilterError {
            at: self
                .peek()
                .map_or("end of filter".to_string(), |t| format!("'{t}'")),
            message: message.into(),
        }
    }
    fn expr(&mut self) -> Result<Expr, FilterError> {
        let mut l = self.and()?;
        while matches!(self.peek(), Some("or" | "||")) {
            self.pos += 1;
            let r = self.and()?;
            l = Expr::Or(Box::new(l), Box::new(r));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut l = self.not()?;
        while matches!(self.peek(), Some("and" | "&&")) {
            self.pos += 1;
            let r = self.not()?;
            l = Expr::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }
    fn not(&mut self) -> Result<Expr, FilterError> {
        match self.peek() {
            Some("not" | "!") => {
                self.pos += 1;
                Ok(Expr::Not(Box::new(self.not()?)))
            }
            Some("(") => {
                self.pos += 1;
                let e = self.expr()?;
                if self.peek() != Some(")") {
                    return Err(self.err("expected ')'"));
                }
                self.pos += 1;
                Ok(e)
            }
            Some(_) => self.primitive(),
            None => Err(self.err("expected a primitive (host, net, port, tcp, udp, ip, ip6, ...)")),
        }
    }
    fn primitive(&mut self) -> Result<Expr, FilterError> {
        let mut q = Quals::default();
        let mut any = false;
        if let Some(p) = self.peek().and_then(proto_kw) {
            q.proto = Some(p);
            self.pos += 1;
            any = true;
        }
        match self.peek() {
            Some("src") | Some("dst") => {
                let first = if self.peek() == Some("src") {
                    Dir::Src
                } else {
                    Dir::Dst
                };
                self.pos += 1;
                q.dir = Some(first);
                let other = if first == Dir::Src { "dst" } else { "src" };
                if matches!(self.peek(), Some("or" | "and")) && self.peek_at(1) == Some(other) {
                    q.dir = Some(if self.peek() == Some("or") {
                        Dir::Either
                    } else {
                        Dir::Both
                    });
                    self.pos += 2;
                }
                any = true;
            }
            _ => {}
        }
        if let Some(t) = self.peek().and_then(type_kw) {
            q.ty = Some(t);
            self.pos += 1;
            any = true;
        }
        if q.proto.is_some() && q.dir.is_none() && q.ty.is_none() {
            // A protocol on its own.
            let p = q.proto.unwrap_or(Proto::Ip);
            return Ok(Expr::Prim(Prim::Proto(p)));
        }
        let Some(id) = self.peek().map(str::to_string) else {
            return Err(self.err("expected an address or port"));
        };
        if matches!(
            id.as_str(),
            "(" | ")" | "and" | "or" | "not" | "!" | "&&" | "||"
        ) {
            return Err(self.err("expected an address or port"));
        }
        if !any {
            match self.last {
                Some(l) => q = l,
                None => {
                    return Err(self.err(
                        "expected a primitive: host ADDR, net ADDR/LEN, port N, portrange A-B, \
                         src/dst ..., tcp, udp, icmp, ip, ip6, arp",
                    ));
                }
            }
        }
        self.pos += 1;
        self.last = Some(q);
        let dir = q.dir.unwrap_or(Dir::Either);
        let ty = q.ty.unwrap_or(Type::Host);
        match ty {
            Type::Host | Type::Net => {
                if matches!(
                    q.proto,
                    Some(Proto::Tcp | Proto::Udp | Proto::Icmp | Proto::Icmp6)
                ) {
                    self.pos -= 1;
                    return Err(self.err("tcp, udp and icmp cannot qualify a host or net"));
                }
                let (addr, prefix) = if ty == Type::Host {
                    let a: IpAddr = id.parse().map_err(|_| {
                        self.pos -= 1;
                        self.err("expected an IPv4 or IPv6 address (names are not resolved)")
                    })?;
                    (a, if a.is_ipv4() { 32 } else { 128 })
                } else {
                    self.net(&id)?
                };
                match (q.proto, addr) {
                    (Some(Proto::Ip6), IpAddr::V4(_))
                    | (Some(Proto::Ip | Proto::Arp), IpAddr::V6(_)) => {
                        return Err(FilterError {
                            at: format!("'{id}'"),
                            message: "address family does not match the protocol".into(),
                        });
                    }
                    _ => {}
                }
                Ok(Expr::Prim(Prim::Net {
                    dir,
                    addr,
                    prefix,
                    proto: q.proto,
                }))
            }
            Type::Port | Type::PortRange => {
                let (lo, hi) = if ty == Type::Port {
                    let p = service_port(&id).ok_or_else(|| {
                        self.pos -= 1;
                        self.err("expected a port number or a well-known service name")
                    })?;
                    (p, p)
                } else {
                    let r = id
                        .split_once('-')
                        .and_then(|(a, b)| Some((service_port(a)?, service_port(b)?)));
                    let Some((a, b)) = r else {
                        self.pos -= 1;
                        return Err(self.err("expected a port range like 8000-8080"));
                    };
                    (a.min(b), a.max(b))
                };
                let (proto, family) = match q.proto {
                    Some(p @ (Proto::Tcp | Proto::Udp)) => (Some(p), None),
                    Some(f @ (Proto::Ip | Proto::Ip6)) => (None, Some(f)),
                    None => (None, None),
                    Some(_) => {
                        return Err(FilterError {
                            at: format!("'{id}'"),
                            message: "only tcp, udp, ip and ip6 can qualify a port".into(),
                        });
                    }
                };
                Ok(Expr::Prim(Prim::Port {
                    dir,
                    lo,
                    hi,
                    proto,
                    family,
                }))
            }
        }
    }
    fn net(&mut self, id: &str) -> Result<(IpAddr, u8), FilterError> {
        let bad = |_: &Parser| FilterError {
            at: format!("'{id}'"),
            message: "expected a network like 10.0.0.0/8, 10.1 or fd00::/8".into(),
        };
        if let Some((a, l)) = id.split_once('/') {
            let addr: IpAddr = a.parse().map_err(|_| bad(self))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let len: u8 = l
                .parse()
                .ok()
                .filter(|&n| n <= max)
                .ok_or_else(|| bad(self))?;
            return Ok((mask_addr(addr, len), len));
        }
        if let Ok(addr) = id.parse::<IpAddr>() {
            if self.peek() == Some("mask") {
                self.pos += 1;
                let m: Ipv4Addr = self
                    .peek()
                    .and_then(|m| m.parse().ok())
                    .ok_or_else(|| self.err("expected a netmask like 255.255.0.0"))?;
                self.pos += 1;
                let bits = u32::from(m);
                if bits.leading_ones() + bits.trailing_zeros() != 32 || addr.is_ipv6() {
                    return Err(FilterError {
                        at: format!("'{m}'"),
                        message: "the mask must be a contiguous IPv4 netmask".into(),
                    });
                }
                let len = bits.leading_ones() as u8;
                return Ok((mask_addr(addr, len), len));
            }
            let len = if addr.is_ipv4() { 32 } else { 128 };
            return Ok((addr, len));
        }
        // Dotted prefix: "10", "10.1", "10.1.2".
        let parts: Vec<&str> = id.split('.').collect();
        if parts.len() <= 3 {
            let mut o = [0u8; 4];
            for (i, p) in parts.iter().enumerate() {
                o[i] = p.parse().map_err(|_| bad(self))?;
            }
            return Ok((IpAddr::from(o), (parts.len() * 8) as u8));
        }
        Err(bad(self))
    }
}

fn mask_addr(a: IpAddr, len: u8) -> IpAddr {
    match a {
        IpAddr::V4(v) => {
            let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            IpAddr::V4(Ipv4Addr::from(u32::from(v) & m))
        }
        IpAddr::V6(v) => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(v) & m))
        }
    }
}

fn in_net(a: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (a, net) {
        (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
            mask_addr(a, prefix) == net
        }
        _ => false,
    }
}

/// Parse filter words (as given on the command line).
pub fn parse(words: &[String]) -> Result<Filter, FilterError> {
    let toks = tokenize(words);
    if toks.is_empty() {
        return Ok(Filter::default());
    }
    let mut p = Parser {
        toks,
        pos: 0,
        last: None,
    };
    let e = p.expr()?;
    if p.pos < p.toks.len() {
        return Err(p.err("expected 'and', 'or' or the end of the filter"));
    }
    Ok(Filter { expr: Some(e) })
}

fn dir_match(dir: Dir, s: bool, d: bool) -> bool {
    match dir {
        Dir::Src => s,
        Dir::Dst => d,
        Dir::Either => s || d,
        Dir::Both => s && d,
    }
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.expr.is_none()
    }

    /// Does the packet pass (libpcap semantics, see the module docs)?
    pub fn matches(&self, p: &Packet) -> bool {
        match &self.expr {
            None => true,
            Some(e) => eval(e, p),
        }
    }
}

fn eval(e: &Expr, p: &Packet) -> bool {
    match e {
        Expr::And(a, b) => eval(a, p) && eval(b, p),
        Expr::Or(a, b) => eval(a, p) || eval(b, p),
        Expr::Not(a) => !eval(a, p),
        Expr::Prim(pr) => p.vlan.is_none() && prim(pr, p),
    }
}

/// IPv6 next header right after the fixed header, or after a fragment
/// header that comes first (what libpcap's `ip6 proto` checks).
fn v6_proto_is(h: &crate::decode::Ipv6, proto: u8) -> bool {
    h.next_header == proto || (h.next_header == 44 && h.proto == proto && h.ext_len == 8)
}

fn prim(pr: &Prim, p: &Packet) -> bool {
    match pr {
        Prim::Proto(pt) => match (pt, &p.net) {
            (Proto::Ip, Net::Ipv4(_)) => true,
            (Proto::Ip6, Net::Ipv6(_)) => true,
            (Proto::Arp, _) => p.ethertype == ethertype::ARP,
            (Proto::Tcp, Net::Ipv4(h)) => h.proto == 6,
            (Proto::Tcp, Net::Ipv6(h)) => v6_proto_is(h, 6),
            (Proto::Udp, Net::Ipv4(h)) => h.proto == 17,
            (Proto::Udp, Net::Ipv6(h)) => v6_proto_is(h, 17),
            (Proto::Icmp, Net::Ipv4(h)) => h.proto == 1,
            (Proto::Icmp6, Net::Ipv6(h)) => v6_proto_is(h, 58),
            _ => false,
        },
        Prim::Net {
            dir,
            addr,
            prefix,
            proto,
        } => {
            let (s, d) = match &p.net {
                Net::Ipv4(h) if matches!(proto, None | Some(Proto::Ip)) => {
                    (IpAddr::V4(h.src), IpAddr::V4(h.dst))
                }
                Net::Ipv6(h) if matches!(proto, None | Some(Proto::Ip6)) => {
                    (IpAddr::V6(h.src), IpAddr::V6(h.dst))
                }
                Net::Arp(a) if matches!(proto, None | Some(Proto::Arp)) => {
                    (IpAddr::V4(a.sender_ip), IpAddr::V4(a.target_ip))
                }
                _ => return false,
            };
            dir_match(*dir, in_net(s, *addr, *prefix), in_net(d, *addr, *prefix))
        }
        Prim::Port {
            dir,
            lo,
            hi,
            proto,
            family,
        } => {
            let ok_net = match &p.net {
                Net::Ipv4(h) => matches!(family, None | Some(Proto::Ip)) && h.frag_offset == 0,
                Net::Ipv6(h) => matches!(family, None | Some(Proto::Ip6)) && h.ext_len == 0,
                _ => false,
            };
            if !ok_net {
                return false;
            }
            let (sp, dp) = match (&p.transport, proto) {
                (Transport::Tcp(t), None | Some(Proto::Tcp)) => (t.sport, t.dport),
                (Transport::Udp(u), None | Some(Proto::Udp)) => (u.sport, u.dport),
                _ => return false,
            };
            let inr = |x: u16| x >= *lo && x <= *hi;
            dir_match(*dir, inr(sp), inr(dp))
        }
    }
}

/// Classic BPF: instruction encoding (linux/filter.h, linux/bpf_common.h)
/// and an interpreter with the kernel's semantics for the instructions we
/// and libpcap emit.
pub mod bpf {
    pub const LD: u16 = 0x00;
    pub const LDX: u16 = 0x01;
    pub const ST: u16 = 0x02;
    pub const STX: u16 = 0x03;
    pub const ALU: u16 = 0x04;
    pub const JMP: u16 = 0x05;
    pub const RET: u16 = 0x06;
    pub const MISC: u16 = 0x07;
    pub const W: u16 = 0x00;
    pub const H: u16 = 0x08;
    pub const B: u16 = 0x10;
    pub const IMM: u16 = 0x00;
    pub const ABS: u16 = 0x20;
    pub const IND: u16 = 0x40;
    pub const MEM: u16 = 0x60;
    pub const LEN: u16 = 0x80;
    pub const MSH: u16 = 0xa0;
    pub const ADD: u16 = 0x00;
    pub const SUB: u16 = 0x10;
    pub const MUL: u16 = 0x20;
    pub const DIV: u16 = 0x30;
    pub const OR: u16 = 0x40;
    pub const AND: u16 = 0x50;
    pub const LSH: u16 = 0x60;
    pub const RSH: u16 = 0x70;
    pub const NEG: u16 = 0x80;
    pub const MOD: u16 = 0x90;
    pub const XOR: u16 = 0xa0;
    pub const JA: u16 = 0x00;
    pub const JEQ: u16 = 0x10;
    pub const JGT: u16 = 0x20;
    pub const JGE: u16 = 0x30;
    pub const JSET: u16 = 0x40;
    pub const K: u16 = 0x00;
    pub const X: u16 = 0x08;
    pub const A: u16 = 0x10;
    pub const TAX: u16 = 0x00;
    pub const TXA: u16 = 0x80;
    /// Ancillary data offsets (SKF_AD_OFF + n).
    pub const SKF_AD_OFF: u32 = 0xffff_f000;
    pub const SKF_AD_PROTOCOL: u32 = 0;
    pub const SKF_AD_PKTTYPE: u32 = 4;

    /// One instruction (struct sock_filter).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[repr(C)]
    pub struct Insn {
        pub code: u16,
        pub jt: u8,
        pub jf: u8,
        pub k: u32,
    }

    /// What the kernel knows beside the bytes.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Meta {
        /// skb->protocol (an ethertype), for SKF_AD_PROTOCOL.
        pub protocol: u16,
        /// skb->pkt_type.
        pub pkttype: u32,
        /// Length on the wire (BPF_LEN).
        pub wire_len: u32,
    }

    fn load(pkt: &[u8], off: u32, size: u16, meta: &Meta) -> Option<u32> {
        if off >= SKF_AD_OFF {
            return match off - SKF_AD_OFF {
                SKF_AD_PROTOCOL => Some(meta.protocol as u32),
                SKF_AD_PKTTYPE => Some(meta.pkttype),
                _ => None,
            };
        }
        let o = off as usize;
        let n = match size {
            W => 4,
            H => 2,
            _ => 1,
        };
        let b = pkt.get(o..o.checked_add(n)?)?;
        Some(match n {
            4 => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            2 => u16::from_be_bytes([b[0], b[1]]) as u32,
            _ => b[0] as u32,
        })
    }

    /// Run a program over a packet: the number of bytes to keep (0 drops).
    /// Out-of-range loads and bad jumps drop the packet, as in the kernel.
    pub fn run(prog: &[Insn], pkt: &[u8], meta: &Meta) -> u32 {
        let (mut a, mut x) = (0u32, 0u32);
        let mut mem = [0u32; 16];
        let mut pc = 0usize;
        let mut steps = 0;
        while pc < prog.len() && steps < 100_000 {
            steps += 1;
            let i = prog[pc];
            pc += 1;
            let class = i.code & 0x07;
            match class {
                LD => {
                    let mode = i.code & 0xe0;
                    let size = i.code & 0x18;
                    a = match mode {
                        IMM => i.k,
                        ABS => match load(pkt, i.k, size, meta) {
                            Some(v) => v,
                            None => return 0,
                        },
                        IND => match load(pkt, x.wrapping_add(i.k), size, meta) {
                            Some(v) => v,
                            None => return 0,
                        },
                        MEM => mem[(i.k & 15) as usize],
                        LEN => meta.wire_len,
                        _ => return 0,
                    };
                }
                LDX => {
                    let mode = i.code & 0xe0;
                    x = match mode {
                        IMM => i.k,
                        MEM => mem[(i.k & 15) as usize],
                        LEN => meta.wire_len,
                        MSH => match load(pkt, i.k, B, meta) {
                            Some(v) => (v & 0xf) * 4,
                            None => return 0,
                        },
                        _ => return 0,
                    };
                }
                ST => mem[(i.k & 15) as usize] = a,
                STX => mem[(i.k & 15) as usize] = x,
                ALU => {
                    let v = if i.code & X != 0 { x } else { i.k };
                    a = match i.code & 0xf0 {
                        ADD => a.wrapping_add(v),
                        SUB => a.wrapping_sub(v),
                        MUL => a.wrapping_mul(v),
                        DIV => {
                            if v == 0 {
                                return 0;
                            }
                            a / v
                        }
                        MOD => {
                            if v == 0 {
                                return 0;
                            }
                            a % v
                        }
                        OR => a | v,
                        AND => a & v,
                        XOR => a ^ v,
                        LSH => a.checked_shl(v).unwrap_or(0),
                        RSH => a.checked_shr(v).unwrap_or(0),
                        NEG => a.wrapping_neg(),
                        _ => return 0,
                    };
                }
                JMP => {
                    let v = if i.code & X != 0 { x } else { i.k };
                    let op = i.code & 0xf0;
                    if op == JA {
                        pc = pc.saturating_add(i.k as usize);
                        continue;
                    }
                    let cond = match op {
                        JEQ => a == v,
                        JGT => a > v,
                        JGE => a >= v,
                        JSET => a & v != 0,
                        _ => return 0,
                    };
                    pc += if cond { i.jt } else { i.jf } as usize;
                }
                RET => {
                    return match i.code & 0x18 {
                        A => a,
                        _ => i.k,
                    };
                }
                MISC => {
                    if i.code & 0xf8 == TXA {
                        a = x;
                    } else {
                        x = a;
                    }
                }
                _ => return 0,
            }
        }
        0
    }

    /// Parse `tcpdump -ddd` output ("N" then "code jt jf k" lines).
    pub fn parse_ddd(s: &str) -> Option<Vec<Insn>> {
        let mut lines = s.lines().filter(|l| !l.trim().is_empty());
        let n: usize = lines.next()?.trim().parse().ok()?;
        let mut v = Vec::with_capacity(n);
        for l in lines {
            let f: Vec<u32> = l
                .split_whitespace()
                .map(|x| x.parse().ok())
                .collect::<Option<_>>()?;
            if f.len() != 4 {
                return None;
            }
            v.push(Insn {
                code: f[0] as u16,
                jt: f[1] as u8,
                jf: f[2] as u8,
                k: f[3],
            });
        }
        (v.len() == n).then_some(v)
    }
}

/// How the packets handed to a compiled filter begin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Linkage {
    /// An Ethernet header (AF_PACKET SOCK_RAW on Ethernet and loopback).
    Ethernet,
    /// The network header, with the ethertype in skb->protocol
    /// (AF_PACKET SOCK_DGRAM, "cooked").
    Cooked,
    /// The network header, no ethertype (raw IP).
    RawIp,
}

/// Internal condition tree compiled to BPF.
#[derive(Clone, Debug)]
enum Cond {
    True,
    False,
    /// Load, optional AND mask, then jump op with k.
    Test {
        load: Load,
        mask: Option<u32>,
        op: u16,
        k: u32,
    },
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
}

#[derive(Clone, Copy, Debug)]
enum Load {
    Abs {
        size: u16,
        off: u32,
    },
    /// Relative to the end of the IPv4 header at `nh` (ldxb 4*([nh]&0xf)).
    AfterIpv4 {
        size: u16,
        nh: u32,
        off: u32,
    },
}

fn test(size: u16, off: u32, k: u32) -> Cond {
    Cond::Test {
        load: Load::Abs { size, off },
        mask: None,
        op: bpf::JEQ,
        k,
    }
}

fn masked(size: u16, off: u32, mask: u32, k: u32) -> Cond {
    if mask == u32::MAX {
        return test(size, off, k);
    }
    if mask == 0 {
        return Cond::True;
    }
    Cond::Test {
        load: Load::Abs { size, off },
        mask: Some(mask),
        op: bpf::JEQ,
        k,
    }
}

struct Gen {
    link: Linkage,
}

impl Gen {
    fn nh(&self) -> u32 {
        match self.link {
            Linkage::Ethernet => 14,
            _ => 0,
        }
    }
    fn ether(&self, et: u16) -> Cond {
        match self.link {
            Linkage::Ethernet => test(bpf::H, 12, et as u32),
            Linkage::Cooked => test(bpf::H, bpf::SKF_AD_OFF + bpf::SKF_AD_PROTOCOL, et as u32),
            Linkage::RawIp => match et {
                ethertype::IPV4 => masked(bpf::B, 0, 0xf0, 0x40),
                ethertype::IPV6 => masked(bpf::B, 0, 0xf0, 0x60),
                _ => Cond::False,
            },
        }
    }
    fn ip_proto(&self, p: u8) -> Cond {
        Cond::And(vec![
            self.ether(ethertype::IPV4),
            test(bpf::B, self.nh() + 9, p as u32),
        ])
    }
    fn ip6_proto(&self, p: u8) -> Cond {
        let nh = self.nh();
        Cond::And(vec![
            self.ether(ethertype::IPV6),
            Cond::Or(vec![
                test(bpf::B, nh + 6, p as u32),
                Cond::And(vec![
                    test(bpf::B, nh + 6, 44),
                    test(bpf::B, nh + 40, p as u32),
                ]),
            ]),
        ])
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
    fn prim(&self, p: &Prim) -> Cond {
        let nh = self.nh();
        match p {
            Prim::Proto(pt) => match pt {
                Proto::Ip => self.ether(ethertype::IPV4),
                Proto::Ip6 => self.ether(ethertype::IPV6),
                Proto::Arp => self.ether(ethertype::ARP),
                Proto::Tcp => Cond::Or(vec![self.ip_proto(6), self.ip6_proto(6)]),
                Proto::Udp => Cond::Or(vec![self.ip_proto(17), self.ip6_proto(17)]),
                Proto::Icmp => self.ip_proto(1),
                Proto::Icmp6 => self.ip6_proto(58),
            },
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
                            self.ether(ethertype::IPV4),
                            self.dir(
                                *dir,
                                self.addr_cond(nh + 12, *addr, *prefix),
                                self.addr_cond(nh + 16, *addr, *prefix),
                            ),
                        ]));
                    }
                    if matches!(proto, None | Some(Proto::Arp)) {
                        let arp_like = match self.link {
                            Linkage::RawIp => Cond::False,
                            _ => Cond::Or(vec![self.ether(ethertype::ARP), self.ether(0x8035)]),
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
                    self.ether(ethertype::IPV6),
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
                let range = |load: Load| -> Cond {
                    if lo == hi {
                        Cond::Test {
                            load,
                            mask: None,
                            op: bpf::JEQ,
                            k: *lo as u32,
                        }
                    } else {
                        Cond::And(vec![
                            Cond::Test {
                                load,
                                mask: None,
                                op: bpf::JGE,
                                k: *lo as u32,
                            },
                            Cond::Not(Box::new(Cond::Test {
                                load,
                                mask: None,
                                op: bpf::JGT,
                                k: *hi as u32,
                            })),
                        ])
                    }
                };
                let mut alts = Vec::new();
                if matches!(family, None | Some(Proto::Ip6)) {
                    alts.push(Cond::And(vec![
                        self.ether(ethertype::IPV6),
                        Cond::Or(
                            protos
                                .iter()
                                .map(|p| test(bpf::B, nh + 6, *p as u32))
                                .collect(),
                        ),
                        self.dir(
                            *dir,
                            range(Load::Abs {
                                size: bpf::H,
                                off: nh + 40,
                            }),
                            range(Load::Abs {
                                size: bpf::H,
                                off: nh + 42,
                            }),
                        ),
                    ]));
                }
                if matches!(family, None | Some(Proto::Ip)) {
                    alts.push(Cond::And(vec![
                        self.ether(ethertype::IPV4),
                        Cond::Or(
                            protos
                                .iter()
                                .map(|p| test(bpf::B, nh + 9, *p as u32))
                                .collect(),
                        ),
                        Cond::Not(Box::new(Cond::Test {
                            load: Load::Abs {
                                size: bpf::H,
                                off: nh + 6,
                            },
                            mask: None,
                            op: bpf::JSET,
                            k: 0x1fff,
                        })),
                        self.dir(
                            *dir,
                            range(Load::AfterIpv4 {
                                size: bpf::H,
                                nh,
                                off: 0,
                            }),
                            range(Load::AfterIpv4 {
                                size: bpf::H,
                                nh,
                                off: 2,
                            }),
                        ),
                    ]));
                }
                Cond::Or(alts)
            }
        }
    }
    fn expr(&self, e: &Expr) -> Cond {
        match e {
            Expr::And(a, b) => Cond::And(vec![self.expr(a), self.expr(b)]),
            Expr::Or(a, b) => Cond::Or(vec![self.expr(a), self.expr(b)]),
            Expr::Not(a) => Cond::Not(Box::new(self.expr(a))),
            Expr::Prim(p) => self.prim(p),
        }
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
    fn cond(&mut self, c: &Cond, t: usize, f: usize) {
        match c {
            Cond::True => {
                self.code.push(Pending {
                    code: bpf::JMP | bpf::JA,
                    k: 0,
                    jt: t,
                    jf: UNSET,
                });
            }
            Cond::False => {
                self.code.push(Pending {
                    code: bpf::JMP | bpf::JA,
                    k: 0,
                    jt: f,
                    jf: UNSET,
                });
            }
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
                    self.cond(&Cond::True, t, f);
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
                    self.cond(&Cond::False, t, f);
                }
            }
            Cond::Test { load, mask, op, k } => {
                match *load {
                    Load::Abs { size, off } => self.op(bpf::LD | size | bpf::ABS, off),
                    Load::AfterIpv4 { size, nh, off } => {
                        self.op(bpf::LDX | bpf::B | bpf::MSH, nh);
                        self.op(bpf::LD | size | bpf::IND, nh + off);
                    }
                }
                if let Some(m) = mask {
                    self.op(bpf::ALU | bpf::AND | bpf::K, *m);
                }
                self.code.push(Pending {
                    code: bpf::JMP | op | bpf::K,
                    k: *k,
                    jt: t,
                    jf: f,
                });
            }
        }
    }
}

impl Filter {
    /// Compile to classic BPF for packets that begin as `link` says. The
    /// program returns `snaplen` for a match (the kernel keeps that many
    /// bytes) and 0 otherwise. An empty filter accepts everything.
    pub fn compile(&self, link: Linkage, snaplen: u32) -> Result<Vec<bpf::Insn>, FilterError> {
        let g = Gen { link };
        let cond = match &self.expr {
            None => Cond::True,
            Some(e) => g.expr(e),
        };
        let mut em = Emit {
            code: Vec::new(),
            labels: Vec::new(),
        };
        let accept = em.label();
        let reject = em.label();
        em.cond(&cond, accept, reject);
        em.place(accept);
        em.op(bpf::RET | bpf::K, snaplen);
        em.place(reject);
        em.op(bpf::RET | bpf::K, 0);
        let too_long = || {
            FilterError {
            at: "the whole filter".into(),
            message: "too complex for classic BPF (jumps over 255 instructions or over 4096 instructions)"
                .into(),
        }
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
            let mut i = bpf::Insn {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode, linktype};

    fn f(s: &str) -> Filter {
        parse(&[s.to_string()]).unwrap()
    }

    fn frame(src: [u8; 4], dst: [u8; 4], proto: u8, sport: u16, dport: u16) -> Vec<u8> {
        let mut v = vec![0u8; 12];
        v.extend_from_slice(&[0x08, 0x00]);
        v.extend_from_slice(&[0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, proto, 0, 0]);
        v.extend_from_slice(&src);
        v.extend_from_slice(&dst);
        v.extend_from_slice(&sport.to_be_bytes());
        v.extend_from_slice(&dport.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
        v
    }

    #[test]
    fn parses_tcpdump_forms() {
        assert_eq!(
            f("port 80 or 443"),
            Filter {
                expr: Some(Expr::Or(
                    Box::new(Expr::Prim(Prim::Port {
                        dir: Dir::Either,
                        lo: 80,
                        hi: 80,
                        proto: None,
                        family: None
                    })),
                    Box::new(Expr::Prim(Prim::Port {
                        dir: Dir::Either,
                        lo: 443,
                        hi: 443,
                        proto: None,
                        family: None
                    }))
                ))
            }
        );
        for ok in [
            "tcp",
            "tcp and (port 80 or port 8080)",
            "src host 127.0.0.1 && !udp",
            "net 10.0.0.0/8",
            "net 10.1",
            "dst net 192.168.0.0 mask 255.255.0.0",
            "ip6 host ::1",
            "src or dst port ssh",
            "tcp portrange 8000-8100",
            "not (icmp or arp)",
        ] {
            parse(&[ok.to_string()]).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let e = parse(&["host".into(), "example.com".into()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad filter at 'example.com': expected an IPv4 or IPv6 address (names are not resolved)"
        );
        let e = parse(&["port 80 and".into()]).unwrap_err();
        assert_eq!(e.at, "end of filter");
        assert!(parse(&["tcp host 1.2.3.4".into()]).is_err());
        assert!(parse(&["(tcp".into()]).is_err());
    }

    #[test]
    fn userspace_and_bpf_agree_on_sample_frames() {
        let frames = [
            frame([127, 0, 0, 1], [127, 0, 0, 2], 6, 40000, 80),
            frame([10, 1, 2, 3], [127, 0, 0, 1], 17, 53, 5353),
            frame([10, 1, 2, 3], [10, 9, 9, 9], 1, 0, 0),
            frame([192, 168, 1, 1], [127, 0, 0, 1], 6, 8080, 22),
        ];
        let exprs = [
            "tcp",
            "udp",
            "icmp",
            "port 80",
            "src port 53",
            "dst port 80 or dst port 22",
            "host 127.0.0.1",
            "src host 127.0.0.1",
            "dst net 127.0.0.0/8",
            "net 10",
            "not tcp",
            "tcp and not port 80",
            "portrange 50-60",
            "ip6",
            "ip",
        ];
        for e in exprs {
            let flt = f(e);
            let prog = flt.compile(Linkage::Ethernet, 65535).unwrap();
            for (i, fr) in frames.iter().enumerate() {
                let p = decode(linktype::ETHERNET, fr, 0, fr.len() as u32);
                let user = flt.matches(&p);
                let meta = bpf::Meta {
                    wire_len: fr.len() as u32,
                    ..Default::default()
                };
                let kernel = bpf::run(&prog, fr, &meta) != 0;
                assert_eq!(user, kernel, "{e} on frame {i}");
                // The same filter for cooked packets (network header first).
                let cooked = flt.compile(Linkage::Cooked, 65535).unwrap();
                let meta = bpf::Meta {
                    protocol: 0x0800,
                    wire_len: fr.len() as u32 - 14,
                    ..Default::default()
                };
                assert_eq!(
                    bpf::run(&cooked, &fr[14..], &meta) != 0,
                    user,
                    "cooked {e} {i}"
                );
            }
        }
        let p = decode(linktype::ETHERNET, &frames[0], 0, 54);
        assert!(f("tcp and dst port 80").matches(&p));
        assert!(!f("udp or src port 80").matches(&p));
    }

    #[test]
    fn interpreter_runs_tcpdump_ddd_output() {
        // `tcpdump -ddd tcp` on Ethernet.
        let ddd = "12\n40 0 0 12\n21 0 2 2048\n48 0 0 23\n21 6 7 6\n21 0 6 34525\n48 0 0 20\n21 3 0 6\n21 0 3 44\n48 0 0 54\n21 0 1 6\n6 0 0 262144\n6 0 0 0\n";
        let prog = bpf::parse_ddd(ddd).unwrap();
        let fr = frame([1, 1, 1, 1], [2, 2, 2, 2], 6, 1, 2);
        assert_eq!(bpf::run(&prog, &fr, &bpf::Meta::default()), 262144);
        let fr = frame([1, 1, 1, 1], [2, 2, 2, 2], 17, 1, 2);
        assert_eq!(bpf::run(&prog, &fr, &bpf::Meta::default()), 0);
    }
}
