//! Which maps may be passed to which helpers: Linux's `check_map_func_compatibility`, both
//! directions (a map type usable only with certain helpers; a helper usable only with certain
//! map types), and the read-only-map check of `record_func_map` for maps that are always
//! read-only to programs (devmaps get `BPF_F_RDONLY_PROG` at creation).
//!
//! Kernel counterpart: kernel/bpf/verifier.c, `check_map_func_compatibility` and the
//! `BPF_F_RDONLY_PROG` part of `record_func_map`. Map types and helpers are kernel numbers
//! (`BPF_MAP_TYPE_*`, `BPF_FUNC_*`), so the table covers types bpfkit cannot create too; the
//! socket maps' dependence on the program type (`may_update_sockmap`) is not modelled, as
//! bpfkit has neither socket maps nor the helpers that take them.

use crate::reject::{Errno, Reject};

/// `BPF_MAP_TYPE_*` numbers.
mod map {
    pub const PERCPU_HASH: u32 = 5;
    pub const PROG_ARRAY: u32 = 3;
    pub const PERF_EVENT_ARRAY: u32 = 4;
    pub const PERCPU_ARRAY: u32 = 6;
    pub const STACK_TRACE: u32 = 7;
    pub const CGROUP_ARRAY: u32 = 8;
    pub const LRU_PERCPU_HASH: u32 = 10;
    pub const ARRAY_OF_MAPS: u32 = 12;
    pub const HASH_OF_MAPS: u32 = 13;
    pub const DEVMAP: u32 = 14;
    pub const SOCKMAP: u32 = 15;
    pub const CPUMAP: u32 = 16;
    pub const XSKMAP: u32 = 17;
    pub const SOCKHASH: u32 = 18;
    pub const CGROUP_STORAGE: u32 = 19;
    pub const REUSEPORT_SOCKARRAY: u32 = 20;
    pub const PERCPU_CGROUP_STORAGE: u32 = 21;
    pub const QUEUE: u32 = 22;
    pub const STACK: u32 = 23;
    pub const SK_STORAGE: u32 = 24;
    pub const DEVMAP_HASH: u32 = 25;
    pub const RINGBUF: u32 = 27;
    pub const INODE_STORAGE: u32 = 28;
    pub const TASK_STORAGE: u32 = 29;
    pub const BLOOM_FILTER: u32 = 30;
    pub const USER_RINGBUF: u32 = 31;
    pub const CGRP_STORAGE: u32 = 32;
}

/// `BPF_FUNC_*` numbers.
mod func {
    pub const MAP_LOOKUP_ELEM: i32 = 1;
    pub const MAP_UPDATE_ELEM: i32 = 2;
    pub const MAP_DELETE_ELEM: i32 = 3;
    pub const TAIL_CALL: i32 = 12;
    pub const PERF_EVENT_READ: i32 = 22;
    pub const PERF_EVENT_OUTPUT: i32 = 25;
    pub const GET_STACKID: i32 = 27;
    pub const SKB_UNDER_CGROUP: i32 = 33;
    pub const CURRENT_TASK_UNDER_CGROUP: i32 = 37;
    pub const REDIRECT_MAP: i32 = 51;
    pub const SK_REDIRECT_MAP: i32 = 52;
    pub const SOCK_MAP_UPDATE: i32 = 53;
    pub const PERF_EVENT_READ_VALUE: i32 = 55;
    pub const MSG_REDIRECT_MAP: i32 = 60;
    pub const SOCK_HASH_UPDATE: i32 = 70;
    pub const MSG_REDIRECT_HASH: i32 = 71;
    pub const SK_REDIRECT_HASH: i32 = 72;
    pub const GET_LOCAL_STORAGE: i32 = 81;
    pub const SK_SELECT_REUSEPORT: i32 = 82;
    pub const MAP_PUSH_ELEM: i32 = 87;
    pub const MAP_POP_ELEM: i32 = 88;
    pub const MAP_PEEK_ELEM: i32 = 89;
    pub const SK_STORAGE_GET: i32 = 107;
    pub const SK_STORAGE_DELETE: i32 = 108;
    pub const SKB_OUTPUT: i32 = 111;
    pub const XDP_OUTPUT: i32 = 121;
    pub const RINGBUF_OUTPUT: i32 = 130;
    pub const RINGBUF_RESERVE: i32 = 131;
    pub const RINGBUF_QUERY: i32 = 134;
    pub const INODE_STORAGE_GET: i32 = 145;
    pub const INODE_STORAGE_DELETE: i32 = 146;
    pub const TASK_STORAGE_GET: i32 = 156;
    pub const TASK_STORAGE_DELETE: i32 = 157;
    pub const KPTR_XCHG: i32 = 194;
    pub const MAP_LOOKUP_PERCPU_ELEM: i32 = 195;
    pub const RINGBUF_RESERVE_DYNPTR: i32 = 198;
    pub const RINGBUF_SUBMIT_DYNPTR: i32 = 199;
    pub const RINGBUF_DISCARD_DYNPTR: i32 = 200;
    pub const USER_RINGBUF_DRAIN: i32 = 209;
    pub const CGRP_STORAGE_GET: i32 = 210;
    pub const CGRP_STORAGE_DELETE: i32 = 211;
}

/// The map side: whether a map of type `map_type` may be passed to helper `func_id`.
#[must_use]
pub fn map_allows(map_type: u32, func_id: i32) -> bool {
    use func as f;
    let any = |ids: &[i32]| ids.contains(&func_id);
    match map_type {
        map::PROG_ARRAY => func_id == f::TAIL_CALL,
        map::PERF_EVENT_ARRAY => any(&[
            f::PERF_EVENT_READ,
            f::PERF_EVENT_OUTPUT,
            f::SKB_OUTPUT,
            f::PERF_EVENT_READ_VALUE,
            f::XDP_OUTPUT,
        ]),
        map::RINGBUF => any(&[
            f::RINGBUF_OUTPUT,
            f::RINGBUF_RESERVE,
            f::RINGBUF_QUERY,
            f::RINGBUF_RESERVE_DYNPTR,
            f::RINGBUF_SUBMIT_DYNPTR,
            f::RINGBUF_DISCARD_DYNPTR,
        ]),
        map::USER_RINGBUF => func_id == f::USER_RINGBUF_DRAIN,
        map::STACK_TRACE => func_id == f::GET_STACKID,
        map::CGROUP_ARRAY => any(&[f::SKB_UNDER_CGROUP, f::CURRENT_TASK_UNDER_CGROUP]),
        map::CGROUP_STORAGE | map::PERCPU_CGROUP_STORAGE => func_id == f::GET_LOCAL_STORAGE,
        map::DEVMAP | map::DEVMAP_HASH | map::XSKMAP => any(&[f::REDIRECT_MAP, f::MAP_LOOKUP_ELEM]),
        map::CPUMAP => func_id == f::REDIRECT_MAP,
        map::ARRAY_OF_MAPS | map::HASH_OF_MAPS => func_id == f::MAP_LOOKUP_ELEM,
        map::REUSEPORT_SOCKARRAY => func_id == f::SK_SELECT_REUSEPORT,
        map::QUEUE | map::STACK => any(&[f::MAP_PEEK_ELEM, f::MAP_POP_ELEM, f::MAP_PUSH_ELEM]),
        map::SK_STORAGE => any(&[f::SK_STORAGE_GET, f::SK_STORAGE_DELETE, f::KPTR_XCHG]),
        map::INODE_STORAGE => any(&[f::INODE_STORAGE_GET, f::INODE_STORAGE_DELETE, f::KPTR_XCHG]),
        map::TASK_STORAGE => any(&[f::TASK_STORAGE_GET, f::TASK_STORAGE_DELETE, f::KPTR_XCHG]),
        map::CGRP_STORAGE => any(&[f::CGRP_STORAGE_GET, f::CGRP_STORAGE_DELETE, f::KPTR_XCHG]),
        map::BLOOM_FILTER => any(&[f::MAP_PEEK_ELEM, f::MAP_PUSH_ELEM]),
        _ => true,
    }
}

/// The helper side: whether helper `func_id` accepts a map of type `map_type`.
#[must_use]
pub fn func_allows(func_id: i32, map_type: u32) -> bool {
    use func as f;
    let one_of = |types: &[u32]| types.contains(&map_type);
    match func_id {
        f::TAIL_CALL => map_type == map::PROG_ARRAY,
        f::PERF_EVENT_READ
        | f::PERF_EVENT_OUTPUT
        | f::PERF_EVENT_READ_VALUE
        | f::SKB_OUTPUT
        | f::XDP_OUTPUT => map_type == map::PERF_EVENT_ARRAY,
        f::RINGBUF_OUTPUT
        | f::RINGBUF_RESERVE
        | f::RINGBUF_QUERY
        | f::RINGBUF_RESERVE_DYNPTR
        | f::RINGBUF_SUBMIT_DYNPTR
        | f::RINGBUF_DISCARD_DYNPTR => map_type == map::RINGBUF,
        f::USER_RINGBUF_DRAIN => map_type == map::USER_RINGBUF,
        f::GET_STACKID => map_type == map::STACK_TRACE,
        f::CURRENT_TASK_UNDER_CGROUP | f::SKB_UNDER_CGROUP => map_type == map::CGROUP_ARRAY,
        f::REDIRECT_MAP => one_of(&[map::DEVMAP, map::DEVMAP_HASH, map::CPUMAP, map::XSKMAP]),
        f::SK_REDIRECT_MAP | f::MSG_REDIRECT_MAP | f::SOCK_MAP_UPDATE => map_type == map::SOCKMAP,
        f::SK_REDIRECT_HASH | f::MSG_REDIRECT_HASH | f::SOCK_HASH_UPDATE => {
            map_type == map::SOCKHASH
        }
        f::GET_LOCAL_STORAGE => one_of(&[map::CGROUP_STORAGE, map::PERCPU_CGROUP_STORAGE]),
        f::SK_SELECT_REUSEPORT => one_of(&[map::REUSEPORT_SOCKARRAY, map::SOCKMAP, map::SOCKHASH]),
        f::MAP_POP_ELEM => one_of(&[map::QUEUE, map::STACK]),
        f::MAP_PEEK_ELEM | f::MAP_PUSH_ELEM => one_of(&[map::QUEUE, map::STACK, map::BLOOM_FILTER]),
        f::MAP_LOOKUP_PERCPU_ELEM => {
            one_of(&[map::PERCPU_ARRAY, map::PERCPU_HASH, map::LRU_PERCPU_HASH])
        }
        f::SK_STORAGE_GET | f::SK_STORAGE_DELETE => map_type == map::SK_STORAGE,
        f::INODE_STORAGE_GET | f::INODE_STORAGE_DELETE => map_type == map::INODE_STORAGE,
        f::TASK_STORAGE_GET | f::TASK_STORAGE_DELETE => map_type == map::TASK_STORAGE,
        f::CGRP_STORAGE_GET | f::CGRP_STORAGE_DELETE => map_type == map::CGRP_STORAGE,
        _ => true,
    }
}

/// Whether programs may only read maps of this type whatever their flags (`BPF_F_RDONLY_PROG`
/// is forced on devmaps by `dev_map_init_map`).
fn always_rdonly_prog(map_type: u32) -> bool {
    matches!(map_type, map::DEVMAP | map::DEVMAP_HASH)
}

/// `check_map_access_type` for a write of `size` bytes at `off` into a value of a map of type
/// `map_type` (`value_size` bytes): `write into map forbidden, ...` (`EACCES`) for maps
/// programs may only read.
///
/// # Errors
/// The kernel's rejection, as above.
pub fn check_value_write(
    idx: usize,
    map_type: u32,
    value_size: u32,
    off: i32,
    size: u32,
) -> Result<(), Reject> {
    if always_rdonly_prog(map_type) {
        return Err(Reject::new(
            Errno::EACCES,
            idx,
            format!("write into map forbidden, value_size={value_size} off={off} size={size}"),
        ));
    }
    Ok(())
}

/// The checks a call of helper `func_id` (named `name`) with a map of type `map_type` passes
/// through at instruction `idx`: `write into map forbidden` (`EACCES`) for a helper that writes
/// a read-only map, then `cannot pass map_type N into func NAME#ID` (`EINVAL`).
///
/// # Errors
/// The kernel's rejection, as above.
pub fn check(idx: usize, map_type: u32, func_id: i32, name: &str) -> Result<(), Reject> {
    use func as f;
    if always_rdonly_prog(map_type)
        && matches!(
            func_id,
            f::MAP_DELETE_ELEM | f::MAP_UPDATE_ELEM | f::MAP_PUSH_ELEM | f::MAP_POP_ELEM
        )
    {
        return Err(Reject::new(Errno::EACCES, idx, "write into map forbidden"));
    }
    if map_allows(map_type, func_id) && func_allows(func_id, map_type) {
        return Ok(());
    }
    Err(Reject::new(
        Errno::EINVAL,
        idx,
        format!("cannot pass map_type {map_type} into func {name}#{func_id}"),
    ))
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in tests a panic is the failure report")]
mod tests {
    //! The pairs the verifier table pins against Linux 6.18 (tests/verifier/helpers.cases);
    //! every pair bpfkit knows is compared with the live kernel by
    //! crates/bpfkit/tests/kernel_map_func_compat.rs.
    use super::*;

    #[test]
    fn both_directions() {
        // hash into perf_event_output: the helper side refuses.
        let e = check(7, 1, 25, "bpf_perf_event_output").unwrap_err();
        assert_eq!(
            e.message,
            "cannot pass map_type 1 into func bpf_perf_event_output#25"
        );
        assert_eq!(e.errno, Errno::EINVAL);
        // stack_trace into map_lookup_elem: the map side refuses.
        assert!(check(0, 7, 1, "bpf_map_lookup_elem").is_err());
        assert!(check(0, 7, 27, "bpf_get_stackid").is_ok());
        assert!(check(0, 14, 51, "bpf_redirect_map").is_ok());
        assert!(check(0, 14, 1, "bpf_map_lookup_elem").is_ok());
        assert!(check(0, 2, 51, "bpf_redirect_map").is_err());
        assert!(check(0, 1, 1, "bpf_map_lookup_elem").is_ok());
    }

    #[test]
    fn devmaps_are_read_only_to_programs() {
        let e = check(3, 14, 2, "bpf_map_update_elem").unwrap_err();
        assert_eq!(e.message, "write into map forbidden");
        assert_eq!(e.errno, Errno::EACCES);
    }
}
