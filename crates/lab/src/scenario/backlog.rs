//! `backlog`: listen(N) and never accept. The kernel completes handshakes
//! on its own and queues the connections for accept(); the accept queue is
//! full when it holds more than N (`sk_acceptq_is_full`: queue > backlog),
//! so it admits N+1. A SYN that arrives at a full queue is dropped
//! (TcpExt.ListenOverflows and TcpExt.ListenDrops count it): that client
//! stays in SYN-SENT and retransmits its SYN, after 1 s, then 3 s, ...
//! Accepting one connection makes room for the next retransmitted SYN.

use super::*;
use sockscope::model::State;

const PORT: u16 = 5000;
const N: i32 = 3;
const M: usize = 8;

fn server_established(socks: &[Socket]) -> usize {
    on_local_port(socks, PORT)
        .iter()
        .filter(|s| s.state == State::Established)
        .count()
}

fn clients_in(socks: &[Socket], st: State) -> usize {
    socks
        .iter()
        .filter(|s| s.peer.port() == Some(PORT) && s.state == st)
        .count()
}

pub fn run(cx: &mut Ctx<'_>) -> Result<(), LabError> {
    cx.step(format!(
        "listen(fd, {N}) on 127.0.0.1:{PORT}; the server will never call accept()"
    ));
    let l = tcp_listen(PORT, N, false)?;
    let somax = crate::observe::sysctl("net.core.somaxconn")?;
    cx.sysctl("net.core.somaxconn", somax.clone());
    cx.note(format!(
        "the backlog given to listen() is capped by net.core.somaxconn ({somax})"
    ));
    let socks = crate::observe::tcp()?;
    let ls = in_state(&socks, State::Listen);
    cx.show(ls.iter().copied());
    cx.check_eq(
        "backlog (Send-Q of the listener)",
        N,
        ls.first().map_or("-".into(), |s| q(s.send_q)),
    );

    cx.step(format!(
        "{M} clients connect (nonblocking), one after the other, each given 200 ms to complete"
    ));
    let before = crate::observe::netstat()?;
    let mut clients = Vec::new();
    let mut completed = 0usize;
    for i in 0..M {
        let (c, r) = tcp_connect(PORT, true)?;
        r.map_err(sys("connect"))?;
        let done = writable_within(&c, 200);
        if done {
            completed += 1;
        }
        cx.note(format!(
            "client {} (port {}): {}",
            i + 1,
            local_port(&c),
            if done {
                "connected (handshake completed; the connection waits in the accept queue)"
            } else {
                "still connecting: its SYN was dropped"
            }
        ));
        clients.push(c);
    }
    let d = crate::observe::netstat()?.delta(&before);
    let socks = crate::observe::tcp()?;
    let admitted = (N + 1) as usize;
    let waiting = M - admitted;
    cx.show(
        socks
            .iter()
            .filter(|s| s.state == State::Listen || s.state == State::SynSent),
    );
    cx.note(format!(
        "(not shown: {} server-side ESTAB sockets with inode 0 and their {} clients)",
        server_established(&socks),
        clients_in(&socks, State::Established)
    ));
    let listener = in_state(&socks, State::Listen).first().copied().cloned();
    cx.check_eq(
        "accept queue (Recv-Q of the listener) = backlog + 1",
        admitted,
        listener.as_ref().map_or("-".into(), |s| q(s.recv_q)),
    );
    cx.check_eq("clients whose connect() completed", admitted, completed);
    cx.check_eq(
        "server-side ESTAB sockets waiting for accept()",
        admitted,
        server_established(&socks),
    );
    cx.check_eq(
        "clients left in SYN-SENT",
        waiting,
        clients_in(&socks, State::SynSent),
    );
    for k in ["TcpExt.ListenOverflows", "TcpExt.ListenDrops"] {
        let v = d.get(k).unwrap_or(0);
        cx.counter(k, v);
        cx.check_at_least(format!("{k} rose (one per dropped SYN)"), waiting as i64, v);
    }

    cx.step("accept4() one connection: the queue has room for one more");
    let a = accept(&l)?;
    cx.note(format!(
        "accept4 = fd {}; a waiting client gets in when it retransmits its SYN (1 s after the first, then 3 s)",
        raw(&a)
    ));
    // The client turns ESTABLISHED when the SYN-ACK arrives, before its
    // final ACK reaches the listener and fills the queue: wait for both.
    wait_until(4500, || {
        let s = crate::observe::tcp_quick()?;
        let n = clients_in(&s, State::SynSent);
        let queued = in_state(&s, State::Listen)
            .first()
            .and_then(|l| l.recv_q)
            .map(|v| v as usize);
        Ok(((), n + 1 == waiting && queued == Some(admitted)))
    })?;
    let socks = crate::observe::tcp()?;
    let listener = in_state(&socks, State::Listen).first().copied().cloned();
    cx.show(listener.iter());
    cx.check_eq(
        "accept queue full again",
        admitted,
        listener.as_ref().map_or("-".into(), |s| q(s.recv_q)),
    );
    cx.check_eq(
        "clients left in SYN-SENT",
        waiting - 1,
        clients_in(&socks, State::SynSent),
    );
    drop((a, clients, l));
    Ok(())
}
