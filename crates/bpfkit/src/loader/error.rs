//! The loader's error type: every way an object file can be refused, each naming where.
//!
//! Offsets are byte offsets inside the named ELF section (for BTF: inside `.BTF` / `.BTF.ext`),
//! instruction indices count 8-byte slots from the start of the named section, as
//! `llvm-objdump -d` prints them.

use thiserror::Error;

/// Why an object file could not be turned into an [`super::Object`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LoadError {
    /// The bytes are not a well-formed 64-bit little-endian ELF relocatable file.
    #[error("not a valid ELF object: {0}")]
    Elf(String),
    /// The ELF file is for another machine (`e_machine` is not `EM_BPF`, 247).
    #[error("ELF e_machine is {machine}, not EM_BPF (247)")]
    WrongMachine {
        /// The `e_machine` field found.
        machine: u16,
    },
    /// The ELF file is not a relocatable object (`ET_REL`), as clang's `-c` produces.
    #[error("ELF e_type is {e_type}, not ET_REL (1): link nothing, load clang's .o directly")]
    NotRelocatable {
        /// The `e_type` field found.
        e_type: u16,
    },
    /// A section's contents are malformed.
    #[error("section {section}: {reason}")]
    Section {
        /// Section name.
        section: String,
        /// What is wrong.
        reason: String,
    },
    /// A code section whose name follows no convention the loader knows.
    #[error("section {section}: program section name not recognised (function {symbol})")]
    UnknownProgramSection {
        /// Section name.
        section: String,
        /// The first function symbol in it.
        symbol: String,
    },
    /// `.BTF` is malformed.
    #[error(".BTF at byte {offset}: {reason}")]
    Btf {
        /// Byte offset in the section where the problem was found.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// `.BTF.ext` is malformed.
    #[error(".BTF.ext at byte {offset}: {reason}")]
    BtfExt {
        /// Byte offset in the section where the problem was found.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// A map definition cannot be understood.
    #[error("map {map}: {reason}")]
    MapDef {
        /// Map (symbol) name.
        map: String,
        /// What is wrong.
        reason: String,
    },
    /// A relocation cannot be applied.
    #[error("section {section}: relocation at byte {offset} (insn {}) against symbol {symbol}: {reason}", offset / 8)]
    Relocation {
        /// Section the relocation applies to.
        section: String,
        /// Byte offset of the relocated location in that section.
        offset: u64,
        /// Symbol name (or `#index` when it has none).
        symbol: String,
        /// What is wrong.
        reason: String,
    },
    /// The program refers to a symbol defined outside the object: a kfunc, a `__ksym` or a
    /// `__kconfig` extern. Resolving those needs the running kernel's BTF.
    #[error("section {section}: insn {insn} refers to extern symbol {symbol} (kfunc/ksym/kconfig externs are not supported)")]
    Extern {
        /// Section of the referring instruction.
        section: String,
        /// Instruction index in that section.
        insn: u64,
        /// The extern's name.
        symbol: String,
    },
    /// A CO-RE relocation: it needs the target kernel's BTF, which bpfkit does not have.
    #[error("section {section}: insn {insn}: CO-RE relocation {kind} against type {type_name} (access {access}) needs kernel BTF, which is not supported")]
    CoreRelocation {
        /// Section of the relocated instruction.
        section: String,
        /// Instruction index in that section.
        insn: u64,
        /// The relocation kind, as libbpf names it (`byte_off`, `type_id_target`, ...).
        kind: String,
        /// Name of the local BTF type the relocation is against.
        type_name: String,
        /// The access string (`0:1:2`).
        access: String,
    },
    /// A bpf-to-bpf call whose target is not a function in the object.
    #[error("section {section}: insn {insn}: call target {target} is not inside a known function")]
    BadCall {
        /// Section of the call.
        section: String,
        /// Instruction index of the call in that section.
        insn: u64,
        /// Description of the target (section and instruction).
        target: String,
    },
    /// The object holds no program at all.
    #[error("the object has no program")]
    NoPrograms,
}
