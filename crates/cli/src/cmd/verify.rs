//! `bpfkit verify`: runs the verifier on a program and prints the verdict and the log.
//!
//! Exit status: 0 accepted, 1 rejected, 2 unusable input (unreadable or undecodable file, bad
//! arguments). Until the runtime's environment is wired in, the command uses the verifier's
//! built-in [`TestEnv`] (a subset of contexts and helpers); maps come from `--map`.

use anyhow::{bail, Context};
use bpfkit_verifier::env::{MapInfo, MapType, ProgType};
use bpfkit_verifier::testing::TestEnv;
use bpfkit_verifier::{verify, Options};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `bpfkit verify`.
#[derive(clap::Args)]
pub struct Args {
    /// The program: raw 8-byte instructions with `--raw`.
    pub file: PathBuf,
    /// The file holds raw instructions (ELF objects need the loader).
    #[arg(long)]
    pub raw: bool,
    /// Program type: socket_filter, sched_cls, sched_act, xdp, kprobe, tracepoint.
    #[arg(long = "type", default_value = "socket_filter")]
    pub prog_type: String,
    /// Log level: 1 path to the error, 2 every state, 4 statistics (bits combine).
    #[arg(long, default_value_t = 1)]
    pub log_level: u32,
    /// License string (GPL-only helpers need a GPL-compatible one).
    #[arg(long, default_value = "GPL")]
    pub license: String,
    /// A map for raw programs, `TYPE:KEY_SIZE:VALUE_SIZE:MAX_ENTRIES`; the i-th `--map` is
    /// handle i in `LD_IMM64` map references.
    #[arg(long = "map")]
    pub maps: Vec<String>,
}

/// Parses `TYPE:KEY:VALUE:MAX`.
fn parse_map(spec: &str) -> anyhow::Result<MapInfo> {
    let parts: Vec<&str> = spec.split(':').collect();
    let [ty, k, v, m] = parts.as_slice() else {
        bail!("--map {spec:?}: expected TYPE:KEY_SIZE:VALUE_SIZE:MAX_ENTRIES");
    };
    let map_type = MapType::from_name(ty)
        .with_context(|| format!("--map {spec:?}: unknown map type {ty:?}"))?;
    let num = |s: &str, what: &str| -> anyhow::Result<u32> {
        s.parse()
            .with_context(|| format!("--map {spec:?}: bad {what} {s:?}"))
    };
    Ok(MapInfo {
        map_type,
        key_size: num(k, "key size")?,
        value_size: num(v, "value size")?,
        max_entries: num(m, "max entries")?,
    })
}

/// Runs `bpfkit verify`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let prog_type = ProgType::from_name(&args.prog_type)
        .with_context(|| format!("unknown program type {:?}", args.prog_type))?;
    let maps = args
        .maps
        .iter()
        .map(|m| parse_map(m))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if !args.raw {
        bail!(
            "{}: ELF input needs the loader; pass --raw for raw instructions",
            args.file.display()
        );
    }
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let insns =
        bpfkit_isa::insns_from_bytes(&bytes).with_context(|| args.file.display().to_string())?;
    let env = TestEnv::with_maps(maps);
    let opts = Options {
        prog_type,
        log_level: args.log_level,
        license: args.license,
    };
    match verify(&insns, &env, &opts) {
        Ok(v) => {
            println!("accepted");
            print!("{}", v.log());
            Ok(ExitCode::SUCCESS)
        }
        Err(r) => {
            println!(
                "rejected: {} at insn {}: {}",
                r.errno,
                r.insn_idx,
                r.message.lines().next().unwrap_or("")
            );
            print!("{}", r.log);
            Ok(ExitCode::from(1))
        }
    }
}
