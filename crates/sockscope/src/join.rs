//! Join: attach owners (process fds) to sockets by inode. Pure functions.

use crate::model::Socket;
use crate::source::owners::OwnerScan;

/// Fill `owners` of every socket from an owner scan. Sockets with inode 0
/// (TIME-WAIT and request sockets have no file) get none.
pub fn attach_owners(sockets: &mut [Socket], scan: &OwnerScan) {
    for s in sockets {
        if s.inode != 0 {
            s.owners = scan.owners(s.inode).to_vec();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn sock(inode: u64) -> Socket {
        Socket {
            proto: Proto::Tcp,
            family: Family::Inet,
            state: State::Listen,
            recv_q: Some(0),
            send_q: Some(128),
            local: Endpoint::Inet {
                addr: "0.0.0.0".parse().unwrap(),
                port: 80,
            },
            peer: Endpoint::Inet {
                addr: "0.0.0.0".parse().unwrap(),
                port: 0,
            },
            inode,
            uid: Some(0),
            cookie: None,
            cgroup_id: None,
            shutdown: None,
            v6only: None,
            bound_ifindex: None,
            timer: None,
            netns: None,
            source: SourceKind::Netlink,
            tcp_info: None,
            skmem: None,
            cong: None,
            owners: vec![],
        }
    }

    #[test]
    fn every_owner_of_a_shared_socket_is_attached() {
        let mut scan = OwnerScan::default();
        let o = |pid| Owner {
            pid,
            fd: 3,
            comm: "nginx".into(),
            uid: Some(0),
        };
        scan.by_inode.insert(10, vec![o(1), o(2)]);
        scan.by_inode.insert(0, vec![o(9)]);
        let mut v = vec![sock(10), sock(11), sock(0)];
        attach_owners(&mut v, &scan);
        assert_eq!(v[0].owners, vec![o(1), o(2)]);
        assert!(v[1].owners.is_empty());
        assert!(v[2].owners.is_empty(), "inode 0 must never match an owner");
    }
}
