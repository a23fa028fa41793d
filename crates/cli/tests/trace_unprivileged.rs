//! `sockscope trace` without the privileges to load BPF programs: run as
//! user nobody (setpriv), it exits 3 with a message that names the missing
//! capabilities and how to get them, prints nothing on stdout, and other
//! commands keep working. With CAP_BPF granted but not CAP_PERFMON, the
//! message names exactly the one that is missing.

#[path = "common/root.rs"]
mod root;

#[path = "fixtures/trace/harness.rs"]
mod harness;

use harness::{BIN, require_root};
use std::process::Command;

const NOBODY: [&str; 3] = ["--reuid=65534", "--regid=65534", "--clear-groups"];

/// `sockscope <args>` as nobody; `caps` are inheritable and ambient
/// capabilities to keep ("-all" for none).
fn as_nobody(caps: &str, args: &[&str]) -> std::process::Output {
    require_root();
    let mut c = Command::new("setpriv");
    c.args(NOBODY).arg(format!("--inh-caps={caps}"));
    if caps != "-all" {
        c.arg(format!("--ambient-caps={caps}"));
    }
    c.arg(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run setpriv (util-linux)")
}

#[test]
fn nobody_gets_exit_3_and_the_missing_capabilities() {
    if root::skip_without_root() {
        return;
    }
    let id = as_nobody("-all", &["--version"]);
    assert!(
        id.status.success(),
        "user nobody cannot run {BIN}: put the target directory where every parent is world-searchable"
    );
    let o = as_nobody("-all", &["trace", "--duration", "1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "stderr: {err}");
    assert!(
        o.stdout.is_empty(),
        "nothing on stdout: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(
        err.contains("needs CAP_BPF and CAP_PERFMON") && err.contains("run it as root"),
        "the message names what is missing and the fix: {err}"
    );
    assert!(
        err.contains("Other sockscope commands keep working"),
        "{err}"
    );
    assert_eq!(
        err.lines().count(),
        1,
        "one clear line, no verifier dump: {err}"
    );

    // ...and they do.
    let o = as_nobody("-all", &["ls", "-tln"]);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "ls as nobody: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn one_capability_short() {
    if root::skip_without_root() {
        return;
    }
    let o = as_nobody("+bpf", &["trace", "--duration", "1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "stderr: {err}");
    assert!(
        err.contains("needs CAP_PERFMON to load") && err.contains("(it has CAP_BPF)"),
        "{err}"
    );
}
