//! `sockscope ls` without privilege: run as user nobody (via setpriv) inside
//! the fixture's namespace, it still lists every socket (sock_diag and
//! /proc/net need no privilege), shows no owners it cannot see, exits 0,
//! and says once on stderr that it could not read other processes' fd
//! tables for lack of CAP_SYS_PTRACE. Entering another namespace without
//! CAP_SYS_ADMIN is exit 3 with a message naming it.

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
