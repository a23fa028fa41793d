//! VXLAN (UDP 4789) and Geneve (UDP 6081): the inner TCP connection is
//! followed as tshark follows it (every TCP field compared), the outer
//! headers are kept in `tunnel`, and filters apply to the outer packet as
//! in tcpdump. The capture is built byte by byte.

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
