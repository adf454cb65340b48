//! Map definitions: what the object asks the runtime to create.
//!
//! Three sources, in libbpf's order (which fixes each map's index, the number LD_IMM64 map
//! references carry until the runtime puts a descriptor there):
//! 1. the legacy `maps` section: one `struct bpf_map_def` (five `u32`s: type, key_size,
//!    value_size, max_entries, map_flags) per symbol;
//! 2. BTF-defined maps in `.maps`: each variable's struct type encodes the definition in its
//!    member *types*: `__uint(name, N)` is `int (*name)[N]`, `__type(key, T)` is `T *key`,
//!    `__array(values, T)` is `T *values[]` (libbpf's `parse_btf_map_def()`);
//! 3. global data: `.data*`, `.rodata*` and `.bss*` sections become single-element array maps
//!    whose value is the section's bytes; `.rodata*` maps are read-only for programs
//!    (`BPF_F_RDONLY_PROG`) and frozen once initialised.

use super::btf::{Btf, BtfKind};
use super::elf::{Elf, Sec, SymKind};
use super::error::LoadError;

/// `BPF_MAP_TYPE_ARRAY`.
pub const MAP_TYPE_ARRAY: u32 = 2;
/// `BPF_MAP_TYPE_PROG_ARRAY`.
pub const MAP_TYPE_PROG_ARRAY: u32 = 3;
/// `BPF_MAP_TYPE_ARRAY_OF_MAPS`.
pub const MAP_TYPE_ARRAY_OF_MAPS: u32 = 12;
/// `BPF_MAP_TYPE_HASH_OF_MAPS`.
pub const MAP_TYPE_HASH_OF_MAPS: u32 = 13;
/// Largest global data section: `KMALLOC_MAX_SIZE` on x86-64 (4 MiB), the kernel's array
/// value limit.
pub const MAX_DATA_SECTION: u32 = 4 << 20;
/// `BPF_F_RDONLY_PROG`: programs may not write the map.
pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;

/// Where a map definition came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapOrigin {
    /// A `struct bpf_map_def` in the legacy `maps` section.
    Legacy,
    /// A BTF-defined map in `.maps`.
    Btf,
    /// A global data section turned into an array map; the section's name.
    GlobalData(String),
}

/// What a statically initialised slot of a prog_array or map-in-map points to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotTarget {
    /// A program, by function name.
    Program(String),
    /// A map, by name.
    Map(String),
}

/// One statically initialised slot (`.values = { [slot] = &target }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotInit {
    /// Index in the outer map.
    pub slot: u32,
    /// What goes there.
    pub target: SlotTarget,
}

/// A map the object needs, described, not created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapDef {
    /// Symbol name (`proto_bytes`), or the section name for global data (`.rodata`).
    pub name: String,
    /// Where the definition came from.
    pub origin: MapOrigin,
    /// `enum bpf_map_type` number.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// `map_flags` (`BPF_F_*`).
    pub map_flags: u32,
    /// `numa_node` (BTF maps only; 0 otherwise).
    pub numa_node: u32,
    /// `map_extra` (bloom filter hashes, arena address; 0 otherwise).
    pub map_extra: u64,
    /// `pinning` (`LIBBPF_PIN_*`; 0 = none).
    pub pinning: u32,
    /// BTF id of the key type (0: none).
    pub btf_key_type_id: u32,
    /// BTF id of the value type (0: none; the `DATASEC` for global data).
    pub btf_value_type_id: u32,
    /// Inner map template of a map-in-map.
    pub inner: Option<Box<MapDef>>,
    /// Initial contents of slot 0 for global data maps (zeros for `.bss`).
    pub initial_value: Option<Vec<u8>>,
    /// Freeze after initialising (`.rodata*`): userspace can no longer write it either.
    pub frozen: bool,
    /// Statically initialised slots (prog_array programs, map-in-map inner maps).
    pub init_slots: Vec<SlotInit>,
    /// Byte offset of the definition in its section (for matching relocations).
    pub(crate) sec_offset: u64,
}

impl MapDef {
    fn new(name: String, origin: MapOrigin) -> Self {
        Self {
            name,
            origin,
            map_type: 0,
            key_size: 0,
            value_size: 0,
            max_entries: 0,
            map_flags: 0,
            numa_node: 0,
            map_extra: 0,
            pinning: 0,
            btf_key_type_id: 0,
            btf_value_type_id: 0,
            inner: None,
            initial_value: None,
            frozen: false,
            init_slots: Vec::new(),
            sec_offset: 0,
        }
    }

    /// The kernel's name of the map type, lowercase without `BPF_MAP_TYPE_`.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        map_type_name(self.map_type)
    }

    /// The `BPF_MAP_CREATE` attributes for the runtime's object table. A map-in-map needs the
    /// descriptor of a map created from [`MapDef::inner`] as `inner_map_fd`. The name is the
    /// definition's, cut to the kernel's 15 characters with characters the kernel refuses
    /// (anything but ASCII letters, digits, `_` and `.`) replaced by `_`. A perf event array
    /// declared without `max_entries` gets one slot per possible CPU, as libbpf sizes it
    /// (`map_set_def_max_entries`).
    #[must_use]
    pub fn map_attr(&self, inner_map_fd: Option<u32>) -> crate::maps::MapAttr {
        let max_entries = if self.map_type == crate::maps::MapType::PerfEventArray.raw()
            && self.max_entries == 0
        {
            crate::maps::cpu::possible_cpus()
        } else {
            self.max_entries
        };
        crate::maps::MapAttr {
            map_type: self.map_type,
            key_size: self.key_size,
            value_size: self.value_size,
            max_entries,
            map_flags: self.map_flags,
            inner_map_fd: inner_map_fd.unwrap_or(0),
            numa_node: self.numa_node,
            name: self
                .name
                .chars()
                .take(15)
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect(),
        }
    }
}

/// The kernel's name of map type `t` (`enum bpf_map_type`), lowercase without the prefix.
#[must_use]
pub fn map_type_name(t: u32) -> &'static str {
    const NAMES: [&str; 34] = [
        "unspec",
        "hash",
        "array",
        "prog_array",
        "perf_event_array",
        "percpu_hash",
        "percpu_array",
        "stack_trace",
        "cgroup_array",
        "lru_hash",
        "lru_percpu_hash",
        "lpm_trie",
        "array_of_maps",
        "hash_of_maps",
        "devmap",
        "sockmap",
        "cpumap",
        "xskmap",
        "sockhash",
        "cgroup_storage",
        "reuseport_sockarray",
        "percpu_cgroup_storage",
        "queue",
        "stack",
        "sk_storage",
        "devmap_hash",
        "struct_ops",
        "ringbuf",
        "inode_storage",
        "task_storage",
        "bloom_filter",
        "user_ringbuf",
        "cgrp_storage",
        "arena",
    ];
    NAMES.get(t as usize).copied().unwrap_or("unknown")
}

fn def_err(map: &str, reason: impl Into<String>) -> LoadError {
    LoadError::MapDef {
        map: map.to_string(),
        reason: reason.into(),
    }
}

/// Symbols defined in `sec` that name objects, sorted by offset: (name, offset, size).
fn object_symbols(elf: &Elf, sec: &Sec) -> Vec<(String, u64, u64)> {
    let mut v: Vec<_> = elf
        .symbols
        .iter()
        .flatten()
        .filter(|s| {
            s.section == Some(sec.index) && s.kind != SymKind::Section && !s.name.is_empty()
        })
        .filter(|s| s.kind == SymKind::Object || s.kind == SymKind::Other)
        .map(|s| (s.name.clone(), s.value, s.size))
        .collect();
    v.sort_by_key(|s| s.1);
    v
}

/// Legacy `struct bpf_map_def` maps from the `maps` section.
pub fn legacy_maps(elf: &Elf, sec: &Sec) -> Result<Vec<MapDef>, LoadError> {
    let syms = object_symbols(elf, sec);
    if syms.is_empty() {
        return Ok(Vec::new());
    }
    // libbpf < 1.0: every definition has the same size, the section size over the map count.
    let def_size = sec.size / syms.len() as u64;
    let mut out = Vec::new();
    for (name, off, _) in syms {
        if def_size < 20 || off % 4 != 0 {
            return Err(def_err(&name, format!("legacy map definition of {def_size} bytes at offset {off}: need 20 bytes, 4-aligned")));
        }
        let field = |i: u64| -> Result<u32, LoadError> {
            off.checked_add(4 * i)
                .and_then(|at| usize::try_from(at).ok())
                .and_then(|a| sec.data.get(a..a.checked_add(4)?))
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| {
                    def_err(
                        &name,
                        format!("definition at offset {off} runs past section maps"),
                    )
                })
        };
        let mut m = MapDef::new(name.clone(), MapOrigin::Legacy);
        m.map_type = field(0)?;
        m.key_size = field(1)?;
        m.value_size = field(2)?;
        m.max_entries = field(3)?;
        m.map_flags = field(4)?;
        m.sec_offset = off;
        out.push(m);
    }
    Ok(out)
}

/// The N of `int (*name)[N]`.
fn uint_member(btf: &Btf, map: &str, member: &str, type_id: u32) -> Result<u32, LoadError> {
    let ptr = btf.get(btf.skip_mods(type_id)?)?;
    let bad = || {
        def_err(
            map,
            format!("member {member} is not __uint(): expected int (*{member})[N]"),
        )
    };
    if ptr.kind != BtfKind::Ptr {
        return Err(bad());
    }
    let arr = btf.get(btf.skip_mods(ptr.size_or_type)?)?;
    match (arr.kind, arr.array) {
        (BtfKind::Array, Some((_, n))) => Ok(n),
        _ => Err(bad()),
    }
}

/// The T of `T *name`: (type id, size).
fn type_member(btf: &Btf, map: &str, member: &str, type_id: u32) -> Result<(u32, u32), LoadError> {
    let ptr = btf.get(btf.skip_mods(type_id)?)?;
    if ptr.kind != BtfKind::Ptr {
        return Err(def_err(
            map,
            format!("member {member} is not __type(): expected a pointer"),
        ));
    }
    let target = ptr.size_or_type;
    let size = btf.size_of(target)?;
    let size =
        u32::try_from(size).map_err(|_| def_err(map, format!("{member} type of {size} bytes")))?;
    Ok((target, size))
}

/// Parses one BTF map definition struct. `depth` 1 is an inner map template.
fn btf_map_def(
    btf: &Btf,
    name: &str,
    struct_id: u32,
    depth: u32,
) -> Result<(MapDef, u64), LoadError> {
    let st_id = btf.skip_mods(struct_id)?;
    let st = btf.get(st_id)?;
    if st.kind != BtfKind::Struct {
        return Err(def_err(
            name,
            format!("definition type is {:?}, not a struct", st.kind),
        ));
    }
    let mut m = MapDef::new(name.to_string(), MapOrigin::Btf);
    let (mut key_size, mut value_size) = (None, None);
    let mut values_off = None;
    let mut inner_struct = None;
    for mem in &st.members {
        let mname = btf.str_at(mem.name_off)?;
        match mname {
            "type" => m.map_type = uint_member(btf, name, mname, mem.type_id)?,
            "max_entries" => m.max_entries = uint_member(btf, name, mname, mem.type_id)?,
            "map_flags" => m.map_flags = uint_member(btf, name, mname, mem.type_id)?,
            "numa_node" => m.numa_node = uint_member(btf, name, mname, mem.type_id)?,
            "pinning" => m.pinning = uint_member(btf, name, mname, mem.type_id)?,
            "map_extra" => m.map_extra = u64::from(uint_member(btf, name, mname, mem.type_id)?),
            "key_size" | "value_size" => {
                let n = uint_member(btf, name, mname, mem.type_id)?;
                let slot = if mname == "key_size" {
                    &mut key_size
                } else {
                    &mut value_size
                };
                if slot.is_some_and(|s| s != n) {
                    return Err(def_err(
                        name,
                        format!("conflicting {mname}: {n} vs {slot:?}"),
                    ));
                }
                *slot = Some(n);
            }
            "key" | "value" => {
                let (id, size) = type_member(btf, name, mname, mem.type_id)?;
                let slot = if mname == "key" {
                    &mut key_size
                } else {
                    &mut value_size
                };
                if slot.is_some_and(|s| s != size) {
                    return Err(def_err(
                        name,
                        format!("conflicting {mname} size: {size} vs {slot:?}"),
                    ));
                }
                *slot = Some(size);
                if mname == "key" {
                    m.btf_key_type_id = id;
                } else {
                    m.btf_value_type_id = id;
                }
            }
            "values" => {
                // T *values[]: an array of pointers to the inner definition or a function.
                let arr = btf.get(btf.skip_mods(mem.type_id)?)?;
                let elem = match (arr.kind, arr.array) {
                    (BtfKind::Array, Some((elem, _))) => elem,
                    _ => {
                        return Err(def_err(
                            name,
                            "member values is not __array(): expected T *values[]",
                        ))
                    }
                };
                let ptr = btf.get(btf.skip_mods(elem)?)?;
                if ptr.kind != BtfKind::Ptr {
                    return Err(def_err(name, "values[] elements are not pointers"));
                }
                inner_struct = Some(ptr.size_or_type);
                values_off = Some(u64::from(mem.bit_offset / 8));
            }
            other => {
                return Err(def_err(
                    name,
                    format!("unknown map definition member {other}"),
                ))
            }
        }
    }
    if let Some(target) = inner_struct {
        let is_map_in_map = matches!(m.map_type, MAP_TYPE_ARRAY_OF_MAPS | MAP_TYPE_HASH_OF_MAPS);
        let target_kind = btf.get(btf.skip_mods(target)?)?.kind;
        if is_map_in_map {
            if depth > 0 {
                return Err(def_err(name, "map-in-map nested more than one level"));
            }
            if target_kind != BtfKind::Struct {
                return Err(def_err(
                    name,
                    "map-in-map values[] must point to a map definition struct",
                ));
            }
            let (inner, _) = btf_map_def(btf, &format!("{name}.inner"), target, depth + 1)?;
            m.inner = Some(Box::new(inner));
        } else if m.map_type == MAP_TYPE_PROG_ARRAY {
            if target_kind != BtfKind::FuncProto {
                return Err(def_err(
                    name,
                    "prog_array values[] must point to a function prototype",
                ));
            }
        } else {
            return Err(def_err(
                name,
                format!("values[] given for map type {}", map_type_name(m.map_type)),
            ));
        }
        if value_size.is_some_and(|v| v != 4) {
            return Err(def_err(
                name,
                "map-in-map and prog_array values are 4-byte descriptors",
            ));
        }
        value_size = Some(4);
    }
    m.key_size = key_size.unwrap_or(0);
    m.value_size = value_size.unwrap_or(0);
    if m.map_type == 0 {
        return Err(def_err(name, "no map type (__uint(type, ...)) given"));
    }
    Ok((m, values_off.unwrap_or(u64::MAX)))
}

/// BTF-defined maps from `.maps`, in the order of their variables in the `DATASEC`, with
/// statically initialised slots from `.rel.maps`.
pub fn btf_maps(elf: &Elf, sec: &Sec, btf: Option<&Btf>) -> Result<Vec<MapDef>, LoadError> {
    let btf = btf.ok_or_else(|| LoadError::Section {
        section: sec.name.clone(),
        reason: "BTF-defined maps need a .BTF section (compile with -g)".into(),
    })?;
    let ds_id = btf.datasec(".maps").ok_or_else(|| LoadError::Btf {
        offset: 0,
        reason: "no DATASEC .maps describing section .maps".into(),
    })?;
    let syms = object_symbols(elf, sec);
    let mut out = Vec::new();
    let mut values_offs = Vec::new();
    for v in &btf.get(ds_id)?.vars {
        let var = btf.get(v.type_id)?;
        if var.kind != BtfKind::Var {
            return Err(LoadError::Btf {
                offset: var.offset,
                reason: ".maps DATASEC entry is not a VAR".into(),
            });
        }
        let name = btf.str_at(var.name_off)?.to_string();
        // clang leaves DATASEC offsets to the linker; the symbol table has the real one.
        let (off, size) = syms
            .iter()
            .find(|s| s.0 == name)
            .map(|s| (s.1, s.2))
            .ok_or_else(|| def_err(&name, "no symbol for this .maps variable"))?;
        let (mut m, values_off) = btf_map_def(btf, &name, var.size_or_type, 0)?;
        m.sec_offset = off;
        values_offs.push((off, size, values_off));
        out.push(m);
    }
    // Static initialisation: pointers stored in values[] become relocations in .rel.maps.
    for r in &sec.relocs {
        let label = elf.symbol_label(r.symbol);
        let rel_err = |reason: String| LoadError::Relocation {
            section: sec.name.clone(),
            offset: r.offset,
            symbol: label.clone(),
            reason,
        };
        let (i, &(off, _, values_off)) = values_offs
            .iter()
            .enumerate()
            .find(|(_, (off, size, _))| r.offset >= *off && r.offset < off.saturating_add(*size))
            .ok_or_else(|| rel_err("not inside any map definition".into()))?;
        let in_values = r.offset.checked_sub(off.saturating_add(values_off));
        let slot = match in_values {
            Some(d) if values_off != u64::MAX && d % 8 == 0 => {
                u32::try_from(d / 8).map_err(|_| rel_err("slot out of range".into()))?
            }
            _ => {
                return Err(rel_err(
                    "relocation is not at an element of values[]".into(),
                ))
            }
        };
        let sym = elf
            .symbol(r.symbol)
            .ok_or_else(|| rel_err("no such symbol".into()))?;
        let target = if out[i].map_type == MAP_TYPE_PROG_ARRAY {
            if sym.kind != SymKind::Func {
                return Err(rel_err("prog_array slot must point to a program".into()));
            }
            SlotTarget::Program(sym.name.clone())
        } else {
            if sym.section != Some(sec.index) {
                return Err(rel_err(
                    "map-in-map slot must point to a map in .maps".into(),
                ));
            }
            SlotTarget::Map(sym.name.clone())
        };
        if slot >= out[i].max_entries {
            return Err(rel_err(format!(
                "slot {slot} beyond max_entries {}",
                out[i].max_entries
            )));
        }
        out[i].init_slots.push(SlotInit { slot, target });
    }
    for m in &mut out {
        m.init_slots.sort_by_key(|s| s.slot);
    }
    Ok(out)
}

/// True for the sections libbpf turns into global data maps.
pub fn is_data_section(sec: &Sec) -> bool {
    let n = sec.name.as_str();
    let named = [".data", ".rodata", ".bss"]
        .iter()
        .any(|p| n == *p || n.strip_prefix(p).is_some_and(|r| r.starts_with('.')));
    named && sec.alloc && !sec.exec
}

/// The global data map of section `sec`.
pub fn data_map(sec: &Sec, btf: Option<&Btf>) -> Result<MapDef, LoadError> {
    // The kernel refuses array values above KMALLOC_MAX_SIZE (E2BIG); refusing here also keeps a
    // corrupted .bss header from asking for gigabytes of zeros.
    let size = u32::try_from(sec.size)
        .ok()
        .filter(|&s| s <= MAX_DATA_SECTION)
        .ok_or_else(|| LoadError::Section {
            section: sec.name.clone(),
            reason: format!(
                "{} bytes is larger than a map value may be ({MAX_DATA_SECTION})",
                sec.size
            ),
        })?;
    let mut m = MapDef::new(sec.name.clone(), MapOrigin::GlobalData(sec.name.clone()));
    m.map_type = MAP_TYPE_ARRAY;
    m.key_size = 4;
    m.value_size = size;
    m.max_entries = 1;
    let rodata = sec.name.starts_with(".rodata");
    if rodata {
        m.map_flags = BPF_F_RDONLY_PROG;
        m.frozen = true;
    }
    m.btf_value_type_id = btf.and_then(|b| b.datasec(&sec.name)).unwrap_or(0);
    let initial = if sec.name.starts_with(".bss") {
        vec![0; size as usize]
    } else if sec.data.len() == size as usize {
        sec.data.clone()
    } else {
        return Err(LoadError::Section {
            section: sec.name.clone(),
            reason: format!("has {} bytes of data for size {size}", sec.data.len()),
        });
    };
    m.initial_value = Some(initial);
    Ok(m)
}
