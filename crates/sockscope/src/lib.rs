//! sockscope: what the Linux kernel is doing with your sockets.
//!
//! The library reads the kernel's socket tables (netlink sock_diag, or the
//! text tables under /proc/net), joins them to the processes that hold each
//! socket (the fd tables under /proc/PID/fd), filters them with an ss-like
//! expression language and renders them. Data flows one way:
//!
//! `source` (kernel I/O) → `model` (plain data) → `join` / `query` (pure) →
//! `snapshot` (sources and join together) → `explain` / `report` (the
//! answers commands give) → `view` (text, JSON). No module refers to a
//! layer above its own (tests/layers.rs checks it; docs/architecture.md).
//!
//! Nothing here changes kernel state.

// Unsafe code is fenced: only the modules that make a system call no safe
// wrapper offers (bpf(2), kcmp(2), the SIOCGSKNS ioctl) allow it, each call
// with its SAFETY comment.
#![deny(unsafe_code)]

pub mod abi;
pub mod error;
pub mod escape;
pub mod explain;
pub mod join;
pub mod live;
pub mod model;
pub mod query;
pub mod report;
pub mod snapshot;
pub mod source;
pub mod view;

pub use model::*;

/// For tests that need root (BPF, namespaces): true as root. Otherwise the
/// test is skipped, saying so past the harness's capture (as the CLI's
/// tests do: crates/cli/tests/common/root.rs), unless
/// SOCKSCOPE_TESTS_REQUIRE_ROOT is set (scripts/test sets it), which makes
/// the skip a failure.
#[cfg(test)]
pub(crate) fn root_or_skip(name: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("SOCKSCOPE_TESTS_REQUIRE_ROOT").is_none_or(|v| v.is_empty() || v == "0"),
        "{name} needs root and SOCKSCOPE_TESTS_REQUIRE_ROOT is set"
    );
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("SKIPPED (needs root): sockscope::{name}\n").as_bytes(),
    );
    false
}
