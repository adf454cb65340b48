//! `bpfkit verify`: runs the verifier on a program and prints the verdict and the log.
//!
//! Input is a clang-built ELF object (every program in it is verified, or the one named by
//! `--program`) or, with `--raw`, a file of raw 8-byte instructions whose map references name
//! the `--map` declarations by index. Exit status: 0 accepted, 1 rejected, 2 unusable input
//! (unreadable or undecodable file, bad arguments). Context access rules and helper
//! prototypes are the runtime's (`bpfkit::progtype::access`, `bpfkit::helpers::registry`);
//! maps are the `--map` declarations or the object's map definitions, by index.

use anyhow::{bail, Context};
use bpfkit::instantiate::with_source_lines;
use bpfkit::loader::Object;
use bpfkit_isa::Insn;
use bpfkit_verifier::env::{AccessKind, CtxField, Env, HelperProto, MapInfo, MapType, ProgType};
use bpfkit_verifier::testing::TestEnv;
use bpfkit_verifier::{verify, Options, Privilege};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `bpfkit verify`.
#[derive(clap::Args)]
pub struct Args {
    /// The program: an ELF object, or raw 8-byte instructions with `--raw`.
    pub file: PathBuf,
    /// The file holds raw instructions.
    #[arg(long)]
    pub raw: bool,
    /// Program type of a raw program: socket_filter, sched_cls, sched_act, xdp, kprobe,
    /// tracepoint, raw_tracepoint, cgroup_skb (ELF programs take theirs from the section name).
    #[arg(long = "type", default_value = "socket_filter")]
    pub prog_type: String,
    /// The load's expected attach type, for types that check it: cgroup_inet_ingress
    /// (default) or cgroup_inet_egress (a cgroup_skb program may then return 0 to 3). ELF
    /// programs in `cgroup_skb/egress` get egress.
    #[arg(long)]
    pub attach_type: Option<String>,
    /// For an ELF object: verify only the program with this function name.
    #[arg(long)]
    pub program: Option<String>,
    /// Log level: 1 path to the error, 2 every state, 4 statistics (bits combine).
    #[arg(long, default_value_t = 1)]
    pub log_level: u32,
    /// License string (GPL-only helpers need a GPL-compatible one); an ELF object's own
    /// `license` section wins unless this is given.
    #[arg(long)]
    pub license: Option<String>,
    /// A map for raw programs, `TYPE:KEY_SIZE:VALUE_SIZE:MAX_ENTRIES`; the i-th `--map` is
    /// handle i in `LD_IMM64` map references.
    #[arg(long = "map")]
    pub maps: Vec<String>,
    /// Load with `BPF_F_STRICT_ALIGNMENT`: every access aligned to its size (packets as if
    /// they started 2 bytes into an aligned buffer), not only stack accesses and atomics.
    #[arg(long)]
    pub strict_alignment: bool,
    /// Load with `BPF_F_ANY_ALIGNMENT`: cancels `--strict-alignment`.
    #[arg(long)]
    pub any_alignment: bool,
    /// Verify as Linux does for a user without CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN and
    /// CAP_NET_ADMIN: no loops, no bpf-to-bpf calls, no pointer leaks or comparisons, no
    /// uninitialised stack reads, Spectre v1 bounds on pointer arithmetic, socket_filter and
    /// cgroup_skb only.
    #[arg(long)]
    pub unprivileged: bool,
}

/// The environment of the command: the runtime's context rules and helpers, declared maps.
struct CliEnv {
    builtin: TestEnv,
    /// Per map handle, the inner-map template of a map of maps.
    inner: Vec<Option<MapInfo>>,
}

impl Env for CliEnv {
    fn ctx_access(
        &self,
        prog_type: ProgType,
        off: i32,
        size: u32,
        kind: AccessKind,
    ) -> Option<CtxField> {
        // The runtime's rules, as `Bpf::prog_load` verifies with.
        bpfkit::prog::env::ctx_field(prog_type, off, size, kind)
    }

    fn ctx_access_unprivileged(
        &self,
        prog_type: ProgType,
        off: i32,
        size: u32,
        kind: AccessKind,
    ) -> Option<CtxField> {
        bpfkit::prog::env::ctx_field_unprivileged(prog_type, off, size, kind)
    }

    fn helper(&self, prog_type: ProgType, id: i32) -> Option<HelperProto> {
        // The runtime's prototype; helpers it does not implement yet keep the verifier's
        // built-in one, so offline verification still gives the kernel's verdict.
        bpfkit::helpers::registry::proto(prog_type, id)
            .or_else(|| self.builtin.helper(prog_type, id))
    }

    fn helper_name(&self, id: i32) -> Option<&'static str> {
        bpfkit::helpers::names::helper_name(id).or_else(|| self.builtin.helper_name(id))
    }

    fn map(&self, handle: i32) -> Option<MapInfo> {
        self.builtin.map(handle)
    }

    fn inner_map(&self, handle: i32) -> Option<MapInfo> {
        usize::try_from(handle)
            .ok()
            .and_then(|h| self.inner.get(h).copied().flatten())
    }
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

/// One program to verify.
struct Job {
    name: String,
    prog_type: ProgType,
    insns: Vec<Insn>,
    license: String,
    maps: Vec<MapInfo>,
    /// Per map, the inner-map template of a map of maps.
    inner_maps: Vec<Option<MapInfo>>,
    btf_func_info: bool,
    /// `expected_attach_type` (kernel number).
    expected_attach_type: u32,
    /// Source positions of the instructions (ELF input compiled with `-g`), for the
    /// `; <source> @ <file>:<line>` lines the kernel prints when given line info.
    line_info: Vec<bpfkit::loader::LineInfo>,
}

/// The expected attach type: `--attach-type` by name, else what libbpf derives from the
/// section name (`cgroup_skb/egress`), else 0.
fn attach_type(args: &Args, section: Option<&str>) -> anyhow::Result<u32> {
    use bpfkit::prog::load::{CGROUP_INET_EGRESS, CGROUP_INET_INGRESS};
    if let Some(name) = &args.attach_type {
        return match name.as_str() {
            "cgroup_inet_ingress" => Ok(CGROUP_INET_INGRESS),
            "cgroup_inet_egress" => Ok(CGROUP_INET_EGRESS),
            _ => bail!("unknown attach type {name:?}: cgroup_inet_ingress or cgroup_inet_egress"),
        };
    }
    Ok(match section {
        Some("cgroup_skb/egress") => CGROUP_INET_EGRESS,
        _ => 0,
    })
}

fn raw_job(args: &Args, bytes: &[u8]) -> anyhow::Result<Job> {
    let prog_type = ProgType::from_name(&args.prog_type)
        .with_context(|| format!("unknown program type {:?}", args.prog_type))?;
    let maps = args
        .maps
        .iter()
        .map(|m| parse_map(m))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let insns =
        bpfkit_isa::insns_from_bytes(bytes).with_context(|| args.file.display().to_string())?;
    let license = args.license.clone().unwrap_or_else(|| "GPL".into());
    Ok(Job {
        name: args.file.display().to_string(),
        prog_type,
        insns,
        license,
        maps,
        btf_func_info: false,
        expected_attach_type: attach_type(args, None)?,
        line_info: Vec::new(),
        inner_maps: Vec::new(),
    })
}

fn elf_jobs(args: &Args, bytes: &[u8]) -> anyhow::Result<Vec<Job>> {
    let obj = Object::parse(bytes).with_context(|| args.file.display().to_string())?;
    let maps = obj
        .maps
        .iter()
        .map(|m| {
            let map_type = MapType::from_kernel_id(m.map_type).with_context(|| {
                format!(
                    "map {}: type {} is not supported by the verifier",
                    m.name, m.map_type
                )
            })?;
            Ok(MapInfo {
                map_type,
                key_size: m.key_size,
                value_size: m.value_size,
                max_entries: m.max_entries,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let inner_maps: Vec<Option<MapInfo>> = obj
        .maps
        .iter()
        .map(|m| {
            let inner = m.inner.as_ref()?;
            Some(MapInfo {
                map_type: MapType::from_kernel_id(inner.map_type)?,
                key_size: inner.key_size,
                value_size: inner.value_size,
                max_entries: inner.max_entries,
            })
        })
        .collect();
    let license = args.license.clone().unwrap_or_else(|| obj.license.clone());
    let mut jobs = Vec::new();
    for p in &obj.programs {
        if args.program.as_ref().is_some_and(|n| *n != p.name) {
            continue;
        }
        let prog_type = ProgType::from_kernel_id(p.prog_type()).with_context(|| {
            format!(
                "program {} (section {}): program type {} is not supported",
                p.name,
                p.section,
                p.prog_type()
            )
        })?;
        jobs.push(Job {
            name: p.name.clone(),
            prog_type,
            insns: p.insns.clone(),
            license: license.clone(),
            maps: maps.clone(),
            inner_maps: inner_maps.clone(),
            btf_func_info: !p.func_info.is_empty(),
            expected_attach_type: attach_type(args, Some(&p.section))?,
            line_info: p.line_info.clone(),
        });
    }
    if jobs.is_empty() {
        bail!("{}: no program to verify", args.file.display());
    }
    Ok(jobs)
}

/// Runs `bpfkit verify`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let jobs = if args.raw {
        vec![raw_job(&args, &bytes)?]
    } else {
        elf_jobs(&args, &bytes)?
    };
    let many = jobs.len() > 1;
    let mut all_ok = true;
    for job in jobs {
        let env = CliEnv {
            builtin: TestEnv::with_maps(job.maps),
            inner: job.inner_maps,
        };
        let opts = Options {
            prog_type: job.prog_type,
            log_level: args.log_level,
            license: job.license,
            btf_func_info: job.btf_func_info,
            strict_alignment: args.strict_alignment,
            any_alignment: args.any_alignment,
            expected_attach_type: job.expected_attach_type,
            privilege: if args.unprivileged {
                Privilege::Unprivileged
            } else {
                Privilege::Privileged
            },
        };
        let prefix = if many {
            format!("{}: ", job.name)
        } else {
            String::new()
        };
        match verify(&job.insns, &env, &opts) {
            Ok(v) => {
                println!("{prefix}accepted");
                print!("{}", with_source_lines(v.log(), &job.line_info));
            }
            Err(r) => {
                all_ok = false;
                let first = r.message.lines().next().unwrap_or("");
                println!(
                    "{prefix}rejected: {} at insn {}: {first}",
                    r.errno, r.insn_idx
                );
                print!("{}", with_source_lines(&r.log, &job.line_info));
            }
        }
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
