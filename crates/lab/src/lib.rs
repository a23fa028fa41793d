//! The lab: a web server built directly on socket syscalls, and scripted
//! experiments that make the kernel show what it does with sockets.
//!
//! - [`serve`] is `sockscope lab serve`: an HTTP/1.1 static-file server in
//!   five process models (one connection at a time, fork per connection,
//!   prefork, SO_REUSEPORT workers, one epoll loop), every syscall optionally
//!   traced as the seeds narrate them.
//! - [`scenario`] is `sockscope lab list` / `sockscope lab run`: each
//!   scenario runs in a fresh private network namespace, builds a situation
//!   with real sockets (a full accept queue, half-open connections, TIME-WAIT,
//!   CLOSE-WAIT, ...), observes it through the sockscope library and checks
//!   the kernel state it expects.
//!
//! Layers, as in the rest of sockscope: [`http`] and [`target`] are pure
//! parsing, [`sys`] is the one place syscalls are made (and traced),
//! [`conn`] is the per-connection state machine, [`serve`] composes them
//! into process models. [`netns`] creates the private namespaces the
//! scenarios run in, [`observe`] reads them through the library, and
//! [`report`] holds and renders what a scenario saw; [`wire`] reads the
//! TCP segments a scenario's namespace put on the wire.

// The lab is made of raw system calls (its purpose): unsafe code is
// allowed in the modules that make them, each call with a SAFETY comment,
// and denied everywhere else.
#![deny(unsafe_code)]

pub mod abi;
#[allow(unsafe_code)]
pub mod conn;
pub mod http;
#[allow(unsafe_code)]
pub mod netns;
pub mod observe;
pub mod report;
#[allow(unsafe_code)]
pub mod scenario;
#[allow(unsafe_code)]
pub mod serve;
#[allow(unsafe_code)]
pub mod signals;
#[allow(unsafe_code)]
pub mod sys;
pub mod target;
#[allow(unsafe_code)]
pub mod trace;
pub mod wire;
