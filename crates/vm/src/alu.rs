//! The arithmetic whose result Linux defines beyond what Rust's operators do: division and
//! modulo by zero and by -1, in 32 and 64 bits.
//!
//! Linux's verifier rewrites these instructions before they run (kernel/bpf/verifier.c,
//! `do_misc_fixups`) and RFC 9669 §4.1 states the same results:
//! - `x / 0 = 0` (unsigned and signed);
//! - `x % 0 = x`, where a 32-bit operation zero-extends the dividend (`(u32)x`);
//! - signed `x / -1 = -x` (so `INT_MIN / -1 = INT_MIN`, wrapping) and `x % -1 = 0`;
//! - every 32-bit result is zero-extended into the 64-bit register.
//!
//! Signed modulo truncates toward zero: the result has the sign of the dividend (C's `%`).

/// `dst / src`, unsigned 64-bit.
#[inline(always)]
pub(crate) fn div64(a: u64, b: u64) -> u64 {
    a.checked_div(b).unwrap_or(0)
}

/// `dst s/ src`, signed 64-bit.
#[inline(always)]
pub(crate) fn sdiv64(a: u64, b: u64) -> u64 {
    if b == 0 {
        0
    } else {
        (a as i64).wrapping_div(b as i64) as u64
    }
}

/// `dst % src`, unsigned 64-bit.
#[inline(always)]
pub(crate) fn mod64(a: u64, b: u64) -> u64 {
    a.checked_rem(b).unwrap_or(a)
}

/// `dst s% src`, signed 64-bit.
#[inline(always)]
pub(crate) fn smod64(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        (a as i64).wrapping_rem(b as i64) as u64
    }
}

/// `dst / src`, unsigned 32-bit, zero-extended.
#[inline(always)]
pub(crate) fn div32(a: u64, b: u32) -> u64 {
    u64::from((a as u32).checked_div(b).unwrap_or(0))
}

/// `dst s/ src`, signed 32-bit, zero-extended.
#[inline(always)]
pub(crate) fn sdiv32(a: u64, b: u32) -> u64 {
    if b == 0 {
        0
    } else {
        u64::from((a as i32).wrapping_div(b as i32) as u32)
    }
}

/// `dst % src`, unsigned 32-bit, zero-extended.
#[inline(always)]
pub(crate) fn mod32(a: u64, b: u32) -> u64 {
    let a = a as u32;
    u64::from(a.checked_rem(b).unwrap_or(a))
}

/// `dst s% src`, signed 32-bit, zero-extended.
#[inline(always)]
pub(crate) fn smod32(a: u64, b: u32) -> u64 {
    if b == 0 {
        u64::from(a as u32)
    } else {
        u64::from((a as i32).wrapping_rem(b as i32) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values: RFC 9669 §4.1 ("if BPF program execution would result in division by
    // zero, the destination register is instead set to zero"; for MOD "the destination register
    // is unchanged", for ALU "zero-extended") and two's-complement arithmetic done by hand.
    #[test]
    fn division_by_zero() {
        assert_eq!(div64(7, 0), 0);
        assert_eq!(sdiv64(u64::MAX, 0), 0);
        assert_eq!(div32(0xffff_ffff_0000_0007, 0), 0);
        assert_eq!(sdiv32(7, 0), 0);
    }

    #[test]
    fn modulo_by_zero_keeps_the_dividend_zero_extended_in_32_bits() {
        assert_eq!(mod64(0xdead_beef_0000_0007, 0), 0xdead_beef_0000_0007);
        assert_eq!(smod64(0xdead_beef_0000_0007, 0), 0xdead_beef_0000_0007);
        assert_eq!(mod32(0xdead_beef_0000_0007, 0), 7);
        assert_eq!(smod32(0xdead_beef_ffff_fff9, 0), 0xffff_fff9);
    }

    #[test]
    fn int_min_by_minus_one() {
        // INT64_MIN / -1 overflows; Linux rewrites it to negation: INT64_MIN.
        assert_eq!(
            sdiv64(0x8000_0000_0000_0000, u64::MAX),
            0x8000_0000_0000_0000
        );
        assert_eq!(smod64(0x8000_0000_0000_0000, u64::MAX), 0);
        assert_eq!(sdiv32(0x8000_0000, 0xffff_ffff), 0x8000_0000);
        assert_eq!(smod32(0x8000_0000, 0xffff_ffff), 0);
    }

    #[test]
    fn signed_modulo_takes_the_dividends_sign() {
        // -7 s% 2 = -1; 7 s% -2 = 1 (C truncating division).
        assert_eq!(smod64((-7i64) as u64, 2), (-1i64) as u64);
        assert_eq!(smod64(7, (-2i64) as u64), 1);
        assert_eq!(smod32((-7i32) as u32 as u64, 2), 0xffff_ffff);
        assert_eq!(sdiv32((-7i32) as u32 as u64, 2), 0xffff_fffd);
    }
}
