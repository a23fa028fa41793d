//! The four views of `top` as tables of text cells: columns that fit the
//! width, rows sorted by any column, only the rows on screen formatted.
//! The terminal UI and `--once` print the same cells.

use super::data::Data;
use sockscope::live::{ListenerRow, NsRow, ProcRow, RowInfo, RowStatus, human_rate};
use sockscope::model::Socket;
use sockscope::view::escape::escape_str;
use sockscope::view::explain::endpoint;
use std::cmp::Ordering;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum View {
    Connections,
    Processes,
    Listeners,
    Namespaces,
}

impl View {
    pub const ALL: [View; 4] = [
        View::Connections,
        View::Processes,
        View::Listeners,
        View::Namespaces,
    ];
    pub fn title(self) -> &'static str {
        match self {
            View::Connections => "1 Connections",
            View::Processes => "2 Processes",
            View::Listeners => "3 Listeners",
            View::Namespaces => "4 Namespaces",
        }
    }
    pub fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }
    pub fn columns(self) -> &'static [Col] {
        match self {
            View::Connections => CONN_COLS,
            View::Processes => PROC_COLS,
            View::Listeners => LISTEN_COLS,
            View::Namespaces => NS_COLS,
        }
    }
}

/// A column: header, minimum and preferred width, and the order in which
/// columns are dropped when the terminal is narrow (lowest first).
pub struct Col {
    pub name: &'static str,
    pub min: u16,
    pub pref: u16,
    pub keep: u8,
    pub right: bool,
    /// Largest first when sorted by this column.
    pub desc: bool,
}

const fn col(name: &'static str, min: u16, pref: u16, keep: u8, right: bool) -> Col {
    Col {
        name,
        min,
        pref,
        keep,
        right,
        desc: right,
    }
}

pub const CONN_COLS: &[Col] = &[
    col("State", 10, 10, 9, false),
    col("Recv-Q", 6, 6, 5, true),
    col("Send-Q", 6, 6, 5, true),
    col("Local", 15, 26, 9, false),
    col("Peer", 15, 26, 8, false),
    col("Process", 8, 30, 7, false),
    col("In/s", 6, 7, 6, true),
    col("Out/s", 6, 7, 6, true),
    col("Retr/s", 6, 6, 3, true),
    col("RTT ms", 6, 7, 4, true),
];

pub const PROC_COLS: &[Col] = &[
    col("PID", 7, 7, 9, true),
    col("Command", 8, 16, 9, false),
    col("Socks", 6, 6, 8, true),
    col("Estab", 6, 6, 7, true),
    col("Listen", 6, 6, 6, true),
    col("TimeWt", 6, 6, 4, true),
    col("Other", 5, 5, 3, true),
    col("Open/s", 6, 7, 7, true),
    col("Close/s", 7, 7, 7, true),
    col("In/s", 6, 7, 8, true),
    col("Out/s", 6, 7, 8, true),
];

pub const LISTEN_COLS: &[Col] = &[
    col("Local", 15, 26, 9, false),
    col("Process", 8, 24, 6, false),
    col("AcceptQ", 7, 7, 9, true),
    col("Backlog", 7, 7, 9, true),
    col("Queue", 8, 14, 5, false),
    col("SynRcv", 6, 6, 8, true),
    col("Conns", 6, 6, 6, true),
    col("Acc/s", 6, 7, 7, true),
    col("Reuse", 5, 5, 4, true),
];

pub const NS_COLS: &[Col] = &[
    col("Netns", 16, 24, 9, false),
    col("Socks", 6, 6, 9, true),
    col("Estab", 6, 6, 8, true),
    col("Listen", 6, 6, 7, true),
    col("TimeWt", 6, 6, 5, true),
    col("SynRcv", 6, 6, 5, true),
    col("In/s", 6, 7, 8, true),
    col("Out/s", 6, 7, 8, true),
    col("Ovfl/s", 6, 6, 7, true),
    col("Drop/s", 6, 6, 7, true),
    col("Actv/s", 6, 6, 4, true),
    col("Pasv/s", 6, 6, 4, true),
    col("Retr/s", 6, 6, 4, true),
];

/// Which columns are shown, where and how wide: `(column, x, width)`.
pub fn layout(cols: &[Col], width: u16) -> Vec<(usize, u16, u16)> {
    let mut shown: Vec<usize> = (0..cols.len()).collect();
    let need = |s: &[usize]| -> u32 {
        s.iter().map(|&i| u32::from(cols[i].min)).sum::<u32>() + s.len().saturating_sub(1) as u32
    };
    while need(&shown) > u32::from(width) && shown.len() > 1 {
        // Drop the least important column (the last of equals).
        let (pos, _) = shown
            .iter()
            .enumerate()
            .min_by(|a, b| cols[*a.1].keep.cmp(&cols[*b.1].keep).then(b.0.cmp(&a.0)))
            .expect("non-empty");
        shown.remove(pos);
    }
    let mut widths: Vec<u16> = shown.iter().map(|&i| cols[i].min).collect();
    let mut spare = u32::from(width).saturating_sub(need(&shown));
    // Spare room goes first to the columns that want the most (process
    // names, addresses), each up to its preferred width.
    let mut by_want: Vec<usize> = (0..shown.len()).collect();
    by_want.sort_by_key(|&k| std::cmp::Reverse(cols[shown[k]].pref - cols[shown[k]].min));
    for k in by_want {
        let grow = u32::from(cols[shown[k]].pref - widths[k]).min(spare);
        widths[k] += grow as u16;
        spare -= grow;
    }
    let mut x = 0u16;
    shown
        .iter()
        .zip(widths)
        .map(|(&i, w)| {
            let r = (i, x, w);
            x = x.saturating_add(w + 1);
            r
        })
        .collect()
}

/// Fit `s` into `w` display columns (cut with `…`), aligned.
pub fn fit(s: &str, w: usize, right: bool) -> String {
    use unicode_width::UnicodeWidthChar;
    let total: usize = s.chars().map(|c| c.width().unwrap_or(0)).sum();
    if total <= w {
        let pad = " ".repeat(w - total);
        return if right {
            format!("{pad}{s}")
        } else {
            format!("{s}{pad}")
        };
    }
    if w == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if used + cw > w - 1 {
            break;
        }
        out.push(c);
        used += cw;
    }
    out.push('…');
    out.push_str(&" ".repeat(w - 1 - used));
    out
}

/// One line of a table from its cells.
pub fn join_cells(cols: &[Col], lay: &[(usize, u16, u16)], cells: &[String]) -> String {
    let mut line = String::new();
    for (k, &(i, _, w)) in lay.iter().enumerate() {
        if k > 0 {
            line.push(' ');
        }
        line.push_str(&fit(&cells[i], w as usize, cols[i].right));
    }
    line.trim_end().to_string()
}

/// Header with the sort column marked (▲ ascending, ▼ descending; `^`/`v`
/// without Unicode is not needed: the terminal has it or escape shows it).
pub fn header(cols: &[Col], lay: &[(usize, u16, u16)], sort: Option<(usize, bool)>) -> String {
    let cells: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| match sort {
            Some((s, desc)) if s == i => format!("{}{}", c.name, if desc { "▼" } else { "▲" }),
            _ => c.name.to_string(),
        })
        .collect();
    join_cells(cols, lay, &cells)
}

/// `nginx/812` (first owner), `nginx/812+3` when three more processes hold
/// it; the full `comm(pid=,fd=)` list is in the detail pane and the JSON.
fn owners_text(s: &Socket) -> String {
    owners_fit(s, usize::MAX)
}

/// [`owners_text`] in at most `w` columns: the command name is cut first,
/// so the pid stays readable (`postgr…/812`).
fn owners_fit(s: &Socket, w: usize) -> String {
    use unicode_width::UnicodeWidthStr;
    let Some(first) = s.owners.first() else {
        return String::new();
    };
    let mut pids: Vec<u32> = s.owners.iter().map(|o| o.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    let mut tail = format!("/{}", first.pid);
    if pids.len() > 1 {
        tail.push_str(&format!("+{}", pids.len() - 1));
    }
    let comm = escape_str(&first.comm);
    if comm.width() + tail.len() <= w {
        return format!("{comm}{tail}");
    }
    let room = w.saturating_sub(tail.len());
    if room < 2 {
        return format!("{comm}{tail}");
    }
    let cut = fit(&comm, room, false);
    format!("{}{tail}", cut.trim_end())
}

fn ms(us: Option<u32>) -> String {
    us.map_or("-".into(), |u| {
        let m = f64::from(u) / 1000.0;
        if m < 1.0 {
            format!("{m:.2}")
        } else {
            format!("{m:.1}")
        }
    })
}

fn opt(v: Option<u32>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

pub fn conn_cells(s: &Socket, i: &RowInfo) -> Vec<String> {
    vec![
        s.state.ss_label().to_string(),
        opt(s.recv_q),
        opt(s.send_q),
        endpoint(s, &s.local),
        endpoint(s, &s.peer),
        owners_text(s),
        human_rate(i.in_bytes_per_s),
        human_rate(i.out_bytes_per_s),
        human_rate(i.retrans_per_s),
        ms(i.rtt_us),
    ]
}

fn ep_key(s: &Socket, e: &sockscope::model::Endpoint) -> (u8, Vec<u8>, u16) {
    match e.ip() {
        Some(std::net::IpAddr::V4(a)) => (0, a.octets().to_vec(), e.port().unwrap_or(0)),
        Some(std::net::IpAddr::V6(a)) => (1, a.octets().to_vec(), e.port().unwrap_or(0)),
        None => (2, endpoint(s, e).into_bytes(), 0),
    }
}

fn fcmp(a: Option<f64>, b: Option<f64>) -> Ordering {
    a.unwrap_or(-1.0).total_cmp(&b.unwrap_or(-1.0))
}

pub fn conn_cmp(a: (&Socket, &RowInfo), b: (&Socket, &RowInfo), col: usize) -> Ordering {
    let (sa, ia) = a;
    let (sb, ib) = b;
    match col {
        0 => sa.state.cmp(&sb.state),
        1 => sa.recv_q.cmp(&sb.recv_q),
        2 => sa.send_q.cmp(&sb.send_q),
        3 => ep_key(sa, &sa.local).cmp(&ep_key(sb, &sb.local)),
        4 => ep_key(sa, &sa.peer).cmp(&ep_key(sb, &sb.peer)),
        5 => {
            let k = |s: &Socket| s.owners.first().map(|o| (o.comm.clone(), o.pid));
            k(sa).cmp(&k(sb))
        }
        6 => fcmp(ia.in_bytes_per_s, ib.in_bytes_per_s),
        7 => fcmp(ia.out_bytes_per_s, ib.out_bytes_per_s),
        8 => fcmp(ia.retrans_per_s, ib.retrans_per_s),
        _ => ia.rtt_us.cmp(&ib.rtt_us),
    }
}

pub fn proc_cells(p: &ProcRow) -> Vec<String> {
    let st = |n: &str| p.by_state.get(n).copied().unwrap_or(0);
    let other = p.sockets - st("established") - st("listening") - st("time-wait");
    vec![
        p.pid.to_string(),
        escape_str(&p.comm).into_owned(),
        p.sockets.to_string(),
        st("established").to_string(),
        st("listening").to_string(),
        st("time-wait").to_string(),
        other.to_string(),
        human_rate(p.opened_per_s),
        human_rate(p.closed_per_s),
        human_rate(Some(p.in_bytes_per_s)),
        human_rate(Some(p.out_bytes_per_s)),
    ]
}

pub fn proc_cmp(a: &ProcRow, b: &ProcRow, col: usize) -> Ordering {
    let st = |p: &ProcRow, n: &str| p.by_state.get(n).copied().unwrap_or(0);
    match col {
        0 => a.pid.cmp(&b.pid),
        1 => a.comm.cmp(&b.comm),
        2 => a.sockets.cmp(&b.sockets),
        3 => st(a, "established").cmp(&st(b, "established")),
        4 => st(a, "listening").cmp(&st(b, "listening")),
        5 => st(a, "time-wait").cmp(&st(b, "time-wait")),
        6 => a.sockets.cmp(&b.sockets),
        7 => fcmp(a.opened_per_s, b.opened_per_s),
        8 => fcmp(a.closed_per_s, b.closed_per_s),
        9 => a.in_bytes_per_s.total_cmp(&b.in_bytes_per_s),
        _ => a.out_bytes_per_s.total_cmp(&b.out_bytes_per_s),
    }
}

/// `[#####.....]` for a queue `q` of backlog `b` (the kernel lets it reach
/// b+1: the bar is full then).
pub fn bar(q: Option<u32>, b: Option<u32>, w: usize) -> String {
    let (Some(q), Some(b)) = (q, b) else {
        return "-".into();
    };
    let inner = w.saturating_sub(2).max(1);
    let filled = if b == 0 {
        if q > 0 { inner } else { 0 }
    } else {
        ((u64::from(q) * inner as u64).div_ceil(u64::from(b)) as usize).min(inner)
    };
    format!("[{}{}]", "#".repeat(filled), ".".repeat(inner - filled))
}

pub fn listen_cells(l: &ListenerRow, bar_w: usize) -> Vec<String> {
    let s = &l.listener;
    vec![
        endpoint(s, &s.local),
        owners_text(s),
        opt(l.accept_queue),
        opt(l.backlog),
        bar(l.accept_queue, l.backlog, bar_w),
        l.syn_recv.to_string(),
        l.children.to_string(),
        human_rate(l.accepted_per_s),
        l.reuseport_group.to_string(),
    ]
}

pub fn listen_cmp(a: &ListenerRow, b: &ListenerRow, col: usize) -> Ordering {
    match col {
        0 => ep_key(&a.listener, &a.listener.local).cmp(&ep_key(&b.listener, &b.listener.local)),
        1 => owners_text(&a.listener).cmp(&owners_text(&b.listener)),
        2 => a.accept_queue.cmp(&b.accept_queue),
        3 => a.backlog.cmp(&b.backlog),
        4 => fcmp(a.fill_pct, b.fill_pct),
        5 => a.syn_recv.cmp(&b.syn_recv),
        6 => a.children.cmp(&b.children),
        7 => fcmp(a.accepted_per_s, b.accepted_per_s),
        _ => a.reuseport_group.cmp(&b.reuseport_group),
    }
}

fn counter(n: &NsRow, name: &str) -> Option<f64> {
    n.counters_per_s.get(name).copied()
}

const NS_COUNTERS: [&str; 5] = [
    "TcpExt.ListenOverflows",
    "TcpExt.ListenDrops",
    "Tcp.ActiveOpens",
    "Tcp.PassiveOpens",
    "Tcp.RetransSegs",
];

pub fn ns_cells(n: &NsRow) -> Vec<String> {
    let mut v = vec![
        escape_str(&n.netns.to_string()).into_owned(),
        n.sockets.to_string(),
        n.established.to_string(),
        n.listening.to_string(),
        n.time_wait.to_string(),
        n.syn_recv.to_string(),
        human_rate(Some(n.in_bytes_per_s)),
        human_rate(Some(n.out_bytes_per_s)),
    ];
    v.extend(NS_COUNTERS.iter().map(|c| human_rate(counter(n, c))));
    v
}

pub fn ns_cmp(a: &NsRow, b: &NsRow, col: usize) -> Ordering {
    match col {
        0 => a.netns.inode.cmp(&b.netns.inode),
        1 => a.sockets.cmp(&b.sockets),
        2 => a.established.cmp(&b.established),
        3 => a.listening.cmp(&b.listening),
        4 => a.time_wait.cmp(&b.time_wait),
        5 => a.syn_recv.cmp(&b.syn_recv),
        6 => a.in_bytes_per_s.total_cmp(&b.in_bytes_per_s),
        7 => a.out_bytes_per_s.total_cmp(&b.out_bytes_per_s),
        c => fcmp(
            counter(a, NS_COUNTERS[(c - 8).min(4)]),
            counter(b, NS_COUNTERS[(c - 8).min(4)]),
        ),
    }
}

/// How a row is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    Plain,
    New,
    Closed,
    /// A listener whose queue is over its backlog.
    Alert,
}

/// The rows of a view in display order: (item index, mark).
pub fn order(data: &Data, view: View, sort: Option<(usize, bool)>) -> Vec<(usize, Mark)> {
    let mut idx: Vec<usize>;
    match view {
        View::Connections => {
            idx = data.visible.clone();
            if let Some((c, desc)) = sort {
                let f = &data.frame;
                idx.sort_by(|&a, &b| {
                    let o = conn_cmp((&f.sockets[a], &f.info[a]), (&f.sockets[b], &f.info[b]), c);
                    if desc { o.reverse() } else { o }
                });
            }
            idx.into_iter()
                .map(|i| {
                    let m = match data.frame.info[i].status {
                        RowStatus::New => Mark::New,
                        RowStatus::Closed => Mark::Closed,
                        RowStatus::Open => Mark::Plain,
                    };
                    (i, m)
                })
                .collect()
        }
        View::Processes => sorted(&data.processes, sort, proc_cmp, |_| Mark::Plain),
        View::Listeners => sorted(&data.listeners, sort, listen_cmp, |l| {
            if l.full { Mark::Alert } else { Mark::Plain }
        }),
        View::Namespaces => sorted(&data.namespaces, sort, ns_cmp, |_| Mark::Plain),
    }
}

fn sorted<T>(
    items: &[T],
    sort: Option<(usize, bool)>,
    cmp: fn(&T, &T, usize) -> Ordering,
    mark: impl Fn(&T) -> Mark,
) -> Vec<(usize, Mark)> {
    let mut idx: Vec<usize> = (0..items.len()).collect();
    if let Some((c, desc)) = sort {
        idx.sort_by(|&a, &b| {
            let o = cmp(&items[a], &items[b], c);
            if desc { o.reverse() } else { o }
        });
    }
    idx.into_iter().map(|i| (i, mark(&items[i]))).collect()
}

/// The cells of item `i` of a view.
pub fn cells(data: &Data, view: View, i: usize, lay: &[(usize, u16, u16)]) -> Vec<String> {
    match view {
        View::Connections => {
            let s = &data.frame.sockets[i];
            let mut c = conn_cells(s, &data.frame.info[i]);
            if let Some(l) = lay.iter().find(|l| l.0 == 5) {
                c[5] = owners_fit(s, l.2 as usize);
            }
            c
        }
        View::Processes => proc_cells(&data.processes[i]),
        View::Listeners => {
            let w = lay.iter().find(|l| l.0 == 4).map_or(10, |l| l.2 as usize);
            let mut c = listen_cells(&data.listeners[i], w.saturating_sub(5).max(3));
            if let Some(l) = lay.iter().find(|l| l.0 == 1) {
                c[1] = owners_fit(&data.listeners[i].listener, l.2 as usize);
            }
            // Fill percent after the bar when it fits.
            if let Some(p) = data.listeners[i].fill_pct {
                c[4] = format!("{}{:>4.0}%", c[4], p);
            }
            c
        }
        View::Namespaces => ns_cells(&data.namespaces[i]),
    }
}

/// Lines under the table of a view (the listeners view shows the
/// namespaces' listen counters per second).
pub fn footer(data: &Data, view: View) -> Vec<String> {
    if view != View::Listeners {
        return Vec::new();
    }
    data.namespaces
        .iter()
        .map(|n| {
            format!(
                "netns {}: ListenOverflows {}/s  ListenDrops {}/s  TCPBacklogDrop {}/s  TCPReqQFullDrop {}/s",
                escape_str(&n.netns.to_string()),
                human_rate(counter(n, "TcpExt.ListenOverflows")),
                human_rate(counter(n, "TcpExt.ListenDrops")),
                human_rate(counter(n, "TcpExt.TCPBacklogDrop")),
                human_rate(counter(n, "TcpExt.TCPReqQFullDrop")),
            )
        })
        .collect()
}

/// A whole view as text lines (for `--once`): header, every row, footer.
pub fn text(data: &Data, view: View, width: u16, sort: Option<(usize, bool)>) -> Vec<String> {
    let cols = view.columns();
    let lay = layout(cols, width);
    let mut out = vec![header(cols, &lay, sort)];
    for (i, m) in order(data, view, sort) {
        let mut l = join_cells(cols, &lay, &cells(data, view, i, &lay));
        match m {
            Mark::New => l.push_str("  (new)"),
            Mark::Closed => l.push_str("  (closed)"),
            _ => {}
        }
        out.push(l);
    }
    out.extend(footer(data, view));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_fits_80_columns_and_drops_the_least_important() {
        let lay = layout(CONN_COLS, 80);
        let end = lay.last().map(|l| l.1 + l.2).unwrap();
        assert!(end <= 80, "{lay:?}");
        let names: Vec<_> = lay.iter().map(|l| CONN_COLS[l.0].name).collect();
        assert!(names.contains(&"State") && names.contains(&"Local"));
        assert!(!names.contains(&"Retr/s"), "{names:?}");
        // A listener's backlog (Send-Q) and the rates stay at 80 columns.
        for c in ["Recv-Q", "Send-Q", "Process", "In/s", "Out/s"] {
            assert!(names.contains(&c), "{c}: {names:?}");
        }
        let wide = layout(CONN_COLS, 200);
        assert_eq!(wide.len(), CONN_COLS.len());
        for v in View::ALL {
            let l = layout(v.columns(), 80);
            assert!(l.last().map(|l| l.1 + l.2).unwrap() <= 80, "{v:?}");
        }
    }

    #[test]
    fn owners_compact_and_escaped() {
        use sockscope::model::{Endpoint, Family, Owner, Proto, SourceKind, State};
        let ep = Endpoint::Inet {
            addr: std::net::Ipv4Addr::LOCALHOST.into(),
            port: 80,
        };
        let mut s = Socket::new(
            Proto::Tcp,
            Family::Inet,
            State::Listen,
            ep.clone(),
            ep,
            SourceKind::Netlink,
        );
        let o = |pid, comm: &str| Owner {
            pid,
            fd: 3,
            comm: comm.into(),
            uid: None,
            tid: None,
        };
        s.owners = vec![o(7, "ev\x1b[2Jil"), o(7, "x"), o(9, "y"), o(12, "z")];
        assert_eq!(owners_text(&s), "ev\\e[2Jil/7+2");
        assert!(!owners_text(&s).contains('\x1b'));
        assert_eq!(owners_fit(&s, 10), "ev\\e[…/7+2");
        assert_eq!(ms(Some(35)), "0.04");
        assert_eq!(ms(Some(12_500)), "12.5");
    }

    #[test]
    fn fit_cuts_and_pads() {
        assert_eq!(fit("abc", 5, false), "abc  ");
        assert_eq!(fit("abc", 5, true), "  abc");
        assert_eq!(fit("abcdef", 4, false), "abc…");
        assert_eq!(bar(Some(6), Some(5), 7), "[#####]");
        assert_eq!(bar(Some(1), Some(4), 6), "[#...]");
        assert_eq!(bar(None, Some(4), 6), "-");
    }
}
