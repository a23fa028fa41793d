//! A private, anonymous network namespace for one scenario.
//!
//! [`run_private`] starts a thread, moves that thread alone into a new
//! network namespace (`unshare(CLONE_NEWNET)`), brings its loopback up with
//! SIOCSIFFLAGS and runs the scenario there. Sockets made by the thread (and
//! by threads and processes it starts) belong to the namespace;
//! `/proc/thread-self/net` and the `net.*` sysctls under /proc/sys read it.
//! Nothing names the namespace (no /run/netns entry), so it disappears with
//! its last socket and process: when the scenario ends, fails, panics, or the
//! whole program is killed by Ctrl-C.

use crate::abi::{
    ETHTOOL_GTSO, ETHTOOL_STSO, EthtoolValue, IFF_UP, IFNAMSIZ, IfreqData, IfreqFlags, SIOCETHTOOL,
    SIOCGIFFLAGS, SIOCSIFFLAGS,
};
use rustix::fd::AsRawFd;
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use std::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error(
        "cannot create a private network namespace: unshare(CLONE_NEWNET): {0} \
(the lab needs CAP_SYS_ADMIN: run it as root, e.g. `sudo sockscope lab run ...`)"
    )]
    Denied(std::io::Error),
    #[error("cannot create a private network namespace: unshare(CLONE_NEWNET): {0}")]
    Unshare(std::io::Error),
    #[error("cannot bring the loopback interface up in the new namespace: {0}")]
    Loopback(std::io::Error),
    #[error("the scenario thread panicked: {0}")]
    Panicked(String),
}

impl sockscope::error::Classify for NetnsError {
    fn kind(&self) -> sockscope::error::Kind {
        match self {
            NetnsError::Denied(_) => sockscope::error::Kind::Privilege,
            _ => sockscope::error::Kind::System,
        }
    }
}

/// Bring interface `name` up (SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP)
/// in the calling thread's namespace.
pub fn link_up(name: &str) -> std::io::Result<()> {
    let s = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    let mut req = IfreqFlags::named(name);
    // SAFETY: the ioctls read and write a correctly sized struct ifreq.
    unsafe {
        if libc::ioctl(
            s.as_raw_fd(),
            SIOCGIFFLAGS as _,
            &mut req as *mut IfreqFlags,
        ) < 0
        {
            return Err(std::io::Error::last_os_error());
        }
        req.flags |= IFF_UP;
        if libc::ioctl(
            s.as_raw_fd(),
            SIOCSIFFLAGS as _,
            &mut req as *mut IfreqFlags,
        ) < 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Turn TCP segmentation offload of interface `name` on or off (the legacy
/// ETHTOOL_STSO request, what `ethtool -K NAME tso off` sends), then read
/// it back: the value the device now has.
pub fn set_tso(name: &str, on: bool) -> std::io::Result<bool> {
    let s = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    let mut val = EthtoolValue {
        cmd: ETHTOOL_STSO,
        data: u32::from(on),
    };
    let mut req = IfreqData {
        name: [0; IFNAMSIZ],
        data: &mut val,
        pad: [0; 24 - std::mem::size_of::<usize>()],
    };
    let n = name.len().min(IFNAMSIZ - 1);
    req.name[..n].copy_from_slice(&name.as_bytes()[..n]);
    // SAFETY: req is a correctly sized ifreq whose data points to a live
    // ethtool_value for the duration of each call.
    unsafe {
        if libc::ioctl(s.as_raw_fd(), SIOCETHTOOL as _, &mut req as *mut IfreqData) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        val.cmd = ETHTOOL_GTSO;
        val.data = 0;
        req.data = &mut val;
        if libc::ioctl(s.as_raw_fd(), SIOCETHTOOL as _, &mut req as *mut IfreqData) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(val.data != 0)
}

type Job = Box<dyn FnOnce() + Send>;

/// A second private network namespace, for scenarios that need two hosts:
/// a thread that moved into a new namespace (loopback up) and runs the jobs
/// it is given there. Sockets it creates belong to that namespace and may be
/// used from any thread; processes it starts (`ip`) act on it. The
/// namespace goes when the thread and the last socket made in it do.
pub struct Peer {
    tx: Option<mpsc::Sender<Job>>,
    handle: Option<std::thread::JoinHandle<()>>,
    tid: i32,
}

impl Peer {
    pub fn new() -> Result<Peer, NetnsError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("sockscope-peer".into())
            .spawn(move || {
                let r = enter_new().map(|()| rustix::thread::gettid().as_raw_nonzero().get());
                let ok = r.is_ok();
                let _ = ready_tx.send(r);
                if ok {
                    for job in rx {
                        job();
                    }
                }
            })
            .map_err(NetnsError::Unshare)?;
        let tid = ready_rx
            .recv()
            .map_err(|_| NetnsError::Panicked("the peer namespace thread ended".into()))??;
        Ok(Peer {
            tx: Some(tx),
            handle: Some(handle),
            tid,
        })
    }

    /// A path naming the peer namespace (for `ip link set DEV netns PATH`).
    pub fn ns_path(&self) -> String {
        format!("/proc/{}/task/{}/ns/net", std::process::id(), self.tid)
    }

    /// Run `f` in the peer namespace and return what it returned.
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, NetnsError> {
        let (rtx, rrx) = mpsc::channel();
        let gone = || NetnsError::Panicked("the peer namespace thread ended".into());
        self.tx
            .as_ref()
            .ok_or_else(gone)?
            .send(Box::new(move || {
                let _ = rtx.send(f());
            }))
            .map_err(|_| gone())?;
        rrx.recv().map_err(|_| gone())
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Move the calling thread into a new network namespace and bring lo up.
fn enter_new() -> Result<(), NetnsError> {
    // SAFETY: CLONE_NEWNET changes only this thread's network namespace.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }.map_err(
        |e| match e {
            rustix::io::Errno::PERM | rustix::io::Errno::ACCESS => NetnsError::Denied(e.into()),
            _ => NetnsError::Unshare(e.into()),
        },
    )?;
    link_up("lo").map_err(NetnsError::Loopback)
}

/// Run `f` on a new thread inside a new network namespace with lo up.
pub fn run_private<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, NetnsError> {
    std::thread::scope(|s| {
        let h = std::thread::Builder::new()
            .name("sockscope-lab".into())
            .spawn_scoped(s, || {
                // SAFETY: CLONE_NEWNET changes only this thread's network
                // namespace; no other thread's view of memory or files moves.
                unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }
                    .map_err(|e| match e {
                        rustix::io::Errno::PERM | rustix::io::Errno::ACCESS => {
                            NetnsError::Denied(e.into())
                        }
                        _ => NetnsError::Unshare(e.into()),
                    })?;
                link_up("lo").map_err(NetnsError::Loopback)?;
                Ok(f())
            })
            .map_err(NetnsError::Unshare)?;
        h.join().unwrap_or_else(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(NetnsError::Panicked(msg))
        })
    })
}

/// The inode of the calling thread's network namespace.
pub fn current_inode() -> Option<u64> {
    rustix::fs::stat("/proc/thread-self/ns/net")
        .ok()
        .map(|s| s.st_ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_namespace_is_new_and_has_lo_up() {
        if !rustix::process::geteuid().is_root() {
            // Without CAP_SYS_ADMIN the error must say what to do.
            let e = run_private(|| ()).unwrap_err();
            assert_eq!(
                sockscope::error::Classify::kind(&e),
                sockscope::error::Kind::Privilege,
                "{e}"
            );
            assert!(e.to_string().contains("run it as root"), "{e}");
            return;
        }
        let outside = current_inode().unwrap();
        let (inside, connected) = run_private(|| {
            // Loopback traffic only flows when lo is up.
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let c = std::net::TcpStream::connect(l.local_addr().unwrap());
            (current_inode().unwrap(), c.is_ok())
        })
        .unwrap();
        assert_ne!(inside, outside);
        assert!(connected, "lo is not up in the new namespace");
        // Our own thread never moved.
        assert_eq!(current_inode().unwrap(), outside);
    }

    #[test]
    fn a_peer_runs_its_jobs_in_a_second_namespace_and_tso_can_be_turned_off() {
        if !rustix::process::geteuid().is_root() {
            let e = Peer::new()
                .err()
                .expect("a peer namespace without privilege");
            assert_eq!(
                sockscope::error::Classify::kind(&e),
                sockscope::error::Kind::Privilege,
                "{e}"
            );
            return;
        }
        let (here, there, tso) = run_private(|| {
            let peer = Peer::new().unwrap();
            let there = peer.run(|| current_inode().unwrap()).unwrap();
            // A job's sockets live in the peer namespace: a listener there is
            // not reachable from here.
            let l = peer
                .run(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
                .unwrap();
            let port = l.local_addr().unwrap().port();
            assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
            drop(l);
            // A veth pair whose far end is in the peer: TSO off, read back, on.
            let st = std::process::Command::new("ip")
                .args([
                    "link", "add", "sst0", "type", "veth", "peer", "name", "sst1", "netns",
                ])
                .arg(peer.ns_path())
                .status()
                .expect("ip (iproute2) is needed for this test");
            assert!(st.success());
            let tso = (
                set_tso("sst0", false).unwrap(),
                set_tso("sst0", true).unwrap(),
            );
            let e = set_tso("no-such-dev", false).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENODEV), "{e}");
            (current_inode().unwrap(), there, tso)
        })
        .unwrap();
        assert_ne!(here, there);
        assert_eq!(tso, (false, true));
    }
}
