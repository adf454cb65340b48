//! Property tests: each map type against a simple model (std `HashMap`, `Vec`, `VecDeque`, a
//! list of prefixes) over random operation sequences, errnos included. The models encode the
//! kernel's documented semantics (include/uapi/linux/bpf.h, Documentation/bpf/map_*.rst), so
//! they are independent of bpfkit's implementation.

use std::collections::{HashMap, HashSet, VecDeque};

use bpfkit::maps::{cpu, flags, MapAttr, MapType};
use bpfkit::{Bpf, Errno, Fd};
use proptest::prelude::*;

const ENOENT: i32 = 2;
const E2BIG: i32 = 7;
const EEXIST: i32 = 17;
const EINVAL: i32 = 22;
const ENOSPC: i32 = 28;

fn code<T>(r: Result<T, Errno>) -> Result<T, i32> {
    r.map_err(|e| e.code())
}

fn create(bpf: &Bpf, t: MapType, k: u32, v: u32, m: u32, f: u32) -> Result<Fd, TestCaseError> {
    bpf.map_create(&MapAttr::new(t, k, v, m).flags(f))
        .map_err(|e| TestCaseError::fail(format!("map_create: {e}")))
}

#[derive(Debug, Clone)]
enum KvOp {
    Update(u8, u8, u64),
    Lookup(u8),
    Delete(u8),
}

fn kv_op() -> impl Strategy<Value = KvOp> {
    prop_oneof![
        4 => (0u8..10, any::<u8>(), prop::sample::select(vec![0u64, 0, 1, 2, 3, 4, 5]))
            .prop_map(|(k, v, f)| KvOp::Update(k, v, f)),
        2 => (0u8..10).prop_map(KvOp::Lookup),
        2 => (0u8..10).prop_map(KvOp::Delete),
    ]
}

/// The hash map model: update flag semantics and capacity from bpf.h's `bpf_map_update_elem`.
fn model_update(m: &mut HashMap<u8, u8>, k: u8, v: u8, f: u64, max: usize) -> Result<(), i32> {
    if f > 2 {
        return Err(EINVAL);
    }
    let exists = m.contains_key(&k);
    if exists && f == flags::BPF_NOEXIST {
        return Err(EEXIST);
    }
    if !exists && f == flags::BPF_EXIST {
        return Err(ENOENT);
    }
    if !exists && m.len() >= max {
        return Err(E2BIG);
    }
    m.insert(k, v);
    Ok(())
}

fn hash_key(k: u8) -> [u8; 4] {
    [k, 0, 0, 0]
}

fn value8(v: u8) -> [u8; 8] {
    [v, 0, 0, 0, 0, 0, 0, v]
}

fn all_keys(bpf: &Bpf, fd: Fd) -> Result<Vec<Vec<u8>>, i32> {
    let mut keys = Vec::new();
    let mut prev: Option<Vec<u8>> = None;
    loop {
        match bpf.map_next_key(fd, prev.as_deref()) {
            Ok(k) => {
                keys.push(k.clone());
                prev = Some(k);
            }
            Err(Errno::Enoent(_)) => return Ok(keys),
            Err(e) => return Err(e.code()),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn hash_matches_a_hashmap(ops in prop::collection::vec(kv_op(), 1..120), no_prealloc: bool) {
        let bpf = Bpf::new();
        let f = if no_prealloc { flags::BPF_F_NO_PREALLOC } else { 0 };
        let fd = create(&bpf, MapType::Hash, 4, 8, 6, f)?;
        let mut model = HashMap::new();
        for op in &ops {
            match *op {
                KvOp::Update(k, v, fl) => prop_assert_eq!(
                    code(bpf.map_update_elem(fd, &hash_key(k), &value8(v), fl)),
                    model_update(&mut model, k, v, fl, 6), "{:?}", op),
                KvOp::Lookup(k) => prop_assert_eq!(
                    code(bpf.map_lookup(fd, &hash_key(k))),
                    model.get(&k).map(|&v| value8(v).to_vec()).ok_or(ENOENT)),
                KvOp::Delete(k) => prop_assert_eq!(
                    code(bpf.map_delete_elem(fd, &hash_key(k))),
                    model.remove(&k).map(|_| ()).ok_or(ENOENT)),
            }
        }
        // Iteration visits every key once; from a missing key it restarts at the first key.
        let keys = all_keys(&bpf, fd).map_err(|e| TestCaseError::fail(format!("errno {e}")))?;
        let got: HashSet<u8> = keys.iter().map(|k| k[0]).collect();
        prop_assert_eq!(keys.len(), model.len());
        prop_assert_eq!(got, model.keys().copied().collect::<HashSet<u8>>());
        let first = code(bpf.map_next_key(fd, None));
        prop_assert_eq!(code(bpf.map_next_key(fd, Some(&hash_key(200)))), first);
    }

    #[test]
    fn array_matches_a_vec(ops in prop::collection::vec(kv_op(), 1..120)) {
        let bpf = Bpf::new();
        let fd = create(&bpf, MapType::Array, 4, 8, 6, 0)?;
        // Elements start zeroed; updates replace the whole value.
        let mut model = [[0u8; 8]; 6];
        for op in &ops {
            match *op {
                KvOp::Update(k, v, fl) => {
                    let want = if fl & !flags::BPF_F_LOCK > 2 || fl & flags::BPF_F_LOCK != 0 {
                        Err(EINVAL)
                    } else if usize::from(k) >= 6 {
                        Err(E2BIG)
                    } else if fl == flags::BPF_NOEXIST {
                        Err(EEXIST)
                    } else {
                        model[usize::from(k)] = value8(v);
                        Ok(())
                    };
                    let key = u32::from(k).to_ne_bytes();
                    prop_assert_eq!(code(bpf.map_update_elem(fd, &key, &value8(v), fl)), want);
                }
                KvOp::Lookup(k) => {
                    let key = u32::from(k).to_ne_bytes();
                    let want = model.get(usize::from(k)).map(|v| v.to_vec()).ok_or(ENOENT);
                    prop_assert_eq!(code(bpf.map_lookup(fd, &key)), want);
                }
                KvOp::Delete(k) => {
                    let key = u32::from(k).to_ne_bytes();
                    prop_assert_eq!(code(bpf.map_delete_elem(fd, &key)), Err(EINVAL));
                }
            }
        }
        let keys = all_keys(&bpf, fd).map_err(|e| TestCaseError::fail(format!("errno {e}")))?;
        let want: Vec<Vec<u8>> = (0u32..6).map(|i| i.to_ne_bytes().to_vec()).collect();
        prop_assert_eq!(keys, want);
    }

    #[test]
    fn percpu_hash_keeps_one_value_per_cpu(ops in prop::collection::vec(kv_op(), 1..80)) {
        let bpf = Bpf::new();
        let fd = create(&bpf, MapType::PercpuHash, 4, 4, 6, 0)?;
        let n = cpu::possible_cpus() as usize;
        // User-space values are one 8-byte slot per CPU; slot c holds (v + c).
        let user_value = |v: u8| -> Vec<u8> {
            (0..n).flat_map(|c| [v.wrapping_add(c as u8), 0, 0, 0, 0, 0, 0, 0]).collect()
        };
        let mut model = HashMap::new();
        for op in &ops {
            match *op {
                KvOp::Update(k, v, fl) => prop_assert_eq!(
                    code(bpf.map_update_elem(fd, &hash_key(k), &user_value(v), fl)),
                    model_update(&mut model, k, v, fl, 6)),
                KvOp::Lookup(k) => prop_assert_eq!(
                    code(bpf.map_lookup(fd, &hash_key(k))),
                    model.get(&k).map(|&v| user_value(v)).ok_or(ENOENT)),
                KvOp::Delete(k) => prop_assert_eq!(
                    code(bpf.map_delete_elem(fd, &hash_key(k))),
                    model.remove(&k).map(|_| ()).ok_or(ENOENT)),
            }
        }
    }

    #[test]
    fn lru_hash_never_fails_for_space_and_keeps_the_newest(ops in prop::collection::vec(kv_op(), 1..150)) {
        let bpf = Bpf::new();
        let fd = create(&bpf, MapType::LruHash, 4, 8, 4, 0)?;
        // Model: what was last written for each key; the map holds a subset of it.
        let mut written: HashMap<u8, u8> = HashMap::new();
        for op in &ops {
            match *op {
                KvOp::Update(k, v, fl) => {
                    let present = bpf.map_lookup(fd, &hash_key(k)).is_ok();
                    let r = code(bpf.map_update_elem(fd, &hash_key(k), &value8(v), fl));
                    let want = if fl > 2 {
                        Err(EINVAL)
                    } else if present && fl == flags::BPF_NOEXIST {
                        Err(EEXIST)
                    } else if !present && fl == flags::BPF_EXIST {
                        Err(ENOENT)
                    } else {
                        Ok(())
                    };
                    prop_assert_eq!(r, want, "{:?}", op);
                    if r.is_ok() {
                        written.insert(k, v);
                        // The element just written is there.
                        prop_assert_eq!(code(bpf.map_lookup(fd, &hash_key(k))), Ok(value8(v).to_vec()));
                    }
                }
                KvOp::Lookup(k) => {
                    if let Ok(v) = bpf.map_lookup(fd, &hash_key(k)) {
                        prop_assert_eq!(Some(v), written.get(&k).map(|&w| value8(w).to_vec()));
                    }
                }
                KvOp::Delete(k) => {
                    let r = code(bpf.map_delete_elem(fd, &hash_key(k)));
                    prop_assert!(r == Ok(()) || r == Err(ENOENT));
                    written.remove(&k);
                }
            }
            let keys = all_keys(&bpf, fd).map_err(|e| TestCaseError::fail(format!("errno {e}")))?;
            prop_assert!(keys.len() <= 4, "an LRU map holds at most max_entries elements");
        }
    }

    #[test]
    fn queue_and_stack_match_a_vecdeque(
        ops in prop::collection::vec((0u8..4, any::<u8>(), prop::sample::select(vec![0u64, 0, 1, 2, 3])), 1..100),
        stack: bool,
    ) {
        let bpf = Bpf::new();
        let t = if stack { MapType::Stack } else { MapType::Queue };
        let fd = create(&bpf, t, 0, 4, 3, 0)?;
        let mut model: VecDeque<u8> = VecDeque::new();
        for &(kind, v, fl) in &ops {
            let value = [v, 1, 2, 3];
            match kind {
                0 => {
                    let want = if fl & flags::BPF_NOEXIST != 0 || fl > 2 {
                        Err(EINVAL)
                    } else if model.len() == 3 && fl != flags::BPF_EXIST {
                        Err(E2BIG)
                    } else {
                        if model.len() == 3 {
                            model.pop_front(); // BPF_EXIST overwrites the oldest
                        }
                        model.push_back(v);
                        Ok(())
                    };
                    prop_assert_eq!(code(bpf.map_update_elem(fd, &[], &value, fl)), want);
                }
                1 => {
                    let top = if stack { model.back() } else { model.front() };
                    let want = top.map(|&v| vec![v, 1, 2, 3]).ok_or(ENOENT);
                    prop_assert_eq!(code(bpf.map_lookup(fd, &[])), want);
                }
                2 => {
                    let top = if stack { model.pop_back() } else { model.pop_front() };
                    let want = top.map(|v| vec![v, 1, 2, 3]).ok_or(ENOENT);
                    let mut out = [0u8; 4];
                    let got = code(bpf.map_lookup_and_delete_elem(fd, &[], &mut out)).map(|()| out.to_vec());
                    prop_assert_eq!(got, want);
                }
                _ => {
                    prop_assert_eq!(code(bpf.map_delete_elem(fd, &[])), Err(EINVAL));
                    prop_assert_eq!(code(bpf.map_next_key(fd, None)), Err(EINVAL));
                }
            }
        }
    }
}

/// An LPM key for a 2-byte trie: host-endian prefixlen then the data.
fn lpm_key(prefixlen: u32, data: [u8; 2]) -> Vec<u8> {
    let mut k = prefixlen.to_ne_bytes().to_vec();
    k.extend(data);
    k
}

/// Whether `prefix/len` covers the first `len` bits of `data`.
fn covers(prefix: [u8; 2], len: u32, data: [u8; 2]) -> bool {
    let p = u16::from_be_bytes(prefix);
    let d = u16::from_be_bytes(data);
    let mask = if len == 0 { 0 } else { u16::MAX << (16 - len) };
    p & mask == d & mask
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn lpm_trie_matches_a_list_of_prefixes(
        ops in prop::collection::vec(
            (0u8..3, 0u32..=17, prop::sample::select(vec![[0u8, 0], [0x80, 0], [0xc0, 0x10], [0xc0, 0xff], [0xff, 0xff], [0x0f, 0x0f]]), any::<u8>(), prop::sample::select(vec![0u64, 0, 1, 2])),
            1..80),
    ) {
        let bpf = Bpf::new();
        let fd = create(&bpf, MapType::LpmTrie, 6, 1, 5, flags::BPF_F_NO_PREALLOC)?;
        // Model: prefixes (masked data, len) -> value; at most 5.
        let mut model: HashMap<(u16, u32), u8> = HashMap::new();
        let norm = |d: [u8; 2], len: u32| {
            let mask = if len == 0 { 0 } else { u16::MAX << (16 - len.min(16)) };
            (u16::from_be_bytes(d) & mask, len)
        };
        for &(kind, len, data, v, fl) in &ops {
            let key = lpm_key(len, data);
            match kind {
                0 => {
                    let exists = len <= 16 && model.contains_key(&norm(data, len));
                    let want = if len > 16 {
                        Err(EINVAL)
                    } else if exists && fl == flags::BPF_NOEXIST {
                        Err(EEXIST)
                    } else if !exists && fl == flags::BPF_EXIST {
                        Err(ENOENT)
                    } else if !exists && model.len() == 5 {
                        Err(ENOSPC)
                    } else {
                        model.insert(norm(data, len), v);
                        Ok(())
                    };
                    prop_assert_eq!(code(bpf.map_update_elem(fd, &key, &[v], fl)), want);
                }
                1 => {
                    // Longest stored prefix covering the key's first `len` bits.
                    let best = model
                        .iter()
                        .filter(|((p, plen), _)| *plen <= len && len <= 16 && covers(p.to_be_bytes(), *plen, data))
                        .max_by_key(|((_, plen), _)| *plen)
                        .map(|(_, &v)| vec![v]);
                    prop_assert_eq!(code(bpf.map_lookup(fd, &key)), best.ok_or(ENOENT));
                }
                _ => {
                    let want = if len > 16 {
                        Err(EINVAL)
                    } else {
                        model.remove(&norm(data, len)).map(|_| ()).ok_or(ENOENT)
                    };
                    prop_assert_eq!(code(bpf.map_delete_elem(fd, &key)), want);
                }
            }
        }
        // Iteration visits each prefix once, more specific prefixes before the ones covering them.
        let keys = all_keys(&bpf, fd).map_err(|e| TestCaseError::fail(format!("errno {e}")))?;
        prop_assert_eq!(keys.len(), model.len());
        let seen: Vec<(u16, u32)> = keys
            .iter()
            .map(|k| {
                let len = u32::from_ne_bytes([k[0], k[1], k[2], k[3]]);
                norm([k[4], k[5]], len)
            })
            .collect();
        prop_assert_eq!(seen.iter().copied().collect::<HashSet<_>>(), model.keys().copied().collect::<HashSet<_>>());
        for (i, a) in seen.iter().enumerate() {
            for b in &seen[i + 1..] {
                // b after a: b must not be strictly more specific inside a.
                let b_inside_a = b.1 > a.1 && covers(a.0.to_be_bytes(), a.1, b.0.to_be_bytes());
                prop_assert!(!b_inside_a, "{:?} came after its cover {:?}", b, a);
            }
        }
    }
}

#[test]
fn array_get_next_key_and_bounds_follow_the_kernel() -> Result<(), Errno> {
    let bpf = Bpf::new();
    let fd = bpf.map_create(&MapAttr::new(MapType::Array, 4, 4, 3))?;
    let k = |i: u32| i.to_ne_bytes().to_vec();
    assert_eq!(bpf.map_next_key(fd, None)?, k(0));
    assert_eq!(bpf.map_next_key(fd, Some(&k(1)))?, k(2));
    assert_eq!(code(bpf.map_next_key(fd, Some(&k(2)))), Err(ENOENT));
    // An out-of-range key restarts at 0 (arraymap.c's array_map_get_next_key).
    assert_eq!(bpf.map_next_key(fd, Some(&k(77)))?, k(0));
    assert_eq!(code(bpf.map_lookup(fd, &k(3))), Err(ENOENT));
    assert_eq!(code(bpf.map_update_elem(fd, &k(3), &[1; 4], 0)), Err(E2BIG));
    Ok(())
}

#[test]
fn object_table_errnos() -> Result<(), Errno> {
    let bpf = Bpf::new();
    assert_eq!(
        code(bpf.map_lookup(Fd(3), &[0; 4])),
        Err(9),
        "EBADF for an unused fd"
    );
    assert_eq!(code(bpf.close(Fd(3))), Err(9));
    let a = bpf.map_create(&MapAttr::new(MapType::Array, 4, 4, 1))?;
    let b = bpf.map_create(&MapAttr::new(MapType::Hash, 4, 4, 1))?;
    assert_eq!((a, b), (Fd(3), Fd(4)), "lowest free descriptors from 3");
    bpf.close(a)?;
    assert_eq!(code(bpf.close(a)), Err(9));
    let c = bpf.map_create(&MapAttr::new(MapType::Hash, 4, 4, 1))?;
    assert_eq!(c, Fd(3), "a closed descriptor is reused");
    // A map lives while something holds it, even after its last descriptor closes.
    let held = bpf.map(b)?;
    held.update(&[1, 0, 0, 0], &[2, 0, 0, 0], 0)?;
    bpf.close(b)?;
    let mut out = [0u8; 4];
    held.lookup(&[1, 0, 0, 0], &mut out)?;
    assert_eq!(out, [2, 0, 0, 0]);
    // Access flags: BPF_F_RDONLY refuses writes, BPF_F_WRONLY reads, with EPERM.
    let ro = bpf.map_create(&MapAttr::new(MapType::Hash, 4, 4, 1).flags(flags::BPF_F_RDONLY))?;
    assert_eq!(code(bpf.map_update_elem(ro, &[0; 4], &[0; 4], 0)), Err(1));
    assert_eq!(code(bpf.map_lookup(ro, &[0; 4])), Err(ENOENT));
    let wo = bpf.map_create(&MapAttr::new(MapType::Hash, 4, 4, 1).flags(flags::BPF_F_WRONLY))?;
    bpf.map_update_elem(wo, &[0; 4], &[0; 4], 0)?;
    assert_eq!(code(bpf.map_lookup(wo, &[0; 4])), Err(1));
    // Key and value buffers of the wrong size are EINVAL.
    assert_eq!(code(bpf.map_lookup(c, &[0; 3])), Err(EINVAL));
    assert_eq!(
        code(bpf.map_update_elem(c, &[0; 4], &[0; 5], 0)),
        Err(EINVAL)
    );
    Ok(())
}
