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
//! Tests that need root start with `root::skip_without_root()`
//! (`common/root.rs`): skipped and named for a normal user, required under
//! scripts/test. The helpers here still assert root, so a root-only test
//! that forgot that check fails loudly rather than half-running.

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
        "this test needs root (it creates network namespaces and compares owners of every \
         process) but does not start with `if root::skip_without_root() {{ return; }}` \
         (tests/common/root.rs), which would skip it for a normal user"
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

/// Inode of /proc/PID/ns/net (of a live thread's, when the main thread
/// has exited and its own is gone).
pub fn netns_inode(pid: u32) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let main = std::fs::metadata(format!("/proc/{pid}/ns/net"));
    let thread = || {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .ok()?
            .flatten()
            .find_map(|t| std::fs::metadata(t.path().join("ns/net")).ok())
    };
    match main {
        Ok(m) => m.ino(),
        Err(e) => thread()
            .unwrap_or_else(|| panic!("stat /proc/{pid}/ns/net: {e}"))
            .ino(),
    }
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

// ---------------------------------------------------------------------------
// Scenes: the fixtures of the `who`, `proc`, `listeners`, `stats` and
// `ls -i -m -o` tests (tests/fixtures/who_scenes.py), and helpers that read
// /proc the way the seeds do by hand, so tests can compare sockscope with
// what the kernel says.

/// The scene fixture script.
pub const SCENES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/who_scenes.py");

/// A process running in a private network namespace (a scene of
/// who_scenes.py, or any command). Dropping it kills the process and the
/// children it reported, and removes its temporary directory.
pub struct Scene {
    proc: Child,
    stdin: Option<ChildStdin>,
    lines: Option<mpsc::Receiver<std::io::Result<String>>>,
    /// Pid of the process (unshare execs it in place).
    pub pid: u32,
    /// The scene's manifest (`Null` for a plain command).
    pub manifest: Value,
}

impl Scene {
    /// `unshare -n -- python3 who_scenes.py SCENE`, waiting for its
    /// manifest.
    pub fn start(scene: &str) -> Scene {
        require_root();
        let mut proc = Command::new("unshare")
            .args(["-n", "--", "python3", SCENES, scene])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn `unshare -n -- python3 who_scenes.py` (unshare and python3 needed)");
        let stdin = proc.stdin.take();
        let stdout = proc.stdout.take().expect("scene stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut line = String::new();
                match r.read_line(&mut line) {
                    Ok(0) => break,
                    Ok(_) => {
                        if tx.send(Ok(line)).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                }
            }
        });
        let mut sc = Scene {
            pid: proc.id(),
            proc,
            stdin,
            lines: Some(rx),
            manifest: Value::Null,
        };
        let line = match sc.next_line(Duration::from_secs(30)) {
            Some(l) => l,
            None => {
                let _ = sc.proc.kill();
                let _ = sc.proc.wait();
                let mut err = String::new();
                if let Some(mut e) = sc.proc.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("scene {scene} printed no manifest; its stderr:\n{err}");
            }
        };
        sc.manifest = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("scene {scene}: manifest is not JSON ({e}): {line}"));
        assert_eq!(
            sc.manifest["pid"].as_u64(),
            Some(u64::from(sc.pid)),
            "scene {scene}: the python pid is not the pid of the spawned unshare"
        );
        sc.check_private_netns();
        sc
    }

    /// `unshare -n -- sh -c 'ip link set lo up && exec "$@"' sh ARGV...`,
    /// then wait (up to 20 s) until `ready(pid)` holds.
    pub fn start_command(argv: &[&str], what: &str, ready: impl Fn(u32) -> bool) -> Scene {
        require_root();
        let mut args = vec![
            "-n",
            "--",
            "sh",
            "-c",
            "ip link set lo up && exec \"$@\"",
            "sh",
        ];
        args.extend_from_slice(argv);
        let proc = Command::new("unshare")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn unshare {argv:?}: {e}"));
        let mut sc = Scene {
            pid: proc.id(),
            proc,
            stdin: None,
            lines: None,
            manifest: Value::Null,
        };
        let start = Instant::now();
        while !ready(sc.pid) {
            if let Ok(Some(st)) = sc.proc.try_wait() {
                panic!("{argv:?} exited ({st}) before {what}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{argv:?}: no {what} after 20 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        sc.check_private_netns();
        sc
    }

    fn check_private_netns(&self) {
        assert_ne!(
            netns_inode(self.pid),
            netns_inode(std::process::id()),
            "the scene did not get its own network namespace"
        );
    }

    fn next_line(&self, timeout: Duration) -> Option<String> {
        match self.lines.as_ref()?.recv_timeout(timeout) {
            Ok(Ok(l)) if !l.trim().is_empty() => Some(l),
            _ => None,
        }
    }

    /// Send one command line to the scene and return its one-line JSON
    /// answer.
    pub fn command(&mut self, cmd: &str) -> Value {
        use std::io::Write as _;
        let stdin = self.stdin.as_mut().expect("this scene takes no commands");
        writeln!(stdin, "{cmd}").expect("write a command to the scene");
        stdin.flush().expect("flush the scene's stdin");
        let line = self
            .next_line(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("scene did not answer {cmd:?}"));
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("scene answer to {cmd:?} is not JSON ({e}): {line}"));
        assert!(v.get("error").is_none(), "scene refused {cmd:?}: {v}");
        v
    }

    /// A number from the manifest by JSON pointer (`/listener/fd`).
    pub fn num(&self, pointer: &str) -> u64 {
        self.manifest
            .pointer(pointer)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("manifest has no number at {pointer}: {}", self.manifest))
    }

    /// A string from the manifest by JSON pointer.
    pub fn text(&self, pointer: &str) -> String {
        self.manifest
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("manifest has no string at {pointer}: {}", self.manifest))
            .to_string()
    }

    /// `sockscope SUB ARGS... --netns-pid PID`.
    pub fn sockscope(&self, sub: &str, args: &[&str]) -> Run {
        let pid = self.pid.to_string();
        let mut all = vec![sub, "--netns-pid", pid.as_str()];
        all.extend_from_slice(args);
        sockscope(&all)
    }

    /// A command run inside the scene's network namespace.
    pub fn nsenter(&self, cmd: &[&str]) -> Run {
        let pid = self.pid.to_string();
        let mut all = vec!["-t", pid.as_str(), "-n", "--"];
        all.extend_from_slice(cmd);
        run_cmd("nsenter", &all)
    }

    /// A sysctl of the scene's namespace, as the kernel prints it
    /// (whitespace runs collapsed to one space).
    pub fn sysctl(&self, name: &str) -> String {
        let path = format!("/proc/sys/{}", name.replace('.', "/"));
        let run = self.nsenter(&["cat", &path]);
        run.expect_code(0);
        run.stdout.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        drop(self.stdin.take());
        // While the parent lives its children cannot have been reaped, so
        // their pids still name them (they also have PR_SET_PDEATHSIG).
        if matches!(self.proc.try_wait(), Ok(None)) {
            for c in self.manifest["children"].as_array().into_iter().flatten() {
                if let Some(pid) = c
                    .as_u64()
                    .and_then(|p| i32::try_from(p).ok())
                    .and_then(rustix::process::Pid::from_raw)
                {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
            let _ = self.proc.kill();
        }
        let _ = self.proc.wait();
        if let Some(t) = self.manifest["tmpdir"].as_str()
            && t.starts_with("/tmp/sockscope-who-")
        {
            let _ = std::fs::remove_dir_all(t);
        }
    }
}

/// One row of /proc/PID/net/{tcp,tcp6,udp,...}: the file it is in and the
/// line verbatim (without its newline).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcRow {
    pub file: String,
    pub header: String,
    pub line: String,
}

impl ProcRow {
    /// The whitespace-separated fields of the line.
    pub fn tokens(&self) -> Vec<&str> {
        self.line.split_whitespace().collect()
    }
}

/// Rows of /proc/PID/net/FILE for which `pred(tokens)` holds.
pub fn proc_net_rows(pid: u32, file: &str, pred: impl Fn(&[&str]) -> bool) -> Vec<ProcRow> {
    let path = format!("/proc/{pid}/net/{file}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let mut lines = text.split('\n');
    let header = lines.next().unwrap_or_default().to_string();
    lines
        .filter(|l| !l.trim().is_empty())
        .filter(|l| pred(&l.split_whitespace().collect::<Vec<_>>()))
        .map(|l| ProcRow {
            file: format!("/proc/net/{file}"),
            header: header.clone(),
            line: l.to_string(),
        })
        .collect()
}

/// The row of an inet socket (tcp/udp/raw, v4 or v6) by inode: the
/// inode is the 10th field of /proc/net/{tcp,udp,raw}{,6}.
pub fn proc_inet_row(pid: u32, files: &[&str], inode: u64) -> ProcRow {
    let want = inode.to_string();
    let mut rows: Vec<ProcRow> = files
        .iter()
        .flat_map(|f| proc_net_rows(pid, f, |t| t.get(9) == Some(&want.as_str())))
        .collect();
    assert_eq!(
        rows.len(),
        1,
        "expected one row with inode {inode} in /proc/{pid}/net/{files:?}: {rows:#?}"
    );
    rows.remove(0)
}

/// The fds of process `pid` whose link is `socket:[inode]`, found the way
/// the seeds do it: by reading every link in /proc/PID/fd.
pub fn fds_of_socket(pid: u32, inode: u64) -> Vec<u32> {
    let want = format!("socket:[{inode}]");
    let mut fds: Vec<u32> = fd_links(pid)
        .into_iter()
        .filter(|(_, l)| *l == want)
        .map(|(fd, _)| fd)
        .collect();
    fds.sort_unstable();
    fds
}

/// Every fd of a process with its link text, sorted by fd.
pub fn fd_links(pid: u32) -> Vec<(u32, String)> {
    let dir = format!("/proc/{pid}/fd");
    let mut out: Vec<(u32, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {dir}: {e}"))
        .flatten()
        .filter_map(|e| {
            let fd: u32 = e.file_name().to_str()?.parse().ok()?;
            let link = std::fs::read_link(e.path()).ok()?;
            Some((fd, link.display().to_string()))
        })
        .collect();
    out.sort();
    out
}

/// Inode of what /proc/PID/fd/N points at (stat follows the link, as
/// os.stat does).
pub fn fd_target_inode(pid: u32, fd: u32) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let p = format!("/proc/{pid}/fd/{fd}");
    std::fs::metadata(&p)
        .unwrap_or_else(|e| panic!("stat {p}: {e}"))
        .ino()
}

/// /proc/PID/fdinfo/N as key -> value (`pos`, `flags`, `mnt_id`, `ino`).
pub fn fdinfo(pid: u32, fd: u32) -> BTreeMap<String, String> {
    let p = format!("/proc/{pid}/fdinfo/{fd}");
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {p}: {e}"))
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// Names of the open flags in an fdinfo `flags:` octal value, access mode
/// first, for the bits sockets, pipes, eventfds and files opened by these
/// tests can have (include/uapi/asm-generic/fcntl.h). Any other bit fails
/// the test, so an unexpected flag is noticed.
pub fn flag_names(octal: &str) -> Vec<String> {
    let bits = u32::from_str_radix(octal, 8).unwrap_or_else(|e| panic!("flags {octal:?}: {e}"));
    let mut v = vec![
        match bits & 3 {
            0 => "O_RDONLY",
            1 => "O_WRONLY",
            2 => "O_RDWR",
            _ => panic!("flags {octal}: access mode 3"),
        }
        .to_string(),
    ];
    let mut rest = bits & !3;
    for (bit, name) in [
        (0o4000, "O_NONBLOCK"),
        (0o100000, "O_LARGEFILE"),
        (0o2000000, "O_CLOEXEC"),
    ] {
        if rest & bit != 0 {
            v.push(name.to_string());
            rest &= !bit;
        }
    }
    assert_eq!(rest, 0, "flags {octal}: bits {rest:o} not expected here");
    v
}

/// A counter of /proc/PID/net/netstat or snmp (`TcpExt`, `ListenOverflows`).
pub fn net_counter(pid: u32, file: &str, group: &str, name: &str) -> i64 {
    let p = format!("/proc/{pid}/net/{file}");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {p}: {e}"));
    let prefix = format!("{group}:");
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(&prefix)).collect();
    assert_eq!(lines.len(), 2, "{p}: header and values of {group}");
    let names: Vec<&str> = lines[0].split_whitespace().skip(1).collect();
    let values: Vec<&str> = lines[1].split_whitespace().skip(1).collect();
    let i = names
        .iter()
        .position(|n| *n == name)
        .unwrap_or_else(|| panic!("{p}: no {group}.{name}"));
    values[i]
        .parse()
        .unwrap_or_else(|e| panic!("{p}: {group}.{name} = {:?}: {e}", values[i]))
}

/// A field of /proc/PID/stat after the `(comm)` (3 = state, 4 = ppid, ...).
pub fn stat_field(pid: u32, n: usize) -> String {
    let p = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {p}: {e}"));
    let close = text.rfind(')').expect("(comm) in stat");
    text[close + 1..]
        .split_whitespace()
        .nth(n - 3)
        .unwrap_or_else(|| panic!("{p}: no field {n}"))
        .to_string()
}

/// `(pid, fd)` pairs of a JSON owners array, sorted.
pub fn owner_pairs(owners: &Value) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = owners
        .as_array()
        .unwrap_or_else(|| panic!("not an owners array: {owners}"))
        .iter()
        .map(|o| {
            (
                o["pid"].as_u64().unwrap_or(u64::MAX),
                o["fd"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect();
    v.sort_unstable();
    v
}

/// Parse `--json` output that must be one JSON value.
pub fn json_of(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "`{}`: output is not JSON ({e}):\n{}\nstderr:\n{}",
            run.cmdline,
            truncate(&run.stdout),
            run.stderr
        )
    })
}
