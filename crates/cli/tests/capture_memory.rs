//! Bounded analysis state (`--max-tracked`): when more conversations are
//! open at once than the limit, the least recently used are dropped from
//! the analysis, counted in the summary and reported on stderr — never
//! silently; packet lines need no conversation summaries at all.

#[path = "fixtures/capture/helpers.rs"]
mod helpers;
use helpers::*;
use serde_json::Value;
use sockscope_capture::pcap::{write_pcap_header, write_pcap_record};

/// IPv4 + TCP SYN from 10.0.0.1:`sport` to 10.0.0.2:80 (raw IP link).
fn syn(sport: u16, seq: u32) -> Vec<u8> {
    let mut v = vec![
        0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&80u16.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x02, 0x10, 0, 0, 0, 0, 0]);
    v
}

/// `n` SYNs of `n` conversations, then the first one's SYN again.
fn write_syns(path: &std::path::Path, n: u16) {
    let mut b = Vec::new();
    write_pcap_header(&mut b, 101, 65535, false).unwrap();
    let mut ports: Vec<u16> = (0..n).map(|i| 20000 + i).collect();
    ports.push(20000);
    for (i, p) in ports.iter().enumerate() {
        let d = syn(*p, 1000);
        write_pcap_record(&mut b, 1_000_000_000 + i as u64 * 1000, false, 40, &d).unwrap();
    }
    std::fs::write(path, b).unwrap();
}

fn summary_and_streams(out: &std::process::Output) -> (Value, Vec<u64>) {
    let objs: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let streams = objs
        .iter()
        .filter(|o| o["type"] == "packet")
        .map(|o| o["tcp"]["stream"].as_u64().expect("stream"))
        .collect();
    (objs.last().expect("summary").clone(), streams)
}

#[test]
fn conversations_beyond_max_tracked_are_dropped_counted_and_reported() {
    let d = scratch("max-tracked");
    let f = d.join("syns.pcap");
    write_syns(&f, 200);
    let fs = f.to_str().unwrap();

    // Room for all: the last SYN retransmits stream 0, nothing dropped.
    let o = sockscope(&["capture", "-r", fs, "--jsonl"]);
    assert_eq!(o.status.code(), Some(0));
    let (s, streams) = summary_and_streams(&o);
    assert_eq!(s["tcp_conversations"], 200);
    assert_eq!(s["conversations_evicted"], 0);
    assert_eq!(s["max_tracked"], 262144);
    assert_eq!(streams.last(), Some(&0));
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // Room for 50: 150 dropped, and stream 0's SYN comes back as a new
    // stream (dropping one more), which stderr explains.
    let o = sockscope(&["capture", "-r", fs, "--jsonl", "--max-tracked", "50"]);
    assert_eq!(o.status.code(), Some(0));
    let (s, streams) = summary_and_streams(&o);
    assert_eq!(s["tcp_conversations"], 201);
    assert_eq!(s["conversations_evicted"], 151);
    assert_eq!(s["max_tracked"], 50);
    assert_eq!(streams.last(), Some(&200));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("151 conversations were dropped") && err.contains("--max-tracked 50"),
        "{err}"
    );

    // The conversation table still lists every conversation.
    let o = sockscope(&["capture", "-r", fs, "--conv", "--max-tracked", "50"]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert_eq!(table.lines().count(), 1 + 201, "{table}");

    // Line mode prints the same streams without keeping summaries.
    let o = sockscope(&["capture", "-r", fs, "--max-tracked", "50"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 201);

    let o = sockscope(&["capture", "-r", fs, "--max-tracked", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--max-tracked must be at least 1"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let _ = std::fs::remove_dir_all(&d);
}
