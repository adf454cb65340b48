//! Keeping a scalar's bounds and tnum in agreement: `reg_bounds_sync` and its parts, and the
//! width conversions (`zext_32_to_64`, `coerce_reg_to_size[_sx]`, `coerce_subreg_to_size_sx`).
//!
//! Kernel counterpart: the functions of the same names in `kernel/bpf/verifier.c`. The order of
//! the steps and the number of deduction rounds are the kernel's; changing either changes the
//! printed bounds.

use super::{Scalar, Tnum};

/// `__mark_reg_unbounded`: every bound at its widest, the tnum kept.
pub(super) fn mark_unbounded(r: &mut Scalar) {
    mark_reg64_unbounded(r);
    mark_reg32_unbounded(r);
}

/// `__mark_reg64_unbounded`.
pub(super) fn mark_reg64_unbounded(r: &mut Scalar) {
    r.smin = i64::MIN;
    r.smax = i64::MAX;
    r.umin = 0;
    r.umax = u64::MAX;
}

/// `__mark_reg32_unbounded`.
pub(super) fn mark_reg32_unbounded(r: &mut Scalar) {
    r.s32_min = i32::MIN;
    r.s32_max = i32::MAX;
    r.u32_min = 0;
    r.u32_max = u32::MAX;
}

/// `__update_reg32_bounds`: tighten the 32-bit bounds from the tnum's low half.
pub(super) fn update_reg32_bounds(r: &mut Scalar) {
    let v = r.var_off.subreg();
    let (value, mask) = (v.value as u32, v.mask as u32);
    // min signed is max(sign bit) | min(other bits)
    r.s32_min = r.s32_min.max((value | (mask & 0x8000_0000)) as i32);
    // max signed is min(sign bit) | max(other bits)
    r.s32_max = r.s32_max.min((value | (mask & 0x7fff_ffff)) as i32);
    r.u32_min = r.u32_min.max(value);
    r.u32_max = r.u32_max.min(value | mask);
}

/// `__update_reg64_bounds`: tighten the 64-bit bounds from the tnum.
pub(super) fn update_reg64_bounds(r: &mut Scalar) {
    let Tnum { value, mask } = r.var_off;
    r.smin = r.smin.max((value | (mask & (1 << 63))) as i64);
    r.smax = r.smax.min((value | (mask & (i64::MAX as u64))) as i64);
    r.umin = r.umin.max(value);
    r.umax = r.umax.min(value | mask);

    // The u64 range and the tnum may have a single value in common: then it is a constant.
    let next = r.var_off.step(r.umin);
    let umin_in_tnum = r.var_off.contains(r.umin);
    let tmax = value | mask;
    if umin_in_tnum && next > r.umax {
        // Only umin.
        *r = Scalar::known(r.umin);
    } else if !umin_in_tnum && next == tmax {
        // Only the tnum's largest member.
        *r = Scalar::known(tmax);
    } else if !umin_in_tnum && next <= r.umax && r.var_off.step(next) > r.umax {
        // Only one member strictly inside the range.
        *r = Scalar::known(next);
    }
}

/// `__update_reg_bounds`.
pub(super) fn update_reg_bounds(r: &mut Scalar) {
    update_reg32_bounds(r);
    update_reg64_bounds(r);
}

/// `__reg32_deduce_bounds`: 32-bit bounds from the 64-bit ones, then s32 from u32 and back.
fn reg32_deduce_bounds(r: &mut Scalar) {
    // If the upper 32 bits of the u64 range do not change, the low halves form a range.
    if (r.umin >> 32) == (r.umax >> 32) {
        r.u32_min = r.u32_min.max(r.umin as u32);
        r.u32_max = r.u32_max.min(r.umax as u32);
        if (r.umin as i32) <= (r.umax as i32) {
            r.s32_min = r.s32_min.max(r.umin as i32);
            r.s32_max = r.s32_max.min(r.umax as i32);
        }
    }
    if (r.smin >> 32) == (r.smax >> 32) {
        if (r.smin as u32) <= (r.smax as u32) {
            r.u32_min = r.u32_min.max(r.smin as u32);
            r.u32_max = r.u32_max.min(r.smax as u32);
        }
        if (r.smin as i32) <= (r.smax as i32) {
            r.s32_min = r.s32_min.max(r.smin as i32);
            r.s32_max = r.s32_max.min(r.smax as i32);
        }
    }
    // Upper halves two consecutive numbers while the low halves go from negative to
    // non-negative: the low halves still form an s32 range.
    if ((r.umin >> 32) as u32).wrapping_add(1) == (r.umax >> 32) as u32
        && (r.umin as i32) < 0
        && (r.umax as i32) >= 0
    {
        r.s32_min = r.s32_min.max(r.umin as i32);
        r.s32_max = r.s32_max.min(r.umax as i32);
    }
    if ((r.smin >> 32) as u32).wrapping_add(1) == (r.smax >> 32) as u32
        && (r.smin as i32) < 0
        && (r.smax as i32) >= 0
    {
        r.s32_min = r.s32_min.max(r.smin as i32);
        r.s32_max = r.s32_max.min(r.smax as i32);
    }
    // A u32 range that does not cross the sign boundary is also an s32 range.
    if (r.u32_min as i32) <= (r.u32_max as i32) {
        r.s32_min = r.s32_min.max(r.u32_min as i32);
        r.s32_max = r.s32_max.min(r.u32_max as i32);
    }
    // And the other way round.
    if (r.s32_min as u32) <= (r.s32_max as u32) {
        r.u32_min = r.u32_min.max(r.s32_min as u32);
        r.u32_max = r.u32_max.min(r.s32_max as u32);
    } else if r.u32_max < r.s32_min as u32 {
        // The s32 range crosses the sign boundary and the u32 range overlaps only its
        // non-negative part (as in __reg64_deduce_bounds).
        r.s32_min = r.u32_min as i32;
        r.u32_max = r.u32_max.min(r.s32_max as u32);
    } else if (r.s32_max as u32) < r.u32_min {
        // ... or only its negative part.
        r.s32_max = r.u32_max as i32;
        r.u32_min = r.u32_min.max(r.s32_min as u32);
    }
}

/// `__reg64_deduce_bounds`: s64 from u64 and back, including the case of an s64 range that
/// crosses the sign boundary overlapping only one end of the u64 range.
fn reg64_deduce_bounds(r: &mut Scalar) {
    if (r.umin as i64) <= (r.umax as i64) {
        r.smin = r.smin.max(r.umin as i64);
        r.smax = r.smax.min(r.umax as i64);
    }
    if (r.smin as u64) <= (r.smax as u64) {
        r.umin = r.umin.max(r.smin as u64);
        r.umax = r.umax.min(r.smax as u64);
    } else if r.umax < r.smin as u64 {
        // The u64 range overlaps only the non-negative part of the s64 range.
        r.smin = r.umin as i64;
        r.umax = r.umax.min(r.smax as u64);
    } else if (r.smax as u64) < r.umin {
        // The u64 range overlaps only the negative part of the s64 range.
        r.smax = r.umax as i64;
        r.umin = r.umin.max(r.smin as u64);
    }
}

/// `__reg_deduce_mixed_bounds`: 64-bit bounds from the 32-bit ones.
fn reg_deduce_mixed_bounds(r: &mut Scalar) {
    const HI: u64 = !0xffff_ffffu64;
    // u32 -> u64 tightening, always well-formed.
    let new_umin = (r.umin & HI) | u64::from(r.u32_min);
    let new_umax = (r.umax & HI) | u64::from(r.u32_max);
    r.umin = r.umin.max(new_umin);
    r.umax = r.umax.min(new_umax);
    // u32 -> s64 tightening: the u32 range embedded into s64 stays a range.
    let new_smin = ((r.smin as u64 & HI) | u64::from(r.u32_min)) as i64;
    let new_smax = ((r.smax as u64 & HI) | u64::from(r.u32_max)) as i64;
    r.smin = r.smin.max(new_smin);
    r.smax = r.smax.min(new_smax);
    // After a sign-extending load: [S32_MIN, S32_MAX] as s64 with a non-negative s32 range means
    // the upper half cannot be all ones.
    if r.s32_min >= 0 && r.smin >= i64::from(i32::MIN) && r.smax <= i64::from(i32::MAX) {
        r.smin = i64::from(r.s32_min);
        r.smax = i64::from(r.s32_max);
        r.umin = r.s32_min as u64;
        r.umax = r.s32_max as u64;
        r.var_off = r
            .var_off
            .intersect(Tnum::range(r.smin as u64, r.smax as u64));
    }
}

/// `__reg_deduce_bounds`.
fn reg_deduce_bounds(r: &mut Scalar) {
    reg32_deduce_bounds(r);
    reg64_deduce_bounds(r);
    reg_deduce_mixed_bounds(r);
}

/// `__reg_bound_offset`: tnum bits learned from the unsigned bounds.
fn reg_bound_offset(r: &mut Scalar) {
    let var64 = r.var_off.intersect(Tnum::range(r.umin, r.umax));
    let var32 = var64
        .subreg()
        .intersect(Tnum::range(u64::from(r.u32_min), u64::from(r.u32_max)));
    r.var_off = var64.clear_subreg().or(var32);
}

/// `reg_bounds_sync`.
pub(super) fn sync(r: &mut Scalar) {
    // We might have learned new bounds from the var_off.
    update_reg_bounds(r);
    // We might have learned something about the sign bit (three rounds, as the kernel).
    reg_deduce_bounds(r);
    reg_deduce_bounds(r);
    reg_deduce_bounds(r);
    // We might have learned some bits from the bounds.
    reg_bound_offset(r);
    // Intersecting with the old var_off might have improved our bounds slightly.
    update_reg_bounds(r);
}

/// `__reg_assign_32_into_64`.
fn reg_assign_32_into_64(r: &mut Scalar) {
    r.umin = u64::from(r.u32_min);
    r.umax = u64::from(r.u32_max);
    // Only a non-negative s32 range carries over to s64.
    if r.s32_min >= 0 && r.s32_max >= 0 {
        r.smin = i64::from(r.s32_min);
        r.smax = i64::from(r.s32_max);
    } else {
        r.smin = 0;
        r.smax = i64::from(u32::MAX);
    }
}

/// `zext_32_to_64`.
pub(super) fn zext_32_to_64(r: &mut Scalar) {
    r.var_off = r.var_off.subreg();
    reg_assign_32_into_64(r);
}

/// `coerce_reg_to_size`: truncate to `size` bytes (1, 2 or 4), zero-extending.
pub(super) fn coerce_reg_to_size(r: &mut Scalar, size: u8) {
    if size >= 8 {
        return;
    }
    r.var_off = r.var_off.cast(size);
    let mask = (1u64 << (u32::from(size) * 8)) - 1;
    if (r.umin & !mask) == (r.umax & !mask) {
        r.umin &= mask;
        r.umax &= mask;
    } else {
        r.umin = 0;
        r.umax = mask;
    }
    r.smin = r.umin as i64;
    r.smax = r.umax as i64;
    // Below 32 bits the 32-bit bounds were truncated too: recompute them from the 64-bit ones.
    if size < 4 {
        mark_reg32_unbounded(r);
    }
    sync(r);
}

/// `set_sext64_default_val`.
fn set_sext64_default_val(r: &mut Scalar, size: u8) {
    let (lo, hi) = match size {
        1 => (i64::from(i8::MIN), i64::from(i8::MAX)),
        2 => (i64::from(i16::MIN), i64::from(i16::MAX)),
        _ => (i64::from(i32::MIN), i64::from(i32::MAX)),
    };
    r.smin = lo;
    r.s32_min = lo as i32;
    r.smax = hi;
    r.s32_max = hi as i32;
    r.umin = 0;
    r.u32_min = 0;
    r.umax = u64::MAX;
    r.u32_max = u32::MAX;
    r.var_off = Tnum::UNKNOWN;
}

/// Sign-extends the low `size` bytes of `v` to 64 bits.
const fn sext(v: u64, size: u8) -> i64 {
    match size {
        1 => v as i8 as i64,
        2 => v as i16 as i64,
        _ => v as i32 as i64,
    }
}

/// `coerce_reg_to_size_sx`: sign-extend from `size` bytes (1, 2 or 4). Leaves syncing to the
/// caller, as the kernel does.
pub(super) fn coerce_reg_to_size_sx(r: &mut Scalar, size: u8) {
    if r.var_off.is_const() {
        let v = sext(r.var_off.value, size) as u64;
        r.var_off = Tnum::konst(v);
        r.smin = v as i64;
        r.smax = v as i64;
        r.umin = v;
        r.umax = v;
        r.s32_min = v as i32;
        r.s32_max = v as i32;
        r.u32_min = v as u32;
        r.u32_max = v as u32;
        return;
    }
    let bits = u32::from(size) * 8;
    let top_smax = (r.smax as u64).wrapping_shr(bits).wrapping_shl(bits);
    let top_smin = (r.smin as u64).wrapping_shr(bits).wrapping_shl(bits);
    if top_smax == top_smin {
        let init_max = sext(r.smax as u64, size);
        let init_min = sext(r.smin as u64, size);
        let s64_max = init_max.max(init_min);
        let s64_min = init_max.min(init_min);
        if (s64_max >= 0) == (s64_min >= 0) {
            r.smin = s64_min;
            r.s32_min = s64_min as i32;
            r.smax = s64_max;
            r.s32_max = s64_max as i32;
            r.umin = s64_min as u64;
            r.u32_min = s64_min as u32;
            r.umax = s64_max as u64;
            r.u32_max = s64_max as u32;
            r.var_off = Tnum::range(s64_min as u64, s64_max as u64);
            return;
        }
    }
    set_sext64_default_val(r, size);
}

/// `set_sext32_default_val`.
fn set_sext32_default_val(r: &mut Scalar, size: u8) {
    if size == 1 {
        r.s32_min = i32::from(i8::MIN);
        r.s32_max = i32::from(i8::MAX);
    } else {
        r.s32_min = i32::from(i16::MIN);
        r.s32_max = i32::from(i16::MAX);
    }
    r.u32_min = 0;
    r.u32_max = u32::MAX;
    r.var_off = Tnum::UNKNOWN.subreg();
}

/// `coerce_subreg_to_size_sx`: sign-extend the low `size` bytes (1 or 2) into 32 bits.
pub(super) fn coerce_subreg_to_size_sx(r: &mut Scalar, size: u8) {
    if r.var_off.is_const() {
        // The kernel's tnum_const((s8)u32_val) sign-extends to 64 bits; the caller's
        // zext_32_to_64 then keeps only the low half.
        let v = sext(r.var_off.value, size) as u64;
        r.var_off = Tnum::konst(v);
        let v32 = v as u32;
        r.s32_min = v32 as i32;
        r.s32_max = v32 as i32;
        r.u32_min = v32;
        r.u32_max = v32;
        return;
    }
    let bits = u32::from(size) * 8;
    let top_smax = (r.s32_max as u32).wrapping_shr(bits).wrapping_shl(bits);
    let top_smin = (r.s32_min as u32).wrapping_shr(bits).wrapping_shl(bits);
    if top_smax == top_smin {
        let init_max = sext(r.s32_max as u64, size) as i32;
        let init_min = sext(r.s32_min as u64, size) as i32;
        let s32_max = init_max.max(init_min);
        let s32_min = init_max.min(init_min);
        if (s32_min >= 0) == (s32_max >= 0) {
            r.s32_min = s32_min;
            r.s32_max = s32_max;
            r.u32_min = s32_min as u32;
            r.u32_max = s32_max as u32;
            r.var_off = Tnum::range(s32_min as i64 as u64, s32_max as i64 as u64).subreg();
            return;
        }
    }
    set_sext32_default_val(r, size);
}
