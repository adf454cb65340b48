//! Instantiating a loaded [`Object`] in the running kernel through `bpfkit-kernel`: maps from
//! the loader's definitions (global data initialised), map indices replaced by descriptors,
//! every program loaded, statically initialised prog_array slots filled.

use bpfkit::loader::{MapDef, Object, SlotTarget};
use bpfkit_kernel::{map_create, map_update, resolve_map_indices, Map, Prog, ProgLoad, BPF_ANY};

/// An object's maps and programs, alive in the kernel.
pub struct InKernel {
    /// Maps, in the object's order.
    pub maps: Vec<Map>,
    /// Programs by name.
    pub progs: Vec<(String, Prog)>,
}

impl InKernel {
    /// The map named `name`.
    pub fn map(&self, obj: &Object, name: &str) -> &Map {
        &self.maps[obj
            .map_index(name)
            .unwrap_or_else(|| panic!("no map {name}"))]
    }

    /// The program named `name`.
    pub fn prog(&self, name: &str) -> &Prog {
        &self
            .progs
            .iter()
            .find(|p| p.0 == name)
            .unwrap_or_else(|| panic!("no program {name}"))
            .1
    }
}

fn create(m: &MapDef) -> Map {
    // libbpf sizes a perf event array declared without max_entries to the possible CPUs.
    let max_entries = if m.map_type == 4 && m.max_entries == 0 {
        bpfkit_kernel::possible_cpus() as u32
    } else {
        m.max_entries
    };
    let map = map_create(
        m.map_type,
        m.key_size,
        m.value_size,
        max_entries,
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

/// Creates the maps and loads the programs; panics with the verifier log on a rejection.
pub fn instantiate(obj: &Object, ctx: &str) -> InKernel {
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
            // libbpf's section table: `cgroup_skb/egress` is BPF_CGROUP_INET_EGRESS (1).
            expected_attach_type: u32::from(p.section == "cgroup_skb/egress"),
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
    InKernel { maps, progs }
}
