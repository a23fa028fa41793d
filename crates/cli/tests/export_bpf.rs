//! `sockscope export` with BPF: retransmits and resets counted per local
//! port in a kernel map, read at scrape time. A private network namespace
//! gets a known workload: a connection closed with SO_LINGER 0 (one RST
//! sent from the server's port, one received on the client's), a connect
//! to a closed port (a RST sent for no socket, on that port; one received
//! on the client's), and data from a server whose segments an nftables
//! input rule drops for a while (retransmits on the server's port, which
//! must equal the namespace's Tcp.RetransSegs). Also: unprivileged, the
//! series are absent, -v says why and the exporter still serves; --bpf
//! unprivileged is an error. Only ports a listener holds get a series of
//! their own; the clients' ports and the closed port are summed into
//! port="other". Drops by reason: a SYN to a closed port (NO_SOCKET) and
//! one an nftables rule drops on a listener's port (NETFILTER_DROP).
//! Histograms per listener: connections held ~300 ms land in the bucket
//! of 2^18..2^19 µs, a handshake whose first SYN-ACK was dropped (so it
//! took a SYN-ACK retransmit, ~1 s) lands above 2^19 µs, and the counts
//! equal the connections made. Over IPv6 (::1) the same resets and a
//! drop are counted, and after SIGTERM the exporter's programs are gone
//! from the kernel.

#[path = "common/root.rs"]
mod root;

mod common;
mod export_support;

use common::{BIN, Scene, net_counter};
use export_support::{Exporter, get, in_netns, samples};
use rustix::net::{AddressFamily, SocketAddrV4, SocketType, sockopt};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PORT: u16 = 9469;

fn sleeper() -> Scene {
    Scene::start_command(&["sleep", "600"], "exec of sleep", |pid| {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
    })
}

/// A scene's namespace (pid, its `net:[INODE]` label) and an exporter
/// serving there with the BPF counters.
fn bpf_exporter() -> (Scene, u32, String, Exporter) {
    let sc = sleeper();
    let pid = sc.pid;
    let netns = format!("net:[{}]", common::netns_inode(pid));
    let ex = Exporter::start(pid, PORT, &["--bpf"]);
    (sc, pid, netns, ex)
}

/// A client socket bound to a known port before it connects.
fn client_to(port: u16) -> (u16, std::io::Result<TcpStream>) {
    let fd = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    rustix::net::bind(&fd, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
    let local = match rustix::net::getsockname(&fd).unwrap().try_into() {
        Ok(std::net::SocketAddr::V4(a)) => a.port(),
        other => panic!("bound to {other:?}"),
    };
    let r = rustix::net::connect(&fd, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
        .map(|()| TcpStream::from(fd))
        .map_err(std::io::Error::from);
    (local, r)
}

fn nft(pid: u32, script: &str) {
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "--", "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(script.as_bytes())?;
            c.wait_with_output()
        })
        .expect("run nft (apt-get install nftables)");
    assert!(
        out.status.success(),
        "nft -f - <<{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of `name{netns,port}`, if the series is there.
fn by_port(body: &str, name: &str, netns: &str, port: u16) -> Option<f64> {
    by_port_label(body, name, netns, &port.to_string())
}

/// The value of `name{netns,port=PORT}` (a number or `other`), if there.
fn by_port_label(body: &str, name: &str, netns: &str, port: &str) -> Option<f64> {
    let port = port.to_string();
    samples(body)
        .into_iter()
        .find(|s| {
            s.name == name
                && s.labels.get("netns").map(String::as_str) == Some(netns)
                && s.labels.get("port") == Some(&port)
        })
        .map(|s| s.value)
}

/// `retrans:N/TOTAL` of the connected socket on local port `port`, from
/// `ss -tni` in the namespace of `pid`; 0 when ss shows none (it leaves
/// the field out while both are 0).
fn ss_total_retrans_or_0(pid: u32, port: u16) -> u64 {
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "--", "ss", "-tniH"])
        .arg(format!("sport = :{port}"))
        .output()
        .expect("run ss");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find_map(|w| w.strip_prefix("retrans:"))
        .and_then(|v| v.split('/').nth(1))
        .map_or(0, |t| t.parse().expect("a number"))
}

/// `retrans:N/TOTAL` of the connected socket on local port `port`, from
/// `ss -tni` in the namespace of `pid`.
fn ss_total_retrans(pid: u32, port: u16) -> u64 {
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "--", "ss", "-tniH"])
        .arg(format!("sport = :{port}"))
        .output()
        .expect("run ss");
    let text = String::from_utf8_lossy(&out.stdout);
    let total = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("retrans:"))
        .and_then(|v| v.split('/').nth(1))
        .unwrap_or_else(|| panic!("no retrans:N/T in ss -tni for :{port}:\n{text}"));
    total.parse().expect("a number")
}

#[test]
fn retransmits_and_resets_are_counted_per_port() {
    if root::skip_without_root() {
        return;
    }
    let (_sc, pid, netns, mut ex) = bpf_exporter();
    // The counters are attached before the exporter listens, so the
    // start-up probes that were refused in between count resets on the
    // probes' ports (port="other"): the workload is judged by the change
    // from this first scrape.
    let first = ex.get("/metrics");
    assert_eq!(first.status, 200, "{first:?}");
    let before =
        |name: &str, port: &str| by_port_label(&first.body, name, &netns, port).unwrap_or(0.0);

    // 1. SO_LINGER 0: the server's close sends a RST, the client gets it.
    // The listener stays open: its port keeps a series of its own.
    let (server_port, client_port, _l1) = in_netns(pid, || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let sp = l.local_addr().unwrap().port();
        let (cp, c) = client_to(sp);
        let mut c = c.expect("connect to the listener");
        let (s, _) = l.accept().unwrap();
        sockopt::set_socket_linger(&s, Some(Duration::ZERO)).unwrap();
        drop(s);
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let e = c
            .read(&mut [0u8; 8])
            .expect_err("the reset reaches the client");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
        (sp, cp, l)
    });

    // 2. A closed port: the kernel resets the SYN with no socket.
    let (closed_port, refused_client) = in_netns(pid, || {
        let p = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (cp, r) = client_to(p);
        let e = r.expect_err("nothing listens on the closed port");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
        (p, cp)
    });

    // 3. Retransmits: the server's segments are dropped on input for a
    // while, then let through.
    let retrans_before = net_counter(pid, "snmp", "Tcp", "RetransSegs");
    let failed_before = net_counter(pid, "netstat", "TcpExt", "TCPRetransFail");
    let data_port = in_netns(pid, || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let sp = l.local_addr().unwrap().port();
        let mut c = TcpStream::connect(("127.0.0.1", sp)).unwrap();
        let (mut s, _) = l.accept().unwrap();
        // A connection's total_retrans starts at its SYN-ACK's
        // retransmits (tcp_create_openreq_child copies req->num_retrans),
        // which tcp:tcp_retransmit_synack reports, not
        // tcp:tcp_retransmit_skb; under load the SYN-ACK may have gone
        // twice. Only the retransmits from here on are the data's.
        let at_accept = ss_total_retrans_or_0(pid, sp);
        nft(
            pid,
            &format!(
                "table inet sockscope_test {{\n chain i {{\n type filter hook input priority 0;\n tcp sport {sp} drop\n }}\n}}\n"
            ),
        );
        s.write_all(b"lost for a while").unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        nft(pid, "delete table inet sockscope_test");
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 16];
        c.read_exact(&mut buf)
            .expect("the data arrives once let through");
        (sp, at_accept, s, c, l)
    });
    let (data_port, at_accept, _s, _c, _l3) = data_port;
    // Wait until the namespace's retransmit count stops moving (the
    // final ACK is in).
    let mut retrans = net_counter(pid, "snmp", "Tcp", "RetransSegs");
    let t0 = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = net_counter(pid, "snmp", "Tcp", "RetransSegs");
        if now == retrans || t0.elapsed() > Duration::from_secs(10) {
            break;
        }
        retrans = now;
    }
    let in_netns_total = retrans - retrans_before;
    // The server socket's own count, as ss reads it from the kernel
    // (tcp_info total_retrans). The namespace's Tcp.RetransSegs can be
    // larger: under load a scrape's or a probe's SYN-ACK may go again.
    let retransmitted = ss_total_retrans(pid, data_port) - at_accept;
    assert!(retransmitted >= 1, "the drop rule caused no retransmit");
    assert!(
        retransmitted as i64 <= in_netns_total,
        "socket {retransmitted} > namespace {in_netns_total}"
    );

    let r = ex.get("/metrics");
    assert_eq!(r.status, 200, "{r:?}");
    let body = &r.body;
    assert!(
        body.contains(
            "# HELP sockscope_tcp_retransmits_by_port_total TCP segments the kernel sent again"
        ),
        "{body}"
    );
    let sent = "sockscope_tcp_resets_sent_by_port_total";
    let recvd = "sockscope_tcp_resets_received_by_port_total";
    let rt = "sockscope_tcp_retransmits_by_port_total";
    assert_eq!(
        by_port(body, sent, &netns, server_port),
        Some(1.0),
        "{body}"
    );
    let other =
        |name: &str| by_port_label(body, name, &netns, "other").map(|v| v - before(name, "other"));
    // Ports no listener holds (the clients' ports, the closed port) are
    // summed into port="other", so scans and ephemeral ports cannot grow
    // the series.
    for (name, port) in [
        (recvd, client_port),
        (sent, closed_port),
        (recvd, refused_client),
    ] {
        assert_eq!(
            by_port_label(body, name, &netns, &port.to_string()),
            None,
            "{body}"
        );
    }
    assert_eq!(other(sent), Some(1.0), "{body}");
    assert_eq!(other(recvd), Some(2.0), "{body}");
    // The kernel counts a retransmit in total_retrans (and RetransSegs)
    // before it transmits; one that then fails (TcpExt.TCPRetransFail: a
    // full device queue, memory) reaches tcp:tcp_retransmit_skb with its
    // error, and the exporter counts only those that went out.
    let failed = net_counter(pid, "netstat", "TcpExt", "TCPRetransFail") - failed_before;
    let counted = by_port(body, rt, &netns, data_port).unwrap_or(0.0) as i64;
    assert!(
        counted <= retransmitted as i64 && counted + failed >= retransmitted as i64,
        "retransmits on :{data_port}: {counted} counted, the socket's total_retrans (ss -ti) \
         {retransmitted}, failed attempts in the namespace {failed}\n{body}"
    );
    // Nothing else retransmitted or reset in the namespace, and nothing
    // from other namespaces is shown.
    for s in samples(body)
        .iter()
        .filter(|s| s.name.ends_with("_by_port_total"))
    {
        assert_eq!(s.labels["netns"], netns, "{s:?}");
    }
    let rt_series = samples(body).iter().filter(|s| s.name == rt).count();
    assert_eq!(rt_series, 1, "{body}");

    let (code, _) = ex.stop(rustix::process::Signal::TERM);
    assert_eq!(code, Some(0), "SIGTERM exits 0 with the programs attached");
}

#[test]
fn drops_are_counted_per_port_and_reason() {
    if root::skip_without_root() {
        return;
    }
    let (_sc, pid, netns, ex) = bpf_exporter();
    // Judged by the change from a first scrape (the exporter's start-up
    // probes hit a closed port after the programs were attached).
    let first = ex.get("/metrics");
    assert_eq!(first.status, 200, "{first:?}");
    let drops = "sockscope_tcp_drops_by_port_total";
    let count = |body: &str, port: &str, reason: &str| {
        samples(body)
            .into_iter()
            .find(|s| {
                s.name == drops
                    && s.labels.get("netns") == Some(&netns)
                    && s.labels.get("port").map(String::as_str) == Some(port)
                    && s.labels.get("reason").map(String::as_str) == Some(reason)
            })
            .map_or(0.0, |s| s.value)
    };

    // 1. A SYN to a closed port: no socket for it.
    let closed_port = in_netns(pid, || {
        let p = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = TcpStream::connect(("127.0.0.1", p)).expect_err("nothing listens");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
        p
    });

    // 2. Three SYNs to a listener's port dropped by a netfilter rule on
    // input: three sockets connect without blocking and are closed before
    // their first SYN retransmit (1 s), so each sent one SYN.
    let (listen_port, _l) = in_netns(pid, || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let lp = l.local_addr().unwrap().port();
        nft(
            pid,
            &format!(
                "table inet sockscope_drop {{\n chain i {{\n type filter hook input priority 0;\n tcp dport {lp} tcp flags syn drop\n }}\n}}\n"
            ),
        );
        let t0 = Instant::now();
        let socks: Vec<_> = (0..3)
            .map(|_| {
                let fd = rustix::net::socket_with(
                    AddressFamily::INET,
                    SocketType::STREAM,
                    rustix::net::SocketFlags::NONBLOCK,
                    None,
                )
                .unwrap();
                let r = rustix::net::connect(&fd, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, lp));
                assert_eq!(r, Err(rustix::io::Errno::INPROGRESS));
                fd
            })
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        drop(socks);
        assert!(
            t0.elapsed() < Duration::from_millis(900),
            "the sockets lived long enough to retransmit their SYN (machine too loaded)"
        );
        nft(pid, "delete table inet sockscope_drop");
        (lp, l)
    });

    let r = ex.get("/metrics");
    assert_eq!(r.status, 200, "{r:?}");
    let body = &r.body;
    assert!(
        body.contains("# HELP sockscope_tcp_drops_by_port_total TCP packets the kernel dropped"),
        "{body}"
    );
    let delta =
        |port: &str, reason: &str| count(body, port, reason) - count(&first.body, port, reason);
    assert_eq!(
        delta(&listen_port.to_string(), "NETFILTER_DROP"),
        3.0,
        "{body}"
    );
    // The closed port has no listener: its drop is port="other".
    assert_eq!(delta("other", "NO_SOCKET"), 1.0, "{body}");
    assert_eq!(count(body, &closed_port.to_string(), "NO_SOCKET"), 0.0);
    // Every reason is a name of this kernel's enum skb_drop_reason, and
    // the frees that lose no packet are not there.
    let kernel = sockscope_trace::names::Reasons::from_kernel();
    for s in samples(body).iter().filter(|s| s.name == drops) {
        let reason = &s.labels["reason"];
        assert!(
            kernel.drop.values().any(|n| n == reason),
            "{reason} is not in the kernel's enum skb_drop_reason: {s:?}"
        );
        assert!(
            !sockscope_trace::portcount::NOT_DROPS.contains(&reason.as_str()),
            "{s:?}"
        );
        assert_eq!(s.labels["netns"], netns, "{s:?}");
    }
}

/// The cumulative count of histogram `name` for `port` at bound `le`
/// (seconds; +Inf for infinity), and its `_count`.
fn bucket(body: &str, name: &str, netns: &str, port: u16, le: f64) -> Option<f64> {
    let port = port.to_string();
    samples(body)
        .into_iter()
        .find(|s| {
            s.name == format!("{name}_bucket")
                && s.labels.get("netns").map(String::as_str) == Some(netns)
                && s.labels.get("port") == Some(&port)
                && s.labels.get("le").is_some_and(|v| {
                    let v: f64 = if v == "+Inf" {
                        f64::INFINITY
                    } else {
                        v.parse().expect("le is a number")
                    };
                    v == le || (v - le).abs() < 1e-9
                })
        })
        .map(|s| s.value)
}

fn hist_value(body: &str, series: &str, netns: &str, port: u16) -> Option<f64> {
    by_port(body, series, netns, port)
}

#[test]
fn handshake_and_duration_histograms_per_listener() {
    if root::skip_without_root() {
        return;
    }
    let (_sc, pid, netns, ex) = bpf_exporter();

    // Three connections to one listener, each held ~300 ms by the server
    // (from the handshake, before accept, until both ends closed).
    const HELD: Duration = Duration::from_millis(300);
    let (fast_port, _l1) = in_netns(pid, || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let lp = l.local_addr().unwrap().port();
        let pairs: Vec<_> = (0..3)
            .map(|_| {
                let c = TcpStream::connect(("127.0.0.1", lp)).unwrap();
                let t0 = Instant::now();
                let (s, _) = l.accept().unwrap();
                (t0, c, s)
            })
            .collect();
        for (t0, c, s) in pairs {
            std::thread::sleep(HELD.saturating_sub(t0.elapsed()));
            drop(c);
            drop(s);
        }
        (lp, l)
    });

    // One connection whose first SYN-ACK an nftables rule drops on the
    // client's input: the handshake completes after a retransmit (~1 s).
    let (slow_port, slow_took, _l2) = in_netns(pid, || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let lp = l.local_addr().unwrap().port();
        nft(
            pid,
            &format!(
                "table inet sockscope_synack {{\n chain i {{\n type filter hook input priority 0;\n tcp sport {lp} tcp flags & (syn | ack) == syn | ack drop\n }}\n}}\n"
            ),
        );
        let t0 = Instant::now();
        let fd = rustix::net::socket_with(
            AddressFamily::INET,
            SocketType::STREAM,
            rustix::net::SocketFlags::NONBLOCK,
            None,
        )
        .unwrap();
        let r = rustix::net::connect(&fd, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, lp));
        assert_eq!(r, Err(rustix::io::Errno::INPROGRESS));
        std::thread::sleep(Duration::from_millis(300));
        nft(pid, "delete table inet sockscope_synack");
        l.set_nonblocking(false).unwrap();
        let (s, _) = l
            .accept()
            .expect("the handshake completes after a retransmit");
        let took = t0.elapsed();
        drop(s);
        drop(fd);
        (lp, took, l)
    });
    // Closing takes a round trip or two: wait for the last CLOSE.
    std::thread::sleep(Duration::from_millis(300));

    let r = ex.get("/metrics");
    assert_eq!(r.status, 200, "{r:?}");
    let body = &r.body;
    let dur = "sockscope_tcp_connection_duration_seconds";
    let hs = "sockscope_tcp_handshake_seconds";
    assert!(body.contains(&format!("# TYPE {dur} histogram")), "{body}");
    // 0.3 s is in [2^18, 2^19) µs = [0.262, 0.524) s.
    assert_eq!(
        hist_value(body, &format!("{dur}_count"), &netns, fast_port),
        Some(3.0),
        "{body}"
    );
    assert_eq!(
        bucket(body, dur, &netns, fast_port, 0.262144),
        Some(0.0),
        "{body}"
    );
    assert_eq!(
        bucket(body, dur, &netns, fast_port, 0.524288),
        Some(3.0),
        "{body}"
    );
    assert_eq!(
        bucket(body, dur, &netns, fast_port, f64::INFINITY),
        Some(3.0)
    );
    let sum = hist_value(body, &format!("{dur}_sum"), &netns, fast_port).expect("a sum");
    assert!(
        (0.9..1.6).contains(&sum),
        "3 x ~0.3 s, sum {sum}
{body}"
    );
    // Their handshakes were fast (loopback, no loss).
    assert_eq!(
        hist_value(body, &format!("{hs}_count"), &netns, fast_port),
        Some(3.0),
        "{body}"
    );
    assert_eq!(
        bucket(body, hs, &netns, fast_port, 0.262144),
        Some(3.0),
        "{body}"
    );
    // The slow one: above 2^19 µs (0.524 s), and no longer than the
    // client saw it take.
    assert!(
        slow_took > Duration::from_millis(900),
        "took {slow_took:?}: was the SYN-ACK dropped?"
    );
    assert_eq!(
        hist_value(body, &format!("{hs}_count"), &netns, slow_port),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        bucket(body, hs, &netns, slow_port, 0.524288),
        Some(0.0),
        "{body}"
    );
    let hs_sum = hist_value(body, &format!("{hs}_sum"), &netns, slow_port).expect("a sum");
    assert!(
        hs_sum > 0.524288 && hs_sum <= slow_took.as_secs_f64(),
        "handshake {hs_sum} s, the client saw {slow_took:?}
{body}"
    );
    assert_eq!(
        hist_value(body, &format!("{dur}_count"), &netns, slow_port),
        Some(1.0),
        "{body}"
    );
    // Only listener ports have histograms of their own: the exporter's
    // own port (a listener) may have some from the scrapes; nothing else.
    for s in samples(body)
        .iter()
        .filter(|s| s.name.starts_with(hs) || s.name.starts_with(dur))
    {
        let p = &s.labels["port"];
        assert!(
            [fast_port, slow_port, PORT]
                .iter()
                .any(|l| *p == l.to_string()),
            "{s:?}"
        );
    }
}

/// The ids of the BPF programs process `pid` holds (its program and link
/// fds: `prog_id:` in /proc/PID/fdinfo).
fn held_programs(pid: u32) -> Vec<u32> {
    let mut ids: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .expect("read the exporter's fdinfo")
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .flat_map(|info| {
            info.lines()
                .filter_map(|l| l.strip_prefix("prog_id:")?.trim().parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// `bpftool prog show id ID --json`: the program's name, or None when no
/// program has that id (any more).
fn loaded_program(id: u32) -> Option<String> {
    let out = Command::new("bpftool")
        .args(["prog", "show", "id", &id.to_string(), "--json"])
        .output()
        .expect("run bpftool (apt-get install bpftool)");
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bpftool --json");
    Some(v["name"].as_str().unwrap_or_default().to_string())
}

#[test]
fn ipv6_resets_and_drops_and_programs_detached_on_sigterm() {
    if root::skip_without_root() {
        return;
    }
    let (_sc, pid, netns, mut ex) = bpf_exporter();
    let exporter_pid = ex.child.id();
    let first = ex.get("/metrics");
    assert_eq!(first.status, 200, "{first:?}");
    let sent = "sockscope_tcp_resets_sent_by_port_total";
    let recvd = "sockscope_tcp_resets_received_by_port_total";
    let drops = "sockscope_tcp_drops_by_port_total";
    let no_socket = |body: &str| {
        samples(body)
            .into_iter()
            .find(|s| {
                s.name == drops
                    && s.labels.get("netns") == Some(&netns)
                    && s.labels.get("port").map(String::as_str) == Some("other")
                    && s.labels.get("reason").map(String::as_str) == Some("NO_SOCKET")
            })
            .map_or(0.0, |s| s.value)
    };

    // A connection on ::1 reset by the server (SO_LINGER 0), and a SYN to
    // a closed port on ::1.
    let (server_port, _l) = in_netns(pid, || {
        let l = TcpListener::bind((Ipv6Addr::LOCALHOST, 0))
            .expect("bind [::1]:0 (IPv6 on lo in the test namespace)");
        let sp = l.local_addr().unwrap().port();
        let mut c = TcpStream::connect((Ipv6Addr::LOCALHOST, sp)).unwrap();
        let (s, _) = l.accept().unwrap();
        sockopt::set_socket_linger(&s, Some(Duration::ZERO)).unwrap();
        drop(s);
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let e = c
            .read(&mut [0u8; 8])
            .expect_err("the reset reaches the client");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
        let closed = TcpListener::bind((Ipv6Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(matches!(closed, SocketAddr::V6(_)));
        let e = TcpStream::connect(closed).expect_err("nothing listens on the closed port");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
        (sp, l)
    });

    let r = ex.get("/metrics");
    assert_eq!(r.status, 200, "{r:?}");
    let body = &r.body;
    let other = |b: &str, name: &str| by_port_label(b, name, &netns, "other").unwrap_or(0.0);
    assert_eq!(
        by_port(body, sent, &netns, server_port),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        other(body, sent) - other(&first.body, sent),
        1.0,
        "the closed port's RST\n{body}"
    );
    assert_eq!(
        other(body, recvd) - other(&first.body, recvd),
        2.0,
        "the two clients' resets\n{body}"
    );
    assert_eq!(no_socket(body) - no_socket(&first.body), 1.0, "{body}");

    // SIGTERM: the exporter exits 0 and its programs leave the kernel.
    let held = held_programs(exporter_pid);
    let names: Vec<String> = held.iter().filter_map(|id| loaded_program(*id)).collect();
    assert!(
        names.iter().filter(|n| n.starts_with("ssc_")).count() >= 6,
        "the exporter holds its counting programs: {names:?} (ids {held:?})"
    );
    let (code, _) = ex.stop(rustix::process::Signal::TERM);
    assert_eq!(code, Some(0), "SIGTERM exits 0");
    assert!(
        !std::path::Path::new(&format!("/proc/{exporter_pid}")).exists(),
        "the exporter is gone"
    );
    // Freeing a program can lag its last reference a little (RCU).
    let t0 = Instant::now();
    loop {
        let left: Vec<(u32, String)> = held
            .iter()
            .filter_map(|id| Some((*id, loaded_program(*id)?)))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "programs still loaded 10 s after the exporter exited: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// sockscope with `args`, as nobody without capabilities, in the network
/// namespace of `pid`.
fn as_nobody(pid: u32, args: &[&str]) -> Command {
    let mut c = Command::new("nsenter");
    c.args(["-t", &pid.to_string(), "-n", "--", "setpriv"])
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            BIN,
        ])
        .args(args);
    c
}

#[test]
fn unprivileged_the_series_are_absent_and_verbose_says_why() {
    if root::skip_without_root() {
        return;
    }
    let sc = sleeper();
    let listen = format!("127.0.0.1:{PORT}");
    let mut child = as_nobody(sc.pid, &["-v", "export", "--listen", &listen])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nsenter setpriv sockscope export");
    let t0 = Instant::now();
    let body = loop {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("the unprivileged exporter exited: {st}");
        }
        if export_support::connect(sc.pid, PORT).is_ok() {
            break get(sc.pid, PORT, "/metrics", None).body;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no listener after 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(body.contains("sockscope_sockets"), "{body}");
    assert!(!body.contains("_by_port_total"), "{body}");
    assert!(
        err.contains("per-port retransmit and reset counters are off"),
        "{err}"
    );

    // Asked for explicitly, it is an error naming the fix.
    let out = as_nobody(sc.pid, &["export", "--once", "--bpf"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("CAP_BPF") || err.contains("cap_bpf"), "{err}");
}
