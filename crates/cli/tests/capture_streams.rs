//! Stream numbers of the TCP and UDP headers Wireshark dissects without
//! analysing them, against tshark, on a capture built byte by byte: headers
//! quoted in ICMP and ICMPv6 errors (whole, 8, 12 and 16 bytes of TCP; UDP),
//! TCP headers cut short by the IP length or the snap length or with a bad
//! header length, and packet headers sampled by sFlow version 5 (flow and
//! expanded flow samples of Ethernet, IPv4 and IPv6 headers, beside a
//! counter sample), and an IPv4 loose source route (keyed on its final
//! destination). Each takes the stream of its conversation, or a new
//! index that the conversation's first packet then carries, so the later
//! streams keep tshark's numbers. Every frame's `tcp.stream` and
//! `udp.stream` (all occurrences, in order) must be tshark's.

#[path = "fixtures/capture/helpers.rs"]
mod helpers;
use helpers::*;
use serde_json::Value;
use sockscope_capture::pcap::{write_pcap_header, write_pcap_record};
use std::path::Path;
use std::process::Command;

const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [10, 0, 0, 2];
const C: [u8; 4] = [10, 0, 0, 3];
const D: [u8; 4] = [10, 0, 0, 4];
const E: [u8; 4] = [192, 168, 7, 1];
const F: [u8; 4] = [192, 168, 7, 2];

fn v6(last: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[0] = 0xfd;
    a[15] = last;
    a
}

fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    ipv4_len(src, dst, proto, payload, 20 + payload.len())
}

/// An IPv4 header whose total length says `total`, then `payload`.
fn ipv4_len(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8], total: usize) -> Vec<u8> {
    let mut v = vec![0x45, 0];
    v.extend_from_slice(&(total as u16).to_be_bytes());
    v.extend_from_slice(&[0, 1, 0, 0, 64, proto, 0, 0]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(payload);
    v
}

/// A TCP header of `hlen` bytes (its length field says so) and `data`.
fn tcp(sport: u16, dport: u16, seq: u32, flags: u8, hlen: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0, (hlen / 4) << 4, flags, 0x20, 0, 0, 0, 0, 0]);
    v.resize(v.len().max(usize::from(hlen)), 0);
    v.extend_from_slice(data);
    v
}

/// An ICMP (or ICMPv6) error quoting `quoted`.
fn icmp_error(kind: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
    let mut v = vec![kind, code, 0, 0, 0, 0, 0, 0];
    v.extend_from_slice(quoted);
    v
}

fn syn(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, isn: u32) -> Vec<u8> {
    ether(
        0x0800,
        &ipv4(src, dst, 6, &tcp(sport, dport, isn, 0x02, 20, &[])),
    )
}

/// The start of an IPv4 packet carrying a TCP segment, cut to `n` bytes of
/// TCP (as an ICMP error quotes it).
fn quote_tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, n: usize) -> Vec<u8> {
    let whole = ipv4(src, dst, 6, &tcp(sport, dport, 5, 0x18, 20, b"0123456789"));
    whole[..(20 + n).min(whole.len())].to_vec()
}

fn be32(v: &mut Vec<u8>, n: u32) {
    v.extend_from_slice(&n.to_be_bytes());
}

/// An sFlow raw packet header record (format 1): `proto` 1 Ethernet, 11
/// IPv4, 12 IPv6; the header padded to 4 bytes.
fn raw_header(proto: u32, frame_len: u32, header: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    be32(&mut body, proto);
    be32(&mut body, frame_len);
    be32(&mut body, 0);
    be32(&mut body, header.len() as u32);
    body.extend_from_slice(header);
    body.resize(body.len().div_ceil(4) * 4, 0);
    let mut v = Vec::new();
    be32(&mut v, 1);
    be32(&mut v, body.len() as u32);
    v.extend_from_slice(&body);
    v
}

/// A flow sample (format 1, or 3 when `expanded`) of `records`.
fn flow_sample(expanded: bool, records: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::new();
    let fields = if expanded { 10 } else { 7 };
    for i in 0..fields {
        be32(&mut body, i + 1);
    }
    be32(&mut body, records.len() as u32);
    for r in records {
        body.extend_from_slice(r);
    }
    let mut v = Vec::new();
    be32(&mut v, if expanded { 3 } else { 1 });
    be32(&mut v, body.len() as u32);
    v.extend_from_slice(&body);
    v
}

/// An sFlow version 5 datagram from an IPv4 agent.
fn sflow(samples: &[Vec<u8>]) -> Vec<u8> {
    let mut v = Vec::new();
    be32(&mut v, 5);
    be32(&mut v, 1);
    v.extend_from_slice(&[172, 16, 0, 1]);
    for n in [0, 77, 123_456] {
        be32(&mut v, n);
    }
    be32(&mut v, samples.len() as u32);
    for s in samples {
        v.extend_from_slice(s);
    }
    v
}

/// (frame as captured, length on the wire)
fn frames() -> Vec<(Vec<u8>, usize)> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut cut: Vec<(usize, usize)> = Vec::new();
    // A connection, then errors quoting one not seen yet (whole, 8, 12
    // and 16 bytes of TCP), and a UDP flow.
    out.push(syn(A, B, 1000, 80, 111));
    for (port, n) in [(2000, 40), (2001, 8), (2002, 12), (2003, 16)] {
        let q = quote_tcp(C, D, port, 443, n);
        out.push(ether(0x0800, &ipv4(B, C, 1, &icmp_error(3, 3, &q))));
    }
    let q = ipv4(C, D, 17, &udp(5353, 53, b"abcd"));
    out.push(ether(0x0800, &ipv4(D, C, 1, &icmp_error(3, 3, &q))));
    out.push(ether(0x0800, &ipv4(C, D, 17, &udp(5353, 53, b"abcd"))));
    // The quoted connection opens (another ISN than the one quoted).
    out.push(syn(C, D, 2000, 443, 999));
    // ICMPv6 packet too big quoting IPv6 TCP.
    let q6 = ipv6(v6(1), v6(2), 6, &tcp(3000, 80, 7, 0x18, 20, b"payload"));
    out.push(ether(
        0x86dd,
        &ipv6(v6(9), v6(1), 58, &icmp_error(2, 0, &q6)),
    ));
    // TCP headers cut short by the IP length (12 and 16 bytes), with a
    // header length of 8, and longer than the segment.
    for (port, n) in [(4000u16, 12usize), (4001, 16)] {
        let t = tcp(port, 80, 1, 0x18, 20, &[]);
        out.push(ether(0x0800, &ipv4(C, D, 6, &t[..n])));
    }
    out.push(ether(
        0x0800,
        &ipv4(C, D, 6, &tcp(4002, 80, 1, 0x18, 8, &[])),
    ));
    let long = tcp(4003, 80, 1, 0x18, 60, &[]);
    out.push(ether(0x0800, &ipv4_len(C, D, 6, &long[..32], 52)));
    // Cut by the snap length: 12 and 19 bytes of TCP captured.
    for (port, n) in [(4004u16, 12usize), (4005, 19)] {
        let f = ether(
            0x0800,
            &ipv4(C, D, 6, &tcp(port, 80, 1, 0x18, 20, &[b'z'; 100])),
        );
        cut.push((out.len(), f.len()));
        out.push(f[..14 + 20 + n].to_vec());
    }
    // sFlow: a flow sample with an Ethernet header of the first
    // connection and an IPv4 header of a new one; an expanded sample with
    // IPv6 UDP; a counter sample; a header cut before TCP.
    let eth_tcp = ether(
        0x0800,
        &ipv4(A, B, 6, &tcp(1000, 80, 112, 0x10, 20, &[b'd'; 40])),
    );
    let ip_tcp = ipv4(E, F, 6, &tcp(7000, 22, 5, 0x18, 32, &[b'e'; 80]));
    let ip6_udp = ipv6(v6(3), v6(4), 17, &udp(6000, 53, b"q"));
    let eth_short = ether(0x0800, &ipv4(E, F, 6, &tcp(7001, 22, 5, 0x18, 20, &[])));
    let mut counters = Vec::new();
    be32(&mut counters, 2);
    be32(&mut counters, 8);
    counters.extend_from_slice(&[0; 8]);
    let datagram = sflow(&[
        flow_sample(
            false,
            &[
                raw_header(1, 1514, &eth_tcp[..eth_tcp.len().min(66)]),
                raw_header(11, 1500, &ip_tcp[..64]),
            ],
        ),
        counters,
        flow_sample(true, &[raw_header(12, 62, &ip6_udp)]),
        flow_sample(false, &[raw_header(1, 60, &eth_short[..30])]),
    ]);
    out.push(ether(0x0800, &ipv4(E, D, 17, &udp(40000, 6343, &datagram))));
    // Later connections: the sampled one, a new one, and an error quoting
    // the first.
    out.push(syn(E, F, 7000, 22, 1));
    out.push(syn(A, B, 1001, 80, 222));
    let q = quote_tcp(A, B, 1000, 80, 20);
    out.push(ether(0x0800, &ipv4(B, A, 1, &icmp_error(3, 4, &q))));
    // A loose source route through 1.2.3.4 to D, sent to C: Wireshark
    // keys the conversation on D; then the same ports to C itself.
    let t = tcp(41000, 80, 9, 0x02, 20, &[]);
    let mut lsrr = vec![0x48, 0];
    lsrr.extend_from_slice(&((32 + t.len()) as u16).to_be_bytes());
    lsrr.extend_from_slice(&[0, 1, 0, 0, 64, 6, 0, 0]);
    lsrr.extend_from_slice(&A);
    lsrr.extend_from_slice(&C);
    lsrr.extend_from_slice(&[131, 11, 4, 1, 2, 3, 4]);
    lsrr.extend_from_slice(&D);
    lsrr.push(0);
    lsrr.extend_from_slice(&t);
    out.push(ether(0x0800, &lsrr));
    out.push(syn(A, C, 41000, 80, 9));
    out.push(ether(0x0800, &lsrr));
    out.into_iter()
        .enumerate()
        .map(|(i, f)| {
            let wire = cut
                .iter()
                .find(|(at, _)| *at == i)
                .map_or(f.len(), |(_, w)| *w);
            (f, wire)
        })
        .collect()
}

fn write(path: &Path) -> usize {
    let fr = frames();
    let mut v = Vec::new();
    write_pcap_header(&mut v, 1, 65535, false).unwrap();
    for (i, (data, wire)) in fr.iter().enumerate() {
        write_pcap_record(
            &mut v,
            (i as u64 + 1) * 1_000_000,
            false,
            *wire as u32,
            data,
        )
        .unwrap();
    }
    std::fs::write(path, v).unwrap();
    fr.len()
}

/// Per frame: tshark's tcp.stream and udp.stream, every occurrence.
fn tshark_streams(path: &Path) -> Vec<(String, String)> {
    let o = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args([
            "-T",
            "fields",
            "-e",
            "tcp.stream",
            "-e",
            "udp.stream",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=,",
            "-E",
            "separator=|",
        ])
        .output()
        .expect("tshark (scripts/test installs it)");
    assert!(
        o.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let (t, u) = l.split_once('|').unwrap_or((l, ""));
            (t.to_string(), u.to_string())
        })
        .collect()
}

/// The same from sockscope's JSON: the packet's own TCP or UDP header, a
/// TCP header cut short, the header an ICMP error quotes, the headers an
/// sFlow datagram samples.
fn our_streams(o: &Value) -> (String, String) {
    let (mut t, mut u) = (Vec::new(), Vec::new());
    let s = |v: &Value| v["stream"].as_u64().map(|n| n.to_string());
    if let Some(x) = s(&o["tcp"]) {
        t.push(x);
    }
    if let Some(x) = s(&o["udp"]) {
        u.push(x);
    }
    if let Some(x) = s(&o["partial_tcp"]) {
        t.push(x);
    }
    let q = &o["icmp"]["quoted"];
    let mut headers: Vec<&Value> = vec![q];
    if let Some(list) = o["sampled"].as_array() {
        headers.extend(list);
    }
    for h in headers {
        if let Some(x) = s(h) {
            match h["ip_proto"].as_u64() {
                Some(6) => t.push(x),
                Some(17) => u.push(x),
                p => panic!("a stream on ip_proto {p:?}"),
            }
        }
    }
    (t.join(","), u.join(","))
}

#[test]
fn quoted_sampled_and_cut_short_headers_take_tsharks_stream_numbers() {
    let d = scratch("streams");
    let f = d.join("streams.pcap");
    let n = write(&f);
    let theirs = tshark_streams(&f);
    assert_eq!(theirs.len(), n, "tshark read every frame");
    let objs: Vec<Value> = jsonl(&f, &[])
        .into_iter()
        .filter(|o| o["type"] == "packet")
        .collect();
    assert_eq!(objs.len(), n);
    let mut numbered_only = 0;
    for (i, (o, want)) in objs.iter().zip(&theirs).enumerate() {
        let got = our_streams(o);
        assert_eq!(&got, want, "frame {}: {o}", i + 1);
        if o["tcp"].is_null() && !got.0.is_empty() {
            numbered_only += 1;
        }
    }
    // The capture exercises each kind: quoted whole and at 16 bytes,
    // ICMPv6, three cut short, one cut by the snap length, the sFlow frame
    // and the last quote.
    assert!(numbered_only >= 9, "{numbered_only} frames");
    // The sampled headers are in the JSON with their endpoints.
    let sampled = objs
        .iter()
        .find_map(|o| o["sampled"].as_array())
        .expect("an sFlow frame");
    assert_eq!(sampled.len(), 3, "{sampled:?}");
    assert_eq!(sampled[1]["src"], "192.168.7.1");
    assert_eq!(sampled[1]["dport"], 22);
    // Conversations are those with packets of their own: 6 TCP (the
    // cut-short headers and quotes start none), 2 UDP with the sFlow one.
    let summary = jsonl(&f, &[])
        .into_iter()
        .find(|o| o["type"] == "summary")
        .expect("summary");
    assert_eq!(summary["tcp_conversations"], 6, "{summary}");
    assert_eq!(summary["udp_flows"], 2, "{summary}");
    if std::env::var("KEEP").is_err() {
        let _ = std::fs::remove_dir_all(&d);
    }
}
