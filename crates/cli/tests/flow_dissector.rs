//! The flow dissector (examples/flow_dissector) gives the same hash in every engine: bpfkit's
//! checked and fast interpreters, `bpfkit run`, and the Linux kernel (its XDP build, through
//! BPF_PROG_TEST_RUN), each compared with the same C compiled natively (the `cc` crate, in
//! examples/flow_dissector/native), on a corpus of IPv4 / IPv6, TCP / UDP / other, VLAN-tagged,
//! truncated and non-IP packets. The native build itself is checked against the documented
//! MurmurHash3 of each packet's known 5-tuple in the example's own tests, so agreeing with it
//! means computing the specified value.

use bpfkit::prog::load::ProgLoadAttr;
use bpfkit::prog::run::TestRunAttr;
use bpfkit::Bpf;
use bpfkit_flow_dissector::{native, packets, PROGRAM_CTX, PROGRAM_MEM, PROGRAM_XDP};
use bpfkit_isa::insns_from_bytes;
use bpfkit_verifier::{env::ProgType, testing::TestEnv, verify, Options};
use bpfkit_vm::{Helpers, Program, RunCtx, Vm};
use std::path::PathBuf;
use std::process::Command;

fn translate(bytes: &[u8]) -> Program {
    let insns = match insns_from_bytes(bytes) {
        Ok(insns) => insns,
        Err(e) => panic!("the committed program does not decode: {e}"),
    };
    match Program::new(&insns, &Helpers::new()) {
        Ok(program) => program,
        Err(e) => panic!("bpfkit cannot translate the flow dissector: {e}"),
    }
}

/// The `flow` program: r1 = `{u64 data; u64 data_end}` pointing into the packet.
#[test]
fn interpreters_match_native_on_the_context_program() {
    let program = translate(PROGRAM_CTX);
    for case in packets::corpus() {
        let expected = u64::from(native::flow_hash(&case.packet));
        let fc = native::FlowCtx::new(&case.packet);
        let mut ctx = [fc.data.to_le_bytes(), fc.data_end.to_le_bytes()].concat();
        let run = RunCtx::new()
            .with_mem(&mut ctx)
            .with_readonly_region(&case.packet);
        let checked = program.run_checked(&run);
        assert_eq!(checked, Ok(expected), "{} (checked)", case.name);
        // SAFETY: the checked interpreter just ran this program on this very input (same
        // context bytes, same packet, nothing written) without a fault, so every access of the
        // identical, deterministic fast run is one it proved valid; no helper is called.
        let vm = unsafe { Vm::from_program(program.clone()) };
        assert_eq!(vm.run_ctx(&run), expected, "{} (fast)", case.name);
    }
}

/// The `flow_mem` program (`flow_dissector.bin`): r1 = the packet, r2 = its length.
#[test]
fn interpreters_match_native_on_the_flat_memory_program() {
    let program = translate(PROGRAM_MEM);
    for case in packets::corpus() {
        let expected = u64::from(native::flow_hash_mem(&case.packet));
        let mut mem = case.packet.clone();
        let checked = program.run_checked(&RunCtx::new().with_mem(&mut mem));
        assert_eq!(checked, Ok(expected), "{} (checked)", case.name);
        // SAFETY: as above: a clean checked run on the same memory, which the program only reads.
        let vm = unsafe { Vm::from_program(program.clone()) };
        assert_eq!(vm.run(&mut mem), expected, "{} (fast)", case.name);
    }
}

/// Many more packets than the corpus: every prefix of every corpus packet (truncation at each
/// byte), and corpus packets with a few header bytes replaced by pseudo-random ones (a fixed
/// xorshift sequence, so failures reproduce).
fn variants() -> Vec<(String, Vec<u8>)> {
    let corpus = packets::corpus();
    let mut out = Vec::new();
    for case in &corpus {
        for len in 0..case.packet.len() {
            out.push((
                format!("{} cut at {len}", case.name),
                case.packet[..len].to_vec(),
            ));
        }
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..2000 {
        let case = &corpus[round % corpus.len()];
        let mut packet = case.packet.clone();
        if packet.is_empty() {
            continue;
        }
        for _ in 0..=(next() % 3) {
            // Mostly the headers (the first 80 bytes), where the parser looks.
            let at = (next() as usize) % packet.len().min(80);
            packet[at] = next() as u8;
        }
        out.push((format!("{} mutant {round}", case.name), packet));
    }
    out
}

/// The interpreters agree with native on every variant, both entry points.
#[test]
fn interpreters_match_native_on_truncated_and_mutated_packets() {
    let ctx_program = translate(PROGRAM_CTX);
    let mem_program = translate(PROGRAM_MEM);
    let mut nonzero = 0;
    for (name, packet) in variants() {
        let expected = u64::from(native::flow_hash(&packet));
        nonzero += usize::from(expected != 0);
        let fc = native::FlowCtx::new(&packet);
        let mut ctx = [fc.data.to_le_bytes(), fc.data_end.to_le_bytes()].concat();
        let run = RunCtx::new()
            .with_mem(&mut ctx)
            .with_readonly_region(&packet);
        assert_eq!(ctx_program.run_checked(&run), Ok(expected), "{name} (flow)");
        // SAFETY: a clean checked run of the same program on the same input just preceded.
        let vm = unsafe { Vm::from_program(ctx_program.clone()) };
        assert_eq!(vm.run_ctx(&run), expected, "{name} (flow, fast)");

        let mut mem = packet.clone();
        let run = RunCtx::new().with_mem(&mut mem);
        assert_eq!(
            mem_program.run_checked(&run),
            Ok(expected),
            "{name} (flow_mem)"
        );
        // SAFETY: as above.
        let vm = unsafe { Vm::from_program(mem_program.clone()) };
        assert_eq!(vm.run_ctx(&run), expected, "{name} (flow_mem, fast)");
    }
    // The variants exercise both outcomes.
    assert!(nonzero > 500, "only {nonzero} variants hash to non-zero");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The decimal value in `bpfkit run`'s `r0 = 0x... (N)` line.
fn printed_r0(stdout: &str) -> Option<u64> {
    let line = stdout.lines().find(|l| l.starts_with("r0 = "))?;
    let (_, decimal) = line.split_once('(')?;
    decimal.strip_suffix(')')?.parse().ok()
}

#[test]
fn bpfkit_run_prints_the_native_hash() {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/flow_dissector/flow_dissector.bin");
    for case in packets::corpus() {
        let expected = u64::from(native::flow_hash_mem(&case.packet));
        for mode in [None, Some("--checked")] {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_bpfkit"));
            cmd.arg("run")
                .arg(&bin)
                .arg("--mem-hex")
                .arg(hex(&case.packet));
            cmd.args(mode);
            let out = match cmd.output() {
                Ok(out) => out,
                Err(e) => panic!("cannot start bpfkit: {e}"),
            };
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{} {mode:?}: bpfkit run failed: {}",
                case.name,
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                printed_r0(&stdout),
                Some(expected),
                "{} {mode:?}: {stdout}",
                case.name
            );
        }
    }
}

#[test]
fn kernel_xdp_build_matches_native() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let loaded = bpfkit_kernel::ProgLoad::new(bpfkit_kernel::names::PROG_XDP).load(PROGRAM_XDP);
    let prog = match loaded.result {
        Ok(prog) => prog,
        Err(errno) => panic!(
            "the kernel rejected the flow dissector ({errno}):\n{}",
            loaded.log
        ),
    };
    let mut compared = 0;
    for case in packets::corpus() {
        // XDP test runs need at least an Ethernet header's worth of data.
        if case.packet.len() < 14 {
            continue;
        }
        let run = match bpfkit_kernel::prog_test_run(&prog, &case.packet, None, 1) {
            Ok(run) => run,
            Err(errno) => panic!("{}: BPF_PROG_TEST_RUN failed: {errno}", case.name),
        };
        assert_eq!(run.retval, native::flow_hash(&case.packet), "{}", case.name);
        compared += 1;
    }
    assert!(compared > 20, "only {compared} packets compared");
    for (name, packet) in variants() {
        if packet.len() < 14 {
            continue;
        }
        let run = match bpfkit_kernel::prog_test_run(&prog, &packet, None, 1) {
            Ok(run) => run,
            Err(errno) => panic!("{name}: BPF_PROG_TEST_RUN failed: {errno}"),
        };
        assert_eq!(run.retval, native::flow_hash(&packet), "{name}");
    }
}

/// `processed N insns` and `stack depth N` of a verifier log at level 4 (the statistics).
fn verifier_stats(log: &str) -> Option<(u64, String)> {
    let processed = log
        .lines()
        .find_map(|l| l.strip_prefix("processed "))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let depth = log.lines().find_map(|l| l.strip_prefix("stack depth "))?;
    Some((processed, depth.to_string()))
}

/// The XDP build passes bpfkit's verifier, as it passes Linux's: a clang-compiled parser with
/// variable-offset packet pointers (the IPv4 IHL) and bounds checks against data_end. Where the
/// kernel is available, the verification statistics match too: instructions processed and stack
/// depth.
#[test]
fn verifier_accepts_the_xdp_build_like_the_kernel() {
    let insns = match insns_from_bytes(PROGRAM_XDP) {
        Ok(insns) => insns,
        Err(e) => panic!("the committed program does not decode: {e}"),
    };
    let opts = Options {
        prog_type: ProgType::Xdp,
        log_level: 4,
        license: "Dual MIT/GPL".into(),
        ..Options::default()
    };
    let verified = match verify(&insns, &TestEnv::default(), &opts) {
        Ok(verified) => verified,
        Err(rejected) => panic!("bpfkit's verifier rejects the flow dissector: {rejected:?}"),
    };
    let ours = verifier_stats(verified.log());
    assert!(
        ours.is_some(),
        "no statistics in the log:\n{}",
        verified.log()
    );

    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped the kernel comparison: {why}");
        return;
    }
    let load = bpfkit_kernel::ProgLoad {
        log_level: 4,
        ..bpfkit_kernel::ProgLoad::new(bpfkit_kernel::names::PROG_XDP)
    };
    let loaded = load.load(PROGRAM_XDP);
    assert!(
        loaded.result.is_ok(),
        "the kernel rejects it:\n{}",
        loaded.log
    );
    assert_eq!(
        ours,
        verifier_stats(&loaded.log),
        "bpfkit's log:\n{}\nthe kernel's log:\n{}",
        verified.log(),
        loaded.log
    );
}

/// The XDP build through bpfkit's object API, as through bpf(): BPF_PROG_LOAD as an XDP program
/// (verified in the runtime's environment, context accesses rewritten), then
/// BPF_PROG_TEST_RUN on every corpus packet and variant of at least an Ethernet header, in the
/// fast and the checked interpreter.
#[test]
fn runtime_xdp_test_run_matches_native() {
    let insns = match insns_from_bytes(PROGRAM_XDP) {
        Ok(insns) => insns,
        Err(e) => panic!("the committed program does not decode: {e}"),
    };
    let bpf = Bpf::new();
    let attr = ProgLoadAttr {
        prog_type: ProgType::Xdp,
        insns: &insns,
        license: "Dual MIT/GPL",
        log_level: 0,
        log_size: 0,
    };
    let prog = match bpf.prog_load(&attr) {
        Ok(prog) => prog,
        Err(e) => panic!(
            "bpfkit's runtime rejects the XDP flow dissector: {e}: {}",
            e.log
        ),
    };
    let corpus = packets::corpus()
        .into_iter()
        .map(|c| (c.name.to_string(), c.packet));
    let mut compared = 0;
    for (name, packet) in corpus.chain(variants()) {
        if packet.len() < 14 {
            continue;
        }
        let expected = native::flow_hash(&packet);
        for checked in [false, true] {
            let run = TestRunAttr {
                data_in: &packet,
                repeat: 1,
                checked,
                ..TestRunAttr::default()
            };
            match bpf.prog_test_run(prog.fd, &run) {
                Ok(out) => assert_eq!(out.retval, expected, "{name} (checked: {checked})"),
                Err(e) => panic!("{name}: prog_test_run failed: {e}"),
            }
        }
        compared += 1;
    }
    assert!(compared > 1000, "only {compared} packets compared");
}
