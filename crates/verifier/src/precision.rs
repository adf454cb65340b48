//! Precision tracking as the kernel does it (`mark_chain_precision`, `backtrack_insn`,
//! `propagate_precision`): when a scalar's exact value decides something (a pointer offset, a
//! helper's size argument, a branch taken for sure), the verifier walks back over the
//! instructions of the current path and marks, in the stored states it passes through, every
//! register and spilled stack slot that value came from as precise (`P` in the log).
//!
//! The walk needs the path: each state keeps the index of its first instruction and a history
//! of the non-linear steps it took (`struct bpf_insn_hist_entry`: jumps, returns, stack
//! accesses, registers linked at a conditional jump). At log level 2 every step is printed
//! (`mark_precise: frame0: regs=r1 stack= before 4: (bf) r1 = r0`).

use crate::state::{RegType, SlotType, State, MAX_FRAMES};
use bpfkit_isa::opcode as c;
use bpfkit_isa::Insn;

/// A register or stack slot of one frame, linked to others by a shared scalar id at a
/// conditional jump (`struct linked_reg`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Linked {
    /// The frame.
    pub frame: u8,
    /// The register number, or the stack slot index (`spi`).
    pub index: u8,
    /// Whether `index` is a register (else a stack slot).
    pub is_reg: bool,
}

/// One step of a state's history (`struct bpf_insn_hist_entry`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistEntry {
    /// The instruction.
    pub idx: usize,
    /// The instruction processed before it.
    pub prev: usize,
    /// A spill or fill: the frame and slot it touched (`INSN_F_STACK_ACCESS`).
    pub stack: Option<(u8, u8)>,
    /// Scalars sharing an id at a conditional jump (`linked_regs`).
    pub linked: Vec<Linked>,
}

/// Precision marks of one stored state: per frame, registers and spilled stack slots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Marks {
    /// Per frame: bit `r` = register `r` is precise.
    pub regs: Vec<u16>,
    /// Per frame: bit `spi` = the scalar spilled in slot `spi` is precise.
    pub slots: Vec<u64>,
}

impl Marks {
    /// No marks, for a state of `frames` frames.
    #[must_use]
    pub fn new(frames: usize) -> Marks {
        Marks {
            regs: vec![0; frames],
            slots: vec![0; frames],
        }
    }

    /// Every scalar precise, for a state of `frames` frames: an unprivileged load's state
    /// (`reg->precise = !env->bpf_capable` wherever the kernel makes a scalar).
    #[must_use]
    pub fn all(frames: usize) -> Marks {
        Marks {
            regs: vec![u16::MAX; frames],
            slots: vec![u64::MAX; frames],
        }
    }

    /// Whether register `r` of frame `fr` is precise.
    #[must_use]
    pub fn reg(&self, fr: usize, r: usize) -> bool {
        self.regs.get(fr).is_some_and(|m| m & (1 << r) != 0)
    }

    /// Whether the spill in slot `spi` of frame `fr` is precise.
    #[must_use]
    pub fn slot(&self, fr: usize, spi: usize) -> bool {
        spi < 64 && self.slots.get(fr).is_some_and(|m| m & (1 << spi) != 0)
    }
}

/// What is still being looked for, per frame (`struct backtrack_state`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Backtrack {
    /// The frame being walked.
    pub frame: usize,
    /// Registers per frame.
    pub regs: [u16; MAX_FRAMES],
    /// Stack slots per frame.
    pub slots: [u64; MAX_FRAMES],
}

/// Why a walk stopped early.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// The kernel cannot follow this instruction (`-ENOTSUPP`): every scalar becomes precise.
    NotSupported,
    /// An inconsistency (the kernel's `verifier_bug`): the walk is abandoned.
    Bug,
}

impl Backtrack {
    /// Nothing requested yet, walking frame `frame`.
    #[must_use]
    pub fn new(frame: usize) -> Backtrack {
        Backtrack {
            frame,
            ..Backtrack::default()
        }
    }

    /// Whether nothing is left to look for (`bt_empty`).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.regs.iter().all(|m| *m == 0) && self.slots.iter().all(|m| *m == 0)
    }

    /// Requests register `r` of the current frame.
    pub fn set_reg(&mut self, r: usize) {
        self.regs[self.frame] |= 1 << r;
    }

    fn clear_reg(&mut self, r: usize) {
        self.regs[self.frame] &= !(1 << r);
    }

    fn has_reg(&self, r: usize) -> bool {
        self.regs[self.frame] & (1 << r) != 0
    }

    /// Requests stack slot `spi` of frame `fr`.
    pub fn set_slot(&mut self, fr: usize, spi: usize) {
        if fr < MAX_FRAMES && spi < 64 {
            self.slots[fr] |= 1 << spi;
        }
    }

    /// The register list as the kernel prints it (`fmt_reg_mask`): `r1,r2`.
    #[must_use]
    pub fn regs_text(mask: u16) -> String {
        (0..16)
            .filter(|r| mask & (1 << r) != 0)
            .map(|r| format!("r{r}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The stack slot list as the kernel prints it (`fmt_stack_mask`): `-8,-16`.
    #[must_use]
    pub fn slots_text(mask: u64) -> String {
        (0..64)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| format!("{}", -(i + 1) * 8))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `bt_sync_linked_regs`: when one of the linked registers is requested, all are.
    fn sync_linked(&mut self, hist: Option<&HistEntry>) {
        let Some(h) = hist else { return };
        let is_set = |bt: &Backtrack, l: &Linked| {
            let fr = usize::from(l.frame);
            fr < MAX_FRAMES
                && if l.is_reg {
                    bt.regs[fr] & (1 << l.index) != 0
                } else {
                    bt.slots[fr] & (1 << l.index) != 0
                }
        };
        if !h.linked.iter().any(|l| is_set(self, l)) {
            return;
        }
        for l in &h.linked {
            let fr = usize::from(l.frame);
            if fr >= MAX_FRAMES {
                continue;
            }
            if l.is_reg {
                self.regs[fr] |= 1 << l.index;
            } else if l.index < 64 {
                self.slots[fr] |= 1 << l.index;
            }
        }
    }

    /// `backtrack_insn`: what instruction `idx` means for the registers and slots looked for
    /// before it. `subprog_is_call(idx)` tells bpf-to-bpf calls from helper calls.
    ///
    /// # Errors
    /// [`Stop`] where the kernel gives up.
    pub fn step(
        &mut self,
        insns: &[Insn],
        idx: usize,
        hist: Option<&HistEntry>,
    ) -> Result<(), Stop> {
        let Some(insn) = insns.get(idx) else {
            return Err(Stop::Bug);
        };
        let class = c::class(insn.code);
        let op = insn.code & 0xf0;
        let (dreg, sreg) = (usize::from(insn.dst), usize::from(insn.src));
        if dreg > 10 || sreg > 10 {
            return Err(Stop::Bug);
        }
        self.sync_linked(hist);
        let stack = hist.and_then(|h| h.stack);
        match class {
            c::ALU | c::ALU64 => {
                if !self.has_reg(dreg) {
                    return Ok(());
                }
                if op == c::END || op == c::NEG {
                    return Ok(());
                }
                if op == c::MOV {
                    self.clear_reg(dreg);
                    if c::source(insn.code) == c::X && sreg != 10 {
                        self.set_reg(sreg);
                    }
                } else if c::source(insn.code) == c::X && sreg != 10 {
                    self.set_reg(sreg);
                }
            }
            c::LDX => {
                if !self.has_reg(dreg) {
                    return Ok(());
                }
                self.clear_reg(dreg);
                if let Some((fr, spi)) = stack {
                    self.set_slot(usize::from(fr), usize::from(spi));
                }
            }
            c::STX if c::mode(insn.code) == c::ATOMIC && insn.imm == c::LOAD_ACQ => {
                if !self.has_reg(dreg) {
                    return Ok(());
                }
                self.clear_reg(dreg);
                if let Some((fr, spi)) = stack {
                    self.set_slot(usize::from(fr), usize::from(spi));
                }
            }
            c::STX | c::ST => {
                if self.has_reg(dreg) {
                    return Err(Stop::NotSupported);
                }
                let Some((fr, spi)) = stack else {
                    return Ok(());
                };
                let (fr, spi) = (usize::from(fr), usize::from(spi));
                if fr >= MAX_FRAMES || spi >= 64 || self.slots[fr] & (1 << spi) == 0 {
                    return Ok(());
                }
                self.slots[fr] &= !(1 << spi);
                if class == c::STX {
                    self.set_reg(sreg);
                }
            }
            c::JMP | c::JMP32 => {
                if op == c::CALL && class == c::JMP && insn.src == 1 {
                    // Leaving the callee backwards through its call: only arguments may be
                    // left, and they belong to the caller.
                    if self.regs[self.frame] & !0b11_1110 != 0 || self.slots[self.frame] != 0 {
                        return Err(Stop::Bug);
                    }
                    if self.frame == 0 {
                        return Err(Stop::Bug);
                    }
                    for r in 1..=5 {
                        if self.has_reg(r) {
                            self.clear_reg(r);
                            self.regs[self.frame - 1] |= 1 << r;
                        }
                    }
                    self.frame -= 1;
                    return Ok(());
                }
                if op == c::EXIT && class == c::JMP {
                    // Entering a callee backwards through its exit: r0 is its return value.
                    if self.regs[self.frame] & 0b11_1110 != 0 {
                        return Err(Stop::Bug);
                    }
                    let r0 = self.has_reg(0);
                    self.clear_reg(0);
                    if self.frame + 1 >= MAX_FRAMES {
                        return Err(Stop::Bug);
                    }
                    self.frame += 1;
                    if r0 {
                        self.set_reg(0);
                    }
                    return Ok(());
                }
                if op == c::CALL && class == c::JMP {
                    self.clear_reg(0);
                    if self.regs[self.frame] & 0b11_1110 != 0 {
                        return Err(Stop::Bug);
                    }
                } else if op != c::JA && c::source(insn.code) == c::X {
                    if !self.has_reg(dreg) && !self.has_reg(sreg) {
                        return Ok(());
                    }
                    self.set_reg(sreg);
                    self.set_reg(dreg);
                }
            }
            c::LD => {
                if !self.has_reg(dreg) {
                    return Ok(());
                }
                self.clear_reg(dreg);
                if matches!(c::mode(insn.code), c::ABS | c::IND) {
                    return Err(Stop::NotSupported);
                }
            }
            _ => {}
        }
        self.sync_linked(hist);
        Ok(())
    }
}

/// Marks what `bt` asks for in frame `fr` of a stored state: a register or slot that holds no
/// scalar, or is precise already, is no longer looked for (the walk above it is done).
pub fn mark_frame(bt: &mut Backtrack, fr: usize, state: &State, marks: &mut Marks) {
    let Some(frame) = state.frames.get(fr) else {
        bt.regs[fr] = 0;
        bt.slots[fr] = 0;
        return;
    };
    if marks.regs.len() < state.frames.len() {
        marks.regs.resize(state.frames.len(), 0);
        marks.slots.resize(state.frames.len(), 0);
    }
    for r in 0..16 {
        if bt.regs[fr] & (1 << r) == 0 {
            continue;
        }
        let scalar = frame.regs.get(r).is_some_and(|x| x.ty == RegType::Scalar);
        if !scalar || marks.regs[fr] & (1 << r) != 0 {
            bt.regs[fr] &= !(1 << r);
        } else {
            marks.regs[fr] |= 1 << r;
        }
    }
    for spi in 0..64 {
        if bt.slots[fr] & (1 << spi) == 0 {
            continue;
        }
        let spilled_scalar = frame
            .stack
            .get(spi)
            .is_some_and(|s| s.bytes[7] == SlotType::Spill && s.spilled.ty == RegType::Scalar);
        if !spilled_scalar || marks.slots[fr] & (1 << spi) != 0 {
            bt.slots[fr] &= !(1 << spi);
        } else {
            marks.slots[fr] |= 1 << spi;
        }
    }
}

/// The instructions where a path may arrive other than from the instruction before
/// (`mark_jmp_point`): jump targets, the instruction after a call, subprogram entries.
#[must_use]
pub fn jmp_points(insns: &[Insn]) -> Vec<bool> {
    let n = insns.len();
    let mut points = vec![false; n];
    let mut mark = |w: i64| {
        if let Ok(w) = usize::try_from(w) {
            if w < n {
                points[w] = true;
            }
        }
    };
    let mut i = 0;
    while i < n {
        let insn = insns[i];
        let ti = i as i64;
        if insn.is_ld_imm64() {
            i += 2;
            continue;
        }
        let class = c::class(insn.code);
        if class == c::JMP || class == c::JMP32 {
            let op = insn.code & 0xf0;
            match op {
                c::EXIT => {}
                c::CALL if class == c::JMP => {
                    mark(ti + 1);
                    if insn.src == 1 {
                        mark(ti + i64::from(insn.imm) + 1);
                    }
                }
                c::JA => {
                    let off = if class == c::JMP32 {
                        i64::from(insn.imm)
                    } else {
                        i64::from(insn.off)
                    };
                    mark(ti + off + 1);
                }
                _ => mark(ti + i64::from(insn.off) + 1),
            }
        }
        i += 1;
    }
    points
}
