//! Small input and output cases of `sockscope capture -r`, on captures
//! built byte by byte: `-r -` reads standard input; a pcap link-type field
//! with FCS bits set is still Ethernet; 802.3/LLC frames print as LLC; an
//! unknown link type prints as such; `ack` is null in JSON without the ACK
//! flag, `ack_rtt_ns` null where nothing was acknowledged.

#[path = "fixtures/capture/helpers.rs"]
mod helpers;
use helpers::*;
use sockscope_capture::pcap::{write_pcap_header, write_pcap_record};
use std::io::Write;
use std::process::{Command, Stdio};

fn tcp_frame(c2s: bool, seq: u32, ack: u32, flags: u8) -> Vec<u8> {
    let (src, dst, sport, dport) = if c2s {
        ([10, 0, 0, 1], [10, 0, 0, 2], 40000u16, 80u16)
    } else {
        ([10, 0, 0, 2], [10, 0, 0, 1], 80, 40000)
    };
    let mut v = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
    v.extend_from_slice(&[0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ack.to_be_bytes());
    v.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    v
}

fn pcap(link: u32, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut v = Vec::new();
    write_pcap_header(&mut v, link, 65535, false).unwrap();
    for (i, f) in frames.iter().enumerate() {
        write_pcap_record(&mut v, (i as u64 + 1) * 1_000_000, false, f.len() as u32, f).unwrap();
    }
    v
}

fn handshake() -> Vec<Vec<u8>> {
    vec![
        tcp_frame(true, 1000, 777, 0x02),
        tcp_frame(false, 5000, 1001, 0x12),
        tcp_frame(true, 1001, 5001, 0x10),
    ]
}

fn run(args: &[&str], stdin: Option<&[u8]>) -> (Option<i32>, String, String) {
    let mut c = Command::new(BIN)
        .args(args)
        .env("TZ", "UTC")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut i = c.stdin.take().unwrap();
    if let Some(b) = stdin {
        i.write_all(b).unwrap();
    }
    drop(i);
    let o = c.wait_with_output().unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn dash_reads_standard_input() {
    let d = scratch("formats-stdin");
    let f = d.join("h.pcap");
    let bytes = pcap(1, &handshake());
    std::fs::write(&f, &bytes).unwrap();
    let (code, from_file, _) = run(&["capture", "-r", f.to_str().unwrap()], None);
    assert_eq!(code, Some(0));
    let (code, from_stdin, err) = run(&["capture", "-r", "-", "tcp"], Some(&bytes));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(from_stdin, from_file);
    assert_eq!(from_stdin.lines().count(), 3);
    // Not a capture on stdin: a usage error naming standard input.
    let (code, _, err) = run(&["capture", "-r", "-"], Some(b"hello"));
    assert_eq!(code, Some(2));
    assert!(err.contains("standard input"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn link_types_llc_and_json_nulls() {
    let d = scratch("formats");
    // Link type 1 with the FCS-length flag (bit 26) set.
    let f = d.join("fcs.pcap");
    std::fs::write(&f, pcap(0x0400_0001, &handshake())).unwrap();
    let (code, out, err) = run(&["capture", "-r", f.to_str().unwrap()], None);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        !out.contains("malformed") && !err.contains("not decoded"),
        "{out}{err}"
    );
    assert!(
        out.lines()
            .next()
            .unwrap()
            .contains("IP 10.0.0.1.40000 > 10.0.0.2.80: Flags [S]"),
        "{out}"
    );

    // 802.3 with LLC (STP), then an unknown link type.
    let mut stp = vec![1, 0x80, 0xc2, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0, 38];
    stp.extend_from_slice(&[0x42, 0x42, 0x03]);
    stp.extend_from_slice(&[0; 35]);
    let f = d.join("llc.pcap");
    std::fs::write(&f, pcap(1, &[stp])).unwrap();
    let (_, out, _) = run(&["capture", "-r", f.to_str().unwrap()], None);
    assert!(
        out.contains("802.3 LLC, dsap 0x42, ssap 0x42, ctrl 0x03, length 38"),
        "{out}"
    );
    assert!(!out.contains("ethertype"), "{out}");
    let f = d.join("unknown.pcap");
    std::fs::write(&f, pcap(147, &[vec![1, 2, 3, 4]])).unwrap();
    let (_, out, _) = run(&["capture", "-r", f.to_str().unwrap()], None);
    assert!(out.contains("link type 147, length 4"), "{out}");
    assert!(!out.contains("ethertype"), "{out}");

    // JSON: no ACK flag, no ack; nothing acknowledged, no RTT.
    let f = d.join("h.pcap");
    std::fs::write(&f, pcap(1, &handshake())).unwrap();
    let objs = jsonl(&f, &[]);
    let t: Vec<_> = objs
        .iter()
        .filter(|o| o["type"] == "packet")
        .map(|o| &o["tcp"])
        .collect();
    assert!(t[0]["ack"].is_null(), "{}", t[0]);
    assert_eq!(t[0]["ack_abs"], 777);
    assert!(t[0]["ack_rtt_ns"].is_null(), "{}", t[0]);
    assert_eq!(t[1]["ack"], 1);
    assert_eq!(t[1]["ack_rtt_ns"], 1_000_000);
    assert_eq!(t[2]["ack"], 1);
    assert_eq!(
        (&t[2]["acks_frame"], &t[2]["ack_rtt_ns"]),
        (&2.into(), &1_000_000.into())
    );
    let _ = std::fs::remove_dir_all(&d);
}
