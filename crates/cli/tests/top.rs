//! `sockscope top --once / --iterations N --json` against known workloads in
//! private network namespaces: the listen(5) scene of who_scenes.py (ten
//! clients, never accepted: accept queue 6 of backlog 5), and a connection
//! moving a known number of bytes per second (fixtures/top_rate.py).

#[path = "common/root.rs"]
mod root;

mod common;

use common::{BIN, Scene, require_root, sockscope};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn once_json_listener_queue_processes_and_namespace() {
    if root::skip_without_root() {
        return;
    }
    let sc = Scene::start("backlog");
    let run = sc.sockscope("top", &["--once", "--json", "-d", "0.3"]);
    run.expect_code(0);
    let v = json_lines(&run.stdout);
    assert_eq!(v.len(), 1, "--once prints one refresh");
    let r = &v[0];
    assert_eq!(r["schema"], "sockscope.top/1");
    assert!(
        r["interval_s"].as_f64().unwrap() >= 0.29,
        "{}",
        r["interval_s"]
    );
    let l = r["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["listener"]["local"]["port"] == 7000)
        .unwrap_or_else(|| panic!("no listener on 7000: {r}"));
    assert_eq!(l["accept_queue"], 6, "{l}");
    assert_eq!(l["backlog"], 5);
    assert_eq!(l["full"], true);
    assert_eq!(l["children"], 6);
    assert_eq!(l["reuseport_group"], 1);
    assert_eq!(
        l["accepted_per_s"], 0.0,
        "nothing new after the scene started"
    );
    // 2 listeners, 6 accepted + 6 client ends, 4 clients in SYN-SENT.
    let conns = r["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 18, "{}", run.stdout);
    assert!(conns.iter().all(|c| c["status"] == "open"));
    let syn = conns.iter().filter(|c| c["state"] == "syn-sent").count();
    assert_eq!(syn, 4);
    let p = r["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == sc.pid)
        .expect("the scene's process");
    // The accepted ends are in the queue, not in any fd table.
    assert_eq!(p["sockets"], 12);
    assert_eq!(p["by_state"]["established"], 6);
    assert_eq!(p["by_state"]["listening"], 2);
    assert_eq!(p["by_state"]["syn-sent"], 4);
    let ns = r["namespaces"].as_array().unwrap();
    assert_eq!(ns.len(), 1);
    assert_eq!(ns[0]["sockets"], 18);
    assert_eq!(ns[0]["listening"], 2);
    assert!(
        ns[0]["counters_per_s"]
            .get("TcpExt.ListenOverflows")
            .is_some(),
        "{}",
        ns[0]
    );

    // The filter language of ls, and the text view.
    let run = sc.sockscope(
        "top",
        &["--once", "--json", "-d", "0.2", "sport", "=", ":7001"],
    );
    run.expect_code(0);
    let r = &json_lines(&run.stdout)[0];
    let conns = r["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 1, "{r}");
    assert_eq!(r["listeners"].as_array().unwrap().len(), 1);
    let run = sc.sockscope(
        "top",
        &[
            "--once",
            "-d",
            "0.2",
            "--view",
            "listeners",
            "--width",
            "80",
        ],
    );
    run.expect_code(0);
    let row = run
        .stdout
        .lines()
        .find(|l| l.starts_with("127.0.0.1:7000 "))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    let t: Vec<&str> = row.split_whitespace().collect();
    assert_eq!((t[2], t[3]), ("6", "5"), "{row}");
}

#[test]
fn one_new_connection_shows_as_new_and_accepted() {
    if root::skip_without_root() {
        return;
    }
    let mut sc = Scene::start("backlog");
    // A new client while top is between its two reads: the queue is full,
    // so it stays in SYN-SENT; it is new in the second refresh.
    let pid = sc.pid.to_string();
    let child = Command::new(BIN)
        .args([
            "top",
            "--netns-pid",
            &pid,
            "--iterations",
            "1",
            "--json",
            "-d",
            "1",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    let c = sc.command("connect");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let r = &json_lines(&String::from_utf8_lossy(&out.stdout))[0];
    assert_eq!(r["opened"], 1, "{r}");
    let new: Vec<&Value> = r["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "new")
        .collect();
    assert_eq!(new.len(), 1);
    assert_eq!(new[0]["local"]["port"], c["port"]);
    // Its owner is found although the fd tables are walked only when such
    // a socket appears.
    assert_eq!(new[0]["owners"][0]["pid"], sc.pid, "{}", new[0]);
}

struct RateScene {
    child: Child,
    manifest: Value,
}

impl Drop for RateScene {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rate_scene(rate: u64) -> RateScene {
    require_root();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/top_rate.py");
    let mut child = Command::new("unshare")
        .args(["-n", "--", "python3", script, &rate.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("unshare -n python3 top_rate.py");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let manifest: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("manifest ({e}): {line}"));
    RateScene { child, manifest }
}

#[test]
fn rate_of_a_known_connection_is_within_10_percent() {
    if root::skip_without_root() {
        return;
    }
    let rate = 400_000.0;
    let sc = rate_scene(rate as u64);
    let pid = sc.manifest["pid"].to_string();
    let cport = sc.manifest["client_port"].as_u64().unwrap();
    let run = sockscope(&[
        "top",
        "--netns-pid",
        &pid,
        "--iterations",
        "3",
        "-d",
        "1",
        "--json",
    ]);
    run.expect_code(0);
    let v = json_lines(&run.stdout);
    assert_eq!(v.len(), 3);
    for r in &v {
        let conns = r["connections"].as_array().unwrap();
        let client = conns
            .iter()
            .find(|c| c["local"]["port"] == cport)
            .expect("client row");
        let server = conns
            .iter()
            .find(|c| c["local"]["port"] == 7800 && c["peer"]["port"] == cport)
            .expect("server row");
        let out = client["out_bytes_per_s"].as_f64().unwrap();
        let inb = server["in_bytes_per_s"].as_f64().unwrap();
        for (what, got) in [("client out", out), ("server in", inb)] {
            assert!(
                (got - rate).abs() <= rate * 0.10,
                "{what}: {got} bytes/s, expected {rate} ± 10 %"
            );
        }
        assert!(client["rtt_us"].as_u64().unwrap() > 0);
        let p = r["processes"].as_array().unwrap();
        assert_eq!(p.len(), 1);
        let pout = p[0]["out_bytes_per_s"].as_f64().unwrap();
        assert!((pout - rate).abs() <= rate * 0.2, "process out {pout}");
    }
}

#[test]
fn bad_arguments_are_usage_errors() {
    for args in [
        vec!["top", "--json"],
        vec!["top", "--once", "-d", "0"],
        vec!["top", "--iterations", "0"],
        vec!["top", "--once", "sport", "=", ":zz"],
    ] {
        let run = sockscope(&args);
        assert_eq!(run.code(), Some(2), "{args:?}: {}", run.stderr);
        assert!(run.stderr.starts_with("sockscope: "), "{}", run.stderr);
    }
    // Not a terminal and no --once: say what to do.
    let run = sockscope(&["top"]);
    assert_eq!(run.code(), Some(2));
    assert!(run.stderr.contains("--once"), "{}", run.stderr);
}
