//! Which fd tables a process has.
//!
//! A process's threads usually share one fd table (`/proc/PID/fd`), but not
//! always: a thread that called `unshare(CLONE_FILES)` (or was created
//! without `CLONE_FILES`) has its own, visible only as
//! `/proc/PID/task/TID/fd`; and when the main thread has exited while
//! others run, the leader is a zombie whose `/proc/PID/fd` is empty while
//! the threads still hold every socket. Owners are one per distinct table,
//! so a socket is neither listed once per thread nor lost.
//!
//! Tables are told apart with `kcmp(KCMP_FILES)`, which compares the
//! kernel's `files_struct` pointers of two tasks (it needs the same ptrace
//! access as reading their fds). Where kcmp is missing (a kernel without
//! CONFIG_KCMP) threads are taken to share the leader's table, and, when the
//! leader has exited, one another's.
//!
//! Single-threaded processes, the common case, cost one `statx` of
//! `/proc/PID/task` (its link count is 2 + the number of threads).

// Unsafe only for kcmp(2), which rustix does not wrap.
#![allow(unsafe_code)]

use rustix::fd::AsFd;
use rustix::fs::{self, AtFlags, Dir, Mode, OFlags, StatxFlags};

/// The fd tables of one process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tables {
    /// The leader's table (`/proc/PID/fd`) is alive: the leader has not
    /// exited.
    pub leader: bool,
    /// Threads whose table is not the leader's, one per distinct table
    /// (the lowest tid of the threads sharing it), ascending.
    pub threads: Vec<u32>,
}

impl Tables {
    /// Just the leader's table (a single-threaded process).
    pub fn leader_only() -> Tables {
        Tables {
            leader: true,
            threads: Vec::new(),
        }
    }

    /// Every table, `None` for the leader's, `Some(tid)` for a thread's.
    pub fn all(&self) -> impl Iterator<Item = Option<u32>> + '_ {
        self.leader
            .then_some(None)
            .into_iter()
            .chain(self.threads.iter().map(|&t| Some(t)))
    }
}

/// The path of an fd table relative to the proc root: `PID/fd` or
/// `PID/task/TID/fd`.
pub fn fd_dir(pid: u32, tid: Option<u32>) -> String {
    match tid {
        Some(t) => format!("{pid}/task/{t}/fd"),
        None => format!("{pid}/fd"),
    }
}

/// Do two tasks share one fd table? `None` when the kernel cannot say
/// (no kcmp, no access, a task gone).
fn same_files(a: u32, b: u32) -> Option<bool> {
    const KCMP_FILES: libc::c_long = 2;
    // SAFETY: kcmp takes two pids, a type and two unused longs; it reads
    // no memory of ours.
    let r = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            libc::c_long::from(a as i32),
            libc::c_long::from(b as i32),
            KCMP_FILES,
            0 as libc::c_long,
            0 as libc::c_long,
        )
    };
    match r {
        0 => Some(true),
        1..=2 => Some(false),
        _ => None,
    }
}

/// Is the task a zombie (its /proc stat state `Z`)? False when unreadable.
fn is_zombie(root: impl AsFd, path: &str) -> bool {
    let Ok(fd) = fs::openat(root, path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) else {
        return false;
    };
    let mut buf = [0u8; 512];
    let Ok(n) = rustix::io::read(&fd, &mut buf) else {
        return false;
    };
    let text = &buf[..n];
    // The state follows the last ')' (comm may hold parentheses).
    text.iter()
        .rposition(|&c| c == b')')
        .and_then(|i| text.get(i + 2))
        .is_some_and(|&c| c == b'Z' || c == b'X')
}

/// The distinct fd tables of process `pid`, looked up under the proc root
/// `root` (an open directory of /proc).
pub fn tables(root: impl AsFd, pid: u32) -> Tables {
    let root = root.as_fd();
    let task = format!("{pid}/task");
    let threads = match fs::statx(root, &task, AtFlags::empty(), StatxFlags::NLINK) {
        Ok(st) => st.stx_nlink.saturating_sub(2),
        Err(_) => return Tables::leader_only(), // gone or hidden: nothing more to learn
    };
    if threads <= 1 {
        return Tables::leader_only();
    }
    let Ok(dir_fd) = fs::openat(
        root,
        &task,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return Tables::leader_only();
    };
    let mut tids: Vec<u32> = Vec::new();
    if let Ok(mut dir) = Dir::read_from(&dir_fd) {
        while let Some(Ok(ent)) = dir.read() {
            if let Some(t) = std::str::from_utf8(ent.file_name().to_bytes())
                .ok()
                .and_then(|s| s.parse().ok())
            {
                tids.push(t);
            }
        }
    }
    tids.sort_unstable();
    let leader = !is_zombie(root, &format!("{pid}/stat"));
    let mut out = Tables {
        leader,
        threads: Vec::new(),
    };
    for &t in tids.iter().filter(|&&t| t != pid) {
        if leader {
            match same_files(pid, t) {
                Some(true) | None => continue, // the leader's table (or cannot tell)
                Some(false) => {}
            }
        }
        // A table of its own, or one shared with an earlier thread.
        let mut shared = false;
        for &rep in &out.threads {
            match same_files(rep, t) {
                Some(true) => {
                    shared = true;
                    break;
                }
                Some(false) => {}
                // Cannot tell: after the leader exited, take the threads to
                // share one table (what almost every program does).
                None => {
                    shared = !leader;
                    break;
                }
            }
        }
        if !shared {
            out.threads.push(t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc_root() -> rustix::fd::OwnedFd {
        fs::open(
            "/proc",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap()
    }

    #[test]
    fn threads_sharing_the_table_add_no_table() {
        let stop = std::sync::Arc::new(std::sync::Barrier::new(3));
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let s = stop.clone();
                std::thread::spawn(move || {
                    s.wait();
                })
            })
            .collect();
        let t = tables(proc_root(), std::process::id());
        stop.wait();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(t, Tables::leader_only());
    }

    #[test]
    fn paths() {
        assert_eq!(fd_dir(7, Some(9)), "7/task/9/fd");
        assert_eq!(fd_dir(7, None), "7/fd");
        let t = Tables {
            leader: false,
            threads: vec![9, 12],
        };
        assert_eq!(t.all().collect::<Vec<_>>(), vec![Some(9), Some(12)]);
    }
    // Threads with tables of their own, and a leader that exited, are
    // tested with real processes in crates/cli/tests/threads.rs (an
    // unshare(CLONE_FILES) here would copy the test harness's fds).
}
