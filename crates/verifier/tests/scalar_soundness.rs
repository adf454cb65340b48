//! Soundness of the scalar domain, checked against native computation with proptest.
//!
//! For random concrete values `x`, `y` and random abstract scalars `A ∋ x`, `B ∋ y`: the
//! concrete result of every ALU operation, NEG, END and MOVSX on `x` (and `y`) lies in the
//! abstract result; a predicted branch direction is the concrete one; the operands refined for
//! the direction actually taken still contain `x` and `y`. The concrete semantics are RFC 9669's
//! (shift amounts masked to the width, `x / 0 = 0`, `x % 0 = x`, 32-bit results zero-extended),
//! computed natively here.

use bpfkit_isa::{AluOp, EndKind, JmpCond, Width};
use bpfkit_verifier::scalar::{
    alu, and_or_fork, branch_taken, end, movsx, neg, ptr_add, ptr_keep, ptr_sub, refine,
    refine_same, reg_set_min_max, Scalar, Tnum,
};
use proptest::prelude::*;

/// A concrete value, biased towards the edges where bounds arithmetic overflows.
fn value() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0u64..64,
        (0u64..64).prop_map(|v| v.wrapping_neg()),
        prop::sample::select(vec![
            0,
            1,
            u64::MAX,
            i64::MAX as u64,
            i64::MIN as u64,
            u64::from(u32::MAX),
            i32::MAX as u64,
            i32::MIN as u32 as u64,
            i32::MIN as i64 as u64,
            0x1_0000_0000,
            0xffff_ffff_0000_0000,
        ]),
        (any::<u32>()).prop_map(u64::from),
        (any::<i32>()).prop_map(|v| i64::from(v) as u64),
    ]
}

/// How far a bound sits from the value: exact, near, or anywhere.
fn slack() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        0u64..16,
        0u64..0x1_0000,
        any::<u64>(),
        Just(u64::MAX)
    ]
}

/// Which bits of the value are unknown.
fn mask() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(u64::MAX),
        any::<u64>(),
        (0u32..64).prop_map(|b| (1u64 << b) - 1),
        (0u32..64).prop_map(|b| !((1u64 << b) - 1)),
        Just(0xffff_ffffu64),
        Just(0xffff_ffff_0000_0000u64),
    ]
}

/// A synced abstract scalar containing `x`, with bounds at the given distances.
fn around(x: u64, m: u64, s: [u64; 8]) -> Scalar {
    let lo32 = x as u32;
    let mut a = Scalar::unknown();
    a.var_off = Tnum::new(x & !m, m);
    a.umin = x.saturating_sub(s[0]);
    a.umax = x.saturating_add(s[1]);
    a.smin = (x as i64).saturating_sub(s[2] as i64 & i64::MAX);
    a.smax = (x as i64).saturating_add(s[3] as i64 & i64::MAX);
    a.u32_min = lo32.saturating_sub(s[4] as u32);
    a.u32_max = lo32.saturating_add(s[5] as u32);
    a.s32_min = (lo32 as i32).saturating_sub(s[6] as i32 & i32::MAX);
    a.s32_max = (lo32 as i32).saturating_add(s[7] as i32 & i32::MAX);
    a.sync();
    a
}

fn scalar_with_member() -> impl Strategy<Value = (u64, Scalar)> {
    (value(), mask(), prop::array::uniform8(slack())).prop_map(|(x, m, s)| (x, around(x, m, s)))
}

fn alu_op() -> impl Strategy<Value = AluOp> {
    prop::sample::select(vec![
        AluOp::Add,
        AluOp::Sub,
        AluOp::Mul,
        AluOp::Div,
        AluOp::Sdiv,
        AluOp::Mod,
        AluOp::Smod,
        AluOp::Or,
        AluOp::And,
        AluOp::Lsh,
        AluOp::Rsh,
        AluOp::Arsh,
        AluOp::Xor,
        AluOp::Mov,
        AluOp::Movsx(8),
        AluOp::Movsx(16),
        AluOp::Movsx(32),
    ])
}

fn width() -> impl Strategy<Value = Width> {
    prop::sample::select(vec![Width::W32, Width::W64])
}

fn cond() -> impl Strategy<Value = JmpCond> {
    prop::sample::select(vec![
        JmpCond::Eq,
        JmpCond::Ne,
        JmpCond::Gt,
        JmpCond::Ge,
        JmpCond::Lt,
        JmpCond::Le,
        JmpCond::Sgt,
        JmpCond::Sge,
        JmpCond::Slt,
        JmpCond::Sle,
        JmpCond::Set,
    ])
}

/// RFC 9669 semantics of `dst op= src`.
fn eval_alu(op: AluOp, w: Width, x: u64, y: u64) -> u64 {
    match w {
        Width::W64 => match op {
            AluOp::Add => x.wrapping_add(y),
            AluOp::Sub => x.wrapping_sub(y),
            AluOp::Mul => x.wrapping_mul(y),
            AluOp::Div => x.checked_div(y).unwrap_or(0),
            AluOp::Sdiv => {
                if y == 0 {
                    0
                } else {
                    (x as i64).wrapping_div(y as i64) as u64
                }
            }
            AluOp::Mod => x.checked_rem(y).unwrap_or(x),
            AluOp::Smod => {
                if y == 0 {
                    x
                } else {
                    (x as i64).wrapping_rem(y as i64) as u64
                }
            }
            AluOp::Or => x | y,
            AluOp::And => x & y,
            AluOp::Lsh => x << (y & 63),
            AluOp::Rsh => x >> (y & 63),
            AluOp::Arsh => ((x as i64) >> (y & 63)) as u64,
            AluOp::Xor => x ^ y,
            AluOp::Mov => y,
            AluOp::Movsx(8) => y as i8 as i64 as u64,
            AluOp::Movsx(16) => y as i16 as i64 as u64,
            AluOp::Movsx(_) => y as i32 as i64 as u64,
        },
        Width::W32 => {
            let (a, b) = (x as u32, y as u32);
            u64::from(match op {
                AluOp::Add => a.wrapping_add(b),
                AluOp::Sub => a.wrapping_sub(b),
                AluOp::Mul => a.wrapping_mul(b),
                AluOp::Div => a.checked_div(b).unwrap_or(0),
                AluOp::Sdiv => {
                    if b == 0 {
                        0
                    } else {
                        (a as i32).wrapping_div(b as i32) as u32
                    }
                }
                AluOp::Mod => a.checked_rem(b).unwrap_or(a),
                AluOp::Smod => {
                    if b == 0 {
                        a
                    } else {
                        (a as i32).wrapping_rem(b as i32) as u32
                    }
                }
                AluOp::Or => a | b,
                AluOp::And => a & b,
                AluOp::Lsh => a << (b & 31),
                AluOp::Rsh => a >> (b & 31),
                AluOp::Arsh => ((a as i32) >> (b & 31)) as u32,
                AluOp::Xor => a ^ b,
                AluOp::Mov => b,
                AluOp::Movsx(8) => b as i8 as i32 as u32,
                AluOp::Movsx(_) => b as i16 as i32 as u32,
            })
        }
    }
}

fn eval_cond(c: JmpCond, w: Width, x: u64, y: u64) -> bool {
    let (x, y) = match w {
        Width::W64 => (x, y),
        Width::W32 => (u64::from(x as u32), u64::from(y as u32)),
    };
    let (sx, sy) = match w {
        Width::W64 => (x as i64, y as i64),
        Width::W32 => (i64::from(x as u32 as i32), i64::from(y as u32 as i32)),
    };
    match c {
        JmpCond::Eq => x == y,
        JmpCond::Ne => x != y,
        JmpCond::Gt => x > y,
        JmpCond::Ge => x >= y,
        JmpCond::Lt => x < y,
        JmpCond::Le => x <= y,
        JmpCond::Sgt => sx > sy,
        JmpCond::Sge => sx >= sy,
        JmpCond::Slt => sx < sy,
        JmpCond::Sle => sx <= sy,
        JmpCond::Set => x & y != 0,
    }
}

fn show(s: &Scalar) -> String {
    format!("{s} [{s:?}]")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 800, ..ProptestConfig::default() })]

    #[test]
    fn sync_keeps_every_member((x, a) in scalar_with_member()) {
        prop_assert!(a.contains(x), "{:#x} lost by sync: {}", x, show(&a));
        prop_assert!(a.is_sane(), "insane after sync: {}", show(&a));
    }

    #[test]
    fn alu_contains_the_concrete_result(
        op in alu_op(),
        w in width(),
        (x, a) in scalar_with_member(),
        (y, b) in scalar_with_member(),
    ) {
        if w == Width::W32 && op == AluOp::Movsx(32) {
            return Ok(());
        }
        let mut d = a;
        if let Some(f) = and_or_fork(op, &a, &b) {
            // The kernel explores both values; the concrete one picks its path.
            let minus_one = if a.smin == -1 && a.smax == 0 { x == u64::MAX } else { x as u32 == u32::MAX };
            d = if minus_one { f.continue_with } else { f.pushed };
            prop_assert!(d.contains(x), "fork lost {:#x}", x);
        }
        let r = alu(op, w, &d, &b);
        let want = eval_alu(op, w, x, y);
        prop_assert!(
            r.contains(want),
            "{:?} {:?}: {:#x} op {:#x} = {:#x} not in {}\n  dst {}\n  src {}",
            op, w, x, y, want, show(&r), show(&a), show(&b)
        );
    }

    #[test]
    fn neg_end_movsx_contain_the_concrete_result(
        w in width(),
        bits in prop::sample::select(vec![16u8, 32, 64]),
        kind in prop::sample::select(vec![EndKind::ToLe, EndKind::ToBe, EndKind::Swap]),
        (x, a) in scalar_with_member(),
    ) {
        let n = neg(w, &a);
        let want = match w {
            Width::W64 => x.wrapping_neg(),
            Width::W32 => u64::from((x as u32).wrapping_neg()),
        };
        prop_assert!(n.contains(want), "neg {:?} {:#x} -> {:#x} not in {}", w, x, want, show(&n));

        let e = end(kind, bits, &a);
        let want = match (kind, bits) {
            (EndKind::ToLe, 16) => u64::from(x as u16),
            (EndKind::ToLe, 32) => u64::from(x as u32),
            (EndKind::ToLe, _) => x,
            (_, 16) => u64::from((x as u16).swap_bytes()),
            (_, 32) => u64::from((x as u32).swap_bytes()),
            (_, _) => x.swap_bytes(),
        };
        prop_assert!(e.contains(want), "{:?}{} {:#x} -> {:#x} not in {}", kind, bits, x, want, show(&e));

        for (bits, w) in [(8u8, Width::W64), (16, Width::W64), (32, Width::W64), (8, Width::W32), (16, Width::W32)] {
            let m = movsx(w, bits, &a);
            let want = eval_alu(AluOp::Movsx(bits), w, 0, x);
            prop_assert!(m.contains(want), "movsx{} {:?} {:#x} -> {:#x} not in {}", bits, w, x, want, show(&m));
        }
    }

    #[test]
    fn branches_are_predicted_and_refined_soundly(
        c in cond(),
        w in width(),
        (x, a) in scalar_with_member(),
        (y, b) in scalar_with_member(),
    ) {
        let truth = eval_cond(c, w, x, y);
        match branch_taken(c, w, &a, &b) {
            Some(t) => prop_assert_eq!(t, truth, "{:?} {:?} {:#x} {:#x}\n  a {}\n  b {}", c, w, x, y, show(&a), show(&b)),
            None => {
                let (ra, rb) = refine(c, w, &a, &b, truth);
                prop_assert!(
                    ra.contains(x) && rb.contains(y),
                    "{:?} {:?} taken={} {:#x} {:#x}\n  a {}\n  b {}\n  -> {}\n  -> {}",
                    c, w, truth, x, y, show(&a), show(&b), show(&ra), show(&rb)
                );
            }
        }
        // A register compared with itself.
        let truth = eval_cond(c, w, x, x);
        match branch_taken(c, w, &a, &a) {
            Some(t) => prop_assert_eq!(t, truth),
            None => {
                let r = refine_same(c, w, &a, truth);
                prop_assert!(r.contains(x), "{:?} {:?} same reg taken={} {:#x}\n  a {}\n  -> {}", c, w, truth, x, show(&a), show(&r));
            }
        }
    }

    #[test]
    fn pointer_offsets_contain_the_concrete_offset(
        (x, p) in scalar_with_member(),
        (y, o) in scalar_with_member(),
    ) {
        let add = ptr_add(&p, &o).synced();
        prop_assert!(add.contains(x.wrapping_add(y)), "{:#x} + {:#x} not in {}", x, y, show(&add));
        let sub = ptr_sub(&p, &o).synced();
        prop_assert!(sub.contains(x.wrapping_sub(y)), "{:#x} - {:#x} not in {}", x, y, show(&sub));
        prop_assert!(ptr_keep(&p).synced().contains(x));
    }

    #[test]
    fn includes_is_set_inclusion((x, a) in scalar_with_member(), (_, b) in scalar_with_member()) {
        // b ⊆ a implies every member of b is in a; a covers itself.
        prop_assert!(a.includes(&a));
        if b.includes(&a) {
            prop_assert!(b.contains(x));
        }
    }

    #[test]
    fn reg_set_min_max_keeps_the_taken_side(
        c in cond(),
        w in width(),
        (x, a) in scalar_with_member(),
        (y, b) in scalar_with_member(),
    ) {
        if branch_taken(c, w, &a, &b).is_none() {
            let br = reg_set_min_max(c, w, &a, &b, false);
            let (ra, rb) = if eval_cond(c, w, x, y) { br.taken } else { br.fallthrough };
            // A feasible side never violates the invariants, so nothing was reset.
            prop_assert!(ra.contains(x) && rb.contains(y));
        }
    }

    #[test]
    fn arbitrary_even_contradictory_scalars_never_panic(
        raw in prop::array::uniform9(any::<u64>()),
        raw2 in prop::array::uniform9(any::<u64>()),
        op in alu_op(),
        w in width(),
        c in cond(),
        bits in prop::sample::select(vec![16u8, 32, 64]),
    ) {
        let mk = |r: [u64; 9]| Scalar {
            var_off: Tnum::new(r[0] & !r[1], r[1]),
            smin: r[2] as i64,
            smax: r[3] as i64,
            umin: r[4],
            umax: r[5],
            s32_min: r[6] as i32,
            s32_max: (r[6] >> 32) as i32,
            u32_min: r[7] as u32,
            u32_max: r[8] as u32,
        };
        let (a, b) = (mk(raw), mk(raw2));
        // Shift amounts and sizes are the caller's to check, as the kernel's are; everything
        // else must merely not panic.
        let _ = alu(op, w, &a, &b);
        let _ = neg(w, &a);
        let _ = end(EndKind::Swap, bits, &a);
        let _ = movsx(Width::W64, 8, &a);
        let _ = branch_taken(c, w, &a, &b);
        let _ = reg_set_min_max(c, w, &a, &b, false);
        let _ = reg_set_min_max(c, w, &a, &a, true);
        let _ = ptr_add(&a, &b).synced();
        let _ = ptr_sub(&a, &b).synced();
        let mut m = a;
        let _ = m.sanity_check("alu");
        let _ = a.synced().to_string();
        let _ = and_or_fork(op, &a, &b);
    }
}
