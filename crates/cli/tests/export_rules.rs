//! The deploy/ files for `sockscope export`: the alerting rules pass
//! `promtool check rules` and their unit tests (`promtool test rules`:
//! series that must fire and series that must not), and every metric the
//! rules and the Grafana dashboard query is one the exporter serves.

#[path = "common/root.rs"]
mod root;

mod common;
mod export_support;

use common::{Scene, run_cmd};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn deploy(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(rel)
}

fn promtool(args: &[&str]) {
    let run = run_cmd("promtool", args);
    assert_eq!(
        run.code(),
        Some(0),
        "promtool {args:?}:\n{}{}",
        run.stdout,
        run.stderr
    );
}

/// `sockscope_...` names in a PromQL text.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find("sockscope_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

fn exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr" | "definition", Value::String(s)) => out.push(s.clone()),
                    ("query", Value::Object(q)) => {
                        if let Some(Value::String(s)) = q.get("query") {
                            out.push(s.clone());
                        }
                    }
                    _ => exprs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| exprs(x, out)),
        _ => {}
    }
}

#[test]
fn alerting_rules_pass_their_unit_tests() {
    let rules = deploy("prometheus/sockscope-alerts.yml");
    promtool(&["check", "rules", rules.to_str().unwrap()]);
    let tests = deploy("prometheus/sockscope-alerts.test.yml");
    promtool(&["test", "rules", tests.to_str().unwrap()]);
}

#[test]
fn rules_and_dashboard_query_served_metrics() {
    if root::skip_without_root() {
        return;
    }
    // A scene with listeners, so every family has samples.
    let sc = Scene::start("backlog");
    let run = sc.sockscope("export", &["--once"]);
    run.expect_code(0);
    let served: BTreeSet<String> = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    assert!(served.contains("sockscope_listener_accept_queue_connections"));
    // The BPF families (served, not --once), with samples: a SYN to a
    // closed port (a drop), and a scrape's connection (a handshake and,
    // once closed, a duration on the exporter's port).
    let mut served = served;
    let ex = export_support::Exporter::start(sc.pid, 9469, &["--bpf"]);
    export_support::in_netns(sc.pid, || {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let _ = std::net::TcpStream::connect(closed).expect_err("a closed port");
    });
    assert_eq!(ex.get("/metrics").status, 200);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let body = ex.get("/metrics").body;
    for line in body.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let mut w = line.split_whitespace();
        let (Some(name), Some(kind)) = (w.next(), w.next()) else {
            continue;
        };
        served.insert(name.to_string());
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                served.insert(format!("{name}{suffix}"));
            }
        }
    }
    for family in [
        "sockscope_tcp_drops_by_port_total",
        "sockscope_tcp_handshake_seconds_bucket",
        "sockscope_tcp_connection_duration_seconds_bucket",
    ] {
        assert!(served.contains(family), "{family} not served:\n{body}");
    }

    let rules = std::fs::read_to_string(deploy("prometheus/sockscope-alerts.yml")).unwrap();
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy("grafana/sockscope-export.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let mut all = vec![rules];
    exprs(&dash, &mut all);
    assert!(all.len() > 10, "the dashboard has queries: {}", all.len());
    let mut used = BTreeSet::new();
    for e in &all {
        used.extend(metric_names(e));
    }
    let missing: Vec<_> = used.difference(&served).collect();
    assert!(missing.is_empty(), "queried but not served: {missing:?}");
    assert!(used.len() >= 12, "{used:?}");
}
