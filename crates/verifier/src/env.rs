//! The vocabulary the verifier is told about the world in: program types and their context
//! access rules, helper prototypes and map metadata.
//!
//! The verifier imports no runtime: whoever calls [`crate::verify`] supplies an [`Env`]. The
//! names and numbers are the kernel's (`include/uapi/linux/bpf.h`, `include/linux/bpf.h`:
//! `enum bpf_arg_type`, `enum bpf_return_type`, `struct bpf_func_proto`,
//! `struct bpf_verifier_ops::is_valid_access`).

/// A program type, by the kernel's number (`enum bpf_prog_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProgType {
    /// `BPF_PROG_TYPE_SOCKET_FILTER`
    #[doc(alias = "BPF_PROG_TYPE_SOCKET_FILTER")]
    SocketFilter,
    /// `BPF_PROG_TYPE_KPROBE`
    #[doc(alias = "BPF_PROG_TYPE_KPROBE")]
    Kprobe,
    /// `BPF_PROG_TYPE_SCHED_CLS`
    #[doc(alias = "BPF_PROG_TYPE_SCHED_CLS")]
    SchedCls,
    /// `BPF_PROG_TYPE_SCHED_ACT`
    #[doc(alias = "BPF_PROG_TYPE_SCHED_ACT")]
    SchedAct,
    /// `BPF_PROG_TYPE_TRACEPOINT`
    #[doc(alias = "BPF_PROG_TYPE_TRACEPOINT")]
    Tracepoint,
    /// `BPF_PROG_TYPE_XDP`
    #[doc(alias = "BPF_PROG_TYPE_XDP")]
    Xdp,
    /// `BPF_PROG_TYPE_RAW_TRACEPOINT`
    #[doc(alias = "BPF_PROG_TYPE_RAW_TRACEPOINT")]
    RawTracepoint,
    /// `BPF_PROG_TYPE_CGROUP_SKB`
    #[doc(alias = "BPF_PROG_TYPE_CGROUP_SKB")]
    CgroupSkb,
}

impl ProgType {
    /// Every supported program type.
    pub const ALL: [ProgType; 8] = [
        ProgType::SocketFilter,
        ProgType::Kprobe,
        ProgType::SchedCls,
        ProgType::SchedAct,
        ProgType::Tracepoint,
        ProgType::Xdp,
        ProgType::RawTracepoint,
        ProgType::CgroupSkb,
    ];

    /// The kernel's number for this type (`BPF_PROG_TYPE_*`).
    #[must_use]
    pub const fn kernel_id(self) -> u32 {
        match self {
            ProgType::SocketFilter => 1,
            ProgType::Kprobe => 2,
            ProgType::SchedCls => 3,
            ProgType::SchedAct => 4,
            ProgType::Tracepoint => 5,
            ProgType::Xdp => 6,
            ProgType::RawTracepoint => 17,
            ProgType::CgroupSkb => 8,
        }
    }

    /// The kernel's name without the `BPF_PROG_TYPE_` prefix, lowercase (`socket_filter`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            ProgType::SocketFilter => "socket_filter",
            ProgType::Kprobe => "kprobe",
            ProgType::SchedCls => "sched_cls",
            ProgType::SchedAct => "sched_act",
            ProgType::Tracepoint => "tracepoint",
            ProgType::Xdp => "xdp",
            ProgType::RawTracepoint => "raw_tracepoint",
            ProgType::CgroupSkb => "cgroup_skb",
        }
    }

    /// The type named `name` (as [`ProgType::name`] prints it).
    #[must_use]
    pub fn from_name(name: &str) -> Option<ProgType> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The type with the kernel's number `id`.
    #[must_use]
    pub fn from_kernel_id(id: u32) -> Option<ProgType> {
        Self::ALL.into_iter().find(|t| t.kernel_id() == id)
    }

    /// Whether the type may write packet data directly (`may_access_direct_pkt_data` with
    /// `BPF_WRITE`). Reading is allowed wherever the context hands out packet pointers:
    /// `cgroup_skb` may read its packet but not write it.
    #[must_use]
    pub const fn direct_packet_access(self) -> bool {
        matches!(
            self,
            ProgType::SchedCls | ProgType::SchedAct | ProgType::Xdp
        )
    }

    /// Whether legacy `LD_ABS`/`LD_IND` packet loads are allowed (`may_access_skb`).
    #[must_use]
    pub const fn ld_abs_allowed(self) -> bool {
        matches!(
            self,
            ProgType::SocketFilter | ProgType::SchedCls | ProgType::SchedAct
        )
    }
}

impl std::fmt::Display for ProgType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a context load yields (`bpf_insn_access_aux.reg_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CtxField {
    /// A plain number (`SCALAR_VALUE`).
    Scalar,
    /// The start of packet data (`PTR_TO_PACKET`), e.g. `__sk_buff.data`, `xdp_md.data`.
    PacketData,
    /// The end of packet data (`PTR_TO_PACKET_END`).
    PacketEnd,
    /// The start of packet metadata (`PTR_TO_PACKET_META`).
    PacketMeta,
}

/// Whether an access is a load or a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessKind {
    /// `BPF_READ`
    Read,
    /// `BPF_WRITE`
    Write,
}

/// Helper argument types (`enum bpf_arg_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgType {
    /// Unused argument (`ARG_DONTCARE`).
    #[doc(alias = "ARG_DONTCARE")]
    DontCare,
    /// Any initialised value (`ARG_ANYTHING`).
    #[doc(alias = "ARG_ANYTHING")]
    Anything,
    /// A map pointer known at verification time (`ARG_CONST_MAP_PTR`).
    #[doc(alias = "ARG_CONST_MAP_PTR")]
    ConstMapPtr,
    /// Pointer to an initialised key of the map's key size (`ARG_PTR_TO_MAP_KEY`).
    #[doc(alias = "ARG_PTR_TO_MAP_KEY")]
    PtrToMapKey,
    /// Pointer to an initialised value of the map's value size (`ARG_PTR_TO_MAP_VALUE`).
    #[doc(alias = "ARG_PTR_TO_MAP_VALUE")]
    PtrToMapValue,
    /// Pointer to readable memory whose size is the next argument (`ARG_PTR_TO_MEM | MEM_RDONLY`).
    #[doc(alias = "ARG_PTR_TO_MEM")]
    PtrToMem,
    /// Like [`ArgType::PtrToMem`], or NULL (`ARG_PTR_TO_MEM | PTR_MAYBE_NULL | MEM_RDONLY`).
    PtrToMemOrNull,
    /// Pointer to memory the helper writes, size in the next argument
    /// (`ARG_PTR_TO_UNINIT_MEM`): may be uninitialised stack.
    #[doc(alias = "ARG_PTR_TO_UNINIT_MEM")]
    PtrToUninitMem,
    /// Size of the previous memory argument, a bounded non-zero value (`ARG_CONST_SIZE`).
    #[doc(alias = "ARG_CONST_SIZE")]
    ConstSize,
    /// Size of the previous memory argument, may be zero (`ARG_CONST_SIZE_OR_ZERO`).
    #[doc(alias = "ARG_CONST_SIZE_OR_ZERO")]
    ConstSizeOrZero,
    /// The program's context pointer (`ARG_PTR_TO_CTX`).
    #[doc(alias = "ARG_PTR_TO_CTX")]
    PtrToCtx,
    /// A constant allocation size (`ARG_CONST_ALLOC_SIZE_OR_ZERO`).
    #[doc(alias = "ARG_CONST_ALLOC_SIZE_OR_ZERO")]
    ConstAllocSizeOrZero,
    /// A ring buffer record to release (`ARG_PTR_TO_RINGBUF_MEM | OBJ_RELEASE`).
    #[doc(alias = "ARG_PTR_TO_RINGBUF_MEM")]
    PtrToRingbufMemRelease,
}

/// Helper return types (`enum bpf_return_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetType {
    /// An unknown number (`RET_INTEGER`).
    #[doc(alias = "RET_INTEGER")]
    Integer,
    /// Nothing: r0 is unreadable afterwards (`RET_VOID`).
    #[doc(alias = "RET_VOID")]
    Void,
    /// A pointer to the value of the map passed as `ARG_CONST_MAP_PTR`, or NULL
    /// (`RET_PTR_TO_MAP_VALUE_OR_NULL`).
    #[doc(alias = "RET_PTR_TO_MAP_VALUE_OR_NULL")]
    PtrToMapValueOrNull,
    /// A ring buffer record of the constant size argument, or NULL; acquires a reference
    /// (`RET_PTR_TO_RINGBUF_MEM_OR_NULL`).
    #[doc(alias = "RET_PTR_TO_RINGBUF_MEM_OR_NULL")]
    PtrToRingbufMemOrNull,
}

/// A helper's prototype (`struct bpf_func_proto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HelperProto {
    /// The kernel's name, e.g. `bpf_map_lookup_elem`.
    pub name: &'static str,
    /// Argument types of r1..r5.
    pub args: [ArgType; 5],
    /// Return type.
    pub ret: RetType,
    /// Only callable from programs with a GPL-compatible license.
    pub gpl_only: bool,
    /// The helper may move packet data: every packet pointer is invalid afterwards
    /// (`bpf_helper_changes_pkt_data`).
    pub changes_pkt_data: bool,
}

/// Map types the verifier distinguishes (`enum bpf_map_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MapType {
    /// `BPF_MAP_TYPE_HASH`
    #[doc(alias = "BPF_MAP_TYPE_HASH")]
    Hash,
    /// `BPF_MAP_TYPE_ARRAY`
    #[doc(alias = "BPF_MAP_TYPE_ARRAY")]
    Array,
    /// `BPF_MAP_TYPE_PROG_ARRAY`
    #[doc(alias = "BPF_MAP_TYPE_PROG_ARRAY")]
    ProgArray,
    /// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`
    #[doc(alias = "BPF_MAP_TYPE_PERF_EVENT_ARRAY")]
    PerfEventArray,
    /// `BPF_MAP_TYPE_PERCPU_HASH`
    #[doc(alias = "BPF_MAP_TYPE_PERCPU_HASH")]
    PercpuHash,
    /// `BPF_MAP_TYPE_PERCPU_ARRAY`
    #[doc(alias = "BPF_MAP_TYPE_PERCPU_ARRAY")]
    PercpuArray,
    /// `BPF_MAP_TYPE_LRU_HASH`
    #[doc(alias = "BPF_MAP_TYPE_LRU_HASH")]
    LruHash,
    /// `BPF_MAP_TYPE_LRU_PERCPU_HASH`
    #[doc(alias = "BPF_MAP_TYPE_LRU_PERCPU_HASH")]
    LruPercpuHash,
    /// `BPF_MAP_TYPE_LPM_TRIE`
    #[doc(alias = "BPF_MAP_TYPE_LPM_TRIE")]
    LpmTrie,
    /// `BPF_MAP_TYPE_RINGBUF`
    #[doc(alias = "BPF_MAP_TYPE_RINGBUF")]
    Ringbuf,
    /// `BPF_MAP_TYPE_QUEUE`
    #[doc(alias = "BPF_MAP_TYPE_QUEUE")]
    Queue,
    /// `BPF_MAP_TYPE_STACK`
    #[doc(alias = "BPF_MAP_TYPE_STACK")]
    Stack,
    /// `BPF_MAP_TYPE_ARRAY_OF_MAPS`: a lookup yields an inner map pointer or NULL.
    #[doc(alias = "BPF_MAP_TYPE_ARRAY_OF_MAPS")]
    ArrayOfMaps,
    /// `BPF_MAP_TYPE_HASH_OF_MAPS`: a lookup yields an inner map pointer or NULL.
    #[doc(alias = "BPF_MAP_TYPE_HASH_OF_MAPS")]
    HashOfMaps,
    /// `BPF_MAP_TYPE_STACK_TRACE`
    #[doc(alias = "BPF_MAP_TYPE_STACK_TRACE")]
    StackTrace,
    /// `BPF_MAP_TYPE_DEVMAP`
    #[doc(alias = "BPF_MAP_TYPE_DEVMAP")]
    DevMap,
    /// `BPF_MAP_TYPE_DEVMAP_HASH`
    #[doc(alias = "BPF_MAP_TYPE_DEVMAP_HASH")]
    DevMapHash,
    /// `BPF_MAP_TYPE_CPUMAP`
    #[doc(alias = "BPF_MAP_TYPE_CPUMAP")]
    CpuMap,
}

impl MapType {
    /// Every map type, in kernel-number order.
    pub const ALL: [MapType; 18] = [
        MapType::Hash,
        MapType::Array,
        MapType::ProgArray,
        MapType::PerfEventArray,
        MapType::PercpuHash,
        MapType::PercpuArray,
        MapType::LruHash,
        MapType::LruPercpuHash,
        MapType::LpmTrie,
        MapType::Queue,
        MapType::Stack,
        MapType::Ringbuf,
        MapType::ArrayOfMaps,
        MapType::HashOfMaps,
        MapType::StackTrace,
        MapType::DevMap,
        MapType::DevMapHash,
        MapType::CpuMap,
    ];

    /// The kernel's name without the `BPF_MAP_TYPE_` prefix, lowercase.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            MapType::Hash => "hash",
            MapType::Array => "array",
            MapType::ProgArray => "prog_array",
            MapType::PerfEventArray => "perf_event_array",
            MapType::PercpuHash => "percpu_hash",
            MapType::PercpuArray => "percpu_array",
            MapType::LruHash => "lru_hash",
            MapType::LruPercpuHash => "lru_percpu_hash",
            MapType::LpmTrie => "lpm_trie",
            MapType::Ringbuf => "ringbuf",
            MapType::ArrayOfMaps => "array_of_maps",
            MapType::HashOfMaps => "hash_of_maps",
            MapType::Queue => "queue",
            MapType::Stack => "stack",
            MapType::StackTrace => "stack_trace",
            MapType::DevMap => "devmap",
            MapType::DevMapHash => "devmap_hash",
            MapType::CpuMap => "cpumap",
        }
    }

    /// The kernel's number (`BPF_MAP_TYPE_*`).
    #[must_use]
    pub const fn kernel_id(self) -> u32 {
        match self {
            MapType::Hash => 1,
            MapType::Array => 2,
            MapType::ProgArray => 3,
            MapType::PerfEventArray => 4,
            MapType::PercpuHash => 5,
            MapType::PercpuArray => 6,
            MapType::LruHash => 9,
            MapType::LruPercpuHash => 10,
            MapType::LpmTrie => 11,
            MapType::Queue => 22,
            MapType::Stack => 23,
            MapType::Ringbuf => 27,
            MapType::ArrayOfMaps => 12,
            MapType::HashOfMaps => 13,
            MapType::StackTrace => 7,
            MapType::DevMap => 14,
            MapType::DevMapHash => 25,
            MapType::CpuMap => 16,
        }
    }

    /// The type named `name` (as [`MapType::name`] prints it).
    #[must_use]
    pub fn from_name(name: &str) -> Option<MapType> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The type with the kernel's number `id`.
    #[must_use]
    pub fn from_kernel_id(id: u32) -> Option<MapType> {
        Self::ALL.into_iter().find(|t| t.kernel_id() == id)
    }

    /// Whether a pointer into a value of this map may be read and written by the program
    /// (the kernel refuses direct value access for prog arrays, perf event arrays, ring buffers,
    /// queues and stacks).
    #[must_use]
    pub const fn has_value_memory(self) -> bool {
        !matches!(
            self,
            MapType::ProgArray
                | MapType::PerfEventArray
                | MapType::Ringbuf
                | MapType::Queue
                | MapType::Stack
                | MapType::ArrayOfMaps
                | MapType::HashOfMaps
                | MapType::StackTrace
                | MapType::CpuMap
        )
    }
}

/// A map as the verifier sees it (`struct bpf_map`'s metadata).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapInfo {
    /// Map type.
    pub map_type: MapType,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
}

/// What the verifier needs to know about the world, supplied by the runtime.
pub trait Env {
    /// Checks a context access of `size` bytes at constant offset `off` for `prog_type`:
    /// `Some(field)` when allowed (what the load yields), `None` when the kernel refuses it
    /// (`invalid bpf_context access off=%d size=%d`).
    fn ctx_access(
        &self,
        prog_type: ProgType,
        off: i32,
        size: u32,
        kind: AccessKind,
    ) -> Option<CtxField>;

    /// [`Env::ctx_access`] for a load without CAP_BPF, where some fields need it (a cgroup_skb
    /// program's packet pointers and `tstamp` store, `bpf_token_capable(..., CAP_BPF)` in
    /// `cg_skb_is_valid_access`). Default: the privileged rule.
    fn ctx_access_unprivileged(
        &self,
        prog_type: ProgType,
        off: i32,
        size: u32,
        kind: AccessKind,
    ) -> Option<CtxField> {
        self.ctx_access(prog_type, off, size, kind)
    }

    /// The prototype of helper `id` as callable from `prog_type`, or `None` when the helper is
    /// unknown or not allowed there (`unknown func %s#%d` / `program of this type cannot use
    /// helper %s#%d`).
    fn helper(&self, prog_type: ProgType, id: i32) -> Option<HelperProto>;

    /// The kernel name of helper `id` regardless of program type, for the log
    /// (`call bpf_map_lookup_elem#1`); `None` for ids no kernel defines.
    fn helper_name(&self, id: i32) -> Option<&'static str>;

    /// The map an `LD_IMM64` pseudo instruction refers to by handle (the `imm` of a
    /// `BPF_PSEUDO_MAP_FD` / `BPF_PSEUDO_MAP_VALUE` load).
    fn map(&self, handle: i32) -> Option<MapInfo>;

    /// For a map of maps, the template its inner maps follow (the kernel's `inner_map_meta`):
    /// what a lookup in it yields a pointer to. `None` for other maps (the default).
    fn inner_map(&self, handle: i32) -> Option<MapInfo> {
        let _ = handle;
        None
    }

    /// `nr_cpu_ids`: the kernel bounds what `bpf_get_smp_processor_id` returns to
    /// `0..nr_cpu_ids` (`do_refine_retval_range`), which can decide later branches. `None` (the
    /// default) leaves the result unbounded.
    fn nr_cpu_ids(&self) -> Option<u32> {
        None
    }
}
