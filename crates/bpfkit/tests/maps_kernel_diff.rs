//! Differential tests of bpfkit's maps against the running Linux kernel (`bpf()` as root).
//!
//! The same creation attributes, and the same random sequences of element commands, go to a
//! kernel map and to a bpfkit map; every answer (errno or bytes) must be the same. Hash maps
//! are created with `BPF_F_ZERO_SEED` so even `get_next_key`'s order is comparable; LRU maps
//! are sized so the kernel never evicts (its choice of victim is not specified). Each test
//! prints why and passes when the kernel oracle is unavailable.

use bpfkit::maps::{cpu, flags, MapAttr, MapType};
use bpfkit::{Bpf, Errno, Fd};
use bpfkit_kernel as kernel;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

fn kernel_ok() -> bool {
    match kernel::available() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("skipped: {why}");
            false
        }
    }
}

/// An answer: bytes, or an errno number.
type Answer = Result<Vec<u8>, i32>;

/// A map's contents in iteration order: each key with its lookup answer.
type Dump = Vec<(Vec<u8>, Answer)>;

fn ours<T>(r: Result<T, Errno>) -> Result<T, i32> {
    r.map_err(|e| e.code())
}

fn theirs<T>(r: Result<T, kernel::Errno>) -> Result<T, i32> {
    r.map_err(|e| e.0)
}

/// Creation attributes to try: (type, key_size, value_size, max_entries, flags).
fn attr_grid() -> Vec<(u32, u32, u32, u32, u32)> {
    let types = [
        1u32, 2, 3, 5, 6, 9, 10, 11, 22, 23, 27, 0, 4, 7, 14, 16, 25, 99,
    ];
    let keys = [0u32, 1, 3, 4, 5, 8, 260, 261];
    let values = [0u32, 1, 4, 8, 4097, 32768, 32769];
    let maxes = [0u32, 1, 3, 4096, 8192];
    let mut flag_set = vec![0u32];
    flag_set.extend((0..17).map(|b| 1u32 << b));
    flag_set.extend([
        flags::BPF_F_NO_PREALLOC | flags::BPF_F_NO_COMMON_LRU,
        flags::BPF_F_RDONLY | flags::BPF_F_WRONLY,
        flags::BPF_F_RDONLY_PROG | flags::BPF_F_WRONLY_PROG,
        flags::BPF_F_NO_PREALLOC | flags::BPF_F_ZERO_SEED,
        flags::BPF_F_NUMA_NODE | flags::BPF_F_NO_COMMON_LRU,
        flags::BPF_F_NO_PREALLOC | flags::BPF_F_RDONLY,
    ]);
    let mut out = Vec::new();
    for &t in &types {
        for &k in &keys {
            for &v in &values {
                for &m in &maxes {
                    // Keep the kernel's preallocations small.
                    if u64::from(v.max(8)) * u64::from(m) > 1 << 22 && v > 8 {
                        continue;
                    }
                    for &f in &flag_set {
                        out.push((t, k, v, m, f));
                    }
                }
            }
        }
    }
    // Boundaries named in the kernel's checks.
    let np = flags::BPF_F_NO_PREALLOC;
    out.extend([
        (1, 4, 4_194_251, 1, np), // key + value just below KMALLOC_MAX_SIZE - elem
        (1, 4, 4_194_252, 1, np), // ... and at it: E2BIG
        (1, 4, 4, (1 << 28) + 1, np), // too many buckets: E2BIG
        (1, 4, 4, (1 << 31) + 1, np), // above 2^31: E2BIG
        (2, 4, 1 << 31, 1, 0),    // value_size above INT_MAX: E2BIG
        (11, 8, 4_194_008, 1, np), // LPM_VAL_SIZE_MAX
        (11, 8, 4_194_009, 1, np), // above it: EINVAL
        (22, 0, (1 << 22) + 1, 1, 0), // queue value above KMALLOC_MAX_SIZE: E2BIG
        (27, 0, 0, 12288, 0),     // not a power of two
        (27, 0, 0, 2048, 0),      // not a page multiple
        (27, 0, 0, 1 << 20, flags::BPF_F_NUMA_NODE),
        (7, 4, 1016, 1, 0), // stack trace of perf_event_max_stack (127) frames
        (7, 4, 1024, 1, 0), // one frame more: EINVAL
        (7, 4, 4064, 1, flags::BPF_F_STACK_BUILD_ID), // 127 build-id entries
        (7, 4, 4096, 1, flags::BPF_F_STACK_BUILD_ID), // 128: EINVAL
        (7, 4, 40, 1, flags::BPF_F_STACK_BUILD_ID), // not a multiple of 32: EINVAL
        (7, 4, 8, (1 << 31) + 1, 0), // above 2^31: E2BIG
        (25, 4, 4, (1 << 31) + 1, 0), // devmap_hash above 2^31 buckets: EINVAL
        (14, 4, 8, 4, flags::BPF_F_RDONLY),
        (25, 4, 8, 4, flags::BPF_F_WRONLY),
        (4, 4, 4, 4, flags::BPF_F_PRESERVE_ELEMS),
        (16, 4, 8, bpfkit::maps::cpumap::nr_cpus(), 0), // NR_CPUS entries
        (16, 4, 8, bpfkit::maps::cpumap::nr_cpus() + 1, 0), // more: E2BIG
        (16, 4, 4, 4, flags::BPF_F_RDONLY),
    ]);
    out
}

#[test]
fn map_create_attribute_checks_match_the_kernel() {
    if !kernel_ok() {
        return;
    }
    let bpf = Bpf::new();
    let mut mismatches = Vec::new();
    let grid = attr_grid();
    for &(t, k, v, m, f) in &grid {
        let attr = MapAttr {
            map_type: t,
            key_size: k,
            value_size: v,
            max_entries: m,
            map_flags: f,
            ..MapAttr::default()
        };
        let mine = ours(bpf.map_create(&attr));
        if let Ok(fd) = mine {
            let _ = bpf.close(fd);
        }
        let kern = theirs(kernel::map_create(t, k, v, m, f));
        let (a, b) = (mine.map(|_| ()), kern.as_ref().map(|_| ()).map_err(|e| *e));
        // Map types bpfkit does not implement are EINVAL here; only compare implemented ones
        // (and the unknown/UNSPEC numbers, which the kernel also refuses with EINVAL).
        let implemented = MapType::from_raw(t).is_some() || t == 0 || t == 99;
        if implemented && a != b {
            mismatches.push(format!(
                "type {t} key {k} value {v} max {m} flags {f:#x}: bpfkit {a:?}, kernel {b:?}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} attribute sets differ:\n{}",
        mismatches.len(),
        grid.len(),
        mismatches[..mismatches.len().min(40)].join("\n")
    );
}

/// One element command.
#[derive(Debug, Clone)]
enum Op {
    Update(Vec<u8>, Vec<u8>, u64),
    Lookup(Vec<u8>),
    Delete(Vec<u8>),
    Next(Option<Vec<u8>>),
}

/// A pair of maps under test.
struct Pair {
    bpf: Bpf,
    fd: Fd,
    kmap: kernel::Map,
}

impl Pair {
    fn new(t: MapType, k: u32, v: u32, m: u32, f: u32) -> Result<Self, String> {
        let bpf = Bpf::new();
        let fd = bpf
            .map_create(&MapAttr::new(t, k, v, m).flags(f))
            .map_err(|e| format!("bpfkit map_create: {e}"))?;
        let kmap = kernel::map_create(t.raw(), k, v, m, f)
            .map_err(|e| format!("kernel map_create: {e:?}"))?;
        Ok(Self { bpf, fd, kmap })
    }

    fn apply(&self, op: &Op) -> (Answer, Answer) {
        match op {
            Op::Update(k, v, f) => (
                ours(self.bpf.map_update_elem(self.fd, k, v, *f)).map(|()| Vec::new()),
                theirs(kernel::map_update(&self.kmap, k, v, *f)).map(|()| Vec::new()),
            ),
            Op::Lookup(k) => (
                ours(self.bpf.map_lookup(self.fd, k)),
                theirs(kernel::map_lookup(&self.kmap, k)),
            ),
            Op::Delete(k) => (
                ours(self.bpf.map_delete_elem(self.fd, k)).map(|()| Vec::new()),
                theirs(kernel::map_delete(&self.kmap, k)).map(|()| Vec::new()),
            ),
            Op::Next(k) => (
                ours(self.bpf.map_next_key(self.fd, k.as_deref())),
                theirs(kernel::map_get_next_key(&self.kmap, k.as_deref())),
            ),
        }
    }

    /// Every (key, value) in `get_next_key` order.
    fn dump(&self) -> (Dump, Dump) {
        let mut a = Vec::new();
        let mut key: Option<Vec<u8>> = None;
        while let Ok(k) = self.bpf.map_next_key(self.fd, key.as_deref()) {
            a.push((k.clone(), ours(self.bpf.map_lookup(self.fd, &k))));
            key = Some(k);
            if a.len() > 100_000 {
                break;
            }
        }
        let mut b = Vec::new();
        let mut key: Option<Vec<u8>> = None;
        while let Ok(k) = kernel::map_get_next_key(&self.kmap, key.as_deref()) {
            b.push((k.clone(), theirs(kernel::map_lookup(&self.kmap, &k))));
            key = Some(k);
            if b.len() > 100_000 {
                break;
            }
        }
        (a, b)
    }

    fn run(&self, ops: &[Op], ordered: bool) -> Result<(), TestCaseError> {
        for (i, op) in ops.iter().enumerate() {
            let (a, b) = self.apply(op);
            // Without a zero seed the kernel's iteration order is random: from a key, only
            // "a next key or the end" is comparable; from no key, whether the map is empty.
            let same = match op {
                Op::Next(Some(_)) if !ordered => matches!(a, Ok(_) | Err(2)),
                Op::Next(None) if !ordered => a.is_ok() == b.is_ok(),
                _ => a == b,
            };
            prop_assert!(same, "op {i} {op:?}: bpfkit {a:?}, kernel {b:?}");
        }
        let (mut a, mut b) = self.dump();
        if !ordered {
            a.sort();
            b.sort();
        }
        prop_assert_eq!(a, b, "contents after {} ops", ops.len());
        Ok(())
    }
}

fn bytes(len: usize, domain: u8) -> impl Strategy<Value = Vec<u8>> + Clone {
    prop::collection::vec(0..domain, len)
}

fn value_len(t: MapType, v: u32) -> usize {
    if t.is_percpu() {
        (v as usize).next_multiple_of(8) * cpu::possible_cpus() as usize
    } else {
        v as usize
    }
}

fn kv_ops(ks: usize, vlen: usize, key_domain: u8) -> impl Strategy<Value = Vec<Op>> {
    let key = bytes(ks, key_domain);
    let op = prop_oneof![
        4 => (key.clone(), bytes(vlen, 255), prop::sample::select(vec![0u64, 0, 1, 2, 3, 4]))
            .prop_map(|(k, v, f)| Op::Update(k, v, f)),
        2 => key.clone().prop_map(Op::Lookup),
        2 => key.clone().prop_map(Op::Delete),
        1 => prop::option::of(key).prop_map(Op::Next),
    ];
    prop::collection::vec(op, 1..60)
}

fn run_kv(t: MapType, ks: u32, vs: u32, max: u32, f: u32, domain: u8, ordered: bool) {
    if !kernel_ok() {
        return;
    }
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = kv_ops(ks as usize, value_len(t, vs), domain);
    let result = runner.run(&strategy, |ops| {
        let pair = Pair::new(t, ks, vs, max, f).map_err(TestCaseError::fail)?;
        pair.run(&ops, ordered)
    });
    if let Err(e) = result {
        panic!(
            "{} key {ks} value {vs} max {max} flags {f:#x}: {e}",
            t.name()
        );
    }
}

#[test]
fn hash_ops_match_the_kernel_with_zero_seed_order() {
    // Key sizes that take jhash2 (multiples of 4) and jhash (others); a small max_entries so
    // E2BIG is reached.
    for (ks, vs) in [(4, 8), (1, 4), (3, 1), (8, 12), (13, 8), (16, 4)] {
        run_kv(MapType::Hash, ks, vs, 6, flags::BPF_F_ZERO_SEED, 3, true);
    }
    run_kv(
        MapType::Hash,
        4,
        8,
        6,
        flags::BPF_F_ZERO_SEED | flags::BPF_F_NO_PREALLOC,
        3,
        true,
    );
}

#[test]
fn hash_ops_match_the_kernel_with_random_seed_as_sets() {
    run_kv(MapType::Hash, 4, 8, 5, 0, 3, false);
}

#[test]
fn percpu_hash_ops_match_the_kernel() {
    run_kv(
        MapType::PercpuHash,
        4,
        4,
        5,
        flags::BPF_F_ZERO_SEED,
        3,
        true,
    );
    run_kv(
        MapType::PercpuHash,
        2,
        12,
        5,
        flags::BPF_F_ZERO_SEED,
        3,
        true,
    );
}

#[test]
fn lru_hash_ops_match_the_kernel_below_capacity() {
    // 1000 slots for at most 3^2 keys: the kernel's LRU never has to evict.
    run_kv(
        MapType::LruHash,
        2,
        8,
        1000,
        flags::BPF_F_ZERO_SEED,
        3,
        true,
    );
    run_kv(
        MapType::LruPercpuHash,
        2,
        8,
        1000,
        flags::BPF_F_ZERO_SEED,
        3,
        true,
    );
}

#[test]
fn array_ops_match_the_kernel() {
    // Keys 0..=3 of a 3-element array: index 3 is out of range.
    let run = |t: MapType, vs: u32| {
        if !kernel_ok() {
            return;
        }
        let mut runner = TestRunner::new(Config {
            cases: 24,
            failure_persistence: None,
            ..Config::default()
        });
        let key = (0u32..4).prop_map(|i| i.to_ne_bytes().to_vec());
        let vlen = value_len(t, vs);
        let op = prop_oneof![
            4 => (key.clone(), bytes(vlen, 255), prop::sample::select(vec![0u64, 1, 2, 3, 4]))
                .prop_map(|(k, v, f)| Op::Update(k, v, f)),
            2 => key.clone().prop_map(Op::Lookup),
            1 => key.clone().prop_map(Op::Delete),
            2 => prop::option::of(key).prop_map(Op::Next),
        ];
        let result = runner.run(&prop::collection::vec(op, 1..40), |ops| {
            let pair = Pair::new(t, 4, vs, 3, 0).map_err(TestCaseError::fail)?;
            pair.run(&ops, true)
        });
        if let Err(e) = result {
            panic!("{}: {e}", t.name());
        }
    };
    run(MapType::Array, 12);
    run(MapType::Array, 3);
    run(MapType::PercpuArray, 4);
}

#[test]
fn lpm_trie_ops_match_the_kernel_including_next_key_order() {
    if !kernel_ok() {
        return;
    }
    for data_len in [1usize, 4] {
        let bits = 8 * data_len as u32;
        let mut runner = TestRunner::new(Config {
            cases: 48,
            failure_persistence: None,
            ..Config::default()
        });
        // Prefix lengths up to one past the maximum; data bytes from a few values so prefixes
        // nest and diverge at various bits.
        let key = (
            0..=bits + 1,
            prop::collection::vec(
                prop::sample::select(vec![0u8, 0x80, 0xc0, 0x0f, 0xff]),
                data_len,
            ),
        )
            .prop_map(|(p, d)| {
                let mut k = p.to_ne_bytes().to_vec();
                k.extend(d);
                k
            });
        let op = prop_oneof![
            5 => (key.clone(), bytes(4, 255), prop::sample::select(vec![0u64, 0, 1, 2, 3]))
                .prop_map(|(k, v, f)| Op::Update(k, v, f)),
            2 => key.clone().prop_map(Op::Lookup),
            2 => key.clone().prop_map(Op::Delete),
            2 => prop::option::of(key).prop_map(Op::Next),
        ];
        let ks = 4 + data_len as u32;
        let result = runner.run(&prop::collection::vec(op, 1..60), |ops| {
            let pair = Pair::new(MapType::LpmTrie, ks, 4, 7, flags::BPF_F_NO_PREALLOC)
                .map_err(TestCaseError::fail)?;
            pair.run(&ops, true)
        });
        if let Err(e) = result {
            panic!("lpm_trie key_size {ks}: {e}");
        }
    }
}

#[test]
fn queue_and_stack_push_and_peek_match_the_kernel() {
    if !kernel_ok() {
        return;
    }
    for t in [MapType::Queue, MapType::Stack] {
        let mut runner = TestRunner::new(Config {
            cases: 24,
            failure_persistence: None,
            ..Config::default()
        });
        let op = prop_oneof![
            3 => (bytes(4, 255), prop::sample::select(vec![0u64, 0, 1, 2, 3]))
                .prop_map(|(v, f)| Op::Update(Vec::new(), v, f)),
            2 => Just(Op::Lookup(Vec::new())),
            1 => Just(Op::Delete(Vec::new())),
            1 => Just(Op::Next(None)),
        ];
        let result = runner.run(&prop::collection::vec(op, 1..40), |ops| {
            let pair = Pair::new(t, 0, 4, 3, 0).map_err(TestCaseError::fail)?;
            for (i, op) in ops.iter().enumerate() {
                let (a, b) = pair.apply(op);
                prop_assert_eq!(a, b, "op {} {:?}", i, op);
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{}: {e}", t.name());
        }
    }
}

#[test]
fn ringbuf_element_commands_are_refused_as_by_the_kernel() {
    if !kernel_ok() {
        return;
    }
    let pair = match Pair::new(MapType::RingBuf, 0, 0, 4096, 0) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    for op in [
        Op::Lookup(Vec::new()),
        Op::Update(Vec::new(), Vec::new(), 0),
        Op::Delete(Vec::new()),
        Op::Next(None),
    ] {
        let (a, b) = pair.apply(&op);
        assert_eq!(a, b, "{op:?}");
    }
}
