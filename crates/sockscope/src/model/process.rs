//! Processes and their fd tables as plain data: who a process is, and what
//! each of its file descriptors refers to. Filled by `source::process`.

use serde::{Deserialize, Serialize};

/// Who a process is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
    /// Command line, one element per argument (empty for kernel threads).
    pub cmdline: Vec<String>,
    /// Executable path (/proc/PID/exe), when readable.
    pub exe: Option<String>,
    pub uid: u32,
    /// Name of `uid` from /etc/passwd.
    pub user: Option<String>,
    /// Single-letter state from /proc/PID/stat (R, S, D, Z, T...).
    pub state: String,
    pub threads: u32,
    /// Start time in seconds since boot.
    pub start_time_s: f64,
    /// Start time as seconds since the Unix epoch (boot time + start).
    pub start_unix_s: Option<u64>,
    /// cgroup v2 path (the `0::` line of /proc/PID/cgroup).
    pub cgroup: Option<String>,
    /// Container id, when the cgroup path names one (64 hex digits of a
    /// docker/containerd/podman scope).
    pub container_id: Option<String>,
}

/// What an fd refers to, from its /proc/PID/fd link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FdTarget {
    Socket {
        inode: u64,
    },
    Pipe {
        inode: u64,
    },
    /// anon_inode:[eventpoll], anon_inode:[eventfd], anon_inode:[timerfd]...
    AnonInode {
        name: String,
    },
    /// A path on a filesystem (a file, device, directory).
    File {
        path: String,
    },
    /// Anything else (e.g. net:[4026531840]).
    Other {
        link: String,
    },
}

impl FdTarget {
    pub fn from_link(link: &str) -> FdTarget {
        let bracketed = |prefix: &str| {
            link.strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('['))
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|n| n.parse::<u64>().ok())
        };
        if let Some(inode) = bracketed("socket:") {
            FdTarget::Socket { inode }
        } else if let Some(inode) = bracketed("pipe:") {
            FdTarget::Pipe { inode }
        } else if let Some(name) = link.strip_prefix("anon_inode:") {
            FdTarget::AnonInode {
                name: name.trim_start_matches('[').trim_end_matches(']').into(),
            }
        } else if link.starts_with('/') {
            FdTarget::File { path: link.into() }
        } else {
            FdTarget::Other { link: link.into() }
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            FdTarget::Socket { .. } => "socket",
            FdTarget::Pipe { .. } => "pipe",
            FdTarget::AnonInode { .. } => "anon_inode",
            FdTarget::File { .. } => "file",
            FdTarget::Other { .. } => "other",
        }
    }
}

/// /proc/PID/fdinfo/N, decoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdInfo {
    pub pos: u64,
    /// The raw octal flags as the kernel prints them.
    pub flags_octal: String,
    /// Decoded: O_RDWR, O_NONBLOCK, O_CLOEXEC, ...
    pub flags: Vec<String>,
    pub mnt_id: Option<u64>,
    pub ino: Option<u64>,
    /// Lines we do not decode (eventpoll tfd lines, inotify, ...), verbatim.
    pub extra: Vec<String>,
}

/// One entry of a process's fd table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdEntry {
    pub fd: u32,
    /// The thread whose own fd table holds this fd, when it is not the
    /// process's main table (see `source::fdtable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<u32>,
    /// The symlink text, as `ls -l /proc/PID/fd` shows it.
    pub link: String,
    pub target: FdTarget,
    pub info: Option<FdInfo>,
}
