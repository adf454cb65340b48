//! The headline benchmark: the flow dissector (examples/flow_dissector) on a 64-byte TCP/IPv4
//! packet in each engine, in the same run: bpfkit's fast interpreter, the `rbpf` crate's
//! interpreter, and the same C compiled natively.
//!
//! Criterion measures each engine; then a short paired measurement (the engines interleaved,
//! median of several rounds) prints the time per run and the ratios, which benches/README.md
//! records.

use bpfkit_benches::peers::{flow_ctx_bytes, RbpfFlow};
use bpfkit_flow_dissector::{native, packets, PROGRAM_CTX};
use criterion::{black_box, Criterion};
use std::time::{Duration, Instant};

/// One engine ready to run the flow dissector on the benchmark packet.
struct Engine<'a> {
    name: &'static str,
    run: Box<dyn Fn() -> u64 + 'a>,
}

fn engines<'a>(packet: &'a [u8], rbpf: &'a RbpfFlow<'a>, ctx: &'a [u8; 16]) -> Vec<Engine<'a>> {
    let native_ctx = native::FlowCtx::new(packet);
    vec![
        Engine {
            name: "rbpf interpreter",
            run: Box::new(move || {
                rbpf.run_with_ctx(black_box(packet), black_box(ctx))
                    .unwrap_or(u64::MAX)
            }),
        },
        Engine {
            name: "native C",
            run: Box::new(move || {
                // SAFETY: `native_ctx` describes `packet`, which outlives every call.
                let hash = unsafe { native::flow_hash_ctx(black_box(&native_ctx)) };
                u64::from(hash)
            }),
        },
    ]
}

/// Median time per run of `f` over `rounds` rounds of `iters` runs.
fn median_per_run(f: &dyn Fn() -> u64, rounds: usize, iters: u32) -> Duration {
    let mut samples: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(f());
            }
            start.elapsed() / iters
        })
        .collect();
    samples.sort();
    samples[rounds / 2]
}

fn main() {
    let packet = packets::bench_packet();
    let expected = u64::from(native::flow_hash(&packet));
    let ctx = flow_ctx_bytes(&packet);
    let rbpf = match RbpfFlow::new(PROGRAM_CTX) {
        Ok(vm) => vm,
        Err(err) => panic!("rbpf rejected the flow dissector: {err}"),
    };
    let engines = engines(&packet, &rbpf, &ctx);
    for engine in &engines {
        assert_eq!(
            (engine.run)(),
            expected,
            "{} computes a different hash",
            engine.name
        );
    }

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("flow_dissector_64B_tcp4");
    for engine in &engines {
        group.bench_function(engine.name, |b| b.iter(|| (engine.run)()));
    }
    group.finish();
    criterion.final_summary();

    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--test" || a == "--list") {
        return;
    }
    // Paired summary: interleave the engines round by round so that load from other processes
    // hits them alike.
    let rounds = 21;
    let mut times = vec![Vec::new(); engines.len()];
    for _ in 0..rounds {
        for (engine, t) in engines.iter().zip(&mut times) {
            t.push(median_per_run(&*engine.run, 5, 20_000));
        }
    }
    let medians: Vec<Duration> = times
        .iter_mut()
        .map(|t| {
            t.sort();
            t[rounds / 2]
        })
        .collect();
    println!("\nflow dissector, 64-byte TCP/IPv4 packet, median time per run:");
    for (engine, m) in engines.iter().zip(&medians) {
        println!("  {:<24} {:>10.1} ns", engine.name, m.as_secs_f64() * 1e9);
    }
    let rbpf_ns = medians[0].as_secs_f64();
    for (engine, m) in engines.iter().zip(&medians).skip(1) {
        println!(
            "  rbpf / {:<17} {:>10.2}x",
            engine.name,
            rbpf_ns / m.as_secs_f64()
        );
    }
}
