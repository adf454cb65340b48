//! `BPF_MAP_TYPE_HASH`, `PERCPU_HASH`, `LRU_HASH` and `LRU_PERCPU_HASH`: kernel/bpf/hashtab.c.
//!
//! Layout and order follow the kernel: `roundup_pow_of_two(max_entries)` buckets, a key goes to
//! bucket `htab_map_hash(key) & (n_buckets - 1)` (jhash with a random seed, or 0 with
//! `BPF_F_ZERO_SEED`), a new element goes to the head of its bucket's list, and
//! `get_next_key` walks a bucket's list and then the following buckets. So with a zero seed the
//! iteration order is the kernel's.
//!
//! Semantics: an update of an existing key in a (non-per-CPU) map builds a new element and
//! swaps it in, so a reader sees the old value or the new one, never a mix; per-CPU maps update
//! in place, as the kernel does. A full map refuses new keys with `E2BIG`; an LRU map instead
//! evicts a least-recently-used element (a CLOCK sweep over reference bits that program lookups
//! set, the kernel's `bpf_lru_node_set_ref`; the kernel's choice of victim and batch size
//! differ, which its documentation leaves open). Like the kernel's LRU update, a new element is
//! taken before the key is looked up, so updating an existing key of a full LRU map may evict.
//!
//! Concurrency: each bucket has its own lock; element memory comes from a [`Slab`] that is
//! never freed while the map lives, so a value pointer a program got from a lookup stays valid
//! (a deleted element's memory may be reused by a later insert, as with the kernel's default
//! preallocated elements).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::jhash::htab_hash;
use super::storage::{self, Slab};
use super::{check_update_flags, flags, MapType};
use crate::errno::Errno;

/// Element header bit: the element is linked in a bucket.
const LIVE: u64 = 1;
/// Element header bit: referenced since the CLOCK hand last passed (LRU maps).
const REF: u64 = 2;

/// Buckets per lazily allocated chunk of the bucket table.
const BUCKET_CHUNK: usize = 1024;

/// One bucket: (hash, element index) pairs, head first.
type Bucket = RwLock<Vec<(u32, u32)>>;

/// A hash table map of one of the four hash types.
#[derive(Debug)]
pub struct HashTab {
    key_size: usize,
    value_size: usize,
    /// Words of one value (one CPU's value for per-CPU maps).
    value_words: usize,
    key_words: usize,
    /// Number of values per element: `possible_cpus()` for per-CPU maps, else 1.
    ncpus: usize,
    percpu: bool,
    lru: bool,
    max_entries: u32,
    n_buckets: u32,
    seed: u32,
    buckets: Box<[OnceLock<Box<[Bucket]>>]>,
    slab: Slab,
    count: AtomicU32,
    clock: Mutex<u32>,
}

impl HashTab {
    /// A hash map of type `ty` (one of the four hash types, attributes already checked).
    pub(crate) fn new(
        ty: MapType,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        map_flags: u32,
        ncpus: u32,
    ) -> Result<Self, Errno> {
        let percpu = matches!(ty, MapType::PercpuHash | MapType::LruPercpuHash);
        let lru = matches!(ty, MapType::LruHash | MapType::LruPercpuHash);
        let n_buckets = max_entries.checked_next_power_of_two().ok_or_else(|| {
            Errno::E2big(format!("max_entries {max_entries} is above 2^31").into())
        })?;
        let seed = if map_flags & flags::BPF_F_ZERO_SEED != 0 {
            0
        } else {
            random_seed()
        };
        let key_words = storage::words_for(key_size as usize);
        let value_words = storage::words_for(value_size as usize);
        let ncpus = if percpu { ncpus.max(1) as usize } else { 1 };
        let elem_words = 1 + key_words + value_words * ncpus;
        let n_chunks = (n_buckets as usize).div_ceil(BUCKET_CHUNK);
        Ok(Self {
            key_size: key_size as usize,
            value_size: value_size as usize,
            value_words,
            key_words,
            ncpus,
            percpu,
            lru,
            max_entries,
            n_buckets,
            seed,
            buckets: (0..n_chunks).map(|_| OnceLock::new()).collect(),
            slab: Slab::new(elem_words, max_entries.saturating_add(1)),
            count: AtomicU32::new(0),
            clock: Mutex::new(0),
        })
    }

    /// Number of elements in the map.
    #[must_use]
    pub fn len(&self) -> usize {
        self.count.load(Relaxed) as usize
    }

    /// Whether the map has no element.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The size of a value as the system call copies it: all CPUs' values, each rounded up to 8
    /// bytes, for per-CPU maps.
    pub(crate) fn user_value_size(&self) -> usize {
        if self.percpu {
            self.value_words * 8 * self.ncpus
        } else {
            self.value_size
        }
    }

    fn hash(&self, key: &[u8]) -> u32 {
        htab_hash(key, self.seed)
    }

    /// The bucket at `idx`, or `None` when its chunk was never touched (an empty bucket).
    fn bucket(&self, idx: u32) -> Option<&Bucket> {
        let idx = idx as usize;
        self.buckets
            .get(idx / BUCKET_CHUNK)?
            .get()?
            .get(idx % BUCKET_CHUNK)
    }

    /// The bucket at `idx`, allocating its chunk on first use.
    fn bucket_mut(&self, idx: u32) -> Option<&Bucket> {
        let idx = idx as usize;
        let chunk = self
            .buckets
            .get(idx / BUCKET_CHUNK)?
            .get_or_init(|| (0..BUCKET_CHUNK).map(|_| RwLock::new(Vec::new())).collect());
        chunk.get(idx % BUCKET_CHUNK)
    }

    fn read(b: &Bucket) -> RwLockReadGuard<'_, Vec<(u32, u32)>> {
        b.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(b: &Bucket) -> RwLockWriteGuard<'_, Vec<(u32, u32)>> {
        b.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn header(&self, elem: u32) -> Option<&AtomicU64> {
        self.slab.elem(elem).first()
    }

    fn key_words_of(&self, elem: u32) -> &[AtomicU64] {
        self.slab
            .elem(elem)
            .get(1..1 + self.key_words)
            .unwrap_or(&[])
    }

    /// The words of CPU `cpu`'s value of an element.
    fn value_words_of(&self, elem: u32, cpu: usize) -> &[AtomicU64] {
        let start = 1 + self.key_words + cpu * self.value_words;
        self.slab
            .elem(elem)
            .get(start..start + self.value_words)
            .unwrap_or(&[])
    }

    fn find(&self, list: &[(u32, u32)], hash: u32, key: &[u8]) -> Option<usize> {
        list.iter()
            .position(|&(h, e)| h == hash && storage::equals(self.key_words_of(e), key))
    }

    /// Copies a value out for the system call (all CPUs for per-CPU maps).
    pub(crate) fn lookup(&self, key: &[u8], out: &mut [u8]) -> Result<(), Errno> {
        let hash = self.hash(key);
        let Some(b) = self.bucket(hash & (self.n_buckets - 1)) else {
            return Err(not_found());
        };
        let list = Self::read(b);
        let Some(pos) = self.find(&list, hash, key) else {
            return Err(not_found());
        };
        let elem = list[pos].1;
        self.copy_out(elem, out);
        Ok(())
    }

    fn copy_out(&self, elem: u32, out: &mut [u8]) {
        if self.percpu {
            for (cpu, chunk) in out.chunks_mut(self.value_words * 8).enumerate() {
                storage::load(self.value_words_of(elem, cpu), chunk);
            }
        } else {
            storage::load(self.value_words_of(elem, 0), out);
        }
    }

    /// The value pointer a program gets from `bpf_map_lookup_elem` (CPU `cpu`'s value for
    /// per-CPU maps), or null. An LRU map marks the element referenced.
    pub(crate) fn lookup_ptr(&self, key: &[u8], cpu: usize) -> *mut u8 {
        let hash = self.hash(key);
        let Some(b) = self.bucket(hash & (self.n_buckets - 1)) else {
            return std::ptr::null_mut();
        };
        let list = Self::read(b);
        let Some(pos) = self.find(&list, hash, key) else {
            return std::ptr::null_mut();
        };
        let elem = list[pos].1;
        if self.lru {
            if let Some(h) = self.header(elem) {
                if h.load(Relaxed) & REF == 0 {
                    h.fetch_or(REF, Relaxed);
                }
            }
        }
        let words = self.value_words_of(elem, if self.percpu { cpu } else { 0 });
        if words.is_empty() {
            return std::ptr::null_mut();
        }
        storage::ptr_of(words)
    }

    /// Writes a new element's values: from the system call, all CPUs' values; from a program
    /// (`cpu` given), that CPU's value with the others zeroed (the kernel's `pcpu_init_value`).
    fn init_values(&self, elem: u32, value: &[u8], cpu: Option<usize>) {
        if !self.percpu {
            storage::store(self.value_words_of(elem, 0), value);
            return;
        }
        match cpu {
            None => {
                for (c, chunk) in value.chunks(self.value_words * 8).enumerate() {
                    storage::store(self.value_words_of(elem, c), chunk);
                }
            }
            Some(cpu) => {
                for c in 0..self.ncpus {
                    if c == cpu {
                        storage::store(self.value_words_of(elem, c), value);
                    } else {
                        storage::zero(self.value_words_of(elem, c));
                    }
                }
            }
        }
    }

    /// Overwrites an existing per-CPU element's values in place (the kernel's `pcpu_copy_value`).
    fn copy_values_in_place(&self, elem: u32, value: &[u8], cpu: Option<usize>) {
        match cpu {
            None => {
                for (c, chunk) in value.chunks(self.value_words * 8).enumerate() {
                    storage::store(self.value_words_of(elem, c), chunk);
                }
            }
            Some(cpu) => storage::store(self.value_words_of(elem, cpu), value),
        }
    }

    /// Takes a fresh element holding `key` and `value`.
    fn new_elem(&self, key: &[u8], value: &[u8], cpu: Option<usize>) -> Result<u32, Errno> {
        let elem = self.slab.alloc()?;
        if let Some(h) = self.header(elem) {
            h.store(0, Relaxed);
        }
        storage::store(self.key_words_of(elem), key);
        self.init_values(elem, value, cpu);
        Ok(elem)
    }

    /// Counts one more element, or `E2BIG` when the map holds `max_entries` (non-LRU maps).
    fn reserve(&self) -> Result<(), Errno> {
        self.count
            .fetch_update(Relaxed, Relaxed, |c| {
                (c < self.max_entries).then_some(c + 1)
            })
            .map(|_| ())
            .map_err(|_| Errno::E2big("the map is full (max_entries elements)".into()))
    }

    /// Counts one more element, evicting as needed (LRU maps).
    fn reserve_evicting(&self) -> Result<(), Errno> {
        // Each failed round evicted an element or found none to evict; bound the retries so
        // a map under a storm of concurrent inserts still answers.
        for _ in 0..64 {
            if self.reserve().is_ok() {
                return Ok(());
            }
            self.evict_one();
        }
        self.reserve()
    }

    /// Removes one element that has not been referenced since the CLOCK hand last passed it.
    fn evict_one(&self) {
        let mut hand = self
            .clock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = self.slab.high_water();
        if n == 0 {
            return;
        }
        for _ in 0..=(2 * u64::from(n)) {
            let elem = *hand % n;
            *hand = (elem + 1) % n;
            let Some(h) = self.header(elem) else { continue };
            let bits = h.load(Relaxed);
            if bits & LIVE == 0 {
                continue;
            }
            if bits & REF != 0 {
                h.fetch_and(!REF, Relaxed);
                continue;
            }
            if self.unlink_elem(elem) {
                return;
            }
        }
    }

    /// Removes element `elem` from its bucket if it is still there; frees it.
    fn unlink_elem(&self, elem: u32) -> bool {
        let mut key = vec![0u8; self.key_size];
        storage::load(self.key_words_of(elem), &mut key);
        let hash = self.hash(&key);
        let Some(b) = self.bucket(hash & (self.n_buckets - 1)) else {
            return false;
        };
        let mut list = Self::write(b);
        let Some(pos) = list.iter().position(|&(_, e)| e == elem) else {
            return false;
        };
        list.remove(pos);
        self.release(elem);
        true
    }

    /// Marks an unlinked element dead, frees it and uncounts it.
    fn release(&self, elem: u32) {
        if let Some(h) = self.header(elem) {
            h.store(0, Relaxed);
        }
        self.slab.free(elem);
        self.count.fetch_sub(1, Relaxed);
    }

    /// `map_update_elem`: from the system call (`cpu` `None`) or from a program on CPU `cpu`.
    pub(crate) fn update(
        &self,
        key: &[u8],
        value: &[u8],
        map_flags: u64,
        cpu: Option<usize>,
    ) -> Result<(), Errno> {
        check_update_flags(map_flags)?;
        let hash = self.hash(key);
        let Some(b) = self.bucket_mut(hash & (self.n_buckets - 1)) else {
            return Err(Errno::Einval("bucket index out of range".into()));
        };
        if self.lru {
            return self.update_lru(b, hash, key, value, map_flags, cpu);
        }
        let mut list = Self::write(b);
        let old = self.find(&list, hash, key);
        check_exist(old.is_some(), map_flags)?;
        if let Some(pos) = old {
            if self.percpu {
                self.copy_values_in_place(list[pos].1, value, cpu);
                return Ok(());
            }
            // Atomic replace: the new element goes first in the list, then the old one leaves.
            let new = self.new_elem(key, value, cpu)?;
            self.link(&mut list, hash, new);
            let old_elem = list.remove(pos + 1).1;
            if let Some(h) = self.header(old_elem) {
                h.store(0, Relaxed);
            }
            self.slab.free(old_elem);
            return Ok(());
        }
        self.reserve()?;
        match self.new_elem(key, value, cpu) {
            Ok(new) => {
                self.link(&mut list, hash, new);
                Ok(())
            }
            Err(e) => {
                self.count.fetch_sub(1, Relaxed);
                Err(e)
            }
        }
    }

    fn link(&self, list: &mut Vec<(u32, u32)>, hash: u32, elem: u32) {
        if let Some(h) = self.header(elem) {
            h.store(LIVE | REF, Relaxed);
        }
        list.insert(0, (hash, elem));
    }

    fn update_lru(
        &self,
        b: &Bucket,
        hash: u32,
        key: &[u8],
        value: &[u8],
        map_flags: u64,
        cpu: Option<usize>,
    ) -> Result<(), Errno> {
        // As the kernel's prealloc_lru_pop: take an element (evicting) before looking the key
        // up, except for a per-CPU BPF_EXIST update, which only ever writes in place.
        let new = if self.percpu && map_flags == flags::BPF_EXIST {
            None
        } else {
            self.reserve_evicting()?;
            match self.new_elem(key, value, cpu) {
                Ok(e) => Some(e),
                Err(e) => {
                    self.count.fetch_sub(1, Relaxed);
                    return Err(e);
                }
            }
        };
        let mut list = Self::write(b);
        let old = self.find(&list, hash, key);
        if let Err(e) = check_exist(old.is_some(), map_flags) {
            drop(list);
            if let Some(n) = new {
                self.release(n);
            }
            return Err(e);
        }
        match (old, new) {
            (Some(pos), _) if self.percpu => {
                let elem = list[pos].1;
                self.copy_values_in_place(elem, value, cpu);
                if let Some(h) = self.header(elem) {
                    h.fetch_or(REF, Relaxed);
                }
                drop(list);
                if let Some(n) = new {
                    self.release(n);
                }
            }
            (Some(pos), Some(n)) => {
                self.link(&mut list, hash, n);
                let old_elem = list.remove(pos + 1).1;
                drop(list);
                self.release(old_elem);
            }
            (None, Some(n)) => self.link(&mut list, hash, n),
            // A BPF_EXIST update of a missing key failed in check_exist.
            (_, None) => return Err(not_found()),
        }
        Ok(())
    }

    /// `map_delete_elem`.
    pub(crate) fn delete(&self, key: &[u8]) -> Result<(), Errno> {
        let hash = self.hash(key);
        let Some(b) = self.bucket(hash & (self.n_buckets - 1)) else {
            return Err(not_found());
        };
        let mut list = Self::write(b);
        let Some(pos) = self.find(&list, hash, key) else {
            return Err(not_found());
        };
        let elem = list.remove(pos).1;
        drop(list);
        self.release(elem);
        Ok(())
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM`: copies the value out and deletes the element.
    pub(crate) fn lookup_and_delete(&self, key: &[u8], out: &mut [u8]) -> Result<(), Errno> {
        let hash = self.hash(key);
        let Some(b) = self.bucket(hash & (self.n_buckets - 1)) else {
            return Err(not_found());
        };
        let mut list = Self::write(b);
        let Some(pos) = self.find(&list, hash, key) else {
            return Err(not_found());
        };
        let elem = list.remove(pos).1;
        drop(list);
        self.copy_out(elem, out);
        self.release(elem);
        Ok(())
    }

    /// `map_get_next_key`: the key after `key` in bucket order, the first key when `key` is
    /// `None` or missing, `ENOENT` after the last.
    pub(crate) fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), Errno> {
        let mut start = 0u32;
        if let Some(key) = key {
            let hash = self.hash(key);
            let idx = hash & (self.n_buckets - 1);
            if let Some(b) = self.bucket(idx) {
                let list = Self::read(b);
                if let Some(pos) = self.find(&list, hash, key) {
                    if let Some(&(_, e)) = list.get(pos + 1) {
                        storage::load(self.key_words_of(e), next);
                        return Ok(());
                    }
                    start = idx + 1;
                }
            }
        }
        let mut idx = start as usize;
        while idx < self.n_buckets as usize {
            let chunk = idx / BUCKET_CHUNK;
            let Some(buckets) = self.buckets.get(chunk).and_then(OnceLock::get) else {
                idx = (chunk + 1) * BUCKET_CHUNK;
                continue;
            };
            if let Some(b) = buckets.get(idx % BUCKET_CHUNK) {
                if let Some(&(_, e)) = Self::read(b).first() {
                    storage::load(self.key_words_of(e), next);
                    return Ok(());
                }
            }
            idx += 1;
        }
        Err(Errno::Enoent("no next key".into()))
    }
}

/// The kernel's `check_flags`: `BPF_NOEXIST` on an existing key is `EEXIST`, `BPF_EXIST` on a
/// missing key `ENOENT`.
pub(crate) fn check_exist(exists: bool, map_flags: u64) -> Result<(), Errno> {
    let mode = map_flags & !flags::BPF_F_LOCK;
    if exists && mode == flags::BPF_NOEXIST {
        return Err(Errno::Eexist("the key exists (BPF_NOEXIST)".into()));
    }
    if !exists && mode == flags::BPF_EXIST {
        return Err(Errno::Enoent("the key does not exist (BPF_EXIST)".into()));
    }
    Ok(())
}

fn not_found() -> Errno {
    Errno::Enoent("no such key".into())
}

/// A per-map hash seed (the kernel's `get_random_u32()`), from std's randomly keyed hasher.
fn random_seed() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x6270_666b_6974);
    h.finish() as u32
}
