//! Strongly connected components of the control-flow graph (`compute_scc`): the loops of a
//! program. Linux 6.18 numbers them for the level-2 log (the liveness table's first column,
//! `SCC enter (N)` / `SCC exit (N)` when a path's first stored state inside a loop is made and
//! when every path below it is done).
//!
//! The numbering is the kernel's: Tarjan's algorithm started from every unvisited instruction
//! in index order, successors in `bpf_insn_successors` order (fall-through first, then the jump
//! target), a component numbered when its root is found — only components of two or more
//! instructions, or of one that jumps to itself or calls a callback-taking helper.

use bpfkit_isa::opcode as c;
use bpfkit_isa::Insn;

/// Helpers that call a callback (`bpf_calls_callback`): `bpf_for_each_map_elem`,
/// `bpf_timer_set_callback`, `bpf_find_vma`, `bpf_loop`, `bpf_user_ringbuf_drain`.
const CALLBACK_HELPERS: [i32; 5] = [164, 170, 180, 181, 209];

/// The successors of instruction `i` (`bpf_insn_successors`), at most two, in the kernel's
/// order; instructions outside the program are left out.
fn successors(insns: &[Insn], i: usize) -> Vec<usize> {
    let insn = insns[i];
    let class = c::class(insn.code);
    let mut out = Vec::with_capacity(2);
    let mut push = |t: i64| {
        if t >= 0 && (t as usize) < insns.len() {
            out.push(t as usize);
        }
    };
    let at = i as i64;
    if class != c::JMP && class != c::JMP32 {
        push(at + if insn.is_ld_imm64() { 2 } else { 1 });
        return out;
    }
    match insn.code & 0xf0 {
        c::EXIT => {}
        c::CALL => push(at + 1),
        c::JA => {
            let off = if class == c::JMP32 {
                i64::from(insn.imm)
            } else {
                i64::from(insn.off)
            };
            push(at + off + 1);
        }
        _ => {
            push(at + 1);
            push(at + i64::from(insn.off) + 1);
        }
    }
    out
}

/// The loop (SCC) number of every instruction, 0 for none (`insn_aux_data[i].scc`).
#[must_use]
pub fn compute(insns: &[Insn]) -> Vec<u32> {
    const NOT_ON_STACK: u32 = u32::MAX;
    let n = insns.len();
    let mut scc = vec![0u32; n];
    let mut pre = vec![0u32; n];
    let mut low = vec![0u32; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut next_pre = 1u32;
    let mut next_scc = 1u32;
    for root in 0..n {
        if pre[root] != 0 {
            continue;
        }
        stack.clear();
        let mut dfs = vec![root];
        'dfs: while let Some(&w) = dfs.last() {
            if pre[w] == 0 {
                pre[w] = next_pre;
                low[w] = next_pre;
                next_pre += 1;
                stack.push(w);
            }
            let succ = successors(insns, w);
            for &s in &succ {
                if pre[s] != 0 {
                    low[w] = low[w].min(low[s]);
                } else {
                    dfs.push(s);
                    continue 'dfs;
                }
            }
            // Some vertex above on the stack is reachable from `w`: keep it there.
            if low[w] < pre[w] {
                dfs.pop();
                continue;
            }
            let callback = {
                let insn = insns[w];
                insn.code == (c::JMP | c::CALL)
                    && insn.src == 0
                    && CALLBACK_HELPERS.contains(&insn.imm)
            };
            let assign = stack.last() != Some(&w) || succ.contains(&w) || callback;
            while let Some(t) = stack.pop() {
                low[t] = NOT_ON_STACK;
                if assign {
                    scc[t] = next_scc;
                }
                if t == w {
                    break;
                }
            }
            if assign {
                next_scc += 1;
            }
            dfs.pop();
        }
    }
    scc
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfkit_isa::asm::kernel::assemble;

    fn sccs(text: &str) -> Vec<u32> {
        compute(&assemble(text).expect("the test program assembles"))
    }

    #[test]
    fn straight_line_code_has_no_loop() {
        assert_eq!(sccs("r0 = 0\nexit"), vec![0, 0]);
    }

    #[test]
    fn a_loop_body_shares_one_number() {
        // Linux 6.18 prints `  1   1: ...` and `  1   2: ...` for this loop body.
        let text = "r0 = 0\nl:\nr0 += 1\nif r0 < 10 goto l\nexit";
        assert_eq!(sccs(text), vec![0, 1, 1, 0]);
    }

    #[test]
    fn a_self_jump_is_a_loop() {
        assert_eq!(sccs("r0 = 0\nl:\ngoto l\nexit"), vec![0, 1, 0]);
    }

    #[test]
    fn two_loops_get_two_numbers() {
        let text = "r0 = 0\na:\nr0 += 1\nif r0 < 5 goto a\nb:\nr0 += 1\nif r0 < 9 goto b\nexit";
        let s = sccs(text);
        assert_eq!(s[0], 0);
        assert_eq!(s[1], s[2]);
        assert_eq!(s[3], s[4]);
        assert_ne!(s[1], s[3]);
        assert_eq!(s[5], 0);
    }
}
