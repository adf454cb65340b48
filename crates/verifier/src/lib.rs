//! bpfkit-verifier: the static verifier, giving Linux's verdicts and log for a program.
//!
//! It knows helpers, maps and contexts only through the [`env`] vocabulary that the runtime
//! supplies; it returns a [`Verified`] program that the fast interpreter and the JIT accept.
#![forbid(unsafe_code)]

pub mod scalar;

use bpfkit_isa::Insn;

/// A program the verifier accepted: the only input the fast interpreter and the JIT take.
///
/// It can be built only by the verifier, so holding one is proof that the checks ran.
#[derive(Clone, Debug)]
pub struct Verified {
    insns: Vec<Insn>,
}

impl Verified {
    /// The verified instruction slots.
    #[must_use]
    pub fn insns(&self) -> &[Insn] {
        &self.insns
    }
}
