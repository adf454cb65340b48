//! Replays verifier logs recorded from Linux 6.18 (`scalar_golden.txt`) through the scalar
//! domain, so that the kernel's answers are checked on every machine, kernel or not.
//!
//! Each recorded program is the r6..r9 prologue plus a body of ALU, NEG, END, MOVSX and
//! conditional-jump instructions; the file keeps its instruction bytes and the state lines of
//! the kernel's level-2 log (`N: (op) ... ; R6=...`, `from X to Y: ...`, invariant
//! violations). Regenerate it with
//! `cargo test -p bpfkit-verifier --test scalar_golden -- --ignored record_golden` (as root on
//! Linux).

mod scalar_model;

use bpfkit_isa::{decode_all, Insn, Op};
use scalar_model::{compare, gen_op, layout, listing, parse_log, prologue, run, violations, Rng};
use std::fmt::Write as _;

const GOLDEN: &str = include_str!("scalar_golden.txt");

/// Hand-picked bodies first (the kernel log lines quoted in the brief and in kernel commit
/// messages), then random ones.
fn programs() -> Vec<Vec<Op>> {
    use bpfkit_isa::{AluOp::*, EndKind, JmpCond, Operand::*, Reg, Width::*};
    let r6 = Reg::R6;
    let r7 = Reg::R7;
    let alu = |width, op, dst, src| Op::Alu {
        width,
        op,
        dst,
        src,
    };
    let jmp = |width, cond, dst, src| Op::Jcond {
        width,
        cond,
        dst,
        src,
        off: 0,
    };
    let mut out: Vec<Vec<Op>> = vec![
        // r &= 0xff: smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff)
        vec![
            alu(W64, And, r6, Imm(255)),
            alu(W64, Sub, r6, Imm(100)),
            alu(W64, Mul, r6, Imm(3)),
        ],
        // The Cilium single-value tnum case (commit efc11a667878).
        vec![
            alu(W64, Or, r6, Imm(3584)),
            alu(W64, And, r6, Imm(3840)),
            jmp(W64, JmpCond::Eq, r6, Imm(0xe00)),
            jmp(W64, JmpCond::Eq, r6, Imm(0xf00)),
        ],
        // A [-1, 0] value and AND with a constant: the kernel forks.
        vec![alu(W64, Arsh, r6, Imm(63)), alu(W64, And, r6, Imm(5))],
        vec![alu(W32, Arsh, r6, Imm(31)), alu(W32, Or, r6, Imm(5))],
        // Byte swaps, sign extension, negation.
        vec![
            alu(W64, And, r6, Imm(0xff)),
            Op::End {
                kind: EndKind::ToBe,
                bits: 16,
                dst: r6,
            },
            Op::End {
                kind: EndKind::Swap,
                bits: 32,
                dst: r6,
            },
            alu(W64, Movsx(16), r6, Reg(r6)),
            Op::Neg {
                width: W64,
                dst: r6,
            },
        ],
        // A register compared with itself, and JMP32 on a register pair.
        vec![
            alu(W64, And, r7, Imm(0xffff)),
            jmp(W32, JmpCond::Sge, r6, Reg(r6)),
            jmp(W32, JmpCond::Lt, r6, Reg(r7)),
            jmp(W64, JmpCond::Set, r7, Imm(0x10)),
        ],
    ];
    // A dead branch: `w6 > w6` on [1, 2] violates the invariants on the jump side.
    out.push(vec![
        alu(W64, And, r6, Imm(3)),
        jmp(W64, JmpCond::Eq, r6, Imm(0)),
        jmp(W64, JmpCond::Gt, r6, Imm(2)),
        jmp(W32, JmpCond::Gt, r6, Reg(r6)),
        alu(W64, Add, r6, Imm(1)),
    ]);
    let mut rng = Rng(0x90_1d_e7);
    for _ in 0..40 {
        let len = 6 + rng.below(10) as usize;
        out.push((0..len).map(|_| gen_op(&mut rng)).collect());
    }
    out
}

#[test]
#[ignore = "records the golden file from the running kernel"]
fn record_golden() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("cannot record: {why}");
        return;
    }
    let mut out = String::from(
        "# Linux 6.18 verifier logs (log_level 2) of the programs of tests/scalar_golden.rs,\n\
         # reduced to their state lines. Recorded with the record_golden test.\n",
    );
    for (p, body) in programs().iter().enumerate() {
        let (ops, _) = layout(body);
        let insns: Vec<Insn> = ops.iter().flat_map(Op::encode).collect();
        let loaded = bpfkit_kernel::ProgLoad {
            log_level: 2,
            ..bpfkit_kernel::ProgLoad::new(bpfkit_kernel::names::PROG_SOCKET_FILTER)
        }
        .load(&insns);
        let _ = writeln!(out, "program {p}");
        let hex: Vec<String> = bpfkit_isa::insns_to_bytes(&insns)
            .chunks(8)
            .map(|c| c.iter().map(|b| format!("{b:02x}")).collect())
            .collect();
        let _ = writeln!(out, "insns {}", hex.join(" "));
        for line in loaded.log.lines() {
            let keep = line.starts_with("from ")
                || line.contains("REG INVARIANTS VIOLATION")
                || (line.split_once(": ").is_some_and(|(i, rest)| {
                    i.parse::<usize>().is_ok() && (rest.contains(" R") || rest.starts_with('R'))
                }) && !line.starts_with(' '));
            if keep {
                let _ = writeln!(out, "log {line}");
            }
        }
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scalar_golden.txt");
    std::fs::write(path, out).expect("write the golden file");
}

#[test]
fn golden_kernel_logs_replay() {
    let mut blocks = Vec::new();
    for line in GOLDEN.lines() {
        if line.starts_with("program ") {
            blocks.push((line.to_string(), String::new(), String::new()));
        } else if let Some(hex) = line.strip_prefix("insns ") {
            if let Some(b) = blocks.last_mut() {
                b.1 = hex.to_string();
            }
        } else if let Some(l) = line.strip_prefix("log ") {
            if let Some(b) = blocks.last_mut() {
                b.2.push_str(l);
                b.2.push('\n');
            }
        }
    }
    assert!(
        blocks.len() >= 40,
        "the golden file holds {} programs",
        blocks.len()
    );
    let mut counts = [0usize; 3];
    let mut failures = Vec::new();
    for (name, hex, log) in &blocks {
        let bytes: Vec<u8> = hex
            .split(' ')
            .flat_map(|w| {
                (0..w.len())
                    .step_by(2)
                    .map(move |i| u8::from_str_radix(&w[i..i + 2], 16))
            })
            .collect::<Result<_, _>>()
            .expect("hex instruction bytes");
        let insns = bpfkit_isa::insns_from_bytes(&bytes).expect("whole instructions");
        let ops: Vec<Op> = decode_all(&insns)
            .expect("valid program")
            .into_iter()
            .map(|(_, op)| op)
            .collect();
        let model = run(&ops, prologue().len());
        if let Some(diff) = compare(&ops, &model, &parse_log(log), &mut counts) {
            failures.push(format!("{name}: {diff}\n{}", listing(&ops)));
        }
        if violations(log) != model.violations {
            failures.push(format!("{name}: invariant violations differ"));
        }
    }
    println!(
        "replayed {} programs: {} main-path, {} branch and {} fork states",
        blocks.len(),
        counts[0],
        counts[1],
        counts[2]
    );
    assert!(
        counts[0] > 200 && counts[1] > 50,
        "too few states compared: {counts:?}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
