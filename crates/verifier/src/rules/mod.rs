//! Transfer functions: each takes the read-only [`Cx`], one abstract [`State`] and one
//! instruction, and returns the next [`Flow`] or a [`Reject`]. They print nothing; the
//! explorer owns the log. They record which registers and slots they touched in [`Scratch`]
//! so the log can show them.
//!
//! Kernel counterpart: the per-instruction part of `do_check` (`check_alu_op`,
//! `check_mem_access`, `check_cond_jmp_op`, `check_helper_call`, `check_func_call`, ...).

pub mod align;
pub mod alu;
pub mod call;
pub mod compat;
pub mod jmp;
pub mod map_ptr;
pub mod map_struct;
pub mod mem;
pub mod return_code;
pub mod unpriv;

use crate::cfg::Cfg;
use crate::env::{Env, ProgType};
use crate::print::Scratch;
use crate::reject::{Errno, Reject};
use crate::state::{RegState, RegType, State};
use bpfkit_isa::{Insn, Op, Reg};

/// What a rule may read: the program, its control-flow facts and the environment.
pub struct Cx<'a> {
    /// The environment (context rules, helpers, maps).
    pub env: &'a dyn Env,
    /// The program type.
    pub prog_type: ProgType,
    /// The load's `expected_attach_type` ([`crate::Options::expected_attach_type`]).
    pub expected_attach_type: u32,
    /// Whether the license is GPL-compatible.
    pub gpl: bool,
    /// The instruction slots.
    pub insns: &'a [Insn],
    /// Control-flow facts.
    pub cfg: &'a Cfg,
    /// `BPF_F_STRICT_ALIGNMENT` without `BPF_F_ANY_ALIGNMENT`: every pointer type's accesses
    /// must be aligned, not only the stack's ([`align`]).
    pub strict_alignment: bool,
    /// Who loads the program: the unprivileged rules of [`unpriv`] apply to
    /// [`unpriv::Privilege::Unprivileged`].
    pub privilege: unpriv::Privilege,
}

/// Where a path goes after one instruction.
#[derive(Debug)]
pub enum Flow {
    /// Continue at the next instruction (after both slots of an LD_IMM64).
    Next,
    /// Continue at `target`.
    Jump(usize),
    /// A conditional jump: the fall-through continues in the given state (`None`: never
    /// falls through), the taken branch in `taken` (`None`: never taken).
    Branch {
        /// Whether the fall-through path is feasible (the state is the one passed in).
        fall: bool,
        /// The state of the taken branch, if feasible.
        taken: Option<Box<State>>,
        /// The jump target.
        target: usize,
    },
    /// A bpf-to-bpf call entered the callee at `target` (a new frame was pushed).
    Call(usize),
    /// A subprogram returned to `target` in its caller.
    Return(usize),
    /// The main program exited: the path is done.
    Exit,
}

/// Per-step outputs besides the flow: touched registers and the id generator.
pub struct Out<'a> {
    /// Registers and slots the instruction touched.
    pub scratch: &'a mut Scratch,
    /// The id generator (`env->id_gen`), shared by all paths.
    pub id_gen: &'a mut u32,
    /// Deepest stack use per subprogram (`subprog_info[].stack_depth`).
    pub depth: &'a mut Vec<usize>,
    /// Per instruction: whether its memory access went through the context pointer
    /// (`insn_aux_data[].ptr_type`), so the runtime can rewrite context accesses.
    pub base: &'a mut Vec<BaseKind>,
    /// Per instruction: how Spectre v1 sanitation treats it on the paths seen so far
    /// (`insn_aux_data[].alu_state`, `alu_limit`), for unprivileged loads; grown on demand.
    pub alu_sanitation: &'a mut Vec<(u32, u32)>,
}

/// What a load or store instruction's base register pointed to, over every path that reached
/// it (`save_aux_ptr_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BaseKind {
    /// Not a memory access, or not reached.
    #[default]
    None,
    /// The context.
    Ctx,
    /// Any other memory.
    Other,
    /// Memory behind a BTF pointer read from a map's struct (`BPF_PROBE_MEM` in Linux).
    Probe,
    /// Reached by some path, no memory access recorded (`insn_aux_data[].seen`).
    Seen,
}

impl Out<'_> {
    /// A fresh id.
    pub fn new_id(&mut self) -> u32 {
        *self.id_gen += 1;
        *self.id_gen
    }

    /// Records the base pointer kind of the access at `idx`; one instruction may not access the
    /// context on one path and other memory on another, because the context access is
    /// rewritten.
    ///
    /// # Errors
    /// `same insn cannot be used with different pointers` (EINVAL).
    pub fn note_base(&mut self, idx: usize, ctx: bool) -> Result<(), Reject> {
        let kind = if ctx { BaseKind::Ctx } else { BaseKind::Other };
        self.note_base_kind(idx, kind)
    }

    fn note_base_kind(&mut self, idx: usize, kind: BaseKind) -> Result<(), Reject> {
        match self.base.get_mut(idx) {
            Some(slot @ (BaseKind::None | BaseKind::Seen)) => *slot = kind,
            Some(prev) if *prev != kind => {
                return Err(einval(
                    idx,
                    "same insn cannot be used with different pointers",
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// [`Out::note_base`] by the base register's type: the context, a BTF pointer (probe
    /// reads), or other memory.
    ///
    /// # Errors
    /// As [`Out::note_base`].
    pub fn note_base_type(&mut self, idx: usize, ty: RegType) -> Result<(), Reject> {
        let kind = match ty {
            RegType::Ctx => BaseKind::Ctx,
            RegType::BtfPtr | RegType::UntrustedMem => BaseKind::Probe,
            _ => BaseKind::Other,
        };
        self.note_base_kind(idx, kind)
    }

    /// Records that subprogram `subprog` uses `depth` bytes of stack, counted in whole 8-byte
    /// slots as the kernel's `grow_stack_state` does.
    pub fn note_depth(&mut self, subprog: usize, depth: usize) {
        if let Some(d) = self.depth.get_mut(subprog) {
            *d = (*d).max(depth.div_ceil(8) * 8);
        }
    }
}

/// `EACCES` at `idx`.
pub fn eacces(idx: usize, msg: impl Into<String>) -> Reject {
    Reject::new(Errno::EACCES, idx, msg)
}

/// `EINVAL` at `idx`.
pub fn einval(idx: usize, msg: impl Into<String>) -> Reject {
    Reject::new(Errno::EINVAL, idx, msg)
}

/// Reads register `r` (`check_reg_arg(..., SRC_OP)`): `R%d !read_ok` when uninitialised.
pub fn read_reg(st: &State, r: Reg, idx: usize, out: &mut Out<'_>) -> Result<RegState, Reject> {
    out.scratch.reg(r.num());
    let reg = st.cur().regs[r.index()];
    if reg.ty == RegType::NotInit {
        return Err(eacces(idx, format!("R{} !read_ok", r.num())));
    }
    Ok(reg)
}

/// Checks register `r` may be written (`check_reg_arg(..., DST_OP)`): r10 is read-only.
pub fn check_write_reg(r: Reg, idx: usize, out: &mut Out<'_>) -> Result<(), Reject> {
    out.scratch.reg(r.num());
    if r == Reg::R10 {
        return Err(eacces(idx, "frame pointer is read only"));
    }
    Ok(())
}

/// One step: dispatches instruction `op` at `idx` to its rule.
///
/// # Errors
/// The rule's rejection.
pub fn step(
    cx: &Cx<'_>,
    st: &mut State,
    idx: usize,
    op: &Op,
    out: &mut Out<'_>,
) -> Result<Flow, Reject> {
    // Every instruction a path processes is seen (`insn_aux_data[].seen`): the rest is dead
    // code the kernel removes after verification (`opt_remove_dead_code`, `sanitize_dead_code`).
    if let Some(b @ BaseKind::None) = out.base.get_mut(idx) {
        *b = BaseKind::Seen;
    }
    // The unprivileged rules wrap the privileged ones (no-ops for privileged loads).
    let pre = unpriv::before(cx, st, idx, op, out)?;
    let flow = step_privileged(cx, st, idx, op, out)?;
    unpriv::after(cx, pre, st, idx, op, out)?;
    Ok(flow)
}

/// One step under the privileged rules.
fn step_privileged(
    cx: &Cx<'_>,
    st: &mut State,
    idx: usize,
    op: &Op,
    out: &mut Out<'_>,
) -> Result<Flow, Reject> {
    match *op {
        Op::Alu { .. } | Op::Neg { .. } | Op::End { .. } => alu::step(st, idx, op, out),
        Op::LdImm64 {
            dst,
            pseudo,
            imm,
            next_imm,
        } => mem::ld_imm64(cx, st, idx, dst, pseudo, imm, next_imm, out),
        Op::LdAbs { size, .. } => mem::ld_abs(cx, st, idx, size, None, out),
        Op::LdInd { size, src, .. } => mem::ld_abs(cx, st, idx, size, Some(src), out),
        Op::Load { .. } | Op::StoreImm { .. } | Op::StoreReg { .. } | Op::Atomic { .. } => {
            mem::step(cx, st, idx, op, out)
        }
        Op::Ja { off, .. } => Ok(Flow::Jump((idx as i64 + 1 + i64::from(off)) as usize)),
        Op::Jcond { .. } => jmp::step(st, idx, op, out),
        Op::Call(target) => call::call(cx, st, idx, target, out),
        Op::Exit => {
            let flow = call::exit(st, idx, out)?;
            if matches!(flow, Flow::Exit) {
                return_code::check(cx, st, idx)?;
            }
            Ok(flow)
        }
        Op::LoadAcquire {
            size,
            dst,
            src,
            off,
        } => {
            let load = Op::Load {
                size,
                sign_extend: false,
                dst,
                src,
                off,
            };
            mem::step(cx, st, idx, &load, out)
        }
        Op::StoreRelease {
            size,
            dst,
            src,
            off,
        } => {
            let store = Op::StoreReg {
                size,
                dst,
                src,
                off,
            };
            mem::step(cx, st, idx, &store, out)
        }
        Op::MayGoto { off } => {
            // The loop budget may run out at any iteration: both ways are possible.
            let target = (idx as i64 + 1 + i64::from(off)) as usize;
            Ok(Flow::Branch {
                fall: true,
                taken: Some(Box::new(st.clone())),
                target,
            })
        }
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Running one rule on a hand-built state.
    use super::{step, Cx, Flow, Out};
    use crate::cfg::Cfg;
    use crate::env::{MapInfo, MapType, ProgType};
    use crate::print::Scratch;
    use crate::reject::Reject;
    use crate::state::State;
    use crate::testing::TestEnv;
    use bpfkit_isa::{Insn, Op};

    /// An environment with one hash map (handle 0: key 4, value 8).
    pub fn env() -> TestEnv {
        TestEnv::with_maps(vec![MapInfo {
            map_type: MapType::Hash,
            key_size: 4,
            value_size: 8,
            max_entries: 4,
        }])
    }

    /// Runs `op` (at index 0 of a 64-slot program) on `st` for `prog_type`.
    pub fn run(st: &mut State, op: Op, prog_type: ProgType) -> Result<Flow, Reject> {
        let env = env();
        let insns = vec![Insn::default(); 64];
        let cfg = Cfg {
            subprogs: vec![0],
            prune_point: vec![false; 64],
        };
        let cx = Cx {
            env: &env,
            prog_type,
            expected_attach_type: 0,
            gpl: true,
            insns: &insns,
            cfg: &cfg,
            strict_alignment: false,
            privilege: super::unpriv::Privilege::Privileged,
        };
        let mut scratch = Scratch::default();
        let mut id_gen = 0;
        let mut depth = vec![0];
        let mut base = vec![super::BaseKind::None; 64];
        let mut alu_sanitation = Vec::new();
        let mut out = Out {
            scratch: &mut scratch,
            id_gen: &mut id_gen,
            depth: &mut depth,
            base: &mut base,
            alu_sanitation: &mut alu_sanitation,
        };
        step(&cx, st, 0, &op, &mut out)
    }
}
