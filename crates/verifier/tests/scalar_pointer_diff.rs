//! Differential test of pointer variable-offset arithmetic against the running Linux kernel.
//!
//! A context pointer (r9 = r1) is moved by random scalars (r6..r8, shaped by random ALU
//! instructions) with `r9 += rX`, `r9 -= rX`, `r9 += K`, `r9 -= K`; the kernel prints the
//! pointer as `ctx(off=N,smin=...,var_off=(...))` and rejects offsets it deems unsafe. The test
//! computes the same with `ptr_add` / `ptr_sub` / `ptr_keep`, the kernel's
//! `check_reg_sane_offset`, and `write_pointer_var`, and compares the text and the verdict.
//! Skips (printing why) where the `bpf()` syscall is unavailable.

mod scalar_model;

use bpfkit_isa::{AluOp, CallTarget, Insn, Op, Operand, Reg, Width};
use bpfkit_verifier::scalar::{alu, and_or_fork, ptr_add, ptr_keep, ptr_sub, write_snum, Scalar};
use scalar_model::{epilogue, tags_of, Rng};

const MAX_VAR_OFF: i64 = 1 << 29;
const SCALARS: [Reg; 3] = [Reg::R6, Reg::R7, Reg::R8];

/// `check_reg_sane_offset`: the kernel's message when a pointer offset is refused.
fn insane(v: &Scalar, off: i32) -> Option<String> {
    let val = v.var_off.value as i64;
    if v.is_const() && (val >= MAX_VAR_OFF || val <= -MAX_VAR_OFF) {
        return Some(format!("math between ctx pointer and {val} is not allowed"));
    }
    if i64::from(off) >= MAX_VAR_OFF || i64::from(off) <= -MAX_VAR_OFF {
        return Some(format!("ctx pointer offset {off} is not allowed"));
    }
    if v.smin == i64::MIN {
        return Some(
            "math between ctx pointer and register with unbounded min value is not allowed"
                .to_string(),
        );
    }
    if v.smin >= MAX_VAR_OFF || v.smin <= -MAX_VAR_OFF {
        return Some(format!(
            "value {} makes ctx pointer be out of bounds",
            v.smin
        ));
    }
    None
}

fn ptr_text(var: &Scalar, off: i32) -> String {
    let mut s = String::from("ctx(");
    let mut sep = "";
    if off != 0 {
        s.push_str("off=");
        write_snum(&mut s, i64::from(off)).expect("write to a String");
        sep = ",";
    }
    var.write_pointer_var(&mut s, &mut sep)
        .expect("write to a String");
    s.push(')');
    s
}

fn small_imm(rng: &mut Rng) -> i32 {
    match rng.below(4) {
        0 => rng.below(64) as i32 - 32,
        1 => ((1i64 << rng.below(31)) - 1) as i32,
        2 => -((1i64 << rng.below(31)) as i32),
        _ => rng.next() as i32,
    }
}

fn gen_op(rng: &mut Rng) -> Op {
    let dst = rng.pick(&SCALARS);
    if rng.below(3) == 0 {
        let op = rng.pick(&[AluOp::Add, AluOp::Add, AluOp::Sub]);
        let src = if rng.below(3) == 0 {
            Operand::Imm(rng.below(4096) as i32 - 2048)
        } else {
            Operand::Reg(rng.pick(&SCALARS))
        };
        return Op::Alu {
            width: Width::W64,
            op,
            dst: Reg::R9,
            src,
        };
    }
    let width = if rng.below(4) == 0 {
        Width::W32
    } else {
        Width::W64
    };
    let bits = if width == Width::W64 { 64 } else { 32 };
    let (op, src) = match rng.below(10) {
        0..=3 => (
            AluOp::And,
            Operand::Imm(((1i64 << rng.below(20)) - 1) as i32),
        ),
        4 => (AluOp::Add, Operand::Imm(small_imm(rng))),
        5 => (AluOp::Sub, Operand::Reg(rng.pick(&SCALARS))),
        6 => (AluOp::Arsh, Operand::Imm(rng.below(bits) as i32)),
        7 => (AluOp::Rsh, Operand::Imm(rng.below(bits) as i32)),
        8 => (AluOp::Or, Operand::Imm(small_imm(rng))),
        _ => (AluOp::Mul, Operand::Imm(rng.below(9) as i32 - 4)),
    };
    Op::Alu {
        width,
        op,
        dst,
        src,
    }
}

#[test]
fn pointer_offsets_match_the_kernel_log() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipping the kernel differential test: {why}");
        return;
    }
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let programs = env("SCALAR_DIFF_PROGRAMS", 300);
    let seed = env("SCALAR_DIFF_SEED", 0x000f_f5e7);
    let (mut compared, mut rejected) = (0usize, 0usize);
    let mut failures = Vec::new();
    for p in 0..programs {
        let mut rng =
            Rng((seed.wrapping_mul(0x2545_f491) ^ p.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
        let mut ops = vec![Op::Alu {
            width: Width::W64,
            op: AluOp::Mov,
            dst: Reg::R9,
            src: Operand::Reg(Reg::R1),
        }];
        for r in SCALARS {
            ops.push(Op::Call(CallTarget::Helper(7)));
            ops.push(Op::Alu {
                width: Width::W64,
                op: AluOp::Mov,
                dst: r,
                src: Operand::Reg(Reg::R0),
            });
        }
        let start = ops.len();
        // Most scalars start bounded, as offsets do in real programs. Every one goes through an
        // AND, which drops the id `rX = r0` gave it: a linked scalar would carry a constant
        // delta in its `off` field, which the kernel's pointer-offset check also reads (the
        // caller's business, not the domain's).
        for r in SCALARS {
            let mask = if rng.below(4) == 0 {
                -1
            } else {
                ((1i64 << rng.below(24)) - 1) as i32
            };
            ops.push(Op::Alu {
                width: Width::W64,
                op: AluOp::And,
                dst: r,
                src: Operand::Imm(mask),
            });
        }
        let len = 8 + rng.below(24) as usize;
        ops.extend((0..len).map(|_| gen_op(&mut rng)));
        ops.extend(epilogue());

        // The model.
        let mut regs = [Scalar::unknown(); 11];
        let (mut var, mut off) = (Scalar::known(0), 0i32);
        // Scalars are compared with the kernel's precision mark and id; the pointer as text.
        let mut want: Vec<(usize, u8, Result<Scalar, String>)> = Vec::new();
        let mut reject = None;
        let mut forked = false;
        for (i, op) in ops.iter().enumerate().skip(start) {
            let Op::Alu {
                width,
                op,
                dst,
                src,
            } = *op
            else {
                break;
            };
            let s = match src {
                Operand::Reg(r) => regs[r.index()],
                Operand::Imm(k) => Scalar::from_imm(k),
            };
            if dst != Reg::R9 {
                let mut d = regs[dst.index()];
                if let Some(f) = and_or_fork(op, &d, &s) {
                    // The pushed path is not modelled: its verdict may differ.
                    d = f.continue_with;
                    forked = true;
                }
                regs[dst.index()] = alu(op, width, &d, &s);
                want.push((i, dst.num(), Ok(regs[dst.index()])));
                continue;
            }
            if let Some(m) = insane(&s, 0).or_else(|| insane(&var, off)) {
                reject = Some((i, m));
                break;
            }
            let folded = s.is_const().then(|| {
                let k = s.smin;
                if op == AluOp::Add {
                    i64::from(off) + k
                } else {
                    i64::from(off) - k
                }
            });
            let (new_var, new_off) = match folded {
                Some(o) if o == i64::from(o as i32) => (ptr_keep(&var), o as i32),
                _ if op == AluOp::Add => (ptr_add(&var, &s), off),
                _ => (ptr_sub(&var, &s), off),
            };
            if let Some(m) = insane(&new_var, new_off) {
                reject = Some((i, m));
                break;
            }
            var = new_var.synced();
            off = new_off;
            want.push((i, 9, Err(ptr_text(&var, off))));
        }

        let insns: Vec<Insn> = ops.iter().flat_map(Op::encode).collect();
        let loaded = bpfkit_kernel::ProgLoad {
            log_level: 2,
            ..bpfkit_kernel::ProgLoad::new(bpfkit_kernel::names::PROG_SOCKET_FILTER)
        }
        .load(&insns);
        let log = scalar_model::parse_log(&loaded.log);
        if std::env::var("SCALAR_DIFF_DUMP").is_ok_and(|v| v == p.to_string()) {
            println!("{}", loaded.log);
        }
        let mut bad = None;
        for (i, r, w) in &want {
            let got = log
                .main
                .get(i)
                .and_then(|regs| regs.iter().find(|(n, _)| n == r));
            let w = match w {
                Ok(s) => got.map(|(_, g)| s.log_text(tags_of(g))).unwrap_or_default(),
                Err(t) => t.clone(),
            };
            match got {
                Some((_, g)) if *g == w => compared += 1,
                Some((_, g)) => {
                    bad = Some(format!(
                        "insn {i} ({:?}): R{r}\n   kernel: {g}\n   bpfkit: {w}",
                        ops[*i]
                    ));
                    break;
                }
                None => {}
            }
        }
        match (&reject, loaded.result.is_ok()) {
            (Some((i, m)), false) => {
                rejected += 1;
                if !loaded.log.lines().any(|l| l == m) && bad.is_none() {
                    bad = Some(format!(
                        "insn {i}: bpfkit rejects with {m:?}, the kernel log differs"
                    ));
                }
            }
            (None, true) => {}
            (Some((i, m)), true) => {
                bad = Some(format!(
                    "insn {i}: bpfkit rejects ({m}), the kernel accepts"
                ))
            }
            (None, false) if !forked => {
                bad = Some("the kernel rejects, bpfkit accepts".to_string());
            }
            (None, false) => {}
        }
        if let Some(b) = bad {
            let tail: String = loaded
                .log
                .lines()
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .join(" | ");
            failures.push(format!(
                "program {p}: {b}\n   log tail: {tail}\n{}",
                scalar_model::listing(&ops)
            ));
            if failures.len() >= 3 {
                break;
            }
        }
    }
    println!("compared {compared} states over {programs} programs ({rejected} rejected alike)");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
