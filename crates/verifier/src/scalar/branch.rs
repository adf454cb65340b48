//! Conditional jumps on scalars: predicting the direction and refining both operands on each
//! branch.
//!
//! Kernel counterpart: `is_scalar_branch_taken`, `rev_opcode`, `flip_opcode`,
//! `regs_refine_cond_op` and `reg_set_min_max` in `kernel/bpf/verifier.c`.

use super::Scalar;
use bpfkit_isa::{JmpCond, Width};

/// The comparisons `regs_refine_cond_op` knows, including the negation of JSET that the kernel
/// encodes as `BPF_JSET | BPF_X`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cond {
    Jmp(JmpCond),
    NotSet,
}

/// `rev_opcode`: the condition of the fall-through branch.
fn rev(c: Cond) -> Cond {
    use JmpCond::*;
    match c {
        Cond::NotSet => Cond::Jmp(Set),
        Cond::Jmp(c) => match c {
            Eq => Cond::Jmp(Ne),
            Ne => Cond::Jmp(Eq),
            Set => Cond::NotSet,
            Ge => Cond::Jmp(Lt),
            Gt => Cond::Jmp(Le),
            Le => Cond::Jmp(Gt),
            Lt => Cond::Jmp(Ge),
            Sge => Cond::Jmp(Slt),
            Sgt => Cond::Jmp(Sle),
            Sle => Cond::Jmp(Sgt),
            Slt => Cond::Jmp(Sge),
        },
    }
}

/// `flip_opcode`: the condition with its operands swapped.
fn flip(c: JmpCond) -> JmpCond {
    use JmpCond::*;
    match c {
        Eq | Ne | Set => c,
        Ge => Le,
        Gt => Lt,
        Le => Ge,
        Lt => Gt,
        Sge => Sle,
        Sgt => Slt,
        Sle => Sge,
        Slt => Sgt,
    }
}

/// `is_reg_const`.
fn is_const(r: &Scalar, w: Width) -> bool {
    match w {
        Width::W32 => r.var_off.subreg_is_const(),
        Width::W64 => r.var_off.is_const(),
    }
}

/// `reg_const_value`.
fn const_value(r: &Scalar, w: Width) -> u64 {
    match w {
        Width::W32 => u64::from(r.var_off.value as u32),
        Width::W64 => r.var_off.value,
    }
}

/// Whether `if (a cond b)` is always taken (`Some(true)`), never (`Some(false)`) or either
/// (`None`), from the bounds and tnums of two scalars (`is_scalar_branch_taken`).
///
/// For an immediate, pass `Scalar::known(imm as i64 as u64)` (the kernel sign-extends it for
/// JMP32 too). A register compared with itself is passed as both operands: Linux 6.18 has no
/// special case for it.
#[must_use]
pub fn branch_taken(cond: JmpCond, width: Width, a: &Scalar, b: &Scalar) -> Option<bool> {
    let w32 = width == Width::W32;
    let (t1, t2) = if w32 {
        (a.var_off.subreg(), b.var_off.subreg())
    } else {
        (a.var_off, b.var_off)
    };
    let (umin1, umax1, smin1, smax1) = bounds(a, w32);
    let (umin2, umax2, smin2, smax2) = bounds(b, w32);
    use JmpCond::*;
    match cond {
        Eq | Ne => {
            let eq = cond == Eq;
            if t1.is_const() && t2.is_const() {
                return Some((t1.value == t2.value) == eq);
            }
            // Known bits that disagree (`tnum_overlap`).
            if !t1.overlaps(t2) {
                return Some(!eq);
            }
            // Ranges that cannot meet.
            if umin1 > umax2 || umax1 < umin2 || smin1 > smax2 || smax1 < smin2 {
                return Some(!eq);
            }
            if !w32
                && (a.u32_min > b.u32_max
                    || a.u32_max < b.u32_min
                    || a.s32_min > b.s32_max
                    || a.s32_max < b.s32_min)
            {
                return Some(!eq);
            }
            None
        }
        Set => {
            let (t1, t2) = if is_const(b, width) {
                (t1, t2)
            } else if is_const(a, width) {
                (t2, t1)
            } else {
                return None;
            };
            if (!t1.mask & t1.value) & t2.value != 0 {
                return Some(true);
            }
            if (t1.mask | t1.value) & t2.value == 0 {
                return Some(false);
            }
            None
        }
        Gt => ordered(umin1 > umax2, umax1 <= umin2),
        Sgt => ordered(smin1 > smax2, smax1 <= smin2),
        Lt => ordered(umax1 < umin2, umin1 >= umax2),
        Slt => ordered(smax1 < smin2, smin1 >= smax2),
        Ge => ordered(umin1 >= umax2, umax1 < umin2),
        Sge => ordered(smin1 >= smax2, smax1 < smin2),
        Le => ordered(umax1 <= umin2, umin1 > umax2),
        Sle => ordered(smax1 <= smin2, smin1 > smax2),
    }
}

fn ordered(taken: bool, not_taken: bool) -> Option<bool> {
    if taken {
        Some(true)
    } else if not_taken {
        Some(false)
    } else {
        None
    }
}

/// The bounds a comparison of `width` looks at, widened to 64 bits.
fn bounds(r: &Scalar, w32: bool) -> (u64, u64, i64, i64) {
    if w32 {
        (
            u64::from(r.u32_min),
            u64::from(r.u32_max),
            i64::from(r.s32_min),
            i64::from(r.s32_max),
        )
    } else {
        (r.umin, r.umax, r.smin, r.smax)
    }
}

/// `regs_refine_cond_op`: what `r1 cond r2` being true teaches about both.
///
/// The operands are `regs[i1]` and `regs[i2]`; the indices are equal when a register is
/// compared with itself, and then every update lands on the one register in the kernel's
/// order (its `reg1 == reg2` aliasing).
fn refine_cond(regs: &mut [Scalar; 2], i1: usize, i2: usize, cond: Cond, width: Width) {
    use JmpCond::*;
    let w32 = width == Width::W32;
    // GE/GT/SGE/SGT reuse the LE/LT/SLE/SLT logic with the operands swapped.
    let (i1, i2, cond) = match cond {
        Cond::Jmp(c @ (Ge | Gt | Sge | Sgt)) => (i2, i1, Cond::Jmp(flip(c))),
        c => (i1, i2, c),
    };
    match cond {
        Cond::Jmp(Eq) => {
            if w32 {
                regs[i1].u32_min = regs[i1].u32_min.max(regs[i2].u32_min);
                regs[i1].u32_max = regs[i1].u32_max.min(regs[i2].u32_max);
                regs[i1].s32_min = regs[i1].s32_min.max(regs[i2].s32_min);
                regs[i1].s32_max = regs[i1].s32_max.min(regs[i2].s32_max);
                regs[i2].u32_min = regs[i1].u32_min;
                regs[i2].u32_max = regs[i1].u32_max;
                regs[i2].s32_min = regs[i1].s32_min;
                regs[i2].s32_max = regs[i1].s32_max;
                let t = regs[i1]
                    .var_off
                    .subreg()
                    .intersect(regs[i2].var_off.subreg());
                regs[i1].var_off = regs[i1].var_off.with_subreg(t);
                regs[i2].var_off = regs[i2].var_off.with_subreg(t);
            } else {
                regs[i1].umin = regs[i1].umin.max(regs[i2].umin);
                regs[i1].umax = regs[i1].umax.min(regs[i2].umax);
                regs[i1].smin = regs[i1].smin.max(regs[i2].smin);
                regs[i1].smax = regs[i1].smax.min(regs[i2].smax);
                regs[i2].umin = regs[i1].umin;
                regs[i2].umax = regs[i1].umax;
                regs[i2].smin = regs[i1].smin;
                regs[i2].smax = regs[i1].smax;
                regs[i1].var_off = regs[i1].var_off.intersect(regs[i2].var_off);
                regs[i2].var_off = regs[i1].var_off;
            }
        }
        Cond::Jmp(Ne) => {
            let (i1, i2) = if is_const(&regs[i2], width) {
                (i1, i2)
            } else {
                (i2, i1)
            };
            if !is_const(&regs[i2], width) {
                return;
            }
            // Shave the constant off an edge of r1's ranges.
            let val = const_value(&regs[i2], width);
            if w32 {
                if regs[i1].u32_min == val as u32 {
                    regs[i1].u32_min = regs[i1].u32_min.wrapping_add(1);
                }
                if regs[i1].u32_max == val as u32 {
                    regs[i1].u32_max = regs[i1].u32_max.wrapping_sub(1);
                }
                if regs[i1].s32_min == val as i32 {
                    regs[i1].s32_min = regs[i1].s32_min.wrapping_add(1);
                }
                if regs[i1].s32_max == val as i32 {
                    regs[i1].s32_max = regs[i1].s32_max.wrapping_sub(1);
                }
            } else {
                if regs[i1].umin == val {
                    regs[i1].umin = regs[i1].umin.wrapping_add(1);
                }
                if regs[i1].umax == val {
                    regs[i1].umax = regs[i1].umax.wrapping_sub(1);
                }
                if regs[i1].smin == val as i64 {
                    regs[i1].smin = regs[i1].smin.wrapping_add(1);
                }
                if regs[i1].smax == val as i64 {
                    regs[i1].smax = regs[i1].smax.wrapping_sub(1);
                }
            }
        }
        Cond::Jmp(Set) => {
            let (i1, i2) = if is_const(&regs[i2], width) {
                (i1, i2)
            } else {
                (i2, i1)
            };
            if !is_const(&regs[i2], width) {
                return;
            }
            let val = const_value(&regs[i2], width);
            // Only a single tested bit tells which bit is set.
            if !val.is_power_of_two() {
                return;
            }
            if w32 {
                let t = regs[i1].var_off.subreg().or(super::Tnum::konst(val));
                regs[i1].var_off = regs[i1].var_off.with_subreg(t);
            } else {
                regs[i1].var_off = regs[i1].var_off.or(super::Tnum::konst(val));
            }
        }
        Cond::NotSet => {
            let (i1, i2) = if is_const(&regs[i2], width) {
                (i1, i2)
            } else {
                (i2, i1)
            };
            if !is_const(&regs[i2], width) {
                return;
            }
            let val = const_value(&regs[i2], width);
            // Forget the ranges before narrowing the tnum, so that a dead branch stays sane.
            super::bounds::mark_unbounded(&mut regs[i1]);
            if w32 {
                let t = regs[i1].var_off.subreg().and(super::Tnum::konst(!val));
                regs[i1].var_off = regs[i1].var_off.with_subreg(t);
            } else {
                regs[i1].var_off = regs[i1].var_off.and(super::Tnum::konst(!val));
            }
        }
        Cond::Jmp(Le) => {
            if w32 {
                regs[i1].u32_max = regs[i1].u32_max.min(regs[i2].u32_max);
                regs[i2].u32_min = regs[i1].u32_min.max(regs[i2].u32_min);
            } else {
                regs[i1].umax = regs[i1].umax.min(regs[i2].umax);
                regs[i2].umin = regs[i1].umin.max(regs[i2].umin);
            }
        }
        Cond::Jmp(Lt) => {
            if w32 {
                regs[i1].u32_max = regs[i1].u32_max.min(regs[i2].u32_max.wrapping_sub(1));
                regs[i2].u32_min = regs[i1].u32_min.wrapping_add(1).max(regs[i2].u32_min);
            } else {
                regs[i1].umax = regs[i1].umax.min(regs[i2].umax.wrapping_sub(1));
                regs[i2].umin = regs[i1].umin.wrapping_add(1).max(regs[i2].umin);
            }
        }
        Cond::Jmp(Sle) => {
            if w32 {
                regs[i1].s32_max = regs[i1].s32_max.min(regs[i2].s32_max);
                regs[i2].s32_min = regs[i1].s32_min.max(regs[i2].s32_min);
            } else {
                regs[i1].smax = regs[i1].smax.min(regs[i2].smax);
                regs[i2].smin = regs[i1].smin.max(regs[i2].smin);
            }
        }
        Cond::Jmp(Slt) => {
            if w32 {
                regs[i1].s32_max = regs[i1].s32_max.min(regs[i2].s32_max.wrapping_sub(1));
                regs[i2].s32_min = regs[i1].s32_min.wrapping_add(1).max(regs[i2].s32_min);
            } else {
                regs[i1].smax = regs[i1].smax.min(regs[i2].smax.wrapping_sub(1));
                regs[i2].smin = regs[i1].smin.wrapping_add(1).max(regs[i2].smin);
            }
        }
        Cond::Jmp(Ge | Gt | Sge | Sgt) => {}
    }
}

/// The operands on one branch of `if (a cond b)` when [`branch_taken`] could not decide
/// (`reg_set_min_max`): `(a, b)` refined by the condition being true (`taken`, the jump) or
/// false (the fall-through), each synced.
///
/// A branch whose refined bounds are contradictory (see [`Scalar::is_sane`]) is dead; the
/// caller decides what to do with it as the kernel's `reg_bounds_sanity_check` does.
#[must_use]
pub fn refine(
    cond: JmpCond,
    width: Width,
    a: &Scalar,
    b: &Scalar,
    taken: bool,
) -> (Scalar, Scalar) {
    let c = if taken {
        Cond::Jmp(cond)
    } else {
        rev(Cond::Jmp(cond))
    };
    let mut regs = [*a, *b];
    refine_cond(&mut regs, 0, 1, c, width);
    regs[0].sync();
    regs[1].sync();
    (regs[0], regs[1])
}

/// [`refine`] for a register compared with itself (`if r1 < r1`): Linux 6.18 refines it as
/// two aliased operands and then syncs it twice, which this reproduces.
#[must_use]
pub fn refine_same(cond: JmpCond, width: Width, a: &Scalar, taken: bool) -> Scalar {
    let c = if taken {
        Cond::Jmp(cond)
    } else {
        rev(Cond::Jmp(cond))
    };
    let mut regs = [*a, *a];
    refine_cond(&mut regs, 0, 0, c, width);
    regs[0].sync();
    regs[0].sync();
    regs[0]
}

/// Both branches of an undecided `if (a cond b)`, as `reg_set_min_max` leaves them.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Branches {
    /// `(a, b)` on the jump (condition true).
    pub taken: (Scalar, Scalar),
    /// `(a, b)` on the fall-through (condition false).
    pub fallthrough: (Scalar, Scalar),
    /// The `verifier bug: REG INVARIANTS VIOLATION ...` lines the kernel logs for dead
    /// branches, in its order (empty, and not allocated, in the common case).
    pub violations: Vec<String>,
}

/// `reg_set_min_max` for two scalars: both branches refined and synced, then the kernel's
/// sanity checks in its order (`true_reg1`, `true_reg2`, `false_reg1`, `false_reg2`), each
/// violation logged and its register reset to unbounded. With `same_reg` (`if r1 < r1`), `b`
/// is ignored and both operands are `a`, aliased as in the kernel: the one register is refined
/// for both roles and checked twice per branch. For an immediate, `b` is
/// `Scalar::from_imm(imm)` and its refined copies are to be dropped.
#[must_use]
pub fn reg_set_min_max(
    cond: JmpCond,
    width: Width,
    a: &Scalar,
    b: &Scalar,
    same_reg: bool,
) -> Branches {
    let mut violations = Vec::new();
    let mut check = |r: &mut Scalar, ctx: &str| {
        if let Some(line) = r.sanity_check(ctx) {
            violations.push(line);
        }
    };
    if same_reg {
        let mut t = refine_same(cond, width, a, true);
        let mut f = refine_same(cond, width, a, false);
        check(&mut t, "true_reg1");
        check(&mut t, "true_reg2");
        check(&mut f, "false_reg1");
        check(&mut f, "false_reg2");
        return Branches {
            taken: (t, t),
            fallthrough: (f, f),
            violations,
        };
    }
    let (mut ta, mut tb) = refine(cond, width, a, b, true);
    let (mut fa, mut fb) = refine(cond, width, a, b, false);
    check(&mut ta, "true_reg1");
    check(&mut tb, "true_reg2");
    check(&mut fa, "false_reg1");
    check(&mut fb, "false_reg2");
    Branches {
        taken: (ta, tb),
        fallthrough: (fa, fb),
        violations,
    }
}
