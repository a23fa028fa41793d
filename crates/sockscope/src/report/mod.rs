//! Reports: the answers commands give, assembled from model values.
//!
//! A report is a serde struct and the JSON contract of its command (each has
//! a `schema` field naming its layout and version). The text views, the
//! JSON output and the Prometheus exporter all render the same report;
//! none of them recomputes it.
//!
//! - [`listeners`]: every TCP listener's queues, half-open connections,
//!   children and reuseport group, with each namespace's listen counters.
//! - [`stats`]: socket counts by protocol and state, the processes holding
//!   the most sockets, socket memory and the TCP settings that shape queues.
//! - [`labels`]: what a process's cgroup path says about where it runs
//!   (container, Kubernetes pod, systemd unit).
//! - [`export`]: the series `sockscope export` serves, with bounded
//!   cardinality.
//!
//! Each module has a pure builder (model values in, report out: testable on
//! fixtures) and a `collect` that reads the kernel through [`crate::source`].

pub mod export;
pub mod labels;
pub mod listeners;
pub mod stats;
