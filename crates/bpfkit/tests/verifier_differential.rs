//! Differential fuzzing of the verifier against Linux: random valid-ish programs from
//! `bpfkit_verifier::progen` are loaded into the running kernel (`BPF_PROG_LOAD`, privileged)
//! and into bpfkit (`Bpf::prog_load`, the runtime's helpers, contexts and maps), and the
//! verdicts, errnos and first error lines are compared.
//!
//! Every program both accept also runs on the same packet in the kernel (`BPF_PROG_TEST_RUN`)
//! and in bpfkit's checked interpreter (the soundness oracle): a checked-run fault fails the
//! test, and so does a different return value or packet when the generator knows the result is
//! deterministic.
//!
//! The test fails on a verdict difference and prints the counts of first-line differences.
//! Environment: `VDIFF_PROGRAMS` (default 3000, about 10 s of CPU in a debug build), `VDIFF_SEED`
//! (default fixed), `VDIFF_SHOW=N` (print up to N line differences), `VDIFF_DUMP=SEED` (print
//! one program with both logs), `VDIFF_KEEP_GOING=1` (report every difference, for long
//! campaigns). Skips, saying why, where `bpf()` is unavailable.
#![expect(
    clippy::unwrap_used,
    reason = "a failing setup is the test failure to report"
)]

use std::collections::BTreeMap;

use bpfkit::maps::MapAttr;
use bpfkit::prog::load::ProgLoadAttr;
use bpfkit::prog::run::TestRunAttr;
use bpfkit::Bpf;
use bpfkit_isa::disasm::{print_insn, PrintOptions};
use bpfkit_isa::Insn;
use bpfkit_kernel::table::Outcome;
use bpfkit_kernel::{Errno, ProgLoad};
use bpfkit_verifier::env::ProgType;
use bpfkit_verifier::progen::{generate, GenProgram};

mod progen_util;
use progen_util::{env_num, errno_name, first_line, resolve_maps};

/// The seed of program `i` of a campaign started from `seed`.
fn program_seed(seed: u64, i: u64) -> u64 {
    seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The kernel's load of `p`: outcome, log, and the program with its maps when accepted.
struct KernelLoad {
    outcome: Outcome,
    log: String,
    prog: Option<bpfkit_kernel::Prog>,
    _maps: Vec<bpfkit_kernel::Map>,
}

fn load_in_kernel(p: &GenProgram, log_level: u32) -> KernelLoad {
    let prog_type = bpfkit_kernel::names::prog_type_by_name(p.prog_type).unwrap();
    let maps: Vec<bpfkit_kernel::Map> = p
        .maps
        .iter()
        .map(|m| {
            let ty = bpfkit_kernel::names::map_type_by_name(m.map_type).unwrap();
            bpfkit_kernel::map_create(ty, m.key_size, m.value_size, m.max_entries, 0).unwrap()
        })
        .collect();
    let fds: Vec<i32> = maps.iter().map(bpfkit_kernel::Map::fd).collect();
    let mut insns = p.insns.clone();
    // An index past the maps (a deliberately wrong map) stays a bad descriptor in both.
    resolve_maps(&mut insns, &fds);
    let loaded = ProgLoad {
        log_level,
        ..ProgLoad::new(prog_type)
    }
    .load(&insns);
    let errno = match &loaded.result {
        Err(Errno::ENOSPC) => ProgLoad {
            log_level: 0,
            ..ProgLoad::new(prog_type)
        }
        .load(&insns)
        .result
        .err(),
        Ok(_) => None,
        Err(e) => Some(*e),
    };
    let outcome = match errno {
        None => Outcome::Accepted,
        Some(e) => Outcome::Rejected {
            errno: errno_name(e.0),
            error: first_line(&loaded.log),
        },
    };
    KernelLoad {
        outcome,
        log: loaded.log,
        prog: loaded.result.ok(),
        _maps: maps,
    }
}

/// bpfkit's load of `p`: the object table (maps and program) and the result.
fn load_in_bpfkit(p: &GenProgram, log_level: u32) -> (Bpf, Outcome, String, Option<bpfkit::Fd>) {
    let bpf = Bpf::new();
    let fds: Vec<i32> = p
        .maps
        .iter()
        .map(|m| {
            let attr = MapAttr {
                map_type: bpfkit_kernel::names::map_type_by_name(m.map_type).unwrap(),
                key_size: m.key_size,
                value_size: m.value_size,
                max_entries: m.max_entries,
                ..MapAttr::default()
            };
            i32::try_from(bpf.map_create(&attr).unwrap().0).unwrap()
        })
        .collect();
    let mut insns = p.insns.clone();
    resolve_maps(&mut insns, &fds);
    let attr = ProgLoadAttr {
        prog_type: ProgType::from_name(p.prog_type).unwrap(),
        insns: &insns,
        license: "GPL",
        log_level,
        log_size: bpfkit_kernel::DEFAULT_LOG_SIZE,
    };
    let (outcome, log, fd) = match bpf.prog_load(&attr) {
        Ok(l) => (Outcome::Accepted, l.log, Some(l.fd)),
        Err(e) => (
            Outcome::Rejected {
                errno: errno_name(e.errno.code()),
                // A rejection after the verifier accepted (the runtime's) has no log line.
                error: match first_line(&e.log) {
                    l if l.is_empty() => e.errno.to_string(),
                    l => l,
                },
            },
            e.log,
            None,
        ),
    };
    (bpf, outcome, log, fd)
}

/// The program as the verifier log prints it, one instruction a line.
fn listing(insns: &[Insn]) -> String {
    let opts = PrintOptions::default();
    let mut out = String::new();
    let mut i = 0;
    while i < insns.len() {
        out.push_str(&format!("    {i}: {}\n", print_insn(insns, i, &opts)));
        i += if insns[i].is_ld_imm64() { 2 } else { 1 };
    }
    out
}

/// The packet both engines run accepted programs on: Ethernet, IPv4, UDP, 64 bytes.
fn test_packet() -> Vec<u8> {
    let mut p: Vec<u8> = (0u8..64).map(|b| b.wrapping_mul(37)).collect();
    p[12..14].copy_from_slice(&[0x08, 0x00]);
    p[14] = 0x45;
    p[23] = 17;
    p
}

/// Helpers the kernel offers these program types and bpfkit's runtime does not implement yet: a
/// program calling one is a known difference of the runtime's helper set (counted, not a
/// failure), not of the verifier.
const MISSING_HELPERS: &[&str] = &[];

/// Whether bpfkit's rejection is a gap of the runtime, not of the verifier: a helper it does
/// not implement. (Dead code, which the kernel accepts and removes, must agree: the runtime
/// replaces it before translation.)
fn runtime_gap(outcome: &Outcome) -> bool {
    let Outcome::Rejected { error, .. } = outcome else {
        return false;
    };
    error
        .strip_prefix("program of this type cannot use helper ")
        .is_some_and(|h| MISSING_HELPERS.contains(&h))
}

/// What differed, by kind, with an example seed each.
#[derive(Default)]
struct Tally {
    counts: BTreeMap<String, (usize, u64)>,
}

impl Tally {
    fn add(&mut self, key: String, seed: u64) {
        self.counts.entry(key).or_insert((0, seed)).0 += 1;
    }
}

#[test]
fn random_programs_get_linux_verdicts() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let programs = env_num("VDIFF_PROGRAMS", 3000);
    let seed = env_num("VDIFF_SEED", 0x0005_eed0_fb9f);
    let show = env_num("VDIFF_SHOW", 0);
    let dump = std::env::var("VDIFF_DUMP")
        .ok()
        .map(|_| env_num("VDIFF_DUMP", 0));
    let keep_going = std::env::var_os("VDIFF_KEEP_GOING").is_some();
    let packet = test_packet();

    let (mut accepted, mut rejected, mut line_same, mut errno_same) = (0u64, 0u64, 0u64, 0u64);
    let (mut ran, mut compared_runs, mut missing) = (0u64, 0u64, 0u64);
    let mut verdicts = Tally::default();
    let mut lines = Tally::default();
    let mut reasons = Tally::default();
    let mut failures = Vec::new();
    let seeds: Vec<u64> = match dump {
        Some(s) => vec![s],
        None => (0..programs).map(|i| program_seed(seed, i)).collect(),
    };
    for &s in &seeds {
        let p = generate(s);
        let kernel = load_in_kernel(&p, if dump.is_some() { 6 } else { 1 });
        let ours =
            std::panic::catch_unwind(|| load_in_bpfkit(&p, if dump.is_some() { 2 } else { 1 }));
        let Ok((bpf, outcome, log, fd)) = ours else {
            failures.push(format!(
                "seed {s:#x}: bpfkit panicked\n{}",
                listing(&p.insns)
            ));
            continue;
        };
        if dump.is_some() {
            println!(
                "seed {s:#x} ({}):\n{}\nkernel: {}\n{}\nbpfkit: {outcome}\n{log}",
                p.prog_type,
                listing(&p.insns),
                kernel.outcome,
                kernel.log
            );
        }
        match (&kernel.outcome, &outcome) {
            (Outcome::Accepted, Outcome::Accepted) => accepted += 1,
            (_, b) if runtime_gap(b) && kernel.outcome != outcome => missing += 1,
            (
                Outcome::Rejected {
                    errno: ke,
                    error: kl,
                },
                Outcome::Rejected {
                    errno: be,
                    error: bl,
                },
            ) => {
                rejected += 1;
                let shape: String = kl
                    .chars()
                    .filter(|c| !c.is_ascii_digit())
                    .take(40)
                    .collect();
                reasons.add(shape, s);
                if ke == be {
                    errno_same += 1;
                }
                if kl == bl && ke == be {
                    line_same += 1;
                } else {
                    if (lines.counts.len() as u64) < show {
                        println!("seed {s:#x}: first line differs\n  kernel: {ke} {kl}\n  bpfkit: {be} {bl}");
                    }
                    lines.add(format!("kernel `{kl}` / bpfkit `{bl}`"), s);
                }
            }
            (k, b) => {
                let key = format!("kernel {k} / bpfkit {b}");
                if verdicts.counts.len() < 3 || keep_going {
                    failures.push(format!(
                        "seed {s:#x} ({}): {key}\n{}",
                        p.prog_type,
                        listing(&p.insns)
                    ));
                }
                verdicts.add(key, s);
            }
        }
        // Soundness: an accepted program runs clean in the checked interpreter and, when its
        // result is deterministic, returns what the kernel returns.
        if let (Some(kprog), Some(fd)) = (&kernel.prog, fd) {
            ran += 1;
            let attr = TestRunAttr {
                data_in: &packet,
                checked: true,
                ..TestRunAttr::default()
            };
            let k = bpfkit_kernel::prog_test_run(kprog, &packet, None, 1);
            match (bpf.prog_test_run(fd, &attr), k) {
                (Err(e), _) => failures.push(format!(
                    "seed {s:#x}: checked run of an accepted program: {e}\n{}",
                    listing(&p.insns)
                )),
                (Ok(b), Ok(k)) if p.deterministic => {
                    compared_runs += 1;
                    if b.retval != k.retval || b.data_out != k.data_out {
                        failures.push(format!(
                            "seed {s:#x}: kernel retval {:#x}, bpfkit {:#x}{}\n{}",
                            k.retval,
                            b.retval,
                            if b.data_out == k.data_out {
                                ""
                            } else {
                                " (packets differ)"
                            },
                            listing(&p.insns)
                        ));
                    }
                }
                _ => {}
            }
        }
        if failures.len() >= 5 && !keep_going {
            break;
        }
    }
    println!(
        "{} random programs from seed {seed:#x}: {accepted} accepted and {rejected} rejected by \
         both, {} verdict differences; errno agrees on {errno_same} and errno + first error \
         line on {line_same} of {rejected} common rejections; {ran} accepted programs run in \
         bpfkit's checked interpreter, {compared_runs} compared with the kernel's test run; \
         {missing} are runtime gaps (helpers it lacks: {})",
        seeds.len(),
        verdicts.counts.values().map(|c| c.0).sum::<usize>(),
        MISSING_HELPERS.join(", ")
    );
    let mut by_count: Vec<_> = lines.counts.iter().collect();
    by_count.sort_by_key(|e| std::cmp::Reverse(e.1 .0));
    for (k, (n, s)) in by_count.iter().take(40) {
        println!("  {n:5} line differences (e.g. seed {s:#x}): {k}");
    }
    if std::env::var_os("VDIFF_REASONS").is_some() {
        let mut by_count: Vec<_> = reasons.counts.iter().collect();
        by_count.sort_by_key(|e| std::cmp::Reverse(e.1 .0));
        for (k, (n, s)) in by_count.iter().take(30) {
            println!("  {n:5} rejected (e.g. seed {s:#x}): {k}");
        }
    }
    for (k, (n, s)) in &verdicts.counts {
        println!("  {n:5} verdict differences (e.g. seed {s:#x}): {k}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
