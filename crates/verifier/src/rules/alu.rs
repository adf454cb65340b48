//! ALU rules (`check_alu_op`, `adjust_reg_min_max_vals`, `adjust_ptr_min_max_vals`): moves,
//! scalar arithmetic through the scalar domain, and pointer arithmetic with the kernel's
//! restrictions for a privileged load.

use super::{check_write_reg, eacces, einval, read_reg, Flow, Out};
use crate::num::{self, Scalar};
use crate::reject::Reject;
use crate::state::{RegState, RegType, State};
use bpfkit_isa::{AluOp, Op, Operand, Reg, Width};

/// Bounds beyond which a pointer offset is refused (`BPF_MAX_VAR_OFF`).
pub const MAX_VAR_OFF: i64 = 1 << 29;

fn op_str(op: AluOp) -> &'static str {
    match op {
        AluOp::Add => "+=",
        AluOp::Sub => "-=",
        AluOp::Mul => "*=",
        AluOp::Div | AluOp::Sdiv => "/=",
        AluOp::Or => "|=",
        AluOp::And => "&=",
        AluOp::Lsh => "<<=",
        AluOp::Rsh => ">>=",
        AluOp::Mod | AluOp::Smod => "%=",
        AluOp::Xor => "^=",
        AluOp::Mov | AluOp::Movsx(_) => "=",
        AluOp::Arsh => "s>>=",
    }
}

/// The ALU step.
///
/// # Errors
/// `R%d !read_ok`, `frame pointer is read only`, `div by zero`, `invalid shift %d`, and the
/// pointer arithmetic rejections.
pub fn step(st: &mut State, idx: usize, op: &Op, out: &mut Out<'_>) -> Result<Flow, Reject> {
    match *op {
        Op::Neg { width, dst } => {
            let d = read_reg(st, dst, idx, out)?;
            check_write_reg(dst, idx, out)?;
            let v = if d.ty == RegType::Scalar {
                d.var
            } else {
                Scalar::unknown()
            };
            let r = num::neg(width, v);
            st.cur_mut().regs[dst.index()] = RegState::scalar(r);
            Ok(Flow::Next)
        }
        Op::End { kind, bits, dst } => {
            let d = read_reg(st, dst, idx, out)?;
            check_write_reg(dst, idx, out)?;
            let v = if d.ty == RegType::Scalar {
                d.var
            } else {
                Scalar::unknown()
            };
            st.cur_mut().regs[dst.index()] = RegState::scalar(num::end(kind, bits, v));
            Ok(Flow::Next)
        }
        Op::Alu {
            width,
            op: AluOp::Mov,
            dst,
            src,
        } => mov(st, idx, width, None, dst, src, out),
        Op::Alu {
            width,
            op: AluOp::Movsx(bits),
            dst,
            src,
        } => mov(st, idx, width, Some(bits), dst, src, out),
        Op::Alu {
            width,
            op,
            dst,
            src,
        } => arith(st, idx, width, op, dst, src, out),
        _ => Ok(Flow::Next),
    }
}

fn mov(
    st: &mut State,
    idx: usize,
    width: Width,
    sx: Option<u8>,
    dst: Reg,
    src: Operand,
    out: &mut Out<'_>,
) -> Result<Flow, Reject> {
    let new = match src {
        Operand::Reg(sreg) => {
            let mut s = read_reg(st, sreg, idx, out)?;
            check_write_reg(dst, idx, out)?;
            // `assign_scalar_id_before_mov`: a copy of an unknown scalar shares its id, so that
            // what a branch learns about one is learnt about the other (`sync_linked_regs`).
            let mut link = |s: &mut RegState, st: &mut State| {
                if s.ty == RegType::Scalar && s.add_const {
                    // A register already `+= const` from its copies starts a new link.
                    (s.id, s.off, s.add_const) = (0, 0, false);
                    let r = &mut st.cur_mut().regs[sreg.index()];
                    (r.id, r.off, r.add_const) = (0, 0, false);
                }
                if s.ty == RegType::Scalar && s.id == 0 && !s.var.is_const() {
                    s.id = out.new_id();
                    st.cur_mut().regs[sreg.index()].id = s.id;
                }
            };
            match (width, sx) {
                (Width::W64, None) => {
                    link(&mut s, st);
                    s
                }
                (_, Some(bits)) => {
                    let v = if s.ty == RegType::Scalar {
                        s.var
                    } else {
                        Scalar::unknown()
                    };
                    let no_sext = s.ty == RegType::Scalar && v.umax < (1u64 << (bits - 1));
                    let mut r = RegState::scalar(num::movsx(width, bits, v));
                    if no_sext && width == Width::W64 {
                        link(&mut s, st);
                        r.id = s.id;
                    }
                    r
                }
                (Width::W32, None) => {
                    let v = if s.ty == RegType::Scalar {
                        s.var
                    } else {
                        Scalar::unknown()
                    };
                    let mut r =
                        RegState::scalar(num::alu(AluOp::Mov, Width::W32, Scalar::known(0), v));
                    // A value that already fits in 32 bits is copied unchanged: linked too.
                    if s.ty == RegType::Scalar && v.umax <= u64::from(u32::MAX) {
                        link(&mut s, st);
                        r.id = s.id;
                    }
                    r
                }
            }
        }
        Operand::Imm(imm) => {
            check_write_reg(dst, idx, out)?;
            let v = match width {
                Width::W64 => imm as i64 as u64,
                Width::W32 => u64::from(imm as u32),
            };
            RegState::scalar(Scalar::known(v))
        }
    };
    st.cur_mut().regs[dst.index()] = new;
    Ok(Flow::Next)
}

fn arith(
    st: &mut State,
    idx: usize,
    width: Width,
    op: AluOp,
    dst: Reg,
    src: Operand,
    out: &mut Out<'_>,
) -> Result<Flow, Reject> {
    let s = match src {
        Operand::Reg(r) => read_reg(st, r, idx, out)?,
        Operand::Imm(imm) => {
            let v = match width {
                Width::W64 => imm as i64 as u64,
                Width::W32 => u64::from(imm as u32),
            };
            RegState::scalar(Scalar::known(v))
        }
    };
    let d = read_reg(st, dst, idx, out)?;
    if let Operand::Imm(imm) = src {
        if matches!(op, AluOp::Div | AluOp::Sdiv | AluOp::Mod | AluOp::Smod) && imm == 0 {
            return Err(einval(idx, "div by zero"));
        }
        let bits = if width == Width::W64 { 64 } else { 32 };
        if matches!(op, AluOp::Lsh | AluOp::Rsh | AluOp::Arsh) && !(0..bits).contains(&imm) {
            return Err(einval(idx, format!("invalid shift {imm}")));
        }
    }
    check_write_reg(dst, idx, out)?;
    let result = match (d.ty == RegType::Scalar, s.ty == RegType::Scalar) {
        (true, true) => {
            let mut r = RegState::scalar(num::alu(op, width, d.var, s.var));
            // `r1 = r2; r1 += K` keeps r1 linked to r2 with delta K (64-bit ADD/SUB only).
            let k = s.var.const_value().map(|v| v as i64);
            if let (Some(k), Width::W64, AluOp::Add | AluOp::Sub, false, true) =
                (k, width, op, d.add_const, d.id != 0)
            {
                if let Ok(k) = i32::try_from(k) {
                    let delta = if op == AluOp::Sub {
                        k.checked_neg()
                    } else {
                        Some(k)
                    };
                    if let Some(delta) = delta {
                        r.id = d.id;
                        r.add_const = true;
                        r.off = delta;
                    }
                }
            }
            r
        }
        (false, false) => {
            // pointer op pointer: only subtraction, which yields an unknown number.
            if op == AluOp::Sub {
                if width == Width::W64 {
                    RegState::unknown()
                } else {
                    RegState::scalar(num::unknown_of_size(4))
                }
            } else {
                return Err(eacces(
                    idx,
                    format!("R{} pointer {} pointer prohibited", dst.num(), op_str(op)),
                ));
            }
        }
        (false, true) => ptr_arith(idx, width, op, dst, d, s, false, out)?,
        (true, false) => ptr_arith(idx, width, op, dst, s, d, true, out)?,
    };
    st.cur_mut().regs[dst.index()] = result;
    Ok(Flow::Next)
}

/// The variable offset of `ptr op off`: 64-bit arithmetic only, the 32-bit bounds of a pointer
/// are unbounded (`__mark_reg32_unbounded` in `adjust_ptr_min_max_vals`), then synced.
fn ptr_var(op: AluOp, ptr: Scalar, off: Scalar) -> Scalar {
    let mut v = num::alu(op, Width::W64, ptr, off);
    v.s32_min = i32::MIN;
    v.s32_max = i32::MAX;
    v.u32_min = 0;
    v.u32_max = u32::MAX;
    v.sync();
    v
}

/// `adjust_ptr_min_max_vals`: `ptr op off`, where `swapped` means the scalar was the
/// destination (`scalar += pointer`).
#[expect(
    clippy::too_many_arguments,
    reason = "both operands and their roles, as adjust_ptr_min_max_vals takes them"
)]
fn ptr_arith(
    idx: usize,
    width: Width,
    op: AluOp,
    dst: Reg,
    ptr: RegState,
    off: RegState,
    swapped: bool,
    out: &mut Out<'_>,
) -> Result<RegState, Reject> {
    let d = dst.num();
    if width == Width::W32 {
        if op == AluOp::Sub {
            return Ok(RegState::scalar(num::unknown_of_size(4)));
        }
        return Err(eacces(
            idx,
            format!("R{d} 32-bit pointer arithmetic prohibited"),
        ));
    }
    if ptr.ty.maybe_null() {
        return Err(eacces(
            idx,
            format!(
                "R{d} pointer arithmetic on {} prohibited, null-check it first",
                ptr.ty.kernel_name()
            ),
        ));
    }
    if ptr.ty == RegType::UntrustedMem {
        // Untrusted memory is read with probe reads at any address: Linux keeps no offset
        // and checks none (tests/verifier/mapptr.cases, `mapptr_btf_untrusted_mem_*`).
        return Ok(RegState {
            off: 0,
            var: Scalar::known(0),
            ..ptr
        });
    }
    let known = off.var.const_value();
    match ptr.ty {
        RegType::Ctx
        | RegType::MapValue
        | RegType::Stack
        | RegType::Packet
        | RegType::PacketMeta
        | RegType::RingbufMem
        | RegType::BtfPtr
        | RegType::UntrustedMem => {}
        RegType::MapPtr if known == Some(0) && op == AluOp::Add => {}
        _ => {
            return Err(eacces(
                idx,
                format!(
                    "R{d} pointer arithmetic on {} prohibited",
                    ptr.ty.kernel_name()
                ),
            ))
        }
    }
    // `check_reg_sane_offset`.
    let sane = |v: &Scalar, fixed: i32, ty: RegType| -> Result<(), Reject> {
        let name = ty.kernel_name();
        let big = |c: u64| (c as i64).unsigned_abs() >= MAX_VAR_OFF as u64;
        let msg = if let Some(c) = v.const_value().filter(|c| big(*c)) {
            format!(
                "math between {name} pointer and {} is not allowed",
                c as i64
            )
        } else if i64::from(fixed).abs() >= MAX_VAR_OFF {
            format!("{name} pointer offset {fixed} is not allowed")
        } else if v.smin == i64::MIN {
            format!(
                "math between {name} pointer and register with unbounded min value is not allowed"
            )
        } else if v.smin >= MAX_VAR_OFF || v.smin <= -MAX_VAR_OFF {
            format!("value {} makes {name} pointer be out of bounds", v.smin)
        } else {
            return Ok(());
        };
        Err(einval(idx, msg))
    };
    sane(&off.var, 0, ptr.ty)?;
    let mut r = ptr;
    if swapped {
        // `scalar += pointer`: the destination takes the pointer's type, id, offsets and
        // union, but keeps its own `frameno` (0 for a number), so in a subprogram
        // `r0 = K; r0 += r10` points into the main program's frame, as in Linux 6.18.
        r.frameno = off.frameno;
    }
    match op {
        AluOp::Add => {
            if let Some(c) = known {
                let sum = i64::from(ptr.off) + c as i64;
                if sum == i64::from(sum as i32) {
                    r.off = sum as i32;
                } else {
                    r.var = ptr_var(AluOp::Add, ptr.var, off.var);
                }
            } else {
                r.var = ptr_var(AluOp::Add, ptr.var, off.var);
                if ptr.ty.is_pkt_pointer() {
                    r.id = out.new_id();
                    r.range = 0;
                }
            }
        }
        AluOp::Sub => {
            if swapped {
                return Err(eacces(
                    idx,
                    format!("R{d} tried to subtract pointer from scalar"),
                ));
            }
            if ptr.ty == RegType::Stack {
                return Err(eacces(
                    idx,
                    format!("R{d} subtraction from stack pointer prohibited"),
                ));
            }
            if let Some(c) = known {
                let diff = i64::from(ptr.off) - c as i64;
                if diff == i64::from(diff as i32) {
                    r.off = diff as i32;
                } else {
                    r.var = ptr_var(AluOp::Sub, ptr.var, off.var);
                }
            } else {
                r.var = ptr_var(AluOp::Sub, ptr.var, off.var);
                if ptr.ty.is_pkt_pointer() {
                    r.id = out.new_id();
                    r.range = 0;
                }
            }
        }
        AluOp::And | AluOp::Or | AluOp::Xor => {
            return Err(eacces(
                idx,
                format!("R{d} bitwise operator {} on pointer prohibited", op_str(op)),
            ))
        }
        _ => {
            return Err(eacces(
                idx,
                format!(
                    "R{d} pointer arithmetic with {} operator prohibited",
                    op_str(op)
                ),
            ))
        }
    }
    sane(&r.var, r.off, ptr.ty)?;
    Ok(r)
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in tests a panic is the failure report")]
mod tests {
    //! Expected messages and verdicts are Linux 6.18's (see tests/data/cases.txt, `alu/*`).
    use super::super::test_util::run;
    use crate::env::ProgType::SocketFilter;
    use crate::num::Scalar;
    use crate::state::{RegState, RegType, State};
    use bpfkit_isa::{AluOp, Op, Operand, Reg, Width};

    fn alu(op: AluOp, width: Width, dst: Reg, src: Operand) -> Op {
        Op::Alu {
            width,
            op,
            dst,
            src,
        }
    }

    #[test]
    fn mov_imm_makes_a_known_scalar_and_r10_is_read_only() {
        let mut st = State::entry();
        run(
            &mut st,
            alu(AluOp::Mov, Width::W64, Reg::R0, Operand::Imm(-1)),
            SocketFilter,
        )
        .unwrap();
        assert_eq!(st.cur().regs[0].const_scalar(), Some(u64::MAX));
        run(
            &mut st,
            alu(AluOp::Mov, Width::W32, Reg::R0, Operand::Imm(-1)),
            SocketFilter,
        )
        .unwrap();
        assert_eq!(st.cur().regs[0].const_scalar(), Some(0xffff_ffff));
        let err = run(
            &mut st,
            alu(AluOp::Mov, Width::W64, Reg::R10, Operand::Imm(0)),
            SocketFilter,
        )
        .unwrap_err();
        assert_eq!(err.message, "frame pointer is read only");
    }

    #[test]
    fn reading_an_unset_register_is_rejected() {
        let mut st = State::entry();
        let err = run(
            &mut st,
            alu(AluOp::Add, Width::W64, Reg::R0, Operand::Imm(1)),
            SocketFilter,
        )
        .unwrap_err();
        assert_eq!(err.message, "R0 !read_ok");
    }

    #[test]
    fn stack_pointer_plus_constant_moves_the_fixed_offset() {
        let mut st = State::entry();
        st.cur_mut().regs[2] = RegState::frame_pointer(0);
        run(
            &mut st,
            alu(AluOp::Add, Width::W64, Reg::R2, Operand::Imm(-8)),
            SocketFilter,
        )
        .unwrap();
        let r2 = st.cur().regs[2];
        assert_eq!((r2.ty, r2.off), (RegType::Stack, -8));
        // Subtracting from a stack pointer is refused even for a privileged load.
        let err = run(
            &mut st,
            alu(AluOp::Sub, Width::W64, Reg::R2, Operand::Imm(8)),
            SocketFilter,
        )
        .unwrap_err();
        assert_eq!(err.message, "R2 subtraction from stack pointer prohibited");
    }

    #[test]
    fn pointer_rules() {
        let mut st = State::entry();
        st.cur_mut().regs[2] = RegState::frame_pointer(0);
        let err = run(
            &mut st,
            alu(AluOp::Add, Width::W64, Reg::R2, Operand::Reg(Reg::R10)),
            SocketFilter,
        )
        .unwrap_err();
        assert_eq!(err.message, "R2 pointer += pointer prohibited");
        let err = run(
            &mut st,
            alu(AluOp::Add, Width::W32, Reg::R2, Operand::Imm(1)),
            SocketFilter,
        )
        .unwrap_err();
        assert_eq!(err.message, "R2 32-bit pointer arithmetic prohibited");
        let err = run(
            &mut st,
            alu(AluOp::And, Width::W64, Reg::R2, Operand::Imm(1)),
            SocketFilter,
        )
        .unwrap_err();
        assert_eq!(err.message, "R2 bitwise operator &= on pointer prohibited");
        // pointer - pointer is a number for a privileged load.
        run(
            &mut st,
            alu(AluOp::Sub, Width::W64, Reg::R2, Operand::Reg(Reg::R10)),
            SocketFilter,
        )
        .unwrap();
        assert_eq!(st.cur().regs[2].ty, RegType::Scalar);
    }

    #[test]
    fn division_by_an_immediate_zero_and_oversized_shifts_are_rejected() {
        let mut st = State::entry();
        st.cur_mut().regs[0] = RegState::scalar(Scalar::known(1));
        let err = run(
            &mut st,
            alu(AluOp::Div, Width::W64, Reg::R0, Operand::Imm(0)),
            SocketFilter,
        )
        .unwrap_err();
        assert_eq!((err.message.as_str(), err.errno.0), ("div by zero", 22));
        let err = run(
            &mut st,
            alu(AluOp::Lsh, Width::W32, Reg::R0, Operand::Imm(32)),
            SocketFilter,
        )
        .unwrap_err();
        assert_eq!(err.message, "invalid shift 32");
        run(
            &mut st,
            alu(AluOp::Lsh, Width::W64, Reg::R0, Operand::Imm(63)),
            SocketFilter,
        )
        .unwrap();
        assert_eq!(st.cur().regs[0].const_scalar(), Some(1 << 63));
    }
}
