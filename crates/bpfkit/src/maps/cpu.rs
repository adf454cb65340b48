//! The CPUs that per-CPU maps keep a value for, and which one the calling thread runs on.
//!
//! Linux sizes a per-CPU value array by `num_possible_cpus()`; bpfkit does the same (reading
//! `/sys/devices/system/cpu/possible` on Linux, so per-CPU lookups have the kernel's layout on the
//! same machine, and using the available parallelism elsewhere). A program's per-CPU accesses go
//! to the slot of [`current_cpu`]: each thread gets a slot round-robin on first use, and the
//! runtime may pin one with [`set_current_cpu`] for the duration of a run (as the kernel runs a
//! program with migration disabled).

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::OnceLock;

/// The number of possible CPUs: the number of slots in every per-CPU value.
#[must_use]
pub fn possible_cpus() -> u32 {
    static N: OnceLock<u32> = OnceLock::new();
    *N.get_or_init(|| {
        std::fs::read_to_string("/sys/devices/system/cpu/possible")
            .ok()
            .and_then(|s| count_cpu_list(s.trim()))
            .or_else(|| {
                std::thread::available_parallelism()
                    .ok()
                    .and_then(|n| u32::try_from(n.get()).ok())
            })
            .unwrap_or(1)
            .max(1)
    })
}

/// Counts the CPUs of a kernel CPU list such as `0-3,5,7-8`.
fn count_cpu_list(s: &str) -> Option<u32> {
    let mut count = 0u32;
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let a: u32 = a.parse().ok()?;
                let b: u32 = b.parse().ok()?;
                count = count.checked_add(b.checked_sub(a)?.checked_add(1)?)?;
            }
            None => {
                part.parse::<u32>().ok()?;
                count = count.checked_add(1)?;
            }
        }
    }
    (count > 0).then_some(count)
}

thread_local! {
    static CURRENT: Cell<Option<u32>> = const { Cell::new(None) };
}

/// The CPU slot of the calling thread (`bpf_get_smp_processor_id()`), below [`possible_cpus`].
#[must_use]
pub fn current_cpu() -> u32 {
    CURRENT.with(|c| match c.get() {
        Some(cpu) => cpu,
        None => {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let cpu = NEXT.fetch_add(1, Relaxed) % possible_cpus();
            c.set(Some(cpu));
            cpu
        }
    })
}

/// Pins the calling thread to CPU slot `cpu` (taken modulo [`possible_cpus`]) and returns the
/// previous slot.
pub fn set_current_cpu(cpu: u32) -> u32 {
    let prev = current_cpu();
    CURRENT.with(|c| c.set(Some(cpu % possible_cpus())));
    prev
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_count_as_the_kernel_prints_them() {
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list("0-3"), Some(4));
        assert_eq!(count_cpu_list("0-3,5,7-8"), Some(7));
        assert_eq!(count_cpu_list(""), None);
        assert_eq!(count_cpu_list("3-1"), None);
    }

    #[test]
    fn current_cpu_is_a_possible_cpu_and_can_be_pinned() {
        assert!(current_cpu() < possible_cpus());
        let n = possible_cpus();
        set_current_cpu(n + 1);
        assert_eq!(current_cpu(), (n + 1) % n);
    }
}
