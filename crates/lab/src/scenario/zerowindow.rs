//! `zero-window`: a receiver that never reads. Its receive buffer fills,
//! the window it advertises shrinks to 0, and the sender may not send any
//! more: what the application writes piles up in the sender's send queue
//! (Send-Q). The sender's kernel arms the persist timer and sends zero-window
//! probes (a segment with sequence number snd_una - 1 and no data, which
//! the receiver must answer with its current window), backing off each
//! time; `tcp_info.probes` counts them. When the receiver reads, its window
//! opens and the queued data flows.
//!
//! The receive buffer is made small (SO_RCVBUF on the listener, inherited by
//! the accepted socket) and the send buffer too, so the run takes a second.

use super::*;
use crate::wire::{self, Wire};
use sockscope::model::TimerKind;
use sockscope_capture::decode::tcpflag;

const PORT: u16 = 5030;
const RCVBUF: usize = 4096;
const SNDBUF: usize = 16384;

/// The client socket, and its tcp_info probes and backoff.
fn client_info(socks: &[Socket], cport: u16) -> (Option<Socket>, u32, u32) {
    let s = by_ports(socks, cport, PORT).cloned();
    let (probes, backoff) = s
        .as_ref()
        .and_then(|s| s.tcp_info.as_ref())
        .map_or((0, 0), |i| (u32::from(i.probes), u32::from(i.backoff)));
    (s, probes, backoff)
}

pub fn run(cx: &mut Ctx<'_>) -> Result<(), LabError> {
    cx.step(format!(
        "capture on lo; listen(127.0.0.1:{PORT}) with SO_RCVBUF {RCVBUF}; a client with SO_SNDBUF {SNDBUF} connects; the server accepts and never reads"
    ));
    let mut w = Wire::open("lo")?;
    let l = rustix::net::socket_with(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .map_err(sys("socket"))?;
    rustix::net::sockopt::set_socket_recv_buffer_size(&l, RCVBUF)
        .map_err(sys("setsockopt(SO_RCVBUF)"))?;
    rustix::net::bind(&l, &addr(PORT)).map_err(sys("bind"))?;
    rustix::net::listen(&l, 8).map_err(sys("listen"))?;
    let (c, r) = tcp_connect(PORT, false)?;
    r.map_err(sys("connect"))?;
    rustix::net::sockopt::set_socket_send_buffer_size(&c, SNDBUF)
        .map_err(sys("setsockopt(SO_SNDBUF)"))?;
    let a = accept(&l)?;
    let cport = local_port(&c);
    let rcvbuf = rustix::net::sockopt::socket_recv_buffer_size(&a).unwrap_or(0);
    let sndbuf = rustix::net::sockopt::socket_send_buffer_size(&c).unwrap_or(0);
    cx.note(format!(
        "client port {cport}; the kernel doubled the sizes asked for (room for its bookkeeping): server SO_RCVBUF {rcvbuf}, client SO_SNDBUF {sndbuf}"
    ));

    cx.step("the client writes (non-blocking) until the kernel refuses more (EAGAIN)");
    rustix::io::ioctl_fionbio(&c, true).map_err(sys("ioctl(FIONBIO)"))?;
    let chunk = [b'z'; 1000];
    let mut written = 0usize;
    let t0 = Instant::now();
    // The window closes within a few round trips; keep writing until the
    // send buffer is full too.
    while t0.elapsed() < Duration::from_millis(1000) {
        match rustix::net::send(&c, &chunk, rustix::net::SendFlags::NOSIGNAL) {
            Ok(n) => written += n,
            Err(Errno::AGAIN) => {
                if writable_within(&c, 50) {
                    continue;
                }
                break;
            }
            Err(e) => return Err(sys("send")(e)),
        }
    }
    cx.note(format!("{written} bytes accepted by send() before EAGAIN"));

    cx.step("wait for zero-window probes (persist timer: first after one RTO, about 200 ms, then doubling)");
    wait_until(2500, || {
        let s = crate::observe::tcp_info()?;
        let (_, _, b) = client_info(&s, cport);
        Ok(((), b >= 3))
    })?;
    let socks = crate::observe::tcp_info_owned()?;
    let (client, probes, backoff) = client_info(&socks, cport);
    let server = by_ports(&socks, PORT, cport).cloned();
    cx.show(client.iter().chain(server.iter()));
    let send_q = client.as_ref().and_then(|s| s.send_q).unwrap_or(0) as usize;
    let recv_q = server.as_ref().and_then(|s| s.recv_q).unwrap_or(0) as usize;
    cx.check(
        "client Send-Q (written, not acknowledged)",
        "more than 0",
        send_q.to_string(),
        send_q > 0,
    );
    cx.check_eq(
        "client Send-Q + server Recv-Q = bytes written (nothing lost, nothing read)",
        written,
        send_q + recv_q,
    );
    cx.check_eq(
        "client's timer (socket table)",
        "persist",
        client
            .as_ref()
            .and_then(|s| s.timer)
            .map_or("none", |t| t.kind.name()),
    );
    cx.check_at_least(
        "tcp_info backoff (persist timer doublings: one per probe while the window stays 0)",
        3,
        i64::from(backoff),
    );
    cx.note(format!(
        "tcp_info probes = {probes}: the kernel counts unanswered probes only (icsk_probes_out is reset by \
every ACK, and the receiver answers each probe with a zero-window ACK)"
    ));
    if let Some(t) = client
        .as_ref()
        .and_then(|s| s.timer)
        .filter(|t| t.kind == TimerKind::Persist)
    {
        cx.note(format!(
            "persist timer fires in {} ms (probe count in the table: {})",
            t.expires_ms, t.retrans
        ));
    }

    let segs = wire::conn(&w.take(120)?, cport, PORT);
    let zero: Vec<&wire::Seg> = segs
        .iter()
        .filter(|s| s.src.port() == PORT && s.has(tcpflag::ACK) && s.window == 0)
        .collect();
    let wire_probes = wire::zero_window_probes(&segs, cport);
    let wins: Vec<String> = segs
        .iter()
        .filter(|s| s.src.port() == PORT && !s.has(tcpflag::SYN))
        .map(|s| s.window.to_string())
        .collect();
    cx.note(format!(
        "windows the server advertised, in order (raw field): {}",
        wins.join(" ")
    ));
    for s in &wire_probes {
        cx.note(format!("probe: {}", s.line()));
    }
    cx.check_at_least("server segments advertising window 0", 1, zero.len() as i64);
    cx.check_at_least(
        "zero-window probes on the wire (seq = snd_una - 1, no data), one per backoff",
        i64::from(backoff),
        wire_probes.len() as i64,
    );
    let gaps: Vec<u64> = wire_probes
        .windows(2)
        .map(|p| (p[1].t_us - p[0].t_us) / 1000)
        .collect();
    cx.check(
        "time between probes doubles (exponential backoff)",
        "each gap at least 1.5 x the one before",
        format!("{gaps:?} ms"),
        gaps.len() >= 2 && gaps.windows(2).all(|g| g[1] * 2 >= g[0] * 3),
    );

    cx.step("the server reads everything: its window opens, the queued data flows");
    rustix::io::ioctl_fionbio(&a, true).map_err(sys("ioctl(FIONBIO)"))?;
    let mut got = 0usize;
    let mut buf = vec![0u8; 65536];
    let t0 = Instant::now();
    while got < written && t0.elapsed() < Duration::from_millis(2000) {
        match rustix::net::recv(&a, &mut buf, rustix::net::RecvFlags::empty()) {
            Ok((n, _)) if n > 0 => got += n,
            Ok(_) => break,
            Err(Errno::AGAIN) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(sys("recv")(e)),
        }
    }
    let socks = tcp_when(1000, |s| {
        by_ports(s, cport, PORT).is_some_and(|s| s.send_q == Some(0))
    })?;
    let client = by_ports(&socks, cport, PORT);
    cx.show(client);
    cx.check_eq("bytes the server read", written, got);
    cx.check_eq(
        "client Send-Q afterwards",
        0,
        client.and_then(|s| s.send_q).map_or(-1, i64::from),
    );
    drop((c, a, l));
    Ok(())
}
