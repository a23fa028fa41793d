//! Sources: one module per kernel interface. Sources read the kernel and
//! return model values; they never print.
//!
//! [`collect`] is the entry point most callers want: given what to read
//! (protocols, families, states) and from which namespace, it asks netlink
//! sock_diag first and falls back to /proc/net per protocol when the kernel
//! lacks a diag handler (RAW without CONFIG_INET_RAW_DIAG, for instance).

pub mod bpf;
pub mod counters;
pub mod fdtable;
pub mod netns;
pub mod owners;
pub mod owners_bpf;
pub mod process;
pub mod procnet;
pub mod sock_diag;
pub mod tcp_info;

use crate::model::{Family, Proto, Socket, State, StateSet};
use netns::{NetnsError, OpenNetns};
use procnet::{ProcReadError, ProcTable};
use sock_diag::{DiagError, DiagSocket, Extensions};
use std::path::Path;

/// Which kernel interface to read socket tables from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SourceChoice {
    /// Netlink, falling back to /proc per protocol when netlink lacks it.
    #[default]
    Auto,
    /// Netlink only; a protocol the kernel cannot dump is an error.
    Netlink,
    /// /proc/net text tables only.
    Proc,
}

/// The kinds of socket a request can name. UNIX covers stream, datagram and
/// seqpacket sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Tcp,
    Udp,
    Udplite,
    Raw,
    Unix,
}

/// What to read.
#[derive(Clone, Debug)]
pub struct Request {
    pub kinds: Vec<Kind>,
    pub ipv4: bool,
    pub ipv6: bool,
    pub states: StateSet,
    pub source: SourceChoice,
    pub ext: Extensions,
}

impl Request {
    /// Every state of `kinds`, IPv4 and IPv6, netlink with /proc fallback,
    /// no extensions: what `who`, `proc`, `stats` and `listeners` read.
    pub fn all_states(kinds: &[Kind]) -> Request {
        Request {
            kinds: kinds.to_vec(),
            ipv4: true,
            ipv6: true,
            states: StateSet::ALL,
            source: SourceChoice::Auto,
            ext: Extensions::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("{0}")]
    Diag(#[from] DiagError),
    #[error(
        "{kind}: the kernel cannot dump these sockets over netlink ({source}); use --source auto or --source proc"
    )]
    NetlinkOnly {
        kind: &'static str,
        source: DiagError,
    },
    #[error(transparent)]
    Proc(#[from] ProcReadError),
}

impl SourceError {
    /// True when the fix is more privilege rather than other arguments.
    pub fn is_privilege(&self) -> bool {
        match self {
            SourceError::Netns(e) => e.is_privilege(),
            SourceError::Diag(DiagError::Io(e)) => e.kind() == std::io::ErrorKind::PermissionDenied,
            _ => false,
        }
    }
}

/// What a read produced, with notes on fallbacks taken.
#[derive(Debug, Default)]
pub struct Collected {
    pub sockets: Vec<Socket>,
    /// Human-readable notes, e.g. "raw: read from /proc/net (no raw_diag)".
    pub notes: Vec<String>,
    /// Things the user must hear about even without `-v`: rows that could
    /// not be read and were left out.
    pub warnings: Vec<String>,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Tcp => "tcp",
            Kind::Udp => "udp",
            Kind::Udplite => "udplite",
            Kind::Raw => "raw",
            Kind::Unix => "unix",
        }
    }
    fn proto(self) -> Proto {
        match self {
            Kind::Tcp => Proto::Tcp,
            Kind::Udp => Proto::Udp,
            Kind::Udplite => Proto::Udplite,
            Kind::Raw => Proto::Raw,
            Kind::Unix => Proto::UnixStream,
        }
    }
}

fn proc_table(kind: Kind, family: Family) -> ProcTable {
    ProcTable::of(kind.proto(), family).unwrap_or(ProcTable::Unix)
}

/// Read one /proc table and keep the requested states. Lines that are not
/// rows are left out and said once in `warnings`.
fn read_proc(
    dir: &Path,
    table: ProcTable,
    states: StateSet,
    out: &mut Vec<Socket>,
    warnings: &mut Vec<String>,
) -> Result<(), ProcReadError> {
    match procnet::read_table(dir, table) {
        Ok(t) => {
            out.extend(t.sockets.into_iter().filter(|s| states.contains(s.state)));
            if t.skipped > 0 {
                warnings.push(format!(
                    "left out {} line(s) of /proc/net/{} that are not socket rows (first: {})",
                    t.skipped,
                    table.file_name(),
                    t.first_error.as_deref().unwrap_or("?")
                ));
            }
            Ok(())
        }
        // No such table in this kernel (no IPv6, no UDP-Lite): nothing to show.
        Err(ProcReadError::NotAvailable { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Read the requested sockets in the calling thread's namespace.
pub fn collect_here(req: &Request) -> Result<Collected, SourceError> {
    collect_here_port(req, None)
}

/// Like [`collect_here`]; with `local_port`, only inet sockets bound to
/// that local port are kept, filtered by the kernel where netlink is used
/// (UNIX sockets are not affected).
pub fn collect_here_port(req: &Request, local_port: Option<u16>) -> Result<Collected, SourceError> {
    let mut c = Collected::default();
    let proc_dir = Path::new("/proc/thread-self/net");
    let mut diag: Option<DiagSocket> = None;
    let mut families = Vec::new();
    if req.ipv4 {
        families.push(Family::Inet);
    }
    if req.ipv6 {
        families.push(Family::Inet6);
    }
    for &kind in &req.kinds {
        let fams: &[Family] = if kind == Kind::Unix {
            &[Family::Unix]
        } else {
            &families
        };
        // Request sockets (SYN-RECV) are reported for the SYN_RECV bit.
        let states = req.states;
        // TCP of both families: one walk of the kernel's tables instead of
        // one per family (the older request type dumps both at once). If
        // that request is refused, the per-family dumps below run.
        if kind == Kind::Tcp && fams.len() == 2 && req.source != SourceChoice::Proc {
            if diag.is_none() {
                diag = Some(DiagSocket::open()?);
            }
            let d = diag.as_mut().expect("opened above");
            let before = c.sockets.len();
            let ports: &[u16] = match &local_port {
                Some(p) => std::slice::from_ref(p),
                None => &[],
            };
            match d.dump_tcp_both(states, req.ext, ports, &mut c.sockets) {
                Ok(()) => continue,
                Err(_) => c.sockets.truncate(before),
            }
        }
        for &fam in fams {
            if req.source != SourceChoice::Proc {
                if diag.is_none() {
                    diag = Some(DiagSocket::open()?);
                }
                let d = diag.as_mut().expect("opened above");
                let r = if kind == Kind::Unix {
                    d.dump_unix_ext(states, req.ext, &mut c.sockets)
                } else {
                    d.dump_inet_port(
                        kind.proto(),
                        fam,
                        states,
                        req.ext,
                        local_port,
                        &mut c.sockets,
                    )
                };
                match r {
                    Ok(()) => continue,
                    Err(e @ DiagError::Unsupported(_)) if req.source == SourceChoice::Netlink => {
                        return Err(SourceError::NetlinkOnly {
                            kind: kind.name(),
                            source: e,
                        });
                    }
                    Err(DiagError::Unsupported(_)) => {
                        let note = format!(
                            "{}: the kernel has no sock_diag handler; read from /proc/net instead",
                            kind.name()
                        );
                        if !c.notes.contains(&note) {
                            c.notes.push(note);
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            let before = c.sockets.len();
            read_proc(
                proc_dir,
                proc_table(kind, fam),
                states,
                &mut c.sockets,
                &mut c.warnings,
            )?;
            if let Some(p) = local_port {
                let mut i = before;
                while i < c.sockets.len() {
                    if c.sockets[i].local.port() == Some(p) {
                        i += 1;
                    } else {
                        c.sockets.swap_remove(i);
                    }
                }
            }
        }
    }
    name_interfaces(&mut c.sockets);
    Ok(c)
}

/// Give every socket bound to an interface that interface's name, as this
/// thread's namespace knows it (the index means nothing elsewhere). An
/// index that names no interface (it went away) reads `ifN`, as in ss.
fn name_interfaces(sockets: &mut [Socket]) {
    let mut names = IfNames::default();
    for s in sockets.iter_mut() {
        names.name(s);
    }
}

/// Interface names by index, looked up once each.
#[derive(Default)]
struct IfNames {
    names: Vec<(u32, Box<str>)>,
    probe: Option<rustix::fd::OwnedFd>,
}

impl IfNames {
    fn name(&mut self, s: &mut Socket) {
        let Some(index) = s.bound_ifindex else {
            return;
        };
        let name = match self.names.iter().find(|(i, _)| *i == index) {
            Some((_, n)) => n.clone(),
            None => {
                if self.probe.is_none() {
                    self.probe = rustix::net::socket(
                        rustix::net::AddressFamily::INET,
                        rustix::net::SocketType::DGRAM,
                        None,
                    )
                    .ok();
                }
                let n: Box<str> = self
                    .probe
                    .as_ref()
                    .and_then(|fd| rustix::net::netdevice::index_to_name(fd, index).ok())
                    .unwrap_or_else(|| format!("if{index}"))
                    .into();
                self.names.push((index, n.clone()));
                n
            }
        };
        s.bound_ifname = Some(name);
    }
}

/// Like [`collect_here`], but each socket goes to `each` as it is read
/// instead of into one vector: a caller that folds sockets into something
/// smaller (a live view, counts) never holds the whole table. TCP of both
/// families comes from one netlink walk, in the kernel's order (not IPv4
/// first); other requests, and a kernel that refuses that walk before
/// sending anything, are read as [`collect_here`] reads them. The
/// returned [`Collected`] has the notes and warnings, no sockets.
pub fn each_here(req: &Request, each: &mut dyn FnMut(Socket)) -> Result<Collected, SourceError> {
    let both_tcp = req.kinds == [Kind::Tcp] && req.ipv4 && req.ipv6;
    if both_tcp && req.source != SourceChoice::Proc {
        let mut d = DiagSocket::open()?;
        let mut names = IfNames::default();
        let mut sent = 0usize;
        let r = d.dump_tcp_both_each(req.states, req.ext, &[], |mut s| {
            names.name(&mut s);
            sent += 1;
            each(s);
        });
        match r {
            Ok(()) => return Ok(Collected::default()),
            Err(e) if sent > 0 => return Err(e.into()),
            Err(_) => {} // refused at once: the per-family dumps
        }
    }
    let mut c = collect_here(req)?;
    for s in c.sockets.drain(..) {
        each(s);
    }
    Ok(c)
}

/// [`each_here`] in namespace `ns`, labelling each socket with it when
/// `label` is set.
pub fn each(
    ns: &OpenNetns,
    req: &Request,
    label: bool,
    each: &mut (dyn FnMut(Socket) + Send),
) -> Result<Collected, SourceError> {
    netns::run_in(ns, || {
        each_here(req, &mut |mut s: Socket| {
            if label {
                s.netns = Some(Box::new(ns.id.clone()));
            }
            each(s)
        })
    })?
}

/// Read the requested sockets in namespace `ns`, labelling each socket with
/// it when `label` is set.
pub fn collect(ns: &OpenNetns, req: &Request, label: bool) -> Result<Collected, SourceError> {
    collect_port(ns, req, label, None)
}

/// [`collect`] with the local-port filter of [`collect_here_port`].
pub fn collect_port(
    ns: &OpenNetns,
    req: &Request,
    label: bool,
    local_port: Option<u16>,
) -> Result<Collected, SourceError> {
    let mut c = netns::run_in(ns, || collect_here_port(req, local_port))??;
    if label {
        for s in &mut c.sockets {
            s.netns = Some(Box::new(ns.id.clone()));
        }
    }
    Ok(c)
}

/// The states ss shows when neither -a nor -l nor a state filter is given:
/// everything but listening, closed, time-wait and syn-recv. Request
/// sockets (half-open connections) sit in the kernel's `TCP_NEW_SYN_RECV`
/// state and are reported as SYN-RECV; ss's default set leaves that bit
/// out too, so they are not listed by default.
pub fn default_states() -> StateSet {
    StateSet::ALL.without(StateSet::of(&[
        State::Listen,
        State::Close,
        State::TimeWait,
        State::SynRecv,
        State::NewSynRecv,
    ]))
}

/// The states `-l` shows: listeners, and unconnected datagram sockets
/// (which the kernel reports as closed).
pub fn listening_states() -> StateSet {
    StateSet::of(&[State::Listen, State::Close])
}

/// Every kind of socket sockscope reads.
pub const ALL_KINDS: [Kind; 5] = [Kind::Tcp, Kind::Udp, Kind::Udplite, Kind::Raw, Kind::Unix];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_here_hands_over_what_collect_here_lists() {
        let v4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(v4.local_addr().unwrap()).unwrap();
        let v6 = std::net::TcpListener::bind("[::1]:0").ok();
        let mut ports = vec![
            v4.local_addr().unwrap().port(),
            c.local_addr().unwrap().port(),
        ];
        ports.extend(v6.as_ref().map(|l| l.local_addr().unwrap().port()));
        let req = Request {
            kinds: vec![Kind::Tcp],
            ipv4: true,
            ipv6: true,
            states: StateSet::ALL,
            source: SourceChoice::Auto,
            ext: Extensions {
                info: true,
                skmem: false,
                cong: false,
            },
        };
        let mine = |v: Vec<Socket>| {
            let mut v: Vec<(u16, State, bool, u64)> = v
                .into_iter()
                .filter(|s| s.local.port().is_some_and(|p| ports.contains(&p)))
                .map(|s| {
                    let p = s.local.port().unwrap();
                    (p, s.state, s.tcp_info.is_some(), s.inode)
                })
                .collect();
            v.sort();
            v
        };
        let mut handed = Vec::new();
        let got = each_here(&req, &mut |s| handed.push(s)).unwrap();
        assert!(got.sockets.is_empty());
        let want = mine(collect_here(&req).unwrap().sockets);
        assert_eq!(mine(handed), want);
        // The listener(s) and both ends of the connection, with tcp_info.
        assert_eq!(want.len(), 3 + usize::from(v6.is_some()), "{want:?}");
        assert!(want.iter().all(|w| w.2));
    }
}
