//! Map memory: 8-byte words that never move, so value pointers handed to programs stay valid.
//!
//! Everything a map stores lives in `AtomicU64` words. The map's own code copies bytes in and
//! out with relaxed word loads and stores (no data race in Rust's sense, even while programs
//! write the same words through their pointers); the ordering that matters comes from the
//! locks around the indexes, as RCU publication does in the kernel.
//!
//! - [`LazyWords`]: a fixed number of fixed-size elements whose memory is allocated a chunk at
//!   a time on first touch (an array's values: the kernel preallocates them; allocating on
//!   first touch only defers the cost and reads as zeros either way).
//! - [`Slab`]: elements allocated and freed at run time (hash and trie elements). Freed
//!   elements go to a free list and are reused, like the kernel's preallocated element pool;
//!   memory is only returned when the map is dropped, so a pointer a program holds never dangles.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::errno::Errno;

/// Number of words that hold `bytes` bytes.
pub(crate) fn words_for(bytes: usize) -> usize {
    bytes.div_ceil(8)
}

/// Copies `src` into `words`, zero-filling the rest of the last word.
pub(crate) fn store(words: &[AtomicU64], src: &[u8]) {
    for (w, c) in words.iter().zip(src.chunks(8)) {
        let mut b = [0u8; 8];
        b[..c.len()].copy_from_slice(c);
        w.store(u64::from_ne_bytes(b), Relaxed);
    }
}

/// Copies the first `dst.len()` bytes of `words` into `dst`.
pub(crate) fn load(words: &[AtomicU64], dst: &mut [u8]) {
    for (w, c) in words.iter().zip(dst.chunks_mut(8)) {
        let b = w.load(Relaxed).to_ne_bytes();
        c.copy_from_slice(&b[..c.len()]);
    }
}

/// Whether the first `key.len()` bytes of `words` equal `key`.
pub(crate) fn equals(words: &[AtomicU64], key: &[u8]) -> bool {
    words.iter().zip(key.chunks(8)).all(|(w, c)| {
        let b = w.load(Relaxed).to_ne_bytes();
        b[..c.len()] == *c
    })
}

/// Sets every word to zero.
pub(crate) fn zero(words: &[AtomicU64]) {
    for w in words {
        w.store(0, Relaxed);
    }
}

/// A pointer to the first byte of a word slice, for programs.
pub(crate) fn ptr_of(words: &[AtomicU64]) -> *mut u8 {
    words.as_ptr().cast::<u8>().cast_mut()
}

/// Allocates `n` zeroed words, or `ENOMEM`.
fn alloc_words(n: usize) -> Result<Box<[AtomicU64]>, Errno> {
    let mut v: Vec<AtomicU64> = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| Errno::Enomem("cannot allocate map memory".into()))?;
    v.extend((0..n).map(|_| AtomicU64::new(0)));
    Ok(v.into_boxed_slice())
}

/// Chunks per [`Slab`]: enough doublings to address every u32 index from a first chunk of one.
const SLAB_CHUNKS: usize = 34;

/// Free lists per [`Slab`], so threads freeing and allocating rarely meet on one lock (the
/// kernel keeps per-CPU free lists for the same reason).
const FREE_SHARDS: usize = 8;

thread_local! {
    /// This thread's free-list shard.
    static SHARD: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Relaxed) % FREE_SHARDS
    };
}

/// Elements of `elem_words` words, allocated and freed at run time; see the module doc.
#[derive(Debug)]
pub(crate) struct Slab {
    elem_words: usize,
    /// log2 of the first chunk's element count; chunk `k` holds `first << k` elements.
    first_shift: u32,
    chunks: Box<[OnceLock<Box<[AtomicU64]>>]>,
    free: Box<[Mutex<Vec<u32>>]>,
    /// Elements on the free lists (a hint that saves looking at other shards).
    free_count: AtomicUsize,
    /// Elements ever handed out: the next fresh index.
    fresh: Mutex<u32>,
}

impl Slab {
    /// A slab of elements of `elem_words` words, sized for about `expected` live elements.
    pub(crate) fn new(elem_words: usize, expected: u32) -> Self {
        // Small first chunk for big elements or small maps, 64 elements at most.
        let by_size = if elem_words >= 512 { 0 } else { 6 };
        let by_count = 32 - expected.max(1).saturating_sub(1).leading_zeros();
        let first_shift = by_size.min(by_count);
        Self {
            elem_words: elem_words.max(1),
            first_shift,
            chunks: (0..SLAB_CHUNKS).map(|_| OnceLock::new()).collect(),
            free: (0..FREE_SHARDS).map(|_| Mutex::new(Vec::new())).collect(),
            free_count: AtomicUsize::new(0),
            fresh: Mutex::new(0),
        }
    }

    /// (chunk, element within chunk) of index `i`.
    fn locate(&self, i: u32) -> (usize, usize) {
        let n = (u64::from(i) >> self.first_shift) + 1;
        let k = 63 - n.leading_zeros() as usize;
        let base = ((1u64 << k) - 1) << self.first_shift;
        (k, (u64::from(i) - base) as usize)
    }

    fn pop_shard(&self, shard: usize, wait: bool) -> Option<u32> {
        let m = self.free.get(shard % FREE_SHARDS)?;
        let mut list = if wait {
            m.lock().unwrap_or_else(PoisonError::into_inner)
        } else {
            m.try_lock().ok()?
        };
        let i = list.pop()?;
        self.free_count.fetch_sub(1, Relaxed);
        Some(i)
    }

    /// Takes a free element (its contents are stale: the caller overwrites them): from this
    /// thread's free list, else another's, else a fresh one.
    pub(crate) fn alloc(&self) -> Result<u32, Errno> {
        let own = SHARD.with(|s| *s);
        if let Some(i) = self.pop_shard(own, true) {
            return Ok(i);
        }
        if self.free_count.load(Relaxed) > 0 {
            for d in 1..FREE_SHARDS {
                if let Some(i) = self.pop_shard(own + d, false) {
                    return Ok(i);
                }
            }
        }
        let mut fresh = self.fresh.lock().unwrap_or_else(PoisonError::into_inner);
        let i = *fresh;
        let (k, off) = self.locate(i);
        let chunk = self
            .chunks
            .get(k)
            .ok_or_else(|| Errno::E2big("map element space exhausted".into()))?;
        if off == 0 && chunk.get().is_none() {
            let elems = 1usize << (self.first_shift as usize + k);
            let words = elems
                .checked_mul(self.elem_words)
                .ok_or_else(|| Errno::Enomem("map element chunk too large".into()))?;
            // Allocated under the `fresh` lock, so no one else can set this chunk.
            let _ = chunk.set(alloc_words(words)?);
        }
        *fresh = i
            .checked_add(1)
            .ok_or_else(|| Errno::E2big("map element space exhausted".into()))?;
        Ok(i)
    }

    /// Returns an element to this thread's free list. Its memory stays valid (and may be
    /// reused).
    pub(crate) fn free(&self, i: u32) {
        let own = SHARD.with(|s| *s);
        if let Some(m) = self.free.get(own) {
            m.lock().unwrap_or_else(PoisonError::into_inner).push(i);
            self.free_count.fetch_add(1, Relaxed);
        }
    }

    /// Number of element indices ever handed out (indices below it have memory).
    pub(crate) fn high_water(&self) -> u32 {
        *self.fresh.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The words of element `i`, or an empty slice for an index never allocated.
    pub(crate) fn elem(&self, i: u32) -> &[AtomicU64] {
        let (k, off) = self.locate(i);
        match self.chunks.get(k).and_then(OnceLock::get) {
            Some(chunk) => {
                let start = off * self.elem_words;
                chunk.get(start..start + self.elem_words).unwrap_or(&[])
            }
            None => &[],
        }
    }
}

/// `count` elements of `elem_words` words each, allocated a chunk at a time on first touch.
#[derive(Debug)]
pub(crate) struct LazyWords {
    elem_words: usize,
    count: usize,
    chunk_elems: usize,
    chunks: Box<[OnceLock<Box<[AtomicU64]>>]>,
}

/// Largest map memory bpfkit agrees to address (beyond it creation fails with `ENOMEM`).
const MAX_MAP_BYTES: u128 = 1 << 40;

impl LazyWords {
    /// Reserves the directory for `count` elements of `elem_words` words.
    pub(crate) fn new(count: usize, elem_words: usize) -> Result<Self, Errno> {
        let elem_words = elem_words.max(1);
        if (count as u128) * (elem_words as u128) * 8 > MAX_MAP_BYTES {
            return Err(Errno::Enomem(
                format!(
                    "{count} elements of {} bytes do not fit in memory",
                    elem_words * 8
                )
                .into(),
            ));
        }
        // About 64 KiB per chunk, at least one element.
        let chunk_elems = (8192 / elem_words).max(1);
        let n_chunks = count.div_ceil(chunk_elems);
        let mut chunks = Vec::new();
        chunks
            .try_reserve_exact(n_chunks)
            .map_err(|_| Errno::Enomem("cannot allocate the map directory".into()))?;
        chunks.extend((0..n_chunks).map(|_| OnceLock::new()));
        Ok(Self {
            elem_words,
            count,
            chunk_elems,
            chunks: chunks.into_boxed_slice(),
        })
    }

    /// The words of element `i` (allocating its chunk on first touch), or `None` past the end.
    pub(crate) fn elem(&self, i: usize) -> Option<&[AtomicU64]> {
        if i >= self.count {
            return None;
        }
        let chunk = self.chunks.get(i / self.chunk_elems)?;
        let words = chunk.get_or_init(|| {
            (0..self.chunk_elems * self.elem_words)
                .map(|_| AtomicU64::new(0))
                .collect()
        });
        let start = (i % self.chunk_elems) * self.elem_words;
        words.get(start..start + self.elem_words)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_through_words() {
        let words: Vec<AtomicU64> = (0..2).map(|_| AtomicU64::new(u64::MAX)).collect();
        store(&words, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        let mut out = [0u8; 10];
        load(&words, &mut out);
        assert_eq!(out, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert!(equals(&words, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
        assert!(!equals(&words, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 11]));
        // The tail of the last word is zero-filled.
        assert_eq!(
            words[1].load(Relaxed).to_ne_bytes(),
            [9, 10, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn slab_elements_are_distinct_and_reused_after_free() {
        for expected in [1, 3, 64, 1000] {
            let slab = Slab::new(3, expected);
            let ids: Vec<u32> = (0..300).map(|_| slab.alloc().unwrap_or(u32::MAX)).collect();
            let mut ptrs: Vec<usize> = ids
                .iter()
                .map(|&i| slab.elem(i).as_ptr() as usize)
                .collect();
            assert!(ids.iter().all(|&i| slab.elem(i).len() == 3));
            ptrs.sort_unstable();
            ptrs.dedup();
            assert_eq!(ptrs.len(), 300, "every element has its own memory");
            slab.free(ids[7]);
            assert_eq!(slab.alloc().ok(), Some(ids[7]));
            assert_eq!(slab.high_water(), 300);
        }
    }

    #[test]
    fn lazy_words_cover_exactly_count_elements() {
        let lw = LazyWords::new(10_000, 2).unwrap_or_else(|e| panic!("{e}"));
        assert!(lw.elem(9_999).is_some());
        assert!(lw.elem(10_000).is_none());
        let a = lw.elem(5).map(|w| w.as_ptr() as usize);
        let b = lw.elem(5).map(|w| w.as_ptr() as usize);
        assert_eq!(a, b, "element memory does not move");
        assert!(matches!(
            LazyWords::new(usize::MAX / 2, 4),
            Err(Errno::Enomem(_))
        ));
    }
}
