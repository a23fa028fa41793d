//! The text socket tables under /proc/net: `tcp`, `tcp6`, `udp`, `udp6`,
//! `udplite`, `udplite6`, `raw`, `raw6` and `unix`.
//!
//! This is the fallback source when netlink sock_diag is not available, and
//! the decoder behind "explain this line". Parsing is kept apart from I/O:
//! [`parse_inet`], [`parse_inet_line`] and [`parse_unix`] turn text into rows
//! that hold every field of a line, decoded ([`InetRow`], [`UnixRow`]);
//! `to_socket` turns a row into a [`Socket`]; only [`read_table`] touches the
//! file system.
//!
//! How the kernel prints these lines (Linux 6.18; net/ipv4/tcp_ipv4.c
//! `get_tcp4_sock`, net/ipv6/tcp_ipv6.c `get_tcp6_sock`, net/ipv4/udp.c
//! `udp4_format_sock`, net/ipv6/datagram.c `__ip6_dgram_sock_seq_show`,
//! net/ipv4/raw.c `raw_sock_seq_show`, net/unix/af_unix.c `unix_seq_show`):
//!
//! - Addresses are the in-memory `__be32` words printed with `%08X`, i.e. in
//!   host byte order: 127.0.0.1 is `0100007F` on little endian. IPv6 is four
//!   such words. Ports are `%04X` of the host-order port.
//! - `tx_queue`, `rx_queue`, `tr`, `tm->when` and `retrnsmt` are hex; `uid`,
//!   `timeout` and `inode` are decimal.
//! - `tm->when` is in clock ticks of [`USER_HZ`], not jiffies, and since
//!   2012 never negative (`jiffies_delta_to_clock_t` clamps at 0).
//! - For a TCP listener `rx_queue` is the accept queue; the backlog limit is
//!   not in the file. TIME-WAIT and orphaned FIN-WAIT-2 connections are
//!   printed by `get_timewait4_sock` (`tr` 3, uid 0, inode 0); request socks
//!   (`NEW_SYN_RECV`) print state 03 and inode 0.
//! - For RAW sockets the "port" is the IP protocol number.
//! - For UDP and RAW, `sl` is a hash bucket, not a row counter.

use crate::model::{Endpoint, Family, Proto, Socket, SourceKind, State, Timer, TimerKind};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The unit of `tm->when` (and of TCP's rto and ato): clock ticks of
/// USER_HZ, which is 100 on every architecture Rust targets
/// (include/asm-generic/param.h; `getconf CLK_TCK`).
pub const USER_HZ: i64 = 100;

/// `__SO_ACCEPTCON` (include/linux/net.h): the Flags bit of a UNIX listener.
pub const SO_ACCEPTCON: u32 = 1 << 16;

/// `socket_state` (include/uapi/linux/net.h), the St column of
/// /proc/net/unix.
pub const SS_UNCONNECTED: u8 = 1;
pub const SS_CONNECTING: u8 = 2;
pub const SS_CONNECTED: u8 = 3;
pub const SS_DISCONNECTING: u8 = 4;

/// `sock_type` (include/linux/net.h), the Type column of /proc/net/unix.
pub const SOCK_STREAM: u16 = 1;
pub const SOCK_DGRAM: u16 = 2;
pub const SOCK_SEQPACKET: u16 = 5;

/// What was wrong with one line.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum LineError {
    #[error("too few fields: expected at least {expected}, found {found}")]
    TooFewFields { expected: usize, found: usize },
    #[error("field {field}: {value:?} is not {expected}")]
    BadField {
        field: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// A table that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ProcParseError {
    #[error("empty input: a /proc/net socket table always starts with a header line")]
    Empty,
    #[error("line 1: {found:?} is not a table header (it should start with {expected:?})")]
    BadHeader {
        expected: &'static str,
        found: String,
    },
    #[error("line {line}: {error}")]
    Line { line: usize, error: LineError },
}

/// A table that could not be read.
#[derive(Debug, Error)]
pub enum ProcReadError {
    /// The file does not exist although its directory does: the kernel or
    /// namespace has no such table (IPv6 disabled, UDP-Lite compiled out).
    #[error("{} does not exist: this kernel has no such table (IPv6 disabled or protocol not built in)", path.display())]
    NotAvailable { path: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("cannot parse {}: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: ProcParseError,
    },
}

impl crate::error::Classify for ProcReadError {
    fn kind(&self) -> crate::error::Kind {
        use crate::error::Kind;
        match self {
            ProcReadError::NotAvailable { .. } => Kind::KernelFeature,
            ProcReadError::Io { source, .. } => Kind::of_io(source),
            ProcReadError::Parse { .. } => Kind::System,
        }
    }
}

/// One of the socket tables under /proc/net.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProcTable {
    Tcp,
    Tcp6,
    Udp,
    Udp6,
    Udplite,
    Udplite6,
    Raw,
    Raw6,
    Unix,
}

impl ProcTable {
    /// The table that lists sockets of this protocol and family (`None`
    /// for kinds /proc/net has no table of).
    pub fn of(proto: Proto, family: Family) -> Option<ProcTable> {
        Some(match (proto, family) {
            (Proto::Tcp, Family::Inet) => ProcTable::Tcp,
            (Proto::Tcp, Family::Inet6) => ProcTable::Tcp6,
            (Proto::Udp, Family::Inet) => ProcTable::Udp,
            (Proto::Udp, Family::Inet6) => ProcTable::Udp6,
            (Proto::Udplite, Family::Inet) => ProcTable::Udplite,
            (Proto::Udplite, Family::Inet6) => ProcTable::Udplite6,
            (Proto::Raw, Family::Inet) => ProcTable::Raw,
            (Proto::Raw, Family::Inet6) => ProcTable::Raw6,
            (p, _) if p.is_unix() => ProcTable::Unix,
            _ => return None,
        })
    }

    pub const ALL: [ProcTable; 9] = [
        ProcTable::Tcp,
        ProcTable::Tcp6,
        ProcTable::Udp,
        ProcTable::Udp6,
        ProcTable::Udplite,
        ProcTable::Udplite6,
        ProcTable::Raw,
        ProcTable::Raw6,
        ProcTable::Unix,
    ];

    /// The file's name in /proc/net.
    pub fn file_name(self) -> &'static str {
        match self {
            ProcTable::Tcp => "tcp",
            ProcTable::Tcp6 => "tcp6",
            ProcTable::Udp => "udp",
            ProcTable::Udp6 => "udp6",
            ProcTable::Udplite => "udplite",
            ProcTable::Udplite6 => "udplite6",
            ProcTable::Raw => "raw",
            ProcTable::Raw6 => "raw6",
            ProcTable::Unix => "unix",
        }
    }

    /// The protocol of every row; `None` for `unix`, whose rows each carry
    /// their own type (stream, dgram, seqpacket).
    pub fn proto(self) -> Option<Proto> {
        match self {
            ProcTable::Tcp | ProcTable::Tcp6 => Some(Proto::Tcp),
            ProcTable::Udp | ProcTable::Udp6 => Some(Proto::Udp),
            ProcTable::Udplite | ProcTable::Udplite6 => Some(Proto::Udplite),
            ProcTable::Raw | ProcTable::Raw6 => Some(Proto::Raw),
            ProcTable::Unix => None,
        }
    }

    pub fn family(self) -> Family {
        match self {
            ProcTable::Tcp | ProcTable::Udp | ProcTable::Udplite | ProcTable::Raw => Family::Inet,
            ProcTable::Tcp6 | ProcTable::Udp6 | ProcTable::Udplite6 | ProcTable::Raw6 => {
                Family::Inet6
            }
            ProcTable::Unix => Family::Unix,
        }
    }
}

/// One line of /proc/net/{tcp,tcp6,udp,udp6,udplite,udplite6,raw,raw6},
/// every field decoded. Field names follow the header line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InetRow {
    /// Row number (TCP) or hash bucket (UDP, RAW).
    pub sl: u32,
    /// Local address and port (for RAW: the IP protocol number).
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Kernel state number (include/net/tcp_states.h); always a known one.
    pub st: u8,
    /// Bytes not yet acknowledged (TCP) or allocated for sending.
    pub tx_queue: u32,
    /// Bytes not yet read; for a TCP listener, the accept queue length.
    pub rx_queue: u32,
    /// Timer kind: 0 none, 1 retransmit, 2 keepalive, 3 time-wait, 4 probe.
    pub tr: u8,
    /// Time until the timer fires, in clock ticks of [`USER_HZ`], as
    /// printed. Kernels from before 2012 could print an overdue timer as a wrapped
    /// negative number; [`InetRow::expires_ms`] reads it as signed.
    pub tm_when: u64,
    /// Retransmits of the retransmit timer.
    pub retrnsmt: u32,
    pub uid: u32,
    /// Unanswered probes (TCP `icsk_probes_out`); 0 elsewhere.
    pub timeout: i32,
    /// Socket inode; 0 when there is no socket file (TIME-WAIT, request
    /// socks, connections still in a listener's accept queue).
    pub inode: u64,
    /// The fields after the inode, as printed: refcount and socket pointer,
    /// then for full TCP sockets rto, ato, quick/pingpong, cwnd and ssthresh
    /// (the fastopen queue limit for a listener); for UDP and RAW, drops.
    pub rest: Vec<String>,
    /// The line as read, padding included.
    pub raw_line: String,
}

impl InetRow {
    /// The decoded state; `None` only for a row built by hand with an
    /// unknown number (the parser rejects those).
    pub fn state(&self) -> Option<State> {
        State::from_kernel(self.st)
    }

    /// Milliseconds until the timer fires (`tm_when` ticks converted).
    pub fn expires_ms(&self) -> i64 {
        (self.tm_when as i64).saturating_mul(1000 / USER_HZ)
    }

    /// The pending timer, as inet_diag reports it: the retransmit timer
    /// counts `retrnsmt`, keepalive and zero-window probe timers count
    /// probes (the `timeout` column), the others nothing.
    pub fn timer(&self) -> Timer {
        let retrans = match self.tr {
            1 => self.retrnsmt,
            2 | 4 => u32::try_from(self.timeout).unwrap_or(0),
            _ => 0,
        };
        Timer {
            kind: TimerKind::from_kernel(self.tr),
            expires_ms: self.expires_ms(),
            retrans,
        }
    }

    /// The socket this row describes. A TCP listener gets `send_q: None`:
    /// the file does not carry its backlog.
    pub fn to_socket(&self, proto: Proto, family: Family) -> Socket {
        let state = self.state().unwrap_or(State::Close);
        let listener = proto == Proto::Tcp && state == State::Listen;
        let mut s = Socket::new(
            proto,
            family,
            state,
            endpoint(self.local),
            endpoint(self.remote),
            SourceKind::Proc,
        );
        s.recv_q = Some(self.rx_queue);
        s.send_q = (!listener).then_some(self.tx_queue);
        s.inode = self.inode;
        s.uid = Some(self.uid);
        s.timer = Some(self.timer());
        s
    }
}

fn endpoint(a: SocketAddr) -> Endpoint {
    Endpoint::Inet {
        addr: a.ip(),
        port: a.port(),
    }
}

/// One line of /proc/net/unix, every field decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnixRow {
    /// The `Num` column: the kernel's socket pointer (hashed or zero), as
    /// printed without its colon.
    pub num: String,
    pub ref_count: u32,
    /// Always 0.
    pub protocol: u32,
    /// [`SO_ACCEPTCON`] for a listener, else 0.
    pub flags: u32,
    /// [`SOCK_STREAM`], [`SOCK_DGRAM`] or [`SOCK_SEQPACKET`].
    pub sock_type: u16,
    /// `SS_*`: the kernel derives it from whether the socket has a socket
    /// file and is TCP_ESTABLISHED: connected 3, unconnected 1; without a
    /// file (a connection not yet accepted, a socket being closed) 2 when
    /// established, else 4.
    pub st: u8,
    /// 0 for a connection still in a listener's accept queue.
    pub inode: u64,
    /// Bound name: a path, or `@name` for the abstract namespace (NUL bytes
    /// inside the name are printed as `@`). `None` when unnamed.
    pub path: Option<String>,
    /// The line as read.
    pub raw_line: String,
}

impl UnixRow {
    pub fn is_listener(&self) -> bool {
        self.flags & SO_ACCEPTCON != 0
    }

    /// The socket type; `None` only for a row built by hand with an unknown
    /// type (the parser rejects those).
    pub fn proto(&self) -> Option<Proto> {
        match self.sock_type {
            SOCK_STREAM => Some(Proto::UnixStream),
            SOCK_DGRAM => Some(Proto::UnixDgram),
            SOCK_SEQPACKET => Some(Proto::UnixSeqpacket),
            _ => None,
        }
    }

    /// The state as the kernel holds it in `sk_state` (and as unix_diag
    /// reports it): a listener is `Listen`; SS_CONNECTED and SS_CONNECTING
    /// (an established connection not yet accepted) are `Established`;
    /// the rest `Close`. ss's own /proc fallback prints SS_CONNECTING as
    /// SYN-SENT and SS_DISCONNECTING as CLOSING; those names come from the
    /// constants, not from what the kernel means by them.
    pub fn state(&self) -> State {
        if self.is_listener() {
            State::Listen
        } else if matches!(self.st, SS_CONNECTED | SS_CONNECTING) {
            State::Established
        } else {
            State::Close
        }
    }

    /// The socket this row describes. The file names neither the peer nor
    /// the queues nor the owner's uid, so those stay unknown.
    pub fn to_socket(&self) -> Socket {
        let mut s = Socket::new(
            self.proto().unwrap_or(Proto::UnixStream),
            Family::Unix,
            self.state(),
            Endpoint::Unix {
                path: self.path.clone(),
                inode: self.inode,
            },
            // /proc/net/unix does not list peers: unknown, not "none".
            Endpoint::Unknown,
            SourceKind::Proc,
        );
        s.inode = self.inode;
        s
    }
}

/// Parses a whole /proc/net/{tcp,udp,raw}[6] or udplite[6] table. The
/// header is checked and skipped; blank lines are skipped. A header alone
/// (no sockets) gives an empty list.
pub fn parse_inet(text: &str) -> Result<Vec<InetRow>, ProcParseError> {
    parse_table(text, "sl", parse_inet_line)
}

/// Parses a whole /proc/net/unix table, strictly: any line that is not a
/// row is an error (see [`parse_unix_lenient`] for reading live tables).
pub fn parse_unix(text: &str) -> Result<Vec<UnixRow>, ProcParseError> {
    parse_table(text, "Num", parse_unix_line)
}

/// The rows of a table read leniently, and what was left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lenient<T> {
    pub rows: Vec<T>,
    /// Lines that were not rows and were skipped.
    pub skipped: usize,
    /// The first of them, with its line number and what was wrong.
    pub first_error: Option<ProcParseError>,
}

/// Parses a whole inet table, skipping (and counting) lines that are not
/// rows instead of failing: one odd line must not hide every socket.
pub fn parse_inet_lenient(text: &str) -> Result<Lenient<InetRow>, ProcParseError> {
    parse_table_lenient(text, "sl", parse_inet_line, None)
}

/// Parses a whole /proc/net/unix table as the kernel writes it. The kernel
/// prints a socket's name raw, so a name holding a newline (any user may
/// bind one) continues on the next lines: a line that is not a row, after
/// a row that has a name, is the rest of that name. Other lines that are
/// not rows are skipped and counted.
pub fn parse_unix_lenient(text: &str) -> Result<Lenient<UnixRow>, ProcParseError> {
    parse_table_lenient(text, "Num", parse_unix_line, Some(continue_unix_name))
}

fn continue_unix_name(row: &mut UnixRow, line: &str) -> bool {
    let Some(path) = row.path.as_mut() else {
        return false;
    };
    path.push('\n');
    path.push_str(line);
    row.raw_line.push('\n');
    row.raw_line.push_str(line);
    true
}

fn parse_table_lenient<T>(
    text: &str,
    expected: &'static str,
    parse_line: fn(&str) -> Result<T, LineError>,
    continuation: Option<fn(&mut T, &str) -> bool>,
) -> Result<Lenient<T>, ProcParseError> {
    let mut lines = text.lines();
    let header = lines.next().ok_or(ProcParseError::Empty)?;
    if !header.trim_start().starts_with(expected) {
        return Err(ProcParseError::BadHeader {
            expected,
            found: header.to_string(),
        });
    }
    let mut out = Lenient {
        rows: Vec::new(),
        skipped: 0,
        first_error: None,
    };
    for (i, l) in lines.enumerate() {
        match parse_line(l) {
            Ok(row) => out.rows.push(row),
            Err(error) => {
                if let (Some(cont), Some(last)) = (continuation, out.rows.last_mut())
                    && cont(last, l)
                {
                    continue;
                }
                if l.trim().is_empty() {
                    continue;
                }
                out.skipped += 1;
                if out.first_error.is_none() {
                    out.first_error = Some(ProcParseError::Line { line: i + 2, error });
                }
            }
        }
    }
    Ok(out)
}

fn parse_table<T>(
    text: &str,
    expected: &'static str,
    parse_line: fn(&str) -> Result<T, LineError>,
) -> Result<Vec<T>, ProcParseError> {
    let mut lines = text.lines();
    let header = lines.next().ok_or(ProcParseError::Empty)?;
    if !header.trim_start().starts_with(expected) {
        return Err(ProcParseError::BadHeader {
            expected,
            found: header.to_string(),
        });
    }
    lines
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| parse_line(l).map_err(|error| ProcParseError::Line { line: i + 2, error }))
        .collect()
}

/// Parses one data line of an inet table (no header).
pub fn parse_inet_line(line: &str) -> Result<InetRow, LineError> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 10 {
        return Err(LineError::TooFewFields {
            expected: 10,
            found: f.len(),
        });
    }
    // Fields are decoded left to right, so an error names the first bad one.
    let sl = f[0]
        .strip_suffix(':')
        .ok_or_else(|| bad("sl", f[0], "a row number followed by ':'"))?;
    let sl = dec("sl", sl)?;
    let local = addr("local_address", f[1])?;
    let remote = addr("rem_address", f[2])?;
    let st = hex("st", f[3])?;
    if State::from_kernel(st).is_none() {
        return Err(bad("st", f[3], "a TCP state number (01 to 0D)"));
    }
    let (tx, rx) = pair("tx_queue:rx_queue", f[4])?;
    let (tr, when) = pair("tr:tm->when", f[5])?;
    Ok(InetRow {
        sl,
        local,
        remote,
        st,
        tx_queue: hex("tx_queue", tx)?,
        rx_queue: hex("rx_queue", rx)?,
        tr: hex("tr", tr)?,
        tm_when: hex("tm->when", when)?,
        retrnsmt: hex("retrnsmt", f[6])?,
        uid: dec("uid", f[7])?,
        timeout: dec("timeout", f[8])?,
        inode: dec("inode", f[9])?,
        rest: f[10..].iter().map(|s| s.to_string()).collect(),
        raw_line: line.to_string(),
    })
}

/// Parses one data line of /proc/net/unix (no header). The path is the rest
/// of the line after the single space that follows the inode, so names with
/// spaces (even trailing ones) are kept whole.
pub fn parse_unix_line(line: &str) -> Result<UnixRow, LineError> {
    let mut rest = line;
    let mut f = [""; 7];
    for (i, slot) in f.iter_mut().enumerate() {
        rest = rest.trim_start_matches(' ');
        let end = rest.find(' ').unwrap_or(rest.len());
        if end == 0 {
            return Err(LineError::TooFewFields {
                expected: 7,
                found: i,
            });
        }
        (*slot, rest) = rest.split_at(end);
    }
    let num = f[0]
        .strip_suffix(':')
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| bad("Num", f[0], "a hex kernel pointer followed by ':'"))?;
    let sock_type = hex("Type", f[4])?;
    if !matches!(sock_type, SOCK_STREAM | SOCK_DGRAM | SOCK_SEQPACKET) {
        return Err(bad(
            "Type",
            f[4],
            "0001 (stream), 0002 (dgram) or 0005 (seqpacket)",
        ));
    }
    let st = hex("St", f[5])?;
    if !(SS_UNCONNECTED..=SS_DISCONNECTING).contains(&st) {
        return Err(bad("St", f[5], "a socket state 01 to 04"));
    }
    // The kernel writes ' ' and the name only for a socket that has one, so
    // a lone space is a name whose first line is empty (it began with \n).
    let path = rest.strip_prefix(' ');
    Ok(UnixRow {
        num: num.to_string(),
        ref_count: hex("RefCount", f[1])?,
        protocol: hex("Protocol", f[2])?,
        flags: hex("Flags", f[3])?,
        sock_type,
        st,
        inode: dec("Inode", f[6])?,
        path: path.map(str::to_string),
        raw_line: line.to_string(),
    })
}

/// A socket's own row, as [`find_row`] found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundRow {
    pub table: ProcTable,
    /// The table's header line.
    pub header: String,
    pub row: Row,
}

/// One row of an inet table (with the protocol it belongs to) or of the
/// unix table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Row {
    Inet(InetRow, Proto),
    Unix(UnixRow),
}

/// Find `s`'s own line in the /proc/net table under `dir` (by inode, or by
/// addresses when it has none). Must run in `s`'s namespace. The file is
/// read line by line and reading stops at the row: the kernel generates the
/// text as it is read, and listeners come first.
pub fn find_row(dir: &Path, s: &Socket) -> Option<FoundRow> {
    use std::io::BufRead;
    let table = ProcTable::of(s.proto, s.family)?;
    let path = dir.join(table.file_name());
    // Small reads: the kernel formats the file as it is read, and a
    // listener's row (the usual question) comes in the first few.
    let mut r = std::io::BufReader::with_capacity(8 * 1024, std::fs::File::open(&path).ok()?);
    // Lines are read as bytes: a UNIX socket's name need not be UTF-8.
    let mut raw = Vec::with_capacity(256);
    let mut next_line = |r: &mut std::io::BufReader<std::fs::File>| -> Option<String> {
        raw.clear();
        if r.read_until(b'\n', &mut raw).ok()? == 0 {
            return None;
        }
        let text = String::from_utf8_lossy(&raw);
        Some(text.strip_suffix('\n').unwrap_or(&text).to_string())
    };
    let header = next_line(&mut r)?;
    let inode = s.inode.to_string();
    // The inode is the 10th field of inet rows and the 7th of unix rows.
    let field = if table == ProcTable::Unix { 6 } else { 9 };
    loop {
        let line = next_line(&mut r)?;
        let text = line.as_str();
        if s.inode != 0 && text.split_whitespace().nth(field) != Some(inode.as_str()) {
            continue;
        }
        if table == ProcTable::Unix {
            let Ok(mut row) = parse_unix_line(text) else {
                continue;
            };
            // A name holding newlines continues on the following lines
            // (the kernel prints it raw): those are not rows of their own.
            if let Some(path) = row.path.as_mut() {
                while let Some(more) = next_line(&mut r) {
                    if parse_unix_line(&more).is_ok() {
                        break;
                    }
                    path.push('\n');
                    path.push_str(&more);
                    row.raw_line.push('\n');
                    row.raw_line.push_str(&more);
                }
            }
            return Some(FoundRow {
                table,
                header,
                row: Row::Unix(row),
            });
        }
        let Ok(row) = parse_inet_line(text) else {
            continue;
        };
        let hit = s.inode != 0
            || (Some(row.local.port()) == s.local.port()
                && Some(row.remote.port()) == s.peer.port()
                && s.local.ip() == Some(row.local.ip())
                && s.peer.ip() == Some(row.remote.ip()));
        if hit {
            return Some(FoundRow {
                table,
                header,
                row: Row::Inet(row, s.proto),
            });
        }
    }
}

/// The sockets of one table, and the lines that were not rows.
#[derive(Debug, Default)]
pub struct TableRead {
    pub sockets: Vec<Socket>,
    /// Lines skipped because they were not rows.
    pub skipped: usize,
    /// What was wrong with the first of them (file, line, field).
    pub first_error: Option<String>,
}

/// Reads one table from `dir` (e.g. /proc/self/net, /proc/PID/net) and
/// converts every row. Bytes that are not UTF-8 (possible in UNIX paths)
/// are replaced by U+FFFD. A line that is not a row is skipped and counted
/// (never fatal); a file that is not the table it should be is an error.
pub fn read_table(dir: &Path, table: ProcTable) -> Result<TableRead, ProcReadError> {
    let path = dir.join(table.file_name());
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound && dir.is_dir() => {
            return Err(ProcReadError::NotAvailable { path });
        }
        Err(source) => return Err(ProcReadError::Io { path, source }),
    };
    let text = String::from_utf8_lossy(&bytes);
    let note = |e: Option<ProcParseError>| e.map(|e| format!("{}: {e}", path.display()));
    let read = match table.proto() {
        Some(proto) => parse_inet_lenient(&text).map(|t| TableRead {
            sockets: t
                .rows
                .iter()
                .map(|r| r.to_socket(proto, table.family()))
                .collect(),
            skipped: t.skipped,
            first_error: note(t.first_error),
        }),
        // A row with inode 0 is the server end of a connection still in a
        // listener's accept queue (no file yet): sock_diag does not list
        // those, and the listener's Recv-Q counts them, so neither does
        // this source: both give the same rows.
        None => parse_unix_lenient(&text).map(|t| TableRead {
            sockets: t
                .rows
                .iter()
                .filter(|r| r.inode != 0)
                .map(UnixRow::to_socket)
                .collect(),
            skipped: t.skipped,
            first_error: note(t.first_error),
        }),
    };
    read.map_err(|source| ProcReadError::Parse { path, source })
}

fn bad(field: &'static str, value: &str, expected: &'static str) -> LineError {
    LineError::BadField {
        field,
        value: value.to_string(),
        expected,
    }
}

/// Hex digits only (no sign, no 0x), fitting in `T`.
fn hex<T: TryFrom<u64>>(field: &'static str, s: &str) -> Result<T, LineError> {
    let err = || bad(field, s, "a hex number of the field's size");
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err());
    }
    let n = u64::from_str_radix(s, 16).map_err(|_| err())?;
    T::try_from(n).map_err(|_| err())
}

/// A decimal number as printf prints it (no '+').
fn dec<T: std::str::FromStr>(field: &'static str, s: &str) -> Result<T, LineError> {
    let err = || bad(field, s, "a decimal number of the field's size");
    if s.starts_with('+') {
        return Err(err());
    }
    s.parse().map_err(|_| err())
}

fn pair<'a>(field: &'static str, s: &'a str) -> Result<(&'a str, &'a str), LineError> {
    s.split_once(':')
        .ok_or_else(|| bad(field, s, "two hex numbers joined by ':'"))
}

/// `ADDR:PORT`: 8 (IPv4) or 32 (IPv6) hex digits of host-order 32-bit
/// words, then a 4-digit hex port.
fn addr(field: &'static str, s: &str) -> Result<SocketAddr, LineError> {
    let err = || bad(field, s, "ADDR:PORT in hex, with 8 or 32 address digits");
    let (a, p) = s.split_once(':').ok_or_else(err)?;
    if !a.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err());
    }
    // The kernel prints each in-memory 32-bit word as a host-order number,
    // so the number's native-endian bytes are the address bytes.
    let word = |i: usize| u32::from_str_radix(&a[8 * i..8 * i + 8], 16).map(u32::to_ne_bytes);
    let ip = match a.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0).map_err(|_| err())?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[4 * i..4 * i + 4].copy_from_slice(&word(i).map_err(|_| err())?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return Err(err()),
    };
    let port = hex(field, p).map_err(|_| err())?;
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    //! Fixtures are real captures made by tests/fixtures/proc/capture.py in
    //! a private network namespace; tests/fixtures/proc/README.md lists
    //! every socket in them.
    use super::*;

    const TCP: &str = include_str!("../../tests/fixtures/proc/tcp");
    const TCP6: &str = include_str!("../../tests/fixtures/proc/tcp6");
    const UDP: &str = include_str!("../../tests/fixtures/proc/udp");
    const UDP6: &str = include_str!("../../tests/fixtures/proc/udp6");
    const UDPLITE: &str = include_str!("../../tests/fixtures/proc/udplite");
    const UDPLITE6: &str = include_str!("../../tests/fixtures/proc/udplite6");
    const RAW: &str = include_str!("../../tests/fixtures/proc/raw");
    const RAW6: &str = include_str!("../../tests/fixtures/proc/raw6");
    const UNIX: &str = include_str!("../../tests/fixtures/proc/unix");

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// (local, remote, st, tx, rx, tr, tm_when, inode) of every row.
    type Summary = (SocketAddr, SocketAddr, u8, u32, u32, u8, u64, u64);

    fn summary(rows: &[InetRow]) -> Vec<Summary> {
        rows.iter()
            .map(|r| {
                let (l, p) = (r.local, r.remote);
                (l, p, r.st, r.tx_queue, r.rx_queue, r.tr, r.tm_when, r.inode)
            })
            .collect()
    }

    #[test]
    fn tcp_fixture_every_row() {
        let rows = parse_inet(TCP).unwrap();
        let lo = |p: u16| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p);
        let any = sa("0.0.0.0:0");
        #[rustfmt::skip]
        let want: Vec<Summary> = vec![
            (lo(8090), any, 0x0A, 0, 0, 0, 0, 7555),           // tcp4-listener-small
            (lo(8080), any, 0x0A, 0, 1, 0, 0, 7545),           // tcp4-listener, 1 in accept queue
            (lo(8080), lo(55424), 0x08, 0, 1, 0, 0, 7553),     // CLOSE-WAIT: the FIN counts 1
            (lo(8090), lo(39226), 0x01, 0, 4096, 0, 0, 7557),  // tcp4-receiver-full
            (lo(44688), lo(8082), 0x01, 0, 0, 0, 0, 7562),     // tcp4-client-to-dualstack
            (lo(8080), lo(55426), 0x01, 0, 0, 0, 0, 0),        // not yet accepted: no inode
            (lo(8080), lo(55408), 0x08, 0, 1, 0, 0, 7551),     // tcp4-closewait
            (lo(39226), lo(8090), 0x01, 94208, 0, 4, 12, 7556), // tcp4-sender-stuck, probe timer
            (lo(8080), lo(55396), 0x01, 0, 100, 0, 0, 7547),   // tcp4-server-unread
            (lo(55396), lo(8080), 0x01, 0, 0, 2, 59909, 7546), // keepalive timer
            (lo(55402), lo(8080), 0x06, 0, 0, 3, 5919, 0),     // TIME-WAIT
            (lo(55408), lo(8080), 0x05, 0, 0, 0, 0, 7550),     // tcp4-finwait2 (open)
            (lo(55424), lo(8080), 0x05, 0, 0, 3, 5930, 0),     // orphaned FIN-WAIT-2
            (lo(55426), lo(8080), 0x01, 0, 0, 0, 0, 7554),     // tcp4-client-unaccepted
        ];
        assert_eq!(summary(&rows), want);
        assert_eq!(
            rows.iter().map(|r| r.sl).collect::<Vec<_>>(),
            (0..14).collect::<Vec<_>>()
        );
        assert!(rows.iter().all(|r| r.uid == 0 && r.retrnsmt == 0));
    }

    #[test]
    fn tcp_listener_row_in_full() {
        let rows = parse_inet(TCP).unwrap();
        let want = InetRow {
            sl: 1,
            local: sa("127.0.0.1:8080"),
            remote: sa("0.0.0.0:0"),
            st: 0x0A,
            tx_queue: 0,
            rx_queue: 1,
            tr: 0,
            tm_when: 0,
            retrnsmt: 0,
            uid: 0,
            timeout: 0,
            inode: 7545,
            rest: strings(&["2", "000000008f9975f7", "100", "0", "0", "10", "0"]),
            raw_line: TCP.lines().nth(2).unwrap().to_string(),
        };
        assert_eq!(rows[1], want);
        assert_eq!(rows[1].raw_line.len(), 149, "seq_pad pads tcp lines to 149");
    }

    #[test]
    fn tcp_listener_socket_has_no_send_q() {
        let rows = parse_inet(TCP).unwrap();
        let s = rows[1].to_socket(Proto::Tcp, Family::Inet);
        let want = Socket {
            proto: Proto::Tcp,
            family: Family::Inet,
            state: State::Listen,
            recv_q: Some(1),
            send_q: None,
            local: Endpoint::Inet {
                addr: "127.0.0.1".parse().unwrap(),
                port: 8080,
            },
            peer: Endpoint::Inet {
                addr: "0.0.0.0".parse().unwrap(),
                port: 0,
            },
            inode: 7545,
            uid: Some(0),
            cookie: None,
            cgroup_id: None,
            shutdown: None,
            v6only: None,
            bound_ifindex: None,
            bound_ifname: None,
            timer: Some(Timer {
                kind: TimerKind::Off,
                expires_ms: 0,
                retrans: 0,
            }),
            netns: None,
            source: SourceKind::Proc,
            tcp_info: None,
            skmem: None,
            cong: None,
            owners: vec![],
        };
        assert_eq!(s, want);
    }

    #[test]
    fn tcp_timers_and_queues_become_socket_fields() {
        let rows = parse_inet(TCP).unwrap();
        let sock = |i: usize| rows[i].to_socket(Proto::Tcp, Family::Inet);

        let stuck = sock(7);
        assert_eq!(
            (stuck.state, stuck.send_q, stuck.recv_q),
            (State::Established, Some(94208), Some(0))
        );
        assert_eq!(
            stuck.timer,
            Some(Timer {
                kind: TimerKind::Persist,
                expires_ms: 120,
                retrans: 0
            })
        );
        assert_eq!(
            rows[7].rest,
            strings(&["2", "000000005f3be2c4", "20", "0", "0", "12", "-1"])
        );

        let keepalive = sock(9);
        assert_eq!(
            keepalive.timer,
            Some(Timer {
                kind: TimerKind::Keepalive,
                expires_ms: 599_090,
                retrans: 0
            })
        );

        let tw = sock(10);
        assert_eq!(
            (tw.state, tw.inode, tw.send_q),
            (State::TimeWait, 0, Some(0))
        );
        assert_eq!(
            tw.timer,
            Some(Timer {
                kind: TimerKind::Timewait,
                expires_ms: 59_190,
                retrans: 0
            })
        );
        assert_eq!(rows[10].rest, strings(&["3", "0000000042c39a22"]));

        // An orphaned FIN-WAIT-2 is printed as a time-wait sock.
        let orphan = sock(12);
        assert_eq!((orphan.state, orphan.inode), (State::FinWait2, 0));
        assert_eq!(orphan.timer.map(|t| t.kind), Some(TimerKind::Timewait));

        assert_eq!((sock(8).recv_q, sock(8).send_q), (Some(100), Some(0)));
        assert_eq!(sock(2).state, State::CloseWait);
    }

    #[test]
    fn timer_retrans_follows_inet_diag() {
        let mut row = parse_inet(TCP).unwrap().remove(9);
        row.retrnsmt = 5;
        row.timeout = 2;
        assert_eq!(row.timer().retrans, 2, "keepalive counts probes");
        row.tr = 1;
        assert_eq!(row.timer().retrans, 5, "retransmit counts retransmits");
        row.tr = 0;
        assert_eq!(row.timer().retrans, 0);
        // A kernel from before 2012 could print an overdue timer as a wrapped negative.
        row.tm_when = (-3i64) as u64;
        assert_eq!(row.expires_ms(), -30);
    }

    #[test]
    fn tcp6_fixture_with_ipv4_mapped_addresses() {
        let rows = parse_inet(TCP6).unwrap();
        #[rustfmt::skip]
        let want: Vec<Summary> = vec![
            (sa("[::1]:8081"), sa("[::]:0"), 0x0A, 0, 0, 0, 0, 7558),
            (sa("[::]:8082"), sa("[::]:0"), 0x0A, 0, 0, 0, 0, 7561),
            (sa("[::1]:8081"), sa("[::1]:33624"), 0x01, 0, 0, 0, 0, 7560),
            (sa("[::ffff:127.0.0.1]:8082"), sa("[::ffff:127.0.0.1]:44688"), 0x01, 0, 0, 0, 0, 7563),
            (sa("[::1]:33624"), sa("[::1]:8081"), 0x01, 0, 0, 0, 0, 7559),
        ];
        assert_eq!(summary(&rows), want);
        // Mapped addresses stay IPv6.
        assert!(rows[3].local.is_ipv6());
        let s = rows[3].to_socket(Proto::Tcp, Family::Inet6);
        assert_eq!(
            s.local,
            Endpoint::Inet {
                addr: "::ffff:127.0.0.1".parse().unwrap(),
                port: 8082
            }
        );
        assert_eq!(
            (s.family, s.state, s.send_q),
            (Family::Inet6, State::Established, Some(0))
        );
        assert_eq!(rows[0].to_socket(Proto::Tcp, Family::Inet6).send_q, None);
    }

    #[test]
    fn udp_udplite_raw_fixtures() {
        let udp = parse_inet(UDP).unwrap();
        #[rustfmt::skip]
        assert_eq!(summary(&udp), vec![
            (sa("127.0.0.1:5300"), sa("0.0.0.0:0"), 0x07, 0, 832, 0, 0, 7564),
            (sa("127.0.0.1:5301"), sa("127.0.0.1:5300"), 0x01, 0, 0, 0, 0, 7565),
            (sa("0.0.0.0:5303"), sa("0.0.0.0:0"), 0x07, 0, 0, 0, 0, 7567),
        ]);
        assert_eq!(
            udp.iter().map(|r| r.sl).collect::<Vec<_>>(),
            vec![345, 346, 348]
        );
        assert_eq!(udp[0].rest, strings(&["2", "0000000091e661d2", "0"]));
        let u = udp[0].to_socket(Proto::Udp, Family::Inet);
        assert_eq!(
            (u.state, u.recv_q, u.send_q),
            (State::Close, Some(832), Some(0))
        );
        assert_eq!(
            udp[1].to_socket(Proto::Udp, Family::Inet).state,
            State::Established
        );

        let one = |text: &str| summary(&parse_inet(text).unwrap());
        let none6 = sa("[::]:0");
        assert_eq!(
            one(UDP6),
            vec![(sa("[::1]:5302"), none6, 7, 0, 0, 0, 0, 7566)]
        );
        assert_eq!(
            one(UDPLITE),
            vec![(sa("127.0.0.1:5400"), sa("0.0.0.0:0"), 7, 0, 0, 0, 0, 7568)]
        );
        assert_eq!(
            one(UDPLITE6),
            vec![(sa("[::1]:5401"), none6, 7, 0, 0, 0, 0, 7569)]
        );
        // RAW: the port is the protocol number (ICMP 1, ICMPv6 58).
        assert_eq!(
            one(RAW),
            vec![(sa("0.0.0.0:1"), sa("0.0.0.0:0"), 7, 0, 0, 0, 0, 7570)]
        );
        assert_eq!(
            one(RAW6),
            vec![(sa("[::1]:58"), none6, 7, 0, 0, 0, 0, 7571)]
        );
        let r = parse_inet(RAW6).unwrap()[0].to_socket(Proto::Raw, Family::Inet6);
        assert_eq!(
            (r.proto, r.state, r.local.port()),
            (Proto::Raw, State::Close, Some(58))
        );
    }

    #[test]
    fn unix_fixture_every_row() {
        let rows = parse_unix(UNIX).unwrap();
        let got: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.inode,
                    r.sock_type,
                    r.st,
                    r.flags,
                    r.ref_count,
                    r.path.as_deref(),
                )
            })
            .collect();
        let l = Some("/tmp/sockscope-fx/listen.sock");
        #[rustfmt::skip]
        let want = vec![
            (7573, 1, 3, 0, 3, None),                                        // unix-client
            (7582, 1, 3, 0, 3, None),                                        // unix-pair-b
            (0, 1, 2, 0, 3, l),                                              // accept-queue embryo
            (7575, 1, 3, 0, 3, None),                                        // unix-client-pending
            (7574, 1, 3, 0, 3, l),                                           // unix-accepted
            (7572, 1, 1, 0x10000, 2, l),                                     // unix-listener
            (7578, 2, 3, 0, 3, Some("/tmp/sockscope-fx/with space.sock")),   // bound and connected to
            (7579, 2, 1, 0, 2, Some("/tmp/sockscope-fx/trailing ")),         // trailing space kept
            (7583, 5, 1, 0x10000, 2, Some("/tmp/sockscope-fx/seq.sock")),
            (7581, 1, 3, 0, 3, None),                                        // unix-pair-a
            (7580, 2, 3, 0, 2, None),                                        // unix-dgram-connected
            (7576, 1, 1, 0x10000, 2, Some("@sockscope-abstract")),
            (7577, 2, 1, 0, 2, Some("@a@b")),                                // NUL printed as '@'
        ];
        assert_eq!(got, want);
        assert_eq!(
            rows[5],
            UnixRow {
                num: "000000005f4e4c1c".into(),
                ref_count: 2,
                protocol: 0,
                flags: SO_ACCEPTCON,
                sock_type: SOCK_STREAM,
                st: SS_UNCONNECTED,
                inode: 7572,
                path: l.map(String::from),
                raw_line: UNIX.lines().nth(6).unwrap().to_string(),
            }
        );
    }

    #[test]
    fn unix_sockets() {
        let rows = parse_unix(UNIX).unwrap();
        let st: Vec<_> = rows
            .iter()
            .map(|r| {
                let s = r.to_socket();
                (s.proto, s.state)
            })
            .collect();
        use Proto::*;
        use State::*;
        #[rustfmt::skip]
        assert_eq!(st, vec![
            (UnixStream, Established), (UnixStream, Established), (UnixStream, Established),
            (UnixStream, Established), (UnixStream, Established), (UnixStream, Listen),
            (UnixDgram, Established), (UnixDgram, Close), (UnixSeqpacket, Listen),
            (UnixStream, Established), (UnixDgram, Established), (UnixStream, Listen),
            (UnixDgram, Close),
        ]);
        let want = Socket {
            proto: UnixDgram,
            family: Family::Unix,
            state: Established,
            recv_q: None,
            send_q: None,
            local: Endpoint::Unix {
                path: Some("/tmp/sockscope-fx/with space.sock".into()),
                inode: 7578,
            },
            peer: Endpoint::Unknown,
            inode: 7578,
            uid: None,
            cookie: None,
            cgroup_id: None,
            shutdown: None,
            v6only: None,
            bound_ifindex: None,
            bound_ifname: None,
            timer: None,
            netns: None,
            source: SourceKind::Proc,
            tcp_info: None,
            skmem: None,
            cong: None,
            owners: vec![],
        };
        assert_eq!(rows[6].to_socket(), want);
    }

    #[test]
    fn unix_disconnecting_is_close() {
        let r =
            parse_unix_line("0000000000000000: 00000001 00000000 00000000 0001 04     0").unwrap();
        assert_eq!(
            (r.st, r.state(), r.path),
            (SS_DISCONNECTING, State::Close, None)
        );
    }

    #[test]
    fn empty_and_header_only() {
        assert_eq!(parse_inet(""), Err(ProcParseError::Empty));
        assert_eq!(parse_unix(""), Err(ProcParseError::Empty));
        // No sockets is a header alone, and that is not an error.
        let header = TCP.lines().next().unwrap();
        assert_eq!(parse_inet(&format!("{header}\n")), Ok(vec![]));
        assert_eq!(parse_inet(UDP.lines().next().unwrap()), Ok(vec![]));
        assert_eq!(
            parse_unix("Num       RefCount Protocol Flags    Type St Inode Path\n"),
            Ok(vec![])
        );
    }

    #[test]
    fn wrong_header() {
        assert_eq!(
            parse_unix(TCP).unwrap_err().to_string(),
            format!(
                "line 1: {:?} is not a table header (it should start with \"Num\")",
                TCP.lines().next().unwrap()
            )
        );
        assert!(matches!(
            parse_inet(UNIX),
            Err(ProcParseError::BadHeader { expected: "sl", .. })
        ));
    }

    #[test]
    fn errors_name_line_and_field() {
        let header = TCP.lines().next().unwrap();
        let good = TCP.lines().nth(1).unwrap();
        let text = format!("{header}\n{good}\n\n   1: 0100007F:1F90 0100007F\n");
        let err = parse_inet(&text).unwrap_err();
        assert_eq!(
            err,
            ProcParseError::Line {
                line: 4,
                error: LineError::TooFewFields {
                    expected: 10,
                    found: 3
                }
            }
        );
        assert_eq!(
            err.to_string(),
            "line 4: too few fields: expected at least 10, found 3"
        );

        let bad_hex = good.replace("0100007F:1F9A", "0100007G:1F9A");
        assert_eq!(
            parse_inet_line(&bad_hex).unwrap_err().to_string(),
            "field local_address: \"0100007G:1F9A\" is not ADDR:PORT in hex, with 8 or 32 address digits"
        );
        let cases = [
            (
                good.replace("0100007F:1F9A", "100007F:1F9A"),
                "local_address",
            ), // 7 digits
            (
                good.replace("0100007F:1F9A", "0100007\u{e9}:1F9A"),
                "local_address",
            ), // not ASCII
            (
                good.replace("0100007F:1F9A", "0100007F:11F9A"),
                "local_address",
            ), // port > u16
            (
                good.replacen(" 00000000:0000 ", " 00000000 ", 1),
                "rem_address",
            ),
            (good.replace(" 0A ", " 0E "), "st"),
            (good.replace(" 0A ", " +A "), "st"),
            (
                good.replace("00000000:00000000", "00000000-00000000"),
                "tx_queue:rx_queue",
            ),
            (good.replace("00:00000000", "100:00000000"), "tr"),
            (good.replace("   0:", "   x:"), "sl"),
            (good.replace("   0:", "   0"), "sl"),
            (good.replace(" 7555 ", " 7555x "), "inode"),
            (good.replace(" 7555 ", " +7555 "), "inode"),
            (good.replace("     0        0", "    -1        0"), "uid"),
        ];
        for (line, field) in cases {
            match parse_inet_line(&line) {
                Err(LineError::BadField { field: f, .. }) => assert_eq!(f, field, "{line}"),
                other => panic!("{line}: {other:?}"),
            }
        }
    }

    #[test]
    fn unix_errors() {
        let cases = [
            (
                "0000000000000000: 00000002 00000000 00010000 0001 01",
                6usize,
            ),
            ("0000000000000000:", 1),
            ("", 0),
        ];
        for (line, found) in cases {
            assert_eq!(
                parse_unix_line(line),
                Err(LineError::TooFewFields { expected: 7, found })
            );
        }
        let good = "000000005f4e4c1c: 00000002 00000000 00010000 0001 01  7572 /x";
        for (line, field) in [
            (good.replace(" 0001 ", " 0003 "), "Type"),
            (good.replace(" 01 ", " 05 "), "St"),
            (good.replace(" 01 ", " 1G "), "St"),
            (good.replace("5f4e4c1c:", "5f4e4c1c"), "Num"),
            (good.replace("5f4e4c1c:", "5f4e4c1z:"), "Num"),
            (good.replace(" 7572 ", " 75x2 "), "Inode"),
            (good.replace(" 00000002 ", " 1000000002 "), "RefCount"),
        ] {
            match parse_unix_line(&line) {
                Err(LineError::BadField { field: f, .. }) => assert_eq!(f, field, "{line}"),
                other => panic!("{line}: {other:?}"),
            }
        }
        let text = format!("{}\n{good}\nnot a line\n", UNIX.lines().next().unwrap());
        assert!(matches!(
            parse_unix(&text),
            Err(ProcParseError::Line { line: 3, .. })
        ));
    }

    /// Every prefix of every fixture line parses or fails cleanly: it is a
    /// row exactly when all the fixed fields are present.
    #[test]
    fn truncated_lines_never_panic() {
        for text in [TCP, TCP6, UDP, UDP6, UDPLITE, UDPLITE6, RAW, RAW6] {
            for line in text.lines().skip(1) {
                for cut in (0..=line.len()).filter(|&i| line.is_char_boundary(i)) {
                    let part = &line[..cut];
                    let complete = part.split_whitespace().count() >= 10;
                    assert_eq!(parse_inet_line(part).is_ok(), complete, "{part:?}");
                }
            }
        }
        for line in UNIX.lines().skip(1) {
            for cut in (0..=line.len()).filter(|&i| line.is_char_boundary(i)) {
                let part = &line[..cut];
                let complete = part.split_whitespace().count() >= 7;
                assert_eq!(parse_unix_line(part).is_ok(), complete, "{part:?}");
            }
        }
    }

    #[test]
    fn tables() {
        let names: Vec<_> = ProcTable::ALL.iter().map(|t| t.file_name()).collect();
        assert_eq!(
            names,
            [
                "tcp", "tcp6", "udp", "udp6", "udplite", "udplite6", "raw", "raw6", "unix"
            ]
        );
        assert_eq!(ProcTable::Udplite6.proto(), Some(Proto::Udplite));
        assert_eq!(ProcTable::Raw6.family(), Family::Inet6);
        assert_eq!(ProcTable::Unix.proto(), None);
        assert_eq!(ProcTable::Unix.family(), Family::Unix);
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("sockscope-procnet-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn read_table_from_a_directory() {
        let dir = scratch_dir("read");
        std::fs::write(dir.join("tcp6"), TCP6).unwrap();
        std::fs::write(dir.join("unix"), UNIX).unwrap();
        std::fs::write(dir.join("raw"), "garbage\n").unwrap();

        let tcp6 = read_table(&dir, ProcTable::Tcp6).unwrap().sockets;
        let want: Vec<_> = parse_inet(TCP6)
            .unwrap()
            .iter()
            .map(|r| r.to_socket(Proto::Tcp, Family::Inet6))
            .collect();
        assert_eq!(tcp6, want);
        let unix = read_table(&dir, ProcTable::Unix).unwrap().sockets;
        let embryos = parse_unix(UNIX)
            .unwrap()
            .iter()
            .filter(|r| r.inode == 0)
            .count();
        assert_eq!(unix.len() + embryos, parse_unix(UNIX).unwrap().len());
        assert!(unix.iter().all(|s| s.inode != 0));
        // One bad line costs that line, not the table: it is counted.
        let mut text = TCP6.to_string();
        text.push_str("   9: not a row at all\n");
        std::fs::write(dir.join("tcp6"), &text).unwrap();
        let t = read_table(&dir, ProcTable::Tcp6).unwrap();
        assert_eq!(t.sockets, want);
        assert_eq!(t.skipped, 1);
        assert!(
            t.first_error.as_deref().unwrap().contains("tcp6: line "),
            "{:?}",
            t.first_error
        );

        match read_table(&dir, ProcTable::Udplite) {
            Err(ProcReadError::NotAvailable { path }) => assert_eq!(path, dir.join("udplite")),
            other => panic!("{other:?}"),
        }
        match read_table(&dir, ProcTable::Raw) {
            Err(e @ ProcReadError::Parse { .. }) => assert_eq!(
                e.to_string(),
                format!(
                    "cannot parse {}: line 1: \"garbage\" is not a table header (it should start with \"sl\")",
                    dir.join("raw").display()
                )
            ),
            other => panic!("{other:?}"),
        }
        // A directory that is not there is an I/O error, not a missing table.
        let gone = dir.join("no-such-dir");
        assert!(matches!(
            read_table(&gone, ProcTable::Tcp),
            Err(ProcReadError::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unix_names_with_newlines_continue_on_the_next_lines() {
        let header = "Num       RefCount Protocol Flags    Type St Inode Path";
        let text = format!(
            "{header}\n\
             0000000000000000: 00000002 00000000 00010000 0001 01 101 /tmp/a\n\
             u_str LISTEN forged row\n\
             \n\
             0000000000000000: 00000002 00000000 00000000 0002 01 102 @x@y\n\
             0000000000000000: 00000002 00000000 00000000 0002 01 103 \n\
             tail\n\
             0000000000000000: 00000002 00000000 00000000 0002 01 104\n\
             stray line after an unnamed socket\n"
        );
        let t = parse_unix_lenient(&text).unwrap();
        let got: Vec<(u64, Option<&str>)> = t
            .rows
            .iter()
            .map(|r| (r.inode, r.path.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (101, Some("/tmp/a\nu_str LISTEN forged row\n")),
                (102, Some("@x@y")),
                (103, Some("\ntail")),
                (104, None),
            ]
        );
        assert_eq!(t.skipped, 1);
        assert!(matches!(
            t.first_error,
            Some(ProcParseError::Line { line: 9, .. })
        ));
        // The strict parser still refuses such a table.
        assert!(parse_unix(&text).is_err());
    }

    #[test]
    fn read_table_live() {
        let dir = Path::new("/proc/self/net");
        for t in [
            ProcTable::Tcp,
            ProcTable::Udp,
            ProcTable::Raw,
            ProcTable::Unix,
        ] {
            let socks = read_table(dir, t).unwrap().sockets;
            assert!(socks.iter().all(|s| s.source == SourceKind::Proc), "{t:?}");
        }
    }
}
