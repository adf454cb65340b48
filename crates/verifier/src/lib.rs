//! bpfkit-verifier: the static verifier, giving Linux's verdicts and log for a program.
//!
//! It knows helpers, maps and contexts only through the [`env`] vocabulary that the runtime
//! supplies; it returns a [`Verified`] program that the fast interpreter and the JIT accept.
//!
//! The rules are the kernel's for a privileged load (CAP_BPF + CAP_PERFMON): bounded loops,
//! pointer comparisons, reading uninitialised stack and returning pointers are allowed.
//! Structure: [`cfg`] (control-flow checks) → [`explore`] (worklist, pruning, log) calling
//! the transfer functions in [`rules`] over the abstract [`state`].
#![forbid(unsafe_code)]

pub mod cfg;
pub mod env;
pub mod explore;
pub mod helper_names;
mod insn_text;
pub mod live;
pub mod log;
pub mod num;
pub mod precision;
pub mod print;
pub mod progen;
pub mod prune;
pub mod reject;
pub mod rules;
pub mod scalar;
pub mod scc;
pub mod stack_live;
pub mod state;
pub mod testing;

use bpfkit_isa::{Insn, Op};
use env::{Env, ProgType};
pub use explore::Stats;
pub use reject::{Errno, Reject};
pub use rules::unpriv::Privilege;
use std::fmt;
use std::time::Instant;

/// A program the verifier accepted: the only input the fast interpreter and the JIT take.
///
/// It can be built only by the verifier, so holding one is proof that the checks ran.
#[derive(Clone, Debug)]
pub struct Verified {
    insns: Vec<Insn>,
    log: String,
    stats: Stats,
    stack_depth: Vec<usize>,
    ctx_access: Vec<bool>,
    probe_load: Vec<bool>,
    seen: Vec<bool>,
}

impl Verified {
    /// The verified instruction slots.
    #[must_use]
    pub fn insns(&self) -> &[Insn] {
        &self.insns
    }

    /// The verifier log (at log level 0, empty).
    #[must_use]
    pub fn log(&self) -> &str {
        &self.log
    }

    /// Exploration counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Whether instruction `idx` is a load or store through the context pointer (on every path
    /// that reaches it: the verifier rejects mixed uses). The runtime rewrites these accesses
    /// onto its own context layout, as the kernel's `convert_ctx_accesses` does.
    #[must_use]
    pub fn is_ctx_access(&self, idx: usize) -> bool {
        self.ctx_access.get(idx).copied().unwrap_or(false)
    }

    /// Whether instruction `idx` is a load through a BTF pointer read from a map's struct (a
    /// probe read in Linux: `BPF_PROBE_MEM`, a fault gives 0). The runtime's map images hold
    /// NULL in every pointer field, so it rewrites these loads to `dst = 0`.
    #[must_use]
    pub fn is_probe_load(&self, idx: usize) -> bool {
        self.probe_load.get(idx).copied().unwrap_or(false)
    }

    /// Whether some path processed instruction `idx` (the kernel's `insn_aux_data[idx].seen`).
    /// The second slot of an LD_IMM64 is never seen itself; its first slot is.
    #[must_use]
    pub fn is_seen(&self, idx: usize) -> bool {
        self.seen.get(idx).copied().unwrap_or(false)
    }

    /// The instructions with dead code (slots no path reached) replaced by `ja -1`, as the
    /// kernel's `sanitize_dead_code` does: the verifier never checked them, so a runtime must
    /// not translate them (a helper the program type lacks, reserved fields, ...).
    #[must_use]
    pub fn insns_without_dead_code(&self) -> Vec<Insn> {
        let trap = Insn::new(0x05, 0, 0, -1, 0);
        let mut out = self.insns.clone();
        let mut i = 0;
        while i < out.len() {
            if self.is_seen(i) {
                i += if out[i].is_ld_imm64() { 2 } else { 1 };
            } else {
                out[i] = trap;
                i += 1;
            }
        }
        out
    }

    /// Stack bytes used by each subprogram.
    #[must_use]
    pub fn stack_depth(&self) -> &[usize] {
        &self.stack_depth
    }
}

/// A rejected program: the errno `BPF_PROG_LOAD` returns, where, why, and the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The errno.
    pub errno: Errno,
    /// The instruction the error is reported at.
    pub insn_idx: usize,
    /// The kernel's message (one or more lines, without trailing newline).
    pub message: String,
    /// The log at the requested level (the message is always in it, even at level 0).
    pub log: String,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rejected at insn {} ({}): {}",
            self.insn_idx, self.errno, self.message
        )
    }
}

impl std::error::Error for Rejected {}

/// How to verify.
#[derive(Clone, Debug)]
pub struct Options {
    /// The program type.
    pub prog_type: ProgType,
    /// Log level bits: 1 path to the error, 2 every state, 4 statistics.
    pub log_level: u32,
    /// The license string; GPL-only helpers need a GPL-compatible one.
    pub license: String,
    /// The program comes with BTF function information (clang objects do): the kernel then
    /// allows tail calls from subprograms.
    pub btf_func_info: bool,
    /// `BPF_F_STRICT_ALIGNMENT`: check the alignment of every access, not only of stack
    /// accesses and atomics (which Linux always checks). Packet accesses are checked as if
    /// the packet started `NET_IP_ALIGN` = 2 bytes into an aligned buffer.
    #[doc(alias = "BPF_F_STRICT_ALIGNMENT")]
    pub strict_alignment: bool,
    /// `BPF_F_ANY_ALIGNMENT`: cancels `strict_alignment` (the stack and atomics stay strict).
    #[doc(alias = "BPF_F_ANY_ALIGNMENT")]
    pub any_alignment: bool,
    /// The load's `expected_attach_type` (the kernel's `enum bpf_attach_type` number, 0 when
    /// unset). Some types check it: a `cgroup_skb` program for `BPF_CGROUP_INET_EGRESS` may
    /// return 0 to 3 instead of 0 or 1 ([`rules::return_code`]).
    pub expected_attach_type: u32,
    /// Who loads the program: privileged (the default, as root) or a user without CAP_BPF,
    /// CAP_PERFMON, CAP_SYS_ADMIN and CAP_NET_ADMIN, under Linux's stricter rules
    /// ([`rules::unpriv`]).
    pub privilege: Privilege,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            prog_type: ProgType::SocketFilter,
            log_level: 0,
            license: "GPL".into(),
            btf_func_info: false,
            strict_alignment: false,
            any_alignment: false,
            expected_attach_type: 0,
            privilege: Privilege::Privileged,
        }
    }
}

/// Whether a license string is GPL-compatible (`license_is_gpl_compatible`).
#[must_use]
pub fn license_is_gpl_compatible(license: &str) -> bool {
    matches!(
        license,
        "GPL"
            | "GPL v2"
            | "GPL and additional rights"
            | "Dual BSD/GPL"
            | "Dual MIT/GPL"
            | "Dual MPL/GPL"
    )
}

fn stats_text(stats: &Stats, depth: &[usize], level: u32, elapsed_us: u128) -> String {
    let mut s = String::new();
    if level & log::STATS != 0 {
        s.push_str(&format!("verification time {elapsed_us} usec\n"));
        let d: Vec<String> = depth.iter().map(ToString::to_string).collect();
        s.push_str(&format!("stack depth {}\n", d.join("+")));
    }
    s.push_str(&format!(
        "processed {} insns (limit {}) max_states_per_insn {} total_states {} peak_states {} mark_read 0\n",
        stats.insns_processed,
        explore::COMPLEXITY_LIMIT,
        stats.max_states_per_insn,
        stats.total_states,
        stats.peak_states
    ));
    s
}

/// The instruction as the kernel's printer would show it despite a reserved field being set:
/// the fields the printer ignores are cleared and the slot decoded again.
fn lenient_decode(insns: &[Insn], i: usize) -> Option<Op> {
    use bpfkit_isa::opcode as c;
    let mut copy = insns.to_vec();
    let insn = &mut copy[i];
    match c::class(insn.code) {
        c::ALU | c::ALU64 => {
            if c::source(insn.code) == c::X {
                insn.imm = 0;
            } else {
                insn.src = 0;
            }
            if !matches!(insn.off, 0 | 1 | 8 | 16 | 32) {
                insn.off = 0;
            }
        }
        c::JMP | c::JMP32 => match c::op(insn.code) {
            c::EXIT => *insn = Insn::new(insn.code, 0, 0, 0, 0),
            c::CALL => {
                insn.dst = 0;
                insn.off = 0;
            }
            c::JA => {
                insn.dst = 0;
                insn.src = 0;
            }
            _ => {
                if c::source(insn.code) == c::X {
                    insn.imm = 0;
                } else {
                    insn.src = 0;
                }
            }
        },
        c::LDX => insn.imm = 0,
        c::ST => insn.src = 0,
        c::STX if c::mode(insn.code) == c::MEM => insn.imm = 0,
        _ => {}
    }
    bpfkit_isa::decode(&copy, i).ok()
}

/// `check_max_stack_depth`: along every chain of bpf-to-bpf calls, the frames' stack sizes
/// (each rounded up to 16 bytes, as with the JIT) add up to at most 512 bytes.
fn check_max_stack_depth(insns: &[Insn], cfg: &cfg::Cfg, depth: &[usize]) -> Result<(), Reject> {
    let round = |d: usize| d.div_ceil(16) * 16;
    // Callees of each subprogram.
    let mut callees: Vec<Vec<(usize, usize)>> = vec![Vec::new(); cfg.subprogs.len()];
    for (i, insn) in insns.iter().enumerate() {
        if insn.code == (bpfkit_isa::opcode::JMP | bpfkit_isa::opcode::CALL) && insn.src == 1 {
            let target = (i as i64 + 1 + i64::from(insn.imm)) as usize;
            if let Some(callee) = cfg.subprog_at(target) {
                callees[cfg.subprog_of(i)].push((callee, i));
            }
        }
    }
    // Depth-first over call chains; chains are at most 8 frames deep (the explorer ensures it).
    let mut stack = vec![(
        0usize,
        round(depth.first().copied().unwrap_or(0)),
        1usize,
        0usize,
    )];
    while let Some((sub, total, frames, at)) = stack.pop() {
        if total > 512 {
            return Err(Reject::new(
                Errno::EACCES,
                at,
                format!("combined stack size of {frames} calls is {total}. Too large"),
            ));
        }
        if frames >= state::MAX_FRAMES {
            continue;
        }
        for &(callee, site) in &callees[sub] {
            let d = round(depth.get(callee).copied().unwrap_or(0));
            stack.push((callee, total + d, frames + 1, site));
        }
    }
    Ok(())
}

/// Messages the kernel prints without a trailing newline: the statistics line that follows
/// continues on the same line (`expected prog array map for tail callprocessed 3 insns ...`).
const MESSAGES_WITHOUT_NEWLINE: [&str; 1] = ["expected prog array map for tail call"];

/// Verifies `insns` for `opts.prog_type` in `env`.
///
/// # Errors
/// [`Rejected`] with the kernel's errno, message and log when Linux would reject the program.
pub fn verify(insns: &[Insn], env: &dyn Env, opts: &Options) -> Result<Verified, Rejected> {
    let start = Instant::now();
    let mut log = log::Log::new(opts.log_level);
    let reject = |r: Reject, mut log: log::Log, stats: &Stats, depth: &[usize]| {
        let mut text = r.message.clone();
        if !MESSAGES_WITHOUT_NEWLINE.contains(&r.message.as_str()) {
            text.push('\n');
        }
        log.push(&text);
        if opts.log_level != 0 {
            log.push(&stats_text(
                stats,
                depth,
                opts.log_level,
                start.elapsed().as_micros(),
            ));
        }
        Rejected {
            errno: r.errno,
            insn_idx: r.insn_idx,
            message: r.message,
            log: log.into_text(),
        }
    };
    if insns.is_empty() || insns.len() as u64 > explore::COMPLEXITY_LIMIT {
        return Err(Rejected {
            errno: Errno::E2BIG,
            insn_idx: 0,
            message: format!("program has {} instructions", insns.len()),
            log: String::new(),
        });
    }
    if let Err((errno, message)) =
        rules::unpriv::check_load(opts.privilege, opts.prog_type, insns.len())
    {
        // The syscall refuses before the verifier runs: no log.
        return Err(Rejected {
            errno,
            insn_idx: 0,
            message,
            log: String::new(),
        });
    }
    let none = Stats::default();
    if let Err(r) = rules::unpriv::check_program(opts.privilege, insns) {
        return Err(reject(r, log, &none, &[0]));
    }
    let subprogs = match cfg::find_subprogs(insns) {
        Ok(s) => s,
        Err(r) => return Err(reject(r, log, &none, &[0])),
    };
    // Once the subprograms are known the statistics show a depth for each (`0+0`).
    let zero_depth = vec![0usize; subprogs.len()];
    if log.level2() {
        for (i, s) in subprogs.iter().enumerate() {
            log.push(&format!("func#{i} @{s}\n"));
        }
    }
    if let Err(r) = cfg::check_jumps(insns, &subprogs, opts.btf_func_info) {
        return Err(reject(r, log, &none, &zero_depth));
    }
    if let Err(r) = cfg::check_opcodes(insns) {
        return Err(reject(r, log, &none, &zero_depth));
    }
    // Map references are resolved before the control-flow check (`resolve_pseudo_ldimm64`).
    for (i, insn) in insns.iter().enumerate() {
        if !(insn.is_ld_imm64() && matches!(insn.src, 1 | 2)) {
            continue;
        }
        let Some(map) = env.map(insn.imm) else {
            let r = Reject::new(
                Errno::EBADF,
                i,
                format!("fd {} is not pointing to valid bpf_map", insn.imm),
            );
            return Err(reject(r, log, &none, &zero_depth));
        };
        if insn.src == 2 {
            // Direct value access: single-element arrays only (`array_map_direct_value_addr`).
            let off = insns.get(i + 1).map_or(0, |n| n.imm) as u32;
            let msg = format!(
                "invalid access to map value pointer, value_size={} off={off}",
                map.value_size
            );
            let r = if map.map_type != env::MapType::Array {
                Some(Reject::new(
                    Errno::EINVAL,
                    i,
                    "no direct value access support for this map type",
                ))
            } else if map.max_entries != 1 {
                Some(Reject::new(Errno::ENOTSUPP, i, msg))
            } else if off >= map.value_size {
                Some(Reject::new(Errno::EINVAL, i, msg))
            } else {
                None
            };
            if let Some(r) = r {
                return Err(reject(r, log, &none, &zero_depth));
            }
        }
    }
    if let Err(r) = rules::unpriv::check_back_edges(opts.privilege, insns) {
        return Err(reject(r, log, &none, &zero_depth));
    }
    let cfg = match cfg::check_cfg(insns, subprogs) {
        Ok(c) => c,
        Err(r) => return Err(reject(r, log, &none, &zero_depth)),
    };
    // Decode every reachable instruction start once; errors surface when a path reaches them.
    let mut ops: Vec<Option<Op>> = vec![None; insns.len()];
    let mut decode_errors: Vec<Option<Reject>> = vec![None; insns.len()];
    let mut lenient: Vec<Option<Op>> = vec![None; insns.len()];
    let mut i = 0;
    while i < insns.len() {
        match bpfkit_isa::decode(insns, i) {
            Ok(op) => {
                ops[i] = Some(op);
                i += op.slots();
            }
            Err(e) => {
                lenient[i] = lenient_decode(insns, i);
                decode_errors[i] = Some(Reject::new(Errno::EINVAL, i, e.kind.kernel_message()));
                i += if insns[i].is_ld_imm64() { 2 } else { 1 };
            }
        }
    }
    let cx = rules::Cx {
        env,
        prog_type: opts.prog_type,
        expected_attach_type: opts.expected_attach_type,
        gpl: license_is_gpl_compatible(&opts.license),
        insns,
        cfg: &cfg,
        strict_alignment: opts.strict_alignment && !opts.any_alignment,
        privilege: opts.privilege,
    };
    let mut ex = explore::Explorer::new(cx, &ops, log, decode_errors, lenient);
    if ex.log.level2() {
        ex.print_liveness();
    }
    let result = ex.run();
    let stats = ex.stats;
    let depth = ex.depth.clone();
    let ctx_access: Vec<bool> = ex.base.iter().map(|b| *b == rules::BaseKind::Ctx).collect();
    let probe_load: Vec<bool> = ex
        .base
        .iter()
        .map(|b| *b == rules::BaseKind::Probe)
        .collect();
    let seen: Vec<bool> = ex
        .base
        .iter()
        .map(|b| *b != rules::BaseKind::None)
        .collect();
    match result {
        Ok(()) => {
            let mut log = ex.log;
            if opts.log_level & (log::LEVEL1 | log::LEVEL2) == log::LEVEL1 {
                // A successful level-1 load keeps no path (the kernel rewinds the log).
                log.reset(0);
            }
            if let Err(r) = check_max_stack_depth(insns, &cfg, &depth) {
                return Err(reject(r, log, &stats, &depth));
            }
            if opts.log_level != 0 {
                log.push(&stats_text(
                    &stats,
                    &depth,
                    opts.log_level,
                    start.elapsed().as_micros(),
                ));
            }
            Ok(Verified {
                insns: insns.to_vec(),
                log: log.into_text(),
                stats,
                stack_depth: depth,
                ctx_access,
                probe_load,
                seen,
            })
        }
        Err(r) => Err(reject(r, ex.log, &stats, &depth)),
    }
}
