//! Owners: which process file descriptors refer to which socket.
//!
//! No kernel table gives the pid of a socket. The only general answer is the
//! processes' fd tables: every `/proc/PID/fd/N` that is a symlink to
//! `socket:[INODE]`. One pass over all of them builds `inode -> owners`.
//!
//! - Only thread group leaders are listed in /proc, so threads (which share
//!   one fd table) do not produce duplicate owners.
//! - A socket shared after fork or passed with SCM_RIGHTS has several owners;
//!   all are kept.
//! - Processes and fds vanish while we read: ENOENT and ESRCH are skipped
//!   silently. A process whose fd table we may not read (EACCES, EPERM) is
//!   counted in [`OwnerScan::denied`] so the caller can say once what
//!   privilege is missing.
//!
//! The scan uses directory fds and `readlinkat` relative to them (no path
//! walking per fd) and splits the processes over the machine's cores.

use crate::model::Owner;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{self, Dir, Mode, OFlags};
use rustix::io::Errno;
use std::collections::HashMap;

/// The result of one scan of every process's fd table.
#[derive(Debug, Default)]
pub struct OwnerScan {
    /// Socket inode -> every (pid, fd) holding it, sorted by pid then fd.
    pub by_inode: HashMap<u64, Vec<Owner>>,
    /// Processes whose fd table could not be read for lack of privilege.
    pub denied: usize,
    /// Processes looked at.
    pub processes: usize,
}

impl OwnerScan {
    pub fn owners(&self, inode: u64) -> &[Owner] {
        self.by_inode.get(&inode).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Why a scan could not run at all (individual processes never fail it).
#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    #[error("cannot read {0}: {1} (is /proc mounted?)")]
    Proc(String, std::io::Error),
}

/// Scan every process under `proc_root` (normally "/proc").
pub fn scan(proc_root: &str) -> Result<OwnerScan, OwnerError> {
    let root = fs::open(
        proc_root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| OwnerError::Proc(proc_root.into(), e.into()))?;
    let pids = list_pids(&root).map_err(|e| OwnerError::Proc(proc_root.into(), e.into()))?;

    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    // Few processes: threads cost more than they save.
    let threads = if pids.len() < 64 { 1 } else { threads };
    let chunk = pids.len().div_ceil(threads).max(1);

    let parts: Vec<Partial> = if threads == 1 {
        vec![scan_pids(&root, &pids)]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = pids
                .chunks(chunk)
                .map(|c| {
                    let root = &root;
                    s.spawn(move || scan_pids(root, c))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        })
    };

    let mut out = OwnerScan {
        processes: pids.len(),
        ..Default::default()
    };
    let total: usize = parts.iter().map(|p| p.pairs.len()).sum();
    out.by_inode.reserve(total);
    for p in parts {
        out.denied += p.denied;
        for (inode, owner) in p.pairs {
            out.by_inode.entry(inode).or_default().push(owner);
        }
    }
    for v in out.by_inode.values_mut() {
        if v.len() > 1 {
            v.sort();
        }
    }
    Ok(out)
}

#[derive(Default)]
struct Partial {
    pairs: Vec<(u64, Owner)>,
    denied: usize,
}

fn list_pids(root: &OwnedFd) -> rustix::io::Result<Vec<u32>> {
    let mut pids = Vec::new();
    let mut dir = Dir::read_from(root)?;
    while let Some(ent) = dir.read() {
        let ent = ent?;
        if let Some(pid) = parse_u32(ent.file_name().to_bytes()) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

fn parse_u32(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 10 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(c - b'0');
    }
    u32::try_from(n).ok()
}

/// Parse `socket:[12345]` into 12345.
pub fn socket_inode(link: &[u8]) -> Option<u64> {
    let rest = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    if rest.is_empty() || rest.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in rest {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(n)
}

fn scan_pids(root: &OwnedFd, pids: &[u32]) -> Partial {
    let mut part = Partial::default();
    let mut link = Vec::with_capacity(64);
    let mut path = String::with_capacity(32);
    for &pid in pids {
        path.clear();
        use std::fmt::Write;
        let _ = write!(path, "{pid}/fd");
        let fd_dir = match fs::openat(
            root,
            path.as_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(d) => d,
            Err(Errno::ACCESS | Errno::PERM) => {
                part.denied += 1;
                continue;
            }
            Err(_) => continue, // gone (ENOENT, ESRCH) or not a process
        };
        let Ok(mut dir) = Dir::read_from(&fd_dir) else {
            continue;
        };
        let mut proc_info: Option<(String, Option<u32>)> = None;
        while let Some(ent) = dir.read() {
            let Ok(ent) = ent else { break };
            let Some(fd) = parse_u32(ent.file_name().to_bytes()) else {
                continue;
            };
            link.clear();
            let Ok(target) = fs::readlinkat(&fd_dir, ent.file_name(), std::mem::take(&mut link))
            else {
                continue; // fd closed meanwhile
            };
            let inode = socket_inode(target.as_bytes());
            link = target.into_bytes();
            let Some(inode) = inode else { continue };
            let (comm, uid) = proc_info.get_or_insert_with(|| process_info(root, pid));
            part.pairs.push((
                inode,
                Owner {
                    pid,
                    fd,
                    comm: comm.clone(),
                    uid: *uid,
                },
            ));
        }
    }
    part
}

/// Command name and real uid of a process; empty/None if it vanished.
fn process_info(root: &OwnedFd, pid: u32) -> (String, Option<u32>) {
    let uid = fs::statat(root, pid.to_string(), fs::AtFlags::empty())
        .ok()
        .map(|st| st.st_uid);
    let comm = read_small(root, &format!("{pid}/comm"))
        .map(|s| s.trim_end_matches('\n').to_string())
        .unwrap_or_default();
    (comm, uid)
}

fn read_small(root: impl AsFd, path: &str) -> Option<String> {
    let fd = fs::openat(root, path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let mut buf = [0u8; 256];
    let n = rustix::io::read(&fd, &mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn parses_socket_links() {
        assert_eq!(socket_inode(b"socket:[35587]"), Some(35587));
        assert_eq!(socket_inode(b"socket:[]"), None);
        assert_eq!(socket_inode(b"pipe:[35587]"), None);
        assert_eq!(socket_inode(b"socket:[12a]"), None);
        assert_eq!(socket_inode(b"socket:[99999999999999999999]"), None);
        assert_eq!(socket_inode(b"/dev/pts/1"), None);
    }

    #[test]
    fn finds_this_process_as_owner_of_its_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let ino = std::fs::metadata(format!("/proc/self/fd/{}", l.as_raw_fd()))
            .unwrap()
            .ino();
        let scan = scan("/proc").unwrap();
        let owners = scan.owners(ino);
        assert_eq!(owners.len(), 1, "{owners:?}");
        assert_eq!(owners[0].pid, std::process::id());
        assert_eq!(owners[0].fd, l.as_raw_fd() as u32);
        assert!(scan.processes >= 1);
    }

    #[test]
    fn missing_proc_root_is_an_error_naming_it() {
        let e = scan("/nonexistent-proc").unwrap_err();
        assert!(e.to_string().contains("/nonexistent-proc"), "{e}");
    }
}
