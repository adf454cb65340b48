//! The typed view of an instruction: [`decode`] checks one slot (two for LD_IMM64) the way the
//! kernel's verifier checks encodings, and names what it does as an [`Op`].
//!
//! The checks are Linux's "tidiness" rules (kernel/bpf/verifier.c: `check_alu_op`,
//! `check_cond_jmp_op`, `resolve_pseudo_ldimm64`, `do_check_insn`): an unused field must be zero,
//! registers are r0..r10, LD_IMM64 needs a well-formed second slot. Every consumer — the
//! printer, the interpreter's translator, the verifier — matches on [`Op`] instead of re-reading
//! opcode bits, so the decoding rules live in one place.

use crate::insn::{Insn, Reg};
use crate::opcode as c;
use std::fmt;

/// Operand width of an ALU or conditional-jump instruction.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Width {
    /// 32-bit (ALU, JMP32): the upper half of the result is zeroed / ignored.
    W32,
    /// 64-bit (ALU64, JMP).
    W64,
}

/// The second operand of an ALU or jump instruction.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Operand {
    /// The source register.
    Reg(Reg),
    /// The immediate, sign-extended to the operation width.
    Imm(i32),
}

/// A two-operand ALU operation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum AluOp {
    /// `+=`
    Add,
    /// `-=`
    Sub,
    /// `*=`
    Mul,
    /// unsigned `/=` (x / 0 = 0)
    Div,
    /// signed `/=` (offset 1)
    Sdiv,
    /// `|=`
    Or,
    /// `&=`
    And,
    /// `<<=` (shift amount masked to the width)
    Lsh,
    /// logical `>>=`
    Rsh,
    /// unsigned `%=` (x % 0 = x)
    Mod,
    /// signed `%=` (offset 1)
    Smod,
    /// `^=`
    Xor,
    /// `=`
    Mov,
    /// sign-extending move from the low 8, 16 or 32 bits (offset 8/16/32)
    Movsx(u8),
    /// arithmetic `>>=`
    Arsh,
}

/// A byte-order operation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum EndKind {
    /// `le16/32/64`: convert host (little endian) to little endian, i.e. truncate.
    ToLe,
    /// `be16/32/64`: convert to big endian, i.e. swap on a little-endian host.
    ToBe,
    /// `bswap16/32/64` (ALU64 | END): unconditional swap.
    Swap,
}

/// Access size of a memory instruction.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Size {
    /// 1 byte.
    B,
    /// 2 bytes.
    H,
    /// 4 bytes.
    W,
    /// 8 bytes.
    DW,
}

impl Size {
    /// Bytes accessed.
    #[must_use]
    pub const fn bytes(self) -> u32 {
        match self {
            Size::B => 1,
            Size::H => 2,
            Size::W => 4,
            Size::DW => 8,
        }
    }

    /// The opcode size field.
    #[must_use]
    pub const fn field(self) -> u8 {
        match self {
            Size::B => c::B,
            Size::H => c::H,
            Size::W => c::W,
            Size::DW => c::DW,
        }
    }

    fn from_field(code: u8) -> Size {
        match c::size(code) {
            c::B => Size::B,
            c::H => Size::H,
            c::W => Size::W,
            _ => Size::DW,
        }
    }
}

/// An atomic read-modify-write operation (the immediate of `STX | ATOMIC`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum AtomicOp {
    /// `lock +=`, optionally fetching the old value into src.
    Add {
        /// Whether the old value is returned in the source register.
        fetch: bool,
    },
    /// `lock |=`
    Or {
        /// Whether the old value is returned in the source register.
        fetch: bool,
    },
    /// `lock &=`
    And {
        /// Whether the old value is returned in the source register.
        fetch: bool,
    },
    /// `lock ^=`
    Xor {
        /// Whether the old value is returned in the source register.
        fetch: bool,
    },
    /// exchange: src gets the old value.
    Xchg,
    /// compare r0 with memory, store src if equal; r0 gets the old value.
    Cmpxchg,
}

/// A conditional-jump comparison.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum JmpCond {
    /// `==`
    Eq,
    /// unsigned `>`
    Gt,
    /// unsigned `>=`
    Ge,
    /// `&` is not zero
    Set,
    /// `!=`
    Ne,
    /// signed `>`
    Sgt,
    /// signed `>=`
    Sge,
    /// unsigned `<`
    Lt,
    /// unsigned `<=`
    Le,
    /// signed `<`
    Slt,
    /// signed `<=`
    Sle,
}

/// What a CALL instruction calls.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum CallTarget {
    /// A helper function by id (src 0).
    Helper(i32),
    /// A local function at `pc + 1 + offset` (src 1).
    Local(i32),
    /// A kernel function by BTF id (src 2); decoded, unsupported by later stages.
    Kfunc {
        /// BTF id of the kernel function.
        btf_id: i32,
        /// Index into the program's fd array of the module BTF holding it (0: vmlinux).
        off: i16,
    },
}

/// One decoded instruction.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Op {
    /// `dst op= src` in 32 or 64 bits.
    Alu {
        /// Operation width.
        width: Width,
        /// Operation.
        op: AluOp,
        /// Destination register.
        dst: Reg,
        /// Second operand.
        src: Operand,
    },
    /// `dst = -dst`.
    Neg {
        /// Operation width.
        width: Width,
        /// Destination register.
        dst: Reg,
    },
    /// Byte-order conversion of the low `bits` of dst.
    End {
        /// Which conversion.
        kind: EndKind,
        /// 16, 32 or 64.
        bits: u8,
        /// Destination register.
        dst: Reg,
    },
    /// `dst = imm64` (two slots); `pseudo` is the src field (0 plain, 1 map fd, ...).
    LdImm64 {
        /// Destination register.
        dst: Reg,
        /// The src field: 0 plain value, 1..=6 the `PSEUDO_*` forms.
        pseudo: u8,
        /// Immediate of the first slot (low 32 bits, or the map fd / index).
        imm: i32,
        /// Immediate of the second slot (high 32 bits, or the map value offset).
        next_imm: i32,
    },
    /// Legacy `r0 = ntoh(packet[imm])`.
    LdAbs {
        /// Access size (B, H or W).
        size: Size,
        /// Packet offset.
        imm: i32,
    },
    /// Legacy `r0 = ntoh(packet[src + imm])`.
    LdInd {
        /// Access size (B, H or W).
        size: Size,
        /// Register holding the base offset.
        src: Reg,
        /// Added offset.
        imm: i32,
    },
    /// `dst = *(size *)(src + off)`, zero- or sign-extended.
    Load {
        /// Access size.
        size: Size,
        /// MEMSX: sign-extend the loaded value.
        sign_extend: bool,
        /// Destination register.
        dst: Reg,
        /// Base address register.
        src: Reg,
        /// Offset.
        off: i16,
    },
    /// `*(size *)(dst + off) = imm`.
    StoreImm {
        /// Access size.
        size: Size,
        /// Base address register.
        dst: Reg,
        /// Offset.
        off: i16,
        /// Stored value (truncated to size).
        imm: i32,
    },
    /// `*(size *)(dst + off) = src`.
    StoreReg {
        /// Access size.
        size: Size,
        /// Base address register.
        dst: Reg,
        /// Value register.
        src: Reg,
        /// Offset.
        off: i16,
    },
    /// Atomic read-modify-write on `*(size *)(dst + off)` (W or DW).
    Atomic {
        /// Access size (W or DW).
        size: Size,
        /// Operation.
        op: AtomicOp,
        /// Base address register.
        dst: Reg,
        /// Operand register (receives the old value with fetch).
        src: Reg,
        /// Offset.
        off: i16,
    },
    /// Unconditional jump to `pc + 1 + off`.
    Ja {
        /// Relative target.
        off: i32,
        /// `gotol` (`JMP32 | JA`, target in the 32-bit immediate) rather than `goto`
        /// (`JMP | JA`, target in the 16-bit offset). Both jump the same way; the flag keeps
        /// the encoding so that decoding then encoding gives the same bytes.
        long: bool,
    },
    /// Conditional jump to `pc + 1 + off`.
    Jcond {
        /// Comparison width.
        width: Width,
        /// Comparison.
        cond: JmpCond,
        /// Left operand.
        dst: Reg,
        /// Right operand.
        src: Operand,
        /// Relative target.
        off: i16,
    },
    /// Function call.
    Call(CallTarget),
    /// Return r0.
    Exit,
}

impl Op {
    /// Number of slots the instruction occupies (2 for LD_IMM64).
    #[must_use]
    pub const fn slots(&self) -> usize {
        match self {
            Op::LdImm64 { .. } => 2,
            _ => 1,
        }
    }
}

/// What is wrong with an encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodingErrorKind {
    /// The opcode byte names no instruction (`unknown opcode %02x`).
    UnknownOpcode(u8),
    /// A register field is above r10 (`R%d is invalid`).
    InvalidRegister(u8),
    /// A field the instruction does not use is not zero; the string names the instruction
    /// family as the kernel's message does (`BPF_ALU uses reserved fields`).
    ReservedFields(&'static str),
    /// An ALU opcode above END (`invalid BPF_ALU opcode %x`).
    InvalidAluOpcode(u8),
    /// A jump opcode above JSLE (`invalid BPF_JMP/JMP32 opcode %x`).
    InvalidJmpOpcode(u8),
    /// LD_IMM64 is the last slot or its second slot is not all zero but the immediate
    /// (`invalid bpf_ld_imm64 insn`).
    MalformedLdImm64,
    /// An LD_IMM64 src field that names no pseudo form.
    UnknownPseudo(u8),
    /// `BPF_LD` with a size other than DW in IMM mode (`invalid BPF_LD_IMM insn`).
    InvalidLdImm,
}

/// An encoding error at an instruction index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodingError {
    /// Index of the offending slot.
    pub idx: usize,
    /// What is wrong.
    pub kind: EncodingErrorKind,
}

impl EncodingErrorKind {
    /// The kernel verifier's message for this error (without the trailing newline).
    #[must_use]
    pub fn kernel_message(&self) -> String {
        match self {
            Self::UnknownOpcode(code) => format!("unknown opcode {code:02x}"),
            Self::InvalidRegister(r) => format!("R{r} is invalid"),
            Self::ReservedFields(what) => format!("{what} uses reserved fields"),
            Self::InvalidAluOpcode(op) => format!("invalid BPF_ALU opcode {op:x}"),
            Self::InvalidJmpOpcode(op) => format!("invalid BPF_JMP/JMP32 opcode {op:x}"),
            Self::MalformedLdImm64 => "invalid bpf_ld_imm64 insn".to_string(),
            Self::UnknownPseudo(src) => format!("unrecognized bpf_ld_imm64 insn src {src}"),
            Self::InvalidLdImm => "invalid BPF_LD_IMM insn".to_string(),
        }
    }
}

impl fmt::Display for EncodingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "instruction {}: {}",
            self.idx,
            self.kind.kernel_message()
        )
    }
}

impl std::error::Error for EncodingError {}

fn reg(idx: usize, n: u8) -> Result<Reg, EncodingError> {
    Reg::new(n).ok_or(EncodingError {
        idx,
        kind: EncodingErrorKind::InvalidRegister(n),
    })
}

/// Decodes and checks the instruction starting at slot `idx`.
///
/// # Errors
/// An [`EncodingError`] at `idx` (or `idx + 1` for a bad LD_IMM64 second slot) when the encoding
/// breaks one of the kernel's rules.
pub fn decode(insns: &[Insn], idx: usize) -> Result<Op, EncodingError> {
    let insn = *insns.get(idx).ok_or(EncodingError {
        idx,
        kind: EncodingErrorKind::MalformedLdImm64,
    })?;
    let err = |kind| Err(EncodingError { idx, kind });
    let reserved = |what| err(EncodingErrorKind::ReservedFields(what));
    let code = insn.code;
    match c::class(code) {
        c::ALU | c::ALU64 => {
            let width = if c::class(code) == c::ALU64 {
                Width::W64
            } else {
                Width::W32
            };
            let opc = c::op(code);
            let is_x = c::source(code) == c::X;
            match opc {
                c::NEG => {
                    if is_x || insn.src != 0 || insn.off != 0 || insn.imm != 0 {
                        return reserved("BPF_NEG");
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
                        return reserved("BPF_END");
                    }
                    let kind = match (width, is_x) {
                        (Width::W64, _) => EndKind::Swap,
                        (Width::W32, false) => EndKind::ToLe,
                        (Width::W32, true) => EndKind::ToBe,
                    };
                    // imm is 16, 32 or 64 here.
                    let bits = insn.imm as u8;
                    Ok(Op::End {
                        kind,
                        bits,
                        dst: reg(idx, insn.dst)?,
                    })
                }
                c::MOV => {
                    let op = if is_x {
                        let sx_ok = match width {
                            Width::W32 => matches!(insn.off, 0 | 8 | 16),
                            Width::W64 => matches!(insn.off, 0 | 8 | 16 | 32),
                        };
                        if !sx_ok || insn.imm != 0 {
                            return reserved("BPF_MOV");
                        }
                        if insn.off == 0 {
                            AluOp::Mov
                        } else {
                            // off is 8, 16 or 32 here.
                            AluOp::Movsx(insn.off as u8)
                        }
                    } else {
                        if insn.src != 0 || insn.off != 0 {
                            return reserved("BPF_MOV");
                        }
                        AluOp::Mov
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
                _ if opc > c::END => err(EncodingErrorKind::InvalidAluOpcode(opc)),
                _ => {
                    let signed = insn.off == 1;
                    if (insn.off != 0 && insn.off != 1)
                        || (signed && opc != c::DIV && opc != c::MOD)
                        || (is_x && insn.imm != 0)
                        || (!is_x && insn.src != 0)
                    {
                        return reserved("BPF_ALU");
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
        c::JMP | c::JMP32 => {
            let width = if c::class(code) == c::JMP {
                Width::W64
            } else {
                Width::W32
            };
            let opc = c::op(code);
            let is_x = c::source(code) == c::X;
            match opc {
                c::JA => {
                    if is_x
                        || insn.src != 0
                        || insn.dst != 0
                        || (width == Width::W64 && insn.imm != 0)
                        || (width == Width::W32 && insn.off != 0)
                    {
                        return reserved("BPF_JA");
                    }
                    let long = width == Width::W32;
                    let off = if long { insn.imm } else { i32::from(insn.off) };
                    Ok(Op::Ja { off, long })
                }
                c::CALL => {
                    if is_x
                        || (insn.src != c::PSEUDO_KFUNC_CALL && insn.off != 0)
                        || insn.src > c::PSEUDO_KFUNC_CALL
                        || insn.dst != 0
                        || width == Width::W32
                    {
                        return reserved("BPF_CALL");
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
                c::EXIT => {
                    if is_x
                        || insn.imm != 0
                        || insn.src != 0
                        || insn.dst != 0
                        || insn.off != 0
                        || width == Width::W32
                    {
                        return reserved("BPF_EXIT");
                    }
                    Ok(Op::Exit)
                }
                _ if opc > c::JSLE => err(EncodingErrorKind::InvalidJmpOpcode(opc)),
                _ => {
                    if (is_x && insn.imm != 0) || (!is_x && insn.src != 0) {
                        return reserved("BPF_JMP/JMP32");
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
                        dst: reg(idx, insn.dst)?,
                        src,
                        off: insn.off,
                    })
                }
            }
        }
        c::LD => match c::mode(code) {
            c::IMM => {
                if c::size(code) != c::DW {
                    return err(EncodingErrorKind::InvalidLdImm);
                }
                let second = insns.get(idx + 1);
                match second {
                    Some(n) if n.code == 0 && n.dst == 0 && n.src == 0 && n.off == 0 => {}
                    _ => return err(EncodingErrorKind::MalformedLdImm64),
                }
                if insn.off != 0 {
                    return reserved("BPF_LD_IMM64");
                }
                if insn.src > c::PSEUDO_MAP_IDX_VALUE {
                    return err(EncodingErrorKind::UnknownPseudo(insn.src));
                }
                let next_imm = second.map_or(0, |n| n.imm);
                Ok(Op::LdImm64 {
                    dst: reg(idx, insn.dst)?,
                    pseudo: insn.src,
                    imm: insn.imm,
                    next_imm,
                })
            }
            mode @ (c::ABS | c::IND) => {
                let size = Size::from_field(code);
                if insn.dst != 0
                    || insn.off != 0
                    || size == Size::DW
                    || (mode == c::ABS && insn.src != 0)
                {
                    return reserved("BPF_LD_[ABS|IND]");
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
            _ => err(EncodingErrorKind::UnknownOpcode(code)),
        },
        c::LDX => {
            let mode = c::mode(code);
            if mode != c::MEM && mode != c::MEMSX {
                return err(EncodingErrorKind::UnknownOpcode(code));
            }
            let size = Size::from_field(code);
            if mode == c::MEMSX && size == Size::DW {
                return err(EncodingErrorKind::UnknownOpcode(code));
            }
            if insn.imm != 0 {
                return reserved("BPF_LDX");
            }
            Ok(Op::Load {
                size,
                sign_extend: mode == c::MEMSX,
                dst: reg(idx, insn.dst)?,
                src: reg(idx, insn.src)?,
                off: insn.off,
            })
        }
        c::ST => {
            if c::mode(code) != c::MEM {
                return err(EncodingErrorKind::UnknownOpcode(code));
            }
            if insn.src != 0 {
                return reserved("BPF_ST");
            }
            Ok(Op::StoreImm {
                size: Size::from_field(code),
                dst: reg(idx, insn.dst)?,
                off: insn.off,
                imm: insn.imm,
            })
        }
        _ => {
            // STX
            let size = Size::from_field(code);
            match c::mode(code) {
                c::MEM => {
                    if insn.imm != 0 {
                        return reserved("BPF_STX");
                    }
                    Ok(Op::StoreReg {
                        size,
                        dst: reg(idx, insn.dst)?,
                        src: reg(idx, insn.src)?,
                        off: insn.off,
                    })
                }
                c::ATOMIC if size == Size::W || size == Size::DW => {
                    let fetch = insn.imm & c::FETCH != 0;
                    let op = match insn.imm {
                        c::XCHG => AtomicOp::Xchg,
                        c::CMPXCHG => AtomicOp::Cmpxchg,
                        i if i & !c::FETCH == i32::from(c::ADD) => AtomicOp::Add { fetch },
                        i if i & !c::FETCH == i32::from(c::OR) => AtomicOp::Or { fetch },
                        i if i & !c::FETCH == i32::from(c::AND) => AtomicOp::And { fetch },
                        i if i & !c::FETCH == i32::from(c::XOR) => AtomicOp::Xor { fetch },
                        _ => return err(EncodingErrorKind::UnknownOpcode(code)),
                    };
                    Ok(Op::Atomic {
                        size,
                        op,
                        dst: reg(idx, insn.dst)?,
                        src: reg(idx, insn.src)?,
                        off: insn.off,
                    })
                }
                _ => err(EncodingErrorKind::UnknownOpcode(code)),
            }
        }
    }
}

/// Decodes every instruction of a program, in order, pairing each with its first slot index.
///
/// # Errors
/// The first [`EncodingError`], by slot index.
pub fn decode_all(insns: &[Insn]) -> Result<Vec<(usize, Op)>, EncodingError> {
    let mut out = Vec::with_capacity(insns.len());
    let mut idx = 0;
    while idx < insns.len() {
        let op = decode(insns, idx)?;
        out.push((idx, op));
        idx += op.slots();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Result<Op, EncodingError> {
        decode(&[Insn::new(code, dst, src, off, imm)], 0)
    }

    #[test]
    fn alu_reserved_fields_follow_the_kernel() {
        // add64 r1, 1 is fine; the same with src=2 uses a reserved field.
        assert!(one(0x07, 1, 0, 0, 1).is_ok());
        assert_eq!(
            one(0x07, 1, 2, 0, 1).expect_err("must be rejected").kind,
            EncodingErrorKind::ReservedFields("BPF_ALU")
        );
        // sdiv (offset 1) is allowed only on div/mod.
        assert!(matches!(
            one(0x3f, 1, 2, 1, 0),
            Ok(Op::Alu {
                op: AluOp::Sdiv,
                ..
            })
        ));
        assert!(one(0x0f, 1, 2, 1, 0).is_err());
        // movsx32 exists only in ALU64.
        assert!(matches!(
            one(0xbf, 1, 2, 32, 0),
            Ok(Op::Alu {
                op: AluOp::Movsx(32),
                ..
            })
        ));
        assert!(one(0xbc, 1, 2, 32, 0).is_err());
    }

    #[test]
    fn ld_imm64_needs_a_clean_second_slot() {
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
        assert_eq!(
            decode(&good[..1], 0).expect_err("must be rejected").kind,
            EncodingErrorKind::MalformedLdImm64
        );
        let bad = [Insn::new(0x18, 1, 0, 0, 5), Insn::new(0x07, 0, 0, 0, 7)];
        assert_eq!(
            decode(&bad, 0).expect_err("must be rejected").kind,
            EncodingErrorKind::MalformedLdImm64
        );
    }

    #[test]
    fn registers_above_r10_are_invalid() {
        assert_eq!(
            one(0xb7, 11, 0, 0, 0).expect_err("must be rejected").kind,
            EncodingErrorKind::InvalidRegister(11)
        );
    }

    #[test]
    fn unknown_opcodes_are_rejected() {
        assert!(matches!(
            one(0xe4, 0, 0, 0, 0).expect_err("must be rejected").kind,
            EncodingErrorKind::InvalidAluOpcode(0xe0)
        ));
        assert!(matches!(
            one(0xe5, 0, 0, 0, 0).expect_err("must be rejected").kind,
            EncodingErrorKind::InvalidJmpOpcode(0xe0)
        ));
        assert!(matches!(
            one(0x9b, 0, 0, 0, 0).expect_err("must be rejected").kind,
            EncodingErrorKind::UnknownOpcode(0x9b)
        ));
    }
}
