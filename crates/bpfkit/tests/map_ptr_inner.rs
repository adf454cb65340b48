//! Reading the fields of an inner map through the pointer a map-of-maps lookup returns
//! (`r0 = *(u32 *)(r0 + 76)` after `bpf_map_lookup_elem` on an array or hash of maps): the
//! same program runs in the kernel (`BPF_PROG_TEST_RUN`) and in bpfkit's checked and fast
//! interpreters, and gives the inner map's `max_entries`, `value_size` and `map_type` as the
//! test computes them from the inner map's attributes. The kernel part skips, saying why,
//! where `bpf()` is unavailable.

use bpfkit::maps::{MapAttr, MapType};
use bpfkit::prog::load::ProgLoadAttr;
use bpfkit::prog::run::TestRunAttr;
use bpfkit_isa::Insn;
use bpfkit_verifier::env::ProgType;

/// Inner map: array, value 12 bytes, 7 entries.
const INNER: (u32, u32, u32, u32) = (2, 4, 12, 7);

/// The expected r0, from the inner map's attributes: max_entries << 16 | value_size << 8 |
/// map_type.
const EXPECTED: u32 = (INNER.3 << 16) | (INNER.2 << 8) | INNER.0;

fn program() -> Vec<Insn> {
    let text = "
        *(u32 *)(r10 - 4) = 0
        r2 = r10
        r2 += -4
        r1 = 0 ll
        call 1
        if r0 == 0 goto miss
        r1 = *(u32 *)(r0 + 76)
        r2 = *(u32 *)(r0 + 72)
        r3 = *(u32 *)(r0 + 64)
        r1 <<= 16
        r2 <<= 8
        r1 |= r2
        r1 |= r3
        r0 = r1
        exit
    miss:
        r0 = 0xdead
        exit
    ";
    match bpfkit_isa::asm::kernel::assemble(text) {
        Ok(i) => i,
        Err(e) => panic!("{e}"),
    }
}

/// The program with its LD_IMM64 naming map descriptor `fd` (src = BPF_PSEUDO_MAP_FD).
fn with_map(fd: i32) -> Vec<Insn> {
    let mut insns = program();
    if let Some(i) = insns.iter().position(|i| i.is_ld_imm64()) {
        insns[i].src = 1;
        insns[i].imm = fd;
    }
    insns
}

fn packet() -> Vec<u8> {
    vec![0u8; 64]
}

fn bpfkit_run(outer: MapType) -> Vec<u32> {
    let bpf = bpfkit::Bpf::new();
    let (ty, key, value, max) = INNER;
    let inner_attr = MapAttr {
        map_type: ty,
        key_size: key,
        value_size: value,
        max_entries: max,
        ..MapAttr::default()
    };
    let inner = bpf
        .map_create(&inner_attr)
        .unwrap_or_else(|e| panic!("inner: {e}"));
    let outer_attr = MapAttr {
        map_type: outer as u32,
        key_size: 4,
        value_size: 4,
        max_entries: 2,
        inner_map_fd: inner.0,
        ..MapAttr::default()
    };
    let outer_fd = bpf
        .map_create(&outer_attr)
        .unwrap_or_else(|e| panic!("outer: {e}"));
    bpf.map_update_elem(outer_fd, &0u32.to_ne_bytes(), &inner.0.to_ne_bytes(), 0)
        .unwrap_or_else(|e| panic!("update: {e}"));
    let insns = with_map(i32::try_from(outer_fd.0).unwrap_or(-1));
    let attr = ProgLoadAttr {
        prog_type: ProgType::SocketFilter,
        insns: &insns,
        license: "GPL",
        log_level: 1,
        log_size: 1 << 16,
    };
    let prog = bpf
        .prog_load(&attr)
        .unwrap_or_else(|e| panic!("load: {e}: {}", e.log))
        .fd;
    let data = packet();
    [true, false]
        .iter()
        .map(|&checked| {
            let run = TestRunAttr {
                data_in: &data,
                checked,
                ..TestRunAttr::default()
            };
            bpf.prog_test_run(prog, &run)
                .unwrap_or_else(|e| panic!("run (checked {checked}): {e}"))
                .retval
        })
        .collect()
}

#[test]
fn inner_map_fields_read_through_the_lookup_result_in_bpfkit() {
    for outer in [MapType::ArrayOfMaps, MapType::HashOfMaps] {
        assert_eq!(bpfkit_run(outer), vec![EXPECTED, EXPECTED], "{outer:?}");
    }
}

#[test]
fn the_kernel_gives_the_same_values() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let (ty, key, value, max) = INNER;
    for outer in [MapType::ArrayOfMaps, MapType::HashOfMaps] {
        let inner = bpfkit_kernel::map_create(ty, key, value, max, 0)
            .unwrap_or_else(|e| panic!("inner: {e}"));
        let outer_map = bpfkit_kernel::map_create_outer(outer as u32, 4, 4, 2, 0, inner.fd())
            .unwrap_or_else(|e| panic!("outer: {e}"));
        bpfkit_kernel::map_update(
            &outer_map,
            &0u32.to_ne_bytes(),
            &inner.fd().to_ne_bytes(),
            0,
        )
        .unwrap_or_else(|e| panic!("update: {e}"));
        let insns = with_map(outer_map.fd());
        let loaded = bpfkit_kernel::ProgLoad {
            license: "GPL",
            ..bpfkit_kernel::ProgLoad::new(ProgType::SocketFilter.kernel_id())
        }
        .load(insns.as_slice());
        let prog = loaded
            .result
            .unwrap_or_else(|e| panic!("kernel load: {e:?}: {}", loaded.log));
        let run = bpfkit_kernel::prog_test_run(&prog, &packet(), None, 1)
            .unwrap_or_else(|e| panic!("kernel run: {e:?}"));
        assert_eq!(run.retval, EXPECTED, "{outer:?}");
    }
}
