//! Live stack slots as Linux 6.18 computes them (kernel/bpf/liveness.c): for every call chain
//! and instruction, the slots an instruction may read (`may_read`) and must write
//! (`must_write`, the intersection over the paths seen), then a fixed-point data flow over the
//! subprogram's instructions in postorder (`live_before`, `must_write_acc`). Pruning uses it
//! as the kernel does: a stored state's dead slots are cleaned before it is compared
//! (`clean_func_state`, [`StackLive::slot_alive`]). Level 2 prints every change (`(0) frame 0 insn 5 +live -8`) and the iteration count
//! (`(0) live stack update done in 2 iterations`).

use crate::precision::Backtrack;
use crate::state::{State, MAX_FRAMES};
use bpfkit_isa::opcode as c;
use bpfkit_isa::Insn;
use std::fmt::Write;

/// The masks of one instruction in one frame (`struct per_frame_masks`).
#[derive(Clone, Copy, Debug, Default)]
struct Masks {
    may_read: u64,
    must_write: u64,
    must_write_acc: u64,
    live_before: u64,
}

/// The marks of one call chain (`struct func_instance`).
struct Instance {
    /// Call sites of the outer frames, then the subprogram's start.
    chain: Vec<usize>,
    /// The subprogram's index.
    subprog: usize,
    updated: bool,
    must_write_dropped: bool,
    /// Per frame, per instruction of the subprogram (allocated on first use).
    frames: Vec<Option<Vec<Masks>>>,
    must_write_set: Vec<bool>,
}

/// The analysis (`struct bpf_liveness`).
pub struct StackLive {
    starts: Vec<usize>,
    ends: Vec<usize>,
    postorder: Vec<Vec<usize>>,
    prune_point: Vec<bool>,
    instances: Vec<Instance>,
    cur: Option<usize>,
    write_idx: usize,
    write_acc: [u64; MAX_FRAMES],
    pending_reads: Vec<(usize, u64)>,
}

/// `bpf_insn_successors`: at most two (fall-through first), returned in a fixed array with
/// its length so the fixed point allocates nothing per instruction.
fn successors(insns: &[Insn], idx: usize) -> ([usize; 2], usize) {
    let mut out = [0usize; 2];
    let mut n = 0;
    let Some(insn) = insns.get(idx) else {
        return (out, 0);
    };
    let class = c::class(insn.code);
    let op = insn.code & 0xf0;
    let size = if insn.is_ld_imm64() { 2 } else { 1 };
    let (jump, fall) = if class == c::JMP || class == c::JMP32 {
        match op {
            c::EXIT => (false, false),
            c::JA => (true, false),
            c::CALL => (false, true),
            _ => (true, true),
        }
    } else {
        (false, true)
    };
    if fall && idx + size < insns.len() {
        out[n] = idx + size;
        n += 1;
    }
    if jump {
        let off = if insn.code == (c::JMP32 | c::JA) {
            i64::from(insn.imm)
        } else {
            i64::from(insn.off)
        };
        if let Ok(t) = usize::try_from(idx as i64 + off + 1) {
            if t < insns.len() {
                out[n] = t;
                n += 1;
            }
        }
    }
    (out, n)
}

/// The postorder of a depth-first walk of one subprogram, not entering callees
/// (`compute_postorder`, `insn_postorder`).
fn postorder(insns: &[Insn], start: usize, end: usize) -> Vec<usize> {
    // `compute_postorder`: every undiscovered successor is pushed at once (fall-through first),
    // so the jump target, on top, is walked first.
    const DISCOVERED: u8 = 1;
    const EXPLORED: u8 = 2;
    let mut order = Vec::new();
    if start >= insns.len() {
        return order;
    }
    let mut state = vec![0u8; insns.len()];
    let mut stack = vec![start];
    while let Some(&top) = stack.last() {
        state[top] |= DISCOVERED;
        if state[top] & EXPLORED != 0 {
            order.push(top);
            stack.pop();
            continue;
        }
        let (succ, n) = successors(insns, top);
        for &w in &succ[..n] {
            if (start..end).contains(&w) && state[w] == 0 {
                stack.push(w);
                state[w] |= DISCOVERED;
            }
        }
        state[top] |= EXPLORED;
    }
    order
}

impl StackLive {
    /// The analysis for a program with subprograms starting at `starts`.
    #[must_use]
    pub fn new(insns: &[Insn], starts: &[usize], prune_point: &[bool]) -> StackLive {
        let ends: Vec<usize> = (0..starts.len())
            .map(|i| starts.get(i + 1).copied().unwrap_or(insns.len()))
            .collect();
        let postorder = starts
            .iter()
            .zip(&ends)
            .map(|(&s, &e)| postorder(insns, s, e))
            .collect();
        StackLive {
            starts: starts.to_vec(),
            ends,
            postorder,
            prune_point: prune_point.to_vec(),
            instances: Vec::new(),
            cur: None,
            write_idx: 0,
            write_acc: [0; MAX_FRAMES],
            pending_reads: Vec::new(),
        }
    }

    /// `lookup_instance`: the instance of `st`'s call chain up to frame `frameno`.
    fn instance(&mut self, st: &State, frameno: usize) -> usize {
        let subprog = st.frames.get(frameno).map_or(0, |f| f.subprog);
        let start = self.starts.get(subprog).copied().unwrap_or(0);
        // The chain: call sites of frames 1..=frameno, then the subprogram's start. Compared
        // without building it: this runs at every instruction.
        let chain_at = |i: usize| {
            if i < frameno {
                st.frames.get(i + 1).map_or(0, |f| f.callsite)
            } else {
                start
            }
        };
        if let Some(i) = self.instances.iter().position(|x| {
            x.chain.len() == frameno + 1
                && x.chain.iter().enumerate().all(|(i, &v)| v == chain_at(i))
        }) {
            return i;
        }
        let chain: Vec<usize> = (0..=frameno).map(chain_at).collect();
        let len = self.ends.get(subprog).copied().unwrap_or(start) - start;
        self.instances.push(Instance {
            chain,
            subprog,
            updated: false,
            must_write_dropped: false,
            frames: vec![None; MAX_FRAMES],
            must_write_set: vec![false; len],
        });
        self.instances.len() - 1
    }

    fn masks(&mut self, inst: usize, frame: usize, idx: usize) -> Option<&mut Masks> {
        let start = self.starts[self.instances[inst].subprog];
        let len = self.instances[inst].must_write_set.len();
        let rel = idx.checked_sub(start).filter(|&r| r < len)?;
        let slot = self.instances[inst].frames.get_mut(frame)?;
        let arr = slot.get_or_insert_with(|| vec![Masks::default(); len]);
        arr.get_mut(rel)
    }

    /// `is_live_before`: slot `spi` of frame `frame` is read before instruction `idx` in
    /// instance `inst` (as far as the paths explored so far show).
    fn live_before(&self, inst: usize, frame: usize, idx: usize, spi: usize) -> bool {
        let Some(instance) = self.instances.get(inst) else {
            return false;
        };
        let start = self.starts[instance.subprog];
        let Some(rel) = idx.checked_sub(start) else {
            return false;
        };
        spi < 64
            && instance
                .frames
                .get(frame)
                .and_then(Option::as_ref)
                .and_then(|arr| arr.get(rel))
                .is_some_and(|m| m.live_before & (1 << spi) != 0)
    }

    /// `bpf_stack_slot_alive` for stored state `st` at instruction `idx`: slot `spi` of frame
    /// `frameno` may still be read, in the innermost function or, after the call that is still
    /// running, in one of its callers.
    pub fn slot_alive(&mut self, st: &State, idx: usize, frameno: usize, spi: usize) -> bool {
        let cur = st.frames.len() - 1;
        let cur_inst = self.instance(st, cur);
        if self.live_before(cur_inst, frameno, idx, spi) {
            return true;
        }
        for i in frameno..cur {
            let callsite = st.frames.get(i + 1).map_or(0, |f| f.callsite);
            let inst = self.instance(st, i);
            if self.live_before(inst, frameno, callsite + 1, spi) {
                return true;
            }
        }
        false
    }

    /// `bpf_reset_stack_write_marks`: instruction `idx` of `st` starts.
    pub fn begin(&mut self, st: &State, idx: usize) {
        let frame = st.frames.len() - 1;
        self.cur = Some(self.instance(st, frame));
        self.write_idx = idx;
        self.write_acc = [0; MAX_FRAMES];
        self.pending_reads.clear();
    }

    /// `bpf_mark_stack_read`: the current instruction may read these slots of `frame`; kept
    /// until the instruction has run ([`StackLive::commit`]), since a speculative path that
    /// fails there reads nothing ([`StackLive::abort`]).
    pub fn read(&mut self, frame: usize, mask: u64) {
        self.pending_reads.push((frame, mask));
    }

    /// The current instruction failed on a speculative path: its reads and writes are dropped.
    pub fn abort(&mut self) {
        self.pending_reads.clear();
        self.write_acc = [0; MAX_FRAMES];
        self.cur = None;
    }

    fn apply_read(&mut self, frame: usize, mask: u64) {
        let (Some(inst), idx) = (self.cur, self.write_idx) else {
            return;
        };
        let Some(m) = self.masks(inst, frame, idx) else {
            return;
        };
        let new = m.may_read | mask;
        let grows = new != m.may_read && (new | m.live_before) != m.live_before;
        m.may_read = new;
        if grows {
            self.instances[inst].updated = true;
        }
    }

    /// `bpf_mark_stack_write`: the current instruction writes these whole slots of `frame`.
    pub fn write(&mut self, frame: usize, mask: u64) {
        if let Some(acc) = self.write_acc.get_mut(frame) {
            *acc |= mask;
        }
    }

    /// `bpf_commit_stack_write_marks`: the current instruction ran.
    pub fn commit(&mut self) {
        // By index, keeping the buffer: this runs at every instruction.
        for k in 0..self.pending_reads.len() {
            let (frame, mask) = self.pending_reads[k];
            self.apply_read(frame, mask);
        }
        self.pending_reads.clear();
        let Some(inst) = self.cur else { return };
        let start = self.starts[self.instances[inst].subprog];
        let Some(rel) = self.write_idx.checked_sub(start) else {
            return;
        };
        if rel >= self.instances[inst].must_write_set.len() {
            return;
        }
        let frames = self.instances[inst].chain.len();
        let seen = self.instances[inst].must_write_set[rel];
        for frame in 0..frames {
            let mut mask = self.write_acc[frame];
            if mask == 0 && !seen {
                continue;
            }
            let idx = self.write_idx;
            let Some(m) = self.masks(inst, frame, idx) else {
                continue;
            };
            let old = m.must_write;
            if seen {
                mask &= old;
            }
            let changed = old != mask;
            if changed {
                m.must_write = mask;
            }
            let dropped = old & !mask != 0;
            if changed {
                self.instances[inst].updated = true;
            }
            if dropped {
                self.instances[inst].must_write_dropped = true;
            }
        }
        self.instances[inst].must_write_set[rel] = true;
    }

    /// `bpf_update_live_stack`: the fixed point for every updated instance of `st`'s call
    /// chain, innermost first; the level-2 log lines are appended to `log` when it is given
    /// (they are only formatted then: this runs at every path end).
    pub fn update(&mut self, insns: &[Insn], st: &State, mut log: Option<&mut String>) {
        self.cur = None;
        for frame in (0..st.frames.len()).rev() {
            let inst = self.instance(st, frame);
            if self.instances[inst].updated {
                self.update_instance(insns, inst, log.as_deref_mut());
                self.instances[inst].updated = false;
                self.instances[inst].must_write_dropped = false;
            }
        }
    }

    fn chain_text(&self, inst: usize) -> String {
        let parts: Vec<String> = self.instances[inst]
            .chain
            .iter()
            .map(ToString::to_string)
            .collect();
        format!("({})", parts.join(","))
    }

    fn update_instance(&mut self, insns: &[Insn], inst: usize, mut log: Option<&mut String>) {
        let sub = self.instances[inst].subprog;
        let start = self.starts[sub];
        let nframes = self.instances[inst].chain.len();
        if self.instances[inst].must_write_dropped {
            for f in self.instances[inst].frames.iter_mut().flatten() {
                for m in f.iter_mut() {
                    m.must_write_acc = 0;
                }
            }
        }
        // Borrowed out and put back below, rather than cloned at every path end.
        let order = std::mem::take(&mut self.postorder[sub]);
        let chain = if log.is_some() {
            self.chain_text(inst)
        } else {
            String::new()
        };
        let mut cnt = 0;
        loop {
            cnt += 1;
            let mut changed = false;
            for frame in 0..nframes {
                let Some(arr) = self.instances[inst].frames[frame].as_mut() else {
                    continue;
                };
                for &i in &order {
                    changed |= update_insn(
                        insns,
                        arr,
                        start,
                        frame,
                        i,
                        &chain,
                        self.prune_point.get(i).copied().unwrap_or(false),
                        log.as_deref_mut(),
                    );
                }
            }
            if !changed {
                break;
            }
        }
        self.postorder[sub] = order;
        if let Some(log) = log {
            let _ = writeln!(log, "{chain} live stack update done in {cnt} iterations");
        }
        if nframes > 1 {
            self.propagate_to_outer(inst, start);
        }
    }

    /// `propagate_to_outer_instance`: what the callee reads and surely writes of its callers'
    /// frames becomes a read and a write of its call instruction.
    fn propagate_to_outer(&mut self, inst: usize, start: usize) {
        let mut chain = self.instances[inst].chain.clone();
        chain.pop();
        let Some(callsite) = chain.pop() else { return };
        let nframes = chain.len() + 1;
        // The outer instance's chain: its call sites, then its subprogram's start.
        let Some(outer_sub) = self
            .starts
            .iter()
            .zip(&self.ends)
            .position(|(&s, &e)| (s..e).contains(&callsite))
        else {
            return;
        };
        chain.push(self.starts[outer_sub]);
        let outer = match self.instances.iter().position(|x| x.chain == chain) {
            Some(o) => o,
            None => {
                let len = self.ends[outer_sub] - self.starts[outer_sub];
                self.instances.push(Instance {
                    chain,
                    subprog: outer_sub,
                    updated: false,
                    must_write_dropped: false,
                    frames: vec![None; MAX_FRAMES],
                    must_write_set: vec![false; len],
                });
                self.instances.len() - 1
            }
        };
        let saved = (self.cur, self.write_idx, self.write_acc);
        self.cur = Some(outer);
        self.write_idx = callsite;
        self.write_acc = [0; MAX_FRAMES];
        for frame in 0..nframes - 1 {
            let Some(m) = self.instances[inst].frames[frame]
                .as_ref()
                .and_then(|a| a.first().copied())
            else {
                continue;
            };
            let _ = start;
            self.write(frame, m.must_write_acc);
            self.read(frame, m.live_before);
        }
        self.commit();
        (self.cur, self.write_idx, self.write_acc) = saved;
    }
}

/// `update_insn`: one step of the fixed point for instruction `i`.
#[expect(
    clippy::too_many_arguments,
    reason = "the kernel's update_insn state, flattened"
)]
fn update_insn(
    insns: &[Insn],
    arr: &mut [Masks],
    start: usize,
    frame: usize,
    i: usize,
    chain: &str,
    prune_point: bool,
    log: Option<&mut String>,
) -> bool {
    let (succ, n) = successors(insns, i);
    if n == 0 {
        return false;
    }
    let Some(rel) = i.checked_sub(start).filter(|&r| r < arr.len()) else {
        return false;
    };
    let mut after = 0u64;
    let mut acc = u64::MAX;
    for &s in &succ[..n] {
        let Some(m) = s.checked_sub(start).and_then(|r| arr.get(r)) else {
            continue;
        };
        after |= m.live_before;
        acc &= m.must_write_acc;
    }
    let m = arr[rel];
    acc |= m.must_write;
    let before = (after & !m.must_write) | m.may_read;
    let changed = before != m.live_before || acc != m.must_write_acc;
    if let Some(log) =
        log.filter(|_| m.may_read != 0 || m.must_write != 0 || i == start || prune_point)
    {
        log_change(log, chain, "live", frame, i, m.live_before, before);
        log_change(log, chain, "written", frame, i, m.must_write_acc, acc);
    }
    arr[rel].live_before = before;
    arr[rel].must_write_acc = acc;
    changed
}

/// `log_mask_change`.
fn log_change(
    log: &mut String,
    chain: &str,
    what: &str,
    frame: usize,
    i: usize,
    old: u64,
    new: u64,
) {
    let changed = old ^ new;
    if changed == 0 {
        return;
    }
    let _ = write!(log, "{chain} frame {frame} insn {i} ");
    let ones = new & changed;
    let zeros = !new & changed;
    if ones != 0 {
        let _ = write!(log, "+{what} {} ", Backtrack::slots_text(ones));
    }
    if zeros != 0 {
        let _ = write!(log, "-{what} {}", Backtrack::slots_text(zeros));
    }
    log.push('\n');
}
