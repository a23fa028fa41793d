//! One line per packet, in the form tcpdump prints with `-nn`:
//!
//! ```text
//! 12:00:00.000001 IP 127.0.0.1.43210 > 127.0.0.1.8080: Flags [S], seq 0, win 65495, options [mss 65495,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0
//! ```
//!
//! Sequence and acknowledgement numbers (and SACK edges) are relative to the
//! ISN of each direction, as Wireshark shows them (the SYN is `seq 0`);
//! `absolute` prints the raw numbers. After tcpdump's fields come
//! Wireshark's analysis labels (`[TCP Retransmission]`, `[TCP Dup ACK 5#1]`)
//! and, on live captures, the processes at each end:
//! `(curl pid 77 > nginx pid 12)`.
//!
//! The time is local time, microseconds, as tcpdump prints it. Formatting
//! writes bytes into a reused buffer: this is the hot path of
//! `sockscope capture -r`.

use super::{Procs, push_u64};
use crate::analysis::{Info, TcpInfo, flags};
use crate::decode::{Icmp, Net, Packet, TcpOption, Transport, TunnelKind, tcpflag as tf};
use std::io::{self, Write};
use std::net::Ipv4Addr;

/// Options of the line form.
#[derive(Clone, Copy, Debug, Default)]
pub struct LineOptions {
    /// Raw sequence numbers instead of relative ones (tcpdump -S).
    pub absolute: bool,
    /// Print the frame number first.
    pub numbered: bool,
}

/// Writes packet lines; keeps a one-second cache of the local time.
pub struct LineWriter {
    opts: LineOptions,
    buf: Vec<u8>,
    cached_sec: i64,
    hms: [u8; 8],
}

impl LineWriter {
    pub fn new(opts: LineOptions) -> LineWriter {
        LineWriter {
            opts,
            buf: Vec::with_capacity(512),
            cached_sec: i64::MIN,
            hms: *b"00:00:00",
        }
    }

    fn time(&mut self, ts_ns: u64) {
        let sec = (ts_ns / 1_000_000_000) as i64;
        if sec != self.cached_sec {
            self.cached_sec = sec;
            let (h, m, s) = local_hms(sec);
            self.hms = [
                b'0' + h / 10,
                b'0' + h % 10,
                b':',
                b'0' + m / 10,
                b'0' + m % 10,
                b':',
                b'0' + s / 10,
                b'0' + s % 10,
            ];
        }
        self.buf.extend_from_slice(&self.hms);
        self.buf.push(b'.');
        let us = (ts_ns % 1_000_000_000) / 1000;
        let mut d = [b'0'; 6];
        let mut v = us;
        for i in (0..6).rev() {
            d[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        self.buf.extend_from_slice(&d);
    }

    /// Format one packet line (with a trailing newline) into `out`.
    pub fn write<W: Write>(
        &mut self,
        out: &mut W,
        frame: u64,
        p: &Packet,
        info: &Info,
        procs: Option<&Procs>,
    ) -> io::Result<()> {
        self.buf.clear();
        if self.opts.numbered {
            push_u64(&mut self.buf, frame);
            self.buf.push(b' ');
        }
        self.time(p.ts_ns);
        self.buf.push(b' ');
        if let Some(pt) = p.pkttype
            && matches!(
                p.link,
                crate::decode::linktype::LINUX_SLL | crate::decode::linktype::LINUX_SLL2
            )
        {
            self.buf.extend_from_slice(pt.label().as_bytes());
            self.buf.push(b' ');
        }
        self.body(p, info);
        if let Some(m) = &p.malformed {
            let _ = write!(self.buf, " [malformed: {m}]");
        }
        if let Some(pr) = procs
            && !pr.is_empty()
        {
            self.buf.extend_from_slice(b" (");
            self.buf.extend_from_slice(pr.describe().as_bytes());
            self.buf.push(b')');
        }
        self.buf.push(b'\n');
        out.write_all(&self.buf)
    }

    fn ip(&mut self, a: std::net::IpAddr) {
        match a {
            std::net::IpAddr::V4(v) => push_v4(&mut self.buf, v),
            std::net::IpAddr::V6(v) => {
                let _ = write!(self.buf, "{v}");
            }
        }
    }

    fn body(&mut self, p: &Packet, info: &Info) {
        if let Some(t) = &p.tunnel {
            self.buf
                .extend_from_slice(if t.src.is_ipv6() { b"IP6 " } else { b"IP " });
            let ports = !matches!(
                t.kind,
                TunnelKind::Gre | TunnelKind::Erspan | TunnelKind::Ipip
            );
            self.ip(t.src);
            if ports {
                self.buf.push(b'.');
                push_u64(&mut self.buf, t.sport as u64);
            }
            self.buf.extend_from_slice(b" > ");
            self.ip(t.dst);
            if ports {
                self.buf.push(b'.');
                push_u64(&mut self.buf, t.dport as u64);
            }
            // tcpdump's words; GRE without a key and ERSPAN type I carry
            // no identifier, so none is printed.
            self.buf.extend_from_slice(match t.kind {
                TunnelKind::Vxlan => b": VXLAN",
                TunnelKind::Geneve => b": Geneve",
                TunnelKind::Gre => b": GRE",
                TunnelKind::Erspan => b": ERSPAN",
                TunnelKind::GtpU => b": GTP-U",
                TunnelKind::Ipip => b": IP-in-IP",
                TunnelKind::Ayiya => b": AYIYA",
            });
            if let Some(id) = t.vni {
                self.buf.extend_from_slice(match t.kind {
                    TunnelKind::Vxlan | TunnelKind::Geneve => b" vni ",
                    TunnelKind::Gre => b" key ",
                    TunnelKind::Erspan => b" session ",
                    TunnelKind::GtpU => b" teid ",
                    TunnelKind::Ipip | TunnelKind::Ayiya => b" ",
                });
                push_u64(&mut self.buf, u64::from(id));
            }
            self.buf.extend_from_slice(b": ");
        }
        let (src, dst, v6) = match &p.net {
            Net::Ipv4(h) => (h.src.into(), h.dst.into(), false),
            Net::Ipv6(h) => (h.src.into(), h.dst.into(), true),
            Net::Arp(a) => {
                let b = &mut self.buf;
                match a.op {
                    1 => {
                        b.extend_from_slice(b"ARP, Request who-has ");
                        push_v4(b, a.target_ip);
                        b.extend_from_slice(b" tell ");
                        push_v4(b, a.sender_ip);
                    }
                    2 => {
                        b.extend_from_slice(b"ARP, Reply ");
                        push_v4(b, a.sender_ip);
                        b.extend_from_slice(b" is-at ");
                        let m = a.sender_mac;
                        let _ = write!(
                            b,
                            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                            m[0], m[1], m[2], m[3], m[4], m[5]
                        );
                    }
                    op => {
                        let _ = write!(b, "ARP, op {op}");
                    }
                }
                b.extend_from_slice(b", length 28");
                return;
            }
            Net::None => {
                let _ = if let Some(l) = p.llc {
                    // 802.3 gives its own length; FDDI and 802.11 do not.
                    let (what, len) = match p.link {
                        crate::decode::linktype::ETHERNET => ("802.3", u32::from(l.length)),
                        link => (crate::decode::linktype::name(link), p.wire_len),
                    };
                    write!(
                        self.buf,
                        "{what} LLC, dsap 0x{:02x}, ssap 0x{:02x}, ctrl 0x{:02x}, length {len}",
                        l.dsap, l.ssap, l.control
                    )
                } else if p.ethertype != 0 {
                    write!(
                        self.buf,
                        "ethertype 0x{:04x}, length {}",
                        p.ethertype, p.wire_len
                    )
                } else {
                    match crate::decode::linktype::name(p.link) {
                        "unknown" => write!(self.buf, "link type {}", p.link),
                        name => write!(self.buf, "{name}"),
                    }
                    .and_then(|_| write!(self.buf, ", length {}", p.wire_len))
                };
                return;
            }
        };
        self.buf
            .extend_from_slice(if v6 { b"IP6 " } else { b"IP " });
        match &p.transport {
            Transport::Tcp(t) => {
                self.ip(src);
                self.buf.push(b'.');
                push_u64(&mut self.buf, t.sport as u64);
                self.buf.extend_from_slice(b" > ");
                self.ip(dst);
                self.buf.push(b'.');
                push_u64(&mut self.buf, t.dport as u64);
                self.buf.extend_from_slice(b": Flags [");
                flags_str(&mut self.buf, t.flags);
                self.buf.push(b']');
                let ti = match info {
                    Info::Tcp(ti) => Some(ti),
                    _ => None,
                };
                let (seq, ack, sack_base) = match (self.opts.absolute, ti) {
                    (false, Some(ti)) => (ti.seq_rel, ti.ack_rel, ti.ack_base),
                    _ => (t.seq, t.ack, 0),
                };
                let len = t.payload_len;
                let b = &mut self.buf;
                if len > 0 || t.flags & (tf::SYN | tf::FIN | tf::RST) != 0 {
                    b.extend_from_slice(b", seq ");
                    push_u64(b, seq as u64);
                    if len > 0 {
                        b.push(b':');
                        push_u64(b, seq.wrapping_add(len) as u64);
                    }
                }
                if t.has(tf::ACK) {
                    b.extend_from_slice(b", ack ");
                    push_u64(b, ack as u64);
                }
                b.extend_from_slice(b", win ");
                push_u64(b, t.window as u64);
                if t.has(tf::URG) {
                    b.extend_from_slice(b", urg ");
                    push_u64(b, t.urgent as u64);
                }
                if !t.options.is_empty() {
                    b.extend_from_slice(b", options [");
                    let mut first = true;
                    for o in t.options.iter() {
                        if !first {
                            b.push(b',');
                        }
                        first = false;
                        option_str(b, &o, sack_base);
                    }
                    b.push(b']');
                }
                b.extend_from_slice(b", length ");
                push_u64(b, len as u64);
                if let Some(ti) = ti {
                    analysis_labels(b, ti);
                }
            }
            Transport::Udp(u) => {
                self.ip(src);
                self.buf.push(b'.');
                push_u64(&mut self.buf, u.sport as u64);
                self.buf.extend_from_slice(b" > ");
                self.ip(dst);
                self.buf.push(b'.');
                push_u64(&mut self.buf, u.dport as u64);
                self.buf.extend_from_slice(b": UDP, length ");
                push_u64(&mut self.buf, u.payload_len as u64);
            }
            Transport::Icmp(i) => {
                self.ip(src);
                self.buf.extend_from_slice(b" > ");
                self.ip(dst);
                self.buf.extend_from_slice(b": ");
                icmp_str(&mut self.buf, i);
            }
            Transport::Fragment { proto, len } => {
                self.ip(src);
                self.buf.extend_from_slice(b" > ");
                self.ip(dst);
                let _ = write!(self.buf, ": ip-proto-{proto} {len} (fragment)");
            }
            Transport::Other { proto, len } => {
                self.ip(src);
                self.buf.extend_from_slice(b" > ");
                self.ip(dst);
                if *proto == crate::decode::ipproto::IPCOMP {
                    // Not decompressed: what it carries is not decoded.
                    let _ = write!(self.buf, ": IPComp {len} (compressed)");
                } else {
                    let _ = write!(self.buf, ": ip-proto-{proto} {len}");
                }
            }
            Transport::None => {
                self.ip(src);
                self.buf.extend_from_slice(b" > ");
                self.ip(dst);
                self.buf.push(b':');
            }
        }
    }
}

/// "0".."255": length and digits of each octet value.
const OCTETS: [(u8, [u8; 3]); 256] = {
    let mut t = [(0u8, [0u8; 3]); 256];
    let mut i = 0;
    while i < 256 {
        let (h, d, u) = ((i / 100) as u8, ((i / 10) % 10) as u8, (i % 10) as u8);
        t[i] = if i >= 100 {
            (3, [b'0' + h, b'0' + d, b'0' + u])
        } else if i >= 10 {
            (2, [b'0' + d, b'0' + u, 0])
        } else {
            (1, [b'0' + u, 0, 0])
        };
        i += 1;
    }
    t
};

fn push_v4(b: &mut Vec<u8>, a: Ipv4Addr) {
    let mut tmp = [0u8; 15];
    let mut n = 0;
    for (i, x) in a.octets().into_iter().enumerate() {
        if i > 0 {
            tmp[n] = b'.';
            n += 1;
        }
        let (len, d) = OCTETS[x as usize];
        tmp[n..n + 3].copy_from_slice(&d);
        n += len as usize;
    }
    // A copy of known size, then the excess cut off (see push_u64).
    let start = b.len();
    b.extend_from_slice(&tmp);
    b.truncate(start + n);
}

/// tcpdump's flag letters, in its order: F S R P . U E W (e for AE).
pub fn flags_str(b: &mut Vec<u8>, f: u16) {
    let start = b.len();
    for (bit, c) in [
        (tf::FIN, b'F'),
        (tf::SYN, b'S'),
        (tf::RST, b'R'),
        (tf::PSH, b'P'),
        (tf::ACK, b'.'),
        (tf::URG, b'U'),
        (tf::ECE, b'E'),
        (tf::CWR, b'W'),
        (tf::AE, b'e'),
    ] {
        if f & bit != 0 {
            b.push(c);
        }
    }
    if b.len() == start {
        b.extend_from_slice(b"none");
    }
}

fn option_str(b: &mut Vec<u8>, o: &TcpOption, sack_base: u32) {
    match *o {
        TcpOption::Eol => b.extend_from_slice(b"eol"),
        TcpOption::Nop => b.extend_from_slice(b"nop"),
        TcpOption::Mss(m) => {
            b.extend_from_slice(b"mss ");
            push_u64(b, m as u64);
        }
        TcpOption::WindowScale(w) => {
            b.extend_from_slice(b"wscale ");
            push_u64(b, w as u64);
        }
        TcpOption::SackPermitted => b.extend_from_slice(b"sackOK"),
        TcpOption::Sack { blocks, count } => {
            b.extend_from_slice(b"sack ");
            push_u64(b, count as u64);
            b.push(b' ');
            for (l, r) in blocks.iter().take(count as usize) {
                b.push(b'{');
                push_u64(b, l.wrapping_sub(sack_base) as u64);
                b.push(b':');
                push_u64(b, r.wrapping_sub(sack_base) as u64);
                b.push(b'}');
            }
        }
        TcpOption::Timestamps { val, ecr } => {
            b.extend_from_slice(b"TS val ");
            push_u64(b, val as u64);
            b.extend_from_slice(b" ecr ");
            push_u64(b, ecr as u64);
        }
        TcpOption::Unknown { kind, .. } => {
            let name = match kind {
                19 => "md5",
                28 => "uto",
                29 => "tcp-ao",
                30 => "mptcp",
                34 => "tfo",
                253 | 254 => "exp",
                _ => "",
            };
            if name.is_empty() {
                b.extend_from_slice(b"unknown-");
                push_u64(b, kind as u64);
            } else {
                b.extend_from_slice(name.as_bytes());
            }
        }
        TcpOption::Bad { .. } => b.extend_from_slice(b"[bad opt]"),
    }
}

/// Wireshark's info-column labels for a packet's analysis flags.
pub fn analysis_labels(b: &mut Vec<u8>, ti: &TcpInfo) {
    if ti.flags == 0 {
        return;
    }
    for (bit, _, label) in flags::ALL {
        if ti.flags & bit == 0 {
            continue;
        }
        b.extend_from_slice(b" [");
        b.extend_from_slice(label.as_bytes());
        if bit == flags::DUPLICATE_ACK {
            b.push(b' ');
            push_u64(b, ti.dup_ack_frame);
            b.push(b'#');
            push_u64(b, ti.dup_ack_num as u64);
        }
        b.push(b']');
    }
}

fn icmp_str(b: &mut Vec<u8>, i: &Icmp) {
    let total = i.payload_len + 8;
    let name = match (i.v6, i.kind) {
        (false, 8) | (true, 128) => "echo request",
        (false, 0) | (true, 129) => "echo reply",
        (false, 3) | (true, 1) => "destination unreachable",
        (false, 11) | (true, 3) => "time exceeded",
        (true, 2) => "packet too big",
        (true, 133) => "router solicitation",
        (true, 134) => "router advertisement",
        (true, 135) => "neighbor solicitation",
        (true, 136) => "neighbor advertisement",
        _ => "",
    };
    b.extend_from_slice(if i.v6 { b"ICMP6, " } else { b"ICMP " });
    if name.is_empty() {
        let _ = write!(b, "type {} code {}", i.kind, i.code);
    } else {
        b.extend_from_slice(name.as_bytes());
        if name.starts_with("echo") {
            let _ = write!(b, ", id {}, seq {}", i.id, i.seq);
        } else if i.code != 0 {
            let _ = write!(b, " code {}", i.code);
        }
    }
    b.extend_from_slice(b", length ");
    push_u64(b, total as u64);
}

/// Local wall-clock hours, minutes and seconds of a Unix time.
#[allow(unsafe_code)]
fn local_hms(sec: i64) -> (u8, u8, u8) {
    let t: libc::time_t = sec as libc::time_t;
    // SAFETY: localtime_r only writes the tm we hand it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if ok {
        (tm.tm_hour as u8, tm.tm_min as u8, tm.tm_sec as u8)
    } else {
        let s = sec.rem_euclid(86_400);
        ((s / 3600) as u8, (s / 60 % 60) as u8, (s % 60) as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Analyzer;
    use crate::decode::{decode, linktype};

    #[test]
    fn push_v4_prints_every_octet() {
        for o in 0..=255u8 {
            for a in [
                Ipv4Addr::new(o, o, o, o),
                Ipv4Addr::new(o, 0, 255, o / 3),
                Ipv4Addr::new(1, o, 10, 100),
            ] {
                let mut b = b"x".to_vec();
                push_v4(&mut b, a);
                assert_eq!(String::from_utf8(b).unwrap(), format!("x{a}"));
            }
        }
    }

    #[test]
    #[allow(unsafe_code)]
    fn syn_line_matches_tcpdump_form() {
        // SAFETY: tests in this process agree on UTC.
        unsafe { std::env::set_var("TZ", "UTC") };
        let f = crate::decode::tests_support::syn_frame();
        let p = decode(linktype::ETHERNET, &f, 43_200_000_001_000, f.len() as u32);
        let mut an = Analyzer::new();
        let (info, _) = an.process(1, &p);
        let mut w = LineWriter::new(LineOptions::default());
        let mut out = Vec::new();
        w.write(&mut out, 1, &p, &info, None).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "12:00:00.000001 IP 127.0.0.1.43210 > 127.0.0.2.8080: Flags [S], seq 0, win 65495, \
             options [mss 65495,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0\n"
        );
        let mut w = LineWriter::new(LineOptions {
            absolute: true,
            numbered: true,
        });
        let mut out = Vec::new();
        let pr = Procs {
            src: Some(crate::procs::Label {
                pid: 7,
                comm: "curl".into(),
            }),
            dst: None,
        };
        w.write(&mut out, 1, &p, &info, Some(&pr)).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("1 12:00:00.000001 IP"), "{s}");
        assert!(s.contains("Flags [S], seq 1000, win"), "{s}");
        assert!(s.ends_with("length 0 (curl pid 7 > ?)\n"), "{s}");
        // A process name with terminal controls is escaped.
        let pr = Procs {
            src: Some(crate::procs::Label {
                pid: 8,
                comm: "evil\x1b]0;x\x07\u{202e}".into(),
            }),
            dst: None,
        };
        let mut out = Vec::new();
        w.write(&mut out, 2, &p, &info, Some(&pr)).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(!s.contains(['\x1b', '\x07', '\u{202e}']), "{s:?}");
        assert!(s.contains("(evil\\e]0;x\\x07\\u{202e} pid 8"), "{s:?}");
    }

    #[test]
    fn flag_letters() {
        let mut b = Vec::new();
        flags_str(&mut b, tf::SYN | tf::ACK | tf::ECE | tf::CWR);
        assert_eq!(b, b"S.EW");
        b.clear();
        flags_str(&mut b, 0);
        assert_eq!(b, b"none");
    }
}
