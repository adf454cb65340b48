//! `bpfkit verify` (being built).

use std::process::ExitCode;

/// Arguments of `bpfkit verify`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `bpfkit verify`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`bpfkit verify` is not built yet")
}
