//! The interpreter loop, one function for both modes (`CHECKED` is a const generic, so the fast
//! instance contains none of the checks).
//!
//! Kernel counterpart: `___bpf_prog_run` in kernel/bpf/core.c, plus the results of the verifier
//! rewrites (`do_misc_fixups`) that define division by zero and friends (see [`crate::alu`]) and
//! `may_goto`'s loop counter.
//!
//! State: registers in a local `[u64; 16]` (register numbers are masked with 15, so indexing
//! needs no bounds check), `pc` an index into the pre-decoded code, a native-stack array holding
//! [`MAX_CALL_FRAMES`] eBPF frames of [`STACK_SIZE`] bytes (frame 0 at the top; each frame is
//! zeroed when entered), and a small array of return records for local calls. `acc` keeps the
//! last value written to any register in a machine register for the fast code's accumulator
//! forms (see [`crate::fuse`]).
//!
//! The checked instance additionally counts instructions against the budget, tracks which
//! registers hold a value (the verifier's `!read_ok` rule, on the path actually taken), and
//! checks every load and store against the run's regions: the active stack (the current frame
//! and its callers'), the context's regions and what helpers returned.

use crate::alu::{div32, div64, mod32, mod64, sdiv32, sdiv64, smod32, smod64};
use crate::code::{atomic_op, bit, Opc, CALLEE_SAVED, CALLER_SAVED, FP, I};
use crate::context::{Region, RunCtx, TailCallTarget};
use crate::error::{ErrorKind, VmError};
use crate::helpers::HelperRet;
use crate::memory::{
    atomic32, atomic64, load, load_acquire16, load_acquire32, load_acquire64, load_acquire8,
    load_packet, store, store_release16, store_release32, store_release64, store_release8, zero,
};
use crate::{Program, MAX_CALL_FRAMES, MAX_TAIL_CALL_CNT, STACK_SIZE};
use bpfkit_isa::AtomicOp;
use std::mem::MaybeUninit;

const STACK_WORDS: usize = MAX_CALL_FRAMES * STACK_SIZE / 8;

/// `may_goto` falls through this many times per function invocation, then jumps (Linux's
/// `BPF_MAX_LOOPS`, the interpreter's count; x86-64's JIT uses a timed variant instead).
#[doc(alias = "BPF_MAX_LOOPS")]
pub(crate) const MAY_GOTO_LOOPS: u32 = 8 * 1024 * 1024;

/// The return record of a local call.
#[derive(Clone, Copy)]
struct Frame<'p> {
    prog: &'p Program,
    ret: u32,
    loops: u32,
    saved: [u64; 4],
    init: u16,
}

/// The checked interpreter's extra state.
struct Checker {
    regions: Vec<Region>,
    budget: u64,
    left: u64,
    /// Registers holding a value.
    init: u16,
}

impl Checker {
    /// Checks `[addr, addr + size)` against the active stack (from the current frame's bottom up
    /// to the top of frame 0) and the run's regions.
    #[inline(never)]
    fn access(
        &self,
        addr: u64,
        size: u64,
        write: bool,
        r10: u64,
        top: u64,
    ) -> Result<(), ErrorKind> {
        let bottom = r10 - STACK_SIZE as u64;
        let stack = Region {
            start: bottom,
            len: top - bottom,
            writable: true,
        };
        if stack.contains(addr, size, write)
            || self.regions.iter().any(|r| r.contains(addr, size, write))
        {
            Ok(())
        } else {
            Err(ErrorKind::OutOfBounds {
                addr,
                size: size as u32,
                write,
            })
        }
    }
}

/// The code a mode runs: the fast interpreter runs the fused code, the checked one the plain.
#[inline(always)]
fn code_of(prog: &Program, checked: bool) -> &[I] {
    if checked {
        &prog.code
    } else {
        &prog.fast
    }
}

fn error_at(prog: &Program, code_idx: usize, kind: ErrorKind) -> VmError {
    let pc = prog.meta.get(code_idx).map_or(0, |m| m.pc as usize);
    VmError { pc, kind }
}

/// Runs `entry` with the inputs of `ctx`.
///
/// # Safety
/// With `CHECKED = false`, every memory access the program makes must be valid and local calls
/// must stay within [`MAX_CALL_FRAMES`] (the `Vm` contract). With `CHECKED = true` there is no
/// requirement beyond the [`RunCtx`] invariants.
#[expect(
    clippy::too_many_lines,
    reason = "one match arm per pre-decoded instruction"
)]
#[inline(always)]
pub(crate) unsafe fn execute<const CHECKED: bool>(
    entry: &Program,
    ctx: &RunCtx<'_>,
) -> Result<u64, VmError> {
    let mut stack = [MaybeUninit::<u64>::uninit(); STACK_WORDS];
    let stack_base = stack.as_mut_ptr().expose_provenance() as u64;
    let top = stack_base + (STACK_WORDS * 8) as u64;
    // The bytes of each frame that are zeroed when it is entered: all of them when checked.
    let zero_bytes = |p: &Program| if CHECKED { STACK_SIZE } else { p.fast_zero };
    // SAFETY: frame 0 is the last STACK_SIZE bytes of `stack` (zero_bytes <= STACK_SIZE).
    unsafe { zero(top - zero_bytes(entry) as u64, zero_bytes(entry)) };

    let mut reg = [0u64; 16];
    reg[1..6].copy_from_slice(&ctx.args);
    reg[10] = top;

    let mut prog = entry;
    // `ip` points at the next instruction of the code being run, which starts at `base`.
    let mut base: *const I = code_of(prog, CHECKED).as_ptr();
    let mut ip: *const I = base;
    let mut depth: usize = 0;
    let mut frames: [Option<Frame<'_>>; MAX_CALL_FRAMES] = [None; MAX_CALL_FRAMES];
    let mut tail_calls: u32 = 0;
    let mut loops: u32 = MAY_GOTO_LOOPS;
    // The last value written to a register, kept in a machine register: an accumulator form
    // reads its destination from here instead of from the register file.
    let mut acc: u64 = 0;
    let mut chk = Checker {
        regions: if CHECKED {
            ctx.all_regions()
        } else {
            Vec::new()
        },
        budget: ctx.budget,
        left: ctx.budget,
        init: CALLER_SAVED | FP,
    };

    // Reads / writes the register a field names. Translation guarantees register fields are
    // 0..=10 (the decoder rejects others), so they index `reg` directly.
    let regs = reg.as_mut_ptr();
    macro_rules! rd {
        ($x:expr) => {
            // SAFETY: register fields are at most 10 < reg.len() (translation invariant).
            unsafe { *regs.add(usize::from($x)) }
        };
    }
    macro_rules! wr {
        ($x:expr, $v:expr) => {{
            let v: u64 = $v;
            // SAFETY: as for rd!.
            unsafe { *regs.add(usize::from($x)) = v };
            #[allow(
                unused_assignments,
                reason = "every write sets acc; only some successors read it"
            )]
            {
                acc = v;
            }
        }};
    }
    // The index of the instruction `ip` points at.
    macro_rules! idx {
        () => {
            (ip.addr() - base.addr()) / std::mem::size_of::<I>()
        };
    }
    macro_rules! goto {
        ($t:expr) => {
            ip = base.wrapping_add($t as usize)
        };
    }
    macro_rules! fail {
        ($kind:expr) => {
            return Err(error_at(prog, idx!() - 1, $kind))
        };
    }
    macro_rules! check {
        ($addr:expr, $size:expr, $write:expr) => {
            if CHECKED {
                if let Err(kind) = chk.access($addr, $size, $write, rd!(10u8), top) {
                    fail!(kind);
                }
            }
        };
    }
    macro_rules! check_aligned {
        ($addr:expr, $size:expr) => {
            if CHECKED && !$addr.is_multiple_of($size) {
                fail!(ErrorKind::MisalignedAtomic {
                    addr: $addr,
                    size: $size as u32
                });
            }
            check!($addr, $size, true);
        };
    }
    // `d = *(t *)(s + off)`, converted to u64 by `conv`.
    macro_rules! ldx {
        ($i:expr, $t:ty, $conv:expr) => {{
            let a = rd!($i.s).wrapping_add($i.k);
            check!(a, std::mem::size_of::<$t>() as u64, false);
            // SAFETY: checked mode: inside a region of this run (checked just above); fast mode:
            // the `Vm` contract (the verifier proved the access in bounds).
            let v: $t = unsafe { load::<$t>(a) };
            wr!($i.d, $conv(v));
        }};
    }
    // `*(t *)(d + off) = v`.
    macro_rules! st {
        ($t:ty, $a:expr, $v:expr) => {{
            let a = $a;
            check!(a, std::mem::size_of::<$t>() as u64, true);
            let v = $v as $t;
            // SAFETY: as for loads.
            unsafe { store::<$t>(a, v) };
        }};
    }
    macro_rules! jmp {
        ($i:expr, $cond:expr) => {
            if $cond {
                goto!($i.t);
            }
        };
    }
    // Returns from the current function with r0 as it is.
    macro_rules! exit {
        () => {{
            if depth == 0 {
                return Ok(rd!(0u8));
            }
            depth -= 1;
            if let Some(f) = frames[depth] {
                prog = f.prog;
                base = code_of(prog, CHECKED).as_ptr();
                goto!(f.ret);
                loops = f.loops;
                for (n, v) in (6u8..10).zip(f.saved) {
                    wr!(n, v);
                }
                wr!(10u8, rd!(10u8) + STACK_SIZE as u64);
                if CHECKED {
                    chk.init = (f.init & (CALLEE_SAVED | FP)) | (chk.init & bit(0));
                }
            }
        }};
    }

    loop {
        // SAFETY: `ip` always points at an instruction of the code being run: it starts at the
        // first of a non-empty program; it steps by one past instructions other than the final
        // `FellOff` trap (which ends the run), and a superinstruction skips only the
        // instructions it stands for, which come before the trap; jumps, calls and `may_goto`
        // set it to targets translation checked to be inside the program; returns restore the
        // instruction after a call, which the trap follows.
        let i: &I = unsafe { &*ip };
        ip = ip.wrapping_add(1);
        if CHECKED {
            let m = prog.meta[idx!() - 1];
            if chk.left == 0 {
                fail!(ErrorKind::BudgetExceeded { budget: chk.budget });
            }
            chk.left -= 1;
            // A subprogram may return with r0 unset: Linux copies it to the caller as it is,
            // and rejects only a caller that reads it.
            let reads = if depth > 0 && matches!(i.op, Opc::Exit) {
                m.reads & !bit(0)
            } else {
                m.reads
            };
            let missing = reads & !chk.init;
            if missing != 0 {
                fail!(ErrorKind::UninitRegister(missing.trailing_zeros() as u8));
            }
            chk.init = (chk.init & !m.clobbers) | m.writes;
        }
        match i.op {
            Opc::Add64K => wr!(i.d, rd!(i.d).wrapping_add(i.k)),
            Opc::Add64X => wr!(i.d, rd!(i.d).wrapping_add(rd!(i.s))),
            Opc::Sub64K => wr!(i.d, rd!(i.d).wrapping_sub(i.k)),
            Opc::Sub64X => wr!(i.d, rd!(i.d).wrapping_sub(rd!(i.s))),
            Opc::Mul64K => wr!(i.d, rd!(i.d).wrapping_mul(i.k)),
            Opc::Mul64X => wr!(i.d, rd!(i.d).wrapping_mul(rd!(i.s))),
            Opc::Div64K => wr!(i.d, div64(rd!(i.d), i.k)),
            Opc::Div64X => wr!(i.d, div64(rd!(i.d), rd!(i.s))),
            Opc::Sdiv64K => wr!(i.d, sdiv64(rd!(i.d), i.k)),
            Opc::Sdiv64X => wr!(i.d, sdiv64(rd!(i.d), rd!(i.s))),
            Opc::Mod64K => wr!(i.d, mod64(rd!(i.d), i.k)),
            Opc::Mod64X => wr!(i.d, mod64(rd!(i.d), rd!(i.s))),
            Opc::Smod64K => wr!(i.d, smod64(rd!(i.d), i.k)),
            Opc::Smod64X => wr!(i.d, smod64(rd!(i.d), rd!(i.s))),
            Opc::Or64K => wr!(i.d, rd!(i.d) | (i.k)),
            Opc::Or64X => wr!(i.d, rd!(i.d) | (rd!(i.s))),
            Opc::And64K => wr!(i.d, rd!(i.d) & (i.k)),
            Opc::And64X => wr!(i.d, rd!(i.d) & (rd!(i.s))),
            Opc::Xor64K => wr!(i.d, rd!(i.d) ^ (i.k)),
            Opc::Xor64X => wr!(i.d, rd!(i.d) ^ (rd!(i.s))),
            Opc::Lsh64K => wr!(i.d, rd!(i.d) << (i.k & 63)),
            Opc::Lsh64X => wr!(i.d, rd!(i.d) << (rd!(i.s) & 63)),
            Opc::Rsh64K => wr!(i.d, rd!(i.d) >> (i.k & 63)),
            Opc::Rsh64X => wr!(i.d, rd!(i.d) >> (rd!(i.s) & 63)),
            Opc::Arsh64K => wr!(i.d, ((rd!(i.d) as i64) >> (i.k & 63)) as u64),
            Opc::Arsh64X => wr!(i.d, ((rd!(i.d) as i64) >> (rd!(i.s) & 63)) as u64),
            Opc::Mov64K => wr!(i.d, i.k),
            Opc::Mov64X => wr!(i.d, rd!(i.s)),
            Opc::Neg64 => wr!(i.d, rd!(i.d).wrapping_neg()),

            Opc::Add32K => wr!(i.d, u64::from((rd!(i.d) as u32).wrapping_add(i.k as u32))),
            Opc::Add32X => wr!(
                i.d,
                u64::from((rd!(i.d) as u32).wrapping_add(rd!(i.s) as u32))
            ),
            Opc::Sub32K => wr!(i.d, u64::from((rd!(i.d) as u32).wrapping_sub(i.k as u32))),
            Opc::Sub32X => wr!(
                i.d,
                u64::from((rd!(i.d) as u32).wrapping_sub(rd!(i.s) as u32))
            ),
            Opc::Mul32K => wr!(i.d, u64::from((rd!(i.d) as u32).wrapping_mul(i.k as u32))),
            Opc::Mul32X => wr!(
                i.d,
                u64::from((rd!(i.d) as u32).wrapping_mul(rd!(i.s) as u32))
            ),
            Opc::Div32K => wr!(i.d, div32(rd!(i.d), i.k as u32)),
            Opc::Div32X => wr!(i.d, div32(rd!(i.d), rd!(i.s) as u32)),
            Opc::Sdiv32K => wr!(i.d, sdiv32(rd!(i.d), i.k as u32)),
            Opc::Sdiv32X => wr!(i.d, sdiv32(rd!(i.d), rd!(i.s) as u32)),
            Opc::Mod32K => wr!(i.d, mod32(rd!(i.d), i.k as u32)),
            Opc::Mod32X => wr!(i.d, mod32(rd!(i.d), rd!(i.s) as u32)),
            Opc::Smod32K => wr!(i.d, smod32(rd!(i.d), i.k as u32)),
            Opc::Smod32X => wr!(i.d, smod32(rd!(i.d), rd!(i.s) as u32)),
            Opc::Or32K => wr!(i.d, u64::from(rd!(i.d) as u32 | i.k as u32)),
            Opc::Or32X => wr!(i.d, u64::from((rd!(i.d) | rd!(i.s)) as u32)),
            Opc::And32K => wr!(i.d, u64::from(rd!(i.d) as u32 & i.k as u32)),
            Opc::And32X => wr!(i.d, u64::from((rd!(i.d) & rd!(i.s)) as u32)),
            Opc::Xor32K => wr!(i.d, u64::from(rd!(i.d) as u32 ^ i.k as u32)),
            Opc::Xor32X => wr!(i.d, u64::from((rd!(i.d) ^ rd!(i.s)) as u32)),
            Opc::Lsh32K => wr!(i.d, u64::from((rd!(i.d) as u32) << (i.k & 31))),
            Opc::Lsh32X => wr!(i.d, u64::from((rd!(i.d) as u32) << (rd!(i.s) & 31))),
            Opc::Rsh32K => wr!(i.d, u64::from((rd!(i.d) as u32) >> (i.k & 31))),
            Opc::Rsh32X => wr!(i.d, u64::from((rd!(i.d) as u32) >> (rd!(i.s) & 31))),
            Opc::Arsh32K => wr!(i.d, u64::from(((rd!(i.d) as i32) >> (i.k & 31)) as u32)),
            Opc::Arsh32X => wr!(
                i.d,
                u64::from(((rd!(i.d) as i32) >> (rd!(i.s) & 31)) as u32)
            ),
            Opc::Mov32K => wr!(i.d, i.k),
            Opc::Mov32X => wr!(i.d, u64::from(rd!(i.s) as u32)),
            Opc::Neg32 => wr!(i.d, u64::from((rd!(i.d) as u32).wrapping_neg())),

            Opc::Movsx8To64 => wr!(i.d, rd!(i.s) as i8 as i64 as u64),
            Opc::Movsx16To64 => wr!(i.d, rd!(i.s) as i16 as i64 as u64),
            Opc::Movsx32To64 => wr!(i.d, rd!(i.s) as i32 as i64 as u64),
            Opc::Movsx8To32 => wr!(i.d, u64::from(rd!(i.s) as i8 as i32 as u32)),
            Opc::Movsx16To32 => wr!(i.d, u64::from(rd!(i.s) as i16 as i32 as u32)),

            Opc::Le16 => wr!(i.d, u64::from((rd!(i.d) as u16).to_le())),
            Opc::Le32 => wr!(i.d, u64::from((rd!(i.d) as u32).to_le())),
            Opc::Le64 => wr!(i.d, rd!(i.d).to_le()),
            Opc::Be16 => wr!(i.d, u64::from((rd!(i.d) as u16).to_be())),
            Opc::Be32 => wr!(i.d, u64::from((rd!(i.d) as u32).to_be())),
            Opc::Be64 => wr!(i.d, rd!(i.d).to_be()),
            Opc::Swap16 => wr!(i.d, u64::from((rd!(i.d) as u16).swap_bytes())),
            Opc::Swap32 => wr!(i.d, u64::from((rd!(i.d) as u32).swap_bytes())),
            Opc::Swap64 => wr!(i.d, rd!(i.d).swap_bytes()),

            Opc::LdImm64 => wr!(i.d, i.k),
            Opc::LdAbs | Opc::LdInd => {
                // LD_ABS: offset imm. LD_IND: Linux computes `src + imm` in 64 bits and passes
                // it to its load helper as an `int`.
                let off = if i.op == Opc::LdAbs {
                    i.k
                } else {
                    rd!(i.s).wrapping_add(i.k)
                };
                let v = match ctx.packet {
                    // SAFETY: the packet region is readable for the whole run (RunCtx invariant).
                    Some(p) => unsafe { load_packet(p.start, p.len, off as u32 as i32, i.x) },
                    None => None,
                };
                wr!(0u8, v.unwrap_or(0));
                if v.is_none() {
                    exit!();
                }
            }

            Opc::Ldx8 => ldx!(i, u8, u64::from),
            Opc::Ldx16 => ldx!(i, u16, u64::from),
            Opc::Ldx32 => ldx!(i, u32, u64::from),
            Opc::Ldx64 => ldx!(i, u64, |v| v),
            Opc::Ldxs8 => ldx!(i, i8, |v: i8| v as i64 as u64),
            Opc::Ldxs16 => ldx!(i, i16, |v: i16| v as i64 as u64),
            Opc::Ldxs32 => ldx!(i, i32, |v: i32| v as i64 as u64),
            Opc::St8 => st!(u8, rd!(i.d).wrapping_add(i.t as i32 as i64 as u64), i.k),
            Opc::St16 => st!(u16, rd!(i.d).wrapping_add(i.t as i32 as i64 as u64), i.k),
            Opc::St32 => st!(u32, rd!(i.d).wrapping_add(i.t as i32 as i64 as u64), i.k),
            Opc::St64 => st!(u64, rd!(i.d).wrapping_add(i.t as i32 as i64 as u64), i.k),
            Opc::Stx8 => st!(u8, rd!(i.d).wrapping_add(i.k), rd!(i.s)),
            Opc::Stx16 => st!(u16, rd!(i.d).wrapping_add(i.k), rd!(i.s)),
            Opc::Stx32 => st!(u32, rd!(i.d).wrapping_add(i.k), rd!(i.s)),
            Opc::Stx64 => st!(u64, rd!(i.d).wrapping_add(i.k), rd!(i.s)),
            Opc::Atomic64 | Opc::Atomic32 => {
                let a = rd!(i.d).wrapping_add(i.k);
                let op = atomic_op(i.x);
                let (v, r0) = (rd!(i.s), rd!(0u8));
                let old = if i.op == Opc::Atomic64 {
                    check_aligned!(a, 8u64);
                    // SAFETY: as for loads and stores.
                    unsafe { atomic64(op, a, v, r0) }
                } else {
                    check_aligned!(a, 4u64);
                    // SAFETY: as for loads and stores.
                    u64::from(unsafe { atomic32(op, a, v as u32, r0 as u32) })
                };
                match op {
                    AtomicOp::Cmpxchg => wr!(0u8, old),
                    AtomicOp::Xchg
                    | AtomicOp::Add { fetch: true }
                    | AtomicOp::Or { fetch: true }
                    | AtomicOp::And { fetch: true }
                    | AtomicOp::Xor { fetch: true } => wr!(i.s, old),
                    AtomicOp::Add { fetch: false }
                    | AtomicOp::Or { fetch: false }
                    | AtomicOp::And { fetch: false }
                    | AtomicOp::Xor { fetch: false } => {}
                }
            }
            Opc::LdAcq8 | Opc::LdAcq16 | Opc::LdAcq32 | Opc::LdAcq64 => {
                let a = rd!(i.s).wrapping_add(i.k);
                let v = match i.op {
                    Opc::LdAcq8 => {
                        check_aligned!(a, 1u64);
                        // SAFETY: as for loads.
                        u64::from(unsafe { load_acquire8(a) })
                    }
                    Opc::LdAcq16 => {
                        check_aligned!(a, 2u64);
                        // SAFETY: as for loads.
                        u64::from(unsafe { load_acquire16(a) })
                    }
                    Opc::LdAcq32 => {
                        check_aligned!(a, 4u64);
                        // SAFETY: as for loads.
                        u64::from(unsafe { load_acquire32(a) })
                    }
                    _ => {
                        check_aligned!(a, 8u64);
                        // SAFETY: as for loads.
                        unsafe { load_acquire64(a) }
                    }
                };
                wr!(i.d, v);
            }
            Opc::StRel8 | Opc::StRel16 | Opc::StRel32 | Opc::StRel64 => {
                let a = rd!(i.d).wrapping_add(i.k);
                let v = rd!(i.s);
                match i.op {
                    Opc::StRel8 => {
                        check_aligned!(a, 1u64);
                        // SAFETY: as for stores.
                        unsafe { store_release8(a, v as u8) }
                    }
                    Opc::StRel16 => {
                        check_aligned!(a, 2u64);
                        // SAFETY: as for stores.
                        unsafe { store_release16(a, v as u16) }
                    }
                    Opc::StRel32 => {
                        check_aligned!(a, 4u64);
                        // SAFETY: as for stores.
                        unsafe { store_release32(a, v as u32) }
                    }
                    _ => {
                        check_aligned!(a, 8u64);
                        // SAFETY: as for stores.
                        unsafe { store_release64(a, v) }
                    }
                }
            }

            Opc::Ja => goto!(i.t),
            Opc::MayGoto => {
                // Linux's rewrite: `if (cnt == 0) goto target; cnt--;`
                if loops == 0 {
                    goto!(i.t);
                } else {
                    loops -= 1;
                }
            }
            Opc::Jeq64K => jmp!(i, rd!(i.d) == i.k),
            Opc::Jeq64X => jmp!(i, rd!(i.d) == rd!(i.s)),
            Opc::Jne64K => jmp!(i, rd!(i.d) != i.k),
            Opc::Jne64X => jmp!(i, rd!(i.d) != rd!(i.s)),
            Opc::Jgt64K => jmp!(i, rd!(i.d) > i.k),
            Opc::Jgt64X => jmp!(i, rd!(i.d) > rd!(i.s)),
            Opc::Jge64K => jmp!(i, rd!(i.d) >= i.k),
            Opc::Jge64X => jmp!(i, rd!(i.d) >= rd!(i.s)),
            Opc::Jlt64K => jmp!(i, rd!(i.d) < i.k),
            Opc::Jlt64X => jmp!(i, rd!(i.d) < rd!(i.s)),
            Opc::Jle64K => jmp!(i, rd!(i.d) <= i.k),
            Opc::Jle64X => jmp!(i, rd!(i.d) <= rd!(i.s)),
            Opc::Jset64K => jmp!(i, rd!(i.d) & i.k != 0),
            Opc::Jset64X => jmp!(i, rd!(i.d) & rd!(i.s) != 0),
            Opc::Jsgt64K => jmp!(i, (rd!(i.d) as i64) > i.k as i64),
            Opc::Jsgt64X => jmp!(i, (rd!(i.d) as i64) > rd!(i.s) as i64),
            Opc::Jsge64K => jmp!(i, (rd!(i.d) as i64) >= i.k as i64),
            Opc::Jsge64X => jmp!(i, (rd!(i.d) as i64) >= rd!(i.s) as i64),
            Opc::Jslt64K => jmp!(i, (rd!(i.d) as i64) < i.k as i64),
            Opc::Jslt64X => jmp!(i, (rd!(i.d) as i64) < rd!(i.s) as i64),
            Opc::Jsle64K => jmp!(i, (rd!(i.d) as i64) <= i.k as i64),
            Opc::Jsle64X => jmp!(i, (rd!(i.d) as i64) <= rd!(i.s) as i64),
            Opc::Jeq32K => jmp!(i, rd!(i.d) as u32 == i.k as u32),
            Opc::Jeq32X => jmp!(i, rd!(i.d) as u32 == rd!(i.s) as u32),
            Opc::Jne32K => jmp!(i, rd!(i.d) as u32 != i.k as u32),
            Opc::Jne32X => jmp!(i, rd!(i.d) as u32 != rd!(i.s) as u32),
            Opc::Jgt32K => jmp!(i, rd!(i.d) as u32 > i.k as u32),
            Opc::Jgt32X => jmp!(i, rd!(i.d) as u32 > rd!(i.s) as u32),
            Opc::Jge32K => jmp!(i, rd!(i.d) as u32 >= i.k as u32),
            Opc::Jge32X => jmp!(i, rd!(i.d) as u32 >= rd!(i.s) as u32),
            Opc::Jlt32K => jmp!(i, (rd!(i.d) as u32) < i.k as u32),
            Opc::Jlt32X => jmp!(i, (rd!(i.d) as u32) < rd!(i.s) as u32),
            Opc::Jle32K => jmp!(i, rd!(i.d) as u32 <= i.k as u32),
            Opc::Jle32X => jmp!(i, rd!(i.d) as u32 <= rd!(i.s) as u32),
            Opc::Jset32K => jmp!(i, rd!(i.d) as u32 & i.k as u32 != 0),
            Opc::Jset32X => jmp!(i, (rd!(i.d) & rd!(i.s)) as u32 != 0),
            Opc::Jsgt32K => jmp!(i, rd!(i.d) as i32 > i.k as i32),
            Opc::Jsgt32X => jmp!(i, rd!(i.d) as i32 > rd!(i.s) as i32),
            Opc::Jsge32K => jmp!(i, rd!(i.d) as i32 >= i.k as i32),
            Opc::Jsge32X => jmp!(i, rd!(i.d) as i32 >= rd!(i.s) as i32),
            Opc::Jslt32K => jmp!(i, (rd!(i.d) as i32) < i.k as i32),
            Opc::Jslt32X => jmp!(i, (rd!(i.d) as i32) < rd!(i.s) as i32),
            Opc::Jsle32K => jmp!(i, rd!(i.d) as i32 <= i.k as i32),
            Opc::Jsle32X => jmp!(i, rd!(i.d) as i32 <= rd!(i.s) as i32),

            Opc::Call => {
                let helper = prog.helpers[i.t as usize];
                let ret = (helper.func)(rd!(1u8), rd!(2u8), rd!(3u8), rd!(4u8), rd!(5u8));
                wr!(0u8, ret);
                match helper.ret {
                    HelperRet::Scalar => {}
                    HelperRet::UnwindOnZero => {
                        if ret == 0 {
                            return Ok(0);
                        }
                    }
                    HelperRet::Mem { size, writable } => {
                        if CHECKED && ret != 0 {
                            chk.regions.push(Region {
                                start: ret,
                                len: size as u64,
                                writable,
                            });
                        }
                    }
                    HelperRet::MemSized { size, writable } => {
                        if CHECKED && ret != 0 {
                            let args = [rd!(1u8), rd!(2u8), rd!(3u8), rd!(4u8), rd!(5u8)];
                            chk.regions.push(Region {
                                start: ret,
                                len: size(&args) as u64,
                                writable,
                            });
                        }
                    }
                }
            }
            Opc::TailCall => {
                let target = match ctx.tail_calls {
                    Some(hook) => hook.tail_call_target(rd!(2u8), rd!(3u8) as u32),
                    None => TailCallTarget::OutOfRange,
                };
                match target {
                    TailCallTarget::Program(vm) if tail_calls < MAX_TAIL_CALL_CNT => {
                        tail_calls += 1;
                        prog = vm.program();
                        base = code_of(prog, CHECKED).as_ptr();
                        ip = base;
                        // The target may read stack bytes the caller never wrote (Linux shows
                        // it the old frame); give it zeroes where it can look.
                        let n = zero_bytes(prog);
                        let from = rd!(10u8) - n as u64;
                        // SAFETY: the current frame [r10 - STACK_SIZE, r10) lies inside
                        // `stack`, and n <= STACK_SIZE.
                        unsafe { zero(from, n) };
                        loops = MAY_GOTO_LOOPS;
                        if CHECKED {
                            // The target was verified with only the context in r1.
                            chk.init = bit(1) | FP;
                        }
                    }
                    fallthrough => {
                        if matches!(fallthrough, TailCallTarget::Empty)
                            && tail_calls < MAX_TAIL_CALL_CNT
                        {
                            tail_calls += 1;
                        }
                        if CHECKED {
                            // The verifier treats r0 as unknown and r1-r5 as clobbered after
                            // the helper returns.
                            chk.init = (chk.init & !CALLER_SAVED) | bit(0);
                        }
                    }
                }
            }
            Opc::CallLocal => {
                if depth + 1 >= MAX_CALL_FRAMES {
                    fail!(ErrorKind::CallDepth);
                }
                frames[depth] = Some(Frame {
                    prog,
                    ret: idx!() as u32,
                    loops,
                    saved: [rd!(6u8), rd!(7u8), rd!(8u8), rd!(9u8)],
                    init: chk.init,
                });
                depth += 1;
                wr!(10u8, rd!(10u8) - STACK_SIZE as u64);
                let n = zero_bytes(prog);
                let from = rd!(10u8) - n as u64;
                // SAFETY: depth < MAX_CALL_FRAMES, so the new frame [r10 - STACK_SIZE, r10) lies
                // inside `stack`, and n <= STACK_SIZE.
                unsafe { zero(from, n) };
                goto!(i.t);
                loops = MAY_GOTO_LOOPS;
                if CHECKED {
                    chk.init = (chk.init & CALLER_SAVED) | FP;
                }
            }
            Opc::Exit => exit!(),
            Opc::FellOff => fail!(ErrorKind::FellOffEnd),

            // Accumulator forms: the destination's (`SA`: the source's) value is `acc`.
            Opc::Add32KSSA => {
                wr!(i.d, u64::from((acc as u32).wrapping_add(i.k as u32)));
                ip = ip.wrapping_add(1);
            }
            Opc::Mul32KSSA => {
                wr!(i.d, u64::from((acc as u32).wrapping_mul(i.k as u32)));
                ip = ip.wrapping_add(1);
            }
            Opc::And32KSSA => {
                wr!(i.d, u64::from((acc & i.k) as u32));
                ip = ip.wrapping_add(1);
            }
            Opc::Rsh32KSSA => {
                wr!(i.d, u64::from((acc as u32) >> (i.k & 31)));
                ip = ip.wrapping_add(1);
            }
            Opc::Lsh32KSSA => {
                wr!(i.d, u64::from((acc as u32) << (i.k & 31)));
                ip = ip.wrapping_add(1);
            }
            Opc::Xor32KSSA => {
                wr!(i.d, u64::from((acc ^ i.k) as u32));
                ip = ip.wrapping_add(1);
            }
            Opc::Add64KSSA => {
                wr!(i.d, acc.wrapping_add(i.k));
                ip = ip.wrapping_add(1);
            }
            Opc::And64KSSA => {
                wr!(i.d, acc & i.k);
                ip = ip.wrapping_add(1);
            }
            Opc::Rsh64KSSA => {
                wr!(i.d, acc >> (i.k & 63));
                ip = ip.wrapping_add(1);
            }
            Opc::XorRsh32SA => {
                let v = acc as u32;
                wr!(i.d, u64::from(v ^ (v >> (i.k & 31))));
                ip = ip.wrapping_add(2);
            }
            Opc::XorLsh32SA => {
                let v = acc as u32;
                wr!(i.d, u64::from(v ^ (v << (i.k & 31))));
                ip = ip.wrapping_add(2);
            }
            Opc::MovAddJgt64SA => {
                let v = acc.wrapping_add(i.k);
                wr!(i.d, v);
                if v > rd!(i.x) {
                    goto!(i.t);
                } else {
                    ip = ip.wrapping_add(2);
                }
            }
            Opc::Add32KA => wr!(i.d, u64::from((acc as u32).wrapping_add(i.k as u32))),
            Opc::Sub32KA => wr!(i.d, u64::from((acc as u32).wrapping_sub(i.k as u32))),
            Opc::Mul32KA => wr!(i.d, u64::from((acc as u32).wrapping_mul(i.k as u32))),
            Opc::Or32KA => wr!(i.d, u64::from(acc as u32 | i.k as u32)),
            Opc::And32KA => wr!(i.d, u64::from(acc as u32 & i.k as u32)),
            Opc::Xor32KA => wr!(i.d, u64::from(acc as u32 ^ i.k as u32)),
            Opc::Lsh32KA => wr!(i.d, u64::from((acc as u32) << (i.k & 31))),
            Opc::Rsh32KA => wr!(i.d, u64::from((acc as u32) >> (i.k & 31))),
            Opc::Arsh32KA => wr!(i.d, u64::from(((acc as i32) >> (i.k & 31)) as u32)),
            Opc::Add32XA => wr!(i.d, u64::from((acc as u32).wrapping_add(rd!(i.s) as u32))),
            Opc::Or32XA => wr!(i.d, u64::from((acc | rd!(i.s)) as u32)),
            Opc::Xor32XA => wr!(i.d, u64::from((acc ^ rd!(i.s)) as u32)),
            Opc::And32XA => wr!(i.d, u64::from((acc & rd!(i.s)) as u32)),
            Opc::Add64KA => wr!(i.d, acc.wrapping_add(i.k)),
            Opc::And64KA => wr!(i.d, acc & (i.k)),
            Opc::Or64XA => wr!(i.d, acc | (rd!(i.s))),
            Opc::Xor64XA => wr!(i.d, acc ^ (rd!(i.s))),
            Opc::Add64XA => wr!(i.d, acc.wrapping_add(rd!(i.s))),
            Opc::MulAdd32KKA => {
                let v = (acc as u32).wrapping_mul(i.k as u32);
                wr!(i.d, u64::from(v.wrapping_add((i.k >> 32) as u32)));
                ip = ip.wrapping_add(1);
            }
            Opc::MulRsh32KKA => {
                let v = (acc as u32).wrapping_mul(i.k as u32);
                wr!(i.d, u64::from(v >> ((i.k >> 32) & 31)));
                ip = ip.wrapping_add(1);
            }
            Opc::RshAnd32KKA => {
                let v = (acc as u32) >> (i.k & 31);
                wr!(i.d, u64::from(v & (i.k >> 32) as u32));
                ip = ip.wrapping_add(1);
            }
            Opc::LshAnd32KKA => {
                let v = (acc as u32) << (i.k & 31);
                wr!(i.d, u64::from(v & (i.k >> 32) as u32));
                ip = ip.wrapping_add(1);
            }
            Opc::AndRsh32KKA => {
                let v = acc as u32 & i.k as u32;
                wr!(i.d, u64::from(v >> ((i.k >> 32) & 31)));
                ip = ip.wrapping_add(1);
            }
            Opc::Funnel32A => {
                let v = acc as u32;
                let low = v >> (i.k & 31);
                wr!(i.s, u64::from(low));
                wr!(i.d, u64::from((v << ((i.k >> 32) & 31)) | low));
                ip = ip.wrapping_add(3);
            }

            // Superinstructions (fast code only): each skips the instructions it stands for.
            Opc::Add64KS => {
                wr!(i.d, rd!(i.s).wrapping_add(i.k));
                ip = ip.wrapping_add(1);
            }
            Opc::Add64XS => {
                wr!(i.d, rd!(i.s).wrapping_add(rd!(i.x)));
                ip = ip.wrapping_add(1);
            }
            Opc::Sub64KS => {
                wr!(i.d, rd!(i.s).wrapping_sub(i.k));
                ip = ip.wrapping_add(1);
            }
            Opc::Sub64XS => {
                wr!(i.d, rd!(i.s).wrapping_sub(rd!(i.x)));
                ip = ip.wrapping_add(1);
            }
            Opc::Mul64KS => {
                wr!(i.d, rd!(i.s).wrapping_mul(i.k));
                ip = ip.wrapping_add(1);
            }
            Opc::Mul64XS => {
                wr!(i.d, rd!(i.s).wrapping_mul(rd!(i.x)));
                ip = ip.wrapping_add(1);
            }
            Opc::Or64KS => {
                wr!(i.d, rd!(i.s) | i.k);
                ip = ip.wrapping_add(1);
            }
            Opc::Or64XS => {
                wr!(i.d, rd!(i.s) | rd!(i.x));
                ip = ip.wrapping_add(1);
            }
            Opc::And64KS => {
                wr!(i.d, rd!(i.s) & i.k);
                ip = ip.wrapping_add(1);
            }
            Opc::And64XS => {
                wr!(i.d, rd!(i.s) & rd!(i.x));
                ip = ip.wrapping_add(1);
            }
            Opc::Xor64KS => {
                wr!(i.d, rd!(i.s) ^ i.k);
                ip = ip.wrapping_add(1);
            }
            Opc::Xor64XS => {
                wr!(i.d, rd!(i.s) ^ rd!(i.x));
                ip = ip.wrapping_add(1);
            }
            Opc::Lsh64KS => {
                wr!(i.d, rd!(i.s) << (i.k & 63));
                ip = ip.wrapping_add(1);
            }
            Opc::Lsh64XS => {
                wr!(i.d, rd!(i.s) << (rd!(i.x) & 63));
                ip = ip.wrapping_add(1);
            }
            Opc::Rsh64KS => {
                wr!(i.d, rd!(i.s) >> (i.k & 63));
                ip = ip.wrapping_add(1);
            }
            Opc::Rsh64XS => {
                wr!(i.d, rd!(i.s) >> (rd!(i.x) & 63));
                ip = ip.wrapping_add(1);
            }
            Opc::Arsh64KS => {
                wr!(i.d, ((rd!(i.s) as i64) >> (i.k & 63)) as u64);
                ip = ip.wrapping_add(1);
            }
            Opc::Arsh64XS => {
                wr!(i.d, ((rd!(i.s) as i64) >> (rd!(i.x) & 63)) as u64);
                ip = ip.wrapping_add(1);
            }
            Opc::Add32KS => {
                wr!(i.d, u64::from((rd!(i.s) as u32).wrapping_add(i.k as u32)));
                ip = ip.wrapping_add(1);
            }
            Opc::Add32XS => {
                wr!(
                    i.d,
                    u64::from((rd!(i.s) as u32).wrapping_add(rd!(i.x) as u32))
                );
                ip = ip.wrapping_add(1);
            }
            Opc::Sub32KS => {
                wr!(i.d, u64::from((rd!(i.s) as u32).wrapping_sub(i.k as u32)));
                ip = ip.wrapping_add(1);
            }
            Opc::Sub32XS => {
                wr!(
                    i.d,
                    u64::from((rd!(i.s) as u32).wrapping_sub(rd!(i.x) as u32))
                );
                ip = ip.wrapping_add(1);
            }
            Opc::Mul32KS => {
                wr!(i.d, u64::from((rd!(i.s) as u32).wrapping_mul(i.k as u32)));
                ip = ip.wrapping_add(1);
            }
            Opc::Mul32XS => {
                wr!(
                    i.d,
                    u64::from((rd!(i.s) as u32).wrapping_mul(rd!(i.x) as u32))
                );
                ip = ip.wrapping_add(1);
            }
            Opc::Or32KS => {
                wr!(i.d, u64::from((rd!(i.s) | i.k) as u32));
                ip = ip.wrapping_add(1);
            }
            Opc::Or32XS => {
                wr!(i.d, u64::from((rd!(i.s) | rd!(i.x)) as u32));
                ip = ip.wrapping_add(1);
            }
            Opc::And32KS => {
                wr!(i.d, u64::from((rd!(i.s) & i.k) as u32));
                ip = ip.wrapping_add(1);
            }
            Opc::And32XS => {
                wr!(i.d, u64::from((rd!(i.s) & rd!(i.x)) as u32));
                ip = ip.wrapping_add(1);
            }
            Opc::Xor32KS => {
                wr!(i.d, u64::from((rd!(i.s) ^ i.k) as u32));
                ip = ip.wrapping_add(1);
            }
            Opc::Xor32XS => {
                wr!(i.d, u64::from((rd!(i.s) ^ rd!(i.x)) as u32));
                ip = ip.wrapping_add(1);
            }
            Opc::Lsh32KS => {
                wr!(i.d, u64::from((rd!(i.s) as u32) << (i.k & 31)));
                ip = ip.wrapping_add(1);
            }
            Opc::Lsh32XS => {
                wr!(i.d, u64::from((rd!(i.s) as u32) << (rd!(i.x) & 31)));
                ip = ip.wrapping_add(1);
            }
            Opc::Rsh32KS => {
                wr!(i.d, u64::from((rd!(i.s) as u32) >> (i.k & 31)));
                ip = ip.wrapping_add(1);
            }
            Opc::Rsh32XS => {
                wr!(i.d, u64::from((rd!(i.s) as u32) >> (rd!(i.x) & 31)));
                ip = ip.wrapping_add(1);
            }
            Opc::Arsh32KS => {
                wr!(i.d, u64::from(((rd!(i.s) as i32) >> (i.k & 31)) as u32));
                ip = ip.wrapping_add(1);
            }
            Opc::Arsh32XS => {
                wr!(
                    i.d,
                    u64::from(((rd!(i.s) as i32) >> (rd!(i.x) & 31)) as u32)
                );
                ip = ip.wrapping_add(1);
            }
            Opc::MulAdd32KK => {
                let v = (rd!(i.d) as u32).wrapping_mul(i.k as u32);
                wr!(i.d, u64::from(v.wrapping_add((i.k >> 32) as u32)));
                ip = ip.wrapping_add(1);
            }
            Opc::MulRsh32KK => {
                let v = (rd!(i.d) as u32).wrapping_mul(i.k as u32);
                wr!(i.d, u64::from(v >> ((i.k >> 32) & 31)));
                ip = ip.wrapping_add(1);
            }
            Opc::RshAnd32KK => {
                let v = (rd!(i.d) as u32) >> (i.k & 31);
                wr!(i.d, u64::from(v & (i.k >> 32) as u32));
                ip = ip.wrapping_add(1);
            }
            Opc::AndRsh32KK => {
                let v = rd!(i.d) as u32 & i.k as u32;
                wr!(i.d, u64::from(v >> ((i.k >> 32) & 31)));
                ip = ip.wrapping_add(1);
            }
            Opc::LshAnd32KK => {
                let v = (rd!(i.d) as u32) << (i.k & 31);
                wr!(i.d, u64::from(v & (i.k >> 32) as u32));
                ip = ip.wrapping_add(1);
            }
            Opc::RshAnd64KK => {
                let v = rd!(i.d) >> (i.k & 63);
                wr!(i.d, v & (i.k >> 32) as i32 as i64 as u64);
                ip = ip.wrapping_add(1);
            }
            Opc::AndRsh64KK => {
                let v = rd!(i.d) & (i.k as i32 as i64 as u64);
                wr!(i.d, v >> ((i.k >> 32) & 63));
                ip = ip.wrapping_add(1);
            }
            Opc::Funnel32 => {
                let v = rd!(i.d) as u32;
                let low = v >> (i.k & 31);
                wr!(i.s, u64::from(low));
                wr!(i.d, u64::from((v << ((i.k >> 32) & 31)) | low));
                ip = ip.wrapping_add(3);
            }
            Opc::XorRsh32 => {
                let v = rd!(i.s) as u32;
                wr!(i.d, u64::from(v ^ (v >> (i.k & 31))));
                ip = ip.wrapping_add(2);
            }
            Opc::XorLsh32 => {
                let v = rd!(i.s) as u32;
                wr!(i.d, u64::from(v ^ (v << (i.k & 31))));
                ip = ip.wrapping_add(2);
            }
            Opc::XorRsh64 => {
                let v = rd!(i.s);
                wr!(i.d, v ^ (v >> (i.k & 63)));
                ip = ip.wrapping_add(2);
            }
            Opc::XorLsh64 => {
                let v = rd!(i.s);
                wr!(i.d, v ^ (v << (i.k & 63)));
                ip = ip.wrapping_add(2);
            }
            Opc::MovAddJgt64 => {
                let v = rd!(i.s).wrapping_add(i.k);
                wr!(i.d, v);
                if v > rd!(i.x) {
                    goto!(i.t);
                } else {
                    ip = ip.wrapping_add(2);
                }
            }
        }
    }
}
