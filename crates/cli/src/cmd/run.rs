//! `bpfkit run`: runs a raw program (8-byte instruction slots) on memory from a file or hex and
//! prints r0.
//!
//! The run follows the conformance suite's conventions: r1 = the memory (also the packet of
//! LD_ABS / LD_IND), r2 = its length, helper 5 = unwind. The program first runs in the checked
//! interpreter; a clean checked run is what allows the fast interpreter to run the same program
//! on the same memory (a raw program has not been through the verifier). `--checked` reports the
//! checked run instead. `--repeat N` runs N more times and prints the mean time per run (each
//! run starts from a fresh copy of the memory, and the copy is part of the time).

use anyhow::{bail, Context};
use bpfkit::conformance::TrialRun;
use bpfkit_isa::insns_from_bytes;
use bpfkit_vm::DEFAULT_BUDGET;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Arguments of `bpfkit run`.
#[derive(clap::Args)]
pub struct Args {
    /// The program: raw instruction slots, 8 bytes each, little endian; or an ELF object
    /// (recognised by its magic number) to run with --pcap.
    program: PathBuf,
    /// A file whose bytes are the memory (r1 = its address, r2 = its length).
    #[arg(long, conflicts_with = "mem_hex")]
    mem: Option<PathBuf>,
    /// The memory as hex bytes, e.g. `"aa bb 11 22"` or `aabb1122`.
    #[arg(long)]
    mem_hex: Option<String>,
    /// Report the checked interpreter's run (bounds-checked memory, instruction budget).
    #[arg(long)]
    checked: bool,
    /// Run N times more and print the mean time per run.
    #[arg(long, value_name = "N")]
    repeat: Option<u64>,
    /// The most instructions a checked run may execute.
    #[arg(long, default_value_t = DEFAULT_BUDGET)]
    budget: u64,
    /// Options for ELF objects (detected by their magic number).
    #[command(flatten)]
    object: super::run_object::ObjectArgs,
}

/// Runs `bpfkit run`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.program)
        .with_context(|| format!("cannot read program {}", args.program.display()))?;
    if bytes.starts_with(b"\x7fELF") {
        if args.mem.is_some() || args.mem_hex.is_some() || args.checked || args.repeat.is_some() {
            bail!("--mem, --mem-hex, --checked and --repeat are for raw programs, not ELF objects");
        }
        return super::run_object::run(&args.program, &args.object);
    }
    if let Some(flag) = args.object.given() {
        bail!(
            "{flag} is for ELF objects; {} is a raw program",
            args.program.display()
        );
    }
    let insns = insns_from_bytes(&bytes).with_context(|| format!("{}", args.program.display()))?;
    let mem = match (&args.mem, &args.mem_hex) {
        (Some(path), _) => Some(
            std::fs::read(path)
                .with_context(|| format!("cannot read memory {}", path.display()))?,
        ),
        (None, Some(hex)) => Some(parse_hex(hex).context("--mem-hex")?),
        (None, None) => None,
    };
    let trial = TrialRun::new(&insns, mem, args.budget).map_err(|e| {
        let what = if args.checked {
            "checked run"
        } else {
            "checked trial run (which fast mode needs)"
        };
        anyhow::anyhow!("{}: {what}: {e}", args.program.display())
    })?;
    let mut scratch = Vec::new();
    let r0 = if args.checked {
        trial.checked_r0()
    } else {
        trial.run_fast(&mut scratch)
    };
    println!("r0 = {r0:#x} ({r0})");
    if let Some(n) = args.repeat {
        if n == 0 {
            bail!("--repeat needs at least 1 run");
        }
        let start = Instant::now();
        for _ in 0..n {
            if args.checked {
                trial.run_checked(&mut scratch, args.budget)?;
            } else {
                std::hint::black_box(trial.run_fast(&mut scratch));
            }
        }
        let mean = start.elapsed().as_secs_f64() / n as f64;
        let mode = if args.checked { "checked" } else { "fast" };
        println!("{n} runs ({mode}): mean {:.1} ns per run", mean * 1e9);
    }
    Ok(ExitCode::SUCCESS)
}

/// Hex bytes, with optional spaces, commas or `0x` prefixes between them.
fn parse_hex(text: &str) -> anyhow::Result<Vec<u8>> {
    let mut digits = String::new();
    for tok in text.split(|c: char| c.is_whitespace() || c == ',') {
        let tok = tok
            .strip_prefix("0x")
            .or_else(|| tok.strip_prefix("0X"))
            .unwrap_or(tok);
        digits.push_str(tok);
    }
    if let Some((pos, c)) = digits.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        bail!("`{c}` (hex digit {pos}) is not a hex digit");
    }
    if !digits.len().is_multiple_of(2) {
        bail!(
            "odd number of hex digits ({}): the last byte is incomplete",
            digits.len()
        );
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&digits[i..i + 2], 16)
                .with_context(|| format!("bad hex byte at digit {i}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::parse_hex;

    #[test]
    fn hex_accepts_spaces_and_prefixes_and_rejects_junk() {
        assert_eq!(
            parse_hex("aa bb 0x11,22").ok(),
            Some(vec![0xaa, 0xbb, 0x11, 0x22])
        );
        assert_eq!(parse_hex("").ok(), Some(vec![]));
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
        assert!(parse_hex("é1").is_err());
    }
}
