//! A fresh machine has no tracefs mounted. `sockscope trace` then mounts
//! it in a private mount namespace of its own, so the syscall programs use
//! the per-syscall tracepoints rather than the raw_syscalls fallback (BPF
//! on every syscall of the machine), says so under -v, and leaves the
//! host's mounts as they were.
//!
//! To be a fresh machine whatever the host has mounted, sockscope runs in
//! a mount namespace made by the test (`unshare -m`) where tracefs and
//! debugfs are unmounted; nothing is unmounted on the host.

#[path = "common/root.rs"]
mod root;

#[path = "fixtures/trace/harness.rs"]
mod harness;

use harness::*;
use std::process::Command;
use std::time::Duration;

/// The mounts of tracefs and debugfs that this process sees.
fn trace_mounts() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("read /proc/self/mountinfo")
        .lines()
        .filter(|l| l.contains(" - tracefs ") || l.contains(" - debugfs "))
        .map(str::to_string)
        .collect()
}

#[test]
fn mounts_tracefs_privately_and_traces_syscalls_on_their_tracepoints() {
    if root::skip_without_root() {
        return;
    }
    require_root();
    let host_before = trace_mounts();
    let mut scene = Scene::start("graceful", 29104);
    let pid = scene.pid.to_string();
    // A fresh machine: in a mount namespace of the test's own, tracefs and
    // debugfs (which would mount tracefs on access) are unmounted.
    let script = "mount --make-rprivate / || exit 97
        for m in /sys/kernel/debug/tracing /sys/kernel/debug /sys/kernel/tracing; do
            umount -l \"$m\" 2>/dev/null
        done
        if [ -n \"$(ls -A /sys/kernel/tracing)\" ]; then echo 'tracefs still mounted' >&2; exit 98; fi
        exec \"$0\" \"$@\"";
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--", "sh", "-c", script, BIN]).args([
        "trace",
        "-v",
        "--jsonl",
        "--netns-pid",
        &pid,
    ]);
    let trace = Trace::spawn(cmd);
    let report = scene.go();
    std::thread::sleep(Duration::from_millis(300));
    let out = trace.stop();
    drop(scene);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", out.stderr);
    assert!(
        out.stderr
            .contains("mounted it at /sys/kernel/tracing in a private mount namespace"),
        "-v says that tracefs was mounted privately; stderr:\n{}",
        out.stderr
    );
    assert!(
        !out.stderr
            .contains("tracing syscalls on raw_syscalls instead"),
        "no fallback to raw_syscalls; stderr:\n{}",
        out.stderr
    );
    // The syscall programs ran: the scenario's connect and accept are there,
    // on the scenario's ports.
    let evs = out.events();
    let port = report["port"].as_u64().expect("port");
    for name in ["connect", "accept4", "listen"] {
        assert!(
            evs.iter().any(|v| is_sys(v, name)
                && (port_of(v, "local") == Some(port) || port_of(v, "peer") == Some(port))),
            "no {name} on port {port}; events:\n{}\nstderr:\n{}",
            out.dump(),
            out.stderr
        );
    }
    assert_eq!(
        trace_mounts(),
        host_before,
        "the host's tracefs/debugfs mounts changed"
    );
}
