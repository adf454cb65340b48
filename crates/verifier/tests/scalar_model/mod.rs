//! Shared by the scalar tests: runs `bpfkit_verifier::scalar` over a straight-line program the
//! way the kernel's verifier does (main path, pushed branches, AND/OR forks), and reads the
//! register states out of a kernel verifier log (log level 2).

#![allow(dead_code)]

use bpfkit_isa::{AluOp, CallTarget, EndKind, JmpCond, Op, Operand, Reg, Width};
use bpfkit_verifier::scalar::{
    alu, and_or_fork, branch_taken, end, neg, reg_set_min_max, LogTags, Scalar,
};
use std::collections::HashMap;

/// The registers the tests track: callee-saved, so helper calls keep them.
pub const REGS: [Reg; 4] = [Reg::R6, Reg::R7, Reg::R8, Reg::R9];

/// What the model predicts for one program.
#[derive(Default)]
pub struct Model {
    /// Main path: insn index -> the registers the insn touched, after it.
    pub main: HashMap<usize, Vec<(u8, Scalar)>>,
    /// Pushed states: (insn, target) -> r6..r9 (a jump's taken branch, or an AND/OR fork).
    pub pushed: HashMap<(usize, usize), Vec<(u8, Scalar)>>,
    /// Main-path insns from this index on are not compared (decided jump, dead branch).
    pub main_end: usize,
    /// The `REG INVARIANTS VIOLATION` lines the kernel logs on the main path, in order.
    pub violations: Vec<String>,
}

/// `call bpf_get_prandom_u32; rN = r0` for r6..r9: four unknown scalars.
pub fn prologue() -> Vec<Op> {
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
    ops
}

/// `r0 = 0; exit`.
pub fn epilogue() -> [Op; 2] {
    [
        Op::Alu {
            width: Width::W64,
            op: AluOp::Mov,
            dst: Reg::R0,
            src: Operand::Imm(0),
        },
        Op::Exit,
    ]
}

/// Lays out `prologue, body, r0 = 0; exit` plus one `r0 = 0; exit` stub per conditional jump
/// (so that no taken branch is pruned before its state is printed), pointing each jump at its
/// stub. Returns the ops and the index of the body's first instruction.
pub fn layout(body: &[Op]) -> (Vec<Op>, usize) {
    let mut ops = prologue();
    let start = ops.len();
    ops.extend_from_slice(body);
    let exit_at = ops.len();
    ops.extend(epilogue());
    let mut stub = ops.len();
    let mut jumps = 0;
    for (i, op) in ops.iter_mut().enumerate().take(exit_at).skip(start) {
        if let Op::Jcond { off, .. } = op {
            *off = (stub - (i + 1)) as i16;
            stub += 2;
            jumps += 1;
        }
    }
    for _ in 0..jumps {
        ops.extend(epilogue());
    }
    (ops, start)
}

fn operand(regs: &[Scalar; 11], src: Operand) -> Scalar {
    match src {
        Operand::Reg(r) => regs[r.index()],
        Operand::Imm(i) => Scalar::from_imm(i),
    }
}

fn snapshot(regs: &[Scalar; 11]) -> Vec<(u8, Scalar)> {
    REGS.iter().map(|r| (r.num(), regs[r.index()])).collect()
}

/// Runs the model over `ops` from `start` up to the first EXIT.
pub fn run(ops: &[Op], start: usize) -> Model {
    let mut regs = [Scalar::unknown(); 11];
    let exit_at = ops.iter().position(|o| *o == Op::Exit).unwrap_or(ops.len());
    let mut m = Model {
        main_end: exit_at,
        ..Model::default()
    };
    for (i, op) in ops.iter().enumerate().take(exit_at).skip(start) {
        let mut touched = Vec::new();
        match *op {
            Op::Alu {
                width,
                op,
                dst,
                src,
            } => {
                if dst.num() == 0 {
                    continue;
                }
                let s = operand(&regs, src);
                let mut d = regs[dst.index()];
                if let Some(f) = and_or_fork(op, &d, &s) {
                    d = f.continue_with;
                    let mut pushed = regs;
                    pushed[dst.index()] = f.pushed;
                    m.pushed.insert((i, i), snapshot(&pushed));
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
                match branch_taken(cond, width, &a, &b) {
                    Some(true) => {
                        m.main.insert(
                            i,
                            touched.iter().map(|r| (r.num(), regs[r.index()])).collect(),
                        );
                        m.main_end = i + 1;
                        break;
                    }
                    Some(false) => {}
                    None => {
                        let mut t = regs;
                        let same = src == Operand::Reg(dst);
                        let br = reg_set_min_max(cond, width, &a, &b, same);
                        m.violations.extend(br.violations);
                        t[dst.index()] = br.taken.0;
                        regs[dst.index()] = br.fallthrough.0;
                        if let Operand::Reg(r) = src {
                            if !same {
                                t[r.index()] = br.taken.1;
                                regs[r.index()] = br.fallthrough.1;
                            }
                        }
                        m.pushed.insert((i, target), snapshot(&t));
                    }
                }
            }
            _ => {}
        }
        m.main.insert(
            i,
            touched.iter().map(|r| (r.num(), regs[r.index()])).collect(),
        );
    }
    m
}

/// The `verifier bug: REG INVARIANTS VIOLATION` lines of a log, in order, up to the first
/// popped branch.
pub fn violations(log: &str) -> Vec<String> {
    log.lines()
        .take_while(|l| !l.starts_with("from "))
        .filter(|l| l.contains("REG INVARIANTS VIOLATION"))
        .map(str::to_string)
        .collect()
}

/// The register states of a kernel log, as printed (`R6=Pscalar(id=2,...)` gives
/// `(6, "Pscalar(id=2,...)")`), for r6..r9.
#[derive(Default)]
pub struct KernelLog {
    /// Main path (before the first popped branch): insn index -> last printed state.
    pub main: HashMap<usize, Vec<(u8, String)>>,
    /// `from X to Y: ...` lines: the first state printed for each edge.
    pub pushed: HashMap<(usize, usize), Vec<(u8, String)>>,
}

/// Splits `R6=scalar(...) R7=5` into (6, "scalar(...)"), (7, "5"), keeping r6..r9.
pub fn parse_regs(s: &str) -> Vec<(u8, String)> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
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
    let mut out = Vec::new();
    for t in tokens {
        let Some(rest) = t.strip_prefix('R') else {
            continue;
        };
        let Some((n, v)) = rest.split_once('=') else {
            continue;
        };
        let Ok(n) = n.parse::<u8>() else { continue };
        if (6..=9).contains(&n) {
            out.push((n, v.to_string()));
        }
    }
    out
}

/// Reads the main path and the popped branches out of a level-2 log.
pub fn parse_log(log: &str) -> KernelLog {
    let mut k = KernelLog::default();
    let mut in_main = true;
    let mut pending = None;
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
            k.pushed
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
        let (idx, state) = if rest.starts_with('(') {
            match rest.split_once(';') {
                Some((_, s)) => (idx, s),
                None => {
                    // The state comes later, after precision-tracking lines, on a line of its
                    // own numbered with this insn (a decided jump) or the next one (an ALU
                    // instruction).
                    pending = Some(idx);
                    continue;
                }
            }
        } else {
            (pending.take().unwrap_or(idx), rest)
        };
        k.main.insert(idx, parse_regs(state));
    }
    k
}

/// The facts outside the scalar domain that a kernel register text shows: `P`, `id=N`,
/// `id=N+D`.
pub fn tags_of(text: &str) -> LogTags {
    let mut tags = LogTags {
        precise: text.starts_with('P'),
        ..LogTags::default()
    };
    if let Some(pos) = text.find("(id=") {
        let tail = &text[pos + 4..];
        let end = tail.find([',', ')']).unwrap_or(tail.len());
        let id = &tail[..end];
        let split = id[1..].find(['+', '-']).map(|p| p + 1);
        match split {
            Some(p) => {
                tags.id = id[..p].parse().unwrap_or(0);
                tags.delta = id[p..].parse().ok();
            }
            None => tags.id = id.parse().unwrap_or(0),
        }
    }
    tags
}

/// Compares the model with a kernel log; the first difference, described.
pub fn compare(
    ops: &[Op],
    model: &Model,
    log: &KernelLog,
    counts: &mut [usize; 3],
) -> Option<String> {
    let mut idxs: Vec<_> = model
        .main
        .keys()
        .copied()
        .filter(|&i| i < model.main_end)
        .collect();
    idxs.sort_unstable();
    for i in idxs {
        let Some(got) = log.main.get(&i) else {
            return Some(format!("insn {i} ({:?}): no kernel state line", ops[i]));
        };
        for (r, want) in &model.main[&i] {
            let Some((_, g)) = got.iter().find(|(n, _)| n == r) else {
                continue;
            };
            counts[0] += 1;
            let mine = want.log_text(tags_of(g));
            if *g != mine {
                return Some(format!(
                    "insn {i} ({:?}): R{r}\n   kernel: {g}\n   bpfkit: {mine}",
                    ops[i]
                ));
            }
        }
    }
    let mut edges: Vec<_> = model.pushed.keys().copied().collect();
    edges.sort_unstable();
    for (from, to) in edges {
        if from >= model.main_end {
            continue;
        }
        let Some(got) = log.pushed.get(&(from, to)) else {
            continue;
        };
        for (r, want) in &model.pushed[&(from, to)] {
            let Some((_, g)) = got.iter().find(|(n, _)| n == r) else {
                continue;
            };
            counts[if from == to { 2 } else { 1 }] += 1;
            let mine = want.log_text(tags_of(g));
            if *g != mine {
                return Some(format!(
                    "state pushed at insn {from} ({:?}) for {to}: R{r}\n   kernel: {g}\n   bpfkit: {mine}",
                    ops[from]
                ));
            }
        }
    }
    None
}

/// A numbered listing of a program, for failure messages.
pub fn listing(ops: &[Op]) -> String {
    ops.iter()
        .enumerate()
        .map(|(i, op)| format!("  {i}: {op:?}\n"))
        .collect()
}

/// xorshift64*: deterministic, dependency-free.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

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

/// A random body instruction on r6..r9 (jump offsets are set by [`layout`]).
pub fn gen_op(rng: &mut Rng) -> Op {
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

/// A random body; every other one starts by narrowing r6..r9 to small or structured ranges
/// (masks, shifts, bounds checks), the shapes real programs give the verifier.
pub fn gen_body(rng: &mut Rng, len: usize) -> Vec<Op> {
    let mut body = Vec::new();
    if rng.below(2) == 0 {
        for r in REGS {
            let w = if rng.below(4) == 0 {
                Width::W32
            } else {
                Width::W64
            };
            let shaping = match rng.below(5) {
                0 => Op::Alu {
                    width: w,
                    op: AluOp::And,
                    dst: r,
                    src: Operand::Imm(((1i64 << rng.below(17)) - 1) as i32),
                },
                1 => Op::Alu {
                    width: Width::W64,
                    op: AluOp::Rsh,
                    dst: r,
                    src: Operand::Imm(32 + rng.below(31) as i32),
                },
                2 => Op::Jcond {
                    width: w,
                    cond: rng.pick(&[JmpCond::Gt, JmpCond::Ge, JmpCond::Sgt, JmpCond::Sge]),
                    dst: r,
                    src: Operand::Imm(rng.below(5000) as i32),
                    off: 0,
                },
                3 => Op::Alu {
                    width: Width::W64,
                    op: AluOp::Arsh,
                    dst: r,
                    src: Operand::Imm(40 + rng.below(23) as i32),
                },
                _ => Op::Alu {
                    width: w,
                    op: AluOp::Or,
                    dst: r,
                    src: Operand::Imm(rng.below(1 << 12) as i32),
                },
            };
            body.push(shaping);
        }
    }
    body.extend((0..len).map(|_| gen_op(rng)));
    body
}
