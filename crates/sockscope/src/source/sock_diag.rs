//! NETLINK_SOCK_DIAG: the kernel's socket tables over netlink.
//!
//! This is the fast and complete source: inet_diag for TCP, UDP, UDP-Lite
//! and RAW (IPv4 and IPv6), unix_diag for UNIX sockets. The kernel is asked
//! only for the states wanted (`idiag_states` / `udiag_states`), so a
//! `state listening` query never copies the established table.
//!
//! A protocol whose diag handler is not built into the running kernel (RAW
//! needs CONFIG_INET_RAW_DIAG) answers ENOENT; that comes back as
//! [`DiagError::Unsupported`] so the caller can read /proc instead.

use crate::abi::{self, consts, inet_diag, netlink, sock_diag, unix_diag};
use crate::model::{
    Endpoint, Family, Proto, Socket, SourceKind, State, StateSet, Timer, TimerKind,
};
use rustix::fd::OwnedFd;
use rustix::io::Errno;
use rustix::net::{
    self, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType, netlink::SocketAddrNetlink,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a dump failed.
#[derive(Debug, thiserror::Error)]
pub enum DiagError {
    /// The kernel has no sock_diag handler for this family/protocol.
    #[error("the kernel has no sock_diag support for {0} (module not built in)")]
    Unsupported(&'static str),
    #[error("netlink sock_diag: {0}")]
    Io(#[from] std::io::Error),
    #[error("netlink sock_diag: malformed reply: {0}")]
    Malformed(&'static str),
}

impl crate::error::Classify for DiagError {
    fn kind(&self) -> crate::error::Kind {
        use crate::error::Kind;
        match self {
            DiagError::Unsupported(_) => Kind::KernelFeature,
            DiagError::Io(e) => Kind::of_io(e),
            DiagError::Malformed(_) => Kind::System,
        }
    }
}

/// Which extensions to ask inet_diag for (bits of `idiag_ext`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    /// tcp_info (INET_DIAG_INFO).
    pub info: bool,
    /// Socket memory (INET_DIAG_SKMEMINFO).
    pub skmem: bool,
    /// Congestion control name (INET_DIAG_CONG).
    pub cong: bool,
}

impl Extensions {
    fn bits(self) -> u8 {
        let mut b = 0;
        if self.info {
            b |= inet_diag::ext_bit(inet_diag::INET_DIAG_INFO);
        }
        if self.skmem {
            b |= inet_diag::ext_bit(inet_diag::INET_DIAG_SKMEMINFO);
        }
        if self.cong {
            b |= inet_diag::ext_bit(inet_diag::INET_DIAG_CONG);
        }
        b
    }
}

/// An open NETLINK_SOCK_DIAG socket. It belongs to the network namespace of
/// the thread that opened it, and keeps belonging to it.
pub struct DiagSocket {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
    /// A filter program every inet dump also runs (see
    /// [`DiagSocket::set_bytecode`]).
    bytecode: Option<Vec<u8>>,
}

/// Size of the receive buffer. The kernel fills dump replies up to the
/// largest recvmsg size it has seen, capped near 32 KiB.
const RECV_BUF: usize = 64 * 1024;

impl DiagSocket {
    /// Have every later inet dump pass only the sockets `code` passes (an
    /// inet_diag filter program, as `query::Filter::kernel_bytecode`
    /// makes; with a local-port filter, both must pass).
    pub fn set_bytecode(&mut self, code: Option<Vec<u8>>) {
        self.bytecode = code;
    }

    /// The request's filter attribute: the local ports' program and the
    /// one set with [`set_bytecode`](Self::set_bytecode), both to pass.
    fn filter_attr(&self, local_ports: &[u16]) -> Result<Option<Vec<u8>>, DiagError> {
        let mut code = if local_ports.is_empty() {
            Vec::new()
        } else {
            ports_filter_code(local_ports)?
        };
        if let Some(more) = &self.bytecode {
            inet_diag::relocate_failures(&mut code, more.len());
            code.extend_from_slice(more);
        }
        if code.is_empty() {
            return Ok(None);
        }
        if netlink::NLA_HDRLEN + code.len() > usize::from(u16::MAX) {
            return Err(DiagError::Malformed("a filter program longer than 64 KiB"));
        }
        let mut a = Vec::with_capacity(netlink::NLA_HDRLEN + code.len());
        a.extend_from_slice(&((netlink::NLA_HDRLEN + code.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&inet_diag::INET_DIAG_REQ_BYTECODE.to_ne_bytes());
        a.extend_from_slice(&code);
        Ok(Some(a))
    }

    pub fn open() -> Result<DiagSocket, DiagError> {
        let fd = net::socket_with(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC,
            Some(net::netlink::SOCK_DIAG),
        )
        .map_err(io)?;
        Ok(DiagSocket {
            fd,
            seq: 0,
            buf: vec![0; RECV_BUF],
            bytecode: None,
        })
    }

    /// Dump one inet protocol/family, appending to `out`.
    pub fn dump_inet(
        &mut self,
        proto: Proto,
        family: Family,
        states: StateSet,
        ext: Extensions,
        out: &mut Vec<Socket>,
    ) -> Result<(), DiagError> {
        self.dump_inet_port(proto, family, states, ext, None, out)
    }

    /// Like [`dump_inet`](Self::dump_inet), and with `local_port` the
    /// kernel itself keeps only sockets bound to that local port (a filter
    /// program in INET_DIAG_REQ_BYTECODE), so nothing else is copied out.
    pub fn dump_inet_port(
        &mut self,
        proto: Proto,
        family: Family,
        states: StateSet,
        ext: Extensions,
        local_port: Option<u16>,
        out: &mut Vec<Socket>,
    ) -> Result<(), DiagError> {
        let ports: &[u16] = match &local_port {
            Some(p) => std::slice::from_ref(p),
            None => &[],
        };
        self.dump_inet_ports(proto, family, states, ext, ports, out)
    }

    /// Like [`dump_inet`](Self::dump_inet), keeping (in the kernel) only
    /// sockets whose local port is one of `local_ports`; every socket when
    /// it is empty.
    pub fn dump_inet_ports(
        &mut self,
        proto: Proto,
        family: Family,
        states: StateSet,
        ext: Extensions,
        local_ports: &[u16],
        out: &mut Vec<Socket>,
    ) -> Result<(), DiagError> {
        self.dump_inet_ports_each(proto, family, states, ext, local_ports, &mut |s| {
            out.push(s);
            true
        })
    }

    /// [`dump_inet_ports`](Self::dump_inet_ports), handing each socket to
    /// `each` as its message is decoded instead of collecting them; the
    /// dump stops early (Ok) when `each` returns false.
    pub fn dump_inet_ports_each(
        &mut self,
        proto: Proto,
        family: Family,
        states: StateSet,
        ext: Extensions,
        local_ports: &[u16],
        each: &mut dyn FnMut(Socket) -> bool,
    ) -> Result<(), DiagError> {
        let (ipproto, what) = match proto {
            Proto::Tcp => (consts::IPPROTO_TCP, "tcp"),
            Proto::Udp => (consts::IPPROTO_UDP, "udp"),
            Proto::Udplite => (consts::IPPROTO_UDPLITE, "udplite"),
            Proto::Raw => (consts::IPPROTO_RAW, "raw"),
            _ => return Err(DiagError::Malformed("dump_inet called for a UNIX protocol")),
        };
        let af = match family {
            Family::Inet => consts::AF_INET,
            Family::Inet6 => consts::AF_INET6,
            Family::Unix => return Err(DiagError::Malformed("dump_inet called for AF_UNIX")),
        };
        let mut req = [0u8; inet_diag::REQ_V2_LEN];
        req[0] = af;
        req[1] = ipproto;
        req[2] = ext.bits();
        // For RAW, the pad byte is `sdiag_raw_protocol`; IPPROTO_RAW there
        // means "raw sockets of every protocol".
        req[3] = if proto == Proto::Raw {
            consts::IPPROTO_RAW
        } else {
            0
        };
        req[4..8].copy_from_slice(&states.0.to_ne_bytes());
        // The cookie field must be "no cookie" for a dump.
        let c = 8 + inet_diag::ID_COOKIE;
        req[c..c + 8].fill(0xff);
        if let ([port], Proto::Tcp | Proto::Udp | Proto::Udplite) = (local_ports, proto) {
            // One local port: the kernel compares it (idiag_sport) before
            // it reads anything else of a socket (see `SPORT`).
            req[8..10].copy_from_slice(&port.to_be_bytes());
        }
        self.dump_filtered(
            sock_diag::SOCK_DIAG_BY_FAMILY,
            &req,
            local_ports,
            what,
            &mut |msg| {
                Ok(match parse_inet_msg(msg, proto)? {
                    Some(s) => each(s),
                    None => true,
                })
            },
        )
    }

    /// Dump with request `base` and the filter attribute (local ports and
    /// the program set with [`set_bytecode`](Self::set_bytecode)). A
    /// kernel that refuses the program before the dump starts (EINVAL: an
    /// op it does not know) is asked again without it: the program only
    /// narrows what the caller filters anyway.
    fn dump_filtered(
        &mut self,
        ty: u16,
        base: &[u8],
        local_ports: &[u16],
        what: &'static str,
        each: &mut dyn FnMut(&[u8]) -> Result<bool, DiagError>,
    ) -> Result<(), DiagError> {
        let request = |me: &Self| -> Result<Vec<u8>, DiagError> {
            let mut req = base.to_vec();
            if let Some(a) = me.filter_attr(local_ports)? {
                req.extend_from_slice(&a);
            }
            Ok(req)
        };
        let req = request(self)?;
        let mut seen = false;
        let r = self.dump_typed(ty, &req, what, |msg| {
            seen = true;
            each(msg)
        });
        match r {
            Err(DiagError::Io(e))
                if !seen && self.bytecode.is_some() && e.raw_os_error() == Some(libc::EINVAL) =>
            {
                self.bytecode = None;
                let req = request(self)?;
                self.dump_typed(ty, &req, what, each)
            }
            r => r,
        }
    }

    /// Dump UNIX sockets in the given states, appending to `out`.
    pub fn dump_unix(&mut self, states: StateSet, out: &mut Vec<Socket>) -> Result<(), DiagError> {
        self.dump_unix_ext(states, Extensions::default(), out)
    }

    /// [`DiagSocket::dump_unix`], with socket memory when `ext.skmem`.
    pub fn dump_unix_ext(
        &mut self,
        states: StateSet,
        ext: Extensions,
        out: &mut Vec<Socket>,
    ) -> Result<(), DiagError> {
        self.dump_unix_each(states, ext, &mut |s| {
            out.push(s);
            true
        })
    }

    /// [`dump_unix_ext`](Self::dump_unix_ext), handing each socket to
    /// `each` as it is decoded; stops early (Ok) when `each` returns false.
    pub fn dump_unix_each(
        &mut self,
        states: StateSet,
        ext: Extensions,
        each: &mut dyn FnMut(Socket) -> bool,
    ) -> Result<(), DiagError> {
        let mut req = [0u8; unix_diag::REQ_LEN];
        req[0] = consts::AF_UNIX;
        req[4..8].copy_from_slice(&states.0.to_ne_bytes());
        let mut show = unix_diag::UDIAG_SHOW_NAME
            | unix_diag::UDIAG_SHOW_PEER
            | unix_diag::UDIAG_SHOW_RQLEN
            | unix_diag::UDIAG_SHOW_UID;
        if ext.skmem {
            show |= unix_diag::UDIAG_SHOW_MEMINFO;
        }
        req[12..16].copy_from_slice(&show.to_ne_bytes());
        req[16..24].fill(0xff);
        self.dump(&req, "unix", |msg| {
            Ok(match parse_unix_msg(msg)? {
                Some(s) => each(s),
                None => true,
            })
        })
    }

    /// Dump TCP sockets of both families in one walk of the kernel's
    /// tables (TCPDIAG_GETSOCK; see `abi::sock_diag::TCPDIAG_GETSOCK`),
    /// IPv4 rows first as ss lists them. Same rows and fields as
    /// [`dump_inet_ports`](Self::dump_inet_ports) for each family.
    pub fn dump_tcp_both(
        &mut self,
        states: StateSet,
        ext: Extensions,
        local_ports: &[u16],
        out: &mut Vec<Socket>,
    ) -> Result<(), DiagError> {
        let start = out.len();
        self.dump_tcp_both_each(states, ext, local_ports, &mut |s| {
            out.push(s);
            true
        })?;
        // The kernel interleaves the families in hash order; list IPv4
        // first (stable), as two per-family dumps would.
        out[start..].sort_by_key(|s| s.family != Family::Inet);
        Ok(())
    }

    /// The one-walk TCP dump of [`dump_tcp_both`](Self::dump_tcp_both),
    /// handing each socket to `each` in the kernel's order (the families
    /// interleaved) as it is decoded; stops early (Ok) when `each` returns
    /// false.
    pub fn dump_tcp_both_each(
        &mut self,
        states: StateSet,
        ext: Extensions,
        local_ports: &[u16],
        each: &mut dyn FnMut(Socket) -> bool,
    ) -> Result<(), DiagError> {
        let mut req = vec![0u8; sock_diag::COMPAT_REQ_LEN];
        req[0] = 0; // idiag_family: ignored by the dump (AF_UNSPEC)
        req[3] = ext.bits();
        // The cookie field must be "no cookie" for a dump.
        let c = 4 + inet_diag::ID_COOKIE;
        req[c..c + 8].fill(0xff);
        req[52..56].copy_from_slice(&states.0.to_ne_bytes());
        if let [port] = local_ports {
            // See `SPORT`: the request's id starts at byte 4.
            req[4..6].copy_from_slice(&port.to_be_bytes());
        }
        self.dump_filtered(
            sock_diag::TCPDIAG_GETSOCK,
            &req,
            local_ports,
            "tcp",
            &mut |msg| {
                Ok(match parse_inet_msg(msg, Proto::Tcp)? {
                    Some(s) => each(s),
                    None => true,
                })
            },
        )
    }

    /// Send one SOCK_DIAG_BY_FAMILY dump request and feed each reply
    /// payload to `each` until NLMSG_DONE (or until `each` returns false).
    fn dump(
        &mut self,
        payload: &[u8],
        what: &'static str,
        each: impl FnMut(&[u8]) -> Result<bool, DiagError>,
    ) -> Result<(), DiagError> {
        self.dump_typed(sock_diag::SOCK_DIAG_BY_FAMILY, payload, what, each)
    }

    /// Send one dump request of netlink type `ty` and feed each reply
    /// payload to `each` until NLMSG_DONE. When `each` returns false the
    /// rest of the dump is left unread and the kernel still holds it: this
    /// socket then refuses new dumps (EBUSY), so the caller drops it.
    fn dump_typed(
        &mut self,
        ty: u16,
        payload: &[u8],
        what: &'static str,
        mut each: impl FnMut(&[u8]) -> Result<bool, DiagError>,
    ) -> Result<(), DiagError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let len = netlink::NLMSG_HDRLEN + payload.len();
        let mut msg = Vec::with_capacity(len);
        msg.extend_from_slice(&(len as u32).to_ne_bytes());
        msg.extend_from_slice(&ty.to_ne_bytes());
        msg.extend_from_slice(&(netlink::NLM_F_REQUEST | netlink::NLM_F_DUMP).to_ne_bytes());
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(payload);
        net::sendto(
            &self.fd,
            &msg,
            SendFlags::empty(),
            &SocketAddrNetlink::new(0, 0),
        )
        .map_err(io)?;

        let mut buf = std::mem::take(&mut self.buf);
        let result = (|| loop {
            let n = match net::recv(&self.fd, &mut buf[..], RecvFlags::empty()) {
                Ok((_, n)) => n,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(io(e)),
            };
            let mut off = 0;
            while off + netlink::NLMSG_HDRLEN <= n {
                let mlen = abi::u32_ne(&buf, off) as usize;
                let mtype = abi::u16_ne(&buf, off + 4);
                let mseq = abi::u32_ne(&buf, off + 8);
                if mlen < netlink::NLMSG_HDRLEN || off + mlen > n {
                    return Err(DiagError::Malformed("netlink message length out of bounds"));
                }
                let body = &buf[off + netlink::NLMSG_HDRLEN..off + mlen];
                off += netlink::align(mlen);
                if mseq != seq {
                    continue; // a stale reply to an earlier request
                }
                match mtype {
                    // NLMSG_DONE carries the dump's final status: a kernel
                    // without a handler for the protocol (RAW without
                    // raw_diag) ends the dump at once with -ENOENT there.
                    netlink::NLMSG_DONE | netlink::NLMSG_ERROR => {
                        if body.len() < 4 {
                            if mtype == netlink::NLMSG_DONE {
                                return Ok(());
                            }
                            return Err(DiagError::Malformed("short NLMSG_ERROR"));
                        }
                        let errno = -(abi::u32_ne(body, 0) as i32);
                        if errno == 0 {
                            return Ok(());
                        }
                        if errno == libc::ENOENT || errno == libc::EOPNOTSUPP {
                            return Err(DiagError::Unsupported(what));
                        }
                        return Err(DiagError::Io(std::io::Error::from_raw_os_error(errno)));
                    }
                    // Replies carry the request's type.
                    t if t == ty && !each(body)? => return Ok(()),
                    _ => {}
                }
            }
        })();
        self.buf = buf;
        result
    }
}

/// `SPORT`: with one local port asked for, the request's
/// `id.idiag_sport` carries it too. The TCP and UDP dumps compare it to a
/// socket's port (a field on the socket's first cache line, read anyway to
/// match its namespace and state) before they run the filter program,
/// whose entry (addresses, interface, mark, cgroup) reads several more
/// lines of every socket of the host. At 40,000 sockets, a port's dump
/// takes a fraction of the time the program alone needs; the program
/// still runs on the port's own sockets, with the same answer.
///
/// Most local ports one kernel-side filter holds (the program's length
/// must fit the attribute's 16-bit length field).
pub const MAX_FILTER_PORTS: usize = 4096;

/// An INET_DIAG_REQ_BYTECODE attribute holding "local port is one of
/// `ports`". inet_diag programs have no OR: each port is a block of
/// S_EQ (with its port in the following op's `no` field) whose `yes` goes
/// to an unconditional JMP to the end (accept) and whose `no` goes to the
/// next block; the last block's `no` jumps past the end (reject). Every
/// `no` target lies on the `yes` path from the start, as the kernel's
/// audit (inet_diag_bc_audit) requires.
pub fn ports_filter_attr(ports: &[u16]) -> Result<Vec<u8>, DiagError> {
    let code = ports_filter_code(ports)?;
    let mut a = Vec::with_capacity(netlink::NLA_HDRLEN + code.len());
    a.extend_from_slice(&((netlink::NLA_HDRLEN + code.len()) as u16).to_ne_bytes());
    a.extend_from_slice(&inet_diag::INET_DIAG_REQ_BYTECODE.to_ne_bytes());
    a.extend_from_slice(&code);
    Ok(a)
}

/// The program of [`ports_filter_attr`], without the attribute header.
fn ports_filter_code(ports: &[u16]) -> Result<Vec<u8>, DiagError> {
    const BLOCK: usize = 3 * inet_diag::BC_OP_LEN;
    if ports.is_empty() || ports.len() > MAX_FILTER_PORTS {
        return Err(DiagError::Malformed("a port filter needs 1 to 4096 ports"));
    }
    let len = BLOCK * ports.len();
    let mut a = Vec::with_capacity(len);
    for (i, &port) in ports.iter().enumerate() {
        let at = i * BLOCK;
        let last = i + 1 == ports.len();
        // S_EQ: yes -> the JMP two ops on; no -> next block, or reject
        let no = if last {
            len - at + inet_diag::BC_OP_LEN
        } else {
            BLOCK
        };
        a.extend(inet_diag::bc_op(
            inet_diag::INET_DIAG_BC_S_EQ,
            2 * inet_diag::BC_OP_LEN,
            no,
        ));
        // the port operand
        a.extend(inet_diag::bc_op(0, 0, usize::from(port)));
        // JMP to the end: the kernel follows `no` for JMP
        let jmp_at = at + 2 * inet_diag::BC_OP_LEN;
        a.extend(inet_diag::bc_op(
            inet_diag::INET_DIAG_BC_JMP,
            inet_diag::BC_OP_LEN,
            len - jmp_at,
        ));
    }
    Ok(a)
}

fn io(e: Errno) -> DiagError {
    DiagError::Io(std::io::Error::from_raw_os_error(e.raw_os_error()))
}

/// Iterate netlink attributes: (type, payload).
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < netlink::NLA_HDRLEN {
            return None;
        }
        let len = abi::u16_ne(b, 0) as usize;
        let ty = abi::u16_ne(b, 2) & netlink::NLA_TYPE_MASK;
        if len < netlink::NLA_HDRLEN || len > b.len() {
            return None;
        }
        let payload = &b[netlink::NLA_HDRLEN..len];
        b = &b[netlink::align(len).min(b.len())..];
        Some((ty, payload))
    })
}

fn inet_addr(family: u8, b: &[u8]) -> IpAddr {
    if family == consts::AF_INET6 {
        let mut a = [0u8; 16];
        a.copy_from_slice(&b[..16]);
        IpAddr::V6(Ipv6Addr::from(a))
    } else {
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    }
}

/// Decode one `struct inet_diag_msg` and its attributes.
pub fn parse_inet_msg(msg: &[u8], proto: Proto) -> Result<Option<Socket>, DiagError> {
    use inet_diag::*;
    if msg.len() < MSG_LEN {
        return Err(DiagError::Malformed("short inet_diag_msg"));
    }
    let fam = msg[MSG_FAMILY];
    let family = match fam {
        consts::AF_INET => Family::Inet,
        consts::AF_INET6 => Family::Inet6,
        _ => return Ok(None),
    };
    let Some(state) = State::from_kernel(msg[MSG_STATE]) else {
        return Ok(None);
    };
    let id = MSG_ID;
    let sport = abi::u16_be(msg, id + ID_SPORT);
    let dport = abi::u16_be(msg, id + ID_DPORT);
    let src = inet_addr(fam, &msg[id + ID_SRC..id + ID_SRC + 16]);
    let dst = inet_addr(fam, &msg[id + ID_DST..id + ID_DST + 16]);
    let ifindex = abi::u32_ne(msg, id + ID_IF);
    let c0 = abi::u32_ne(msg, id + ID_COOKIE);
    let c1 = abi::u32_ne(msg, id + ID_COOKIE + 4);
    let cookie = if c0 == NOCOOKIE && c1 == NOCOOKIE {
        None
    } else {
        Some(u64::from(c0) | (u64::from(c1) << 32))
    };
    let timer = Timer {
        kind: TimerKind::from_kernel(msg[MSG_TIMER]),
        expires_ms: i64::from(abi::u32_ne(msg, MSG_EXPIRES)),
        retrans: u32::from(msg[MSG_RETRANS]),
    };
    let mut s = Socket {
        proto,
        family,
        state,
        recv_q: Some(abi::u32_ne(msg, MSG_RQUEUE)),
        send_q: Some(abi::u32_ne(msg, MSG_WQUEUE)),
        local: Endpoint::Inet {
            addr: src,
            port: sport,
        },
        peer: Endpoint::Inet {
            addr: dst,
            port: dport,
        },
        inode: u64::from(abi::u32_ne(msg, MSG_INODE)),
        uid: Some(abi::u32_ne(msg, MSG_UID)),
        cookie,
        cgroup_id: None,
        shutdown: None,
        v6only: None,
        bound_ifindex: (ifindex != 0).then_some(ifindex),
        bound_ifname: None,
        timer: Some(timer),
        netns: None,
        source: SourceKind::Netlink,
        tcp_info: None,
        skmem: None,
        cong: None,
        owners: Vec::new(),
    };
    for (ty, p) in attrs(&msg[MSG_LEN..]) {
        match ty {
            INET_DIAG_SHUTDOWN if !p.is_empty() => s.shutdown = Some(p[0]),
            INET_DIAG_SKV6ONLY if !p.is_empty() => s.v6only = Some(p[0] != 0),
            INET_DIAG_CGROUP_ID if p.len() >= 8 => s.cgroup_id = Some(abi::u64_ne(p, 0)),
            INET_DIAG_INFO if proto == Proto::Tcp => {
                s.tcp_info = super::tcp_info::decode_tcp_info(p).map(Box::new)
            }
            INET_DIAG_SKMEMINFO => s.skmem = super::tcp_info::decode_skmem(p).map(Box::new),
            INET_DIAG_CONG => s.cong = super::tcp_info::decode_cong(p).map(String::into_boxed_str),
            _ => {}
        }
    }
    Ok(Some(s))
}

/// Decode one `struct unix_diag_msg` and its attributes.
pub fn parse_unix_msg(msg: &[u8]) -> Result<Option<Socket>, DiagError> {
    use unix_diag::*;
    if msg.len() < MSG_LEN {
        return Err(DiagError::Malformed("short unix_diag_msg"));
    }
    let proto = match msg[MSG_TYPE] {
        consts::SOCK_STREAM => Proto::UnixStream,
        consts::SOCK_DGRAM => Proto::UnixDgram,
        consts::SOCK_SEQPACKET => Proto::UnixSeqpacket,
        _ => return Ok(None),
    };
    let Some(state) = State::from_kernel(msg[MSG_STATE]) else {
        return Ok(None);
    };
    let inode = u64::from(abi::u32_ne(msg, MSG_INO));
    let c0 = abi::u32_ne(msg, MSG_COOKIE);
    let c1 = abi::u32_ne(msg, MSG_COOKIE + 4);
    let mut path = None;
    let mut peer = 0u64;
    let mut rq = None;
    let mut wq = None;
    let mut uid = None;
    let mut shutdown = None;
    let mut skmem = None;
    for (ty, p) in attrs(&msg[MSG_LEN..]) {
        match ty {
            UNIX_DIAG_NAME => path = Some(unix_name(p)),
            // The same u32 array as INET_DIAG_SKMEMINFO (sk_get_meminfo).
            UNIX_DIAG_MEMINFO => skmem = super::tcp_info::decode_skmem(p).map(Box::new),
            UNIX_DIAG_PEER if p.len() >= 4 => peer = u64::from(abi::u32_ne(p, 0)),
            UNIX_DIAG_RQLEN if p.len() >= 8 => {
                rq = Some(abi::u32_ne(p, 0));
                wq = Some(abi::u32_ne(p, 4));
            }
            UNIX_DIAG_UID if p.len() >= 4 => uid = Some(abi::u32_ne(p, 0)),
            UNIX_DIAG_SHUTDOWN if !p.is_empty() => shutdown = Some(p[0]),
            _ => {}
        }
    }
    Ok(Some(Socket {
        proto,
        family: Family::Unix,
        state,
        recv_q: rq,
        send_q: wq,
        local: Endpoint::Unix { path, inode },
        peer: Endpoint::Unix {
            path: None,
            inode: peer,
        },
        inode,
        uid,
        cookie: Some(u64::from(c0) | (u64::from(c1) << 32)),
        cgroup_id: None,
        shutdown,
        v6only: None,
        bound_ifindex: None,
        bound_ifname: None,
        timer: None,
        netns: None,
        source: SourceKind::Netlink,
        tcp_info: None,
        skmem,
        cong: None,
        owners: Vec::new(),
    }))
}

/// A UNIX socket name as the kernel gives it: a path, or an abstract name
/// starting with NUL. Abstract names may hold further NULs anywhere; every
/// one is shown as `@`, as ss and /proc/net/unix do, so that both sources
/// give one socket one name.
fn unix_name(p: &[u8]) -> String {
    if p.first() == Some(&0) {
        let at: Vec<u8> = p.iter().map(|&c| if c == 0 { b'@' } else { c }).collect();
        String::from_utf8_lossy(&at).into_owned()
    } else {
        let end = p.iter().position(|&c| c == 0).unwrap_or(p.len());
        String::from_utf8_lossy(&p[..end]).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inet_msg(state: u8, fam: u8) -> Vec<u8> {
        let mut m = vec![0u8; inet_diag::MSG_LEN];
        m[0] = fam;
        m[1] = state;
        m[2] = 1;
        m[3] = 2;
        let id = inet_diag::MSG_ID;
        m[id..id + 2].copy_from_slice(&8080u16.to_be_bytes());
        m[id + 2..id + 4].copy_from_slice(&443u16.to_be_bytes());
        m[id + 4..id + 8].copy_from_slice(&[127, 0, 0, 1]);
        m[id + 20..id + 24].copy_from_slice(&[10, 1, 2, 3]);
        m[id + 40..id + 44].copy_from_slice(&7u32.to_ne_bytes());
        m[id + 44..id + 48].copy_from_slice(&1u32.to_ne_bytes());
        m[inet_diag::MSG_EXPIRES..][..4].copy_from_slice(&200u32.to_ne_bytes());
        m[inet_diag::MSG_RQUEUE..][..4].copy_from_slice(&5u32.to_ne_bytes());
        m[inet_diag::MSG_WQUEUE..][..4].copy_from_slice(&7u32.to_ne_bytes());
        m[inet_diag::MSG_UID..][..4].copy_from_slice(&1000u32.to_ne_bytes());
        m[inet_diag::MSG_INODE..][..4].copy_from_slice(&4242u32.to_ne_bytes());
        m
    }

    fn attr(ty: u16, p: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + p.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&ty.to_ne_bytes());
        a.extend_from_slice(p);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    #[test]
    fn decodes_inet_msg_fields_and_attrs() {
        let mut m = inet_msg(10, consts::AF_INET);
        m.extend(attr(inet_diag::INET_DIAG_SHUTDOWN, &[2]));
        m.extend(attr(inet_diag::INET_DIAG_CGROUP_ID, &99u64.to_ne_bytes()));
        let s = parse_inet_msg(&m, Proto::Tcp).unwrap().unwrap();
        assert_eq!(s.state, State::Listen);
        assert_eq!(
            s.local,
            Endpoint::Inet {
                addr: "127.0.0.1".parse().unwrap(),
                port: 8080
            }
        );
        assert_eq!(
            s.peer,
            Endpoint::Inet {
                addr: "10.1.2.3".parse().unwrap(),
                port: 443
            }
        );
        assert_eq!((s.recv_q, s.send_q), (Some(5), Some(7)));
        assert_eq!(s.uid, Some(1000));
        assert_eq!(s.inode, 4242);
        assert_eq!(s.cookie, Some(7 | (1 << 32)));
        assert_eq!(s.shutdown, Some(2));
        assert_eq!(s.cgroup_id, Some(99));
        assert_eq!(
            s.timer,
            Some(Timer {
                kind: TimerKind::On,
                expires_ms: 200,
                retrans: 2
            })
        );
    }

    #[test]
    fn short_or_odd_messages_do_not_panic() {
        assert!(parse_inet_msg(&[0u8; 10], Proto::Tcp).is_err());
        assert!(parse_unix_msg(&[0u8; 3]).is_err());
        // unknown state is skipped, not invented
        assert!(
            parse_inet_msg(&inet_msg(99, consts::AF_INET), Proto::Tcp)
                .unwrap()
                .is_none()
        );
        // truncated attribute is ignored
        let mut m = inet_msg(1, consts::AF_INET6);
        m.extend_from_slice(&[40, 0, 8, 0, 1]);
        let s = parse_inet_msg(&m, Proto::Tcp).unwrap().unwrap();
        assert_eq!(s.family, Family::Inet6);
        assert_eq!(s.shutdown, None);
    }

    #[test]
    fn unix_names() {
        assert_eq!(unix_name(b"\0abstract"), "@abstract");
        // NULs inside an abstract name are shown as @ too (ss, /proc).
        assert_eq!(unix_name(b"\0a\0b\0"), "@a@b@");
        assert_eq!(unix_name(b"\0"), "@");
        assert_eq!(unix_name(b"\0x\ny"), "@x\ny");
        assert_eq!(unix_name(b"/run/x.sock"), "/run/x.sock");
        let mut m = vec![0u8; unix_diag::MSG_LEN];
        m[1] = consts::SOCK_STREAM;
        m[2] = 10;
        m[4..8].copy_from_slice(&55u32.to_ne_bytes());
        m.extend(attr(unix_diag::UNIX_DIAG_NAME, b"/tmp/s"));
        m.extend(attr(unix_diag::UNIX_DIAG_PEER, &56u32.to_ne_bytes()));
        let mut rq = 3u32.to_ne_bytes().to_vec();
        rq.extend(128u32.to_ne_bytes());
        m.extend(attr(unix_diag::UNIX_DIAG_RQLEN, &rq));
        let s = parse_unix_msg(&m).unwrap().unwrap();
        assert_eq!(s.proto, Proto::UnixStream);
        assert_eq!(s.state, State::Listen);
        assert_eq!(
            s.local,
            Endpoint::Unix {
                path: Some("/tmp/s".into()),
                inode: 55
            }
        );
        assert_eq!(
            s.peer,
            Endpoint::Unix {
                path: None,
                inode: 56
            }
        );
        assert_eq!((s.recv_q, s.send_q), (Some(3), Some(128)));
    }

    #[test]
    fn one_walk_for_both_families_gives_the_per_family_rows() {
        // Sockets of both families, held while the three dumps run.
        let l4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let l6 = std::net::TcpListener::bind("[::1]:0").ok();
        let c4 = std::net::TcpStream::connect(l4.local_addr().unwrap()).unwrap();
        let c6 = l6
            .as_ref()
            .and_then(|l| std::net::TcpStream::connect(l.local_addr().unwrap()).ok());
        let mine: Vec<u16> = [Some(l4.local_addr().unwrap().port())]
            .into_iter()
            .chain([l6.as_ref().map(|l| l.local_addr().unwrap().port())])
            .flatten()
            .collect();
        let mut d = DiagSocket::open().unwrap();
        let (states, ext) = (StateSet::ALL, Extensions::default());
        let key = |s: &Socket| (s.family, s.state, s.local.clone(), s.peer.clone(), s.inode);
        for ports in [&mine[..], &[][..]] {
            let mut both = Vec::new();
            d.dump_tcp_both(states, ext, ports, &mut both).unwrap();
            let mut each = Vec::new();
            for fam in [Family::Inet, Family::Inet6] {
                d.dump_inet_ports(Proto::Tcp, fam, states, ext, ports, &mut each)
                    .unwrap();
            }
            let ours = |v: &[Socket]| {
                let mut k: Vec<_> = v
                    .iter()
                    .filter(|s| s.local.port().is_some_and(|p| mine.contains(&p)))
                    .map(key)
                    .collect();
                k.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
                k
            };
            assert_eq!(ours(&both), ours(&each), "ports {ports:?}");
            assert!(ours(&both).len() >= 2, "{:?}", ours(&both));
            // IPv4 rows first, as the per-family dumps list them.
            let first_v6 = both.iter().position(|s| s.family == Family::Inet6);
            if let Some(i) = first_v6 {
                assert!(both[i..].iter().all(|s| s.family == Family::Inet6));
            }
        }
        drop((c4, c6));
    }

    #[test]
    fn a_program_the_kernel_refuses_is_dropped_and_the_dump_still_runs() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut d = DiagSocket::open().unwrap();
        // Op 99 is no inet_diag op: the kernel's audit refuses the program.
        d.set_bytecode(Some(vec![99, 4, 8, 0]));
        for both in [true, false] {
            let mut out = Vec::new();
            let r = if both {
                d.dump_tcp_both(StateSet::ALL, Extensions::default(), &[port], &mut out)
            } else {
                d.dump_inet_ports(
                    Proto::Tcp,
                    Family::Inet,
                    StateSet::ALL,
                    Extensions::default(),
                    &[port],
                    &mut out,
                )
            };
            r.unwrap();
            assert_eq!(out.len(), 1, "both: {both}: {out:?}");
            assert_eq!(out[0].local.port(), Some(port));
            d.set_bytecode(Some(vec![99, 4, 8, 0]));
        }
    }

    #[test]
    fn live_dump_of_own_listener() {
        // A real listener in this process, found by its inode.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut d = DiagSocket::open().unwrap();
        let mut out = Vec::new();
        d.dump_inet(
            Proto::Tcp,
            Family::Inet,
            StateSet::of(&[State::Listen]),
            Extensions::default(),
            &mut out,
        )
        .unwrap();
        let mine: Vec<_> = out
            .iter()
            .filter(|s| s.local.port() == Some(port))
            .collect();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].state, State::Listen);
        // std's TcpListener uses a backlog of 128 (clamped by somaxconn).
        assert!(mine[0].send_q.unwrap() > 0);
        assert!(out.iter().all(|s| s.state == State::Listen));

        // The kernel-side port filter returns exactly that listener.
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut only = Vec::new();
        d.dump_inet_port(
            Proto::Tcp,
            Family::Inet,
            StateSet::ALL,
            Extensions::default(),
            Some(port),
            &mut only,
        )
        .unwrap();
        assert_eq!(only.len(), 1, "{only:?}");
        assert_eq!(only[0].local.port(), Some(port));
        assert_ne!(other.local_addr().unwrap().port(), port);

        // Several ports (the OR of blocks), in any order, with ports that
        // match nothing between them; a third listener stays out.
        let third = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let other_port = other.local_addr().unwrap().port();
        let third_port = third.local_addr().unwrap().port();
        let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let unused_port = unused.local_addr().unwrap().port();
        drop(unused);
        let mut some = Vec::new();
        d.dump_inet_ports(
            Proto::Tcp,
            Family::Inet,
            StateSet::ALL,
            Extensions::default(),
            &[other_port, unused_port, port],
            &mut some,
        )
        .unwrap();
        let mut got: Vec<u16> = some.iter().filter_map(|s| s.local.port()).collect();
        got.sort_unstable();
        let mut want = vec![port, other_port];
        want.sort_unstable();
        assert_eq!(got, want, "{some:?}");
        assert!(!got.contains(&third_port));
        assert!(ports_filter_attr(&[]).is_err());
    }

    #[test]
    fn port_filter_program_layout() {
        // Two ports: [S_EQ yes 8 no 12][0 0 port][JMP yes 4 no 16]
        //            [S_EQ yes 8 no 16][0 0 port][JMP yes 4 no 4]
        let a = ports_filter_attr(&[80, 443]).unwrap();
        assert_eq!(abi::u16_ne(&a, 0) as usize, a.len());
        let ops: Vec<(u8, u8, u16)> = a[4..]
            .chunks(4)
            .map(|o| (o[0], o[1], u16::from_ne_bytes([o[2], o[3]])))
            .collect();
        assert_eq!(
            ops,
            vec![
                (inet_diag::INET_DIAG_BC_S_EQ, 8, 12),
                (0, 0, 80),
                (inet_diag::INET_DIAG_BC_JMP, 4, 16),
                (inet_diag::INET_DIAG_BC_S_EQ, 8, 16),
                (0, 0, 443),
                (inet_diag::INET_DIAG_BC_JMP, 4, 4),
            ]
        );
    }
}
