//! End-to-end: every example object instantiates into a fresh table (or, for what bpfkit does
//! not support, fails with an error naming the piece), statically initialised prog_array slots
//! hold the object's programs, and a verifier rejection carries the kernel-style log with the C
//! source lines interleaved, taken from the object's line info.
#![allow(clippy::unwrap_used, reason = "in tests a panic is the failure report")]

mod e2e_support;

use bpfkit::instantiate::{instantiate, InstantiateError, InstantiateOptions};
use bpfkit::loader::{Object, SlotTarget};
use bpfkit::Bpf;
use bpfkit_isa::Insn;
use e2e_support::{example_dirs, load, repo};

#[test]
fn packet_and_tracing_examples_instantiate_with_every_map_and_program() {
    for dir in example_dirs() {
        for name in [
            "sockex1",
            "sockex3",
            "tracex2",
            "drop_monitor",
            "tc_rewrite",
            "xdp_globals",
            "legacy_maps",
            "cpuv4",
        ] {
            let (bpf, inst, obj) = load(&dir, name);
            assert_eq!(inst.maps.len(), obj.maps.len(), "{name}");
            assert_eq!(inst.progs.len() + inst.skipped.len(), obj.programs.len());
            for def in &obj.maps {
                let fd = inst.map(&def.name).unwrap();
                let info = bpf.map_info(fd).unwrap();
                assert_eq!(info.key_size, def.key_size, "{name}: {}", def.name);
                assert_eq!(info.value_size, def.value_size, "{name}: {}", def.name);
                assert_eq!(info.max_entries, def.max_entries, "{name}: {}", def.name);
                if let Some(init) = &def.initial_value {
                    assert_eq!(&bpf.map_lookup(fd, &0u32.to_le_bytes()).unwrap(), init);
                }
            }
            for p in &obj.programs {
                assert!(
                    inst.prog(&p.name).is_some(),
                    "{name}: {} not loaded",
                    p.name
                );
            }
        }
    }
}

#[test]
fn sockex3_prog_array_slots_hold_its_parsers() {
    for dir in example_dirs() {
        let (bpf, inst, obj) = load(&dir, "sockex3");
        let def = obj.map("parsers").unwrap();
        assert!(!def.init_slots.is_empty());
        let pa_fd = inst.map("parsers").unwrap();
        let map = bpf.map(pa_fd).unwrap();
        let pa = map.as_prog_array().unwrap();
        for slot in &def.init_slots {
            let SlotTarget::Program(p) = &slot.target else {
                panic!("sockex3's parsers hold programs")
            };
            let entry = pa.get(slot.slot).unwrap();
            let loaded = bpf.prog(inst.prog(p).unwrap()).unwrap();
            use bpfkit::maps::ProgEntry;
            assert_eq!(entry.id(), ProgEntry::id(&*loaded), "slot {}", slot.slot);
        }
    }
}

#[test]
fn unsupported_objects_fail_cleanly() {
    for name in ["core_reloc", "kfunc_call"] {
        let path = repo().join(format!("examples/{name}/{name}.o"));
        let err = Object::parse(&std::fs::read(path).unwrap()).unwrap_err();
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn a_rejected_program_reports_the_log_with_c_source_lines() {
    let path = repo().join("examples/sockex1/sockex1.o");
    let mut obj = Object::parse(&std::fs::read(path).unwrap()).unwrap();
    // Remove the NULL check after bpf_map_lookup_elem: `if (r0 == 0) goto` becomes `goto +0`,
    // so the atomic add dereferences a map_value_or_null.
    let p = &mut obj.programs[0];
    let check = p
        .insns
        .iter()
        .position(|i| i.code == 0x15 && i.dst == 0 && i.imm == 0)
        .unwrap();
    p.insns[check] = Insn::new(0x05, 0, 0, 0, 0);
    let bpf = Bpf::new();
    let err = instantiate(&bpf, &obj, &InstantiateOptions::default()).unwrap_err();
    let InstantiateError::ProgLoad {
        errno, log, prog, ..
    } = err
    else {
        panic!("expected a load error, got {err}")
    };
    assert_eq!(prog, "count_proto_bytes");
    assert_eq!(errno.code(), 13, "EACCES: {errno}");
    // The kernel's message for the access, then the source line printed before the first
    // instruction of the line that contains the atomic add (from sockex1.c itself).
    assert!(
        log.contains("invalid mem access 'map_value_or_null'"),
        "{log}"
    );
    let src = std::fs::read_to_string(repo().join("examples/sockex1/sockex1.c")).unwrap();
    let (n, line) = src
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("__sync_fetch_and_add(bytes"))
        .unwrap();
    let want = format!("; {} @ sockex1.c:{}\n", line.trim(), n + 1);
    let at = log
        .find(&want)
        .unwrap_or_else(|| panic!("{want:?} not in\n{log}"));
    // The next line is an instruction of that line: `N: (61) r1 = *(u32 *)(r6 +0)`.
    let next = log[at + want.len()..].lines().next().unwrap();
    assert!(next.contains(": (61) r1 = *(u32 *)(r6 +0)"), "{next}");
    // Source lines appear once per run of instructions, never twice in a row.
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines
        .windows(2)
        .all(|w| !(w[0].starts_with("; ") && w[0] == w[1])));
    // Nothing is left behind in the table.
    assert!(bpf.map(bpfkit::Fd(3)).is_err());
}

#[test]
fn map_in_map_outer_maps_are_created_from_templates_and_slots_filled() {
    // The maps alone (the program needs map-in-map support in the verifier): per_family's
    // static slots hold v4_protos and v6_protos, by_ethertype starts empty.
    let path = repo().join("examples/map_in_map/map_in_map.o");
    let mut obj = Object::parse(&std::fs::read(path).unwrap()).unwrap();
    obj.programs.clear();
    let bpf = Bpf::new();
    let inst = instantiate(&bpf, &obj, &InstantiateOptions::default()).unwrap();
    let outer = bpf.map(inst.map("per_family").unwrap()).unwrap();
    let mom = outer.as_map_of_maps().unwrap();
    for (slot, inner) in [(0u32, "v4_protos"), (1, "v6_protos")] {
        let got = mom.get(&slot.to_le_bytes()).unwrap();
        let want = bpf.map(inst.map(inner).unwrap()).unwrap();
        assert_eq!(got.id(), want.id(), "slot {slot}");
    }
    let by_type = bpf.map(inst.map("by_ethertype").unwrap()).unwrap();
    assert!(by_type
        .as_map_of_maps()
        .unwrap()
        .get(&0x0800u16.to_le_bytes())
        .is_none());
}
