//! The pre-decoded internal form the interpreter runs: one compact [`I`] per instruction (an
//! LD_IMM64 pair becomes one), with every decision that does not depend on run-time values
//! already taken.
//!
//! - operands unpacked: registers as `u8`, immediates already sign- or zero-extended to the
//!   operation width, constant shift amounts already masked;
//! - operations specialised by width and operand kind (`Add64K`, `Add32X`, `Jsgt32K`, ...), so
//!   the loop dispatches once per instruction and never re-reads opcode bits;
//! - jump and call targets resolved to indices into the code vector (`t`);
//! - every program ends with a [`I::FellOff`] trap, so fall-through never leaves the vector;
//! - [`Meta`] (kept apart, read only by the checked interpreter) holds the original slot index
//!   and the registers each instruction reads and writes.

use bpfkit_isa::AtomicOp;

/// One pre-decoded instruction. `d`/`s` are register numbers 0..=10, `k` an immediate, `off` a
/// memory offset, `t` a code index.
#[derive(Clone, Copy, Debug)]
pub(crate) enum I {
    Add64K {
        d: u8,
        k: u64,
    },
    Add64X {
        d: u8,
        s: u8,
    },
    Sub64K {
        d: u8,
        k: u64,
    },
    Sub64X {
        d: u8,
        s: u8,
    },
    Mul64K {
        d: u8,
        k: u64,
    },
    Mul64X {
        d: u8,
        s: u8,
    },
    Div64K {
        d: u8,
        k: u64,
    },
    Div64X {
        d: u8,
        s: u8,
    },
    Sdiv64K {
        d: u8,
        k: u64,
    },
    Sdiv64X {
        d: u8,
        s: u8,
    },
    Mod64K {
        d: u8,
        k: u64,
    },
    Mod64X {
        d: u8,
        s: u8,
    },
    Smod64K {
        d: u8,
        k: u64,
    },
    Smod64X {
        d: u8,
        s: u8,
    },
    Or64K {
        d: u8,
        k: u64,
    },
    Or64X {
        d: u8,
        s: u8,
    },
    And64K {
        d: u8,
        k: u64,
    },
    And64X {
        d: u8,
        s: u8,
    },
    Xor64K {
        d: u8,
        k: u64,
    },
    Xor64X {
        d: u8,
        s: u8,
    },
    Lsh64K {
        d: u8,
        k: u32,
    },
    Lsh64X {
        d: u8,
        s: u8,
    },
    Rsh64K {
        d: u8,
        k: u32,
    },
    Rsh64X {
        d: u8,
        s: u8,
    },
    Arsh64K {
        d: u8,
        k: u32,
    },
    Arsh64X {
        d: u8,
        s: u8,
    },
    Mov64K {
        d: u8,
        k: u64,
    },
    Mov64X {
        d: u8,
        s: u8,
    },
    Neg64 {
        d: u8,
    },

    Add32K {
        d: u8,
        k: u32,
    },
    Add32X {
        d: u8,
        s: u8,
    },
    Sub32K {
        d: u8,
        k: u32,
    },
    Sub32X {
        d: u8,
        s: u8,
    },
    Mul32K {
        d: u8,
        k: u32,
    },
    Mul32X {
        d: u8,
        s: u8,
    },
    Div32K {
        d: u8,
        k: u32,
    },
    Div32X {
        d: u8,
        s: u8,
    },
    Sdiv32K {
        d: u8,
        k: u32,
    },
    Sdiv32X {
        d: u8,
        s: u8,
    },
    Mod32K {
        d: u8,
        k: u32,
    },
    Mod32X {
        d: u8,
        s: u8,
    },
    Smod32K {
        d: u8,
        k: u32,
    },
    Smod32X {
        d: u8,
        s: u8,
    },
    Or32K {
        d: u8,
        k: u32,
    },
    Or32X {
        d: u8,
        s: u8,
    },
    And32K {
        d: u8,
        k: u32,
    },
    And32X {
        d: u8,
        s: u8,
    },
    Xor32K {
        d: u8,
        k: u32,
    },
    Xor32X {
        d: u8,
        s: u8,
    },
    Lsh32K {
        d: u8,
        k: u32,
    },
    Lsh32X {
        d: u8,
        s: u8,
    },
    Rsh32K {
        d: u8,
        k: u32,
    },
    Rsh32X {
        d: u8,
        s: u8,
    },
    Arsh32K {
        d: u8,
        k: u32,
    },
    Arsh32X {
        d: u8,
        s: u8,
    },
    Mov32K {
        d: u8,
        k: u32,
    },
    Mov32X {
        d: u8,
        s: u8,
    },
    Neg32 {
        d: u8,
    },

    Movsx8To64 {
        d: u8,
        s: u8,
    },
    Movsx16To64 {
        d: u8,
        s: u8,
    },
    Movsx32To64 {
        d: u8,
        s: u8,
    },
    Movsx8To32 {
        d: u8,
        s: u8,
    },
    Movsx16To32 {
        d: u8,
        s: u8,
    },

    Le16 {
        d: u8,
    },
    Le32 {
        d: u8,
    },
    Le64 {
        d: u8,
    },
    Be16 {
        d: u8,
    },
    Be32 {
        d: u8,
    },
    Be64 {
        d: u8,
    },
    Swap16 {
        d: u8,
    },
    Swap32 {
        d: u8,
    },
    Swap64 {
        d: u8,
    },

    LdImm64 {
        d: u8,
        k: u64,
    },
    LdAbs {
        size: u8,
        k: i32,
    },
    LdInd {
        size: u8,
        s: u8,
        k: i32,
    },

    Ldx8 {
        d: u8,
        s: u8,
        off: i16,
    },
    Ldx16 {
        d: u8,
        s: u8,
        off: i16,
    },
    Ldx32 {
        d: u8,
        s: u8,
        off: i16,
    },
    Ldx64 {
        d: u8,
        s: u8,
        off: i16,
    },
    Ldxs8 {
        d: u8,
        s: u8,
        off: i16,
    },
    Ldxs16 {
        d: u8,
        s: u8,
        off: i16,
    },
    Ldxs32 {
        d: u8,
        s: u8,
        off: i16,
    },
    St8 {
        d: u8,
        off: i16,
        k: i32,
    },
    St16 {
        d: u8,
        off: i16,
        k: i32,
    },
    St32 {
        d: u8,
        off: i16,
        k: i32,
    },
    St64 {
        d: u8,
        off: i16,
        k: i32,
    },
    Stx8 {
        d: u8,
        s: u8,
        off: i16,
    },
    Stx16 {
        d: u8,
        s: u8,
        off: i16,
    },
    Stx32 {
        d: u8,
        s: u8,
        off: i16,
    },
    Stx64 {
        d: u8,
        s: u8,
        off: i16,
    },
    Atomic32 {
        op: AtomicOp,
        d: u8,
        s: u8,
        off: i16,
    },
    Atomic64 {
        op: AtomicOp,
        d: u8,
        s: u8,
        off: i16,
    },

    Ja {
        t: u32,
    },
    Jeq64K {
        d: u8,
        k: u64,
        t: u32,
    },
    Jeq64X {
        d: u8,
        s: u8,
        t: u32,
    },
    Jne64K {
        d: u8,
        k: u64,
        t: u32,
    },
    Jne64X {
        d: u8,
        s: u8,
        t: u32,
    },
    Jgt64K {
        d: u8,
        k: u64,
        t: u32,
    },
    Jgt64X {
        d: u8,
        s: u8,
        t: u32,
    },
    Jge64K {
        d: u8,
        k: u64,
        t: u32,
    },
    Jge64X {
        d: u8,
        s: u8,
        t: u32,
    },
    Jlt64K {
        d: u8,
        k: u64,
        t: u32,
    },
    Jlt64X {
        d: u8,
        s: u8,
        t: u32,
    },
    Jle64K {
        d: u8,
        k: u64,
        t: u32,
    },
    Jle64X {
        d: u8,
        s: u8,
        t: u32,
    },
    Jset64K {
        d: u8,
        k: u64,
        t: u32,
    },
    Jset64X {
        d: u8,
        s: u8,
        t: u32,
    },
    Jsgt64K {
        d: u8,
        k: u64,
        t: u32,
    },
    Jsgt64X {
        d: u8,
        s: u8,
        t: u32,
    },
    Jsge64K {
        d: u8,
        k: u64,
        t: u32,
    },
    Jsge64X {
        d: u8,
        s: u8,
        t: u32,
    },
    Jslt64K {
        d: u8,
        k: u64,
        t: u32,
    },
    Jslt64X {
        d: u8,
        s: u8,
        t: u32,
    },
    Jsle64K {
        d: u8,
        k: u64,
        t: u32,
    },
    Jsle64X {
        d: u8,
        s: u8,
        t: u32,
    },
    Jeq32K {
        d: u8,
        k: u32,
        t: u32,
    },
    Jeq32X {
        d: u8,
        s: u8,
        t: u32,
    },
    Jne32K {
        d: u8,
        k: u32,
        t: u32,
    },
    Jne32X {
        d: u8,
        s: u8,
        t: u32,
    },
    Jgt32K {
        d: u8,
        k: u32,
        t: u32,
    },
    Jgt32X {
        d: u8,
        s: u8,
        t: u32,
    },
    Jge32K {
        d: u8,
        k: u32,
        t: u32,
    },
    Jge32X {
        d: u8,
        s: u8,
        t: u32,
    },
    Jlt32K {
        d: u8,
        k: u32,
        t: u32,
    },
    Jlt32X {
        d: u8,
        s: u8,
        t: u32,
    },
    Jle32K {
        d: u8,
        k: u32,
        t: u32,
    },
    Jle32X {
        d: u8,
        s: u8,
        t: u32,
    },
    Jset32K {
        d: u8,
        k: u32,
        t: u32,
    },
    Jset32X {
        d: u8,
        s: u8,
        t: u32,
    },
    Jsgt32K {
        d: u8,
        k: u32,
        t: u32,
    },
    Jsgt32X {
        d: u8,
        s: u8,
        t: u32,
    },
    Jsge32K {
        d: u8,
        k: u32,
        t: u32,
    },
    Jsge32X {
        d: u8,
        s: u8,
        t: u32,
    },
    Jslt32K {
        d: u8,
        k: u32,
        t: u32,
    },
    Jslt32X {
        d: u8,
        s: u8,
        t: u32,
    },
    Jsle32K {
        d: u8,
        k: u32,
        t: u32,
    },
    Jsle32X {
        d: u8,
        s: u8,
        t: u32,
    },

    /// Call entry `h` of the program's resolved helper list.
    Call {
        h: u32,
    },
    TailCall,
    CallLocal {
        t: u32,
    },
    Exit,
    /// Past the last instruction.
    FellOff,
}

// Keep the hot vector dense: one instruction in 16 bytes.
const _: () = assert!(std::mem::size_of::<I>() == 16);

/// Register bit masks for [`Meta`].
pub(crate) const fn bit(r: u8) -> u16 {
    1 << r
}
/// r1–r5: the argument registers a call clobbers.
pub(crate) const CALLER_SAVED: u16 = 0b11_1110;
/// r6–r9.
pub(crate) const CALLEE_SAVED: u16 = 0b11_1100_0000;
/// r10.
pub(crate) const FP: u16 = 1 << 10;

/// What the checked interpreter needs to know about one instruction.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Meta {
    /// The original slot index.
    pub(crate) pc: u32,
    /// Registers the instruction reads (each must hold a value).
    pub(crate) reads: u16,
    /// Registers it writes.
    pub(crate) writes: u16,
    /// Registers it leaves without a value (r1–r5 after LD_ABS / LD_IND and helper calls).
    pub(crate) clobbers: u16,
}
