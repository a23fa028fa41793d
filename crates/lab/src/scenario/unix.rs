//! `unix`: a UNIX stream socket bound to a path. The path is a file of type
//! socket with its own inode on disk; the socket itself is a different
//! inode, in sockfs (the N of `socket:[N]`). unix_diag reports both ends of
//! every connection with the inode of its peer, so peers can be paired.
//! Accepted sockets carry the listener's path; clients have none.

use super::*;
use rustix::net::{SocketAddrUnix, SocketFlags, SocketType};
use sockscope::model::{Endpoint, State};

fn unix_socket() -> Result<OwnedFd, LabError> {
    rustix::net::socket_with(
        rustix::net::AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(sys("socket(AF_UNIX)"))
}

fn local_inode(s: &Socket) -> u64 {
    match s.local {
        Endpoint::Unix { inode, .. } => inode,
        _ => 0,
    }
}

fn peer_inode(s: &Socket) -> u64 {
    match s.peer {
        Endpoint::Unix { inode, .. } => inode,
        _ => 0,
    }
}

fn path_of(s: &Socket) -> Option<String> {
    match &s.local {
        Endpoint::Unix { path, .. } => path.clone(),
        _ => None,
    }
}

pub fn run(cx: &mut Ctx<'_>) -> Result<(), LabError> {
    let dir = std::env::temp_dir().join(format!(
        "sockscope-lab-{}-{}",
        cx.me,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    ));
    std::fs::create_dir(&dir).map_err(|e| LabError::Sys {
        what: format!("mkdir {}", dir.display()),
        source: e,
    })?;
    let r = in_dir(cx, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn in_dir(cx: &mut Ctx<'_>, dir: &std::path::Path) -> Result<(), LabError> {
    let path = dir.join("lab.sock");
    let path_s = path.display().to_string();
    cx.step(format!(
        "socket(AF_UNIX, SOCK_STREAM) + bind({path_s}) + listen(4)"
    ));
    let l = unix_socket()?;
    let sa = SocketAddrUnix::new(&path).map_err(sys("sockaddr_un"))?;
    rustix::net::bind(&l, &sa).map_err(sys(format!("bind({path_s})")))?;
    rustix::net::listen(&l, 4).map_err(sys("listen"))?;
    let file = rustix::fs::stat(&path).map_err(sys(format!("stat({path_s})")))?;
    let file_ino = file.st_ino;
    let is_sock = rustix::fs::FileType::from_raw_mode(file.st_mode) == rustix::fs::FileType::Socket;
    let sock_ino = inode(&l);
    cx.note(format!(
        "stat({path_s}): inode {file_ino}, type {}; fstat(fd {}): socket inode {sock_ino}",
        if is_sock { "socket" } else { "not a socket" },
        raw(&l)
    ));
    let socks = crate::observe::unix()?;
    let listener = socks
        .iter()
        .find(|s| path_of(s).as_deref() == Some(path_s.as_str()) && s.state == State::Listen)
        .cloned();
    cx.show(listener.iter());
    cx.check_eq("the path is a socket file", true, is_sock);
    cx.check(
        "the file's inode is not the socket's inode",
        format!("!= {sock_ino}"),
        file_ino.to_string(),
        file_ino != sock_ino,
    );
    cx.check_eq(
        "unix_diag: listener's inode = fstat(fd).st_ino",
        sock_ino,
        listener.as_ref().map_or(0, local_inode),
    );
    cx.check_eq(
        "backlog (Send-Q of a UNIX listener)",
        4,
        listener.as_ref().map_or("-".into(), |s| q(s.send_q)),
    );

    cx.step("two clients connect(); nobody has accepted yet");
    let mut clients = Vec::new();
    for _ in 0..2 {
        let c = unix_socket()?;
        rustix::net::connect(&c, &sa).map_err(sys("connect"))?;
        clients.push(c);
    }
    let socks = crate::observe::unix()?;
    let listener = socks.iter().find(|s| local_inode(s) == sock_ino).cloned();
    cx.show(listener.iter());
    cx.check_eq(
        "pending connections (Recv-Q of a UNIX listener)",
        2,
        listener.as_ref().map_or("-".into(), |s| q(s.recv_q)),
    );

    cx.step("accept4() both");
    let mut accepted = Vec::new();
    for _ in 0..2 {
        accepted.push(accept(&l)?);
    }
    let socks = crate::observe::unix()?;
    let mine: Vec<&Socket> = clients
        .iter()
        .chain(accepted.iter())
        .filter_map(|fd| socks.iter().find(|s| local_inode(s) == inode(fd)))
        .collect();
    cx.show(mine.iter().copied());
    for (c, a) in clients.iter().zip(&accepted) {
        let (ci, ai) = (inode(c), inode(a));
        let cs = socks.iter().find(|s| local_inode(s) == ci);
        let as_ = socks.iter().find(|s| local_inode(s) == ai);
        cx.check_eq(
            format!("client {ci} and accepted {ai} name each other as peer"),
            format!("{ai} {ci}"),
            format!("{} {}", cs.map_or(0, peer_inode), as_.map_or(0, peer_inode)),
        );
        cx.check_eq(
            format!("accepted {ai} carries the listener's path; client {ci} has none"),
            format!("{path_s} -"),
            format!(
                "{} {}",
                as_.and_then(path_of).unwrap_or("-".into()),
                cs.and_then(path_of).unwrap_or("-".into())
            ),
        );
        cx.check_eq(
            format!("accepted {ai}: owner"),
            format!("pid {} fd {}", cx.me, raw(a)),
            as_.map_or("-".into(), owner_pairs),
        );
    }
    drop((accepted, clients, l));
    Ok(())
}
