//! Helpers for the `sockscope export` tests: an exporter running inside a
//! scene's network namespace, HTTP from a thread that entered that
//! namespace (so no traffic leaves it), and a parser for the exposition.

#![allow(dead_code)] // each test file uses a different part

use crate::common::BIN;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Run `f` on a thread that has entered the network namespace of `pid`.
/// Sockets it creates stay in that namespace whichever thread uses them.
pub fn in_netns<T: Send>(pid: u32, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
                .unwrap_or_else(|e| panic!("open /proc/{pid}/ns/net: {e}"));
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&ns),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("setns into the scene's network namespace (needs root)");
            f()
        })
        .join()
        .expect("netns thread panicked")
    })
}

/// A TCP connection to 127.0.0.1:port inside the namespace of `pid`.
pub fn connect(pid: u32, port: u16) -> std::io::Result<TcpStream> {
    in_netns(pid, || TcpStream::connect(("127.0.0.1", port)))
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

/// Send `request` verbatim and read the whole response (the exporter
/// closes the connection after it).
pub fn exchange(mut s: TcpStream, request: &[u8], timeout: Duration) -> Response {
    s.set_read_timeout(Some(timeout)).unwrap();
    s.write_all(request).expect("send the request");
    let mut buf = Vec::new();
    // A reset after the response (the client was still sending when the
    // server closed) keeps what was read.
    if let Err(e) = s.read_to_end(&mut buf)
        && (buf.is_empty() || e.kind() != std::io::ErrorKind::ConnectionReset)
    {
        panic!("read the response: {e} (read so far: {buf:?})");
    }
    parse_response(&buf)
}

pub fn parse_response(buf: &[u8]) -> Response {
    let text = String::from_utf8_lossy(buf).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    Response {
        status,
        headers: head.to_string(),
        body: body.to_string(),
    }
}

/// GET `path` from 127.0.0.1:port in the namespace of `pid`.
pub fn get(pid: u32, port: u16, path: &str, accept: Option<&str>) -> Response {
    let s = connect(pid, port).unwrap_or_else(|e| panic!("connect to :{port}: {e}"));
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n{accept}\r\n"
    );
    exchange(s, req.as_bytes(), Duration::from_secs(30))
}

/// `sockscope export` started with `nsenter -t PID -n`; killed on drop.
pub struct Exporter {
    pub child: Child,
    pub ns_pid: u32,
    pub port: u16,
}

impl Exporter {
    /// Start on 127.0.0.1:port in the namespace of `ns_pid`, and wait until
    /// it answers.
    pub fn start(ns_pid: u32, port: u16, extra: &[&str]) -> Exporter {
        let listen = format!("127.0.0.1:{port}");
        let pid = ns_pid.to_string();
        let mut args = vec![
            "-t",
            pid.as_str(),
            "-n",
            "--",
            BIN,
            "export",
            "--listen",
            &listen,
        ];
        args.extend_from_slice(extra);
        let child = Command::new("nsenter")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nsenter ... sockscope export");
        let mut e = Exporter {
            child,
            ns_pid,
            port,
        };
        let start = Instant::now();
        loop {
            if let Ok(Some(st)) = e.child.try_wait() {
                panic!("sockscope export exited early: {st}");
            }
            if connect(ns_pid, port).is_ok() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the exporter did not listen on :{port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        e
    }

    pub fn get(&self, path: &str) -> Response {
        get(self.ns_pid, self.port, path, None)
    }

    /// Send `sig` and wait for the exit; returns (exit code, time taken).
    pub fn stop(&mut self, sig: rustix::process::Signal) -> (Option<i32>, Duration) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("pid");
        let t0 = Instant::now();
        rustix::process::kill_process(pid, sig).expect("signal the exporter");
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                return (st.code(), t0.elapsed());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the exporter ignored {sig:?} for 10 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// One sample of the exposition.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parse the samples of a Prometheus/OpenMetrics text exposition (label
/// values unescaped).
pub fn samples(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let (name, mut rest) = match series.split_once('{') {
            Some((n, r)) => (n, r.strip_suffix('}').expect("closing brace")),
            None => (series, ""),
        };
        let mut labels = BTreeMap::new();
        while !rest.is_empty() {
            let (k, r) = rest.split_once("=\"").expect("label=\"");
            let mut v = String::new();
            let mut chars = r.char_indices();
            let end = loop {
                match chars.next().expect("closing quote") {
                    (_, '\\') => match chars.next().expect("escape").1 {
                        'n' => v.push('\n'),
                        c => v.push(c),
                    },
                    (i, '"') => break i,
                    (_, c) => v.push(c),
                }
            };
            labels.insert(k.to_string(), v);
            rest = r[end + 1..].trim_start_matches(',');
        }
        out.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    out
}

/// The samples named `name` whose labels include `want`.
pub fn find<'a>(all: &'a [Sample], name: &str, want: &[(&str, &str)]) -> Vec<&'a Sample> {
    all.iter()
        .filter(|s| {
            s.name == name
                && want
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

/// The value of the one sample that matches.
pub fn one(all: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    let f = find(all, name, want);
    assert_eq!(f.len(), 1, "one {name} with {want:?}, got {f:#?}");
    f[0].value
}

/// An empty private network namespace with lo up, held by `sleep`.
pub fn namespace() -> crate::common::Scene {
    crate::common::Scene::start_command(&["sleep", "120"], "sleep in a new namespace", |pid| {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
    })
}
