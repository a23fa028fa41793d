//! What a live view (`sockscope top`) needs beyond one snapshot: rates
//! computed from successive snapshots, independent of any terminal.
//!
//! - per connection: bytes/s in and out and retransmits/s from the deltas of
//!   `tcp_info` counters (bytes_received, bytes_acked, total_retrans) between
//!   two refreshes, keyed by the socket cookie (inode or 4-tuple when the
//!   source has no cookie) and namespace;
//! - which rows are new in this refresh, and rows that closed, kept for a few
//!   seconds so a reader sees them go;
//! - per process: sockets by state, connections opened/closed per second,
//!   bytes/s;
//! - per listener: connections accepted per second (new children);
//! - per namespace: counters per second (ListenOverflows, ListenDrops, ...).
//!
//! Everything here is pure: the caller passes the sockets it read and the
//! time it read them, so the arithmetic is testable on fixtures.

use crate::explain::ListenerHealth;
use crate::model::{Endpoint, Netns, Socket, State};
use crate::source::counters::Counters;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// Identity of a socket across refreshes: (namespace inode, cookie).
pub type Key = (u64, u64);

/// A hasher for [`Key`]s: cookies are already unique numbers, so a
/// multiply-and-rotate mix is enough and much cheaper than SipHash over
/// tens of thousands of sockets per refresh.
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<KeyHasher>>;
/// A set of keys hashed with [`KeyHasher`].
pub type KeySet = HashSet<Key, std::hash::BuildHasherDefault<KeyHasher>>;

/// The identity of `s`: its cookie when the source gave one, otherwise a
/// hash of protocol, endpoints and inode.
pub fn key_of(s: &Socket) -> Key {
    let ns = s.netns.as_ref().map_or(0, |n| n.inode);
    let id = match s.cookie {
        Some(c) => c,
        None => {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (s.proto, &s.local, &s.peer, s.inode).hash(&mut h);
            // Keep clear of real cookies (which count up from 1).
            h.finish() | (1 << 63)
        }
    };
    (ns, id)
}

/// Where a row stands in this refresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowStatus {
    /// First seen in this refresh.
    New,
    /// Seen before and still there.
    Open,
    /// Gone from the kernel's table; kept for a few seconds.
    Closed,
}

/// Rates and status of one row; `None` where the kernel gives no counter
/// (no tcp_info, first sight of the socket).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RowInfo {
    pub status: RowStatus,
    /// Bytes received per second (tcp_info bytes_received).
    pub in_bytes_per_s: Option<f64>,
    /// Bytes sent and acknowledged per second (tcp_info bytes_acked).
    pub out_bytes_per_s: Option<f64>,
    /// Retransmitted segments per second (tcp_info total_retrans).
    pub retrans_per_s: Option<f64>,
    /// Smoothed round-trip time.
    pub rtt_us: Option<u32>,
    /// Seconds since the row closed (closed rows only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_s_ago: Option<f64>,
}

/// One refresh: sockets (open ones first, then the recently closed) and,
/// index for index, their rates.
#[derive(Debug, Default)]
pub struct Frame {
    pub sockets: Vec<Socket>,
    pub info: Vec<RowInfo>,
    /// Seconds since the previous refresh (`None` on the first).
    pub interval_s: Option<f64>,
    /// Rows that appeared / disappeared in this refresh.
    pub opened: usize,
    pub closed: usize,
    /// Keys of the rows that are new in this refresh.
    pub new_keys: KeySet,
}

#[derive(Clone, Copy, Debug)]
struct Counts {
    bytes_in: Option<u64>,
    bytes_out: Option<u64>,
    retrans: Option<u64>,
    /// Row of the socket in the frame these counts come from.
    row: usize,
}

fn counts(s: &Socket) -> Counts {
    match &s.tcp_info {
        Some(i) => Counts {
            bytes_in: i.bytes_received,
            bytes_out: i.bytes_acked,
            retrans: Some(u64::from(i.total_retrans)),
            row: 0,
        },
        None => Counts {
            bytes_in: None,
            bytes_out: None,
            retrans: None,
            row: 0,
        },
    }
}

fn rate(now: Option<u64>, before: Option<u64>, dt: f64) -> Option<f64> {
    // A counter that went backwards is a different socket under a reused
    // identity: no rate rather than a negative one.
    match (now, before) {
        (Some(n), Some(b)) if n >= b && dt > 0.0 => Some((n - b) as f64 / dt),
        _ => None,
    }
}

/// Keeps what the next refresh needs: the counters of each open socket and
/// the rows that closed recently.
#[derive(Debug)]
pub struct Tracker {
    prev: FastMap<Key, Counts>,
    closed: Vec<(Socket, RowInfo, f64)>,
    last_s: Option<f64>,
    /// How long closed rows stay (seconds).
    pub keep_closed_s: f64,
    /// Drop tcp_info from the rows once the rates are taken (saves memory
    /// on large hosts; the detail view reads the socket afresh).
    pub strip_tcp_info: bool,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker::new(3.0)
    }
}

impl Tracker {
    pub fn new(keep_closed_s: f64) -> Tracker {
        Tracker {
            prev: FastMap::default(),
            closed: Vec::new(),
            last_s: None,
            keep_closed_s,
            strip_tcp_info: false,
        }
    }

    /// Fold the sockets read at `now_s` (any monotonic clock, seconds) into
    /// a new frame, replacing `frame` (whose open rows become this refresh's
    /// closed rows when they are gone).
    pub fn update(&mut self, frame: &mut Frame, sockets: Vec<Socket>, now_s: f64) {
        self.update_owned(frame, sockets, now_s, false, |_| {});
    }

    /// [`Tracker::update`] for sockets read without owners: with `carry`,
    /// a socket seen in the previous frame takes its owners from there (a
    /// move, no copy) and `fill` gives owners to the others; without it,
    /// `fill` is called for every socket.
    pub fn update_owned(
        &mut self,
        frame: &mut Frame,
        sockets: Vec<Socket>,
        now_s: f64,
        carry: bool,
        fill: impl Fn(&mut Socket),
    ) {
        let mut f = self.begin(frame, now_s, carry, sockets.len());
        for s in sockets {
            f.push(s, &fill);
        }
        f.finish();
    }

    /// Start folding the sockets read at `now_s` into `frame` one at a
    /// time, as a dump hands them over ([`Fold::push`], then
    /// [`Fold::finish`]); `carry` as in [`Tracker::update_owned`]. Only the
    /// rows are kept: a socket's tcp_info is dropped as soon as its rates
    /// are taken when `strip_tcp_info` is set. `expect` sizes the new
    /// frame (0: as large as the last one).
    pub fn begin<'a>(
        &'a mut self,
        frame: &'a mut Frame,
        now_s: f64,
        carry: bool,
        expect: usize,
    ) -> Fold<'a> {
        let old_sockets = std::mem::take(&mut frame.sockets);
        let old_info = std::mem::take(&mut frame.info);
        let cap = if expect > 0 {
            expect
        } else {
            let open = old_info
                .iter()
                .filter(|i| i.status != RowStatus::Closed)
                .count();
            open + open / 16 + 16
        };
        Fold {
            dt: self.last_s.map(|l| now_s - l),
            first: self.last_s.is_none(),
            now_s,
            carry,
            next: FastMap::with_capacity_and_hasher(cap, Default::default()),
            sockets: Vec::with_capacity(cap),
            info: Vec::with_capacity(cap),
            new_keys: KeySet::default(),
            old_sockets,
            old_info,
            tracker: self,
            frame,
        }
    }
}

/// A refresh being folded: see [`Tracker::begin`].
pub struct Fold<'a> {
    tracker: &'a mut Tracker,
    frame: &'a mut Frame,
    old_sockets: Vec<Socket>,
    old_info: Vec<RowInfo>,
    sockets: Vec<Socket>,
    info: Vec<RowInfo>,
    next: FastMap<Key, Counts>,
    new_keys: KeySet,
    dt: Option<f64>,
    first: bool,
    now_s: f64,
    carry: bool,
}

impl Fold<'_> {
    /// Fold one socket; `fill` gives it owners unless carried over.
    pub fn push(&mut self, mut s: Socket, fill: impl FnOnce(&mut Socket)) {
        let k = key_of(&s);
        let mut c = counts(&s);
        c.row = self.sockets.len();
        let before = self.tracker.prev.get(&k);
        match before.and_then(|b| self.old_sockets.get_mut(b.row)) {
            Some(old) if self.carry && key_of(old) == k => {
                s.owners = std::mem::take(&mut old.owners);
            }
            _ => fill(&mut s),
        }
        let status = if before.is_some() || self.first {
            RowStatus::Open
        } else {
            self.new_keys.insert(k);
            RowStatus::New
        };
        let d = self.dt.unwrap_or(0.0);
        let (i, o, r) = match before {
            Some(b) => (
                rate(c.bytes_in, b.bytes_in, d),
                rate(c.bytes_out, b.bytes_out, d),
                rate(c.retrans, b.retrans, d),
            ),
            None => (None, None, None),
        };
        self.info.push(RowInfo {
            status,
            in_bytes_per_s: i,
            out_bytes_per_s: o,
            retrans_per_s: r,
            // A listener or a socket that never exchanged data has no rtt
            // (the kernel reports 0).
            rtt_us: s.tcp_info.as_ref().map(|t| t.rtt_us).filter(|r| *r > 0),
            closed_s_ago: None,
        });
        self.next.insert(k, c);
        if self.tracker.strip_tcp_info {
            s.tcp_info = None;
        }
        self.sockets.push(s);
    }

    /// Rows folded so far.
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// The new frame: the folded rows, then the rows that closed.
    pub fn finish(self) {
        let Fold {
            tracker,
            frame,
            old_sockets,
            old_info,
            mut sockets,
            mut info,
            next,
            new_keys,
            dt,
            now_s,
            ..
        } = self;
        // Rows of the previous frame that are gone now.
        let mut closed_now = 0;
        for (s, mut i) in old_sockets.into_iter().zip(old_info) {
            if i.status == RowStatus::Closed {
                continue; // already in tracker.closed
            }
            if !next.contains_key(&key_of(&s)) {
                closed_now += 1;
                i.status = RowStatus::Closed;
                i.in_bytes_per_s = None;
                i.out_bytes_per_s = None;
                i.retrans_per_s = None;
                tracker.closed.push((s, i, now_s));
            }
        }
        let keep = tracker.keep_closed_s;
        tracker.closed.retain(|(_, _, t)| now_s - t < keep);
        for (s, i, t) in &tracker.closed {
            let mut i = i.clone();
            i.closed_s_ago = Some(now_s - t);
            sockets.push(s.clone());
            info.push(i);
        }
        tracker.prev = next;
        tracker.last_s = Some(now_s);
        *frame = Frame {
            sockets,
            info,
            interval_s: dt,
            opened: new_keys.len(),
            closed: closed_now,
            new_keys,
        };
    }
}

/// Owners kept between refreshes: the fd tables are walked again only when
/// a socket appears whose inode the last walk did not see, or when the last
/// walk is older than `max_age_s` (an fd passed to another process, or a
/// fork, changes owners without changing the socket table).
#[derive(Debug)]
pub struct OwnerCache {
    scan: Option<crate::model::OwnerScan>,
    known: HashSet<u64, std::hash::BuildHasherDefault<KeyHasher>>,
    last_s: f64,
    pub max_age_s: f64,
}

impl OwnerCache {
    pub fn new(max_age_s: f64) -> OwnerCache {
        OwnerCache {
            scan: None,
            known: HashSet::default(),
            last_s: 0.0,
            max_age_s,
        }
    }

    /// Must the fd tables be walked for `sockets`, read at `now_s`?
    pub fn needs_scan(&self, sockets: &[Socket], now_s: f64) -> bool {
        self.scan.is_none()
            || now_s - self.last_s >= self.max_age_s
            || sockets
                .iter()
                .any(|s| s.inode != 0 && !self.known.contains(&s.inode))
    }

    /// Keep a fresh walk, done for `sockets` at `now_s`.
    pub fn store(&mut self, scan: crate::model::OwnerScan, sockets: &[Socket], now_s: f64) {
        self.known = sockets
            .iter()
            .map(|s| s.inode)
            .filter(|i| *i != 0)
            .collect();
        self.scan = Some(scan);
        self.last_s = now_s;
    }

    /// Is the last walk older than `max_age_s` (or missing)? Then walk
    /// again before the next socket dump, while memory is low.
    pub fn is_old(&self, now_s: f64) -> bool {
        self.scan.is_none() || now_s - self.last_s >= self.max_age_s
    }

    /// Keep a fresh walk made before the dump: the inodes already known
    /// stay known (a socket new since then still triggers a walk).
    pub fn replace(&mut self, scan: crate::model::OwnerScan, now_s: f64) {
        self.scan = Some(scan);
        self.last_s = now_s;
    }

    /// Count the inodes of `sockets` as seen by the last walk.
    pub fn store_known(&mut self, sockets: &[Socket]) {
        self.known
            .extend(sockets.iter().map(|s| s.inode).filter(|i| *i != 0));
    }

    /// Did the last walk see socket `inode` (or is it 0: no file)?
    pub fn knows(&self, inode: u64) -> bool {
        inode == 0 || self.known.contains(&inode)
    }

    /// After a walk: give the open rows of `frame` the owners the walk
    /// found, touching only rows whose owners changed (no allocation for
    /// the others). Closed rows keep their last owners.
    pub fn refresh_owners(&self, frame: &mut Frame) {
        let Some(scan) = &self.scan else { return };
        for (s, i) in frame.sockets.iter_mut().zip(&frame.info) {
            if i.status == RowStatus::Closed || s.inode == 0 {
                continue;
            }
            let mut now = scan.owner_refs(s.inode);
            let same = s.owners.iter().all(|o| {
                now.next()
                    .is_some_and(|n| (n.pid, n.fd, n.tid) == (o.pid, o.fd, o.tid))
            }) && now.next().is_none();
            if !same {
                s.owners = scan.owners(s.inode);
            }
        }
    }

    /// Give every socket its owners from the last walk.
    pub fn attach(&self, sockets: &mut [Socket]) {
        if let Some(scan) = &self.scan {
            crate::join::attach_owners(sockets, scan);
        }
    }

    /// Give one socket its owners from the last walk.
    pub fn attach_one(&self, s: &mut Socket) {
        if let Some(scan) = &self.scan
            && s.inode != 0
        {
            s.owners = scan.owners(s.inode);
        }
    }

    /// The last walk (for its counts of unreadable fd tables).
    pub fn scan(&self) -> Option<&crate::model::OwnerScan> {
        self.scan.as_ref()
    }
}

/// One process in the processes view.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProcRow {
    pub pid: u32,
    pub comm: String,
    /// Open sockets it holds.
    pub sockets: usize,
    /// Open sockets by state name (`established`, `listening`, ...).
    pub by_state: BTreeMap<&'static str, usize>,
    pub opened_per_s: Option<f64>,
    pub closed_per_s: Option<f64>,
    pub in_bytes_per_s: f64,
    pub out_bytes_per_s: f64,
}

/// Aggregate a frame by owning process (a socket held by several processes
/// counts for each). Sockets without an owner are left out.
pub fn processes(frame: &Frame) -> Vec<ProcRow> {
    let mut by: HashMap<u32, ProcRow> = HashMap::new();
    let mut opened: HashMap<u32, usize> = HashMap::new();
    let mut closed: HashMap<u32, usize> = HashMap::new();
    for (s, i) in frame.sockets.iter().zip(&frame.info) {
        let mut seen: Vec<u32> = Vec::with_capacity(s.owners.len());
        for o in &s.owners {
            if seen.contains(&o.pid) {
                continue;
            }
            seen.push(o.pid);
            let row = by.entry(o.pid).or_insert_with(|| ProcRow {
                pid: o.pid,
                comm: o.comm.clone(),
                sockets: 0,
                by_state: BTreeMap::new(),
                opened_per_s: None,
                closed_per_s: None,
                in_bytes_per_s: 0.0,
                out_bytes_per_s: 0.0,
            });
            match i.status {
                RowStatus::Closed => {
                    if i.closed_s_ago == Some(0.0) {
                        *closed.entry(o.pid).or_default() += 1;
                    }
                    continue;
                }
                RowStatus::New => *opened.entry(o.pid).or_default() += 1,
                RowStatus::Open => {}
            }
            row.sockets += 1;
            *row.by_state.entry(s.state.name()).or_default() += 1;
            row.in_bytes_per_s += i.in_bytes_per_s.unwrap_or(0.0);
            row.out_bytes_per_s += i.out_bytes_per_s.unwrap_or(0.0);
        }
    }
    let dt = frame.interval_s.filter(|d| *d > 0.0);
    let mut out: Vec<ProcRow> = by
        .into_values()
        .map(|mut r| {
            if let Some(d) = dt {
                r.opened_per_s = Some(opened.get(&r.pid).copied().unwrap_or(0) as f64 / d);
                r.closed_per_s = Some(closed.get(&r.pid).copied().unwrap_or(0) as f64 / d);
            }
            r
        })
        .collect();
    out.sort_by(|a, b| b.sockets.cmp(&a.sockets).then(a.pid.cmp(&b.pid)));
    out
}

/// One listener in the listeners view: the library's listener health,
/// without the children themselves, plus accepted/s.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ListenerRow {
    pub listener: Socket,
    pub accept_queue: Option<u32>,
    pub backlog: Option<u32>,
    pub fill_pct: Option<f64>,
    pub full: bool,
    pub syn_recv: u32,
    /// Connections past the handshake on the listener's address and port.
    pub children: usize,
    /// New children per second since the last refresh.
    pub accepted_per_s: Option<f64>,
    /// Listeners sharing the address and port (SO_REUSEPORT), this one
    /// included; 1 when alone.
    pub reuseport_group: usize,
}

/// Listener rows from the library's listener health and the frame's new
/// rows.
pub fn listener_rows(health: Vec<ListenerHealth>, frame: &Frame) -> Vec<ListenerRow> {
    let dt = frame.interval_s.filter(|d| *d > 0.0);
    health
        .into_iter()
        .map(|h| {
            let new = h
                .children
                .iter()
                .filter(|c| frame.new_keys.contains(&key_of(c)))
                .count();
            ListenerRow {
                accept_queue: h.accept_queue,
                backlog: h.backlog,
                fill_pct: h.fill_pct,
                full: h.full,
                syn_recv: h.syn_recv,
                children: h.children.len(),
                accepted_per_s: dt.map(|d| new as f64 / d),
                reuseport_group: h.reuseport_siblings.len() + 1,
                listener: h.listener,
            }
        })
        .collect()
}

/// Namespace counters shown per second in the listeners and namespaces
/// views (names as in `nstat`).
pub const RATE_COUNTERS: &[&str] = &[
    "TcpExt.ListenOverflows",
    "TcpExt.ListenDrops",
    "TcpExt.TCPBacklogDrop",
    "TcpExt.TCPReqQFullDrop",
    "Tcp.ActiveOpens",
    "Tcp.PassiveOpens",
    "Tcp.RetransSegs",
    "Tcp.InSegs",
    "Tcp.OutSegs",
];

/// One namespace in the namespaces view.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NsRow {
    pub netns: Netns,
    pub sockets: usize,
    pub established: usize,
    pub listening: usize,
    pub time_wait: usize,
    pub syn_recv: usize,
    pub in_bytes_per_s: f64,
    pub out_bytes_per_s: f64,
    /// RATE_COUNTERS per second since the last refresh (absent on the
    /// first, or when the namespace's counters could not be read).
    pub counters_per_s: BTreeMap<String, f64>,
}

/// Per-second rates of `names` between two readings `dt` seconds apart.
pub fn counter_rates(
    now: &Counters,
    before: &Counters,
    dt: f64,
    names: &[&str],
) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    if dt <= 0.0 {
        return out;
    }
    for n in names {
        if let (Some(a), Some(b)) = (now.get(n), before.get(n))
            && a >= b
        {
            out.insert((*n).to_string(), (a - b) as f64 / dt);
        }
    }
    out
}

/// Namespace rows: sockets of the frame grouped by namespace (`netns` of the
/// rows, or `default` for unlabelled rows), with counter rates from
/// `rates` (namespace inode -> rates).
pub fn namespaces(
    frame: &Frame,
    default: &Netns,
    rates: &HashMap<u64, BTreeMap<String, f64>>,
) -> Vec<NsRow> {
    let mut by: BTreeMap<u64, NsRow> = BTreeMap::new();
    for (s, i) in frame.sockets.iter().zip(&frame.info) {
        if i.status == RowStatus::Closed {
            continue;
        }
        let ns = s.netns.as_deref().unwrap_or(default);
        let row = by.entry(ns.inode).or_insert_with(|| NsRow {
            netns: ns.clone(),
            sockets: 0,
            established: 0,
            listening: 0,
            time_wait: 0,
            syn_recv: 0,
            in_bytes_per_s: 0.0,
            out_bytes_per_s: 0.0,
            counters_per_s: rates.get(&ns.inode).cloned().unwrap_or_default(),
        });
        row.sockets += 1;
        match s.state {
            State::Established => row.established += 1,
            State::Listen => row.listening += 1,
            State::TimeWait => row.time_wait += 1,
            State::SynRecv | State::NewSynRecv => row.syn_recv += 1,
            _ => {}
        }
        row.in_bytes_per_s += i.in_bytes_per_s.unwrap_or(0.0);
        row.out_bytes_per_s += i.out_bytes_per_s.unwrap_or(0.0);
    }
    // Namespaces with counters but no socket still show.
    for (inode, r) in rates {
        by.entry(*inode).or_insert_with(|| NsRow {
            netns: Netns {
                inode: *inode,
                name: None,
            },
            sockets: 0,
            established: 0,
            listening: 0,
            time_wait: 0,
            syn_recv: 0,
            in_bytes_per_s: 0.0,
            out_bytes_per_s: 0.0,
            counters_per_s: r.clone(),
        });
    }
    by.into_values().collect()
}

/// A rate as text with a unit prefix: `1.2M`, `340k`, `12`, `0`; `-` when
/// unknown.
pub fn human_rate(v: Option<f64>) -> String {
    match v {
        None => "-".to_string(),
        Some(v) if v < 0.5 => "0".to_string(),
        Some(v) if v < 1000.0 => format!("{v:.0}"),
        Some(v) if v < 1e6 => format!("{:.1}k", v / 1e3),
        Some(v) if v < 1e9 => format!("{:.1}M", v / 1e6),
        Some(v) => format!("{:.1}G", v / 1e9),
    }
}

/// True for endpoints of IP sockets (rates only make sense for TCP).
pub fn is_inet(e: &Endpoint) -> bool {
    matches!(e, Endpoint::Inet { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Family, Owner, Proto, SourceKind, TcpInfo};
    use std::net::{IpAddr, Ipv4Addr};

    fn sock(cookie: u64, lport: u16, pport: u16, state: State, inb: u64, outb: u64) -> Socket {
        let ep = |port| Endpoint::Inet {
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
        };
        let mut s = Socket::new(
            Proto::Tcp,
            Family::Inet,
            state,
            ep(lport),
            ep(pport),
            SourceKind::Netlink,
        );
        s.cookie = Some(cookie);
        s.inode = cookie + 1000;
        s.tcp_info = Some(Box::new(TcpInfo {
            bytes_received: Some(inb),
            bytes_acked: Some(outb),
            total_retrans: 2,
            rtt_us: 150,
            ..TcpInfo::default()
        }));
        s.owners = vec![Owner {
            pid: 42,
            fd: 3,
            comm: "srv".into(),
            uid: Some(0),
            tid: None,
        }];
        s
    }

    #[test]
    fn rates_new_and_closed_rows() {
        let mut t = Tracker::new(3.0);
        let mut f = Frame::default();
        t.update(
            &mut f,
            vec![
                sock(1, 80, 5000, State::Established, 100, 1000),
                sock(2, 80, 5001, State::Established, 0, 0),
            ],
            10.0,
        );
        assert_eq!(f.interval_s, None);
        assert!(f.info.iter().all(|i| i.status == RowStatus::Open));
        assert!(f.info.iter().all(|i| i.in_bytes_per_s.is_none()));
        // Two seconds later: 1 got 2000 bytes in and acked 4000 out; 2 is
        // gone; 3 is new.
        t.update(
            &mut f,
            vec![
                sock(1, 80, 5000, State::Established, 2100, 5000),
                sock(3, 80, 5002, State::Established, 0, 0),
            ],
            12.0,
        );
        assert_eq!(f.interval_s, Some(2.0));
        assert_eq!((f.opened, f.closed), (1, 1));
        assert_eq!(f.sockets.len(), 3);
        assert_eq!(f.info[0].in_bytes_per_s, Some(1000.0));
        assert_eq!(f.info[0].out_bytes_per_s, Some(2000.0));
        assert_eq!(f.info[0].retrans_per_s, Some(0.0));
        assert_eq!(f.info[0].rtt_us, Some(150));
        assert_eq!(f.info[1].status, RowStatus::New);
        assert_eq!(f.sockets[2].cookie, Some(2));
        assert_eq!(f.info[2].status, RowStatus::Closed);
        assert_eq!(f.info[2].closed_s_ago, Some(0.0));
        let p = processes(&f);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].sockets, 2);
        assert_eq!(p[0].by_state.get("established"), Some(&2));
        assert_eq!(p[0].opened_per_s, Some(0.5));
        assert_eq!(p[0].closed_per_s, Some(0.5));
        assert_eq!(p[0].in_bytes_per_s, 1000.0);
        // Closed rows stay while younger than 3 s, then go.
        let same = || vec![sock(1, 80, 5000, State::Established, 2100, 5000)];
        t.update(&mut f, same(), 14.0);
        assert_eq!(f.closed, 1, "3 closed now");
        let ages: Vec<_> = f.info[1..].iter().map(|i| i.closed_s_ago).collect();
        assert_eq!(ages, [Some(2.0), Some(0.0)], "2 (closed at 12) and 3");
        t.update(&mut f, same(), 15.5);
        assert_eq!(f.sockets.len(), 2, "2 dropped after 3 s, 3 kept");
        assert_eq!(f.sockets[1].cookie, Some(3));
        assert_eq!(f.info[0].in_bytes_per_s, Some(0.0));
        t.update(&mut f, same(), 17.0);
        assert_eq!(f.sockets.len(), 1);
    }

    #[test]
    fn owners_walked_again_only_for_unknown_sockets_or_when_old() {
        use crate::model::OwnerScan;
        let mut c = OwnerCache::new(10.0);
        let a = vec![sock(1, 80, 5000, State::Established, 0, 0)];
        assert!(c.needs_scan(&a, 0.0), "nothing walked yet");
        let owner = a[0].owners[0].clone();
        c.store(
            OwnerScan::from_pairs(vec![(a[0].inode, owner)], 0, 1),
            &a,
            0.0,
        );
        assert!(!c.needs_scan(&a, 5.0));
        let mut b = a.clone();
        b[0].owners.clear();
        c.attach(&mut b);
        assert_eq!(b[0].owners, a[0].owners, "owners from the cache");
        // A TIME-WAIT socket (inode 0) is no reason to walk again ...
        let mut tw = sock(2, 80, 5001, State::TimeWait, 0, 0);
        tw.inode = 0;
        b.push(tw);
        assert!(!c.needs_scan(&b, 5.0));
        // ... a socket with an inode the walk did not see is.
        b.push(sock(3, 80, 5002, State::Established, 0, 0));
        assert!(c.needs_scan(&b, 5.0));
        assert!(c.needs_scan(&a, 10.0), "too old");
        assert!(c.is_old(10.0) && !c.is_old(9.0));
        // A walk before the dump keeps what was known.
        c.replace(OwnerScan::from_pairs(vec![], 0, 1), 10.0);
        assert!(!c.is_old(12.0));
        assert!(!c.needs_scan(&a, 12.0), "socket 1 still known");
        let n = vec![sock(9, 80, 5009, State::Established, 0, 0)];
        assert!(c.needs_scan(&n, 12.0));
        c.store_known(&n);
        assert!(!c.needs_scan(&n, 12.0));
    }

    #[test]
    fn owners_carried_from_the_previous_frame() {
        let mut t = Tracker::default();
        let mut f = Frame::default();
        let strip = |mut v: Vec<Socket>| {
            for s in &mut v {
                s.owners.clear();
            }
            v
        };
        let a = || vec![sock(1, 80, 5000, State::Established, 0, 0)];
        let want = a()[0].owners.clone();
        let give = |s: &mut Socket| s.owners = want.clone();
        t.update_owned(&mut f, strip(a()), 0.0, true, give);
        assert_eq!(f.sockets[0].owners, want, "filled on first sight");
        // Carried: `fill` is not called for a socket seen before.
        t.update_owned(&mut f, strip(a()), 1.0, true, |_| panic!("filled again"));
        assert_eq!(f.sockets[0].owners, want);
        // Without carry (after a fresh walk) every socket is filled.
        t.update_owned(&mut f, strip(a()), 2.0, false, |s| s.owners.clear());
        assert!(f.sockets[0].owners.is_empty());
        // A closed row keeps its owners.
        t.update_owned(&mut f, strip(a()), 3.0, false, give);
        t.update_owned(&mut f, vec![], 4.0, true, give);
        assert_eq!(f.info[0].status, RowStatus::Closed);
        assert_eq!(f.sockets[0].owners, want);
    }

    #[test]
    fn a_counter_going_back_gives_no_rate() {
        let mut t = Tracker::default();
        let mut f = Frame::default();
        t.update(
            &mut f,
            vec![sock(1, 80, 1, State::Established, 500, 500)],
            0.0,
        );
        t.update(
            &mut f,
            vec![sock(1, 80, 1, State::Established, 10, 900)],
            1.0,
        );
        assert_eq!(f.info[0].in_bytes_per_s, None);
        assert_eq!(f.info[0].out_bytes_per_s, Some(400.0));
    }

    #[test]
    fn accepted_per_second_counts_new_children() {
        let mut t = Tracker::default();
        let mut f = Frame::default();
        let mut l = sock(1, 80, 0, State::Listen, 0, 0);
        l.recv_q = Some(0);
        l.send_q = Some(128);
        t.update(
            &mut f,
            vec![l.clone(), sock(2, 80, 7, State::Established, 0, 0)],
            0.0,
        );
        t.update(
            &mut f,
            vec![
                l,
                sock(2, 80, 7, State::Established, 0, 0),
                sock(3, 80, 8, State::Established, 0, 0),
                sock(4, 80, 9, State::Established, 0, 0),
            ],
            0.5,
        );
        let rows = listener_rows(crate::explain::listener_health(&f.sockets), &f);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].children, 3);
        assert_eq!(rows[0].accepted_per_s, Some(4.0));
        assert_eq!(rows[0].reuseport_group, 1);
    }

    #[test]
    fn folding_one_by_one_drops_tcp_info_and_refreshes_changed_owners() {
        use crate::model::OwnerScan;
        let mut t = Tracker::new(3.0);
        t.strip_tcp_info = true;
        let mut f = Frame::default();
        let mut fold = t.begin(&mut f, 0.0, true, 0);
        fold.push(sock(1, 80, 5000, State::Established, 100, 0), |_| {});
        fold.push(sock(2, 80, 5001, State::Established, 0, 0), |_| {});
        assert_eq!(fold.len(), 2);
        fold.finish();
        let mut fold = t.begin(&mut f, 1.0, true, 0);
        fold.push(sock(1, 80, 5000, State::Established, 600, 0), |_| {
            panic!("carried")
        });
        fold.finish();
        assert_eq!(f.info[0].in_bytes_per_s, Some(500.0));
        assert!(f.sockets.iter().all(|s| s.tcp_info.is_none()));
        assert_eq!(f.info[1].status, RowStatus::Closed);
        // A walk that moved socket 1 to another process: its row changes,
        // the closed row keeps its last owner.
        let mut c = OwnerCache::new(10.0);
        let moved = Owner {
            pid: 43,
            fd: 7,
            comm: "new".into(),
            uid: Some(0),
            tid: None,
        };
        c.store(
            OwnerScan::from_pairs(vec![(f.sockets[0].inode, moved.clone())], 0, 1),
            &f.sockets,
            1.0,
        );
        c.refresh_owners(&mut f);
        assert_eq!(f.sockets[0].owners, vec![moved]);
        assert_eq!(f.sockets[1].owners[0].pid, 42);
        assert!(c.knows(f.sockets[0].inode) && c.knows(0) && !c.knows(99));
    }

    #[test]
    fn counters_per_second() {
        let mut a = Counters::default();
        let mut b = Counters::default();
        a.0.insert("TcpExt.ListenOverflows".into(), 10);
        b.0.insert("TcpExt.ListenOverflows".into(), 16);
        b.0.insert("Tcp.ActiveOpens".into(), 3);
        let r = counter_rates(&b, &a, 2.0, RATE_COUNTERS);
        assert_eq!(r.get("TcpExt.ListenOverflows"), Some(&3.0));
        assert_eq!(r.get("Tcp.ActiveOpens"), None, "no earlier value");
        assert_eq!(human_rate(Some(1_234_567.0)), "1.2M");
        assert_eq!(human_rate(Some(0.2)), "0");
        assert_eq!(human_rate(None), "-");
    }
}
