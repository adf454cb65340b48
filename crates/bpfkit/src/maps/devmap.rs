//! `BPF_MAP_TYPE_DEVMAP` and `BPF_MAP_TYPE_DEVMAP_HASH` (kernel/bpf/devmap.c): network devices
//! that `bpf_redirect_map` sends XDP frames to, by array index or by hash key.
//!
//! A value is the kernel's `struct bpf_devmap_val`: the device's `ifindex` (`u32`), and, for an
//! 8-byte value, the descriptor of an XDP program to run on redirected frames (reported back as
//! its id). bpfkit's device model has one device, the loopback device of test runs
//! ([`LOOPBACK_IFINDEX`]): an update naming another device is `EINVAL`, as the kernel answers for
//! an ifindex no device has, and so is one naming a program, since bpfkit has no devmap programs
//! (`BPF_XDP_DEVMAP`). The errnos of each command are the kernel's, quirks included: an array
//! update with `BPF_NOEXIST` is always `EEXIST`, an array delete is 0 for any index in range, a
//! hash update with `BPF_EXIST` may create the element, and the hash walks its buckets (newest
//! element first in each) for `get_next_key` as the kernel's does.
//!
//! Programs read values read-only (the kernel adds `BPF_F_RDONLY_PROG` to every devmap).
//! Replaced values stay alive until the map is dropped, so a pointer a program got from
//! `bpf_map_lookup_elem` stays valid, as RCU keeps it in the kernel.

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use super::flags;
use crate::errno::Errno;
use crate::prog::run::LOOPBACK_IFINDEX;

/// One stored `struct bpf_devmap_val` (`ifindex`, then the program id, 0 for none).
#[derive(Debug)]
struct DevEntry {
    val: [u8; 8],
}

impl DevEntry {
    fn ifindex(&self) -> u32 {
        u32::from_ne_bytes([self.val[0], self.val[1], self.val[2], self.val[3]])
    }
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(off..off + 4) {
        w.copy_from_slice(s);
    }
    u32::from_ne_bytes(w)
}

/// `__dev_map_alloc_node`: the device must exist and no program may be named.
fn alloc_node(value: &[u8]) -> Result<Arc<DevEntry>, Errno> {
    let ifindex = u32_at(value, 0);
    if ifindex != LOOPBACK_IFINDEX {
        return Err(Errno::Einval(
            format!("no device has ifindex {ifindex} (bpfkit models only lo, ifindex 1)").into(),
        ));
    }
    // `bpf_prog.fd` is an int: only a positive one names a program.
    if value.len() >= 8 && (u32_at(value, 4) as i32) > 0 {
        return Err(Errno::Einval(
            "bpfkit runs no programs on devmap entries (BPF_XDP_DEVMAP)".into(),
        ));
    }
    let mut val = [0u8; 8];
    val[..4].copy_from_slice(&ifindex.to_ne_bytes());
    Ok(Arc::new(DevEntry { val }))
}

fn key_u32(key: &[u8]) -> u32 {
    u32_at(key, 0)
}

/// A devmap or devmap_hash.
#[derive(Debug)]
pub struct DevMap {
    value_size: u32,
    max_entries: u32,
    store: Store,
    /// Replaced entries, kept for programs that may hold their address.
    retired: Mutex<Vec<Arc<DevEntry>>>,
}

#[derive(Debug)]
enum Store {
    Array(Box<[RwLock<Option<Arc<DevEntry>>>]>),
    Hash(RwLock<HashBuckets>),
}

#[derive(Debug)]
struct HashBuckets {
    /// Each bucket newest first (`hlist_add_head_rcu`).
    buckets: Vec<Vec<(u32, Arc<DevEntry>)>>,
    items: u32,
}

impl HashBuckets {
    fn bucket(&self, key: u32) -> usize {
        (key & (self.buckets.len() as u32 - 1)) as usize
    }

    fn find(&self, key: u32) -> Option<&Arc<DevEntry>> {
        self.buckets[self.bucket(key)]
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, e)| e)
    }
}

/// Most entries bpfkit agrees to allocate (beyond it: `ENOMEM`).
const MAX_DEVMAP_ENTRIES: u32 = 1 << 26;

impl DevMap {
    /// A map of `max_entries` devices (attributes checked); `hash` for `DEVMAP_HASH`.
    pub(crate) fn new(hash: bool, value_size: u32, max_entries: u32) -> Result<Self, Errno> {
        let slots = if hash {
            max_entries.checked_next_power_of_two().unwrap_or(1 << 31)
        } else {
            max_entries
        };
        if slots > MAX_DEVMAP_ENTRIES {
            return Err(Errno::Enomem(
                format!("{max_entries} devices do not fit in memory").into(),
            ));
        }
        let store = if hash {
            Store::Hash(RwLock::new(HashBuckets {
                buckets: vec![Vec::new(); slots as usize],
                items: 0,
            }))
        } else {
            let mut v = Vec::new();
            v.try_reserve_exact(slots as usize)
                .map_err(|_| Errno::Enomem("cannot allocate the devmap".into()))?;
            v.extend((0..slots).map(|_| RwLock::new(None)));
            Store::Array(v.into_boxed_slice())
        };
        Ok(Self {
            value_size,
            max_entries,
            store,
            retired: Mutex::new(Vec::new()),
        })
    }

    fn retire(&self, old: Option<Arc<DevEntry>>) {
        if let Some(old) = old {
            self.retired
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(old);
        }
    }

    fn entry(&self, key: u32) -> Option<Arc<DevEntry>> {
        match &self.store {
            Store::Array(slots) => slots
                .get(key as usize)?
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            Store::Hash(h) => h
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .find(key)
                .cloned(),
        }
    }

    /// The ifindex stored under `key` (`__dev_map_lookup_elem` / `__dev_map_hash_lookup_elem`).
    #[must_use]
    pub fn ifindex(&self, key: u32) -> Option<u32> {
        self.entry(key).map(|e| e.ifindex())
    }

    /// `dev_map_lookup_elem` from user space: the value (`ifindex`, program id), `ENOENT` if
    /// the key has no device.
    pub(crate) fn lookup(&self, key: &[u8], value: &mut [u8]) -> Result<(), Errno> {
        let e = self
            .entry(key_u32(key))
            .ok_or_else(|| Errno::Enoent("no device under that key".into()))?;
        let n = (self.value_size as usize).min(value.len());
        value[..n].copy_from_slice(&e.val[..n]);
        Ok(())
    }

    /// The address of the value under `key` for a program's `bpf_map_lookup_elem`, or null.
    pub(crate) fn lookup_ptr(&self, key: &[u8]) -> *mut u8 {
        match self.entry(key_u32(key)) {
            // The entry is kept alive by the map (in place or retired) while the map lives.
            Some(e) => e.val.as_ptr().cast_mut(),
            None => std::ptr::null_mut(),
        }
    }

    /// `dev_map_update_elem` / `dev_map_hash_update_elem`.
    pub(crate) fn update(&self, key: &[u8], value: &[u8], map_flags: u64) -> Result<(), Errno> {
        let key = key_u32(key);
        match &self.store {
            Store::Array(slots) => {
                if map_flags > flags::BPF_EXIST {
                    return Err(Errno::Einval("unknown update flags".into()));
                }
                let slot = slots.get(key as usize).ok_or_else(|| {
                    Errno::E2big(
                        format!("index {key} is past max_entries {}", self.max_entries).into(),
                    )
                })?;
                if map_flags == flags::BPF_NOEXIST {
                    return Err(Errno::Eexist(
                        "a devmap slot always exists (BPF_NOEXIST)".into(),
                    ));
                }
                let new = if u32_at(value, 0) == 0 {
                    if value.len() >= 8 && (u32_at(value, 4) as i32) > 0 {
                        return Err(Errno::Einval("a program without a device".into()));
                    }
                    None
                } else {
                    Some(alloc_node(value)?)
                };
                let old = std::mem::replace(
                    &mut *slot.write().unwrap_or_else(PoisonError::into_inner),
                    new,
                );
                self.retire(old);
                Ok(())
            }
            Store::Hash(h) => {
                if map_flags > flags::BPF_EXIST || u32_at(value, 0) == 0 {
                    return Err(Errno::Einval(
                        "unknown update flags or ifindex 0 in a devmap_hash".into(),
                    ));
                }
                let mut h = h.write().unwrap_or_else(PoisonError::into_inner);
                let exists = h.find(key).is_some();
                if exists && map_flags & flags::BPF_NOEXIST != 0 {
                    return Err(Errno::Eexist("the key exists (BPF_NOEXIST)".into()));
                }
                let new = alloc_node(value)?;
                let b = h.bucket(key);
                if exists {
                    let bucket = &mut h.buckets[b];
                    if let Some(i) = bucket.iter().position(|(k, _)| *k == key) {
                        let (_, old) = bucket.remove(i);
                        self.retire(Some(old));
                    }
                } else {
                    if h.items >= self.max_entries {
                        return Err(Errno::E2big("the devmap_hash is full".into()));
                    }
                    h.items += 1;
                }
                h.buckets[b].insert(0, (key, new));
                Ok(())
            }
        }
    }

    /// `dev_map_delete_elem` (`EINVAL` past the end, else 0) / `dev_map_hash_delete_elem`
    /// (`ENOENT` for a missing key).
    pub(crate) fn delete(&self, key: &[u8]) -> Result<(), Errno> {
        let key = key_u32(key);
        match &self.store {
            Store::Array(slots) => {
                let slot = slots.get(key as usize).ok_or_else(|| {
                    Errno::Einval(
                        format!("index {key} is past max_entries {}", self.max_entries).into(),
                    )
                })?;
                let old = slot.write().unwrap_or_else(PoisonError::into_inner).take();
                self.retire(old);
                Ok(())
            }
            Store::Hash(h) => {
                let mut h = h.write().unwrap_or_else(PoisonError::into_inner);
                let b = h.bucket(key);
                let i = h.buckets[b]
                    .iter()
                    .position(|(k, _)| *k == key)
                    .ok_or_else(|| Errno::Enoent("no device under that key".into()))?;
                let (_, old) = h.buckets[b].remove(i);
                h.items -= 1;
                self.retire(Some(old));
                Ok(())
            }
        }
    }

    /// `dev_map_get_next_key` (every index, as an array) / `dev_map_hash_get_next_key`.
    pub(crate) fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), Errno> {
        let found = match &self.store {
            Store::Array(_) => {
                let index = key.map_or(u32::MAX, key_u32);
                if index >= self.max_entries {
                    0
                } else if index == self.max_entries - 1 {
                    return Err(Errno::Enoent("no index after the last".into()));
                } else {
                    index + 1
                }
            }
            Store::Hash(h) => {
                let h = h.read().unwrap_or_else(PoisonError::into_inner);
                let mut start = 0;
                if let Some(k) = key.map(key_u32) {
                    let b = h.bucket(k);
                    if let Some(i) = h.buckets[b].iter().position(|(x, _)| *x == k) {
                        if let Some((n, _)) = h.buckets[b].get(i + 1) {
                            next[..4].copy_from_slice(&n.to_ne_bytes());
                            return Ok(());
                        }
                        start = b + 1;
                    }
                }
                h.buckets[start..]
                    .iter()
                    .find_map(|b| b.first().map(|(k, _)| *k))
                    .ok_or_else(|| Errno::Enoent("no key after that one".into()))?
            }
        };
        next[..4].copy_from_slice(&found.to_ne_bytes());
        Ok(())
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in tests a panic is the failure report")]
mod tests {
    use super::*;

    fn k(i: u32) -> [u8; 4] {
        i.to_ne_bytes()
    }

    #[test]
    fn array_updates_name_the_loopback_device_only() {
        let m = DevMap::new(false, 4, 4).unwrap();
        m.update(&k(0), &k(1), 0).unwrap();
        assert_eq!(m.ifindex(0), Some(1));
        assert!(matches!(m.update(&k(1), &k(2), 0), Err(Errno::Einval(_))));
        assert!(matches!(m.update(&k(1), &k(1), 1), Err(Errno::Eexist(_))));
        assert!(matches!(m.update(&k(4), &k(1), 0), Err(Errno::E2big(_))));
        // ifindex 0 empties the slot.
        m.update(&k(0), &k(0), 0).unwrap();
        assert_eq!(m.ifindex(0), None);
        m.delete(&k(3)).unwrap();
        assert!(matches!(m.delete(&k(4)), Err(Errno::Einval(_))));
    }

    #[test]
    fn hash_walks_buckets_newest_first() {
        let m = DevMap::new(true, 8, 4).unwrap(); // 4 buckets
        let v = [1u8, 0, 0, 0, 0, 0, 0, 0];
        for key in [5, 1, 2] {
            m.update(&k(key), &v, 0).unwrap();
        }
        let mut order = Vec::new();
        let mut next = [0u8; 4];
        let mut cur: Option<[u8; 4]> = None;
        while m
            .get_next_key(cur.as_ref().map(|c| &c[..]), &mut next)
            .is_ok()
        {
            order.push(u32::from_ne_bytes(next));
            cur = Some(next);
        }
        // Bucket 1 holds 1 then 5 (1 added last), bucket 2 holds 2.
        assert_eq!(order, vec![1, 5, 2]);
        m.update(&k(9), &v, 0).unwrap();
        assert!(matches!(m.update(&k(10), &v, 0), Err(Errno::E2big(_))));
        assert!(matches!(m.update(&k(9), &v, 1), Err(Errno::Eexist(_))));
        assert!(matches!(m.delete(&k(7)), Err(Errno::Enoent(_))));
    }
}
