//! Signal plumbing for the server.
//!
//! Every process of the server (the epoll workers, the fork parent and its
//! children, the prefork master, the single model) keeps SIGTERM, SIGINT,
//! SIGHUP and SIGCHLD blocked and reads them from a signalfd that it polls
//! with its sockets, so a signal is an ordinary event and can never be lost
//! between a check and a blocking call. A fork child keeps the parent's
//! signalfd: after fork it reads the signals sent to the child.

/// SIGPIPE ignored: writing to a connection the client closed is an EPIPE
/// error, not the end of the server (sendfile has no MSG_NOSIGNAL).
pub fn ignore_sigpipe() {
    // SAFETY: setting a disposition to SIG_IGN.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
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
