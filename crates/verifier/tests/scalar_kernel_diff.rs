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

use bpfkit_isa::{Insn, Op};
use scalar_model::{compare, gen_body, layout, listing, parse_log, run, violations, Rng};

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
        let body = gen_body(&mut rng, len);
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
