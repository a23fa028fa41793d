//! The conversation table (`--conv`): one row per TCP conversation and UDP
//! flow, in order of first packet.
//!
//! ```text
//! STREAM PROTO CLIENT              SERVER          PKTS> BYTES> PKTS< BYTES< DURATION RTT    RETRANS END
//! 0      tcp   127.0.0.1:43210     127.0.0.1:8080  6     426    4      290    1.02ms  31.0µs 0       FIN
//! ```
//!
//! `>` is client to server, `<` server to client. RTT is the handshake RTT
//! (SYN to the first pure ACK, Wireshark's initial RTT). END is FIN (both
//! sides closed), half-closed, RST or open. With process labels, CLIENT
//! PROCESS and SERVER PROCESS columns follow.

use super::{Procs, human_bytes, human_ns};
use crate::analysis::Conversation;
use sockscope::view::escape::Escaped;
use std::io::{self, Write};

fn ep(e: &crate::analysis::Ep) -> String {
    match e.ip() {
        std::net::IpAddr::V6(a) => format!("[{a}]:{}", e.port),
        a => format!("{a}:{}", e.port),
    }
}

/// Write the table. `procs(i)` gives the labels recorded for conversation
/// `convs[i]` (client side as `src`); `show_procs` adds the process columns.
/// Rows are formatted twice (once for the column widths, once to print)
/// rather than held: the table of a million conversations costs no more
/// memory than one row.
pub fn write_table<W: Write>(
    w: &mut W,
    convs: &[&Conversation],
    procs: &dyn Fn(usize) -> Option<Procs>,
    show_procs: bool,
) -> io::Result<()> {
    let mut head: Vec<String> = [
        "STREAM", "PROTO", "CLIENT", "SERVER", "PKTS>", "BYTES>", "PKTS<", "BYTES<", "DURATION",
        "RTT", "RETRANS", "END",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if show_procs {
        head.push("CLIENT PROCESS".into());
        head.push("SERVER PROCESS".into());
    }
    let row = |i: usize, c: &Conversation| {
        let mut r = vec![
            c.stream.to_string(),
            if c.udp { "udp" } else { "tcp" }.to_string(),
            ep(&c.client),
            ep(&c.server),
            c.c2s.packets.to_string(),
            human_bytes(c.c2s.bytes),
            c.s2c.packets.to_string(),
            human_bytes(c.s2c.bytes),
            human_ns(c.duration_ns()),
            c.handshake_rtt_ns.map_or("-".into(), human_ns),
            if c.udp {
                "-".into()
            } else {
                c.retransmissions().to_string()
            },
            if c.udp { "-" } else { c.end().name() }.to_string(),
        ];
        if show_procs {
            let p = procs(i).unwrap_or_default();
            let f = |l: &Option<crate::procs::Label>| {
                l.as_ref().map_or("-".to_string(), |l| {
                    format!("{}/{}", Escaped(&l.comm), l.pid)
                })
            };
            r.push(f(&p.src));
            r.push(f(&p.dst));
        }
        r
    };
    let ncol = head.len();
    let mut width = vec![0usize; ncol];
    let mut measure = |r: &[String]| {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    };
    measure(&head);
    for (i, c) in convs.iter().enumerate() {
        measure(&row(i, c));
    }
    let mut line = String::new();
    let mut print = |r: &[String]| {
        line.clear();
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < ncol {
                for _ in c.chars().count()..width[i] + 1 {
                    line.push(' ');
                }
            }
        }
        writeln!(w, "{}", line.trim_end())
    };
    print(&head)?;
    for (i, c) in convs.iter().enumerate() {
        print(&row(i, c))?;
    }
    Ok(())
}
