//! The variable part of a pointer: its bounds under `ptr += scalar` / `ptr -= scalar`.
//!
//! Kernel counterpart: the bound arithmetic of `adjust_ptr_min_max_vals` in
//! `kernel/bpf/verifier.c`. A pointer register keeps a fixed offset (`off`, the caller's) and
//! a variable offset, a [`Scalar`] whose rules differ from scalar arithmetic: pointers carry no
//! 32-bit bounds (reset, then re-derived by `reg_bounds_sync`), and any unsigned overflow gives
//! up the unsigned bounds (scalars keep them when every sum overflows).
//!
//! The functions return the bounds *before* `reg_bounds_sync`, because the kernel runs
//! `check_reg_sane_offset` on them first; the caller checks, then calls [`Scalar::sync`].

use super::bounds::mark_reg32_unbounded;
use super::Scalar;

/// `ptr += K` folded into the fixed offset: the variable part is kept, its 32-bit bounds reset
/// (not synced).
#[must_use]
pub fn ptr_keep(ptr: &Scalar) -> Scalar {
    let mut d = *ptr;
    mark_reg32_unbounded(&mut d);
    d
}

/// The variable part of `ptr + off` for a non-constant `off` (or a constant that does not fit
/// the fixed offset), not synced.
#[must_use]
pub fn ptr_add(ptr: &Scalar, off: &Scalar) -> Scalar {
    let mut d = ptr_keep(ptr);
    match (
        ptr.smin.checked_add(off.smin),
        ptr.smax.checked_add(off.smax),
    ) {
        (Some(lo), Some(hi)) => {
            d.smin = lo;
            d.smax = hi;
        }
        _ => {
            d.smin = i64::MIN;
            d.smax = i64::MAX;
        }
    }
    match (
        ptr.umin.checked_add(off.umin),
        ptr.umax.checked_add(off.umax),
    ) {
        (Some(lo), Some(hi)) => {
            d.umin = lo;
            d.umax = hi;
        }
        _ => {
            d.umin = 0;
            d.umax = u64::MAX;
        }
    }
    d.var_off = ptr.var_off.add(off.var_off);
    d
}

/// The variable part of `ptr - off` for a non-constant `off` (or a constant that does not fit
/// the fixed offset), not synced. Subtracting from a stack pointer, or a pointer from a scalar,
/// is the caller's rejection.
#[must_use]
pub fn ptr_sub(ptr: &Scalar, off: &Scalar) -> Scalar {
    let mut d = ptr_keep(ptr);
    match (
        ptr.smin.checked_sub(off.smax),
        ptr.smax.checked_sub(off.smin),
    ) {
        (Some(lo), Some(hi)) => {
            d.smin = lo;
            d.smax = hi;
        }
        _ => {
            d.smin = i64::MIN;
            d.smax = i64::MAX;
        }
    }
    if ptr.umin < off.umax {
        // Overflow possible: we know nothing.
        d.umin = 0;
        d.umax = u64::MAX;
    } else {
        d.umin = ptr.umin - off.umax;
        d.umax = ptr.umax.wrapping_sub(off.umin);
    }
    d.var_off = ptr.var_off.sub(off.var_off);
    d
}
