//! `sockscope ls` against real sockets: the fixture (tests/fixtures/sockets.py)
//! builds sockets in known states in a private network namespace, and every
//! one of them must appear in `ls --netns-pid PID` with exactly the state,
//! addresses, queues, inode, cookie and owners the fixture recorded, from
//! netlink (`--source auto`, the default) and from /proc (`--source proc`).
//! Also: `--all-netns` labels the fixture's sockets with its namespace, and
//! `--jsonl` lists the same sockets as `--json`.

#[path = "common/root.rs"]
mod root;

mod common;

use common::{Fixture, MSocket, field, index, key_of, keys, norm_endpoint, owners_of};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Which source the listing came from, and so what it can know.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// `--source auto`: netlink, with RAW from /proc (no raw_diag here).
    Auto,
    /// `--source proc`.
    Proc,
}

/// Compare one listed socket with what the fixture built, field by field.
fn check_socket(fx: &Fixture, m: &MSocket, v: &Value, mode: Mode, with_netns: bool) {
    let name = &m.name;
    let ctx = |f: &str| format!("{name}.{f} (listed as {v})");
    let from_proc = mode == Mode::Proc || m.proto == "raw";

    assert_eq!(field(v, "proto"), &json!(m.proto), "{}", ctx("proto"));
    assert_eq!(field(v, "family"), &json!(m.family), "{}", ctx("family"));
    assert_eq!(field(v, "state"), &json!(m.state), "{}", ctx("state"));
    assert_eq!(field(v, "inode"), &json!(m.inode), "{}", ctx("inode"));
    assert_eq!(
        norm_endpoint(field(v, "local")),
        norm_endpoint(&m.local),
        "{}",
        ctx("local")
    );
    if m.is_unix() && from_proc {
        // /proc/net/unix has no peer column: only the (absent) name is known.
        assert_eq!(
            field(field(v, "peer"), "path"),
            &Value::Null,
            "{}",
            ctx("peer.path")
        );
    } else {
        assert_eq!(
            norm_endpoint(field(v, "peer")),
            norm_endpoint(&m.peer),
            "{}",
            ctx("peer")
        );
    }

    // Queues. /proc/net/tcp shows a listener's accept queue but never its
    // backlog; /proc/net/unix shows no queues at all.
    let (want_rq, want_sq) = if from_proc && m.is_unix() {
        (None, None)
    } else if from_proc && m.state == "listening" {
        (m.recv_q, None)
    } else {
        (m.recv_q, m.send_q)
    };
    assert_eq!(field(v, "recv_q"), &json!(want_rq), "{}", ctx("recv_q"));
    assert_eq!(field(v, "send_q"), &json!(want_sq), "{}", ctx("send_q"));

    // Owners: every (pid, fd) the fixture knows, with comm and uid.
    let want: Vec<(u64, u64, String, Option<u64>)> = {
        let mut o: Vec<_> = m
            .owners
            .iter()
            .map(|o| {
                (
                    u64::from(o.pid),
                    u64::from(o.fd),
                    fx.manifest.comm.clone(),
                    Some(u64::from(fx.manifest.uid)),
                )
            })
            .collect();
        o.sort();
        o
    };
    assert_eq!(owners_of(v), want, "{}", ctx("owners"));

    // uid: /proc/net/unix has none; sockets without a file may report 0 or
    // nothing (the kernel sends 0 for time-wait socks).
    let uid = field(v, "uid");
    if from_proc && m.is_unix() {
        assert_eq!(uid, &Value::Null, "{}", ctx("uid"));
    } else if m.inode == 0 {
        assert!(
            uid == &json!(0) || uid.is_null(),
            "{}",
            ctx("uid (0 or null)")
        );
    } else {
        assert_eq!(uid, &json!(fx.manifest.uid), "{}", ctx("uid"));
    }

    // Cookie: only netlink knows it.
    let cookie = field(v, "cookie");
    if from_proc {
        assert_eq!(cookie, &Value::Null, "{}", ctx("cookie"));
    } else if let Some(c) = m.cookie {
        assert_eq!(cookie, &json!(c), "{}", ctx("cookie"));
    } else {
        assert!(
            cookie.as_u64().is_some_and(|c| c != 0),
            "{}",
            ctx("cookie (netlink gives every socket one)")
        );
    }

    // v6only: netlink reports it for IPv6 sockets in LISTEN or CLOSE only;
    // never for IPv4, UNIX, or anything read from /proc.
    let v6 = field(v, "v6only");
    if from_proc || m.family != "inet6" {
        assert_eq!(v6, &Value::Null, "{}", ctx("v6only"));
    } else if m.state == "listening" || m.state == "closed" {
        assert_eq!(v6, &json!(m.v6only), "{}", ctx("v6only"));
    } else {
        assert!(
            v6.is_null() || v6 == &json!(m.v6only),
            "{}",
            ctx("v6only (null or the truth)")
        );
    }

    let want_source = if from_proc { "proc" } else { "netlink" };
    assert_eq!(field(v, "source"), &json!(want_source), "{}", ctx("source"));

    if with_netns {
        assert_eq!(
            field(v, "netns"),
            &json!({"inode": fx.manifest.netns_inode, "name": null}),
            "{}",
            ctx("netns")
        );
    }

    // Time-wait socks (TIME-WAIT and the orphaned FIN-WAIT-2) run the
    // time-wait timer.
    if m.state == "time-wait" || (m.state == "fin-wait-2" && m.inode == 0) {
        assert_eq!(
            field(field(v, "timer"), "kind"),
            &json!("timewait"),
            "{}",
            ctx("timer.kind")
        );
    }
}

/// Every manifest socket listed once, nothing else listed, and each one
/// matches field by field.
fn check_listing(fx: &Fixture, list: &[Value], mode: Mode, with_netns: bool) {
    let expected = fx.manifest.keys_where(|_| true);
    common::assert_same_keys(&format!("{mode:?} listing"), fx, list, &expected);
    let idx = index(list);
    for m in &fx.manifest.sockets {
        check_socket(fx, m, idx[&m.key()], mode, with_netns);
    }
}

fn by_name<'a>(fx: &Fixture, list: &'a [Value], name: &str) -> &'a Value {
    let key = fx.manifest.get(name).key();
    list.iter()
        .find(|v| key_of(v) == key)
        .unwrap_or_else(|| panic!("{name} ({key}) not listed"))
}

#[test]
fn every_socket_exact_from_netlink() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    let list = fx.ls_json(&["-a", "-n", "-p", "-e"]);
    check_listing(&fx, &list, Mode::Auto, true);

    // The headline facts, spelled out so a failure reads plainly.
    let pid = u64::from(fx.pid);
    let child = u64::from(fx.manifest.child_pid);
    let lst = by_name(&fx, &list, "tcp4-listener");
    assert_eq!(
        (field(lst, "recv_q"), field(lst, "send_q")),
        (&json!(5), &json!(7)),
        "accept queue 5, backlog 7"
    );
    let shared = by_name(&fx, &list, "tcp4-shared-listener");
    let fd = u64::from(fx.manifest.get("tcp4-shared-listener").owners[0].fd);
    let mut want = vec![
        (pid, fd, "python3".to_string(), Some(0)),
        (child, fd, "python3".to_string(), Some(0)),
    ];
    want.sort();
    assert_eq!(owners_of(shared), want, "shared listener owners");
    assert_eq!(
        field(by_name(&fx, &list, "tcp6-mapped-server"), "local"),
        &json!({"addr": "::ffff:127.0.0.1", "port": 5003})
    );
    assert_eq!(
        field(by_name(&fx, &list, "tcp6-estab-server"), "local"),
        &json!({"addr": "::1", "port": 5002})
    );
    let path = format!("{}/listen.sock", fx.manifest.tmpdir);
    let ul = by_name(&fx, &list, "unix-path-listener");
    assert_eq!(field(field(ul, "local"), "path"), &json!(path));
    let a = by_name(&fx, &list, "unix-pair-a");
    let b = by_name(&fx, &list, "unix-pair-b");
    assert_eq!(field(field(a, "peer"), "inode"), field(b, "inode"));
    assert_eq!(field(field(b, "peer"), "inode"), field(a, "inode"));
    let tw = by_name(&fx, &list, "tcp4-timewait");
    assert_eq!(field(tw, "state"), &json!("time-wait"));
    assert_eq!(field(field(tw, "peer"), "port"), &json!(5006));
    let cw = by_name(&fx, &list, "tcp4-closewait-server");
    assert_eq!(field(cw, "state"), &json!("close-wait"));
    assert_eq!(field(field(cw, "local"), "port"), &json!(5007));
    let raw = by_name(&fx, &list, "raw4-icmp");
    assert_eq!(field(raw, "proto"), &json!("raw"));
}

#[test]
fn every_socket_exact_from_proc() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    let list = fx.ls_json(&["-a", "-n", "-p", "-e", "--source", "proc"]);
    check_listing(&fx, &list, Mode::Proc, true);
    let lst = by_name(&fx, &list, "tcp4-listener");
    assert_eq!(field(lst, "recv_q"), &json!(5));
    assert_eq!(
        field(lst, "send_q"),
        &Value::Null,
        "backlog unknown in /proc"
    );
}

#[test]
fn netlink_and_proc_agree_on_owners_and_states() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    let nl = fx.ls_json(&["-a", "-n", "-p", "--source", "netlink", "-t", "-u", "-x"]);
    let pr = fx.ls_json(&["-a", "-n", "-p", "--source", "proc", "-t", "-u", "-x"]);
    assert_eq!(keys(&nl), keys(&pr));
    let want = fx.manifest.keys_where(|s| s.proto != "raw");
    assert_eq!(keys(&nl), want, "-tux lists all but the RAW socket");
    let pi = index(&pr);
    for v in &nl {
        let p = pi[&key_of(v)];
        for f in ["proto", "family", "state", "inode", "local"] {
            assert_eq!(field(v, f), field(p, f), "{f} of {v} vs {p}");
        }
        assert_eq!(owners_of(v), owners_of(p), "owners of {v} vs {p}");
    }
}

#[test]
fn netlink_only_source_fails_for_raw_without_raw_diag() {
    if root::skip_without_root() {
        return;
    }
    // This kernel has no raw_diag: asking for RAW over netlink only must fail
    // with exit 3 (kernel feature missing) and point at the fallback.
    let fx = Fixture::start();
    let run = fx.ls(&["-w", "-a", "--json", "--source", "netlink"]);
    run.expect_code(3);
    assert!(
        run.stderr.contains("--source"),
        "stderr should name the --source fallback: {}",
        run.stderr
    );
}

#[test]
fn all_netns_labels_fixture_sockets() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    let ns = common::netns_inode(fx.pid);
    let run = common::sockscope(&["ls", "--all-netns", "-a", "-n", "-p", "-e", "--json"]);
    run.expect_code(0);
    let all = run.json_array();
    let mine: Vec<Value> = all
        .iter()
        .filter(|v| field(field(v, "netns"), "inode") == &json!(ns))
        .cloned()
        .collect();
    check_listing(&fx, &mine, Mode::Auto, true);
    // Every socket of the listing says which namespace it is in.
    assert!(
        all.iter()
            .all(|v| field(field(v, "netns"), "inode").as_u64().is_some()),
        "a socket without netns in --all-netns output"
    );
    // And the fixture's inodes appear under no other namespace.
    let inodes: BTreeSet<u64> = fx
        .manifest
        .sockets
        .iter()
        .filter(|s| s.inode != 0)
        .map(|s| s.inode)
        .collect();
    for v in &all {
        if let Some(i) = field(v, "inode").as_u64()
            && inodes.contains(&i)
        {
            assert_eq!(
                field(field(v, "netns"), "inode"),
                &json!(ns),
                "fixture socket listed under another namespace: {v}"
            );
        }
    }
}

#[test]
fn jsonl_lists_the_same_sockets_as_json() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    let json = fx.ls_json(&["-a", "-n", "-p"]);
    let run = fx.ls(&["-a", "-n", "-p", "--jsonl"]);
    run.expect_code(0);
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("--jsonl line is not JSON ({e}): {l}"))
        })
        .collect();
    assert_eq!(
        lines.len(),
        fx.manifest.sockets.len(),
        "one line per socket"
    );
    assert!(
        lines.iter().all(Value::is_object),
        "each line is one socket object"
    );
    assert_eq!(keys(&lines), keys(&json));
    let ji = index(&json);
    for l in &lines {
        let j = ji[&key_of(l)];
        // Owners, queues and states are stable between the two runs.
        for f in [
            "proto", "state", "local", "peer", "recv_q", "send_q", "owners",
        ] {
            assert_eq!(field(l, f), field(j, f), "{f}: jsonl {l} vs json {j}");
        }
    }
}

#[test]
fn table_output_shows_the_sockets() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    let run = fx.ls(&["-t", "-l", "-n", "-p"]);
    run.expect_code(0);
    let out = &run.stdout;
    for want in ["127.0.0.1:5000", "127.0.0.1:5008", "python3"] {
        assert!(out.contains(want), "table lacks {want}:\n{out}");
    }
    let child = fx.manifest.child_pid.to_string();
    assert!(
        out.contains(&child),
        "table lacks the child owner {child}:\n{out}"
    );
    // Only listeners: no established row.
    assert!(!out.contains("ESTAB"), "-l printed an ESTAB row:\n{out}");
}
