//! `sockscope ls` without `--sort` streams: a dump thread hands batches of
//! rows to the writer as the kernel produces them, and a table's column
//! widths are measured on its first rows only. These tests build more
//! sockets than that (bench/mksockets.py in a private namespace, spread
//! over several processes) and check that the streamed output has exactly
//! the rows of the sorted (fully collected) path, owners included, in ss's
//! order, and that a reader closing the pipe early stops it cleanly.

#[path = "common/root.rs"]
mod root;

mod common;

use common::{BIN, require_root, run_cmd, sockscope};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

const MKSOCKETS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/mksockets.py");

/// Established sockets built (more than the 4096 rows a table measures).
const N: usize = 6000;
/// Processes holding them.
const P: usize = 3;
/// Listeners mksockets opens (its default), on ports 20000..20008.
const LISTENERS: usize = 8;

/// mksockets.py running in its own network namespace; stopped on drop.
struct Many {
    child: Child,
    stdin: Option<ChildStdin>,
    pid: String,
}

impl Many {
    fn start() -> Many {
        require_root();
        let n = N.to_string();
        let p = P.to_string();
        let mut child = Command::new("unshare")
            .args([
                "-n",
                "--",
                "sh",
                "-c",
                "ip link set lo up && exec python3 \"$@\"",
                "sh",
                MKSOCKETS,
                "-n",
                &n,
                "-p",
                &p,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn unshare -n python3 bench/mksockets.py");
        let stdin = child.stdin.take();
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        let _ = out.read_line(&mut line);
        let Some(pid) = line.trim().strip_prefix("READY ") else {
            let _ = child.kill();
            let _ = child.wait();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("mksockets printed {line:?} instead of READY; stderr:\n{err}");
        };
        let pid = pid.to_string();
        assert_eq!(
            pid,
            child.id().to_string(),
            "mksockets runs as the spawned pid"
        );
        Many { child, stdin, pid }
    }

    fn ls(&self, args: &[&str]) -> common::Run {
        let mut all = vec!["ls", "--netns-pid", self.pid.as_str()];
        all.extend_from_slice(args);
        sockscope(&all)
    }
}

impl Drop for Many {
    fn drop(&mut self) {
        // End of file on stdin: mksockets stops its children and exits.
        drop(self.stdin.take());
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The rows of a table as their cells, header first.
fn cells(text: &str) -> Vec<Vec<&str>> {
    text.lines()
        .map(|l| l.split_whitespace().collect())
        .collect()
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

fn inode(v: &Value) -> u64 {
    v["inode"].as_u64().expect("inode")
}

#[test]
fn streamed_rows_are_the_sorted_paths_rows_with_owners() {
    if root::skip_without_root() {
        return;
    }
    let m = Many::start();
    // (arguments, data rows expected, header line)
    let cases: [(&[&str], usize, bool); 3] = [
        (&["-tanp"], N + LISTENERS, true),
        (&["-tanpe", "-H"], N + LISTENERS, false),
        // The accepted ends on one listener's port (established only).
        (&["-tnp", "sport = :20003"], N / 2 / LISTENERS, true),
    ];
    for (args, rows, header) in cases {
        let streamed = m.ls(args);
        streamed.expect_code(0);
        let mut with_sort = args.to_vec();
        with_sort.extend(["--sort", "inode"]);
        let collected = m.ls(&with_sort);
        collected.expect_code(0);
        let a = cells(&streamed.stdout);
        let b = cells(&collected.stdout);
        let header = usize::from(header);
        assert_eq!(a.len(), rows + header, "{args:?}");
        assert_eq!(
            sorted(a.clone()),
            sorted(b),
            "{args:?}: same rows both ways"
        );
        // Every socket belongs to a mksockets process.
        let owned = a
            .iter()
            .skip(header)
            .filter(|r| r.iter().any(|c| c.contains("pid=")))
            .count();
        assert_eq!(owned, rows, "{args:?}: every row names its owners");
    }

    let streamed = m.ls(&["-tanp", "--json"]);
    streamed.expect_code(0);
    let collected = m.ls(&["-tanp", "--json", "--sort", "inode"]);
    collected.expect_code(0);
    let mut a = streamed.json_array();
    let b = collected.json_array();
    assert_eq!(a.len(), N + LISTENERS);
    a.sort_by_key(inode);
    assert_eq!(a, b, "--json: same objects, owners included");
    for v in &a {
        assert!(
            !v["owners"].as_array().expect("owners").is_empty(),
            "owned by mksockets: {v}"
        );
    }
    let lines = m.ls(&["-tanp", "--jsonl"]);
    lines.expect_code(0);
    let mut c: Vec<Value> = lines
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    c.sort_by_key(inode);
    assert_eq!(c, b, "--jsonl: same objects");
}

#[test]
fn streamed_order_is_the_kernels_as_ss_lists_it() {
    if root::skip_without_root() {
        return;
    }
    let m = Many::start();
    let ours = m.ls(&["-tan", "-H"]);
    ours.expect_code(0);
    let ss = run_cmd("nsenter", &["-t", &m.pid, "-n", "--", "ss", "-tanH"]);
    ss.expect_code(0);
    let endpoints = |t: &str| -> Vec<(String, String)> {
        t.lines()
            .map(|l| {
                let c: Vec<&str> = l.split_whitespace().collect();
                (c[3].to_string(), c[4].to_string())
            })
            .collect()
    };
    let (a, b) = (endpoints(&ours.stdout), endpoints(&ss.stdout));
    assert_eq!(a.len(), N + LISTENERS);
    assert_eq!(a, b, "rows in ss's order");
}

#[test]
fn a_reader_that_stops_early_ends_the_stream_quietly() {
    if root::skip_without_root() {
        return;
    }
    let m = Many::start();
    let mut child = Command::new(BIN)
        .args(["ls", "--netns-pid", &m.pid, "-tanp"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sockscope");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    out.read_line(&mut first).expect("a first line");
    assert!(first.starts_with("State"), "{first:?}");
    drop(out);
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "sockscope kept running after its reader went away"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr");
    assert_eq!(
        status.code(),
        Some(0),
        "closed pipe is not an error; stderr: {err}"
    );
    assert!(err.is_empty(), "nothing to say about a closed pipe: {err}");
}

/// `--all-netns` reads namespaces on two threads at once: the rows must
/// still be each namespace's, once, one namespace after another.
#[test]
fn all_netns_streams_each_namespace_whole_and_once() {
    if root::skip_without_root() {
        return;
    }
    require_root();
    let prefix = format!("ss-stream-{}", std::process::id());
    let mknetns = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/mknetns.py");
    let mut child = Command::new("python3")
        .args([mknetns, "-c", "5", "-n", "200", "--prefix", &prefix])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bench/mknetns.py");
    let stdin = child.stdin.take();
    let mut line = String::new();
    let _ = BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line);
    let stop = |mut child: Child, stdin: Option<ChildStdin>| {
        drop(stdin);
        let _ = child.wait();
    };
    if !line.starts_with("READY ") {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        stop(child, stdin);
        panic!("mknetns printed {line:?}; stderr:\n{err}");
    }
    let streamed = sockscope(&["ls", "-tan", "-H", "--all-netns"]);
    let collected = sockscope(&["ls", "-tan", "-H", "--all-netns", "--sort", "inode"]);
    stop(child, stdin);
    streamed.expect_code(0);
    collected.expect_code(0);
    let a = cells(&streamed.stdout);
    let b = cells(&collected.stdout);
    // Namespaces come and go on a shared machine: compare ours only.
    let ours = |rows: &[Vec<&str>]| -> Vec<Vec<String>> {
        rows.iter()
            .filter(|r| r[0].starts_with(&prefix))
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect()
    };
    let (a, b) = (ours(&a), ours(&b));
    assert_eq!(a.len(), 5 * 201, "5 namespaces x (200 + 1 listener)");
    assert_eq!(
        sorted(a.clone()),
        sorted(b),
        "same rows streamed and sorted"
    );
    // Each namespace's rows in one run.
    let mut seen: Vec<&str> = Vec::new();
    for r in &a {
        if seen.last() != Some(&r[0].as_str()) {
            assert!(!seen.contains(&r[0].as_str()), "{} split in two runs", r[0]);
            seen.push(&r[0]);
        }
    }
    assert_eq!(seen.len(), 5);
}
