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
//! release building with the workspace's Rust 1.85; 0.6 needs Rust 1.98). It parsed 7 of 9
//! objects: it refused `sockex3.o` (a prog_array with `__array(values, ...)` static
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
        let linker = Linker {
            elf: &elf,
            maps: &maps,
            funcs: &funcs,
            btf: btf.as_ref(),
            btf_ext: btf_ext.as_ref(),
        };
        let programs = entries
            .into_iter()
            .map(|(fi, def)| linker.link(fi, def))
            .collect::<Result<Vec<_>, _>>()?;
        if programs.is_empty() {
            return Err(LoadError::NoPrograms);
        }
        Ok(Self {
            license,
            kern_version,
            programs,
            maps,
            btf,
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
/// Program entries: (index into the function list, the section's convention).
type Entries = Vec<(usize, SectionDef)>;

fn collect_functions(elf: &Elf) -> Result<(Vec<Func>, Entries), LoadError> {
    let mut funcs = Vec::new();
    let mut entries = Vec::new();
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
        let mut syms: Vec<_> = elf
            .symbols
            .iter()
            .flatten()
            .filter(|s| s.section == Some(sec.index) && s.kind == SymKind::Func)
            .collect();
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
