//! What a scenario did, saw and checked, and how that reads as text.
//!
//! A [`Report`] is plain data (serde, for `--json`); [`write_step`] and
//! [`write_summary`] render it for a terminal, one step at a time so the
//! narration appears while the scenario runs.

use serde::Serialize;
use sockscope::model::{Endpoint, Owner, Socket, State};
use sockscope::view::escape::Escaped;
use std::collections::BTreeMap;
use std::io::{self, Write};

/// One check: what the scenario expected of the kernel and what it saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub what: String,
    pub expected: String,
    pub observed: String,
    pub ok: bool,
}

/// One step: an action, what sockscope observed after it, and the checks.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Step {
    pub n: usize,
    /// What the scenario did (the syscalls, in words).
    pub did: String,
    /// Explanations and values that are not sockets or counters.
    pub notes: Vec<String>,
    /// The sockets sockscope observed that matter for this step.
    pub sockets: Vec<Socket>,
    /// Counter values or changes (`TcpExt.ListenOverflows`: +4), named in
    /// the notes as deltas or values.
    pub counters: BTreeMap<String, i64>,
    /// Sysctls read or set in the namespace.
    pub sysctls: BTreeMap<String, String>,
    pub checks: Vec<Check>,
}

/// A whole run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub summary: String,
    /// `uname -r` of the kernel that ran it.
    pub kernel: String,
    /// Inode of the private network namespace (gone once the run ended).
    pub netns_inode: Option<u64>,
    pub steps: Vec<Step>,
    pub checks_total: usize,
    pub checks_failed: usize,
    /// Every check passed: the kernel did what the scenario expects.
    pub ok: bool,
}

/// `sockscope[4242] fd 3` (the process name escaped: it is whatever the
/// process called itself).
pub fn owner_label(o: &Owner) -> String {
    format!("{}[{}] fd {}", Escaped(&o.comm), o.pid, o.fd)
}

/// Owners joined by `, `, or `no process (not accepted / orphaned)` when none.
pub fn owners_label(s: &Socket) -> String {
    if s.owners.is_empty() {
        "no process holds it".into()
    } else {
        s.owners
            .iter()
            .map(owner_label)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn endpoint(e: &Endpoint, listener: bool) -> String {
    match e {
        Endpoint::Inet { addr, port } if listener && *port == 0 && addr.is_unspecified() => {
            "*:*".into()
        }
        Endpoint::Inet { addr, port } => match addr {
            std::net::IpAddr::V4(a) => format!("{a}:{port}"),
            std::net::IpAddr::V6(a) => format!("[{a}]:{port}"),
        },
        Endpoint::Unix { path, inode } => match path {
            Some(p) => format!("{} (ino {inode})", Escaped(p)),
            None => format!("* (ino {inode})"),
        },
        Endpoint::Unknown => "* (unknown)".into(),
    }
}

fn q(v: Option<u32>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

/// One line describing a socket, in the vocabulary of `sockscope ls`.
pub fn socket_line(s: &Socket) -> String {
    let listener = s.state == State::Listen;
    let mut line = format!(
        "{:<5} {:<11} {:<22} {:<22}",
        s.proto.short(),
        s.state.ss_label(),
        endpoint(&s.local, listener),
        endpoint(&s.peer, listener),
    );
    if listener && s.proto.is_inet() {
        line.push_str(&format!(
            " accept-queue {} of backlog {}",
            q(s.recv_q),
            q(s.send_q)
        ));
    } else {
        line.push_str(&format!(" Recv-Q {} Send-Q {}", q(s.recv_q), q(s.send_q)));
    }
    line.push_str(&format!(" ino {}", s.inode));
    if let Some(t) = s.timer
        && t.kind != sockscope::model::TimerKind::Off
    {
        line.push_str(&format!(
            " timer {} {:.1}s retrans {}",
            t.kind.name(),
            t.expires_ms as f64 / 1000.0,
            t.retrans
        ));
    }
    line.push_str(" | ");
    line.push_str(&owners_label(s));
    line
}

/// Render one step.
pub fn write_step(w: &mut impl Write, s: &Step) -> io::Result<()> {
    writeln!(w, "\n{}. {}", s.n, s.did)?;
    for n in &s.notes {
        writeln!(w, "   {n}")?;
    }
    if !s.sockets.is_empty() {
        writeln!(w, "   sockscope sees:")?;
        for sock in &s.sockets {
            writeln!(w, "     {}", socket_line(sock))?;
        }
    }
    for (k, v) in &s.sysctls {
        writeln!(w, "   sysctl {k} = {v}")?;
    }
    for (k, v) in &s.counters {
        writeln!(w, "   counter {k}: {v:+}")?;
    }
    for c in &s.checks {
        if c.ok {
            writeln!(w, "   ok   {}: {}", c.what, c.observed)?;
        } else {
            writeln!(
                w,
                "   FAIL {}: expected {}, observed {}",
                c.what, c.expected, c.observed
            )?;
        }
    }
    Ok(())
}

/// The lines before the first step.
pub fn write_header(w: &mut impl Write, name: &str, summary: &str) -> io::Result<()> {
    writeln!(w, "sockscope lab run {name}: {summary}")?;
    writeln!(
        w,
        "(in a private network namespace made for this run, loopback up; it is gone when the run ends)"
    )
}

/// The closing verdict.
pub fn write_summary(w: &mut impl Write, r: &Report) -> io::Result<()> {
    writeln!(w)?;
    if r.ok {
        writeln!(
            w,
            "The kernel ({}) did what the scenario expects: {} checks passed.",
            r.kernel, r.checks_total
        )
    } else {
        writeln!(
            w,
            "The kernel ({}) disagreed: {} of {} checks failed:",
            r.kernel, r.checks_failed, r.checks_total
        )?;
        for s in &r.steps {
            for c in s.checks.iter().filter(|c| !c.ok) {
                writeln!(
                    w,
                    "  step {}: {}: expected {}, observed {}",
                    s.n, c.what, c.expected, c.observed
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sockscope::model::*;

    /// A listener, built from the documented JSON form of a socket.
    fn listener() -> Socket {
        serde_json::from_str(
            r#"{"proto":"tcp","family":"inet","state":"listening","recv_q":3,"send_q":2,
            "local":{"addr":"127.0.0.1","port":5000},"peer":{"addr":"0.0.0.0","port":0},
            "inode":77,"uid":0,"cookie":null,"cgroup_id":null,"shutdown":null,"v6only":null,
            "bound_ifindex":null,"timer":null,"netns":null,"source":"netlink",
            "owners":[{"pid":9,"fd":3,"comm":"sockscope","uid":0}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn socket_lines_name_queue_and_owner() {
        let l = socket_line(&listener());
        assert_eq!(
            l,
            "tcp   LISTEN      127.0.0.1:5000         *:*                    \
accept-queue 3 of backlog 2 ino 77 | sockscope[9] fd 3"
        );
        let mut s = listener();
        s.state = State::TimeWait;
        s.inode = 0;
        s.owners.clear();
        s.timer = Some(Timer {
            kind: TimerKind::Timewait,
            expires_ms: 59_900,
            retrans: 0,
        });
        let l = socket_line(&s);
        assert!(
            l.ends_with("ino 0 timer timewait 59.9s retrans 0 | no process holds it"),
            "{l}"
        );
    }

    #[test]
    fn process_names_and_unix_paths_are_escaped() {
        let mut s = listener();
        s.owners[0].comm = "x\x1b]0;owned\x07".into();
        s.local = Endpoint::Unix {
            path: Some("/tmp/a\nb".into()),
            inode: 5,
        };
        let l = socket_line(&s);
        assert!(!l.contains('\x1b') && !l.contains('\n'), "{l:?}");
        assert!(l.contains("/tmp/a\\nb (ino 5)"), "{l}");
        assert!(l.ends_with("| x\\e]0;owned\\x07[9] fd 3"), "{l}");
    }

    #[test]
    fn failed_checks_are_listed_in_the_summary() {
        let step = Step {
            n: 2,
            did: "listen".into(),
            checks: vec![
                Check {
                    what: "accept queue".into(),
                    expected: "3".into(),
                    observed: "2".into(),
                    ok: false,
                },
                Check {
                    what: "backlog".into(),
                    expected: "2".into(),
                    observed: "2".into(),
                    ok: true,
                },
            ],
            ..Default::default()
        };
        let r = Report {
            scenario: "x".into(),
            summary: "y".into(),
            kernel: "6.18".into(),
            netns_inode: None,
            steps: vec![step.clone()],
            checks_total: 2,
            checks_failed: 1,
            ok: false,
        };
        let mut out = Vec::new();
        write_step(&mut out, &step).unwrap();
        write_summary(&mut out, &r).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "\n2. listen\n   FAIL accept queue: expected 3, observed 2\n   ok   backlog: 2\n\n\
The kernel (6.18) disagreed: 1 of 2 checks failed:\n  step 2: accept queue: expected 3, observed 2\n"
        );
    }
}
