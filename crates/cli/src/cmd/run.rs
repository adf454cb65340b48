//! `bpfkit run` (being built).

use std::process::ExitCode;

/// Arguments of `bpfkit run`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `bpfkit run`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`bpfkit run` is not built yet")
}
