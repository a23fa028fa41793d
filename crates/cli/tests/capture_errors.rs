//! Bad input never panics: empty, foreign, missing, truncated and corrupted
//! capture files give a clear error and exit 2 (after printing the packets
//! that could be read); malformed packets inside a good file are shown and
//! marked malformed. Also checks `-r F -w G` (pcap to pcapng, read back by
//! tshark identically) and the flow views.

#[path = "common/root.rs"]
mod root;

#[path = "fixtures/capture/helpers.rs"]
mod helpers;
use helpers::*;
use std::process::Command;

fn run_capture(file: &std::path::Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let mut args = vec!["capture", "-r", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = sockscope(&args);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn bad_files_are_clear_usage_errors_and_never_panics() {
    if root::skip_without_root() {
        return;
    }
    require_root();
    let d = scratch("errors");
    let empty = d.join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let (c, _, e) = run_capture(&empty, &[]);
    assert_eq!(
        (c, e.trim()),
        (
            Some(2),
            format!("sockscope: {}: the file is empty", empty.display()).as_str()
        )
    );

    let text = d.join("notes.txt");
    std::fs::write(&text, b"GET / HTTP/1.1\r\n").unwrap();
    let (c, _, e) = run_capture(&text, &[]);
    assert_eq!(c, Some(2));
    assert!(
        e.contains("not a pcap or pcapng file (starts with 47455420"),
        "{e}"
    );

    let (c, _, e) = run_capture(&d.join("missing.pcap"), &[]);
    assert_eq!(c, Some(2));
    assert!(e.contains("No such file"), "{e}");

    let good = d.join("basic.pcap");
    make_capture(&good, None, &["basic"]);
    let bytes = std::fs::read(&good).unwrap();
    let (c, all, _) = run_capture(&good, &[]);
    assert_eq!(c, Some(0));
    let total = all.lines().count();

    // Cut in the middle of the last record: the packets before it print,
    // then the error names the offset.
    let cut = d.join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let (c, out, e) = run_capture(&cut, &[]);
    assert_eq!(c, Some(2), "{e}");
    assert_eq!(out.lines().count(), total - 1);
    assert!(e.contains("file truncated at byte"), "{e}");
    assert!(e.contains("a packet record needs"), "{e}");

    // Every prefix, and the same file converted to pcapng: never a panic.
    let ng = d.join("basic.pcapng");
    let (c, _, e) = run_capture(&good, &["-w", ng.to_str().unwrap()]);
    assert_eq!(c, Some(0), "{e}");
    let ng_bytes = std::fs::read(&ng).unwrap();
    let (n1, _) = compare_with_tshark(&good);
    let (n2, _) = compare_with_tshark(&ng);
    assert_eq!(n1, n2, "the pcapng copy has every TCP packet");
    let p = d.join("prefix");
    for src in [&bytes, &ng_bytes] {
        for n in (0..src.len()).step_by(7) {
            std::fs::write(&p, &src[..n]).unwrap();
            let (c, _, e) = run_capture(&p, &["--conv"]);
            assert!(matches!(c, Some(0..=2)), "prefix {n}: exit {c:?}: {e}");
        }
        // Flip bytes all over the file.
        let mut seed = 0x1234_5678u32;
        for _ in 0..40 {
            let mut m = src.clone();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let i = seed as usize % m.len();
                m[i] ^= (seed >> 8) as u8 | 1;
            }
            std::fs::write(&p, &m).unwrap();
            let (c, _, e) = run_capture(&p, &["--jsonl"]);
            assert!(matches!(c, Some(0..=2)), "corrupted copy: exit {c:?}: {e}");
        }
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn malformed_packets_are_marked_not_fatal() {
    let d = scratch("malformed");
    let f = d.join("m.pcap");
    let mut out = Vec::new();
    sockscope_capture::pcap::write_pcap_header(&mut out, 1, 65535, false).unwrap();
    // Ethernet + an IPv4 header claiming IHL 15 with 20 bytes present.
    let mut a = vec![0u8; 12];
    a.extend_from_slice(&[0x08, 0x00, 0x4f, 0, 0, 40]);
    a.extend_from_slice(&[0; 16]);
    // Ethernet + IPv4 + a TCP header whose data offset is 2 (8 bytes).
    let mut b = vec![0u8; 12];
    b.extend_from_slice(&[
        0x08, 0x00, 0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    b.extend_from_slice(&[
        0, 80, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0x20, 0x02, 1, 0, 0, 0, 0, 0,
    ]);
    // A 5-byte frame.
    let c = vec![1u8, 2, 3, 4, 5];
    for (i, fr) in [a, b, c].iter().enumerate() {
        sockscope_capture::pcap::write_pcap_record(
            &mut out,
            (i as u64 + 1) * 1_000_000_000,
            false,
            fr.len() as u32,
            fr,
        )
        .unwrap();
    }
    std::fs::write(&f, out).unwrap();
    let objs = jsonl(&f, &[]);
    let m: Vec<&str> = objs
        .iter()
        .filter(|o| o["type"] == "packet")
        .map(|o| o["malformed"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        m,
        vec![
            "truncated IPv4 header: needs 60 bytes, 20 captured",
            "bogus TCP header length 8",
            "truncated link-layer header: needs 14 bytes, 5 captured"
        ]
    );
    assert_eq!(objs.last().unwrap()["malformed"], 3);
    let (code, lines, _) = run_capture(&f, &[]);
    assert_eq!(code, Some(0));
    assert!(
        lines
            .lines()
            .nth(1)
            .unwrap()
            .ends_with("[malformed: bogus TCP header length 8]"),
        "{lines}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn flow_diagrams_as_text_and_svg() {
    if root::skip_without_root() {
        return;
    }
    require_root();
    let d = scratch("flow");
    let f = d.join("basic.pcap");
    make_capture(&f, None, &["basic"]);
    let svg = d.join("flow.svg");
    let (c, out, e) = run_capture(&f, &["--flow", "--svg", svg.to_str().unwrap()]);
    assert_eq!(c, Some(0), "{e}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("TCP stream 0: 127.0.0.1:"), "{out}");
    assert!(lines[0].contains("-> 127.0.0.1:9000"), "{out}");
    assert!(lines[0].contains("FIN, handshake RTT"), "{out}");
    assert!(
        lines[2].contains("|") && lines[2].contains("SYN seq=0") && lines[2].contains(">|"),
        "{out}"
    );
    assert!(
        lines[3].contains("|<") && lines[3].contains("SYN,ACK seq=0 ack=1"),
        "{out}"
    );
    let packets = Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(&f)
        .output()
        .unwrap();
    let n = String::from_utf8_lossy(&packets.stdout).lines().count();
    assert_eq!(
        lines.len(),
        n + 2,
        "title, header and one arrow per packet: {out}"
    );
    let s = std::fs::read_to_string(&svg).unwrap();
    assert!(s.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert_eq!(s.matches("marker-end=").count(), n, "one arrow per packet");
    assert!(s.trim_end().ends_with("</svg>"));
    let _ = std::fs::remove_dir_all(&d);
}
