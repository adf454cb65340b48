//! Tracked numbers: which bits of a 64-bit value are known 0, known 1 or unknown.
//!
//! Kernel counterpart: `kernel/bpf/tnum.c` and `include/linux/tnum.h`. Every operation here is
//! the kernel's, bit for bit (including the over-approximations, e.g. [`Tnum::range`]), because
//! the verifier's verdicts and log depend on the exact masks.

/// A tristate number: bit `i` is unknown when `mask` has it set, otherwise it equals bit `i` of
/// `value`. The invariant `value & mask == 0` holds for every tnum built by these operations.
#[doc(alias = "struct tnum")]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Tnum {
    /// The known bits' values (0 where unknown).
    pub value: u64,
    /// The unknown bits.
    pub mask: u64,
}

impl Tnum {
    /// A completely unknown value (`tnum_unknown`).
    pub const UNKNOWN: Tnum = Tnum {
        value: 0,
        mask: u64::MAX,
    };

    /// A tnum from its two words.
    #[must_use]
    pub const fn new(value: u64, mask: u64) -> Tnum {
        Tnum { value, mask }
    }

    /// A known constant (`tnum_const`).
    #[must_use]
    pub const fn konst(value: u64) -> Tnum {
        Tnum { value, mask: 0 }
    }

    /// The smallest tnum holding every value of `[min, max]` — and possibly more: the range
    /// `0..=2` gives `(0; 0x3)`, which also holds 3 (`tnum_range`).
    #[must_use]
    pub const fn range(min: u64, max: u64) -> Tnum {
        let chi = min ^ max;
        let bits = 64 - chi.leading_zeros();
        if bits > 63 {
            return Tnum::UNKNOWN;
        }
        let delta = (1u64 << bits) - 1;
        Tnum {
            value: min & !delta,
            mask: delta,
        }
    }

    /// Whether every bit is known (`tnum_is_const`).
    #[must_use]
    pub const fn is_const(self) -> bool {
        self.mask == 0
    }

    /// Whether this is exactly the constant `v` (`tnum_equals_const`).
    #[must_use]
    pub const fn equals_const(self, v: u64) -> bool {
        self.is_const() && self.value == v
    }

    /// Whether no bit is known (`tnum_is_unknown`).
    #[must_use]
    pub const fn is_unknown(self) -> bool {
        self.mask == u64::MAX
    }

    /// Whether the concrete value `v` is one this tnum allows.
    #[must_use]
    pub const fn contains(self, v: u64) -> bool {
        v & !self.mask == self.value
    }

    /// Shift left by a known amount (`tnum_lshift`); the verifier only shifts by less than 64
    /// (larger amounts wrap instead of panicking).
    #[must_use]
    pub const fn lshift(self, shift: u8) -> Tnum {
        Tnum {
            value: self.value.wrapping_shl(shift as u32),
            mask: self.mask.wrapping_shl(shift as u32),
        }
    }

    /// Logical shift right by a known amount (`tnum_rshift`); amounts of 64 and more wrap.
    #[must_use]
    pub const fn rshift(self, shift: u8) -> Tnum {
        Tnum {
            value: self.value.wrapping_shr(shift as u32),
            mask: self.mask.wrapping_shr(shift as u32),
        }
    }

    /// Arithmetic shift right by `min_shift` in 32 or 64 bits (`tnum_arshift`); the 32-bit
    /// form works on the low half and returns it zero-extended.
    #[must_use]
    pub const fn arshift(self, min_shift: u8, bitness: u8) -> Tnum {
        if bitness == 32 {
            Tnum {
                value: (self.value as i32).wrapping_shr(min_shift as u32) as u32 as u64,
                mask: (self.mask as i32).wrapping_shr(min_shift as u32) as u32 as u64,
            }
        } else {
            Tnum {
                value: (self.value as i64).wrapping_shr(min_shift as u32) as u64,
                mask: (self.mask as i64).wrapping_shr(min_shift as u32) as u64,
            }
        }
    }

    /// Sum (`tnum_add`).
    #[must_use]
    pub const fn add(self, b: Tnum) -> Tnum {
        let sm = self.mask.wrapping_add(b.mask);
        let sv = self.value.wrapping_add(b.value);
        let sigma = sm.wrapping_add(sv);
        let chi = sigma ^ sv;
        let mu = chi | self.mask | b.mask;
        Tnum {
            value: sv & !mu,
            mask: mu,
        }
    }

    /// Difference (`tnum_sub`).
    #[must_use]
    pub const fn sub(self, b: Tnum) -> Tnum {
        let dv = self.value.wrapping_sub(b.value);
        let alpha = dv.wrapping_add(self.mask);
        let beta = dv.wrapping_sub(b.mask);
        let chi = alpha ^ beta;
        let mu = chi | self.mask | b.mask;
        Tnum {
            value: dv & !mu,
            mask: mu,
        }
    }

    /// Two's complement negation, `0 - a` (`tnum_neg`).
    #[must_use]
    pub const fn neg(self) -> Tnum {
        Tnum::konst(0).sub(self)
    }

    /// Bitwise and (`tnum_and`).
    #[must_use]
    pub const fn and(self, b: Tnum) -> Tnum {
        let alpha = self.value | self.mask;
        let beta = b.value | b.mask;
        let v = self.value & b.value;
        Tnum {
            value: v,
            mask: alpha & beta & !v,
        }
    }

    /// Bitwise or (`tnum_or`).
    #[must_use]
    pub const fn or(self, b: Tnum) -> Tnum {
        let v = self.value | b.value;
        let mu = self.mask | b.mask;
        Tnum {
            value: v,
            mask: mu & !v,
        }
    }

    /// Bitwise exclusive or (`tnum_xor`).
    #[must_use]
    pub const fn xor(self, b: Tnum) -> Tnum {
        let v = self.value ^ b.value;
        let mu = self.mask | b.mask;
        Tnum {
            value: v & !mu,
            mask: mu,
        }
    }

    /// Product (`tnum_mul`): long multiplication over the bits of `self`, taking the union of
    /// the "bit is 0" and "bit is 1" accumulators where a bit is unknown.
    #[must_use]
    pub const fn mul(self, b: Tnum) -> Tnum {
        let mut a = self;
        let mut b = b;
        let mut acc = Tnum::konst(0);
        while a.value != 0 || a.mask != 0 {
            if a.value & 1 != 0 {
                acc = acc.add(b);
            } else if a.mask & 1 != 0 {
                acc = acc.union(acc.add(b));
            }
            a = a.rshift(1);
            b = b.lshift(1);
        }
        acc
    }

    /// Values allowed by both (`tnum_intersect`); where the two disagree on a known bit the
    /// result has it known 1, as the kernel's does.
    #[must_use]
    pub const fn intersect(self, b: Tnum) -> Tnum {
        let v = self.value | b.value;
        let mu = self.mask & b.mask;
        Tnum {
            value: v & !mu,
            mask: mu,
        }
    }

    /// A tnum allowing the values of either (`tnum_union`).
    #[must_use]
    pub const fn union(self, b: Tnum) -> Tnum {
        let v = self.value & b.value;
        let mu = (self.value ^ b.value) | self.mask | b.mask;
        Tnum {
            value: v & !mu,
            mask: mu,
        }
    }

    /// Whether some value is allowed by both (`tnum_overlap`'s meaning, computed exactly):
    /// the known bits they share agree.
    #[must_use]
    pub const fn overlaps(self, b: Tnum) -> bool {
        let mu = !self.mask & !b.mask;
        self.value & mu == b.value & mu
    }

    /// Keeps the low `size` bytes (`tnum_cast`); `size` is 1, 2, 4 or 8.
    #[must_use]
    pub const fn cast(self, size: u8) -> Tnum {
        if size >= 8 {
            return self;
        }
        let keep = (1u64 << (size as u32 * 8)) - 1;
        Tnum {
            value: self.value & keep,
            mask: self.mask & keep,
        }
    }

    /// Whether every allowed value is a multiple of `size`, a power of two
    /// (`tnum_is_aligned`).
    #[must_use]
    pub const fn is_aligned(self, size: u64) -> bool {
        if size == 0 {
            return true;
        }
        (self.value | self.mask) & (size - 1) == 0
    }

    /// Whether every value `b` allows is allowed by `self` (`tnum_in(self, b)`).
    #[must_use]
    pub const fn includes(self, b: Tnum) -> bool {
        if b.mask & !self.mask != 0 {
            return false;
        }
        self.value == b.value & !self.mask
    }

    /// The low 32 bits (`tnum_subreg`).
    #[must_use]
    pub const fn subreg(self) -> Tnum {
        self.cast(4)
    }

    /// The value with its low 32 bits known zero (`tnum_clear_subreg`).
    #[must_use]
    pub const fn clear_subreg(self) -> Tnum {
        self.rshift(32).lshift(32)
    }

    /// The upper half of `self` with the low half of `subreg` (`tnum_with_subreg`).
    #[must_use]
    pub const fn with_subreg(self, subreg: Tnum) -> Tnum {
        self.clear_subreg().or(subreg.subreg())
    }

    /// The upper half of `self` with a known low half (`tnum_const_subreg`).
    #[must_use]
    pub const fn const_subreg(self, value: u32) -> Tnum {
        self.with_subreg(Tnum::konst(value as u64))
    }

    /// Whether the low 32 bits are all known (`tnum_subreg_is_const`).
    #[must_use]
    pub const fn subreg_is_const(self) -> bool {
        self.subreg().mask == 0
    }

    /// The smallest member greater than `z` (`tnum_step`); the largest member when `z` is at
    /// or above it, the smallest when `z` is below it.
    #[must_use]
    pub const fn step(self, z: u64) -> u64 {
        let tmax = self.value | self.mask;
        if z >= tmax {
            return tmax;
        }
        if z < self.value {
            return self.value;
        }
        // Every member is value + s for a submask s of mask: find the smallest submask above
        // d = z - value by incrementing d "within the mask" (fill the non-mask positions so the
        // carry ripples through them, and everything below d's highest non-mask bit).
        let d = z - self.value;
        let high = d & !self.mask;
        let carry_mask = if high == 0 {
            0
        } else {
            let bits = 64 - high.leading_zeros();
            if bits >= 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            }
        };
        let filled = d | carry_mask | !self.mask;
        let inc = filled.wrapping_add(1) & self.mask;
        self.value | inc
    }

    /// Swaps the bytes of the low 16 bits, clearing the rest (`tnum_bswap16`).
    #[must_use]
    pub const fn bswap16(self) -> Tnum {
        Tnum {
            value: (self.value as u16).swap_bytes() as u64,
            mask: (self.mask as u16).swap_bytes() as u64,
        }
    }

    /// Swaps the bytes of the low 32 bits, clearing the rest (`tnum_bswap32`).
    #[must_use]
    pub const fn bswap32(self) -> Tnum {
        Tnum {
            value: (self.value as u32).swap_bytes() as u64,
            mask: (self.mask as u32).swap_bytes() as u64,
        }
    }

    /// Swaps all eight bytes (`tnum_bswap64`).
    #[must_use]
    pub const fn bswap64(self) -> Tnum {
        Tnum {
            value: self.value.swap_bytes(),
            mask: self.mask.swap_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_over_approximates_like_the_kernel() {
        // tnum.h: "tnum_range(0, 2) is represented by {0, 1, 2, *3*}".
        assert_eq!(Tnum::range(0, 2), Tnum::new(0, 3));
        assert!(Tnum::range(0, 2).contains(3));
        // chi = 4 -> bits = 3 -> delta = 7 (the comment in tnum_range).
        assert_eq!(Tnum::range(4, 0), Tnum::new(0, 7));
        assert_eq!(Tnum::range(5, 5), Tnum::konst(5));
        assert_eq!(Tnum::range(0, u64::MAX), Tnum::UNKNOWN);
    }

    #[test]
    fn mul_matches_the_kernel_comment_example() {
        // tnum.c's tnum_mul comment: 11 * x1 -> union(0011, 1001) == x0x1.
        let r = Tnum::konst(0b11).mul(Tnum::new(0b01, 0b10));
        // The comment's example multiplies with a = x1 as the multiplier.
        let r2 = Tnum::new(0b01, 0b10).mul(Tnum::konst(0b11));
        assert_eq!(r2, Tnum::new(0b0001, 0b1010));
        assert!(r.contains(3) && r.contains(9));
    }

    #[test]
    fn step_finds_the_next_member() {
        // tnum.c's example: t = x11100x0, z = 241 -> 242.
        let t = Tnum::new(0b0111_0000, 0b1000_0010);
        assert_eq!(t.step(241), 242);
        assert_eq!(t.step(0), 0b0111_0000);
        assert_eq!(t.step(255), 0b1111_0010);
    }

    #[test]
    fn intersect_prefers_known_one_on_conflict() {
        // "if a and b disagree ... this will return a 'known 1' for that bit"
        assert_eq!(Tnum::konst(1).intersect(Tnum::konst(0)), Tnum::konst(1));
    }

    #[test]
    fn arshift32_sign_extends_within_the_subregister() {
        let t = Tnum::konst(0x8000_0000).arshift(4, 32);
        assert_eq!(t, Tnum::konst(0xf800_0000));
        let t = Tnum::konst(0x8000_0000_0000_0000).arshift(4, 64);
        assert_eq!(t, Tnum::konst(0xf800_0000_0000_0000));
    }
}
