//! `reuseport`: K sockets bound to the same address and port with
//! SO_REUSEPORT (seed 001), C connections. Each listener has its own accept
//! queue; the kernel picks one per incoming SYN by a hash of the 4-tuple, so
//! the spread is random-looking, not round robin. sock_diag shows each
//! queue's length; accepting from each listener confirms which connections
//! it got.

use super::*;
use sockscope::model::State;

const PORT: u16 = 5000;
const K: usize = 4;
const C: usize = 40;

pub fn run(cx: &mut Ctx<'_>) -> Result<(), LabError> {
    cx.step(format!(
        "{K} sockets: setsockopt(SO_REUSEPORT, 1), bind(127.0.0.1:{PORT}), listen(backlog 64)"
    ));
    let mut ls = Vec::new();
    for _ in 0..K {
        ls.push(tcp_listen(PORT, 64, true)?);
    }
    let inodes: Vec<u64> = ls.iter().map(inode).collect();
    let socks = crate::observe::tcp()?;
    let listeners = in_state(&socks, State::Listen);
    cx.show(listeners.iter().copied());
    cx.check_eq(
        format!("listening sockets on port {PORT}"),
        K,
        listeners
            .iter()
            .filter(|s| s.local.port() == Some(PORT))
            .count(),
    );
    let mut seen: Vec<u64> = listeners.iter().map(|s| s.inode).collect();
    seen.sort();
    let mut want = inodes.clone();
    want.sort();
    cx.check_eq(
        "their inodes are the 4 sockets we made",
        format!("{want:?}"),
        format!("{seen:?}"),
    );

    cx.step(format!(
        "{C} clients connect to 127.0.0.1:{PORT}; nobody accepts yet"
    ));
    let mut clients = Vec::new();
    for _ in 0..C {
        let (c, r) = tcp_connect(PORT, false)?;
        r.map_err(sys("connect"))?;
        clients.push(c);
    }
    let socks = crate::observe::tcp()?;
    let listeners = in_state(&socks, State::Listen);
    cx.show(listeners.iter().copied());
    let mut per: Vec<(u64, u32)> = Vec::new();
    for (i, ino) in inodes.iter().enumerate() {
        let n = listeners
            .iter()
            .find(|s| s.inode == *ino)
            .and_then(|s| s.recv_q)
            .unwrap_or(0);
        per.push((*ino, n));
        cx.note(format!(
            "listener {} (fd {}, inode {ino}): {n} connections queued",
            i + 1,
            raw(&ls[i])
        ));
    }
    let total: u32 = per.iter().map(|p| p.1).sum();
    cx.check_eq("connections queued over all listeners", C, total);
    cx.check(
        "spread: every listener got some (hash of the 4-tuple)",
        "each > 0",
        format!("{:?}", per.iter().map(|p| p.1).collect::<Vec<_>>()),
        per.iter().all(|p| p.1 > 0),
    );

    cx.step("accept4() until EAGAIN on each listener: which connections it got");
    let mut accepted = Vec::new();
    for (i, l) in ls.iter().enumerate() {
        let mut n = 0u32;
        let mut ports = Vec::new();
        // Nonblocking, so accept4 says EAGAIN once the queue is empty.
        rustix::io::ioctl_fionbio(l, true).map_err(sys("ioctl(FIONBIO)"))?;
        while let Ok((fd, a)) = rustix::net::acceptfrom_with(l, rustix::net::SocketFlags::CLOEXEC) {
            if let Some(a) = a.and_then(|a| SocketAddr::try_from(a).ok()) {
                ports.push(a.port());
            }
            accepted.push(fd);
            n += 1;
        }
        cx.note(format!(
            "listener {}: accepted {n}: client ports {}",
            i + 1,
            ports
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        ));
        cx.check_eq(
            format!(
                "listener {}: accepted = its queue length seen by sock_diag",
                i + 1
            ),
            per[i].1,
            n,
        );
    }
    drop((accepted, clients, ls));
    Ok(())
}
