//! VLAN helpers of tc programs: `bpf_skb_vlan_push` and `bpf_skb_vlan_pop`
//! (net/core/filter.c over `skb_vlan_push` / `skb_vlan_pop` in net/core/skbuff.c).
//!
//! As in the kernel, the outermost tag lives in the skb's hardware-acceleration metadata
//! (`__sk_buff.vlan_present`, `vlan_tci`, `vlan_proto`), not in the packet bytes: the first push
//! only sets the metadata; a push while a tag is present first writes that tag into the packet
//! (after the two MAC addresses). A pop clears the metadata tag or, without one, removes the
//! tag in the packet; either way the next in-packet tag (if the protocol is still a VLAN one)
//! moves up into the metadata.

use super::def::{args, changes_pkt, proto, Body, HelperDef, Types};
use super::packet::skb;
use crate::prog::skb::{field, SkBuff};
use bpfkit_verifier::env::{ArgType as A, RetType as R};
use bpfkit_vm::Helper;

/// `ETH_P_8021Q`
pub const ETH_P_8021Q: u16 = 0x8100;
/// `ETH_P_8021AD`
pub const ETH_P_8021AD: u16 = 0x88a8;
/// `VLAN_HLEN`
const VLAN_HLEN: usize = 4;
/// `VLAN_ETH_HLEN`
const VLAN_ETH_HLEN: usize = 18;
/// Two MAC addresses.
const MACS: usize = 12;
/// `-ENOMEM`
const ENOMEM: i64 = -12;

/// `eth_type_vlan`
const fn is_vlan(proto: u16) -> bool {
    proto == ETH_P_8021Q || proto == ETH_P_8021AD
}

/// The metadata tag, if present: (protocol in host order, TCI).
fn hw_tag(skb: &SkBuff) -> Option<(u16, u16)> {
    let ctx = skb.ctx();
    (ctx.get_u32(field::VLAN_PRESENT) != 0).then(|| {
        let raw = ctx.get_u32(field::VLAN_PROTO) as u16;
        (
            u16::from_be_bytes(raw.to_le_bytes()),
            ctx.get_u32(field::VLAN_TCI) as u16,
        )
    })
}

/// `__vlan_hwaccel_put_tag` / `__vlan_hwaccel_clear_tag`. The uapi fields hold what the
/// kernel's context rewrite loads: `vlan_proto` as the raw network-order half-word.
fn set_hw_tag(skb: &mut SkBuff, tag: Option<(u16, u16)>) {
    let (present, proto, tci) = match tag {
        Some((p, t)) => (1, u32::from(u16::from_le_bytes(p.to_be_bytes())), t),
        None => (0, 0, 0),
    };
    let ctx = skb.ctx_mut();
    ctx.set_u32(field::VLAN_PRESENT, present);
    ctx.set_u32(field::VLAN_PROTO, proto);
    ctx.set_u32(field::VLAN_TCI, u32::from(tci));
}

/// `skb_vlan_push(skb, vlan_proto, vlan_tci)` with the helper's protocol check: anything but
/// 802.1Q and 802.1ad (host order here) becomes 802.1Q.
pub fn vlan_push(skb: &mut SkBuff, vlan_proto: u16, vlan_tci: u16) -> i64 {
    let vlan_proto = if is_vlan(vlan_proto) {
        vlan_proto
    } else {
        ETH_P_8021Q
    };
    if let Some((old_proto, old_tci)) = hw_tag(skb) {
        // __vlan_insert_tag: four bytes in front, the MAC addresses moved up, the tag after them.
        skb.push(VLAN_HLEN);
        let p = skb.packet_mut();
        let n = MACS.min(p.len() - VLAN_HLEN);
        p.copy_within(VLAN_HLEN..VLAN_HLEN + n, 0);
        if let Some(tag) = p.get_mut(MACS..MACS + VLAN_HLEN) {
            tag[..2].copy_from_slice(&old_proto.to_be_bytes());
            tag[2..].copy_from_slice(&old_tci.to_be_bytes());
        }
        skb.set_protocol(old_proto);
    }
    set_hw_tag(skb, Some((vlan_proto, vlan_tci)));
    skb.refresh();
    0
}

/// `__skb_vlan_pop`: removes the tag in the packet, sets the protocol from the encapsulated
/// type (`vlan_set_encap_proto`) and returns the TCI.
fn pop_packet_tag(skb: &mut SkBuff) -> Result<u16, i64> {
    if skb.packet().len() < VLAN_ETH_HLEN {
        // skb_ensure_writable: pskb_may_pull fails.
        return Err(ENOMEM);
    }
    let p = skb.packet_mut();
    let tci = u16::from_be_bytes([p[14], p[15]]);
    let encap = u16::from_be_bytes([p[16], p[17]]);
    let proto = if encap >= 0x0600 {
        encap
    } else if p.get(18..20) == Some(&[0xff, 0xff]) {
        0x0001 // ETH_P_802_3
    } else {
        0x0004 // ETH_P_802_2
    };
    p.copy_within(0..MACS, VLAN_HLEN);
    skb.pull(VLAN_HLEN);
    skb.set_protocol(proto);
    Ok(tci)
}

/// `skb_vlan_pop(skb)`.
pub fn vlan_pop(skb: &mut SkBuff) -> i64 {
    let r = vlan_pop_inner(skb);
    skb.refresh();
    r
}

fn vlan_pop_inner(skb: &mut SkBuff) -> i64 {
    if hw_tag(skb).is_some() {
        set_hw_tag(skb, None);
    } else {
        if !is_vlan(skb.protocol()) {
            return 0;
        }
        if let Err(e) = pop_packet_tag(skb) {
            return e;
        }
    }
    // Move the next tag in the packet up into the metadata.
    let proto = skb.protocol();
    if !is_vlan(proto) {
        return 0;
    }
    match pop_packet_tag(skb) {
        Ok(tci) => {
            set_hw_tag(skb, Some((proto, tci)));
            0
        }
        Err(e) => e,
    }
}

extern "C" fn skb_vlan_push(ctx: u64, vlan_proto: u64, vlan_tci: u64, _: u64, _: u64) -> u64 {
    // The __be16 argument as the program passed it (network order in memory).
    let proto = u16::from_be_bytes((vlan_proto as u16).to_le_bytes());
    // SAFETY: ARG_PTR_TO_CTX of a tc program.
    super::abi::ret(vlan_push(unsafe { skb(ctx) }, proto, vlan_tci as u16))
}

extern "C" fn skb_vlan_pop(ctx: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    // SAFETY: ARG_PTR_TO_CTX of a tc program.
    super::abi::ret(vlan_pop(unsafe { skb(ctx) }))
}

/// The definitions.
pub fn defs() -> Vec<HelperDef> {
    vec![
        HelperDef {
            id: 18,
            proto: changes_pkt(proto(
                "bpf_skb_vlan_push",
                args([A::PtrToCtx, A::Anything, A::Anything]),
                R::Integer,
                false,
            )),
            body: Body::Call(Helper::scalar(skb_vlan_push)),
            types: Types::Tc,
        },
        HelperDef {
            id: 19,
            proto: changes_pkt(proto(
                "bpf_skb_vlan_pop",
                args([A::PtrToCtx]),
                R::Integer,
                false,
            )),
            body: Body::Call(Helper::scalar(skb_vlan_pop)),
            types: Types::Tc,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Vec<u8> {
        let mut f: Vec<u8> = (1..=12).collect();
        f.extend([0x08, 0x00, 0x45, 0, 0, 20]);
        f
    }

    #[test]
    fn first_push_is_metadata_second_goes_into_the_packet() {
        let mut skb = SkBuff::boxed(&frame());
        skb.set_protocol(0x0800);
        assert_eq!(vlan_push(&mut skb, ETH_P_8021Q, 100), 0);
        assert_eq!(skb.packet(), &frame()[..], "first tag is metadata only");
        assert_eq!(hw_tag(&skb), Some((ETH_P_8021Q, 100)));
        assert_eq!(vlan_push(&mut skb, ETH_P_8021AD, 200), 0);
        let mut expected: Vec<u8> = (1..=12).collect();
        expected.extend([0x81, 0x00, 0, 100, 0x08, 0x00, 0x45, 0, 0, 20]);
        assert_eq!(skb.packet(), &expected[..]);
        assert_eq!(skb.protocol(), ETH_P_8021Q);
        assert_eq!(hw_tag(&skb), Some((ETH_P_8021AD, 200)));
        // Pop: the metadata tag goes, the packet's tag moves up.
        assert_eq!(vlan_pop(&mut skb), 0);
        assert_eq!(skb.packet(), &frame()[..]);
        assert_eq!(hw_tag(&skb), Some((ETH_P_8021Q, 100)));
        assert_eq!(skb.protocol(), 0x0800);
        assert_eq!(vlan_pop(&mut skb), 0);
        assert_eq!(hw_tag(&skb), None);
    }

    #[test]
    fn unknown_protocols_become_8021q_and_short_tagged_packets_fail() {
        let mut skb = SkBuff::boxed(&frame());
        assert_eq!(vlan_push(&mut skb, 0x1234, 0xffff), 0);
        assert_eq!(hw_tag(&skb), Some((ETH_P_8021Q, 0xffff)));
        let mut short: Vec<u8> = vec![0; 12];
        short.extend([0x81, 0x00, 0, 1]);
        let mut skb = SkBuff::boxed(&short);
        skb.set_protocol(ETH_P_8021Q);
        assert_eq!(vlan_pop(&mut skb), ENOMEM);
    }
}
