//! Round trips and robustness, as properties:
//! - every instruction the decoder accepts prints, in both syntaxes, to text that assembles
//!   back to its slots (as the decoder canonicalises them: Linux ignores an exit's offset);
//! - encoding a decoded instruction gives its slots back, and decoding an encoded one gives it
//!   back;
//! - no input makes the decoder, the printer or either assembler panic: random bytes, random
//!   text, truncated programs, huge inputs.

use bpfkit_isa::asm::{conformance, kernel};
use bpfkit_isa::disasm::print_insn;
use bpfkit_isa::{
    decode, decode_all, insns_from_bytes, AluOp, AtomicOp, CallTarget, EndKind, Insn, JmpCond, Op,
    Operand, Reg, Size, Width,
};
use proptest::prelude::*;

/// Every opcode byte the kernel's table knows (and a few it does not), so that most random
/// slots get past the opcode check.
fn code() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => prop::sample::select(vec![
            0x04, 0x0c, 0x14, 0x1c, 0x24, 0x2c, 0x34, 0x3c, 0x44, 0x4c, 0x54, 0x5c, 0x64, 0x6c,
            0x74, 0x7c, 0x84, 0x94, 0x9c, 0xa4, 0xac, 0xb4, 0xbc, 0xc4, 0xcc, 0xd4, 0xdc, 0x07,
            0x0f, 0x17, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x47, 0x4f, 0x57, 0x5f, 0x67, 0x6f, 0x77,
            0x7f, 0x87, 0x97, 0x9f, 0xa7, 0xaf, 0xb7, 0xbf, 0xc7, 0xcf, 0xd7, 0x05, 0x15, 0x1d,
            0x25, 0x2d, 0x35, 0x3d, 0x45, 0x4d, 0x55, 0x5d, 0x65, 0x6d, 0x75, 0x7d, 0x85, 0x95,
            0xa5, 0xad, 0xb5, 0xbd, 0xc5, 0xcd, 0xd5, 0xdd, 0xe5, 0x06, 0x16, 0x1e, 0x26, 0x2e,
            0x36, 0x3e, 0x46, 0x4e, 0x56, 0x5e, 0x66, 0x6e, 0x76, 0x7e, 0xa6, 0xae, 0xb6, 0xbe,
            0xc6, 0xce, 0xd6, 0xde, 0x18, 0x20, 0x28, 0x30, 0x40, 0x48, 0x50, 0x61, 0x69, 0x71,
            0x79, 0x81, 0x89, 0x91, 0x62, 0x6a, 0x72, 0x7a, 0x63, 0x6b, 0x73, 0x7b, 0xc3, 0xcb,
            0xd3, 0xdb,
        ]),
        1 => any::<u8>(),
    ]
}

/// Field values: mostly the small ones instructions use, sometimes anything.
fn small_or_any_i32() -> impl Strategy<Value = i32> {
    prop_oneof![
        3 => prop::sample::select(vec![0, 1, 8, 16, 32, 64, 0x40, 0x41, 0x50, 0x51, 0xa0, 0xa1, 0xe1, 0xf1, 0x100, 0x110, -1]),
        2 => -100i32..100,
        2 => any::<i32>(),
    ]
}

fn small_or_any_i16() -> impl Strategy<Value = i16> {
    prop_oneof![3 => prop::sample::select(vec![0i16, 1, 8, 16, 32, -1]), 2 => -100i16..100, 1 => any::<i16>()]
}

fn reg_field() -> impl Strategy<Value = u8> {
    prop_oneof![10 => 0u8..=10, 1 => 0u8..=15]
}

fn slot() -> impl Strategy<Value = Insn> {
    (
        code(),
        reg_field(),
        prop_oneof![4 => Just(0u8), 4 => reg_field()],
        small_or_any_i16(),
        small_or_any_i32(),
    )
        .prop_map(|(code, dst, src, off, imm)| Insn::new(code, dst, src, off, imm))
}

/// A slot and a second one that is usually a clean LD_IMM64 tail.
fn slots() -> impl Strategy<Value = Vec<Insn>> {
    (
        slot(),
        prop_oneof![4 => any::<i32>().prop_map(|imm| Insn::new(0, 0, 0, 0, imm)), 1 => slot()],
    )
        .prop_map(|(a, b)| vec![a, b])
}

fn reg() -> impl Strategy<Value = Reg> {
    (0u8..=10).prop_map(|n| Reg::new(n).unwrap_or(Reg::R0))
}

fn size() -> impl Strategy<Value = Size> {
    prop::sample::select(vec![Size::B, Size::H, Size::W, Size::DW])
}

fn width() -> impl Strategy<Value = Width> {
    prop::sample::select(vec![Width::W32, Width::W64])
}

fn operand() -> impl Strategy<Value = Operand> {
    prop_oneof![
        reg().prop_map(Operand::Reg),
        any::<i32>().prop_map(Operand::Imm)
    ]
}

/// Every instruction the decoder can return, with any field values it allows.
fn op() -> impl Strategy<Value = Op> {
    let alu_op = prop::sample::select(vec![
        AluOp::Add,
        AluOp::Sub,
        AluOp::Mul,
        AluOp::Div,
        AluOp::Sdiv,
        AluOp::Or,
        AluOp::And,
        AluOp::Lsh,
        AluOp::Rsh,
        AluOp::Mod,
        AluOp::Smod,
        AluOp::Xor,
        AluOp::Mov,
        AluOp::Arsh,
    ]);
    let cond = prop::sample::select(vec![
        JmpCond::Eq,
        JmpCond::Gt,
        JmpCond::Ge,
        JmpCond::Set,
        JmpCond::Ne,
        JmpCond::Sgt,
        JmpCond::Sge,
        JmpCond::Lt,
        JmpCond::Le,
        JmpCond::Slt,
        JmpCond::Sle,
    ]);
    let atomic = prop::sample::select(vec![
        AtomicOp::Add { fetch: false },
        AtomicOp::Add { fetch: true },
        AtomicOp::Or { fetch: false },
        AtomicOp::Or { fetch: true },
        AtomicOp::And { fetch: false },
        AtomicOp::And { fetch: true },
        AtomicOp::Xor { fetch: false },
        AtomicOp::Xor { fetch: true },
        AtomicOp::Xchg,
        AtomicOp::Cmpxchg,
    ]);
    prop_oneof![
        (width(), alu_op, reg(), operand()).prop_map(|(width, op, dst, src)| Op::Alu {
            width,
            op,
            dst,
            src
        }),
        (
            prop::sample::select(vec![
                (Width::W32, 8u8),
                (Width::W32, 16),
                (Width::W64, 8),
                (Width::W64, 16),
                (Width::W64, 32)
            ]),
            reg(),
            reg()
        )
            .prop_map(|((width, bits), dst, src)| Op::Alu {
                width,
                op: AluOp::Movsx(bits),
                dst,
                src: Operand::Reg(src)
            }),
        (width(), reg()).prop_map(|(width, dst)| Op::Neg { width, dst }),
        (
            prop::sample::select(vec![EndKind::ToLe, EndKind::ToBe, EndKind::Swap]),
            prop::sample::select(vec![16u8, 32, 64]),
            reg()
        )
            .prop_map(|(kind, bits, dst)| Op::End { kind, bits, dst }),
        (reg(), 0u8..=6, any::<i32>(), any::<i32>()).prop_map(|(dst, pseudo, imm, next_imm)| {
            // Map forms (src 1 and 5) have no second immediate.
            let next_imm = if pseudo == 1 || pseudo == 5 {
                0
            } else {
                next_imm
            };
            Op::LdImm64 {
                dst,
                pseudo,
                imm,
                next_imm,
            }
        }),
        (
            prop::sample::select(vec![Size::B, Size::H, Size::W]),
            any::<i32>()
        )
            .prop_map(|(size, imm)| Op::LdAbs { size, imm }),
        (
            prop::sample::select(vec![Size::B, Size::H, Size::W]),
            reg(),
            any::<i32>()
        )
            .prop_map(|(size, src, imm)| Op::LdInd { size, src, imm }),
        (size(), any::<bool>(), reg(), reg(), any::<i16>()).prop_map(
            |(size, sx, dst, src, off)| Op::Load {
                size,
                sign_extend: sx && size != Size::DW,
                dst,
                src,
                off
            }
        ),
        (size(), reg(), any::<i16>(), any::<i32>()).prop_map(|(size, dst, off, imm)| {
            Op::StoreImm {
                size,
                dst,
                off,
                imm,
            }
        }),
        (size(), reg(), reg(), any::<i16>()).prop_map(|(size, dst, src, off)| Op::StoreReg {
            size,
            dst,
            src,
            off
        }),
        (
            prop::sample::select(vec![Size::W, Size::DW]),
            atomic,
            reg(),
            reg(),
            any::<i16>()
        )
            .prop_map(|(size, op, dst, src, off)| Op::Atomic {
                size,
                op,
                dst,
                src,
                off
            }),
        (size(), reg(), reg(), any::<i16>()).prop_map(|(size, dst, src, off)| Op::LoadAcquire {
            size,
            dst,
            src,
            off
        }),
        (size(), reg(), reg(), any::<i16>()).prop_map(|(size, dst, src, off)| Op::StoreRelease {
            size,
            dst,
            src,
            off
        }),
        any::<i16>().prop_map(|off| Op::MayGoto { off }),
        any::<i16>().prop_map(|off| Op::Ja {
            off: i32::from(off),
            long: false
        }),
        any::<i32>().prop_map(|off| Op::Ja { off, long: true }),
        (width(), cond, reg(), operand(), any::<i16>()).prop_map(|(width, cond, dst, src, off)| {
            Op::Jcond {
                width,
                cond,
                dst,
                src,
                off,
            }
        }),
        any::<i32>().prop_map(|id| Op::Call(CallTarget::Helper(id))),
        any::<i32>().prop_map(|rel| Op::Call(CallTarget::Local(rel))),
        (any::<i32>(), any::<i16>())
            .prop_map(|(btf_id, off)| Op::Call(CallTarget::Kfunc { btf_id, off })),
        Just(Op::Exit),
    ]
}

/// Both syntaxes print `insns` at slot 0 to text that assembles to `want`.
fn both_syntaxes_round_trip(insns: &[Insn], op: &Op, want: &[Insn]) -> Result<(), TestCaseError> {
    let text = conformance::print(op);
    let got = conformance::assemble(&text);
    prop_assert_eq!(got.as_deref(), Ok(want), "conformance text `{}`", text);
    let text = kernel::print(insns, 0);
    let got = kernel::assemble(&text);
    prop_assert_eq!(got.as_deref(), Ok(want), "kernel text `{}`", text);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6_000, ..ProptestConfig::default() })]

    #[test]
    fn decoded_slots_print_and_assemble_back(insns in slots()) {
        let Ok(op) = decode(&insns, 0) else { return Ok(()) };
        let want = op.encode();
        // The canonical slots are the decoded ones, but for the exit offset Linux ignores.
        if op != Op::Exit {
            prop_assert_eq!(&want[..], &insns[..op.slots()]);
        }
        both_syntaxes_round_trip(&insns, &op, &want)?;
    }

    #[test]
    fn every_op_encodes_decodes_and_round_trips(op in op()) {
        let insns = op.encode();
        prop_assert_eq!(decode(&insns, 0), Ok(op));
        both_syntaxes_round_trip(&insns, &op, &insns)?;
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(insns) = insns_from_bytes(&bytes) {
            let _ = decode_all(&insns);
            for idx in 0..=insns.len() {
                let _ = decode(&insns, idx);
                let _ = print_insn(&insns, idx, &Default::default());
                let _ = kernel::print(&insns, idx);
            }
            let _ = conformance::disassemble(&insns);
        }
    }

    #[test]
    fn random_text_never_panics(text in "[ -~\t\n]{0,300}") {
        let _ = conformance::assemble(&text);
        let _ = kernel::assemble(&text);
    }

    #[test]
    fn assembler_like_text_never_panics(
        lines in prop::collection::vec(
            prop::sample::select(vec![
                "r0 = ", "w1 ", "+= ", "*(u8 *)", "(r10 ", "-8)", "0x", "ffffffffffffffffff", "if ",
                "goto ", "pc", "+", "-", "call ", "#", "lock ", "atomic64_fetch_add((", "u64 *)",
                ", r1)", "map[fd:", "]", "[0]+", "ll", "skb[", "(18) ", "12: ", "LBB0_1", ":", "\n",
                "%r1", ", ", "[%r1+", "lddw ", "mov32 ", "jeq ", "ja ", "exit", "lock fetch add ",
                "func ", "call local ", "9999999999999999999999999", "\u{e9}", ";", "s>>= ", "(s8)",
            ]),
            0..40,
        )
    ) {
        let text: String = lines.concat();
        let _ = conformance::assemble(&text);
        let _ = kernel::assemble(&text);
    }

    #[test]
    fn truncated_programs_never_panic(cut in 0usize..2000) {
        let program = "LBB0_1:\n r0 = *(u32 *)(r1 + 4)\n if r0 s> 0x10 goto LBB0_1\n r1 = map[fd:3] ll\n lock *(u64 *)(r10 -8) += r1\n r0 = atomic64_cmpxchg((u64 *)(r10 -8), r0, r2)\n call bpf_map_lookup_elem#1\n exit\n";
        let conf = "L:\nldxw %r0, [%r1+4]\njsgt %r0, 0x10, L\nlddw %r1, map_fd 3\nlock add [%r10-8], %r1\nlock cmpxchg [%r10-8], %r2\ncall 1\nexit\n";
        let _ = kernel::assemble(&program[..program.floor_char_boundary(cut.min(program.len()))]);
        let _ = conformance::assemble(&conf[..conf.floor_char_boundary(cut.min(conf.len()))]);
    }
}

#[test]
fn huge_inputs_are_handled() {
    // 200,000 instructions and a 1 MiB line: both assemble or fail, without panicking.
    let many = "r0 += 1\n".repeat(200_000) + "exit\n";
    assert_eq!(kernel::assemble(&many).map(|v| v.len()), Ok(200_001));
    let many = "add %r0, 1\n".repeat(200_000) + "exit\n";
    assert_eq!(conformance::assemble(&many).map(|v| v.len()), Ok(200_001));
    let long_line = "r0 = ".to_string() + &"9".repeat(1 << 20);
    assert!(kernel::assemble(&long_line).is_err());
    let long_line = "mov %r0, ".to_string() + &"9".repeat(1 << 20);
    assert!(conformance::assemble(&long_line).is_err());
    // A jump whose label is too far for a 16-bit offset is an error, not a wrapped offset.
    let far = "goto L\n".to_string() + &"r0 += 1\n".repeat(40_000) + "L:\nexit\n";
    assert!(kernel::assemble(&far).is_err());
    let bytes = vec![0x07u8; 8 << 20];
    let insns = insns_from_bytes(&bytes).unwrap_or_default();
    // Every slot is `r7 += 0x07070707` with offset 0x0707: a reserved field, at slot 0.
    assert_eq!(decode_all(&insns).map_err(|e| e.idx), Err(0));
}
