//! Translation of checked instruction slots into the pre-decoded form of [`code`](crate::code).
//!
//! Runs once per program. It decodes with the isa crate's [`decode_all`] (the kernel's encoding
//! checks), resolves jump and call targets to code indices, fuses LD_IMM64 pairs, resolves
//! helper ids against the [`Helpers`] table, specialises every operation, and rejects what no
//! run may do: jumps out of the program or into an LD_IMM64, writes to r10 (`frame pointer is
//! read only`), unknown helpers, kfunc calls and LD_IMM64 pseudo forms the runtime did not
//! resolve. After translation the interpreter never meets an ill-formed instruction.

use crate::code::{atomic_code, bit, Meta, Opc, CALLER_SAVED, I};
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
    out.code.push(I::new(Opc::FellOff));
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
                I::ds(Opc::Neg64, d, 0)
            } else {
                I::ds(Opc::Neg32, d, 0)
            };
            (i, meta(bit(d), bit(d)))
        }
        Op::End { kind, bits, dst } => {
            let d = cx.wr(dst)?;
            let i = match (kind, bits) {
                (EndKind::ToLe, 16) => I::ds(Opc::Le16, d, 0),
                (EndKind::ToLe, 32) => I::ds(Opc::Le32, d, 0),
                (EndKind::ToLe, _) => I::ds(Opc::Le64, d, 0),
                (EndKind::ToBe, 16) => I::ds(Opc::Be16, d, 0),
                (EndKind::ToBe, 32) => I::ds(Opc::Be32, d, 0),
                (EndKind::ToBe, _) => I::ds(Opc::Be64, d, 0),
                (EndKind::Swap, 16) => I::ds(Opc::Swap16, d, 0),
                (EndKind::Swap, 32) => I::ds(Opc::Swap32, d, 0),
                (EndKind::Swap, _) => I::ds(Opc::Swap64, d, 0),
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
            (I::dk(Opc::LdImm64, d, k), meta(0, bit(d)))
        }
        Op::LdAbs { size, imm } => {
            let m = Meta {
                pc: 0,
                reads: 0,
                writes: bit(0),
                clobbers: CALLER_SAVED,
            };
            (
                I {
                    x: size.bytes() as u8,
                    ..I::dk(Opc::LdAbs, 0, imm as i64 as u64)
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
                I {
                    x: size.bytes() as u8,
                    s,
                    ..I::dk(Opc::LdInd, 0, imm as i64 as u64)
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
                (Size::B, false) => I::mem(Opc::Ldx8, d, s, off),
                (Size::H, false) => I::mem(Opc::Ldx16, d, s, off),
                (Size::W, false) => I::mem(Opc::Ldx32, d, s, off),
                (Size::DW, _) => I::mem(Opc::Ldx64, d, s, off),
                (Size::B, true) => I::mem(Opc::Ldxs8, d, s, off),
                (Size::H, true) => I::mem(Opc::Ldxs16, d, s, off),
                (Size::W, true) => I::mem(Opc::Ldxs32, d, s, off),
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
                Size::B => store_imm(Opc::St8, d, off, k),
                Size::H => store_imm(Opc::St16, d, off, k),
                Size::W => store_imm(Opc::St32, d, off, k),
                Size::DW => store_imm(Opc::St64, d, off, k),
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
                Size::B => I::mem(Opc::Stx8, d, s, off),
                Size::H => I::mem(Opc::Stx16, d, s, off),
                Size::W => I::mem(Opc::Stx32, d, s, off),
                Size::DW => I::mem(Opc::Stx64, d, s, off),
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
                I {
                    x: atomic_code(op),
                    ..I::mem(Opc::Atomic64, d, s, off)
                }
            } else {
                I {
                    x: atomic_code(op),
                    ..I::mem(Opc::Atomic32, d, s, off)
                }
            };
            (i, meta(reads, writes))
        }
        Op::Ja { off, .. } => (
            I::jump(Opc::Ja, 0, 0, 0, cx.jump(i64::from(off))?),
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
                (
                    I {
                        t: idx,
                        ..I::new(Opc::Call)
                    },
                    m,
                )
            }
            Some(HelperEntry::TailCall) => {
                let m = Meta {
                    pc: 0,
                    reads: bit(1) | bit(2) | bit(3),
                    writes: 0,
                    clobbers: 0,
                };
                (I::new(Opc::TailCall), m)
            }
            None => return Err(cx.err(ErrorKind::UnknownHelper(id))),
        },
        Op::Call(CallTarget::Local(off)) => {
            let target = cx.slot as i64 + 1 + i64::from(off);
            let t = cx
                .jump(i64::from(off))
                .map_err(|_| cx.err(ErrorKind::BadCallTarget { target }))?;
            (
                I {
                    t,
                    ..I::new(Opc::CallLocal)
                },
                meta(0, 0),
            )
        }
        Op::Call(CallTarget::Kfunc { btf_id: id, .. }) => {
            return Err(cx.err(ErrorKind::Unsupported(format!("kfunc call (BTF id {id})"))));
        }
        Op::Exit => (I::new(Opc::Exit), meta(bit(0), 0)),
        Op::LoadAcquire {
            size,
            dst,
            src,
            off,
        } => {
            let (d, s) = (cx.wr(dst)?, src.num());
            let op = match size {
                Size::B => Opc::LdAcq8,
                Size::H => Opc::LdAcq16,
                Size::W => Opc::LdAcq32,
                Size::DW => Opc::LdAcq64,
            };
            (I::mem(op, d, s, off), meta(bit(s), bit(d)))
        }
        Op::StoreRelease {
            size,
            dst,
            src,
            off,
        } => {
            let (d, s) = (dst.num(), src.num());
            let op = match size {
                Size::B => Opc::StRel8,
                Size::H => Opc::StRel16,
                Size::W => Opc::StRel32,
                Size::DW => Opc::StRel64,
            };
            (I::mem(op, d, s, off), meta(bit(d) | bit(s), 0))
        }
        Op::MayGoto { off } => (
            I::jump(Opc::MayGoto, 0, 0, 0, cx.jump(i64::from(off))?),
            meta(0, 0),
        ),
    })
}

/// `*(size *)(d + off) = k` (the constant sign-extended to 64 bits, then truncated).
fn store_imm(op: Opc, d: u8, off: i16, k: i32) -> I {
    I {
        t: i32::from(off) as u32,
        ..I::dk(op, d, k as i64 as u64)
    }
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
            let sh = u64::from((imm as u32) & 63);
            match op {
                AluOp::Add => I::dk(Opc::Add64K, d, k),
                AluOp::Sub => I::dk(Opc::Sub64K, d, k),
                AluOp::Mul => I::dk(Opc::Mul64K, d, k),
                AluOp::Div => I::dk(Opc::Div64K, d, k),
                AluOp::Sdiv => I::dk(Opc::Sdiv64K, d, k),
                AluOp::Mod => I::dk(Opc::Mod64K, d, k),
                AluOp::Smod => I::dk(Opc::Smod64K, d, k),
                AluOp::Or => I::dk(Opc::Or64K, d, k),
                AluOp::And => I::dk(Opc::And64K, d, k),
                AluOp::Xor => I::dk(Opc::Xor64K, d, k),
                AluOp::Lsh => I::dk(Opc::Lsh64K, d, sh),
                AluOp::Rsh => I::dk(Opc::Rsh64K, d, sh),
                AluOp::Arsh => I::dk(Opc::Arsh64K, d, sh),
                // Movsx has only a register form (the decoder enforces it).
                AluOp::Mov | AluOp::Movsx(_) => I::dk(Opc::Mov64K, d, k),
            }
        }
        (Width::W32, Operand::Imm(imm)) => {
            let k = u64::from(imm as u32);
            let sh = k & 31;
            match op {
                AluOp::Add => I::dk(Opc::Add32K, d, k),
                AluOp::Sub => I::dk(Opc::Sub32K, d, k),
                AluOp::Mul => I::dk(Opc::Mul32K, d, k),
                AluOp::Div => I::dk(Opc::Div32K, d, k),
                AluOp::Sdiv => I::dk(Opc::Sdiv32K, d, k),
                AluOp::Mod => I::dk(Opc::Mod32K, d, k),
                AluOp::Smod => I::dk(Opc::Smod32K, d, k),
                AluOp::Or => I::dk(Opc::Or32K, d, k),
                AluOp::And => I::dk(Opc::And32K, d, k),
                AluOp::Xor => I::dk(Opc::Xor32K, d, k),
                AluOp::Lsh => I::dk(Opc::Lsh32K, d, sh),
                AluOp::Rsh => I::dk(Opc::Rsh32K, d, sh),
                AluOp::Arsh => I::dk(Opc::Arsh32K, d, sh),
                AluOp::Mov | AluOp::Movsx(_) => I::dk(Opc::Mov32K, d, k),
            }
        }
        (Width::W64, Operand::Reg(src)) => {
            let s = src.num();
            let i = match op {
                AluOp::Add => I::ds(Opc::Add64X, d, s),
                AluOp::Sub => I::ds(Opc::Sub64X, d, s),
                AluOp::Mul => I::ds(Opc::Mul64X, d, s),
                AluOp::Div => I::ds(Opc::Div64X, d, s),
                AluOp::Sdiv => I::ds(Opc::Sdiv64X, d, s),
                AluOp::Mod => I::ds(Opc::Mod64X, d, s),
                AluOp::Smod => I::ds(Opc::Smod64X, d, s),
                AluOp::Or => I::ds(Opc::Or64X, d, s),
                AluOp::And => I::ds(Opc::And64X, d, s),
                AluOp::Xor => I::ds(Opc::Xor64X, d, s),
                AluOp::Lsh => I::ds(Opc::Lsh64X, d, s),
                AluOp::Rsh => I::ds(Opc::Rsh64X, d, s),
                AluOp::Arsh => I::ds(Opc::Arsh64X, d, s),
                AluOp::Mov => I::ds(Opc::Mov64X, d, s),
                AluOp::Movsx(8) => I::ds(Opc::Movsx8To64, d, s),
                AluOp::Movsx(16) => I::ds(Opc::Movsx16To64, d, s),
                AluOp::Movsx(_) => I::ds(Opc::Movsx32To64, d, s),
            };
            return Ok((i, meta(dst_read | bit(s), bit(d))));
        }
        (Width::W32, Operand::Reg(src)) => {
            let s = src.num();
            let i = match op {
                AluOp::Add => I::ds(Opc::Add32X, d, s),
                AluOp::Sub => I::ds(Opc::Sub32X, d, s),
                AluOp::Mul => I::ds(Opc::Mul32X, d, s),
                AluOp::Div => I::ds(Opc::Div32X, d, s),
                AluOp::Sdiv => I::ds(Opc::Sdiv32X, d, s),
                AluOp::Mod => I::ds(Opc::Mod32X, d, s),
                AluOp::Smod => I::ds(Opc::Smod32X, d, s),
                AluOp::Or => I::ds(Opc::Or32X, d, s),
                AluOp::And => I::ds(Opc::And32X, d, s),
                AluOp::Xor => I::ds(Opc::Xor32X, d, s),
                AluOp::Lsh => I::ds(Opc::Lsh32X, d, s),
                AluOp::Rsh => I::ds(Opc::Rsh32X, d, s),
                AluOp::Arsh => I::ds(Opc::Arsh32X, d, s),
                AluOp::Mov => I::ds(Opc::Mov32X, d, s),
                AluOp::Movsx(8) => I::ds(Opc::Movsx8To32, d, s),
                // The decoder allows only 8 and 16 in 32-bit MOVSX.
                AluOp::Movsx(_) => I::ds(Opc::Movsx16To32, d, s),
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
                C::Eq => I::jump(Opc::Jeq64K, d, 0, k, t),
                C::Ne => I::jump(Opc::Jne64K, d, 0, k, t),
                C::Gt => I::jump(Opc::Jgt64K, d, 0, k, t),
                C::Ge => I::jump(Opc::Jge64K, d, 0, k, t),
                C::Lt => I::jump(Opc::Jlt64K, d, 0, k, t),
                C::Le => I::jump(Opc::Jle64K, d, 0, k, t),
                C::Set => I::jump(Opc::Jset64K, d, 0, k, t),
                C::Sgt => I::jump(Opc::Jsgt64K, d, 0, k, t),
                C::Sge => I::jump(Opc::Jsge64K, d, 0, k, t),
                C::Slt => I::jump(Opc::Jslt64K, d, 0, k, t),
                C::Sle => I::jump(Opc::Jsle64K, d, 0, k, t),
            }
        }
        (Width::W32, Operand::Imm(imm)) => {
            let k = u64::from(imm as u32);
            match cond {
                C::Eq => I::jump(Opc::Jeq32K, d, 0, k, t),
                C::Ne => I::jump(Opc::Jne32K, d, 0, k, t),
                C::Gt => I::jump(Opc::Jgt32K, d, 0, k, t),
                C::Ge => I::jump(Opc::Jge32K, d, 0, k, t),
                C::Lt => I::jump(Opc::Jlt32K, d, 0, k, t),
                C::Le => I::jump(Opc::Jle32K, d, 0, k, t),
                C::Set => I::jump(Opc::Jset32K, d, 0, k, t),
                C::Sgt => I::jump(Opc::Jsgt32K, d, 0, k, t),
                C::Sge => I::jump(Opc::Jsge32K, d, 0, k, t),
                C::Slt => I::jump(Opc::Jslt32K, d, 0, k, t),
                C::Sle => I::jump(Opc::Jsle32K, d, 0, k, t),
            }
        }
        (Width::W64, Operand::Reg(src)) => {
            let s = src.num();
            let i = match cond {
                C::Eq => I::jump(Opc::Jeq64X, d, s, 0, t),
                C::Ne => I::jump(Opc::Jne64X, d, s, 0, t),
                C::Gt => I::jump(Opc::Jgt64X, d, s, 0, t),
                C::Ge => I::jump(Opc::Jge64X, d, s, 0, t),
                C::Lt => I::jump(Opc::Jlt64X, d, s, 0, t),
                C::Le => I::jump(Opc::Jle64X, d, s, 0, t),
                C::Set => I::jump(Opc::Jset64X, d, s, 0, t),
                C::Sgt => I::jump(Opc::Jsgt64X, d, s, 0, t),
                C::Sge => I::jump(Opc::Jsge64X, d, s, 0, t),
                C::Slt => I::jump(Opc::Jslt64X, d, s, 0, t),
                C::Sle => I::jump(Opc::Jsle64X, d, s, 0, t),
            };
            return (i, meta(bit(d) | bit(s), 0));
        }
        (Width::W32, Operand::Reg(src)) => {
            let s = src.num();
            let i = match cond {
                C::Eq => I::jump(Opc::Jeq32X, d, s, 0, t),
                C::Ne => I::jump(Opc::Jne32X, d, s, 0, t),
                C::Gt => I::jump(Opc::Jgt32X, d, s, 0, t),
                C::Ge => I::jump(Opc::Jge32X, d, s, 0, t),
                C::Lt => I::jump(Opc::Jlt32X, d, s, 0, t),
                C::Le => I::jump(Opc::Jle32X, d, s, 0, t),
                C::Set => I::jump(Opc::Jset32X, d, s, 0, t),
                C::Sgt => I::jump(Opc::Jsgt32X, d, s, 0, t),
                C::Sge => I::jump(Opc::Jsge32X, d, s, 0, t),
                C::Slt => I::jump(Opc::Jslt32X, d, s, 0, t),
                C::Sle => I::jump(Opc::Jsle32X, d, s, 0, t),
            };
            return (i, meta(bit(d) | bit(s), 0));
        }
    };
    (i, meta(bit(d), 0))
}
