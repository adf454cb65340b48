//! Static register liveness (`compute_live_registers`): which registers an instruction's
//! successors may read before writing them. Pruning ignores dead registers, and log level 2
//! prints the table as the kernel does.

use crate::env::{ArgType, Env, ProgType};
use crate::rules::unpriv::Privilege;
use bpfkit_isa::{AtomicOp, CallTarget, Insn, Op, Operand};

fn bit(r: u8) -> u16 {
    1 << r
}

/// Registers read (`use`) and written (`def`) by one instruction.
#[must_use]
pub fn use_def(op: &Op, env: &dyn Env, prog_type: ProgType) -> (u16, u16) {
    use_def_as(op, env, prog_type, Privilege::Privileged)
}

/// [`use_def`] for a loader with `privilege`: a helper it may not call has no prototype for
/// it, so the call is taken to read all five argument registers (`get_call_summary` fails).
#[must_use]
pub fn use_def_as(op: &Op, env: &dyn Env, prog_type: ProgType, privilege: Privilege) -> (u16, u16) {
    let src_bits = |s: &Operand| match s {
        Operand::Reg(r) => bit(r.num()),
        Operand::Imm(_) => 0,
    };
    match op {
        Op::Alu {
            op: bpfkit_isa::AluOp::Mov | bpfkit_isa::AluOp::Movsx(_),
            dst,
            src,
            ..
        } => (src_bits(src), bit(dst.num())),
        Op::Alu { dst, src, .. } => (bit(dst.num()) | src_bits(src), bit(dst.num())),
        Op::Neg { dst, .. } | Op::End { dst, .. } => (bit(dst.num()), bit(dst.num())),
        Op::LdImm64 { dst, .. } => (0, bit(dst.num())),
        // `compute_insn_live_regs` keeps its defaults for LD_ABS/LD_IND: every register is
        // used (the instruction may end the program).
        Op::LdAbs { .. } | Op::LdInd { .. } => (0x3ff, 0x3f),
        Op::Load { dst, src, .. } => (bit(src.num()), bit(dst.num())),
        Op::StoreImm { dst, .. } => (bit(dst.num()), 0),
        Op::StoreReg { dst, src, .. } => (bit(dst.num()) | bit(src.num()), 0),
        Op::Atomic { dst, src, op, .. } => {
            let mut u = bit(dst.num()) | bit(src.num());
            let mut d = 0;
            match op {
                AtomicOp::Cmpxchg => {
                    u |= bit(0);
                    d |= bit(0);
                }
                AtomicOp::Xchg => d |= bit(src.num()),
                AtomicOp::Add { fetch }
                | AtomicOp::Or { fetch }
                | AtomicOp::And { fetch }
                | AtomicOp::Xor { fetch } => {
                    if *fetch {
                        d |= bit(src.num());
                    }
                }
            }
            (u, d)
        }
        Op::Ja { .. } | Op::MayGoto { .. } => (0, 0),
        Op::LoadAcquire { dst, src, .. } => (bit(src.num()), bit(dst.num())),
        Op::StoreRelease { dst, src, .. } => (bit(dst.num()) | bit(src.num()), 0),
        Op::Jcond { dst, src, .. } => (bit(dst.num()) | src_bits(src), 0),
        Op::Call(CallTarget::Helper(id)) => {
            let hidden =
                !privilege.bpf_capable() && crate::rules::unpriv::CAPABLE_ONLY_HELPERS.contains(id);
            let proto = env.helper(prog_type, *id).filter(|_| !hidden);
            let args = proto.map_or(5, |p| {
                p.args
                    .iter()
                    .take_while(|a| **a != ArgType::DontCare)
                    .count()
            });
            let u = ((1u16 << (args + 1)) - 1) & !1;
            (u, 0x3f)
        }
        Op::Call(_) => (0x3e, 0x3f),
        Op::Exit => (bit(0), 0),
    }
}

/// Live-in register masks per instruction slot (bit `i` = register `i`), computed over the
/// decoded instructions `ops` (`None` for second LD_IMM64 slots and undecodable slots).
#[must_use]
pub fn live_in(insns: &[Insn], ops: &[Option<Op>], env: &dyn Env, prog_type: ProgType) -> Vec<u16> {
    live_in_as(insns, ops, env, prog_type, Privilege::Privileged)
}

/// [`live_in`] for a loader with `privilege` ([`use_def_as`]).
#[must_use]
pub fn live_in_as(
    insns: &[Insn],
    ops: &[Option<Op>],
    env: &dyn Env,
    prog_type: ProgType,
    privilege: Privilege,
) -> Vec<u16> {
    let n = insns.len();
    let ud: Vec<(u16, u16)> = ops
        .iter()
        .map(|o| {
            o.as_ref()
                .map_or((0, 0), |op| use_def_as(op, env, prog_type, privilege))
        })
        .collect();
    let succ = |i: usize| -> [Option<usize>; 2] {
        let Some(op) = &ops[i] else {
            return [None, None];
        };
        let next = |k: usize| if i + k < n { Some(i + k) } else { None };
        let tgt = |off: i64| {
            let t = i as i64 + 1 + off;
            if t >= 0 && (t as usize) < n {
                Some(t as usize)
            } else {
                None
            }
        };
        match op {
            Op::Exit => [None, None],
            Op::Ja { off, .. } => [tgt(i64::from(*off)), None],
            Op::Jcond { off, .. } | Op::MayGoto { off } => [next(1), tgt(i64::from(*off))],
            Op::LdImm64 { .. } => [next(2), None],
            _ => [next(1), None],
        }
    };
    let mut live = vec![0u16; n];
    let mut changed = true;
    while changed {
        changed = false;
        for i in (0..n).rev() {
            if ops[i].is_none() {
                continue;
            }
            let mut out = 0u16;
            for s in succ(i).into_iter().flatten() {
                out |= live[s];
            }
            let (u, d) = ud[i];
            let new = u | (out & !d);
            if new != live[i] {
                live[i] = new;
                changed = true;
            }
        }
    }
    live
}

/// The kernel's text for a live mask: `01........` (digit when live).
#[must_use]
pub fn mask_text(mask: u16) -> String {
    (0..10)
        .map(|r| {
            if mask & (1 << r) != 0 {
                char::from(b'0' + r as u8)
            } else {
                '.'
            }
        })
        .collect()
}

/// Registers that may hold a pointer before each instruction (a forward over-approximation):
/// `precise_in` uses it to tell pointer arithmetic from plain arithmetic.
#[must_use]
pub fn maybe_pointer_in(
    insns: &[Insn],
    ops: &[Option<Op>],
    env: &dyn Env,
    prog_type: ProgType,
    subprog_starts: &[usize],
) -> Vec<u16> {
    use crate::env::RetType;
    use bpfkit_isa::{AluOp, Width};
    let n = insns.len();
    let transfer = |op: &Op, inp: u16| -> u16 {
        let clear = |m: u16, r: u8| m & !bit(r);
        match op {
            Op::Alu {
                width: Width::W64,
                op: AluOp::Mov,
                dst,
                src: Operand::Reg(s),
            } => {
                let d = clear(inp, dst.num());
                if inp & bit(s.num()) != 0 {
                    d | bit(dst.num())
                } else {
                    d
                }
            }
            Op::Alu {
                width: Width::W64,
                op: AluOp::Add | AluOp::Sub,
                dst,
                src,
            } => {
                let src_ptr = matches!(src, Operand::Reg(s) if inp & bit(s.num()) != 0);
                if inp & bit(dst.num()) != 0 || src_ptr {
                    inp | bit(dst.num())
                } else {
                    inp
                }
            }
            Op::Alu { dst, .. } | Op::Neg { dst, .. } | Op::End { dst, .. } => {
                clear(inp, dst.num())
            }
            Op::LdImm64 { dst, pseudo, .. } => {
                if *pseudo == 0 {
                    clear(inp, dst.num())
                } else {
                    inp | bit(dst.num())
                }
            }
            // A load may fill a spilled pointer or read a packet pointer from the context.
            Op::Load { dst, .. } | Op::LoadAcquire { dst, .. } => inp | bit(dst.num()),
            Op::Atomic { src, op, .. } => match op {
                AtomicOp::Cmpxchg => clear(inp, 0),
                AtomicOp::Xchg => clear(inp, src.num()),
                AtomicOp::Add { fetch }
                | AtomicOp::Or { fetch }
                | AtomicOp::And { fetch }
                | AtomicOp::Xor { fetch } => {
                    if *fetch {
                        clear(inp, src.num())
                    } else {
                        inp
                    }
                }
            },
            Op::LdAbs { .. } | Op::LdInd { .. } => inp & !0x3f,
            Op::Call(CallTarget::Helper(id)) => {
                let scalar = env
                    .helper(prog_type, *id)
                    .is_some_and(|p| p.ret == RetType::Integer);
                (inp & !0x3f) | if scalar { 0 } else { 1 }
            }
            Op::Call(_) => (inp & !0x3f) | 1,
            _ => inp,
        }
    };
    let mut ptr = vec![0u16; n];
    let mut seen = vec![false; n];
    let mut work: Vec<usize> = Vec::new();
    for &s in subprog_starts {
        if s < n {
            // Entry: r1 may be the context or an argument pointer; r10 is the frame pointer.
            let entry = if s == 0 {
                bit(1) | bit(10)
            } else {
                0x3e | bit(10)
            };
            ptr[s] |= entry;
            seen[s] = true;
            work.push(s);
        }
    }
    while let Some(i) = work.pop() {
        let Some(op) = &ops[i] else { continue };
        let out = transfer(op, ptr[i]);
        let next = |k: usize| if i + k < n { Some(i + k) } else { None };
        let tgt = |off: i64| {
            let t = i as i64 + 1 + off;
            (t >= 0 && (t as usize) < n).then_some(t as usize)
        };
        let succs = match op {
            Op::Exit => [None, None],
            Op::Ja { off, .. } => [tgt(i64::from(*off)), None],
            Op::Jcond { off, .. } | Op::MayGoto { off } => [next(1), tgt(i64::from(*off))],
            Op::LdImm64 { .. } => [next(2), None],
            _ => [next(1), None],
        };
        for s in succs.into_iter().flatten() {
            if !seen[s] || ptr[s] | out != ptr[s] {
                seen[s] = true;
                ptr[s] |= out;
                work.push(s);
            }
        }
    }
    ptr
}

/// Registers whose scalar value may matter after each instruction (a static stand-in for the
/// kernel's precision marks, `mark_chain_precision`): a scalar's bounds matter when they can
/// reach a conditional jump, pointer arithmetic, a helper's size argument, a call argument or
/// a subprogram's return value. Pruning compares only those scalars by value; the others need
/// only be scalars. Over-approximating the kernel's per-path marks keeps pruning sound.
#[must_use]
pub fn precise_in(
    insns: &[Insn],
    ops: &[Option<Op>],
    env: &dyn Env,
    prog_type: ProgType,
    in_subprog: &dyn Fn(usize) -> bool,
    maybe_ptr: &[u16],
) -> Vec<u16> {
    use bpfkit_isa::AluOp;
    let n = insns.len();
    let reg = |o: &Operand| match o {
        Operand::Reg(r) => bit(r.num()),
        Operand::Imm(_) => 0,
    };
    let transfer = |i: usize, op: &Op, out: u16| -> u16 {
        match op {
            Op::Alu {
                op: AluOp::Mov,
                dst,
                src,
                ..
            } => {
                let d = bit(dst.num());
                (out & !d) | if out & d != 0 { reg(src) } else { 0 }
            }
            Op::Alu {
                op: AluOp::Movsx(_),
                dst,
                src,
                ..
            } => {
                let d = bit(dst.num());
                (out & !d) | if out & d != 0 { reg(src) } else { 0 }
            }
            Op::Alu {
                op: AluOp::Add | AluOp::Sub,
                dst,
                src: src @ Operand::Reg(_),
                ..
            } if maybe_ptr
                .get(i)
                .is_some_and(|m| m & (bit(dst.num()) | reg(src)) != 0) =>
            {
                // Possibly pointer arithmetic: both operands matter.
                out | bit(dst.num()) | reg(src)
            }
            Op::Alu { dst, src, .. } => {
                let d = bit(dst.num());
                if out & d != 0 {
                    out | reg(src)
                } else {
                    out
                }
            }
            Op::Neg { .. } | Op::End { .. } => out,
            Op::LdImm64 { dst, .. } | Op::Load { dst, .. } | Op::LoadAcquire { dst, .. } => {
                out & !bit(dst.num())
            }
            Op::LdAbs { .. } | Op::LdInd { .. } => out & !0x3f,
            Op::Atomic { .. }
            | Op::StoreImm { .. }
            | Op::StoreReg { .. }
            | Op::StoreRelease { .. } => out,
            Op::Ja { .. } | Op::MayGoto { .. } => out,
            Op::Jcond { dst, src, .. } => out | bit(dst.num()) | reg(src),
            Op::Call(CallTarget::Helper(id)) => {
                let sizes = env.helper(prog_type, *id).map_or(0x3e, |p| {
                    p.args.iter().enumerate().fold(0u16, |m, (k, a)| {
                        if matches!(a, ArgType::ConstSize | ArgType::ConstSizeOrZero) {
                            m | bit(k as u8 + 1)
                        } else {
                            m
                        }
                    })
                });
                (out & !0x3f) | sizes
            }
            Op::Call(_) => (out & !0x3f) | 0x3e,
            Op::Exit => {
                // The main program's r0 matters where its range is checked at exit.
                if in_subprog(i) || crate::rules::return_code::checks_exit_value(prog_type) {
                    bit(0)
                } else {
                    0
                }
            }
        }
    };
    let succ = |i: usize, op: &Op| -> [Option<usize>; 2] {
        let next = |k: usize| if i + k < n { Some(i + k) } else { None };
        let tgt = |off: i64| {
            let t = i as i64 + 1 + off;
            (t >= 0 && (t as usize) < n).then_some(t as usize)
        };
        match op {
            Op::Exit => [None, None],
            Op::Ja { off, .. } => [tgt(i64::from(*off)), None],
            Op::Jcond { off, .. } | Op::MayGoto { off } => [next(1), tgt(i64::from(*off))],
            Op::LdImm64 { .. } => [next(2), None],
            _ => [next(1), None],
        }
    };
    let mut prec = vec![0u16; n];
    let mut changed = true;
    while changed {
        changed = false;
        for i in (0..n).rev() {
            let Some(op) = &ops[i] else { continue };
            let mut out = 0u16;
            for s in succ(i, op).into_iter().flatten() {
                out |= prec[s];
            }
            let new = transfer(i, op, out);
            if new != prec[i] {
                prec[i] = new;
                changed = true;
            }
        }
    }
    prec
}
