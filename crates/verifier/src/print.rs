//! The verifier state in the kernel's log format (`print_verifier_state`, `print_reg_state`).

use crate::num;
use crate::precision::Marks;
use crate::state::{Frame, RegState, RegType, SlotType, State};
use std::fmt::Write;

/// Which registers and stack slots an instruction touched (`mark_reg_scratched`,
/// `mark_stack_slot_scratched`): the log prints only those after the instruction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Scratch {
    /// Bit `i` = register `i`.
    pub regs: u16,
    /// Bit `i` = stack slot `i` (`fp-8*(i+1)`).
    pub slots: u64,
}

impl Scratch {
    /// Everything (the state printed at entry and after a branch is resumed).
    pub const ALL: Scratch = Scratch {
        regs: u16::MAX,
        slots: u64::MAX,
    };

    /// Marks register `r`.
    pub fn reg(&mut self, r: u8) {
        self.regs |= 1 << r;
    }

    /// Marks the stack slot holding frame offset `off` (negative).
    pub fn slot_at(&mut self, off: i32) {
        if (-512..0).contains(&off) {
            self.slots |= 1 << ((-off - 1) / 8);
        }
    }

    /// Whether anything is marked.
    #[must_use]
    pub fn any(&self) -> bool {
        self.regs != 0 || self.slots != 0
    }
}

fn snum(v: i64) -> String {
    if (i64::from(i16::MIN)..=i64::from(i16::MAX)).contains(&v) {
        format!("{v}")
    } else {
        format!("{:#x}", v as u64)
    }
}

fn unum(v: u64) -> String {
    if v <= u64::from(u16::MAX) {
        format!("{v}")
    } else {
        format!("{v:#x}")
    }
}

/// One register's text (`print_reg_state`), e.g. `ctx()`, `fp-8`, `map_value(ks=4,vs=8)`.
#[must_use]
pub fn reg_text(reg: &RegState, frameno: u8) -> String {
    marked_reg_text(reg, frameno, false)
}

/// [`reg_text`] of a register that may be marked precise (`P` before a scalar).
#[must_use]
pub fn marked_reg_text(reg: &RegState, frameno: u8, precise: bool) -> String {
    let t = reg.ty;
    if t == RegType::Scalar {
        let tags = crate::scalar::LogTags {
            id: reg.id,
            delta: reg.add_const.then_some(reg.off),
            precise,
        };
        return reg.var.log_text(tags);
    }
    let mut s = String::from(t.kernel_name());
    if t == RegType::BtfPtr {
        s.push_str(crate::rules::map_ptr::pointee_name(reg.range));
    }
    if t == RegType::Stack {
        if frameno != reg.frameno {
            let _ = write!(s, "[{}]", reg.frameno);
        }
        if let Some(v) = reg.var.const_value() {
            s.push_str(&snum((v as i64).wrapping_add(i64::from(reg.off))));
            return s;
        }
    }
    let mut attrs: Vec<String> = Vec::new();
    if reg.id != 0 {
        attrs.push(format!("id={}", reg.id));
    }
    if reg.ref_obj_id != 0 {
        attrs.push(format!("ref_obj_id={}", reg.ref_obj_id));
    }
    if let Some(m) = &reg.map {
        if matches!(
            t,
            RegType::MapPtr | RegType::MapPtrOrNull | RegType::MapValue | RegType::MapValueOrNull
        ) {
            attrs.push(format!("ks={},vs={}", m.key_size, m.value_size));
        }
    }
    if reg.off != 0 {
        attrs.push(format!("off={}", snum(i64::from(reg.off))));
    }
    if t.is_pkt_pointer() {
        // The kernel's range is a signed int; its end markers print as negative numbers do.
        attrs.push(format!("r={}", unum(reg.range as i32 as i64 as u64)));
    }
    if matches!(t, RegType::RingbufMem | RegType::RingbufMemOrNull) {
        attrs.push(format!("sz={}", unum(u64::from(reg.range))));
    }
    if t == RegType::UntrustedMem {
        // `mem_size` of memory behind a pointer field to a non-struct: unknown, 0.
        attrs.push("sz=0".to_string());
    }
    match reg.var.const_value() {
        Some(0) => {}
        Some(v) => attrs.push(format!("imm={}", snum(v as i64))),
        None => {
            let text = num::log_text(&reg.var);
            // The scalar printer yields `scalar(a,b,...)`; a pointer shows the same list.
            if let Some(inner) = text
                .strip_prefix("scalar(")
                .and_then(|x| x.strip_suffix(')'))
            {
                if !inner.is_empty() {
                    attrs.push(inner.to_string());
                }
            }
        }
    }
    s.push('(');
    s.push_str(&attrs.join(","));
    s.push(')');
    s
}

/// The state of the innermost frame as the log prints it after an instruction: the scratched
/// registers and stack slots (all of them with `Scratch::ALL`), each preceded by a space.
#[must_use]
pub fn state_text(state: &State, scratch: Scratch) -> String {
    current_state_text(state, scratch, None)
}

/// [`state_text`] with the current state's precision marks, when it has any (an unprivileged
/// load: every scalar is precise there).
#[must_use]
pub fn current_state_text(state: &State, scratch: Scratch, marks: Option<&Marks>) -> String {
    let frame = state.cur();
    let mut s = String::new();
    if frame.frameno != 0 {
        let _ = write!(s, " frame{}:", frame.frameno);
    }
    let fr = state.frames.len() - 1;
    frame_text(&mut s, frame, scratch, marks.map(|m| (m, fr)));
    refs_text(&mut s, state);
    s
}

/// Frame `fr` of a stored state, every register and slot, with its precision marks
/// (`print_verifier_state(env, st, fr, true)` on a parent state).
#[must_use]
pub fn marked_state_text(state: &State, fr: usize, marks: &Marks) -> String {
    let mut s = String::new();
    let Some(frame) = state.frames.get(fr) else {
        return s;
    };
    if frame.frameno != 0 {
        let _ = write!(s, " frame{}:", frame.frameno);
    }
    frame_text(&mut s, frame, Scratch::ALL, Some((marks, fr)));
    refs_text(&mut s, state);
    s
}

fn refs_text(s: &mut String, state: &State) {
    if !state.refs.is_empty() {
        let ids: Vec<String> = state.refs.iter().map(|(id, _)| id.to_string()).collect();
        let _ = write!(s, " refs={}", ids.join(","));
    }
}

fn frame_text(s: &mut String, frame: &Frame, scratch: Scratch, marks: Option<(&Marks, usize)>) {
    for (i, reg) in frame.regs.iter().enumerate() {
        if reg.ty == RegType::NotInit || scratch.regs & (1 << i) == 0 {
            continue;
        }
        let p = marks.is_some_and(|(m, fr)| m.reg(fr, i));
        let _ = write!(s, " R{i}={}", marked_reg_text(reg, frame.frameno, p));
    }
    for (i, slot) in frame.stack.iter().enumerate() {
        if i < 64 && scratch.slots & (1 << i) == 0 {
            continue;
        }
        let off = -8 * (i as i32 + 1);
        if slot.bytes[7] == SlotType::Spill {
            let _ = write!(s, " fp{off}=");
            for b in &slot.bytes {
                if *b != SlotType::Spill {
                    s.push(b.letter());
                }
            }
            let p = marks.is_some_and(|(m, fr)| m.slot(fr, i));
            s.push_str(&marked_reg_text(&slot.spilled, frame.frameno, p));
        } else {
            if slot.bytes.iter().all(|b| *b == SlotType::Invalid) {
                continue;
            }
            let _ = write!(s, " fp{off}=");
            for b in &slot.bytes {
                s.push(b.letter());
            }
        }
    }
}
