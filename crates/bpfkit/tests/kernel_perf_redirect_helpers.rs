//! The bodies of `bpf_redirect_map`, `bpf_perf_event_output` and `bpf_get_stackid` /
//! `bpf_get_stack`.
//!
//! Against the kernel (`BPF_PROG_TEST_RUN`, same program, same maps): the verdict
//! `bpf_redirect_map` returns for every key × flags of a grid, on a devmap and a devmap_hash
//! holding lo (ifindex 1); the errors `bpf_perf_event_output` returns from socket, tc, XDP and
//! raw tracepoint programs for indexes, flags and packet lengths (an empty perf event array,
//! sized to the possible CPUs, so that no answer depends on the CPU the kernel runs the test
//! on). Skips those, saying why, where `bpf()` is unavailable.
//!
//! In bpfkit alone (expected values from the test's own data): the samples user space reads
//! are the program's bytes followed by the packet's first bytes, and `bpf_get_stackid` stores
//! the call chain the event source gave.
#![expect(clippy::unwrap_used, reason = "in tests a panic is the failure report")]

mod prog_util;

use bpfkit::helpers::stack::{with_call_chain, CallChain};
use bpfkit::maps::{cpu, MapAttr, MapType};
use bpfkit::prog::load::ProgLoadAttr;
use bpfkit::prog::run::TestRunAttr;
use bpfkit::{Bpf, Fd};
use bpfkit_isa::Insn;
use bpfkit_kernel as kernel;
use bpfkit_verifier::env::ProgType;

fn kernel_ok() -> bool {
    match kernel::available() {
        Ok(()) => true,
        Err(why) => {
            println!("skipped: {why}");
            false
        }
    }
}

fn ld_imm64(dst: u8, src: u8, imm: u64) -> [Insn; 2] {
    [
        Insn::new(0x18, dst, src, 0, imm as u32 as i32),
        Insn::new(0, 0, 0, 0, (imm >> 32) as u32 as i32),
    ]
}

/// `r0 = bpf_redirect_map(map, key, flags); exit`.
fn redirect_prog(map_fd: i32, key: u64, flags: u64) -> Vec<Insn> {
    let mut p = Vec::new();
    p.extend(ld_imm64(1, 1, map_fd as u32 as u64));
    p.extend(ld_imm64(2, 0, key));
    p.extend(ld_imm64(3, 0, flags));
    p.push(Insn::new(0x85, 0, 0, 0, 51));
    p.push(Insn::new(0x95, 0, 0, 0, 0));
    p
}

/// Stores 8 bytes `0x1122334455667788` at fp-8, then
/// `r0 = bpf_perf_event_output(ctx, map, flags, fp - 8, 8); exit`.
fn output_prog(map_fd: i32, flags: u64) -> Vec<Insn> {
    let mut p = vec![Insn::new(0xbf, 6, 1, 0, 0)];
    p.extend(ld_imm64(1, 0, 0x1122_3344_5566_7788));
    p.push(Insn::new(0x7b, 10, 1, -8, 0));
    p.push(Insn::new(0xbf, 1, 6, 0, 0));
    p.extend(ld_imm64(2, 1, map_fd as u32 as u64));
    p.extend(ld_imm64(3, 0, flags));
    p.push(Insn::new(0xbf, 4, 10, 0, 0));
    p.push(Insn::new(0x07, 4, 0, 0, -8));
    p.push(Insn::new(0xb7, 5, 0, 0, 8));
    p.push(Insn::new(0x85, 0, 0, 0, 25));
    p.push(Insn::new(0x95, 0, 0, 0, 0));
    p
}

/// A 64-byte IPv4/UDP-looking frame: the bytes only need to be a packet.
fn packet() -> Vec<u8> {
    let mut p = vec![0u8; 64];
    p[12] = 0x08;
    for (i, b) in p.iter_mut().enumerate().skip(14) {
        *b = i as u8;
    }
    p
}

fn bpfkit_load(bpf: &Bpf, t: ProgType, insns: &[Insn]) -> Fd {
    let attr = ProgLoadAttr {
        prog_type: t,
        insns,
        license: "GPL",
        log_level: 1,
        log_size: 1 << 20,
    };
    match bpf.prog_load(&attr) {
        Ok(l) => l.fd,
        Err(e) => panic!("bpfkit refused the program: {}", e.log),
    }
}

fn bpfkit_run(bpf: &Bpf, fd: Fd, t: ProgType, data: &[u8]) -> u32 {
    if t == ProgType::RawTracepoint {
        return bpf.prog_run_tracing(fd, &[], true).unwrap() as u32;
    }
    let attr = TestRunAttr {
        data_in: data,
        repeat: 1,
        checked: true,
        ctx_in: None,
        data_size_out: 0,
    };
    bpf.prog_test_run(fd, &attr).unwrap().retval
}

fn kernel_run(t: ProgType, insns: &[Insn], data: &[u8]) -> u32 {
    let loaded = kernel::ProgLoad::new(t.kernel_id()).load(insns);
    let prog = loaded
        .result
        .unwrap_or_else(|e| panic!("kernel refused the program ({e:?}): {}", loaded.log));
    if t == ProgType::RawTracepoint {
        // No data, no repeat: what a raw tracepoint test run accepts.
        let run = prog_util::raw_test_run(&prog, &prog_util::RawAttr::default());
        assert_eq!(run.errno, 0, "raw tracepoint test run");
        return run.retval;
    }
    kernel::prog_test_run(&prog, data, None, 1).unwrap().retval
}

#[test]
fn redirect_map_returns_what_the_kernel_returns() {
    if !kernel_ok() {
        return;
    }
    let lo = 1u32.to_ne_bytes();
    let keys = [0u64, 1, 2, 3, 4, 7, 0xffff_ffff, 1 << 32, (1 << 32) | 7];
    let flags = [
        0u64,
        1,
        2,
        3,
        4,
        5,
        8,
        9,
        16,
        8 | 16,
        8 | 16 | 2,
        32,
        1 << 40,
    ];
    let mut compared = 0;
    for t in [MapType::DevMap, MapType::DevMapHash, MapType::CpuMap] {
        let bpf = Bpf::new();
        let fd = bpf.map_create(&MapAttr::new(t, 4, 4, 4)).unwrap();
        let kmap = kernel::map_create(t.raw(), 4, 4, 4, 0).unwrap();
        // Devices under keys 0 and 2 (array), 7 and 2 (hash); a queue of 1 for CPU 0.
        let stored: &[u32] = match t {
            MapType::DevMap => &[0, 2],
            MapType::DevMapHash => &[7, 2],
            _ => &[0],
        };
        for k in stored {
            bpf.map_update_elem(fd, &k.to_ne_bytes(), &lo, 0).unwrap();
            kernel::map_update(&kmap, &k.to_ne_bytes(), &lo, 0).unwrap();
        }
        for &key in &keys {
            for &f in &flags {
                let ours = redirect_prog(fd.0 as i32, key, f);
                let pfd = bpfkit_load(&bpf, ProgType::Xdp, &ours);
                let a = bpfkit_run(&bpf, pfd, ProgType::Xdp, &packet());
                let b = kernel_run(ProgType::Xdp, &redirect_prog(kmap.fd(), key, f), &packet());
                assert_eq!(a, b, "{} key {key:#x} flags {f:#x}", t.name());
                compared += 1;
                bpf.close(pfd).unwrap();
            }
        }
    }
    println!("{compared} bpf_redirect_map calls return what the kernel's return");
}

#[test]
fn perf_event_output_errors_match_the_kernel() {
    if !kernel_ok() {
        return;
    }
    let ncpus = cpu::possible_cpus();
    let ctx = |n: u64| n << 32;
    let flags = [
        0u64,             // an empty slot: -ENOENT
        u64::from(ncpus), // past the end: -E2BIG
        0xffff_ffff,      // BPF_F_CURRENT_CPU, empty: -ENOENT
        1 << 52,          // not an index or length bit: -EINVAL
        ctx(14),          // packet bytes for packet programs, -EINVAL for tracing
        ctx(14) | u64::from(ncpus),
        ctx(64), // the whole packet
        ctx(65), // more than the packet: -EFAULT
        ctx(0xfffff),
    ];
    let mut compared = 0;
    for t in [
        ProgType::SocketFilter,
        ProgType::SchedCls,
        ProgType::Xdp,
        ProgType::RawTracepoint,
    ] {
        let bpf = Bpf::new();
        let fd = bpf
            .map_create(&MapAttr::new(MapType::PerfEventArray, 4, 4, ncpus))
            .unwrap();
        let kmap = kernel::map_create(MapType::PerfEventArray.raw(), 4, 4, ncpus, 0).unwrap();
        for &f in &flags {
            let pfd = bpfkit_load(&bpf, t, &output_prog(fd.0 as i32, f));
            let a = bpfkit_run(&bpf, pfd, t, &packet());
            let b = kernel_run(t, &output_prog(kmap.fd(), f), &packet());
            assert_eq!(a as i32, b as i32, "{t} flags {f:#x}");
            compared += 1;
        }
    }
    println!("{compared} bpf_perf_event_output calls return what the kernel's return");
}

#[test]
fn samples_hold_the_data_then_the_packet_bytes_asked_for() {
    let bpf = Bpf::new();
    let ncpus = cpu::possible_cpus();
    let map = bpf
        .map_create(&MapAttr::new(MapType::PerfEventArray, 4, 4, ncpus))
        .unwrap();
    let mut events = Vec::new();
    for c in 0..ncpus {
        let ev = bpf.perf_event_open(c, 1).unwrap();
        bpf.map_update_elem(map, &c.to_ne_bytes(), &ev.0.to_ne_bytes(), 0)
            .unwrap();
        events.push(bpf.perf_event(ev).unwrap());
    }
    let pkt = packet();
    let data = 0x1122_3344_5566_7788u64.to_ne_bytes();
    for (t, len) in [
        (ProgType::SchedCls, 14u64),
        (ProgType::Xdp, 20),
        (ProgType::SocketFilter, 0),
    ] {
        // BPF_F_CURRENT_CPU with `len` packet bytes.
        let pfd = bpfkit_load(&bpf, t, &output_prog(map.0 as i32, 0xffff_ffff | len << 32));
        assert_eq!(bpfkit_run(&bpf, pfd, t, &pkt), 0, "{t}");
        let samples: Vec<Vec<u8>> = events.iter().flat_map(|e| e.read()).collect();
        let mut want = data.to_vec();
        want.extend_from_slice(&pkt[..len as usize]);
        assert_eq!(samples, vec![want], "{t}");
    }
    // An index naming another CPU's event: the event is not on this CPU.
    cpu::set_current_cpu(0);
    if ncpus > 1 {
        let pfd = bpfkit_load(&bpf, ProgType::SchedCls, &output_prog(map.0 as i32, 1));
        assert_eq!(bpfkit_run(&bpf, pfd, ProgType::SchedCls, &pkt) as i32, -95);
    }
    // A full ring: -ENOSPC, and the sample counts as lost.
    let pfd = bpfkit_load(&bpf, ProgType::SchedCls, &output_prog(map.0 as i32, 0));
    let results: Vec<i32> = (0..200)
        .map(|_| bpfkit_run(&bpf, pfd, ProgType::SchedCls, &pkt) as i32)
        .collect();
    // 24 bytes a sample in a 4096-byte ring.
    assert_eq!(results.iter().filter(|&&r| r == 0).count(), 4096 / 24);
    assert!(results[4096 / 24..].iter().all(|&r| r == -28));
    assert_eq!(events[0].lost(), 200 - 4096 / 24);
}

#[test]
fn get_stackid_stores_the_event_call_chain() {
    let bpf = Bpf::new();
    let map = bpf
        .map_create(&MapAttr::new(MapType::StackTrace, 4, 32, 8))
        .unwrap();
    // r0 = bpf_get_stackid(ctx, map, 1 /* skip one frame */); exit
    let mut p = Vec::new();
    p.extend(ld_imm64(2, 1, u64::from(map.0)));
    p.push(Insn::new(0xb7, 3, 0, 0, 1));
    p.push(Insn::new(0x85, 0, 0, 0, 27));
    p.push(Insn::new(0x95, 0, 0, 0, 0));
    let pfd = bpfkit_load(&bpf, ProgType::Kprobe, &p);
    let chain = CallChain {
        kernel: vec![
            0xffff_ffff_8100_1000,
            0xffff_ffff_8100_2000,
            0xffff_ffff_8100_3000,
        ],
        user: Vec::new(),
    };
    let id = with_call_chain(chain.clone(), || {
        bpf.prog_run_tracing(pfd, &[], true).unwrap()
    });
    assert!(id < 8, "stack id {id}");
    let stored = bpf.map_lookup(map, &(id as u32).to_ne_bytes()).unwrap();
    let mut want: Vec<u8> = chain.kernel[1..]
        .iter()
        .flat_map(|ip| ip.to_ne_bytes())
        .collect();
    want.resize(32, 0);
    assert_eq!(stored, want);
    // Without a chain there are no frames to skip into: -EFAULT.
    assert_eq!(bpf.prog_run_tracing(pfd, &[], true).unwrap() as i64, -14);
}
