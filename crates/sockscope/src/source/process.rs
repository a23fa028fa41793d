//! Processes: identity (/proc/PID/stat, status, cmdline, exe, cgroup) and
//! their fd tables with fdinfo, decoded.
//!
//! Parsing is kept apart from I/O: `parse_*` functions take the text of one
//! file, `read_*` functions do the reading. A process that exits while we
//! read gives `ProcessError::Gone`, which callers treat as normal.

pub use crate::model::process::{FdEntry, FdInfo, FdTarget, ProcessInfo};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("no process {0} (it does not exist or has exited)")]
    Gone(u32),
    #[error(
        "not allowed to read {path}: run as root (or with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH) to inspect other users' processes"
    )]
    Denied { path: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: unexpected format: {what}")]
    Format { path: String, what: String },
}

impl crate::error::Classify for ProcessError {
    fn kind(&self) -> crate::error::Kind {
        use crate::error::Kind;
        match self {
            ProcessError::Gone(_) => Kind::Usage,
            ProcessError::Denied { .. } => Kind::Privilege,
            // The fd (or task) the arguments name is not there.
            ProcessError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Kind::Usage
            }
            ProcessError::Io { source, .. } => Kind::of_io(source),
            ProcessError::Format { .. } => Kind::System,
        }
    }
}

fn io_err(pid: u32, path: &Path, e: std::io::Error) -> ProcessError {
    match e.kind() {
        std::io::ErrorKind::NotFound => ProcessError::Gone(pid),
        std::io::ErrorKind::PermissionDenied => ProcessError::Denied {
            path: path.display().to_string(),
        },
        _ if e.raw_os_error() == Some(libc::ESRCH) => ProcessError::Gone(pid),
        _ => ProcessError::Io {
            path: path.display().to_string(),
            source: e,
        },
    }
}

/// Fields of /proc/PID/stat we use: (comm, state, ppid, threads, starttime
/// in clock ticks). comm may contain spaces and parentheses: it runs from
/// the first '(' to the last ')'.
pub fn parse_stat(text: &str) -> Option<(String, String, u32, u32, u64)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // rest[0] = state (field 3), rest[1] = ppid (4), rest[17] = num_threads (20),
    // rest[19] = starttime (22)
    let state = rest.first()?.to_string();
    let ppid = rest.get(1)?.parse().ok()?;
    let threads = rest.get(17)?.parse().ok()?;
    let start = rest.get(19)?.parse().ok()?;
    Some((comm, state, ppid, threads, start))
}

/// The cgroup v2 path from /proc/PID/cgroup.
pub fn parse_cgroup(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
}

/// A container id in a cgroup path: a run of 64 hex digits in the last
/// components (docker-<id>.scope, cri-containerd-<id>.scope,
/// libpod-<id>.scope, /docker/<id>).
pub fn container_id(cgroup: &str) -> Option<String> {
    for comp in cgroup.rsplit('/') {
        let b = comp.as_bytes();
        let mut run = 0;
        for (i, c) in b.iter().enumerate() {
            if c.is_ascii_hexdigit() && !c.is_ascii_uppercase() {
                run += 1;
                if run == 64 && b.get(i + 1).is_none_or(|n| !n.is_ascii_hexdigit()) {
                    return Some(comp[i + 1 - 64..=i].to_string());
                }
            } else {
                run = 0;
            }
        }
    }
    None
}

/// Map uid to user name from the text of /etc/passwd.
pub fn user_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_string())
    })
}

/// The boot time, read from /proc/stat once per process (it does not
/// change; `who` asks for it once per owner).
fn boot_time() -> Option<u64> {
    static BTIME: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *BTIME.get_or_init(|| {
        let s = std::fs::read_to_string("/proc/stat").ok()?;
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// The user name of `uid`, from /etc/passwd, read again only when its
/// modification time changes (`who` asks once per owner; `top` runs for
/// hours).
fn user_of(uid: u32) -> Option<String> {
    type Cached = Option<((i64, i64), String)>;
    static PASSWD: std::sync::Mutex<Cached> = std::sync::Mutex::new(None);
    const PATH: &str = "/etc/passwd";
    let st = rustix::fs::stat(PATH).ok()?;
    let mtime = (st.st_mtime, st.st_mtime_nsec as i64);
    let mut cached = PASSWD.lock().unwrap_or_else(|p| p.into_inner());
    if cached.as_ref().is_none_or(|(m, _)| *m != mtime) {
        *cached = Some((mtime, std::fs::read_to_string(PATH).ok()?));
    }
    cached.as_ref().and_then(|(_, p)| user_name(p, uid))
}

fn clock_ticks() -> u64 {
    rustix::param::clock_ticks_per_second()
}

/// A small /proc file whole: a 4 KiB buffer filled by the first read and
/// one more read to see the end. (`std::fs::read` first asks the file's
/// size, which /proc reports as 0, and where it is, then grows its buffer
/// from 32 bytes: five or six system calls more per file, and `who` reads
/// four files for each of a listener's owners.) Longer files grow it.
fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut v = vec![0u8; 4096];
    let mut len = 0;
    loop {
        if len == v.len() {
            v.resize(v.len() * 2, 0);
        }
        match f.read(&mut v[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    v.truncate(len);
    Ok(v)
}

/// Read a process's identity. `proc_root` is normally "/proc".
pub fn read_process(proc_root: &Path, pid: u32) -> Result<ProcessInfo, ProcessError> {
    let dir = proc_root.join(pid.to_string());
    let stat_path = dir.join("stat");
    // comm is bytes to the kernel (any process may name itself with bytes
    // that are not UTF-8): read bytes, replace what is not UTF-8 with U+FFFD.
    let stat = read_small(&stat_path).map_err(|e| io_err(pid, &stat_path, e))?;
    let stat = String::from_utf8_lossy(&stat);
    let (comm, state, ppid, threads, start_ticks) =
        parse_stat(&stat).ok_or_else(|| ProcessError::Format {
            path: stat_path.display().to_string(),
            what: "no '(comm)' followed by at least 20 fields".into(),
        })?;
    let uid = rustix::fs::stat(&dir)
        .map_err(|e| io_err(pid, &dir, e.into()))?
        .st_uid;
    let cmdline = read_small(&dir.join("cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default();
    let exe = std::fs::read_link(dir.join("exe"))
        .ok()
        .map(|p| p.display().to_string());
    let cgroup = read_small(&dir.join("cgroup"))
        .ok()
        .and_then(|t| parse_cgroup(&String::from_utf8_lossy(&t)));
    let start_time_s = start_ticks as f64 / clock_ticks() as f64;
    Ok(ProcessInfo {
        pid,
        ppid,
        comm,
        cmdline,
        exe,
        uid,
        user: user_of(uid),
        state,
        threads,
        start_time_s,
        start_unix_s: boot_time().map(|b| b + start_time_s as u64),
        container_id: cgroup.as_deref().and_then(container_id),
        cgroup,
    })
}

/// Open-file flag names by bit (include/uapi/asm-generic/fcntl.h; x86 and
/// most architectures). The access mode is the low two bits.
const O_FLAGS: &[(u32, &str)] = &[
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    (0o10000, "O_DSYNC"),
    (0o20000, "FASYNC"),
    (0o40000, "O_DIRECT"),
    (0o100000, "O_LARGEFILE"),
    (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"),
    (0o1000000, "O_NOATIME"),
    (0o2000000, "O_CLOEXEC"),
    (0o4000000, "__O_SYNC"),
    (0o10000000, "O_PATH"),
    (0o20000000, "__O_TMPFILE"),
];

/// Decode open flags into names, access mode first.
pub fn decode_open_flags(flags: u32) -> Vec<String> {
    let mut v = vec![
        match flags & 3 {
            0 => "O_RDONLY",
            1 => "O_WRONLY",
            2 => "O_RDWR",
            _ => "O_ACCMODE",
        }
        .to_string(),
    ];
    let mut rest = flags & !3;
    for &(bit, name) in O_FLAGS {
        if rest & bit != 0 {
            v.push(name.into());
            rest &= !bit;
        }
    }
    if rest != 0 {
        v.push(format!("0o{rest:o}"));
    }
    v
}

/// Parse the text of /proc/PID/fdinfo/N.
pub fn parse_fdinfo(text: &str) -> Option<FdInfo> {
    let mut pos = None;
    let mut flags = None;
    let mut mnt_id = None;
    let mut ino = None;
    let mut extra = Vec::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "pos" => pos = v.parse().ok(),
            "flags" => flags = Some(v.to_string()),
            "mnt_id" => mnt_id = v.parse().ok(),
            "ino" => ino = v.parse().ok(),
            _ => extra.push(line.to_string()),
        }
    }
    let flags_octal = flags?;
    let bits = u32::from_str_radix(&flags_octal, 8).ok()?;
    Some(FdInfo {
        pos: pos?,
        flags: decode_open_flags(bits),
        flags_octal,
        mnt_id,
        ino,
        extra,
    })
}

/// Read one fd of the process's main table: its link and fdinfo.
pub fn read_fd(proc_root: &Path, pid: u32, fd: u32) -> Result<FdEntry, ProcessError> {
    read_fd_at(proc_root, pid, None, fd)
}

/// The directory of a task under the proc root: `PID` or `PID/task/TID`.
fn task_dir(pid: u32, tid: Option<u32>) -> String {
    match tid {
        Some(t) => format!("{pid}/task/{t}"),
        None => pid.to_string(),
    }
}

/// Read one fd of the table `tid` names (`None`: the main one).
pub fn read_fd_at(
    proc_root: &Path,
    pid: u32,
    tid: Option<u32>,
    fd: u32,
) -> Result<FdEntry, ProcessError> {
    let dir = task_dir(pid, tid);
    let p = proc_root.join(format!("{dir}/fd/{fd}"));
    let link = std::fs::read_link(&p).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound if proc_root.join(pid.to_string()).exists() => {
            ProcessError::Io {
                path: p.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("process {pid} has no fd {fd} open"),
                ),
            }
        }
        _ => io_err(pid, &p, e),
    })?;
    // Paths are bytes: a file name need not be UTF-8.
    let link = String::from_utf8_lossy(std::os::unix::ffi::OsStrExt::as_bytes(link.as_os_str()))
        .into_owned();
    let info = read_small(&proc_root.join(format!("{dir}/fdinfo/{fd}")))
        .ok()
        .and_then(|t| parse_fdinfo(&String::from_utf8_lossy(&t)));
    Ok(FdEntry {
        fd,
        tid,
        target: FdTarget::from_link(&link),
        link,
        info,
    })
}

/// The fd tables of a process (see `source::fdtable`): `None` for the main
/// one while the leader lives, `Some(tid)` for each thread's own.
pub fn fd_tables(proc_root: &Path, pid: u32) -> Vec<Option<u32>> {
    match rustix::fs::open(
        proc_root,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) {
        Ok(root) => super::fdtable::tables(&root, pid).all().collect(),
        Err(_) => vec![None],
    }
}

/// Find fd `fd` of process `pid`: in its main table, else in the table of
/// a thread that has its own (a process whose main thread exited keeps its
/// fds there). An fd number found in several threads' tables is ambiguous:
/// the error names the `/proc/PID/task/TID/fd/FD` paths to choose from.
pub fn find_fd(proc_root: &Path, pid: u32, fd: u32) -> Result<FdEntry, ProcessError> {
    let first = read_fd(proc_root, pid, fd);
    if first.is_ok() {
        return first;
    }
    let mut found: Vec<FdEntry> = fd_tables(proc_root, pid)
        .into_iter()
        .flatten()
        .filter_map(|t| read_fd_at(proc_root, pid, Some(t), fd).ok())
        .collect();
    match found.len() {
        0 => first,
        1 => Ok(found.remove(0)),
        _ => Err(ProcessError::Format {
            path: format!("/proc/{pid}"),
            what: format!(
                "fd {fd} is open in the fd tables of several threads: {}",
                found
                    .iter()
                    .map(|e| format!("/proc/{pid}/task/{}/fd/{fd}", e.tid.unwrap_or(pid)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// Read every fd table of a process (the main one, then those of threads
/// with their own; see [`fd_tables`]), each sorted by fd. Fds closed while
/// we read are skipped.
pub fn read_fds(proc_root: &Path, pid: u32) -> Result<Vec<FdEntry>, ProcessError> {
    let mut out = Vec::new();
    for tid in fd_tables(proc_root, pid) {
        let dir = proc_root.join(format!("{}/fd", task_dir(pid, tid)));
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if tid.is_none() => return Err(io_err(pid, &dir, e)),
            Err(_) => continue, // the thread exited meanwhile
        };
        let mut fds: Vec<u32> = rd
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        fds.sort_unstable();
        out.reserve(fds.len());
        for fd in fds {
            match read_fd_at(proc_root, pid, tid, fd) {
                Ok(e) => out.push(e),
                Err(ProcessError::Gone(_)) => return Err(ProcessError::Gone(pid)),
                Err(ProcessError::Io { .. }) => continue, // closed meanwhile
                Err(e) => return Err(e),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parens_in_comm() {
        let t = "1234 (my (weird) prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 5000 1000 10 18446744073709551615";
        let (comm, state, ppid, threads, start) = parse_stat(t).unwrap();
        assert_eq!(comm, "my (weird) prog");
        assert_eq!(state, "S");
        assert_eq!(ppid, 1);
        assert_eq!(threads, 3);
        assert_eq!(start, 5000);
        assert!(parse_stat("1234 (x) S 1").is_none());
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn fdinfo_of_a_socket_like_seed_001() {
        // The seed's `cat /proc/216/fdinfo/3`.
        let i = parse_fdinfo("pos:\t0\nflags:\t02\nmnt_id:\t10\nino:\t35587\n").unwrap();
        assert_eq!(i.pos, 0);
        assert_eq!(i.flags, vec!["O_RDWR"]);
        assert_eq!(i.mnt_id, Some(10));
        assert_eq!(i.ino, Some(35587));
        let i = parse_fdinfo("pos:\t0\nflags:\t02004002\nmnt_id:\t9\nino:\t1\n").unwrap();
        assert_eq!(i.flags, vec!["O_RDWR", "O_NONBLOCK", "O_CLOEXEC"]);
        assert!(parse_fdinfo("flags: zz\npos: 0\n").is_none());
    }

    #[test]
    fn fd_targets() {
        assert_eq!(
            FdTarget::from_link("socket:[35587]"),
            FdTarget::Socket { inode: 35587 }
        );
        assert_eq!(FdTarget::from_link("pipe:[9]"), FdTarget::Pipe { inode: 9 });
        assert_eq!(
            FdTarget::from_link("anon_inode:[eventpoll]"),
            FdTarget::AnonInode {
                name: "eventpoll".into()
            }
        );
        assert_eq!(
            FdTarget::from_link("/dev/pts/1"),
            FdTarget::File {
                path: "/dev/pts/1".into()
            }
        );
        assert_eq!(
            FdTarget::from_link("net:[4026531840]"),
            FdTarget::Other {
                link: "net:[4026531840]".into()
            }
        );
    }

    #[test]
    fn cgroups_and_containers() {
        assert_eq!(
            parse_cgroup("0::/system.slice/ssh.service\n").as_deref(),
            Some("/system.slice/ssh.service")
        );
        let id = "a".repeat(60) + "0123";
        assert_eq!(
            container_id(&format!("/system.slice/docker-{id}.scope")).as_deref(),
            Some(id.as_str())
        );
        assert_eq!(container_id("/user.slice/user-0.slice"), None);
        assert_eq!(
            user_name(
                "root:x:0:0::/root:/bin/sh\nbob:x:1000:1000::/h:/bin/sh",
                1000
            )
            .as_deref(),
            Some("bob")
        );
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let p = read_process(Path::new("/proc"), me).unwrap();
        assert_eq!(p.pid, me);
        assert!(p.threads >= 1);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        use std::os::fd::AsRawFd;
        let fd = l.as_raw_fd() as u32;
        let e = read_fd(Path::new("/proc"), me, fd).unwrap();
        assert!(matches!(e.target, FdTarget::Socket { .. }));
        assert!(e.info.unwrap().flags.contains(&"O_CLOEXEC".to_string()));
        assert!(matches!(
            read_process(Path::new("/proc"), 999_999_999),
            Err(ProcessError::Gone(999_999_999))
        ));
        let e = read_fd(Path::new("/proc"), me, 99_999).unwrap_err();
        assert!(e.to_string().contains("no fd 99999"), "{e}");
    }
}
