//! The interpreter's memory access paths: the only `unsafe` code of the interpreter.
//!
//! Every function here takes a program address (a `u64` in a register) and turns it into a
//! pointer with [`std::ptr::with_exposed_provenance`]: addresses reach programs only from
//! pointers whose provenance was exposed (the run's stack, memory the caller lent the run, what
//! helpers return). Accesses are unaligned-tolerant, as eBPF allows; atomics are real atomics
//! when aligned and fall back to a plain read-modify-write otherwise (the checked interpreter
//! rejects misaligned atomics before they get here, as the kernel verifier does).
//!
//! Callers must have established that the access is valid: the checked interpreter by its
//! region check, the fast interpreter by the verifier's proof (see `Vm`'s safety contract).

use bpfkit_isa::AtomicOp;
use std::ptr::{with_exposed_provenance, with_exposed_provenance_mut};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Reads a `T` at `addr`.
///
/// # Safety
/// `[addr, addr + size_of::<T>())` must be valid for reads and initialised.
#[inline(always)]
pub(crate) unsafe fn load<T: Copy>(addr: u64) -> T {
    // SAFETY: the caller guarantees the bytes are readable; read_unaligned has no alignment
    // requirement.
    unsafe { std::ptr::read_unaligned(with_exposed_provenance::<T>(addr as usize)) }
}

/// Writes a `T` at `addr`.
///
/// # Safety
/// `[addr, addr + size_of::<T>())` must be valid for writes.
#[inline(always)]
pub(crate) unsafe fn store<T: Copy>(addr: u64, value: T) {
    // SAFETY: the caller guarantees the bytes are writable; write_unaligned has no alignment
    // requirement.
    unsafe { std::ptr::write_unaligned(with_exposed_provenance_mut::<T>(addr as usize), value) }
}

/// Zeroes `len` bytes at `addr` (a fresh stack frame).
///
/// # Safety
/// `[addr, addr + len)` must be valid for writes.
#[inline(always)]
pub(crate) unsafe fn zero(addr: u64, len: usize) {
    // Most verified packet programs need a few words or none: skip the call then.
    if len != 0 {
        // SAFETY: the caller guarantees the bytes are writable.
        unsafe { std::ptr::write_bytes(with_exposed_provenance_mut::<u8>(addr as usize), 0, len) }
    }
}

/// Applies `op` to the 8 bytes at `addr` with operand `val` (and `r0` as the expected value of
/// CMPXCHG); returns the old value.
///
/// # Safety
/// `[addr, addr + 8)` must be valid for reads and writes.
#[inline]
pub(crate) unsafe fn atomic64(op: AtomicOp, addr: u64, val: u64, r0: u64) -> u64 {
    if addr.is_multiple_of(8) {
        // SAFETY: aligned, valid for reads and writes (caller); all concurrent accesses to
        // program memory from other runs go through atomics or the same unaligned raw accesses
        // the kernel's own interpreter makes.
        let cell =
            unsafe { AtomicU64::from_ptr(with_exposed_provenance_mut::<u64>(addr as usize)) };
        let sc = Ordering::SeqCst;
        match op {
            AtomicOp::Add { .. } => cell.fetch_add(val, sc),
            AtomicOp::Or { .. } => cell.fetch_or(val, sc),
            AtomicOp::And { .. } => cell.fetch_and(val, sc),
            AtomicOp::Xor { .. } => cell.fetch_xor(val, sc),
            AtomicOp::Xchg => cell.swap(val, sc),
            AtomicOp::Cmpxchg => cell
                .compare_exchange(r0, val, sc, sc)
                .unwrap_or_else(|old| old),
        }
    } else {
        // SAFETY: valid for reads and writes (caller).
        let old = unsafe { load::<u64>(addr) };
        // SAFETY: as above.
        unsafe { store::<u64>(addr, rmw64(op, old, val, r0)) };
        old
    }
}

/// 32-bit [`atomic64`]: the operands are the low halves; returns the old value.
///
/// # Safety
/// `[addr, addr + 4)` must be valid for reads and writes.
#[inline]
pub(crate) unsafe fn atomic32(op: AtomicOp, addr: u64, val: u32, r0: u32) -> u32 {
    if addr.is_multiple_of(4) {
        // SAFETY: aligned, valid for reads and writes (caller).
        let cell =
            unsafe { AtomicU32::from_ptr(with_exposed_provenance_mut::<u32>(addr as usize)) };
        let sc = Ordering::SeqCst;
        match op {
            AtomicOp::Add { .. } => cell.fetch_add(val, sc),
            AtomicOp::Or { .. } => cell.fetch_or(val, sc),
            AtomicOp::And { .. } => cell.fetch_and(val, sc),
            AtomicOp::Xor { .. } => cell.fetch_xor(val, sc),
            AtomicOp::Xchg => cell.swap(val, sc),
            AtomicOp::Cmpxchg => cell
                .compare_exchange(r0, val, sc, sc)
                .unwrap_or_else(|old| old),
        }
    } else {
        // SAFETY: valid for reads and writes (caller).
        let old = unsafe { load::<u32>(addr) };
        let new = rmw64(op, u64::from(old), u64::from(val), u64::from(r0)) as u32;
        // SAFETY: as above.
        unsafe { store::<u32>(addr, new) };
        old
    }
}

/// The new memory value of a read-modify-write.
fn rmw64(op: AtomicOp, old: u64, val: u64, r0: u64) -> u64 {
    match op {
        AtomicOp::Add { .. } => old.wrapping_add(val),
        AtomicOp::Or { .. } => old | val,
        AtomicOp::And { .. } => old & val,
        AtomicOp::Xor { .. } => old ^ val,
        AtomicOp::Xchg => val,
        AtomicOp::Cmpxchg => {
            if old == r0 {
                val
            } else {
                old
            }
        }
    }
}

/// Reads `size` (1, 2 or 4) bytes in network order at `offset` of the packet `[start, start +
/// len)`, the way Linux's `bpf_skb_load_helper_{8,16,32}` do; `None` when out of range (Linux
/// then ends the function with r0 = 0). Negative offsets (Linux's `SKF_NET_OFF` / `SKF_LL_OFF`
/// ancillary areas) are out of range here.
///
/// # Safety
/// `[start, start + len)` must be valid for reads.
#[inline]
pub(crate) unsafe fn load_packet(start: u64, len: u64, offset: i32, size: u8) -> Option<u64> {
    let off = u64::try_from(offset).ok()?;
    if off > len || u64::from(size) > len - off {
        return None;
    }
    let addr = start + off;
    // SAFETY: [addr, addr + size) is inside the packet (checked just above), readable (caller).
    Some(unsafe {
        match size {
            1 => u64::from(load::<u8>(addr)),
            2 => u64::from(u16::from_be(load::<u16>(addr))),
            _ => u64::from(u32::from_be(load::<u32>(addr))),
        }
    })
}

macro_rules! acquire_release {
    ($load:ident, $store:ident, $t:ty, $atomic:ty) => {
        /// Load-acquire of the value at `addr` (a real atomic load when aligned).
        ///
        /// # Safety
        /// The bytes at `addr` must be valid for reads.
        #[inline]
        pub(crate) unsafe fn $load(addr: u64) -> $t {
            if addr.is_multiple_of(std::mem::size_of::<$t>() as u64) {
                // SAFETY: aligned and readable (caller).
                let cell = unsafe {
                    <$atomic>::from_ptr(with_exposed_provenance_mut::<$t>(addr as usize))
                };
                cell.load(Ordering::Acquire)
            } else {
                // SAFETY: readable (caller).
                unsafe { load::<$t>(addr) }
            }
        }

        /// Store-release of `value` at `addr` (a real atomic store when aligned).
        ///
        /// # Safety
        /// The bytes at `addr` must be valid for writes.
        #[inline]
        pub(crate) unsafe fn $store(addr: u64, value: $t) {
            if addr.is_multiple_of(std::mem::size_of::<$t>() as u64) {
                // SAFETY: aligned and writable (caller).
                let cell = unsafe {
                    <$atomic>::from_ptr(with_exposed_provenance_mut::<$t>(addr as usize))
                };
                cell.store(value, Ordering::Release);
            } else {
                // SAFETY: writable (caller).
                unsafe { store::<$t>(addr, value) }
            }
        }
    };
}

acquire_release!(
    load_acquire8,
    store_release8,
    u8,
    std::sync::atomic::AtomicU8
);
acquire_release!(
    load_acquire16,
    store_release16,
    u16,
    std::sync::atomic::AtomicU16
);
acquire_release!(load_acquire32, store_release32, u32, AtomicU32);
acquire_release!(load_acquire64, store_release64, u64, AtomicU64);
