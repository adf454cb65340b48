//! After verification: map references become addresses and context accesses move onto
//! bpfkit's context layouts (the kernel's `resolve_pseudo_ldimm64` and `convert_ctx_accesses`).

use super::skb::SkbCtx;
use super::xdp::XdpCtx;
use crate::errno::Errno;
use crate::maps::MapRef;
use crate::object::{Bpf, Fd};
use bpfkit_isa::{opcode as c, Insn, Op, Size};
use bpfkit_verifier::env::ProgType;
use bpfkit_verifier::Verified;
use std::sync::Arc;

/// The rewritten program and the maps it references (which it must keep alive).
#[derive(Debug)]
pub struct Rewritten {
    /// The instructions to run.
    pub insns: Vec<Insn>,
    /// Every map an LD_IMM64 refers to, in first-use order.
    pub maps: Vec<MapRef>,
    /// One past the highest context byte the program accesses (the kernel's
    /// `prog->aux->max_ctx_offset`, which `BPF_PROG_TEST_RUN` of raw tracepoints checks
    /// `ctx_size_in` against).
    pub max_ctx_offset: u32,
    /// `LD_ABS` / `LD_IND` became calls of the internal load helpers
    /// ([`super::ld_abs`]), which the helper table must then hold.
    pub ld_abs_helpers: bool,
}

/// One past the last context byte instruction `insn` (a context access) touches.
fn ctx_access_end(insn: &Insn) -> u32 {
    let size = match insn.code & 0x18 {
        0x00 => 4,
        0x08 => 2,
        0x10 => 1,
        _ => 8,
    };
    u32::try_from(i32::from(insn.off) + size).unwrap_or(0)
}

/// Where the real pointer behind a 32-bit context field lives, for types whose context holds
/// packet pointers.
fn pointer_field(prog_type: ProgType, off: i32) -> Option<i16> {
    match prog_type {
        ProgType::SocketFilter | ProgType::SchedCls | ProgType::SchedAct | ProgType::CgroupSkb => {
            SkbCtx::pointer_field(off)
        }
        ProgType::Xdp => XdpCtx::pointer_field(off),
        ProgType::Kprobe | ProgType::Tracepoint | ProgType::RawTracepoint => None,
    }
}

/// Rewrites a verified program for `bpf`'s runtime.
///
/// # Errors
/// `EBADF` when an LD_IMM64 names a descriptor that is no longer a map (it was when verified;
/// this can only happen if another thread closed it in between).
pub fn rewrite(verified: &Verified, prog_type: ProgType, bpf: &Bpf) -> Result<Rewritten, Errno> {
    // Code no path reached was never checked: it becomes `ja -1` (`sanitize_dead_code`).
    let mut insns = verified.insns_without_dead_code();
    let max_ctx_offset = insns
        .iter()
        .enumerate()
        .filter(|(i, _)| verified.is_ctx_access(*i))
        .map(|(_, insn)| ctx_access_end(insn))
        .max()
        .unwrap_or(0);
    let mut maps: Vec<MapRef> = Vec::new();
    let mut idx = 0;
    while idx < insns.len() {
        let Ok(op) = bpfkit_isa::decode(&insns, idx) else {
            idx += 1;
            continue;
        };
        match op {
            // A read through a BTF pointer from a map's image: the pointer is NULL there (bpfkit
            // has no kernel addresses), and Linux's probe read of NULL gives 0.
            Op::Load { dst, .. } if verified.is_probe_load(idx) => {
                insns[idx] = Insn::new(c::ALU64 | c::MOV | c::K, dst.num(), 0, 0, 0);
            }
            Op::Load {
                size: Size::W,
                sign_extend: false,
                dst,
                src,
                off,
            } if verified.is_ctx_access(idx) => {
                if let Some(new_off) = pointer_field(prog_type, i32::from(off)) {
                    insns[idx] =
                        Insn::new(c::LDX | c::MEM | c::DW, dst.num(), src.num(), new_off, 0);
                }
            }
            Op::LdImm64 {
                pseudo: pseudo @ (c::PSEUDO_MAP_FD | c::PSEUDO_MAP_VALUE),
                imm,
                next_imm,
                ..
            } => {
                let fd = Fd(u32::try_from(imm).map_err(|_| bad_fd(imm))?);
                let map = bpf.map(fd).map_err(|_| bad_fd(imm))?;
                let addr = if pseudo == c::PSEUDO_MAP_FD {
                    Arc::as_ptr(&map) as u64
                } else {
                    // A single-element array (the verifier checked it): its value's address.
                    let value = map.lookup_ptr(&0u32.to_le_bytes());
                    if value.is_null() {
                        return Err(bad_fd(imm));
                    }
                    (value as u64).wrapping_add(u64::from(next_imm as u32))
                };
                insns[idx].src = 0;
                insns[idx].imm = addr as u32 as i32;
                insns[idx + 1].imm = (addr >> 32) as u32 as i32;
                if !maps.iter().any(|m| Arc::ptr_eq(m, &map)) {
                    maps.push(map);
                }
            }
            _ => {}
        }
        idx += op.slots();
    }
    let ld_abs_helpers = prog_type.ld_abs_allowed() && super::ld_abs::needed(&insns);
    if ld_abs_helpers {
        insns = super::ld_abs::expand(&insns);
    }
    Ok(Rewritten {
        insns,
        maps,
        max_ctx_offset,
        ld_abs_helpers,
    })
}

fn bad_fd(imm: i32) -> Errno {
    Errno::Ebadf(format!("fd {imm} is not pointing to valid bpf_map").into())
}
