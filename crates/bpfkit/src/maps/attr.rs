//! Map creation attributes and their checks, in the kernel's order: `map_create` in
//! kernel/bpf/syscall.c, then the type's `map_alloc_check` / `map_alloc` (hashtab.c,
//! arraymap.c, lpm_trie.c, queue_stack_maps.c, ringbuf.c, map_in_map.c, stackmap.c, devmap.c, cpumap.c).

use super::{flags as f, MapType};
use crate::errno::Errno;

/// `KMALLOC_MAX_SIZE` on x86-64 (`1 << (MAX_PAGE_ORDER + PAGE_SHIFT)`).
const KMALLOC_MAX_SIZE: u64 = 1 << 22;
/// `sizeof(struct htab_elem)` on x86-64.
const HTAB_ELEM_SIZE: u64 = 48;
/// `sizeof(struct bucket)` of the hash table on x86-64.
const HTAB_BUCKET_SIZE: u64 = 16;
/// `PCPU_MIN_UNIT_SIZE`: the bound on one CPU's value of a per-CPU map.
const PCPU_MIN_UNIT_SIZE: u64 = 32 << 10;
/// `sizeof(struct lpm_trie_node)` on x86-64 (two child pointers, prefixlen, flags).
const LPM_TRIE_NODE_SIZE: u64 = 24;
/// `LPM_DATA_SIZE_MAX`: at most 256 data bytes (2048-bit prefixes).
const LPM_DATA_SIZE_MAX: u32 = 256;
/// `PAGE_SIZE` on x86-64.
const PAGE_SIZE: u32 = 4096;

const HTAB_CREATE_FLAG_MASK: u32 = f::BPF_F_NO_PREALLOC
    | f::BPF_F_NO_COMMON_LRU
    | f::BPF_F_NUMA_NODE
    | f::BPF_F_ACCESS_MASK
    | f::BPF_F_ZERO_SEED;
const ARRAY_CREATE_FLAG_MASK: u32 = f::BPF_F_NUMA_NODE
    | f::BPF_F_MMAPABLE
    | f::BPF_F_ACCESS_MASK
    | f::BPF_F_PRESERVE_ELEMS
    | f::BPF_F_INNER_MAP;
const LPM_CREATE_FLAG_MASK: u32 = f::BPF_F_NO_PREALLOC | f::BPF_F_NUMA_NODE | f::BPF_F_ACCESS_MASK;
const QUEUE_STACK_CREATE_FLAG_MASK: u32 = f::BPF_F_NUMA_NODE | f::BPF_F_ACCESS_MASK;
const RINGBUF_CREATE_FLAG_MASK: u32 = f::BPF_F_NUMA_NODE;

/// The attributes of `BPF_MAP_CREATE` that bpfkit uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapAttr {
    /// `BPF_MAP_TYPE_*` number (unknown numbers are `EINVAL`, as in the kernel).
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// `BPF_F_*` creation flags ([`super::flags`]).
    pub map_flags: u32,
    /// Descriptor of the inner map template, for maps of maps.
    pub inner_map_fd: u32,
    /// NUMA node, read when `BPF_F_NUMA_NODE` is set (bpfkit has node 0 only).
    pub numa_node: u32,
    /// Object name: at most 15 characters, ASCII letters, digits, `_` and `.`.
    pub name: String,
}

impl MapAttr {
    /// Attributes of a map of type `ty` with no flags.
    #[must_use]
    pub fn new(ty: MapType, key_size: u32, value_size: u32, max_entries: u32) -> Self {
        Self {
            map_type: ty.raw(),
            key_size,
            value_size,
            max_entries,
            ..Self::default()
        }
    }

    /// The same attributes with creation flags `map_flags`.
    #[must_use]
    pub fn flags(mut self, map_flags: u32) -> Self {
        self.map_flags = map_flags;
        self
    }

    /// The same attributes with the inner map template `fd`.
    #[must_use]
    pub fn inner_map_fd(mut self, fd: u32) -> Self {
        self.inner_map_fd = fd;
        self
    }

    /// The same attributes with a name.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The NUMA node given by the attributes, when `BPF_F_NUMA_NODE` is set.
    fn numa(&self) -> Option<u32> {
        (self.map_flags & f::BPF_F_NUMA_NODE != 0).then_some(self.numa_node)
    }

    /// Checks the attributes as the kernel does and returns the map type.
    pub(crate) fn check(&self) -> Result<MapType, Errno> {
        if self.map_flags & f::BPF_F_TOKEN_FD != 0 {
            // The kernel takes the token flag off before the type's checks and only then fails
            // to find a BPF token (bpfkit has none) behind map_token_fd.
            let without = Self {
                map_flags: self.map_flags & !f::BPF_F_TOKEN_FD,
                ..self.clone()
            };
            // Types whose checks are all in `map_alloc` (no `map_alloc_check`) meet the token
            // lookup before any of them.
            let alloc_only = MapType::from_raw(self.map_type).is_some_and(|t| {
                matches!(
                    t,
                    MapType::StackTrace | MapType::DevMap | MapType::DevMapHash | MapType::CpuMap
                )
            });
            if !alloc_only {
                without.check()?;
            } else if without.map_flags & f::BPF_F_RDONLY != 0
                && without.map_flags & f::BPF_F_WRONLY != 0
            {
                return Err(inval("BPF_F_RDONLY and BPF_F_WRONLY together"));
            }
            return Err(inval("BPF_F_TOKEN_FD: bpfkit has no BPF tokens"));
        }
        if self.map_flags & f::BPF_F_RDONLY != 0 && self.map_flags & f::BPF_F_WRONLY != 0 {
            return Err(inval("BPF_F_RDONLY and BPF_F_WRONLY together"));
        }
        if let Some(node) = self.numa() {
            if node != 0 {
                return Err(inval(format!("NUMA node {node} is not online")));
            }
        }
        let ty = MapType::from_raw(self.map_type).ok_or_else(|| {
            inval(format!(
                "map type {} is unknown or not implemented by bpfkit",
                self.map_type
            ))
        })?;
        match ty {
            MapType::Hash | MapType::PercpuHash | MapType::LruHash | MapType::LruPercpuHash => {
                self.check_htab(ty)?;
            }
            MapType::HashOfMaps => {
                if self.value_size != 4 {
                    return Err(inval("value_size must be 4 (an fd) for a hash of maps"));
                }
                self.check_htab(ty)?;
            }
            MapType::Array | MapType::PercpuArray => self.check_array(ty)?,
            MapType::ProgArray | MapType::ArrayOfMaps | MapType::PerfEventArray => {
                if self.value_size != 4 {
                    return Err(inval("value_size must be 4 (an fd) for an fd array"));
                }
                if self.map_flags & (f::BPF_F_RDONLY_PROG | f::BPF_F_WRONLY_PROG) != 0 {
                    return Err(inval("fd arrays take no BPF_F_RDONLY_PROG/WRONLY_PROG"));
                }
                self.check_array(ty)?;
            }
            MapType::LpmTrie => self.check_lpm()?,
            MapType::Queue | MapType::Stack => self.check_queue_stack()?,
            MapType::RingBuf => self.check_ringbuf()?,
            MapType::StackTrace => self.check_stack_trace()?,
            MapType::DevMap | MapType::DevMapHash => self.check_devmap(ty)?,
            MapType::CpuMap => self.check_cpumap()?,
        }
        check_name(&self.name)?;
        Ok(ty)
    }

    /// `htab_map_alloc_check` and the size checks of `htab_map_alloc`.
    fn check_htab(&self, ty: MapType) -> Result<(), Errno> {
        let percpu = matches!(ty, MapType::PercpuHash | MapType::LruPercpuHash);
        let lru = matches!(ty, MapType::LruHash | MapType::LruPercpuHash);
        let prealloc = self.map_flags & f::BPF_F_NO_PREALLOC == 0;
        let percpu_lru = self.map_flags & f::BPF_F_NO_COMMON_LRU != 0;
        if self.map_flags & !HTAB_CREATE_FLAG_MASK != 0 || !access_ok(self.map_flags) {
            return Err(inval(format!(
                "flags {:#x} are not valid for a {} map",
                self.map_flags,
                ty.name()
            )));
        }
        if !lru && percpu_lru {
            return Err(inval("BPF_F_NO_COMMON_LRU is only for LRU maps"));
        }
        if lru && !prealloc {
            return Err(Errno::Enotsupp(
                "LRU maps are always preallocated (BPF_F_NO_PREALLOC)".into(),
            ));
        }
        if self.numa().is_some() && (percpu || percpu_lru) {
            return Err(inval("per-CPU maps take no NUMA node"));
        }
        self.check_nonzero()?;
        if u64::from(self.key_size) + u64::from(self.value_size)
            >= KMALLOC_MAX_SIZE - HTAB_ELEM_SIZE
        {
            return Err(Errno::E2big("key_size + value_size is too large".into()));
        }
        self.check_percpu_value(percpu)?;
        if self.max_entries > 1 << 31 {
            return Err(Errno::E2big("max_entries is above 2^31".into()));
        }
        let n_buckets = u64::from(self.max_entries).next_power_of_two();
        if n_buckets > u64::from(u32::MAX) / HTAB_BUCKET_SIZE {
            return Err(Errno::E2big("too many hash buckets".into()));
        }
        Ok(())
    }

    /// `array_map_alloc_check`.
    fn check_array(&self, ty: MapType) -> Result<(), Errno> {
        let percpu = ty == MapType::PercpuArray;
        if self.max_entries == 0
            || self.key_size != 4
            || self.value_size == 0
            || self.map_flags & !ARRAY_CREATE_FLAG_MASK != 0
            || !access_ok(self.map_flags)
            || (percpu && self.numa().is_some())
        {
            return Err(inval(format!(
                "a {} map needs key_size 4, value_size > 0, max_entries > 0 and valid flags",
                ty.name()
            )));
        }
        if ty != MapType::Array && self.map_flags & (f::BPF_F_MMAPABLE | f::BPF_F_INNER_MAP) != 0 {
            return Err(inval(
                "BPF_F_MMAPABLE and BPF_F_INNER_MAP are for arrays only",
            ));
        }
        if ty != MapType::PerfEventArray && self.map_flags & f::BPF_F_PRESERVE_ELEMS != 0 {
            return Err(inval("BPF_F_PRESERVE_ELEMS is for perf event arrays only"));
        }
        if self.value_size > i32::MAX as u32 {
            return Err(Errno::E2big("value_size is above INT_MAX".into()));
        }
        self.check_percpu_value(percpu)
    }

    /// `trie_alloc`'s checks.
    fn check_lpm(&self) -> Result<(), Errno> {
        let val_max = KMALLOC_MAX_SIZE - u64::from(LPM_DATA_SIZE_MAX) - LPM_TRIE_NODE_SIZE;
        if self.max_entries == 0
            || self.map_flags & f::BPF_F_NO_PREALLOC == 0
            || self.map_flags & !LPM_CREATE_FLAG_MASK != 0
            || !access_ok(self.map_flags)
            || self.key_size < 4 + 1
            || self.key_size > 4 + LPM_DATA_SIZE_MAX
            || self.value_size < 1
            || u64::from(self.value_size) > val_max
        {
            return Err(inval(
                "an LPM trie needs BPF_F_NO_PREALLOC, key_size 5..=260, value_size > 0 and \
                 max_entries > 0",
            ));
        }
        Ok(())
    }

    /// `queue_stack_map_alloc_check`.
    fn check_queue_stack(&self) -> Result<(), Errno> {
        if self.max_entries == 0
            || self.key_size != 0
            || self.value_size == 0
            || self.map_flags & !QUEUE_STACK_CREATE_FLAG_MASK != 0
            || !access_ok(self.map_flags)
        {
            return Err(inval(
                "a queue or stack needs key_size 0, value_size > 0 and max_entries > 0",
            ));
        }
        if u64::from(self.value_size) > KMALLOC_MAX_SIZE {
            return Err(Errno::E2big("value_size is above KMALLOC_MAX_SIZE".into()));
        }
        Ok(())
    }

    /// `ringbuf_map_alloc`'s checks.
    fn check_ringbuf(&self) -> Result<(), Errno> {
        if self.map_flags & !RINGBUF_CREATE_FLAG_MASK != 0 {
            return Err(inval("a ring buffer takes no flags but BPF_F_NUMA_NODE"));
        }
        if self.key_size != 0
            || self.value_size != 0
            || !self.max_entries.is_power_of_two()
            || !self.max_entries.is_multiple_of(PAGE_SIZE)
        {
            return Err(inval(
                "a ring buffer needs key_size 0, value_size 0 and max_entries a power of 2 \
                 multiple of the page size",
            ));
        }
        Ok(())
    }

    /// `stack_map_alloc`'s checks.
    fn check_stack_trace(&self) -> Result<(), Errno> {
        const MASK: u32 =
            f::BPF_F_NUMA_NODE | f::BPF_F_RDONLY | f::BPF_F_WRONLY | f::BPF_F_STACK_BUILD_ID;
        /// `sizeof(struct bpf_stack_build_id)`.
        const BUILD_ID_SIZE: u32 = 32;
        let max_stack = super::stack_trace::PERF_EVENT_MAX_STACK;
        if self.map_flags & !MASK != 0
            || self.max_entries == 0
            || self.key_size != 4
            || self.value_size < 8
            || !self.value_size.is_multiple_of(8)
        {
            return Err(inval(
                "a stack trace map needs key_size 4, value_size a multiple of 8 and max_entries > 0",
            ));
        }
        let too_deep = if self.map_flags & f::BPF_F_STACK_BUILD_ID != 0 {
            !self.value_size.is_multiple_of(BUILD_ID_SIZE)
                || self.value_size / BUILD_ID_SIZE > max_stack
        } else {
            self.value_size / 8 > max_stack
        };
        if too_deep {
            return Err(inval(format!(
                "value_size {} holds more frames than perf_event_max_stack ({max_stack})",
                self.value_size
            )));
        }
        if self.max_entries > 1 << 31 {
            return Err(Errno::E2big("max_entries is above 2^31".into()));
        }
        Ok(())
    }

    /// `dev_map_init_map`'s checks (devmap and devmap_hash).
    fn check_devmap(&self, ty: MapType) -> Result<(), Errno> {
        const MASK: u32 = f::BPF_F_NUMA_NODE | f::BPF_F_RDONLY | f::BPF_F_WRONLY;
        if self.max_entries == 0
            || self.key_size != 4
            || !matches!(self.value_size, 4 | 8)
            || self.map_flags & !MASK != 0
        {
            return Err(inval(
                "a devmap needs key_size 4, value_size 4 or 8 and max_entries > 0",
            ));
        }
        if ty == MapType::DevMapHash && self.max_entries > 1 << 31 {
            return Err(inval("a devmap_hash has at most 2^31 buckets"));
        }
        Ok(())
    }

    /// `cpu_map_alloc`'s checks.
    fn check_cpumap(&self) -> Result<(), Errno> {
        if self.max_entries == 0
            || self.key_size != 4
            || !matches!(self.value_size, 4 | 8)
            || self.map_flags & !f::BPF_F_NUMA_NODE != 0
        {
            return Err(inval(
                "a cpumap needs key_size 4, value_size 4 or 8, max_entries > 0 and no flags \
                 but BPF_F_NUMA_NODE",
            ));
        }
        let nr_cpus = super::cpumap::nr_cpus();
        if self.max_entries > nr_cpus {
            return Err(Errno::E2big(
                format!("max_entries is above NR_CPUS ({nr_cpus})").into(),
            ));
        }
        Ok(())
    }

    fn check_nonzero(&self) -> Result<(), Errno> {
        if self.max_entries == 0 || self.key_size == 0 || self.value_size == 0 {
            return Err(inval(
                "max_entries, key_size and value_size must be non-zero",
            ));
        }
        Ok(())
    }

    fn check_percpu_value(&self, percpu: bool) -> Result<(), Errno> {
        if percpu && u64::from(self.value_size).next_multiple_of(8) > PCPU_MIN_UNIT_SIZE {
            return Err(Errno::E2big(
                "a per-CPU value is limited to 32 KiB (PCPU_MIN_UNIT_SIZE)".into(),
            ));
        }
        Ok(())
    }
}

fn inval(msg: impl Into<crate::errno::Msg>) -> Errno {
    Errno::Einval(msg.into())
}

/// `bpf_map_flags_access_ok`: not both read-only and write-only for programs.
fn access_ok(flags: u32) -> bool {
    let both = f::BPF_F_RDONLY_PROG | f::BPF_F_WRONLY_PROG;
    flags & both != both
}

/// `bpf_obj_name_cpy`: up to 15 characters of `[A-Za-z0-9_.]`.
fn check_name(name: &str) -> Result<(), Errno> {
    if name.len() >= 16 {
        return Err(inval(format!("name {name:?} is longer than 15 bytes")));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '.'))
    {
        return Err(inval(format!("name {name:?} has the character {c:?}")));
    }
    Ok(())
}
