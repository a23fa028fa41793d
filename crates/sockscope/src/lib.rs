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
