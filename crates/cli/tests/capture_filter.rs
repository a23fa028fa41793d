//! The filter language against tcpdump's, on real captures (IPv4 and IPv6
//! TCP, UDP): for each expression, `sockscope capture -r F EXPR` must select
//! exactly the packets `tcpdump -r F EXPR` prints, and the classic BPF
//! sockscope compiles for the kernel must accept exactly the packets the
//! program from `tcpdump -ddd EXPR` accepts (both run in the same cBPF
//! interpreter, which follows the kernel's semantics).

#[path = "common/root.rs"]
mod root;

#[path = "fixtures/capture/helpers.rs"]
mod helpers;
use helpers::*;
use sockscope_capture::filter::{self, Linkage, bpf};
use sockscope_capture::pcap::Reader;
use std::process::Command;

const EXPRS: [&str; 22] = [
    "tcp",
    "udp",
    "ip",
    "ip6",
    "port 9000",
    "src port 9000",
    "dst port 9000",
    "tcp port 9000",
    "udp port 5353",
    "host 127.0.0.1",
    "src host 127.0.0.1",
    "host ::1",
    "dst host ::1",
    "net 127.0.0.0/8",
    "net 127",
    "dst net 127.0.0.0 mask 255.255.0.0",
    "not tcp",
    "tcp or udp",
    "portrange 5000-9000",
    "ip6 and tcp",
    "(tcp and src port 9000) or udp",
    "not (port 9000 or port 5353) and ip",
];

fn tcpdump_times(file: &std::path::Path, expr: &str) -> Vec<String> {
    let o = Command::new("tcpdump")
        .args(["-tt", "-nn", "-r"])
        .arg(file)
        .arg(expr)
        .output()
        .expect("tcpdump");
    assert!(
        o.status.success(),
        "tcpdump {expr}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

fn our_times(file: &std::path::Path, expr: &str) -> Vec<String> {
    jsonl(file, &[expr])
        .iter()
        .filter(|o| o["type"] == "packet")
        .map(|o| {
            let ns = o["ts_ns"].as_u64().expect("ts_ns");
            format!("{}.{:06}", ns / 1_000_000_000, ns % 1_000_000_000 / 1000)
        })
        .collect()
}

#[test]
fn filters_select_what_tcpdump_selects_and_compile_to_equivalent_bpf() {
    if root::skip_without_root() {
        return;
    }
    require_root();
    let d = scratch("filter");
    let files = [
        (d.join("v4.pcap"), vec!["basic"]),
        (d.join("v6.pcap"), vec!["basic", "--v6"]),
        (d.join("udp.pcap"), vec!["udp"]),
    ];
    let mut nonempty = 0;
    for (f, traffic) in &files {
        make_capture(f, None, traffic);
        let bytes = std::fs::read(f).unwrap();
        for expr in EXPRS {
            let want = tcpdump_times(f, expr);
            let got = our_times(f, expr);
            assert_eq!(got, want, "{expr} on {}", f.display());
            if !want.is_empty() {
                nonempty += 1;
            }
            // Compiled programs: ours vs tcpdump's, packet by packet.
            let ddd = Command::new("tcpdump")
                .args(["-ddd", "-y", "EN10MB", expr])
                .output()
                .expect("tcpdump -ddd");
            let theirs = bpf::parse_ddd(&String::from_utf8_lossy(&ddd.stdout)).expect("parse -ddd");
            let ours = filter::parse(&[expr.to_string()])
                .unwrap()
                .compile(Linkage::Ethernet, 262_144)
                .unwrap();
            let mut r = Reader::new(&bytes[..]).unwrap();
            let mut n = 0;
            while let Some(rec) = r.next_record().unwrap() {
                n += 1;
                let meta = bpf::Meta {
                    wire_len: rec.wire_len,
                    ..Default::default()
                };
                let a = bpf::run(&ours, rec.data, &meta) != 0;
                let b = bpf::run(&theirs, rec.data, &meta) != 0;
                assert_eq!(
                    a,
                    b,
                    "{expr}: packet {n} of {}: ours {a}, tcpdump's {b}",
                    f.display()
                );
            }
        }
    }
    assert!(
        nonempty > 30,
        "the captures should make most filters select something ({nonempty})"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_filters_are_usage_errors() {
    for (words, msg) in [
        (vec!["host", "example.com"], "names are not resolved"),
        (vec!["port", "80", "and"], "end of filter"),
        (vec!["(tcp"], "expected ')'"),
        (vec!["tcp", "host", "1.2.3.4"], "cannot qualify"),
        (vec!["frobnicate"], "expected a primitive"),
    ] {
        let mut args = vec!["capture", "-r", "/dev/null"];
        args.extend(words.iter());
        let o = sockscope(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{words:?}: {err}");
        assert!(err.contains(msg), "{words:?}: {err}");
    }
}
