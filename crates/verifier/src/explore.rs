//! The explorer (`do_check`, `is_state_visited`, `push_stack`/`pop_stack`): owns the worklist
//! of pending branches, the visited states used for pruning, the processed-instruction limit
//! and the log. It calls the transfer rules and nothing else decides a verdict.

use crate::cfg::Cfg;
use crate::insn_text::insn_text;
use crate::live;
use crate::log::Log;
use crate::print::{state_text, Scratch};
use crate::prune::states_equal;
use crate::reject::{Errno, Reject};
use crate::rules::{self, Cx, Flow, Out};
use crate::state::State;
use bpfkit_isa::Op;

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
}

/// A branch waiting to be explored (`struct bpf_verifier_stack_elem`).
struct Pending {
    state: State,
    idx: usize,
    prev: usize,
    parent: Option<usize>,
    log_pos: usize,
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
    checkpoints: Vec<Checkpoint>,
    explored: Vec<Vec<usize>>,
    id_gen: u32,
    /// States currently kept for pruning.
    live_states: u32,
    jmps_processed: u64,
    prev_jmps_processed: u64,
    prev_insn_processed: u64,
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
        let live = live::live_in(cx.insns, ops, cx.env, cx.prog_type);
        let cfg = cx.cfg;
        let in_subprog = |i: usize| cfg.subprog_of(i) != 0;
        let maybe_ptr = live::maybe_pointer_in(cx.insns, ops, cx.env, cx.prog_type, &cfg.subprogs);
        let precise =
            live::precise_in(cx.insns, ops, cx.env, cx.prog_type, &in_subprog, &maybe_ptr);
        let n = cx.insns.len();
        let nsub = cx.cfg.subprogs.len();
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
            checkpoints: Vec::new(),
            explored: (0..n).map(|_| Vec::new()).collect(),
            id_gen: 0,
            live_states: 0,
            jmps_processed: 0,
            prev_jmps_processed: 0,
            prev_insn_processed: 0,
        }
    }

    /// The static liveness table at log level 2 (`Live regs before insn:`).
    pub fn print_liveness(&mut self) {
        let helper = |id| self.cx.env.helper_name(id);
        let mut s = String::from("Live regs before insn:\n");
        for (i, op) in self.ops.iter().enumerate() {
            if op.is_some() {
                s.push_str(&format!(
                    "    {i:>3}: {} {}\n",
                    live::mask_text(self.live[i]),
                    insn_text(self.cx.insns, i, &helper)
                ));
            }
        }
        self.log.push(&s);
    }

    fn cfg(&self) -> &Cfg {
        self.cx.cfg
    }

    /// `update_branch_counts`: a path from `parent` finished.
    fn path_done(&mut self, mut parent: Option<usize>) {
        while let Some(p) = parent {
            let ck = &mut self.checkpoints[p];
            ck.branches = ck.branches.saturating_sub(1);
            if ck.branches > 0 {
                break;
            }
            parent = ck.parent;
        }
    }

    /// `is_state_visited`: `Ok(true)` when the state is pruned.
    fn visit(
        &mut self,
        st: &State,
        idx: usize,
        parent: &mut Option<usize>,
    ) -> Result<bool, Reject> {
        let live = self.live[idx];
        let precise = self.precise[idx];
        let mut evict = Vec::new();
        for (k, &c) in self.explored[idx].iter().enumerate() {
            let ck = &mut self.checkpoints[c];
            if ck.branches > 0 {
                if ck.state == *st {
                    return Err(Reject::new(
                        Errno::EINVAL,
                        idx,
                        format!(
                            "infinite loop detected at insn {idx}\ncur state:{}\nold state:{}",
                            state_text(st, Scratch::ALL),
                            state_text(&ck.state, Scratch::ALL)
                        ),
                    ));
                }
            } else if states_equal(&ck.state, st, live, precise) {
                ck.hits += 1;
                return Ok(true);
            }
            // A state that keeps missing is unlikely to ever match: drop it (the kernel's
            // miss_cnt heuristic), which keeps the comparisons per instruction few.
            ck.misses += 1;
            let n = 3;
            if ck.misses > ck.hits * n + n {
                evict.push(k);
            }
        }
        for k in evict.into_iter().rev() {
            let c = self.explored[idx].remove(k);
            self.checkpoints[c].state = State {
                frames: Vec::new(),
                refs: Vec::new(),
            };
            self.live_states -= 1;
        }
        // Counted only when not pruned, over the states compared (`states_cnt`).
        self.stats.max_states_per_insn = self
            .stats
            .max_states_per_insn
            .max(self.explored[idx].len() as u32);
        let add = self.jmps_processed - self.prev_jmps_processed >= 2
            && self.stats.insns_processed - self.prev_insn_processed >= 8;
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
            });
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
                match self.visit(&st, idx, &mut parent) {
                    Ok(p) => p,
                    Err(e) => {
                        if log_on && scratch.any() {
                            self.log.insn_state(idx, &state_text(&st, scratch));
                        }
                        return Err(e);
                    }
                }
            } else {
                false
            };
            if pruned {
                if log_on {
                    if resumed && level2 {
                        self.log.push(&format!("\nfrom {prev} to {idx}: safe\n"));
                    } else {
                        self.log.push(&format!("{idx}: safe\n"));
                    }
                }
                ended = true;
            }
            if !ended {
                let Some(op) = self.ops.get(idx).copied().flatten() else {
                    if log_on {
                        if scratch.any() {
                            self.log.insn_state(idx, &state_text(&st, scratch));
                        }
                        if self.lenient.get(idx).copied().flatten().is_some() {
                            let helper = |id| self.cx.env.helper_name(id);
                            let text = insn_text(self.cx.insns, idx, &helper);
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
                            "\nfrom {prev} to {idx}:{}\n",
                            state_text(&st, Scratch::ALL)
                        ));
                    }
                    if scratch.any() {
                        self.log.insn_state(idx, &state_text(&st, scratch));
                    }
                    let helper = |id| self.cx.env.helper_name(id);
                    let text = insn_text(self.cx.insns, idx, &helper);
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
                    state_text(&st, Scratch::ALL)
                } else {
                    String::new()
                };
                let flow = {
                    let mut out = Out {
                        scratch: &mut scratch,
                        id_gen: &mut self.id_gen,
                        depth: &mut self.depth,
                        base: &mut self.base,
                    };
                    rules::step(&self.cx, &mut st, idx, &op, &mut out)?
                };
                prev = idx;
                match flow {
                    Flow::Next => idx += op.slots(),
                    Flow::Jump(t) => idx = t,
                    Flow::Branch {
                        fall,
                        taken,
                        target,
                    } => match (fall, taken) {
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
                            });
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
                                state_text(&caller_view, Scratch::ALL),
                                state_text(&st, Scratch::ALL)
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
                                state_text(&st, Scratch::ALL)
                            );
                            self.log.push(&text);
                        }
                        idx = t;
                    }
                    Flow::Exit => ended = true,
                }
            }
            if ended {
                self.path_done(parent);
                let Some(p) = stack.pop() else {
                    return Ok(());
                };
                if log_on && !level2 {
                    // Level 1 keeps only the path to the error: rewind to the branch.
                    self.log.reset(p.log_pos.saturating_sub(1));
                    self.log.push(" ");
                }
                st = p.state;
                idx = p.idx;
                prev = p.prev;
                parent = p.parent;
                scratch = Scratch::ALL;
                resumed = true;
            }
        }
    }
}
