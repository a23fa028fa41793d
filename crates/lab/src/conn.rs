//! One HTTP connection: read a request head into a fixed buffer, answer it
//! (a file with sendfile, or a short error), keep the connection for the
//! next request or close it.
//!
//! Every process model uses nonblocking sockets: [`Conn::drive`] runs
//! until it must wait and says for what (EAGAIN); the model waits with
//! epoll (epoll, prefork, reuseport) or poll (single, fork) and drives it
//! again. Buffers are allocated once per connection slot and reused;
//! answering a request allocates nothing.
//!
//! Timeouts are kept here, once for every model: each connection has one
//! [`Conn::deadline`], which the model uses as its wait timeout (poll) or
//! checks in a sweep (epoll) and then calls [`Conn::time_out`]:
//! - a request (head, then any body, which is read and dropped after the
//!   response) and the idle time before it: `header_timeout` from the end
//!   of the previous response (or the accept), in total, however slowly the
//!   client trickles bytes;
//! - a response: `send_timeout` without progress (each write that moves
//!   data restarts it), so a slow but steady reader gets the whole file;
//! - closing with input possibly unread (a body, pipelined bytes, an error):
//!   the send side is shut and the input read and dropped until the client
//!   closes, for at most [`LINGER`] and [`LINGER_BYTES`], so that close()
//!   does not answer unread data with an RST that destroys the response;
//! - once the server stops, no deadline lies beyond the grace period.

use crate::http::{self, ConnHeader, Method, Request, Status};
use crate::sys::{self, FileKind};
use crate::target;
use crate::trace::Tracer;
use rustix::fd::{AsRawFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use std::ffi::CStr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Largest sendfile(2) call.
const SENDFILE_CHUNK: u64 = 16 << 20;

/// Longest wait for the client to close after the server shut its send side.
pub const LINGER: Duration = Duration::from_secs(2);
/// Most bytes read and dropped while lingering.
pub const LINGER_BYTES: usize = 256 * 1024;

/// What the server shares between its connections.
pub struct Cx {
    pub t: Tracer,
    /// The served directory (O_PATH).
    pub root: OwnedFd,
    /// Its canonical path, for the realpath fallback.
    pub root_path: PathBuf,
    /// Cleared when openat2 answers ENOSYS.
    pub openat2: bool,
    /// Total time a client has to send a request (head and body), counted
    /// from the end of the previous response: also how long an idle
    /// keep-alive connection is kept.
    pub header_timeout: Duration,
    /// How long a response may make no progress (the client does not read).
    pub send_timeout: Duration,
    /// After SIGTERM, how long the requests in flight have to finish.
    pub grace: Duration,
    /// SIGTERM seen: finish requests in flight, keep no connection alive.
    pub stopping: bool,
    /// When stopping: no connection is kept beyond this.
    pub stop_deadline: Option<Instant>,
    /// The time of the current event loop turn.
    pub now: Instant,
    /// One connection at a time (single model): the listening socket. When
    /// other clients wait in its accept queue, a response closes the
    /// connection instead of keeping it alive, so one idle keep-alive client
    /// cannot hold everyone else up.
    pub yield_to: Option<i32>,
    pub date: http::DateCache,
}

impl Cx {
    /// The server was asked to stop (at `self.now`).
    pub fn begin_stop(&mut self) {
        if !self.stopping {
            self.stopping = true;
            self.stop_deadline = Some(self.now + self.grace);
        }
    }

    /// `now + d`, but never past the stop deadline.
    fn deadline_in(&self, d: Duration) -> Instant {
        let at = self.now + d;
        self.stop_deadline.map_or(at, |s| at.min(s))
    }
}

/// What the connection waits for after [`Conn::drive`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    Read,
    Write,
    Close,
}

/// Why the last read or write returned without progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stall {
    /// EAGAIN: no data to read, or no room to write.
    Again,
    /// EINTR: a signal arrived.
    Interrupted,
}

pub struct Conn {
    fd: Option<OwnedFd>,
    buf: Box<[u8]>,
    start: usize,
    len: usize,
    out: Vec<u8>,
    out_off: usize,
    file: Option<OwnedFd>,
    file_off: u64,
    file_left: u64,
    path: Vec<u8>,
    keep: bool,
    discard: u64,
    writing: bool,
    /// Closing on an error: unread request bytes may remain, and closing a
    /// socket with unread data sends RST, which can destroy the response
    /// before the client reads it. Shut the send side and drain first.
    linger: bool,
    /// The send side is shut: read and drop input until the client closes.
    lingering: bool,
    linger_left: usize,
    /// Nonblocking: the socket may have unread data.
    pub readable: bool,
    /// The peer shut its side (EPOLLRDHUP / EPOLLHUP): always try to read.
    pub hup: bool,
    /// When the current wait (for a request head, or for the client to
    /// take the response) ends.
    pub deadline: Instant,
    pub stall: Stall,
    /// Requests answered on this connection.
    pub requests: u64,
}

impl Default for Conn {
    fn default() -> Self {
        Conn::new()
    }
}

impl Conn {
    pub fn new() -> Conn {
        Conn {
            fd: None,
            buf: vec![0; http::MAX_HEAD].into_boxed_slice(),
            start: 0,
            len: 0,
            out: Vec::with_capacity(512),
            out_off: 0,
            file: None,
            file_off: 0,
            file_left: 0,
            path: Vec::with_capacity(256),
            keep: true,
            discard: 0,
            writing: false,
            linger: false,
            lingering: false,
            linger_left: 0,
            readable: true,
            hup: false,
            deadline: Instant::now(),
            stall: Stall::Again,
            requests: 0,
        }
    }

    /// Take a freshly accepted connection.
    pub fn open(&mut self, fd: OwnedFd, cx: &Cx) {
        self.fd = Some(fd);
        self.start = 0;
        self.len = 0;
        self.out.clear();
        self.out_off = 0;
        self.file = None;
        self.file_left = 0;
        self.keep = true;
        self.discard = 0;
        self.writing = false;
        self.linger = false;
        self.lingering = false;
        self.readable = true;
        self.hup = false;
        self.deadline = cx.deadline_in(cx.header_timeout);
        self.requests = 0;
    }

    pub fn is_open(&self) -> bool {
        self.fd.is_some()
    }

    pub fn fd(&self) -> Option<&OwnedFd> {
        self.fd.as_ref()
    }

    /// Between requests: nothing of a request received, nothing to send.
    pub fn idle(&self) -> bool {
        !self.writing && self.start == self.len && self.discard == 0
    }

    /// The server begins to stop (call after [`Cx::begin_stop`]): no
    /// deadline beyond the grace period. Returns true when the connection
    /// should be closed at once (idle between requests).
    pub fn on_stop(&mut self, cx: &Cx) -> bool {
        if let Some(s) = cx.stop_deadline {
            self.deadline = self.deadline.min(s);
        }
        self.is_open() && self.idle() && self.requests > 0
    }

    pub fn is_writing(&self) -> bool {
        self.writing
    }

    /// Close the connection (and a file being sent).
    pub fn close(&mut self, cx: &Cx) {
        if let Some(f) = self.file.take() {
            sys::close(cx.t, f);
        }
        if let Some(fd) = self.fd.take() {
            if self.linger || self.lingering {
                sys::drain(cx.t, &fd);
            }
            sys::close(cx.t, fd);
        }
    }

    /// The deadline passed: a client that sent part of a request head is
    /// told 408 (one nonblocking attempt); one still sending a body after
    /// its response, an idle one, one that does not read its response and
    /// a lingering one are just closed. The caller closes the connection
    /// afterwards.
    pub fn time_out(&mut self, cx: &mut Cx) {
        if self.writing || self.lingering || self.idle() {
            return;
        }
        if self.discard > 0 {
            self.linger = true;
            return;
        }
        if let Some(fd) = &self.fd {
            self.out.clear();
            error_response(cx, &mut self.out, Status::RequestTimeout, 1, false, false);
            let _ = sys::send(cx.t, fd, &self.out, false, true);
            self.linger = true;
        }
    }

    /// Make progress until the connection must wait, or is done.
    pub fn drive(&mut self, cx: &mut Cx) -> Want {
        let Some(fd) = self.fd.as_ref().map(|f| f.as_raw_fd()) else {
            return Want::Close;
        };
        // SAFETY: `self.fd` stays open for the whole call: only `close`
        // (never called from here) releases it.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        loop {
            if self.lingering {
                if !self.readable && !self.hup {
                    self.stall = Stall::Again;
                    return Want::Read;
                }
                match sys::read(cx.t, fd, &mut self.buf[..]) {
                    Ok(0) => return Want::Close,
                    Ok(n) => {
                        self.linger_left = self.linger_left.saturating_sub(n);
                        if self.linger_left == 0 {
                            return Want::Close;
                        }
                        if n < self.buf.len() {
                            self.readable = false;
                        }
                    }
                    Err(e) => {
                        self.readable = false;
                        return self.stalled(e, Want::Read);
                    }
                }
                continue;
            }
            if self.writing {
                // Send the head, then the file. Each write that moves data
                // restarts the send timeout.
                while self.out_off < self.out.len() {
                    let more = self.file_left > 0;
                    match sys::send(cx.t, fd, &self.out[self.out_off..], more, false) {
                        Ok(n) => {
                            self.out_off += n;
                            self.deadline = cx.deadline_in(cx.send_timeout);
                        }
                        Err(e) => return self.stalled(e, Want::Write),
                    }
                }
                while self.file_left > 0 {
                    let Some(file) = self.file.as_ref() else {
                        return Want::Close;
                    };
                    let count = self.file_left.min(SENDFILE_CHUNK) as usize;
                    match sys::sendfile(cx.t, fd, file, &mut self.file_off, count) {
                        Ok(0) => return Want::Close, // the file shrank under us
                        Ok(n) => {
                            self.file_left -= n as u64;
                            self.deadline = cx.deadline_in(cx.send_timeout);
                        }
                        Err(e) => return self.stalled(e, Want::Write),
                    }
                }
                if let Some(f) = self.file.take() {
                    sys::close(cx.t, f);
                }
                self.writing = false;
                self.out.clear();
                self.out_off = 0;
                self.requests += 1;
                if !self.keep {
                    // Input may be left unread (a body, pipelined
                    // requests, whatever made the request an error).
                    if self.discard > 0 || self.start < self.len || self.linger {
                        self.begin_linger(cx, fd);
                        continue;
                    }
                    return Want::Close;
                }
                self.deadline = cx.deadline_in(cx.header_timeout);
                continue;
            }

            // A body we do not use is read and dropped.
            if self.discard > 0 {
                let take = ((self.len - self.start) as u64).min(self.discard);
                self.start += take as usize;
                self.discard -= take;
            }
            if self.discard == 0 && self.start < self.len {
                let parsed = http::parse(&self.buf[self.start..self.len]);
                match parsed {
                    Ok(Some(req)) => {
                        let used = req.len;
                        let (keep, file) = respond(cx, &req, &mut self.out, &mut self.path);
                        self.start += used;
                        self.discard = req.content_length;
                        self.keep = keep;
                        self.begin_write(cx, file);
                        continue;
                    }
                    Ok(None) => {}
                    Err(status) => {
                        self.out.clear();
                        error_response(cx, &mut self.out, status, 1, false, false);
                        self.keep = false;
                        self.linger = true;
                        self.start = self.len;
                        self.begin_write(cx, None);
                        continue;
                    }
                }
            }
            if self.start == self.len {
                self.start = 0;
                self.len = 0;
                // Stopping: a kept-alive connection between requests is
                // closed (one still sending the body of a request already
                // answered is shut and drained first); a new one still
                // gets its first request answered.
                if cx.stopping && self.requests > 0 {
                    if self.discard == 0 {
                        return Want::Close;
                    }
                    self.begin_linger(cx, fd);
                    continue;
                }
            } else if self.start > 0 {
                self.buf.copy_within(self.start..self.len, 0);
                self.len -= self.start;
                self.start = 0;
            }
            if !self.readable && !self.hup {
                self.stall = Stall::Again;
                return Want::Read;
            }
            let space = self.buf.len() - self.len;
            match sys::read(cx.t, fd, &mut self.buf[self.len..]) {
                Ok(0) => return Want::Close,
                Ok(n) => {
                    self.len += n;
                    if n < space {
                        self.readable = false;
                    }
                }
                Err(e) => {
                    self.readable = false;
                    return self.stalled(e, Want::Read);
                }
            }
        }
    }

    fn stalled(&mut self, e: Errno, want: Want) -> Want {
        match e {
            Errno::AGAIN => {
                self.stall = Stall::Again;
                want
            }
            Errno::INTR => {
                self.stall = Stall::Interrupted;
                want
            }
            _ => Want::Close,
        }
    }

    /// Shut the send side (the response is complete) and read and drop
    /// input until the client closes, for at most [`LINGER`].
    fn begin_linger(&mut self, cx: &Cx, fd: BorrowedFd<'_>) {
        sys::shutdown_write(cx.t, fd);
        self.lingering = true;
        self.linger_left = LINGER_BYTES;
        self.start = 0;
        self.len = 0;
        self.discard = 0;
        self.deadline = cx.deadline_in(LINGER.min(cx.header_timeout));
    }

    fn begin_write(&mut self, cx: &Cx, file: Option<(OwnedFd, u64)>) {
        self.writing = true;
        self.out_off = 0;
        match file {
            Some((f, size)) => {
                self.file = Some(f);
                self.file_off = 0;
                self.file_left = size;
            }
            None => {
                self.file = None;
                self.file_left = 0;
            }
        }
        self.deadline = cx.deadline_in(cx.send_timeout);
    }
}

/// Write an error response (head and, unless HEAD, a one-line body) into
/// `out`. Returns whether the connection is kept.
fn error_response(
    cx: &mut Cx,
    out: &mut Vec<u8>,
    status: Status,
    minor: u8,
    keep: bool,
    head_only: bool,
) -> bool {
    let keep = keep && !status.closes() && !cx.stopping;
    http::write_head(
        out,
        &http::Head {
            status,
            content_type: "text/plain; charset=utf-8",
            content_length: http::error_body_len(status),
            conn: ConnHeader::for_request(minor, keep),
            location: None,
            date: cx.date.get(),
        },
    );
    if !head_only {
        http::error_body(out, status);
    }
    keep
}

/// The 503 sent to a connection the server has no room for, then closed.
pub fn reject_busy(cx: &mut Cx, fd: OwnedFd) {
    let mut out = Vec::with_capacity(256);
    error_response(cx, &mut out, Status::Unavailable, 1, false, false);
    let _ = sys::send(cx.t, &fd, &out, false, true);
    sys::drain(cx.t, &fd);
    sys::close(cx.t, fd);
}

/// Open a NUL-terminated relative path beneath the root.
fn open(cx: &mut Cx, path: &[u8]) -> Result<OwnedFd, Status> {
    let c = CStr::from_bytes_with_nul(path).map_err(|_| Status::BadRequest)?;
    let mut r = Err(Errno::NOSYS);
    if cx.openat2 {
        r = sys::open_beneath(cx.t, &cx.root, c);
        if matches!(r, Err(Errno::AGAIN)) {
            // A rename raced the lookup; one retry.
            r = sys::open_beneath(cx.t, &cx.root, c);
        }
        if matches!(r, Err(Errno::NOSYS)) {
            cx.openat2 = false;
        }
    }
    if !cx.openat2 {
        r = sys::open_checked(cx.t, &cx.root_path, c);
    }
    r.map_err(open_error_status)
}

/// The response to a failed open: the path does not exist or leaves the
/// root (EXDEV from RESOLVE_BENEATH), or is no file at all (ENXIO: a UNIX
/// socket or a device without a driver; ENODEV): 404; not allowed: 403;
/// anything else (out of descriptors, I/O error): 500. A FIFO or a device
/// that opens is refused by fstat (not a regular file): 404 as well.
pub fn open_error_status(e: Errno) -> Status {
    match e {
        Errno::NOENT
        | Errno::NOTDIR
        | Errno::XDEV
        | Errno::LOOP
        | Errno::NAMETOOLONG
        | Errno::NXIO
        | Errno::NODEV => Status::NotFound,
        Errno::ACCESS | Errno::PERM => Status::Forbidden,
        _ => Status::InternalError,
    }
}

/// Answer one request: the response head goes to `out`; a file to send
/// follows it. Returns whether to keep the connection, and the file.
fn respond(
    cx: &mut Cx,
    req: &Request<'_>,
    out: &mut Vec<u8>,
    path: &mut Vec<u8>,
) -> (bool, Option<(OwnedFd, u64)>) {
    out.clear();
    let keep =
        req.keep_alive && !cx.stopping && !cx.yield_to.is_some_and(|l| sys::pending(cx.t, l));
    let head_only = req.method == Method::Head;
    let fail = |cx: &mut Cx, out: &mut Vec<u8>, s: Status| {
        let k = error_response(cx, out, s, req.minor, keep, head_only);
        (k, None)
    };
    if req.method == Method::Other {
        return fail(cx, out, Status::MethodNotAllowed);
    }
    let d = match target::decode(req.target, path) {
        Ok(d) => d,
        Err(s) => return fail(cx, out, s),
    };
    let mut file = match open(cx, path) {
        Ok(f) => f,
        Err(s) => return fail(cx, out, s),
    };
    let mut st = sys::fstat(cx.t, &file);
    if let Ok((FileKind::Directory, _)) = st {
        sys::close(cx.t, file);
        if !d.dir {
            // `/sub` is a directory: send the client to `/sub/` so relative
            // links in its index resolve.
            let raw = &req.target[d.raw_path.0..d.raw_path.1];
            let conn = ConnHeader::for_request(req.minor, keep);
            http::write_head(
                out,
                &http::Head {
                    status: Status::MovedPermanently,
                    content_type: "text/plain; charset=utf-8",
                    content_length: 0,
                    conn,
                    location: Some((raw, b"/")),
                    date: cx.date.get(),
                },
            );
            return (keep, None);
        }
        target::push_index(path);
        file = match open(cx, path) {
            Ok(f) => f,
            Err(s) => return fail(cx, out, s),
        };
        st = sys::fstat(cx.t, &file);
    }
    let size = match st {
        Ok((FileKind::Regular, size)) => size,
        Ok(_) => {
            sys::close(cx.t, file);
            return fail(cx, out, Status::NotFound);
        }
        Err(_) => {
            sys::close(cx.t, file);
            return fail(cx, out, Status::InternalError);
        }
    };
    http::write_head(
        out,
        &http::Head {
            status: Status::Ok,
            content_type: target::content_type(path),
            content_length: size,
            conn: ConnHeader::for_request(req.minor, keep),
            location: None,
            date: cx.date.get(),
        },
    );
    if head_only || size == 0 {
        sys::close(cx.t, file);
        (keep, None)
    } else {
        (keep, Some((file, size)))
    }
}

/// Open the served directory (O_PATH) and canonicalise its path.
pub fn open_root(t: Tracer, dir: &std::path::Path) -> std::io::Result<(OwnedFd, PathBuf)> {
    use rustix::fs::{Mode, OFlags};
    let canon = std::fs::canonicalize(dir)?;
    let fd = rustix::fs::open(
        &canon,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    t.emit(|l| {
        use std::fmt::Write;
        let _ = write!(
            l,
            "open({:?}, O_PATH|O_DIRECTORY|O_CLOEXEC) = {}",
            canon,
            fd.as_raw_fd()
        );
    });
    Ok((fd, canon))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::net::{AddressFamily, SocketFlags, SocketType};

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn setup(tag: &str) -> (Dir, Cx) {
        let d = std::env::temp_dir().join(format!("sockscope-conn-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("a.txt"), "hello\n").unwrap();
        let (root, root_path) = open_root(Tracer::default(), &d).unwrap();
        let cx = Cx {
            t: Tracer::default(),
            root,
            root_path,
            openat2: true,
            header_timeout: Duration::from_secs(5),
            send_timeout: Duration::from_secs(5),
            grace: Duration::from_secs(5),
            stopping: false,
            stop_deadline: None,
            now: Instant::now(),
            yield_to: None,
            date: http::DateCache::default(),
        };
        (Dir(d), cx)
    }

    fn pair() -> (OwnedFd, OwnedFd) {
        rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            None,
        )
        .unwrap()
    }

    fn read_all(fd: &OwnedFd) -> String {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = rustix::io::read(fd, &mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn pipelined_requests_and_a_discarded_body_on_one_connection() {
        let (_d, mut cx) = setup("pipe");
        let (server, client) = pair();
        rustix::io::write(
            &client,
            b"GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloHEAD /a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let mut c = Conn::new();
        c.open(server, &cx);
        assert_eq!(c.drive(&mut cx), Want::Close);
        assert_eq!(c.requests, 3);
        c.close(&cx);
        let text = read_all(&client);
        let statuses: Vec<&str> = text
            .match_indices("HTTP/1.1 ")
            .map(|(i, _)| &text[i + 9..i + 12])
            .collect();
        assert_eq!(statuses, ["200", "200", "404"], "{text}");
        // GET has the body, HEAD does not, the 404 says it closes.
        assert_eq!(text.matches("hello\n").count(), 1, "{text}");
        assert!(
            text.ends_with("Connection: close\r\n\r\n404 Not Found\n"),
            "{text}"
        );
    }

    #[test]
    fn a_partial_head_waits_then_times_out_with_408() {
        let (_d, mut cx) = setup("partial");
        let (server, client) = pair();
        rustix::io::write(&client, b"GET /a.txt HTT").unwrap();
        let mut c = Conn::new();
        c.open(server, &cx);
        assert_eq!(c.drive(&mut cx), Want::Read);
        assert!(!c.idle());
        c.time_out(&mut cx);
        c.close(&cx);
        assert!(read_all(&client).starts_with("HTTP/1.1 408 Request Timeout\r\n"));
    }

    #[test]
    fn stopping_closes_an_idle_connection_after_its_response() {
        let (_d, mut cx) = setup("stop");
        let (server, client) = pair();
        rustix::io::write(&client, b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut c = Conn::new();
        c.open(server, &cx);
        cx.stopping = true;
        assert_eq!(c.drive(&mut cx), Want::Close);
        c.close(&cx);
        let text = read_all(&client);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
    }

    #[test]
    fn open_errors_map_to_statuses() {
        assert_eq!(open_error_status(Errno::XDEV), Status::NotFound);
        assert_eq!(open_error_status(Errno::NOENT), Status::NotFound);
        assert_eq!(open_error_status(Errno::NXIO), Status::NotFound);
        assert_eq!(open_error_status(Errno::NODEV), Status::NotFound);
        assert_eq!(open_error_status(Errno::ACCESS), Status::Forbidden);
        assert_eq!(open_error_status(Errno::MFILE), Status::InternalError);
        assert_eq!(open_error_status(Errno::IO), Status::InternalError);
    }

    #[test]
    fn the_realpath_fallback_refuses_symlinks_out() {
        let (d, cx) = setup("fallback");
        std::os::unix::fs::symlink("/etc/passwd", d.0.join("out")).unwrap();
        let t = Tracer::default();
        assert!(sys::open_checked(t, &cx.root_path, c"a.txt").is_ok());
        assert_eq!(
            sys::open_checked(t, &cx.root_path, c"out").err(),
            Some(Errno::XDEV)
        );
        assert_eq!(
            sys::open_checked(t, &cx.root_path, c"nope").err(),
            Some(Errno::NOENT)
        );
    }
}
