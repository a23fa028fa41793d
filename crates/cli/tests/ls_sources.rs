//! The socket-table sources side by side (issue 16 item 4): the TCP table
//! read by the BPF iterator (`--source bpf`) and by netlink sock_diag
//! (`--source netlink`) must give the same rows with the same fields —
//! state, addresses, queues (a listener's accept queue and backlog), uid,
//! inode, cookie, shutdown, v6only, cgroup, timer, owners — on the fixture
//! (listeners, established, time-wait, fin-wait-2, close-wait, IPv6,
//! v4-mapped), a half-open scene (SYN-RECV request sockets) and a listener
//! with a full accept queue. `-v` names the source used, and where the
//! iterator cannot be used (an unprivileged user, extensions it does not
//! give) the rows come from netlink and `-v` says why.
//!
//! The two reads follow each other, so only timers may differ: by the time
//! between them, counted down.

#[path = "common/root.rs"]
mod root;

mod common;

use common::{BIN, Fixture, Run, Scene, key_of};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

const NETLINK_NOTE: &str = "tcp: socket table: netlink sock_diag";

/// Rows by identity: inode, or 4-tuple and state for sockets without one.
fn by_key(list: &[Value]) -> BTreeMap<String, &Value> {
    let m: BTreeMap<String, &Value> = list
        .iter()
        .map(|v| (format!("{} {}", key_of(v), v["state"]), v))
        .collect();
    assert_eq!(m.len(), list.len(), "two rows with one identity: {list:#?}");
    m
}

/// Every field equal but `source`, and timers equal in kind and retransmits
/// with the iterator's expiry at most `elapsed_ms` (plus a tick) sooner.
/// A timer that differs otherwise is returned as an error (it may have
/// fired between the reads: a SYN-ACK retransmitted); any other difference
/// fails at once.
fn same_rows(netlink: &[Value], bpf: &[Value], elapsed_ms: i64, what: &str) -> Result<(), String> {
    let a = by_key(netlink);
    let b = by_key(bpf);
    let ka: BTreeSet<&String> = a.keys().collect();
    let kb: BTreeSet<&String> = b.keys().collect();
    assert_eq!(
        ka, kb,
        "{what}: netlink and the BPF iterator list different sockets"
    );
    for (k, x) in &a {
        let y = b[k];
        assert_eq!(x["source"], json!("netlink"), "{what}: {x}");
        assert_eq!(y["source"], json!("bpf"), "{what}: {y}");
        let xo = x.as_object().expect("row object");
        let yo = y.as_object().expect("row object");
        let fields: BTreeSet<&String> = xo.keys().chain(yo.keys()).collect();
        for f in fields {
            if f == "source" {
                continue;
            }
            let (u, v) = (&x[f.as_str()], &y[f.as_str()]);
            if f == "timer" && u.is_object() && v.is_object() {
                assert_eq!(u["kind"], v["kind"], "{what}: timer kind of {k}");
                let (eu, ev) = (
                    u["expires_ms"].as_i64().unwrap_or(-1),
                    v["expires_ms"].as_i64().unwrap_or(-1),
                );
                let counted_down = ev <= eu + 8 && ev >= eu - elapsed_ms - 8;
                let (ru, rv) = (
                    u["retrans"].as_u64().unwrap_or(0),
                    v["retrans"].as_u64().unwrap_or(0),
                );
                // Fired in between (a SYN or SYN-ACK sent again, the timer
                // re-armed): the later read has one retransmit more, and
                // the earlier read's timer was due within the gap.
                let fired = rv == ru + 1 && eu <= elapsed_ms + 8;
                if !(fired || ru == rv && (counted_down || ev == 0 || eu == 0)) {
                    return Err(format!(
                        "{what}: timer of {k}: netlink {u}, BPF iterator {v}, {elapsed_ms} ms apart"
                    ));
                }
                continue;
            }
            assert_eq!(u, v, "{what}: field {f} of {k}\nnetlink {x}\nbpf {y}");
        }
    }
    Ok(())
}

/// `ls ARGS --json` with each source, in the namespace of `pid`; the rows
/// of each and the milliseconds between the two reads.
fn both(pid: u32, args: &[&str]) -> (Vec<Value>, Vec<Value>, i64) {
    let pid = pid.to_string();
    let run = |source: &str| -> Run {
        let mut all = vec!["ls", "--netns-pid", pid.as_str(), "--json", "-v"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--source", source]);
        common::sockscope(&all)
    };
    let t0 = Instant::now();
    let n = run("netlink");
    let b = run("bpf");
    let elapsed = t0.elapsed().as_millis() as i64;
    n.expect_code(0);
    b.expect_code(0);
    assert!(
        n.stderr.contains(": socket table: netlink sock_diag"),
        "-v names netlink: {}",
        n.stderr
    );
    assert!(
        b.stderr.contains(": socket table: BPF iterator") && !b.stderr.contains("unavailable"),
        "-v names the BPF iterator (root, BTF, this kernel): {}",
        b.stderr
    );
    (n.json_array(), b.json_array(), elapsed)
}

/// [`both`] and [`same_rows`]: the netlink rows, once the two reads agree.
/// A timer that fired between the two reads gets the pair read again (at
/// most 3 times in all).
fn check(pid: u32, args: &[&str], what: &str) -> Vec<Value> {
    let mut last = String::new();
    for _ in 0..3 {
        let (n, b, ms) = both(pid, args);
        match same_rows(&n, &b, ms, what) {
            Ok(()) => return n,
            Err(e) => last = e,
        }
    }
    panic!("timers differ in three pairs of reads; the last: {last}");
}

fn states(list: &[Value]) -> BTreeSet<String> {
    list.iter()
        .filter_map(|v| v["state"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn iterator_rows_equal_netlink_rows_on_the_fixture() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    let n = check(fx.pid, &["-tanpe"], "fixture -tanpe");
    let st = states(&n);
    for s in [
        "listening",
        "established",
        "time-wait",
        "fin-wait-2",
        "close-wait",
    ] {
        assert!(st.contains(s), "the fixture has a {s} socket: {st:?}");
    }
    assert!(
        n.iter().any(|v| v["family"] == json!("inet6")),
        "IPv6 rows too"
    );
    assert!(
        n.iter()
            .any(|v| !v["owners"].as_array().is_none_or(Vec::is_empty)),
        "owners joined"
    );
    assert!(
        n.iter()
            .any(|v| v["state"] == json!("listening") && v["send_q"].as_u64() > Some(0)),
        "a listener's backlog"
    );
    // Filters the program applies: states, one family.
    for args in [
        &["-uanpe"][..],
        &["-tuanpe"],
        &["-tlnpe"],
        &["-tnp"],
        &["-6", "-tanp"],
        &["-4", "-tanp"],
    ] {
        let n = check(fx.pid, args, &format!("fixture {args:?}"));
        assert!(!n.is_empty(), "{args:?} lists something");
    }
    let n = check(fx.pid, &["-tanp", "state", "time-wait"], "state time-wait");
    assert!(!n.is_empty(), "time-wait rows");
}

#[test]
fn iterator_rows_equal_netlink_rows_for_half_open_and_a_full_queue() {
    if root::skip_without_root() {
        return;
    }
    // SYN-RECV request sockets (the clients' final ACKs are dropped).
    let sc = Scene::start("halfopen");
    let n = check(sc.pid, &["-tanpe"], "halfopen");
    assert_eq!(
        n.iter().filter(|v| v["state"] == json!("syn-recv")).count(),
        3,
        "three half-open connections: {n:#?}"
    );
    let n = check(
        sc.pid,
        &["-tnp", "state", "syn-recv"],
        "halfopen, state syn-recv",
    );
    assert_eq!(n.len(), 3, "{n:#?}");
    drop(sc);

    // A listener whose accept queue overflowed its backlog.
    let sc = Scene::start("backlog");
    let n = check(sc.pid, &["-tanpe"], "backlog");
    assert!(
        n.iter().any(|v| v["state"] == json!("listening")
            && v["recv_q"].as_u64() > Some(0)
            && v["recv_q"].as_u64() >= v["send_q"].as_u64()),
        "a full accept queue: {n:#?}"
    );
}

/// UDP sockets of both families, bound and connected, with datagrams
/// queued, v6only both ways and a receive side shut down; the wildcard
/// socket on port 6004 is made last (what the test waits for).
const UDP_SCENE: &str = r#"
import socket, time
keep = []
def udp(fam):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    keep.append(s)
    return s
a = udp(socket.AF_INET); a.bind(("127.0.0.1", 6001))
b = udp(socket.AF_INET); b.bind(("127.0.0.1", 6002)); b.connect(("127.0.0.1", 6001))
for _ in range(5):
    b.send(b"x" * 100)
c = udp(socket.AF_INET6)
c.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
c.bind(("::1", 6003))
e = udp(socket.AF_INET6); e.connect(("::1", 6003)); e.send(b"y" * 10)
e.shutdown(socket.SHUT_RD)
d = udp(socket.AF_INET6)
d.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
d.bind(("::", 6004))
time.sleep(600)
"#;

#[test]
fn iterator_rows_equal_netlink_rows_for_udp() {
    if root::skip_without_root() {
        return;
    }
    let sc = Scene::start_command(&["python3", "-c", UDP_SCENE], "UDP sockets", |pid| {
        std::fs::read_to_string(format!("/proc/{pid}/net/udp6")).is_ok_and(|t| t.contains(":1774 "))
    });
    let n = check(sc.pid, &["-uanpe"], "udp");
    assert_eq!(n.len(), 5, "{n:#?}");
    assert!(
        n.iter().any(|v| v["recv_q"].as_u64() > Some(0)),
        "datagrams queued: {n:#?}"
    );
    assert!(n.iter().any(|v| v["v6only"] == json!(true)));
    assert!(n.iter().any(|v| v["v6only"] == json!(false)));
    assert!(n.iter().any(|v| v["shutdown"] == json!(1)));
    let n = check(sc.pid, &["-unp", "state", "established"], "udp, connected");
    assert_eq!(n.len(), 2, "{n:#?}");
    let n = check(sc.pid, &["-6", "-ulnp"], "udp6, unconnected");
    assert_eq!(n.len(), 2, "{n:#?}");
}

#[test]
fn without_the_iterator_the_rows_come_from_netlink_and_v_says_why() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    // An unprivileged user cannot load BPF programs: netlink, named.
    let run = fx.nsenter(&[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        BIN,
        "ls",
        "-tan",
        "-v",
        "--json",
        "--source",
        "bpf",
    ]);
    run.expect_code(0);
    assert!(
        run.stderr.contains(
            "tcp: socket table: netlink sock_diag (BPF iterator unavailable: loading the socket iterator failed (needs CAP_BPF and CAP_PERFMON)"
        ),
        "-v names netlink and why: {}",
        run.stderr
    );
    let rows = run.json_array();
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|v| v["source"] == json!("netlink")),
        "{rows:#?}"
    );
    let root_rows = fx.ls_json(&["-tan", "--source", "netlink"]);
    assert_eq!(
        by_key(&rows).keys().collect::<Vec<_>>(),
        by_key(&root_rows).keys().collect::<Vec<_>>(),
        "the same sockets"
    );
    // tcp_info is netlink's alone.
    let run = fx.ls(&["-tani", "-v", "--json", "--source", "bpf"]);
    run.expect_code(0);
    assert!(
        run.stderr
            .contains("tcp: socket table: netlink sock_diag (the BPF iterator gives no tcp_info"),
        "{}",
        run.stderr
    );
    assert!(
        run.json_array()
            .iter()
            .all(|v| v["source"] == json!("netlink"))
    );
    // By default: netlink (the iterator is not faster on this machine;
    // bench/RESULTS.md).
    let run = fx.ls(&["-tan", "-v"]);
    run.expect_code(0);
    assert!(run.stderr.contains(NETLINK_NOTE), "{}", run.stderr);
}
