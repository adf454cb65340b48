//! The two program types: [`Program`] (translated, runs checked) and [`Vm`] (translated and
//! known safe, so it also runs fast).
//!
//! A `Program` can be built from any instructions; only the checked interpreter runs it, and
//! a bad program ends in a [`VmError`], never in undefined behaviour. A `Vm` is a `Program` with
//! proof that every memory access it makes is valid: built from the verifier's [`Verified`]
//! type, or through an `unsafe fn` whose caller takes that proof upon itself.

use crate::code::{Meta, I};
use crate::context::RunCtx;
use crate::error::VmError;
use crate::helpers::{Helper, Helpers};
use crate::translate::translate;
use bpfkit_isa::Insn;
use bpfkit_verifier::Verified;

/// A translated program; runs in the checked interpreter.
#[derive(Clone, Debug)]
pub struct Program {
    pub(crate) code: Vec<I>,
    /// `code` with superinstructions, for the fast interpreter (same indices).
    pub(crate) fast: Vec<I>,
    pub(crate) meta: Vec<Meta>,
    pub(crate) helpers: Vec<Helper>,
    /// Bytes below r10 the fast interpreter zeroes in each frame (see `stack`).
    pub(crate) fast_zero: usize,
}

impl Program {
    /// Translates `insns`, resolving helper calls against `helpers`.
    ///
    /// # Errors
    /// A [`VmError`] at the first instruction that no run may execute: a bad encoding, a jump or
    /// call out of the program or into an LD_IMM64, a write to r10, an unknown helper id, a kfunc
    /// call, an unresolved LD_IMM64 pseudo form; or an empty program.
    pub fn new(insns: &[Insn], helpers: &Helpers) -> Result<Self, VmError> {
        let t = translate(insns, helpers)?;
        Ok(Self {
            fast: crate::fuse::fuse(&t.code),
            fast_zero: crate::stack::fast_zero_bytes(&t.code, &t.meta),
            code: t.code,
            meta: t.meta,
            helpers: t.helpers,
        })
    }

    /// Runs the program in the checked interpreter and returns r0.
    ///
    /// # Errors
    /// A [`VmError`] naming the instruction and the fault: an access outside the run's regions,
    /// a read of a register holding no value, the instruction budget, call depth, or running
    /// past the last instruction.
    pub fn run_checked(&self, ctx: &RunCtx<'_>) -> Result<u64, VmError> {
        // SAFETY: the checked instance checks every access against the run's regions, which
        // RunCtx guarantees valid.
        unsafe { crate::interp::execute::<true>(self, ctx) }
    }

    /// Number of pre-decoded instructions (LD_IMM64 counts one), without the end trap.
    #[must_use]
    pub fn len(&self) -> usize {
        self.code.len() - 1
    }

    /// Whether the program has no instructions (never true: translation rejects that).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A program whose memory accesses are known valid: runs in the fast interpreter (and in the
/// checked one).
///
/// ```
/// use bpfkit_isa::Insn;
/// use bpfkit_vm::{Helpers, Vm};
/// // r0 = *(u32 *)(r1 + 0); exit
/// let insns = [Insn::new(0x61, 0, 1, 0, 0), Insn::new(0x95, 0, 0, 0, 0)];
/// // SAFETY: the program reads 4 bytes at r1 + 0 and `mem` has 4 bytes.
/// let vm = unsafe { Vm::from_unverified(&insns, &Helpers::new()) }.unwrap();
/// let mut mem = 0x1234_5678u32.to_ne_bytes();
/// assert_eq!(vm.run(&mut mem), 0x1234_5678);
/// ```
#[derive(Clone, Debug)]
pub struct Vm {
    program: Program,
}

impl Vm {
    /// Translates a program the verifier accepted.
    ///
    /// # Errors
    /// As [`Program::new`] (an unknown helper id, or a pseudo form left unresolved).
    pub fn from_verified(verified: &Verified, helpers: &Helpers) -> Result<Self, VmError> {
        Ok(Self {
            // Dead code was never checked: it becomes `ja -1` as in the kernel.
            program: Program::new(&verified.insns_without_dead_code(), helpers)?,
        })
    }

    /// Translates instructions no verifier has checked, for the fast interpreter.
    ///
    /// # Safety
    /// For every input the program will be run with (through [`Vm::run`] / [`Vm::run_ctx`]),
    /// every load, store and atomic it executes must address memory valid for that access: the
    /// current stack frame or its callers' (`r10 - 512 .. r10` of each frame), the run's
    /// regions, or what a helper returned; and local calls must not nest deeper than
    /// [`MAX_CALL_FRAMES`](crate::MAX_CALL_FRAMES) frames. (Stack bytes the program never wrote
    /// read as zero: every byte it can reach is zeroed when its frame is entered.) This is what
    /// the kernel verifier proves; a clean checked run of the same program on the same input
    /// also establishes it for that input.
    pub unsafe fn from_unverified(insns: &[Insn], helpers: &Helpers) -> Result<Self, VmError> {
        Ok(Self {
            program: Program::new(insns, helpers)?,
        })
    }

    /// Promotes a translated program to the fast interpreter.
    ///
    /// # Safety
    /// As [`Vm::from_unverified`].
    #[must_use]
    pub unsafe fn from_program(program: Program) -> Self {
        Self { program }
    }

    /// The translated program.
    #[must_use]
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Runs with r1 = `mem`'s address and r2 = its length (the packet of LD_ABS / LD_IND too),
    /// and returns r0.
    pub fn run(&self, mem: &mut [u8]) -> u64 {
        self.run_ctx(&RunCtx::new().with_mem(mem))
    }

    /// Runs with the inputs of `ctx` and returns r0.
    ///
    /// The fast interpreter assumes what the verifier proved; the only faults it still notices
    /// (which a verified program cannot cause) end the run with r0 = 0.
    pub fn run_ctx(&self, ctx: &RunCtx<'_>) -> u64 {
        // SAFETY: `self` exists only through `from_verified` or the unsafe constructors, whose
        // contract is that every access is valid.
        unsafe { crate::interp::execute::<false>(&self.program, ctx) }.unwrap_or(0)
    }

    /// Runs in the checked interpreter: see [`Program::run_checked`].
    ///
    /// # Errors
    /// As [`Program::run_checked`].
    pub fn run_checked(&self, ctx: &RunCtx<'_>) -> Result<u64, VmError> {
        self.program.run_checked(ctx)
    }
}
