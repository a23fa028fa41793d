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
pub mod owners_fdt;
pub mod process;
pub mod procnet;
pub mod sock_diag;
pub mod sock_iter;
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
    /// TCP and UDP from BPF iterators where they load (privileged, BTF, a
    /// recent kernel), netlink otherwise and for the other kinds, as `Auto`.
    Bpf,
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
    /// A filter program for the netlink dumps of inet sockets (inet_diag
    /// bytecode, see `query::Filter::kernel_bytecode`): it may pass more
    /// sockets than the caller wants, never fewer. The other sources read
    /// every socket; the caller's own filter decides either way.
    pub bytecode: Option<Vec<u8>>,
}

/// A request is built from [`Request::all_states`] and narrowed with the
/// methods below, e.g. `Request::all_states(&[Kind::Tcp]).tcp_info()`.
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
            bytecode: None,
        }
    }

    /// Which address families of inet sockets (UNIX sockets have none).
    pub fn families(mut self, ipv4: bool, ipv6: bool) -> Request {
        self.ipv4 = ipv4;
        self.ipv6 = ipv6;
        self
    }

    /// Only sockets in these states.
    pub fn states(mut self, states: StateSet) -> Request {
        self.states = states;
        self
    }

    /// Which kernel interface to read.
    pub fn source(mut self, source: SourceChoice) -> Request {
        self.source = source;
        self
    }

    /// The inet_diag extensions to ask for.
    pub fn ext(mut self, ext: Extensions) -> Request {
        self.ext = ext;
        self
    }

    /// Have the kernel's netlink dumps pass only the inet sockets this
    /// program passes (see [`Request::bytecode`]).
    pub fn bytecode(mut self, code: Option<Vec<u8>>) -> Request {
        self.bytecode = code;
        self
    }

    /// tcp_info with each TCP socket (INET_DIAG_INFO).
    pub fn tcp_info(mut self) -> Request {
        self.ext.info = true;
        self
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
    #[error(transparent)]
    Iter(#[from] sock_iter::IterError),
}

impl crate::error::Classify for SourceError {
    fn kind(&self) -> crate::error::Kind {
        use crate::error::Kind;
        match self {
            SourceError::Netns(e) => e.kind(),
            SourceError::Diag(e) => e.kind(),
            SourceError::NetlinkOnly { .. } => Kind::KernelFeature,
            SourceError::Proc(e) => e.kind(),
            SourceError::Iter(_) => crate::error::Kind::KernelFeature,
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

/// A netlink socket for `req`'s dumps, with its filter program.
fn open_diag(req: &Request) -> Result<DiagSocket, SourceError> {
    let mut d = DiagSocket::open()?;
    d.set_bytecode(req.bytecode.clone());
    Ok(d)
}

/// Like [`collect_here`]; with `local_port`, only inet sockets bound to
/// that local port are kept, filtered by the kernel where netlink is used
/// (UNIX sockets are not affected).
pub fn collect_here_port(req: &Request, local_port: Option<u16>) -> Result<Collected, SourceError> {
    let mut sockets = Vec::new();
    let mut c = collect_here_each(req, local_port, &mut |s| {
        sockets.push(s);
        true
    })?;
    c.sockets = sockets;
    Ok(c)
}

/// [`collect_here_port`] without collecting: each socket is handed to
/// `each` as soon as it is decoded, in the order `collect_here_port` lists
/// them (so a caller can stream a table of any size in constant memory).
/// When `each` returns false the read stops at once. The returned
/// [`Collected`] carries the notes and warnings; its `sockets` is empty.
///
/// The one-walk TCP dump interleaves the families; its IPv6 rows are held
/// back until the walk ends so that IPv4 comes first, as ss lists them.
pub fn collect_here_each(
    req: &Request,
    local_port: Option<u16>,
    each: &mut dyn FnMut(Socket) -> bool,
) -> Result<Collected, SourceError> {
    let mut c = Collected::default();
    let proc_dir = Path::new("/proc/thread-self/net");
    let mut diag: Option<DiagSocket> = None;
    let mut names = IfNames::default();
    // Every row goes through here: interface names, then the caller.
    let mut stopped = false;
    let mut emit = |mut s: Socket, stopped: &mut bool| -> bool {
        names.name(&mut s);
        if !each(s) {
            *stopped = true;
        }
        !*stopped
    };
    let mut families = Vec::new();
    if req.ipv4 {
        families.push(Family::Inet);
    }
    if req.ipv6 {
        families.push(Family::Inet6);
    }
    let ports: &[u16] = match &local_port {
        Some(p) => std::slice::from_ref(p),
        None => &[],
    };
    for &kind in &req.kinds {
        let fams: &[Family] = if kind == Kind::Unix {
            &[Family::Unix]
        } else {
            &families
        };
        // Request sockets (SYN-RECV) are reported for the SYN_RECV bit.
        let states = req.states;
        let note = |c: &mut Collected, n: String| {
            if !c.notes.contains(&n) {
                c.notes.push(n);
            }
        };
        // "KIND: socket table: WHAT", unless a note already names this
        // kind's source (the iterator's fallback says why).
        let source_note = |c: &mut Collected, what: &str| {
            let p = format!("{}: socket table:", kind.name());
            if !c.notes.iter().any(|n| n.starts_with(&p)) {
                c.notes.push(format!("{p} {what}"));
            }
        };
        // TCP and UDP by the BPF iterator, where asked for and it loads.
        // Its rows interleave the families as the one-walk dump's do.
        if matches!(kind, Kind::Tcp | Kind::Udp) && req.source == SourceChoice::Bpf {
            if req.ext != Extensions::default() {
                note(
                    &mut c,
                    format!(
                        "{}: socket table: netlink sock_diag (the BPF iterator gives no tcp_info, socket memory or congestion control)",
                        kind.name()
                    ),
                );
            } else {
                let mut f = sock_iter::Filter::new(states, req.ipv4, req.ipv6, local_port);
                if kind == Kind::Udp {
                    f = f.udp();
                }
                let mut v6 = Vec::new();
                let mut emitted = 0usize;
                let r = sock_iter::dump(&f, &mut |s| {
                    if s.family == Family::Inet {
                        emitted += 1;
                        emit(s, &mut stopped)
                    } else {
                        v6.push(s);
                        true
                    }
                });
                match r {
                    Ok(()) if stopped => return Ok(c),
                    Ok(()) => {
                        note(
                            &mut c,
                            format!("{}: socket table: BPF iterator", kind.name()),
                        );
                        for s in v6 {
                            if !emit(s, &mut stopped) {
                                return Ok(c);
                            }
                        }
                        continue;
                    }
                    Err(e) if emitted == 0 => note(
                        &mut c,
                        format!(
                            "{}: socket table: netlink sock_diag (BPF iterator unavailable: {e})",
                            kind.name()
                        ),
                    ),
                    Err(e) => return Err(e.into()),
                }
            }
        }
        // TCP of both families: one walk of the kernel's tables instead of
        // one per family (the older request type dumps both at once). If
        // that request is refused before it yields a row, the per-family
        // dumps below run.
        if kind == Kind::Tcp && fams.len() == 2 && req.source != SourceChoice::Proc {
            if diag.is_none() {
                diag = Some(open_diag(req)?);
            }
            let d = diag.as_mut().expect("opened above");
            let mut v6 = Vec::new();
            let mut emitted = 0usize;
            let r = d.dump_tcp_both_each(states, req.ext, ports, &mut |s| {
                if s.family == Family::Inet {
                    emitted += 1;
                    emit(s, &mut stopped)
                } else {
                    v6.push(s);
                    true
                }
            });
            match r {
                Ok(()) if stopped => return Ok(c),
                Ok(()) => {
                    source_note(&mut c, "netlink sock_diag");
                    for s in v6 {
                        if !emit(s, &mut stopped) {
                            return Ok(c);
                        }
                    }
                    continue;
                }
                Err(_) if emitted == 0 => {}
                Err(e) => return Err(e.into()),
            }
        }
        for &fam in fams {
            if req.source != SourceChoice::Proc {
                if diag.is_none() {
                    diag = Some(open_diag(req)?);
                }
                let d = diag.as_mut().expect("opened above");
                let mut pass = |s| emit(s, &mut stopped);
                let r = if kind == Kind::Unix {
                    d.dump_unix_each(states, req.ext, &mut pass)
                } else {
                    d.dump_inet_ports_each(kind.proto(), fam, states, req.ext, ports, &mut pass)
                };
                match r {
                    Ok(()) if stopped => return Ok(c),
                    Ok(()) => {
                        source_note(&mut c, "netlink sock_diag");
                        continue;
                    }
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
            source_note(&mut c, "/proc/net");
            let mut rows = Vec::new();
            read_proc(
                proc_dir,
                proc_table(kind, fam),
                states,
                &mut rows,
                &mut c.warnings,
            )?;
            for s in rows {
                if local_port.is_some_and(|p| s.local.port() != Some(p)) {
                    continue;
                }
                if !emit(s, &mut stopped) {
                    return Ok(c);
                }
            }
        }
    }
    Ok(c)
}

/// Interface names for sockets bound to one, as this thread's namespace
/// knows them (an index means nothing elsewhere), looked up once per index.
/// An index that names no interface (it went away) reads `ifN`, as in ss.
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
/// smaller (a live view, counts) never holds the whole table (only the
/// IPv6 rows of the one-walk TCP dump wait for its end; see
/// [`collect_here_each`]). The returned [`Collected`] has the notes and
/// warnings, no sockets.
pub fn each_here(req: &Request, each: &mut dyn FnMut(Socket)) -> Result<Collected, SourceError> {
    collect_here_each(req, None, &mut |s| {
        each(s);
        true
    })
}

/// [`each_here`] in namespace `ns`, labelling each socket with it when
/// `label` is set.
pub fn each(
    ns: &OpenNetns,
    req: &Request,
    label: bool,
    each: &mut (dyn FnMut(Socket) + Send),
) -> Result<Collected, SourceError> {
    collect_each(ns, req, label, None, &mut |s| {
        each(s);
        true
    })
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

/// [`collect_port`] without collecting: each socket, labelled with the
/// namespace when `label`, is handed to `each` as it is read (see
/// [`collect_here_each`]).
pub fn collect_each(
    ns: &OpenNetns,
    req: &Request,
    label: bool,
    local_port: Option<u16>,
    each: &mut (dyn FnMut(Socket) -> bool + Send),
) -> Result<Collected, SourceError> {
    let id = label.then(|| ns.id.clone());
    netns::run_in(ns, || {
        collect_here_each(req, local_port, &mut |mut s| {
            if let Some(id) = &id {
                s.netns = Some(Box::new(id.clone()));
            }
            each(s)
        })
    })?
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
        let req = Request::all_states(&[Kind::Tcp]).tcp_info();
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
