//! Commands. Each parses nothing and prints nothing of its own beyond
//! composing sources, queries and views.

pub mod capture;
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

/// `sockscope man [SUBCOMMAND]`: the man page generated from the command
/// definition.
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
    clap_mangen::Man::new(cmd)
        .render(&mut std::io::stdout())
        .map(|_| FOUND)
        .or_else(out::ignore_broken_pipe)
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
/// privilege would show them.
pub fn warn_denied(scan: &sockscope::source::owners::OwnerScan) {
    if scan.denied > 0 {
        eprintln!(
            "sockscope: could not read the fd tables of {} of {} processes, so their sockets show no owner; \
run as root (or with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH) to see every owner",
            scan.denied, scan.processes
        );
    }
}
