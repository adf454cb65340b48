//! Tunnel metadata helpers of tc programs: `bpf_skb_set_tunnel_key` and
//! `bpf_skb_get_tunnel_key` (net/core/filter.c), with their prototypes.
//!
//! The kernel attaches the key to the skb as a per-CPU metadata dst (`struct ip_tunnel_info`,
//! in transmit orientation) and reads it back from there; bpfkit keeps the same information in
//! [`SkBuff::tunnel`]. Two observable kernel details are kept: the set helper stores the key as
//! a *transmit* key (remote address as destination) while the get helper reports a *receive*
//! view (source address as remote), so a key read back after setting it has its remote and local
//! addresses swapped; and the flags word reads back as the kernel's `TUNNEL_*` bits.

use super::abi::{self, ret};
use super::def::{args, proto, Body, HelperDef, Types};
use super::packet::skb;
use crate::prog::skb::SkBuff;
use bpfkit_verifier::env::{ArgType as A, RetType as R};
use bpfkit_vm::Helper;

/// `sizeof(struct bpf_tunnel_key)`.
pub const TUNNEL_KEY_SIZE: usize = 44;
/// `BPF_F_TUNINFO_IPV6`: the key holds IPv6 addresses.
pub const BPF_F_TUNINFO_IPV6: u64 = 1 << 0;
/// `BPF_F_ZERO_CSUM_TX` (set only): no UDP checksum on transmit.
pub const BPF_F_ZERO_CSUM_TX: u64 = 1 << 1;
/// `BPF_F_DONT_FRAGMENT` (set only).
pub const BPF_F_DONT_FRAGMENT: u64 = 1 << 2;
/// `BPF_F_SEQ_NUMBER` (set only).
pub const BPF_F_SEQ_NUMBER: u64 = 1 << 3;
/// `BPF_F_NO_TUNNEL_KEY` (set only): no key in the tunnel header.
pub const BPF_F_NO_TUNNEL_KEY: u64 = 1 << 4;
/// `BPF_F_TUNINFO_FLAGS` (get only): report the tunnel flags in `tunnel_flags`.
pub const BPF_F_TUNINFO_FLAGS: u64 = 1 << 4;

/// `-EINVAL`
const EINVAL: i64 = -22;
/// `-EPROTO`
const EPROTO: i64 = -71;

/// `IP_TUNNEL_*_BIT` numbers, which `ip_tunnel_flags_to_be16` reports as `1 << bit`.
mod bit {
    pub const CSUM: u16 = 0;
    pub const KEY: u16 = 2;
    pub const SEQ: u16 = 3;
    pub const DONT_FRAGMENT: u16 = 8;
    pub const NOCACHE: u16 = 13;
}

/// `IPV6_FLOWLABEL_MASK` in host order.
const FLOWLABEL_MASK: u32 = 0x000f_ffff;

/// The tunnel metadata of an skb (`struct ip_tunnel_info` in transmit orientation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TunnelInfo {
    /// IPv6 addresses (`IP_TUNNEL_INFO_IPV6`).
    pub ipv6: bool,
    /// `tun_id` (the key's 32-bit tunnel id).
    pub id: u32,
    /// Type of service.
    pub tos: u8,
    /// Time to live.
    pub ttl: u8,
    /// `tun_flags` as `1 << IP_TUNNEL_*_BIT` bits.
    pub flags: u16,
    /// IPv6 flow label (20 bits).
    pub label: u32,
    /// Source address (IPv4 in the first 4 bytes), network order.
    pub src: [u8; 16],
    /// Destination address, network order.
    pub dst: [u8; 16],
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(w)
}

/// `bpf_skb_set_tunnel_key(skb, from, size, flags)`.
pub fn set_tunnel_key(skb: &mut SkBuff, from: &[u8], flags: u64) -> i64 {
    let known = BPF_F_TUNINFO_IPV6
        | BPF_F_ZERO_CSUM_TX
        | BPF_F_DONT_FRAGMENT
        | BPF_F_SEQ_NUMBER
        | BPF_F_NO_TUNNEL_KEY;
    if flags & !known != 0 {
        return EINVAL;
    }
    // The older, shorter layouts are accepted and zero-extended.
    if !matches!(from.len(), TUNNEL_KEY_SIZE | 28 | 24 | 22 | 8) {
        return EINVAL;
    }
    let mut key = [0u8; TUNNEL_KEY_SIZE];
    key[..from.len()].copy_from_slice(from);
    let ipv6 = flags & BPF_F_TUNINFO_IPV6 != 0;
    let label = u32_at(&key, 24);
    let ext = u16::from_le_bytes([key[22], key[23]]);
    if (!ipv6 && label != 0) || ext != 0 {
        return EINVAL;
    }
    let mut tun_flags = 1 << bit::NOCACHE;
    if flags & BPF_F_DONT_FRAGMENT != 0 {
        tun_flags |= 1 << bit::DONT_FRAGMENT;
    }
    if flags & BPF_F_ZERO_CSUM_TX == 0 {
        tun_flags |= 1 << bit::CSUM;
    }
    if flags & BPF_F_SEQ_NUMBER != 0 {
        tun_flags |= 1 << bit::SEQ;
    }
    if flags & BPF_F_NO_TUNNEL_KEY == 0 {
        tun_flags |= 1 << bit::KEY;
    }
    let mut info = TunnelInfo {
        ipv6,
        id: u32_at(&key, 0),
        tos: key[20],
        ttl: key[21],
        flags: tun_flags,
        ..TunnelInfo::default()
    };
    if ipv6 {
        info.dst.copy_from_slice(&key[4..20]);
        info.src.copy_from_slice(&key[28..44]);
        info.label = label & FLOWLABEL_MASK;
    } else {
        // cpu_to_be32 of the host-order addresses.
        info.dst[..4].copy_from_slice(&u32_at(&key, 4).to_be_bytes());
        info.src[..4].copy_from_slice(&u32_at(&key, 28).to_be_bytes());
    }
    skb.tunnel = Some(info);
    0
}

/// `bpf_skb_get_tunnel_key(skb, to, size, flags)`: fills `to` (zeroed on error).
pub fn get_tunnel_key(skb: &SkBuff, to: &mut [u8], flags: u64) -> i64 {
    let r = fill_tunnel_key(skb, to, flags);
    if r != 0 {
        to.fill(0);
    }
    r
}

fn fill_tunnel_key(skb: &SkBuff, to: &mut [u8], flags: u64) -> i64 {
    let Some(info) = skb.tunnel else {
        return EINVAL;
    };
    if flags & !(BPF_F_TUNINFO_IPV6 | BPF_F_TUNINFO_FLAGS) != 0 {
        return EINVAL;
    }
    if info.ipv6 != (flags & BPF_F_TUNINFO_IPV6 != 0) {
        return EPROTO;
    }
    match to.len() {
        TUNNEL_KEY_SIZE | 28 | 24 | 22 => {}
        // The oldest layout (IPv4 only).
        8 if !info.ipv6 => {}
        _ => return EINVAL,
    }
    let mut key = [0u8; TUNNEL_KEY_SIZE];
    key[0..4].copy_from_slice(&info.id.to_le_bytes());
    key[20] = info.tos;
    key[21] = info.ttl;
    if flags & BPF_F_TUNINFO_FLAGS != 0 {
        // ip_tunnel_flags_to_be16: bit n becomes the big-endian 16-bit value 1 << n.
        key[22..24].copy_from_slice(&info.flags.to_be_bytes());
    }
    // The receive view: the source is the remote end.
    if info.ipv6 {
        key[4..20].copy_from_slice(&info.src);
        key[28..44].copy_from_slice(&info.dst);
        key[24..28].copy_from_slice(&info.label.to_le_bytes());
    } else {
        let host = |a: &[u8; 16]| u32::from_be_bytes([a[0], a[1], a[2], a[3]]);
        key[4..8].copy_from_slice(&host(&info.src).to_le_bytes());
        key[28..32].copy_from_slice(&host(&info.dst).to_le_bytes());
    }
    let n = to.len();
    to.copy_from_slice(&key[..n]);
    0
}

extern "C" fn skb_get_tunnel_key(ctx: u64, to: u64, size: u64, flags: u64, _: u64) -> u64 {
    // SAFETY: ARG_PTR_TO_CTX of a tc program, then ARG_PTR_TO_UNINIT_MEM with its
    // ARG_CONST_SIZE (stack or map value, never the skb itself).
    unsafe {
        let out = abi::bytes_mut(to, size as usize);
        ret(get_tunnel_key(skb(ctx), out, flags))
    }
}

extern "C" fn skb_set_tunnel_key(ctx: u64, from: u64, size: u64, flags: u64, _: u64) -> u64 {
    // SAFETY: ARG_PTR_TO_CTX, then ARG_PTR_TO_MEM with its ARG_CONST_SIZE; the key is copied
    // before the skb is borrowed mutably.
    unsafe {
        let key = abi::bytes(from, size as usize).to_vec();
        ret(set_tunnel_key(skb(ctx), &key, flags))
    }
}

/// The definitions.
pub fn defs() -> Vec<HelperDef> {
    vec![
        HelperDef {
            id: 20,
            proto: proto(
                "bpf_skb_get_tunnel_key",
                args([A::PtrToCtx, A::PtrToUninitMem, A::ConstSize, A::Anything]),
                R::Integer,
                false,
            ),
            body: Body::Call(Helper::scalar(skb_get_tunnel_key)),
            types: Types::Tc,
        },
        HelperDef {
            id: 21,
            proto: proto(
                "bpf_skb_set_tunnel_key",
                args([A::PtrToCtx, A::PtrToMem, A::ConstSize, A::Anything]),
                R::Integer,
                false,
            ),
            body: Body::Call(Helper::scalar(skb_set_tunnel_key)),
            types: Types::Tc,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4_key(id: u32, remote: u32, local: u32) -> [u8; TUNNEL_KEY_SIZE] {
        let mut k = [0u8; TUNNEL_KEY_SIZE];
        k[0..4].copy_from_slice(&id.to_le_bytes());
        k[4..8].copy_from_slice(&remote.to_le_bytes());
        k[20] = 7;
        k[21] = 64;
        k[28..32].copy_from_slice(&local.to_le_bytes());
        k
    }

    #[test]
    fn get_without_metadata_is_einval_and_zeroes() {
        let skb = SkBuff::boxed(&[0; 14]);
        let mut out = [0xffu8; TUNNEL_KEY_SIZE];
        assert_eq!(get_tunnel_key(&skb, &mut out, 0), EINVAL);
        assert_eq!(out, [0; TUNNEL_KEY_SIZE]);
    }

    #[test]
    fn set_then_get_swaps_remote_and_local() {
        let mut skb = SkBuff::boxed(&[0; 14]);
        assert_eq!(
            set_tunnel_key(&mut skb, &v4_key(5, 0x0a00_0001, 0x0a00_0002), 0),
            0
        );
        let mut out = [0u8; TUNNEL_KEY_SIZE];
        assert_eq!(get_tunnel_key(&skb, &mut out, 0), 0);
        assert_eq!(out, v4_key(5, 0x0a00_0002, 0x0a00_0001));
        assert_eq!(get_tunnel_key(&skb, &mut out, BPF_F_TUNINFO_IPV6), EPROTO);
        let mut odd = [0u8; 10];
        assert_eq!(get_tunnel_key(&skb, &mut odd, 0), EINVAL);
    }

    #[test]
    fn set_rejects_labels_without_ipv6_and_unknown_flags() {
        let mut skb = SkBuff::boxed(&[0; 14]);
        let mut k = v4_key(1, 2, 3);
        k[24] = 1;
        assert_eq!(set_tunnel_key(&mut skb, &k, 0), EINVAL);
        assert_eq!(set_tunnel_key(&mut skb, &v4_key(1, 2, 3), 1 << 5), EINVAL);
        assert_eq!(set_tunnel_key(&mut skb, &v4_key(1, 2, 3)[..10], 0), EINVAL);
        assert!(skb.tunnel.is_none());
    }
}
