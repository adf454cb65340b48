//! `bpfkit conformance` (being built).

use std::process::ExitCode;

/// Arguments of `bpfkit conformance`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `bpfkit conformance`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`bpfkit conformance` is not built yet")
}
