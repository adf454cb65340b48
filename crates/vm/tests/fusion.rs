//! The fast interpreter runs fused superinstructions; the checked one runs one instruction per
//! step. Random straight-line and forward-jumping ALU programs (rich in the `mov; op` and
//! bounds-check shapes the fusion pass looks for, including the aliasing cases) must give the
//! same r0 in both. Every program initialises r0–r5 first and folds them all into r0 at the end,
//! so any register a fused instruction gets wrong shows.

use bpfkit_isa::Insn;
use bpfkit_vm::{Helpers, Program, RunCtx, Vm};
use proptest::prelude::*;

/// ALU opcodes (RFC 9669 §4.1) that have fused forms, with the K and X source bits.
const ALU_OPS: [u8; 9] = [0x00, 0x10, 0x20, 0x40, 0x50, 0xa0, 0x60, 0x70, 0xc0];

fn alu(class: u8, op: u8, x: bool, d: u8, s: u8, k: i32) -> Insn {
    if x {
        Insn::new(class | op | 0x08, d, s, 0, 0)
    } else {
        Insn::new(class | op, d, 0, 0, k)
    }
}

fn piece() -> impl Strategy<Value = Vec<Insn>> {
    let reg = 0u8..6;
    prop_oneof![
        // mov{64,32} d, s; op{64,32} d, (k | x)
        (
            any::<bool>(),
            0usize..9,
            any::<bool>(),
            reg.clone(),
            reg.clone(),
            reg.clone(),
            any::<i32>()
        )
            .prop_map(|(wide, op, x, d, s, x_reg, k)| {
                let class = if wide { 0x07 } else { 0x04 };
                vec![
                    Insn::new(class | 0xb0 | 0x08, d, s, 0, 0),
                    alu(class, ALU_OPS[op], x, d, x_reg, k),
                ]
            }),
        // mov64 d, s; add64 d, k; if d > x goto +1; mov64 d, 7
        (reg.clone(), reg.clone(), reg.clone(), -64i32..64).prop_map(|(d, s, x, k)| vec![
            Insn::new(0xbf, d, s, 0, 0),
            Insn::new(0x07, d, 0, 0, k),
            Insn::new(0x2d, d, x, 1, 0),
            Insn::new(0xb7, d, 0, 0, 7),
        ]),
        // two constant operations on one register
        (
            any::<bool>(),
            0usize..9,
            0usize..9,
            reg.clone(),
            any::<i32>(),
            any::<i32>()
        )
            .prop_map(|(wide, a, b, d, k1, k2)| {
                let class = if wide { 0x07 } else { 0x04 };
                vec![
                    alu(class, ALU_OPS[a], false, d, 0, k1),
                    alu(class, ALU_OPS[b], false, d, 0, k2),
                ]
            }),
        // the 32-bit rotate idiom: mov32 a, b; rsh32 a, k1; lsh32 b, k2; or32 b, a
        (reg.clone(), reg.clone(), 0i32..32, 0i32..32).prop_map(|(a, b, k1, k2)| vec![
            Insn::new(0xbc, a, b, 0, 0),
            Insn::new(0x74, a, 0, 0, k1),
            Insn::new(0x64, b, 0, 0, k2),
            Insn::new(0x4c, b, a, 0, 0),
        ]),
        // the xorshift step: mov a, b; rsh|lsh a, k; xor a, b
        (
            any::<bool>(),
            any::<bool>(),
            reg.clone(),
            reg.clone(),
            0i32..64
        )
            .prop_map(|(wide, left, a, b, k)| {
                let class = if wide { 0x07 } else { 0x04 };
                let shift = if left { 0x60 } else { 0x70 };
                vec![
                    Insn::new(class | 0xb8, a, b, 0, 0),
                    Insn::new(class | shift, a, 0, 0, if wide { k } else { k & 31 }),
                    Insn::new(class | 0xa8, a, b, 0, 0),
                ]
            }),
        // a single ALU instruction
        (
            any::<bool>(),
            0usize..9,
            any::<bool>(),
            reg.clone(),
            reg,
            any::<i32>()
        )
            .prop_map(|(wide, op, x, d, s, k)| vec![alu(
                if wide { 0x07 } else { 0x04 },
                ALU_OPS[op],
                x,
                d,
                s,
                k
            )]),
    ]
}

fn program() -> impl Strategy<Value = Vec<Insn>> {
    (
        prop::collection::vec(any::<i32>(), 6),
        prop::collection::vec(piece(), 1..12),
    )
        .prop_map(|(init, pieces)| {
            let mut p: Vec<Insn> = init
                .iter()
                .enumerate()
                .map(|(r, &k)| Insn::new(0xb7, r as u8, 0, 0, k))
                .collect();
            for piece in pieces {
                p.extend(piece);
            }
            // r0 ^= r1 ... r5, each rotated so that swapped registers show.
            for r in 1..6u8 {
                p.push(Insn::new(0x67, 0, 0, 0, 7)); // r0 <<= 7
                p.push(Insn::new(0xaf, 0, r, 0, 0)); // r0 ^= rN
            }
            p.push(Insn::new(0x95, 0, 0, 0, 0));
            p
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]
    #[test]
    fn fused_fast_code_agrees_with_the_checked_interpreter(prog in program()) {
        let helpers = Helpers::new();
        let checked = Program::new(&prog, &helpers).and_then(|p| p.run_checked(&RunCtx::new()));
        prop_assert!(checked.is_ok(), "{checked:?}");
        // SAFETY: the programs make no memory access and no call.
        let vm = unsafe { Vm::from_unverified(&prog, &helpers) };
        prop_assert!(vm.is_ok());
        if let (Ok(c), Ok(vm)) = (checked, vm) {
            prop_assert_eq!(vm.run_ctx(&RunCtx::new()), c);
        }
    }
}
