//! Seed 003 scripted: the ncat session traced with LTTng, reproduced with
//! `sockscope trace` in a private network namespace. A server makes a
//! listener (socket, setsockopt, bind, listen); a forked client connects;
//! the server accepts, closes its listener and writes "Hello\n"; the client
//! reads it and aborts with SO_LINGER {1, 0}; the server's recv fails with
//! ECONNRESET and it closes. The trace must show, in order and with the
//! right pid and fd: socket, bind, listen by the server; the half-open and
//! ESTABLISHED transitions of the server's new socket (attributed to the
//! listener's owner before accept); accept returning fd N; the 6-byte
//! write; the reset received; close. Also the client's side, the JSON
//! connection summaries, and the same session as a sequence diagram (text
//! and SVG).

#[path = "common/root.rs"]
mod root;

#[path = "fixtures/trace/harness.rs"]
mod harness;

use harness::*;
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

fn n(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"))
}

#[test]
fn seed003_in_order_with_pid_and_fd() {
    if root::skip_without_root() {
        return;
    }
    let (r, out) = traced("seed003", 5000, &[], Duration::from_millis(500));
    let (srv, cli) = (n(&r, "server_pid"), n(&r, "client_pid"));
    let (lfd, cfd) = (n(&r, "listen_fd"), n(&r, "conn_fd"));
    let cport = n(&r, "client_port");
    assert_eq!(r["sent"], 6);
    assert_eq!(r["got"], "Hello\n");
    assert_eq!(r["recv_error"], "ECONNRESET");
    let evs = out.events();
    let by = |v: &Value, pid: u64, fd: u64| v["pid"] == pid && v["fd"] == fd;

    // The server's listener: socket, bind, listen, by the server, on its fd.
    let i = find_from(&out, &evs, 0, "server socket()", |v| {
        is_sys(v, "socket") && by(v, srv, lfd)
    });
    assert_eq!(evs[i]["ret"], lfd);
    assert_eq!(
        evs[i]["args"],
        json!({"domain": "AF_INET", "type": "SOCK_STREAM|SOCK_CLOEXEC", "protocol": 0})
    );
    let listener = evs[i]["conn"].clone();
    let i = find_from(&out, &evs, i, "SO_REUSEADDR", |v| {
        is_sys(v, "setsockopt") && by(v, srv, lfd)
    });
    assert_eq!(evs[i]["args"]["optname"], "SO_REUSEADDR");
    let i = find_from(&out, &evs, i, "server bind()", |v| {
        is_sys(v, "bind") && by(v, srv, lfd)
    });
    assert_eq!(evs[i]["ret"], 0);
    assert_eq!(
        evs[i]["args"]["addr"],
        json!({"addr": "127.0.0.1", "port": 5000})
    );
    assert_eq!(evs[i]["conn"], listener);
    let i = find_from(&out, &evs, i, "server listen()", |v| {
        is_sys(v, "listen") && by(v, srv, lfd)
    });
    assert_eq!(evs[i]["args"]["backlog"], 1);
    assert_eq!(evs[i]["conn"], listener);

    // The server's new socket: made by the kernel, owned via the listener.
    let i = find_from(&out, &evs, i, "LISTEN -> SYN-RECV", |v| {
        is_state(v, "listening", "syn-recv") && port_of(v, "peer") == Some(cport)
    });
    let conn = evs[i]["conn"].clone();
    assert_ne!(conn, listener);
    assert_eq!(
        (&evs[i]["pid"], &evs[i]["fd"], &evs[i]["owner"]),
        (&json!(srv), &json!(lfd), &json!("listener"))
    );
    assert_eq!(evs[i]["local"], json!({"addr": "127.0.0.1", "port": 5000}));
    let i = find_from(&out, &evs, i, "SYN-RECV -> ESTABLISHED", |v| {
        v["conn"] == conn && is_state(v, "syn-recv", "established")
    });
    assert_eq!(
        (&evs[i]["pid"], &evs[i]["fd"]),
        (&json!(srv), &json!(lfd)),
        "queued, not accepted yet"
    );
    let i = find_from(&out, &evs, i, "accept()", |v| {
        v["conn"] == conn && (is_sys(v, "accept") || is_sys(v, "accept4"))
    });
    assert_eq!(evs[i]["ret"], cfd, "accept returns fd N");
    assert_eq!(evs[i]["sys_fd"], lfd, "on the listener's fd");
    assert!(by(evs[i], srv, cfd), "{}", evs[i]);
    let i = find_from(&out, &evs, i, "the 6-byte write", |v| {
        v["conn"] == conn && v["kind"] == "send"
    });
    assert_eq!(
        (&evs[i]["bytes"], &evs[i]["syscall"]),
        (&json!(6), &json!("sendto"))
    );
    assert!(by(evs[i], srv, cfd), "{}", evs[i]);
    let i = find_from(&out, &evs, i, "reset received", |v| {
        v["conn"] == conn && v["kind"] == "reset_received"
    });
    assert!(
        by(evs[i], srv, cfd),
        "attributed by socket, not by the task in softirq: {}",
        evs[i]
    );
    let j = find_from(&out, &evs, i, "recv ECONNRESET", |v| {
        v["conn"] == conn && v["kind"] == "recv"
    });
    assert_eq!(evs[j]["errno"], "ECONNRESET");
    let i = find_from(&out, &evs, j, "close()", |v| {
        v["conn"] == conn && is_sys(v, "close")
    });
    assert_eq!(
        (&evs[i]["sys_fd"], &evs[i]["ret"]),
        (&json!(cfd), &json!(0))
    );
    assert!(by(evs[i], srv, cfd));
    // The server also closed its listener after accept (as ncat does).
    let k = find_from(&out, &evs, 0, "listener close()", |v| {
        v["conn"] == listener && is_sys(v, "close")
    });
    assert_eq!(evs[k]["sys_fd"], lfd);

    // The client's side: its own pid and fd, SYN-SENT then ESTABLISHED,
    // the abort (RST sent, with the kernel's reason).
    let client = evs
        .iter()
        .find(|v| is_sys(v, "connect") && v["pid"] == cli)
        .unwrap_or_else(|| panic!("client connect():\n{}", out.dump()));
    let cconn = client["conn"].clone();
    let fd = n(&r, "client_fd");
    let cevs = out.of_conn(cconn.as_u64().unwrap_or(0));
    let states: Vec<String> = cevs
        .iter()
        .filter(|v| v["kind"] == "state")
        .map(|v| short(v))
        .collect();
    assert_eq!(
        states,
        vec![
            "closed->syn-sent",
            "syn-sent->established",
            "established->closed"
        ]
    );
    assert!(
        cevs.iter().all(|v| v["pid"] == cli && v["fd"] == fd),
        "client events: {cevs:#?}"
    );
    let rst = cevs
        .iter()
        .find(|v| v["kind"] == "reset_sent")
        .expect("client RST");
    let reason = rst["reason"].as_str().unwrap_or("");
    assert!(
        !reason.is_empty() && !reason.starts_with("REASON_"),
        "reason named from BTF: {reason}"
    );

    // Connection summaries.
    let conns = out.connections();
    let c = conns
        .iter()
        .find(|c| c["conn"] == conn)
        .expect("server connection line");
    assert_eq!(
        (
            &c["role"],
            &c["end"],
            &c["pid"],
            &c["fd"],
            &c["bytes_written"]
        ),
        (
            &json!("server"),
            &json!("reset_received"),
            &json!(srv),
            &json!(cfd),
            &json!(6)
        )
    );
    assert_eq!(
        c["states"],
        json!(["listening", "syn-recv", "established", "closed"])
    );
    let c = conns
        .iter()
        .find(|c| c["conn"] == cconn)
        .expect("client connection line");
    assert_eq!(
        (&c["role"], &c["end"], &c["bytes_read"]),
        (&json!("client"), &json!("reset_sent"), &json!(6))
    );
    let s = out.stats();
    assert_eq!(s["kernel_lost"], 0);
    assert_eq!(s["bad_records"], 0);
}

#[test]
fn seed003_as_a_sequence_diagram() {
    if root::skip_without_root() {
        return;
    }
    let mut scene = Scene::start("seed003", 5010);
    let dir = std::env::temp_dir().join(format!("sockscope-trace-svg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cmd = Command::new(BIN);
    cmd.args([
        "trace",
        "--diagram",
        "--netns-pid",
        &scene.pid.to_string(),
        "--svg",
    ])
    .arg(&dir);
    let trace = Trace::spawn(cmd);
    let r = scene.go();
    std::thread::sleep(Duration::from_millis(600));
    let (status, text, err) = trace.stop_text();
    assert_eq!(status.code(), Some(0), "stderr:\n{err}");
    let (srv, cfd, cport) = (n(&r, "server_pid"), n(&r, "conn_fd"), n(&r, "client_port"));
    // The server connection's diagram, in the seed's columns and order.
    let start = text
        .find(&format!("tcp 127.0.0.1:5010 ← 127.0.0.1:{cport}"))
        .unwrap_or_else(|| panic!("no server diagram:\n{text}"));
    let d = &text[start..text[start..].find("\n\n").map_or(text.len(), |e| start + e)];
    let head = d.lines().nth(1).unwrap_or("");
    assert!(
        head.contains(&format!("client 127.0.0.1:{cport}"))
            && head.contains("kernel")
            && head.contains(&format!("application python3[{srv}]")),
        "columns: {head}"
    );
    let rows: Vec<&str> = d.lines().skip(3).collect();
    let order = [
        " SYN ",
        " SYN-ACK ",
        " ACK ",
        "queued for accept()",
        &format!("accept4() returns fd {cfd}"),
        &format!("sendto({cfd}): 6 B"),
        "data 6 B",
        " RST ",
        "recvfrom",
        &format!("close({cfd}) = 0"),
    ];
    let mut at = 0;
    for want in order {
        match rows.iter().skip(at).position(|r| r.contains(want)) {
            Some(p) => at += p + 1,
            None => panic!("no row with {want:?} after row {at} in:\n{d}"),
        }
    }
    assert!(d.contains("reset by the peer"), "{d}");
    // The SVG of every finished connection.
    let files: Vec<String> = std::fs::read_dir(&dir)
        .expect("svg dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let name = files
        .iter()
        .find(|f| f.ends_with(&format!("-5010-{cport}.svg")))
        .unwrap_or_else(|| panic!("no SVG for the server connection in {files:?}"));
    let svg = std::fs::read_to_string(dir.join(name)).expect("read svg");
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(
        svg.contains(&format!(">accept4() returns fd {cfd}<")),
        "{svg}"
    );
    assert!(svg.trim_end().ends_with("</svg>"));
    let _ = std::fs::remove_dir_all(&dir);
}
