//! The explorer (`do_check`, `is_state_visited`, `push_stack`/`pop_stack`): owns the worklist
//! of pending branches, the visited states used for pruning, the processed-instruction limit
//! and the log. It calls the transfer rules and nothing else decides a verdict.

use crate::cfg::Cfg;
use crate::insn_text::insn_text;
use crate::live;
use crate::log::Log;
use crate::precision::{self, Backtrack, HistEntry, Linked, Marks, Stop};
use crate::print::{current_state_text, marked_state_text, Scratch};
use crate::prune::states_equal_marked;
use crate::reject::{Errno, Reject};
use crate::rules::{self, Cx, Flow, Out};
use crate::state::{RegState, RegType, SlotType, State, MAX_FRAMES};
use bpfkit_isa::Op;

/// `BPF_COMPLEXITY_LIMIT_JMP_SEQ`: the most branches waiting to be explored.
const COMPLEXITY_LIMIT_JMP_SEQ: usize = 8192;
/// The kernel's limit on processed instructions (`BPF_COMPLEXITY_LIMIT_INSNS`).
pub const COMPLEXITY_LIMIT: u64 = 1_000_000;

/// Counters the statistics line reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Instructions processed over all paths (`insn_processed`).
    pub insns_processed: u64,
    /// Most states kept at one instruction (`max_states_per_insn`).
    pub max_states_per_insn: u32,
    /// States stored for pruning (`total_states`).
    pub total_states: u32,
    /// Most states stored at once (`peak_states`).
    pub peak_states: u32,
}

/// A stored state at a prune point (`struct bpf_verifier_state_list`).
struct Checkpoint {
    state: State,
    /// Paths still being explored from this state (`branches`).
    branches: u32,
    parent: Option<usize>,
    /// Times a new state was found within this one (`hit_cnt`).
    hits: u32,
    /// Times a comparison failed (`miss_cnt`).
    misses: u32,
    /// The first instruction of the path segment this state closed (`first_insn_idx`).
    first: usize,
    /// The instruction processed just before it (`last_insn_idx`).
    last: usize,
    /// The segment's history (`jmp_history`).
    hist: Vec<HistEntry>,
    /// Precision marks (`reg->precise`).
    marks: Marks,
    /// The instruction it was stored at.
    idx: usize,
    /// Dead registers and stack slots were cleared (`clean_verifier_state`).
    cleaned: bool,
    /// Dropped from its instruction's list (the kernel's free list): freed, and no longer
    /// counted in `peak_states`, once no path below it is left (`maybe_free_verifier_state`).
    evicted: bool,
}

/// A branch waiting to be explored (`struct bpf_verifier_stack_elem`).
struct Pending {
    state: State,
    idx: usize,
    prev: usize,
    parent: Option<usize>,
    log_pos: usize,
    first: usize,
    hist: Vec<HistEntry>,
}

/// What an instruction asks to be precise (`mark_chain_precision` call sites), and the
/// history it records.
#[derive(Default)]
struct Wants {
    /// A scalar added to a pointer (before the instruction runs).
    alu: Option<usize>,
    /// The compared registers of a conditional jump whose outcome is known.
    jmp_dst: Option<usize>,
    jmp_src: Option<usize>,
    /// Scalars linked to the compared ones.
    linked: Vec<Linked>,
    /// Helper arguments, in order.
    call: Vec<Want>,
    /// A spill or fill of this stack slot.
    stack: Option<(u8, u8)>,
    /// A zero register stored without a spill.
    zero_store: Option<usize>,
    /// R0 at the main program's exit where its range is checked (`check_return_code`).
    exit_r0: bool,
}

/// One precision request.
#[derive(Clone, Copy)]
enum Want {
    /// A register of the innermost frame.
    Reg(usize),
    /// A stack slot: frame, slot index.
    Slot(usize, usize),
}

/// `get_constant_map_key`: the stack slot holding a spilled constant key of `key_size` bytes,
/// when the key is one (a key of zero bytes, `STACK_ZERO`, needs no precision).
fn constant_key_spill(st: &State, key: &RegState, key_size: u32) -> Option<usize> {
    let off = i64::from(key.off) + key.var.const_value()? as i64;
    if !(-512..0).contains(&off) {
        return None;
    }
    let slot = (-off - 1) as usize;
    let s = st
        .frames
        .get(usize::from(key.frameno))?
        .stack
        .get(slot / 8)?;
    let k = slot % 8;
    let run = |t: SlotType| (0..=k).rev().take_while(|&i| s.bytes[i] == t).count() as u32;
    if run(SlotType::Zero) >= key_size {
        return None;
    }
    if s.bytes[7] != SlotType::Spill || s.spilled.ty != RegType::Scalar {
        return None;
    }
    if run(SlotType::Spill) != key_size {
        return None;
    }
    s.spilled.var.const_value()?;
    Some(slot / 8)
}

/// ` (speculative execution)` after `from N to M` for a speculative path.
fn speculative_text(st: &State) -> &'static str {
    if st.speculative {
        " (speculative execution)"
    } else {
        ""
    }
}

/// Explores every path of the program.
pub struct Explorer<'a> {
    cx: Cx<'a>,
    ops: &'a [Option<Op>],
    decode_errors: Vec<Option<Reject>>,
    lenient: Vec<Option<Op>>,
    live: Vec<u16>,
    precise: Vec<u16>,
    /// The log.
    pub log: Log,
    /// Counters.
    pub stats: Stats,
    /// Stack depth per subprogram.
    pub depth: Vec<usize>,
    /// Base pointer kind of each instruction's memory access.
    pub base: Vec<crate::rules::BaseKind>,
    /// Spectre v1 sanitation per instruction (unprivileged loads), see `rules::Out`.
    alu_sanitation: Vec<(u32, u32)>,
    checkpoints: Vec<Checkpoint>,
    explored: Vec<Vec<usize>>,
    id_gen: u32,
    /// States currently kept for pruning.
    live_states: u32,
    jmps_processed: u64,
    prev_jmps_processed: u64,
    prev_insn_processed: u64,
    jmp_point: Vec<bool>,
    /// Live stack slots, for the level-2 log.
    stack_live: crate::stack_live::StackLive,
    /// `insns_processed` when the last history entry was made (`cur_hist_ent`).
    hist_stamp: u64,
    /// First instruction of the current path segment (`first_insn_idx`).
    cur_first: usize,
    /// History of the current path segment.
    cur_hist: Vec<HistEntry>,
    /// Loop (SCC) number of every instruction, 0 outside loops.
    scc: Vec<u32>,
    /// Instructions a speculative path failed at: later speculative paths stop before them
    /// (`insn_aux_data[i].nospec`).
    nospec: Vec<bool>,
    /// Per loop call chain: the stored state that entered it, while paths below it remain
    /// (`struct bpf_scc_visit`'s `entry_state`).
    scc_entry: std::collections::HashMap<(Vec<usize>, u32), usize>,
}

impl<'a> Explorer<'a> {
    /// An explorer over decoded instructions `ops` (one per slot).
    #[must_use]
    pub fn new(
        cx: Cx<'a>,
        ops: &'a [Option<Op>],
        log: Log,
        decode_errors: Vec<Option<Reject>>,
        lenient: Vec<Option<Op>>,
    ) -> Explorer<'a> {
        let live = live::live_in_as(cx.insns, ops, cx.env, cx.prog_type, cx.privilege);
        let cfg = cx.cfg;
        let in_subprog = |i: usize| cfg.subprog_of(i) != 0;
        let maybe_ptr = live::maybe_pointer_in(cx.insns, ops, cx.env, cx.prog_type, &cfg.subprogs);
        let precise =
            live::precise_in(cx.insns, ops, cx.env, cx.prog_type, &in_subprog, &maybe_ptr);
        let n = cx.insns.len();
        let jmp_point = precision::jmp_points(cx.insns);
        let stack_live =
            crate::stack_live::StackLive::new(cx.insns, &cx.cfg.subprogs, &cx.cfg.prune_point);
        let nsub = cx.cfg.subprogs.len();
        let scc = crate::scc::compute(cx.insns);
        Explorer {
            cx,
            ops,
            decode_errors,
            lenient,
            live,
            precise,
            log,
            stats: Stats::default(),
            depth: vec![0; nsub],
            base: vec![crate::rules::BaseKind::None; n],
            alu_sanitation: Vec::new(),
            checkpoints: Vec::new(),
            explored: (0..n).map(|_| Vec::new()).collect(),
            id_gen: 0,
            live_states: 0,
            jmps_processed: 0,
            prev_jmps_processed: 0,
            prev_insn_processed: 0,
            jmp_point,
            stack_live,
            hist_stamp: u64::MAX,
            cur_first: 0,
            cur_hist: Vec::new(),
            scc,
            nospec: vec![false; n],
            scc_entry: std::collections::HashMap::new(),
        }
    }

    /// `compute_scc_callchain`: the call sites down to the first frame inside a loop, and that
    /// loop's number; `None` when no frame is inside one.
    fn scc_callchain(&self, st: &State, idx: usize) -> Option<(Vec<usize>, u32)> {
        let cur = st.frames.len() - 1;
        let mut sites = Vec::new();
        for i in 0..=cur {
            let at = if i == cur {
                idx
            } else {
                st.frames[i + 1].callsite
            };
            let scc = self.scc.get(at).copied().unwrap_or(0);
            if scc != 0 {
                return Some((sites, scc));
            }
            sites.push(at);
        }
        None
    }

    /// `format_callchain`: `(N)`, or `(site,...,N)` from inside calls.
    fn callchain_text(chain: &(Vec<usize>, u32)) -> String {
        let mut s = String::from("(");
        for site in &chain.0 {
            s.push_str(&format!("{site},"));
        }
        s.push_str(&format!("{})", chain.1));
        s
    }

    /// `maybe_enter_scc`: stored state `c` is the first inside its loop on this path.
    fn enter_scc(&mut self, c: usize) {
        let ck = &self.checkpoints[c];
        let Some(chain) = self.scc_callchain(&ck.state, ck.idx) else {
            return;
        };
        if self.scc_entry.contains_key(&chain) {
            return;
        }
        if self.log.level2() {
            self.log
                .push(&format!("SCC enter {}\n", Self::callchain_text(&chain)));
        }
        self.scc_entry.insert(chain, c);
    }

    /// `maybe_exit_scc`: every path below stored state `c` is done; if it entered its loop,
    /// the loop is left.
    fn exit_scc(&mut self, c: usize) {
        let ck = &self.checkpoints[c];
        let Some(chain) = self.scc_callchain(&ck.state, ck.idx) else {
            return;
        };
        if self.scc_entry.get(&chain) != Some(&c) {
            return;
        }
        if self.log.level2() {
            self.log
                .push(&format!("SCC exit {}\n", Self::callchain_text(&chain)));
        }
        self.scc_entry.remove(&chain);
    }

    /// The static liveness table at log level 2 (`Live regs before insn:`).
    pub fn print_liveness(&mut self) {
        let helper = |id| self.cx.env.helper_name(id);
        let leaks = self.cx.privilege.allow_ptr_leaks();
        let mut s = String::from("Live regs before insn:\n");
        for (i, op) in self.ops.iter().enumerate() {
            if op.is_some() {
                // The loop number, when the instruction is in one.
                match self.scc.get(i).copied().unwrap_or(0) {
                    0 => s.push_str("    "),
                    n => s.push_str(&format!("{n:>3} ")),
                }
                s.push_str(&format!(
                    "{i:>3}: {} {}\n",
                    live::mask_text(self.live[i]),
                    insn_text(self.cx.insns, i, &helper, leaks)
                ));
            }
        }
        self.log.push(&s);
    }

    /// The current state's text: every scalar marked precise in an unprivileged load.
    fn state_text(&self, st: &State, scratch: Scratch) -> String {
        let all = (!self.cx.privilege.bpf_capable()).then(|| Marks::all(st.frames.len()));
        current_state_text(st, scratch, all.as_ref())
    }

    /// A new stored state's precision marks: none in a privileged load (the kernel clears
    /// them, `mark_all_scalars_imprecise`), all in an unprivileged one.
    fn new_marks(&self, frames: usize) -> Marks {
        if self.cx.privilege.bpf_capable() {
            Marks::new(frames)
        } else {
            Marks::all(frames)
        }
    }

    fn cfg(&self) -> &Cfg {
        self.cx.cfg
    }

    /// `clean_verifier_state` of stored state `c` once every path below it is done (and it
    /// has the call sites of `cur`): registers dead before its instruction (before the call,
    /// in a caller's frame) and stack slots no path may read become unset.
    fn clean(&mut self, c: usize, cur: &State) {
        let ck = &self.checkpoints[c];
        if ck.cleaned || ck.branches > 0 || ck.state.frames.len() != cur.frames.len() {
            return;
        }
        if ck
            .state
            .frames
            .iter()
            .zip(&cur.frames)
            .any(|(a, b)| a.callsite != b.callsite)
        {
            return;
        }
        if ck.state.frames.len() > MAX_FRAMES {
            // Unreachable (calls nest at most MAX_FRAMES deep); left uncleaned, which only
            // prunes less.
            return;
        }
        let idx = ck.idx;
        // Decide every slot first against the state as stored (only its call chain matters to
        // `slot_alive`), then clean in place: no copy of the state.
        let old = &self.checkpoints[c].state;
        let mut dead: [u64; MAX_FRAMES] = [0; MAX_FRAMES];
        for (i, frame) in old.frames.iter().enumerate() {
            for spi in 0..frame.stack.len().min(64) {
                if !self.stack_live.slot_alive(old, idx, i, spi) {
                    dead[i] |= 1 << spi;
                }
            }
        }
        let mut callsites: [usize; MAX_FRAMES] = [0; MAX_FRAMES];
        for (i, f) in old.frames.iter().enumerate().take(MAX_FRAMES) {
            callsites[i] = f.callsite;
        }
        let ck = &mut self.checkpoints[c];
        let top = ck.state.frames.len() - 1;
        for (i, frame) in ck.state.frames.iter_mut().enumerate() {
            let ip = if i == top { idx } else { callsites[i + 1] };
            let live = self.live.get(ip).copied().unwrap_or(u16::MAX);
            for (r, reg) in frame.regs.iter_mut().enumerate().take(10) {
                if live & (1 << r) == 0 {
                    *reg = RegState::NOT_INIT;
                }
            }
            for (spi, slot) in frame.stack.iter_mut().enumerate() {
                if spi >= 64 || dead[i] & (1 << spi) != 0 {
                    slot.bytes = [SlotType::Invalid; 8];
                    slot.spilled = RegState::NOT_INIT;
                }
            }
        }
        ck.cleaned = true;
    }

    /// `bpf_update_live_stack` at a path end; its change lines are formatted only at log level 2.
    fn live_update(&mut self, st: &State) {
        if self.log.level2() {
            let mut text = String::new();
            self.stack_live.update(self.cx.insns, st, Some(&mut text));
            if !text.is_empty() {
                self.log.push(&text);
            }
        } else {
            self.stack_live.update(self.cx.insns, st, None);
        }
    }

    /// `update_branch_counts`: a path from `parent` finished.
    fn path_done(&mut self, mut parent: Option<usize>) {
        while let Some(p) = parent {
            let ck = &mut self.checkpoints[p];
            if ck.branches == 0 {
                break;
            }
            ck.branches -= 1;
            if ck.branches > 0 {
                break;
            }
            if ck.evicted {
                self.live_states -= 1;
            }
            let up = ck.parent;
            self.exit_scc(p);
            parent = up;
        }
    }

    /// `is_state_visited`: `Ok(true)` when the state is pruned.
    fn visit(
        &mut self,
        st: &State,
        idx: usize,
        prev: usize,
        parent: &mut Option<usize>,
    ) -> Result<bool, Reject> {
        let live = self.live[idx];
        let precise = self.precise[idx];
        // `force_new_state`: a checkpoint is forced at `may_goto` (`mark_force_checkpoint`) and
        // by a long jump history.
        let force_checkpoint = matches!(self.ops.get(idx), Some(Some(Op::MayGoto { .. })));
        let force = force_checkpoint || self.cur_hist.len() > 40;
        let mut add = force
            || (self.jmps_processed - self.prev_jmps_processed >= 2
                && self.stats.insns_processed - self.prev_insn_processed >= 8);
        let mut evict = Vec::new();
        let mut hit = None;
        let mut states_cnt = 0u32;
        let all = (!self.cx.privilege.bpf_capable()).then(|| Marks::all(st.frames.len()));
        // `clean_live_states`: finished states here forget what no path reads any more.
        for k in 0..self.explored[idx].len() {
            let c = self.explored[idx][k];
            self.clean(c, st);
        }
        // The kernel's list has the newest state first.
        for (k, &c) in self.explored[idx].iter().enumerate().rev() {
            states_cnt += 1;
            let ck = &mut self.checkpoints[c];
            if ck.branches > 0 {
                if ck.state == *st {
                    return Err(Reject::new(
                        Errno::EINVAL,
                        idx,
                        format!(
                            "infinite loop detected at insn {idx}\ncur state:{}\nold state:{}",
                            current_state_text(st, Scratch::ALL, all.as_ref()),
                            marked_state_text(&ck.state, ck.state.frames.len() - 1, &ck.marks)
                        ),
                    ));
                }
                // Inside a loop, states are added less often: different iterations rarely
                // match each other.
                if !force
                    && self.jmps_processed - self.prev_jmps_processed < 20
                    && self.stats.insns_processed - self.prev_insn_processed < 100
                {
                    add = false;
                }
            } else if rules::unpriv::may_prune(&self.cx, &self.alu_sanitation, &ck.state, st, live)
                && states_equal_marked(&ck.state, st, live, precise, Some(&ck.marks))
            {
                ck.hits += 1;
                hit = Some(c);
                break;
            }
            // Misses count only while a state would be added, so that loop iterations do not
            // evict the states recorded earlier; a state that keeps missing is dropped (the
            // kernel's miss_cnt heuristic), which keeps the comparisons per instruction few.
            if add {
                ck.misses += 1;
            }
            let n = if force_checkpoint && ck.branches > 0 {
                64
            } else {
                3
            };
            if ck.misses > ck.hits * n + n {
                evict.push(k);
            }
        }
        // `evict` holds positions in descending order: removing them in that order keeps the
        // others in place. An evicted state still counts (on the free list) until no path
        // below it is left to explore.
        for k in evict {
            let c = self.explored[idx].remove(k);
            self.checkpoints[c].evicted = true;
            if self.checkpoints[c].branches == 0 {
                self.live_states -= 1;
            }
        }
        if let Some(c) = hit {
            self.note_jmp_point(idx, prev);
            self.propagate_precision(c, idx, *parent);
            return Ok(true);
        }
        // Counted only when not pruned, over the states compared (`states_cnt`).
        self.stats.max_states_per_insn = self.stats.max_states_per_insn.max(states_cnt);
        if add {
            self.prev_jmps_processed = self.jmps_processed;
            self.prev_insn_processed = self.stats.insns_processed;
            let id = self.checkpoints.len();
            self.checkpoints.push(Checkpoint {
                state: st.clone(),
                branches: 1,
                parent: *parent,
                hits: 0,
                misses: 0,
                first: self.cur_first,
                last: prev,
                hist: std::mem::take(&mut self.cur_hist),
                marks: self.new_marks(st.frames.len()),
                idx,
                cleaned: false,
                evicted: false,
            });
            self.enter_scc(id);
            self.cur_first = idx;
            *parent = Some(id);
            self.explored[idx].push(id);
            self.stats.total_states += 1;
            self.live_states += 1;
            self.stats.peak_states = self.stats.peak_states.max(self.live_states);
        }
        Ok(false)
    }

    /// Runs the exploration from the entry state.
    ///
    /// # Errors
    /// The first rejection on any path.
    pub fn run(&mut self) -> Result<(), Reject> {
        let mut st = State::entry();
        let mut idx = 0usize;
        let mut prev = 0usize;
        let mut parent: Option<usize> = None;
        let mut stack: Vec<Pending> = Vec::new();
        let mut scratch = Scratch::ALL;
        let mut resumed = false;
        let level2 = self.log.level2();
        let log_on = self.log.on();
        loop {
            self.stats.insns_processed += 1;
            if self.stats.insns_processed > COMPLEXITY_LIMIT {
                return Err(Reject::new(
                    Errno::E2BIG,
                    idx,
                    format!(
                        "BPF program is too large. Processed {} insn",
                        self.stats.insns_processed
                    ),
                ));
            }
            let mut ended = false;
            let pruned = if self.cfg().prune_point.get(idx).copied().unwrap_or(false) {
                // An error here comes before the previous instruction's state is printed
                // (`do_check` prints it after `is_state_visited`).
                self.visit(&st, idx, prev, &mut parent)?
            } else {
                false
            };
            if !pruned {
                self.note_jmp_point(idx, prev);
            }
            // A speculative path stops before an instruction another one failed at.
            let pruned = pruned || (st.speculative && self.nospec.get(idx).copied() == Some(true));
            if pruned && !(st.speculative && self.nospec.get(idx).copied() == Some(true)) {
                if log_on {
                    if resumed && level2 {
                        self.log.push(&format!(
                            "\nfrom {prev} to {idx}{}: safe\n",
                            speculative_text(&st)
                        ));
                    } else {
                        self.log.push(&format!("{idx}: safe\n"));
                    }
                }
                ended = true;
            }
            if pruned {
                ended = true;
            }
            if !ended {
                let Some(op) = self.ops.get(idx).copied().flatten() else {
                    if log_on {
                        if scratch.any() {
                            self.log.insn_state(idx, &self.state_text(&st, scratch));
                        }
                        if self.lenient.get(idx).copied().flatten().is_some() {
                            let helper = |id| self.cx.env.helper_name(id);
                            let leaks = self.cx.privilege.allow_ptr_leaks();
                            let text = insn_text(self.cx.insns, idx, &helper, leaks);
                            self.log.insn(idx, &text);
                        }
                    }
                    return Err(self
                        .decode_errors
                        .get_mut(idx)
                        .and_then(Option::take)
                        .unwrap_or_else(|| {
                            Reject::new(Errno::EINVAL, idx, format!("invalid insn idx {idx}"))
                        }));
                };
                if log_on {
                    if resumed && level2 {
                        self.log.push(&format!(
                            "\nfrom {prev} to {idx}{}:{}\n",
                            speculative_text(&st),
                            self.state_text(&st, Scratch::ALL)
                        ));
                    }
                    if scratch.any() {
                        self.log.insn_state(idx, &self.state_text(&st, scratch));
                    }
                    let helper = |id| self.cx.env.helper_name(id);
                    let leaks = self.cx.privilege.allow_ptr_leaks();
                    let text = insn_text(self.cx.insns, idx, &helper, leaks);
                    self.log.insn(idx, &text);
                }
                resumed = false;
                scratch = Scratch::default();
                if matches!(
                    op,
                    Op::Ja { .. } | Op::Jcond { .. } | Op::Call(_) | Op::Exit
                ) {
                    self.jmps_processed += 1;
                }
                let callee_text = if log_on && matches!(op, Op::Exit) && st.frames.len() > 1 {
                    self.state_text(&st, Scratch::ALL)
                } else {
                    String::new()
                };
                let wants = self.precision_wants(&st, idx);
                let callee_exit =
                    (matches!(op, Op::Exit) && st.frames.len() > 1).then(|| st.clone());
                // Stack liveness runs at every level: pruning cleans dead slots with it.
                self.stack_live.begin(&st, idx);
                self.note_stack_use(&st, idx);
                if let Some(r) = wants.alu {
                    self.mark_reg(&st, idx, parent, r);
                }
                if wants.exit_r0 {
                    self.mark_reg(&st, idx, parent, 0);
                }
                let alu_sim = self.speculative_alu(&st, &op);
                let stepped = {
                    let mut out = Out {
                        scratch: &mut scratch,
                        id_gen: &mut self.id_gen,
                        depth: &mut self.depth,
                        base: &mut self.base,
                        alu_sanitation: &mut self.alu_sanitation,
                    };
                    rules::step(&self.cx, &mut st, idx, &op, &mut out)
                };
                let flow = match stepped {
                    Ok(f) => f,
                    // On a speculative path the error ends the path only; the instruction is
                    // kept from later speculative paths (`error_recoverable_with_nospec`).
                    Err(e)
                        if st.speculative
                            && matches!(e.errno, Errno::EPERM | Errno::EACCES | Errno::EINVAL) =>
                    {
                        if log_on {
                            self.log.push(&format!("{}\n", e.message));
                        }
                        if let Some(n) = self.nospec.get_mut(idx) {
                            *n = true;
                        }
                        self.stack_live.abort();
                        if !self.end_path(&mut st, &mut stack, &mut idx, &mut prev, &mut parent) {
                            return Ok(());
                        }
                        scratch = Scratch::ALL;
                        resumed = true;
                        continue;
                    }
                    Err(e) => {
                        // The map/helper compatibility check runs after every argument was
                        // checked, and with them the precision of constant sizes and keys.
                        if e.message.starts_with("cannot pass map_type") {
                            for want in &wants.call {
                                let mut bt = Backtrack::new(st.frames.len() - 1);
                                match *want {
                                    Want::Reg(r) => bt.set_reg(r),
                                    Want::Slot(fr, spi) => bt.set_slot(fr, spi),
                                }
                                self.mark_chain(st.frames.len(), idx, parent, bt);
                            }
                        }
                        return Err(e);
                    }
                };
                if let Some(sim) = alu_sim {
                    // `sanitize_ptr_alu`: the CPU may compute the pointer without its offset.
                    self.push_pending(&mut stack, sim, idx + 1, idx, parent);
                }
                self.stack_live.commit();
                self.after_step(&st, idx, prev, parent, &wants, &flow);
                // A conditional jump that goes one way prints its state at once, after the
                // precision walk (`check_cond_jmp_op` calls `print_insn_state`).
                let one_way = match &flow {
                    Flow::Jump(_) | Flow::Next => true,
                    Flow::Branch { fall, taken, .. } => *fall != taken.is_some(),
                    _ => false,
                };
                if let (true, Op::Jcond { dst, src, off, .. }) = (one_way, op) {
                    if !self.cx.privilege.bpf_capable() {
                        // `sanitize_speculative_path`: the CPU may go the other way.
                        let target = (idx as i64 + 1 + i64::from(off)) as usize;
                        let other_way = match &flow {
                            Flow::Jump(_) | Flow::Branch { fall: false, .. } => idx + 1,
                            _ => target,
                        };
                        let mut sim = st.clone();
                        sim.speculative = true;
                        let regs = &mut sim.cur_mut().regs;
                        regs[dst.index()] = RegState::unknown();
                        if let bpfkit_isa::Operand::Reg(r) = src {
                            regs[r.index()] = RegState::unknown();
                        }
                        self.push_pending(&mut stack, sim, other_way, idx, parent);
                    }
                }
                if log_on && one_way && matches!(op, Op::Jcond { .. }) {
                    self.log.insn_state(idx, &self.state_text(&st, scratch));
                    scratch = Scratch::default();
                }
                if let Some(callee) = &callee_exit {
                    self.live_update(callee);
                }
                prev = idx;
                match flow {
                    Flow::Next => idx += op.slots(),
                    Flow::Jump(t) => idx = t,
                    Flow::Branch {
                        fall,
                        taken,
                        target,
                    } => match (fall, taken) {
                        (true, Some(other)) if matches!(op, Op::MayGoto { .. }) => {
                            // `may_goto` follows the jump and queues the fall-through (with
                            // one more level of loop budget spent).
                            if let Some(p) = parent {
                                self.checkpoints[p].branches += 1;
                            }
                            stack.push(Pending {
                                state: std::mem::replace(&mut st, *other),
                                idx: idx + 1,
                                prev: idx,
                                parent,
                                log_pos: self.log.pos(),
                                first: self.cur_first,
                                hist: self.cur_hist.clone(),
                            });
                            idx = target;
                        }
                        (true, Some(other)) => {
                            if let Some(p) = parent {
                                self.checkpoints[p].branches += 1;
                            }
                            stack.push(Pending {
                                state: *other,
                                idx: target,
                                prev: idx,
                                parent,
                                log_pos: self.log.pos(),
                                first: self.cur_first,
                                hist: self.cur_hist.clone(),
                            });
                            // `push_stack`: too many pending branches is an error
                            // (BPF_COMPLEXITY_LIMIT_JMP_SEQ), EFAULT from the jump.
                            if stack.len() > COMPLEXITY_LIMIT_JMP_SEQ {
                                return Err(Reject::new(
                                    Errno::EFAULT,
                                    idx,
                                    format!(
                                        "The sequence of {} jumps is too complex.",
                                        stack.len()
                                    ),
                                ));
                            }
                            idx += 1;
                        }
                        (true, None) => idx += 1,
                        (false, Some(other)) => {
                            st = *other;
                            idx = target;
                        }
                        (false, None) => ended = true,
                    },
                    Flow::Call(t) => {
                        if log_on {
                            let callee = st.frames.len() - 1;
                            let mut caller_view = st.clone();
                            caller_view.frames.truncate(callee);
                            let text = format!(
                                "caller:\n{}\ncallee:\n{}\n",
                                self.state_text(&caller_view, Scratch::ALL),
                                self.state_text(&st, Scratch::ALL)
                            );
                            self.log.push(&text);
                            scratch = Scratch::ALL;
                        }
                        idx = t;
                    }
                    Flow::Return(t) => {
                        if log_on {
                            let text = format!(
                                "returning from callee:\n{callee_text}\nto caller at {t}:\n{}\n",
                                self.state_text(&st, Scratch::ALL)
                            );
                            self.log.push(&text);
                        }
                        // The caller resumes like a popped branch (`do_print_state`).
                        resumed = true;
                        idx = t;
                    }
                    Flow::Exit => ended = true,
                }
            }
            if ended {
                if !self.end_path(&mut st, &mut stack, &mut idx, &mut prev, &mut parent) {
                    return Ok(());
                }
                scratch = Scratch::ALL;
                resumed = true;
            }
        }
    }

    /// A path ended (`process_bpf_exit`): branch counts and stack liveness are updated and the
    /// next pending branch becomes the current path. `false` when none is left.
    fn end_path(
        &mut self,
        st: &mut State,
        stack: &mut Vec<Pending>,
        idx: &mut usize,
        prev: &mut usize,
        parent: &mut Option<usize>,
    ) -> bool {
        self.path_done(*parent);
        self.live_update(st);
        let Some(p) = stack.pop() else {
            return false;
        };
        if self.log.on() && !self.log.level2() {
            // Level 1 keeps only the path to the error: rewind to the branch.
            self.log.reset(p.log_pos.saturating_sub(1));
            self.log.push(" ");
        }
        *st = p.state;
        *idx = p.idx;
        *prev = p.prev;
        *parent = p.parent;
        self.cur_first = p.first;
        self.cur_hist = p.hist;
        true
    }

    /// `push_stack`: a branch to explore later, from instruction `from` to `to`.
    fn push_pending(
        &mut self,
        stack: &mut Vec<Pending>,
        state: State,
        to: usize,
        from: usize,
        parent: Option<usize>,
    ) {
        if let Some(p) = parent {
            self.checkpoints[p].branches += 1;
        }
        stack.push(Pending {
            state,
            idx: to,
            prev: from,
            parent,
            log_pos: self.log.pos(),
            first: self.cur_first,
            hist: self.cur_hist.clone(),
        });
    }

    /// `sanitize_ptr_alu` of an unprivileged load: pointer arithmetic with an offset register
    /// that is not a constant queues a speculative path at the next instruction from the state
    /// before it, where the destination holds the pointer unchanged.
    fn speculative_alu(&self, st: &State, op: &Op) -> Option<State> {
        use bpfkit_isa::{AluOp, Operand, Width};
        if self.cx.privilege.bpf_capable() {
            return None;
        }
        let Op::Alu {
            width: Width::W64,
            op: AluOp::Add | AluOp::Sub,
            dst,
            src: Operand::Reg(src),
        } = *op
        else {
            return None;
        };
        let regs = &st.cur().regs;
        let (d, s) = (regs[dst.index()], regs[src.index()]);
        let (ptr, off) = match (d.ty, s.ty) {
            (RegType::Scalar, t) if t.is_pointer() => (s, d),
            (t, RegType::Scalar) if t.is_pointer() => (d, s),
            _ => return None,
        };
        if off.var.const_value().is_some() {
            return None;
        }
        let mut sim = st.clone();
        sim.speculative = true;
        sim.cur_mut().regs[dst.index()] = ptr;
        Some(sim)
    }

    /// Records a step in the current path's history (`push_insn_history`): entries made
    /// while processing one instruction are merged into one.
    fn push_hist(&mut self, idx: usize, prev: usize, stack: Option<(u8, u8)>, linked: Vec<Linked>) {
        let stamp = self.stats.insns_processed;
        if self.hist_stamp == stamp {
            if let Some(last) = self.cur_hist.last_mut() {
                if last.idx == idx {
                    if stack.is_some() {
                        last.stack = stack;
                    }
                    if !linked.is_empty() {
                        last.linked = linked;
                    }
                    return;
                }
            }
        }
        self.hist_stamp = stamp;
        self.cur_hist.push(HistEntry {
            idx,
            prev,
            stack,
            linked,
        });
    }

    /// A path arriving at a jump point records where it came from.
    fn note_jmp_point(&mut self, idx: usize, prev: usize) {
        if self.jmp_point.get(idx).copied().unwrap_or(false) {
            self.push_hist(idx, prev, None, Vec::new());
        }
    }

    /// What instruction `idx` will ask to be precise, read from the state before it runs.
    fn precision_wants(&self, st: &State, idx: usize) -> Wants {
        use bpfkit_isa::opcode as c;
        let mut w = Wants::default();
        let Some(insn) = self.cx.insns.get(idx).copied() else {
            return w;
        };
        let frame = st.cur();
        let reg = |r: u8| frame.regs.get(usize::from(r)).copied();
        let class = c::class(insn.code);
        let op = insn.code & 0xf0;
        let is_x = c::source(insn.code) == c::X;
        match class {
            c::ALU | c::ALU64 if is_x && !matches!(op, c::MOV | c::NEG | c::END) => {
                // `adjust_reg_min_max_vals`: the scalar added to a pointer must be exact.
                if let (Some(d), Some(s)) = (reg(insn.dst), reg(insn.src)) {
                    if d.ty != RegType::NotInit && s.ty != RegType::NotInit {
                        if s.ty != RegType::Scalar && d.ty == RegType::Scalar {
                            w.alu = Some(usize::from(insn.dst));
                        } else if d.ty != RegType::Scalar && s.ty == RegType::Scalar {
                            w.alu = Some(usize::from(insn.src));
                        }
                    }
                }
            }
            c::JMP | c::JMP32 if !matches!(op, c::JA | c::CALL | c::EXIT) => {
                let d = reg(insn.dst);
                if d.is_some_and(|d| d.ty == RegType::Scalar) {
                    w.jmp_dst = Some(usize::from(insn.dst));
                }
                let s = if is_x { reg(insn.src) } else { None };
                if s.is_some_and(|s| s.ty == RegType::Scalar) {
                    w.jmp_src = Some(usize::from(insn.src));
                }
                // `collect_linked_regs`: scalars sharing the compared registers' ids.
                let mut ids = Vec::new();
                if let Some(s) = s.filter(|s| s.ty == RegType::Scalar && s.id != 0) {
                    ids.push(s.id);
                }
                if let Some(d) = d.filter(|d| d.ty == RegType::Scalar && d.id != 0) {
                    ids.push(d.id);
                }
                for id in ids {
                    for (fi, f) in st.frames.iter().enumerate().rev() {
                        for (r, x) in f.regs.iter().enumerate().take(10) {
                            if x.ty == RegType::Scalar && x.id == id {
                                w.linked.push(Linked {
                                    frame: fi as u8,
                                    index: r as u8,
                                    is_reg: true,
                                });
                            }
                        }
                        for (spi, slot) in f.stack.iter().enumerate() {
                            let x = &slot.spilled;
                            if slot.bytes[7] == SlotType::Spill
                                && x.ty == RegType::Scalar
                                && x.id == id
                            {
                                w.linked.push(Linked {
                                    frame: fi as u8,
                                    index: spi as u8,
                                    is_reg: false,
                                });
                            }
                        }
                    }
                }
            }
            c::JMP if op == c::CALL && insn.src == 0 => self.call_wants(st, insn.imm, &mut w),
            c::JMP if op == c::EXIT => {
                // A leaked reference is reported first (`check_resource_leak`).
                w.exit_r0 = st.frames.len() == 1
                    && st.refs.is_empty()
                    && reg(0).is_some_and(|r| r.ty == RegType::Scalar)
                    && rules::return_code::exit_range(
                        self.cx.prog_type,
                        self.cx.expected_attach_type,
                    )
                    .is_some();
            }
            c::LDX | c::STX | c::ST => {
                let base = if class == c::LDX { insn.src } else { insn.dst };
                let Some(b) = reg(base).filter(|b| b.ty == RegType::Stack) else {
                    return w;
                };
                let Some(v) = b.var.const_value() else {
                    return w;
                };
                let off = i64::from(b.off) + v as i64 + i64::from(insn.off);
                if !(-512..0).contains(&off) {
                    return w;
                }
                let spi = ((-off - 1) / 8) as u8;
                let fr = b.frameno;
                let aligned = off % 8 == 0;
                let atomic = c::mode(insn.code) == c::ATOMIC;
                match class {
                    c::LDX => {
                        let spilled = st
                            .frames
                            .get(usize::from(fr))
                            .and_then(|f| f.stack.get(usize::from(spi)))
                            .is_some_and(|s| s.bytes[7] == SlotType::Spill);
                        if spilled {
                            w.stack = Some((fr, spi));
                        }
                    }
                    c::ST if aligned => w.stack = Some((fr, spi)),
                    c::STX if !atomic => {
                        let v = reg(insn.src).unwrap_or(RegState::NOT_INIT);
                        if aligned && v.ty != RegType::NotInit {
                            w.stack = Some((fr, spi));
                        } else if v.is_null() {
                            // A zero written without a spill: the slot reads as STACK_ZERO.
                            w.zero_store = Some(usize::from(insn.src));
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        w
    }

    /// `check_func_arg` and `record_func_key`: helper arguments whose value must be exact.
    fn call_wants(&self, st: &State, id: i32, w: &mut Wants) {
        use crate::env::ArgType;
        let Some(proto) = self.cx.env.helper(self.cx.prog_type, id) else {
            return;
        };
        let frame = st.cur();
        for (i, arg) in proto.args.iter().enumerate() {
            let r = i + 1;
            let reg = frame.regs[r];
            match arg {
                ArgType::ConstSize | ArgType::ConstSizeOrZero | ArgType::ConstAllocSizeOrZero
                    if reg.ty == RegType::Scalar =>
                {
                    w.call.push(Want::Reg(r));
                }
                ArgType::PtrToMapKey => {
                    const ARRAY: u32 = 2;
                    const PERCPU_ARRAY: u32 = 6;
                    let Some(map) = frame.regs[1]
                        .map
                        .filter(|_| frame.regs[1].ty == RegType::MapPtr)
                    else {
                        continue;
                    };
                    if !matches!(map.type_id, ARRAY | PERCPU_ARRAY) || reg.ty != RegType::Stack {
                        continue;
                    }
                    if let Some(spi) = constant_key_spill(st, &reg, map.key_size) {
                        w.call.push(Want::Slot(usize::from(reg.frameno), spi));
                    }
                }
                _ => {}
            }
        }
        const TAIL_CALL: i32 = 12;
        if id == TAIL_CALL {
            let key = frame.regs[3];
            let max = frame.regs[2].map.map_or(0, |m| m.max_entries);
            if key.ty == RegType::Scalar
                && key.var.const_value().is_some_and(|v| v < u64::from(max))
            {
                w.call.push(Want::Reg(3));
            }
        }
    }

    /// The marks an instruction asks for once it has run.
    fn after_step(
        &mut self,
        st: &State,
        idx: usize,
        prev: usize,
        parent: Option<usize>,
        wants: &Wants,
        flow: &Flow,
    ) {
        if let Some((fr, spi)) = wants.stack {
            self.push_hist(idx, prev, Some((fr, spi)), Vec::new());
        }
        if let Some(r) = wants.zero_store {
            self.mark_reg(st, idx, parent, r);
        }
        let conditional = self
            .ops
            .get(idx)
            .copied()
            .flatten()
            .is_some_and(|op| matches!(op, Op::Jcond { .. }));
        // A conditional jump whose outcome the values decide (`is_branch_taken`): one path
        // only, which the compared scalars must keep exact.
        let decided = match flow {
            Flow::Branch { fall, taken, .. } => {
                if *fall && taken.is_some() && wants.linked.len() > 1 {
                    self.push_hist(idx, prev, None, wants.linked.clone());
                }
                *fall != taken.is_some()
            }
            Flow::Jump(_) | Flow::Next => conditional,
            _ => false,
        };
        if decided {
            if let Some(r) = wants.jmp_dst {
                self.mark_reg(st, idx, parent, r);
            }
            if let Some(r) = wants.jmp_src {
                self.mark_reg(st, idx, parent, r);
            }
        }
        if matches!(flow, Flow::Next) {
            for want in &wants.call {
                let mut bt = Backtrack::new(st.frames.len() - 1);
                match *want {
                    Want::Reg(r) => bt.set_reg(r),
                    Want::Slot(fr, spi) => bt.set_slot(fr, spi),
                }
                self.mark_chain(st.frames.len(), idx, parent, bt);
            }
        }
    }

    /// `mark_chain_precision` of register `r` of the innermost frame.
    fn mark_reg(&mut self, st: &State, idx: usize, parent: Option<usize>, r: usize) {
        let mut bt = Backtrack::new(st.frames.len() - 1);
        bt.set_reg(r);
        self.mark_chain(st.frames.len(), idx, parent, bt);
    }

    /// `propagate_precision`: a path pruned against a stored state inherits that state's
    /// precise scalars.
    fn propagate_precision(&mut self, c: usize, idx: usize, parent: Option<usize>) {
        let ck = &self.checkpoints[c];
        let frames = ck.state.frames.len();
        let mut bt = Backtrack::new(frames - 1);
        let mut text = String::new();
        // The stored state was cleaned (`clean_live_states`): registers of its innermost
        // frame dead at `idx` are no longer scalars there.
        let live = self.live[idx];
        for fr in (0..frames).rev() {
            let marks = &ck.marks;
            let Some(f) = ck.state.frames.get(fr) else {
                continue;
            };
            let mut first = true;
            for r in 0..10 {
                if f.regs[r].ty != RegType::Scalar
                    || !marks.reg(fr, r)
                    || (fr + 1 == frames && live & (1 << r) == 0)
                {
                    continue;
                }
                bt.regs[fr] |= 1 << r;
                if first {
                    text.push_str(&format!("frame {fr}: propagating r{r}"));
                } else {
                    text.push_str(&format!(",r{r}"));
                }
                first = false;
            }
            for (spi, slot) in f.stack.iter().enumerate() {
                if slot.bytes[7] != SlotType::Spill
                    || slot.spilled.ty != RegType::Scalar
                    || !marks.slot(fr, spi)
                {
                    continue;
                }
                bt.set_slot(fr, spi);
                let off = -(spi as i64 + 1) * 8;
                if first {
                    text.push_str(&format!("frame {fr}: propagating fp{off}"));
                } else {
                    text.push_str(&format!(",fp{off}"));
                }
                first = false;
            }
            if !first {
                text.push('\n');
            }
        }
        if self.log.level2() && !text.is_empty() {
            self.log.push(&text);
        }
        self.mark_chain(frames, idx, parent, bt);
    }

    /// `__mark_chain_precision`: walks back from instruction `idx` of the current path
    /// (which has not run yet, so it is skipped) through the stored states above it, marking
    /// what `bt` asks for.
    fn mark_chain(&mut self, frames: usize, idx: usize, parent: Option<usize>, mut bt: Backtrack) {
        // Unprivileged: every scalar is precise already (`if (!env->bpf_capable) return 0`).
        if bt.is_empty() || !self.cx.privilege.bpf_capable() {
            return;
        }
        let start_parent = parent;
        let level2 = self.log.level2();
        let insns = self.cx.insns;
        let env = self.cx.env;
        let helper = |id| env.helper_name(id);
        let leaks = self.cx.privilege.allow_ptr_leaks();
        let mut text = String::new();
        let (mut last, mut first, mut subseq) = (idx, self.cur_first, -1i64);
        // `None`: the current path's history; `Some(c)`: stored state c's.
        let mut segment: Option<usize> = None;
        let mut parent = parent;
        let mut skip_first = true;
        let mut outcome: Result<bool, Stop> = Ok(false);
        'states: loop {
            if level2 {
                text.push_str(&format!(
                    "mark_precise: frame{}: last_idx {last} first_idx {first} subseq_idx {subseq} \n",
                    bt.frame
                ));
            }
            let hist: &[HistEntry] = match segment {
                None => &self.cur_hist,
                Some(c) => &self.checkpoints[c].hist,
            };
            let mut i = last;
            let mut cnt = hist.len();
            loop {
                if skip_first {
                    skip_first = false;
                } else if insns.get(i).is_some_and(|x| x.code != 0) {
                    let h = (cnt > 0 && hist[cnt - 1].idx == i).then(|| &hist[cnt - 1]);
                    if level2 {
                        text.push_str(&format!(
                            "mark_precise: frame{}: regs={} stack={} before {i}: {}\n",
                            bt.frame,
                            Backtrack::regs_text(bt.regs[bt.frame]),
                            Backtrack::slots_text(bt.slots[bt.frame]),
                            insn_text(insns, i, &helper, leaks)
                        ));
                    }
                    if let Err(e) = bt.step(insns, i, h) {
                        outcome = Err(e);
                        break 'states;
                    }
                }
                if bt.is_empty() {
                    outcome = Ok(true);
                    break 'states;
                }
                if i == first && (cnt == 0 || (cnt == 1 && hist[0].idx == i)) {
                    break;
                }
                if cnt > 0 && hist[cnt - 1].idx == i {
                    i = hist[cnt - 1].prev;
                    cnt -= 1;
                } else if i == 0 {
                    outcome = Err(Stop::Bug);
                    break 'states;
                } else {
                    i -= 1;
                }
            }
            let Some(p) = parent else {
                break;
            };
            let ck = &mut self.checkpoints[p];
            for fr in (0..=bt.frame).rev() {
                precision::mark_frame(&mut bt, fr, &ck.state, &mut ck.marks);
                if level2 {
                    text.push_str(&format!(
                        "mark_precise: frame{fr}: parent state regs={} stack={}: {}\n",
                        Backtrack::regs_text(bt.regs[fr]),
                        Backtrack::slots_text(bt.slots[fr]),
                        marked_state_text(&ck.state, fr, &ck.marks)
                    ));
                }
            }
            if bt.is_empty() {
                outcome = Ok(true);
                break;
            }
            subseq = first as i64;
            last = ck.last;
            first = ck.first;
            segment = Some(p);
            parent = ck.parent;
        }
        if outcome == Err(Stop::NotSupported) || outcome == Ok(false) {
            self.mark_all_precise(frames, start_parent, &mut text);
        }
        if level2 && !text.is_empty() {
            self.log.push(&text);
        }
    }

    /// `mark_all_scalars_precise`: the walk could not follow the path, so every scalar of
    /// every stored state above the current one becomes precise.
    fn mark_all_precise(&mut self, frames: usize, start: Option<usize>, text: &mut String) {
        text.push_str(&format!(
            "mark_precise: frame{}: falling back to forcing all scalars precise\n",
            frames - 1
        ));
        let mut p = start;
        while let Some(c) = p {
            let ck = &mut self.checkpoints[c];
            if ck.marks.regs.len() < ck.state.frames.len() {
                ck.marks.regs.resize(ck.state.frames.len(), 0);
                ck.marks.slots.resize(ck.state.frames.len(), 0);
            }
            for (fi, f) in ck.state.frames.iter().enumerate() {
                for r in 0..10 {
                    if f.regs[r].ty != RegType::Scalar || ck.marks.reg(fi, r) {
                        continue;
                    }
                    ck.marks.regs[fi] |= 1 << r;
                    text.push_str(&format!(
                        "force_precise: frame{fi}: forcing r{r} to be precise\n"
                    ));
                }
                for (spi, slot) in f.stack.iter().enumerate().take(64) {
                    if slot.bytes[7] != SlotType::Spill
                        || slot.spilled.ty != RegType::Scalar
                        || ck.marks.slot(fi, spi)
                    {
                        continue;
                    }
                    ck.marks.slots[fi] |= 1 << spi;
                    text.push_str(&format!(
                        "force_precise: frame{fi}: forcing fp{} to be precise\n",
                        -(spi as i64 + 1) * 8
                    ));
                }
            }
            p = ck.parent;
        }
    }

    /// The stack slots instruction `idx` reads and wholly writes, per frame, read from the
    /// state before it runs (`bpf_mark_stack_read`, `bpf_mark_stack_write` call sites).
    fn note_stack_use(&mut self, st: &State, idx: usize) {
        use crate::env::ArgType;
        use bpfkit_isa::opcode as c;
        let Some(insn) = self.cx.insns.get(idx).copied() else {
            return;
        };
        let frame = st.cur();
        // Slots of `reg`'s frame covered by `size` bytes at `off` from it, for every offset
        // its bounds allow.
        let slots = |reg: &RegState, off: i64, size: u64| -> Option<(usize, u64)> {
            if reg.ty != RegType::Stack || size == 0 {
                return None;
            }
            let base = i128::from(reg.off) + i128::from(off);
            let lo = base + i128::from(reg.var.smin);
            let hi = base + i128::from(reg.var.smax) + i128::from(size);
            let mut mask = 0u64;
            let mut o = lo.max(-512);
            while o < hi.min(0) {
                mask |= 1 << ((-o - 1) / 8);
                o += 1;
            }
            Some((usize::from(reg.frameno), mask))
        };
        let class = c::class(insn.code);
        let size = match insn.code & 0x18 {
            c::W => 4,
            c::H => 2,
            c::B => 1,
            _ => 8,
        };
        match class {
            c::LDX => {
                if let Some((fr, m)) = slots(
                    &frame.regs[usize::from(insn.src)],
                    i64::from(insn.off),
                    size,
                ) {
                    self.stack_live.read(fr, m);
                }
            }
            c::ST | c::STX => {
                let base = &frame.regs[usize::from(insn.dst)];
                let Some((fr, m)) = slots(base, i64::from(insn.off), size) else {
                    return;
                };
                let atomic = class == c::STX && c::mode(insn.code) == c::ATOMIC;
                if atomic {
                    self.stack_live.read(fr, m);
                }
                if size == 8
                    && base.var.const_value().is_some()
                    && !(atomic && insn.imm == c::LOAD_ACQ)
                {
                    self.stack_live.write(fr, m);
                }
            }
            c::JMP if insn.code & 0xf0 == c::CALL && insn.src == 0 => {
                let Some(proto) = self.cx.env.helper(self.cx.prog_type, insn.imm) else {
                    return;
                };
                let map = frame.regs[1].map;
                for (i, arg) in proto.args.iter().enumerate() {
                    let reg = &frame.regs[i + 1];
                    let size = match arg {
                        ArgType::PtrToMapKey => map.map(|m| u64::from(m.key_size)),
                        ArgType::PtrToMapValue => map.map(|m| u64::from(m.value_size)),
                        ArgType::PtrToMem | ArgType::PtrToMemOrNull => frame
                            .regs
                            .get(i + 2)
                            .filter(|r| r.ty == RegType::Scalar)
                            .map(|r| r.var.umax),
                        // Memory a helper fills, of a size that is not a constant: checked as
                        // a range that must be initialised, a read (raw mode is off).
                        ArgType::PtrToUninitMem => frame
                            .regs
                            .get(i + 2)
                            .filter(|r| r.ty == RegType::Scalar && r.var.const_value().is_none())
                            .map(|r| r.var.umax),
                        _ => None,
                    };
                    if let Some((fr, m)) = size.and_then(|s| slots(reg, 0, s)) {
                        self.stack_live.read(fr, m);
                    }
                }
            }
            _ => {}
        }
    }
}
