//! Malformed objects give typed errors and never a panic.
//!
//! Targeted corruptions of the real example objects (wrong machine, wrong ELF type, relocations
//! at bad offsets or against missing symbols, relocations on the wrong instruction, unknown
//! program sections, a corrupted BTF) must give the matching [`LoadError`] naming the place;
//! truncation at many lengths, random bytes and random mutations (proptest) must give an error
//! or a value, never a panic.

mod loader_util;

use bpfkit::loader::{LoadError, Object};
use object::{Object as _, ObjectSection as _, ObjectSymbol as _};
use proptest::prelude::*;

fn example(name: &str) -> Vec<u8> {
    loader_util::objects(name).swap_remove(0).1
}

/// File offset and size of section `name`.
fn section_range(data: &[u8], name: &str) -> (usize, usize) {
    let file = object::File::parse(data).expect("valid example");
    let s = file
        .section_by_name(name)
        .unwrap_or_else(|| panic!("no section {name}"));
    let (off, size) = s.file_range().expect("in file");
    (off as usize, size as usize)
}

#[test]
fn truncated_objects_are_errors() {
    for name in loader_util::EXAMPLES {
        let data = example(name);
        let step = if *name == "sockex1" { 1 } else { 13 };
        for len in (0..data.len()).step_by(step) {
            let r = Object::parse(&data[..len]);
            assert!(r.is_err(), "{name} truncated to {len} bytes parsed");
        }
    }
}

#[test]
fn wrong_machine_and_type() {
    let mut data = example("sockex1");
    data[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    assert_eq!(
        Object::parse(&data),
        Err(LoadError::WrongMachine { machine: 62 })
    );
    let mut data = example("sockex1");
    data[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    assert_eq!(
        Object::parse(&data),
        Err(LoadError::NotRelocatable { e_type: 2 })
    );
    let data = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    assert!(matches!(Object::parse(&data), Err(LoadError::Elf(_))));
}

/// sockex1's only relocation: `.relsocket`, one Elf64_Rel { r_offset, r_info = sym << 32 | type }.
fn sockex1_reloc() -> (Vec<u8>, usize) {
    let data = example("sockex1");
    let (off, size) = section_range(&data, ".relsocket");
    assert_eq!(
        size, 16,
        "one relocation (llvm-objdump -r shows R_BPF_64_64 proto_bytes)"
    );
    (data, off)
}

#[test]
fn relocation_at_misaligned_offset() {
    let (mut data, rel) = sockex1_reloc();
    let orig = u64::from_le_bytes(data[rel..rel + 8].try_into().expect("8"));
    data[rel..rel + 8].copy_from_slice(&(orig + 3).to_le_bytes());
    match Object::parse(&data) {
        Err(LoadError::Relocation {
            section,
            offset,
            symbol,
            ..
        }) => {
            assert_eq!(
                (section.as_str(), offset, symbol.as_str()),
                ("socket", orig + 3, "proto_bytes")
            );
        }
        other => panic!("{other:?}"),
    }
    data[rel..rel + 8].copy_from_slice(&0x10_0000u64.to_le_bytes());
    assert!(matches!(
        Object::parse(&data),
        Err(LoadError::Relocation {
            offset: 0x10_0000,
            ..
        })
    ));
}

#[test]
fn relocation_against_missing_symbol() {
    let (mut data, rel) = sockex1_reloc();
    let info = u64::from_le_bytes(data[rel + 8..rel + 16].try_into().expect("8"));
    data[rel + 8..rel + 16].copy_from_slice(&((999u64 << 32) | (info & 0xffff_ffff)).to_le_bytes());
    match Object::parse(&data) {
        Err(LoadError::Relocation {
            section, symbol, ..
        }) => assert_eq!((section.as_str(), symbol.as_str()), ("socket", "#999")),
        Err(LoadError::Elf(_)) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn relocation_on_a_plain_instruction() {
    let (mut data, rel) = sockex1_reloc();
    let r_offset = u64::from_le_bytes(data[rel..rel + 8].try_into().expect("8")) as usize;
    let (text, _) = section_range(&data, "socket");
    // Turn the relocated LD_IMM64 into `r1 = 0` (mov64 imm, 0xb7).
    data[text + r_offset] = 0xb7;
    match Object::parse(&data) {
        Err(LoadError::Relocation {
            section,
            offset,
            reason,
            ..
        }) => {
            assert_eq!((section.as_str(), offset as usize), ("socket", r_offset));
            assert!(reason.contains("neither LD_IMM64 nor CALL"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_program_section() {
    let mut data = example("sockex1");
    let (strtab, size) = section_range(&data, ".strtab");
    let names = &mut data[strtab..strtab + size];
    // "socket\0" (possibly the tail of ".relsocket\0", which then follows along).
    let at = names
        .windows(7)
        .position(|w| w == b"socket\0")
        .expect("socket in .strtab");
    names[at..at + 6].copy_from_slice(b"sockeX");
    assert_eq!(
        Object::parse(&data),
        Err(LoadError::UnknownProgramSection {
            section: "sockeX".into(),
            symbol: "count_proto_bytes".into()
        })
    );
}

/// Sets `st_value` of symbol `name` (Elf64_Sym: name u32, info u8, other u8, shndx u16,
/// value u64, size u64).
fn set_symbol_value(data: &mut [u8], name: &str, value: u64) {
    let file = object::File::parse(&*data).expect("valid");
    let index = file
        .symbols()
        .find(|s| s.name() == Ok(name))
        .expect("symbol")
        .index()
        .0;
    let (symtab, _) = section_range(data, ".symtab");
    let at = symtab + 24 * index + 8;
    data[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

#[test]
fn legacy_map_symbol_outside_its_section() {
    let mut data = example("legacy_maps");
    set_symbol_value(&mut data, "frames_by_len", u64::MAX - 3);
    assert!(
        matches!(Object::parse(&data), Err(LoadError::MapDef { ref map, .. }) if map == "frames_by_len"),
        "{:?}",
        Object::parse(&data)
    );
}

#[test]
fn function_symbol_outside_its_section() {
    let mut data = example("sockex1");
    set_symbol_value(&mut data, "count_proto_bytes", 1 << 40);
    assert!(
        matches!(Object::parse(&data), Err(LoadError::Section { ref section, .. }) if section == "socket"),
        "{:?}",
        Object::parse(&data)
    );
}

#[test]
fn prog_array_slot_pointing_at_a_subprogram() {
    let mut data = example("sockex3");
    let file = object::File::parse(&*data).expect("valid");
    let account = file
        .symbols()
        .find(|s| s.name() == Ok("account"))
        .expect("account()")
        .index()
        .0 as u64;
    let (rel, size) = section_range(&data, ".rel.maps");
    assert_eq!(
        size,
        4 * 16,
        "four static slots (llvm-objdump -r shows them)"
    );
    let info = u64::from_le_bytes(data[rel + 8..rel + 16].try_into().expect("8"));
    data[rel + 8..rel + 16]
        .copy_from_slice(&((account << 32) | (info & 0xffff_ffff)).to_le_bytes());
    assert!(
        matches!(Object::parse(&data), Err(LoadError::MapDef { ref map, ref reason }) if map == "parsers" && reason.contains("account")),
        "{:?}",
        Object::parse(&data)
    );
}

#[test]
fn corrupted_btf() {
    let data = example("sockex1");
    let (btf, size) = section_range(&data, ".BTF");
    let mut bad = data.clone();
    bad[btf] ^= 0xff; // magic
    assert!(matches!(
        Object::parse(&bad),
        Err(LoadError::Btf { offset: 0, .. })
    ));
    let mut bad = data.clone();
    bad[btf + 12..btf + 16].copy_from_slice(&(size as u32 * 2).to_le_bytes()); // type_len
    assert!(matches!(Object::parse(&bad), Err(LoadError::Btf { .. })));
    let mut bad = data.clone();
    // First type's info word: kind 31 does not exist.
    let hdr_len = u32::from_le_bytes(data[btf + 4..btf + 8].try_into().expect("4")) as usize;
    let type_off = u32::from_le_bytes(data[btf + 8..btf + 12].try_into().expect("4")) as usize;
    let info = btf + hdr_len + type_off + 4;
    bad[info + 3] = 0x1f;
    assert!(
        matches!(Object::parse(&bad), Err(LoadError::Btf { .. })),
        "{:?}",
        Object::parse(&bad)
    );
    let (ext, _) = section_range(&data, ".BTF.ext");
    let mut bad = data;
    bad[ext + 1] = 0;
    assert!(matches!(
        Object::parse(&bad),
        Err(LoadError::BtfExt { offset: 0, .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_are_errors(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        prop_assert!(Object::parse(&bytes).is_err());
    }

    #[test]
    fn random_elf_headers_are_errors(tail in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut bytes = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 247, 0];
        bytes.extend(tail);
        let _ = Object::parse(&bytes);
    }

    #[test]
    fn mutated_examples_never_panic(
        which in 0..loader_util::EXAMPLES.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut data = example(loader_util::EXAMPLES[which]);
        for (i, b) in edits {
            let at = i.index(data.len());
            data[at] = b;
        }
        let _ = Object::parse(&data);
    }

    #[test]
    fn mutated_btf_never_panics(
        which in 0..loader_util::EXAMPLES.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut data = example(loader_util::EXAMPLES[which]);
        let (btf, size) = section_range(&data, ".BTF");
        let (ext, ext_size) = section_range(&data, ".BTF.ext");
        for (k, (i, b)) in edits.into_iter().enumerate() {
            let at = if k % 2 == 0 { btf + i.index(size) } else { ext + i.index(ext_size) };
            data[at] = b;
        }
        let _ = Object::parse(&data);
    }
}
