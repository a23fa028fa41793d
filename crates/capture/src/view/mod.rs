//! Views: decoded packets, their analysis and conversations rendered as
//! text, JSON or SVG. Views write to the writer they are given and do no
//! other I/O.
//!
//! - [`line`]: one line per packet, in tcpdump's form, with Wireshark's
//!   relative sequence numbers, analysis labels and process labels.
//! - [`json`]: packet, conversation and summary objects with stable field
//!   names (units in the names).
//! - [`conv`]: the conversation table.
//! - [`flow`]: a flow (sequence) diagram per conversation, as text or SVG.

pub mod conv;
pub mod flow;
pub mod json;
pub mod line;

use crate::procs::Label;
use sockscope::view::escape::Escaped;

/// Process labels of a packet's source and destination, when known.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Procs {
    pub src: Option<Label>,
    pub dst: Option<Label>,
}

impl Procs {
    pub fn is_empty(&self) -> bool {
        self.src.is_none() && self.dst.is_none()
    }
    /// "python3 pid 12 > curl pid 34" (`?` for an unknown side).
    pub fn describe(&self) -> String {
        let side = |l: &Option<Label>| match l {
            Some(l) => format!("{} pid {}", Escaped(&l.comm), l.pid),
            None => "?".to_string(),
        };
        format!("{} > {}", side(&self.src), side(&self.dst))
    }
}

/// "00" to "99": two digits per division when printing numbers.
const PAIRS: [u8; 200] = {
    let mut t = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        t[2 * i] = b'0' + (i / 10) as u8;
        t[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
};

/// Append the decimal form of `n` (the hot path of line output: a dozen
/// numbers a line). Small numbers (ports of octets, flags, lengths) take
/// a table; larger ones are built two digits per division in a stack
/// buffer and copied once, with 32-bit divisions when they fit.
#[inline]
pub(crate) fn push_u64(buf: &mut Vec<u8>, n: u64) {
    if n < 10 {
        buf.push(b'0' + n as u8);
    } else if n < 100 {
        let r = n as usize * 2;
        buf.extend_from_slice(&PAIRS[r..r + 2]);
    } else {
        push_long(buf, n);
    }
}

fn push_long(buf: &mut Vec<u8>, n: u64) {
    // Digits left-aligned in a fixed-size buffer, copied whole (a copy of
    // known size is a few moves; one of variable size a call to memcpy)
    // and the excess cut off.
    let digits = n.checked_ilog10().unwrap_or(0) as usize + 1;
    let mut tmp = [0u8; 20];
    let mut i = digits;
    let mut pair = |i: &mut usize, r: usize| {
        *i -= 2;
        tmp[*i] = PAIRS[2 * r];
        tmp[*i + 1] = PAIRS[2 * r + 1];
    };
    let mut n = n;
    while n > u64::from(u32::MAX) {
        pair(&mut i, (n % 100) as usize);
        n /= 100;
    }
    let mut m = n as u32;
    while m >= 100 {
        pair(&mut i, (m % 100) as usize);
        m /= 100;
    }
    if m >= 10 {
        pair(&mut i, m as usize);
    } else {
        tmp[0] = b'0' + m as u8;
    }
    let start = buf.len();
    buf.extend_from_slice(&tmp);
    buf.truncate(start + digits);
}

/// Format a duration in nanoseconds for humans: "850ns", "12.3µs",
/// "4.56ms", "1.234s".
pub fn human_ns(ns: u64) -> String {
    if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        format!("{:.1}µs", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2}ms", ns as f64 / 1e6)
    } else {
        format!("{:.3}s", ns as f64 / 1e9)
    }
}

/// A byte count for a table cell: "630B", "1.5KiB" (the library's one
/// byte formatter).
pub use sockscope::view::units::bytes_compact as human_bytes;

#[cfg(test)]
mod tests {
    #[test]
    fn push_u64_prints_every_width() {
        let mut n = 1u64;
        for _ in 0..20 {
            for v in [n - 1, n, n + 1, n / 7 * 9] {
                let mut b = Vec::new();
                super::push_u64(&mut b, v);
                assert_eq!(String::from_utf8(b).unwrap(), v.to_string());
            }
            n = n.saturating_mul(10);
        }
        let mut b = Vec::new();
        super::push_u64(&mut b, u64::MAX);
        assert_eq!(String::from_utf8(b).unwrap(), u64::MAX.to_string());
    }
}
