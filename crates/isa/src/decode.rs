//! Decoding slots into [`Op`]s with the kernel's encoding checks, in the kernel's order.
//!
//! Linux checks an encoding in two places (kernel/bpf/verifier.c, Linux 6.18):
//! 1. an up-front pass over the whole program (`resolve_pseudo_ldimm64`): an LDX must use
//!    MEM or MEMSX mode and a zero immediate; an LD_IMM64 needs a second slot that is zero
//!    but for its immediate, and a known pseudo source; every other opcode must be in
//!    `bpf_opcode_in_insntable` (kernel/bpf/core.c);
//! 2. per instruction while verifying (`do_check_insn`: `check_alu_op`, `check_cond_jmp_op`,
//!    `check_ld_abs`, `check_ld_imm`, `check_atomic`, ...): unused fields must be zero, then
//!    each register field is checked (`R%d is invalid`) in the order the kernel reads them.
//!
//! [`precheck`] is pass 1 over a program, [`decode`] is both passes for one instruction, and
//! [`decode_all`] runs pass 1 over everything before pass 2, so the first error it reports is
//! the one the kernel reports for a program whose instructions it visits in index order. (The
//! kernel's pass 2 only sees the instructions its path walk reaches; a verifier that wants that
//! exactly calls [`precheck`] once and [`decode`] as it visits.)
//!
//! One unused field Linux does not check: an exit's offset (the live kernel accepts `exit` with
//! any offset). The decoder accepts it too and [`Op::Exit`] drops it, as the kernel's printer
//! does; so does `Op::encode`, which is why the conformance suite's `unused-exit-offset.data`
//! decodes.
//!
//! What is checked here is only what depends on the encoding alone. Whether `r10` may be written,
//! whether a helper id exists, whether a program type may use LD_ABS: the verifier's business.

use crate::insn::{Insn, Reg};
use crate::op::{
    AluOp, AtomicOp, CallTarget, EncodingError, EncodingErrorKind as K, EndKind, JmpCond, Op,
    Operand, Size, Width,
};
use crate::opcode as c;

/// `bpf_opcode_in_insntable` of Linux 6.18 for every class but LDX (checked before it, by
/// mode) and LD_IMM64 (checked by its own rules).
const fn in_insntable(code: u8) -> bool {
    let op = c::op(code);
    let x = c::source(code) == c::X;
    match c::class(code) {
        c::ALU => match op {
            c::NEG => !x,
            _ => op <= c::END,
        },
        c::ALU64 => match op {
            c::NEG => !x,
            c::END => !x,
            _ => op <= c::END,
        },
        c::JMP => match op {
            c::JA | c::CALL | c::EXIT | c::JCOND => !x,
            _ => op <= c::JSLE,
        },
        c::JMP32 => match op {
            c::JA => !x,
            c::CALL | c::EXIT => false,
            _ => op <= c::JSLE,
        },
        c::LD => match c::mode(code) {
            c::ABS | c::IND => c::size(code) != c::DW,
            c::IMM => c::size(code) == c::DW,
            _ => false,
        },
        c::LDX => match c::mode(code) {
            c::MEM => true,
            c::MEMSX => c::size(code) != c::DW,
            _ => false,
        },
        c::ST => c::mode(code) == c::MEM,
        _ => matches!(c::mode(code), c::MEM | c::ATOMIC),
    }
}

fn err<T>(idx: usize, kind: K) -> Result<T, EncodingError> {
    Err(EncodingError { idx, kind })
}

/// `check_reg_arg`'s range check: register fields are 4 bits, registers r0..r10.
fn reg(idx: usize, n: u8) -> Result<Reg, EncodingError> {
    Reg::new(n).ok_or(EncodingError {
        idx,
        kind: K::InvalidRegister(n),
    })
}

/// Pass 1 for the instruction at `idx`; returns how many slots it takes.
fn precheck_one(insns: &[Insn], idx: usize) -> Result<usize, EncodingError> {
    let Some(&insn) = insns.get(idx) else {
        return err(idx, K::OutOfRange);
    };
    if insn.class() == c::LDX
        && ((c::mode(insn.code) != c::MEM && c::mode(insn.code) != c::MEMSX) || insn.imm != 0)
    {
        return err(idx, K::ReservedFields("BPF_LDX"));
    }
    if insn.is_ld_imm64() {
        match insns.get(idx + 1) {
            Some(n) if n.code == 0 && n.dst == 0 && n.src == 0 && n.off == 0 => {
                let map_form = insn.src == c::PSEUDO_MAP_FD || insn.src == c::PSEUDO_MAP_IDX;
                if insn.src > c::PSEUDO_MAP_IDX_VALUE || (map_form && n.imm != 0) {
                    return err(idx, K::UnknownPseudo(insn.src));
                }
                return Ok(2);
            }
            _ => return err(idx, K::MalformedLdImm64),
        }
    }
    if !in_insntable(insn.code) {
        return err(idx, K::UnknownOpcode(insn.code));
    }
    Ok(1)
}

/// The kernel's up-front pass over a whole program (`resolve_pseudo_ldimm64`): LDX mode and
/// immediate, LD_IMM64 shape and pseudo source, known opcodes.
///
/// # Errors
/// The first slot, in index order, that breaks one of these rules.
pub fn precheck(insns: &[Insn]) -> Result<(), EncodingError> {
    let mut idx = 0;
    while idx < insns.len() {
        idx += precheck_one(insns, idx)?;
    }
    Ok(())
}

/// Decodes and checks the instruction starting at slot `idx` (both passes; see the module
/// documentation).
///
/// # Errors
/// An [`EncodingError`] at `idx` naming the first rule the encoding breaks, with the kernel's
/// message.
pub fn decode(insns: &[Insn], idx: usize) -> Result<Op, EncodingError> {
    precheck_one(insns, idx)?;
    let insn = insns[idx];
    match insn.class() {
        c::ALU | c::ALU64 => alu(insn, idx),
        c::JMP | c::JMP32 => jmp(insn, idx),
        c::LD => ld(insns, insn, idx),
        c::LDX => {
            // Mode and immediate were checked by the pre-pass; check_load_mem reads src first.
            let src = reg(idx, insn.src)?;
            let dst = reg(idx, insn.dst)?;
            let sign_extend = c::mode(insn.code) == c::MEMSX;
            Ok(Op::Load {
                size: Size::from_code(insn.code),
                sign_extend,
                dst,
                src,
                off: insn.off,
            })
        }
        c::ST => {
            if c::mode(insn.code) != c::MEM || insn.src != 0 {
                return err(idx, K::ReservedFields("BPF_ST"));
            }
            let dst = reg(idx, insn.dst)?;
            Ok(Op::StoreImm {
                size: Size::from_code(insn.code),
                dst,
                off: insn.off,
                imm: insn.imm,
            })
        }
        _ => stx(insn, idx),
    }
}

/// Decodes every instruction of a program, pairing each with its first slot index: the
/// up-front pass over all of it, then each instruction in index order.
///
/// # Errors
/// The first [`EncodingError`] as described in the module documentation.
pub fn decode_all(insns: &[Insn]) -> Result<Vec<(usize, Op)>, EncodingError> {
    precheck(insns)?;
    let mut out = Vec::with_capacity(insns.len());
    let mut idx = 0;
    while idx < insns.len() {
        let op = decode(insns, idx)?;
        out.push((idx, op));
        idx += op.slots();
    }
    Ok(out)
}

/// `check_alu_op`.
fn alu(insn: Insn, idx: usize) -> Result<Op, EncodingError> {
    let width = if insn.class() == c::ALU64 {
        Width::W64
    } else {
        Width::W32
    };
    let opc = c::op(insn.code);
    let is_x = c::source(insn.code) == c::X;
    match opc {
        c::NEG => {
            if is_x || insn.src != 0 || insn.off != 0 || insn.imm != 0 {
                return err(idx, K::ReservedFields("BPF_NEG"));
            }
            Ok(Op::Neg {
                width,
                dst: reg(idx, insn.dst)?,
            })
        }
        c::END => {
            if insn.src != 0
                || insn.off != 0
                || !matches!(insn.imm, 16 | 32 | 64)
                || (width == Width::W64 && is_x)
            {
                return err(idx, K::ReservedFields("BPF_END"));
            }
            let kind = match (width, is_x) {
                (Width::W64, _) => EndKind::Swap,
                (Width::W32, false) => EndKind::ToLe,
                (Width::W32, true) => EndKind::ToBe,
            };
            // imm is 16, 32 or 64 here.
            Ok(Op::End {
                kind,
                bits: insn.imm as u8,
                dst: reg(idx, insn.dst)?,
            })
        }
        c::MOV => {
            let (op, src) = if is_x {
                let sx_ok = match width {
                    Width::W32 => matches!(insn.off, 0 | 8 | 16),
                    Width::W64 => matches!(insn.off, 0 | 8 | 16 | 32),
                };
                if width == Width::W64 && insn.off == c::ADDR_SPACE_CAST {
                    return err(idx, K::AddrSpaceCast(insn.imm));
                }
                if !sx_ok || insn.imm != 0 {
                    return err(idx, K::ReservedFields("BPF_MOV"));
                }
                // off is 0, 8, 16 or 32 here.
                let op = if insn.off == 0 {
                    AluOp::Mov
                } else {
                    AluOp::Movsx(insn.off as u8)
                };
                (op, Operand::Reg(reg(idx, insn.src)?))
            } else {
                if insn.src != 0 || insn.off != 0 {
                    return err(idx, K::ReservedFields("BPF_MOV"));
                }
                (AluOp::Mov, Operand::Imm(insn.imm))
            };
            Ok(Op::Alu {
                width,
                op,
                dst: reg(idx, insn.dst)?,
                src,
            })
        }
        _ if opc > c::END => err(idx, K::InvalidAluOpcode(opc)),
        _ => {
            let signed = insn.off == 1;
            if (insn.off != 0 && !signed)
                || (signed && opc != c::DIV && opc != c::MOD)
                || (is_x && insn.imm != 0)
                || (!is_x && insn.src != 0)
            {
                return err(idx, K::ReservedFields("BPF_ALU"));
            }
            let op = match (opc, signed) {
                (c::ADD, _) => AluOp::Add,
                (c::SUB, _) => AluOp::Sub,
                (c::MUL, _) => AluOp::Mul,
                (c::DIV, false) => AluOp::Div,
                (c::DIV, true) => AluOp::Sdiv,
                (c::OR, _) => AluOp::Or,
                (c::AND, _) => AluOp::And,
                (c::LSH, _) => AluOp::Lsh,
                (c::RSH, _) => AluOp::Rsh,
                (c::MOD, false) => AluOp::Mod,
                (c::MOD, true) => AluOp::Smod,
                (c::XOR, _) => AluOp::Xor,
                _ => AluOp::Arsh,
            };
            let src = if is_x {
                Operand::Reg(reg(idx, insn.src)?)
            } else {
                Operand::Imm(insn.imm)
            };
            Ok(Op::Alu {
                width,
                op,
                dst: reg(idx, insn.dst)?,
                src,
            })
        }
    }
}

/// The JMP and JMP32 branches of `do_check_insn`, and `check_cond_jmp_op`.
fn jmp(insn: Insn, idx: usize) -> Result<Op, EncodingError> {
    let width = if insn.class() == c::JMP {
        Width::W64
    } else {
        Width::W32
    };
    let opc = c::op(insn.code);
    let is_x = c::source(insn.code) == c::X;
    match opc {
        c::CALL => {
            if is_x
                || (insn.src != c::PSEUDO_KFUNC_CALL && insn.off != 0)
                || insn.src > c::PSEUDO_KFUNC_CALL
                || insn.dst != 0
                || width == Width::W32
            {
                return err(idx, K::ReservedFields("BPF_CALL"));
            }
            Ok(Op::Call(match insn.src {
                0 => CallTarget::Helper(insn.imm),
                c::PSEUDO_CALL => CallTarget::Local(insn.imm),
                _ => CallTarget::Kfunc {
                    btf_id: insn.imm,
                    off: insn.off,
                },
            }))
        }
        c::JA => {
            if is_x
                || insn.src != 0
                || insn.dst != 0
                || (width == Width::W64 && insn.imm != 0)
                || (width == Width::W32 && insn.off != 0)
            {
                return err(idx, K::ReservedFields("BPF_JA"));
            }
            let long = width == Width::W32;
            Ok(Op::Ja {
                off: if long { insn.imm } else { i32::from(insn.off) },
                long,
            })
        }
        c::EXIT => {
            // Linux does not look at an exit's offset (tested against the live kernel): it is
            // accepted and, as the kernel's printer does, dropped.
            if is_x || insn.imm != 0 || insn.src != 0 || insn.dst != 0 || width == Width::W32 {
                return err(idx, K::ReservedFields("BPF_EXIT"));
            }
            Ok(Op::Exit)
        }
        c::JCOND => {
            if width == Width::W32 || insn.src != c::MAY_GOTO || insn.dst != 0 || insn.imm != 0 {
                return err(idx, K::InvalidMayGoto(insn.imm));
            }
            Ok(Op::MayGoto { off: insn.off })
        }
        _ if opc > c::JSLE => err(idx, K::InvalidJmpOpcode(opc)),
        _ => {
            // check_cond_jmp_op reads dst before it looks at the unused field.
            let dst = reg(idx, insn.dst)?;
            if (is_x && insn.imm != 0) || (!is_x && insn.src != 0) {
                return err(idx, K::ReservedFields("BPF_JMP/JMP32"));
            }
            let cond = match opc {
                c::JEQ => JmpCond::Eq,
                c::JGT => JmpCond::Gt,
                c::JGE => JmpCond::Ge,
                c::JSET => JmpCond::Set,
                c::JNE => JmpCond::Ne,
                c::JSGT => JmpCond::Sgt,
                c::JSGE => JmpCond::Sge,
                c::JLT => JmpCond::Lt,
                c::JLE => JmpCond::Le,
                c::JSLT => JmpCond::Slt,
                _ => JmpCond::Sle,
            };
            let src = if is_x {
                Operand::Reg(reg(idx, insn.src)?)
            } else {
                Operand::Imm(insn.imm)
            };
            Ok(Op::Jcond {
                width,
                cond,
                dst,
                src,
                off: insn.off,
            })
        }
    }
}

/// `check_ld_abs` and `check_ld_imm`.
fn ld(insns: &[Insn], insn: Insn, idx: usize) -> Result<Op, EncodingError> {
    let size = Size::from_code(insn.code);
    match c::mode(insn.code) {
        mode @ (c::ABS | c::IND) => {
            if insn.dst != 0
                || insn.off != 0
                || size == Size::DW
                || (mode == c::ABS && insn.src != 0)
            {
                return err(idx, K::ReservedFields("BPF_LD_[ABS|IND]"));
            }
            if mode == c::ABS {
                Ok(Op::LdAbs {
                    size,
                    imm: insn.imm,
                })
            } else {
                Ok(Op::LdInd {
                    size,
                    src: reg(idx, insn.src)?,
                    imm: insn.imm,
                })
            }
        }
        c::IMM => {
            if size != Size::DW {
                return err(idx, K::InvalidLdImm);
            }
            if insn.off != 0 {
                return err(idx, K::ReservedFields("BPF_LD_IMM64"));
            }
            let dst = reg(idx, insn.dst)?;
            // The pre-pass checked that the second slot exists.
            let next_imm = insns.get(idx + 1).map_or(0, |n| n.imm);
            Ok(Op::LdImm64 {
                dst,
                pseudo: insn.src,
                imm: insn.imm,
                next_imm,
            })
        }
        _ => err(idx, K::UnknownOpcode(insn.code)),
    }
}

/// The STX branch of `do_check_insn` and `check_atomic`.
fn stx(insn: Insn, idx: usize) -> Result<Op, EncodingError> {
    let size = Size::from_code(insn.code);
    if c::mode(insn.code) == c::ATOMIC {
        let fetch = insn.imm & c::FETCH != 0;
        let op = match insn.imm {
            c::LOAD_ACQ => {
                let src = reg(idx, insn.src)?;
                let dst = reg(idx, insn.dst)?;
                return Ok(Op::LoadAcquire {
                    size,
                    dst,
                    src,
                    off: insn.off,
                });
            }
            c::STORE_REL => {
                let src = reg(idx, insn.src)?;
                let dst = reg(idx, insn.dst)?;
                return Ok(Op::StoreRelease {
                    size,
                    dst,
                    src,
                    off: insn.off,
                });
            }
            c::XCHG => AtomicOp::Xchg,
            c::CMPXCHG => AtomicOp::Cmpxchg,
            0x00 | 0x01 => AtomicOp::Add { fetch },
            0x40 | 0x41 => AtomicOp::Or { fetch },
            0x50 | 0x51 => AtomicOp::And { fetch },
            0xa0 | 0xa1 => AtomicOp::Xor { fetch },
            other => return err(idx, K::InvalidAtomicOp(other)),
        };
        if size != Size::W && size != Size::DW {
            return err(idx, K::InvalidAtomicSize);
        }
        let src = reg(idx, insn.src)?;
        let dst = reg(idx, insn.dst)?;
        return Ok(Op::Atomic {
            size,
            op,
            dst,
            src,
            off: insn.off,
        });
    }
    if c::mode(insn.code) != c::MEM || insn.imm != 0 {
        return err(idx, K::ReservedFields("BPF_STX"));
    }
    let src = reg(idx, insn.src)?;
    let dst = reg(idx, insn.dst)?;
    Ok(Op::StoreReg {
        size,
        dst,
        src,
        off: insn.off,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Result<Op, K> {
        decode(&[Insn::new(code, dst, src, off, imm)], 0).map_err(|e| e.kind)
    }

    // Expected verdicts and messages are the Linux 6.18 verifier's (kernel/bpf/verifier.c);
    // tests/kernel_decode.rs checks the whole opcode space against the live kernel.

    #[test]
    fn alu_reserved_fields() {
        assert!(one(0x07, 1, 0, 0, 1).is_ok());
        assert_eq!(one(0x07, 1, 2, 0, 1), Err(K::ReservedFields("BPF_ALU")));
        // Offset 1 selects signed division and modulo, and nothing else.
        assert!(matches!(
            one(0x3f, 1, 2, 1, 0),
            Ok(Op::Alu {
                op: AluOp::Sdiv,
                ..
            })
        ));
        assert_eq!(one(0x0f, 1, 2, 1, 0), Err(K::ReservedFields("BPF_ALU")));
        // movsx from 32 bits exists only in ALU64; offset 1 of ALU64 MOV is an arena cast.
        assert!(matches!(
            one(0xbf, 1, 2, 32, 0),
            Ok(Op::Alu {
                op: AluOp::Movsx(32),
                ..
            })
        ));
        assert_eq!(one(0xbc, 1, 2, 32, 0), Err(K::ReservedFields("BPF_MOV")));
        assert_eq!(
            one(0xbf, 1, 2, 1, 1).map_err(|k| k.kernel_message()),
            Err(
                "addr_space_cast insn can only be used in a program that has an associated arena"
                    .to_string()
            )
        );
    }

    #[test]
    fn ld_imm64_needs_a_clean_second_slot_and_a_known_source() {
        let good = [Insn::new(0x18, 1, 0, 0, 5), Insn::new(0, 0, 0, 0, 7)];
        assert_eq!(
            decode(&good, 0),
            Ok(Op::LdImm64 {
                dst: Reg::R1,
                pseudo: 0,
                imm: 5,
                next_imm: 7
            })
        );
        let kind = |p: &[Insn]| decode(p, 0).map_err(|e| e.kind);
        assert_eq!(kind(&good[..1]), Err(K::MalformedLdImm64));
        assert_eq!(
            kind(&[Insn::new(0x18, 1, 0, 0, 5), Insn::new(0x07, 0, 0, 0, 7)]),
            Err(K::MalformedLdImm64)
        );
        // A map fd with a second immediate, or a source past 6, is unrecognized.
        assert_eq!(
            kind(&[Insn::new(0x18, 1, 1, 0, 5), Insn::new(0, 0, 0, 0, 7)]),
            Err(K::UnknownPseudo(1))
        );
        assert_eq!(
            kind(&[Insn::new(0x18, 1, 7, 0, 5), Insn::new(0, 0, 0, 0, 0)]),
            Err(K::UnknownPseudo(7))
        );
        assert!(kind(&[Insn::new(0x18, 1, 2, 0, 5), Insn::new(0, 0, 0, 0, 7)]).is_ok());
    }

    #[test]
    fn registers_above_r10_are_invalid() {
        assert_eq!(one(0xb7, 11, 0, 0, 0), Err(K::InvalidRegister(11)));
        // A conditional jump reads dst before checking its unused fields.
        assert_eq!(one(0x15, 11, 2, 0, 0), Err(K::InvalidRegister(11)));
        // A load reads src before dst.
        assert_eq!(one(0x61, 12, 11, 0, 0), Err(K::InvalidRegister(11)));
    }

    #[test]
    fn the_opcode_table_comes_before_field_checks() {
        assert_eq!(one(0xe4, 0, 0, 0, 0), Err(K::UnknownOpcode(0xe4)));
        assert_eq!(one(0x8c, 1, 2, 0, 0), Err(K::UnknownOpcode(0x8c)));
        assert_eq!(one(0x8d, 2, 0, 0, 0), Err(K::UnknownOpcode(0x8d)));
        assert_eq!(one(0x9b, 0, 0, 0, 0), Err(K::UnknownOpcode(0x9b)));
        // ... except for LDX, whose mode and immediate are checked first.
        assert_eq!(one(0x21, 0, 0, 0, 0), Err(K::ReservedFields("BPF_LDX")));
        assert_eq!(one(0x99, 0, 1, 0, 0), Err(K::UnknownOpcode(0x99)));
    }

    #[test]
    fn atomics_load_acquire_store_release_and_may_goto() {
        assert_eq!(one(0xd3, 10, 1, -8, 0x01), Err(K::InvalidAtomicSize));
        assert_eq!(
            one(0xdb, 10, 1, -8, 0x101).map_err(|k| k.kernel_message()),
            Err("BPF_ATOMIC uses invalid atomic opcode 101".to_string())
        );
        assert_eq!(
            one(0xd3, 0, 2, 0, 0x100),
            Ok(Op::LoadAcquire {
                size: Size::B,
                dst: Reg::R0,
                src: Reg::R2,
                off: 0
            })
        );
        assert_eq!(
            one(0xcb, 2, 1, 4, 0x110),
            Ok(Op::StoreRelease {
                size: Size::H,
                dst: Reg::R2,
                src: Reg::R1,
                off: 4
            })
        );
        assert_eq!(one(0xe5, 0, 0, 3, 0), Ok(Op::MayGoto { off: 3 }));
        assert_eq!(one(0xe5, 0, 0, 3, 7), Err(K::InvalidMayGoto(7)));
    }

    #[test]
    fn decode_all_reports_the_up_front_pass_first() {
        // Slot 0 uses a reserved ALU field (checked while verifying), slot 1 is an unknown
        // opcode (checked up front): the kernel reports slot 1.
        let p = [Insn::new(0x07, 1, 2, 0, 1), Insn::new(0x8d, 0, 0, 0, 0)];
        let e = decode_all(&p).expect_err("must be rejected");
        assert_eq!((e.idx, e.kind), (1, K::UnknownOpcode(0x8d)));
    }
}
