//! ALU transfer functions on scalars: `adjust_scalar_min_max_vals` and the scalar cases of
//! `check_alu_op` (MOV, MOVSX, NEG, END).
//!
//! Kernel counterpart: `scalar_min_max_{add,sub,mul,and,or,xor,lsh,rsh,arsh}`, their
//! `scalar32_*` versions, `scalar_byte_swap`, `is_safe_to_compute_dst_reg_range` and
//! `maybe_fork_scalars` in `kernel/bpf/verifier.c`. As in the kernel, a 32-bit operation
//! computes the 64-bit bounds too and then overwrites them with `zext_32_to_64`.

use super::bounds::{
    mark_reg32_unbounded, mark_reg64_unbounded, mark_unbounded, update_reg32_bounds,
    update_reg_bounds,
};
use super::Scalar;
use bpfkit_isa::{AluOp, EndKind, Width};

/// `is_safe_to_compute_dst_reg_range`: whether the kernel tracks the result at all. Division
/// and modulo are never tracked; shifts only by a constant below the width (the 64-bit `umax`
/// is compared even for 32-bit shifts, as the kernel does).
fn is_safe(op: AluOp, width: Width, src: &Scalar) -> bool {
    let (src_is_const, bits) = match width {
        Width::W32 => (
            src.var_off.subreg_is_const()
                && src.s32_min == src.s32_max
                && src.u32_min == src.u32_max,
            32,
        ),
        Width::W64 => (
            src.var_off.is_const() && src.smin == src.smax && src.umin == src.umax,
            64,
        ),
    };
    match op {
        AluOp::Add | AluOp::Sub | AluOp::Mul | AluOp::And | AluOp::Or | AluOp::Xor => true,
        AluOp::Lsh | AluOp::Rsh | AluOp::Arsh => src_is_const && src.umax < bits,
        _ => false,
    }
}

/// `dst op= src` on two scalars, as `adjust_scalar_min_max_vals` (plus the MOV/MOVSX cases of
/// `check_alu_op`) computes it, synced.
///
/// For an immediate operand, pass `Scalar::known(imm as i64 as u64)`: the kernel sign-extends
/// the immediate to 64 bits for both widths. AND/OR with a constant on a `[-1, 0]` value make
/// the kernel fork the state first: call [`and_or_fork`] before this. Division and modulo give
/// an unknown scalar (the kernel does not track them), as do shifts by a non-constant or
/// out-of-range amount; the caller rejects constant out-of-range shifts and division by an
/// immediate zero before getting here.
#[must_use]
pub fn alu(op: AluOp, width: Width, dst: &Scalar, src: &Scalar) -> Scalar {
    match op {
        AluOp::Mov => return mov(width, src),
        AluOp::Movsx(bits) => return movsx(width, bits, src),
        _ => {}
    }
    if !is_safe(op, width, src) {
        return Scalar::unknown();
    }
    let alu32 = width == Width::W32;
    let mut d = *dst;
    match op {
        AluOp::Add => {
            scalar32_add(&mut d, src);
            scalar_add(&mut d, src);
            d.var_off = d.var_off.add(src.var_off);
        }
        AluOp::Sub => {
            scalar32_sub(&mut d, src);
            scalar_sub(&mut d, src);
            d.var_off = d.var_off.sub(src.var_off);
        }
        AluOp::Mul => {
            d.var_off = d.var_off.mul(src.var_off);
            scalar32_mul(&mut d, src);
            scalar_mul(&mut d, src);
        }
        AluOp::And => {
            d.var_off = d.var_off.and(src.var_off);
            scalar32_and(&mut d, src);
            scalar_and(&mut d, src);
        }
        AluOp::Or => {
            d.var_off = d.var_off.or(src.var_off);
            scalar32_or(&mut d, src);
            scalar_or(&mut d, src);
        }
        AluOp::Xor => {
            d.var_off = d.var_off.xor(src.var_off);
            scalar32_xor(&mut d, src);
            scalar_xor(&mut d, src);
        }
        AluOp::Lsh => {
            if alu32 {
                scalar32_lsh(&mut d, src);
            } else {
                scalar_lsh(&mut d, src);
            }
        }
        AluOp::Rsh => {
            if alu32 {
                scalar32_rsh(&mut d, src);
            } else {
                scalar_rsh(&mut d, src);
            }
        }
        AluOp::Arsh => {
            if alu32 {
                scalar32_arsh(&mut d, src);
            } else {
                scalar_arsh(&mut d, src);
            }
        }
        _ => {}
    }
    if alu32 {
        d.zext_32_to_64();
    }
    d.sync();
    d
}

/// `dst = src` (64-bit: a plain copy) or `w_dst = w_src` (zero-extended, synced).
fn mov(width: Width, src: &Scalar) -> Scalar {
    let mut d = *src;
    if width == Width::W32 {
        d.zext_32_to_64();
        d.sync();
    }
    d
}

/// `dst = (s8/s16/s32) src` (ALU64, not synced, as the kernel) or `w_dst = (s8/s16) w_src`
/// (ALU, zero-extended and synced). `bits` is the instruction's offset: 8, 16 or 32.
#[must_use]
pub fn movsx(width: Width, bits: u8, src: &Scalar) -> Scalar {
    let mut d = *src;
    match width {
        Width::W64 => d.coerce_to_size_sx(bits / 8),
        Width::W32 => {
            d.coerce_subreg_to_size_sx(bits / 8);
            d.zext_32_to_64();
            d.sync();
        }
    }
    d
}

/// `dst = -dst` (BPF_NEG): `0 - dst` on the bounds, `tnum_neg` on the tnum.
#[must_use]
pub fn neg(width: Width, dst: &Scalar) -> Scalar {
    let old = *dst;
    let mut d = Scalar::known(0);
    scalar32_sub(&mut d, &old);
    scalar_sub(&mut d, &old);
    d.var_off = old.var_off.neg();
    if width == Width::W32 {
        d.zext_32_to_64();
    }
    d.sync();
    d
}

/// Byte-order conversion of the low `bits` (16, 32, 64) of `dst` on a little-endian host
/// (`scalar_byte_swap`): a swap permutes the tnum's bytes and forgets the bounds; `le16`,
/// `le32` (and the swapped 16/32-bit forms) then truncate. Never zero-extended otherwise.
#[must_use]
pub fn end(kind: EndKind, bits: u8, dst: &Scalar) -> Scalar {
    let mut d = *dst;
    // Little-endian host: to_le is a no-op, to_be and bswap swap.
    if kind != EndKind::ToLe {
        d.var_off = match bits {
            16 => d.var_off.bswap16(),
            32 => d.var_off.bswap32(),
            _ => d.var_off.bswap64(),
        };
        mark_unbounded(&mut d);
    }
    if bits == 16 || bits == 32 {
        d.coerce_to_size(bits / 8);
    }
    d.sync();
    d
}

/// The two states the kernel explores for `dst &= K` / `dst |= K` (`K` a 64-bit constant)
/// when `dst` is known to be in `[-1, 0]` (`maybe_fork_scalars`): it continues with `dst = -1`
/// and pushes a branch that restarts at the same instruction with `dst = 0`. When only the
/// 32-bit subregister is in `[-1, 0]` (s32 bounds), only the subregister is set, keeping the
/// upper half.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AluFork {
    /// The operand for the path that continues now (`dst = -1`).
    pub continue_with: Scalar,
    /// The operand for the pushed path, which restarts at the same instruction (`dst = 0`).
    pub pushed: Scalar,
}

/// Whether AND/OR forks the state (see [`AluFork`]); `None` for any other operation,
/// operand or value. The kernel checks the 64-bit bounds first, then the 32-bit ones, for
/// either instruction width.
#[must_use]
pub fn and_or_fork(op: AluOp, dst: &Scalar, src: &Scalar) -> Option<AluFork> {
    if !matches!(op, AluOp::And | AluOp::Or) || !src.is_const() {
        return None;
    }
    if dst.smin == -1 && dst.smax == 0 {
        return Some(AluFork {
            continue_with: Scalar::known(u64::MAX),
            pushed: Scalar::known(0),
        });
    }
    if dst.s32_min == -1 && dst.s32_max == 0 {
        let mut minus_one = *dst;
        minus_one.mark_subreg_known(u32::MAX);
        let mut zero = *dst;
        zero.mark_subreg_known(0);
        return Some(AluFork {
            continue_with: minus_one,
            pushed: zero,
        });
    }
    None
}

// --- the kernel's per-operation bound functions -------------------------------------------

fn scalar32_add(d: &mut Scalar, s: &Scalar) {
    match (
        d.s32_min.checked_add(s.s32_min),
        d.s32_max.checked_add(s.s32_max),
    ) {
        (Some(lo), Some(hi)) => {
            d.s32_min = lo;
            d.s32_max = hi;
        }
        _ => {
            d.s32_min = i32::MIN;
            d.s32_max = i32::MAX;
        }
    }
    let (lo, min_overflow) = d.u32_min.overflowing_add(s.u32_min);
    let (hi, max_overflow) = d.u32_max.overflowing_add(s.u32_max);
    if !min_overflow && max_overflow {
        d.u32_min = 0;
        d.u32_max = u32::MAX;
    } else {
        d.u32_min = lo;
        d.u32_max = hi;
    }
}

/// `scalar_min_max_add` (visible to the unit tests of its overflow rule).
pub(super) fn scalar_add(d: &mut Scalar, s: &Scalar) {
    match (d.smin.checked_add(s.smin), d.smax.checked_add(s.smax)) {
        (Some(lo), Some(hi)) => {
            d.smin = lo;
            d.smax = hi;
        }
        _ => {
            d.smin = i64::MIN;
            d.smax = i64::MAX;
        }
    }
    let (lo, min_overflow) = d.umin.overflowing_add(s.umin);
    let (hi, max_overflow) = d.umax.overflowing_add(s.umax);
    if !min_overflow && max_overflow {
        d.umin = 0;
        d.umax = u64::MAX;
    } else {
        d.umin = lo;
        d.umax = hi;
    }
}

fn scalar32_sub(d: &mut Scalar, s: &Scalar) {
    match (
        d.s32_min.checked_sub(s.s32_max),
        d.s32_max.checked_sub(s.s32_min),
    ) {
        (Some(lo), Some(hi)) => {
            d.s32_min = lo;
            d.s32_max = hi;
        }
        _ => {
            d.s32_min = i32::MIN;
            d.s32_max = i32::MAX;
        }
    }
    let (lo, min_underflow) = d.u32_min.overflowing_sub(s.u32_max);
    let (hi, max_underflow) = d.u32_max.overflowing_sub(s.u32_min);
    if min_underflow && !max_underflow {
        d.u32_min = 0;
        d.u32_max = u32::MAX;
    } else {
        d.u32_min = lo;
        d.u32_max = hi;
    }
}

fn scalar_sub(d: &mut Scalar, s: &Scalar) {
    match (d.smin.checked_sub(s.smax), d.smax.checked_sub(s.smin)) {
        (Some(lo), Some(hi)) => {
            d.smin = lo;
            d.smax = hi;
        }
        _ => {
            d.smin = i64::MIN;
            d.smax = i64::MAX;
        }
    }
    let (lo, min_underflow) = d.umin.overflowing_sub(s.umax);
    let (hi, max_underflow) = d.umax.overflowing_sub(s.umin);
    if min_underflow && !max_underflow {
        d.umin = 0;
        d.umax = u64::MAX;
    } else {
        d.umin = lo;
        d.umax = hi;
    }
}

fn scalar32_mul(d: &mut Scalar, s: &Scalar) {
    match (
        d.u32_max.checked_mul(s.u32_max),
        d.u32_min.checked_mul(s.u32_min),
    ) {
        (Some(hi), Some(lo)) => {
            d.u32_max = hi;
            d.u32_min = lo;
        }
        _ => {
            d.u32_min = 0;
            d.u32_max = u32::MAX;
        }
    }
    let p = [
        d.s32_min.checked_mul(s.s32_min),
        d.s32_min.checked_mul(s.s32_max),
        d.s32_max.checked_mul(s.s32_min),
        d.s32_max.checked_mul(s.s32_max),
    ];
    match p {
        [Some(a), Some(b), Some(c), Some(e)] => {
            d.s32_min = a.min(b).min(c).min(e);
            d.s32_max = a.max(b).max(c).max(e);
        }
        _ => {
            d.s32_min = i32::MIN;
            d.s32_max = i32::MAX;
        }
    }
}

fn scalar_mul(d: &mut Scalar, s: &Scalar) {
    match (d.umax.checked_mul(s.umax), d.umin.checked_mul(s.umin)) {
        (Some(hi), Some(lo)) => {
            d.umax = hi;
            d.umin = lo;
        }
        _ => {
            d.umin = 0;
            d.umax = u64::MAX;
        }
    }
    let p = [
        d.smin.checked_mul(s.smin),
        d.smin.checked_mul(s.smax),
        d.smax.checked_mul(s.smin),
        d.smax.checked_mul(s.smax),
    ];
    match p {
        [Some(a), Some(b), Some(c), Some(e)] => {
            d.smin = a.min(b).min(c).min(e);
            d.smax = a.max(b).max(c).max(e);
        }
        _ => {
            d.smin = i64::MIN;
            d.smax = i64::MAX;
        }
    }
}

/// Signed 32-bit bounds from a u32 range that does not cross the sign boundary.
fn s32_from_u32(d: &mut Scalar) {
    if (d.u32_min as i32) <= (d.u32_max as i32) {
        d.s32_min = d.u32_min as i32;
        d.s32_max = d.u32_max as i32;
    } else {
        d.s32_min = i32::MIN;
        d.s32_max = i32::MAX;
    }
}

/// Signed 64-bit bounds from a u64 range that does not cross the sign boundary.
fn s64_from_u64(d: &mut Scalar) {
    if (d.umin as i64) <= (d.umax as i64) {
        d.smin = d.umin as i64;
        d.smax = d.umax as i64;
    } else {
        d.smin = i64::MIN;
        d.smax = i64::MAX;
    }
}

fn scalar32_and(d: &mut Scalar, s: &Scalar) {
    let var32 = d.var_off.subreg();
    if s.var_off.subreg_is_const() && var32.is_const() {
        d.mark_subreg_known(var32.value as u32);
        return;
    }
    d.u32_min = var32.value as u32;
    d.u32_max = d.u32_max.min(s.u32_max);
    s32_from_u32(d);
}

fn scalar_and(d: &mut Scalar, s: &Scalar) {
    if s.var_off.is_const() && d.var_off.is_const() {
        *d = Scalar::known(d.var_off.value);
        return;
    }
    d.umin = d.var_off.value;
    d.umax = d.umax.min(s.umax);
    s64_from_u64(d);
    update_reg_bounds(d);
}

fn scalar32_or(d: &mut Scalar, s: &Scalar) {
    let var32 = d.var_off.subreg();
    if s.var_off.subreg_is_const() && var32.is_const() {
        d.mark_subreg_known(var32.value as u32);
        return;
    }
    d.u32_min = d.u32_min.max(s.u32_min);
    d.u32_max = (var32.value | var32.mask) as u32;
    s32_from_u32(d);
}

fn scalar_or(d: &mut Scalar, s: &Scalar) {
    if s.var_off.is_const() && d.var_off.is_const() {
        *d = Scalar::known(d.var_off.value);
        return;
    }
    d.umin = d.umin.max(s.umin);
    d.umax = d.var_off.value | d.var_off.mask;
    s64_from_u64(d);
    update_reg_bounds(d);
}

fn scalar32_xor(d: &mut Scalar, s: &Scalar) {
    let var32 = d.var_off.subreg();
    if s.var_off.subreg_is_const() && var32.is_const() {
        d.mark_subreg_known(var32.value as u32);
        return;
    }
    d.u32_min = var32.value as u32;
    d.u32_max = (var32.value | var32.mask) as u32;
    s32_from_u32(d);
}

fn scalar_xor(d: &mut Scalar, s: &Scalar) {
    if s.var_off.is_const() && d.var_off.is_const() {
        *d = Scalar::known(d.var_off.value);
        return;
    }
    d.umin = d.var_off.value;
    d.umax = d.var_off.value | d.var_off.mask;
    s64_from_u64(d);
    update_reg_bounds(d);
}

/// `__scalar32_min_max_lsh`.
fn scalar32_lsh_bounds(d: &mut Scalar, umin_val: u64, umax_val: u64) {
    // We lose all sign bit information (except what we can pick up from var_off).
    d.s32_min = i32::MIN;
    d.s32_max = i32::MAX;
    // If we might shift our top bit out, then we know nothing.
    if umax_val > 31 || u64::from(d.u32_max) > 1u64 << (31 - umax_val) {
        d.u32_min = 0;
        d.u32_max = u32::MAX;
    } else {
        d.u32_min = d.u32_min.wrapping_shl(umin_val as u32);
        d.u32_max = d.u32_max.wrapping_shl(umax_val as u32);
    }
}

fn scalar32_lsh(d: &mut Scalar, s: &Scalar) {
    let (umin_val, umax_val) = (u64::from(s.u32_min), u64::from(s.u32_max));
    let subreg = d.var_off.subreg();
    scalar32_lsh_bounds(d, umin_val, umax_val);
    d.var_off = subreg.lshift(umin_val as u8).subreg();
    mark_reg64_unbounded(d);
    update_reg32_bounds(d);
}

/// `__scalar64_min_max_lsh`.
fn scalar64_lsh_bounds(d: &mut Scalar, umin_val: u64, umax_val: u64) {
    // `<< 32` is the compiler's sign-extension idiom (`<<32 s>>32`): keep the signed bounds.
    if umin_val == 32 && umax_val == 32 {
        d.smax = i64::from(d.s32_max) << 32;
        d.smin = i64::from(d.s32_min) << 32;
    } else {
        d.smax = i64::MAX;
        d.smin = i64::MIN;
    }
    if umax_val > 63 || d.umax > 1u64 << (63 - umax_val) {
        d.umin = 0;
        d.umax = u64::MAX;
    } else {
        d.umin = d.umin.wrapping_shl(umin_val as u32);
        d.umax = d.umax.wrapping_shl(umax_val as u32);
    }
}

fn scalar_lsh(d: &mut Scalar, s: &Scalar) {
    let (umin_val, umax_val) = (s.umin, s.umax);
    // The 64-bit computation uses the unshifted 32-bit bounds, so it goes first.
    scalar64_lsh_bounds(d, umin_val, umax_val);
    scalar32_lsh_bounds(d, umin_val, umax_val);
    d.var_off = d.var_off.lshift(umin_val as u8);
    update_reg_bounds(d);
}

fn scalar32_rsh(d: &mut Scalar, s: &Scalar) {
    let subreg = d.var_off.subreg();
    let (umin_val, umax_val) = (s.u32_min, s.u32_max);
    d.s32_min = i32::MIN;
    d.s32_max = i32::MAX;
    d.var_off = subreg.rshift(umin_val as u8);
    d.u32_min = d.u32_min.wrapping_shr(umax_val);
    d.u32_max = d.u32_max.wrapping_shr(umin_val);
    mark_reg64_unbounded(d);
    update_reg32_bounds(d);
}

fn scalar_rsh(d: &mut Scalar, s: &Scalar) {
    let (umin_val, umax_val) = (s.umin, s.umax);
    d.smin = i64::MIN;
    d.smax = i64::MAX;
    d.var_off = d.var_off.rshift(umin_val as u8);
    d.umin = d.umin.wrapping_shr(umax_val as u32);
    d.umax = d.umax.wrapping_shr(umin_val as u32);
    mark_reg32_unbounded(d);
    update_reg_bounds(d);
}

fn scalar32_arsh(d: &mut Scalar, s: &Scalar) {
    let umin_val = s.u32_min;
    d.s32_min = d.s32_min.wrapping_shr(umin_val);
    d.s32_max = d.s32_max.wrapping_shr(umin_val);
    d.var_off = d.var_off.subreg().arshift(umin_val as u8, 32);
    d.u32_min = 0;
    d.u32_max = u32::MAX;
    mark_reg64_unbounded(d);
    update_reg32_bounds(d);
}

fn scalar_arsh(d: &mut Scalar, s: &Scalar) {
    let umin_val = s.umin;
    d.smin = d.smin.wrapping_shr(umin_val as u32);
    d.smax = d.smax.wrapping_shr(umin_val as u32);
    d.var_off = d.var_off.arshift(umin_val as u8, 64);
    d.umin = 0;
    d.umax = u64::MAX;
    mark_reg32_unbounded(d);
    update_reg_bounds(d);
}
