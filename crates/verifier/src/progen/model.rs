//! The generator's rough model of a program being built: what each register and stack slot
//! holds (so that most operands have the right kind), whether a value is deterministic (so
//! that a differential test knows when two runs must return the same), and the code buffers
//! (nested, so that a conditional jump can skip code generated after it).

use std::sync::atomic::{AtomicU32, Ordering};

use bpfkit_isa::Insn;

use super::{GenMap, Rng};

/// What the generator believes a register or stack slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Never written (reading it is an error).
    Uninit,
    /// Paths disagree, or the generator lost track: used only as a "wrong" operand.
    Unknown,
    /// A number.
    Scalar,
    /// The context pointer.
    Ctx,
    /// The frame pointer plus a constant offset.
    Stack(i16),
    /// A pointer into the caller's stack, at this offset from the caller's frame pointer.
    CallerStack(i16),
    /// A pointer into a value of map `.0`, `.1` bytes in.
    MapValue(u8, i32),
    /// The result of a lookup in map `.0` before its NULL check.
    MapValueOrNull(u8),
    /// Packet data plus a constant offset.
    Pkt(i32),
    /// The packet's end.
    PktEnd,
    /// The packet's metadata start.
    PktMeta,
}

impl Kind {
    /// Whether the value is a pointer (its bits are an address).
    pub(super) fn is_pointer(self) -> bool {
        !matches!(self, Self::Uninit | Self::Unknown | Self::Scalar)
    }
}

/// One register or 8-byte stack slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Val {
    /// What it holds.
    pub kind: Kind,
    /// Whether its value depends only on the program and its input.
    pub det: bool,
    /// Which write put it there: two paths agree on a value only when it is the same write.
    pub ver: u32,
}

/// Numbers the writes (any fresh number will do: versions are only compared).
static NEXT_VER: AtomicU32 = AtomicU32::new(1);

impl Val {
    /// Nothing written.
    pub const UNINIT: Self = Self {
        kind: Kind::Uninit,
        det: false,
        ver: 0,
    };

    /// A newly written value of `kind`, deterministic when `det`.
    pub fn new(kind: Kind, det: bool) -> Self {
        Self {
            kind,
            det,
            ver: NEXT_VER.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// Number of 8-byte stack slots.
pub(super) const SLOTS: usize = 64;

/// The register file and stack of the frame being generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Frame {
    /// r0..r10.
    pub regs: [Val; 11],
    /// Slot `k` covers bytes `-8 * (k + 1) .. -8 * k` from the frame pointer.
    pub stack: [Val; SLOTS],
}

impl Frame {
    fn new() -> Self {
        let mut regs = [Val::UNINIT; 11];
        regs[10] = Val::new(Kind::Stack(0), false);
        Self {
            regs,
            stack: [Val::UNINIT; SLOTS],
        }
    }

    /// Where frames disagree, the value becomes unknown (and non-deterministic).
    pub fn join(&mut self, other: &Self, tainted: bool) {
        let merge = |a: &mut Val, b: &Val| {
            if a.kind != b.kind {
                *a = Val::new(Kind::Unknown, false);
            } else {
                // After a branch on a non-deterministic condition, only values both paths
                // share (the same write) stay deterministic.
                a.det = a.det && b.det && (!tainted || a.ver == b.ver);
            }
        };
        for (a, b) in self.regs.iter_mut().zip(&other.regs) {
            merge(a, b);
        }
        for (a, b) in self.stack.iter_mut().zip(&other.stack) {
            merge(a, b);
        }
    }
}

/// The program being built.
#[derive(Debug)]
pub(super) struct Model {
    /// The random source.
    pub rng: Rng,
    /// `sched_cls`, `xdp` or `socket_filter`.
    pub prog_type: &'static str,
    /// The program's maps.
    pub maps: Vec<GenMap>,
    /// The current frame.
    pub frame: Frame,
    /// Code buffers: the last one is being written; a finished inner buffer is appended to the
    /// one below it by [`Model::end`].
    bufs: Vec<Vec<Insn>>,
    /// Finished subprograms, in order; a `call` to subprogram `k` is emitted as a CALL with
    /// src 1 and imm `k`, resolved by [`Model::finish`].
    subs: Vec<Vec<Insn>>,
    /// Inside a subprogram (no further calls, no context).
    pub in_sub: bool,
    /// Something non-deterministic was written to the packet or to a map.
    pub tainted_memory: bool,
    /// Budget of instructions still to generate (keeps programs and their paths small).
    pub budget: i64,
    /// Registers no piece may write (a loop counter), as a bit mask.
    pub reserved: u16,
    /// A deliberate mistake is made with probability 1 in this.
    pub mistake_odds: u64,
}

impl Model {
    /// A fresh model for a program of `prog_type` using `maps`.
    pub fn new(prog_type: &'static str, maps: &[GenMap], rng: Rng) -> Self {
        Self {
            rng,
            prog_type,
            maps: maps.to_vec(),
            frame: Frame::new(),
            bufs: vec![Vec::new()],
            subs: Vec::new(),
            in_sub: false,
            tainted_memory: false,
            budget: 160,
            reserved: 0,
            mistake_odds: 60,
        }
    }

    /// Appends one instruction to the current buffer.
    pub fn emit(&mut self, insn: Insn) {
        self.budget -= 1;
        if let Some(b) = self.bufs.last_mut() {
            b.push(insn);
        }
    }

    /// `LD_IMM64 dst, imm64` (two slots) with `src` (1 = map by index).
    pub fn emit_ld_imm64(&mut self, dst: u8, src: u8, imm: u64) {
        self.emit(Insn::new(0x18, dst, src, 0, imm as u32 as i32));
        self.emit(Insn::new(0, 0, 0, 0, (imm >> 32) as u32 as i32));
    }

    /// Starts a nested buffer (code a jump will skip).
    pub fn begin(&mut self) {
        self.bufs.push(Vec::new());
    }

    /// Ends the nested buffer and returns its code, not yet appended anywhere.
    pub fn take(&mut self) -> Vec<Insn> {
        if self.bufs.len() > 1 {
            self.bufs.pop().unwrap_or_default()
        } else {
            Vec::new()
        }
    }

    /// Appends finished code to the current buffer (its budget was already counted).
    pub fn append(&mut self, code: &[Insn]) {
        if let Some(b) = self.bufs.last_mut() {
            b.extend_from_slice(code);
        }
    }

    /// Length of the current buffer.
    pub fn here(&self) -> usize {
        self.bufs.last().map_or(0, Vec::len)
    }

    /// Registers currently holding `pred`-kinds.
    pub fn regs_where(&self, pred: impl Fn(Kind) -> bool) -> Vec<u8> {
        (0u8..10)
            .filter(|&r| pred(self.frame.regs[usize::from(r)].kind))
            .collect()
    }

    /// A register holding a scalar (usually), or any readable register, or (rarely) any at all.
    pub fn src_scalar(&mut self) -> u8 {
        let scalars = self.regs_where(|k| k == Kind::Scalar);
        if !scalars.is_empty() && !self.mistake() {
            return self.rng.pick(&scalars);
        }
        if self.mistake() {
            return self.rng.below(11) as u8;
        }
        if scalars.is_empty() {
            // No number yet: any initialised register (a pointer; r10 at worst).
            let live = self.regs_where(|k| !matches!(k, Kind::Uninit | Kind::Unknown));
            return if live.is_empty() {
                10
            } else {
                self.rng.pick(&live)
            };
        }
        self.rng.pick(&scalars)
    }

    /// True now and then: time for a deliberate mistake (a wrong operand, an offset out of
    /// range), rarely enough that most programs get deep before one.
    pub fn mistake(&mut self) -> bool {
        self.rng.one_in(self.mistake_odds)
    }

    /// Whether a piece may write register `r` (not a loop counter).
    fn writable(&self, r: u8) -> bool {
        self.reserved & (1 << r) == 0
    }

    /// A scalar register to update in place (a read-modify-write), rarely any other.
    pub fn src_scalar_writable(&mut self) -> u8 {
        let scalars: Vec<u8> = self
            .regs_where(|k| k == Kind::Scalar)
            .into_iter()
            .filter(|&r| self.writable(r))
            .collect();
        if scalars.is_empty() || self.mistake() {
            return self.dst_scalar();
        }
        self.rng.pick(&scalars)
    }

    /// A register to write a new scalar to: one not holding a value the program keeps (ctx,
    /// packet bounds) unless by a rare mistake.
    pub fn dst_scalar(&mut self) -> u8 {
        self.dst_scalar_not(&[])
    }

    /// [`Model::dst_scalar`], never one of `avoid`.
    pub fn dst_scalar_not(&mut self, avoid: &[u8]) -> u8 {
        let keep = |s: &Self, r: u8, strict: bool| {
            if !s.writable(r) || avoid.contains(&r) || (s.in_sub && r == 1) {
                return false;
            }
            let kept = matches!(
                s.frame.regs[usize::from(r)].kind,
                Kind::Ctx | Kind::PktEnd | Kind::Pkt(0)
            );
            !strict || !kept
        };
        let strict = !self.mistake();
        let free: Vec<u8> = (0u8..10).filter(|&r| keep(self, r, strict)).collect();
        if free.is_empty() {
            0
        } else {
            self.rng.pick(&free)
        }
    }

    /// A scratch register (r0..r5) to clobber for address computations.
    pub fn scratch(&mut self) -> u8 {
        self.scratch_not(u8::MAX)
    }

    /// [`Model::scratch`], other than `other`.
    pub fn scratch_not(&mut self, other: u8) -> u8 {
        let free: Vec<u8> = (0u8..=5)
            .filter(|&r| r != other && self.writable(r) && !(self.in_sub && r == 1))
            .collect();
        if free.is_empty() {
            0
        } else {
            self.rng.pick(&free)
        }
    }

    /// The value of register `r`.
    pub fn reg(&self, r: u8) -> Val {
        self.frame
            .regs
            .get(usize::from(r))
            .copied()
            .unwrap_or(Val::UNINIT)
    }

    /// Sets register `r` (r10 stays the frame pointer: writing it is rejected anyway).
    pub fn set(&mut self, r: u8, v: Val) {
        if r < 10 {
            self.frame.regs[usize::from(r)] = v;
        }
    }

    /// After a helper or subprogram call: r1..r5 are unreadable, r0 is the result.
    pub fn clobber_call(&mut self, r0: Val) {
        for r in 1..=5 {
            self.frame.regs[r] = Val::UNINIT;
        }
        self.frame.regs[0] = r0;
    }

    /// The stack slot of frame offset `off` (negative), if in the frame.
    pub fn slot(off: i32) -> Option<usize> {
        if (-512..0).contains(&off) {
            usize::try_from((-off - 1) / 8).ok()
        } else {
            None
        }
    }

    /// Records a store of `size` bytes of `v` at frame offset `off`.
    pub fn store_stack(&mut self, off: i32, size: i32, v: Val) {
        let whole = size == 8 && off % 8 == 0;
        for b in (off..off + size).step_by(1) {
            if let Some(s) = Self::slot(b) {
                self.frame.stack[s] = if whole {
                    v
                } else if v.kind.is_pointer() || !v.det {
                    Val::new(Kind::Scalar, false)
                } else {
                    // A partial store mixes with the slot's other bytes (garbage if unset).
                    let old = self.frame.stack[s];
                    Val::new(Kind::Scalar, old.det && old.kind != Kind::Uninit)
                };
            }
        }
    }

    /// What a load of `size` bytes at frame offset `off` gives.
    pub fn load_stack(&self, off: i32, size: i32) -> Val {
        let Some(s) = Self::slot(off) else {
            return Val::new(Kind::Unknown, false);
        };
        let v = self.frame.stack[s];
        if size == 8 && off % 8 == 0 {
            return v;
        }
        let det = (off..off + size).all(|b| {
            Self::slot(b).is_some_and(|k| {
                let v = self.frame.stack[k];
                v.det && !v.kind.is_pointer() && v.kind != Kind::Uninit
            })
        });
        Val::new(Kind::Scalar, det)
    }

    /// The prologue: r6 = ctx, and for packet programs (usually) r7 = data, r8 = data_end.
    pub fn prologue(&mut self) {
        self.emit(Insn::new(0xbf, 6, 1, 0, 0));
        self.set(6, Val::new(Kind::Ctx, true));
        self.set(1, Val::new(Kind::Ctx, true));
        let (data, end) = match self.prog_type {
            "xdp" => (0, 4),
            _ => (76, 80),
        };
        let packet = self.prog_type != "socket_filter" || self.rng.one_in(20);
        if packet && !self.rng.one_in(15) {
            self.emit(Insn::new(0x61, 7, 6, data, 0));
            self.emit(Insn::new(0x61, 8, 6, end, 0));
            self.set(7, Val::new(Kind::Pkt(0), true));
            self.set(8, Val::new(Kind::PktEnd, true));
        }
        // A scalar to start from: the packet length (deterministic) or a random number.
        if self.rng.one_in(2) {
            // skb->len, or xdp_md->rx_queue_index (0 in a test run, but not asserted).
            let xdp = self.prog_type == "xdp";
            self.emit(Insn::new(0x61, 9, 6, if xdp { 16 } else { 0 }, 0));
            self.set(9, Val::new(Kind::Scalar, !xdp));
        } else {
            self.emit(Insn::new(0x85, 0, 0, 0, 7)); // bpf_get_prandom_u32
            self.clobber_call(Val::new(Kind::Scalar, false));
            self.emit(Insn::new(0xbf, 9, 0, 0, 0));
            self.set(9, Val::new(Kind::Scalar, false));
        }
    }

    /// The epilogue: r0 = a scalar (usually masked to a small return code), exit.
    pub fn epilogue(&mut self) {
        let scalars = self.regs_where(|k| k == Kind::Scalar);
        match self.rng.below(12) {
            0 => {}                                      // whatever r0 holds
            1 => self.emit(Insn::new(0xb7, 0, 0, 0, 2)), // a constant
            _ if !scalars.is_empty() => {
                let r = self.rng.pick(&scalars);
                let det = self.reg(r).det;
                self.emit(Insn::new(0xbf, 0, r, 0, 0));
                if !self.rng.one_in(4) {
                    self.emit(Insn::new(0x57, 0, 0, 0, 3));
                }
                self.set(0, Val::new(Kind::Scalar, det));
            }
            _ => {
                self.emit(Insn::new(0xb7, 0, 0, 0, 1));
                self.set(0, Val::new(Kind::Scalar, true));
            }
        }
        self.emit(Insn::new(0x95, 0, 0, 0, 0));
    }

    /// Whether the program's return value and memory are deterministic by the model.
    pub fn deterministic(&self) -> bool {
        let r0 = self.reg(0);
        r0.kind == Kind::Scalar && r0.det && !self.tainted_memory
    }

    /// Starts a subprogram: returns the caller's state to restore with [`Model::end_sub`].
    pub fn begin_sub(&mut self) -> Frame {
        self.bufs.push(Vec::new());
        self.in_sub = true;
        std::mem::replace(&mut self.frame, Frame::new())
    }

    /// Finishes a subprogram started with [`Model::begin_sub`]: returns its index.
    pub fn end_sub(&mut self, caller: Frame) -> i32 {
        let code = self.take();
        self.in_sub = false;
        self.frame = caller;
        self.subs.push(code);
        i32::try_from(self.subs.len() - 1).unwrap_or(0)
    }

    /// The whole program: the main body, then the subprograms, calls resolved.
    pub fn finish(mut self) -> Vec<Insn> {
        while self.bufs.len() > 1 {
            let inner = self.take();
            self.append(&inner);
        }
        let mut out = self.bufs.pop().unwrap_or_default();
        let mut starts = Vec::new();
        for s in &self.subs {
            starts.push(out.len());
            out.extend_from_slice(s);
        }
        for (i, insn) in out.iter_mut().enumerate() {
            if insn.code == 0x85 && insn.src == 1 {
                let target = usize::try_from(insn.imm)
                    .ok()
                    .and_then(|k| starts.get(k).copied())
                    .unwrap_or(i + 1);
                insn.imm = (target as i64 - i as i64 - 1) as i32;
            }
        }
        out
    }
}
