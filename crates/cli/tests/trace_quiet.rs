//! `sockscope trace -q`: no event shown, only the closing summary. The
//! events are then counted by the connection tracker instead of being
//! handed over one by one (a cheaper path): the summary must say what a
//! trace that prints every event says, on the same scenario.

#[path = "common/root.rs"]
mod root;

#[path = "fixtures/trace/harness.rs"]
mod harness;

use harness::*;
use std::process::Command;
use std::time::Duration;

/// The summary of `sockscope trace ARGS` over the scenario `graceful`
/// (a connection closed by FIN from the client, TIME-WAIT inferred and
/// checked): (exit code, its "Connections seen" line, its "Events" line
/// up to the kernel's part, the table's rows without conn number, port,
/// pid and duration).
fn summary(args: &[&str]) -> (Option<i32>, String, String, Vec<String>) {
    let mut scene = Scene::start("graceful", 5095);
    let pid = scene.pid.to_string();
    let mut cmd = Command::new(BIN);
    cmd.arg("trace").args(args).args(["--netns-pid", &pid]);
    let t = Trace::spawn(cmd);
    let r = scene.go();
    assert_eq!(r["eof"], 0, "{r}");
    std::thread::sleep(Duration::from_millis(400));
    let (status, text, err) = t.stop_text();
    drop(scene);
    let line = |start: &str| {
        text.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no {start:?} line:\n{text}\nstderr:\n{err}"))
            .to_string()
    };
    let events = line("Events: ");
    // "Events: N read in T s (R/s) = ...": drop the time and rate.
    let (read, rest) = events.split_once(" read in ").expect("read in");
    let rest = rest.split_once(") = ").expect(") =").1;
    let rest = rest.split_once("; kernel:").expect("; kernel:").0;
    // The summary's table (the timeline, when shown, has a header too).
    let table = text.rfind("CONN ").expect("table header");
    let header = text[table..].lines().next().unwrap_or("");
    let end_col = header.find(" END ").expect("END column") + 1;
    let rows = text[table..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let who = f[4].split('[').next().unwrap_or("");
            // role, process name, then the end and the states
            format!("{} {who} {}", f[1], l.get(end_col..).unwrap_or(""))
        })
        .collect();
    (
        status.code(),
        line("Connections seen: "),
        format!("{read} read = {rest}"),
        rows,
    )
}

#[test]
fn quiet_summary_says_what_the_timeline_says() {
    if root::skip_without_root() {
        return;
    }
    let quiet = summary(&["-q"]);
    let full = summary(&[]);
    assert_eq!(quiet.0, Some(0), "events were shown: exit 0");
    assert!(
        quiet.1.starts_with("Connections seen: 3 ("),
        "listener, client, server: {}",
        quiet.1
    );
    assert!(
        quiet.2.contains(" shown + 0 left out") && quiet.2.contains("inferred (TIME-WAIT)"),
        "{}",
        quiet.2
    );
    assert_eq!(quiet.3.len(), 3, "{:?}", quiet.3);
    assert_eq!(quiet, full, "-q and the timeline disagree");
}

/// Trace the graceful scene with a benchmark switch set in sockscope's
/// environment, and check what every such run must give: the trace says
/// at start that the switch is set (`said`), shows no event, and the
/// closing counts add up with every record read dropped unread (read =
/// written = dropped, none undecodable), at least one per state change,
/// syscall and data event of the scene.
fn every_record_read_and_dropped(switch: &str, port: u16, said: &str) {
    let mut scene = Scene::start("graceful", port);
    let pid = scene.pid.to_string();
    let t = Trace::start_env(&["--netns-pid", &pid], &[(switch, "1")]);
    let r = scene.go();
    assert_eq!(r["eof"], 0, "{r}");
    std::thread::sleep(Duration::from_millis(400));
    let out = t.stop();
    drop(scene);
    assert!(
        out.stderr.contains(said),
        "the trace says at start that {switch} is set:\n{}",
        out.stderr
    );
    assert!(out.events().is_empty(), "{:?}", out.events());
    let s = out.stats();
    let n = |k: &str| {
        s[k].as_u64()
            .unwrap_or_else(|| panic!("stats.{k} missing: {s}"))
    };
    assert!(n("events_read") >= 10, "{s}");
    assert_eq!(n("events_discarded"), n("events_read"), "{s}");
    assert_eq!((n("events_shown"), n("events_filtered")), (0, 0), "{s}");
    assert_eq!(n("kernel_written"), n("events_read"), "{s}");
    assert_eq!(n("bad_records"), 0, "{s}");
}

/// The benchmark switch SOCKSCOPE_TRACE_DISCARD (bench/trace.sh's "reader
/// discarding" row): the reader takes every record the kernel wrote and
/// drops it unread.
#[test]
fn a_discarding_reader_reads_every_record_and_shows_none() {
    if root::skip_without_root() {
        return;
    }
    every_record_read_and_dropped(
        "SOCKSCOPE_TRACE_DISCARD",
        5096,
        "SOCKSCOPE_TRACE_DISCARD is set",
    );
}

/// The benchmark switch SOCKSCOPE_TRACE_EMIT_ONLY (bench/trace.sh's "one
/// empty record per event" rows): every run of a program that writes
/// events writes one empty record and reads nothing, so no filter applies
/// (the namespace given here included), and the reader drops them all.
#[test]
fn empty_records_are_written_for_every_run_and_all_read() {
    if root::skip_without_root() {
        return;
    }
    every_record_read_and_dropped(
        "SOCKSCOPE_TRACE_EMIT_ONLY",
        5097,
        "SOCKSCOPE_TRACE_EMIT_ONLY is set",
    );
}
