//! Differential test: which program types may call each helper bpfkit implements, against the
//! live kernel.
//!
//! For every implemented helper and every program type, load a program that calls it (with
//! zeroed arguments) into the kernel. The kernel's log says `program of this type cannot use
//! helper` (or `unknown func`) exactly when the type may not call it; any other outcome (the
//! arguments are wrong, which is expected) means the helper is available. bpfkit's registry
//! must agree. Also checks each prototype's `gpl_only` the same way with a non-GPL license.
//! Skips, saying why, where `bpf()` is unavailable.

use bpfkit::helpers::registry;
use bpfkit_isa::Insn;
use bpfkit_kernel::ProgLoad;
use bpfkit_verifier::env::ProgType;

fn call_program(id: u32) -> Vec<u8> {
    let mut p: Vec<Insn> = (1..=5).map(|r| Insn::new(0xb7, r, 0, 0, 0)).collect();
    p.push(Insn::new(0x85, 0, 0, 0, id as i32));
    p.push(Insn::new(0xb7, 0, 0, 0, 0));
    p.push(Insn::new(0x95, 0, 0, 0, 0));
    p.iter().flat_map(|i| i.to_bytes()).collect()
}

fn kernel_log(t: ProgType, id: u32, license: &str) -> String {
    ProgLoad {
        license,
        ..ProgLoad::new(t.kernel_id())
    }
    .load(&call_program(id)[..])
    .log
}

#[test]
fn helper_availability_per_program_type_matches_the_kernel() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let mut ids: Vec<u32> = registry::all().iter().map(|d| d.id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut differences = Vec::new();
    let mut checked = 0;
    for t in ProgType::ALL {
        for &id in &ids {
            let log = kernel_log(t, id, "GPL");
            let kernel = !(log.contains("cannot use helper") || log.contains("unknown func"));
            let ours = registry::lookup(t, id as i32).is_some();
            checked += 1;
            if kernel != ours {
                differences.push(format!("{t} helper {id}: kernel {kernel}, bpfkit {ours}"));
            }
        }
    }
    println!("{checked} (program type, helper) pairs compared with the kernel");
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn gpl_only_flags_match_the_kernel() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let mut differences = Vec::new();
    for d in registry::all() {
        let Some(t) = ProgType::ALL.into_iter().find(|t| d.types.contains(*t)) else {
            continue;
        };
        let log = kernel_log(t, d.id, "Proprietary");
        let kernel_gpl_only = log.contains("cannot call GPL-restricted function");
        if kernel_gpl_only != d.proto.gpl_only {
            differences.push(format!(
                "{} ({}): kernel gpl_only {kernel_gpl_only}, bpfkit {}",
                d.proto.name, d.id, d.proto.gpl_only
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
