//! The abstract domain of scalars: what the verifier knows about a number in a register.
//!
//! A [`Scalar`] is the value-tracking part of the kernel's `struct bpf_reg_state`: a [`Tnum`]
//! (known bits) plus signed and unsigned bounds in 64 and 32 bits. The operations reproduce
//! Linux 6.18 (`kernel/bpf/verifier.c`, `kernel/bpf/tnum.c`, `kernel/bpf/log.c`, including
//! the 6.18.y stable fixes the test kernel runs: `tnum_step` single-value bounds, s32
//! sign-boundary deduction, byte-swap tracking, tnum-overlap JEQ/JNE) exactly, quirks
//! included, because verdicts and the log text depend on them:
//! - [`Scalar::sync`] is `reg_bounds_sync`;
//! - [`alu`], [`neg`], [`end`], [`movsx`] are `adjust_scalar_min_max_vals` and the scalar MOV
//!   cases of `check_alu_op`; [`and_or_fork`] is `maybe_fork_scalars`;
//! - [`branch_taken`], [`refine`] and [`refine_same`] are `is_scalar_branch_taken` and
//!   `reg_set_min_max`; [`Scalar::sanity_check`] is `reg_bounds_sanity_check`;
//! - [`Scalar::write_log`] prints a scalar as `print_reg_state` does at log level 2.
//!
//! Everything is `Copy`, allocation-free and panic-free: the explorer calls these millions of
//! times. The tests check it against the running kernel (`tests/scalar_kernel_diff.rs`),
//! against recorded kernel logs (`tests/scalar_golden.rs`) and for soundness against native
//! arithmetic (`tests/scalar_soundness.rs`).
//!
//! # Example
//! The states Linux 6.18 logs for `r0 = bpf_get_prandom_u32(); r0 &= 255; if r0 > 10 goto`:
//! ```
//! use bpfkit_isa::{AluOp, JmpCond, Width};
//! use bpfkit_verifier::scalar::{alu, branch_taken, reg_set_min_max, Scalar};
//!
//! let r0 = alu(AluOp::And, Width::W64, &Scalar::unknown(), &Scalar::from_imm(255));
//! assert_eq!(
//!     r0.to_string(),
//!     "scalar(smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))"
//! );
//! let ten = Scalar::from_imm(10);
//! assert_eq!(branch_taken(JmpCond::Gt, Width::W64, &r0, &ten), None);
//! let b = reg_set_min_max(JmpCond::Gt, Width::W64, &r0, &ten, false);
//! assert_eq!(
//!     b.fallthrough.0.to_string(),
//!     "scalar(smin=smin32=0,smax=umax=smax32=umax32=10,var_off=(0x0; 0xf))"
//! );
//! assert_eq!(
//!     b.taken.0.to_string(),
//!     "scalar(smin=umin=smin32=umin32=11,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))"
//! );
//! assert!(b.violations.is_empty());
//! ```
//!
//! # What the caller does, as the kernel does
//! - **Immediates** are operands as `Scalar::from_imm(imm)`: sign-extended to 64 bits for
//!   ALU, ALU64, JMP and JMP32 alike (`__mark_reg_known(&off_reg, insn->imm)`). Only
//!   `w = imm` (32-bit MOV) loads `(u32)imm`: `Scalar::known(u64::from(imm as u32))`.
//! - **Rejections before the transfer** are the caller's: `div by zero` for an immediate 0,
//!   `invalid shift %d` for an immediate outside `0..width`.
//! - **AND/OR with a constant** on a value in `[-1, 0]`: call [`and_or_fork`] first; on
//!   `Some(f)`, push a state that restarts at the same instruction with the destination set
//!   to `f.pushed`, and continue with `f.continue_with` as the destination operand.
//! - **Conditional jumps**: when [`branch_taken`] is `None`, [`reg_set_min_max`] gives both
//!   branches and the violation lines to log, in the kernel's order. By hand: compute both
//!   branches with [`refine`] (`taken = true` for the jump, `false` for the fall-through), then run
//!   [`Scalar::sanity_check`] on `true_reg1`, `true_reg2`, `false_reg1`, `false_reg2` in that
//!   order, logging each returned line. For a register compared with itself use
//!   [`refine_same`] and check the one register twice per branch (`true_reg1` and
//!   `true_reg2`, then `false_reg1` and `false_reg2`), as the kernel's aliased pointers do.
//!   For an immediate the second operand is a copy of the immediate: check it too (it can log
//!   a violation), then drop it.
//! - **After ALU and loads** the kernel calls `reg_bounds_sanity_check(.., "alu")` /
//!   (`"ldx"`): [`Scalar::sanity_check`] with that name.
//! - **Narrow loads**: `Scalar::unknown()` then [`Scalar::coerce_to_size`]; sign-extending
//!   loads [`Scalar::coerce_to_size_sx`] (not synced, as in the kernel).
//! - **Printing**: after `R1=` (or `fp-8=` for a spilled scalar) call [`Scalar::write_log`]
//!   with the register's precision mark and id in [`LogTags`].
//! - **Pointer arithmetic**: the variable offset of `ptr += x` / `ptr -= x` is [`ptr_add`] /
//!   [`ptr_sub`] (or [`ptr_keep`] when a constant is folded into the fixed offset); run
//!   `check_reg_sane_offset` on the result, then [`Scalar::sync`]. A pointer's text inside its
//!   parentheses ends with [`Scalar::write_pointer_var`].
//! - **Pruning**: a precise old scalar covers a new one when [`Scalar::includes`] holds (the
//!   id mapping of `check_scalar_ids` is the caller's).

mod alu;
mod bounds;
mod branch;
mod pointer;
mod print;
#[cfg(test)]
mod tests;
mod tnum;

pub use alu::{alu, and_or_fork, end, movsx, neg, AluFork};
pub use branch::{branch_taken, refine, refine_same, reg_set_min_max, Branches};
pub use pointer::{ptr_add, ptr_keep, ptr_sub};
pub use print::{write_snum, write_unum, LogTags};
pub use tnum::Tnum;

/// What the verifier knows about a scalar value (the scalar fields of `bpf_reg_state`).
///
/// All eight bounds and the tnum describe the same set of values; [`Scalar::sync`] makes them
/// agree as far as the kernel does.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Scalar {
    /// Known bits (`var_off`).
    pub var_off: Tnum,
    /// Smallest value as signed 64-bit (`smin_value`).
    pub smin: i64,
    /// Largest value as signed 64-bit (`smax_value`).
    pub smax: i64,
    /// Smallest value as unsigned 64-bit (`umin_value`).
    pub umin: u64,
    /// Largest value as unsigned 64-bit (`umax_value`).
    pub umax: u64,
    /// Smallest low half as signed 32-bit (`s32_min_value`).
    pub s32_min: i32,
    /// Largest low half as signed 32-bit (`s32_max_value`).
    pub s32_max: i32,
    /// Smallest low half as unsigned 32-bit (`u32_min_value`).
    pub u32_min: u32,
    /// Largest low half as unsigned 32-bit (`u32_max_value`).
    pub u32_max: u32,
}

impl Default for Scalar {
    fn default() -> Self {
        Scalar::unknown()
    }
}

impl Scalar {
    /// The constant `v` (`___mark_reg_known`).
    #[doc(alias = "__mark_reg_known")]
    #[must_use]
    pub const fn known(v: u64) -> Scalar {
        Scalar {
            var_off: Tnum::konst(v),
            smin: v as i64,
            smax: v as i64,
            umin: v,
            umax: v,
            s32_min: v as i32,
            s32_max: v as i32,
            u32_min: v as u32,
            u32_max: v as u32,
        }
    }

    /// An instruction's immediate as the kernel sees it as an operand: sign-extended to 64 bits
    /// for both ALU and ALU64, JMP and JMP32.
    #[must_use]
    pub const fn from_imm(imm: i32) -> Scalar {
        Scalar::known(imm as i64 as u64)
    }

    /// A completely unknown value (the scalar part of `__mark_reg_unknown`).
    #[doc(alias = "__mark_reg_unknown")]
    #[must_use]
    pub const fn unknown() -> Scalar {
        Scalar {
            var_off: Tnum::UNKNOWN,
            smin: i64::MIN,
            smax: i64::MAX,
            umin: 0,
            umax: u64::MAX,
            s32_min: i32::MIN,
            s32_max: i32::MAX,
            u32_min: 0,
            u32_max: u32::MAX,
        }
    }

    /// An unknown value in `[umin, umax]` (unsigned), synced as the kernel would after learning
    /// those bounds (e.g. a helper's return range, a narrow load). Used by callers and tests.
    #[must_use]
    pub fn unsigned_range(umin: u64, umax: u64) -> Scalar {
        let mut s = Scalar::unknown();
        s.umin = umin;
        s.umax = umax;
        s.sync();
        s
    }

    /// An unknown value in `[smin, smax]` (signed), synced.
    #[must_use]
    pub fn signed_range(smin: i64, smax: i64) -> Scalar {
        let mut s = Scalar::unknown();
        s.smin = smin;
        s.smax = smax;
        s.sync();
        s
    }

    /// Whether the value is one known constant (`tnum_is_const(var_off)`), the test the kernel
    /// uses for "known" everywhere (printing, pointer offsets, helper sizes).
    #[must_use]
    pub const fn is_const(&self) -> bool {
        self.var_off.is_const()
    }

    /// The constant, when [`Scalar::is_const`].
    #[must_use]
    pub const fn const_value(&self) -> Option<u64> {
        if self.is_const() {
            Some(self.var_off.value)
        } else {
            None
        }
    }

    /// Whether the low 32 bits are one known constant (`tnum_subreg_is_const`).
    #[must_use]
    pub const fn is_subreg_const(&self) -> bool {
        self.var_off.subreg_is_const()
    }

    /// Whether this is the constant 0 (`register_is_null` for a scalar).
    #[must_use]
    pub const fn is_zero(&self) -> bool {
        self.var_off.equals_const(0)
    }

    /// Whether every bound and the tnum are at their widest (`__is_scalar_unbounded`).
    #[must_use]
    pub const fn is_unbounded(&self) -> bool {
        self.var_off.is_unknown()
            && self.smin == i64::MIN
            && self.smax == i64::MAX
            && self.umin == 0
            && self.umax == u64::MAX
            && self.s32_min == i32::MIN
            && self.s32_max == i32::MAX
            && self.u32_min == 0
            && self.u32_max == u32::MAX
    }

    /// Whether the concrete 64-bit value `v` is allowed by every component of the scalar.
    #[must_use]
    pub const fn contains(&self, v: u64) -> bool {
        let lo = v as u32;
        self.var_off.contains(v)
            && self.smin <= v as i64
            && v as i64 <= self.smax
            && self.umin <= v
            && v <= self.umax
            && self.s32_min <= lo as i32
            && lo as i32 <= self.s32_max
            && self.u32_min <= lo
            && lo <= self.u32_max
    }

    /// Whether the bounds are self-consistent, as `reg_bounds_sanity_check` demands (min ≤ max
    /// in all four domains, and a constant tnum equal to the bounds); see
    /// [`Scalar::sanity_check`] for what the kernel does when they are not.
    #[must_use]
    pub const fn is_sane(&self) -> bool {
        if self.umin > self.umax
            || self.smin > self.smax
            || self.u32_min > self.u32_max
            || self.s32_min > self.s32_max
        {
            return false;
        }
        if self.var_off.is_const() {
            let u = self.var_off.value;
            if self.umin != u || self.umax != u || self.smin != u as i64 || self.smax != u as i64 {
                return false;
            }
        }
        if self.var_off.subreg_is_const() {
            let u = self.var_off.value as u32;
            if self.u32_min != u
                || self.u32_max != u
                || self.s32_min != u as i32
                || self.s32_max != u as i32
            {
                return false;
            }
        }
        true
    }

    /// Whether every value `cur` allows is allowed by `self`, as state pruning asks of a
    /// precise scalar: `range_within(self, cur) && tnum_in(self.var_off, cur.var_off)` (the
    /// scalar part of `regsafe`).
    #[doc(alias = "range_within")]
    #[must_use]
    pub const fn includes(&self, cur: &Scalar) -> bool {
        self.umin <= cur.umin
            && self.umax >= cur.umax
            && self.smin <= cur.smin
            && self.smax >= cur.smax
            && self.u32_min <= cur.u32_min
            && self.u32_max >= cur.u32_max
            && self.s32_min <= cur.s32_min
            && self.s32_max >= cur.s32_max
            && self.var_off.includes(cur.var_off)
    }

    /// The kernel's `reg_bounds_sanity_check`: on contradictory bounds (a dead branch the
    /// kernel did not prune), returns the line it logs, e.g. `verifier bug: REG INVARIANTS
    /// VIOLATION (true_reg1): range bounds violation u64=[0x1, 0x2] ...`, and resets the
    /// bounds to unbounded keeping the tnum, as Linux 6.18 does before continuing. `ctx` names
    /// the caller as the kernel does: `alu`, `ldx`, `true_reg1`, `true_reg2`, `false_reg1`,
    /// `false_reg2`, ...
    pub fn sanity_check(&mut self, ctx: &str) -> Option<String> {
        let msg = if self.umin > self.umax
            || self.smin > self.smax
            || self.u32_min > self.u32_max
            || self.s32_min > self.s32_max
        {
            "range bounds violation"
        } else if self.var_off.is_const()
            && (self.umin != self.var_off.value
                || self.umax != self.var_off.value
                || self.smin != self.var_off.value as i64
                || self.smax != self.var_off.value as i64)
        {
            "const tnum out of sync with range bounds"
        } else if self.var_off.subreg_is_const() && {
            let u = self.var_off.value as u32;
            self.u32_min != u
                || self.u32_max != u
                || self.s32_min != u as i32
                || self.s32_max != u as i32
        } {
            "const subreg tnum out of sync with range bounds"
        } else {
            return None;
        };
        let line = format!(
            "verifier bug: REG INVARIANTS VIOLATION ({ctx}): {msg} u64=[{:#x}, {:#x}] \
             s64=[{:#x}, {:#x}] u32=[{:#x}, {:#x}] s32=[{:#x}, {:#x}] var_off=({:#x}, {:#x})",
            self.umin,
            self.umax,
            self.smin as u64,
            self.smax as u64,
            self.u32_min,
            self.u32_max,
            self.s32_min as u32,
            self.s32_max as u32,
            self.var_off.value,
            self.var_off.mask,
        );
        self.mark_unbounded();
        Some(line)
    }

    /// Brings the bounds and the tnum into agreement (`reg_bounds_sync`): bounds from the
    /// tnum, signed from unsigned and back, 32 from 64 and back (three rounds, as the kernel),
    /// then the tnum from the bounds.
    #[doc(alias = "reg_bounds_sync")]
    pub fn sync(&mut self) {
        bounds::sync(self);
    }

    /// A copy after [`Scalar::sync`].
    #[must_use]
    pub fn synced(mut self) -> Scalar {
        self.sync();
        self
    }

    /// Sets every bound to its widest, keeping the tnum (`__mark_reg_unbounded`).
    pub fn mark_unbounded(&mut self) {
        bounds::mark_unbounded(self);
    }

    /// What a 32-bit operation leaves in the register: the upper half zero, the 64-bit bounds
    /// taken from the 32-bit ones (`zext_32_to_64`). Does not sync.
    pub fn zext_32_to_64(&mut self) {
        bounds::zext_32_to_64(self);
    }

    /// Truncates to the low `size` bytes, zero-extending (`coerce_reg_to_size`): narrow loads
    /// and `le16`/`le32`. Syncs.
    #[doc(alias = "coerce_reg_to_size")]
    pub fn coerce_to_size(&mut self, size: u8) {
        bounds::coerce_reg_to_size(self, size);
    }

    /// Sign-extends from the low `size` bytes (`coerce_reg_to_size_sx`): sign-extending loads
    /// and 64-bit `movsx`. Syncs.
    #[doc(alias = "coerce_reg_to_size_sx")]
    pub fn coerce_to_size_sx(&mut self, size: u8) {
        bounds::coerce_reg_to_size_sx(self, size);
    }

    /// Sign-extends the low `size` bytes into the 32-bit subregister
    /// (`coerce_subreg_to_size_sx`): 32-bit `movsx`. Does not zero-extend or sync.
    pub fn coerce_subreg_to_size_sx(&mut self, size: u8) {
        bounds::coerce_subreg_to_size_sx(self, size);
    }

    /// Sets the low 32 bits to a known value, keeping the upper tnum (`__mark_reg32_known`).
    pub fn mark_subreg_known(&mut self, v: u32) {
        self.var_off = self.var_off.const_subreg(v);
        self.s32_min = v as i32;
        self.s32_max = v as i32;
        self.u32_min = v;
        self.u32_max = v;
    }
}
