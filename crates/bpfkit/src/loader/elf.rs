//! The ELF layer: the `object` crate reads the file; this module copies what the loader needs
//! (sections, symbols, relocations) into plain vectors, checking the header on the way.
//!
//! Everything after this module works on these vectors, so the rest of the loader never touches
//! `object`'s lifetimes or iterators, and every index it follows has been checked here or is
//! looked up with `get()`.

use super::error::LoadError;
use object::read::elf::{ElfFile64, FileHeader};
use object::{Endianness, Object, ObjectSection, ObjectSymbol, SectionIndex, SymbolIndex};

/// `EM_BPF`.
pub const EM_BPF: u16 = 247;
/// `ET_REL`.
const ET_REL: u16 = 1;
/// `SHF_EXECINSTR`.
const SHF_EXECINSTR: u64 = 0x4;
/// `SHF_ALLOC`.
const SHF_ALLOC: u64 = 0x2;

/// One section.
#[derive(Debug, Clone)]
pub struct Sec {
    /// ELF section index.
    pub index: usize,
    /// Name.
    pub name: String,
    /// Contents (empty for `SHT_NOBITS`).
    pub data: Vec<u8>,
    /// `sh_size` (the size of a `.bss`, whose data is empty).
    pub size: u64,
    /// `SHF_EXECINSTR` is set.
    pub exec: bool,
    /// `SHF_ALLOC` is set.
    pub alloc: bool,
    /// Relocations applying to this section, sorted by offset.
    pub relocs: Vec<Reloc>,
}

impl Sec {
    /// The relocation at byte offset `offset`, if any (the first, should there be several).
    pub fn reloc_at(&self, offset: u64) -> Option<&Reloc> {
        let i = self.relocs.partition_point(|r| r.offset < offset);
        self.relocs.get(i).filter(|r| r.offset == offset)
    }
}

/// One relocation entry.
#[derive(Debug, Clone, Copy)]
pub struct Reloc {
    /// Byte offset in the relocated section.
    pub offset: u64,
    /// Symbol table index.
    pub symbol: usize,
    /// ELF `r_type` (`R_BPF_*`).
    pub r_type: u32,
}

/// What a symbol names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymKind {
    /// `STT_FUNC`.
    Func,
    /// `STT_OBJECT`.
    Object,
    /// `STT_SECTION`.
    Section,
    /// Anything else (`STT_NOTYPE`, `STT_FILE`, ...).
    Other,
}

/// One symbol.
#[derive(Debug, Clone)]
pub struct Sym {
    /// Name ("" for section symbols).
    pub name: String,
    /// Section index it is defined in; `None` when undefined (an extern) or absolute.
    pub section: Option<usize>,
    /// True when `st_shndx` is `SHN_UNDEF`.
    pub undefined: bool,
    /// `st_value`: the offset in its section.
    pub value: u64,
    /// `st_size`.
    pub size: u64,
    /// Kind.
    pub kind: SymKind,
}

/// The parts of an object file the loader uses.
#[derive(Debug, Clone)]
pub struct Elf {
    /// Sections, by position (not necessarily by ELF index: look up with [`Elf::section`]).
    pub sections: Vec<Sec>,
    /// Symbols by symbol-table index (index 0 is the null symbol).
    pub symbols: Vec<Option<Sym>>,
}

fn elf_err(e: object::Error) -> LoadError {
    LoadError::Elf(e.to_string())
}

impl Elf {
    /// Reads and checks an object file: 64-bit, little endian, `EM_BPF`, `ET_REL`.
    pub fn parse(data: &[u8]) -> Result<Self, LoadError> {
        let file = ElfFile64::<Endianness>::parse(data).map_err(elf_err)?;
        let endian = file.endian();
        let header = file.elf_header();
        let machine = header.e_machine(endian);
        if machine != EM_BPF {
            return Err(LoadError::WrongMachine { machine });
        }
        if endian != Endianness::Little {
            return Err(LoadError::Elf(
                "big-endian BPF object (bpfeb); only bpfel is supported".into(),
            ));
        }
        let e_type = header.e_type(endian);
        if e_type != ET_REL {
            return Err(LoadError::NotRelocatable { e_type });
        }
        let mut sections = Vec::new();
        for s in file.sections() {
            let name = s.name().map_err(elf_err)?.to_string();
            let flags = match s.flags() {
                object::SectionFlags::Elf { sh_flags } => sh_flags,
                _ => 0,
            };
            let data = s.data().map_err(|e| LoadError::Section {
                section: name.clone(),
                reason: format!("contents unreadable: {e}"),
            })?;
            let mut relocs = Vec::new();
            for (offset, r) in s.relocations() {
                let r_type = match r.flags() {
                    object::RelocationFlags::Elf { r_type } => r_type,
                    _ => 0,
                };
                let symbol = match r.target() {
                    object::RelocationTarget::Symbol(SymbolIndex(i)) => i,
                    _ => {
                        return Err(LoadError::Relocation {
                            section: name,
                            offset,
                            symbol: "?".into(),
                            reason: "relocation has no symbol".into(),
                        })
                    }
                };
                relocs.push(Reloc {
                    offset,
                    symbol,
                    r_type,
                });
            }
            // Sorted, so that the linker finds an instruction's relocation by binary search.
            relocs.sort_by_key(|r| r.offset);
            sections.push(Sec {
                index: s.index().0,
                name,
                data: data.to_vec(),
                size: s.size(),
                exec: flags & SHF_EXECINSTR != 0,
                alloc: flags & SHF_ALLOC != 0,
                relocs,
            });
        }
        let mut symbols = Vec::new();
        for sym in file.symbols() {
            let SymbolIndex(i) = sym.index();
            if symbols.len() <= i {
                symbols.resize(i + 1, None);
            }
            let kind = match sym.kind() {
                object::SymbolKind::Text => SymKind::Func,
                object::SymbolKind::Data => SymKind::Object,
                object::SymbolKind::Section => SymKind::Section,
                _ => SymKind::Other,
            };
            let (section, undefined) = match sym.section() {
                object::SymbolSection::Section(SectionIndex(s)) => (Some(s), false),
                object::SymbolSection::Undefined => (None, true),
                _ => (None, false),
            };
            let name = sym.name().unwrap_or("").to_string();
            symbols[i] = Some(Sym {
                name,
                section,
                undefined,
                value: sym.address(),
                size: sym.size(),
                kind,
            });
        }
        Ok(Self { sections, symbols })
    }

    /// The section with ELF index `index`.
    pub fn section(&self, index: usize) -> Option<&Sec> {
        self.sections.iter().find(|s| s.index == index)
    }

    /// The section named `name`.
    pub fn section_named(&self, name: &str) -> Option<&Sec> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The symbol at symbol-table index `index`.
    pub fn symbol(&self, index: usize) -> Option<&Sym> {
        self.symbols.get(index).and_then(Option::as_ref)
    }

    /// A printable name for symbol `index`: its name, its section's name for a section
    /// symbol, or `#index`.
    pub fn symbol_label(&self, index: usize) -> String {
        match self.symbol(index) {
            Some(s) if !s.name.is_empty() => s.name.clone(),
            Some(Sym {
                section: Some(sec), ..
            }) => self
                .section(*sec)
                .map_or_else(|| format!("#{index}"), |s| s.name.clone()),
            _ => format!("#{index}"),
        }
    }
}
