//! `bpfkit asm`: assembles text into raw instruction slots.
//!
//! Two syntaxes: the kernel/LLVM one (`r0 = *(u8 *)(r1 + 12)`, the default: what the verifier
//! log and `llvm-objdump -d` print, with helper names from bpfkit's table) and the conformance
//! suite's (`ldxb %r0, [%r1+12]`). With `-o` the slots are written as raw bytes (8 per slot,
//! little endian: what `bpfkit run` and `bpfkit disasm` read); without it they are printed one
//! a line as the little-endian 64-bit word of the conformance suite's `-- raw` section.

use anyhow::Context;
use bpfkit_isa::asm::{conformance, kernel};
use bpfkit_isa::insns_to_bytes;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

/// The assembler syntaxes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// The kernel verifier log's and llvm-objdump's: `r0 = *(u8 *)(r1 + 12)`.
    Kernel,
    /// The eBPF conformance suite's: `ldxb %r0, [%r1+12]`.
    Conformance,
}

/// Arguments of `bpfkit asm`.
#[derive(clap::Args)]
pub struct Args {
    /// The text to assemble (`-` for standard input).
    input: PathBuf,
    /// Where to write the raw slots; without it they are printed as hex words.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// The syntax of the input.
    #[arg(long, value_enum, default_value_t = Syntax::Kernel)]
    syntax: Syntax,
}

/// Reads a file, or standard input for `-`.
pub(crate) fn read_input(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read standard input")?;
        Ok(buf)
    } else {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    }
}

/// Runs `bpfkit asm`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let bytes = read_input(&args.input)?;
    let name = args.input.display();
    let text = String::from_utf8(bytes).with_context(|| format!("{name}: not UTF-8 text"))?;
    let helper_id = |n: &str| bpfkit::helpers::helper_id(n);
    let result = match args.syntax {
        Syntax::Kernel => kernel::assemble_with(
            &text,
            &kernel::Options {
                helper_id: Some(&helper_id),
            },
        ),
        Syntax::Conformance => conformance::assemble(&text),
    };
    let insns = result.map_err(|e| {
        if e.line == 0 {
            anyhow::anyhow!("{name}: {}", e.message)
        } else {
            anyhow::anyhow!("{name}:{}: {}", e.line, e.message)
        }
    })?;
    match &args.output {
        Some(out) => std::fs::write(out, insns_to_bytes(&insns))
            .with_context(|| format!("cannot write {}", out.display()))?,
        None => {
            for insn in &insns {
                println!("{:#018x}", insn.to_u64());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
