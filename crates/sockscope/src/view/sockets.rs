//! The socket table view (`sockscope ls`): ss's columns, plus owners and the
//! namespace, as an aligned table or as JSON / JSON lines.

use super::table::{Align, Color, Table, emit_cell};
use crate::escape::escape_str;
use crate::model::{Endpoint, Family, Owner, Proto, SkMem, Socket, State, TcpInfo};
use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::IpAddr;

/// What to show.
#[derive(Clone, Copy, Debug, Default)]
pub struct Columns {
    /// Netid column (several protocols shown).
    pub netid: bool,
    /// Namespace column (several namespaces read).
    pub netns: bool,
    /// Process column (owners asked for).
    pub process: bool,
    /// uid, inode, cookie, cgroup, v6only (ss -e).
    pub extended: bool,
    /// Timer column (ss -o).
    pub timers: bool,
    /// A detail line with TCP internals (ss -i).
    pub info: bool,
    /// Socket memory in the detail line (ss -m).
    pub mem: bool,
}

/// Resolves a port to a service name (for non-numeric output).
pub type PortNamer<'a> = &'a dyn Fn(u16, Proto) -> Option<&'a str>;

/// Format an address and port as ss does: `127.0.0.1:8080`, `[::1]:22`,
/// `*` for port 0, `*:22` for a dual-stack [::] socket, and `%IFNAME`
/// after the address of a socket bound to an interface
/// (`0.0.0.0%eth0:67`, `[fe80::1]%eth0:546`).
pub fn format_inet(
    out: &mut String,
    addr: IpAddr,
    port: u16,
    proto: Proto,
    v6only: Option<bool>,
    names: Option<PortNamer>,
) {
    format_inet_dev(out, addr, port, proto, v6only, None, names)
}

/// [`format_inet`] with the interface the socket is bound to.
pub fn format_inet_dev(
    out: &mut String,
    addr: IpAddr,
    port: u16,
    proto: Proto,
    v6only: Option<bool>,
    ifname: Option<&str>,
    names: Option<PortNamer>,
) {
    match addr {
        IpAddr::V4(a) => {
            let _ = write!(out, "{a}");
        }
        // ss prints `*` for the unspecified IPv6 address unless the socket
        // is IPv6-only (a source that does not say counts as not).
        IpAddr::V6(a) if a.is_unspecified() && v6only != Some(true) => out.push('*'),
        IpAddr::V6(a) => {
            let _ = write!(out, "[{a}]");
        }
    }
    if let Some(dev) = ifname {
        out.push('%');
        out.push_str(&escape_str(dev));
    }
    out.push(':');
    if port == 0 {
        out.push('*');
    } else if let Some(n) = names.and_then(|f| f(port, proto)) {
        out.push_str(n);
    } else {
        let _ = write!(out, "{port}");
    }
}

fn format_endpoint(out: &mut String, s: &Socket, e: &Endpoint, names: Option<PortNamer>) {
    match e {
        Endpoint::Inet { addr, port } => format_inet_dev(
            out,
            *addr,
            *port,
            s.proto,
            s.v6only,
            // ss names the device after the local address only.
            s.bound_ifname
                .as_deref()
                .filter(|_| std::ptr::eq(e, &s.local)),
            names,
        ),
        Endpoint::Unix { path, inode } => {
            // Any user may bind a name holding a newline or an escape
            // sequence: shown escaped, never raw.
            match path {
                Some(p) => out.push_str(&escape_str(p)),
                None => out.push('*'),
            }
            let _ = write!(out, " {inode}");
        }
        // The source cannot tell (a UNIX peer read from /proc).
        Endpoint::Unknown => out.push_str("* -"),
    }
}

/// `python3(pid=10,fd=3),python3(pid=11,fd=3)`; an fd in the table of a
/// thread that has its own: `java(pid=10,tid=12,fd=7)`.
pub fn format_owners(out: &mut String, owners: &[Owner]) {
    for (i, o) in owners.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match o.tid {
            // An fd table of one thread's own: name it.
            Some(t) => {
                let _ = write!(
                    out,
                    "{}(pid={},tid={t},fd={})",
                    escape_str(&o.comm),
                    o.pid,
                    o.fd
                );
            }
            None => {
                let _ = write!(out, "{}(pid={},fd={})", escape_str(&o.comm), o.pid, o.fd);
            }
        }
    }
}

fn state_color(s: State) -> Option<Color> {
    match s {
        State::Listen => Some(Color::Green),
        State::Established => None,
        State::CloseWait => Some(Color::Yellow),
        State::TimeWait | State::Close => Some(Color::Dim),
        State::SynSent | State::SynRecv | State::NewSynRecv => Some(Color::Cyan),
        _ => Some(Color::Yellow),
    }
}

fn opt(out: &mut String, v: Option<impl std::fmt::Display>) {
    match v {
        Some(v) => {
            let _ = write!(out, "{v}");
        }
        None => out.push('-'),
    }
}

fn spec(cols: Columns) -> Vec<(&'static str, Align)> {
    let mut spec: Vec<(&'static str, Align)> = Vec::new();
    if cols.netns {
        spec.push(("Netns", Align::Left));
    }
    if cols.netid {
        spec.push(("Netid", Align::Left));
    }
    spec.extend([
        ("State", Align::Left),
        ("Recv-Q", Align::Right),
        ("Send-Q", Align::Right),
        ("Local Address:Port", Align::Left),
        ("Peer Address:Port", Align::Left),
    ]);
    if cols.timers {
        spec.push(("Timer", Align::Left));
    }
    if cols.extended {
        spec.extend([
            ("Uid", Align::Right),
            ("Inode", Align::Right),
            ("Cookie", Align::Left),
            ("Cgroup", Align::Right),
        ]);
    }
    if cols.process {
        spec.push(("Process", Align::Left));
    }
    spec
}

/// Render one socket's cells into `buf`, recording where each ends and its
/// colour.
fn row_cells(
    s: &Socket,
    cols: Columns,
    names: Option<PortNamer>,
    buf: &mut String,
    cells: &mut Vec<(usize, Option<Color>)>,
) {
    buf.clear();
    cells.clear();
    let mut cell = |buf: &mut String, color: Option<Color>, f: &mut dyn FnMut(&mut String)| {
        f(buf);
        cells.push((buf.len(), color));
    };
    if cols.netns {
        cell(buf, None, &mut |b| match &s.netns {
            Some(n) => b.push_str(&escape_str(&n.to_string())),
            None => b.push('-'),
        });
    }
    if cols.netid {
        cell(buf, None, &mut |b| b.push_str(s.proto.short()));
    }
    cell(buf, state_color(s.state), &mut |b| {
        b.push_str(s.state.ss_label())
    });
    cell(buf, None, &mut |b| opt(b, s.recv_q));
    cell(buf, None, &mut |b| opt(b, s.send_q));
    cell(buf, None, &mut |b| format_endpoint(b, s, &s.local, names));
    cell(buf, None, &mut |b| format_endpoint(b, s, &s.peer, names));
    if cols.timers {
        cell(buf, None, &mut |b| match s.timer {
            Some(tm) if tm.kind != crate::model::TimerKind::Off => {
                let _ = write!(b, "{},{}ms,{}", tm.kind.name(), tm.expires_ms, tm.retrans);
            }
            Some(_) => b.push_str("off"),
            None => b.push('-'),
        });
    }
    if cols.extended {
        cell(buf, None, &mut |b| opt(b, s.uid));
        cell(buf, None, &mut |b| {
            let _ = write!(b, "{}", s.inode);
        });
        cell(buf, None, &mut |b| match s.cookie {
            Some(c) => {
                let _ = write!(b, "{c:x}");
            }
            None => b.push('-'),
        });
        cell(buf, None, &mut |b| opt(b, s.cgroup_id));
    }
    if cols.process {
        cell(buf, None, &mut |b| format_owners(b, &s.owners));
    }
}

/// The detail line under a socket (ss -i / -m), if any.
fn detail(s: &Socket, cols: Columns) -> Option<String> {
    if !(cols.info || cols.mem) {
        return None;
    }
    let mut d = String::new();
    if cols.mem
        && let Some(m) = &s.skmem
    {
        format_skmem(&mut d, m);
    }
    if cols.info {
        if let Some(c) = &s.cong {
            sep(&mut d);
            d.push_str(c);
        }
        if let Some(i) = &s.tcp_info {
            format_tcp_info(&mut d, i);
        }
    }
    (!d.is_empty()).then_some(d)
}

/// Build the table for `sockets` (cells kept in memory; see [`write_table`]
/// for the streaming form).
pub fn table(sockets: &[Socket], cols: Columns, names: Option<PortNamer>) -> Table {
    let spec = spec(cols);
    let mut t = Table::with_capacity(&spec, sockets.len());
    let mut buf = String::new();
    let mut cells = Vec::new();
    for s in sockets {
        row_cells(s, cols, names, &mut buf, &mut cells);
        let mut start = 0;
        for &(end, color) in &cells {
            t.colored(color, &buf[start..end]);
            start = end;
        }
        if let Some(d) = detail(s, cols) {
            t.detail(d);
        }
    }
    t
}

/// Write the table for `sockets` without holding its cells: one pass
/// measures the column widths, a second formats and writes each row. For
/// tens of thousands of sockets this saves the memory of every rendered
/// cell at the price of formatting twice.
pub fn write_table(
    w: &mut impl Write,
    sockets: &[Socket],
    cols: Columns,
    names: Option<PortNamer>,
    color: bool,
    header: bool,
) -> io::Result<()> {
    let mut t = Rows::new(cols, names, color);
    t.measure(sockets);
    if header {
        t.header(w)?;
    }
    t.rows(w, sockets)
}

/// Column widths and scratch buffers shared by [`write_table`] and
/// [`StreamWriter`].
struct Rows<'a> {
    cols: Columns,
    names: Option<PortNamer<'a>>,
    color: bool,
    spec: Vec<(&'static str, Align)>,
    align: Vec<Align>,
    widths: Vec<usize>,
    buf: String,
    cells: Vec<(usize, Option<Color>)>,
    line: String,
}

impl<'a> Rows<'a> {
    fn new(cols: Columns, names: Option<PortNamer<'a>>, color: bool) -> Rows<'a> {
        let spec = spec(cols);
        Rows {
            cols,
            names,
            color,
            align: spec.iter().map(|c| c.1).collect(),
            // Header widths count even without a header, so columns sit
            // where they would with one.
            widths: spec.iter().map(|c| Table::width(c.0)).collect(),
            cells: Vec::with_capacity(spec.len()),
            spec,
            buf: String::with_capacity(256),
            line: String::with_capacity(256),
        }
    }

    /// Widen the columns to fit `sockets`.
    fn measure(&mut self, sockets: &[Socket]) {
        for s in sockets {
            row_cells(s, self.cols, self.names, &mut self.buf, &mut self.cells);
            let mut start = 0;
            for (c, &(end, _)) in self.cells.iter().enumerate() {
                self.widths[c] = self.widths[c].max(Table::width(&self.buf[start..end]));
                start = end;
            }
        }
    }

    fn header(&mut self, w: &mut impl Write) -> io::Result<()> {
        self.line.clear();
        for (c, h) in self.spec.iter().enumerate() {
            emit_cell(
                &mut self.line,
                c,
                h.0,
                self.color.then_some(Color::Bold),
                &self.widths,
                &self.align,
                self.color,
            );
        }
        w.write_all(self.line.trim_end().as_bytes())?;
        w.write_all(b"\n")
    }

    fn rows(&mut self, w: &mut impl Write, sockets: &[Socket]) -> io::Result<()> {
        for s in sockets {
            row_cells(s, self.cols, self.names, &mut self.buf, &mut self.cells);
            self.line.clear();
            let mut start = 0;
            for (c, &(end, col)) in self.cells.iter().enumerate() {
                emit_cell(
                    &mut self.line,
                    c,
                    &self.buf[start..end],
                    col,
                    &self.widths,
                    &self.align,
                    self.color,
                );
                start = end;
            }
            w.write_all(self.line.trim_end().as_bytes())?;
            w.write_all(b"\n")?;
            if let Some(d) = detail(s, self.cols) {
                w.write_all(b"\t ")?;
                w.write_all(d.as_bytes())?;
                w.write_all(b"\n")?;
            }
        }
        Ok(())
    }
}

/// How many rows [`StreamWriter`] holds to measure the column widths.
pub const MEASURE_ROWS: usize = 4096;

/// The socket table written as the rows arrive, in memory that does not
/// grow with the table: it holds its first [`MEASURE_ROWS`] rows to
/// measure the column widths, then writes them and every later row at
/// once; a wider cell further down is written whole and pushes the rest of
/// its line to the right. Up to `MEASURE_ROWS` rows the output is byte for
/// byte that of [`write_table`].
pub struct StreamWriter<'a, W: Write> {
    w: W,
    header: bool,
    t: Rows<'a>,
    held: Vec<Socket>,
    measured: bool,
    written: usize,
}

impl<'a, W: Write> StreamWriter<'a, W> {
    pub fn new(
        w: W,
        cols: Columns,
        names: Option<PortNamer<'a>>,
        color: bool,
        header: bool,
    ) -> StreamWriter<'a, W> {
        StreamWriter {
            w,
            header,
            t: Rows::new(cols, names, color),
            held: Vec::new(),
            measured: false,
            written: 0,
        }
    }

    /// Write (or, for the first rows, hold) the sockets of `batch`,
    /// leaving it empty.
    pub fn push(&mut self, batch: &mut Vec<Socket>) -> io::Result<()> {
        if self.measured {
            self.t.rows(&mut self.w, batch)?;
            self.written += batch.len();
            batch.clear();
            return Ok(());
        }
        if self.held.is_empty() {
            std::mem::swap(&mut self.held, batch);
        } else {
            self.held.append(batch);
        }
        if self.held.len() >= MEASURE_ROWS {
            self.flush_held()?;
        }
        Ok(())
    }

    fn flush_held(&mut self) -> io::Result<()> {
        let held = std::mem::take(&mut self.held);
        self.t.measure(&held);
        self.measured = true;
        if self.header {
            self.t.header(&mut self.w)?;
        }
        self.t.rows(&mut self.w, &held)?;
        self.written += held.len();
        Ok(())
    }

    /// Write what is still held; the number of rows written and the writer.
    pub fn finish(mut self) -> io::Result<(usize, W)> {
        if !self.measured {
            self.flush_held()?;
        }
        Ok((self.written, self.w))
    }
}

fn sep(d: &mut String) {
    if !d.is_empty() {
        d.push(' ');
    }
}

/// `skmem:(r0,rb131072,t0,tb2626560,f0,w0,o0,bl0,d0)`, as ss -m prints it.
pub fn format_skmem(d: &mut String, m: &SkMem) {
    let _ = write!(
        d,
        "skmem:(r{},rb{},t{},tb{},f{},w{},o{},bl{},d{})",
        m.rmem_alloc_bytes,
        m.rcvbuf_bytes,
        m.wmem_alloc_bytes,
        m.sndbuf_bytes,
        m.fwd_alloc_bytes,
        m.wmem_queued_bytes,
        m.optmem_bytes,
        m.backlog_bytes,
        m.drops
    );
}

fn ms(us: u32) -> String {
    let v = f64::from(us) / 1000.0;
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Rate in bits per second, as ss prints it (`12.3Mbps`).
fn rate(bytes_per_s: u64) -> String {
    let bps = bytes_per_s as f64 * 8.0;
    if bps >= 1e9 {
        format!("{:.1}Gbps", bps / 1e9)
    } else if bps >= 1e6 {
        format!("{:.1}Mbps", bps / 1e6)
    } else if bps >= 1e3 {
        format!("{:.1}Kbps", bps / 1e3)
    } else {
        format!("{bps:.0}bps")
    }
}

/// TCP internals with ss -i's names (`rtt:0.047/0.023 cwnd:10 ...`), so a
/// reader who knows ss reads it at once.
fn kv(d: &mut String, k: &str, v: String) {
    sep(d);
    d.push_str(k);
    d.push(':');
    d.push_str(&v);
}

fn word(d: &mut String, w: &str) {
    sep(d);
    d.push_str(w);
}

pub fn format_tcp_info(d: &mut String, i: &TcpInfo) {
    for o in &i.options {
        match o.as_ref() {
            "timestamps" => word(d, "ts"),
            "sack" => word(d, "sack"),
            "ecn" => word(d, "ecn"),
            "ecn_seen" => word(d, "ecnseen"),
            _ => {}
        }
    }
    if i.options.iter().any(|o| o == "wscale") {
        kv(d, "wscale", format!("{},{}", i.snd_wscale, i.rcv_wscale));
    }
    kv(d, "rto", ms(i.rto_us));
    if i.backoff > 0 {
        kv(d, "backoff", i.backoff.to_string());
    }
    kv(d, "rtt", format!("{}/{}", ms(i.rtt_us), ms(i.rttvar_us)));
    if i.ato_us > 0 {
        kv(d, "ato", ms(i.ato_us));
    }
    kv(d, "mss", i.snd_mss.to_string());
    kv(d, "pmtu", i.pmtu.to_string());
    kv(d, "rcvmss", i.rcv_mss.to_string());
    kv(d, "advmss", i.advmss.to_string());
    kv(d, "cwnd", i.snd_cwnd.to_string());
    if i.snd_ssthresh < 0xffff {
        kv(d, "ssthresh", i.snd_ssthresh.to_string());
    }
    let opt64 = |v: Option<u64>| v.filter(|&x| x > 0);
    let opt32 = |v: Option<u32>| v.filter(|&x| x > 0);
    if let Some(v) = opt64(i.bytes_sent) {
        kv(d, "bytes_sent", v.to_string());
    }
    if let Some(v) = opt64(i.bytes_retrans) {
        kv(d, "bytes_retrans", v.to_string());
    }
    if let Some(v) = opt64(i.bytes_acked) {
        kv(d, "bytes_acked", v.to_string());
    }
    if let Some(v) = opt64(i.bytes_received) {
        kv(d, "bytes_received", v.to_string());
    }
    if let Some(v) = opt32(i.segs_out) {
        kv(d, "segs_out", v.to_string());
    }
    if let Some(v) = opt32(i.segs_in) {
        kv(d, "segs_in", v.to_string());
    }
    if let Some(v) = opt32(i.data_segs_out) {
        kv(d, "data_segs_out", v.to_string());
    }
    if let Some(v) = opt32(i.data_segs_in) {
        kv(d, "data_segs_in", v.to_string());
    }
    if i.unacked > 0 {
        kv(d, "unacked", i.unacked.to_string());
    }
    if i.retrans > 0 || i.total_retrans > 0 {
        kv(d, "retrans", format!("{}/{}", i.retrans, i.total_retrans));
    }
    if i.lost > 0 {
        kv(d, "lost", i.lost.to_string());
    }
    if i.sacked > 0 {
        kv(d, "sacked", i.sacked.to_string());
    }
    if let Some(v) = i
        .pacing_rate_bytes_per_s
        .filter(|&v| v > 0 && v != u64::MAX)
    {
        kv(d, "pacing_rate", rate(v));
    }
    if let Some(v) = opt64(i.delivery_rate_bytes_per_s) {
        kv(d, "delivery_rate", rate(v));
    }
    if let Some(v) = opt32(i.delivered) {
        kv(d, "delivered", v.to_string());
    }
    if i.delivery_rate_app_limited == Some(true) {
        word(d, "app_limited");
    }
    if let Some(v) = opt64(i.busy_time_us) {
        kv(d, "busy", format!("{}ms", v / 1000));
    }
    if let Some(v) = opt64(i.rwnd_limited_us) {
        kv(d, "rwnd_limited", format!("{}ms", v / 1000));
    }
    if let Some(v) = opt64(i.sndbuf_limited_us) {
        kv(d, "sndbuf_limited", format!("{}ms", v / 1000));
    }
    kv(d, "lastsnd", i.last_data_sent_ms.to_string());
    kv(d, "lastrcv", i.last_data_recv_ms.to_string());
    kv(d, "lastack", i.last_ack_recv_ms.to_string());
    // The receiver's RTT estimate (ss prints it when the kernel has one).
    if i.rcv_rtt_us > 0 {
        kv(d, "rcv_rtt", ms(i.rcv_rtt_us));
    }
    kv(d, "rcv_space", i.rcv_space.to_string());
    kv(d, "rcv_ssthresh", i.rcv_ssthresh.to_string());
    if let Some(v) = opt32(i.notsent_bytes) {
        kv(d, "notsent", v.to_string());
    }
    if let Some(v) = i.min_rtt_us.filter(|&v| v != u32::MAX && v > 0) {
        kv(d, "minrtt", ms(v));
    }
    if let Some(v) = i.snd_wnd_bytes {
        kv(d, "snd_wnd", v.to_string());
    }
    if let Some(v) = i.rcv_wnd_bytes {
        kv(d, "rcv_wnd", v.to_string());
    }
    kv(d, "ca_state", i.ca_state.to_string());
}

/// Whether a set of sockets spans several protocols (ss then shows Netid).
pub fn several_protocols(sockets: &[Socket]) -> bool {
    sockets
        .first()
        .is_some_and(|f| sockets.iter().any(|s| s.proto != f.proto))
}

/// Family of an address as shown (used by tests and filters).
pub fn family_of(addr: IpAddr) -> Family {
    match addr {
        IpAddr::V4(_) => Family::Inet,
        IpAddr::V6(_) => Family::Inet6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn s(proto: Proto, local: Endpoint, peer: Endpoint) -> Socket {
        Socket {
            proto,
            family: Family::Inet6,
            state: State::Listen,
            recv_q: Some(3),
            send_q: None,
            local,
            peer,
            inode: 77,
            uid: Some(0),
            cookie: Some(0x1a),
            cgroup_id: None,
            shutdown: None,
            v6only: Some(false),
            bound_ifindex: None,
            bound_ifname: None,
            timer: None,
            netns: None,
            source: SourceKind::Proc,
            tcp_info: None,
            skmem: None,
            cong: None,
            owners: vec![
                Owner {
                    pid: 1,
                    fd: 3,
                    comm: "a".into(),
                    uid: None,
                    tid: None,
                },
                Owner {
                    pid: 2,
                    fd: 3,
                    comm: "a".into(),
                    uid: None,
                    tid: None,
                },
            ],
        }
    }

    #[test]
    fn formats_like_ss() {
        let v = vec![
            s(
                Proto::Tcp,
                Endpoint::Inet {
                    addr: "::".parse().unwrap(),
                    port: 22,
                },
                Endpoint::Inet {
                    addr: "::".parse().unwrap(),
                    port: 0,
                },
            ),
            s(
                Proto::UnixStream,
                Endpoint::Unix {
                    path: Some("/run/a b".into()),
                    inode: 77,
                },
                Endpoint::Unix {
                    path: None,
                    inode: 0,
                },
            ),
        ];
        let cols = Columns {
            netid: several_protocols(&v),
            process: true,
            extended: true,
            ..Default::default()
        };
        let names = |p: u16, _| if p == 22 { Some("ssh") } else { None };
        let mut out = Vec::new();
        table(&v, cols, Some(&names))
            .write(&mut out, false)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(
            lines[1],
            "tcp   LISTEN      3      - *:ssh              *:*                 0    77 1a          - a(pid=1,fd=3),a(pid=2,fd=3)"
        );
        assert!(lines[2].contains("/run/a b 77        * 0"), "{}", lines[2]);
    }

    #[test]
    fn streaming_table_equals_the_stored_one() {
        let mut v = vec![
            s(
                Proto::Tcp,
                Endpoint::Inet {
                    addr: "10.0.0.1".parse().unwrap(),
                    port: 22,
                },
                Endpoint::Inet {
                    addr: "10.0.0.200".parse().unwrap(),
                    port: 51000,
                },
            ),
            s(
                Proto::UnixStream,
                Endpoint::Unix {
                    path: Some("/run/é".into()),
                    inode: 77,
                },
                Endpoint::Unix {
                    path: None,
                    inode: 0,
                },
            ),
        ];
        v[0].skmem = Some(Box::default());
        for (color, header, mem) in [
            (false, true, false),
            (true, true, true),
            (false, false, true),
        ] {
            let cols = Columns {
                netid: true,
                process: true,
                extended: true,
                timers: true,
                mem,
                ..Default::default()
            };
            let mut a = Vec::new();
            let t = table(&v, cols, None);
            if header {
                t.write(&mut a, color).unwrap();
            } else {
                t.write_rows(&mut a, color).unwrap();
            }
            let mut b = Vec::new();
            write_table(&mut b, &v, cols, None, color, header).unwrap();
            assert_eq!(String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
        }
    }

    /// Every socket of `v` written through a [`StreamWriter`] in batches
    /// of `batch` rows.
    fn streamed(v: &[Socket], header: bool, cols: Columns, batch: usize) -> String {
        let mut sw = StreamWriter::new(Vec::new(), cols, None, false, header);
        for chunk in v.chunks(batch) {
            let mut b = chunk.to_vec();
            sw.push(&mut b).unwrap();
            assert!(b.is_empty(), "push leaves the batch empty");
        }
        let (n, out) = sw.finish().unwrap();
        assert_eq!(n, v.len());
        String::from_utf8(out).unwrap()
    }

    fn many(n: usize) -> Vec<Socket> {
        (0..n)
            .map(|i| {
                let mut x = s(
                    Proto::Tcp,
                    Endpoint::Inet {
                        addr: "10.0.0.1".parse().unwrap(),
                        port: (i % 60000) as u16 + 1,
                    },
                    Endpoint::Inet {
                        addr: "10.0.0.2".parse().unwrap(),
                        port: 80,
                    },
                );
                x.inode = i as u64 + 1;
                x
            })
            .collect()
    }

    #[test]
    fn stream_writer_equals_write_table_up_to_the_measured_rows() {
        let cols = Columns {
            process: true,
            extended: true,
            ..Default::default()
        };
        for n in [0, 1, 1500, MEASURE_ROWS] {
            let v = many(n);
            for header in [true, false] {
                let mut want = Vec::new();
                write_table(&mut want, &v, cols, None, false, header).unwrap();
                for batch in [7, 1024] {
                    let got = streamed(&v, header, cols, batch);
                    assert_eq!(got, String::from_utf8(want.clone()).unwrap(), "{n} rows");
                }
            }
        }
    }

    #[test]
    fn stream_writer_past_the_measured_rows_has_the_same_cells() {
        let cols = Columns {
            process: true,
            ..Default::default()
        };
        let mut v = many(MEASURE_ROWS + 900);
        // A row wider than any of the measured ones, past them.
        let last = v.len() - 1;
        v[last].local = Endpoint::Inet {
            addr: "2001:db8:1234:5678:9abc:def0:1234:5678".parse().unwrap(),
            port: 65535,
        };
        let mut want = Vec::new();
        write_table(&mut want, &v, cols, None, false, true).unwrap();
        let want = String::from_utf8(want).unwrap();
        let got = streamed(&v, true, cols, 1024);
        assert_ne!(got, want, "widths come from the first rows only");
        let cells = |t: &str| -> Vec<Vec<String>> {
            t.lines()
                .map(|l| l.split_whitespace().map(str::to_string).collect())
                .collect()
        };
        assert_eq!(cells(&got), cells(&want));
        assert_eq!(got.lines().count(), v.len() + 1);
        // Rows before the wide one are aligned as in the measured part.
        let first = got.lines().nth(1).unwrap();
        let later = got.lines().nth(MEASURE_ROWS + 5).unwrap();
        assert_eq!(first.find("10.0.0.2"), later.find("10.0.0.2"));
    }

    #[test]
    fn socket_json_round_trips() {
        let v = vec![s(
            Proto::Tcp,
            Endpoint::Inet {
                addr: "::ffff:127.0.0.1".parse().unwrap(),
                port: 80,
            },
            Endpoint::Inet {
                addr: "::".parse().unwrap(),
                port: 0,
            },
        )];
        // The socket objects of `--json` / `--jsonl` (written by the cli's
        // shared writer).
        let out = serde_json::to_vec(&v).unwrap();
        let parsed: Vec<Socket> = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed, v);
        let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(j[0]["local"]["addr"], "::ffff:127.0.0.1");
        assert_eq!(j[0]["state"], "listening");
        assert_eq!(j[0]["send_q"], serde_json::Value::Null);
    }
}
