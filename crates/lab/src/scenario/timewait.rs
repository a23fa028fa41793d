//! `time-wait`: whoever calls close() first (the active closer) sends the
//! first FIN and, once the other side's FIN is acknowledged, keeps the
//! 4-tuple in TIME-WAIT for 60 s so late segments of this connection cannot
//! be taken for a new one. The passive closer goes CLOSE-WAIT, LAST-ACK,
//! closed. It is the order of close() that decides, not client or server:
//! the scenario runs it both ways.

use super::*;
use sockscope::model::State;

const PORT: u16 = 5000;

fn describe(s: Option<&Socket>) -> String {
    s.map_or("gone".into(), |s| s.state.ss_label().to_string())
}

pub fn run(cx: &mut Ctx<'_>) -> Result<(), LabError> {
    cx.step(format!(
        "listen(127.0.0.1:{PORT}); a client connects; the server accepts"
    ));
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

    cx.step("the client calls close() first");
    drop(c);
    let socks = tcp_when(3000, |s| {
        // The ACK of a FIN may be delayed (up to 200 ms): wait for both.
        by_ports(s, PORT, cport).is_some_and(|s| s.state == State::CloseWait)
            && by_ports(s, cport, PORT).is_some_and(|s| s.state == State::FinWait2)
    })?;
    let client = by_ports(&socks, cport, PORT).cloned();
    let server = by_ports(&socks, PORT, cport).cloned();
    cx.show(client.iter().chain(server.iter()));
    cx.check_eq(
        "client side (sent FIN, got its ACK)",
        "FIN-WAIT-2",
        describe(client.as_ref()),
    );
    cx.check_eq(
        "server side (got FIN, has not closed)",
        "CLOSE-WAIT",
        describe(server.as_ref()),
    );

    cx.step("the server calls close()");
    drop(a);
    let socks = tcp_when(3000, |s| {
        by_ports(s, PORT, cport).is_none()
            && by_ports(s, cport, PORT).is_some_and(|s| s.state == State::TimeWait)
    })?;
    let client = by_ports(&socks, cport, PORT).cloned();
    let server = by_ports(&socks, PORT, cport).cloned();
    cx.show(client.iter().chain(server.iter()));
    cx.check_eq(
        "client side (closed first)",
        "TIME-WAIT",
        describe(client.as_ref()),
    );
    cx.check_eq(
        "server side (closed second)",
        "gone",
        describe(server.as_ref()),
    );
    if let Some(s) = &client {
        cx.check_eq("TIME-WAIT socket has no file (inode 0)", 0, s.inode);
        cx.check_eq(
            "its timer",
            "timewait",
            s.timer.map_or("none", |t| t.kind.name()),
        );
        let ms = s.timer.map_or(0, |t| t.expires_ms);
        cx.check(
            "time left in TIME-WAIT (60 s, TCP_TIMEWAIT_LEN)",
            "55-60 s",
            format!("{:.1} s", ms as f64 / 1000.0),
            (55_000..=60_000).contains(&ms),
        );
    }
    let tw = crate::observe::sockstat()?.get("TCP.tw").unwrap_or(-1);
    cx.counter("TCP.tw (sockstat)", tw);
    cx.check_eq(
        "TIME-WAIT sockets in the namespace (sockstat TCP.tw)",
        1,
        tw,
    );

    cx.step("again, the other way round: this time the server calls close() first");
    let (c, r) = tcp_connect(PORT, false)?;
    r.map_err(sys("connect"))?;
    let a = accept(&l)?;
    let cport2 = local_port(&c);
    drop(a);
    let socks = tcp_when(3000, |s| {
        by_ports(s, cport2, PORT).is_some_and(|s| s.state == State::CloseWait)
    })?;
    cx.check_eq(
        "client side after the server's close",
        "CLOSE-WAIT",
        describe(by_ports(&socks, cport2, PORT)),
    );
    drop(c);
    let socks = tcp_when(3000, |s| {
        by_ports(s, PORT, cport2).is_some_and(|s| s.state == State::TimeWait)
    })?;
    let server = by_ports(&socks, PORT, cport2).cloned();
    let client = by_ports(&socks, cport2, PORT).cloned();
    cx.show(server.iter().chain(client.iter()));
    cx.check_eq(
        format!("server side (local port {PORT}, closed first)"),
        "TIME-WAIT",
        describe(server.as_ref()),
    );
    cx.check_eq(
        "client side (closed second)",
        "gone",
        describe(client.as_ref()),
    );
    if let Some(s) = &server {
        cx.check_eq(
            "its timer",
            "timewait",
            s.timer.map_or("none", |t| t.kind.name()),
        );
    }
    drop(l);
    Ok(())
}
