//! Integer literals of both assembler syntaxes, checked against the field they go into.
//!
//! A literal is decimal or `0x` hexadecimal, with an optional `+` or `-` sign. As in the
//! conformance suite's reference assembler, a hexadecimal literal may name the field's bit
//! pattern (`0xffffffff` is the 32-bit immediate -1), while a decimal one must be in the
//! field's signed range (`2147483648` does not fit a 32-bit immediate).

/// A parsed literal: its value and whether it was written in hexadecimal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Literal {
    pub value: i128,
    pub hex: bool,
}

/// Parses a literal, or `None` when `s` is not one (the caller names what was expected).
pub(crate) fn literal(s: &str) -> Option<Literal> {
    let s = s.trim();
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (hex, digits) = match body.get(..2) {
        Some("0x" | "0X") => (true, &body[2..]),
        _ => (false, body),
    };
    if digits.is_empty() || digits.len() > 40 || digits.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = i128::from_str_radix(digits, if hex { 16 } else { 10 }).ok()?;
    Some(Literal {
        value: if neg { -magnitude } else { magnitude },
        hex,
    })
}

/// A literal for a field of `bits` bits (at most 64): a hexadecimal one may be any bit pattern
/// of the field (or a negative value in the signed range), a decimal one must be in the signed
/// range. The result is the field's value, sign-extended.
fn field(s: &str, bits: u32, what: &str) -> Result<i64, String> {
    let lit =
        literal(s).ok_or_else(|| format!("expected a {bits}-bit {what}, found `{}`", s.trim()))?;
    let smin = -(1i128 << (bits - 1));
    let smax = (1i128 << (bits - 1)) - 1;
    let umax = (1i128 << bits) - 1;
    let v = lit.value;
    if v >= smin && v <= smax {
        // Fits i64 since bits <= 64.
        return Ok(v as i64);
    }
    if lit.hex && v > smax && v <= umax {
        // The bit pattern: reinterpret as signed.
        return Ok((v - (1i128 << bits)) as i64);
    }
    Err(format!(
        "{what} `{}` is out of the {bits}-bit range",
        s.trim()
    ))
}

/// A 32-bit immediate.
pub(crate) fn imm32(s: &str) -> Result<i32, String> {
    field(s, 32, "immediate").map(|v| v as i32)
}

/// A 16-bit offset.
pub(crate) fn off16(s: &str) -> Result<i16, String> {
    field(s, 16, "offset").map(|v| v as i16)
}

/// A 64-bit immediate: any value from `i64::MIN` to `u64::MAX`, decimal or hexadecimal.
pub(crate) fn imm64(s: &str) -> Result<u64, String> {
    let lit =
        literal(s).ok_or_else(|| format!("expected a 64-bit immediate, found `{}`", s.trim()))?;
    if lit.value >= i128::from(i64::MIN) && lit.value <= i128::from(u64::MAX) {
        // Negative values wrap to their two's complement bit pattern.
        Ok(lit.value as u64)
    } else {
        Err(format!("64-bit immediate `{}` is out of range", s.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_names_bit_patterns_decimal_needs_the_signed_range() {
        assert_eq!(imm32("0xffffffff"), Ok(-1));
        assert_eq!(imm32("-1"), Ok(-1));
        assert_eq!(imm32("2147483647"), Ok(i32::MAX));
        assert!(imm32("2147483648").is_err());
        assert!(imm32("0x100000000").is_err());
        assert_eq!(imm32("-2147483648"), Ok(i32::MIN));
        assert_eq!(off16("0xffff"), Ok(-1));
        assert_eq!(off16("-8"), Ok(-8));
        assert!(off16("0x10000").is_err());
        assert!(off16("32768").is_err());
        assert_eq!(imm64("0xFFFFFFFFFFFFFFFF"), Ok(u64::MAX));
        assert_eq!(imm64("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(imm64("-1"), Ok(u64::MAX));
        assert!(imm64("0x10000000000000000").is_err());
        assert!(literal("").is_none());
        assert!(literal("0x").is_none());
        assert!(literal("--1").is_none());
        assert!(literal("12ab").is_none());
    }
}
