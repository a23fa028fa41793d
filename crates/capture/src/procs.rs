//! Process labels for live capture: which process owns the local end of a
//! packet.
//!
//! [`Labeller`] reads the socket table of the current network namespace
//! (TCP and UDP, every state, through [`sockscope::source::collect_here`])
//! and the owners of each socket ([`sockscope::source::owners::scan`],
//! joined with [`sockscope::join::attach_owners`]). A packet's source is
//! labelled when (source, destination) is a connected socket's (local,
//! peer), or when the source is a bound socket's local address and port
//! (a listener or an unconnected UDP socket; a wildcard address counts only
//! for this host's own addresses). The destination is labelled the same way
//! from the other side. On loopback both ends are local, so both get a
//! label.
//!
//! Connections come and go while we capture. A packet whose local end is
//! not in the tables asks a background thread for a new read (at most one
//! at a time, at most once per [`Labeller::min_interval`]); the packet loop
//! never waits for it. [`Labeller::label`] says whether a read that may
//! name the packet's processes is under way, so the caller can hold the
//! packet back briefly (the capture command waits at most 2 s). A read
//! adds to what earlier reads found: a connection that closed keeps the
//! label it had (remembered), a socket seen again takes its new owner. A
//! 4-tuple still unknown after a read that started after it first
//! appeared is not asked about again.

use crate::analysis::{Ep, endpoints};
use crate::decode::{Packet, Transport};
use crate::view::Procs;
use serde::Serialize;
use sockscope::model::{Endpoint, Proto, Socket};
use sockscope::source::{self, Kind, Request};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

/// A process at one end of a packet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Label {
    pub pid: u32,
    pub comm: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcsError {
    #[error("reading the socket table for process labels: {0}")]
    Sockets(#[from] sockscope::source::SourceError),
    #[error("reading process fd tables for process labels: {0}")]
    Owners(String),
    #[error("the process-label reader stopped")]
    Stopped,
}

type TupleKey = (Ep, Ep, bool);

/// What one read of the socket table gives.
#[derive(Default)]
pub struct Snapshot {
    /// Sockets, with the owners found for them.
    pub sockets: Vec<Socket>,
    /// This namespace's addresses.
    pub addrs: Vec<IpAddr>,
    /// Owners found for socket inodes outside `sockets[].owners` (the
    /// quick pass over new processes).
    pub by_inode: HashMap<u64, Label>,
}

/// A function that reads a [`Snapshot`]: with `true` the quick pass
/// (`None` when there is none to make), with `false` the full read. The
/// real one is [`SystemScanner`]; tests give their own.
pub type Scanner = Box<dyn FnMut(bool) -> Result<Option<Snapshot>, ProcsError> + Send>;

/// Remembered labels beyond this many 4-tuples are forgotten (the tables
/// are rebuilt from the latest read alone).
const MAX_REMEMBERED: usize = 1 << 20;

#[derive(Default)]
struct Tables {
    exact: HashMap<TupleKey, Label>,
    bound: HashMap<(Ep, bool), Label>,
    local_addrs: HashSet<[u8; 16]>,
}

/// The background reader: requests go in with the time they were made,
/// snapshots come out with the same time.
struct Worker {
    requests: Sender<Instant>,
    /// (asked at, full read, result).
    results: Receiver<(Instant, bool, Result<Snapshot, ProcsError>)>,
}

impl Worker {
    fn start(mut scan: Scanner) -> std::io::Result<Worker> {
        let (req_tx, req_rx) = mpsc::channel::<Instant>();
        let (res_tx, res_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("sockscope-labels".into())
            .spawn(move || {
                while let Ok(t) = req_rx.recv() {
                    // The quick pass first (its labels may release held
                    // packets early), then the full read.
                    if let Ok(Some(quick)) = scan(true)
                        && res_tx.send((t, false, Ok(quick))).is_err()
                    {
                        break;
                    }
                    let r = scan(false).and_then(|r| r.ok_or(ProcsError::Stopped));
                    if res_tx.send((t, true, r)).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Worker {
            requests: req_tx,
            results: res_rx,
        })
    }
}

/// Maps packets to the processes owning their local sockets.
pub struct Labeller {
    tables: Tables,
    worker: Option<Worker>,
    scanner: Option<Scanner>,
    /// When the read under way was asked for.
    pending: Option<Instant>,
    /// When the last finished read was asked for.
    last_scan: Option<Instant>,
    /// When the last read was asked for (for the rate limit).
    last_request: Option<Instant>,
    unknown: HashMap<TupleKey, Instant>,
    /// Minimum time between two reads of the socket table.
    pub min_interval: Duration,
    /// How many times the table was read.
    pub scans: u32,
}

impl Default for Labeller {
    fn default() -> Self {
        Labeller::new()
    }
}

fn ep_of(e: &Endpoint) -> Option<Ep> {
    let Endpoint::Inet { addr, port } = e else {
        return None;
    };
    Some(match addr {
        IpAddr::V4(a) => Ep {
            addr: a.to_ipv6_mapped().octets(),
            port: *port,
            v6: false,
        },
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => Ep {
                addr: v4.to_ipv6_mapped().octets(),
                port: *port,
                v6: false,
            },
            None => Ep {
                addr: a.octets(),
                port: *port,
                v6: true,
            },
        },
    })
}

fn unspecified(e: &Ep) -> bool {
    if e.v6 {
        e.addr == [0; 16]
    } else {
        e.addr[12..] == [0; 4]
    }
}

fn socket_request() -> Request {
    Request::all_states(&[Kind::Tcp, Kind::Udp])
}

/// The pids under /proc.
fn list_pids() -> HashSet<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Reads this network namespace's socket table and the sockets' owners.
///
/// The full read walks every process's fds (the BPF task_file iterator
/// where this process may load it, else /proc): seconds on a host where
/// processes hold hundreds of thousands of fds. A connection made during a
/// capture is most often a new process's, so before each full read a quick
/// pass looks only at the processes the last full read did not see.
#[derive(Default)]
pub struct SystemScanner {
    known: Option<HashSet<u32>>,
}

impl SystemScanner {
    pub fn new() -> SystemScanner {
        SystemScanner::default()
    }

    /// `quick`: the pass over new processes (`None` before a full read or
    /// when no process is new); else the full read.
    pub fn read(&mut self, quick: bool) -> Result<Option<Snapshot>, ProcsError> {
        if quick {
            let Some(known) = &self.known else {
                return Ok(None);
            };
            let new: Vec<u32> = list_pids().difference(known).copied().collect();
            if new.is_empty() {
                return Ok(None);
            }
            let c = source::collect_here(&socket_request())?;
            let want: HashSet<u64> = c
                .sockets
                .iter()
                .filter(|s| s.inode != 0)
                .map(|s| s.inode)
                .collect();
            let by_inode = owners_among(&new, &want);
            return Ok(Some(Snapshot {
                sockets: c.sockets,
                addrs: local_addresses(),
                by_inode,
            }));
        }
        let pids = list_pids();
        let mut c = source::collect_here(&socket_request())?;
        // The BPF task_file iterator where this process may load it (much
        // faster than walking /proc), else /proc.
        let (scan, _) =
            source::owners::scan_auto().map_err(|e| ProcsError::Owners(e.to_string()))?;
        sockscope::join::attach_owners(&mut c.sockets, &scan);
        self.known = Some(pids);
        Ok(Some(Snapshot {
            sockets: c.sockets,
            addrs: local_addresses(),
            by_inode: HashMap::new(),
        }))
    }
}

/// Owners of the sockets `want` among the processes `pids` (their fds read
/// through /proc; processes that vanish or deny access are skipped).
fn owners_among(pids: &[u32], want: &HashSet<u64>) -> HashMap<u64, Label> {
    let mut out = HashMap::new();
    for &pid in pids {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        let mut comm = None;
        for e in dir.flatten() {
            let Ok(target) = std::fs::read_link(e.path()) else {
                continue;
            };
            let Some(inode) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok())
            else {
                continue;
            };
            if !want.contains(&inode) || out.contains_key(&inode) {
                continue;
            }
            let comm = comm.get_or_insert_with(|| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .map(|c| c.trim_end().to_string())
                    .unwrap_or_default()
            });
            out.insert(
                inode,
                Label {
                    pid,
                    comm: comm.clone(),
                },
            );
        }
    }
    out
}

fn tuple_key(src: Ep, dst: Ep, udp: bool) -> TupleKey {
    if (src.addr, src.port) <= (dst.addr, dst.port) {
        (src, dst, udp)
    } else {
        (dst, src, udp)
    }
}

impl Labeller {
    /// A labeller reading this namespace's tables ([`read_snapshot`]).
    pub fn new() -> Labeller {
        let mut sys = SystemScanner::new();
        Labeller::with_scanner(Box::new(move |quick| sys.read(quick)))
    }

    /// A labeller whose reads are `scan` (run on a background thread once
    /// the first [`Labeller::label`] needs one).
    pub fn with_scanner(scan: Scanner) -> Labeller {
        Labeller {
            tables: Tables::default(),
            worker: None,
            scanner: Some(scan),
            pending: None,
            last_scan: None,
            last_request: None,
            unknown: HashMap::new(),
            min_interval: Duration::from_millis(100),
            scans: 0,
        }
    }

    /// Replace the tables with these sockets (that already carry their
    /// owners).
    pub fn load(&mut self, sockets: &[Socket], local_addrs: &[IpAddr]) {
        self.tables = Tables::default();
        self.merge(sockets, local_addrs, &HashMap::new());
    }

    /// Add these sockets to the tables: new sockets and new owners win,
    /// what is not in them is remembered.
    /// Owners missing from a socket are looked up in `by_inode`.
    pub fn merge(
        &mut self,
        sockets: &[Socket],
        local_addrs: &[IpAddr],
        by_inode: &HashMap<u64, Label>,
    ) {
        let t = &mut self.tables;
        if t.exact.len() > MAX_REMEMBERED {
            *t = Tables::default();
        }
        for a in local_addrs {
            let e = ep_of(&Endpoint::Inet { addr: *a, port: 0 });
            if let Some(e) = e {
                t.local_addrs.insert(e.addr);
            }
        }
        for s in sockets {
            let label = match s.owners.first() {
                Some(o) => Label {
                    pid: o.pid,
                    comm: o.comm.clone(),
                },
                None => match by_inode.get(&s.inode) {
                    Some(l) if s.inode != 0 => l.clone(),
                    _ => continue,
                },
            };
            let udp = match s.proto {
                Proto::Tcp => false,
                Proto::Udp | Proto::Udplite => true,
                _ => continue,
            };
            let (Some(l), Some(p)) = (ep_of(&s.local), ep_of(&s.peer)) else {
                continue;
            };
            if p.port == 0 {
                t.bound.insert((l, udp), label.clone());
                // A dual-stack wildcard listener also takes IPv4.
                if l.v6 && unspecified(&l) && s.v6only != Some(true) {
                    let v4 = Ep {
                        addr: std::net::Ipv4Addr::UNSPECIFIED.to_ipv6_mapped().octets(),
                        port: l.port,
                        v6: false,
                    };
                    t.bound.insert((v4, udp), label);
                }
            } else {
                t.exact.insert((l, p, udp), label);
            }
        }
    }

    /// Read the tables now, on this thread (before a capture starts).
    pub fn refresh(&mut self) -> Result<(), ProcsError> {
        let started = Instant::now();
        let scan = self.scanner.as_mut().ok_or(ProcsError::Stopped)?;
        let snap = scan(false)?.ok_or(ProcsError::Stopped)?;
        self.load(&snap.sockets, &snap.addrs);
        self.last_scan = Some(started);
        self.last_request = Some(started);
        self.scans += 1;
        Ok(())
    }

    /// Take the result of a finished background read, if there is one.
    /// Errors are returned once the old tables are kept.
    pub fn poll(&mut self) -> Option<ProcsError> {
        let mut err = None;
        while self.worker.is_some() && self.pending.is_some() {
            match self.poll_one() {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    err.get_or_insert(e);
                }
            }
        }
        err
    }

    /// One result: Ok(true) when one was taken.
    fn poll_one(&mut self) -> Result<bool, ProcsError> {
        let Some(w) = self.worker.as_ref() else {
            return Ok(false);
        };
        match w.results.try_recv() {
            Ok((started, full, res)) => {
                if full {
                    self.pending = None;
                    self.last_scan = Some(started);
                    self.scans += 1;
                    if self.unknown.len() > 100_000 {
                        self.unknown.clear();
                    }
                }
                let snap = res?;
                self.merge(&snap.sockets, &snap.addrs, &snap.by_inode);
                Ok(true)
            }
            Err(TryRecvError::Empty) => Ok(false),
            Err(TryRecvError::Disconnected) => {
                self.pending = None;
                self.worker = None;
                Err(ProcsError::Stopped)
            }
        }
    }

    /// A background read is under way.
    pub fn pending(&self) -> bool {
        self.pending.is_some()
    }

    fn request(&mut self, now: Instant) {
        if self.worker.is_none() {
            // Without a thread the old tables stay (labels of connections
            // made during the capture are then missing, never wrong).
            match self.scanner.take().map(Worker::start) {
                Some(Ok(w)) => self.worker = Some(w),
                _ => return,
            }
        }
        if let Some(w) = &self.worker
            && w.requests.send(now).is_ok()
        {
            self.pending = Some(now);
            self.last_request = Some(now);
        }
    }

    fn is_local(&self, e: &Ep) -> bool {
        let loopback = if e.v6 {
            e.addr == std::net::Ipv6Addr::LOCALHOST.octets()
        } else {
            e.addr[12] == 127
        };
        loopback || self.tables.local_addrs.contains(&e.addr)
    }

    /// The label of `local` talking to `peer`, from the tables only.
    pub fn lookup(&self, local: &Ep, peer: &Ep, udp: bool) -> Option<&Label> {
        let t = &self.tables;
        if let Some(l) = t.exact.get(&(*local, *peer, udp)) {
            return Some(l);
        }
        if let Some(l) = t.bound.get(&(*local, udp)) {
            return Some(l);
        }
        if !self.is_local(local) {
            return None;
        }
        let any = Ep {
            addr: if local.v6 {
                [0; 16]
            } else {
                std::net::Ipv4Addr::UNSPECIFIED.to_ipv6_mapped().octets()
            },
            port: local.port,
            v6: local.v6,
        };
        t.bound.get(&(any, udp))
    }

    /// Labels for a packet from the tables as they are, and whether a read
    /// that may still name a missing local end is under way (or was just
    /// asked for). Never waits for the read. An error of a finished read
    /// is returned once.
    pub fn label(&mut self, p: &Packet) -> (Procs, bool, Option<ProcsError>) {
        let err = self.poll();
        let Some((src, dst)) = endpoints(p) else {
            return (Procs::default(), false, err);
        };
        let udp = matches!(p.transport, Transport::Udp(_));
        let procs = self.both(&src, &dst, udp);
        let missing = (procs.src.is_none() && self.is_local(&src))
            || (procs.dst.is_none() && self.is_local(&dst));
        if !missing {
            return (procs, false, err);
        }
        self.unknown
            .entry(tuple_key(src, dst, udp))
            .or_insert_with(Instant::now);
        let wait = self.waiting(p);
        (procs, wait, err)
    }

    /// Whether a read that may name this packet's missing local ends is
    /// under way: it was asked for after the packet's 4-tuple appeared,
    /// or a read will be asked for once the rate limit allows.
    pub fn waiting(&mut self, p: &Packet) -> bool {
        let Some((src, dst)) = endpoints(p) else {
            return false;
        };
        let udp = matches!(p.transport, Transport::Udp(_));
        let procs = self.both(&src, &dst, udp);
        let missing = (procs.src.is_none() && self.is_local(&src))
            || (procs.dst.is_none() && self.is_local(&dst));
        if !missing {
            return false;
        }
        let Some(&first_seen) = self.unknown.get(&tuple_key(src, dst, udp)) else {
            return false;
        };
        if self.last_scan.is_some_and(|t| t >= first_seen) {
            return false;
        }
        let now = Instant::now();
        if self.pending.is_none()
            && self
                .last_request
                .is_none_or(|t| now.duration_since(t) >= self.min_interval)
        {
            self.request(now);
        }
        self.pending.is_some() || self.worker.is_some() || self.scanner.is_some()
    }

    /// Labels from the tables only.
    pub fn both_of(&self, p: &Packet) -> Procs {
        match endpoints(p) {
            Some((src, dst)) => self.both(&src, &dst, matches!(p.transport, Transport::Udp(_))),
            None => Procs::default(),
        }
    }

    fn both(&self, src: &Ep, dst: &Ep, udp: bool) -> Procs {
        Procs {
            src: self.lookup(src, dst, udp).cloned(),
            dst: self.lookup(dst, src, udp).cloned(),
        }
    }
}

/// The IP addresses of this namespace's interfaces.
#[allow(unsafe_code)]
pub fn local_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we free with freeifaddrs; we only read
    // sockaddrs of the family each one says it is.
    unsafe {
        if libc::getifaddrs(&mut ifap) != 0 {
            return out;
        }
        let mut cur = ifap;
        while !cur.is_null() {
            let a = (*cur).ifa_addr;
            if !a.is_null() {
                match (*a).sa_family as i32 {
                    libc::AF_INET => {
                        let s = &*(a as *const libc::sockaddr_in);
                        out.push(IpAddr::from(u32::from_be(s.sin_addr.s_addr).to_be_bytes()));
                    }
                    libc::AF_INET6 => {
                        let s = &*(a as *const libc::sockaddr_in6);
                        out.push(IpAddr::from(s.sin6_addr.s6_addr));
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(ifap);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket built from its JSON form, so that fields added to the model
    /// later (with serde defaults) need no change here.
    fn sock(local: &str, lport: u16, peer: &str, pport: u16, pid: u32, comm: &str) -> Socket {
        serde_json::from_value(serde_json::json!({
            "proto": "tcp", "family": "inet",
            "state": if pport == 0 { "listening" } else { "established" },
            "recv_q": null, "send_q": null,
            "local": {"addr": local, "port": lport},
            "peer": {"addr": peer, "port": pport},
            "inode": 1, "uid": null, "cookie": null, "cgroup_id": null, "shutdown": null,
            "v6only": false, "bound_ifindex": null, "timer": null, "netns": null,
            "source": "netlink",
            "owners": [{"pid": pid, "fd": 3, "comm": comm, "uid": null}]
        }))
        .expect("socket JSON")
    }

    fn ep(a: &str, port: u16) -> Ep {
        ep_of(&Endpoint::Inet {
            addr: a.parse().unwrap(),
            port,
        })
        .unwrap()
    }

    #[test]
    fn connected_then_listener_then_dual_stack_wildcard() {
        let mut l = Labeller::new();
        l.load(
            &[
                sock("127.0.0.1", 40000, "127.0.0.1", 8080, 10, "curl"),
                sock("::", 8080, "::", 0, 20, "server"),
                sock(
                    "::ffff:127.0.0.1",
                    8080,
                    "::ffff:127.0.0.1",
                    40001,
                    21,
                    "worker",
                ),
            ],
            &["10.1.1.1".parse().unwrap()],
        );
        let c = ep("127.0.0.1", 40000);
        let s = ep("127.0.0.1", 8080);
        assert_eq!(l.lookup(&c, &s, false).unwrap().pid, 10);
        // The server side of the first connection has no socket of its own
        // in the table: the dual-stack wildcard listener names it.
        assert_eq!(l.lookup(&s, &c, false).unwrap().pid, 20);
        // A v4-mapped accepted socket is found by its IPv4 tuple.
        assert_eq!(
            l.lookup(&s, &ep("127.0.0.1", 40001), false).unwrap().comm,
            "worker"
        );
        // A remote address using the same port is not ours.
        assert_eq!(l.lookup(&ep("192.0.2.9", 8080), &c, false), None);
        assert_eq!(l.lookup(&ep("10.1.1.1", 8080), &c, false).unwrap().pid, 20);
        assert_eq!(l.lookup(&c, &s, true), None, "UDP is a different table");
    }

    /// A TCP packet 127.0.0.1:`sport` > 127.0.0.1:`dport` (raw IP).
    fn packet(sport: u16, dport: u16) -> Packet {
        let mut v = vec![
            0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
        ];
        v.extend_from_slice(&sport.to_be_bytes());
        v.extend_from_slice(&dport.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x10, 0, 0, 0, 0, 0]);
        crate::decode::decode(crate::decode::linktype::RAW, &v, 0, 40)
    }

    #[test]
    fn new_connections_are_read_in_the_background_and_remembered() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = Arc::new(AtomicUsize::new(0));
        let c2 = calls.clone();
        // Read 1 (before the capture): the listener only. Read 2 (slow):
        // the new connection's client too. Later reads: the listener only
        // (the connection has closed).
        let scanner: Scanner = Box::new(move |quick| {
            if quick {
                return Ok(None);
            }
            let n = c2.fetch_add(1, Ordering::SeqCst);
            let mut socks = vec![sock("127.0.0.1", 8080, "0.0.0.0", 0, 20, "server")];
            if n == 1 {
                std::thread::sleep(Duration::from_millis(400));
                socks.push(sock("127.0.0.1", 40000, "127.0.0.1", 8080, 10, "client"));
            }
            Ok(Some(Snapshot {
                sockets: socks,
                ..Snapshot::default()
            }))
        });
        let mut l = Labeller::with_scanner(scanner);
        l.min_interval = Duration::ZERO;
        l.refresh().unwrap();
        let p = packet(40000, 8080);
        let t = Instant::now();
        let (procs, wait, err) = l.label(&p);
        assert!(
            t.elapsed() < Duration::from_millis(200),
            "label() waited for the read: {:?}",
            t.elapsed()
        );
        assert!(err.is_none());
        assert!(wait, "a read that can name the client is under way");
        assert_eq!(procs.src, None);
        assert_eq!(procs.dst.as_ref().map(|l| l.pid), Some(20));
        let until = Instant::now() + Duration::from_secs(10);
        while l.waiting(&p) {
            assert!(Instant::now() < until, "the background read never finished");
            std::thread::sleep(Duration::from_millis(5));
            assert!(l.poll().is_none());
        }
        assert_eq!(l.both_of(&p).src.map(|l| l.comm), Some("client".into()));
        let (procs, wait, _) = l.label(&p);
        assert!(!wait);
        assert_eq!(procs.src.map(|l| l.pid), Some(10));

        // Another unknown client: one more read, which does not name it
        // and no longer has the first connection.
        let q = packet(40001, 8080);
        let (_, wait, _) = l.label(&q);
        assert!(wait);
        while l.waiting(&q) {
            assert!(Instant::now() < until, "the background read never finished");
            std::thread::sleep(Duration::from_millis(5));
            l.poll();
        }
        // Unknown after a read made since it appeared: not asked again.
        let (procs, wait, _) = l.label(&q);
        assert!(!wait && procs.src.is_none());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // The closed connection keeps the label it had.
        assert_eq!(l.both_of(&p).src.map(|l| l.pid), Some(10));
    }
}
