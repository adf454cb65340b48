//! What one run is given: the argument registers, the memory it may touch, the packet for the
//! legacy LD_ABS / LD_IND loads, the tail-call hook and the checked interpreter's budget.
//!
//! The regions matter only to the checked interpreter, which refuses any access outside the
//! run's stack frames, these regions and the regions helpers return during the run. Regions
//! built from Rust slices are safe: the borrow lasts as long as the [`RunCtx`]. Raw regions
//! (a context structure the runtime laid out, a map's storage) need
//! [`RunCtx::add_raw_region`], an `unsafe fn`.

use crate::Vm;
use std::marker::PhantomData;

/// A memory region a run may access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Region {
    pub(crate) start: u64,
    pub(crate) len: u64,
    pub(crate) writable: bool,
}

impl Region {
    /// Whether `[addr, addr + size)` lies inside the region (and may be written if `write`).
    #[inline]
    pub(crate) fn contains(&self, addr: u64, size: u64, write: bool) -> bool {
        (self.writable || !write)
            && addr >= self.start
            && addr.wrapping_sub(self.start) <= self.len
            && size <= self.len - addr.wrapping_sub(self.start)
    }
}

/// Where a tail call goes, as the runtime's program array answers it.
#[derive(Clone, Copy, Debug)]
pub enum TailCallTarget<'a> {
    /// The index is not below the array's `max_entries`: the call falls through without
    /// counting against `MAX_TAIL_CALL_CNT`.
    OutOfRange,
    /// The slot is empty: the call falls through, and counts (Linux increments the counter
    /// before it reads the slot).
    Empty,
    /// Continue in this program, on the same stack frame and registers.
    Program(&'a Vm),
}

/// The runtime's side of tail calls: map pointer (r2) and index (r3, as `u32`) to a program.
pub trait TailCallHook {
    /// Looks up slot `index` of the program array `map`.
    fn tail_call_target(&self, map: u64, index: u32) -> TailCallTarget<'_>;
}

/// The default instruction budget of a checked run.
pub const DEFAULT_BUDGET: u64 = 10_000_000;

/// The inputs of one run.
///
/// ```
/// # use bpfkit_vm::RunCtx;
/// let mut mem = [1u8, 2, 3, 4];
/// let ctx = RunCtx::new().with_mem(&mut mem).with_budget(1000);
/// # let _ = ctx;
/// ```
pub struct RunCtx<'a> {
    pub(crate) args: [u64; 5],
    /// The memory of [`RunCtx::with_mem`] (kept apart so the fast path never allocates).
    pub(crate) mem: Option<Region>,
    pub(crate) regions: Vec<Region>,
    pub(crate) packet: Option<Region>,
    pub(crate) tail_calls: Option<&'a dyn TailCallHook>,
    pub(crate) budget: u64,
    _borrows: PhantomData<&'a mut [u8]>,
}

impl Default for RunCtx<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> RunCtx<'a> {
    /// No memory, r1–r5 = 0, no packet, no tail calls, the [`DEFAULT_BUDGET`].
    #[must_use]
    pub fn new() -> Self {
        Self {
            args: [0; 5],
            mem: None,
            regions: Vec::new(),
            packet: None,
            tail_calls: None,
            budget: DEFAULT_BUDGET,
            _borrows: PhantomData,
        }
    }

    /// Sets r1 = the address of `mem` and r2 = its length, lets the program read and write it,
    /// and makes it the packet of LD_ABS / LD_IND (the conformance suite's convention).
    #[must_use]
    pub fn with_mem(mut self, mem: &'a mut [u8]) -> Self {
        let region = Region {
            start: mem.as_mut_ptr() as u64,
            len: mem.len() as u64,
            writable: true,
        };
        self.args[0] = region.start;
        self.args[1] = region.len;
        self.mem = Some(region);
        self.packet = Some(region);
        self
    }

    /// Every region the run may touch besides its stack.
    pub(crate) fn all_regions(&self) -> Vec<Region> {
        self.mem.iter().chain(&self.regions).copied().collect()
    }

    /// Sets argument register `r1`..`r5` (`reg` 1 to 5; other numbers are ignored).
    #[must_use]
    pub fn with_arg(mut self, reg: usize, value: u64) -> Self {
        if let Some(slot) = reg.checked_sub(1).and_then(|i| self.args.get_mut(i)) {
            *slot = value;
        }
        self
    }

    /// Lets the program read and write `mem` (its address reaches the program some other way,
    /// for example inside a context structure).
    #[must_use]
    pub fn with_region(mut self, mem: &'a mut [u8]) -> Self {
        self.regions.push(Region {
            start: mem.as_mut_ptr() as u64,
            len: mem.len() as u64,
            writable: true,
        });
        self
    }

    /// Lets the program read `mem`.
    #[must_use]
    pub fn with_readonly_region(mut self, mem: &'a [u8]) -> Self {
        self.regions.push(Region {
            start: mem.as_ptr() as u64,
            len: mem.len() as u64,
            writable: false,
        });
        self
    }

    /// Declares a region by address.
    ///
    /// # Safety
    /// `[start, start + len)` must be valid for reads (and writes when `writable`) for as long as
    /// this context is used to run programs, with no Rust reference to it alive during a run.
    pub unsafe fn add_raw_region(&mut self, start: u64, len: u64, writable: bool) {
        self.regions.push(Region {
            start,
            len,
            writable,
        });
    }

    /// Makes `packet` the packet of LD_ABS / LD_IND (read-only; not otherwise accessible).
    #[must_use]
    pub fn with_packet(mut self, packet: &'a [u8]) -> Self {
        self.packet = Some(Region {
            start: packet.as_ptr() as u64,
            len: packet.len() as u64,
            writable: false,
        });
        self
    }

    /// Makes `[start, start + len)` the packet of LD_ABS / LD_IND, by address (for a packet
    /// that helpers may write during the run, so no Rust borrow of it can be held).
    ///
    /// # Safety
    /// The range must stay valid for reads for as long as this context is used to run
    /// programs.
    #[must_use]
    pub unsafe fn with_raw_packet(mut self, start: u64, len: u64) -> Self {
        self.packet = Some(Region {
            start,
            len,
            writable: false,
        });
        self
    }

    /// Sets the hook that resolves tail calls; without one every tail call falls through.
    #[must_use]
    pub fn with_tail_calls(mut self, hook: &'a dyn TailCallHook) -> Self {
        self.tail_calls = Some(hook);
        self
    }

    /// Sets the most instructions a checked run may execute (ignored by fast runs).
    #[must_use]
    pub fn with_budget(mut self, budget: u64) -> Self {
        self.budget = budget;
        self
    }
}
