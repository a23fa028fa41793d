//! An aligned text table. Cells are appended to one string arena (no
//! allocation per cell), column widths are measured once, and rows are
//! written with padding; the last column is never padded.

use std::fmt::Write as _;
use std::io::{self, Write};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// ANSI colour to wrap a cell in (only when colour is on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Color {
    Green,
    Yellow,
    Red,
    Cyan,
    Dim,
    Bold,
}

impl Color {
    fn code(self) -> &'static str {
        match self {
            Color::Green => "\x1b[32m",
            Color::Yellow => "\x1b[33m",
            Color::Red => "\x1b[31m",
            Color::Cyan => "\x1b[36m",
            Color::Dim => "\x1b[2m",
            Color::Bold => "\x1b[1m",
        }
    }
}

pub struct Table {
    headers: Vec<&'static str>,
    align: Vec<Align>,
    arena: String,
    /// End offset in `arena` of every cell, row-major.
    ends: Vec<u32>,
    /// Colour of every cell (None = plain), row-major.
    colors: Vec<Option<Color>>,
    /// Free text printed on its own indented line under a row: (row, text).
    details: Vec<(usize, String)>,
}

impl Table {
    pub fn new(cols: &[(&'static str, Align)]) -> Table {
        Table {
            headers: cols.iter().map(|c| c.0).collect(),
            align: cols.iter().map(|c| c.1).collect(),
            arena: String::new(),
            ends: Vec::new(),
            colors: Vec::new(),
            details: Vec::new(),
        }
    }

    pub fn with_capacity(cols: &[(&'static str, Align)], rows: usize) -> Table {
        let mut t = Table::new(cols);
        t.arena.reserve(rows * 64);
        t.ends.reserve(rows * cols.len());
        t.colors.reserve(rows * cols.len());
        t
    }

    pub fn columns(&self) -> usize {
        self.headers.len()
    }

    pub fn rows(&self) -> usize {
        self.ends.len() / self.columns().max(1)
    }

    /// Append one cell written by `f` into the arena.
    pub fn cell_with(&mut self, color: Option<Color>, f: impl FnOnce(&mut String)) {
        f(&mut self.arena);
        self.ends.push(self.arena.len() as u32);
        self.colors.push(color);
    }

    pub fn cell(&mut self, text: impl std::fmt::Display) {
        self.cell_with(None, |b| {
            let _ = write!(b, "{text}");
        });
    }

    pub fn colored(&mut self, color: Option<Color>, text: impl std::fmt::Display) {
        self.cell_with(color, |b| {
            let _ = write!(b, "{text}");
        });
    }

    /// Attach a detail line to the last complete row (ss -i style).
    pub fn detail(&mut self, text: String) {
        if let Some(row) = self.rows().checked_sub(1) {
            self.details.push((row, text));
        }
    }

    fn text(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.arena[start..self.ends[i] as usize]
    }

    pub fn width(s: &str) -> usize {
        if s.is_ascii() {
            s.len()
        } else {
            s.chars().count()
        }
    }

    /// Write the header and every row. `color` turns ANSI colours on.
    pub fn write(&self, w: &mut impl Write, color: bool) -> io::Result<()> {
        self.write_opts(w, color, true)
    }

    /// Write every row without the header.
    pub fn write_rows(&self, w: &mut impl Write, color: bool) -> io::Result<()> {
        self.write_opts(w, color, false)
    }

    fn write_opts(&self, w: &mut impl Write, color: bool, header: bool) -> io::Result<()> {
        let n = self.columns();
        if n == 0 {
            return Ok(());
        }
        let mut widths: Vec<usize> = self.headers.iter().map(|h| Self::width(h)).collect();
        for i in 0..self.ends.len() {
            let c = i % n;
            widths[c] = widths[c].max(Self::width(self.text(i)));
        }
        let mut line = String::with_capacity(256);
        let emit = |line: &mut String, c: usize, text: &str, col: Option<Color>| {
            emit_cell(line, c, text, col, &widths, &self.align, color)
        };
        if header {
            for (c, h) in self.headers.iter().enumerate() {
                emit(&mut line, c, h, color.then_some(Color::Bold));
            }
            w.write_all(line.trim_end().as_bytes())?;
            w.write_all(b"\n")?;
        }
        let mut details = self.details.iter().peekable();
        for r in 0..self.rows() {
            line.clear();
            for c in 0..n {
                let i = r * n + c;
                emit(&mut line, c, self.text(i), self.colors[i]);
            }
            w.write_all(line.trim_end().as_bytes())?;
            w.write_all(b"\n")?;
            while let Some((_, d)) = details.next_if(|(row, _)| *row == r) {
                w.write_all(b"\t ")?;
                w.write_all(d.as_bytes())?;
                w.write_all(b"\n")?;
            }
        }
        Ok(())
    }
}

/// Append cell `c` of a row to `line`: a separating space, padding to
/// `widths[c]` on the side `align[c]` says (none after the last column),
/// and the colour codes when `color` is on.
pub fn emit_cell(
    line: &mut String,
    c: usize,
    text: &str,
    col: Option<Color>,
    widths: &[usize],
    align: &[Align],
    color: bool,
) {
    let pad = widths[c].saturating_sub(Table::width(text));
    let last = c + 1 == widths.len();
    if c > 0 {
        line.push(' ');
    }
    if align[c] == Align::Right {
        line.extend(std::iter::repeat_n(' ', pad));
    }
    match col {
        Some(k) if color => {
            line.push_str(k.code());
            line.push_str(text);
            line.push_str("\x1b[0m");
        }
        _ => line.push_str(text),
    }
    if align[c] == Align::Left && !last {
        line.extend(std::iter::repeat_n(' ', pad));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns_and_leaves_no_trailing_space() {
        let mut t = Table::new(&[
            ("A", Align::Left),
            ("Num", Align::Right),
            ("Z", Align::Left),
        ]);
        t.cell("xx");
        t.cell(5);
        t.cell("end");
        t.cell("y");
        t.cell(12345);
        t.cell("");
        let mut out = Vec::new();
        t.write(&mut out, false).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "A    Num Z\nxx     5 end\ny  12345\n"
        );
    }

    #[test]
    fn colour_codes_only_when_asked_and_do_not_count_in_width() {
        let mut t = Table::new(&[("S", Align::Left), ("X", Align::Left)]);
        t.colored(Some(Color::Green), "LISTEN");
        t.cell("a");
        let mut plain = Vec::new();
        t.write(&mut plain, false).unwrap();
        assert!(!plain.contains(&0x1b));
        let mut col = Vec::new();
        t.write(&mut col, true).unwrap();
        let s = String::from_utf8(col).unwrap();
        assert!(s.contains("\x1b[32mLISTEN\x1b[0m a"), "{s:?}");
    }

    #[test]
    fn unicode_width_counts_chars() {
        let mut t = Table::new(&[("P", Align::Left), ("Q", Align::Left)]);
        t.cell("/tmp/é");
        t.cell("x");
        let mut out = Vec::new();
        t.write(&mut out, false).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "P      Q\n/tmp/é x\n");
    }
}
