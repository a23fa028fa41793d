//! tracefs, for the per-syscall tracepoints.
//!
//! The syscall programs attach to `syscalls:sys_{enter,exit}_*`, perf
//! tracepoints whose ids are only published in tracefs. A fresh machine
//! often has tracefs unmounted; the loader then falls back to
//! raw_syscalls, which runs BPF on every syscall of the machine (about
//! 10% of a busy server's throughput). [`ensure`] avoids that without
//! touching the host: it moves the process into a private mount
//! namespace (`unshare(CLONE_NEWNS)`), makes every mount in it private so
//! nothing propagates back, and mounts tracefs at [`TRACEFS`] there. The
//! mount disappears with the process.
//!
//! `unshare(CLONE_NEWNS)` also unshares the filesystem context, which the
//! kernel refuses (EINVAL) once the process has more than one thread: call
//! [`ensure`] first thing, before anything spawns a thread.

use std::path::Path;

/// Where tracefs is mounted on current systems.
pub const TRACEFS: &str = "/sys/kernel/tracing";
/// Where older systems reach it (through debugfs).
pub const DEBUG_TRACEFS: &str = "/sys/kernel/debug/tracing";

/// What [`ensure`] found or did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tracefs {
    /// Already mounted, at this path.
    Mounted(&'static str),
    /// Mounted at [`TRACEFS`] in the process's own mount namespace.
    PrivateMount,
    /// Not mounted, and mounting it privately failed for this reason (the
    /// loader then falls back to raw_syscalls).
    Unavailable(String),
}

impl Tracefs {
    /// One sentence for `-v`.
    pub fn describe(&self) -> String {
        match self {
            Tracefs::Mounted(p) => format!("tracefs is mounted at {p}"),
            Tracefs::PrivateMount => format!(
                "tracefs was not mounted: mounted it at {TRACEFS} in a private mount namespace of this \
                 process only (the host's mounts are unchanged), so syscalls are traced on their own \
                 tracepoints rather than on raw_syscalls"
            ),
            Tracefs::Unavailable(why) => format!(
                "tracefs is not mounted and could not be mounted in a private mount namespace ({why})"
            ),
        }
    }
}

/// The same test as aya's loader: the directory exists and is not empty
/// (the kernel creates an empty /sys/kernel/tracing even when tracefs is
/// mounted elsewhere or not at all).
fn populated(p: &Path) -> bool {
    std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_some())
}

/// Where tracefs is mounted, if it is.
pub fn mounted() -> Option<&'static str> {
    [TRACEFS, DEBUG_TRACEFS]
        .into_iter()
        .find(|p| populated(Path::new(p)))
}

/// Make tracefs available to this process: nothing when it is mounted,
/// else a private mount. Call it while the process has a single thread.
pub fn ensure() -> Tracefs {
    if let Some(p) = mounted() {
        return Tracefs::Mounted(p);
    }
    match private_mount() {
        Ok(()) if populated(Path::new(TRACEFS)) => Tracefs::PrivateMount,
        Ok(()) => Tracefs::Unavailable(format!("{TRACEFS} is empty after mounting tracefs")),
        Err(e) => Tracefs::Unavailable(e),
    }
}

#[allow(unsafe_code)]
fn private_mount() -> Result<(), String> {
    use rustix::mount::{MountFlags, MountPropagationFlags, mount, mount_change};
    use rustix::thread::{UnshareFlags, unshare_unsafe};
    // SAFETY: only CLONE_NEWNS (and the CLONE_FS it implies) is unshared,
    // not the fd table, so no thread can end up with fds it cannot see;
    // the kernel refuses it outright when other threads exist.
    unsafe { unshare_unsafe(UnshareFlags::NEWNS) }
        .map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    // From here on the process has its own copy of the mount table. Make
    // every mount private so that the mount below cannot propagate to the
    // host's namespace through a shared peer group.
    mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .map_err(|e| format!("making / private in the new mount namespace: {e}"))?;
    mount(
        "nodev",
        TRACEFS,
        "tracefs",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        None,
    )
    .map_err(|e| format!("mount -t tracefs nodev {TRACEFS}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_name_the_path_and_the_reason() {
        assert_eq!(
            Tracefs::Mounted(TRACEFS).describe(),
            "tracefs is mounted at /sys/kernel/tracing"
        );
        let p = Tracefs::PrivateMount.describe();
        assert!(p.contains("private mount namespace"), "{p}");
        assert!(p.contains("host's mounts are unchanged"), "{p}");
        let u =
            Tracefs::Unavailable("unshare(CLONE_NEWNS): Operation not permitted".into()).describe();
        assert!(
            u.ends_with("(unshare(CLONE_NEWNS): Operation not permitted)"),
            "{u}"
        );
    }
}
