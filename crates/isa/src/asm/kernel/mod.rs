//! The kernel/LLVM assembler syntax: what `llvm-objdump -d` and the kernel's verifier log print.
//!
//! ```text
//! r0 = *(u8 *)(r1 + 12)          *(u64 *)(r10 -8) = r1        w0 = w1          r1 = (s8)r2
//! if r1 != 4 goto +8             if w1 s> w2 goto pc-3        goto LBB0_3      gotol +70000
//! r1 = 0x1122334455667788 ll     r1 = be16 r1                 r1 = bswap64 r1  r1 s/= 3
//! call 1     call bpf_map_lookup_elem     call bpf_map_lookup_elem#1     call pc+5     exit
//! lock *(u64 *)(r0 + 0) += r1    r0 = atomic64_fetch_add((u64 *)(r10 -8), r0)
//! r0 = atomic64_cmpxchg((u64 *)(r1 +0), r0, r2)    r0 = cmpxchg_64(r1 + 0, r0, r2)
//! r2 = atomic64_xchg((u64 *)(r1 +0), r2)           r2 = xchg_64(r1 + 0, r2)
//! r0 = *(u16 *)skb[12]   r0 = *(u32 *)skb[r7 + -1]   r0 = load_acquire((u64 *)(r1 +0))
//! store_release((u32 *)(r1 +0), r2)   may_goto pc+3   r1 = map[fd:3]   r1 = map[idx:0][0]+8
//! ```
//!
//! Lines may carry what the tools print around an instruction: the verifier's `12: (b7) `
//! prefix (the opcode in parentheses is then checked against the instruction, and `(18)`
//! makes `r1 = 0x10` a 64-bit load), its `; R0=...` state, objdump's index, raw bytes and
//! `<prog+0x10>` annotations, `#` and `//` comments. A label is `NAME:` (`LBB0_3:`); objdump's
//! `0000000000000000 <prog>:` defines `prog`. Jump targets are `+N`, `-N`, `pc+N` or a label.
//!
//! Values: `rN = V` loads the value V, choosing the encoding: a `mov` when a sign-extended
//! 32-bit immediate gives V, else LD_IMM64 (always with `ll`, as LLVM writes it). Elsewhere a
//! hexadecimal immediate may be written as its 32-bit pattern (`if r4 != 0xfffffffd`, as the
//! kernel prints -3).
//!
//! Calls: `call N` is helper N; `call pc+N` is a local call; `call NAME` is a local call when
//! NAME is a label of the text, else the helper NAME through [`Options::helper_id`];
//! `call NAME#N` (the verifier's form) is helper N, `call kernel-function#N` kfunc N
//! (`kernel-function[OFF]#N` with a module BTF offset), `callx rN` uBPF's callx.
//!
//! LD_IMM64 pseudo sources (the kernel prints an address there) are spelled as bpftool does
//! for maps: `map[fd:3]` (src 1), `map[fd:3][0]+8` (2), `btf_var[id:123]` and
//! `btf_var[id:123,fd:7]` (3), `func[pc+5]` or `func[LABEL]` (4; also `r1 = LABEL ll`),
//! `map[idx:0]` (5), `map[idx:0][0]+8` (6); `ll` may follow.
//!
//! [`print()`] and [`disassemble`] print with [`crate::disasm::print_insn`] (the kernel's text)
//! plus the spellings above, so that their output assembles back to the same slots.

mod lex;
mod parse;

use super::labels::Builder;
use super::AsmError;
use crate::disasm::{print_insn, readable_imm64, PrintOptions};
use crate::insn::Insn;
use crate::op::{decode, EncodingError};
use parse::Emit;

/// Finds a helper's id by name (`bpf_map_lookup_elem` → 1).
pub type HelperIdFn<'a> = dyn Fn(&str) -> Option<i32> + 'a;

/// Options of [`assemble_with`].
#[derive(Clone, Copy, Default)]
pub struct Options<'a> {
    /// Helper ids by name, for `call NAME` (bpfkit's runtime has the kernel's table).
    pub helper_id: Option<&'a HelperIdFn<'a>>,
}

/// Assembles kernel/LLVM-syntax text into instruction slots, knowing no helper names.
///
/// # Errors
/// The first line that is not an instruction or label, with its number and what is wrong;
/// an error at line 0 when the text holds no instruction.
pub fn assemble(text: &str) -> Result<Vec<Insn>, AsmError> {
    assemble_with(text, &Options::default())
}

/// Assembles kernel/LLVM-syntax text into instruction slots.
///
/// # Errors
/// As [`assemble`]; also a `call NAME` whose NAME is neither a label nor a known helper.
pub fn assemble_with(text: &str, opts: &Options<'_>) -> Result<Vec<Insn>, AsmError> {
    let mut b = Builder::default();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let (prefix, code_text) = lex::clean(raw);
        for label in &prefix.labels {
            b.define(label, line)?;
        }
        if code_text.is_empty() {
            if let Some(op) = prefix.opcode {
                return Err(AsmError::new(
                    line,
                    format!("opcode ({op:02x}) without an instruction"),
                ));
            }
            continue;
        }
        let err = |m: String| AsmError::new(line, m);
        let toks = lex::tokens(code_text).map_err(err)?;
        let stmt = parse::statement(&toks, prefix.opcode == Some(0x18)).map_err(err)?;
        let slot = match stmt.emit {
            Emit::Op(op) => b.push(&op),
            Emit::Raw(insn) => b.push_raw(insn),
        };
        if let Some(hint) = prefix.opcode {
            let code = b.code_at(slot);
            if code != Some(hint) {
                return Err(AsmError::new(
                    line,
                    format!(
                        "the prefix says opcode ({hint:02x}) but `{code_text}` is ({:02x})",
                        code.unwrap_or_default(),
                        code_text = code_text
                    ),
                ));
            }
        }
        if let Some((label, field)) = stmt.label {
            b.refer(slot, line, &label, field);
        }
    }
    if b.next_slot() == 0 {
        return Err(AsmError::new(0, "no instructions"));
    }
    b.finish_with(&|name| opts.helper_id.and_then(|f| f(name)))
}

/// The options under which [`crate::disasm::print_insn`] prints text that [`assemble`] reads
/// back: bpfkit's pseudo LD_IMM64 spellings and kfunc offsets, plus the caller's helper names.
#[must_use]
pub fn lossless<'a>(helper_name: Option<&'a crate::disasm::HelperNameFn<'a>>) -> PrintOptions<'a> {
    PrintOptions {
        helper_name,
        kfunc_name: Some(&kfunc_name),
        imm64: Some(&readable_imm64),
        allow_ptr_leaks: true,
    }
}

fn kfunc_name(_id: i32, off: i16) -> Option<String> {
    (off != 0).then(|| format!("kernel-function[{off}]"))
}

/// The instruction at slot `idx` in the kernel's text (`(b7) r0 = 0`), spelled so that
/// [`assemble`] reads it back.
#[must_use]
pub fn print(insns: &[Insn], idx: usize) -> String {
    print_insn(insns, idx, &lossless(None))
}

/// Decodes a whole program and prints it as the verifier log lists it (`0: (b7) r0 = 0`), one
/// instruction a line, in text that [`assemble_with`] reads back.
///
/// # Errors
/// The first instruction the decoder rejects.
pub fn disassemble(insns: &[Insn], opts: &PrintOptions<'_>) -> Result<String, EncodingError> {
    let mut out = String::new();
    let mut idx = 0;
    while idx < insns.len() {
        let op = decode(insns, idx)?;
        out.push_str(&format!("{idx}: {}\n", print_insn(insns, idx, opts)));
        idx += op.slots();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asm(text: &str) -> Vec<Insn> {
        assemble(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn one(text: &str) -> Insn {
        let v = asm(text);
        assert_eq!(v.len(), 1, "{text}");
        v[0]
    }

    // Encodings from RFC 9669's opcode tables; texts as llvm-objdump 19 and the kernel print them.
    #[test]
    fn llvm_objdump_forms() {
        assert_eq!(one("r0 = *(u8 *)(r1 + 12)"), Insn::new(0x71, 0, 1, 12, 0));
        assert_eq!(
            one("*(u32 *)(r10 - 0x4) = 0x0"),
            Insn::new(0x62, 10, 0, -4, 0)
        );
        assert_eq!(one("w0 = w1"), Insn::new(0xbc, 0, 1, 0, 0));
        assert_eq!(one("w0 *= 0x3"), Insn::new(0x24, 0, 0, 0, 3));
        assert_eq!(one("r2 += -0x4"), Insn::new(0x07, 2, 0, 0, -4));
        assert_eq!(one("r1 = (s16)r2"), Insn::new(0xbf, 1, 2, 16, 0));
        assert_eq!(one("w1 = (s8)w2"), Insn::new(0xbc, 1, 2, 8, 0));
        assert_eq!(one("r3 = bswap32 r3"), Insn::new(0xd7, 3, 0, 0, 32));
        assert_eq!(one("r1 = be16 r1"), Insn::new(0xdc, 1, 0, 0, 16));
        assert_eq!(one("r2 s>>= 0x3"), Insn::new(0xc7, 2, 0, 0, 3));
        assert_eq!(one("w7 s/= w4"), Insn::new(0x3c, 7, 4, 1, 0));
        assert_eq!(one("r7 s%= 3"), Insn::new(0x97, 7, 0, 1, 3));
        assert_eq!(
            one("lock *(u64 *)(r1 + 0x0) += r2"),
            Insn::new(0xdb, 1, 2, 0, 0)
        );
        assert_eq!(
            one("r9 = atomic_fetch_add((u64 *)(r1 + 0x0), r9)"),
            Insn::new(0xdb, 1, 9, 0, 0x01)
        );
        assert_eq!(
            one("r0 = cmpxchg_64(r1 + 0x0, r0, r2)"),
            Insn::new(0xdb, 1, 2, 0, 0xf1)
        );
        assert_eq!(
            one("w2 = xchg32_32(r1 + 8, w2)"),
            Insn::new(0xc3, 1, 2, 8, 0xe1)
        );
        assert_eq!(
            one("if w2 s> 0x5 goto +0x1 <prog+0x1e8>"),
            Insn::new(0x66, 2, 0, 1, 5)
        );
        assert_eq!(one("if r1 == r2 goto -3"), Insn::new(0x1d, 1, 2, -3, 0));
        assert_eq!(one("gotol +70000"), Insn::new(0x06, 0, 0, 0, 70000));
        assert_eq!(one("call 0x1"), Insn::new(0x85, 0, 0, 0, 1));
        assert_eq!(one("callx r2"), Insn::new(0x8d, 2, 0, 0, 0));
        assert_eq!(one("r0 = *(s8 *)(r1 + 0)"), Insn::new(0x91, 0, 1, 0, 0));
        assert_eq!(
            asm("r1 = 0x0 ll"),
            vec![Insn::new(0x18, 1, 0, 0, 0), Insn::new(0, 0, 0, 0, 0)]
        );
        assert_eq!(
            asm("       5:\t18 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00\tr1 = 0x0 ll"),
            vec![Insn::new(0x18, 1, 0, 0, 0), Insn::new(0, 0, 0, 0, 0)]
        );
    }

    #[test]
    fn verifier_log_forms() {
        assert_eq!(
            one("4: (7b) *(u64 *)(r10 -8) = r1"),
            Insn::new(0x7b, 10, 1, -8, 0)
        );
        assert_eq!(
            one("(7a) *(u64 *)(r10 -8) = 0"),
            Insn::new(0x7a, 10, 0, -8, 0)
        );
        assert_eq!(
            one("(55) if r4 != 0xfffffffd goto pc+0"),
            Insn::new(0x55, 4, 0, 0, -3)
        );
        assert_eq!(
            one("(85) call bpf_map_lookup_elem#1"),
            Insn::new(0x85, 0, 0, 0, 1)
        );
        assert_eq!(one("(85) call pc+5"), Insn::new(0x85, 0, 1, 0, 5));
        assert_eq!(
            one("(85) call kernel-function#77"),
            Insn::new(0x85, 0, 2, 0, 77)
        );
        assert_eq!(
            one("(db) r0 = atomic64_cmpxchg((u64 *)(r10 -8), r0, r1)"),
            Insn::new(0xdb, 10, 1, -8, 0xf1)
        );
        assert_eq!(
            one("(48) r0 = *(u16 *)skb[r7 + -1]"),
            Insn::new(0x48, 0, 7, 0, -1)
        );
        assert_eq!(one("(e5) may_goto pc+1"), Insn::new(0xe5, 0, 0, 1, 0));
        assert_eq!(
            one("(d3) store_release((u8 *)(r2 +0), r1)"),
            Insn::new(0xd3, 2, 1, 0, 0x110)
        );
        // `(18)` makes a small value a 64-bit load.
        assert_eq!(asm("(18) r1 = 0x10").len(), 2);
        assert_eq!(asm("r1 = 0x10").len(), 1);
        // A value no sign-extended 32-bit immediate gives needs LD_IMM64.
        assert_eq!(
            asm("r1 = 0xffffffff"),
            vec![Insn::new(0x18, 1, 0, 0, -1), Insn::new(0, 0, 0, 0, 0)]
        );
        assert_eq!(one("w1 = 0xffffffff"), Insn::new(0xb4, 1, 0, 0, -1));
        assert_eq!(one("r1 = -1"), Insn::new(0xb7, 1, 0, 0, -1));
    }

    #[test]
    fn pseudo_loads_labels_and_calls_by_name() {
        assert_eq!(asm("r1 = map[fd:3] ll")[0], Insn::new(0x18, 1, 1, 0, 3));
        let v = asm("r2 = map[idx:1][0]+4294967295");
        assert_eq!((v[0].src, v[0].imm, v[1].imm), (6, 1, -1));
        let p = asm("LBB0_1:\n  r0 += 1\n  if r0 < 10 goto LBB0_1\n  call sub\n  r1 = func[sub]\n  exit\nsub:\n  r0 = 0\n  exit");
        assert_eq!(p[1].off, -2);
        assert_eq!((p[2].src, p[2].imm), (1, 3));
        assert_eq!((p[3].src, p[3].imm), (4, 2));
        let helpers = |name: &str| (name == "bpf_map_lookup_elem").then_some(1);
        let p = assemble_with(
            "call bpf_map_lookup_elem\nexit",
            &Options {
                helper_id: Some(&helpers),
            },
        );
        assert_eq!(p.map(|v| (v[0].src, v[0].imm)), Ok((0, 1)));
        let e = assemble("call bpf_map_lookup_elem\nexit").expect_err("no helper table");
        assert!(
            e.message.contains("neither a label nor a known helper"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        let e = assemble("r0 = 1\nr0 += r11\n").expect_err("bad register");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("r11"), "{e}");
        let e = assemble("(b7) r0 = 0x1 ll").expect_err("prefix mismatch");
        assert!(e.message.contains("(b7)"), "{e}");
        assert!(assemble("w1 += r2").is_err());
        assert!(assemble("r1 = -r2").is_err());
        assert!(assemble("goto nowhere").is_err());
        assert!(assemble("r0 = *(u8 *)(r1 + 0x10000)").is_err());
        assert!(assemble("if r1 <> r2 goto +1").is_err());
        assert_eq!(assemble("; nothing").map_err(|e| e.line), Err(0));
    }
}
