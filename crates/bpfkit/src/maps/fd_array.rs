//! Maps whose values are objects named by descriptors: `BPF_MAP_TYPE_PROG_ARRAY`,
//! `BPF_MAP_TYPE_ARRAY_OF_MAPS` (kernel/bpf/arraymap.c's fd arrays) and
//! `BPF_MAP_TYPE_HASH_OF_MAPS` (hashtab.c's fd hash, map_in_map.c's template checks).
//!
//! From user space an update's value is a descriptor (a `u32`), resolved by the object table
//! ([`crate::Bpf`]), and a lookup returns the object's id, as the kernel's
//! `map_fd_sys_lookup_elem`. Errnos as the kernel: an fd array accepts only `BPF_ANY` (else
//! `EINVAL`), an index past the end is `E2BIG` for update and delete and `ENOENT` for lookup, an
//! empty slot `ENOENT`. The fd hash is a [`HashTab`] (the hash map's flags, capacity and, with
//! `BPF_F_ZERO_SEED`, iteration order) whose values are inner map addresses.
//!
//! Programs get the object itself: the runtime takes an `Arc` of a prog array's program for a
//! tail call, and a map-in-map lookup yields the inner map's address. Inner maps replaced or
//! deleted while a program may still use that address are kept alive until the outer map is
//! dropped (the kernel defers their release by RCU).

use std::any::Any;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use super::hash::HashTab;
use super::{flags, BpfMap, MapType};
use crate::errno::Errno;

/// What a prog array holds: a loaded program, as the runtime defines it.
pub trait ProgEntry: Send + Sync + fmt::Debug + 'static {
    /// The program's `BPF_PROG_TYPE_*` number (tail calls only reach programs of one type).
    fn prog_type(&self) -> u32;
    /// The program's id, which a user-space lookup of a prog array returns.
    fn id(&self) -> u32;
    /// The concrete program, for the runtime to downcast.
    fn as_any(&self) -> &dyn Any;
}

/// An array of objects (`T` is a program for prog arrays, a map for arrays of maps).
pub struct FdArray<T: ?Sized> {
    max_entries: u32,
    slots: Box<[RwLock<Option<Arc<T>>>]>,
    /// Objects removed from slots, kept alive for programs that may still hold their address.
    retired: Mutex<Vec<Arc<T>>>,
    retire: bool,
}

impl<T: ?Sized> fmt::Debug for FdArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FdArray")
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

/// Most slots bpfkit agrees to allocate for an fd array (beyond it: `ENOMEM`).
const MAX_FD_ARRAY_ENTRIES: u32 = 1 << 26;

fn index_of(key: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    let n = key.len().min(4);
    b[..n].copy_from_slice(&key[..n]);
    u32::from_ne_bytes(b)
}

impl<T: ?Sized> FdArray<T> {
    /// `max_entries` empty slots; `retire` keeps removed objects alive (maps of maps).
    pub(crate) fn new(max_entries: u32, retire: bool) -> Result<Self, Errno> {
        if max_entries > MAX_FD_ARRAY_ENTRIES {
            return Err(Errno::Enomem(
                format!("{max_entries} slots do not fit in memory").into(),
            ));
        }
        let mut slots = Vec::new();
        slots
            .try_reserve_exact(max_entries as usize)
            .map_err(|_| Errno::Enomem("cannot allocate the array".into()))?;
        slots.extend((0..max_entries).map(|_| RwLock::new(None)));
        Ok(Self {
            max_entries,
            slots: slots.into_boxed_slice(),
            retired: Mutex::new(Vec::new()),
            retire,
        })
    }

    /// The number of slots.
    #[must_use]
    pub fn max_entries(&self) -> u32 {
        self.max_entries
    }

    /// The object at `index`, if any.
    #[must_use]
    pub fn get(&self, index: u32) -> Option<Arc<T>> {
        let slot = self.slots.get(index as usize)?;
        slot.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The address of the object at `index` (null when empty), valid while this array lives.
    pub(crate) fn ptr(&self, index: u32) -> *const T
    where
        T: Sized,
    {
        self.get(index)
            .map_or(std::ptr::null(), |a| Arc::as_ptr(&a))
    }

    /// The object at the index a key names, for a user-space lookup (`ENOENT` when empty or
    /// past the end).
    pub(crate) fn lookup(&self, key: &[u8]) -> Result<Arc<T>, Errno> {
        self.get(index_of(key))
            .ok_or_else(|| Errno::Enoent("no object at that index".into()))
    }

    /// Checks an update's flags and index before the descriptor is resolved, as the kernel.
    pub(crate) fn check_update(&self, key: &[u8], map_flags: u64) -> Result<u32, Errno> {
        if map_flags != flags::BPF_ANY {
            return Err(Errno::Einval(
                "fd arrays accept only BPF_ANY updates".into(),
            ));
        }
        let index = index_of(key);
        if index >= self.max_entries {
            return Err(Errno::E2big(
                format!("index {index} is past max_entries {}", self.max_entries).into(),
            ));
        }
        Ok(index)
    }

    /// Stores `obj` at `index` (checked by [`Self::check_update`]).
    pub(crate) fn set(&self, index: u32, obj: Arc<T>) {
        if let Some(slot) = self.slots.get(index as usize) {
            let old = slot
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .replace(obj);
            self.retire(old);
        }
    }

    fn retire(&self, old: Option<Arc<T>>) {
        if let (true, Some(old)) = (self.retire, old) {
            self.retired
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(old);
        }
    }

    /// `map_delete_elem`: `E2BIG` past the end, `ENOENT` for an empty slot.
    pub(crate) fn delete(&self, key: &[u8]) -> Result<(), Errno> {
        let index = index_of(key);
        let slot = self.slots.get(index as usize).ok_or_else(|| {
            Errno::E2big(format!("index {index} is past max_entries {}", self.max_entries).into())
        })?;
        let old = slot.write().unwrap_or_else(PoisonError::into_inner).take();
        if old.is_none() {
            return Err(Errno::Enoent("no object at that index".into()));
        }
        self.retire(old);
        Ok(())
    }

    /// Empties every slot (the kernel clears a prog array when its last user reference goes).
    pub fn clear(&self) {
        for slot in self.slots.iter() {
            let old = slot.write().unwrap_or_else(PoisonError::into_inner).take();
            self.retire(old);
        }
    }

    /// `map_get_next_key`, as for arrays.
    pub(crate) fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), Errno> {
        let index = key.map_or(u32::MAX, index_of);
        let n = if index >= self.max_entries {
            0
        } else if index == self.max_entries - 1 {
            return Err(Errno::Enoent("no index after the last".into()));
        } else {
            index + 1
        };
        for (d, s) in next.iter_mut().zip(n.to_ne_bytes()) {
            *d = s;
        }
        Ok(())
    }
}

/// A program array: the jump table of `bpf_tail_call`.
#[derive(Debug)]
pub struct ProgArray {
    entries: FdArray<dyn ProgEntry>,
    /// The program type every program stored or calling through this map must have
    /// (the kernel's `map->owner`), fixed by the first one.
    owner: Mutex<Option<u32>>,
}

impl ProgArray {
    pub(crate) fn new(max_entries: u32) -> Result<Self, Errno> {
        Ok(Self {
            entries: FdArray::new(max_entries, false)?,
            owner: Mutex::new(None),
        })
    }

    /// The slots.
    #[must_use]
    pub fn entries(&self) -> &FdArray<dyn ProgEntry> {
        &self.entries
    }

    /// The program for a tail call to `index`, if the slot is set.
    #[must_use]
    pub fn get(&self, index: u32) -> Option<Arc<dyn ProgEntry>> {
        self.entries.get(index)
    }

    /// Claims the map for programs of `prog_type` (the first claim fixes it) or refuses a
    /// different type (the kernel's `bpf_prog_map_compatible`). The loader calls this for a
    /// program that uses the map; updates call it for the program stored.
    pub fn claim_owner(&self, prog_type: u32) -> Result<(), Errno> {
        let mut owner = self.owner.lock().unwrap_or_else(PoisonError::into_inner);
        match *owner {
            None => {
                *owner = Some(prog_type);
                Ok(())
            }
            Some(t) if t == prog_type => Ok(()),
            Some(t) => Err(Errno::Einval(
                format!("the prog array holds programs of type {t}, not {prog_type}").into(),
            )),
        }
    }

    /// Stores the program `resolve` yields after checking flags and index (before resolving,
    /// as the kernel) and the program type. The object table resolves the descriptor.
    pub fn update(
        &self,
        key: &[u8],
        map_flags: u64,
        resolve: impl FnOnce() -> Result<Arc<dyn ProgEntry>, Errno>,
    ) -> Result<(), Errno> {
        let index = self.entries.check_update(key, map_flags)?;
        let prog = resolve()?;
        self.claim_owner(prog.prog_type())?;
        self.entries.set(index, prog);
        Ok(())
    }
}

/// The inner-map template of a map of maps (the kernel's `inner_map_meta`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InnerTemplate {
    map_type: MapType,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
}

impl InnerTemplate {
    /// The inner maps' type.
    #[must_use]
    pub fn map_type(&self) -> MapType {
        self.map_type
    }

    /// The inner maps' key size.
    #[must_use]
    pub fn key_size(&self) -> u32 {
        self.key_size
    }

    /// The inner maps' value size.
    #[must_use]
    pub fn value_size(&self) -> u32 {
        self.value_size
    }

    /// The inner maps' `max_entries` (inner maps of other sizes may be stored unless the
    /// template forbids it; the verifier uses the template's).
    #[must_use]
    pub fn max_entries(&self) -> u32 {
        self.max_entries
    }

    /// The template an inner map gives (`bpf_map_meta_alloc`): `EINVAL` for a map of maps
    /// (one level only), `ENOTSUPP` for types that cannot be inner maps.
    pub(crate) fn from_map(inner: &BpfMap) -> Result<Self, Errno> {
        let info = inner.info();
        match info.map_type {
            MapType::ArrayOfMaps | MapType::HashOfMaps => Err(Errno::Einval(
                "an inner map cannot itself be a map of maps".into(),
            )),
            MapType::ProgArray => Err(Errno::Enotsupp(
                "a prog array cannot be an inner map".into(),
            )),
            t => Ok(Self {
                map_type: t,
                key_size: info.key_size,
                value_size: info.value_size,
                max_entries: info.max_entries,
                map_flags: info.map_flags,
            }),
        }
    }

    /// Whether `inner` may be stored in the outer map (`map_meta_equal`): same type, sizes and
    /// flags, and for arrays the same `max_entries` unless the template has `BPF_F_INNER_MAP`.
    pub(crate) fn accepts(&self, inner: &BpfMap) -> bool {
        let i = inner.info();
        let same = i.map_type == self.map_type
            && i.key_size == self.key_size
            && i.value_size == self.value_size
            && i.map_flags == self.map_flags;
        let arrays = matches!(self.map_type, MapType::Array | MapType::PercpuArray);
        same && (!arrays
            || self.map_flags & flags::BPF_F_INNER_MAP != 0
            || i.max_entries == self.max_entries)
    }
}

/// An array of maps or a hash of maps.
#[derive(Debug)]
pub struct MapOfMaps {
    template: InnerTemplate,
    store: OuterStore,
}

#[derive(Debug)]
enum OuterStore {
    Array(FdArray<BpfMap>),
    /// The kernel's fd hash: a hash table whose 8-byte values are inner map addresses, with
    /// the inner maps kept alive here.
    Hash {
        table: HashTab,
        inners: Mutex<Vec<Arc<BpfMap>>>,
    },
}

impl MapOfMaps {
    pub(crate) fn new(
        hash: bool,
        key_size: u32,
        max_entries: u32,
        map_flags: u32,
        template: InnerTemplate,
    ) -> Result<Self, Errno> {
        let store = if hash {
            OuterStore::Hash {
                table: HashTab::new(MapType::Hash, key_size, 8, max_entries, map_flags, 1)?,
                inners: Mutex::new(Vec::new()),
            }
        } else {
            OuterStore::Array(FdArray::new(max_entries, true)?)
        };
        Ok(Self { template, store })
    }

    /// The inner map template.
    #[must_use]
    pub fn template(&self) -> &InnerTemplate {
        &self.template
    }

    /// The inner map a key names, if any.
    #[must_use]
    pub fn get(&self, key: &[u8]) -> Option<Arc<BpfMap>> {
        match &self.store {
            OuterStore::Array(a) => a.get(index_of(key)),
            OuterStore::Hash { table, inners } => {
                let mut v = [0u8; 8];
                table.lookup(key, &mut v).ok()?;
                let addr = u64::from_ne_bytes(v);
                inners
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .iter()
                    .find(|m| Arc::as_ptr(m) as usize as u64 == addr)
                    .cloned()
            }
        }
    }

    /// The inner map's address for a program's lookup, or null; valid while the outer map lives.
    pub(crate) fn lookup_ptr(&self, key: &[u8]) -> *mut u8 {
        match &self.store {
            OuterStore::Array(a) => a.ptr(index_of(key)).cast::<u8>().cast_mut(),
            OuterStore::Hash { table, .. } => match table.lookup_word(key) {
                // An address this map stored from a live Arc it keeps (see `update`).
                Some(addr) => std::ptr::with_exposed_provenance_mut(addr as usize),
                None => std::ptr::null_mut(),
            },
        }
    }

    /// User-space lookup: the inner map (its id is what the system call returns).
    pub(crate) fn lookup(&self, key: &[u8]) -> Result<Arc<BpfMap>, Errno> {
        self.get(key)
            .ok_or_else(|| Errno::Enoent("no inner map for that key".into()))
    }

    /// Update with a descriptor that `resolve` turns into a map, checked against the template.
    pub(crate) fn update(
        &self,
        key: &[u8],
        map_flags: u64,
        resolve: impl FnOnce() -> Result<Arc<BpfMap>, Errno>,
    ) -> Result<(), Errno> {
        let check = |inner: &BpfMap| {
            if self.template.accepts(inner) {
                Ok(())
            } else {
                Err(Errno::Einval(
                    "the inner map does not match the outer map's template".into(),
                ))
            }
        };
        match &self.store {
            OuterStore::Array(a) => {
                let index = a.check_update(key, map_flags)?;
                let inner = resolve()?;
                check(&inner)?;
                a.set(index, inner);
                Ok(())
            }
            OuterStore::Hash { table, inners } => {
                // As bpf_fd_htab_map_update_elem: the descriptor first, then the hash update.
                let inner = resolve()?;
                check(&inner)?;
                let addr = Arc::as_ptr(&inner).expose_provenance() as u64;
                // Keep the inner map alive before its address is visible to programs.
                {
                    let mut held = inners.lock().unwrap_or_else(PoisonError::into_inner);
                    if !held.iter().any(|m| Arc::ptr_eq(m, &inner)) {
                        held.push(inner);
                    }
                }
                table.update(key, &addr.to_ne_bytes(), map_flags, None)
            }
        }
    }

    /// `map_delete_elem`.
    pub(crate) fn delete(&self, key: &[u8]) -> Result<(), Errno> {
        match &self.store {
            OuterStore::Array(a) => a.delete(key),
            OuterStore::Hash { table, .. } => table.delete(key),
        }
    }

    /// `map_get_next_key`.
    pub(crate) fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), Errno> {
        match &self.store {
            OuterStore::Array(a) => a.get_next_key(key, next),
            OuterStore::Hash { table, .. } => table.get_next_key(key, next),
        }
    }
}
