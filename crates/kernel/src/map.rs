//! Kernel maps: `BPF_MAP_CREATE` and the element commands (lookup, update, delete, next key).

use crate::attr::{self, ElemAttr, MapCreateAttr};
use crate::errno::Errno;
use crate::names;
use crate::sys::{self, OwnedFd};

/// `BPF_ANY`: create a new element or update an existing one.
pub const BPF_ANY: u64 = 0;
/// `BPF_NOEXIST`: create a new element only.
pub const BPF_NOEXIST: u64 = 1;
/// `BPF_EXIST`: update an existing element only.
pub const BPF_EXIST: u64 = 2;

/// A map created in the kernel; its descriptor is closed on drop.
#[derive(Debug)]
pub struct Map {
    fd: OwnedFd,
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
}

impl Map {
    /// The map's file descriptor, as an LD_IMM64 with src=1 (`BPF_PSEUDO_MAP_FD`) names it.
    #[must_use]
    pub fn fd(&self) -> i32 {
        sys::raw(&self.fd)
    }

    /// The `BPF_MAP_TYPE_*` number it was created with.
    #[must_use]
    pub fn map_type(&self) -> u32 {
        self.map_type
    }

    /// Key size in bytes.
    #[must_use]
    pub fn key_size(&self) -> u32 {
        self.key_size
    }

    /// Value size in bytes (per CPU, for per-CPU maps).
    #[must_use]
    pub fn value_size(&self) -> u32 {
        self.value_size
    }

    /// Maximum number of entries.
    #[must_use]
    pub fn max_entries(&self) -> u32 {
        self.max_entries
    }

    /// The size of the buffer a lookup fills: `value_size`, or for per-CPU maps one 8-byte
    /// aligned value per possible CPU, as the kernel copies them.
    #[must_use]
    pub fn lookup_size(&self) -> usize {
        let value = self.value_size as usize;
        if names::is_percpu_map(self.map_type) {
            value.next_multiple_of(8) * possible_cpus()
        } else {
            value
        }
    }
}

/// Creates a map (`BPF_MAP_CREATE`) of type `map_type` (a `BPF_MAP_TYPE_*` number).
pub fn map_create(
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    flags: u32,
) -> Result<Map, Errno> {
    let mut a = MapCreateAttr {
        map_type,
        key_size,
        value_size,
        max_entries,
        map_flags: flags,
        ..MapCreateAttr::default()
    };
    // SAFETY: MAP_CREATE reads no pointers from the attr.
    let ret = unsafe { sys::bpf(attr::BPF_MAP_CREATE, &mut a) }?;
    Ok(Map {
        fd: sys::owned_fd(ret)?,
        map_type,
        key_size,
        value_size,
        max_entries,
    })
}

/// Creates a map of maps (`BPF_MAP_TYPE_ARRAY_OF_MAPS` / `HASH_OF_MAPS`) whose inner map
/// template is the map behind descriptor `inner_map_fd` (any descriptor, to test the kernel's
/// checks of it).
pub fn map_create_outer(
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    flags: u32,
    inner_map_fd: i32,
) -> Result<Map, Errno> {
    let mut a = MapCreateAttr {
        map_type,
        key_size,
        value_size,
        max_entries,
        map_flags: flags,
        inner_map_fd: inner_map_fd as u32,
        ..MapCreateAttr::default()
    };
    // SAFETY: MAP_CREATE reads no pointers from the attr.
    let ret = unsafe { sys::bpf(attr::BPF_MAP_CREATE, &mut a) }?;
    Ok(Map {
        fd: sys::owned_fd(ret)?,
        map_type,
        key_size,
        value_size,
        max_entries,
    })
}

/// Looks a key up and deletes it (`BPF_MAP_LOOKUP_AND_DELETE_ELEM`): pops a queue or stack
/// (empty key), or removes a hash element; returns the value bytes.
pub fn map_lookup_and_delete(map: &Map, key: &[u8]) -> Result<Vec<u8>, Errno> {
    check_key(map, key)?;
    let mut value = vec![0u8; map.lookup_size()];
    let mut a = ElemAttr {
        map_fd: map.fd() as u32,
        key: key_ptr(key),
        value: attr::ptr_u64(value.as_mut_ptr()),
        ..ElemAttr::default()
    };
    // SAFETY: `key` holds key_size bytes (or is null for key_size 0) and `value` lookup_size
    // bytes, what the kernel copies.
    unsafe { sys::bpf(attr::BPF_MAP_LOOKUP_AND_DELETE_ELEM, &mut a) }?;
    Ok(value)
}

/// The key pointer of an element command: null for an empty key, as maps with `key_size` 0
/// (queues, stacks, ring buffers) need (the kernel refuses a non-null key for them).
fn key_ptr(key: &[u8]) -> u64 {
    if key.is_empty() {
        0
    } else {
        attr::ptr_u64(key.as_ptr())
    }
}

/// Checks a key's length against the map's key size (the kernel would read past the buffer).
fn check_key(map: &Map, key: &[u8]) -> Result<(), Errno> {
    if key.len() == map.key_size as usize {
        Ok(())
    } else {
        Err(Errno::EINVAL)
    }
}

/// Looks a key up (`BPF_MAP_LOOKUP_ELEM`); returns the value bytes ([`Map::lookup_size`] long).
/// A key of the wrong length is `EINVAL` without calling the kernel.
pub fn map_lookup(map: &Map, key: &[u8]) -> Result<Vec<u8>, Errno> {
    check_key(map, key)?;
    let mut value = vec![0u8; map.lookup_size()];
    let mut a = ElemAttr {
        map_fd: map.fd() as u32,
        key: key_ptr(key),
        value: attr::ptr_u64(value.as_mut_ptr()),
        ..ElemAttr::default()
    };
    // SAFETY: `key` holds key_size bytes and `value` lookup_size bytes, what the kernel copies.
    unsafe { sys::bpf(attr::BPF_MAP_LOOKUP_ELEM, &mut a) }?;
    Ok(value)
}

/// Updates or inserts an element (`BPF_MAP_UPDATE_ELEM`) with `flags` ([`BPF_ANY`],
/// [`BPF_NOEXIST`], [`BPF_EXIST`], optionally `BPF_F_LOCK`). `value` must be
/// [`Map::lookup_size`] bytes long.
pub fn map_update(map: &Map, key: &[u8], value: &[u8], flags: u64) -> Result<(), Errno> {
    check_key(map, key)?;
    if value.len() != map.lookup_size() {
        return Err(Errno::EINVAL);
    }
    let mut a = ElemAttr {
        map_fd: map.fd() as u32,
        key: key_ptr(key),
        value: attr::ptr_u64(value.as_ptr()),
        flags,
        ..ElemAttr::default()
    };
    // SAFETY: the kernel reads key_size bytes of `key` and lookup_size bytes of `value`, both
    // checked above.
    unsafe { sys::bpf(attr::BPF_MAP_UPDATE_ELEM, &mut a) }?;
    Ok(())
}

/// Deletes an element (`BPF_MAP_DELETE_ELEM`).
pub fn map_delete(map: &Map, key: &[u8]) -> Result<(), Errno> {
    check_key(map, key)?;
    let mut a = ElemAttr {
        map_fd: map.fd() as u32,
        key: key_ptr(key),
        ..ElemAttr::default()
    };
    // SAFETY: the kernel reads key_size bytes of `key`, checked above.
    unsafe { sys::bpf(attr::BPF_MAP_DELETE_ELEM, &mut a) }?;
    Ok(())
}

/// The key after `key` (`BPF_MAP_GET_NEXT_KEY`), or the first key when `key` is `None`;
/// `ENOENT` after the last one.
pub fn map_get_next_key(map: &Map, key: Option<&[u8]>) -> Result<Vec<u8>, Errno> {
    if let Some(k) = key {
        check_key(map, k)?;
    }
    let mut next = vec![0u8; map.key_size as usize];
    let mut a = ElemAttr {
        map_fd: map.fd() as u32,
        key: key.map_or(0, |k| attr::ptr_u64(k.as_ptr())),
        value: attr::ptr_u64(next.as_mut_ptr()),
        ..ElemAttr::default()
    };
    // SAFETY: the kernel reads key_size bytes of `key` (or none when null) and writes key_size
    // bytes into `next`.
    unsafe { sys::bpf(attr::BPF_MAP_GET_NEXT_KEY, &mut a) }?;
    Ok(next)
}

/// The number of possible CPUs (`/sys/devices/system/cpu/possible`), which sizes per-CPU
/// values; 1 when it cannot be read.
#[must_use]
pub fn possible_cpus() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .ok()
        .and_then(|s| parse_cpu_list(s.trim()))
        .unwrap_or(1)
}

/// Counts the CPUs of a list such as `0-3,5,7-8`.
fn parse_cpu_list(s: &str) -> Option<usize> {
    let mut count = 0usize;
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let a: usize = a.parse().ok()?;
                let b: usize = b.parse().ok()?;
                count += b.checked_sub(a)? + 1;
            }
            None => {
                part.parse::<usize>().ok()?;
                count += 1;
            }
        }
    }
    Some(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_count_ranges_and_singles() {
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list("0-1"), Some(2));
        assert_eq!(parse_cpu_list("0-3,5,7-8"), Some(7));
        assert_eq!(parse_cpu_list("x"), None);
    }
}
