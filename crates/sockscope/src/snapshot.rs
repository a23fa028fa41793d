//! Snapshots: the sockets of one or more namespaces read through the
//! sources, with their owners found by the fd-table scan running alongside
//! and joined to them. Sits above `source` (kernel I/O) and `join` (pure):
//! what commands, the live view and the exporter call to see the sockets.

use crate::model::{FdEntry, OwnerScan, ProcessInfo, Socket};
use crate::source::netns::OpenNetns;
use crate::source::{Kind, Request, SourceError, collect_each, owners, owners_bpf, owners_fdt};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, mpsc};

/// Sockets of one or more namespaces, with owners attached when asked.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub sockets: Vec<Socket>,
    /// Fallbacks taken, and namespaces that could not be read (with
    /// `NetnsTarget::All` these are reported, not fatal).
    pub notes: Vec<String>,
    /// The owner scan, when owners were asked for.
    pub owners: Option<OwnerScan>,
    /// What the user must hear about even without `-v`: namespaces that
    /// could not be read, rows left out.
    pub warnings: Vec<String>,
    /// Read while the owner scan ran (see [`Snapshot::read_ahead`]), for
    /// `explain::build_chain` to use instead of reading /proc again.
    pub read_ahead: ReadAhead,
}

/// Processes and fds of a port's owners, read while the owner walk ran.
#[derive(Debug, Default)]
pub struct ReadAhead {
    /// The processes holding the port's sockets (at most
    /// [`READ_AHEAD_MAX`]).
    pub processes: HashMap<u32, ProcessInfo>,
    /// The fds (pid, tid, fd) of the port's listeners (at most
    /// [`READ_AHEAD_MAX`]): a listener's chain shows every one.
    pub fds: HashMap<(u32, Option<u32>, u32), FdEntry>,
}

impl ReadAhead {
    /// Read process `pid` (once; up to [`READ_AHEAD_MAX`]). A process gone
    /// meanwhile is left out (read again, and missed again, when the chain
    /// is built).
    fn read_process(&mut self, root: &std::path::Path, pid: u32) {
        if self.processes.len() < READ_AHEAD_MAX
            && !self.processes.contains_key(&pid)
            && let Ok(p) = crate::source::process::read_process(root, pid)
        {
            self.processes.insert(pid, p);
        }
    }

    /// Read a listener's fd (pid, tid, fd), up to [`READ_AHEAD_MAX`].
    fn read_fd(&mut self, root: &std::path::Path, pid: u32, tid: Option<u32>, fd: u32) {
        if self.fds.len() < READ_AHEAD_MAX
            && let Ok(e) = crate::source::process::read_fd_at(root, pid, tid, fd)
        {
            self.fds.insert((pid, tid, fd), e);
        }
    }

    /// Take in what another thread read.
    fn merge(&mut self, other: ReadAhead) {
        for (pid, p) in other.processes {
            if self.processes.len() < READ_AHEAD_MAX {
                self.processes.entry(pid).or_insert(p);
            }
        }
        for (k, e) in other.fds {
            if self.fds.len() < READ_AHEAD_MAX {
                self.fds.entry(k).or_insert(e);
            }
        }
    }
}

/// Processes, and listener fds, [`snapshot_port`] reads ahead at most:
/// beyond, they are read as each chain is built.
pub const READ_AHEAD_MAX: usize = 1024;

impl Snapshot {
    /// While the owner walk goes on, read the processes it reports and
    /// the fds it finds holding one of the listeners this snapshot read
    /// (the dump is done: `sockets` is complete). Ends when the walk
    /// does. A process or fd gone meanwhile is left out (read again, and
    /// missed again, when the chain is built).
    ///
    /// With `shared` (the owner walk split by process between the two
    /// threads, see [`owners_bpf::Shared`]), this thread first takes
    /// processes from the top of the walk until none is left, reading
    /// what either thread found between them; its share is returned.
    fn read_ahead(
        &mut self,
        rx: mpsc::Receiver<Found>,
        shared: Option<&owners_bpf::Shared>,
    ) -> Option<Result<owners_bpf::Part, owners_bpf::BpfOwnerError>> {
        use crate::model::State;
        let root = std::path::Path::new("/proc");
        let listeners: HashSet<u64> = self
            .sockets
            .iter()
            .filter(|s| s.state == State::Listen)
            .map(|s| s.inode)
            .collect();
        let ra = &mut self.read_ahead;
        let mut read = |(pid, tid, fd, inode): Found| {
            ra.read_process(root, pid);
            if listeners.contains(&inode) {
                ra.read_fd(root, pid, (tid != 0).then_some(tid), fd);
            }
        };
        let helped = shared.map(|sh| {
            let mut part = owners_bpf::Part::default();
            let mut mine = Vec::new();
            loop {
                rx.try_iter().for_each(&mut read);
                let more = sh.step(true, &mut part, &mut |r| {
                    mine.push((r.pid, r.tid, r.fd, r.inode));
                });
                mine.drain(..).for_each(&mut read);
                match more {
                    Ok(true) => {}
                    Ok(false) => break Ok(part),
                    Err(e) => break Err(e),
                }
            }
        });
        rx.into_iter().for_each(read);
        helped
    }
}

/// A socket of the port as the dump reads it: (inode, is it a listener).
type Row = (u64, bool);

/// The owners of the port's sockets from a walk of every task's fd array
/// (`found`: every socket fd of the host), joined to the port's sockets as
/// the dump sends them over `rows` (until it ends), their processes and
/// the listeners' fds read ahead meanwhile.
fn join_rows(
    mut found: owners_fdt::Fds,
    rows: mpsc::Receiver<Row>,
    reads: &Reads,
) -> (OwnerScan, ReadAhead) {
    // The fds of each inode: sorted by inode, found by binary search.
    found.fds.sort_unstable_by_key(|f| f.inode);
    let mut keep = vec![false; found.fds.len()];
    let mut ra = ReadAhead::default();
    let (mut pids, mut fds) = (HashSet::new(), 0);
    let mut row = |(inode, listener): Row| {
        // Sockfs inode numbers are 32 bits; netlink's are too.
        let Ok(inode) = u32::try_from(inode) else {
            return;
        };
        let from = found.fds.partition_point(|f| f.inode < inode);
        for (i, f) in found.fds[from..]
            .iter()
            .enumerate()
            .take_while(|(_, f)| f.inode == inode)
        {
            if std::mem::replace(&mut keep[from + i], true) {
                continue;
            }
            let t = &found.tasks[f.task as usize];
            if pids.len() < READ_AHEAD_MAX && pids.insert(t.pid) {
                reads.push(Read::Process(t.pid));
            }
            if listener && fds < READ_AHEAD_MAX {
                fds += 1;
                let tid = (t.tid != t.pid).then_some(t.tid);
                reads.push(Read::Fd(t.pid, tid, f.fd));
            }
        }
    };
    // Rows first; between them, the reads they asked for.
    loop {
        match rows.try_recv() {
            Ok(r) => row(r),
            Err(mpsc::TryRecvError::Disconnected) => break,
            Err(mpsc::TryRecvError::Empty) => {
                if !reads.work_one(&mut ra) {
                    match rows.recv() {
                        Ok(r) => row(r),
                        Err(_) => break,
                    }
                }
            }
        }
    }
    // The dump is done: what is left is read by both threads.
    reads.close();
    reads.work(&mut ra);
    let kept = found
        .fds
        .iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(f, _)| found.record(f));
    let mut scan = owners_bpf::scan_of(kept);
    scan.via_bpf = true;
    (scan, ra)
}

/// One read ahead: a process, or a listener's fd (pid, tid, fd).
enum Read {
    Process(u32),
    Fd(u32, Option<u32>, u32),
}

/// The reads ahead of a port's owners, queued by the owner thread as it
/// joins the dump's rows and taken by it and, once its dump is done, by
/// the dump's thread. Closed when no more will come (also when the owner
/// thread ends without queuing any: see [`CloseOnDrop`]).
#[derive(Default)]
struct Reads {
    queue: std::sync::Mutex<(std::collections::VecDeque<Read>, bool)>,
    ready: std::sync::Condvar,
}

impl Reads {
    fn lock(&self) -> std::sync::MutexGuard<'_, (std::collections::VecDeque<Read>, bool)> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, r: Read) {
        self.lock().0.push_back(r);
        self.ready.notify_one();
    }

    fn close(&self) {
        self.lock().1 = true;
        self.ready.notify_all();
    }

    fn run(ra: &mut ReadAhead, r: Read) {
        let root = std::path::Path::new("/proc");
        match r {
            Read::Process(pid) => ra.read_process(root, pid),
            Read::Fd(pid, tid, fd) => ra.read_fd(root, pid, tid, fd),
        }
    }

    /// Do one queued read, if any is queued.
    fn work_one(&self, ra: &mut ReadAhead) -> bool {
        let next = self.lock().0.pop_front();
        next.map(|r| Self::run(ra, r)).is_some()
    }

    /// Do queued reads until the queue is closed and empty.
    fn work(&self, ra: &mut ReadAhead) {
        loop {
            let next = {
                let mut q = self.lock();
                loop {
                    if let Some(r) = q.0.pop_front() {
                        break Some(r);
                    }
                    if q.1 {
                        break None;
                    }
                    q = self.ready.wait(q).unwrap_or_else(|e| e.into_inner());
                }
            };
            match next {
                Some(r) => Self::run(ra, r),
                None => return,
            }
        }
    }
}

/// Closes the [`Reads`] when the owner thread ends, however it ends, so
/// the dump's thread never waits for reads that will not come.
struct CloseOnDrop(Arc<Reads>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// A socket fd the port's owner walk found: (pid, tid or 0, fd, inode).
type Found = (u32, u32, u32, u64);

/// Read `req` from every namespace in `namespaces` and, when `want_owners`,
/// scan every fd table at the same time and attach owners. With `tolerant`,
/// a namespace that cannot be read is noted instead of failing the whole
/// snapshot (used for --all-netns, where namespaces come and go).
pub fn snapshot(
    namespaces: &[OpenNetns],
    req: &Request,
    label: bool,
    want_owners: bool,
    tolerant: bool,
) -> Result<Snapshot, SourceError> {
    snapshot_port(namespaces, req, label, want_owners, tolerant, None)
}

/// Read `req` from every namespace in `namespaces`, handing each socket to
/// `each` as it is read (no owners: a caller folding sockets attaches
/// them from its own owner table). The returned snapshot has the notes
/// and warnings, no sockets. `tolerant` as in [`snapshot`].
pub fn snapshot_each(
    namespaces: &[OpenNetns],
    req: &Request,
    label: bool,
    tolerant: bool,
    each: &mut (dyn FnMut(Socket) + Send),
) -> Result<Snapshot, SourceError> {
    let mut snap = Snapshot::default();
    for ns in namespaces {
        match crate::source::each(ns, req, label, each) {
            Ok(c) => {
                for n in c.notes {
                    if !snap.notes.contains(&n) {
                        snap.notes.push(n);
                    }
                }
                snap.warnings.extend(c.warnings);
            }
            Err(e) if tolerant => snap
                .warnings
                .push(format!("namespace {} left out: {e}", ns.id)),
            Err(e) => return Err(e),
        }
    }
    Ok(snap)
}

/// Start the owner scan in a thread of `s`, to run alongside the dump.
///
/// With `local_port` and no UNIX sockets asked for, every row will be a
/// socket bound to that port, so the kernel program reports only those
/// sockets' fds ([`owners::plan_port`]); the program depends on the port,
/// so it is loaded in the scan's thread, beside the dump (BTF is streamed
/// through a small buffer). Otherwise the full scan is decided (and its
/// program loaded, once per process) before the dump allocates, then run
/// alongside it.
///
/// With `seen`, the port scan sends each fd as it finds it: (pid, tid or
/// 0, fd, inode) (see [`snapshot_port`]); the sender is dropped when the
/// scan ends.
fn scan_owners<'scope>(
    s: &'scope std::thread::Scope<'scope, '_>,
    req: &Request,
    local_port: Option<u16>,
    seen: Option<mpsc::Sender<Found>>,
    share: Option<mpsc::Sender<Arc<owners_bpf::Shared>>>,
    rows: Option<(mpsc::Receiver<Row>, Arc<Reads>)>,
) -> std::thread::ScopedJoinHandle<'scope, Scanned> {
    match local_port.filter(|_| !req.kinds.contains(&Kind::Unix)) {
        Some(port) => s.spawn(move || {
            // Every task's fd array, walked by the kernel while the dump
            // runs, then joined to the port's sockets as the dump reads
            // them (see `join_rows`).
            let mut fdt_failed = None;
            let rows = rows.map(|(rx, reads)| (rx, CloseOnDrop(reads)));
            if owners::may_bpf().is_ok() && !owners_bpf::noop() && owners_fdt::enabled() {
                let walk = owners_fdt::prepare();
                match (walk, rows) {
                    (Ok(w), Some((rows, reads))) => match w.run_fds() {
                        Ok(found) => {
                            let (scan, ra) = join_rows(found, rows, &reads.0);
                            return Scanned::Joined(scan, ra);
                        }
                        Err(e) => fdt_failed = Some(e),
                    },
                    // No rows to join as they come (`ls` streaming a
                    // port's rows): every owner, from the same walk,
                    // which costs less than the port's task_file walk.
                    (Ok(w), None) => return Scanned::Done(owners::Plan::Fdt(w).run()),
                    (Err(e), _) => fdt_failed = Some(e),
                }
            } else {
                // No join, no reads ahead: closed now, so that the dump's
                // thread does not wait for them (it takes its share of the
                // walk below instead).
                drop(rows);
            }
            let walk_port = move || -> Scanned {
                let mut tell = |r: &owners_bpf::Record| {
                    if let Some(tx) = &seen {
                        let _ = tx.send((r.pid, r.tid, r.fd, r.inode));
                    }
                };
                let pp = owners::plan_port(port);
                let plan = match (pp, share) {
                    (owners::Plan::BpfFiltered(l), Some(share)) => match owners_bpf::Shared::new(l)
                    {
                        Ok(sh) => {
                            let sh = Arc::new(sh);
                            let _ = share.send(Arc::clone(&sh));
                            drop(share);
                            let w = sh.work(false, &mut tell);
                            return match w {
                                Ok(part) => Scanned::Split(sh, part),
                                Err(e) => Scanned::Done(whole_instead(&sh, e, &mut tell)),
                            };
                        }
                        Err(l) => owners::Plan::BpfFiltered(l),
                    },
                    // The sender (if any) is dropped here: the dump's thread
                    // does not wait for a walk it cannot share.
                    (plan, _) => plan,
                };
                Scanned::Done(plan.run_with(&mut tell))
            };
            let scanned = walk_port();
            match fdt_failed {
                Some(e) => Scanned::Instead(
                    Box::new(scanned),
                    format!("owners: the fd-array walk failed ({e})"),
                ),
                None => scanned,
            }
        }),
        None => {
            let plan = owners::plan();
            s.spawn(move || Scanned::Done(plan.run()))
        }
    }
}

/// What the owner scan's thread hands back: the scan, or its share of a
/// walk split with the dump's thread (see [`owners_bpf::Shared`]).
enum Scanned {
    Done(OwnersResult),
    /// The port's owners from the fd-array walk, and what was read ahead.
    Joined(OwnerScan, ReadAhead),
    /// What was done when the fd-array walk failed, and why it failed.
    Instead(Box<Scanned>, String),
    Split(Arc<owners_bpf::Shared>, owners_bpf::Part),
}

impl Scanned {
    /// The scan, given the dump thread's share of a split walk (None if it
    /// took none).
    fn finish(
        self,
        helped: Option<Result<owners_bpf::Part, owners_bpf::BpfOwnerError>>,
    ) -> OwnersResult {
        match self {
            Scanned::Done(r) => r,
            Scanned::Instead(done, why) => done.finish(helped).map(|(scan, how)| {
                let how = match how {
                    Some(how) => format!("{why}; {how}"),
                    None => why,
                };
                (scan, Some(how))
            }),
            Scanned::Joined(scan, _) => Ok((scan, Some(owners::FDT_NOTE.into()))),
            Scanned::Split(sh, part) => match helped.transpose() {
                Ok(other) => {
                    let (scan, _) = owners::bpf(Ok(owners_bpf::join_parts(vec![
                        part,
                        other.unwrap_or_default(),
                    ])))?;
                    let how = format!(
                        "owners: the port's walk split by process between two threads ({} processes)",
                        sh.processes()
                    );
                    Ok((scan, Some(how)))
                }
                Err(e) => whole_instead(&sh, e, &mut |_| {}),
            },
        }
    }
}

/// When a process could not be walked alone: one walk of every process
/// instead (what either thread found by then is not used), said with -v.
fn whole_instead(
    sh: &owners_bpf::Shared,
    e: owners_bpf::BpfOwnerError,
    seen: &mut dyn FnMut(&owners_bpf::Record),
) -> OwnersResult {
    let (scan, why) = owners::bpf(sh.whole(seen))?;
    let why = why.unwrap_or_else(|| {
        format!("owners: one walk of every process (walking them one by one failed: {e})")
    });
    Ok((scan, Some(why)))
}

/// Said (without -v) when a benchmark's setting made the BPF owner walk
/// read nothing: every row is then without owners, and must not look
/// like an answer.
fn noop_warning(scan: &OwnerScan) -> Option<String> {
    (scan.via_bpf && owners_bpf::noop()).then(|| {
        format!(
            "{} is set: the owner walk read no socket and found no owner (a benchmark setting; unset it)",
            owners_bpf::ENV_NOOP
        )
    })
}

type OwnersResult = Result<(OwnerScan, Option<String>), owners::OwnerError>;

/// [`snapshot`] with the local-port filter of [`collect_here_port`].
pub fn snapshot_port(
    namespaces: &[OpenNetns],
    req: &Request,
    label: bool,
    want_owners: bool,
    tolerant: bool,
    local_port: Option<u16>,
) -> Result<Snapshot, SourceError> {
    std::thread::scope(|s| {
        // The owners of a port's sockets are few and every one is shown
        // (`who`, the detail pane of `top`): they are read here, on this
        // thread, once its dump is done, while the owner walk goes on in
        // the other (see `Snapshot::read_ahead`).
        // When the walk can be split by process, this thread takes its
        // share once its dump is done (the scan's thread sends it the
        // walk, or drops the sender if it runs the walk whole).
        let (seen, found, share, shared) = match local_port {
            Some(_) if want_owners => {
                let (tx, rx) = mpsc::channel();
                let (share_tx, share_rx) = mpsc::channel();
                (Some(tx), Some(rx), Some(share_tx), Some(share_rx))
            }
            _ => (None, None, None, None),
        };
        // The port's sockets, sent to the owner thread as they are read
        // (used by the fd-array walk's join; dropped by the other walks).
        let (rows_tx, rows_rx, reads) = match &found {
            Some(_) => {
                let (tx, rx) = mpsc::channel::<Row>();
                let reads = Arc::new(Reads::default());
                (Some(tx), Some((rx, Arc::clone(&reads))), Some(reads))
            }
            None => (None, None, None),
        };
        let scan = want_owners.then(|| scan_owners(s, req, local_port, seen, share, rows_rx));
        let mut snap = Snapshot::default();
        let mut err = None;
        let mut rows_tx = rows_tx;
        for ns in namespaces {
            let mut sockets = Vec::new();
            let got = collect_each(ns, req, label, local_port, &mut |sock: Socket| {
                if let Some(tx) = &rows_tx
                    && sock.inode != 0
                    && tx
                        .send((sock.inode, sock.state == crate::model::State::Listen))
                        .is_err()
                {
                    rows_tx = None;
                }
                sockets.push(sock);
                true
            });
            match got {
                Ok(c) => {
                    // Move the first namespace's sockets: copying tens of
                    // thousands of them would double peak memory.
                    if snap.sockets.is_empty() {
                        snap.sockets = sockets;
                    } else {
                        snap.sockets.extend(sockets);
                    }
                    for n in c.notes {
                        if !snap.notes.contains(&n) {
                            snap.notes.push(n);
                        }
                    }
                    snap.warnings.extend(c.warnings);
                }
                Err(e) if tolerant => snap
                    .warnings
                    .push(format!("namespace {} left out: {e}", ns.id)),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        // The dump is done: the owner thread's join can end; this thread
        // helps with the reads it queued (none unless it walked the fd
        // arrays).
        drop(rows_tx);
        let mut helped_reads = ReadAhead::default();
        if let Some(reads) = &reads {
            reads.work(&mut helped_reads);
        }
        let mut helped = None;
        if let Some(rx) = found {
            let shared = shared.and_then(|r| r.recv().ok());
            helped = snap.read_ahead(rx, shared.as_deref());
        }
        if let Some(h) = scan {
            let scan = h
                .join()
                .map(|mut scanned| {
                    if let Scanned::Joined(_, ra) = &mut scanned {
                        let mut ra = std::mem::take(ra);
                        ra.merge(std::mem::take(&mut helped_reads));
                        snap.read_ahead = ra;
                    }
                    scanned.finish(helped)
                })
                .unwrap_or_else(|_| Ok((OwnerScan::default(), None)));
            match scan {
                Ok((mut scan, why_not_bpf)) => {
                    snap.warnings.extend(noop_warning(&scan));
                    crate::join::take_owners(&mut snap.sockets, &mut scan);
                    snap.owners = Some(scan);
                    snap.notes.extend(why_not_bpf);
                }
                Err(e) => snap.notes.push(e.to_string()),
            }
        }
        match err {
            Some(e) => Err(e),
            None => Ok(snap),
        }
    })
}

/// Rows per batch handed from the dump thread to the caller of [`stream`].
pub const BATCH: usize = 1024;

/// Threads reading namespaces at once (`--all-netns`): each dump walks the
/// kernel's shared TCP tables whole, so two namespaces read side by side
/// use both CPUs of a small machine.
pub const READERS: usize = 2;

/// Batches a dump thread may run ahead of the caller: while the owner
/// scan runs (it must finish before the first row can be joined) the dump
/// fills this many, then waits. Bounds the rows held at once to
/// `BATCH * (QUEUE + 2)` whatever the size of the table.
pub const QUEUE: usize = 24;

/// [`snapshot_port`] without holding the table: a dump thread reads the
/// namespaces in order and sends batches of [`BATCH`] rows over a bounded
/// channel while the owner scan runs in a second thread; this thread waits
/// for the scan, attaches owners to each batch and hands it to `rows`
/// (which may drain it; it is dropped after). The order of
/// the rows is that of [`snapshot_port`]. When `rows` returns false
/// (output closed, say) the dump stops. An error reading a namespace
/// (without `tolerant`) ends the stream after the rows already handed
/// over. The returned [`Snapshot`] has
/// empty `sockets` and carries the notes, warnings and owner counts, to be
/// reported after the rows.
pub fn stream(
    namespaces: &[OpenNetns],
    req: &Request,
    label: bool,
    want_owners: bool,
    tolerant: bool,
    local_port: Option<u16>,
    mut rows: impl FnMut(&mut Vec<Socket>) -> bool,
) -> Result<Snapshot, SourceError> {
    use std::sync::atomic::{AtomicBool, Ordering};
    // Set (before its channel closes) when a namespace failed and the
    // stream must end there.
    let failed = &AtomicBool::new(false);
    std::thread::scope(|s| {
        let scan = want_owners.then(|| scan_owners(s, req, local_port, None, None, None));
        // One channel per namespace, read in order; the namespaces are
        // dealt to READERS dump threads, each reading its share in order.
        // A reader can run ahead by QUEUE batches of its namespace, so
        // while one namespace is written the next is being read.
        let (txs, rxs): (Vec<_>, Vec<_>) = namespaces
            .iter()
            .map(|_| mpsc::sync_channel::<Vec<Socket>>(QUEUE))
            .unzip();
        let readers = READERS.min(namespaces.len()).max(1);
        let mut shares: Vec<Vec<(usize, mpsc::SyncSender<Vec<Socket>>)>> =
            (0..readers).map(|_| Vec::new()).collect();
        for (i, tx) in txs.into_iter().enumerate() {
            shares[i % readers].push((i, tx));
        }
        let dumps: Vec<_> = shares
            .into_iter()
            .map(|share| {
                s.spawn(move || {
                    let mut done = Vec::new();
                    for (i, tx) in share {
                        let mut batch = Vec::with_capacity(BATCH);
                        let mut open = true;
                        let r = collect_each(&namespaces[i], req, label, local_port, &mut |sock| {
                            batch.push(sock);
                            if batch.len() == BATCH {
                                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                                open = tx.send(full).is_ok();
                            }
                            open
                        });
                        if r.is_err() && !tolerant {
                            failed.store(true, Ordering::SeqCst);
                        } else if open && !batch.is_empty() {
                            open = tx.send(batch).is_ok();
                        }
                        done.push((i, r));
                        if !open || failed.load(Ordering::SeqCst) {
                            break;
                        }
                    }
                    done
                })
            })
            .collect();
        // Owners first: no row can be joined before the scan is complete.
        let mut scan = scan.map(|h| {
            h.join()
                .map(|scanned| scanned.finish(None))
                .unwrap_or_else(|_| Ok((OwnerScan::default(), None)))
        });
        let mut notes = Vec::new();
        if let Some(Err(e)) = &scan {
            notes.push(e.to_string());
        }
        let owners = match &mut scan {
            Some(Ok((o, why_not_bpf))) => {
                notes.extend(why_not_bpf.take());
                Some(o)
            }
            _ => None,
        };
        'namespaces: for rx in rxs {
            for mut batch in rx {
                if let Some(o) = &owners {
                    crate::join::attach_owners(&mut batch, o);
                }
                if !rows(&mut batch) {
                    break 'namespaces;
                }
            }
            if failed.load(Ordering::SeqCst) {
                break;
            }
        }
        // The loops owned the receivers: dropped now, they stop the dumps
        // still running after `rows` refused more.
        let mut done = Vec::new();
        let mut panicked = false;
        for h in dumps {
            match h.join() {
                Ok(d) => done.extend(d),
                Err(_) => panicked = true,
            }
        }
        done.sort_by_key(|d| d.0);
        let mut snap = Snapshot::default();
        if let Some(o) = &owners {
            snap.warnings.extend(noop_warning(o));
        }
        let mut err = panicked.then(|| {
            SourceError::Netns(crate::source::netns::NetnsError::Io {
                what: "socket dump".into(),
                source: std::io::Error::other("dump thread panicked"),
            })
        });
        for (i, r) in done {
            match r {
                Ok(c) => {
                    for n in c.notes {
                        if !snap.notes.contains(&n) {
                            snap.notes.push(n);
                        }
                    }
                    snap.warnings.extend(c.warnings);
                }
                Err(e) if tolerant => snap
                    .warnings
                    .push(format!("namespace {} left out: {e}", namespaces[i].id)),
                Err(e) => {
                    err.get_or_insert(e);
                }
            }
        }
        snap.notes.extend(notes);
        if let Some(Ok((mut o, _))) = scan {
            o.clear();
            snap.owners = Some(o);
        }
        match err {
            Some(e) => Err(e),
            None => Ok(snap),
        }
    })
}
