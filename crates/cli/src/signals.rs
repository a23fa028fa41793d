//! SIGINT and SIGTERM, for every command: the one place the binary handles
//! signals.
//!
//! The long-running commands (`trace`, `capture` live, `export`, `top`)
//! stop cleanly instead of dying: the signal sets one flag (through the
//! `signal-hook` crate, whose handler only stores to an atomic) and the
//! command's loop, which never blocks for longer than a fraction of a
//! second, sees it and finishes its output. `lab run` instead *defers*
//! the signals while a scenario cleans up ([`deferred`]).
//!
//! Not here: the lab's web server (`sockscope_lab::signals`) reads its
//! signals from a signalfd that it polls with its sockets, in every process
//! it forks; that is the server's design (a signal is an ordinary event
//! and cannot be lost between a check and a blocking call), not a
//! duplicate of this.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Route SIGINT and SIGTERM to the stop flag (once; later calls return the
/// same flag), and return it.
pub fn install() -> &'static AtomicBool {
    STOP.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            if let Err(e) = signal_hook::flag::register(sig, flag.clone()) {
                // Then the signal keeps its default action: it ends the
                // process, as it would without sockscope's handling.
                eprintln!("sockscope: cannot handle signal {sig}: {e}");
            }
        }
        flag
    })
}

/// A stop was asked for (SIGINT or SIGTERM since [`install`]).
pub fn stop_requested() -> bool {
    STOP.get().is_some_and(|f| f.load(Ordering::Relaxed))
}

/// Sleep up to `d`, waking early on a signal; true if one came.
pub fn wait(d: Duration) -> bool {
    install();
    let end = Instant::now() + d;
    while !stop_requested() {
        let now = Instant::now();
        if now >= end {
            return false;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
    true
}

/// Run `f` with SIGINT, SIGTERM and SIGHUP blocked, then unblock them: a
/// signal that came meanwhile takes effect (its default action) only once
/// `f` is done. Blocking, not a handler: the mask is inherited by the
/// threads and the child processes `f` starts (servers, nft), so Ctrl-C
/// at the terminal, which reaches the whole process group, cannot kill
/// them half-way either.
pub fn deferred<T>(f: impl FnOnce() -> T) -> T {
    let old = crate::sys::block_stop_signals();
    let r = f();
    crate::sys::restore_mask(&old);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_sets_the_flag_and_ends_a_wait() {
        let flag = install();
        assert!(std::ptr::eq(flag, install()), "one flag");
        assert!(!wait(Duration::from_millis(1)));
        let t0 = Instant::now();
        let raiser = std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(50));
            signal_hook::low_level::raise(signal_hook::consts::SIGTERM).unwrap();
        });
        assert!(wait(Duration::from_secs(10)), "the signal ends the wait");
        assert!(t0.elapsed() < Duration::from_secs(5));
        assert!(stop_requested());
        raiser.join().unwrap();
    }
}
