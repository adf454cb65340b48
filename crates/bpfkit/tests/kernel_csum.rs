//! Differential test: bpfkit's checksum arithmetic against the live kernel's `bpf_csum_diff`.
//!
//! A sched_cls program writes random bytes on its stack (any count: Linux 6.12 and later sum
//! sizes that are not multiples of 4), calls `bpf_csum_diff` on them and
//! returns the result; `BPF_PROG_TEST_RUN` gives the kernel's answer, compared bit for bit with
//! [`bpfkit::helpers::csum::csum_diff`] and with the same program loaded and run in bpfkit's
//! runtime (the helper as programs call it). Skips, saying why, where `bpf()` is unavailable.

use bpfkit::helpers::csum::csum_diff;
use bpfkit::prog::load::ProgLoadAttr;
use bpfkit::prog::run::TestRunAttr;
use bpfkit::Bpf;
use bpfkit_isa::Insn;
use bpfkit_kernel::{names, prog_test_run, ProgLoad};
use bpfkit_verifier::env::ProgType;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// `*(u8 *)(r10 + off) = imm`
fn stb(off: i16, imm: u8) -> Insn {
    Insn::new(0x72, 10, 0, off, i32::from(imm))
}

/// The program: `from` at r10-64.., `to` at r10-128.., then
/// `r0 = bpf_csum_diff(from, len, to, len, seed); exit`.
fn program(from: &[u8], to: &[u8], seed: u32) -> Vec<Insn> {
    let mut p = Vec::new();
    for (i, w) in from.iter().enumerate() {
        p.push(stb(-64 + i as i16, *w));
    }
    for (i, w) in to.iter().enumerate() {
        p.push(stb(-128 + i as i16, *w));
    }
    p.extend([
        Insn::new(0xbf, 1, 10, 0, 0),                // r1 = r10
        Insn::new(0x07, 1, 0, 0, -64),               // r1 += -64
        Insn::new(0xb7, 2, 0, 0, from.len() as i32), // r2 = from size
        Insn::new(0xbf, 3, 10, 0, 0),                // r3 = r10
        Insn::new(0x07, 3, 0, 0, -128),              // r3 += -128
        Insn::new(0xb7, 4, 0, 0, to.len() as i32),   // r4 = to size
        Insn::new(0x18, 5, 0, 0, seed as i32),       // r5 = seed (ld_imm64)
        Insn::new(0x00, 0, 0, 0, 0),
        Insn::new(0x85, 0, 0, 0, 28), // call bpf_csum_diff
        Insn::new(0x95, 0, 0, 0, 0),  // exit
    ]);
    p
}

#[test]
fn csum_diff_matches_the_kernel() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let words = proptest::collection::vec(any::<u8>(), 0..=64);
    let mut runner = TestRunner::new(Config {
        cases: 300,
        ..Config::default()
    });
    let packet = [0u8; 64];
    runner
        .run(&(words.clone(), words, any::<u32>()), |(from, to, seed)| {
            let insns = program(&from, &to, seed);
            let bytes: Vec<u8> = insns.iter().flat_map(|i| i.to_bytes()).collect();
            let prog = ProgLoad::new(names::PROG_SCHED_CLS).load(&bytes[..]);
            let log = prog.log;
            let prog = prog
                .result
                .map_err(|e| TestCaseError::fail(format!("{e:?}: {log}")))?;
            let run = prog_test_run(&prog, &packet, None, 1)
                .map_err(|e| TestCaseError::fail(format!("test run: {e:?}")))?;
            let ours = csum_diff(&from, &to, seed);
            let bpf = Bpf::new();
            let loaded = bpf
                .prog_load(&ProgLoadAttr {
                    prog_type: ProgType::SchedCls,
                    insns: &insns,
                    license: "GPL",
                    log_level: 0,
                    log_size: 0,
                })
                .map_err(|e| TestCaseError::fail(format!("bpfkit load: {e:?}")))?;
            let attr = TestRunAttr {
                data_in: &packet,
                ..TestRunAttr::default()
            };
            let runtime = bpf
                .prog_test_run(loaded.fd, &attr)
                .map_err(|e| TestCaseError::fail(format!("bpfkit run: {e:?}")))?;
            prop_assert_eq!(run.retval, runtime.retval, "bpfkit's runtime");
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
