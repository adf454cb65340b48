//! `bpfkit prog list|dump OBJ`: an object's programs after loading — list them, or print their
//! instructions as loaded (map references hold the map descriptors) in the kernel's syntax with
//! the C source interleaved (`; <line> @ <file>:<n>`, as `bpftool prog dump xlated` does with
//! line info).

use super::map::{emit, instantiate_file};
use bpfkit::loader::Object;
use bpfkit_isa::disasm::{print_insn, PrintOptions};
use bpfkit_isa::Op;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// `bpfkit prog ...`.
#[derive(clap::Subcommand)]
pub enum ProgCmd {
    /// List the programs of an object: name, section, type, size.
    List(ObjArgs),
    /// Print the loaded instructions with the C source interleaved.
    Dump(DumpArgs),
}

/// An object file.
#[derive(clap::Args)]
pub struct ObjArgs {
    /// A clang-built ELF object.
    pub object: PathBuf,
}

/// Arguments of `bpfkit prog dump`.
#[derive(clap::Args)]
pub struct DumpArgs {
    /// A clang-built ELF object.
    pub object: PathBuf,
    /// Only the program with this function name.
    #[arg(long = "prog")]
    pub prog: Option<String>,
}

/// Runs `bpfkit prog ...`.
pub fn run(cmd: ProgCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ProgCmd::List(args) => {
            let (_bpf, inst) = instantiate_file(&args.object)?;
            let mut out = String::new();
            for p in &inst.progs {
                let _ = writeln!(
                    out,
                    "{}: {} name {} section {} insns {}",
                    p.fd,
                    p.prog_type.name(),
                    p.name,
                    p.section,
                    p.insns.len()
                );
            }
            for (name, section) in &inst.skipped {
                let _ = writeln!(
                    out,
                    "-: not loaded (type unsupported) name {name} section {section}"
                );
            }
            emit(&out)?;
            Ok(ExitCode::SUCCESS)
        }
        ProgCmd::Dump(args) => {
            let bytes = std::fs::read(&args.object)?;
            let obj = Object::parse(&bytes)?;
            let (bpf, inst) = instantiate_file(&args.object)?;
            let helper_name = |id: i32| bpfkit::helpers::helper_name(id);
            // Map references as bpftool's `prog dump xlated` prints them: the map's id.
            let map_id = |imm: i32| {
                u32::try_from(imm)
                    .ok()
                    .and_then(|fd| bpf.map_info(bpfkit::Fd(fd)).ok())
                    .map_or(0, |i| i.id)
            };
            let imm64 = |op: &Op| match *op {
                Op::LdImm64 { pseudo: 1, imm, .. } => Some(format!("map[id:{}]", map_id(imm))),
                Op::LdImm64 {
                    pseudo: 2,
                    imm,
                    next_imm,
                    ..
                } => Some(format!("map[id:{}][0]+{next_imm}", map_id(imm))),
                _ => None,
            };
            let opts = PrintOptions {
                helper_name: Some(&helper_name),
                imm64: Some(&imm64),
                ..PrintOptions::default()
            };
            let mut found = false;
            let mut out = String::new();
            for p in &inst.progs {
                if args.prog.as_ref().is_some_and(|n| n != &p.name) {
                    continue;
                }
                found = true;
                let _ = writeln!(out, "{}: {} name {}:", p.fd, p.prog_type.name(), p.name);
                let lines = obj.programs.get(p.index).map(|o| o.line_info.as_slice());
                let mut prev: Option<usize> = None;
                let mut idx = 0;
                while idx < p.insns.len() {
                    if let Some(lines) = lines {
                        let i = lines.partition_point(|l| l.insn as usize <= idx);
                        if let Some(cur) = i.checked_sub(1) {
                            let same =
                                prev.is_some_and(|p| p == cur || lines[p].same_line(&lines[cur]));
                            if !same {
                                let _ = writeln!(out, "; {}", lines[cur].log_text());
                            }
                            prev = Some(cur);
                        }
                    }
                    let _ = writeln!(out, "{idx:4}: {}", print_insn(&p.insns, idx, &opts));
                    idx += if p.insns[idx].code == 0x18 { 2 } else { 1 };
                }
            }
            if let (Some(n), false) = (&args.prog, found) {
                anyhow::bail!("{}: no loaded program `{n}`", args.object.display());
            }
            emit(&out)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
