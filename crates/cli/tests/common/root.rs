//! Tests that need root, and a contributor who is not.
//!
//! A test that needs root (network namespaces, BPF, every process's fd
//! table, raw sockets) starts with
//!
//! ```ignore
//! if root::skip_without_root() {
//!     return;
//! }
//! ```
//!
//! As root it runs. As anyone else, plain `cargo test` passes it over and
//! says so: `SKIPPED (needs root): NAME` on stderr (written past the test
//! harness's capture, so it shows in a plain run), and the name is appended
//! to `target/tmp/skipped-root-tests.txt` when that is writable. `scripts/test` sets `SOCKSCOPE_TESTS_REQUIRE_ROOT=1`: then a test
//! that would be skipped fails instead, so CI runs every test or fails.
//!
//! Included with `#[path = "common/root.rs"] mod root;` (it needs nothing
//! else from `common`).

#![allow(dead_code)]

/// The variable under which a skip is a failure (scripts/test sets it).
pub const REQUIRE_ROOT: &str = "SOCKSCOPE_TESTS_REQUIRE_ROOT";

/// Where skipped tests are listed.
pub const SKIPPED_LIST: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/skipped-root-tests.txt");

/// True when this process is root with root's capabilities (a root user
/// whose capabilities were dropped cannot build namespaces either).
pub fn is_root() -> bool {
    // CAP_NET_ADMIN (12), CAP_SYS_PTRACE (19), CAP_SYS_ADMIN (21):
    // include/uapi/linux/capability.h.
    let needed = (1u64 << 12) | (1u64 << 19) | (1u64 << 21);
    rustix::process::geteuid().is_root()
        && std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("CapEff:"))
                    .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            })
            .is_some_and(|caps| caps & needed == needed)
}

/// The running test's name (libtest names each test's thread after it).
fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("(unnamed test)")
        .to_string()
}

/// Whether the calling test must stop here: false as root; as anyone
/// else, true after naming the test as skipped, or a panic under
/// `SOCKSCOPE_TESTS_REQUIRE_ROOT=1`.
pub fn skip_without_root() -> bool {
    if is_root() {
        return false;
    }
    let name = format!("{}::{}", env!("CARGO_CRATE_NAME"), test_name());
    assert!(
        std::env::var_os(REQUIRE_ROOT).is_none_or(|v| v.is_empty() || v == "0"),
        "{name} needs root (with CAP_SYS_ADMIN, CAP_NET_ADMIN and CAP_SYS_PTRACE) and \
         {REQUIRE_ROOT} is set (scripts/test), so it may not be skipped: run the tests as root"
    );
    // Straight to fd 2, not through eprintln!: the test harness captures
    // eprintln! of a passing test, and the skip must be seen.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED (needs root): {name}");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(SKIPPED_LIST)
    {
        let _ = writeln!(f, "{name}");
    }
    true
}
