//! VXLAN (UDP 4789) and Geneve (UDP 6081): the inner TCP connection is
//! followed as tshark follows it (every TCP field compared), the outer
//! headers are kept in `tunnel`, and filters apply to the outer packet as
//! in tcpdump. The capture is built byte by byte.

#[path = "common/root.rs"]
mod root;

#[path = "fixtures/capture/helpers.rs"]
mod helpers;
use helpers::*;
use sockscope_capture::pcap::{write_pcap_header, write_pcap_record};
use std::process::Command;

fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut v = vec![0x45, 0];
    v.extend_from_slice(&total.to_be_bytes());
    v.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(payload);
    v
}

fn ether(payload: &[u8]) -> Vec<u8> {
    let mut v = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
    v.extend_from_slice(payload);
    v
}

/// Inner Ethernet + IPv4 + TCP between 192.168.0.1:CPORT and 192.168.0.2:80.
fn inner(cport: u16, c2s: bool, seq: u32, ack: u32, flags: u8, len: usize) -> Vec<u8> {
    let (src, dst, sport, dport) = if c2s {
        ([192, 168, 0, 1], [192, 168, 0, 2], cport, 80u16)
    } else {
        ([192, 168, 0, 2], [192, 168, 0, 1], 80, cport)
    };
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.extend_from_slice(&[0x50, flags, 0x10, 0, 0, 0, 0, 0]);
    t.extend(std::iter::repeat_n(b'i', len));
    ether(&ipv4(src, dst, 6, &t))
}

/// The inner frame in UDP to `port` with header `hdr`, between the VTEPs.
fn encap(c2s: bool, port: u16, hdr: &[u8], frame: &[u8]) -> Vec<u8> {
    let (src, dst) = if c2s {
        ([172, 16, 0, 1], [172, 16, 0, 2])
    } else {
        ([172, 16, 0, 2], [172, 16, 0, 1])
    };
    let mut u = Vec::new();
    u.extend_from_slice(&50000u16.to_be_bytes());
    u.extend_from_slice(&port.to_be_bytes());
    u.extend_from_slice(&((8 + hdr.len() + frame.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(hdr);
    u.extend_from_slice(frame);
    ether(&ipv4(src, dst, 17, &u))
}

const VXLAN: [u8; 8] = [0x08, 0, 0, 0, 0, 0, 42, 0];
/// Geneve with one 8-byte option (length 2 words), VNI 7, Ethernet inside.
const GENEVE: [u8; 16] = [
    0x02, 0, 0x65, 0x58, 0, 0, 7, 0, 0x01, 0x02, 0x80, 0x01, 1, 2, 3, 4,
];

#[test]
fn tunnelled_tcp_is_followed_like_tshark() {
    if root::skip_without_root() {
        return;
    }
    require_root();
    let d = scratch("tunnels");
    let f = d.join("t.pcap");
    let mut frames = Vec::new();
    for (port, hdr, c) in [(4789u16, &VXLAN[..], 40000), (6081, &GENEVE[..], 40001)] {
        frames.push(encap(true, port, hdr, &inner(c, true, 100, 0, 0x02, 0)));
        frames.push(encap(false, port, hdr, &inner(c, false, 900, 101, 0x12, 0)));
        frames.push(encap(true, port, hdr, &inner(c, true, 101, 901, 0x10, 0)));
        frames.push(encap(true, port, hdr, &inner(c, true, 101, 901, 0x18, 40)));
        frames.push(encap(true, port, hdr, &inner(c, true, 101, 901, 0x18, 40)));
        frames.push(encap(false, port, hdr, &inner(c, false, 901, 141, 0x10, 0)));
    }
    // Not a tunnel: UDP to 4789 too short for VXLAN and a frame stays UDP.
    frames.push(encap(true, 4789, &[0; 4], &[]));
    let mut v = Vec::new();
    write_pcap_header(&mut v, 1, 65535, false).unwrap();
    for (i, fr) in frames.iter().enumerate() {
        write_pcap_record(
            &mut v,
            (i as u64 + 1) * 1_000_000,
            false,
            fr.len() as u32,
            fr,
        )
        .unwrap();
    }
    std::fs::write(&f, v).unwrap();

    let objs = jsonl(&f, &[]);
    let pk: Vec<_> = objs.iter().filter(|o| o["type"] == "packet").collect();
    assert_eq!(pk[0]["src"], "192.168.0.1");
    assert_eq!(pk[0]["tunnel"]["kind"], "vxlan");
    assert_eq!(pk[0]["tunnel"]["vni"], 42);
    assert_eq!(pk[0]["tunnel"]["src"], "172.16.0.1");
    assert_eq!(pk[0]["tunnel"]["dport"], 4789);
    assert_eq!(pk[6]["tunnel"]["kind"], "geneve");
    assert_eq!(pk[6]["tunnel"]["vni"], 7);
    assert_eq!(pk[3]["tcp"]["payload_bytes"], 40);
    assert_eq!(
        pk[4]["tcp"]["analysis"],
        serde_json::json!(["retransmission"])
    );
    assert!(
        pk[12]["tunnel"].is_null() && pk[12]["proto"] == "udp",
        "{}",
        pk[12]
    );
    let convs: Vec<_> = objs
        .iter()
        .filter(|o| o["type"] == "conversation" && o["proto"] == "tcp")
        .collect();
    assert_eq!(convs.len(), 2, "one inner connection per tunnel");
    // Every TCP field as tshark decodes the tunnels.
    let (n, seen) = compare_with_tshark(&f);
    assert_eq!(n, 12);
    assert!(seen.contains("retransmission"), "{seen:?}");

    // Text: the outer endpoints, then the inner packet.
    let o = sockscope(&["capture", "-r", f.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    let first = text.lines().next().unwrap();
    assert!(
        first.contains("IP 172.16.0.1.50000 > 172.16.0.2.4789: VXLAN vni 42: IP 192.168.0.1.40000 > 192.168.0.2.80: Flags [S]"),
        "{first}"
    );
    // Filters see the outer packet, as tcpdump's do.
    for expr in [
        "udp port 4789",
        "host 172.16.0.1",
        "tcp",
        "host 192.168.0.1",
    ] {
        let ours = jsonl(&f, &[expr])
            .iter()
            .filter(|o| o["type"] == "packet")
            .count();
        let t = Command::new("tcpdump")
            .args(["-tt", "-nn", "-r"])
            .arg(&f)
            .arg(expr)
            .output()
            .unwrap();
        // One line per packet starts with its time (tunnels add lines).
        let theirs = String::from_utf8_lossy(&t.stdout)
            .lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
            .count();
        assert_eq!(ours, theirs, "{expr}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// Ethernet with ethertype `et` around `payload`.
fn ether_type(et: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    v.extend_from_slice(&et.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// `payload` in IPv4 protocol `proto` between 172.16.0.1 and 172.16.0.2.
fn outer_ip(c2s: bool, proto: u8, payload: &[u8]) -> Vec<u8> {
    let (src, dst) = if c2s {
        ([172, 16, 0, 1], [172, 16, 0, 2])
    } else {
        ([172, 16, 0, 2], [172, 16, 0, 1])
    };
    ether(&ipv4(src, dst, proto, payload))
}

/// How each encapsulation wraps an inner Ethernet frame (or its IP packet).
fn wrap(kind: &str, c2s: bool, eth: &[u8]) -> Vec<u8> {
    let ip = &eth[14..];
    let cat = |a: &[u8], b: &[u8]| [a, b].concat();
    match kind {
        // GRE with a key (5), carrying IPv4.
        "gre" => outer_ip(c2s, 47, &cat(&[0x20, 0, 0x08, 0, 0, 0, 0, 5], ip)),
        // GRE with a checksum, Transparent Ethernet Bridging.
        "gre-teb" => outer_ip(c2s, 47, &cat(&[0x80, 0, 0x65, 0x58, 0, 0, 0, 0], eth)),
        // ERSPAN II: GRE with a sequence number, then version 1, session 9.
        "erspan2" => outer_ip(
            c2s,
            47,
            &cat(
                &[0x10, 0, 0x88, 0xbe, 0, 0, 0, 1, 0x10, 0, 0, 9, 0, 0, 0, 0],
                eth,
            ),
        ),
        // ERSPAN III: version 2, session 12, no platform subheader.
        "erspan3" => outer_ip(
            c2s,
            47,
            &cat(
                &[
                    0x10, 0, 0x22, 0xeb, 0, 0, 0, 1, 0x20, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0,
                ],
                eth,
            ),
        ),
        // GTP-U G-PDU, TEID 0x1234, on UDP 2152.
        "gtpu" => {
            let mut h = vec![0x30, 0xff];
            h.extend_from_slice(&(ip.len() as u16).to_be_bytes());
            h.extend_from_slice(&0x1234u32.to_be_bytes());
            let mut u = Vec::new();
            u.extend_from_slice(&2152u16.to_be_bytes());
            u.extend_from_slice(&2152u16.to_be_bytes());
            u.extend_from_slice(&((8 + h.len() + ip.len()) as u16).to_be_bytes());
            u.extend_from_slice(&[0, 0]);
            outer_ip(c2s, 17, &cat(&cat(&u, &h), ip))
        }
        // Two MPLS labels (100, then 200 with bottom of stack).
        "mpls" => ether_type(
            0x8847,
            &cat(&[0x00, 0x06, 0x40, 64, 0x00, 0x0c, 0x81, 64], ip),
        ),
        // PPPoE session 0x0042, PPP protocol IPv4.
        "pppoe" => {
            let mut h = vec![0x11, 0, 0, 0x42];
            h.extend_from_slice(&((ip.len() + 2) as u16).to_be_bytes());
            h.extend_from_slice(&[0, 0x21]);
            ether_type(0x8864, &cat(&h, ip))
        }
        _ => unreachable!("{kind}"),
    }
}

#[test]
fn gre_erspan_gtpu_mpls_pppoe_are_decoded_like_tshark() {
    let d = scratch("tunnels-more");
    let f = d.join("t.pcap");
    let kinds = [
        "gre", "gre-teb", "erspan2", "erspan3", "gtpu", "mpls", "pppoe",
    ];
    let mut frames = Vec::new();
    for (i, k) in kinds.iter().enumerate() {
        let c = 41000 + i as u16;
        frames.push(wrap(k, true, &inner(c, true, 100, 0, 0x02, 0)));
        frames.push(wrap(k, false, &inner(c, false, 900, 101, 0x12, 0)));
        frames.push(wrap(k, true, &inner(c, true, 101, 901, 0x18, 30)));
    }
    let mut v = Vec::new();
    write_pcap_header(&mut v, 1, 65535, false).unwrap();
    for (i, fr) in frames.iter().enumerate() {
        let ts = (i as u64 + 1) * 1_000_000;
        write_pcap_record(&mut v, ts, false, fr.len() as u32, fr).unwrap();
    }
    std::fs::write(&f, v).unwrap();

    let objs = jsonl(&f, &[]);
    let pk: Vec<_> = objs.iter().filter(|o| o["type"] == "packet").collect();
    assert_eq!(pk.len(), 21);
    // GRE without a key has no identifier (null, not 0).
    let want = [
        ("gre", Some(5)),
        ("gre", None),
        ("erspan", Some(9)),
        ("erspan", Some(12)),
        ("gtp_u", Some(0x1234)),
        ("", None),
        ("", None),
    ];
    for (i, (kind, id)) in want.iter().enumerate() {
        let p = pk[i * 3];
        assert_eq!(p["proto"], "tcp", "{}: {p}", kinds[i]);
        assert_eq!(p["sport"], 41000 + i as u64, "{}: {p}", kinds[i]);
        if kind.is_empty() {
            assert!(p["tunnel"].is_null(), "{}: {p}", kinds[i]);
        } else {
            assert_eq!(p["tunnel"]["kind"], *kind, "{}: {p}", kinds[i]);
            match id {
                Some(id) => assert_eq!(p["tunnel"]["vni"], *id, "{}: {p}", kinds[i]),
                None => assert!(p["tunnel"]["vni"].is_null(), "{}: {p}", kinds[i]),
            }
            assert_eq!(p["tunnel"]["src"], "172.16.0.1", "{}: {p}", kinds[i]);
        }
    }
    let convs = objs
        .iter()
        .filter(|o| o["type"] == "conversation" && o["proto"] == "tcp")
        .count();
    assert_eq!(convs, kinds.len());
    // Every TCP field as tshark decodes these encapsulations.
    let (n, _) = compare_with_tshark(&f);
    assert_eq!(n, 21);
    let o = sockscope(&["capture", "-r", f.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.lines()
            .next()
            .unwrap()
            .starts_with("00:00:00.001000 IP 172.16.0.1 > 172.16.0.2: GRE key 5: IP 192.168.0.1.41000 > 192.168.0.2.80: Flags [S]"),
        "{text}"
    );
    // The GRE header of "gre-teb" has no key: no "key 0" invented.
    let teb = text.lines().nth(3).unwrap();
    assert!(
        teb.starts_with("00:00:00.004000 IP 172.16.0.1 > 172.16.0.2: GRE: IP 192.168.0.1.41001 > 192.168.0.2.80: Flags [S]"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&d);
}
