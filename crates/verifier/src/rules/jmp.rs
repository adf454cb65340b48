//! Conditional jumps (`check_cond_jmp_op`): branch feasibility from the scalar domain and
//! pointer facts, refinement of both branches, null checks by id (`mark_ptr_or_null_regs`)
//! and packet range discovery (`try_match_pkt_pointers`, `find_good_pkt_pointers`).

use super::{read_reg, Flow, Out};
use crate::num::{self, Scalar};
use crate::reject::Reject;
use crate::scalar::reg_set_min_max;
use crate::state::{RegState, RegType, State};
use bpfkit_isa::{JmpCond, Op, Operand, Reg, Width};

/// Largest packet offset the verifier reasons about (`MAX_PACKET_OFF`).
const MAX_PACKET_OFF: u64 = 0xffff;

fn flip(c: JmpCond) -> JmpCond {
    match c {
        JmpCond::Gt => JmpCond::Lt,
        JmpCond::Lt => JmpCond::Gt,
        JmpCond::Ge => JmpCond::Le,
        JmpCond::Le => JmpCond::Ge,
        JmpCond::Sgt => JmpCond::Slt,
        JmpCond::Slt => JmpCond::Sgt,
        JmpCond::Sge => JmpCond::Sle,
        JmpCond::Sle => JmpCond::Sge,
        other => other,
    }
}

/// Whether a pointer of this type is never NULL.
fn non_null(t: RegType) -> bool {
    // `reg_not_null`: of the types bpfkit models, map values and map pointers
    // (`CONST_PTR_TO_MAP`).
    matches!(t, RegType::MapValue | RegType::MapPtr)
}

/// The conditional jump step.
///
/// # Errors
/// `R%d !read_ok`.
pub fn step(st: &mut State, idx: usize, op: &Op, out: &mut Out<'_>) -> Result<Flow, Reject> {
    let Op::Jcond {
        width,
        cond,
        dst,
        src,
        off,
    } = *op
    else {
        return Ok(Flow::Next);
    };
    let target = (idx as i64 + 1 + i64::from(off)) as usize;
    // `check_cond_jmp_op` reads the destination first, then the source.
    let d = read_reg(st, dst, idx, out)?;
    let (src_reg, src_regno) = match src {
        Operand::Reg(r) => (read_reg(st, r, idx, out)?, Some(r)),
        Operand::Imm(imm) => {
            let v = match width {
                Width::W64 => imm as i64 as u64,
                Width::W32 => imm as i64 as u64,
            };
            (RegState::scalar(Scalar::known(v)), None)
        }
    };
    // Decide the branch.
    let taken = branch_taken(cond, width, &d, &src_reg);
    match taken {
        // A decided branch is a `Branch` with one side, so that the explorer marks the
        // compared scalars precise (`mark_chain_precision` when `is_branch_taken` decides).
        Some(true) => {
            return Ok(Flow::Branch {
                fall: false,
                taken: Some(Box::new(st.clone())),
                target,
            })
        }
        Some(false) => {
            return Ok(Flow::Branch {
                fall: true,
                taken: None,
                target,
            })
        }
        None => {}
    }
    let mut other = st.clone();
    // Null checks: `ptr == 0` / `ptr != 0` on a maybe-null pointer.
    if matches!(cond, JmpCond::Eq | JmpCond::Ne) && width == Width::W64 {
        let null_check = |reg: &RegState, other: &RegState| {
            reg.ty.maybe_null() && other.is_null() && reg.id != 0
        };
        // Only `ptr == 0` with an immediate (Linux 6.18 does not use a register known zero).
        let checked = if src_regno.is_none() && null_check(&d, &src_reg) {
            Some(d.id)
        } else {
            None
        };
        if let Some(id) = checked {
            // On the `==` side the pointer is NULL.
            let (null_state, value_state) = if cond == JmpCond::Eq {
                (&mut other, &mut *st)
            } else {
                (&mut *st, &mut other)
            };
            mark_ptr_or_null(null_state, id, true);
            mark_ptr_or_null(value_state, id, false);
            return Ok(Flow::Branch {
                fall: true,
                taken: Some(Box::new(other)),
                target,
            });
        }
    }
    // Packet range discovery.
    if let Some(r) = src_regno {
        if width == Width::W64 && d.ty.is_pointer() && src_reg.ty.is_pointer() {
            match_pkt_pointers(cond, (dst, d), (r, src_reg), st, &mut other);
            return Ok(Flow::Branch {
                fall: true,
                taken: Some(Box::new(other)),
                target,
            });
        }
        // `reg_set_min_max`: refined bounds that contradict themselves (a dead branch) fail
        // `reg_bounds_sanity_check` and are reset to unbounded, as the kernel does.
        if d.ty == RegType::Scalar && r == dst {
            let br = reg_set_min_max(cond, width, &d.var, &d.var, true);
            set_scalar(&mut other, dst, br.taken.0);
            set_scalar(st, dst, br.fallthrough.0);
        } else if d.ty == RegType::Scalar && src_reg.ty == RegType::Scalar {
            let br = reg_set_min_max(cond, width, &d.var, &src_reg.var, false);
            set_scalar(&mut other, dst, br.taken.0);
            set_scalar(&mut other, r, br.taken.1);
            set_scalar(st, dst, br.fallthrough.0);
            set_scalar(st, r, br.fallthrough.1);
        }
    } else if d.ty == RegType::Scalar {
        let br = reg_set_min_max(cond, width, &d.var, &src_reg.var, false);
        set_scalar(&mut other, dst, br.taken.0);
        set_scalar(st, dst, br.fallthrough.0);
    }
    Ok(Flow::Branch {
        fall: true,
        taken: Some(Box::new(other)),
        target,
    })
}

fn set_scalar(st: &mut State, r: Reg, v: Scalar) {
    let reg = &mut st.cur_mut().regs[r.index()];
    if reg.ty != RegType::Scalar {
        return;
    }
    reg.var = v;
    let (id, known_off, known_delta) = (reg.id, reg.off, reg.add_const);
    if id != 0 {
        // `sync_linked_regs`: every copy learns the same bounds, shifted by its delta.
        st.for_each_reg(|x| {
            if x.ty == RegType::Scalar && x.id == id {
                if !x.add_const && !known_delta {
                    x.var = v;
                } else {
                    let d = i64::from(x.off) - i64::from(known_off);
                    x.var = num::alu(
                        bpfkit_isa::AluOp::Add,
                        Width::W64,
                        v,
                        Scalar::known(d as u64),
                    );
                }
            }
        });
    }
}

/// `is_pkt_ptr_branch_taken`: a pointer known to be at or past the packet's end decides its
/// comparisons with the end.
fn pkt_ptr_branch_taken(cond: JmpCond, d: &RegState, s: &RegState) -> Option<bool> {
    let (pkt, c) = if s.ty == RegType::PacketEnd {
        (d, cond)
    } else if d.ty == RegType::PacketEnd {
        (s, flip(cond))
    } else {
        return None;
    };
    let beyond = pkt.range == crate::state::BEYOND_PKT_END;
    let at = pkt.range == crate::state::AT_PKT_END;
    match c {
        JmpCond::Le | JmpCond::Gt if beyond => Some(c == JmpCond::Gt),
        JmpCond::Lt | JmpCond::Ge if beyond || at => Some(c == JmpCond::Ge),
        _ => None,
    }
}

/// `is_branch_taken`: decided by scalar bounds, or by a non-NULL pointer compared with 0.
fn branch_taken(cond: JmpCond, width: Width, d: &RegState, s: &RegState) -> Option<bool> {
    if d.ty == RegType::Scalar && s.ty == RegType::Scalar {
        return num::branch_taken(cond, width, d.var, s.var);
    }
    let pkt_any = |t: RegType| t.is_pkt_pointer() || t == RegType::PacketEnd;
    if width == Width::W64 && pkt_any(d.ty) && pkt_any(s.ty) {
        return pkt_ptr_branch_taken(cond, d, s);
    }
    // `is_reg_const(reg, is_jmp32)` with value 0: JMP32 looks at the low 32 bits only.
    let zero = |r: &RegState| match width {
        Width::W64 => r.is_null(),
        Width::W32 => {
            r.ty == RegType::Scalar
                && r.var.var_off.mask as u32 == 0
                && r.var.var_off.value as u32 == 0
        }
    };
    let (ptr, other, c) = if d.ty.is_pointer() && zero(s) {
        (d, s, cond)
    } else if s.ty.is_pointer() && zero(d) {
        (s, d, flip(cond))
    } else {
        return None;
    };
    let _ = other;
    // A valid pointer is never NULL, whatever the width of the comparison.
    if non_null(ptr.ty) {
        return match c {
            JmpCond::Eq => Some(false),
            JmpCond::Ne => Some(true),
            _ => None,
        };
    }
    None
}

/// `mark_ptr_or_null_regs`: every register and spilled register with `id` becomes the
/// scalar 0 (`is_null`) or a map value pointer without id.
pub fn mark_ptr_or_null(st: &mut State, id: u32, is_null: bool) {
    let mut released = None;
    st.for_each_reg(|r| {
        if r.ty.maybe_null() && r.id == id {
            if is_null {
                if r.ref_obj_id != 0 {
                    released = Some(r.ref_obj_id);
                }
                *r = RegState::scalar(Scalar::known(0));
            } else {
                r.ty = match r.ty {
                    RegType::MapValueOrNull => RegType::MapValue,
                    RegType::MapPtrOrNull => RegType::MapPtr,
                    _ => RegType::RingbufMem,
                };
                r.id = 0;
            }
        }
    });
    // A NULL reservation holds nothing to release (`release_reference_state`).
    if let Some(ref_id) = released {
        st.refs.retain(|(i, _)| *i != ref_id);
    }
}

/// `try_match_pkt_pointers` with `find_good_pkt_pointers`: `fall` is the fall-through state,
/// `taken` the jump state.
fn match_pkt_pointers(
    cond: JmpCond,
    (dn, d): (Reg, RegState),
    (sn, s): (Reg, RegState),
    fall: &mut State,
    taken: &mut State,
) {
    let (mut d, mut s, mut c, mut dn) = (d, s, cond, dn);
    if d.ty == RegType::PacketEnd || s.ty == RegType::PacketMeta {
        std::mem::swap(&mut d, &mut s);
        dn = sn;
        c = flip(c);
    }
    let ok = (d.ty == RegType::Packet && s.ty == RegType::PacketEnd)
        || (d.ty == RegType::PacketMeta
            && s.ty == RegType::Packet
            && s.off == 0
            && s.var.is_zero());
    if !ok {
        return;
    }
    // `mark_pkt_end`: on the branch where the pointer is at or past the end, it says so.
    let mark_end = |st: &mut State, beyond: bool| {
        let reg = &mut st.cur_mut().regs[dn.index()];
        if reg.ty == RegType::Packet {
            reg.range = if beyond {
                crate::state::BEYOND_PKT_END
            } else {
                crate::state::AT_PKT_END
            };
        }
    };
    match c {
        JmpCond::Gt => {
            good_pkt_pointers(fall, &d, false);
            mark_end(taken, true);
        }
        JmpCond::Lt => {
            good_pkt_pointers(taken, &d, true);
            mark_end(fall, false);
        }
        JmpCond::Ge => {
            good_pkt_pointers(fall, &d, true);
            mark_end(taken, false);
        }
        JmpCond::Le => {
            good_pkt_pointers(taken, &d, false);
            mark_end(fall, true);
        }
        _ => {}
    }
}

fn good_pkt_pointers(st: &mut State, d: &RegState, right_open: bool) {
    if d.off < 0 || (d.off == 0 && right_open) {
        return;
    }
    if d.var.umax > MAX_PACKET_OFF || d.var.umax + d.off as u64 > MAX_PACKET_OFF {
        return;
    }
    let new_range = d.off as u32 + u32::from(right_open);
    let (ty, id) = (d.ty, d.id);
    st.for_each_reg(|r| {
        if r.ty == ty && r.id == id {
            r.range = if crate::state::pkt_range_is_end_marker(r.range) {
                new_range
            } else {
                r.range.max(new_range)
            };
        }
    });
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in tests a panic is the failure report")]
mod tests {
    //! Expected verdicts are Linux 6.18's (see tests/data/cases.txt, `jmp/*`, `map/*`, `pkt/*`).
    use super::super::test_util::run;
    use super::super::Flow;
    use crate::env::ProgType::{SocketFilter, Xdp};
    use crate::num::Scalar;
    use crate::state::{RegState, RegType, State};
    use bpfkit_isa::{JmpCond, Op, Operand, Reg, Width};

    fn jcond(cond: JmpCond, dst: Reg, src: Operand) -> Op {
        Op::Jcond {
            width: Width::W64,
            cond,
            dst,
            src,
            off: 5,
        }
    }

    #[test]
    fn a_decided_comparison_follows_one_branch() {
        let mut st = State::entry();
        st.cur_mut().regs[0] = RegState::scalar(Scalar::known(3));
        let f = run(
            &mut st,
            jcond(JmpCond::Gt, Reg::R0, Operand::Imm(2)),
            SocketFilter,
        )
        .unwrap();
        assert!(matches!(
            f,
            Flow::Branch {
                fall: false,
                taken: Some(_),
                target: 6
            }
        ));
        let f = run(
            &mut st,
            jcond(JmpCond::Gt, Reg::R0, Operand::Imm(3)),
            SocketFilter,
        )
        .unwrap();
        assert!(matches!(
            f,
            Flow::Branch {
                fall: true,
                taken: None,
                ..
            }
        ));
    }

    #[test]
    fn both_branches_are_refined() {
        let mut st = State::entry();
        st.cur_mut().regs[0] = RegState::scalar(Scalar::unsigned_range(0, 0xffff_ffff));
        let f = run(
            &mut st,
            jcond(JmpCond::Gt, Reg::R0, Operand::Imm(10)),
            SocketFilter,
        )
        .unwrap();
        let Flow::Branch {
            taken: Some(taken),
            target: 6,
            ..
        } = f
        else {
            panic!("{f:?}")
        };
        assert_eq!(st.cur().regs[0].var.umax, 10);
        assert_eq!(taken.cur().regs[0].var.umin, 11);
    }

    #[test]
    fn a_null_check_turns_the_pointer_into_a_value_or_zero() {
        let mut st = State::entry();
        st.cur_mut().regs[0] = RegState {
            id: 1,
            ..RegState::pointer(RegType::MapValueOrNull)
        };
        st.cur_mut().regs[6] = st.cur().regs[0];
        let f = run(
            &mut st,
            jcond(JmpCond::Eq, Reg::R0, Operand::Imm(0)),
            SocketFilter,
        )
        .unwrap();
        let Flow::Branch {
            taken: Some(null), ..
        } = f
        else {
            panic!("{f:?}")
        };
        assert_eq!(st.cur().regs[6].ty, RegType::MapValue);
        assert_eq!(null.cur().regs[6].const_scalar(), Some(0));
    }

    #[test]
    fn comparing_with_packet_end_proves_a_range() {
        let mut st = State::entry();
        st.cur_mut().regs[2] = RegState::pointer(RegType::Packet);
        st.cur_mut().regs[3] = RegState::pointer(RegType::PacketEnd);
        st.cur_mut().regs[4] = RegState {
            off: 14,
            ..RegState::pointer(RegType::Packet)
        };
        // if r4 > r3 goto out: the fall-through has 14 readable bytes from r2.
        let f = run(
            &mut st,
            jcond(JmpCond::Gt, Reg::R4, Operand::Reg(Reg::R3)),
            Xdp,
        )
        .unwrap();
        let Flow::Branch {
            taken: Some(out), ..
        } = f
        else {
            panic!("{f:?}")
        };
        assert_eq!(st.cur().regs[2].range, 14);
        assert_eq!(out.cur().regs[2].range, 0);
    }
}
