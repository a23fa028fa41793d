//! Differential test: `sockscope ls` against `ss` in the fixture's network
//! namespace.
//!
//! ss's text output is parsed here (see ss(8)): with `-n` each row is
//! `Netid State Recv-Q Send-Q Local Peer [details...]`, where INET endpoints
//! are `ADDR:PORT` (IPv6 in brackets, `*` for a wildcard address or port 0)
//! and UNIX endpoints are two columns, `NAME INODE` (`*` for no name). With
//! `-p` a `users:(("comm",pid=P,fd=F),...)` field follows, and with `-e`
//! `uid:U` (only when not 0), `ino:I` and `sk:COOKIE` (hex) for INET sockets.
//! ss reads RAW from /proc/net/raw on this kernel (no raw_diag), so its RAW
//! rows carry no `ino:`/`sk:`.
//!
//! Rows are matched by inode, or by protocol and 4-tuple for sockets
//! without one; then every field both tools print must agree, and neither
//! may list a socket the other does not.

#[path = "common/root.rs"]
mod root;

mod common;

use common::{Fixture, canon_addr, field, key_of, key_parts};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// One row of ss output.
#[derive(Debug, Default)]
struct SsRow {
    line: String,
    netid: String,
    state: String,
    recv_q: u64,
    send_q: u64,
    /// INET: canonical address text ("*" kept as "*"); UNIX: name or "*".
    local_addr: String,
    local_port: u64,
    peer_addr: String,
    peer_port: u64,
    /// UNIX: own inode; INET: from `ino:`.
    inode: Option<u64>,
    /// UNIX: the peer's inode.
    peer_inode: Option<u64>,
    users: Option<Vec<(String, u64, u64)>>,
    uid: Option<u64>,
    cookie: Option<u64>,
    v6only: Option<bool>,
}

fn split_inet(s: &str) -> (String, u64) {
    let (addr, port) = s
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("ss endpoint without a port: {s}"));
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    // An interface suffix ("127.0.0.1%lo") is not part of the address.
    let addr = addr.split('%').next().unwrap_or(addr);
    let port = if port == "*" {
        0
    } else {
        port.parse()
            .unwrap_or_else(|e| panic!("ss port {port:?} in {s}: {e}"))
    };
    (canon_addr(addr), port)
}

/// `users:(("python3",pid=7576,fd=3),("python3",pid=7620,fd=3))`.
fn parse_users(s: &str) -> Vec<(String, u64, u64)> {
    let body = s
        .strip_prefix("users:(")
        .and_then(|b| b.strip_suffix(')'))
        .unwrap_or_else(|| panic!("bad users field {s}"));
    let mut out = Vec::new();
    for item in body.split("),(") {
        let item = item.trim_start_matches('(').trim_end_matches(')');
        let (comm, rest) = item
            .strip_prefix('"')
            .and_then(|i| i.split_once("\","))
            .unwrap_or_else(|| panic!("bad users entry {item} in {s}"));
        let mut pid = None;
        let mut fd = None;
        for kv in rest.split(',') {
            if let Some(v) = kv.strip_prefix("pid=") {
                pid = v.parse().ok();
            } else if let Some(v) = kv.strip_prefix("fd=") {
                fd = v.parse().ok();
            }
        }
        out.push((
            comm.to_string(),
            pid.unwrap_or_else(|| panic!("no pid in {item}")),
            fd.unwrap_or_else(|| panic!("no fd in {item}")),
        ));
    }
    out.sort();
    out
}

fn parse_ss(text: &str) -> Vec<SsRow> {
    let mut rows = Vec::new();
    for line in text.lines().skip(1) {
        let t: Vec<&str> = line.split_whitespace().collect();
        if t.is_empty() {
            continue;
        }
        assert!(t.len() >= 6, "short ss row: {line}");
        let num = |s: &str| -> u64 { s.parse().unwrap_or_else(|e| panic!("{s} in {line}: {e}")) };
        let mut r = SsRow {
            line: line.to_string(),
            netid: t[0].to_string(),
            state: t[1].to_string(),
            recv_q: num(t[2]),
            send_q: num(t[3]),
            ..Default::default()
        };
        let rest = if r.netid.starts_with("u_") {
            assert!(t.len() >= 8, "short ss unix row: {line}");
            r.local_addr = t[4].to_string();
            r.inode = Some(num(t[5]));
            r.peer_addr = t[6].to_string();
            r.peer_inode = Some(num(t[7]));
            &t[8..]
        } else {
            (r.local_addr, r.local_port) = split_inet(t[4]);
            (r.peer_addr, r.peer_port) = split_inet(t[5]);
            &t[6..]
        };
        for f in rest {
            if f.starts_with("users:(") {
                r.users = Some(parse_users(f));
            } else if let Some(v) = f.strip_prefix("ino:") {
                // UNIX rows print `ino:` for the inode of the bound path's
                // file, not the socket: the socket's is the column above.
                if !r.netid.starts_with("u_") {
                    r.inode = Some(num(v));
                }
            } else if let Some(v) = f.strip_prefix("uid:") {
                r.uid = Some(num(v));
            } else if let Some(v) = f.strip_prefix("sk:") {
                r.cookie = Some(
                    u64::from_str_radix(v, 16).unwrap_or_else(|e| panic!("sk:{v} in {line}: {e}")),
                );
            } else if let Some(v) = f.strip_prefix("v6only:") {
                r.v6only = Some(v == "1");
            }
        }
        rows.push(r);
    }
    rows
}

/// The address as sockscope would print it for ss's wildcard `*`.
fn addr_matches(ss: &str, ours: &Value) -> bool {
    let ours = ours.as_str().map(canon_addr).unwrap_or_default();
    if ss == "*" {
        ours == "0.0.0.0" || ours == "::"
    } else {
        ss == ours
    }
}

fn proto_short(p: &str) -> &str {
    match p {
        "unix_stream" => "u_str",
        "unix_dgram" => "u_dgr",
        "unix_seqpacket" => "u_seq",
        other => other,
    }
}

fn ss_state_label(s: &str) -> &str {
    match s {
        "established" => "ESTAB",
        "syn-sent" => "SYN-SENT",
        "syn-recv" => "SYN-RECV",
        "fin-wait-1" => "FIN-WAIT-1",
        "fin-wait-2" => "FIN-WAIT-2",
        "time-wait" => "TIME-WAIT",
        "closed" => "UNCONN",
        "close-wait" => "CLOSE-WAIT",
        "last-ack" => "LAST-ACK",
        "listening" => "LISTEN",
        "closing" => "CLOSING",
        other => other,
    }
}

fn ss_proto(netid: &str) -> &str {
    match netid {
        "u_str" => "unix_stream",
        "u_dgr" => "unix_dgram",
        "u_seq" => "unix_seqpacket",
        other => other,
    }
}

/// Protocol and 4-tuple, with either wildcard address written `*` as ss
/// does.
fn tuple_key(proto: &str, la: &str, lp: u64, pa: &str, pp: u64) -> String {
    let w = |a: &str| {
        let a = canon_addr(a);
        if a == "0.0.0.0" || a == "::" {
            "*".to_string()
        } else {
            a
        }
    };
    format!("{proto} {}:{lp} {}:{pp}", w(la), w(pa))
}

/// How an ss row is looked up among sockscope's rows: by inode when ss
/// printed one (non-zero), else by protocol and 4-tuple.
fn ss_key(r: &SsRow) -> String {
    match r.inode {
        Some(i) if i != 0 => key_parts("", i, &Value::Null, &Value::Null),
        _ => tuple_key(
            ss_proto(&r.netid),
            &r.local_addr,
            r.local_port,
            &r.peer_addr,
            r.peer_port,
        ),
    }
}

/// Protocol and 4-tuple of a sockscope row (INET only).
fn our_tuple(v: &Value) -> String {
    let s = |v: &Value, f: &str| field(v, f).as_str().unwrap_or("").to_string();
    let n = |v: &Value, f: &str| field(v, f).as_u64().unwrap_or(0);
    let (l, p) = (field(v, "local"), field(v, "peer"));
    tuple_key(
        &s(v, "proto"),
        &s(l, "addr"),
        n(l, "port"),
        &s(p, "addr"),
        n(p, "port"),
    )
}

/// Compare one ss row with sockscope's row for the same socket.
fn compare(r: &SsRow, v: &Value) {
    let ctx = |f: &str| format!("{f}: ss row\n  {}\nsockscope\n  {v}", r.line);
    assert_eq!(
        proto_short(field(v, "proto").as_str().unwrap_or("?")),
        r.netid,
        "{}",
        ctx("netid")
    );
    assert_eq!(
        ss_state_label(field(v, "state").as_str().unwrap_or("?")),
        r.state,
        "{}",
        ctx("state")
    );
    assert_eq!(field(v, "recv_q"), &json!(r.recv_q), "{}", ctx("recv_q"));
    assert_eq!(field(v, "send_q"), &json!(r.send_q), "{}", ctx("send_q"));
    let local = field(v, "local");
    let peer = field(v, "peer");
    if r.netid.starts_with("u_") {
        let name = if r.local_addr == "*" {
            Value::Null
        } else {
            json!(r.local_addr)
        };
        assert_eq!(field(local, "path"), &name, "{}", ctx("local path"));
        assert_eq!(field(v, "inode"), &json!(r.inode), "{}", ctx("inode"));
        assert_eq!(
            field(local, "inode"),
            &json!(r.inode),
            "{}",
            ctx("local.inode")
        );
        assert_eq!(
            field(peer, "inode"),
            &json!(r.peer_inode),
            "{}",
            ctx("peer inode")
        );
    } else {
        assert!(
            addr_matches(&r.local_addr, field(local, "addr")),
            "{}",
            ctx("local addr")
        );
        assert_eq!(
            field(local, "port"),
            &json!(r.local_port),
            "{}",
            ctx("local port")
        );
        assert!(
            addr_matches(&r.peer_addr, field(peer, "addr")),
            "{}",
            ctx("peer addr")
        );
        assert_eq!(
            field(peer, "port"),
            &json!(r.peer_port),
            "{}",
            ctx("peer port")
        );
        if let Some(i) = r.inode {
            assert_eq!(field(v, "inode"), &json!(i), "{}", ctx("inode"));
        }
    }
    if let Some(users) = &r.users {
        let mut ours: Vec<(String, u64, u64)> = common::owners_of(v)
            .into_iter()
            .map(|(pid, fd, comm, _)| (comm, pid, fd))
            .collect();
        ours.sort();
        assert_eq!(&ours, users, "{}", ctx("users"));
    } else {
        assert_eq!(
            field(v, "owners"),
            &json!([]),
            "{}",
            ctx("owners (ss shows none)")
        );
    }
    if let Some(c) = r.cookie {
        assert_eq!(field(v, "cookie"), &json!(c), "{}", ctx("cookie (sk:)"));
    }
    match r.uid {
        Some(u) => assert_eq!(field(v, "uid"), &json!(u), "{}", ctx("uid")),
        // ss leaves uid 0 out; where it prints ino: it knew the uid.
        None if r.inode.is_some() && !r.netid.starts_with("u_") => {
            let uid = field(v, "uid");
            assert!(uid == &json!(0) || uid.is_null(), "{}", ctx("uid (ss: 0)"));
        }
        None => {}
    }
    if let Some(b) = r.v6only {
        assert_eq!(field(v, "v6only"), &json!(b), "{}", ctx("v6only"));
    }
}

/// Run ss and sockscope with the same flags and compare every row, once
/// for each source of the socket table sockscope can read: the default
/// (netlink, RAW from /proc as this kernel has no raw_diag) and TCP from
/// the BPF iterator (`--source netlink` alone refuses RAW here).
fn diff(fx: &Fixture, flags: &str, expect_rows: usize) {
    for source in ["auto", "bpf"] {
        diff_source(fx, flags, expect_rows, source);
    }
}

fn diff_source(fx: &Fixture, flags: &str, expect_rows: usize, source: &str) {
    let ss = fx.nsenter(&["ss", flags]);
    ss.expect_code(0);
    let ss_rows = parse_ss(&ss.stdout);
    let list = fx.ls_json(&[flags, "--source", source]);
    if source == "bpf" {
        assert!(
            list.iter()
                .filter(|v| v["proto"] == json!("tcp") || v["proto"] == json!("udp"))
                .all(|v| v["source"] == json!("bpf")),
            "--source bpf: TCP and UDP rows from the BPF iterators: {list:#?}"
        );
    }

    let ours: BTreeMap<String, &Value> = list.iter().map(|v| (key_of(v), v)).collect();
    assert_eq!(
        ours.len(),
        list.len(),
        "duplicate sockscope rows for {flags} --source {source}"
    );
    let mut by_tuple: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for v in &list {
        by_tuple.entry(our_tuple(v)).or_default().push(v);
    }
    let mut seen = BTreeSet::new();
    for r in &ss_rows {
        let k = ss_key(r);
        let v = match ours.get(&k) {
            Some(v) => *v,
            None => match by_tuple.get(&k).map(Vec::as_slice) {
                Some([v]) => *v,
                Some(many) => panic!(
                    "ss row\n  {}\nmatches several sockscope rows: {many:#?}",
                    r.line
                ),
                None => panic!(
                    "ss {flags} lists a socket sockscope --source {source} does not:\n  {}\nsockscope listed {list:#?}",
                    r.line
                ),
            },
        };
        compare(r, v);
        assert!(seen.insert(key_of(v)), "two ss rows map to {v}");
    }
    let extra: Vec<&&Value> = ours
        .iter()
        .filter(|(k, _)| !seen.contains(*k))
        .map(|(_, v)| v)
        .collect();
    assert!(
        extra.is_empty(),
        "sockscope {flags} --source {source} lists sockets ss does not: {extra:#?}\nss:\n{}",
        ss.stdout
    );
    assert_eq!(
        ss_rows.len(),
        expect_rows,
        "rows for {flags}; ss said:\n{}",
        ss.stdout
    );
}

#[test]
fn same_as_ss_all_states_with_owners_and_details() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    diff(&fx, "-tuwxanpe", fx.manifest.sockets.len());
}

#[test]
fn same_as_ss_default_states() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    let n = fx
        .manifest
        .sockets
        .iter()
        .filter(|s| !["listening", "closed", "time-wait", "syn-recv"].contains(&s.state.as_str()))
        .count();
    diff(&fx, "-tuwxnp", n);
}

#[test]
fn same_as_ss_listening() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    let n = fx
        .manifest
        .sockets
        .iter()
        .filter(|s| s.state == "listening" || s.state == "closed")
        .count();
    diff(&fx, "-tuwxlnpe", n);
}

#[test]
fn ss_parser_reads_its_own_formats() {
    // The parser above is part of the test: check it on rows as ss prints
    // them, so a misparse cannot make the comparison vacuous.
    let text = "Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n\
        u_str LISTEN 0 4 /tmp/x/listen.sock 376464 * 0 users:((\"python3\",pid=7576,fd=21)) <-> ino:10010921 dev:0/65024 peers:\n\
        raw UNCONN 0 0 0.0.0.0:1 0.0.0.0:* users:((\"python3\",pid=7576,fd=20))\n\
        tcp LISTEN 0 3 127.0.0.1:5008 0.0.0.0:* users:((\"python3\",pid=7620,fd=3),(\"python3\",pid=7576,fd=3)) uid:1000 ino:376444 sk:3c4e3 cgroup:/ <->\n\
        tcp FIN-WAIT-2 0 0 127.0.0.1:39186 127.0.0.1:5007 timer:(timewait,58sec,0) ino:0 sk:3c4fc\n\
        tcp LISTEN 0 2 *:5003 *:* users:((\"python3\",pid=7576,fd=11)) ino:376458 sk:3c4ee cgroup:/ v6only:0 <->\n\
        tcp ESTAB 0 0 [::ffff:127.0.0.1]:5003 [::ffff:127.0.0.1]:44050 ino:376460 sk:3c4f0\n";
    let rows = parse_ss(text);
    assert_eq!(rows.len(), 6);
    assert_eq!(
        (
            rows[0].netid.as_str(),
            rows[0].local_addr.as_str(),
            rows[0].inode,
            rows[0].peer_inode
        ),
        ("u_str", "/tmp/x/listen.sock", Some(376464), Some(0))
    );
    assert_eq!(rows[0].send_q, 4);
    assert_eq!(
        (
            rows[1].local_port,
            rows[1].peer_addr.as_str(),
            rows[1].inode
        ),
        (1, "0.0.0.0", None)
    );
    assert_eq!(
        rows[2].users,
        Some(vec![
            ("python3".into(), 7576, 3),
            ("python3".into(), 7620, 3)
        ])
    );
    assert_eq!(
        (rows[2].uid, rows[2].inode, rows[2].cookie),
        (Some(1000), Some(376444), Some(0x3c4e3))
    );
    assert_eq!(
        (
            rows[3].state.as_str(),
            rows[3].inode,
            rows[3].users.as_ref()
        ),
        ("FIN-WAIT-2", Some(0), None)
    );
    assert_eq!(ss_key(&rows[3]), "tcp 127.0.0.1:39186 127.0.0.1:5007");
    assert_eq!(ss_key(&rows[1]), "raw *:1 *:0");
    assert_eq!(ss_key(&rows[2]), "ino:376444");
    assert_eq!(
        our_tuple(
            &json!({"proto": "tcp", "local": {"addr": "::", "port": 5003},
                          "peer": {"addr": "::", "port": 0}})
        ),
        "tcp *:5003 *:0"
    );
    assert_eq!(
        (
            rows[4].local_addr.as_str(),
            rows[4].local_port,
            rows[4].peer_port,
            rows[4].v6only
        ),
        ("*", 5003, 0, Some(false))
    );
    assert_eq!(
        (rows[5].local_addr.as_str(), rows[5].peer_port),
        ("::ffff:127.0.0.1", 44050)
    );
}
