//! HTTP/1.1 request heads and response heads, as pure functions over byte
//! slices (no I/O, no allocation in the parser).
//!
//! Limits: the request head (request line and header fields, up to and
//! including the empty line) must fit in [`MAX_HEAD`] bytes. When it does
//! not, a request line that has not even ended is answered 414 (URI Too
//! Long), otherwise 431 (Request Header Fields Too Large). Request bodies are
//! not used by a static file server; a declared body larger than
//! [`MAX_BODY`] is answered 413, a smaller one is read and thrown away so
//! the connection can be kept alive. `Transfer-Encoding` in a request is
//! answered 501 and the connection closed (no chunked request bodies), so
//! that a request body can never be mistaken for the next request.

use std::io::Write;

/// Longest request head accepted, in bytes.
pub const MAX_HEAD: usize = 8192;
/// Largest request body accepted (and discarded), in bytes.
pub const MAX_BODY: u64 = 64 * 1024;

/// Response statuses the server sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    MovedPermanently,
    BadRequest,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    ContentTooLarge,
    UriTooLong,
    HeaderFieldsTooLarge,
    InternalError,
    NotImplemented,
    Unavailable,
    VersionNotSupported,
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::MovedPermanently => 301,
            Status::BadRequest => 400,
            Status::Forbidden => 403,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::RequestTimeout => 408,
            Status::ContentTooLarge => 413,
            Status::UriTooLong => 414,
            Status::HeaderFieldsTooLarge => 431,
            Status::InternalError => 500,
            Status::NotImplemented => 501,
            Status::Unavailable => 503,
            Status::VersionNotSupported => 505,
        }
    }
    pub fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::MovedPermanently => "Moved Permanently",
            Status::BadRequest => "Bad Request",
            Status::Forbidden => "Forbidden",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::RequestTimeout => "Request Timeout",
            Status::ContentTooLarge => "Content Too Large",
            Status::UriTooLong => "URI Too Long",
            Status::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Status::InternalError => "Internal Server Error",
            Status::NotImplemented => "Not Implemented",
            Status::Unavailable => "Service Unavailable",
            Status::VersionNotSupported => "HTTP Version Not Supported",
        }
    }
    /// Whether the connection must be closed after this response: the
    /// request could not be framed, or the server gives up on the client.
    pub fn closes(self) -> bool {
        !matches!(
            self,
            Status::Ok
                | Status::MovedPermanently
                | Status::NotFound
                | Status::MethodNotAllowed
                | Status::Forbidden
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    /// Any other well-formed method: answered 405 with `Allow: GET, HEAD`.
    Other,
}

/// A parsed request head. Borrowed from the read buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: Method,
    /// The request target as sent (validated: visible ASCII only).
    pub target: &'a [u8],
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// Whether the client wants the connection kept open after the response.
    pub keep_alive: bool,
    /// Declared body length (0 when none).
    pub content_length: u64,
    /// Bytes of the buffer the head used (including leading empty lines
    /// and the final empty line).
    pub len: usize,
}

/// Position just past the empty line ending a head that starts at 0, if
/// the buffer holds a whole head. Lines end in LF, optionally preceded by CR.
fn head_end(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = b[i..].iter().position(|&c| c == b'\n') {
        let nl = i + p;
        let next = nl + 1;
        match b.get(next) {
            Some(b'\n') => return Some(next + 1),
            Some(b'\r') if b.get(next + 1) == Some(&b'\n') => return Some(next + 2),
            _ => {}
        }
        i = next;
        if i >= b.len() {
            break;
        }
    }
    None
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Parse a request head from the start of `buf`.
///
/// `Ok(None)`: not complete yet, read more. `Err(status)`: answer with
/// `status` and close the connection.
pub fn parse(buf: &[u8]) -> Result<Option<Request<'_>>, Status> {
    // Empty lines before the request line are ignored (RFC 9112 2.2).
    let skip = buf
        .iter()
        .position(|&c| c != b'\r' && c != b'\n')
        .unwrap_or(buf.len());
    let b = &buf[skip..];
    let Some(end) = head_end(b) else {
        if buf.len() >= MAX_HEAD {
            return Err(if b.contains(&b'\n') {
                Status::HeaderFieldsTooLarge
            } else {
                Status::UriTooLong
            });
        }
        return Ok(None);
    };
    let mut lines = b[..end].split(|&c| c == b'\n').map(|l| match l {
        [rest @ .., b'\r'] => rest,
        l => l,
    });
    let line = lines.next().unwrap_or(b"");
    if line.contains(&b'\r') {
        return Err(Status::BadRequest);
    }
    let mut parts = line.split(|&c| c == b' ');
    let (Some(m), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Status::BadRequest);
    };
    if m.is_empty() || m.len() > 32 || !m.iter().all(|&c| is_tchar(c)) {
        return Err(Status::BadRequest);
    }
    if target.is_empty() || !target.iter().all(|&c| (0x21..=0x7e).contains(&c)) {
        return Err(Status::BadRequest);
    }
    let minor = match version {
        b"HTTP/1.1" => 1,
        b"HTTP/1.0" => 0,
        [b'H', b'T', b'T', b'P', b'/', a, b'.', c] if a.is_ascii_digit() && c.is_ascii_digit() => {
            return Err(Status::VersionNotSupported);
        }
        _ => return Err(Status::BadRequest),
    };
    let method = match m {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        _ => Method::Other,
    };

    let mut hosts = 0;
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut close = false;
    let mut ka = false;
    for l in lines {
        if l.is_empty() {
            break;
        }
        if l[0] == b' ' || l[0] == b'\t' {
            return Err(Status::BadRequest); // obsolete line folding
        }
        let Some(colon) = l.iter().position(|&c| c == b':') else {
            return Err(Status::BadRequest);
        };
        let name = &l[..colon];
        if name.is_empty() || !name.iter().all(|&c| is_tchar(c)) {
            return Err(Status::BadRequest);
        }
        let value = trim_ows(&l[colon + 1..]);
        if value.iter().any(|&c| (c < 0x20 && c != b'\t') || c == 0x7f) {
            return Err(Status::BadRequest);
        }
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
                return Err(Status::BadRequest);
            }
            let n = if value.len() > 18 {
                u64::MAX
            } else {
                value
                    .iter()
                    .fold(0u64, |n, &c| n * 10 + u64::from(c - b'0'))
            };
            if content_length.is_some_and(|p| p != n) {
                return Err(Status::BadRequest);
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for tok in value.split(|&c| c == b',') {
                let tok = trim_ows(tok);
                if tok.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if tok.eq_ignore_ascii_case(b"keep-alive") {
                    ka = true;
                }
            }
        }
    }
    if hosts > 1 || (minor == 1 && hosts == 0) {
        return Err(Status::BadRequest);
    }
    if chunked {
        return Err(Status::NotImplemented);
    }
    let content_length = content_length.unwrap_or(0);
    if content_length > MAX_BODY {
        return Err(Status::ContentTooLarge);
    }
    Ok(Some(Request {
        method,
        target,
        minor,
        keep_alive: !close && (minor == 1 || ka),
        content_length,
        len: skip + end,
    }))
}

/// How the response tells the client about the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnHeader {
    /// HTTP/1.1 default: no header.
    None,
    /// `Connection: keep-alive` (to an HTTP/1.0 client that asked for it).
    KeepAlive,
    /// `Connection: close`.
    Close,
}

impl ConnHeader {
    /// The header for a request of HTTP/1.`minor` that will (not) be kept.
    pub fn for_request(minor: u8, keep: bool) -> ConnHeader {
        match (keep, minor) {
            (false, _) => ConnHeader::Close,
            (true, 0) => ConnHeader::KeepAlive,
            (true, _) => ConnHeader::None,
        }
    }
}

/// A response head to build.
#[derive(Clone, Copy, Debug)]
pub struct Head<'a> {
    pub status: Status,
    pub content_type: &'a str,
    pub content_length: u64,
    pub conn: ConnHeader,
    /// `Location` (301), as raw bytes already valid in a header.
    pub location: Option<(&'a [u8], &'a [u8])>,
    /// IMF-fixdate for the Date header (29 bytes).
    pub date: &'a [u8],
}

/// Append a response head (status line, headers, empty line) to `out`.
pub fn write_head(out: &mut Vec<u8>, h: &Head<'_>) {
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nServer: sockscope-lab\r\nDate: ",
        h.status.code(),
        h.status.reason()
    );
    out.extend_from_slice(h.date);
    let _ = write!(
        out,
        "\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
        h.content_type, h.content_length
    );
    if h.status == Status::MethodNotAllowed {
        out.extend_from_slice(b"Allow: GET, HEAD\r\n");
    }
    if h.status == Status::Unavailable {
        out.extend_from_slice(b"Retry-After: 1\r\n");
    }
    if let Some((a, b)) = h.location {
        out.extend_from_slice(b"Location: ");
        push_local_path(out, a);
        out.extend_from_slice(b);
        out.extend_from_slice(b"\r\n");
    }
    match h.conn {
        ConnHeader::None => {}
        ConnHeader::KeepAlive => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        ConnHeader::Close => out.extend_from_slice(b"Connection: close\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// Append `path` (a raw request path, visible ASCII) as a path that can
/// only be read as one on this server: a leading run of `/` becomes one `/`
/// (`//sub` would be read as a network-path reference to the host `sub`),
/// and `\` is sent as `%5C` (browsers read `/\sub` as `//sub`; the server
/// decodes `%5C` back to the same byte, so it names the same file).
pub fn push_local_path(out: &mut Vec<u8>, path: &[u8]) {
    let slashes = path.iter().take_while(|&&c| c == b'/').count();
    if slashes > 0 {
        out.push(b'/');
    }
    for &c in &path[slashes..] {
        if c == b'\\' {
            out.extend_from_slice(b"%5C");
        } else {
            out.push(c);
        }
    }
}

/// The body of an error response: `404 Not Found\n`.
pub fn error_body(out: &mut Vec<u8>, s: Status) {
    let _ = writeln!(out, "{} {}", s.code(), s.reason());
}

/// Length of [`error_body`] for `s`.
pub fn error_body_len(s: Status) -> u64 {
    // "NNN " + reason + "\n"
    (4 + s.reason().len() + 1) as u64
}

/// The Date header value, recomputed at most once a second.
#[derive(Clone, Debug)]
pub struct DateCache {
    secs: u64,
    text: [u8; 29],
}

impl Default for DateCache {
    fn default() -> Self {
        DateCache {
            secs: u64::MAX,
            text: [b' '; 29],
        }
    }
}

impl DateCache {
    /// The IMF-fixdate for now.
    pub fn get(&mut self) -> &[u8] {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if secs != self.secs {
            self.secs = secs;
            self.text = imf_fixdate(secs);
        }
        &self.text
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` for seconds since the Unix epoch.
pub fn imf_fixdate(secs: u64) -> [u8; 29] {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    let mut out = [0u8; 29];
    let mut w = &mut out[..];
    let _ = write!(
        w,
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    out
}

/// Proleptic Gregorian (year, month 1-12, day 1-31) of a day count since
/// 1970-01-01. Works in 400-year eras of 146097 days, with years starting
/// on 1 March so the leap day falls at the end.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from 1 March
    let mp = (5 * doy + 2) / 153; // month from March [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_cannot_name_another_host() {
        let loc = |p: &[u8]| {
            let mut out = Vec::new();
            push_local_path(&mut out, p);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(loc(b"/sub"), "/sub");
        assert_eq!(loc(b"//sub"), "/sub");
        assert_eq!(loc(b"///evil.example/x"), "/evil.example/x");
        assert_eq!(loc(b"/\\evil.example"), "/%5Cevil.example");
        assert_eq!(loc(b"/a//b\\c"), "/a//b%5Cc");
        let mut out = Vec::new();
        write_head(
            &mut out,
            &Head {
                status: Status::MovedPermanently,
                content_type: "text/plain",
                content_length: 0,
                conn: ConnHeader::None,
                location: Some((b"//sub", b"/")),
                date: &[b' '; 29],
            },
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\r\nLocation: /sub/\r\n"), "{text}");
    }

    fn ok(b: &[u8]) -> Request<'_> {
        parse(b).unwrap().unwrap()
    }

    #[test]
    fn simple_get_keeps_alive_in_1_1() {
        let r = ok(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\nGET /next");
        assert_eq!(r.method, Method::Get);
        assert_eq!(r.target, b"/index.html");
        assert_eq!(r.minor, 1);
        assert!(r.keep_alive);
        assert_eq!(r.content_length, 0);
        assert_eq!(r.len, 37);
    }

    #[test]
    fn connection_tokens_and_http_1_0() {
        assert!(!ok(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n").keep_alive);
        assert!(!ok(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(ok(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
        assert!(!ok(b"HEAD / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").keep_alive);
        assert_eq!(ok(b"HEAD / HTTP/1.0\n\n").method, Method::Head);
    }

    #[test]
    fn incomplete_heads_ask_for_more() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
        assert_eq!(parse(b"G"), Ok(None));
        assert_eq!(parse(b""), Ok(None));
        assert_eq!(parse(b"\r\n\r\n"), Ok(None));
    }

    #[test]
    fn leading_empty_lines_are_skipped_and_counted() {
        let r = ok(b"\r\n\r\nGET / HTTP/1.0\r\n\r\n");
        assert_eq!(r.len, 22);
        assert_eq!(r.target, b"/");
    }

    #[test]
    fn malformed_requests_are_400() {
        for b in [
            &b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"GET / HTTP/1.1 x\r\nHost: x\r\n\r\n",
            b"GET /\r\n\r\n",
            b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / FTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n", // no Host in 1.1
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\x01y\r\n\r\n",
            b"GET /a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\rX\r\nHost: x\r\n\r\n",
        ] {
            assert_eq!(
                parse(b),
                Err(Status::BadRequest),
                "{}",
                String::from_utf8_lossy(b)
            );
        }
    }

    #[test]
    fn other_statuses() {
        assert_eq!(
            parse(b"GET / HTTP/2.0\r\n\r\n"),
            Err(Status::VersionNotSupported)
        );
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(Status::NotImplemented)
        );
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 65537\r\n\r\n"),
            Err(Status::ContentTooLarge)
        );
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
            Err(Status::ContentTooLarge)
        );
        let r = ok(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 65536\r\n\r\n");
        assert_eq!((r.method, r.content_length), (Method::Other, 65536));
        assert_eq!(
            ok(b"DELETE /x HTTP/1.1\r\nHost: x\r\n\r\n").method,
            Method::Other
        );
    }

    #[test]
    fn full_buffer_without_a_head_is_414_or_431() {
        let mut line = b"GET /".to_vec();
        line.resize(MAX_HEAD, b'a');
        assert_eq!(parse(&line), Err(Status::UriTooLong));
        let mut hdrs = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        hdrs.resize(MAX_HEAD, b'a');
        assert_eq!(parse(&hdrs), Err(Status::HeaderFieldsTooLarge));
        // One byte less is simply incomplete.
        assert_eq!(parse(&hdrs[..MAX_HEAD - 1]), Ok(None));
    }

    #[test]
    fn response_heads() {
        let mut out = Vec::new();
        write_head(
            &mut out,
            &Head {
                status: Status::MethodNotAllowed,
                content_type: "text/plain; charset=utf-8",
                content_length: error_body_len(Status::MethodNotAllowed),
                conn: ConnHeader::for_request(0, true),
                location: None,
                date: b"Sun, 06 Nov 1994 08:49:37 GMT",
            },
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 405 Method Not Allowed\r\nServer: sockscope-lab\r\n\
Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Length: 23\r\nAllow: GET, HEAD\r\nConnection: keep-alive\r\n\r\n"
        );
        let mut b = Vec::new();
        error_body(&mut b, Status::MethodNotAllowed);
        assert_eq!(b, b"405 Method Not Allowed\n");
        assert_eq!(b.len() as u64, error_body_len(Status::MethodNotAllowed));
    }

    #[test]
    fn dates() {
        assert_eq!(&imf_fixdate(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&imf_fixdate(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&imf_fixdate(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(
            &imf_fixdate(1_767_225_599),
            b"Wed, 31 Dec 2025 23:59:59 GMT"
        );
        assert_eq!(DateCache::default().get().len(), 29);
    }
}
