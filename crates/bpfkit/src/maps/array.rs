//! `BPF_MAP_TYPE_ARRAY` and `BPF_MAP_TYPE_PERCPU_ARRAY`: kernel/bpf/arraymap.c.
//!
//! `max_entries` zeroed values of `round_up(value_size, 8)` bytes (per CPU for the per-CPU
//! type) indexed by a native-endian `u32` key. Values never move: a program's value pointer
//! stays valid for the map's life, and updates copy into the value in place (the kernel's
//! `copy_map_value`), so concurrent atomic adds through pointers lose nothing.
//!
//! Errnos as the kernel: lookup past the end `ENOENT`, update past the end `E2BIG`,
//! `BPF_NOEXIST` `EEXIST` (every index exists), delete `EINVAL`, `get_next_key` from a missing
//! or out-of-range key gives index 0 and after the last index `ENOENT`.

use std::sync::atomic::AtomicU64;

use super::storage::{self, LazyWords};
use super::{check_update_flags, flags};
use crate::errno::Errno;

/// An array map (per-CPU or not).
#[derive(Debug)]
pub struct ArrayMap {
    value_size: usize,
    value_words: usize,
    ncpus: usize,
    percpu: bool,
    max_entries: u32,
    values: LazyWords,
}

impl ArrayMap {
    /// An array of `max_entries` values (attributes already checked).
    pub(crate) fn new(
        percpu: bool,
        value_size: u32,
        max_entries: u32,
        ncpus: u32,
    ) -> Result<Self, Errno> {
        let value_words = storage::words_for(value_size as usize);
        let ncpus = if percpu { ncpus.max(1) as usize } else { 1 };
        Ok(Self {
            value_size: value_size as usize,
            value_words,
            ncpus,
            percpu,
            max_entries,
            values: LazyWords::new(max_entries as usize, value_words * ncpus)?,
        })
    }

    /// The size of a value as the system call copies it.
    pub(crate) fn user_value_size(&self) -> usize {
        if self.percpu {
            self.value_words * 8 * self.ncpus
        } else {
            self.value_size
        }
    }

    fn index(key: &[u8]) -> u32 {
        let mut b = [0u8; 4];
        let n = key.len().min(4);
        b[..n].copy_from_slice(&key[..n]);
        u32::from_ne_bytes(b)
    }

    fn cpu_words(&self, index: u32, cpu: usize) -> Option<&[AtomicU64]> {
        let all = self.values.elem(index as usize)?;
        all.get(cpu * self.value_words..(cpu + 1) * self.value_words)
    }

    /// Copies a value out (all CPUs' values for the per-CPU type).
    pub(crate) fn lookup(&self, key: &[u8], out: &mut [u8]) -> Result<(), Errno> {
        let index = Self::index(key);
        if index >= self.max_entries {
            return Err(Errno::Enoent(
                format!("index {index} is past max_entries {}", self.max_entries).into(),
            ));
        }
        for (cpu, chunk) in out.chunks_mut(self.value_words * 8).enumerate() {
            if let Some(w) = self.cpu_words(index, cpu) {
                storage::load(w, chunk);
            }
        }
        Ok(())
    }

    /// The value pointer for a program (CPU `cpu`'s value for the per-CPU type), or null past
    /// the end.
    pub(crate) fn lookup_ptr(&self, key: &[u8], cpu: usize) -> *mut u8 {
        let index = Self::index(key);
        if index >= self.max_entries {
            return std::ptr::null_mut();
        }
        let cpu = if self.percpu { cpu } else { 0 };
        match self.cpu_words(index, cpu) {
            Some(w) if !w.is_empty() => storage::ptr_of(w),
            _ => std::ptr::null_mut(),
        }
    }

    /// `map_update_elem`: from the system call (`cpu` `None`: all CPUs' values) or a program.
    pub(crate) fn update(
        &self,
        key: &[u8],
        value: &[u8],
        map_flags: u64,
        cpu: Option<usize>,
    ) -> Result<(), Errno> {
        check_update_flags(map_flags)?;
        let index = Self::index(key);
        if index >= self.max_entries {
            return Err(Errno::E2big(
                format!("index {index} is past max_entries {}", self.max_entries).into(),
            ));
        }
        if map_flags & flags::BPF_NOEXIST != 0 {
            return Err(Errno::Eexist(
                "every array element exists (BPF_NOEXIST)".into(),
            ));
        }
        match (self.percpu, cpu) {
            (true, None) => {
                for (c, chunk) in value.chunks(self.value_words * 8).enumerate() {
                    if let Some(w) = self.cpu_words(index, c) {
                        storage::store(w, chunk);
                    }
                }
            }
            (true, Some(c)) => {
                if let Some(w) = self.cpu_words(index, c) {
                    storage::store(w, value);
                }
            }
            (false, _) => {
                if let Some(w) = self.cpu_words(index, 0) {
                    storage::store(w, value);
                }
            }
        }
        Ok(())
    }

    /// `map_get_next_key`.
    pub(crate) fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), Errno> {
        let index = key.map_or(u32::MAX, Self::index);
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
