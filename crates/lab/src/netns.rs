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

use crate::abi::{IFF_UP, IfreqFlags, SIOCGIFFLAGS, SIOCSIFFLAGS};
use rustix::fd::AsRawFd;
use rustix::net::{AddressFamily, SocketFlags, SocketType};

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

impl NetnsError {
    pub fn is_privilege(&self) -> bool {
        matches!(self, NetnsError::Denied(_))
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
            assert!(e.is_privilege(), "{e}");
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
}
