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
use super::stats::ByProtocol;
use crate::model::{Netns, OwnerScan, Proto, Socket, State};
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

/// Sockets by protocol (`Proto as usize`) and state (`State as usize`,
/// the kernel's number).
type Grid = [[usize; 14]; 7];

const PROTOS: [Proto; 7] = [
    Proto::Tcp,
    Proto::Udp,
    Proto::Udplite,
    Proto::Raw,
    Proto::UnixStream,
    Proto::UnixDgram,
    Proto::UnixSeqpacket,
];

/// What the series are computed from, gathered one socket at a time (so
/// a scrape never holds the whole socket table): sockets by namespace,
/// protocol and state; per process, distinct sockets by state; and only
/// the sockets the listener series need (TCP listeners with their owners,
/// half-open connections). Counting is array indexing; the owners of the
/// sockets read without them are joined once at the end, by a merge of
/// the sorted (inode, state) list with the sorted owner table.
#[derive(Debug, Default)]
pub struct Tally {
    per_ns: Vec<(Option<u64>, Box<Grid>)>,
    relevant: Vec<Socket>,
    /// (inode, state) of the sockets whose owners are still to be joined.
    unjoined: Vec<(u64, u8)>,
    per_pid: HashMap<u32, (String, [u64; 14], u64)>,
}

fn relevant(s: &Socket) -> bool {
    s.proto == Proto::Tcp && matches!(s.state, State::Listen | State::SynRecv | State::NewSynRecv)
}

impl Tally {
    fn count(&mut self, s: &Socket) {
        let ns = s.netns.as_ref().map(|n| n.inode);
        // Sockets arrive namespace by namespace: the last one is the hit.
        let i = match self.per_ns.iter().rposition(|(n, _)| *n == ns) {
            Some(i) => i,
            None => {
                self.per_ns.push((ns, Box::new([[0; 14]; 7])));
                self.per_ns.len() - 1
            }
        };
        self.per_ns[i].1[s.proto as usize][s.state as usize] += 1;
    }

    fn count_pid(&mut self, pid: u32, comm: &str, state: u8) {
        let e = self
            .per_pid
            .entry(pid)
            .or_insert_with(|| (comm.to_string(), [0; 14], 0));
        e.1[usize::from(state) % 14] += 1;
        e.2 += 1;
    }

    /// Count a socket whose owners are attached.
    pub fn add(&mut self, s: Socket) {
        self.count(&s);
        for (i, o) in s.owners.iter().enumerate() {
            if !s.owners[..i].iter().any(|p| p.pid == o.pid) {
                self.count_pid(o.pid, &o.comm, s.state as u8);
            }
        }
        if relevant(&s) {
            self.relevant.push(s);
        }
    }

    /// Count a socket read without owners; they are joined from `scan`
    /// in [`Tally::join`] (and attached now only to the sockets kept for
    /// the listener series).
    pub fn add_scanned(&mut self, mut s: Socket, scan: &OwnerScan) {
        self.count(&s);
        if s.inode != 0 {
            self.unjoined.push((s.inode, s.state as u8));
        }
        if relevant(&s) {
            if s.inode != 0 {
                s.owners = scan.owners(s.inode);
            }
            self.relevant.push(s);
        }
    }

    /// Count the processes of the sockets added with [`Tally::add_scanned`]:
    /// both lists sorted by inode, walked once together.
    pub fn join(&mut self, scan: &OwnerScan) {
        let mut un = std::mem::take(&mut self.unjoined);
        un.sort_unstable();
        let entries = scan.entries();
        let mut j = 0;
        for (inode, state) in un {
            while j < entries.len() && entries[j].inode < inode {
                j += 1;
            }
            let mut k = j;
            let mut last = None;
            while k < entries.len() && entries[k].inode == inode {
                let e = &entries[k];
                if last != Some(e.pid) {
                    last = Some(e.pid);
                    let comm = scan.entry_owner(e).comm;
                    self.count_pid(e.pid, comm, state);
                }
                k += 1;
            }
        }
    }
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
    let mut t = Tally::default();
    for s in sockets {
        t.add(s.clone());
    }
    build_tally(t, namespaces, platform, opts, owner_scan_denied)
}

/// [`build`] from a [`Tally`].
pub fn build_tally(
    tally: Tally,
    namespaces: Vec<(Netns, Counters, Option<u32>)>,
    platform: &mut dyn FnMut(u32) -> Platform,
    opts: Options,
    owner_scan_denied: u64,
) -> ExportReport {
    let Tally {
        per_ns,
        relevant,
        per_pid,
        ..
    } = tally;
    let mut per_ns: HashMap<Option<u64>, Grid> = per_ns.into_iter().map(|(n, g)| (n, *g)).collect();
    let single = namespaces
        .first()
        .map(|n| n.0.to_string())
        .unwrap_or_default();
    let mut budget = opts.max_series;
    let mut folded = Folded::default();

    // Namespaces: sockets by protocol and state, counters. Sockets without
    // a namespace label belong to the one namespace read.
    let mut ns_out = Vec::new();
    let mut unlabelled = per_ns.remove(&None);
    for (i, (id, counters, somaxconn)) in namespaces.into_iter().enumerate() {
        let label = id.to_string();
        let mut counts: Grid = per_ns.remove(&Some(id.inode)).unwrap_or_default();
        if i == 0
            && let Some(u) = unlabelled.take()
        {
            for (p, row) in u.iter().enumerate() {
                for (st, n) in row.iter().enumerate() {
                    counts[p][st] += n;
                }
            }
        }
        let mut by = ByProtocol::new();
        for (p, row) in counts.iter().enumerate() {
            for (st, &n) in row.iter().enumerate() {
                if let (true, Some(state)) = (n > 0, State::from_kernel(st as u8)) {
                    by.entry(PROTOS[p].short().to_string())
                        .or_default()
                        .insert(state.name().to_string(), n);
                }
            }
        }
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
    // connections and their reuseport siblings matter here (the tally kept
    // only those).
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
    let mut procs: Vec<_> = per_pid.into_iter().collect();
    procs.sort_by(|a, b| b.1.2.cmp(&a.1.2).then(a.0.cmp(&b.0)));
    let mut procs_out = Vec::new();
    let mut rest: Option<ProcSeries> = None;
    for (i, (pid, (comm, grid, _))) in procs.into_iter().enumerate() {
        let by_state: BTreeMap<&'static str, u64> = grid
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .filter_map(|(st, n)| Some((State::from_kernel(st as u8)?.name(), *n)))
            .collect();
        if i < opts.top && by_state.len() <= budget && rest.is_none() {
            budget -= by_state.len();
            procs_out.push(ProcSeries {
                pid: Some(pid),
                process: comm,
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

/// Read every socket of `namespaces`, their owners and counters, and the
/// cgroups of the processes that get series of their own. The fd tables
/// are scanned first (the BPF iterator, loaded once per process, or the
/// /proc walk), then the sockets are tallied as the dump hands them over:
/// owners are looked up in the compact table, never attached to the tens
/// of thousands of connections. With `kubelet_root`, the processes of a
/// Kubernetes pod also get the pod's name and namespace from the kubelet's
/// files ([`labels::kubelet_pod`], read once per pod per scrape). With
/// `container_logs` (the kubelet's log links, /var/log/containers), a
/// container's processes get its name, and its pod's name and namespace
/// as the pod's metadata has them (read once per scrape).
pub fn collect(
    namespaces: &[OpenNetns],
    label: bool,
    opts: Options,
    kubelet_root: Option<&Path>,
    container_logs: Option<&Path>,
) -> Result<Collected, SourceError> {
    let req = Request::all_states(&ALL_KINDS);
    let (scan, why_not_bpf) = match crate::source::owners::scan_auto() {
        Ok((s, why)) => (s, why),
        Err(e) => (OwnerScan::default(), Some(e.to_string())),
    };
    let mut tally = Tally::default();
    let mut snap = crate::snapshot::snapshot_each(namespaces, &req, label, true, &mut |s| {
        tally.add_scanned(s, &scan)
    })?;
    snap.notes.extend(why_not_bpf);
    let ns: Vec<_> = namespaces
        .iter()
        .map(|n| {
            let (c, m) = listeners::read_ns(n);
            (n.id.clone(), c, m)
        })
        .collect();
    let mut cache: HashMap<u32, Platform> = HashMap::new();
    let mut pods: HashMap<String, labels::PodNames> = HashMap::new();
    let containers = container_logs
        .map(labels::container_logs)
        .unwrap_or_default();
    let mut platform = |pid: u32| -> Platform {
        cache
            .entry(pid)
            .or_insert_with(|| {
                let mut p = labels::read(Path::new("/proc"), pid);
                if let (Some(root), Some(uid)) = (kubelet_root, &p.pod_uid) {
                    let names = pods
                        .entry(uid.clone())
                        .or_insert_with(|| labels::kubelet_pod(root, uid));
                    p.pod_name = names.name.clone();
                    p.pod_namespace = names.namespace.clone();
                }
                // The log link names the pod as its metadata does (the
                // hosts file gives its hostname).
                if let Some(c) = p.container_id.as_ref().and_then(|id| containers.get(id)) {
                    p.pod_name = Some(c.pod.clone());
                    p.pod_namespace = Some(c.namespace.clone());
                    p.container_name = Some(c.container.clone());
                }
                p
            })
            .clone()
    };
    tally.join(&scan);
    let denied = scan.denied as u64;
    drop(scan);
    Ok(Collected {
        report: build_tally(tally, ns, &mut platform, opts, denied),
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
    fn owners_joined_from_the_scan_give_the_same_report() {
        // Sockets with owners attached, and the same sockets read bare
        // with their owners in a scan (two fds of pid 10 on one socket
        // count once; a socket shared by pids 10 and 30 counts for both).
        let mut v = vec![
            sock(State::Listen, 81, 0, Some((10, "a"))),
            sock(State::SynRecv, 81, 999, None),
            sock(State::Established, 81, 1000, Some((10, "a"))),
            sock(State::Established, 2000, 81, Some((30, "b"))),
            sock(State::Close, 53, 0, Some((30, "b"))),
        ];
        let a = v[0].owners[0].clone();
        v[2].owners.push(Owner { fd: 9, ..a.clone() });
        v[3].owners.insert(0, a);
        let mut pairs = Vec::new();
        for (i, s) in v.iter_mut().enumerate() {
            s.inode = 100 + i as u64;
            pairs.extend(s.owners.iter().map(|o| (s.inode, o.clone())));
        }
        let scan = OwnerScan::from_pairs(pairs, 0, 2);
        let mut t = Tally::default();
        for s in &v {
            let mut bare = s.clone();
            bare.owners.clear();
            t.add_scanned(bare, &scan);
        }
        t.join(&scan);
        let opts = Options {
            top: 5,
            max_series: 1000,
        };
        let joined = build_tally(t, ns(), &mut unit, opts, 0);
        let attached = build(&v, ns(), &mut unit, opts, 0);
        assert_eq!(joined, attached);
        let p10 = &joined.processes[0];
        assert_eq!(p10.pid, Some(10));
        assert_eq!(p10.by_state["established"], 2);
        assert_eq!(p10.by_state["listening"], 1);
        assert_eq!(joined.processes[1].by_state["closed"], 1);
        assert_eq!(joined.listeners[0].process.as_deref(), Some("a"));
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
