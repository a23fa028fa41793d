//! `sockscope proc PID` against a process whose fd table the test knows:
//! a regular file, a pipe, an eventfd, a non-blocking TCP listener, an
//! unbound UNIX stream socket and an inheritable UDP socket (scene
//! `procfds` of tests/fixtures/who_scenes.py, in a private network
//! namespace). Every fd the kernel lists in /proc/PID/fd must appear with
//! its link, its kind, its fdinfo (flags as the kernel prints them and
//! decoded) and, for sockets, the protocol and state; the totals must
//! count them. Also: a pid that does not exist.

#[path = "common/root.rs"]
mod root;

mod common;

use common::{
    Scene, fd_links, fd_target_inode, fdinfo, flag_names, json_of, sockscope, stat_field,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The kind sockscope should give an fd, from its link text.
fn kind_of_link(link: &str) -> &'static str {
    if link.starts_with("socket:[") {
        "socket"
    } else if link.starts_with("pipe:[") {
        "pipe"
    } else if link.starts_with("anon_inode:") {
        "anon_inode"
    } else if link.starts_with('/') {
        "file"
    } else {
        "other"
    }
}

#[test]
fn proc_json_decodes_every_fd() {
    if root::skip_without_root() {
        return;
    }
    let sc = Scene::start("procfds");
    let pid = sc.pid;
    let run = sockscope(&["proc", &pid.to_string(), "--json"]);
    run.expect_code(0);
    let report = json_of(&run);
    let links = fd_links(pid);

    let p = &report["process"];
    assert_eq!(p["pid"], json!(pid));
    assert_eq!(p["comm"], json!("python3"));
    assert_eq!(
        p["ppid"],
        json!(stat_field(pid, 4).parse::<u64>().unwrap()),
        "ppid"
    );
    assert!(
        p["cmdline"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("procfds"))),
        "cmdline {}",
        p["cmdline"]
    );

    // Exactly the fds the kernel lists, in order, with their links.
    let fds = report["fds"].as_array().expect("fds array");
    let got: Vec<(u64, &str)> = fds
        .iter()
        .map(|f| {
            (
                f["fd"].as_u64().unwrap_or(u64::MAX),
                f["link"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    let want: Vec<(u64, &str)> = links
        .iter()
        .map(|(fd, l)| (u64::from(*fd), l.as_str()))
        .collect();
    assert_eq!(got, want, "fds and links as in /proc/{pid}/fd");

    // Every fd: kind, target, fdinfo as the kernel prints it; sockets
    // joined to their socket; totals by kind.
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for f in fds {
        let fd = f["fd"].as_u64().unwrap() as u32;
        let link = f["link"].as_str().unwrap();
        let kind = kind_of_link(link);
        assert_eq!(f["target"]["kind"], json!(kind), "kind of fd {fd} ({link})");
        let fi = fdinfo(pid, fd);
        let info = &f["info"];
        assert_eq!(info["flags_octal"], json!(fi["flags"]), "fd {fd} flags");
        assert_eq!(
            info["flags"],
            json!(flag_names(&fi["flags"])),
            "fd {fd} decoded"
        );
        assert_eq!(
            info["pos"],
            json!(fi["pos"].parse::<u64>().unwrap()),
            "fd {fd} pos"
        );
        assert_eq!(
            info["ino"],
            json!(fi["ino"].parse::<u64>().unwrap()),
            "fd {fd} ino"
        );
        let ino = fd_target_inode(pid, fd);
        match kind {
            "socket" | "pipe" => {
                assert_eq!(f["target"]["inode"], json!(ino), "fd {fd} target inode")
            }
            "file" => assert_eq!(f["target"]["path"], json!(link), "fd {fd} path"),
            _ => {}
        }
        let key = if kind == "socket" {
            let s = &f["socket"];
            assert_eq!(
                s["inode"],
                json!(ino),
                "fd {fd}: the socket joined by inode"
            );
            let short = match s["proto"].as_str() {
                Some("unix_stream") => "u_str",
                Some("unix_dgram") => "u_dgr",
                Some("unix_seqpacket") => "u_seq",
                Some(p) => p,
                None => panic!("fd {fd}: socket without proto: {f}"),
            };
            format!("socket/{short}")
        } else {
            assert_eq!(f["socket"], Value::Null, "fd {fd} is no socket");
            kind.to_string()
        };
        *totals.entry(key).or_default() += 1;
    }
    assert_eq!(report["totals"], json!(totals), "totals by kind");

    // What the fixture opened, by name.
    let by_fd = |fd: u64| {
        fds.iter()
            .find(|f| f["fd"] == json!(fd))
            .unwrap_or_else(|| panic!("fd {fd} missing"))
    };
    for m in sc.manifest["fds"].as_array().expect("manifest fds") {
        let name = m["name"].as_str().unwrap();
        let f = by_fd(m["fd"].as_u64().unwrap());
        assert_eq!(f["target"]["kind"], m["kind"], "{name}: kind");
        let flags: Vec<&str> = f["info"]["flags"]
            .as_array()
            .expect("flags")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            flags.contains(&"O_NONBLOCK"),
            m["nonblock"] == json!(true),
            "{name}: O_NONBLOCK in {flags:?}"
        );
        assert_eq!(
            flags.contains(&"O_CLOEXEC"),
            m["cloexec"] == json!(true),
            "{name}: O_CLOEXEC in {flags:?}"
        );
        if m["kind"] == json!("socket") {
            assert_eq!(f["socket"]["proto"], m["proto"], "{name}: protocol");
            assert_eq!(f["socket"]["state"], m["state"], "{name}: state");
            assert_eq!(flags[0], "O_RDWR", "{name}: sockets are O_RDWR");
        }
    }
    let pipe_r = by_fd(sc.num("/fds/1/fd"));
    let pipe_w = by_fd(sc.num("/fds/2/fd"));
    assert_eq!(
        pipe_r["info"]["flags"][0],
        json!("O_RDONLY"),
        "pipe read end"
    );
    assert_eq!(
        pipe_w["info"]["flags"][0],
        json!("O_WRONLY"),
        "pipe write end"
    );
    assert_eq!(
        pipe_r["target"]["inode"], pipe_w["target"]["inode"],
        "both ends of one pipe"
    );
    let ev = by_fd(sc.num("/fds/3/fd"));
    assert_eq!(
        ev["target"],
        json!({"kind": "anon_inode", "name": "eventfd"}),
        "eventfd"
    );
    let lst = by_fd(sc.num("/fds/4/fd"));
    assert_eq!(
        lst["socket"]["local"],
        json!({"addr": "127.0.0.1", "port": 7300})
    );
    assert_eq!(
        lst["info"]["flags"],
        json!(["O_RDWR", "O_NONBLOCK", "O_CLOEXEC"])
    );
    let udp = by_fd(sc.num("/fds/6/fd"));
    assert_eq!(udp["info"]["flags"], json!(["O_RDWR"]), "inheritable UDP");
    assert_eq!(
        udp["socket"]["local"],
        json!({"addr": "127.0.0.1", "port": 7301})
    );
}

#[test]
fn proc_text_names_sockets_pipes_and_files() {
    if root::skip_without_root() {
        return;
    }
    let sc = Scene::start("procfds");
    let pid = sc.pid;
    let run = sockscope(&["proc", &pid.to_string()]);
    run.expect_code(0);
    let out = &run.stdout;
    let line_of = |fd: u64| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(fd.to_string().as_str()))
            .unwrap_or_else(|| panic!("no line for fd {fd}:\n{out}"))
    };
    let lst = line_of(sc.num("/fds/4/fd"));
    let lst_ino = fd_target_inode(pid, sc.num("/fds/4/fd") as u32);
    for want in [
        "tcp".to_string(),
        "LISTEN".into(),
        "127.0.0.1:7300".into(),
        "O_RDWR|O_NONBLOCK|O_CLOEXEC".into(),
        format!("socket:[{lst_ino}]"),
    ] {
        assert!(lst.contains(&want), "listener line lacks {want:?}: {lst}");
    }
    let file = line_of(sc.num("/fds/0/fd"));
    assert!(file.contains("/etc/hostname"), "{file}");
    let ev = line_of(sc.num("/fds/3/fd"));
    assert!(ev.contains("anon_inode:[eventfd]"), "{ev}");
    let n = fd_links(pid).len();
    assert!(
        out.contains(&format!("\n{n} fds: ")),
        "the totals line should count {n} fds:\n{out}"
    );
    assert!(out.contains(&format!("process {pid} python3")), "{out}");
}

#[test]
fn proc_of_a_pid_that_does_not_exist_exits_2() {
    let run = sockscope(&["proc", "999999999"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("999999999"),
        "stderr should name the pid: {}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
    let run = sockscope(&["proc", "999999999", "--json"]);
    run.expect_code(2);
    assert_eq!(run.stdout, "", "no JSON for a missing process");
    let run = sockscope(&["proc", "abc"]);
    run.expect_code(2);
}

/// As root, a refusal to read another process's fd table never ends in
/// "run as root". Without CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (dropped
/// by setpriv), root may not read pid 1's fds: the message says that the
/// capabilities are missing. With them (the tests run as root), pid 1 is
/// either readable or shielded by something else, which the message says.
#[test]
fn root_is_never_told_to_run_as_root() {
    if root::skip_without_root() {
        return;
    }
    use std::process::Command;
    assert!(
        rustix::process::geteuid().is_root(),
        "this test runs as root (scripts/test)"
    );
    let bin = env!("CARGO_BIN_EXE_sockscope");
    let o = Command::new("setpriv")
        .args([
            "--inh-caps=-all",
            "--bounding-set=-sys_ptrace,-dac_read_search",
            "--",
            bin,
            "proc",
            "1",
        ])
        .output()
        .expect("setpriv (util-linux)");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("runs as root but without CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH")
            && !err.contains("run as root"),
        "{err}"
    );
    for args in [&["proc", "1"][..], &["who", "1/0"][..]] {
        let o = Command::new(bin).args(args).output().expect("sockscope");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !err.contains("run as root"),
            "sockscope {}: {err}",
            args.join(" ")
        );
        if o.status.code() == Some(3) {
            assert!(
                err.contains("although sockscope runs with CAP_SYS_PTRACE"),
                "{err}"
            );
        }
    }
}
