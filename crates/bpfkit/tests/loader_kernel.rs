//! The running kernel accepts what the loader produces: every example's maps are created with
//! `BPF_MAP_CREATE` from the loader's [`MapDef`]s, the map indices in LD_IMM64 are replaced by the
//! descriptors, and every program must pass the kernel's verifier with `BPF_PROG_LOAD`; the
//! statically initialised prog_array slots are then filled with the loaded programs.
//!
//! This is also how `legacy_maps.o` is checked against the kernel: libbpf 1.x (and so bpftool)
//! no longer reads the `maps` section. Skips, saying why, where `bpf()` is unavailable.

mod loader_util;

use bpfkit::loader::{MapDef, Object, SlotTarget};
use bpfkit_kernel::{
    available, map_create, map_update, resolve_map_indices, Map, ProgLoad, BPF_ANY,
};

fn create(m: &MapDef) -> Map {
    let map = map_create(
        m.map_type,
        m.key_size,
        m.value_size,
        m.max_entries,
        m.map_flags,
    )
    .unwrap_or_else(|e| {
        panic!(
            "map {} ({}): BPF_MAP_CREATE failed: {e}",
            m.name,
            m.type_name()
        )
    });
    if let Some(init) = &m.initial_value {
        map_update(&map, &0u32.to_le_bytes(), init, BPF_ANY)
            .unwrap_or_else(|e| panic!("map {}: initial value: {e}", m.name));
    }
    map
}

fn load_all(obj: &Object, ctx: &str) {
    if let Some(m) = obj.maps.iter().find(|m| m.inner.is_some()) {
        // BPF_MAP_CREATE of a map-in-map needs inner_map_fd, which bpfkit-kernel's map_create
        // does not pass; bpftool prog loadall covers this object (see examples/build.sh users).
        println!("skipped {ctx}: map-in-map {} needs inner_map_fd", m.name);
        return;
    }
    let maps: Vec<Map> = obj.maps.iter().map(create).collect();
    let fds: Vec<i32> = maps.iter().map(Map::fd).collect();
    let mut progs = Vec::new();
    for p in &obj.programs {
        let mut insns = p.insns.clone();
        resolve_map_indices(&mut insns, &fds).unwrap_or_else(|e| panic!("{ctx} {}: {e}", p.name));
        let loaded = ProgLoad {
            license: &obj.license,
            kern_version: obj.kern_version.unwrap_or(0),
            name: &p.name,
            ..ProgLoad::new(p.prog_type())
        }
        .load(&insns[..]);
        let prog = loaded.result.unwrap_or_else(|e| {
            panic!(
                "{ctx} {}: kernel rejected the linked program ({e}):\n{}",
                p.name, loaded.log
            )
        });
        progs.push((p.name.clone(), prog));
    }
    for (m, map) in obj.maps.iter().zip(&maps) {
        for slot in &m.init_slots {
            let SlotTarget::Program(name) = &slot.target else {
                continue;
            };
            let (_, prog) = progs
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("{ctx}: no program {name}"));
            map_update(
                map,
                &slot.slot.to_le_bytes(),
                &prog.fd().to_le_bytes(),
                BPF_ANY,
            )
            .unwrap_or_else(|e| panic!("{ctx}: {}[{}] = {name}: {e}", m.name, slot.slot));
        }
    }
}

#[test]
fn every_example_loads_into_the_kernel() {
    if let Err(why) = available() {
        println!("skipped: {why}");
        return;
    }
    for name in loader_util::EXAMPLES {
        for (p, obj) in loader_util::parsed(name) {
            load_all(&obj, &p.display().to_string());
        }
    }
}

/// The examples as libbpf loads them: `bpftool prog loadall` pins every program of the object
/// under a fresh bpffs directory, which is removed again. libbpf 1.x refuses legacy `maps`
/// sections, so `legacy_maps` is left to the test above.
#[test]
fn every_example_loads_with_libbpf() {
    if let Err(why) = available() {
        println!("skipped: {why}");
        return;
    }
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    if !mounts.lines().any(|l| {
        l.split_whitespace().nth(1) == Some("/sys/fs/bpf")
            && l.split_whitespace().nth(2) == Some("bpf")
    }) {
        println!("skipped: no bpffs mounted at /sys/fs/bpf");
        return;
    }
    let names = loader_util::EXAMPLES
        .iter()
        .chain(loader_util::UNSUPPORTED)
        .filter(|n| **n != "legacy_maps");
    for name in names {
        for (path, _) in loader_util::objects(name) {
            let pin = format!(
                "/sys/fs/bpf/bpfkit_loader_test_{}_{name}",
                std::process::id()
            );
            let out = match std::process::Command::new("bpftool")
                .args(["prog", "loadall"])
                .arg(&path)
                .arg(&pin)
                .output()
            {
                Ok(o) => o,
                Err(e) => {
                    println!("skipped: bpftool not available ({e})");
                    return;
                }
            };
            let _ = std::fs::remove_dir_all(&pin);
            assert!(
                out.status.success(),
                "{}: bpftool prog loadall failed:\n{}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
