//! The benches' clock: CPU time of the calling thread where the OS has it (Unix), wall time
//! elsewhere.
//!
//! The machines these benches run on are shared with builds; wall time then counts the slices
//! other processes got in between, thread CPU time does not. (The kernel peer's
//! BPF_PROG_TEST_RUN timer likewise stops while the test run is rescheduled.) Cache and branch
//! predictor pollution by other processes still shows; see the README.

use std::time::{Duration, Instant};

/// A point on the benches' clock.
#[derive(Debug, Clone, Copy)]
pub struct Stamp(Duration);

impl Stamp {
    /// Now.
    pub fn now() -> Self {
        Self(now())
    }

    /// Time elapsed since this stamp.
    pub fn elapsed(self) -> Duration {
        now().saturating_sub(self.0)
    }
}

#[cfg(unix)]
fn now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is supported by Linux
    // and the BSDs (macOS included).
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return wall();
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(not(unix))]
fn now() -> Duration {
    wall()
}

/// Wall time since the first call (the fallback clock).
fn wall() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}
