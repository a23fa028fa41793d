//! `--trace-syscalls`: one line per syscall, `[pid N] name(args) = result`,
//! written with a single write(2) to stdout.
//!
//! Lines are formatted into a fixed stack buffer and written directly to fd
//! 1 without a lock, one write(2) each (less than PIPE_BUF bytes), so lines
//! from several processes never interleave. Bytes that came from a client
//! are escaped with sockscope's one escaper for foreign text ([`quoted`]),
//! which may allocate: the server's processes are single-threaded, so a
//! child they fork may too.

use std::fmt::{self, Write};
use std::io;

/// Longest trace line; longer ones are cut and end in `…`.
pub const LINE_MAX: usize = 480;

/// A trace line being built.
pub struct Line {
    buf: [u8; LINE_MAX + 8],
    len: usize,
    cut: bool,
}

impl Default for Line {
    fn default() -> Self {
        Line {
            buf: [0; LINE_MAX + 8],
            len: 0,
            cut: false,
        }
    }
}

impl Line {
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
    pub fn as_str(&self) -> &str {
        // Only whole UTF-8 sequences are ever pushed (see write_str).
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
    fn push(&mut self, b: &[u8]) {
        let room = LINE_MAX - self.len;
        if b.len() > room {
            self.cut = true;
        }
        let n = b.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&b[..n]);
        self.len += n;
    }
    /// End the line: `…` if it was cut, then a newline.
    fn finish(&mut self) {
        if self.cut {
            let e = "…".as_bytes();
            self.buf[self.len..self.len + e.len()].copy_from_slice(e);
            self.len += e.len();
        }
        self.buf[self.len] = b'\n';
        self.len += 1;
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = LINE_MAX - self.len;
        if s.len() <= room {
            self.push(s.as_bytes());
        } else {
            // Cut on a character boundary.
            let mut n = room;
            while n > 0 && !s.is_char_boundary(n) {
                n -= 1;
            }
            self.push(&s.as_bytes()[..n]);
            self.cut = true;
        }
        Ok(())
    }
}

/// Write `data` (bytes a client sent, a path it asked for) as a quoted
/// string, at most `max` bytes of it, escaped as every text view of
/// sockscope escapes foreign strings ([`sockscope::view::escape`]: control
/// bytes, invalid UTF-8, bidi overrides, backslash), with `"` escaped too:
/// `"GET / HTTP/1.1\r\nHost: x\r\n"...`.
pub fn quoted(l: &mut Line, data: &[u8], max: usize) {
    let cut = &data[..data.len().min(max)];
    let _ = l.write_char('"');
    let esc = sockscope::view::escape::escape_bytes(cut);
    let mut rest: &str = &esc;
    while let Some(p) = rest.find('"') {
        let _ = l.write_str(&rest[..p]);
        let _ = l.write_str("\\\"");
        rest = &rest[p + 1..];
    }
    let _ = l.write_str(rest);
    let _ = l.write_char('"');
    if data.len() > max {
        let _ = l.write_str("...");
    }
}

/// Write a syscall result: `= 5`, or `= -1 EAGAIN (Resource temporarily unavailable)`.
pub fn result<T: fmt::Display>(l: &mut Line, r: &Result<T, rustix::io::Errno>) {
    match r {
        Ok(v) => {
            let _ = write!(l, " = {v}");
        }
        Err(e) => errno(l, *e),
    }
}

/// Write ` = -1 ENAME (description)`.
pub fn errno(l: &mut Line, e: rustix::io::Errno) {
    let _ = write!(l, " = -1 {} ({})", errno_name(e), io::Error::from(e));
}

/// The symbolic name of the errnos a server meets.
pub fn errno_name(e: rustix::io::Errno) -> &'static str {
    use rustix::io::Errno as E;
    match e {
        E::AGAIN => "EAGAIN",
        E::INTR => "EINTR",
        E::CONNRESET => "ECONNRESET",
        E::PIPE => "EPIPE",
        E::NOENT => "ENOENT",
        E::NOTDIR => "ENOTDIR",
        E::XDEV => "EXDEV",
        E::LOOP => "ELOOP",
        E::ACCESS => "EACCES",
        E::PERM => "EPERM",
        E::ADDRINUSE => "EADDRINUSE",
        E::ADDRNOTAVAIL => "EADDRNOTAVAIL",
        E::CONNREFUSED => "ECONNREFUSED",
        E::INPROGRESS => "EINPROGRESS",
        E::MFILE => "EMFILE",
        E::NFILE => "ENFILE",
        E::CHILD => "ECHILD",
        E::INVAL => "EINVAL",
        E::BADF => "EBADF",
        E::NOTCONN => "ENOTCONN",
        E::TIMEDOUT => "ETIMEDOUT",
        E::NAMETOOLONG => "ENAMETOOLONG",
        E::NOSYS => "ENOSYS",
        _ => "E?",
    }
}

/// Whether tracing is on, and the writer of lines.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tracer {
    pub on: bool,
}

impl Tracer {
    pub fn new(on: bool) -> Tracer {
        Tracer { on }
    }

    /// Emit one line built by `f`, prefixed with `[pid N] `. Does nothing
    /// (and `f` is not called) when tracing is off.
    #[inline]
    pub fn emit(&self, f: impl FnOnce(&mut Line)) {
        if !self.on {
            return;
        }
        let mut l = Line::default();
        let _ = write!(l, "[pid {}] ", rustix::process::getpid().as_raw_nonzero());
        f(&mut l);
        l.finish();
        write_all_stdout(l.as_bytes());
    }
}

/// One write(2) (retried on a short write) to fd 1, no locks.
pub fn write_all_stdout(mut b: &[u8]) {
    // SAFETY: fd 1 is open for the life of the process (or writes fail with
    // EBADF, which is ignored).
    let out = unsafe { rustix::fd::BorrowedFd::borrow_raw(1) };
    while !b.is_empty() {
        match rustix::io::write(out, b) {
            Ok(0) => return,
            Ok(n) => b = &b[n..],
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_control_bytes_and_cuts() {
        let mut l = Line::default();
        quoted(&mut l, b"GET / HTTP/1.1\r\n\x00\"\x1b[2J\\\xff", 64);
        assert_eq!(l.as_str(), r#""GET / HTTP/1.1\r\n\0\"\e[2J\\\xff""#);
        // Bidi overrides and C1 controls are escaped; other text is kept.
        let mut l = Line::default();
        quoted(&mut l, "/caf\u{e9}/\u{202e}gpj.exe\u{9b}".as_bytes(), 64);
        assert_eq!(l.as_str(), r#""/café/\u{202e}gpj.exe\u{009b}""#);
        let mut l = Line::default();
        quoted(&mut l, b"abcdef", 3);
        assert_eq!(l.as_str(), r#""abc"..."#);
    }

    #[test]
    fn results_and_errnos() {
        let mut l = Line::default();
        result(&mut l, &Ok::<_, rustix::io::Errno>(5));
        assert_eq!(l.as_str(), " = 5");
        let mut l = Line::default();
        result::<u32>(&mut l, &Err(rustix::io::Errno::AGAIN));
        assert!(l.as_str().starts_with(" = -1 EAGAIN ("), "{}", l.as_str());
    }

    #[test]
    fn long_lines_are_cut_with_an_ellipsis() {
        let mut l = Line::default();
        for _ in 0..100 {
            let _ = l.write_str("0123456789");
        }
        l.finish();
        let s = l.as_str();
        assert!(s.ends_with("…\n"), "{s}");
        assert_eq!(s.len(), LINE_MAX + "…\n".len());
    }
}
