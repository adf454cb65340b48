//! The abstract state: what the verifier knows about every register and stack byte of every
//! call frame at one point of one path (`struct bpf_reg_state`, `struct bpf_func_state`,
//! `struct bpf_verifier_state`).

use crate::env::MapInfo;
use crate::num::Scalar;

/// Stack size of one frame in bytes (`MAX_BPF_STACK`).
pub const MAX_STACK: i32 = 512;
/// Maximum call depth (`MAX_CALL_FRAMES`).
pub const MAX_FRAMES: usize = 8;

/// The type of a register (`enum bpf_reg_type`, the subset bpfkit models).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegType {
    /// Never written, or clobbered by a call (`NOT_INIT`).
    NotInit,
    /// A number (`SCALAR_VALUE`).
    Scalar,
    /// The program's context (`PTR_TO_CTX`).
    Ctx,
    /// A pointer into a frame's stack (`PTR_TO_STACK`).
    Stack,
    /// A map (`CONST_PTR_TO_MAP`).
    MapPtr,
    /// An inner map from a map-of-maps lookup, before its NULL check
    /// (`CONST_PTR_TO_MAP | PTR_MAYBE_NULL`).
    MapPtrOrNull,
    /// A pointer into a map value (`PTR_TO_MAP_VALUE`).
    MapValue,
    /// A map value pointer that may be NULL (`PTR_TO_MAP_VALUE | PTR_MAYBE_NULL`).
    MapValueOrNull,
    /// A pointer into packet data (`PTR_TO_PACKET`).
    Packet,
    /// The end of packet data (`PTR_TO_PACKET_END`).
    PacketEnd,
    /// A pointer into packet metadata (`PTR_TO_PACKET_META`).
    PacketMeta,
    /// A ring buffer record reserved by `bpf_ringbuf_reserve` (`PTR_TO_MEM | MEM_RINGBUF`).
    RingbufMem,
    /// A ring buffer reservation before its NULL check.
    RingbufMemOrNull,
    /// A kernel struct typed by BTF (`PTR_TO_BTF_ID`), read from a pointer field of a map's
    /// struct; `range` holds the pointer's type in `rules::map_struct::TYPES`.
    BtfPtr,
    /// Read-only memory of unknown size (`PTR_TO_MEM | MEM_RDONLY | PTR_UNTRUSTED`), read from a
    /// pointer field to a non-struct; reads of any offset are probe reads.
    UntrustedMem,
}

impl RegType {
    /// The kernel's name for the type in the log (`reg_type_str`).
    #[must_use]
    pub const fn kernel_name(self) -> &'static str {
        match self {
            RegType::NotInit => "?",
            RegType::Scalar => "scalar",
            RegType::Ctx => "ctx",
            RegType::Stack => "fp",
            RegType::MapPtr => "map_ptr",
            RegType::MapPtrOrNull => "map_ptr_or_null",
            RegType::MapValue => "map_value",
            RegType::MapValueOrNull => "map_value_or_null",
            RegType::Packet => "pkt",
            RegType::PacketEnd => "pkt_end",
            RegType::PacketMeta => "pkt_meta",
            RegType::RingbufMem => "ringbuf_mem",
            RegType::RingbufMemOrNull => "ringbuf_mem_or_null",
            RegType::BtfPtr => "ptr_",
            RegType::UntrustedMem => "rdonly_untrusted_mem",
        }
    }

    /// Whether the type is a pointer (anything but scalar and not-init).
    #[must_use]
    pub const fn is_pointer(self) -> bool {
        !matches!(self, RegType::NotInit | RegType::Scalar)
    }

    /// Whether the pointer may be NULL (`type_may_be_null`).
    #[must_use]
    pub const fn maybe_null(self) -> bool {
        matches!(
            self,
            RegType::MapValueOrNull | RegType::RingbufMemOrNull | RegType::MapPtrOrNull
        )
    }

    /// Whether the type points into a packet (`type_is_pkt_pointer`).
    #[must_use]
    pub const fn is_pkt_pointer(self) -> bool {
        matches!(self, RegType::Packet | RegType::PacketMeta)
    }
}

/// A map as a register refers to it: the handle from the program plus its metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MapRef {
    /// The handle (`imm` of the LD_IMM64).
    pub handle: i32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Whether values can be accessed through pointers.
    pub value_memory: bool,
    /// The map type's kernel number.
    pub type_id: u32,
    /// Maximum entries.
    pub max_entries: u32,
}

impl MapRef {
    /// Builds the reference for map `handle`.
    #[must_use]
    pub fn new(handle: i32, info: MapInfo) -> MapRef {
        MapRef {
            handle,
            key_size: info.key_size,
            value_size: info.value_size,
            value_memory: info.map_type.has_value_memory(),
            type_id: info.map_type.kernel_id(),
            max_entries: info.max_entries,
        }
    }
}

/// A packet pointer's `range` when it is known to point at the packet's end, `pkt >= pkt_end`
/// (`AT_PKT_END`, -1 in the kernel's signed field).
pub const AT_PKT_END: u32 = u32::MAX;
/// A packet pointer's `range` when it points past the packet's end, `pkt > pkt_end`
/// (`BEYOND_PKT_END`, -2).
pub const BEYOND_PKT_END: u32 = u32::MAX - 1;

/// Whether a packet range is one of the kernel's negative markers ([`AT_PKT_END`],
/// [`BEYOND_PKT_END`]): no byte is readable through such a pointer.
#[must_use]
pub const fn pkt_range_is_end_marker(range: u32) -> bool {
    range >= BEYOND_PKT_END
}

/// What the verifier knows about one register (`struct bpf_reg_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RegState {
    /// The type.
    pub ty: RegType,
    /// Fixed offset of a pointer (`off`); 0 for scalars.
    pub off: i32,
    /// The value of a scalar, or the variable offset of a pointer (`var_off` and the bounds).
    pub var: Scalar,
    /// Identity shared by copies: null checks and packet range propagation use it (`id`).
    pub id: u32,
    /// The map of a map pointer or map value.
    pub map: Option<MapRef>,
    /// Bytes proven readable after a packet pointer (`range`), or the size of a ring buffer
    /// record (`mem_size`).
    pub range: u32,
    /// The acquired reference this pointer belongs to (`ref_obj_id`), 0 for none.
    pub ref_obj_id: u32,
    /// A scalar linked to its id's other copies with a constant delta, kept in `off`
    /// (`BPF_ADD_CONST`: `r1 = r2; r1 += 4`).
    pub add_const: bool,
    /// The frame a stack pointer points into (`frameno`).
    pub frameno: u8,
}

impl RegState {
    /// An unreadable register.
    pub const NOT_INIT: RegState = RegState {
        ty: RegType::NotInit,
        off: 0,
        var: Scalar::known(0),
        id: 0,
        map: None,
        range: 0,
        ref_obj_id: 0,
        add_const: false,
        frameno: 0,
    };

    /// A scalar.
    #[must_use]
    pub const fn scalar(var: Scalar) -> RegState {
        RegState {
            ty: RegType::Scalar,
            var,
            ..RegState::NOT_INIT
        }
    }

    /// An unknown scalar (`mark_reg_unknown`).
    #[must_use]
    pub const fn unknown() -> RegState {
        RegState::scalar(Scalar::unknown())
    }

    /// A pointer of type `ty` with fixed offset 0 and a known-zero variable part.
    #[must_use]
    pub const fn pointer(ty: RegType) -> RegState {
        RegState {
            ty,
            ..RegState::NOT_INIT
        }
    }

    /// The frame pointer of frame `frameno`.
    #[must_use]
    pub const fn frame_pointer(frameno: u8) -> RegState {
        RegState {
            ty: RegType::Stack,
            frameno,
            ..RegState::NOT_INIT
        }
    }

    /// Whether this is the scalar constant 0 (`register_is_null`).
    #[must_use]
    pub fn is_null(&self) -> bool {
        self.ty == RegType::Scalar && self.var.const_value() == Some(0)
    }

    /// The constant value of a scalar, if known.
    #[must_use]
    pub fn const_scalar(&self) -> Option<u64> {
        if self.ty == RegType::Scalar {
            self.var.const_value()
        } else {
            None
        }
    }
}

/// What one stack byte holds (`enum bpf_stack_slot_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlotType {
    /// Never written (`STACK_INVALID`, `?`).
    Invalid,
    /// Part of a spilled register (`STACK_SPILL`, `r`).
    Spill,
    /// Some scalar data (`STACK_MISC`, `m`).
    Misc,
    /// Known zero (`STACK_ZERO`, `0`).
    Zero,
}

impl SlotType {
    /// The kernel's one-letter name in the log (`slot_type_char`).
    #[must_use]
    pub const fn letter(self) -> char {
        match self {
            SlotType::Invalid => '?',
            SlotType::Spill => 'r',
            SlotType::Misc => 'm',
            SlotType::Zero => '0',
        }
    }
}

/// One 8-byte stack slot (`struct bpf_stack_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StackSlot {
    /// The spilled register, meaningful when bytes are [`SlotType::Spill`].
    pub spilled: RegState,
    /// Per-byte state indexed as the kernel does: the byte at frame offset `off` (negative) is
    /// `bytes[(-off - 1) % 8]`, so index 0 is the highest address of the slot.
    pub bytes: [SlotType; 8],
}

impl StackSlot {
    /// A slot nothing was written to.
    pub const INVALID: StackSlot = StackSlot {
        spilled: RegState::NOT_INIT,
        bytes: [SlotType::Invalid; 8],
    };

    /// Whether the slot holds a full 8-byte register spill.
    #[must_use]
    pub fn is_full_spill(&self) -> bool {
        self.bytes.iter().all(|b| *b == SlotType::Spill)
    }
}

/// One call frame (`struct bpf_func_state`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    /// r0..r10.
    pub regs: [RegState; 11],
    /// Slots from the top of the frame down: `stack[i]` covers `fp-8*(i+1) .. fp-8*i`.
    pub stack: Vec<StackSlot>,
    /// Index of the call instruction that created the frame (`callsite`), 0 for the main frame.
    pub callsite: usize,
    /// Subprogram index.
    pub subprog: usize,
    /// This frame's number (0 for the main program).
    pub frameno: u8,
}

impl Frame {
    /// A fresh frame: r10 is the frame pointer, everything else unreadable.
    #[must_use]
    pub fn new(frameno: u8, callsite: usize, subprog: usize) -> Frame {
        let mut regs = [RegState::NOT_INIT; 11];
        regs[10] = RegState::frame_pointer(frameno);
        Frame {
            regs,
            stack: Vec::new(),
            callsite,
            subprog,
            frameno,
        }
    }

    /// Bytes of stack in use (`allocated_stack`).
    #[must_use]
    pub fn allocated_stack(&self) -> usize {
        self.stack.len() * 8
    }

    /// Grows the stack so that byte offset `-depth` from the frame pointer exists.
    pub fn grow_stack(&mut self, depth: usize) {
        let slots = depth.div_ceil(8);
        if slots > self.stack.len() {
            self.stack.resize(slots, StackSlot::INVALID);
        }
    }

    /// The slot and byte index of the stack byte at `off` (negative) from the frame pointer.
    #[must_use]
    pub fn byte_pos(off: i32) -> (usize, usize) {
        let k = (-off - 1) as usize; // 0..=511 for off in -512..=-1
        (k / 8, k % 8)
    }
}

/// The whole state of one path (`struct bpf_verifier_state`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// Call frames, innermost last.
    pub frames: Vec<Frame>,
    /// Acquired references not yet released: `(id, instruction that acquired it)`
    /// (`bpf_verifier_state.refs`).
    pub refs: Vec<(u32, usize)>,
    /// A path the CPU may take only speculatively (`speculative`): explored for an unprivileged
    /// load, where an error ends the path instead of rejecting the program.
    pub speculative: bool,
}

impl State {
    /// The entry state: r1 = context, r10 = frame pointer.
    #[must_use]
    pub fn entry() -> State {
        let mut f = Frame::new(0, 0, 0);
        f.regs[1] = RegState::pointer(RegType::Ctx);
        State {
            frames: vec![f],
            refs: Vec::new(),
            speculative: false,
        }
    }

    /// The innermost frame.
    #[must_use]
    pub fn cur(&self) -> &Frame {
        // A state always has at least one frame: `entry` creates it and returns pop only
        // inner frames.
        &self.frames[self.frames.len() - 1]
    }

    /// The innermost frame, mutable.
    pub fn cur_mut(&mut self) -> &mut Frame {
        let n = self.frames.len() - 1;
        &mut self.frames[n]
    }

    /// Index of the innermost frame.
    #[must_use]
    pub fn curframe(&self) -> usize {
        self.frames.len() - 1
    }

    /// Applies `f` to every register and spilled register in every frame.
    pub fn for_each_reg(&mut self, mut f: impl FnMut(&mut RegState)) {
        for frame in &mut self.frames {
            for r in &mut frame.regs {
                f(r);
            }
            for s in &mut frame.stack {
                if s.bytes.contains(&SlotType::Spill) {
                    f(&mut s.spilled);
                }
            }
        }
    }
}
