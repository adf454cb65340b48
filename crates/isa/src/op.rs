//! The typed view of an instruction: [`Op`] names what one instruction (two slots for
//! LD_IMM64) does, and [`decode`] (in `decode.rs`, re-exported here) turns slots into it with
//! the kernel's encoding checks.
//!
//! Every consumer — the printer, the interpreter's translator, the verifier — matches on [`Op`]
//! instead of re-reading opcode bits, so the decoding rules live in one place.

pub use crate::decode::{decode, decode_all, precheck};

use crate::insn::Reg;
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

    /// The size named by an opcode's size field.
    #[must_use]
    pub const fn from_code(code: u8) -> Size {
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
    /// `dst = load_acquire((size *)(src + off))`: a load ordered before every later access
    /// (`STX | ATOMIC`, immediate `BPF_LOAD_ACQ`; any size; zero-extended).
    LoadAcquire {
        /// Access size.
        size: Size,
        /// Destination register.
        dst: Reg,
        /// Base address register.
        src: Reg,
        /// Offset.
        off: i16,
    },
    /// `store_release((size *)(dst + off), src)`: a store ordered after every earlier access
    /// (`STX | ATOMIC`, immediate `BPF_STORE_REL`; any size).
    StoreRelease {
        /// Access size.
        size: Size,
        /// Base address register.
        dst: Reg,
        /// Value register.
        src: Reg,
        /// Offset.
        off: i16,
    },
    /// `may_goto pc+off` (`JMP | JCOND`, src `BPF_MAY_GOTO`): falls through while the loop
    /// budget the runtime keeps lasts, then jumps.
    MayGoto {
        /// Relative target.
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
    /// The index is past the end of the program (no kernel message: the kernel never decodes
    /// past the end; its verifier reports the jump or fall-through that leads there).
    OutOfRange,
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
    /// An LD_IMM64 src field that names no pseudo form, or a map form (src 1 or 5) whose second
    /// immediate is not zero (`unrecognized bpf_ld_imm64 insn`). Holds the src field.
    UnknownPseudo(u8),
    /// `BPF_LD` with a size other than DW in IMM mode (`invalid BPF_LD_IMM insn`).
    InvalidLdImm,
    /// An `STX | ATOMIC` immediate that names no atomic operation
    /// (`BPF_ATOMIC uses invalid atomic opcode %02x`).
    InvalidAtomicOp(i32),
    /// A read-modify-write atomic of 1 or 2 bytes (`invalid atomic operand size`); only
    /// load-acquire and store-release take every size.
    InvalidAtomicSize,
    /// A `may_goto` (`JMP | JCOND`) with a non-zero dst, src or immediate
    /// (`invalid may_goto imm %d`, the kernel printing the immediate whatever the field).
    InvalidMayGoto(i32),
    /// `BPF_ADDR_SPACE_CAST` (`ALU64 | MOV | X` with offset 1): arena pointer casts, which need a
    /// BPF arena map bpfkit does not have. The kernel's message depends on the immediate.
    AddrSpaceCast(i32),
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
            Self::OutOfRange => "instruction index out of range".to_string(),
            Self::InvalidRegister(r) => format!("R{r} is invalid"),
            Self::ReservedFields(what) => format!("{what} uses reserved fields"),
            Self::InvalidAluOpcode(op) => format!("invalid BPF_ALU opcode {op:x}"),
            Self::InvalidJmpOpcode(op) => format!("invalid BPF_JMP/JMP32 opcode {op:x}"),
            Self::MalformedLdImm64 => "invalid bpf_ld_imm64 insn".to_string(),
            Self::UnknownPseudo(_) => "unrecognized bpf_ld_imm64 insn".to_string(),
            Self::InvalidLdImm => "invalid BPF_LD_IMM insn".to_string(),
            // The kernel prints the immediate with %02x, as an unsigned int.
            Self::InvalidAtomicOp(imm) => {
                format!("BPF_ATOMIC uses invalid atomic opcode {:02x}", *imm as u32)
            }
            Self::InvalidAtomicSize => "invalid atomic operand size".to_string(),
            Self::InvalidMayGoto(imm) => format!("invalid may_goto imm {imm}"),
            Self::AddrSpaceCast(imm) if *imm != 1 && *imm != 1 << 16 => {
                "addr_space_cast insn can only convert between address space 1 and 0".to_string()
            }
            Self::AddrSpaceCast(_) => "addr_space_cast insn can only be used in a program that \
                                       has an associated arena"
                .to_string(),
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
