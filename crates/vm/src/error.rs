//! The interpreter's one error type: what went wrong ([`ErrorKind`]) and at which instruction
//! slot ([`VmError::pc`]).
//!
//! Translation errors (bad encodings, jumps out of range, writes to r10, unknown helpers) are
//! found once, before any run, and reported for the fast and the checked interpreter alike.
//! Run-time errors (out-of-bounds accesses, reads of uninitialised registers, the instruction
//! budget) come only from the checked interpreter; the fast interpreter relies on the verifier
//! instead. Where the kernel verifier has a message for the same fault, [`ErrorKind`]'s
//! `Display` uses its words (`R0 !read_ok`, `frame pointer is read only`, ...).

use bpfkit_isa::EncodingErrorKind;
use std::fmt;

/// An error at an instruction slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmError {
    /// Index of the instruction slot (LD_IMM64 counts two) where the error arose; for
    /// [`ErrorKind::FellOffEnd`] it is the program length.
    pub pc: usize,
    /// What went wrong.
    pub kind: ErrorKind,
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The program has no instructions.
    EmptyProgram,
    /// The program is longer than the interpreter can index (`u32::MAX` slots).
    TooLong,
    /// The instruction's encoding breaks one of the kernel's rules.
    Encoding(EncodingErrorKind),
    /// A jump leaves the program (`jump out of range from insn X to Y`).
    JumpOutOfRange {
        /// The slot the jump would land on.
        target: i64,
    },
    /// A jump lands on the second slot of an LD_IMM64.
    JumpIntoLdImm64 {
        /// The slot the jump would land on.
        target: usize,
    },
    /// A local call's target is outside the program or inside an LD_IMM64.
    BadCallTarget {
        /// The slot the call would land on.
        target: i64,
    },
    /// A helper id that the helper table does not define (`invalid func unknown#N`).
    UnknownHelper(i32),
    /// An instruction the interpreter does not run (kfunc calls, unresolved LD_IMM64 pseudo
    /// forms); the text names it.
    Unsupported(String),
    /// An instruction writes r10 (`frame pointer is read only`).
    FramePointerWrite,
    /// A checked run read a register that holds no value on this path (`R%d !read_ok`).
    UninitRegister(u8),
    /// A checked run accessed memory outside every region the run may touch.
    OutOfBounds {
        /// First byte accessed.
        addr: u64,
        /// Access size in bytes.
        size: u32,
        /// Whether it was a write.
        write: bool,
    },
    /// An atomic operation on an address that is not a multiple of its size.
    MisalignedAtomic {
        /// The address.
        addr: u64,
        /// Access size in bytes.
        size: u32,
    },
    /// A local call would exceed [`MAX_CALL_FRAMES`](crate::MAX_CALL_FRAMES) frames.
    CallDepth,
    /// A checked run executed more instructions than its budget allows.
    BudgetExceeded {
        /// The budget that ran out.
        budget: u64,
    },
    /// Execution ran past the last instruction without an exit.
    FellOffEnd,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyProgram => write!(f, "empty program: no instructions"),
            Self::TooLong => write!(f, "program too long"),
            Self::Encoding(kind) => write!(f, "{}", kind.kernel_message()),
            Self::JumpOutOfRange { target } => write!(f, "jump out of range to insn {target}"),
            Self::JumpIntoLdImm64 { target } => {
                write!(f, "jump into the middle of ldimm64 insn {target}")
            }
            Self::BadCallTarget { target } => {
                write!(f, "call to invalid destination insn {target}")
            }
            Self::UnknownHelper(id) => write!(f, "invalid func unknown#{id}"),
            Self::Unsupported(what) => write!(f, "unsupported instruction: {what}"),
            Self::FramePointerWrite => write!(f, "frame pointer is read only"),
            Self::UninitRegister(r) => write!(f, "R{r} !read_ok"),
            Self::OutOfBounds { addr, size, write } => write!(
                f,
                "invalid {} of {size} bytes at address {addr:#x}: outside every region of this run",
                if *write { "write" } else { "read" }
            ),
            Self::MisalignedAtomic { addr, size } => {
                write!(
                    f,
                    "misaligned atomic access of {size} bytes at address {addr:#x}"
                )
            }
            Self::CallDepth => write!(
                f,
                "the call stack of {} frames is too deep",
                crate::MAX_CALL_FRAMES + 1
            ),
            Self::BudgetExceeded { budget } => {
                write!(f, "instruction budget of {budget} exceeded")
            }
            Self::FellOffEnd => write!(f, "execution fell off the end of the program"),
        }
    }
}

impl fmt::Display for VmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "instruction {}: {}", self.pc, self.kind)
    }
}

impl std::error::Error for VmError {}
