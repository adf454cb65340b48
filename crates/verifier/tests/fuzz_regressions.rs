//! Inputs the cargo-fuzz `verify` target (fuzz/fuzz_targets/verify.rs) found slow, hanging or
//! panicking, kept in `tests/data/fuzz/` and replayed through the same harness: each must get
//! a verdict, with the statistics the kernel would report for it.

use std::path::Path;

use bpfkit_verifier::env::{MapInfo, MapType, ProgType};
use bpfkit_verifier::testing::TestEnv;
use bpfkit_verifier::{verify, Options};

/// The fuzz target's harness: byte 0 picks the program type, byte 1 the log level, the rest
/// are instructions. Returns the verdict's log.
fn replay(data: &[u8]) -> Option<String> {
    let [ty, level, rest @ ..] = data else {
        return None;
    };
    let insns = bpfkit_isa::insns_from_bytes(rest).ok()?;
    let env = TestEnv::with_maps(vec![
        MapInfo {
            map_type: MapType::Hash,
            key_size: 4,
            value_size: 8,
            max_entries: 4,
        },
        MapInfo {
            map_type: MapType::Array,
            key_size: 4,
            value_size: 16,
            max_entries: 1,
        },
        MapInfo {
            map_type: MapType::ProgArray,
            key_size: 4,
            value_size: 4,
            max_entries: 4,
        },
    ]);
    let opts = Options {
        prog_type: ProgType::ALL[usize::from(*ty) % ProgType::ALL.len()],
        log_level: u32::from(*level & 7),
        license: "GPL".into(),
        ..Options::default()
    };
    Some(match verify(&insns, &env, &opts) {
        Ok(v) => v.log().to_string(),
        Err(e) => e.log,
    })
}

fn input(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A kprobe program `r1 = -r1; if r1 != K goto +0; r1 /= r1; if r1 s>= K goto +0; r5 = r1;
/// if r1 >= 27 goto -5`: every turn of the loop pushes a branch and gives r1 a new id, so no
/// state ever matches. Linux 6.18 stops when 8192 branches are pending: "The sequence of 8193
/// jumps is too complex." (EFAULT, after 40959 processed instructions); bpfkit used to run to
/// the 1,000,000-instruction limit (a minute in the fuzzer).
#[test]
fn a_loop_that_never_converges_stops_at_the_jump_sequence_limit() {
    let log = replay(&input("verify-slow-neg-loop.bin")).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(4).collect();
    println!("{}", tail.join("\n"));
    assert!(
        log.contains("The sequence of 8193 jumps is too complex."),
        "{tail:?}"
    );
}

/// Writes `progen` programs as inputs of the fuzz target, to seed its corpus with programs
/// that get deep into the verifier: `PROGEN_CORPUS=DIR PROGEN_COUNT=N cargo test -p
/// bpfkit-verifier --test fuzz_regressions -- --ignored`.
#[test]
#[ignore = "a tool for fuzzing campaigns, not a check"]
fn write_progen_corpus() {
    let Some(dir) = std::env::var_os("PROGEN_CORPUS") else {
        println!("set PROGEN_CORPUS=DIR");
        return;
    };
    let count: u64 = std::env::var("PROGEN_COUNT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for seed in 0..count {
        let p = bpfkit_verifier::progen::generate(seed);
        let ty = ProgType::ALL
            .iter()
            .position(|t| t.name() == p.prog_type)
            .unwrap_or(0);
        let mut data = vec![ty as u8, (seed % 3) as u8];
        data.extend(bpfkit_isa::insns_to_bytes(&p.insns));
        let path = dir.join(format!("progen-{seed}"));
        std::fs::write(&path, data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

/// A socket filter the fuzz target timed out on (10 s): its loop runs to the 1,000,000
/// processed-instruction limit. Linux 6.18 does the same ("BPF program is too large",
/// processed 1000001 insns, 12501 states, in 0.7 s): the verdict and the statistics must agree
/// (the time is the benches' business).
#[test]
fn a_program_at_the_complexity_limit_stops_there_as_linux_does() {
    let mut data = input("verify-slow-2.bin");
    data[1] = 4; // statistics
    let log = replay(&data).unwrap_or_default();
    assert!(
        log.contains("BPF program is too large. Processed 1000001 insn"),
        "{log}"
    );
    assert!(
        log.contains(
            "processed 1000001 insns (limit 1000000) max_states_per_insn 4 total_states 12501 \
             peak_states 12501 mark_read 0"
        ),
        "{log}"
    );
}
