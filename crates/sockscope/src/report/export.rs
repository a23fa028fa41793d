//! The series `sockscope export` serves, as plain data: per listener
//! (queues, half-open count, reuseport group), per namespace (sockets by
//! protocol and state, the kernel's TCP counters, socket memory), per
//! process (sockets by state, the top N and the rest as `other`).
//!
//! Cardinality is bounded: [`Options::max_series`] caps the number of
//! series; namespaces come first, then listeners (fullest accept queue
//! first), then processes (most sockets first). What does not fit is
//! folded: listeners into one `port="other"` listener whose queues are the
//! sums, processes into `process="other"`, namespaces dropped; the counts
//! are in [`Folded`]. The exporter renders this report; it computes
//! nothing of its own.

use super::labels::{self, Platform};
use super::listeners;
use super::stats::{self, ByProtocol};
use crate::model::{Netns, Proto, Socket, State};
use crate::source::counters::Counters;
use crate::source::netns::OpenNetns;
use crate::source::{ALL_KINDS, Request, SourceError};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

pub const SCHEMA: &str = "sockscope.export/1";

/// The label value of the folded rest.
pub const OTHER: &str = "other";

/// One listener series set (one label set; reuseport sockets of one
/// process with equal labels are summed into it).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ListenerSeries {
    pub netns: String,
    pub addr: String,
    /// The port, or `other` for the folded rest.
    pub port: String,
    pub proto: String,
    /// comm of the first owner, when one was seen.
    pub process: Option<String>,
    pub pid: Option<u32>,
    pub platform: Platform,
    /// Connections waiting for accept() (sum over the summed sockets).
    pub accept_queue: Option<u64>,
    /// Backlog given to listen(), after the somaxconn cap (sum likewise).
    pub backlog: Option<u64>,
    /// Half-open (SYN-RECV) connections to the listener's address and port.
    pub syn_recv: u64,
    /// Listening sockets on the same address and port (SO_REUSEPORT): 1
    /// when alone.
    pub reuseport_group: Option<u64>,
    /// How many listening sockets this series stands for.
    pub sockets: u64,
}

impl ListenerSeries {
    fn series(&self) -> usize {
        1 + usize::from(self.accept_queue.is_some())
            + usize::from(self.backlog.is_some())
            + usize::from(self.reuseport_group.is_some())
    }
    fn fill(&self) -> f64 {
        match (self.accept_queue, self.backlog) {
            (Some(q), Some(b)) => (q as f64 + 1.0) / (b as f64 + 1.0),
            (Some(q), None) => q as f64,
            _ => 0.0,
        }
    }
}

/// One namespace's series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NsSeries {
    pub netns: String,
    pub sockets: ByProtocol,
    pub somaxconn: Option<u32>,
    /// netstat, snmp and sockstat counters, keyed `Group.Name`.
    pub counters: Counters,
}

impl NsSeries {
    fn series(&self) -> usize {
        self.sockets.values().map(BTreeMap::len).sum::<usize>()
            + self.counters.0.len()
            + usize::from(self.somaxconn.is_some())
    }
}

/// One process's series (or the folded `other`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProcSeries {
    /// `None` for `other`.
    pub pid: Option<u32>,
    /// comm, or `other`.
    pub process: String,
    pub platform: Platform,
    /// state name -> distinct sockets the process holds in that state.
    pub by_state: BTreeMap<String, u64>,
}

/// What was folded to keep within the series budget.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Folded {
    /// Listener label sets merged into the `other` listener.
    pub listeners: u64,
    /// Processes merged into `other` (beyond --top or the budget).
    pub processes: u64,
    /// Namespaces whose series were left out.
    pub namespaces: u64,
    /// Series that were not emitted because of the budget (listener and
    /// namespace series; processes beyond --top are not counted here).
    pub series: u64,
}

/// The answer of `sockscope export --json` and what `/metrics` renders.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExportReport {
    pub schema: &'static str,
    pub listeners: Vec<ListenerSeries>,
    pub namespaces: Vec<NsSeries>,
    pub processes: Vec<ProcSeries>,
    pub folded: Folded,
    /// Processes whose fd table could not be read (their sockets have no
    /// owner).
    pub owner_scan_denied: u64,
}

#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Processes with their own series; the rest are `other`.
    pub top: usize,
    /// Upper bound on the number of series of the report.
    pub max_series: usize,
}

fn ns_label(s: &Socket, single: &str) -> String {
    s.netns
        .as_ref()
        .map(|n| n.to_string())
        .unwrap_or_else(|| single.to_string())
}

/// Pure: the series of `sockets` (every kind and state of `namespaces`,
/// owners joined). `platform` says where a pid runs.
pub fn build(
    sockets: &[Socket],
    namespaces: Vec<(Netns, Counters, Option<u32>)>,
    platform: &mut dyn FnMut(u32) -> Platform,
    opts: Options,
    owner_scan_denied: u64,
) -> ExportReport {
    let single = namespaces
        .first()
        .map(|n| n.0.to_string())
        .unwrap_or_default();
    let mut budget = opts.max_series;
    let mut folded = Folded::default();

    // Namespaces: sockets by protocol and state, counters. Sockets without
    // a namespace label belong to the one namespace read.
    let mut per_ns: HashMap<Option<u64>, Vec<&Socket>> = HashMap::new();
    for s in sockets {
        per_ns
            .entry(s.netns.as_ref().map(|n| n.inode))
            .or_default()
            .push(s);
    }
    let mut ns_out = Vec::new();
    let unlabelled = per_ns.remove(&None).unwrap_or_default();
    for (i, (id, counters, somaxconn)) in namespaces.into_iter().enumerate() {
        let label = id.to_string();
        let mine = per_ns
            .get(&Some(id.inode))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let (by, _) = if i == 0 && !unlabelled.is_empty() {
            stats::count(unlabelled.iter().chain(mine).copied())
        } else {
            stats::count(mine.iter().copied())
        };
        let n = NsSeries {
            netns: label,
            sockets: by,
            somaxconn,
            counters,
        };
        // The first namespace (sockscope's own, or the one asked for) is
        // always kept.
        if i > 0 && n.series() > budget {
            folded.namespaces += 1;
            folded.series += n.series() as u64;
            continue;
        }
        budget = budget.saturating_sub(n.series());
        ns_out.push(n);
    }

    // Listeners, keyed by their label set. Only listeners, their half-open
    // connections and their reuseport siblings matter here: leaving the
    // established children out spares cloning them (tens of thousands on
    // a busy host).
    let relevant: Vec<Socket> = sockets
        .iter()
        .filter(|s| {
            s.proto == Proto::Tcp
                && matches!(s.state, State::Listen | State::SynRecv | State::NewSynRecv)
        })
        .cloned()
        .collect();
    let health = crate::explain::listener_health(&relevant);
    let mut keyed: BTreeMap<(String, String, u16, Option<u32>), ListenerSeries> = BTreeMap::new();
    for h in &health {
        let l = &h.listener;
        let (Some(ip), Some(port)) = (l.local.ip(), l.local.port()) else {
            continue;
        };
        let owner = l.owners.first();
        let netns = ns_label(l, &single);
        let addr = ip.to_string();
        let e = keyed
            .entry((netns.clone(), addr.clone(), port, owner.map(|o| o.pid)))
            .or_insert_with(|| ListenerSeries {
                netns,
                addr,
                port: port.to_string(),
                proto: l.proto.short().to_string(),
                process: owner.map(|o| o.comm.clone()),
                pid: owner.map(|o| o.pid),
                platform: owner.map(|o| platform(o.pid)).unwrap_or_default(),
                accept_queue: Some(0),
                backlog: Some(0),
                syn_recv: 0,
                reuseport_group: Some(1),
                sockets: 0,
            });
        e.accept_queue = e
            .accept_queue
            .zip(h.accept_queue)
            .map(|(a, b)| a + u64::from(b));
        e.backlog = e.backlog.zip(h.backlog).map(|(a, b)| a + u64::from(b));
        // Reuseport siblings on one address see the same half-open
        // connections (the kernel does not say which socket a request
        // socket will go to): count them once.
        e.syn_recv = e.syn_recv.max(u64::from(h.syn_recv));
        let group = h.reuseport_siblings.len() as u64 + 1;
        e.reuseport_group = e.reuseport_group.map(|g| g.max(group));
        e.sockets += 1;
    }
    let mut ls: Vec<ListenerSeries> = keyed.into_values().collect();
    ls.sort_by(|a, b| b.fill().total_cmp(&a.fill()));
    let mut listeners_out = Vec::new();
    let mut other: Option<ListenerSeries> = None;
    for l in ls {
        if l.series() <= budget && other.is_none() {
            budget -= l.series();
            listeners_out.push(l);
            continue;
        }
        folded.listeners += 1;
        folded.series += l.series() as u64;
        let o = other.get_or_insert_with(|| ListenerSeries {
            netns: String::new(),
            addr: String::new(),
            port: OTHER.into(),
            proto: l.proto.clone(),
            process: None,
            pid: None,
            platform: Platform::default(),
            accept_queue: Some(0),
            backlog: Some(0),
            syn_recv: 0,
            reuseport_group: None,
            sockets: 0,
        });
        o.accept_queue = Some(o.accept_queue.unwrap_or(0) + l.accept_queue.unwrap_or(0));
        o.backlog = Some(o.backlog.unwrap_or(0) + l.backlog.unwrap_or(0));
        o.syn_recv += l.syn_recv;
        o.sockets += l.sockets;
    }
    listeners_out.extend(other);

    // Processes: distinct sockets per pid and state.
    let mut per_pid: HashMap<u32, (&str, BTreeMap<&'static str, u64>, u64)> = HashMap::new();
    for s in sockets {
        for (i, o) in s.owners.iter().enumerate() {
            if s.owners[..i].iter().any(|p| p.pid == o.pid) {
                continue;
            }
            let e = per_pid
                .entry(o.pid)
                .or_insert_with(|| (o.comm.as_str(), BTreeMap::new(), 0));
            *e.1.entry(s.state.name()).or_default() += 1;
            e.2 += 1;
        }
    }
    let mut procs: Vec<_> = per_pid.into_iter().collect();
    procs.sort_by(|a, b| b.1.2.cmp(&a.1.2).then(a.0.cmp(&b.0)));
    let mut procs_out = Vec::new();
    let mut rest: Option<ProcSeries> = None;
    for (i, (pid, (comm, by_state, _))) in procs.into_iter().enumerate() {
        if i < opts.top && by_state.len() <= budget && rest.is_none() {
            budget -= by_state.len();
            procs_out.push(ProcSeries {
                pid: Some(pid),
                process: comm.to_string(),
                platform: platform(pid),
                by_state: by_state
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            });
            continue;
        }
        folded.processes += 1;
        let r = rest.get_or_insert_with(|| ProcSeries {
            pid: None,
            process: OTHER.into(),
            platform: Platform::default(),
            by_state: BTreeMap::new(),
        });
        for (k, v) in by_state {
            *r.by_state.entry(k.to_string()).or_default() += v;
        }
    }
    procs_out.extend(rest);

    ExportReport {
        schema: SCHEMA,
        listeners: listeners_out,
        namespaces: ns_out,
        processes: procs_out,
        folded,
        owner_scan_denied,
    }
}

/// A report and the notes of the read.
#[derive(Debug)]
pub struct Collected {
    pub report: ExportReport,
    pub notes: Vec<String>,
}

/// Read every socket of `namespaces` with owners, their counters, and the
/// cgroups of the processes that get series of their own.
pub fn collect(
    namespaces: &[OpenNetns],
    label: bool,
    opts: Options,
) -> Result<Collected, SourceError> {
    let req = Request::all_states(&ALL_KINDS);
    let snap = crate::snapshot::snapshot(namespaces, &req, label, true, true)?;
    let ns: Vec<_> = namespaces
        .iter()
        .map(|n| {
            let (c, m) = listeners::read_ns(n);
            (n.id.clone(), c, m)
        })
        .collect();
    let mut cache: HashMap<u32, Platform> = HashMap::new();
    let mut platform = |pid: u32| -> Platform {
        cache
            .entry(pid)
            .or_insert_with(|| labels::read(Path::new("/proc"), pid))
            .clone()
    };
    let denied = snap.owners.as_ref().map_or(0, |o| o.denied as u64);
    Ok(Collected {
        report: build(&snap.sockets, ns, &mut platform, opts, denied),
        notes: snap.notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, Family, Owner, Proto, SourceKind, State};

    fn sock(state: State, port: u16, peer: u16, owner: Option<(u32, &str)>) -> Socket {
        let ep = |port| Endpoint::Inet {
            addr: "127.0.0.1".parse().unwrap(),
            port,
        };
        let mut s = Socket::new(
            Proto::Tcp,
            Family::Inet,
            state,
            ep(port),
            ep(peer),
            SourceKind::Netlink,
        );
        if state == State::Listen {
            s.recv_q = Some(u32::from(port % 10));
            s.send_q = Some(5);
        }
        s.owners = owner
            .into_iter()
            .map(|(pid, comm)| Owner {
                pid,
                fd: 3,
                comm: comm.into(),
                uid: None,
                tid: None,
            })
            .collect();
        s
    }

    fn ns() -> Vec<(Netns, Counters, Option<u32>)> {
        let mut c = Counters::default();
        c.0.insert("TcpExt.ListenOverflows".into(), 3);
        vec![(
            Netns {
                inode: 1,
                name: None,
            },
            c,
            Some(4096),
        )]
    }

    fn unit(pid: u32) -> Platform {
        Platform {
            unit: Some(format!("svc{pid}.service")),
            ..Platform::default()
        }
    }

    #[test]
    fn listeners_namespaces_processes_and_other() {
        let mut v = vec![
            sock(State::Listen, 81, 0, Some((10, "a"))),
            sock(State::Listen, 81, 0, Some((10, "a"))), // reuseport, same process
            sock(State::SynRecv, 81, 999, None),
            sock(State::Established, 81, 1000, Some((10, "a"))),
        ];
        for i in 0..5 {
            v.push(sock(
                State::Established,
                2000 + i,
                81,
                Some((20 + u32::from(i), "c")),
            ));
        }
        let opts = Options {
            top: 2,
            max_series: 1000,
        };
        let r = build(&v, ns(), &mut unit, opts, 0);
        assert_eq!(r.schema, SCHEMA);
        assert_eq!(r.listeners.len(), 1, "{:?}", r.listeners);
        let l = &r.listeners[0];
        assert_eq!(l.netns, "net:[1]");
        assert_eq!((l.addr.as_str(), l.port.as_str()), ("127.0.0.1", "81"));
        assert_eq!(l.process.as_deref(), Some("a"));
        assert_eq!(l.platform.unit.as_deref(), Some("svc10.service"));
        // two sockets of one process summed; the group has two members
        assert_eq!((l.accept_queue, l.backlog), (Some(2), Some(10)));
        assert_eq!((l.reuseport_group, l.sockets), (Some(2), 2));
        assert_eq!(
            l.syn_recv, 1,
            "the half-open socket counts once for the group"
        );
        assert_eq!(r.namespaces[0].sockets["tcp"]["established"], 6);
        assert_eq!(
            r.namespaces[0].counters.get("TcpExt.ListenOverflows"),
            Some(3)
        );
        // pid 10 holds 3 sockets, the rest one each: top 2 = 10 and 20
        let names: Vec<_> = r
            .processes
            .iter()
            .map(|p| (p.pid, p.process.as_str()))
            .collect();
        assert_eq!(names, vec![(Some(10), "a"), (Some(20), "c"), (None, OTHER)]);
        assert_eq!(r.processes[0].by_state["listening"], 2);
        assert_eq!(r.processes[2].by_state["established"], 4);
        assert_eq!(r.folded.processes, 4);
        assert_eq!((r.folded.listeners, r.folded.series), (0, 0));
    }

    #[test]
    fn budget_folds_the_emptiest_listeners_into_other() {
        // ports 91..=95: accept queues 1..=5 of backlog 5
        let v: Vec<Socket> = (91..=95)
            .map(|p| sock(State::Listen, p, 0, Some((u32::from(p), "s"))))
            .collect();
        let ns_series = ns()[0].1.0.len() + 1 + 1; // counters + somaxconn + tcp/listening
        let opts = Options {
            top: 0,
            max_series: ns_series + 2 * 4, // room for two listeners (4 series each)
        };
        let r = build(&v, ns(), &mut |_| Platform::default(), opts, 0);
        let ports: Vec<_> = r.listeners.iter().map(|l| l.port.as_str()).collect();
        assert_eq!(ports, vec!["95", "94", OTHER], "fullest kept");
        let o = &r.listeners[2];
        assert_eq!(
            (o.accept_queue, o.backlog, o.sockets),
            (Some(1 + 2 + 3), Some(15), 3)
        );
        assert_eq!(r.folded.listeners, 3);
        assert_eq!(r.folded.series, 12);
        assert_eq!(r.folded.processes, 5, "top 0: every process is other");
    }
}
