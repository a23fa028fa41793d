//! The human timeline: one line per event.
//!
//! ```text
//!        TIME  CONN  PROCESS                 EVENT
//!    0.000412  #1    ncat[4242] fd 3         socket(AF_INET, SOCK_STREAM, 6) = 3
//!    0.013100  #2    ncat[4242] listener 3   LISTEN → SYN-RECV  SYN, SYN-ACK, ACK: ...
//! ```
//!
//! Time is seconds since the trace started. Each connection keeps its
//! colour on a terminal; resets and drops are red, retransmits yellow.

use super::color;
use crate::event::{Event, What, sockaddr};
use std::io::{self, Write};

/// The header line.
pub fn header(w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, "{:>11}  {:<5} {:<24} EVENT", "TIME", "CONN", "PROCESS")
}

/// "ncat[4242] fd 4", "ncat[4242] listener 3", or "-" in softirq without
/// a known owner.
pub fn who(e: &Event) -> String {
    match (e.pid, &e.comm) {
        (Some(pid), Some(comm)) => {
            let fd = match (e.owner, e.fd) {
                (Some("listener"), Some(fd)) => format!(" listener {fd}"),
                (_, Some(fd)) => format!(" fd {fd}"),
                _ => String::new(),
            };
            // Comm's Display escapes: a process names itself.
            format!("{comm}[{pid}]{fd}")
        }
        _ => "-".into(),
    }
}

/// The address part shown after state changes and first sightings.
fn tuple(e: &Event) -> Option<String> {
    let l = sockaddr(&e.local)?;
    let arrow = match &e.what {
        What::State { .. } | What::TimeWait { .. } => true,
        What::Syscall { syscall, .. } => matches!(*syscall, "bind" | "listen"),
        _ => false,
    };
    if !arrow {
        return None;
    }
    Some(match sockaddr(&e.peer) {
        Some(p) if p.port() != 0 => format!("{l} ⇄ {p}"),
        _ => l.to_string(),
    })
}

/// One event as a line (with a newline).
pub fn line(w: &mut dyn Write, e: &Event, color_on: bool) -> io::Result<()> {
    let t = e.t_ns as f64 / 1e9;
    let conn = e.conn.map_or_else(|| "-".to_string(), |c| format!("#{c}"));
    let mut text = e.describe();
    if let Some(t) = tuple(e) {
        text = format!("{text}   {t}");
    }
    if color_on {
        let c = e.conn.map_or(color::DIM, color::conn);
        let tone = match &e.what {
            What::ResetSent { .. } | What::ResetReceived { .. } | What::Drop { .. } => color::RED,
            What::Retransmit { .. } | What::RetransmitSynack {} => color::YELLOW,
            What::State { .. } | What::TimeWait { .. } => color::BOLD,
            _ => "",
        };
        writeln!(
            w,
            "{}{t:>11.6}{}  {c}{conn:<5}{} {:<24} {tone}{text}{}",
            color::DIM,
            color::RESET,
            color::RESET,
            who(e),
            color::RESET
        )
    } else {
        writeln!(w, "{t:>11.6}  {conn:<5} {:<24} {text}", who(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::tests::{st, sys};
    use sockscope::model::State;

    #[test]
    fn lines() {
        let mut e = st(
            13_100_000,
            State::SynRecv,
            State::Established,
            "127.0.0.1:5000",
            "127.0.0.1:40312",
        );
        e.conn = Some(2);
        e.pid = Some(4242);
        e.comm = Some("ncat".into());
        e.fd = Some(3);
        e.owner = Some("listener");
        let mut out = Vec::new();
        line(&mut out, &e, false).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "   0.013100  #2    ncat[4242] listener 3    SYN-RECV → ESTABLISHED  queued for accept()   \
             127.0.0.1:5000 ⇄ 127.0.0.1:40312\n"
        );
        // A process named with a terminal escape is shown escaped.
        e.comm = Some("\x1b]0;x\x07".into());
        let mut out = Vec::new();
        line(&mut out, &e, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\\e]0;x\\x07[4242]"), "{text}");
        assert!(!text.contains('\x1b'));
        let mut s = sys(1_500, "close", 4, 0, 7, "127.0.0.1:5000", "127.0.0.1:1");
        s.conn = Some(3);
        let mut out = Vec::new();
        line(&mut out, &s, false).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "   0.000002  #3    ncat[7] fd 4             close(4) = 0\n"
        );
        let mut out = Vec::new();
        line(&mut out, &s, true).unwrap();
        let t = String::from_utf8(out).unwrap();
        assert!(t.contains("\x1b[34m#3"), "connection colour: {t:?}");
    }
}
