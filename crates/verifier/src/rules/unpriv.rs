//! Linux's stricter rules for unprivileged loads: a user without CAP_BPF, CAP_PERFMON,
//! CAP_SYS_ADMIN and CAP_NET_ADMIN (the [`Privilege::Unprivileged`] option).
//!
//! The kernel keys these rules on five flags of `struct bpf_verifier_env`, set in `bpf_check`
//! from the loader's capabilities; [`Privilege`] answers them:
//! - `bpf_capable` (CAP_BPF): bounded loops (a back-edge is `back-edge from insn X to Y`),
//!   bpf-to-bpf calls and kfuncs, more than 4096 instructions, program types other than
//!   socket_filter and cgroup_skb, the helpers `bpf_base_func_proto` gives only to CAP_BPF, and
//!   tracked scalar spills (without it a scalar stored on the stack becomes plain data);
//! - `allow_ptr_leaks` (CAP_PERFMON): pointer comparisons, pointers stored into maps, the context
//!   or packets, passed to helpers as numbers or returned, partial copies of pointers, pointer
//!   subtraction, overwriting part of a spilled pointer;
//! - `allow_uninit_stack` (CAP_PERFMON): reading stack bytes never written;
//! - `bypass_spec_v1` (CAP_PERFMON or `mitigations=off`): `sanitize_ptr_alu` and
//!   `sanitize_check_bounds`, which refuse pointer arithmetic that could go out of bounds under
//!   speculation; their instruction patching changes only the processed counts;
//! - `bypass_spec_v4`: only instruction patching (`sanitize_stack_spill`), no verdicts.
//!
//! The rules run as hooks around the privileged transfer functions: [`before`] refuses what an
//! unprivileged load may not do before the rule runs (in the kernel's order where it checks the
//! same instruction), [`after`] checks the rule's result (pointer arithmetic bounds) and turns
//! scalar spills into data. [`check_program`] and [`check_back_edges`] are the load-time checks.
//!
//! Not modelled: the speculative paths that `sanitize_speculative_path` adds for branches known
//! to go one way (Linux 6.18 patches in a barrier rather than rejecting most of what they find),
//! and `REASON_PATHS` (one instruction doing pointer arithmetic with different limits on
//! different paths).

use super::{eacces, einval, Cx, Out};
use crate::env::ProgType;
use crate::reject::{Errno, Reject};
use crate::state::{Frame, RegState, RegType, SlotType, StackSlot, State, MAX_STACK};
use bpfkit_isa::{AluOp, AtomicOp, CallTarget, Insn, JmpCond, Op, Operand, Reg, Width};

/// Who loads the program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Privilege {
    /// Root, or CAP_BPF + CAP_PERFMON: the reference and the default.
    #[default]
    Privileged,
    /// A user without CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN and CAP_NET_ADMIN, with
    /// `kernel.unprivileged_bpf_disabled = 0` and CPU mitigations on.
    Unprivileged,
}

impl Privilege {
    /// `env->bpf_capable`.
    #[must_use]
    pub const fn bpf_capable(self) -> bool {
        matches!(self, Privilege::Privileged)
    }

    /// `env->allow_ptr_leaks`.
    #[must_use]
    pub const fn allow_ptr_leaks(self) -> bool {
        matches!(self, Privilege::Privileged)
    }

    /// `env->allow_uninit_stack`.
    #[must_use]
    pub const fn allow_uninit_stack(self) -> bool {
        matches!(self, Privilege::Privileged)
    }

    /// `env->bypass_spec_v1`.
    #[must_use]
    pub const fn bypass_spec_v1(self) -> bool {
        matches!(self, Privilege::Privileged)
    }

    /// `env->bypass_spec_v4`.
    #[must_use]
    pub const fn bypass_spec_v4(self) -> bool {
        matches!(self, Privilege::Privileged)
    }
}

/// `BPF_MAXINSNS`: the instruction limit without CAP_BPF.
pub const MAX_INSNS_UNPRIVILEGED: usize = 4096;

/// Helpers that `bpf_base_func_proto` (and `bpf_sk_base_func_proto`'s socket casts) give only
/// to CAP_BPF or CAP_PERFMON, by id: spin locks, timers, kptrs, dynptrs, `bpf_snprintf`,
/// `bpf_trace_printk`, probe reads, `bpf_get_current_task`, `bpf_skc_to_*`, ... The same set
/// for every program type an unprivileged user may load (Linux 6.18, checked against the
/// kernel by crates/bpfkit/tests/verifier_unprivileged.rs).
pub const CAPABLE_ONLY_HELPERS: [i32; 56] = [
    6, 16, 17, 22, 35, 37, 55, 80, 93, 94, 109, 112, 113, 114, 115, 117, 118, 123, 136, 137, 138,
    139, 140, 141, 148, 149, 153, 154, 156, 157, 158, 164, 165, 169, 170, 171, 172, 175, 176, 177,
    178, 180, 181, 191, 194, 196, 197, 198, 199, 200, 201, 202, 203, 209, 210, 211,
];

/// The syscall's checks before the verifier runs (`bpf_prog_load`): the program type and the
/// instruction count. `Err` is the errno and a description (the kernel writes no log).
///
/// # Errors
/// `EPERM` for a type other than socket_filter and cgroup_skb, `E2BIG` above 4096 instructions.
pub fn check_load(
    privilege: Privilege,
    prog_type: ProgType,
    insn_cnt: usize,
) -> Result<(), (Errno, String)> {
    if privilege.bpf_capable() {
        return Ok(());
    }
    if insn_cnt > MAX_INSNS_UNPRIVILEGED {
        return Err((
            Errno::E2BIG,
            format!(
                "program has {insn_cnt} instructions; without CAP_BPF at most \
                 {MAX_INSNS_UNPRIVILEGED} (BPF_MAXINSNS)"
            ),
        ));
    }
    // BPF_PROG_TYPE_SOCKET_FILTER and BPF_PROG_TYPE_CGROUP_SKB ("always unpriv").
    if !matches!(prog_type.kernel_id(), 1 | 8) {
        return Err((
            Errno::EPERM,
            format!(
                "program type {} needs CAP_BPF (only socket_filter and cgroup_skb load without)",
                prog_type.name()
            ),
        ));
    }
    Ok(())
}

/// `add_subprog_and_kfunc` without CAP_BPF: the first bpf-to-bpf call, kfunc call or function
/// address (LD_IMM64 src=4) is refused.
///
/// # Errors
/// `EPERM`: `loading/calling other bpf or kernel functions are allowed for CAP_BPF and
/// CAP_SYS_ADMIN`.
pub fn check_program(privilege: Privilege, insns: &[Insn]) -> Result<(), Reject> {
    if privilege.bpf_capable() {
        return Ok(());
    }
    // JMP|CALL with src 1 (BPF_PSEUDO_CALL) or 2 (BPF_PSEUDO_KFUNC_CALL); LD|IMM|DW with src 4
    // (BPF_PSEUDO_FUNC).
    let found = insns
        .iter()
        .position(|i| (i.code == 0x85 && matches!(i.src, 1 | 2)) || (i.code == 0x18 && i.src == 4));
    match found {
        Some(at) => Err(Reject::new(
            Errno::EPERM,
            at,
            "loading/calling other bpf or kernel functions are allowed for CAP_BPF and CAP_SYS_ADMIN",
        )),
        None => Ok(()),
    }
}

/// The successors of instruction `t` in the order `visit_insn` pushes them: fall-through first,
/// then the jump target. Targets outside the program are left out (other checks report them).
fn successors(insns: &[Insn], t: usize) -> Vec<usize> {
    use bpfkit_isa::opcode as c;
    let insn = insns[t];
    let class = c::class(insn.code);
    let jump = |off: i64| {
        let w = t as i64 + 1 + off;
        usize::try_from(w).ok().filter(|w| *w < insns.len())
    };
    let next = |n: usize| Some(t + n).filter(|w| *w < insns.len());
    if class == c::LD && insn.is_ld_imm64() {
        return next(2).into_iter().collect();
    }
    if class != c::JMP && class != c::JMP32 {
        return next(1).into_iter().collect();
    }
    match c::op(insn.code) {
        c::EXIT => Vec::new(),
        c::CALL => next(1).into_iter().collect(),
        c::JA => {
            let off = if class == c::JMP32 {
                i64::from(insn.imm)
            } else {
                i64::from(insn.off)
            };
            jump(off).into_iter().collect()
        }
        _ => next(1)
            .into_iter()
            .chain(jump(i64::from(insn.off)))
            .collect(),
    }
}

/// `check_cfg` without CAP_BPF: the depth-first walk from instruction 0 refuses the first edge
/// to an instruction still on its path.
///
/// # Errors
/// `EINVAL`: `back-edge from insn X to Y`.
pub fn check_back_edges(privilege: Privilege, insns: &[Insn]) -> Result<(), Reject> {
    if privilege.bpf_capable() || insns.is_empty() {
        return Ok(());
    }
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; insns.len()];
    // Each entry: an instruction and how many of its successors were tried.
    let mut stack: Vec<(usize, usize)> = vec![(0, 0)];
    mark[0] = Mark::OnPath;
    while let Some(&mut (t, ref mut tried)) = stack.last_mut() {
        let succ = successors(insns, t);
        if let Some(&w) = succ.get(*tried) {
            *tried += 1;
            match mark[w] {
                Mark::New => {
                    mark[w] = Mark::OnPath;
                    stack.push((w, 0));
                }
                Mark::OnPath => {
                    return Err(einval(t, format!("back-edge from insn {t} to {w}")));
                }
                Mark::Done => {}
            }
        } else {
            mark[t] = Mark::Done;
            stack.pop();
        }
    }
    Ok(())
}

/// What [`before`] saw, for [`after`].
pub struct Pre {
    /// The current frame's registers before the instruction.
    regs: [RegState; 11],
    /// For a store to a constant stack offset: the frame, the offset and the slot before it.
    stack_store: Option<(usize, i32, StackSlot)>,
    /// `sanitize_ptr_alu`'s state and limit before the operation.
    alu_pre: Option<(u32, u32)>,
}

/// `reg_not_null` for the types bpfkit models: map values and (NULL-checked) memory.
fn not_null(t: RegType) -> bool {
    matches!(t, RegType::MapValue | RegType::RingbufMem)
}

fn reg(st: &State, r: Reg) -> RegState {
    st.cur().regs[r.index()]
}

fn is_ptr(r: &RegState) -> bool {
    r.ty.is_pointer()
}

fn pkt_any(t: RegType) -> bool {
    matches!(
        t,
        RegType::Packet | RegType::PacketMeta | RegType::PacketEnd
    )
}

/// The constant stack offset `reg + off` points to, and the frame index, when known.
fn stack_target(st: &State, base: &RegState, off: i16) -> Option<(usize, i32)> {
    if base.ty != RegType::Stack {
        return None;
    }
    let c = base.var.const_value()? as i64 + i64::from(base.off) + i64::from(off);
    let frame = usize::from(base.frameno).min(st.frames.len() - 1);
    i32::try_from(c).ok().map(|c| (frame, c))
}

/// The type of stack byte at offset `o` (unallocated bytes were never written).
fn byte_at(frame: &Frame, o: i32) -> (SlotType, StackSlot) {
    let (slot, b) = Frame::byte_pos(o);
    let s = frame.stack.get(slot).copied().unwrap_or(StackSlot::INVALID);
    (s.bytes[b], s)
}

/// Runs before the privileged rule of `op` at `idx`: the unprivileged refusals that come
/// first in the kernel's order. Returns what [`after`] needs, `None` for privileged loads.
///
/// # Errors
/// The kernel's unprivileged rejection for this instruction.
pub fn before(
    cx: &Cx<'_>,
    st: &State,
    idx: usize,
    op: &Op,
    out: &mut Out<'_>,
) -> Result<Option<Pre>, Reject> {
    let p = cx.privilege;
    if p == Privilege::Privileged {
        return Ok(None);
    }
    let mut pre = Pre {
        regs: st.cur().regs,
        stack_store: None,
        alu_pre: None,
    };
    let init = |r: &RegState| r.ty != RegType::NotInit;
    match *op {
        Op::Neg { dst, .. } | Op::End { dst, .. }
            if is_ptr(&reg(st, dst)) && !p.allow_ptr_leaks() =>
        {
            return Err(eacces(
                idx,
                format!("R{} pointer arithmetic prohibited", dst.num()),
            ));
        }
        Op::Alu {
            width,
            op: alu,
            dst,
            src,
        } => {
            alu_before(p, st, idx, width, alu, dst, src)?;
            let add_sub = matches!(alu, AluOp::Add | AluOp::Sub);
            if add_sub && !p.bypass_spec_v1() {
                match PtrAlu::of(&st.cur().regs, dst, src) {
                    Some(o) if width == Width::W64 => {
                        pre.alu_pre = sanitize_pre(idx, alu, dst.num(), &o)?;
                    }
                    Some(_) => {}
                    None => sanitize_scalar(idx, alu, dst, src, st, out)?,
                }
            }
        }
        Op::Jcond {
            width,
            cond,
            dst,
            src,
            ..
        } => cmp_before(p, st, idx, width, cond, dst, src)?,
        Op::StoreReg {
            size,
            dst,
            src,
            off,
        } => {
            let (base, value) = (reg(st, dst), reg(st, src));
            if init(&base) && init(&value) {
                store_leak(p, idx, &base, src, &value)?;
                pre.stack_store = stack_store_before(p, st, idx, &base, off, size.bytes())?;
            }
        }
        Op::StoreRelease { dst, src, .. } => {
            let (base, value) = (reg(st, dst), reg(st, src));
            if init(&base) && init(&value) {
                store_leak(p, idx, &base, src, &value)?;
            }
        }
        Op::StoreImm { size, dst, off, .. } => {
            let base = reg(st, dst);
            if init(&base) {
                pre.stack_store = stack_store_before(p, st, idx, &base, off, size.bytes())?;
            }
        }
        Op::Atomic {
            size,
            op: a,
            dst,
            src,
            off,
        } => {
            let (base, value, r0) = (reg(st, dst), reg(st, src), reg(st, Reg::R0));
            let r0_ok = a != AtomicOp::Cmpxchg || init(&r0);
            if init(&base) && init(&value) && r0_ok && !p.allow_ptr_leaks() {
                if a == AtomicOp::Cmpxchg && is_ptr(&r0) {
                    return Err(eacces(idx, "R0 leaks addr into mem"));
                }
                if is_ptr(&value) {
                    return Err(eacces(idx, format!("R{} leaks addr into mem", src.num())));
                }
                // The read half of an atomic takes the old value as data (`value_regno` -1).
                if let Some((f, o)) = stack_target(st, &base, off) {
                    let frame = &st.frames[f];
                    let n = size.bytes();
                    let in_frame = (-MAX_STACK..0).contains(&o) && o % n as i32 == 0;
                    if in_frame {
                        let shown = i32::from(off) + base.off;
                        below_allocated(frame, idx, dst.num(), shown, i64::from(o), n)?;
                        let (_, slot) = byte_at(frame, o);
                        if n == 8 && slot.is_full_spill() && is_ptr(&slot.spilled) {
                            return Err(eacces(idx, format!("leaking pointer from stack off {o}")));
                        }
                        stack_read_before(frame, idx, dst.num(), shown, o, n)?;
                    }
                }
            }
        }
        Op::Load { size, src, off, .. } | Op::LoadAcquire { size, src, off, .. } => {
            let base = reg(st, src);
            if !p.allow_uninit_stack() {
                if let Some((f, o)) = stack_target(st, &base, off) {
                    let shown = i32::from(off) + base.off;
                    let r = src.num();
                    stack_read_before(&st.frames[f], idx, r, shown, o, size.bytes())?;
                }
            }
        }
        Op::Exit => {
            let r0 = reg(st, Reg::R0);
            if st.frames.len() == 1 && st.refs.is_empty() && is_ptr(&r0) && !p.allow_ptr_leaks() {
                return Err(eacces(idx, "R0 leaks addr as return value"));
            }
        }
        Op::Call(CallTarget::Helper(id)) => helper_before(cx, idx, id)?,
        _ => {}
    }
    Ok(Some(pre))
}

/// ALU checks before the rule: partial copies of pointers, pointer - pointer, 32-bit pointer
/// subtraction (`check_alu_op`, `adjust_reg_min_max_vals`, `adjust_ptr_min_max_vals`).
fn alu_before(
    p: Privilege,
    st: &State,
    idx: usize,
    width: Width,
    alu: AluOp,
    dst: Reg,
    src: Operand,
) -> Result<(), Reject> {
    if p.allow_ptr_leaks() {
        return Ok(());
    }
    let Operand::Reg(sr) = src else {
        // `w1 -= 8` on a pointer: 32-bit pointer arithmetic.
        let d = reg(st, dst);
        if width == Width::W32 && alu == AluOp::Sub && is_ptr(&d) {
            return Err(eacces(
                idx,
                format!("R{} 32-bit pointer arithmetic prohibited", dst.num()),
            ));
        }
        return Ok(());
    };
    let (d, s) = (reg(st, dst), reg(st, sr));
    if s.ty == RegType::NotInit {
        return Ok(());
    }
    match alu {
        AluOp::Mov if width == Width::W32 && is_ptr(&s) => Err(eacces(
            idx,
            format!("R{} partial copy of pointer", sr.num()),
        )),
        AluOp::Movsx(_) if is_ptr(&s) => Err(eacces(
            idx,
            if width == Width::W32 {
                format!("R{} partial copy of pointer", sr.num())
            } else {
                format!("R{} sign-extension part of pointer", sr.num())
            },
        )),
        AluOp::Sub if d.ty != RegType::NotInit && is_ptr(&d) && is_ptr(&s) => Err(eacces(
            idx,
            format!("R{} pointer -= pointer prohibited", dst.num()),
        )),
        AluOp::Sub
            if d.ty != RegType::NotInit && width == Width::W32 && (is_ptr(&d) || is_ptr(&s)) =>
        {
            Err(eacces(
                idx,
                format!("R{} 32-bit pointer arithmetic prohibited", dst.num()),
            ))
        }
        _ => Ok(()),
    }
}

/// `check_cond_jmp_op` without `allow_ptr_leaks`: a pointer may only be compared with a packet
/// pointer (packet range checks), NULL-checked against 0, or compared with 0 when it cannot be
/// NULL (the branch is then known).
fn cmp_before(
    p: Privilege,
    st: &State,
    idx: usize,
    width: Width,
    cond: JmpCond,
    dst: Reg,
    src: Operand,
) -> Result<(), Reject> {
    if p.allow_ptr_leaks() {
        return Ok(());
    }
    let d = reg(st, dst);
    if d.ty == RegType::NotInit {
        return Ok(());
    }
    let (other, imm) = match src {
        Operand::Reg(sr) => {
            let s = reg(st, sr);
            if s.ty == RegType::NotInit {
                return Ok(());
            }
            if is_ptr(&s) && !(pkt_any(d.ty) && pkt_any(s.ty)) {
                return Err(eacces(
                    idx,
                    format!("R{} pointer comparison prohibited", sr.num()),
                ));
            }
            (s, false)
        }
        Operand::Imm(i) => (
            RegState::scalar(crate::num::Scalar::known(i as i64 as u64)),
            true,
        ),
    };
    if !is_ptr(&d) {
        return Ok(());
    }
    let zero = match width {
        Width::W64 => other.const_scalar() == Some(0),
        Width::W32 => other.const_scalar().map(|v| v as u32) == Some(0),
    };
    let eq = matches!(cond, JmpCond::Eq | JmpCond::Ne);
    // `is_branch_taken`: a pointer that cannot be NULL is never equal to 0.
    let decided = eq && zero && not_null(d.ty);
    // `mark_ptr_or_null_regs`: the NULL check of a lookup result.
    let null_check = eq && imm && zero && width == Width::W64 && d.ty.maybe_null();
    // `try_match_pkt_pointers`.
    let pkt = !imm
        && width == Width::W64
        && matches!(cond, JmpCond::Gt | JmpCond::Lt | JmpCond::Ge | JmpCond::Le)
        && matches!(
            (d.ty, other.ty),
            (RegType::Packet, RegType::PacketEnd)
                | (RegType::PacketEnd, RegType::Packet)
                | (RegType::PacketMeta, RegType::Packet)
                | (RegType::Packet, RegType::PacketMeta)
        );
    if decided || null_check || pkt {
        return Ok(());
    }
    Err(eacces(
        idx,
        format!("R{} pointer comparison prohibited", dst.num()),
    ))
}

/// `check_mem_access` for a store of a pointer: it may not reach a map value, the context, a
/// packet or other memory the user can read.
fn store_leak(
    p: Privilege,
    idx: usize,
    base: &RegState,
    src: Reg,
    value: &RegState,
) -> Result<(), Reject> {
    if p.allow_ptr_leaks() || !is_ptr(value) {
        return Ok(());
    }
    let into = match base.ty {
        RegType::MapValue => "map",
        RegType::Ctx => "ctx",
        RegType::Packet | RegType::PacketMeta => "packet",
        RegType::RingbufMem => "mem",
        _ => return Ok(()),
    };
    Err(eacces(
        idx,
        format!("R{} leaks addr into {into}", src.num()),
    ))
}

/// `check_stack_write_fixed_off`: without `allow_ptr_leaks` a store narrower than 8 bytes may
/// not overwrite part of a spilled pointer. Returns the slot as it was, for [`after`].
fn stack_store_before(
    p: Privilege,
    st: &State,
    idx: usize,
    base: &RegState,
    off: i16,
    size: u32,
) -> Result<Option<(usize, i32, StackSlot)>, Reject> {
    let Some((f, o)) = stack_target(st, base, off) else {
        return Ok(None);
    };
    if !(-MAX_STACK..0).contains(&o) || o % size as i32 != 0 {
        return Ok(None);
    }
    let (_, slot) = byte_at(&st.frames[f], o);
    let spilled_ptr = slot.bytes[7] == SlotType::Spill && slot.spilled.ty != RegType::Scalar;
    if !p.allow_ptr_leaks() && spilled_ptr && size != 8 {
        return Err(eacces(idx, "attempt to corrupt spilled pointer on stack"));
    }
    Ok(Some((f, o, slot)))
}

/// `check_stack_slot_within_bounds` without `allow_uninit_stack`: a read may not start below
/// the stack written so far (`allocated_stack`, whole slots).
fn below_allocated(
    frame: &Frame,
    idx: usize,
    r: u8,
    shown: i32,
    o: i64,
    size: u32,
) -> Result<(), Reject> {
    let allocated = 8 * frame.stack.len() as i64;
    if o < -allocated && o >= -i64::from(MAX_STACK) {
        return Err(eacces(
            idx,
            format!("invalid read from stack R{r} off={shown} size={size}"),
        ));
    }
    Ok(())
}

/// `check_stack_read_fixed_off` without `allow_uninit_stack`: every byte read must have been
/// written.
fn stack_read_before(
    frame: &Frame,
    idx: usize,
    r: u8,
    shown: i32,
    o: i32,
    size: u32,
) -> Result<(), Reject> {
    if !(-MAX_STACK..0).contains(&o) || o + size as i32 > 0 || o % size as i32 != 0 {
        return Ok(()); // the rule reports bounds and alignment
    }
    below_allocated(frame, idx, r, shown, i64::from(o), size)?;
    let (_, slot) = byte_at(frame, o);
    let spill_len = slot
        .bytes
        .iter()
        .rev()
        .take_while(|b| **b == SlotType::Spill)
        .count();
    if slot.bytes[7] == SlotType::Spill && size == 8 && spill_len == 8 {
        return Ok(()); // a whole spilled register
    }
    for i in 0..size as i32 {
        if byte_at(frame, o + i).0 == SlotType::Invalid {
            return Err(eacces(
                idx,
                format!("invalid read from stack off {o}+{i} size {size}"),
            ));
        }
    }
    Ok(())
}

/// `check_stack_access_within_bounds` for a helper reading `size` bytes of stack at offset `o`
/// through register `r`, without `allow_uninit_stack`: the read may not start below the stack
/// written so far (checked before the read's end, so this `EACCES` wins over the `EINVAL` of a
/// read past the frame pointer). A hook for `call::helper_mem`.
///
/// # Errors
/// `invalid read from stack R%d off=%d size=%d`.
pub fn helper_stack_bounds(
    cx: &Cx<'_>,
    frame: &Frame,
    idx: usize,
    r: usize,
    shown: i32,
    o: i64,
    size: u32,
) -> Result<(), Reject> {
    if cx.privilege.allow_uninit_stack() {
        return Ok(());
    }
    below_allocated(frame, idx, r as u8, shown, o, size)
}

/// `check_stack_range_initialized` for a helper reading `size` bytes of stack at offset `o`
/// through register `r`, without `allow_uninit_stack` / `allow_ptr_leaks`: every byte must be
/// written, and spilled pointers may not be read as data. A hook for `call::helper_mem`.
///
/// # Errors
/// `invalid read from stack R%d off %d+%d size %d`.
pub fn helper_stack_read(
    cx: &Cx<'_>,
    frame: &Frame,
    idx: usize,
    r: usize,
    shown: i32,
    o: i64,
    size: u32,
) -> Result<(), Reject> {
    if cx.privilege.allow_uninit_stack() {
        return Ok(());
    }
    below_allocated(frame, idx, r as u8, shown, o, size)?;
    for i in 0..i64::from(size) {
        let Ok(at) = i32::try_from(o + i) else {
            return Ok(());
        };
        let (b, slot) = byte_at(frame, at);
        let ok = match b {
            SlotType::Misc | SlotType::Zero => true,
            SlotType::Invalid => false,
            SlotType::Spill => slot.spilled.ty == RegType::Scalar || cx.privilege.allow_ptr_leaks(),
        };
        if !ok {
            return Err(eacces(
                idx,
                format!("invalid read from stack R{r} off {o}+{i} size {size}"),
            ));
        }
    }
    Ok(())
}

/// `check_helper_call`'s byte-wise writes of a helper's output buffer on the stack
/// (`ARG_PTR_TO_UNINIT_MEM`), without `allow_ptr_leaks`: no byte may land on a spilled pointer.
/// A hook for `call::helper_mem`.
///
/// # Errors
/// `attempt to corrupt spilled pointer on stack`.
pub fn helper_stack_write(
    cx: &Cx<'_>,
    frame: &Frame,
    idx: usize,
    o: i64,
    size: u32,
) -> Result<(), Reject> {
    if cx.privilege.allow_ptr_leaks() {
        return Ok(());
    }
    for i in 0..i64::from(size) {
        let Ok(at) = i32::try_from(o + i) else {
            return Ok(());
        };
        let (_, slot) = byte_at(frame, at);
        if slot.bytes[7] == SlotType::Spill && slot.spilled.ty != RegType::Scalar {
            return Err(eacces(idx, "attempt to corrupt spilled pointer on stack"));
        }
    }
    Ok(())
}

/// `check_func_arg` for `ARG_ANYTHING` without `allow_ptr_leaks`: a number argument may not be
/// a pointer. A hook for `call::check_args`, in argument order.
///
/// # Errors
/// `R%d leaks addr into helper function`.
pub fn anything_arg(cx: &Cx<'_>, idx: usize, r: usize, reg: &RegState) -> Result<(), Reject> {
    if cx.privilege.allow_ptr_leaks() || !is_ptr(reg) {
        return Ok(());
    }
    Err(eacces(idx, format!("R{r} leaks addr into helper function")))
}

/// `check_helper_call` without CAP_BPF / CAP_PERFMON: the helpers only those give.
fn helper_before(cx: &Cx<'_>, idx: usize, id: i32) -> Result<(), Reject> {
    if CAPABLE_ONLY_HELPERS.contains(&id) {
        return Err(einval(
            idx,
            format!(
                "program of this type cannot use helper {}#{id}",
                cx.env.helper_name(id).unwrap_or("unknown")
            ),
        ));
    }
    Ok(())
}

/// Runs after the privileged rule succeeded: pointer arithmetic bounds for Spectre v1
/// (`sanitize_ptr_alu`, `sanitize_check_bounds`) and untracked scalar spills without CAP_BPF.
///
/// # Errors
/// The kernel's unprivileged rejection of the instruction's result.
pub fn after(
    cx: &Cx<'_>,
    pre: Option<Pre>,
    st: &mut State,
    idx: usize,
    op: &Op,
    out: &mut Out<'_>,
) -> Result<(), Reject> {
    let Some(pre) = pre else { return Ok(()) };
    let p = cx.privilege;
    match *op {
        Op::Alu {
            width: Width::W64,
            op: alu @ (AluOp::Add | AluOp::Sub),
            dst,
            src,
        } if !p.bypass_spec_v1() => {
            let Some(o) = PtrAlu::of(&pre.regs, dst, src) else {
                return Ok(());
            };
            let result = st.cur().regs[dst.index()];
            sanitize_post(idx, alu, dst.num(), &o, &result, pre.alu_pre, out)
        }
        Op::StoreReg { size, src, .. } if !p.bpf_capable() => {
            let v = pre.regs[src.index()];
            if v.ty == RegType::Scalar {
                untrack_spill(st, pre.stack_store, size.bytes(), v.is_null());
            }
            Ok(())
        }
        Op::StoreImm { size, imm, .. } if !p.bpf_capable() => {
            untrack_spill(st, pre.stack_store, size.bytes(), imm == 0);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The operands of `ptr op off` (or `off op ptr`) as `adjust_ptr_min_max_vals` sees them.
struct PtrAlu {
    ptr: RegState,
    off: RegState,
    ptr_regno: u8,
    off_regno: u8,
    /// The offset is a register (`BPF_X`): `sanitize_ptr_alu` runs.
    reg_operand: bool,
}

impl PtrAlu {
    /// The operands of a 64-bit ALU instruction with exactly one pointer operand.
    fn of(regs: &[RegState; 11], dst: Reg, src: Operand) -> Option<PtrAlu> {
        let d = regs[dst.index()];
        let (s, sreg) = match src {
            Operand::Reg(r) => (regs[r.index()], Some(r)),
            Operand::Imm(i) => (
                RegState::scalar(crate::num::Scalar::known(i as i64 as u64)),
                None,
            ),
        };
        if d.ty == RegType::NotInit || s.ty == RegType::NotInit {
            return None;
        }
        let src_no = sreg.map_or(0, Reg::num);
        match (is_ptr(&d), is_ptr(&s)) {
            (true, false) => Some(PtrAlu {
                ptr: d,
                off: s,
                ptr_regno: dst.num(),
                off_regno: src_no,
                reg_operand: sreg.is_some(),
            }),
            (false, true) => Some(PtrAlu {
                ptr: s,
                off: d,
                ptr_regno: src_no,
                off_regno: dst.num(),
                reg_operand: true,
            }),
            _ => None,
        }
    }

    /// Whether `adjust_ptr_min_max_vals` gets to `sanitize_ptr_alu`: the pointer type allows
    /// arithmetic, it cannot be NULL, and `check_reg_sane_offset` passes for both operands.
    fn reaches_sanitize(&self, alu: AluOp) -> bool {
        let sane = |r: &RegState| {
            let v = &r.var;
            let val = v.var_off.value as i64;
            !(v.is_const() && (val >= MAX_VAR_OFF || val <= -MAX_VAR_OFF))
                && i64::from(r.off).abs() < MAX_VAR_OFF
                && v.smin != i64::MIN
                && v.smin < MAX_VAR_OFF
                && v.smin > -MAX_VAR_OFF
        };
        let type_ok = match self.ptr.ty {
            RegType::Ctx
            | RegType::MapValue
            | RegType::Stack
            | RegType::Packet
            | RegType::PacketMeta
            | RegType::RingbufMem => true,
            RegType::MapPtr => alu == AluOp::Add && self.off.const_scalar() == Some(0),
            _ => false,
        };
        type_ok && !self.ptr.ty.maybe_null() && sane(&self.off) && sane(&self.ptr)
    }

    /// `mask_to_left` of `sanitize_ptr_alu`.
    fn mask_to_left(&self, alu: AluOp) -> bool {
        let off_is_neg = self.off.var.smin < 0;
        (alu == AluOp::Add && off_is_neg) || (alu == AluOp::Sub && !off_is_neg)
    }
}

/// `BPF_MAX_VAR_OFF`.
const MAX_VAR_OFF: i64 = 1 << 29;

/// The reason `sanitize_ptr_alu` gives up, for [`sanitize_err`].
const WHY: &str = "pointer arithmetic with it prohibited for !root";

/// `retrieve_ptr_limit`: how far a pointer may move, and the bound; `None` for a type Spectre
/// masking does not support (`REASON_TYPE`).
fn ptr_limit(r: &RegState, mask_to_left: bool) -> Option<(u32, u32)> {
    match r.ty {
        RegType::Stack => Some((
            MAX_STACK as u32 + u32::from(mask_to_left),
            (r.var.var_off.value as i64 + i64::from(r.off)).wrapping_neg() as u32,
        )),
        RegType::MapValue => Some((
            r.map.map_or(0, |m| m.value_size),
            (if mask_to_left {
                r.var.smin
            } else {
                r.var.umax as i64
            })
            .wrapping_add(i64::from(r.off)) as u32,
        )),
        _ => None,
    }
}

/// `retrieve_ptr_limit` on `r` as a rejection (`REASON_TYPE`, `REASON_LIMIT`).
fn check_limit(idx: usize, alu: AluOp, dst: u8, o: &PtrAlu, r: &RegState) -> Result<u32, Reject> {
    let verb = if alu == AluOp::Add { "add" } else { "sub" };
    match ptr_limit(r, o.mask_to_left(alu)) {
        None => Err(eacces(
            idx,
            format!(
                "R{} has pointer with unsupported alu operation, {WHY}",
                o.ptr_regno
            ),
        )),
        Some((max, limit)) if limit >= max => Err(eacces(
            idx,
            format!("R{dst} tried to {verb} beyond pointer bounds, {WHY}"),
        )),
        Some((_, limit)) => Ok(limit),
    }
}

/// `insn_aux_data.alu_state` bits (`BPF_ALU_*`).
const ALU_SANITIZE_SRC: u32 = 1 << 0;
/// See [`ALU_SANITIZE_SRC`].
const ALU_SANITIZE_DST: u32 = 1 << 1;
/// See [`ALU_SANITIZE_SRC`].
const ALU_NEG_VALUE: u32 = 1 << 2;
/// See [`ALU_SANITIZE_SRC`].
const ALU_NON_POINTER: u32 = 1 << 3;
/// See [`ALU_SANITIZE_SRC`].
const ALU_IMMEDIATE: u32 = 1 << 4;

/// `update_alu_sanitation_state`: one instruction must be sanitised the same way on every path
/// (its Spectre masking is patched in once). `Err` is `REASON_PATHS`.
fn update_alu_state(
    idx: usize,
    alu: AluOp,
    dst: u8,
    state: u32,
    limit: u32,
    out: &mut Out<'_>,
) -> Result<(), Reject> {
    if out.alu_sanitation.len() <= idx {
        out.alu_sanitation.resize(idx + 1, (0, 0));
    }
    let aux = &mut out.alu_sanitation[idx];
    if aux.0 != 0 && *aux != (state, limit) {
        let verb = if alu == AluOp::Add { "add" } else { "sub" };
        return Err(eacces(
            idx,
            format!("R{dst} tried to {verb} from different maps, paths or scalars, {WHY}"),
        ));
    }
    *aux = (state, limit);
    Ok(())
}

/// `sanitize_val_alu`: a register addition or subtraction of two scalars marks the
/// instruction as not pointer arithmetic.
fn sanitize_scalar(
    idx: usize,
    alu: AluOp,
    dst: Reg,
    src: Operand,
    st: &State,
    out: &mut Out<'_>,
) -> Result<(), Reject> {
    let Operand::Reg(sr) = src else {
        return Ok(());
    };
    let (d, s) = (reg(st, dst), reg(st, sr));
    if d.ty == RegType::Scalar && s.ty == RegType::Scalar {
        update_alu_state(idx, alu, dst.num(), ALU_NON_POINTER, 0, out)?;
    }
    Ok(())
}

/// `sanitize_ptr_alu` before the operation (register operands only): the offset's signed
/// bounds may not straddle 0 and the pointer must be of a kind Spectre masking supports, with
/// room to move.
fn sanitize_pre(idx: usize, alu: AluOp, dst: u8, o: &PtrAlu) -> Result<Option<(u32, u32)>, Reject> {
    if !o.reg_operand || !o.reaches_sanitize(alu) {
        return Ok(None);
    }
    let v = &o.off.var;
    if !v.is_const() && (v.smin < 0) != (v.smax < 0) {
        return Err(eacces(
            idx,
            format!(
                "R{} has unknown scalar with mixed signed bounds, {WHY}",
                o.off_regno
            ),
        ));
    }
    let limit = check_limit(idx, alu, dst, o, &o.ptr)?;
    let mut state = if o.off_regno == dst {
        ALU_SANITIZE_DST
    } else {
        ALU_SANITIZE_SRC
    };
    if v.smin < 0 {
        state |= ALU_NEG_VALUE;
    }
    if v.is_const() {
        state |= ALU_IMMEDIATE;
    }
    Ok(Some((state, limit)))
}

/// After the operation: `sanitize_check_bounds` on the result, then `sanitize_ptr_alu`'s
/// commit window (register operands).
fn sanitize_post(
    idx: usize,
    alu: AluOp,
    dst: u8,
    o: &PtrAlu,
    result: &RegState,
    pre: Option<(u32, u32)>,
    out: &mut Out<'_>,
) -> Result<(), Reject> {
    bounds(idx, dst, result)?;
    if let (true, Some((state, pre_limit))) = (o.reg_operand, pre) {
        let limit = check_limit(idx, alu, dst, o, result)?;
        let window = (pre_limit.wrapping_sub(limit) as i32).unsigned_abs();
        update_alu_state(idx, alu, dst, state, window, out)?;
    }
    Ok(())
}

/// `sanitize_check_bounds`: a stack pointer keeps a constant offset inside the stack, a map
/// value pointer stays inside the value.
fn bounds(idx: usize, dst: u8, r: &RegState) -> Result<(), Reject> {
    match r.ty {
        RegType::Stack => {
            if !r.var.is_const() {
                return Err(eacces(
                    idx,
                    format!(
                        "R{dst} variable stack access prohibited for !root, var_off=({:#x}; {:#x}) off={}",
                        r.var.var_off.value,
                        r.var.var_off.mask,
                        (i64::from(r.off) + r.var.var_off.value as i64) as i32
                    ),
                ));
            }
            let off = r.var.var_off.value as i64 + i64::from(r.off);
            if off >= 0 || off < -i64::from(MAX_STACK) {
                return Err(eacces(
                    idx,
                    format!(
                        "R{dst} stack pointer arithmetic goes out of range, prohibited for !root; off={off}"
                    ),
                ));
            }
            Ok(())
        }
        RegType::MapValue => {
            let size = r.map.map_or(0, |m| m.value_size);
            super::mem::check_mem_region(idx, dst, &r.var, r.off, 1, size, "map value, value_size")
                .map_err(|mut e| {
                    e.message.push_str(&format!(
                        "\nR{dst} pointer arithmetic of map value goes out of range, prohibited for !root"
                    ));
                    e
                })
        }
        _ => Ok(()),
    }
}

/// `check_stack_write_fixed_off` without CAP_BPF: a scalar stored on the stack is not kept as a
/// spilled register; its bytes become data (`STACK_MISC`), or zero (`STACK_ZERO`) for a known 0.
fn untrack_spill(st: &mut State, store: Option<(usize, i32, StackSlot)>, size: u32, zero: bool) {
    let Some((f, o, before)) = store else { return };
    let Some(frame) = st.frames.get_mut(f) else {
        return;
    };
    let (spi, _) = Frame::byte_pos(o);
    let Some(slot) = frame.stack.get_mut(spi) else {
        return;
    };
    let mut new = before;
    if new.bytes[7] == SlotType::Spill {
        for b in &mut new.bytes {
            if *b != SlotType::Invalid {
                *b = SlotType::Misc;
            }
        }
    }
    new.spilled = RegState::NOT_INIT;
    let k = (-o - 1) as usize;
    for i in 0..size as usize {
        new.bytes[(k - i) % 8] = if zero { SlotType::Zero } else { SlotType::Misc };
    }
    *slot = new;
}

/// `states_equal` without `allow_uninit_stack`, and with `explore_alu_limits`: extra
/// conditions for a new state to be pruned by an old one. Data bytes of the old stack
/// (`STACK_MISC`) must be data in the new one (`stacksafe` only lets uninitialised-stack readers
/// skip them), and once a pointer moved by an unknown scalar was sanitised, scalars must be equal,
/// not merely within (`regsafe` under `explore_alu_limits`), so that every path's masking is
/// checked. Always `true` for privileged loads; `live` masks the innermost frame's registers.
#[must_use]
pub fn may_prune(
    cx: &Cx<'_>,
    alu_sanitation: &[(u32, u32)],
    old: &State,
    cur: &State,
    live: u16,
) -> bool {
    if cx.privilege.allow_uninit_stack() {
        return true;
    }
    let exact_scalars = alu_sanitation
        .iter()
        .any(|&(state, _)| state != 0 && state & (ALU_NON_POINTER | ALU_IMMEDIATE) == 0);
    let last = old.frames.len().saturating_sub(1);
    for (i, (of, cf)) in old.frames.iter().zip(&cur.frames).enumerate() {
        for (spi, os) in of.stack.iter().enumerate() {
            let cs = cf.stack.get(spi).copied().unwrap_or(StackSlot::INVALID);
            for b in 0..8 {
                if os.bytes[b] == SlotType::Misc && cs.bytes[b] != SlotType::Misc {
                    return false;
                }
            }
            let spilled_scalars = os.bytes[7] == SlotType::Spill
                && os.spilled.ty == RegType::Scalar
                && cs.spilled.ty == RegType::Scalar;
            if exact_scalars && spilled_scalars && os.spilled.var != cs.spilled.var {
                return false;
            }
        }
        if !exact_scalars {
            continue;
        }
        for r in 0..10 {
            if i == last && live & (1 << r) == 0 {
                continue;
            }
            let (o, c) = (&of.regs[r], &cf.regs[r]);
            if o.ty == RegType::Scalar && c.ty == RegType::Scalar && o.var != c.var {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in tests a panic is the failure report")]
mod tests {
    //! Expected messages and verdicts are Linux 6.18's for unprivileged loads
    //! (tests/verifier/unpriv.cases and crates/kernel/tests/unprivileged.rs).
    use super::*;

    /// `r0 = 0; loop: r0 += 1; if r0 < 3 goto loop; exit`.
    fn counting_loop() -> Vec<Insn> {
        vec![
            Insn::new(0xb7, 0, 0, 0, 0),
            Insn::new(0x07, 0, 0, 0, 1),
            Insn::new(0xa5, 0, 0, -2, 3),
            Insn::new(0x95, 0, 0, 0, 0),
        ]
    }

    #[test]
    fn privileged_loads_skip_every_load_time_check() {
        let p = Privilege::Privileged;
        assert!(check_back_edges(p, &counting_loop()).is_ok());
        assert!(check_load(p, ProgType::Xdp, 5000).is_ok());
        let call = [Insn::new(0x85, 0, 1, 0, 1), Insn::new(0x95, 0, 0, 0, 0)];
        assert!(check_program(p, &call).is_ok());
    }

    #[test]
    fn a_loop_is_a_back_edge_without_cap_bpf() {
        let r = check_back_edges(Privilege::Unprivileged, &counting_loop()).unwrap_err();
        assert_eq!(r.errno, Errno::EINVAL);
        assert_eq!(r.message, "back-edge from insn 2 to 1");
        // A diamond is no loop.
        let diamond = [
            Insn::new(0xb7, 0, 0, 0, 0),
            Insn::new(0x15, 0, 0, 1, 0),
            Insn::new(0xb7, 0, 0, 0, 1),
            Insn::new(0x95, 0, 0, 0, 0),
        ];
        assert!(check_back_edges(Privilege::Unprivileged, &diamond).is_ok());
    }

    #[test]
    fn calls_types_and_sizes_need_cap_bpf() {
        let u = Privilege::Unprivileged;
        // call +1 (BPF_PSEUDO_CALL) at instruction 1.
        let call = [
            Insn::new(0xb7, 0, 0, 0, 0),
            Insn::new(0x85, 0, 1, 0, 1),
            Insn::new(0x95, 0, 0, 0, 0),
            Insn::new(0x95, 0, 0, 0, 0),
        ];
        let r = check_program(u, &call).unwrap_err();
        assert_eq!((r.errno, r.insn_idx), (Errno::EPERM, 1));
        assert_eq!(
            r.message,
            "loading/calling other bpf or kernel functions are allowed for CAP_BPF and CAP_SYS_ADMIN"
        );
        assert_eq!(check_load(u, ProgType::Xdp, 2).unwrap_err().0, Errno::EPERM);
        assert!(check_load(u, ProgType::SocketFilter, 4096).is_ok());
        let too_big = check_load(u, ProgType::SocketFilter, 4097).unwrap_err();
        assert_eq!(too_big.0, Errno::E2BIG);
    }

    #[test]
    fn sanitation_state_must_agree_across_paths() {
        let mut scratch = crate::print::Scratch::default();
        let (mut id_gen, mut depth, mut base, mut alu) = (0, vec![0], Vec::new(), Vec::new());
        let mut out = Out {
            scratch: &mut scratch,
            id_gen: &mut id_gen,
            depth: &mut depth,
            base: &mut base,
            alu_sanitation: &mut alu,
        };
        update_alu_state(3, AluOp::Add, 5, ALU_SANITIZE_SRC, 4, &mut out).unwrap();
        update_alu_state(3, AluOp::Add, 5, ALU_SANITIZE_SRC, 4, &mut out).unwrap();
        let r = update_alu_state(3, AluOp::Add, 5, ALU_NON_POINTER, 0, &mut out).unwrap_err();
        assert_eq!(
            r.message,
            "R5 tried to add from different maps, paths or scalars, pointer arithmetic with it \
             prohibited for !root"
        );
    }
}
