//! The layouts of `struct bpf_map` and of the structs that embed it for each map type, as
//! Linux 6.18 on x86-64 lays them out in its BTF (`/sys/kernel/btf/vmlinux`). The verifier
//! walks them for loads through a map pointer (`check_ptr_to_map_access`, which walks the
//! vmlinux type of the map's `map_btf_id`); the runtime builds each map's image from them.
//!
//! The table holds every type reachable by value from the roots below (members of members;
//! pointers are leaves, and `struct bpf_map_ops`, which `bpf_map.ops` points to, is a root), with typedefs, `const` and `volatile` resolved away, exactly as
//! `btf_struct_walk` sees through them. Multi-dimensional arrays are kept as their first
//! dimension plus the linearised element (`__btf_resolve_size`). A test
//! (`crates/verifier/tests/map_struct_btf.rs`) compares every entry with the running
//! kernel's BTF.

/// A member of a struct or union.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its name (empty for an anonymous struct or union).
    pub name: &'static str,
    /// Offset from the start of the containing type, in bits.
    pub bit_offset: u32,
    /// Width of a bitfield in bits, 0 when the member is not one.
    pub bitfield_size: u32,
    /// Its type: an index into [`TYPES`].
    pub ty: u16,
}

/// A type, modifiers resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    /// An integer (`int: true`), or an enum or floating-point number (`int: false`).
    Scalar {
        /// Size in bytes.
        size: u32,
        /// Whether BTF calls it an integer (`btf_type_is_int`).
        int: bool,
    },
    /// A pointer.
    Ptr {
        /// Whether the pointee is a struct or union (the load then gives a `PTR_TO_BTF_ID`,
        /// else read-only untrusted memory).
        to_struct: bool,
        /// The pointee struct's name (empty when not a struct).
        pointee: &'static str,
        /// The pointee struct in [`TYPES`], when the table describes it.
        target: Option<u16>,
    },
    /// An array.
    Array {
        /// The element after linearising every dimension (an index into [`TYPES`]).
        elem: u16,
        /// The number of elements after linearising.
        nelems: u32,
        /// The first dimension's element type (an index into [`TYPES`]).
        first_elem: u16,
        /// The first dimension's length (0 for a flexible array member).
        first_nelems: u32,
    },
    /// A struct or union.
    Struct {
        /// Its name (empty when anonymous).
        name: &'static str,
        /// Size in bytes.
        size: u32,
        /// A union rather than a struct.
        union: bool,
        /// The members, in BTF order.
        members: &'static [Member],
    },
}

const fn m(name: &'static str, bit_offset: u32, bitfield_size: u32, ty: u16) -> Member {
    Member {
        name,
        bit_offset,
        bitfield_size,
        ty,
    }
}

/// The struct a map type's `map_btf_id` names (`bpf_array`, `bpf_htab`, ...), by the map
/// type's kernel number, as an index into [`TYPES`]; `None` for map types not described.
#[must_use]
pub fn map_struct(map_type: u32) -> Option<u16> {
    Some(match map_type {
        // hash, percpu_hash, lru_hash, lru_percpu_hash, hash_of_maps
        1 | 5 | 9 | 10 | 13 => BPF_HTAB,
        // array, prog_array, perf_event_array, percpu_array, cgroup_array, array_of_maps
        2 | 3 | 4 | 6 | 8 | 12 => BPF_ARRAY,
        7 => BPF_STACK_MAP,
        11 => LPM_TRIE,
        // devmap, devmap_hash
        14 | 25 => BPF_DTAB,
        // queue, stack
        22 | 23 => BPF_QUEUE_STACK,
        27 => BPF_RINGBUF_MAP,
        30 => BPF_BLOOM_FILTER,
        _ => return None,
    })
}

/// `struct bpf_map` itself.
pub const BPF_MAP: u16 = 1;
/// `struct bpf_array`.
pub const BPF_ARRAY: u16 = 0;
/// `struct bpf_htab`.
pub const BPF_HTAB: u16 = 49;
/// `struct lpm_trie`.
pub const LPM_TRIE: u16 = 69;
/// `struct bpf_queue_stack`.
pub const BPF_QUEUE_STACK: u16 = 72;
/// `struct bpf_ringbuf_map`.
pub const BPF_RINGBUF_MAP: u16 = 73;
/// `struct bpf_dtab`.
pub const BPF_DTAB: u16 = 75;
/// `struct bpf_stack_map`.
pub const BPF_STACK_MAP: u16 = 78;
/// `struct bpf_bloom_filter`.
pub const BPF_BLOOM_FILTER: u16 = 81;
/// `struct bpf_map_ops` (what `bpf_map.ops` points to: function pointers).
pub const BPF_MAP_OPS: u16 = 83;

/// The size of the largest struct in [`TYPES`] that a map type names: the runtime's image of
/// a map is this large, so every offset the verifier allows is inside it.
pub const LARGEST_MAP_STRUCT: u32 = 832;

/// The types, by index.
pub static TYPES: &[Ty] = &[
    // 0
    Ty::Struct {
        name: "bpf_array",
        size: 312,
        union: false,
        members: &[
            m("map", 0, 0, 1),
            m("elem_size", 2368, 0, 4),
            m("index_mask", 2400, 0, 4),
            m("aux", 2432, 0, 41),
            m("", 2496, 0, 42),
        ],
    },
    // 1
    Ty::Struct {
        name: "bpf_map",
        size: 296,
        union: false,
        members: &[
            m("sha", 0, 0, 2),
            m("excl", 256, 0, 4),
            m("ops", 320, 0, 5),
            m("inner_map_meta", 384, 0, 6),
            m("security", 448, 0, 7),
            m("map_type", 512, 0, 8),
            m("key_size", 544, 0, 4),
            m("value_size", 576, 0, 4),
            m("max_entries", 608, 0, 4),
            m("map_extra", 640, 0, 9),
            m("map_flags", 704, 0, 4),
            m("id", 736, 0, 4),
            m("record", 768, 0, 10),
            m("numa_node", 832, 0, 11),
            m("btf_key_type_id", 864, 0, 4),
            m("btf_value_type_id", 896, 0, 4),
            m("btf_vmlinux_value_type_id", 928, 0, 4),
            m("btf", 960, 0, 12),
            m("objcg", 1024, 0, 13),
            m("name", 1088, 0, 14),
            m("freeze_mutex", 1216, 0, 16),
            m("refcnt", 1472, 0, 17),
            m("usercnt", 1536, 0, 17),
            m("", 1600, 0, 29),
            m("writecnt", 1856, 0, 17),
            m("owner_lock", 1920, 0, 35),
            m("owner", 1984, 0, 37),
            m("bypass_spec_v1", 2048, 0, 38),
            m("frozen", 2056, 0, 38),
            m("init_private", 2064, 0, 3),
            m("free_after_mult_rcu_gp", 2072, 0, 38),
            m("free_after_rcu_gp", 2080, 0, 38),
            m("sleepable_refcnt", 2112, 0, 17),
            m("elem_count", 2176, 0, 39),
            m("cookie", 2240, 0, 9),
            m("excl_prog_sha", 2304, 0, 40),
        ],
    },
    // 2
    Ty::Array {
        elem: 3,
        nelems: 32,
        first_elem: 3,
        first_nelems: 32,
    },
    // 3
    Ty::Scalar { size: 1, int: true },
    // 4
    Ty::Scalar { size: 4, int: true },
    // 5
    Ty::Ptr {
        to_struct: true,
        pointee: "bpf_map_ops",
        target: Some(83),
    },
    // 6
    Ty::Ptr {
        to_struct: true,
        pointee: "bpf_map",
        target: Some(1),
    },
    // 7
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 8
    Ty::Scalar {
        size: 4,
        int: false,
    },
    // 9
    Ty::Scalar { size: 8, int: true },
    // 10
    Ty::Ptr {
        to_struct: true,
        pointee: "btf_record",
        target: None,
    },
    // 11
    Ty::Scalar { size: 4, int: true },
    // 12
    Ty::Ptr {
        to_struct: true,
        pointee: "btf",
        target: None,
    },
    // 13
    Ty::Ptr {
        to_struct: true,
        pointee: "obj_cgroup",
        target: None,
    },
    // 14
    Ty::Array {
        elem: 15,
        nelems: 16,
        first_elem: 15,
        first_nelems: 16,
    },
    // 15
    Ty::Scalar { size: 1, int: true },
    // 16
    Ty::Struct {
        name: "mutex",
        size: 32,
        union: false,
        members: &[
            m("owner", 0, 0, 17),
            m("wait_lock", 64, 0, 19),
            m("osq", 96, 0, 26),
            m("wait_list", 128, 0, 27),
        ],
    },
    // 17
    Ty::Struct {
        name: "",
        size: 8,
        union: false,
        members: &[m("counter", 0, 0, 18)],
    },
    // 18
    Ty::Scalar { size: 8, int: true },
    // 19
    Ty::Struct {
        name: "raw_spinlock",
        size: 4,
        union: false,
        members: &[m("raw_lock", 0, 0, 20)],
    },
    // 20
    Ty::Struct {
        name: "qspinlock",
        size: 4,
        union: false,
        members: &[m("", 0, 0, 21)],
    },
    // 21
    Ty::Struct {
        name: "",
        size: 4,
        union: true,
        members: &[m("val", 0, 0, 22), m("", 0, 0, 23), m("", 0, 0, 24)],
    },
    // 22
    Ty::Struct {
        name: "",
        size: 4,
        union: false,
        members: &[m("counter", 0, 0, 11)],
    },
    // 23
    Ty::Struct {
        name: "",
        size: 2,
        union: false,
        members: &[m("locked", 0, 0, 3), m("pending", 8, 0, 3)],
    },
    // 24
    Ty::Struct {
        name: "",
        size: 4,
        union: false,
        members: &[m("locked_pending", 0, 0, 25), m("tail", 16, 0, 25)],
    },
    // 25
    Ty::Scalar { size: 2, int: true },
    // 26
    Ty::Struct {
        name: "optimistic_spin_queue",
        size: 4,
        union: false,
        members: &[m("tail", 0, 0, 22)],
    },
    // 27
    Ty::Struct {
        name: "list_head",
        size: 16,
        union: false,
        members: &[m("next", 0, 0, 28), m("prev", 64, 0, 28)],
    },
    // 28
    Ty::Ptr {
        to_struct: true,
        pointee: "list_head",
        target: Some(27),
    },
    // 29
    Ty::Struct {
        name: "",
        size: 32,
        union: true,
        members: &[m("work", 0, 0, 30), m("rcu", 0, 0, 32)],
    },
    // 30
    Ty::Struct {
        name: "work_struct",
        size: 32,
        union: false,
        members: &[
            m("data", 0, 0, 17),
            m("entry", 64, 0, 27),
            m("func", 192, 0, 31),
        ],
    },
    // 31
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 32
    Ty::Struct {
        name: "callback_head",
        size: 16,
        union: false,
        members: &[m("next", 0, 0, 33), m("func", 64, 0, 34)],
    },
    // 33
    Ty::Ptr {
        to_struct: true,
        pointee: "callback_head",
        target: Some(32),
    },
    // 34
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 35
    Ty::Struct {
        name: "spinlock",
        size: 4,
        union: false,
        members: &[m("", 0, 0, 36)],
    },
    // 36
    Ty::Struct {
        name: "",
        size: 4,
        union: true,
        members: &[m("rlock", 0, 0, 19)],
    },
    // 37
    Ty::Ptr {
        to_struct: true,
        pointee: "bpf_map_owner",
        target: None,
    },
    // 38
    Ty::Scalar { size: 1, int: true },
    // 39
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 40
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 41
    Ty::Ptr {
        to_struct: true,
        pointee: "bpf_array_aux",
        target: None,
    },
    // 42
    Ty::Struct {
        name: "",
        size: 0,
        union: true,
        members: &[m("", 0, 0, 43), m("", 0, 0, 46), m("", 0, 0, 48)],
    },
    // 43
    Ty::Struct {
        name: "",
        size: 0,
        union: false,
        members: &[m("__empty_value", 0, 0, 44), m("value", 0, 0, 45)],
    },
    // 44
    Ty::Struct {
        name: "",
        size: 0,
        union: false,
        members: &[],
    },
    // 45
    Ty::Array {
        elem: 15,
        nelems: 0,
        first_elem: 15,
        first_nelems: 0,
    },
    // 46
    Ty::Struct {
        name: "",
        size: 0,
        union: false,
        members: &[m("__empty_ptrs", 0, 0, 44), m("ptrs", 0, 0, 47)],
    },
    // 47
    Ty::Array {
        elem: 7,
        nelems: 0,
        first_elem: 7,
        first_nelems: 0,
    },
    // 48
    Ty::Struct {
        name: "",
        size: 0,
        union: false,
        members: &[m("__empty_pptrs", 0, 0, 44), m("pptrs", 0, 0, 47)],
    },
    // 49
    Ty::Struct {
        name: "bpf_htab",
        size: 832,
        union: false,
        members: &[
            m("map", 0, 0, 1),
            m("ma", 2368, 0, 50),
            m("pcpu_ma", 2880, 0, 50),
            m("buckets", 3392, 0, 53),
            m("elems", 3456, 0, 7),
            m("", 3584, 0, 54),
            m("extra_elems", 5632, 0, 66),
            m("pcount", 5696, 0, 67),
            m("count", 6016, 0, 22),
            m("use_percpu_counter", 6048, 0, 38),
            m("n_buckets", 6080, 0, 4),
            m("elem_size", 6112, 0, 4),
            m("hashrnd", 6144, 0, 4),
        ],
    },
    // 50
    Ty::Struct {
        name: "bpf_mem_alloc",
        size: 64,
        union: false,
        members: &[
            m("caches", 0, 0, 51),
            m("cache", 64, 0, 52),
            m("objcg", 128, 0, 13),
            m("percpu", 192, 0, 38),
            m("work", 256, 0, 30),
        ],
    },
    // 51
    Ty::Ptr {
        to_struct: true,
        pointee: "bpf_mem_caches",
        target: None,
    },
    // 52
    Ty::Ptr {
        to_struct: true,
        pointee: "bpf_mem_cache",
        target: None,
    },
    // 53
    Ty::Ptr {
        to_struct: true,
        pointee: "bucket",
        target: None,
    },
    // 54
    Ty::Struct {
        name: "",
        size: 256,
        union: true,
        members: &[m("freelist", 0, 0, 55), m("lru", 0, 0, 57)],
    },
    // 55
    Ty::Struct {
        name: "pcpu_freelist",
        size: 8,
        union: false,
        members: &[m("freelist", 0, 0, 56)],
    },
    // 56
    Ty::Ptr {
        to_struct: true,
        pointee: "pcpu_freelist_head",
        target: None,
    },
    // 57
    Ty::Struct {
        name: "bpf_lru",
        size: 256,
        union: false,
        members: &[
            m("", 0, 0, 58),
            m("del_from_htab", 1536, 0, 65),
            m("del_arg", 1600, 0, 7),
            m("hash_offset", 1664, 0, 4),
            m("target_free", 1696, 0, 4),
            m("nr_scans", 1728, 0, 4),
            m("percpu", 1760, 0, 38),
        ],
    },
    // 58
    Ty::Struct {
        name: "",
        size: 192,
        union: true,
        members: &[m("common_lru", 0, 0, 59), m("percpu_lru", 0, 0, 64)],
    },
    // 59
    Ty::Struct {
        name: "bpf_common_lru",
        size: 192,
        union: false,
        members: &[m("lru_list", 0, 0, 60), m("local_list", 1024, 0, 63)],
    },
    // 60
    Ty::Struct {
        name: "bpf_lru_list",
        size: 128,
        union: false,
        members: &[
            m("lists", 0, 0, 61),
            m("counts", 384, 0, 62),
            m("next_inactive_rotation", 448, 0, 28),
            m("lock", 512, 0, 20),
        ],
    },
    // 61
    Ty::Array {
        elem: 27,
        nelems: 3,
        first_elem: 27,
        first_nelems: 3,
    },
    // 62
    Ty::Array {
        elem: 4,
        nelems: 2,
        first_elem: 4,
        first_nelems: 2,
    },
    // 63
    Ty::Ptr {
        to_struct: true,
        pointee: "bpf_lru_locallist",
        target: None,
    },
    // 64
    Ty::Ptr {
        to_struct: true,
        pointee: "bpf_lru_list",
        target: Some(60),
    },
    // 65
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 66
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 67
    Ty::Struct {
        name: "percpu_counter",
        size: 40,
        union: false,
        members: &[
            m("lock", 0, 0, 19),
            m("count", 64, 0, 18),
            m("list", 128, 0, 27),
            m("counters", 256, 0, 68),
        ],
    },
    // 68
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 69
    Ty::Struct {
        name: "lpm_trie",
        size: 400,
        union: false,
        members: &[
            m("map", 0, 0, 1),
            m("root", 2368, 0, 70),
            m("ma", 2432, 0, 50),
            m("n_entries", 2944, 0, 71),
            m("max_prefixlen", 3008, 0, 71),
            m("data_size", 3072, 0, 71),
            m("lock", 3136, 0, 20),
        ],
    },
    // 70
    Ty::Ptr {
        to_struct: true,
        pointee: "lpm_trie_node",
        target: None,
    },
    // 71
    Ty::Scalar { size: 8, int: true },
    // 72
    Ty::Struct {
        name: "bpf_queue_stack",
        size: 312,
        union: false,
        members: &[
            m("map", 0, 0, 1),
            m("lock", 2368, 0, 20),
            m("head", 2400, 0, 4),
            m("tail", 2432, 0, 4),
            m("size", 2464, 0, 4),
            m("elements", 2496, 0, 45),
        ],
    },
    // 73
    Ty::Struct {
        name: "bpf_ringbuf_map",
        size: 304,
        union: false,
        members: &[m("map", 0, 0, 1), m("rb", 2368, 0, 74)],
    },
    // 74
    Ty::Ptr {
        to_struct: true,
        pointee: "bpf_ringbuf",
        target: None,
    },
    // 75
    Ty::Struct {
        name: "bpf_dtab",
        size: 344,
        union: false,
        members: &[
            m("map", 0, 0, 1),
            m("netdev_map", 2368, 0, 76),
            m("list", 2432, 0, 27),
            m("dev_index_head", 2560, 0, 77),
            m("index_lock", 2624, 0, 35),
            m("items", 2656, 0, 4),
            m("n_buckets", 2688, 0, 4),
        ],
    },
    // 76
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 77
    Ty::Ptr {
        to_struct: true,
        pointee: "hlist_head",
        target: None,
    },
    // 78
    Ty::Struct {
        name: "bpf_stack_map",
        size: 320,
        union: false,
        members: &[
            m("map", 0, 0, 1),
            m("elems", 2368, 0, 7),
            m("freelist", 2432, 0, 55),
            m("n_buckets", 2496, 0, 4),
            m("buckets", 2560, 0, 79),
        ],
    },
    // 79
    Ty::Array {
        elem: 80,
        nelems: 0,
        first_elem: 80,
        first_nelems: 0,
    },
    // 80
    Ty::Ptr {
        to_struct: true,
        pointee: "stack_map_bucket",
        target: None,
    },
    // 81
    Ty::Struct {
        name: "bpf_bloom_filter",
        size: 312,
        union: false,
        members: &[
            m("map", 0, 0, 1),
            m("bitset_mask", 2368, 0, 4),
            m("hash_seed", 2400, 0, 4),
            m("nr_hash_funcs", 2432, 0, 4),
            m("bitset", 2496, 0, 82),
        ],
    },
    // 82
    Ty::Array {
        elem: 71,
        nelems: 0,
        first_elem: 71,
        first_nelems: 0,
    },
    // 83
    Ty::Struct {
        name: "bpf_map_ops",
        size: 352,
        union: false,
        members: &[
            m("map_alloc_check", 0, 0, 84),
            m("map_alloc", 64, 0, 85),
            m("map_release", 128, 0, 86),
            m("map_free", 192, 0, 87),
            m("map_get_next_key", 256, 0, 88),
            m("map_release_uref", 320, 0, 87),
            m("map_lookup_elem_sys_only", 384, 0, 89),
            m("map_lookup_batch", 448, 0, 90),
            m("map_lookup_and_delete_elem", 512, 0, 91),
            m("map_lookup_and_delete_batch", 576, 0, 90),
            m("map_update_batch", 640, 0, 92),
            m("map_delete_batch", 704, 0, 90),
            m("map_lookup_elem", 768, 0, 89),
            m("map_update_elem", 832, 0, 93),
            m("map_delete_elem", 896, 0, 94),
            m("map_push_elem", 960, 0, 95),
            m("map_pop_elem", 1024, 0, 94),
            m("map_peek_elem", 1088, 0, 94),
            m("map_lookup_percpu_elem", 1152, 0, 96),
            m("map_get_hash", 1216, 0, 97),
            m("map_fd_get_ptr", 1280, 0, 98),
            m("map_fd_put_ptr", 1344, 0, 99),
            m("map_gen_lookup", 1408, 0, 100),
            m("map_fd_sys_lookup_elem", 1472, 0, 101),
            m("map_seq_show_elem", 1536, 0, 102),
            m("map_check_btf", 1600, 0, 103),
            m("map_poke_track", 1664, 0, 104),
            m("map_poke_untrack", 1728, 0, 105),
            m("map_poke_run", 1792, 0, 106),
            m("map_direct_value_addr", 1856, 0, 107),
            m("map_direct_value_meta", 1920, 0, 108),
            m("map_mmap", 1984, 0, 109),
            m("map_poll", 2048, 0, 110),
            m("map_get_unmapped_area", 2112, 0, 111),
            m("map_local_storage_charge", 2176, 0, 112),
            m("map_local_storage_uncharge", 2240, 0, 113),
            m("map_owner_storage_ptr", 2304, 0, 114),
            m("map_redirect", 2368, 0, 115),
            m("map_meta_equal", 2432, 0, 116),
            m("map_set_for_each_callback_args", 2496, 0, 117),
            m("map_for_each_callback", 2560, 0, 118),
            m("map_mem_usage", 2624, 0, 119),
            m("map_btf_id", 2688, 0, 120),
            m("iter_seq_info", 2752, 0, 121),
        ],
    },
    // 84
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 85
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 86
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 87
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 88
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 89
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 90
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 91
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 92
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 93
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 94
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 95
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 96
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 97
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 98
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 99
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 100
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 101
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 102
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 103
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 104
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 105
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 106
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 107
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 108
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 109
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 110
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 111
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 112
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 113
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 114
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 115
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 116
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 117
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 118
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 119
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 120
    Ty::Ptr {
        to_struct: false,
        pointee: "",
        target: None,
    },
    // 121
    Ty::Ptr {
        to_struct: true,
        pointee: "bpf_iter_seq_info",
        target: None,
    },
];
