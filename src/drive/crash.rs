//! Crash points, for the crash tests: with `PASSERELLE_TEST_CRASH_AT=N` in its environment the
//! process kills itself with SIGKILL (no destructor, no flush, no journal commit) on reaching
//! its N-th crash point. The points sit where a real crash hurts most: between a transfer and
//! the journal write that records it, between a staged upload and its MOVE into place, in the
//! middle of a body.
//!
//! Why a counter and not a timer: a kill after a random wall-clock delay depends on the
//! machine's speed (on a fast machine the child finished first and the test saw no crash). The
//! N-th point is reached on every machine, whatever its speed; the test chooses N.
//!
//! Without the variable a point costs one relaxed atomic load. The variable is read once.
use std::sync::{
    atomic::{AtomicU64, Ordering},
    OnceLock,
};

const VAR: &str = "PASSERELLE_TEST_CRASH_AT";

static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
static REACHED: AtomicU64 = AtomicU64::new(0);

/// Marks a crash point: kills the process here when it is the N-th one reached.
pub fn point(name: &'static str) {
    let Some(limit) = *LIMIT.get_or_init(|| std::env::var(VAR).ok().and_then(|v| v.trim().parse().ok()).filter(|n| *n > 0))
    else {
        return;
    };
    if REACHED.fetch_add(1, Ordering::SeqCst) + 1 == limit {
        tracing::warn!(point = name, n = limit, "test crash point reached: killing the process");
        kill_self();
    }
}

fn kill_self() -> ! {
    #[cfg(unix)]
    // SAFETY: getpid and kill have no preconditions; SIGKILL cannot be caught, so this does
    // not return (abort below is only for the type and for other platforms).
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::process::abort()
}
