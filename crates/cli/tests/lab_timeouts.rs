//! `sockscope lab serve`: timeouts, shutdown and closing, the same in every
//! process model. Each model runs in its own private network namespace
//! (see fixtures/lab/support.rs); the models of one test run in parallel
//! threads.
//!
//! - a client trickling a request body is cut after --header-timeout in
//!   total (it used to hold single and a fork child forever), and does not
//!   keep the server alive after SIGTERM beyond --grace;
//! - a client reading a large file slowly but steadily gets all of it
//!   (responses used to be cut after --send-timeout in total), while one
//!   that reads nothing is still cut;
//! - after SIGTERM new clients are refused at once (prefork and reuseport
//!   used to keep their listening sockets open until the end);
//! - a response to a request whose body is left unread is followed by FIN,
//!   not RST.

#[path = "common/root.rs"]
mod root;

#[path = "fixtures/lab/support.rs"]
mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::{PORT, Server};

const MODELS: [&[&str]; 5] = [
    &["single"],
    &["fork"],
    &["epoll"],
    &["prefork", "2"],
    &["reuseport", "2"],
];

/// Run `f` for every model at once, one thread each; panics name the model.
fn each_model(f: fn(&[&str])) {
    let handles: Vec<_> = MODELS
        .iter()
        .map(|m| (m, std::thread::spawn(move || f(m))))
        .collect();
    let mut failed = Vec::new();
    for (m, h) in handles {
        if h.join().is_err() {
            failed.push(m.join(" "));
        }
    }
    assert!(failed.is_empty(), "failed for: {failed:?}");
}

/// A client that declares a 64 KiB body and sends one byte of it every
/// `every`, until the server closes the connection or `limit` passes.
/// Returns how long the server kept it, or None if it never closed.
fn trickle_body(mut c: TcpStream, every: Duration, limit: Duration) -> Option<Duration> {
    c.write_all(b"POST /flag HTTP/1.1\r\nHost: x\r\nContent-Length: 65536\r\n\r\n")
        .unwrap();
    c.set_read_timeout(Some(every)).unwrap();
    let t0 = Instant::now();
    let mut buf = [0u8; 4096];
    while t0.elapsed() < limit {
        match c.read(&mut buf) {
            Ok(0) => return Some(t0.elapsed()),
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Some(t0.elapsed()),
        }
        if c.write_all(b"x").is_err() {
            return Some(t0.elapsed());
        }
    }
    None
}

/// The body trickle is cut after the header timeout (2 s) in every model,
/// and meanwhile other clients are served (single: one at a time).
#[test]
fn a_trickled_body_is_cut_after_the_header_timeout() {
    if root::skip_without_root() {
        return;
    }
    each_model(|m| {
        let s = Server::start(m, &["--header-timeout", "2"]);
        let c = s.connect();
        let slow = std::thread::spawn(move || {
            trickle_body(c, Duration::from_millis(300), Duration::from_secs(10))
        });
        std::thread::sleep(Duration::from_millis(200));
        let t0 = Instant::now();
        assert_eq!(s.status("/flag", &[]), "200", "{m:?}");
        let waited = t0.elapsed();
        let kept = slow.join().unwrap();
        let kept = kept.unwrap_or_else(|| panic!("{m:?}: a trickled body held on for 10 s"));
        assert!(
            kept >= Duration::from_millis(1800) && kept < Duration::from_secs(4),
            "{m:?}: the slow client was cut after {kept:?} (header timeout 2 s)"
        );
        assert!(
            waited < Duration::from_secs(4),
            "{m:?}: a normal client waited {waited:?}"
        );
    });
}

/// fork with --max-conns 2 and two body tricklers: other clients get 503
/// only until the tricklers are cut; SIGTERM with tricklers connected ends
/// the parent and every child within the grace period.
#[test]
fn fork_children_with_trickled_bodies_end_and_stop() {
    if root::skip_without_root() {
        return;
    }
    let mut s = Server::start(
        &["fork"],
        &["--header-timeout", "2", "--max-conns", "2", "--grace", "1"],
    );
    let start_tricklers = |s: &Server| -> Vec<std::thread::JoinHandle<Option<Duration>>> {
        (0..2)
            .map(|_| {
                let c = s.connect();
                std::thread::spawn(move || {
                    trickle_body(c, Duration::from_millis(300), Duration::from_secs(15))
                })
            })
            .collect()
    };
    let slow = start_tricklers(&s);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.status("/flag", &[]), "503");
    let t0 = Instant::now();
    let mut code = String::new();
    while t0.elapsed() < Duration::from_secs(8) {
        code = s.status("/flag", &[]);
        if code == "200" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(code, "200", "still refused after {:?}", t0.elapsed());
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    for h in slow {
        assert!(h.join().unwrap().is_some(), "a trickler was never cut");
    }

    // Again, then SIGTERM while they trickle.
    let slow = start_tricklers(&s);
    std::thread::sleep(Duration::from_millis(500));
    let kids = s.children();
    assert_eq!(kids.len(), 2, "{kids:?}");
    let t0 = Instant::now();
    let st = s
        .terminate(10)
        .expect("the fork server did not exit within 10 s of SIGTERM");
    let took = t0.elapsed();
    assert!(st.success(), "{st:?}");
    assert!(
        took < Duration::from_secs(3),
        "exit took {took:?} (grace 1 s)"
    );
    for k in kids {
        assert!(
            !std::path::Path::new(&format!("/proc/{k}")).exists(),
            "child {k} still exists"
        );
    }
    for h in slow {
        assert!(h.join().unwrap().is_some());
    }
}

/// Cap TCP buffer autotuning in the server's namespace at 256 KiB, so
/// that what a paced reader pulls out of its buffers in a burst is a
/// fraction of a second of its rate (with this machine's 32 MiB curl would
/// read seconds ahead, then pause for seconds).
fn small_tcp_buffers(s: &Server) {
    let pid = s.pid.to_string();
    for (knob, v) in [
        ("tcp_rmem", "4096 65536 262144"),
        ("tcp_wmem", "4096 16384 262144"),
    ] {
        let st = std::process::Command::new("nsenter")
            .args(["-t", &pid, "-n", "sh", "-c"])
            .arg(format!("echo '{v}' > /proc/sys/net/ipv4/{knob}"))
            .status()
            .unwrap();
        assert!(st.success(), "setting {knob} in the server's namespace");
    }
}

/// A client that reads `chunk` bytes every `every`, and counts the bytes
/// of the response body until EOF. Returns (body bytes, Content-Length,
/// how it ended).
fn paced_get(
    mut c: TcpStream,
    path: &str,
    chunk: usize,
    every: Duration,
) -> (usize, usize, std::io::Result<()>) {
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = Vec::new();
    let mut body = 0usize;
    let mut buf = vec![0u8; chunk];
    let end = loop {
        let mut got = 0;
        let r = loop {
            match c.read(&mut buf[got..]) {
                Ok(0) => break Some(Ok(())),
                Ok(n) => got += n,
                Err(e) => break Some(Err(e)),
            }
            if got == chunk {
                break None;
            }
        };
        if head.is_empty() || !head.windows(4).any(|w| w == b"\r\n\r\n") {
            head.extend_from_slice(&buf[..got]);
            if let Some(p) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                body = head.len() - (p + 4);
                head.truncate(p + 4);
            }
        } else {
            body += got;
        }
        if let Some(r) = r {
            break r;
        }
        std::thread::sleep(every);
    };
    let head = String::from_utf8_lossy(&head);
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (body, len, end)
}

/// 6 MiB read 64 KiB every 50 ms (about 5 s) with --send-timeout 1: the
/// response makes progress all along and must arrive whole (it used to be
/// cut once --send-timeout had passed in total). A client that reads
/// nothing is still cut after about a second.
#[test]
fn a_slow_steady_reader_gets_the_whole_file() {
    if root::skip_without_root() {
        return;
    }
    each_model(|m| {
        let s = Server::start(m, &["--send-timeout", "1"]);
        small_tcp_buffers(&s);
        let size = 6 << 20;
        let f = std::fs::File::create(s.root.0.join("www/huge.bin")).unwrap();
        f.set_len(size as u64).unwrap();
        let t0 = Instant::now();
        let (body, len, end) = paced_get(
            s.connect(),
            "/huge.bin",
            64 << 10,
            Duration::from_millis(50),
        );
        let took = t0.elapsed();
        assert_eq!(len, size, "{m:?}");
        assert!(end.is_ok(), "{m:?}: {end:?} after {body} bytes in {took:?}");
        assert_eq!(body, size, "{m:?}: cut after {took:?}");
        assert!(
            took > Duration::from_millis(2500),
            "{m:?}: not paced: {took:?}"
        );

        // A client that asks and does not read: cut once a second passes
        // without progress (the socket buffers fill first).
        let mut c = s.connect();
        c.write_all(b"GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        std::thread::sleep(Duration::from_secs(4));
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut n = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        let ended = loop {
            match c.read(&mut buf) {
                Ok(0) => break true,
                Ok(k) => n += k,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        assert!(ended, "{m:?}: a client that did not read was kept");
        assert!(n < size, "{m:?}: got {n} of {size}");
    });
}

/// SIGTERM with a request in flight: new clients are refused at once (the
/// listening sockets are closed at the start of the shutdown), and the
/// request in flight is still answered.
#[test]
fn after_sigterm_new_clients_are_refused_at_once() {
    if root::skip_without_root() {
        return;
    }
    each_model(|m| {
        let mut s = Server::start(m, &[]);
        // Every worker has its listener before the signal.
        if m.len() > 1 {
            let end = Instant::now() + Duration::from_secs(5);
            while s.children().len() < 2 && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let mut c = s.connect();
        c.write_all(b"GET /flag HTTP/1.1\r\nHost: x\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: kill(2) of our child.
        unsafe { libc::kill(s.pid as i32, libc::SIGTERM) };
        std::thread::sleep(Duration::from_millis(500));
        use sockscope::source::netns::{NetnsTarget, open, run_in};
        let ns = open(&NetnsTarget::Pid(s.pid)).unwrap();
        let late = run_in(&ns[0], || {
            TcpStream::connect_timeout(
                &std::net::SocketAddr::from(([127, 0, 0, 1], PORT)),
                Duration::from_secs(1),
            )
        })
        .unwrap();
        match late {
            Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{m:?}: {e}"),
            Ok(_) => panic!("{m:?}: a new client was let in after SIGTERM"),
        }
        c.write_all(b"\r\n").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got);
        let got = String::from_utf8_lossy(&got);
        assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{m:?}: {got:?}");
        let st = s.terminate(10).expect("no exit within 10 s");
        assert!(st.success(), "{m:?}: {st:?}");
    });
}

/// A request with a body the server does not read, and `Connection:
/// close`: the response ends with FIN (EOF), not RST, although most of the
/// body is still to come.
#[test]
fn an_unread_body_with_connection_close_ends_in_fin() {
    if root::skip_without_root() {
        return;
    }
    each_model(|m| {
        let s = Server::start(m, &[]);
        for _ in 0..3 {
            let mut c = s.connect();
            let mut req =
                b"POST /flag HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\nConnection: close\r\n\r\n"
                    .to_vec();
            // More than the server's first read takes (its 8 KiB buffer):
            // unread bytes wait in the socket when the response is done.
            req.extend_from_slice(&[b'b'; 20_000]);
            c.write_all(&req).unwrap();
            std::thread::sleep(Duration::from_millis(200));
            // More of the body arrives after the response: the server is
            // still reading (before, its close had answered with RST).
            let w = c.write_all(&[b'b'; 2000]);
            assert!(w.is_ok(), "{m:?}: sending the rest of the body: {w:?}");
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut got = Vec::new();
            let r = c.read_to_end(&mut got);
            let text = String::from_utf8_lossy(&got);
            assert!(
                text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
                "{m:?}: {text:?}"
            );
            assert!(
                text.contains("\r\nConnection: close\r\n"),
                "{m:?}: {text:?}"
            );
            assert!(
                text.ends_with("405 Method Not Allowed\n"),
                "{m:?}: {text:?}"
            );
            assert!(r.is_ok(), "{m:?}: the response ended in {r:?}, not EOF");
        }
        // And the server is still serving.
        assert_eq!(s.status("/flag", &[]), "200", "{m:?}");
    });
}
