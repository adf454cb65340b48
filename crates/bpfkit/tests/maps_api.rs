//! The program-side map interface (what helpers call) and the typed views, against the kernel's
//! documented behaviour: helper return values are negative errnos, per-CPU writes from a program
//! touch the running CPU's slot only (a new element's other slots are zeroed, hashtab.c's
//! `pcpu_init_value`), LRU maps keep what programs use, prog arrays hold one program type.

use std::any::Any;
use std::sync::Arc;

use bpfkit::maps::{cpu, flags, BpfMap, MapAttr, MapType, ProgEntry};
use bpfkit::typed::{Map, PerCpuMap, UpdateFlags};
use bpfkit::{Bpf, Errno};

fn new_map(bpf: &Bpf, attr: &MapAttr) -> Result<Arc<BpfMap>, Errno> {
    let fd = bpf.map_create(attr)?;
    bpf.map(fd)
}

fn read_u64(ptr: *mut u8) -> u64 {
    assert!(!ptr.is_null());
    // SAFETY: `ptr` is a value pointer from `lookup_ptr` on a live map whose values are at
    // least 8 bytes and 8-aligned; no other thread writes it during the test.
    unsafe { ptr.cast::<u64>().read() }
}

#[test]
fn helper_returns_are_negative_errnos() -> Result<(), Errno> {
    let bpf = Bpf::new();
    let array = new_map(&bpf, &MapAttr::new(MapType::Array, 4, 8, 2))?;
    assert_eq!(
        array.prog_update(&5u32.to_ne_bytes(), &[0; 8], 0),
        -7,
        "E2BIG"
    );
    assert_eq!(
        array.prog_update(&1u32.to_ne_bytes(), &[0; 8], 1),
        -17,
        "EEXIST"
    );
    assert_eq!(
        array.prog_update(&1u32.to_ne_bytes(), &[0; 8], 8),
        -22,
        "EINVAL"
    );
    assert_eq!(array.prog_delete(&1u32.to_ne_bytes()), -22);
    assert!(array.lookup_ptr(&2u32.to_ne_bytes()).is_null());
    assert_eq!(
        array.prog_update(&1u32.to_ne_bytes(), &42u64.to_ne_bytes(), 0),
        0
    );
    assert_eq!(read_u64(array.lookup_ptr(&1u32.to_ne_bytes())), 42);

    let hash = new_map(&bpf, &MapAttr::new(MapType::Hash, 4, 8, 1))?;
    assert_eq!(hash.prog_update(&[1; 4], &[0; 8], 2), -2, "ENOENT");
    assert_eq!(hash.prog_update(&[1; 4], &[0; 8], 0), 0);
    assert_eq!(hash.prog_update(&[2; 4], &[0; 8], 0), -7, "full: E2BIG");
    assert_eq!(hash.prog_delete(&[2; 4]), -2);
    assert_eq!(hash.prog_delete(&[1; 4]), 0);

    let queue = new_map(&bpf, &MapAttr::new(MapType::Queue, 0, 8, 1))?;
    let mut out = [0u8; 8];
    assert_eq!(queue.pop(&mut out), -2, "empty: ENOENT");
    assert_eq!(queue.push(&[1; 8], 0), 0);
    assert_eq!(queue.push(&[2; 8], 0), -7, "full: E2BIG");
    assert_eq!(
        queue.push(&[2; 8], flags::BPF_EXIST),
        0,
        "BPF_EXIST overwrites the oldest"
    );
    assert_eq!(queue.peek(&mut out), 0);
    assert_eq!(out, [2; 8]);
    assert_eq!(
        queue.prog_update(&[], &[0; 8], 0),
        -22,
        "map_update_elem on a queue"
    );
    assert_eq!(hash.push(&[0; 8], 0), -22);
    Ok(())
}

#[test]
fn percpu_program_writes_touch_one_cpu() -> Result<(), Errno> {
    let n = cpu::possible_cpus();
    let bpf = Bpf::new();
    let map = new_map(&bpf, &MapAttr::new(MapType::PercpuHash, 4, 8, 4))?;
    let view: PerCpuMap<u32, u64> = PerCpuMap::new(Arc::clone(&map))?;
    // From user space, every CPU's value.
    let all: Vec<u64> = (0..u64::from(n)).map(|c| 100 + c).collect();
    view.insert(&1, &all, UpdateFlags::Any)?;
    let cpu_now = cpu::set_current_cpu(n - 1);
    assert_eq!(
        map.prog_update(&1u32.to_ne_bytes(), &7u64.to_ne_bytes(), 0),
        0
    );
    let mut want = all.clone();
    want[(n - 1) as usize] = 7;
    assert_eq!(
        view.get(&1)?,
        Some(want),
        "an existing element changes in place, one CPU"
    );
    // A new element from a program: this CPU's value, zero elsewhere.
    assert_eq!(
        map.prog_update(&2u32.to_ne_bytes(), &9u64.to_ne_bytes(), 0),
        0
    );
    let mut want = vec![0u64; n as usize];
    want[(n - 1) as usize] = 9;
    assert_eq!(view.get(&2)?, Some(want));
    // lookup_ptr reads the running CPU's slot; bpf_map_lookup_percpu_elem any CPU's.
    assert_eq!(read_u64(map.lookup_ptr(&1u32.to_ne_bytes())), 7);
    assert_eq!(
        read_u64(map.lookup_ptr_on_cpu(&1u32.to_ne_bytes(), 0)),
        if n == 1 { 7 } else { 100 }
    );
    assert!(
        map.lookup_ptr_on_cpu(&1u32.to_ne_bytes(), n).is_null(),
        "no such CPU"
    );
    cpu::set_current_cpu(cpu_now);
    assert!(view.insert(&3, &[1], UpdateFlags::Any).is_err() || n == 1);
    Ok(())
}

#[test]
fn lru_keeps_the_elements_programs_use() -> Result<(), Errno> {
    let bpf = Bpf::new();
    let map = new_map(&bpf, &MapAttr::new(MapType::LruHash, 4, 8, 4))?;
    for k in 1u32..=4 {
        map.update(&k.to_ne_bytes(), &[0; 8], 0)?;
    }
    // A program uses key 1: the least recently used is now key 2.
    assert!(!map.lookup_ptr(&1u32.to_ne_bytes()).is_null());
    map.update(&5u32.to_ne_bytes(), &[0; 8], 0)?;
    let mut v = [0u8; 8];
    let present = |k: u32, v: &mut [u8; 8]| map.lookup(&k.to_ne_bytes(), v).is_ok();
    assert!(present(1, &mut v), "used by a program: kept");
    assert!(!present(2, &mut v), "least recently used: evicted");
    assert!(present(5, &mut v));
    // A user-space lookup does not count as a use (htab_lru_map_lookup_elem_sys).
    map.lookup(&3u32.to_ne_bytes(), &mut v)?;
    map.update(&6u32.to_ne_bytes(), &[0; 8], 0)?;
    assert!(!present(3, &mut v));
    Ok(())
}

#[test]
fn lookup_of_an_array_of_maps_gives_the_inner_map() -> Result<(), Errno> {
    let bpf = Bpf::new();
    let inner = bpf.map_create(&MapAttr::new(MapType::Array, 4, 8, 2))?;
    let outer =
        bpf.map_create(&MapAttr::new(MapType::ArrayOfMaps, 4, 4, 2).inner_map_fd(inner.0))?;
    bpf.map_update_elem(outer, &0u32.to_ne_bytes(), &inner.0.to_ne_bytes(), 0)?;
    let outer_map = bpf.map(outer)?;
    let inner_map = bpf.map(inner)?;
    let p = outer_map.lookup_ptr(&0u32.to_ne_bytes());
    assert_eq!(p.cast_const(), Arc::as_ptr(&inner_map).cast::<u8>());
    assert!(outer_map.lookup_ptr(&1u32.to_ne_bytes()).is_null());
    // The system call returns the inner map's id.
    let id = bpf.map_lookup(outer, &0u32.to_ne_bytes())?;
    assert_eq!(id, inner_map.id().to_ne_bytes().to_vec());
    // The inner map lives on after its descriptor closes, and after it is replaced.
    bpf.close(inner)?;
    let other = bpf.map_create(&MapAttr::new(MapType::Array, 4, 8, 2))?;
    bpf.map_update_elem(outer, &0u32.to_ne_bytes(), &other.0.to_ne_bytes(), 0)?;
    assert_eq!(
        Arc::strong_count(&inner_map),
        2,
        "held by the test and the outer map"
    );
    Ok(())
}

#[derive(Debug)]
struct FakeProg {
    prog_type: u32,
    id: u32,
}

impl ProgEntry for FakeProg {
    fn prog_type(&self) -> u32 {
        self.prog_type
    }
    fn id(&self) -> u32 {
        self.id
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[test]
fn prog_array_holds_programs_of_one_type() -> Result<(), Errno> {
    let bpf = Bpf::new();
    let fd = bpf.map_create(&MapAttr::new(MapType::ProgArray, 4, 4, 4))?;
    let map = bpf.map(fd)?;
    let pa = map
        .as_prog_array()
        .ok_or_else(|| Errno::Einval("not a prog array".into()))?;
    let prog = |t, id| -> Result<Arc<dyn ProgEntry>, Errno> {
        Ok(Arc::new(FakeProg { prog_type: t, id }))
    };
    pa.update(&1u32.to_ne_bytes(), 0, || prog(3, 11))?;
    assert_eq!(pa.get(1).map(|p| p.id()), Some(11));
    assert_eq!(
        bpf.map_lookup(fd, &1u32.to_ne_bytes())?,
        11u32.to_ne_bytes().to_vec(),
        "lookup gives the id"
    );
    let other_type = pa.update(&2u32.to_ne_bytes(), 0, || prog(6, 12));
    assert_eq!(
        other_type.map_err(|e| e.code()),
        Err(22),
        "EINVAL: program type differs"
    );
    assert_eq!(
        pa.update(&4u32.to_ne_bytes(), 0, || prog(3, 13))
            .map_err(|e| e.code()),
        Err(7)
    );
    assert_eq!(pa.claim_owner(3), Ok(()));
    // Closing the last descriptor empties the array (prog_array_map_clear on the last uref).
    bpf.close(fd)?;
    assert!(pa.get(1).is_none());
    Ok(())
}

#[test]
fn typed_views_check_sizes_and_iterate() -> Result<(), Errno> {
    let bpf = Bpf::new();
    let fd = bpf.map_create(&MapAttr::new(MapType::Hash, 4, 8, 8))?;
    assert_eq!(
        Map::<u64, u64>::from_fd(&bpf, fd)
            .map_err(|e| e.code())
            .err(),
        Some(22)
    );
    assert_eq!(
        Map::<u32, u32>::from_fd(&bpf, fd)
            .map_err(|e| e.code())
            .err(),
        Some(22)
    );
    let m: Map<u32, u64> = Map::from_fd(&bpf, fd)?;
    for k in 0..5u32 {
        m.insert(&k, &(u64::from(k) * 10), UpdateFlags::NoExist)?;
    }
    assert_eq!(
        m.insert(&1, &0, UpdateFlags::NoExist).map_err(|e| e.code()),
        Err(17)
    );
    assert_eq!(
        m.insert(&9, &0, UpdateFlags::Exist).map_err(|e| e.code()),
        Err(2)
    );
    assert_eq!(m.get(&3)?, Some(30));
    assert_eq!(m.get(&7)?, None);
    assert!(m.remove(&3)?);
    assert!(!m.remove(&3)?);
    let mut all: Vec<(u32, u64)> = m.iter().collect::<Result<_, _>>()?;
    all.sort_unstable();
    assert_eq!(all, vec![(0, 0), (1, 10), (2, 20), (4, 40)]);
    assert!(
        PerCpuMap::<u32, u64>::from_map(&m).is_err(),
        "not a per-CPU map"
    );
    Ok(())
}

/// Helper so the per-CPU constructor is exercised on a non-per-CPU map.
trait FromMap: Sized {
    fn from_map(m: &Map<u32, u64>) -> Result<Self, Errno>;
}

impl FromMap for PerCpuMap<u32, u64> {
    fn from_map(m: &Map<u32, u64>) -> Result<Self, Errno> {
        PerCpuMap::new(Arc::clone(m.map()))
    }
}

#[test]
fn lookup_of_a_hash_of_maps_gives_the_inner_map() -> Result<(), Errno> {
    let bpf = Bpf::new();
    let inner = bpf.map_create(&MapAttr::new(MapType::Hash, 4, 8, 2))?;
    let outer =
        bpf.map_create(&MapAttr::new(MapType::HashOfMaps, 2, 4, 2).inner_map_fd(inner.0))?;
    bpf.map_update_elem(outer, &[1, 2], &inner.0.to_ne_bytes(), flags::BPF_NOEXIST)?;
    let inner_map = bpf.map(inner)?;
    let outer_map = bpf.map(outer)?;
    assert_eq!(
        outer_map.lookup_ptr(&[1, 2]).cast_const(),
        Arc::as_ptr(&inner_map).cast::<u8>()
    );
    assert!(outer_map.lookup_ptr(&[2, 1]).is_null());
    assert_eq!(
        bpf.map_lookup(outer, &[1, 2])?,
        inner_map.id().to_ne_bytes().to_vec()
    );
    // Deleted from the outer map and closed, the inner map stays alive for programs.
    bpf.map_delete_elem(outer, &[1, 2])?;
    bpf.close(inner)?;
    assert!(Arc::strong_count(&inner_map) >= 2);
    Ok(())
}

#[test]
fn lru_without_a_common_list_rounds_max_entries_to_the_cpus() -> Result<(), Errno> {
    // hashtab.c's htab_map_alloc rounds max_entries up to a multiple of the possible CPUs for
    // BPF_F_NO_COMMON_LRU (bpftool on Linux 6.18 with 2 CPUs shows 3 becoming 4).
    let n = cpu::possible_cpus();
    let bpf = Bpf::new();
    for t in [MapType::LruHash, MapType::LruPercpuHash] {
        let fd = bpf.map_create(&MapAttr::new(t, 4, 8, 3).flags(flags::BPF_F_NO_COMMON_LRU))?;
        assert_eq!(bpf.map_info(fd)?.max_entries, 3u32.div_ceil(n) * n);
        let common = bpf.map_create(&MapAttr::new(t, 4, 8, 3))?;
        assert_eq!(bpf.map_info(common)?.max_entries, 3);
    }
    Ok(())
}
