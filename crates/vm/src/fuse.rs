//! Superinstructions for the fast interpreter: common instruction sequences of compiled eBPF
//! fused into one dispatch.
//!
//! eBPF is a two-address ISA without rotates, so compilers emit recognisable sequences:
//! - `rD = rS; rD op= K|rX` wherever a three-address operation is needed ([`Opc::Add64KS`],
//!   [`Opc::Xor32XS`], ...);
//! - the packet bounds check `rD = rS; rD += N; if rD > rEnd goto out` before every packet
//!   access ([`Opc::MovAddJgt64`]);
//! - the rotate `wS = wD; wS >>= A; wD <<= B; wD |= wS` of every hash function
//!   ([`Opc::Funnel32`]) and the xorshift step `rA = rB; rA >>= K; rA ^= rB` of hash finalisers
//!   ([`Opc::XorRsh32`], ...);
//! - constant pairs: multiply-accumulate and multiplicative hashing (`*=` then `+=` / `>>=`),
//!   bit-field extraction (`>>=` / `<<=` then `&=`, `&=` then `>>=`) ([`Opc::MulAdd32KK`], ...).
//!
//! Each fused instruction does the work of the whole sequence and continues after it.
//!
//! Then [`forward`] marks instructions whose destination the instruction just before them
//! wrote: their accumulator forms ([`Opc::Mul32KA`], ...) read that value from a machine
//! register instead of the in-memory register file, which takes the store-to-load round trip
//! off dependent chains (hash mixing is one long chain).
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
        if let Some(&c) = code.get(j + 2) {
            // The xorshift step: `mov a, b; rsh|lsh a, k; xor a, b`.
            let op = match (a.op, b.op, c.op) {
                (Opc::Mov32X, Opc::Rsh32K, Opc::Xor32X) => Some(Opc::XorRsh32),
                (Opc::Mov32X, Opc::Lsh32K, Opc::Xor32X) => Some(Opc::XorLsh32),
                (Opc::Mov64X, Opc::Rsh64K, Opc::Xor64X) => Some(Opc::XorRsh64),
                (Opc::Mov64X, Opc::Lsh64K, Opc::Xor64X) => Some(Opc::XorLsh64),
                _ => None,
            };
            if let Some(op) = op {
                if !target[j + 2] && b.d == a.d && c.d == a.d && c.s == a.s && a.d != a.s {
                    fast[j] = I {
                        op,
                        d: a.d,
                        s: a.s,
                        x: 0,
                        t: 0,
                        k: b.k,
                    };
                    j += 3;
                    continue;
                }
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
    forward(&mut fast, &target);
    fast
}

/// Rewrites instructions whose destination was written by the instruction executed just
/// before them into their accumulator forms (`Opc::Add32KA`, ...), which take that value from
/// the interpreter's `acc` (a machine register) instead of the register file: a dependent chain
/// then skips the register file's store-to-load round trip.
///
/// The instruction executed just before `j` is the fast instruction whose span ends at `j`,
/// provided `j` is no jump target (nothing else can precede it). Only instructions known to
/// write their destination last (every register write sets `acc`) count as producers.
fn forward(fast: &mut [I], target: &[bool]) {
    let mut j = 0;
    let mut prev: Option<u8> = None;
    while j < fast.len() {
        let i = fast[j];
        if !target[j] {
            let by_dst = accumulator_form(i.op).filter(|_| prev == Some(i.d));
            let by_src = source_accumulator_form(i.op).filter(|_| prev == Some(i.s));
            if let Some(a) = by_dst.or(by_src) {
                fast[j].op = a;
            }
        }
        prev = produces(fast[j].op).then_some(i.d);
        j += span(fast[j].op);
    }
}

/// How many instructions of the unfused code a fast instruction stands for.
fn span(op: Opc) -> usize {
    use Opc as O;
    match op {
        O::Funnel32 | O::Funnel32A => 4,
        O::MovAddJgt64
        | O::XorRsh32
        | O::XorLsh32
        | O::XorRsh64
        | O::XorLsh64
        | O::MovAddJgt64SA
        | O::XorRsh32SA
        | O::XorLsh32SA => 3,
        _ if is_fused_pair(op) => 2,
        _ => 1,
    }
}

/// The superinstructions that stand for two instructions.
fn is_fused_pair(op: Opc) -> bool {
    use Opc as O;
    matches!(
        op,
        O::Add64KS
            | O::Sub64KS
            | O::Mul64KS
            | O::Or64KS
            | O::And64KS
            | O::Xor64KS
            | O::Lsh64KS
            | O::Rsh64KS
            | O::Arsh64KS
            | O::Add64XS
            | O::Sub64XS
            | O::Mul64XS
            | O::Or64XS
            | O::And64XS
            | O::Xor64XS
            | O::Lsh64XS
            | O::Rsh64XS
            | O::Arsh64XS
            | O::Add32KS
            | O::Sub32KS
            | O::Mul32KS
            | O::Or32KS
            | O::And32KS
            | O::Xor32KS
            | O::Lsh32KS
            | O::Rsh32KS
            | O::Arsh32KS
            | O::Add32XS
            | O::Sub32XS
            | O::Mul32XS
            | O::Or32XS
            | O::And32XS
            | O::Xor32XS
            | O::Lsh32XS
            | O::Rsh32XS
            | O::Arsh32XS
            | O::MulAdd32KK
            | O::MulRsh32KK
            | O::RshAnd32KK
            | O::AndRsh32KK
            | O::LshAnd32KK
            | O::RshAnd64KK
            | O::AndRsh64KK
            | O::Add32KSSA
            | O::Mul32KSSA
            | O::And32KSSA
            | O::Rsh32KSSA
            | O::Lsh32KSSA
            | O::Xor32KSSA
            | O::Add64KSSA
            | O::And64KSSA
            | O::Rsh64KSSA
            | O::MulAdd32KKA
            | O::MulRsh32KKA
            | O::RshAnd32KKA
            | O::AndRsh32KKA
            | O::LshAnd32KKA
    )
}

/// Whether `op` always ends by writing its `d` register (so `acc` then holds `d`'s value).
fn produces(op: Opc) -> bool {
    use Opc as O;
    is_fused_pair(op)
        || accumulator_form(op).is_some()
        || source_accumulator_form(op).is_some()
        || matches!(
            op,
            O::Sub64K
                | O::Mul64K
                | O::Or64K
                | O::Xor64K
                | O::Lsh64K
                | O::Rsh64K
                | O::Arsh64K
                | O::Sub64X
                | O::Mul64X
                | O::And64X
                | O::Lsh64X
                | O::Rsh64X
                | O::Arsh64X
                | O::Mov64K
                | O::Mov64X
                | O::Neg64
                | O::Sub32X
                | O::Mul32X
                | O::Lsh32X
                | O::Rsh32X
                | O::Arsh32X
                | O::Mov32K
                | O::Mov32X
                | O::Neg32
                | O::Movsx8To64
                | O::Movsx16To64
                | O::Movsx32To64
                | O::Movsx8To32
                | O::Movsx16To32
                | O::Le16
                | O::Le32
                | O::Le64
                | O::Be16
                | O::Be32
                | O::Be64
                | O::Swap16
                | O::Swap32
                | O::Swap64
                | O::LdImm64
                | O::Ldx8
                | O::Ldx16
                | O::Ldx32
                | O::Ldx64
                | O::Ldxs8
                | O::Ldxs16
                | O::Ldxs32
                | O::MovAddJgt64
                | O::XorRsh32
                | O::XorLsh32
                | O::XorRsh64
                | O::XorLsh64
                | O::MovAddJgt64SA
                | O::XorRsh32SA
                | O::XorLsh32SA
                | O::Funnel32A
                | O::Add32KA
                | O::Sub32KA
                | O::Mul32KA
                | O::Or32KA
                | O::And32KA
                | O::Xor32KA
                | O::Lsh32KA
                | O::Rsh32KA
                | O::Arsh32KA
                | O::Add32XA
                | O::Or32XA
                | O::Xor32XA
                | O::And32XA
                | O::Add64KA
                | O::And64KA
                | O::Or64XA
                | O::Xor64XA
                | O::Add64XA
        )
}

/// The form of `op` that reads its source register from `acc`, if it has one.
fn source_accumulator_form(op: Opc) -> Option<Opc> {
    use Opc as O;
    Some(match op {
        O::Add32KS => O::Add32KSSA,
        O::Mul32KS => O::Mul32KSSA,
        O::And32KS => O::And32KSSA,
        O::Rsh32KS => O::Rsh32KSSA,
        O::Lsh32KS => O::Lsh32KSSA,
        O::Xor32KS => O::Xor32KSSA,
        O::Add64KS => O::Add64KSSA,
        O::And64KS => O::And64KSSA,
        O::Rsh64KS => O::Rsh64KSSA,
        O::XorRsh32 => O::XorRsh32SA,
        O::XorLsh32 => O::XorLsh32SA,
        O::MovAddJgt64 => O::MovAddJgt64SA,
        _ => return None,
    })
}

/// The accumulator form of `op`, if it has one.
fn accumulator_form(op: Opc) -> Option<Opc> {
    use Opc as O;
    Some(match op {
        O::Add32K => O::Add32KA,
        O::Sub32K => O::Sub32KA,
        O::Mul32K => O::Mul32KA,
        O::Or32K => O::Or32KA,
        O::And32K => O::And32KA,
        O::Xor32K => O::Xor32KA,
        O::Lsh32K => O::Lsh32KA,
        O::Rsh32K => O::Rsh32KA,
        O::Arsh32K => O::Arsh32KA,
        O::Add32X => O::Add32XA,
        O::Or32X => O::Or32XA,
        O::Xor32X => O::Xor32XA,
        O::And32X => O::And32XA,
        O::Add64K => O::Add64KA,
        O::And64K => O::And64KA,
        O::Or64X => O::Or64XA,
        O::Xor64X => O::Xor64XA,
        O::Add64X => O::Add64XA,
        O::MulAdd32KK => O::MulAdd32KKA,
        O::MulRsh32KK => O::MulRsh32KKA,
        O::RshAnd32KK => O::RshAnd32KKA,
        O::LshAnd32KK => O::LshAnd32KKA,
        O::AndRsh32KK => O::AndRsh32KKA,
        O::Funnel32 => O::Funnel32A,
        _ => return None,
    })
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
