//! `sockscope top`: a live view of connections, processes, listeners and
//! namespaces with rates, in the terminal (`tui`), or printed once or N
//! times (`--once`, `--iterations N`, `--json`) for scripts.

mod data;
mod tui;
mod views;

use crate::cli::Cli;
use crate::{FOUND, Fail, out};
use data::{Data, Sampler};
use sockscope::live::RowInfo;
use sockscope::model::Socket;
use std::io::Write;
use std::time::{Duration, Instant};
pub use views::View;

#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "\
Views (one key each): 1 connections (ls -tanp live, with bytes/s in and out,
retransmits/s and rtt from tcp_info deltas), 2 processes (sockets by state,
connections opened/closed per second, bytes/s), 3 listeners (accept queue
against backlog, SYN-RECV, accepted/s, reuseport groups; the namespaces'
ListenOverflows/ListenDrops per second), 4 namespaces.

Keys: Tab/1-4 views, Up/Down/PgUp/PgDn/Home/End move, < > sort column
(or click a header), r reverse, / filter (ss syntax, as `ls`), Enter the
`who` chain of the row, space pause, ? help, q quit.

New rows are shown bold for one refresh; closed rows stay dimmed for 3 s.

Examples:
  sockscope top                          live view, refresh every second
  sockscope top -d 2 state established   every 2 s, established only
  sockscope top --once --view listeners  one refresh of one view, as text
  sockscope top --iterations 5 --json    five refreshes, a JSON object each")]
pub struct TopArgs {
    /// Seconds between refreshes.
    #[arg(short = 'd', long, value_name = "SECS", default_value_t = 1.0)]
    pub interval: f64,
    /// Print the views once (rates over one interval) and exit.
    #[arg(long, conflicts_with = "iterations")]
    pub once: bool,
    /// Print N refreshes and exit.
    #[arg(long, short = 'n', value_name = "N")]
    pub iterations: Option<u64>,
    // --json / --jsonl, with --once / --iterations: one JSON object per
    // refresh, a line each.
    #[command(flatten)]
    pub out: crate::out::OutputArgs,
    /// The view to start in (interactive) or to print (--once; default: all).
    #[arg(long, value_enum)]
    pub view: Option<View>,
    /// Width of the printed tables with --once (default: the terminal's, or 160).
    #[arg(long, value_name = "COLS")]
    pub width: Option<u16>,
    #[command(flatten)]
    pub ns: crate::cli::NetnsArgs,
    /// Filter expression (ss syntax, as `ls`), applied to connections and listeners.
    #[arg(value_name = "FILTER")]
    pub filter: Vec<String>,
}

pub fn run(args: &TopArgs, cli: &Cli) -> Result<u8, Fail> {
    if !(args.interval > 0.0 && args.interval.is_finite() && args.interval <= 3600.0) {
        return Err(Fail::usage(format!(
            "--interval {}: give a number of seconds between 0 and 3600, e.g. -d 1",
            args.interval
        )));
    }
    if args.iterations == Some(0) {
        return Err(Fail::usage(
            "--iterations 0: give at least 1 (or --once)".to_string(),
        ));
    }
    if args.out.structured() && !args.once && args.iterations.is_none() {
        return Err(Fail::usage(
            "--json and --jsonl print refreshes for scripts: add --once or --iterations N"
                .to_string(),
        ));
    }
    let filter = sockscope::query::parse(&args.filter).map_err(|e| Fail::usage(e.to_string()))?;
    // One malloc arena: top lives long and its peak is one snapshot; with
    // an arena per thread the scans' threads leave memory resident.
    crate::sys::one_malloc_arena();
    let mut sampler = Sampler::new(args.ns.target(), filter)?;
    let interval = Duration::from_secs_f64(args.interval);
    if args.once || args.iterations.is_some() {
        return print(args, &mut sampler, interval);
    }
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(Fail::usage(
            "top draws on a terminal; for a pipe or a file use --once or --iterations N (with --json for scripts)"
                .to_string(),
        ));
    }
    tui::run(args, cli, sampler, interval, out::use_color(cli.color))
}

#[derive(serde::Serialize)]
struct Conn<'a> {
    #[serde(flatten)]
    socket: &'a Socket,
    #[serde(flatten)]
    rates: &'a RowInfo,
}

#[derive(serde::Serialize)]
struct Refresh<'a> {
    schema: &'static str,
    iteration: u64,
    interval_s: Option<f64>,
    opened: usize,
    closed: usize,
    connections: Vec<Conn<'a>>,
    processes: &'a [sockscope::live::ProcRow],
    listeners: &'a [sockscope::live::ListenerRow],
    namespaces: &'a [sockscope::live::NsRow],
}

fn print(args: &TopArgs, sampler: &mut Sampler, interval: Duration) -> Result<u8, Fail> {
    let n = args.iterations.unwrap_or(1);
    let mut data = Data::default();
    // Every view for JSON; the one asked for (or all) as text.
    let views: Vec<View> = match args.view {
        Some(v) if !args.out.structured() => vec![v],
        _ => View::ALL.to_vec(),
    };
    // The first read is the baseline the rates are taken against.
    sampler.refresh(&mut data, &[])?;
    for w in &data.warnings {
        eprintln!("sockscope: {}", sockscope::view::escape::escape_str(w));
    }
    let mut next = Instant::now() + interval;
    let width = args.width.unwrap_or_else(|| {
        crossterm::terminal::size()
            .ok()
            .filter(|_| std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .map_or(160, |(w, _)| w)
    });
    let stdout = std::io::stdout();
    for it in 1..=n {
        let now = Instant::now();
        if next > now && crate::signals::wait(next - now) {
            break;
        }
        next += interval;
        sampler.refresh(&mut data, &views)?;
        let mut w = std::io::BufWriter::new(stdout.lock());
        let res = if args.out.structured() {
            let r = Refresh {
                schema: "sockscope.top/1",
                iteration: it,
                interval_s: data.frame.interval_s,
                opened: data.frame.opened,
                closed: data.frame.closed,
                connections: data
                    .visible
                    .iter()
                    .map(|&i| Conn {
                        socket: &data.frame.sockets[i],
                        rates: &data.frame.info[i],
                    })
                    .collect(),
                processes: &data.processes,
                listeners: &data.listeners,
                namespaces: &data.namespaces,
            };
            crate::out::document(&mut w, args.out.format(), &r, true)
        } else {
            (|| {
                if n > 1 {
                    writeln!(
                        w,
                        "--- refresh {it} ({:.2} s) ---",
                        data.frame.interval_s.unwrap_or(0.0)
                    )?;
                }
                for (k, v) in views.iter().enumerate() {
                    if k > 0 {
                        writeln!(w)?;
                    }
                    writeln!(w, "{}", &v.title()[2..])?;
                    for l in views::text(&data, *v, width, None) {
                        writeln!(w, "{l}")?;
                    }
                }
                Ok(())
            })()
        };
        if let Err(e) = res.and_then(|_| w.flush()) {
            return out::ignore_broken_pipe(e);
        }
        if crate::signals::stop_requested() {
            break;
        }
    }
    Ok(FOUND)
}

/// The `who` chain of one socket, as text lines: the socket is read afresh
/// (its port, every TCP state, with owners) as `who` does.
pub fn chain_lines(sampler: &Sampler, s: &Socket) -> Vec<String> {
    use sockscope::explain;
    use sockscope::source::{Kind, Request};
    let req = Request::all_states(&[Kind::Tcp]);
    let snap = match sockscope::snapshot::snapshot_port(
        &sampler.namespaces,
        &req,
        sampler.label(),
        true,
        true,
        s.local.port(),
    ) {
        Ok(s) => s,
        Err(e) => return vec![format!("could not read the socket: {e}")],
    };
    let key = sockscope::live::key_of(s);
    let Some(found) = snap
        .sockets
        .iter()
        .find(|x| sockscope::live::key_of(x) == key)
    else {
        return vec![
            "this socket is gone from the kernel's table; what was last seen:".to_string(),
            sockscope::view::explain::socket_line(s),
        ];
    };
    let health = explain::listener_health(&snap.sockets);
    let chain = explain::build_chain(
        found,
        &snap.sockets,
        &health,
        &sampler.namespaces,
        &snap.read_ahead,
    );
    let mut buf = Vec::new();
    if sockscope::view::explain::write_chain(&mut buf, &chain, false).is_err() {
        return vec!["could not render the chain".to_string()];
    }
    String::from_utf8_lossy(&buf)
        .lines()
        .map(|l| l.replace('\t', "    "))
        .collect()
}
