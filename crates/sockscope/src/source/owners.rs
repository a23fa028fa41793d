//! Owners: which process file descriptors refer to which socket.
//!
//! No kernel table gives the pid of a socket. The only general answer is the
//! processes' fd tables: every `/proc/PID/fd/N` that is a symlink to
//! `socket:[INODE]`. One pass over all of them builds `inode -> owners`.
//!
//! - Only thread group leaders are listed in /proc, so threads that share
//!   one fd table do not produce duplicate owners; a thread with a table of
//!   its own, or the threads of a process whose main thread exited, give
//!   owners labelled with that thread's id (see [`super::fdtable`]).
//! - A socket shared after fork or passed with SCM_RIGHTS has several owners;
//!   all are kept.
//! - Processes and fds vanish while we read: ENOENT and ESRCH are skipped
//!   silently. A process whose fd table we may not read (EACCES, EPERM) is
//!   counted in [`OwnerScan::denied`] so the caller can say once what
//!   privilege is missing.
//!
//! The scan uses directory fds and `statx` relative to them (no path walking
//! per fd). Following `/proc/PID/fd/N` lands on the socket's own inode, so
//! `statx` answers "is it a socket, and which" without the kernel printing
//! `socket:[N]` for us to parse (about a third cheaper than `readlinkat`,
//! measured on 40k fds). The device number is checked against sockfs's, so
//! an O_PATH fd on a UNIX socket *file* is not mistaken for a socket. The
//! processes are split over the machine's cores.

use crate::model::OwnerScanBuilder;
pub use crate::model::owners::OwnerScan;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{self, Dir, Mode, OFlags};
use rustix::io::Errno;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Why a scan could not run at all (individual processes never fail it).
#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    #[error("cannot read {0}: {1} (is /proc mounted?)")]
    Proc(String, std::io::Error),
}

/// How owners will be found: decided (and the BPF program loaded) up front
/// by [`plan`], run later by [`Plan::run`], so the expensive part of the
/// decision (reading kernel BTF) does not overlap the socket dump.
pub enum Plan {
    /// The walk of every task's fd array (`owners_fdt`), loaded (once per
    /// process).
    Fdt(&'static super::owners_fdt::Walk),
    /// The BPF task_file iterator, loaded (once per process), and why the
    /// fd-array walk is not used instead (None: not asked for it).
    Bpf(&'static super::owners_bpf::Loaded, Option<String>),
    /// A BPF iterator that reports only some sockets' fds (see
    /// [`plan_port`]).
    BpfFiltered(super::owners_bpf::Loaded),
    /// The /proc walk, with the reason the iterator is not used.
    Proc(String),
}

/// May this process load the BPF iterator? CAP_BPF and CAP_PERFMON, or
/// CAP_SYS_ADMIN; otherwise why not, as a note.
pub(crate) fn may_bpf() -> Result<(), String> {
    let caps = rustix::thread::capabilities(None).ok();
    let may = caps.is_some_and(|c| {
        use rustix::thread::CapabilitySet as C;
        c.effective.contains(C::SYS_ADMIN)
            || (c.effective.contains(C::BPF) && c.effective.contains(C::PERFMON))
    });
    if may {
        Ok(())
    } else {
        Err("owners: walked /proc (the BPF owner iterator needs CAP_BPF and CAP_PERFMON)".into())
    }
}

/// The fastest scan this process may run: a BPF iterator when it has
/// CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN), BTF, and runs in the initial
/// pid namespace (the walk of every task's fd array on Linux 6.4+, else the
/// task_file walk); otherwise the /proc walk.
pub fn plan() -> Plan {
    if let Err(why) = may_bpf() {
        return Plan::Proc(why);
    }
    let why_not_fdt = if super::owners_fdt::enabled() {
        match super::owners_fdt::prepare() {
            Ok(w) => return Plan::Fdt(w),
            Err(e) => format!("the fd-array walk did not load: {e}"),
        }
    } else {
        format!("{}=0", super::owners_fdt::ENV)
    };
    match super::owners_bpf::prepare() {
        Ok(l) => Plan::Bpf(l, Some(why_not_fdt)),
        Err(e) => Plan::Proc(format!("owners: walked /proc ({e}; {why_not_fdt})")),
    }
}

/// What `-v` says of a walk that found the owners.
pub(crate) const FDT_NOTE: &str = "owners: every task's fd array walked by a BPF task iterator";

/// The same for the task_file walk, with why it was taken.
fn task_file_note(why: &str) -> String {
    format!("owners: fds walked by the BPF task_file iterator ({why})")
}

/// Like [`plan`], for a caller that only needs the owners of sockets bound
/// to local port `port` (TCP, UDP, raw: any socket with a port; not UNIX
/// sockets): the kernel program skips every other fd, so the scan returns
/// a few records instead of every socket fd of the host. Every fd that
/// holds such a socket is still reported (a listener shared by many
/// processes lists them all). The /proc walk, when the iterator cannot
/// be used, returns every socket's owners as [`plan`]'s does.
pub fn plan_port(port: u16) -> Plan {
    if let Err(why) = may_bpf() {
        return Plan::Proc(why);
    }
    match super::owners_bpf::load_filtered(super::owners_bpf::Filter::LocalPort(port)) {
        Ok(l) => Plan::BpfFiltered(l),
        Err(e) => Plan::Proc(format!("owners: walked /proc ({e})")),
    }
}

impl Plan {
    /// Run the scan; the second value is a note for `-v`: which walk
    /// found the owners, and why a slower one was taken, if it was.
    pub fn run(self) -> Result<(OwnerScan, Option<String>), OwnerError> {
        self.run_with(&mut |_| {})
    }

    /// [`run`](Self::run), showing `seen` each fd a filtered BPF walk
    /// finds, as it finds it (see `Loaded::run_with`); the other plans
    /// show nothing before they end.
    pub fn run_with(
        self,
        seen: &mut dyn FnMut(&super::owners_bpf::Record),
    ) -> Result<(OwnerScan, Option<String>), OwnerError> {
        match self {
            Plan::Fdt(w) => match w.run() {
                Ok(s) => bpf(Ok(s)).map(|(s, _)| (s, Some(FDT_NOTE.into()))),
                // A walk that loaded but failed to run: the task_file walk
                // next, /proc last.
                Err(e) => {
                    let why = format!("the fd-array walk failed: {e}");
                    match super::owners_bpf::prepare() {
                        Ok(l) => Plan::Bpf(l, Some(why)).run_with(seen),
                        Err(e2) => Ok((
                            scan("/proc")?,
                            Some(format!("owners: walked /proc ({e2}; {why})")),
                        )),
                    }
                }
            },
            Plan::Bpf(l, why) => bpf(l.run()).map(|(s, note)| {
                // /proc's note says what matters; else name the walk.
                let note = match (note, why) {
                    (Some(n), Some(why)) => Some(format!("{n}; {why}")),
                    (None, Some(why)) => Some(task_file_note(&why)),
                    (n, None) => n,
                };
                (s, note)
            }),
            Plan::BpfFiltered(l) => bpf(l.run_with(seen)),
            Plan::Proc(why) => Ok((scan("/proc")?, Some(why))),
        }
    }
}

/// The result of a BPF walk as a plan's: the scan, or on an error the
/// /proc walk and why it was taken.
pub fn bpf(
    r: Result<OwnerScan, super::owners_bpf::BpfOwnerError>,
) -> Result<(OwnerScan, Option<String>), OwnerError> {
    match r {
        Ok(mut s) => {
            s.via_bpf = true;
            Ok((s, None))
        }
        Err(e) => Ok((scan("/proc")?, Some(format!("owners: walked /proc ({e})")))),
    }
}

/// [`plan`] and run at once.
pub fn scan_auto() -> Result<(OwnerScan, Option<String>), OwnerError> {
    plan().run()
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
    let dev = sockfs_dev();
    // Processes differ wildly in fd count, so threads take the next pid
    // from a shared counter rather than fixed chunks.
    let next = AtomicUsize::new(0);
    let parts: Vec<Partial> = if threads == 1 {
        vec![scan_pids(&root, &pids, &next, dev)]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let (root, pids, next) = (&root, &pids, &next);
                    s.spawn(move || scan_pids(root, pids, next, dev))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        })
    };

    let denied = parts.iter().map(|p| p.denied).sum();
    let mut all = OwnerScanBuilder::with_capacity(parts.iter().map(|p| p.owners.len()).sum());
    for p in parts {
        all.append(p.owners);
    }
    Ok(all.finish(denied, pids.len()))
}

/// The device number of sockfs, learned from a socket of our own.
fn sockfs_dev() -> Option<(u32, u32)> {
    let s = rustix::net::socket(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::DGRAM,
        None,
    )
    .ok()?;
    let st = fs::statx(&s, "", fs::AtFlags::EMPTY_PATH, fs::StatxFlags::INO).ok()?;
    Some((st.stx_dev_major, st.stx_dev_minor))
}

#[derive(Default)]
struct Partial {
    owners: OwnerScanBuilder,
    denied: usize,
}

pub(crate) fn list_pids(root: &OwnedFd) -> rustix::io::Result<Vec<u32>> {
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

const S_IFMT: u32 = 0o170000;
const S_IFSOCK: u32 = 0o140000;

fn scan_pids(
    root: &OwnedFd,
    pids: &[u32],
    next: &AtomicUsize,
    sockfs: Option<(u32, u32)>,
) -> Partial {
    let mut part = Partial::default();
    let mut link = Vec::with_capacity(64);
    let mut path = String::with_capacity(32);
    while let Some(&pid) = pids.get(next.fetch_add(1, Ordering::Relaxed)) {
        // One owner per distinct fd table: the leader's, and those of
        // threads that do not share it (see `fdtable`).
        let tables = super::fdtable::tables(root, pid);
        let mut proc_info: Option<(String, Option<u32>)> = None;
        for tid in tables.all() {
            path.clear();
            path.push_str(&super::fdtable::fd_dir(pid, tid));
            let fd_dir = match fs::openat(
                root,
                path.as_str(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(d) => d,
                Err(Errno::ACCESS | Errno::PERM) => {
                    part.denied += 1;
                    break;
                }
                Err(_) => continue, // gone (ENOENT, ESRCH) or not a process
            };
            let Ok(mut dir) = Dir::read_from(&fd_dir) else {
                continue;
            };
            while let Some(ent) = dir.read() {
                let Ok(ent) = ent else { break };
                let Some(fd) = parse_u32(ent.file_name().to_bytes()) else {
                    continue;
                };
                let inode = match sockfs {
                    // Follow the fd to the file it names and look at it.
                    Some(dev) => match fs::statx(
                        &fd_dir,
                        ent.file_name(),
                        fs::AtFlags::STATX_DONT_SYNC,
                        fs::StatxFlags::TYPE | fs::StatxFlags::INO,
                    ) {
                        Ok(st)
                            if u32::from(st.stx_mode) & S_IFMT == S_IFSOCK
                                && (st.stx_dev_major, st.stx_dev_minor) == dev =>
                        {
                            Some(st.stx_ino)
                        }
                        _ => None, // not a socket, or closed meanwhile
                    },
                    // No sockfs device known: parse the link text instead.
                    None => {
                        link.clear();
                        let Ok(target) =
                            fs::readlinkat(&fd_dir, ent.file_name(), std::mem::take(&mut link))
                        else {
                            continue;
                        };
                        let inode = socket_inode(target.as_bytes());
                        link = target.into_bytes();
                        inode
                    }
                };
                let Some(inode) = inode else { continue };
                let (comm, uid) = proc_info.get_or_insert_with(|| process_info(root, pid));
                part.owners.push(inode, pid, fd, tid, comm, *uid);
            }
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
        // statx and the link text agree on which fds are sockets.
        let via_link = scan_pids(
            &fs::open("/proc", OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap(),
            &[std::process::id()],
            &AtomicUsize::new(0),
            None,
        )
        .owners
        .finish(0, 1);
        assert!(
            via_link
                .owner_refs(ino)
                .any(|o| o.fd == l.as_raw_fd() as u32)
        );
        assert!(sockfs_dev().is_some());
    }

    #[test]
    fn o_path_fd_on_a_socket_file_is_not_a_socket() {
        let dir = std::env::temp_dir().join(format!("sockscope-opath-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("s.sock");
        let l = std::os::unix::net::UnixListener::bind(&p).unwrap();
        let opath = fs::open(&p, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).unwrap();
        let file_ino = std::fs::metadata(&p).unwrap().ino();
        let scan = scan("/proc").unwrap();
        let me = std::process::id();
        let opath_fd = opath.as_raw_fd() as u32;
        assert!(
            !scan
                .owners(file_ino)
                .iter()
                .any(|o| o.pid == me && o.fd == opath_fd),
            "the O_PATH fd names the file, not a socket"
        );
        let sock_ino = std::fs::metadata(format!("/proc/self/fd/{}", l.as_raw_fd()))
            .unwrap()
            .ino();
        assert!(scan.owners(sock_ino).iter().any(|o| o.pid == me));
        drop(l);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_proc_root_is_an_error_naming_it() {
        let e = scan("/nonexistent-proc").unwrap_err();
        assert!(e.to_string().contains("/nonexistent-proc"), "{e}");
    }
}
