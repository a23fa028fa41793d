//! The parsed filter expression and its evaluation on one [`Socket`].
//!
//! Values (ports, addresses, prefixes, UNIX path globs) are parsed here from
//! their text; the parser in `parser.rs` attaches positions to the messages.
//!
//! Matching rules:
//! - A comparison on a field the socket lacks is false, whatever the operator:
//!   `dport != 22` is false for a UNIX socket, `uid = 0` is false when the uid
//!   is unknown. `not dport = 22` is the full complement.
//! - `pid` and `comm` look at every owner: `pid = N` is true when any owner
//!   has pid N, and `pid != N` / `comm != X` are true when no owner matches
//!   (also when there are no owners).
//! - An IPv4 address or prefix also matches the IPv4-mapped IPv6 form
//!   (`::ffff:a.b.c.d`) of the addresses it covers, and an IPv6 prefix that
//!   covers mapped addresses matches the plain IPv4 ones.
//! - `src PATH` on a UNIX socket matches its bound path (`@name` for an
//!   abstract one) with `*` as a wildcard; unnamed sockets have no path.
//!   `dst PATH` matches nothing: the kernel does not report the peer's path.

use super::lexer::CmpOp;
use super::services::Services;
use crate::abi::inet_diag::{
    BC_OP_LEN, INET_DIAG_BC_D_COND as BC_D_COND, INET_DIAG_BC_D_EQ as BC_D_EQ,
    INET_DIAG_BC_D_GE as BC_D_GE, INET_DIAG_BC_D_LE as BC_D_LE, INET_DIAG_BC_JMP as BC_JMP,
    INET_DIAG_BC_S_COND as BC_S_COND, INET_DIAG_BC_S_EQ as BC_S_EQ, INET_DIAG_BC_S_GE as BC_S_GE,
    INET_DIAG_BC_S_LE as BC_S_LE, bc_op, relocate_failures,
};
use crate::model::{Endpoint, Socket, StateSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Which end of the socket a predicate looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// `src` / `sport`: the local end.
    Src,
    /// `dst` / `dport`: the peer.
    Dst,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Pred(Pred),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Pred {
    /// `state NAME`; `name` as written, for display.
    State {
        set: StateSet,
        name: String,
    },
    Port {
        side: Side,
        op: CmpOp,
        port: u16,
    },
    /// `src` / `dst`; `ne` for `!=`; `text` as written, for display.
    Host {
        side: Side,
        ne: bool,
        host: Host,
        text: String,
    },
    Pid {
        op: CmpOp,
        value: u32,
    },
    Uid {
        op: CmpOp,
        value: u32,
    },
    Inode {
        op: CmpOp,
        value: u64,
    },
    Comm {
        ne: bool,
        pattern: String,
    },
}

/// The value of `src` / `dst`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Host {
    /// An INET address or prefix (`None`: any address) and maybe a port.
    Inet { net: Option<Net>, port: Option<u16> },
    /// A UNIX path glob.
    Path(String),
}

/// An address prefix, kept in IPv6 form: an IPv4 prefix `a/n` is stored as
/// `::ffff:a/(96+n)`, so that it covers the mapped addresses too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Net {
    bits: u128,
    len: u8,
    /// The prefix lies inside `::ffff:0:0/96`, so it can match plain IPv4
    /// addresses (an IPv6 prefix like `::/0` does not).
    v4: bool,
}

const MAPPED_PREFIX: u128 = 0xffff;

impl Net {
    pub(crate) fn new(addr: IpAddr, len: u8) -> Net {
        let (v6, len) = match addr {
            IpAddr::V4(a) => (a.to_ipv6_mapped(), len.saturating_add(96)),
            IpAddr::V6(a) => (a, len),
        };
        let len = len.min(128);
        let bits = u128::from(v6) & mask(len);
        Net {
            bits,
            len,
            v4: len >= 96 && bits >> 32 == MAPPED_PREFIX,
        }
    }

    pub(crate) fn contains(&self, addr: IpAddr) -> bool {
        let v6 = match addr {
            IpAddr::V4(_) if !self.v4 => return false,
            IpAddr::V4(a) => a.to_ipv6_mapped(),
            IpAddr::V6(a) => a,
        };
        u128::from(v6) & mask(self.len) == self.bits
    }
}

fn mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

impl Expr {
    pub(crate) fn eval(&self, s: &Socket) -> bool {
        match self {
            Expr::And(a, b) => a.eval(s) && b.eval(s),
            Expr::Or(a, b) => a.eval(s) || b.eval(s),
            Expr::Not(a) => !a.eval(s),
            Expr::Pred(p) => p.eval(s),
        }
    }

    /// Calls `f` on every predicate.
    pub(crate) fn any_pred(&self, f: &dyn Fn(&Pred) -> bool) -> bool {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => a.any_pred(f) || b.any_pred(f),
            Expr::Not(a) => a.any_pred(f),
            Expr::Pred(p) => f(p),
        }
    }

    /// The local ports every inet socket the expression matches has, when
    /// it says (`sport = :P`, `src ADDR:P`, their `or`s, and an `and` with
    /// anything): sorted, without repeats. `None`: any port may match (a
    /// negation, a range, another predicate alone). Conservative, so that
    /// the kernel may be asked for those ports' sockets alone and the
    /// expression still decides.
    pub(crate) fn local_ports(&self) -> Option<Vec<u16>> {
        match self {
            Expr::Pred(Pred::Port {
                side: Side::Src,
                op: CmpOp::Eq,
                port,
            })
            | Expr::Pred(Pred::Host {
                side: Side::Src,
                ne: false,
                host: Host::Inet {
                    port: Some(port), ..
                },
                ..
            }) => Some(vec![*port]),
            Expr::Pred(_) | Expr::Not(_) => None,
            Expr::And(a, b) => match (a.local_ports(), b.local_ports()) {
                (Some(x), Some(y)) => Some(x.into_iter().filter(|p| y.contains(p)).collect()),
                (x, y) => x.or(y),
            },
            Expr::Or(a, b) => {
                let mut x = a.local_ports()?;
                x.extend(b.local_ports()?);
                x.sort_unstable();
                x.dedup();
                Some(x)
            }
        }
    }

    /// A program for the kernel's socket-dump filter (inet_diag bytecode)
    /// that passes at least every inet socket the expression matches:
    /// ports compared (`=`, `<`, `<=`, `>`, `>=`), addresses and prefixes
    /// with their port (`src`, `dst`), joined by `and` and `or`. What it
    /// cannot say (a negation, `!=`, states, owners, uid, inode, UNIX
    /// paths) passes everything, so the expression still decides each
    /// row. `None`: nothing to ask of the kernel.
    ///
    /// The layout is the kernel's (net/ipv4/inet_diag.c): each op is
    /// `code, yes, no (u16)`; a test that holds goes on `yes` bytes,
    /// one that fails `no` bytes; landing exactly at the end passes the
    /// socket, four bytes past it rejects it. Every block built here
    /// passes by running off its end and fails by jumping four bytes past
    /// it; every op's `yes` is its own length (the kernel's check walks
    /// the `yes` chain).
    pub(crate) fn kernel_bytecode(&self) -> Option<Vec<u8>> {
        let code = self.bc()?;
        (code.len() <= MAX_BYTECODE).then_some(code)
    }

    fn bc(&self) -> Option<Vec<u8>> {
        match self {
            Expr::Pred(p) => p.bc(),
            // A negation passes exactly the sockets its operand fails,
            // which a program that passes too many cannot tell: anything.
            Expr::Not(_) => None,
            Expr::And(a, b) => match (a.bc(), b.bc()) {
                (Some(mut x), Some(y)) => {
                    // x fails four bytes past x: now past y.
                    relocate_failures(&mut x, y.len());
                    x.extend(y);
                    Some(x)
                }
                (x, y) => x.or(y),
            },
            Expr::Or(a, b) => {
                let (mut x, y) = (a.bc()?, b.bc()?);
                // x fails into y (four bytes past x: the jump is those
                // four); x holds: jump over y to the end.
                x.extend(bc_op(BC_JMP, BC_OP_LEN, BC_OP_LEN + y.len()));
                x.extend(y);
                Some(x)
            }
        }
    }

    /// What the expression says about states (see [`StateInfo`]).
    pub(crate) fn state_info(&self) -> StateInfo {
        match self {
            Expr::Pred(Pred::State { set, .. }) => StateInfo {
                set: *set,
                exact: true,
                mentioned: true,
            },
            Expr::Pred(_) => StateInfo {
                set: StateSet::ALL,
                exact: false,
                mentioned: false,
            },
            Expr::Not(a) => {
                let i = a.state_info();
                StateInfo {
                    set: if i.exact {
                        StateSet::ALL.without(i.set)
                    } else {
                        StateSet::ALL
                    },
                    exact: i.exact,
                    mentioned: i.mentioned,
                }
            }
            Expr::And(a, b) => {
                let (a, b) = (a.state_info(), b.state_info());
                StateInfo {
                    set: a.set.intersect(b.set),
                    exact: a.exact && b.exact,
                    mentioned: a.mentioned || b.mentioned,
                }
            }
            Expr::Or(a, b) => {
                let (a, b) = (a.state_info(), b.state_info());
                StateInfo {
                    set: a.set.union(b.set),
                    exact: a.exact && b.exact,
                    mentioned: a.mentioned || b.mentioned,
                }
            }
        }
    }
}

/// The states an expression can match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StateInfo {
    /// Every socket the expression matches has a state in `set`.
    pub(crate) set: StateSet,
    /// The expression is true exactly for the states in `set` (it is made of
    /// state predicates only), so its negation is the complement.
    pub(crate) exact: bool,
    /// Some state predicate occurs in the expression.
    pub(crate) mentioned: bool,
}

fn endpoint(s: &Socket, side: Side) -> &Endpoint {
    match side {
        Side::Src => &s.local,
        Side::Dst => &s.peer,
    }
}

impl Pred {
    pub(crate) fn eval(&self, s: &Socket) -> bool {
        match self {
            Pred::State { set, .. } => set.contains(s.state),
            Pred::Port { side, op, port } => endpoint(s, *side)
                .port()
                .is_some_and(|p| op.apply(p, *port)),
            Pred::Host { side, ne, host, .. } => {
                host_matches(host, *side, s).is_some_and(|m| m != *ne)
            }
            Pred::Pid { op, value } => match op {
                CmpOp::Ne => !s.owners.iter().any(|o| o.pid == *value),
                _ => s.owners.iter().any(|o| op.apply(o.pid, *value)),
            },
            Pred::Uid { op, value } => s.uid.is_some_and(|u| op.apply(u, *value)),
            Pred::Inode { op, value } => op.apply(s.inode, *value),
            Pred::Comm { ne, pattern } => {
                s.owners.iter().any(|o| glob_match(pattern, &o.comm)) != *ne
            }
        }
    }
}

/// Longest program handed to the kernel (its attribute length is 16 bits).
const MAX_BYTECODE: usize = 4096;
// socket address families (linux/socket.h)
const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

impl Pred {
    /// See [`Expr::kernel_bytecode`].
    fn bc(&self) -> Option<Vec<u8>> {
        match self {
            Pred::Port { side, op, port } => {
                let (eq, ge, le) = match side {
                    Side::Src => (BC_S_EQ, BC_S_GE, BC_S_LE),
                    Side::Dst => (BC_D_EQ, BC_D_GE, BC_D_LE),
                };
                let (code, port) = match op {
                    CmpOp::Eq => (eq, *port),
                    CmpOp::Ge => (ge, *port),
                    CmpOp::Le => (le, *port),
                    CmpOp::Gt => (ge, port.checked_add(1)?),
                    CmpOp::Lt => (le, port.checked_sub(1)?),
                    CmpOp::Ne => return None,
                };
                // The port rides in the `no` of a second op.
                let mut v = bc_op(code, 2 * BC_OP_LEN, 3 * BC_OP_LEN).to_vec();
                v.extend(bc_op(0, 0, usize::from(port)));
                Some(v)
            }
            Pred::Host {
                side,
                ne: false,
                host: Host::Inet { net, port },
                ..
            } => {
                // struct inet_diag_hostcond: family, prefix_len, int port
                // (-1: any), then the address. An IPv4 prefix also passes
                // IPv4-mapped IPv6 addresses (as the kernel matches it);
                // an IPv6 one, IPv6 sockets only: as `Net::contains`.
                let (family, prefix, addr): (u8, u8, Vec<u8>) = match net {
                    None if port.is_none() => return None,
                    None => (AF_UNSPEC, 0, Vec::new()),
                    Some(n) if n.v4 => {
                        (AF_INET, n.len - 96, (n.bits as u32).to_be_bytes().to_vec())
                    }
                    Some(n) => (AF_INET6, n.len, n.bits.to_be_bytes().to_vec()),
                };
                let code = match side {
                    Side::Src => BC_S_COND,
                    Side::Dst => BC_D_COND,
                };
                let len = BC_OP_LEN + 8 + addr.len();
                let mut v = bc_op(code, len, len + BC_OP_LEN).to_vec();
                v.extend([family, prefix, 0, 0]);
                v.extend(port.map_or(-1, i32::from).to_ne_bytes());
                v.extend(addr);
                Some(v)
            }
            _ => None,
        }
    }
}

/// `None` when the socket has no such field to compare (a UNIX socket for an
/// INET address, an unnamed or peer path for a path glob).
fn host_matches(host: &Host, side: Side, s: &Socket) -> Option<bool> {
    match (host, endpoint(s, side)) {
        (Host::Inet { net, port }, Endpoint::Inet { addr, port: p }) => {
            Some(net.is_none_or(|n| n.contains(*addr)) && port.is_none_or(|want| want == *p))
        }
        (Host::Path(pattern), Endpoint::Unix { path: Some(p), .. }) if side == Side::Src => {
            Some(glob_match(pattern, p))
        }
        _ => None,
    }
}

/// Matches `text` against `pattern`, where `*` stands for any run of
/// characters (including none and including `/`). Everything else is literal.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // Position of the last `*` seen and the text position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Parses a port value: `:8080`, `8080`, `:http`, `http`. Errors are messages.
pub(crate) fn parse_port(text: &str, services: &Services) -> Result<u16, String> {
    let v = text.strip_prefix(':').unwrap_or(text);
    if v.is_empty() {
        return Err("empty port".to_string());
    }
    if v.bytes().all(|b| b.is_ascii_digit()) {
        return match v.parse::<u32>() {
            Ok(n) if n <= 65535 => Ok(n as u16),
            _ => Err(format!("port {v} is out of range (0-65535)")),
        };
    }
    if v.contains(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')) {
        return Err(format!("'{text}' is not a port"));
    }
    services
        .port(v, None)
        .ok_or_else(|| format!("unknown service name '{v}'"))
}

/// Parses the value of `src` / `dst`.
pub(crate) fn parse_host(text: &str, services: &Services) -> Result<Host, String> {
    if let Some(path) = text.strip_prefix("unix:") {
        if path.is_empty() {
            return Err("empty UNIX path after 'unix:'".to_string());
        }
        return Ok(Host::Path(path.to_string()));
    }
    if text.starts_with(['/', '@', '.']) {
        return Ok(Host::Path(text.to_string()));
    }
    if text.is_empty() {
        return Err("empty address".to_string());
    }
    let (addr, port) = if let Some(rest) = text.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err(format!("missing ']' in '{text}'"));
        };
        let port = match after {
            "" => None,
            a => match a.strip_prefix(':') {
                Some(p) => Some(p),
                None => return Err(format!("unexpected '{a}' after ']'")),
            },
        };
        if inside.contains('.') && !inside.contains(':') {
            return Err(format!("'[{inside}]': brackets are for IPv6 addresses"));
        }
        (inside, port)
    } else {
        match text.matches(':').count() {
            0 => (text, None),
            1 => {
                let (a, p) = text.split_once(':').unwrap_or((text, ""));
                (a, Some(p))
            }
            // Several colons without brackets: an IPv6 address, no port.
            _ => (text, None),
        }
    };
    let net = match addr {
        "" | "*" => None,
        a => Some(parse_net(a)?),
    };
    let port = match port {
        None | Some("*") => None,
        Some(p) => Some(parse_port(p, services)?),
    };
    Ok(Host::Inet { net, port })
}

/// Parses `ADDR` or `ADDR/LEN`. For IPv4 with a prefix length, short forms
/// like `10/8` or `192.168/16` are accepted (missing octets are zero).
fn parse_net(text: &str) -> Result<Net, String> {
    let (a, len) = match text.split_once('/') {
        Some((a, l)) => {
            let len = l
                .parse::<u8>()
                .map_err(|_| format!("bad prefix length '{l}' in '{text}'"))?;
            (a, Some(len))
        }
        None => (text, None),
    };
    let addr: IpAddr = if let Ok(v6) = a.parse::<Ipv6Addr>() {
        IpAddr::V6(v6)
    } else if let Ok(v4) = a.parse::<Ipv4Addr>() {
        IpAddr::V4(v4)
    } else if let (Some(_), Some(v4)) = (len, short_ipv4(a)) {
        IpAddr::V4(v4)
    } else if a.contains(|c: char| c.is_ascii_alphabetic()) && !a.contains(':') {
        return Err(format!(
            "'{a}' is not an IP address (host names are not resolved)"
        ));
    } else {
        return Err(format!("'{a}' is not an IP address"));
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(max);
    if len > max {
        return Err(format!(
            "prefix length {len} is too long for {} (at most {max})",
            if max == 32 { "IPv4" } else { "IPv6" }
        ));
    }
    Ok(Net::new(addr, len))
}

/// `10` → 10.0.0.0, `192.168` → 192.168.0.0, `10.1.2` → 10.1.2.0.
fn short_ipv4(a: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = a.split('.').collect();
    if parts.len() > 3 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        octets[i] = p.parse().ok()?;
    }
    Some(Ipv4Addr::from(octets))
}

/// Quotes a value for display when it would not survive the lexer bare.
fn shown(v: &str) -> String {
    let plain = !v.is_empty()
        && !v.contains(|c: char| {
            c.is_whitespace() || matches!(c, '(' | ')' | '=' | '!' | '<' | '>' | '&' | '|')
        })
        && !v.starts_with(['"', '\''])
        && !matches!(
            v.to_ascii_lowercase().as_str(),
            "and" | "or" | "not" | "eq" | "ne" | "lt" | "le" | "gt" | "ge"
        );
    if plain {
        v.to_string()
    } else if v.contains('"') {
        format!("'{v}'")
    } else {
        format!("\"{v}\"")
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::And(a, b) => write!(f, "({a} and {b})"),
            Expr::Or(a, b) => write!(f, "({a} or {b})"),
            Expr::Not(a) => write!(f, "not {a}"),
            Expr::Pred(p) => write!(f, "{p}"),
        }
    }
}

impl fmt::Display for Pred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |s: &Side, src: &'static str, dst: &'static str| match s {
            Side::Src => src,
            Side::Dst => dst,
        };
        let eq = |ne: bool| if ne { "!=" } else { "=" };
        match self {
            Pred::State { name, .. } => write!(f, "state {name}"),
            Pred::Port { side: s, op, port } => {
                write!(f, "{} {} :{port}", side(s, "sport", "dport"), op.symbol())
            }
            Pred::Host {
                side: s, ne, text, ..
            } => write!(f, "{} {} {}", side(s, "src", "dst"), eq(*ne), shown(text)),
            Pred::Pid { op, value } => write!(f, "pid {} {value}", op.symbol()),
            Pred::Uid { op, value } => write!(f, "uid {} {value}", op.symbol()),
            Pred::Inode { op, value } => write!(f, "inode {} {value}", op.symbol()),
            Pred::Comm { ne, pattern } => write!(f, "comm {} {}", eq(*ne), shown(pattern)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> Net {
        parse_net(s).unwrap()
    }

    #[test]
    fn glob() {
        assert!(glob_match("nginx", "nginx"));
        assert!(!glob_match("nginx", "nginx2"));
        assert!(!glob_match("nginx", "ngin"));
        assert!(glob_match("ngi*", "nginx"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*x", "nginx"));
        assert!(glob_match("/run/*.sock", "/run/a/b.sock"));
        assert!(!glob_match("/run/*.sock", "/run/a/b.sockx"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
        assert!(glob_match("**a", "a"));
        assert!(glob_match("kworker/*:1", "kworker/0:1"));
    }

    #[test]
    fn nets_v4_and_mapped() {
        let n = net("10.0.0.0/8");
        assert!(n.contains(ip("10.255.0.1")));
        assert!(!n.contains(ip("11.0.0.1")));
        assert!(n.contains(ip("::ffff:10.1.2.3")));
        assert!(!n.contains(ip("::ffff:11.1.2.3")));
        assert!(!n.contains(ip("::10.1.2.3")));
        // Host bits in the filter are ignored.
        assert!(net("10.1.2.3/8").contains(ip("10.9.9.9")));
        let one = net("127.0.0.1");
        assert!(one.contains(ip("127.0.0.1")));
        assert!(one.contains(ip("::ffff:127.0.0.1")));
        assert!(!one.contains(ip("127.0.0.2")));
        assert!(net("0.0.0.0/0").contains(ip("1.2.3.4")));
        assert!(net("0.0.0.0/0").contains(ip("::ffff:1.2.3.4")));
        assert!(!net("0.0.0.0/0").contains(ip("::1")));
        assert!(net("10/8").contains(ip("10.2.3.4")));
        assert!(net("192.168/16").contains(ip("192.168.7.7")));
        assert!(!net("192.168/16").contains(ip("192.169.0.1")));
    }

    #[test]
    fn nets_v6() {
        let ll = net("fe80::/10");
        assert!(ll.contains(ip("fe80::1")));
        assert!(ll.contains(ip("febf::1")));
        assert!(!ll.contains(ip("fec0::1")));
        assert!(!ll.contains(ip("10.0.0.1")));
        assert!(net("::1").contains(ip("::1")));
        assert!(!net("::1").contains(ip("::2")));
        assert!(!net("::").contains(ip("0.0.0.0")));
        let mapped = net("::ffff:10.0.0.0/104");
        assert!(mapped.contains(ip("10.3.3.3")));
        assert!(mapped.contains(ip("::ffff:10.3.3.3")));
        assert!(!mapped.contains(ip("11.3.3.3")));
        assert!(net("::ffff:127.0.0.1").contains(ip("127.0.0.1")));
        assert!(net("::ffff:0:0/96").contains(ip("1.2.3.4")));
        // IPv6 prefixes outside the mapped range never match plain IPv4.
        assert!(!net("::/0").contains(ip("1.2.3.4")));
        assert!(!net("::ffff:0:0/95").contains(ip("1.2.3.4")));
        assert!(net("::/0").contains(ip("::ffff:1.2.3.4")));
    }

    #[test]
    fn bad_nets() {
        assert_eq!(
            parse_net("10.0.0.0/33").unwrap_err(),
            "prefix length 33 is too long for IPv4 (at most 32)"
        );
        assert_eq!(
            parse_net("::/129").unwrap_err(),
            "prefix length 129 is too long for IPv6 (at most 128)"
        );
        assert_eq!(
            parse_net("300.1.1.1").unwrap_err(),
            "'300.1.1.1' is not an IP address"
        );
        assert_eq!(parse_net("10").unwrap_err(), "'10' is not an IP address");
        assert_eq!(
            parse_net("example.com").unwrap_err(),
            "'example.com' is not an IP address (host names are not resolved)"
        );
        assert_eq!(
            parse_net("10.0.0.0/x").unwrap_err(),
            "bad prefix length 'x' in '10.0.0.0/x'"
        );
    }

    #[test]
    fn hosts() {
        let sv = Services::parse("http 80/tcp\n");
        let inet = |a: Option<&str>, port: Option<u16>| Host::Inet {
            net: a.map(net),
            port,
        };
        assert_eq!(
            parse_host("127.0.0.1", &sv),
            Ok(inet(Some("127.0.0.1"), None))
        );
        assert_eq!(
            parse_host("127.0.0.1:8080", &sv),
            Ok(inet(Some("127.0.0.1"), Some(8080)))
        );
        assert_eq!(parse_host("*:8080", &sv), Ok(inet(None, Some(8080))));
        assert_eq!(parse_host(":http", &sv), Ok(inet(None, Some(80))));
        assert_eq!(parse_host("*", &sv), Ok(inet(None, None)));
        assert_eq!(parse_host("*:*", &sv), Ok(inet(None, None)));
        assert_eq!(parse_host("::1", &sv), Ok(inet(Some("::1"), None)));
        assert_eq!(parse_host("[::1]", &sv), Ok(inet(Some("::1"), None)));
        assert_eq!(parse_host("[::1]:80", &sv), Ok(inet(Some("::1"), Some(80))));
        assert_eq!(
            parse_host("[fe80::]/10", &sv).unwrap_err(),
            "unexpected '/10' after ']'"
        );
        assert_eq!(
            parse_host("[fe80::/10]:http", &sv),
            Ok(inet(Some("fe80::/10"), Some(80)))
        );
        assert_eq!(
            parse_host("fe80::/10", &sv),
            Ok(inet(Some("fe80::/10"), None))
        );
        assert_eq!(
            parse_host("10.0.0.0/8:22", &sv),
            Ok(inet(Some("10.0.0.0/8"), Some(22)))
        );
        assert_eq!(
            parse_host("/run/*.sock", &sv),
            Ok(Host::Path("/run/*.sock".to_string()))
        );
        assert_eq!(parse_host("@abs", &sv), Ok(Host::Path("@abs".to_string())));
        assert_eq!(parse_host("unix:x", &sv), Ok(Host::Path("x".to_string())));
        assert_eq!(
            parse_host("[::1", &sv).unwrap_err(),
            "missing ']' in '[::1'"
        );
        assert_eq!(
            parse_host("[1.2.3.4]", &sv).unwrap_err(),
            "'[1.2.3.4]': brackets are for IPv6 addresses"
        );
        assert_eq!(
            parse_host("1.2.3.4:nope", &sv).unwrap_err(),
            "unknown service name 'nope'"
        );
        assert_eq!(
            parse_host("1.2.3.4:70000", &sv).unwrap_err(),
            "port 70000 is out of range (0-65535)"
        );
    }

    #[test]
    fn ports() {
        let sv = Services::parse("ssh 22/tcp\nhttp 80/tcp www\n");
        assert_eq!(parse_port(":22", &sv), Ok(22));
        assert_eq!(parse_port("22", &sv), Ok(22));
        assert_eq!(parse_port(":0", &sv), Ok(0));
        assert_eq!(parse_port(":65535", &sv), Ok(65535));
        assert_eq!(parse_port(":ssh", &sv), Ok(22));
        assert_eq!(parse_port("www", &sv), Ok(80));
        assert_eq!(parse_port(":", &sv).unwrap_err(), "empty port");
        assert_eq!(
            parse_port(":65536", &sv).unwrap_err(),
            "port 65536 is out of range (0-65535)"
        );
        assert_eq!(
            parse_port(":99999999999999999999", &sv).unwrap_err(),
            "port 99999999999999999999 is out of range (0-65535)"
        );
        assert_eq!(
            parse_port(":smtp", &sv).unwrap_err(),
            "unknown service name 'smtp'"
        );
        assert_eq!(
            parse_port("1.2.3.4:5", &sv).unwrap_err(),
            "'1.2.3.4:5' is not a port"
        );
    }
}
