//! `sockscope ls`: the socket table joined to owners, filtered, rendered.

use crate::cli::{Cli, LsArgs, Source};
use crate::{FOUND, Fail, NOTHING, out};
use sockscope::model::{Proto, Socket, StateSet};
use sockscope::query::{self, services::Services};
use sockscope::source::netns::{self, NetnsTarget};
use sockscope::source::owners::{self, OwnerScan};
use sockscope::source::sock_diag::Extensions;
use sockscope::source::{self, Kind, Request, SourceChoice, SourceError};
use sockscope::view::sockets::{self as view, Columns};
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

fn target(args: &LsArgs) -> NetnsTarget {
    if let Some(n) = &args.netns {
        NetnsTarget::Named(n.clone())
    } else if let Some(p) = args.netns_pid {
        NetnsTarget::Pid(p)
    } else if args.all_netns {
        NetnsTarget::All
    } else {
        NetnsTarget::Current
    }
}

fn source_error(e: SourceError) -> Fail {
    if e.is_privilege() {
        Fail::privilege(e.to_string())
    } else {
        match e {
            SourceError::Netns(netns::NetnsError::NoSuchName { .. })
            | SourceError::Netns(netns::NetnsError::NoSuchPid { .. })
            | SourceError::Netns(netns::NetnsError::BadName(_)) => Fail::usage(e.to_string()),
            e => Fail::system(e.to_string()),
        }
    }
}

pub fn run(args: &LsArgs, cli: &Cli) -> Result<u8, Fail> {
    let filter = query::parse(&args.filter).map_err(|e| Fail::usage(e.to_string()))?;
    let req = Request {
        kinds: kinds(args),
        ipv4: args.ipv4 || !args.ipv6,
        ipv6: args.ipv6 || !args.ipv4,
        states: states(args, &filter),
        source: match args.source {
            Source::Auto => SourceChoice::Auto,
            Source::Netlink => SourceChoice::Netlink,
            Source::Proc => SourceChoice::Proc,
        },
        ext: Extensions {
            info: args.info,
            skmem: args.memory,
            cong: args.info,
        },
    };
    let want_owners = args.processes || filter.needs_owners();
    let target = target(args);
    let label = target != NetnsTarget::Current;
    let namespaces = netns::open(&target).map_err(|e| source_error(e.into()))?;

    // The fd-table scan and the socket dump are independent: run them at
    // the same time.
    let (sockets, notes, scan) = std::thread::scope(|s| {
        let scan = want_owners.then(|| s.spawn(|| owners::scan("/proc")));
        let mut sockets: Vec<Socket> = Vec::new();
        let mut notes = Vec::new();
        let mut err = None;
        for ns in &namespaces {
            match source::collect(ns, &req, label) {
                Ok(c) => {
                    sockets.extend(c.sockets);
                    for n in c.notes {
                        if !notes.contains(&n) {
                            notes.push(n);
                        }
                    }
                }
                // With --all-netns a namespace that vanished or refuses us
                // is reported, not fatal.
                Err(e) if target == NetnsTarget::All => notes.push(format!("{}: {e}", ns.id)),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        let scan = scan.map(|h| h.join().unwrap_or_else(|_| Ok(OwnerScan::default())));
        match err {
            Some(e) => Err(e),
            None => Ok((sockets, notes, scan)),
        }
    })
    .map_err(source_error)?;

    let mut sockets = sockets;
    if cli.verbose {
        for n in &notes {
            eprintln!("sockscope: {n}");
        }
    }
    if let Some(scan) = scan {
        let scan = scan.map_err(|e| Fail::system(e.to_string()))?;
        if scan.denied > 0 {
            eprintln!(
                "sockscope: could not read the fd tables of {} of {} processes, so their sockets show no owner; \
run as root (or with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH) to see every owner",
                scan.denied, scan.processes
            );
        }
        sockscope::join::attach_owners(&mut sockets, &scan);
    }
    if !filter.is_empty() {
        sockets.retain(|s| filter.matches(s));
    }

    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let written = if args.json {
        view::write_json(&mut w, &sockets)
    } else if args.jsonl {
        view::write_jsonl(&mut w, &sockets)
    } else {
        let cols = Columns {
            netid: view::several_protocols(&sockets)
                || req.kinds.len() > 1
                || req.kinds.contains(&Kind::Unix),
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
        let table = view::table(&sockets, cols, Some(&namer));
        if args.no_header {
            table.write_rows(&mut w, out::use_color(cli.color))
        } else {
            table.write(&mut w, out::use_color(cli.color))
        }
    };
    let code = if sockets.is_empty() { NOTHING } else { FOUND };
    written
        .and_then(|_| w.flush())
        .map(|_| code)
        .or_else(out::ignore_broken_pipe)
}
