//! sockscope: what the Linux kernel is doing with your sockets.
//!
//! The library reads the kernel's socket tables (netlink sock_diag, or the
//! text tables under /proc/net), joins them to the processes that hold each
//! socket (the fd tables under /proc/PID/fd), filters them with an ss-like
//! expression language and renders them. Data flows one way:
//!
//! `source` (kernel I/O) → `model` (plain data) → `join` / `query` (pure) →
//! `view` (text, JSON); `report` assembles what a command answers.
//!
//! Nothing here changes kernel state.

pub mod abi;
pub mod explain;
pub mod join;
pub mod model;
pub mod query;
pub mod report;
pub mod source;
pub mod view;

pub use model::*;
