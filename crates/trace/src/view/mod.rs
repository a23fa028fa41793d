//! Views: events and connections rendered as text, JSON or SVG. Pure:
//! each writes only to the writer it is given.
//!
//! - [`timeline`]: one line per event, time since start, connection number
//!   and owner, coloured per connection on a terminal;
//! - [`diagram`]: a finished connection as a sequence diagram in the
//!   textbook style (peer | kernel | application), as text and as SVG;
//! - [`summary`]: the connections seen and the trace's counters, at exit.

pub mod diagram;
pub mod summary;
pub mod timeline;

/// ANSI colours for the timeline and diagrams (only used on a terminal).
pub mod color {
    pub const RESET: &str = "\x1b[0m";
    pub const DIM: &str = "\x1b[2m";
    pub const BOLD: &str = "\x1b[1m";
    pub const RED: &str = "\x1b[31m";
    pub const YELLOW: &str = "\x1b[33m";
    /// Per-connection colours, cycled by connection number.
    pub const CONN: [&str; 6] = [
        "\x1b[36m", "\x1b[32m", "\x1b[35m", "\x1b[34m", "\x1b[96m", "\x1b[92m",
    ];

    pub fn conn(id: u64) -> &'static str {
        CONN[(id as usize) % CONN.len()]
    }
}
