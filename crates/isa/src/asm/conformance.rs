//! The eBPF ISA conformance suite's assembler syntax, and its printer.
//!
//! One instruction or label a line; `#` starts a comment. Registers are `%r0`..`%r10`.
//! Mnemonics follow the suite (see `shared/conformance/FORMAT.md`): `mov %r0, 1`, `add32 %r1,
//! %r2`, `sdiv`, `smod`, `neg`, `movsx864 %r0, %r1`, `be16 %r0`, `bswap64 %r0` (or `swap64`),
//! `ldxb %r0, [%r1+2]`, `ldxsh`, `stw [%r10-4], 5`, `stxdw [%r10-8], %r1`, `lddw %r0, 0x1122`,
//! `ja +3` / `ja LABEL`, `ja32` (target in the immediate), `jeq %r1, 5, +2` (and `jeq32`, ...),
//! `call 1`, `call local LABEL`, `call %r2` (uBPF's callx), `exit`, `lock add [%r10-8], %r1`,
//! `lock fetch xor32 ...`, `lock xchg`, `lock cmpxchg`. A label is `NAME:`. As in the suite's
//! reference assembler, `exit` is also an implicit label naming the first `exit` instruction
//! when the text defines no label of that name.
//!
//! bpfkit extends the syntax so that every instruction the decoder accepts has a spelling:
//! - `call helper N` (same as `call N`), `call runtime ID` (a kfunc call, src 2; `call runtime
//!   ID, OFF` when its offset is not zero), `call local +N`;
//! - legacy packet loads `ldabsb IMM`, `ldabsh`, `ldabsw`, `ldindb %rS, IMM`, `ldindh`, `ldindw`
//!   (uBPF's names);
//! - LD_IMM64 with a pseudo source: `lddw %r1, KIND IMM [NEXT]`, KIND being `map_fd` (src 1),
//!   `map_value` (2), `btf_id` (3), `func` (4, IMM may be `+N`, `-N` or a label), `map_idx` (5)
//!   or `map_idx_value` (6); IMM is the first slot's immediate, NEXT (default 0) the second's;
//! - Linux's newer instructions: `ldacqb %r0, [%r1+0]` (load-acquire, also `ldacqh`, `ldacqw`,
//!   `ldacqdw`), `strelw [%r1+0], %r2` (store-release), `may_goto +N` / `may_goto LABEL`.

use super::labels::{is_label, Builder, Field};
use super::num::{imm32, imm64, off16};
use super::AsmError;
use crate::insn::{Insn, Reg};
use crate::op::{
    decode, AluOp, AtomicOp, CallTarget, EncodingError, EndKind, JmpCond, Op, Operand, Size, Width,
};
use crate::opcode as c;

/// Assembles a program written in the conformance suite's syntax into instruction slots.
///
/// # Errors
/// The first line that is not a valid instruction or label (unknown mnemonic, bad register,
/// wrong operand count, a value out of its field's range, an unknown or duplicate label), or
/// an error at line 0 when the text holds no instruction at all.
pub fn assemble(text: &str) -> Result<Vec<Insn>, AsmError> {
    let mut b = Builder::default();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let code = raw.split('#').next().unwrap_or_default().trim();
        let code = match code.split_once(':') {
            Some((name, rest)) if is_label(name.trim()) => {
                b.define(name.trim(), line)?;
                rest.trim()
            }
            _ => code,
        };
        if code.is_empty() {
            continue;
        }
        statement(code)
            .map_err(|msg| AsmError::new(line, msg))?
            .apply(&mut b, line);
    }
    if b.next_slot() == 0 {
        return Err(AsmError::new(0, "no instructions"));
    }
    b.finish()
}

/// What one line assembles to: slots to emit, and maybe a label its target field waits for.
struct Stmt {
    emit: Emit,
    label: Option<(String, Field)>,
    /// `exit` defines the implicit `exit` label at its own slot.
    implicit_exit: bool,
}

enum Emit {
    Op(Op),
    Raw(Insn),
}

impl Stmt {
    fn op(op: Op) -> Self {
        Self {
            emit: Emit::Op(op),
            label: None,
            implicit_exit: false,
        }
    }

    fn apply(self, b: &mut Builder, line: usize) {
        if self.implicit_exit {
            b.define_implicit("exit");
        }
        let slot = match self.emit {
            Emit::Op(op) => b.push(&op),
            Emit::Raw(insn) => b.push_raw(insn),
        };
        if let Some((label, field)) = self.label {
            b.refer(slot, line, &label, field);
        }
    }
}

/// A jump target: a relative offset now, or a label to resolve at the end.
enum Target {
    Rel(i32),
    Label(String),
}

fn target(s: &str, wide: bool) -> Result<Target, String> {
    let s = s.trim();
    if s.starts_with(['+', '-']) {
        if wide {
            imm32(s).map(Target::Rel)
        } else {
            off16(s).map(|o| Target::Rel(i32::from(o)))
        }
    } else if is_label(s) {
        Ok(Target::Label(s.to_string()))
    } else {
        Err(format!(
            "expected a jump target (`+N`, `-N` or a label), found `{s}`"
        ))
    }
}

/// Splits `rest` into comma-separated operands and checks their count.
fn operands<'a>(mnem: &str, rest: &'a str, n: usize) -> Result<Vec<&'a str>, String> {
    let ops: Vec<&str> = if rest.trim().is_empty() {
        Vec::new()
    } else {
        rest.split(',').map(str::trim).collect()
    };
    if ops.len() != n {
        let plural = if n == 1 { "" } else { "s" };
        return Err(format!(
            "`{mnem}` takes {n} operand{plural}, found {}",
            ops.len()
        ));
    }
    if let Some(empty) = ops.iter().position(|o| o.is_empty()) {
        return Err(format!("`{mnem}`: operand {} is empty", empty + 1));
    }
    Ok(ops)
}

fn reg(s: &str) -> Result<Reg, String> {
    s.strip_prefix("%r")
        .filter(|n| !n.is_empty() && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<u8>().ok())
        .and_then(Reg::new)
        .ok_or_else(|| format!("invalid register `{s}` (expected %r0 to %r10)"))
}

/// `[%rN]`, `[%rN+OFF]` or `[%rN-OFF]`.
fn mem(s: &str) -> Result<(Reg, i16), String> {
    let inner = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .ok_or_else(|| format!("expected a memory operand like `[%r1+8]`, found `{s}`"))?;
    match inner.find(['+', '-']) {
        Some(at) => Ok((reg(inner[..at].trim())?, off16(&inner[at..])?)),
        None => Ok((reg(inner.trim())?, 0)),
    }
}

fn operand(s: &str) -> Result<Operand, String> {
    if s.starts_with('%') {
        reg(s).map(Operand::Reg)
    } else {
        imm32(s).map(Operand::Imm)
    }
}

fn size_suffix(s: &str) -> Option<Size> {
    match s {
        "b" => Some(Size::B),
        "h" => Some(Size::H),
        "w" => Some(Size::W),
        "dw" => Some(Size::DW),
        _ => None,
    }
}

fn alu_op(name: &str) -> Option<AluOp> {
    Some(match name {
        "add" => AluOp::Add,
        "sub" => AluOp::Sub,
        "mul" => AluOp::Mul,
        "div" => AluOp::Div,
        "sdiv" => AluOp::Sdiv,
        "or" => AluOp::Or,
        "and" => AluOp::And,
        "lsh" => AluOp::Lsh,
        "rsh" => AluOp::Rsh,
        "mod" => AluOp::Mod,
        "smod" => AluOp::Smod,
        "xor" => AluOp::Xor,
        "mov" => AluOp::Mov,
        "arsh" => AluOp::Arsh,
        _ => return None,
    })
}

fn jmp_cond(name: &str) -> Option<JmpCond> {
    Some(match name {
        "jeq" => JmpCond::Eq,
        "jgt" => JmpCond::Gt,
        "jge" => JmpCond::Ge,
        "jset" => JmpCond::Set,
        "jne" => JmpCond::Ne,
        "jsgt" => JmpCond::Sgt,
        "jsge" => JmpCond::Sge,
        "jlt" => JmpCond::Lt,
        "jle" => JmpCond::Le,
        "jslt" => JmpCond::Slt,
        "jsle" => JmpCond::Sle,
        _ => return None,
    })
}

/// Splits a trailing width suffix: `add32` is 32-bit, `add` and `add64` are 64-bit.
fn width_suffix(m: &str) -> (&str, Width) {
    if let Some(base) = m.strip_suffix("32") {
        (base, Width::W32)
    } else if let Some(base) = m.strip_suffix("64") {
        (base, Width::W64)
    } else {
        (m, Width::W64)
    }
}

fn statement(code: &str) -> Result<Stmt, String> {
    let (mnem, rest) = code.split_once(char::is_whitespace).unwrap_or((code, ""));
    let rest = rest.trim();
    match mnem {
        "exit" => {
            operands(mnem, rest, 0)?;
            Ok(Stmt {
                emit: Emit::Op(Op::Exit),
                label: None,
                implicit_exit: true,
            })
        }
        "lock" => lock(rest),
        "call" => call(rest),
        "ja" | "ja32" => {
            let long = mnem == "ja32";
            let ops = operands(mnem, rest, 1)?;
            Ok(jump(Op::Ja { off: 0, long }, target(ops[0], long)?, long))
        }
        "lddw" => lddw(rest),
        "may_goto" => {
            let ops = operands(mnem, rest, 1)?;
            Ok(jump(Op::MayGoto { off: 0 }, target(ops[0], false)?, false))
        }
        _ => {
            if let Some(stmt) = memory(mnem, rest)? {
                return Ok(stmt);
            }
            if let Some(stmt) = alu(mnem, rest)? {
                return Ok(stmt);
            }
            let (base, width) = width_suffix(mnem);
            if mnem.ends_with("64") {
                return Err(format!("unknown mnemonic `{mnem}`"));
            }
            if let Some(cond) = jmp_cond(base) {
                let ops = operands(mnem, rest, 3)?;
                let dst = reg(ops[0])?;
                let src = operand(ops[1])?;
                let op = Op::Jcond {
                    width,
                    cond,
                    dst,
                    src,
                    off: 0,
                };
                return Ok(jump(op, target(ops[2], false)?, false));
            }
            Err(format!("unknown mnemonic `{mnem}`"))
        }
    }
}

/// A jump-like statement whose target field is either set now or waits for a label.
fn jump(op: Op, t: Target, wide: bool) -> Stmt {
    let field = if wide { Field::Imm32 } else { Field::Off16 };
    match t {
        Target::Label(l) => Stmt {
            emit: Emit::Op(op),
            label: Some((l, field)),
            implicit_exit: false,
        },
        Target::Rel(rel) => Stmt::op(match op {
            Op::Ja { long, .. } => Op::Ja { off: rel, long },
            Op::MayGoto { .. } => Op::MayGoto { off: rel as i16 },
            // Narrow targets were parsed as 16-bit offsets.
            Op::Jcond {
                width,
                cond,
                dst,
                src,
                ..
            } => Op::Jcond {
                width,
                cond,
                dst,
                src,
                off: rel as i16,
            },
            Op::Call(CallTarget::Local(_)) => Op::Call(CallTarget::Local(rel)),
            Op::LdImm64 {
                dst,
                pseudo,
                next_imm,
                ..
            } => Op::LdImm64 {
                dst,
                pseudo,
                imm: rel,
                next_imm,
            },
            other => other,
        }),
    }
}

fn alu(mnem: &str, rest: &str) -> Result<Option<Stmt>, String> {
    for (prefix, kind) in [
        ("be", EndKind::ToBe),
        ("le", EndKind::ToLe),
        ("bswap", EndKind::Swap),
        ("swap", EndKind::Swap),
    ] {
        if let Some(bits) = mnem.strip_prefix(prefix).and_then(|b| match b {
            "16" => Some(16),
            "32" => Some(32),
            "64" => Some(64),
            _ => None,
        }) {
            let ops = operands(mnem, rest, 1)?;
            return Ok(Some(Stmt::op(Op::End {
                kind,
                bits,
                dst: reg(ops[0])?,
            })));
        }
    }
    let movsx = match mnem {
        "movsx864" => Some((Width::W64, 8)),
        "movsx1664" => Some((Width::W64, 16)),
        "movsx3264" => Some((Width::W64, 32)),
        "movsx832" => Some((Width::W32, 8)),
        "movsx1632" => Some((Width::W32, 16)),
        _ => None,
    };
    if let Some((width, bits)) = movsx {
        let ops = operands(mnem, rest, 2)?;
        let src = Operand::Reg(
            reg(ops[1]).map_err(|e| format!("`{mnem}` needs a source register: {e}"))?,
        );
        return Ok(Some(Stmt::op(Op::Alu {
            width,
            op: AluOp::Movsx(bits),
            dst: reg(ops[0])?,
            src,
        })));
    }
    let (base, width) = width_suffix(mnem);
    if base == "neg" {
        let ops = operands(mnem, rest, 1)?;
        return Ok(Some(Stmt::op(Op::Neg {
            width,
            dst: reg(ops[0])?,
        })));
    }
    let Some(op) = alu_op(base) else {
        return Ok(None);
    };
    let ops = operands(mnem, rest, 2)?;
    Ok(Some(Stmt::op(Op::Alu {
        width,
        op,
        dst: reg(ops[0])?,
        src: operand(ops[1])?,
    })))
}

fn memory(mnem: &str, rest: &str) -> Result<Option<Stmt>, String> {
    if let Some(size) = mnem.strip_prefix("ldacq").and_then(size_suffix) {
        let ops = operands(mnem, rest, 2)?;
        let (src, off) = mem(ops[1])?;
        return Ok(Some(Stmt::op(Op::LoadAcquire {
            size,
            dst: reg(ops[0])?,
            src,
            off,
        })));
    }
    if let Some(size) = mnem.strip_prefix("strel").and_then(size_suffix) {
        let ops = operands(mnem, rest, 2)?;
        let (dst, off) = mem(ops[0])?;
        return Ok(Some(Stmt::op(Op::StoreRelease {
            size,
            dst,
            src: reg(ops[1])?,
            off,
        })));
    }
    if let Some(size) = mnem.strip_prefix("ldxs").and_then(size_suffix) {
        if size == Size::DW {
            return Err(format!(
                "unknown mnemonic `{mnem}` (no 64-bit sign-extending load)"
            ));
        }
        let ops = operands(mnem, rest, 2)?;
        let (src, off) = mem(ops[1])?;
        return Ok(Some(Stmt::op(Op::Load {
            size,
            sign_extend: true,
            dst: reg(ops[0])?,
            src,
            off,
        })));
    }
    if let Some(size) = mnem.strip_prefix("ldx").and_then(size_suffix) {
        let ops = operands(mnem, rest, 2)?;
        let (src, off) = mem(ops[1])?;
        return Ok(Some(Stmt::op(Op::Load {
            size,
            sign_extend: false,
            dst: reg(ops[0])?,
            src,
            off,
        })));
    }
    if let Some(size) = mnem.strip_prefix("stx").and_then(size_suffix) {
        let ops = operands(mnem, rest, 2)?;
        let (dst, off) = mem(ops[0])?;
        return Ok(Some(Stmt::op(Op::StoreReg {
            size,
            dst,
            src: reg(ops[1])?,
            off,
        })));
    }
    if let Some(size) = mnem.strip_prefix("st").and_then(size_suffix) {
        let ops = operands(mnem, rest, 2)?;
        let (dst, off) = mem(ops[0])?;
        return Ok(Some(Stmt::op(Op::StoreImm {
            size,
            dst,
            off,
            imm: imm32(ops[1])?,
        })));
    }
    let legacy = |prefix: &str| {
        mnem.strip_prefix(prefix)
            .and_then(size_suffix)
            .filter(|s| *s != Size::DW)
    };
    if let Some(size) = legacy("ldabs") {
        let ops = operands(mnem, rest, 1)?;
        return Ok(Some(Stmt::op(Op::LdAbs {
            size,
            imm: imm32(ops[0])?,
        })));
    }
    if let Some(size) = legacy("ldind") {
        let ops = operands(mnem, rest, 2)?;
        return Ok(Some(Stmt::op(Op::LdInd {
            size,
            src: reg(ops[0])?,
            imm: imm32(ops[1])?,
        })));
    }
    Ok(None)
}

fn lock(rest: &str) -> Result<Stmt, String> {
    let mut words = rest.splitn(2, char::is_whitespace);
    let mut name = words.next().unwrap_or_default();
    let mut tail = words.next().unwrap_or_default().trim();
    let fetch = name == "fetch";
    if fetch {
        let mut w = tail.splitn(2, char::is_whitespace);
        name = w.next().unwrap_or_default();
        tail = w.next().unwrap_or_default().trim();
    }
    if name.is_empty() {
        return Err("`lock` needs an operation: add, or, and, xor, xchg or cmpxchg".to_string());
    }
    let (base, width) = width_suffix(name);
    if name.ends_with("64") {
        return Err(format!("unknown atomic operation `{name}`"));
    }
    let op = match (base, fetch) {
        ("add", _) => AtomicOp::Add { fetch },
        ("or", _) => AtomicOp::Or { fetch },
        ("and", _) => AtomicOp::And { fetch },
        ("xor", _) => AtomicOp::Xor { fetch },
        ("xchg", false) => AtomicOp::Xchg,
        ("cmpxchg", false) => AtomicOp::Cmpxchg,
        ("xchg" | "cmpxchg", true) => {
            return Err(format!(
                "`lock fetch {name}`: {base} always fetches; write `lock {name}`"
            ))
        }
        _ => return Err(format!("unknown atomic operation `{name}`")),
    };
    let ops = operands(&format!("lock {name}"), tail, 2)?;
    let (dst, off) = mem(ops[0])?;
    let size = if width == Width::W32 {
        Size::W
    } else {
        Size::DW
    };
    Ok(Stmt::op(Op::Atomic {
        size,
        op,
        dst,
        src: reg(ops[1])?,
        off,
    }))
}

fn call(rest: &str) -> Result<Stmt, String> {
    let (mode, arg) = match rest.split_once(char::is_whitespace) {
        Some((m @ ("helper" | "local" | "runtime"), a)) => (m, a.trim()),
        _ => ("helper", rest.trim()),
    };
    if arg.is_empty() {
        return Err("`call` needs a target".to_string());
    }
    match mode {
        "local" => {
            let ops = operands("call local", arg, 1)?;
            Ok(jump(
                Op::Call(CallTarget::Local(0)),
                target(ops[0], true)?,
                true,
            ))
        }
        "runtime" => {
            let ops: Vec<&str> = arg.split(',').map(str::trim).collect();
            let (id, off) = match ops.as_slice() {
                [id] => (imm32(id)?, 0),
                [id, off] => (imm32(id)?, off16(off)?),
                _ => return Err("`call runtime` takes a BTF id and an optional offset".to_string()),
            };
            Ok(Stmt::op(Op::Call(CallTarget::Kfunc { btf_id: id, off })))
        }
        _ => {
            let ops = operands("call", arg, 1)?;
            if ops[0].starts_with('%') {
                // uBPF's callx: JMP | CALL | X with the register in dst. Linux rejects it.
                let r = reg(ops[0])?;
                Ok(Stmt {
                    emit: Emit::Raw(Insn::new(c::JMP | c::CALL | c::X, r.num(), 0, 0, 0)),
                    label: None,
                    implicit_exit: false,
                })
            } else {
                Ok(Stmt::op(Op::Call(CallTarget::Helper(imm32(ops[0])?))))
            }
        }
    }
}

/// The names of the LD_IMM64 pseudo sources 1..=6, in order.
const PSEUDO_NAMES: [&str; 6] = [
    "map_fd",
    "map_value",
    "btf_id",
    "func",
    "map_idx",
    "map_idx_value",
];

fn lddw(rest: &str) -> Result<Stmt, String> {
    let ops = operands("lddw", rest, 2)?;
    let dst = reg(ops[0])?;
    let mut words = ops[1].split_whitespace();
    let first = words.next().unwrap_or_default();
    let Some(kind) = PSEUDO_NAMES.iter().position(|n| *n == first) else {
        let v = imm64(ops[1])?;
        // Low and high halves of the 64-bit value.
        return Ok(Stmt::op(Op::LdImm64 {
            dst,
            pseudo: 0,
            imm: v as u32 as i32,
            next_imm: (v >> 32) as u32 as i32,
        }));
    };
    let pseudo = kind as u8 + 1;
    let args: Vec<&str> = words.collect();
    let (a, next) = match args.as_slice() {
        [a] => (*a, 0),
        [a, n] => (*a, imm32(n)?),
        _ => {
            return Err(format!(
                "`lddw {first}` takes one or two values, found {}",
                args.len()
            ))
        }
    };
    if pseudo == c::PSEUDO_FUNC && !a.starts_with(|ch: char| ch.is_ascii_digit()) {
        let op = Op::LdImm64 {
            dst,
            pseudo,
            imm: 0,
            next_imm: next,
        };
        return Ok(jump(op, target(a, true)?, true));
    }
    Ok(Stmt::op(Op::LdImm64 {
        dst,
        pseudo,
        imm: imm32(a)?,
        next_imm: next,
    }))
}

// ---------------------------------------------------------------------------------------------
// The printer.

fn fmt_imm(imm: i32) -> String {
    if imm <= 10 {
        imm.to_string()
    } else {
        format!("{imm:#x}")
    }
}

fn fmt_rel(rel: i32) -> String {
    format!("{rel:+}")
}

fn fmt_mem(r: Reg, off: i16) -> String {
    if off == 0 {
        format!("[%r{}]", r.num())
    } else {
        format!("[%r{}{off:+}]", r.num())
    }
}

fn fmt_operand(src: Operand) -> String {
    match src {
        Operand::Reg(r) => format!("%r{}", r.num()),
        Operand::Imm(i) => fmt_imm(i),
    }
}

fn size_name(size: Size) -> &'static str {
    match size {
        Size::B => "b",
        Size::H => "h",
        Size::W => "w",
        Size::DW => "dw",
    }
}

const fn suffix(width: Width) -> &'static str {
    match width {
        Width::W32 => "32",
        Width::W64 => "",
    }
}

/// Prints one instruction in the conformance syntax; jump targets are relative (`+N`).
/// [`assemble`] of the result gives back the instruction's slots.
#[must_use]
pub fn print(op: &Op) -> String {
    match *op {
        Op::Alu {
            width,
            op: AluOp::Movsx(bits),
            dst,
            src,
        } => {
            let to = if width == Width::W64 { 64 } else { 32 };
            format!("movsx{bits}{to} %r{}, {}", dst.num(), fmt_operand(src))
        }
        Op::Alu {
            width,
            op,
            dst,
            src,
        } => {
            let name = match op {
                AluOp::Add => "add",
                AluOp::Sub => "sub",
                AluOp::Mul => "mul",
                AluOp::Div => "div",
                AluOp::Sdiv => "sdiv",
                AluOp::Or => "or",
                AluOp::And => "and",
                AluOp::Lsh => "lsh",
                AluOp::Rsh => "rsh",
                AluOp::Mod => "mod",
                AluOp::Smod => "smod",
                AluOp::Xor => "xor",
                AluOp::Mov | AluOp::Movsx(_) => "mov",
                AluOp::Arsh => "arsh",
            };
            format!(
                "{name}{} %r{}, {}",
                suffix(width),
                dst.num(),
                fmt_operand(src)
            )
        }
        Op::Neg { width, dst } => format!("neg{} %r{}", suffix(width), dst.num()),
        Op::End { kind, bits, dst } => {
            let name = match kind {
                EndKind::ToLe => "le",
                EndKind::ToBe => "be",
                EndKind::Swap => "bswap",
            };
            format!("{name}{bits} %r{}", dst.num())
        }
        Op::LdImm64 {
            dst,
            pseudo: 0,
            imm,
            next_imm,
        } => {
            let v = (u64::from(next_imm as u32) << 32) | u64::from(imm as u32);
            format!("lddw %r{}, {v:#x}", dst.num())
        }
        Op::LdImm64 {
            dst,
            pseudo,
            imm,
            next_imm,
        } => {
            let name = PSEUDO_NAMES
                .get(usize::from(pseudo) - 1)
                .copied()
                .unwrap_or("pseudo?");
            let first = if pseudo == c::PSEUDO_FUNC {
                fmt_rel(imm)
            } else {
                imm.to_string()
            };
            if next_imm == 0 {
                format!("lddw %r{}, {name} {first}", dst.num())
            } else {
                format!("lddw %r{}, {name} {first} {next_imm}", dst.num())
            }
        }
        Op::LdAbs { size, imm } => format!("ldabs{} {}", size_name(size), fmt_imm(imm)),
        Op::LdInd { size, src, imm } => {
            format!("ldind{} %r{}, {}", size_name(size), src.num(), fmt_imm(imm))
        }
        Op::Load {
            size,
            sign_extend,
            dst,
            src,
            off,
        } => {
            let s = if sign_extend { "s" } else { "" };
            format!(
                "ldx{s}{} %r{}, {}",
                size_name(size),
                dst.num(),
                fmt_mem(src, off)
            )
        }
        Op::StoreImm {
            size,
            dst,
            off,
            imm,
        } => format!(
            "st{} {}, {}",
            size_name(size),
            fmt_mem(dst, off),
            fmt_imm(imm)
        ),
        Op::StoreReg {
            size,
            dst,
            src,
            off,
        } => format!(
            "stx{} {}, %r{}",
            size_name(size),
            fmt_mem(dst, off),
            src.num()
        ),
        Op::Atomic {
            size,
            op,
            dst,
            src,
            off,
        } => {
            let w = if size == Size::W { "32" } else { "" };
            let (fetch, name) = match op {
                AtomicOp::Add { fetch } => (fetch, "add"),
                AtomicOp::Or { fetch } => (fetch, "or"),
                AtomicOp::And { fetch } => (fetch, "and"),
                AtomicOp::Xor { fetch } => (fetch, "xor"),
                AtomicOp::Xchg => (false, "xchg"),
                AtomicOp::Cmpxchg => (false, "cmpxchg"),
            };
            let f = if fetch { "fetch " } else { "" };
            format!("lock {f}{name}{w} {}, %r{}", fmt_mem(dst, off), src.num())
        }
        Op::LoadAcquire {
            size,
            dst,
            src,
            off,
        } => {
            format!(
                "ldacq{} %r{}, {}",
                size_name(size),
                dst.num(),
                fmt_mem(src, off)
            )
        }
        Op::StoreRelease {
            size,
            dst,
            src,
            off,
        } => {
            format!(
                "strel{} {}, %r{}",
                size_name(size),
                fmt_mem(dst, off),
                src.num()
            )
        }
        Op::MayGoto { off } => format!("may_goto {}", fmt_rel(i32::from(off))),
        Op::Ja { off, long: false } => format!("ja {}", fmt_rel(off)),
        Op::Ja { off, long: true } => format!("ja32 {}", fmt_rel(off)),
        Op::Jcond {
            width,
            cond,
            dst,
            src,
            off,
        } => {
            let name = match cond {
                JmpCond::Eq => "jeq",
                JmpCond::Gt => "jgt",
                JmpCond::Ge => "jge",
                JmpCond::Set => "jset",
                JmpCond::Ne => "jne",
                JmpCond::Sgt => "jsgt",
                JmpCond::Sge => "jsge",
                JmpCond::Lt => "jlt",
                JmpCond::Le => "jle",
                JmpCond::Slt => "jslt",
                JmpCond::Sle => "jsle",
            };
            format!(
                "{name}{} %r{}, {}, {}",
                suffix(width),
                dst.num(),
                fmt_operand(src),
                fmt_rel(i32::from(off))
            )
        }
        Op::Call(CallTarget::Helper(id)) => format!("call {id}"),
        Op::Call(CallTarget::Local(rel)) => format!("call local {}", fmt_rel(rel)),
        Op::Call(CallTarget::Kfunc { btf_id, off: 0 }) => format!("call runtime {btf_id}"),
        Op::Call(CallTarget::Kfunc { btf_id, off }) => format!("call runtime {btf_id}, {off}"),
        Op::Exit => "exit".to_string(),
    }
}

/// Decodes a whole program and prints it, one instruction a line.
///
/// # Errors
/// The first instruction the decoder rejects.
pub fn disassemble(insns: &[Insn]) -> Result<String, EncodingError> {
    let mut out = String::new();
    let mut idx = 0;
    while idx < insns.len() {
        let op = decode(insns, idx)?;
        out.push_str(&print(&op));
        out.push('\n');
        idx += op.slots();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Vec<Insn> {
        match assemble(text) {
            Ok(v) => v,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    #[test]
    fn encodings_match_rfc_9669_opcodes() {
        // Opcode values from RFC 9669's tables (Appendix A).
        assert_eq!(one("mov %r0, 1"), vec![Insn::new(0xb7, 0, 0, 0, 1)]);
        assert_eq!(one("mov32 %r1, %r2"), vec![Insn::new(0xbc, 1, 2, 0, 0)]);
        assert_eq!(one("sdiv32 %r1, 3"), vec![Insn::new(0x34, 1, 0, 1, 3)]);
        assert_eq!(one("smod %r1, %r3"), vec![Insn::new(0x9f, 1, 3, 1, 0)]);
        assert_eq!(
            one("movsx1632 %r1, %r3"),
            vec![Insn::new(0xbc, 1, 3, 16, 0)]
        );
        assert_eq!(one("be16 %r1"), vec![Insn::new(0xdc, 1, 0, 0, 16)]);
        assert_eq!(one("le64 %r1"), vec![Insn::new(0xd4, 1, 0, 0, 64)]);
        assert_eq!(one("swap32 %r1"), vec![Insn::new(0xd7, 1, 0, 0, 32)]);
        assert_eq!(
            one("ldxsh %r0, [%r10-2]"),
            vec![Insn::new(0x89, 0, 10, -2, 0)]
        );
        assert_eq!(
            one("stdw [%r10-16], 0xab"),
            vec![Insn::new(0x7a, 10, 0, -16, 0xab)]
        );
        assert_eq!(one("stxb [%r1], %r0"), vec![Insn::new(0x73, 1, 0, 0, 0)]);
        assert_eq!(one("ja32 +2"), vec![Insn::new(0x06, 0, 0, 0, 2)]);
        assert_eq!(
            one("jsle32 %r1, -1, -3"),
            vec![Insn::new(0xd6, 1, 0, -3, -1)]
        );
        assert_eq!(
            one("lock fetch and32 [%r10-4], %r3"),
            vec![Insn::new(0xc3, 10, 3, -4, 0x51)]
        );
        assert_eq!(
            one("lock cmpxchg [%r10-8], %r1"),
            vec![Insn::new(0xdb, 10, 1, -8, 0xf1)]
        );
        assert_eq!(one("call %r2"), vec![Insn::new(0x8d, 2, 0, 0, 0)]);
        assert_eq!(
            one("lddw %r0, 0x1122334455667788"),
            vec![
                Insn::new(0x18, 0, 0, 0, 0x5566_7788),
                Insn::new(0, 0, 0, 0, 0x1122_3344)
            ]
        );
    }

    #[test]
    fn labels_resolve_backwards_forwards_and_to_the_first_exit() {
        let p = one("ja L\nL:\njne %r1, 2, exit\nmov %r0, 1\nexit\nexit");
        assert_eq!(p[0].off, 0);
        assert_eq!(p[1].off, 1);
        let p = one("f:\nmov %r0, 1\ncall local f\nlddw %r1, func f\nexit");
        assert_eq!(p[1].imm, -2);
        assert_eq!((p[2].src, p[2].imm), (4, -3));
    }

    #[test]
    fn errors_name_the_line() {
        let e = assemble("mov %r0, 1\n\nldxq %r0, %r1\n").expect_err("must be rejected");
        assert_eq!(e.line, 3);
        assert!(e.message.contains("ldxq"), "{e}");
        assert_eq!(
            assemble("ja nowhere").expect_err("must be rejected").line,
            1
        );
        assert_eq!(
            assemble("# nothing\n").expect_err("must be rejected").line,
            0
        );
        assert!(assemble("x:\nx:\nexit")
            .expect_err("must be rejected")
            .message
            .contains("twice"));
    }
}
