//! Signal plumbing for the server.
//!
//! Event loops (the epoll workers, the fork parent, the prefork master)
//! keep SIGTERM, SIGINT, SIGHUP and SIGCHLD blocked and read them from a
//! signalfd, so a signal is an ordinary event and can never be lost between
//! a check and a blocking call. A process that blocks in read(2) on one
//! connection (a fork child, the single model while it serves) instead
//! unblocks them with a handler that only sets [`STOP`]: the blocking call
//! returns EINTR and the loop sees the flag.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the handler when SIGTERM, SIGINT or SIGHUP arrives.
pub static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_sig: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Install the STOP handler for SIGTERM, SIGINT and SIGHUP, without
/// SA_RESTART so that a blocked read or accept returns EINTR.
pub fn install_stop_handler() {
    // SAFETY: the handler only stores to an atomic (async-signal-safe).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_stop as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaction(s, &sa, std::ptr::null_mut());
        }
    }
}

/// SIGPIPE ignored: writing to a connection the client closed is an EPIPE
/// error, not the end of the server (sendfile has no MSG_NOSIGNAL).
pub fn ignore_sigpipe() {
    // SAFETY: setting a disposition to SIG_IGN.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// The signals a process stopping on request should let through while it
/// blocks on one connection: TERM, INT, HUP (not CHLD).
pub fn stop_sigset() -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Bit of `sig` in a mask from [`crate::sys::read_signals`].
pub fn bit(sig: i32) -> u64 {
    1u64 << sig
}

/// The bits of the signals that mean "stop".
pub fn stop_bits() -> u64 {
    bit(libc::SIGTERM) | bit(libc::SIGINT) | bit(libc::SIGHUP)
}

/// Ask the kernel to send `sig` to this process when its parent dies, and
/// report whether the parent is already gone (then the caller should stop).
pub fn die_with_parent(sig: i32, parent: i32) -> bool {
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0);
        libc::getppid() != parent
    }
}

/// Exit immediately, without running destructors or flushing stdio buffers
/// copied from the parent at fork.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe to call.
    unsafe { libc::_exit(code) }
}
