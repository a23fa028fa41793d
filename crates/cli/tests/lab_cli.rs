//! `sockscope lab` arguments and errors: the scenario list, unknown
//! scenarios and models, bad directories, and a port already taken.

#[path = "common/root.rs"]
mod root;

#[path = "fixtures/lab/support.rs"]
mod support;

use support::sockscope;

const NAMES: [&str; 14] = [
    "handshake",
    "backlog",
    "syn-queue",
    "reuseport",
    "time-wait",
    "close-wait",
    "refused",
    "fork-server",
    "unix",
    "fin-close",
    "abort",
    "nagle",
    "zero-window",
    "mss",
];

#[test]
fn list_names_every_scenario_in_order() {
    let (code, out, err) = sockscope(&["lab", "list"]);
    assert_eq!(code, 0, "{err}");
    let names: Vec<&str> = out
        .lines()
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(names, NAMES);
    let (code, out, _) = sockscope(&["lab", "list", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, NAMES);
    assert!(v[1]["summary"].as_str().unwrap().contains("N+1"));
}

#[test]
fn unknown_scenario_is_a_usage_error_listing_the_names() {
    let (code, out, err) = sockscope(&["lab", "run", "no-such"]);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(
        err.trim_end(),
        format!(
            "sockscope: no scenario named 'no-such'; there are: {}",
            NAMES.join(", ")
        )
    );
    assert_eq!(out, "");
}

#[test]
fn bad_serve_arguments_are_usage_errors() {
    let (code, _, err) = sockscope(&["lab", "serve", "single", "3"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("the single model takes no worker count"),
        "{err}"
    );
    let (code, _, err) = sockscope(&["lab", "serve", "threads"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = sockscope(&[
        "lab",
        "serve",
        "epoll",
        "--root",
        "/nonexistent/sockscope-lab",
        "--addr",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("cannot serve directory /nonexistent/sockscope-lab"),
        "{err}"
    );
    let (code, _, err) = sockscope(&["lab", "serve", "prefork", "0", "--addr", "127.0.0.1:0"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("the number of workers must be 1 to 256"),
        "{err}"
    );
    let (code, _, err) = sockscope(&["lab", "serve", "--header-timeout", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("--header-timeout"), "{err}");
    for (opt, v) in [
        ("--send-timeout", "0"),
        ("--grace", "NaN"),
        ("--grace", "-1"),
    ] {
        let (code, _, err) = sockscope(&["lab", "serve", &format!("{opt}={v}")]);
        assert_eq!(code, 2, "{opt} {v}: {err}");
        assert!(
            err.contains(&format!("{opt} must be a number of seconds")),
            "{err}"
        );
    }
}

/// A root directory whose name holds terminal escapes is printed escaped,
/// in the error and in the line saying what is served.
#[test]
fn root_paths_are_escaped() {
    if root::skip_without_root() {
        return;
    }
    use std::io::{BufRead, BufReader};
    let (code, _, err) = sockscope(&[
        "lab",
        "serve",
        "epoll",
        "--root",
        "/nonexistent/\x1b]0;owned\x07\x1b[2J",
        "--addr",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains('\x1b') && !err.contains('\x07'), "{err:?}");
    assert!(
        err.contains("cannot serve directory /nonexistent/\\e]0;owned\\x07\\e[2J"),
        "{err:?}"
    );

    support::require_root();
    let dir = support::TempDir::new("esc");
    let root = dir.0.join("www\x1b[31m\u{202e}");
    std::fs::create_dir(&root).unwrap();
    let mut child = std::process::Command::new("unshare")
        .args([
            "-n",
            "--",
            support::BIN,
            "lab",
            "serve",
            "epoll",
            "--addr",
            "127.0.0.1:0",
            "--root",
        ])
        .arg(&root)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let r = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
    let _ = child.kill();
    let _ = child.wait();
    r.unwrap();
    assert!(line.contains(" serving "), "{line:?}");
    assert!(
        !line.contains('\x1b') && !line.contains('\u{202e}'),
        "{line:?}"
    );
    assert!(line.contains("www\\e[31m\\u{202e} on http://"), "{line:?}");
}

#[test]
fn a_port_in_use_is_named_with_the_fix() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let (code, _, err) = sockscope(&["lab", "serve", "single", "--addr", &addr, "--root", "/"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("cannot listen on {addr}: bind: ")),
        "{err}"
    );
    assert!(err.contains("sockscope ls -tlp"), "{err}");
}

#[test]
fn without_privilege_run_says_to_use_root_and_exits_3() {
    if root::skip_without_root() {
        return;
    }
    support::require_root();
    let o = std::process::Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args([support::BIN, "lab", "run", "handshake"])
        .output()
        .expect("run setpriv");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("unshare(CLONE_NEWNET)"), "{err}");
    assert!(err.contains("run it as root"), "{err}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "");
}
