//! Flow diagrams (`--flow`, `--svg FILE`): one sequence diagram per
//! conversation, client on the left, server on the right, one arrow per
//! packet labelled with its flags, relative seq / ack, length, scaled
//! window and analysis labels.
//!
//! ```text
//! TCP stream 0: 127.0.0.1:43210 -> 127.0.0.1:8080, 8 packets, FIN, handshake RTT 31.0µs
//!    time (s)  127.0.0.1:43210                                   127.0.0.1:8080
//!    0.000000  |-------------- SYN seq=0 win=65495 -------------->|
//!    0.000021  |<---------- SYN,ACK seq=0 ack=1 win=65483 --------|
//! ```
//!
//! A diagram is for a person to read, so the collector keeps at most
//! [`FlowCollector::max_events`] packets per conversation and
//! [`FlowCollector::max_convs`] conversations (the rest are counted and
//! said to be omitted): memory stays bounded on any capture.

use super::{Procs, human_ns};
use crate::analysis::{Conversation, Info, flags};
use crate::decode::{Packet, Transport, tcpflag as tf};
use sockscope::view::escape::Escaped;
use std::collections::HashMap;
use std::io::{self, Write};

#[derive(Clone, Copy, Debug)]
struct Event {
    ts_ns: u64,
    frame: u64,
    from_client: bool,
    udp: bool,
    tcp_flags: u16,
    seq: u32,
    ack: u32,
    len: u32,
    win: u32,
    analysis: u32,
    dup_num: u32,
}

struct PerConv {
    conv: usize,
    events: Vec<Event>,
    omitted: u64,
}

/// Collects packets per conversation for the diagrams.
pub struct FlowCollector {
    convs: Vec<PerConv>,
    index: HashMap<usize, usize>,
    /// Packets kept per conversation.
    pub max_events: usize,
    /// Conversations kept.
    pub max_convs: usize,
    /// Conversations not kept because of `max_convs`.
    pub omitted_convs: u64,
}

impl Default for FlowCollector {
    fn default() -> Self {
        FlowCollector::new()
    }
}

impl FlowCollector {
    pub fn new() -> FlowCollector {
        FlowCollector {
            convs: Vec::new(),
            index: HashMap::new(),
            max_events: 2000,
            max_convs: 500,
            omitted_convs: 0,
        }
    }

    /// Record packet `frame` of conversation `conv` (its index in the
    /// analyzer's list).
    pub fn add(&mut self, conv: usize, frame: u64, p: &Packet, info: &Info) {
        let slot = match self.index.get(&conv) {
            Some(&s) => s,
            None => {
                if self.convs.len() >= self.max_convs {
                    self.omitted_convs += 1;
                    self.index.insert(conv, usize::MAX);
                    return;
                }
                self.convs.push(PerConv {
                    conv,
                    events: Vec::new(),
                    omitted: 0,
                });
                self.index.insert(conv, self.convs.len() - 1);
                self.convs.len() - 1
            }
        };
        if slot == usize::MAX {
            return;
        }
        let pc = &mut self.convs[slot];
        if pc.events.len() >= self.max_events {
            pc.omitted += 1;
            return;
        }
        let ev = match (info, &p.transport) {
            (Info::Tcp(ti), Transport::Tcp(t)) => Event {
                ts_ns: p.ts_ns,
                frame,
                from_client: ti.from_client,
                udp: false,
                tcp_flags: t.flags,
                seq: ti.seq_rel,
                ack: ti.ack_rel,
                len: t.payload_len,
                win: ti.window,
                analysis: ti.flags,
                dup_num: ti.dup_ack_num,
            },
            (Info::Udp { from_client, .. }, Transport::Udp(u)) => Event {
                ts_ns: p.ts_ns,
                frame,
                from_client: *from_client,
                udp: true,
                tcp_flags: 0,
                seq: 0,
                ack: 0,
                len: u.payload_len,
                win: 0,
                analysis: 0,
                dup_num: 0,
            },
            _ => return,
        };
        pc.events.push(ev);
    }

    /// Number of conversations with a diagram.
    pub fn len(&self) -> usize {
        self.convs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.convs.is_empty()
    }

    /// Text diagrams for every collected conversation.
    pub fn write_text<W: Write>(
        &self,
        w: &mut W,
        convs: &[Conversation],
        procs: &dyn Fn(usize) -> Option<Procs>,
    ) -> io::Result<()> {
        for (n, pc) in self.convs.iter().enumerate() {
            let Some(c) = convs.get(pc.conv) else {
                continue;
            };
            if n > 0 {
                writeln!(w)?;
            }
            writeln!(w, "{}", title(c, procs(pc.conv).as_ref()))?;
            let (l, r) = (endpoint(&c.client), endpoint(&c.server));
            let width = 50usize;
            writeln!(w, "{:>12}  {:<w2$}{}", "time (s)", l, r, w2 = width + 2)?;
            for e in &pc.events {
                let t = e.ts_ns.saturating_sub(c.start_ns) as f64 / 1e9;
                let label = label(e);
                let inner = width.max(label.chars().count() + 8);
                let dashes = inner - label.chars().count() - 2;
                let left = dashes / 2;
                let right = dashes - left;
                let (a, b) = if e.from_client {
                    (
                        format!("|{}", "-".repeat(left)),
                        format!("{}>|", "-".repeat(right.saturating_sub(1))),
                    )
                } else {
                    (
                        format!("|<{}", "-".repeat(left.saturating_sub(1))),
                        format!("{}|", "-".repeat(right)),
                    )
                };
                writeln!(w, "{t:>12.6}  {a} {label} {b}")?;
            }
            if pc.omitted > 0 {
                writeln!(w, "{:>12}  ... {} more packets not drawn", "", pc.omitted)?;
            }
        }
        if self.omitted_convs > 0 {
            writeln!(
                w,
                "\n... {} more conversations not drawn (limit {})",
                self.omitted_convs, self.max_convs
            )?;
        }
        Ok(())
    }

    /// One SVG document with a diagram per conversation, stacked (the
    /// library's one sequence-diagram writer, lanes client | server).
    pub fn write_svg<W: Write>(
        &self,
        w: &mut W,
        convs: &[Conversation],
        procs: &dyn Fn(usize) -> Option<Procs>,
    ) -> io::Result<()> {
        use sockscope::view::seqdiag::{self, Row, Tone};
        let mut diagrams = Vec::new();
        for pc in &self.convs {
            let Some(c) = convs.get(pc.conv) else {
                continue;
            };
            let mut rows: Vec<Row> = pc
                .events
                .iter()
                .map(|e| {
                    let (from, to) = if e.from_client { (0, 1) } else { (1, 0) };
                    Row {
                        t_ns: Some(e.ts_ns.saturating_sub(c.start_ns)),
                        from,
                        to,
                        label: label(e),
                        note: String::new(),
                        tone: if e.analysis != 0 {
                            Tone::Bad
                        } else {
                            Tone::Normal
                        },
                    }
                })
                .collect();
            if pc.omitted > 0 {
                rows.push(Row {
                    t_ns: None,
                    from: 0,
                    to: 0,
                    label: String::new(),
                    note: format!("... {} more packets not drawn", pc.omitted),
                    tone: Tone::Normal,
                });
            }
            diagrams.push(seqdiag::Diagram {
                title: title(c, procs(pc.conv).as_ref()),
                lanes: vec![endpoint(&c.client), endpoint(&c.server)],
                rows,
                unit: seqdiag::TimeUnit::Seconds,
            });
        }
        seqdiag::write_svg(w, &diagrams, "sockscope capture flows")
    }
}

fn endpoint(e: &crate::analysis::Ep) -> String {
    match e.ip() {
        std::net::IpAddr::V6(a) => format!("[{a}]:{}", e.port),
        a => format!("{a}:{}", e.port),
    }
}

fn title(c: &Conversation, p: Option<&Procs>) -> String {
    let side = |l: Option<&crate::procs::Label>| {
        l.map_or(String::new(), |l| {
            format!(" ({} pid {})", Escaped(&l.comm), l.pid)
        })
    };
    let (cp, sp) = p.map_or((String::new(), String::new()), |p| {
        (side(p.src.as_ref()), side(p.dst.as_ref()))
    });
    let mut t = format!(
        "{} stream {}: {}{} -> {}{}, {} packets",
        if c.udp { "UDP" } else { "TCP" },
        c.stream,
        endpoint(&c.client),
        cp,
        endpoint(&c.server),
        sp,
        c.packets()
    );
    if !c.udp {
        t.push_str(", ");
        t.push_str(c.end().name());
        if let Some(r) = c.handshake_rtt_ns {
            t.push_str(", handshake RTT ");
            t.push_str(&human_ns(r));
        }
    }
    t
}

fn label(e: &Event) -> String {
    if e.udp {
        return format!("UDP len={}", e.len);
    }
    let mut names = Vec::new();
    for (bit, n) in [
        (tf::SYN, "SYN"),
        (tf::FIN, "FIN"),
        (tf::RST, "RST"),
        (tf::PSH, "PSH"),
        (tf::ACK, "ACK"),
        (tf::URG, "URG"),
        (tf::ECE, "ECE"),
        (tf::CWR, "CWR"),
    ] {
        if e.tcp_flags & bit != 0 {
            names.push(n);
        }
    }
    let mut s = names.join(",");
    s.push_str(&format!(" seq={}", e.seq));
    if e.tcp_flags & tf::ACK != 0 {
        s.push_str(&format!(" ack={}", e.ack));
    }
    if e.len > 0 {
        s.push_str(&format!(" len={}", e.len));
    }
    s.push_str(&format!(" win={}", e.win));
    for (bit, _, l) in flags::ALL {
        if e.analysis & bit != 0 {
            let l = l.trim_start_matches("TCP ");
            if bit == flags::DUPLICATE_ACK {
                s.push_str(&format!(" [{l} #{}]", e.dup_num));
            } else {
                s.push_str(&format!(" [{l}]"));
            }
        }
    }
    let _ = e.frame;
    s
}
