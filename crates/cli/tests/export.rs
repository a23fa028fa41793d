//! `sockscope export` against known workloads in private network
//! namespaces (scene `backlog` of tests/fixtures/who_scenes.py: listen(5)
//! with ten clients never accepted, so the accept queue holds backlog+1 =
//! 6 and four clients stay in SYN-SENT; a second listener's listen(1000)
//! is capped to somaxconn 64). The exporter runs inside the namespace
//! (`nsenter -n`) and every HTTP request comes from a thread that entered
//! it, so nothing leaves the namespace.
//!
//! Checked: the values of the listener, namespace and process series;
//! promtool accepts the exposition; OpenMetrics when asked for; --json
//! and --max-series folding; concurrent scrapes all served; a client sending a
//! byte a second neither blocks a normal scrape nor stays connected past
//! --read-timeout; oversized heads, methods and paths; the connection cap;
//! SIGTERM/SIGINT exits within a second, also with a client connected;
//! bad flags and an address in use exit 2 with the fix; half-open counts
//! (scene `halfopen`), reuseport groups (scene `reuseport`), platform labels
//! from a real cgroup v2 move, and foreign process names as label values.

#[path = "common/root.rs"]
mod root;

mod common;
mod export_support;

use common::{Scene, json_of, net_counter, sockscope};
use export_support::{Exporter, connect, exchange, get, one, samples};
use rustix::process::Signal;
use serde_json::json;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PORT: u16 = 9469;

fn promtool_check(text: &str) {
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus; scripts/test installs it)");
    p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn scrape_reports_the_backlog_scene() {
    if root::skip_without_root() {
        return;
    }
    let sc = Scene::start("backlog");
    let pid = sc.pid;
    let pid_s = pid.to_string();
    let port = sc.num("/port").to_string();
    let ex = Exporter::start(pid, PORT, &["--top", "100000"]);
    let before = net_counter(pid, "netstat", "TcpExt", "ListenOverflows");
    let r = ex.get("/metrics");
    let after = net_counter(pid, "netstat", "TcpExt", "ListenOverflows");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.headers
            .contains("Content-Type: text/plain; version=0.0.4"),
        "{}",
        r.headers
    );
    promtool_check(&r.body);
    let all = samples(&r.body);
    let netns = format!("net:[{}]", common::netns_inode(pid));
    let l = [
        ("netns", netns.as_str()),
        ("addr", "127.0.0.1"),
        ("port", port.as_str()),
        ("proto", "tcp"),
        ("process", "python3"),
        ("pid", pid_s.as_str()),
    ];
    assert_eq!(
        one(&all, "sockscope_listener_accept_queue_connections", &l),
        6.0
    );
    assert_eq!(one(&all, "sockscope_listener_backlog_connections", &l), 5.0);
    assert_eq!(
        one(&all, "sockscope_listener_syn_recv_connections", &l),
        0.0
    );
    assert_eq!(
        one(&all, "sockscope_listener_reuseport_group_sockets", &l),
        1.0
    );
    let clamped = sc.num("/clamped/port").to_string();
    assert_eq!(
        one(
            &all,
            "sockscope_listener_backlog_connections",
            &[("port", clamped.as_str())]
        ),
        64.0,
        "listen(1000) capped by somaxconn 64"
    );
    let n = [("netns", netns.as_str())];
    assert_eq!(one(&all, "sockscope_somaxconn_connections", &n), 64.0);
    let lo = one(&all, "sockscope_tcp_listen_overflows_total", &n);
    assert!(
        (before as f64..=after as f64).contains(&lo) && lo >= 4.0,
        "ListenOverflows {lo}: /proc said {before}..={after}, and 4 clients were dropped"
    );
    // Namespace: 6 client ends + 6 queued server ends established, two
    // listeners, four clients in SYN-SENT; and the exporter's own listener
    // with this scrape's connection (both ends).
    let tcp = |state| {
        one(
            &all,
            "sockscope_sockets",
            &[
                ("netns", netns.as_str()),
                ("proto", "tcp"),
                ("state", state),
            ],
        )
    };
    assert_eq!(
        (tcp("established"), tcp("listening"), tcp("syn-sent")),
        (12.0 + 2.0, 2.0 + 1.0, 4.0)
    );
    // The process: its 12 sockets by state (the queued server ends have
    // no file yet, so they are nobody's).
    let p = |state| {
        one(
            &all,
            "sockscope_process_sockets",
            &[
                ("pid", pid_s.as_str()),
                ("process", "python3"),
                ("state", state),
            ],
        )
    };
    assert_eq!(
        (p("listening"), p("established"), p("syn-sent")),
        (2.0, 6.0, 4.0)
    );
    assert_eq!(
        export_support::find(
            &all,
            "sockscope_process_sockets",
            &[("pid", pid_s.as_str())]
        )
        .len(),
        3,
        "no other states for the scene's process"
    );
    assert_eq!(one(&all, "sockscope_export_scrapes_total", &[]), 1.0);

    // OpenMetrics when asked for: counters typed without _total, # EOF.
    let om = get(
        pid,
        PORT,
        "/metrics",
        Some("application/openmetrics-text; version=1.0.0"),
    );
    assert!(
        om.headers.contains("application/openmetrics-text"),
        "{}",
        om.headers
    );
    assert!(om.body.ends_with("# EOF\n"));
    assert!(
        om.body
            .contains("# TYPE sockscope_tcp_listen_overflows counter\n")
    );
    assert!(
        r.body
            .contains("# TYPE sockscope_tcp_listen_overflows_total counter\n")
    );
    let om_all = samples(&om.body);
    assert_eq!(
        one(&om_all, "sockscope_listener_accept_queue_connections", &l),
        6.0
    );
    assert_eq!(one(&om_all, "sockscope_export_scrapes_total", &[]), 2.0);
}

#[test]
fn json_once_and_max_series_folding() {
    if root::skip_without_root() {
        return;
    }
    let sc = Scene::start("backlog");
    let run = sc.sockscope("export", &["--json"]);
    run.expect_code(0);
    let v = json_of(&run);
    assert_eq!(v["schema"], json!("sockscope.export/1"));
    let l = v["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["port"] == json!(sc.num("/port").to_string()))
        .expect("the backlog listener");
    assert_eq!((&l["accept_queue"], &l["backlog"]), (&json!(6), &json!(5)));
    assert_eq!(v["folded"]["listeners"], json!(0));

    // A budget of one series: the namespace is always kept, both listeners
    // fold into port="other" with summed queues, every process is "other".
    let run = sc.sockscope("export", &["--json", "--max-series", "1"]);
    run.expect_code(0);
    let v = json_of(&run);
    assert_eq!(v["folded"]["listeners"], json!(2), "{v}");
    let ls = v["listeners"].as_array().unwrap();
    assert_eq!(ls.len(), 1, "{v}");
    assert_eq!(ls[0]["port"], json!("other"));
    assert_eq!(ls[0]["accept_queue"], json!(6));
    assert_eq!(ls[0]["backlog"], json!(5 + 64));
    let procs = v["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 1);
    assert_eq!(procs[0]["process"], json!("other"));

    let run = sc.sockscope("export", &["--once", "--max-series", "1"]);
    run.expect_code(0);
    promtool_check(&run.stdout);
    let all = samples(&run.stdout);
    assert_eq!(
        one(
            &all,
            "sockscope_export_folded_total",
            &[("kind", "listener")]
        ),
        2.0
    );
    assert_eq!(
        one(
            &all,
            "sockscope_listener_accept_queue_connections",
            &[("port", "other")]
        ),
        6.0
    );
    assert_eq!(one(&all, "sockscope_export_folded_series", &[]), 8.0);
}

#[test]
fn slow_clients_do_not_stall_scrapes_and_are_cut_off() {
    if root::skip_without_root() {
        return;
    }
    let sc = export_support::namespace();
    let pid = sc.pid;
    let ex = Exporter::start(pid, PORT, &["--read-timeout", "4"]);

    // A client that sends one byte a second.
    let slow = connect(pid, PORT).unwrap();
    let mut slow_w = slow.try_clone().unwrap();
    let dribble = std::thread::spawn(move || {
        let t0 = Instant::now();
        for b in b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" {
            if slow_w.write_all(&[*b]).is_err() {
                break; // the exporter hung up on us
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        t0.elapsed()
    });
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let r = ex.get("/metrics");
    let took = t0.elapsed();
    assert_eq!(r.status, 200);
    // Were the scrape queued behind the slow client, it would wait for its
    // 4 s deadline.
    assert!(
        took < Duration::from_millis(2500),
        "a normal scrape took {took:?} while a slow client dribbled"
    );
    // The slow client is answered 408 and closed at the deadline.
    let resp = exchange(slow, b"", Duration::from_secs(10));
    assert_eq!(resp.status, 408, "{resp:?}");
    let dribbled = dribble.join().unwrap();
    assert!(
        dribbled < Duration::from_secs(12),
        "the slow client was not cut off ({dribbled:?})"
    );

    // An oversized head is refused, so are other methods and paths.
    let big = format!(
        "GET /metrics HTTP/1.1\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let r = exchange(
        connect(pid, PORT).unwrap(),
        big.as_bytes(),
        Duration::from_secs(5),
    );
    assert_eq!(r.status, 431);
    let r = exchange(
        connect(pid, PORT).unwrap(),
        b"POST /metrics HTTP/1.1\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(r.status, 405);
    assert_eq!(ex.get("/nothing").status, 404);
    let r = exchange(
        connect(pid, PORT).unwrap(),
        b"\x01\x02 garbage\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(r.status, 400);

    // Sixteen idle connections fill the cap: the next one is turned away
    // at once instead of queueing.
    let idle: Vec<_> = (0..16).map(|_| connect(pid, PORT).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let r = exchange(
        connect(pid, PORT).unwrap(),
        b"GET /metrics HTTP/1.1\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(r.status, 503);
    assert!(t0.elapsed() < Duration::from_secs(1));
    drop(idle);
    // Once they are gone (closed: their threads see EOF) scrapes work again.
    let start = Instant::now();
    loop {
        let r = ex.get("/metrics");
        if r.status == 200 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "still {r:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn concurrent_scrapes_are_all_served_and_counted_once() {
    if root::skip_without_root() {
        return;
    }
    let sc = export_support::namespace();
    let pid = sc.pid;
    let ex = Exporter::start(pid, PORT, &[]);
    let bodies: Vec<String> = std::thread::scope(|s| {
        let h: Vec<_> = (0..4).map(|_| s.spawn(|| ex.get("/metrics"))).collect();
        h.into_iter()
            .map(|h| {
                let r = h.join().unwrap();
                assert_eq!(r.status, 200);
                r.body
            })
            .collect()
    });
    let mut counts: Vec<f64> = bodies
        .iter()
        .map(|b| one(&samples(b), "sockscope_export_scrapes_total", &[]))
        .collect();
    counts.sort_by(f64::total_cmp);
    assert_eq!(
        counts,
        vec![1.0, 2.0, 3.0, 4.0],
        "each scrape saw its own count"
    );
}

#[test]
fn sigterm_and_sigint_stop_within_a_second() {
    if root::skip_without_root() {
        return;
    }
    let sc = export_support::namespace();
    for sig in [Signal::TERM, Signal::INT] {
        let mut ex = Exporter::start(sc.pid, PORT, &[]);
        // A client in the middle of its request does not hold the exit up.
        let mut c = connect(sc.pid, PORT).unwrap();
        c.write_all(b"GET /met").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let (code, took) = ex.stop(sig);
        assert_eq!(code, Some(0), "{sig:?}");
        assert!(took < Duration::from_secs(1), "{sig:?} took {took:?}");
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
    }
}

#[test]
fn bad_flags_and_address_in_use() {
    if root::skip_without_root() {
        return;
    }
    let sc = export_support::namespace();
    let _ex = Exporter::start(sc.pid, PORT, &[]);
    let listen = format!("127.0.0.1:{PORT}");
    let run = sc.nsenter(&[common::BIN, "export", "--listen", &listen]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("in use") && run.stderr.contains("--listen ADDR:PORT"),
        "{}",
        run.stderr
    );
    for (args, want) in [
        (&["--listen", "nowhere"][..], "not ADDR:PORT"),
        (&["--listen", "127.0.0.1:99999"][..], "not ADDR:PORT"),
        (&["--read-timeout", "0"][..], "--read-timeout"),
        (&["--max-series", "0"][..], "--max-series"),
        (
            &["--once", "--kubelet-root", "/nonexistent/kubelet"][..],
            "--kubelet-root /nonexistent/kubelet: not a directory",
        ),
        (
            &["--once", "--container-logs", "/nonexistent/logs"][..],
            "--container-logs /nonexistent/logs: not a directory",
        ),
        (
            &["--listen", "192.0.2.1:9469"][..],
            "no interface of this host",
        ),
    ] {
        let mut all = vec!["export"];
        all.extend_from_slice(args);
        let run = sockscope(&all);
        run.expect_code(2);
        assert!(run.stderr.contains(want), "{args:?}: {}", run.stderr);
    }
}

/// The cgroup v2 mount point (from /proc/self/mountinfo).
fn cgroup2_mount() -> std::path::PathBuf {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    info.lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (right.split_whitespace().next() == Some("cgroup2"))
                .then(|| left.split_whitespace().nth(4).map(std::path::PathBuf::from))?
        })
        .expect("a cgroup v2 hierarchy must be mounted for this test (/sys/fs/cgroup or /sys/fs/cgroup/unified)")
}

/// Moves a process into cgroup directories made for the test, and back to
/// where it was (and removes them) when dropped.
struct CgroupMove {
    mount: std::path::PathBuf,
    pid: u32,
    home: String,
    made: Vec<std::path::PathBuf>,
}

impl CgroupMove {
    fn new(pid: u32) -> CgroupMove {
        let home = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("0::").map(str::to_string))
            .expect("the scene's cgroup v2 path");
        CgroupMove {
            mount: cgroup2_mount(),
            pid,
            home,
            made: Vec::new(),
        }
    }
    /// Make `rel` (under the mount) and move the process there.
    fn enter(&mut self, rel: &str) {
        let mut dir = self.mount.clone();
        for comp in rel.split('/') {
            dir.push(comp);
            if !dir.exists() {
                std::fs::create_dir(&dir)
                    .unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
                self.made.push(dir.clone());
            }
        }
        std::fs::write(dir.join("cgroup.procs"), self.pid.to_string())
            .unwrap_or_else(|e| panic!("move {} into {}: {e}", self.pid, dir.display()));
        let now = std::fs::read_to_string(format!("/proc/{}/cgroup", self.pid)).unwrap();
        assert!(now.contains(&format!("0::/{rel}")), "{now}");
    }
}

impl Drop for CgroupMove {
    fn drop(&mut self) {
        let home = self.mount.join(self.home.trim_start_matches('/'));
        let _ = std::fs::write(home.join("cgroup.procs"), self.pid.to_string());
        for d in self.made.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[test]
fn platform_labels_come_from_the_process_cgroup() {
    if root::skip_without_root() {
        return;
    }
    let sc = Scene::start("nc");
    let pid = sc.pid;
    let pid_s = pid.to_string();
    let port = sc.num("/port").to_string();
    let id = format!("{:064x}", u64::from(pid) * 7919 + 0xabc);
    let slice = format!("sockscope-test-{}.slice", std::process::id());
    let mut cg = CgroupMove::new(pid);

    let labels_of = |run: &common::Run| {
        run.expect_code(0);
        let all = samples(&run.stdout);
        let l = export_support::find(
            &all,
            "sockscope_listener_accept_queue_connections",
            &[("port", port.as_str()), ("pid", pid_s.as_str())],
        );
        assert_eq!(l.len(), 1, "{}", run.stdout);
        let p = export_support::find(
            &all,
            "sockscope_process_sockets",
            &[("pid", pid_s.as_str())],
        );
        assert!(!p.is_empty());
        for s in &p {
            let mut a = s.labels.clone();
            let mut b = l[0].labels.clone();
            for k in ["netns", "addr", "port", "proto", "state"] {
                a.remove(k);
                b.remove(k);
            }
            assert_eq!(a, b, "listener and process carry the same platform labels");
        }
        l[0].labels.clone()
    };

    cg.enter(&format!("{slice}/docker-{id}.scope"));
    let l = labels_of(&sc.sockscope("export", &["--once", "--top", "100000"]));
    assert_eq!(l.get("container_id"), Some(&id));
    assert_eq!(l.get("runtime").map(String::as_str), Some("docker"));
    assert_eq!(l.get("systemd_unit"), None);

    let unit = format!("sockscope-test-{}.service", std::process::id());
    cg.enter(&format!("{slice}/{unit}"));
    let l = labels_of(&sc.sockscope("export", &["--once", "--top", "100000"]));
    assert_eq!(l.get("systemd_unit"), Some(&unit));
    assert_eq!((l.get("container_id"), l.get("runtime")), (None, None));

    // A pod's container (systemd driver path), and a fake kubelet root
    // with that pod's directory: the hosts file the kubelet writes and
    // the service account volume's namespace file.
    let uid = format!("{:08x}-1111-4222-8333-944455556666", pid);
    cg.enter(&format!(
        "kubepods-sockscope-test-{}.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{id}.scope",
        std::process::id(),
        uid.replace('-', "_")
    ));
    let kubelet = std::env::temp_dir().join(format!("sockscope-kubelet-{}", std::process::id()));
    let pod_dir = kubelet.join("pods").join(&uid);
    let sa = pod_dir.join("volumes/kubernetes.io~projected/kube-api-access-7xq2z");
    std::fs::create_dir_all(&sa).unwrap();
    std::fs::write(
        pod_dir.join("etc-hosts"),
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n10.244.3.9\tshop-api-6f7c9d8b4-q8n2v\n",
    )
    .unwrap();
    std::fs::write(sa.join("namespace"), "shop").unwrap();
    let root = kubelet.to_str().unwrap();
    let run = sc.sockscope(
        "export",
        &["--once", "--top", "100000", "--kubelet-root", root],
    );
    let _ = std::fs::remove_dir_all(&kubelet);
    let l = labels_of(&run);
    assert_eq!(l.get("pod_uid"), Some(&uid));
    assert_eq!(l.get("container_id"), Some(&id));
    assert_eq!(l.get("runtime").map(String::as_str), Some("containerd"));
    assert_eq!(
        l.get("pod_name").map(String::as_str),
        Some("shop-api-6f7c9d8b4-q8n2v")
    );
    assert_eq!(l.get("pod_namespace").map(String::as_str), Some("shop"));
    assert_eq!(l.get("container"), None);
    promtool_check(&run.stdout);
    // The kubelet's container log links (as in /var/log/containers):
    // the container's name, and the pod's as its metadata has it (the
    // hosts file gave the hostname). A link of another container is not
    // this one's.
    let logs = std::env::temp_dir().join(format!("sockscope-logs-{}", std::process::id()));
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join(format!("shop-api-0_shop-prod_api-{id}.log")), b"").unwrap();
    std::fs::write(
        logs.join(format!("other-0_shop-prod_sidecar-{:064x}.log", 1)),
        b"",
    )
    .unwrap();
    let run = sc.sockscope(
        "export",
        &[
            "--once",
            "--top",
            "100000",
            "--container-logs",
            logs.to_str().unwrap(),
        ],
    );
    let _ = std::fs::remove_dir_all(&logs);
    let l = labels_of(&run);
    assert_eq!(
        (
            l.get("container").map(String::as_str),
            l.get("pod_name").map(String::as_str),
            l.get("pod_namespace").map(String::as_str)
        ),
        (Some("api"), Some("shop-api-0"), Some("shop-prod")),
        "{}",
        run.stdout
    );
    promtool_check(&run.stdout);
    // Without the kubelet's files (it is gone now): the UID only.
    let run = sc.sockscope("export", &["--once", "--top", "100000"]);
    let l = labels_of(&run);
    assert_eq!(l.get("pod_uid"), Some(&uid));
    assert_eq!((l.get("pod_name"), l.get("pod_namespace")), (None, None));
}

#[test]
fn foreign_process_names_are_exact_label_values() {
    if root::skip_without_root() {
        return;
    }
    // A listener held by a process whose name has a quote, a backslash
    // and a newline: the exposition stays parseable and the label value
    // is the name, byte for byte.
    let code = r#"
import ctypes, socket, time
s = socket.socket(); s.bind(("127.0.0.1", 7800)); s.listen(3)
ctypes.CDLL(None).prctl(15, b'a"b\\c\nd} x', 0, 0, 0)
time.sleep(120)
"#;
    let sc = Scene::start_command(&["python3", "-c", code], "the renamed listener", |pid| {
        std::fs::read(format!("/proc/{pid}/comm")).is_ok_and(|c| c.starts_with(b"a\"b"))
    });
    let run = sc.sockscope("export", &["--once", "--top", "100000"]);
    run.expect_code(0);
    promtool_check(&run.stdout);
    let all = samples(&run.stdout);
    let l = export_support::find(
        &all,
        "sockscope_listener_backlog_connections",
        &[("port", "7800")],
    );
    assert_eq!(l.len(), 1, "{}", run.stdout);
    assert_eq!(
        l[0].labels.get("process").map(String::as_str),
        Some("a\"b\\c\nd} x")
    );
    assert_eq!(l[0].value, 3.0);
}

#[test]
fn half_open_connections_count_for_their_listener() {
    if root::skip_without_root() {
        return;
    }
    // Scene `halfopen`: an nftables rule in the namespace drops the final
    // ACK of 3 clients, so the listener has 3 request sockets in SYN-RECV
    // and nothing in its accept queue.
    let sc = Scene::start("halfopen");
    let port = sc.num("/port").to_string();
    let hex = format!(":{:04X}", sc.num("/port"));
    let half = common::proc_net_rows(sc.pid, "tcp", |t| {
        t.get(1).is_some_and(|l| l.ends_with(&hex)) && t.get(3) == Some(&"03")
    });
    assert_eq!(half.len(), 3, "the kernel's SYN-RECV rows: {half:#?}");
    let run = sc.sockscope("export", &["--once"]);
    run.expect_code(0);
    let all = samples(&run.stdout);
    let l = [("port", port.as_str())];
    assert_eq!(
        one(&all, "sockscope_listener_syn_recv_connections", &l),
        3.0
    );
    assert_eq!(
        one(&all, "sockscope_listener_accept_queue_connections", &l),
        0.0
    );
    assert_eq!(one(&all, "sockscope_listener_backlog_connections", &l), 8.0);
}

#[test]
fn reuseport_group_is_counted_on_each_member() {
    if root::skip_without_root() {
        return;
    }
    // Scene `reuseport`: two SO_REUSEPORT listeners on one address and
    // port, held by two processes: one series each, group size 2.
    let sc = Scene::start("reuseport");
    let port = sc.num("/port").to_string();
    let run = sc.sockscope("export", &["--once"]);
    run.expect_code(0);
    let all = samples(&run.stdout);
    let members = export_support::find(
        &all,
        "sockscope_listener_reuseport_group_sockets",
        &[("port", port.as_str())],
    );
    let mut pids: Vec<&str> = members.iter().map(|s| s.labels["pid"].as_str()).collect();
    pids.sort_unstable();
    let mut want: Vec<String> = sc.manifest["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["pid"].to_string())
        .collect();
    want.sort_unstable();
    assert_eq!(pids, want, "{members:#?}");
    assert!(members.iter().all(|s| s.value == 2.0), "{members:#?}");
}
