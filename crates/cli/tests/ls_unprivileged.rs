//! `sockscope ls` without privilege: run as user nobody (via setpriv) inside
//! the fixture's namespace, it still lists every socket (sock_diag and
//! /proc/net need no privilege), shows no owners it cannot see, exits 0,
//! and says once on stderr that it could not read other processes' fd
//! tables for lack of CAP_SYS_PTRACE. Entering another namespace without
//! CAP_SYS_ADMIN is exit 3 with a message naming it.

#[path = "common/root.rs"]
mod root;

mod common;

use common::{BIN, Fixture, Run, assert_same_keys, field, run_cmd};
use serde_json::json;

const DROP: [&str; 4] = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
];

/// `sockscope <args>` as nobody, inside the fixture's network namespace.
fn as_nobody_in_fixture(fx: &Fixture, args: &[&str]) -> Run {
    let mut cmd: Vec<&str> = DROP.to_vec();
    cmd.push(BIN);
    cmd.extend_from_slice(args);
    fx.nsenter(&cmd)
}

fn check_denied_note(run: &Run) {
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("CAP_SYS_PTRACE"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "stderr must say exactly once that fd tables could not be read, naming \
         CAP_SYS_PTRACE; stderr was:\n{}",
        run.stderr
    );
}

#[test]
fn nobody_lists_every_socket_without_owners() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    // Sanity: the drop really happens.
    let id = fx.nsenter(&[DROP[0], DROP[1], DROP[2], DROP[3], "id", "-u"]);
    id.expect_code(0);
    assert_eq!(id.stdout.trim(), "65534");
    let exec = fx.nsenter(&[DROP[0], DROP[1], DROP[2], DROP[3], "test", "-x", BIN]);
    assert_eq!(
        exec.code(),
        Some(0),
        "user nobody cannot execute {BIN}: put the target directory where every \
         parent directory is world-searchable"
    );

    let run = as_nobody_in_fixture(&fx, &["ls", "-a", "-n", "-p", "--json"]);
    run.expect_code(0);
    let list = run.json_array();
    let all = fx.manifest.keys_where(|_| true);
    assert_same_keys("ls -a as nobody", &fx, &list, &all);
    for v in &list {
        assert_eq!(
            field(v, "owners"),
            &json!([]),
            "nobody cannot see root's fds: {v}"
        );
    }
    let lst = list
        .iter()
        .find(|v| field(v, "inode") == &json!(fx.manifest.get("tcp4-listener").inode))
        .expect("listener listed");
    assert_eq!(
        (field(lst, "recv_q"), field(lst, "send_q")),
        (&json!(5), &json!(7))
    );
    check_denied_note(&run);
}

#[test]
fn nobody_table_output() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    let run = as_nobody_in_fixture(&fx, &["ls", "-t", "-l", "-n", "-p"]);
    run.expect_code(0);
    for want in ["127.0.0.1:5000", "127.0.0.1:5008"] {
        assert!(run.stdout.contains(want), "no {want} row:\n{}", run.stdout);
    }
    check_denied_note(&run);
}

#[test]
fn nobody_cannot_enter_another_namespace() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    let pid = fx.pid_str();
    let mut cmd: Vec<&str> = DROP.to_vec();
    cmd.extend_from_slice(&[BIN, "ls", "-a", "--netns-pid", &pid]);
    let run = run_cmd(cmd[0], &cmd[1..]);
    run.expect_code(3);
    assert!(
        run.stderr.contains("CAP_SYS_ADMIN"),
        "stderr should name CAP_SYS_ADMIN: {}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "nothing on stdout: {}", run.stdout);
}

/// The fallbacks an unprivileged user gets, chosen without being asked:
/// sockets from netlink sock_diag, owners from the /proc walk instead of
/// the BPF iterator (which needs CAP_BPF and CAP_PERFMON), named by `-v`;
/// the walk still finds the owner of a socket the user holds itself. As
/// root the iterator is used and no fallback is named.
#[test]
fn nobody_gets_netlink_and_the_proc_walk_and_sees_its_own_sockets() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    let script = r#"
import json, socket, subprocess, sys, os
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
port = s.getsockname()[1]
r = subprocess.run([sys.argv[1], "ls", "-tlnp", "-v", "--json", f"sport = :{port}"],
                   capture_output=True, text=True)
print(json.dumps({"pid": os.getpid(), "port": port, "code": r.returncode,
                  "stdout": r.stdout, "stderr": r.stderr}))
"#;
    // The system's python: a per-user install (pyenv shims under /root)
    // is not executable by nobody.
    let mut cmd: Vec<&str> = DROP.to_vec();
    cmd.extend_from_slice(&["/usr/bin/python3", "-c", script, BIN]);
    let run = fx.nsenter(&cmd);
    run.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).expect("script output");
    let err = v["stderr"].as_str().unwrap_or_default();
    assert_eq!(v["code"], json!(0), "sockscope as nobody: {v}");
    assert!(
        err.contains("owners: walked /proc (the BPF owner iterator needs CAP_BPF and CAP_PERFMON)"),
        "-v names the /proc walk and why: {err}"
    );
    let list: Vec<serde_json::Value> =
        serde_json::from_str(v["stdout"].as_str().unwrap_or_default()).expect("--json");
    assert_eq!(list.len(), 1, "the one listener: {list:?}");
    assert_eq!(field(&list[0], "source"), &json!("netlink"));
    let owners = field(&list[0], "owners").as_array().expect("owners");
    assert_eq!(
        owners.len(),
        1,
        "nobody's own socket has its owner: {list:?}"
    );
    assert_eq!(owners[0]["pid"], v["pid"]);

    let root = fx.ls(&["-tlnp", "-v"]);
    root.expect_code(0);
    assert!(
        !root.stderr.contains("owners: walked /proc"),
        "as root the BPF iterator finds the owners: {}",
        root.stderr
    );
    assert!(root.stdout.contains("python3(pid="), "{}", root.stdout);
}
