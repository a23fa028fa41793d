//! `sockscope listeners` against a listener that cannot keep up (scene
//! `backlog` of tests/fixtures/who_scenes.py, in a private network
//! namespace): listen(5) and 10 clients that are never accepted. The kernel
//! admits backlog+1 = 6 connections into the accept queue (checked here on
//! the kernel's own /proc row too); every further SYN is dropped and
//! counted in TcpExt.ListenOverflows and ListenDrops, so the other clients
//! stay in SYN-SENT and retransmit. The test checks the accept queue, the
//! backlog, the children, the counters against /proc/PID/net/netstat read
//! around the run, the counters' deltas with --interval while one more
//! client knocks, the SYN-SENT clients in `ls`, and the "probably clamped"
//! flag on a listener whose listen(1000) was cut to net.core.somaxconn.

#[path = "common/root.rs"]
mod root;

mod common;

use common::{
    BIN, Scene, fds_of_socket, json_of, net_counter, netns_inode, owner_pairs, proc_inet_row,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The listen counters the issue names; all must be reported.
const LISTEN_COUNTERS: &[&str] = &[
    "TcpExt.ListenOverflows",
    "TcpExt.ListenDrops",
    "TcpExt.TCPReqQFullDrop",
    "TcpExt.TCPReqQFullDoCookies",
    "TcpExt.SyncookiesSent",
    "TcpExt.SyncookiesRecv",
    "TcpExt.SyncookiesFailed",
    "TcpExt.TCPBacklogDrop",
];

fn overflows(pid: u32) -> i64 {
    net_counter(pid, "netstat", "TcpExt", "ListenOverflows")
}

fn ports(v: &Value) -> BTreeSet<u64> {
    v.as_array()
        .expect("array of ports")
        .iter()
        .filter_map(Value::as_u64)
        .collect()
}

fn listener_on(report: &Value, port: u64) -> &Value {
    report["listeners"]
        .as_array()
        .expect("listeners array")
        .iter()
        .find(|l| l["listener"]["local"]["port"] == json!(port))
        .unwrap_or_else(|| panic!("no listener on port {port}: {report}"))
}

#[test]
fn backlog_5_with_10_clients_fills_the_accept_queue() {
    if root::skip_without_root() {
        return;
    }
    let sc = Scene::start("backlog");
    let pid = sc.pid;
    let port = sc.num("/port");
    let linode = sc.num("/listener/inode");
    let est = ports(&sc.manifest["established_clients"]);
    let syn = ports(&sc.manifest["syn_sent_clients"]);
    assert_eq!((est.len(), syn.len()), (6, 4), "what the fixture saw");

    // The kernel's own view: rx_queue of the LISTEN row is the accept
    // queue, backlog + 1 on this kernel.
    let row = proc_inet_row(pid, &["tcp"], linode);
    assert_eq!(
        row.tokens()[4],
        "00000000:00000006",
        "tx_queue:rx_queue of the listener: 6 = backlog 5 + 1"
    );

    let before = overflows(pid);
    let run = sc.sockscope("listeners", &["--json"]);
    let after = overflows(pid);
    run.expect_code(0);
    let r = json_of(&run);

    let all = r["listeners"].as_array().expect("listeners");
    assert_eq!(all.len(), 2, "the two listeners of the scene: {r}");
    let h = listener_on(&r, port);
    assert_eq!(h["listener"]["inode"], json!(linode));
    assert_eq!(h["listener"]["state"], json!("listening"));
    assert_eq!(
        owner_pairs(&h["listener"]["owners"]),
        vec![(u64::from(pid), sc.num("/listener/fd"))]
    );
    assert_eq!(h["accept_queue"], json!(6), "backlog + 1 admitted");
    assert_eq!(h["backlog"], json!(5));
    assert_eq!(h["full"], json!(true));
    assert_eq!(h["fill_pct"], json!(120.0));
    assert_eq!(h["syn_recv"], json!(0), "dropped SYNs leave no half-open");
    assert_eq!(h["reuseport_siblings"], json!([]));
    let kids = h["children"].as_array().expect("children");
    let kid_peers: BTreeSet<u64> = kids
        .iter()
        .map(|k| k["peer"]["port"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(kid_peers, est, "the 6 queued connections, by client port");
    for k in kids {
        assert_eq!(k["state"], json!("established"), "{k}");
        assert_eq!(k["local"], json!({"addr": "127.0.0.1", "port": port}));
        assert_eq!(k["inode"], json!(0), "not accepted: no file yet: {k}");
        assert_eq!(k["owners"], json!([]), "not accepted: no owner: {k}");
    }

    // The clamped listener: listen(1000) cut to somaxconn.
    let somax = sc.num("/somaxconn");
    assert_eq!(sc.sysctl("net.core.somaxconn"), somax.to_string());
    let cl = listener_on(&r, sc.num("/clamped/port"));
    assert_eq!(
        cl["backlog"],
        json!(somax),
        "listen(1000) capped by somaxconn"
    );
    assert_eq!(cl["accept_queue"], json!(0));
    assert_eq!(cl["full"], json!(false));

    let nss = r["namespaces"].as_array().expect("namespaces");
    assert_eq!(nss.len(), 1, "{r}");
    let ns = &nss[0];
    assert_eq!(ns["netns"]["inode"], json!(netns_inode(pid)));
    assert_eq!(ns["somaxconn"], json!(somax));
    assert!(
        ns.get("delta").is_none(),
        "no delta without --interval: {ns}"
    );
    let c = &ns["counters"];
    for k in LISTEN_COUNTERS {
        assert!(c[k].is_i64(), "counter {k} missing: {c}");
    }
    let lo = c["TcpExt.ListenOverflows"].as_i64().unwrap();
    assert!(
        (before..=after).contains(&lo),
        "ListenOverflows {lo} should be what /proc said around the run ({before}..={after})"
    );
    assert!(
        lo >= 4,
        "each of the 4 SYN-SENT clients had its SYN dropped at least once: {lo}"
    );
    assert!(
        c["TcpExt.ListenDrops"].as_i64().unwrap() >= lo,
        "ListenDrops includes the overflows: {c}"
    );
    for k in ["TCPReqQFullDrop", "TCPReqQFullDoCookies"] {
        assert_eq!(
            c[format!("TcpExt.{k}")],
            json!(net_counter(pid, "netstat", "TcpExt", k)),
            "{k}"
        );
    }

    // The 4 clients the listener never answered, in SYN-SENT, with their
    // owner and the SYN retransmit timer.
    let run = sc.sockscope("ls", &["-t", "-n", "-p", "--json", "state", "syn-sent"]);
    run.expect_code(0);
    let ss = run.json_array();
    let got: BTreeSet<u64> = ss
        .iter()
        .map(|s| s["local"]["port"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(got, syn, "SYN-SENT clients: {ss:#?}");
    for s in &ss {
        assert_eq!(s["peer"], json!({"addr": "127.0.0.1", "port": port}));
        assert_eq!(s["timer"]["kind"], json!("on"), "SYN retransmit timer: {s}");
        let inode = s["inode"].as_u64().unwrap();
        let fds = fds_of_socket(pid, inode);
        assert_eq!(fds.len(), 1);
        assert_eq!(
            owner_pairs(&s["owners"]),
            vec![(u64::from(pid), u64::from(fds[0]))]
        );
    }

    // The table says it too.
    let text = sc.sockscope("listeners", &["-n"]);
    text.expect_code(0);
    let out = &text.stdout;
    let line = |p: u64| {
        out.lines()
            .find(|l| l.starts_with(&format!("127.0.0.1:{p} ")))
            .unwrap_or_else(|| panic!("no row for port {p}:\n{out}"))
    };
    let full = line(port);
    assert!(full.contains("FULL"), "{full}");
    assert!(
        !full.contains("CLAMPED"),
        "backlog 5 is not clamped: {full}"
    );
    assert!(
        line(sc.num("/clamped/port")).contains("CLAMPED"),
        "backlog == somaxconn is flagged:\n{out}"
    );
    for want in [
        "at capacity",
        "TcpExt.ListenOverflows",
        "TcpExt.TCPBacklogDrop",
    ] {
        assert!(out.contains(want), "listeners text lacks {want:?}:\n{out}");
    }
}

#[test]
fn interval_reports_show_listen_overflows_rising() {
    if root::skip_without_root() {
        return;
    }
    let mut sc = Scene::start("backlog");
    let pid = sc.pid.to_string();
    let mut child = Command::new(BIN)
        .args([
            "listeners",
            "--netns-pid",
            &pid,
            "--interval",
            "1",
            "--count",
            "2",
            "--json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sockscope listeners --interval");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = |what: &str| -> Value {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("no {what} report: {e}"))
            .expect("read a report");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{what} is not JSON ({e}): {line}"))
    };
    let r1 = next("first");
    // One more client knocks between the two reports: its SYN finds the
    // accept queue full and is dropped.
    let knock = sc.command("connect");
    assert_eq!(knock["state"], json!(2), "the new client is in SYN-SENT");
    let r2 = next("second");
    let status = child.wait().expect("wait for sockscope");
    assert!(
        status.success(),
        "listeners --interval exited with {status}"
    );

    let ns1 = &r1["namespaces"][0];
    let ns2 = &r2["namespaces"][0];
    assert!(
        ns1.get("delta").is_none(),
        "first report has no delta: {ns1}"
    );
    let d = &ns2["delta"];
    for k in LISTEN_COUNTERS {
        let (a, b) = (ns1["counters"][k].as_i64(), ns2["counters"][k].as_i64());
        let (a, b) = (a.expect(k), b.expect(k));
        assert_eq!(d[k], json!(b - a), "delta of {k} = second - first");
    }
    let lo = d["TcpExt.ListenOverflows"].as_i64().unwrap();
    assert!(lo >= 1, "the knock's SYN was dropped: delta {lo}");
    assert!(d["TcpExt.ListenDrops"].as_i64().unwrap() >= lo);
    let h = listener_on(&r2, sc.num("/port"));
    assert_eq!((&h["accept_queue"], &h["full"]), (&json!(6), &json!(true)));

    // Now 5 clients wait in SYN-SENT.
    let run = sc.sockscope("ls", &["-t", "-n", "--json", "state", "syn-sent"]);
    run.expect_code(0);
    let mut want = ports(&sc.manifest["syn_sent_clients"]);
    want.insert(knock["port"].as_u64().unwrap());
    let got: BTreeSet<u64> = run
        .json_array()
        .iter()
        .map(|s| s["local"]["port"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn interval_text_marks_changes_between_reports() {
    if root::skip_without_root() {
        return;
    }
    let sc = Scene::start("backlog");
    let run = sc.sockscope("listeners", &["-n", "--interval", "0.2", "--count", "2"]);
    run.expect_code(0);
    let out = &run.stdout;
    for want in [
        "--- report 1 ---",
        "--- report 2 ---",
        "change since the last report",
    ] {
        assert!(out.contains(want), "lacks {want:?}:\n{out}");
    }
    assert!(!out.contains("--- report 3 ---"), "--count 2:\n{out}");
    let bad = sc.sockscope("listeners", &["--interval", "0"]);
    bad.expect_code(2);
    assert!(bad.stderr.contains("--interval"), "{}", bad.stderr);
}

#[test]
fn half_open_connections_are_counted_per_listener() {
    if root::skip_without_root() {
        return;
    }
    // An nftables rule in the scene's namespace drops the clients' final
    // ACKs: 3 connections stay half-open (SYN-RECV) at the listener.
    let sc = Scene::start("halfopen");
    let pid = sc.pid;
    let port = sc.num("/port");
    let want: BTreeSet<u64> = ports(&sc.manifest["clients"]);
    // The kernel's rows: st 03 on the listener's port.
    let hex = format!(":{port:04X}");
    let half = common::proc_net_rows(pid, "tcp", |t| {
        t.get(1).is_some_and(|l| l.ends_with(&hex)) && t.get(3) == Some(&"03")
    });
    assert_eq!(half.len(), 3, "{half:#?}");

    let run = sc.sockscope("listeners", &["--json"]);
    run.expect_code(0);
    let r = json_of(&run);
    let h = listener_on(&r, port);
    assert_eq!(h["syn_recv"], json!(3), "half-open count");
    assert_eq!(h["accept_queue"], json!(0), "nothing completed");
    assert_eq!(h["backlog"], json!(8));
    assert_eq!(h["full"], json!(false));
    assert_eq!(h["children"], json!([]), "half-open are not children");

    // `who` shows the same count in the listener's chain; the half-open
    // connections themselves have no inode and no owner.
    let run = sc.sockscope("who", &[&format!(":{port}"), "--json"]);
    run.expect_code(0);
    let chains = json_of(&run);
    let chains = chains.as_array().expect("chains");
    let l = chains
        .iter()
        .find(|c| c["socket"]["state"] == json!("listening"))
        .expect("the listener's chain");
    assert_eq!(l["listener"]["syn_recv"], json!(3));
    // They are listed inside the listener's chain, not as chains of their own.
    assert!(
        chains
            .iter()
            .all(|c| c["socket"]["state"] != json!("syn-recv")),
        "half-open connections belong to the listener's chain"
    );
    let peers: BTreeSet<u64> = l["listener"]["half_open"]
        .as_array()
        .expect("half_open")
        .iter()
        .map(|c| {
            assert_eq!(c["state"], json!("syn-recv"), "{c}");
            assert_eq!(c["inode"], json!(0), "{c}");
            assert_eq!(c["owners"], json!([]), "{c}");
            c["peer"]["port"].as_u64().unwrap_or(0)
        })
        .collect();
    assert_eq!(peers, want, "the half-open connections by client port");

    let text = sc.sockscope("who", &[&format!(":{port}")]);
    text.expect_code(0);
    assert!(
        text.stdout.contains("3 half-open (SYN-RECV)"),
        "{}",
        text.stdout
    );
    assert_eq!(
        text.stdout.matches("half-open: tcp SYN-RECV").count(),
        3,
        "{}",
        text.stdout
    );
}

#[test]
fn ipv6_only_wildcard_listener_is_not_credited_with_ipv4_connections() {
    if root::skip_without_root() {
        return;
    }
    // nginx's default: `listen 80; listen [::]:80;` makes 0.0.0.0:80 and
    // [::]:80 with IPV6_V6ONLY. An IPv4 connection can only have come
    // through the IPv4 listener.
    let sc = Scene::start("dualstack");
    let port = sc.num("/port");
    let run = sc.sockscope("listeners", &["--json"]);
    run.expect_code(0);
    let r = json_of(&run);
    let all = r["listeners"].as_array().expect("listeners");
    assert_eq!(all.len(), 2, "{r}");
    for (fam, addr) in [("v4", "0.0.0.0"), ("v6", "::")] {
        let h = all
            .iter()
            .find(|h| h["listener"]["local"]["addr"] == json!(addr))
            .unwrap_or_else(|| panic!("no listener on {addr}:{port}"));
        assert_eq!(
            h["listener"]["inode"],
            json!(sc.num(&format!("/{fam}/listener")))
        );
        let kids: Vec<(u64, u64)> = h["children"]
            .as_array()
            .expect("children")
            .iter()
            .map(|k| {
                (
                    k["inode"].as_u64().unwrap_or(0),
                    k["peer"]["port"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        assert_eq!(
            kids,
            vec![(
                sc.num(&format!("/{fam}/accepted")),
                sc.num(&format!("/{fam}/client_port"))
            )],
            "children of {addr}:{port} (v6only {}): only the connection it accepted",
            h["listener"]["v6only"]
        );
    }
}
