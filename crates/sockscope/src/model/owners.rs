//! The owners of sockets as plain data: every (socket inode, process fd)
//! pair found by one scan of the fd tables. Filled by `source::owners`
//! (the /proc walk) or `source::owners_bpf` (the BPF iterator).
//!
//! The table is flat and compact: one 24-byte [`Entry`] per socket fd,
//! sorted by inode, and one [`Task`] (command name, uid) per process (or
//! per thread with an fd table of its own) that the entries point to. A
//! scan of 40 000 sockets is one allocation of about 1 MB, not 40 000
//! owners each with a heap-allocated command name. [`OwnerScan::owners`]
//! builds [`Owner`] values when a caller wants them; [`OwnerScan::owner_refs`],
//! [`OwnerScan::pids`] and [`OwnerScan::has`] answer without allocating.

use super::Owner;
use std::collections::HashMap;

/// One socket fd: 24 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub inode: u64,
    pub pid: u32,
    pub fd: u32,
    /// The thread whose fd table holds the fd; 0 when it is the process's
    /// main table (see [`Owner::tid`]).
    pub tid: u32,
    /// Index of the process (or thread) in the scan's task table.
    task: u32,
}

/// What is the same for every fd of one process (or one thread with its
/// own fd table).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Task {
    comm: Box<str>,
    uid: Option<u32>,
}

/// One owner, borrowed from the scan (no allocation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnerRef<'a> {
    pub pid: u32,
    pub fd: u32,
    pub tid: Option<u32>,
    pub comm: &'a str,
    pub uid: Option<u32>,
}

impl OwnerRef<'_> {
    pub fn to_owner(&self) -> Owner {
        Owner {
            pid: self.pid,
            fd: self.fd,
            comm: self.comm.to_string(),
            uid: self.uid,
            tid: self.tid,
        }
    }
}

/// The result of one scan of every process's fd table, sorted by inode,
/// then pid, then fd: looking up an inode is a binary search.
#[derive(Debug, Default)]
pub struct OwnerScan {
    entries: Vec<Entry>,
    tasks: Vec<Task>,
    index: InodeIndex,
    /// Processes whose fd table could not be read for lack of privilege.
    pub denied: usize,
    /// Processes looked at.
    pub processes: usize,
    /// True when the BPF iterator produced the scan (false: /proc walk).
    pub via_bpf: bool,
}

/// Collects a scan: fds are pushed in any order, with the command name and
/// uid of their process; names are stored once per (pid, tid).
#[derive(Debug, Default)]
pub struct OwnerScanBuilder {
    entries: Vec<Entry>,
    tasks: Vec<Task>,
    index: HashMap<(u32, u32), u32>,
    /// The last task pushed: fds arrive grouped by process.
    last: Option<((u32, u32), u32)>,
}

impl OwnerScanBuilder {
    pub fn with_capacity(n: usize) -> OwnerScanBuilder {
        OwnerScanBuilder {
            entries: Vec::with_capacity(n),
            ..Default::default()
        }
    }

    /// Is the task (pid, tid) known already? Then [`Self::push`] ignores
    /// the name and uid it is given, and the caller may skip reading them.
    pub fn knows(&self, pid: u32, tid: Option<u32>) -> bool {
        let key = (pid, tid.unwrap_or(0));
        self.last.is_some_and(|(k, _)| k == key) || self.index.contains_key(&key)
    }

    /// Add one socket fd. `comm` and `uid` are kept from the first fd of
    /// each (pid, tid).
    pub fn push(
        &mut self,
        inode: u64,
        pid: u32,
        fd: u32,
        tid: Option<u32>,
        comm: &str,
        uid: Option<u32>,
    ) {
        let tid = tid.unwrap_or(0);
        let task = match self.last {
            Some((k, t)) if k == (pid, tid) => t,
            _ => {
                let tasks = &mut self.tasks;
                let t = *self.index.entry((pid, tid)).or_insert_with(|| {
                    tasks.push(Task {
                        comm: comm.into(),
                        uid,
                    });
                    (tasks.len() - 1) as u32
                });
                self.last = Some(((pid, tid), t));
                t
            }
        };
        self.entries.push(Entry {
            inode,
            pid,
            fd,
            tid,
            task,
        });
    }

    /// Add every fd of another builder (a thread's share of a /proc walk).
    pub fn append(&mut self, other: OwnerScanBuilder) {
        let mut map = vec![0u32; other.tasks.len()];
        for (&(pid, tid), &i) in &other.index {
            let t = &other.tasks[i as usize];
            let tasks = &mut self.tasks;
            map[i as usize] = *self.index.entry((pid, tid)).or_insert_with(|| {
                tasks.push(t.clone());
                (tasks.len() - 1) as u32
            });
        }
        self.last = None;
        self.entries.extend(other.entries.into_iter().map(|mut e| {
            e.task = map[e.task as usize];
            e
        }));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sort and seal.
    pub fn finish(mut self, denied: usize, processes: usize) -> OwnerScan {
        self.entries
            .sort_unstable_by_key(|e| (e.inode, e.pid, e.fd, e.tid));
        self.entries.shrink_to_fit();
        OwnerScan {
            index: InodeIndex::build(&self.entries),
            entries: self.entries,
            tasks: self.tasks,
            denied,
            processes,
            via_bpf: false,
        }
    }
}

impl OwnerScan {
    /// Build from unsorted (inode, owner) pairs.
    pub fn from_pairs(pairs: Vec<(u64, Owner)>, denied: usize, processes: usize) -> OwnerScan {
        let mut b = OwnerScanBuilder::with_capacity(pairs.len());
        for (inode, o) in &pairs {
            b.push(*inode, o.pid, o.fd, o.tid, &o.comm, o.uid);
        }
        b.finish(denied, processes)
    }

    fn range(&self, inode: u64) -> &[Entry] {
        let b = self.index.bucket(&self.entries, inode);
        let start = b.partition_point(|e| e.inode < inode);
        let len = b[start..].partition_point(|e| e.inode == inode);
        &b[start..start + len]
    }

    fn refer(&self, e: &Entry) -> OwnerRef<'_> {
        let t = &self.tasks[e.task as usize];
        OwnerRef {
            pid: e.pid,
            fd: e.fd,
            tid: (e.tid != 0).then_some(e.tid),
            comm: &t.comm,
            uid: t.uid,
        }
    }

    /// Every owner of socket `inode`, sorted by pid then fd.
    pub fn owners(&self, inode: u64) -> Vec<Owner> {
        self.owner_refs(inode).map(|o| o.to_owner()).collect()
    }

    /// The owners of `inode`, borrowed.
    pub fn owner_refs(&self, inode: u64) -> impl Iterator<Item = OwnerRef<'_>> + '_ {
        self.range(inode).iter().map(|e| self.refer(e))
    }

    /// The distinct pids holding `inode`, ascending.
    pub fn pids(&self, inode: u64) -> impl Iterator<Item = u32> + '_ {
        let r = self.range(inode);
        r.iter()
            .enumerate()
            .filter(move |(i, e)| *i == 0 || r[i - 1].pid != e.pid)
            .map(|(_, e)| e.pid)
    }

    /// Does any process hold `inode`?
    pub fn has(&self, inode: u64) -> bool {
        !self.range(inode).is_empty()
    }

    /// Every (socket fd) entry, sorted by inode, then pid, then fd.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The owner an entry of [`Self::entries`] describes.
    pub fn entry_owner(&self, e: &Entry) -> OwnerRef<'_> {
        self.refer(e)
    }

    /// Socket fds in the scan.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Distinct socket inodes seen.
    pub fn inode_count(&self) -> usize {
        self.entries
            .iter()
            .enumerate()
            .filter(|(i, e)| *i == 0 || self.entries[i - 1].inode != e.inode)
            .count()
    }

    /// Drop the pairs, keeping the counts.
    pub fn clear(&mut self) {
        self.entries = Vec::new();
        self.tasks = Vec::new();
        self.index = InodeIndex::default();
    }
}

/// Where each inode's entries start, by the inode's high bits: the sorted
/// entries cut into about one bucket per [`InodeIndex::PER_BUCKET`]
/// entries of equal inode span. Socket inodes come from one counter, so
/// they are dense and the buckets even: a lookup reads one bucket (a cache
/// line or two) instead of a binary search over the whole table, which at
/// half a million sockets looked up in the kernel's (hash) order missed
/// the cache on most of its ~20 steps. Uneven inodes only make some
/// buckets longer; each is still searched by bisection. Costs about one
/// byte per entry.
#[derive(Debug, Default)]
struct InodeIndex {
    min: u64,
    shift: u32,
    /// `starts[b]..starts[b + 1]`: the entries of bucket `b`.
    starts: Vec<u32>,
}

impl InodeIndex {
    const PER_BUCKET: usize = 4;

    fn build(entries: &[Entry]) -> InodeIndex {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return InodeIndex::default();
        };
        let span = last.inode - first.inode;
        let want = (entries.len() / Self::PER_BUCKET)
            .max(1)
            .next_power_of_two();
        let bits = u64::BITS - span.leading_zeros();
        let shift = bits
            .saturating_sub(want.trailing_zeros())
            .min(u64::BITS - 1);
        let buckets = (span >> shift) as usize + 1;
        let mut starts = Vec::with_capacity(buckets + 1);
        for (i, e) in entries.iter().enumerate() {
            let b = ((e.inode - first.inode) >> shift) as usize;
            while starts.len() <= b {
                starts.push(i as u32);
            }
        }
        starts.resize(buckets + 1, entries.len() as u32);
        InodeIndex {
            min: first.inode,
            shift,
            starts,
        }
    }

    /// The entries that may hold `inode`.
    fn bucket<'e>(&self, entries: &'e [Entry], inode: u64) -> &'e [Entry] {
        let Some(off) = inode.checked_sub(self.min) else {
            return &[];
        };
        let b = usize::try_from(off >> self.shift).unwrap_or(usize::MAX);
        match self.starts.get(b..).and_then(|r| r.get(..2)) {
            Some(&[s, e]) => &entries[s as usize..e as usize],
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(pid: u32, fd: u32, tid: Option<u32>) -> Owner {
        Owner {
            pid,
            fd,
            comm: format!("c{pid}"),
            uid: Some(pid + 1000),
            tid,
        }
    }

    #[test]
    fn an_entry_is_24_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 24);
    }

    #[test]
    fn lookups_agree_with_the_pairs() {
        let s = OwnerScan::from_pairs(
            vec![
                (7, o(2, 1, None)),
                (5, o(1, 4, None)),
                (7, o(1, 9, None)),
                (7, o(1, 3, Some(11))),
                (9, o(3, 3, None)),
            ],
            1,
            3,
        );
        assert_eq!(
            s.owners(7),
            vec![o(1, 3, Some(11)), o(1, 9, None), o(2, 1, None)]
        );
        assert_eq!(s.pids(7).collect::<Vec<_>>(), vec![1, 2]);
        assert!(s.has(5) && s.has(9) && !s.has(6) && !s.has(0) && !s.has(99));
        assert!(s.owners(6).is_empty());
        assert_eq!(s.inode_count(), 3);
        assert_eq!(s.len(), 5);
        assert_eq!(s.denied, 1);
        let r: Vec<_> = s.owner_refs(5).collect();
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].comm, r[0].uid, r[0].fd), ("c1", Some(1001), 4));
        // One name per (pid, tid), shared by its fds.
        assert_eq!(s.tasks.len(), 4);
    }

    #[test]
    fn the_inode_index_finds_what_a_scan_of_every_entry_finds() {
        // Dense runs, a far outlier, duplicates (shared sockets), huge
        // inodes, and lookups below, between and above them.
        let mut inodes: Vec<u64> = (1000..3000).step_by(3).collect();
        inodes.extend([5, 5, 5, 1_000_000, 1_000_001, u64::MAX - 1, u64::MAX]);
        inodes.extend((40_000..40_100).flat_map(|i| [i, i]));
        for n in [0, 1, 2, 3, 5, 17, inodes.len()] {
            let pairs: Vec<(u64, Owner)> = inodes[..n]
                .iter()
                .enumerate()
                .map(|(i, &ino)| (ino, o(i as u32 + 1, 3, None)))
                .collect();
            let s = OwnerScan::from_pairs(pairs.clone(), 0, 1);
            let mut probes: Vec<u64> = inodes
                .iter()
                .flat_map(|&i| [i, i.wrapping_add(1), i.wrapping_sub(1)])
                .collect();
            probes.extend([0, 4, 999, 3001, 39_999, 999_999, 2_000_000]);
            for ino in probes {
                let want: Vec<u32> = {
                    let mut v: Vec<u32> = pairs
                        .iter()
                        .filter(|p| p.0 == ino)
                        .map(|p| p.1.pid)
                        .collect();
                    v.sort();
                    v
                };
                let got: Vec<u32> = s.owner_refs(ino).map(|r| r.pid).collect();
                assert_eq!(got, want, "inode {ino} among {n} entries");
            }
        }
    }

    #[test]
    fn builders_merge_their_task_tables() {
        let mut a = OwnerScanBuilder::default();
        a.push(10, 1, 3, None, "nginx", Some(0));
        let mut b = OwnerScanBuilder::default();
        b.push(11, 2, 4, None, "curl", Some(1000));
        b.push(12, 1, 5, None, "bpf", Some(0)); // a different name for pid 1: the first kept
        assert!(b.knows(1, None) && !b.knows(1, Some(7)));
        a.append(b);
        let s = a.finish(0, 2);
        assert_eq!(s.owners(11)[0].comm, "curl");
        assert_eq!(s.owners(12)[0].comm, "nginx");
        assert_eq!(s.owners(10)[0].uid, Some(0));
        let mut s = s;
        s.clear();
        assert!(s.is_empty() && !s.has(10));
        assert_eq!(s.processes, 2);
    }
}
