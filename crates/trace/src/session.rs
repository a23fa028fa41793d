//! A trace session: snapshot, load, read, join, hand over.
//!
//! [`Session::start`] takes the socket-table and fd-table snapshot (so
//! connections that existed before the trace are attributed), seeds the
//! kernel's owner maps from it, and loads the programs. [`Session::run`]
//! reads the ring buffer until told to stop (then detaches the programs
//! and reads what is left, so that the closing counts add up: see
//! [`Stats`]), puts records back in time
//! order (records from different CPUs can arrive slightly out of order),
//! feeds them to the [`Tracker`], passes TIME-WAIT checks to the socket
//! table on a side thread, and gives every event and finished connection
//! to a [`Sink`]. Once a second it compares the kernel's lost-event counter
//! with the last one and, when events were lost, tells the sink which
//! filter would have cut the volume.

use crate::abi::{Kind, RawEvent};
use crate::event::{Event, What};
use crate::loader::{self, Config, Counters, SeedOwner, TraceError, Tracer};
use crate::names::Reasons;
use crate::timewait::TwChecker;
use crate::track::{Conn, FxMap, Tracker, UserFilter};
use sockscope::model::{Proto, State};
use sockscope::source::netns::{self, NetnsTarget};
use sockscope::source::{Kind as SrcKind, Request};
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Where a session's output goes.
pub trait Sink {
    /// An event, in time order.
    fn event(&mut self, e: &Event) -> io::Result<()>;
    /// A connection that ended (or that was still open at the end, from
    /// [`Session::run`]'s final flush).
    fn finished(&mut self, c: Conn) -> io::Result<()>;
    /// Something the user should know (lost events, skipped tracepoints).
    fn warn(&mut self, msg: &str);
    /// Events that passed the filter but were not handed over, in a
    /// session that shows none ([`Options::lean`]): read and inferred
    /// together.
    fn counted(&mut self, _n: u64) {}
    /// Called after each batch: a chance to flush output.
    fn tick(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How to run a session.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The kernel side: filters, kinds, ring size.
    pub kernel: Config,
    /// The user-space side of the filter.
    pub filter: UserFilter,
    /// Keep every connection's events (for diagrams).
    pub keep_events: bool,
    /// Which namespaces to snapshot (the ones traced).
    pub netns: Option<NetnsTarget>,
    /// Take the snapshot of sockets and owners at start.
    pub snapshot: bool,
    /// Check inferred TIME-WAITs against the socket table.
    pub check_time_wait: bool,
    /// No event is shown (only the closing summary): events are decoded
    /// without what only their text needs ([`Event::from_raw_lean`]), and
    /// the sink is told how many passed ([`Sink::counted`]) instead of
    /// being handed each one. Connections are joined and handed over the
    /// same. Ignored with `keep_events`.
    pub lean: bool,
}

/// What a session did, for the closing summary.
///
/// The counts add up: the programs are detached before the last read, so
/// `kernel_written = events_read + bad_records`, and every event read is
/// either shown or left out by the user-space filter:
/// `events_read = events_shown + events_filtered` (+ `events_discarded`,
/// only under the benchmark switch [`ENV_DISCARD`]). Events sockscope
/// inferred (TIME-WAIT and its check) are counted apart, in
/// `events_inferred`. `events_unwritten` (shown or inferred events that
/// never reached the output because it was blocked or closed when the
/// trace stopped) is filled in by whoever writes the output.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Stats {
    pub duration_s: f64,
    /// Events read from the ring buffer (records that decoded).
    pub events_read: u64,
    /// Events read and handed to the output (after the user-space filter).
    pub events_shown: u64,
    /// Events read and left out by the user-space filter (FILTER,
    /// --port, --addr), including those of a connection the filter never
    /// could decide on (its ports stayed unknown).
    pub events_filtered: u64,
    /// Events read and dropped unseen ([`ENV_DISCARD`], benchmarks only;
    /// left out of the JSON when 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub events_discarded: u64,
    /// Events inferred by sockscope and handed to the output.
    pub events_inferred: u64,
    /// Shown or inferred events that could not be written.
    pub events_unwritten: u64,
    pub events_per_s: f64,
    /// Events the kernel wrote, lost (ring buffer full) and filtered out.
    pub kernel_written: u64,
    pub kernel_lost: u64,
    pub kernel_filtered: u64,
    /// Lost events by kind.
    pub lost_by_kind: std::collections::BTreeMap<&'static str, u64>,
    /// Records that did not decode (should be 0).
    pub bad_records: u64,
    /// Sockets in the start snapshot.
    pub snapshot_sockets: usize,
    pub connections: u64,
}

/// A started trace.
pub struct Session {
    tracer: Tracer,
    tracker: Tracker,
    reasons: Reasons,
    checker: Option<TwChecker>,
    lean: bool,
    /// [`ENV_DISCARD`]: records are counted and dropped.
    discard: bool,
    start_ns: u64,
    started: Instant,
    /// Records read but not yet handed on (see [`Reorder`]).
    pending: Reorder,
    stats: Stats,
    ring_bytes: u32,
    /// Notes for the user about the start (skipped tracepoints, fd tables
    /// that could not be read).
    pub notes: Vec<String>,
    /// How the snapshot was read (sources, fallbacks): for `-v`.
    pub snapshot_notes: Vec<String>,
}

/// CLOCK_MONOTONIC in ns: the clock bpf_ktime_get_ns() reads.
pub fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64).saturating_mul(1_000_000_000) + t.tv_nsec as u64
}

/// Records are held this long so that ones from other CPUs can be put in
/// order before they are shown.
const REORDER_NS: u64 = 30_000_000;

/// Benchmark only: when set, the reader counts the records it takes from
/// the ring buffer and drops them unread (no decoding, no reordering, no
/// connections), so that a run measures what the kernel side costs by
/// itself with the records still delivered (bench/trace.sh).
pub const ENV_DISCARD: &str = "SOCKSCOPE_TRACE_DISCARD";

impl Session {
    pub fn start(mut opts: Options) -> Result<Session, TraceError> {
        loader::preflight()?;
        let mut notes = Vec::new();
        let mut snapshot_notes = Vec::new();
        let mut tracker = Tracker::new(opts.filter.clone(), opts.keep_events);
        let lean = opts.lean && !opts.keep_events;
        if lean {
            tracker.count_only();
        }
        let mut snapshot_sockets = 0;
        if opts.snapshot {
            let target = opts.netns.clone().unwrap_or(NetnsTarget::All);
            match take_snapshot(&target) {
                Ok(snap) => {
                    snapshot_sockets = snap.sockets.len();
                    seed(&mut opts.kernel, &snap.sockets);
                    tracker.add_snapshot(&snap.sockets);
                    snapshot_notes.extend(snap.notes);
                    if let Some(s) = &snap.owners
                        && s.denied > 0
                    {
                        notes.push(format!(
                            "could not read the fd tables of {} processes: their connections that existed \
                             before the trace show no owner until they make a socket syscall",
                            s.denied
                        ));
                    }
                }
                Err(e) => notes.push(format!(
                    "no socket snapshot ({e}): connections older than the trace show no owner until they make a syscall"
                )),
            }
        }
        let reasons = Reasons::from_kernel();
        opts.kernel.drop_skip = reasons
            .drop
            .iter()
            .find(|(_, n)| n.as_str() == "QUEUE_PURGE")
            .map_or(0, |(v, _)| *v);
        let tracer = Tracer::start(&opts.kernel)?;
        notes.extend(tracer.notes.iter().cloned());
        for s in &tracer.skipped {
            notes.push(format!(
                "{} is not available on this kernel ({}); its events are not shown",
                s.event, s.reason
            ));
        }
        // Empty records (loader::ENV_EMIT_ONLY) have nothing to decode.
        let emit_only = std::env::var_os(loader::ENV_EMIT_ONLY).is_some();
        let discard = emit_only || std::env::var_os(ENV_DISCARD).is_some();
        if emit_only {
            notes.push(format!(
                "{} is set (benchmark only): the kernel writes one empty record per event \
                 and they are dropped unseen",
                loader::ENV_EMIT_ONLY
            ));
        } else if discard {
            notes.push(format!(
                "{ENV_DISCARD} is set (benchmark only): events are read from the kernel \
                 and dropped unseen"
            ));
        }
        let start_ns = monotonic_ns();
        Ok(Session {
            tracer,
            tracker,
            reasons,
            checker: opts.check_time_wait.then(TwChecker::spawn),
            lean,
            discard,
            start_ns,
            started: Instant::now(),
            pending: Reorder::default(),
            stats: Stats {
                snapshot_sockets,
                ..Stats::default()
            },
            ring_bytes: opts.kernel.ring_bytes,
            notes,
            snapshot_notes,
        })
    }

    /// Read and hand over events until `stop` is set or `until` passes.
    pub fn run(
        &mut self,
        sink: &mut dyn Sink,
        stop: &AtomicBool,
        until: Option<Instant>,
    ) -> io::Result<Stats> {
        let mut last_check = Instant::now();
        let mut last_counters = Counters::default();
        let mut window = Window::default();
        let mut out = Vec::new();
        let mut done = Vec::new();
        loop {
            if stop.load(Ordering::Relaxed) || until.is_some_and(|u| Instant::now() >= u) {
                break;
            }
            let timeout = until
                .map(|u| u.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_millis(40))
                .min(Duration::from_millis(40));
            self.read_records(timeout)?;

            let now = monotonic_ns();
            let cutoff = if self.pending.len() > 200_000 {
                u64::MAX
            } else {
                now.saturating_sub(REORDER_NS)
            };
            self.release(cutoff, sink, &mut window, &mut out, &mut done)?;
            self.answers(sink, &mut out, &mut done, false)?;
            self.tracker
                .tick(cutoff.min(now).saturating_sub(self.start_ns), &mut done);
            for c in done.drain(..) {
                self.stats.connections += 1;
                sink.finished(c)?;
            }
            sink.tick()?;

            if last_check.elapsed() >= Duration::from_secs(1) {
                let c = self.tracer.counters();
                let lost = c.total_lost().saturating_sub(last_counters.total_lost());
                if lost > 0 {
                    let written = c
                        .total_written()
                        .saturating_sub(last_counters.total_written());
                    sink.warn(&overload_message(
                        lost,
                        written,
                        last_check.elapsed(),
                        &window,
                        self.ring_bytes,
                        &c,
                        &last_counters,
                    ));
                }
                last_counters = c;
                last_check = Instant::now();
                window = Window::default();
            }
        }
        // Detach first, so that nothing is written after the last read.
        // That takes the kernel most of a second: meanwhile, hand over
        // what was read already. Then read what the ring buffer still
        // holds, and hand over everything pending.
        if let Some(d) = self.tracer.start_detach() {
            while !d.done() {
                self.read_records(Duration::from_millis(5))?;
                let settled = monotonic_ns().saturating_sub(REORDER_NS);
                self.release(settled, sink, &mut window, &mut out, &mut done)?;
            }
            d.wait();
        }
        self.read_batches();
        self.drain_all()?;
        self.release(u64::MAX, sink, &mut window, &mut out, &mut done)?;
        self.answers(sink, &mut out, &mut done, true)?;
        self.tracker.finish(&mut done);
        for c in done.drain(..) {
            self.stats.connections += 1;
            sink.finished(c)?;
        }

        let c = self.tracer.counters();
        let elapsed = self.started.elapsed().as_secs_f64();
        self.stats.duration_s = elapsed;
        if self.discard {
            self.stats.events_discarded = self.stats.events_read;
        }
        self.stats.events_filtered = self
            .stats
            .events_read
            .saturating_sub(self.stats.events_shown + self.stats.events_discarded);
        self.stats.events_per_s = if elapsed > 0.0 {
            self.stats.events_read as f64 / elapsed
        } else {
            0.0
        };
        self.stats.kernel_written = c.total_written();
        self.stats.kernel_lost = c.total_lost();
        self.stats.kernel_filtered = c.total_filtered();
        for k in Kind::ALL {
            let l = c.lost[k as usize];
            if l > 0 {
                self.stats.lost_by_kind.insert(k.name(), l);
            }
        }
        Ok(self.stats.clone())
    }

    /// Wait up to `timeout` for records and put them in order.
    fn read_records(&mut self, timeout: Duration) -> io::Result<usize> {
        let mut bad = 0u64;
        let pending = &mut self.pending;
        let discard = self.discard;
        let n = self
            .tracer
            .poll(timeout, |b| {
                if !discard {
                    pending.insert_record(b, &mut bad)
                }
            })
            .map_err(io::Error::other)?;
        self.stats.events_read += (n as u64).saturating_sub(bad);
        self.stats.bad_records += bad;
        Ok(n)
    }

    /// Once detached: the events still in the per-CPU batches.
    fn read_batches(&mut self) {
        let mut bad = 0u64;
        let pending = &mut self.pending;
        let discard = self.discard;
        let n = self.tracer.take_batches(|b| {
            if !discard {
                pending.insert_record(b, &mut bad)
            }
        });
        self.stats.events_read += (n as u64).saturating_sub(bad);
        self.stats.bad_records += bad;
    }

    /// After [`Tracer::detach`]: read until the ring buffer is empty and
    /// every record the counters say was written has been read (a program
    /// that was running during the detach, or a record still being
    /// committed, may take a moment), for at most 100 ms.
    fn drain_all(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + Duration::from_millis(100);
        loop {
            if self.read_records(Duration::ZERO)? > 0 {
                continue;
            }
            let written = self.tracer.counters().total_written();
            if written <= self.stats.events_read + self.stats.bad_records
                || Instant::now() >= deadline
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn release(
        &mut self,
        cutoff: u64,
        sink: &mut dyn Sink,
        window: &mut Window,
        out: &mut Vec<Event>,
        done: &mut Vec<Conn>,
    ) -> io::Result<()> {
        // Each record is read where it lies in the queue (a record is
        // 176 bytes, an event 312: the reader's time goes largely into
        // copying them) and dropped after.
        self.pending.begin();
        while let Some(r) = self.pending.first(cutoff) {
            window.count(r);
            let ev = if self.lean {
                Event::from_raw_lean(r, &self.reasons, self.start_ns)
            } else {
                Event::from_raw(r, &self.reasons, self.start_ns)
            };
            let sk = r.sk;
            self.pending.pop_first();
            self.tracker.push(ev, sk, out, done);
            if !self.lean {
                hand_all(&mut self.stats, sink, out)?;
            }
        }
        self.take_counted(sink);
        // One batch per read: the checker thread wakes once for it.
        let checks = self.tracker.take_tw_checks();
        if let Some(ch) = &self.checker {
            ch.check(checks);
        }
        Ok(())
    }

    fn answers(
        &mut self,
        sink: &mut dyn Sink,
        out: &mut Vec<Event>,
        _done: &mut [Conn],
        last: bool,
    ) -> io::Result<()> {
        let Some(ch) = self.checker.as_mut() else {
            return Ok(());
        };
        let answers = if last {
            ch.finish(Duration::from_millis(900))
        } else {
            ch.answers()
        };
        let now = monotonic_ns().saturating_sub(self.start_ns);
        for (conn, state) in answers {
            self.tracker.tw_result(conn, state, now, out);
            hand_all(&mut self.stats, sink, out)?;
        }
        self.take_counted(sink);
        Ok(())
    }

    /// Events the tracker only counted (lean): into the stats and the sink.
    fn take_counted(&mut self, sink: &mut dyn Sink) {
        let (read, inferred) = self.tracker.take_counted();
        if read + inferred > 0 {
            self.stats.events_shown += read;
            self.stats.events_inferred += inferred;
            sink.counted(read + inferred);
        }
    }
}

/// Give an event to the sink, counting it as shown or inferred.
fn hand(stats: &mut Stats, sink: &mut dyn Sink, e: &Event) -> io::Result<()> {
    if e.inferred() {
        stats.events_inferred += 1;
    } else {
        stats.events_shown += 1;
    }
    sink.event(e)
}

/// Give every event of `out` to the sink (by reference: no copy), then
/// empty it, also when the sink fails.
fn hand_all(stats: &mut Stats, sink: &mut dyn Sink, out: &mut Vec<Event>) -> io::Result<()> {
    let r = out.iter().try_for_each(|e| hand(stats, sink, e));
    out.clear();
    r
}

/// Records waiting to be handed on in time order: one queue per CPU (the
/// record's `cpu`), each in time order, merged at release by the earliest
/// front. A CPU writes its records nearly in time order (in batches of up
/// to 16, or alone), while the batches of different CPUs interleave in
/// the ring buffer: one queue for all would have each record of a batch
/// step back over, and be inserted before, the records of every other
/// CPU's batches written in the meantime.
#[derive(Default)]
struct Reorder {
    queues: Vec<VecDeque<RawEvent>>,
    len: usize,
    /// The non-empty queues by the time of their first record, earliest
    /// on top: made by [`Reorder::begin`], kept by [`Reorder::pop_first`].
    fronts: std::collections::BinaryHeap<std::cmp::Reverse<(u64, usize)>>,
}

/// Queues at most (a record of a higher CPU number goes in the last one,
/// which [`ordered_insert`] keeps in order all the same).
const MAX_QUEUES: usize = 1024;

impl Reorder {
    fn insert(&mut self, r: RawEvent) {
        let q = (r.cpu as usize).min(MAX_QUEUES - 1);
        if q >= self.queues.len() {
            self.queues.resize_with(q + 1, VecDeque::new);
        }
        ordered_insert(&mut self.queues[q], r);
        self.len += 1;
    }

    /// A record as read from the kernel; one that does not decode is
    /// counted in `bad`.
    fn insert_record(&mut self, b: &[u8], bad: &mut u64) {
        match RawEvent::decode(b) {
            Ok(r) => self.insert(r),
            Err(_) => *bad += 1,
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    /// Before a run of [`Reorder::first`] and [`Reorder::pop_first`] (no
    /// insert in between).
    fn begin(&mut self) {
        self.fronts.clear();
        for (i, q) in self.queues.iter().enumerate() {
            if let Some(r) = q.front() {
                self.fronts.push(std::cmp::Reverse((r.ts_ns, i)));
            }
        }
    }

    /// The earliest record, if it is at or before `cutoff`.
    fn first(&self, cutoff: u64) -> Option<&RawEvent> {
        let std::cmp::Reverse((ts, i)) = *self.fronts.peek()?;
        if ts > cutoff {
            return None;
        }
        self.queues[i].front()
    }

    /// Drop the earliest record.
    fn pop_first(&mut self) {
        let Some(mut top) = self.fronts.peek_mut() else {
            return;
        };
        let i = top.0.1;
        if self.queues[i].pop_front().is_some() {
            self.len -= 1;
        }
        // The queue's next record takes its place (one sift down, when
        // the top is let go), or the queue leaves the heap.
        match self.queues[i].front() {
            Some(r) => top.0 = (r.ts_ns, i),
            None => {
                std::collections::binary_heap::PeekMut::pop(top);
            }
        }
    }
}

/// Insert a record keeping `q` in time order. A CPU's records arrive
/// nearly in order, so the place is found by stepping back from the end;
/// equal times keep their arrival order.
fn ordered_insert(q: &mut VecDeque<RawEvent>, r: RawEvent) {
    let mut i = q.len();
    while i > 0 && q[i - 1].ts_ns > r.ts_ns {
        i -= 1;
    }
    if i == q.len() {
        q.push_back(r);
    } else {
        q.insert(i, r);
    }
}

/// Events of the last second by port and command, to name the filter
/// that would cut the volume when events are lost. Counted for every
/// event, so kept cheap: ports in a table indexed by port (no hashing),
/// commands run-length counted (a busy process's events come in runs)
/// before they reach the map.
#[derive(Default)]
struct Window {
    total: u64,
    data: u64,
    /// Events by port (65536 entries once the first port is seen; u32:
    /// a window is a second, and half the table's size in the cache).
    ports: Vec<u32>,
    /// The ports with a count, for reading them back.
    seen_ports: Vec<u16>,
    comms: FxMap<[u8; 16], u64>,
    /// The current run of events of one command, not in `comms` yet.
    run: Option<([u8; 16], u64)>,
}

impl Window {
    fn count(&mut self, r: &RawEvent) {
        self.total += 1;
        if matches!(r.kind, Kind::Send | Kind::Recv) {
            self.data += 1;
        }
        for p in [r.sport, r.dport] {
            if p != 0 {
                if self.ports.is_empty() {
                    self.ports = vec![0; 65536];
                }
                let n = &mut self.ports[usize::from(p)];
                if *n == 0 {
                    self.seen_ports.push(p);
                }
                *n = n.saturating_add(1);
            }
        }
        if r.pid != 0 {
            match &mut self.run {
                Some((c, n)) if *c == r.comm => *n += 1,
                run => {
                    if let Some((c, n)) = run.replace((r.comm, 1)) {
                        *self.comms.entry(c).or_default() += n;
                    }
                }
            }
        }
    }

    /// (port, events) for every port seen.
    fn port_counts(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.seen_ports
            .iter()
            .map(|&p| (p, u64::from(self.ports[usize::from(p)])))
    }

    /// (command, events) for every command seen.
    fn comm_counts(&self) -> FxMap<[u8; 16], u64> {
        let mut m = self.comms.clone();
        if let Some((c, n)) = self.run {
            *m.entry(c).or_default() += n;
        }
        m
    }
}

fn overload_message(
    lost: u64,
    written: u64,
    dt: Duration,
    w: &Window,
    ring_bytes: u32,
    now: &Counters,
    before: &Counters,
) -> String {
    let rate = (written + lost) as f64 / dt.as_secs_f64().max(0.001);
    let kinds: Vec<String> = Kind::ALL
        .iter()
        .filter_map(|k| {
            let l = now.lost[*k as usize].saturating_sub(before.lost[*k as usize]);
            (l > 0).then(|| format!("{} {l}", k.name()))
        })
        .collect();
    let mut m = format!(
        "{lost} events lost in the last {:.1} s ({}): the ring buffer ({} MiB) filled faster than sockscope \
         read it, at {:.0} events/s.",
        dt.as_secs_f64(),
        kinds.join(", "),
        (if ring_bytes == 0 {
            8 << 20
        } else {
            ring_bytes.next_power_of_two()
        }) >> 20,
        rate
    );
    let mut hints = Vec::new();
    if w.total > 0 {
        if let Some((p, n)) = w
            .port_counts()
            .max_by_key(|(p, n)| (*n, std::cmp::Reverse(*p)))
        {
            hints.push(format!(
                "--port {p} keeps {:.0}% of them",
                100.0 * n as f64 / w.total as f64
            ));
        }
        if let Some((c, n)) = w
            .comm_counts()
            .into_iter()
            .max_by_key(|(c, n)| (*n, std::cmp::Reverse(*c)))
        {
            hints.push(format!(
                "--comm {} keeps {:.0}%",
                crate::abi::comm_str(&c),
                100.0 * n as f64 / w.total as f64
            ));
        }
        if w.data * 2 > w.total {
            hints.push(format!(
                "--no-data leaves out the send/recv events ({:.0}% of the volume)",
                100.0 * w.data as f64 / w.total as f64
            ));
        }
    }
    hints.push("--buffer-mb raises the ring buffer".into());
    m.push_str(" Filter in the kernel to cut the volume: ");
    m.push_str(&hints.join("; "));
    m
}

fn take_snapshot(target: &NetnsTarget) -> Result<sockscope::snapshot::Snapshot, String> {
    let namespaces = netns::open(target).map_err(|e| e.to_string())?;
    let req = Request::all_states(&[SrcKind::Tcp, SrcKind::Udp]);
    let tolerant = *target == NetnsTarget::All;
    sockscope::snapshot::snapshot(&namespaces, &req, true, true, tolerant)
        .map_err(|e| e.to_string())
}

/// Owners of sockets that existed at start, for the kernel's maps.
fn seed(cfg: &mut Config, sockets: &[sockscope::model::Socket]) {
    for s in sockets {
        let Some(o) = s.owners.first() else { continue };
        let owner = SeedOwner {
            pid: o.pid,
            fd: i32::try_from(o.fd).unwrap_or(-1),
            comm: o.comm.clone(),
        };
        if let Some(c) = s.cookie {
            cfg.cookie_owners.push((c, owner.clone()));
        }
        if s.proto == Proto::Tcp
            && s.state == State::Listen
            && let (Some(ns), Some(port)) = (s.netns.as_ref(), s.local.port())
            && let Ok(ino) = u32::try_from(ns.inode)
        {
            cfg.listeners.push((ino, port, owner));
        }
    }
}

/// A sink that only counts (for benchmarks and tests).
#[derive(Default)]
pub struct CountSink {
    pub events: u64,
    pub finished: u64,
    pub warnings: Vec<String>,
}

impl Sink for CountSink {
    fn event(&mut self, e: &Event) -> io::Result<()> {
        if !matches!(e.what, What::TimeWaitCheck { .. }) {
            self.events += 1;
        }
        Ok(())
    }
    fn finished(&mut self, _c: Conn) -> io::Result<()> {
        self.finished += 1;
        Ok(())
    }
    fn warn(&mut self, msg: &str) {
        self.warnings.push(msg.to_string());
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_put_in_time_order() {
        let mut q = VecDeque::new();
        for (ts, sk) in [(10, 1), (30, 2), (20, 3), (30, 4), (5, 5)] {
            let mut r = crate::abi::RawEvent::decode(&sample(1, "x")).unwrap();
            r.ts_ns = ts;
            r.sk = sk;
            ordered_insert(&mut q, r);
        }
        let got: Vec<(u64, u64)> = q.iter().map(|r| (r.ts_ns, r.sk)).collect();
        assert_eq!(got, vec![(5, 5), (10, 1), (20, 3), (30, 2), (30, 4)]);
    }

    #[test]
    fn records_of_every_cpu_are_merged_in_time_order() {
        let mut q = Reorder::default();
        // Two CPUs' batches interleaved as the ring buffer holds them, a
        // record of one CPU a little out of order (an interrupted
        // program), and a CPU number past the last queue.
        let recs = [
            (0, 10, 1),
            (0, 20, 2),
            (0, 40, 3),
            (1, 15, 4),
            (1, 25, 5),
            (1, 35, 6),
            (0, 30, 7),
            (1, 5, 8),
            (5000, 22, 9),
            (5000, 12, 10),
        ];
        for (cpu, ts, sk) in recs {
            let mut r = crate::abi::RawEvent::decode(&sample(1, "x")).unwrap();
            r.cpu = cpu;
            r.ts_ns = ts;
            r.sk = sk;
            q.insert(r);
        }
        assert_eq!(q.len(), recs.len());
        let mut got = Vec::new();
        q.begin();
        while let Some(r) = q.first(30) {
            got.push((r.ts_ns, r.sk));
            q.pop_first();
        }
        assert_eq!(
            got,
            vec![
                (5, 8),
                (10, 1),
                (12, 10),
                (15, 4),
                (20, 2),
                (22, 9),
                (25, 5),
                (30, 7)
            ]
        );
        assert_eq!(q.len(), 2);
        // Later records go in; the rest comes out in order.
        let mut r = crate::abi::RawEvent::decode(&sample(1, "x")).unwrap();
        r.cpu = 1;
        r.ts_ns = 36;
        r.sk = 11;
        q.insert(r);
        q.begin();
        got.clear();
        while let Some(r) = q.first(u64::MAX) {
            got.push((r.ts_ns, r.sk));
            q.pop_first();
        }
        assert_eq!(got, vec![(35, 6), (36, 11), (40, 3)]);
        assert_eq!(q.len(), 0);
        assert!(q.first(u64::MAX).is_none());
    }

    #[test]
    fn overload_names_the_busiest_port_and_command() {
        let mut w = Window::default();
        let mut r = crate::abi::RawEvent::decode(&sample(8080, "nginx")).unwrap();
        for _ in 0..8 {
            w.count(&r);
        }
        r.sport = 9000;
        r.dport = 9001;
        r.kind = Kind::State;
        w.count(&r);
        w.count(&r);
        let mut now = Counters::default();
        now.lost[Kind::Send as usize] = 50;
        let m = overload_message(
            50,
            950,
            Duration::from_secs(1),
            &w,
            8 << 20,
            &now,
            &Counters::default(),
        );
        assert!(
            m.starts_with("50 events lost in the last 1.0 s (send 50): the ring buffer (8 MiB)"),
            "{m}"
        );
        assert!(m.contains("--port 8080 keeps 80% of them"), "{m}");
        assert!(m.contains("--comm nginx keeps 100%"), "{m}");
        assert!(
            m.contains("--no-data leaves out the send/recv events (80% of the volume)"),
            "{m}"
        );
    }

    fn sample(port: u16, comm: &str) -> [u8; crate::abi::EVENT_SIZE] {
        let mut c = [0u8; 16];
        c[..comm.len()].copy_from_slice(comm.as_bytes());
        crate::abi::RawEvent {
            kind: Kind::Send,
            family: 2,
            state: 1,
            sport: port,
            dport: 0,
            ts_ns: 1,
            sk: 1,
            cookie: 0,
            netns: 1,
            pid: 5,
            tid: 5,
            fd: 3,
            saddr: [0; 16],
            daddr: [0; 16],
            comm: c,
            owner_src: crate::abi::OwnerSrc::Task,
            protocol: 6,
            flags: 0,
            cpu: 0,
            body: [0; 72],
        }
        .encode()
    }
}
