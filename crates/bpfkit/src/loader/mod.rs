//! The ELF loader: clang-compiled BPF object files (`clang -target bpf -c`) as a plain
//! [`Object`] value — programs, map definitions, license, kernel version and debug info.
//!
//! The loader describes; it creates nothing. Maps are [`MapDef`]s and programs refer to them by
//! index (LD_IMM64 `src=1`/`src=2` with the index in `imm`); the runtime creates the maps and
//! puts their descriptors in place, as libbpf does between `bpf_object__open()` and
//! `bpf_object__load()`. Conventions follow libbpf 1.x: program section names
//! ([`section::classify`]), BTF-defined and legacy maps, global data maps, static prog_array
//! initialisation, subprogram linking ([`link`]).
//!
//! # Why not `aya-obj`
//! aya's object parser was evaluated on this repository's examples (aya-obj 0.3.0, the newest
//! release that cargo resolves for this toolchain; 0.6 needs Rust 1.98). It refused two of the
//! examples: `sockex3.o` (a prog_array with `__array(values, ...)` static
//! initialisation: "UnexpectedBtfType") and `tc_rewrite.o` (section `tc` unknown to that
//! release). Fed truncated and byte-flipped copies of the objects it panicked on 2–5 % of them
//! and aborted the process once, allocating 78 TB for a `.bss` whose size came from a corrupted
//! header — a loader that must never panic on user input cannot sit on that. Its model (maps
//! relocated by file descriptor, programs keyed by name in a `HashMap`) also fits a runtime
//! that calls the kernel, not one that describes an object for later instantiation.
//!
//! So the ELF container is read with the `object` crate (well fuzzed, and already a
//! dependency), and the BPF-specific layers — BTF and `.BTF.ext` parsing, map definitions,
//! relocations and linking — are written here, each bounds-checked, returning [`LoadError`]s
//! that name the section, symbol and offset.
//!
//! # Example
//! ```
//! # fn main() -> Result<(), bpfkit::loader::LoadError> {
//! let obj = bpfkit::loader::Object::parse(include_bytes!("../../../../examples/sockex1/sockex1.o"))?;
//! assert_eq!(obj.license, "GPL");
//! let map = obj.map_index("proto_bytes");
//! let prog = &obj.programs[0];
//! assert_eq!((prog.name.as_str(), prog.section.as_str()), ("count_proto_bytes", "socket"));
//! // The map reference is an LD_IMM64 with src = BPF_PSEUDO_MAP_FD and the map's index.
//! let (at, index) = prog.map_refs[0];
//! assert_eq!((prog.insns[at].src, Some(index)), (1, map));
//! # Ok(())
//! # }
//! ```
//!
//! # Not supported (typed errors, never a silently wrong program)
//! CO-RE relocations ([`LoadError::CoreRelocation`]; they need the target kernel's BTF),
//! extern symbols — kfuncs, `__ksym`, `__kconfig` ([`LoadError::Extern`]) — and code in sections
//! whose name follows no known convention ([`LoadError::UnknownProgramSection`]).

pub mod btf;
pub mod btf_ext;
pub mod elf;
pub mod error;
pub mod link;
pub mod maps;
pub mod section;

pub use btf::Btf;
pub use error::LoadError;
pub use link::{FuncInfo, LineInfo, Program};
pub use maps::{MapDef, MapOrigin, SlotInit, SlotTarget};
pub use section::SectionDef;

use btf_ext::BtfExt;
use elf::{Elf, SymKind};
use link::{Func, Linker};

/// A loaded object file: everything needed to instantiate its maps and programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The `license` section's string (`"GPL"`); empty when absent.
    pub license: String,
    /// The `version` section's value (`LINUX_VERSION_CODE`), if present.
    pub kern_version: Option<u32>,
    /// Programs in section order, then symbol order within a section.
    pub programs: Vec<Program>,
    /// Maps; LD_IMM64 map references carry an index into this list.
    pub maps: Vec<MapDef>,
    /// The object's BTF, if compiled with `-g`.
    pub btf: Option<Btf>,
    /// The BTF blob ready for the kernel (`BPF_BTF_LOAD`): `DATASEC` sizes and variable offsets
    /// filled in from the ELF sections and symbols, as libbpf does. Line and function info of
    /// the programs refer to this BTF's string offsets and type ids.
    pub kernel_btf: Option<Vec<u8>>,
}

impl Object {
    /// Parses and links an object file.
    pub fn parse(data: &[u8]) -> Result<Self, LoadError> {
        let elf = Elf::parse(data)?;
        let license = match elf.section_named("license") {
            Some(s) => {
                let end = s.data.iter().position(|&b| b == 0).unwrap_or(s.data.len());
                String::from_utf8(s.data[..end].to_vec()).map_err(|_| LoadError::Section {
                    section: "license".into(),
                    reason: "license string is not UTF-8".into(),
                })?
            }
            None => String::new(),
        };
        let kern_version = match elf.section_named("version") {
            Some(s) => match s.data.as_slice() {
                [a, b, c, d] => Some(u32::from_le_bytes([*a, *b, *c, *d])),
                other => {
                    return Err(LoadError::Section {
                        section: "version".into(),
                        reason: format!("{} bytes, expected a 4-byte u32", other.len()),
                    })
                }
            },
            None => None,
        };
        let btf = elf
            .section_named(".BTF")
            .map(|s| Btf::parse(&s.data))
            .transpose()?;
        let btf_ext = elf
            .section_named(".BTF.ext")
            .map(|s| BtfExt::parse(&s.data))
            .transpose()?;

        let mut maps = Vec::new();
        if let Some(s) = elf.section_named("maps") {
            maps.extend(maps::legacy_maps(&elf, s)?);
        }
        if let Some(s) = elf.section_named(".maps") {
            maps.extend(maps::btf_maps(&elf, s, btf.as_ref())?);
        }
        for s in &elf.sections {
            if maps::is_data_section(s) && s.size > 0 {
                maps.push(maps::data_map(s, btf.as_ref())?);
            }
        }

        let (funcs, entries) = collect_functions(&elf)?;
        let linker = Linker::new(&elf, &maps, &funcs, btf.as_ref(), btf_ext.as_ref());
        let programs = entries
            .into_iter()
            .map(|(fi, def)| linker.link(fi, def))
            .collect::<Result<Vec<_>, _>>()?;
        if programs.is_empty() {
            return Err(LoadError::NoPrograms);
        }
        check_slot_targets(&maps, &programs)?;
        let kernel_btf = btf.as_ref().map(|b| kernel_btf(b, &elf)).transpose()?;
        Ok(Self {
            license,
            kern_version,
            programs,
            maps,
            btf,
            kernel_btf,
        })
    }

    /// The program named `name` (its function name).
    #[must_use]
    pub fn program(&self, name: &str) -> Option<&Program> {
        self.programs.iter().find(|p| p.name == name)
    }

    /// The index of the map named `name`.
    #[must_use]
    pub fn map_index(&self, name: &str) -> Option<usize> {
        self.maps.iter().position(|m| m.name == name)
    }

    /// The map named `name`.
    #[must_use]
    pub fn map(&self, name: &str) -> Option<&MapDef> {
        self.maps.iter().find(|m| m.name == name)
    }
}

/// Every function of every code section, and which of them are programs.
/// Every statically initialised slot names a program or map of this object (a prog_array slot
/// pointing at a `.text` subprogram, say, is refused here as libbpf refuses it).
fn check_slot_targets(maps: &[MapDef], programs: &[Program]) -> Result<(), LoadError> {
    for m in maps {
        for slot in &m.init_slots {
            let found = match &slot.target {
                SlotTarget::Program(p) => programs.iter().any(|q| &q.name == p),
                SlotTarget::Map(n) => maps.iter().any(|q| &q.name == n && q.inner.is_none()),
            };
            if !found {
                return Err(LoadError::MapDef {
                    map: m.name.clone(),
                    reason: format!(
                        "slot {} points to {:?}, which is not a program or plain map of the object",
                        slot.slot, slot.target
                    ),
                });
            }
        }
    }
    Ok(())
}

/// `btf` with DATASEC sizes and offsets taken from `elf`.
fn kernel_btf(btf: &Btf, elf: &Elf) -> Result<Vec<u8>, LoadError> {
    btf.with_datasecs_fixed(
        |sec| {
            elf.section_named(sec)
                .and_then(|s| u32::try_from(s.size).ok())
        },
        |sec, var| {
            let index = elf.section_named(sec)?.index;
            elf.symbols
                .iter()
                .flatten()
                .find(|s| s.section == Some(index) && s.name == var && s.kind != SymKind::Section)
                .and_then(|s| u32::try_from(s.value).ok())
        },
    )
}

/// Program entries: (index into the function list, the section's convention).
type Entries = Vec<(usize, SectionDef)>;

fn collect_functions(elf: &Elf) -> Result<(Vec<Func>, Entries), LoadError> {
    let mut funcs = Vec::new();
    let mut entries = Vec::new();
    // Function symbols by section, gathered once (objects can have many sections and symbols).
    let mut funcs_by_section: std::collections::HashMap<usize, Vec<&elf::Sym>> =
        std::collections::HashMap::new();
    for s in elf
        .symbols
        .iter()
        .flatten()
        .filter(|s| s.kind == SymKind::Func)
    {
        if let Some(sec) = s.section {
            funcs_by_section.entry(sec).or_default().push(s);
        }
    }
    for sec in elf.sections.iter().filter(|s| s.exec && s.size > 0) {
        if sec.data.len() % 8 != 0 {
            return Err(LoadError::Section {
                section: sec.name.clone(),
                reason: format!(
                    "{} bytes of code is not a whole number of instructions",
                    sec.data.len()
                ),
            });
        }
        for r in &sec.relocs {
            let bad = |reason: &str| LoadError::Relocation {
                section: sec.name.clone(),
                offset: r.offset,
                symbol: elf.symbol_label(r.symbol),
                reason: reason.to_string(),
            };
            if r.offset % 8 != 0 || r.offset >= sec.data.len() as u64 {
                return Err(bad("offset is not an instruction of the section"));
            }
            if elf.symbol(r.symbol).is_none() {
                return Err(bad("symbol index out of range"));
            }
        }
        let mut syms = funcs_by_section.remove(&sec.index).unwrap_or_default();
        syms.sort_by_key(|s| s.value);
        if syms.is_empty() {
            return Err(LoadError::Section {
                section: sec.name.clone(),
                reason: "code section without function symbols".into(),
            });
        }
        let is_text = sec.name == ".text";
        let def = if is_text {
            None
        } else {
            section::classify(&sec.name)
        };
        if !is_text && def.is_none() {
            return Err(LoadError::UnknownProgramSection {
                section: sec.name.clone(),
                symbol: syms[0].name.clone(),
            });
        }
        for s in syms {
            if s.value % 8 != 0
                || s.size % 8 != 0
                || s.size == 0
                || s.value.saturating_add(s.size) > sec.size
            {
                return Err(LoadError::Section {
                    section: sec.name.clone(),
                    reason: format!("function {} at byte {} size {} is not whole instructions inside the section", s.name, s.value, s.size),
                });
            }
            if let Some(def) = &def {
                entries.push((funcs.len(), def.clone()));
            }
            funcs.push(Func {
                sec: sec.index,
                start: s.value / 8,
                len: s.size / 8,
                name: s.name.clone(),
            });
        }
    }
    Ok((funcs, entries))
}
