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
use crate::code::{atomic_op, bit, Opc, CALLEE_SAVED, CALLER_SAVED, FP, I};
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
        let i: &I = &code[pc];
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
        match i.op {
            Opc::Add64K => {
                let (d, k) = (i.d, i.k);
                r!(d) = r!(d).wrapping_add(k);
            }
            Opc::Add64X => {
                let (d, s) = (i.d, i.s);
                r!(d) = r!(d).wrapping_add(r!(s));
            }
            Opc::Sub64K => {
                let (d, k) = (i.d, i.k);
                r!(d) = r!(d).wrapping_sub(k);
            }
            Opc::Sub64X => {
                let (d, s) = (i.d, i.s);
                r!(d) = r!(d).wrapping_sub(r!(s));
            }
            Opc::Mul64K => {
                let (d, k) = (i.d, i.k);
                r!(d) = r!(d).wrapping_mul(k);
            }
            Opc::Mul64X => {
                let (d, s) = (i.d, i.s);
                r!(d) = r!(d).wrapping_mul(r!(s));
            }
            Opc::Div64K => {
                let (d, k) = (i.d, i.k);
                r!(d) = div64(r!(d), k);
            }
            Opc::Div64X => {
                let (d, s) = (i.d, i.s);
                r!(d) = div64(r!(d), r!(s));
            }
            Opc::Sdiv64K => {
                let (d, k) = (i.d, i.k);
                r!(d) = sdiv64(r!(d), k);
            }
            Opc::Sdiv64X => {
                let (d, s) = (i.d, i.s);
                r!(d) = sdiv64(r!(d), r!(s));
            }
            Opc::Mod64K => {
                let (d, k) = (i.d, i.k);
                r!(d) = mod64(r!(d), k);
            }
            Opc::Mod64X => {
                let (d, s) = (i.d, i.s);
                r!(d) = mod64(r!(d), r!(s));
            }
            Opc::Smod64K => {
                let (d, k) = (i.d, i.k);
                r!(d) = smod64(r!(d), k);
            }
            Opc::Smod64X => {
                let (d, s) = (i.d, i.s);
                r!(d) = smod64(r!(d), r!(s));
            }
            Opc::Or64K => {
                let (d, k) = (i.d, i.k);
                r!(d) |= k;
            }
            Opc::Or64X => {
                let (d, s) = (i.d, i.s);
                r!(d) |= r!(s);
            }
            Opc::And64K => {
                let (d, k) = (i.d, i.k);
                r!(d) &= k;
            }
            Opc::And64X => {
                let (d, s) = (i.d, i.s);
                r!(d) &= r!(s);
            }
            Opc::Xor64K => {
                let (d, k) = (i.d, i.k);
                r!(d) ^= k;
            }
            Opc::Xor64X => {
                let (d, s) = (i.d, i.s);
                r!(d) ^= r!(s);
            }
            Opc::Lsh64K => {
                let (d, k) = (i.d, i.k as u32);
                r!(d) <<= k & 63;
            }
            Opc::Lsh64X => {
                let (d, s) = (i.d, i.s);
                r!(d) <<= r!(s) & 63;
            }
            Opc::Rsh64K => {
                let (d, k) = (i.d, i.k as u32);
                r!(d) >>= k & 63;
            }
            Opc::Rsh64X => {
                let (d, s) = (i.d, i.s);
                r!(d) >>= r!(s) & 63;
            }
            Opc::Arsh64K => {
                let (d, k) = (i.d, i.k as u32);
                r!(d) = ((r!(d) as i64) >> (k & 63)) as u64;
            }
            Opc::Arsh64X => {
                let (d, s) = (i.d, i.s);
                r!(d) = ((r!(d) as i64) >> (r!(s) & 63)) as u64;
            }
            Opc::Mov64K => {
                let (d, k) = (i.d, i.k);
                r!(d) = k;
            }
            Opc::Mov64X => {
                let (d, s) = (i.d, i.s);
                r!(d) = r!(s);
            }
            Opc::Neg64 => {
                let d = i.d;
                r!(d) = r!(d).wrapping_neg();
            }

            Opc::Add32K => {
                let (d, k) = (i.d, i.k as u32);
                r!(d) = u64::from((r!(d) as u32).wrapping_add(k));
            }
            Opc::Add32X => {
                let (d, s) = (i.d, i.s);
                r!(d) = u64::from((r!(d) as u32).wrapping_add(r!(s) as u32));
            }
            Opc::Sub32K => {
                let (d, k) = (i.d, i.k as u32);
                r!(d) = u64::from((r!(d) as u32).wrapping_sub(k));
            }
            Opc::Sub32X => {
                let (d, s) = (i.d, i.s);
                r!(d) = u64::from((r!(d) as u32).wrapping_sub(r!(s) as u32));
            }
            Opc::Mul32K => {
                let (d, k) = (i.d, i.k as u32);
                r!(d) = u64::from((r!(d) as u32).wrapping_mul(k));
            }
            Opc::Mul32X => {
                let (d, s) = (i.d, i.s);
                r!(d) = u64::from((r!(d) as u32).wrapping_mul(r!(s) as u32));
            }
            Opc::Div32K => {
                let (d, k) = (i.d, i.k as u32);
                r!(d) = div32(r!(d), k);
            }
            Opc::Div32X => {
                let (d, s) = (i.d, i.s);
                r!(d) = div32(r!(d), r!(s) as u32);
            }
            Opc::Sdiv32K => {
                let (d, k) = (i.d, i.k as u32);
                r!(d) = sdiv32(r!(d), k);
            }
            Opc::Sdiv32X => {
                let (d, s) = (i.d, i.s);
                r!(d) = sdiv32(r!(d), r!(s) as u32);
            }
            Opc::Mod32K => {
                let (d, k) = (i.d, i.k as u32);
                r!(d) = mod32(r!(d), k);
            }
            Opc::Mod32X => {
                let (d, s) = (i.d, i.s);
                r!(d) = mod32(r!(d), r!(s) as u32);
            }
            Opc::Smod32K => {
                let (d, k) = (i.d, i.k as u32);
                r!(d) = smod32(r!(d), k);
            }
            Opc::Smod32X => {
                let (d, s) = (i.d, i.s);
                r!(d) = smod32(r!(d), r!(s) as u32);
            }
            Opc::Or32K => {
                let (d, k) = (i.d, i.k as u32);
                r!(d) = u64::from(r!(d) as u32 | k);
            }
            Opc::Or32X => {
                let (d, s) = (i.d, i.s);
                r!(d) = u64::from((r!(d) | r!(s)) as u32);
            }
            Opc::And32K => {
                let (d, k) = (i.d, i.k as u32);
                r!(d) = u64::from(r!(d) as u32 & k);
            }
            Opc::And32X => {
                let (d, s) = (i.d, i.s);
                r!(d) = u64::from((r!(d) & r!(s)) as u32);
            }
            Opc::Xor32K => {
                let (d, k) = (i.d, i.k as u32);
                r!(d) = u64::from(r!(d) as u32 ^ k);
            }
            Opc::Xor32X => {
                let (d, s) = (i.d, i.s);
                r!(d) = u64::from((r!(d) ^ r!(s)) as u32);
            }
            Opc::Lsh32K => {
                let (d, k) = (i.d, i.k as u32);
                r!(d) = u64::from((r!(d) as u32) << (k & 31));
            }
            Opc::Lsh32X => {
                let (d, s) = (i.d, i.s);
                r!(d) = u64::from((r!(d) as u32) << (r!(s) & 31));
            }
            Opc::Rsh32K => {
                let (d, k) = (i.d, i.k as u32);
                r!(d) = u64::from((r!(d) as u32) >> (k & 31));
            }
            Opc::Rsh32X => {
                let (d, s) = (i.d, i.s);
                r!(d) = u64::from((r!(d) as u32) >> (r!(s) & 31));
            }
            Opc::Arsh32K => {
                let (d, k) = (i.d, i.k as u32);
                r!(d) = u64::from(((r!(d) as i32) >> (k & 31)) as u32);
            }
            Opc::Arsh32X => {
                let (d, s) = (i.d, i.s);
                r!(d) = u64::from(((r!(d) as i32) >> (r!(s) & 31)) as u32);
            }
            Opc::Mov32K => {
                let (d, k) = (i.d, i.k as u32);
                r!(d) = u64::from(k);
            }
            Opc::Mov32X => {
                let (d, s) = (i.d, i.s);
                r!(d) = u64::from(r!(s) as u32);
            }
            Opc::Neg32 => {
                let d = i.d;
                r!(d) = u64::from((r!(d) as u32).wrapping_neg());
            }

            Opc::Movsx8To64 => {
                let (d, s) = (i.d, i.s);
                r!(d) = r!(s) as i8 as i64 as u64;
            }
            Opc::Movsx16To64 => {
                let (d, s) = (i.d, i.s);
                r!(d) = r!(s) as i16 as i64 as u64;
            }
            Opc::Movsx32To64 => {
                let (d, s) = (i.d, i.s);
                r!(d) = r!(s) as i32 as i64 as u64;
            }
            Opc::Movsx8To32 => {
                let (d, s) = (i.d, i.s);
                r!(d) = u64::from(r!(s) as i8 as i32 as u32);
            }
            Opc::Movsx16To32 => {
                let (d, s) = (i.d, i.s);
                r!(d) = u64::from(r!(s) as i16 as i32 as u32);
            }

            Opc::Le16 => {
                let d = i.d;
                r!(d) = u64::from((r!(d) as u16).to_le());
            }
            Opc::Le32 => {
                let d = i.d;
                r!(d) = u64::from((r!(d) as u32).to_le());
            }
            Opc::Le64 => {
                let d = i.d;
                r!(d) = r!(d).to_le();
            }
            Opc::Be16 => {
                let d = i.d;
                r!(d) = u64::from((r!(d) as u16).to_be());
            }
            Opc::Be32 => {
                let d = i.d;
                r!(d) = u64::from((r!(d) as u32).to_be());
            }
            Opc::Be64 => {
                let d = i.d;
                r!(d) = r!(d).to_be();
            }
            Opc::Swap16 => {
                let d = i.d;
                r!(d) = u64::from((r!(d) as u16).swap_bytes());
            }
            Opc::Swap32 => {
                let d = i.d;
                r!(d) = u64::from((r!(d) as u32).swap_bytes());
            }
            Opc::Swap64 => {
                let d = i.d;
                r!(d) = r!(d).swap_bytes();
            }

            Opc::LdImm64 => {
                let (d, k) = (i.d, i.k);
                r!(d) = k;
            }
            Opc::LdAbs => {
                let (size, k) = (i.x, i.k as i32);
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
            Opc::LdInd => {
                let (size, s, k) = (i.x, i.s, i.k as i32);
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

            Opc::Ldx8 => {
                let (d, s, off) = (i.d, i.s, i.k as i64);
                ldx!(u8, d, s, off, u64::from);
            }
            Opc::Ldx16 => {
                let (d, s, off) = (i.d, i.s, i.k as i64);
                ldx!(u16, d, s, off, u64::from);
            }
            Opc::Ldx32 => {
                let (d, s, off) = (i.d, i.s, i.k as i64);
                ldx!(u32, d, s, off, u64::from);
            }
            Opc::Ldx64 => {
                let (d, s, off) = (i.d, i.s, i.k as i64);
                ldx!(u64, d, s, off, |v| v);
            }
            Opc::Ldxs8 => {
                let (d, s, off) = (i.d, i.s, i.k as i64);
                ldx!(i8, d, s, off, |v: i8| v as i64 as u64);
            }
            Opc::Ldxs16 => {
                let (d, s, off) = (i.d, i.s, i.k as i64);
                ldx!(i16, d, s, off, |v: i16| v as i64 as u64);
            }
            Opc::Ldxs32 => {
                let (d, s, off) = (i.d, i.s, i.k as i64);
                ldx!(i32, d, s, off, |v: i32| v as i64 as u64);
            }
            Opc::St8 => {
                let (d, off, k) = (i.d, i.t as i32, i.k);
                st!(u8, d, off, k);
            }
            Opc::St16 => {
                let (d, off, k) = (i.d, i.t as i32, i.k);
                st!(u16, d, off, k);
            }
            Opc::St32 => {
                let (d, off, k) = (i.d, i.t as i32, i.k);
                st!(u32, d, off, k);
            }
            Opc::St64 => {
                let (d, off, k) = (i.d, i.t as i32, i.k);
                st!(u64, d, off, k as i64);
            }
            Opc::Stx8 => {
                let (d, s, off) = (i.d, i.s, i.k as i64);
                st!(u8, d, off, r!(s));
            }
            Opc::Stx16 => {
                let (d, s, off) = (i.d, i.s, i.k as i64);
                st!(u16, d, off, r!(s));
            }
            Opc::Stx32 => {
                let (d, s, off) = (i.d, i.s, i.k as i64);
                st!(u32, d, off, r!(s));
            }
            Opc::Stx64 => {
                let (d, s, off) = (i.d, i.s, i.k as i64);
                st!(u64, d, off, r!(s));
            }
            Opc::Atomic64 => {
                let (op, d, s, off) = (atomic_op(i.x), i.d, i.s, i.k as i64);
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
            Opc::Atomic32 => {
                let (op, d, s, off) = (atomic_op(i.x), i.d, i.s, i.k as i64);
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

            Opc::Ja => {
                let t = i.t;
                pc = t as usize;
            }
            Opc::Jeq64K => {
                let (d, k, t) = (i.d, i.k, i.t);
                jmp!(r!(d) == k, t);
            }
            Opc::Jeq64X => {
                let (d, s, t) = (i.d, i.s, i.t);
                jmp!(r!(d) == r!(s), t);
            }
            Opc::Jne64K => {
                let (d, k, t) = (i.d, i.k, i.t);
                jmp!(r!(d) != k, t);
            }
            Opc::Jne64X => {
                let (d, s, t) = (i.d, i.s, i.t);
                jmp!(r!(d) != r!(s), t);
            }
            Opc::Jgt64K => {
                let (d, k, t) = (i.d, i.k, i.t);
                jmp!(r!(d) > k, t);
            }
            Opc::Jgt64X => {
                let (d, s, t) = (i.d, i.s, i.t);
                jmp!(r!(d) > r!(s), t);
            }
            Opc::Jge64K => {
                let (d, k, t) = (i.d, i.k, i.t);
                jmp!(r!(d) >= k, t);
            }
            Opc::Jge64X => {
                let (d, s, t) = (i.d, i.s, i.t);
                jmp!(r!(d) >= r!(s), t);
            }
            Opc::Jlt64K => {
                let (d, k, t) = (i.d, i.k, i.t);
                jmp!(r!(d) < k, t);
            }
            Opc::Jlt64X => {
                let (d, s, t) = (i.d, i.s, i.t);
                jmp!(r!(d) < r!(s), t);
            }
            Opc::Jle64K => {
                let (d, k, t) = (i.d, i.k, i.t);
                jmp!(r!(d) <= k, t);
            }
            Opc::Jle64X => {
                let (d, s, t) = (i.d, i.s, i.t);
                jmp!(r!(d) <= r!(s), t);
            }
            Opc::Jset64K => {
                let (d, k, t) = (i.d, i.k, i.t);
                jmp!(r!(d) & k != 0, t);
            }
            Opc::Jset64X => {
                let (d, s, t) = (i.d, i.s, i.t);
                jmp!(r!(d) & r!(s) != 0, t);
            }
            Opc::Jsgt64K => {
                let (d, k, t) = (i.d, i.k, i.t);
                jmp!((r!(d) as i64) > k as i64, t);
            }
            Opc::Jsgt64X => {
                let (d, s, t) = (i.d, i.s, i.t);
                jmp!((r!(d) as i64) > r!(s) as i64, t);
            }
            Opc::Jsge64K => {
                let (d, k, t) = (i.d, i.k, i.t);
                jmp!((r!(d) as i64) >= k as i64, t);
            }
            Opc::Jsge64X => {
                let (d, s, t) = (i.d, i.s, i.t);
                jmp!((r!(d) as i64) >= r!(s) as i64, t);
            }
            Opc::Jslt64K => {
                let (d, k, t) = (i.d, i.k, i.t);
                jmp!((r!(d) as i64) < k as i64, t);
            }
            Opc::Jslt64X => {
                let (d, s, t) = (i.d, i.s, i.t);
                jmp!((r!(d) as i64) < r!(s) as i64, t);
            }
            Opc::Jsle64K => {
                let (d, k, t) = (i.d, i.k, i.t);
                jmp!((r!(d) as i64) <= k as i64, t);
            }
            Opc::Jsle64X => {
                let (d, s, t) = (i.d, i.s, i.t);
                jmp!((r!(d) as i64) <= r!(s) as i64, t);
            }
            Opc::Jeq32K => {
                let (d, k, t) = (i.d, i.k as u32, i.t);
                jmp!(r!(d) as u32 == k, t);
            }
            Opc::Jeq32X => {
                let (d, s, t) = (i.d, i.s, i.t);
                jmp!(r!(d) as u32 == r!(s) as u32, t);
            }
            Opc::Jne32K => {
                let (d, k, t) = (i.d, i.k as u32, i.t);
                jmp!(r!(d) as u32 != k, t);
            }
            Opc::Jne32X => {
                let (d, s, t) = (i.d, i.s, i.t);
                jmp!(r!(d) as u32 != r!(s) as u32, t);
            }
            Opc::Jgt32K => {
                let (d, k, t) = (i.d, i.k as u32, i.t);
                jmp!(r!(d) as u32 > k, t);
            }
            Opc::Jgt32X => {
                let (d, s, t) = (i.d, i.s, i.t);
                jmp!(r!(d) as u32 > r!(s) as u32, t);
            }
            Opc::Jge32K => {
                let (d, k, t) = (i.d, i.k as u32, i.t);
                jmp!(r!(d) as u32 >= k, t);
            }
            Opc::Jge32X => {
                let (d, s, t) = (i.d, i.s, i.t);
                jmp!(r!(d) as u32 >= r!(s) as u32, t);
            }
            Opc::Jlt32K => {
                let (d, k, t) = (i.d, i.k as u32, i.t);
                jmp!((r!(d) as u32) < k, t);
            }
            Opc::Jlt32X => {
                let (d, s, t) = (i.d, i.s, i.t);
                jmp!((r!(d) as u32) < r!(s) as u32, t);
            }
            Opc::Jle32K => {
                let (d, k, t) = (i.d, i.k as u32, i.t);
                jmp!(r!(d) as u32 <= k, t);
            }
            Opc::Jle32X => {
                let (d, s, t) = (i.d, i.s, i.t);
                jmp!(r!(d) as u32 <= r!(s) as u32, t);
            }
            Opc::Jset32K => {
                let (d, k, t) = (i.d, i.k as u32, i.t);
                jmp!(r!(d) as u32 & k != 0, t);
            }
            Opc::Jset32X => {
                let (d, s, t) = (i.d, i.s, i.t);
                jmp!((r!(d) & r!(s)) as u32 != 0, t);
            }
            Opc::Jsgt32K => {
                let (d, k, t) = (i.d, i.k as u32, i.t);
                jmp!(r!(d) as i32 > k as i32, t);
            }
            Opc::Jsgt32X => {
                let (d, s, t) = (i.d, i.s, i.t);
                jmp!(r!(d) as i32 > r!(s) as i32, t);
            }
            Opc::Jsge32K => {
                let (d, k, t) = (i.d, i.k as u32, i.t);
                jmp!(r!(d) as i32 >= k as i32, t);
            }
            Opc::Jsge32X => {
                let (d, s, t) = (i.d, i.s, i.t);
                jmp!(r!(d) as i32 >= r!(s) as i32, t);
            }
            Opc::Jslt32K => {
                let (d, k, t) = (i.d, i.k as u32, i.t);
                jmp!((r!(d) as i32) < k as i32, t);
            }
            Opc::Jslt32X => {
                let (d, s, t) = (i.d, i.s, i.t);
                jmp!((r!(d) as i32) < r!(s) as i32, t);
            }
            Opc::Jsle32K => {
                let (d, k, t) = (i.d, i.k as u32, i.t);
                jmp!(r!(d) as i32 <= k as i32, t);
            }
            Opc::Jsle32X => {
                let (d, s, t) = (i.d, i.s, i.t);
                jmp!(r!(d) as i32 <= r!(s) as i32, t);
            }

            Opc::Call => {
                let h = i.t;
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
            Opc::TailCall => {
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
            Opc::CallLocal => {
                let t = i.t;
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
            Opc::Exit => exit!(),
            Opc::FellOff => fail!(ErrorKind::FellOffEnd),
        }
    }
}
