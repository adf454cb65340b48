//! The `bpfkit` command-line tool: assemble, disassemble, verify and run eBPF programs.
//!
//! Each subcommand lives in its own module under `cmd/` with its `clap` arguments and a `run`
//! function. Errors go to stderr with a non-zero exit status; nothing here panics on input.
#![forbid(unsafe_code)]

mod cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// bpfkit: the Linux eBPF subsystem in user space.
#[derive(Parser)]
#[command(name = "bpfkit", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Assemble text into raw instructions.
    Asm(cmd::asm::Args),
    /// Disassemble raw instructions into text.
    Disasm(cmd::disasm::Args),
    /// Run a raw program on memory and print r0, or an ELF object's packet programs on a capture.
    Run(cmd::run::Args),
    /// Run conformance-suite files (`*.data`) and report failures.
    Conformance(cmd::conformance::Args),
    /// Verify a program and print the verdict and the verifier log.
    Verify(cmd::verify::Args),
    /// An ELF object's programs: list them, dump their loaded instructions.
    #[command(subcommand)]
    Prog(cmd::prog::ProgCmd),
    /// An ELF object's maps: dump them.
    #[command(subcommand)]
    Map(cmd::map::MapCmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Asm(args) => cmd::asm::run(args),
        Command::Disasm(args) => cmd::disasm::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Conformance(args) => cmd::conformance::run(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::Prog(c) => cmd::prog::run(c),
        Command::Map(c) => cmd::map::run(c),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("bpfkit: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
