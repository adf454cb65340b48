//! bpfkit-vm: executing eBPF programs, knowing nothing of maps or specific helpers.
//!
//! Programs are translated once ([`translate`](Program::new)) into a pre-decoded form (jump
//! targets resolved, LD_IMM64 fused, operands unpacked, operations specialised by width and
//! operand kind) and run in one tight loop with two instances:
//!
//! - the **fast** interpreter ([`Vm`]): no bounds checks, no budget, and a code vector with
//!   superinstructions (three-address `mov; op`, the packet bounds check, rotates, constant
//!   pairs) and accumulator forms that keep dependent chains in a machine register. It runs only
//!   programs known safe: built by [`Vm::from_verified`] from the verifier's
//!   [`Verified`](bpfkit_verifier::Verified) type, or by the `unsafe` [`Vm::from_unverified`]
//!   whose caller vouches for the program;
//! - the **checked** interpreter ([`Program::run_checked`]): the same semantics, with every
//!   memory access checked against the regions the run may touch, an instruction budget, reads
//!   of registers that hold no value refused, and every fault a typed [`VmError`] naming the
//!   instruction. It takes any program; it is bpfkit's soundness oracle.
//!
//! Semantics are Linux's (kernel/bpf/core.c `___bpf_prog_run` after the verifier's
//! `do_misc_fixups`) and RFC 9669's: `x / 0 = 0`, `x % 0 = x` (32-bit: zero-extended), signed
//! `INT_MIN / -1 = INT_MIN` and `x % -1 = 0`, shift amounts masked to the width, 32-bit results
//! zero-extended, byte swaps, MOVSX, sign-extending loads, atomics (with fetch, XCHG, CMPXCHG)
//! as real atomics, JMP32, `gotol`.
//!
//! Calls: helpers through a [`Helpers`] table of `extern "C" fn(u64, u64, u64, u64, u64) -> u64`
//! resolved at translation; local calls get a fresh zeroed 512-byte frame, r6–r9 are preserved
//! across them, at most [`MAX_CALL_FRAMES`] frames; tail calls go through the run's
//! [`TailCallHook`], at most [`MAX_TAIL_CALL_CNT`] per run, falling through when the slot is
//! empty. LD_ABS / LD_IND read the run's packet in network byte order; an out-of-range read ends
//! the function with r0 = 0 as Linux's `bpf_gen_ld_abs` code does. (Linux's negative
//! `SKF_NET_OFF` / `SKF_LL_OFF` offsets are out of range here: bpfkit has no link-layer
//! ancillary area.) `may_goto` falls through 8,388,608 times per function invocation
//! (`BPF_MAX_LOOPS`, the kernel interpreter's count), then jumps.
//!
//! The checked interpreter is stricter than Linux at run time in one way that matches the
//! verifier instead: reading a register that holds no value on the path taken (`R0 !read_ok`)
//! is an error, including r1–r5 after a call and r6–r9 at a subprogram's entry.
//!
//! # Running a program
//! ```
//! use bpfkit_isa::Insn;
//! use bpfkit_vm::{Helpers, RunCtx, Vm};
//!
//! // r0 = r2 (the memory's length); r0 += *(u8 *)(r1 + 1); exit
//! let insns = [
//!     Insn::new(0xbf, 0, 2, 0, 0),
//!     Insn::new(0x71, 3, 1, 1, 0),
//!     Insn::new(0x0f, 0, 3, 0, 0),
//!     Insn::new(0x95, 0, 0, 0, 0),
//! ];
//! // SAFETY: the program reads one byte at offset 1 of its memory, which has 4 bytes.
//! let vm = unsafe { Vm::from_unverified(&insns, &Helpers::new()) }.unwrap();
//! let mut mem = [10u8, 20, 30, 40];
//! assert_eq!(vm.run(&mut mem), 4 + 20); // fast
//! let ctx = RunCtx::new().with_mem(&mut mem).with_budget(100);
//! assert_eq!(vm.run_checked(&ctx), Ok(24)); // checked
//! ```
//! `Vm::run(&self, mem)` is the simplest fast entry point (r1 = `mem`, r2 = its length); a
//! [`RunCtx`] gives full control (argument registers, extra regions, a separate packet, a
//! tail-call hook, the checked budget). A `Vm` is immutable while it runs, so one program can
//! run on many threads at once.
#![deny(unsafe_op_in_unsafe_fn)]

mod alu;
mod code;
mod context;
mod error;
mod fuse;
mod helpers;
mod interp;
mod memory;
mod program;
mod stack;
mod translate;

pub use context::{RunCtx, TailCallHook, TailCallTarget, DEFAULT_BUDGET};
pub use error::{ErrorKind, VmError};
pub use helpers::{Helper, HelperFn, Helpers, RegionSizeFn};
pub use program::{Program, Vm};

/// Bytes of one stack frame (`MAX_BPF_STACK`).
#[doc(alias = "MAX_BPF_STACK")]
pub const STACK_SIZE: usize = 512;

/// Most frames a run may have: the entry function and 7 nested local calls.
pub const MAX_CALL_FRAMES: usize = 8;

/// Most tail calls one run may make.
pub const MAX_TAIL_CALL_CNT: u32 = 33;
