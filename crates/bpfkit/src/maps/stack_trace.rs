//! `BPF_MAP_TYPE_STACK_TRACE` (kernel/bpf/stackmap.c): call chains stored under the id
//! `bpf_get_stackid` returns, read from user space by id.
//!
//! The map is a table of `roundup_pow_of_two(max_entries)` buckets with `max_entries`
//! preallocated traces. `bpf_get_stackid` hashes the chain with `jhash2` (seed 0); the bucket is
//! `hash & (n_buckets - 1)` and is the stack id. From user space: lookup copies the chain and zero
//! fills the value (`ENOENT` for an empty or out-of-range id), update is always `EINVAL`, delete is
//! `E2BIG` past the buckets and `ENOENT` for an empty one, `get_next_key` walks the occupied
//! buckets in order, and lookup-and-delete takes the chain out.
//!
//! bpfkit has no kernel or user stacks to walk: the chain a program sees is the one the event
//! source gives it ([`crate::helpers::stack::with_call_chain`]), empty by default.

use std::sync::{Mutex, PoisonError};

use super::jhash::jhash2;
use crate::errno::Errno;

/// `BPF_F_SKIP_FIELD_MASK`: the low 8 bits of the flags are frames to skip.
pub const BPF_F_SKIP_FIELD_MASK: u64 = 0xff;
/// `BPF_F_USER_STACK`: the user-space chain rather than the kernel's.
pub const BPF_F_USER_STACK: u64 = 1 << 8;
/// `BPF_F_FAST_STACK_CMP`: a matching hash is enough to return an existing id.
pub const BPF_F_FAST_STACK_CMP: u64 = 1 << 9;
/// `BPF_F_REUSE_STACKID`: a different chain in the bucket is replaced instead of `-EEXIST`.
pub const BPF_F_REUSE_STACKID: u64 = 1 << 10;

/// `sysctl_perf_event_max_stack`'s default: the deepest chain the kernel collects.
pub const PERF_EVENT_MAX_STACK: u32 = 127;

/// `sizeof(struct bpf_stack_build_id)`.
pub const BUILD_ID_ENTRY: usize = 32;
/// `BPF_STACK_BUILD_ID_IP`: a build-id entry that holds a plain address.
pub const BPF_STACK_BUILD_ID_IP: i32 = 2;

const EINVAL: i64 = -22;
const EFAULT: i64 = -14;
const EEXIST: i64 = -17;
const ENOMEM: i64 = -12;

#[derive(Debug, Clone)]
struct Bucket {
    hash: u32,
    ips: Vec<u64>,
}

#[derive(Debug)]
struct Table {
    buckets: Vec<Option<Bucket>>,
    /// Preallocated traces not in a bucket (the kernel's freelist).
    free: u32,
}

/// A stack trace map.
#[derive(Debug)]
pub struct StackTraceMap {
    value_size: u32,
    /// `BPF_F_STACK_BUILD_ID`: each frame is a 32-byte `struct bpf_stack_build_id`.
    build_id: bool,
    table: Mutex<Table>,
}

fn id_of(key: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    let n = key.len().min(4);
    b[..n].copy_from_slice(&key[..n]);
    u32::from_ne_bytes(b)
}

impl StackTraceMap {
    /// A map of `max_entries` traces of up to `value_size / 8` frames, or `value_size / 32`
    /// build-id frames with `build_id` (attributes checked).
    pub(crate) fn new(value_size: u32, max_entries: u32, build_id: bool) -> Result<Self, Errno> {
        let n_buckets = max_entries.checked_next_power_of_two().ok_or_else(|| {
            Errno::E2big(format!("{max_entries} entries: too many buckets").into())
        })?;
        let mut buckets = Vec::new();
        buckets
            .try_reserve_exact(n_buckets as usize)
            .map_err(|_| Errno::Enomem("cannot allocate the buckets".into()))?;
        buckets.resize(n_buckets as usize, None);
        Ok(Self {
            value_size,
            build_id,
            table: Mutex::new(Table {
                buckets,
                free: max_entries,
            }),
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The number of buckets (stack ids are below it).
    #[must_use]
    pub fn n_buckets(&self) -> u32 {
        self.table().buckets.len() as u32
    }

    /// The chain stored under `id`, if any.
    #[must_use]
    pub fn get(&self, id: u32) -> Option<Vec<u64>> {
        let t = self.table();
        t.buckets.get(id as usize)?.as_ref().map(|b| b.ips.clone())
    }

    /// `bpf_stackmap_extract`: copies the chain of `key`'s id into `value` and zero fills the
    /// rest; with `delete`, the bucket is emptied.
    pub(crate) fn lookup(&self, key: &[u8], value: &mut [u8], delete: bool) -> Result<(), Errno> {
        let id = id_of(key) as usize;
        let mut t = self.table();
        let slot = t
            .buckets
            .get_mut(id)
            .ok_or_else(|| Errno::Enoent(format!("stack id {id} is past the buckets").into()))?;
        let Some(b) = slot.as_ref() else {
            return Err(Errno::Enoent(format!("no stack under id {id}").into()));
        };
        value.fill(0);
        if self.build_id {
            // bpfkit knows no build ids: Linux's fallback entry, the status then the address.
            for (d, ip) in value.chunks_exact_mut(BUILD_ID_ENTRY).zip(&b.ips) {
                d[..4].copy_from_slice(&BPF_STACK_BUILD_ID_IP.to_ne_bytes());
                d[24..].copy_from_slice(&ip.to_ne_bytes());
            }
        } else {
            for (d, ip) in value.chunks_exact_mut(8).zip(&b.ips) {
                d.copy_from_slice(&ip.to_ne_bytes());
            }
        }
        if delete {
            *slot = None;
            t.free += 1;
        }
        Ok(())
    }

    /// `stack_map_delete_elem`.
    pub(crate) fn delete(&self, key: &[u8]) -> Result<(), Errno> {
        let id = id_of(key) as usize;
        let mut t = self.table();
        let n = t.buckets.len();
        let slot = t
            .buckets
            .get_mut(id)
            .ok_or_else(|| Errno::E2big(format!("stack id {id} is past the {n} buckets").into()))?;
        if slot.take().is_none() {
            return Err(Errno::Enoent(format!("no stack under id {id}").into()));
        }
        t.free += 1;
        Ok(())
    }

    /// `stack_map_get_next_key`: the next occupied bucket after `key` (from the first when
    /// `key` is absent, past the end or empty).
    pub(crate) fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), Errno> {
        let t = self.table();
        let n = t.buckets.len();
        let start = match key.map(id_of) {
            Some(id) if (id as usize) < n && t.buckets[id as usize].is_some() => id as usize + 1,
            _ => 0,
        };
        let found = (start..n)
            .find(|&i| t.buckets[i].is_some())
            .ok_or_else(|| Errno::Enoent("no occupied stack id after that one".into()))?;
        for (d, s) in next.iter_mut().zip((found as u32).to_ne_bytes()) {
            *d = s;
        }
        Ok(())
    }

    /// `bpf_get_stackid` on the call chain `chain` (innermost frame first): the stack id or a
    /// negative errno, as `__bpf_get_stackid` computes it.
    #[must_use]
    pub fn get_stackid(&self, chain: &[u64], flags: u64) -> i64 {
        if flags
            & !(BPF_F_SKIP_FIELD_MASK
                | BPF_F_USER_STACK
                | BPF_F_FAST_STACK_CMP
                | BPF_F_REUSE_STACKID)
            != 0
        {
            return EINVAL;
        }
        let skip = (flags & BPF_F_SKIP_FIELD_MASK) as usize;
        // The kernel collects at most value_size / (frame size) frames after the skipped ones,
        // and never more than sysctl_perf_event_max_stack in all.
        let frame = if self.build_id { BUILD_ID_ENTRY } else { 8 };
        let max_depth =
            (self.value_size as usize / frame + skip).min(PERF_EVENT_MAX_STACK as usize);
        let chain = &chain[..chain.len().min(max_depth)];
        if chain.len() <= skip {
            return EFAULT;
        }
        let ips = &chain[skip..];
        let bytes: Vec<u8> = ips.iter().flat_map(|ip| ip.to_ne_bytes()).collect();
        let hash = jhash2(&bytes, 0);
        let mut t = self.table();
        let id = hash & (t.buckets.len() as u32 - 1);
        let slot = &t.buckets[id as usize];
        let hash_matches = slot.as_ref().is_some_and(|b| b.hash == hash);
        if hash_matches && flags & BPF_F_FAST_STACK_CMP != 0 {
            return i64::from(id);
        }
        if hash_matches && slot.as_ref().is_some_and(|b| b.ips == ips) {
            return i64::from(id);
        }
        let occupied = slot.is_some();
        if occupied && flags & BPF_F_REUSE_STACKID == 0 {
            return EEXIST;
        }
        if t.free == 0 {
            return ENOMEM;
        }
        t.free -= 1;
        let old = t.buckets[id as usize].replace(Bucket {
            hash,
            ips: ips.to_vec(),
        });
        if old.is_some() {
            t.free += 1;
        }
        i64::from(id)
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in tests a panic is the failure report")]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_the_jhash2_of_the_frames_masked_to_the_buckets() {
        let m = StackTraceMap::new(16, 5, false).unwrap(); // 8 buckets
        let chain = [0xffff_ffff_8100_0010u64, 0xffff_ffff_8100_0020];
        let bytes: Vec<u8> = chain.iter().flat_map(|x| x.to_ne_bytes()).collect();
        let want = i64::from(jhash2(&bytes, 0) & 7);
        assert_eq!(m.get_stackid(&chain, 0), want);
        // The same chain again: the same id; its frames are stored.
        assert_eq!(m.get_stackid(&chain, 0), want);
        assert_eq!(m.get(want as u32).unwrap(), chain.to_vec());
        // Skipping a frame hashes the rest.
        let rest: Vec<u8> = chain[1].to_ne_bytes().to_vec();
        let id = m.get_stackid(&chain, 1);
        if id >= 0 {
            assert_eq!(id, i64::from(jhash2(&rest, 0) & 7));
        } else {
            assert_eq!(id, EEXIST);
        }
    }

    #[test]
    fn errors_as_the_kernel() {
        let m = StackTraceMap::new(8, 1, false).unwrap(); // 1 bucket, 1 frame deep
        assert_eq!(m.get_stackid(&[1, 2], 1 << 11), EINVAL);
        assert_eq!(m.get_stackid(&[], 0), EFAULT);
        assert_eq!(m.get_stackid(&[1], 1), EFAULT);
        // Only the first value_size / 8 frames count.
        assert_eq!(m.get_stackid(&[1, 2], 0), 0);
        assert_eq!(m.get(0).unwrap(), vec![1]);
        assert_eq!(m.get_stackid(&[1, 3], 0), 0);
        // A different chain in the only bucket.
        assert_eq!(m.get_stackid(&[5], 0), EEXIST);
        // Replacing takes a free trace before the old one is given back (the kernel pops its
        // freelist first): with max_entries 1 there is none.
        assert_eq!(m.get_stackid(&[5], BPF_F_REUSE_STACKID), ENOMEM);
        let m = StackTraceMap::new(8, 2, false).unwrap();
        let id = m.get_stackid(&[1], 0);
        assert!(id >= 0);
        // Another one-frame chain whose hash lands in the same bucket.
        let f = (2u64..)
            .find(|f| i64::from(jhash2(&f.to_ne_bytes(), 0) & 1) == id)
            .unwrap();
        assert_eq!(m.get_stackid(&[f], 0), EEXIST);
        assert_eq!(m.get_stackid(&[f], BPF_F_REUSE_STACKID), id);
        assert_eq!(m.get(id as u32).unwrap(), vec![f]);
    }

    #[test]
    fn build_id_maps_hold_fallback_entries() {
        let m = StackTraceMap::new(64, 2, true).unwrap(); // two 32-byte frames
        let id = m.get_stackid(&[0x10, 0x20, 0x30], 0);
        assert!(id >= 0);
        let mut v = [0xaau8; 64];
        m.lookup(&(id as u32).to_ne_bytes(), &mut v, false).unwrap();
        for (e, ip) in v.chunks_exact(32).zip([0x10u64, 0x20]) {
            assert_eq!(e[..4], 2i32.to_ne_bytes());
            assert_eq!(e[4..24], [0u8; 20]);
            assert_eq!(e[24..], ip.to_ne_bytes());
        }
    }

    #[test]
    fn user_space_commands() {
        let m = StackTraceMap::new(16, 2, false).unwrap();
        let mut v = [0xaau8; 16];
        assert!(matches!(
            m.lookup(&0u32.to_ne_bytes(), &mut v, false),
            Err(Errno::Enoent(_))
        ));
        assert!(matches!(
            m.delete(&2u32.to_ne_bytes()),
            Err(Errno::E2big(_))
        ));
        assert!(matches!(
            m.delete(&1u32.to_ne_bytes()),
            Err(Errno::Enoent(_))
        ));
        let id = m.get_stackid(&[7], 0) as u32;
        m.lookup(&id.to_ne_bytes(), &mut v, false).unwrap();
        assert_eq!(v[..8], 7u64.to_ne_bytes());
        assert_eq!(v[8..], [0u8; 8]);
        let mut next = [0u8; 4];
        m.get_next_key(None, &mut next).unwrap();
        assert_eq!(u32::from_ne_bytes(next), id);
        assert!(m.get_next_key(Some(&id.to_ne_bytes()), &mut next).is_err());
        m.lookup(&id.to_ne_bytes(), &mut v, true).unwrap();
        assert!(m.get(id).is_none());
    }
}
