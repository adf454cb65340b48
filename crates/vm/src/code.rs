//! The pre-decoded internal form the interpreter runs: one 16-byte [`I`] per instruction (an
//! LD_IMM64 pair becomes one), with every decision that does not depend on run-time values
//! already taken.
//!
//! - operations specialised by width and operand kind ([`Opc::Add64K`], [`Opc::Add32X`],
//!   [`Opc::Jsgt32K`], ...), so the loop dispatches once, on one byte, and never re-reads opcode
//!   bits;
//! - operands unpacked into fixed places (`d`, `s`, `x`, `t`, `k`), immediates already sign- or
//!   zero-extended to the operation width, constant shift amounts already masked, memory
//!   offsets sign-extended to 64 bits;
//! - jump and call targets resolved to indices into the code vector (`t`);
//! - every program ends with an [`Opc::FellOff`] trap, so fall-through never leaves the vector;
//! - [`Meta`] (kept apart, read only by the checked interpreter) holds the original slot index
//!   and the registers each instruction reads and writes.
//!
//! Every slot has the same layout, so the dispatch loads only the opcode byte and each handler
//! loads just the fields it uses.

use bpfkit_isa::AtomicOp;

/// The specialised operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Opc {
    Add64K,
    Add64X,
    Sub64K,
    Sub64X,
    Mul64K,
    Mul64X,
    Div64K,
    Div64X,
    Sdiv64K,
    Sdiv64X,
    Mod64K,
    Mod64X,
    Smod64K,
    Smod64X,
    Or64K,
    Or64X,
    And64K,
    And64X,
    Xor64K,
    Xor64X,
    Lsh64K,
    Lsh64X,
    Rsh64K,
    Rsh64X,
    Arsh64K,
    Arsh64X,
    Mov64K,
    Mov64X,
    Neg64,
    Add32K,
    Add32X,
    Sub32K,
    Sub32X,
    Mul32K,
    Mul32X,
    Div32K,
    Div32X,
    Sdiv32K,
    Sdiv32X,
    Mod32K,
    Mod32X,
    Smod32K,
    Smod32X,
    Or32K,
    Or32X,
    And32K,
    And32X,
    Xor32K,
    Xor32X,
    Lsh32K,
    Lsh32X,
    Rsh32K,
    Rsh32X,
    Arsh32K,
    Arsh32X,
    Mov32K,
    Mov32X,
    Neg32,
    Movsx8To64,
    Movsx16To64,
    Movsx32To64,
    Movsx8To32,
    Movsx16To32,
    Le16,
    Le32,
    Le64,
    Be16,
    Be32,
    Be64,
    Swap16,
    Swap32,
    Swap64,
    LdImm64,
    LdAbs,
    LdInd,
    Ldx8,
    Ldx16,
    Ldx32,
    Ldx64,
    Ldxs8,
    Ldxs16,
    Ldxs32,
    St8,
    St16,
    St32,
    St64,
    Stx8,
    Stx16,
    Stx32,
    Stx64,
    Atomic32,
    Atomic64,
    LdAcq8,
    LdAcq16,
    LdAcq32,
    LdAcq64,
    StRel8,
    StRel16,
    StRel32,
    StRel64,
    Ja,
    MayGoto,
    Jeq64K,
    Jeq64X,
    Jne64K,
    Jne64X,
    Jgt64K,
    Jgt64X,
    Jge64K,
    Jge64X,
    Jlt64K,
    Jlt64X,
    Jle64K,
    Jle64X,
    Jset64K,
    Jset64X,
    Jsgt64K,
    Jsgt64X,
    Jsge64K,
    Jsge64X,
    Jslt64K,
    Jslt64X,
    Jsle64K,
    Jsle64X,
    Jeq32K,
    Jeq32X,
    Jne32K,
    Jne32X,
    Jgt32K,
    Jgt32X,
    Jge32K,
    Jge32X,
    Jlt32K,
    Jlt32X,
    Jle32K,
    Jle32X,
    Jset32K,
    Jset32X,
    Jsgt32K,
    Jsgt32X,
    Jsge32K,
    Jsge32X,
    Jslt32K,
    Jslt32X,
    Jsle32K,
    Jsle32X,
    Call,
    TailCall,
    CallLocal,
    Exit,
    FellOff,

    // Superinstructions of the fast code only (see `fuse`).
    /// Fused `mov64 d, s; add64 d, k`: `d = s add k`.
    Add64KS,
    /// Fused `mov64 d, s; add64 d, x`: `d = s add x` (`x` in [`I::x`]).
    Add64XS,
    /// Fused `mov64 d, s; sub64 d, k`: `d = s sub k`.
    Sub64KS,
    /// Fused `mov64 d, s; sub64 d, x`: `d = s sub x` (`x` in [`I::x`]).
    Sub64XS,
    /// Fused `mov64 d, s; mul64 d, k`: `d = s mul k`.
    Mul64KS,
    /// Fused `mov64 d, s; mul64 d, x`: `d = s mul x` (`x` in [`I::x`]).
    Mul64XS,
    /// Fused `mov64 d, s; or64 d, k`: `d = s or k`.
    Or64KS,
    /// Fused `mov64 d, s; or64 d, x`: `d = s or x` (`x` in [`I::x`]).
    Or64XS,
    /// Fused `mov64 d, s; and64 d, k`: `d = s and k`.
    And64KS,
    /// Fused `mov64 d, s; and64 d, x`: `d = s and x` (`x` in [`I::x`]).
    And64XS,
    /// Fused `mov64 d, s; xor64 d, k`: `d = s xor k`.
    Xor64KS,
    /// Fused `mov64 d, s; xor64 d, x`: `d = s xor x` (`x` in [`I::x`]).
    Xor64XS,
    /// Fused `mov64 d, s; lsh64 d, k`: `d = s lsh k`.
    Lsh64KS,
    /// Fused `mov64 d, s; lsh64 d, x`: `d = s lsh x` (`x` in [`I::x`]).
    Lsh64XS,
    /// Fused `mov64 d, s; rsh64 d, k`: `d = s rsh k`.
    Rsh64KS,
    /// Fused `mov64 d, s; rsh64 d, x`: `d = s rsh x` (`x` in [`I::x`]).
    Rsh64XS,
    /// Fused `mov64 d, s; arsh64 d, k`: `d = s arsh k`.
    Arsh64KS,
    /// Fused `mov64 d, s; arsh64 d, x`: `d = s arsh x` (`x` in [`I::x`]).
    Arsh64XS,
    /// Fused `mov32 d, s; add32 d, k`: `d = s add k`.
    Add32KS,
    /// Fused `mov32 d, s; add32 d, x`: `d = s add x` (`x` in [`I::x`]).
    Add32XS,
    /// Fused `mov32 d, s; sub32 d, k`: `d = s sub k`.
    Sub32KS,
    /// Fused `mov32 d, s; sub32 d, x`: `d = s sub x` (`x` in [`I::x`]).
    Sub32XS,
    /// Fused `mov32 d, s; mul32 d, k`: `d = s mul k`.
    Mul32KS,
    /// Fused `mov32 d, s; mul32 d, x`: `d = s mul x` (`x` in [`I::x`]).
    Mul32XS,
    /// Fused `mov32 d, s; or32 d, k`: `d = s or k`.
    Or32KS,
    /// Fused `mov32 d, s; or32 d, x`: `d = s or x` (`x` in [`I::x`]).
    Or32XS,
    /// Fused `mov32 d, s; and32 d, k`: `d = s and k`.
    And32KS,
    /// Fused `mov32 d, s; and32 d, x`: `d = s and x` (`x` in [`I::x`]).
    And32XS,
    /// Fused `mov32 d, s; xor32 d, k`: `d = s xor k`.
    Xor32KS,
    /// Fused `mov32 d, s; xor32 d, x`: `d = s xor x` (`x` in [`I::x`]).
    Xor32XS,
    /// Fused `mov32 d, s; lsh32 d, k`: `d = s lsh k`.
    Lsh32KS,
    /// Fused `mov32 d, s; lsh32 d, x`: `d = s lsh x` (`x` in [`I::x`]).
    Lsh32XS,
    /// Fused `mov32 d, s; rsh32 d, k`: `d = s rsh k`.
    Rsh32KS,
    /// Fused `mov32 d, s; rsh32 d, x`: `d = s rsh x` (`x` in [`I::x`]).
    Rsh32XS,
    /// Fused `mov32 d, s; arsh32 d, k`: `d = s arsh k`.
    Arsh32KS,
    /// Fused `mov32 d, s; arsh32 d, x`: `d = s arsh x` (`x` in [`I::x`]).
    Arsh32XS,
    /// Fused packet bounds check `mov64 d, s; add64 d, k; if d > x goto t`.
    MovAddJgt64,
    /// Fused `mul32 d, k1; add32 d, k2` (hashing's multiply-accumulate); `k` = `k1 | k2 << 32`.
    MulAdd32KK,
    /// Fused `mul32 d, k1; rsh32 d, k2` (multiplicative hashing).
    MulRsh32KK,
    /// Fused `rsh32 d, k1; and32 d, k2` (bit-field extraction).
    RshAnd32KK,
    /// Fused `and32 d, k1; rsh32 d, k2` (bit-field extraction).
    AndRsh32KK,
    /// Fused `lsh32 d, k1; and32 d, k2` (scaled bit field, e.g. an IPv4 header length).
    LshAnd32KK,
    /// Fused `rsh64 d, k1; and64 d, k2` (`k2` sign-extended at run time).
    RshAnd64KK,
    /// Fused `and64 d, k1; rsh64 d, k2` (`k1` sign-extended at run time).
    AndRsh64KK,
    /// The 32-bit rotate idiom `mov32 s, d; rsh32 s, k1; lsh32 d, k2; or32 d, s`: `s = d >> k1;
    /// d = (d << k2) | s`, with `k` = `k1 | k2 << 32`.
    Funnel32,
    /// The xorshift step `mov a, b; rsh a, k; xor a, b`: `a = b ^ (b >> k)` (32-bit).
    XorRsh32,
    /// `mov a, b; lsh a, k; xor a, b`: `a = b ^ (b << k)` (32-bit).
    XorLsh32,
    /// `mov a, b; rsh a, k; xor a, b` in 64 bits.
    XorRsh64,
    /// `mov a, b; lsh a, k; xor a, b` in 64 bits.
    XorLsh64,

    // Accumulator forms (fast code only, see `fuse::forward`).
    /// [`Opc::Add32KS`] whose `s` value is the previous instruction's result (in `acc`).
    Add32KSSA,
    /// [`Opc::Mul32KS`] whose `s` value is the previous instruction's result (in `acc`).
    Mul32KSSA,
    /// [`Opc::And32KS`] whose `s` value is the previous instruction's result (in `acc`).
    And32KSSA,
    /// [`Opc::Rsh32KS`] whose `s` value is the previous instruction's result (in `acc`).
    Rsh32KSSA,
    /// [`Opc::Lsh32KS`] whose `s` value is the previous instruction's result (in `acc`).
    Lsh32KSSA,
    /// [`Opc::Xor32KS`] whose `s` value is the previous instruction's result (in `acc`).
    Xor32KSSA,
    /// [`Opc::Add64KS`] whose `s` value is the previous instruction's result (in `acc`).
    Add64KSSA,
    /// [`Opc::And64KS`] whose `s` value is the previous instruction's result (in `acc`).
    And64KSSA,
    /// [`Opc::Rsh64KS`] whose `s` value is the previous instruction's result (in `acc`).
    Rsh64KSSA,
    /// [`Opc::XorRsh32`] whose `s` value is the previous instruction's result (in `acc`).
    XorRsh32SA,
    /// [`Opc::XorLsh32`] whose `s` value is the previous instruction's result (in `acc`).
    XorLsh32SA,
    /// [`Opc::MovAddJgt64`] whose `s` value is the previous instruction's result (in `acc`).
    MovAddJgt64SA,
    /// [`Opc::Add32K`] whose `d` value is the previous instruction's result (in `acc`).
    Add32KA,
    /// [`Opc::Sub32K`] whose `d` value is the previous instruction's result (in `acc`).
    Sub32KA,
    /// [`Opc::Mul32K`] whose `d` value is the previous instruction's result (in `acc`).
    Mul32KA,
    /// [`Opc::Or32K`] whose `d` value is the previous instruction's result (in `acc`).
    Or32KA,
    /// [`Opc::And32K`] whose `d` value is the previous instruction's result (in `acc`).
    And32KA,
    /// [`Opc::Xor32K`] whose `d` value is the previous instruction's result (in `acc`).
    Xor32KA,
    /// [`Opc::Lsh32K`] whose `d` value is the previous instruction's result (in `acc`).
    Lsh32KA,
    /// [`Opc::Rsh32K`] whose `d` value is the previous instruction's result (in `acc`).
    Rsh32KA,
    /// [`Opc::Arsh32K`] whose `d` value is the previous instruction's result (in `acc`).
    Arsh32KA,
    /// [`Opc::Add32X`] whose `d` value is the previous instruction's result (in `acc`).
    Add32XA,
    /// [`Opc::Or32X`] whose `d` value is the previous instruction's result (in `acc`).
    Or32XA,
    /// [`Opc::Xor32X`] whose `d` value is the previous instruction's result (in `acc`).
    Xor32XA,
    /// [`Opc::And32X`] whose `d` value is the previous instruction's result (in `acc`).
    And32XA,
    /// [`Opc::Add64K`] whose `d` value is the previous instruction's result (in `acc`).
    Add64KA,
    /// [`Opc::And64K`] whose `d` value is the previous instruction's result (in `acc`).
    And64KA,
    /// [`Opc::Or64X`] whose `d` value is the previous instruction's result (in `acc`).
    Or64XA,
    /// [`Opc::Xor64X`] whose `d` value is the previous instruction's result (in `acc`).
    Xor64XA,
    /// [`Opc::Add64X`] whose `d` value is the previous instruction's result (in `acc`).
    Add64XA,
    /// [`Opc::MulAdd32KK`] whose `d` value is the previous instruction's result (in `acc`).
    MulAdd32KKA,
    /// [`Opc::MulRsh32KK`] whose `d` value is the previous instruction's result (in `acc`).
    MulRsh32KKA,
    /// [`Opc::RshAnd32KK`] whose `d` value is the previous instruction's result (in `acc`).
    RshAnd32KKA,
    /// [`Opc::LshAnd32KK`] whose `d` value is the previous instruction's result (in `acc`).
    LshAnd32KKA,
    /// [`Opc::AndRsh32KK`] whose `d` value is the previous instruction's result (in `acc`).
    AndRsh32KKA,
    /// [`Opc::Funnel32`] whose `d` value is the previous instruction's result (in `acc`).
    Funnel32A,
}

/// One pre-decoded instruction.
///
/// Field use by kind: ALU with a constant `d`, `k`; ALU with a register `d`, `s`; loads
/// `d`, `s`, `k` = offset; stores of a register `d`, `s`, `k` = offset; stores of a constant
/// `d`, `t` = offset, `k` = value; atomics `d`, `s`, `x` = operation, `k` = offset; LD_ABS /
/// LD_IND `s`, `x` = size, `k` = immediate; jumps `d`, `s` or `k`, `t` = target; helper calls
/// `t` = index of the resolved helper; local calls `t` = target.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub(crate) struct I {
    pub(crate) op: Opc,
    pub(crate) d: u8,
    pub(crate) s: u8,
    pub(crate) x: u8,
    pub(crate) t: u32,
    pub(crate) k: u64,
}

// Keep the hot vector dense: one instruction in 16 bytes.
const _: () = assert!(std::mem::size_of::<I>() == 16);

impl I {
    /// An instruction with only an opcode.
    pub(crate) const fn new(op: Opc) -> Self {
        Self {
            op,
            d: 0,
            s: 0,
            x: 0,
            t: 0,
            k: 0,
        }
    }
    /// `d op= k`.
    pub(crate) const fn dk(op: Opc, d: u8, k: u64) -> Self {
        Self {
            op,
            d,
            s: 0,
            x: 0,
            t: 0,
            k,
        }
    }
    /// `d op= s`.
    pub(crate) const fn ds(op: Opc, d: u8, s: u8) -> Self {
        Self {
            op,
            d,
            s,
            x: 0,
            t: 0,
            k: 0,
        }
    }
    /// A memory access at `reg + off` (`k` = the offset, sign-extended).
    pub(crate) const fn mem(op: Opc, d: u8, s: u8, off: i16) -> Self {
        Self {
            op,
            d,
            s,
            x: 0,
            t: 0,
            k: off as i64 as u64,
        }
    }
    /// A conditional jump.
    pub(crate) const fn jump(op: Opc, d: u8, s: u8, k: u64, t: u32) -> Self {
        Self {
            op,
            d,
            s,
            x: 0,
            t,
            k,
        }
    }
}

/// The code of an atomic operation in [`I::x`].
pub(crate) const fn atomic_code(op: AtomicOp) -> u8 {
    match op {
        AtomicOp::Add { fetch } => fetch as u8,
        AtomicOp::Or { fetch } => 2 | fetch as u8,
        AtomicOp::And { fetch } => 4 | fetch as u8,
        AtomicOp::Xor { fetch } => 6 | fetch as u8,
        AtomicOp::Xchg => 8,
        AtomicOp::Cmpxchg => 10,
    }
}

/// The atomic operation of an [`I::x`] code.
pub(crate) const fn atomic_op(x: u8) -> AtomicOp {
    let fetch = x & 1 != 0;
    match x >> 1 {
        0 => AtomicOp::Add { fetch },
        1 => AtomicOp::Or { fetch },
        2 => AtomicOp::And { fetch },
        3 => AtomicOp::Xor { fetch },
        4 => AtomicOp::Xchg,
        _ => AtomicOp::Cmpxchg,
    }
}

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
