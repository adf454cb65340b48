//! Packet helpers as callable bodies: `bpf_skb_load_bytes`, `bpf_skb_store_bytes`,
//! `bpf_l3_csum_replace`, `bpf_l4_csum_replace`, `bpf_csum_diff`, `bpf_redirect`,
//! `bpf_clone_redirect`, with their
//! prototypes. The arithmetic lives in [`super::skb_ops`] and [`super::csum`]; this file is the
//! ABI glue.

use super::abi::{self, ret};
use super::csum;
use super::def::{args, changes_pkt, proto, Body, HelperDef, Types};
use super::skb_ops;
use crate::prog::skb::SkBuff;
use bpfkit_verifier::env::{ArgType as A, RetType as R};
use bpfkit_vm::Helper;
use std::cell::Cell;

/// The socket buffer behind an `ARG_PTR_TO_CTX` of a socket or tc program.
///
/// # Safety
/// `ctx` must be the context pointer the runtime passed in r1 of an skb program: the address
/// of a live [`SkBuff`] (its context is its first field) not otherwise borrowed during the call.
pub(crate) unsafe fn skb<'a>(ctx: u64) -> &'a mut SkBuff {
    // SAFETY: the caller guarantees `ctx` is the address of a live, unaliased SkBuff.
    unsafe { &mut *(ctx as *mut SkBuff) }
}

extern "C" fn skb_load_bytes(ctx: u64, off: u64, to: u64, len: u64, _: u64) -> u64 {
    // SAFETY: ARG_PTR_TO_CTX of an skb program, then ARG_PTR_TO_UNINIT_MEM with its
    // ARG_CONST_SIZE (`len` writable bytes, on the stack or in a map value, never the skb).
    unsafe {
        let out = abi::bytes_mut(to, len as usize);
        ret(skb_ops::load_bytes(skb(ctx), off as u32, out))
    }
}

extern "C" fn skb_store_bytes(ctx: u64, off: u64, from: u64, len: u64, flags: u64) -> u64 {
    // SAFETY: ARG_PTR_TO_CTX, then ARG_PTR_TO_MEM with its ARG_CONST_SIZE. The source is copied
    // first, since it may be packet memory of the same skb.
    unsafe {
        let data = abi::bytes(from, len as usize).to_vec();
        ret(skb_ops::store_bytes(skb(ctx), off as u32, &data, flags))
    }
}

extern "C" fn l3_csum_replace(ctx: u64, off: u64, from: u64, to: u64, flags: u64) -> u64 {
    // SAFETY: ARG_PTR_TO_CTX of an skb program.
    ret(skb_ops::l3_csum_replace(
        unsafe { skb(ctx) },
        off as u32,
        from,
        to,
        flags,
    ))
}

extern "C" fn l4_csum_replace(ctx: u64, off: u64, from: u64, to: u64, flags: u64) -> u64 {
    // SAFETY: ARG_PTR_TO_CTX of an skb program.
    ret(skb_ops::l4_csum_replace(
        unsafe { skb(ctx) },
        off as u32,
        from,
        to,
        flags,
    ))
}

/// `-ENOMEM`.
const ENOMEM: i64 = -12;

extern "C" fn skb_pull_data(ctx: u64, len: u64, _: u64, _: u64, _: u64) -> u64 {
    // bpf_try_make_writable(skb, len ?: skb_headlen(skb)): bpfkit's socket buffers are linear
    // and never cloned, so the whole packet is always writable head data; asking for more than
    // the packet is -ENOMEM (skb_ensure_writable).
    // SAFETY: ARG_PTR_TO_CTX of an skb program.
    let skb = unsafe { skb(ctx) };
    let len = len as u32 as usize;
    if len > skb.packet().len() {
        return ret(ENOMEM);
    }
    skb.refresh();
    0
}

/// `bpf_csum_diff`: since Linux 6.12 (the per-CPU scratch buffer removed) it sums buffers of
/// any size, multiples of 4 or not, with no error return (net/core/filter.c).
extern "C" fn csum_diff(from: u64, from_size: u64, to: u64, to_size: u64, seed: u64) -> u64 {
    let (fs, ts) = (from_size as u32, to_size as u32);
    // SAFETY: two ARG_PTR_TO_MEM arguments, each with its ARG_CONST_SIZE_OR_ZERO.
    let (from, to) = unsafe { (abi::bytes(from, fs as usize), abi::bytes(to, ts as usize)) };
    u64::from(csum::csum_diff(from, to, seed as u32))
}

/// `BPF_F_INGRESS`
pub const BPF_F_INGRESS: u64 = 1;
/// `TC_ACT_SHOT`
pub const TC_ACT_SHOT: u64 = 2;
/// `TC_ACT_REDIRECT`
pub const TC_ACT_REDIRECT: u64 = 7;
/// `XDP_ABORTED`
pub const XDP_ABORTED: u64 = 0;
/// `XDP_REDIRECT`
pub const XDP_REDIRECT: u64 = 4;

thread_local! {
    /// The last redirect target of this thread's program run (`bpf_redirect_info`):
    /// `(ifindex, flags)`.
    static REDIRECT: Cell<Option<(u32, u64)>> = const { Cell::new(None) };
}

/// Takes the redirect a program requested during its run, if any.
pub fn take_redirect() -> Option<(u32, u64)> {
    REDIRECT.with(Cell::take)
}

extern "C" fn redirect_tc(ifindex: u64, flags: u64, _: u64, _: u64, _: u64) -> u64 {
    if flags & !BPF_F_INGRESS != 0 {
        return TC_ACT_SHOT;
    }
    REDIRECT.with(|r| r.set(Some((ifindex as u32, flags))));
    TC_ACT_REDIRECT
}

extern "C" fn redirect_xdp(ifindex: u64, flags: u64, _: u64, _: u64, _: u64) -> u64 {
    // bpf_xdp_redirect: no flags are valid; the failure verdict is the low bits of flags,
    // XDP_ABORTED for any flag the helper does not know.
    if flags != 0 {
        return XDP_ABORTED;
    }
    REDIRECT.with(|r| r.set(Some((ifindex as u32, flags))));
    XDP_REDIRECT
}

/// `-EBADMSG`
const EBADMSG: i64 = -74;

/// `bpf_clone_redirect(skb, ifindex, flags)`: a clone of the packet leaves through device
/// `ifindex`. bpfkit models one device, the loopback device of test runs
/// ([`LOOPBACK_IFINDEX`](crate::prog::run::LOOPBACK_IFINDEX)), which accepts the clone (0); any
/// other index is a missing device (`-EINVAL`), as is any flag but `BPF_F_INGRESS`. A GSO size
/// without a GSO type (only a test-run context can make one) is `-EBADMSG`. The original
/// packet is unchanged.
pub fn clone_redirect(skb: &SkBuff, ifindex: u32, flags: u64) -> i64 {
    if flags & !BPF_F_INGRESS != 0 {
        return skb_ops::EINVAL;
    }
    if skb.ctx().get_u32(crate::prog::skb::field::GSO_SIZE) != 0 {
        return EBADMSG;
    }
    if ifindex != crate::prog::run::LOOPBACK_IFINDEX {
        return skb_ops::EINVAL;
    }
    0
}

extern "C" fn clone_redirect_fn(ctx: u64, ifindex: u64, flags: u64, _: u64, _: u64) -> u64 {
    // SAFETY: ARG_PTR_TO_CTX of a tc program.
    ret(clone_redirect(unsafe { skb(ctx) }, ifindex as u32, flags))
}

/// The definitions.
pub fn defs() -> Vec<HelperDef> {
    let csum_args = || {
        args([
            A::PtrToCtx,
            A::Anything,
            A::Anything,
            A::Anything,
            A::Anything,
        ])
    };
    vec![
        HelperDef {
            id: 13,
            proto: changes_pkt(proto(
                "bpf_clone_redirect",
                args([A::PtrToCtx, A::Anything, A::Anything]),
                R::Integer,
                false,
            )),
            body: Body::Call(Helper::scalar(clone_redirect_fn)),
            types: Types::Tc,
        },
        HelperDef {
            id: 26,
            proto: proto(
                "bpf_skb_load_bytes",
                args([A::PtrToCtx, A::Anything, A::PtrToUninitMem, A::ConstSize]),
                R::Integer,
                false,
            ),
            body: Body::Call(Helper::scalar(skb_load_bytes)),
            types: Types::SocketAndTc,
        },
        HelperDef {
            id: 9,
            proto: changes_pkt(proto(
                "bpf_skb_store_bytes",
                args([
                    A::PtrToCtx,
                    A::Anything,
                    A::PtrToMem,
                    A::ConstSize,
                    A::Anything,
                ]),
                R::Integer,
                false,
            )),
            body: Body::Call(Helper::scalar(skb_store_bytes)),
            types: Types::Tc,
        },
        HelperDef {
            id: 39,
            proto: changes_pkt(proto(
                "bpf_skb_pull_data",
                args([A::PtrToCtx, A::Anything]),
                R::Integer,
                false,
            )),
            body: Body::Call(Helper::scalar(skb_pull_data)),
            types: Types::Tc,
        },
        HelperDef {
            id: 10,
            proto: changes_pkt(proto("bpf_l3_csum_replace", csum_args(), R::Integer, false)),
            body: Body::Call(Helper::scalar(l3_csum_replace)),
            types: Types::Tc,
        },
        HelperDef {
            id: 11,
            proto: changes_pkt(proto("bpf_l4_csum_replace", csum_args(), R::Integer, false)),
            body: Body::Call(Helper::scalar(l4_csum_replace)),
            types: Types::Tc,
        },
        HelperDef {
            id: 28,
            proto: proto(
                "bpf_csum_diff",
                args([
                    A::PtrToMemOrNull,
                    A::ConstSizeOrZero,
                    A::PtrToMemOrNull,
                    A::ConstSizeOrZero,
                    A::Anything,
                ]),
                R::Integer,
                false,
            ),
            body: Body::Call(Helper::scalar(csum_diff)),
            types: Types::TcAndXdp,
        },
        HelperDef {
            id: 23,
            proto: proto(
                "bpf_redirect",
                args([A::Anything, A::Anything]),
                R::Integer,
                false,
            ),
            body: Body::Call(Helper::scalar(redirect_tc)),
            types: Types::Tc,
        },
        HelperDef {
            id: 23,
            proto: proto(
                "bpf_redirect",
                args([A::Anything, A::Anything]),
                R::Integer,
                false,
            ),
            body: Body::Call(Helper::scalar(redirect_xdp)),
            types: Types::Xdp,
        },
    ]
}
