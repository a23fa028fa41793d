//! Listener health: every TCP listener with its accept queue against its
//! backlog, its half-open connections, its children and its reuseport
//! group, and each namespace's listen counters (TcpExt.ListenOverflows,
//! ListenDrops, ...) with net.core.somaxconn.
//!
//! [`collect`] reads the kernel; [`build`] is the pure part.

use crate::explain::{self, ListenerHealth};
use crate::model::{Netns, Socket};
use crate::source::counters::{self, Counters};
use crate::source::netns::{self, OpenNetns};
use crate::source::owners::OwnerScan;
use crate::source::{Kind, Request, SourceError};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

/// The layout of [`ListenersReport`] (bumped when a field changes meaning
/// or goes away; new fields do not bump it).
pub const SCHEMA: &str = "sockscope.listeners/1";

/// One namespace's listen counters.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NsListen {
    pub netns: Netns,
    /// net.core.somaxconn of the namespace: the cap on every backlog.
    pub somaxconn: Option<u32>,
    /// /proc/net/netstat, snmp and sockstat of the namespace.
    pub counters: Counters,
    /// Change since the previous report (with --interval).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<Counters>,
}

/// The answer of `sockscope listeners`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ListenersReport {
    pub schema: &'static str,
    pub listeners: Vec<ListenerHealth>,
    pub namespaces: Vec<NsListen>,
}

impl ListenersReport {
    /// somaxconn of the namespace a listener lives in (`None` in the
    /// socket's netns means the one namespace read, unlabelled).
    pub fn somaxconn_of(&self, s: &Socket) -> Option<u32> {
        let ns = s.netns.as_ref().map(|n| n.inode);
        if let Some(inode) = ns {
            return self
                .namespaces
                .iter()
                .find(|r| r.netns.inode == inode)
                .and_then(|r| r.somaxconn);
        }
        match self.namespaces.as_slice() {
            [one] => one.somaxconn,
            _ => None,
        }
    }
}

/// Counters of the namespace: netstat + snmp + sockstat (whatever of them
/// could be read) and net.core.somaxconn.
pub fn read_ns(ns: &OpenNetns) -> (Counters, Option<u32>) {
    netns::run_in(ns, || {
        let dir = Path::new("/proc/thread-self/net");
        let mut c = counters::read_netstat(dir).unwrap_or_default();
        let max = counters::read_sysctl(Path::new("/proc/sys"), "net.core.somaxconn")
            .ok()
            .and_then(|v| v.parse().ok());
        if let Ok(s) = counters::read_sockstat(dir) {
            c.extend(s);
        }
        (c, max)
    })
    .unwrap_or_default()
}

/// Pure: relate listeners to their connections and attach the namespaces'
/// counters, with deltas against `previous` (namespace inode -> counters).
pub fn build(
    sockets: &[Socket],
    namespaces: Vec<(Netns, Counters, Option<u32>)>,
    previous: Option<&HashMap<u64, Counters>>,
) -> ListenersReport {
    let namespaces = namespaces
        .into_iter()
        .map(|(netns, counters, somaxconn)| NsListen {
            delta: previous
                .and_then(|p| p.get(&netns.inode))
                .map(|p| counters.delta(p)),
            netns,
            somaxconn,
            counters,
        })
        .collect();
    ListenersReport {
        schema: SCHEMA,
        listeners: explain::listener_health(sockets),
        namespaces,
    }
}

/// What [`collect`] reads.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub ipv4: bool,
    pub ipv6: bool,
    /// Label sockets with their namespace.
    pub label: bool,
    /// A namespace that cannot be read is noted, not fatal (--all-netns).
    pub tolerant: bool,
}

/// A report and how it was read.
#[derive(Debug)]
pub struct Collected {
    pub report: ListenersReport,
    /// The owner scan (for a warning about fd tables we could not read).
    pub owners: Option<OwnerScan>,
    pub notes: Vec<String>,
}

/// Read every TCP socket of `namespaces` with owners, and the counters of
/// each namespace; deltas against `previous`.
pub fn collect(
    namespaces: &[OpenNetns],
    opts: Options,
    previous: Option<&HashMap<u64, Counters>>,
) -> Result<Collected, SourceError> {
    let req = Request::all_states(&[Kind::Tcp]).families(opts.ipv4, opts.ipv6);
    let snap = crate::snapshot::snapshot(namespaces, &req, opts.label, true, opts.tolerant)?;
    let ns: Vec<_> = namespaces
        .iter()
        .map(|n| {
            let (c, m) = read_ns(n);
            (n.id.clone(), c, m)
        })
        .collect();
    Ok(Collected {
        report: build(&snap.sockets, ns, previous),
        owners: snap.owners,
        notes: snap.notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, Family, Proto, SourceKind, State};

    fn sock(state: State, port: u16, peer: u16, q: Option<u32>, b: Option<u32>) -> Socket {
        let mut s = Socket::new(
            Proto::Tcp,
            Family::Inet,
            state,
            Endpoint::Inet {
                addr: "127.0.0.1".parse().unwrap(),
                port,
            },
            Endpoint::Inet {
                addr: "127.0.0.1".parse().unwrap(),
                port: peer,
            },
            SourceKind::Netlink,
        );
        s.recv_q = q;
        s.send_q = b;
        s
    }

    #[test]
    fn report_has_schema_listeners_and_deltas() {
        let sockets = vec![
            sock(State::Listen, 80, 0, Some(6), Some(5)),
            sock(State::Established, 80, 5000, Some(0), Some(0)),
            sock(State::SynRecv, 80, 5001, None, None),
        ];
        let ns = Netns {
            inode: 7,
            name: None,
        };
        let mut c = Counters::default();
        c.0.insert("TcpExt.ListenOverflows".into(), 10);
        let mut prev = HashMap::new();
        let mut p = Counters::default();
        p.0.insert("TcpExt.ListenOverflows".into(), 4);
        prev.insert(7, p);
        let r = build(&sockets, vec![(ns, c, Some(128))], Some(&prev));
        assert_eq!(r.schema, SCHEMA);
        assert_eq!(r.listeners.len(), 1);
        let l = &r.listeners[0];
        assert_eq!(
            (l.accept_queue, l.backlog, l.syn_recv),
            (Some(6), Some(5), 1)
        );
        assert!(l.full);
        assert_eq!(l.children.len(), 1);
        assert_eq!(
            r.namespaces[0]
                .delta
                .as_ref()
                .unwrap()
                .get("TcpExt.ListenOverflows"),
            Some(6)
        );
        assert_eq!(r.somaxconn_of(&sockets[0]), Some(128));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["schema"], SCHEMA);
        let r = build(&sockets, vec![], None);
        assert!(r.namespaces.is_empty());
    }
}
