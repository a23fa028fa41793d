//! The parser: tokens to an [`Expr`] tree, with libpcap's grammar and its
//! quirks (qualifiers repeat onto a bare ID; `vlan`, `mpls` and `pppoes`
//! move every later protocol test past their header, in the order of the
//! text).

use super::FilterError;
use super::lex::tokenize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A protocol qualifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Ether,
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
    /// `ip`, `ip6`, `arp`, `tcp`, `udp`, `icmp`, `icmp6`.
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
    /// `ether host|src|dst MAC`.
    EtherHost { dir: Dir, mac: [u8; 6] },
    /// `ether proto N`.
    EtherProto(u16),
    /// `broadcast`, `ether broadcast`.
    Broadcast,
    /// `multicast` / `ether multicast` (Ether), `ip multicast`, `ip6 multicast`.
    Multicast(Proto),
    /// `ip proto N` (family Ip), `ip6 proto N` (Ip6), `proto N` (None).
    IpProto { family: Option<Proto>, proto: u8 },
    /// `vlan [ID]`.
    Vlan { id: Option<u16> },
    /// `mpls [LABEL]`: an MPLS label stack entry (a later one: the one
    /// after the previous label, which must not be the bottom of the stack).
    Mpls { label: Option<u32> },
    /// `pppoes [SESSION]`: a PPPoE session-stage header; later tests read
    /// the PPP protocol and the packet after it.
    Pppoes { session: Option<u16> },
    /// `geneve [VNI]`: IPv4 or IPv6 UDP to port 6081 with a Geneve
    /// version 0 header; tests after it read the packet inside.
    Geneve { vni: Option<u32> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    And,
    Or,
    Xor,
    Shl,
    Shr,
}

/// An arithmetic expression (`tcp[13] & 2`, `len - 14`, `ip[2:2]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arith {
    Num(u32),
    /// The length of the packet on the wire.
    Len,
    /// `proto[index : size]`: `size` bytes (1, 2 or 4) at `index` from the
    /// start of the protocol's header; `vlan` as in [`Expr::Prim`].
    Load {
        proto: Proto,
        index: Box<Arith>,
        size: u8,
        vlan: u8,
    },
    Bin(BinOp, Box<Arith>, Box<Arith>),
    Neg(Box<Arith>),
}

/// A parsed filter expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    /// A primitive and the number of `vlan`, `mpls`, `pppoes` and `geneve` keywords
    /// before it in the text (libpcap moves later tests past the tag,
    /// label or PPPoE header of each).
    Prim {
        prim: Prim,
        vlan: u8,
    },
    /// `l op r`.
    Rel {
        op: RelOp,
        l: Arith,
        r: Arith,
    },
}

#[derive(Clone, Copy, Default)]
struct Quals {
    proto: Option<Proto>,
    dir: Option<Dir>,
    ty: Option<Type>,
}

fn proto_kw(s: &str) -> Option<Proto> {
    Some(match s {
        "ether" | "link" => Proto::Ether,
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

/// Numbers as libpcap reads them: decimal, 0x hex, 0 octal.
pub fn number(s: &str) -> Option<u32> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u32::from_str_radix(h, 16).ok();
    }
    if s.len() > 1 && s.starts_with('0') {
        return u32::from_str_radix(&s[1..], 8).ok();
    }
    s.parse().ok()
}

/// libpcap's named constants for byte tests.
fn named_const(s: &str) -> Option<u32> {
    Some(match s {
        "tcpflags" => 13,
        "tcp-fin" => 0x01,
        "tcp-syn" => 0x02,
        "tcp-rst" => 0x04,
        "tcp-push" => 0x08,
        "tcp-ack" => 0x10,
        "tcp-urg" => 0x20,
        "tcp-ece" => 0x40,
        "tcp-cwr" => 0x80,
        "icmptype" | "icmp6type" => 0,
        "icmpcode" | "icmp6code" => 1,
        "icmp-echoreply" => 0,
        "icmp-unreach" => 3,
        "icmp-sourcequench" => 4,
        "icmp-redirect" => 5,
        "icmp-echo" => 8,
        "icmp-routeradvert" => 9,
        "icmp-routersolicit" => 10,
        "icmp-timxceed" => 11,
        "icmp-paramprob" => 12,
        "icmp-tstamp" => 13,
        "icmp-tstampreply" => 14,
        "icmp-ireq" => 15,
        "icmp-ireqreply" => 16,
        "icmp-maskreq" => 17,
        "icmp-maskreply" => 18,
        "icmp6-destinationunreach" => 1,
        "icmp6-packettoobig" => 2,
        "icmp6-timeexceeded" => 3,
        "icmp6-parameterproblem" => 4,
        "icmp6-echo" => 128,
        "icmp6-echoreply" => 129,
        "icmp6-routersolicit" => 133,
        "icmp6-routeradvert" => 134,
        "icmp6-neighborsolicit" => 135,
        "icmp6-neighboradvert" => 136,
        _ => return None,
    })
}

/// A port number, or a service name as tcpdump resolves it: from the
/// system's services table (the library's one table: /etc/services, or its
/// built-in fallback where that file is missing).
fn service_port(s: &str) -> Option<u16> {
    if let Some(n) = number(s) {
        return u16::try_from(n).ok();
    }
    sockscope::query::services::Services::system().port(s, None)
}

/// `aa:bb:cc:dd:ee:ff`, `aa-bb-...`, `aabb.ccdd.eeff` or `aabbccddeeff`.
fn mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = if s.contains(':') {
        s.split(':').collect()
    } else if s.contains('-') {
        s.split('-').collect()
    } else {
        let hex: String = s.chars().filter(|&c| c != '.').collect();
        if hex.len() != 12 || s.contains('.') && s.split('.').count() != 3 {
            return None;
        }
        let mut o = [0u8; 6];
        for (i, b) in o.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        return Some(o);
    };
    if parts.len() != 6 {
        return None;
    }
    let mut o = [0u8; 6];
    for (b, p) in o.iter_mut().zip(parts) {
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    Some(o)
}

fn ip_proto_name(s: &str) -> Option<u8> {
    if let Some(n) = number(s) {
        return u8::try_from(n).ok();
    }
    Some(match s {
        "icmp" => 1,
        "igmp" => 2,
        "tcp" => 6,
        "udp" => 17,
        "icmp6" => 58,
        "sctp" => 132,
        "igrp" => 9,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "pim" => 103,
        "vrrp" | "carp" => 112,
        _ => return None,
    })
}

const KEYWORDS: [&str; 13] = [
    "(", ")", "and", "or", "not", "!", "&&", "||", "[", "]", "=", "==", "!=",
];

pub(super) struct Parser {
    toks: Vec<String>,
    pos: usize,
    last: Option<Quals>,
    /// `vlan`, `mpls`, `pppoes` and `geneve` keywords seen so far.
    vlan: u8,
    /// A `geneve` was seen: later tests are of the inner packet.
    geneve: bool,
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
    fn err_at(id: &str, message: impl Into<String>) -> FilterError {
        FilterError {
            at: format!("'{id}'"),
            message: message.into(),
        }
    }
    fn expect(&mut self, t: &str) -> Result<(), FilterError> {
        if self.peek() != Some(t) {
            return Err(self.err(format!("expected '{t}'")));
        }
        self.pos += 1;
        Ok(())
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
    /// Does an arithmetic expression start here?
    fn arith_start(&self) -> bool {
        match self.peek() {
            Some("(" | "-" | "len") => true,
            Some(t) if t.starts_with(|c: char| c.is_ascii_digit()) => true,
            Some(t) if named_const(t).is_some() => true,
            Some(t) => proto_kw(t).is_some() && self.peek_at(1) == Some("["),
            None => false,
        }
    }
    fn not(&mut self) -> Result<Expr, FilterError> {
        match self.peek() {
            Some("not" | "!") => {
                self.pos += 1;
                return Ok(Expr::Not(Box::new(self.not()?)));
            }
            None => {
                return Err(
                    self.err("expected a primitive (host, net, port, tcp, udp, ip, ip6, ...)")
                );
            }
            _ => {}
        }
        // A comparison, or else a parenthesised expression or primitive
        // (`port 80 or 443`: a bare number repeats the qualifiers); the
        // error reported is the one that got further.
        let mut first_err = None;
        let start = self.pos;
        if self.arith_start() {
            let save = (self.pos, self.last, self.vlan);
            match self.relation() {
                Ok(e) => return Ok(e),
                Err(e) => first_err = Some((self.pos, e)),
            }
            (self.pos, self.last, self.vlan) = save;
        }
        let r = if self.peek() == Some("(") {
            self.pos += 1;
            self.expr().and_then(|e| self.expect(")").map(|_| e))
        } else {
            self.primitive()
        };
        match (r, first_err) {
            // Past its first word, the text was a comparison.
            (_, Some((at, e1))) if at > start + 1 && self.toks[start] != "(" => Err(e1),
            (Err(e), Some((at, e1))) if at > self.pos => Err(e1).or(Err(e)),
            (r, _) => r,
        }
    }
    fn relation(&mut self) -> Result<Expr, FilterError> {
        let l = self.arith(0)?;
        let op = match self.peek() {
            Some("=" | "==") => RelOp::Eq,
            Some("!=") => RelOp::Ne,
            Some("<") => RelOp::Lt,
            Some("<=") => RelOp::Le,
            Some(">") => RelOp::Gt,
            Some(">=") => RelOp::Ge,
            _ => return Err(self.err("expected a comparison (=, !=, <, <=, >, >=)")),
        };
        self.pos += 1;
        let r = self.arith(0)?;
        Ok(Expr::Rel { op, l, r })
    }
    /// Binary operators by precedence, lowest first (libpcap's grammar).
    fn arith(&mut self, level: usize) -> Result<Arith, FilterError> {
        const LEVELS: [&[(&str, BinOp)]; 6] = [
            &[("^", BinOp::Xor)],
            &[("|", BinOp::Or)],
            &[("&", BinOp::And)],
            &[("<<", BinOp::Shl), (">>", BinOp::Shr)],
            &[("+", BinOp::Add), ("-", BinOp::Sub)],
            &[("*", BinOp::Mul), ("/", BinOp::Div), ("%", BinOp::Mod)],
        ];
        if level == LEVELS.len() {
            return self.arith_primary();
        }
        let mut l = self.arith(level + 1)?;
        while let Some(&(_, op)) = LEVELS[level].iter().find(|(t, _)| self.peek() == Some(*t)) {
            self.pos += 1;
            let r = self.arith(level + 1)?;
            if matches!(op, BinOp::Div | BinOp::Mod) && r == Arith::Num(0) {
                self.pos -= 1;
                return Err(self.err("division by zero"));
            }
            l = Arith::Bin(op, Box::new(l), Box::new(r));
        }
        Ok(l)
    }
    fn arith_primary(&mut self) -> Result<Arith, FilterError> {
        let Some(t) = self.peek().map(str::to_string) else {
            return Err(self.err("expected a number, len or proto[offset]"));
        };
        if t == "(" {
            self.pos += 1;
            let a = self.arith(0)?;
            self.expect(")")?;
            return Ok(a);
        }
        if t == "-" {
            self.pos += 1;
            return Ok(Arith::Neg(Box::new(self.arith_primary()?)));
        }
        if t == "len" {
            self.pos += 1;
            return Ok(Arith::Len);
        }
        if let Some(n) = number(&t).or_else(|| named_const(&t)) {
            self.pos += 1;
            return Ok(Arith::Num(n));
        }
        if let Some(p) = proto_kw(&t)
            && self.peek_at(1) == Some("[")
        {
            self.pos += 2;
            let index = self.arith(0)?;
            let mut size = 1;
            if self.peek() == Some(":") {
                self.pos += 1;
                size = match self.peek().and_then(number) {
                    Some(n @ (1 | 2 | 4)) => n as u8,
                    _ => return Err(self.err("the size after ':' must be 1, 2 or 4")),
                };
                self.pos += 1;
            }
            self.expect("]")?;
            return Ok(Arith::Load {
                proto: p,
                index: Box::new(index),
                size,
                vlan: self.vlan,
            });
        }
        Err(self.err("expected a number, len or proto[offset]"))
    }
    fn prim(&self, prim: Prim) -> Expr {
        Expr::Prim {
            prim,
            vlan: self.vlan,
        }
    }
    fn word_number(&mut self, what: &str) -> Result<u32, FilterError> {
        match self.peek().and_then(number) {
            Some(n) => {
                self.pos += 1;
                Ok(n)
            }
            None => Err(self.err(format!("expected {what}"))),
        }
    }
    /// After `geneve`, the tests are of the packet inside the tunnel;
    /// another layer keyword there is not supported.
    fn after_geneve(&self) -> Result<(), FilterError> {
        if self.geneve {
            return Err(self.err(
                "vlan, mpls, pppoes and geneve after 'geneve' (inside the tunnel) are not \
                 supported: test the inner packet's addresses, ports and protocols",
            ));
        }
        Ok(())
    }
    fn primitive(&mut self) -> Result<Expr, FilterError> {
        if matches!(self.peek(), Some("vlan" | "mpls" | "pppoes" | "geneve")) {
            self.after_geneve()?;
        }
        match self.peek() {
            Some("mpls") => {
                self.pos += 1;
                let label = match self.peek().and_then(number) {
                    Some(n) if n < 1 << 20 => {
                        self.pos += 1;
                        Some(n)
                    }
                    Some(_) => return Err(self.err("an MPLS label is 0 to 1048575")),
                    None => None,
                };
                let e = self.prim(Prim::Mpls { label });
                self.vlan = self.vlan.saturating_add(1);
                return Ok(e);
            }
            Some("pppoes") => {
                self.pos += 1;
                let session = match self.peek().and_then(number) {
                    Some(n) if n <= 0xffff => {
                        self.pos += 1;
                        Some(n as u16)
                    }
                    Some(_) => return Err(self.err("a PPPoE session id is 0 to 65535")),
                    None => None,
                };
                let e = self.prim(Prim::Pppoes { session });
                self.vlan = self.vlan.saturating_add(1);
                return Ok(e);
            }
            Some("pppoed") => {
                self.pos += 1;
                return Ok(self.prim(Prim::EtherProto(0x8863)));
            }
            Some("geneve") => {
                self.pos += 1;
                let vni = match self.peek().and_then(number) {
                    Some(n) if n < 1 << 24 => {
                        self.pos += 1;
                        Some(n)
                    }
                    Some(_) => return Err(self.err("a Geneve VNI is 0 to 16777215")),
                    None => None,
                };
                self.geneve = true;
                let e = self.prim(Prim::Geneve { vni });
                self.vlan = self.vlan.saturating_add(1);
                return Ok(e);
            }
            Some("vxlan") => {
                return Err(self.err(
                    "tcpdump (libpcap 1.10) has no 'vxlan' keyword: VXLAN is UDP port 4789, \
                     so use 'udp port 4789' (and udp[12:4] & 0xffffff00 = VNI << 8 for a VNI)",
                ));
            }
            Some("gre") => {
                return Err(
                    self.err("tcpdump has no 'gre' keyword: use 'proto gre' (IP protocol 47)")
                );
            }
            Some("vlan") => {
                self.pos += 1;
                let id = match self.peek().and_then(number) {
                    Some(n) if n < 4096 => {
                        self.pos += 1;
                        Some(n as u16)
                    }
                    Some(_) => return Err(self.err("a VLAN id is 0 to 4095")),
                    None => None,
                };
                let e = self.prim(Prim::Vlan { id });
                self.vlan = self.vlan.saturating_add(1);
                return Ok(e);
            }
            Some(w @ ("greater" | "less")) => {
                let op = if w == "greater" { RelOp::Ge } else { RelOp::Le };
                self.pos += 1;
                let n = self.word_number("a length in bytes")?;
                return Ok(Expr::Rel {
                    op,
                    l: Arith::Len,
                    r: Arith::Num(n),
                });
            }
            Some("broadcast") => {
                self.pos += 1;
                return Ok(self.prim(Prim::Broadcast));
            }
            Some("multicast") => {
                self.pos += 1;
                return Ok(self.prim(Prim::Multicast(Proto::Ether)));
            }
            Some("proto") => {
                self.pos += 1;
                return self.ip_proto(None);
            }
            _ => {}
        }
        let mut q = Quals::default();
        let mut any = false;
        if let Some(p) = self.peek().and_then(proto_kw) {
            q.proto = Some(p);
            self.pos += 1;
            any = true;
            match (p, self.peek()) {
                (Proto::Ether, Some("broadcast")) => {
                    self.pos += 1;
                    return Ok(self.prim(Prim::Broadcast));
                }
                (Proto::Ether | Proto::Ip | Proto::Ip6, Some("multicast")) => {
                    self.pos += 1;
                    return Ok(self.prim(Prim::Multicast(p)));
                }
                (Proto::Ip | Proto::Ip6, Some("broadcast")) => {
                    return Err(self.err(
                        "ip broadcast needs the interface's netmask, which sockscope does not \
                         know: use ip[19] = 255 or 'dst host ADDR'",
                    ));
                }
                (Proto::Ip | Proto::Ip6, Some("proto")) => {
                    self.pos += 1;
                    return self.ip_proto(Some(p));
                }
                (Proto::Ether, Some("proto")) => {
                    self.pos += 1;
                    let n = match self.peek() {
                        Some("ip") => 0x0800,
                        Some("ip6") => 0x86dd,
                        Some("arp") => 0x0806,
                        Some(t) => number(t).unwrap_or(0),
                        None => 0,
                    };
                    if !(0x0600..=0xffff).contains(&n) {
                        return Err(
                            self.err("expected an ethertype (0x0600 to 0xffff, or ip, ip6, arp)")
                        );
                    }
                    self.pos += 1;
                    return Ok(self.prim(Prim::EtherProto(n as u16)));
                }
                _ => {}
            }
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
        if let Some(p) = q.proto
            && q.dir.is_none()
            && q.ty.is_none()
        {
            if p == Proto::Ether {
                return Err(self
                    .err("expected host, src, dst, proto, broadcast or multicast after 'ether'"));
            }
            return Ok(self.prim(Prim::Proto(p)));
        }
        let Some(id) = self.peek().map(str::to_string) else {
            return Err(self.err("expected an address or port"));
        };
        if KEYWORDS.contains(&id.as_str()) {
            return Err(self.err("expected an address or port"));
        }
        if !any {
            match self.last {
                Some(l) => q = l,
                None => {
                    return Err(self.err(
                        "expected a primitive: host ADDR, net ADDR/LEN, port N, portrange A-B, \
                         src/dst ..., tcp, udp, icmp, ip, ip6, arp, ether host MAC, vlan [ID], \
                         mpls [LABEL], pppoes [SESSION], geneve [VNI], \
                         proto N, broadcast, multicast, greater N, less N or a comparison \
                         like tcp[13] = 2",
                    ));
                }
            }
        }
        self.pos += 1;
        self.last = Some(q);
        let dir = q.dir.unwrap_or(Dir::Either);
        let ty = q.ty.unwrap_or(Type::Host);
        // A MAC address is an ether host, with or without `ether`.
        if ty == Type::Host
            && matches!(q.proto, None | Some(Proto::Ether))
            && let Some(m) = mac(&id)
            && id.parse::<IpAddr>().is_err()
        {
            return Ok(self.prim(Prim::EtherHost { dir, mac: m }));
        }
        match ty {
            Type::Host | Type::Net => {
                match q.proto {
                    Some(Proto::Tcp | Proto::Udp | Proto::Icmp | Proto::Icmp6) => {
                        self.pos -= 1;
                        return Err(self.err("tcp, udp and icmp cannot qualify a host or net"));
                    }
                    Some(Proto::Ether) => {
                        self.pos -= 1;
                        return Err(self.err(if ty == Type::Net {
                            "ether takes host, src or dst, not net"
                        } else {
                            "expected a MAC address like 00:11:22:33:44:55"
                        }));
                    }
                    _ => {}
                }
                let (addr, prefix) = if ty == Type::Host {
                    let a: IpAddr = id.parse().map_err(|_| {
                        Self::err_at(
                            &id,
                            "expected an IPv4 or IPv6 address (names are not resolved)",
                        )
                    })?;
                    (a, if a.is_ipv4() { 32 } else { 128 })
                } else {
                    self.net(&id)?
                };
                match (q.proto, addr) {
                    (Some(Proto::Ip6), IpAddr::V4(_))
                    | (Some(Proto::Ip | Proto::Arp), IpAddr::V6(_)) => {
                        return Err(Self::err_at(
                            &id,
                            "address family does not match the protocol",
                        ));
                    }
                    _ => {}
                }
                Ok(self.prim(Prim::Net {
                    dir,
                    addr,
                    prefix,
                    proto: q.proto,
                }))
            }
            Type::Port | Type::PortRange => {
                let (lo, hi) = if ty == Type::Port {
                    let p = service_port(&id).ok_or_else(|| {
                        Self::err_at(&id, "expected a port number or a well-known service name")
                    })?;
                    (p, p)
                } else {
                    let r = id
                        .split_once('-')
                        .and_then(|(a, b)| Some((service_port(a)?, service_port(b)?)));
                    let Some((a, b)) = r else {
                        return Err(Self::err_at(&id, "expected a port range like 8000-8080"));
                    };
                    (a.min(b), a.max(b))
                };
                let (proto, family) = match q.proto {
                    Some(p @ (Proto::Tcp | Proto::Udp)) => (Some(p), None),
                    Some(f @ (Proto::Ip | Proto::Ip6)) => (None, Some(f)),
                    None => (None, None),
                    Some(_) => {
                        return Err(Self::err_at(
                            &id,
                            "only tcp, udp, ip and ip6 can qualify a port",
                        ));
                    }
                };
                Ok(self.prim(Prim::Port {
                    dir,
                    lo,
                    hi,
                    proto,
                    family,
                }))
            }
        }
    }
    fn ip_proto(&mut self, family: Option<Proto>) -> Result<Expr, FilterError> {
        match self.peek().and_then(ip_proto_name) {
            Some(proto) => {
                self.pos += 1;
                Ok(self.prim(Prim::IpProto { family, proto }))
            }
            None => Err(self.err(
                "expected a protocol number (0 to 255) or name (tcp, udp, icmp, icmp6, igmp, sctp, gre, esp, ah, pim, vrrp)",
            )),
        }
    }
    fn net(&mut self, id: &str) -> Result<(IpAddr, u8), FilterError> {
        let bad = || Self::err_at(id, "expected a network like 10.0.0.0/8, 10.1 or fd00::/8");
        let host_bits = |addr: IpAddr, len: u8, shown: &str| -> Result<(IpAddr, u8), FilterError> {
            if mask_addr(addr, len) != addr {
                return Err(Self::err_at(
                    shown,
                    format!(
                        "non-network bits set (did you mean net {}/{len}?)",
                        mask_addr(addr, len)
                    ),
                ));
            }
            Ok((addr, len))
        };
        if let Some((a, l)) = id.split_once('/') {
            let addr: IpAddr = a.parse().map_err(|_| bad())?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let len: u8 = l.parse().ok().filter(|&n| n <= max).ok_or_else(bad)?;
            return host_bits(addr, len, id);
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
                    return Err(Self::err_at(
                        &m.to_string(),
                        "the mask must be a contiguous IPv4 netmask",
                    ));
                }
                let len = bits.leading_ones() as u8;
                return host_bits(addr, len, &format!("{id} mask {m}"));
            }
            let len = if addr.is_ipv4() { 32 } else { 128 };
            return Ok((addr, len));
        }
        // Dotted prefix: "10", "10.1", "10.1.2".
        let parts: Vec<&str> = id.split('.').collect();
        if parts.len() <= 3 {
            let mut o = [0u8; 4];
            for (i, p) in parts.iter().enumerate() {
                o[i] = p.parse().map_err(|_| bad())?;
            }
            return Ok((IpAddr::from(o), (parts.len() * 8) as u8));
        }
        Err(bad())
    }
}

pub fn mask_addr(a: IpAddr, len: u8) -> IpAddr {
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

/// Parse filter words (as given on the command line); None when empty.
pub fn parse_words(words: &[String]) -> Result<Option<Expr>, FilterError> {
    let toks = tokenize(words);
    if toks.is_empty() {
        return Ok(None);
    }
    let mut p = Parser {
        toks,
        pos: 0,
        last: None,
        vlan: 0,
        geneve: false,
    };
    let e = p.expr()?;
    if p.pos < p.toks.len() {
        return Err(p.err("expected 'and', 'or' or the end of the filter"));
    }
    Ok(Some(e))
}
