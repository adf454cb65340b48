//! Memory rules (`check_mem_access`, `check_stack_read/write_fixed_off`, `check_map_access`,
//! `check_packet_access`, `check_ctx_access`, `check_atomic`, `check_ld_imm`,
//! `check_ld_abs`): every load and store in bounds for its region, with per-byte stack state.

use super::{check_write_reg, eacces, einval, read_reg, Cx, Flow, Out};
use crate::env::{AccessKind, CtxField};
use crate::num::{self, Scalar};
use crate::reject::{Errno, Reject};
use crate::scalar::Tnum;
use crate::state::{Frame, MapRef, RegState, RegType, SlotType, State, MAX_STACK};
use bpfkit_isa::{AtomicOp, Op, Reg, Size};

/// The value being stored, for the stack's spill tracking.
#[derive(Clone, Copy, Debug)]
pub enum Stored {
    /// A register's value (STX).
    Reg(RegState),
    /// An immediate (ST).
    Imm(i32),
}

/// A memory access request.
#[derive(Clone, Copy, Debug)]
pub struct Access {
    /// Base register.
    pub regno: Reg,
    /// Instruction offset.
    pub off: i32,
    /// Size in bytes.
    pub size: u32,
    /// Load or store.
    pub kind: AccessKind,
    /// For a store, what is stored.
    pub stored: Option<Stored>,
    /// For a load, whether it sign-extends.
    pub sign_extend: bool,
    /// Alignment is checked whatever the region (atomics).
    pub strict: bool,
}

fn tnum_text(t: Tnum) -> String {
    format!("({:#x}; {:#x})", t.value, t.mask)
}

/// `LD_IMM64`: a constant, a map pointer or a pointer into a map value.
///
/// # Errors
/// `fd %d is not pointing to valid bpf_map` and unsupported pseudo forms.
#[expect(
    clippy::too_many_arguments,
    reason = "the LD_IMM64 fields, unpacked as the decoder gives them"
)]
pub fn ld_imm64(
    cx: &Cx<'_>,
    st: &mut State,
    idx: usize,
    dst: Reg,
    pseudo: u8,
    imm: i32,
    next_imm: i32,
    out: &mut Out<'_>,
) -> Result<Flow, Reject> {
    check_write_reg(dst, idx, out)?;
    let reg = match pseudo {
        0 => RegState::scalar(Scalar::known(
            (u64::from(next_imm as u32) << 32) | u64::from(imm as u32),
        )),
        1 | 2 => {
            let info = cx.env.map(imm).ok_or_else(|| {
                Reject::new(
                    Errno::EBADF,
                    idx,
                    format!("fd {imm} is not pointing to valid bpf_map"),
                )
            })?;
            let map = MapRef::new(imm, info);
            if pseudo == 1 {
                RegState {
                    map: Some(map),
                    ..RegState::pointer(RegType::MapPtr)
                }
            } else {
                RegState {
                    map: Some(map),
                    off: next_imm,
                    ..RegState::pointer(RegType::MapValue)
                }
            }
        }
        _ => {
            return Err(einval(
                idx,
                format!("unsupported bpf_ld_imm64 insn src {pseudo}"),
            ))
        }
    };
    st.cur_mut().regs[dst.index()] = reg;
    Ok(Flow::Next)
}

/// Legacy packet loads (`check_ld_abs`).
///
/// # Errors
/// Program type without skb access, R6 not the context, an unreadable index register.
pub fn ld_abs(
    cx: &Cx<'_>,
    st: &mut State,
    idx: usize,
    size: Size,
    src: Option<Reg>,
    out: &mut Out<'_>,
) -> Result<Flow, Reject> {
    if !cx.prog_type.ld_abs_allowed() {
        return Err(einval(
            idx,
            "BPF_LD_[ABS|IND] instructions not allowed for this program type",
        ));
    }
    let r6 = read_reg(st, Reg::R6, idx, out)?;
    if st.frames.len() > 1 {
        return Err(einval(
            idx,
            "BPF_LD_[ABS|IND] instructions cannot be mixed with bpf-to-bpf calls",
        ));
    }
    if r6.ty != RegType::Ctx {
        return Err(einval(
            idx,
            "at the time of BPF_LD_ABS|IND R6 != pointer to skb",
        ));
    }
    if let Some(s) = src {
        read_reg(st, s, idx, out)?;
    }
    let frame = st.cur_mut();
    for r in 0..=5 {
        frame.regs[r] = RegState::NOT_INIT;
        out.scratch.reg(r as u8);
    }
    frame.regs[0] = RegState::scalar(num::unknown_of_size(size.bytes()));
    frame.regs[0].var = Scalar::unknown();
    Ok(Flow::Next)
}

/// Loads, stores and atomics.
///
/// # Errors
/// Any access rejection.
pub fn step(
    cx: &Cx<'_>,
    st: &mut State,
    idx: usize,
    op: &Op,
    out: &mut Out<'_>,
) -> Result<Flow, Reject> {
    match *op {
        Op::Load {
            size,
            sign_extend,
            dst,
            src,
            off,
        } => {
            let base = read_reg(st, src, idx, out)?;
            check_write_reg(dst, idx, out)?;
            let acc = Access {
                regno: src,
                off: i32::from(off),
                size: size.bytes(),
                kind: AccessKind::Read,
                stored: None,
                sign_extend,
                strict: false,
            };
            let v = access(cx, st, idx, acc, out)?;
            out.note_base_type(idx, base.ty)?;
            st.cur_mut().regs[dst.index()] = v.unwrap_or_else(RegState::unknown);
        }
        Op::StoreReg {
            size,
            dst,
            src,
            off,
        } => {
            let mut value = read_reg(st, src, idx, out)?;
            let base = read_reg(st, dst, idx, out)?;
            if cx.privilege.bpf_capable() {
                spill_id(
                    st,
                    &mut value,
                    &base,
                    i64::from(off),
                    size.bytes(),
                    src,
                    out,
                );
            }
            let acc = Access {
                regno: dst,
                off: i32::from(off),
                size: size.bytes(),
                kind: AccessKind::Write,
                stored: Some(Stored::Reg(value)),
                sign_extend: false,
                strict: false,
            };
            access(cx, st, idx, acc, out)?;
            out.note_base_type(idx, base.ty)?;
        }
        Op::StoreImm {
            size,
            dst,
            off,
            imm,
        } => {
            let base = read_reg(st, dst, idx, out)?;
            let acc = Access {
                regno: dst,
                off: i32::from(off),
                size: size.bytes(),
                kind: AccessKind::Write,
                stored: Some(Stored::Imm(imm)),
                sign_extend: false,
                strict: false,
            };
            access(cx, st, idx, acc, out)?;
            out.note_base_type(idx, base.ty)?;
        }
        Op::Atomic {
            size,
            op,
            dst,
            src,
            off,
        } => {
            let value = read_reg(st, src, idx, out)?;
            let base = read_reg(st, dst, idx, out)?;
            if op == AtomicOp::Cmpxchg {
                read_reg(st, Reg::R0, idx, out)?;
            }
            if matches!(
                base.ty,
                RegType::Ctx | RegType::Packet | RegType::PacketMeta
            ) {
                return Err(eacces(
                    idx,
                    format!(
                        "BPF_ATOMIC stores into R{} {} is not allowed",
                        dst.num(),
                        base.ty.kernel_name()
                    ),
                ));
            }
            let fetch_into = match op {
                AtomicOp::Cmpxchg => Some(Reg::R0),
                AtomicOp::Xchg => Some(src),
                AtomicOp::Add { fetch }
                | AtomicOp::Or { fetch }
                | AtomicOp::And { fetch }
                | AtomicOp::Xor { fetch } => fetch.then_some(src),
            };
            if let Some(r) = fetch_into {
                check_write_reg(r, idx, out)?;
            }
            let mut acc = Access {
                regno: dst,
                off: i32::from(off),
                size: size.bytes(),
                kind: AccessKind::Read,
                stored: None,
                sign_extend: false,
                strict: true,
            };
            // `check_atomic_rmw`: the old value is fetched as a plain load of the location
            // would fill a register (a spilled constant stays known, a spilled pointer stays a
            // pointer), before the write is checked.
            let old = access(cx, st, idx, acc, out)?;
            if let Some(r) = fetch_into {
                st.cur_mut().regs[r.index()] =
                    old.unwrap_or_else(|| RegState::scalar(num::unknown_of_size(size.bytes())));
            }
            // The write has no register (`value_regno = -1`): stack bytes become data
            // (STACK_MISC), any spill there is gone.
            acc.kind = AccessKind::Write;
            acc.stored = None;
            let _ = value;
            access(cx, st, idx, acc, out)?;
        }
        _ => {}
    }
    Ok(Flow::Next)
}

/// `get_reg_width(reg) <= 8 * size`: the scalar's unsigned maximum fits in `size` bytes.
fn value_fits(value: &RegState, size: u32) -> bool {
    64 - value.var.umax.leading_zeros() <= 8 * size
}

/// `check_stack_write_fixed_off` of a privileged load: a scalar spilled to a fixed,
/// aligned stack slot gets an id first (`assign_scalar_id_before_mov`), shared by the register
/// and its spilled copy, so that a bound learnt on one applies to the other.
fn spill_id(
    st: &mut State,
    value: &mut RegState,
    base: &RegState,
    insn_off: i64,
    size: u32,
    src: Reg,
    out: &mut Out<'_>,
) {
    if base.ty != RegType::Stack || value.ty != RegType::Scalar || !value_fits(value, size) {
        return;
    }
    let Some(v) = base.var.const_value() else {
        return;
    };
    let at = i64::from(base.off) + v as i64 + insn_off;
    if at % 8 != 0 || !(-i64::from(MAX_STACK)..0).contains(&at) {
        return;
    }
    if value.add_const {
        value.id = 0;
        value.off = 0;
        value.add_const = false;
    }
    if value.id == 0 && value.var.const_value().is_none() {
        value.id = out.new_id();
    }
    st.cur_mut().regs[src.index()] = *value;
}

/// `check_mem_access`: checks one access through register `acc.regno` and performs its
/// effect on the stack; returns the loaded value for a load.
///
/// # Errors
/// The kernel's message for the region.
pub fn access(
    cx: &Cx<'_>,
    st: &mut State,
    idx: usize,
    acc: Access,
    out: &mut Out<'_>,
) -> Result<Option<RegState>, Reject> {
    let reg = st.cur().regs[acc.regno.index()];
    let r = acc.regno.num();
    let size = acc.size;
    super::align::check_ptr_alignment(&reg, acc.off, size, cx.strict_alignment, acc.strict)
        .map_err(|m| eacces(idx, m))?;
    // `off += reg->off` in C int arithmetic: a scalar's `off` is a linked delta of any size.
    let off = acc.off.wrapping_add(reg.off);
    let loaded = match reg.ty {
        RegType::MapValue => {
            let map = reg
                .map
                .ok_or_else(|| eacces(idx, "map value without a map"))?;
            if acc.kind == AccessKind::Write {
                super::compat::check_value_write(idx, map.type_id, map.value_size, off, size)?;
            }
            check_mem_region(
                idx,
                r,
                &reg.var,
                off,
                size,
                map.value_size,
                "map value, value_size",
            )?;
            acc.kind.eq(&AccessKind::Read).then(RegState::unknown)
        }
        RegType::RingbufMem => {
            check_mem_region(idx, r, &reg.var, off, size, reg.range, "memory, mem_size")?;
            acc.kind.eq(&AccessKind::Read).then(RegState::unknown)
        }
        RegType::Ctx => {
            // `__check_ptr_off_reg`: a negative fixed offset has its own message.
            if reg.off < 0 {
                return Err(eacces(
                    idx,
                    format!("negative offset ctx ptr R{r} off={} disallowed", reg.off),
                ));
            }
            if reg.off != 0 {
                return Err(eacces(
                    idx,
                    format!(
                        "dereference of modified ctx ptr R{r} off={} disallowed",
                        reg.off
                    ),
                ));
            }
            if reg.var.const_value() != Some(0) {
                return Err(eacces(
                    idx,
                    format!(
                        "variable ctx access var_off={} disallowed",
                        tnum_text(reg.var.var_off)
                    ),
                ));
            }
            let field = if cx.privilege.bpf_capable() {
                cx.env.ctx_access(cx.prog_type, off, size, acc.kind)
            } else {
                cx.env
                    .ctx_access_unprivileged(cx.prog_type, off, size, acc.kind)
            };
            let field = field.ok_or_else(|| {
                eacces(
                    idx,
                    format!("invalid bpf_context access off={off} size={size}"),
                )
            })?;
            // A sign-extending load of a pointer field is refused (`info->is_ldsx` in the
            // program types' `is_valid_access`).
            if acc.sign_extend && field != CtxField::Scalar {
                return Err(eacces(
                    idx,
                    format!("invalid bpf_context access off={off} size={size}"),
                ));
            }
            match (acc.kind, field) {
                (AccessKind::Write, _) => None,
                (AccessKind::Read, CtxField::Scalar) => Some(RegState::unknown()),
                (AccessKind::Read, CtxField::PacketData) => {
                    Some(RegState::pointer(RegType::Packet))
                }
                (AccessKind::Read, CtxField::PacketEnd) => {
                    Some(RegState::pointer(RegType::PacketEnd))
                }
                (AccessKind::Read, CtxField::PacketMeta) => {
                    Some(RegState::pointer(RegType::PacketMeta))
                }
            }
        }
        RegType::Stack => stack_access(st, idx, &reg, r, off, acc, out)?,
        RegType::MapPtr => {
            let map = reg
                .map
                .ok_or_else(|| eacces(idx, "map pointer without a map"))?;
            Some(super::map_ptr::access(idx, r, &map, off, size, acc.kind)?)
        }
        RegType::BtfPtr | RegType::UntrustedMem => Some(super::map_ptr::btf_access(
            idx, r, &reg, off, size, acc.kind,
        )?),
        RegType::Packet | RegType::PacketMeta => {
            if acc.kind == AccessKind::Write && !cx.prog_type.direct_packet_access() {
                return Err(eacces(idx, "cannot write into packet"));
            }
            if reg.var.smin < 0 {
                return Err(eacces(idx, format!("R{r} min value is negative, either use unsigned index or do a if (index >=0) check.")));
            }
            if crate::state::pkt_range_is_end_marker(reg.range) {
                // `check_packet_access`: a pointer at or past the end reads nothing.
                return Err(Reject::new(
                    Errno::EINVAL,
                    idx,
                    format!("R{r} offset is outside of the packet"),
                ));
            }
            let ok = off >= 0 && i64::from(off) + i64::from(size) <= i64::from(reg.range);
            if !ok {
                return Err(eacces(
                    idx,
                    format!(
                        "invalid access to packet, off={off} size={size}, R{r}(id={},off={off},r={})\nR{r} offset is outside of the packet",
                        reg.id, reg.range
                    ),
                ));
            }
            acc.kind.eq(&AccessKind::Read).then(RegState::unknown)
        }
        _ => {
            return Err(eacces(
                idx,
                format!("R{r} invalid mem access '{}'", reg.ty.kernel_name()),
            ))
        }
    };
    Ok(loaded.map(|mut v| {
        if v.ty == RegType::Scalar && size < 8 {
            if acc.sign_extend {
                v.var.coerce_to_size_sx(size as u8);
            } else {
                v.var.coerce_to_size(size as u8);
            }
        }
        v
    }))
}

/// `check_mem_region_access` for a region of `mem_size` bytes (map values).
pub(crate) fn check_mem_region(
    idx: usize,
    r: u8,
    var: &Scalar,
    off: i32,
    size: u32,
    mem_size: u32,
    what: &str,
) -> Result<(), Reject> {
    let off = i64::from(off);
    let fits = |o: i64| {
        o >= 0
            && i64::from(size) <= i64::from(mem_size)
            && o + i64::from(size) <= i64::from(mem_size)
    };
    if var.smin < 0
        && (var.smin == i64::MIN
            || off
                .checked_add(var.smin)
                .is_none_or(|v| v != i64::from(v as i32))
            || var.smin + off < 0)
    {
        return Err(eacces(idx, format!("R{r} min value is negative, either use unsigned index or do a if (index >=0) check.")));
    }
    let lo = var.smin + off;
    if !fits(lo) {
        return Err(eacces(idx, format!("invalid access to {what}={mem_size} off={lo} size={size}\nR{r} min value is outside of the allowed memory range")));
    }
    if var.umax >= (1 << 29) {
        return Err(eacces(
            idx,
            format!("R{r} unbounded memory access, make sure to bounds check any such access"),
        ));
    }
    let hi = var.umax as i64 + off;
    if !fits(hi) {
        return Err(eacces(idx, format!("invalid access to {what}={mem_size} off={hi} size={size}\nR{r} max value is outside of the allowed memory range")));
    }
    Ok(())
}

/// The stack frame a stack pointer points into.
fn frame_of<'s>(st: &'s mut State, reg: &RegState) -> &'s mut Frame {
    let i = usize::from(reg.frameno).min(st.frames.len() - 1);
    &mut st.frames[i]
}

fn stack_access(
    st: &mut State,
    idx: usize,
    reg: &RegState,
    r: u8,
    off: i32,
    acc: Access,
    out: &mut Out<'_>,
) -> Result<Option<RegState>, Reject> {
    let size = acc.size as i32;
    let extra = if acc.kind == AccessKind::Read {
        " read from"
    } else {
        " write to"
    };
    let Some(c) = reg.var.const_value() else {
        return variable_stack_access(st, idx, reg, off, acc, extra, out);
    };
    let min_off = c as i64 + i64::from(off);
    let max_off = min_off + i64::from(size);
    if min_off < -i64::from(MAX_STACK) || min_off > -1 || max_off > 0 {
        let errno = if min_off < -i64::from(MAX_STACK) || min_off > -1 {
            Errno::EACCES
        } else {
            Errno::EINVAL
        };
        return Err(Reject::new(
            errno,
            idx,
            format!("invalid{extra} stack R{r} off={off} size={size}"),
        ));
    }
    let off = min_off as i32;
    // `check_stack_write_fixed_off`: a stack pointer may not be spilled into a caller's frame.
    if let (AccessKind::Write, Some(Stored::Reg(v))) = (acc.kind, &acc.stored) {
        if v.ty == RegType::Stack && size == 8 && usize::from(reg.frameno) + 1 < st.frames.len() {
            return Err(einval(
                idx,
                "cannot spill pointers to stack into stack frame of the caller",
            ));
        }
    }
    let frame = frame_of(st, reg);
    frame.grow_stack((-off) as usize);
    out.note_depth(frame.subprog, (-off) as usize);
    out.scratch.slot_at(off);
    match acc.kind {
        AccessKind::Write => {
            stack_write(frame, idx, off, acc.size, acc.stored)?;
            Ok(None)
        }
        AccessKind::Read => stack_read(frame, idx, off, acc.size).map(Some),
    }
}

#[allow(clippy::too_many_arguments)]
fn variable_stack_access(
    st: &mut State,
    idx: usize,
    reg: &RegState,
    off: i32,
    acc: Access,
    extra: &str,
    out: &mut Out<'_>,
) -> Result<Option<RegState>, Reject> {
    let r = acc.regno.num();
    let size = i64::from(acc.size);
    if reg.var.smax >= 1 << 29 || reg.var.smin <= -(1 << 29) {
        return Err(eacces(
            idx,
            format!("invalid unbounded variable-offset{extra} stack R{r}"),
        ));
    }
    let min_off = reg.var.smin + i64::from(off);
    let max_off = reg.var.smax + i64::from(off) + size;
    if min_off < -i64::from(MAX_STACK) || min_off > -1 || max_off > 0 {
        // Below the stack is EACCES; reaching above the frame pointer is EINVAL.
        let errno = if min_off < -i64::from(MAX_STACK) || min_off > -1 {
            Errno::EACCES
        } else {
            Errno::EINVAL
        };
        return Err(Reject::new(
            errno,
            idx,
            format!(
                "invalid variable-offset{extra} stack R{r} var_off={} off={off} size={size}",
                tnum_text(reg.var.var_off)
            ),
        ));
    }
    let frame = frame_of(st, reg);
    frame.grow_stack((-min_off) as usize);
    // `grow_stack_state`: the subprogram's stack depth counts the lowest byte reachable.
    out.note_depth(frame.subprog, (-min_off) as usize);
    // Every slot the access may touch shows in the log after it (`mark_stack_slot_scratched`).
    for o in min_off..max_off {
        out.scratch.slot_at(o as i32);
    }
    match acc.kind {
        AccessKind::Write => {
            // Every byte that may be written becomes data (`check_stack_write_var_off`).
            let zero = matches!(acc.stored, Some(Stored::Imm(0)))
                || matches!(acc.stored, Some(Stored::Reg(v)) if v.is_null());
            for o in min_off..max_off {
                let (slot, b) = Frame::byte_pos(o as i32);
                let s = &mut frame.stack[slot];
                if s.bytes.contains(&SlotType::Spill) {
                    for x in &mut s.bytes {
                        if *x != SlotType::Invalid {
                            *x = SlotType::Misc;
                        }
                    }
                    s.spilled = RegState::NOT_INIT;
                }
                if !(zero && s.bytes[b] == SlotType::Zero) {
                    s.bytes[b] = SlotType::Misc;
                }
            }
            Ok(None)
        }
        AccessKind::Read => {
            // Privileged programs may read uninitialised stack (`allow_uninit_stack`).
            let all_zero = (min_off..max_off).all(|o| {
                let (slot, b) = Frame::byte_pos(o as i32);
                frame.stack[slot].bytes[b] == SlotType::Zero
            });
            Ok(Some(if all_zero {
                RegState::scalar(Scalar::known(0))
            } else {
                RegState::unknown()
            }))
        }
    }
}

/// `check_stack_write_fixed_off` for a privileged program.
fn stack_write(
    frame: &mut Frame,
    idx: usize,
    off: i32,
    size: u32,
    stored: Option<Stored>,
) -> Result<(), Reject> {
    let (spi, _) = Frame::byte_pos(off);
    let aligned = off % 8 == 0;
    let spill = |frame: &mut Frame, v: RegState, size: u32| {
        let slot = &mut frame.stack[spi];
        slot.spilled = v;
        for i in 0..8 {
            // Bytes 7..(8-size) hold the spill; the rest become data unless zero or unset.
            if i >= 8 - size as usize {
                slot.bytes[i] = SlotType::Spill;
            } else if slot.bytes[i] == SlotType::Spill {
                slot.bytes[i] = SlotType::Misc;
            }
        }
    };
    match stored {
        Some(Stored::Reg(v)) if aligned && v.ty == RegType::Scalar => {
            let mut v = v;
            // A narrowing spill breaks the link to the register.
            if !value_fits(&v, size) {
                v.id = 0;
            }
            spill(frame, v, size);
        }
        Some(Stored::Imm(imm)) if aligned => {
            spill(
                frame,
                RegState::scalar(Scalar::known(imm as i64 as u64)),
                size,
            );
        }
        Some(Stored::Reg(v)) if v.ty.is_pointer() => {
            if size != 8 {
                return Err(eacces(idx, "invalid size of register spill"));
            }
            spill(frame, v, 8);
        }
        _ => {
            let zero = matches!(stored, Some(Stored::Imm(0)))
                || matches!(stored, Some(Stored::Reg(v)) if v.is_null());
            let slot = &mut frame.stack[spi];
            if slot.bytes.contains(&SlotType::Spill) {
                for b in &mut slot.bytes {
                    if *b != SlotType::Invalid {
                        *b = SlotType::Misc;
                    }
                }
            }
            slot.spilled = RegState::NOT_INIT;
            let k = (-off - 1) as usize;
            for i in 0..size as usize {
                slot.bytes[(k - i) % 8] = if zero { SlotType::Zero } else { SlotType::Misc };
            }
        }
    }
    Ok(())
}

/// `check_stack_read_fixed_off` for a privileged program.
fn stack_read(frame: &mut Frame, idx: usize, off: i32, size: u32) -> Result<RegState, Reject> {
    let (spi, _) = Frame::byte_pos(off);
    let k = (-off - 1) as usize;
    let slot = frame.stack[spi];
    let bytes: Vec<SlotType> = (0..size as usize)
        .map(|i| slot.bytes[(k - i) % 8])
        .collect();
    if slot.bytes[7] == SlotType::Spill {
        let reg = slot.spilled;
        let spill_size = slot
            .bytes
            .iter()
            .rev()
            .take_while(|b| **b == SlotType::Spill)
            .count() as u32;
        if size != 8 || spill_size != 8 {
            if reg.ty != RegType::Scalar {
                return Err(eacces(idx, "invalid size of register fill"));
            }
            if size <= spill_size && off % 8 == 0 {
                let mut v = reg;
                // A fill that holds the whole value keeps the link to the spill; a narrowing
                // one breaks it.
                if !value_fits(&reg, size) {
                    v.id = 0;
                }
                return Ok(v);
            }
            let spills = bytes.iter().filter(|b| **b == SlotType::Spill).count() as u32;
            let zeros = bytes.iter().filter(|b| **b == SlotType::Zero).count() as u32;
            if (spills == size && reg.var.const_value() == Some(0)) || zeros == size {
                return Ok(RegState::scalar(Scalar::known(0)));
            }
            return Ok(RegState::unknown());
        }
        if slot.bytes.iter().any(|b| *b != SlotType::Spill) {
            return Err(eacces(idx, "corrupted spill memory"));
        }
        return Ok(reg);
    }
    if bytes.iter().all(|b| *b == SlotType::Zero) {
        Ok(RegState::scalar(Scalar::known(0)))
    } else {
        Ok(RegState::unknown())
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in tests a panic is the failure report")]
mod tests {
    //! Expected messages and verdicts are Linux 6.18's (see tests/data/cases.txt, `stack/*`,
    //! `ctx/*`, `map/*`, `pkt/*`).
    use super::super::test_util::run;
    use crate::env::ProgType::{SocketFilter, Xdp};
    use crate::state::{MapRef, RegState, RegType, SlotType, State};
    use bpfkit_isa::{Op, Reg, Size};

    fn load(size: Size, dst: Reg, src: Reg, off: i16) -> Op {
        Op::Load {
            size,
            sign_extend: false,
            dst,
            src,
            off,
        }
    }

    #[test]
    fn spilled_pointers_fill_back_and_narrow_spills_are_refused() {
        let mut st = State::entry();
        run(
            &mut st,
            Op::StoreReg {
                size: Size::DW,
                dst: Reg::R10,
                src: Reg::R1,
                off: -8,
            },
            SocketFilter,
        )
        .unwrap();
        assert!(st.cur().stack[0].is_full_spill());
        run(&mut st, load(Size::DW, Reg::R2, Reg::R10, -8), SocketFilter).unwrap();
        assert_eq!(st.cur().regs[2].ty, RegType::Ctx);
        let err = run(
            &mut st,
            Op::StoreReg {
                size: Size::W,
                dst: Reg::R10,
                src: Reg::R1,
                off: -16,
            },
            SocketFilter,
        )
        .unwrap_err();
        assert_eq!(err.message, "invalid size of register spill");
        let err = run(&mut st, load(Size::W, Reg::R2, Reg::R10, -8), SocketFilter).unwrap_err();
        assert_eq!(err.message, "invalid size of register fill");
    }

    #[test]
    fn stack_bounds_and_alignment() {
        let mut st = State::entry();
        let err = run(
            &mut st,
            Op::StoreImm {
                size: Size::DW,
                dst: Reg::R10,
                off: 0,
                imm: 0,
            },
            SocketFilter,
        )
        .unwrap_err();
        assert_eq!(err.message, "invalid write to stack R10 off=0 size=8");
        let err = run(
            &mut st,
            Op::StoreImm {
                size: Size::DW,
                dst: Reg::R10,
                off: -4,
                imm: 0,
            },
            SocketFilter,
        )
        .unwrap_err();
        assert_eq!(err.message, "misaligned stack access off 0+0+-4 size 8");
        // A zero store makes the bytes known zero; reading them gives 0.
        run(
            &mut st,
            Op::StoreImm {
                size: Size::W,
                dst: Reg::R10,
                off: -12,
                imm: 0,
            },
            SocketFilter,
        )
        .unwrap();
        assert_eq!(st.cur().stack[1].bytes[..4], [SlotType::Zero; 4]);
        run(&mut st, load(Size::W, Reg::R0, Reg::R10, -12), SocketFilter).unwrap();
        assert_eq!(st.cur().regs[0].const_scalar(), Some(0));
    }

    #[test]
    fn context_rules_come_from_the_environment() {
        let mut st = State::entry();
        run(&mut st, load(Size::W, Reg::R0, Reg::R1, 0), SocketFilter).unwrap();
        assert_eq!(st.cur().regs[0].var.umax, 0xffff_ffff);
        let err = run(&mut st, load(Size::W, Reg::R0, Reg::R1, 200), SocketFilter).unwrap_err();
        assert_eq!(err.message, "invalid bpf_context access off=200 size=4");
        run(&mut st, load(Size::W, Reg::R2, Reg::R1, 0), Xdp).unwrap();
        assert_eq!(st.cur().regs[2].ty, RegType::Packet);
    }

    #[test]
    fn map_value_accesses_stay_inside_the_value() {
        let mut st = State::entry();
        let map = MapRef::new(0, super::super::test_util::env().maps[0]);
        st.cur_mut().regs[0] = RegState {
            map: Some(map),
            ..RegState::pointer(RegType::MapValue)
        };
        run(&mut st, load(Size::DW, Reg::R1, Reg::R0, 0), SocketFilter).unwrap();
        let err = run(&mut st, load(Size::DW, Reg::R1, Reg::R0, 4), SocketFilter).unwrap_err();
        assert_eq!(
            err.message.lines().next(),
            Some("invalid access to map value, value_size=8 off=4 size=8")
        );
        st.cur_mut().regs[0].ty = RegType::MapValueOrNull;
        let err = run(&mut st, load(Size::DW, Reg::R1, Reg::R0, 0), SocketFilter).unwrap_err();
        assert_eq!(err.message, "R0 invalid mem access 'map_value_or_null'");
    }

    #[test]
    fn packet_reads_need_a_proven_range() {
        let mut st = State::entry();
        st.cur_mut().regs[2] = RegState {
            range: 14,
            ..RegState::pointer(RegType::Packet)
        };
        run(&mut st, load(Size::B, Reg::R0, Reg::R2, 13), Xdp).unwrap();
        let err = run(&mut st, load(Size::B, Reg::R0, Reg::R2, 14), Xdp).unwrap_err();
        assert_eq!(
            err.message.lines().next(),
            Some("invalid access to packet, off=14 size=1, R2(id=0,off=14,r=14)")
        );
    }
}
