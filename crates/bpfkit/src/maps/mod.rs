//! BPF maps with the kernel's semantics and errnos: the storage that programs and user space
//! share.
//!
//! [`BpfMap`] is one map of any type: creation checks the attributes as `map_create` and each
//! type's `map_alloc_check` do (kernel/bpf/syscall.c and the type's file, see [`create`]); the
//! element commands of the system call (`lookup`, `update`, `delete`, `get_next_key`,
//! `lookup_and_delete`) copy bytes in and out with the kernel's errnos; and the program side
//! (`lookup_ptr`, `prog_update`, `prog_delete`, `push` / `pop` / `peek`, the ring buffer and prog
//! array accessors) is what the helpers call.
//!
//! Every map is safe to share between threads running programs and threads using the API.
//! Values a program gets from `lookup_ptr` are stable pointers into the map's memory (see
//! [`storage`]): they stay valid for as long as the map lives, so the runtime must keep the map
//! alive (an `Arc`) while a program that may hold such a pointer runs.

pub mod array;
mod attr;
pub mod cpu;
pub mod cpumap;
pub mod devmap;
pub mod fd_array;
pub mod hash;
pub mod image;
mod jhash;
pub mod lpm_trie;
pub mod perf_event;
pub mod perf_event_array;
pub mod queue_stack;
pub mod ringbuf;
pub mod stack_trace;
pub(crate) mod storage;

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;

pub use array::ArrayMap;
pub use attr::MapAttr;
pub use cpumap::CpuMap;
pub use devmap::DevMap;
pub use fd_array::{FdArray, InnerTemplate, MapOfMaps, ProgArray, ProgEntry};
pub use hash::HashTab;
pub use lpm_trie::LpmTrie;
pub use perf_event::PerfEvent;
pub use perf_event_array::PerfEventArray;
pub use queue_stack::QueueStack;
pub use ringbuf::RingBuf;
pub use stack_trace::StackTraceMap;

use crate::errno::Errno;

/// Flag values of `include/uapi/linux/bpf.h` for map creation and element updates.
pub mod flags {
    /// Update: create a new element or update an existing one.
    pub const BPF_ANY: u64 = 0;
    /// Update: create a new element only.
    pub const BPF_NOEXIST: u64 = 1;
    /// Update: update an existing element only.
    pub const BPF_EXIST: u64 = 2;
    /// Update/lookup: use the value's `bpf_spin_lock` (needs BTF; bpfkit has none, so `EINVAL`).
    pub const BPF_F_LOCK: u64 = 4;

    /// Create: allocate elements on demand (required by LPM tries).
    pub const BPF_F_NO_PREALLOC: u32 = 1 << 0;
    /// Create: per-CPU LRU lists instead of a common one (LRU hashes).
    pub const BPF_F_NO_COMMON_LRU: u32 = 1 << 1;
    /// Create: `numa_node` is valid.
    pub const BPF_F_NUMA_NODE: u32 = 1 << 2;
    /// Create: the map's descriptor is read-only for user space.
    pub const BPF_F_RDONLY: u32 = 1 << 3;
    /// Create: the map's descriptor is write-only for user space.
    pub const BPF_F_WRONLY: u32 = 1 << 4;
    /// Create: stack-trace maps store build ids.
    pub const BPF_F_STACK_BUILD_ID: u32 = 1 << 5;
    /// Create: hash seed zero (deterministic bucket order).
    pub const BPF_F_ZERO_SEED: u32 = 1 << 6;
    /// Create: programs may only read the map.
    pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;
    /// Create: programs may only write the map.
    pub const BPF_F_WRONLY_PROG: u32 = 1 << 8;
    /// Create: clone a socket-local storage map.
    pub const BPF_F_CLONE: u32 = 1 << 9;
    /// Create: the array may be mmap()ed.
    pub const BPF_F_MMAPABLE: u32 = 1 << 10;
    /// Create: perf event arrays keep elements.
    pub const BPF_F_PRESERVE_ELEMS: u32 = 1 << 11;
    /// Create: an inner array map whose `max_entries` may differ between inner maps.
    pub const BPF_F_INNER_MAP: u32 = 1 << 12;
    /// Create: the map is a link (struct_ops).
    pub const BPF_F_LINK: u32 = 1 << 13;
    /// Create: path fd (object pinning).
    pub const BPF_F_PATH_FD: u32 = 1 << 14;
    /// Create: the value type BTF comes from a module's BTF fd.
    pub const BPF_F_VTYPE_BTF_OBJ_FD: u32 = 1 << 15;
    /// Create: a BPF token fd is given.
    pub const BPF_F_TOKEN_FD: u32 = 1 << 16;
    /// Create: arena faults raise SIGSEGV.
    pub const BPF_F_SEGV_ON_FAULT: u32 = 1 << 17;
    /// Create: arena addresses are not converted.
    pub const BPF_F_NO_USER_CONV: u32 = 1 << 18;

    /// `BPF_F_ACCESS_MASK`: the access flags every type accepts.
    pub const BPF_F_ACCESS_MASK: u32 =
        BPF_F_RDONLY | BPF_F_RDONLY_PROG | BPF_F_WRONLY | BPF_F_WRONLY_PROG;
}

/// The map types bpfkit implements, numbered as `enum bpf_map_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
#[non_exhaustive]
pub enum MapType {
    /// A hash table.
    #[doc(alias = "BPF_MAP_TYPE_HASH")]
    Hash = 1,
    /// A preallocated array indexed by `u32`.
    #[doc(alias = "BPF_MAP_TYPE_ARRAY")]
    Array = 2,
    /// The tail-call jump table.
    #[doc(alias = "BPF_MAP_TYPE_PROG_ARRAY")]
    ProgArray = 3,
    /// A hash table with a value per CPU.
    #[doc(alias = "BPF_MAP_TYPE_PERCPU_HASH")]
    PercpuHash = 5,
    /// An array with a value per CPU.
    #[doc(alias = "BPF_MAP_TYPE_PERCPU_ARRAY")]
    PercpuArray = 6,
    /// A hash table that evicts the least recently used element when full.
    #[doc(alias = "BPF_MAP_TYPE_LRU_HASH")]
    LruHash = 9,
    /// An LRU hash table with a value per CPU.
    #[doc(alias = "BPF_MAP_TYPE_LRU_PERCPU_HASH")]
    LruPercpuHash = 10,
    /// A longest-prefix-match trie.
    #[doc(alias = "BPF_MAP_TYPE_LPM_TRIE")]
    LpmTrie = 11,
    /// An array of maps.
    #[doc(alias = "BPF_MAP_TYPE_ARRAY_OF_MAPS")]
    ArrayOfMaps = 12,
    /// A hash of maps.
    #[doc(alias = "BPF_MAP_TYPE_HASH_OF_MAPS")]
    HashOfMaps = 13,
    /// A FIFO queue.
    #[doc(alias = "BPF_MAP_TYPE_QUEUE")]
    Queue = 22,
    /// A LIFO stack.
    #[doc(alias = "BPF_MAP_TYPE_STACK")]
    Stack = 23,
    /// A ring buffer shared with a user-space consumer.
    #[doc(alias = "BPF_MAP_TYPE_RINGBUF")]
    RingBuf = 27,
    /// Perf events (one per CPU by convention) that `bpf_perf_event_output` writes samples to.
    #[doc(alias = "BPF_MAP_TYPE_PERF_EVENT_ARRAY")]
    PerfEventArray = 4,
    /// Call chains by the id `bpf_get_stackid` returns.
    #[doc(alias = "BPF_MAP_TYPE_STACK_TRACE")]
    StackTrace = 7,
    /// Network devices by index, for `bpf_redirect_map`.
    #[doc(alias = "BPF_MAP_TYPE_DEVMAP")]
    DevMap = 14,
    /// Network devices by hash key, for `bpf_redirect_map`.
    #[doc(alias = "BPF_MAP_TYPE_DEVMAP_HASH")]
    DevMapHash = 25,
    /// CPUs by number, for `bpf_redirect_map`.
    #[doc(alias = "BPF_MAP_TYPE_CPUMAP")]
    CpuMap = 16,
}

impl MapType {
    /// Every implemented type.
    pub const ALL: [MapType; 18] = [
        Self::Hash,
        Self::Array,
        Self::ProgArray,
        Self::PercpuHash,
        Self::PercpuArray,
        Self::LruHash,
        Self::LruPercpuHash,
        Self::LpmTrie,
        Self::ArrayOfMaps,
        Self::HashOfMaps,
        Self::Queue,
        Self::Stack,
        Self::RingBuf,
        Self::PerfEventArray,
        Self::StackTrace,
        Self::DevMap,
        Self::DevMapHash,
        Self::CpuMap,
    ];

    /// The type with `BPF_MAP_TYPE_*` number `n`, if bpfkit implements it.
    #[must_use]
    pub fn from_raw(n: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|t| *t as u32 == n)
    }

    /// The `BPF_MAP_TYPE_*` number.
    #[must_use]
    pub fn raw(self) -> u32 {
        self as u32
    }

    /// The name bpftool and libbpf use (`"hash"`, `"lru_percpu_hash"`, ...).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Hash => "hash",
            Self::Array => "array",
            Self::ProgArray => "prog_array",
            Self::PercpuHash => "percpu_hash",
            Self::PercpuArray => "percpu_array",
            Self::LruHash => "lru_hash",
            Self::LruPercpuHash => "lru_percpu_hash",
            Self::LpmTrie => "lpm_trie",
            Self::ArrayOfMaps => "array_of_maps",
            Self::HashOfMaps => "hash_of_maps",
            Self::Queue => "queue",
            Self::Stack => "stack",
            Self::RingBuf => "ringbuf",
            Self::PerfEventArray => "perf_event_array",
            Self::StackTrace => "stack_trace",
            Self::DevMap => "devmap",
            Self::DevMapHash => "devmap_hash",
            Self::CpuMap => "cpumap",
        }
    }

    /// Whether values are per CPU (the system call copies one 8-byte-aligned value per CPU).
    #[must_use]
    pub fn is_percpu(self) -> bool {
        matches!(
            self,
            Self::PercpuHash | Self::PercpuArray | Self::LruPercpuHash
        )
    }
}

/// A map's metadata, as `BPF_OBJ_GET_INFO_BY_FD` reports it and the verifier needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapInfo {
    /// The map type.
    pub map_type: MapType,
    /// The map's id (unique in the process, from 1).
    pub id: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes (one CPU's value for per-CPU maps; 4 for maps of descriptors).
    pub value_size: u32,
    /// Maximum number of entries (bytes of the data area for a ring buffer).
    pub max_entries: u32,
    /// Creation flags.
    pub map_flags: u32,
    /// The map's name.
    pub name: String,
}

/// One map: its metadata and its storage.
///
/// `repr(C)` with the image first: a program's map pointer is the address of this struct,
/// and loads through it read the image of the map's Linux struct ([`image`]).
#[derive(Debug)]
#[repr(C)]
pub struct BpfMap {
    image: image::KernelImage,
    info: MapInfo,
    kind: MapKind,
}

/// The storage of a map, by family.
#[derive(Debug)]
#[non_exhaustive]
pub enum MapKind {
    /// hash, percpu_hash, lru_hash, lru_percpu_hash.
    Hash(HashTab),
    /// array, percpu_array.
    Array(ArrayMap),
    /// prog_array.
    ProgArray(ProgArray),
    /// array_of_maps, hash_of_maps.
    MapOfMaps(MapOfMaps),
    /// lpm_trie.
    LpmTrie(LpmTrie),
    /// queue, stack.
    QueueStack(QueueStack),
    /// ringbuf.
    RingBuf(RingBuf),
    /// perf_event_array.
    PerfEventArray(PerfEventArray),
    /// stack_trace.
    StackTrace(StackTraceMap),
    /// devmap, devmap_hash.
    DevMap(DevMap),
    /// cpumap.
    CpuMap(CpuMap),
}

/// The kernel's first check of an update's flags: unknown bits `EINVAL`, and `BPF_F_LOCK`
/// `EINVAL` because no bpfkit map value has a `bpf_spin_lock` (that needs BTF).
pub(crate) fn check_update_flags(map_flags: u64) -> Result<(), Errno> {
    if (map_flags & !flags::BPF_F_LOCK) > flags::BPF_EXIST {
        return Err(Errno::Einval(
            format!("unknown update flags {map_flags:#x}").into(),
        ));
    }
    if map_flags & flags::BPF_F_LOCK != 0 {
        return Err(Errno::Einval(
            "BPF_F_LOCK needs a bpf_spin_lock in the value".into(),
        ));
    }
    Ok(())
}

/// Next map id.
static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// Creates a map from checked attributes: see [`attr`] for the checks. `inner` is the inner map
/// template for maps of maps (resolved from `inner_map_fd` by the object table).
pub fn create(a: &MapAttr, inner: Option<&BpfMap>) -> Result<BpfMap, Errno> {
    let ty = a.check()?;
    let ncpus = cpu::possible_cpus();
    let mut max_entries = a.max_entries;
    if matches!(ty, MapType::LruHash | MapType::LruPercpuHash)
        && a.map_flags & flags::BPF_F_NO_COMMON_LRU != 0
    {
        // htab_map_alloc: every CPU's LRU list gets the same number of elements.
        max_entries = max_entries
            .checked_next_multiple_of(ncpus)
            .unwrap_or(max_entries - max_entries % ncpus);
    }
    let kind = match ty {
        MapType::Hash | MapType::PercpuHash | MapType::LruHash | MapType::LruPercpuHash => {
            MapKind::Hash(HashTab::new(
                ty,
                a.key_size,
                a.value_size,
                max_entries,
                a.map_flags,
                ncpus,
            )?)
        }
        MapType::Array | MapType::PercpuArray => MapKind::Array(ArrayMap::new(
            ty == MapType::PercpuArray,
            a.value_size,
            a.max_entries,
            ncpus,
        )?),
        MapType::ProgArray => MapKind::ProgArray(ProgArray::new(a.max_entries)?),
        MapType::ArrayOfMaps | MapType::HashOfMaps => {
            let inner = inner.ok_or_else(|| {
                Errno::Einval("a map of maps needs an inner map template (inner_map_fd)".into())
            })?;
            let template = InnerTemplate::from_map(inner)?;
            MapKind::MapOfMaps(MapOfMaps::new(
                ty == MapType::HashOfMaps,
                a.key_size,
                a.max_entries,
                a.map_flags,
                template,
            )?)
        }
        MapType::LpmTrie => MapKind::LpmTrie(LpmTrie::new(a.key_size, a.value_size, a.max_entries)),
        MapType::Queue | MapType::Stack => MapKind::QueueStack(QueueStack::new(
            ty == MapType::Stack,
            a.value_size,
            a.max_entries,
        )?),
        MapType::RingBuf => MapKind::RingBuf(RingBuf::new(a.max_entries)?),
        MapType::PerfEventArray => {
            MapKind::PerfEventArray(PerfEventArray::new(a.max_entries, a.map_flags)?)
        }
        MapType::StackTrace => MapKind::StackTrace(StackTraceMap::new(
            a.value_size,
            a.max_entries,
            a.map_flags & flags::BPF_F_STACK_BUILD_ID != 0,
        )?),
        MapType::DevMap | MapType::DevMapHash => MapKind::DevMap(DevMap::new(
            ty == MapType::DevMapHash,
            a.value_size,
            a.max_entries,
        )?),
        MapType::CpuMap => MapKind::CpuMap(CpuMap::new(a.value_size, a.max_entries)?),
    };
    // dev_map_init_map: lookups return a pointer straight to the device's value, so programs
    // may only read it.
    let map_flags = if matches!(ty, MapType::DevMap | MapType::DevMapHash) {
        a.map_flags | flags::BPF_F_RDONLY_PROG
    } else {
        a.map_flags
    };
    let info = MapInfo {
        map_type: ty,
        id: NEXT_ID.fetch_add(1, Relaxed),
        key_size: a.key_size,
        value_size: a.value_size,
        max_entries,
        map_flags,
        name: a.name.clone(),
    };
    Ok(BpfMap {
        image: image::KernelImage::new(&info),
        info,
        kind,
    })
}

fn unsupported(what: &str, ty: MapType) -> Errno {
    Errno::Einval(format!("{what} is not supported on a {} map", ty.name()).into())
}

impl BpfMap {
    /// The map's metadata.
    #[must_use]
    pub fn info(&self) -> &MapInfo {
        &self.info
    }

    /// The map's storage, for type-specific access.
    #[must_use]
    pub fn kind(&self) -> &MapKind {
        &self.kind
    }

    /// The map's id.
    #[must_use]
    pub fn id(&self) -> u32 {
        self.info.id
    }

    /// The size of a value as the system call copies it: `value_size`, or for per-CPU maps
    /// `round_up(value_size, 8) * possible_cpus()`.
    #[must_use]
    pub fn user_value_size(&self) -> usize {
        match &self.kind {
            MapKind::Hash(h) => h.user_value_size(),
            MapKind::Array(a) => a.user_value_size(),
            _ => self.info.value_size as usize,
        }
    }

    fn check_key(&self, key: &[u8]) -> Result<(), Errno> {
        if key.len() == self.info.key_size as usize {
            Ok(())
        } else {
            Err(Errno::Einval(
                format!(
                    "key is {} bytes, the map's key_size is {}",
                    key.len(),
                    self.info.key_size
                )
                .into(),
            ))
        }
    }

    fn check_value(&self, value: &[u8]) -> Result<(), Errno> {
        let want = self.user_value_size();
        if value.len() == want {
            Ok(())
        } else {
            Err(Errno::Einval(
                format!(
                    "value buffer is {} bytes, the map copies {want}",
                    value.len()
                )
                .into(),
            ))
        }
    }

    /// `BPF_MAP_LOOKUP_ELEM`: copies the value for `key` into `value` (exactly
    /// [`Self::user_value_size`] bytes). Queues and stacks peek; maps of descriptors give the
    /// stored object's id as a `u32`.
    pub fn lookup(&self, key: &[u8], value: &mut [u8]) -> Result<(), Errno> {
        self.check_key(key)?;
        self.check_value(value)?;
        let id_out = |id: u32, value: &mut [u8]| {
            for (d, s) in value.iter_mut().zip(id.to_ne_bytes()) {
                *d = s;
            }
        };
        match &self.kind {
            MapKind::Hash(h) => h.lookup(key, value),
            MapKind::Array(a) => a.lookup(key, value),
            MapKind::LpmTrie(t) => t.lookup(key, value),
            MapKind::QueueStack(q) => q.peek(value),
            MapKind::ProgArray(p) => {
                let prog = p.entries().lookup(key)?;
                id_out(prog.id(), value);
                Ok(())
            }
            MapKind::MapOfMaps(m) => {
                let inner = m.lookup(key)?;
                id_out(inner.id(), value);
                Ok(())
            }
            MapKind::RingBuf(_) => Err(Errno::Enotsupp(
                "ring buffers have no elements to look up".into(),
            )),
            MapKind::PerfEventArray(_) => Err(Errno::Enotsupp(
                "perf event arrays cannot be read from user space".into(),
            )),
            MapKind::StackTrace(s) => s.lookup(key, value, false),
            MapKind::DevMap(d) => d.lookup(key, value),
            MapKind::CpuMap(c) => c.lookup(key, value),
        }
    }

    /// `BPF_MAP_UPDATE_ELEM` for maps of data (queues and stacks push). Maps of descriptors are
    /// updated through [`crate::Bpf::map_update_elem`], which resolves the descriptor.
    pub fn update(&self, key: &[u8], value: &[u8], map_flags: u64) -> Result<(), Errno> {
        self.check_key(key)?;
        self.check_value(value)?;
        match &self.kind {
            MapKind::Hash(h) => h.update(key, value, map_flags, None),
            MapKind::Array(a) => a.update(key, value, map_flags, None),
            MapKind::LpmTrie(t) => t.update(key, value, map_flags),
            MapKind::QueueStack(q) => q.push(value, map_flags),
            MapKind::ProgArray(_) | MapKind::MapOfMaps(_) | MapKind::PerfEventArray(_) => Err(
                Errno::Einval("the value is a descriptor: update through the object table".into()),
            ),
            MapKind::StackTrace(_) => Err(Errno::Einval(
                "stack traces are stored by bpf_get_stackid only".into(),
            )),
            MapKind::DevMap(d) => d.update(key, value, map_flags),
            MapKind::CpuMap(c) => c.update(key, value, map_flags),
            MapKind::RingBuf(_) => Err(Errno::Enotsupp(
                "ring buffers have no elements to update".into(),
            )),
        }
    }

    /// `BPF_MAP_DELETE_ELEM`.
    pub fn delete(&self, key: &[u8]) -> Result<(), Errno> {
        self.check_key(key)?;
        match &self.kind {
            MapKind::Hash(h) => h.delete(key),
            MapKind::Array(_) => Err(Errno::Einval("array elements cannot be deleted".into())),
            MapKind::LpmTrie(t) => t.delete(key),
            MapKind::ProgArray(p) => p.entries().delete(key),
            MapKind::MapOfMaps(m) => m.delete(key),
            MapKind::QueueStack(_) => Err(unsupported("delete", self.info.map_type)),
            MapKind::RingBuf(_) => Err(Errno::Enotsupp(
                "ring buffers have no elements to delete".into(),
            )),
            MapKind::PerfEventArray(p) => p.entries().delete(key),
            MapKind::StackTrace(s) => s.delete(key),
            MapKind::DevMap(d) => d.delete(key),
            MapKind::CpuMap(c) => c.delete(key),
        }
    }

    /// `BPF_MAP_GET_NEXT_KEY`: writes the key after `key` (or the first key for `None` or a
    /// missing key) into `next`; `ENOENT` after the last.
    pub fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), Errno> {
        if let Some(k) = key {
            self.check_key(k)?;
        }
        if next.len() != self.info.key_size as usize {
            return Err(Errno::Einval(
                format!(
                    "next key buffer is {} bytes, the map's key_size is {}",
                    next.len(),
                    self.info.key_size
                )
                .into(),
            ));
        }
        match &self.kind {
            MapKind::Hash(h) => h.get_next_key(key, next),
            MapKind::Array(a) => a.get_next_key(key, next),
            MapKind::LpmTrie(t) => t.get_next_key(key, next),
            MapKind::ProgArray(p) => p.entries().get_next_key(key, next),
            MapKind::MapOfMaps(m) => m.get_next_key(key, next),
            MapKind::QueueStack(_) => Err(unsupported("get_next_key", self.info.map_type)),
            MapKind::RingBuf(_) => Err(Errno::Enotsupp("ring buffers have no keys".into())),
            MapKind::PerfEventArray(p) => p.entries().get_next_key(key, next),
            MapKind::StackTrace(s) => s.get_next_key(key, next),
            MapKind::DevMap(d) => d.get_next_key(key, next),
            MapKind::CpuMap(c) => c.get_next_key(key, next),
        }
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM`: pops a queue or stack, or removes a hash element
    /// returning its value.
    pub fn lookup_and_delete(&self, key: &[u8], value: &mut [u8]) -> Result<(), Errno> {
        self.check_key(key)?;
        self.check_value(value)?;
        match &self.kind {
            MapKind::QueueStack(q) => q.pop(value),
            MapKind::Hash(h) => h.lookup_and_delete(key, value),
            MapKind::StackTrace(s) => s.lookup(key, value, true),
            MapKind::RingBuf(_) => Err(Errno::Enotsupp("ring buffers have no elements".into())),
            _ => Err(Errno::Enotsupp(
                format!(
                    "lookup_and_delete is not supported on a {} map",
                    self.info.map_type.name()
                )
                .into(),
            )),
        }
    }

    /// The pointer `bpf_map_lookup_elem` returns to a program: the value for `key` in the
    /// calling CPU's slot ([`cpu::current_cpu`]) for per-CPU maps, the inner map's address for
    /// maps of maps, or null. `key` must be `key_size` bytes (null otherwise).
    ///
    /// The pointer stays valid while this map lives (see the module doc).
    #[must_use]
    pub fn lookup_ptr(&self, key: &[u8]) -> *mut u8 {
        self.lookup_ptr_on_cpu(key, cpu::current_cpu())
    }

    /// [`Self::lookup_ptr`] for CPU slot `cpu` (`bpf_map_lookup_percpu_elem`); null for a CPU
    /// that does not exist.
    #[must_use]
    pub fn lookup_ptr_on_cpu(&self, key: &[u8], cpu: u32) -> *mut u8 {
        if key.len() != self.info.key_size as usize || cpu >= cpu::possible_cpus() {
            return std::ptr::null_mut();
        }
        match &self.kind {
            MapKind::Hash(h) => h.lookup_ptr(key, cpu as usize),
            MapKind::Array(a) => a.lookup_ptr(key, cpu as usize),
            MapKind::LpmTrie(t) => t.lookup_ptr(key),
            MapKind::MapOfMaps(m) => m.lookup_ptr(key),
            MapKind::DevMap(d) => d.lookup_ptr(key),
            _ => std::ptr::null_mut(),
        }
    }

    /// `bpf_map_update_elem` from a program: `value` is one value (`value_size` bytes, the
    /// calling CPU's for per-CPU maps). Returns 0 or the kernel's negative errno.
    #[must_use]
    pub fn prog_update(&self, key: &[u8], value: &[u8], map_flags: u64) -> i64 {
        if key.len() != self.info.key_size as usize || value.len() < self.info.value_size as usize {
            return Errno::Einval("".into()).to_neg();
        }
        let value = &value[..self.info.value_size as usize];
        let cpu = cpu::current_cpu() as usize;
        let r = match &self.kind {
            MapKind::Hash(h) => h.update(key, value, map_flags, Some(cpu)),
            MapKind::Array(a) => a.update(key, value, map_flags, Some(cpu)),
            MapKind::LpmTrie(t) => t.update(key, value, map_flags),
            // Programs push to queues and stacks with bpf_map_push_elem; their
            // map_update_elem is EINVAL (queue_stack_map_update_elem).
            _ => Err(unsupported("update from a program", self.info.map_type)),
        };
        r.map_or_else(|e| e.to_neg(), |()| 0)
    }

    /// `bpf_map_delete_elem` from a program: 0 or the kernel's negative errno.
    #[must_use]
    pub fn prog_delete(&self, key: &[u8]) -> i64 {
        match &self.kind {
            MapKind::Hash(_) | MapKind::Array(_) | MapKind::LpmTrie(_) => {
                self.delete(key).map_or_else(|e| e.to_neg(), |()| 0)
            }
            _ => unsupported("delete from a program", self.info.map_type).to_neg(),
        }
    }

    /// `bpf_map_push_elem`: 0 or the kernel's negative errno.
    #[must_use]
    pub fn push(&self, value: &[u8], map_flags: u64) -> i64 {
        match &self.kind {
            MapKind::QueueStack(q) => q.push(value, map_flags).map_or_else(|e| e.to_neg(), |()| 0),
            _ => unsupported("push", self.info.map_type).to_neg(),
        }
    }

    /// `bpf_map_pop_elem` into `out` (`value_size` bytes): 0 or the kernel's negative errno.
    #[must_use]
    pub fn pop(&self, out: &mut [u8]) -> i64 {
        match &self.kind {
            MapKind::QueueStack(q) => q.pop(out).map_or_else(|e| e.to_neg(), |()| 0),
            _ => unsupported("pop", self.info.map_type).to_neg(),
        }
    }

    /// `bpf_map_peek_elem` into `out` (`value_size` bytes): 0 or the kernel's negative errno.
    #[must_use]
    pub fn peek(&self, out: &mut [u8]) -> i64 {
        match &self.kind {
            MapKind::QueueStack(q) => q.peek(out).map_or_else(|e| e.to_neg(), |()| 0),
            _ => unsupported("peek", self.info.map_type).to_neg(),
        }
    }

    /// The ring buffer, for a ring buffer map.
    #[must_use]
    pub fn as_ringbuf(&self) -> Option<&RingBuf> {
        match &self.kind {
            MapKind::RingBuf(r) => Some(r),
            _ => None,
        }
    }

    /// The perf event array, for a perf event array map.
    #[must_use]
    pub fn as_perf_event_array(&self) -> Option<&PerfEventArray> {
        match &self.kind {
            MapKind::PerfEventArray(p) => Some(p),
            _ => None,
        }
    }

    /// The stack trace table, for a stack trace map.
    #[must_use]
    pub fn as_stack_trace(&self) -> Option<&StackTraceMap> {
        match &self.kind {
            MapKind::StackTrace(s) => Some(s),
            _ => None,
        }
    }

    /// The devices, for a devmap or devmap_hash.
    #[must_use]
    pub fn as_devmap(&self) -> Option<&DevMap> {
        match &self.kind {
            MapKind::DevMap(d) => Some(d),
            _ => None,
        }
    }

    /// The CPUs, for a cpumap.
    #[must_use]
    pub fn as_cpumap(&self) -> Option<&CpuMap> {
        match &self.kind {
            MapKind::CpuMap(c) => Some(c),
            _ => None,
        }
    }

    /// The program array, for a prog array map.
    #[must_use]
    pub fn as_prog_array(&self) -> Option<&ProgArray> {
        match &self.kind {
            MapKind::ProgArray(p) => Some(p),
            _ => None,
        }
    }

    /// The outer map, for an array or hash of maps.
    #[must_use]
    pub fn as_map_of_maps(&self) -> Option<&MapOfMaps> {
        match &self.kind {
            MapKind::MapOfMaps(m) => Some(m),
            _ => None,
        }
    }

    /// Called when the last user-space descriptor of the map closes (`map_release_uref`): a
    /// prog array drops its programs, breaking program ↔ prog array reference cycles.
    pub fn release_uref(&self) {
        match &self.kind {
            MapKind::ProgArray(p) => p.entries().clear(),
            MapKind::PerfEventArray(p) => p.release_uref(),
            _ => {}
        }
    }
}

/// A shared map, as the object table and programs hold it.
pub type MapRef = Arc<BpfMap>;
