//! Stack helpers: `bpf_get_stackid` (27) and `bpf_get_stack` (67) of kernel/bpf/stackmap.c,
//! with their prototypes, for tracing programs.
//!
//! bpfkit runs programs on events it is handed, not inside a kernel with stacks to walk: the
//! call chains a program sees are the ones the event source sets with [`with_call_chain`]
//! (innermost frame first, at most `perf_event_max_stack` frames used). Outside it both chains
//! are empty, so `bpf_get_stackid` returns `-EFAULT` ("no usable frames") and `bpf_get_stack`
//! returns 0 bytes, zero-filling the buffer, as the kernel does for an empty chain.

use std::cell::RefCell;

use super::abi::{self, ret};
use super::def::{args, proto, Body, HelperDef, Types};
use crate::maps::stack_trace::{
    BPF_F_SKIP_FIELD_MASK, BPF_F_USER_STACK, BPF_STACK_BUILD_ID_IP, BUILD_ID_ENTRY,
    PERF_EVENT_MAX_STACK,
};
use bpfkit_verifier::env::{ArgType as A, RetType as R};
use bpfkit_vm::Helper;

/// `BPF_F_USER_BUILD_ID`: `bpf_get_stack` writes `struct bpf_stack_build_id` entries.
pub const BPF_F_USER_BUILD_ID: u64 = 1 << 11;

const EINVAL: i64 = -22;
const EFAULT: i64 = -14;

/// The call chains of the event a program is running for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallChain {
    /// Kernel frames, innermost first.
    pub kernel: Vec<u64>,
    /// User-space frames, innermost first (`BPF_F_USER_STACK`).
    pub user: Vec<u64>,
}

thread_local! {
    static CHAIN: RefCell<CallChain> = RefCell::new(CallChain::default());
}

/// Runs `f` (a program run on this thread) with `chain` as the event's call chains, restoring
/// the previous ones afterwards.
pub fn with_call_chain<T>(chain: CallChain, f: impl FnOnce() -> T) -> T {
    let prev = CHAIN.with(|c| c.replace(chain));
    let out = f();
    CHAIN.with(|c| *c.borrow_mut() = prev);
    out
}

fn chain(user: bool) -> Vec<u64> {
    CHAIN.with(|c| {
        let c = c.borrow();
        let frames = if user { &c.user } else { &c.kernel };
        frames[..frames.len().min(PERF_EVENT_MAX_STACK as usize)].to_vec()
    })
}

extern "C" fn get_stackid(_ctx: u64, map: u64, flags: u64, _: u64, _: u64) -> u64 {
    // SAFETY: ARG_CONST_MAP_PTR of a stack trace map (the verifier checks the map type).
    let m = unsafe { abi::map(map) };
    let Some(st) = m.as_stack_trace() else {
        return ret(EINVAL);
    };
    ret(st.get_stackid(&chain(flags & BPF_F_USER_STACK != 0), flags))
}

/// `bpf_get_stack` into `buf`: the number of bytes of frames written, or a negative errno with
/// `buf` zeroed.
#[must_use]
pub fn get_stack_into(buf: &mut [u8], flags: u64) -> i64 {
    buf.fill(0);
    if flags & !(BPF_F_SKIP_FIELD_MASK | BPF_F_USER_STACK | BPF_F_USER_BUILD_ID) != 0 {
        return EINVAL;
    }
    let user = flags & BPF_F_USER_STACK != 0;
    let build_id = flags & BPF_F_USER_BUILD_ID != 0;
    if build_id && !user {
        return EINVAL;
    }
    let elem = if build_id { BUILD_ID_ENTRY } else { 8 };
    if !buf.len().is_multiple_of(elem) {
        return EINVAL;
    }
    let num_elem = buf.len() / elem;
    let skip = (flags & BPF_F_SKIP_FIELD_MASK) as usize;
    let max_depth = (num_elem + skip).min(PERF_EVENT_MAX_STACK as usize);
    let frames = chain(user);
    let frames = &frames[..frames.len().min(max_depth)];
    if frames.len() < skip {
        return EFAULT;
    }
    let ips = &frames[skip..];
    let n = ips.len().min(num_elem);
    for (i, ip) in ips[..n].iter().enumerate() {
        let e = &mut buf[i * elem..(i + 1) * elem];
        if build_id {
            // No build id is known: the kernel's fallback entry, status then the address.
            e[..4].copy_from_slice(&BPF_STACK_BUILD_ID_IP.to_ne_bytes());
            e[24..32].copy_from_slice(&ip.to_ne_bytes());
        } else {
            e.copy_from_slice(&ip.to_ne_bytes());
        }
    }
    (n * elem) as i64
}

extern "C" fn get_stack(_ctx: u64, buf: u64, size: u64, flags: u64, _: u64) -> u64 {
    // SAFETY: ARG_PTR_TO_UNINIT_MEM with its ARG_CONST_SIZE_OR_ZERO: `size` writable bytes.
    let buf = unsafe { abi::bytes_mut(buf, size as u32 as usize) };
    ret(get_stack_into(buf, flags))
}

/// The definitions.
pub fn defs() -> Vec<HelperDef> {
    vec![
        HelperDef {
            id: 27,
            proto: proto(
                "bpf_get_stackid",
                args([A::PtrToCtx, A::ConstMapPtr, A::Anything]),
                R::Integer,
                true,
            ),
            body: Body::Call(Helper::scalar(get_stackid)),
            types: Types::Tracing,
        },
        HelperDef {
            id: 67,
            proto: proto(
                "bpf_get_stack",
                args([
                    A::PtrToCtx,
                    A::PtrToUninitMem,
                    A::ConstSizeOrZero,
                    A::Anything,
                ]),
                R::Integer,
                true,
            ),
            body: Body::Call(Helper::scalar(get_stack)),
            types: Types::Tracing,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_stack_copies_frames_after_skip_and_zero_fills() {
        let chain = CallChain {
            kernel: vec![10, 20, 30],
            user: vec![7],
        };
        with_call_chain(chain, || {
            let mut buf = [0xffu8; 32];
            assert_eq!(get_stack_into(&mut buf, 1), 16);
            assert_eq!(buf[..8], 20u64.to_ne_bytes());
            assert_eq!(buf[8..16], 30u64.to_ne_bytes());
            assert_eq!(buf[16..], [0u8; 16]);
            assert_eq!(get_stack_into(&mut buf, 4), EFAULT);
            assert_eq!(get_stack_into(&mut buf, 3), 0);
            assert_eq!(get_stack_into(&mut buf[..12], 0), EINVAL);
            assert_eq!(get_stack_into(&mut buf, BPF_F_USER_BUILD_ID), EINVAL);
            assert_eq!(
                get_stack_into(&mut buf, BPF_F_USER_STACK | BPF_F_USER_BUILD_ID),
                32
            );
            assert_eq!(buf[24..32], 7u64.to_ne_bytes());
        });
        let mut buf = [1u8; 8];
        assert_eq!(get_stack_into(&mut buf, 0), 0);
        assert_eq!(buf, [0u8; 8]);
    }
}
