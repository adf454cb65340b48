//! Where the interpreter's time goes, on synthetic straight-line programs of 200 ALU64
//! instructions: the fixed cost of one run (a 2-instruction program), the cost per instruction
//! when each one depends on the previous one (one register, so the register file's store-to-load
//! round trip is on the critical path), and when consecutive instructions are independent
//! (six registers round-robin), with one opcode or five alternating (the dispatch jump's
//! prediction). Divide by 200 for the time per instruction; benches/README.md has the numbers.

use bpfkit_benches::clock::Stamp;
use bpfkit_isa::Insn;
use bpfkit_vm::{Helpers, RunCtx, Vm};
use criterion::{black_box, Criterion};

const LEN: usize = 200;
const EXIT: u8 = 0x95;
/// ALU64 with an immediate: add, xor, or, sub, mul.
const ALU64_K: [u8; 5] = [0x07, 0xa7, 0x47, 0x17, 0x27];

fn straight_line(insn: impl Fn(usize) -> Insn) -> Vec<Insn> {
    let mut insns: Vec<Insn> = (0..LEN).map(insn).collect();
    insns.push(Insn::new(EXIT, 0, 0, 0, 0));
    insns
}

fn programs() -> Vec<(&'static str, Vec<Insn>)> {
    let reg = |i: usize| (i % 6) as u8;
    vec![
        (
            "empty run (r0 = 0; exit)",
            vec![Insn::new(0xb7, 0, 0, 0, 0), Insn::new(EXIT, 0, 0, 0, 0)],
        ),
        (
            "200 dependent, one opcode",
            straight_line(|_| Insn::new(0x07, 0, 0, 0, 1)),
        ),
        (
            "200 dependent, five opcodes",
            straight_line(|i| Insn::new(ALU64_K[i % 5], 0, 0, 0, 3)),
        ),
        (
            "200 independent, one opcode",
            straight_line(|i| Insn::new(0x07, reg(i), 0, 0, 1)),
        ),
        (
            "200 independent, five opcodes",
            straight_line(|i| Insn::new(ALU64_K[i % 5], reg(i), 0, 0, 3)),
        ),
    ]
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("interp_dispatch");
    for (name, insns) in programs() {
        // SAFETY: the programs only compute in registers: no memory access, no call.
        let vm = match unsafe { Vm::from_unverified(&insns, &Helpers::new()) } {
            Ok(vm) => vm,
            Err(e) => panic!("{name}: {e}"),
        };
        let ctx = RunCtx::new();
        // Timed on the thread's CPU time, like the interp bench.
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Stamp::now();
                for _ in 0..iters {
                    black_box(vm.run_ctx(black_box(&ctx)));
                }
                start.elapsed()
            })
        });
    }
    group.finish();
    criterion.final_summary();
}
