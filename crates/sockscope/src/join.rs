//! Join: attach owners (process fds) to sockets by inode. Pure functions.

use crate::model::OwnerScan;
use crate::model::Socket;

/// Fill `owners` of every socket from an owner scan. Sockets with inode 0
/// (TIME-WAIT and request sockets have no file) get none.
pub fn attach_owners(sockets: &mut [Socket], scan: &OwnerScan) {
    for s in sockets {
        if s.inode != 0 {
            s.owners = scan.owners(s.inode);
        }
    }
}

/// Like [`attach_owners`], then drop the scan's table (keeping its
/// counts). Used when the scan is not needed afterwards.
pub fn take_owners(sockets: &mut [Socket], scan: &mut OwnerScan) {
    attach_owners(sockets, scan);
    scan.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn sock(inode: u64) -> Socket {
        let mut s = Socket::new(
            Proto::Tcp,
            Family::Inet,
            State::Listen,
            Endpoint::Inet {
                addr: "0.0.0.0".parse().unwrap(),
                port: 80,
            },
            Endpoint::Inet {
                addr: "0.0.0.0".parse().unwrap(),
                port: 0,
            },
            SourceKind::Netlink,
        );
        s.recv_q = Some(0);
        s.send_q = Some(128);
        s.inode = inode;
        s.uid = Some(0);
        s
    }

    #[test]
    fn every_owner_of_a_shared_socket_is_attached() {
        let o = |pid| Owner {
            pid,
            fd: 3,
            comm: "nginx".into(),
            uid: Some(0),
            tid: None,
        };
        let mut scan = OwnerScan::from_pairs(vec![(10, o(2)), (10, o(1)), (0, o(9))], 0, 3);
        let mut v = vec![sock(10), sock(11), sock(0)];
        attach_owners(&mut v, &scan);
        assert_eq!(v[0].owners, vec![o(1), o(2)]);
        assert!(v[1].owners.is_empty());
        assert!(v[2].owners.is_empty(), "inode 0 must never match an owner");
        let mut w = vec![sock(10), sock(0)];
        take_owners(&mut w, &mut scan);
        assert_eq!(w[0].owners, vec![o(1), o(2)]);
        assert!(w[1].owners.is_empty());
        assert!(scan.owners(10).is_empty(), "pairs are dropped after take");
    }
}
