//! The helper ABI: turning the raw `u64` arguments a program passes into the Rust values a
//! helper body works on.
//!
//! Every function here trusts what the verifier proved about the argument (its prototype's
//! `ArgType`): that a `ARG_CONST_MAP_PTR` is the address the loader embedded for a live map,
//! that a memory argument points to at least the given number of readable (or writable) bytes.
//! Programs reach helpers only after verification, so these are the helper ABI's `unsafe`
//! boundary that DESIGN.md allows.

use crate::maps::BpfMap;

/// The map behind an `ARG_CONST_MAP_PTR` argument.
///
/// # Safety
/// `map` must be the address of a [`BpfMap`] that stays alive for `'a` (the loader embeds
/// `Arc::as_ptr` of a map the loaded program holds a reference to).
pub unsafe fn map<'a>(map: u64) -> &'a BpfMap {
    // SAFETY: the caller guarantees `map` is the address of a live BpfMap.
    unsafe { &*(map as *const BpfMap) }
}

/// `len` readable bytes at `ptr` (empty for `len == 0`, whatever `ptr` is).
///
/// # Safety
/// When `len > 0`, `[ptr, ptr + len)` must be readable memory for `'a`, not written through
/// another path meanwhile.
pub unsafe fn bytes<'a>(ptr: u64, len: usize) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: the caller guarantees the range is readable for 'a.
    unsafe { std::slice::from_raw_parts(ptr as *const u8, len) }
}

/// `len` writable bytes at `ptr` (empty for `len == 0`).
///
/// # Safety
/// When `len > 0`, `[ptr, ptr + len)` must be writable memory for `'a` with no other live
/// reference to it.
pub unsafe fn bytes_mut<'a>(ptr: u64, len: usize) -> &'a mut [u8] {
    if len == 0 {
        return &mut [];
    }
    // SAFETY: the caller guarantees the range is writable and unaliased for 'a.
    unsafe { std::slice::from_raw_parts_mut(ptr as *mut u8, len) }
}

/// A negative errno (or any `i64`) as the `u64` a helper returns in r0.
#[must_use]
pub const fn ret(v: i64) -> u64 {
    v as u64
}
