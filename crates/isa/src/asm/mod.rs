//! Text assemblers, one per syntax, and what they share: the error type, number parsing with
//! the ranges of the instruction fields, and label resolution.
//!
//! - [`conformance`]: the syntax of the eBPF ISA conformance suite (`mov %r0, 1`, `ldxb %r0,
//!   [%r1+2]`, `jeq %r1, 5, +2`), and its printer;
//! - [`kernel`]: the syntax that `llvm-objdump -d` and the kernel verifier log print
//!   (`r0 = *(u8 *)(r1 + 12)`, `if r1 != 4 goto +8`).
//!
//! Both build typed [`crate::Op`]s and encode them, so whatever they return is an encoding
//! that [`crate::decode`] accepts (the one exception is the conformance syntax's `call %rN`,
//! uBPF's callx, which the kernel and the decoder reject).

pub mod conformance;
pub mod kernel;
mod labels;
mod num;

use std::fmt;

/// Why a text could not be assembled: the 1-based line and what is wrong there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsmError {
    /// 1-based line number in the input (0 when the error concerns the whole text).
    pub line: usize,
    /// What is wrong, naming the offending text.
    pub message: String,
}

impl AsmError {
    pub(crate) fn new(line: usize, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for AsmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for AsmError {}
