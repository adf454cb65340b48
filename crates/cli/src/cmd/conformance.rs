//! `bpfkit conformance DIR...`: runs every `*.data` file under the folders (the eBPF ISA
//! conformance suite's format) in the checked and the fast interpreter.
//!
//! Prints one line per failure (and per unsupported file) with its reason, then
//! `N passed, N failed, N unsupported`; the exit status is 0 only when nothing failed.

use anyhow::Context;
use bpfkit::conformance::{data_files, run_file, Outcome};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `bpfkit conformance`.
#[derive(clap::Args)]
pub struct Args {
    /// Folders (searched recursively for `*.data`) or single test files.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Also print a line for every passing file.
    #[arg(long, short)]
    verbose: bool,
}

/// Runs `bpfkit conformance`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for path in &args.paths {
        if path.is_file() {
            files.push(path.clone());
        } else {
            let found =
                data_files(path).with_context(|| format!("cannot read {}", path.display()))?;
            if found.is_empty() {
                anyhow::bail!("no *.data files under {}", path.display());
            }
            files.extend(found);
        }
    }
    let (mut passed, mut failed, mut unsupported) = (0usize, 0usize, 0usize);
    for file in &files {
        let outcome = run_file(file).with_context(|| format!("cannot read {}", file.display()))?;
        match &outcome {
            o if o.is_pass() => {
                passed += 1;
                if args.verbose {
                    println!("ok {}: {o}", file.display());
                }
            }
            Outcome::Unsupported(what) => {
                unsupported += 1;
                println!("UNSUPPORTED {}: {what}", file.display());
            }
            Outcome::Failed(why) => {
                failed += 1;
                println!("FAIL {}: {why}", file.display());
            }
            // Passed and Rejected are passes (handled above).
            Outcome::Passed { .. } | Outcome::Rejected(_) => {}
        }
    }
    println!("{passed} passed, {failed} failed, {unsupported} unsupported");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
