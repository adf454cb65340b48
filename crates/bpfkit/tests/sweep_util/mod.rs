//! Shared by the differential sweeps (`alignment_sweep`, `map_ptr_sweep`): a generated
//! table case, assembled, and bpfkit's outcome for it in the same shape as the kernel's.

use bpfkit::prog::load::{ProgLoadAttr, ProgLoadOpts};
use bpfkit_isa::Insn;
use bpfkit_kernel::table::{self, Case, Outcome};
use std::path::Path;

/// Parses one generated case (the table's format).
pub fn parse(text: &str) -> Case {
    match table::parse(text, Path::new("alignment_sweep")) {
        Ok(mut cases) if cases.len() == 1 => cases.remove(0),
        other => panic!("generated case does not parse: {other:?}\n{text}"),
    }
}

/// Assembles a case, map references as the table's runners resolve them.
pub fn assemble(case: &Case) -> Vec<Insn> {
    let text = match case.asm_for_assembler() {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    let mut insns = match bpfkit_isa::asm::kernel::assemble(&text) {
        Ok(i) => i,
        Err(e) => panic!("{}: {e}", case.name),
    };
    table::resolve_map_refs(&mut insns);
    insns
}

fn errno_name(e: i32) -> String {
    match bpfkit_kernel::Errno(e).name() {
        "E?" => format!("E{e}"),
        n => n.to_string(),
    }
}

/// bpfkit's outcome for a case: its maps in a fresh table, then `Bpf::prog_load_with`.
pub fn bpfkit_outcome(case: &Case, insns: &[Insn]) -> Outcome {
    let bpf = bpfkit::Bpf::new();
    let mut fds = Vec::new();
    for m in &case.maps {
        let attr = bpfkit::maps::MapAttr {
            map_type: bpfkit_kernel::names::map_type_by_name(&m.map_type).unwrap_or_default(),
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries: m.max_entries,
            ..bpfkit::maps::MapAttr::default()
        };
        match bpf.map_create(&attr) {
            Ok(fd) => fds.push(i32::try_from(fd.0).unwrap_or(-1)),
            Err(e) => panic!("{}: map {m}: {e}", case.name),
        }
    }
    let mut insns = insns.to_vec();
    if let Err(e) = bpfkit_kernel::resolve_map_indices(&mut insns, &fds) {
        panic!("{}: {e}", case.name);
    }
    let Some(prog_type) = bpfkit_verifier::env::ProgType::from_name(&case.prog_type) else {
        panic!("{}: program type {}", case.name, case.prog_type);
    };
    let attr = ProgLoadAttr {
        prog_type,
        insns: &insns,
        license: &case.license,
        log_level: 1,
        log_size: bpfkit_kernel::DEFAULT_LOG_SIZE,
    };
    let opts = ProgLoadOpts {
        prog_flags: case.prog_flags(),
        ..ProgLoadOpts::default()
    };
    match bpf.prog_load_with(&attr, &opts) {
        Ok(_) => Outcome::Accepted,
        Err(e) => Outcome::Rejected {
            errno: errno_name(e.errno.code()),
            error: table::error_lines(&e.log)
                .first()
                .map(|s| (*s).to_string())
                .unwrap_or_default(),
        },
    }
}
