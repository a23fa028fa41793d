//! `capture -r F EXPR` prints, for each packet it selects, the line the
//! unfiltered `capture -r F` prints for it: the same relative sequence
//! numbers and analysis flags, although the analysis of conversations no
//! frame of which can pass the filter is skipped (filter::scope).
//!
//! The capture, built byte by byte, is made so that a wrong skip shows: a
//! connection whose handshake is plain, whose data comes through a VXLAN
//! tunnel (outer addresses unlike the inner ones) and whose ACKs are
//! VLAN-tagged; retransmissions and duplicate ACKs; a segment cut into
//! IPv4 fragments; IPv6 and UDP beside them. Each expression's output
//! must equal the unfiltered lines of the frames it selected.

#[path = "fixtures/capture/helpers.rs"]
mod helpers;
use helpers::*;
use sockscope_capture::pcap::{write_pcap_header, write_pcap_record};
use std::collections::BTreeMap;

fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, id: u16, frag: u16, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut v = vec![0x45, 0];
    v.extend_from_slice(&total.to_be_bytes());
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&frag.to_be_bytes());
    v.extend_from_slice(&[64, proto, 0, 0]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(payload);
    v
}

fn ipv6(src: u8, dst: u8, nh: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x60, 0, 0, 0];
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(&[nh, 64]);
    for x in [src, dst] {
        let mut a = [0u8; 16];
        a[0] = 0xfd;
        a[15] = x;
        v.extend_from_slice(&a);
    }
    v.extend_from_slice(payload);
    v
}

fn ether(tags: &[u16], et: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    for &t in tags {
        v.extend_from_slice(&[0x81, 0]);
        v.extend_from_slice(&t.to_be_bytes());
    }
    v.extend_from_slice(&et.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn tcp(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, len: usize) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.extend_from_slice(&[0x50, flags, 0x10, 0, 0, 0, 0, 0]);
    t.extend(std::iter::repeat_n(b'd', len));
    t
}

/// A TCP segment between 192.168.0.1:cport and 192.168.0.2:80.
fn seg(cport: u16, c2s: bool, seq: u32, ack: u32, flags: u8, len: usize) -> Vec<u8> {
    let (s, d, sp, dp) = if c2s {
        ([192, 168, 0, 1], [192, 168, 0, 2], cport, 80)
    } else {
        ([192, 168, 0, 2], [192, 168, 0, 1], 80, cport)
    };
    ipv4(s, d, 6, 1, 0x4000, &tcp(sp, dp, seq, ack, flags, len))
}

fn vxlan(ip: &[u8]) -> Vec<u8> {
    let mut inner = vec![2, 0, 0, 0, 0, 4, 2, 0, 0, 0, 0, 3, 8, 0];
    inner.extend_from_slice(ip);
    let mut hdr = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
    hdr.extend_from_slice(&inner);
    ether(
        &[],
        0x0800,
        &ipv4(
            [172, 16, 0, 1],
            [172, 16, 0, 2],
            17,
            9,
            0,
            &udp(50000, 4789, &hdr),
        ),
    )
}

fn frames() -> Vec<Vec<u8>> {
    const S: u8 = 0x02;
    const SA: u8 = 0x12;
    const A: u8 = 0x10;
    const PA: u8 = 0x18;
    let plain = |ip: Vec<u8>| ether(&[], 0x0800, &ip);
    let tagged = |ip: Vec<u8>| ether(&[10], 0x0800, &ip);
    // Port 80, client port 40000: handshake plain, data through VXLAN,
    // ACKs VLAN-tagged, a retransmission plain.
    let mut f = vec![
        plain(seg(40000, true, 1000, 0, S, 0)),
        plain(seg(40000, false, 5000, 1001, SA, 0)),
        tagged(seg(40000, true, 1001, 5001, A, 0)),
        vxlan(&seg(40000, true, 1001, 5001, PA, 100)),
    ];
    // Port 22 in between: its own handshake, data and a duplicate ACK.
    let ssh = |c2s: bool, seq: u32, ack: u32, fl: u8, len: usize| {
        let (s, d, sp, dp) = if c2s {
            ([10, 0, 0, 1], [10, 0, 0, 2], 50022u16, 22u16)
        } else {
            ([10, 0, 0, 2], [10, 0, 0, 1], 22, 50022)
        };
        ether(
            &[],
            0x0800,
            &ipv4(s, d, 6, 2, 0x4000, &tcp(sp, dp, seq, ack, fl, len)),
        )
    };
    f.push(ssh(true, 70, 0, S, 0));
    f.push(ssh(false, 900, 71, SA, 0));
    f.push(ssh(true, 71, 901, PA, 30));
    f.push(vxlan(&seg(40000, true, 1101, 5001, PA, 100)));
    f.push(tagged(seg(40000, false, 5001, 1101, A, 0)));
    f.push(ssh(false, 901, 101, PA, 20));
    f.push(ssh(true, 101, 921, A, 0));
    f.push(ssh(true, 101, 921, A, 0));
    f.push(plain(seg(40000, true, 1101, 5001, PA, 100)));
    f.push(tagged(seg(40000, false, 5001, 1201, A, 0)));
    f.push(tagged(seg(40000, false, 5001, 1201, A, 0)));
    // Port 443: a segment in two IPv4 fragments.
    let (c, s) = ([10, 0, 0, 5], [10, 0, 0, 6]);
    f.push(plain(ipv4(
        c,
        s,
        6,
        3,
        0x4000,
        &tcp(40443, 443, 10, 0, S, 0),
    )));
    f.push(plain(ipv4(
        s,
        c,
        6,
        4,
        0x4000,
        &tcp(443, 40443, 20, 11, SA, 0),
    )));
    let big = tcp(40443, 443, 11, 21, PA, 60);
    f.push(plain(ipv4(c, s, 6, 5, 0x2000, &big[..40])));
    f.push(plain(ipv4(c, s, 6, 5, 5, &big[40..])));
    f.push(plain(ipv4(
        s,
        c,
        6,
        6,
        0x4000,
        &tcp(443, 40443, 21, 71, A, 0),
    )));
    f.push(plain(ipv4(
        s,
        c,
        6,
        6,
        0x4000,
        &tcp(443, 40443, 21, 71, A, 0),
    )));
    // IPv6 and UDP.
    f.push(ether(
        &[],
        0x86dd,
        &ipv6(1, 2, 6, &tcp(40600, 80, 7, 0, S, 0)),
    ));
    f.push(ether(
        &[],
        0x86dd,
        &ipv6(2, 1, 6, &tcp(80, 40600, 9, 8, SA, 0)),
    ));
    f.push(ether(
        &[],
        0x86dd,
        &ipv6(1, 2, 6, &tcp(40600, 80, 8, 10, PA, 5)),
    ));
    f.push(plain(ipv4(
        [10, 0, 0, 1],
        [10, 0, 0, 53],
        17,
        7,
        0,
        &udp(5300, 53, b"q"),
    )));
    f.push(plain(ipv4(
        [10, 0, 0, 53],
        [10, 0, 0, 1],
        17,
        8,
        0,
        &udp(53, 5300, b"a"),
    )));
    f.push(ether(
        &[],
        0x86dd,
        &ipv6(1, 2, 6, &tcp(40600, 80, 8, 10, PA, 5)),
    ));
    f
}

/// `capture -r F --number EXPR`: the lines of each frame, by number.
fn lines(file: &std::path::Path, expr: &[&str]) -> BTreeMap<u64, Vec<String>> {
    let mut args = vec!["capture", "-r", file.to_str().unwrap(), "--number"];
    args.extend_from_slice(expr);
    let o = sockscope(&args);
    assert!(
        o.status.code().is_some_and(|c| c <= 1),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut out: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut cur = None;
    for l in String::from_utf8_lossy(&o.stdout).lines() {
        if let Some(n) = l.split(' ').next().and_then(|w| w.parse().ok()) {
            cur = Some(n);
        }
        let n = cur.unwrap_or_else(|| panic!("{args:?}: a line before any frame number: {l}"));
        out.entry(n).or_default().push(l.to_string());
    }
    out
}

#[test]
fn filtered_lines_are_the_unfiltered_lines_of_the_selected_frames() {
    let d = scratch("filter-prune");
    let file = d.join("p.pcap");
    let mut v = Vec::new();
    write_pcap_header(&mut v, 1, 65535, false).unwrap();
    for (i, fr) in frames().iter().enumerate() {
        let ts = (i as u64 + 1) * 1_000_000;
        write_pcap_record(&mut v, ts, false, fr.len() as u32, fr).unwrap();
    }
    std::fs::write(&file, v).unwrap();

    let all = lines(&file, &[]);
    assert_eq!(all.len(), frames().len());
    // The capture exercises what the analysis of skipped packets would
    // change: the flags are there unfiltered.
    let text: String = all
        .values()
        .flatten()
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");
    for want in ["[TCP Retransmission]", "[TCP Dup ACK", "VXLAN vni 42"] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    let exprs = [
        "tcp port 80",
        "tcp port 22",
        "tcp port 443",
        "udp port 4789",
        "host 172.16.0.1",
        "host 192.168.0.2",
        "src host 192.168.0.2",
        "tcp and dst port 80",
        "vlan",
        "vlan and tcp",
        "vlan and tcp port 80",
        "not port 22",
        "tcp and not port 22",
        "tcp[tcpflags] & tcp-push != 0",
        "tcp port 22 and tcp[tcpflags] & tcp-ack != 0",
        "ip[6:2] & 0x1fff != 0",
        "ip6",
        "ip6 and tcp port 80",
        "udp",
        "udp port 53",
        "icmp",
        "tcp and not vlan",
        "greater 120",
        "net 10.0.0.0/24 and tcp",
        "portrange 40000-40500",
        "ip proto 6 and not host 10.0.0.1",
    ];
    let mut shown_total = 0;
    for e in exprs {
        let got = lines(&file, &[e]);
        for (n, l) in &got {
            assert_eq!(
                Some(l),
                all.get(n),
                "{e}: frame {n} differs from the unfiltered output"
            );
        }
        shown_total += got.len();
    }
    assert!(
        shown_total > 100,
        "the expressions select too little: {shown_total}"
    );
    let _ = std::fs::remove_dir_all(&d);
}
