//! The loader's map definitions instantiate in bpfkit's own object table: every example map is
//! created with [`bpfkit::Bpf::map_create`] from [`bpfkit::loader::MapDef::map_attr`] (inner
//! templates first for maps of maps), global data gets its initial value, and reading it back
//! gives the bytes of the C initialisers.

mod loader_util;

use bpfkit::loader::SlotTarget;
use bpfkit::Bpf;

#[test]
fn example_maps_create_in_the_object_table() {
    for name in loader_util::EXAMPLES {
        for (path, obj) in loader_util::parsed(name) {
            let ctx = path.display().to_string();
            let bpf = Bpf::new();
            let mut fds = Vec::new();
            for m in &obj.maps {
                let inner = m.inner.as_ref().map(|i| {
                    bpf.map_create(&i.map_attr(None))
                        .unwrap_or_else(|e| panic!("{ctx}: inner of {}: {e:?}", m.name))
                        .0
                });
                let fd = bpf
                    .map_create(&m.map_attr(inner))
                    .unwrap_or_else(|e| panic!("{ctx}: map {}: {e:?}", m.name));
                if let Some(init) = &m.initial_value {
                    bpf.map_update_elem(fd, &0u32.to_le_bytes(), init, 0)
                        .unwrap_or_else(|e| panic!("{ctx}: {}: {e:?}", m.name));
                    assert_eq!(
                        bpf.map_lookup(fd, &0u32.to_le_bytes()).as_ref(),
                        Ok(init),
                        "{ctx}: {}",
                        m.name
                    );
                }
                fds.push(fd);
            }
            // Static map-in-map slots: the inner maps are other maps of the object.
            for (m, &fd) in obj.maps.iter().zip(&fds) {
                for slot in &m.init_slots {
                    let SlotTarget::Map(inner) = &slot.target else {
                        continue;
                    };
                    let inner_fd = fds[obj.map_index(inner).expect("inner map")];
                    bpf.map_update_elem(fd, &slot.slot.to_le_bytes(), &inner_fd.0.to_le_bytes(), 0)
                        .unwrap_or_else(|e| {
                            panic!("{ctx}: {}[{}] = {inner}: {e:?}", m.name, slot.slot)
                        });
                }
            }
        }
    }
}
