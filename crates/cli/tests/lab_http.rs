//! `sockscope lab serve` against a real client: curl (Debian) in the
//! server's own private network namespace, for every process model. Each
//! model gets the same battery: GET, keep-alive, HEAD, 301, 404, 405,
//! traversal attempts (plain, percent-encoded, symlinks pointing out),
//! oversized request line (414) and header (431), a body over the limit
//! (413), a client sending one byte a second (408), 200 concurrent clients,
//! no zombie children, and SIGTERM finishing a request in flight.

#[path = "common/root.rs"]
mod root;

#[path = "fixtures/lab/support.rs"]
mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};
use support::{PORT, Server, WWW, zombies_of};

fn text(o: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{WWW}/{name}")).unwrap()
}

/// GET, HEAD, keep-alive, directories, 404, 405.
fn basics(s: &Server) {
    let o = s.curl(&["-i", &s.url("/")]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(
        out.contains("\r\nContent-Type: text/html; charset=utf-8\r\n"),
        "{out}"
    );
    let body = fixture("index.html");
    assert!(
        out.contains(&format!("\r\nContent-Length: {}\r\n", body.len())),
        "{out}"
    );
    assert!(out.ends_with(&format!("\r\n\r\n{body}")), "{out}");

    // Two URLs on one connection.
    let o = s.curl(&["-v", &s.url("/flag"), &s.url("/style.css")]);
    let (out, err) = text(&o);
    assert_eq!(out, format!("{}{}", fixture("flag"), fixture("style.css")));
    assert!(err.contains("Re-using existing connection"), "{err}");
    assert_eq!(err.matches("< HTTP/1.1 200 OK").count(), 2, "{err}");
    assert!(
        err.contains("< Content-Type: text/css; charset=utf-8"),
        "{err}"
    );

    // HEAD: the headers of GET, no body.
    let o = s.curl(&["-I", &s.url("/flag")]);
    let (out, _) = text(&o);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(
        out.contains(&format!(
            "\r\nContent-Length: {}\r\n",
            fixture("flag").len()
        )),
        "{out}"
    );
    assert!(out.ends_with("\r\n\r\n"), "HEAD must have no body: {out:?}");

    // HTTP/1.0 without keep-alive: the server closes.
    let o = s.curl(&["-0", "-i", &s.url("/flag")]);
    let (out, _) = text(&o);
    assert!(out.contains("\r\nConnection: close\r\n"), "{out}");

    // A big file, sent with sendfile, arrives intact.
    let o = s.curl(&[&s.url("/big.bin")]);
    assert_eq!(
        o.stdout,
        std::fs::read(s.root.0.join("www/big.bin")).unwrap(),
        "big.bin differs"
    );

    // Directories.
    assert_eq!(s.status("/sub", &[]), "301");
    let o = s.curl(&["-i", &s.url("/sub")]);
    assert!(
        text(&o).0.contains("\r\nLocation: /sub/\r\n"),
        "{}",
        text(&o).0
    );
    let o = s.curl(&[&s.url("/sub/")]);
    assert_eq!(text(&o).0, fixture("sub/index.html"));
    // A symlink that stays inside the root is followed.
    let o = s.curl(&[&s.url("/inside")]);
    assert_eq!(text(&o).0, fixture("flag"));

    assert_eq!(s.status("/no/such/file", &[]), "404");
    assert_eq!(s.status("/", &["-X", "POST", "-d", "x=1"]), "405");
    let o = s.curl(&["-i", "-X", "DELETE", &s.url("/flag")]);
    let (out, _) = text(&o);
    assert!(
        out.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{out}"
    );
    assert!(out.contains("\r\nAllow: GET, HEAD\r\n"), "{out}");
}

/// `//sub` is redirected to `/sub/`, never to `//sub/` (which a browser
/// reads as the host `sub`); a UNIX socket, a FIFO and a device in the root
/// are not files: 404, not 500.
fn special_paths(s: &Server) {
    for path in ["//sub", "///sub", "http://127.0.0.1:8080//sub"] {
        let o = s.curl(&["--path-as-is", "-i", "--request-target", path, &s.url("/")]);
        let (out, err) = text(&o);
        assert!(out.starts_with("HTTP/1.1 301 "), "{path}: {out}{err}");
        assert!(out.contains("\r\nLocation: /sub/\r\n"), "{path}: {out}");
    }
    let www = s.root.0.join("www");
    let _sock = std::os::unix::net::UnixListener::bind(www.join("sock")).unwrap();
    let fifo =
        std::ffi::CString::new(www.join("fifo").into_os_string().into_encoded_bytes()).unwrap();
    let null =
        std::ffi::CString::new(www.join("null").into_os_string().into_encoded_bytes()).unwrap();
    let nodrv =
        std::ffi::CString::new(www.join("nodrv").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: mkfifo/mknod with valid C strings (the tests run as root).
    unsafe {
        assert_eq!(libc::mkfifo(fifo.as_ptr(), 0o644), 0);
        assert_eq!(
            libc::mknod(null.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)),
            0
        );
        // A block device number no driver has.
        assert_eq!(
            libc::mknod(
                nodrv.as_ptr(),
                libc::S_IFBLK | 0o600,
                libc::makedev(4095, 4095)
            ),
            0
        );
    }
    for path in ["/sock", "/fifo"] {
        assert_eq!(s.status(path, &[]), "404", "{path}");
    }
    // Devices: 404, or 403 where the file system is mounted nodev (EACCES).
    for path in ["/null", "/nodrv"] {
        let code = s.status(path, &[]);
        assert!(code == "404" || code == "403", "{path}: {code}");
    }
    for name in ["sock", "fifo", "null", "nodrv"] {
        let _ = std::fs::remove_file(www.join(name));
    }
}

/// Nothing outside the root is ever served.
fn traversal(s: &Server) {
    for (path, want) in [
        ("/../../../etc/passwd", "400"),
        ("/sub/../../etc/passwd", "400"),
        ("/%2e%2e/%2e%2e/etc/passwd", "400"),
        ("/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "400"),
        ("/sub/..%2f..%2fetc%2fpasswd", "400"),
        ("/%2E%2E%2Fetc%2Fpasswd", "400"),
        ("/flag%00.html", "400"),
        ("/escape", "404"),
        ("/escape-dir/passwd", "404"),
        ("/escape-dir/", "404"),
    ] {
        let url = s.url(path);
        let o = s.curl(&["--path-as-is", "-w", "\n%{http_code}", &url]);
        let (out, _) = text(&o);
        let code = out.rsplit('\n').next().unwrap_or("");
        assert_eq!(code, want, "{path}: {out}");
        assert!(
            !out.contains("root:"),
            "{path} served a file outside the root: {out}"
        );
    }
}

/// 414, 431, 413.
fn limits(s: &Server) {
    let long = format!("/{}", "a".repeat(9000));
    assert_eq!(s.status(&long, &[]), "414");
    let hdr = format!("X-Big: {}", "b".repeat(9000));
    assert_eq!(s.status("/flag", &["-H", &hdr]), "431");
    let body = "c".repeat(70_000);
    assert_eq!(
        s.status("/flag", &["--data-binary", &body, "-H", "Expect:"]),
        "413"
    );
    // Still serving afterwards.
    assert_eq!(s.status("/flag", &[]), "200");
}

/// A client that sends one byte a second is cut off once the header
/// timeout (2 s here) has passed, with a 408.
fn slow_client(s: &Server) {
    let mut c = s.connect();
    c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let req = b"GET /flag HTTP/1.1\r\nHost: x\r\n\r\n";
    let t0 = Instant::now();
    let mut got = Vec::new();
    for b in req.iter() {
        if c.write_all(&[*b]).is_err() {
            break;
        }
        let mut buf = [0u8; 512];
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(1000));
    }
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    got.extend_from_slice(&rest);
    let el = t0.elapsed();
    let got = String::from_utf8_lossy(&got);
    assert!(
        got.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "slow client got {got:?} after {el:?}"
    );
    assert!(el < Duration::from_secs(6), "cut off only after {el:?}");
    assert!(
        el >= Duration::from_millis(1900),
        "cut off too early: {el:?}"
    );
}

/// 200 clients at once, all answered 200.
fn concurrent(s: &Server) {
    let cfg = s.root.0.join("urls.txt");
    let mut t = String::new();
    for i in 0..200 {
        t.push_str(&format!(
            "url = \"http://127.0.0.1:{PORT}/flag?n={i}\"\noutput = \"/dev/null\"\n"
        ));
    }
    std::fs::write(&cfg, t).unwrap();
    let cfgs = cfg.display().to_string();
    let o = s.curl(&[
        "-Z",
        "--parallel-max",
        "200",
        "--parallel-immediate",
        "-K",
        &cfgs,
        "-w",
        "%{http_code}\n",
    ]);
    let (out, err) = text(&o);
    let codes: Vec<&str> = out.lines().collect();
    assert_eq!(codes.len(), 200, "{err}");
    assert!(codes.iter().all(|c| *c == "200"), "{out}");
}

/// No child is left a zombie once the work is done.
fn no_zombies(s: &Server) {
    let end = Instant::now() + Duration::from_secs(3);
    loop {
        let z = zombies_of(s.pid);
        if z.is_empty() {
            break;
        }
        assert!(Instant::now() < end, "zombie children of {}: {z:?}", s.pid);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM while a request is half sent: the request is answered (with
/// Connection: close), then the server and its children exit 0.
fn sigterm(s: &mut Server) {
    let mut c = s.connect();
    c.write_all(b"GET /flag HTTP/1.1\r\nHost: x\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let kids = s.children();
    // SAFETY: kill(2) of our child.
    unsafe { libc::kill(s.pid as i32, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(300));
    c.write_all(b"\r\n").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got:?}");
    assert!(got.contains("\r\nConnection: close\r\n"), "{got:?}");
    assert!(got.ends_with(&fixture("flag")), "{got:?}");
    let st = support::wait_timeout(&mut s.child, Duration::from_secs(10))
        .expect("the server did not exit within 10 s of SIGTERM");
    assert!(st.success(), "exit status {st:?}");
    for k in kids {
        assert!(
            !std::path::Path::new(&format!("/proc/{k}")).exists(),
            "child {k} still exists"
        );
    }
}

fn battery(model: &[&str]) {
    let mut s = Server::start(model, &["--header-timeout", "2"]);
    basics(&s);
    special_paths(&s);
    traversal(&s);
    limits(&s);
    slow_client(&s);
    concurrent(&s);
    no_zombies(&s);
    sigterm(&mut s);
}

#[test]
fn model_single() {
    if root::skip_without_root() {
        return;
    }
    battery(&["single"]);
}

#[test]
fn model_fork() {
    if root::skip_without_root() {
        return;
    }
    battery(&["fork"]);
}

#[test]
fn model_prefork_2() {
    if root::skip_without_root() {
        return;
    }
    battery(&["prefork", "2"]);
}

#[test]
fn model_reuseport_2() {
    if root::skip_without_root() {
        return;
    }
    battery(&["reuseport", "2"]);
}

#[test]
fn model_epoll() {
    if root::skip_without_root() {
        return;
    }
    battery(&["epoll"]);
}

/// prefork and reuseport: the master and N workers, and the listening
/// sockets as the kernel shows them (one shared, or one per worker).
#[test]
fn workers_and_their_listeners() {
    if root::skip_without_root() {
        return;
    }
    use sockscope::model::State;
    use sockscope::source::netns::{NetnsTarget, open};
    use sockscope::source::{self, Kind, Request, SourceChoice};
    for (model, listeners) in [(["prefork", "3"], 1usize), (["reuseport", "3"], 3)] {
        let s = Server::start(&model, &[]);
        let end = Instant::now() + Duration::from_secs(5);
        while s.children().len() < 3 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(s.children().len(), 3, "{model:?}: workers");
        let ns = open(&NetnsTarget::Pid(s.pid)).unwrap();
        let req = Request {
            kinds: vec![Kind::Tcp],
            ipv4: true,
            ipv6: true,
            states: sockscope::model::StateSet::of(&[State::Listen]),
            source: SourceChoice::Auto,
            ext: Default::default(),
            bytecode: None,
        };
        let socks = source::collect(&ns[0], &req, false).unwrap().sockets;
        assert_eq!(socks.len(), listeners, "{model:?}: {socks:?}");
        assert!(socks.iter().all(|s| s.local.port() == Some(PORT)));
        assert!(socks.iter().all(|s| s.send_q == Some(511)));
    }
}

/// --trace-syscalls prints the seed's story in order, with fd numbers, and
/// a keep-alive connection is accepted once for two requests.
#[test]
fn trace_syscalls_in_seed_order() {
    if root::skip_without_root() {
        return;
    }
    let s = Server::start(&["single"], &["--trace-syscalls"]);
    let o = s.curl(&[&s.url("/flag"), &s.url("/index.html")]);
    assert!(o.status.success());
    // The close of the connection comes right after curl disconnects.
    let end = Instant::now() + Duration::from_secs(5);
    let lines = loop {
        let l = s.stdout_lines();
        if l.iter().filter(|l| l.contains("close(")).count() >= 4 || Instant::now() > end {
            break l;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let prefix = format!("[pid {}] ", s.pid);
    let trace: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix(&prefix))
        .collect();
    let pos = |name: &str| {
        trace
            .iter()
            .position(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in trace: {trace:#?}"))
    };
    let order = [
        pos("socket(AF_INET, SOCK_STREAM"),
        pos("setsockopt("),
        pos("bind("),
        pos("listen("),
        pos("accept4("),
        pos("read("),
        pos("sendto("),
        pos("sendfile("),
    ];
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "{order:?}: {trace:#?}"
    );
    assert_eq!(
        trace.iter().filter(|l| l.starts_with("accept4(")).count(),
        1,
        "two requests on one keep-alive connection: one accept4"
    );
    // accept4 returned fd N; the requests are read from N and N is closed.
    let acc = trace[order[4]];
    let n: i32 = acc.rsplit(" = ").next().unwrap().parse().unwrap();
    assert_eq!(
        trace
            .iter()
            .filter(|l| l.starts_with(&format!("read({n}, \"GET /")))
            .count(),
        2,
        "{trace:#?}"
    );
    assert!(
        trace.iter().any(|l| *l == format!("close({n}) = 0")),
        "{trace:#?}"
    );
    let listen_fd: i32 = trace[order[0]]
        .rsplit(" = ")
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(trace[order[3]], format!("listen({listen_fd}, 511) = 0"));
    assert!(trace[order[4]].starts_with(&format!("accept4({listen_fd}, 127.0.0.1:")));
}

/// --pause-accept: the accept queue fills to backlog+1 and stays full.
#[test]
fn pause_accept_fills_the_accept_queue() {
    if root::skip_without_root() {
        return;
    }
    use sockscope::model::State;
    use sockscope::source::netns::{NetnsTarget, open, run_in};
    use sockscope::source::{self, Kind, Request, SourceChoice};
    let s = Server::start(&["epoll"], &["--pause-accept", "--backlog", "2"]);
    let ns = open(&NetnsTarget::Pid(s.pid)).unwrap();
    // Three handshakes complete; the fourth client's SYN is dropped.
    let clients: Vec<std::net::TcpStream> = (0..3).map(|_| s.connect()).collect();
    let fourth = run_in(&ns[0], || {
        std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], PORT)),
            Duration::from_millis(300),
        )
    })
    .unwrap();
    assert!(fourth.is_err(), "a fourth connection got in: {fourth:?}");
    let req = Request {
        kinds: vec![Kind::Tcp],
        ipv4: true,
        ipv6: true,
        states: sockscope::model::StateSet::of(&[State::Listen]),
        source: SourceChoice::Auto,
        ext: Default::default(),
        bytecode: None,
    };
    let socks = source::collect(&ns[0], &req, false).unwrap().sockets;
    assert_eq!(socks.len(), 1);
    assert_eq!((socks[0].recv_q, socks[0].send_q), (Some(3), Some(2)));
    drop(clients);
}

/// More connections than --max-conns: the extra one is answered 503 with
/// Retry-After, in the epoll loop and in the fork parent.
#[test]
fn over_max_conns_is_503() {
    if root::skip_without_root() {
        return;
    }
    for model in ["epoll", "fork"] {
        let s = Server::start(&[model], &["--max-conns", "1"]);
        let held = s.connect();
        // Let the server take the first connection (the fork parent forks).
        std::thread::sleep(Duration::from_millis(300));
        let o = s.curl(&["-i", &s.url("/flag")]);
        let (out, _) = text(&o);
        assert!(
            out.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{model}: {out}"
        );
        assert!(out.contains("\r\nRetry-After: 1\r\n"), "{model}: {out}");
        drop(held);
    }
}
