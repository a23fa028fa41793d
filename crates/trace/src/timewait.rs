//! Checking an inferred TIME-WAIT against the socket table.
//!
//! sock:inet_sock_set_state never reports TIME-WAIT: when the side that
//! closed first gets its last ACK (or the peer's FIN), the kernel swaps the
//! socket for a small timewait socket and reports the old one going to
//! CLOSE. The tracker infers TIME-WAIT from that transition; this module
//! asks sock_diag, in the connection's own network namespace, whether a
//! timewait socket with that address pair is really there (and in which
//! substate: FIN-WAIT-2 until the peer's FIN arrives, then TIME-WAIT).
//!
//! The work runs on its own thread so the trace loop never waits on
//! netlink; requests are batched, one dump per namespace per batch.

use crate::track::TwCheck;
use sockscope::model::{Endpoint, Family, Proto, State, StateSet};
use sockscope::source::netns::{self, NetnsTarget, OpenNetns};
use sockscope::source::sock_diag::{DiagSocket, Extensions};
use sockscope::source::{self, Kind, Request, SourceChoice};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A check's answer: the connection and the timewait socket's state, if
/// one was found.
pub type TwAnswer = (u64, Option<State>);

/// How long after the close to look (the peer's FIN is usually there by
/// then), and how often to look again while the socket is still in its
/// FIN-WAIT-2 substate.
const FIRST_LOOK: Duration = Duration::from_millis(60);
const RETRY: Duration = Duration::from_millis(150);
const TRIES: u32 = 4;
/// At most this many checks wait at once; more (a busy server closing
/// thousands of connections a second) are not checked: each check is a
/// dump of the namespace's TIME-WAIT sockets, and the point is to show
/// that the kernel keeps them, not to audit every one.
const MAX_PENDING: usize = 128;
/// At most one dump per namespace per this interval (the kernel walks
/// every socket of the namespace for it: hundreds of thousands of
/// TIME-WAIT sockets on a busy server)...
const MIN_DUMP_INTERVAL: Duration = Duration::from_secs(1);
/// ... and at most this share of the checker's time spent dumping: the
/// interval grows to this many times the last dump's duration.
const DUMP_DUTY: u32 = 100;

/// The checker thread and its channels.
pub struct TwChecker {
    tx: Option<Sender<Vec<TwCheck>>>,
    rx: Receiver<TwAnswer>,
    handle: Option<JoinHandle<()>>,
}

impl TwChecker {
    pub fn spawn() -> TwChecker {
        let (tx, req_rx) = mpsc::channel::<Vec<TwCheck>>();
        let (ans_tx, rx) = mpsc::channel::<TwAnswer>();
        let handle = std::thread::Builder::new()
            .name("sockscope-tw".into())
            .spawn(move || worker(req_rx, ans_tx))
            .ok();
        TwChecker {
            tx: Some(tx),
            rx,
            handle,
        }
    }

    /// Ask for checks, a batch at a time (one wakeup of the thread per
    /// batch). Beyond [`MAX_PENDING`] in one batch they would be dropped
    /// by the thread anyway, so they are dropped here.
    pub fn check(&self, mut batch: Vec<TwCheck>) {
        if batch.is_empty() {
            return;
        }
        batch.truncate(MAX_PENDING);
        if let Some(tx) = &self.tx {
            let _ = tx.send(batch);
        }
    }

    /// Answers that arrived since the last call.
    pub fn answers(&self) -> Vec<TwAnswer> {
        self.rx.try_iter().collect()
    }

    /// Stop taking requests and wait (bounded) for the outstanding ones.
    pub fn finish(&mut self, wait: Duration) -> Vec<TwAnswer> {
        self.tx = None;
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(a) => out.push(a),
                Err(_) => break,
            }
        }
        if let Some(h) = self.handle.take()
            && h.is_finished()
        {
            let _ = h.join();
        }
        out
    }
}

struct Pending {
    check: TwCheck,
    due: Instant,
    tries: u32,
    last: Option<State>,
}

fn canon(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

fn ep_addr(e: &Endpoint) -> Option<SocketAddr> {
    match e {
        Endpoint::Inet { addr, port } => Some(canon(SocketAddr::new(*addr, *port))),
        Endpoint::Unix { .. } | Endpoint::Unknown => None,
    }
}

/// The timewait sockets of one namespace: (local, peer) -> state.
type Table = HashMap<(SocketAddr, SocketAddr), State>;

/// The namespace's timewait sockets (and FIN-WAIT-2 ones: a timewait
/// socket whose peer's FIN has not come yet) whose local port is one of
/// `ports`: the kernel applies the port filter, so only those are copied
/// out and parsed, however many TIME-WAIT sockets the namespace holds.
fn dump(ns: &OpenNetns, ports: &[u16]) -> Option<Table> {
    let states = StateSet::of(&[State::TimeWait, State::FinWait2]);
    let diag = netns::run_in(ns, || {
        let mut d = DiagSocket::open().ok()?;
        let mut out = Vec::new();
        for fam in [Family::Inet, Family::Inet6] {
            d.dump_inet_ports(
                Proto::Tcp,
                fam,
                states,
                Extensions::default(),
                ports,
                &mut out,
            )
            .ok()?;
        }
        Some(out)
    })
    .ok()
    .flatten();
    // Without sock_diag (no tcp_diag module), /proc/net/tcp{,6}.
    let sockets = match diag {
        Some(s) => s,
        None => {
            let req = Request::all_states(&[Kind::Tcp])
                .states(states)
                .source(SourceChoice::Proc);
            let mut s = source::collect(ns, &req, false).ok()?.sockets;
            s.retain(|s| s.local.port().is_some_and(|p| ports.contains(&p)));
            s
        }
    };
    Some(
        sockets
            .iter()
            // A timewait socket has no inode; a full FIN-WAIT-2 socket does.
            .filter(|s| s.inode == 0)
            .filter_map(|s| Some(((ep_addr(&s.local)?, ep_addr(&s.peer)?), s.state)))
            .collect(),
    )
}

fn worker(rx: Receiver<Vec<TwCheck>>, tx: Sender<TwAnswer>) {
    let mut namespaces: HashMap<u32, OpenNetns> = HashMap::new();
    let mut last_refresh: Option<Instant> = None;
    let mut pending: Vec<Pending> = Vec::new();
    // per namespace: when it may be dumped again
    let mut next_dump: HashMap<u32, Instant> = HashMap::new();
    let mut open = true;
    while open || !pending.is_empty() {
        // Sleep until the first check that is due and whose namespace may
        // be dumped again.
        let t0 = Instant::now();
        let wait = pending
            .iter()
            .map(|p| {
                let next = next_dump.get(&p.check.netns).copied().unwrap_or(t0);
                p.due.max(next).saturating_duration_since(t0)
            })
            .min()
            .unwrap_or(Duration::from_millis(200))
            .max(Duration::from_millis(5));
        if open {
            match rx.recv_timeout(wait) {
                Ok(batch) => {
                    // take whatever else is queued, keeping at most MAX_PENDING
                    for c in std::iter::once(batch).chain(rx.try_iter()).flatten() {
                        if pending.len() < MAX_PENDING {
                            pending.push(Pending {
                                check: c,
                                due: Instant::now() + FIRST_LOOK,
                                tries: 0,
                                last: None,
                            });
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => open = false,
            }
        } else {
            std::thread::sleep(wait);
        }
        let now = Instant::now();
        let dumpable = |ns: u32| next_dump.get(&ns).is_none_or(|t| *t <= now);
        let due: Vec<usize> = (0..pending.len())
            .filter(|&i| pending[i].due <= now && dumpable(pending[i].check.netns))
            .collect();
        if due.is_empty() {
            continue;
        }
        // Namespaces we have not opened yet: look again (at most once a second).
        let missing = due
            .iter()
            .any(|&i| !namespaces.contains_key(&pending[i].check.netns));
        if missing && last_refresh.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
            last_refresh = Some(Instant::now());
            if let Ok(all) = netns::open(&NetnsTarget::All) {
                for ns in all {
                    if let Ok(ino) = u32::try_from(ns.id.inode) {
                        namespaces.entry(ino).or_insert(ns);
                    }
                }
            }
        }
        // The local ports to look for, per namespace.
        let mut ports: HashMap<u32, Vec<u16>> = HashMap::new();
        for &i in &due {
            let c = &pending[i].check;
            ports.entry(c.netns).or_default().push(c.local.port());
        }
        let due: HashSet<usize> = due.into_iter().collect();
        let mut tables: HashMap<u32, Option<Table>> = HashMap::new();
        let mut keep = Vec::new();
        for (i, mut p) in pending.drain(..).enumerate() {
            if !due.contains(&i) {
                keep.push(p);
                continue;
            }
            let table = tables.entry(p.check.netns).or_insert_with(|| {
                let mut want = ports.remove(&p.check.netns).unwrap_or_default();
                want.sort_unstable();
                want.dedup();
                let t0 = Instant::now();
                let table = namespaces
                    .get(&p.check.netns)
                    .and_then(|ns| dump(ns, &want));
                let pause = MIN_DUMP_INTERVAL.max(t0.elapsed() * DUMP_DUTY);
                next_dump.insert(p.check.netns, now + pause);
                table
            });
            let key = (canon(p.check.local), canon(p.check.peer));
            let state = table.as_ref().and_then(|t| t.get(&key).copied());
            p.tries += 1;
            p.last = state.or(p.last);
            if table.is_none() {
                // The socket table could not be read: no answer is better
                // than a wrong "not found".
                continue;
            }
            let settled = state == Some(State::TimeWait) || p.tries >= TRIES;
            if settled {
                let _ = tx.send((p.check.conn, p.last));
            } else {
                p.due = now + RETRY;
                keep.push(p);
            }
        }
        pending = keep;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn addresses_compare_canonically() {
        let a: SocketAddr = "[::ffff:127.0.0.1]:80".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert_eq!(canon(a), b);
        let e = Endpoint::Inet {
            addr: IpAddr::V6("::ffff:10.0.0.1".parse().unwrap()),
            port: 1,
        };
        assert_eq!(ep_addr(&e), Some("10.0.0.1:1".parse().unwrap()));
    }
}
