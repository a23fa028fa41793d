//! Network namespaces: find them, name them, and run a read inside one.
//!
//! A namespace is identified by the inode of its nsfs file. Named namespaces
//! live under /run/netns (what `ip netns add` makes); every process's is at
//! /proc/PID/ns/net. Reading a namespace's sockets means opening the netlink
//! socket (or reading /proc/thread-self/net/*) from a thread that has
//! entered it with setns(2); the thread is thrown away afterwards so the
//! caller's own namespace never changes.

// Unsafe only for the SIOCGSKNS ioctl, which rustix does not wrap.
#![allow(unsafe_code)]

use crate::model::Netns;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{self, Mode, OFlags};
use rustix::io::Errno;
use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
use std::collections::HashSet;

pub const RUN_NETNS: &str = "/run/netns";

/// Which namespace(s) to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetnsTarget {
    /// The namespace sockscope runs in.
    Current,
    /// /run/netns/NAME.
    Named(String),
    /// The namespace of process PID.
    Pid(u32),
    /// Every distinct namespace reachable from /proc/*/ns/net and /run/netns.
    All,
}

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error(
        "no network namespace named '{name}': {RUN_NETNS}/{name} does not exist (list them with `ip netns list`, or use --netns-pid PID)"
    )]
    NoSuchName { name: String },
    #[error(
        "no process {pid}: /proc/{pid}/ns/net does not exist (is the pid right and still running?)"
    )]
    NoSuchPid { pid: u32 },
    #[error(
        "not allowed to enter network namespace {what}: {source} (entering another namespace needs CAP_SYS_ADMIN: run as root)"
    )]
    Denied {
        what: String,
        source: std::io::Error,
    },
    #[error("cannot open network namespace {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("invalid network namespace name '{0}': use the bare name shown by `ip netns list`")]
    BadName(String),
}

impl crate::error::Classify for NetnsError {
    fn kind(&self) -> crate::error::Kind {
        use crate::error::Kind;
        match self {
            NetnsError::NoSuchName { .. }
            | NetnsError::NoSuchPid { .. }
            | NetnsError::BadName(_) => Kind::Usage,
            NetnsError::Denied { .. } => Kind::Privilege,
            NetnsError::Io { .. } => Kind::System,
        }
    }
}

/// An opened namespace: its identity and an fd to setns() into.
pub struct OpenNetns {
    pub id: Netns,
    pub fd: OwnedFd,
    /// False for the namespace we already run in (no setns needed).
    pub foreign: bool,
}

impl OpenNetns {
    /// A namespace from an open nsfs fd.
    pub fn from_fd(fd: OwnedFd) -> Result<OpenNetns, Errno> {
        let inode = fs::fstat(&fd)?.st_ino;
        Ok(OpenNetns {
            id: Netns {
                inode,
                name: name_of(inode, &named()),
            },
            fd,
            foreign: Some(inode) != current_inode(),
        })
    }
}

/// The namespace of the socket that fd `fd` of process `pid` holds. A
/// socket may be passed (SCM_RIGHTS, fork before setns) to a process of
/// another namespace, so the process's namespace is not always the
/// socket's; the socket itself knows. The fd is duplicated into this
/// process with pidfd_getfd (ptrace access needed: root) and asked with
/// SIOCGSKNS, then closed. `None` when that cannot be done.
pub fn of_socket(pid: u32, fd: u32) -> Option<OpenNetns> {
    const SIOCGSKNS: libc::c_ulong = 0x894C; // include/uapi/linux/sockios.h
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)?;
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()?;
    let sock = rustix::process::pidfd_getfd(
        &pidfd,
        i32::try_from(fd).ok()?,
        rustix::process::PidfdGetfdFlags::empty(),
    )
    .ok()?;
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: SIOCGSKNS takes no argument and returns a new fd (or -1).
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCGSKNS as _, 0) };
    if r < 0 {
        return None;
    }
    // SAFETY: on success the ioctl returned a new fd that we now own.
    let ns = unsafe { OwnedFd::from_raw_fd(r) };
    OpenNetns::from_fd(ns).ok()
}

fn open_ns(path: &str) -> Result<(OwnedFd, u64), Errno> {
    let fd = fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let st = fs::fstat(&fd)?;
    Ok((fd, st.st_ino))
}

/// The inode of the namespace this thread runs in.
pub fn current_inode() -> Option<u64> {
    fs::stat("/proc/thread-self/ns/net").ok().map(|s| s.st_ino)
}

/// Names under /run/netns with their inodes.
pub fn named() -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(RUN_NETNS) else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Ok(st) = fs::stat(e.path()) {
            out.push((name, st.st_ino));
        }
    }
    out.sort();
    out
}

fn name_of(inode: u64, names: &[(String, u64)]) -> Option<String> {
    names
        .iter()
        .find(|(_, i)| *i == inode)
        .map(|(n, _)| n.clone())
}

/// Open the namespaces a target names.
pub fn open(target: &NetnsTarget) -> Result<Vec<OpenNetns>, NetnsError> {
    open_warn(target).map(|(v, _)| v)
}

/// [`open`], and what the user must be told about namespaces that were
/// left out: with `--all-netns`, processes whose namespace this process
/// may not look at (each could be in a namespace not listed).
pub fn open_warn(target: &NetnsTarget) -> Result<(Vec<OpenNetns>, Vec<String>), NetnsError> {
    let mut warnings = Vec::new();
    let v = open_inner(target, &mut warnings)?;
    Ok((v, warnings))
}

fn open_inner(
    target: &NetnsTarget,
    warnings: &mut Vec<String>,
) -> Result<Vec<OpenNetns>, NetnsError> {
    let cur = current_inode();
    let names = named();
    let mk = |fd: OwnedFd, inode: u64| OpenNetns {
        id: Netns {
            inode,
            name: name_of(inode, &names),
        },
        fd,
        foreign: Some(inode) != cur,
    };
    match target {
        NetnsTarget::Current => {
            let (fd, ino) = open_ns("/proc/thread-self/ns/net").map_err(|e| NetnsError::Io {
                what: "of this process".into(),
                source: e.into(),
            })?;
            Ok(vec![mk(fd, ino)])
        }
        NetnsTarget::Named(name) => {
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                return Err(NetnsError::BadName(name.clone()));
            }
            let path = format!("{RUN_NETNS}/{name}");
            match open_ns(&path) {
                Ok((fd, ino)) => {
                    let mut n = mk(fd, ino);
                    n.id.name = Some(name.clone());
                    Ok(vec![n])
                }
                Err(Errno::NOENT) => Err(NetnsError::NoSuchName { name: name.clone() }),
                Err(e @ (Errno::ACCESS | Errno::PERM)) => Err(NetnsError::Denied {
                    what: path,
                    source: e.into(),
                }),
                Err(e) => Err(NetnsError::Io {
                    what: path,
                    source: e.into(),
                }),
            }
        }
        NetnsTarget::Pid(pid) => {
            let path = format!("/proc/{pid}/ns/net");
            match open_ns(&path).or_else(|e| thread_ns(*pid).ok_or(e)) {
                Ok((fd, ino)) => Ok(vec![mk(fd, ino)]),
                Err(Errno::NOENT | Errno::SRCH) => Err(NetnsError::NoSuchPid { pid: *pid }),
                Err(e @ (Errno::ACCESS | Errno::PERM)) => Err(NetnsError::Denied {
                    what: format!("of process {pid} ({path})"),
                    source: e.into(),
                }),
                Err(e) => Err(NetnsError::Io {
                    what: path,
                    source: e.into(),
                }),
            }
        }
        NetnsTarget::All => {
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            // Our own first, then named ones, then every process's.
            if let Ok((fd, ino)) = open_ns("/proc/thread-self/ns/net")
                && seen.insert(ino)
            {
                out.push(mk(fd, ino));
            }
            for (name, _) in &names {
                if let Ok((fd, ino)) = open_ns(&format!("{RUN_NETNS}/{name}"))
                    && seen.insert(ino)
                {
                    out.push(mk(fd, ino));
                }
            }
            let (mut denied, mut named_denied) = (0usize, 0usize);
            for (name, _) in &names {
                if matches!(
                    open_ns(&format!("{RUN_NETNS}/{name}")),
                    Err(Errno::ACCESS | Errno::PERM)
                ) {
                    named_denied += 1;
                }
            }
            if let Ok(rd) = std::fs::read_dir("/proc") {
                for e in rd.flatten() {
                    let n = e.file_name();
                    let Some(n) = n.to_str() else { continue };
                    if !n.bytes().all(|c| c.is_ascii_digit()) {
                        continue;
                    }
                    // Cheap identity check first: stat, then open only new ones.
                    let path = format!("/proc/{n}/ns/net");
                    let st = match fs::stat(&path) {
                        Ok(st) => st,
                        Err(Errno::ACCESS | Errno::PERM) => {
                            denied += 1;
                            continue;
                        }
                        Err(_) => continue, // exited meanwhile
                    };
                    if seen.contains(&st.st_ino) {
                        continue;
                    }
                    match open_ns(&path) {
                        Ok((fd, ino)) => {
                            if seen.insert(ino) {
                                out.push(mk(fd, ino));
                            }
                        }
                        Err(Errno::ACCESS | Errno::PERM) => denied += 1,
                        Err(_) => {}
                    }
                }
            }
            if denied > 0 {
                warnings.push(format!(
                    "could not look at the network namespace of {denied} processes (permission denied), \
so namespaces only they use are not listed; run as root (or with CAP_SYS_PTRACE) to see every namespace"
                ));
            }
            if named_denied > 0 {
                warnings.push(format!(
                    "could not open {named_denied} of the namespaces named under {RUN_NETNS} (permission denied); run as root to read them"
                ));
            }
            Ok(out)
        }
    }
}

/// The namespace of a live thread of `pid`: when the main thread has
/// exited (a zombie leader) its own `ns/net` is gone while the threads,
/// and their sockets, live on.
fn thread_ns(pid: u32) -> Option<(OwnedFd, u64)> {
    let rd = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    rd.flatten().find_map(|t| {
        let tid = t.file_name();
        open_ns(&format!("/proc/{pid}/task/{}/ns/net", tid.to_str()?)).ok()
    })
}

/// Run `f` in namespace `ns`. For the current namespace it runs on this
/// thread; otherwise on a new thread that enters `ns` first.
pub fn run_in<T: Send>(ns: &OpenNetns, f: impl FnOnce() -> T + Send) -> Result<T, NetnsError> {
    if !ns.foreign {
        return Ok(f());
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            move_into_link_name_space(ns.fd.as_fd(), Some(LinkNameSpaceType::Network)).map_err(
                |e| {
                    let what = ns.id.to_string();
                    if matches!(e, Errno::PERM | Errno::ACCESS) {
                        NetnsError::Denied {
                            what,
                            source: e.into(),
                        }
                    } else {
                        NetnsError::Io {
                            what,
                            source: e.into(),
                        }
                    }
                },
            )?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| {
            Err(NetnsError::Io {
                what: ns.id.to_string(),
                source: std::io::Error::other("reader thread panicked"),
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_rejected_before_touching_the_fs() {
        for n in ["", "a/b", "..", "."] {
            assert!(matches!(
                open(&NetnsTarget::Named(n.into())),
                Err(NetnsError::BadName(_))
            ));
        }
    }

    #[test]
    fn missing_name_and_pid_say_what_was_looked_for() {
        let e = open(&NetnsTarget::Named("sockscope-no-such-ns".into()))
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("/run/netns/sockscope-no-such-ns"),
            "{e}"
        );
        let e = open(&NetnsTarget::Pid(999_999_999)).err().unwrap();
        assert!(
            matches!(e, NetnsError::NoSuchPid { pid: 999_999_999 }),
            "{e}"
        );
    }

    #[test]
    fn current_and_all_include_our_namespace() {
        let cur = open(&NetnsTarget::Current).unwrap();
        assert_eq!(cur.len(), 1);
        assert!(!cur[0].foreign);
        assert_eq!(Some(cur[0].id.inode), current_inode());
        let all = open(&NetnsTarget::All).unwrap();
        assert!(all.iter().any(|n| n.id.inode == cur[0].id.inode));
        let mut inodes: Vec<_> = all.iter().map(|n| n.id.inode).collect();
        inodes.sort();
        inodes.dedup();
        assert_eq!(inodes.len(), all.len(), "namespaces listed twice");
    }
}
