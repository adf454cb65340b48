//! bpfkit-kernel: the running Linux kernel as a test oracle, through the `bpf()` system call.
//!
//! A small, safe wrapper over the commands bpfkit's differential tests need: create maps and
//! use their elements, load programs with the verifier log, and run them with
//! `BPF_PROG_TEST_RUN`. Descriptors are [`std::os::fd::OwnedFd`]s closed on drop. On targets other
//! than Linux the crate compiles and every command fails with `ENOSYS`, so [`available`] reports
//! why tests must skip.
//!
//! ```no_run
//! use bpfkit_kernel::{available, names, prog_load, prog_test_run};
//! // r0 = 42; exit
//! let prog: [u8; 16] = [0xb7, 0, 0, 0, 42, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
//! if let Err(why) = available() {
//!     println!("skipped: {why}");
//!     return;
//! }
//! let loaded = prog_load(names::PROG_SOCKET_FILTER, &prog[..], "GPL", 1, 1 << 16);
//! let prog = loaded.result.expect("accepted");
//! assert_eq!(prog_test_run(&prog, &[0; 64], None, 1).unwrap().retval, 42);
//! ```
#![deny(unsafe_op_in_unsafe_fn)]

mod attr;
mod errno;
mod map;
pub mod names;
mod perf;
mod prog;
mod stats;
mod sys;
pub mod table;
mod unpriv;

pub use errno::Errno;
pub use map::{
    map_create, map_create_outer, map_delete, map_get_next_key, map_lookup, map_lookup_and_delete,
    map_update, possible_cpus, Map, BPF_ANY, BPF_EXIST, BPF_NOEXIST,
};
pub use perf::{perf_event_open_bpf_output, PerfEvent};
pub use prog::{
    prog_load, prog_test_run, Loaded, Prog, ProgLoad, ProgramBytes, TestRun, BPF_F_ANY_ALIGNMENT,
    BPF_F_STRICT_ALIGNMENT, BPF_F_TEST_STATE_FREQ, DEFAULT_LOG_SIZE,
};
pub use stats::VerifierStats;
pub use unpriv::{
    prog_load_unprivileged, UnprivilegedBpf, DROPPED_CAPS, UNPRIVILEGED_BPF_DISABLED,
};

use bpfkit_isa::Insn;

/// Set this environment variable (to anything) to make [`available`] report the kernel
/// unavailable, to exercise the skip paths of differential tests.
pub const DISABLE_ENV: &str = "BPFKIT_NO_KERNEL";

/// Whether the `bpf()` system call can be used here: `Ok(())`, or the reason tests should print
/// when they skip (not Linux, `EPERM` without privileges, `ENOSYS`, [`DISABLE_ENV`] set).
///
/// It probes by creating (and closing) a one-element array map and loading `r0 = 0; exit`.
pub fn available() -> Result<(), String> {
    if std::env::var_os(DISABLE_ENV).is_some() {
        return Err(format!("the kernel oracle is disabled by ${DISABLE_ENV}"));
    }
    if !cfg!(target_os = "linux") {
        return Err("the bpf() system call exists only on Linux".to_string());
    }
    let why = |what: &str, e: Errno| match e {
        Errno::EPERM => format!(
            "bpf() {what} is not permitted (EPERM): run as root or with CAP_BPF (and \
             CAP_PERFMON), or check kernel.unprivileged_bpf_disabled"
        ),
        Errno::ENOSYS => format!("bpf() is not implemented by this kernel (ENOSYS) for {what}"),
        e => format!("bpf() {what} failed: {e}"),
    };
    map_create(names::MAP_ARRAY, 4, 4, 1, 0).map_err(|e| why("BPF_MAP_CREATE", e))?;
    let ret0: [Insn; 2] = [Insn::new(0xb7, 0, 0, 0, 0), Insn::new(0x95, 0, 0, 0, 0)];
    prog_load(names::PROG_SOCKET_FILTER, &ret0[..], "GPL", 0, 0)
        .result
        .map_err(|e| why("BPF_PROG_LOAD", e))?;
    Ok(())
}

/// An LD_IMM64 that [`resolve_map_indices`] could not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapIndexError {
    /// Instruction index of the LD_IMM64.
    pub insn: usize,
    /// The map index in its immediate.
    pub index: i32,
    /// How many maps were given.
    pub maps: usize,
}

impl std::fmt::Display for MapIndexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "insn {}: LD_IMM64 refers to map index {} but {} map(s) were declared",
            self.insn, self.index, self.maps
        )
    }
}

impl std::error::Error for MapIndexError {}

/// Rewrites every LD_IMM64 with src=1 (`BPF_PSEUDO_MAP_FD`) or src=2 (`BPF_PSEUDO_MAP_VALUE`)
/// whose immediate is an index into `map_fds` to carry that descriptor instead (the convention
/// of `bpfkit verify --map`: imm = i names the i-th declared map).
pub fn resolve_map_indices(insns: &mut [Insn], map_fds: &[i32]) -> Result<(), MapIndexError> {
    let mut i = 0;
    while i < insns.len() {
        let insn = insns[i];
        if insn.is_ld_imm64() {
            if insn.src == 1 || insn.src == 2 {
                let fd = usize::try_from(insn.imm)
                    .ok()
                    .and_then(|k| map_fds.get(k))
                    .ok_or(MapIndexError {
                        insn: i,
                        index: insn.imm,
                        maps: map_fds.len(),
                    })?;
                insns[i].imm = *fd;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
