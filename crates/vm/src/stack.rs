//! How much of each 512-byte frame the fast interpreter must zero.
//!
//! Frames are zeroed so that no run ever reads uninitialised memory, whatever the program
//! (Linux lets privileged programs read stack slots they never wrote). When a program uses r10
//! only as the base of loads and stores with constant offsets (no `rX = r10`, no r10 passed to
//! a helper or stored), every stack byte it can touch is known: the fast interpreter zeroes just
//! those, which for a typical packet program is a few bytes instead of 512. Any other use of
//! r10 means "the whole frame". The checked interpreter always zeroes the whole frame, since it
//! lets any in-frame access through.

use crate::code::{Meta, Opc, FP, I};
use crate::STACK_SIZE;

/// The number of bytes below r10 that the fast interpreter zeroes in each frame.
pub(crate) fn fast_zero_bytes(code: &[I], meta: &[Meta]) -> usize {
    let mut depth: i64 = 0;
    for (i, m) in code.iter().zip(meta) {
        if m.reads & FP == 0 {
            continue;
        }
        use Opc as O;
        let (base, value, off, size): (u8, u8, i64, i64) = match i.op {
            O::Ldx8 | O::Ldxs8 | O::LdAcq8 => (i.s, 0, i.k as i64, 1),
            O::Ldx16 | O::Ldxs16 | O::LdAcq16 => (i.s, 0, i.k as i64, 2),
            O::Ldx32 | O::Ldxs32 | O::LdAcq32 => (i.s, 0, i.k as i64, 4),
            O::Ldx64 | O::LdAcq64 => (i.s, 0, i.k as i64, 8),
            O::St8 => (i.d, 0, i64::from(i.t as i32), 1),
            O::St16 => (i.d, 0, i64::from(i.t as i32), 2),
            O::St32 => (i.d, 0, i64::from(i.t as i32), 4),
            O::St64 => (i.d, 0, i64::from(i.t as i32), 8),
            O::Stx8 | O::StRel8 => (i.d, i.s, i.k as i64, 1),
            O::Stx16 | O::StRel16 => (i.d, i.s, i.k as i64, 2),
            O::Stx32 | O::StRel32 | O::Atomic32 => (i.d, i.s, i.k as i64, 4),
            O::Stx64 | O::StRel64 | O::Atomic64 => (i.d, i.s, i.k as i64, 8),
            // r10 read as a value: it may become any pointer into the frame.
            _ => return STACK_SIZE,
        };
        if base != 10 || value == 10 {
            return STACK_SIZE;
        }
        if off >= 0 || off + size > 0 || off < -(STACK_SIZE as i64) {
            return STACK_SIZE;
        }
        depth = depth.max(-off);
    }
    // Whole 8-byte words.
    (depth as usize).div_ceil(8) * 8
}

#[cfg(test)]
mod tests {
    use crate::{Helpers, Program, STACK_SIZE};
    use bpfkit_isa::Insn;

    fn zero_bytes(insns: &[Insn]) -> usize {
        Program::new(insns, &Helpers::new()).map_or(0, |p| p.fast_zero)
    }

    const EXIT: Insn = Insn::new(0x95, 0, 0, 0, 0);

    #[test]
    fn constant_offsets_from_r10_bound_the_zeroed_bytes() {
        // *(u64 *)(r10 - 8) = r1; r0 = *(u32 *)(r10 - 20); exit  -> 20 bytes, 24 in words.
        let p = [
            Insn::new(0xb7, 1, 0, 0, 0),
            Insn::new(0x7b, 10, 1, -8, 0),
            Insn::new(0x61, 0, 10, -20, 0),
            EXIT,
        ];
        assert_eq!(zero_bytes(&p), 24);
        // No stack use at all.
        assert_eq!(zero_bytes(&[Insn::new(0xb7, 0, 0, 0, 0), EXIT]), 0);
    }

    #[test]
    fn r10_as_a_value_means_the_whole_frame() {
        // r1 = r10
        assert_eq!(
            zero_bytes(&[
                Insn::new(0xbf, 1, 10, 0, 0),
                Insn::new(0xb7, 0, 0, 0, 0),
                EXIT
            ]),
            STACK_SIZE
        );
        // *(u64 *)(r1 + 0) = r10: r10 stored as a value.
        let p = [
            Insn::new(0xb7, 1, 0, 0, 0),
            Insn::new(0x7b, 1, 10, 0, 0),
            Insn::new(0xb7, 0, 0, 0, 0),
            EXIT,
        ];
        assert_eq!(zero_bytes(&p), STACK_SIZE);
        // An access at or above r10, or below the frame.
        assert_eq!(
            zero_bytes(&[Insn::new(0x61, 0, 10, 0, 0), EXIT]),
            STACK_SIZE
        );
        assert_eq!(
            zero_bytes(&[Insn::new(0x61, 0, 10, -516, 0), EXIT]),
            STACK_SIZE
        );
        assert_eq!(
            zero_bytes(&[Insn::new(0x79, 0, 10, -4, 0), EXIT]),
            STACK_SIZE
        );
    }
}
