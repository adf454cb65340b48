//! The verifier against the kernel's: bpfkit's verifier (through the runtime's environment,
//! `RuntimeEnv`, as `Bpf::prog_load` runs it) on every program of the example objects and on
//! generated XDP programs with long branchy paths in a bounded loop (about 10^5 processed
//! instructions in the kernel), and in the same run the same programs loaded into the running
//! kernel at log level 4, whose own `verification time N usec` is read from the log.
//!
//! The programs and how both sides load them are in
//! `crates/bpfkit/tests/verifier_cost_util/mod.rs` (shared with the count test
//! `crates/bpfkit/tests/verifier_cost.rs`). Criterion measures bpfkit per program (throughput in
//! processed instructions); then a summary table compares the fastest bpfkit verification (thread
//! CPU time, best of several rounds) with the fastest of the kernel's loads, in processed
//! instructions per second and as the ratio of times. Where bpf() is unavailable the kernel
//! columns say so.

#[path = "../crates/bpfkit/tests/verifier_cost_util/mod.rs"]
mod verifier_cost_util;

use bpfkit_benches::clock::Stamp;
use criterion::{black_box, Criterion, Throughput};
use std::time::Duration;
use verifier_cost_util::{
    example_cases, generated_cases, BpfkitSide, Case, KernelSide, KernelVerdict,
};

/// Kernel loads per program; the fastest `verification time` is kept.
const KERNEL_LOADS: usize = 10;
/// bpfkit rounds per program; the fastest round's mean is kept.
const ROUNDS: usize = 10;

/// The kernel's fastest verification of `case` (µs) and its processed count, or why not.
fn kernel_numbers(case: &Case) -> Result<(u64, u64), String> {
    bpfkit_kernel::available()?;
    let side = KernelSide::new(case)?;
    let mut best: Option<(u64, u64)> = None;
    for _ in 0..KERNEL_LOADS {
        match side.load(case) {
            KernelVerdict::Accepted(stats) => {
                let t = stats
                    .verification_time_us
                    .ok_or("no `verification time` line")?;
                if best.is_none_or(|(b, _)| t < b) {
                    best = Some((t, stats.processed_insns));
                }
            }
            KernelVerdict::Rejected(why) => return Err(format!("kernel rejects: {why}")),
        }
    }
    best.ok_or_else(|| "no load".into())
}

/// bpfkit's fastest mean time of `run` (µs, thread CPU time), `one_run` being a first guess.
fn bpfkit_time(one_run: Duration, run: impl Fn() -> bool) -> f64 {
    // About 20 ms per round, at least one verification.
    let per_round =
        (20_000.0 / one_run.as_secs_f64().mul_add(1e6, 1.0)).clamp(1.0, 10_000.0) as u32;
    let mut best = f64::INFINITY;
    for _ in 0..ROUNDS {
        let start = Stamp::now();
        for _ in 0..per_round {
            black_box(run());
        }
        let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(per_round);
        best = best.min(us);
    }
    best
}

/// bpfkit's side of a case: without BTF func_info as the kernel gets it, or with it where only
/// that is accepted (as `bpfkit::instantiate` loads clang objects).
fn bpfkit_side(case: &Case) -> Result<(BpfkitSide, u64, &'static str), String> {
    let side = BpfkitSide::new(case, false)?;
    match side.verify() {
        Ok(v) => Ok((side, v.stats().insns_processed, "")),
        Err(r) if case.has_func_info => {
            let with = BpfkitSide::new(case, true)?;
            match with.verify() {
                Ok(v) => Ok((with, v.stats().insns_processed, " (func_info)")),
                Err(_) => Err(format!("rejected at insn {}: {}", r.insn_idx, r.message)),
            }
        }
        Err(r) => Err(format!("rejected at insn {}: {}", r.insn_idx, r.message)),
    }
}

/// One line of the summary.
struct Row {
    name: String,
    ours: u64,
    /// `verify` alone.
    us: f64,
    /// `Bpf::prog_load` (verify + rewrite).
    load_us: Option<f64>,
    kernel: Result<(u64, u64), String>,
}

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .configure_from_args();
    let mut cases = Vec::new();
    let mut notes = Vec::new();
    for c in example_cases() {
        match c {
            Ok(c) => cases.push(c),
            Err((name, why)) => notes.push(format!("{name}: not measured: {why}")),
        }
    }
    cases.extend(generated_cases());

    let mut rows = Vec::new();
    let mut group = criterion.benchmark_group("verifier");
    for case in &cases {
        let (side, ours, how) = match bpfkit_side(case) {
            Ok(s) => s,
            Err(why) => {
                notes.push(format!("{}: bpfkit: {why}", case.name));
                continue;
            }
        };
        group.throughput(Throughput::Elements(ours));
        group.bench_function(case.name.as_str(), |b| {
            b.iter(|| black_box(side.verify().is_ok()));
        });
        let start = Stamp::now();
        black_box(side.verify().is_ok());
        let one = start.elapsed();
        let us = bpfkit_time(one, || side.verify().is_ok());
        let load_us = if side.prog_load() {
            Some(bpfkit_time(one, || side.prog_load()))
        } else {
            notes.push(format!("{}: Bpf::prog_load refuses it", case.name));
            None
        };
        rows.push(Row {
            name: format!("{}{how}", case.name),
            ours,
            us,
            load_us,
            kernel: kernel_numbers(case),
        });
    }
    group.finish();

    println!(
        "\nverifier: bpfkit (best of {ROUNDS} rounds, thread CPU time) vs the kernel's own \
         `verification time` (best of {KERNEL_LOADS} loads, log level 4)"
    );
    println!(
        "| program | processed bpfkit | processed kernel | bpfkit verify µs | bpfkit prog_load µs | kernel µs | bpfkit M insn/s | kernel M insn/s | bpfkit / kernel time |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let (mut sum_ours, mut sum_kernel) = (0.0, 0.0);
    for Row {
        name,
        ours,
        us,
        load_us,
        kernel,
    } in &rows
    {
        let rate = *ours as f64 / us;
        let load = load_us.map_or("-".to_string(), |l| format!("{l:.1}"));
        match kernel {
            Ok((kus, kproc)) => {
                let krate = if *kus == 0 {
                    "-".to_string()
                } else {
                    format!("{:.1}", *kproc as f64 / *kus as f64)
                };
                let ratio = if *kus == 0 {
                    "-".to_string()
                } else {
                    format!("{:.2}", us / *kus as f64)
                };
                sum_ours += us;
                sum_kernel += *kus as f64;
                println!(
                    "| {name} | {ours} | {kproc} | {us:.1} | {load} | {kus} | {rate:.1} | {krate} | {ratio} |"
                );
            }
            Err(why) => {
                println!("| {name} | {ours} | - | {us:.1} | {load} | - | {rate:.1} | - | - |");
                notes.push(format!("{name}: kernel: {why}"));
            }
        }
    }
    if sum_kernel > 0.0 {
        println!(
            "| **all programs** | | | {sum_ours:.1} | | {sum_kernel:.0} | | | {:.2} |",
            sum_ours / sum_kernel
        );
    }
    for n in &notes {
        println!("note: {n}");
    }
    criterion.final_summary();
}
