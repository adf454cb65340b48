//! `BPF_MAP_TYPE_RINGBUF`: kernel/bpf/ringbuf.c, with libbpf's consumer loop.
//!
//! A power-of-two, page-multiple data area of `max_entries` bytes with 64-bit producer and
//! consumer positions. Each record is an 8-byte header (`u32 len` whose bit 31 is
//! `BPF_RINGBUF_BUSY_BIT` while the record is reserved and bit 30 `BPF_RINGBUF_DISCARD_BIT`
//! once discarded, then `u32 pg_off`) followed by the data, the whole rounded up to 8 bytes.
//! Producers (programs, on any thread) reserve under a lock, exactly as the kernel's
//! `__bpf_ringbuf_reserve` checks space (against the consumer position and the oldest record
//! still busy); submit and discard flip the header bits with one atomic exchange. The consumer
//! reads records in position order and stops at the first busy one, so it never sees a record
//! that is being written, and it skips discarded ones.
//!
//! The kernel maps the data pages twice in a row so a record that wraps past the end is still
//! contiguous; bpfkit allocates twice the data size instead and writes such a record on past
//! the end, where only that record's reader looks. The `pg_off` field holds the record's page
//! offset within the data area (user-space consumers do not read it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use super::storage;
use crate::errno::Errno;

/// Header `len` bit: the record is reserved and not yet submitted or discarded.
pub const BPF_RINGBUF_BUSY_BIT: u32 = 1 << 31;
/// Header `len` bit: the record was discarded; consumers skip it.
pub const BPF_RINGBUF_DISCARD_BIT: u32 = 1 << 30;
/// Size of a record header.
pub const BPF_RINGBUF_HDR_SZ: u32 = 8;
/// Submit/output flag: do not wake the consumer.
pub const BPF_RB_NO_WAKEUP: u64 = 1;
/// Submit/output flag: wake the consumer even if it has not caught up.
pub const BPF_RB_FORCE_WAKEUP: u64 = 2;
/// `bpf_ringbuf_query` flag: bytes not yet consumed.
pub const BPF_RB_AVAIL_DATA: u64 = 0;
/// `bpf_ringbuf_query` flag: size of the data area.
pub const BPF_RB_RING_SIZE: u64 = 1;
/// `bpf_ringbuf_query` flag: consumer position.
pub const BPF_RB_CONS_POS: u64 = 2;
/// `bpf_ringbuf_query` flag: producer position.
pub const BPF_RB_PROD_POS: u64 = 3;

/// The largest record the kernel accepts (`RINGBUF_MAX_RECORD_SZ`).
const RINGBUF_MAX_RECORD_SZ: u64 = (u32::MAX / 4) as u64;

/// Shift of the `len` field within a header word in memory order.
const LEN_SHIFT: u32 = if cfg!(target_endian = "little") {
    0
} else {
    32
};

/// A ring buffer map.
#[derive(Debug)]
pub struct RingBuf {
    size: u64,
    mask: u64,
    /// Twice the data area, in words (see the module doc).
    data: Box<[AtomicU64]>,
    producer_pos: AtomicU64,
    consumer_pos: AtomicU64,
    /// The producers' lock, guarding `pending_pos` (the oldest record that may still be busy).
    producer: Mutex<u64>,
    /// Serializes consumers.
    consumer: Mutex<()>,
    /// Wake-up counter and its condition variable.
    wakeups: Mutex<u64>,
    wake: Condvar,
}

impl RingBuf {
    /// A ring buffer of `size` bytes (a power of two and a page multiple, checked by the caller).
    pub(crate) fn new(size: u32) -> Result<Self, Errno> {
        let words = (size as usize / 8) * 2;
        let mut v: Vec<AtomicU64> = Vec::new();
        v.try_reserve_exact(words)
            .map_err(|_| Errno::Enomem("cannot allocate the ring buffer".into()))?;
        v.extend((0..words).map(|_| AtomicU64::new(0)));
        Ok(Self {
            size: u64::from(size),
            mask: u64::from(size) - 1,
            data: v.into_boxed_slice(),
            producer_pos: AtomicU64::new(0),
            consumer_pos: AtomicU64::new(0),
            producer: Mutex::new(0),
            consumer: Mutex::new(()),
            wakeups: Mutex::new(0),
            wake: Condvar::new(),
        })
    }

    fn header(&self, pos: u64) -> Option<&AtomicU64> {
        self.data.get(((pos & self.mask) / 8) as usize)
    }

    fn hdr_len(word: u64) -> u32 {
        (word >> LEN_SHIFT) as u32
    }

    /// Total bytes a record of `len` (header `len` field, bits included) takes.
    fn record_span(len: u32) -> u64 {
        let data = len & !(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
        (u64::from(data) + u64::from(BPF_RINGBUF_HDR_SZ)).next_multiple_of(8)
    }

    /// `bpf_ringbuf_reserve`: a pointer to `size` writable bytes of a new busy record, or null
    /// when `flags` is not 0 or there is no room.
    pub fn reserve(&self, size: u64, flags: u64) -> *mut u8 {
        match self.reserve_pos(size, flags) {
            Some(pos) => self.data_ptr(pos),
            None => std::ptr::null_mut(),
        }
    }

    fn data_ptr(&self, pos: u64) -> *mut u8 {
        match self.data.get(((pos & self.mask) / 8 + 1) as usize..) {
            Some(words) => storage::ptr_of(words),
            None => std::ptr::null_mut(),
        }
    }

    /// Reserves a record; its header position.
    fn reserve_pos(&self, size: u64, flags: u64) -> Option<u64> {
        if flags != 0 || size > RINGBUF_MAX_RECORD_SZ {
            return None;
        }
        let len = (size + u64::from(BPF_RINGBUF_HDR_SZ)).next_multiple_of(8);
        if len > self.size {
            return None;
        }
        let mut pend_pos = self
            .producer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let cons_pos = self.consumer_pos.load(Ordering::Acquire);
        let prod_pos = self.producer_pos.load(Ordering::Relaxed);
        let new_prod_pos = prod_pos + len;
        // Advance past records no longer busy: space is bounded by the oldest busy record too.
        while *pend_pos < prod_pos {
            let Some(h) = self.header(*pend_pos) else {
                break;
            };
            let hlen = Self::hdr_len(h.load(Ordering::Acquire));
            if hlen & BPF_RINGBUF_BUSY_BIT != 0 {
                break;
            }
            *pend_pos += Self::record_span(hlen);
        }
        if new_prod_pos - cons_pos > self.mask || new_prod_pos - *pend_pos > self.mask {
            return None;
        }
        let pg_off = ((prod_pos & self.mask) >> 12) as u32;
        let len_field = size as u32 | BPF_RINGBUF_BUSY_BIT;
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&len_field.to_ne_bytes());
        bytes[4..].copy_from_slice(&pg_off.to_ne_bytes());
        self.header(prod_pos)?
            .store(u64::from_ne_bytes(bytes), Ordering::Relaxed);
        self.producer_pos.store(new_prod_pos, Ordering::Release);
        Some(prod_pos)
    }

    /// Header position of the record whose data starts at `data`, if it is one of ours.
    fn pos_of(&self, data: *const u8) -> Option<u64> {
        let base = self.data.as_ptr() as usize;
        let off = (data as usize).checked_sub(base)?.checked_sub(8)?;
        (off % 8 == 0 && (off as u64) < self.size).then_some(off as u64)
    }

    /// `bpf_ringbuf_submit` (or `bpf_ringbuf_discard` when `discard`) of a reserved record.
    /// A pointer that is not a record of this buffer is ignored (the verifier guarantees it).
    pub fn commit(&self, data: *const u8, flags: u64, discard: bool) {
        let Some(pos) = self.pos_of(data) else {
            return;
        };
        let Some(h) = self.header(pos) else {
            return;
        };
        let clear = u64::from(BPF_RINGBUF_BUSY_BIT) << LEN_SHIFT;
        let mut set = 0;
        if discard {
            set = u64::from(BPF_RINGBUF_DISCARD_BIT) << LEN_SHIFT;
        }
        // One atomic update of the header, as the kernel's xchg of hdr->len.
        let _ = h.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |w| {
            Some((w & !clear) | set)
        });
        let cons_pos = self.consumer_pos.load(Ordering::Acquire);
        if flags & BPF_RB_FORCE_WAKEUP != 0
            || (flags & BPF_RB_NO_WAKEUP == 0 && cons_pos & self.mask == pos & self.mask)
        {
            self.notify();
        }
    }

    /// `bpf_ringbuf_submit`.
    pub fn submit(&self, data: *const u8, flags: u64) {
        self.commit(data, flags, false);
    }

    /// `bpf_ringbuf_discard`.
    pub fn discard(&self, data: *const u8, flags: u64) {
        self.commit(data, flags, true);
    }

    /// `bpf_ringbuf_output`: copies `data` into a new record and submits it; `-EINVAL` for
    /// unknown flags, `-EAGAIN` without room, else 0.
    pub fn output(&self, data: &[u8], flags: u64) -> i64 {
        if flags & !(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP) != 0 {
            return Errno::Einval("".into()).to_neg();
        }
        let Some(pos) = self.reserve_pos(data.len() as u64, 0) else {
            return Errno::Eagain("".into()).to_neg();
        };
        let start = ((pos & self.mask) / 8 + 1) as usize;
        if let Some(words) = self.data.get(start..start + storage::words_for(data.len())) {
            storage::store(words, data);
        }
        self.commit(self.data_ptr(pos), flags, false);
        0
    }

    /// `bpf_ringbuf_query`.
    #[must_use]
    pub fn query(&self, flags: u64) -> u64 {
        let cons = self.consumer_pos.load(Ordering::Acquire);
        let prod = self.producer_pos.load(Ordering::Acquire);
        match flags {
            BPF_RB_AVAIL_DATA => prod - cons,
            BPF_RB_RING_SIZE => self.size,
            BPF_RB_CONS_POS => cons,
            BPF_RB_PROD_POS => prod,
            _ => 0,
        }
    }

    fn notify(&self) {
        let mut n = self
            .wakeups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *n = n.wrapping_add(1);
        self.wake.notify_all();
    }

    /// Consumes every record submitted so far, in order, calling `f` with each one's data
    /// (discarded records are skipped); stops at the first record still busy. Returns the
    /// number of records passed to `f` (libbpf's `ring_buffer__consume`).
    pub fn consume(&self, mut f: impl FnMut(&[u8])) -> usize {
        let _guard = self
            .consumer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut count = 0;
        let mut buf = Vec::new();
        let mut cons = self.consumer_pos.load(Ordering::Acquire);
        loop {
            let mut progressed = false;
            let prod = self.producer_pos.load(Ordering::Acquire);
            while cons < prod {
                let Some(h) = self.header(cons) else {
                    return count;
                };
                let len = Self::hdr_len(h.load(Ordering::Acquire));
                if len & BPF_RINGBUF_BUSY_BIT != 0 {
                    return count;
                }
                if len & BPF_RINGBUF_DISCARD_BIT == 0 {
                    let n = len as usize;
                    let start = ((cons & self.mask) / 8 + 1) as usize;
                    buf.resize(n, 0);
                    if let Some(words) = self.data.get(start..start + storage::words_for(n)) {
                        storage::load(words, &mut buf);
                    }
                    f(&buf);
                    count += 1;
                }
                cons += Self::record_span(len);
                self.consumer_pos.store(cons, Ordering::Release);
                progressed = true;
            }
            if !progressed {
                return count;
            }
        }
    }

    /// Waits up to `timeout` for a wake-up or for data to be available; whether data is.
    pub fn wait(&self, timeout: Duration) -> bool {
        let n = self
            .wakeups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.query(BPF_RB_AVAIL_DATA) > 0 {
            return true;
        }
        let start = *n;
        let _ = self
            .wake
            .wait_timeout_while(n, timeout, |n| *n == start)
            .map_err(|_| ());
        self.query(BPF_RB_AVAIL_DATA) > 0
    }

    /// Size of the data area in bytes.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }
}
