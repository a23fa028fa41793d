//! Commands. Each parses nothing and prints nothing of its own beyond
//! composing sources, queries and views.

pub mod capture;
pub mod export;
pub mod lab;
pub mod listeners;
pub mod ls;
pub mod procfd;
pub mod stats;
pub mod top;
pub mod trace;
pub mod who;

use crate::cli::Cli;
use crate::{FOUND, Fail, out};
use clap::CommandFactory;
use std::io::{IsTerminal, Write};

/// `sockscope man [SUBCOMMAND]`: the man page generated from the command
/// definition: roff into a pipe or file, formatted and paged on a terminal.
pub fn man(sub: Option<&str>) -> Result<u8, Fail> {
    let root = Cli::command();
    let cmd = match sub {
        None => root,
        Some(name) => {
            let Some(c) = root.find_subcommand(name) else {
                let names: Vec<_> = root
                    .get_subcommands()
                    .map(|c| c.get_name().to_string())
                    .collect();
                return Err(Fail::usage(format!(
                    "no subcommand '{name}'; man pages exist for: {}",
                    names.join(", ")
                )));
            };
            c.clone().name(format!("sockscope-{name}"))
        }
    };
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut page)
        .map_err(|e| Fail::system(format!("rendering the man page: {e}")))?;
    if std::io::stdout().is_terminal() {
        return page_on_terminal(&page, sub);
    }
    out::print(&page)
}

/// On a terminal, roff is unreadable: hand the page to `man -l -`, which
/// formats it and shows it in $MANPAGER or $PAGER. Without man, print the
/// source and say how to read it.
fn page_on_terminal(page: &[u8], sub: Option<&str>) -> Result<u8, Fail> {
    use std::process::{Command, Stdio};
    let how = format!(
        "sockscope man{} | man -l -",
        sub.map(|s| format!(" {s}")).unwrap_or_default()
    );
    match Command::new("man")
        .args(["-l", "-"])
        .stdin(Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            if let Some(mut stdin) = child.stdin.take() {
                // The reader may quit the pager before the end: not an error.
                let _ = stdin.write_all(page);
            }
            match child.wait() {
                Ok(st) if st.success() => Ok(FOUND),
                Ok(st) => Err(Fail::system(format!(
                    "man -l - failed ({st}); the page's source is printed by `sockscope man` into a pipe: {how}"
                ))),
                Err(e) => Err(Fail::io("waiting for man -l -", &e)),
            }
        }
        Err(e) => {
            eprintln!(
                "sockscope: could not run `man -l -` to show this page ({e}); below is its roff source. \
                 Read it with `{how}` where man is installed, or `| groff -man -Tutf8 | less -R`"
            );
            out::print(page)
        }
    }
}

// Capability numbers: include/uapi/linux/capability.h.
const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_SYS_PTRACE: u32 = 19;

/// True when this process already holds what reading every process's fd
/// table takes (CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH, as root has): then
/// "run as root" is no advice.
pub fn can_read_every_process() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(has_inspect_caps)
}

fn has_inspect_caps(mask: u64) -> bool {
    [CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE]
        .iter()
        .all(|c| mask & (1u64 << c) != 0)
}

/// Why a process's files can be refused to a process that has the
/// capabilities.
const BEYOND_CAPABILITIES: &str = "something other than capabilities refuses it: a security module \
(SELinux, AppArmor, Landlock), /proc mounted with hidepid=, or a sandbox or container that shields \
that process";

/// A process that could not be read, as a failure whose message is true
/// for whoever runs sockscope (the library's says "run as root", which is
/// no advice to root).
pub fn process_error(e: sockscope::source::process::ProcessError) -> Fail {
    process_error_as(e, can_read_every_process())
}

fn process_error_as(e: sockscope::source::process::ProcessError, privileged: bool) -> Fail {
    use sockscope::source::process::ProcessError;
    match e {
        ProcessError::Denied { path } if privileged => Fail::privilege(format!(
            "not allowed to read {path}, although sockscope runs with CAP_SYS_PTRACE and \
             CAP_DAC_READ_SEARCH (as root): {BEYOND_CAPABILITIES}"
        )),
        ProcessError::Denied { path } if rustix::process::geteuid().is_root() => {
            Fail::privilege(format!(
                "not allowed to read {path}: sockscope runs as root but without CAP_SYS_PTRACE and \
                 CAP_DAC_READ_SEARCH (whatever started it dropped them); run it with those capabilities"
            ))
        }
        e => Fail::from(e),
    }
}

/// Say on stderr what a snapshot left out: always its warnings (namespaces
/// that could not be read, rows that could not be parsed) and the fd tables
/// that could not be read; with `-v` also the notes (fallbacks taken).
pub fn report_snapshot(snap: &sockscope::snapshot::Snapshot, verbose: bool) {
    if verbose {
        for n in &snap.notes {
            eprintln!("sockscope: {}", sockscope::view::escape::escape_str(n));
        }
    }
    for w in &snap.warnings {
        eprintln!("sockscope: {}", sockscope::view::escape::escape_str(w));
    }
    if let Some(scan) = &snap.owners {
        warn_denied(scan);
    }
}

/// Open the namespaces of a target, saying on stderr which ones could not
/// be looked at.
pub fn open_netns(
    target: &sockscope::source::netns::NetnsTarget,
) -> Result<Vec<sockscope::source::netns::OpenNetns>, sockscope::source::netns::NetnsError> {
    let (v, warnings) = sockscope::source::netns::open_warn(target)?;
    for w in warnings {
        eprintln!("sockscope: {w}");
    }
    Ok(v)
}

/// Say once, on stderr, that some fd tables could not be read and what
/// privilege would show them (or, when we have it, what else is in the
/// way).
pub fn warn_denied(scan: &sockscope::source::owners::OwnerScan) {
    if scan.denied > 0 {
        let why = if can_read_every_process() {
            format!(
                "even with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (as root): {BEYOND_CAPABILITIES}"
            )
        } else {
            "run as root (or with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH) to see every owner".into()
        };
        eprintln!(
            "sockscope: could not read the fd tables of {} of {} processes, so their sockets show no owner; {why}",
            scan.denied, scan.processes
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sockscope::source::process::ProcessError;

    #[test]
    fn denied_says_something_true_for_root_and_for_others() {
        // root's CapEff, and a user's
        assert!(has_inspect_caps(0x1ff_ffff_ffff));
        assert!(!has_inspect_caps(0));
        assert!(!has_inspect_caps(1 << CAP_SYS_PTRACE));
        let denied = || ProcessError::Denied {
            path: "/proc/1/fd/0".into(),
        };
        let root = process_error_as(denied(), true);
        assert_eq!(root.code(), 3);
        assert!(
            !root.message().contains("run as root"),
            "{}",
            root.message()
        );
        assert!(
            root.message()
                .contains("although sockscope runs with CAP_SYS_PTRACE")
                && root.message().contains("hidepid"),
            "{}",
            root.message()
        );
        let user = process_error_as(denied(), false);
        if rustix::process::geteuid().is_root() {
            assert!(
                user.message()
                    .contains("runs as root but without CAP_SYS_PTRACE"),
                "{}",
                user.message()
            );
        } else {
            assert!(user.message().contains("run as root"), "{}", user.message());
        }
        assert_eq!(process_error_as(ProcessError::Gone(7), true).code(), 2);
    }
}
