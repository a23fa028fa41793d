//! Every `sockscope lab run` scenario on this kernel: each must exit 0 with
//! every check passed, and the JSON must carry the exact observations the
//! scenario is about. The private namespace must be gone afterwards.

#[path = "common/root.rs"]
mod root;

#[path = "fixtures/lab/support.rs"]
mod support;

use serde_json::Value;
use support::{require_root, sockscope};

/// Run a scenario with --json; it must pass.
fn run(name: &str) -> Value {
    require_root();
    let (code, out, err) = sockscope(&["lab", "run", name, "--json"]);
    let v: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {out}\n{err}"));
    let failed: Vec<&Value> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["checks"].as_array().unwrap())
        .filter(|c| c["ok"] != Value::Bool(true))
        .collect();
    assert!(failed.is_empty(), "{name}: failed checks: {failed:#?}");
    assert_eq!(code, 0, "{name}: {err}");
    assert_eq!(v["scenario"], name);
    assert_eq!(v["ok"], true);
    assert_eq!(v["checks_failed"], 0);
    assert!(
        v["checks_total"].as_u64().unwrap() >= 4,
        "{name}: too few checks"
    );
    // The namespace died with the run: no process is in it any more.
    let ino = v["netns_inode"].as_u64().expect("netns_inode");
    let here = std::fs::metadata("/proc/self/ns/net").unwrap();
    assert_ne!(ino, std::os::unix::fs::MetadataExt::ino(&here));
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(m) = std::fs::metadata(e.path().join("ns/net"))
            && std::os::unix::fs::MetadataExt::ino(&m) == ino
        {
            panic!(
                "{name}: {:?} is still in the scenario's namespace",
                e.path()
            );
        }
    }
    v
}

/// The observed value of the first check whose name starts with `what`.
fn observed(v: &Value, what: &str) -> String {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["checks"].as_array().unwrap())
        .find(|c| c["what"].as_str().unwrap().starts_with(what))
        .unwrap_or_else(|| panic!("no check '{what}'"))["observed"]
        .as_str()
        .unwrap()
        .to_string()
}

fn step(v: &Value, n: usize) -> &Value {
    &v["steps"][n - 1]
}

fn states(step: &Value) -> Vec<String> {
    step["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn handshake() {
    if root::skip_without_root() {
        return;
    }
    let v = run("handshake");
    assert_eq!(observed(&v, "accept queue (Recv-Q of the listener)"), "1");
    assert_eq!(
        observed(&v, "server side of the connection, before accept"),
        "ESTAB, inode 0, no owner"
    );
    assert_eq!(observed(&v, "local port of the accepted socket"), "5000");
    assert_eq!(observed(&v, "Tcp.ActiveOpens"), "1");
    let s3 = step(&v, 3);
    assert_eq!(states(s3), ["listening", "established", "established"]);
    // The accepted socket is owned by this run's process.
    let owners = &s3["sockets"][1]["owners"];
    assert_eq!(owners.as_array().unwrap().len(), 1);
    assert_eq!(owners[0]["comm"], "sockscope");
}

#[test]
fn backlog() {
    if root::skip_without_root() {
        return;
    }
    let v = run("backlog");
    assert_eq!(
        observed(&v, "accept queue (Recv-Q of the listener) = backlog + 1"),
        "4"
    );
    assert_eq!(observed(&v, "clients whose connect() completed"), "4");
    assert_eq!(observed(&v, "clients left in SYN-SENT"), "4");
    let s2 = step(&v, 2);
    assert!(s2["counters"]["TcpExt.ListenOverflows"].as_i64().unwrap() >= 4);
    assert!(s2["counters"]["TcpExt.ListenDrops"].as_i64().unwrap() >= 4);
    let l = &s2["sockets"][0];
    assert_eq!(
        (
            l["state"].as_str(),
            l["recv_q"].as_u64(),
            l["send_q"].as_u64()
        ),
        (Some("listening"), Some(4), Some(3))
    );
    assert_eq!(states(s2).iter().filter(|s| *s == "syn-sent").count(), 4);
}

#[test]
fn syn_queue() {
    if root::skip_without_root() {
        return;
    }
    let v = run("syn-queue");
    assert_eq!(
        observed(&v, "SYN-RECV request sockets on the listener"),
        "3"
    );
    assert_eq!(observed(&v, "SYN queue length when full (backlog 4)"), "5");
    assert_eq!(observed(&v, "TcpExt.SyncookiesSent"), "3");
    assert_eq!(observed(&v, "TcpExt.SyncookiesRecv"), "3");
    assert_eq!(step(&v, 3)["sysctls"]["net.ipv4.tcp_syncookies"], "0");
    assert_eq!(step(&v, 4)["sysctls"]["net.ipv4.tcp_syncookies"], "1");
    let s2 = step(&v, 2);
    assert_eq!(states(s2).iter().filter(|s| *s == "syn-recv").count(), 3);
}

#[test]
fn reuseport() {
    if root::skip_without_root() {
        return;
    }
    let v = run("reuseport");
    assert_eq!(observed(&v, "listening sockets on port 5000"), "4");
    assert_eq!(observed(&v, "connections queued over all listeners"), "40");
    let q: u64 = step(&v, 2)["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["recv_q"].as_u64().unwrap())
        .sum();
    assert_eq!(q, 40);
}

#[test]
fn time_wait() {
    if root::skip_without_root() {
        return;
    }
    let v = run("time-wait");
    assert_eq!(observed(&v, "client side (closed first)"), "TIME-WAIT");
    assert_eq!(observed(&v, "server side (closed second)"), "gone");
    assert_eq!(
        observed(&v, "server side (local port 5000, closed first)"),
        "TIME-WAIT"
    );
    assert_eq!(observed(&v, "TIME-WAIT sockets in the namespace"), "1");
    let tw = &step(&v, 3)["sockets"][0];
    assert_eq!(tw["state"], "time-wait");
    assert_eq!(tw["inode"], 0);
    assert_eq!(tw["timer"]["kind"], "timewait");
}

#[test]
fn close_wait() {
    if root::skip_without_root() {
        return;
    }
    let v = run("close-wait");
    assert_eq!(observed(&v, "the application's socket"), "CLOSE-WAIT");
    assert_eq!(observed(&v, "the process is named"), "sockscope");
    assert_eq!(observed(&v, "still"), "CLOSE-WAIT");
    let cw = &step(&v, 2)["sockets"][0];
    assert_eq!(cw["state"], "close-wait");
    assert_eq!(cw["owners"][0]["comm"], "sockscope");
}

#[test]
fn refused() {
    if root::skip_without_root() {
        return;
    }
    let v = run("refused");
    assert_eq!(
        observed(&v, "connect() result"),
        "ECONNREFUSED (Connection refused (os error 111))"
    );
    assert_eq!(observed(&v, "Tcp.OutRsts"), "1");
    assert_eq!(observed(&v, "Tcp.AttemptFails"), "1");
    assert_eq!(observed(&v, "TCP sockets left in the namespace"), "0");
}

#[test]
fn fork_server() {
    if root::skip_without_root() {
        return;
    }
    let v = run("fork-server");
    let owners = step(&v, 2)["sockets"][0]["owners"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(owners.len(), 4, "{owners:?}");
    let comms: Vec<&str> = owners.iter().map(|o| o["comm"].as_str().unwrap()).collect();
    assert_eq!(
        comms,
        ["sockscope", "lab-child-1", "lab-child-2", "lab-child-3"]
    );
    assert!(
        owners.iter().all(|o| o["fd"] == owners[0]["fd"]),
        "same fd in every process"
    );
    assert_eq!(
        step(&v, 3)["sockets"][0]["owners"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn unix() {
    if root::skip_without_root() {
        return;
    }
    let v = run("unix");
    assert_eq!(observed(&v, "the path is a socket file"), "true");
    assert_eq!(
        observed(&v, "pending connections (Recv-Q of a UNIX listener)"),
        "2"
    );
    let s3 = step(&v, 3);
    assert_eq!(s3["sockets"].as_array().unwrap().len(), 4);
    assert!(
        s3["sockets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["proto"] == "unix_stream")
    );
}

/// The notes of a step that start with `prefix`.
fn notes<'a>(step: &'a Value, prefix: &str) -> Vec<&'a str> {
    step["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

#[test]
fn fin_close() {
    if root::skip_without_root() {
        return;
    }
    let v = run("fin-close");
    assert_eq!(
        observed(&v, "teardown segments in order"),
        "client FIN, server ACK, server FIN, client ACK"
    );
    assert_eq!(observed(&v, "client after its FIN"), "FIN-WAIT-2");
    assert_eq!(observed(&v, "server after receiving the FIN"), "CLOSE-WAIT");
    assert_eq!(observed(&v, "client (closed first)"), "TIME-WAIT");
    assert_eq!(observed(&v, "server (closed second"), "gone");
    assert_eq!(observed(&v, "TIME-WAIT sockets in the namespace"), "1");
    // The wire lines: FIN, ACK, FIN, ACK.
    let wire: Vec<&str> = notes(step(&v, 4), "wire: ");
    assert_eq!(wire.len(), 4, "{wire:?}");
    let flags: Vec<&str> = wire
        .iter()
        .map(|l| l.split('[').nth(1).unwrap().split(']').next().unwrap())
        .collect();
    assert_eq!(flags, ["F.", ".", "F.", "."]);
    let tw = &step(&v, 3)["sockets"][0];
    assert_eq!(tw["state"], "time-wait");
    assert_eq!(tw["peer"]["port"], 5010);
}

#[test]
fn abort() {
    if root::skip_without_root() {
        return;
    }
    let v = run("abort");
    assert_eq!(observed(&v, "recv() on the server"), "error ECONNRESET");
    assert_eq!(observed(&v, "teardown segments on the wire"), "client RST");
    assert_eq!(observed(&v, "FIN segments on the wire"), "0");
    assert_eq!(observed(&v, "TIME-WAIT sockets in the namespace"), "0");
    assert_eq!(
        observed(&v, "the client's socket right after close()"),
        "gone"
    );
    assert_eq!(step(&v, 2)["counters"]["TcpExt.TCPAbortOnData"], 1);
    let wire = notes(step(&v, 4), "wire: ");
    assert_eq!(wire.len(), 1, "{wire:?}");
    assert!(wire[0].contains("> 127.0.0.1:5020 [R.]"), "{wire:?}");
}

#[test]
fn nagle() {
    if root::skip_without_root() {
        return;
    }
    let v = run("nagle");
    assert_eq!(step(&v, 1)["sysctls"]["net.ipv4.tcp_autocorking"], "0");
    assert_eq!(observed(&v, "new data segments on the wire"), "2");
    assert_eq!(
        observed(&v, "their sizes: the first write alone"),
        "[10, 70]"
    );
    assert_eq!(
        observed(&v, "the second segment left only after the ACK"),
        "yes"
    );
    assert_eq!(
        observed(&v, "new data segments on the wire (one per write)"),
        "8"
    );
    assert_eq!(
        observed(&v, "their sizes"),
        "[10, 70]",
        "first 'their sizes' is the Nagle step"
    );
    let nodelay = &step(&v, 3)["checks"];
    assert_eq!(nodelay[1]["observed"], "[10, 10, 10, 10, 10, 10, 10, 10]");
    assert_eq!(nodelay[2]["observed"], "no");
}

#[test]
fn zero_window() {
    if root::skip_without_root() {
        return;
    }
    let v = run("zero-window");
    assert_eq!(observed(&v, "client's timer (socket table)"), "persist");
    let written: u64 = notes(step(&v, 2), "")[0]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(written > 0);
    assert_eq!(
        observed(&v, "client Send-Q + server Recv-Q = bytes written"),
        written.to_string()
    );
    assert!(
        observed(&v, "client Send-Q (written")
            .parse::<u64>()
            .unwrap()
            > 0
    );
    assert!(
        observed(&v, "server segments advertising window 0")
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    let probes: u64 = observed(&v, "zero-window probes on the wire")
        .parse()
        .unwrap();
    assert!(probes >= 3, "{probes}");
    assert_eq!(observed(&v, "bytes the server read"), written.to_string());
    assert_eq!(observed(&v, "client Send-Q afterwards"), "0");
    // The socket table's view: the client's persist timer and its tcp_info.
    let c = &step(&v, 3)["sockets"][0];
    assert_eq!(c["timer"]["kind"], "persist");
    assert!(c["tcp_info"]["backoff"].as_u64().unwrap() >= 3);
}

#[test]
fn mss() {
    if root::skip_without_root() {
        return;
    }
    let v = run("mss");
    assert_eq!(observed(&v, "MSS option in the client's SYN (1500"), "1460");
    assert_eq!(observed(&v, "MSS option in the server's SYN-ACK"), "1460");
    assert_eq!(
        observed(&v, "tcp_info snd_mss (payload per segment"),
        "1448"
    );
    assert_eq!(observed(&v, "TSO on the device afterwards"), "off");
    assert_eq!(
        observed(&v, "data segments on the wire (at most snd_mss each)"),
        "[1448, 1448, 104]"
    );
    assert_eq!(
        observed(&v, "data segments on the wire: the seed's"),
        "[1460, 1460, 80]"
    );
    assert_eq!(
        observed(
            &v,
            "their sequence numbers, relative to the first (the seed's"
        ),
        "[0, 1460, 2920]"
    );
    assert_eq!(step(&v, 4)["sysctls"]["net.ipv4.tcp_timestamps"], "0");
    // Every wire line is between the two documentation addresses.
    for n in 2..=4 {
        for l in notes(step(&v, n), "wire: ") {
            assert!(
                l.contains("192.0.2.1:") && l.contains("192.0.2.2:5050"),
                "{l}"
            );
        }
    }
}

/// The narration (no --json) streams steps and ends with the verdict.
#[test]
fn narration_of_refused() {
    if root::skip_without_root() {
        return;
    }
    require_root();
    let (code, out, err) = sockscope(&["lab", "run", "refused"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("sockscope lab run refused: "), "{out}");
    assert!(
        out.contains("\n2. socket + connect(127.0.0.1:5999)\n"),
        "{out}"
    );
    assert!(
        out.contains("\n   ok   connect() result: ECONNREFUSED"),
        "{out}"
    );
    assert!(out.contains("\n   counter Tcp.OutRsts: +1\n"), "{out}");
    assert!(
        out.trim_end()
            .ends_with("did what the scenario expects: 6 checks passed."),
        "{out}"
    );
}
