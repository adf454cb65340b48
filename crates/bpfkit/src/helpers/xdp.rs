//! XDP helpers: `bpf_xdp_adjust_head` and `bpf_xdp_adjust_tail` (net/core/filter.c), with
//! their prototypes. The buffer arithmetic is [`XdpBuff::adjust_head`] and
//! [`XdpBuff::adjust_tail`]; the verifier forgets packet pointers after the call
//! (`changes_pkt_data`), and the context's pointers are refreshed by the buffer.

use super::abi::ret;
use super::def::{args, changes_pkt, proto, Body, HelperDef, Types};
use crate::prog::xdp::XdpBuff;
use bpfkit_verifier::env::{ArgType as A, RetType as R};
use bpfkit_vm::Helper;

extern "C" fn xdp_adjust_head(ctx: u64, offset: u64, _: u64, _: u64, _: u64) -> u64 {
    // SAFETY: ARG_PTR_TO_CTX of an XDP program: the address of the live XdpBuff the runtime
    // passed in r1 (its context is its first field), not otherwise borrowed during the call.
    let xdp = unsafe { &mut *(ctx as *mut XdpBuff) };
    // The kernel's `int offset`.
    ret(xdp.adjust_head(offset as u32 as i32))
}

extern "C" fn xdp_adjust_tail(ctx: u64, offset: u64, _: u64, _: u64, _: u64) -> u64 {
    // SAFETY: as in `xdp_adjust_head`.
    let xdp = unsafe { &mut *(ctx as *mut XdpBuff) };
    ret(xdp.adjust_tail(offset as u32 as i32))
}

/// The definitions.
pub fn defs() -> Vec<HelperDef> {
    vec![
        HelperDef {
            id: 44,
            proto: changes_pkt(proto(
                "bpf_xdp_adjust_head",
                args([A::PtrToCtx, A::Anything]),
                R::Integer,
                false,
            )),
            body: Body::Call(Helper::scalar(xdp_adjust_head)),
            types: Types::Xdp,
        },
        HelperDef {
            id: 65,
            proto: changes_pkt(proto(
                "bpf_xdp_adjust_tail",
                args([A::PtrToCtx, A::Anything]),
                R::Integer,
                false,
            )),
            body: Body::Call(Helper::scalar(xdp_adjust_tail)),
            types: Types::Xdp,
        },
    ]
}
