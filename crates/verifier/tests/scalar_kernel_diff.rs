//! Differential test of the scalar domain against the running Linux kernel.
//!
//! Random straight-line programs shape four unknown scalars (r6..r9, from
//! `bpf_get_prandom_u32`) with every ALU operation, NEG, END, MOVSX and conditional jumps (64
//! and 32 bits, immediate and register operands). Each program is loaded with log level 2; the
//! kernel prints the state of the registers an instruction touched, and the state of every
//! pushed (taken) branch when it is explored. The test computes the same states with
//! `bpfkit_verifier::scalar` and compares the printed text, so both the transfer functions and
//! the log printer are checked against Linux itself.
//!
//! Skips (printing why) where the `bpf()` syscall is unavailable.

use bpfkit_isa::{AluOp, CallTarget, EndKind, Insn, JmpCond, Op, Operand, Reg, Width};
use bpfkit_verifier::scalar::{
    alu, and_or_fork, branch_taken, end, neg, refine, refine_same, Scalar,
};
use std::collections::HashMap;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const REGS: [Reg; 4] = [Reg::R6, Reg::R7, Reg::R8, Reg::R9];

fn imm(rng: &mut Rng) -> i32 {
    match rng.below(8) {
        0 => rng.below(16) as i32,
        1 => rng.below(300) as i32 - 150,
        2 => (1i64 << rng.below(31)) as i32,
        3 => ((1i64 << rng.below(32)) - 1) as i32,
        4 => rng.pick(&[
            -1,
            i32::MIN,
            i32::MAX,
            0x7fff,
            0x8000,
            0xffff,
            0x10000,
            -0x8000,
        ]),
        5 => -((1i64 << rng.below(31)) as i32),
        _ => rng.next() as i32,
    }
}

fn gen_op(rng: &mut Rng, jumps: &mut usize) -> Op {
    let width = if rng.below(3) == 0 {
        Width::W32
    } else {
        Width::W64
    };
    let dst = rng.pick(&REGS);
    let src = if rng.below(3) == 0 {
        Operand::Reg(rng.pick(&REGS))
    } else {
        Operand::Imm(imm(rng))
    };
    match rng.below(20) {
        0..=10 => {
            let op = rng.pick(&[
                AluOp::Add,
                AluOp::Sub,
                AluOp::Mul,
                AluOp::Div,
                AluOp::Sdiv,
                AluOp::Mod,
                AluOp::Smod,
                AluOp::Or,
                AluOp::And,
                AluOp::And,
                AluOp::Lsh,
                AluOp::Rsh,
                AluOp::Arsh,
                AluOp::Xor,
                AluOp::Mov,
            ]);
            let bits = if width == Width::W64 { 64 } else { 32 };
            let src = match (op, src) {
                (AluOp::Lsh | AluOp::Rsh | AluOp::Arsh, Operand::Imm(_)) => {
                    Operand::Imm(rng.below(bits) as i32)
                }
                (AluOp::Div | AluOp::Sdiv | AluOp::Mod | AluOp::Smod, Operand::Imm(0)) => {
                    Operand::Imm(7)
                }
                // A register copy would link the two registers by id; keep them independent.
                (AluOp::Mov, Operand::Reg(_)) => Operand::Reg(dst),
                (_, s) => s,
            };
            Op::Alu {
                width,
                op,
                dst,
                src,
            }
        }
        11 => Op::Neg { width, dst },
        12 => {
            let bits = rng.pick(&[16u8, 32, 64]);
            let kind = rng.pick(&[EndKind::ToLe, EndKind::ToBe, EndKind::Swap]);
            Op::End { kind, bits, dst }
        }
        13 => {
            let off = if width == Width::W64 {
                rng.pick(&[8u8, 16, 32])
            } else {
                rng.pick(&[8u8, 16])
            };
            Op::Alu {
                width,
                op: AluOp::Movsx(off),
                dst,
                src: Operand::Reg(dst),
            }
        }
        _ => {
            *jumps += 1;
            let cond = rng.pick(&[
                JmpCond::Eq,
                JmpCond::Ne,
                JmpCond::Gt,
                JmpCond::Ge,
                JmpCond::Lt,
                JmpCond::Le,
                JmpCond::Sgt,
                JmpCond::Sge,
                JmpCond::Slt,
                JmpCond::Sle,
                JmpCond::Set,
            ]);
            Op::Jcond {
                width,
                cond,
                dst,
                src,
                off: 0,
            }
        }
    }
}

/// What the model predicts for one program.
#[derive(Default)]
struct Expect {
    /// Main path: insn index -> (reg, text) for the registers the insn touched.
    main: HashMap<usize, Vec<(u8, String)>>,
    /// Pushed branches: (jump index, target) -> full r6..r9 state.
    taken: HashMap<(usize, usize), Vec<(u8, String)>>,
    /// Insn indices past which the main path is not compared (decided jump, dead branch).
    main_end: usize,
}

fn operand(regs: &[Scalar; 11], src: Operand) -> Scalar {
    match src {
        Operand::Reg(r) => regs[r.index()],
        Operand::Imm(i) => Scalar::known(i64::from(i) as u64),
    }
}

fn text(s: &Scalar) -> String {
    s.to_string()
}

/// Builds the program and runs the model over it.
fn build(rng: &mut Rng, body_len: usize) -> (Vec<Insn>, Vec<Op>, Expect) {
    let mut jumps = 0;
    let body: Vec<Op> = (0..body_len).map(|_| gen_op(rng, &mut jumps)).collect();
    let mut ops = Vec::new();
    for r in REGS {
        ops.push(Op::Call(CallTarget::Helper(7)));
        ops.push(Op::Alu {
            width: Width::W64,
            op: AluOp::Mov,
            dst: r,
            src: Operand::Reg(Reg::R0),
        });
    }
    let body_start = ops.len();
    ops.extend(body.iter().copied());
    let exit_at = ops.len();
    ops.push(Op::Alu {
        width: Width::W64,
        op: AluOp::Mov,
        dst: Reg::R0,
        src: Operand::Imm(0),
    });
    ops.push(Op::Exit);
    // One stub per jump so that no taken branch is pruned before its state is printed.
    let mut stub = ops.len();
    for (i, op) in ops.iter_mut().enumerate().take(exit_at).skip(body_start) {
        if let Op::Jcond { off, .. } = op {
            *off = (stub - (i + 1)) as i16;
            stub += 2;
        }
    }
    for _ in 0..jumps {
        ops.push(Op::Alu {
            width: Width::W64,
            op: AluOp::Mov,
            dst: Reg::R0,
            src: Operand::Imm(0),
        });
        ops.push(Op::Exit);
    }

    let mut regs = [Scalar::unknown(); 11];
    let mut exp = Expect {
        main_end: exit_at,
        ..Expect::default()
    };
    for (i, op) in ops.iter().enumerate().take(exit_at).skip(body_start) {
        let mut touched = Vec::new();
        match *op {
            Op::Alu {
                width,
                op,
                dst,
                src,
            } => {
                let s = operand(&regs, src);
                let mut d = regs[dst.index()];
                if let Some(f) = and_or_fork(op, &d, &s) {
                    d = f.continue_with;
                }
                regs[dst.index()] = alu(op, width, &d, &s);
                touched.push(dst);
                if let Operand::Reg(r) = src {
                    touched.push(r);
                }
            }
            Op::Neg { width, dst } => {
                regs[dst.index()] = neg(width, &regs[dst.index()]);
                touched.push(dst);
            }
            Op::End { kind, bits, dst } => {
                regs[dst.index()] = end(kind, bits, &regs[dst.index()]);
                touched.push(dst);
            }
            Op::Jcond {
                width,
                cond,
                dst,
                src,
                off,
            } => {
                let target = (i as i64 + 1 + i64::from(off)) as usize;
                let a = regs[dst.index()];
                let b = operand(&regs, src);
                touched.push(dst);
                if let Operand::Reg(r) = src {
                    touched.push(r);
                }
                let same = src == Operand::Reg(dst);
                let pred = branch_taken(cond, width, &a, &b);
                match pred {
                    Some(true) => {
                        exp.main.insert(
                            i,
                            touched
                                .iter()
                                .map(|r| (r.num(), text(&regs[r.index()])))
                                .collect(),
                        );
                        exp.main_end = i + 1;
                        break;
                    }
                    Some(false) => {}
                    None if same => {
                        let ta = refine_same(cond, width, &a, true);
                        let fa = refine_same(cond, width, &a, false);
                        let mut t = regs;
                        t[dst.index()] = ta;
                        regs[dst.index()] = fa;
                        if !ta.is_sane() || !fa.is_sane() {
                            exp.main_end = i;
                            break;
                        }
                        let full = REGS
                            .iter()
                            .map(|r| (r.num(), text(&t[r.index()])))
                            .collect();
                        exp.taken.insert((i, target), full);
                    }
                    None => {
                        let (ta, tb) = refine(cond, width, &a, &b, true);
                        let (fa, fb) = refine(cond, width, &a, &b, false);
                        let dead = !ta.is_sane() || !tb.is_sane() || !fa.is_sane() || !fb.is_sane();
                        let mut t = regs;
                        t[dst.index()] = ta;
                        if let Operand::Reg(r) = src {
                            t[r.index()] = tb;
                        }
                        regs[dst.index()] = fa;
                        if let Operand::Reg(r) = src {
                            regs[r.index()] = fb;
                        }
                        if dead {
                            // The kernel's sanity check takes over; stop comparing here.
                            exp.main_end = i;
                            break;
                        }
                        let full = REGS
                            .iter()
                            .map(|r| (r.num(), text(&t[r.index()])))
                            .collect();
                        exp.taken.insert((i, target), full);
                    }
                }
            }
            _ => {}
        }
        exp.main.insert(
            i,
            touched
                .iter()
                .map(|r| (r.num(), text(&regs[r.index()])))
                .collect(),
        );
    }
    let insns = ops.iter().flat_map(Op::encode).collect();
    (insns, ops, exp)
}

/// Splits `R6=scalar(...) R7=5` into (6, "scalar(...)"), (7, "5"), keeping only r6..r9 and
/// dropping what the model does not track (precision marks and ids).
fn parse_regs(s: &str) -> Vec<(u8, String)> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut tokens = Vec::new();
    let mut cur = String::new();
    for ch in s.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if ch == ' ' && depth == 0 {
            if !cur.is_empty() {
                tokens.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(ch);
        }
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    for t in tokens {
        let Some(rest) = t.strip_prefix('R') else {
            continue;
        };
        let Some((n, v)) = rest.split_once('=') else {
            continue;
        };
        let Ok(n) = n.parse::<u8>() else { continue };
        if !(6..=9).contains(&n) {
            continue;
        }
        out.push((n, normalize(v)));
    }
    out
}

fn normalize(v: &str) -> String {
    let v = v.strip_prefix('P').unwrap_or(v);
    // Remove `id=N` or `id=N+D` / `id=N-D`, and its comma.
    if let Some(pos) = v.find("id=") {
        let tail = &v[pos + 3..];
        let len = tail
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_digit() || (i > 0 && (c == '+' || c == '-'))))
            .map_or(tail.len(), |(i, _)| i);
        let mut rest = &tail[len..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        }
        return format!("{}{}", &v[..pos], rest);
    }
    v.to_string()
}

struct KernelLog {
    main: HashMap<usize, Vec<(u8, String)>>,
    taken: HashMap<(usize, usize), Vec<(u8, String)>>,
}

fn parse_log(log: &str) -> KernelLog {
    let mut k = KernelLog {
        main: HashMap::new(),
        taken: HashMap::new(),
    };
    let mut in_main = true;
    for line in log.lines() {
        if let Some(rest) = line.strip_prefix("from ") {
            in_main = false;
            let Some((edge, state)) = rest.split_once(':') else {
                continue;
            };
            let Some((from, to)) = edge.split_once(" to ") else {
                continue;
            };
            let (Ok(from), Ok(to)) = (from.trim().parse(), to.trim().parse::<usize>()) else {
                continue;
            };
            if state.trim() == "safe" {
                continue;
            }
            k.taken
                .entry((from, to))
                .or_insert_with(|| parse_regs(state));
            continue;
        }
        if !in_main {
            continue;
        }
        let Some((idx, rest)) = line.split_once(": ") else {
            continue;
        };
        let Ok(idx) = idx.parse::<usize>() else {
            continue;
        };
        let state = if rest.starts_with('(') {
            match rest.split_once(';') {
                Some((_, s)) => s,
                None => continue,
            }
        } else {
            rest
        };
        k.main.insert(idx, parse_regs(state));
    }
    k
}

fn listing(ops: &[Op]) -> String {
    ops.iter()
        .enumerate()
        .map(|(i, op)| format!("  {i}: {op:?}\n"))
        .collect()
}

#[test]
fn scalar_states_match_the_kernel_log() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipping the kernel differential test: {why}");
        return;
    }
    let programs: u64 = std::env::var("SCALAR_DIFF_PROGRAMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let seed: u64 = std::env::var("SCALAR_DIFF_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5ca1_ab1e);
    let mut failures = Vec::new();
    let mut compared = 0usize;
    for p in 0..programs {
        let mut rng = Rng(seed ^ (p.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
        let len = 6 + rng.below(30) as usize;
        let (insns, ops, exp) = build(&mut rng, len);
        let loaded = bpfkit_kernel::ProgLoad {
            log_level: 2,
            ..bpfkit_kernel::ProgLoad::new(bpfkit_kernel::names::PROG_SOCKET_FILTER)
        }
        .load(&insns);
        let k = parse_log(&loaded.log);
        let mut idxs: Vec<_> = exp
            .main
            .keys()
            .copied()
            .filter(|&i| i < exp.main_end)
            .collect();
        idxs.sort_unstable();
        let mut bad = None;
        for i in idxs {
            let want = &exp.main[&i];
            let Some(got) = k.main.get(&i) else {
                bad = Some(format!("insn {i}: no kernel state line"));
                break;
            };
            for (r, w) in want {
                compared += 1;
                match got.iter().find(|(n, _)| n == r) {
                    Some((_, g)) if g == w => {}
                    Some((_, g)) => {
                        bad = Some(format!(
                            "insn {i} ({:?}): R{r}\n   kernel: {g}\n   bpfkit: {w}",
                            ops[i]
                        ));
                    }
                    None => {}
                }
                if bad.is_some() {
                    break;
                }
            }
            if bad.is_some() {
                break;
            }
        }
        if bad.is_none() {
            for ((from, to), want) in &exp.taken {
                if *from >= exp.main_end {
                    continue;
                }
                let Some(got) = k.taken.get(&(*from, *to)) else {
                    continue;
                };
                for (r, w) in want {
                    compared += 1;
                    if let Some((_, g)) = got.iter().find(|(n, _)| n == r) {
                        if g != w {
                            bad = Some(format!(
                                "taken branch of insn {from} ({:?}): R{r}\n   kernel: {g}\n   bpfkit: {w}",
                                ops[*from]
                            ));
                            break;
                        }
                    }
                }
                if bad.is_some() {
                    break;
                }
            }
        }
        if let Some(b) = bad {
            failures.push(format!("program {p}:\n{b}\n{}", listing(&ops)));
            if failures.len() >= 3 {
                break;
            }
        }
    }
    println!("compared {compared} register states over {programs} programs");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
