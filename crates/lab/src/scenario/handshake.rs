//! `handshake`: listen, connect, accept. Before accept() the kernel has
//! already finished the handshake: the connection waits in the accept queue
//! as a socket with no file (inode 0). accept() gives it a file descriptor.
//! The listening socket and the connected one share the local port; the
//! 4-tuple tells connections apart.

use super::*;
use sockscope::model::State;

const PORT: u16 = 5000;

fn ep(e: &sockscope::model::Endpoint) -> String {
    match (e.ip(), e.port()) {
        (Some(a), Some(p)) => SocketAddr::new(a, p).to_string(),
        _ => "?".into(),
    }
}

pub fn run(cx: &mut Ctx<'_>) -> Result<(), LabError> {
    cx.step(format!(
        "socket(AF_INET, SOCK_STREAM) + bind(127.0.0.1:{PORT}) + listen(backlog 8)"
    ));
    let l = tcp_listen(PORT, 8, false)?;
    let l_ino = inode(&l);
    cx.note(format!(
        "the listening socket is fd {} in pid {} (fstat: socket inode {l_ino})",
        raw(&l),
        cx.me
    ));
    let socks = crate::observe::tcp()?;
    let ls: Vec<_> = in_state(&socks, State::Listen);
    cx.show(ls.iter().copied());
    cx.check_eq("listening sockets in the namespace", 1, ls.len());
    if let Some(s) = ls.first() {
        cx.check_eq(
            "listener inode (sock_diag) = fstat(fd).st_ino",
            l_ino,
            s.inode,
        );
        cx.check_eq("backlog (Send-Q of a listener)", 8, q(s.send_q));
        cx.check_eq("accept queue (Recv-Q of a listener)", 0, q(s.recv_q));
        cx.check_eq(
            "owner of the listener",
            format!("pid {} fd {}", cx.me, raw(&l)),
            owner_pairs(s),
        );
    }

    cx.step(format!(
        "client: socket + connect(127.0.0.1:{PORT}); the server has not called accept()"
    ));
    let counters0 = crate::observe::netstat()?;
    let (c, r) = tcp_connect(PORT, false)?;
    r.map_err(sys("connect"))?;
    let cport = local_port(&c);
    cx.note(format!(
        "connect() returned 0: SYN, SYN-ACK, ACK are done; the client is fd {} on port {cport}",
        raw(&c)
    ));
    let socks = crate::observe::tcp()?;
    let listener = in_state(&socks, State::Listen).first().copied().cloned();
    let server_side = by_ports(&socks, PORT, cport).cloned();
    let client_side = by_ports(&socks, cport, PORT).cloned();
    cx.show(listener.iter().chain(&server_side).chain(&client_side));
    if let Some(s) = &listener {
        cx.check_eq("accept queue (Recv-Q of the listener)", 1, q(s.recv_q));
    }
    cx.check_eq(
        "server side of the connection, before accept",
        "ESTAB, inode 0, no owner",
        server_side.as_ref().map_or("missing".into(), |s| {
            format!(
                "{}, inode {}, {} owner",
                s.state,
                s.inode,
                if s.owners.is_empty() { "no" } else { "an" }
            )
        }),
    );
    cx.check_eq(
        "client side",
        format!("ESTAB owned by pid {} fd {}", cx.me, raw(&c)),
        client_side.as_ref().map_or("missing".into(), |s| {
            format!("{} owned by {}", s.state, owner_pairs(s))
        }),
    );

    let d = crate::observe::netstat()?.delta(&counters0);
    for k in ["Tcp.ActiveOpens", "Tcp.PassiveOpens"] {
        let v = d.get(k).unwrap_or(0);
        cx.counter(k, v);
        cx.check_eq(format!("{k} (one handshake each side)"), 1, v);
    }

    cx.step("server: accept4(listener) returns a new fd for the connection");
    let a = accept(&l)?;
    let a_ino = inode(&a);
    cx.note(format!(
        "accept4({}) = {}: a new socket (inode {a_ino}) for this one connection; the listener stays",
        raw(&l),
        raw(&a)
    ));
    let socks = crate::observe::tcp()?;
    let listener = in_state(&socks, State::Listen).first().copied().cloned();
    let server_side = by_ports(&socks, PORT, cport).cloned();
    let client_side = by_ports(&socks, cport, PORT).cloned();
    cx.show(listener.iter().chain(&server_side).chain(&client_side));
    if let Some(s) = &listener {
        cx.check_eq("accept queue after accept", 0, q(s.recv_q));
    }
    match (&server_side, &client_side) {
        (Some(s), Some(c2)) => {
            cx.check_eq("accepted socket inode = fstat(new fd)", a_ino, s.inode);
            cx.check_eq(
                "owner of the accepted socket",
                format!("pid {} fd {}", cx.me, raw(&a)),
                owner_pairs(s),
            );
            cx.check_eq(
                "local port of the accepted socket = the listener's",
                PORT,
                s.local.port().unwrap_or(0),
            );
            cx.check_eq(
                "4-tuple: server (local, peer) = client (peer, local)",
                format!("{} {}", ep(&c2.peer), ep(&c2.local)),
                format!("{} {}", ep(&s.local), ep(&s.peer)),
            );
            cx.check(
                "the accepted socket is a different socket from the listener",
                format!("inode != {l_ino}"),
                s.inode.to_string(),
                s.inode != l_ino,
            );
        }
        _ => {
            cx.check(
                "both ends of the connection seen",
                "2 sockets",
                "missing",
                false,
            );
        }
    }
    drop((a, c, l));
    Ok(())
}
