//! The one printer: an instruction exactly as the Linux verifier log prints it.
//!
//! [`print_insn`] is Linux's `print_bpf_insn` (kernel/bpf/disasm.c, 6.18) rewritten: it reads
//! the raw fields the way the kernel does (it never rejects; an encoding the kernel would not
//! print well prints the kernel's `BUG_..` text), and returns the text after the `N: ` that the
//! verifier puts in front, e.g. `(7a) *(u64 *)(r10 -8) = 0` or `(85) call
//! bpf_map_lookup_elem#1`. A test loads programs into the live kernel at log level 2 and compares
//! every instruction line of its log with this function.
//!
//! Two things the kernel knows and this crate does not come from the caller through
//! [`PrintOptions`]: helper names (the kernel has them compiled in; bpfkit's runtime has the
//! table) and the text of a 64-bit immediate that names an object (the kernel prints a kernel
//! address where bpfkit prints its own map handle). [`readable_imm64`] is bpfkit's spelling of
//! the pseudo LD_IMM64 forms, which the kernel-syntax assembler reads back.

mod pseudo;

pub use pseudo::readable_imm64;

use crate::insn::Insn;
use crate::op::Op;
use crate::opcode as c;
use std::fmt::Write;

/// Names a helper by id (the kernel's `func_id_name`).
pub type HelperNameFn<'a> = dyn Fn(i32) -> Option<&'static str> + 'a;
/// Names a kernel function by BTF id and offset (the verifier's `disasm_kfunc_name`).
pub type KfuncNameFn<'a> = dyn Fn(i32, i16) -> Option<String> + 'a;
/// Spells an LD_IMM64's value (the kernel's `cb_imm`).
pub type Imm64Fn<'a> = dyn Fn(&Op) -> Option<String> + 'a;

/// What the caller supplies to print as the kernel does. `Default` knows no names and prints
/// every 64-bit immediate as a number.
#[derive(Clone, Copy, Default)]
pub struct PrintOptions<'a> {
    /// The name of helper `id` (`bpf_map_lookup_elem` for 1), as the kernel's `func_id_name`.
    /// Without it a helper call prints as `call unknown#1`.
    pub helper_name: Option<&'a HelperNameFn<'a>>,
    /// The name of a kernel function (`CALL` with src 2) from its BTF id and offset, as the
    /// verifier's `disasm_kfunc_name` finds it; without it, `kernel-function`.
    pub kfunc_name: Option<&'a KfuncNameFn<'a>>,
    /// The text of an LD_IMM64's value (the kernel's `cb_imm`; bpfkit prints its map handles
    /// here). `None` from it, or no callback, prints the value as `0x%llx`.
    pub imm64: Option<&'a Imm64Fn<'a>>,
    /// Print the values of LD_IMM64 map pointers (src 1 and 2). The kernel prints them as 0
    /// unless the loader may see kernel addresses (`bpf_allow_ptr_leaks`, true for root).
    pub allow_ptr_leaks: bool,
}

const ALU_STRING: [&str; 16] = [
    "+=", "-=", "*=", "/=", "|=", "&=", "<<=", ">>=", "neg", "%=", "^=", "=", "s>>=", "endian",
    "(null)", "(null)",
];

const JMP_STRING: [&str; 16] = [
    "jmp", "==", ">", ">=", "&", "!=", "s>", "s>=", "call", "exit", "<", "<=", "s<", "s<=",
    "(null)", "(null)",
];

const fn ldst_string(code: u8) -> &'static str {
    match c::size(code) {
        c::W => "u32",
        c::H => "u16",
        c::B => "u8",
        _ => "u64",
    }
}

const fn ldsx_string(code: u8) -> &'static str {
    match c::size(code) {
        c::W => "s32",
        c::H => "s16",
        c::B => "s8",
        _ => "(null)",
    }
}

const fn atomic_alu_string(op: u8) -> &'static str {
    match op {
        c::ADD => "add",
        c::AND => "and",
        c::OR => "or",
        c::XOR => "xor",
        _ => "(null)",
    }
}

/// `r` or `w` for the width of an ALU or JMP class.
const fn reg_prefix(narrow: bool) -> char {
    if narrow {
        'w'
    } else {
        'r'
    }
}

/// The instruction at slot `idx` as the verifier log prints it, without the `N: ` prefix and
/// without the newline. An index past the end prints as an empty string.
#[must_use]
pub fn print_insn(insns: &[Insn], idx: usize, opts: &PrintOptions<'_>) -> String {
    let Some(&insn) = insns.get(idx) else {
        return String::new();
    };
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_insn(&mut out, insns, idx, insn, opts);
    out
}

fn write_insn(
    o: &mut String,
    insns: &[Insn],
    idx: usize,
    insn: Insn,
    opts: &PrintOptions<'_>,
) -> std::fmt::Result {
    let code = insn.code;
    let class = c::class(code);
    let (dst, src, off, imm) = (insn.dst, insn.src, insn.off, insn.imm);
    let op = c::op(code);
    match class {
        c::ALU | c::ALU64 => {
            let w = reg_prefix(class == c::ALU);
            if op == c::END {
                if class == c::ALU64 {
                    write!(o, "({code:02x}) r{dst} = bswap{imm} r{dst}")
                } else {
                    let e = if c::source(code) == c::TO_BE {
                        "be"
                    } else {
                        "le"
                    };
                    write!(o, "({code:02x}) r{dst} = {e}{imm} r{dst}")
                }
            } else if op == c::NEG {
                write!(o, "({code:02x}) {w}{dst} = -{w}{dst}")
            } else if code == c::ALU64 | c::MOV | c::X && off == c::ADDR_SPACE_CAST {
                let (to, from) = ((imm as u32) >> 16, imm as u16);
                write!(
                    o,
                    "({code:02x}) r{dst} = addr_space_cast(r{src}, {to}, {from})"
                )
            } else {
                let sdiv_smod = (op == c::DIV || op == c::MOD) && off == 1;
                let opstr = if sdiv_smod {
                    if op == c::DIV {
                        "s/="
                    } else {
                        "s%="
                    }
                } else {
                    ALU_STRING[usize::from(op >> 4)]
                };
                if c::source(code) == c::X {
                    let movsx = match (op, off) {
                        (c::MOV, 8) => "(s8)",
                        (c::MOV, 16) => "(s16)",
                        (c::MOV, 32) => "(s32)",
                        _ => "",
                    };
                    write!(o, "({code:02x}) {w}{dst} {opstr} {movsx}{w}{src}")
                } else {
                    write!(o, "({code:02x}) {w}{dst} {opstr} {imm}")
                }
            }
        }
        c::STX => {
            let sz = ldst_string(code);
            let mode = c::mode(code);
            let bits = if c::size(code) == c::DW { "64" } else { "" };
            if mode == c::MEM {
                write!(o, "({code:02x}) *({sz} *)(r{dst} {off:+}) = r{src}")
            } else if mode == c::ATOMIC {
                match imm {
                    0x00 | 0x40 | 0x50 | 0xa0 => {
                        let s = ALU_STRING[(imm as usize) >> 4];
                        write!(o, "({code:02x}) lock *({sz} *)(r{dst} {off:+}) {s} r{src}")
                    }
                    0x01 | 0x41 | 0x51 | 0xa1 => {
                        let name = atomic_alu_string((imm & 0xf0) as u8);
                        write!(
                            o,
                            "({code:02x}) r{src} = atomic{bits}_fetch_{name}(({sz} *)(r{dst} {off:+}), r{src})"
                        )
                    }
                    c::CMPXCHG => write!(
                        o,
                        "({code:02x}) r0 = atomic{bits}_cmpxchg(({sz} *)(r{dst} {off:+}), r0, r{src})"
                    ),
                    c::XCHG => write!(
                        o,
                        "({code:02x}) r{src} = atomic{bits}_xchg(({sz} *)(r{dst} {off:+}), r{src})"
                    ),
                    c::LOAD_ACQ => {
                        write!(o, "({code:02x}) r{dst} = load_acquire(({sz} *)(r{src} {off:+}))")
                    }
                    c::STORE_REL => {
                        write!(o, "({code:02x}) store_release(({sz} *)(r{dst} {off:+}), r{src})")
                    }
                    _ => write!(o, "BUG_{code:02x}"),
                }
            } else {
                write!(o, "BUG_{code:02x}")
            }
        }
        c::ST => match c::mode(code) {
            c::MEM => write!(
                o,
                "({code:02x}) *({} *)(r{dst} {off:+}) = {imm}",
                ldst_string(code)
            ),
            // BPF_NOSPEC: not in the uapi, inserted by the verifier itself.
            0xc0 => write!(o, "({code:02x}) nospec"),
            _ => write!(o, "BUG_st_{code:02x}"),
        },
        c::LDX => {
            let sz = match c::mode(code) {
                c::MEM => ldst_string(code),
                c::MEMSX => ldsx_string(code),
                _ => return write!(o, "BUG_ldx_{code:02x}"),
            };
            write!(o, "({code:02x}) r{dst} = *({sz} *)(r{src} {off:+})")
        }
        c::LD => match c::mode(code) {
            c::ABS => write!(o, "({code:02x}) r0 = *({} *)skb[{imm}]", ldst_string(code)),
            c::IND => write!(
                o,
                "({code:02x}) r0 = *({} *)skb[r{src} + {imm}]",
                ldst_string(code)
            ),
            c::IMM if c::size(code) == c::DW => {
                let next = insns.get(idx + 1).map_or(0, |n| n.imm);
                let op = Op::LdImm64 {
                    dst: crate::Reg::new(dst).unwrap_or(crate::Reg::R0),
                    pseudo: src,
                    imm,
                    next_imm: next,
                };
                let text = opts.imm64.and_then(|f| f(&op)).unwrap_or_else(|| {
                    let is_ptr = src == c::PSEUDO_MAP_FD || src == c::PSEUDO_MAP_VALUE;
                    let value = if is_ptr && !opts.allow_ptr_leaks {
                        0
                    } else {
                        (u64::from(next as u32) << 32) | u64::from(imm as u32)
                    };
                    format!("{value:#x}")
                });
                write!(o, "({code:02x}) r{dst} = {text}")
            }
            _ => write!(o, "BUG_ld_{code:02x}"),
        },
        _ => {
            // JMP and JMP32.
            let w = reg_prefix(class == c::JMP32);
            if op == c::CALL {
                if src == c::PSEUDO_CALL {
                    write!(o, "({code:02x}) call pc{imm:+}")
                } else {
                    let name = call_name(insn, opts);
                    write!(o, "({code:02x}) call {name}#{imm}")
                }
            } else if code == c::JMP | c::JA {
                write!(o, "({code:02x}) goto pc{off:+}")
            } else if code == c::JMP | c::JCOND && src == c::MAY_GOTO {
                write!(o, "({code:02x}) may_goto pc{off:+}")
            } else if code == c::JMP32 | c::JA {
                write!(o, "({code:02x}) gotol pc{imm:+}")
            } else if code == c::JMP | c::EXIT {
                write!(o, "({code:02x}) exit")
            } else {
                let s = JMP_STRING[usize::from(op >> 4)];
                if c::source(code) == c::X {
                    write!(o, "({code:02x}) if {w}{dst} {s} {w}{src} goto pc{off:+}")
                } else {
                    write!(
                        o,
                        "({code:02x}) if {w}{dst} {s} {:#x} goto pc{off:+}",
                        imm as u32
                    )
                }
            }
        }
    }
}

/// `__func_get_name` for a call that is not a local call.
fn call_name(insn: Insn, opts: &PrintOptions<'_>) -> String {
    if insn.src == 0 {
        if let Some(name) = opts.helper_name.and_then(|f| f(insn.imm)) {
            return name.to_string();
        }
    }
    if insn.src == c::PSEUDO_KFUNC_CALL {
        if let Some(name) = opts.kfunc_name.and_then(|f| f(insn.imm, insn.off)) {
            return name;
        }
        return "kernel-function".to_string();
    }
    "unknown".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(insns: &[Insn]) -> String {
        print_insn(insns, 0, &PrintOptions::default())
    }

    // Expected texts follow the format strings of print_bpf_insn in kernel/bpf/disasm.c
    // (tests/kernel_print.rs compares with the live kernel's log where bpf() is available).
    #[test]
    fn formats_of_print_bpf_insn() {
        assert_eq!(
            p(&[Insn::new(0x7a, 10, 0, -8, 0)]),
            "(7a) *(u64 *)(r10 -8) = 0"
        );
        assert_eq!(
            p(&[Insn::new(0x61, 2, 1, 4, 0)]),
            "(61) r2 = *(u32 *)(r1 +4)"
        );
        assert_eq!(
            p(&[Insn::new(0x81, 2, 1, 4, 0)]),
            "(81) r2 = *(s32 *)(r1 +4)"
        );
        assert_eq!(p(&[Insn::new(0xbc, 1, 2, 8, 0)]), "(bc) w1 = (s8)w2");
        assert_eq!(p(&[Insn::new(0x3f, 1, 2, 1, 0)]), "(3f) r1 s/= r2");
        assert_eq!(p(&[Insn::new(0x94, 1, 0, 1, -3)]), "(94) w1 s%= -3");
        assert_eq!(p(&[Insn::new(0xdc, 1, 0, 0, 16)]), "(dc) r1 = be16 r1");
        assert_eq!(p(&[Insn::new(0xd7, 1, 0, 0, 64)]), "(d7) r1 = bswap64 r1");
        assert_eq!(p(&[Insn::new(0x87, 3, 0, 0, 0)]), "(87) r3 = -r3");
        assert_eq!(
            p(&[Insn::new(0x55, 4, 0, 2, -3)]),
            "(55) if r4 != 0xfffffffd goto pc+2"
        );
        assert_eq!(
            p(&[Insn::new(0x06, 0, 0, 0, -70000)]),
            "(06) gotol pc-70000"
        );
        assert_eq!(p(&[Insn::new(0x85, 0, 1, 0, 5)]), "(85) call pc+5");
        assert_eq!(p(&[Insn::new(0x85, 0, 0, 0, 1)]), "(85) call unknown#1");
        assert_eq!(
            p(&[Insn::new(0x85, 0, 2, 0, 9)]),
            "(85) call kernel-function#9"
        );
        assert_eq!(
            p(&[Insn::new(0xc3, 1, 2, 0, 0x51)]),
            "(c3) r2 = atomic_fetch_and((u32 *)(r1 +0), r2)"
        );
        assert_eq!(
            p(&[Insn::new(0xdb, 1, 2, 0, 0xe1)]),
            "(db) r2 = atomic64_xchg((u64 *)(r1 +0), r2)"
        );
        assert_eq!(
            p(&[Insn::new(0x40, 0, 7, 0, 3)]),
            "(40) r0 = *(u32 *)skb[r7 + 3]"
        );
        assert_eq!(p(&[Insn::new(0xdb, 1, 2, 0, 0x77)]), "BUG_db");
        let names = |id: i32| (id == 1).then_some("bpf_map_lookup_elem");
        let opts = PrintOptions {
            helper_name: Some(&names),
            ..PrintOptions::default()
        };
        assert_eq!(
            print_insn(&[Insn::new(0x85, 0, 0, 0, 1)], 0, &opts),
            "(85) call bpf_map_lookup_elem#1"
        );
    }

    #[test]
    fn ld_imm64_values_pointers_and_formatters() {
        let prog = [Insn::new(0x18, 1, 1, 0, 3), Insn::new(0, 0, 0, 0, 0)];
        // A map pointer prints as 0 unless pointers may leak (the kernel's allow_ptr_leaks).
        assert_eq!(p(&prog), "(18) r1 = 0x0");
        let leaky = PrintOptions {
            allow_ptr_leaks: true,
            ..PrintOptions::default()
        };
        assert_eq!(print_insn(&prog, 0, &leaky), "(18) r1 = 0x3");
        let readable = PrintOptions {
            imm64: Some(&readable_imm64),
            ..PrintOptions::default()
        };
        assert_eq!(print_insn(&prog, 0, &readable), "(18) r1 = map[fd:3]");
        let plain = [
            Insn::new(0x18, 2, 0, 0, 0x5566_7788),
            Insn::new(0, 0, 0, 0, 0x1122_3344),
        ];
        assert_eq!(p(&plain), "(18) r2 = 0x1122334455667788");
    }
}
