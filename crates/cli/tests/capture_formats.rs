//! Small input and output cases of `sockscope capture -r`, on captures
//! built byte by byte: `-r -` reads standard input; a pcap link-type field
//! with FCS bits set is still Ethernet; 802.3/LLC frames print as LLC; an
//! unknown link type prints as such; `ack` is null in JSON without the ACK
//! flag, `ack_rtt_ns` null where nothing was acknowledged or the time
//! between the frames is zero (negative when it runs backwards, as tshark);
//! pcapng Custom Blocks take frame numbers as in tshark.

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

/// One pcapng block (little-endian): type, length, body padded, length.
fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let mut b = body.to_vec();
    while !b.len().is_multiple_of(4) {
        b.push(0);
    }
    let len = (12 + b.len()) as u32;
    let mut v = kind.to_le_bytes().to_vec();
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(&b);
    v.extend_from_slice(&len.to_le_bytes());
    v
}

/// An Enhanced Packet Block on interface 0 at `ts_us`.
fn epb(ts_us: u64, d: &[u8]) -> Vec<u8> {
    let mut b = 0u32.to_le_bytes().to_vec();
    b.extend_from_slice(&((ts_us >> 32) as u32).to_le_bytes());
    b.extend_from_slice(&(ts_us as u32).to_le_bytes());
    b.extend_from_slice(&(d.len() as u32).to_le_bytes());
    b.extend_from_slice(&(d.len() as u32).to_le_bytes());
    b.extend_from_slice(d);
    block(6, &b)
}

/// Ethernet / IPv4 / TCP with `n` payload bytes.
fn data_frame(c2s: bool, seq: u32, ack: u32, flags: u8, n: usize) -> Vec<u8> {
    let mut v = tcp_frame(c2s, seq, ack, flags);
    let total = (40 + n) as u16;
    v[16..18].copy_from_slice(&total.to_be_bytes());
    v.extend(std::iter::repeat_n(b'x', n));
    v
}

#[test]
fn custom_blocks_keep_tshark_frame_numbers_and_rtt_nulls_match() {
    let d = scratch("custom-blocks");
    let f = d.join("custom.pcapng");
    let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    let mut v = block(0x0a0d_0d0a, &shb);
    let mut idb = 1u16.to_le_bytes().to_vec();
    idb.extend_from_slice(&[0, 0]);
    idb.extend_from_slice(&65535u32.to_le_bytes());
    v.extend(block(1, &idb));
    // Custom Blocks (copiable and not), PEN 32473, between the packets.
    let mut cb = 32473u32.to_le_bytes().to_vec();
    cb.extend_from_slice(b"note");
    let custom = block(0x0000_0bad, &cb);
    let custom_nocopy = block(0x4000_0bad, &cb);
    let [syn, synack, ack] = <[Vec<u8>; 3]>::try_from(handshake()).expect("three frames");
    v.extend(epb(1_000, &syn));
    v.extend(&custom);
    v.extend(&custom_nocopy);
    v.extend(epb(2_000, &synack));
    v.extend(epb(3_000, &ack));
    v.extend(&custom);
    // Data acknowledged in the same microsecond (no RTT in tshark), then
    // data acknowledged "before" it was sent (a negative RTT).
    v.extend(epb(4_000, &data_frame(true, 1001, 5001, 0x18, 10)));
    v.extend(epb(4_000, &data_frame(false, 5001, 1011, 0x10, 0)));
    v.extend(epb(5_000, &data_frame(true, 1011, 5001, 0x18, 10)));
    v.extend(epb(4_500, &data_frame(false, 5001, 1021, 0x10, 0)));
    std::fs::write(&f, &v).unwrap();
    let (n, _) = compare_with_tshark(&f);
    assert_eq!(n, 7);
    let objs = jsonl(&f, &[]);
    let frames: Vec<u64> = objs
        .iter()
        .filter(|o| o["type"] == "packet")
        .map(|o| o["frame"].as_u64().expect("frame"))
        .collect();
    assert_eq!(frames, vec![1, 4, 5, 7, 8, 9, 10]);
    let rtt: Vec<&serde_json::Value> = objs
        .iter()
        .filter(|o| o["type"] == "packet")
        .map(|o| &o["tcp"]["ack_rtt_ns"])
        .collect();
    let acks: Vec<&serde_json::Value> = objs
        .iter()
        .filter(|o| o["type"] == "packet")
        .map(|o| &o["tcp"]["acks_frame"])
        .collect();
    assert_eq!((acks[4], acks[6]), (&7.into(), &9.into()));
    assert!(rtt[4].is_null(), "zero RTT: {}", rtt[4]);
    assert_eq!(rtt[6], -500_000);
    let _ = std::fs::remove_dir_all(&d);
}
