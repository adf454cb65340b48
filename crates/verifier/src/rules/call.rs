//! Calls and exits (`check_helper_call`, `check_func_arg`, `check_func_call`,
//! `prepare_func_exit`, the exit checks of `do_check`).

use super::mem::{access, Access};
use super::{eacces, einval, read_reg, Cx, Flow, Out};
use crate::env::{AccessKind, ArgType, HelperProto, RetType};
use crate::reject::{Errno, Reject};
use crate::scalar::Scalar;
use crate::state::{Frame, MapRef, RegState, RegType, State, MAX_FRAMES};
use bpfkit_isa::{CallTarget, Reg};

/// One past the largest helper id Linux 6.18 defines (`__BPF_FUNC_MAX_ID`).
pub const FUNC_MAX_ID: i32 = 212;

/// Largest size a helper memory argument may have (`BPF_MAX_VAR_SIZ`).
const MAX_VAR_SIZ: u64 = 1 << 29;

/// The kernel's list of types accepted for memory arguments (`mem_types`), as it prints them.
const MEM_TYPES: &str =
    "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_";

/// A call instruction.
///
/// # Errors
/// Unknown or disallowed helpers, argument mismatches, too deep calls.
pub fn call(
    cx: &Cx<'_>,
    st: &mut State,
    idx: usize,
    target: CallTarget,
    out: &mut Out<'_>,
) -> Result<Flow, Reject> {
    match target {
        CallTarget::Helper(id) => helper_call(cx, st, idx, id, out),
        CallTarget::Local(off) => local_call(cx, st, idx, off),
        CallTarget::Kfunc { .. } => Err(einval(idx, "calling kernel functions is not supported")),
    }
}

fn local_call(cx: &Cx<'_>, st: &mut State, idx: usize, off: i32) -> Result<Flow, Reject> {
    let target = (idx as i64 + 1 + i64::from(off)) as usize;
    if st.frames.len() >= MAX_FRAMES {
        return Err(Reject::new(
            Errno::E2BIG,
            idx,
            format!(
                "the call stack of {} frames is too deep",
                st.frames.len() + 1
            ),
        ));
    }
    let subprog = cx.cfg.subprog_at(target).unwrap_or(0);
    let frameno = st.frames.len() as u8;
    let mut callee = Frame::new(frameno, idx, subprog);
    {
        let caller = st.cur_mut();
        for r in 1..=5 {
            callee.regs[r] = caller.regs[r];
        }
        for r in 0..=5 {
            caller.regs[r] = RegState::NOT_INIT;
        }
    }
    st.frames.push(callee);
    Ok(Flow::Call(target))
}

/// The exit instruction: return to the caller or end the path.
///
/// # Errors
/// `R0 !read_ok`, returning a pointer to the callee's stack.
pub fn exit(st: &mut State, idx: usize, out: &mut Out<'_>) -> Result<Flow, Reject> {
    if st.frames.len() == 1 {
        // `check_resource_leak` comes before `check_return_code` reads R0.
        if let Some((id, at)) = st.refs.first() {
            return Err(einval(
                idx,
                format!(
                    "Unreleased reference id={id} alloc_insn={at}\nBPF_EXIT instruction in main prog would lead to reference leak"
                ),
            ));
        }
        read_reg(st, Reg::R0, idx, out)?;
        return Ok(Flow::Exit);
    }
    // `prepare_func_exit`: no stack pointer leaves a subprogram, not even one into a caller's
    // frame ("let's be conservative", says the kernel).
    let r0 = st.cur().regs[0];
    if r0.ty == RegType::Stack {
        return Err(einval(idx, "cannot return stack pointer to the caller"));
    }
    let callsite = st.cur().callsite;
    st.frames.pop();
    st.cur_mut().regs[0] = r0;
    Ok(Flow::Return(callsite + 1))
}

fn helper_name(cx: &Cx<'_>, id: i32) -> &'static str {
    cx.env.helper_name(id).unwrap_or("unknown")
}

/// `BPF_FUNC_get_smp_processor_id`.
const BPF_FUNC_GET_SMP_PROCESSOR_ID: i32 = 8;

fn helper_call(
    cx: &Cx<'_>,
    st: &mut State,
    idx: usize,
    id: i32,
    out: &mut Out<'_>,
) -> Result<Flow, Reject> {
    if !(0..FUNC_MAX_ID).contains(&id) {
        return Err(einval(
            idx,
            format!("invalid func {}#{id}", helper_name(cx, id)),
        ));
    }
    let Some(proto) = cx.env.helper(cx.prog_type, id) else {
        return Err(einval(
            idx,
            format!(
                "program of this type cannot use helper {}#{id}",
                helper_name(cx, id)
            ),
        ));
    };
    if proto.gpl_only && !cx.gpl {
        return Err(einval(
            idx,
            "cannot call GPL-restricted function from non-GPL compatible program",
        ));
    }
    let meta = check_args(cx, st, idx, id, &proto, out)?;
    let map = meta.map;
    if let Some(m) = map {
        super::compat::check(idx, m.type_id, id, helper_name(cx, id))?;
    }
    if let Some(ref_id) = meta.release {
        // `release_reference`: the record and every copy of it are gone.
        if !st.refs.iter().any(|(i, _)| *i == ref_id) {
            return Err(eacces(idx, format!("release reference {ref_id} not found")));
        }
        st.refs.retain(|(i, _)| *i != ref_id);
        st.for_each_reg(|r| {
            if r.ref_obj_id == ref_id {
                *r = RegState::unknown();
            }
        });
    }
    if proto.changes_pkt_data {
        // `clear_all_pkt_pointers`: a privileged program keeps them as unknown numbers.
        st.for_each_reg(|r| {
            if matches!(
                r.ty,
                RegType::Packet | RegType::PacketEnd | RegType::PacketMeta
            ) {
                *r = RegState::unknown();
            }
        });
    }
    for r in 0..=5 {
        st.cur_mut().regs[r] = RegState::NOT_INIT;
    }
    out.scratch.reg(0);
    let r0 = match proto.ret {
        // `do_refine_retval_range`: the CPU number is below `nr_cpu_ids`.
        RetType::Integer if id == BPF_FUNC_GET_SMP_PROCESSOR_ID => match cx.env.nr_cpu_ids() {
            Some(n) => RegState::scalar(Scalar::unsigned_range(0, u64::from(n.max(1)) - 1)),
            None => RegState::unknown(),
        },
        RetType::Integer => RegState::unknown(),
        RetType::Void => RegState::NOT_INIT,
        RetType::PtrToMapValueOrNull => {
            let map = map.ok_or_else(|| einval(idx, "kernel subsystem misconfigured verifier"))?;
            // An array element under a constant in-range key always exists
            // (`can_elide_value_nullness`).
            const ARRAY: u32 = 2;
            const PERCPU_ARRAY: u32 = 6;
            if matches!(map.type_id, ARRAY | PERCPU_ARRAY)
                && meta
                    .const_key
                    .is_some_and(|k| k < u64::from(map.max_entries))
            {
                out.scratch.reg(0);
                st.cur_mut().regs[0] = RegState {
                    map: Some(map),
                    ..RegState::pointer(RegType::MapValue)
                };
                return Ok(Flow::Next);
            }
            // A map of maps yields its inner map, or NULL (`inner_map_meta`): an inner map
            // gets a handle of its own, negative so that no program can name it.
            const ARRAY_OF_MAPS: u32 = 12;
            const HASH_OF_MAPS: u32 = 13;
            if matches!(map.type_id, ARRAY_OF_MAPS | HASH_OF_MAPS) {
                let inner = cx
                    .env
                    .inner_map(map.handle)
                    .ok_or_else(|| einval(idx, "kernel subsystem misconfigured verifier"))?;
                RegState {
                    map: Some(MapRef::new(-1 - map.handle, inner)),
                    id: out.new_id(),
                    ..RegState::pointer(RegType::MapPtrOrNull)
                }
            } else {
                RegState {
                    map: Some(map),
                    id: out.new_id(),
                    ..RegState::pointer(RegType::MapValueOrNull)
                }
            }
        }
        RetType::PtrToRingbufMemOrNull => {
            // The kernel draws a maybe-NULL id, then the reference id that replaces it.
            out.new_id();
            let id = out.new_id();
            st.refs.push((id, idx));
            RegState {
                id,
                ref_obj_id: id,
                range: meta.alloc_size,
                ..RegState::pointer(RegType::RingbufMemOrNull)
            }
        }
    };
    st.cur_mut().regs[0] = r0;
    Ok(Flow::Next)
}

fn type_error(idx: usize, r: usize, reg: &RegState, expected: &str) -> Reject {
    eacces(
        idx,
        format!("R{r} type={} expected={expected}", reg.ty.kernel_name()),
    )
}

fn is_mem_ptr(t: RegType) -> bool {
    matches!(
        t,
        RegType::Stack
            | RegType::Packet
            | RegType::PacketMeta
            | RegType::MapValue
            | RegType::RingbufMem
    )
}

/// What the arguments told the call (`struct bpf_call_arg_meta`).
#[derive(Default)]
struct Meta {
    map: Option<MapRef>,
    /// The key, when it is a constant on the stack (`const_map_key`).
    const_key: Option<u64>,
    alloc_size: u32,
    release: Option<u32>,
}

/// `get_constant_map_key`: the value of a `key_size`-byte key on the stack when it is known
/// zero bytes or a spilled constant of exactly that size.
fn constant_key(st: &State, key: &RegState, key_size: u32) -> Option<u64> {
    if key.ty != RegType::Stack {
        return None;
    }
    let off = i64::from(key.off) + key.var.const_value()? as i64;
    if !(-512..0).contains(&off) {
        return None;
    }
    let slot = (-off - 1) as usize;
    let frame = st.frames.get(usize::from(key.frameno))?;
    let s = frame.stack.get(slot / 8)?;
    let k = slot % 8;
    let run =
        |t: crate::state::SlotType| (0..=k).rev().take_while(|&i| s.bytes[i] == t).count() as u32;
    if run(crate::state::SlotType::Zero) >= key_size {
        return Some(0);
    }
    if s.bytes[7] != crate::state::SlotType::Spill || s.spilled.ty != RegType::Scalar {
        return None;
    }
    if run(crate::state::SlotType::Spill) != key_size {
        return None;
    }
    s.spilled.var.const_value()
}

/// `check_func_arg` for every argument.
fn check_args(
    cx: &Cx<'_>,
    st: &mut State,
    idx: usize,
    id: i32,
    proto: &HelperProto,
    out: &mut Out<'_>,
) -> Result<Meta, Reject> {
    let mut map: Option<MapRef> = None;
    let mut meta = Meta::default();
    for (i, arg) in proto.args.iter().enumerate() {
        let r = i + 1;
        if *arg == ArgType::DontCare {
            break;
        }
        let reg = read_reg(st, Reg::new(r as u8).unwrap_or(Reg::R1), idx, out)?;
        match arg {
            ArgType::DontCare => {}
            ArgType::Anything => super::unpriv::anything_arg(cx, idx, r, &reg)?,
            ArgType::ConstMapPtr => {
                if reg.ty != RegType::MapPtr {
                    return Err(type_error(idx, r, &reg, "map_ptr"));
                }
                let m = reg.map.ok_or_else(|| type_error(idx, r, &reg, "map_ptr"))?;
                let name = helper_name(cx, id);
                if name == "bpf_tail_call" && m.type_id != 3 {
                    return Err(einval(idx, "expected prog array map for tail call"));
                }
                map = Some(m);
            }
            ArgType::ConstAllocSizeOrZero => {
                let Some(v) = reg.const_scalar() else {
                    return Err(eacces(idx, format!("R{r} is not a known constant'")));
                };
                meta.alloc_size = v as u32;
            }
            ArgType::PtrToRingbufMemRelease => {
                if reg.ty != RegType::RingbufMem {
                    return Err(type_error(idx, r, &reg, "ringbuf_mem"));
                }
                if reg.off != 0 || !reg.var.is_zero() {
                    return Err(einval(
                        idx,
                        format!(
                            "R{r} must have zero offset when passed to release func or trusted arg to kfunc"
                        ),
                    ));
                }
                meta.release = Some(reg.ref_obj_id);
            }
            ArgType::PtrToCtx => {
                if reg.ty != RegType::Ctx {
                    return Err(type_error(idx, r, &reg, "ctx"));
                }
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
            }
            ArgType::PtrToMapKey | ArgType::PtrToMapValue => {
                if !is_mem_ptr(reg.ty) {
                    return Err(type_error(idx, r, &reg, MEM_TYPES));
                }
                let Some(m) = map else {
                    let what = if *arg == ArgType::PtrToMapKey {
                        "key"
                    } else {
                        "value"
                    };
                    return Err(eacces(
                        idx,
                        format!("invalid map_ptr to access map->{what}"),
                    ));
                };
                let size = if *arg == ArgType::PtrToMapKey {
                    m.key_size
                } else {
                    m.value_size
                };
                if size == 0 {
                    return Err(eacces(idx, "invalid zero-sized read"));
                }
                // `get_constant_map_key` answers only for a `bpf_capable` loader.
                if *arg == ArgType::PtrToMapKey && cx.privilege.bpf_capable() {
                    meta.const_key = constant_key(st, &reg, size);
                }
                helper_mem(cx, st, idx, r, size, AccessKind::Read, out)?;
            }
            ArgType::PtrToMemOrNull if reg.is_null() => {}
            ArgType::PtrToMem | ArgType::PtrToUninitMem | ArgType::PtrToMemOrNull => {
                if !is_mem_ptr(reg.ty) {
                    return Err(type_error(idx, r, &reg, MEM_TYPES));
                }
            }
            ArgType::ConstSize | ArgType::ConstSizeOrZero => {
                if reg.ty != RegType::Scalar {
                    return Err(type_error(idx, r, &reg, "scalar"));
                }
                let zero_ok = *arg == ArgType::ConstSizeOrZero;
                if reg.var.smin < 0 {
                    return Err(eacces(
                        idx,
                        format!(
                            "R{r} min value is negative, either use unsigned or 'var &= const'"
                        ),
                    ));
                }
                if reg.var.umin == 0 && !zero_ok {
                    return Err(eacces(
                        idx,
                        format!(
                            "R{r} invalid zero-sized read: u64=[{},{}]",
                            reg.var.umin, reg.var.umax
                        ),
                    ));
                }
                if reg.var.umax >= MAX_VAR_SIZ {
                    return Err(eacces(idx, format!("R{r} unbounded memory access, use 'var &= const' or 'if (var < const)'")));
                }
                let kind = if i > 0 && proto.args[i - 1] == ArgType::PtrToUninitMem {
                    AccessKind::Write
                } else {
                    AccessKind::Read
                };
                let null_mem = i > 0 && st.cur().regs[r - 1].is_null();
                if reg.var.umax > 0 && null_mem {
                    // `check_helper_mem_access`: NULL is a zero-byte buffer only.
                    return Err(eacces(idx, format!("R{} type=scalar expected=fp", r - 1)));
                }
                if reg.var.umax > 0 {
                    // A size that is not a constant turns raw mode off (`check_mem_size_reg`
                    // drops `meta`): the memory is checked as a range, not written byte by
                    // byte, so no slot shows as touched in the log.
                    let shown = out.scratch.slots;
                    helper_mem(cx, st, idx, r - 1, reg.var.umax as u32, kind, out)?;
                    if reg.var.const_value().is_none() {
                        out.scratch.slots = shown;
                    }
                }
            }
        }
    }
    meta.map = map;
    Ok(meta)
}

/// `check_helper_mem_access`: `size` bytes at register `r` must be accessible.
fn helper_mem(
    cx: &Cx<'_>,
    st: &mut State,
    idx: usize,
    r: usize,
    size: u32,
    kind: AccessKind,
    out: &mut Out<'_>,
) -> Result<(), Reject> {
    let regno = Reg::new(r as u8).unwrap_or(Reg::R1);
    let reg = st.cur().regs[r];
    if reg.ty == RegType::Stack {
        // Indirect stack access (helper arguments): bytes become data on write.
        let Some(c) = reg.var.const_value() else {
            return Ok(());
        };
        let off = c as i64 + i64::from(reg.off);
        if kind == AccessKind::Read && (-512..=-1).contains(&off) {
            let frame = &st.frames[usize::from(reg.frameno).min(st.frames.len() - 1)];
            super::unpriv::helper_stack_bounds(cx, frame, idx, r, reg.off, off, size)?;
        }
        if !(-512..=-1).contains(&off) || off + i64::from(size) > 0 {
            let what = if kind == AccessKind::Read {
                "read from"
            } else {
                "write to"
            };
            let errno = if off + i64::from(size) > 0 && (-512..=-1).contains(&off) {
                Errno::EINVAL
            } else {
                Errno::EACCES
            };
            return Err(Reject::new(
                errno,
                idx,
                format!("invalid {what} stack R{r} off={} size={size}", reg.off),
            ));
        }
        let frame = {
            let i = usize::from(reg.frameno).min(st.frames.len() - 1);
            &mut st.frames[i]
        };
        if kind == AccessKind::Read {
            super::unpriv::helper_stack_read(cx, frame, idx, r, reg.off, off, size)?;
        } else {
            super::unpriv::helper_stack_write(cx, frame, idx, off, size)?;
        }
        frame.grow_stack((-off) as usize);
        out.note_depth(frame.subprog, (-off) as usize);
        for o in off..off + i64::from(size) {
            if kind == AccessKind::Write {
                // The kernel writes raw-mode memory byte by byte (`check_mem_access`), which
                // scratches each slot for the log.
                out.scratch.slot_at(o as i32);
                let (slot, b) = Frame::byte_pos(o as i32);
                let s = &mut frame.stack[slot];
                if s.bytes.contains(&crate::state::SlotType::Spill) {
                    for x in &mut s.bytes {
                        if *x == crate::state::SlotType::Spill {
                            *x = crate::state::SlotType::Misc;
                        }
                    }
                    s.spilled = RegState::NOT_INIT;
                }
                s.bytes[b] = crate::state::SlotType::Misc;
            }
        }
        return Ok(());
    }
    let acc = Access {
        regno,
        off: 0,
        size,
        kind,
        stored: None,
        sign_extend: false,
        strict: false,
    };
    access(cx, st, idx, acc, out).map(|_| ())
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in tests a panic is the failure report")]
mod tests {
    //! Expected messages are Linux 6.18's (see tests/data/cases.txt, `helper/*`, `call/*`).
    use super::super::test_util::run;
    use super::super::Flow;
    use crate::env::ProgType::SocketFilter;
    use crate::state::{MapRef, RegState, RegType, State};
    use bpfkit_isa::{CallTarget, Op};

    #[test]
    fn lookup_returns_a_maybe_null_value_and_clobbers_the_arguments() {
        let mut st = State::entry();
        let map = MapRef::new(0, super::super::test_util::env().maps[0]);
        st.cur_mut().regs[1] = RegState {
            map: Some(map),
            ..RegState::pointer(RegType::MapPtr)
        };
        st.cur_mut().regs[2] = RegState {
            off: -8,
            ..RegState::frame_pointer(0)
        };
        run(&mut st, Op::Call(CallTarget::Helper(1)), SocketFilter).unwrap();
        let r = &st.cur().regs;
        assert_eq!(r[0].ty, RegType::MapValueOrNull);
        assert_ne!(r[0].id, 0);
        assert!(r[1..=5].iter().all(|x| x.ty == RegType::NotInit));
    }

    #[test]
    fn argument_types_are_checked() {
        let mut st = State::entry();
        let err = run(&mut st, Op::Call(CallTarget::Helper(1)), SocketFilter).unwrap_err();
        assert_eq!(err.message, "R1 type=ctx expected=map_ptr");
        let err = run(&mut st, Op::Call(CallTarget::Helper(100_000)), SocketFilter).unwrap_err();
        assert_eq!(err.message, "invalid func unknown#100000");
    }

    #[test]
    fn exit_needs_r0_and_returns_from_subprograms() {
        let mut st = State::entry();
        let err = run(&mut st, Op::Exit, SocketFilter).unwrap_err();
        assert_eq!(err.message, "R0 !read_ok");
        let f = run(&mut st, Op::Call(CallTarget::Local(3)), SocketFilter).unwrap();
        assert!(matches!(f, Flow::Call(4)));
        assert_eq!(st.frames.len(), 2);
        assert_eq!(st.cur().regs[1].ty, RegType::Ctx);
        let f = run(&mut st, Op::Exit, SocketFilter).unwrap();
        assert!(matches!(f, Flow::Return(1)));
        assert_eq!(st.frames.len(), 1);
    }
}
