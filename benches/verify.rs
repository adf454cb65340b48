//! Verifier benchmark: bpfkit's verifier on the largest programs at hand — every program of
//! the committed examples (examples/*/*.o) and generated ones with long branchy paths and a
//! bounded loop — reported as instructions processed per second. In the same run, where the
//! bpf() system call is available, the same programs are loaded into the running kernel at log
//! level 4 and its own `verification time` and `processed` counts are printed next to ours.

use bpfkit::loader::Object;
use bpfkit_benches::clock::Stamp;
use bpfkit_isa::Insn;
use bpfkit_verifier::env::{MapInfo, MapType, ProgType};
use bpfkit_verifier::testing::TestEnv;
use bpfkit_verifier::{verify, Options};
use criterion::{black_box, Criterion, Throughput};

/// One program to verify: bpfkit's inputs, and what the kernel needs to load it.
struct Case {
    name: String,
    insns: Vec<Insn>,
    prog_type: ProgType,
    license: String,
    maps: Vec<MapInfo>,
    btf_func_info: bool,
}

impl Case {
    fn options(&self) -> Options {
        Options {
            prog_type: self.prog_type,
            log_level: 4,
            license: self.license.clone(),
            btf_func_info: self.btf_func_info,
            ..Options::default()
        }
    }

    fn env(&self) -> TestEnv {
        TestEnv::with_maps(self.maps.clone())
    }
}

fn example_cases() -> Vec<Case> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(root) else {
        return out;
    };
    let mut paths: Vec<_> = dirs.flatten().map(|d| d.path()).collect();
    paths.sort();
    for dir in paths {
        let Some(name) = dir.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            continue;
        };
        let Ok(bytes) = std::fs::read(dir.join(format!("{name}.o"))) else {
            continue;
        };
        let Ok(obj) = Object::parse(&bytes) else {
            continue;
        };
        let maps: Option<Vec<MapInfo>> = obj
            .maps
            .iter()
            .map(|m| {
                Some(MapInfo {
                    map_type: MapType::from_kernel_id(m.map_type)?,
                    key_size: m.key_size,
                    value_size: m.value_size,
                    // libbpf's sizing (a perf event array without max_entries: one slot per CPU).
                    max_entries: m.map_attr(None).max_entries,
                })
            })
            .collect();
        let Some(maps) = maps else { continue };
        for p in &obj.programs {
            let Some(prog_type) = ProgType::from_kernel_id(p.prog_type()) else {
                continue;
            };
            out.push(Case {
                name: format!("{name}/{}", p.name),
                insns: p.insns.clone(),
                prog_type,
                license: obj.license.clone(),
                maps: maps.clone(),
                btf_func_info: !p.func_info.is_empty(),
            });
        }
    }
    out
}

/// `blocks` times: load a context byte, branch on it, update r0 on one side — 2^blocks paths
/// that pruning must fold — then a bounded loop of `iters` iterations.
fn branchy(blocks: i32, iters: i32) -> Vec<Insn> {
    let mut p = vec![Insn::new(0xbf, 6, 1, 0, 0), Insn::new(0xb7, 0, 0, 0, 0)];
    for b in 0..blocks {
        let off = (b % 64) as i16;
        p.push(Insn::new(0x71, 2, 6, off, 0)); // r2 = *(u8 *)(r6 + off)
        p.push(Insn::new(0x25, 2, 0, 2, b)); // if r2 > b goto +2
        p.push(Insn::new(0x07, 0, 0, 0, 1)); // r0 += 1
        p.push(Insn::new(0x57, 0, 0, 0, 0xff)); // r0 &= 0xff
        p.push(Insn::new(0x07, 0, 0, 0, 0)); // r0 += 0
    }
    p.push(Insn::new(0xb7, 3, 0, 0, 0)); // r3 = 0
    p.push(Insn::new(0x07, 3, 0, 0, 1)); // loop: r3 += 1
    p.push(Insn::new(0x0f, 0, 3, 0, 0)); // r0 += r3
    p.push(Insn::new(0xa5, 3, 0, -3, iters)); // if r3 < iters goto loop
    p.push(Insn::new(0x95, 0, 0, 0, 0));
    p
}

fn generated_cases() -> Vec<Case> {
    [(64, 100), (512, 1000)]
        .into_iter()
        .map(|(blocks, iters)| Case {
            name: format!("generated/branchy{blocks}_loop{iters}"),
            insns: branchy(blocks, iters),
            prog_type: ProgType::SocketFilter,
            license: "GPL".into(),
            maps: Vec::new(),
            btf_func_info: false,
        })
        .collect()
}

/// `processed N` from a log's statistics line.
fn processed(log: &str) -> Option<u64> {
    let line = log.lines().find(|l| l.starts_with("processed "))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The kernel's own numbers for `c`: (verification time in µs, processed), median of 5 loads.
fn kernel_numbers(c: &Case) -> Option<(u64, u64)> {
    bpfkit_kernel::available().ok()?;
    let maps: Vec<_> = c
        .maps
        .iter()
        .map(|m| {
            bpfkit_kernel::map_create(
                m.map_type.kernel_id(),
                m.key_size,
                m.value_size,
                m.max_entries,
                0,
            )
        })
        .collect::<Result<_, _>>()
        .ok()?;
    let fds: Vec<i32> = maps.iter().map(bpfkit_kernel::Map::fd).collect();
    let mut insns = c.insns.clone();
    bpfkit_kernel::resolve_map_indices(&mut insns, &fds).ok()?;
    let mut load = bpfkit_kernel::ProgLoad::new(c.prog_type.kernel_id());
    load.license = &c.license;
    load.log_level = 4;
    let mut times = Vec::new();
    let mut count = 0;
    for _ in 0..5 {
        let l = load.load(&insns);
        l.result.ok()?;
        let t = l
            .log
            .lines()
            .find_map(|x| x.strip_prefix("verification time "))?;
        times.push(t.split_whitespace().next()?.parse::<u64>().ok()?);
        count = processed(&l.log)?;
    }
    times.sort_unstable();
    Some((times[2], count))
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let mut cases = example_cases();
    cases.extend(generated_cases());
    let mut summary = Vec::new();
    let mut group = criterion.benchmark_group("verify");
    for c in &cases {
        let env = c.env();
        let opts = c.options();
        let Ok(v) = verify(&c.insns, &env, &opts) else {
            summary.push(format!("{:<40} rejected by bpfkit", c.name));
            continue;
        };
        let ours = v.stats().insns_processed;
        group.throughput(Throughput::Elements(ours));
        group.bench_function(c.name.as_str(), |b| {
            b.iter(|| black_box(verify(black_box(&c.insns), &env, &opts).is_ok()));
        });
        // A direct mean for the summary line (thread CPU time: the machine is shared).
        let n = 200;
        let start = Stamp::now();
        for _ in 0..n {
            black_box(verify(&c.insns, &env, &opts).is_ok());
        }
        let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        let kernel = match kernel_numbers(c) {
            Some((t, k)) => format!("kernel {t:>6} us, processed {k:>7}"),
            None => "kernel: unavailable or rejected".to_string(),
        };
        summary.push(format!(
            "{:<40} bpfkit {us:>8.1} us, processed {ours:>7} ({:>6.1} M insn/s) | {kernel}",
            c.name,
            ours as f64 / us
        ));
    }
    group.finish();
    println!("\nverifier summary (time per verification; kernel time from its log_level 4 stats):");
    for line in summary {
        println!("{line}");
    }
    criterion.final_summary();
}
