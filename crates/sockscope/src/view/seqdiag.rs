//! Sequence diagrams as SVG: the one writer behind `trace --svg` (three
//! lanes: peer | kernel | application) and `capture --svg` (two: client |
//! server). A diagram is lanes, a title and rows; a row is an arrow from
//! one lane to another with a label above it (packets: flags, seq, ack,
//! len), or a box on one lane (from == to), with an optional note at the
//! right and a time at the left. Callers build the rows from their own
//! events; this module only draws, and [`escape`] is the one place text
//! from packets, processes and addresses is escaped for SVG.

use std::fmt::Write as _;
use std::io::{self, Write};

/// How a row is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Normal,
    /// Implied, not observed: dashed and grey.
    Inferred,
    /// Retransmits and the like.
    Warn,
    /// Resets, drops, analysis warnings.
    Bad,
}

/// One row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Nanoseconds since the diagram's time origin; None: not timed.
    pub t_ns: Option<u64>,
    /// Lane indexes; equal for a box on one lane.
    pub from: usize,
    pub to: usize,
    pub label: String,
    pub note: String,
    pub tone: Tone,
}

/// Unit of the time column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeUnit {
    /// "time (ms)", three decimals.
    Millis,
    /// "time (s)", six decimals.
    Seconds,
}

/// One diagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagram {
    pub title: String,
    /// Lane headings, left to right.
    pub lanes: Vec<String>,
    pub rows: Vec<Row>,
    pub unit: TimeUnit,
}

/// Text for SVG: the XML specials escaped, control characters (which XML
/// 1.0 forbids) shown as `?`.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => o.push('?'),
            c => o.push(c),
        }
    }
    o
}

const X0: f64 = 110.0;
const ROW: f64 = 26.0;
const HEAD: f64 = 70.0;
const NOTE_W: f64 = 420.0;

fn gap(lanes: usize) -> f64 {
    if lanes <= 2 { 600.0 } else { 300.0 }
}

fn lane_x(d: &Diagram, i: usize) -> f64 {
    X0 + gap(d.lanes.len()) * i as f64
}

fn width(d: &Diagram) -> f64 {
    X0 + gap(d.lanes.len()) * d.lanes.len().saturating_sub(1) as f64 + NOTE_W
}

fn height(d: &Diagram) -> f64 {
    HEAD + ROW * (d.rows.len() as f64 + 1.0) + 20.0
}

const DEFS: &str = r##"<defs>
<marker id="a" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker>
</defs>
<rect width="100%" height="100%" fill="white"/>
"##;

fn open(s: &mut String, w: f64, h: f64, title: &str) {
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="DejaVu Sans Mono, monospace" font-size="13">"#
    );
    let _ = writeln!(s, "<title>{}</title>", escape(title));
    s.push_str(DEFS);
}

/// Draw one diagram with its top at `top`.
fn body(s: &mut String, d: &Diagram, top: f64) {
    let h = height(d);
    let _ = writeln!(
        s,
        r#"<text x="10" y="{:.0}" font-weight="bold">{}</text>"#,
        top + 24.0,
        escape(&d.title)
    );
    let unit = match d.unit {
        TimeUnit::Millis => "time (ms)",
        TimeUnit::Seconds => "time (s)",
    };
    let head_y = top + HEAD - 20.0;
    let _ = writeln!(
        s,
        r##"<text x="10" y="{head_y:.0}" fill="#666">{unit}</text>"##
    );
    for (i, name) in d.lanes.iter().enumerate() {
        let x = lane_x(d, i);
        let _ = writeln!(
            s,
            r#"<text x="{x:.0}" y="{head_y:.0}" text-anchor="middle" font-weight="bold">{}</text>"#,
            escape(name)
        );
        let _ = writeln!(
            s,
            r##"<line x1="{x:.0}" y1="{:.0}" x2="{x:.0}" y2="{:.0}" stroke="#999" stroke-width="1.5"/>"##,
            top + HEAD - 10.0,
            top + h - 10.0
        );
    }
    let last = d.lanes.len().saturating_sub(1);
    for (i, r) in d.rows.iter().enumerate() {
        let y = top + HEAD + ROW * (i as f64 + 1.0);
        let color = match r.tone {
            Tone::Bad => "#c0392b",
            Tone::Warn => "#d68910",
            Tone::Inferred => "#888888",
            Tone::Normal => "#222222",
        };
        if let Some(t) = r.t_ns {
            let t = match d.unit {
                TimeUnit::Millis => format!("{:.3}", t as f64 / 1e6),
                TimeUnit::Seconds => format!("{:.6}", t as f64 / 1e9),
            };
            let _ = writeln!(s, r##"<text x="10" y="{y:.0}" fill="#666">{t}</text>"##);
        }
        let (a, z) = (lane_x(d, r.from.min(last)), lane_x(d, r.to.min(last)));
        if r.from != r.to {
            let dash = if r.tone == Tone::Inferred {
                r#" stroke-dasharray="6,4""#
            } else {
                ""
            };
            let _ = writeln!(
                s,
                r#"<line x1="{a:.0}" y1="{y:.0}" x2="{z:.0}" y2="{y:.0}" stroke="{color}" stroke-width="1.6"{dash} marker-end="url(#a)"/>"#
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.0}" y="{:.0}" text-anchor="middle" fill="{color}">{}</text>"#,
                (a + z) / 2.0,
                y - 5.0,
                escape(&r.label)
            );
        } else if !r.label.is_empty() {
            let _ = writeln!(
                s,
                r##"<rect x="{:.0}" y="{:.0}" width="{:.0}" height="20" rx="4" fill="#eef3fb" stroke="{color}"/>"##,
                a - 4.0,
                y - 15.0,
                r.label.chars().count() as f64 * 8.0 + 12.0
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.0}" y="{y:.0}" fill="{color}">{}</text>"#,
                a + 2.0,
                escape(&r.label)
            );
        }
        if !r.note.is_empty() {
            let _ = writeln!(
                s,
                r##"<text x="{:.0}" y="{y:.0}" fill="#555">{}</text>"##,
                lane_x(d, last) + 20.0,
                escape(&r.note)
            );
        }
    }
}

/// One diagram as a standalone SVG document.
pub fn svg(d: &Diagram) -> String {
    let mut s = String::new();
    open(&mut s, width(d), height(d), &d.title);
    body(&mut s, d, 0.0);
    s.push_str("</svg>\n");
    s
}

/// Several diagrams stacked in one SVG document, written to `w`.
pub fn write_svg(w: &mut dyn Write, diagrams: &[Diagram], title: &str) -> io::Result<()> {
    let wd = diagrams.iter().map(width).fold(600.0, f64::max);
    let ht: f64 = diagrams.iter().map(|d| height(d) + 10.0).sum::<f64>() + 10.0;
    let mut s = String::new();
    open(&mut s, wd, ht, title);
    let mut top = 0.0;
    for d in diagrams {
        body(&mut s, d, top);
        top += height(d) + 10.0;
    }
    s.push_str("</svg>\n");
    w.write_all(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Diagram {
        Diagram {
            title: "#1 tcp <a&b>".into(),
            lanes: vec!["client".into(), "kernel".into(), "app \u{1b}]0;x".into()],
            rows: vec![
                Row {
                    t_ns: Some(1_500_000),
                    from: 0,
                    to: 1,
                    label: "[SYN] len 0".into(),
                    note: "seq 0".into(),
                    tone: Tone::Normal,
                },
                Row {
                    t_ns: None,
                    from: 1,
                    to: 1,
                    label: "queued".into(),
                    note: String::new(),
                    tone: Tone::Inferred,
                },
                Row {
                    t_ns: Some(2_000_000),
                    from: 1,
                    to: 0,
                    label: "[RST]".into(),
                    note: String::new(),
                    tone: Tone::Bad,
                },
            ],
            unit: TimeUnit::Millis,
        }
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(escape("x\u{1b}]0;y\u{7}"), "x?]0;y?");
    }

    #[test]
    fn one_arrow_per_arrow_row_and_escaped_text() {
        let s = svg(&sample());
        assert!(s.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(s.trim_end().ends_with("</svg>"));
        assert_eq!(s.matches("marker-end=").count(), 2);
        assert!(s.contains(">#1 tcp &lt;a&amp;b&gt;<"));
        assert!(s.contains(">app ?]0;x<"), "{s}");
        assert!(!s.contains('\u{1b}'));
        assert!(s.contains(">1.500<") && s.contains(">[SYN] len 0<"));
        assert!(s.contains("#c0392b"), "resets in red");
        let mut two = Vec::new();
        write_svg(&mut two, &[sample(), sample()], "t").unwrap();
        let two = String::from_utf8(two).unwrap();
        assert_eq!(two.matches("marker-end=").count(), 4);
        assert_eq!(two.matches("<svg").count(), 1);
    }
}
