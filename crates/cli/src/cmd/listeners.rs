//! `sockscope listeners`: every listening TCP socket with its queues, the
//! connections it produced, its reuseport group, and the namespace's listen
//! counters; with --interval, what changed.

use crate::cli::Cli;
use crate::{FOUND, Fail, NOTHING, out};
use sockscope::model::{Proto, Socket};
use sockscope::query::services::Services;
use sockscope::report::listeners;
use sockscope::source::counters::Counters;
use sockscope::source::netns::{self, NetnsTarget};
use sockscope::view::explain::{self as view, ListenerCols};
use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "\
Reading it:
  Accept-Q  connections the kernel finished (3-way handshake done) that the
            application has not accept()ed yet.
  Backlog   the limit given to listen(), capped by net.core.somaxconn. The
            kernel lets the queue reach Backlog+1; after that it drops new
            SYNs (clients stay in SYN-SENT and retry) and the final ACKs of
            handshakes already under way; both count as ListenOverflows.
  SYN-RECV  half-open: SYN received, SYN-ACK sent, final ACK not yet seen.
  Conns     established (or closing) connections on the listener's port.
  CLAMPED?  Backlog equals somaxconn: the application probably asked for more.

Examples:
  sockscope listeners                 all TCP listeners and the listen counters
  sockscope listeners --interval 1    queues and counters, every second
  sockscope listeners --all-netns --json")]
pub struct ListenersArgs {
    /// IPv4 only.
    #[arg(short = '4', long)]
    pub ipv4: bool,
    /// IPv6 only.
    #[arg(short = '6', long)]
    pub ipv6: bool,
    /// Numeric ports.
    #[arg(short = 'n', long)]
    pub numeric: bool,
    #[command(flatten)]
    pub out: crate::out::OutputArgs,
    /// Seconds between reports; each report shows counter deltas.
    #[arg(long, value_name = "SECS")]
    pub interval: Option<f64>,
    /// Number of reports with --interval (default: until interrupted).
    #[arg(long, value_name = "N", requires = "interval")]
    pub count: Option<u64>,
    #[command(flatten)]
    pub ns: crate::cli::NetnsArgs,
}

pub fn run(args: &ListenersArgs, cli: &Cli) -> Result<u8, Fail> {
    if let Some(i) = args.interval
        && !(i > 0.0 && i.is_finite())
    {
        return Err(Fail::usage(format!(
            "--interval {i}: give a positive number of seconds, e.g. --interval 1"
        )));
    }
    let target = args.ns.target();
    let namespaces = netns::open(&target).map_err(Fail::from)?;
    let label = target != NetnsTarget::Current;
    let opts = listeners::Options {
        ipv4: args.ipv4 || !args.ipv6,
        ipv6: args.ipv6 || !args.ipv4,
        label,
        tolerant: target == NetnsTarget::All,
    };
    let color = out::use_color(cli.color);
    let services = (!args.numeric).then(Services::system);
    let namer = |port: u16, proto: Proto| -> Option<&str> {
        (proto == Proto::Tcp)
            .then_some(())
            .and_then(|_| services.and_then(|s| s.name(port, "tcp")))
    };
    let mut previous: Option<HashMap<u64, Counters>> = None;
    let mut round = 0u64;
    let mut any = false;
    loop {
        let got = listeners::collect(&namespaces, opts, previous.as_ref()).map_err(Fail::from)?;
        if round == 0
            && let Some(scan) = &got.owners
        {
            super::warn_denied(scan);
        }
        let report = got.report;
        let health = &report.listeners;
        any |= !health.is_empty();
        previous = Some(
            report
                .namespaces
                .iter()
                .map(|r| (r.netns.inode, r.counters.clone()))
                .collect(),
        );
        let somaxconn = |s: &Socket| report.somaxconn_of(s);
        let mut w = out::stdout();
        let res = (|| -> std::io::Result<()> {
            if args.out.structured() {
                out::document(&mut w, args.out.format(), &report, args.interval.is_some())?;
            } else {
                if args.interval.is_some() {
                    writeln!(w, "--- report {} ---", round + 1)?;
                }
                let cols = ListenerCols {
                    netns: label && namespaces.len() > 1,
                    somaxconn: &somaxconn,
                };
                view::listeners_table(health, &cols, Some(&namer)).write(&mut w, color)?;
                for r in &report.namespaces {
                    writeln!(
                        w,
                        "\nlisten counters of netns {} (net.core.somaxconn = {}){}:",
                        r.netns,
                        r.somaxconn.map(|v| v.to_string()).unwrap_or("?".into()),
                        if r.delta.is_some() {
                            ", change since the last report"
                        } else {
                            ""
                        }
                    )?;
                    view::write_listen_counters(&mut w, &r.counters, r.delta.as_ref(), color)?;
                }
                let full: Vec<_> = health.iter().filter(|h| h.full).collect();
                if !full.is_empty() {
                    writeln!(
                        w,
                        "\n{} listener(s) at capacity: the application is not calling accept() fast enough (or at all).",
                        full.len()
                    )?;
                }
            }
            w.flush()
        })();
        if let Err(e) = res {
            return out::ignore_broken_pipe(e);
        }
        round += 1;
        match (args.interval, args.count) {
            (None, _) => break,
            (Some(_), Some(c)) if round >= c => break,
            (Some(i), _) => std::thread::sleep(Duration::from_secs_f64(i)),
        }
    }
    Ok(if any { FOUND } else { NOTHING })
}
