//! Differential test: bpfkit's packet helpers against the live kernel's.
//!
//! A sched_cls program calls `bpf_l3_csum_replace`, `bpf_l4_csum_replace` or
//! `bpf_skb_store_bytes` with random arguments on a random frame; `BPF_PROG_TEST_RUN` gives the
//! kernel's return value and output packet, compared with bpfkit's helper applied to the same
//! frame. Skips, saying why, where `bpf()` is unavailable.

use bpfkit::helpers::skb_ops::{l3_csum_replace, l4_csum_replace, store_bytes};
use bpfkit::prog::skb::SkBuff;
use bpfkit_isa::Insn;
use bpfkit_kernel::{names, prog_test_run, ProgLoad};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// `rN = imm64`
fn ld64(reg: u8, v: u64) -> [Insn; 2] {
    [
        Insn::new(0x18, reg, 0, 0, v as u32 as i32),
        Insn::new(0, 0, 0, 0, (v >> 32) as u32 as i32),
    ]
}

fn bytes(insns: &[Insn]) -> Vec<u8> {
    insns.iter().flat_map(|i| i.to_bytes()).collect()
}

/// `r0 = helper(ctx, r2, r3, r4, r5); exit`
fn call_program(helper: i32, r2: u64, r3: u64, r4: u64, r5: u64) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend(ld64(2, r2));
    p.extend(ld64(3, r3));
    p.extend(ld64(4, r4));
    p.extend(ld64(5, r5));
    p.push(Insn::new(0x85, 0, 0, 0, helper));
    p.push(Insn::new(0x95, 0, 0, 0, 0));
    bytes(&p)
}

/// Stores `data` (up to 32 bytes) at r10-32, then
/// `r0 = bpf_skb_store_bytes(ctx, offset, r10-32, len, flags); exit`.
fn store_program(offset: u64, data: &[u8], flags: u64) -> Vec<u8> {
    let mut p = Vec::new();
    for (i, b) in data.iter().enumerate() {
        p.push(Insn::new(0x72, 10, 0, -32 + i as i16, i32::from(*b))); // *(u8 *)(r10 - 32 + i) = b
    }
    p.extend(ld64(2, offset));
    p.push(Insn::new(0xbf, 3, 10, 0, 0)); // r3 = r10
    p.push(Insn::new(0x07, 3, 0, 0, -32)); // r3 += -32
    p.push(Insn::new(0xb7, 4, 0, 0, data.len() as i32)); // r4 = len
    p.extend(ld64(5, flags));
    p.push(Insn::new(0x85, 0, 0, 0, 9)); // call bpf_skb_store_bytes
    p.push(Insn::new(0x95, 0, 0, 0, 0));
    bytes(&p)
}

/// Runs `prog` in the kernel on `frame`: (retval, output frame).
fn kernel_run(prog: &[u8], frame: &[u8]) -> Result<(u32, Vec<u8>), TestCaseError> {
    let loaded = ProgLoad::new(names::PROG_SCHED_CLS).load(prog);
    let log = loaded.log;
    let prog = loaded
        .result
        .map_err(|e| TestCaseError::fail(format!("load {e:?}: {log}")))?;
    let run = prog_test_run(&prog, frame, None, 1)
        .map_err(|e| TestCaseError::fail(format!("test run {e:?}")))?;
    Ok((run.retval, run.data_out))
}

fn offsets() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..70,
        Just(0xffff),
        Just(0x10000),
        Just(u64::from(u32::MAX))
    ]
}

fn flags(extra: u64) -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(2),
        Just(4),
        Just(3),
        Just(2 | extra),
        Just(4 | extra),
        (0u64..256),
        Just(1 << 8),
    ]
}

fn runner() -> Option<TestRunner> {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return None;
    }
    Some(TestRunner::new(Config {
        cases: 150,
        ..Config::default()
    }))
}

fn frame() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 64..=64)
}

#[test]
fn csum_replace_helpers_match_the_kernel() {
    let Some(mut runner) = runner() else { return };
    let small = prop_oneof![
        Just(0u64),
        any::<u16>().prop_map(u64::from),
        any::<u32>().prop_map(u64::from)
    ];
    for (id, name) in [(10, "bpf_l3_csum_replace"), (11, "bpf_l4_csum_replace")] {
        let strategy = (
            frame(),
            offsets(),
            small.clone(),
            small.clone(),
            flags(0x70),
        );
        runner
            .run(&strategy, |(frame, offset, from, to, flags)| {
                let (retval, out) = kernel_run(&call_program(id, offset, from, to, flags), &frame)?;
                let mut skb = SkBuff::boxed(&frame);
                let ours = if id == 10 {
                    l3_csum_replace(&mut skb, offset as u32, from, to, flags)
                } else {
                    l4_csum_replace(&mut skb, offset as u32, from, to, flags)
                };
                prop_assert_eq!(retval, ours as u32, "{} return value", name);
                prop_assert_eq!(&out[..], skb.packet(), "{} output packet", name);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{name} differs from the kernel: {e}"));
    }
}

#[test]
fn store_bytes_matches_the_kernel() {
    let Some(mut runner) = runner() else { return };
    let data = proptest::collection::vec(any::<u8>(), 1..32);
    let strategy = (
        frame(),
        offsets(),
        data,
        prop_oneof![Just(0u64), Just(1), Just(2), Just(3), Just(4)],
    );
    runner
        .run(&strategy, |(frame, offset, data, flags)| {
            let (retval, out) = kernel_run(&store_program(offset, &data, flags), &frame)?;
            let mut skb = SkBuff::boxed(&frame);
            let ours = store_bytes(&mut skb, offset as u32, &data, flags);
            prop_assert_eq!(retval, ours as u32, "return value");
            prop_assert_eq!(&out[..], skb.packet(), "output packet");
            Ok(())
        })
        .unwrap_or_else(|e| panic!("bpf_skb_store_bytes differs from the kernel: {e}"));
}

/// Loads and test-runs `prog` in bpfkit (sched_cls): (retval, output frame).
fn bpfkit_run(prog: &[u8], frame: &[u8]) -> Result<(u32, Vec<u8>), TestCaseError> {
    let insns =
        bpfkit_isa::insns_from_bytes(prog).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let bpf = bpfkit::Bpf::new();
    let attr = bpfkit::prog::load::ProgLoadAttr {
        prog_type: bpfkit_verifier::env::ProgType::SchedCls,
        insns: &insns,
        license: "GPL",
        log_level: 0,
        log_size: 0,
    };
    let loaded = bpf
        .prog_load(&attr)
        .map_err(|e| TestCaseError::fail(format!("bpfkit load: {e}")))?;
    let run = bpf
        .prog_test_run(
            loaded.fd,
            &bpfkit::prog::run::TestRunAttr {
                data_in: frame,
                ..Default::default()
            },
        )
        .map_err(|e| TestCaseError::fail(format!("bpfkit run: {e}")))?;
    Ok((run.retval, run.data_out))
}

#[test]
fn skb_pull_data_matches_the_kernel() {
    let Some(mut runner) = runner() else { return };
    let len = prop_oneof![0u64..80, Just(u64::from(u32::MAX)), Just(1 << 32)];
    runner
        .run(&(frame(), len), |(frame, len)| {
            let prog = call_program(39, len, 0, 0, 0);
            let kernel = kernel_run(&prog, &frame)?;
            let ours = bpfkit_run(&prog, &frame)?;
            prop_assert_eq!(ours, kernel);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("bpf_skb_pull_data differs from the kernel: {e}"));
}
