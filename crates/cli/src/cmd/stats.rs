//! `sockscope stats`: how many sockets of each kind and state, who holds
//! the most, the kernel's socket memory, and the TCP settings that shape
//! queues and buffers, each explained.

use crate::cli::Cli;
use crate::{FOUND, Fail, out};
use sockscope::model::State;
use sockscope::report::stats::{self, StatsReport};
use sockscope::source::netns::{self, NetnsTarget};
use sockscope::view::table::{Align, Table};
use std::io::Write;

#[derive(clap::Args, Debug, Clone)]
pub struct StatsArgs {
    #[command(flatten)]
    pub out: crate::out::OutputArgs,
    /// How many processes to list by socket count.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    #[command(flatten)]
    pub ns: crate::cli::NetnsArgs,
}

pub fn run(args: &StatsArgs, cli: &Cli) -> Result<u8, Fail> {
    let target = args.ns.target();
    if target == NetnsTarget::All {
        return Err(Fail::usage(
            "stats reports one network namespace: name it with --netns NAME or --netns-pid PID",
        ));
    }
    let namespaces = netns::open(&target).map_err(Fail::from)?;
    let got = stats::collect(&namespaces[0], args.top).map_err(Fail::from)?;
    if let Some(scan) = &got.owners {
        super::warn_denied(scan);
    }
    let stats = got.report;
    let mut w = out::stdout();
    let res = if args.out.structured() {
        out::document(&mut w, args.out.format(), &stats, false)
    } else {
        write_text(&mut w, &stats, out::use_color(cli.color))
    };
    res.and_then(|_| w.flush())
        .map(|_| FOUND)
        .or_else(out::ignore_broken_pipe)
}

fn write_text(w: &mut impl Write, s: &StatsReport, color: bool) -> std::io::Result<()> {
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
