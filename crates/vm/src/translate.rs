//! Translation of checked instruction slots into the pre-decoded form of [`code`](crate::code).
//!
//! Runs once per program. It decodes with the isa crate's [`decode_all`] (the kernel's encoding
//! checks), resolves jump and call targets to code indices, fuses LD_IMM64 pairs, resolves
//! helper ids against the [`Helpers`] table, specialises every operation, and rejects what no
//! run may do: jumps out of the program or into an LD_IMM64, writes to r10 (`frame pointer is
//! read only`), unknown helpers, kfunc calls and LD_IMM64 pseudo forms the runtime did not
//! resolve. After translation the interpreter never meets an ill-formed instruction.

use crate::code::{bit, Meta, CALLER_SAVED, I};
use crate::error::{ErrorKind, VmError};
use crate::helpers::{Helper, HelperEntry, Helpers};
use bpfkit_isa::{
    decode_all, AluOp, AtomicOp, CallTarget, EndKind, Insn, JmpCond, Op, Operand, Reg, Size, Width,
};

/// The translated program parts.
pub(crate) struct Translated {
    pub(crate) code: Vec<I>,
    pub(crate) meta: Vec<Meta>,
    pub(crate) helpers: Vec<Helper>,
}

const NO_CODE: u32 = u32::MAX;

/// Translates `insns`.
pub(crate) fn translate(insns: &[Insn], table: &Helpers) -> Result<Translated, VmError> {
    if insns.is_empty() {
        return Err(VmError {
            pc: 0,
            kind: ErrorKind::EmptyProgram,
        });
    }
    if u32::try_from(insns.len()).map_or(true, |n| n == u32::MAX) {
        return Err(VmError {
            pc: 0,
            kind: ErrorKind::TooLong,
        });
    }
    let ops = decode_all(insns).map_err(|e| VmError {
        pc: e.idx,
        kind: ErrorKind::Encoding(e.kind),
    })?;

    // Slot index -> code index (NO_CODE for LD_IMM64 second halves).
    let mut slot_to_code = vec![NO_CODE; insns.len()];
    for (code_idx, (slot, _)) in ops.iter().enumerate() {
        // Bounded by insns.len() < u32::MAX, checked above.
        slot_to_code[*slot] = code_idx as u32;
    }

    let mut out = Translated {
        code: Vec::with_capacity(ops.len() + 1),
        meta: Vec::with_capacity(ops.len() + 1),
        helpers: Vec::new(),
    };
    for &(slot, op) in &ops {
        let cx = Cx {
            slot,
            slot_to_code: &slot_to_code,
        };
        let (i, meta) = translate_one(&cx, op, table, &mut out.helpers)?;
        out.code.push(i);
        out.meta.push(Meta {
            pc: slot as u32,
            ..meta
        });
    }
    out.code.push(I::FellOff);
    out.meta.push(Meta {
        pc: insns.len() as u32,
        ..Meta::default()
    });
    Ok(out)
}

struct Cx<'a> {
    slot: usize,
    slot_to_code: &'a [u32],
}

impl Cx<'_> {
    fn err(&self, kind: ErrorKind) -> VmError {
        VmError {
            pc: self.slot,
            kind,
        }
    }

    /// The code index of the jump target `slot + 1 + off`.
    fn jump(&self, off: i64) -> Result<u32, VmError> {
        let target = self.slot as i64 + 1 + off;
        let idx = usize::try_from(target)
            .ok()
            .and_then(|t| self.slot_to_code.get(t).copied())
            .ok_or_else(|| self.err(ErrorKind::JumpOutOfRange { target }))?;
        if idx == NO_CODE {
            // In range, so target >= 0.
            return Err(self.err(ErrorKind::JumpIntoLdImm64 {
                target: target as usize,
            }));
        }
        Ok(idx)
    }

    /// A register the instruction writes: never r10.
    fn wr(&self, r: Reg) -> Result<u8, VmError> {
        if r == Reg::R10 {
            Err(self.err(ErrorKind::FramePointerWrite))
        } else {
            Ok(r.num())
        }
    }
}

fn meta(reads: u16, writes: u16) -> Meta {
    Meta {
        pc: 0,
        reads,
        writes,
        clobbers: 0,
    }
}

fn translate_one(
    cx: &Cx<'_>,
    op: Op,
    table: &Helpers,
    helpers: &mut Vec<Helper>,
) -> Result<(I, Meta), VmError> {
    Ok(match op {
        Op::Alu {
            width,
            op,
            dst,
            src,
        } => alu(cx, width, op, dst, src)?,
        Op::Neg { width, dst } => {
            let d = cx.wr(dst)?;
            let i = if width == Width::W64 {
                I::Neg64 { d }
            } else {
                I::Neg32 { d }
            };
            (i, meta(bit(d), bit(d)))
        }
        Op::End { kind, bits, dst } => {
            let d = cx.wr(dst)?;
            let i = match (kind, bits) {
                (EndKind::ToLe, 16) => I::Le16 { d },
                (EndKind::ToLe, 32) => I::Le32 { d },
                (EndKind::ToLe, _) => I::Le64 { d },
                (EndKind::ToBe, 16) => I::Be16 { d },
                (EndKind::ToBe, 32) => I::Be32 { d },
                (EndKind::ToBe, _) => I::Be64 { d },
                (EndKind::Swap, 16) => I::Swap16 { d },
                (EndKind::Swap, 32) => I::Swap32 { d },
                (EndKind::Swap, _) => I::Swap64 { d },
            };
            (i, meta(bit(d), bit(d)))
        }
        Op::LdImm64 {
            dst,
            pseudo,
            imm,
            next_imm,
        } => {
            if pseudo != 0 {
                return Err(cx.err(ErrorKind::Unsupported(format!(
                    "LD_IMM64 with src {pseudo} (a pseudo form the runtime must resolve before running)"
                ))));
            }
            let d = cx.wr(dst)?;
            let k = u64::from(imm as u32) | (u64::from(next_imm as u32) << 32);
            (I::LdImm64 { d, k }, meta(0, bit(d)))
        }
        Op::LdAbs { size, imm } => {
            let m = Meta {
                pc: 0,
                reads: 0,
                writes: bit(0),
                clobbers: CALLER_SAVED,
            };
            (
                I::LdAbs {
                    size: size.bytes() as u8,
                    k: imm,
                },
                m,
            )
        }
        Op::LdInd { size, src, imm } => {
            let s = src.num();
            let m = Meta {
                pc: 0,
                reads: bit(s),
                writes: bit(0),
                clobbers: CALLER_SAVED,
            };
            (
                I::LdInd {
                    size: size.bytes() as u8,
                    s,
                    k: imm,
                },
                m,
            )
        }
        Op::Load {
            size,
            sign_extend,
            dst,
            src,
            off,
        } => {
            let (d, s) = (cx.wr(dst)?, src.num());
            let i = match (size, sign_extend) {
                (Size::B, false) => I::Ldx8 { d, s, off },
                (Size::H, false) => I::Ldx16 { d, s, off },
                (Size::W, false) => I::Ldx32 { d, s, off },
                (Size::DW, _) => I::Ldx64 { d, s, off },
                (Size::B, true) => I::Ldxs8 { d, s, off },
                (Size::H, true) => I::Ldxs16 { d, s, off },
                (Size::W, true) => I::Ldxs32 { d, s, off },
            };
            (i, meta(bit(s), bit(d)))
        }
        Op::StoreImm {
            size,
            dst,
            off,
            imm: k,
        } => {
            let d = dst.num();
            let i = match size {
                Size::B => I::St8 { d, off, k },
                Size::H => I::St16 { d, off, k },
                Size::W => I::St32 { d, off, k },
                Size::DW => I::St64 { d, off, k },
            };
            (i, meta(bit(d), 0))
        }
        Op::StoreReg {
            size,
            dst,
            src,
            off,
        } => {
            let (d, s) = (dst.num(), src.num());
            let i = match size {
                Size::B => I::Stx8 { d, s, off },
                Size::H => I::Stx16 { d, s, off },
                Size::W => I::Stx32 { d, s, off },
                Size::DW => I::Stx64 { d, s, off },
            };
            (i, meta(bit(d) | bit(s), 0))
        }
        Op::Atomic {
            size,
            op,
            dst,
            src,
            off,
        } => {
            let d = dst.num();
            let (s, reads, writes) = match op {
                AtomicOp::Cmpxchg => (src.num(), bit(d) | src_bit(src) | bit(0), bit(0)),
                AtomicOp::Xchg
                | AtomicOp::Add { fetch: true }
                | AtomicOp::Or { fetch: true }
                | AtomicOp::And { fetch: true }
                | AtomicOp::Xor { fetch: true } => {
                    let s = cx.wr(src)?;
                    (s, bit(d) | bit(s), bit(s))
                }
                _ => (src.num(), bit(d) | src_bit(src), 0),
            };
            let i = if size == Size::DW {
                I::Atomic64 { op, d, s, off }
            } else {
                I::Atomic32 { op, d, s, off }
            };
            (i, meta(reads, writes))
        }
        Op::Ja { off, .. } => (
            I::Ja {
                t: cx.jump(i64::from(off))?,
            },
            meta(0, 0),
        ),
        Op::Jcond {
            width,
            cond,
            dst,
            src,
            off,
        } => jcond(width, cond, dst.num(), src, cx.jump(i64::from(off))?),
        Op::Call(CallTarget::Helper(id)) => match table.get(id) {
            Some(HelperEntry::Call(h)) => {
                let idx = helpers.len() as u32;
                helpers.push(h);
                let m = Meta {
                    pc: 0,
                    reads: 0,
                    writes: bit(0),
                    clobbers: CALLER_SAVED,
                };
                (I::Call { h: idx }, m)
            }
            Some(HelperEntry::TailCall) => {
                let m = Meta {
                    pc: 0,
                    reads: bit(1) | bit(2) | bit(3),
                    writes: 0,
                    clobbers: 0,
                };
                (I::TailCall, m)
            }
            None => return Err(cx.err(ErrorKind::UnknownHelper(id))),
        },
        Op::Call(CallTarget::Local(off)) => {
            let target = cx.slot as i64 + 1 + i64::from(off);
            let t = cx
                .jump(i64::from(off))
                .map_err(|_| cx.err(ErrorKind::BadCallTarget { target }))?;
            (I::CallLocal { t }, meta(0, 0))
        }
        Op::Call(CallTarget::Kfunc { btf_id: id, .. }) => {
            return Err(cx.err(ErrorKind::Unsupported(format!("kfunc call (BTF id {id})"))));
        }
        Op::Exit => (I::Exit, meta(bit(0), 0)),
        // Added to the decoder by the isa owner (Linux 6.18 accepts them); not run yet.
        Op::LoadAcquire { .. } | Op::StoreRelease { .. } | Op::MayGoto { .. } => {
            return Err(cx.err(ErrorKind::Unsupported(format!(
                "{op:?} (load-acquire, store-release and may_goto are not interpreted yet)"
            ))));
        }
    })
}

fn src_bit(r: Reg) -> u16 {
    bit(r.num())
}

fn alu(cx: &Cx<'_>, width: Width, op: AluOp, dst: Reg, src: Operand) -> Result<(I, Meta), VmError> {
    let d = cx.wr(dst)?;
    // Mov and Movsx do not read dst.
    let reads_dst = !matches!(op, AluOp::Mov | AluOp::Movsx(_));
    let dst_read = if reads_dst { bit(d) } else { 0 };
    let i = match (width, src) {
        (Width::W64, Operand::Imm(imm)) => {
            let k = imm as i64 as u64;
            let sh = (imm as u32) & 63;
            match op {
                AluOp::Add => I::Add64K { d, k },
                AluOp::Sub => I::Sub64K { d, k },
                AluOp::Mul => I::Mul64K { d, k },
                AluOp::Div => I::Div64K { d, k },
                AluOp::Sdiv => I::Sdiv64K { d, k },
                AluOp::Mod => I::Mod64K { d, k },
                AluOp::Smod => I::Smod64K { d, k },
                AluOp::Or => I::Or64K { d, k },
                AluOp::And => I::And64K { d, k },
                AluOp::Xor => I::Xor64K { d, k },
                AluOp::Lsh => I::Lsh64K { d, k: sh },
                AluOp::Rsh => I::Rsh64K { d, k: sh },
                AluOp::Arsh => I::Arsh64K { d, k: sh },
                // Movsx has only a register form (the decoder enforces it).
                AluOp::Mov | AluOp::Movsx(_) => I::Mov64K { d, k },
            }
        }
        (Width::W32, Operand::Imm(imm)) => {
            let k = imm as u32;
            let sh = k & 31;
            match op {
                AluOp::Add => I::Add32K { d, k },
                AluOp::Sub => I::Sub32K { d, k },
                AluOp::Mul => I::Mul32K { d, k },
                AluOp::Div => I::Div32K { d, k },
                AluOp::Sdiv => I::Sdiv32K { d, k },
                AluOp::Mod => I::Mod32K { d, k },
                AluOp::Smod => I::Smod32K { d, k },
                AluOp::Or => I::Or32K { d, k },
                AluOp::And => I::And32K { d, k },
                AluOp::Xor => I::Xor32K { d, k },
                AluOp::Lsh => I::Lsh32K { d, k: sh },
                AluOp::Rsh => I::Rsh32K { d, k: sh },
                AluOp::Arsh => I::Arsh32K { d, k: sh },
                AluOp::Mov | AluOp::Movsx(_) => I::Mov32K { d, k },
            }
        }
        (Width::W64, Operand::Reg(src)) => {
            let s = src.num();
            let i = match op {
                AluOp::Add => I::Add64X { d, s },
                AluOp::Sub => I::Sub64X { d, s },
                AluOp::Mul => I::Mul64X { d, s },
                AluOp::Div => I::Div64X { d, s },
                AluOp::Sdiv => I::Sdiv64X { d, s },
                AluOp::Mod => I::Mod64X { d, s },
                AluOp::Smod => I::Smod64X { d, s },
                AluOp::Or => I::Or64X { d, s },
                AluOp::And => I::And64X { d, s },
                AluOp::Xor => I::Xor64X { d, s },
                AluOp::Lsh => I::Lsh64X { d, s },
                AluOp::Rsh => I::Rsh64X { d, s },
                AluOp::Arsh => I::Arsh64X { d, s },
                AluOp::Mov => I::Mov64X { d, s },
                AluOp::Movsx(8) => I::Movsx8To64 { d, s },
                AluOp::Movsx(16) => I::Movsx16To64 { d, s },
                AluOp::Movsx(_) => I::Movsx32To64 { d, s },
            };
            return Ok((i, meta(dst_read | bit(s), bit(d))));
        }
        (Width::W32, Operand::Reg(src)) => {
            let s = src.num();
            let i = match op {
                AluOp::Add => I::Add32X { d, s },
                AluOp::Sub => I::Sub32X { d, s },
                AluOp::Mul => I::Mul32X { d, s },
                AluOp::Div => I::Div32X { d, s },
                AluOp::Sdiv => I::Sdiv32X { d, s },
                AluOp::Mod => I::Mod32X { d, s },
                AluOp::Smod => I::Smod32X { d, s },
                AluOp::Or => I::Or32X { d, s },
                AluOp::And => I::And32X { d, s },
                AluOp::Xor => I::Xor32X { d, s },
                AluOp::Lsh => I::Lsh32X { d, s },
                AluOp::Rsh => I::Rsh32X { d, s },
                AluOp::Arsh => I::Arsh32X { d, s },
                AluOp::Mov => I::Mov32X { d, s },
                AluOp::Movsx(8) => I::Movsx8To32 { d, s },
                // The decoder allows only 8 and 16 in 32-bit MOVSX.
                AluOp::Movsx(_) => I::Movsx16To32 { d, s },
            };
            return Ok((i, meta(dst_read | bit(s), bit(d))));
        }
    };
    Ok((i, meta(dst_read, bit(d))))
}

fn jcond(width: Width, cond: JmpCond, d: u8, src: Operand, t: u32) -> (I, Meta) {
    use JmpCond as C;
    let i = match (width, src) {
        (Width::W64, Operand::Imm(imm)) => {
            let k = imm as i64 as u64;
            match cond {
                C::Eq => I::Jeq64K { d, k, t },
                C::Ne => I::Jne64K { d, k, t },
                C::Gt => I::Jgt64K { d, k, t },
                C::Ge => I::Jge64K { d, k, t },
                C::Lt => I::Jlt64K { d, k, t },
                C::Le => I::Jle64K { d, k, t },
                C::Set => I::Jset64K { d, k, t },
                C::Sgt => I::Jsgt64K { d, k, t },
                C::Sge => I::Jsge64K { d, k, t },
                C::Slt => I::Jslt64K { d, k, t },
                C::Sle => I::Jsle64K { d, k, t },
            }
        }
        (Width::W32, Operand::Imm(imm)) => {
            let k = imm as u32;
            match cond {
                C::Eq => I::Jeq32K { d, k, t },
                C::Ne => I::Jne32K { d, k, t },
                C::Gt => I::Jgt32K { d, k, t },
                C::Ge => I::Jge32K { d, k, t },
                C::Lt => I::Jlt32K { d, k, t },
                C::Le => I::Jle32K { d, k, t },
                C::Set => I::Jset32K { d, k, t },
                C::Sgt => I::Jsgt32K { d, k, t },
                C::Sge => I::Jsge32K { d, k, t },
                C::Slt => I::Jslt32K { d, k, t },
                C::Sle => I::Jsle32K { d, k, t },
            }
        }
        (Width::W64, Operand::Reg(src)) => {
            let s = src.num();
            let i = match cond {
                C::Eq => I::Jeq64X { d, s, t },
                C::Ne => I::Jne64X { d, s, t },
                C::Gt => I::Jgt64X { d, s, t },
                C::Ge => I::Jge64X { d, s, t },
                C::Lt => I::Jlt64X { d, s, t },
                C::Le => I::Jle64X { d, s, t },
                C::Set => I::Jset64X { d, s, t },
                C::Sgt => I::Jsgt64X { d, s, t },
                C::Sge => I::Jsge64X { d, s, t },
                C::Slt => I::Jslt64X { d, s, t },
                C::Sle => I::Jsle64X { d, s, t },
            };
            return (i, meta(bit(d) | bit(s), 0));
        }
        (Width::W32, Operand::Reg(src)) => {
            let s = src.num();
            let i = match cond {
                C::Eq => I::Jeq32X { d, s, t },
                C::Ne => I::Jne32X { d, s, t },
                C::Gt => I::Jgt32X { d, s, t },
                C::Ge => I::Jge32X { d, s, t },
                C::Lt => I::Jlt32X { d, s, t },
                C::Le => I::Jle32X { d, s, t },
                C::Set => I::Jset32X { d, s, t },
                C::Sgt => I::Jsgt32X { d, s, t },
                C::Sge => I::Jsge32X { d, s, t },
                C::Slt => I::Jslt32X { d, s, t },
                C::Sle => I::Jsle32X { d, s, t },
            };
            return (i, meta(bit(d) | bit(s), 0));
        }
    };
    (i, meta(bit(d), 0))
}
