//! Ring buffer helpers: `bpf_ringbuf_reserve`, `bpf_ringbuf_submit`, `bpf_ringbuf_discard`
//! and `bpf_ringbuf_query` (kernel/bpf/ringbuf.c), with their prototypes. `bpf_ringbuf_output`
//! is with the other map helpers.
//!
//! Submit and discard get only the record pointer. The kernel finds the ring buffer from the
//! record header's page offset; bpfkit remembers, per thread, which ring buffer each record it
//! handed out belongs to. The verifier's reference tracking guarantees that a program releases
//! every record it reserved before it exits, on the thread that reserved it.

use super::abi;
use super::def::{args, proto, Body, HelperDef, Types};
use bpfkit_verifier::env::{ArgType as A, RetType as R};
use bpfkit_vm::Helper;
use std::cell::RefCell;

thread_local! {
    /// Records reserved by programs running on this thread: (data address, map address).
    static RESERVED: RefCell<Vec<(u64, u64)>> = const { RefCell::new(Vec::new()) };
}

extern "C" fn ringbuf_reserve(map: u64, size: u64, flags: u64, _: u64, _: u64) -> u64 {
    // SAFETY: ARG_CONST_MAP_PTR of a ring buffer map (the verifier checks the map type).
    let m = unsafe { abi::map(map) };
    let Some(rb) = m.as_ringbuf() else {
        return 0;
    };
    let p = rb.reserve(size, flags) as u64;
    if p != 0 {
        RESERVED.with(|r| r.borrow_mut().push((p, map)));
    }
    p
}

fn commit(data: u64, flags: u64, discard: bool) {
    let map = RESERVED.with(|r| {
        let mut r = r.borrow_mut();
        let i = r.iter().rposition(|&(d, _)| d == data)?;
        Some(r.swap_remove(i).1)
    });
    let Some(map) = map else {
        return;
    };
    // SAFETY: `map` is the map address the reserving call received as its ARG_CONST_MAP_PTR,
    // alive while the program that holds it runs (the record is released in the same run).
    let m = unsafe { abi::map(map) };
    if let Some(rb) = m.as_ringbuf() {
        rb.commit(data as *const u8, flags, discard);
    }
}

extern "C" fn ringbuf_submit(data: u64, flags: u64, _: u64, _: u64, _: u64) -> u64 {
    commit(data, flags, false);
    0
}

extern "C" fn ringbuf_discard(data: u64, flags: u64, _: u64, _: u64, _: u64) -> u64 {
    commit(data, flags, true);
    0
}

extern "C" fn ringbuf_query(map: u64, flags: u64, _: u64, _: u64, _: u64) -> u64 {
    // SAFETY: ARG_CONST_MAP_PTR of a ring buffer map.
    let m = unsafe { abi::map(map) };
    m.as_ringbuf().map_or(0, |rb| rb.query(flags))
}

/// The record size of a reservation: its `size` argument (r2).
fn reserved_size(a: &[u64; 5]) -> usize {
    usize::try_from(a[1]).unwrap_or(0)
}

/// The definitions.
pub fn defs() -> Vec<HelperDef> {
    // SAFETY: a non-NULL result of ringbuf_reserve points to `size` writable bytes of a busy
    // record inside the ring buffer's storage, which lives as long as the map the program holds;
    // nothing else writes a busy record.
    let reserve = unsafe { Helper::returns_mem_sized(ringbuf_reserve, reserved_size, true) };
    let release = |id, name, f| HelperDef {
        id,
        proto: proto(
            name,
            args([A::PtrToRingbufMemRelease, A::Anything]),
            R::Void,
            false,
        ),
        body: Body::Call(Helper::scalar(f)),
        types: Types::All,
    };
    vec![
        HelperDef {
            id: 131,
            proto: proto(
                "bpf_ringbuf_reserve",
                args([A::ConstMapPtr, A::ConstAllocSizeOrZero, A::Anything]),
                R::PtrToRingbufMemOrNull,
                false,
            ),
            body: Body::Call(reserve),
            types: Types::All,
        },
        release(132, "bpf_ringbuf_submit", ringbuf_submit),
        release(133, "bpf_ringbuf_discard", ringbuf_discard),
        HelperDef {
            id: 134,
            proto: proto(
                "bpf_ringbuf_query",
                args([A::ConstMapPtr, A::Anything]),
                R::Integer,
                false,
            ),
            body: Body::Call(Helper::scalar(ringbuf_query)),
            types: Types::All,
        },
    ]
}
