//! The binary's only unsafe code: libc calls that neither rustix nor
//! signal-hook wraps (the signal mask; glibc's allocator tuning for `top`).
//! Everything else in the crate is safe code (`#![deny(unsafe_code)]` in
//! main.rs).

#![allow(unsafe_code)]

/// Block SIGINT, SIGTERM and SIGHUP in this thread (and in threads and
/// children started from it); returns the mask to restore.
pub fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data that sigemptyset initialises;
    // pthread_sigmask reads `set` and writes `old`, both valid locals.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        old
    }
}

/// Restore a mask from [`block_stop_signals`].
pub fn restore_mask(old: &libc::sigset_t) {
    // SAFETY: restoring a mask obtained from pthread_sigmask.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut());
    }
}

/// Give free heap pages back to the system (glibc).
pub fn malloc_trim() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free heap pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// One malloc arena for the whole process (glibc): a long-lived process
/// whose threads come and go keeps less memory resident.
pub fn one_malloc_arena() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
