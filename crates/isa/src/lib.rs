//! bpfkit-isa: the eBPF instruction set (RFC 9669) as data.
//!
//! - [`insn`]: the raw 8-byte slot, bytes in and out, register and index newtypes;
//! - [`opcode`]: the opcode field constants, named as in `include/uapi/linux/bpf.h`;
//! - [`op`]: decoding a slot into a typed [`Op`] with the kernel's encoding checks;
//! - [`asm`]: text assemblers for the conformance-suite syntax and the kernel/LLVM syntax;
//! - [`disasm`]: the one printer, producing the kernel verifier log's text for an instruction.
//!
//! Nothing here knows about maps, helpers or program types beyond their numbers.
#![forbid(unsafe_code)]

pub mod asm;
mod decode;
pub mod disasm;
mod encode;
pub mod insn;
pub mod op;
pub mod opcode;

pub use asm::AsmError;
pub use insn::{insns_from_bytes, insns_to_bytes, BytesError, Insn, InsnIdx, Reg};
pub use op::{
    decode, decode_all, precheck, AluOp, AtomicOp, CallTarget, EncodingError, EncodingErrorKind,
    EndKind, JmpCond, Op, Operand, Size, Width,
};
