//! The engine's window onto the scalar domain ([`crate::scalar`]): the few operations the
//! transfer rules use, by value, so the rules read as arithmetic.

use bpfkit_isa::{AluOp, EndKind, JmpCond, Width};

pub use crate::scalar::Scalar;
use crate::scalar::{self as dom, LogTags};

/// An unknown value of `size` bytes, zero-extended (a narrow load).
#[must_use]
pub fn unknown_of_size(size: u32) -> Scalar {
    let mut s = Scalar::unknown();
    if size < 8 {
        s.coerce_to_size(size as u8);
    }
    s
}

/// `dst op= src` in `width` bits (`adjust_scalar_min_max_vals`).
#[must_use]
pub fn alu(op: AluOp, width: Width, dst: Scalar, src: Scalar) -> Scalar {
    dom::alu(op, width, &dst, &src)
}

/// `dst = -dst`.
#[must_use]
pub fn neg(width: Width, dst: Scalar) -> Scalar {
    dom::neg(width, &dst)
}

/// Byte-order conversion.
#[must_use]
pub fn end(kind: EndKind, bits: u8, dst: Scalar) -> Scalar {
    dom::end(kind, bits, &dst)
}

/// Sign-extending move from the low `bits`.
#[must_use]
pub fn movsx(width: Width, bits: u8, src: Scalar) -> Scalar {
    dom::movsx(width, bits, &src)
}

/// Whether `a cond b` is always (`Some(true)`) or never (`Some(false)`) true.
#[must_use]
pub fn branch_taken(cond: JmpCond, width: Width, a: Scalar, b: Scalar) -> Option<bool> {
    dom::branch_taken(cond, width, &a, &b)
}

/// `a` refined by `a cond a` being `taken` (a register compared with itself).
#[must_use]
pub fn refine_same(cond: JmpCond, width: Width, a: Scalar, taken: bool) -> Scalar {
    dom::refine_same(cond, width, &a, taken)
}

/// `a` and `b` refined by `a cond b` being `taken`.
#[must_use]
pub fn refine(cond: JmpCond, width: Width, a: Scalar, b: Scalar, taken: bool) -> (Scalar, Scalar) {
    dom::refine(cond, width, &a, &b, taken)
}

/// Whether every value `new` allows, `old` allows too (`range_within` + `tnum_in`).
#[must_use]
pub fn within(new: &Scalar, old: &Scalar) -> bool {
    old.smin <= new.smin
        && new.smax <= old.smax
        && old.umin <= new.umin
        && new.umax <= old.umax
        && old.s32_min <= new.s32_min
        && new.s32_max <= old.s32_max
        && old.u32_min <= new.u32_min
        && new.u32_max <= old.u32_max
        && old.var_off.includes(new.var_off)
}

/// The scalar's log text (`5`, `scalar(smin=...)`).
#[must_use]
pub fn log_text(s: &Scalar) -> String {
    s.log_text(LogTags::default())
}
