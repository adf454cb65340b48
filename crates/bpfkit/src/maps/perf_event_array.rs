//! `BPF_MAP_TYPE_PERF_EVENT_ARRAY` (kernel/bpf/arraymap.c's perf event fd array): an array of
//! perf events, indexed by CPU by convention, that `bpf_perf_event_output` writes samples to.
//!
//! From user space an update's value is the descriptor of a [`PerfEvent`] (the object table
//! resolves it: `EBADF` for anything else, as the kernel's `perf_event_get`); a lookup is
//! `ENOTSUPP` (the map has no `map_fd_sys_lookup_elem`); delete, `get_next_key` and the update
//! flags are an fd array's. When the last user-space descriptor of the map closes, its events are
//! dropped unless the map was created with `BPF_F_PRESERVE_ELEMS` (the kernel's
//! `perf_event_fd_array_release`, which drops those stored through the closed file).

use std::sync::Arc;

use super::fd_array::FdArray;
use super::perf_event::PerfEvent;
use super::{cpu, flags};
use crate::errno::Errno;

/// `BPF_F_INDEX_MASK`: the low 32 bits of the helper's flags are the array index.
pub const BPF_F_INDEX_MASK: u64 = 0xffff_ffff;
/// `BPF_F_CURRENT_CPU`: the index is the current CPU's.
pub const BPF_F_CURRENT_CPU: u64 = BPF_F_INDEX_MASK;
/// `BPF_F_CTXLEN_MASK`: bits 32..52 of the skb/xdp variants' flags are how many packet bytes to
/// append to the sample.
pub const BPF_F_CTXLEN_MASK: u64 = 0xfffff << 32;

/// `-E2BIG`, `-ENOENT`, `-EOPNOTSUPP`, `-ENOSPC` as helpers return them.
const E2BIG: i64 = -7;
const ENOENT: i64 = -2;
const EOPNOTSUPP: i64 = -95;
const ENOSPC: i64 = -28;

/// A perf event array.
#[derive(Debug)]
pub struct PerfEventArray {
    entries: FdArray<PerfEvent>,
    preserve: bool,
}

impl PerfEventArray {
    pub(crate) fn new(max_entries: u32, map_flags: u32) -> Result<Self, Errno> {
        Ok(Self {
            entries: FdArray::new(max_entries, false)?,
            preserve: map_flags & flags::BPF_F_PRESERVE_ELEMS != 0,
        })
    }

    /// The slots.
    #[must_use]
    pub fn entries(&self) -> &FdArray<PerfEvent> {
        &self.entries
    }

    /// Stores the event `resolve` yields, after checking flags (`BPF_ANY` only) and index
    /// (`E2BIG`) before resolving the descriptor, as the kernel does.
    pub fn update(
        &self,
        key: &[u8],
        map_flags: u64,
        resolve: impl FnOnce() -> Result<Arc<PerfEvent>, Errno>,
    ) -> Result<(), Errno> {
        let index = self.entries.check_update(key, map_flags)?;
        let event = resolve()?;
        self.entries.set(index, event);
        Ok(())
    }

    /// `__bpf_perf_event_output`: writes one sample made of `parts` to the event at the index
    /// in the low 32 bits of `flags` (`BPF_F_CURRENT_CPU`: the calling CPU's). 0, or `-E2BIG`
    /// past the end, `-ENOENT` for an empty slot, `-EOPNOTSUPP` when the event is not on the
    /// calling CPU, `-ENOSPC` when its ring is full (the sample is counted as lost). The caller
    /// has checked the other bits of `flags`.
    #[must_use]
    pub fn output(&self, flags: u64, parts: &[&[u8]]) -> i64 {
        let current = cpu::current_cpu();
        let mut index = flags & BPF_F_INDEX_MASK;
        if index == BPF_F_CURRENT_CPU {
            index = u64::from(current);
        }
        let Ok(index) = u32::try_from(index) else {
            return E2BIG;
        };
        if index >= self.entries.max_entries() {
            return E2BIG;
        }
        let Some(event) = self.entries.get(index) else {
            return ENOENT;
        };
        if event.cpu() != current {
            return EOPNOTSUPP;
        }
        if event.output(parts) {
            0
        } else {
            ENOSPC
        }
    }

    /// The last user reference is gone: drop the events unless `BPF_F_PRESERVE_ELEMS`.
    pub(crate) fn release_uref(&self) {
        if !self.preserve {
            self.entries.clear();
        }
    }
}
