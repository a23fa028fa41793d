//! The summary printed when a trace ends (Ctrl-C or --duration): the
//! connections seen, as bcc's tcplife would list them, with how each
//! ended, and the trace's own counters (events read, lost, filtered in the
//! kernel).
//!
//! [`Collector`] keeps what the summary needs while the trace runs, in
//! bounded memory: counts for every connection, and rows for the last
//! [`ROWS`] only.

use crate::event::{What, fmt_bytes, fmt_us};
use crate::session::Stats;
use crate::track::{Conn, End, Role};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Write};

/// Connections listed one by one (the most recent).
pub const ROWS: usize = 40;

/// One connection in the summary (also its JSON form).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub conn: u64,
    pub role: Role,
    pub local: Option<String>,
    pub peer: Option<String>,
    pub pid: Option<u32>,
    pub comm: Option<String>,
    pub fd: Option<i32>,
    pub states: Vec<sockscope::model::State>,
    pub end: End,
    pub duration_us: u64,
    /// Bytes the application wrote / read (send and recv events).
    pub bytes_written: u64,
    pub bytes_read: u64,
    /// From tcp_destroy_sock, when the socket was freed during the trace.
    pub bytes_acked: Option<u64>,
    pub bytes_received: Option<u64>,
    /// The kernel's count when the socket was freed during the trace
    /// (tcp_info's total_retrans), else the retransmit events seen.
    pub retransmits: u32,
    /// Retransmit events the trace saw for this connection. Fewer than
    /// `retransmits` when the kernel counted a retransmit whose event did
    /// not reach the trace (it ran no program for that tracepoint hit:
    /// docs/trace.md, "Kernel facts found on the way"), or one made
    /// before the trace started.
    pub retransmits_traced: u32,
    pub drops: u32,
    /// TCP segments seen at the devices (with packet events).
    pub packets_in: u64,
    pub packets_out: u64,
    pub preexisting: bool,
}

impl Row {
    pub fn of(c: &Conn) -> Row {
        let (acked, received, retrans, lived) = match &c.summary {
            Some(What::Destroy {
                bytes_acked,
                bytes_received,
                retransmits,
                duration_us,
                ..
            }) => (
                Some(*bytes_acked),
                Some(*bytes_received),
                *retransmits,
                *duration_us,
            ),
            _ => (None, None, c.retransmits, None),
        };
        Row {
            conn: c.id,
            role: c.role,
            local: c.local.map(|a| a.to_string()),
            peer: c.peer.map(|a| a.to_string()),
            pid: c.owner.as_ref().map(|o| o.pid),
            // Exact for JSON; escaped where the text table prints it.
            comm: c.owner.as_ref().map(|o| o.comm.as_str().into_owned()),
            fd: c.owner.as_ref().and_then(|o| o.fd),
            states: c.states.clone(),
            end: c.end,
            // One duration per connection: the destroy event's (from the
            // first state change, as tcplife) when it has one.
            duration_us: lived.unwrap_or(c.duration_ns() / 1000),
            bytes_written: c.bytes_written,
            bytes_read: c.bytes_read,
            bytes_acked: acked,
            bytes_received: received,
            retransmits: retrans.max(c.retransmits),
            retransmits_traced: c.retransmits,
            drops: c.drops,
            packets_in: c.packets_in,
            packets_out: c.packets_out,
            preexisting: c.preexisting,
        }
    }
}

/// Counts and recent rows, gathered while the trace runs. The recent
/// connections are kept as they are and made into [`Row`]s only when the
/// rows are read: a busy trace finishes tens of thousands of connections
/// a second, and formatting each one's addresses cost more than the rest
/// of its summary.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Collector {
    pub connections: u64,
    pub by_end: BTreeMap<&'static str, u64>,
    pub by_role: BTreeMap<&'static str, u64>,
    pub retransmits: u64,
    pub drops: u64,
    pub resets: u64,
    /// The last [`ROWS`] connections (without their events).
    #[serde(skip)]
    rows: VecDeque<Conn>,
}

fn end_name(e: End) -> &'static str {
    match e {
        End::Open => "open",
        End::Closed => "closed",
        End::TimeWait => "time_wait",
        End::ResetReceived => "reset_received",
        End::ResetSent => "reset_sent",
        End::Failed => "failed",
        End::ListenerClosed => "listener_closed",
        End::Gone => "gone",
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Listener => "listener",
        Role::Server => "server",
        Role::Client => "client",
        Role::Unknown => "unknown",
    }
}

impl Collector {
    pub fn add(&mut self, mut c: Conn) {
        self.connections += 1;
        *self.by_end.entry(end_name(c.end)).or_default() += 1;
        *self.by_role.entry(role_name(c.role)).or_default() += 1;
        self.retransmits += u64::from(c.retransmits + c.synack_retransmits);
        self.drops += u64::from(c.drops);
        self.resets += u64::from(c.resets_sent + c.resets_received);
        c.events = Vec::new();
        if self.rows.len() == ROWS {
            self.rows.pop_front();
        }
        self.rows.push_back(c);
    }

    /// The rows of the last [`ROWS`] connections, oldest first.
    pub fn rows(&self) -> impl Iterator<Item = Row> + '_ {
        self.rows.iter().map(Row::of)
    }

    /// The summary as text.
    pub fn write(&self, w: &mut dyn Write, stats: &Stats) -> io::Result<()> {
        writeln!(w)?;
        let ends: Vec<String> = self
            .by_end
            .iter()
            .map(|(k, v)| format!("{v} {}", k.replace('_', " ")))
            .collect();
        writeln!(
            w,
            "Connections seen: {} ({}); {} retransmits, {} drops, {} resets",
            self.connections,
            if ends.is_empty() {
                "none".to_string()
            } else {
                ends.join(", ")
            },
            self.retransmits,
            self.drops,
            self.resets
        )?;
        if !self.rows.is_empty() {
            if self.connections as usize > self.rows.len() {
                writeln!(w, "The last {}:", self.rows.len())?;
            }
            writeln!(
                w,
                "{:<6} {:<8} {:<22} {:<22} {:<22} {:>9} {:>9} {:>9} {:>7}  {:<16} STATES",
                "CONN",
                "ROLE",
                "LOCAL",
                "PEER",
                "PROCESS",
                "DURATION",
                "WRITTEN",
                "READ",
                "RETRANS",
                "END"
            )?;
            for r in self.rows() {
                let who = match (&r.comm, r.pid) {
                    (Some(c), Some(p)) => match (r.fd, sockscope::escape::escape_str(c)) {
                        (Some(fd), c) => format!("{c}[{p}] fd {fd}"),
                        (None, c) => format!("{c}[{p}]"),
                    },
                    _ => "-".into(),
                };
                let states: Vec<&str> = r.states.iter().map(|s| crate::event::label(*s)).collect();
                writeln!(
                    w,
                    "{:<6} {:<8} {:<22} {:<22} {:<22} {:>9} {:>9} {:>9} {:>7}  {:<16} {}",
                    format!("#{}", r.conn),
                    role_name(r.role),
                    r.local.as_deref().unwrap_or("-"),
                    r.peer.as_deref().unwrap_or("-"),
                    who,
                    fmt_us(r.duration_us),
                    fmt_bytes(r.bytes_written),
                    fmt_bytes(r.bytes_read),
                    if r.retransmits_traced == r.retransmits {
                        r.retransmits.to_string()
                    } else {
                        // The kernel's count, then the events seen.
                        format!("{}({})", r.retransmits, r.retransmits_traced)
                    },
                    end_name(r.end).replace('_', " "),
                    states.join(" ")
                )?;
            }
        }
        write_stats(w, stats)
    }
}

/// The counters line: never silent about lost events, and the numbers add
/// up (see [`Stats`]): read = shown + left out by the user-space filter;
/// the kernel wrote what was read (plus undecodable records, normally
/// none); lost and filtered-out events never reached the ring buffer.
pub fn write_stats(w: &mut dyn Write, s: &Stats) -> io::Result<()> {
    write!(
        w,
        "Events: {} read in {:.1} s ({:.0}/s) = {} shown + {} left out by the user-space filter",
        s.events_read, s.duration_s, s.events_per_s, s.events_shown, s.events_filtered,
    )?;
    if s.events_discarded > 0 {
        write!(
            w,
            " + {} dropped unread (benchmark switch)",
            s.events_discarded
        )?;
    }
    if s.events_inferred > 0 {
        write!(w, ", and {} inferred (TIME-WAIT)", s.events_inferred)?;
    }
    write!(
        w,
        "; kernel: {} written, {} lost (ring buffer full), {} filtered out",
        s.kernel_written, s.kernel_lost, s.kernel_filtered
    )?;
    if s.bad_records > 0 {
        write!(w, ", {} undecodable", s.bad_records)?;
    }
    writeln!(w)?;
    if s.events_unwritten > 0 {
        writeln!(
            w,
            "Not written: {} of the events shown or inferred (the output was blocked or closed when the trace stopped)",
            s.events_unwritten
        )?;
    }
    if s.kernel_lost > 0 {
        let by: Vec<String> = s
            .lost_by_kind
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        writeln!(w, "Lost events by kind: {}", by.join(", "))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_text() {
        let c = super::super::diagram::tests_support::seed003();
        let mut col = Collector::default();
        col.add(c);
        let stats = Stats {
            duration_s: 2.0,
            events_read: 10,
            events_shown: 7,
            events_filtered: 3,
            events_per_s: 5.0,
            kernel_written: 10,
            ..Stats::default()
        };
        let mut out = Vec::new();
        col.write(&mut out, &stats).unwrap();
        let text = String::from_utf8(out).unwrap();
        let want = "
Connections seen: 1 (1 reset received); 0 retransmits, 0 drops, 1 resets
CONN   ROLE     LOCAL                  PEER                   PROCESS                 DURATION   WRITTEN      READ RETRANS  END              STATES
#1     server   127.0.0.1:5000         127.0.0.1:40312        ncat[4242] fd 4           8.0 ms       6 B       0 B       0  reset received   LISTEN SYN-RECV ESTABLISHED CLOSE
Events: 10 read in 2.0 s (5/s) = 7 shown + 3 left out by the user-space filter; kernel: 10 written, 0 lost (ring buffer full), 0 filtered out
";
        assert_eq!(text, want, "got:\n{text}");
    }

    #[test]
    fn one_duration_per_connection() {
        // The connection was first seen at socket(), 100 µs before its
        // first state change; the destroy's lifetime (from that change,
        // as tcplife) is the one the summary gives.
        let mut c = super::super::diagram::tests_support::seed003();
        c.first_ns = c.first_ns.saturating_sub(100_000);
        c.summary = Some(What::Destroy {
            duration_us: Some(136),
            bytes_acked: 0,
            bytes_received: 0,
            bytes_sent: 0,
            bytes_retrans: 0,
            retransmits: 0,
            segs_in: 0,
            segs_out: 0,
            srtt_us: 0,
        });
        assert_eq!(Row::of(&c).duration_us, 136);
        c.summary = None;
        assert_eq!(Row::of(&c).duration_us, c.duration_ns() / 1000);
    }

    #[test]
    fn the_kernels_retransmit_count_and_the_events_seen_are_both_given() {
        let mut c = super::super::diagram::tests_support::seed003();
        c.retransmits = 2;
        c.summary = Some(What::Destroy {
            duration_us: Some(136),
            bytes_acked: 0,
            bytes_received: 0,
            bytes_sent: 0,
            bytes_retrans: 300,
            retransmits: 3,
            segs_in: 0,
            segs_out: 0,
            srtt_us: 0,
        });
        let r = Row::of(&c);
        assert_eq!((r.retransmits, r.retransmits_traced), (3, 2));
        let mut col = Collector::default();
        col.add(c.clone());
        let mut out = Vec::new();
        col.write(&mut out, &Stats::default()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(" 3(2)  reset received"), "{text}");
        // Equal counts print once; without a destroy, the events seen.
        c.retransmits = 3;
        let r = Row::of(&c);
        assert_eq!((r.retransmits, r.retransmits_traced), (3, 3));
        c.summary = None;
        c.retransmits = 1;
        let r = Row::of(&c);
        assert_eq!((r.retransmits, r.retransmits_traced), (1, 1));
    }

    #[test]
    fn lost_events_are_spelled_out() {
        let mut s = Stats {
            kernel_lost: 3,
            ..Stats::default()
        };
        s.lost_by_kind.insert("send", 3);
        let mut out = Vec::new();
        write_stats(&mut out, &s).unwrap();
        let t = String::from_utf8(out).unwrap();
        assert!(t.contains(", 3 lost (ring buffer full),"), "{t}");
        assert!(t.ends_with("Lost events by kind: send 3\n"), "{t}");
    }

    #[test]
    fn inferred_unwritten_and_undecodable_are_said() {
        let s = Stats {
            events_read: 5,
            events_shown: 5,
            events_inferred: 2,
            events_unwritten: 4,
            kernel_written: 6,
            bad_records: 1,
            ..Stats::default()
        };
        let mut out = Vec::new();
        write_stats(&mut out, &s).unwrap();
        let t = String::from_utf8(out).unwrap();
        assert_eq!(
            t,
            "Events: 5 read in 0.0 s (0/s) = 5 shown + 0 left out by the user-space filter, and 2 inferred \
             (TIME-WAIT); kernel: 6 written, 0 lost (ring buffer full), 0 filtered out, 1 undecodable\n\
             Not written: 4 of the events shown or inferred (the output was blocked or closed when the trace stopped)\n"
        );
    }
}
