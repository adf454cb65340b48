//! Programs: cutting functions out of code sections, applying relocations and appending the
//! subprograms each program calls, as libbpf's `bpf_object__relocate()` does.
//!
//! A program is one `STT_FUNC` symbol in a program section. Its instructions are copied, then
//! every function it reaches through bpf-to-bpf calls (`.text` subprograms, found through
//! `R_BPF_64_32` relocations or, for static calls within one section, the call's own offset) is
//! appended once, and each call's `imm` is rewritten to the callee's new position
//! (`target = call + 1 + imm`, the kernel's rule). `R_BPF_64_64` relocations on LD_IMM64 become
//! `src = BPF_PSEUDO_MAP_FD` (1) with the map's index in `imm`, `src = BPF_PSEUDO_MAP_VALUE` (2)
//! with the map's index and the offset in the second slot for global data, or
//! `src = BPF_PSEUDO_FUNC` (4) for a function's address. Line and function info follow their
//! instructions into the linked program.

use super::btf::Btf;
use super::btf_ext::{core_relo_kind_name, BtfExt};
use super::elf::{Elf, Sec, SymKind};
use super::error::LoadError;
use super::maps::{MapDef, MapOrigin};
use super::section::SectionDef;
use bpfkit_isa::Insn;
use std::collections::HashMap;

/// `R_BPF_64_64`: LD_IMM64 of a symbol's address.
pub const R_BPF_64_64: u32 = 1;
/// `R_BPF_64_32`: a call's target.
pub const R_BPF_64_32: u32 = 10;
/// `BPF_PSEUDO_MAP_FD`.
pub const PSEUDO_MAP_FD: u8 = 1;
/// `BPF_PSEUDO_MAP_VALUE`.
pub const PSEUDO_MAP_VALUE: u8 = 2;
/// `BPF_PSEUDO_FUNC`.
pub const PSEUDO_FUNC: u8 = 4;
/// `BPF_PSEUDO_CALL`.
pub const PSEUDO_CALL: u8 = 1;
/// `BPF_JMP | BPF_CALL`.
const CALL: u8 = 0x85;

/// Where an instruction came from in C (`struct bpf_line_info`, resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineInfo {
    /// Instruction index in the linked program.
    pub insn: u32,
    /// Source file name.
    pub file: String,
    /// Line number (1-based).
    pub line: u32,
    /// Column (1-based; 0 when unknown).
    pub col: u32,
    /// The source line's text, as clang recorded it.
    pub source: String,
    /// `.BTF` string offset of `file` (for handing line info to a kernel with the BTF).
    pub file_name_off: u32,
    /// `.BTF` string offset of `source`.
    pub line_off: u32,
}

impl LineInfo {
    /// The text the kernel's verifier log prints for this line (`verbose_linfo()` in
    /// kernel/bpf/log.c), without its `"; "` prefix and newline: the source line with leading
    /// white space (C's `isspace`) removed, `" @ "`, the file name without its directories,
    /// `":"` and the line number.
    #[must_use]
    pub fn log_text(&self) -> String {
        let source = self
            .source
            .trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
        let file = self.file.rsplit('/').next().unwrap_or(&self.file);
        format!("{source} @ {file}:{}", self.line)
    }

    /// True when `other` names the same file and line (the kernel prints such a line once,
    /// whatever the columns).
    #[must_use]
    pub fn same_line(&self, other: &LineInfo) -> bool {
        self.file_name_off == other.file_name_off && self.line == other.line
    }
}

/// Where a function starts in the linked program (`struct bpf_func_info`, resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuncInfo {
    /// Instruction index of the function's first instruction.
    pub insn: u32,
    /// BTF id of its `FUNC` type.
    pub type_id: u32,
    /// Function name.
    pub name: String,
}

/// One program, linked and ready for the runtime to resolve map indices into descriptors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// Function name (`count_proto_bytes`).
    pub name: String,
    /// ELF section name (`socket`, `kprobe/ksys_write`).
    pub section: String,
    /// Program type and attach point from the section name.
    pub def: SectionDef,
    /// Instructions: the function, then each subprogram it calls, relocated.
    pub insns: Vec<Insn>,
    /// Function starts: the program at 0, then each appended subprogram (empty without BTF).
    pub func_info: Vec<FuncInfo>,
    /// Source positions, sorted by instruction (empty without `.BTF.ext`).
    pub line_info: Vec<LineInfo>,
    /// Instruction index of each LD_IMM64 map reference and the map's index in
    /// [`super::Object::maps`], in program order.
    pub map_refs: Vec<(usize, usize)>,
}

impl Program {
    /// The kernel's number for the program type (`enum bpf_prog_type`).
    #[must_use]
    pub fn prog_type(&self) -> u32 {
        self.def.prog_type
    }

    /// The runtime's program type, when bpfkit supports this one.
    #[must_use]
    pub fn runtime_type(&self) -> Option<crate::progtype::ProgType> {
        crate::progtype::ProgType::from_kernel_id(self.def.prog_type)
    }

    /// The source line covering instruction `insn`: the last line info at or before it.
    #[must_use]
    pub fn line_at(&self, insn: usize) -> Option<&LineInfo> {
        let i = self.line_info.partition_point(|l| l.insn as usize <= insn);
        i.checked_sub(1).map(|i| &self.line_info[i])
    }
}

/// A function symbol: section, first instruction and length in slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Func {
    /// ELF section index.
    pub sec: usize,
    /// First instruction index in the section.
    pub start: u64,
    /// Length in instructions.
    pub len: u64,
    /// Symbol name.
    pub name: String,
}

/// The functions of one program being linked, in append order, with their new starts.
#[derive(Default)]
struct Layout {
    /// (function index, first instruction in the program).
    order: Vec<(usize, u64)>,
    /// Function index -> first instruction in the program.
    placed: HashMap<usize, u64>,
    /// Instructions so far.
    len: u64,
}

impl Layout {
    /// Appends function `fi` of `len` instructions unless it is placed already.
    fn place(&mut self, fi: usize, len: u64) {
        if let std::collections::hash_map::Entry::Vacant(e) = self.placed.entry(fi) {
            e.insert(self.len);
            self.order.push((fi, self.len));
            self.len += len;
        }
    }
}

/// Everything linking reads.
pub struct Linker<'a> {
    /// The file.
    pub elf: &'a Elf,
    /// Maps in index order.
    pub maps: &'a [MapDef],
    /// Every function of every code section.
    pub funcs: &'a [Func],
    /// `.BTF`, if present.
    pub btf: Option<&'a Btf>,
    /// `.BTF.ext`, if present.
    pub btf_ext: Option<&'a BtfExt>,
    /// Function index by (section, first instruction); the first symbol wins for aliases.
    func_index: HashMap<(usize, u64), usize>,
}

impl<'a> Linker<'a> {
    /// A linker over these parts of one object.
    pub fn new(
        elf: &'a Elf,
        maps: &'a [MapDef],
        funcs: &'a [Func],
        btf: Option<&'a Btf>,
        btf_ext: Option<&'a BtfExt>,
    ) -> Self {
        let mut func_index = HashMap::new();
        for (i, f) in funcs.iter().enumerate() {
            func_index.entry((f.sec, f.start)).or_insert(i);
        }
        Self {
            elf,
            maps,
            funcs,
            btf,
            btf_ext,
            func_index,
        }
    }

    fn func_at(&self, sec: usize, insn: u64) -> Option<usize> {
        self.func_index.get(&(sec, insn)).copied()
    }

    fn sec(&self, index: usize) -> Result<&Sec, LoadError> {
        self.elf
            .section(index)
            .ok_or_else(|| LoadError::Elf(format!("no section {index}")))
    }

    /// Links the program whose entry is `funcs[entry]`.
    pub fn link(&self, entry: usize, def: SectionDef) -> Result<Program, LoadError> {
        let main = &self.funcs[entry];
        let main_sec = self.sec(main.sec)?;
        // Functions in the order they are appended, with their new start.
        let mut layout = Layout::default();
        layout.place(entry, main.len);
        let mut insns: Vec<Insn> = Vec::new();
        let mut map_refs = Vec::new();
        // Calls to patch once every callee has a position: (insn index, callee func).
        let mut calls: Vec<(usize, usize)> = Vec::new();
        let mut next = 0;
        while next < layout.order.len() {
            let (fi, base) = layout.order[next];
            next += 1;
            let f = &self.funcs[fi];
            let sec = self.sec(f.sec)?;
            let code = func_insns(sec, f)?;
            debug_assert_eq!(base as usize, insns.len());
            insns.extend_from_slice(&code);
            let mut i = 0usize;
            while i < code.len() {
                let sec_insn = f.start + i as u64;
                let at = base as usize + i;
                let reloc = sec.reloc_at(sec_insn * 8);
                let insn = insns[at];
                let is_call = insn.code == CALL;
                if let Some(r) = reloc {
                    let label = self.elf.symbol_label(r.symbol);
                    let rel_err = |reason: &str| LoadError::Relocation {
                        section: sec.name.clone(),
                        offset: r.offset,
                        symbol: label.clone(),
                        reason: reason.to_string(),
                    };
                    let sym = self
                        .elf
                        .symbol(r.symbol)
                        .ok_or_else(|| rel_err("no such symbol"))?;
                    if sym.undefined {
                        return Err(LoadError::Extern {
                            section: sec.name.clone(),
                            insn: sec_insn,
                            symbol: label,
                        });
                    }
                    let sym_sec = sym
                        .section
                        .ok_or_else(|| rel_err("symbol is not defined in a section"))?;
                    let target_sec = self.sec(sym_sec)?;
                    if is_call {
                        if r.r_type != R_BPF_64_32 || insn.src != PSEUDO_CALL {
                            return Err(rel_err(
                                "call relocation must be R_BPF_64_32 on a BPF_PSEUDO_CALL",
                            ));
                        }
                        let target = (sym.value / 8).wrapping_add_signed(i64::from(insn.imm) + 1);
                        calls.push((
                            at,
                            self.callee(&mut layout, sec, sec_insn, sym_sec, target)?,
                        ));
                    } else if insn.is_ld_imm64() {
                        if r.r_type != R_BPF_64_64 {
                            return Err(rel_err("LD_IMM64 relocation must be R_BPF_64_64"));
                        }
                        if at + 1 >= insns.len() {
                            return Err(rel_err("LD_IMM64 is missing its second slot"));
                        }
                        if target_sec.exec {
                            // Address of a function (callbacks for bpf_loop and friends).
                            let byte = sym.value.wrapping_add_signed(i64::from(insn.imm));
                            if byte % 8 != 0 {
                                return Err(rel_err("function address not on an instruction"));
                            }
                            insns[at].src = PSEUDO_FUNC;
                            calls.push((
                                at,
                                self.callee(&mut layout, sec, sec_insn, sym_sec, byte / 8)?,
                            ));
                        } else {
                            let (mi, value_off) = self
                                .map_for(sym_sec, sym.value, sym.kind, insn.imm)
                                .ok_or_else(|| {
                                    rel_err(&format!(
                                        "symbol in section {} is neither a map nor global data",
                                        target_sec.name
                                    ))
                                })?;
                            match value_off {
                                None => {
                                    insns[at].src = PSEUDO_MAP_FD;
                                    insns[at].imm = mi as i32;
                                }
                                Some(off) => {
                                    insns[at].src = PSEUDO_MAP_VALUE;
                                    insns[at].imm = mi as i32;
                                    insns[at + 1].imm = off;
                                }
                            }
                            map_refs.push((at, mi));
                        }
                    } else {
                        return Err(rel_err(
                            "relocated instruction is neither LD_IMM64 nor CALL",
                        ));
                    }
                } else if is_call && insn.src == PSEUDO_CALL {
                    // A static call within the section: no relocation, the offset is final.
                    let target = sec_insn.wrapping_add_signed(i64::from(insn.imm) + 1);
                    calls.push((at, self.callee(&mut layout, sec, sec_insn, f.sec, target)?));
                }
                i += if insn.is_ld_imm64() { 2 } else { 1 };
            }
        }
        for (at, callee) in calls {
            let new_start = layout.placed.get(&callee).copied().unwrap_or(0);
            insns[at].imm = (new_start as i64 - at as i64 - 1) as i32;
        }
        self.check_core(&layout.order)?;
        let (func_info, line_info) = self.debug_info(&layout.order)?;
        Ok(Program {
            name: main.name.clone(),
            section: main_sec.name.clone(),
            def,
            insns,
            func_info,
            line_info,
            map_refs,
        })
    }

    /// The function starting at `target` in section `target_sec`, scheduled for appending if
    /// it is not part of the program yet.
    fn callee(
        &self,
        layout: &mut Layout,
        sec: &Sec,
        sec_insn: u64,
        target_sec: usize,
        target: u64,
    ) -> Result<usize, LoadError> {
        let fi = self
            .func_at(target_sec, target)
            .ok_or_else(|| LoadError::BadCall {
                section: sec.name.clone(),
                insn: sec_insn,
                target: format!(
                    "insn {target} of section {}",
                    self.elf
                        .section(target_sec)
                        .map_or("?", |s| s.name.as_str())
                ),
            })?;
        layout.place(fi, self.funcs[fi].len);
        Ok(fi)
    }

    /// The map an LD_IMM64 relocation against a symbol in `sec` at `value` refers to, and for
    /// global data the offset into its value.
    fn map_for(
        &self,
        sec: usize,
        value: u64,
        kind: SymKind,
        imm: i32,
    ) -> Option<(usize, Option<i32>)> {
        let sec_name = &self.elf.section(sec)?.name;
        self.maps
            .iter()
            .enumerate()
            .find_map(|(i, m)| match &m.origin {
                MapOrigin::GlobalData(s) if s == sec_name => {
                    // A section symbol's offset is in imm; an object symbol adds its own value.
                    let base = if kind == SymKind::Section { 0 } else { value };
                    let off = i64::try_from(base).ok()? + i64::from(imm);
                    Some((i, Some(i32::try_from(off).ok()?)))
                }
                MapOrigin::Legacy if sec_name == "maps" && m.sec_offset == value => Some((i, None)),
                MapOrigin::Btf if sec_name == ".maps" && m.sec_offset == value => Some((i, None)),
                _ => None,
            })
    }

    fn check_core(&self, order: &[(usize, u64)]) -> Result<(), LoadError> {
        let (Some(ext), Some(btf)) = (self.btf_ext, self.btf) else {
            return Ok(());
        };
        for table in &ext.core_relos {
            let sec_name = btf.str_at(table.sec_name_off)?;
            for rec in &table.records {
                let insn = u64::from(rec.insn_off / 8);
                let hit = order.iter().any(|o| {
                    let f = &self.funcs[o.0];
                    self.elf.section(f.sec).is_some_and(|s| s.name == sec_name)
                        && insn >= f.start
                        && insn < f.start + f.len
                });
                if hit {
                    return Err(LoadError::CoreRelocation {
                        section: sec_name.to_string(),
                        insn,
                        kind: core_relo_kind_name(rec.kind).to_string(),
                        type_name: btf.name_of(rec.type_id).unwrap_or("?").to_string(),
                        access: btf.str_at(rec.access_str_off).unwrap_or("?").to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    fn debug_info(
        &self,
        order: &[(usize, u64)],
    ) -> Result<(Vec<FuncInfo>, Vec<LineInfo>), LoadError> {
        let (Some(ext), Some(btf)) = (self.btf_ext, self.btf) else {
            return Ok((Vec::new(), Vec::new()));
        };
        let mut funcs = Vec::new();
        let mut lines = Vec::new();
        for &(fi, base) in order {
            let f = &self.funcs[fi];
            let Some(sec) = self.elf.section(f.sec) else {
                continue;
            };
            // Maps an instruction byte offset in the section to its index in the program.
            let place = |insn_off: u32| -> Option<u32> {
                let insn = u64::from(insn_off / 8);
                (insn >= f.start && insn < f.start + f.len)
                    .then(|| u32::try_from(base + insn - f.start).ok())
                    .flatten()
            };
            for t in &ext.func_info {
                if btf.str_at(t.sec_name_off)? != sec.name {
                    continue;
                }
                for r in &t.records {
                    if let Some(insn) = place(r.insn_off) {
                        funcs.push(FuncInfo {
                            insn,
                            type_id: r.type_id,
                            name: btf.name_of(r.type_id)?.to_string(),
                        });
                    }
                }
            }
            for t in &ext.line_info {
                if btf.str_at(t.sec_name_off)? != sec.name {
                    continue;
                }
                for r in &t.records {
                    if let Some(insn) = place(r.insn_off) {
                        lines.push(LineInfo {
                            insn,
                            file: btf.str_at(r.file_name_off)?.to_string(),
                            line: r.line_col >> 10,
                            col: r.line_col & 0x3ff,
                            source: btf.str_at(r.line_off)?.to_string(),
                            file_name_off: r.file_name_off,
                            line_off: r.line_off,
                        });
                    }
                }
            }
        }
        funcs.sort_by_key(|f| f.insn);
        lines.sort_by_key(|l| l.insn);
        Ok((funcs, lines))
    }
}

/// The instructions of function `f`, checked against its section.
fn func_insns(sec: &Sec, f: &Func) -> Result<Vec<Insn>, LoadError> {
    let range = usize::try_from(f.start * 8)
        .ok()
        .zip(usize::try_from(f.len * 8).ok())
        .and_then(|(s, l)| sec.data.get(s..s.checked_add(l)?));
    let bytes = range.ok_or_else(|| LoadError::Section {
        section: sec.name.clone(),
        reason: format!(
            "function {} (insns {}..{}) lies outside the section",
            f.name,
            f.start,
            f.start + f.len
        ),
    })?;
    Ok(bytes
        .chunks_exact(8)
        .map(|c| Insn::from_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect())
}
