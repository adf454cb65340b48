//! `bpf_perf_event_output` (25) in its three kernel forms, with their prototypes:
//! `bpf_perf_event_output_proto` for tracing programs (kernel/trace/bpf_trace.c), and
//! `bpf_skb_event_output_proto` / `bpf_xdp_event_output_proto` for packet programs
//! (net/core/filter.c), whose flags' bits 32..52 (`BPF_F_CTXLEN_MASK`) ask for that many packet
//! bytes to follow the data in the sample. The array side is
//! [`PerfEventArray::output`](crate::maps::PerfEventArray::output).

use super::abi::{self, ret};
use super::def::{args, proto, Body, HelperDef, Types};
use super::packet::skb;
use crate::maps::perf_event_array::{BPF_F_CTXLEN_MASK, BPF_F_INDEX_MASK};
use crate::prog::xdp::XdpBuff;
use bpfkit_verifier::env::{ArgType as A, RetType as R};
use bpfkit_vm::{Helper, HelperFn};

const EINVAL: i64 = -22;
const EFAULT: i64 = -14;

/// Writes a sample of `data` then `ctx_bytes` to the array behind `map`.
///
/// # Safety
/// `map` is an `ARG_CONST_MAP_PTR` (a live map) and `data` points to `size` readable bytes.
unsafe fn output(map: u64, flags: u64, data: u64, size: u64, ctx_bytes: &[u8]) -> u64 {
    // SAFETY: the caller's contract.
    let (m, data) = unsafe { (abi::map(map), abi::bytes(data, size as usize)) };
    match m.as_perf_event_array() {
        Some(arr) => ret(arr.output(flags, &[data, ctx_bytes])),
        None => ret(EINVAL),
    }
}

extern "C" fn perf_event_output_tracing(
    _ctx: u64,
    map: u64,
    flags: u64,
    data: u64,
    size: u64,
) -> u64 {
    if flags & !BPF_F_INDEX_MASK != 0 {
        return ret(EINVAL);
    }
    // SAFETY: ARG_CONST_MAP_PTR of a perf event array (the verifier checks the map type), then
    // ARG_PTR_TO_MEM | MEM_RDONLY with its ARG_CONST_SIZE_OR_ZERO.
    unsafe { output(map, flags, data, size, &[]) }
}

extern "C" fn skb_event_output(ctx: u64, map: u64, flags: u64, data: u64, size: u64) -> u64 {
    if flags & !(BPF_F_CTXLEN_MASK | BPF_F_INDEX_MASK) != 0 {
        return ret(EINVAL);
    }
    let ctx_len = ((flags & BPF_F_CTXLEN_MASK) >> 32) as usize;
    // SAFETY: ARG_PTR_TO_CTX of a socket or tc program (a live SkBuff), not written during the
    // call; then the map and memory arguments as above.
    unsafe {
        let skb = skb(ctx);
        let Some(bytes) = skb.packet().get(..ctx_len) else {
            return ret(EFAULT);
        };
        output(map, flags & BPF_F_INDEX_MASK, data, size, bytes)
    }
}

extern "C" fn xdp_event_output(ctx: u64, map: u64, flags: u64, data: u64, size: u64) -> u64 {
    if flags & !(BPF_F_CTXLEN_MASK | BPF_F_INDEX_MASK) != 0 {
        return ret(EINVAL);
    }
    let ctx_len = ((flags & BPF_F_CTXLEN_MASK) >> 32) as usize;
    // SAFETY: ARG_PTR_TO_CTX of an XDP program: the address of the live XdpBuff the runtime
    // passed in r1 (its context is its first field), only read during the call.
    unsafe {
        let xdp = &*(ctx as *const XdpBuff);
        let Some(bytes) = xdp.packet().get(..ctx_len) else {
            return ret(EFAULT);
        };
        output(map, flags & BPF_F_INDEX_MASK, data, size, bytes)
    }
}

/// The definitions.
pub fn defs() -> Vec<HelperDef> {
    let def = |f: HelperFn, types: Types| HelperDef {
        id: 25,
        proto: proto(
            "bpf_perf_event_output",
            args([
                A::PtrToCtx,
                A::ConstMapPtr,
                A::Anything,
                A::PtrToMem,
                A::ConstSizeOrZero,
            ]),
            R::Integer,
            true,
        ),
        body: Body::Call(Helper::scalar(f)),
        types,
    };
    vec![
        def(perf_event_output_tracing, Types::Tracing),
        def(skb_event_output, Types::SocketAndTc),
        def(xdp_event_output, Types::Xdp),
    ]
}
