//! `fin-close`: the orderly teardown, seen on the wire and in the socket
//! table. The side that calls close() first sends FIN; the peer's kernel
//! acknowledges it at once (the application has not even read it yet) and
//! the peer's socket waits in CLOSE-WAIT until its application closes too;
//! then the second FIN and its ACK. Four segments, in this order: FIN, ACK,
//! FIN, ACK. The first closer keeps the 4-tuple in TIME-WAIT.

use super::*;
use crate::wire::{self, Wire};
use sockscope::model::State;

const PORT: u16 = 5010;

fn describe(s: Option<&Socket>) -> String {
    s.map_or("gone".into(), |s| s.state.ss_label().to_string())
}

/// The wire lines of a connection, as notes.
pub(super) fn note_wire(cx: &mut Ctx<'_>, segs: &[wire::Seg]) {
    for s in segs {
        cx.note(format!("wire: {}", s.line()));
    }
}

pub fn run(cx: &mut Ctx<'_>) -> Result<(), LabError> {
    cx.step(format!(
        "capture on lo; listen(127.0.0.1:{PORT}); a client connects; the server accepts"
    ));
    let mut w = Wire::open("lo")?;
    let l = tcp_listen(PORT, 8, false)?;
    let (c, r) = tcp_connect(PORT, false)?;
    r.map_err(sys("connect"))?;
    let a = accept(&l)?;
    let cport = local_port(&c);
    cx.note(format!(
        "client fd {} port {cport}; server fd {}",
        raw(&c),
        raw(&a)
    ));

    cx.step("the client calls close() first: its kernel sends FIN");
    drop(c);
    let socks = tcp_when(3000, |s| {
        by_ports(s, PORT, cport).is_some_and(|s| s.state == State::CloseWait)
            && by_ports(s, cport, PORT).is_some_and(|s| s.state == State::FinWait2)
    })?;
    let client = by_ports(&socks, cport, PORT).cloned();
    let server = by_ports(&socks, PORT, cport).cloned();
    cx.show(client.iter().chain(server.iter()));
    cx.check_eq(
        "client after its FIN was acknowledged",
        "FIN-WAIT-2",
        describe(client.as_ref()),
    );
    cx.note(
        "the client's fd is closed, so its FIN-WAIT-2 socket is an orphan: the kernel keeps it as a \
time-wait mini-socket (no inode, no owner, timer = tcp_fin_timeout)",
    );
    cx.check_eq(
        "server after receiving the FIN (its application has not closed)",
        "CLOSE-WAIT",
        describe(server.as_ref()),
    );

    cx.step("the server calls close(): its kernel sends the second FIN");
    drop(a);
    let socks = tcp_when(3000, |s| {
        by_ports(s, PORT, cport).is_none()
            && by_ports(s, cport, PORT).is_some_and(|s| s.state == State::TimeWait)
    })?;
    let client = by_ports(&socks, cport, PORT).cloned();
    let server = by_ports(&socks, PORT, cport).cloned();
    cx.show(client.iter().chain(server.iter()));
    cx.check_eq(
        "client (closed first)",
        "TIME-WAIT",
        describe(client.as_ref()),
    );
    cx.check_eq(
        "server (closed second, LAST-ACK then closed)",
        "gone",
        describe(server.as_ref()),
    );

    cx.step("what went over the wire (lo), from the first FIN on");
    let segs = wire::conn(&w.take(150)?, cport, PORT);
    let fin_at = segs
        .iter()
        .position(|s| s.has(sockscope_capture::decode::tcpflag::FIN))
        .unwrap_or(segs.len());
    note_wire(cx, &segs[fin_at..]);
    let td: Vec<String> = wire::teardown(&segs, cport)
        .iter()
        .map(|s| s.replacen("a:", "client ", 1).replacen("b:", "server ", 1))
        .collect();
    cx.check_eq(
        "teardown segments in order",
        "client FIN, server ACK, server FIN, client ACK",
        td.join(", "),
    );
    // Each ACK acknowledges the FIN before it: a FIN takes one sequence number.
    let fins: Vec<&wire::Seg> = segs[fin_at..]
        .iter()
        .filter(|s| s.has(sockscope_capture::decode::tcpflag::FIN))
        .collect();
    let acks: Vec<&wire::Seg> = segs[fin_at..].iter().filter(|s| s.is_pure_ack()).collect();
    if fins.len() == 2 && acks.len() == 2 {
        cx.check_eq(
            "server's ACK number = client FIN's seq + 1",
            fins[0].seq.wrapping_add(1),
            acks[0].ack,
        );
        cx.check_eq(
            "client's ACK number = server FIN's seq + 1",
            fins[1].seq.wrapping_add(1),
            acks[1].ack,
        );
    } else {
        cx.check_eq(
            "FIN and pure ACK segments after the first FIN",
            "2 and 2",
            format!("{} and {}", fins.len(), acks.len()),
        );
    }
    let tw = crate::observe::sockstat()?.get("TCP.tw").unwrap_or(-1);
    cx.counter("TCP.tw (sockstat)", tw);
    cx.check_eq(
        "TIME-WAIT sockets in the namespace (sockstat TCP.tw)",
        1,
        tw,
    );
    drop(l);
    Ok(())
}
