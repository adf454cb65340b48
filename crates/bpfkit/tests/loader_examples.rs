//! Each example object parses into the programs, maps and data its C source declares.
//!
//! Expected values are read off the C sources in examples/ (map types and sizes, section
//! names, initial values of globals) with the kernel's uapi numbers (include/uapi/linux/bpf.h:
//! `enum bpf_map_type`, `enum bpf_prog_type`); line info is checked against the C files' text.

mod loader_util;

use bpfkit::loader::{MapDef, MapOrigin, Object, SlotTarget};

// enum bpf_map_type
const HASH: u32 = 1;
const ARRAY: u32 = 2;
const PROG_ARRAY: u32 = 3;
const PERCPU_ARRAY: u32 = 6;
const RINGBUF: u32 = 27;
// enum bpf_prog_type
const SOCKET_FILTER: u32 = 1;
const KPROBE: u32 = 2;
const SCHED_CLS: u32 = 3;
const TRACEPOINT: u32 = 5;
const XDP: u32 = 6;
/// BPF_F_RDONLY_PROG
const RDONLY_PROG: u32 = 1 << 7;

/// (name, type, key size, value size, max entries, flags)
type MapFacts = (&'static str, u32, u32, u32, u32, u32);

fn check_maps(obj: &Object, ctx: &str, want: &[MapFacts]) {
    let got: Vec<MapFacts> = obj
        .maps
        .iter()
        .map(|m: &MapDef| {
            let name: &'static str = want.iter().find(|w| w.0 == m.name).map_or("?", |w| w.0);
            (
                name,
                m.map_type,
                m.key_size,
                m.value_size,
                m.max_entries,
                m.map_flags,
            )
        })
        .collect();
    assert_eq!(got, want, "{ctx}: maps");
}

/// (program, section, prog type, attach target)
fn check_programs(obj: &Object, ctx: &str, want: &[(&str, &str, u32, Option<&str>)]) {
    let mut got: Vec<_> = obj
        .programs
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.section.as_str(),
                p.prog_type(),
                p.def.attach_to.as_deref(),
            )
        })
        .collect();
    got.sort();
    let mut want = want.to_vec();
    want.sort();
    assert_eq!(got, want, "{ctx}: programs");
}

#[test]
fn sockex1() {
    for (p, o) in loader_util::parsed("sockex1") {
        let ctx = p.display().to_string();
        assert_eq!(o.license, "GPL");
        assert_eq!(o.kern_version, None);
        check_maps(&o, &ctx, &[("proto_bytes", ARRAY, 4, 8, 256, 0)]);
        check_programs(
            &o,
            &ctx,
            &[("count_proto_bytes", "socket", SOCKET_FILTER, None)],
        );
        assert_eq!(o.maps[0].origin, MapOrigin::Btf);
        assert_ne!(
            o.maps[0].btf_key_type_id, 0,
            "__type(key, __u32) names a BTF type"
        );
    }
}

#[test]
fn sockex3_prog_array_is_initialised_statically() {
    for (p, o) in loader_util::parsed("sockex3") {
        let ctx = p.display().to_string();
        // prog_array first: it is declared after flow_scratch/flows in the source, but libbpf
        // orders BTF maps by their place in .maps, which is what the DATASEC lists.
        let mut maps: Vec<MapFacts> = o
            .maps
            .iter()
            .map(|m| {
                let n: &'static str = match m.name.as_str() {
                    "flow_scratch" => "flow_scratch",
                    "flows" => "flows",
                    "parsers" => "parsers",
                    _ => "?",
                };
                (
                    n,
                    m.map_type,
                    m.key_size,
                    m.value_size,
                    m.max_entries,
                    m.map_flags,
                )
            })
            .collect();
        maps.sort();
        // struct flow_key and struct flow_stats are 16 bytes each; prog_array values are fds.
        assert_eq!(
            maps,
            [
                ("flow_scratch", PERCPU_ARRAY, 4, 16, 1, 0),
                ("flows", HASH, 16, 16, 1024, 0),
                ("parsers", PROG_ARRAY, 4, 4, 8, 0)
            ],
            "{ctx}"
        );
        let slots: Vec<(u32, SlotTarget)> = o
            .map("parsers")
            .expect("parsers")
            .init_slots
            .iter()
            .map(|s| (s.slot, s.target.clone()))
            .collect();
        let prog = |n: &str| SlotTarget::Program(n.to_string());
        assert_eq!(
            slots,
            [
                (1, prog("parse_vlan")),
                (2, prog("parse_mpls")),
                (3, prog("parse_ipv4")),
                (4, prog("parse_ipv6"))
            ],
            "{ctx}: PARSE_VLAN=1, PARSE_MPLS=2, PARSE_IP=3, PARSE_IPV6=4"
        );
        check_programs(
            &o,
            &ctx,
            &[
                ("flow_dissect", "socket", SOCKET_FILTER, None),
                ("parse_vlan", "socket", SOCKET_FILTER, None),
                ("parse_mpls", "socket", SOCKET_FILTER, None),
                ("parse_ipv4", "socket", SOCKET_FILTER, None),
                ("parse_ipv6", "socket", SOCKET_FILTER, None),
            ],
        );
        // Every program tail-calls through the prog_array: bpf_tail_call is helper 12.
        for prog in &o.programs {
            let tail_calls = prog
                .insns
                .iter()
                .filter(|i| i.code == 0x85 && i.src == 0 && i.imm == 12)
                .count();
            assert!(
                tail_calls > 0 || prog.name == "none",
                "{ctx}: {} has no bpf_tail_call",
                prog.name
            );
        }
    }
}

#[test]
fn tracex2_has_kprobes_and_the_kernel_version() {
    let header = std::fs::read_to_string("/usr/include/linux/version.h").ok();
    let code = header.as_deref().and_then(|h| {
        h.lines()
            .find_map(|l| l.strip_prefix("#define LINUX_VERSION_CODE "))
            .and_then(|v| v.trim().parse::<u32>().ok())
    });
    for (p, o) in loader_util::parsed("tracex2") {
        let ctx = p.display().to_string();
        match code {
            Some(c) => assert_eq!(
                o.kern_version,
                Some(c),
                "{ctx}: version = LINUX_VERSION_CODE"
            ),
            None => println!("skipped version check: /usr/include/linux/version.h unreadable"),
        }
        // drop_callers: __type(key, long), __type(value, long); write_sizes: __uint(key_size,
        // sizeof(struct hist_key) = 8), __uint(value_size, sizeof(__u64)).
        check_maps(
            &o,
            &ctx,
            &[
                ("drop_callers", HASH, 8, 8, 1024, 0),
                ("write_sizes", HASH, 8, 8, 1024, 0),
            ],
        );
        assert_eq!(
            o.map("write_sizes").map(|m| m.btf_key_type_id),
            Some(0),
            "{ctx}: sizes only, no key type"
        );
        check_programs(
            &o,
            &ctx,
            &[
                (
                    "count_drops",
                    "kprobe/kfree_skb_reason",
                    KPROBE,
                    Some("kfree_skb_reason"),
                ),
                (
                    "write_hist",
                    "kprobe/ksys_write",
                    KPROBE,
                    Some("ksys_write"),
                ),
            ],
        );
    }
}

#[test]
fn drop_monitor_is_a_tracepoint() {
    for (p, o) in loader_util::parsed("drop_monitor") {
        let ctx = p.display().to_string();
        check_maps(
            &o,
            &ctx,
            &[
                ("drops_by_location", HASH, 8, 8, 4096, 0),
                ("drops_by_reason", ARRAY, 4, 8, 256, 0),
            ],
        );
        check_programs(
            &o,
            &ctx,
            &[(
                "count_drop",
                "tracepoint/skb/kfree_skb",
                TRACEPOINT,
                Some("skb/kfree_skb"),
            )],
        );
    }
}

#[test]
fn tc_rewrite_global_data() {
    for (p, o) in loader_util::parsed("tc_rewrite") {
        let ctx = p.display().to_string();
        check_maps(
            &o,
            &ctx,
            &[
                (".rodata", ARRAY, 4, 4, 1, RDONLY_PROG),
                (".data", ARRAY, 4, 4, 1, 0),
                (".bss", ARRAY, 4, 8, 1, 0),
            ],
        );
        let init = |n: &str| o.map(n).and_then(|m| m.initial_value.clone());
        // match_port = htons(8080) = 1f 90, target_port = htons(80) = 00 50 (network order).
        assert_eq!(init(".rodata"), Some(vec![0x1f, 0x90, 0x00, 0x50]), "{ctx}");
        assert_eq!(init(".data"), Some(vec![10, 0, 0, 2]), "{ctx}: 10.0.0.2");
        assert_eq!(init(".bss"), Some(vec![0; 8]), "{ctx}: rewritten = 0");
        assert!(
            o.map(".rodata").is_some_and(|m| m.frozen),
            "{ctx}: .rodata frozen"
        );
        assert!(
            !o.map(".data").is_some_and(|m| m.frozen),
            "{ctx}: .data writable"
        );
        assert_eq!(
            o.map(".bss").map(|m| m.origin.clone()),
            Some(MapOrigin::GlobalData(".bss".into()))
        );
        check_programs(&o, &ctx, &[("dnat", "tc", SCHED_CLS, None)]);
        // bpf_l3_csum_replace is helper 10, bpf_l4_csum_replace 11, bpf_skb_store_bytes 9.
        let helpers: Vec<i32> = o.programs[0]
            .insns
            .iter()
            .filter(|i| i.code == 0x85 && i.src == 0)
            .map(|i| i.imm)
            .collect();
        for h in [9, 10, 11] {
            assert!(helpers.contains(&h), "{ctx}: helper {h} called");
        }
    }
}

#[test]
fn xdp_globals_data_sections() {
    for (p, o) in loader_util::parsed("xdp_globals") {
        let ctx = p.display().to_string();
        let str_len = "xdp_globals: drop udp port %d\n".len() as u32 + 1;
        check_maps(
            &o,
            &ctx,
            &[
                (".rodata", ARRAY, 4, 2, 1, RDONLY_PROG),
                (".data", ARRAY, 4, 8, 1, 0),
                (".rodata.str1.1", ARRAY, 4, str_len, 1, RDONLY_PROG),
                (".bss", ARRAY, 4, 8 * 5, 1, 0),
            ],
        );
        let init = |n: &str| o.map(n).and_then(|m| m.initial_value.clone());
        assert_eq!(
            init(".rodata"),
            Some(9u16.to_le_bytes().to_vec()),
            "{ctx}: blocked_port = 9"
        );
        assert_eq!(
            init(".data"),
            Some(1000u64.to_le_bytes().to_vec()),
            "{ctx}: bytes_seen = 1000"
        );
        assert_eq!(
            init(".rodata.str1.1"),
            Some(b"xdp_globals: drop udp port %d\n\0".to_vec()),
            "{ctx}"
        );
        check_programs(&o, &ctx, &[("xdp_filter", "xdp", XDP, None)]);
    }
}

/// ALU or ALU64 class with operation `op` (either source).
fn is_alu(code: u8, op: u8) -> bool {
    code & 0xf0 == op && matches!(code & 7, 4 | 7)
}

#[test]
fn ringbuf_and_legacy_and_cpuv4() {
    for (p, o) in loader_util::parsed("ringbuf") {
        let ctx = p.display().to_string();
        check_maps(
            &o,
            &ctx,
            &[
                ("events", RINGBUF, 0, 0, 256 * 1024, 0),
                ("lost", ARRAY, 4, 8, 1, 0),
            ],
        );
        check_programs(
            &o,
            &ctx,
            &[
                ("xdp_events", "xdp", XDP, None),
                ("socket_events", "socket", SOCKET_FILTER, None),
            ],
        );
    }
    for (p, o) in loader_util::parsed("legacy_maps") {
        let ctx = p.display().to_string();
        check_maps(
            &o,
            &ctx,
            &[
                ("frames_by_proto", HASH, 2, 8, 64, 0),
                ("frames_by_len", ARRAY, 4, 8, 16, 0),
            ],
        );
        assert!(
            o.maps.iter().all(|m| m.origin == MapOrigin::Legacy),
            "{ctx}"
        );
    }
    for (p, o) in loader_util::parsed("cpuv4") {
        let ctx = p.display().to_string();
        check_maps(&o, &ctx, &[("stats", ARRAY, 4, 8, 6, 0)]);
        let insns = &o.programs[0].insns;
        // ISA v4 encodings (RFC 9669): MEMSX loads 0x91 (byte), sdiv/smod are DIV/MOD with off=1,
        // gotol is JMP32|JA (0x06), bswap is ALU64|END (0xd7).
        assert!(insns.iter().any(|i| i.code == 0x91), "{ctx}: ldsx b");
        assert!(
            insns.iter().any(|i| is_alu(i.code, 0x30) && i.off == 1),
            "{ctx}: sdiv"
        );
        assert!(
            insns.iter().any(|i| is_alu(i.code, 0x90) && i.off == 1),
            "{ctx}: smod"
        );
        assert!(insns.iter().any(|i| i.code == 0x06), "{ctx}: gotol");
        assert!(insns.iter().any(|i| i.code == 0xd7), "{ctx}: bswap");
        assert!(
            insns
                .iter()
                .any(|i| (i.code == 0xbf || i.code == 0xbc) && i.off != 0),
            "{ctx}: movsx"
        );
    }
}

#[test]
fn map_in_map_inner_definitions_and_slots() {
    const ARRAY_OF_MAPS: u32 = 12;
    const HASH_OF_MAPS: u32 = 13;
    for (p, o) in loader_util::parsed("map_in_map") {
        let ctx = p.display().to_string();
        // Outer values are 4-byte map descriptors; keys __u32 and __u16.
        check_maps(
            &o,
            &ctx,
            &[
                ("v4_protos", ARRAY, 4, 8, 256, 0),
                ("v6_protos", ARRAY, 4, 8, 256, 0),
                ("per_family", ARRAY_OF_MAPS, 4, 4, 2, 0),
                ("by_ethertype", HASH_OF_MAPS, 2, 4, 16, 0),
            ],
        );
        for outer in ["per_family", "by_ethertype"] {
            let inner = o
                .map(outer)
                .and_then(|m| m.inner.as_deref())
                .unwrap_or_else(|| panic!("{ctx}: {outer} inner"));
            // struct proto_counts: array, __u32 -> __u64, 256 entries.
            assert_eq!(
                (
                    inner.map_type,
                    inner.key_size,
                    inner.value_size,
                    inner.max_entries
                ),
                (ARRAY, 4, 8, 256),
                "{ctx}: {outer}"
            );
        }
        let slots: Vec<(u32, SlotTarget)> = o
            .map("per_family")
            .expect("per_family")
            .init_slots
            .iter()
            .map(|s| (s.slot, s.target.clone()))
            .collect();
        assert_eq!(
            slots,
            [
                (0, SlotTarget::Map("v4_protos".into())),
                (1, SlotTarget::Map("v6_protos".into()))
            ],
            "{ctx}"
        );
        assert!(
            o.map("by_ethertype")
                .is_some_and(|m| m.init_slots.is_empty()),
            "{ctx}"
        );
    }
}

#[test]
fn line_info_quotes_the_c_source() {
    for name in loader_util::EXAMPLES {
        let src_path = loader_util::source_dir()
            .join(name)
            .join(format!("{name}.c"));
        let src = std::fs::read_to_string(&src_path).expect("C source");
        let lines: Vec<&str> = src.lines().collect();
        for (p, o) in loader_util::parsed(name) {
            for prog in &o.programs {
                let ctx = format!("{} {}", p.display(), prog.name);
                assert!(!prog.line_info.is_empty(), "{ctx}: no line info");
                assert_eq!(
                    prog.line_info[0].insn, 0,
                    "{ctx}: line info starts at insn 0"
                );
                for l in &prog.line_info {
                    assert!(
                        l.file.ends_with(&format!("{name}/{name}.c")),
                        "{ctx}: file {}",
                        l.file
                    );
                    let text = lines
                        .get(l.line as usize - 1)
                        .unwrap_or_else(|| panic!("{ctx}: line {}", l.line));
                    assert_eq!(&l.source, text, "{ctx}: insn {} line {}", l.insn, l.line);
                    assert!((l.insn as usize) < prog.insns.len(), "{ctx}");
                }
                assert!(
                    prog.line_info.windows(2).all(|w| w[0].insn <= w[1].insn),
                    "{ctx}: sorted"
                );
                // The function's own line: the first line info is the function's signature or body.
                let line_of = prog.line_at(prog.insns.len() - 1).expect("covered");
                assert!(line_of.line > 0, "{ctx}");
            }
        }
    }
}

#[test]
fn every_program_type_is_one_the_runtime_supports() {
    for name in loader_util::EXAMPLES {
        for (p, o) in loader_util::parsed(name) {
            for prog in &o.programs {
                let t = prog.runtime_type().unwrap_or_else(|| {
                    panic!("{} {}: type {}", p.display(), prog.name, prog.prog_type())
                });
                assert_eq!(t.kernel_id(), prog.prog_type());
            }
        }
    }
}
