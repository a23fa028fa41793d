//! Hostile input from other users must not reach the terminal raw, and must
//! not break a listing: a process named with a terminal escape sequence, a
//! UNIX socket whose path holds a newline (forging an `ls -x` row), abstract
//! names holding NUL and newline, a process name that is not UTF-8, control
//! characters typed into a filter. Also: ss's default state set (no
//! SYN-RECV), and namespaces that --all-netns could not look at.

#[path = "common/root.rs"]
mod root;

mod common;

use common::{Scene, sockscope};
use serde_json::Value;
use std::time::Duration;

const HOSTILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hostile.py");

fn start() -> Scene {
    let manifest = std::env::temp_dir().join(format!(
        "sockscope-hostile-manifest-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_file(&manifest);
    let m = manifest.to_str().unwrap().to_string();
    let mut sc = Scene::start_command(&["python3", HOSTILE, &m], "its manifest", |_| {
        std::path::Path::new(&m).exists()
    });
    let text = std::fs::read_to_string(&manifest).unwrap();
    let _ = std::fs::remove_file(&manifest);
    sc.manifest = serde_json::from_str(&text).unwrap();
    // Let the child's listener settle (it is up before the manifest).
    std::thread::sleep(Duration::from_millis(50));
    sc
}

/// No byte that a terminal obeys: ESC, BEL, other C0 controls but newline
/// and tab, DEL, C1.
fn assert_inert(what: &str, text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| {
            (c.is_control() && c != '\n' && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c)
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: raw control characters {bad:?} in:\n{text}"
    );
}

fn inode(sc: &Scene, name: &str) -> u64 {
    sc.manifest["inodes"][name].as_u64().unwrap()
}

#[test]
fn unix_names_are_escaped_and_never_forge_rows() {
    if root::skip_without_root() {
        return;
    }
    let sc = start();
    let nl = inode(&sc, "newline_path");
    for source in ["auto", "proc"] {
        let run = sc.sockscope("ls", &["-xap", "--source", source]);
        run.expect_code(0);
        assert_inert(&format!("ls -xap --source {source}"), &run.stdout);
        // The newline-holding path is one row, shown escaped.
        let rows: Vec<&str> = run
            .stdout
            .lines()
            .filter(|l| l.contains(&format!(" {nl} ")) || l.ends_with(&format!(" {nl}")))
            .collect();
        assert_eq!(rows.len(), 1, "source {source}:\n{}", run.stdout);
        assert!(
            rows[0].contains("a\\nu_str LISTEN 0 0 @x 1 * 0 sshd(pid=1,fd=3)"),
            "source {source}: {}",
            rows[0]
        );
        // No forged row: only the real listener mentions sshd.
        assert_eq!(
            run.stdout
                .lines()
                .filter(|l| l.contains("sshd(pid=1"))
                .count(),
            1,
            "{}",
            run.stdout
        );
        assert!(
            run.stdout.contains("\\e]0;PWNED\\x07(pid="),
            "process name not shown escaped:\n{}",
            run.stdout
        );
        // Abstract names: every NUL is @, in both sources.
        assert!(
            run.stdout.contains("@ab@c "),
            "source {source}:\n{}",
            run.stdout
        );
        assert!(
            run.stdout.contains("@x\\ny "),
            "source {source}:\n{}",
            run.stdout
        );
        assert!(
            run.stderr.is_empty() || !run.stderr.contains("cannot parse"),
            "{}",
            run.stderr
        );
    }
    // JSON stays exact: the real bytes.
    for source in ["auto", "proc"] {
        let list = sc
            .sockscope("ls", &["-xap", "--json", "--source", source])
            .json_array();
        let path = |ino: u64| -> Option<String> {
            list.iter()
                .find(|v| v["inode"].as_u64() == Some(ino))
                .and_then(|v| v["local"]["path"].as_str().map(str::to_string))
        };
        assert_eq!(
            path(nl).as_deref(),
            sc.manifest["path"].as_str(),
            "source {source}"
        );
        assert_eq!(path(inode(&sc, "abstract_nul")).as_deref(), Some("@ab@c"));
        assert_eq!(
            path(inode(&sc, "abstract_newline")).as_deref(),
            Some("@x\ny")
        );
        // /proc/net/unix does not list peers: unknown is null, not 0.
        let dgram = list
            .iter()
            .find(|v| v["inode"].as_u64() == Some(inode(&sc, "abstract_nul")))
            .unwrap();
        if source == "proc" {
            assert!(dgram["peer"].is_null(), "{dgram}");
        } else {
            assert_eq!(dgram["peer"]["inode"], 0, "{dgram}");
        }
        let tcp = list
            .iter()
            .find(|v| v["inode"].as_u64() == Some(nl))
            .unwrap();
        assert_eq!(
            tcp["owners"][0]["comm"].as_str(),
            Some("\u{1b}]0;PWNED\u{7}")
        );
    }
}

#[test]
fn every_text_view_escapes_process_names() {
    if root::skip_without_root() {
        return;
    }
    let sc = start();
    let pid = sc.pid.to_string();
    let runs = [
        sc.sockscope("ls", &["-tlp"]),
        sc.sockscope("listeners", &[]),
        sc.sockscope("who", &[":7800"]),
        sockscope(&["who", &format!("{pid}/{}", sc.num("/tcp_fd"))]),
        sockscope(&["proc", &pid]),
        sc.sockscope("stats", &[]),
    ];
    for r in &runs {
        assert!(
            matches!(r.code(), Some(0 | 1)),
            "{}: {:?}\n{}",
            r.cmdline,
            r.code(),
            r.stderr
        );
        assert_inert(&r.cmdline, &r.stdout);
        assert_inert(&r.cmdline, &r.stderr);
    }
    assert!(
        runs[0].stdout.contains("\\e]0;PWNED\\x07(pid="),
        "{}",
        runs[0].stdout
    );
    assert!(
        runs[2].stdout.contains("\\e]0;PWNED\\x07"),
        "{}",
        runs[2].stdout
    );
}

#[test]
fn a_process_name_that_is_not_utf8_is_read_and_shown() {
    if root::skip_without_root() {
        return;
    }
    let sc = start();
    let child = sc.manifest["child"].as_u64().unwrap().to_string();
    let run = sockscope(&["proc", &child]);
    run.expect_code(0);
    assert!(run.stdout.contains("nginx\u{fffd}"), "{}", run.stdout);
    assert_inert("proc", &run.stdout);
    let json = sockscope(&["proc", &child, "--json"]);
    json.expect_code(0);
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["process"]["comm"].as_str(), Some("nginx\u{fffd}"), "{v}");
    // who finds the live process behind :7801 (it does not "exit").
    let who = sc.sockscope("who", &[":7801"]);
    who.expect_code(0);
    assert!(
        !who.stdout.contains("has exited"),
        "who says the live process exited:\n{}",
        who.stdout
    );
    assert!(
        who.stdout.contains(&format!("process {child} nginx")),
        "{}",
        who.stdout
    );
}

#[test]
fn control_characters_in_a_filter_are_echoed_escaped() {
    let run = sockscope(&["ls", "comm", "=", "\u{1b}[2J", "sprt", "=", "1"]);
    run.expect_code(2);
    assert_inert("filter error", &run.stderr);
    assert!(run.stderr.contains("\\e[2J"), "{}", run.stderr);
}

#[test]
fn half_open_connections_are_not_in_the_default_set() {
    if root::skip_without_root() {
        return;
    }
    let sc = Scene::start("halfopen");
    let port = sc.num("/port");
    let syn_rows = |args: &[&str]| -> usize {
        let mut a = vec!["-tn", "--json"];
        a.extend_from_slice(args);
        sc.sockscope("ls", &a)
            .json_array()
            .iter()
            .filter(|v| v["state"] == "syn-recv" && v["local"]["port"].as_u64() == Some(port))
            .count()
    };
    assert_eq!(syn_rows(&[]), 0, "ss -tn shows no SYN-RECV by default");
    assert_eq!(syn_rows(&["-a"]), 3);
    assert_eq!(syn_rows(&["state", "syn-recv"]), 3);
    // ss agrees.
    let ss = sc.nsenter(&["ss", "-tnH"]);
    ss.expect_code(0);
    assert!(!ss.stdout.contains("SYN-RECV"), "{}", ss.stdout);
    let ours = sc.sockscope("ls", &["-tnH"]);
    assert!(!ours.stdout.contains("SYN-RECV"), "{}", ours.stdout);
}

#[test]
fn all_netns_says_which_namespaces_it_could_not_look_at() {
    if root::skip_without_root() {
        return;
    }
    common::require_root();
    // A namespace that only root's processes use.
    let _sc = start();
    let run = common::run_cmd(
        "setpriv",
        &[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            common::BIN,
            "ls",
            "--all-netns",
            "-tl",
        ],
    );
    run.expect_code(0);
    assert!(
        run.stderr
            .contains("could not look at the network namespace of"),
        "nothing said about the namespaces left out:\n{}",
        run.stderr
    );
}
