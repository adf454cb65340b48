//! Differential test: bpfkit's checksum arithmetic against the live kernel's `bpf_csum_diff`.
//!
//! A sched_cls program writes random words on its stack, calls `bpf_csum_diff` on them and
//! returns the result; `BPF_PROG_TEST_RUN` gives the kernel's answer, compared bit for bit with
//! [`bpfkit::helpers::csum::csum_diff`]. Skips, saying why, where `bpf()` is unavailable.

use bpfkit::helpers::csum::csum_diff;
use bpfkit_isa::Insn;
use bpfkit_kernel::{names, prog_test_run, ProgLoad};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// `*(u32 *)(r10 + off) = imm`
fn stw(off: i16, imm: u32) -> Insn {
    Insn::new(0x62, 10, 0, off, imm as i32)
}

/// The program: `from` at r10-64.., `to` at r10-128.., then
/// `r0 = bpf_csum_diff(from, len, to, len, seed); exit`.
fn program(from: &[u32], to: &[u32], seed: u32) -> Vec<u8> {
    let mut p = Vec::new();
    for (i, w) in from.iter().enumerate() {
        p.push(stw(-64 + 4 * i as i16, *w));
    }
    for (i, w) in to.iter().enumerate() {
        p.push(stw(-128 + 4 * i as i16, *w));
    }
    p.extend([
        Insn::new(0xbf, 1, 10, 0, 0),                    // r1 = r10
        Insn::new(0x07, 1, 0, 0, -64),                   // r1 += -64
        Insn::new(0xb7, 2, 0, 0, 4 * from.len() as i32), // r2 = from size
        Insn::new(0xbf, 3, 10, 0, 0),                    // r3 = r10
        Insn::new(0x07, 3, 0, 0, -128),                  // r3 += -128
        Insn::new(0xb7, 4, 0, 0, 4 * to.len() as i32),   // r4 = to size
        Insn::new(0x18, 5, 0, 0, seed as i32),           // r5 = seed (ld_imm64)
        Insn::new(0x00, 0, 0, 0, 0),
        Insn::new(0x85, 0, 0, 0, 28), // call bpf_csum_diff
        Insn::new(0x95, 0, 0, 0, 0),  // exit
    ]);
    p.iter().flat_map(|i| i.to_bytes()).collect()
}

fn words_to_bytes(w: &[u32]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn csum_diff_matches_the_kernel() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let words = proptest::collection::vec(any::<u32>(), 0..16);
    let mut runner = TestRunner::new(Config {
        cases: 200,
        ..Config::default()
    });
    let packet = [0u8; 64];
    runner
        .run(&(words.clone(), words, any::<u32>()), |(from, to, seed)| {
            let prog = ProgLoad::new(names::PROG_SCHED_CLS).load(&program(&from, &to, seed)[..]);
            let log = prog.log;
            let prog = prog
                .result
                .map_err(|e| TestCaseError::fail(format!("{e:?}: {log}")))?;
            let run = prog_test_run(&prog, &packet, None, 1)
                .map_err(|e| TestCaseError::fail(format!("test run: {e:?}")))?;
            let ours = csum_diff(&words_to_bytes(&from), &words_to_bytes(&to), seed);
            prop_assert_eq!(
                run.retval,
                ours,
                "from {:x?} to {:x?} seed {:#x}",
                from,
                to,
                seed
            );
            Ok(())
        })
        .expect("bpfkit's csum_diff equals the kernel's");
}
