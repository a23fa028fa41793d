//! A finished connection as a sequence diagram, as TCP textbooks draw them: three
//! columns, the peer (the client, for a connection a listener accepted),
//! the kernel and the application, and one row per thing that happened:
//! SYN, SYN-ACK, ACK, queued for accept, accept() returns fd N, data, FIN
//! or RST, close. [`build`] makes the model from the connection's events;
//! [`write_text`] draws it with box characters, [`svg`] as an SVG image.
//!
//! Packets are drawn from what the kernel reported: a state change implies
//! the segment that caused it. Rows the events imply but do not time (the
//! SYN and SYN-ACK of a server-side handshake, which the kernel handles on
//! a request socket before any event fires, and the data segments behind
//! a read or a write) are drawn dashed and have no time.

use super::color;
use crate::event::{Event, What, fmt_bytes, fmt_us, label};
use crate::track::{Conn, End, Role};
use sockscope::model::State;
use std::io::{self, Write};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    Peer,
    Kernel,
    App,
}

impl Lane {
    fn index(self) -> usize {
        match self {
            Lane::Peer => 0,
            Lane::Kernel => 1,
            Lane::App => 2,
        }
    }
}

/// How a row is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Normal,
    /// Implied, not observed: dashed, no time.
    Inferred,
    /// Retransmits.
    Warn,
    /// Resets and drops.
    Bad,
}

/// One row: an arrow between two lanes (or a note on one lane when
/// `from == to`), with a note at the right.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub t_ns: Option<u64>,
    pub from: Lane,
    pub to: Lane,
    pub label: String,
    pub note: String,
    pub tone: Tone,
}

/// The diagram of one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagram {
    pub conn: u64,
    pub title: String,
    pub peer: String,
    pub kernel: String,
    pub app: String,
    pub steps: Vec<Step>,
}

/// Longest diagram drawn; the rest is summarised in one row.
pub const MAX_STEPS: usize = 400;

fn step(
    t: Option<u64>,
    from: Lane,
    to: Lane,
    label: impl Into<String>,
    note: impl Into<String>,
    tone: Tone,
) -> Step {
    Step {
        t_ns: t,
        from,
        to,
        label: label.into(),
        note: note.into(),
        tone,
    }
}

fn end_text(e: End) -> &'static str {
    match e {
        End::Open => "still open",
        End::Closed => "closed (FIN both ways, this side last)",
        End::TimeWait => "closed first by this side: TIME-WAIT",
        End::ResetReceived => "reset by the peer",
        End::ResetSent => "reset by this side",
        End::Failed => "connect failed",
        End::ListenerClosed => "listener closed",
        End::Gone => "closed",
    }
}

/// A syscall as a short label: "close(4) = 0".
fn sys_label(e: &Event) -> Option<String> {
    let What::Syscall {
        syscall,
        sys_fd: fd,
        ret,
        errno,
        args,
        ..
    } = &e.what
    else {
        return None;
    };
    let r = match errno {
        Some(n) => format!("-{n}"),
        None => ret.to_string(),
    };
    let fd = fd.map_or_else(String::new, |f| f.to_string());
    Some(match *syscall {
        "socket" => format!("socket() = {r}"),
        // The address goes in the note (see `sys_note`): the arrow has
        // room for the call only.
        "bind" | "connect" => format!("{syscall}({fd}) = {r}"),
        "listen" => format!("listen({fd}, {}) = {r}", args.backlog.unwrap_or(0)),
        "setsockopt" => format!(
            "setsockopt({}) = {r}",
            args.optname.clone().unwrap_or_default()
        ),
        "shutdown" => format!("shutdown({}) = {r}", args.how.clone().unwrap_or_default()),
        other => format!("{other}({fd}) = {r}"),
    })
}

/// The note beside a syscall row: the address bind or connect was given.
fn sys_note(e: &Event) -> String {
    let What::Syscall { syscall, args, .. } = &e.what else {
        return String::new();
    };
    match (args.addr.as_ref(), *syscall) {
        (Some(sockscope::model::Endpoint::Inet { addr, port }), "bind") => {
            format!("bind to {}", std::net::SocketAddr::new(*addr, *port))
        }
        (Some(sockscope::model::Endpoint::Inet { addr, port }), "connect") => {
            format!("connect to {}", std::net::SocketAddr::new(*addr, *port))
        }
        _ => String::new(),
    }
}

/// The diagram of a connection from its events (kept by the tracker when
/// diagrams are asked for).
pub fn build(c: &Conn) -> Diagram {
    let peer_addr = c.peer.map_or_else(|| "?".to_string(), |a| a.to_string());
    let local_addr = c.local.map_or_else(|| "?".to_string(), |a| a.to_string());
    let peer = match c.role {
        Role::Server => format!("client {peer_addr}"),
        Role::Client => format!("server {peer_addr}"),
        _ => format!("peer {peer_addr}"),
    };
    let app = match &c.owner {
        Some(o) => format!("application {}[{}]", o.comm, o.pid),
        None => "application".to_string(),
    };
    let who = match &c.owner {
        Some(o) => match o.fd {
            Some(fd) => format!("{}[{}] fd {fd}", o.comm, o.pid),
            None => format!("{}[{}]", o.comm, o.pid),
        },
        None => "owner unknown".into(),
    };
    let role = match c.role {
        Role::Server => "server side",
        Role::Client => "client side",
        Role::Listener => "listener",
        Role::Unknown => "connection",
    };
    let arrow = if c.role == Role::Server { "←" } else { "→" };
    let title = format!(
        "#{} tcp {local_addr} {arrow} {peer_addr}  {who}  ({role}, {}, {})",
        c.id,
        fmt_us(c.duration_ns() / 1000),
        end_text(c.end)
    );

    let mut steps: Vec<Step> = Vec::new();
    // With packet events the segments are drawn as the devices saw them,
    // and nothing is inferred: state changes, resets and retransmits
    // become notes on the kernel's lane.
    let wire = c
        .events
        .iter()
        .any(|e| matches!(e.what, What::Packet { .. }));
    let mut handshake_drawn = wire;
    for e in &c.events {
        let t = Some(e.t_ns);
        use Lane::*;
        if wire && let Some(s) = wire_note(e) {
            steps.push(s);
            continue;
        }
        match &e.what {
            What::RetransmitSynack {}
            | What::State {
                old_state: State::Listen,
                new_state: State::SynRecv,
            } if !handshake_drawn => {
                handshake_drawn = true;
                steps.push(step(
                    None,
                    Peer,
                    Kernel,
                    "SYN",
                    "half-open: a request socket, no event yet",
                    Tone::Inferred,
                ));
                steps.push(step(None, Kernel, Peer, "SYN-ACK", "", Tone::Inferred));
            }
            _ => {}
        }
        match &e.what {
            What::State {
                old_state,
                new_state,
            } => {
                let note = format!("{} → {}", label(*old_state), label(*new_state));
                match (old_state, new_state) {
                    (State::Close, State::SynSent) => {
                        steps.push(step(t, Kernel, Peer, "SYN", note, Tone::Normal))
                    }
                    (State::SynSent, State::Established) => {
                        steps.push(step(t, Peer, Kernel, "SYN-ACK", note, Tone::Normal));
                        steps.push(step(t, Kernel, Peer, "ACK", "", Tone::Normal));
                    }
                    (State::Listen, State::SynRecv) => steps.push(step(
                        t,
                        Peer,
                        Kernel,
                        "ACK",
                        format!("{note}: the kernel completes the handshake"),
                        Tone::Normal,
                    )),
                    (State::SynRecv, State::Established) => steps.push(step(
                        t,
                        Kernel,
                        Kernel,
                        "queued for accept()",
                        note,
                        Tone::Normal,
                    )),
                    (State::Established, State::CloseWait) => {
                        steps.push(step(t, Peer, Kernel, "FIN", note, Tone::Normal))
                    }
                    (State::CloseWait, State::LastAck) | (State::Established, State::FinWait1) => {
                        steps.push(step(t, Kernel, Peer, "FIN", note, Tone::Normal))
                    }
                    (State::LastAck, State::Close) | (State::FinWait1, State::FinWait2) => {
                        steps.push(step(t, Peer, Kernel, "ACK", note, Tone::Normal))
                    }
                    (State::FinWait1, State::Closing) => {
                        steps.push(step(t, Peer, Kernel, "FIN", note, Tone::Normal))
                    }
                    _ => steps.push(step(t, Kernel, Kernel, "", note, Tone::Normal)),
                }
            }
            What::TimeWait { .. } => steps.push(step(
                t,
                Kernel,
                Kernel,
                "TIME-WAIT",
                "inferred: a timewait socket replaces the socket",
                Tone::Normal,
            )),
            What::TimeWaitCheck { found, table_state } => match (found, table_state) {
                (true, Some(State::TimeWait)) => {
                    steps.push(step(None, Peer, Kernel, "FIN", "", Tone::Inferred));
                    steps.push(step(
                        None,
                        Kernel,
                        Peer,
                        "ACK",
                        "socket table: TIME-WAIT",
                        Tone::Inferred,
                    ));
                }
                (true, Some(s)) => steps.push(step(
                    t,
                    Kernel,
                    Kernel,
                    "",
                    format!("socket table: timewait socket in {}", label(*s)),
                    Tone::Normal,
                )),
                _ => steps.push(step(
                    t,
                    Kernel,
                    Kernel,
                    "",
                    "socket table: no timewait socket",
                    Tone::Normal,
                )),
            },
            What::Retransmit { bytes, .. } => {
                let l = if e.state == Some(State::SynSent) {
                    "SYN (retransmit)".to_string()
                } else {
                    format!("retransmit {}", fmt_bytes(u64::from(*bytes)))
                };
                steps.push(step(t, Kernel, Peer, l, "", Tone::Warn));
            }
            What::RetransmitSynack {} => steps.push(step(
                t,
                Kernel,
                Peer,
                "SYN-ACK (retransmit)",
                "",
                Tone::Warn,
            )),
            What::ResetSent { reason, .. } => {
                steps.push(step(t, Kernel, Peer, "RST", reason.clone(), Tone::Bad))
            }
            What::ResetReceived { .. } => steps.push(step(t, Peer, Kernel, "RST", "", Tone::Bad)),
            What::Drop {
                reason,
                tcp_flags,
                direction,
                ..
            } => {
                let label = if tcp_flags.is_empty() {
                    "✕ dropped".to_string()
                } else {
                    format!("✕ {tcp_flags} dropped")
                };
                let (from, to) = if *direction == Some("out") {
                    (Kernel, Peer)
                } else {
                    (Peer, Kernel)
                };
                steps.push(step(t, from, to, label, reason.clone(), Tone::Bad));
            }
            What::Syscall { syscall, ret, .. } => {
                let label = sys_label(e).unwrap_or_default();
                if matches!(*syscall, "accept" | "accept4") && *ret >= 0 {
                    steps.push(step(
                        t,
                        Kernel,
                        App,
                        format!("{syscall}() returns fd {ret}"),
                        "",
                        Tone::Normal,
                    ));
                } else {
                    let tone = if *ret < 0 && *ret != -115 {
                        Tone::Bad
                    } else {
                        Tone::Normal
                    };
                    steps.push(step(t, App, Kernel, label, sys_note(e), tone));
                }
            }
            What::Wait {
                syscall,
                phase,
                ret,
                errno,
                duration_us,
                packet_to_return_us,
                ..
            } => {
                if *phase == "enter" {
                    steps.push(step(
                        t,
                        App,
                        App,
                        format!("{syscall}() waits"),
                        "",
                        Tone::Normal,
                    ));
                } else {
                    let r = match (errno, ret) {
                        (Some(e), _) => format!("-{e}"),
                        (None, Some(r)) => r.to_string(),
                        (None, None) => "?".into(),
                    };
                    let mut note = format!("blocked {}", fmt_us(duration_us.unwrap_or(0)));
                    if let Some(l) = packet_to_return_us {
                        note.push_str(&format!(", {} after the packet", fmt_us(*l)));
                    }
                    steps.push(step(
                        t,
                        Kernel,
                        App,
                        format!("{syscall}() = {r}"),
                        note,
                        Tone::Normal,
                    ));
                }
            }
            What::Wake {
                cpu,
                by_packet,
                packet_to_wake_us,
                ..
            } => {
                let note = if *by_packet {
                    format!(
                        "cpu {cpu}, {} after the packet",
                        fmt_us(packet_to_wake_us.unwrap_or(0))
                    )
                } else {
                    format!("cpu {cpu}")
                };
                steps.push(step(t, Kernel, App, "wake", note, Tone::Normal));
            }
            What::Packet { direction, .. } => {
                let (label, note) = packet_label(&e.what);
                let (from, to) = if *direction == "in" {
                    (Peer, Kernel)
                } else {
                    (Kernel, Peer)
                };
                let tone = if label.contains("RST") {
                    Tone::Bad
                } else {
                    Tone::Normal
                };
                steps.push(step(t, from, to, label, note, tone));
            }
            What::Send {
                syscall,
                sys_fd: fd,
                bytes,
                errno,
            } => {
                let fd = fd.map_or_else(String::new, |f| f.to_string());
                match (bytes, errno) {
                    (Some(b), _) if wire => steps.push(step(
                        t,
                        App,
                        Kernel,
                        format!("{syscall}({fd}): {}", fmt_bytes(u64::from(*b))),
                        "",
                        Tone::Normal,
                    )),
                    (Some(b), _) => {
                        steps.push(step(
                            t,
                            App,
                            Kernel,
                            format!("{syscall}({fd}): {}", fmt_bytes(u64::from(*b))),
                            "",
                            Tone::Normal,
                        ));
                        if *b > 0 {
                            steps.push(step(
                                None,
                                Kernel,
                                Peer,
                                format!("data {}", fmt_bytes(u64::from(*b))),
                                "",
                                Tone::Inferred,
                            ));
                        }
                    }
                    (None, e) => steps.push(step(
                        t,
                        App,
                        Kernel,
                        format!("{syscall}({fd}) = -{}", e.unwrap_or("?")),
                        "",
                        Tone::Bad,
                    )),
                }
            }
            What::Recv {
                syscall,
                sys_fd: fd,
                bytes,
                errno,
                ..
            } => {
                let fd = fd.map_or_else(String::new, |f| f.to_string());
                match (bytes, errno) {
                    (Some(0), _) => steps.push(step(
                        t,
                        Kernel,
                        App,
                        format!("{syscall}({fd}) = 0: EOF"),
                        "",
                        Tone::Normal,
                    )),
                    (Some(b), _) if wire => steps.push(step(
                        t,
                        Kernel,
                        App,
                        format!("{syscall}({fd}): {}", fmt_bytes(u64::from(*b))),
                        "",
                        Tone::Normal,
                    )),
                    (Some(b), _) => {
                        steps.push(step(
                            None,
                            Peer,
                            Kernel,
                            format!("data {}", fmt_bytes(u64::from(*b))),
                            "",
                            Tone::Inferred,
                        ));
                        steps.push(step(
                            t,
                            Kernel,
                            App,
                            format!("{syscall}({fd}): {}", fmt_bytes(u64::from(*b))),
                            "",
                            Tone::Normal,
                        ));
                    }
                    // Nothing to read yet on a non-blocking socket: not a
                    // step of the connection's story.
                    (None, Some("EAGAIN")) => {}
                    (None, e) => steps.push(step(
                        t,
                        Kernel,
                        App,
                        format!("{syscall}({fd}) = -{}", e.unwrap_or("?")),
                        "",
                        Tone::Bad,
                    )),
                }
            }
            What::Destroy {
                bytes_acked,
                bytes_received,
                retransmits,
                ..
            } => steps.push(step(
                t,
                Kernel,
                Kernel,
                "",
                format!(
                    "socket freed: {} out, {} in, {retransmits} retransmits",
                    fmt_bytes(*bytes_acked),
                    fmt_bytes(*bytes_received)
                ),
                Tone::Normal,
            )),
        }
    }
    let steps = merge_data(steps);
    Diagram {
        conn: c.id,
        title,
        peer,
        kernel: "kernel".into(),
        app,
        steps,
    }
}

/// A packet as an arrow's label ("[PSH|ACK] len 6") and its note
/// ("seq 1 ack 1 win 512, softirq").
pub fn packet_label(w: &What) -> (String, String) {
    let What::Packet {
        tcp_flags,
        seq,
        ack,
        rel_seq,
        rel_ack,
        len,
        window,
        mss,
        wscale,
        sack,
        softirq,
        cpu,
        ..
    } = w
    else {
        return (String::new(), String::new());
    };
    let label = format!("[{tcp_flags}] len {len}");
    let mut note = format!("seq {}", rel_seq.unwrap_or(*seq));
    if crate::track::has_flag(tcp_flags, "ACK") {
        note.push_str(&format!(" ack {}", rel_ack.unwrap_or(*ack)));
    }
    note.push_str(&format!(" win {window}"));
    if let Some(m) = mss {
        note.push_str(&format!(" mss {m}"));
    }
    if let Some(w) = wscale {
        note.push_str(&format!(" wscale {w}"));
    }
    for [l, r] in sack {
        note.push_str(&format!(" sack {l}-{r}"));
    }
    note.push_str(&format!(", cpu {cpu}"));
    if *softirq {
        note.push_str(" softirq");
    }
    (label, note)
}

/// With packet events: what an event that otherwise implies a segment
/// draws instead (a note on the kernel's lane); None for the others.
fn wire_note(e: &Event) -> Option<Step> {
    let t = Some(e.t_ns);
    let note = |label: &str, note: String, tone: Tone| {
        Some(step(t, Lane::Kernel, Lane::Kernel, label, note, tone))
    };
    match &e.what {
        What::State {
            old_state,
            new_state,
        } => {
            let n = format!("{} → {}", label(*old_state), label(*new_state));
            if (*old_state, *new_state) == (State::SynRecv, State::Established) {
                note("queued for accept()", n, Tone::Normal)
            } else {
                note("", n, Tone::Normal)
            }
        }
        What::TimeWaitCheck { found, table_state } => note(
            "",
            match (found, table_state) {
                (true, Some(s)) => format!("socket table: timewait socket in {}", label(*s)),
                _ => "socket table: no timewait socket".into(),
            },
            Tone::Normal,
        ),
        What::ResetSent { reason, .. } => note("", format!("RST sent: {reason}"), Tone::Bad),
        What::ResetReceived { meaning } => note("", format!("RST received: {meaning}"), Tone::Bad),
        What::Retransmit { bytes, .. } => note(
            "",
            format!("retransmit {}", fmt_bytes(u64::from(*bytes))),
            Tone::Warn,
        ),
        What::RetransmitSynack {} => note("", "SYN-ACK retransmitted".into(), Tone::Warn),
        _ => None,
    }
}

/// Runs of identical data rows ("write(4): 1.0 KiB" many times) become
/// one row with a count, and very long diagrams are cut.
fn merge_data(steps: Vec<Step>) -> Vec<Step> {
    let mut out: Vec<(Step, usize)> = Vec::new();
    for s in steps {
        if let Some((last, n)) = out.last_mut()
            && last.from == s.from
            && last.to == s.to
            && last.label == s.label
            && last.note.is_empty()
            && s.note.is_empty()
            && last.tone == s.tone
            && s.tone != Tone::Bad
        {
            *n += 1;
            continue;
        }
        out.push((s, 1));
    }
    let total = out.len();
    let mut v: Vec<Step> = out
        .into_iter()
        .take(MAX_STEPS)
        .map(|(mut s, n)| {
            if n > 1 {
                s.label = format!("{} ×{n}", s.label);
            }
            s
        })
        .collect();
    if total > MAX_STEPS {
        v.push(step(
            None,
            Lane::Kernel,
            Lane::Kernel,
            "",
            format!("… {} more rows", total - MAX_STEPS),
            Tone::Normal,
        ));
    }
    v
}

/// Column width of one lane in the text drawing.
const LANE: usize = 30;
const TIME_W: usize = 10;

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// The diagram with box-drawing characters.
pub fn write_text(w: &mut dyn Write, d: &Diagram, color_on: bool) -> io::Result<()> {
    let (b, r, dim) = if color_on {
        (color::BOLD, color::RESET, color::DIM)
    } else {
        ("", "", "")
    };
    writeln!(w, "{b}{}{r}", d.title)?;
    let heads = [&d.peer, &d.kernel, &d.app];
    let mut h = format!("{:>TIME_W$}  ", "time (ms)");
    for (i, name) in heads.iter().enumerate() {
        let cell = truncate(name, LANE - 1);
        if i < 2 {
            h.push_str(&format!("{cell:<LANE$}"));
        } else {
            h.push_str(&cell);
        }
    }
    writeln!(w, "{dim}{}{r}", h.trim_end())?;
    writeln!(w, "{}", lanes_row(&" ".repeat(TIME_W), None).trim_end())?;
    for s in &d.steps {
        let t = match s.t_ns {
            Some(ns) => format!("{:>TIME_W$.3}", ns as f64 / 1e6),
            None => format!("{:>TIME_W$}", "·"),
        };
        let mut row = lanes_row(&t, Some(s));
        if !s.note.is_empty() {
            row.push_str("  ");
            row.push_str(&s.note);
        }
        let row = row.trim_end().to_string();
        let tone = match s.tone {
            Tone::Bad => color::RED,
            Tone::Warn => color::YELLOW,
            Tone::Inferred => color::DIM,
            Tone::Normal => "",
        };
        if color_on && !tone.is_empty() {
            writeln!(w, "{tone}{row}{}", color::RESET)?;
        } else {
            writeln!(w, "{row}")?;
        }
    }
    writeln!(w)
}

/// One row: the time, the three lifelines and an arrow or a lane note.
fn lanes_row(time: &str, s: Option<&Step>) -> String {
    // positions of the lifelines inside the lanes area
    let width = 2 * LANE + 1;
    let mut cells: Vec<char> = vec![' '; width];
    for i in 0..3 {
        cells[i * LANE] = '│';
    }
    if let Some(s) = s {
        let (a, z) = (s.from.index() * LANE, s.to.index() * LANE);
        if a != z {
            let (lo, hi) = (a.min(z), a.max(z));
            let fill = if s.tone == Tone::Inferred {
                '┄'
            } else {
                '─'
            };
            for c in cells.iter_mut().take(hi).skip(lo + 1) {
                *c = fill;
            }
            if z > a {
                cells[hi - 1] = '▶';
            } else {
                cells[lo + 1] = '◀';
            }
            // label in the middle of the span, with a space either side
            let span = hi - lo - 3;
            let label = truncate(&s.label, span.saturating_sub(2));
            let lw = label.chars().count();
            if lw > 0 {
                let start = lo + 2 + (span - lw - 2) / 2;
                cells[start] = ' ';
                for (i, ch) in label.chars().enumerate() {
                    cells[start + 1 + i] = ch;
                }
                cells[start + 1 + lw] = ' ';
            }
        } else if !s.label.is_empty() {
            // a note on a lifeline: written just right of it
            let label = truncate(&s.label, LANE - 3);
            for (i, ch) in format!(" {label}").chars().enumerate() {
                if a + 1 + i < width && cells[a + 1 + i] == ' ' {
                    cells[a + 1 + i] = ch;
                }
            }
        }
    }
    let mut row = format!("{time}  ");
    row.extend(cells);
    row
}

/// The diagram as a standalone SVG document (the library's one sequence
/// diagram writer, with the lanes peer | kernel | application).
pub fn svg(d: &Diagram) -> String {
    use sockscope::view::seqdiag;
    let rows = d
        .steps
        .iter()
        .map(|s| seqdiag::Row {
            t_ns: s.t_ns,
            from: s.from.index(),
            to: s.to.index(),
            label: s.label.clone(),
            note: s.note.clone(),
            tone: match s.tone {
                Tone::Normal => seqdiag::Tone::Normal,
                Tone::Inferred => seqdiag::Tone::Inferred,
                Tone::Warn => seqdiag::Tone::Warn,
                Tone::Bad => seqdiag::Tone::Bad,
            },
        })
        .collect();
    seqdiag::svg(&seqdiag::Diagram {
        title: d.title.clone(),
        lanes: vec![d.peer.clone(), d.kernel.clone(), d.app.clone()],
        rows,
        unit: seqdiag::TimeUnit::Millis,
    })
}

/// File name for a connection's SVG: "conn-3-5000-40312.svg".
pub fn svg_name(c: &Conn) -> String {
    let lp = c.local.map_or(0, |a| a.port());
    let pp = c.peer.map_or(0, |a| a.port());
    format!("conn-{}-{lp}-{pp}.svg", c.id)
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;
    use crate::track::tests::{ev, st, sys};
    use crate::track::{Tracker, UserFilter};

    /// Seed 003 from the server's side: handshake, accept, a 6-byte write,
    /// the client's RST, close.
    pub fn seed003() -> Conn {
        let mut t = Tracker::new(UserFilter::default(), true);
        let (mut out, mut done) = (Vec::new(), Vec::new());
        let l = "127.0.0.1:5000";
        let p = "127.0.0.1:40312";
        let mut a = st(13_100_000, State::Listen, State::SynRecv, l, p);
        a.pid = Some(4242);
        a.comm = Some("ncat".into());
        a.fd = Some(3);
        a.owner = Some("listener");
        t.push(a, 0x20, &mut out, &mut done);
        t.push(
            st(13_105_000, State::SynRecv, State::Established, l, p),
            0x20,
            &mut out,
            &mut done,
        );
        t.push(
            sys(14_000_000, "accept", 3, 4, 4242, l, p),
            0x20,
            &mut out,
            &mut done,
        );
        let mut w = ev(
            15_000_000,
            What::Send {
                syscall: "sendto",
                sys_fd: Some(4),
                bytes: Some(6),
                errno: None,
            },
            l,
            p,
        );
        w.pid = Some(4242);
        w.owner = Some("task");
        w.comm = Some("ncat".into());
        w.fd = Some(4);
        t.push(w, 0x20, &mut out, &mut done);
        t.push(
            ev(20_000_000, What::ResetReceived { meaning: "x" }, l, p),
            0x20,
            &mut out,
            &mut done,
        );
        t.push(
            st(20_001_000, State::Established, State::Close, l, p),
            0x20,
            &mut out,
            &mut done,
        );
        t.push(
            sys(21_100_000, "close", 4, 0, 4242, l, p),
            0x20,
            &mut out,
            &mut done,
        );
        t.finish(&mut done);
        done.remove(0)
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::seed003;
    use super::*;

    #[test]
    fn seed003_as_text() {
        let d = build(&seed003());
        let mut out = Vec::new();
        write_text(&mut out, &d, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        let want = "\
#1 tcp 127.0.0.1:5000 ← 127.0.0.1:40312  ncat[4242] fd 4  (server side, 8.0 ms, reset by the peer)
 time (ms)  client 127.0.0.1:40312        kernel                        application ncat[4242]
            │                             │                             │
         ·  │┄┄┄┄┄┄┄┄┄┄┄┄ SYN ┄┄┄┄┄┄┄┄┄┄┄▶│                             │  half-open: a request socket, no event yet
         ·  │◀┄┄┄┄┄┄┄┄┄ SYN-ACK ┄┄┄┄┄┄┄┄┄┄│                             │
    13.100  │──────────── ACK ───────────▶│                             │  LISTEN → SYN-RECV: the kernel completes the handshake
    13.105  │                             │ queued for accept()         │  SYN-RECV → ESTABLISHED
    14.000  │                             │─── accept() returns fd 4 ──▶│
    15.000  │                             │◀───── sendto(4): 6 B ───────│
         ·  │◀┄┄┄┄┄┄┄┄ data 6 B ┄┄┄┄┄┄┄┄┄┄│                             │
    20.000  │──────────── RST ───────────▶│                             │
    20.001  │                             │                             │  ESTABLISHED → CLOSE
    21.100  │                             │◀────── close(4) = 0 ────────│

";
        assert_eq!(text, want, "got:\n{text}");
    }

    #[test]
    fn seed003_as_svg() {
        let d = build(&seed003());
        let s = svg(&d);
        assert!(s.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(s.ends_with("</svg>\n"));
        assert_eq!(
            s.matches("marker-end").count(),
            8,
            "one arrow per message row"
        );
        assert!(s.contains(">accept() returns fd 4<"));
        assert!(s.contains("stroke-dasharray"), "inferred rows are dashed");
        assert!(s.contains("#1 tcp 127.0.0.1:5000 ← 127.0.0.1:40312"));
        // every tag that opens closes
        assert_eq!(s.matches("<text").count(), s.matches("</text>").count());
    }

    #[test]
    fn long_runs_of_data_are_merged() {
        let mut steps = Vec::new();
        for _ in 0..5 {
            steps.push(step(
                Some(1),
                Lane::App,
                Lane::Kernel,
                "write(4): 1.0 KiB",
                "",
                Tone::Normal,
            ));
        }
        steps.push(step(
            Some(2),
            Lane::App,
            Lane::Kernel,
            "close(4) = 0",
            "",
            Tone::Normal,
        ));
        let m = merge_data(steps);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].label, "write(4): 1.0 KiB ×5");
        assert_eq!(
            sockscope::view::seqdiag::escape("<a&\"b\">"),
            "&lt;a&amp;&quot;b&quot;&gt;"
        );
    }
}
