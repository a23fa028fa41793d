//! `sockscope ls`: the socket table joined to owners, filtered, rendered.

use crate::cli::{Cli, LsArgs, Source};
use crate::{FOUND, Fail, NOTHING, out};
use sockscope::model::{Proto, StateSet};
use sockscope::query::{self, services::Services};
use sockscope::source::netns::NetnsTarget;
use sockscope::source::sock_diag::Extensions;
use sockscope::source::{self, Kind, Request, SourceChoice};
use sockscope::view::sockets::{self as view, Columns, StreamWriter};
use std::io::Write;

/// Which states the flags and filter ask for.
fn states(args: &LsArgs, filter: &query::Filter) -> StateSet {
    let base = if args.all {
        StateSet::ALL
    } else if args.listening {
        source::listening_states()
    } else {
        source::default_states()
    };
    match filter.states() {
        // An explicit state filter replaces ss's default set, and narrows -a / -l.
        Some(f) if args.all || args.listening => f.intersect(base),
        Some(f) => f,
        None => base,
    }
}

fn kinds(args: &LsArgs) -> Vec<Kind> {
    let mut k = Vec::new();
    if args.tcp {
        k.push(Kind::Tcp);
    }
    if args.udp {
        k.push(Kind::Udp);
    }
    if args.udplite {
        k.push(Kind::Udplite);
    }
    if args.raw {
        k.push(Kind::Raw);
    }
    if args.unix {
        k.push(Kind::Unix);
    }
    if k.is_empty() {
        k = vec![Kind::Tcp, Kind::Udp, Kind::Raw];
        // -4 / -6 alone mean "internet sockets of that family", as in ss.
        if !args.ipv4 && !args.ipv6 {
            k.push(Kind::Unix);
        }
    }
    k
}

pub fn run(args: &LsArgs, cli: &Cli) -> Result<u8, Fail> {
    let filter = query::parse(&args.filter).map_err(|e| Fail::usage(e.to_string()))?;
    let req = Request::all_states(&kinds(args))
        .families(args.ipv4 || !args.ipv6, args.ipv6 || !args.ipv4)
        .states(states(args, &filter))
        .source(match args.source {
            Source::Auto => SourceChoice::Auto,
            Source::Netlink => SourceChoice::Netlink,
            Source::Proc => SourceChoice::Proc,
            Source::Bpf => SourceChoice::Bpf,
        })
        .ext(Extensions {
            info: args.info,
            skmem: args.memory,
            cong: args.info,
        })
        // Ports and addresses of the filter, tested by the kernel as it
        // dumps (it may pass more; the filter decides each row).
        .bytecode(filter.kernel_bytecode());
    let want_owners = args.processes || filter.needs_owners();
    // A filter on one local port: the kernel reads that port's sockets
    // alone (the filter still decides each row).
    let local_port = filter.local_port();
    let target = args.ns.target();
    let label = target != NetnsTarget::Current;
    let namespaces = super::open_netns(&target).map_err(Fail::from)?;

    let cols = Columns {
        // One kind other than UNIX gives rows of one protocol only.
        netid: req.kinds.len() > 1 || req.kinds.contains(&Kind::Unix),
        netns: label && namespaces.len() > 1,
        process: args.processes,
        extended: args.extended,
        timers: args.options,
        info: args.info,
        mem: args.memory,
    };
    let services = (!args.numeric).then(Services::system);
    let namer = |port: u16, proto: Proto| -> Option<&str> {
        let p = match proto {
            Proto::Tcp => "tcp",
            Proto::Udp | Proto::Udplite => "udp",
            _ => return None,
        };
        services.and_then(|s| s.name(port, p))
    };
    let color = out::use_color(cli.color);
    let header = !args.no_header;
    let all = target == NetnsTarget::All;

    // Kernel order (no --sort): rows are joined and written as the dump
    // produces them, in memory that does not grow with the table.
    let Some(key) = args.sort else {
        let mut sink = if args.out.structured() {
            Sink::Records(out::Records::new(args.out.format()), out::stdout())
        } else {
            Sink::Table(StreamWriter::new(
                out::stdout(),
                cols,
                Some(&namer),
                color,
                header,
            ))
        };
        let mut rows = 0;
        let mut failed = None;
        if let Sink::Records(r, w) = &mut sink {
            failed = r.open_list(w).err();
        }
        let snap = sockscope::snapshot::stream(
            &namespaces,
            &req,
            label,
            want_owners,
            all,
            local_port,
            |batch| {
                if failed.is_some() {
                    return false;
                }
                if !filter.is_empty() {
                    batch.retain(|s| filter.matches(s));
                }
                rows += batch.len();
                let r = match &mut sink {
                    Sink::Table(t) => t.push(batch),
                    Sink::Records(r, w) => batch.iter().try_for_each(|s| r.record(w, s)),
                };
                failed = r.err();
                failed.is_none()
            },
        );
        let (written, mut w) = match sink {
            Sink::Table(t) => match failed {
                Some(e) => (Err(e), None),
                None => match t.finish() {
                    Ok((_, w)) => (Ok(()), Some(w)),
                    Err(e) => (Err(e), None),
                },
            },
            Sink::Records(mut r, mut w) => {
                let done = match failed {
                    Some(e) => Err(e),
                    None => r.close(&mut w),
                };
                (done, Some(w))
            }
        };
        let snap = snap.map_err(Fail::from)?;
        super::report_snapshot(&snap, cli.verbose);
        let code = if rows == 0 { NOTHING } else { FOUND };
        return match &mut w {
            Some(w) => out::done(written, w, code),
            None => written.map(|_| code).or_else(out::ignore_broken_pipe),
        };
    };

    let snap =
        sockscope::snapshot::snapshot_port(&namespaces, &req, label, want_owners, all, local_port)
            .map_err(Fail::from)?;
    super::report_snapshot(&snap, cli.verbose);
    let mut sockets = snap.sockets;
    if !filter.is_empty() {
        sockets.retain(|s| filter.matches(s));
    }
    sockscope::query::sort::sort(&mut sockets, key);
    let mut w = out::stdout();
    let written = if args.out.structured() {
        out::list(&mut w, args.out.format(), &sockets)
    } else {
        view::write_table(&mut w, &sockets, cols, Some(&namer), color, header)
    };
    let code = if sockets.is_empty() { NOTHING } else { FOUND };
    out::done(written, &mut w, code)
}

/// Where streamed rows go: the table, or JSON records.
enum Sink<'a, W: Write> {
    Table(StreamWriter<'a, W>),
    Records(out::Records, W),
}
