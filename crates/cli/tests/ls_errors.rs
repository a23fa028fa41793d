//! `sockscope ls` on bad input: a filter that does not parse (exit 2 with
//! the filter echoed and a caret under the offending token), an unknown
//! flag (exit 2), a namespace name that does not exist (exit 2 or 3, naming
//! /run/netns/NAME) and a pid that does not exist (exit 2, naming the pid).
//! None of them may print rows on stdout.

#[path = "common/root.rs"]
mod root;

mod common;

use common::{Run, require_root, sockscope};

fn no_rows(run: &Run) {
    assert!(
        run.stdout.trim().is_empty(),
        "`{}` printed on stdout:\n{}",
        run.cmdline,
        run.stdout
    );
}

/// The column of the first `^` on the line after the one that echoes
/// `filter`, relative to where `filter` starts on the echo line.
fn caret_offset(stderr: &str, filter: &str) -> usize {
    let lines: Vec<&str> = stderr.lines().collect();
    let (i, col) = lines
        .iter()
        .enumerate()
        .find_map(|(i, l)| l.find(filter).map(|c| (i, c)))
        .unwrap_or_else(|| panic!("stderr does not echo the filter {filter:?}:\n{stderr}"));
    let caret_line = lines
        .get(i + 1)
        .unwrap_or_else(|| panic!("no line after the echoed filter:\n{stderr}"));
    assert!(
        caret_line.trim_start().starts_with('^'),
        "the line under the filter should be a caret line, got {caret_line:?}:\n{stderr}"
    );
    let caret = caret_line
        .find('^')
        .unwrap_or_else(|| panic!("no caret:\n{stderr}"));
    assert!(caret >= col, "caret left of the filter:\n{stderr}");
    caret - col
}

#[test]
fn bad_filter_points_at_the_bad_token() {
    if root::skip_without_root() {
        return;
    }
    require_root();
    let filter = "dport = :80 and bogus";
    let run = sockscope(&["ls", "-a", filter]);
    run.expect_code(2);
    no_rows(&run);
    assert_eq!(
        caret_offset(&run.stderr, filter),
        filter.find("bogus").unwrap_or_default(),
        "caret under `bogus`:\n{}",
        run.stderr
    );
}

#[test]
fn bad_filter_unclosed_parenthesis() {
    if root::skip_without_root() {
        return;
    }
    require_root();
    let filter = "( sport = :22 or dport = :22";
    let run = sockscope(&["ls", "-a", filter]);
    run.expect_code(2);
    no_rows(&run);
    // The error is at the end of the input, where `)` is missing, or at the
    // `(` left open.
    let off = caret_offset(&run.stderr, filter);
    assert!(
        off == 0 || off == filter.len(),
        "caret at {off}, expected 0 or {}:\n{}",
        filter.len(),
        run.stderr
    );
}

#[test]
fn bad_port_and_state_names() {
    if root::skip_without_root() {
        return;
    }
    require_root();
    for (filter, bad) in [
        ("state established dport = :99999", ":99999"),
        ("state nosuchstate", "nosuchstate"),
    ] {
        let run = sockscope(&["ls", filter]);
        run.expect_code(2);
        no_rows(&run);
        assert_eq!(
            caret_offset(&run.stderr, filter),
            filter.find(bad).unwrap_or_default(),
            "caret under {bad:?} in {filter:?}:\n{}",
            run.stderr
        );
    }
}

#[test]
fn bad_flag() {
    if root::skip_without_root() {
        return;
    }
    require_root();
    let run = sockscope(&["ls", "--no-such-flag"]);
    run.expect_code(2);
    no_rows(&run);
    assert!(
        run.stderr.contains("--no-such-flag"),
        "stderr names the flag: {}",
        run.stderr
    );
    let run = sockscope(&["ls", "--source", "carrier-pigeon"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("carrier-pigeon"),
        "stderr names the bad value: {}",
        run.stderr
    );
}

#[test]
fn unknown_named_netns() {
    if root::skip_without_root() {
        return;
    }
    require_root();
    let run = sockscope(&["ls", "-a", "--netns", "nosuchns"]);
    let code = run.code();
    assert!(
        code == Some(2) || code == Some(3),
        "`{}` exited {code:?}, expected 2 or 3; stderr: {}",
        run.cmdline,
        run.stderr
    );
    no_rows(&run);
    assert!(
        run.stderr.contains("/run/netns/nosuchns"),
        "stderr names /run/netns/nosuchns: {}",
        run.stderr
    );
}

#[test]
fn unknown_netns_pid() {
    if root::skip_without_root() {
        return;
    }
    require_root();
    let run = sockscope(&["ls", "-a", "--netns-pid", "999999999"]);
    run.expect_code(2);
    no_rows(&run);
    assert!(
        run.stderr.contains("999999999"),
        "stderr names the pid: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("panicked"),
        "a clean error, not a panic: {}",
        run.stderr
    );
}

#[test]
fn conflicting_netns_options() {
    if root::skip_without_root() {
        return;
    }
    require_root();
    let run = sockscope(&["ls", "--netns", "a", "--netns-pid", "1"]);
    run.expect_code(2);
    no_rows(&run);
}
