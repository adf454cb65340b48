//! One statement of the kernel/LLVM syntax, from tokens to an instruction.

use super::lex::Tok;
use crate::asm::labels::{is_label, Field};
use crate::asm::num::{imm32, imm64, literal, off16};
use crate::insn::{Insn, Reg};
use crate::op::{AluOp, AtomicOp, CallTarget, EndKind, JmpCond, Op, Operand, Size, Width};
use crate::opcode as c;

/// What a statement assembles to.
pub(super) struct Stmt {
    pub emit: Emit,
    /// A label the instruction's target field waits for.
    pub label: Option<(String, Field)>,
}

pub(super) enum Emit {
    Op(Op),
    /// An encoding no [`Op`] describes (callx, arena casts): the decoder rejects it.
    Raw(Insn),
}

impl Stmt {
    fn op(op: Op) -> Self {
        Self {
            emit: Emit::Op(op),
            label: None,
        }
    }
    fn raw(insn: Insn) -> Self {
        Self {
            emit: Emit::Raw(insn),
            label: None,
        }
    }
}

type R<T> = Result<T, String>;

/// A cursor over one statement's tokens.
struct P<'t> {
    toks: &'t [Tok],
    at: usize,
}

fn show(t: Option<&Tok>) -> String {
    match t {
        None => "the end of the line".to_string(),
        Some(Tok::Reg { wide, n }) => format!("`{}{n}`", if *wide { 'r' } else { 'w' }),
        Some(Tok::Num(s) | Tok::Ident(s)) => format!("`{s}`"),
        Some(Tok::P(p)) => format!("`{p}`"),
    }
}

impl<'t> P<'t> {
    fn peek(&self) -> Option<&'t Tok> {
        self.toks.get(self.at)
    }
    fn peek2(&self) -> Option<&'t Tok> {
        self.toks.get(self.at + 1)
    }
    fn next(&mut self) -> Option<&'t Tok> {
        let t = self.toks.get(self.at);
        self.at += 1;
        t
    }
    fn is(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::P(q)) if *q == p)
    }
    fn is_ident(&self, name: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(i)) if i == name)
    }
    fn eat(&mut self, p: &str) -> bool {
        let yes = self.is(p);
        if yes {
            self.at += 1;
        }
        yes
    }
    fn eat_ident(&mut self, name: &str) -> bool {
        let yes = self.is_ident(name);
        if yes {
            self.at += 1;
        }
        yes
    }
    fn expect(&mut self, p: &str) -> R<()> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(format!("expected `{p}`, found {}", show(self.peek())))
        }
    }
    fn expect_ident(&mut self, name: &str) -> R<()> {
        if self.eat_ident(name) {
            Ok(())
        } else {
            Err(format!("expected `{name}`, found {}", show(self.peek())))
        }
    }
    fn end(&self) -> R<()> {
        match self.peek() {
            None => Ok(()),
            t => Err(format!("unexpected {} after the instruction", show(t))),
        }
    }
    fn ident(&mut self) -> R<&'t str> {
        match self.next() {
            Some(Tok::Ident(s)) => Ok(s),
            t => Err(format!("expected a name, found {}", show(t))),
        }
    }
    /// A register; `wide` is `rN` rather than `wN`.
    fn reg(&mut self) -> R<(Reg, bool)> {
        match self.next() {
            Some(&Tok::Reg { wide, n }) => {
                let r = u8::try_from(n).ok().and_then(Reg::new).ok_or_else(|| {
                    format!(
                        "invalid register `{}{n}` (registers are r0 to r10)",
                        if wide { 'r' } else { 'w' }
                    )
                })?;
                Ok((r, wide))
            }
            t => Err(format!("expected a register, found {}", show(t))),
        }
    }
    /// A literal with an optional sign, as text for the `num` parsers.
    fn signed(&mut self) -> R<String> {
        let sign = if self.eat("-") {
            "-"
        } else {
            self.eat("+");
            ""
        };
        match self.next() {
            Some(Tok::Num(n)) => Ok(format!("{sign}{n}")),
            t => Err(format!("expected a number, found {}", show(t))),
        }
    }
    fn is_num_next(&self) -> bool {
        match self.peek() {
            Some(Tok::Num(_)) => true,
            Some(Tok::P("-" | "+")) => matches!(self.peek2(), Some(Tok::Num(_))),
            _ => false,
        }
    }
    /// `(SIZE *)`, the opening `(` already eaten or not per `open`.
    fn size_cast(&mut self) -> R<(Size, bool)> {
        self.expect("(")?;
        let name = self.ident()?;
        let sized = match name {
            "u8" => (Size::B, false),
            "u16" => (Size::H, false),
            "u32" => (Size::W, false),
            "u64" => (Size::DW, false),
            "s8" => (Size::B, true),
            "s16" => (Size::H, true),
            "s32" => (Size::W, true),
            _ => {
                return Err(format!(
                    "expected a size (u8, u16, u32, u64, s8, s16, s32), found `{name}`"
                ))
            }
        };
        self.expect("*")?;
        self.expect(")")?;
        Ok(sized)
    }
    /// `rB + OFF`, `rB +OFF`, `rB - OFF`, `rB`, without parentheses.
    fn base_off(&mut self) -> R<(Reg, i16)> {
        let (base, wide) = self.reg()?;
        if !wide {
            return Err("an address register is `rN`, not `wN`".to_string());
        }
        let off = if self.is("+") || self.is("-") {
            off16(&self.signed()?)?
        } else {
            0
        };
        Ok((base, off))
    }
    /// `(rB + OFF)`.
    fn mem(&mut self) -> R<(Reg, i16)> {
        self.expect("(")?;
        let m = self.base_off()?;
        self.expect(")")?;
        Ok(m)
    }
    /// A jump target: `pc+N`, `+N`, `-N` or a label; `wide` targets are 32-bit.
    fn target(&mut self, wide: bool) -> R<Target> {
        self.eat_ident("pc");
        if self.is("+") || self.is("-") {
            let text = self.signed()?;
            let rel = if wide {
                imm32(&text)?
            } else {
                i32::from(off16(&text)?)
            };
            return Ok(Target::Rel(rel));
        }
        match self.next() {
            Some(Tok::Ident(l)) if is_label(l) => Ok(Target::Label(l.clone())),
            t => Err(format!(
                "expected a jump target (`pc+N`, `+N` or a label), found {}",
                show(t)
            )),
        }
    }
}

enum Target {
    Rel(i32),
    Label(String),
}

/// An op whose target field is `rel` or waits for a label.
fn with_target(op: impl Fn(i32) -> Op, t: Target, field: Field) -> Stmt {
    match t {
        Target::Rel(rel) => Stmt::op(op(rel)),
        Target::Label(l) => Stmt {
            emit: Emit::Op(op(0)),
            label: Some((l, field)),
        },
    }
}

const fn width(wide: bool) -> Width {
    if wide {
        Width::W64
    } else {
        Width::W32
    }
}

/// Parses one statement. `ld_imm64` is set when the verifier's `(18)` opcode says that a
/// `rN = VALUE` is a 64-bit load.
pub(super) fn statement(toks: &[Tok], ld_imm64: bool) -> R<Stmt> {
    let mut p = P { toks, at: 0 };
    let stmt = match p.peek() {
        Some(Tok::Ident(word)) => match word.as_str() {
            "exit" => {
                p.next();
                Stmt::op(Op::Exit)
            }
            "goto" | "gotol" => {
                p.next();
                let long = word == "gotol";
                let field = if long { Field::Imm32 } else { Field::Off16 };
                with_target(|off| Op::Ja { off, long }, p.target(long)?, field)
            }
            "may_goto" => {
                p.next();
                // Narrow targets fit i16.
                with_target(
                    |off| Op::MayGoto { off: off as i16 },
                    p.target(false)?,
                    Field::Off16,
                )
            }
            "call" => {
                p.next();
                call(&mut p)?
            }
            "callx" => {
                p.next();
                let (r, _) = p.reg()?;
                Stmt::raw(Insn::new(c::JMP | c::CALL | c::X, r.num(), 0, 0, 0))
            }
            "if" => {
                p.next();
                cond_jump(&mut p)?
            }
            "lock" => {
                p.next();
                lock(&mut p)?
            }
            "store_release" => {
                p.next();
                p.expect("(")?;
                let (size, sx) = p.size_cast()?;
                if sx {
                    return Err("store_release takes an unsigned size".to_string());
                }
                let (dst, off) = p.mem()?;
                p.expect(",")?;
                let (src, _) = p.reg()?;
                p.expect(")")?;
                Stmt::op(Op::StoreRelease {
                    size,
                    dst,
                    src,
                    off,
                })
            }
            other => return Err(format!("unknown instruction `{other}`")),
        },
        Some(Tok::P("*")) => {
            p.next();
            let (size, sx) = p.size_cast()?;
            if sx {
                return Err("a store takes an unsigned size (u8, u16, u32, u64)".to_string());
            }
            let (dst, off) = p.mem()?;
            p.expect("=")?;
            if matches!(p.peek(), Some(Tok::Reg { .. })) {
                let (src, _) = p.reg()?;
                Stmt::op(Op::StoreReg {
                    size,
                    dst,
                    src,
                    off,
                })
            } else {
                Stmt::op(Op::StoreImm {
                    size,
                    dst,
                    off,
                    imm: imm32(&p.signed()?)?,
                })
            }
        }
        Some(Tok::Reg { .. }) => assignment(&mut p, ld_imm64)?,
        t => return Err(format!("expected an instruction, found {}", show(t))),
    };
    p.end()?;
    Ok(stmt)
}

fn call(p: &mut P<'_>) -> R<Stmt> {
    let call_op = |t| Stmt::op(Op::Call(t));
    if p.is_ident("pc") {
        return Ok(with_target(
            |rel| Op::Call(CallTarget::Local(rel)),
            p.target(true)?,
            Field::Imm32,
        ));
    }
    if p.is_num_next() {
        return Ok(call_op(CallTarget::Helper(imm32(&p.signed()?)?)));
    }
    if matches!(p.peek(), Some(Tok::Reg { .. })) {
        let (r, _) = p.reg()?;
        return Ok(Stmt::raw(Insn::new(
            c::JMP | c::CALL | c::X,
            r.num(),
            0,
            0,
            0,
        )));
    }
    // NAME, NAME#ID, kernel-function#ID, kernel-function[OFF]#ID.
    let mut name = p.ident()?.to_string();
    while p.eat("-") {
        name.push('-');
        name.push_str(p.ident()?);
    }
    let mut kfunc_off = 0;
    if p.eat("[") {
        kfunc_off = off16(&p.signed()?)?;
        p.expect("]")?;
        if name != "kernel-function" {
            return Err(format!(
                "`{name}[..]`: only kernel-function takes an offset"
            ));
        }
    }
    if p.eat("#") {
        let id = imm32(&p.signed()?)?;
        return Ok(match name.as_str() {
            "kernel-function" => call_op(CallTarget::Kfunc {
                btf_id: id,
                off: kfunc_off,
            }),
            // The verifier prints a name for helpers; the id after `#` is the encoding.
            _ => call_op(CallTarget::Helper(id)),
        });
    }
    if !is_label(&name) {
        return Err(format!(
            "expected a helper, label or `pc+N` after `call`, found `{name}`"
        ));
    }
    Ok(Stmt {
        emit: Emit::Op(Op::Call(CallTarget::Helper(0))),
        label: Some((name, Field::CallByName)),
    })
}

fn cond_jump(p: &mut P<'_>) -> R<Stmt> {
    let (dst, wide) = p.reg()?;
    let cond = match p.next() {
        Some(Tok::P(op)) => match *op {
            "==" => JmpCond::Eq,
            "!=" => JmpCond::Ne,
            ">" => JmpCond::Gt,
            ">=" => JmpCond::Ge,
            "<" => JmpCond::Lt,
            "<=" => JmpCond::Le,
            "&" => JmpCond::Set,
            "s>" => JmpCond::Sgt,
            "s>=" => JmpCond::Sge,
            "s<" => JmpCond::Slt,
            "s<=" => JmpCond::Sle,
            other => return Err(format!("unknown comparison `{other}`")),
        },
        t => return Err(format!("expected a comparison, found {}", show(t))),
    };
    let src = if matches!(p.peek(), Some(Tok::Reg { .. })) {
        let (s, swide) = p.reg()?;
        if swide != wide {
            return Err("both sides of a comparison are `rN` or both `wN`".to_string());
        }
        Operand::Reg(s)
    } else {
        Operand::Imm(imm32(&p.signed()?)?)
    };
    p.expect_ident("goto")?;
    let t = p.target(false)?;
    let w = width(wide);
    // Narrow targets fit i16.
    Ok(with_target(
        |off| Op::Jcond {
            width: w,
            cond,
            dst,
            src,
            off: off as i16,
        },
        t,
        Field::Off16,
    ))
}

fn lock(p: &mut P<'_>) -> R<Stmt> {
    p.expect("*")?;
    let (size, sx) = p.size_cast()?;
    if sx || (size != Size::W && size != Size::DW) {
        return Err("`lock` operates on u32 or u64".to_string());
    }
    let (dst, off) = p.mem()?;
    let op = match p.next() {
        Some(Tok::P("+=")) => AtomicOp::Add { fetch: false },
        Some(Tok::P("|=")) => AtomicOp::Or { fetch: false },
        Some(Tok::P("&=")) => AtomicOp::And { fetch: false },
        Some(Tok::P("^=")) => AtomicOp::Xor { fetch: false },
        t => {
            return Err(format!(
                "expected `+=`, `|=`, `&=` or `^=` after `lock`, found {}",
                show(t)
            ))
        }
    };
    let (src, _) = p.reg()?;
    Ok(Stmt::op(Op::Atomic {
        size,
        op,
        dst,
        src,
        off,
    }))
}

/// `rD = ...` and `rD op= ...`.
fn assignment(p: &mut P<'_>, ld_imm64: bool) -> R<Stmt> {
    let (dst, wide) = p.reg()?;
    let w = width(wide);
    let alu = match p.next() {
        Some(Tok::P("=")) => return assign_rhs(p, dst, wide, ld_imm64),
        Some(Tok::P(op)) => match *op {
            "+=" => AluOp::Add,
            "-=" => AluOp::Sub,
            "*=" => AluOp::Mul,
            "/=" => AluOp::Div,
            "s/=" => AluOp::Sdiv,
            "%=" => AluOp::Mod,
            "s%=" => AluOp::Smod,
            "|=" => AluOp::Or,
            "&=" => AluOp::And,
            "^=" => AluOp::Xor,
            "<<=" => AluOp::Lsh,
            ">>=" => AluOp::Rsh,
            "s>>=" => AluOp::Arsh,
            other => return Err(format!("unknown operator `{other}`")),
        },
        t => {
            return Err(format!(
                "expected `=` or an operator after the register, found {}",
                show(t)
            ))
        }
    };
    let src = if matches!(p.peek(), Some(Tok::Reg { .. })) {
        let (s, swide) = p.reg()?;
        if swide != wide {
            return Err("both operands are `rN` or both `wN`".to_string());
        }
        Operand::Reg(s)
    } else {
        Operand::Imm(imm32(&p.signed()?)?)
    };
    Ok(Stmt::op(Op::Alu {
        width: w,
        op: alu,
        dst,
        src,
    }))
}

fn same_reg(a: Reg, b: Reg, what: &str) -> R<()> {
    if a == b {
        Ok(())
    } else {
        Err(format!(
            "{what}: both registers must be the same (r{} and r{})",
            a.num(),
            b.num()
        ))
    }
}

fn assign_rhs(p: &mut P<'_>, dst: Reg, wide: bool, ld_imm64: bool) -> R<Stmt> {
    let w = width(wide);
    match p.peek() {
        Some(Tok::Reg { .. }) => {
            let (src, swide) = p.reg()?;
            if swide != wide {
                return Err("both registers of a move are `rN` or both `wN`".to_string());
            }
            Ok(Stmt::op(Op::Alu {
                width: w,
                op: AluOp::Mov,
                dst,
                src: Operand::Reg(src),
            }))
        }
        Some(Tok::P("(")) => {
            // (s8)rS: sign-extending move.
            p.next();
            let bits = match p.ident()? {
                "s8" => 8,
                "s16" => 16,
                "s32" => 32,
                other => return Err(format!("expected (s8), (s16) or (s32), found `({other}`")),
            };
            p.expect(")")?;
            let (src, swide) = p.reg()?;
            if swide != wide {
                return Err("both registers of a move are `rN` or both `wN`".to_string());
            }
            Ok(Stmt::op(Op::Alu {
                width: w,
                op: AluOp::Movsx(bits),
                dst,
                src: Operand::Reg(src),
            }))
        }
        Some(Tok::P("-")) if matches!(p.peek2(), Some(Tok::Reg { .. })) => {
            p.next();
            let (src, _) = p.reg()?;
            same_reg(dst, src, "negation")?;
            Ok(Stmt::op(Op::Neg { width: w, dst }))
        }
        Some(Tok::P("*")) => {
            p.next();
            let (size, sign_extend) = p.size_cast()?;
            if p.eat_ident("skb") {
                return packet_load(p, dst, size, sign_extend);
            }
            let (src, off) = p.mem()?;
            Ok(Stmt::op(Op::Load {
                size,
                sign_extend,
                dst,
                src,
                off,
            }))
        }
        Some(Tok::Num(_) | Tok::P("-" | "+")) => {
            let text = p.signed()?;
            let ll = p.eat_ident("ll");
            value(dst, wide, &text, ll || ld_imm64)
        }
        Some(Tok::Ident(word)) => {
            let word = word.clone();
            p.next();
            function_rhs(p, dst, wide, &word)
        }
        t => Err(format!("expected a value after `=`, found {}", show(t))),
    }
}

/// `rD = VALUE`: the value the register gets decides the encoding.
fn value(dst: Reg, wide: bool, text: &str, ld_imm64: bool) -> R<Stmt> {
    let ld = |v: u64| {
        // Low and high halves of the value.
        Stmt::op(Op::LdImm64 {
            dst,
            pseudo: 0,
            imm: v as u32 as i32,
            next_imm: (v >> 32) as u32 as i32,
        })
    };
    if ld_imm64 {
        if !wide {
            return Err("a 64-bit load (`ll`) writes `rN`, not `wN`".to_string());
        }
        return Ok(ld(imm64(text)?));
    }
    if !wide {
        // `w1 = 0xffffffff` is the 32-bit pattern.
        return Ok(Stmt::op(Op::Alu {
            width: Width::W32,
            op: AluOp::Mov,
            dst,
            src: Operand::Imm(imm32(text)?),
        }));
    }
    let v = literal(text)
        .ok_or_else(|| format!("expected a number, found `{text}`"))?
        .value;
    if let Ok(imm) = i32::try_from(v) {
        Ok(Stmt::op(Op::Alu {
            width: Width::W64,
            op: AluOp::Mov,
            dst,
            src: Operand::Imm(imm),
        }))
    } else {
        // A value a sign-extended 32-bit immediate cannot give needs the 64-bit load.
        Ok(ld(imm64(text)?))
    }
}

/// `r0 = *(u8 *)skb[IMM]` or `skb[rS + IMM]` (the `skb` already eaten).
fn packet_load(p: &mut P<'_>, dst: Reg, size: Size, sx: bool) -> R<Stmt> {
    if dst != Reg::R0 || sx || size == Size::DW {
        return Err("a packet load is `r0 = *(u8|u16|u32 *)skb[...]`".to_string());
    }
    p.expect("[")?;
    let stmt = if matches!(p.peek(), Some(Tok::Reg { .. })) {
        let (src, _) = p.reg()?;
        let imm = if p.is("+") || p.is("-") {
            // The kernel prints `skb[r7 + -1]`.
            let neg = p.eat("-");
            if !neg {
                p.eat("+");
            }
            let text = p.signed()?;
            let v = imm32(&text)?;
            if neg {
                v.checked_neg()
                    .ok_or_else(|| format!("offset `-{text}` is out of range"))?
            } else {
                v
            }
        } else {
            0
        };
        Stmt::op(Op::LdInd { size, src, imm })
    } else {
        Stmt::op(Op::LdAbs {
            size,
            imm: imm32(&p.signed()?)?,
        })
    };
    p.expect("]")?;
    Ok(stmt)
}

/// The right-hand sides that start with a name: byte swaps, atomics, pseudo loads, labels.
fn function_rhs(p: &mut P<'_>, dst: Reg, wide: bool, word: &str) -> R<Stmt> {
    let end = |kind, bits: u8, p: &mut P<'_>| -> R<Stmt> {
        let (src, _) = p.reg()?;
        same_reg(dst, src, "byte swap")?;
        Ok(Stmt::op(Op::End { kind, bits, dst }))
    };
    for (prefix, kind) in [
        ("be", EndKind::ToBe),
        ("le", EndKind::ToLe),
        ("bswap", EndKind::Swap),
    ] {
        if let Some(bits) = word.strip_prefix(prefix).and_then(|b| match b {
            "16" => Some(16),
            "32" => Some(32),
            "64" => Some(64),
            _ => None,
        }) {
            return end(kind, bits, p);
        }
    }
    match word {
        "load_acquire" => {
            p.expect("(")?;
            let (size, sx) = p.size_cast()?;
            if sx {
                return Err("load_acquire takes an unsigned size".to_string());
            }
            let (src, off) = p.mem()?;
            p.expect(")")?;
            Ok(Stmt::op(Op::LoadAcquire {
                size,
                dst,
                src,
                off,
            }))
        }
        "addr_space_cast" => {
            p.expect("(")?;
            let (src, _) = p.reg()?;
            p.expect(",")?;
            let to = imm32(&p.signed()?)?;
            p.expect(",")?;
            let from = imm32(&p.signed()?)?;
            p.expect(")")?;
            let imm = (to << 16) | (from & 0xffff);
            Ok(Stmt::raw(Insn::new(
                c::ALU64 | c::MOV | c::X,
                dst.num(),
                src.num(),
                c::ADDR_SPACE_CAST,
                imm,
            )))
        }
        "map" | "btf_var" | "func" => pseudo(p, dst, wide, word),
        _ if word.starts_with("atomic") => kernel_atomic(p, dst, word),
        "xchg_64" | "xchg32_32" | "cmpxchg_64" | "cmpxchg32_32" => llvm_xchg(p, dst, wide, word),
        _ if is_label(word) => {
            // `r1 = LABEL ll`: the address of a function.
            p.eat_ident("ll");
            if !wide {
                return Err("a 64-bit load writes `rN`".to_string());
            }
            let op = Op::LdImm64 {
                dst,
                pseudo: c::PSEUDO_FUNC,
                imm: 0,
                next_imm: 0,
            };
            Ok(Stmt {
                emit: Emit::Op(op),
                label: Some((word.to_string(), Field::Imm32)),
            })
        }
        _ => Err(format!("unknown right-hand side `{word}`")),
    }
}

/// The kernel's and LLVM's atomic function forms: `atomic[64]_fetch_OP((SIZE *)(rB OFF), rS)`,
/// `atomic[64]_xchg(...)`, `atomic[64]_cmpxchg((SIZE *)(rB OFF), r0, rS)`.
fn kernel_atomic(p: &mut P<'_>, dst: Reg, word: &str) -> R<Stmt> {
    let (is64, rest) = match word.strip_prefix("atomic64_") {
        Some(r) => (true, r),
        None => (false, word.strip_prefix("atomic_").unwrap_or(word)),
    };
    let op = match rest {
        "fetch_add" => AtomicOp::Add { fetch: true },
        "fetch_or" => AtomicOp::Or { fetch: true },
        "fetch_and" => AtomicOp::And { fetch: true },
        "fetch_xor" => AtomicOp::Xor { fetch: true },
        "xchg" => AtomicOp::Xchg,
        "cmpxchg" => AtomicOp::Cmpxchg,
        _ => return Err(format!("unknown atomic operation `{word}`")),
    };
    p.expect("(")?;
    let (size, sx) = p.size_cast()?;
    if sx || (size != Size::W && size != Size::DW) {
        return Err(format!("`{word}` operates on u32 or u64"));
    }
    if is64 && size != Size::DW {
        return Err(format!("`{word}` operates on u64"));
    }
    let (base, off) = p.mem()?;
    p.expect(",")?;
    if op == AtomicOp::Cmpxchg {
        let (r0, _) = p.reg()?;
        if r0 != Reg::R0 || dst != Reg::R0 {
            return Err("cmpxchg compares with and returns in r0".to_string());
        }
        p.expect(",")?;
    }
    let (src, _) = p.reg()?;
    p.expect(")")?;
    if op != AtomicOp::Cmpxchg {
        same_reg(dst, src, word)?;
    }
    Ok(Stmt::op(Op::Atomic {
        size,
        op,
        dst: base,
        src,
        off,
    }))
}

/// LLVM's `rD = xchg_64(rB + OFF, rD)`, `wD = xchg32_32(...)`, `r0 = cmpxchg_64(rB + OFF, r0,
/// rS)`, `w0 = cmpxchg32_32(...)`.
fn llvm_xchg(p: &mut P<'_>, dst: Reg, wide: bool, word: &str) -> R<Stmt> {
    let size = if word.ends_with("_64") {
        Size::DW
    } else {
        Size::W
    };
    if wide != (size == Size::DW) {
        return Err(format!(
            "`{word}` returns in a {} register",
            if size == Size::DW { "rN" } else { "wN" }
        ));
    }
    p.expect("(")?;
    let (base, off) = p.base_off()?;
    p.expect(",")?;
    let cmp = word.starts_with("cmpxchg");
    if cmp {
        let (r0, _) = p.reg()?;
        if r0 != Reg::R0 || dst != Reg::R0 {
            return Err("cmpxchg compares with and returns in r0".to_string());
        }
        p.expect(",")?;
    }
    let (src, _) = p.reg()?;
    p.expect(")")?;
    if !cmp {
        same_reg(dst, src, word)?;
    }
    let op = if cmp {
        AtomicOp::Cmpxchg
    } else {
        AtomicOp::Xchg
    };
    Ok(Stmt::op(Op::Atomic {
        size,
        op,
        dst: base,
        src,
        off,
    }))
}

/// A map value offset: the kernel reads it as a u32, so any 32-bit pattern, decimal included.
fn value_offset(text: &str) -> R<i32> {
    let v = literal(text)
        .ok_or_else(|| format!("expected a number, found `{text}`"))?
        .value;
    if v >= i128::from(i32::MIN) && v <= i128::from(u32::MAX) {
        // The 32-bit pattern.
        Ok(v as u32 as i32)
    } else {
        Err(format!(
            "map value offset `{text}` is out of the 32-bit range"
        ))
    }
}

/// bpfkit's spelling of the pseudo LD_IMM64 forms (see `disasm::readable_imm64`).
fn pseudo(p: &mut P<'_>, dst: Reg, wide: bool, word: &str) -> R<Stmt> {
    if !wide {
        return Err("a 64-bit load writes `rN`".to_string());
    }
    p.expect("[")?;
    let ld = |pseudo, imm, next_imm| Op::LdImm64 {
        dst,
        pseudo,
        imm,
        next_imm,
    };
    let stmt = match word {
        "map" => {
            let key = p.ident()?.to_string();
            p.expect(":")?;
            let imm = imm32(&p.signed()?)?;
            p.expect("]")?;
            let value = if p.eat("[") {
                let zero = p.signed()?;
                if zero != "0" {
                    return Err(format!("map values are indexed `[0]`, found `[{zero}]`"));
                }
                p.expect("]")?;
                p.expect("+")?;
                Some(value_offset(&p.signed()?)?)
            } else {
                None
            };
            let pseudo = match (key.as_str(), value.is_some()) {
                ("fd", false) => c::PSEUDO_MAP_FD,
                ("fd", true) => c::PSEUDO_MAP_VALUE,
                ("idx", false) => c::PSEUDO_MAP_IDX,
                ("idx", true) => c::PSEUDO_MAP_IDX_VALUE,
                _ => {
                    return Err(format!(
                        "expected `map[fd:N]` or `map[idx:N]`, found `map[{key}:..]`"
                    ))
                }
            };
            let op = ld(pseudo, imm, value.unwrap_or(0));
            p.eat_ident("ll");
            return Ok(Stmt::op(op));
        }
        "btf_var" => {
            p.expect_ident("id")?;
            p.expect(":")?;
            let imm = imm32(&p.signed()?)?;
            let next = if p.eat(",") {
                p.expect_ident("fd")?;
                p.expect(":")?;
                imm32(&p.signed()?)?
            } else {
                0
            };
            Stmt::op(ld(c::PSEUDO_BTF_ID, imm, next))
        }
        _ => {
            let t = p.target(true)?;
            let next = if p.eat(",") {
                p.expect_ident("next")?;
                p.expect(":")?;
                imm32(&p.signed()?)?
            } else {
                0
            };
            with_target(|rel| ld(c::PSEUDO_FUNC, rel, next), t, Field::Imm32)
        }
    };
    p.expect("]")?;
    p.eat_ident("ll");
    Ok(stmt)
}
