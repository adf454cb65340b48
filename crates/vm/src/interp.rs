//! The interpreter loop, one function for both modes (`CHECKED` is a const generic, so the fast
//! instance contains none of the checks).
//!
//! Kernel counterpart: `___bpf_prog_run` in kernel/bpf/core.c, plus the results of the verifier
//! rewrites (`do_misc_fixups`) that define division by zero and friends (see [`crate::alu`]).
//!
//! State: registers in a local `[u64; 16]` (register numbers are masked with 15, so indexing
//! needs no bounds check), `pc` an index into the pre-decoded code, a native-stack array holding
//! [`MAX_CALL_FRAMES`] eBPF frames of [`STACK_SIZE`] bytes (frame 0 at the top; each frame is
//! zeroed when entered), and a small array of return records for local calls.
//!
//! The checked instance additionally counts instructions against the budget, tracks which
//! registers hold a value (the verifier's `!read_ok` rule, on the path actually taken), and
//! checks every load and store against the run's regions: the active stack (the current frame
//! and its callers'), the context's regions and what helpers returned.

use crate::alu::{div32, div64, mod32, mod64, sdiv32, sdiv64, smod32, smod64};
use crate::code::{bit, CALLEE_SAVED, CALLER_SAVED, FP, I};
use crate::context::{Region, RunCtx, TailCallTarget};
use crate::error::{ErrorKind, VmError};
use crate::helpers::HelperRet;
use crate::memory::{atomic32, atomic64, load, load_packet, store, zero};
use crate::{Program, MAX_CALL_FRAMES, MAX_TAIL_CALL_CNT, STACK_SIZE};
use bpfkit_isa::AtomicOp;
use std::mem::MaybeUninit;

const STACK_WORDS: usize = MAX_CALL_FRAMES * STACK_SIZE / 8;

/// The return record of a local call.
#[derive(Clone, Copy)]
struct Frame<'p> {
    prog: &'p Program,
    ret: u32,
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
        let stack = Region {
            start: r10 - STACK_SIZE as u64,
            len: top - (r10 - STACK_SIZE as u64),
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

fn error_at(prog: &Program, code_idx: usize, kind: ErrorKind) -> VmError {
    let pc = prog.meta.get(code_idx).map_or(0, |m| m.pc as usize);
    VmError { pc, kind }
}

/// Runs `entry` with the inputs of `ctx`.
///
/// # Safety
/// With `CHECKED = false`, every memory access the program makes must be valid (the `Vm`
/// contract). With `CHECKED = true` there is no requirement beyond the [`RunCtx`] invariants.
#[expect(
    clippy::too_many_lines,
    reason = "one match arm per pre-decoded instruction"
)]
pub(crate) unsafe fn execute<const CHECKED: bool>(
    entry: &Program,
    ctx: &RunCtx<'_>,
) -> Result<u64, VmError> {
    let mut stack = [MaybeUninit::<u64>::uninit(); STACK_WORDS];
    let base = stack.as_mut_ptr().expose_provenance() as u64;
    let top = base + (STACK_WORDS * 8) as u64;
    // SAFETY: frame 0 is the last STACK_SIZE bytes of `stack`, writable.
    unsafe { zero(top - STACK_SIZE as u64, STACK_SIZE) };

    let mut reg = [0u64; 16];
    reg[1..6].copy_from_slice(&ctx.args);
    reg[10] = top;

    let mut prog = entry;
    let mut code: &[I] = &prog.code;
    let mut pc: usize = 0;
    let mut depth: usize = 0;
    let mut frames = [Frame {
        prog,
        ret: 0,
        saved: [0; 4],
        init: 0,
    }; MAX_CALL_FRAMES];
    let mut tail_calls: u32 = 0;
    let mut chk = Checker {
        regions: if CHECKED {
            ctx.regions.clone()
        } else {
            Vec::new()
        },
        budget: ctx.budget,
        left: ctx.budget,
        init: CALLER_SAVED | FP,
    };

    macro_rules! r {
        ($x:expr) => {
            reg[usize::from($x) & 15]
        };
    }
    macro_rules! fail {
        ($kind:expr) => {
            return Err(error_at(prog, pc - 1, $kind))
        };
    }
    macro_rules! check {
        ($addr:expr, $size:expr, $write:expr) => {
            if CHECKED {
                if let Err(kind) = chk.access($addr, $size, $write, reg[10], top) {
                    fail!(kind);
                }
            }
        };
    }
    macro_rules! ldx {
        ($t:ty, $d:expr, $s:expr, $off:expr, $conv:expr) => {{
            let a = r!($s).wrapping_add($off as i64 as u64);
            check!(a, std::mem::size_of::<$t>() as u64, false);
            // SAFETY: checked mode: inside a region of this run (checked above); fast mode: the
            // `Vm` contract (the verifier proved the access in bounds).
            let v: $t = unsafe { load::<$t>(a) };
            r!($d) = $conv(v);
        }};
    }
    macro_rules! st {
        ($t:ty, $d:expr, $off:expr, $v:expr) => {{
            let a = r!($d).wrapping_add($off as i64 as u64);
            check!(a, std::mem::size_of::<$t>() as u64, true);
            // SAFETY: as for loads.
            unsafe { store::<$t>(a, $v as $t) };
        }};
    }
    macro_rules! jmp {
        ($cond:expr, $t:expr) => {
            if $cond {
                pc = $t as usize;
            }
        };
    }
    // Return from the current function with r0 as it is.
    macro_rules! exit {
        () => {{
            if depth == 0 {
                return Ok(reg[0]);
            }
            depth -= 1;
            let f = frames[depth];
            prog = f.prog;
            code = &prog.code;
            pc = f.ret as usize;
            reg[6..10].copy_from_slice(&f.saved);
            reg[10] += STACK_SIZE as u64;
            if CHECKED {
                chk.init = (f.init & (CALLEE_SAVED | FP)) | bit(0);
            }
        }};
    }

    loop {
        let insn = code[pc];
        pc += 1;
        if CHECKED {
            let m = prog.meta[pc - 1];
            if chk.left == 0 {
                fail!(ErrorKind::BudgetExceeded { budget: chk.budget });
            }
            chk.left -= 1;
            let missing = m.reads & !chk.init;
            if missing != 0 {
                fail!(ErrorKind::UninitRegister(missing.trailing_zeros() as u8));
            }
            chk.init = (chk.init & !m.clobbers) | m.writes;
        }
        match insn {
            I::Add64K { d, k } => r!(d) = r!(d).wrapping_add(k),
            I::Add64X { d, s } => r!(d) = r!(d).wrapping_add(r!(s)),
            I::Sub64K { d, k } => r!(d) = r!(d).wrapping_sub(k),
            I::Sub64X { d, s } => r!(d) = r!(d).wrapping_sub(r!(s)),
            I::Mul64K { d, k } => r!(d) = r!(d).wrapping_mul(k),
            I::Mul64X { d, s } => r!(d) = r!(d).wrapping_mul(r!(s)),
            I::Div64K { d, k } => r!(d) = div64(r!(d), k),
            I::Div64X { d, s } => r!(d) = div64(r!(d), r!(s)),
            I::Sdiv64K { d, k } => r!(d) = sdiv64(r!(d), k),
            I::Sdiv64X { d, s } => r!(d) = sdiv64(r!(d), r!(s)),
            I::Mod64K { d, k } => r!(d) = mod64(r!(d), k),
            I::Mod64X { d, s } => r!(d) = mod64(r!(d), r!(s)),
            I::Smod64K { d, k } => r!(d) = smod64(r!(d), k),
            I::Smod64X { d, s } => r!(d) = smod64(r!(d), r!(s)),
            I::Or64K { d, k } => r!(d) |= k,
            I::Or64X { d, s } => r!(d) |= r!(s),
            I::And64K { d, k } => r!(d) &= k,
            I::And64X { d, s } => r!(d) &= r!(s),
            I::Xor64K { d, k } => r!(d) ^= k,
            I::Xor64X { d, s } => r!(d) ^= r!(s),
            I::Lsh64K { d, k } => r!(d) <<= k & 63,
            I::Lsh64X { d, s } => r!(d) <<= r!(s) & 63,
            I::Rsh64K { d, k } => r!(d) >>= k & 63,
            I::Rsh64X { d, s } => r!(d) >>= r!(s) & 63,
            I::Arsh64K { d, k } => r!(d) = ((r!(d) as i64) >> (k & 63)) as u64,
            I::Arsh64X { d, s } => r!(d) = ((r!(d) as i64) >> (r!(s) & 63)) as u64,
            I::Mov64K { d, k } => r!(d) = k,
            I::Mov64X { d, s } => r!(d) = r!(s),
            I::Neg64 { d } => r!(d) = r!(d).wrapping_neg(),

            I::Add32K { d, k } => r!(d) = u64::from((r!(d) as u32).wrapping_add(k)),
            I::Add32X { d, s } => r!(d) = u64::from((r!(d) as u32).wrapping_add(r!(s) as u32)),
            I::Sub32K { d, k } => r!(d) = u64::from((r!(d) as u32).wrapping_sub(k)),
            I::Sub32X { d, s } => r!(d) = u64::from((r!(d) as u32).wrapping_sub(r!(s) as u32)),
            I::Mul32K { d, k } => r!(d) = u64::from((r!(d) as u32).wrapping_mul(k)),
            I::Mul32X { d, s } => r!(d) = u64::from((r!(d) as u32).wrapping_mul(r!(s) as u32)),
            I::Div32K { d, k } => r!(d) = div32(r!(d), k),
            I::Div32X { d, s } => r!(d) = div32(r!(d), r!(s) as u32),
            I::Sdiv32K { d, k } => r!(d) = sdiv32(r!(d), k),
            I::Sdiv32X { d, s } => r!(d) = sdiv32(r!(d), r!(s) as u32),
            I::Mod32K { d, k } => r!(d) = mod32(r!(d), k),
            I::Mod32X { d, s } => r!(d) = mod32(r!(d), r!(s) as u32),
            I::Smod32K { d, k } => r!(d) = smod32(r!(d), k),
            I::Smod32X { d, s } => r!(d) = smod32(r!(d), r!(s) as u32),
            I::Or32K { d, k } => r!(d) = u64::from(r!(d) as u32 | k),
            I::Or32X { d, s } => r!(d) = u64::from((r!(d) | r!(s)) as u32),
            I::And32K { d, k } => r!(d) = u64::from(r!(d) as u32 & k),
            I::And32X { d, s } => r!(d) = u64::from((r!(d) & r!(s)) as u32),
            I::Xor32K { d, k } => r!(d) = u64::from(r!(d) as u32 ^ k),
            I::Xor32X { d, s } => r!(d) = u64::from((r!(d) ^ r!(s)) as u32),
            I::Lsh32K { d, k } => r!(d) = u64::from((r!(d) as u32) << (k & 31)),
            I::Lsh32X { d, s } => r!(d) = u64::from((r!(d) as u32) << (r!(s) & 31)),
            I::Rsh32K { d, k } => r!(d) = u64::from((r!(d) as u32) >> (k & 31)),
            I::Rsh32X { d, s } => r!(d) = u64::from((r!(d) as u32) >> (r!(s) & 31)),
            I::Arsh32K { d, k } => r!(d) = u64::from(((r!(d) as i32) >> (k & 31)) as u32),
            I::Arsh32X { d, s } => r!(d) = u64::from(((r!(d) as i32) >> (r!(s) & 31)) as u32),
            I::Mov32K { d, k } => r!(d) = u64::from(k),
            I::Mov32X { d, s } => r!(d) = u64::from(r!(s) as u32),
            I::Neg32 { d } => r!(d) = u64::from((r!(d) as u32).wrapping_neg()),

            I::Movsx8To64 { d, s } => r!(d) = r!(s) as i8 as i64 as u64,
            I::Movsx16To64 { d, s } => r!(d) = r!(s) as i16 as i64 as u64,
            I::Movsx32To64 { d, s } => r!(d) = r!(s) as i32 as i64 as u64,
            I::Movsx8To32 { d, s } => r!(d) = u64::from(r!(s) as i8 as i32 as u32),
            I::Movsx16To32 { d, s } => r!(d) = u64::from(r!(s) as i16 as i32 as u32),

            I::Le16 { d } => r!(d) = u64::from((r!(d) as u16).to_le()),
            I::Le32 { d } => r!(d) = u64::from((r!(d) as u32).to_le()),
            I::Le64 { d } => r!(d) = r!(d).to_le(),
            I::Be16 { d } => r!(d) = u64::from((r!(d) as u16).to_be()),
            I::Be32 { d } => r!(d) = u64::from((r!(d) as u32).to_be()),
            I::Be64 { d } => r!(d) = r!(d).to_be(),
            I::Swap16 { d } => r!(d) = u64::from((r!(d) as u16).swap_bytes()),
            I::Swap32 { d } => r!(d) = u64::from((r!(d) as u32).swap_bytes()),
            I::Swap64 { d } => r!(d) = r!(d).swap_bytes(),

            I::LdImm64 { d, k } => r!(d) = k,
            I::LdAbs { size, k } => {
                let v = match ctx.packet {
                    // SAFETY: the packet region is readable for the whole run (RunCtx invariant).
                    Some(p) => unsafe { load_packet(p.start, p.len, k, size) },
                    None => None,
                };
                reg[0] = v.unwrap_or(0);
                if v.is_none() {
                    exit!();
                }
            }
            I::LdInd { size, s, k } => {
                // Linux computes `src + imm` in 64 bits and passes it as an `int` offset.
                let off = r!(s).wrapping_add(k as i64 as u64) as u32 as i32;
                let v = match ctx.packet {
                    // SAFETY: as for LdAbs.
                    Some(p) => unsafe { load_packet(p.start, p.len, off, size) },
                    None => None,
                };
                reg[0] = v.unwrap_or(0);
                if v.is_none() {
                    exit!();
                }
            }

            I::Ldx8 { d, s, off } => ldx!(u8, d, s, off, u64::from),
            I::Ldx16 { d, s, off } => ldx!(u16, d, s, off, u64::from),
            I::Ldx32 { d, s, off } => ldx!(u32, d, s, off, u64::from),
            I::Ldx64 { d, s, off } => ldx!(u64, d, s, off, |v| v),
            I::Ldxs8 { d, s, off } => ldx!(i8, d, s, off, |v: i8| v as i64 as u64),
            I::Ldxs16 { d, s, off } => ldx!(i16, d, s, off, |v: i16| v as i64 as u64),
            I::Ldxs32 { d, s, off } => ldx!(i32, d, s, off, |v: i32| v as i64 as u64),
            I::St8 { d, off, k } => st!(u8, d, off, k),
            I::St16 { d, off, k } => st!(u16, d, off, k),
            I::St32 { d, off, k } => st!(u32, d, off, k),
            I::St64 { d, off, k } => st!(u64, d, off, k as i64),
            I::Stx8 { d, s, off } => st!(u8, d, off, r!(s)),
            I::Stx16 { d, s, off } => st!(u16, d, off, r!(s)),
            I::Stx32 { d, s, off } => st!(u32, d, off, r!(s)),
            I::Stx64 { d, s, off } => st!(u64, d, off, r!(s)),
            I::Atomic64 { op, d, s, off } => {
                let a = r!(d).wrapping_add(off as i64 as u64);
                if CHECKED && !a.is_multiple_of(8) {
                    fail!(ErrorKind::MisalignedAtomic { addr: a, size: 8 });
                }
                check!(a, 8, true);
                // SAFETY: as for loads and stores.
                let old = unsafe { atomic64(op, a, r!(s), reg[0]) };
                match op {
                    AtomicOp::Cmpxchg => reg[0] = old,
                    AtomicOp::Xchg
                    | AtomicOp::Add { fetch: true }
                    | AtomicOp::Or { fetch: true }
                    | AtomicOp::And { fetch: true }
                    | AtomicOp::Xor { fetch: true } => r!(s) = old,
                    _ => {}
                }
            }
            I::Atomic32 { op, d, s, off } => {
                let a = r!(d).wrapping_add(off as i64 as u64);
                if CHECKED && !a.is_multiple_of(4) {
                    fail!(ErrorKind::MisalignedAtomic { addr: a, size: 4 });
                }
                check!(a, 4, true);
                // SAFETY: as for loads and stores.
                let old = u64::from(unsafe { atomic32(op, a, r!(s) as u32, reg[0] as u32) });
                match op {
                    AtomicOp::Cmpxchg => reg[0] = old,
                    AtomicOp::Xchg
                    | AtomicOp::Add { fetch: true }
                    | AtomicOp::Or { fetch: true }
                    | AtomicOp::And { fetch: true }
                    | AtomicOp::Xor { fetch: true } => r!(s) = old,
                    _ => {}
                }
            }

            I::Ja { t } => pc = t as usize,
            I::Jeq64K { d, k, t } => jmp!(r!(d) == k, t),
            I::Jeq64X { d, s, t } => jmp!(r!(d) == r!(s), t),
            I::Jne64K { d, k, t } => jmp!(r!(d) != k, t),
            I::Jne64X { d, s, t } => jmp!(r!(d) != r!(s), t),
            I::Jgt64K { d, k, t } => jmp!(r!(d) > k, t),
            I::Jgt64X { d, s, t } => jmp!(r!(d) > r!(s), t),
            I::Jge64K { d, k, t } => jmp!(r!(d) >= k, t),
            I::Jge64X { d, s, t } => jmp!(r!(d) >= r!(s), t),
            I::Jlt64K { d, k, t } => jmp!(r!(d) < k, t),
            I::Jlt64X { d, s, t } => jmp!(r!(d) < r!(s), t),
            I::Jle64K { d, k, t } => jmp!(r!(d) <= k, t),
            I::Jle64X { d, s, t } => jmp!(r!(d) <= r!(s), t),
            I::Jset64K { d, k, t } => jmp!(r!(d) & k != 0, t),
            I::Jset64X { d, s, t } => jmp!(r!(d) & r!(s) != 0, t),
            I::Jsgt64K { d, k, t } => jmp!((r!(d) as i64) > k as i64, t),
            I::Jsgt64X { d, s, t } => jmp!((r!(d) as i64) > r!(s) as i64, t),
            I::Jsge64K { d, k, t } => jmp!((r!(d) as i64) >= k as i64, t),
            I::Jsge64X { d, s, t } => jmp!((r!(d) as i64) >= r!(s) as i64, t),
            I::Jslt64K { d, k, t } => jmp!((r!(d) as i64) < k as i64, t),
            I::Jslt64X { d, s, t } => jmp!((r!(d) as i64) < r!(s) as i64, t),
            I::Jsle64K { d, k, t } => jmp!((r!(d) as i64) <= k as i64, t),
            I::Jsle64X { d, s, t } => jmp!((r!(d) as i64) <= r!(s) as i64, t),
            I::Jeq32K { d, k, t } => jmp!(r!(d) as u32 == k, t),
            I::Jeq32X { d, s, t } => jmp!(r!(d) as u32 == r!(s) as u32, t),
            I::Jne32K { d, k, t } => jmp!(r!(d) as u32 != k, t),
            I::Jne32X { d, s, t } => jmp!(r!(d) as u32 != r!(s) as u32, t),
            I::Jgt32K { d, k, t } => jmp!(r!(d) as u32 > k, t),
            I::Jgt32X { d, s, t } => jmp!(r!(d) as u32 > r!(s) as u32, t),
            I::Jge32K { d, k, t } => jmp!(r!(d) as u32 >= k, t),
            I::Jge32X { d, s, t } => jmp!(r!(d) as u32 >= r!(s) as u32, t),
            I::Jlt32K { d, k, t } => jmp!((r!(d) as u32) < k, t),
            I::Jlt32X { d, s, t } => jmp!((r!(d) as u32) < r!(s) as u32, t),
            I::Jle32K { d, k, t } => jmp!(r!(d) as u32 <= k, t),
            I::Jle32X { d, s, t } => jmp!(r!(d) as u32 <= r!(s) as u32, t),
            I::Jset32K { d, k, t } => jmp!(r!(d) as u32 & k != 0, t),
            I::Jset32X { d, s, t } => jmp!((r!(d) & r!(s)) as u32 != 0, t),
            I::Jsgt32K { d, k, t } => jmp!(r!(d) as i32 > k as i32, t),
            I::Jsgt32X { d, s, t } => jmp!(r!(d) as i32 > r!(s) as i32, t),
            I::Jsge32K { d, k, t } => jmp!(r!(d) as i32 >= k as i32, t),
            I::Jsge32X { d, s, t } => jmp!(r!(d) as i32 >= r!(s) as i32, t),
            I::Jslt32K { d, k, t } => jmp!((r!(d) as i32) < k as i32, t),
            I::Jslt32X { d, s, t } => jmp!((r!(d) as i32) < r!(s) as i32, t),
            I::Jsle32K { d, k, t } => jmp!(r!(d) as i32 <= k as i32, t),
            I::Jsle32X { d, s, t } => jmp!(r!(d) as i32 <= r!(s) as i32, t),

            I::Call { h } => {
                let helper = prog.helpers[h as usize];
                let ret = (helper.func)(reg[1], reg[2], reg[3], reg[4], reg[5]);
                reg[0] = ret;
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
                            let args = [reg[1], reg[2], reg[3], reg[4], reg[5]];
                            chk.regions.push(Region {
                                start: ret,
                                len: size(&args) as u64,
                                writable,
                            });
                        }
                    }
                }
            }
            I::TailCall => {
                let target = match ctx.tail_calls {
                    Some(hook) => hook.tail_call_target(reg[2], reg[3] as u32),
                    None => TailCallTarget::OutOfRange,
                };
                match target {
                    TailCallTarget::Program(vm) if tail_calls < MAX_TAIL_CALL_CNT => {
                        tail_calls += 1;
                        prog = vm.program();
                        code = &prog.code;
                        pc = 0;
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
            I::CallLocal { t } => {
                if depth + 1 >= MAX_CALL_FRAMES {
                    fail!(ErrorKind::CallDepth);
                }
                frames[depth] = Frame {
                    prog,
                    ret: pc as u32,
                    saved: [reg[6], reg[7], reg[8], reg[9]],
                    init: chk.init,
                };
                depth += 1;
                reg[10] -= STACK_SIZE as u64;
                // SAFETY: depth < MAX_CALL_FRAMES, so the new frame [r10 - STACK_SIZE, r10) lies
                // inside `stack`.
                unsafe { zero(reg[10] - STACK_SIZE as u64, STACK_SIZE) };
                pc = t as usize;
                if CHECKED {
                    chk.init = (chk.init & CALLER_SAVED) | FP;
                }
            }
            I::Exit => exit!(),
            I::FellOff => fail!(ErrorKind::FellOffEnd),
        }
    }
}
