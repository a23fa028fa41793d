//! What a scenario sees, read through the sockscope library in the calling
//! thread's network namespace: sockets from sock_diag joined to their owners
//! (every process's fd table), and the namespace's counters and sysctls.

use sockscope::join;
use sockscope::model::Socket;
use sockscope::source::counters::{self, CounterError, Counters};
use sockscope::source::owners::{self, OwnerError};
use sockscope::source::{self, Kind, Request, SourceError};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("reading sockets: {0}")]
    Source(#[from] SourceError),
    #[error("reading owners: {0}")]
    Owners(#[from] OwnerError),
    #[error("reading counters: {0}")]
    Counters(#[from] CounterError),
    #[error("writing sysctl {name}: {source}")]
    Sysctl {
        name: String,
        source: std::io::Error,
    },
}

/// Every socket of `kinds` in this namespace, in every state, with owners.
pub fn sockets(kinds: &[Kind]) -> Result<Vec<Socket>, ObserveError> {
    let mut v = sockets_without_owners(kinds)?;
    let scan = owners::scan("/proc")?;
    join::attach_owners(&mut v, &scan);
    Ok(v)
}

/// Every TCP socket of this namespace, without the owner scan (for polling
/// until a state is reached).
pub fn tcp_quick() -> Result<Vec<Socket>, ObserveError> {
    sockets_without_owners(&[Kind::Tcp])
}

fn sockets_without_owners(kinds: &[Kind]) -> Result<Vec<Socket>, ObserveError> {
    let req = Request::all_states(kinds);
    Ok(source::collect_here(&req)?.sockets)
}

/// Every TCP socket of this namespace with its tcp_info, without owners.
pub fn tcp_info() -> Result<Vec<Socket>, ObserveError> {
    let req = Request::all_states(&[Kind::Tcp]).tcp_info();
    Ok(source::collect_here(&req)?.sockets)
}

/// Every TCP socket of this namespace with its tcp_info and owners.
pub fn tcp_info_owned() -> Result<Vec<Socket>, ObserveError> {
    let mut v = tcp_info()?;
    let scan = owners::scan("/proc")?;
    join::attach_owners(&mut v, &scan);
    Ok(v)
}

/// Every TCP socket of this namespace, with owners.
pub fn tcp() -> Result<Vec<Socket>, ObserveError> {
    sockets(&[Kind::Tcp])
}

/// Every UNIX socket of this namespace, with owners.
pub fn unix() -> Result<Vec<Socket>, ObserveError> {
    sockets(&[Kind::Unix])
}

/// /proc/net/netstat and snmp counters of this namespace.
pub fn netstat() -> Result<Counters, ObserveError> {
    Ok(counters::read_netstat(Path::new("/proc/thread-self/net"))?)
}

/// /proc/net/sockstat of this namespace (`TCP.tw`, `TCP.inuse`, ...).
pub fn sockstat() -> Result<Counters, ObserveError> {
    Ok(counters::read_sockstat(Path::new("/proc/thread-self/net"))?)
}

/// A sysctl as this thread's namespace sees it (net.* keys are per
/// namespace).
pub fn sysctl(name: &str) -> Result<String, ObserveError> {
    Ok(counters::read_sysctl(Path::new("/proc/sys"), name)?)
}

/// Set a sysctl in this thread's namespace.
pub fn set_sysctl(name: &str, value: &str) -> Result<(), ObserveError> {
    let path = Path::new("/proc/sys").join(name.replace('.', "/"));
    std::fs::write(&path, value).map_err(|e| ObserveError::Sysctl {
        name: name.into(),
        source: e,
    })
}
