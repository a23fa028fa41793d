//! The socket table view (`sockscope ls`): ss's columns, plus owners and the
//! namespace, as an aligned table or as JSON / JSON lines.

use super::table::{Align, Color, Table};
use crate::model::{Endpoint, Family, Owner, Proto, Socket, State};
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
}

/// Resolves a port to a service name (for non-numeric output).
pub type PortNamer<'a> = &'a dyn Fn(u16, Proto) -> Option<&'a str>;

/// Format an address and port as ss does: `127.0.0.1:8080`, `[::1]:22`,
/// `*` for port 0, `*:22` for a dual-stack [::] listener.
pub fn format_inet(
    out: &mut String,
    addr: IpAddr,
    port: u16,
    proto: Proto,
    v6only: Option<bool>,
    names: Option<PortNamer>,
) {
    match addr {
        IpAddr::V4(a) => {
            let _ = write!(out, "{a}");
        }
        IpAddr::V6(a) if a.is_unspecified() && v6only == Some(false) => out.push('*'),
        IpAddr::V6(a) => {
            let _ = write!(out, "[{a}]");
        }
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
        Endpoint::Inet { addr, port } => format_inet(out, *addr, *port, s.proto, s.v6only, names),
        Endpoint::Unix { path, inode } => {
            out.push_str(path.as_deref().unwrap_or("*"));
            let _ = write!(out, " {inode}");
        }
    }
}

/// `python3(pid=10,fd=3),python3(pid=11,fd=3)`
pub fn format_owners(out: &mut String, owners: &[Owner]) {
    for (i, o) in owners.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}(pid={},fd={})", o.comm, o.pid, o.fd);
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

/// Build the table for `sockets`.
pub fn table(sockets: &[Socket], cols: Columns, names: Option<PortNamer>) -> Table {
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
    let mut t = Table::with_capacity(&spec, sockets.len());
    for s in sockets {
        if cols.netns {
            t.cell_with(None, |b| match &s.netns {
                Some(n) => {
                    let _ = write!(b, "{n}");
                }
                None => b.push('-'),
            });
        }
        if cols.netid {
            t.cell(s.proto.short());
        }
        t.colored(state_color(s.state), s.state.ss_label());
        t.cell_with(None, |b| opt(b, s.recv_q));
        t.cell_with(None, |b| opt(b, s.send_q));
        t.cell_with(None, |b| format_endpoint(b, s, &s.local, names));
        t.cell_with(None, |b| format_endpoint(b, s, &s.peer, names));
        if cols.timers {
            t.cell_with(None, |b| match s.timer {
                Some(tm) if tm.kind != crate::model::TimerKind::Off => {
                    let _ = write!(b, "{},{}ms,{}", tm.kind.name(), tm.expires_ms, tm.retrans);
                }
                Some(_) => b.push_str("off"),
                None => b.push('-'),
            });
        }
        if cols.extended {
            t.cell_with(None, |b| opt(b, s.uid));
            t.cell(s.inode);
            t.cell_with(None, |b| match s.cookie {
                Some(c) => {
                    let _ = write!(b, "{c:x}");
                }
                None => b.push('-'),
            });
            t.cell_with(None, |b| opt(b, s.cgroup_id));
        }
        if cols.process {
            t.cell_with(None, |b| format_owners(b, &s.owners));
        }
    }
    t
}

/// Whether a set of sockets spans several protocols (ss then shows Netid).
pub fn several_protocols(sockets: &[Socket]) -> bool {
    sockets
        .first()
        .is_some_and(|f| sockets.iter().any(|s| s.proto != f.proto))
}

/// Write sockets as one JSON array, streamed (one socket per line).
pub fn write_json(w: &mut impl Write, sockets: &[Socket]) -> io::Result<()> {
    w.write_all(b"[")?;
    for (i, s) in sockets.iter().enumerate() {
        w.write_all(if i == 0 { b"\n" } else { b",\n" })?;
        serde_json::to_writer(&mut *w, s)?;
    }
    w.write_all(if sockets.is_empty() { b"]\n" } else { b"\n]\n" })
}

/// Write sockets as JSON lines.
pub fn write_jsonl(w: &mut impl Write, sockets: &[Socket]) -> io::Result<()> {
    for s in sockets {
        serde_json::to_writer(&mut *w, s)?;
        w.write_all(b"\n")?;
    }
    Ok(())
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
            timer: None,
            netns: None,
            source: SourceKind::Proc,
            owners: vec![
                Owner {
                    pid: 1,
                    fd: 3,
                    comm: "a".into(),
                    uid: None,
                },
                Owner {
                    pid: 2,
                    fd: 3,
                    comm: "a".into(),
                    uid: None,
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
    fn json_array_and_lines() {
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
        let mut out = Vec::new();
        write_json(&mut out, &v).unwrap();
        let parsed: Vec<Socket> = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed, v);
        let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(j[0]["local"]["addr"], "::ffff:127.0.0.1");
        assert_eq!(j[0]["state"], "listening");
        assert_eq!(j[0]["send_q"], serde_json::Value::Null);
        let mut empty = Vec::new();
        write_json(&mut empty, &[]).unwrap();
        assert_eq!(empty, b"[]\n");
        let mut l = Vec::new();
        write_jsonl(&mut l, &v).unwrap();
        assert_eq!(l.iter().filter(|&&c| c == b'\n').count(), 1);
    }
}
