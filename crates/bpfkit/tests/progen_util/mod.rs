//! Shared pieces of the random-program differential tests (`verifier_differential.rs`,
//! `verifier_unprivileged_random.rs`): campaign settings from the environment, errno names and
//! first error lines as the table spells them, and map references resolved to descriptors.
#![allow(dead_code)] // Each test binary uses a different part of this shared module.

use bpfkit_isa::Insn;
use bpfkit_kernel::table::error_lines;
use bpfkit_kernel::Errno;

/// A number from the environment (decimal, or hex with `0x`), or `default`.
pub fn env_num(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| {
            v.strip_prefix("0x")
                .map_or_else(|| v.parse().ok(), |h| u64::from_str_radix(h, 16).ok())
        })
        .unwrap_or(default)
}

/// An errno's name as the table spells it.
pub fn errno_name(e: i32) -> String {
    match Errno(e).name() {
        "E?" => format!("E{e}"),
        n => n.to_string(),
    }
}

/// The first error line of a log (see `bpfkit_kernel::table::error_lines`).
pub fn first_line(log: &str) -> String {
    error_lines(log)
        .first()
        .map(|s| (*s).to_string())
        .unwrap_or_default()
}

/// LD_IMM64 src 1 with imm = map index → the map's descriptor; an index past `fds` becomes
/// descriptor -1 (a bad fd in both engines).
pub fn resolve_maps(insns: &mut [Insn], fds: &[i32]) {
    for insn in insns.iter_mut() {
        if insn.code == 0x18 && insn.src == 1 {
            insn.imm = usize::try_from(insn.imm)
                .ok()
                .and_then(|k| fds.get(k).copied())
                .unwrap_or(-1);
        }
    }
}
