//! The headline benchmark: the flow dissector (examples/flow_dissector) on a 64-byte TCP/IPv4
//! packet in each engine, in the same run: bpfkit's fast interpreter, the `rbpf` crate's
//! interpreter, the same C compiled natively, and (for context, where the bpf() system call is
//! available) the Linux kernel running the program's XDP build.
//!
//! Criterion measures each engine; then a paired measurement (the engines interleaved round by
//! round) prints the time per run and the ratios that benches/README.md records. In-process
//! engines are timed on the thread's CPU time (`bpfkit_benches::clock`), the kernel by its own
//! test-run timer.

use bpfkit::prog::load::ProgLoadAttr;
use bpfkit::prog::run::TestRunAttr;
use bpfkit::{Bpf, Fd};
use bpfkit_benches::clock::Stamp;
use bpfkit_benches::peers::{flow_ctx_bytes, KernelFlow, RbpfFlow};
use bpfkit_flow_dissector::{native, packets, PROGRAM_CTX, PROGRAM_XDP};
use bpfkit_isa::insns_from_bytes;
use bpfkit_verifier::env::ProgType;
use bpfkit_vm::{Helpers, Program, RunCtx, Vm};
use criterion::{black_box, Criterion};
use std::time::Duration;

/// One engine ready to run the flow dissector on the benchmark packet.
struct Engine<'a> {
    name: &'static str,
    /// Runs once; returns r0.
    run: Box<dyn Fn() -> u64 + 'a>,
    /// Times `iters` runs.
    time: Box<dyn Fn(u64) -> Duration + 'a>,
}

/// An engine timed in this process with a plain loop around `run`, on the thread's CPU time
/// (see `bpfkit_benches::clock`).
fn in_process<'a>(name: &'static str, run: impl Fn() -> u64 + Clone + 'a) -> Engine<'a> {
    let timed = run.clone();
    Engine {
        name,
        run: Box::new(run),
        time: Box::new(move |iters| {
            let start = Stamp::now();
            for _ in 0..iters {
                black_box(timed());
            }
            start.elapsed()
        }),
    }
}

/// bpfkit's runtime running the verified XDP build: `prog_test_run` with `repeat` = the
/// iterations (the per-call setup of the XDP buffer is amortised as in the kernel's test runs),
/// timed on the thread's CPU time.
fn bpfkit_xdp<'a>(bpf: &'a Bpf, fd: Fd, packet: &'a [u8]) -> Engine<'a> {
    let run = move |repeat: u32| {
        let attr = TestRunAttr {
            data_in: packet,
            repeat,
            checked: false,
            ..TestRunAttr::default()
        };
        bpf.prog_test_run(fd, &attr)
            .map_or(u64::MAX, |out| u64::from(out.retval))
    };
    Engine {
        name: "bpfkit XDP (test_run)",
        run: Box::new(move || run(1)),
        time: Box::new(move |iters| {
            let start = Stamp::now();
            let mut left = iters;
            while left > 0 {
                let batch = left.min(u64::from(u32::MAX));
                black_box(run(batch as u32));
                left -= batch;
            }
            start.elapsed()
        }),
    }
}

/// The kernel, timed by the kernel itself (BPF_PROG_TEST_RUN's `duration`, the mean per run).
fn kernel<'a>(kernel: &'a KernelFlow, packet: &'a [u8]) -> Engine<'a> {
    Engine {
        name: "kernel XDP (test_run)",
        run: Box::new(move || {
            kernel
                .run(packet, 1)
                .map_or(u64::MAX, |(r0, _)| u64::from(r0))
        }),
        time: Box::new(move |iters| {
            let mut left = iters;
            let mut total = Duration::ZERO;
            while left > 0 {
                let batch = left.min(u64::from(u32::MAX));
                let mean_ns = kernel
                    .run(packet, batch as u32)
                    .map_or(u32::MAX, |(_, ns)| ns);
                total += Duration::from_nanos(u64::from(mean_ns) * batch);
                left -= batch;
            }
            total
        }),
    }
}

fn main() {
    let packet = packets::bench_packet();
    let expected = u64::from(native::flow_hash(&packet));
    let ctx = flow_ctx_bytes(&packet);
    let native_ctx = native::FlowCtx::new(&packet);
    let rbpf = match RbpfFlow::new(PROGRAM_CTX) {
        Ok(vm) => vm,
        Err(err) => panic!("rbpf rejected the flow dissector: {err}"),
    };
    let kernel_flow = KernelFlow::new(PROGRAM_XDP);

    // bpfkit: r1 = the context block, which points into the packet (a readable region).
    let insns = match insns_from_bytes(PROGRAM_CTX) {
        Ok(insns) => insns,
        Err(e) => panic!("the flow dissector does not decode: {e}"),
    };
    let program = match Program::new(&insns, &Helpers::new()) {
        Ok(program) => program,
        Err(e) => panic!("bpfkit cannot translate the flow dissector: {e}"),
    };
    let mut bpfkit_ctx = ctx;
    let run_ctx = RunCtx::new()
        .with_mem(&mut bpfkit_ctx)
        .with_readonly_region(&packet);
    if let Err(e) = program.run_checked(&run_ctx) {
        panic!("the checked interpreter faults on the flow dissector: {e}");
    }
    // SAFETY: the checked interpreter ran this program on this input (the same context block and
    // packet, which the program only reads) without a fault; the fast runs repeat it exactly.
    let vm = unsafe { Vm::from_program(program.clone()) };

    // The XDP build through bpfkit's runtime: verified, context accesses rewritten.
    let xdp_insns = match insns_from_bytes(PROGRAM_XDP) {
        Ok(insns) => insns,
        Err(e) => panic!("the XDP flow dissector does not decode: {e}"),
    };
    let bpf = Bpf::new();
    let load = ProgLoadAttr {
        prog_type: ProgType::Xdp,
        insns: &xdp_insns,
        license: "Dual MIT/GPL",
        log_level: 0,
        log_size: 0,
    };
    let xdp_loaded = bpf.prog_load(&load);

    let mut engines = vec![
        in_process("rbpf interpreter", || {
            rbpf.run_with_ctx(black_box(&packet), black_box(&ctx))
                .unwrap_or(u64::MAX)
        }),
        in_process("bpfkit interpreter", || vm.run_ctx(black_box(&run_ctx))),
        // For reference: every access checked, like rbpf's interpreter.
        in_process("bpfkit checked interp.", || {
            program.run_checked(black_box(&run_ctx)).unwrap_or(u64::MAX)
        }),
        in_process("native C", || {
            // SAFETY: `native_ctx` describes `packet`, which outlives every call.
            let hash = unsafe { native::flow_hash_ctx(black_box(&native_ctx)) };
            u64::from(hash)
        }),
    ];
    match &xdp_loaded {
        Ok(prog) => engines.push(bpfkit_xdp(&bpf, prog.fd, &packet)),
        Err(e) => println!("bpfkit XDP skipped: the runtime rejects the program: {e}"),
    }
    match &kernel_flow {
        Ok(k) => engines.push(kernel(k, &packet)),
        Err(why) => println!("kernel peer skipped: {why}"),
    }
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
        group.bench_function(engine.name, |b| b.iter_custom(|iters| (engine.time)(iters)));
    }
    group.finish();
    criterion.final_summary();

    if std::env::args().any(|a| a == "--test" || a == "--list" || a == "--profile-time") {
        return;
    }
    paired_summary(&engines);
}

/// Interleaves the engines round by round (so load from other processes hits them alike), and
/// prints each one's median and fastest round (time per run) and the ratios of rbpf (the first
/// engine) to each. On a shared machine the fastest round is the better estimate of the quiet
/// machine; the median shows the spread.
fn paired_summary(engines: &[Engine<'_>]) {
    const ROUNDS: usize = 301;
    const ITERS: u64 = 2_000;
    let mut times = vec![Vec::with_capacity(ROUNDS); engines.len()];
    for _ in 0..ROUNDS {
        for (engine, t) in engines.iter().zip(&mut times) {
            t.push((engine.time)(ITERS).as_secs_f64() * 1e9 / ITERS as f64);
        }
    }
    for t in &mut times {
        t.sort_by(f64::total_cmp);
    }
    let median = |t: &Vec<f64>| t[ROUNDS / 2];
    let fastest = |t: &Vec<f64>| t[0];
    println!(
        "\nflow dissector, 64-byte TCP/IPv4 packet: ns per run ({ROUNDS} rounds of {ITERS} runs)"
    );
    println!("  {:<28} {:>10} {:>10}", "engine", "median", "fastest");
    for (engine, t) in engines.iter().zip(&times) {
        println!(
            "  {:<28} {:>10.1} {:>10.1}",
            engine.name,
            median(t),
            fastest(t)
        );
    }
    for (engine, t) in engines.iter().zip(&times).skip(1) {
        println!(
            "  rbpf / {:<21} {:>9.2}x {:>9.2}x",
            engine.name,
            median(&times[0]) / median(t),
            fastest(&times[0]) / fastest(t)
        );
    }
}
