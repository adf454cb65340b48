//! Alignment of memory accesses (`check_ptr_alignment`, `check_pkt_ptr_alignment`,
//! `check_generic_ptr_alignment`).
//!
//! Which accesses are checked, as an x86-64 Linux (CONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS)
//! decides it:
//! - stack accesses always (the spill tracking relies on aligned slots), and atomics always
//!   (`strict_alignment_once`);
//! - every other pointer type only when the program was loaded with `BPF_F_STRICT_ALIGNMENT`
//!   and without `BPF_F_ANY_ALIGNMENT` (which wins when both are given);
//! - packet pointers as if the packet started at `NET_IP_ALIGN` = 2, so that the IP header
//!   after a 14-byte Ethernet header is 4-byte aligned;
//! - one-byte accesses never fail.
//!
//! The whole address is checked as a tnum: the register's variable offset plus its fixed
//! offset plus the instruction's offset must have `log2(size)` known-zero low bits.

use crate::scalar::Tnum;
use crate::state::{RegState, RegType};

/// `NET_IP_ALIGN` as the strict packet check assumes it whatever the architecture.
pub const NET_IP_ALIGN: i64 = 2;

/// The variable offset as the kernel's misaligned-access messages print it: the value when
/// it is constant, `(value; mask)` otherwise.
#[must_use]
pub fn var_off_text(t: Tnum) -> String {
    if t.is_const() {
        format!("{}", t.value as i64)
    } else {
        format!("({:#x}; {:#x})", t.value, t.mask)
    }
}

/// The word the message names a pointer type with (`pointer_desc`), and whether the type is
/// checked even without strict alignment.
fn pointer_desc(ty: RegType) -> (&'static str, bool) {
    match ty {
        RegType::MapValue => ("value ", false),
        RegType::Ctx => ("context ", false),
        RegType::Stack => ("stack ", true),
        // Everything else (map pointers, ring buffer memory, maybe-NULL pointers, scalars)
        // takes the generic message with no word.
        _ => ("", false),
    }
}

/// Checks the alignment of an access of `size` bytes at `off` from `reg`. `strict` is the
/// program's strict alignment (the load flags), `strict_once` the access's own (atomics).
///
/// # Errors
/// The kernel's message: `misaligned packet access off 2+VAR+REGOFF+OFF size N` or
/// `misaligned DESC access off VAR+REGOFF+OFF size N`.
pub fn check_ptr_alignment(
    reg: &RegState,
    off: i32,
    size: u32,
    strict: bool,
    strict_once: bool,
) -> Result<(), String> {
    let strict = strict || strict_once;
    if matches!(reg.ty, RegType::Packet | RegType::PacketMeta) {
        if !strict || size == 1 {
            return Ok(());
        }
        let fixed = NET_IP_ALIGN + i64::from(reg.off) + i64::from(off);
        let total = reg.var.var_off.add(Tnum::konst(fixed as u64));
        if total.is_aligned(u64::from(size)) {
            return Ok(());
        }
        return Err(format!(
            "misaligned packet access off {NET_IP_ALIGN}+{}+{}+{off} size {size}",
            var_off_text(reg.var.var_off),
            reg.off
        ));
    }
    let (desc, always) = pointer_desc(reg.ty);
    if !(strict || always) || size == 1 {
        return Ok(());
    }
    let fixed = i64::from(reg.off) + i64::from(off);
    let total = reg.var.var_off.add(Tnum::konst(fixed as u64));
    if total.is_aligned(u64::from(size)) {
        return Ok(());
    }
    Err(format!(
        "misaligned {desc}access off {}+{}+{off} size {size}",
        var_off_text(reg.var.var_off),
        reg.off
    ))
}

#[cfg(test)]
mod tests {
    //! Messages as Linux 6.18 prints them (tests/verifier/align.cases records the same
    //! lines from the running kernel).
    use super::*;
    use crate::num::Scalar;

    fn var_off(t: Tnum) -> Scalar {
        Scalar {
            var_off: t,
            ..Scalar::unknown()
        }
    }

    fn ptr(ty: RegType, off: i32) -> RegState {
        RegState {
            off,
            ..RegState::pointer(ty)
        }
    }

    #[test]
    fn packets_are_checked_as_if_they_started_two_bytes_in() {
        let pkt = ptr(RegType::Packet, 0);
        assert_eq!(
            check_ptr_alignment(&pkt, 0, 4, true, false),
            Err("misaligned packet access off 2+0+0+0 size 4".into())
        );
        assert_eq!(check_ptr_alignment(&pkt, 2, 4, true, false), Ok(()));
        assert_eq!(check_ptr_alignment(&pkt, 14, 8, true, false), Ok(()));
        assert_eq!(check_ptr_alignment(&pkt, 0, 4, false, false), Ok(()));
        assert_eq!(check_ptr_alignment(&pkt, 1, 1, true, false), Ok(()));
        let moved = ptr(RegType::Packet, 4);
        assert_eq!(
            check_ptr_alignment(&moved, 6, 8, true, false),
            Err("misaligned packet access off 2+0+4+6 size 8".into())
        );
    }

    #[test]
    fn variable_offsets_are_checked_bit_by_bit() {
        let mut pkt = ptr(RegType::Packet, 0);
        pkt.var = var_off(Tnum::new(0, 0x3c));
        assert_eq!(check_ptr_alignment(&pkt, 2, 4, true, false), Ok(()));
        pkt.var = var_off(Tnum::new(0, 0x3e));
        assert_eq!(
            check_ptr_alignment(&pkt, 2, 4, true, false),
            Err("misaligned packet access off 2+(0x0; 0x3e)+0+2 size 4".into())
        );
        let mut stack = ptr(RegType::Stack, -16);
        stack.var = var_off(Tnum::new(0, 4));
        assert_eq!(
            check_ptr_alignment(&stack, 0, 8, false, false),
            Err("misaligned stack access off (0x0; 0x4)+-16+0 size 8".into())
        );
    }

    #[test]
    fn each_pointer_type_has_its_word() {
        let cases = [
            (
                RegType::MapValue,
                "misaligned value access off 0+0+2 size 4",
            ),
            (RegType::Ctx, "misaligned context access off 0+0+2 size 4"),
            (RegType::MapPtr, "misaligned access off 0+0+2 size 4"),
            (RegType::RingbufMem, "misaligned access off 0+0+2 size 4"),
        ];
        for (ty, msg) in cases {
            let r = ptr(ty, 0);
            assert_eq!(check_ptr_alignment(&r, 2, 4, true, false), Err(msg.into()));
            assert_eq!(check_ptr_alignment(&r, 2, 4, false, false), Ok(()));
        }
        // Atomics are strict whatever the flags.
        let v = ptr(RegType::MapValue, 0);
        assert_eq!(
            check_ptr_alignment(&v, 2, 4, false, true),
            Err("misaligned value access off 0+0+2 size 4".into())
        );
        // The stack is strict whatever the flags.
        let s = ptr(RegType::Stack, 0);
        assert_eq!(
            check_ptr_alignment(&s, -6, 4, false, false),
            Err("misaligned stack access off 0+0+-6 size 4".into())
        );
    }
}
