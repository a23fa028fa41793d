//! Socket statistics of one network namespace: counts by protocol and
//! state, the processes holding the most sockets, the kernel's socket
//! memory (/proc/net/sockstat) and the TCP settings that shape queues and
//! buffers, each with its unit and meaning.
//!
//! [`collect`] reads the kernel; [`count`] and [`top_processes`] are pure.

use crate::model::{Netns, Socket};
use crate::source::counters::{self, Counters};
use crate::source::netns::{self, OpenNetns};
use crate::source::owners::OwnerScan;
use crate::source::{ALL_KINDS, Request, SourceError};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The layout of [`StatsReport`].
pub const SCHEMA: &str = "sockscope.stats/1";

/// The settings the seeds talk about: (sysctl, unit, meaning).
pub const SETTINGS: &[(&str, &str, &str)] = &[
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

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Setting {
    pub name: &'static str,
    pub value: Option<String>,
    pub unit: &'static str,
    pub meaning: &'static str,
}

/// A process and how many sockets it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcCount {
    pub pid: u32,
    pub comm: String,
    pub sockets: usize,
}

/// protocol (`tcp`, `u_str`, ...) -> state name -> count.
pub type ByProtocol = BTreeMap<String, BTreeMap<String, usize>>;

/// The answer of `sockscope stats`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatsReport {
    pub schema: &'static str,
    pub netns: Netns,
    pub total: usize,
    /// protocol -> state name -> count
    pub by_protocol: ByProtocol,
    pub top_processes: Vec<ProcCount>,
    /// Sockets no process we could see holds: the two counts below.
    pub sockets_without_owner: usize,
    /// ... because they have no file (inode 0): TIME-WAIT, half-open
    /// (SYN-RECV) and not-yet-accepted connections.
    pub sockets_without_file: usize,
    /// ... although they have a file (any state, UNIX too): held by the
    /// kernel itself, by processes we cannot see (another PID namespace,
    /// fd tables we may not read), or only in flight in a UNIX socket
    /// message (SCM_RIGHTS).
    pub sockets_holder_unseen: usize,
    pub sockstat: Counters,
    pub page_size_bytes: u64,
    pub settings: Vec<Setting>,
}

/// Sockets no visible process holds, split by why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unowned {
    /// No owner seen.
    pub total: usize,
    /// Of those, sockets with no file at all (inode 0).
    pub without_file: usize,
}

/// Pure: sockets by protocol and state, and how many have no owner.
pub fn count<'a>(sockets: impl IntoIterator<Item = &'a Socket>) -> (ByProtocol, Unowned) {
    let mut by: ByProtocol = BTreeMap::new();
    let mut un = Unowned::default();
    for s in sockets {
        *by.entry(s.proto.short().to_string())
            .or_default()
            .entry(s.state.name().to_string())
            .or_default() += 1;
        if s.owners.is_empty() {
            un.total += 1;
            if s.inode == 0 {
                un.without_file += 1;
            }
        }
    }
    (by, un)
}

/// Pure: every process with the number of distinct sockets it holds, most
/// first (ties by pid). A socket held through several fds of one process
/// counts once for it.
pub fn process_counts(sockets: &[Socket]) -> Vec<ProcCount> {
    let mut per: HashMap<u32, (String, usize)> = HashMap::new();
    for s in sockets {
        for (i, o) in s.owners.iter().enumerate() {
            if s.owners[..i].iter().any(|p| p.pid == o.pid) {
                continue;
            }
            per.entry(o.pid).or_insert_with(|| (o.comm.clone(), 0)).1 += 1;
        }
    }
    let mut v: Vec<ProcCount> = per
        .into_iter()
        .map(|(pid, (comm, sockets))| ProcCount { pid, comm, sockets })
        .collect();
    v.sort_by(|a, b| b.sockets.cmp(&a.sockets).then(a.pid.cmp(&b.pid)));
    v
}

/// Pure: the `n` processes holding the most sockets.
pub fn top_processes(sockets: &[Socket], n: usize) -> Vec<ProcCount> {
    let mut v = process_counts(sockets);
    v.truncate(n);
    v
}

/// Read the settings of [`SETTINGS`] under `root` (normally /proc/sys).
pub fn read_settings(root: &Path) -> Vec<Setting> {
    SETTINGS
        .iter()
        .map(|(name, unit, meaning)| Setting {
            name,
            value: counters::read_sysctl(root, name).ok(),
            unit,
            meaning,
        })
        .collect()
}

/// A report and how it was read.
#[derive(Debug)]
pub struct Collected {
    pub report: StatsReport,
    pub owners: Option<OwnerScan>,
    pub notes: Vec<String>,
}

/// Read every socket of `ns` with owners, its sockstat and settings.
pub fn collect(ns: &OpenNetns, top: usize) -> Result<Collected, SourceError> {
    let req = Request::all_states(&ALL_KINDS);
    let snap = crate::snapshot::snapshot(std::slice::from_ref(ns), &req, false, true, false)?;
    let (by_protocol, unowned) = count(&snap.sockets);
    let (sockstat, settings) = netns::run_in(ns, || {
        let st = counters::read_sockstat(Path::new("/proc/thread-self/net")).unwrap_or_default();
        (st, read_settings(Path::new("/proc/sys")))
    })?;
    Ok(Collected {
        report: StatsReport {
            schema: SCHEMA,
            netns: ns.id.clone(),
            total: snap.sockets.len(),
            by_protocol,
            top_processes: top_processes(&snap.sockets, top),
            sockets_without_owner: unowned.total,
            sockets_without_file: unowned.without_file,
            sockets_holder_unseen: unowned.total - unowned.without_file,
            sockstat,
            page_size_bytes: rustix::param::page_size() as u64,
            settings,
        },
        owners: snap.owners,
        notes: snap.notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, Family, Owner, Proto, SourceKind, State};

    fn sock(proto: Proto, state: State, owners: &[(u32, u32, &str)]) -> Socket {
        let ep = Endpoint::Inet {
            addr: "127.0.0.1".parse().unwrap(),
            port: 1,
        };
        let mut s = Socket::new(
            proto,
            Family::Inet,
            state,
            ep.clone(),
            ep,
            SourceKind::Netlink,
        );
        s.owners = owners
            .iter()
            .map(|&(pid, fd, comm)| Owner {
                pid,
                fd,
                comm: comm.into(),
                uid: None,
                tid: None,
            })
            .collect();
        s
    }

    #[test]
    fn counts_states_orphans_and_processes_once_per_socket() {
        let v = vec![
            sock(Proto::Tcp, State::Listen, &[(10, 3, "srv"), (11, 3, "srv")]),
            sock(
                Proto::Tcp,
                State::Established,
                &[(10, 4, "srv"), (10, 9, "srv")],
            ),
            sock(Proto::Tcp, State::TimeWait, &[]),
            sock(Proto::Udp, State::Close, &[(12, 3, "dns")]),
        ];
        let (by, un) = count(&v);
        assert_eq!(un.total, 1);
        assert_eq!(
            un.without_file, 1,
            "the unowned TIME-WAIT socket has no file"
        );
        assert_eq!(by["tcp"]["listening"], 1);
        assert_eq!(by["tcp"]["time-wait"], 1);
        assert_eq!(by["udp"]["closed"], 1);
        let top = top_processes(&v, 2);
        assert_eq!(
            top,
            vec![
                ProcCount {
                    pid: 10,
                    comm: "srv".into(),
                    sockets: 2
                },
                ProcCount {
                    pid: 11,
                    comm: "srv".into(),
                    sockets: 1
                },
            ]
        );
        assert_eq!(process_counts(&v).len(), 3);
    }
}
