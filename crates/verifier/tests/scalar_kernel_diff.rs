//! Differential test of the scalar domain against the running Linux kernel.
//!
//! Random straight-line programs shape four unknown scalars (r6..r9, from
//! `bpf_get_prandom_u32`) with every ALU operation, NEG, END, MOVSX and conditional jumps (64
//! and 32 bits, immediate and register operands). Each program is loaded with log level 2; the
//! kernel prints the state of the registers an instruction touched, and the state of every
//! pushed (taken) branch when it is explored. The test computes the same states with
//! `bpfkit_verifier::scalar` and compares the printed text, so both the transfer functions and
//! the log printer are checked against Linux itself.
//!
//! Skips (printing why) where the `bpf()` syscall is unavailable.

mod scalar_model;

use bpfkit_isa::{AluOp, EndKind, Insn, JmpCond, Op, Operand, Width};
use scalar_model::{compare, layout, listing, parse_log, run, violations, REGS};

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

fn imm(rng: &mut Rng) -> i32 {
    match rng.below(8) {
        0 => rng.below(16) as i32,
        1 => rng.below(300) as i32 - 150,
        2 => (1i64 << rng.below(31)) as i32,
        3 => ((1i64 << rng.below(32)) - 1) as i32,
        4 => rng.pick(&[
            -1,
            i32::MIN,
            i32::MAX,
            0x7fff,
            0x8000,
            0xffff,
            0x10000,
            -0x8000,
        ]),
        5 => -((1i64 << rng.below(31)) as i32),
        _ => rng.next() as i32,
    }
}

fn gen_op(rng: &mut Rng) -> Op {
    let width = if rng.below(3) == 0 {
        Width::W32
    } else {
        Width::W64
    };
    let dst = rng.pick(&REGS);
    let src = if rng.below(3) == 0 {
        Operand::Reg(rng.pick(&REGS))
    } else {
        Operand::Imm(imm(rng))
    };
    match rng.below(20) {
        0..=10 => {
            let op = rng.pick(&[
                AluOp::Add,
                AluOp::Sub,
                AluOp::Mul,
                AluOp::Div,
                AluOp::Sdiv,
                AluOp::Mod,
                AluOp::Smod,
                AluOp::Or,
                AluOp::And,
                AluOp::And,
                AluOp::Lsh,
                AluOp::Rsh,
                AluOp::Arsh,
                AluOp::Xor,
                AluOp::Mov,
            ]);
            let bits = if width == Width::W64 { 64 } else { 32 };
            let src = match (op, src) {
                (AluOp::Lsh | AluOp::Rsh | AluOp::Arsh, Operand::Imm(_)) => {
                    Operand::Imm(rng.below(bits) as i32)
                }
                (AluOp::Div | AluOp::Sdiv | AluOp::Mod | AluOp::Smod, Operand::Imm(0)) => {
                    Operand::Imm(7)
                }
                // A register copy would link the two registers by id; keep them independent.
                (AluOp::Mov, Operand::Reg(_)) => Operand::Reg(dst),
                (_, s) => s,
            };
            Op::Alu {
                width,
                op,
                dst,
                src,
            }
        }
        11 => Op::Neg { width, dst },
        12 => {
            let bits = rng.pick(&[16u8, 32, 64]);
            let kind = rng.pick(&[EndKind::ToLe, EndKind::ToBe, EndKind::Swap]);
            Op::End { kind, bits, dst }
        }
        13 => {
            let off = if width == Width::W64 {
                rng.pick(&[8u8, 16, 32])
            } else {
                rng.pick(&[8u8, 16])
            };
            Op::Alu {
                width,
                op: AluOp::Movsx(off),
                dst,
                src: Operand::Reg(dst),
            }
        }
        _ => {
            let cond = rng.pick(&[
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
            ]);
            Op::Jcond {
                width,
                cond,
                dst,
                src,
                off: 0,
            }
        }
    }
}

#[test]
fn scalar_states_match_the_kernel_log() {
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
    let programs = env("SCALAR_DIFF_PROGRAMS", 400);
    let seed = env("SCALAR_DIFF_SEED", 0x5ca1_ab1e);
    let mut failures = Vec::new();
    let mut counts = [0usize; 3];
    let mut dead = 0;
    for p in 0..programs {
        let mut rng =
            Rng((seed.wrapping_mul(0x2545_f491) ^ p.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
        let len = 6 + rng.below(30) as usize;
        let body: Vec<Op> = (0..len).map(|_| gen_op(&mut rng)).collect();
        let (ops, start) = layout(&body);
        let model = run(&ops, start);
        dead += usize::from(!model.violations.is_empty());
        let insns: Vec<Insn> = ops.iter().flat_map(Op::encode).collect();
        let loaded = bpfkit_kernel::ProgLoad {
            log_level: 2,
            ..bpfkit_kernel::ProgLoad::new(bpfkit_kernel::names::PROG_SOCKET_FILTER)
        }
        .load(&insns);
        let log = parse_log(&loaded.log);
        let kernel_violations = violations(&loaded.log);
        if kernel_violations != model.violations {
            failures.push(format!(
                "program {p}: invariant violations differ\n   kernel: {kernel_violations:?}\n   bpfkit: {:?}\n{}",
                model.violations,
                listing(&ops)
            ));
        }
        if let Some(b) = compare(&ops, &model, &log, &mut counts) {
            failures.push(format!("program {p}:\n{b}\n{}", listing(&ops)));
            if failures.len() >= 3 {
                break;
            }
        }
    }
    println!(
        "compared {} register states over {programs} programs: {} after an instruction on the \
         main path, {} on taken branches, {} on AND/OR forks; {dead} programs with a dead branch \
         (REG INVARIANTS VIOLATION)",
        counts.iter().sum::<usize>(),
        counts[0],
        counts[1],
        counts[2]
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
