//! `sockscope trace` stops within a second of SIGINT whatever its stdout
//! does, and its closing counts add up.
//!
//! A reader that never reads (`trace | sleep 30`) used to keep the trace
//! blocked in write(2) for ever, programs attached, deaf to SIGINT. Now
//! stdout is written by a thread of its own: on SIGINT the trace detaches
//! its programs, reads what the ring buffer holds, gives up on a stdout
//! that makes no progress, and prints its counts on stderr, saying how
//! many events were never written.
//!
//! The counts: every event read is shown or left out by the user-space
//! filter (read = shown + filtered), and the kernel wrote exactly what was
//! read (the programs are detached before the last read).

#[path = "common/root.rs"]
mod root;

#[path = "fixtures/trace/harness.rs"]
mod harness;

use harness::*;
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The numbers of the "Events: ..." line: word before each keyword.
fn counts(line: &str) -> (u64, u64, u64, u64) {
    let words: Vec<&str> = line
        .split(|c: char| c.is_whitespace() || "(),;=+:".contains(c))
        .filter(|w| !w.is_empty())
        .collect();
    let before = |kw: &str| -> u64 {
        let i = words
            .iter()
            .position(|w| *w == kw)
            .unwrap_or_else(|| panic!("no '{kw}' in {line}"));
        words[i - 1]
            .parse()
            .unwrap_or_else(|_| panic!("no number before '{kw}' in {line}"))
    };
    (
        before("read"),
        before("shown"),
        before("left"),
        before("written"),
    )
}

/// How a blocked trace is told to stop.
#[derive(Clone, Copy, Debug)]
enum StopBy {
    Signal(rustix::process::Signal),
    /// --duration SECS
    Duration(u64),
}

/// Trace a chatty scene into a pipe nobody reads; once the pipe is full,
/// stop the trace as `how` says. Checks that it ends within about a second
/// and that its counts, on stderr, add up.
fn blocked_trace_stops(port: u16, how: StopBy) {
    require_root();
    let mut scene = Scene::start_env("chatter", port, &[("CHATTER_ROUNDS", "20000")]);
    let pid = scene.pid.to_string();
    // A pipe whose reader never reads.
    let (reader, writer) = std::io::pipe().expect("pipe");
    let mut cmd = Command::new(BIN);
    cmd.args(["trace", "--jsonl", "--netns-pid", &pid]);
    if let StopBy::Duration(secs) = how {
        cmd.args(["--duration", &secs.to_string()]);
    }
    let mut child = cmd
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sockscope trace");
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let mut stderr = Vec::new();
    loop {
        let l = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("trace did not start; stderr:\n{}", stderr.join("\n")));
        let done = l.starts_with("sockscope: tracing");
        stderr.push(l);
        if done {
            break;
        }
    }
    let started = Instant::now();
    let report = scene.go();
    assert_eq!(report["rounds"], 20000);

    // The pipe fills and the trace still runs: its writes are blocked.
    // (The reader may still be behind the scene's 20,000 rounds on a busy
    // machine: wait for the pipe to fill, up to 10 s.)
    let fd = reader.as_raw_fd();
    // SAFETY: plain fcntl/ioctl on a pipe fd we own, into a local int.
    let fill = || unsafe {
        let mut n: libc::c_int = 0;
        let size = libc::fcntl(fd, libc::F_GETPIPE_SZ);
        assert_eq!(libc::ioctl(fd, libc::FIONREAD, &mut n), 0);
        (size, n)
    };
    let wait_from = Instant::now();
    let (size, queued) = loop {
        let (size, queued) = fill();
        // (Full to within a page: pipe buffers fill page by page.)
        if (size > 0 && queued > size - 4096) || wait_from.elapsed() > Duration::from_secs(10) {
            break (size, queued);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        size > 0 && queued > size - 4096,
        "pipe holds {queued} of {size} bytes 10 s after the load ended"
    );
    assert!(
        child.try_wait().expect("wait").is_none(),
        "trace exited early"
    );

    // From when it is told to stop.
    let t0 = match how {
        StopBy::Signal(sig) => {
            let p = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
            rustix::process::kill_process(p, sig).expect("kill");
            Instant::now()
        }
        StopBy::Duration(secs) => started + Duration::from_secs(secs),
    };
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > t0 + Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sockscope trace still running 10 s after {how:?} with its stdout blocked");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = t0.elapsed();
    drop(scene);
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(2)) {
        stderr.push(l);
    }
    let stderr = stderr.join("\n");
    eprintln!("stopped {took:?} after {how:?}; stderr:\n{stderr}");
    assert!(
        took < Duration::from_millis(1500),
        "stopped {took:?} after {how:?}; stderr:\n{stderr}"
    );
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(
        stderr.contains("standard output was blocked when the trace stopped"),
        "{stderr}"
    );
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("sockscope: Events: "))
        .unwrap_or_else(|| panic!("no counts on stderr:\n{stderr}"));
    let (read, shown, filtered, written) = counts(line);
    assert!(read > 1000, "{line}");
    assert_eq!(read, shown + filtered, "{line}");
    assert_eq!(written, read, "{line}");
    let unwritten: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("sockscope: Not written: "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no 'Not written' count:\n{stderr}"));
    assert!(
        unwritten > 0 && unwritten <= shown + 100,
        "unwritten {unwritten}; {line}"
    );
}

#[test]
fn sigint_with_a_blocked_stdout_stops_within_a_second() {
    if root::skip_without_root() {
        return;
    }
    blocked_trace_stops(29110, StopBy::Signal(rustix::process::Signal::INT));
}

#[test]
fn sigterm_with_a_blocked_stdout_stops_within_a_second() {
    if root::skip_without_root() {
        return;
    }
    blocked_trace_stops(29113, StopBy::Signal(rustix::process::Signal::TERM));
}

#[test]
fn duration_with_a_blocked_stdout_ends_within_a_second() {
    if root::skip_without_root() {
        return;
    }
    blocked_trace_stops(29114, StopBy::Duration(8));
}

#[test]
fn closing_counts_add_up() {
    if root::skip_without_root() {
        return;
    }
    // A filter that keeps the server side only (local port 29111): the
    // client's events are read and left out in user space.
    let (report, out) = traced(
        "chatter",
        29111,
        &["sport", "=", ":29111"],
        Duration::from_millis(300),
    );
    assert_eq!(report["rounds"], 500);
    let s = out.stats();
    let n = |k: &str| {
        s[k].as_u64()
            .unwrap_or_else(|| panic!("stats.{k} missing: {s}"))
    };
    let events = out.events();
    let inferred = events
        .iter()
        .filter(|v| matches!(v["kind"].as_str(), Some("time_wait" | "time_wait_check")))
        .count() as u64;
    assert_eq!(n("events_shown"), events.len() as u64 - inferred, "{s}");
    assert_eq!(n("events_inferred"), inferred, "{s}");
    assert_eq!(
        n("events_read"),
        n("events_shown") + n("events_filtered"),
        "{s}"
    );
    assert_eq!(
        n("kernel_written"),
        n("events_read") + n("bad_records"),
        "{s}"
    );
    assert_eq!(n("events_unwritten"), 0, "{s}");
    assert!(
        n("events_filtered") >= 1000,
        "the client's sends and receives were left out: {s}"
    );
    assert!(
        n("events_shown") >= 1000,
        "the server's sends and receives were shown: {s}"
    );
    // No shown event is the client's (whose peer port is the server's).
    for v in &events {
        assert_ne!(port_of(v, "peer"), Some(29111), "{v}");
    }
}

/// A reader that goes away (`sockscope trace --jsonl | head -1`) ends the
/// trace: quietly, exit 0, whatever the output was doing (a JSON line cut
/// by the closed pipe included).
#[test]
fn a_reader_that_goes_away_ends_the_trace_quietly() {
    if root::skip_without_root() {
        return;
    }
    require_root();
    let mut scene = Scene::start_env("chatter", 29112, &[("CHATTER_ROUNDS", "5000")]);
    let pid = scene.pid.to_string();
    let (reader, writer) = std::io::pipe().expect("pipe");
    let mut child = Command::new(BIN)
        .args(["trace", "--jsonl", "--netns-pid", &pid])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sockscope trace");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut stderr = String::new();
    while !stderr.contains("sockscope: tracing") {
        let mut l = String::new();
        if err.read_line(&mut l).expect("stderr") == 0 {
            panic!("trace did not start:\n{stderr}");
        }
        stderr.push_str(&l);
    }
    let go = std::thread::spawn(move || {
        scene.go();
        scene
    });
    // `head -1`: one line, then the reader is gone.
    let mut first = String::new();
    BufReader::new(reader)
        .read_line(&mut first)
        .expect("read a line");
    assert!(first.starts_with('{'), "{first}");
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("sockscope trace did not end after its reader went away");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(go.join());
    std::io::Read::read_to_string(&mut err, &mut stderr).expect("stderr");
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(
        !stderr.contains("Broken pipe") && !stderr.contains("could not write"),
        "a closed pipe is not an error:\n{stderr}"
    );
}
