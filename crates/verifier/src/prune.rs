//! State subsumption for pruning (`states_equal`, `regsafe`, `stacksafe`, `check_ids`): a
//! new state that is within an already fully explored one at the same instruction needs no
//! further exploration.

use crate::num;
use crate::state::{Frame, RegState, RegType, SlotType, State};

/// A consistent mapping of old ids to current ids (`struct bpf_idmap`).
#[derive(Default)]
struct IdMap(Vec<(u32, u32)>);

impl IdMap {
    /// `check_scalar_ids`: like [`IdMap::check`], but an id of 0 (an unlinked scalar) stands for
    /// a fresh id of its own.
    fn check_scalar(&mut self, old: u32, cur: u32) -> bool {
        const FRESH: u32 = 1 << 31;
        let fresh = |v: u32, n: &mut u32| {
            if v == 0 {
                *n += 1;
                FRESH + *n
            } else {
                v
            }
        };
        let mut n = self.0.len() as u32 * 2;
        let o = fresh(old, &mut n);
        let c = fresh(cur, &mut n);
        self.check(o, c)
    }

    /// `check_ids`: whether `old` ↔ `cur` is consistent with what was seen so far.
    fn check(&mut self, old: u32, cur: u32) -> bool {
        if old == 0 || cur == 0 {
            return old == cur;
        }
        for &(o, c) in &self.0 {
            if o == old {
                return c == cur;
            }
            if c == cur {
                return false;
            }
        }
        self.0.push((old, cur));
        true
    }
}

fn regsafe(old: &RegState, cur: &RegState, ids: &mut IdMap) -> bool {
    if old.ty == RegType::NotInit {
        return true;
    }
    if cur.ty != old.ty {
        return false;
    }
    match old.ty {
        RegType::NotInit => true,
        RegType::Scalar => {
            num::within(&cur.var, &old.var)
                && ids.check_scalar(old.id, cur.id)
                && old.add_const == cur.add_const
                && old.off == cur.off
        }
        RegType::MapPtr => old.map.map(|m| m.handle) == cur.map.map(|m| m.handle),
        RegType::MapPtrOrNull => {
            old.map.map(|m| m.handle) == cur.map.map(|m| m.handle) && ids.check(old.id, cur.id)
        }
        RegType::MapValue | RegType::MapValueOrNull => {
            old.map.map(|m| m.handle) == cur.map.map(|m| m.handle)
                && old.off == cur.off
                && num::within(&cur.var, &old.var)
                && ids.check(old.id, cur.id)
        }
        RegType::Packet | RegType::PacketMeta => {
            let end_marker = crate::state::pkt_range_is_end_marker;
            let range_ok = if end_marker(old.range) || end_marker(cur.range) {
                old.range == cur.range
            } else {
                cur.range >= old.range
            };
            old.off == cur.off
                && range_ok
                && num::within(&cur.var, &old.var)
                && ids.check(old.id, cur.id)
        }
        RegType::RingbufMem | RegType::RingbufMemOrNull => {
            old.off == cur.off
                && old.range == cur.range
                && num::within(&cur.var, &old.var)
                && ids.check(old.id, cur.id)
                && ids.check(old.ref_obj_id, cur.ref_obj_id)
        }
        RegType::Stack => old.frameno == cur.frameno && old.off == cur.off && old.var == cur.var,
        RegType::Ctx | RegType::PacketEnd => old.off == cur.off && old.var == cur.var,
        // Same BTF type (kept in `range`), same offset.
        RegType::BtfPtr | RegType::UntrustedMem => {
            old.range == cur.range && old.off == cur.off && num::within(&cur.var, &old.var)
        }
    }
}

fn stacksafe(old: &Frame, cur: &Frame, ids: &mut IdMap, precise_slots: Option<u64>) -> bool {
    for (spi, os) in old.stack.iter().enumerate() {
        for b in 0..8 {
            let ot = os.bytes[b];
            // Privileged programs may read uninitialised stack: unset and data bytes of the
            // old state match anything.
            if ot == SlotType::Invalid || ot == SlotType::Misc {
                continue;
            }
            let Some(cs) = cur.stack.get(spi) else {
                return false;
            };
            if cs.bytes[b] != ot {
                return false;
            }
        }
        if os.bytes[7] == SlotType::Spill {
            let Some(cs) = cur.stack.get(spi) else {
                return false;
            };
            let imprecise = precise_slots.is_some_and(|m| spi >= 64 || m & (1 << spi) == 0);
            if imprecise
                && os.spilled.ty == RegType::Scalar
                && cs.spilled.ty == RegType::Scalar
                && cs.bytes[7] == SlotType::Spill
            {
                continue;
            }
            if !regsafe(&os.spilled, &cs.spilled, ids) {
                return false;
            }
        }
    }
    true
}

/// Whether `cur` is within `old` (both at the same instruction); `live` masks the registers of
/// the innermost frame that may still be read, `precise` those whose scalar value matters.
#[must_use]
pub fn states_equal(old: &State, cur: &State, live: u16, precise: u16) -> bool {
    states_equal_marked(old, cur, live, precise, None)
}

/// [`states_equal`] with the stored state's precision marks (`reg->precise`): a scalar of the
/// old state that no decision depended on matches any scalar, in every frame and spill.
#[must_use]
pub fn states_equal_marked(
    old: &State,
    cur: &State,
    live: u16,
    precise: u16,
    marks: Option<&crate::precision::Marks>,
) -> bool {
    if old.frames.len() != cur.frames.len() || old.refs.len() != cur.refs.len() {
        return false;
    }
    // What was safe only speculatively says nothing of a real path.
    if old.speculative && !cur.speculative {
        return false;
    }
    let mut ids = IdMap::default();
    for (o, c) in old.refs.iter().zip(&cur.refs) {
        if !ids.check(o.0, c.0) {
            return false;
        }
    }
    let last = old.frames.len() - 1;
    for (i, (of, cf)) in old.frames.iter().zip(&cur.frames).enumerate() {
        if of.callsite != cur.frames[i].callsite {
            return false;
        }
        for r in 0..11 {
            if i == last && r < 10 && live & (1 << r) == 0 {
                continue;
            }
            let (o, c) = (&of.regs[r], &cf.regs[r]);
            let imprecise = match marks {
                Some(m) => r < 10 && !m.reg(i, r),
                None => i == last && r < 10 && precise & (1 << r) == 0,
            };
            if imprecise && o.ty == RegType::Scalar && c.ty == RegType::Scalar {
                // An imprecise scalar: any scalar will do.
                continue;
            }
            if !regsafe(o, c, &mut ids) {
                return false;
            }
        }
        let slots = marks.map(|m| m.slots.get(i).copied().unwrap_or(0));
        if !stacksafe(of, cf, &mut ids, slots) {
            return false;
        }
    }
    true
}
