//! `LD_ABS` / `LD_IND` as helper calls, for programs whose packet can move during a run.
//!
//! The interpreter reads `LD_ABS` / `LD_IND` from the packet it was given when the run began.
//! That is the packet for good unless the program calls a helper that moves it
//! (`bpf_skb_vlan_push` / `bpf_skb_vlan_pop` insert or remove four bytes in front). For such
//! programs bpfkit does what the kernel does for every program (`bpf_gen_ld_abs` in
//! net/core/filter.c): each load becomes
//!
//! ```text
//! r2 = imm            (LD_IND: r2 = src; r2 += imm)
//! r1 = r6             (the verifier keeps the context in r6 for these loads)
//! call skb_load_helper_{8,16,32}
//! if r0 s>= 0 goto +2
//! w0 ^= w0
//! exit
//! ```
//!
//! with jump offsets around it adjusted. The helpers read the socket buffer's current packet.

use crate::helpers::abi::ret;
use crate::helpers::packet::skb;
use bpfkit_isa::Insn;
use bpfkit_vm::{Helper, Helpers};

/// Helper ids bpfkit uses internally for the three load sizes (outside the kernel's range;
/// only rewritten programs call them, after verification).
pub const LOAD_HELPER_IDS: [(u8, i32); 3] = [(1, 1001), (2, 1002), (4, 1004)];

/// Helper ids whose calls move an skb's packet data (`bpf_skb_vlan_push`, `bpf_skb_vlan_pop`).
const MOVES_PACKET: [i32; 2] = [18, 19];

const EFAULT: i64 = -14;

/// `____bpf_skb_load_helper_N` over the current packet: the big-endian value, or `-EFAULT`
/// out of range (negative offsets included, as the interpreter's `LD_ABS` treats them).
fn load(ctx: u64, offset: u64, size: usize) -> u64 {
    // SAFETY: r1 is r6, the context of an skb program (the verifier requires it for LD_ABS),
    // i.e. the address of the live SkBuff of the run.
    let skb = unsafe { skb(ctx) };
    let Ok(off) = usize::try_from(offset as u32 as i32) else {
        return ret(EFAULT);
    };
    match skb.packet().get(off..off.saturating_add(size)) {
        Some(b) if b.len() == size => b.iter().fold(0u64, |v, &x| v << 8 | u64::from(x)),
        _ => ret(EFAULT),
    }
}

extern "C" fn load8(ctx: u64, offset: u64, _: u64, _: u64, _: u64) -> u64 {
    load(ctx, offset, 1)
}

extern "C" fn load16(ctx: u64, offset: u64, _: u64, _: u64, _: u64) -> u64 {
    load(ctx, offset, 2)
}

extern "C" fn load32(ctx: u64, offset: u64, _: u64, _: u64, _: u64) -> u64 {
    load(ctx, offset, 4)
}

/// Adds the load helpers to an skb program's helper table.
pub fn add_helpers(h: &mut Helpers) {
    h.set(1001, Helper::scalar(load8));
    h.set(1002, Helper::scalar(load16));
    h.set(1004, Helper::scalar(load32));
}

const CLASS_LD: u8 = 0x00;
const CLASS_JMP: u8 = 0x05;
const CLASS_JMP32: u8 = 0x06;
const MODE_ABS: u8 = 0x20;
const MODE_IND: u8 = 0x40;
const OP_CALL: u8 = 0x80;
const OP_EXIT: u8 = 0x90;
const OP_JA: u8 = 0x00;

fn is_ld_abs_ind(i: &Insn) -> bool {
    i.code & 0x07 == CLASS_LD && matches!(i.code & 0xe0, MODE_ABS | MODE_IND)
}

/// Whether the program calls a helper that moves the packet.
#[must_use]
pub fn needed(insns: &[Insn]) -> bool {
    let calls = insns
        .iter()
        .any(|i| i.code == CLASS_JMP | OP_CALL && i.src == 0 && MOVES_PACKET.contains(&i.imm));
    calls && insns.iter().any(is_ld_abs_ind)
}

fn expansion(i: &Insn) -> Vec<Insn> {
    let size = match i.code & 0x18 {
        0x10 => 1,
        0x08 => 2,
        _ => 4,
    };
    let id = LOAD_HELPER_IDS
        .iter()
        .find(|(s, _)| *s == size)
        .map_or(1004, |(_, id)| *id);
    let mut v = Vec::new();
    if i.code & 0xe0 == MODE_ABS {
        v.push(Insn::new(0xb7, 2, 0, 0, i.imm)); // r2 = imm
    } else {
        v.push(Insn::new(0xbf, 2, i.src, 0, 0)); // r2 = src
        if i.imm != 0 {
            v.push(Insn::new(0x07, 2, 0, 0, i.imm)); // r2 += imm
        }
    }
    v.push(Insn::new(0xbf, 1, 6, 0, 0)); // r1 = r6
    v.push(Insn::new(0x85, 0, 0, 0, id));
    v.push(Insn::new(0x75, 0, 0, 2, 0)); // if r0 s>= 0 goto +2
    v.push(Insn::new(0xac, 0, 0, 0, 0)); // w0 ^= w0
    v.push(Insn::new(0x95, 0, 0, 0, 0)); // exit
    v
}

/// Where the offset of a jump-like instruction lives.
enum Rel {
    Off,
    Imm,
}

fn relative(insns: &[Insn], i: usize) -> Option<Rel> {
    let insn = &insns[i];
    let class = insn.code & 0x07;
    let op = insn.code & 0xf0;
    if class == CLASS_JMP && op == OP_CALL {
        return (insn.src == 1).then_some(Rel::Imm); // bpf-to-bpf call
    }
    if (class == CLASS_JMP || class == CLASS_JMP32) && op == OP_EXIT {
        return None;
    }
    if class == CLASS_JMP32 && op == OP_JA {
        return Some(Rel::Imm); // gotol
    }
    if class == CLASS_JMP || class == CLASS_JMP32 {
        return Some(Rel::Off);
    }
    // LD_IMM64 of a function address (src 4).
    (insn.code == 0x18 && insn.src == 4).then_some(Rel::Imm)
}

/// Replaces every `LD_ABS` / `LD_IND` by its helper-call form, adjusting relative offsets.
#[must_use]
pub fn expand(insns: &[Insn]) -> Vec<Insn> {
    // New index of each old slot (expansions start where the load was).
    let mut new_index = Vec::with_capacity(insns.len() + 1);
    let mut n = 0usize;
    for i in insns {
        new_index.push(n);
        n += if is_ld_abs_ind(i) {
            expansion(i).len()
        } else {
            1
        };
    }
    new_index.push(n);
    let mut out = Vec::with_capacity(n);
    for (i, insn) in insns.iter().enumerate() {
        if is_ld_abs_ind(insn) {
            out.extend(expansion(insn));
            continue;
        }
        let mut insn = *insn;
        if let Some(rel) = relative(insns, i) {
            let delta = match rel {
                Rel::Off => i64::from(insn.off),
                Rel::Imm => i64::from(insn.imm),
            };
            let target = i as i64 + 1 + delta;
            if let Some(&t) = usize::try_from(target).ok().and_then(|t| new_index.get(t)) {
                let new_delta = t as i64 - (new_index[i] as i64 + 1);
                match rel {
                    Rel::Off => insn.off = new_delta as i16,
                    Rel::Imm => insn.imm = new_delta as i32,
                }
            }
        }
        out.push(insn);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_over_an_expanded_load_still_land() {
        let prog = [
            Insn::new(0x15, 1, 0, 1, 0),  // 0: if r1 == 0 goto 2
            Insn::new(0x30, 0, 0, 0, 12), // 1: r0 = ld_abs_b [12]
            Insn::new(0x05, 0, 0, -3, 0), // 2: goto 0
            Insn::new(0x95, 0, 0, 0, 0),  // 3: exit
        ];
        let out = expand(&prog);
        assert_eq!(out.len(), 3 + 6);
        assert_eq!(out[0].off, 6, "over the six-slot expansion");
        assert_eq!(out[1].code, 0xb7);
        assert_eq!(out[3].imm, 1001);
        assert_eq!(out[7].off, -8, "back to the first instruction");
    }
}
