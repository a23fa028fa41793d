//! The owners of sockets as plain data: every (socket inode, process fd)
//! pair found by one scan of the fd tables. Filled by `source::owners`
//! (the /proc walk) or `source::owners_bpf` (the BPF iterator).

use super::Owner;

/// The result of one scan of every process's fd table: (inode, owner)
/// pairs sorted by inode, then pid, then fd, kept as two parallel vectors
/// so that looking up an inode is a binary search and no inode costs an
/// allocation of its own.
#[derive(Debug, Default)]
pub struct OwnerScan {
    inodes: Vec<u64>,
    owners: Vec<Owner>,
    /// Processes whose fd table could not be read for lack of privilege.
    pub denied: usize,
    /// Processes looked at.
    pub processes: usize,
    /// True when the BPF iterator produced the scan (false: /proc walk).
    pub via_bpf: bool,
}

impl OwnerScan {
    /// Build from unsorted (inode, owner) pairs.
    pub fn from_pairs(mut pairs: Vec<(u64, Owner)>, denied: usize, processes: usize) -> OwnerScan {
        pairs.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then(a.1.pid.cmp(&b.1.pid))
                .then(a.1.fd.cmp(&b.1.fd))
        });
        // Split without holding two full copies: the inodes are small, and
        // the owners are collected in place into the pairs' allocation.
        let inodes: Vec<u64> = pairs.iter().map(|p| p.0).collect();
        let owners: Vec<Owner> = pairs.into_iter().map(|p| p.1).collect();
        OwnerScan {
            inodes,
            owners,
            denied,
            processes,
            via_bpf: false,
        }
    }

    fn range(&self, inode: u64) -> std::ops::Range<usize> {
        let start = self.inodes.partition_point(|&i| i < inode);
        let end = start + self.inodes[start..].partition_point(|&i| i == inode);
        start..end
    }

    /// Every owner of socket `inode`, sorted by pid then fd.
    pub fn owners(&self, inode: u64) -> &[Owner] {
        &self.owners[self.range(inode)]
    }

    /// Owners of `inode`, moved out (their command names are left empty).
    pub fn take(&mut self, inode: u64) -> Vec<Owner> {
        let r = self.range(inode);
        self.owners[r]
            .iter_mut()
            .map(|o| Owner {
                pid: o.pid,
                fd: o.fd,
                comm: std::mem::take(&mut o.comm),
                uid: o.uid,
                tid: o.tid,
            })
            .collect()
    }

    /// Distinct socket inodes seen.
    pub fn inode_count(&self) -> usize {
        let mut n = 0;
        let mut last = None;
        for &i in &self.inodes {
            if last != Some(i) {
                n += 1;
                last = Some(i);
            }
        }
        n
    }

    /// Drop the pairs, keeping the counts.
    pub fn clear(&mut self) {
        self.inodes = Vec::new();
        self.owners = Vec::new();
    }
}
