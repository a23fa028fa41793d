//! IPv4 and IPv6 fragments are reassembled as Wireshark does by default: a TCP
//! segment sent in three fragments (out of order) is analysed once, on the
//! frame that completes it, with every TCP field as tshark gives it; the
//! summary counts datagrams reassembled and fragments left over. The
//! capture is built byte by byte.

#[path = "common/root.rs"]
mod root;

#[path = "fixtures/capture/helpers.rs"]
mod helpers;
use helpers::*;
use sockscope_capture::pcap::{write_pcap_header, write_pcap_record};

fn ether(ip: &[u8]) -> Vec<u8> {
    let mut v = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
    v.extend_from_slice(ip);
    v
}

fn ip_header(c2s: bool, proto: u8, id: u16, frag: u16, payload: usize) -> Vec<u8> {
    let (src, dst) = if c2s {
        ([10, 0, 0, 1], [10, 0, 0, 2])
    } else {
        ([10, 0, 0, 2], [10, 0, 0, 1])
    };
    let mut v = vec![0x45, 0];
    v.extend_from_slice(&((20 + payload) as u16).to_be_bytes());
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&frag.to_be_bytes());
    v.extend_from_slice(&[64, proto, 0, 0]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v
}

fn tcp(c2s: bool, seq: u32, ack: u32, flags: u8, len: usize) -> Vec<u8> {
    let (sport, dport) = if c2s { (40000u16, 80u16) } else { (80, 40000) };
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ack.to_be_bytes());
    v.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    v.extend((0..len).map(|i| (i % 251) as u8));
    v
}

/// `payload` (a transport segment) as whole or as fragments of `chunk`
/// bytes, in the order `order` gives.
fn fragments(
    c2s: bool,
    proto: u8,
    id: u16,
    payload: &[u8],
    chunk: usize,
    order: &[usize],
) -> Vec<Vec<u8>> {
    let parts: Vec<&[u8]> = payload.chunks(chunk).collect();
    order
        .iter()
        .map(|&i| {
            let off = i * chunk;
            let mf = if i + 1 < parts.len() { 0x2000 } else { 0 };
            let mut f = ip_header(c2s, proto, id, mf | (off / 8) as u16, parts[i].len());
            f.extend_from_slice(parts[i]);
            ether(&f)
        })
        .collect()
}

fn whole(c2s: bool, proto: u8, id: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = ip_header(c2s, proto, id, 0x4000, payload.len());
    f.extend_from_slice(payload);
    ether(&f)
}

#[test]
fn fragments_are_reassembled_like_wireshark() {
    if root::skip_without_root() {
        return;
    }
    require_root();
    let d = scratch("fragments");
    let f = d.join("frag.pcap");
    let mut frames = vec![
        whole(true, 6, 1, &tcp(true, 1000, 0, 0x02, 0)),
        whole(false, 6, 2, &tcp(false, 5000, 1001, 0x12, 0)),
        whole(true, 6, 3, &tcp(true, 1001, 5001, 0x10, 0)),
    ];
    // 3000 bytes of data: 3020 bytes of TCP in fragments of 1480, sent
    // middle, first, last.
    frames.extend(fragments(
        true,
        6,
        4,
        &tcp(true, 1001, 5001, 0x18, 3000),
        1480,
        &[1, 0, 2],
    ));
    frames.push(whole(false, 6, 5, &tcp(false, 5001, 4001, 0x10, 0)));
    // A UDP datagram in two fragments, and a fragment whose datagram never
    // completes.
    let mut udp = vec![0x13, 0x88, 0x00, 0x35];
    udp.extend_from_slice(&2008u16.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend(std::iter::repeat_n(b'q', 2000));
    frames.extend(fragments(true, 17, 6, &udp, 1480, &[0, 1]));
    frames.extend(fragments(true, 17, 7, &udp, 1480, &[0]));
    frames.push(whole(true, 6, 8, &tcp(true, 4001, 5001, 0x11, 0)));

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
    assert_eq!(pk.len(), frames.len());
    // Frames 4 and 5 are fragments; frame 6 completes the segment.
    assert_eq!(pk[3]["proto"], "fragment", "{}", pk[3]);
    assert_eq!(pk[4]["proto"], "fragment", "{}", pk[4]);
    assert_eq!(pk[5]["tcp"]["payload_bytes"], 3000, "{}", pk[5]);
    assert_eq!(pk[5]["tcp"]["next_seq"], 3001);
    assert_eq!(pk[6]["tcp"]["ack"], 3001);
    assert_eq!(pk[8]["udp"]["payload_bytes"], 2000, "{}", pk[8]);
    let summary = objs.iter().find(|o| o["type"] == "summary").unwrap();
    assert_eq!(summary["reassembled"], 2);
    assert_eq!(summary["fragments_dropped"], 1);
    // Every TCP field as tshark gives it, reassembling by default.
    let (n, _) = compare_with_tshark(&f);
    assert_eq!(n, 6);
    let _ = std::fs::remove_dir_all(&d);
}

/// Ethernet + IPv6 (2001:db8::1 and ::2) with `ext` (extension headers,
/// the first of type `first`) and `payload`.
fn ip6(c2s: bool, first: u8, ext: &[u8], payload: &[u8]) -> Vec<u8> {
    let (a, b) = if c2s { (1, 2) } else { (2, 1) };
    let mut v = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
    v.extend_from_slice(&[0x60, 0, 0, 0]);
    v.extend_from_slice(&((ext.len() + payload.len()) as u16).to_be_bytes());
    v.extend_from_slice(&[first, 64]);
    for last in [a, b] {
        v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        v.extend_from_slice(&[0; 11]);
        v.push(last);
    }
    v.extend_from_slice(ext);
    v.extend_from_slice(payload);
    v
}

/// `payload` (TCP) in IPv6 fragments of `chunk` bytes (a multiple of 8),
/// identification `id`, sent in `order`; a Destination Options header
/// before the Fragment header in each.
fn fragments6(c2s: bool, id: u32, payload: &[u8], chunk: usize, order: &[usize]) -> Vec<Vec<u8>> {
    let parts: Vec<&[u8]> = payload.chunks(chunk).collect();
    order
        .iter()
        .map(|&i| {
            let more = u16::from(i + 1 < parts.len());
            let fo = ((i * chunk) as u16) | more;
            // Destination Options (next: Fragment), 8 bytes of padding.
            let mut ext = vec![44, 0, 1, 4, 0, 0, 0, 0];
            ext.extend_from_slice(&[6, 0]);
            ext.extend_from_slice(&fo.to_be_bytes());
            ext.extend_from_slice(&id.to_be_bytes());
            ip6(c2s, 60, &ext, parts[i])
        })
        .collect()
}

#[test]
fn ipv6_fragments_are_reassembled_like_wireshark() {
    let d = scratch("fragments6");
    let f = d.join("frag6.pcap");
    let mut frames = vec![
        ip6(true, 6, &[], &tcp(true, 1000, 0, 0x02, 0)),
        ip6(false, 6, &[], &tcp(false, 5000, 1001, 0x12, 0)),
        ip6(true, 6, &[], &tcp(true, 1001, 5001, 0x10, 0)),
    ];
    // 2500 bytes of data in fragments of 1232 bytes: last, first, middle.
    frames.extend(fragments6(
        true,
        0xabcd,
        &tcp(true, 1001, 5001, 0x18, 2500),
        1232,
        &[2, 0, 1],
    ));
    frames.push(ip6(false, 6, &[], &tcp(false, 5001, 3501, 0x10, 0)));
    // A datagram whose last fragment never comes.
    frames.extend(fragments6(
        true,
        0xabce,
        &tcp(true, 3501, 5001, 0x18, 2000),
        1232,
        &[0],
    ));
    let mut v = Vec::new();
    write_pcap_header(&mut v, 1, 65535, false).unwrap();
    for (i, fr) in frames.iter().enumerate() {
        let ts = (i as u64 + 1) * 1_000_000;
        write_pcap_record(&mut v, ts, false, fr.len() as u32, fr).unwrap();
    }
    std::fs::write(&f, v).unwrap();

    let objs = jsonl(&f, &[]);
    let pk: Vec<_> = objs.iter().filter(|o| o["type"] == "packet").collect();
    assert_eq!(pk.len(), frames.len());
    assert_eq!(pk[3]["proto"], "fragment", "{}", pk[3]);
    assert_eq!(pk[4]["proto"], "fragment", "{}", pk[4]);
    assert_eq!(pk[5]["tcp"]["payload_bytes"], 2500, "{}", pk[5]);
    assert_eq!(pk[6]["tcp"]["ack"], 2501);
    assert_eq!(pk[7]["proto"], "fragment", "{}", pk[7]);
    let summary = objs.iter().find(|o| o["type"] == "summary").unwrap();
    assert_eq!(summary["reassembled"], 1);
    assert_eq!(summary["fragments_dropped"], 1);
    let (n, _) = compare_with_tshark(&f);
    assert_eq!(n, 5);
    let _ = std::fs::remove_dir_all(&d);
}
