//! Hash map lookup and update cost, from the object API (`Bpf::map_lookup_elem` /
//! `map_update_elem`, what a user-space caller pays) and from the helper path
//! (`BpfMap::lookup_ptr` / `prog_update`, what `bpf_map_lookup_elem` / `bpf_map_update_elem`
//! called from a program will pay), single-threaded and with several threads at once; and,
//! for context where the `bpf()` system call is available, the kernel's hash map through the
//! system call.
//!
//! The map: `BPF_MAP_TYPE_HASH`, 4-byte keys, 8-byte values, 10,000 entries, 1,000 of them
//! present; lookups hit. `program` runs loaded programs (socket_filter, through
//! `prog_test_run` with a repeat count) that look a key up and add to its value atomically, or
//! update it, next to an empty program that gives the cost of a run without the map.

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

const PRESENT: u32 = 1_000;

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

/// Runs `op(thread, i)` for `iters` iterations on each of `threads` threads started together;
/// the wall time of the slowest.
fn parallel(threads: usize, iters: u64, op: &(dyn Fn(usize, u64) + Sync)) -> Duration {
    let barrier = Barrier::new(threads);
    thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..iters {
                        op(t, i);
                    }
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

fn api(c: &mut Criterion) {
    let (bpf, fd) = setup();
    let mut g = c.benchmark_group("maps_hash/api");
    for threads in [1usize, 2, 4] {
        g.throughput(Throughput::Elements(threads as u64));
        g.bench_with_input(BenchmarkId::new("lookup", threads), &threads, |b, &n| {
            b.iter_custom(|iters| {
                parallel(n, iters, &|t, i| {
                    let k = ((i * 7 + t as u64 * 131) % u64::from(PRESENT)) as u32;
                    let mut v = [0u8; 8];
                    black_box(bpf.map_lookup_elem(fd, &k.to_ne_bytes(), &mut v).is_ok());
                })
            });
        });
        g.bench_with_input(
            BenchmarkId::new("update_existing", threads),
            &threads,
            |b, &n| {
                b.iter_custom(|iters| {
                    parallel(n, iters, &|t, i| {
                        let k = ((i * 7 + t as u64 * 131) % u64::from(PRESENT)) as u32;
                        black_box(
                            bpf.map_update_elem(fd, &k.to_ne_bytes(), &i.to_ne_bytes(), 0)
                                .is_ok(),
                        );
                    })
                });
            },
        );
    }
    g.finish();
}

fn program_side(c: &mut Criterion) {
    let (bpf, fd) = setup();
    let map = match bpf.map(fd) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    };
    let mut g = c.benchmark_group("maps_hash/helper_path");
    for threads in [1usize, 2, 4] {
        g.throughput(Throughput::Elements(threads as u64));
        g.bench_with_input(
            BenchmarkId::new("lookup_ptr", threads),
            &threads,
            |b, &n| {
                b.iter_custom(|iters| {
                    parallel(n, iters, &|t, i| {
                        let k = ((i * 7 + t as u64 * 131) % u64::from(PRESENT)) as u32;
                        black_box(map.lookup_ptr(&k.to_ne_bytes()));
                    })
                });
            },
        );
        g.bench_with_input(
            BenchmarkId::new("prog_update", threads),
            &threads,
            |b, &n| {
                b.iter_custom(|iters| {
                    parallel(n, iters, &|t, i| {
                        let k = ((i * 7 + t as u64 * 131) % u64::from(PRESENT)) as u32;
                        black_box(map.prog_update(&k.to_ne_bytes(), &i.to_ne_bytes(), 0));
                    })
                });
            },
        );
    }
    g.finish();
}

/// A socket filter: `key = 7; r0 = lookup(map, &key); lock *(u64 *)r0 += 1` (with `lookup`),
/// or `key = 7; value = 1; update(map, &key, &value, BPF_ANY)` (without), or nothing.
fn program(map: Fd, what: &str) -> Vec<Insn> {
    let mut p = vec![
        Insn::new(0xb7, 1, 0, 0, 7),    // r1 = 7
        Insn::new(0x63, 10, 1, -4, 0),  // *(u32 *)(r10 - 4) = r1
        Insn::new(0x7b, 10, 1, -16, 0), // *(u64 *)(r10 - 16) = r1
        Insn::new(0x18, 1, 1, 0, map.0 as i32),
        Insn::new(0, 0, 0, 0, 0),
        Insn::new(0xbf, 2, 10, 0, 0), // r2 = r10
        Insn::new(0x07, 2, 0, 0, -4), // r2 += -4
    ];
    match what {
        "lookup_add" => p.extend([
            Insn::new(0x85, 0, 0, 0, 1), // call bpf_map_lookup_elem
            Insn::new(0x15, 0, 0, 2, 0), // if r0 == 0 goto +2
            Insn::new(0xb7, 1, 0, 0, 1), // r1 = 1
            Insn::new(0xdb, 0, 1, 0, 0), // lock *(u64 *)(r0 + 0) += r1
        ]),
        "update" => p.extend([
            Insn::new(0xbf, 3, 10, 0, 0),  // r3 = r10
            Insn::new(0x07, 3, 0, 0, -16), // r3 += -16
            Insn::new(0xb7, 4, 0, 0, 0),   // r4 = BPF_ANY
            Insn::new(0x85, 0, 0, 0, 2),   // call bpf_map_update_elem
        ]),
        _ => p.clear(),
    }
    p.extend([Insn::new(0xb7, 0, 0, 0, 0), Insn::new(0x95, 0, 0, 0, 0)]);
    p
}

fn programs(c: &mut Criterion) {
    let (bpf, fd) = setup();
    let packet = [0u8; 64];
    let mut g = c.benchmark_group("maps_hash/program");
    for what in ["empty", "lookup_add", "update"] {
        let insns = program(fd, what);
        let attr = ProgLoadAttr {
            prog_type: ProgType::SocketFilter,
            insns: &insns,
            license: "GPL",
            log_level: 0,
            log_size: 0,
        };
        let prog = match bpf.prog_load(&attr) {
            Ok(l) => l.fd,
            Err(e) => panic!("prog_load {what}: {e}"),
        };
        for threads in [1usize, 2] {
            g.throughput(Throughput::Elements(threads as u64));
            g.bench_with_input(BenchmarkId::new(what, threads), &threads, |b, &n| {
                b.iter_custom(|iters| {
                    // One test run of `iters` repeats per thread.
                    parallel(n, 1, &|_, _| {
                        let run = TestRunAttr {
                            data_in: &packet,
                            repeat: u32::try_from(iters).unwrap_or(u32::MAX),
                            checked: false,
                            ..TestRunAttr::default()
                        };
                        black_box(bpf.prog_test_run(prog, &run).is_ok());
                    })
                });
            });
        }
    }
    g.finish();
}

fn kernel(c: &mut Criterion) {
    if let Err(why) = bpfkit_kernel::available() {
        eprintln!("maps_hash/kernel skipped: {why}");
        return;
    }
    let map = match bpfkit_kernel::map_create(1, 4, 8, 10_000, 0) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("maps_hash/kernel skipped: map_create {e:?}");
            return;
        }
    };
    for k in 0..PRESENT {
        let _ = bpfkit_kernel::map_update(&map, &k.to_ne_bytes(), &u64::from(k).to_ne_bytes(), 0);
    }
    let mut g = c.benchmark_group("maps_hash/kernel_syscall");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("lookup", |b| {
        b.iter(|| {
            i += 7;
            let k = (i % u64::from(PRESENT)) as u32;
            black_box(bpfkit_kernel::map_lookup(&map, &k.to_ne_bytes()).is_ok())
        });
    });
    g.bench_function("update_existing", |b| {
        b.iter(|| {
            i += 7;
            let k = (i % u64::from(PRESENT)) as u32;
            black_box(
                bpfkit_kernel::map_update(&map, &k.to_ne_bytes(), &i.to_ne_bytes(), 0).is_ok(),
            )
        });
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    api(&mut c);
    program_side(&mut c);
    programs(&mut c);
    kernel(&mut c);
    c.final_summary();
}
