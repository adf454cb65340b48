//! The engine's window onto the scalar domain (`crate::scalar`): the few operations the
//! transfer rules use, so the rules do not depend on the domain's internal layout.
//!
//! Stand-in until the domain lands on main: constants are folded, everything else is unknown.

use bpfkit_isa::{AluOp, JmpCond, Width};

/// A scalar value: known bits plus bounds (stand-in with the domain's field names).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Scalar {
    /// Known value bits.
    pub value: u64,
    /// Unknown bits.
    pub mask: u64,
    /// Signed minimum.
    pub smin: i64,
    /// Signed maximum.
    pub smax: i64,
    /// Unsigned minimum.
    pub umin: u64,
    /// Unsigned maximum.
    pub umax: u64,
}

impl Scalar {
    /// The constant `v`.
    pub const fn known(v: u64) -> Scalar {
        Scalar { value: v, mask: 0, smin: v as i64, smax: v as i64, umin: v, umax: v }
    }
    /// Nothing known.
    pub const fn unknown() -> Scalar {
        Scalar { value: 0, mask: u64::MAX, smin: i64::MIN, smax: i64::MAX, umin: 0, umax: u64::MAX }
    }
    /// The constant, if known.
    pub const fn const_value(&self) -> Option<u64> {
        if self.mask == 0 {
            Some(self.value)
        } else {
            None
        }
    }
    /// Whether this is a known constant.
    pub const fn is_const(&self) -> bool {
        self.mask == 0
    }
    /// An unknown value of `size` bytes, zero-extended.
    pub fn unknown_of_size(size: u32) -> Scalar {
        if size >= 8 {
            return Scalar::unknown();
        }
        let max = (1u64 << (size * 8)) - 1;
        Scalar { value: 0, mask: max, smin: 0, smax: max as i64, umin: 0, umax: max }
    }
    /// Whether every value of `self` is in `old` (`range_within` + `tnum_in`).
    pub fn within(&self, old: &Scalar) -> bool {
        old.smin <= self.smin
            && self.smax <= old.smax
            && old.umin <= self.umin
            && self.umax <= old.umax
            && (self.value & !old.mask) == old.value
            && (self.mask & !old.mask) == 0
    }
    /// The kernel's text for a scalar register (`print_reg_state`).
    pub fn log_text(&self) -> String {
        match self.const_value() {
            Some(v) => snum(v as i64),
            None => "scalar()".to_string(),
        }
    }
}

fn snum(v: i64) -> String {
    if (-512..=512).contains(&v) {
        format!("{v}")
    } else {
        format!("{:#x}", v as u64)
    }
}

/// `dst op= src` in `width` bits.
pub fn alu(op: AluOp, width: Width, dst: Scalar, src: Scalar) -> Scalar {
    let (Some(a), Some(b)) = (dst.const_value(), src.const_value()) else {
        return Scalar::unknown();
    };
    let r = match width {
        Width::W64 => match op {
            AluOp::Add => a.wrapping_add(b),
            AluOp::Sub => a.wrapping_sub(b),
            AluOp::Mul => a.wrapping_mul(b),
            AluOp::Or => a | b,
            AluOp::And => a & b,
            AluOp::Xor => a ^ b,
            AluOp::Lsh => a.wrapping_shl(b as u32),
            AluOp::Rsh => a.wrapping_shr(b as u32),
            AluOp::Arsh => ((a as i64).wrapping_shr(b as u32)) as u64,
            AluOp::Mov => b,
            _ => return Scalar::unknown(),
        },
        Width::W32 => {
            let (a, b) = (a as u32, b as u32);
            u64::from(match op {
                AluOp::Add => a.wrapping_add(b),
                AluOp::Sub => a.wrapping_sub(b),
                AluOp::Mul => a.wrapping_mul(b),
                AluOp::Or => a | b,
                AluOp::And => a & b,
                AluOp::Xor => a ^ b,
                AluOp::Lsh => a.wrapping_shl(b),
                AluOp::Rsh => a.wrapping_shr(b),
                AluOp::Arsh => ((a as i32).wrapping_shr(b)) as u32,
                AluOp::Mov => b,
                _ => return Scalar::unknown(),
            })
        }
    };
    Scalar::known(r)
}

/// Whether `a cond b` is always (`Some(true)`) or never (`Some(false)`) true.
pub fn branch_taken(cond: JmpCond, width: Width, a: Scalar, b: Scalar) -> Option<bool> {
    let (Some(mut x), Some(mut y)) = (a.const_value(), b.const_value()) else {
        return None;
    };
    if width == Width::W32 {
        x = u64::from(x as u32);
        y = u64::from(y as u32);
    }
    let (sx, sy) = match width {
        Width::W32 => (i64::from(x as i32), i64::from(y as i32)),
        Width::W64 => (x as i64, y as i64),
    };
    Some(match cond {
        JmpCond::Eq => x == y,
        JmpCond::Ne => x != y,
        JmpCond::Gt => x > y,
        JmpCond::Ge => x >= y,
        JmpCond::Lt => x < y,
        JmpCond::Le => x <= y,
        JmpCond::Sgt => sx > sy,
        JmpCond::Sge => sx >= sy,
        JmpCond::Slt => sx < sy,
        JmpCond::Sle => sx <= sy,
        JmpCond::Set => x & y != 0,
    })
}

/// Refines `a` and `b` knowing that `a cond b` is `taken`.
pub fn refine(cond: JmpCond, width: Width, a: Scalar, b: Scalar, taken: bool) -> (Scalar, Scalar) {
    let eq = matches!((cond, taken), (JmpCond::Eq, true) | (JmpCond::Ne, false));
    if eq && width == Width::W64 {
        if b.is_const() {
            return (b, b);
        }
        if a.is_const() {
            return (a, a);
        }
    }
    (a, b)
}
