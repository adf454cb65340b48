//! Differential tests of the maps whose values name kernel objects — devmap, devmap_hash,
//! perf_event_array — and of stack_trace, against the running Linux kernel (`bpf()` as root):
//! the same random sequences of element commands must give the same answers (errno or bytes)
//! and leave the same contents.
//!
//! Device values name ifindex 1 (lo, which every network namespace has and bpfkit models), 0,
//! or an ifindex no device has; perf event values are a perf event of each world
//! (`PERF_COUNT_SW_BPF_OUTPUT` on CPU 0), the map's own descriptor, or one that is not open.
//! Stack trace maps can only be filled by programs, so user space meets them empty. Each test
//! prints why and passes when the kernel oracle is unavailable.

use bpfkit::maps::{cpu, MapAttr, MapType};
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

type Answer = Result<Vec<u8>, i32>;

/// A map's contents in iteration order: each key with its lookup answer.
type Dump = Vec<(Vec<u8>, Answer)>;

fn ours<T>(r: Result<T, Errno>) -> Result<T, i32> {
    r.map_err(|e| e.code())
}

fn theirs<T>(r: Result<T, kernel::Errno>) -> Result<T, i32> {
    r.map_err(|e| e.0)
}

/// A value as the test describes it, made concrete in each world.
#[derive(Debug, Clone)]
enum Val {
    /// Literal bytes (device values).
    Bytes(Vec<u8>),
    /// The descriptor of perf event `i` of the world.
    Event(usize),
    /// The map's own descriptor (not a perf event).
    OwnMap,
    /// A descriptor that is not open.
    Closed,
}

#[derive(Debug, Clone)]
enum Op {
    Update(u32, Val, u64),
    Lookup(u32),
    Delete(u32),
    Next(Option<u32>),
    LookupAndDelete(u32),
}

struct Pair {
    bpf: Bpf,
    fd: Fd,
    kmap: kernel::Map,
    events: Vec<Fd>,
    kevents: Vec<kernel::PerfEvent>,
}

/// A descriptor number no test process has open.
const CLOSED_FD: u32 = 9999;

impl Pair {
    fn new(t: MapType, v: u32, m: u32, perf_events: usize) -> Result<Self, String> {
        let bpf = Bpf::new();
        let fd = bpf
            .map_create(&MapAttr::new(t, 4, v, m))
            .map_err(|e| format!("bpfkit map_create: {e}"))?;
        let kmap = kernel::map_create(t.raw(), 4, v, m, 0)
            .map_err(|e| format!("kernel map_create: {e:?}"))?;
        let mut events = Vec::new();
        let mut kevents = Vec::new();
        for _ in 0..perf_events {
            events.push(
                bpf.perf_event_open(0, 1)
                    .map_err(|e| format!("bpfkit perf_event_open: {e}"))?,
            );
            kevents.push(
                kernel::perf_event_open_bpf_output(0)
                    .map_err(|e| format!("kernel perf_event_open: {e:?}"))?,
            );
        }
        Ok(Self {
            bpf,
            fd,
            kmap,
            events,
            kevents,
        })
    }

    fn values(&self, v: &Val) -> (Vec<u8>, Vec<u8>) {
        let fd_bytes = |n: u32| n.to_ne_bytes().to_vec();
        match v {
            Val::Bytes(b) => (b.clone(), b.clone()),
            Val::Event(i) => (
                fd_bytes(self.events[*i].0),
                fd_bytes(self.kevents[*i].fd() as u32),
            ),
            Val::OwnMap => (fd_bytes(self.fd.0), fd_bytes(self.kmap.fd() as u32)),
            Val::Closed => (fd_bytes(CLOSED_FD), fd_bytes(CLOSED_FD)),
        }
    }

    fn apply(&self, op: &Op) -> (Answer, Answer) {
        let k = |i: &u32| i.to_ne_bytes();
        match op {
            Op::Update(key, v, f) => {
                let (a, b) = self.values(v);
                (
                    ours(self.bpf.map_update_elem(self.fd, &k(key), &a, *f)).map(|()| Vec::new()),
                    theirs(kernel::map_update(&self.kmap, &k(key), &b, *f)).map(|()| Vec::new()),
                )
            }
            Op::Lookup(key) => (
                ours(self.bpf.map_lookup(self.fd, &k(key))),
                theirs(kernel::map_lookup(&self.kmap, &k(key))),
            ),
            Op::Delete(key) => (
                ours(self.bpf.map_delete_elem(self.fd, &k(key))).map(|()| Vec::new()),
                theirs(kernel::map_delete(&self.kmap, &k(key))).map(|()| Vec::new()),
            ),
            Op::Next(key) => {
                let key = key.map(|x| x.to_ne_bytes());
                (
                    ours(self.bpf.map_next_key(self.fd, key.as_ref().map(|x| &x[..]))),
                    theirs(kernel::map_get_next_key(
                        &self.kmap,
                        key.as_ref().map(|x| &x[..]),
                    )),
                )
            }
            Op::LookupAndDelete(key) => {
                let mut v = vec![0u8; self.bpf.map(self.fd).map_or(0, |m| m.user_value_size())];
                (
                    ours(
                        self.bpf
                            .map_lookup_and_delete_elem(self.fd, &k(key), &mut v)
                            .map(|()| v.clone()),
                    ),
                    theirs(kernel::map_lookup_and_delete(&self.kmap, &k(key))),
                )
            }
        }
    }

    /// Every key in `get_next_key` order with its lookup answer, in each world.
    fn dump(&self) -> (Dump, Dump) {
        let mut a = Vec::new();
        let mut key: Option<Vec<u8>> = None;
        while let Ok(k) = self.bpf.map_next_key(self.fd, key.as_deref()) {
            a.push((k.clone(), ours(self.bpf.map_lookup(self.fd, &k))));
            key = Some(k);
            if a.len() > 10_000 {
                break;
            }
        }
        let mut b = Vec::new();
        let mut key: Option<Vec<u8>> = None;
        while let Ok(k) = kernel::map_get_next_key(&self.kmap, key.as_deref()) {
            b.push((k.clone(), theirs(kernel::map_lookup(&self.kmap, &k))));
            key = Some(k);
            if b.len() > 10_000 {
                break;
            }
        }
        (a, b)
    }

    fn run(&self, ops: &[Op]) -> Result<(), TestCaseError> {
        for (i, op) in ops.iter().enumerate() {
            let (a, b) = self.apply(op);
            prop_assert_eq!(a, b, "op {} {:?}", i, op);
        }
        let (a, b) = self.dump();
        prop_assert_eq!(a, b, "contents after {} ops", ops.len());
        Ok(())
    }
}

fn run_ops(
    name: &str,
    make: impl Fn() -> Result<Pair, String>,
    ops: impl Strategy<Value = Vec<Op>>,
) {
    if !kernel_ok() {
        return;
    }
    let mut runner = TestRunner::new(Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(e) = runner.run(&ops, |ops| make().map_err(TestCaseError::fail)?.run(&ops)) {
        panic!("{name}: {e}");
    }
}

/// Keys 0..=5 (past max_entries 3) and one far away.
fn key() -> impl Strategy<Value = u32> + Clone {
    prop_oneof![6 => 0u32..6, 1 => Just(0x8000_0001u32)]
}

/// `struct bpf_devmap_val` of `len` bytes: ifindex 0, 1 (lo) or none; prog fd 0, -1 or 5.
fn dev_value(len: usize) -> impl Strategy<Value = Val> + Clone {
    (
        prop::sample::select(vec![0u32, 1, 1, 1, 0x7fff_0001]),
        prop::sample::select(vec![0u32, 0, 0xffff_ffff, 5]),
    )
        .prop_map(move |(ifindex, prog)| {
            let mut v = ifindex.to_ne_bytes().to_vec();
            v.extend(prog.to_ne_bytes());
            v.truncate(len);
            Val::Bytes(v)
        })
}

fn dev_ops(len: usize) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        4 => (key(), dev_value(len), prop::sample::select(vec![0u64, 0, 1, 2, 3]))
            .prop_map(|(k, v, f)| Op::Update(k, v, f)),
        2 => key().prop_map(Op::Lookup),
        2 => key().prop_map(Op::Delete),
        2 => prop::option::of(key()).prop_map(Op::Next),
    ];
    prop::collection::vec(op, 1..50)
}

#[test]
fn devmap_ops_match_the_kernel() {
    for len in [4u32, 8] {
        run_ops(
            &format!("devmap value_size {len}"),
            || Pair::new(MapType::DevMap, len, 3, 0),
            dev_ops(len as usize),
        );
    }
}

#[test]
fn devmap_hash_ops_match_the_kernel_including_next_key_order() {
    for len in [4u32, 8] {
        run_ops(
            &format!("devmap_hash value_size {len}"),
            || Pair::new(MapType::DevMapHash, len, 3, 0),
            dev_ops(len as usize),
        );
    }
}

#[test]
fn cpumap_ops_match_the_kernel() {
    // Keys past the possible CPUs are ENODEV, past max_entries E2BIG.
    let max = cpu::possible_cpus() + 2;
    for len in [4usize, 8] {
        let value = (
            prop::sample::select(vec![0u32, 1, 64, 16384, 16385]),
            prop::sample::select(vec![0u32, 0, 0xffff_ffff, 5]),
        )
            .prop_map(move |(qsize, prog)| {
                let mut v = qsize.to_ne_bytes().to_vec();
                v.extend(prog.to_ne_bytes());
                v.truncate(len);
                Val::Bytes(v)
            });
        let key = prop_oneof![6 => 0..max + 2, 1 => Just(0x8000_0001u32)];
        let op = prop_oneof![
            4 => (key.clone(), value, prop::sample::select(vec![0u64, 0, 1, 2, 3]))
                .prop_map(|(k, v, f)| Op::Update(k, v, f)),
            2 => key.clone().prop_map(Op::Lookup),
            2 => key.clone().prop_map(Op::Delete),
            2 => prop::option::of(key).prop_map(Op::Next),
        ];
        run_ops(
            &format!("cpumap value_size {len}"),
            || Pair::new(MapType::CpuMap, len as u32, max, 0),
            prop::collection::vec(op, 1..40),
        );
    }
}

#[test]
fn perf_event_array_ops_match_the_kernel() {
    let val = prop_oneof![
        6 => (0usize..2).prop_map(Val::Event),
        1 => Just(Val::OwnMap),
        1 => Just(Val::Closed),
    ];
    let op = prop_oneof![
        4 => (key(), val, prop::sample::select(vec![0u64, 0, 0, 1, 2, 3]))
            .prop_map(|(k, v, f)| Op::Update(k, v, f)),
        1 => key().prop_map(Op::Lookup),
        2 => key().prop_map(Op::Delete),
        2 => prop::option::of(key()).prop_map(Op::Next),
    ];
    run_ops(
        "perf_event_array",
        || Pair::new(MapType::PerfEventArray, 4, 3, 2),
        prop::collection::vec(op, 1..50),
    );
}

#[test]
fn stack_trace_commands_on_an_empty_map_match_the_kernel() {
    // max_entries 3: four buckets, ids 0..=3; 4 and 5 are past them.
    let op = prop_oneof![
        1 => (key(), Just(Val::Bytes(vec![0u8; 16])), 0u64..3)
            .prop_map(|(k, v, f)| Op::Update(k, v, f)),
        2 => key().prop_map(Op::Lookup),
        2 => key().prop_map(Op::Delete),
        2 => prop::option::of(key()).prop_map(Op::Next),
        1 => key().prop_map(Op::LookupAndDelete),
    ];
    run_ops(
        "stack_trace",
        || Pair::new(MapType::StackTrace, 16, 3, 0),
        prop::collection::vec(op, 1..30),
    );
}
