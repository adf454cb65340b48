//! The map helpers: `bpf_map_lookup_elem`, `bpf_map_update_elem`, `bpf_map_delete_elem`,
//! `bpf_map_push_elem`, `bpf_map_pop_elem`, `bpf_map_peek_elem`, `bpf_ringbuf_output`
//! (kernel/bpf/helpers.c, kernel/bpf/ringbuf.c), with their prototypes.

use super::abi::{self, ret};
use super::def::{args, proto, Body, HelperDef, Types};
use bpfkit_verifier::env::{ArgType as A, RetType as R};
use bpfkit_vm::Helper;

fn value_size(a: &[u64; 5]) -> usize {
    // SAFETY: r1 of map_lookup_elem is an ARG_CONST_MAP_PTR (see abi::map).
    let m = unsafe { abi::map(a[0]) };
    if m.as_map_of_maps().is_some() {
        // A map of maps yields an inner map, whose kernel-struct image the program may read.
        crate::maps::image::IMAGE_SIZE
    } else {
        m.info().value_size as usize
    }
}

extern "C" fn map_lookup_elem(map: u64, key: u64, _: u64, _: u64, _: u64) -> u64 {
    // SAFETY: the verifier proved r1 a map pointer and r2 a pointer to key_size initialised
    // bytes (ARG_CONST_MAP_PTR, ARG_PTR_TO_MAP_KEY).
    unsafe {
        let m = abi::map(map);
        let key = abi::bytes(key, m.info().key_size as usize);
        m.lookup_ptr(key) as u64
    }
}

extern "C" fn map_update_elem(map: u64, key: u64, value: u64, flags: u64, _: u64) -> u64 {
    // SAFETY: ARG_CONST_MAP_PTR, ARG_PTR_TO_MAP_KEY and ARG_PTR_TO_MAP_VALUE, as proved by the
    // verifier.
    unsafe {
        let m = abi::map(map);
        let key = abi::bytes(key, m.info().key_size as usize);
        let value = abi::bytes(value, m.info().value_size as usize);
        ret(m.prog_update(key, value, flags))
    }
}

extern "C" fn map_delete_elem(map: u64, key: u64, _: u64, _: u64, _: u64) -> u64 {
    // SAFETY: ARG_CONST_MAP_PTR and ARG_PTR_TO_MAP_KEY, as proved by the verifier.
    unsafe {
        let m = abi::map(map);
        let key = abi::bytes(key, m.info().key_size as usize);
        ret(m.prog_delete(key))
    }
}

extern "C" fn map_push_elem(map: u64, value: u64, flags: u64, _: u64, _: u64) -> u64 {
    // SAFETY: ARG_CONST_MAP_PTR and ARG_PTR_TO_MAP_VALUE, as proved by the verifier.
    unsafe {
        let m = abi::map(map);
        let value = abi::bytes(value, m.info().value_size as usize);
        ret(m.push(value, flags))
    }
}

extern "C" fn map_pop_elem(map: u64, value: u64, _: u64, _: u64, _: u64) -> u64 {
    // SAFETY: ARG_CONST_MAP_PTR and a pointer to value_size writable bytes, as proved by the
    // verifier.
    unsafe {
        let m = abi::map(map);
        let out = abi::bytes_mut(value, m.info().value_size as usize);
        ret(m.pop(out))
    }
}

extern "C" fn map_peek_elem(map: u64, value: u64, _: u64, _: u64, _: u64) -> u64 {
    // SAFETY: as for map_pop_elem.
    unsafe {
        let m = abi::map(map);
        let out = abi::bytes_mut(value, m.info().value_size as usize);
        ret(m.peek(out))
    }
}

/// `-EINVAL`.
const EINVAL: i64 = -22;

extern "C" fn ringbuf_output(map: u64, data: u64, size: u64, flags: u64, _: u64) -> u64 {
    // SAFETY: ARG_CONST_MAP_PTR, then ARG_PTR_TO_MEM with its ARG_CONST_SIZE_OR_ZERO, as proved
    // by the verifier.
    unsafe {
        let m = abi::map(map);
        let Some(rb) = m.as_ringbuf() else {
            return ret(EINVAL);
        };
        let data = abi::bytes(data, size as usize);
        ret(rb.output(data, flags))
    }
}

/// The map helpers' definitions.
pub fn defs() -> Vec<HelperDef> {
    // SAFETY: map_lookup_elem returns NULL or the address of one value of the map in r1, which
    // lives in the map's storage as long as the map (held by the program) — value_size bytes,
    // readable and writable (the kernel's PTR_TO_MAP_VALUE).
    let lookup = unsafe { Helper::returns_mem_sized(map_lookup_elem, value_size, true) };
    vec![
        HelperDef {
            id: 1,
            proto: proto(
                "bpf_map_lookup_elem",
                args([A::ConstMapPtr, A::PtrToMapKey]),
                R::PtrToMapValueOrNull,
                false,
            ),
            body: Body::Call(lookup),
            types: Types::All,
        },
        HelperDef {
            id: 2,
            proto: proto(
                "bpf_map_update_elem",
                args([
                    A::ConstMapPtr,
                    A::PtrToMapKey,
                    A::PtrToMapValue,
                    A::Anything,
                ]),
                R::Integer,
                false,
            ),
            body: Body::Call(Helper::scalar(map_update_elem)),
            types: Types::All,
        },
        HelperDef {
            id: 3,
            proto: proto(
                "bpf_map_delete_elem",
                args([A::ConstMapPtr, A::PtrToMapKey]),
                R::Integer,
                false,
            ),
            body: Body::Call(Helper::scalar(map_delete_elem)),
            types: Types::All,
        },
        HelperDef {
            id: 87,
            proto: proto(
                "bpf_map_push_elem",
                args([A::ConstMapPtr, A::PtrToMapValue, A::Anything]),
                R::Integer,
                false,
            ),
            body: Body::Call(Helper::scalar(map_push_elem)),
            types: Types::All,
        },
        HelperDef {
            id: 88,
            proto: proto(
                "bpf_map_pop_elem",
                args([A::ConstMapPtr, A::PtrToMapValue]),
                R::Integer,
                false,
            ),
            body: Body::Call(Helper::scalar(map_pop_elem)),
            types: Types::All,
        },
        HelperDef {
            id: 89,
            proto: proto(
                "bpf_map_peek_elem",
                args([A::ConstMapPtr, A::PtrToMapValue]),
                R::Integer,
                false,
            ),
            body: Body::Call(Helper::scalar(map_peek_elem)),
            types: Types::All,
        },
        HelperDef {
            id: 12,
            proto: proto(
                "bpf_tail_call",
                args([A::PtrToCtx, A::ConstMapPtr, A::Anything]),
                R::Void,
                false,
            ),
            body: Body::TailCall,
            types: Types::All,
        },
        HelperDef {
            id: 130,
            proto: proto(
                "bpf_ringbuf_output",
                args([A::ConstMapPtr, A::PtrToMem, A::ConstSizeOrZero, A::Anything]),
                R::Integer,
                false,
            ),
            body: Body::Call(Helper::scalar(ringbuf_output)),
            types: Types::All,
        },
    ]
}
