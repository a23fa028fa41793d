//! `sockscope stats`: how many sockets of each kind and state, who holds
//! the most, the kernel's socket memory, and the TCP settings that shape
//! queues and buffers, each explained.

use super::ls::source_error;
use crate::cli::Cli;
use crate::{FOUND, Fail, out};
use sockscope::model::State;
use sockscope::source::counters::{self, Counters};
use sockscope::source::netns::{self, NetnsTarget};
use sockscope::source::{ALL_KINDS, Request};
use sockscope::view::table::{Align, Table};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

#[derive(clap::Args, Debug, Clone)]
pub struct StatsArgs {
    /// Output JSON.
    #[arg(long)]
    pub json: bool,
    /// How many processes to list by socket count.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    #[command(flatten)]
    pub ns: crate::cli::NetnsArgs,
}

/// The settings the seeds talk about: (sysctl, unit, meaning).
const SETTINGS: &[(&str, &str, &str)] = &[
    (
        "net.core.somaxconn",
        "connections",
        "cap on every listen() backlog: the accept queue never exceeds it",
    ),
    (
        "net.ipv4.tcp_max_syn_backlog",
        "connections",
        "cap on half-open connections (SYN queue) per listener",
    ),
    (
        "net.ipv4.tcp_syncookies",
        "0/1/2",
        "1: answer with syncookies when the SYN queue overflows; 2: always",
    ),
    (
        "net.ipv4.tcp_rmem",
        "bytes min default max",
        "receive buffer per TCP socket; the default is the starting size",
    ),
    (
        "net.ipv4.tcp_wmem",
        "bytes min default max",
        "send buffer per TCP socket",
    ),
    (
        "net.ipv4.tcp_moderate_rcvbuf",
        "0/1",
        "1: the kernel grows receive buffers to fit the connection (autotuning)",
    ),
    (
        "net.ipv4.tcp_min_snd_mss",
        "bytes",
        "smallest MSS the kernel accepts from a peer",
    ),
    (
        "net.ipv4.ip_local_port_range",
        "ports low high",
        "ephemeral ports for outgoing connections: the limit on concurrent connections to one peer address and port",
    ),
    (
        "net.ipv4.tcp_fin_timeout",
        "seconds",
        "how long an orphaned connection may sit in FIN-WAIT-2",
    ),
    (
        "net.ipv4.tcp_tw_reuse",
        "0/1/2",
        "reuse TIME-WAIT sockets for new outgoing connections (2: loopback only)",
    ),
    (
        "net.ipv4.tcp_congestion_control",
        "name",
        "congestion control algorithm for new connections",
    ),
];

#[derive(serde::Serialize)]
struct Setting {
    name: &'static str,
    value: Option<String>,
    unit: &'static str,
    meaning: &'static str,
}

#[derive(serde::Serialize)]
struct ProcCount {
    pid: u32,
    comm: String,
    sockets: usize,
}

#[derive(serde::Serialize)]
struct Stats {
    netns: sockscope::model::Netns,
    total: usize,
    /// protocol -> state name -> count
    by_protocol: BTreeMap<String, BTreeMap<String, usize>>,
    top_processes: Vec<ProcCount>,
    /// Sockets no process we could see holds: the two counts below.
    sockets_without_owner: usize,
    /// ... because they have no file (inode 0): TIME-WAIT, half-open
    /// (SYN-RECV) and not-yet-accepted connections.
    sockets_without_file: usize,
    /// ... although they have a file (any state, UNIX too): held by the
    /// kernel itself, by processes we cannot see (another PID namespace,
    /// fd tables we may not read), or only in flight in a UNIX socket
    /// message (SCM_RIGHTS).
    sockets_holder_unseen: usize,
    sockstat: Counters,
    page_size_bytes: u64,
    settings: Vec<Setting>,
}

pub fn run(args: &StatsArgs, cli: &Cli) -> Result<u8, Fail> {
    let target = args.ns.target();
    if target == NetnsTarget::All {
        return Err(Fail::usage(
            "stats reports one network namespace: name it with --netns NAME or --netns-pid PID",
        ));
    }
    let namespaces = netns::open(&target).map_err(|e| source_error(e.into()))?;
    let ns = &namespaces[0];
    let req = Request::all_states(&ALL_KINDS);
    let snap = sockscope::snapshot::snapshot(&namespaces, &req, false, true, false)
        .map_err(source_error)?;
    if let Some(scan) = &snap.owners {
        super::warn_denied(scan);
    }
    let mut by_protocol: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut per_proc: HashMap<u32, (String, usize)> = HashMap::new();
    let mut orphans = 0;
    let mut fileless = 0;
    for s in &snap.sockets {
        *by_protocol
            .entry(s.proto.short().to_string())
            .or_default()
            .entry(s.state.name().to_string())
            .or_default() += 1;
        if s.owners.is_empty() {
            orphans += 1;
            if s.inode == 0 {
                fileless += 1;
            }
        }
        let mut seen = Vec::new();
        for o in &s.owners {
            if !seen.contains(&o.pid) {
                seen.push(o.pid);
                per_proc
                    .entry(o.pid)
                    .or_insert_with(|| (o.comm.clone(), 0))
                    .1 += 1;
            }
        }
    }
    let mut top: Vec<ProcCount> = per_proc
        .into_iter()
        .map(|(pid, (comm, n))| ProcCount {
            pid,
            comm,
            sockets: n,
        })
        .collect();
    top.sort_by(|a, b| b.sockets.cmp(&a.sockets).then(a.pid.cmp(&b.pid)));
    top.truncate(args.top);
    let (sockstat, settings) = netns::run_in(ns, || {
        let st = counters::read_sockstat(Path::new("/proc/thread-self/net")).unwrap_or_default();
        let settings: Vec<Setting> = SETTINGS
            .iter()
            .map(|(name, unit, meaning)| Setting {
                name,
                value: counters::read_sysctl(Path::new("/proc/sys"), name).ok(),
                unit,
                meaning,
            })
            .collect();
        (st, settings)
    })
    .map_err(|e| source_error(e.into()))?;
    let stats = Stats {
        netns: ns.id.clone(),
        total: snap.sockets.len(),
        by_protocol,
        top_processes: top,
        sockets_without_owner: orphans,
        sockets_without_file: fileless,
        sockets_holder_unseen: orphans - fileless,
        sockstat,
        page_size_bytes: rustix::param::page_size() as u64,
        settings,
    };
    let mut w = out::stdout();
    let res = if args.json {
        serde_json::to_writer_pretty(&mut w, &stats)
            .map_err(std::io::Error::other)
            .and_then(|_| writeln!(w))
    } else {
        write_text(&mut w, &stats, out::use_color(cli.color))
    };
    res.and_then(|_| w.flush())
        .map(|_| FOUND)
        .or_else(out::ignore_broken_pipe)
}

fn write_text(w: &mut impl Write, s: &Stats, color: bool) -> std::io::Result<()> {
    writeln!(w, "{} sockets in network namespace {}\n", s.total, s.netns)?;
    // Protocol x state matrix, states in kernel order, only those present.
    let present: Vec<State> = State::ALL
        .into_iter()
        .filter(|st| s.by_protocol.values().any(|m| m.contains_key(st.name())))
        .collect();
    let mut spec: Vec<(&'static str, Align)> =
        vec![("Netid", Align::Left), ("Total", Align::Right)];
    for st in &present {
        spec.push((st.ss_label(), Align::Right));
    }
    let mut t = Table::new(&spec);
    for (proto, m) in &s.by_protocol {
        t.cell(proto);
        t.cell(m.values().sum::<usize>());
        for st in &present {
            t.cell(m.get(st.name()).copied().unwrap_or(0));
        }
    }
    t.write(w, color)?;

    let page = s.page_size_bytes as i64;
    let g = |k: &str| s.sockstat.get(k);
    writeln!(w, "\nkernel accounting (/proc/net/sockstat):")?;
    if let Some(v) = g("sockets.used") {
        writeln!(w, "  sockets allocated (all families): {v}")?;
    }
    if let (Some(inuse), Some(orphan), Some(tw), Some(alloc), Some(mem)) = (
        g("TCP.inuse"),
        g("TCP.orphan"),
        g("TCP.tw"),
        g("TCP.alloc"),
        g("TCP.mem"),
    ) {
        writeln!(
            w,
            "  TCP: {inuse} in use, {orphan} orphaned (closed by the app, still finishing), {tw} TIME-WAIT, {alloc} allocated, memory {mem} pages = {} KiB",
            mem * page / 1024
        )?;
    }
    if let (Some(inuse), Some(mem)) = (g("UDP.inuse"), g("UDP.mem")) {
        writeln!(
            w,
            "  UDP: {inuse} in use, memory {mem} pages = {} KiB",
            mem * page / 1024
        )?;
    }
    if let Some(v) = g("TCP6.inuse") {
        writeln!(
            w,
            "  TCP6: {v} in use; UDP6: {}; RAW: {}; RAW6: {}",
            g("UDP6.inuse").unwrap_or(0),
            g("RAW.inuse").unwrap_or(0),
            g("RAW6.inuse").unwrap_or(0)
        )?;
    }
    writeln!(
        w,
        "\nsockets held by no process we could see: {}",
        s.sockets_without_owner
    )?;
    writeln!(
        w,
        "  {} with no file (TIME-WAIT, half-open and not-yet-accepted connections)",
        s.sockets_without_file
    )?;
    writeln!(
        w,
        "  {} with a file whose holder we could not see (held by the kernel, by a process of another \
         PID namespace or one we may not read, or in flight in a UNIX socket message)",
        s.sockets_holder_unseen
    )?;
    if !s.top_processes.is_empty() {
        writeln!(w, "\nprocesses holding the most sockets:")?;
        let mut t = Table::new(&[
            ("Sockets", Align::Right),
            ("Pid", Align::Right),
            ("Command", Align::Left),
        ]);
        for p in &s.top_processes {
            t.cell(p.sockets);
            t.cell(p.pid);
            t.cell(sockscope::view::escape::escape_str(&p.comm));
        }
        t.write(w, color)?;
    }
    writeln!(w, "\nkernel TCP settings of this namespace:")?;
    let mut t = Table::new(&[
        ("Setting", Align::Left),
        ("Value", Align::Left),
        ("Unit", Align::Left),
        ("Meaning", Align::Left),
    ]);
    for st in &s.settings {
        t.cell(st.name);
        t.cell(st.value.as_deref().unwrap_or("-"));
        t.cell(st.unit);
        t.cell(st.meaning);
    }
    t.write(w, color)
}
