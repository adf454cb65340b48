//! The kernel's text for one instruction (`kernel/bpf/disasm.c: print_bpf_insn`), as the
//! verifier log shows it.
//!
//! Private placeholder until `bpfkit_isa::disasm` (the one printer) lands; then this module
//! only supplies the helper-name callback.

use bpfkit_isa::{AluOp, AtomicOp, CallTarget, EndKind, Insn, JmpCond, Op, Operand, Size, Width};

fn size_name(size: Size, signed: bool) -> &'static str {
    match (size, signed) {
        (Size::B, false) => "u8",
        (Size::H, false) => "u16",
        (Size::W, false) => "u32",
        (Size::DW, false) => "u64",
        (Size::B, true) => "s8",
        (Size::H, true) => "s16",
        (Size::W, true) => "s32",
        (Size::DW, true) => "s64",
    }
}

fn alu_str(op: AluOp) -> &'static str {
    match op {
        AluOp::Add => "+=",
        AluOp::Sub => "-=",
        AluOp::Mul => "*=",
        AluOp::Div => "/=",
        AluOp::Sdiv => "s/=",
        AluOp::Or => "|=",
        AluOp::And => "&=",
        AluOp::Lsh => "<<=",
        AluOp::Rsh => ">>=",
        AluOp::Mod => "%=",
        AluOp::Smod => "s%=",
        AluOp::Xor => "^=",
        AluOp::Mov | AluOp::Movsx(_) => "=",
        AluOp::Arsh => "s>>=",
    }
}

fn jmp_str(cond: JmpCond) -> &'static str {
    match cond {
        JmpCond::Eq => "==",
        JmpCond::Gt => ">",
        JmpCond::Ge => ">=",
        JmpCond::Set => "&",
        JmpCond::Ne => "!=",
        JmpCond::Sgt => "s>",
        JmpCond::Sge => "s>=",
        JmpCond::Lt => "<",
        JmpCond::Le => "<=",
        JmpCond::Slt => "s<",
        JmpCond::Sle => "s<=",
    }
}

/// The text of instruction `op` at slot `insn` (without the `N: ` prefix or newline), e.g.
/// `(b7) r0 = 0`. `helper_name` names helper ids for calls.
pub fn insn_text(insn: Insn, op: &Op, helper_name: &dyn Fn(i32) -> Option<&'static str>) -> String {
    let code = insn.code;
    let body = match *op {
        Op::Alu {
            width,
            op,
            dst,
            src,
        } => {
            let p = if width == Width::W64 { 'r' } else { 'w' };
            match (op, src) {
                (AluOp::Movsx(bits), Operand::Reg(s)) => {
                    format!("{p}{} = (s{bits}){p}{}", dst.num(), s.num())
                }
                (_, Operand::Reg(s)) => format!("{p}{} {} {p}{}", dst.num(), alu_str(op), s.num()),
                (_, Operand::Imm(i)) => format!("{p}{} {} {i}", dst.num(), alu_str(op)),
            }
        }
        Op::Neg { width, dst } => {
            let p = if width == Width::W64 { 'r' } else { 'w' };
            format!("{p}{d} = -{p}{d}", d = dst.num())
        }
        Op::End { kind, bits, dst } => {
            let name = match kind {
                EndKind::ToLe => "le",
                EndKind::ToBe => "be",
                EndKind::Swap => "bswap",
            };
            format!("r{d} = {name}{bits} r{d}", d = dst.num())
        }
        Op::LdImm64 {
            dst,
            pseudo,
            imm,
            next_imm,
        } => match pseudo {
            1 => format!("r{} = map[id:{imm}]", dst.num()),
            2 => format!("r{} = map[id:{imm}][0]+{next_imm}", dst.num()),
            _ => {
                let v = (u64::from(next_imm as u32) << 32) | u64::from(imm as u32);
                format!("r{} = 0x{v:x}", dst.num())
            }
        },
        Op::LdAbs { size, imm } => format!("r0 = *({} *)skb[{imm}]", size_name(size, false)),
        Op::LdInd { size, src, imm } => {
            format!(
                "r0 = *({} *)skb[r{} + {imm}]",
                size_name(size, false),
                src.num()
            )
        }
        Op::Load {
            size,
            sign_extend,
            dst,
            src,
            off,
        } => format!(
            "r{} = *({} *)(r{} {off:+})",
            dst.num(),
            size_name(size, sign_extend),
            src.num()
        ),
        Op::StoreImm {
            size,
            dst,
            off,
            imm,
        } => {
            format!(
                "*({} *)(r{} {off:+}) = {imm}",
                size_name(size, false),
                dst.num()
            )
        }
        Op::StoreReg {
            size,
            dst,
            src,
            off,
        } => {
            format!(
                "*({} *)(r{} {off:+}) = r{}",
                size_name(size, false),
                dst.num(),
                src.num()
            )
        }
        Op::Atomic {
            size,
            op,
            dst,
            src,
            off,
        } => {
            let (w, sz, fam) = if size == Size::DW {
                ('r', "u64", "atomic64")
            } else {
                ('r', "u32", "atomic")
            };
            let (d, s) = (dst.num(), src.num());
            let rmw = |name: &str, sym: &str, fetch: bool| {
                if fetch {
                    format!("{w}{s} = {fam}_fetch_{name}(({sz} *)(r{d} {off:+}), {w}{s})")
                } else {
                    format!("lock *({sz} *)(r{d} {off:+}) {sym} {w}{s}")
                }
            };
            match op {
                AtomicOp::Add { fetch } => rmw("add", "+=", fetch),
                AtomicOp::Or { fetch } => rmw("or", "|=", fetch),
                AtomicOp::And { fetch } => rmw("and", "&=", fetch),
                AtomicOp::Xor { fetch } => rmw("xor", "^=", fetch),
                AtomicOp::Xchg => format!("{w}{s} = {fam}_xchg(({sz} *)(r{d} {off:+}), {w}{s})"),
                AtomicOp::Cmpxchg => {
                    format!("{w}0 = {fam}_cmpxchg(({sz} *)(r{d} {off:+}), {w}0, {w}{s})")
                }
            }
        }
        Op::Ja { off, long } => {
            if long {
                format!("gotol pc{off:+}")
            } else {
                format!("goto pc{off:+}")
            }
        }
        Op::Jcond {
            width,
            cond,
            dst,
            src,
            off,
        } => {
            let p = if width == Width::W64 { 'r' } else { 'w' };
            match src {
                Operand::Reg(s) => {
                    format!(
                        "if {p}{} {} {p}{} goto pc{off:+}",
                        dst.num(),
                        jmp_str(cond),
                        s.num()
                    )
                }
                Operand::Imm(i) => {
                    format!(
                        "if {p}{} {} 0x{:x} goto pc{off:+}",
                        dst.num(),
                        jmp_str(cond),
                        i as u32
                    )
                }
            }
        }
        Op::Call(CallTarget::Helper(id)) => match helper_name(id) {
            Some(name) => format!("call {name}#{id}"),
            None => format!("call unknown#{id}"),
        },
        Op::Call(CallTarget::Local(off)) => format!("call pc{off:+}"),
        Op::Call(CallTarget::Kfunc { btf_id, .. }) => format!("call kernel-function#{btf_id}"),
        Op::Exit => "exit".to_string(),
        Op::LoadAcquire {
            size,
            dst,
            src,
            off,
        } => {
            let w = if size == Size::DW { 'r' } else { 'w' };
            format!(
                "{w}{} = load_acquire(({} *)(r{} {off:+}))",
                dst.num(),
                size_name(size, false),
                src.num()
            )
        }
        Op::StoreRelease {
            size,
            dst,
            src,
            off,
        } => {
            let w = if size == Size::DW { 'r' } else { 'w' };
            format!(
                "store_release(({} *)(r{} {off:+}), {w}{})",
                size_name(size, false),
                dst.num(),
                src.num()
            )
        }
        Op::MayGoto { off } => format!("may_goto pc{off:+}"),
    };
    format!("({code:02x}) {body}")
}
