//! The packet helpers of socket and tc programs, as operations on an [`SkBuff`]
//! (net/core/filter.c: `bpf_skb_load_bytes`, `bpf_skb_store_bytes`, `bpf_l3_csum_replace`,
//! `bpf_l4_csum_replace`).
//!
//! Each returns what the kernel helper returns (0 or a negative errno). bpfkit's socket
//! buffers are linear and never cloned, and their checksum state is `CHECKSUM_NONE` (as a
//! `BPF_PROG_TEST_RUN` skb's is), so the kernel's `skb->csum` bookkeeping for
//! `CHECKSUM_COMPLETE` never applies.

use super::csum::{csum_replace2, csum_replace4, csum_replace_by_diff};
use crate::prog::skb::SkBuff;

/// `-EINVAL`.
pub const EINVAL: i64 = -22;
/// `-EFAULT`.
pub const EFAULT: i64 = -14;

/// `BPF_F_RECOMPUTE_CSUM`
pub const BPF_F_RECOMPUTE_CSUM: u64 = 1 << 0;
/// `BPF_F_INVALIDATE_HASH`
pub const BPF_F_INVALIDATE_HASH: u64 = 1 << 1;
/// `BPF_F_HDR_FIELD_MASK`: the size of the changed field (0, 2 or 4).
pub const BPF_F_HDR_FIELD_MASK: u64 = 0xf;
/// `BPF_F_PSEUDO_HDR`
pub const BPF_F_PSEUDO_HDR: u64 = 1 << 4;
/// `BPF_F_MARK_MANGLED_0`
pub const BPF_F_MARK_MANGLED_0: u64 = 1 << 5;
/// `BPF_F_MARK_ENFORCE`
pub const BPF_F_MARK_ENFORCE: u64 = 1 << 6;
/// `BPF_F_IPV6`
pub const BPF_F_IPV6: u64 = 1 << 7;
/// `CSUM_MANGLED_0`: how a zero UDP checksum is written when it must not mean "none".
pub const CSUM_MANGLED_0: u16 = 0xffff;

const INT_MAX: u32 = i32::MAX as u32;

/// `bpf_skb_load_bytes(skb, offset, to, len)`: copies packet bytes; on failure zero-fills `to`
/// and returns `-EFAULT`.
pub fn load_bytes(skb: &SkBuff, offset: u32, to: &mut [u8]) -> i64 {
    let packet = skb.packet();
    let range = (offset <= INT_MAX)
        .then(|| usize::try_from(offset).ok())
        .flatten()
        .and_then(|o| Some(o..o.checked_add(to.len())?))
        .filter(|r| r.end <= packet.len());
    match range {
        Some(r) => {
            to.copy_from_slice(&packet[r]);
            0
        }
        None => {
            to.fill(0);
            EFAULT
        }
    }
}

/// `bpf_skb_store_bytes(skb, offset, from, len, flags)`.
pub fn store_bytes(skb: &mut SkBuff, offset: u32, from: &[u8], flags: u64) -> i64 {
    if flags & !(BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH) != 0 {
        return EINVAL;
    }
    if offset > INT_MAX {
        return EFAULT;
    }
    let Some(r) = writable(skb, offset, from.len()) else {
        return EFAULT;
    };
    skb.packet_mut()[r].copy_from_slice(from);
    if flags & BPF_F_INVALIDATE_HASH != 0 {
        skb.ctx_mut().set_u32(crate::prog::skb::field::HASH, 0);
    }
    0
}

/// `bpf_try_make_writable(skb, offset + len)`: the byte range, if it lies in the packet.
fn writable(skb: &SkBuff, offset: u32, len: usize) -> Option<std::ops::Range<usize>> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(len)?;
    (end <= skb.packet().len()).then_some(start..end)
}

/// The checksum field at `offset`, checked as both csum helpers check it: even, at most
/// 0xffff, inside the packet.
fn sum_field(skb: &SkBuff, offset: u32) -> Result<std::ops::Range<usize>, i64> {
    if offset > 0xffff || offset & 1 != 0 {
        return Err(EFAULT);
    }
    writable(skb, offset, 2).ok_or(EFAULT)
}

fn read_sum(skb: &SkBuff, r: &std::ops::Range<usize>) -> u16 {
    let p = &skb.packet()[r.clone()];
    u16::from_le_bytes([p[0], p[1]])
}

fn write_sum(skb: &mut SkBuff, r: std::ops::Range<usize>, v: u16) {
    skb.packet_mut()[r].copy_from_slice(&v.to_le_bytes());
}

/// `bpf_l3_csum_replace(skb, offset, from, to, flags)`.
pub fn l3_csum_replace(skb: &mut SkBuff, offset: u32, from: u64, to: u64, flags: u64) -> i64 {
    if flags & !BPF_F_HDR_FIELD_MASK != 0 {
        return EINVAL;
    }
    let r = match sum_field(skb, offset) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let sum = read_sum(skb, &r);
    // The helper's u64 arguments are cast to the kernel's __be16 / __be32 / __wsum.
    let new = match flags & BPF_F_HDR_FIELD_MASK {
        0 => {
            if from != 0 {
                return EINVAL;
            }
            csum_replace_by_diff(sum, to as u32)
        }
        2 => csum_replace2(sum, from as u16, to as u16),
        4 => csum_replace4(sum, from as u32, to as u32),
        _ => return EINVAL,
    };
    write_sum(skb, r, new);
    0
}

/// `bpf_l4_csum_replace(skb, offset, from, to, flags)`.
pub fn l4_csum_replace(skb: &mut SkBuff, offset: u32, from: u64, to: u64, flags: u64) -> i64 {
    let known = BPF_F_MARK_MANGLED_0
        | BPF_F_MARK_ENFORCE
        | BPF_F_PSEUDO_HDR
        | BPF_F_HDR_FIELD_MASK
        | BPF_F_IPV6;
    if flags & !known != 0 {
        return EINVAL;
    }
    let r = match sum_field(skb, offset) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let sum = read_sum(skb, &r);
    let mangled_zero = flags & BPF_F_MARK_MANGLED_0 != 0;
    if mangled_zero && flags & BPF_F_MARK_ENFORCE == 0 && sum == 0 {
        return 0;
    }
    // With CHECKSUM_NONE, inet_proto_csum_replace* reduce to the plain replacements.
    let new = match flags & BPF_F_HDR_FIELD_MASK {
        0 => {
            if from != 0 {
                return EINVAL;
            }
            csum_replace_by_diff(sum, to as u32)
        }
        2 => csum_replace2(sum, from as u16, to as u16),
        4 => csum_replace4(sum, from as u32, to as u32),
        _ => return EINVAL,
    };
    let new = if mangled_zero && new == 0 {
        CSUM_MANGLED_0
    } else {
        new
    };
    write_sum(skb, r, new);
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_and_store_stay_inside_the_packet() {
        let mut skb = SkBuff::boxed(&[1, 2, 3, 4]);
        let mut to = [9u8; 2];
        assert_eq!(load_bytes(&skb, 2, &mut to), 0);
        assert_eq!(to, [3, 4]);
        assert_eq!(load_bytes(&skb, 3, &mut to), EFAULT);
        assert_eq!(to, [0, 0]);
        assert_eq!(store_bytes(&mut skb, 1, &[7, 7], 0), 0);
        assert_eq!(skb.packet(), &[1, 7, 7, 4]);
        assert_eq!(store_bytes(&mut skb, 3, &[7, 7], 0), EFAULT);
        assert_eq!(store_bytes(&mut skb, 0, &[7], 4), EINVAL);
    }

    #[test]
    fn csum_offsets_must_be_even_and_inside() {
        let mut skb = SkBuff::boxed(&[0; 8]);
        assert_eq!(l3_csum_replace(&mut skb, 1, 0, 0, 2), EFAULT);
        assert_eq!(l3_csum_replace(&mut skb, 8, 0, 0, 2), EFAULT);
        assert_eq!(l3_csum_replace(&mut skb, 0, 1, 0, 0), EINVAL);
        assert_eq!(l3_csum_replace(&mut skb, 0, 0, 0, 3), EINVAL);
        assert_eq!(l4_csum_replace(&mut skb, 0, 0, 0, 1 << 8), EINVAL);
    }
}
