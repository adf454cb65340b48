//! Control-flow checks before path exploration (`add_subprog_and_kfunc`, `check_subprogs`,
//! the opcode pass of `resolve_pseudo_ldimm64`, `check_cfg`): subprogram boundaries, jumps in
//! range and not into the second slot of an LD_IMM64, no unreachable instruction, no falling
//! off a subprogram's end. Back edges are allowed (the privileged rule): loops are proven to
//! terminate by exploration.

use crate::reject::{Errno, Reject};
use bpfkit_isa::{opcode as c, Insn};

/// What the control-flow pass learned about the program.
#[derive(Debug, Clone)]
pub struct Cfg {
    /// First instruction of each subprogram, ascending; `subprogs[0] == 0`.
    pub subprogs: Vec<usize>,
    /// Instructions where exploration checks for an equivalent visited state
    /// (`mark_prune_point`): jump targets, conditional jumps, calls.
    pub prune_point: Vec<bool>,
}

impl Cfg {
    /// The index of the subprogram starting at `insn`, if one does.
    #[must_use]
    pub fn subprog_at(&self, insn: usize) -> Option<usize> {
        self.subprogs.binary_search(&insn).ok()
    }

    /// The subprogram containing `insn`.
    #[must_use]
    pub fn subprog_of(&self, insn: usize) -> usize {
        match self.subprogs.binary_search(&insn) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
    }
}

/// Opcode bytes the kernel knows (`bpf_opcode_in_insntable`), observed on Linux 6.18.
const INSN_TABLE: &[u8] = &[
    0x01, 0x04, 0x05, 0x06, 0x07, 0x09, 0x0c, 0x0f, 0x11, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1c,
    0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2c, 0x2d, 0x2e, 0x2f, 0x30,
    0x31, 0x34, 0x35, 0x36, 0x37, 0x39, 0x3c, 0x3d, 0x3e, 0x3f, 0x40, 0x41, 0x44, 0x45, 0x46, 0x47,
    0x48, 0x49, 0x4c, 0x4d, 0x4e, 0x4f, 0x50, 0x51, 0x54, 0x55, 0x56, 0x57, 0x59, 0x5c, 0x5d, 0x5e,
    0x5f, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x71,
    0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f, 0x81, 0x84, 0x85,
    0x87, 0x89, 0x91, 0x94, 0x95, 0x97, 0x9c, 0x9f, 0xa1, 0xa4, 0xa5, 0xa6, 0xa7, 0xa9, 0xac, 0xad,
    0xae, 0xaf, 0xb1, 0xb4, 0xb5, 0xb6, 0xb7, 0xb9, 0xbc, 0xbd, 0xbe, 0xbf, 0xc1, 0xc3, 0xc4, 0xc5,
    0xc6, 0xc7, 0xc9, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd1, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd9, 0xdb,
    0xdc, 0xdd, 0xde, 0xe1, 0xe5, 0xe9, 0xf1, 0xf9,
];

/// Whether the kernel's instruction table has opcode `code`.
#[must_use]
pub fn in_insn_table(code: u8) -> bool {
    INSN_TABLE.binary_search(&code).is_ok()
}

fn is_jmp_class(code: u8) -> bool {
    matches!(c::class(code), c::JMP | c::JMP32)
}

fn is_pseudo_call(insn: &Insn) -> bool {
    insn.code == (c::JMP | c::CALL) && insn.src == c::PSEUDO_CALL
}

/// Relative jump distance of a jump instruction (`gotol` keeps it in the immediate).
fn jump_off(insn: &Insn) -> i64 {
    if insn.code == (c::JMP32 | c::JA) {
        i64::from(insn.imm)
    } else {
        i64::from(insn.off)
    }
}

fn einval(idx: usize, msg: String) -> Reject {
    Reject::new(Errno::EINVAL, idx, msg)
}

/// Finds the subprograms and checks jumps stay inside them (`add_subprog_and_kfunc`,
/// `check_subprogs`).
///
/// # Errors
/// The kernel's message: `call to invalid destination`, `jump out of range from insn %d to %d`,
/// `last insn is not an exit or jmp`.
pub fn check_subprogs(insns: &[Insn], btf_func_info: bool) -> Result<Vec<usize>, Reject> {
    let starts = find_subprogs(insns)?;
    check_jumps(insns, &starts, btf_func_info)?;
    Ok(starts)
}

/// The subprogram starts: instruction 0 and every local call's target (`add_subprog`).
///
/// # Errors
/// `call to invalid destination`.
pub fn find_subprogs(insns: &[Insn]) -> Result<Vec<usize>, Reject> {
    let n = insns.len() as i64;
    let mut starts = vec![0usize];
    for (i, insn) in insns.iter().enumerate() {
        let target = (is_pseudo_call(insn) || (insn.is_ld_imm64() && insn.src == c::PSEUDO_FUNC))
            .then(|| i as i64 + i64::from(insn.imm) + 1);
        if let Some(t) = target {
            if t < 0 || t >= n {
                return Err(einval(i, "call to invalid destination".into()));
            }
            starts.push(t as usize);
        }
    }
    starts.sort_unstable();
    starts.dedup();
    Ok(starts)
}

/// Jumps stay inside their subprogram, each subprogram ends with an exit or a jump, and tail
/// calls need BTF when there are subprograms (`check_subprogs`).
///
/// # Errors
/// `jump out of range from insn %d to %d`, `last insn is not an exit or jmp`,
/// `tail_call is not allowed in subprogs without BTF`.
pub fn check_jumps(insns: &[Insn], starts: &[usize], btf_func_info: bool) -> Result<(), Reject> {
    let n = insns.len() as i64;
    let mut cur = 0;
    let mut start = 0i64;
    let mut end = starts.get(1).map_or(n, |s| *s as i64);
    for (i, insn) in insns.iter().enumerate() {
        let code = insn.code;
        if is_jmp_class(code) && c::op(code) != c::EXIT && c::op(code) != c::CALL {
            let off = i as i64 + jump_off(insn) + 1;
            if off < start || off >= end {
                return Err(einval(
                    i,
                    format!("jump out of range from insn {i} to {off}"),
                ));
            }
        }
        if i as i64 == end - 1 {
            if code != (c::JMP | c::EXIT) && code != (c::JMP | c::JA) && code != (c::JMP32 | c::JA)
            {
                return Err(einval(i, "last insn is not an exit or jmp".into()));
            }
            start = end;
            cur += 1;
            end = starts.get(cur + 1).map_or(n, |s| *s as i64);
        }
    }
    if !btf_func_info {
        check_abnormal_return(insns, starts)?;
    }
    Ok(())
}

/// `check_abnormal_return`, run when the program comes without BTF function info: subprograms
/// other than the main one (index 0) may not use LD_ABS / LD_IND or tail calls, since their
/// abnormal exits need BTF to be checked. The main program may use both.
///
/// # Errors
/// `LD_ABS is not allowed in subprogs without BTF`,
/// `tail_call is not allowed in subprogs without BTF`.
fn check_abnormal_return(insns: &[Insn], starts: &[usize]) -> Result<(), Reject> {
    for (k, &start) in starts.iter().enumerate().skip(1) {
        let end = starts.get(k + 1).copied().unwrap_or(insns.len());
        let body = insns.get(start..end).unwrap_or(&[]);
        let is_ld_abs =
            |i: &Insn| c::class(i.code) == c::LD && matches!(c::mode(i.code), c::ABS | c::IND);
        let is_tail_call = |i: &Insn| i.code == (c::JMP | c::CALL) && i.src == 0 && i.imm == 12;
        if let Some(p) = body.iter().position(is_ld_abs) {
            return Err(einval(
                start + p,
                "LD_ABS is not allowed in subprogs without BTF".into(),
            ));
        }
        if let Some(p) = body.iter().position(is_tail_call) {
            return Err(einval(
                start + p,
                "tail_call is not allowed in subprogs without BTF".into(),
            ));
        }
    }
    Ok(())
}

/// The opcode pass of `resolve_pseudo_ldimm64`: every opcode known, every LD_IMM64 whole.
///
/// # Errors
/// `unknown opcode %02x`, `invalid bpf_ld_imm64 insn`.
pub fn check_opcodes(insns: &[Insn]) -> Result<(), Reject> {
    let mut i = 0;
    while i < insns.len() {
        let insn = insns[i];
        if !in_insn_table(insn.code) {
            return Err(einval(i, format!("unknown opcode {:02x}", insn.code)));
        }
        if insn.is_ld_imm64() {
            match insns.get(i + 1) {
                Some(n) if n.code == 0 && n.dst == 0 && n.src == 0 && n.off == 0 => {}
                _ => return Err(einval(i, "invalid bpf_ld_imm64 insn".into())),
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// Helpers that call a callback: `bpf_for_each_map_elem`, `bpf_timer_set_callback`,
/// `bpf_find_vma`, `bpf_loop`, `bpf_user_ringbuf_drain`.
const CALLBACK_HELPERS: [i32; 5] = [164, 170, 180, 181, 209];

/// Depth-first search over the control-flow graph (`check_cfg`).
///
/// # Errors
/// `unreachable insn %d`, `jump into the middle of ldimm64 insn %d`.
pub fn check_cfg(insns: &[Insn], subprogs: Vec<usize>) -> Result<Cfg, Reject> {
    let n = insns.len();
    let mut seen = vec![false; n];
    let mut prune_point = vec![false; n];
    let mut stack = vec![0usize];
    seen[0] = true;
    let push = |w: i64, seen: &mut Vec<bool>, stack: &mut Vec<usize>| {
        if w >= 0 && (w as usize) < n && !seen[w as usize] {
            seen[w as usize] = true;
            stack.push(w as usize);
        }
    };
    while let Some(t) = stack.pop() {
        let insn = insns[t];
        let code = insn.code;
        let ti = t as i64;
        if insn.is_ld_imm64() {
            push(ti + 2, &mut seen, &mut stack);
            continue;
        }
        if !is_jmp_class(code) {
            push(ti + 1, &mut seen, &mut stack);
            continue;
        }
        match c::op(code) {
            c::EXIT => {}
            c::CALL => {
                // `visit_func_call_insn`: the instruction after a call is a prune point; the
                // call itself only for a BPF-to-BPF call and for helpers that take a callback
                // (`is_async_callback_calling_insn`, `is_sync_callback_calling_insn`).
                if insn.src == c::PSEUDO_CALL
                    || (insn.src == 0 && CALLBACK_HELPERS.contains(&insn.imm))
                {
                    prune_point[t] = true;
                }
                if t + 1 < n {
                    prune_point[t + 1] = true;
                }
                push(ti + 1, &mut seen, &mut stack);
                if insn.src == c::PSEUDO_CALL {
                    let w = ti + i64::from(insn.imm) + 1;
                    if w >= 0 && (w as usize) < n {
                        prune_point[w as usize] = true;
                    }
                    push(w, &mut seen, &mut stack);
                }
            }
            c::JA => {
                let w = ti + jump_off(&insn) + 1;
                if w >= 0 && (w as usize) < n {
                    prune_point[w as usize] = true;
                }
                push(w, &mut seen, &mut stack);
            }
            _ => {
                prune_point[t] = true;
                let w = ti + i64::from(insn.off) + 1;
                if w >= 0 && (w as usize) < n {
                    prune_point[w as usize] = true;
                }
                push(ti + 1, &mut seen, &mut stack);
                push(w, &mut seen, &mut stack);
            }
        }
    }
    let mut i = 0;
    while i < n {
        if !seen[i] {
            return Err(einval(i, format!("unreachable insn {i}")));
        }
        if insns[i].is_ld_imm64() {
            if i + 1 < n && seen[i + 1] {
                return Err(einval(
                    i,
                    format!("jump into the middle of ldimm64 insn {i}"),
                ));
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    Ok(Cfg {
        subprogs,
        prune_point,
    })
}
