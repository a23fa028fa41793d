//! `sockscope who TARGET`: the chain from a port (or inode, fd, path) to
//! the kernel's row, the inode, every fd that holds it and the process.

use crate::cli::Cli;
use crate::{FOUND, Fail, NOTHING, out};
use sockscope::explain::{self, Target};
use sockscope::model::Socket;
use sockscope::source::netns::{self, NetnsTarget};
use sockscope::source::process::{self, FdTarget};
use sockscope::source::{Kind, Request};
use sockscope::view::explain as view;
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

const EXAMPLES: &str = "\
Examples:
  sockscope who :8080              who listens on (or talks from) port 8080,
                                   and the whole chain
  sockscope who 127.0.0.1:5432     a specific address
  sockscope who 53/udp             UDP only
  sockscope who inode:35587        the socket with inode 35587
                                   (from ls -e, /proc/net/tcp)
  sockscope who 216/3              fd 3 of process 216
  sockscope who /run/docker.sock   a UNIX socket by path";

#[derive(clap::Args, Debug, Clone)]
#[command(after_help = EXAMPLES)]
pub struct WhoArgs {
    /// :PORT, ADDR:PORT, [ADDR6]:PORT, PORT/udp, inode:N, PID/FD, or a UNIX socket path.
    pub target: String,
    #[command(flatten)]
    pub out: crate::out::OutputArgs,
    #[command(flatten)]
    pub ns: crate::cli::NetnsArgs,
    /// Show at most this many full chains (the rest are listed in one line each).
    #[arg(long, default_value_t = 10)]
    pub max: usize,
}

pub fn run(args: &WhoArgs, cli: &Cli) -> Result<u8, Fail> {
    let mut target = explain::parse_target(&args.target).map_err(|e| Fail::usage(e.to_string()))?;
    let mut ns_target = args.ns.target();
    // The namespace of the socket a PID/FD names, asked of the socket.
    let mut socket_ns = None;
    // PID/FD: the fd names an inode, in the socket's namespace (usually,
    // but not always, the process's: a socket can be passed across).
    if let Target::PidFd { pid, fd } = target {
        let e = process::find_fd(Path::new("/proc"), pid, fd).map_err(super::process_error)?;
        match e.target {
            FdTarget::Socket { inode } => {
                target = Target::Inode { inode };
                if ns_target == NetnsTarget::Current {
                    socket_ns = e.tid.is_none().then(|| netns::of_socket(pid, fd)).flatten();
                    ns_target = NetnsTarget::Pid(pid);
                }
            }
            other => {
                return Err(Fail::usage(format!(
                    "fd {fd} of process {pid} is not a socket: it is {} ({})",
                    other.kind_name(),
                    e.link
                )));
            }
        }
    }
    let namespaces = match socket_ns {
        Some(ns) => vec![ns],
        None => super::open_netns(&ns_target).map_err(Fail::from)?,
    };
    let label = ns_target != NetnsTarget::Current;
    let mut kinds = target.kinds();
    // Listener analysis needs every TCP state of the port.
    if !kinds.contains(&Kind::Tcp) && matches!(target, Target::Inode { .. }) {
        kinds.push(Kind::Tcp);
    }
    let req = Request::all_states(&kinds);
    // A port target: let the kernel keep only that port's sockets (the
    // listener, its half-open and accepted connections all share it).
    let local_port = match &target {
        Target::Port { port, .. } | Target::Addr { port, .. } => Some(*port),
        _ => None,
    };
    let snap = sockscope::snapshot::snapshot_port(
        &namespaces,
        &req,
        label,
        true,
        ns_target == NetnsTarget::All,
        local_port,
    )
    .map_err(Fail::from)?;
    super::report_snapshot(&snap, cli.verbose);
    let sockets = snap.sockets;
    let matched: Vec<&Socket> = sockets.iter().filter(|s| target.matches(s)).collect();
    if matched.is_empty() {
        let kinds: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
        let where_ = namespaces
            .iter()
            .map(|n| n.id.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        eprintln!(
            "sockscope: no socket matches {} (searched {} sockets in every state, in network namespace {})",
            args.target,
            kinds.join(", "),
            where_
        );
        return Ok(NOTHING);
    }
    let health = explain::listener_health(&sockets);
    // A listener's children are shown inside its chain, not on their own.
    let mut shown_as_child: HashSet<(u64, Option<u64>)> = HashSet::new();
    for h in &health {
        if matched
            .iter()
            .any(|m| std::ptr::eq(*m, &h.listener) || m.inode == h.listener.inode)
        {
            for c in h.children.iter().chain(&h.half_open) {
                shown_as_child.insert(id(c));
            }
        }
    }
    let primary: Vec<&Socket> = matched
        .iter()
        .copied()
        .filter(|s| s.is_listener() || !shown_as_child.contains(&id(s)))
        .collect();

    // Each listener's health goes into its chain (moved, not copied: it
    // holds every connection of the port).
    let mut health: Vec<Option<explain::ListenerHealth>> = health.into_iter().map(Some).collect();
    let mut chains = Vec::new();
    for s in primary.iter().take(args.max) {
        let listener = health
            .iter_mut()
            .find(|h| {
                h.as_ref().is_some_and(|h| {
                    h.listener.inode == s.inode && h.listener.cookie == s.cookie && s.is_listener()
                })
            })
            .and_then(Option::take);
        chains.push(explain::build_chain_with(
            s,
            &sockets,
            listener,
            &namespaces,
            &snap.read_ahead,
        ));
    }
    let mut w = out::stdout();
    let color = out::use_color(cli.color);
    let res = if args.out.structured() {
        out::list(&mut w, args.out.format(), &chains)
    } else {
        (|| {
            for (i, c) in chains.iter().enumerate() {
                if i > 0 {
                    writeln!(w)?;
                }
                view::write_chain(&mut w, c, color)?;
            }
            if primary.len() > args.max {
                writeln!(w, "\n{} more matching sockets:", primary.len() - args.max)?;
                for s in &primary[args.max..] {
                    writeln!(w, "  {}", view::socket_line(s))?;
                }
            }
            Ok(())
        })()
    };
    res.and_then(|_| w.flush())
        .map(|_| FOUND)
        .or_else(out::ignore_broken_pipe)
}

fn id(s: &Socket) -> (u64, Option<u64>) {
    (s.inode, s.cookie)
}
