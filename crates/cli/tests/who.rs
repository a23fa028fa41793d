//! `sockscope who TARGET` against real sockets in private network
//! namespaces: the seeds' walk from a port to the kernel's /proc row, the
//! inode, the `socket:[INODE]` fd and the process, checked against what the
//! test reads from /proc itself (seed 000: `python3 -m http.server 8080`;
//! seed 001: a netcat-style listener and its fdinfo), SO_REUSEPORT
//! siblings, a pre-fork server whose children share the listener, UNIX
//! sockets and their peers, and the errors for targets that match nothing
//! or are malformed.

#[path = "common/root.rs"]
mod root;

mod common;

use common::{
    ProcRow, Scene, fd_target_inode, fdinfo, fds_of_socket, flag_names, json_of, netns_inode,
    owner_pairs, proc_inet_row, proc_net_rows, sockscope, stat_field,
};
use serde_json::{Value, json};

/// The names of the decoded fields of a /proc/net/tcp row, in order.
const TCP_FIELDS: &[&str] = &[
    "sl",
    "local_address",
    "rem_address",
    "st",
    "tx_queue",
    "rx_queue",
    "tr",
    "tm->when",
    "retrnsmt",
    "uid",
    "timeout",
    "inode",
    "refcount",
    "pointer",
    "rto",
    "ato",
    "quick/pingpong",
    "cwnd",
    "ssthresh",
];

/// `who --json` must give a JSON array of chains.
fn chains(run: &common::Run) -> Vec<Value> {
    run.expect_code(0);
    match json_of(run) {
        Value::Array(a) => a,
        other => panic!("`{}`: not an array: {other}", run.cmdline),
    }
}

/// The chain's proc_line must be the row the test read, verbatim, and its
/// decoded fields the row's own tokens, in order.
fn check_proc_line(chain: &Value, row: &ProcRow) {
    let pl = &chain["proc_line"];
    assert_eq!(pl["file"], json!(row.file), "proc_line.file");
    assert_eq!(pl["header"], json!(row.header), "proc_line.header");
    assert_eq!(pl["line"], json!(row.line), "proc_line.line (verbatim)");
    let names: Vec<&str> = pl["fields"]
        .as_array()
        .expect("proc_line.fields")
        .iter()
        .map(|f| f["name"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(names, TCP_FIELDS, "decoded field names of a tcp row");
    // The raw text of each field is the row's token ("tx_queue:rx_queue"
    // and "tr:tm->when" are one token each in the file).
    let mut want: Vec<String> = Vec::new();
    for (i, t) in row.tokens().iter().enumerate() {
        match i {
            4 | 5 => {
                let (a, b) = t.split_once(':').expect("a:b token");
                want.push(a.into());
                want.push(b.into());
            }
            _ => want.push((*t).into()),
        }
    }
    let raws: Vec<&str> = pl["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["raw"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(raws, want, "raw text of the decoded fields");
}

/// One owner of a chain, checked against /proc/PID/fd/N and fdinfo/N as
/// the test reads them.
fn check_owner(o: &Value, pid: u32, fd: u32, inode: u64) {
    assert_eq!(o["owner"]["pid"], json!(pid), "owner pid in {o}");
    assert_eq!(o["owner"]["fd"], json!(fd), "owner fd in {o}");
    assert_eq!(
        o["fd_path"],
        json!(format!("/proc/{pid}/fd/{fd}")),
        "fd_path"
    );
    assert_eq!(o["link"], json!(format!("socket:[{inode}]")), "link");
    let fi = fdinfo(pid, fd);
    let got = &o["fdinfo"];
    assert_eq!(got["pos"], json!(fi["pos"].parse::<u64>().unwrap()), "pos");
    assert_eq!(got["flags_octal"], json!(fi["flags"]), "flags (octal)");
    assert_eq!(
        got["flags"],
        json!(flag_names(&fi["flags"])),
        "flags decoded"
    );
    assert_eq!(
        got["mnt_id"],
        json!(fi["mnt_id"].parse::<u64>().unwrap()),
        "mnt_id"
    );
    assert_eq!(got["ino"], json!(inode), "fdinfo ino");
    assert_eq!(
        fi["ino"].parse::<u64>().unwrap(),
        inode,
        "the kernel's fdinfo ino"
    );
    let p = &o["process"];
    assert_eq!(p["pid"], json!(pid), "process.pid");
    assert_eq!(
        p["ppid"],
        json!(stat_field(pid, 4).parse::<u64>().unwrap()),
        "process.ppid"
    );
    assert_eq!(p["comm"], json!("python3"), "process.comm");
    assert_eq!(p["uid"], json!(0), "process.uid");
    assert_eq!(p["user"], json!("root"), "process.user");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("readlink exe");
    assert_eq!(p["exe"], json!(exe.display().to_string()), "process.exe");
}

#[test]
fn seed_000_http_server_on_port_8080() {
    if root::skip_without_root() {
        return;
    }
    let own_ns = netns_inode(std::process::id());
    let listening = |pid: u32| {
        netns_inode(pid) != own_ns
            && std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("http.server"))
            && !proc_net_rows(pid, "tcp", |t| {
                t.get(1) == Some(&"00000000:1F90") && t.get(3) == Some(&"0A")
            })
            .is_empty()
    };
    let sc = Scene::start_command(
        &["python3", "-m", "http.server", "8080", "--bind", "0.0.0.0"],
        "listener on 0.0.0.0:8080",
        listening,
    );
    let pid = sc.pid;

    // The seed by hand: the LISTEN row of 00000000:1F90 in /proc/net/tcp,
    // its inode, the fd that links to socket:[inode], and its fdinfo.
    let rows = proc_net_rows(pid, "tcp", |t| t.get(1) == Some(&"00000000:1F90"));
    assert_eq!(rows.len(), 1, "one row for port 8080: {rows:#?}");
    let row = &rows[0];
    let inode: u64 = row.tokens()[9].parse().expect("inode column");
    let fds = fds_of_socket(pid, inode);
    assert_eq!(fds.len(), 1, "one fd links to socket:[{inode}]: {fds:?}");
    let fd = fds[0];
    assert_eq!(
        fd_target_inode(pid, fd),
        inode,
        "stat of /proc/{pid}/fd/{fd}"
    );

    let run = sc.sockscope("who", &[":8080", "--json"]);
    let all = chains(&run);
    assert_eq!(all.len(), 1, "one socket on :8080: {all:#?}");
    let c = &all[0];
    let s = &c["socket"];
    assert_eq!(s["proto"], json!("tcp"));
    assert_eq!(s["state"], json!("listening"));
    assert_eq!(s["local"], json!({"addr": "0.0.0.0", "port": 8080}));
    assert_eq!(s["inode"], json!(inode), "inode");
    assert_eq!(
        s["netns"]["inode"],
        json!(netns_inode(pid)),
        "netns of the socket"
    );
    assert_eq!(c["port_hex"], json!("1F90"), "8080 as /proc prints it");
    assert_eq!(
        c["addr_hex"],
        json!("00000000"),
        "0.0.0.0 as /proc prints it"
    );
    check_proc_line(c, row);

    assert_eq!(
        owner_pairs(&s["owners"]),
        vec![(u64::from(pid), u64::from(fd))]
    );
    let owners = c["owners"].as_array().expect("owners");
    assert_eq!(owners.len(), 1, "one owner chain");
    check_owner(&owners[0], pid, fd, inode);
    let cmdline: Vec<&str> = owners[0]["process"]["cmdline"]
        .as_array()
        .expect("cmdline")
        .iter()
        .map(|a| a.as_str().unwrap_or(""))
        .collect();
    assert!(
        cmdline.contains(&"http.server") && cmdline.contains(&"8080"),
        "cmdline {cmdline:?}"
    );

    // http.server listens with its request_queue_size, 5.
    let l = &c["listener"];
    assert_eq!(l["accept_queue"], json!(0), "accept queue");
    assert_eq!(l["backlog"], json!(5), "backlog of http.server");
    assert_eq!(l["full"], json!(false));
    assert_eq!(l["syn_recv"], json!(0));
    assert_eq!(l["children"], json!([]));
    assert_eq!(l["reuseport_siblings"], json!([]));
    assert_eq!(c["unix_peer"], Value::Null);

    // The same chain as text: the seed's link, the hex port, the row.
    let text = sc.sockscope("who", &[":8080"]);
    text.expect_code(0);
    for want in [
        format!("/proc/{pid}/fd/{fd} -> socket:[{inode}]"),
        "0x1F90".to_string(),
        "= 00000000 as /proc prints it".to_string(),
        row.line.trim_end().to_string(),
        "http.server".to_string(),
    ] {
        assert!(
            text.stdout.contains(&want),
            "`who :8080` text lacks {want:?}:\n{}",
            text.stdout
        );
    }
}

#[test]
fn seed_001_netcat_listener_fdinfo_and_listen_line() {
    if root::skip_without_root() {
        return;
    }
    let sc = Scene::start("nc");
    let pid = sc.pid;
    let port = sc.num("/port");
    let fd = sc.num("/fd") as u32;
    let inode = sc.num("/inode");
    assert_eq!(fds_of_socket(pid, inode), vec![fd], "the fixture's fd");

    // The seed's `cat /proc/216/fdinfo/3`: pos 0, flags 02 (O_RDWR, and no
    // close-on-exec, as nc's socket).
    let fi = fdinfo(pid, fd);
    assert_eq!((fi["pos"].as_str(), fi["flags"].as_str()), ("0", "02"));
    // The seed's LISTEN line: 00000000:PORT, st 0A, the inode.
    let row = proc_inet_row(pid, &["tcp"], inode);
    let t = row.tokens();
    assert_eq!(t[1], format!("00000000:{port:04X}"));
    assert_eq!(t[3], "0A");

    let target = format!(":{port}");
    let all = chains(&sc.sockscope("who", &[&target, "--json"]));
    assert_eq!(all.len(), 1, "one socket on {target}: {all:#?}");
    let c = &all[0];
    assert_eq!(c["socket"]["state"], json!("listening"));
    assert_eq!(c["socket"]["inode"], json!(inode));
    assert_eq!(c["port_hex"], json!(format!("{port:04X}")));
    assert_eq!(c["addr_hex"], json!("00000000"));
    check_proc_line(c, &row);
    let owners = c["owners"].as_array().expect("owners");
    assert_eq!(owners.len(), 1);
    check_owner(&owners[0], pid, fd, inode);
    assert_eq!(owners[0]["fdinfo"]["pos"], json!(0));
    assert_eq!(owners[0]["fdinfo"]["flags_octal"], json!("02"));
    assert_eq!(owners[0]["fdinfo"]["flags"], json!(["O_RDWR"]));
    assert_eq!(c["listener"]["backlog"], json!(1));
    assert_eq!(c["listener"]["accept_queue"], json!(0));

    // The same socket by inode (the seed's `ss -aep | grep 35587`) and by
    // PID/FD; PID/FD needs no --netns-pid, the pid names the namespace.
    for (what, run) in [
        (
            "inode",
            sc.sockscope("who", &[&format!("inode:{inode}"), "--json"]),
        ),
        (
            "pid/fd",
            sockscope(&["who", &format!("{pid}/{fd}"), "--json"]),
        ),
    ] {
        let again = chains(&run);
        assert_eq!(again.len(), 1, "who by {what}: {again:#?}");
        assert_eq!(again[0]["socket"]["inode"], json!(inode), "who by {what}");
        assert_eq!(
            again[0]["proc_line"]["line"],
            json!(row.line),
            "who by {what}"
        );
        assert_eq!(
            owner_pairs(&again[0]["socket"]["owners"]),
            vec![(u64::from(pid), u64::from(fd))],
            "who by {what}"
        );
    }
}

#[test]
fn reuseport_listeners_list_each_other() {
    if root::skip_without_root() {
        return;
    }
    let sc = Scene::start("reuseport");
    let port = sc.num("/port");
    let all = chains(&sc.sockscope("who", &[&format!(":{port}"), "--json"]));
    let ls: Vec<(u64, u64, u64)> = (0..2)
        .map(|i| {
            (
                sc.num(&format!("/listeners/{i}/inode")),
                sc.num(&format!("/listeners/{i}/pid")),
                sc.num(&format!("/listeners/{i}/fd")),
            )
        })
        .collect();
    assert_ne!(ls[0].1, ls[1].1, "the two listeners live in two processes");
    let mut got: Vec<u64> = all
        .iter()
        .map(|c| c["socket"]["inode"].as_u64().unwrap_or(0))
        .collect();
    got.sort_unstable();
    let mut want = vec![ls[0].0, ls[1].0];
    want.sort_unstable();
    assert_eq!(got, want, "both listeners, nothing else: {all:#?}");
    for c in &all {
        let me = c["socket"]["inode"].as_u64().unwrap();
        let (mine, other) = if me == ls[0].0 {
            (ls[0], ls[1])
        } else {
            (ls[1], ls[0])
        };
        assert_eq!(
            owner_pairs(&c["socket"]["owners"]),
            vec![(mine.1, mine.2)],
            "owner of listener {me}"
        );
        let sib = c["listener"]["reuseport_siblings"]
            .as_array()
            .expect("reuseport_siblings");
        assert_eq!(sib.len(), 1, "one sibling of {me}: {sib:#?}");
        assert_eq!(sib[0]["inode"], json!(other.0), "sibling of {me}");
        assert_eq!(
            owner_pairs(&sib[0]["owners"]),
            vec![(other.1, other.2)],
            "the sibling's owner"
        );
        assert_eq!(
            sib[0]["local"],
            json!({"addr": "127.0.0.1", "port": port}),
            "same address and port"
        );
    }
}

#[test]
fn fork_server_children_share_the_listener() {
    if root::skip_without_root() {
        return;
    }
    let sc = Scene::start("forkserver");
    let port = sc.num("/port");
    let lfd = sc.num("/listener/fd");
    let linode = sc.num("/listener/inode");
    let pids: Vec<u64> = sc.manifest["listener"]["pids"]
        .as_array()
        .expect("pids")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(pids.len(), 3, "parent and two children");

    let all = chains(&sc.sockscope("who", &[&format!(":{port}"), "--json"]));
    // The accepted connection has the listener's port too, but it is shown
    // inside the listener's chain, not as a chain of its own.
    assert_eq!(all.len(), 1, "only the listener's chain: {all:#?}");
    let c = &all[0];
    assert_eq!(c["socket"]["inode"], json!(linode));
    let mut want: Vec<(u64, u64)> = pids.iter().map(|p| (*p, lfd)).collect();
    want.sort_unstable();
    assert_eq!(
        owner_pairs(&c["socket"]["owners"]),
        want,
        "every process holds the listener as fd {lfd}"
    );
    let owners = c["owners"].as_array().expect("owner chains");
    assert_eq!(owners.len(), 3);
    for o in owners {
        let pid = o["owner"]["pid"].as_u64().unwrap() as u32;
        check_owner(o, pid, lfd as u32, linode);
        let ppid = o["process"]["ppid"].as_u64().unwrap();
        if u64::from(pid) != pids[0] {
            assert_eq!(ppid, pids[0], "child {pid} of the server");
        }
    }
    let l = &c["listener"];
    assert_eq!(l["accept_queue"], json!(0), "the connection was accepted");
    assert_eq!(l["backlog"], json!(8));
    let kids = l["children"].as_array().expect("children");
    assert_eq!(kids.len(), 1, "one connection on the port: {kids:#?}");
    let k = &kids[0];
    assert_eq!(k["state"], json!("established"));
    assert_eq!(k["inode"], json!(sc.num("/accepted/inode")));
    assert_eq!(
        k["peer"],
        json!({"addr": "127.0.0.1", "port": sc.num("/client/port")})
    );
    assert_eq!(
        owner_pairs(&k["owners"]),
        vec![(sc.num("/accepted/pid"), sc.num("/accepted/fd"))],
        "only the child that accepted holds the connection"
    );
}

#[test]
fn unix_path_listener_and_the_peer_and_its_owner() {
    if root::skip_without_root() {
        return;
    }
    let sc = Scene::start("unix");
    let path = sc.text("/path");
    let all = chains(&sc.sockscope("who", &[&path, "--json"]));
    // The listener and the connection it accepted carry the path.
    let by_inode = |i: u64| {
        all.iter()
            .find(|c| c["socket"]["inode"] == json!(i))
            .unwrap_or_else(|| panic!("no chain for inode {i}: {all:#?}"))
    };
    assert_eq!(all.len(), 2, "listener and accepted socket: {all:#?}");
    let l = by_inode(sc.num("/listener/inode"));
    assert_eq!(l["socket"]["proto"], json!("unix_stream"));
    assert_eq!(l["socket"]["state"], json!("listening"));
    assert_eq!(l["socket"]["local"]["path"], json!(path));
    assert_eq!(l["unix_peer"], Value::Null, "a listener has no peer");
    assert_eq!(l["proc_line"]["file"], json!("/proc/net/unix"));
    let tokens: Vec<&str> = l["proc_line"]["line"]
        .as_str()
        .expect("unix line")
        .split_whitespace()
        .collect();
    assert_eq!(
        (tokens[6], tokens[7]),
        (
            sc.num("/listener/inode").to_string().as_str(),
            path.as_str()
        ),
        "inode and path columns of the /proc/net/unix line"
    );
    assert_eq!(
        owner_pairs(&l["socket"]["owners"]),
        vec![(sc.num("/listener/pid"), sc.num("/listener/fd"))]
    );

    let a = by_inode(sc.num("/accepted/inode"));
    assert_eq!(a["socket"]["state"], json!("established"));
    assert_eq!(
        a["socket"]["peer"]["inode"],
        json!(sc.num("/client/inode")),
        "peer inode"
    );
    let peer = &a["unix_peer"];
    assert_eq!(peer["inode"], json!(sc.num("/client/inode")), "unix_peer");
    assert_eq!(peer["peer"]["inode"], json!(sc.num("/accepted/inode")));
    assert_eq!(
        owner_pairs(&peer["owners"]),
        vec![(sc.num("/client/pid"), sc.num("/client/fd"))],
        "the peer's owner is the child that connected"
    );

    // A socketpair has no path: ask by PID/FD.
    let (pa, pb) = ("/pair/0", "/pair/1");
    let run = sockscope(&[
        "who",
        &format!(
            "{}/{}",
            sc.num(&format!("{pa}/pid")),
            sc.num(&format!("{pa}/fd"))
        ),
        "--json",
    ]);
    let pair = chains(&run);
    assert_eq!(pair.len(), 1, "{pair:#?}");
    assert_eq!(
        pair[0]["socket"]["inode"],
        json!(sc.num(&format!("{pa}/inode")))
    );
    assert_eq!(
        pair[0]["unix_peer"]["inode"],
        json!(sc.num(&format!("{pb}/inode")))
    );
    assert_eq!(
        owner_pairs(&pair[0]["unix_peer"]["owners"]),
        vec![(sc.num(&format!("{pb}/pid")), sc.num(&format!("{pb}/fd")))]
    );

    let text = sc.sockscope("who", &[&path]);
    text.expect_code(0);
    assert!(text.stdout.contains(&path), "{}", text.stdout);
}

#[test]
fn port_without_socket_exits_1_and_says_what_was_searched() {
    if root::skip_without_root() {
        return;
    }
    let sc = Scene::start("nc");
    let run = sc.sockscope("who", &[":1"]);
    run.expect_code(1);
    assert_eq!(run.stdout, "", "nothing on stdout");
    let ns = netns_inode(sc.pid).to_string();
    for want in [":1", "tcp", "udp", "raw", ns.as_str()] {
        assert!(
            run.stderr.contains(want),
            "stderr should name {want:?}: {}",
            run.stderr
        );
    }
    // Same with --json: no chains, exit 1.
    let run = sc.sockscope("who", &[":1", "--json"]);
    run.expect_code(1);
    // A UNIX path nobody bound.
    let run = sc.sockscope("who", &["/nonexistent/sockscope.sock"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("/nonexistent/sockscope.sock") && run.stderr.contains("unix"),
        "{}",
        run.stderr
    );
}

#[test]
fn malformed_targets_exit_2_with_a_message() {
    for (target, want) in [
        (":70000", "70000"),
        ("foo:bar", "foo"),
        ("12/x", "/x"),
        (":0", "out of range"),
        ("inode:abc", "abc"),
        ("", "empty"),
    ] {
        let run = sockscope(&["who", target]);
        run.expect_code(2);
        assert!(
            run.stderr.contains(want),
            "`who {target:?}`: stderr should mention {want:?}: {}",
            run.stderr
        );
        assert_eq!(run.stdout, "", "`who {target:?}` printed on stdout");
    }
    let run = sockscope(&["who", ":70000"]);
    assert!(run.stderr.contains("out of range"), "{}", run.stderr);
}

#[test]
fn pid_fd_that_is_not_a_socket_exits_2_and_says_what_it_is() {
    if root::skip_without_root() {
        return;
    }
    let sc = Scene::start("procfds");
    let pid = sc.pid;
    let fds = sc.manifest["fds"].as_array().expect("fds").clone();
    let fd_of = |kind: &str| {
        fds.iter()
            .find(|f| f["kind"] == json!(kind))
            .and_then(|f| f["fd"].as_u64())
            .unwrap_or_else(|| panic!("no {kind} fd"))
    };
    for (fd, kind) in [
        (0, "pipe"),
        (fd_of("file"), "file"),
        (fd_of("anon_inode"), "anon_inode"),
    ] {
        let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
            .expect("readlink")
            .display()
            .to_string();
        let run = sockscope(&["who", &format!("{pid}/{fd}")]);
        run.expect_code(2);
        let want = format!("fd {fd} of process {pid} is not a socket: it is {kind} ({link})");
        assert!(
            run.stderr.contains(&want),
            "stderr should say {want:?}: {}",
            run.stderr
        );
    }
    // A pid that does not exist, and an fd that is not open.
    let run = sockscope(&["who", "999999999/3"]);
    run.expect_code(2);
    assert!(run.stderr.contains("999999999"), "{}", run.stderr);
    let run = sockscope(&["who", &format!("{pid}/999")]);
    run.expect_code(2);
    assert!(run.stderr.contains("no fd 999"), "{}", run.stderr);
}

/// SOCKSCOPE_OWNERS_NOOP (bench/who.sh's floor: the owner walk reads
/// nothing) is said on stderr without -v, so a run with it set cannot pass
/// for an answer; without it the owners are found and nothing is said.
#[test]
fn the_owner_walk_benchmark_setting_is_said() {
    if root::skip_without_root() {
        return;
    }
    let own_ns = netns_inode(std::process::id());
    let sc = Scene::start_command(
        &[
            "python3",
            "-m",
            "http.server",
            "8093",
            "--bind",
            "127.0.0.1",
        ],
        "listener on 127.0.0.1:8093",
        |pid| {
            netns_inode(pid) != own_ns
                && !proc_net_rows(pid, "tcp", |t| {
                    t.get(1) == Some(&"0100007F:1F9D") && t.get(3) == Some(&"0A")
                })
                .is_empty()
        },
    );
    let pid = sc.pid.to_string();
    let args = ["who", "--netns-pid", pid.as_str(), ":8093", "--json"];
    let plain = sockscope(&args);
    let owners = |run: &common::Run| chains(run)[0]["socket"]["owners"].clone();
    assert_eq!(owners(&plain)[0]["pid"], json!(sc.pid), "{}", plain.stdout);
    assert!(
        !plain.stderr.contains("SOCKSCOPE_OWNERS_NOOP"),
        "{}",
        plain.stderr
    );

    let mut all = vec!["SOCKSCOPE_OWNERS_NOOP=1", common::BIN];
    all.extend_from_slice(&args);
    let noop = common::run_cmd("env", &all);
    assert!(
        noop.stderr
            .contains("SOCKSCOPE_OWNERS_NOOP is set: the owner walk read no socket"),
        "{}",
        noop.stderr
    );
    assert_eq!(owners(&noop), json!([]), "{}", noop.stdout);
}

/// A TCP socket bound to the port and nothing more (no listen, no
/// connect) holds the port as a listener does: `who` lists it, with its
/// owner, beside the listener. The kernel hands such sockets over only
/// when asked for BOUND-INACTIVE ones (Linux 6.9+: a walk of its whole
/// bind table; the kernel reports them as CLOSE).
#[test]
fn a_socket_bound_and_nothing_more_is_listed_with_its_owner() {
    if root::skip_without_root() {
        return;
    }
    let own_ns = netns_inode(std::process::id());
    let code = "import socket, time\n\
                def bound():\n    \
                    s = socket.socket()\n    \
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)\n    \
                    s.bind(('127.0.0.1', 8094))\n    \
                    return s\n\
                b = bound()\n\
                l = bound()\n\
                l.listen()\n\
                time.sleep(600)\n";
    let sc = Scene::start_command(
        &["python3", "-c", code],
        "a bound socket and a listener on 127.0.0.1:8094",
        |pid| {
            netns_inode(pid) != own_ns
                && !proc_net_rows(pid, "tcp", |t| {
                    t.get(1) == Some(&"0100007F:1F9E") && t.get(3) == Some(&"0A")
                })
                .is_empty()
        },
    );
    let run = sc.sockscope("who", &[":8094", "--json"]);
    let all = chains(&run);
    let mut got: Vec<(String, Vec<(u64, u64)>)> = all
        .iter()
        .map(|c| {
            let s = &c["socket"];
            let owners = s["owners"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| (o["pid"].as_u64().unwrap(), o["fd"].as_u64().unwrap()))
                .collect();
            (s["state"].as_str().unwrap().to_string(), owners)
        })
        .collect();
    got.sort();
    let pid = u64::from(sc.pid);
    let mut want = vec![("listening".to_string(), vec![(pid, 4)])];
    if dumps_bound_only() {
        want.insert(0, ("closed".to_string(), vec![(pid, 3)]));
    }
    assert_eq!(got, want, "{all:#?}");
}

/// Sockets the kernel lists as bound-only although they were not left
/// that way: one bound, connected, then reset by its peer (its `struct
/// socket` still says connected), and one bound whose non-blocking connect
/// was refused (still connecting). Both hold their port, both are listed
/// with their owner.
#[test]
fn sockets_bound_then_reset_or_refused_are_listed_with_their_owner() {
    if root::skip_without_root() {
        return;
    }
    let code = "import os, socket, struct, time\n\
                l = socket.socket()\n\
                l.bind(('127.0.0.1', 8095))\n\
                l.listen(5)\n\
                c = socket.socket()\n\
                c.bind(('127.0.0.1', 8096))\n\
                c.connect(('127.0.0.1', 8095))\n\
                a, _ = l.accept()\n\
                a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))\n\
                a.close()\n\
                time.sleep(0.2)\n\
                try:\n    c.recv(10)\n\
                except OSError:\n    pass\n\
                d = socket.socket()\n\
                d.bind(('127.0.0.1', 8097))\n\
                d.setblocking(False)\n\
                try:\n    d.connect(('127.0.0.1', 8098))\n\
                except BlockingIOError:\n    pass\n\
                time.sleep(0.3)\n\
                m = '/tmp/sockscope-who-reset-%d' % os.getpid()\n\
                open(m + '.tmp', 'w').write('%d %d' % (c.fileno(), d.fileno()))\n\
                os.rename(m + '.tmp', m)\n\
                time.sleep(600)\n";
    let marker = |pid: u32| format!("/tmp/sockscope-who-reset-{pid}");
    let sc = Scene::start_command(&["python3", "-c", code], "its marker file", |pid| {
        std::path::Path::new(&marker(pid)).exists()
    });
    let fds = std::fs::read_to_string(marker(sc.pid)).unwrap();
    let _ = std::fs::remove_file(marker(sc.pid));
    let fds: Vec<u64> = fds.split(' ').map(|f| f.parse().unwrap()).collect();
    if !dumps_bound_only() {
        return;
    }
    for (port, fd) in [(8096, fds[0]), (8097, fds[1])] {
        let run = sc.sockscope("who", &[&format!(":{port}"), "--json"]);
        let all = chains(&run);
        assert_eq!(all.len(), 1, ":{port}: {all:#?}");
        let s = &all[0]["socket"];
        assert_eq!(s["state"], json!("closed"), ":{port}: {s:#}");
        assert_eq!(s["owners"][0]["pid"], json!(sc.pid), ":{port}: {s:#}");
        assert_eq!(s["owners"][0]["fd"], json!(fd), ":{port}: {s:#}");
    }
}

/// Can the kernel dump bound-only TCP sockets (Linux 6.9+)?
fn dumps_bound_only() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut v = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (v.next().unwrap_or(0), v.next().unwrap_or(0)) >= (6, 9)
}
