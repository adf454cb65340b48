//! The embedded layouts of `struct bpf_map` and the map structs
//! (`bpfkit_verifier::rules::map_struct`) against the running kernel's BTF
//! (`bpftool btf dump file /sys/kernel/btf/vmlinux format raw`): every struct reachable from
//! the roots must have the same name, size, kind and members (name, bit offset, bitfield
//! width, type), every array the same dimensions, every pointer the same kind of pointee.
//! Skips, saying why, where bpftool or the kernel's BTF is unavailable.

use bpfkit_verifier::rules::map_struct::{self as ms, Ty, TYPES};
use std::collections::{HashMap, HashSet};
use std::process::Command;

/// One BTF type as the raw dump prints it.
#[derive(Debug, Default)]
struct BtfType {
    kind: String,
    name: String,
    attrs: HashMap<String, String>,
    /// (name, type id, bit offset, bitfield size)
    members: Vec<(String, u32, u32, u32)>,
}

fn attr(t: &BtfType, key: &str) -> u32 {
    t.attrs.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn parse_raw(text: &str) -> HashMap<u32, BtfType> {
    let mut types = HashMap::new();
    let mut cur: Option<u32> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('[') {
            let Some((id, rest)) = rest.split_once("] ") else {
                continue;
            };
            let Ok(id) = id.parse::<u32>() else { continue };
            let mut t = BtfType::default();
            let Some((kind, rest)) = rest.split_once(' ') else {
                continue;
            };
            t.kind = kind.to_string();
            let rest = rest.trim_start_matches('\'');
            let Some((name, rest)) = rest.split_once('\'') else {
                continue;
            };
            t.name = if name == "(anon)" {
                String::new()
            } else {
                name.to_string()
            };
            for word in rest.split_whitespace() {
                if let Some((k, v)) = word.split_once('=') {
                    t.attrs.insert(k.to_string(), v.to_string());
                }
            }
            types.insert(id, t);
            cur = Some(id);
        } else if let (Some(id), Some(rest)) = (cur, line.strip_prefix("\t'")) {
            let Some((name, rest)) = rest.split_once('\'') else {
                continue;
            };
            let kv: HashMap<&str, &str> = rest
                .split_whitespace()
                .filter_map(|w| w.split_once('='))
                .collect();
            let (Some(ty), Some(bits)) = (kv.get("type_id"), kv.get("bits_offset")) else {
                continue;
            };
            let num = |s: &str| s.parse::<u32>().unwrap_or(u32::MAX);
            let bf = kv.get("bitfield_size").map_or(0, |s| num(s));
            if let Some(t) = types.get_mut(&id) {
                let name = if name == "(anon)" { "" } else { name };
                t.members.push((name.to_string(), num(ty), num(bits), bf));
            }
        }
    }
    types
}

const MODIFIERS: &[&str] = &["TYPEDEF", "CONST", "VOLATILE", "RESTRICT", "TYPE_TAG"];

fn skip(types: &HashMap<u32, BtfType>, mut id: u32) -> u32 {
    while let Some(t) = types.get(&id) {
        if !MODIFIERS.contains(&t.kind.as_str()) {
            break;
        }
        id = attr(t, "type_id");
    }
    id
}

struct Checker<'a> {
    types: &'a HashMap<u32, BtfType>,
    seen: HashSet<(u16, u32)>,
    problems: Vec<String>,
}

impl Checker<'_> {
    fn check(&mut self, ours: u16, btf_id: u32, path: &str) {
        let btf_id = skip(self.types, btf_id);
        if !self.seen.insert((ours, btf_id)) {
            return;
        }
        let Some(t) = self.types.get(&btf_id) else {
            self.problems
                .push(format!("{path}: BTF type {btf_id} missing"));
            return;
        };
        let Some(&our) = TYPES.get(usize::from(ours)) else {
            self.problems
                .push(format!("{path}: table index {ours} missing"));
            return;
        };
        match (our, t.kind.as_str()) {
            (Ty::Scalar { size, int }, kind @ ("INT" | "ENUM" | "ENUM64" | "FLOAT")) => {
                if size != attr(t, "size") || int != (kind == "INT") {
                    self.problems.push(format!(
                        "{path}: {our:?} but BTF {kind} size {}",
                        attr(t, "size")
                    ));
                }
            }
            (
                Ty::Ptr {
                    to_struct,
                    pointee,
                    target,
                },
                "PTR",
            ) => {
                let pointee_id = skip(self.types, attr(t, "type_id"));
                let p = self.types.get(&pointee_id);
                let is_struct = p.is_some_and(|p| p.kind == "STRUCT" || p.kind == "UNION");
                let name = if is_struct {
                    p.map_or("", |p| p.name.as_str())
                } else {
                    ""
                };
                if to_struct != is_struct || pointee != name {
                    self.problems.push(format!(
                        "{path}: pointer to {pointee} (struct {to_struct}), BTF {name} (struct {is_struct})"
                    ));
                }
                if let Some(target) = target {
                    self.check(target, pointee_id, &format!("*{path}"));
                }
            }
            (
                Ty::Array {
                    elem,
                    nelems,
                    first_elem,
                    first_nelems,
                },
                "ARRAY",
            ) => {
                if first_nelems != attr(t, "nr_elems") {
                    self.problems
                        .push(format!("{path}: first dimension differs"));
                }
                let first = skip(self.types, attr(t, "type_id"));
                self.check(first_elem, first, &format!("{path}[]"));
                // Linearise as __btf_resolve_size does.
                let (mut inner, mut n) = (btf_id, 1u32);
                while let Some(a) = self.types.get(&inner).filter(|a| a.kind == "ARRAY") {
                    n = n.saturating_mul(attr(a, "nr_elems"));
                    inner = skip(self.types, attr(a, "type_id"));
                }
                if n != nelems {
                    self.problems
                        .push(format!("{path}: {nelems} elements, BTF {n}"));
                }
                self.check(elem, inner, &format!("{path}[*]"));
            }
            (
                Ty::Struct {
                    name,
                    size,
                    union,
                    members,
                },
                kind @ ("STRUCT" | "UNION"),
            ) => {
                if name != t.name || size != attr(t, "size") || union != (kind == "UNION") {
                    self.problems.push(format!(
                        "{path}: {name} size {size} union {union}, BTF {kind} {} size {}",
                        t.name,
                        attr(t, "size")
                    ));
                }
                if members.len() != t.members.len() {
                    self.problems.push(format!(
                        "{path}: {} members, BTF {}",
                        members.len(),
                        t.members.len()
                    ));
                    return;
                }
                for (m, (bname, bty, bbits, bbf)) in members.iter().zip(&t.members) {
                    let here = format!("{path}.{}", m.name);
                    if m.name != bname || m.bit_offset != *bbits || m.bitfield_size != *bbf {
                        self.problems.push(format!(
                            "{here}: at bit {} width {}, BTF {bname} at bit {bbits} width {bbf}",
                            m.bit_offset, m.bitfield_size
                        ));
                    }
                    self.check(m.ty, *bty, &here);
                }
            }
            (our, kind) => self
                .problems
                .push(format!("{path}: {our:?} but BTF {kind}")),
        }
    }
}

#[test]
fn the_map_structs_match_the_running_kernels_btf() {
    let out = match Command::new("bpftool")
        .args([
            "btf",
            "dump",
            "file",
            "/sys/kernel/btf/vmlinux",
            "format",
            "raw",
        ])
        .output()
    {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            println!(
                "skipped: bpftool btf dump failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return;
        }
        Err(e) => {
            println!("skipped: bpftool unavailable: {e}");
            return;
        }
    };
    let types = parse_raw(&String::from_utf8_lossy(&out.stdout));
    assert!(
        types.len() > 1000,
        "BTF dump parsed into {} types",
        types.len()
    );
    let roots = [
        ("bpf_map", ms::BPF_MAP),
        ("bpf_array", ms::BPF_ARRAY),
        ("bpf_htab", ms::BPF_HTAB),
        ("lpm_trie", ms::LPM_TRIE),
        ("bpf_queue_stack", ms::BPF_QUEUE_STACK),
        ("bpf_ringbuf_map", ms::BPF_RINGBUF_MAP),
        ("bpf_dtab", ms::BPF_DTAB),
        ("bpf_stack_map", ms::BPF_STACK_MAP),
        ("bpf_bloom_filter", ms::BPF_BLOOM_FILTER),
        ("bpf_map_ops", ms::BPF_MAP_OPS),
    ];
    let mut checker = Checker {
        types: &types,
        seen: HashSet::new(),
        problems: Vec::new(),
    };
    let mut largest = 0;
    for (name, ours) in roots {
        let mut ids: Vec<u32> = types
            .iter()
            .filter(|(_, t)| t.kind == "STRUCT" && t.name == name)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        let Some(&id) = ids.first() else {
            checker
                .problems
                .push(format!("no struct {name} in the kernel's BTF"));
            continue;
        };
        if name != "bpf_map_ops" {
            largest = largest.max(types.get(&id).map_or(0, |t| attr(t, "size")));
        }
        checker.check(ours, id, name);
    }
    assert_eq!(largest, ms::LARGEST_MAP_STRUCT, "the largest map struct");
    // struct bpf_map's useful fields, by name, where the kernel has them.
    let bpf_map = types
        .values()
        .find(|t| t.kind == "STRUCT" && t.name == "bpf_map");
    for (field, bytes) in [
        ("map_type", 64),
        ("key_size", 68),
        ("value_size", 72),
        ("max_entries", 76),
    ] {
        let at = bpf_map
            .and_then(|t| t.members.iter().find(|m| m.0 == field))
            .map(|m| m.2 / 8);
        assert_eq!(at, Some(bytes), "bpf_map.{field}");
        assert_eq!(
            bpfkit_verifier::rules::map_ptr::field(ms::BPF_MAP, &[field]).map(|f| f.0),
            Some(bytes)
        );
    }
    // The runtime's image computes bpf_htab.elem_size from sizeof(struct htab_elem).
    let htab_elem = types
        .values()
        .find(|t| t.kind == "STRUCT" && t.name == "htab_elem")
        .map(|t| attr(t, "size"));
    assert_eq!(
        htab_elem,
        Some(48),
        "sizeof(struct htab_elem), bpfkit::maps::image::HTAB_ELEM_SIZE"
    );
    println!(
        "{} type pairs checked against the kernel's BTF",
        checker.seen.len()
    );
    assert!(
        checker.problems.is_empty(),
        "{}",
        checker.problems.join("\n")
    );
}
