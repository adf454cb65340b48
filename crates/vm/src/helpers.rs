//! The helper table: what `call N` (src 0) does for each helper id.
//!
//! The interpreter knows no specific helper. The runtime fills a [`Helpers`] table with plain
//! `extern "C"` functions (the ABI the JIT calls natively: r1–r5 are the arguments, r0 the
//! result) and tells the interpreter, per helper, what the result means:
//!
//! - [`Helper::scalar`]: a plain value;
//! - [`Helper::returns_mem`] / [`Helper::returns_mem_sized`]: a pointer to N bytes, or NULL.
//!   The checked interpreter adds the returned region to the regions the run may touch, the way
//!   the kernel verifier types `bpf_map_lookup_elem`'s result as `map_value_or_null`;
//! - [`Helper::unwind_on_zero`]: a zero result ends the whole program with r0 = 0 (the
//!   conformance suite's "unwind" helper).
//!
//! One id may instead be declared the tail-call helper ([`Helpers::set_tail_call`], id 12
//! `bpf_tail_call` in Linux); the interpreter then performs the tail call itself through the
//! run's [`TailCallHook`](crate::TailCallHook), as the kernel's `BPF_TAIL_CALL` rewrite does.

/// A helper function: arguments r1–r5, result into r0.
pub type HelperFn = extern "C" fn(u64, u64, u64, u64, u64) -> u64;

/// Computes the size of the region a helper returned, from its arguments r1–r5.
pub type RegionSizeFn = fn(&[u64; 5]) -> usize;

/// What a helper's result means to the interpreter.
#[derive(Clone, Copy, Debug)]
pub(crate) enum HelperRet {
    /// A plain value.
    Scalar,
    /// A pointer to this many bytes, or NULL.
    Mem { size: usize, writable: bool },
    /// A pointer to as many bytes as the function computes from the arguments, or NULL.
    MemSized { size: RegionSizeFn, writable: bool },
    /// A plain value; zero ends the program with r0 = 0.
    UnwindOnZero,
}

/// One helper: its function and the meaning of its result.
#[derive(Clone, Copy, Debug)]
pub struct Helper {
    pub(crate) func: HelperFn,
    pub(crate) ret: HelperRet,
}

impl Helper {
    /// A helper returning a plain value.
    #[must_use]
    pub const fn scalar(func: HelperFn) -> Self {
        Self {
            func,
            ret: HelperRet::Scalar,
        }
    }

    /// A helper returning a pointer to `size` bytes, or 0 (NULL).
    ///
    /// # Safety
    /// Every non-zero result of `func` must point to `size` bytes that stay valid for reads
    /// (and for writes when `writable`) until the end of the run, with no Rust reference to them
    /// alive during the run: the checked interpreter lets the program access them.
    #[must_use]
    pub const unsafe fn returns_mem(func: HelperFn, size: usize, writable: bool) -> Self {
        Self {
            func,
            ret: HelperRet::Mem { size, writable },
        }
    }

    /// A helper returning a pointer to a region whose size `size` computes from the arguments
    /// (for example the value size of the map whose pointer is in r1), or 0 (NULL).
    ///
    /// # Safety
    /// As for [`Helper::returns_mem`], with `size(&[r1, r2, r3, r4, r5])` bytes.
    #[must_use]
    pub const unsafe fn returns_mem_sized(
        func: HelperFn,
        size: RegionSizeFn,
        writable: bool,
    ) -> Self {
        Self {
            func,
            ret: HelperRet::MemSized { size, writable },
        }
    }

    /// A helper whose zero result ends the whole program at once with r0 = 0 (the "unwind"
    /// helper of the conformance suite's runners).
    #[must_use]
    pub const fn unwind_on_zero(func: HelperFn) -> Self {
        Self {
            func,
            ret: HelperRet::UnwindOnZero,
        }
    }
}

/// An entry of the helper table.
#[derive(Clone, Copy, Debug)]
pub(crate) enum HelperEntry {
    /// Call a function.
    Call(Helper),
    /// Perform a tail call (r2 = map, r3 = index) through the run's hook.
    TailCall,
}

/// The helper table, indexed by helper id; resolved once when a program is translated.
#[derive(Clone, Debug, Default)]
pub struct Helpers {
    by_id: Vec<Option<HelperEntry>>,
}

impl Helpers {
    /// An empty table: any helper call is an [`UnknownHelper`](crate::ErrorKind::UnknownHelper)
    /// error at translation.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Defines helper `id`, replacing any previous definition.
    pub fn set(&mut self, id: u32, helper: Helper) -> &mut Self {
        self.put(id, HelperEntry::Call(helper))
    }

    /// Declares `id` the tail-call helper (`bpf_tail_call`, id 12 in Linux).
    pub fn set_tail_call(&mut self, id: u32) -> &mut Self {
        self.put(id, HelperEntry::TailCall)
    }

    fn put(&mut self, id: u32, entry: HelperEntry) -> &mut Self {
        let idx = id as usize;
        if self.by_id.len() <= idx {
            self.by_id.resize(idx + 1, None);
        }
        self.by_id[idx] = Some(entry);
        self
    }

    /// The entry for a helper id, if defined.
    pub(crate) fn get(&self, id: i32) -> Option<HelperEntry> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.by_id.get(i).copied().flatten())
    }
}
