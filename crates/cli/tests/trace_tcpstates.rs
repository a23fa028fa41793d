//! Differential test against bcc's tcpstates (Debian bpfcc-tools,
//! `tcpstates-bpfcc`), which reads the same sock:inet_sock_set_state
//! tracepoint (bcc 0.26 uses the tracepoint, not a kprobe). Both run while
//! the same scripted connections happen (seed 003's reset, a graceful
//! close, a refused connect); for every socket on the scenarios' ports,
//! the state transitions they report must be the same, in the same order.
//!
//! bcc compiles its BPF at run time against kernel headers. These machines
//! run a kernel without a headers package; bcc is pointed
//! (BCC_KERNEL_SOURCE) at Debian's linux-headers (common + arch trees,
//! merged by symlinks into a temporary directory): the tracepoint's record
//! layout comes from tracefs at run time, the headers only need to
//! compile. The merged tree is a temporary directory removed on every
//! path, also when the test fails.
//!
//! bcc finds the tracepoint through tracefs, which a fresh machine does not
//! mount (bcc then falls back to kprobes, which these kernels lack).
//! tcpstates runs in a private mount namespace of its own (`unshare -m`)
//! with tracefs mounted there: nothing is mounted on the host.

#[path = "common/root.rs"]
mod root;

#[path = "fixtures/trace/harness.rs"]
mod harness;

use harness::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Debian's headers for this architecture: (common tree, arch tree).
fn debian_headers() -> (PathBuf, PathBuf) {
    let arch = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    };
    let mut found = None;
    if let Ok(rd) = std::fs::read_dir("/usr/src") {
        let mut names: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for n in names.iter().rev() {
            if let Some(ver) = n
                .strip_prefix("linux-headers-")
                .and_then(|v| v.strip_suffix(&format!("-{arch}")))
            {
                let common = PathBuf::from(format!("/usr/src/linux-headers-{ver}-common"));
                if common.is_dir() {
                    found = Some((common, PathBuf::from("/usr/src").join(n)));
                    break;
                }
            }
        }
    }
    found.unwrap_or_else(|| {
        panic!(
            "no Debian kernel headers under /usr/src (linux-headers-*-{arch} and -common): \
             bcc's tcpstates compiles against them; install linux-headers-{arch} (scripts/test does)"
        )
    })
}

/// A temporary directory, removed when dropped (also during a panic).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A directory that looks like a kernel build tree: the common headers
/// with the arch tree's generated files over them (symlinks only).
fn merged_headers(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("mkdir");
    let (common, arch) = debian_headers();
    for (src, extra) in [(&common, None), (&arch, Some("--remove-destination"))] {
        let mut c = Command::new("cp");
        c.arg("-rs");
        if let Some(x) = extra {
            c.arg("-f").arg(x);
        }
        let st = c
            .arg(format!("{}/.", src.display()))
            .arg(dir)
            .status()
            .expect("cp");
        assert!(st.success(), "cp -rs {} {}", src.display(), dir.display());
    }
}

struct Tcpstates {
    child: Child,
    rx: mpsc::Receiver<String>,
}

impl Tcpstates {
    fn start(headers: &Path) -> Tcpstates {
        // In a mount namespace of its own, with every mount private so
        // that nothing propagates to the host, tracefs mounted unless it
        // already is.
        let script = "mount --make-rprivate / || exit 97
            if [ -z \"$(ls -A /sys/kernel/tracing)\" ] && [ ! -d /sys/kernel/debug/tracing/events ]; then
                mount -t tracefs nodev /sys/kernel/tracing || exit 98
            fi
            exec tcpstates-bpfcc -s -t";
        let mut child = Command::new("unshare")
            .args(["-m", "--", "sh", "-c", script])
            .env("BCC_KERNEL_SOURCE", headers)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn `unshare -m sh -c '... tcpstates-bpfcc'` (util-linux and Debian bpfcc-tools; scripts/test installs them)");
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().expect("stderr");
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(l) if l.contains("SKADDR") => break,
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let mut e = String::new();
                    let _ = std::io::Read::read_to_string(&mut err, &mut e);
                    panic!("tcpstates-bpfcc did not start:\n{e}");
                }
            }
        }
        Tcpstates { child, rx }
    }

    /// Stop it and return its rows: (time, skaddr, lport, rport, old, new).
    fn stop(&mut self) -> Vec<(f64, u64, u64, u64, String, String)> {
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut rows = Vec::new();
        while let Ok(l) = self.rx.recv_timeout(Duration::from_secs(2)) {
            // TIME(s),SKADDR,C-PID,C-COMM,IP,LADDR,LPORT,RADDR,RPORT,OLDSTATE,NEWSTATE,MS
            let f: Vec<&str> = l.split(',').collect();
            if f.len() != 12 {
                continue;
            }
            let (Ok(t), Ok(sk), Ok(lp), Ok(rp)) = (
                f[0].parse::<f64>(),
                u64::from_str_radix(f[1], 16),
                f[6].parse::<u64>(),
                f[8].parse::<u64>(),
            ) else {
                continue;
            };
            rows.push((t, sk, lp, rp, f[9].to_string(), f[10].to_string()));
        }
        rows
    }
}

impl Drop for Tcpstates {
    /// Not left running when a test fails half-way.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// tcpstates' state names in sockscope's JSON vocabulary.
fn bcc_state(s: &str) -> String {
    match s {
        "ESTABLISHED" => "established",
        "SYN_SENT" => "syn-sent",
        "SYN_RECV" => "syn-recv",
        "FIN_WAIT1" => "fin-wait-1",
        "FIN_WAIT2" => "fin-wait-2",
        "TIME_WAIT" => "time-wait",
        "CLOSE" => "closed",
        "CLOSE_WAIT" => "close-wait",
        "LAST_ACK" => "last-ack",
        "LISTEN" => "listening",
        "CLOSING" => "closing",
        "NEW_SYN_RECV" => "new-syn-recv",
        other => other,
    }
    .to_string()
}

type Transitions = BTreeMap<u64, Vec<String>>;

fn sockscope_transitions(out: &TraceOut) -> Transitions {
    let mut m: Transitions = BTreeMap::new();
    for v in out.events() {
        if v["kind"] != "state" {
            continue;
        }
        let sk = v["sk"]
            .as_str()
            .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok());
        if let Some(sk) = sk {
            m.entry(sk).or_default().push(short(v));
        }
    }
    m
}

#[test]
fn same_transitions_as_bcc_tcpstates() {
    if root::skip_without_root() {
        return;
    }
    require_root();
    let headers =
        TempDir(std::env::temp_dir().join(format!("sockscope-bcc-headers-{}", std::process::id())));
    merged_headers(&headers.0);
    let mut bcc = Tcpstates::start(&headers.0);

    // Unusual ports below the ephemeral range (32768-60999), so that no
    // other connection on the host has them at either end.
    let scenarios = [
        ("seed003", 29101u16),
        ("graceful", 29102),
        ("refused", 29103),
    ];
    let mut ours: Vec<(u16, Transitions)> = Vec::new();
    for (name, port) in scenarios {
        let (_r, out): (Value, TraceOut) = traced(
            name,
            port,
            &["--events", "state"],
            Duration::from_millis(300),
        );
        ours.push((port, sockscope_transitions(&out)));
    }
    std::thread::sleep(Duration::from_millis(500));
    let rows = bcc.stop();
    drop(headers);

    for (port, mine) in ours {
        let p = u64::from(port);
        let mut theirs_rows: Vec<&(f64, u64, u64, u64, String, String)> =
            rows.iter().filter(|r| r.2 == p || r.3 == p).collect();
        theirs_rows.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
        let mut theirs: Transitions = BTreeMap::new();
        for r in theirs_rows {
            theirs.entry(r.1).or_default().push(format!(
                "{}->{}",
                bcc_state(&r.4),
                bcc_state(&r.5)
            ));
        }
        assert!(
            !theirs.is_empty(),
            "tcpstates saw nothing on port {port}; all its rows: {rows:?}"
        );
        assert_eq!(
            mine, theirs,
            "port {port}: sockscope (left) and tcpstates (right) disagree"
        );
    }
}
