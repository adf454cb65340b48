//! Hash map lookup and update ns/op **from programs**: a loaded socket_filter program does
//! `LOOP` `bpf_map_lookup_elem` (or `bpf_map_update_elem`) calls in a bounded loop per run, so
//! the per-run cost of `prog_test_run` (context setup, timing) is spread over many map
//! operations; several threads run the same loaded program at once. The object API
//! (`Bpf::map_lookup_elem` / `map_update_elem`) on the same map is measured next to it, and an
//! empty loop (the same program without the helper call) gives the loop's own cost.
//!
//! The map: `BPF_MAP_TYPE_HASH`, 4-byte keys, 8-byte values, 10,000 entries, 1,024 present;
//! every lookup hits, every update replaces an existing element. Criterion reports time per
//! map operation (throughput in elements = operations); `main` also prints a summary in ns/op.

use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use bpfkit::maps::{MapAttr, MapType};
use bpfkit::prog::load::ProgLoadAttr;
use bpfkit::prog::run::TestRunAttr;
use bpfkit::progtype::ProgType;
use bpfkit::{Bpf, Fd};
use bpfkit_isa::Insn;
use criterion::{black_box, BenchmarkId, Criterion, Throughput};

/// Map operations per program run.
const LOOP: i32 = 256;
/// Keys present in the map (a power of two: the program masks its counter).
const PRESENT: u32 = 1024;

fn setup() -> (Bpf, Fd) {
    let bpf = Bpf::new();
    let fd = match bpf.map_create(&MapAttr::new(MapType::Hash, 4, 8, 10_000)) {
        Ok(fd) => fd,
        Err(e) => panic!("map_create: {e}"),
    };
    for k in 0..PRESENT {
        if let Err(e) = bpf.map_update_elem(fd, &k.to_ne_bytes(), &u64::from(k).to_ne_bytes(), 0) {
            panic!("update: {e}");
        }
    }
    (bpf, fd)
}

/// What the loop body does.
#[derive(Clone, Copy, Debug)]
enum Body {
    /// Nothing but the key computation (the loop's own cost).
    Empty,
    /// `v = lookup(&key); if v: acc += *v`
    Lookup,
    /// `update(&key, &one, BPF_ANY)`
    Update,
}

/// `for i in 0..LOOP { key = i & (PRESENT - 1); <body> }; return acc`.
fn program(map: Fd, body: Body) -> Vec<Insn> {
    let ld_map = [
        Insn::new(0x18, 1, 1, 0, map.0 as i32),
        Insn::new(0, 0, 0, 0, 0),
    ];
    let mut p = vec![
        Insn::new(0xb7, 6, 0, 0, 0),    // r6 = 0 (i)
        Insn::new(0xb7, 7, 0, 0, 0),    // r7 = 0 (acc)
        Insn::new(0x7a, 10, 0, -16, 1), // value = 1
    ];
    let top = p.len();
    p.extend([
        Insn::new(0xbf, 1, 6, 0, 0),                    // r1 = i
        Insn::new(0x57, 1, 0, 0, (PRESENT - 1) as i32), // r1 &= PRESENT - 1
        Insn::new(0x63, 10, 1, -4, 0),                  // key = r1
    ]);
    match body {
        Body::Empty => p.push(Insn::new(0x0f, 7, 1, 0, 0)), // acc += r1
        Body::Lookup => {
            p.extend(ld_map);
            p.extend([
                Insn::new(0xbf, 2, 10, 0, 0),
                Insn::new(0x07, 2, 0, 0, -4),
                Insn::new(0x85, 0, 0, 0, 1), // bpf_map_lookup_elem
                Insn::new(0x15, 0, 0, 2, 0), // if r0 == 0 goto +2
                Insn::new(0x79, 1, 0, 0, 0), // r1 = *(u64 *)(r0 + 0)
                Insn::new(0x0f, 7, 1, 0, 0), // acc += r1
            ]);
        }
        Body::Update => {
            p.extend(ld_map);
            p.extend([
                Insn::new(0xbf, 2, 10, 0, 0),
                Insn::new(0x07, 2, 0, 0, -4),
                Insn::new(0xbf, 3, 10, 0, 0),
                Insn::new(0x07, 3, 0, 0, -16),
                Insn::new(0xb7, 4, 0, 0, 0), // BPF_ANY
                Insn::new(0x85, 0, 0, 0, 2), // bpf_map_update_elem
                Insn::new(0x0f, 7, 0, 0, 0), // acc += r0
            ]);
        }
    }
    p.push(Insn::new(0x07, 6, 0, 0, 1)); // i += 1
    let back = top as i64 - (p.len() as i64 + 1);
    p.push(Insn::new(0xa5, 6, 0, back as i16, LOOP)); // if i < LOOP goto top
    p.push(Insn::new(0xbf, 0, 7, 0, 0));
    p.push(Insn::new(0x95, 0, 0, 0, 0));
    p
}

fn load(bpf: &Bpf, map: Fd, body: Body) -> Fd {
    let insns = program(map, body);
    let attr = ProgLoadAttr {
        prog_type: ProgType::SocketFilter,
        insns: &insns,
        license: "GPL",
        log_level: 0,
        log_size: 0,
    };
    match bpf.prog_load(&attr) {
        Ok(l) => l.fd,
        Err(e) => panic!("{body:?} program rejected: {e}"),
    }
}

/// Runs `op(thread)` on `threads` threads started together; the slowest thread's time.
fn parallel(threads: usize, op: &(dyn Fn(usize) + Sync)) -> Duration {
    let barrier = Barrier::new(threads);
    thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    op(t);
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .max()
            .unwrap_or_default()
    })
}

/// A 64-byte frame: the socket filter ignores it.
fn packet() -> Vec<u8> {
    let mut p = vec![0u8; 64];
    p[12] = 0x08;
    p
}

fn run_program(bpf: &Bpf, prog: Fd, packet: &[u8], runs: u64) {
    let attr = TestRunAttr {
        data_in: packet,
        repeat: u32::try_from(runs).unwrap_or(u32::MAX),
        ..TestRunAttr::default()
    };
    black_box(bpf.prog_test_run(prog, &attr).is_ok());
}

const THREADS: [usize; 3] = [1, 2, 4];

fn from_programs(c: &mut Criterion) {
    let (bpf, map) = setup();
    let packet = packet();
    let mut g = c.benchmark_group("prog_maps/program_loop");
    for body in [Body::Empty, Body::Lookup, Body::Update] {
        let prog = load(&bpf, map, body);
        for threads in THREADS {
            g.throughput(Throughput::Elements(LOOP as u64 * threads as u64));
            let name = format!("{body:?}").to_lowercase();
            g.bench_with_input(BenchmarkId::new(name, threads), &threads, |b, &n| {
                b.iter_custom(|iters| parallel(n, &|_| run_program(&bpf, prog, &packet, iters)));
            });
        }
    }
    g.finish();
}

fn from_api(c: &mut Criterion) {
    let (bpf, map) = setup();
    let mut g = c.benchmark_group("prog_maps/api");
    for threads in THREADS {
        g.throughput(Throughput::Elements(threads as u64));
        g.bench_with_input(BenchmarkId::new("lookup", threads), &threads, |b, &n| {
            b.iter_custom(|iters| {
                parallel(n, &|t| {
                    let mut v = [0u8; 8];
                    for i in 0..iters {
                        let k = (i as u32).wrapping_add(t as u32 * 7) & (PRESENT - 1);
                        black_box(bpf.map_lookup_elem(map, &k.to_ne_bytes(), &mut v).is_ok());
                    }
                })
            });
        });
        g.bench_with_input(BenchmarkId::new("update", threads), &threads, |b, &n| {
            b.iter_custom(|iters| {
                parallel(n, &|t| {
                    for i in 0..iters {
                        let k = (i as u32).wrapping_add(t as u32 * 7) & (PRESENT - 1);
                        black_box(
                            bpf.map_update_elem(map, &k.to_ne_bytes(), &i.to_ne_bytes(), 0)
                                .is_ok(),
                        );
                    }
                })
            });
        });
    }
    g.finish();
}

/// A quick ns/op table (wall time, best of 5 rounds) printed after criterion's numbers.
fn summary() {
    let (bpf, map) = setup();
    let packet = packet();
    let runs = 2_000u64;
    println!("\nprog_maps summary (ns per map operation, best of 5 rounds):");
    let mut empty = [0f64; THREADS.len()];
    for body in [Body::Empty, Body::Lookup, Body::Update] {
        let prog = load(&bpf, map, body);
        for (i, threads) in THREADS.into_iter().enumerate() {
            let best = (0..5)
                .map(|_| parallel(threads, &|_| run_program(&bpf, prog, &packet, runs)))
                .min()
                .unwrap_or_default();
            let per_op = best.as_nanos() as f64 / (runs as f64 * f64::from(LOOP));
            if matches!(body, Body::Empty) {
                empty[i] = per_op;
            }
            println!(
                "  program {body:?} x{threads} threads: {per_op:.1} ns/op per thread ({:.1} net of the loop)",
                per_op - empty[i]
            );
        }
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    from_programs(&mut c);
    from_api(&mut c);
    c.final_summary();
    summary();
}
