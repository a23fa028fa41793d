//! Unit tests of the filter: parsing, and the programs on hand-made frames.

use super::*;
use crate::decode::linktype;

fn f(s: &str) -> Filter {
    parse(&[s.to_string()]).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn frame(src: [u8; 4], dst: [u8; 4], proto: u8, sport: u16, dport: u16) -> Vec<u8> {
    let mut v = vec![0u8; 12];
    v.extend_from_slice(&[0x08, 0x00]);
    v.extend_from_slice(&[0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, proto, 0, 0]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x12, 0xff, 0xff, 0, 0, 0, 0]);
    v
}

/// `fr` with an 802.1Q tag of `id` after the MAC addresses.
fn tagged(fr: &[u8], id: u16) -> Vec<u8> {
    let mut v = fr[..12].to_vec();
    v.extend_from_slice(&[0x81, 0x00]);
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&fr[12..]);
    v
}

fn file_match(flt: &Filter, fr: &[u8]) -> bool {
    FileMatcher::new(flt.clone())
        .matches(linktype::ETHERNET, fr, fr.len() as u32)
        .unwrap()
}

#[test]
fn parses_tcpdump_forms() {
    let port = |lo| Expr::Prim {
        prim: Prim::Port {
            dir: Dir::Either,
            lo,
            hi: lo,
            proto: None,
            family: None,
        },
        vlan: 0,
    };
    assert_eq!(
        f("port 80 or 443").expr,
        Some(Expr::Or(Box::new(port(80)), Box::new(port(443))))
    );
    for ok in [
        "tcp",
        "tcp and (port 80 or port 8080)",
        "src host 127.0.0.1 && !udp",
        "net 10.0.0.0/8",
        "net 10.1",
        "dst net 192.168.0.0 mask 255.255.0.0",
        "ip6 host ::1",
        "src or dst port ssh",
        "tcp portrange 8000-8100",
        "not (icmp or arp)",
        "vlan",
        "vlan 10 and tcp",
        "ether host 00:11:22:33:44:55",
        "ether src 0:1:2:3:4:5 or ether dst ff:ff:ff:ff:ff:ff",
        "broadcast or multicast or ether broadcast",
        "ip multicast or ip6 multicast",
        "greater 100 and less 1500",
        "ip proto 6 or ip6 proto udp or proto \\icmp",
        "tcp[13] = 18",
        "tcp[tcpflags] & tcp-syn != 0",
        "ip[8] < 64",
        "(tcp[13] & 2) != 0 and len > 0x40",
        "ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2) != 0",
        "icmp[icmptype] = icmp-echo",
        "ether proto 0x0800",
    ] {
        parse(&[ok.to_string()]).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    let e = parse(&["host".into(), "example.com".into()]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "bad filter at 'example.com': expected an IPv4 or IPv6 address (names are not resolved)"
    );
    let e = parse(&["port 80 and".into()]).unwrap_err();
    assert_eq!(e.at, "end of filter");
    for bad in [
        "tcp host 1.2.3.4",
        "(tcp",
        "ip[0] / 0 = 1",
        "tcp[0:3] = 1",
        "vlan 5000",
        "ether net 10.0.0.0/8",
        "ip broadcast",
    ] {
        assert!(parse(&[bad.into()]).is_err(), "{bad} should be refused");
    }
    let e = parse(&["net 172.16.0.8/24".into()]).unwrap_err();
    assert!(e.message.contains("non-network bits set"), "{e}");
    assert_eq!(e.at, "'172.16.0.8/24'");
    let e = parse(&["net 10.1.2.3 mask 255.255.0.0".into()]).unwrap_err();
    assert!(e.message.contains("non-network bits set"), "{e}");
    // Inside a Geneve tunnel: protocol, address, port and byte tests, but
    // not another layer keyword.
    for ok in [
        "geneve and tcp port 80",
        "geneve 10 and host 10.0.0.1",
        "geneve and tcp[13] = 2 and ether host 02:00:00:00:00:01",
    ] {
        assert!(parse(&[ok.into()]).is_ok(), "{ok} should parse");
    }
    for bad in ["geneve and vlan", "geneve and mpls", "geneve and geneve 3"] {
        let e = parse(&[bad.into()]).unwrap_err();
        assert!(e.message.contains("after 'geneve'"), "{bad}: {e}");
    }
}

#[test]
fn vlan_moves_later_tests_past_the_tag() {
    let plain = frame([10, 0, 0, 1], [10, 0, 0, 2], 6, 40000, 80);
    let t10 = tagged(&plain, 10);
    for (e, on_plain, on_tagged) in [
        ("tcp", true, false),
        ("vlan", false, true),
        ("vlan and tcp", false, true),
        ("vlan 10 and port 80", false, true),
        ("vlan 11 and tcp", false, false),
        ("vlan and host 10.0.0.1", false, true),
        ("tcp or vlan", true, true),
        ("not vlan", true, false),
        ("vlan and tcp[13] = 18", false, true),
    ] {
        let flt = f(e);
        assert_eq!(
            file_match(&flt, &plain),
            on_plain,
            "{e} on an untagged frame"
        );
        assert_eq!(file_match(&flt, &t10), on_tagged, "{e} on a tagged frame");
        // Live: the kernel has moved the tag into the metadata.
        let prog = flt.compile(Linkage::EthernetLive, 1).unwrap();
        let meta = bpf::Meta {
            vlan_tci: Some(10),
            wire_len: plain.len() as u32,
            ..Default::default()
        };
        let live_tagged = bpf::run(&prog, &plain, &meta) != 0;
        let live_plain = bpf::run(&prog, &plain, &bpf::Meta::default()) != 0;
        let on_plain_live = on_plain;
        // Without a tag in the frame, tests after `vlan` read the same
        // bytes as without `vlan`; `tcp` alone also sees stripped frames.
        let want_tagged = if e == "tcp" { true } else { on_tagged };
        assert_eq!(live_plain, on_plain_live, "live {e} untagged");
        assert_eq!(live_tagged, want_tagged, "live {e} tagged");
    }
}

#[test]
fn byte_tests_and_lengths() {
    let syn = frame([10, 0, 0, 1], [10, 0, 0, 2], 6, 40000, 80);
    let mut ack = syn.clone();
    ack[14 + 20 + 13] = 0x10;
    let mut low_ttl = syn.clone();
    low_ttl[14 + 8] = 3;
    for (e, s, a, l) in [
        ("tcp[13] = 18", true, false, true),
        ("tcp[tcpflags] & tcp-syn != 0", true, false, true),
        (
            "tcp[tcpflags] & (tcp-syn|tcp-ack) = tcp-ack",
            false,
            true,
            false,
        ),
        ("ip[8] < 64", false, false, true),
        ("ip[8] >= 64", true, true, false),
        ("len = 54", true, true, true),
        ("greater 55", false, false, false),
        ("less 54", true, true, true),
        ("ip[2:2] + 14 = len", true, true, true),
        ("tcp[(tcp[12] >> 4) * 4 - 7] = 18", true, false, true),
        ("ip proto tcp", true, true, true),
        ("proto 17", false, false, false),
        ("ether[12:2] = 0x800", true, true, true),
    ] {
        let flt = f(e);
        for (fr, want, name) in [(&syn, s, "syn"), (&ack, a, "ack"), (&low_ttl, l, "low ttl")] {
            assert_eq!(file_match(&flt, fr), want, "{e} on {name}");
        }
    }
}

#[test]
fn ethernet_and_cooked_programs_agree() {
    let frames = [
        frame([127, 0, 0, 1], [127, 0, 0, 2], 6, 40000, 80),
        frame([10, 1, 2, 3], [127, 0, 0, 1], 17, 53, 5353),
        frame([10, 1, 2, 3], [10, 9, 9, 9], 1, 0, 0),
        frame([192, 168, 1, 1], [127, 0, 0, 1], 6, 8080, 22),
    ];
    let exprs = [
        "tcp",
        "udp",
        "icmp",
        "port 80",
        "src port 53",
        "dst port 80 or dst port 22",
        "host 127.0.0.1",
        "src host 127.0.0.1",
        "dst net 127.0.0.0/8",
        "net 10",
        "not tcp",
        "tcp and not port 80",
        "portrange 50-60",
        "ip6",
        "ip",
        "tcp[13] = 18",
        "ip[9] = 17 or ip proto 1",
    ];
    for e in exprs {
        let flt = f(e);
        let cooked = flt.compile(Linkage::Cooked, 65535).unwrap();
        for (i, fr) in frames.iter().enumerate() {
            let user = file_match(&flt, fr);
            let meta = bpf::Meta {
                protocol: 0x0800,
                wire_len: fr.len() as u32 - 14,
                ..Default::default()
            };
            assert_eq!(
                bpf::run(&cooked, &fr[14..], &meta) != 0,
                user,
                "cooked {e} {i}"
            );
        }
    }
    let fr = &frames[0];
    assert!(file_match(&f("tcp and dst port 80"), fr));
    assert!(!file_match(&f("udp or src port 80"), fr));
    // Link-layer tests cannot run on cooked packets.
    for e in ["ether host 1:2:3:4:5:6", "broadcast", "ether[0] = 1"] {
        assert!(f(e).compile(Linkage::Cooked, 1).is_err(), "{e}");
        assert!(f(e).compile(Linkage::RawIp, 1).is_err(), "{e}");
    }
}

#[test]
fn interpreter_runs_tcpdump_ddd_output() {
    // `tcpdump -ddd tcp` on Ethernet.
    let ddd = "12\n40 0 0 12\n21 0 2 2048\n48 0 0 23\n21 6 7 6\n21 0 6 34525\n48 0 0 20\n21 3 0 6\n21 0 3 44\n48 0 0 54\n21 0 1 6\n6 0 0 262144\n6 0 0 0\n";
    let prog = bpf::parse_ddd(ddd).unwrap();
    let fr = frame([1, 1, 1, 1], [2, 2, 2, 2], 6, 1, 2);
    assert_eq!(bpf::run(&prog, &fr, &bpf::Meta::default()), 262144);
    let fr = frame([1, 1, 1, 1], [2, 2, 2, 2], 17, 1, 2);
    assert_eq!(bpf::run(&prog, &fr, &bpf::Meta::default()), 0);
}

#[test]
fn errors_escape_what_they_quote() {
    let e = parse(&["host \u{1b}[2Jx".into()]).unwrap_err().to_string();
    assert!(!e.contains('\u{1b}'), "{e:?}");
    assert!(e.contains("at '\\e'"), "{e:?}");
}
