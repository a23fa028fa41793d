//! Deterministic differential tests: hand-built TCP conversations with
//! exact timestamps that exercise every Wireshark analysis flag (lost
//! segment, ACKed unseen segment, duplicate ACKs, fast and spurious
//! retransmission, out-of-order, zero window and its probes, window full,
//! window update, keep-alive and its ACK, reused ports, a retransmitted
//! SYN), written as pcap (µs little-endian, ns big-endian), pcapng with two
//! interfaces, and with Ethernet, raw IP, Linux cooked v1 and v2 link
//! layers. sockscope and tshark must agree on every field of every packet.

#[path = "common/root.rs"]
mod root;

#[path = "fixtures/capture/helpers.rs"]
mod helpers;
use helpers::*;
use sockscope_capture::pcap::{PcapngWriter, write_pcap_header, write_pcap_record};

const SYN: u16 = 0x02;
const ACK: u16 = 0x10;
const PSH: u16 = 0x08;
const FIN: u16 = 0x01;
const RST: u16 = 0x04;

struct Pkt {
    ts_us: u64,
    /// IPv4 + TCP, no link header.
    ip: Vec<u8>,
}

#[allow(clippy::too_many_arguments)]
fn tcp(
    ts_us: u64,
    c2s: bool,
    cport: u16,
    seq: u32,
    ack: u32,
    flags: u16,
    win: u16,
    len: usize,
    opts: &[u8],
) -> Pkt {
    let (src, dst, sport, dport) = if c2s {
        ([10, 0, 0, 1], [10, 0, 0, 2], cport, 80u16)
    } else {
        ([10, 0, 0, 2], [10, 0, 0, 1], 80u16, cport)
    };
    let mut o = opts.to_vec();
    while !o.len().is_multiple_of(4) {
        o.push(1);
    }
    let thl = 20 + o.len();
    let total = 20 + thl + len;
    let mut v = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0x40,
        0,
        64,
        6,
        0,
        0,
    ];
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ack.to_be_bytes());
    v.push(((thl / 4) << 4) as u8);
    v.push(flags as u8);
    v.extend_from_slice(&win.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0]);
    v.extend_from_slice(&o);
    v.extend(std::iter::repeat_n(b'd', len));
    Pkt { ts_us, ip: v }
}

const SYN_OPTS: [u8; 12] = [2, 4, 5, 0xb4, 4, 2, 1, 1, 1, 3, 3, 2]; // mss 1460, sackOK, wscale 2

fn packets() -> Vec<Pkt> {
    let c = 40000;
    let sack_1301_1401 = [1, 1, 5, 10, 0, 0, 0x05, 0x15, 0, 0, 0x05, 0x79];
    let mut v = vec![
        tcp(0, true, c, 1000, 0, SYN, 64240, 0, &SYN_OPTS),
        tcp(100, false, c, 5000, 1001, SYN | ACK, 65160, 0, &SYN_OPTS),
        tcp(200, true, c, 1001, 5001, ACK, 500, 0, &[]),
        tcp(300, true, c, 1001, 5001, PSH | ACK, 500, 100, &[]),
        tcp(310, true, c, 1101, 5001, ACK, 500, 100, &[]),
        tcp(320, true, c, 1301, 5001, ACK, 500, 100, &[]), // 1201 never captured
        tcp(400, false, c, 5001, 1201, ACK, 500, 0, &[]),
        tcp(410, false, c, 5001, 1201, ACK, 500, 0, &sack_1301_1401),
        tcp(420, false, c, 5001, 1201, ACK, 500, 0, &sack_1301_1401),
        tcp(430, true, c, 1201, 5001, ACK, 500, 100, &[]), // fast retransmission
        tcp(500, false, c, 5001, 1401, ACK, 500, 0, &[]),
        tcp(900, true, c, 1101, 5001, ACK, 500, 100, &[]), // spurious
        tcp(1000, true, c, 1401, 5001, ACK, 500, 100, &[]),
        tcp(1010, true, c, 1601, 5001, ACK, 500, 100, &[]),
        tcp(1020, true, c, 1501, 5001, ACK, 500, 100, &[]), // out of order
        tcp(1100, false, c, 5001, 1701, ACK, 0, 0, &[]),    // zero window
        tcp(1200, true, c, 1701, 5001, ACK, 500, 1, &[]),   // zero window probe
        tcp(1300, false, c, 5001, 1701, ACK, 0, 0, &[]),    // probe ack
        tcp(1400, false, c, 5001, 1701, ACK, 100, 0, &[]),  // window update
        tcp(1500, true, c, 1701, 5001, PSH | ACK, 500, 400, &[]), // window full
        tcp(1600, false, c, 5001, 2101, ACK, 100, 0, &[]),
        tcp(2000, true, c, 2100, 5001, ACK, 500, 0, &[]), // keep-alive
        tcp(2010, false, c, 5001, 2101, ACK, 100, 0, &[]), // keep-alive ack
        tcp(3000, true, c, 2101, 5001, FIN | ACK, 500, 0, &[]),
        tcp(3100, false, c, 5001, 2102, FIN | ACK, 100, 0, &[]),
        tcp(3200, true, c, 2102, 5002, ACK, 500, 0, &[]),
        // Same 4-tuple, new ISN: a new stream.
        tcp(5000, true, c, 90000, 0, SYN, 64240, 0, &SYN_OPTS),
        tcp(5100, false, c, 0, 90001, RST | ACK, 0, 0, &[]),
        // Captured mid-stream: no handshake, an ACK for unseen data.
        tcp(6000, false, 40001, 7000, 3000, PSH | ACK, 300, 50, &[]),
        tcp(6100, true, 40001, 3000, 7050, ACK, 300, 0, &[]),
        tcp(6200, true, 40001, 3000, 9000, ACK, 300, 0, &[]),
        // A SYN retransmitted a second later.
        tcp(7000, true, 40002, 4242, 0, SYN, 64240, 0, &SYN_OPTS),
        tcp(1_007_000, true, 40002, 4242, 0, SYN, 64240, 0, &SYN_OPTS),
        tcp(
            1_007_100,
            false,
            40002,
            8888,
            4243,
            SYN | ACK,
            65160,
            0,
            &[2, 4, 5, 0xb4],
        ),
        tcp(1_007_200, true, 40002, 4243, 8889, ACK, 64240, 0, &[]),
        tcp(
            1_007_300,
            true,
            40002,
            4243,
            8889,
            PSH | ACK,
            64240,
            10,
            &[],
        ),
    ];
    let base = 1_700_000_000_000_000u64;
    for p in &mut v {
        p.ts_us += base;
    }
    v
}

fn eth(ip: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend_from_slice(ip);
    f
}

fn sll(ip: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
    f.extend_from_slice(ip);
    f
}

fn sll2(ip: &[u8]) -> Vec<u8> {
    let mut f = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0,
    ];
    f.extend_from_slice(ip);
    f
}

fn pcap(path: &std::path::Path, link: u32, nanos: bool, frame: fn(&[u8]) -> Vec<u8>) {
    let mut out = Vec::new();
    write_pcap_header(&mut out, link, 65535, nanos).unwrap();
    for p in packets() {
        let f = frame(&p.ip);
        write_pcap_record(&mut out, p.ts_us * 1000, nanos, f.len() as u32, &f).unwrap();
    }
    std::fs::write(path, out).unwrap();
}

/// A big-endian nanosecond pcap of raw IP packets, written by hand.
fn pcap_be_ns_raw(path: &std::path::Path) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_3c4du32.to_be_bytes());
    out.extend_from_slice(&2u16.to_be_bytes());
    out.extend_from_slice(&4u16.to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_be_bytes());
    out.extend_from_slice(&101u32.to_be_bytes());
    for p in packets() {
        let ns = p.ts_us * 1000 + 7; // sub-microsecond digits survive
        out.extend_from_slice(&((ns / 1_000_000_000) as u32).to_be_bytes());
        out.extend_from_slice(&((ns % 1_000_000_000) as u32).to_be_bytes());
        out.extend_from_slice(&(p.ip.len() as u32).to_be_bytes());
        out.extend_from_slice(&(p.ip.len() as u32).to_be_bytes());
        out.extend_from_slice(&p.ip);
    }
    std::fs::write(path, out).unwrap();
}

/// pcapng with two interfaces: Ethernet for even packets, cooked v2 for odd.
fn pcapng_two_ifaces(path: &std::path::Path) {
    let mut w = PcapngWriter::new(Vec::new(), "test").unwrap();
    let e = w.interface(1, 65535, Some("eth0")).unwrap();
    let s = w.interface(276, 65535, Some("any")).unwrap();
    for (i, p) in packets().iter().enumerate() {
        let (iface, f) = if i % 2 == 0 {
            (e, eth(&p.ip))
        } else {
            (s, sll2(&p.ip))
        };
        let comment = format!("packet {i}");
        w.packet(iface, p.ts_us * 1000, f.len() as u32, &f, Some(&comment))
            .unwrap();
    }
    std::fs::write(path, w.into_inner()).unwrap();
}

const EXPECTED_FLAGS: [&str; 14] = [
    "lost_segment",
    "ack_lost_segment",
    "duplicate_ack",
    "fast_retransmission",
    "spurious_retransmission",
    "retransmission",
    "out_of_order",
    "zero_window",
    "zero_window_probe",
    "zero_window_probe_ack",
    "window_update",
    "window_full",
    "keep_alive",
    "reused_ports",
];

#[test]
fn every_analysis_flag_agrees_with_tshark_in_every_file_format() {
    if root::skip_without_root() {
        return;
    }
    require_root();
    let d = scratch("synthetic");
    let files = [
        ("eth_us.pcap", 0),
        ("raw_be_ns.pcap", 1),
        ("sll.pcap", 2),
        ("two_ifaces.pcapng", 3),
    ];
    for (name, kind) in files {
        let f = d.join(name);
        match kind {
            0 => pcap(&f, 1, false, eth),
            1 => pcap_be_ns_raw(&f),
            2 => pcap(&f, 113, false, sll),
            _ => pcapng_two_ifaces(&f),
        }
        let (n, seen) = compare_with_tshark(&f);
        assert_eq!(n, packets().len(), "{name}");
        for want in EXPECTED_FLAGS {
            assert!(
                seen.contains(want),
                "{name}: tshark did not flag {want}; saw {seen:?}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn lines_show_wireshark_labels_and_relative_numbers() {
    let d = scratch("synthetic-lines");
    let f = d.join("eth.pcap");
    pcap(&f, 1, false, eth);
    let o = sockscope(&["capture", "-r", f.to_str().unwrap(), "--number"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), packets().len());
    assert_eq!(
        lines[0],
        "1 22:13:20.000000 IP 10.0.0.1.40000 > 10.0.0.2.80: Flags [S], seq 0, win 64240, \
         options [mss 1460,sackOK,nop,nop,nop,wscale 2], length 0"
    );
    assert_eq!(
        lines[5],
        "6 22:13:20.000320 IP 10.0.0.1.40000 > 10.0.0.2.80: Flags [.], seq 301:401, ack 1, \
         win 500, length 100 [TCP Previous segment not captured]"
    );
    assert_eq!(
        lines[7],
        "8 22:13:20.000410 IP 10.0.0.2.80 > 10.0.0.1.40000: Flags [.], ack 201, win 500, \
         options [nop,nop,sack 1 {301:401}], length 0 [TCP Dup ACK 7#1]"
    );
    assert!(
        lines[9].ends_with("[TCP Fast Retransmission]"),
        "{}",
        lines[9]
    );
    assert!(
        lines[11].ends_with("[TCP Spurious Retransmission]"),
        "{}",
        lines[11]
    );
    assert!(lines[14].ends_with("[TCP Out-Of-Order]"), "{}", lines[14]);
    assert!(
        lines[26].ends_with("[TCP Port numbers reused]"),
        "{}",
        lines[26]
    );
    // -S prints the raw numbers.
    let o = sockscope(&["capture", "-r", f.to_str().unwrap(), "-S", "-c", "2"]);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.lines()
            .nth(1)
            .unwrap()
            .contains("seq 5000, ack 1001, win 65160"),
        "{out}"
    );

    // The conversation table.
    let o = sockscope(&["capture", "-r", f.to_str().unwrap(), "--conv"]);
    let table = String::from_utf8(o.stdout).unwrap();
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0][..4], ["STREAM", "PROTO", "CLIENT", "SERVER"]);
    assert_eq!(rows.len(), 5, "{table}");
    assert_eq!(
        rows[1][..8],
        [
            "0",
            "tcp",
            "10.0.0.1:40000",
            "10.0.0.2:80",
            "15",
            "2.0KiB",
            "11",
            "630B"
        ]
    );
    assert_eq!(rows[1][9], "200.0µs", "handshake RTT: {table}");
    assert_eq!(
        rows[1][10], "2",
        "a fast and a spurious retransmission: {table}"
    );
    assert_eq!(rows[1][11], "FIN");
    assert_eq!(rows[2][11], "RST");
    assert_eq!(
        rows[3][..4],
        ["2", "tcp", "10.0.0.1:40001", "10.0.0.2:80"],
        "no handshake: the higher port is the client"
    );
    assert_eq!(rows[3][11], "open");
    assert_eq!(rows[4][10], "1", "the retransmitted SYN: {table}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn json_is_one_document_with_packets_conversations_and_summary() {
    let d = scratch("synthetic-json");
    let f = d.join("eth.pcap");
    pcap(&f, 1, false, eth);
    let o = sockscope(&[
        "capture",
        "-r",
        f.to_str().unwrap(),
        "--json",
        "tcp",
        "port",
        "80",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    assert_eq!(v["packets"].as_array().unwrap().len(), packets().len());
    assert_eq!(v["conversations"].as_array().unwrap().len(), 4);
    let c0 = &v["conversations"][0];
    assert_eq!(c0["handshake_rtt_ns"], 200_000);
    assert_eq!(c0["end"], "fin");
    assert_eq!(c0["closed_by"], "client");
    assert_eq!(c0["client_to_server"]["isn"], 1000);
    assert_eq!(c0["client_to_server"]["mss"], 1460);
    assert_eq!(c0["server_to_client"]["wscale"], 2);
    assert_eq!(c0["client_to_server"]["fast_retransmissions"], 1);
    let p8 = &v["packets"][7]["tcp"];
    assert_eq!(p8["analysis"], serde_json::json!(["duplicate_ack"]));
    assert_eq!(
        (p8["dup_ack_num"].as_u64(), p8["dup_ack_frame"].as_u64()),
        (Some(1), Some(7))
    );
    assert_eq!(
        p8["options"][2],
        serde_json::json!({"kind": "sack", "blocks": [[301, 401]]})
    );
    assert_eq!(v["summary"]["packets_shown"], packets().len());
    assert_eq!(v["summary"]["tcp_conversations"], 4);
    // A filter that matches nothing: exit 1, still a valid document.
    let o = sockscope(&["capture", "-r", f.to_str().unwrap(), "--json", "udp"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    assert_eq!(v["packets"], serde_json::json!([]));
    let _ = std::fs::remove_dir_all(&d);
}
