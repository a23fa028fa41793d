//! `nagle`: small writes with and without TCP_NODELAY, counted on the wire.
//!
//! Nagle's rule (tcp_nagle_check): a segment smaller than the MSS is held
//! back while earlier data is still unacknowledged; writes made meanwhile
//! are appended to it, and it leaves when the ACK comes. With TCP_NODELAY
//! every write goes out at once.
//!
//! On loopback an ACK comes back in microseconds, so whether writes
//! coalesce would depend on scheduling. To make it deterministic the
//! receiver is put in delayed-ACK ("pingpong") mode with TCP_QUICKACK=0: its
//! kernel then acknowledges after the delayed-ACK timer (40 ms or more), and
//! all the writes happen well within that. net.ipv4.tcp_autocorking is set
//! to 0 in the namespace so that the NODELAY case is not coalesced by
//! autocorking (holding a segment while an earlier one is still in the
//! device queue) either. No qdisc and no packet drops are needed.
//!
//! One thing the delayed ACK brings out: with several segments in flight
//! and no ACK, the sender's tail loss probe timer (PTO = 2 x srtt + 2
//! jiffies when more than one segment is out, tcp_schedule_loss_probe)
//! fires after a few ms and sends the last segment again. Such repeats are
//! counted apart (TcpExt.TCPLossProbes); the checks count new data only.

use super::*;
use crate::wire::{self, Wire};

const PORT: u16 = 5040;
const WRITES: usize = 8;
const SIZE: usize = 10;

/// One connection: WRITES writes of SIZE bytes back to back; the payload
/// sizes the wire carried from the client.
fn burst(
    cx: &mut Ctx<'_>,
    w: &mut Wire,
    l: &OwnedFd,
    nodelay: bool,
) -> Result<(Vec<u32>, bool), LabError> {
    let (c, r) = tcp_connect(PORT, false)?;
    r.map_err(sys("connect"))?;
    let a = accept(l)?;
    rustix::net::sockopt::set_tcp_quickack(&a, false)
        .map_err(sys("setsockopt(TCP_QUICKACK, 0)"))?;
    rustix::net::sockopt::set_tcp_nodelay(&c, nodelay).map_err(sys("setsockopt(TCP_NODELAY)"))?;
    let cport = local_port(&c);
    let msg = [b'x'; SIZE];
    let t0 = Instant::now();
    for _ in 0..WRITES {
        rustix::net::send(&c, &msg, rustix::net::SendFlags::NOSIGNAL).map_err(sys("send"))?;
    }
    let took = t0.elapsed();
    cx.note(format!(
        "client port {cport}: {WRITES} send() calls of {SIZE} bytes took {} us",
        took.as_micros()
    ));
    // Let the delayed ACK and any held segment go out.
    let total = (WRITES * SIZE) as u32;
    wait_until(2000, || {
        let s = crate::observe::tcp_quick()?;
        let done = by_ports(&s, PORT, cport).is_some_and(|s| s.recv_q == Some(total));
        Ok(((), done))
    })?;
    std::thread::sleep(Duration::from_millis(60));
    let segs = wire::conn(&w.take(120)?, cport, PORT);
    for s in segs.iter().filter(|s| s.len > 0 || s.src.port() == PORT) {
        cx.note(format!("wire: {}", s.line()));
    }
    let again = wire::resent(&segs, cport);
    for s in &again {
        cx.note(format!(
            "sent again (not new data): seq {} len {} at +{:.3} ms",
            s.seq,
            s.len,
            s.t_us as f64 / 1000.0
        ));
    }
    // Did the second data segment leave only after the first was acknowledged?
    let data: Vec<&wire::Seg> = segs
        .iter()
        .filter(|s| s.src.port() == cport && s.len > 0)
        .collect();
    let waited = match (data.first(), data.get(1)) {
        (Some(d0), Some(d1)) => segs.iter().any(|s| {
            s.src.port() == PORT && s.ack == d0.seq.wrapping_add(d0.len) && s.t_us <= d1.t_us
        }),
        _ => false,
    };
    drop((c, a));
    Ok((wire::data_sizes(&segs, cport), waited))
}

fn list(v: &[u32]) -> String {
    let v: Vec<String> = v.iter().map(|n| n.to_string()).collect();
    format!("[{}]", v.join(", "))
}

pub fn run(cx: &mut Ctx<'_>) -> Result<(), LabError> {
    cx.step(format!(
        "capture on lo; sysctl tcp_autocorking=0; listen(127.0.0.1:{PORT}); the server side uses TCP_QUICKACK=0 (delayed ACKs)"
    ));
    crate::observe::set_sysctl("net.ipv4.tcp_autocorking", "0")?;
    cx.sysctl("net.ipv4.tcp_autocorking", "0");
    let mut w = Wire::open("lo")?;
    let l = tcp_listen(PORT, 8, false)?;

    cx.step(format!(
        "Nagle on (the default): {WRITES} writes of {SIZE} bytes, back to back"
    ));
    let (sizes, waited) = burst(cx, &mut w, &l, false)?;
    cx.check_eq("new data segments on the wire", 2, sizes.len());
    cx.check_eq(
        "their sizes: the first write alone, the rest coalesced while it was unacked",
        list(&[SIZE as u32, ((WRITES - 1) * SIZE) as u32]),
        list(&sizes),
    );
    cx.check_eq(
        "the second segment left only after the ACK of the first",
        "yes",
        if waited { "yes" } else { "no" },
    );

    cx.step(format!(
        "TCP_NODELAY on: {WRITES} writes of {SIZE} bytes, back to back"
    ));
    let before = crate::observe::netstat()?;
    let (sizes, waited) = burst(cx, &mut w, &l, true)?;
    let tlp = crate::observe::netstat()?
        .delta(&before)
        .get("TcpExt.TCPLossProbes")
        .unwrap_or(0);
    cx.counter("TcpExt.TCPLossProbes", tlp);
    cx.check_eq(
        "new data segments on the wire (one per write)",
        WRITES,
        sizes.len(),
    );
    cx.check_eq("their sizes", list(&[SIZE as u32; WRITES]), list(&sizes));
    cx.check_eq(
        "the second segment waited for an ACK",
        "no",
        if waited { "yes" } else { "no" },
    );
    drop(l);
    Ok(())
}
