//! Pruning works as the kernel's does: for every program that both bpfkit's verifier and the
//! running kernel accept (the example objects' programs and the generated branchy loops of
//! `verifier_cost_util`), bpfkit's processed-instruction count (`Verified::stats()`) is within
//! 2× of the kernel's `processed N insns` (log level 4), in both directions.
//!
//! Prints the table of counts. Programs the kernel accepts and bpfkit rejects are listed with
//! bpfkit's error line, not failed here (the verifier table tracks verdicts); programs bpfkit
//! cannot run at all (unsupported program type) are listed too. No timing: the bench
//! `benches/verifier.rs` measures time. Skips, saying why, where `bpf()` is unavailable.

mod verifier_cost_util;

use verifier_cost_util::{
    example_cases, generated_cases, BpfkitSide, Case, KernelSide, KernelVerdict,
};

/// The tolerance of the issue: within 2× of the kernel's count.
const FACTOR: f64 = 2.0;

/// One row of the table.
enum Row {
    /// Both accept; `note` says when bpfkit needed the object's BTF func_info to accept.
    Both {
        ours: u64,
        kernel: u64,
        note: Option<String>,
    },
    KernelOnly {
        why: String,
        kernel: u64,
    },
    BpfkitOnly {
        kernel: String,
    },
    Neither {
        ours: String,
        kernel: String,
    },
    NotRun(String),
}

fn measure(case: &Case) -> Row {
    let kernel = match KernelSide::new(case) {
        Ok(k) => k.load(case),
        Err(e) => KernelVerdict::Rejected(format!("setup: {e}")),
    };
    let ours = BpfkitSide::new(case, false).map(|side| side.verify());
    // The kernel got no BTF; where bpfkit rejects the program without func_info but the object
    // has it, verify as instantiate() does (with it) and say so.
    if let (Ok(Err(r)), KernelVerdict::Accepted(k), true) = (&ours, &kernel, case.has_func_info) {
        if let Ok(Ok(v)) = BpfkitSide::new(case, true).map(|side| side.verify()) {
            return Row::Both {
                ours: v.stats().insns_processed,
                kernel: k.processed_insns,
                note: Some(format!(
                    "accepted by bpfkit only with BTF func_info; without: insn {}: {}",
                    r.insn_idx,
                    first_line(&r.message)
                )),
            };
        }
    }
    match (ours, kernel) {
        (Ok(Ok(v)), KernelVerdict::Accepted(k)) => Row::Both {
            ours: v.stats().insns_processed,
            kernel: k.processed_insns,
            note: None,
        },
        (Ok(Err(r)), KernelVerdict::Accepted(k)) => Row::KernelOnly {
            why: format!("insn {}: {}", r.insn_idx, first_line(&r.message)),
            kernel: k.processed_insns,
        },
        (Err(setup), KernelVerdict::Accepted(k)) => Row::KernelOnly {
            why: setup,
            kernel: k.processed_insns,
        },
        (Ok(Ok(_)), KernelVerdict::Rejected(k)) => Row::BpfkitOnly { kernel: k },
        (Ok(Err(r)), KernelVerdict::Rejected(k)) => Row::Neither {
            ours: first_line(&r.message).to_string(),
            kernel: k,
        },
        (Err(setup), KernelVerdict::Rejected(k)) => {
            Row::NotRun(format!("bpfkit: {setup}; kernel: {k}"))
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

#[test]
fn processed_counts_within_2x_of_the_kernel() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let mut cases = Vec::new();
    let mut failures = Vec::new();
    println!(
        "{:<44} {:>9} {:>9} {:>7}",
        "program", "bpfkit", "kernel", "ratio"
    );
    for c in example_cases() {
        match c {
            Ok(c) => cases.push(c),
            Err((name, why)) => println!("{name:<44} not measured: {why}"),
        }
    }
    cases.extend(generated_cases());
    let mut both = 0;
    let mut differ: Vec<String> = Vec::new();
    for case in &cases {
        match measure(case) {
            Row::Both { ours, kernel, note } => {
                both += 1;
                let ratio = ours as f64 / kernel.max(1) as f64;
                println!("{:<44} {ours:>9} {kernel:>9} {ratio:>7.2}", case.name);
                if let Some(note) = note {
                    println!("    ({note})");
                    differ.push(format!("{}: {note}", case.name));
                }
                if !(1.0 / FACTOR..=FACTOR).contains(&ratio) {
                    failures.push(format!(
                        "{}: bpfkit processed {ours} insns, the kernel {kernel} (ratio {ratio:.2})",
                        case.name
                    ));
                }
            }
            Row::KernelOnly { why, kernel } => {
                println!(
                    "{:<44} {:>9} {kernel:>9}   rejected by bpfkit only: {why}",
                    case.name, "-"
                );
                differ.push(format!("{}: bpfkit rejects: {why}", case.name));
            }
            Row::BpfkitOnly { kernel } => {
                println!(
                    "{:<44} accepted by bpfkit only; kernel: {kernel}",
                    case.name
                );
                differ.push(format!("{}: the kernel rejects: {kernel}", case.name));
            }
            Row::Neither { ours, kernel } => println!(
                "{:<44} rejected by both: bpfkit `{ours}`, kernel `{kernel}`",
                case.name
            ),
            Row::NotRun(why) => println!("{:<44} not measured: {why}", case.name),
        }
    }
    println!(
        "\n{both} programs accepted by both, {} differences in verdict:",
        differ.len()
    );
    for d in &differ {
        println!("  {d}");
    }
    assert!(both > 0, "no program was accepted by both verifiers");
    assert!(
        failures.is_empty(),
        "processed counts not within {FACTOR}x of the kernel's:\n{}",
        failures.join("\n")
    );
}

/// The generated program is what its documentation says: a check of the generator against a
/// native computation of its layout (the kernel then accepts it in the test above).
#[test]
fn generated_program_layout() {
    let (iters, blocks) = (7, 3);
    let p = verifier_cost_util::branchy_loop(iters, blocks);
    // 5 setup + 3 bound check + 15 per block + 3 loop tail + 3 out.
    assert_eq!(p.len(), 5 + 3 + 15 * blocks as usize + 3 + 3);
    let bound = &p[7];
    assert_eq!(bound.code, 0x2d);
    // The bound check jumps to `out`, three instructions before the end.
    assert_eq!(7 + 1 + bound.off as usize, p.len() - 3);
    let back = &p[p.len() - 4];
    assert_eq!((back.code, back.imm), (0xa5, iters));
    assert_eq!((p.len() - 4) as i64 + 1 + i64::from(back.off), 5);
    assert_eq!(p[p.len() - 1].code, 0x95);
}
