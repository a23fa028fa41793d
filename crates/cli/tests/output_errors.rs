//! Output that cannot be written. Every command writes stdout through one
//! path: a reader that went away (a closed pipe, `| head`) is a quiet exit
//! 0; any other write failure (here `> /dev/full`) is exit 4 with one line
//! on stderr, never a panic (101), never a success with the text lost, and
//! never exit 3 (kept for missing privilege or kernel features).

#[path = "common/root.rs"]
mod root;

use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_sockscope");

/// Commands that print without needing privilege or sockets of their own.
const COMMANDS: &[&[&str]] = &[
    &["completions", "bash"],
    &["completions", "fish"],
    &["completions", "zsh"],
    &["man"],
    &["man", "ls"],
    &["--help"],
    &["--version"],
    &["ls", "--help"],
    &["trace", "--help"],
    &["help", "capture"],
    // UNIX sockets exist on every running system (the test's own
    // stdout/stderr may not be sockets, but journald's and others are).
    &["ls", "-xa"],
    &["stats"],
    &["lab", "list"],
];

fn run(args: &[&str], stdout: Stdio) -> Output {
    Command::new(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .expect("run sockscope")
}

#[test]
fn a_full_device_is_exit_4_with_a_message() {
    if root::skip_without_root() {
        return;
    }
    for args in COMMANDS {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("open /dev/full");
        let o = run(args, full.into());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            o.status.code(),
            Some(4),
            "sockscope {} > /dev/full; stderr: {err}",
            args.join(" ")
        );
        assert!(
            err.starts_with("sockscope: could not write the output: No space left on device"),
            "sockscope {}: {err}",
            args.join(" ")
        );
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
}

#[test]
fn a_closed_pipe_is_a_quiet_exit_0() {
    if root::skip_without_root() {
        return;
    }
    for args in COMMANDS {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let o = run(args, writer.into());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            o.status.code(),
            Some(0),
            "sockscope {} into a closed pipe; stderr: {err}",
            args.join(" ")
        );
        assert!(err.is_empty(), "sockscope {}: {err}", args.join(" "));
    }
}

#[test]
fn help_still_reaches_a_working_stdout() {
    let o = run(&["--help"], Stdio::piped());
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.starts_with("sockscope shows the kernel's socket tables"),
        "{text}"
    );
    let o = run(&["completions", "bash"], Stdio::piped());
    assert_eq!(o.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("_sockscope()"),
        "a bash completion function"
    );
}
