//! bpfkit's perf events: the `PERF_TYPE_SOFTWARE` / `PERF_COUNT_SW_BPF_OUTPUT` event that
//! `bpf_perf_event_output` writes to, with its ring of samples, read from user space.
//!
//! In Linux, user space opens one such event per CPU (`perf_event_open(pid -1, cpu N)`), maps
//! `2^n` data pages of it, stores its descriptor in a `BPF_MAP_TYPE_PERF_EVENT_ARRAY` at index N
//! and reads `PERF_RECORD_SAMPLE` records whose raw data is what the program passed. bpfkit has
//! no perf subsystem: [`PerfEvent`] is that event and its ring in one object
//! ([`crate::Bpf::perf_event_open`] gives it a descriptor), and [`PerfEvent::read`] hands out
//! the raw data of each sample in order, as libbpf's `perf_buffer` callback sees it. A sample
//! that does not fit in the free part of the ring is lost and counted
//! ([`PerfEvent::lost`]), as the kernel counts it for a `PERF_RECORD_LOST`.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use crate::errno::Errno;

/// `PAGE_SIZE` on x86-64.
const PAGE_SIZE: u64 = 4096;

/// Bytes one sample with raw data takes in the kernel's ring: the `perf_event_header` (8), then
/// the `u32` size and the data, padded to 8 bytes (`perf_prepare_sample`).
#[must_use]
pub fn sample_footprint(raw_len: usize) -> u64 {
    8 + (4 + raw_len as u64).next_multiple_of(8)
}

/// One `PERF_COUNT_SW_BPF_OUTPUT` event bound to a CPU, with its ring buffer.
#[derive(Debug)]
pub struct PerfEvent {
    cpu: u32,
    capacity: u64,
    ring: Mutex<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    samples: VecDeque<Vec<u8>>,
    used: u64,
    lost: u64,
}

impl PerfEvent {
    /// The event of CPU `cpu` with a ring of `data_pages` pages (a power of two, as `mmap` of a
    /// perf event requires, else `EINVAL`). `cpu` must be a possible CPU ([`super::cpu`]).
    pub fn new(cpu: u32, data_pages: u32) -> Result<Self, Errno> {
        if cpu >= super::cpu::possible_cpus() {
            return Err(Errno::Einval(
                format!(
                    "cpu {cpu} is not a possible CPU (0..{})",
                    super::cpu::possible_cpus()
                )
                .into(),
            ));
        }
        if !data_pages.is_power_of_two() {
            return Err(Errno::Einval(
                format!("{data_pages} data pages: a perf ring needs a power of two").into(),
            ));
        }
        Ok(Self {
            cpu,
            capacity: u64::from(data_pages) * PAGE_SIZE,
            ring: Mutex::new(Ring::default()),
        })
    }

    /// The CPU the event counts on (the kernel's `event->cpu`).
    #[must_use]
    pub fn cpu(&self) -> u32 {
        self.cpu
    }

    /// Size of the ring's data area in bytes.
    #[must_use]
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes one sample whose raw data is the concatenation of `parts` (the helper's data,
    /// then the packet bytes for the skb/xdp variants). Returns `false` when the ring has no
    /// room: the sample is lost and counted, as the kernel's `perf_output_begin` does (the
    /// helper still returns 0 then).
    pub fn output(&self, parts: &[&[u8]]) -> bool {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let need = sample_footprint(len);
        let mut ring = self.ring();
        if ring.used + need > self.capacity {
            ring.lost += 1;
            return false;
        }
        let mut data = Vec::with_capacity(len);
        for p in parts {
            data.extend_from_slice(p);
        }
        ring.used += need;
        ring.samples.push_back(data);
        true
    }

    /// Takes every sample written so far, oldest first, freeing their room in the ring.
    pub fn read(&self) -> Vec<Vec<u8>> {
        let mut ring = self.ring();
        ring.used = 0;
        ring.samples.drain(..).collect()
    }

    /// The number of samples waiting to be read.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.ring().samples.len()
    }

    /// The number of samples lost because the ring was full.
    #[must_use]
    pub fn lost(&self) -> u64 {
        self.ring().lost
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in tests a panic is the failure report")]
mod tests {
    use super::*;

    #[test]
    fn samples_are_padded_to_eight_bytes_after_their_size_word() {
        // header 8 + u32 size + data rounded up so that size word + data is a multiple of 8.
        assert_eq!(sample_footprint(0), 16);
        assert_eq!(sample_footprint(4), 16);
        assert_eq!(sample_footprint(5), 24);
        assert_eq!(sample_footprint(12), 24);
    }

    #[test]
    fn a_full_ring_loses_samples_and_reading_frees_it() {
        let ev = PerfEvent::new(0, 1).unwrap();
        // 4096 / 24 = 170 samples of 8 bytes fit.
        let fit = (0..200).filter(|_| ev.output(&[&[1u8; 8]])).count();
        assert_eq!(fit, 4096 / 24);
        assert_eq!(ev.lost(), 200 - 4096 / 24);
        assert_eq!(ev.read().len(), 4096 / 24);
        assert!(ev.output(&[b"ab", b"cd"]));
        assert_eq!(ev.read(), vec![b"abcd".to_vec()]);
    }

    #[test]
    fn the_ring_size_must_be_a_power_of_two_pages_on_a_possible_cpu() {
        assert!(PerfEvent::new(0, 3).is_err());
        assert!(PerfEvent::new(super::super::cpu::possible_cpus(), 1).is_err());
    }
}
