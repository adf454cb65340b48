//! Shared helpers of the loader tests: where the example objects are, and reading them.
//!
//! The committed objects are in `examples/` at the repository root (override with
//! `BPFKIT_EXAMPLES_DIR`). CI rebuilds them from source into `BPFKIT_REBUILT_EXAMPLES_DIR`; when
//! that is set the tests run on both sets, so committed objects cannot drift from their sources.
#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod kernel;

use std::path::PathBuf;

/// Examples that show what the loader refuses: a CO-RE relocation and a kfunc call (both load
/// into the kernel with libbpf, which resolves them against the kernel's BTF).
pub const UNSUPPORTED: &[&str] = &["core_reloc", "kfunc_call"];

/// The examples this repository's loader engineer maintains (the flow dissector is the bench's).
pub const EXAMPLES: &[&str] = &[
    "cgroup_firewall",
    "cpuv4",
    "drop_monitor",
    "legacy_maps",
    "map_in_map",
    "perf_output",
    "ringbuf",
    "sockex1",
    "sockex3",
    "tc_rewrite",
    "tracex2",
    "xdp_globals",
];

/// The example directories to test: committed, and rebuilt when CI provides them.
pub fn example_dirs() -> Vec<PathBuf> {
    let committed = std::env::var_os("BPFKIT_EXAMPLES_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples"),
        PathBuf::from,
    );
    let mut dirs = vec![committed];
    if let Some(rebuilt) = std::env::var_os("BPFKIT_REBUILT_EXAMPLES_DIR") {
        dirs.push(PathBuf::from(rebuilt));
    }
    dirs
}

/// The committed examples directory (for C sources, which are not copied when rebuilding).
pub fn source_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// Every (path, bytes) of example `name` in every example directory.
pub fn objects(name: &str) -> Vec<(PathBuf, Vec<u8>)> {
    example_dirs()
        .into_iter()
        .map(|d| d.join(name).join(format!("{name}.o")))
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, bytes)
        })
        .collect()
}

/// Parses example `name` from each directory.
pub fn parsed(name: &str) -> Vec<(PathBuf, bpfkit::loader::Object)> {
    objects(name)
        .into_iter()
        .map(|(p, b)| {
            let o = bpfkit::loader::Object::parse(&b)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, o)
        })
        .collect()
}

/// Runs an LLVM tool, or returns `None` (after printing why) when it is not installed.
pub fn llvm(tool: &str, args: &[&str], obj: &std::path::Path) -> Option<String> {
    match std::process::Command::new(tool)
        .args(args)
        .arg(obj)
        .output()
    {
        Ok(o) if o.status.success() => Some(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => panic!(
            "{tool} failed on {}: {}",
            obj.display(),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => {
            println!("skipped: {tool} not available ({e})");
            None
        }
    }
}
