//! What `top` reads each refresh, through the library: one snapshot of
//! every TCP socket with tcp_info and owners, the namespaces' counters, and
//! the rates `sockscope::live` computes from successive snapshots.

use super::views::View;
use crate::Fail;
use sockscope::live::{self, Frame, ListenerRow, NsRow, OwnerCache, ProcRow, RowStatus, Tracker};
use sockscope::model::Netns;
use sockscope::query::Filter;
use sockscope::source::counters::Counters;
use sockscope::source::netns::{NetnsTarget, OpenNetns};
use sockscope::source::owners;
use sockscope::source::{Kind, Request};
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// Everything the views show after one refresh.
#[derive(Default)]
pub struct Data {
    pub frame: Frame,
    /// Indices of `frame` rows that pass the filter.
    pub visible: Vec<usize>,
    pub processes: Vec<ProcRow>,
    pub listeners: Vec<ListenerRow>,
    pub namespaces: Vec<NsRow>,
    /// Namespace inode -> counters per second.
    pub rates: HashMap<u64, BTreeMap<String, f64>>,
    /// Warnings of the last snapshot (namespaces left out, ...).
    pub warnings: Vec<String>,
    /// How long the last refresh took.
    pub took_ms: f64,
    pub refreshes: u64,
    /// How many times the fd tables were walked.
    pub owner_walks: u64,
}

pub struct Sampler {
    pub namespaces: Vec<OpenNetns>,
    pub target: NetnsTarget,
    req: Request,
    tracker: Tracker,
    owners: OwnerCache,
    counters: HashMap<u64, (Counters, f64)>,
    start: Instant,
    pub filter: Filter,
    /// What the last owner walk could not read (said, not printed: stderr
    /// is the screen in the live view).
    denied: Option<String>,
}

fn denied(scan: &sockscope::model::OwnerScan, out: &mut Option<String>) {
    *out = (scan.denied > 0).then(|| {
        format!(
            "could not read the fd tables of {} of {} processes, so their sockets show no owner; \
run as root (or with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH) to see every owner",
            scan.denied, scan.processes
        )
    });
}

impl Sampler {
    pub fn new(target: NetnsTarget, filter: Filter) -> Result<Sampler, Fail> {
        let namespaces = crate::cmd::open_netns(&target).map_err(Fail::from)?;
        let mut tracker = Tracker::new(3.0);
        tracker.strip_tcp_info = true;
        Ok(Sampler {
            namespaces,
            target,
            req: Request::all_states(&[Kind::Tcp]).tcp_info(),
            tracker,
            owners: OwnerCache::new(10.0),
            counters: HashMap::new(),
            start: Instant::now(),
            filter,
            denied: None,
        })
    }

    /// Rows carry their namespace only when there are several: one label
    /// per socket is one allocation per socket per refresh.
    pub fn label(&self) -> bool {
        self.namespaces.len() > 1
    }

    /// The namespace unlabelled rows belong to.
    pub fn default_netns(&self) -> Netns {
        self.namespaces
            .first()
            .map(|n| n.id.clone())
            .unwrap_or(Netns {
                inode: 0,
                name: None,
            })
    }

    /// Read the kernel once and fold it into `data`; compute the rows of
    /// `views` (the others are computed when they are shown: on a large
    /// host relating 40 000 connections to their listeners is not free).
    pub fn refresh(&mut self, data: &mut Data, views: &[View]) -> Result<(), Fail> {
        let t0 = Instant::now();
        // The fd tables every 10 s, walked before the dump so that the
        // walk and the dump are not in memory together; again after the
        // dump only when a socket appeared that no walk has seen. The very
        // first walk (which also loads the BPF iterator) runs alongside
        // the first dump instead, so the first screen waits for the
        // longer of the two, not for both.
        let first = self.owners.scan().is_none();
        let mut walked = false;
        let mut notes = Vec::new();
        let now = self.start.elapsed().as_secs_f64();
        if !first && self.owners.is_old(now) {
            match owners::scan_auto() {
                Ok((scan, _why)) => {
                    denied(&scan, &mut self.denied);
                    self.owners.replace(scan, now);
                    walked = true;
                }
                Err(e) => notes.push(e.to_string()),
            }
            data.owner_walks += 1;
        }
        // Fold the sockets into the frame while the dump runs: the table
        // is never held twice, and tcp_info lives only until its rates are
        // taken. Sockets seen before keep their owners (moved, not
        // copied); the others take theirs from the last walk. A socket no
        // walk has seen is noted, and makes a walk after the dump.
        let now = self.start.elapsed().as_secs_f64();
        let label = self.label();
        let cache = &self.owners;
        let tracker = &mut self.tracker;
        let (namespaces, req) = (&self.namespaces, &self.req);
        let tolerant = self.target == NetnsTarget::All;
        let frame = &mut data.frame;
        let mut unseen = false;
        let (snap, first_walk) = std::thread::scope(|sc| {
            let walk = first.then(|| sc.spawn(owners::scan_auto));
            let mut fold = tracker.begin(frame, now, !walked, 0);
            let snap =
                sockscope::snapshot::snapshot_each(namespaces, req, label, tolerant, &mut |s| {
                    unseen |= !cache.knows(s.inode);
                    fold.push(s, |s| cache.attach_one(s));
                });
            fold.finish();
            (snap, walk.map(|h| h.join()))
        });
        let snap = snap.map_err(Fail::from)?;
        data.warnings = snap.warnings;
        data.warnings.extend(notes);
        if let Some(walk) = first_walk {
            match walk {
                Ok(Ok((scan, _why))) => {
                    denied(&scan, &mut self.denied);
                    self.owners.store(scan, &data.frame.sockets, now);
                    self.owners.refresh_owners(&mut data.frame);
                }
                Ok(Err(e)) => data.warnings.push(e.to_string()),
                Err(_) => data
                    .warnings
                    .push("the owner walk failed (panicked)".into()),
            }
            data.owner_walks += 1;
        } else if walked {
            // Just walked: what it did not see has no owner (a socket made
            // in the few ms between the walk and the dump waits for the
            // next walk).
            self.owners.store_known(&data.frame.sockets);
        } else if unseen || self.owners.is_old(now) {
            match owners::scan_auto() {
                Ok((scan, _why)) => {
                    denied(&scan, &mut self.denied);
                    self.owners.store(scan, &data.frame.sockets, now);
                    self.owners.refresh_owners(&mut data.frame);
                }
                Err(e) => data.warnings.push(e.to_string()),
            }
            data.owner_walks += 1;
        }
        data.warnings.extend(self.denied.clone());
        let mut rates = HashMap::new();
        for ns in &self.namespaces {
            // The namespace's counters as `listeners` reads them.
            let (c, _somaxconn) = sockscope::report::listeners::read_ns(ns);
            if c.0.is_empty() {
                continue;
            }
            let r = match self.counters.get(&ns.id.inode) {
                Some((before, t)) => live::counter_rates(&c, before, now - t, live::RATE_COUNTERS),
                None => BTreeMap::new(),
            };
            rates.insert(ns.id.inode, r);
            self.counters.insert(ns.id.inode, (c, now));
        }
        data.rates = rates;
        for v in views {
            self.derive(data, *v);
        }
        self.apply_filter(data);
        // Give freed memory back every 10th refresh (and after the first)
        // rather than let the heap grow with fragments; trimming walks the
        // whole heap, too dear to do every second.
        if data.refreshes.is_multiple_of(10) {
            crate::sys::malloc_trim();
        }
        data.took_ms = t0.elapsed().as_secs_f64() * 1000.0;
        data.refreshes += 1;
        Ok(())
    }

    /// The rows of one view, from the last refresh.
    pub fn derive(&self, data: &mut Data, view: View) {
        match view {
            View::Connections => {}
            View::Processes => data.processes = live::processes(&data.frame),
            View::Listeners => {
                let open = data
                    .frame
                    .info
                    .iter()
                    .take_while(|i| i.status != RowStatus::Closed)
                    .count();
                // The library's listener report (as `listeners` prints it);
                // the namespace counters are read at each refresh above.
                let report =
                    sockscope::report::listeners::build(&data.frame.sockets[..open], vec![], None);
                data.listeners = live::listener_rows(report.listeners, &data.frame);
                data.listeners
                    .retain(|l| self.filter.is_empty() || self.filter.matches(&l.listener));
                // The namespace counters under the table.
                self.derive(data, View::Namespaces);
            }
            View::Namespaces => {
                data.namespaces = live::namespaces(&data.frame, &self.default_netns(), &data.rates)
            }
        }
    }

    /// Recompute which connection rows pass the filter.
    pub fn apply_filter(&self, data: &mut Data) {
        data.visible = if self.filter.is_empty() {
            (0..data.frame.sockets.len()).collect()
        } else {
            data.frame
                .sockets
                .iter()
                .enumerate()
                .filter(|(_, s)| self.filter.matches(s))
                .map(|(i, _)| i)
                .collect()
        };
    }
}
