//! `bpfkit disasm` (being built).

use std::process::ExitCode;

/// Arguments of `bpfkit disasm`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `bpfkit disasm`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`bpfkit disasm` is not built yet")
}
