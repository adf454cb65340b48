//! Random differential test of the unprivileged verifier rules against Linux: socket filter
//! programs from `bpfkit_verifier::progen` (the seeded generator of the privileged differential
//! test) are loaded into the running kernel without CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN and
//! CAP_NET_ADMIN (`bpfkit_kernel::UnprivilegedBpf`, `ProgLoad::load_unprivileged`) and into
//! bpfkit with `ProgLoadOpts::unprivileged`; verdicts must agree, and the errno and first
//! error line are counted (and printed with `UDIFF_SHOW=N`).
//!
//! Environment: `UDIFF_PROGRAMS` (default 1000 socket filters), `UDIFF_SEED` (default fixed),
//! `UDIFF_SHOW=N` (print up to N line differences). Skips, saying why, where unprivileged
//! `bpf()` is impossible.
#![expect(
    clippy::unwrap_used,
    reason = "a failing setup is the test failure to report"
)]

use bpfkit::maps::MapAttr;
use bpfkit::prog::load::{ProgLoadAttr, ProgLoadOpts};
use bpfkit::Bpf;
use bpfkit_kernel::table::Outcome;
use bpfkit_kernel::{Errno, ProgLoad, UnprivilegedBpf};
use bpfkit_verifier::env::ProgType;
use bpfkit_verifier::progen::{generate, GenProgram};

mod progen_util;
use progen_util::{env_num, errno_name, first_line, resolve_maps};

fn kernel(p: &GenProgram) -> Outcome {
    kernel_with_log(p).0
}

fn kernel_with_log(p: &GenProgram) -> (Outcome, String) {
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
    resolve_maps(&mut insns, &fds);
    let loaded = ProgLoad::new(prog_type).load_unprivileged(&insns[..]);
    let errno = match &loaded.result {
        Err(Errno::ENOSPC) => ProgLoad {
            log_level: 0,
            ..ProgLoad::new(prog_type)
        }
        .load_unprivileged(&insns[..])
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
    (outcome, loaded.log)
}

fn bpfkit(p: &GenProgram) -> Outcome {
    bpfkit_with_log(p).0
}

/// Whether bpfkit's verifier accepted `p` and the runtime then refused to translate it (a helper
/// call in code no path reaches, which the kernel removes as dead code).
fn refused_by_translation(p: &GenProgram) -> bool {
    bpfkit_with_log(p).1.contains("translation failed")
}

fn bpfkit_with_log(p: &GenProgram) -> (Outcome, String) {
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
        log_level: 1,
        log_size: bpfkit_kernel::DEFAULT_LOG_SIZE,
    };
    let opts = ProgLoadOpts {
        unprivileged: true,
        ..ProgLoadOpts::default()
    };
    match bpf.prog_load_with(&attr, &opts) {
        Ok(l) => (Outcome::Accepted, l.log),
        Err(e) => (
            Outcome::Rejected {
                errno: errno_name(e.errno.code()),
                error: first_line(&e.log),
            },
            format!("{}\n{}", e.log, e.errno),
        ),
    }
}

/// `UDIFF_DUMP=SEED`: the program and both logs (level 2), for debugging one difference.
#[test]
fn dump_one_program() {
    let Ok(seed) = std::env::var("UDIFF_DUMP") else {
        return;
    };
    let seed = u64::from_str_radix(seed.trim_start_matches("0x"), 16).unwrap();
    let _guard = UnprivilegedBpf::enable().unwrap();
    let p = generate(seed);
    let opts = bpfkit_isa::disasm::PrintOptions::default();
    for (i, insn) in p.insns.iter().enumerate() {
        let text = bpfkit_isa::disasm::print_insn(&p.insns, i, &opts);
        println!("{i}: {text}   {insn:?}");
    }
    let (outcome, log) = kernel_with_log(&p);
    let (ours, our_log) = bpfkit_with_log(&p);
    println!("kernel log:\n{log}\nbpfkit log:\n{our_log}\nkernel: {outcome}\nbpfkit: {ours}");
}

#[test]
fn random_socket_filters_get_linux_unprivileged_verdicts() {
    let _guard = match UnprivilegedBpf::enable() {
        Ok(g) => g,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    let want = env_num("UDIFF_PROGRAMS", 1000);
    let seed = env_num("UDIFF_SEED", 0x756e_7072_6976);
    let show = env_num("UDIFF_SHOW", 0);
    let (mut run, mut verdicts, mut rejected, mut lines, mut accepted) = (0, 0, 0, 0, 0);
    let mut dead_code = 0;
    let mut verdict_differences = Vec::new();
    let mut shown = 0;
    let mut i = 0u64;
    while run < want {
        let s = seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        i += 1;
        let p = generate(s);
        if p.prog_type != "socket_filter" {
            continue;
        }
        run += 1;
        let (k, b) = (kernel(&p), bpfkit(&p));
        match (&k, &b) {
            (Outcome::Accepted, Outcome::Accepted) => {
                verdicts += 1;
                accepted += 1;
            }
            (Outcome::Rejected { .. }, Outcome::Rejected { .. }) => {
                verdicts += 1;
                rejected += 1;
                if k == b {
                    lines += 1;
                } else if shown < show {
                    shown += 1;
                    println!("seed {s:#x}: kernel {k}\n                bpfkit {b}");
                }
            }
            (Outcome::Accepted, Outcome::Rejected { .. }) if refused_by_translation(&p) => {
                // The verifier agrees; the runtime's translation differs (docs/differences.md).
                verdicts += 1;
                dead_code += 1;
            }
            _ => verdict_differences.push(format!("seed {s:#x}: kernel {k}, bpfkit {b}")),
        }
    }
    println!(
        "{run} random unprivileged socket filters: verdict agrees on {verdicts} ({accepted} \
         accepted, {rejected} rejected by both), errno and first error line on {lines} of \
         {rejected}; {dead_code} accepted by the verifier but refused by the runtime's \
         translation (a helper call in dead code)"
    );
    assert!(
        verdict_differences.is_empty(),
        "{} verdict differences:\n{}",
        verdict_differences.len(),
        verdict_differences.join("\n")
    );
}
