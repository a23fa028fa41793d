//! Snapshots: the sockets of one or more namespaces read through the
//! sources, with their owners found by the fd-table scan running alongside
//! and joined to them. Sits above `source` (kernel I/O) and `join` (pure):
//! what commands, the live view and the exporter call to see the sockets.

use crate::model::{OwnerScan, Socket};
use crate::source::netns::OpenNetns;
use crate::source::{Request, SourceError, collect_port, owners};

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
}

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
        // Decide how to find owners (loading the BPF iterator reads kernel
        // BTF) before the dump allocates, then scan alongside the dump.
        let plan = want_owners.then(owners::plan);
        let scan = plan.map(|p| s.spawn(move || p.run()));
        let mut snap = Snapshot::default();
        let mut err = None;
        for ns in namespaces {
            match collect_port(ns, req, label, local_port) {
                Ok(c) => {
                    // Move the first namespace's sockets: copying tens of
                    // thousands of them would double peak memory.
                    if snap.sockets.is_empty() {
                        snap.sockets = c.sockets;
                    } else {
                        snap.sockets.extend(c.sockets);
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
        if let Some(h) = scan {
            let scan = h
                .join()
                .unwrap_or_else(|_| Ok((OwnerScan::default(), None)));
            match scan {
                Ok((mut scan, why_not_bpf)) => {
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
