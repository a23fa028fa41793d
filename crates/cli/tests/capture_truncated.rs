//! Truthful lengths: a TCP segment whose IPv4 (or IPv6) header counts more
//! bytes than the frame had on the wire is analysed with the bytes that
//! were there and flagged (`truncated-ip - N bytes missing`, as tcpdump
//! says; tshark agrees on every TCP field), while a frame merely cut by the
//! snap length keeps the IP header's length. The capture is built byte by
//! byte here.

#[path = "common/root.rs"]
mod root;

#[path = "fixtures/capture/helpers.rs"]
mod helpers;
use helpers::*;
use sockscope_capture::pcap::{write_pcap_header, write_pcap_record};
use std::process::Command;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;

/// An Ethernet frame with IPv4 + TCP; `claim` bytes more in the IP total
/// length than the payload holds.
fn seg4(c2s: bool, seq: u32, ack: u32, flags: u8, len: usize, claim: usize) -> Vec<u8> {
    let (src, dst, sport, dport) = if c2s {
        ([10, 0, 0, 1], [10, 0, 0, 2], 40000u16, 80u16)
    } else {
        ([10, 0, 0, 2], [10, 0, 0, 1], 80, 40000)
    };
    let total = (20 + 20 + len + claim) as u16;
    let mut v = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
    v.extend_from_slice(&[0x45, 0]);
    v.extend_from_slice(&total.to_be_bytes());
    v.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(&tcp_header(sport, dport, seq, ack, flags));
    v.extend(std::iter::repeat_n(b'd', len));
    v
}

fn tcp_header(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ack.to_be_bytes());
    v.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    v
}

/// IPv6 + TCP on Ethernet, the payload length claiming `claim` more.
fn seg6(seq: u32, ack: u32, flags: u8, len: usize, claim: usize) -> Vec<u8> {
    let mut v = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
    v.extend_from_slice(&[0x60, 0, 0, 0]);
    v.extend_from_slice(&((20 + len + claim) as u16).to_be_bytes());
    v.extend_from_slice(&[6, 64]);
    let mut a = [0u8; 16];
    a[0] = 0xfd;
    a[15] = 1;
    v.extend_from_slice(&a);
    a[15] = 2;
    v.extend_from_slice(&a);
    v.extend_from_slice(&tcp_header(40001, 80, seq, ack, flags));
    v.extend(std::iter::repeat_n(b'6', len));
    v
}

#[test]
fn short_ip_packets_use_what_was_there_and_are_flagged() {
    if root::skip_without_root() {
        return;
    }
    require_root();
    let d = scratch("truncated");
    let f = d.join("t.pcap");
    // (frame, bytes on the wire if more than captured)
    let frames: Vec<(Vec<u8>, Option<u32>)> = vec![
        (seg4(true, 1000, 0, SYN, 0, 0), None),
        (seg4(false, 5000, 1001, SYN | ACK, 0, 0), None),
        (seg4(true, 1001, 5001, ACK, 0, 0), None),
        // 100 bytes sent, the IP header says 108: 8 bytes missing.
        (seg4(true, 1001, 5001, PSH | ACK, 100, 8), None),
        (seg4(false, 5001, 1101, ACK, 0, 0), None),
        (seg4(true, 1101, 5001, PSH | ACK, 50, 0), None),
        (seg4(false, 5001, 1151, ACK, 0, 0), None),
        (seg6(7000, 0, SYN, 0, 0), None),
        (seg6(7001, 1, PSH | ACK, 30, 12), None),
    ];
    // A frame of 300 payload bytes captured with a 94-byte snap length:
    // the IP length stands (the bytes were on the wire).
    let snapped = seg4(true, 1151, 5001, PSH | ACK, 300, 0);
    let mut v = Vec::new();
    write_pcap_header(&mut v, 1, 65535, false).unwrap();
    let mut ts = 1_000_000_000u64;
    for (fr, _) in &frames {
        write_pcap_record(&mut v, ts, false, fr.len() as u32, fr).unwrap();
        ts += 1_000_000;
    }
    write_pcap_record(&mut v, ts, false, snapped.len() as u32, &snapped[..94]).unwrap();
    std::fs::write(&f, v).unwrap();

    let objs = jsonl(&f, &[]);
    let pk: Vec<_> = objs.iter().filter(|o| o["type"] == "packet").collect();
    assert_eq!(pk.len(), 10);
    assert_eq!(pk[3]["tcp"]["payload_bytes"], 100);
    assert_eq!(pk[3]["tcp"]["next_seq"], 101);
    assert_eq!(pk[3]["malformed"], "truncated-ip - 8 bytes missing");
    // The server's ACK of 100 bytes is an ordinary ACK, not one of unseen data.
    assert_eq!(
        pk[4]["tcp"]["analysis"].as_array().unwrap().len(),
        0,
        "{}",
        pk[4]
    );
    assert_eq!(pk[5]["tcp"]["seq"], 101);
    assert!(pk[5]["malformed"].is_null());
    assert_eq!(pk[8]["tcp"]["payload_bytes"], 30);
    assert_eq!(pk[8]["malformed"], "truncated-ip6 - 12 bytes missing");
    assert_eq!(pk[9]["tcp"]["payload_bytes"], 300);
    assert!(pk[9]["malformed"].is_null(), "{}", pk[9]);
    // The summary counts the flagged packets.
    let summary = objs.iter().find(|o| o["type"] == "summary").unwrap();
    assert_eq!(summary["malformed"], 2);

    // Text: the marker on the line.
    let o = sockscope(&["capture", "-r", f.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[3].contains("truncated-ip - 8 bytes missing"),
        "{}",
        lines[3]
    );
    assert!(lines[3].contains("length 100"), "{}", lines[3]);
    // tcpdump says the same of that packet.
    let t = Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(&f)
        .output()
        .unwrap();
    let td = String::from_utf8_lossy(&t.stdout);
    assert!(
        td.lines()
            .nth(3)
            .unwrap()
            .contains("truncated-ip - 8 bytes missing!"),
        "{td}"
    );

    // tshark agrees on every TCP field (lengths, sequence numbers, analysis).
    let (n, _) = compare_with_tshark(&f);
    assert_eq!(n, 10);
    let _ = std::fs::remove_dir_all(&d);
}
