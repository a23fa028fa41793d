//! From a request target to a path relative to the served root, and from a
//! file name to its Content-Type. Pure functions.
//!
//! The target is percent-decoded *before* it is split into segments, so
//! `%2e%2e%2f` is seen as the `..` segment it is. Any `..` segment is
//! refused (400): the server never walks up, and the kernel (openat2 with
//! RESOLVE_BENEATH) refuses whatever a symlink would add. A decoded NUL byte
//! is refused too (it would cut the path short at the syscall).

use crate::http::Status;

/// Where the path part of a target ends and what it decoded to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The path part of the raw target (`/a/b` of `/a/b?x=1`), for a
    /// `Location` header.
    pub raw_path: (usize, usize),
    /// The decoded path ended in `/`: a directory was asked for.
    pub dir: bool,
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decode `target` into `out`: a NUL-terminated path relative to the root,
/// `.` for the root itself, segments joined by single `/`.
pub fn decode(target: &[u8], out: &mut Vec<u8>) -> Result<Decoded, Status> {
    out.clear();
    // absolute-form (`http://host/path`) is accepted; the authority is ignored.
    let start = if target.first() == Some(&b'/') {
        0
    } else {
        let lower = |p: &[u8]| target.len() >= p.len() && target[..p.len()].eq_ignore_ascii_case(p);
        let after = if lower(b"http://") {
            7
        } else if lower(b"https://") {
            8
        } else {
            return Err(Status::BadRequest);
        };
        match target[after..].iter().position(|&c| c == b'/') {
            Some(p) => after + p,
            None => target.len(),
        }
    };
    let end = target[start..]
        .iter()
        .position(|&c| c == b'?' || c == b'#')
        .map_or(target.len(), |p| start + p);
    let path = &target[start..end];

    // Percent-decode.
    let mut i = 0;
    while i < path.len() {
        let c = path[i];
        if c == b'%' {
            let (Some(h), Some(l)) = (
                path.get(i + 1).copied().and_then(hex),
                path.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(Status::BadRequest);
            };
            let b = h << 4 | l;
            if b == 0 {
                return Err(Status::BadRequest);
            }
            out.push(b);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    let dir = out.is_empty() || out.last() == Some(&b'/');

    // Normalise segments in place (the result is never longer).
    let n = out.len();
    let (mut r, mut w) = (0, 0);
    while r < n {
        let seg_end = out[r..n]
            .iter()
            .position(|&c| c == b'/')
            .map_or(n, |p| r + p);
        let seg = r..seg_end;
        r = seg_end + 1;
        match &out[seg.clone()] {
            b"" | b"." => continue,
            b".." => return Err(Status::BadRequest),
            _ => {}
        }
        if w > 0 {
            out[w] = b'/';
            w += 1;
        }
        out.copy_within(seg.clone(), w);
        w += seg.len();
    }
    out.truncate(w);
    if out.is_empty() {
        out.push(b'.');
    }
    out.push(0);
    Ok(Decoded {
        raw_path: (start, end),
        dir,
    })
}

/// Turn a decoded directory path into its `index.html` (keeps the NUL).
pub fn push_index(out: &mut Vec<u8>) {
    out.pop(); // NUL
    if out.as_slice() == b"." {
        out.clear();
    } else {
        out.push(b'/');
    }
    out.extend_from_slice(b"index.html\0");
}

/// Content-Type for a file name, by extension (case-insensitive).
pub fn content_type(path: &[u8]) -> &'static str {
    let path = path.strip_suffix(b"\0").unwrap_or(path);
    let name = path.rsplit(|&c| c == b'/').next().unwrap_or(path);
    let Some(dot) = name.iter().rposition(|&c| c == b'.') else {
        return "application/octet-stream";
    };
    let ext = &name[dot + 1..];
    let mut lower = [0u8; 8];
    if ext.len() > lower.len() {
        return "application/octet-stream";
    }
    for (d, s) in lower.iter_mut().zip(ext) {
        *d = s.to_ascii_lowercase();
    }
    match &lower[..ext.len()] {
        b"html" | b"htm" => "text/html; charset=utf-8",
        b"css" => "text/css; charset=utf-8",
        b"js" | b"mjs" => "text/javascript; charset=utf-8",
        b"json" => "application/json",
        b"txt" | b"text" | b"log" | b"md" => "text/plain; charset=utf-8",
        b"csv" => "text/csv; charset=utf-8",
        b"xml" => "application/xml",
        b"svg" => "image/svg+xml",
        b"png" => "image/png",
        b"jpg" | b"jpeg" => "image/jpeg",
        b"gif" => "image/gif",
        b"webp" => "image/webp",
        b"ico" => "image/x-icon",
        b"avif" => "image/avif",
        b"wasm" => "application/wasm",
        b"pdf" => "application/pdf",
        b"zip" => "application/zip",
        b"gz" => "application/gzip",
        b"tar" => "application/x-tar",
        b"mp4" => "video/mp4",
        b"webm" => "video/webm",
        b"mp3" => "audio/mpeg",
        b"woff" => "font/woff",
        b"woff2" => "font/woff2",
        b"ttf" => "font/ttf",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(t: &str) -> Result<(String, bool), Status> {
        let mut v = Vec::new();
        let d = decode(t.as_bytes(), &mut v)?;
        assert_eq!(v.pop(), Some(0));
        Ok((String::from_utf8(v).unwrap(), d.dir))
    }

    #[test]
    fn plain_paths() {
        assert_eq!(dec("/"), Ok((".".into(), true)));
        assert_eq!(dec("/index.html"), Ok(("index.html".into(), false)));
        assert_eq!(dec("/a//b/./c/"), Ok(("a/b/c".into(), true)));
        assert_eq!(dec("/a/b?x=../../etc"), Ok(("a/b".into(), false)));
        assert_eq!(dec("/a%20b%2Fc"), Ok(("a b/c".into(), false)));
        assert_eq!(dec("/flag"), Ok(("flag".into(), false)));
        assert_eq!(dec("http://h:80/x/y"), Ok(("x/y".into(), false)));
        assert_eq!(dec("HTTPS://h"), Ok((".".into(), true)));
    }

    #[test]
    fn traversal_and_bad_encodings_are_refused() {
        for t in [
            "/..",
            "/../etc/passwd",
            "/a/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/%2E%2E%2Fetc%2Fpasswd",
            "/a/%2e%2e%2f%2e%2e%2fetc",
            "/..%2f..%2fetc",
            "/a%00b",
            "/a%zz",
            "/a%2",
            "*",
            "example.com:80",
            "ftp://x/y",
        ] {
            assert_eq!(dec(t), Err(Status::BadRequest), "{t}");
        }
        // Dots that are not a whole segment are ordinary names.
        assert_eq!(dec("/..a/b.."), Ok(("..a/b..".into(), false)));
    }

    #[test]
    fn location_range_and_index() {
        let mut v = Vec::new();
        let t = b"http://h/sub?q=1";
        let d = decode(t, &mut v).unwrap();
        assert_eq!(&t[d.raw_path.0..d.raw_path.1], b"/sub");
        push_index(&mut v);
        assert_eq!(v, b"sub/index.html\0");
        decode(b"/", &mut v).unwrap();
        push_index(&mut v);
        assert_eq!(v, b"index.html\0");
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type(b"a/index.HTML\0"), "text/html; charset=utf-8");
        assert_eq!(content_type(b"x.png"), "image/png");
        assert_eq!(content_type(b"flag"), "application/octet-stream");
        assert_eq!(content_type(b"dir.d/file"), "application/octet-stream");
        assert_eq!(content_type(b"a.verylongext"), "application/octet-stream");
        assert_eq!(content_type(b"notes.txt"), "text/plain; charset=utf-8");
    }
}
