//! Internet checksum arithmetic as the kernel does it (include/net/checksum.h,
//! arch/x86/lib/csum-partial_64.c), for `bpf_csum_diff`, `bpf_l3_csum_replace` and
//! `bpf_l4_csum_replace`.
//!
//! One's-complement sums have two spellings of zero, so "equivalent" is not enough: each
//! function follows the kernel's exact operation order, and the differential test compares the
//! resulting bits with the live kernel's. Values are raw memory words (network byte order read
//! as little-endian integers), as the kernel's `__be32` / `__wsum` casts treat them.

/// `csum_add`: 32-bit one's-complement addition with end-around carry.
#[must_use]
pub const fn csum_add(csum: u32, addend: u32) -> u32 {
    let res = csum.wrapping_add(addend);
    res.wrapping_add((res < addend) as u32)
}

/// `csum_sub`.
#[must_use]
pub const fn csum_sub(csum: u32, addend: u32) -> u32 {
    csum_add(csum, !addend)
}

/// `csum_fold`: a 32-bit partial sum folded to 16 bits and complemented.
#[must_use]
pub const fn csum_fold(csum: u32) -> u16 {
    ((!csum).wrapping_sub(csum.rotate_right(16)) >> 16) as u16
}

/// `csum16_add`.
#[must_use]
pub const fn csum16_add(csum: u16, addend: u16) -> u16 {
    let res = csum.wrapping_add(addend);
    res.wrapping_add((res < addend) as u16)
}

/// `csum16_sub`.
#[must_use]
pub const fn csum16_sub(csum: u16, addend: u16) -> u16 {
    csum16_add(csum, !addend)
}

/// `csum_replace4`: update checksum `sum` for a 32-bit field changing from `from` to `to`.
#[must_use]
pub const fn csum_replace4(sum: u16, from: u32, to: u32) -> u16 {
    let tmp = csum_sub(!(sum as u32), from);
    csum_fold(csum_add(tmp, to))
}

/// `csum_replace2`: update checksum `sum` for a 16-bit field changing from `from` to `to`.
#[must_use]
pub const fn csum_replace2(sum: u16, from: u16, to: u16) -> u16 {
    !csum16_add(csum16_sub(!sum, from), to)
}

/// `csum_replace_by_diff`: apply a precomputed 32-bit difference (from `bpf_csum_diff`).
#[must_use]
pub const fn csum_replace_by_diff(sum: u16, diff: u32) -> u16 {
    csum_fold(csum_add(diff, !(sum as u32)))
}

/// x86-64 `csum_partial`: the one's-complement sum of `data` as little-endian 64-bit words
/// (a short tail zero-padded), plus `seed`, folded to 32 bits with end-around carries
/// (`from64to32`). `data` is taken to start 8-byte aligned, as the helper's scratch buffer is.
#[must_use]
pub fn csum_partial(data: &[u8], seed: u32) -> u32 {
    let mut sum = u64::from(seed);
    let add = |sum: u64, v: u64| {
        let (s, carry) = sum.overflowing_add(v);
        s + u64::from(carry)
    };
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        sum = add(sum, u64::from_le_bytes(w));
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut w = [0u8; 8];
        w[..tail.len()].copy_from_slice(tail);
        sum = add(sum, u64::from_le_bytes(w));
    }
    let x = (sum & 0xffff_ffff) + (sum >> 32);
    let x = (x & 0xffff_ffff) + (x >> 32);
    x as u32
}

/// `csum_from32to16`: a 32-bit sum folded to 16 bits (not complemented).
#[must_use]
pub const fn csum_from32to16(sum: u32) -> u16 {
    (sum.wrapping_add(sum.rotate_right(16)) >> 16) as u16
}

/// `bpf_csum_diff`'s arithmetic (Linux 6.12 and later): the checksum difference of replacing
/// `from` with `to`, seeded with `seed`, folded to 16 bits so that every architecture returns
/// the same value. Any sizes: a tail shorter than 8 bytes is summed zero-padded, as x86-64's
/// `csum_partial` does.
#[must_use]
pub fn csum_diff(from: &[u8], to: &[u8], seed: u32) -> u32 {
    let ret = match (from.is_empty(), to.is_empty()) {
        (false, false) => csum_sub(csum_partial(to, seed), csum_partial(from, 0)),
        (true, false) => csum_partial(to, seed),
        (false, true) => !csum_partial(from, !seed),
        (true, true) => seed,
    };
    u32::from(csum_from32to16(ret))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checksum of a whole header computed the RFC 1071 way: sum 16-bit big-endian words,
    /// fold, complement.
    fn rfc1071(bytes: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for w in bytes.chunks(2) {
            sum += u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    /// An IPv4 header (RFC 791 example-like values) with its checksum field zeroed.
    fn header() -> [u8; 20] {
        [
            0x45, 0x00, 0x00, 0x54, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ]
    }

    fn with_checksum(mut h: [u8; 20]) -> [u8; 20] {
        h[10] = 0;
        h[11] = 0;
        let c = rfc1071(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h
    }

    /// Incremental updates (RFC 1624) must give the checksum a full recomputation gives.
    #[test]
    fn replace4_matches_a_full_recomputation() {
        let before = with_checksum(header());
        let mut after = before;
        after[16..20].copy_from_slice(&[10, 0, 0, 7]); // new destination address
        let expected = with_checksum(after);
        let sum = u16::from_le_bytes([before[10], before[11]]);
        let from = u32::from_le_bytes([before[16], before[17], before[18], before[19]]);
        let to = u32::from_le_bytes([after[16], after[17], after[18], after[19]]);
        let new = csum_replace4(sum, from, to);
        assert_eq!(new.to_le_bytes(), [expected[10], expected[11]]);
    }

    #[test]
    fn replace2_matches_a_full_recomputation() {
        let before = with_checksum(header());
        let mut after = before;
        after[8] = 0x3f; // TTL 64 -> 63
        let expected = with_checksum(after);
        let sum = u16::from_le_bytes([before[10], before[11]]);
        let from = u16::from_le_bytes([before[8], before[9]]);
        let to = u16::from_le_bytes([after[8], after[9]]);
        assert_eq!(
            csum_replace2(sum, from, to).to_le_bytes(),
            [expected[10], expected[11]]
        );
    }

    #[test]
    fn diff_then_replace_by_diff_matches_a_full_recomputation() {
        let before = with_checksum(header());
        let mut after = before;
        after[12..16].copy_from_slice(&[172, 16, 5, 9]);
        let expected = with_checksum(after);
        let diff = csum_diff(&before[12..16], &after[12..16], 0);
        let sum = u16::from_le_bytes([before[10], before[11]]);
        assert_eq!(
            csum_replace_by_diff(sum, diff).to_le_bytes(),
            [expected[10], expected[11]]
        );
    }

    #[test]
    fn partial_sum_of_a_header_verifies() {
        // A correct header sums to 0xffff (folds to 0).
        let h = with_checksum(header());
        assert_eq!(csum_fold(csum_partial(&h, 0)), 0);
    }
}
