//! Differential test: every case of the table is loaded into the running Linux kernel with
//! `BPF_PROG_LOAD` (privileged) and must get the same verdict from bpfkit; the first error lines
//! are compared and reported. Whole logs are compared too, and counted (not asserted): level 1,
//! level 2 and level 4 (statistics), map addresses and the verification time set aside, with
//! the `processed N insns` count and the four state counters counted separately.
//! `BPFKIT_LOG_DUMP=FILE` writes, for every case whose log differs, the first differing line of
//! each level; `BPFKIT_LOG_CASE=NAME` prints both whole logs of that case. Skips, saying why, where `bpf()` is unavailable.

mod common;

use bpfkit_kernel::VerifierStats;
use bpfkit_kernel::{map_create, resolve_map_indices, ProgLoad};
use std::fmt::Write as _;

/// Whole-log agreement counters of one log level.
#[derive(Default)]
struct LogCounts {
    compared: usize,
    identical: usize,
}

/// The first line where two logs differ, for the dump.
fn first_difference(kernel: &str, ours: &str) -> String {
    let (k, o): (Vec<&str>, Vec<&str>) = (kernel.lines().collect(), ours.lines().collect());
    let at = (0..k.len().max(o.len()))
        .find(|&i| k.get(i) != o.get(i))
        .unwrap_or(0);
    format!(
        "  line {}\n    kernel: {}\n    bpfkit: {}\n",
        at + 1,
        k.get(at).unwrap_or(&"<end>"),
        o.get(at).unwrap_or(&"<end>")
    )
}

#[test]
fn bpfkit_and_linux_agree_on_every_case() {
    if let Err(why) = bpfkit_kernel::available() {
        eprintln!("skipped: {why}");
        return;
    }
    let cases = common::load_cases();
    let (mut verdict_ok, mut line_ok) = (0, 0);
    let mut levels = [
        (1u32, LogCounts::default()),
        (2, LogCounts::default()),
        (4, LogCounts::default()),
    ];
    let (mut processed_ok, mut states_ok, mut stats_compared) = (0, 0, 0);
    let mut dump = String::new();
    let mut disagreements = Vec::new();
    for c in &cases {
        let maps: Vec<_> = c
            .maps
            .iter()
            .map(|m| {
                map_create(
                    m.map_type.kernel_id(),
                    m.key_size,
                    m.value_size,
                    m.max_entries,
                    0,
                )
            })
            .collect::<Result<_, _>>()
            .expect("map_create");
        let fds: Vec<i32> = maps.iter().map(|m| m.fd()).collect();
        let mut insns = c.insns.clone();
        let kernel = if resolve_map_indices(&mut insns, &fds).is_ok() {
            let mut result = None;
            for (level, counts) in &mut levels {
                let mut load = ProgLoad::new(c.prog_type.kernel_id());
                load.license = &c.license;
                load.log_level = *level;
                let l = load.load(&insns);
                if *level == 1 {
                    result = Some(match l.result {
                        Ok(_) => None,
                        Err(e) => Some((e.0, common::first_error_line(&l.log))),
                    });
                }
                let theirs = bpfkit_kernel::table::normalise_log(&l.log);
                let ours = bpfkit_kernel::table::normalise_log(&common::bpfkit_log_at(c, *level));
                if std::env::var("BPFKIT_LOG_CASE").is_ok_and(|n| n == c.name) {
                    eprintln!("--- kernel, level {level}\n{theirs}\n--- bpfkit\n{ours}\n---");
                }
                counts.compared += 1;
                if theirs == ours {
                    counts.identical += 1;
                } else {
                    let _ = write!(
                        dump,
                        "{} level {level}\n{}",
                        c.name,
                        first_difference(&theirs, &ours)
                    );
                }
                if *level == 4 {
                    if let (Some(k), Some(o)) =
                        (VerifierStats::parse(&l.log), VerifierStats::parse(&ours))
                    {
                        stats_compared += 1;
                        if k.processed_insns == o.processed_insns {
                            processed_ok += 1;
                        }
                        if (
                            k.max_states_per_insn,
                            k.total_states,
                            k.peak_states,
                            k.mark_read,
                        ) == (
                            o.max_states_per_insn,
                            o.total_states,
                            o.peak_states,
                            o.mark_read,
                        ) {
                            states_ok += 1;
                        }
                    }
                }
            }
            result.flatten()
        } else {
            // A map handle that names no map: bpfkit reports it as the kernel does a bad fd.
            Some((9, String::new()))
        };
        let ours = common::run_bpfkit(c);
        if kernel.is_none() == ours.is_none() {
            verdict_ok += 1;
        } else if c.xfail.is_none() {
            disagreements.push(format!(
                "{}: kernel {:?}, bpfkit {:?}",
                c.name, kernel, ours
            ));
        }
        if kernel == ours {
            line_ok += 1;
        } else if kernel.is_some() && ours.is_some() {
            eprintln!(
                "first line differs in {}: kernel {:?}, bpfkit {:?}",
                c.name, kernel, ours
            );
        }
    }
    if let Some(path) = std::env::var_os("BPFKIT_LOG_DUMP") {
        std::fs::write(&path, &dump).expect("writing the log dump");
    }
    eprintln!(
        "{} cases: verdict agrees on {verdict_ok}, errno and first error line on {line_ok}",
        cases.len()
    );
    for (level, counts) in &levels {
        eprintln!(
            "whole level-{level} log identical (map addresses and time aside): {} of {}",
            counts.identical, counts.compared
        );
    }
    eprintln!(
        "statistics of {stats_compared} runs: processed count equal on {processed_ok}, \
         the four state counters equal on {states_ok}"
    );
    assert!(
        disagreements.is_empty(),
        "verdicts differ:\n{}",
        disagreements.join("\n")
    );
}
