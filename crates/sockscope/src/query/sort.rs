//! Sorting sockets for display. The kernel's order (hash order) is the
//! default, as in ss; `--sort` picks a key.

use crate::model::{Endpoint, Socket};
use std::cmp::Ordering;

/// What to sort by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// Protocol, then state, then local endpoint.
    Proto,
    /// State (kernel order), then local endpoint.
    State,
    /// Local address and port.
    Local,
    /// Peer address and port.
    Peer,
    /// Local port.
    Port,
    /// Receive queue, largest first.
    RecvQ,
    /// Send queue, largest first.
    SendQ,
    /// First owner's pid (unowned last).
    Pid,
    /// Socket inode.
    Inode,
}

impl SortKey {
    pub const NAMES: &'static [&'static str] = &[
        "proto", "state", "local", "peer", "port", "recv-q", "send-q", "pid", "inode",
    ];

    pub fn parse(s: &str) -> Option<SortKey> {
        Some(match s {
            "proto" | "netid" => SortKey::Proto,
            "state" => SortKey::State,
            "local" | "src" => SortKey::Local,
            "peer" | "dst" => SortKey::Peer,
            "port" | "sport" => SortKey::Port,
            "recv-q" | "recvq" | "rq" => SortKey::RecvQ,
            "send-q" | "sendq" | "sq" => SortKey::SendQ,
            "pid" | "process" => SortKey::Pid,
            "inode" => SortKey::Inode,
            _ => return None,
        })
    }
}

fn endpoint_key(e: &Endpoint) -> (u8, Vec<u8>, u16, u64) {
    match e {
        Endpoint::Inet { addr, port } => {
            let bytes = match addr {
                std::net::IpAddr::V4(a) => a.octets().to_vec(),
                std::net::IpAddr::V6(a) => a.octets().to_vec(),
            };
            (0, bytes, *port, 0)
        }
        Endpoint::Unix { path, inode } => (
            1,
            path.as_deref().unwrap_or("").as_bytes().to_vec(),
            0,
            *inode,
        ),
        Endpoint::Unknown => (2, Vec::new(), 0, 0),
    }
}

fn cmp_by(a: &Socket, b: &Socket, key: SortKey) -> Ordering {
    let local = || endpoint_key(&a.local).cmp(&endpoint_key(&b.local));
    match key {
        SortKey::Proto => a
            .proto
            .cmp(&b.proto)
            .then(a.state.cmp(&b.state))
            .then_with(local),
        SortKey::State => a.state.cmp(&b.state).then_with(local),
        SortKey::Local => local(),
        SortKey::Peer => endpoint_key(&a.peer)
            .cmp(&endpoint_key(&b.peer))
            .then_with(local),
        SortKey::Port => a.local.port().cmp(&b.local.port()).then_with(local),
        SortKey::RecvQ => b.recv_q.cmp(&a.recv_q).then_with(local),
        SortKey::SendQ => b.send_q.cmp(&a.send_q).then_with(local),
        SortKey::Pid => {
            let p = |s: &Socket| s.owners.first().map(|o| o.pid).unwrap_or(u32::MAX);
            p(a).cmp(&p(b)).then_with(local)
        }
        SortKey::Inode => a.inode.cmp(&b.inode),
    }
}

/// Sort in place, stably (equal keys keep the kernel's order).
pub fn sort(sockets: &mut [Socket], key: SortKey) {
    sockets.sort_by(|a, b| cmp_by(a, b, key));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn s(port: u16, rq: u32, state: State) -> Socket {
        let mut s = Socket::new(
            Proto::Tcp,
            Family::Inet,
            state,
            Endpoint::Inet {
                addr: "127.0.0.1".parse().unwrap(),
                port,
            },
            Endpoint::Inet {
                addr: "127.0.0.2".parse().unwrap(),
                port: 1,
            },
            SourceKind::Netlink,
        );
        s.recv_q = Some(rq);
        s
    }

    #[test]
    fn keys() {
        let mut v = vec![
            s(80, 5, State::Established),
            s(22, 9, State::Listen),
            s(443, 0, State::Established),
        ];
        sort(&mut v, SortKey::Port);
        let ports: Vec<_> = v.iter().map(|s| s.local.port().unwrap()).collect();
        assert_eq!(ports, [22, 80, 443]);
        sort(&mut v, SortKey::RecvQ);
        let rq: Vec<_> = v.iter().map(|s| s.recv_q.unwrap()).collect();
        assert_eq!(rq, [9, 5, 0]);
        sort(&mut v, SortKey::State);
        assert_eq!(v[2].state, State::Listen);
        assert_eq!(v[0].local.port(), Some(80));
        for n in SortKey::NAMES {
            assert!(SortKey::parse(n).is_some(), "{n}");
        }
        assert_eq!(SortKey::parse("bogus"), None);
    }
}
