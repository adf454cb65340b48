//! The kernel's names for program and map types (`BPF_PROG_TYPE_*`, `BPF_MAP_TYPE_*`), lowercase
//! and without the prefix, as `bpftool` and `bpfkit verify --type/--map` spell them.

/// `(name, BPF_PROG_TYPE_* number)` for the program types of include/uapi/linux/bpf.h.
pub const PROG_TYPES: &[(&str, u32)] = &[
    ("socket_filter", 1),
    ("kprobe", 2),
    ("sched_cls", 3),
    ("sched_act", 4),
    ("tracepoint", 5),
    ("xdp", 6),
    ("perf_event", 7),
    ("cgroup_skb", 8),
    ("cgroup_sock", 9),
    ("lwt_in", 10),
    ("lwt_out", 11),
    ("lwt_xmit", 12),
    ("sock_ops", 13),
    ("sk_skb", 14),
    ("cgroup_device", 15),
    ("sk_msg", 16),
    ("raw_tracepoint", 17),
    ("cgroup_sock_addr", 18),
    ("lwt_seg6local", 19),
    ("lirc_mode2", 20),
    ("sk_reuseport", 21),
    ("flow_dissector", 22),
    ("cgroup_sysctl", 23),
    ("raw_tracepoint_writable", 24),
    ("cgroup_sockopt", 25),
    ("tracing", 26),
    ("struct_ops", 27),
    ("ext", 28),
    ("lsm", 29),
    ("sk_lookup", 30),
    ("syscall", 31),
    ("netfilter", 32),
];

/// `(name, BPF_MAP_TYPE_* number)` for the map types of include/uapi/linux/bpf.h.
pub const MAP_TYPES: &[(&str, u32)] = &[
    ("hash", 1),
    ("array", 2),
    ("prog_array", 3),
    ("perf_event_array", 4),
    ("percpu_hash", 5),
    ("percpu_array", 6),
    ("stack_trace", 7),
    ("cgroup_array", 8),
    ("lru_hash", 9),
    ("lru_percpu_hash", 10),
    ("lpm_trie", 11),
    ("array_of_maps", 12),
    ("hash_of_maps", 13),
    ("devmap", 14),
    ("sockmap", 15),
    ("cpumap", 16),
    ("xskmap", 17),
    ("sockhash", 18),
    ("cgroup_storage", 19),
    ("reuseport_sockarray", 20),
    ("percpu_cgroup_storage", 21),
    ("queue", 22),
    ("stack", 23),
    ("sk_storage", 24),
    ("devmap_hash", 25),
    ("struct_ops", 26),
    ("ringbuf", 27),
    ("inode_storage", 28),
    ("task_storage", 29),
    ("bloom_filter", 30),
    ("user_ringbuf", 31),
    ("cgrp_storage", 32),
    ("arena", 33),
];

/// `BPF_PROG_TYPE_SOCKET_FILTER`.
pub const PROG_SOCKET_FILTER: u32 = 1;
/// `BPF_PROG_TYPE_KPROBE`.
pub const PROG_KPROBE: u32 = 2;
/// `BPF_PROG_TYPE_SCHED_CLS`.
pub const PROG_SCHED_CLS: u32 = 3;
/// `BPF_PROG_TYPE_SCHED_ACT`.
pub const PROG_SCHED_ACT: u32 = 4;
/// `BPF_PROG_TYPE_TRACEPOINT`.
pub const PROG_TRACEPOINT: u32 = 5;
/// `BPF_PROG_TYPE_XDP`.
pub const PROG_XDP: u32 = 6;
/// `BPF_PROG_TYPE_SYSCALL`.
pub const PROG_SYSCALL: u32 = 31;

/// `BPF_MAP_TYPE_HASH`.
pub const MAP_HASH: u32 = 1;
/// `BPF_MAP_TYPE_ARRAY`.
pub const MAP_ARRAY: u32 = 2;
/// `BPF_MAP_TYPE_PROG_ARRAY`.
pub const MAP_PROG_ARRAY: u32 = 3;
/// `BPF_MAP_TYPE_PERCPU_HASH`.
pub const MAP_PERCPU_HASH: u32 = 5;
/// `BPF_MAP_TYPE_PERCPU_ARRAY`.
pub const MAP_PERCPU_ARRAY: u32 = 6;
/// `BPF_MAP_TYPE_LRU_PERCPU_HASH`.
pub const MAP_LRU_PERCPU_HASH: u32 = 10;
/// `BPF_MAP_TYPE_RINGBUF`.
pub const MAP_RINGBUF: u32 = 27;

/// The number of a program type name (`"xdp"` → 6); `None` for an unknown name.
#[must_use]
pub fn prog_type_by_name(name: &str) -> Option<u32> {
    PROG_TYPES.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
}

/// `(name, BPF_* attach type number)` for the attach types a load's `expected_attach_type` may
/// name in the verifier table (`enum bpf_attach_type`, lowercase, without the `BPF_` prefix).
pub const ATTACH_TYPES: &[(&str, u32)] = &[("cgroup_inet_ingress", 0), ("cgroup_inet_egress", 1)];

/// The number of an attach type name (`"cgroup_inet_egress"` → 1); `None` for an unknown name.
#[must_use]
pub fn attach_type_by_name(name: &str) -> Option<u32> {
    ATTACH_TYPES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, v)| v)
}

/// The number of a map type name (`"percpu_array"` → 6); `None` for an unknown name.
#[must_use]
pub fn map_type_by_name(name: &str) -> Option<u32> {
    MAP_TYPES.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
}

/// The name of a program type number; `None` when unknown.
#[must_use]
pub fn prog_type_name(ty: u32) -> Option<&'static str> {
    PROG_TYPES.iter().find(|&&(_, v)| v == ty).map(|&(n, _)| n)
}

/// The name of a map type number; `None` when unknown.
#[must_use]
pub fn map_type_name(ty: u32) -> Option<&'static str> {
    MAP_TYPES.iter().find(|&&(_, v)| v == ty).map(|&(n, _)| n)
}

/// True for map types whose values the syscall copies once per possible CPU.
#[must_use]
pub fn is_percpu_map(ty: u32) -> bool {
    matches!(
        ty,
        MAP_PERCPU_HASH | MAP_PERCPU_ARRAY | MAP_LRU_PERCPU_HASH | 21
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_the_uapi_numbers() {
        assert_eq!(prog_type_by_name("sched_cls"), Some(3));
        assert_eq!(prog_type_by_name("syscall"), Some(31));
        assert_eq!(map_type_by_name("ringbuf"), Some(27));
        assert_eq!(map_type_by_name("lpm_trie"), Some(11));
        assert_eq!(map_type_by_name("nope"), None);
        for &(n, v) in PROG_TYPES {
            assert_eq!(prog_type_name(v), Some(n));
        }
        for &(n, v) in MAP_TYPES {
            assert_eq!(map_type_name(v), Some(n));
        }
    }
}
