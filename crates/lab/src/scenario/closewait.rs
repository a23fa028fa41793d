//! `close-wait`: the peer closed its end (FIN received), but the application
//! never calls close() on its socket. The kernel cannot finish the
//! connection on its own: the socket stays in CLOSE-WAIT for as long as the
//! process holds the descriptor — the classic fd leak. sockscope names the
//! process and fd that hold it; the peer waits in FIN-WAIT-2 until its own
//! timeout (net.ipv4.tcp_fin_timeout) and then disappears, CLOSE-WAIT stays.

use super::*;
use sockscope::model::State;

const PORT: u16 = 5000;

pub fn run(cx: &mut Ctx<'_>) -> Result<(), LabError> {
    cx.step(format!(
        "listen(127.0.0.1:{PORT}); a client connects; the application accepts it"
    ));
    let l = tcp_listen(PORT, 8, false)?;
    let (c, r) = tcp_connect(PORT, false)?;
    r.map_err(sys("connect"))?;
    let a = accept(&l)?;
    let cport = local_port(&c);
    cx.note(format!(
        "the application's connection is fd {} (inode {}) in pid {}",
        raw(&a),
        inode(&a),
        cx.me
    ));

    cx.step("the client closes; the application reads EOF and still never calls close()");
    drop(c);
    let mut buf = [0u8; 16];
    let n = rustix::io::read(&a, &mut buf).map_err(sys("read"))?;
    cx.note(format!(
        "read({}) = {n}: end of file, the peer is gone",
        raw(&a)
    ));
    let socks = tcp_when(3000, |s| {
        // The ACK of a FIN may be delayed (up to 200 ms): wait for both.
        by_ports(s, PORT, cport).is_some_and(|s| s.state == State::CloseWait)
            && by_ports(s, cport, PORT).is_some_and(|s| s.state == State::FinWait2)
    })?;
    let server = by_ports(&socks, PORT, cport).cloned();
    let client = by_ports(&socks, cport, PORT).cloned();
    cx.show(server.iter().chain(client.iter()));
    cx.check_eq("read() after the peer's FIN", 0, n);
    cx.check_eq(
        "the application's socket",
        "CLOSE-WAIT",
        server
            .as_ref()
            .map_or("gone".into(), |s| s.state.ss_label().to_string()),
    );
    cx.check_eq(
        "held by (pid, fd)",
        format!("pid {} fd {}", cx.me, raw(&a)),
        server.as_ref().map_or("-".into(), owner_pairs),
    );
    cx.check_eq(
        "the process is named",
        "sockscope",
        server
            .as_ref()
            .and_then(|s| s.owners.first())
            .map_or("-".into(), |o| o.comm.clone()),
    );
    cx.check_eq(
        "the peer, orphaned after close(), its FIN acknowledged",
        "FIN-WAIT-2, no owner",
        client.as_ref().map_or("gone".into(), |s| {
            format!(
                "{}, {}",
                s.state.ss_label(),
                if s.owners.is_empty() {
                    "no owner"
                } else {
                    "owned"
                }
            )
        }),
    );

    cx.step("1 s later: nothing changed; only close() would move it on");
    std::thread::sleep(Duration::from_millis(1000));
    let socks = crate::observe::tcp()?;
    let server = by_ports(&socks, PORT, cport).cloned();
    cx.show(server.iter());
    cx.check_eq(
        "still",
        "CLOSE-WAIT",
        server
            .as_ref()
            .map_or("gone".into(), |s| s.state.ss_label().to_string()),
    );

    cx.step("the application finally calls close()");
    drop(a);
    let socks = tcp_when(3000, |s| by_ports(s, PORT, cport).is_none())?;
    cx.check_eq(
        "the application's socket after close (LAST-ACK, then the peer's ACK)",
        "gone",
        by_ports(&socks, PORT, cport).map_or("gone".into(), |s| s.state.ss_label().to_string()),
    );
    drop(l);
    Ok(())
}
