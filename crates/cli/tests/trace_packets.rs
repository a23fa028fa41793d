//! Seed 003 with the real ncat, packets included: `ncat --listen 127.0.0.1
//! PORT`, `ncat 127.0.0.1 PORT`, the server types Hello, the client aborts
//! (killed with the 6 bytes unread: RST), traced with `sockscope trace
//! --port PORT` (packet events are part of the default with a port
//! filter) while tcpdump captures lo in the same namespace.
//!
//! Asserted, in order, on the server's connection: socket, setsockopt,
//! bind, listen by ncat; the SYN in and the SYN-ACK out in softirq before
//! any syscall of ncat returns; the ACK in; accept returning the new fd;
//! the close of the listener; the 6-byte sendto with a PSH segment of
//! length 6 leaving from ncat's own context; the peer's ACK of 7; the RST
//! in; the read failing; close. Then a differential: every segment
//! tcpdump saw is a packet event leaving one end and one arriving at the
//! other, with the same flags, seq, ack and length, and nothing more. And
//! the same session as a sequence diagram, drawn from the segments.

#[path = "common/root.rs"]
mod root;

#[path = "fixtures/trace/harness.rs"]
mod harness;

use harness::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

fn n(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"))
}

fn is_pkt(v: &Value, dir: &str, flags: &[&str]) -> bool {
    v["kind"] == "packet" && v["direction"] == dir && flag_set(v) == names(flags)
}

fn names(f: &[&str]) -> BTreeSet<String> {
    f.iter().map(|s| s.to_string()).collect()
}

/// The flags of a packet event as a set.
fn flag_set(v: &Value) -> BTreeSet<String> {
    v["tcp_flags"]
        .as_str()
        .unwrap_or("")
        .split('|')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The flags byte of a captured segment as the same set.
fn byte_flags(b: u64) -> BTreeSet<String> {
    [
        (0x01, "FIN"),
        (0x02, "SYN"),
        (0x04, "RST"),
        (0x08, "PSH"),
        (0x10, "ACK"),
        (0x20, "URG"),
    ]
    .iter()
    .filter(|(bit, _)| b & bit != 0)
    .map(|(_, n)| n.to_string())
    .collect()
}

type Seg = (String, u64, String, u64, Vec<String>, u64, u64, u64);

fn seg_of_event(v: &Value) -> Seg {
    let (src, dst) = if v["direction"] == "out" {
        (&v["local"], &v["peer"])
    } else {
        (&v["peer"], &v["local"])
    };
    (
        src["addr"].as_str().unwrap_or("?").to_string(),
        n(src, "port"),
        dst["addr"].as_str().unwrap_or("?").to_string(),
        n(dst, "port"),
        flag_set(v).into_iter().collect(),
        n(v, "seq"),
        n(v, "ack"),
        n(v, "len"),
    )
}

fn seg_of_capture(p: &Value) -> Seg {
    (
        p["src"].as_str().unwrap_or("?").to_string(),
        n(p, "sport"),
        p["dst"].as_str().unwrap_or("?").to_string(),
        n(p, "dport"),
        byte_flags(n(p, "flags")).into_iter().collect(),
        n(p, "seq"),
        n(p, "ack"),
        n(p, "len"),
    )
}

#[test]
fn ncat_session_in_order_and_as_tcpdump_saw_it() {
    if root::skip_without_root() {
        return;
    }
    let port = 5000;
    let mut scene = Scene::start("ncat003", port);
    let pid = scene.pid.to_string();
    let trace = Trace::start(&["--netns-pid", &pid, "--port", "5000"]);
    let r = scene.go();
    std::thread::sleep(Duration::from_millis(500));
    let out = trace.stop();
    drop(scene);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", out.stderr);
    let (srv, cport) = (n(&r, "server_pid"), n(&r, "client_port"));
    assert_eq!(r["server_status"], 1, "ncat exits 1 on the reset: {r}");
    let evs = out.events();
    let by_srv = |v: &Value| v["pid"] == srv;
    let sys = |v: &Value, name: &str| v["kind"] == "syscall" && v["syscall"] == name;

    // The listener: socket, setsockopt, bind, listen, by ncat.
    let i = find_from(&out, &evs, 0, "ncat's socket()", |v| {
        sys(v, "socket") && by_srv(v)
    });
    let listener = evs[i]["conn"].clone();
    let lfd = n(evs[i], "ret");
    let on_l = |v: &Value| v["conn"] == listener && by_srv(v);
    let i = find_from(&out, &evs, i, "setsockopt()", |v| {
        sys(v, "setsockopt") && on_l(v)
    });
    let i = find_from(&out, &evs, i, "bind()", |v| sys(v, "bind") && on_l(v));
    let i_listen = find_from(&out, &evs, i, "listen()", |v| sys(v, "listen") && on_l(v));
    // ncat makes the listener non-blocking and blocks in select.
    let i = find_from(&out, &evs, i_listen, "fcntl(O_NONBLOCK)", |v| {
        sys(v, "fcntl") && on_l(v) && v["args"]["flags"] == "O_NONBLOCK"
    });
    let waits = |v: &Value, phase: &str| {
        v["kind"] == "wait"
            && v["phase"] == phase
            && by_srv(v)
            && matches!(
                v["syscall"].as_str(),
                Some("select" | "pselect6" | "poll" | "ppoll")
            )
    };
    let i_block = find_from(&out, &evs, i, "the wait blocking", |v| waits(v, "enter"));

    // The handshake, done by the kernel in softirq.
    let from_client = |v: &Value| v["peer"]["port"] == cport && v["local"]["port"] == port;
    let i = find_from(&out, &evs, i_block, "SYN in", |v| {
        is_pkt(v, "in", &["SYN"]) && from_client(v)
    });
    let conn = evs[i]["conn"].clone();
    assert!(conn.is_u64() && conn != listener, "{}", evs[i]);
    assert_eq!(
        (&evs[i]["pid"], &evs[i]["owner"], &evs[i]["rel_seq"]),
        (&Value::from(srv), &Value::from("listener"), &Value::from(0)),
        "the SYN belongs to the listener's owner: {}",
        evs[i]
    );
    assert!(evs[i]["mss"].is_u64() && evs[i]["sack_permitted"] == true);
    assert_eq!(evs[i]["softirq"], true);
    let on_c = |v: &Value| v["conn"] == conn;
    let i_synack = find_from(&out, &evs, i, "SYN-ACK out", |v| {
        on_c(v) && is_pkt(v, "out", &["SYN", "ACK"])
    });
    let sa = evs[i_synack];
    assert_eq!(
        (&sa["softirq"], &sa["tid"], &sa["rel_ack"]),
        (&Value::from(true), &Value::Null, &Value::from(1)),
        "the SYN-ACK is sent in softirq, without ncat: {sa}"
    );
    // Once blocked, nothing of ncat returns until then.
    if let Some(v) = evs[i_block + 1..i_synack]
        .iter()
        .find(|v| by_srv(v) && v["owner"] == "task" && v["phase"] != "enter")
    {
        panic!(
            "ncat ran a traced syscall before the SYN-ACK: {v}\n{}",
            out.dump()
        );
    }
    let i = find_from(&out, &evs, i_synack, "ACK in", |v| {
        on_c(v) && is_pkt(v, "in", &["ACK"])
    });
    assert_eq!(
        (&evs[i]["rel_seq"], &evs[i]["rel_ack"]),
        (&1.into(), &1.into())
    );
    let i = find_from(&out, &evs, i, "accept()", |v| {
        on_c(v) && (sys(v, "accept") || sys(v, "accept4")) && by_srv(v)
    });
    let cfd = n(evs[i], "ret");
    assert_eq!(evs[i]["sys_fd"], lfd, "on the listener's fd");
    let i = find_from(&out, &evs, i, "close of the listener", |v| {
        sys(v, "close") && on_l(v) && v["sys_fd"] == lfd
    });
    // sendto of 6: the PSH segment leaves from ncat's context.
    let i_send = find_from(&out, &evs, i, "sendto = 6", |v| {
        on_c(v) && v["kind"] == "send" && v["bytes"] == 6 && v["sys_fd"] == cfd
    });
    let i_psh = find_from(&out, &evs, i, "PSH out", |v| {
        on_c(v) && is_pkt(v, "out", &["PSH", "ACK"])
    });
    let psh = evs[i_psh];
    assert_eq!(
        (
            &psh["len"],
            &psh["rel_seq"],
            &psh["rel_ack"],
            &psh["softirq"]
        ),
        (&6.into(), &1.into(), &1.into(), &false.into()),
        "{psh}"
    );
    assert_eq!(
        psh["tid"], evs[i_send]["tid"],
        "sent by the thread that called sendto"
    );
    let i = find_from(&out, &evs, i_psh, "the peer's ACK 7", |v| {
        on_c(v) && is_pkt(v, "in", &["ACK"]) && v["rel_ack"] == 7
    });
    let i = find_from(&out, &evs, i, "RST in", |v| {
        on_c(v) && v["kind"] == "packet" && v["direction"] == "in" && flag_set(v).contains("RST")
    });
    assert_eq!(
        (&evs[i]["rel_ack"], &evs[i]["softirq"]),
        (&7.into(), &true.into())
    );
    let i = find_from(&out, &evs, i, "the read failing", |v| {
        on_c(v) && v["kind"] == "recv" && (v["errno"] == "ECONNRESET" || v["bytes"] == 0)
    });
    find_from(&out, &evs, i, "close()", |v| {
        on_c(v) && sys(v, "close") && v["sys_fd"] == cfd && by_srv(v)
    });

    // The differential: tcpdump on lo saw each segment once; the devices
    // saw it leave one end and arrive at the other.
    let mut captured: Vec<Seg> = r["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .map(seg_of_capture)
        .collect();
    captured.sort();
    assert_eq!(
        captured.len(),
        6,
        "SYN, SYN-ACK, ACK, PSH, ACK, RST: {captured:?}"
    );
    for dir in ["out", "in"] {
        let mut ours: Vec<Seg> = evs
            .iter()
            .filter(|v| v["kind"] == "packet" && v["direction"] == dir)
            .map(|v| seg_of_event(v))
            .collect();
        ours.sort();
        assert_eq!(ours, captured, "packet events {dir} against tcpdump");
    }
    let conns = out.connections();
    let c = conns
        .iter()
        .find(|c| c["conn"] == conn)
        .expect("server connection");
    assert_eq!(
        (&c["packets_in"], &c["packets_out"]),
        (&4.into(), &2.into())
    );
    assert_eq!(c["role"], "server");
    assert_eq!(out.stats()["kernel_lost"], 0);
}

#[test]
fn ncat_session_as_a_sequence_diagram_of_real_segments() {
    if root::skip_without_root() {
        return;
    }
    let port = 5020;
    let mut scene = Scene::start("ncat003", port);
    let mut cmd = Command::new(BIN);
    cmd.args([
        "trace",
        "--port",
        "5020",
        "--diagram",
        "--netns-pid",
        &scene.pid.to_string(),
    ]);
    let trace = Trace::spawn(cmd);
    let r = scene.go();
    std::thread::sleep(Duration::from_millis(600));
    let (status, text, err) = trace.stop_text();
    drop(scene);
    assert_eq!(status.code(), Some(0), "stderr:\n{err}");
    let cport = n(&r, "client_port");
    let start = text
        .find(&format!("tcp 127.0.0.1:{port} ← 127.0.0.1:{cport}"))
        .unwrap_or_else(|| panic!("no server diagram:\n{text}"));
    let d = &text[start..text[start..].find("\n\n").map_or(text.len(), |e| start + e)];
    assert!(
        !d.contains('┄'),
        "nothing inferred (dashed) with packets:\n{d}"
    );
    let rows: Vec<&str> = d.lines().skip(3).collect();
    let order = [
        "[SYN] len 0",
        "[SYN|ACK] len 0",
        "[ACK] len 0",
        "queued for accept()",
        "returns fd",
        "[ACK|PSH] len 6",
        "[ACK|RST] len 0",
        "close(",
    ];
    let mut at = 0;
    for want in order {
        match rows.iter().skip(at).position(|r| r.contains(want)) {
            Some(p) => at += p + 1,
            None => panic!("no row with {want:?} after row {at} in:\n{d}"),
        }
    }
    // The write's report (sock_send_length fires when sendmsg returns)
    // and the peer's ACK of 7 come after the PSH segment, before the RST.
    let row = |want: &str| rows.iter().position(|r| r.contains(want));
    let (psh, rst) = (row("[ACK|PSH] len 6"), row("[ACK|RST]"));
    let send = row("sendto(4): 6 B").or(row("sendto("));
    let ack7 = rows
        .iter()
        .position(|r| r.contains("[ACK] len 0") && r.contains("ack 7"));
    assert!(psh < send && send < rst, "{d}");
    assert!(psh < ack7 && ack7 < rst, "{d}");
    // Arrows point the right way: the SYN comes from the client's lane.
    let syn = rows
        .iter()
        .find(|r| r.contains("[SYN] len 0"))
        .expect("SYN row");
    assert!(syn.contains("▶") && syn.contains("seq 0"), "{syn}");
    let synack = rows
        .iter()
        .find(|r| r.contains("[SYN|ACK]"))
        .expect("SYN-ACK row");
    assert!(
        synack.contains("◀") && synack.contains("softirq"),
        "{synack}"
    );
}
