//! `BPF_MAP_TYPE_CPUMAP` (kernel/bpf/cpumap.c): CPUs that `bpf_redirect_map` hands XDP frames
//! to, indexed by CPU number.
//!
//! A value is the kernel's `struct bpf_cpumap_val`: the queue size (`qsize`, 0 empties the slot,
//! at most 16384) and, for an 8-byte value, the descriptor of an XDP program to run on the
//! frames (reported back as its id). bpfkit runs no programs on cpumap entries
//! (`BPF_XDP_CPUMAP`), so naming one is refused with the kernel's answer for a descriptor that
//! is not such a program (`ENOMEM`, from the failed entry allocation). The other errnos are
//! the kernel's: flags above `BPF_EXIST` `EINVAL`, a key past `max_entries` `E2BIG`,
//! `BPF_NOEXIST` always `EEXIST`, a too large queue `EOVERFLOW`, a key that is not a possible
//! CPU `ENODEV`; delete is `EINVAL` past the end and 0 otherwise; `get_next_key` walks every
//! index. bpfkit has no per-CPU kthreads: a redirect is recorded for the caller only.

use std::sync::{PoisonError, RwLock};

use super::{cpu, flags};
use crate::errno::Errno;

/// The kernel's sanity limit on `qsize`.
const MAX_QSIZE: u32 = 16384;
/// `EOVERFLOW`, `ENODEV` (no named [`Errno`] variants).
const EOVERFLOW: i32 = 75;
const ENODEV: i32 = 19;

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(off..off + 4) {
        w.copy_from_slice(s);
    }
    u32::from_ne_bytes(w)
}

/// `NR_CPUS` of the running kernel (`/sys/devices/system/cpu/kernel_max` + 1), else 8192
/// (Debian's `CONFIG_NR_CPUS`): the most entries a cpumap may have.
#[must_use]
pub fn nr_cpus() -> u32 {
    static N: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *N.get_or_init(|| {
        std::fs::read_to_string("/sys/devices/system/cpu/kernel_max")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .map_or(8192, |m| m.saturating_add(1))
    })
}

/// A cpumap.
#[derive(Debug)]
pub struct CpuMap {
    value_size: u32,
    /// Each slot's queue size, when set.
    slots: Box<[RwLock<Option<u32>>]>,
}

impl CpuMap {
    /// A map of `max_entries` CPUs (attributes checked).
    pub(crate) fn new(value_size: u32, max_entries: u32) -> Result<Self, Errno> {
        let mut v = Vec::new();
        v.try_reserve_exact(max_entries as usize)
            .map_err(|_| Errno::Enomem("cannot allocate the cpumap".into()))?;
        v.extend((0..max_entries).map(|_| RwLock::new(None)));
        Ok(Self {
            value_size,
            slots: v.into_boxed_slice(),
        })
    }

    /// The queue size set for CPU `key` (`__cpu_map_lookup_elem`), if any.
    #[must_use]
    pub fn qsize(&self, key: u32) -> Option<u32> {
        *self
            .slots
            .get(key as usize)?
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// `cpu_map_lookup_elem` from user space: (`qsize`, program id 0).
    pub(crate) fn lookup(&self, key: &[u8], value: &mut [u8]) -> Result<(), Errno> {
        let q = self
            .qsize(u32_at(key, 0))
            .ok_or_else(|| Errno::Enoent("no entry for that CPU".into()))?;
        let mut val = [0u8; 8];
        val[..4].copy_from_slice(&q.to_ne_bytes());
        let n = (self.value_size as usize).min(value.len());
        value[..n].copy_from_slice(&val[..n]);
        Ok(())
    }

    /// `cpu_map_update_elem`.
    pub(crate) fn update(&self, key: &[u8], value: &[u8], map_flags: u64) -> Result<(), Errno> {
        let key = u32_at(key, 0);
        let qsize = u32_at(value, 0);
        if map_flags > flags::BPF_EXIST {
            return Err(Errno::Einval("unknown update flags".into()));
        }
        let slot = self.slots.get(key as usize).ok_or_else(|| {
            Errno::E2big(format!("cpu {key} is past max_entries {}", self.slots.len()).into())
        })?;
        if map_flags == flags::BPF_NOEXIST {
            return Err(Errno::Eexist(
                "a cpumap slot always exists (BPF_NOEXIST)".into(),
            ));
        }
        if qsize > MAX_QSIZE {
            return Err(Errno::Other(
                EOVERFLOW,
                format!("qsize {qsize} is above {MAX_QSIZE}").into(),
            ));
        }
        if key >= cpu::possible_cpus() {
            return Err(Errno::Other(
                ENODEV,
                format!("cpu {key} is not a possible CPU").into(),
            ));
        }
        let new = if qsize == 0 {
            None
        } else {
            if value.len() >= 8 && (u32_at(value, 4) as i32) > 0 {
                return Err(Errno::Enomem(
                    "bpfkit runs no programs on cpumap entries (BPF_XDP_CPUMAP)".into(),
                ));
            }
            Some(qsize)
        };
        *slot.write().unwrap_or_else(PoisonError::into_inner) = new;
        Ok(())
    }

    /// `cpu_map_delete_elem`: `EINVAL` past the end, else 0.
    pub(crate) fn delete(&self, key: &[u8]) -> Result<(), Errno> {
        let key = u32_at(key, 0);
        let slot = self.slots.get(key as usize).ok_or_else(|| {
            Errno::Einval(format!("cpu {key} is past max_entries {}", self.slots.len()).into())
        })?;
        *slot.write().unwrap_or_else(PoisonError::into_inner) = None;
        Ok(())
    }

    /// `cpu_map_get_next_key`: every index, as an array.
    pub(crate) fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), Errno> {
        let max = self.slots.len() as u32;
        let index = key.map_or(u32::MAX, |k| u32_at(k, 0));
        let n = if index >= max {
            0
        } else if index == max - 1 {
            return Err(Errno::Enoent("no index after the last".into()));
        } else {
            index + 1
        };
        next[..4].copy_from_slice(&n.to_ne_bytes());
        Ok(())
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in tests a panic is the failure report")]
mod tests {
    //! Expected errnos from kernel/bpf/cpumap.c (`cpu_map_update_elem`, `cpu_map_delete_elem`).
    use super::*;

    fn k(i: u32) -> [u8; 4] {
        i.to_ne_bytes()
    }

    #[test]
    fn updates_check_flags_index_qsize_then_the_cpu() {
        let n = cpu::possible_cpus();
        let m = CpuMap::new(8, n + 1).unwrap();
        assert_eq!(m.update(&k(0), &k(1), 3).unwrap_err().code(), 22);
        assert_eq!(m.update(&k(n + 1), &k(1), 0).unwrap_err().code(), 7);
        assert_eq!(m.update(&k(0), &k(1), 1).unwrap_err().code(), 17);
        assert_eq!(m.update(&k(0), &k(16385), 0).unwrap_err().code(), 75);
        assert_eq!(m.update(&k(n), &k(1), 0).unwrap_err().code(), 19);
        m.update(&k(0), &k(64), 2).unwrap();
        assert_eq!(m.qsize(0), Some(64));
        let mut v = [0u8; 8];
        m.lookup(&k(0), &mut v).unwrap();
        assert_eq!(v, [64, 0, 0, 0, 0, 0, 0, 0]);
        m.update(&k(0), &k(0), 0).unwrap();
        assert_eq!(m.qsize(0), None);
        m.delete(&k(n)).unwrap();
        assert_eq!(m.delete(&k(n + 1)).unwrap_err().code(), 22);
    }
}
