//! A real Prometheus server scrapes `sockscope export`, both inside the
//! private network namespace of scene `backlog` (listen(5), ten clients
//! never accepted), and PromQL through its HTTP API returns what the
//! kernel holds: accept queue 6 (backlog+1), backlog 5, the scene's
//! process with its sockets by state, and TcpExt.ListenOverflows rising
//! when one more client knocks. Prometheus scrapes every second.

#[path = "common/root.rs"]
mod root;

mod common;
mod export_support;

use common::{Scene, net_counter};
use export_support::{Exporter, get};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EXPORTER: u16 = 9469;
const PROMETHEUS: u16 = 9090;

struct Prometheus {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_prometheus(ns_pid: u32) -> Prometheus {
    let dir = std::env::temp_dir().join(format!("sockscope-export-prom-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: sockscope\n    static_configs:\n      - targets: ['127.0.0.1:{EXPORTER}']\n"
        ),
    )
    .unwrap();
    let pid = ns_pid.to_string();
    let child = Command::new("nsenter")
        .args(["-t", &pid, "-n", "--", "prometheus"])
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{PROMETHEUS}"))
        .arg("--log.level=error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (apt-get install prometheus; scripts/test installs it)");
    let mut p = Prometheus { child, dir };
    let start = Instant::now();
    loop {
        if let Ok(Some(st)) = p.child.try_wait() {
            panic!("prometheus exited: {st}");
        }
        if export_support::connect(ns_pid, PROMETHEUS).is_ok()
            && get(ns_pid, PROMETHEUS, "/-/ready", None).status == 200
        {
            return p;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "prometheus not ready after 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Instant query: the value of each series, by the given label.
fn query(ns_pid: u32, promql: &str) -> Vec<(Value, f64)> {
    let r = get(
        ns_pid,
        PROMETHEUS,
        &format!("/api/v1/query?query={}", urlencode(promql)),
        None,
    );
    assert_eq!(r.status, 200, "{promql}: {r:?}");
    let v: Value = serde_json::from_str(&r.body).expect("API answer is JSON");
    assert_eq!(v["status"], "success", "{promql}: {v}");
    v["data"]["result"]
        .as_array()
        .expect("vector result")
        .iter()
        .map(|s| {
            let val = s["value"][1]
                .as_str()
                .expect("value")
                .parse()
                .expect("number");
            (s["metric"].clone(), val)
        })
        .collect()
}

/// Wait until `promql` returns exactly one series, and return its value.
fn one_value(ns_pid: u32, promql: &str, until: impl Fn(f64) -> bool) -> f64 {
    let start = Instant::now();
    loop {
        let r = query(ns_pid, promql);
        if let [(_, v)] = r.as_slice()
            && until(*v)
        {
            return *v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{promql}: still {r:?} after 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn prometheus_scrapes_the_exporter() {
    if root::skip_without_root() {
        return;
    }
    let mut sc = Scene::start("backlog");
    let pid = sc.pid;
    let port = sc.num("/port");
    let _ex = Exporter::start(pid, EXPORTER, &["--top", "100000"]);
    let _prom = start_prometheus(pid);

    let sel = format!("{{port=\"{port}\",process=\"python3\",pid=\"{pid}\"}}");
    let aq = one_value(
        pid,
        &format!("sockscope_listener_accept_queue_connections{sel}"),
        |_| true,
    );
    assert_eq!(aq, 6.0, "backlog 5 admits 6");
    let bl = one_value(
        pid,
        &format!("sockscope_listener_backlog_connections{sel}"),
        |_| true,
    );
    assert_eq!(bl, 5.0);
    let up = one_value(pid, "up{job=\"sockscope\"}", |_| true);
    assert_eq!(up, 1.0, "the target is healthy");

    // The scene's process: 2 listeners, 6 established clients, 4 in SYN-SENT.
    let by_state = query(pid, &format!("sockscope_process_sockets{{pid=\"{pid}\"}}"));
    let mut got: Vec<(String, f64)> = by_state
        .iter()
        .map(|(m, v)| (m["state"].as_str().unwrap_or("?").to_string(), *v))
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            ("established".into(), 6.0),
            ("listening".into(), 2.0),
            ("syn-sent".into(), 4.0)
        ]
    );

    // ListenOverflows rises when one more client is dropped.
    let lo = "sockscope_tcp_listen_overflows_total";
    let before = one_value(pid, lo, |_| true);
    let c = sc.command("connect");
    assert_eq!(c["state"], 2, "the new client stays in SYN-SENT: {c}");
    let kernel = net_counter(pid, "netstat", "TcpExt", "ListenOverflows") as f64;
    assert!(
        kernel > before,
        "the kernel counted the drop: {kernel} > {before}"
    );
    let after = one_value(pid, lo, |v| v >= kernel);
    assert!(after > before);
    // And PromQL sees the rise as such.
    let rise = one_value(pid, &format!("{lo} - {lo} offset 2s"), |v| v > 0.0);
    assert!(rise >= 1.0, "{rise}");
}
