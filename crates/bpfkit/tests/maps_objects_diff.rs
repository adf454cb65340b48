//! Differential tests against the running kernel for maps whose values are descriptors (array
//! and hash of maps, prog arrays) and for queue/stack pops. Inner maps are created with the same
//! attributes in both worlds and named by index, so the descriptors differ but the meaning of
//! each command is the same. Skips, saying why, without the kernel oracle.

use std::collections::BTreeSet;

use bpfkit::maps::{flags, MapAttr, MapType};
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

fn ours<T>(r: Result<T, Errno>) -> Result<T, i32> {
    r.map_err(|e| e.code())
}

fn theirs<T>(r: Result<T, kernel::Errno>) -> Result<T, i32> {
    r.map_err(|e| e.0)
}

/// Inner map candidates: (type, key, value, max, flags).
const INNERS: [(u32, u32, u32, u32, u32); 12] = [
    (2, 4, 8, 4, 0),
    (2, 4, 8, 5, 0),
    (2, 4, 4, 4, 0),
    (2, 4, 8, 4, flags::BPF_F_MMAPABLE),
    (1, 4, 8, 4, 0),
    (2, 4, 8, 9, flags::BPF_F_INNER_MAP),
    (2, 4, 8, 4, flags::BPF_F_INNER_MAP),
    (22, 0, 4, 2, 0),
    (27, 0, 0, 4096, 0),
    (11, 8, 8, 4, flags::BPF_F_NO_PREALLOC),
    (6, 4, 8, 4, 0),
    (3, 4, 4, 4, 0),
];

/// The inner candidates in both worlds: bpfkit descriptors and kernel maps.
struct Inners {
    bpf: Bpf,
    ours: Vec<Fd>,
    theirs: Vec<kernel::Map>,
}

impl Inners {
    fn new() -> Result<Self, String> {
        let bpf = Bpf::new();
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for &(t, k, v, m, f) in &INNERS {
            let attr = MapAttr {
                map_type: t,
                key_size: k,
                value_size: v,
                max_entries: m,
                map_flags: f,
                ..MapAttr::default()
            };
            ours.push(
                bpf.map_create(&attr)
                    .map_err(|e| format!("bpfkit {t}: {e}"))?,
            );
            theirs
                .push(kernel::map_create(t, k, v, m, f).map_err(|e| format!("kernel {t}: {e:?}"))?);
        }
        Ok(Self { bpf, ours, theirs })
    }
}

#[test]
fn map_of_maps_creation_checks_the_inner_template_as_the_kernel() {
    if !kernel_ok() {
        return;
    }
    let inners = Inners::new().unwrap_or_else(|e| panic!("{e}"));
    let mut mismatches = Vec::new();
    let mut count = 0;
    let mut created = 0;
    for outer in [12u32, 13] {
        for (ks, vs) in [(4u32, 4u32), (4, 8), (8, 4)] {
            for f in [0u32, 1, 8, 64, 128, 256, 1024, 4096] {
                for i in 0..=INNERS.len() {
                    // Index INNERS.len() is a descriptor that is not open.
                    let (our_fd, their_fd) = match (inners.ours.get(i), inners.theirs.get(i)) {
                        (Some(o), Some(t)) => (o.0, t.fd()),
                        _ => (999, 999),
                    };
                    let attr = MapAttr {
                        map_type: outer,
                        key_size: ks,
                        value_size: vs,
                        max_entries: 4,
                        map_flags: f,
                        inner_map_fd: our_fd,
                        ..MapAttr::default()
                    };
                    let a = ours(inners.bpf.map_create(&attr));
                    if let Ok(fd) = a {
                        let _ = inners.bpf.close(fd);
                    }
                    let b = theirs(kernel::map_create_outer(outer, ks, vs, 4, f, their_fd));
                    let (a, b) = (a.map(|_| ()), b.map(|_| ()));
                    count += 1;
                    created += usize::from(b.is_ok());
                    if a != b {
                        mismatches.push(format!(
                            "outer {outer} key {ks} value {vs} flags {f:#x} inner {:?}: bpfkit {a:?}, kernel {b:?}",
                            INNERS.get(i)
                        ));
                    }
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {count} differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    // The grid has both outcomes (so the comparison is not vacuous).
    assert!(
        created > 20 && created < count - 20,
        "{created} of {count} created"
    );
}

#[derive(Debug, Clone)]
enum Op {
    /// Store inner candidate `inner` (or an unopened fd for an index past them) at `key`.
    Update(u32, usize, u64),
    Lookup(u32),
    Delete(u32),
    Next(Option<u32>),
}

fn run_outer(outer: MapType, template: usize, max: u32, map_flags: u32) {
    if !kernel_ok() {
        return;
    }
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    let key = 0u32..max + 2;
    let op = prop_oneof![
        4 => (key.clone(), 0..INNERS.len() + 1, prop::sample::select(vec![0u64, 0, 1, 2, 3]))
            .prop_map(|(k, i, f)| Op::Update(k, i, f)),
        2 => key.clone().prop_map(Op::Lookup),
        2 => key.clone().prop_map(Op::Delete),
        1 => prop::option::of(key).prop_map(Op::Next),
    ];
    // Hash order is comparable only with a zero seed.
    let unordered = outer == MapType::HashOfMaps && map_flags & flags::BPF_F_ZERO_SEED == 0;
    let result = runner.run(&prop::collection::vec(op, 1..40), |ops| {
        let inners = Inners::new().map_err(TestCaseError::fail)?;
        let bpf = &inners.bpf;
        let ofd = bpf
            .map_create(
                &MapAttr::new(outer, 4, 4, max)
                    .flags(map_flags)
                    .inner_map_fd(inners.ours[template].0),
            )
            .map_err(|e| TestCaseError::fail(format!("bpfkit outer: {e}")))?;
        let kmap = kernel::map_create_outer(
            outer.raw(),
            4,
            4,
            max,
            map_flags,
            inners.theirs[template].fd(),
        )
        .map_err(|e| TestCaseError::fail(format!("kernel outer: {e:?}")))?;
        for (n, op) in ops.iter().enumerate() {
            let (a, b): (Result<(), i32>, Result<(), i32>) = match *op {
                Op::Update(k, i, f) => {
                    let (o, t) = match (inners.ours.get(i), inners.theirs.get(i)) {
                        (Some(o), Some(t)) => (o.0, t.fd() as u32),
                        _ => (999, 999),
                    };
                    (
                        ours(bpf.map_update_elem(ofd, &k.to_ne_bytes(), &o.to_ne_bytes(), f)),
                        theirs(kernel::map_update(
                            &kmap,
                            &k.to_ne_bytes(),
                            &t.to_ne_bytes(),
                            f,
                        )),
                    )
                }
                // The value is the inner map's id, which differs between the worlds.
                Op::Lookup(k) => (
                    ours(bpf.map_lookup(ofd, &k.to_ne_bytes())).map(|_| ()),
                    theirs(kernel::map_lookup(&kmap, &k.to_ne_bytes())).map(|_| ()),
                ),
                Op::Delete(k) => (
                    ours(bpf.map_delete_elem(ofd, &k.to_ne_bytes())),
                    theirs(kernel::map_delete(&kmap, &k.to_ne_bytes())),
                ),
                Op::Next(k) => {
                    let kb = k.map(u32::to_ne_bytes);
                    let a = ours(bpf.map_next_key(ofd, kb.as_ref().map(|k| &k[..])));
                    let b = theirs(kernel::map_get_next_key(&kmap, kb.as_ref().map(|k| &k[..])));
                    if unordered && k.is_some() {
                        // Hash order differs (the kernel's seed is random): only "a key or the end".
                        prop_assert!(matches!(a, Ok(_) | Err(2)), "op {n} {op:?}: {a:?}");
                        continue;
                    }
                    if !unordered {
                        prop_assert_eq!(&a, &b, "op {} {:?}", n, op);
                    }
                    (a.map(|_| ()), b.map(|_| ()))
                }
            };
            prop_assert_eq!(a, b, "op {} {:?}", n, op);
        }
        // Same set of occupied keys.
        let occupied = |lookup: &dyn Fn(u32) -> bool| -> BTreeSet<u32> {
            (0..max + 2).filter(|&k| lookup(k)).collect()
        };
        let a = occupied(&|k| bpf.map_lookup(ofd, &k.to_ne_bytes()).is_ok());
        let b = occupied(&|k| kernel::map_lookup(&kmap, &k.to_ne_bytes()).is_ok());
        prop_assert_eq!(a, b);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{} with template {:?}: {e}", outer.name(), INNERS[template]);
    }
}

#[test]
fn array_of_maps_ops_match_the_kernel() {
    run_outer(MapType::ArrayOfMaps, 0, 4, 0);
    run_outer(MapType::ArrayOfMaps, 5, 3, 0);
}

#[test]
fn hash_of_maps_ops_match_the_kernel() {
    run_outer(MapType::HashOfMaps, 0, 3, 0);
    run_outer(MapType::HashOfMaps, 4, 3, flags::BPF_F_ZERO_SEED);
    run_outer(
        MapType::HashOfMaps,
        0,
        3,
        flags::BPF_F_ZERO_SEED | flags::BPF_F_NO_PREALLOC,
    );
}

#[test]
fn prog_array_commands_without_programs_match_the_kernel() {
    if !kernel_ok() {
        return;
    }
    let inners = Inners::new().unwrap_or_else(|e| panic!("{e}"));
    let bpf = &inners.bpf;
    let ofd = bpf
        .map_create(&MapAttr::new(MapType::ProgArray, 4, 4, 4))
        .unwrap_or_else(|e| panic!("{e}"));
    let kmap = kernel::map_create(3, 4, 4, 4, 0).unwrap_or_else(|e| panic!("{e:?}"));
    // (key, which fd: Some(inner index) = a map, None = not open, flags)
    let cases: [(u32, Option<usize>, u64); 6] = [
        (0, Some(0), 0), // a map, not a program: EINVAL
        (0, None, 0),    // not open: EBADF
        (0, Some(0), 1), // BPF_NOEXIST: EINVAL before the fd is looked at
        (9, None, 0),    // index past the end: E2BIG before the fd
        (1, Some(4), 2), // BPF_EXIST: EINVAL
        (3, None, 0),    // EBADF
    ];
    for (k, i, f) in cases {
        let (o, t) = match i {
            Some(i) => (inners.ours[i].0, inners.theirs[i].fd() as u32),
            None => (999, 999),
        };
        let a = ours(bpf.map_update_elem(ofd, &k.to_ne_bytes(), &o.to_ne_bytes(), f));
        let b = theirs(kernel::map_update(
            &kmap,
            &k.to_ne_bytes(),
            &t.to_ne_bytes(),
            f,
        ));
        assert_eq!(a, b, "update key {k} fd {i:?} flags {f}");
    }
    for k in [0u32, 3, 4, 9] {
        let k = k.to_ne_bytes();
        assert_eq!(
            ours(bpf.map_lookup(ofd, &k)).map(|_| ()),
            theirs(kernel::map_lookup(&kmap, &k)).map(|_| ()),
            "lookup {k:?}"
        );
        assert_eq!(
            ours(bpf.map_delete_elem(ofd, &k)),
            theirs(kernel::map_delete(&kmap, &k)),
            "delete {k:?}"
        );
        assert_eq!(
            ours(bpf.map_next_key(ofd, Some(&k))),
            theirs(kernel::map_get_next_key(&kmap, Some(&k))),
            "next {k:?}"
        );
    }
}

#[test]
fn queue_and_stack_pops_match_the_kernel() {
    if !kernel_ok() {
        return;
    }
    for t in [MapType::Queue, MapType::Stack] {
        let mut runner = TestRunner::new(Config {
            cases: 32,
            failure_persistence: None,
            ..Config::default()
        });
        let op = (0u8..3, any::<u8>(), prop::sample::select(vec![0u64, 0, 2]));
        let result = runner.run(&prop::collection::vec(op, 1..50), |ops| {
            let bpf = Bpf::new();
            let fd = bpf
                .map_create(&MapAttr::new(t, 0, 4, 3))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let kmap = kernel::map_create(t.raw(), 0, 4, 3, 0)
                .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            for (i, &(kind, v, f)) in ops.iter().enumerate() {
                let val = [v, v ^ 0x55, 3, 4];
                let (a, b) = match kind {
                    0 => (
                        ours(bpf.map_update_elem(fd, &[], &val, f)).map(|()| Vec::new()),
                        theirs(kernel::map_update(&kmap, &[], &val, f)).map(|()| Vec::new()),
                    ),
                    1 => (
                        ours(bpf.map_lookup(fd, &[])),
                        theirs(kernel::map_lookup(&kmap, &[])),
                    ),
                    _ => {
                        let mut out = [0u8; 4];
                        (
                            ours(bpf.map_lookup_and_delete_elem(fd, &[], &mut out))
                                .map(|()| out.to_vec()),
                            theirs(kernel::map_lookup_and_delete(&kmap, &[])),
                        )
                    }
                };
                prop_assert_eq!(a, b, "op {} kind {} flags {}", i, kind, f);
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{}: {e}", t.name());
        }
    }
}

#[test]
fn hash_lookup_and_delete_matches_the_kernel() {
    if !kernel_ok() {
        return;
    }
    let bpf = Bpf::new();
    let fd = bpf
        .map_create(&MapAttr::new(MapType::Hash, 4, 4, 4))
        .unwrap_or_else(|e| panic!("{e}"));
    let kmap = kernel::map_create(1, 4, 4, 4, 0).unwrap_or_else(|e| panic!("{e:?}"));
    for (k, v) in [(1u32, 10u32), (2, 20)] {
        let _ = bpf.map_update_elem(fd, &k.to_ne_bytes(), &v.to_ne_bytes(), 0);
        let _ = kernel::map_update(&kmap, &k.to_ne_bytes(), &v.to_ne_bytes(), 0);
    }
    for k in [1u32, 1, 3, 2] {
        let mut out = [0u8; 4];
        let a = ours(bpf.map_lookup_and_delete_elem(fd, &k.to_ne_bytes(), &mut out))
            .map(|()| out.to_vec());
        let b = theirs(kernel::map_lookup_and_delete(&kmap, &k.to_ne_bytes()));
        assert_eq!(a, b, "key {k}");
    }
}

/// Random prog array commands with real programs of two types in both worlds: socket
/// filters (slots 0, 1) and an XDP program (slot 2), plus a map fd and an unopened fd.
#[test]
fn prog_array_with_programs_matches_the_kernel() {
    use bpfkit::prog::load::ProgLoadAttr;
    use bpfkit::progtype::ProgType;
    use bpfkit_isa::Insn;

    if !kernel_ok() {
        return;
    }
    let ret0 = [Insn::new(0xb7, 0, 0, 0, 0), Insn::new(0x95, 0, 0, 0, 0)];
    let mut runner = TestRunner::new(Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    });
    let op = prop_oneof![
        4 => (0u32..6, 0usize..5, prop::sample::select(vec![0u64, 0, 0, 1, 2]))
            .prop_map(|(k, i, f)| Op::Update(k, i, f)),
        2 => (0u32..6).prop_map(Op::Lookup),
        2 => (0u32..6).prop_map(Op::Delete),
        1 => prop::option::of(0u32..6).prop_map(Op::Next),
    ];
    let stored = std::sync::atomic::AtomicUsize::new(0);
    let result = runner.run(&prop::collection::vec(op, 1..40), |ops| {
        let bpf = Bpf::new();
        let fail = |e: String| TestCaseError::fail(e);
        let mut ours_fds = Vec::new();
        let mut kernel_progs = Vec::new();
        for (t, kt) in [
            (ProgType::SocketFilter, 1u32),
            (ProgType::SocketFilter, 1),
            (ProgType::Xdp, 6),
        ] {
            let attr = ProgLoadAttr {
                prog_type: t,
                insns: &ret0,
                license: "GPL",
                log_level: 0,
                log_size: 0,
            };
            ours_fds.push(bpf.prog_load(&attr).map_err(|e| fail(e.to_string()))?.fd.0);
            let k = kernel::prog_load(kt, &ret0[..], "GPL", 0, 0)
                .result
                .map_err(|e| fail(format!("{e:?}")))?;
            kernel_progs.push(k);
        }
        let our_map = bpf
            .map_create(&MapAttr::new(MapType::Array, 4, 4, 1))
            .map_err(|e| fail(e.to_string()))?;
        let kernel_map = kernel::map_create(2, 4, 4, 1, 0).map_err(|e| fail(format!("{e:?}")))?;
        let ofd = bpf
            .map_create(&MapAttr::new(MapType::ProgArray, 4, 4, 4))
            .map_err(|e| fail(e.to_string()))?;
        let kmap = kernel::map_create(3, 4, 4, 4, 0).map_err(|e| fail(format!("{e:?}")))?;
        let fds = |i: usize| -> (u32, u32) {
            match i {
                0..=2 => (ours_fds[i], kernel_progs[i].fd() as u32),
                3 => (our_map.0, kernel_map.fd() as u32),
                _ => (999, 999),
            }
        };
        for (n, op) in ops.iter().enumerate() {
            let (a, b) = match *op {
                Op::Update(k, i, f) => {
                    let (o, t) = fds(i);
                    (
                        ours(bpf.map_update_elem(ofd, &k.to_ne_bytes(), &o.to_ne_bytes(), f)),
                        theirs(kernel::map_update(
                            &kmap,
                            &k.to_ne_bytes(),
                            &t.to_ne_bytes(),
                            f,
                        )),
                    )
                }
                Op::Lookup(k) => (
                    ours(bpf.map_lookup(ofd, &k.to_ne_bytes())).map(|_| ()),
                    theirs(kernel::map_lookup(&kmap, &k.to_ne_bytes())).map(|_| ()),
                ),
                Op::Delete(k) => (
                    ours(bpf.map_delete_elem(ofd, &k.to_ne_bytes())),
                    theirs(kernel::map_delete(&kmap, &k.to_ne_bytes())),
                ),
                Op::Next(k) => {
                    let kb = k.map(u32::to_ne_bytes);
                    (
                        ours(bpf.map_next_key(ofd, kb.as_ref().map(|k| &k[..]))).map(|_| ()),
                        theirs(kernel::map_get_next_key(&kmap, kb.as_ref().map(|k| &k[..])))
                            .map(|_| ()),
                    )
                }
            };
            if matches!(op, Op::Update(..)) && a.is_ok() {
                stored.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            prop_assert_eq!(a, b, "op {} {:?}", n, op);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("prog_array: {e}");
    }
    assert!(stored.into_inner() > 0, "some programs were stored");
}
