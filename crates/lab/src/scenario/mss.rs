//! `mss`: MTU, MSS and segmentation between two hosts.
//!
//! Two network namespaces joined by a veth pair with MTU 1500 and
//! documentation addresses (192.0.2.1/24 here, 192.0.2.2/24 in the second
//! namespace, RFC 5737): a real Ethernet link, unlike loopback whose MTU is
//! 65536. Each SYN carries the MSS option, MTU - 20 (IP) - 20 (TCP) = 1460.
//! A 3000-byte write then leaves in segments of at most the MSS.
//!
//! Two things the textbook picture leaves out, both shown here:
//! - TSO/GSO: a packet tap (tcpdump, or this capture) on a Linux device sees
//!   what the stack hands the device. A veth offers TCP segmentation
//!   offload, so the stack hands it one 3000-byte super-segment and nothing
//!   ever cuts it (the peer takes it whole). With TSO off (the ETHTOOL_STSO
//!   request `ethtool -K DEV tso off` makes) the stack segments in software
//!   before the tap, and the tap sees the real segments.
//! - TCP timestamps (on by default) take 12 bytes of options in every
//!   segment, so the payload per segment is 1448, not 1460 (tcp_info
//!   snd_mss). With net.ipv4.tcp_timestamps=0 it is the textbook 1460.

use super::*;
use crate::netns::{self, Peer};
use crate::wire::{self, Wire};
use sockscope_capture::decode::tcpflag;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

const HERE: &str = "sockscope0";
const THERE: &str = "sockscope1";
const THERE_IP: [u8; 4] = [192, 0, 2, 2];
const PORT: u16 = 5050;
const REQUEST: usize = 3000;

/// Run `ip ARGS` in the calling thread's namespace.
fn ip(args: &[&str]) -> Result<(), LabError> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                LabError::MissingTool {
                    tool: "ip",
                    package: "iproute2",
                    why: "it creates the veth pair between the two namespaces",
                }
            } else {
                LabError::Sys {
                    what: "running ip".into(),
                    source: e,
                }
            }
        })?;
    if !out.status.success() {
        return Err(LabError::Other(format!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// What one connection showed: its segments on the wire, the client's
/// port, and the client's tcp_info snd_mss once everything was acknowledged.
struct Round {
    segs: Vec<wire::Seg>,
    cport: u16,
    snd_mss: Option<u32>,
}

/// One connection: connect, send REQUEST bytes in one write, wait until
/// they are acknowledged.
fn round(cx: &mut Ctx<'_>, w: &mut Wire, l: &OwnedFd) -> Result<Round, LabError> {
    let c = net::socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(sys("socket"))?;
    let server = SocketAddr::from((Ipv4Addr::from(THERE_IP), PORT));
    net::connect(&c, &server).map_err(sys(format!("connect({server})")))?;
    let a = accept(l)?;
    let cport = local_port(&c);
    let n = net::send(&c, &[b'p'; REQUEST], net::SendFlags::NOSIGNAL).map_err(sys("send"))?;
    cx.note(format!(
        "client 192.0.2.1:{cport} -> {server}: one send() of {REQUEST} bytes returned {n}"
    ));
    let socks = wait_until(2000, || {
        let s = crate::observe::tcp_info()?;
        let done = by_ports(&s, cport, PORT).is_some_and(|s| s.send_q == Some(0));
        Ok((s, done))
    })?;
    let snd_mss = by_ports(&socks, cport, PORT)
        .and_then(|s| s.tcp_info.as_ref())
        .map(|i| i.snd_mss);
    let segs = wire::conn(&w.take(120)?, cport, PORT);
    for s in segs.iter().filter(|s| s.has(tcpflag::SYN) || s.len > 0) {
        cx.note(format!("wire: {}", s.line()));
    }
    drop((c, a));
    Ok(Round {
        segs,
        cport,
        snd_mss,
    })
}

fn list(v: &[u32]) -> String {
    let v: Vec<String> = v.iter().map(|n| n.to_string()).collect();
    format!("[{}]", v.join(", "))
}

fn syn_mss(r: &Round, flags: u16, from: u16) -> String {
    r.segs
        .iter()
        .find(|s| s.src.port() == from && s.flags & (tcpflag::SYN | tcpflag::ACK) == flags)
        .and_then(|s| s.mss)
        .map_or("none".into(), |m| m.to_string())
}

/// Sequence numbers of the data segments relative to the first data byte
/// (the seed's "100001, 101461, ...").
fn rel_seqs(r: &Round) -> Vec<u32> {
    let data: Vec<&wire::Seg> = r
        .segs
        .iter()
        .filter(|s| s.src.port() == r.cport && s.len > 0)
        .collect();
    let first = data.first().map_or(0, |s| s.seq);
    data.iter().map(|s| s.seq.wrapping_sub(first)).collect()
}

pub fn run(cx: &mut Ctx<'_>) -> Result<(), LabError> {
    cx.step(format!(
        "a second namespace; veth {HERE} (here, 192.0.2.1/24) <-> {THERE} (there, 192.0.2.2/24), MTU 1500; a listener on 192.0.2.2:{PORT} there"
    ));
    let peer = Peer::new()?;
    ip(&[
        "link",
        "add",
        HERE,
        "mtu",
        "1500",
        "type",
        "veth",
        "peer",
        "name",
        THERE,
        "mtu",
        "1500",
        "netns",
        &peer.ns_path(),
    ])?;
    ip(&["addr", "add", "192.0.2.1/24", "dev", HERE])?;
    ip(&["link", "set", HERE, "up"])?;
    peer.run(|| -> Result<(), LabError> {
        ip(&["addr", "add", "192.0.2.2/24", "dev", THERE])?;
        ip(&["link", "set", THERE, "up"])
    })??;
    let l = peer.run(|| -> Result<OwnedFd, LabError> {
        let l = net::socket_with(
            AddressFamily::INET,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(sys("socket"))?;
        net::bind(&l, &SocketAddr::from((Ipv4Addr::from(THERE_IP), PORT)))
            .map_err(sys("bind(192.0.2.2)"))?;
        net::listen(&l, 8).map_err(sys("listen"))?;
        Ok(l)
    })??;
    cx.note("traffic between 192.0.2.1 and 192.0.2.2 stays on the veth pair: both ends are in namespaces this run made");
    let mut w = Wire::open(HERE)?;

    cx.step(format!(
        "offloads as the veth has them (TSO on): connect, send {REQUEST} bytes in one write"
    ));
    let r = round(cx, &mut w, &l)?;
    cx.check_eq(
        "MSS option in the client's SYN (1500 - 20 - 20)",
        1460,
        syn_mss(&r, tcpflag::SYN, r.cport),
    );
    cx.check_eq(
        "MSS option in the server's SYN-ACK",
        1460,
        syn_mss(&r, tcpflag::SYN | tcpflag::ACK, PORT),
    );
    cx.check_eq(
        "tcp_info snd_mss (payload per segment: 1460 - 12 bytes of timestamp option)",
        1448,
        q(r.snd_mss),
    );
    let sizes = wire::data_sizes(&r.segs, r.cport);
    cx.check_eq("bytes the tap saw", REQUEST, sizes.iter().sum::<u32>());
    cx.note(format!(
        "the tap on {HERE} saw data packets of {} bytes: with TSO the stack hands the device super-segments \
(up to 64 KiB, cut at snd_mss by the hardware, or never on a veth); a tap shows them as they were handed over",
        list(&sizes)
    ));

    cx.step(format!(
        "TSO off on {HERE} (SIOCETHTOOL ETHTOOL_STSO, as `ethtool -K {HERE} tso off`); again {REQUEST} bytes in one write"
    ));
    let tso = netns::set_tso(HERE, false).map_err(|e| LabError::Sys {
        what: format!("turning TSO off on {HERE}"),
        source: e,
    })?;
    cx.check_eq(
        "TSO on the device afterwards",
        "off",
        if tso { "on" } else { "off" },
    );
    let r = round(cx, &mut w, &l)?;
    let sizes = wire::data_sizes(&r.segs, r.cport);
    let mss = r.snd_mss.unwrap_or(0);
    cx.check_eq("tcp_info snd_mss", 1448, mss);
    cx.check_eq(
        "data segments on the wire (at most snd_mss each)",
        list(&[1448, 1448, 104]),
        list(&sizes),
    );
    cx.check_eq(
        "their sequence numbers, relative to the first",
        list(&[0, 1448, 2896]),
        list(&rel_seqs(&r)),
    );

    cx.step(format!(
        "sysctl net.ipv4.tcp_timestamps=0 here (no timestamp option, TSO still off); again {REQUEST} bytes"
    ));
    crate::observe::set_sysctl("net.ipv4.tcp_timestamps", "0")?;
    cx.sysctl("net.ipv4.tcp_timestamps", "0");
    let r = round(cx, &mut w, &l)?;
    let sizes = wire::data_sizes(&r.segs, r.cport);
    cx.check_eq(
        "MSS option in the client's SYN",
        1460,
        syn_mss(&r, tcpflag::SYN, r.cport),
    );
    cx.check_eq("tcp_info snd_mss (the whole MSS)", 1460, q(r.snd_mss));
    cx.check_eq(
        "data segments on the wire: the seed's 1460 + 1460 + 80",
        list(&[1460, 1460, 80]),
        list(&sizes),
    );
    cx.check_eq(
        "their sequence numbers, relative to the first (the seed's 100001, 101461, ...)",
        list(&[0, 1460, 2920]),
        list(&rel_seqs(&r)),
    );
    drop((w, l, peer));
    Ok(())
}
