//! The scalar part of the verifier log at log level 2, exactly as Linux prints it.
//!
//! Kernel counterpart: `print_reg_state` / `print_scalar_ranges` / `verbose_snum` /
//! `verbose_unum` / `tnum_strn` in `kernel/bpf/log.c`.
//!
//! What [`Scalar::write_log`] prints is everything after `R1=` for a scalar register (or after
//! `fp-8=` for a spilled scalar): `P` when precise, then either the constant (`5`, `-1`,
//! `0x10000`) or `scalar(` + `id=N` (+ `+D` for a linked register with a constant delta) +
//! the bounds that are not at their widest + `var_off=(V; M)` when some bit is known + `)`.
//! The caller prints the register name, `=`, and everything that is not a scalar.

use super::{Scalar, Tnum};
use std::fmt::{self, Write};

/// Register facts outside the scalar domain that the kernel prints inside a scalar's text.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct LogTags {
    /// The register is marked precise (`P` prefix).
    pub precise: bool,
    /// The scalar id linking copies of a register (`id=N`), 0 for none. Without the
    /// `BPF_ADD_CONST` flag bit.
    pub id: u32,
    /// For a register linked with a constant delta (`BPF_ADD_CONST`), the delta, printed as
    /// `id=N+D`.
    pub delta: Option<i32>,
}

/// An unsigned number as the kernel's log prints it (`verbose_unum`): values up to `U16_MAX`
/// in decimal, larger ones in hex. Used for `r=` (packet range) and `sz=`.
///
/// # Errors
/// Only those of the writer.
pub fn write_unum<W: Write>(w: &mut W, v: u64) -> fmt::Result {
    if v <= u64::from(u16::MAX) {
        write!(w, "{v}")
    } else {
        write!(w, "{v:#x}")
    }
}

/// A signed number as the kernel's log prints it (`verbose_snum`): values in
/// `[S16_MIN, S16_MAX]` in decimal, others as hex of their 64 bits (`off=0xfffffffff0000000`).
/// Used for constants, `off=`, `imm=` and stack offsets (`fp-8`).
///
/// # Errors
/// Only those of the writer.
pub fn write_snum<W: Write>(w: &mut W, v: i64) -> fmt::Result {
    if (i64::from(i16::MIN)..=i64::from(i16::MAX)).contains(&v) {
        write!(w, "{v}")
    } else {
        write!(w, "{:#x}", v as u64)
    }
}

fn snum_is_decimal(v: i64) -> bool {
    (i64::from(i16::MIN)..=i64::from(i16::MAX)).contains(&v)
}

/// `tnum_strn`: `(0x0; 0xff)`.
pub(super) fn write_tnum<W: Write>(w: &mut W, t: Tnum) -> fmt::Result {
    write!(w, "({:#x}; {:#x})", t.value, t.mask)
}

impl fmt::Display for Tnum {
    /// The kernel's `tnum_strn` text, `(value; mask)` in hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_tnum(f, *self)
    }
}

/// One entry of `print_scalar_ranges`' table.
#[derive(Clone, Copy)]
struct Bound {
    name: &'static str,
    val: u64,
    omit: bool,
}

impl Bound {
    fn signed(&self) -> bool {
        self.name.as_bytes()[0] == b's'
    }
    fn negative(&self) -> bool {
        self.signed() && (self.val as i64) < 0
    }
}

/// `print_scalar_ranges`: the bounds not at their widest, equal neighbours merged
/// (`smin=smin32=0`), writing `sep` before each entry and leaving it `,` afterwards.
fn write_ranges<W: Write>(w: &mut W, r: &Scalar, sep: &mut &'static str) -> fmt::Result {
    // In hex, a negative 32-bit bound prints as its 32-bit pattern, not sign-extended.
    let s32 = |v: i32| {
        if snum_is_decimal(i64::from(v)) {
            i64::from(v) as u64
        } else {
            u64::from(v as u32)
        }
    };
    let mut t = [
        Bound {
            name: "smin",
            val: r.smin as u64,
            omit: r.smin == i64::MIN,
        },
        Bound {
            name: "smax",
            val: r.smax as u64,
            omit: r.smax == i64::MAX,
        },
        Bound {
            name: "umin",
            val: r.umin,
            omit: r.umin == 0,
        },
        Bound {
            name: "umax",
            val: r.umax,
            omit: r.umax == u64::MAX,
        },
        Bound {
            name: "smin32",
            val: s32(r.s32_min),
            omit: r.s32_min == i32::MIN,
        },
        Bound {
            name: "smax32",
            val: s32(r.s32_max),
            omit: r.s32_max == i32::MAX,
        },
        Bound {
            name: "umin32",
            val: u64::from(r.u32_min),
            omit: r.u32_min == 0,
        },
        Bound {
            name: "umax32",
            val: u64::from(r.u32_max),
            omit: r.u32_max == u32::MAX,
        },
    ];
    for i in 0..t.len() {
        let m1 = t[i];
        if m1.omit {
            continue;
        }
        write!(w, "{}{}=", sep, m1.name)?;
        *sep = ",";
        let mut j = i + 2;
        while j < t.len() {
            let m2 = t[j];
            // Merge equal values, but never a negative with a non-negative one.
            if !m2.omit && m2.val == m1.val && m2.negative() == m1.negative() {
                t[j].omit = true;
                write!(w, "{}=", m2.name)?;
            }
            j += 2;
        }
        if m1.signed() {
            write_snum(w, m1.val as i64)?;
        } else {
            write_unum(w, m1.val)?;
        }
    }
    Ok(())
}

impl Scalar {
    /// Writes the scalar as the kernel's log does after `Rn=` (see the module docs).
    ///
    /// # Errors
    /// Only those of the writer.
    pub fn write_log<W: Write>(&self, w: &mut W, tags: LogTags) -> fmt::Result {
        if tags.precise {
            w.write_char('P')?;
        }
        if self.var_off.is_const() {
            return write_snum(w, self.var_off.value as i64);
        }
        w.write_str("scalar(")?;
        let mut sep = "";
        if tags.id != 0 {
            write!(w, "id={}", tags.id)?;
            sep = ",";
        }
        if let Some(d) = tags.delta {
            write!(w, "{d:+}")?;
        }
        write_ranges(w, self, &mut sep)?;
        if !self.var_off.is_unknown() {
            write!(w, "{sep}var_off=")?;
            write_tnum(w, self.var_off)?;
        }
        w.write_char(')')
    }

    /// The variable-offset part of a pointer's text (`print_reg_state` for a pointer type): for
    /// a constant, `imm=N` when it is not 0; otherwise the bounds and `var_off=(V; M)` as for a
    /// scalar. Each entry is preceded by `*sep`, which is left at `","` after one is written;
    /// the caller writes the type, `(`, the fields before (`id=`, `off=`, `r=`, ...) and `)`.
    ///
    /// # Errors
    /// Only those of the writer.
    pub fn write_pointer_var<W: Write>(&self, w: &mut W, sep: &mut &'static str) -> fmt::Result {
        if self.var_off.is_const() {
            if self.var_off.value != 0 {
                write!(w, "{sep}imm=")?;
                *sep = ",";
                write_snum(w, self.var_off.value as i64)?;
            }
            return Ok(());
        }
        write_ranges(w, self, sep)?;
        if !self.var_off.is_unknown() {
            write!(w, "{sep}var_off=")?;
            *sep = ",";
            write_tnum(w, self.var_off)?;
        }
        Ok(())
    }

    /// The log text as a `String` (see [`Scalar::write_log`]); for tests and tools.
    #[must_use]
    pub fn log_text(&self, tags: LogTags) -> String {
        let mut s = String::new();
        // Writing into a String cannot fail.
        let _ = self.write_log(&mut s, tags);
        s
    }
}

impl fmt::Display for Scalar {
    /// The kernel's log text of an imprecise scalar without an id.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_log(f, LogTags::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected strings below are lines of the Linux 6.18 verifier log (log_level 2).

    #[test]
    fn constants_print_as_numbers() {
        assert_eq!(Scalar::known(0).to_string(), "0");
        assert_eq!(Scalar::known(1).to_string(), "1");
        assert_eq!(Scalar::known(u64::MAX).to_string(), "-1");
        assert_eq!(Scalar::known(0x10000).to_string(), "0x10000");
        let p = LogTags {
            precise: true,
            ..LogTags::default()
        };
        assert_eq!(Scalar::known(5).log_text(p), "P5");
    }

    #[test]
    fn unknown_prints_empty_parens() {
        assert_eq!(Scalar::unknown().to_string(), "scalar()");
    }

    #[test]
    fn masked_byte_merges_equal_bounds() {
        // r0 = bpf_get_prandom_u32(); r0 &= 255
        let s = Scalar::unknown();
        let r = super::super::alu(
            bpfkit_isa::AluOp::And,
            bpfkit_isa::Width::W64,
            &s,
            &Scalar::known(255),
        );
        assert_eq!(
            r.to_string(),
            "scalar(smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))"
        );
        let id = LogTags {
            id: 1,
            ..LogTags::default()
        };
        assert_eq!(
            r.log_text(id),
            "scalar(id=1,smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))"
        );
    }
}
