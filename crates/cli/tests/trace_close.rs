//! A graceful close on both sides, traced: the client closes first
//! (ESTABLISHED -> FIN-WAIT-1 -> FIN-WAIT-2, then the kernel swaps in a
//! timewait socket: TIME-WAIT, inferred from the FIN-WAIT-2 -> CLOSE the
//! tracepoint reports and confirmed in the namespace's socket table); the
//! server reads the data and the EOF and closes (CLOSE-WAIT -> LAST-ACK ->
//! CLOSE). Each side's events carry its own fd, and the destroy events
//! carry tcplife's totals (bytes acked and received).

#[path = "common/root.rs"]
mod root;

#[path = "fixtures/trace/harness.rs"]
mod harness;

use harness::*;
use serde_json::{Value, json};
use std::time::Duration;

fn states(evs: &[&Value]) -> Vec<String> {
    evs.iter()
        .filter(|v| matches!(v["kind"].as_str(), Some("state" | "time_wait")))
        .map(|v| match v["kind"].as_str() {
            Some("time_wait") => format!("{}->time-wait", v["from_state"].as_str().unwrap_or("")),
            _ => short(v),
        })
        .collect()
}

#[test]
fn graceful_close_both_sides() {
    if root::skip_without_root() {
        return;
    }
    graceful_close(5020, &[]);
}

/// The same through the programs' other way of reading sockets found in
/// the fd table (probe reads, for kernels without bpf_rdonly_cast).
#[test]
fn graceful_close_both_sides_with_probe_reads() {
    if root::skip_without_root() {
        return;
    }
    graceful_close(5021, &[("SOCKSCOPE_TRACE_PROBE_READ", "1")]);
}

fn graceful_close(port: u16, env: &[(&str, &str)]) {
    let (r, out) = traced_env("graceful", port, &[], Duration::from_millis(1200), env);
    let pid = r["pid"].clone();
    let cport = r["client_port"].as_u64().expect("client port");
    assert_eq!((&r["got"], &r["eof"]), (&json!("ping"), &json!(0)));
    let evs = out.events();
    let client = evs
        .iter()
        .find(|v| is_state(v, "closed", "syn-sent"))
        .unwrap_or_else(|| panic!("no client SYN-SENT:\n{}", out.dump()))["conn"]
        .as_u64()
        .unwrap_or(0);
    let server = evs
        .iter()
        .find(|v| is_state(v, "listening", "syn-recv") && port_of(v, "peer") == Some(cport))
        .unwrap_or_else(|| panic!("no server SYN-RECV:\n{}", out.dump()))["conn"]
        .as_u64()
        .unwrap_or(0);
    let cev = out.of_conn(client);
    let sev = out.of_conn(server);
    assert_eq!(
        states(&cev),
        vec![
            "closed->syn-sent",
            "syn-sent->established",
            "established->fin-wait-1",
            "fin-wait-1->fin-wait-2",
            "fin-wait-2->closed",
            "fin-wait-2->time-wait"
        ],
        "client:\n{}",
        out.dump()
    );
    assert_eq!(
        states(&sev),
        vec![
            "listening->syn-recv",
            "syn-recv->established",
            "established->close-wait",
            "close-wait->last-ack",
            "last-ack->closed"
        ],
        "server:\n{}",
        out.dump()
    );
    // Every step attributed to the right process and fd.
    let cfd = r["client_fd"].clone();
    let sfd = r["conn_fd"].clone();
    for v in &cev {
        assert_eq!((&v["pid"], &v["fd"]), (&pid, &cfd), "client event {v}");
    }
    for v in sev.iter().skip(2) {
        assert_eq!(
            (&v["pid"], &v["fd"]),
            (&pid, &sfd),
            "server event after accept {v}"
        );
    }
    // TIME-WAIT confirmed by the socket table.
    let check = cev
        .iter()
        .find(|v| v["kind"] == "time_wait_check")
        .unwrap_or_else(|| panic!("no TIME-WAIT check:\n{}", out.dump()));
    assert_eq!(
        (&check["found"], &check["table_state"]),
        (&json!(true), &json!("time-wait"))
    );
    // The server saw the data and the EOF.
    let reads: Vec<&Value> = sev
        .iter()
        .filter(|v| v["kind"] == "recv")
        .copied()
        .collect();
    assert_eq!(
        reads.iter().map(|v| v["bytes"].clone()).collect::<Vec<_>>(),
        vec![json!(4), json!(0)]
    );
    // tcplife's totals at destruction. The kernel counts sequence space:
    // the SYN and the FIN are one byte each.
    let d = cev
        .iter()
        .find(|v| v["kind"] == "destroy")
        .expect("client destroy");
    assert_eq!(
        (&d["bytes_acked"], &d["bytes_received"], &d["retransmits"]),
        (&json!(4 + 2), &json!(1), &json!(0)),
        "client: 4 bytes + SYN + FIN acked, the server's FIN received"
    );
    assert!(d["duration_us"].as_u64().is_some(), "{d}");
    let d = sev
        .iter()
        .find(|v| v["kind"] == "destroy")
        .expect("server destroy");
    assert_eq!(
        (&d["bytes_acked"], &d["bytes_received"]),
        (&json!(1), &json!(4 + 1)),
        "server: its FIN acked; 4 bytes + the client's FIN received: {d}"
    );
    // The summaries say how each side ended.
    let conns = out.connections();
    let end = |id: u64| {
        conns
            .iter()
            .find(|c| c["conn"] == id)
            .map(|c| (c["role"].clone(), c["end"].clone()))
    };
    assert_eq!(end(client), Some((json!("client"), json!("time_wait"))));
    assert_eq!(end(server), Some((json!("server"), json!("closed"))));
    let c = conns
        .iter()
        .find(|c| c["conn"] == client)
        .expect("client row");
    assert_eq!(
        c["states"],
        json!([
            "closed",
            "syn-sent",
            "established",
            "fin-wait-1",
            "fin-wait-2",
            "time-wait",
            "closed"
        ])
    );
}

/// With only destroy events asked for, user space sees no state changes
/// to time sockets by nor syscalls to attribute them by, so the kernel
/// keeps births and owners: the summaries still carry each connection's
/// lifetime and process, as bcc's tcplife shows them.
#[test]
fn lifetimes_and_owners_without_state_events() {
    if root::skip_without_root() {
        return;
    }
    let (r, out) = traced(
        "graceful",
        5022,
        &["--events", "destroy"],
        Duration::from_millis(600),
    );
    let evs = out.events();
    assert!(
        evs.iter().all(|v| v["kind"] == "destroy"),
        "only destroy events:\n{}",
        out.dump()
    );
    // The client's and the server's sockets (the listener may be freed
    // too when the scene ends within the trace; the kernel has cleared a
    // closed socket's local port by then, so they are told apart by
    // their owner's fd and lifetime).
    let timed: Vec<&&Value> = evs
        .iter()
        .filter(|d| {
            d["pid"] == r["pid"]
                && d["fd"].as_i64().is_some()
                && d["duration_us"].as_u64().is_some_and(|us| us < 10_000_000)
        })
        .collect();
    assert!(
        timed.len() >= 2,
        "client and server destroys with owner and lifetime:\n{}",
        out.dump()
    );
    let fds: std::collections::BTreeSet<i64> =
        timed.iter().filter_map(|d| d["fd"].as_i64()).collect();
    assert!(
        fds.contains(&r["client_fd"].as_i64().unwrap_or(-1))
            && fds.contains(&r["conn_fd"].as_i64().unwrap_or(-1)),
        "the client's and the accepted socket's fds {:?}:\n{}",
        fds,
        out.dump()
    );
}
