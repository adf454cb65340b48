//! Typed views of maps: [`Map<K, V>`] and [`PerCpuMap<K, V>`] over plain-old-data keys and
//! values (`bytemuck::Pod`: integers, arrays of them, `#[repr(C)]` structs without padding
//! deriving `Pod` and `Zeroable`).
//!
//! A view checks once that `K` and `V` have the map's key and value sizes, then turns the
//! byte-level commands into `get` / `insert` / `remove` / `iter`. Errors are the object API's
//! [`Errno`]; `ENOENT` from a lookup or delete becomes `None` / `false`.

use std::marker::PhantomData;

use bytemuck::Pod;

use crate::errno::Errno;
use crate::maps::{cpu, flags, MapRef};
use crate::object::{Bpf, Fd};

/// How an insert treats an existing key (`BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpdateFlags {
    /// `BPF_ANY`: create or replace.
    #[default]
    Any,
    /// `BPF_NOEXIST`: create only (`EEXIST` if the key exists).
    NoExist,
    /// `BPF_EXIST`: replace only (`ENOENT` if the key is missing).
    Exist,
}

impl UpdateFlags {
    /// The flag value of the system call.
    #[must_use]
    pub fn raw(self) -> u64 {
        match self {
            Self::Any => flags::BPF_ANY,
            Self::NoExist => flags::BPF_NOEXIST,
            Self::Exist => flags::BPF_EXIST,
        }
    }
}

fn size_mismatch(what: &str, want: usize, have: usize) -> Errno {
    Errno::Einval(format!("the map's {what} is {want} bytes, the Rust type has {have}").into())
}

/// A typed view of a map whose values are one `V` (not per-CPU maps: see [`PerCpuMap`]).
#[derive(Debug, Clone)]
pub struct Map<K, V> {
    map: MapRef,
    _types: PhantomData<fn(K) -> V>,
}

impl<K: Pod, V: Pod> Map<K, V> {
    /// A view of `map`; `EINVAL` when `K` or `V` has the wrong size.
    pub fn new(map: MapRef) -> Result<Self, Errno> {
        let ks = map.info().key_size as usize;
        let vs = map.user_value_size();
        if size_of::<K>() != ks {
            return Err(size_mismatch("key_size", ks, size_of::<K>()));
        }
        if size_of::<V>() != vs {
            return Err(size_mismatch("value size", vs, size_of::<V>()));
        }
        Ok(Self {
            map,
            _types: PhantomData,
        })
    }

    /// A view of the map behind `fd` in `bpf`.
    pub fn from_fd(bpf: &Bpf, fd: Fd) -> Result<Self, Errno> {
        Self::new(bpf.map(fd)?)
    }

    /// The underlying map.
    #[must_use]
    pub fn map(&self) -> &MapRef {
        &self.map
    }

    /// The value for `key`, or `None`.
    pub fn get(&self, key: &K) -> Result<Option<V>, Errno> {
        let mut v = V::zeroed();
        match self
            .map
            .lookup(bytemuck::bytes_of(key), bytemuck::bytes_of_mut(&mut v))
        {
            Ok(()) => Ok(Some(v)),
            Err(Errno::Enoent(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Inserts or replaces as `flags` says.
    pub fn insert(&self, key: &K, value: &V, flags: UpdateFlags) -> Result<(), Errno> {
        self.map.update(
            bytemuck::bytes_of(key),
            bytemuck::bytes_of(value),
            flags.raw(),
        )
    }

    /// Deletes `key`; whether it was there.
    pub fn remove(&self, key: &K) -> Result<bool, Errno> {
        match self.map.delete(bytemuck::bytes_of(key)) {
            Ok(()) => Ok(true),
            Err(Errno::Enoent(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The keys in `get_next_key` order.
    pub fn keys(&self) -> Keys<'_, K> {
        Keys {
            map: &self.map,
            prev: None,
            done: false,
        }
    }

    /// (key, value) pairs in `get_next_key` order; keys deleted between the two steps are
    /// skipped.
    pub fn iter(&self) -> impl Iterator<Item = Result<(K, V), Errno>> + '_ {
        self.keys().filter_map(move |k| match k {
            Err(e) => Some(Err(e)),
            Ok(k) => match self.get(&k) {
                Ok(Some(v)) => Some(Ok((k, v))),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            },
        })
    }
}

/// Iterator over a map's keys by `get_next_key`.
#[derive(Debug)]
pub struct Keys<'a, K> {
    map: &'a MapRef,
    prev: Option<K>,
    done: bool,
}

impl<K: Pod> Iterator for Keys<'_, K> {
    type Item = Result<K, Errno>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut next = K::zeroed();
        let prev = self.prev.as_ref().map(bytemuck::bytes_of);
        match self
            .map
            .get_next_key(prev, bytemuck::bytes_of_mut(&mut next))
        {
            Ok(()) => {
                self.prev = Some(next);
                Some(Ok(next))
            }
            Err(Errno::Enoent(_)) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// A typed view of a per-CPU map: each key has one `V` per possible CPU.
#[derive(Debug, Clone)]
pub struct PerCpuMap<K, V> {
    map: MapRef,
    _types: PhantomData<fn(K) -> V>,
}

impl<K: Pod, V: Pod> PerCpuMap<K, V> {
    /// A view of a per-CPU `map`; `EINVAL` when it is not per-CPU or the sizes differ.
    pub fn new(map: MapRef) -> Result<Self, Errno> {
        if !map.info().map_type.is_percpu() {
            return Err(Errno::Einval(
                format!("a {} map is not per-CPU", map.info().map_type.name()).into(),
            ));
        }
        let ks = map.info().key_size as usize;
        let vs = map.info().value_size as usize;
        if size_of::<K>() != ks {
            return Err(size_mismatch("key_size", ks, size_of::<K>()));
        }
        if size_of::<V>() != vs {
            return Err(size_mismatch("value_size", vs, size_of::<V>()));
        }
        Ok(Self {
            map,
            _types: PhantomData,
        })
    }

    fn slot(&self) -> usize {
        (self.map.info().value_size as usize).next_multiple_of(8)
    }

    /// Every CPU's value for `key` (index = CPU), or `None`.
    pub fn get(&self, key: &K) -> Result<Option<Vec<V>>, Errno> {
        let mut buf = vec![0u8; self.map.user_value_size()];
        match self.map.lookup(bytemuck::bytes_of(key), &mut buf) {
            Ok(()) => Ok(Some(
                buf.chunks(self.slot())
                    .map(|c| bytemuck::pod_read_unaligned(&c[..size_of::<V>()]))
                    .collect(),
            )),
            Err(Errno::Enoent(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets every CPU's value: `values[cpu]`, `EINVAL` unless there is one per possible CPU.
    pub fn insert(&self, key: &K, values: &[V], flags: UpdateFlags) -> Result<(), Errno> {
        if values.len() != cpu::possible_cpus() as usize {
            return Err(Errno::Einval(
                format!(
                    "{} values given, one per possible CPU ({}) needed",
                    values.len(),
                    cpu::possible_cpus()
                )
                .into(),
            ));
        }
        let slot = self.slot();
        let mut buf = vec![0u8; self.map.user_value_size()];
        for (chunk, v) in buf.chunks_mut(slot).zip(values) {
            chunk[..size_of::<V>()].copy_from_slice(bytemuck::bytes_of(v));
        }
        self.map.update(bytemuck::bytes_of(key), &buf, flags.raw())
    }

    /// Deletes `key`; whether it was there.
    pub fn remove(&self, key: &K) -> Result<bool, Errno> {
        match self.map.delete(bytemuck::bytes_of(key)) {
            Ok(()) => Ok(true),
            Err(Errno::Enoent(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
