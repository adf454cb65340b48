//! Instantiating a loaded ELF [`Object`] into a [`Bpf`] object table: libbpf's
//! `bpf_object__load()`.
//!
//! In libbpf's order: every map is created (a map-in-map after a throw-away inner map made from
//! its template, as libbpf does), global data maps get their section's bytes in slot 0, each
//! program's LD_IMM64 map references (`map_refs`, which carry the map's index in the object) get
//! the new descriptors, every program of a type bpfkit supports is loaded with the object's
//! license, and statically initialised prog_array and map-in-map slots are filled. The result,
//! [`Instance`], names maps and programs by their C names.
//!
//! A verifier rejection keeps the kernel-style log; as libbpf does, a failed load without a
//! requested log is retried at log level 1 so that the error always comes with one. When the
//! object has line info, the log gets `; <source line> @ <file>:<line>` before the first
//! instruction of each new source line, as the kernel's `verbose_linfo()` prints when it is
//! given `line_info`.
//!
//! Known difference: bpfkit has no `BPF_MAP_FREEZE` yet, so a `.rodata` map is read-only for
//! programs (`BPF_F_RDONLY_PROG`, set by the loader) but not frozen for user space;
//! [`Instance::frozen`] tells which maps the kernel would have frozen.

use crate::loader::{LineInfo, Object, Program, SlotTarget};
use crate::prog::load::{ProgLoadAttr, ProgLoadOpts};
use crate::{Bpf, Errno, Fd};
use bpfkit_isa::Insn;
use bpfkit_verifier::env::ProgType;

/// Why an object could not be instantiated.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InstantiateError {
    /// `BPF_MAP_CREATE` refused a map definition.
    #[error("map `{map}`: create failed: {errno}")]
    MapCreate {
        /// The map's name.
        map: String,
        /// The runtime's errno.
        errno: Errno,
    },
    /// Writing a global data map's initial value or a static slot failed.
    #[error("map `{map}`: initialising {what} failed: {errno}")]
    MapInit {
        /// The map's name.
        map: String,
        /// What was being written (`"the initial value"`, `"slot 2"`).
        what: String,
        /// The runtime's errno.
        errno: Errno,
    },
    /// A program's map reference points past the object's maps.
    #[error("program `{prog}`: instruction {insn} refers to map #{index}, which does not exist")]
    BadMapRef {
        /// The program's name.
        prog: String,
        /// Instruction index of the LD_IMM64.
        insn: usize,
        /// The map index it carries.
        index: usize,
    },
    /// The verifier (or the load) refused a program; `log` is the verifier's log with source
    /// lines interleaved.
    #[error("program `{prog}` (section {section}): load failed: {errno}\n{log}")]
    ProgLoad {
        /// The program's name.
        prog: String,
        /// Its ELF section.
        section: String,
        /// The errno `BPF_PROG_LOAD` returned.
        errno: Errno,
        /// The verifier log.
        log: String,
    },
    /// A static prog_array slot names a program bpfkit could not load (unsupported type).
    #[error("map `{map}`: slot {slot} names program `{prog}`, whose type bpfkit cannot load")]
    SlotProgramMissing {
        /// The prog_array's name.
        map: String,
        /// The slot.
        slot: u32,
        /// The program's name.
        prog: String,
    },
}

/// How to instantiate.
#[derive(Debug, Clone, Copy, Default)]
pub struct InstantiateOptions {
    /// Verifier log level for every load (0: none; a failed load is retried at level 1).
    pub log_level: u32,
    /// `prog_flags` for every program load (`BPF_F_STRICT_ALIGNMENT`, ...; see
    /// [`crate::prog::load::ProgLoadOpts`]).
    pub prog_flags: u32,
}

/// A map of an instantiated object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceMap {
    /// The map's name in the object (`proto_bytes`, `.rodata`).
    pub name: String,
    /// Its descriptor.
    pub fd: Fd,
    /// Index in [`Object::maps`].
    pub index: usize,
}

/// A program of an instantiated object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceProg {
    /// The program's function name.
    pub name: String,
    /// Its ELF section.
    pub section: String,
    /// The program type it was loaded as.
    pub prog_type: ProgType,
    /// Its descriptor.
    pub fd: Fd,
    /// The verifier log (empty at log level 0), with source lines interleaved.
    pub log: String,
    /// The instructions as loaded: map references hold the map descriptors.
    pub insns: Vec<Insn>,
    /// Index in [`Object::programs`].
    pub index: usize,
}

/// An object's maps and programs in a [`Bpf`] table, by name.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Maps in the object's order.
    pub maps: Vec<InstanceMap>,
    /// Loaded programs in the object's order.
    pub progs: Vec<InstanceProg>,
    /// Programs not loaded because bpfkit does not support their type: (name, section).
    pub skipped: Vec<(String, String)>,
    frozen: Vec<String>,
}

impl Instance {
    /// The descriptor of the map named `name`.
    #[must_use]
    pub fn map(&self, name: &str) -> Option<Fd> {
        self.maps.iter().find(|m| m.name == name).map(|m| m.fd)
    }

    /// The descriptor of the program named `name`.
    #[must_use]
    pub fn prog(&self, name: &str) -> Option<Fd> {
        self.progs.iter().find(|p| p.name == name).map(|p| p.fd)
    }

    /// The loaded program named `name`.
    #[must_use]
    pub fn program(&self, name: &str) -> Option<&InstanceProg> {
        self.progs.iter().find(|p| p.name == name)
    }

    /// Whether the kernel would have frozen map `name` (`.rodata*`): see the module docs.
    #[must_use]
    pub fn frozen(&self, name: &str) -> bool {
        self.frozen.iter().any(|n| n == name)
    }

    /// Closes every descriptor of the instance (maps stay alive while programs use them).
    pub fn close(self, bpf: &Bpf) {
        for p in &self.progs {
            let _ = bpf.close(p.fd);
        }
        for m in &self.maps {
            let _ = bpf.close(m.fd);
        }
    }
}

/// The biggest log bpfkit asks for (the kernel's `UINT_MAX >> 2` is more than anyone reads).
const LOG_SIZE: u32 = 64 << 20;

/// Creates `obj`'s maps and loads its programs into `bpf` (`bpf_object__load()`).
///
/// # Errors
/// The first map or program that fails, with the runtime's errno and, for a program, the
/// verifier log with source lines. Descriptors created before the failure are closed.
pub fn instantiate(
    bpf: &Bpf,
    obj: &Object,
    opts: &InstantiateOptions,
) -> Result<Instance, InstantiateError> {
    let mut inst = Instance {
        maps: Vec::new(),
        progs: Vec::new(),
        skipped: Vec::new(),
        frozen: Vec::new(),
    };
    match fill(bpf, obj, opts, &mut inst) {
        Ok(()) => Ok(inst),
        Err(e) => {
            inst.close(bpf);
            Err(e)
        }
    }
}

fn fill(
    bpf: &Bpf,
    obj: &Object,
    opts: &InstantiateOptions,
    inst: &mut Instance,
) -> Result<(), InstantiateError> {
    for (index, def) in obj.maps.iter().enumerate() {
        let create_err = |errno| InstantiateError::MapCreate {
            map: def.name.clone(),
            errno,
        };
        let fd = match &def.inner {
            Some(inner) => {
                let tmpl = bpf.map_create(&inner.map_attr(None)).map_err(create_err)?;
                let outer = bpf.map_create(&def.map_attr(Some(tmpl.0)));
                let _ = bpf.close(tmpl);
                outer.map_err(create_err)?
            }
            None => bpf.map_create(&def.map_attr(None)).map_err(create_err)?,
        };
        inst.maps.push(InstanceMap {
            name: def.name.clone(),
            fd,
            index,
        });
        if let Some(init) = &def.initial_value {
            bpf.map_update_elem(fd, &0u32.to_le_bytes(), init, 0)
                .map_err(|errno| InstantiateError::MapInit {
                    map: def.name.clone(),
                    what: "the initial value".into(),
                    errno,
                })?;
        }
        if def.frozen {
            inst.frozen.push(def.name.clone());
        }
    }
    for (index, p) in obj.programs.iter().enumerate() {
        let Some(prog_type) = p.runtime_type() else {
            inst.skipped.push((p.name.clone(), p.section.clone()));
            continue;
        };
        let insns = patch_map_refs(p, &inst.maps)?;
        let loaded = load_one(bpf, obj, p, prog_type, &insns, *opts)?;
        inst.progs.push(InstanceProg {
            name: p.name.clone(),
            section: p.section.clone(),
            prog_type,
            fd: loaded.0,
            log: loaded.1,
            insns,
            index,
        });
    }
    for (def, m) in obj.maps.iter().zip(&inst.maps) {
        for slot in &def.init_slots {
            let target = match &slot.target {
                SlotTarget::Program(name) => {
                    inst.prog(name)
                        .ok_or_else(|| InstantiateError::SlotProgramMissing {
                            map: def.name.clone(),
                            slot: slot.slot,
                            prog: name.clone(),
                        })?
                }
                SlotTarget::Map(name) => {
                    // The loader checked that the slot names a map of the object.
                    inst.map(name).ok_or_else(|| InstantiateError::MapInit {
                        map: def.name.clone(),
                        what: format!("slot {}", slot.slot),
                        errno: Errno::Enoent(format!("no map named `{name}`").into()),
                    })?
                }
            };
            bpf.map_update_elem(m.fd, &slot.slot.to_le_bytes(), &target.0.to_ne_bytes(), 0)
                .map_err(|errno| InstantiateError::MapInit {
                    map: def.name.clone(),
                    what: format!("slot {}", slot.slot),
                    errno,
                })?;
        }
    }
    Ok(())
}

/// `p`'s instructions with each map reference's index replaced by the map's descriptor.
fn patch_map_refs(p: &Program, maps: &[InstanceMap]) -> Result<Vec<Insn>, InstantiateError> {
    let mut insns = p.insns.clone();
    for &(insn, index) in &p.map_refs {
        let bad = || InstantiateError::BadMapRef {
            prog: p.name.clone(),
            insn,
            index,
        };
        let fd = maps.get(index).ok_or_else(bad)?.fd;
        let slot = insns.get_mut(insn).ok_or_else(bad)?;
        slot.imm = fd.0 as i32;
    }
    Ok(insns)
}

/// Loads one program; on failure without a log, loads again at level 1 for the log.
fn load_one(
    bpf: &Bpf,
    obj: &Object,
    p: &Program,
    prog_type: ProgType,
    insns: &[Insn],
    opts: InstantiateOptions,
) -> Result<(Fd, String), InstantiateError> {
    let log_level = opts.log_level;
    let attr = |log_level| ProgLoadAttr {
        prog_type,
        insns,
        license: &obj.license,
        log_level,
        log_size: if log_level == 0 { 0 } else { LOG_SIZE },
    };
    let fail = |errno, log: &str| InstantiateError::ProgLoad {
        prog: p.name.clone(),
        section: p.section.clone(),
        errno,
        log: with_source_lines(log, &p.line_info),
    };
    // libbpf hands the kernel the program's BTF func_info whenever the object has it.
    let load = ProgLoadOpts {
        btf_func_info: !p.func_info.is_empty(),
        prog_flags: opts.prog_flags,
        // libbpf's section table: `cgroup_skb/egress` loads for BPF_CGROUP_INET_EGRESS.
        expected_attach_type: if p.section == "cgroup_skb/egress" {
            crate::prog::load::CGROUP_INET_EGRESS
        } else {
            0
        },
        ..ProgLoadOpts::default()
    };
    match bpf.prog_load_with(&attr(log_level), &load) {
        Ok(l) => Ok((l.fd, with_source_lines(&l.log, &p.line_info))),
        Err(e) if log_level == 0 => match bpf.prog_load_with(&attr(1), &load) {
            Ok(l) => {
                // Accepted with a log although refused without one: report the first verdict.
                let _ = bpf.close(l.fd);
                Err(fail(e.errno, &e.log))
            }
            Err(e1) => Err(fail(e1.errno, &e1.log)),
        },
        Err(e) => Err(fail(e.errno, &e.log)),
    }
}

/// The verifier log with `; <source> @ <file>:<line>` before the first instruction of each new
/// source line (the kernel's `verbose_linfo()` in `do_check()`: a line info is printed when it
/// differs from the previous one printed and names another line).
#[must_use]
pub fn with_source_lines(log: &str, line_info: &[LineInfo]) -> String {
    if line_info.is_empty() || log.is_empty() {
        return log.to_string();
    }
    let mut out = String::with_capacity(log.len() * 2);
    let mut prev: Option<usize> = None;
    for line in log.split_inclusive('\n') {
        if let Some(idx) = insn_line_index(line) {
            let i = line_info.partition_point(|l| l.insn as usize <= idx);
            if let Some(cur) = i.checked_sub(1) {
                let same =
                    prev.is_some_and(|p| p == cur || line_info[p].same_line(&line_info[cur]));
                if !same {
                    out.push_str("; ");
                    out.push_str(&line_info[cur].log_text());
                    out.push('\n');
                }
                prev = Some(cur);
            }
        }
        out.push_str(line);
    }
    out
}

/// The instruction index of a log line printing an instruction (`"12: (bf) r6 = r1"`).
fn insn_line_index(line: &str) -> Option<usize> {
    let (num, rest) = line.split_once(": (")?;
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) || !rest.contains(')') {
        return None;
    }
    num.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn li(insn: u32, line: u32, src: &str) -> LineInfo {
        LineInfo {
            insn,
            file: "./x/x.c".into(),
            line,
            col: 1,
            source: src.into(),
            file_name_off: 1,
            line_off: line * 10,
        }
    }

    #[test]
    fn source_lines_go_before_the_first_instruction_of_each_line() {
        let log = "0: R1=ctx() R10=fp0\n0: (bf) r6 = r1\n1: (b7) r0 = 0\n2: (95) exit\n";
        let info = [
            li(0, 5, "  int a = 1;"),
            li(1, 5, "int a = 1;"),
            li(2, 6, "return 0;"),
        ];
        let got = with_source_lines(log, &info);
        assert_eq!(
            got,
            "0: R1=ctx() R10=fp0\n; int a = 1; @ x.c:5\n0: (bf) r6 = r1\n1: (b7) r0 = 0\n\
             ; return 0; @ x.c:6\n2: (95) exit\n"
        );
    }

    #[test]
    fn logs_without_line_info_are_unchanged() {
        assert_eq!(with_source_lines("0: (95) exit\n", &[]), "0: (95) exit\n");
    }
}
