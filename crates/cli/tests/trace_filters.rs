//! Filters and attribution: --port, --pid and --comm are applied in the
//! kernel (events of other connections never reach user space: the kernel
//! counts them as filtered); FILTER in ss syntax is applied per
//! connection; a connection that existed before the trace is attributed
//! from the fd-table snapshot taken at start; nothing matched is exit 1;
//! bad arguments are exit 2; --json is one document.

#[path = "common/root.rs"]
mod root;

#[path = "fixtures/trace/harness.rs"]
mod harness;

use harness::*;
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

fn ports(evs: &[&Value]) -> Vec<u64> {
    let mut p: Vec<u64> = evs
        .iter()
        .filter(|v| v["kind"] == "state")
        .flat_map(|v| [port_of(v, "local"), port_of(v, "peer")])
        .flatten()
        .filter(|p| *p != 0)
        .collect();
    p.sort_unstable();
    p.dedup();
    p
}

#[test]
fn port_filter_runs_in_the_kernel() {
    if root::skip_without_root() {
        return;
    }
    // The seed scenario makes connections on one port; the graceful one on
    // another. Trace both namespaces' events with --port for one of them.
    let mut a = Scene::start("graceful", 5060);
    let pid = a.pid.to_string();
    let t = Trace::start(&["--netns-pid", &pid, "--port", "5061"]);
    a.go();
    std::thread::sleep(Duration::from_millis(300));
    let out = t.stop();
    // Nothing on 5061: exit 1, no events, and the kernel filtered them.
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", out.stderr);
    assert!(out.events().is_empty(), "{}", out.dump());
    let s = out.stats();
    assert!(
        s["kernel_filtered"].as_u64().unwrap_or(0) > 0,
        "the kernel dropped them: {s}"
    );
    assert_eq!(
        s["kernel_written"],
        json!(s["kernel_written"].as_u64().unwrap_or(0))
    );

    let mut b = Scene::start("graceful", 5062);
    let pid = b.pid.to_string();
    let t = Trace::start(&["--netns-pid", &pid, "--port", "5062"]);
    let r = b.go();
    std::thread::sleep(Duration::from_millis(300));
    let out = t.stop();
    assert_eq!(out.status.code(), Some(0));
    let cport = r["client_port"].as_u64().unwrap_or(0);
    assert_eq!(ports(&out.events()), {
        let mut v = vec![5062, cport];
        v.sort_unstable();
        v
    });
    // socket() comes before the port is known: held, then shown.
    assert!(
        out.events().iter().any(|v| is_sys(v, "socket")),
        "{}",
        out.dump()
    );
}

#[test]
fn pid_and_comm_filters() {
    if root::skip_without_root() {
        return;
    }
    let mut s = Scene::start("seed003", 5070);
    let pid = s.pid.to_string();
    // Only the server process (the client is a forked child).
    let t = Trace::start(&["--netns-pid", &pid, "--pid", &pid, "--no-data"]);
    let r = s.go();
    std::thread::sleep(Duration::from_millis(300));
    let out = t.stop();
    let evs = out.events();
    assert!(!evs.is_empty());
    for v in &evs {
        assert_eq!(v["pid"], r["server_pid"], "only the server's sockets: {v}");
        assert!(
            !matches!(v["kind"].as_str(), Some("send" | "recv")),
            "--no-data: {v}"
        );
    }
    assert!(
        evs.iter().any(|v| is_state(v, "listening", "syn-recv")),
        "the listener's new connection, via the listener: {}",
        out.dump()
    );

    let mut s = Scene::start("seed003", 5071);
    let pid = s.pid.to_string();
    let t = Trace::start(&["--netns-pid", &pid, "--comm", "nosuchcommand"]);
    s.go();
    std::thread::sleep(Duration::from_millis(300));
    let out = t.stop();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.events().is_empty(), "{}", out.dump());
}

#[test]
fn ss_filter_and_state_filter() {
    if root::skip_without_root() {
        return;
    }
    let mut s = Scene::start("graceful", 5080);
    let pid = s.pid.to_string();
    let t = Trace::start(&[
        "--netns-pid",
        &pid,
        "--state",
        "time-wait",
        "sport",
        "!=",
        ":5080",
    ]);
    let r = s.go();
    std::thread::sleep(Duration::from_millis(1200));
    let out = t.stop();
    let evs = out.events();
    // Only the client side (local port != 5080), only the close that
    // leads to TIME-WAIT.
    let kinds: Vec<String> = evs
        .iter()
        .map(|v| format!("{} {}", v["kind"].as_str().unwrap_or(""), short(v)))
        .collect();
    assert!(
        kinds.contains(&"state fin-wait-1->fin-wait-2".to_string()),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"state fin-wait-2->closed".to_string()),
        "{kinds:?}"
    );
    assert!(
        kinds.iter().any(|k| k.starts_with("time_wait")),
        "{kinds:?}"
    );
    for v in &evs {
        assert_eq!(v["local"]["port"], r["client_port"], "{v}");
    }
}

#[test]
fn preexisting_connection_attributed_from_the_snapshot() {
    if root::skip_without_root() {
        return;
    }
    let (r, out) = traced("preexisting", 5090, &[], Duration::from_millis(300));
    let evs = out.events();
    let cw = evs
        .iter()
        .find(|v| is_state(v, "established", "close-wait"))
        .unwrap_or_else(|| panic!("no CLOSE-WAIT:\n{}", out.dump()));
    assert_eq!(
        (&cw["pid"], &cw["fd"], &cw["owner"]),
        (&r["pid"], &r["conn_fd"], &json!("snapshot")),
        "the server's socket, before any syscall on it: {cw}"
    );
    let conn = cw["conn"].as_u64().unwrap_or(0);
    let row = out
        .connections()
        .into_iter()
        .find(|c| c["conn"] == conn)
        .expect("row")
        .clone();
    assert_eq!(row["preexisting"], true);
    assert_eq!(
        row["states"][0], "established",
        "its state at start, from the snapshot: {row}"
    );
}

#[test]
fn json_document_and_usage_errors() {
    if root::skip_without_root() {
        return;
    }
    let mut s = Scene::start("refused", 5095);
    let mut cmd = Command::new(BIN);
    cmd.args(["trace", "--json", "--netns-pid", &s.pid.to_string()]);
    let t = Trace::spawn(cmd);
    s.go();
    std::thread::sleep(Duration::from_millis(300));
    let (status, text, err) = t.stop_text();
    assert_eq!(status.code(), Some(0), "{err}");
    let doc: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("--json is one document ({e}):\n{text}"));
    let events = doc["events"].as_array().expect("events");
    assert!(
        events.iter().any(|v| v["kind"] == "reset_received"),
        "{doc}"
    );
    assert!(doc["connections"].as_array().is_some_and(|c| !c.is_empty()));
    assert_eq!(doc["stats"]["kernel_lost"], 0);

    for (args, want) in [
        (vec!["trace", "--port", "nosuch"], "--port nosuch"),
        (vec!["trace", "--addr", "10.0.0.1/40"], "--addr 10.0.0.1/40"),
        (vec!["trace", "--state", "sleepy"], "--state sleepy"),
        (
            vec!["trace", "--netns", "no-such-namespace-here"],
            "no-such-namespace-here",
        ),
        (vec!["trace", "dport", "="], "dport"),
    ] {
        let o = Command::new(BIN).args(&args).output().expect("run");
        assert_eq!(
            o.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains(want), "{args:?}: {e}");
    }
}
