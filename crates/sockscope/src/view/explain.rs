//! Views for `who` (the chain from a port to its process), `listeners`
//! (queues and counters) and `proc` (a process's fd table).

use super::sockets::{PortNamer, format_inet_dev, format_owners};
use super::table::{Align, Color, Table};
use crate::escape::escape_str as esc;
use crate::explain::{Chain, ListenerHealth};
use crate::model::Counters;
use crate::model::{Endpoint, Socket};
use crate::model::{FdEntry, FdTarget, ProcessInfo};
use std::fmt::Write as _;
use std::io::{self, Write};

/// `127.0.0.1:8080`, `[::1]:22`, or a UNIX path and inode.
pub fn endpoint(s: &Socket, e: &Endpoint) -> String {
    let mut b = String::new();
    match e {
        Endpoint::Inet { addr, port } => {
            let dev = s
                .bound_ifname
                .as_deref()
                .filter(|_| std::ptr::eq(e, &s.local));
            format_inet_dev(&mut b, *addr, *port, s.proto, s.v6only, dev, None)
        }
        Endpoint::Unix { path, inode } => {
            let _ = write!(b, "{} {inode}", esc(path.as_deref().unwrap_or("*")));
        }
        Endpoint::Unknown => b.push_str("* -"),
    }
    b
}

/// One line naming a socket: `tcp ESTAB 127.0.0.1:8080 127.0.0.1:43210`.
pub fn socket_line(s: &Socket) -> String {
    let mut b = format!(
        "{} {} {} {}",
        s.proto.short(),
        s.state.ss_label(),
        endpoint(s, &s.local),
        endpoint(s, &s.peer)
    );
    if !s.owners.is_empty() {
        b.push_str("  ");
        format_owners(&mut b, &s.owners);
    }
    b
}

/// Text with control characters escaped (a command line may hold newlines):
/// [`super::escape::escape_str`], owned.
pub fn printable(s: &str) -> String {
    esc(s).into_owned()
}

/// Days since 1970-01-01 to a civil date (proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `2026-11-22 04:00:01 UTC`
pub fn utc(unix_s: u64) -> String {
    let (y, m, d) = civil((unix_s / 86_400) as i64);
    let t = unix_s % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        t / 3600,
        (t / 60) % 60,
        t % 60
    )
}

fn process_lines(w: &mut impl Write, p: &ProcessInfo, indent: &str) -> io::Result<()> {
    let cmd = if p.cmdline.is_empty() {
        format!("[{}]", esc(&p.comm))
    } else {
        printable(&p.cmdline.join(" "))
    };
    writeln!(
        w,
        "{indent}process {} {} (user {}{}, parent {}, state {}): {}",
        p.pid,
        esc(&p.comm),
        p.uid,
        p.user
            .as_deref()
            .map(|u| format!(" {}", esc(u)))
            .unwrap_or_default(),
        p.ppid,
        p.state,
        cmd
    )?;
    let mut facts = Vec::new();
    if let Some(e) = &p.exe {
        facts.push(format!("exe {}", esc(e)));
    }
    if let Some(s) = p.start_unix_s {
        facts.push(format!("started {}", utc(s)));
    }
    facts.push(format!(
        "{} thread{}",
        p.threads,
        if p.threads == 1 { "" } else { "s" }
    ));
    if let Some(c) = &p.cgroup {
        facts.push(format!("cgroup {}", esc(c)));
    }
    if let Some(c) = &p.container_id {
        let short: String = c.chars().take(12).collect();
        facts.push(format!("container {}", esc(&short)));
    }
    writeln!(w, "{indent}  {}", facts.join(", "))
}

/// Render one `who` chain as text.
pub fn write_chain(w: &mut impl Write, c: &Chain, color: bool) -> io::Result<()> {
    let s = &c.socket;
    let bold = |t: &str| {
        if color {
            format!("\x1b[1m{t}\x1b[0m")
        } else {
            t.to_string()
        }
    };
    let ns = s
        .netns
        .as_ref()
        .map(|n| format!("  (netns {})", esc(&n.to_string())))
        .unwrap_or_default();
    writeln!(w, "{}{}", bold(&socket_line_no_owners(s)), ns)?;
    if let (Some(port), Some(hex)) = (s.local.port(), &c.port_hex) {
        let addr = s.local.ip().map(|a| a.to_string()).unwrap_or_default();
        writeln!(
            w,
            "  port {port} = 0x{hex}; address {addr} = {} as /proc prints it",
            c.addr_hex.as_deref().unwrap_or("?")
        )?;
    }
    if let Some(pl) = &c.proc_line {
        writeln!(w, "  {}:", esc(&pl.file))?;
        writeln!(w, "    {}", esc(pl.header.trim_end()))?;
        writeln!(w, "    {}", esc(pl.line.trim_end()))?;
        let width = pl.fields.iter().map(|f| f.name.len()).max().unwrap_or(0);
        let raww = pl
            .fields
            .iter()
            .map(|f| esc(&f.raw).chars().count())
            .max()
            .unwrap_or(0);
        for f in &pl.fields {
            writeln!(
                w,
                "      {:width$}  {:raww$}  {}",
                f.name,
                esc(&f.raw),
                esc(&f.meaning),
                width = width,
                raww = raww
            )?;
        }
    } else {
        writeln!(w, "  (no line in /proc/net for this socket)")?;
    }
    if s.inode == 0 {
        writeln!(
            w,
            "  inode 0: no file descriptor can point at this socket (TIME-WAIT, half-open, or waiting in the accept queue)"
        )?;
    } else {
        writeln!(w, "  inode {}", s.inode)?;
    }
    if c.owners.is_empty() && s.inode != 0 {
        writeln!(
            w,
            "    no process holds it (closed by its owner, or owned by a process we may not read)"
        )?;
    }
    for o in &c.owners {
        writeln!(w, "    {} -> {}", esc(&o.fd_path), esc(&o.link))?;
        if let Some(fi) = &o.fdinfo {
            writeln!(
                w,
                "      fdinfo: pos {}, flags {} ({}), mnt_id {}, ino {}",
                fi.pos,
                fi.flags_octal,
                fi.flags.join("|"),
                fi.mnt_id.map(|m| m.to_string()).unwrap_or("-".into()),
                fi.ino.map(|m| m.to_string()).unwrap_or("-".into()),
            )?;
        }
        match &o.process {
            Some(p) => process_lines(w, p, "      ")?,
            None => writeln!(
                w,
                "      process {} ({}) has exited",
                o.owner.pid,
                esc(&o.owner.comm)
            )?,
        }
    }
    if let Some(h) = &c.listener {
        write_listener_block(w, h)?;
    }
    if let Some(p) = &c.unix_peer {
        writeln!(w, "  peer: {}", socket_line(p))?;
    }
    Ok(())
}

fn socket_line_no_owners(s: &Socket) -> String {
    format!(
        "{} {} {} {}",
        s.proto.short(),
        s.state.ss_label(),
        endpoint(s, &s.local),
        endpoint(s, &s.peer)
    )
}

fn opt(v: Option<u32>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

fn write_listener_block(w: &mut impl Write, h: &ListenerHealth) -> io::Result<()> {
    writeln!(
        w,
        "  listener: accept queue {} of backlog {}{}{}; {} half-open (SYN-RECV)",
        opt(h.accept_queue),
        opt(h.backlog),
        h.fill_pct
            .map(|p| format!(" ({p:.0}%)"))
            .unwrap_or_default(),
        if h.full {
            " FULL: new handshakes are being dropped"
        } else {
            ""
        },
        h.syn_recv
    )?;
    for c in h.half_open.iter().take(20) {
        writeln!(w, "      half-open: {}", socket_line(c))?;
    }
    writeln!(
        w,
        "    connections on this port: {}",
        if h.children.is_empty() {
            "none".to_string()
        } else {
            h.children.len().to_string()
        }
    )?;
    for c in h.children.iter().take(20) {
        let note = if c.inode == 0 && c.state == crate::model::State::Established {
            "  (in the accept queue: not accept()ed yet, so no fd)"
        } else {
            ""
        };
        writeln!(w, "      {}{note}", socket_line(c))?;
    }
    if h.children.len() > 20 {
        writeln!(w, "      ... {} more", h.children.len() - 20)?;
    }
    if h.reuseport_siblings.is_empty() {
        writeln!(w, "    SO_REUSEPORT siblings: none")?;
    } else {
        writeln!(
            w,
            "    SO_REUSEPORT siblings: {} (the kernel spreads new connections over them)",
            h.reuseport_siblings.len()
        )?;
        for s in &h.reuseport_siblings {
            writeln!(w, "      inode {} {}", s.inode, socket_line(s))?;
        }
    }
    Ok(())
}

/// Options for the listeners table.
pub struct ListenerCols<'a> {
    pub netns: bool,
    /// net.core.somaxconn of each listener's namespace, to flag clamped
    /// backlogs (None when unknown).
    pub somaxconn: &'a dyn Fn(&Socket) -> Option<u32>,
}

/// The listeners table.
pub fn listeners_table(
    hs: &[ListenerHealth],
    cols: &ListenerCols,
    names: Option<PortNamer>,
) -> Table {
    let mut spec = Vec::new();
    if cols.netns {
        spec.push(("Netns", Align::Left));
    }
    spec.extend([
        ("Local Address:Port", Align::Left),
        ("Accept-Q", Align::Right),
        ("Backlog", Align::Right),
        ("Fill", Align::Right),
        ("SYN-RECV", Align::Right),
        ("Conns", Align::Right),
        ("Reuseport", Align::Right),
        ("Flags", Align::Left),
        ("Process", Align::Left),
    ]);
    let mut t = Table::with_capacity(&spec, hs.len());
    for h in hs {
        let l = &h.listener;
        if cols.netns {
            t.cell_with(None, |b| match &l.netns {
                Some(n) => b.push_str(&esc(&n.to_string())),
                None => b.push('-'),
            });
        }
        t.cell_with(None, |b| {
            if let Endpoint::Inet { addr, port } = &l.local {
                let dev = l.bound_ifname.as_deref();
                format_inet_dev(b, *addr, *port, l.proto, l.v6only, dev, names);
            }
        });
        t.cell(opt(h.accept_queue));
        t.cell(opt(h.backlog));
        let fill_color = match h.fill_pct {
            _ if h.full => Some(Color::Red),
            Some(p) if p >= 80.0 => Some(Color::Yellow),
            _ => None,
        };
        t.colored(
            fill_color,
            h.fill_pct
                .map(|p| format!("{p:.0}%"))
                .unwrap_or_else(|| "-".into()),
        );
        t.colored(
            (h.syn_recv > 0).then_some(Color::Cyan),
            h.syn_recv.to_string(),
        );
        t.cell(h.children.len());
        t.cell(if h.reuseport_siblings.is_empty() {
            "-".to_string()
        } else {
            format!("{}", h.reuseport_siblings.len() + 1)
        });
        let mut flags = Vec::new();
        if h.full {
            flags.push("FULL");
        }
        if let (Some(b), Some(max)) = (h.backlog, (cols.somaxconn)(l))
            && b == max
        {
            flags.push("CLAMPED?");
        }
        t.colored(
            (!flags.is_empty()).then_some(Color::Red),
            if flags.is_empty() {
                "-".to_string()
            } else {
                flags.join(",")
            },
        );
        t.cell_with(None, |b| format_owners(b, &l.owners));
    }
    t
}

/// The listen-path counters, in the order a reader follows a SYN.
pub const LISTEN_COUNTERS: &[(&str, &str)] = &[
    (
        "TcpExt.ListenOverflows",
        "SYNs (and handshake-completing ACKs) dropped because the accept queue was full",
    ),
    (
        "TcpExt.ListenDrops",
        "SYNs or final ACKs dropped at a listener, for any reason (includes overflows)",
    ),
    (
        "TcpExt.TCPReqQFullDrop",
        "SYNs dropped because the SYN queue was full and syncookies are off",
    ),
    (
        "TcpExt.TCPReqQFullDoCookies",
        "SYNs answered with a syncookie because the SYN queue was full",
    ),
    ("TcpExt.SyncookiesSent", "syncookies sent"),
    ("TcpExt.SyncookiesRecv", "valid syncookies received back"),
    ("TcpExt.SyncookiesFailed", "invalid syncookies received"),
    (
        "TcpExt.TCPBacklogDrop",
        "packets dropped because the socket backlog (socket locked by the app) was full",
    ),
];

/// Print listen counters; with `delta`, the change since the previous read
/// and a marker on the ones that moved.
pub fn write_listen_counters(
    w: &mut impl Write,
    now: &Counters,
    delta: Option<&Counters>,
    color: bool,
) -> io::Result<()> {
    let width = LISTEN_COUNTERS
        .iter()
        .map(|(k, _)| k.len())
        .max()
        .unwrap_or(0);
    for (k, meaning) in LISTEN_COUNTERS {
        let v = now
            .get(k)
            .map(|v| v.to_string())
            .unwrap_or_else(|| "-".into());
        let d = delta.and_then(|d| d.get(k));
        let moved = d.is_some_and(|d| d != 0);
        let dtext = match d {
            Some(d) => format!("{d:+}"),
            None => String::new(),
        };
        let line = format!("  {k:width$} {v:>10} {dtext:>8}  {meaning}");
        if moved && color {
            writeln!(w, "\x1b[31m{line}\x1b[0m")?;
        } else if moved {
            writeln!(w, "{line}  <- moved")?;
        } else {
            writeln!(w, "{line}")?;
        }
    }
    Ok(())
}

/// A process's fd table (`sockscope proc PID`).
pub fn fd_table(pid: u32, fds: &[(FdEntry, Option<Socket>)]) -> Table {
    let mut t = Table::with_capacity(
        &[
            ("FD", Align::Right),
            ("Kind", Align::Left),
            ("Flags", Align::Left),
            ("What", Align::Left),
        ],
        fds.len(),
    );
    for (e, sock) in fds {
        match e.tid {
            // Not the main table: `/proc/PID/task/TID/fd/FD`.
            Some(tid) => t.cell(format!("{}@{tid}", e.fd)),
            None => t.cell(e.fd),
        }
        t.cell(match (&e.target, sock) {
            (FdTarget::Socket { .. }, Some(s)) => s.proto.short().to_string(),
            (tgt, _) => tgt.kind_name().to_string(),
        });
        t.cell(
            e.info
                .as_ref()
                .map(|i| i.flags.join("|"))
                .unwrap_or_else(|| "-".into()),
        );
        t.cell_with(None, |b| match (&e.target, sock) {
            (FdTarget::Socket { inode }, Some(s)) => {
                let _ = write!(
                    b,
                    "{} {} -> {}  socket:[{inode}]",
                    s.state.ss_label(),
                    endpoint(s, &s.local),
                    endpoint(s, &s.peer)
                );
                let others: Vec<_> = s
                    .owners
                    .iter()
                    .filter(|o| !(o.pid == pid && o.fd == e.fd && o.tid == e.tid))
                    .cloned()
                    .collect();
                if !others.is_empty() {
                    b.push_str("  also held by ");
                    format_owners(b, &others);
                }
            }
            (FdTarget::Socket { inode }, None) => {
                let _ = write!(b, "socket:[{inode}] (not in the socket tables read)");
            }
            (FdTarget::Pipe { inode }, _) => {
                let _ = write!(b, "pipe:[{inode}]");
            }
            (FdTarget::AnonInode { name }, _) => {
                let _ = write!(b, "anon_inode:[{}]", esc(name));
            }
            (FdTarget::File { path }, _) => b.push_str(&esc(path)),
            (FdTarget::Other { link }, _) => b.push_str(&esc(link)),
        });
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_controls() {
        assert_eq!(printable("a\nb\tc\x01"), "a\\nb\\tc\\x01");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_795_316_401), "2026-11-22 03:00:01 UTC");
    }
}
