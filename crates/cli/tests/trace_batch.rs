//! `sockscope trace` gathers events per CPU into batches in the kernel
//! (bpf/common.h, output()) and writes a batch at a time to the ring
//! buffer. A batch is written when full, when it has held events for a
//! while and more come, and at each timer tick and idle entry of its CPU,
//! so an event must not wait in one: the last events of a quiet scenario
//! reach the output while the trace still runs. And batching changes
//! nothing that is shown: the same events, in time order, as a trace
//! writing every event alone (SOCKSCOPE_TRACE_BATCH=0).

#[path = "common/root.rs"]
mod root;

#[path = "fixtures/trace/harness.rs"]
mod harness;

use harness::*;
use serde_json::Value;
use std::time::{Duration, Instant};

/// What identifies an event of the scenario whatever the run: kind,
/// states, syscall, which end of the connection (listener port or not).
fn key(v: &Value, port: u64) -> String {
    format!(
        "{} {} {} {} {}",
        v["kind"].as_str().unwrap_or(""),
        v["old_state"].as_str().unwrap_or(""),
        v["new_state"].as_str().unwrap_or(""),
        v["syscall"].as_str().unwrap_or(""),
        if port_of(v, "local") == Some(port) {
            "server"
        } else {
            "client"
        }
    )
}

fn in_time_order(out: &TraceOut) {
    let times: Vec<u64> = out
        .events()
        .iter()
        .filter_map(|v| v["t_ns"].as_u64())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "events out of time order:\n{}",
        out.dump()
    );
}

#[test]
fn the_last_events_are_shown_while_the_trace_runs() {
    if root::skip_without_root() {
        return;
    }
    let port = 5098;
    let mut scene = Scene::start("graceful", port);
    let pid = scene.pid.to_string();
    let trace = Trace::start_env(
        &["--netns-pid", pid.as_str()],
        &[("SOCKSCOPE_TRACE_BATCH", "1")],
    );
    let r = scene.go();
    assert_eq!(r["eof"], 0, "{r}");
    // The scenario's last events: the accepted connection's LAST-ACK ->
    // CLOSED and the listener's LISTEN -> CLOSED (then it sleeps). Nothing
    // else happens in its namespace, so only a tick or an idle CPU can
    // write the batch that holds them; the reader shows events 30 ms
    // after their time. Allow 3 s for a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut seen = Vec::new();
    let (mut last_ack, mut listener) = (false, false);
    while !(last_ack && listener) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(v) = trace.next_json(left) else {
            break;
        };
        last_ack |= is_state(&v, "last-ack", "closed");
        listener |= is_state(&v, "listening", "closed");
        seen.push(short(&v));
    }
    drop(scene);
    let out = trace.stop();
    assert!(
        last_ack && listener,
        "the scenario's last state changes were not shown within 3 s while tracing \
         (an event left waiting in a per-CPU batch?); shown while running:\n{}\n\
         shown after SIGINT:\n{}\nstderr:\n{}",
        seen.join("\n"),
        out.dump(),
        out.stderr
    );
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
}

#[test]
fn batched_and_unbatched_traces_show_the_same_events() {
    if root::skip_without_root() {
        return;
    }
    let port = 5099;
    let run = |batch: &str| {
        let (r, out) = traced_env(
            "graceful",
            port,
            &[],
            Duration::from_millis(300),
            &[("SOCKSCOPE_TRACE_BATCH", batch)],
        );
        assert_eq!(r["eof"], 0, "{r}");
        in_time_order(&out);
        let stats = out.stats().clone();
        assert_eq!(stats["kernel_lost"], 0, "{}", out.stderr);
        assert_eq!(
            stats["kernel_written"], stats["events_read"],
            "every event written was read (also those still in a batch at the stop): {}",
            out.stderr
        );
        let mut keys: Vec<String> = out
            .events()
            .iter()
            .filter(|v| v["kind"] != "time_wait_check")
            .map(|v| key(v, port.into()))
            .collect();
        keys.sort();
        (keys, out)
    };
    let (batched, b_out) = run("1");
    let (alone, a_out) = run("0");
    assert!(
        batched.len() >= 20,
        "a graceful connection is ~28 events:\n{}",
        b_out.dump()
    );
    assert_eq!(
        batched,
        alone,
        "batched:\n{}\nalone:\n{}",
        b_out.dump(),
        a_out.dump()
    );
}
