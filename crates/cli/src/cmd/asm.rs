//! `bpfkit asm` (being built).

use std::process::ExitCode;

/// Arguments of `bpfkit asm`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `bpfkit asm`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`bpfkit asm` is not built yet")
}
