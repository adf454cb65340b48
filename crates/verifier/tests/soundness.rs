//! Soundness: every accepted case of the table that needs no maps, helpers or packet data runs
//! in the checked interpreter (bpfkit's soundness oracle) on many context contents without a
//! memory violation, an uninitialised read or a runaway loop.

mod common;

use bpfkit_verifier::env::ProgType;
use bpfkit_vm::{Helpers, Program, RunCtx};

/// A small deterministic generator for context bytes (xorshift64).
fn fill(buf: &mut [u8], mut seed: u64) {
    for b in buf.iter_mut() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *b = seed as u8;
    }
}

#[test]
fn accepted_programs_run_clean_in_the_checked_interpreter() {
    let cases = common::load_cases();
    let mut ran = 0;
    for c in &cases {
        let plain = c.maps.is_empty()
            && matches!(
                c.prog_type,
                ProgType::SocketFilter | ProgType::Kprobe | ProgType::Tracepoint
            )
            && !c.insns.iter().any(|i| {
                i.code == 0x85 || matches!(i.code, 0x20 | 0x28 | 0x30 | 0x40 | 0x48 | 0x50)
            });
        if c.expect.is_some() || !plain || common::run_bpfkit(c).is_some() {
            continue;
        }
        let prog = match Program::new(&c.insns, &Helpers::new()) {
            Ok(p) => p,
            Err(e) => panic!(
                "{}: the interpreter refuses an accepted program: {e}",
                c.name
            ),
        };
        for seed in 1..=16u64 {
            let mut ctx = vec![0u8; 4096];
            fill(&mut ctx, seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let run = RunCtx::new().with_mem(&mut ctx).with_budget(1_000_000);
            if let Err(e) = prog.run_checked(&run) {
                panic!("{} (seed {seed}): accepted by the verifier, faulted in the checked interpreter: {e}", c.name);
            }
        }
        ran += 1;
    }
    eprintln!("{ran} accepted programs ran clean on 16 contexts each");
    assert!(ran >= 50, "only {ran} programs qualified");
}
