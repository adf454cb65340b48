//! Superinstructions for the fast interpreter: common instruction sequences of compiled eBPF
//! fused into one dispatch.
//!
//! eBPF is a two-address ISA without rotates, so compilers emit recognisable sequences:
//! - `rD = rS; rD op= K|rX` wherever a three-address operation is needed ([`Opc::Add64KS`],
//!   [`Opc::Xor32XS`], ...);
//! - the packet bounds check `rD = rS; rD += N; if rD > rEnd goto out` before every packet
//!   access ([`Opc::MovAddJgt64`]);
//! - the rotate `wS = wD; wS >>= A; wD <<= B; wD |= wS` of every hash function
//!   ([`Opc::Funnel32`]);
//! - constant pairs: multiply-accumulate and multiplicative hashing (`*=` then `+=` / `>>=`),
//!   bit-field extraction (`>>=` / `<<=` then `&=`, `&=` then `>>=`) ([`Opc::MulAdd32KK`], ...).
//!
//! Each fused instruction does the work of the whole sequence and continues after it.
//!
//! Fused code keeps every index: the fused instruction replaces the first of the sequence and
//! the others stay in place (they are skipped, never reached). A sequence is fused only when no
//! jump, call or return can land inside it, so every jump target still holds the instruction it
//! held. The checked interpreter runs the unfused code, one instruction per step; the
//! `fusion` property test checks that both agree.

use crate::code::{Opc, I};

/// The fast code for `code` (which ends with the `FellOff` trap).
pub(crate) fn fuse(code: &[I]) -> Vec<I> {
    let mut target = vec![false; code.len()];
    target[0] = true;
    for i in code {
        if is_jump(i.op) || i.op == Opc::CallLocal {
            if let Some(t) = target.get_mut(i.t as usize) {
                *t = true;
            }
        }
    }
    let mut fast = code.to_vec();
    let mut j = 0;
    while j + 1 < code.len() {
        let (a, b) = (code[j], code[j + 1]);
        if target[j + 1] {
            j += 1;
            continue;
        }
        // The bounds-check idiom, three instructions.
        if let Some(&c) = code.get(j + 2) {
            if !target[j + 2]
                && a.op == Opc::Mov64X
                && b.op == Opc::Add64K
                && c.op == Opc::Jgt64X
                && b.d == a.d
                && c.d == a.d
            {
                fast[j] = I {
                    op: Opc::MovAddJgt64,
                    d: a.d,
                    s: a.s,
                    x: c.s,
                    t: c.t,
                    k: b.k,
                };
                j += 3;
                continue;
            }
        }
        if let (Some(&c), Some(&e)) = (code.get(j + 2), code.get(j + 3)) {
            // The rotate idiom: `mov32 s, d; rsh32 s, k1; lsh32 d, k2; or32 d, s`.
            if !target[j + 2]
                && !target[j + 3]
                && a.op == Opc::Mov32X
                && b.op == Opc::Rsh32K
                && c.op == Opc::Lsh32K
                && e.op == Opc::Or32X
                && b.d == a.d
                && c.d == a.s
                && e.d == a.s
                && e.s == a.d
                && a.d != a.s
            {
                let k = (b.k & 31) | ((c.k & 31) << 32);
                fast[j] = I {
                    op: Opc::Funnel32,
                    d: a.s,
                    s: a.d,
                    x: 0,
                    t: 0,
                    k,
                };
                j += 4;
                continue;
            }
        }
        if let Some(op) = k_pair(a.op, b.op).filter(|_| a.d == b.d) {
            // Both immediates in one word: their low 32 bits are the instructions' immediates.
            let k = (a.k & 0xffff_ffff) | ((b.k & 0xffff_ffff) << 32);
            fast[j] = I {
                op,
                d: a.d,
                s: 0,
                x: 0,
                t: 0,
                k,
            };
            j += 2;
            continue;
        }
        if let Some(op) = three_address(a, b) {
            // `rD = rS; rD op= rX` reads rX after the move: if X is D, it reads S.
            let x = if b.s == a.d { a.s } else { b.s };
            fast[j] = I {
                op,
                d: a.d,
                s: a.s,
                x,
                t: 0,
                k: b.k,
            };
            j += 2;
            continue;
        }
        j += 1;
    }
    fast
}

/// The fused opcode for two constant operations on one register, `a; b`.
fn k_pair(a: Opc, b: Opc) -> Option<Opc> {
    use Opc as O;
    Some(match (a, b) {
        (O::Mul32K, O::Add32K) => O::MulAdd32KK,
        (O::Mul32K, O::Rsh32K) => O::MulRsh32KK,
        (O::Rsh32K, O::And32K) => O::RshAnd32KK,
        (O::And32K, O::Rsh32K) => O::AndRsh32KK,
        (O::Lsh32K, O::And32K) => O::LshAnd32KK,
        (O::Rsh64K, O::And64K) => O::RshAnd64KK,
        (O::And64K, O::Rsh64K) => O::AndRsh64KK,
        _ => return None,
    })
}

/// The fused opcode for `a; b` when `a` is a move into the register `b` operates on.
fn three_address(a: I, b: I) -> Option<Opc> {
    use Opc as O;
    if b.d != a.d {
        return None;
    }
    Some(match (a.op, b.op) {
        (O::Mov64X, O::Add64K) => O::Add64KS,
        (O::Mov64X, O::Sub64K) => O::Sub64KS,
        (O::Mov64X, O::Mul64K) => O::Mul64KS,
        (O::Mov64X, O::Or64K) => O::Or64KS,
        (O::Mov64X, O::And64K) => O::And64KS,
        (O::Mov64X, O::Xor64K) => O::Xor64KS,
        (O::Mov64X, O::Lsh64K) => O::Lsh64KS,
        (O::Mov64X, O::Rsh64K) => O::Rsh64KS,
        (O::Mov64X, O::Arsh64K) => O::Arsh64KS,
        (O::Mov64X, O::Add64X) => O::Add64XS,
        (O::Mov64X, O::Sub64X) => O::Sub64XS,
        (O::Mov64X, O::Mul64X) => O::Mul64XS,
        (O::Mov64X, O::Or64X) => O::Or64XS,
        (O::Mov64X, O::And64X) => O::And64XS,
        (O::Mov64X, O::Xor64X) => O::Xor64XS,
        (O::Mov64X, O::Lsh64X) => O::Lsh64XS,
        (O::Mov64X, O::Rsh64X) => O::Rsh64XS,
        (O::Mov64X, O::Arsh64X) => O::Arsh64XS,
        (O::Mov32X, O::Add32K) => O::Add32KS,
        (O::Mov32X, O::Sub32K) => O::Sub32KS,
        (O::Mov32X, O::Mul32K) => O::Mul32KS,
        (O::Mov32X, O::Or32K) => O::Or32KS,
        (O::Mov32X, O::And32K) => O::And32KS,
        (O::Mov32X, O::Xor32K) => O::Xor32KS,
        (O::Mov32X, O::Lsh32K) => O::Lsh32KS,
        (O::Mov32X, O::Rsh32K) => O::Rsh32KS,
        (O::Mov32X, O::Arsh32K) => O::Arsh32KS,
        (O::Mov32X, O::Add32X) => O::Add32XS,
        (O::Mov32X, O::Sub32X) => O::Sub32XS,
        (O::Mov32X, O::Mul32X) => O::Mul32XS,
        (O::Mov32X, O::Or32X) => O::Or32XS,
        (O::Mov32X, O::And32X) => O::And32XS,
        (O::Mov32X, O::Xor32X) => O::Xor32XS,
        (O::Mov32X, O::Lsh32X) => O::Lsh32XS,
        (O::Mov32X, O::Rsh32X) => O::Rsh32XS,
        (O::Mov32X, O::Arsh32X) => O::Arsh32XS,
        _ => return None,
    })
}

/// Whether `op` may continue at its `t` field (every jump of the unfused code).
fn is_jump(op: Opc) -> bool {
    use Opc as O;
    matches!(
        op,
        O::Ja
            | O::MayGoto
            | O::Jeq64K
            | O::Jeq64X
            | O::Jne64K
            | O::Jne64X
            | O::Jgt64K
            | O::Jgt64X
            | O::Jge64K
            | O::Jge64X
            | O::Jlt64K
            | O::Jlt64X
            | O::Jle64K
            | O::Jle64X
            | O::Jset64K
            | O::Jset64X
            | O::Jsgt64K
            | O::Jsgt64X
            | O::Jsge64K
            | O::Jsge64X
            | O::Jslt64K
            | O::Jslt64X
            | O::Jsle64K
            | O::Jsle64X
            | O::Jeq32K
            | O::Jeq32X
            | O::Jne32K
            | O::Jne32X
            | O::Jgt32K
            | O::Jgt32X
            | O::Jge32K
            | O::Jge32X
            | O::Jlt32K
            | O::Jlt32X
            | O::Jle32K
            | O::Jle32X
            | O::Jset32K
            | O::Jset32X
            | O::Jsgt32K
            | O::Jsgt32X
            | O::Jsge32K
            | O::Jsge32X
            | O::Jslt32K
            | O::Jslt32X
            | O::Jsle32K
            | O::Jsle32X
    )
}
