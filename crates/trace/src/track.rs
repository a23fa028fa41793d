//! The join: events to connections, connections to processes. Pure (no
//! kernel, no I/O): fed decoded events in time order, it
//!
//! - numbers connections and keeps what is known about each: addresses,
//!   state history, role (listener, server side, client side), owner;
//! - attributes events by socket, not by whichever task ran (state
//!   changes run in softirq): the owner comes from the kernel's owner map,
//!   else from an earlier event on the same socket, else from the fd-table
//!   snapshot taken at start (by socket cookie);
//! - keeps a connection's address when the kernel has already cleared it
//!   (an auto-bound port reads 0 in the final CLOSE);
//! - joins a half-open connection's SYN-ACK retransmits with the socket
//!   the kernel creates when the handshake completes, and drops and
//!   socketless resets with the connection whose packets they were;
//! - infers TIME-WAIT from FIN-WAIT-2/CLOSING -> CLOSE without a reset,
//!   and asks for a socket-table check of it;
//! - applies the user-space half of the filter, holding the events of a
//!   socket whose addresses are not known yet (socket() before bind or
//!   connect) until they are;
//! - hands back a connection once it is finished (destroyed, plus a short
//!   grace period for the close() that returns after the kernel freed it).

use crate::event::{Comm, Event, What, sockaddr};
use serde::Serialize;
use sockscope::model::{Endpoint, Family, Owner as ModelOwner, Proto, Socket, SourceKind, State};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, SocketAddr};

/// A fast hasher for the tracker's maps (keys are kernel addresses,
/// connection numbers and address pairs, not attacker-chosen strings):
/// multiply and rotate, as rustc's FxHash does. The product's entropy is
/// in its high bits, and the map picks buckets by the low ones: kernel
/// socket addresses are 64-byte aligned, so without the final rotation
/// every socket's hash ended in six zero bits and they all crowded into
/// one bucket in 64 (a third of the tracer's user-space time went to
/// probing).
///
/// Why not the `rustc-hash` crate: measured 2026-12-03 with rustc-hash
/// 2.1.3 (`FxBuildHasher`, which also ends with a rotation) on the keys of
/// the test below (4096 addresses 2304 bytes apart), the low 12 bits take
/// 1072 distinct values against this hasher's 3235 (the test asks for more
/// than 2000), and 5 × 200 000 inserts and lookups of such keys in a std
/// HashMap took 186–192 ms against 168–175 ms (release build, one run
/// each twice, on 2 cores under a load average of 12–16: the timing is
/// rough, the bucket count is exact). Its add-then-multiply leaves the stride's
/// low zero bits in the product where this xor-rotate-multiply does not.
#[derive(Default, Clone, Copy)]
pub struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

#[cfg(test)]
mod fx_tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn aligned_addresses_spread_over_buckets() {
        // 4096 socket-like addresses 2304 bytes apart (64-byte aligned):
        // their hashes' low 12 bits (the bucket in a 4096-slot table)
        // must take most of the 4096 values.
        let b = BuildHasherDefault::<Fx>::default();
        let mut seen = std::collections::HashSet::new();
        for i in 0..4096u64 {
            seen.insert(b.hash_one(0xffff_8880_1234_0000u64 + i * 2304) & 0xfff);
        }
        assert!(seen.len() > 2000, "{} distinct buckets", seen.len());
    }
}

/// A HashMap with [`Fx`].
pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

/// Who a connection belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Owner {
    pub pid: u32,
    pub comm: Comm,
    pub fd: Option<i32>,
    /// "task", "socket", "listener" or "snapshot" (see [`Event::owner`]).
    pub via: &'static str,
}

/// Which end of the connection this socket is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Listener,
    /// Made by a listener (the accept() side).
    Server,
    /// Made by connect().
    Client,
    Unknown,
}

/// How a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// Still open when the trace stopped.
    Open,
    /// Closed by FIN on both sides, this side last (LAST-ACK).
    Closed,
    /// Closed first by this side: TIME-WAIT.
    TimeWait,
    /// A reset was received.
    ResetReceived,
    /// This side sent a reset (abort, SO_LINGER 0, data left unread...).
    ResetSent,
    /// connect() never got an answer or was refused.
    Failed,
    /// A listener that closed.
    ListenerClosed,
    /// Anything else (UDP sockets, sockets closed before connecting).
    Gone,
}

/// Everything known about one connection (or listener).
#[derive(Clone, Debug, Serialize)]
pub struct Conn {
    pub id: u64,
    #[serde(serialize_with = "hex")]
    pub sk: u64,
    pub netns: u32,
    pub proto: Option<Proto>,
    pub family: Option<Family>,
    pub local: Option<SocketAddr>,
    pub peer: Option<SocketAddr>,
    pub owner: Option<Owner>,
    pub role: Role,
    /// Current (or last) state.
    pub state: Option<State>,
    /// Every state it was seen in, in order (TIME-WAIT when inferred).
    pub states: Vec<State>,
    pub first_ns: u64,
    pub last_ns: u64,
    /// It existed before the trace started.
    pub preexisting: bool,
    /// Bytes handed to / read from the socket by the application.
    pub bytes_written: u64,
    pub bytes_read: u64,
    pub retransmits: u32,
    pub synack_retransmits: u32,
    pub drops: u32,
    pub resets_sent: u32,
    pub resets_received: u32,
    /// TCP segments seen at the devices (packet events), each way.
    pub packets_in: u64,
    pub packets_out: u64,
    /// tcp_destroy_sock's totals, when it was destroyed during the trace.
    pub summary: Option<What>,
    /// When it was destroyed (or closed, for non-TCP sockets).
    pub closed_ns: Option<u64>,
    pub end: End,
    /// Its events (kept only when asked for, for diagrams).
    #[serde(skip)]
    pub events: Vec<Event>,
    #[serde(skip)]
    held: Vec<Event>,
    /// Events held, when the tracker only counts them: [read, inferred].
    #[serde(skip)]
    held_n: [u32; 2],
    #[serde(skip)]
    verdict: Option<bool>,
    #[serde(skip)]
    reset_seen: bool,
    /// It is in the tracker's closing queue.
    #[serde(skip)]
    queued_closing: bool,
    /// Time of its first state change seen (trace time), for its lifetime.
    #[serde(skip)]
    born_ns: Option<u64>,
    /// The (local, peer) it is registered under in the tracker's tuples,
    /// and whether it is in `unbound`: saves hashing both on every event.
    #[serde(skip)]
    tuple_key: Option<(SocketAddr, SocketAddr)>,
    #[serde(skip)]
    in_unbound: bool,
    /// What sequence numbers are made relative to: [sent by the local
    /// end, sent by the peer] (the ISN, or the first seen minus one, as
    /// capture does).
    #[serde(skip)]
    seq_base: [Option<u32>; 2],
}

fn hex<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:#x}"))
}

impl Conn {
    fn new(id: u64, sk: u64, ev: &Event) -> Conn {
        Conn {
            id,
            sk,
            netns: ev.netns,
            proto: ev.proto,
            family: ev.family,
            local: None,
            peer: None,
            owner: None,
            role: Role::Unknown,
            state: None,
            states: Vec::new(),
            first_ns: ev.t_ns,
            last_ns: ev.t_ns,
            preexisting: false,
            bytes_written: 0,
            bytes_read: 0,
            retransmits: 0,
            synack_retransmits: 0,
            drops: 0,
            resets_sent: 0,
            resets_received: 0,
            summary: None,
            closed_ns: None,
            end: End::Open,
            events: Vec::new(),
            held: Vec::new(),
            held_n: [0; 2],
            verdict: None,
            reset_seen: false,
            queued_closing: false,
            born_ns: None,
            tuple_key: None,
            in_unbound: false,
            packets_in: 0,
            packets_out: 0,
            seq_base: [None; 2],
        }
    }

    fn enter(&mut self, s: State) {
        if self.states.last() != Some(&s) {
            self.states.push(s);
        }
        self.state = Some(s);
        if s == State::Listen {
            self.role = Role::Listener;
        }
    }

    /// The connection as a model socket, for the ss-syntax filter.
    pub fn as_socket(&self, state: Option<State>) -> Socket {
        let unspec = |fam: Option<Family>| -> IpAddr {
            if fam == Some(Family::Inet6) {
                IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
            } else {
                IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
            }
        };
        let ep = |a: Option<SocketAddr>| match a {
            Some(a) => Endpoint::Inet {
                addr: a.ip(),
                port: a.port(),
            },
            None => Endpoint::Inet {
                addr: unspec(self.family),
                port: 0,
            },
        };
        let mut s = Socket::new(
            self.proto.unwrap_or(Proto::Tcp),
            self.family.unwrap_or(Family::Inet),
            state.or(self.state).unwrap_or(State::Close),
            ep(self.local),
            ep(self.peer),
            SourceKind::Netlink,
        );
        if let Some(o) = &self.owner {
            s.owners.push(ModelOwner {
                pid: o.pid,
                fd: o.fd.and_then(|f| u32::try_from(f).ok()).unwrap_or(0),
                comm: o.comm.as_str().into_owned(),
                uid: None,
                tid: None,
            });
        }
        s
    }

    /// Duration from first sight to destruction (or last event).
    pub fn duration_ns(&self) -> u64 {
        self.closed_ns
            .unwrap_or(self.last_ns)
            .saturating_sub(self.first_ns)
    }
}

/// The user-space half of the filter.
#[derive(Clone, Debug, Default)]
pub struct UserFilter {
    /// Either end's port.
    pub ports: Vec<u16>,
    /// Either end's address within one of these prefixes.
    pub addrs: Vec<(IpAddr, u8)>,
    /// ss-syntax filter on the connection as a socket.
    pub expr: Option<sockscope::query::Filter>,
}

fn in_prefix(a: IpAddr, (net, len): (IpAddr, u8)) -> bool {
    let a = match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match (a, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let len = u32::from(len.min(32));
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let len = u32::from(len.min(128));
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl UserFilter {
    pub fn is_empty(&self) -> bool {
        self.ports.is_empty() && self.addrs.is_empty() && self.expr.is_none()
    }

    /// Some(verdict) once the connection's addresses are known; None while
    /// the filter needs them and they are not.
    fn check(&self, c: &Conn, state: Option<State>) -> Option<bool> {
        if self.is_empty() {
            return Some(true);
        }
        let known = c.local.is_some_and(|a| a.port() != 0) || c.peer.is_some_and(|a| a.port() != 0);
        if !known {
            return None;
        }
        if !self.ports.is_empty() {
            let p = |a: Option<SocketAddr>| a.is_some_and(|a| self.ports.contains(&a.port()));
            if !p(c.local) && !p(c.peer) {
                return Some(false);
            }
        }
        if !self.addrs.is_empty() {
            let m = |a: Option<SocketAddr>| {
                a.is_some_and(|a| self.addrs.iter().any(|n| in_prefix(a.ip(), *n)))
            };
            if !m(c.local) && !m(c.peer) {
                return Some(false);
            }
        }
        if let Some(f) = &self.expr {
            return Some(f.matches(&c.as_socket(state)));
        }
        Some(true)
    }
}

/// A TIME-WAIT to look for in the socket table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TwCheck {
    pub conn: u64,
    pub netns: u32,
    pub local: SocketAddr,
    pub peer: SocketAddr,
}

/// A listening socket and its owner. Several can share a (netns, port):
/// an IPv4 and a v6only IPv6 listener, SO_REUSEPORT workers. A queued
/// connection is credited to the newest of its own address family, else
/// the newest (the kernel picks among reuseport listeners by hash, which
/// is not visible here); a closing one removes only its own entry.
#[derive(Clone, Debug)]
struct Listening {
    /// Socket address (from listen()), 0 when it came from the snapshot.
    sk: u64,
    cookie: Option<u64>,
    ipv6: bool,
    owner: Owner,
}

fn listener_for(v: &[Listening], local: SocketAddr) -> Option<&Listening> {
    v.iter()
        .rev()
        .find(|l| l.ipv6 == local.is_ipv6())
        .or(v.last())
}

/// A socket that existed at start, as the snapshot saw it.
#[derive(Clone, Debug)]
struct Known {
    owner: Option<Owner>,
    state: State,
}

type Tuple = (u32, SocketAddr, SocketAddr);

/// How long a destroyed connection keeps collecting events (the close()
/// that returns after the kernel freed the socket, a late recv error).
pub const GRACE_NS: u64 = 300_000_000;

/// How long the events of a socket whose addresses are unknown are held
/// without news before they are dropped.
pub const HELD_IDLE_NS: u64 = 10_000_000_000;

/// The connection tracker.
pub struct Tracker {
    next: u64,
    /// Live socket address -> connection id.
    live: FxMap<u64, u64>,
    /// Boxed: a connection is ~540 bytes, and a busy host keeps tens of
    /// thousands (the grace period): inline they made every lookup of
    /// the table a walk over megabytes; boxed the table is small and only
    /// the connection looked for is touched.
    conns: FxMap<u64, Box<Conn>>,
    /// (netns, local, peer) -> connection id.
    tuples: FxMap<Tuple, u64>,
    /// (netns, peer) -> connection id, for connections whose local port is
    /// not known yet (a connect() in progress: the kernel picks the port
    /// after it reports SYN-SENT, and a refusal can arrive before
    /// connect() returns with it).
    unbound: FxMap<(u32, SocketAddr), u64>,
    /// Sockets from the start snapshot, by cookie.
    known: FxMap<u64, Known>,
    /// (netns, port) of a listener -> its owner: a connection the kernel
    /// queues for it belongs to that process until accept() says which
    /// fd. From the start snapshot and from listen().
    listeners: FxMap<(u32, u16), Vec<Listening>>,
    filter: UserFilter,
    keep_events: bool,
    tw_checks: Vec<TwCheck>,
    /// Connections destroyed, oldest first, waiting out the grace period.
    closing: VecDeque<(u64, u64)>,
    last_sweep: u64,
    /// The connection each process last acted on (its own syscalls and
    /// data), for the waits it blocks in.
    pid_conn: FxMap<u32, u64>,
    /// The connection whose packet woke a thread in its current wait.
    woken_by: FxMap<u32, u64>,
    /// Events seen, and events that passed the filter.
    pub seen: u64,
    pub shown: u64,
    /// Count the events that pass instead of handing them over (nothing is
    /// shown, e.g. `trace -q`): see [`Tracker::count_only`].
    count_only: bool,
    /// Events that passed while counting only, not taken yet: (read from
    /// the kernel, inferred).
    counted: (u64, u64),
}

fn rank(via: &str) -> u8 {
    match via {
        "task" | "socket" => 3,
        "listener" => 2,
        "snapshot" => 1,
        _ => 0,
    }
}

fn nonzero(a: Option<SocketAddr>) -> Option<SocketAddr> {
    a.filter(|a| a.port() != 0 || !a.ip().is_unspecified())
}

impl Tracker {
    pub fn new(filter: UserFilter, keep_events: bool) -> Tracker {
        Tracker {
            next: 1,
            live: FxMap::default(),
            conns: FxMap::default(),
            tuples: FxMap::default(),
            unbound: FxMap::default(),
            known: FxMap::default(),
            listeners: FxMap::default(),
            filter,
            keep_events,
            tw_checks: Vec::new(),
            closing: VecDeque::new(),
            last_sweep: 0,
            pid_conn: FxMap::default(),
            woken_by: FxMap::default(),
            seen: 0,
            shown: 0,
            count_only: false,
            counted: (0, 0),
        }
    }

    /// Hand over no event, only count the ones that pass the filter (see
    /// [`Tracker::take_counted`]): for a trace that shows none. The
    /// connections are joined and handed back exactly as otherwise. Not
    /// with `keep_events`.
    pub fn count_only(&mut self) {
        self.count_only = !self.keep_events;
    }

    /// Events that passed the filter since the last call, when counting
    /// only: (read from the kernel, inferred).
    pub fn take_counted(&mut self) -> (u64, u64) {
        std::mem::take(&mut self.counted)
    }

    /// Remember the sockets (with owners) that existed at start.
    pub fn add_snapshot(&mut self, sockets: &[Socket]) {
        for s in sockets {
            let Some(c) = s.cookie else { continue };
            let owner = s.owners.first().map(|o| Owner {
                pid: o.pid,
                comm: Comm::from(o.comm.as_str()),
                fd: i32::try_from(o.fd).ok(),
                via: "snapshot",
            });
            if s.proto == Proto::Tcp
                && s.state == State::Listen
                && let (Some(o), Some(ns), Some(port)) = (&owner, &s.netns, s.local.port())
                && let Ok(ns) = u32::try_from(ns.inode)
            {
                self.listeners
                    .entry((ns, port))
                    .or_default()
                    .push(Listening {
                        sk: 0,
                        cookie: Some(c),
                        ipv6: s.family == Family::Inet6,
                        owner: o.clone(),
                    });
            }
            self.known.insert(
                c,
                Known {
                    owner,
                    state: s.state,
                },
            );
        }
    }

    /// TIME-WAIT checks asked for since the last call.
    pub fn take_tw_checks(&mut self) -> Vec<TwCheck> {
        std::mem::take(&mut self.tw_checks)
    }

    /// Connections still tracked (open, or closing within the grace period).
    pub fn open(&self) -> impl Iterator<Item = &Conn> {
        self.conns.values().map(|c| &**c)
    }

    fn create(&mut self, sk: u64, ev: &Event) -> u64 {
        let id = self.next;
        self.next += 1;
        let mut c = Conn::new(id, sk, ev);
        if let Some(k) = ev.cookie.and_then(|ck| self.known.get(&ck)) {
            c.preexisting = true;
            c.owner = k.owner.clone();
            c.enter(k.state);
        }
        self.conns.insert(id, Box::new(c));
        if sk != 0 {
            self.live.insert(sk, id);
        }
        id
    }

    /// The connection a packet from `a` to `b` belongs to, and whether
    /// `a` is its local end.
    fn by_tuple(
        &self,
        netns: u32,
        a: Option<SocketAddr>,
        b: Option<SocketAddr>,
    ) -> Option<(u64, bool)> {
        let (a, b) = (a?, b?);
        if let Some(&id) = self.tuples.get(&(netns, a, b)) {
            return Some((id, true));
        }
        if let Some(&id) = self.tuples.get(&(netns, b, a)) {
            return Some((id, false));
        }
        let unbound = |local: SocketAddr, peer: SocketAddr| {
            let id = *self.unbound.get(&(netns, peer))?;
            let c = self.conns.get(&id)?;
            let ip = c.local.map(|l| l.ip());
            (ip.is_none_or(|ip| ip == local.ip() || ip.is_unspecified())).then_some(id)
        };
        if let Some(id) = unbound(a, b) {
            return Some((id, true));
        }
        unbound(b, a).map(|id| (id, false))
    }

    /// Which connection an event belongs to (creating one if needed); None
    /// for a packet that matches no connection.
    fn route(&mut self, ev: &mut Event, sk: u64, out: &mut Vec<Conn>) -> Option<u64> {
        let netns = ev.netns;
        if let What::Drop {
            from,
            to,
            direction,
            ..
        } = &mut ev.what
        {
            let (f, t) = (sockaddr(from), sockaddr(to));
            // A packet the receiving socket dropped belongs to the
            // receiving end's connection when both ends are traced.
            if *direction == Some("in")
                && let (Some(f), Some(t)) = (f, t)
                && let Some(&id) = self.tuples.get(&(netns, t, f))
            {
                return Some(id);
            }
            if let Some((id, forward)) = self.by_tuple(netns, f, t) {
                // forward: the packet's source is the connection's local end
                *direction = Some(if forward { "out" } else { "in" });
                return Some(id);
            }
            return self.live.get(&sk).copied().filter(|_| sk != 0);
        }
        if let What::Packet { .. } = &ev.what {
            return self.route_packet(ev, sk);
        }
        if matches!(ev.what, What::Wait { .. } | What::Wake { .. }) {
            return self.route_wait(ev);
        }
        if matches!(
            ev.what,
            What::ResetSent {
                no_socket: true,
                ..
            }
        ) {
            return self
                .by_tuple(netns, sockaddr(&ev.local), sockaddr(&ev.peer))
                .map(|x| x.0);
        }
        if matches!(ev.what, What::RetransmitSynack {}) {
            let key = (netns, sockaddr(&ev.local)?, sockaddr(&ev.peer)?);
            if let Some(&id) = self.tuples.get(&key) {
                return Some(id);
            }
            let id = self.create(0, ev);
            if let Some(c) = self.conns.get_mut(&id) {
                c.role = Role::Server;
                c.enter(State::SynRecv);
            }
            self.tuples.insert(key, id);
            return Some(id);
        }
        let new_life = match &ev.what {
            What::Syscall {
                syscall: "socket",
                ret,
                ..
            } => *ret >= 0,
            What::State { old_state, .. } => matches!(old_state, State::Close | State::Listen),
            _ => false,
        };
        if let Some(&id) = self.live.get(&sk) {
            // (Looked up only for an event that starts a socket's life.)
            if !new_life || self.conns.get(&id).is_some_and(|c| c.closed_ns.is_none()) {
                return Some(id);
            }
            // The address was freed and reused: the old connection is over.
            self.live.remove(&sk);
            self.finalize(id, out);
        }
        // A server-side socket the kernel just made may continue a
        // half-open connection we saw retransmitting its SYN-ACK.
        if let What::State {
            old_state: State::Listen,
            new_state: State::SynRecv,
        } = ev.what
            && let (Some(l), Some(p)) = (sockaddr(&ev.local), sockaddr(&ev.peer))
            && let Some(&id) = self.tuples.get(&(ev.netns, l, p))
            && let Some(c) = self.conns.get_mut(&id)
            && c.sk == 0
        {
            c.sk = sk;
            self.live.insert(sk, id);
            return Some(id);
        }
        Some(self.create(sk, ev))
    }

    /// The connection of a segment at a device: by its tuple (the local end
    /// first in both directions), by the socket that sent it, by the peer
    /// of a connect() whose local port is not known yet; a SYN arriving
    /// for a listener (or the SYN-ACK leaving it) starts a half-open
    /// connection that the kernel's new socket continues. None: a segment
    /// of no connection sockscope knows.
    fn route_packet(&mut self, ev: &Event, sk: u64) -> Option<u64> {
        let What::Packet {
            direction,
            tcp_flags,
            ..
        } = &ev.what
        else {
            return None;
        };
        let netns = ev.netns;
        let (l, p) = (sockaddr(&ev.local)?, sockaddr(&ev.peer)?);
        let syn = has_flag(tcp_flags, "SYN");
        let ack = has_flag(tcp_flags, "ACK");
        let dead = |id: u64| self.conns.get(&id).is_none_or(|c| c.closed_ns.is_some());
        if let Some(&id) = self.tuples.get(&(netns, l, p)) {
            // A new SYN on the tuple of a connection that is over starts
            // another one.
            if !(syn && !ack && dead(id)) {
                return Some(id);
            }
        }
        if sk != 0
            && let Some(&id) = self.live.get(&sk)
        {
            return Some(id);
        }
        if let Some(&id) = self.unbound.get(&(netns, p))
            && let Some(c) = self.conns.get(&id)
            && c.local
                .is_none_or(|a| a.ip() == l.ip() || a.ip().is_unspecified())
        {
            return Some(id);
        }
        // A SYN arriving, or a SYN-ACK leaving.
        let opens = syn && ack == (*direction == "out");
        if !opens || !self.listeners.contains_key(&(netns, l.port())) {
            return None;
        }
        let id = self.create(0, ev);
        if let Some(c) = self.conns.get_mut(&id) {
            c.role = Role::Server;
        }
        self.tuples.insert((netns, l, p), id);
        Some(id)
    }

    /// The connection of a wait or a wakeup: the one whose packet woke
    /// the thread (the wakeup and the wait's return carry its tuple), else
    /// the one the process last acted on.
    fn route_wait(&mut self, ev: &Event) -> Option<u64> {
        let tid = ev.tid.unwrap_or(0);
        let by_tuple = match (nonzero(sockaddr(&ev.local)), nonzero(sockaddr(&ev.peer))) {
            (Some(l), Some(p)) => self.tuples.get(&(ev.netns, l, p)).copied(),
            _ => None,
        };
        let exit = matches!(ev.what, What::Wait { phase: "exit", .. });
        let id = match &ev.what {
            What::Wake { .. } => {
                if let Some(id) = by_tuple {
                    self.woken_by.insert(tid, id);
                }
                by_tuple
            }
            _ if exit => self.woken_by.remove(&tid).or(by_tuple),
            _ => None,
        };
        id.or_else(|| ev.pid.and_then(|p| self.pid_conn.get(&p).copied()))
            .filter(|id| self.conns.contains_key(id))
    }

    /// Feed one event (in time order). Events to show go to `out`;
    /// connections that end (when an address is reused) go to `done`.
    pub fn push(&mut self, mut ev: Event, sk: u64, out: &mut Vec<Event>, done: &mut Vec<Conn>) {
        self.seen += 1;
        let Some(id) = self.route(&mut ev, sk, done) else {
            // A packet of no connection we know: shown as it is, unless a
            // filter on addresses says otherwise.
            if self.standalone_passes(&ev) {
                self.shown += 1;
                if self.count_only {
                    self.counted.0 += 1;
                } else {
                    out.push(ev);
                }
            }
            return;
        };
        if ev.owner == Some("task")
            && let Some(pid) = ev.pid
            && !matches!(ev.what, What::Wait { .. } | What::Wake { .. })
        {
            self.pid_conn.insert(pid, id);
        }
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        ev.conn = Some(id);
        // A connection the kernel made for a listener (not accepted yet)
        // belongs to the listener's owner.
        let half_open = c.sk == 0 && c.role == Role::Server;
        if c.owner.is_none()
            && ev.pid.is_none()
            && (queued_for_listener(&ev) || (half_open && matches!(ev.what, What::Packet { .. })))
            && let Some(local) = sockaddr(&ev.local)
            && let Some(l) = self
                .listeners
                .get(&(c.netns, local.port()))
                .and_then(|v| listener_for(v, local))
        {
            c.owner = Some(Owner {
                via: "listener",
                ..l.owner.clone()
            });
        }
        update(c, &mut ev);
        // Listeners: remember who listens, forget when they close.
        match &ev.what {
            What::Syscall {
                syscall: "listen",
                ret: 0,
                ..
            } => {
                if let (Some(o), Some(l)) = (&c.owner, c.local) {
                    let v = self.listeners.entry((c.netns, l.port())).or_default();
                    v.retain(|e| e.sk != c.sk);
                    v.push(Listening {
                        sk: c.sk,
                        cookie: ev.cookie,
                        ipv6: l.is_ipv6(),
                        owner: o.clone(),
                    });
                }
            }
            What::State {
                old_state: State::Listen,
                new_state: State::Close,
            } => {
                if let Some(l) = c.local
                    && let Some(v) = self.listeners.get_mut(&(c.netns, l.port()))
                {
                    let sk = c.sk;
                    v.retain(|e| e.sk != sk && (e.cookie.is_none() || e.cookie != ev.cookie));
                    if v.is_empty() {
                        self.listeners.remove(&(c.netns, l.port()));
                    }
                }
            }
            _ => {}
        }

        let mut extra = None;
        if let What::State {
            old_state,
            new_state,
        } = ev.what
        {
            if new_state == State::Close
                && matches!(old_state, State::FinWait2 | State::Closing)
                && !c.reset_seen
            {
                let tw = if self.count_only {
                    // Only counted: the filter needs its state, not a copy.
                    None
                } else {
                    let mut tw = ev.clone();
                    tw.what = What::TimeWait {
                        from_state: old_state,
                    };
                    tw.state = Some(State::TimeWait);
                    Some(tw)
                };
                // The CLOSE is the full socket's; the timewait socket
                // carries the connection on.
                let last = c.states.pop();
                c.enter(State::TimeWait);
                if let Some(s) = last {
                    c.states.push(s);
                }
                c.end = End::TimeWait;
                if let (Some(l), Some(p)) = (c.local, c.peer) {
                    self.tw_checks.push(TwCheck {
                        conn: id,
                        netns: c.netns,
                        local: l,
                        peer: p,
                    });
                }
                extra = Some(tw);
            }
        }
        match (nonzero(c.local), nonzero(c.peer)) {
            (Some(l), Some(p)) if l.port() != 0 && p.port() != 0 => {
                // Registered once it holds the tuple (a reused tuple may
                // still belong to a connection in its grace period: then
                // try again on the next event).
                if c.tuple_key != Some((l, p))
                    && *self.tuples.entry((c.netns, l, p)).or_insert(id) == id
                {
                    c.tuple_key = Some((l, p));
                }
                if c.in_unbound {
                    c.in_unbound = false;
                    if self.unbound.get(&(c.netns, p)) == Some(&id) {
                        self.unbound.remove(&(c.netns, p));
                    }
                }
            }
            (_, Some(p)) if p.port() != 0 && c.role == Role::Client => {
                c.in_unbound = true;
                self.unbound.insert((c.netns, p), id);
            }
            _ => {}
        }
        if let Some(t) = c.closed_ns
            && !c.queued_closing
        {
            c.queued_closing = true;
            self.closing.push_back((t, id));
        }
        if self.count_only {
            let (shown, counted) = (&mut self.shown, &mut self.counted);
            count_in(&self.filter, c, ev.state, false, shown, counted);
            if extra.is_some() {
                count_in(&self.filter, c, Some(State::TimeWait), true, shown, counted);
            }
            return;
        }
        self.emit(id, ev, out);
        if let Some(Some(tw)) = extra {
            self.emit(id, tw, out);
        }
    }

    /// [`Tracker::emit`] when events are only counted: the same filter,
    /// the same verdicts and holds, no event built or kept.
    fn count(&mut self, id: u64, state: Option<State>, inferred: bool) {
        if let Some(c) = self.conns.get_mut(&id) {
            count_in(
                &self.filter,
                c,
                state,
                inferred,
                &mut self.shown,
                &mut self.counted,
            );
        }
    }

    fn standalone_passes(&self, ev: &Event) -> bool {
        if self.filter.is_empty() {
            return true;
        }
        let eps: Vec<SocketAddr> = match &ev.what {
            What::Drop { from, to, .. } => [sockaddr(from), sockaddr(to)]
                .into_iter()
                .flatten()
                .collect(),
            _ => [sockaddr(&ev.local), sockaddr(&ev.peer)]
                .into_iter()
                .flatten()
                .collect(),
        };
        if !self.filter.ports.is_empty()
            && !eps.iter().any(|a| self.filter.ports.contains(&a.port()))
        {
            return false;
        }
        if !self.filter.addrs.is_empty()
            && !eps
                .iter()
                .any(|a| self.filter.addrs.iter().any(|n| in_prefix(a.ip(), *n)))
        {
            return false;
        }
        self.filter.expr.is_none()
    }

    /// Pass a connection's new event through the filter.
    fn emit(&mut self, id: u64, ev: Event, out: &mut Vec<Event>) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if self.count_only {
            // (tw_result's check events, in a trace that only counts)
            let state = ev.state;
            let inferred = ev.inferred();
            return self.count(id, state, inferred);
        }
        match self.filter.check(c, ev.state) {
            None => c.held.push(ev),
            Some(true) => {
                c.verdict = Some(true);
                if !c.held.is_empty() {
                    for h in std::mem::take(&mut c.held) {
                        if self.keep_events {
                            c.events.push(h.clone());
                        }
                        self.shown += 1;
                        out.push(h);
                    }
                }
                if self.keep_events {
                    c.events.push(ev.clone());
                }
                self.shown += 1;
                out.push(ev);
            }
            Some(false) => {
                if c.verdict.is_none() {
                    c.verdict = Some(false);
                }
                c.held.clear();
            }
        }
    }

    /// The socket table's answer about a TIME-WAIT.
    pub fn tw_result(
        &mut self,
        conn: u64,
        table_state: Option<State>,
        t_ns: u64,
        out: &mut Vec<Event>,
    ) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let ev = Event {
            t_ns,
            conn: Some(conn),
            what: What::TimeWaitCheck {
                found: table_state.is_some(),
                table_state,
            },
            proto: c.proto,
            family: c.family,
            local: c.local.map(|a| Endpoint::Inet {
                addr: a.ip(),
                port: a.port(),
            }),
            peer: c.peer.map(|a| Endpoint::Inet {
                addr: a.ip(),
                port: a.port(),
            }),
            state: table_state,
            pid: c.owner.as_ref().map(|o| o.pid),
            comm: c.owner.as_ref().map(|o| o.comm),
            fd: c.owner.as_ref().and_then(|o| o.fd),
            owner: c.owner.as_ref().map(|o| o.via),
            tid: None,
            sk: c.sk,
            cookie: None,
            netns: c.netns,
        };
        self.emit(conn, ev, out);
    }

    /// Hand back connections destroyed more than [`GRACE_NS`] before
    /// `now_ns` (trace time), and forget held sockets that stayed silent
    /// for [`HELD_IDLE_NS`] (a socket whose ports never became known, or
    /// whose remaining events the kernel filters out).
    pub fn tick(&mut self, now_ns: u64, done: &mut Vec<Conn>) {
        while let Some(&(t, id)) = self.closing.front() {
            if t + GRACE_NS > now_ns {
                break;
            }
            self.closing.pop_front();
            self.finalize(id, done);
        }
        if now_ns >= self.last_sweep + 1_000_000_000 {
            self.last_sweep = now_ns;
            let stale: Vec<u64> = self
                .conns
                .values()
                .filter(|c| c.verdict.is_none() && c.last_ns + HELD_IDLE_NS < now_ns)
                .map(|c| c.id)
                .collect();
            for id in stale {
                self.finalize(id, done);
            }
        }
    }

    /// Everything still tracked, at the end of the trace: finished ones
    /// first, then the open ones (by id).
    pub fn finish(&mut self, done: &mut Vec<Conn>) {
        let mut ids: Vec<u64> = self.conns.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            self.finalize(id, done);
        }
        self.closing.clear();
    }

    fn finalize(&mut self, id: u64, done: &mut Vec<Conn>) {
        let Some(mut c) = self.conns.remove(&id) else {
            return;
        };
        if self.live.get(&c.sk) == Some(&id) {
            self.live.remove(&c.sk);
        }
        if let Some((l, p)) = c.tuple_key
            && self.tuples.get(&(c.netns, l, p)) == Some(&id)
        {
            self.tuples.remove(&(c.netns, l, p));
        }
        if let Some(p) = c.peer
            && self.unbound.get(&(c.netns, p)) == Some(&id)
        {
            self.unbound.remove(&(c.netns, p));
        }
        // Its entry in `closing`, if any, stays: ids are never reused, and
        // tick() skips ids that are gone.
        c.held.clear();
        c.held_n = [0; 2];
        if c.verdict == Some(true) {
            done.push(*c);
        }
    }
}

/// [`Tracker::count`] on a connection at hand: `shown` and `counted` are
/// the tracker's.
fn count_in(
    filter: &UserFilter,
    c: &mut Conn,
    state: Option<State>,
    inferred: bool,
    shown: &mut u64,
    counted: &mut (u64, u64),
) {
    match filter.check(c, state) {
        None => c.held_n[usize::from(inferred)] += 1,
        Some(true) => {
            c.verdict = Some(true);
            let [r, i] = std::mem::take(&mut c.held_n);
            let r = u64::from(r) + u64::from(!inferred);
            let i = u64::from(i) + u64::from(inferred);
            *shown += r + i;
            counted.0 += r;
            counted.1 += i;
        }
        Some(false) => {
            if c.verdict.is_none() {
                c.verdict = Some(false);
            }
            c.held_n = [0; 2];
        }
    }
}

/// An event of a connection a listener made and has not handed to
/// accept() yet: its first state changes, a SYN-ACK sent again, a reset
/// of a half-open connection.
fn queued_for_listener(ev: &Event) -> bool {
    match &ev.what {
        What::State { old_state, .. } => matches!(old_state, State::Listen | State::SynRecv),
        What::RetransmitSynack {} => true,
        What::ResetSent { .. } | What::ResetReceived { .. } => ev.state == Some(State::SynRecv),
        _ => false,
    }
}

/// Whether a flags text ("SYN|ACK") has this flag. (Asked several times
/// per packet event: a plain scan, without a `split` iterator.)
pub fn has_flag(flags: &str, name: &str) -> bool {
    let (mut rest, name) = (flags.as_bytes(), name.as_bytes());
    loop {
        let end = rest.iter().position(|&b| b == b'|').unwrap_or(rest.len());
        if &rest[..end] == name {
            return true;
        }
        match rest.get(end + 1..) {
            Some(r) => rest = r,
            None => return false,
        }
    }
}

/// A packet's sequence numbers made relative to the connection's bases
/// (set from the first packet each way, as capture does), and counted.
fn relative(c: &mut Conn, what: &mut What) {
    let What::Packet {
        direction,
        tcp_flags,
        seq,
        ack,
        rel_seq,
        rel_ack,
        sack,
        ..
    } = what
    else {
        return;
    };
    let out = *direction == "out";
    if out {
        c.packets_out += 1;
    } else {
        c.packets_in += 1;
    }
    let (fwd, rev) = if out { (0, 1) } else { (1, 0) };
    let syn = has_flag(tcp_flags, "SYN");
    let ackf = has_flag(tcp_flags, "ACK");
    // A SYN always sets its side's base: the ISN.
    if syn || c.seq_base[fwd].is_none() {
        c.seq_base[fwd] = Some(if syn { *seq } else { seq.wrapping_sub(1) });
    }
    if ackf && c.seq_base[rev].is_none() {
        c.seq_base[rev] = Some(ack.wrapping_sub(1));
    }
    *rel_seq = c.seq_base[fwd].map(|b| seq.wrapping_sub(b));
    *rel_ack = if ackf {
        c.seq_base[rev].map(|b| ack.wrapping_sub(b))
    } else {
        None
    };
    if let Some(b) = c.seq_base[rev] {
        for e in sack.iter_mut() {
            *e = [e[0].wrapping_sub(b), e[1].wrapping_sub(b)];
        }
    }
}

/// Learn from an event, and fill in what the event lacks from what the
/// connection knows.
fn update(c: &mut Conn, ev: &mut Event) {
    c.last_ns = c.last_ns.max(ev.t_ns);
    if c.proto.is_none() {
        c.proto = ev.proto;
    }
    if c.family.is_none() {
        c.family = ev.family;
    }
    // Addresses: a port the kernel already cleared (0) never replaces one
    // we knew. Packets matched by their tuple (drops, resets sent for no
    // socket) speak for the other end or no socket: they teach nothing.
    let foreign = matches!(
        ev.what,
        What::Drop { .. }
            | What::ResetSent {
                no_socket: true,
                ..
            }
    );
    if foreign {
        // nothing to learn or fill
    } else if let Some(l) = nonzero(sockaddr(&ev.local)) {
        match c.local {
            Some(old) if l.port() == 0 && old.port() != 0 => {}
            _ => c.local = Some(l),
        }
    }
    if !foreign
        && let Some(p) = nonzero(sockaddr(&ev.peer))
        && p.port() != 0
    {
        c.peer = Some(p);
    }
    if !foreign {
        let ep = |a: SocketAddr| Endpoint::Inet {
            addr: a.ip(),
            port: a.port(),
        };
        if let Some(l) = c.local {
            ev.local = Some(ep(l));
        }
        if let Some(p) = c.peer {
            ev.peer = Some(ep(p));
        } else if ev.peer.as_ref().is_some_and(|e| e.port() == Some(0)) {
            ev.peer = None;
        }
    }

    // Owner: the best source wins; a task's own syscall always does. A
    // wait or a wakeup names the process but no fd: it teaches nothing.
    let waits = matches!(ev.what, What::Wait { .. } | What::Wake { .. });
    if waits {
    } else if let (Some(pid), Some(via)) = (ev.pid, ev.owner) {
        let better = c.owner.as_ref().is_none_or(|o| rank(via) >= rank(o.via));
        if better {
            c.owner = Some(Owner {
                pid,
                comm: ev.comm.unwrap_or_default(),
                fd: ev.fd,
                via,
            });
        }
    } else if let Some(o) = &c.owner {
        ev.pid = Some(o.pid);
        ev.comm = Some(o.comm);
        ev.fd = o.fd;
        ev.owner = Some(o.via);
    }

    // A destroyed socket's lifetime: from the first state change seen,
    // unless it existed before the trace.
    let t = ev.t_ns;
    if let What::Destroy { duration_us, .. } = &mut ev.what
        && duration_us.is_none()
        && !c.preexisting
        && let Some(b) = c.born_ns
    {
        *duration_us = Some(t.saturating_sub(b) / 1000);
    }
    match &ev.what {
        What::State {
            old_state,
            new_state,
        } => {
            c.born_ns.get_or_insert(ev.t_ns);
            if c.states.is_empty() {
                c.enter(*old_state);
            }
            c.enter(*new_state);
            match (old_state, new_state) {
                (_, State::Listen) => c.role = Role::Listener,
                (State::Listen, State::SynRecv) => c.role = Role::Server,
                (State::Close, State::SynSent) => c.role = Role::Client,
                _ => {}
            }
            if *new_state == State::Close {
                c.end = match (old_state, c.reset_seen) {
                    (State::Listen, _) => End::ListenerClosed,
                    (_, true) if c.resets_received > 0 => End::ResetReceived,
                    (_, true) => End::ResetSent,
                    (State::LastAck, _) => End::Closed,
                    (State::SynSent, _) => End::Failed,
                    (State::FinWait2 | State::Closing, _) => End::TimeWait,
                    _ => End::Gone,
                };
            }
        }
        What::Syscall { syscall, ret, .. } => {
            match *syscall {
                "listen" if *ret == 0 => c.role = Role::Listener,
                "connect" if c.role == Role::Unknown => c.role = Role::Client,
                "accept" | "accept4" if *ret >= 0 => {
                    c.role = Role::Server;
                    // The owner is now the accepting process's new fd.
                    if let Some(o) = c.owner.as_mut() {
                        o.fd = Some(*ret as i32);
                    }
                }
                "close" if *ret == 0 && c.proto != Some(Proto::Tcp) => {
                    c.closed_ns.get_or_insert(ev.t_ns);
                    c.end = End::Gone;
                }
                _ => {}
            }
            if c.states.is_empty()
                && let Some(s) = ev.state
            {
                c.enter(s);
            }
        }
        What::Send { bytes: Some(b), .. } => c.bytes_written += u64::from(*b),
        What::Recv { bytes: Some(b), .. } => c.bytes_read += u64::from(*b),
        What::Retransmit { .. } => c.retransmits += 1,
        What::RetransmitSynack {} => c.synack_retransmits += 1,
        What::Drop { .. } => c.drops += 1,
        What::Packet { .. } => relative(c, &mut ev.what),
        // The kernel may move the socket to CLOSE before it sends or
        // handles the reset (an abortive close sets CLOSE, then sends).
        What::ResetSent { .. } => {
            c.resets_sent += 1;
            c.reset_seen = true;
            if matches!(c.end, End::Gone | End::Open) && c.state == Some(State::Close) {
                c.end = End::ResetSent;
            }
        }
        What::ResetReceived { .. } => {
            c.resets_received += 1;
            c.reset_seen = true;
            if matches!(c.end, End::Gone | End::Open | End::ResetSent)
                && c.state == Some(State::Close)
            {
                c.end = End::ResetReceived;
            }
        }
        What::Destroy { .. } => {
            c.summary = Some(ev.what.clone());
            c.closed_ns.get_or_insert(ev.t_ns);
            if c.end == End::Open {
                c.end = End::Gone;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn ep(s: &str) -> Option<Endpoint> {
        let a: SocketAddr = s.parse().unwrap();
        Some(Endpoint::Inet {
            addr: a.ip(),
            port: a.port(),
        })
    }

    pub fn ev(t_ns: u64, what: What, local: &str, peer: &str) -> Event {
        Event {
            t_ns,
            conn: None,
            what,
            proto: Some(Proto::Tcp),
            family: Some(Family::Inet),
            local: ep(local),
            peer: ep(peer),
            state: None,
            pid: None,
            comm: None,
            fd: None,
            owner: None,
            tid: None,
            sk: 0,
            cookie: None,
            netns: 1,
        }
    }

    /// A destroy with all totals 0.
    pub fn destroyed(duration_us: Option<u64>) -> What {
        What::Destroy {
            duration_us,
            bytes_acked: 0,
            bytes_received: 0,
            bytes_sent: 0,
            bytes_retrans: 0,
            retransmits: 0,
            segs_in: 0,
            segs_out: 0,
            srtt_us: 0,
        }
    }

    pub fn st(t: u64, old: State, new: State, local: &str, peer: &str) -> Event {
        let mut e = ev(
            t,
            What::State {
                old_state: old,
                new_state: new,
            },
            local,
            peer,
        );
        e.state = Some(new);
        e
    }

    pub fn sys(
        t: u64,
        name: &'static str,
        fd: i32,
        ret: i64,
        pid: u32,
        local: &str,
        peer: &str,
    ) -> Event {
        let mut e = ev(
            t,
            What::Syscall {
                syscall: name,
                sys_fd: Some(fd),
                ret,
                errno: None,
                duration_us: 1,
                args: Default::default(),
            },
            local,
            peer,
        );
        e.pid = Some(pid);
        e.comm = Some("ncat".into());
        e.fd = Some(if name == "accept" && ret >= 0 {
            ret as i32
        } else {
            fd
        });
        e.owner = Some("task");
        e
    }

    /// A segment at a device, local end first.
    #[allow(clippy::too_many_arguments)]
    pub fn pkt(
        t: u64,
        dir: &'static str,
        flags: &'static str,
        seq: u32,
        ack: u32,
        len: u32,
        local: &str,
        peer: &str,
    ) -> Event {
        ev(
            t,
            What::Packet {
                direction: dir,
                tcp_flags: flags,
                seq,
                ack,
                rel_seq: None,
                rel_ack: None,
                len,
                window: 512,
                mss: None,
                wscale: None,
                sack_permitted: false,
                sack: vec![[ack.wrapping_add(10), ack.wrapping_add(20)]],
                ts_val: None,
                ts_ecr: None,
                ifindex: 1,
                cpu: 0,
                softirq: dir == "in",
            },
            local,
            peer,
        )
    }

    #[test]
    fn packets_join_their_connection_with_relative_numbers() {
        // The seed's server side: the SYN and SYN-ACK come before any
        // socket event of the server's connection, and land on the
        // connection the kernel's new socket then continues.
        let mut t = Tracker::new(UserFilter::default(), true);
        let (mut out, mut done) = (Vec::new(), Vec::new());
        let (srv, cli) = ("127.0.0.1:5000", "127.0.0.1:40312");
        let mut push = |e: Event, sk: u64| {
            out.clear();
            t.push(e, sk, &mut out, &mut done);
            out.last().cloned().expect("shown")
        };
        let listener = push(sys(1, "listen", 3, 0, 7, srv, "0.0.0.0:0"), 0x10).conn;
        let (isn_c, isn_s) = (1_000_000u32, u32::MAX - 2);
        let syn = push(pkt(2, "in", "SYN", isn_c, 0, 0, srv, cli), 0);
        let conn = syn.conn;
        assert!(conn.is_some() && conn != listener, "{syn:?}");
        assert_eq!((syn.pid, syn.owner), (Some(7), Some("listener")));
        let synack = push(pkt(3, "out", "SYN|ACK", isn_s, isn_c + 1, 0, srv, cli), 0);
        let ack = push(
            pkt(
                4,
                "in",
                "ACK",
                isn_c + 1,
                isn_s.wrapping_add(1),
                0,
                srv,
                cli,
            ),
            0,
        );
        let born = push(st(5, State::Listen, State::SynRecv, srv, cli), 0x20);
        assert_eq!([synack.conn, ack.conn, born.conn], [conn; 3]);
        let data = push(
            pkt(
                6,
                "out",
                "ACK|PSH",
                isn_s.wrapping_add(1),
                isn_c + 1,
                6,
                srv,
                cli,
            ),
            0x20,
        );
        let rst = push(
            pkt(
                7,
                "in",
                "ACK|RST",
                isn_c + 1,
                isn_s.wrapping_add(7),
                0,
                srv,
                cli,
            ),
            0,
        );
        let rel = |e: &Event| match &e.what {
            What::Packet {
                rel_seq,
                rel_ack,
                sack,
                ..
            } => (*rel_seq, *rel_ack, sack[0]),
            _ => panic!("not a packet"),
        };
        // SACK edges are in the acknowledged side's numbers: absolute
        // until its base is known.
        assert_eq!(rel(&syn), (Some(0), None, [10, 20]));
        assert_eq!((rel(&synack).0, rel(&synack).1), (Some(0), Some(1)));
        assert_eq!((rel(&ack).0, rel(&ack).1), (Some(1), Some(1)));
        assert_eq!((rel(&data).0, rel(&data).1), (Some(1), Some(1)), "wraps");
        assert_eq!(rel(&rst), (Some(1), Some(7), [17, 27]));
        assert_eq!(rst.conn, conn);
        // The client's SYN leaves before connect() has told its port: it
        // finds the connection by its peer.
        let c = push(
            st(8, State::Close, State::SynSent, "127.0.0.1:0", srv),
            0x30,
        );
        let out_syn = push(pkt(9, "out", "SYN", 5, 0, 0, "127.0.0.1:40400", srv), 0x30);
        assert_eq!(out_syn.conn, c.conn);
        // A packet of no known connection stands alone.
        let lone = push(
            pkt(10, "in", "ACK", 1, 1, 0, "127.0.0.1:9", "127.0.0.1:10"),
            0,
        );
        assert_eq!(lone.conn, None);
        let mut all = Vec::new();
        t.finish(&mut all);
        let c = all
            .iter()
            .find(|c| Some(c.id) == conn)
            .expect("server conn");
        assert_eq!((c.packets_in, c.packets_out, c.role), (3, 2, Role::Server));
        assert_eq!(c.sk, 0x20);
    }

    #[test]
    fn queued_connections_belong_to_their_listener_until_accept() {
        // Two listeners on port 5000 (IPv4 and a v6only IPv6 one, two
        // processes); the kernel says nothing about owners. Each queued
        // connection goes to the listener of its family; when that one
        // closes, to the other; accept() then names the fd.
        let mut t = Tracker::new(UserFilter::default(), false);
        let (mut out, mut done) = (Vec::new(), Vec::new());
        let (l4, l6) = ("127.0.0.1:5000", "[::1]:5000");
        let mut push = |e: Event, sk: u64| {
            out.clear();
            t.push(e, sk, &mut out, &mut done);
            out.last().map(|e| (e.pid, e.fd, e.owner))
        };
        push(sys(1, "listen", 3, 0, 7, l4, "0.0.0.0:0"), 0x10);
        push(sys(2, "listen", 4, 0, 8, l6, "[::]:0"), 0x11);
        let syn = |t, l, p| st(t, State::Listen, State::SynRecv, l, p);
        let queued = |pid, fd| Some((Some(pid), Some(fd), Some("listener")));
        assert_eq!(push(syn(3, l4, "127.0.0.1:40000"), 0x20), queued(7, 3));
        assert_eq!(push(syn(4, l6, "[::1]:40100"), 0x21), queued(8, 4));
        // the IPv6 listener closes: only its entry goes
        push(st(5, State::Listen, State::Close, l6, "[::]:0"), 0x11);
        assert_eq!(push(syn(6, l6, "[::1]:40101"), 0x22), queued(7, 3));
        let p = "127.0.0.1:40001";
        assert_eq!(push(syn(7, l4, p), 0x23), queued(7, 3));
        let est = st(8, State::SynRecv, State::Established, l4, p);
        assert_eq!(push(est, 0x23), queued(7, 3));
        assert_eq!(
            push(sys(9, "accept", 3, 9, 7, l4, p), 0x23),
            Some((Some(7), Some(9), Some("task")))
        );
        // and the last listener closing leaves none
        push(st(10, State::Listen, State::Close, l4, "0.0.0.0:0"), 0x10);
        assert_eq!(
            push(syn(11, l4, "127.0.0.1:40002"), 0x24),
            Some((None, None, None))
        );
    }

    #[test]
    fn lifetime_is_timed_from_the_first_state_change() {
        let mut t = Tracker::new(UserFilter::default(), false);
        let (mut out, mut done) = (Vec::new(), Vec::new());
        let (l, p) = ("127.0.0.1:40000", "127.0.0.1:80");
        t.push(
            st(1_000_000, State::Close, State::SynSent, l, p),
            0x30,
            &mut out,
            &mut done,
        );
        t.push(
            st(2_000_000, State::SynSent, State::Established, l, p),
            0x30,
            &mut out,
            &mut done,
        );
        t.push(
            ev(9_000_000, destroyed(None), l, p),
            0x30,
            &mut out,
            &mut done,
        );
        let d = out.last().expect("destroy shown");
        assert!(
            matches!(
                d.what,
                What::Destroy {
                    duration_us: Some(8000),
                    ..
                }
            ),
            "{d:?}"
        );
    }

    #[test]
    fn server_connection_is_attributed_and_ends_by_reset() {
        let mut t = Tracker::new(UserFilter::default(), true);
        let (mut out, mut done) = (Vec::new(), Vec::new());
        let l = "127.0.0.1:5000";
        let p = "127.0.0.1:40312";
        t.push(
            sys(1, "listen", 3, 0, 7, l, "0.0.0.0:0"),
            0x10,
            &mut out,
            &mut done,
        );
        let mut syn = st(2, State::Listen, State::SynRecv, l, p);
        syn.pid = Some(7);
        syn.comm = Some("ncat".into());
        syn.fd = Some(3);
        syn.owner = Some("listener");
        t.push(syn, 0x20, &mut out, &mut done);
        // no owner from the kernel this time: the connection's is used
        t.push(
            st(3, State::SynRecv, State::Established, l, p),
            0x20,
            &mut out,
            &mut done,
        );
        t.push(sys(4, "accept", 3, 4, 7, l, p), 0x20, &mut out, &mut done);
        t.push(
            ev(5, What::ResetReceived { meaning: "x" }, l, p),
            0x20,
            &mut out,
            &mut done,
        );
        // the kernel cleared nothing here, but a 0 port must not win
        t.push(
            st(6, State::Established, State::Close, "127.0.0.1:0", p),
            0x20,
            &mut out,
            &mut done,
        );
        t.push(sys(7, "close", 4, 0, 7, l, p), 0x20, &mut out, &mut done);
        assert_eq!(out.len(), 7);
        assert_eq!(out[2].pid, Some(7), "owner filled from the connection");
        assert_eq!(out[2].fd, Some(3), "listener's fd before accept");
        assert_eq!(out[2].owner, Some("listener"));
        assert_eq!(out[5].local, ep(l), "known port kept");
        assert!(out[1..].iter().all(|e| e.conn == Some(2)));
        assert_eq!(out[0].conn, Some(1));
        let mut d = Vec::new();
        t.finish(&mut d);
        let c = d.iter().find(|c| c.id == 2).unwrap();
        assert_eq!(c.role, Role::Server);
        assert_eq!(c.end, End::ResetReceived);
        assert_eq!(c.owner.as_ref().map(|o| (o.pid, o.fd)), Some((7, Some(4))));
        assert_eq!(
            c.states,
            vec![
                State::Listen,
                State::SynRecv,
                State::Established,
                State::Close
            ]
        );
        assert_eq!(c.events.len(), 6);
    }

    #[test]
    fn time_wait_is_inferred_and_checked() {
        let mut t = Tracker::new(UserFilter::default(), false);
        let (mut out, mut done) = (Vec::new(), Vec::new());
        let l = "127.0.0.1:40000";
        let p = "127.0.0.1:5000";
        t.push(
            st(1, State::Close, State::SynSent, "127.0.0.1:0", p),
            9,
            &mut out,
            &mut done,
        );
        t.push(
            st(2, State::SynSent, State::Established, l, p),
            9,
            &mut out,
            &mut done,
        );
        t.push(
            st(3, State::Established, State::FinWait1, l, p),
            9,
            &mut out,
            &mut done,
        );
        t.push(
            st(4, State::FinWait1, State::FinWait2, l, p),
            9,
            &mut out,
            &mut done,
        );
        t.push(
            st(5, State::FinWait2, State::Close, "127.0.0.1:0", p),
            9,
            &mut out,
            &mut done,
        );
        assert_eq!(out.len(), 6);
        assert_eq!(
            out[5].what,
            What::TimeWait {
                from_state: State::FinWait2
            }
        );
        assert_eq!(out[5].local, ep(l));
        let checks = t.take_tw_checks();
        assert_eq!(
            checks,
            vec![TwCheck {
                conn: 1,
                netns: 1,
                local: l.parse().unwrap(),
                peer: p.parse().unwrap()
            }]
        );
        t.tw_result(1, Some(State::TimeWait), 6, &mut out);
        assert_eq!(
            out[6].what,
            What::TimeWaitCheck {
                found: true,
                table_state: Some(State::TimeWait)
            }
        );
        t.finish(&mut done);
        let c = &done[0];
        assert_eq!(c.end, End::TimeWait);
        assert_eq!(c.role, Role::Client);
        assert_eq!(
            c.states,
            vec![
                State::Close,
                State::SynSent,
                State::Established,
                State::FinWait1,
                State::FinWait2,
                State::TimeWait,
                State::Close
            ]
        );
    }

    /// Events of a few connections, with the socket address each comes
    /// from: a listener and the connection it queues, a client that ends
    /// in TIME-WAIT, a socket held until its port is known, one on another
    /// port, a socket address reused, a packet of no connection.
    fn mixed_script() -> Vec<(Event, u64)> {
        let (srv, cli, other) = ("127.0.0.1:5000", "127.0.0.1:40000", "127.0.0.1:6000");
        let any = "0.0.0.0:0";
        let mut v = vec![
            (sys(1, "socket", -1, 3, 7, any, any), 0x10),
            (sys(2, "bind", 3, 0, 7, srv, any), 0x10),
            (st(3, State::Close, State::Listen, srv, any), 0x10),
            (sys(4, "listen", 3, 0, 7, srv, any), 0x10),
            (sys(5, "socket", -1, 4, 8, any, any), 0x20),
            (
                st(6, State::Close, State::SynSent, "127.0.0.1:0", srv),
                0x20,
            ),
            (pkt(7, "out", "SYN", 100, 0, 0, cli, srv), 0x20),
            (pkt(8, "in", "SYN", 100, 0, 0, srv, cli), 0),
            (st(9, State::Listen, State::SynRecv, srv, cli), 0x30),
            (st(10, State::SynSent, State::Established, cli, srv), 0x20),
            (st(11, State::SynRecv, State::Established, srv, cli), 0x30),
            (sys(12, "accept", 3, 5, 7, srv, cli), 0x30),
            (sys(13, "close", 4, 0, 8, cli, srv), 0x20),
            (st(14, State::Established, State::FinWait1, cli, srv), 0x20),
            (st(15, State::Established, State::CloseWait, srv, cli), 0x30),
            (st(16, State::FinWait1, State::FinWait2, cli, srv), 0x20),
            (st(17, State::CloseWait, State::LastAck, srv, cli), 0x30),
            (
                st(18, State::FinWait2, State::Close, "127.0.0.1:0", srv),
                0x20,
            ),
            (st(19, State::LastAck, State::Close, srv, cli), 0x30),
            (ev(20, destroyed(None), srv, cli), 0x30),
            (ev(21, destroyed(None), cli, srv), 0x20),
            // held until bind, then another port
            (sys(22, "socket", -1, 6, 9, any, any), 0x40),
            (sys(23, "bind", 6, 0, 9, other, any), 0x40),
            (st(24, State::Close, State::Listen, other, any), 0x40),
            // the client's socket address reused by a new socket
            (sys(400_000_000, "socket", -1, 4, 8, any, any), 0x20),
            (
                st(
                    400_000_001,
                    State::Close,
                    State::SynSent,
                    "127.0.0.1:0",
                    srv,
                ),
                0x20,
            ),
            (
                pkt(
                    400_000_002,
                    "in",
                    "ACK",
                    1,
                    1,
                    0,
                    "127.0.0.1:7",
                    "127.0.0.1:8",
                ),
                0,
            ),
            (sys(400_000_003, "socket", -1, 10, 9, any, any), 0x50),
        ];
        for (e, sk) in &mut v {
            e.sk = *sk;
        }
        v
    }

    /// A tracker that only counts joins the same connections, with the
    /// same rows, and counts what the other hands over, filtered or not.
    #[test]
    fn counting_only_joins_the_same_connections() {
        let filters = [
            UserFilter::default(),
            UserFilter {
                ports: vec![5000],
                ..Default::default()
            },
            UserFilter {
                ports: vec![6000],
                ..Default::default()
            },
            UserFilter {
                expr: Some(sockscope::query::parse(&["state".into(), "time-wait".into()]).unwrap()),
                ..Default::default()
            },
        ];
        for f in filters {
            let mut full = Tracker::new(f.clone(), false);
            let mut lean = Tracker::new(f.clone(), false);
            lean.count_only();
            let (mut out, mut lean_out) = (Vec::new(), Vec::new());
            let (mut done, mut lean_done) = (Vec::new(), Vec::new());
            let mut counted = (0, 0);
            for (e, sk) in mixed_script() {
                let t = e.t_ns;
                full.push(e.clone(), sk, &mut out, &mut done);
                lean.push(e, sk, &mut lean_out, &mut lean_done);
                for (a, b, d) in [
                    (&mut full, &mut out, &mut done),
                    (&mut lean, &mut lean_out, &mut lean_done),
                ] {
                    for ch in a.take_tw_checks() {
                        a.tw_result(ch.conn, Some(State::TimeWait), t, b);
                    }
                    a.tick(t, d);
                }
                let c = lean.take_counted();
                counted = (counted.0 + c.0, counted.1 + c.1);
            }
            full.finish(&mut done);
            lean.finish(&mut lean_done);
            assert!(lean_out.is_empty(), "{f:?}: {lean_out:?}");
            let inferred = out.iter().filter(|e| e.inferred()).count() as u64;
            assert_eq!(counted, (out.len() as u64 - inferred, inferred), "{f:?}");
            assert_eq!((full.seen, full.shown), (lean.seen, lean.shown), "{f:?}");
            assert!(!done.is_empty() && counted.0 > 0, "{f:?}: nothing passed");
            let json = |d: &[Conn]| serde_json::to_value(d).unwrap();
            assert_eq!(json(&done), json(&lean_done), "{f:?}");
        }
    }

    #[test]
    fn held_until_the_port_is_known_then_filtered() {
        let f = UserFilter {
            ports: vec![5000],
            ..Default::default()
        };
        let mut t = Tracker::new(f, false);
        let (mut out, mut done) = (Vec::new(), Vec::new());
        // socket() on two sockets: nothing known yet
        t.push(
            sys(1, "socket", -1, 3, 7, "0.0.0.0:0", "0.0.0.0:0"),
            1,
            &mut out,
            &mut done,
        );
        t.push(
            sys(2, "socket", -1, 4, 7, "0.0.0.0:0", "0.0.0.0:0"),
            2,
            &mut out,
            &mut done,
        );
        assert!(out.is_empty());
        // one binds 5000, the other 6000
        t.push(
            sys(3, "bind", 3, 0, 7, "127.0.0.1:5000", "0.0.0.0:0"),
            1,
            &mut out,
            &mut done,
        );
        t.push(
            sys(4, "bind", 4, 0, 7, "127.0.0.1:6000", "0.0.0.0:0"),
            2,
            &mut out,
            &mut done,
        );
        let kinds: Vec<(u64, Option<u64>)> = out.iter().map(|e| (e.t_ns, e.conn)).collect();
        assert_eq!(
            kinds,
            vec![(1, Some(1)), (3, Some(1))],
            "socket() released with bind()"
        );
        assert_eq!(t.shown, 2);
        assert_eq!(t.seen, 4);
    }

    #[test]
    fn synack_retransmits_join_the_connection_and_drops_find_theirs() {
        let mut t = Tracker::new(UserFilter::default(), true);
        let (mut out, mut done) = (Vec::new(), Vec::new());
        let l = "127.0.0.1:5000";
        let p = "127.0.0.1:40312";
        t.push(
            ev(1, What::RetransmitSynack {}, l, p),
            0x99,
            &mut out,
            &mut done,
        );
        t.push(
            st(2, State::Listen, State::SynRecv, l, p),
            0x20,
            &mut out,
            &mut done,
        );
        assert_eq!(out[0].conn, out[1].conn);
        let mut d = ev(
            3,
            What::Drop {
                reason: "NETFILTER_DROP".into(),
                reason_code: 12,
                bytes: 0,
                tcp_flags: "ACK",
                from: ep(p),
                to: ep(l),
                direction: None,
            },
            "0.0.0.0:0",
            "0.0.0.0:0",
        );
        d.local = None;
        d.peer = None;
        t.push(d, 0, &mut out, &mut done);
        assert_eq!(out[2].conn, out[0].conn);
        match &out[2].what {
            What::Drop { direction, .. } => assert_eq!(*direction, Some("in")),
            w => panic!("{w:?}"),
        }
        // a packet of no connection
        let mut d2 = out[2].clone();
        if let What::Drop { from, to, .. } = &mut d2.what {
            *from = ep("10.0.0.1:1");
            *to = ep("10.0.0.2:2");
        }
        d2.conn = None;
        t.push(d2, 0, &mut out, &mut done);
        assert_eq!(out[3].conn, None);
    }

    #[test]
    fn reused_address_starts_a_new_connection() {
        let mut t = Tracker::new(UserFilter::default(), false);
        let (mut out, mut done) = (Vec::new(), Vec::new());
        let mut d = ev(2, destroyed(Some(1)), "127.0.0.1:1", "127.0.0.1:2");
        t.push(
            st(
                1,
                State::Close,
                State::SynSent,
                "127.0.0.1:1",
                "127.0.0.1:2",
            ),
            5,
            &mut out,
            &mut done,
        );
        d.state = Some(State::Close);
        t.push(d, 5, &mut out, &mut done);
        // a trailing close() still belongs to it
        t.push(
            sys(3, "close", 3, 0, 1, "127.0.0.1:1", "127.0.0.1:2"),
            5,
            &mut out,
            &mut done,
        );
        assert_eq!(out[2].conn, Some(1));
        // the same address, a new socket
        t.push(
            sys(4, "socket", -1, 3, 1, "0.0.0.0:0", "0.0.0.0:0"),
            5,
            &mut out,
            &mut done,
        );
        assert_eq!(out[3].conn, Some(2));
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].id, 1);
        // grace period
        let mut d2 = Vec::new();
        t.tick(GRACE_NS, &mut d2);
        assert!(d2.is_empty());
    }

    #[test]
    fn a_refusal_before_connect_returns_finds_the_client() {
        let mut t = Tracker::new(UserFilter::default(), false);
        let (mut out, mut done) = (Vec::new(), Vec::new());
        // SYN-SENT is reported before the kernel picks the local port.
        t.push(
            st(
                1,
                State::Close,
                State::SynSent,
                "127.0.0.1:0",
                "127.0.0.1:5040",
            ),
            7,
            &mut out,
            &mut done,
        );
        let mut rst = ev(
            2,
            What::ResetSent {
                reason: "NO_SOCKET".into(),
                reason_code: 1,
                no_socket: true,
            },
            "127.0.0.1:5040",
            "127.0.0.1:41000",
        );
        rst.state = None;
        t.push(rst, 0, &mut out, &mut done);
        assert_eq!(
            out[1].conn,
            Some(1),
            "the reset belongs to the connecting client"
        );
        // once the port is known, the full tuple is used
        t.push(
            st(
                3,
                State::SynSent,
                State::Close,
                "127.0.0.1:41000",
                "127.0.0.1:5040",
            ),
            7,
            &mut out,
            &mut done,
        );
        assert!(t.unbound.is_empty());
        assert_eq!(t.tuples.len(), 1);
    }

    #[test]
    fn held_sockets_that_stay_silent_are_dropped() {
        let f = UserFilter {
            ports: vec![5000],
            ..Default::default()
        };
        let mut t = Tracker::new(f, false);
        let (mut out, mut done) = (Vec::new(), Vec::new());
        t.push(
            sys(1, "socket", -1, 3, 7, "0.0.0.0:0", "0.0.0.0:0"),
            1,
            &mut out,
            &mut done,
        );
        t.tick(HELD_IDLE_NS, &mut done);
        assert_eq!(t.open().count(), 1, "not yet");
        t.tick(HELD_IDLE_NS + 2_000_000_000, &mut done);
        assert_eq!(t.open().count(), 0);
        assert!(done.is_empty() && out.is_empty(), "never shown");
    }

    #[test]
    fn flags_are_whole_names() {
        assert!(has_flag("SYN|ACK", "SYN") && has_flag("SYN|ACK", "ACK"));
        assert!(has_flag("ACK", "ACK") && has_flag("FIN|ACK|PSH", "PSH"));
        assert!(!has_flag("SYN|ACK", "SY") && !has_flag("SYN|ACK", "CK"));
        assert!(!has_flag("", "ACK") && !has_flag("SYN|", "ACK") && !has_flag("ACK", ""));
        assert!(
            has_flag("SYN|", "") && has_flag("", ""),
            "as split('|') would say"
        );
    }

    #[test]
    fn prefixes() {
        let n = ("10.1.0.0".parse().unwrap(), 16);
        assert!(in_prefix("10.1.2.3".parse().unwrap(), n));
        assert!(in_prefix("::ffff:10.1.2.3".parse().unwrap(), n));
        assert!(!in_prefix("10.2.0.1".parse().unwrap(), n));
        assert!(in_prefix(
            "::1".parse().unwrap(),
            ("::1".parse().unwrap(), 128)
        ));
    }
}
