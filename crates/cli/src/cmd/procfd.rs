//! `sockscope proc PID`: a process's fd table decoded: every socket shown as
//! protocol, state and endpoints; pipes, anonymous inodes and files named.

use crate::cli::Cli;
use crate::{FOUND, Fail, out};
use sockscope::model::Socket;
use sockscope::source::netns::{self, NetnsTarget};
use sockscope::source::process::{self, FdEntry, FdTarget};
use sockscope::source::{ALL_KINDS, Request};
use sockscope::view::explain as view;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

#[derive(clap::Args, Debug, Clone)]
pub struct ProcArgs {
    /// The process id.
    pub pid: u32,
    #[command(flatten)]
    pub out: crate::out::OutputArgs,
}

#[derive(serde::Serialize)]
struct FdRow {
    #[serde(flatten)]
    entry: FdEntry,
    socket: Option<Socket>,
}

#[derive(serde::Serialize)]
struct ProcReport {
    process: process::ProcessInfo,
    fds: Vec<FdRow>,
    totals: BTreeMap<String, usize>,
}

pub fn run(args: &ProcArgs, cli: &Cli) -> Result<u8, Fail> {
    let root = Path::new("/proc");
    let info = process::read_process(root, args.pid).map_err(super::process_error)?;
    let fds = process::read_fds(root, args.pid).map_err(super::process_error)?;
    // Sockets live in the process's network namespace.
    let namespaces = netns::open(&NetnsTarget::Pid(args.pid)).map_err(Fail::from)?;
    let req = Request::all_states(&ALL_KINDS);
    let mut snap =
        sockscope::snapshot::snapshot(&namespaces, &req, false, true, false).map_err(Fail::from)?;
    super::report_snapshot(&snap, cli.verbose);
    // A socket passed in from another namespace is not in this one's
    // tables: ask each such socket for its namespace and read that one too.
    let known: std::collections::HashSet<u64> = snap.sockets.iter().map(|s| s.inode).collect();
    let mut others: Vec<netns::OpenNetns> = Vec::new();
    for e in &fds {
        if let (FdTarget::Socket { inode }, None) = (&e.target, e.tid)
            && !known.contains(inode)
            && let Some(ns) = netns::of_socket(args.pid, e.fd)
            && !namespaces
                .iter()
                .chain(&others)
                .any(|n| n.id.inode == ns.id.inode)
        {
            others.push(ns);
        }
    }
    if !others.is_empty()
        && let Ok(more) = sockscope::snapshot::snapshot(&others, &req, true, true, true)
    {
        snap.sockets.extend(more.sockets);
    }
    let by_inode: HashMap<u64, &Socket> = snap
        .sockets
        .iter()
        .filter(|s| s.inode != 0)
        .map(|s| (s.inode, s))
        .collect();
    let mut totals: BTreeMap<String, usize> = BTreeMap::new();
    let rows: Vec<(FdEntry, Option<Socket>)> = fds
        .into_iter()
        .map(|e| {
            let sock = match e.target {
                FdTarget::Socket { inode } => by_inode.get(&inode).map(|s| (*s).clone()),
                _ => None,
            };
            let kind = match &sock {
                Some(s) => format!("socket/{}", s.proto.short()),
                None => e.target.kind_name().to_string(),
            };
            *totals.entry(kind).or_default() += 1;
            (e, sock)
        })
        .collect();
    let mut w = out::stdout();
    let res = if args.out.structured() {
        let report = ProcReport {
            process: info,
            fds: rows
                .into_iter()
                .map(|(entry, socket)| FdRow { entry, socket })
                .collect(),
            totals,
        };
        out::document(&mut w, args.out.format(), &report, false)
    } else {
        (|| {
            writeln!(
                w,
                "process {} {} (user {}, parent {}): {}",
                info.pid,
                view::printable(&info.comm),
                info.user.clone().unwrap_or_else(|| info.uid.to_string()),
                info.ppid,
                view::printable(&info.cmdline.join(" "))
            )?;
            writeln!(w)?;
            view::fd_table(args.pid, &rows).write(&mut w, out::use_color(cli.color))?;
            let parts: Vec<String> = totals.iter().map(|(k, v)| format!("{v} {k}")).collect();
            writeln!(w, "\n{} fds: {}", rows.len(), parts.join(", "))
        })()
    };
    res.and_then(|_| w.flush())
        .map(|_| FOUND)
        .or_else(out::ignore_broken_pipe)
}
