//! Shared helpers for the `sockscope ls` integration tests.
//!
//! [`Fixture::start`] runs `tests/fixtures/sockets.py` in a private network
//! namespace (`unshare -n -- python3 sockets.py`), reads the one-line JSON
//! manifest it prints and returns a guard that kills the fixture (and the
//! child it forked) when dropped, also when a test panics.
//! [`Fixture::ls_json`] runs `sockscope ls --netns-pid PID ...` and parses its
//! JSON. The rest are small comparison helpers: a key that identifies a
//! socket across tools (its inode, or its 4-tuple for inode-0 sockets) and
//! normalisation of endpoints so addresses compare as addresses.
//!
//! The tests need root (CI runs them as root): without it they fail loudly
//! instead of skipping.

#![allow(dead_code)] // every test file uses a different part of this module

use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::net::IpAddr;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The sockscope binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_sockscope");

/// The socket fixture script.
pub const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sockets.py");

/// How long any one command may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Fail loudly when not root: these tests build namespaces and read every
/// process's fd table.
pub fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "the sockscope integration tests must run as root (they create network namespaces \
         and compare owners of every process); CI runs them as root"
    );
}

/// What the fixture printed about itself and its sockets.
#[derive(Clone, Debug, Deserialize)]
pub struct Manifest {
    pub pid: u32,
    pub child_pid: u32,
    pub netns_inode: u64,
    pub comm: String,
    pub uid: u32,
    pub tmpdir: String,
    pub sockets: Vec<MSocket>,
}

/// One socket the fixture built, in sockscope's JSON vocabulary.
#[derive(Clone, Debug, Deserialize)]
pub struct MSocket {
    pub name: String,
    pub proto: String,
    pub family: String,
    pub state: String,
    pub recv_q: Option<u32>,
    pub send_q: Option<u32>,
    pub local: Value,
    pub peer: Value,
    pub inode: u64,
    pub cookie: Option<u64>,
    pub v6only: Option<bool>,
    pub owners: Vec<MOwner>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct MOwner {
    pub pid: u32,
    pub fd: u32,
}

impl MSocket {
    pub fn key(&self) -> String {
        key_parts(&self.proto, self.inode, &self.local, &self.peer)
    }
    pub fn is_unix(&self) -> bool {
        self.family == "unix"
    }
    pub fn local_port(&self) -> Option<u64> {
        self.local.get("port").and_then(Value::as_u64)
    }
    pub fn peer_port(&self) -> Option<u64> {
        self.peer.get("port").and_then(Value::as_u64)
    }
}

impl Manifest {
    /// The socket the fixture named `name`.
    pub fn get(&self, name: &str) -> &MSocket {
        self.sockets
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("fixture manifest has no socket named {name}"))
    }
    /// Keys of the manifest sockets for which `pred` holds.
    pub fn keys_where(&self, pred: impl Fn(&MSocket) -> bool) -> BTreeSet<String> {
        self.sockets
            .iter()
            .filter(|s| pred(s))
            .map(MSocket::key)
            .collect()
    }
    /// Manifest sockets by key.
    pub fn by_key(&self) -> BTreeMap<String, &MSocket> {
        self.sockets.iter().map(|s| (s.key(), s)).collect()
    }
    /// Names of the sockets with the given keys, for readable failures.
    pub fn names(&self, keys: &BTreeSet<String>) -> Vec<String> {
        let by = self.by_key();
        keys.iter()
            .map(|k| by.get(k).map_or_else(|| k.clone(), |s| s.name.clone()))
            .collect()
    }
}

/// A running fixture. Dropping it kills the fixture and its child.
pub struct Fixture {
    proc: Child,
    stdin: Option<ChildStdin>,
    /// Pid of the python process (unshare execs it, so it is the pid we
    /// spawned).
    pub pid: u32,
    pub manifest: Manifest,
}

impl Fixture {
    pub fn start() -> Fixture {
        require_root();
        let mut proc = Command::new("unshare")
            .args(["-n", "--", "python3", FIXTURE])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect(
                "spawn `unshare -n -- python3 sockets.py` (are unshare and python3 installed?)",
            );
        let stdin = proc.stdin.take();
        let stdout = proc.stdout.take().expect("fixture stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let r = BufReader::new(stdout).read_line(&mut line).map(|_| line);
            let _ = tx.send(r);
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(line)) if !line.trim().is_empty() => line,
            other => {
                let _ = proc.kill();
                let _ = proc.wait();
                let mut err = String::new();
                if let Some(mut e) = proc.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("fixture printed no manifest ({other:?}); its stderr:\n{err}");
            }
        };
        let manifest: Manifest = match serde_json::from_str(&line) {
            Ok(m) => m,
            Err(e) => {
                let _ = proc.kill();
                let _ = proc.wait();
                panic!("fixture manifest is not valid JSON ({e}): {line}");
            }
        };
        let fx = Fixture {
            pid: proc.id(),
            proc,
            stdin,
            manifest,
        };
        // `unshare -n -- python3` execs python in place: the pid we spawned
        // is the python process that owns the sockets.
        assert_eq!(
            fx.manifest.pid, fx.pid,
            "the fixture's python pid is not the pid of the spawned unshare process"
        );
        let ns = netns_inode(fx.pid);
        assert_eq!(ns, fx.manifest.netns_inode, "netns inode of the fixture");
        assert_ne!(
            ns,
            netns_inode(std::process::id()),
            "the fixture did not get its own network namespace"
        );
        assert_eq!(fx.manifest.comm, "python3", "fixture comm");
        fx
    }

    /// `sockscope ls --netns-pid PID <args>`.
    pub fn ls(&self, args: &[&str]) -> Run {
        let pid = self.pid.to_string();
        let mut all = vec!["ls", "--netns-pid", pid.as_str()];
        all.extend_from_slice(args);
        sockscope(&all)
    }

    /// `sockscope ls --netns-pid PID --json <args>`, which must exit 0; the
    /// parsed array.
    pub fn ls_json(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let run = self.ls(&all);
        run.expect_code(0);
        run.json_array()
    }

    /// A command run inside the fixture's network namespace via nsenter.
    pub fn nsenter(&self, cmd: &[&str]) -> Run {
        let pid = self.pid.to_string();
        let mut all = vec!["-t", pid.as_str(), "-n", "--"];
        all.extend_from_slice(cmd);
        run_cmd("nsenter", &all)
    }

    /// Pid as a string, for filters and arguments.
    pub fn pid_str(&self) -> String {
        self.pid.to_string()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        drop(self.stdin.take());
        // While python lives, its child cannot have been reaped, so its pid
        // still names it. (It also has PR_SET_PDEATHSIG.)
        if matches!(self.proc.try_wait(), Ok(None)) {
            if let Some(pid) = rustix::process::Pid::from_raw(self.manifest.child_pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
            let _ = self.proc.kill();
        }
        let _ = self.proc.wait();
        if self.manifest.tmpdir.starts_with("/tmp/sockscope-fixture-") {
            let _ = std::fs::remove_dir_all(&self.manifest.tmpdir);
        }
    }
}

/// Inode of /proc/PID/ns/net.
pub fn netns_inode(pid: u32) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .unwrap_or_else(|e| panic!("stat /proc/{pid}/ns/net: {e}"))
        .ino()
}

/// The result of one command.
#[derive(Debug)]
pub struct Run {
    pub cmdline: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
    pub fn expect_code(&self, code: i32) {
        assert_eq!(
            self.code(),
            Some(code),
            "`{}` exited with {:?}, expected {code}\nstdout:\n{}\nstderr:\n{}",
            self.cmdline,
            self.status,
            truncate(&self.stdout),
            self.stderr
        );
    }
    pub fn json_array(&self) -> Vec<Value> {
        match serde_json::from_str::<Value>(&self.stdout) {
            Ok(Value::Array(a)) => a,
            Ok(other) => panic!(
                "`{}`: --json output is not an array: {}",
                self.cmdline,
                truncate(&other.to_string())
            ),
            Err(e) => panic!(
                "`{}`: --json output is not JSON ({e}):\n{}\nstderr:\n{}",
                self.cmdline,
                truncate(&self.stdout),
                self.stderr
            ),
        }
    }
}

fn truncate(s: &str) -> String {
    if s.len() > 4000 {
        let mut end = 4000;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}... ({} bytes)", &s[..end], s.len())
    } else {
        s.to_string()
    }
}

/// Run `sockscope <args>`.
pub fn sockscope(args: &[&str]) -> Run {
    run_cmd(BIN, args)
}

/// Run a program with a timeout, capturing stdout and stderr.
pub fn run_cmd(program: &str, args: &[&str]) -> Run {
    let cmdline = std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("NO_COLOR", "1")
        .spawn()
        .unwrap_or_else(|e| panic!("spawn `{cmdline}`: {e}"));
    let out = reader(child.stdout.take().expect("stdout"));
    let err = reader(child.stderr.take().expect("stderr"));
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() > TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`{cmdline}` did not finish within {TIMEOUT:?}");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("wait for `{cmdline}`: {e}"),
        }
    };
    Run {
        cmdline,
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

fn reader<R: Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// The canonical text of an IP address ("::ffff:127.0.0.1" however it was
/// written); anything that is not an address is returned unchanged.
pub fn canon_addr(s: &str) -> String {
    s.parse::<IpAddr>()
        .map_or_else(|_| s.to_string(), |a| a.to_string())
}

/// An endpoint with its address in canonical form.
pub fn norm_endpoint(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(Value::String(a)) = v.get_mut("addr") {
        *a = canon_addr(a);
    }
    v
}

/// Identity of a socket across listings: its inode, or for sockets without
/// one (TIME-WAIT, orphans, connections not yet accepted) protocol and
/// 4-tuple.
pub fn key_parts(proto: &str, inode: u64, local: &Value, peer: &Value) -> String {
    if inode != 0 {
        return format!("ino:{inode}");
    }
    let ep = |v: &Value| {
        let a = v.get("addr").and_then(Value::as_str).map(canon_addr);
        let p = v.get("port").and_then(Value::as_u64);
        format!("{}:{}", a.unwrap_or_else(|| "?".into()), p.unwrap_or(0))
    };
    format!("{proto} {} {}", ep(local), ep(peer))
}

/// Key of a socket object from sockscope's JSON.
pub fn key_of(v: &Value) -> String {
    let proto = v.get("proto").and_then(Value::as_str).unwrap_or("?");
    let inode = v.get("inode").and_then(Value::as_u64).unwrap_or(0);
    key_parts(
        proto,
        inode,
        v.get("local").unwrap_or(&Value::Null),
        v.get("peer").unwrap_or(&Value::Null),
    )
}

/// Keys of every socket in a listing.
pub fn keys(list: &[Value]) -> BTreeSet<String> {
    list.iter().map(key_of).collect()
}

/// A listing by key; fails when two sockets share a key (a duplicate row).
pub fn index(list: &[Value]) -> BTreeMap<String, &Value> {
    let mut m = BTreeMap::new();
    for v in list {
        let k = key_of(v);
        if let Some(prev) = m.insert(k.clone(), v) {
            panic!("two sockets with key {k}:\n{prev}\n{v}");
        }
    }
    m
}

/// Assert that a listing has exactly the manifest sockets with the given
/// keys, naming the missing and unexpected ones.
pub fn assert_same_keys(what: &str, fx: &Fixture, list: &[Value], expected: &BTreeSet<String>) {
    let got = keys(list);
    assert_eq!(got.len(), list.len(), "{what}: duplicate rows in {list:#?}");
    let missing: BTreeSet<String> = expected.difference(&got).cloned().collect();
    let extra: Vec<&Value> = list
        .iter()
        .filter(|v| !expected.contains(&key_of(v)))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: missing {:?}; unexpected {extra:#?}",
        fx.manifest.names(&missing)
    );
}

/// Owners of a JSON socket as sorted (pid, fd, comm, uid) tuples.
pub fn owners_of(v: &Value) -> Vec<(u64, u64, String, Option<u64>)> {
    let mut o: Vec<_> = v
        .get("owners")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("socket without an owners array: {v}"))
        .iter()
        .map(|o| {
            (
                o.get("pid").and_then(Value::as_u64).unwrap_or(u64::MAX),
                o.get("fd").and_then(Value::as_u64).unwrap_or(u64::MAX),
                o.get("comm")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string(),
                o.get("uid").and_then(Value::as_u64),
            )
        })
        .collect();
    o.sort();
    o
}

/// Field of a JSON socket, `Null` when absent.
pub fn field<'a>(v: &'a Value, name: &str) -> &'a Value {
    v.get(name).unwrap_or(&Value::Null)
}
