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
//! evicts the least recently used element: each element carries a recency stamp that inserts
//! and program lookups refresh (the kernel's `bpf_lru_node_set_ref`; user-space lookups do not,
//! as in the kernel), and the victim is the oldest stamp (of all elements up to 512, else of a
//! rotating sample of 64). The kernel's victim choice and eviction batch differ, which its
//! documentation leaves open. Like the kernel's LRU update, a new element is taken before the
//! key is looked up, so updating an existing key of a full LRU map evicts another element (never
//! the key being updated).
//!
//! Concurrency, as the kernel's `hlist_nulls` buckets: each bucket is a singly linked list of
//! elements (the link lives in the element) whose end marker names the bucket. Writers hold the
//! bucket's lock; a program's lookup takes no lock: it walks the list and, if it ends on another
//! bucket's marker (it followed an element that was deleted and reused elsewhere meanwhile),
//! walks again. System-call lookups take the bucket lock, so the value they copy is never torn
//! by a concurrent replacement. Element memory comes from a [`Slab`] that is never freed while
//! the map lives, so a value pointer a program got from a lookup stays valid (a deleted
//! element's memory may be reused by a later insert, as with the kernel's default preallocated
//! elements).

use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use super::jhash::htab_hash;
use super::storage::{self, Slab};
use super::{check_update_flags, flags, MapType};
use crate::errno::Errno;

/// Element header bit: the element is linked in a bucket. The other 63 bits of the header
/// are the LRU recency stamp.
const LIVE: u64 = 1;
/// LRU maps with at most this many element slots are scanned whole for a victim.
const LRU_SCAN_ALL: u32 = 512;
/// Otherwise this many slots are sampled.
const LRU_SAMPLE: u32 = 64;

/// Buckets per lazily allocated chunk of the bucket table.
const BUCKET_CHUNK: usize = 1024;

/// A link whose top bit is set is a list's end marker holding its bucket's index ("nulls");
/// otherwise it is an element index.
const NULLS: u32 = 1 << 31;

/// Steps after which a lock-free walk starts over (a walk can only be this long while it keeps
/// following elements that move between buckets under it).
const MAX_WALK: usize = 1 << 16;

/// One bucket: the first link of its list, and the writers' lock.
#[derive(Debug)]
struct Bucket {
    head: AtomicU32,
    lock: Mutex<()>,
}

/// An element found in a bucket's list, with its predecessor (`None` at the head).
#[derive(Debug, Clone, Copy)]
struct Found {
    prev: Option<u32>,
    elem: u32,
}

impl Found {
    /// The same element after `new` was pushed at the head of its list.
    fn behind(self, new: u32) -> Self {
        Self {
            prev: Some(self.prev.unwrap_or(new)),
            elem: self.elem,
        }
    }
}

/// Element layout in words: header (LIVE bit and LRU stamp), link (hash << 32 | next link),
/// key, values.
const HDR: usize = 0;
const LINK: usize = 1;
const KEY: usize = 2;

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
    /// LRU recency clock: advanced by 2 by each insert; uses stamp the odd value between.
    tick: AtomicU64,
    /// LRU sampling position (and the eviction lock).
    hand: Mutex<u32>,
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
        let elem_words = KEY + key_words + value_words * ncpus;
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
            tick: AtomicU64::new(1),
            hand: Mutex::new(0),
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
        let i = idx as usize;
        let chunk = self.buckets.get(i / BUCKET_CHUNK)?.get_or_init(|| {
            let first = (i / BUCKET_CHUNK * BUCKET_CHUNK) as u32;
            (0..BUCKET_CHUNK as u32)
                .map(|j| Bucket {
                    head: AtomicU32::new(NULLS | (first + j)),
                    lock: Mutex::new(()),
                })
                .collect()
        });
        chunk.get(i % BUCKET_CHUNK)
    }

    fn lock(b: &Bucket) -> MutexGuard<'_, ()> {
        b.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn header(&self, elem: u32) -> Option<&AtomicU64> {
        self.slab.elem(elem).get(HDR)
    }

    fn link_word(&self, elem: u32) -> Option<&AtomicU64> {
        self.slab.elem(elem).get(LINK)
    }

    /// (hash, next link) of an element.
    fn link_of(&self, elem: u32) -> (u32, u32) {
        let w = self
            .link_word(elem)
            .map_or(u64::from(NULLS), |w| w.load(Acquire));
        ((w >> 32) as u32, w as u32)
    }

    fn set_link(&self, elem: u32, hash: u32, next: u32) {
        if let Some(w) = self.link_word(elem) {
            w.store((u64::from(hash) << 32) | u64::from(next), Release);
        }
    }

    fn key_words_of(&self, elem: u32) -> &[AtomicU64] {
        self.slab
            .elem(elem)
            .get(KEY..KEY + self.key_words)
            .unwrap_or(&[])
    }

    /// The words of CPU `cpu`'s value of an element.
    fn value_words_of(&self, elem: u32, cpu: usize) -> &[AtomicU64] {
        let start = KEY + self.key_words + cpu * self.value_words;
        self.slab
            .elem(elem)
            .get(start..start + self.value_words)
            .unwrap_or(&[])
    }

    /// The first element of `b`'s list (with its predecessor) that `is_it` accepts; the caller
    /// holds the bucket lock, so the list is stable.
    fn find_in(&self, b: &Bucket, is_it: impl Fn(u32, u32) -> bool) -> Option<Found> {
        let mut prev = None;
        let mut cur = b.head.load(Acquire);
        // Bounded by the number of elements a list can hold.
        for _ in 0..=self.max_entries as usize + 64 {
            if cur & NULLS != 0 {
                return None;
            }
            let (h, next) = self.link_of(cur);
            if is_it(cur, h) {
                return Some(Found { prev, elem: cur });
            }
            prev = Some(cur);
            cur = next;
        }
        None
    }

    /// The element with `key` in `b` (bucket lock held).
    fn find_locked(&self, b: &Bucket, hash: u32, key: &[u8]) -> Option<Found> {
        self.find_in(b, |e, h| {
            h == hash && storage::equals(self.key_words_of(e), key)
        })
    }

    /// Finds `key` without the bucket lock (the kernel's `lookup_nulls_elem_raw`).
    fn find_lockless(&self, idx: u32, hash: u32, key: &[u8]) -> Option<u32> {
        let b = self.bucket(idx)?;
        'again: loop {
            let mut cur = b.head.load(Acquire);
            let mut steps = 0;
            while cur & NULLS == 0 {
                let (h, next) = self.link_of(cur);
                if h == hash && storage::equals(self.key_words_of(cur), key) {
                    return Some(cur);
                }
                cur = next;
                steps += 1;
                if steps > MAX_WALK {
                    continue 'again;
                }
            }
            if cur != NULLS | idx {
                // Ended in another bucket: an element moved under us. Walk again.
                continue 'again;
            }
            return None;
        }
    }

    /// Links `elem` at the head of `b` (bucket lock held).
    fn push_head(&self, b: &Bucket, hash: u32, elem: u32) {
        if let Some(h) = self.header(elem) {
            // Only LRU maps read the stamp; others spare the shared clock.
            let now = if self.lru {
                self.tick.fetch_add(2, Relaxed) + 2
            } else {
                0
            };
            h.store((now << 1) | LIVE, Relaxed);
        }
        self.set_link(elem, hash, b.head.load(Relaxed));
        b.head.store(elem, Release);
    }

    /// Unlinks a found element from `b` (bucket lock held). The element keeps its next link,
    /// so a lock-free walker standing on it goes on along the list.
    fn unlink(&self, b: &Bucket, f: Found) {
        let next = self.link_of(f.elem).1;
        match f.prev {
            None => b.head.store(next, Release),
            Some(prev) => {
                let (h, _) = self.link_of(prev);
                self.set_link(prev, h, next);
            }
        }
    }

    /// Copies a value out for the system call (all CPUs for per-CPU maps), under the bucket
    /// lock so a concurrent replacement cannot tear it.
    pub(crate) fn lookup(&self, key: &[u8], out: &mut [u8]) -> Result<(), Errno> {
        let hash = self.hash(key);
        let Some(b) = self.bucket(hash & (self.n_buckets - 1)) else {
            return Err(not_found());
        };
        let _g = Self::lock(b);
        let Some(f) = self.find_locked(b, hash, key) else {
            return Err(not_found());
        };
        self.copy_out(f.elem, out);
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
    /// per-CPU maps), or null; takes no lock. An LRU map marks the element used.
    pub(crate) fn lookup_ptr(&self, key: &[u8], cpu: usize) -> *mut u8 {
        let hash = self.hash(key);
        let Some(elem) = self.find_lockless(hash & (self.n_buckets - 1), hash, key) else {
            return std::ptr::null_mut();
        };
        if self.lru {
            self.touch(elem);
        }
        let words = self.value_words_of(elem, if self.percpu { cpu } else { 0 });
        if words.is_empty() {
            return std::ptr::null_mut();
        }
        storage::ptr_of(words)
    }

    /// The first 8 bytes of the value for `key`, found without a lock (a hash of maps keeps
    /// inner map addresses there).
    pub(crate) fn lookup_word(&self, key: &[u8]) -> Option<u64> {
        let hash = self.hash(key);
        let elem = self.find_lockless(hash & (self.n_buckets - 1), hash, key)?;
        self.value_words_of(elem, 0)
            .first()
            .map(|w| w.load(Relaxed))
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
        if elem & NULLS != 0 {
            self.slab.free(elem);
            return Err(Errno::Enomem("too many hash elements".into()));
        }
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

    /// Marks an element used now (LRU), without writing when it already is.
    fn touch(&self, elem: u32) {
        if let Some(h) = self.header(elem) {
            // Between the last insert's stamp and the next one's (inserts advance by 2).
            let now = (self.tick.load(Relaxed) + 1) << 1;
            let _ = h.fetch_update(Relaxed, Relaxed, |w| {
                (w & LIVE != 0 && w & !LIVE != now).then_some(now | LIVE)
            });
        }
    }

    /// Counts one more element, evicting as needed (LRU maps); never evicts `keep`.
    fn reserve_evicting(&self, keep: &[u8]) -> Result<(), Errno> {
        // Each failed round evicted an element, which a concurrent insert may have taken
        // first; retry (yielding after a while), bounded so a pathological storm still answers.
        for round in 0..4096 {
            if self.reserve().is_ok() {
                return Ok(());
            }
            if round >= 64 {
                std::thread::yield_now();
            }
            self.evict_one(keep);
        }
        self.reserve()
    }

    /// Removes the least recently used element (of all, or of a sample), other than `keep`.
    fn evict_one(&self, keep: &[u8]) {
        let mut hand = self
            .hand
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = self.slab.high_water();
        if n == 0 {
            return;
        }
        let (start, len) = if n <= LRU_SCAN_ALL {
            (0, n)
        } else {
            let s = *hand % n;
            *hand = hand.wrapping_add(LRU_SAMPLE * 7 + 1);
            (s, LRU_SAMPLE)
        };
        let mut victim: Option<(u64, u32)> = None;
        for i in 0..len {
            let elem = (start + i) % n;
            let Some(h) = self.header(elem) else { continue };
            let bits = h.load(Relaxed);
            if bits & LIVE == 0 || storage::equals(self.key_words_of(elem), keep) {
                continue;
            }
            if victim.is_none_or(|(stamp, _)| bits < stamp) {
                victim = Some((bits, elem));
            }
        }
        if let Some((_, elem)) = victim {
            self.unlink_elem(elem);
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
        let g = Self::lock(b);
        let Some(f) = self.find_in(b, |e, _| e == elem) else {
            return false;
        };
        self.unlink(b, f);
        drop(g);
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
        let g = Self::lock(b);
        let old = self.find_locked(b, hash, key);
        check_exist(old.is_some(), map_flags)?;
        if let Some(f) = old {
            if self.percpu {
                self.copy_values_in_place(f.elem, value, cpu);
                return Ok(());
            }
            // Atomic replace: the new element goes first in the list, then the old one leaves,
            // so a concurrent lookup finds one or the other.
            let new = self.new_elem(key, value, cpu)?;
            self.push_head(b, hash, new);
            self.unlink(b, f.behind(new));
            drop(g);
            if let Some(h) = self.header(f.elem) {
                h.store(0, Relaxed);
            }
            self.slab.free(f.elem);
            return Ok(());
        }
        self.reserve()?;
        match self.new_elem(key, value, cpu) {
            Ok(new) => {
                self.push_head(b, hash, new);
                Ok(())
            }
            Err(e) => {
                self.count.fetch_sub(1, Relaxed);
                Err(e)
            }
        }
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
            self.reserve_evicting(key)?;
            match self.new_elem(key, value, cpu) {
                Ok(e) => Some(e),
                Err(e) => {
                    self.count.fetch_sub(1, Relaxed);
                    return Err(e);
                }
            }
        };
        let g = Self::lock(b);
        let old = self.find_locked(b, hash, key);
        if let Err(e) = check_exist(old.is_some(), map_flags) {
            drop(g);
            if let Some(n) = new {
                self.release(n);
            }
            return Err(e);
        }
        match (old, new) {
            (Some(f), _) if self.percpu => {
                let elem = f.elem;
                self.copy_values_in_place(elem, value, cpu);
                self.tick.fetch_add(2, Relaxed);
                self.touch(elem);
                drop(g);
                if let Some(n) = new {
                    self.release(n);
                }
            }
            (Some(f), Some(n)) => {
                self.push_head(b, hash, n);
                self.unlink(b, f.behind(n));
                drop(g);
                self.release(f.elem);
            }
            (None, Some(n)) => self.push_head(b, hash, n),
            // A BPF_EXIST update of a missing key failed in check_exist.
            (_, None) => return Err(not_found()),
        }
        Ok(())
    }

    /// `map_delete_elem`.
    pub(crate) fn delete(&self, key: &[u8]) -> Result<(), Errno> {
        self.remove(key, None)
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM`: copies the value out and deletes the element.
    pub(crate) fn lookup_and_delete(&self, key: &[u8], out: &mut [u8]) -> Result<(), Errno> {
        self.remove(key, Some(out))
    }

    fn remove(&self, key: &[u8], out: Option<&mut [u8]>) -> Result<(), Errno> {
        let hash = self.hash(key);
        let Some(b) = self.bucket(hash & (self.n_buckets - 1)) else {
            return Err(not_found());
        };
        let g = Self::lock(b);
        let Some(f) = self.find_locked(b, hash, key) else {
            return Err(not_found());
        };
        if let Some(out) = out {
            self.copy_out(f.elem, out);
        }
        self.unlink(b, f);
        drop(g);
        self.release(f.elem);
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
                let _g = Self::lock(b);
                if let Some(f) = self.find_locked(b, hash, key) {
                    let after = self.link_of(f.elem).1;
                    if after & NULLS == 0 {
                        storage::load(self.key_words_of(after), next);
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
                if b.head.load(Acquire) & NULLS == 0 {
                    let _g = Self::lock(b);
                    let head = b.head.load(Acquire);
                    if head & NULLS == 0 {
                        storage::load(self.key_words_of(head), next);
                        return Ok(());
                    }
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
