//! `abort`: SO_LINGER with l_onoff=1, l_linger=0, then close(). Instead of
//! the FIN handshake the kernel sends one RST and frees the socket at once
//! (tcp_close -> tcp_disconnect, counted as TcpExt.TCPAbortOnData): no
//! FIN-WAIT, no TIME-WAIT. The peer's next recv() fails with ECONNRESET.

use super::*;
use crate::wire::{self, Wire};
use sockscope_capture::decode::tcpflag;

const PORT: u16 = 5020;

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

    cx.step("client: setsockopt(SO_LINGER, {l_onoff=1, l_linger=0}); close()");
    rustix::net::sockopt::set_socket_linger(&c, Some(Duration::ZERO))
        .map_err(sys("setsockopt(SO_LINGER)"))?;
    let before = crate::observe::netstat()?;
    drop(c);
    let socks = tcp_when(2000, |s| by_ports(s, cport, PORT).is_none())?;
    let d = crate::observe::netstat()?.delta(&before);
    let client = by_ports(&socks, cport, PORT);
    cx.check_eq(
        "the client's socket right after close()",
        "gone",
        client.map_or("gone".into(), |s| s.state.ss_label().to_string()),
    );
    let v = d.get("TcpExt.TCPAbortOnData").unwrap_or(0);
    cx.counter("TcpExt.TCPAbortOnData", v);
    cx.check_eq("TcpExt.TCPAbortOnData (close with linger 0 aborts)", 1, v);

    cx.step("the server calls recv()");
    let mut buf = [0u8; 16];
    let got = rustix::net::recv(&a, &mut buf, rustix::net::RecvFlags::DONTWAIT);
    let got = match got {
        Ok((n, _)) => format!("{n} bytes"),
        Err(Errno::CONNRESET) => "error ECONNRESET".into(),
        Err(e) => format!("error {}", std::io::Error::from(e)),
    };
    cx.check_eq("recv() on the server", "error ECONNRESET", got);
    let socks = crate::observe::tcp()?;
    let server = by_ports(&socks, PORT, cport);
    cx.show(server);
    cx.note(format!(
        "the server's fd {} still holds socket inode {}: a reset socket is in state CLOSE, \
unhashed, so sock_diag no longer lists it",
        raw(&a),
        inode(&a)
    ));
    cx.check_eq(
        "server socket in the TCP table after the reset",
        "gone",
        server.map_or("gone".into(), |s| s.state.ss_label().to_string()),
    );

    cx.step("what went over the wire (lo), and what is left in the socket table");
    let segs = wire::conn(&w.take(150)?, cport, PORT);
    let from = segs
        .iter()
        .position(|s| s.has(tcpflag::FIN | tcpflag::RST))
        .unwrap_or(0);
    super::finclose::note_wire(cx, &segs[from..]);
    cx.check_eq(
        "teardown segments on the wire: the client's RST, nothing else",
        "client RST",
        wire::teardown(&segs, cport)
            .iter()
            .map(|s| s.replacen("a:", "client ", 1).replacen("b:", "server ", 1))
            .collect::<Vec<_>>()
            .join(", "),
    );
    cx.check_eq(
        "FIN segments on the wire",
        0,
        segs.iter().filter(|s| s.has(tcpflag::FIN)).count(),
    );
    let tw = crate::observe::sockstat()?.get("TCP.tw").unwrap_or(-1);
    cx.counter("TCP.tw (sockstat)", tw);
    cx.check_eq(
        "TIME-WAIT sockets in the namespace (sockstat TCP.tw)",
        0,
        tw,
    );
    drop((a, l));
    Ok(())
}
