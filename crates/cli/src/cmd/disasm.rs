//! `bpfkit disasm`: prints instructions as text.
//!
//! The input is raw slots (8 bytes each, little endian), the hex words `bpfkit asm` prints
//! (one `0x...` little-endian 64-bit word a line), or a clang-built ELF object (every program,
//! or the one `--program` names). The kernel syntax prints each instruction exactly as the
//! Linux verifier log does (`0: (b7) r0 = 0`, `5: (85) call bpf_map_lookup_elem#1`), with
//! bpfkit's spelling where the kernel would print an address (`map[fd:0]`; in an ELF object
//! the number is the map's index, and a comment names the map). The output assembles back with
//! `bpfkit asm` in the same syntax.

use super::asm::{read_input, Syntax};
use anyhow::{bail, Context};
use bpfkit_isa::asm::{conformance, kernel};
use bpfkit_isa::disasm::print_insn;
use bpfkit_isa::{decode, insns_from_bytes, Insn, Op};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `bpfkit disasm`.
#[derive(clap::Args)]
pub struct Args {
    /// Raw slots, hex words, or an ELF object (`-` for standard input).
    input: PathBuf,
    /// The syntax to print.
    #[arg(long, value_enum, default_value_t = Syntax::Kernel)]
    syntax: Syntax,
    /// In an ELF object, the program (function name) to print.
    #[arg(long)]
    program: Option<String>,
}

/// Hex words, one a line (`0x5566778800000018`), if the whole input is that.
fn hex_words(bytes: &[u8]) -> Option<Vec<Insn>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let words: Option<Vec<Insn>> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let digits = l.strip_prefix("0x").or_else(|| l.strip_prefix("0X"))?;
            u64::from_str_radix(digits, 16).ok().map(Insn::from_u64)
        })
        .collect();
    words.filter(|w| !w.is_empty())
}

/// Prints one program; `map_names` names LD_IMM64 map references of an ELF object by index.
fn print_program(
    name: &str,
    insns: &[Insn],
    syntax: Syntax,
    map_names: &[String],
) -> anyhow::Result<()> {
    let helper_name = |id: i32| bpfkit::helpers::helper_name(id);
    let opts = kernel::lossless(Some(&helper_name));
    let mut idx = 0;
    while idx < insns.len() {
        let op = decode(insns, idx).with_context(|| name.to_string())?;
        let text = match syntax {
            Syntax::Kernel => format!("{idx}: {}", print_insn(insns, idx, &opts)),
            Syntax::Conformance => conformance::print(&op),
        };
        match op {
            Op::LdImm64 {
                pseudo: 1 | 2, imm, ..
            } if !map_names.is_empty() => {
                let map = usize::try_from(imm).ok().and_then(|i| map_names.get(i));
                let sep = if syntax == Syntax::Kernel { ";" } else { "#" };
                match map {
                    Some(m) => println!("{text}  {sep} map #{imm} \"{m}\""),
                    None => println!("{text}"),
                }
            }
            _ => println!("{text}"),
        }
        idx += op.slots();
    }
    Ok(())
}

/// Prints every executable section of an ELF object as it is in the file (before relocation:
/// map references load 0, calls to other sections are unresolved).
fn raw_sections(bytes: &[u8], name: &str, args: &Args) -> anyhow::Result<ExitCode> {
    use object::{Object as _, ObjectSection as _, SectionFlags};
    let file = object::File::parse(bytes).with_context(|| name.to_string())?;
    let mut printed = 0;
    for section in file.sections() {
        let exec = matches!(section.flags(), SectionFlags::Elf { sh_flags } if sh_flags & 0x4 != 0);
        let sname = section.name().unwrap_or("?");
        if !exec || section.size() == 0 || args.program.as_ref().is_some_and(|p| p != sname) {
            continue;
        }
        let data = section
            .data()
            .with_context(|| format!("{name}: section {sname}"))?;
        let insns = insns_from_bytes(data).with_context(|| format!("{name}: section {sname}"))?;
        if printed > 0 {
            println!();
        }
        println!("{}:  # section {sname}", sname.replace(['/', '-'], "_"));
        print_program(&format!("{name}: {sname}"), &insns, args.syntax, &[])?;
        printed += 1;
    }
    if printed == 0 {
        bail!("{name}: no code sections");
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `bpfkit disasm`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let bytes = read_input(&args.input)?;
    let name = args.input.display().to_string();
    if bytes.starts_with(b"\x7fELF") {
        let object = match bpfkit::loader::Object::parse(&bytes) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("bpfkit: {name}: {e}; printing its code sections unlinked");
                return raw_sections(&bytes, &name, &args);
            }
        };
        let map_names: Vec<String> = object.maps.iter().map(|m| m.name.clone()).collect();
        let mut printed = 0;
        for prog in &object.programs {
            if args.program.as_ref().is_some_and(|p| *p != prog.name) {
                continue;
            }
            if printed > 0 {
                println!();
            }
            println!("{}:  # section {}", prog.name, prog.section);
            print_program(
                &format!("{name}: {}", prog.name),
                &prog.insns,
                args.syntax,
                &map_names,
            )?;
            printed += 1;
        }
        if printed == 0 {
            match &args.program {
                Some(p) => bail!("{name}: no program named {p}"),
                None => bail!("{name}: no programs"),
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.program.is_some() {
        bail!("{name}: --program needs an ELF object");
    }
    let insns = match hex_words(&bytes) {
        Some(words) => words,
        None => insns_from_bytes(&bytes).with_context(|| name.clone())?,
    };
    print_program(&name, &insns, args.syntax, &[])?;
    Ok(ExitCode::SUCCESS)
}
