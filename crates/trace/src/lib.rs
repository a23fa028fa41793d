//! sockscope-trace: a live timeline of what the kernel does to each
//! connection, from tracepoints through eBPF, with the process behind it.
//!
//! Data flows one way:
//!
//! - `bpf/*.c` (one small file per concern) write versioned records to a
//!   ring buffer: TCP state changes, retransmits, resets, socket
//!   destruction, drops, and the socket syscalls and data of processes;
//! - [`abi`] decodes a record, [`loader`] loads the programs (aya's
//!   pure-Rust loader, the objects committed and embedded; [`kfunc`]
//!   links their kfunc calls first);
//! - [`event`] turns a record into an [`event::Event`] with names and units;
//! - [`track`] joins events to connections and connections to processes
//!   (pure, testable on fixtures), [`timewait`] checks inferred TIME-WAITs
//!   against the socket table; [`tracefs`] mounts tracefs privately when
//!   the host has not, for the per-syscall tracepoints;
//! - [`session`] runs it all and hands events and finished connections to
//!   a sink; [`view`] renders them (timeline, sequence diagrams as text
//!   and SVG, summary).

// The one unsafe call (unshare, in tracefs) is allowed where it is made.
#![deny(unsafe_code)]

pub mod abi;
pub mod event;
pub mod kfunc;
pub mod loader;
pub mod names;
pub mod portcount;
pub mod session;
pub mod timewait;
pub mod tracefs;
pub mod track;
pub mod view;
