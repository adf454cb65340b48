//! Unit tests whose expected values come from the kernel's own comments, commit messages and
//! logs (each test says which), run offline.

use super::*;
use bpfkit_isa::{AluOp, EndKind, JmpCond, Width};

fn bounds(s: &Scalar) -> (u64, u64, i64, i64, u32, u32, i32, i32) {
    (
        s.umin, s.umax, s.smin, s.smax, s.u32_min, s.u32_max, s.s32_min, s.s32_max,
    )
}

#[test]
fn reg32_deduce_bounds_uses_a_fixed_upper_half() {
    // __reg32_deduce_bounds: "u64 range [0x10000000A, 0x10000000F] ... lower 32 bits form a
    // valid [0xA, 0xF] ([10, 15]) range".
    let s = Scalar::unsigned_range(0x1_0000_000a, 0x1_0000_000f);
    assert_eq!(
        (s.u32_min, s.u32_max, s.s32_min, s.s32_max),
        (0xa, 0xf, 10, 15)
    );
}

#[test]
fn reg32_deduce_bounds_handles_upper_halves_one_apart() {
    // __reg32_deduce_bounds: "s64 range [0xfffffff0fffffff0; 0xfffffff100000010], forms a
    // valid s32 range [-16, 16]".
    let s = Scalar::signed_range(
        0xffff_fff0_ffff_fff0_u64 as i64,
        0xffff_fff1_0000_0010_u64 as i64,
    );
    assert_eq!((s.s32_min, s.s32_max), (-16, 16));
}

#[test]
fn mixed_bounds_tighten_64_from_32() {
    // __reg_deduce_mixed_bounds: "if r1 is [0x1'00000000, 0x3'80000000], and we learn from
    // 32-bit signed > 0 operation that s32 bounds are now [1; 0x7fffffff] ... arrive at
    // [0x1'000000001; 0x3'7fffffff]".
    let r1 = Scalar::unsigned_range(0x1_0000_0000, 0x3_8000_0000);
    let (t, _) = refine(JmpCond::Sgt, Width::W32, &r1, &Scalar::from_imm(0), true);
    assert_eq!((t.umin, t.umax), (0x1_0000_0001, 0x3_7fff_ffff));
}

#[test]
fn signed_unsigned_agree_when_not_crossing_the_sign() {
    // __reg64_deduce_bounds: "-3 s<= x s<= -1 implies 0xf...fd u<= x u<= 0xf...ff".
    let s = Scalar::signed_range(-3, -1);
    assert_eq!((s.umin, s.umax), (u64::MAX - 2, u64::MAX));
}

#[test]
fn single_value_tnum_becomes_a_constant() {
    // Commit efc11a667878 (Cilium): r0 |= 3584; r0 &= 3840; if r0 == 0xe00 -> R0=3840.
    let r = alu(
        AluOp::Or,
        Width::W64,
        &Scalar::unknown(),
        &Scalar::from_imm(3584),
    );
    let r = alu(AluOp::And, Width::W64, &r, &Scalar::from_imm(3840));
    assert_eq!(r.var_off, Tnum::new(0xe00, 0x100));
    assert_eq!((r.umin, r.umax), (3584, 3840));
    assert_eq!(
        branch_taken(JmpCond::Eq, Width::W64, &r, &Scalar::from_imm(0xe00)),
        None
    );
    let (fall, _) = refine(JmpCond::Eq, Width::W64, &r, &Scalar::from_imm(0xe00), false);
    assert_eq!(fall, Scalar::known(3840));
    assert_eq!(fall.to_string(), "3840");
}

#[test]
fn add_keeps_wrapped_unsigned_bounds_when_every_sum_overflows() {
    // scalar_min_max_add: "If either all additions overflow or no additions overflow, then it
    // is okay to set: dst_umin = dst_umin + src_umin, dst_umax = dst_umax + src_umax".
    let mut d = Scalar::unsigned_range(u64::MAX - 10, u64::MAX - 5);
    d.mark_unbounded();
    d.umin = u64::MAX - 10;
    d.umax = u64::MAX - 5;
    let mut s = Scalar::unknown();
    s.umin = 20;
    s.umax = 30;
    let mut r = d;
    super::alu::scalar_add(&mut r, &s);
    assert_eq!((r.umin, r.umax), (9, 24));
    // Only some overflow: unbounded.
    s.umin = 0;
    let mut r = d;
    super::alu::scalar_add(&mut r, &s);
    assert_eq!((r.umin, r.umax), (0, u64::MAX));
}

#[test]
fn kernel_log_lines_of_linux_6_18() {
    // Lines of a Linux 6.18 level-2 log (r0 = bpf_get_prandom_u32() in each case).
    let r0 = Scalar::unknown();
    let and255 = alu(AluOp::And, Width::W64, &r0, &Scalar::from_imm(255));
    assert_eq!(
        and255.to_string(),
        "scalar(smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))"
    );
    // r6 -= 100; r6 *= 3
    let sub = alu(AluOp::Sub, Width::W64, &and255, &Scalar::from_imm(100));
    assert_eq!(sub.to_string(), "scalar(smin=smin32=-100,smax=smax32=155)");
    let mul = alu(AluOp::Mul, Width::W64, &sub, &Scalar::from_imm(3));
    assert_eq!(mul.to_string(), "scalar(smin=smin32=-300,smax=smax32=465)");
    // r1 = -r1 on [0, 255]
    assert_eq!(
        neg(Width::W64, &and255).to_string(),
        "scalar(smin=smin32=-255,smax=smax32=0)"
    );
    // r3 = be16 r3 on [0, 255]
    assert_eq!(
        end(EndKind::ToBe, 16, &and255).to_string(),
        "scalar(smin=smin32=0,smax=umax=smax32=umax32=0xff00,var_off=(0x0; 0xff00))"
    );
    // r2 /= 3: not tracked.
    assert_eq!(
        alu(AluOp::Div, Width::W64, &and255, &Scalar::from_imm(3)).to_string(),
        "scalar()"
    );
    // r8 <<= 32; r8 = le64 r8
    let shl = alu(AluOp::Lsh, Width::W64, &r0, &Scalar::from_imm(32));
    let want = "scalar(smax=0x7fffffff00000000,umax=0xffffffff00000000,smin32=0,smax32=umax32=0,var_off=(0x0; 0xffffffff00000000))";
    assert_eq!(shl.to_string(), want);
    assert_eq!(end(EndKind::ToLe, 64, &shl).to_string(), want);
    // r9 &= 0xfffff; r9 -= 300000: hex 64- and 32-bit bounds.
    let m = alu(AluOp::And, Width::W64, &r0, &Scalar::from_imm(0xfffff));
    let m = alu(AluOp::Sub, Width::W64, &m, &Scalar::from_imm(300_000));
    assert_eq!(
        m.to_string(),
        "scalar(smin=0xfffffffffffb6c20,smax=smax32=0xb6c1f,smin32=0xfffb6c20)"
    );
    // w8 s>>= 31
    let a = alu(AluOp::Arsh, Width::W32, &r0, &Scalar::from_imm(31));
    assert_eq!(
        a.to_string(),
        "scalar(smin=0,smax=umax=0xffffffff,smin32=-1,smax32=0,var_off=(0x0; 0xffffffff))"
    );
    // ... and w8 &= 5 forks: R8=5 now, R8=0 on the pushed path.
    let f = and_or_fork(AluOp::And, &a, &Scalar::from_imm(5)).expect("the kernel forks");
    assert_eq!(
        alu(
            AluOp::And,
            Width::W32,
            &f.continue_with,
            &Scalar::from_imm(5)
        )
        .to_string(),
        "5"
    );
    // "from 23 to 23: ... R8=0"
    assert_eq!(f.pushed.to_string(), "0");
    assert_eq!(
        alu(AluOp::And, Width::W32, &f.pushed, &Scalar::from_imm(5)).to_string(),
        "0"
    );
    // Precision and ids: "R7=Pscalar(smin=smin32=0,smax=umax=smax32=umax32=240,var_off=(0x0; 0xf0))"
    let m = alu(AluOp::And, Width::W64, &r0, &Scalar::from_imm(240));
    let p = LogTags {
        precise: true,
        ..LogTags::default()
    };
    assert_eq!(
        m.log_text(p),
        "Pscalar(smin=smin32=0,smax=umax=smax32=umax32=240,var_off=(0x0; 0xf0))"
    );
    let id = LogTags {
        id: 1,
        ..LogTags::default()
    };
    assert_eq!(r0.log_text(id), "scalar(id=1)");
}

#[test]
fn dead_branch_is_logged_and_reset_like_the_kernel() {
    // Linux 6.18 log: "if w9 > w9" on R9=scalar(smin=umin=smin32=umin32=1,smax=umax=...=2,
    // var_off=(0x0; 0x3)) logs
    // "verifier bug: REG INVARIANTS VIOLATION (true_reg1): range bounds violation u64=[0x1,
    // 0x2] s64=[0x1, 0x2] u32=[0x2, 0x1] s32=[0x1, 0x2] var_off=(0x0, 0x3)" and the taken
    // branch goes on with R9=scalar(var_off=(0x0; 0x3)).
    let r9 = Scalar::unsigned_range(1, 2);
    assert_eq!(
        r9.to_string(),
        "scalar(smin=umin=smin32=umin32=1,smax=umax=smax32=umax32=2,var_off=(0x0; 0x3))"
    );
    let mut t = refine_same(JmpCond::Gt, Width::W32, &r9, true);
    assert_eq!(
        t.sanity_check("true_reg1").as_deref(),
        Some("verifier bug: REG INVARIANTS VIOLATION (true_reg1): range bounds violation u64=[0x1, 0x2] s64=[0x1, 0x2] u32=[0x2, 0x1] s32=[0x1, 0x2] var_off=(0x0, 0x3)")
    );
    assert_eq!(t.sanity_check("true_reg2"), None);
    assert_eq!(t.to_string(), "scalar(var_off=(0x0; 0x3))");
    let f = refine_same(JmpCond::Gt, Width::W32, &r9, false);
    assert_eq!(f, r9);
    let _ = bounds(&f);
}
