//! The object table: maps and programs behind small integer descriptors, with the
//! commands of the `bpf()` system call.
//!
//! [`Bpf`] is what a process's descriptor table and `kernel/bpf/syscall.c` are to the kernel's
//! BPF objects. Objects are reference counted ([`std::sync::Arc`]): closing a descriptor drops
//! the table's reference, and the object lives on while anything else (a loaded program, an
//! outer map) holds one. Descriptors are the lowest free numbers from 3 up, as a process whose
//! standard streams are open would get. `Bpf` is `Sync`: many threads may issue commands at once.
//!
//! Each command checks what the kernel's does, in the same order, and returns the kernel's
//! errno: an unknown descriptor `EBADF`, a descriptor of the wrong kind `EINVAL`, a read through
//! a `BPF_F_WRONLY` map or a write through a `BPF_F_RDONLY` one `EPERM`, then the map's own
//! errnos (see [`crate::maps`]).

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use crate::errno::Errno;
use crate::maps::{self, flags, BpfMap, MapAttr, MapInfo, MapKind, MapRef, MapType, ProgEntry};

/// An object descriptor (the `int fd` of the system call).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fd(pub u32);

impl fmt::Display for Fd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The first descriptor handed out.
pub const FIRST_FD: u32 = 3;

/// An object in the table.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Object {
    /// A map.
    Map(MapRef),
    /// A loaded program.
    Prog(Arc<crate::prog::load::LoadedProg>),
    /// A perf event (`PERF_COUNT_SW_BPF_OUTPUT`) with its ring ([`Bpf::perf_event_open`]).
    PerfEvent(Arc<maps::PerfEvent>),
}

impl Object {
    /// The map, if this is one.
    #[must_use]
    pub fn as_map(&self) -> Option<&MapRef> {
        match self {
            Self::Map(m) => Some(m),
            Self::Prog(_) | Self::PerfEvent(_) => None,
        }
    }

    /// The program a prog array may store, if this is one (programs join the table later).
    #[must_use]
    pub fn as_prog_entry(&self) -> Option<Arc<dyn ProgEntry>> {
        match self {
            Self::Map(_) | Self::PerfEvent(_) => None,
            Self::Prog(p) => Some(Arc::clone(p) as Arc<dyn ProgEntry>),
        }
    }

    /// What kind of object this is, for messages.
    #[must_use]
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Map(_) => "map",
            Self::Prog(_) => "program",
            Self::PerfEvent(_) => "perf event",
        }
    }
}

/// The object table and the `bpf()` commands.
#[derive(Debug, Default)]
pub struct Bpf {
    table: RwLock<Vec<Option<Object>>>,
}

impl Bpf {
    /// An empty table.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Option<Object>>> {
        self.table.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds an object and returns its descriptor (the lowest free one).
    pub fn insert(&self, obj: Object) -> Fd {
        let mut t = self.table.write().unwrap_or_else(PoisonError::into_inner);
        let first = FIRST_FD as usize;
        if t.len() < first {
            t.resize(first, None);
        }
        let i = match t.iter().skip(first).position(Option::is_none) {
            Some(p) => first + p,
            None => {
                t.push(None);
                t.len() - 1
            }
        };
        t[i] = Some(obj);
        Fd(i as u32)
    }

    /// The object behind `fd` (`EBADF` if none).
    pub fn get(&self, fd: Fd) -> Result<Object, Errno> {
        self.read()
            .get(fd.0 as usize)
            .and_then(Option::clone)
            .ok_or_else(|| ebadf(fd))
    }

    /// The map behind `fd`: `EBADF` if none, `EINVAL` if it is not a map.
    pub fn map(&self, fd: Fd) -> Result<MapRef, Errno> {
        self.with_map(fd, |m| Ok(Arc::clone(m)))
    }

    /// Runs `f` on the map behind `fd` without cloning the reference.
    fn with_map<T>(&self, fd: Fd, f: impl FnOnce(&MapRef) -> Result<T, Errno>) -> Result<T, Errno> {
        let t = self.read();
        match t.get(fd.0 as usize).and_then(Option::as_ref) {
            None => Err(ebadf(fd)),
            Some(Object::Map(m)) => f(m),
            Some(Object::Prog(_) | Object::PerfEvent(_)) => {
                Err(Errno::Einval(format!("fd {fd} is not a map").into()))
            }
        }
    }

    /// `BPF_MAP_CREATE`: checks the attributes as the kernel does and creates the map.
    pub fn map_create(&self, attr: &MapAttr) -> Result<Fd, Errno> {
        let ty = attr.check()?;
        let map = if matches!(ty, MapType::ArrayOfMaps | MapType::HashOfMaps) {
            let inner = self
                .get(Fd(attr.inner_map_fd))
                .map_err(|_| {
                    Errno::Ebadf(format!("inner_map_fd {} is not open", attr.inner_map_fd).into())
                })?
                .as_map()
                .cloned()
                .ok_or_else(|| {
                    Errno::Einval(format!("inner_map_fd {} is not a map", attr.inner_map_fd).into())
                })?;
            maps::create(attr, Some(&inner))?
        } else {
            maps::create(attr, None)?
        };
        Ok(self.insert(Object::Map(Arc::new(map))))
    }

    /// `BPF_MAP_LOOKUP_ELEM`: copies the value for `key` into `value`
    /// ([`BpfMap::user_value_size`] bytes).
    pub fn map_lookup_elem(&self, fd: Fd, key: &[u8], value: &mut [u8]) -> Result<(), Errno> {
        self.with_map(fd, |m| {
            check_readable(m)?;
            m.lookup(key, value)
        })
    }

    /// [`Self::map_lookup_elem`] into a new buffer.
    pub fn map_lookup(&self, fd: Fd, key: &[u8]) -> Result<Vec<u8>, Errno> {
        self.with_map(fd, |m| {
            check_readable(m)?;
            let mut v = vec![0u8; m.user_value_size()];
            m.lookup(key, &mut v)?;
            Ok(v)
        })
    }

    /// `BPF_MAP_UPDATE_ELEM` with `BPF_ANY`, `BPF_NOEXIST` or `BPF_EXIST`. For a prog array or
    /// a map of maps the value is a descriptor (native-endian `u32`) of the object to store.
    pub fn map_update_elem(
        &self,
        fd: Fd,
        key: &[u8],
        value: &[u8],
        map_flags: u64,
    ) -> Result<(), Errno> {
        let map = self.map(fd)?;
        check_writable(&map)?;
        match map.kind() {
            MapKind::ProgArray(p) => {
                check_fd_value(&map, key, value)?;
                p.update(key, map_flags, || {
                    let obj = self.get(value_fd(value))?;
                    obj.as_prog_entry().ok_or_else(|| {
                        Errno::Einval(
                            format!(
                                "fd {} is a {}, not a program",
                                value_fd(value),
                                obj.kind_name()
                            )
                            .into(),
                        )
                    })
                })
            }
            MapKind::MapOfMaps(m) => {
                check_fd_value(&map, key, value)?;
                m.update(key, map_flags, || {
                    let obj = self.get(value_fd(value))?;
                    obj.as_map().cloned().ok_or_else(|| {
                        Errno::Einval(format!("fd {} is not a map", value_fd(value)).into())
                    })
                })
            }
            MapKind::PerfEventArray(p) => {
                check_fd_value(&map, key, value)?;
                p.update(key, map_flags, || self.perf_event(value_fd(value)))
            }
            _ => map.update(key, value, map_flags),
        }
    }

    /// `BPF_MAP_DELETE_ELEM`.
    pub fn map_delete_elem(&self, fd: Fd, key: &[u8]) -> Result<(), Errno> {
        self.with_map(fd, |m| {
            check_writable(m)?;
            m.delete(key)
        })
    }

    /// `BPF_MAP_GET_NEXT_KEY`: the key after `key` into `next`; from `None` (or a key not in
    /// a hash map) the first key; `ENOENT` after the last.
    pub fn map_get_next_key(
        &self,
        fd: Fd,
        key: Option<&[u8]>,
        next: &mut [u8],
    ) -> Result<(), Errno> {
        self.with_map(fd, |m| {
            check_readable(m)?;
            m.get_next_key(key, next)
        })
    }

    /// [`Self::map_get_next_key`] into a new buffer.
    pub fn map_next_key(&self, fd: Fd, key: Option<&[u8]>) -> Result<Vec<u8>, Errno> {
        self.with_map(fd, |m| {
            check_readable(m)?;
            let mut next = vec![0u8; m.info().key_size as usize];
            m.get_next_key(key, &mut next)?;
            Ok(next)
        })
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM`: pops a queue or stack (empty key) or removes a hash
    /// element, copying its value into `value`.
    pub fn map_lookup_and_delete_elem(
        &self,
        fd: Fd,
        key: &[u8],
        value: &mut [u8],
    ) -> Result<(), Errno> {
        self.with_map(fd, |m| {
            check_readable(m)?;
            check_writable(m)?;
            m.lookup_and_delete(key, value)
        })
    }

    /// The map's metadata (`BPF_OBJ_GET_INFO_BY_FD`).
    pub fn map_info(&self, fd: Fd) -> Result<MapInfo, Errno> {
        self.with_map(fd, |m| Ok(m.info().clone()))
    }

    /// Closes a descriptor (`EBADF` if it is not open). When the last descriptor of a map
    /// closes, the map's user references are released (a prog array empties itself).
    pub fn close(&self, fd: Fd) -> Result<(), Errno> {
        let mut t = self.table.write().unwrap_or_else(PoisonError::into_inner);
        let obj = t
            .get_mut(fd.0 as usize)
            .and_then(Option::take)
            .ok_or_else(|| ebadf(fd))?;
        while t.last().is_some_and(Option::is_none) && t.len() > FIRST_FD as usize {
            t.pop();
        }
        let Object::Map(map) = obj else {
            // A program lives on while a prog array or a running caller holds it.
            return Ok(());
        };
        let still_open = t
            .iter()
            .flatten()
            .any(|o| o.as_map().is_some_and(|m| Arc::ptr_eq(m, &map)));
        drop(t);
        if !still_open {
            map.release_uref();
        }
        Ok(())
    }

    /// Adds another descriptor for the object behind `fd` (as `dup()`).
    pub fn dup(&self, fd: Fd) -> Result<Fd, Errno> {
        let obj = self.get(fd)?;
        Ok(self.insert(obj))
    }
}

fn ebadf(fd: Fd) -> Errno {
    Errno::Ebadf(format!("fd {fd} is not open").into())
}

fn check_readable(m: &BpfMap) -> Result<(), Errno> {
    if m.info().map_flags & flags::BPF_F_WRONLY != 0 {
        return Err(Errno::Eperm("the map is write-only (BPF_F_WRONLY)".into()));
    }
    Ok(())
}

fn check_writable(m: &BpfMap) -> Result<(), Errno> {
    if m.info().map_flags & flags::BPF_F_RDONLY != 0 {
        return Err(Errno::Eperm("the map is read-only (BPF_F_RDONLY)".into()));
    }
    Ok(())
}

fn check_fd_value(m: &BpfMap, key: &[u8], value: &[u8]) -> Result<(), Errno> {
    if key.len() != m.info().key_size as usize || value.len() != 4 {
        return Err(Errno::Einval(
            format!(
                "a {} update takes a {}-byte key and a 4-byte fd",
                m.info().map_type.name(),
                m.info().key_size
            )
            .into(),
        ));
    }
    Ok(())
}

fn value_fd(value: &[u8]) -> Fd {
    let mut b = [0u8; 4];
    b.copy_from_slice(&value[..4]);
    Fd(u32::from_ne_bytes(b))
}
