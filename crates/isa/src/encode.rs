//! Encoding an [`Op`] back into its slots: the inverse of [`crate::op::decode`].
//!
//! For every `op` that `decode` returns, `decode(&op.encode(), 0) == Ok(op)` and the slots are
//! the ones decoded (a property test in `tests/` checks both directions). Encoding never fails:
//! an `Op` built by hand that the kernel would reject (say `Movsx(7)`) encodes to the slot the
//! fields describe, and `decode` then names what is wrong with it.

use crate::insn::Insn;
use crate::op::{AluOp, AtomicOp, CallTarget, EndKind, JmpCond, Op, Operand, Width};
use crate::opcode as c;

impl AluOp {
    /// The opcode's operation field and the offset field that select this operation.
    #[must_use]
    pub const fn code_and_off(self) -> (u8, i16) {
        match self {
            AluOp::Add => (c::ADD, 0),
            AluOp::Sub => (c::SUB, 0),
            AluOp::Mul => (c::MUL, 0),
            AluOp::Div => (c::DIV, 0),
            AluOp::Sdiv => (c::DIV, 1),
            AluOp::Or => (c::OR, 0),
            AluOp::And => (c::AND, 0),
            AluOp::Lsh => (c::LSH, 0),
            AluOp::Rsh => (c::RSH, 0),
            AluOp::Mod => (c::MOD, 0),
            AluOp::Smod => (c::MOD, 1),
            AluOp::Xor => (c::XOR, 0),
            AluOp::Mov => (c::MOV, 0),
            AluOp::Movsx(bits) => (c::MOV, bits as i16),
            AluOp::Arsh => (c::ARSH, 0),
        }
    }
}

impl JmpCond {
    /// The opcode's operation field.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            JmpCond::Eq => c::JEQ,
            JmpCond::Gt => c::JGT,
            JmpCond::Ge => c::JGE,
            JmpCond::Set => c::JSET,
            JmpCond::Ne => c::JNE,
            JmpCond::Sgt => c::JSGT,
            JmpCond::Sge => c::JSGE,
            JmpCond::Lt => c::JLT,
            JmpCond::Le => c::JLE,
            JmpCond::Slt => c::JSLT,
            JmpCond::Sle => c::JSLE,
        }
    }
}

impl AtomicOp {
    /// The immediate of the `STX | ATOMIC` instruction that selects this operation.
    #[must_use]
    pub const fn imm(self) -> i32 {
        let (base, fetch) = match self {
            AtomicOp::Add { fetch } => (c::ADD, fetch),
            AtomicOp::Or { fetch } => (c::OR, fetch),
            AtomicOp::And { fetch } => (c::AND, fetch),
            AtomicOp::Xor { fetch } => (c::XOR, fetch),
            AtomicOp::Xchg => return c::XCHG,
            AtomicOp::Cmpxchg => return c::CMPXCHG,
        };
        base as i32 | if fetch { c::FETCH } else { 0 }
    }
}

const fn alu_class(width: Width) -> u8 {
    match width {
        Width::W32 => c::ALU,
        Width::W64 => c::ALU64,
    }
}

const fn jmp_class(width: Width) -> u8 {
    match width {
        Width::W32 => c::JMP32,
        Width::W64 => c::JMP,
    }
}

/// `(source bit, src register field, imm)` of an operand.
const fn operand_fields(src: Operand) -> (u8, u8, i32) {
    match src {
        Operand::Reg(r) => (c::X, r.num(), 0),
        Operand::Imm(imm) => (c::K, 0, imm),
    }
}

impl Op {
    /// The slots of this instruction: one, or two for LD_IMM64.
    #[must_use]
    pub fn encode(&self) -> Vec<Insn> {
        let mut out = Vec::with_capacity(2);
        self.encode_into(&mut out);
        out
    }

    /// Appends the slots of this instruction to `out`.
    pub fn encode_into(&self, out: &mut Vec<Insn>) {
        let first = match *self {
            Op::Alu {
                width,
                op,
                dst,
                src,
            } => {
                let (opc, off) = op.code_and_off();
                let (srcbit, s, imm) = operand_fields(src);
                Insn::new(alu_class(width) | opc | srcbit, dst.num(), s, off, imm)
            }
            Op::Neg { width, dst } => Insn::new(alu_class(width) | c::NEG, dst.num(), 0, 0, 0),
            Op::End { kind, bits, dst } => {
                let code = match kind {
                    EndKind::ToLe => c::ALU | c::END | c::TO_LE,
                    EndKind::ToBe => c::ALU | c::END | c::TO_BE,
                    EndKind::Swap => c::ALU64 | c::END | c::TO_LE,
                };
                Insn::new(code, dst.num(), 0, 0, i32::from(bits))
            }
            Op::LdImm64 {
                dst,
                pseudo,
                imm,
                next_imm,
            } => {
                out.push(Insn::new(c::LD | c::IMM | c::DW, dst.num(), pseudo, 0, imm));
                Insn::new(0, 0, 0, 0, next_imm)
            }
            Op::LdAbs { size, imm } => Insn::new(c::LD | c::ABS | size.field(), 0, 0, 0, imm),
            Op::LdInd { size, src, imm } => {
                Insn::new(c::LD | c::IND | size.field(), 0, src.num(), 0, imm)
            }
            Op::Load {
                size,
                sign_extend,
                dst,
                src,
                off,
            } => {
                let mode = if sign_extend { c::MEMSX } else { c::MEM };
                Insn::new(c::LDX | mode | size.field(), dst.num(), src.num(), off, 0)
            }
            Op::StoreImm {
                size,
                dst,
                off,
                imm,
            } => Insn::new(c::ST | c::MEM | size.field(), dst.num(), 0, off, imm),
            Op::StoreReg {
                size,
                dst,
                src,
                off,
            } => Insn::new(c::STX | c::MEM | size.field(), dst.num(), src.num(), off, 0),
            Op::Atomic {
                size,
                op,
                dst,
                src,
                off,
            } => Insn::new(
                c::STX | c::ATOMIC | size.field(),
                dst.num(),
                src.num(),
                off,
                op.imm(),
            ),
            Op::LoadAcquire {
                size,
                dst,
                src,
                off,
            } => Insn::new(
                c::STX | c::ATOMIC | size.field(),
                dst.num(),
                src.num(),
                off,
                c::LOAD_ACQ,
            ),
            Op::StoreRelease {
                size,
                dst,
                src,
                off,
            } => Insn::new(
                c::STX | c::ATOMIC | size.field(),
                dst.num(),
                src.num(),
                off,
                c::STORE_REL,
            ),
            Op::MayGoto { off } => Insn::new(c::JMP | c::JCOND, 0, c::MAY_GOTO, off, 0),
            Op::Ja { off, long: true } => Insn::new(c::JMP32 | c::JA, 0, 0, 0, off),
            // A `goto` offset is 16 bits; a hand-built wider one is truncated (decode of the
            // result then names a different target, so build `long: true` for far jumps).
            Op::Ja { off, long: false } => Insn::new(c::JMP | c::JA, 0, 0, off as i16, 0),
            Op::Jcond {
                width,
                cond,
                dst,
                src,
                off,
            } => {
                let (srcbit, s, imm) = operand_fields(src);
                Insn::new(
                    jmp_class(width) | cond.code() | srcbit,
                    dst.num(),
                    s,
                    off,
                    imm,
                )
            }
            Op::Call(target) => {
                let (src, off, imm) = match target {
                    CallTarget::Helper(id) => (0, 0, id),
                    CallTarget::Local(rel) => (c::PSEUDO_CALL, 0, rel),
                    CallTarget::Kfunc { btf_id, off } => (c::PSEUDO_KFUNC_CALL, off, btf_id),
                };
                Insn::new(c::JMP | c::CALL, 0, src, off, imm)
            }
            Op::Exit => Insn::new(c::JMP | c::EXIT, 0, 0, 0, 0),
        };
        // For LD_IMM64 the first slot was pushed above and `first` is the second one.
        out.push(first);
    }
}
