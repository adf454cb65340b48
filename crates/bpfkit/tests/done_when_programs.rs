//! Two of issue 5's sample programs as raw-instruction tests (sockex1 and the sockex3-style
//! tail-call parser are in `kernel_test_run.rs`):
//!
//! - a tc packet rewriter that changes the IPv4 destination address and the TCP/UDP
//!   destination port with `bpf_skb_store_bytes` and fixes both checksums with
//!   `bpf_l3_csum_replace` / `bpf_l4_csum_replace`. The output's checksums are verified from
//!   scratch (RFC 1071 sums over the header and the pseudo header) and the whole output frame
//!   must equal the input frame rewritten and re-checksummed natively; where `bpf()` is
//!   available the kernel's test run must give the same bytes;
//! - a drop counter on the `skb:kfree_skb` tracepoint: a hash map keyed by drop location,
//!   counted over a synthetic event stream (also from several threads at once, with atomic
//!   adds); the expected counts come from counting the stream natively.

mod prog_util;

use bpfkit::maps::{MapAttr, MapType};
use bpfkit::{Bpf, Fd};
use bpfkit_isa::Insn;
use bpfkit_verifier::env::ProgType;
use prog_util::*;
use std::collections::HashMap;

/// The new destination: 10.1.2.3, port 8080.
const NEW_ADDR: [u8; 4] = [10, 1, 2, 3];
const NEW_PORT: u16 = 8080;

/// `BPF_F_PSEUDO_HDR`, `BPF_F_MARK_MANGLED_0`.
const PSEUDO_HDR: i32 = 1 << 4;
const MANGLED_0: i32 = 1 << 5;

/// The rewriter. Frames: Ethernet + IPv4 without options + TCP or UDP.
///
/// ```text
/// r6 = ctx
/// load_bytes(ctx, 23, fp-8, 1)            ; IP protocol
/// r8 = 50 (TCP check) or 40 (UDP check); r9 = csum flags (UDP: MARK_MANGLED_0)
/// load_bytes(ctx, 30, fp-16, 4)           ; old daddr
/// load_bytes(ctx, 36, fp-24, 2)           ; old dport
/// l4_csum_replace(ctx, r8, old, new, r9 | PSEUDO_HDR | 4)
/// l3_csum_replace(ctx, 24, old, new, 4)
/// store_bytes(ctx, 30, &new, 4, 0)
/// l4_csum_replace(ctx, r8, oldport, newport, r9 | 2)
/// store_bytes(ctx, 36, &newport, 2, 0)
/// return TC_ACT_OK (0)
/// ```
fn rewriter() -> Vec<Insn> {
    let new_addr = u32::from_le_bytes(NEW_ADDR);
    let new_port = u16::from_le_bytes(NEW_PORT.to_be_bytes());
    let load = |off: i32, fp: i16, len: i32| {
        vec![
            mov_reg(1, 6),
            mov(2, off),
            mov_reg(3, 10),
            add(3, i32::from(fp)),
            mov(4, len),
            call(26),
        ]
    };
    let mut p = vec![mov_reg(6, 1), Insn::new(0x7a, 10, 0, -8, 0)];
    p.extend(load(23, -8, 1));
    p.extend([
        Insn::new(0x71, 7, 10, -8, 0), // r7 = proto
        mov(8, 50),                    // TCP: check at 14 + 20 + 16
        mov(9, 0),
        Insn::new(0x15, 7, 0, 5, 6),  // if r7 == TCP goto common
        Insn::new(0x15, 7, 0, 2, 17), // if r7 == UDP goto udp
        mov(0, 0),                    // neither: leave the packet alone
        exit(),
        mov(8, 40), // udp: check at 14 + 20 + 6, a zero result written as 0xffff
        mov(9, MANGLED_0),
        Insn::new(0x7a, 10, 0, -16, 0), // common:
        Insn::new(0x7a, 10, 0, -24, 0),
    ]);
    p.extend(load(30, -16, 4));
    p.extend(load(36, -24, 2));
    // l4: address (pseudo header).
    p.extend([
        mov_reg(1, 6),
        mov_reg(2, 8),
        ldx_w(3, 10, -16),
        mov(4, new_addr as i32),
        mov_reg(5, 9),
        Insn::new(0x47, 5, 0, 0, PSEUDO_HDR | 4), // r5 |= PSEUDO_HDR | 4
        call(11),
    ]);
    // l3: address.
    p.extend([
        mov_reg(1, 6),
        mov(2, 24),
        ldx_w(3, 10, -16),
        mov(4, new_addr as i32),
        mov(5, 4),
        call(10),
    ]);
    // store the address.
    p.extend([
        Insn::new(0x62, 10, 0, -32, new_addr as i32),
        mov_reg(1, 6),
        mov(2, 30),
        mov_reg(3, 10),
        add(3, -32),
        mov(4, 4),
        mov(5, 0),
        call(9),
    ]);
    // l4: port.
    p.extend([
        mov_reg(1, 6),
        mov_reg(2, 8),
        Insn::new(0x69, 3, 10, -24, 0), // r3 = *(u16 *)(fp - 24)
        mov(4, i32::from(new_port)),
        mov_reg(5, 9),
        Insn::new(0x47, 5, 0, 0, 2),
        call(11),
    ]);
    // store the port.
    p.extend([
        Insn::new(0x6a, 10, 0, -40, i32::from(new_port)),
        mov_reg(1, 6),
        mov(2, 36),
        mov_reg(3, 10),
        add(3, -40),
        mov(4, 2),
        mov(5, 0),
        call(9),
        mov(0, 0),
        exit(),
    ]);
    p
}

/// The input rewritten natively: new address and port, both checksums recomputed.
fn expected(frame: &[u8]) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[30..34].copy_from_slice(&NEW_ADDR);
    f[36..38].copy_from_slice(&NEW_PORT.to_be_bytes());
    let c = ipv4_checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    let (proto, at) = if f[23] == 6 { (6, 50) } else { (17, 40) };
    let c = l4_checksum(&f[14..34], &f[34..], proto);
    let c = if proto == 17 && c == 0 { 0xffff } else { c };
    f[at..at + 2].copy_from_slice(&c.to_be_bytes());
    f
}

fn frames() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for n in [0usize, 1, 7, 64, 333] {
        let payload: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
        v.push(udp_frame(&payload));
        v.push(tcp_frame(&payload));
    }
    v
}

#[test]
fn csum_fixing_rewriter_produces_valid_checksums() {
    let bpf = Bpf::new();
    let fd = load(&bpf, ProgType::SchedCls, &rewriter()).expect("bpfkit accepts");
    for frame in frames() {
        let out = run(&bpf, fd, &frame, None).expect("run");
        assert_eq!(out.retval, 0);
        let f = &out.data_out;
        assert_eq!(&f[30..34], &NEW_ADDR, "destination address rewritten");
        assert_eq!(
            &f[36..38],
            &NEW_PORT.to_be_bytes(),
            "destination port rewritten"
        );
        // A correct IPv4 header sums to 0xffff; so does a segment with its pseudo header.
        assert_eq!(
            ones_sum(&f[14..34], 0),
            0xffff,
            "IPv4 header checksum verifies"
        );
        let mut pseudo = f[26..34].to_vec();
        let seg = &f[34..];
        pseudo.extend([0, f[23], (seg.len() >> 8) as u8, seg.len() as u8]);
        assert_eq!(
            ones_sum(seg, ones_sum(&pseudo, 0)),
            0xffff,
            "L4 checksum verifies"
        );
        assert_eq!(f, &expected(&frame), "whole frame");
    }
}

#[test]
fn csum_fixing_rewriter_matches_the_kernel() {
    if !kernel_available() {
        return;
    }
    let kprog = kload(ProgType::SchedCls, &rewriter()).expect("kernel accepts");
    let bpf = Bpf::new();
    let fd = load(&bpf, ProgType::SchedCls, &rewriter()).expect("bpfkit accepts");
    for frame in frames() {
        let k = bpfkit_kernel::prog_test_run(&kprog, &frame, None, 1).expect("kernel run");
        let ours = run(&bpf, fd, &frame, None).expect("run");
        assert_eq!((ours.retval, &ours.data_out), (k.retval, &k.data_out));
    }
}

/// The `skb:kfree_skb` record (tracing/events/skb/kfree_skb/format): common fields (8
/// bytes), `skbaddr` at 8, `location` at 16, `protocol` at 24, `reason` at 28.
fn kfree_skb_record(location: u64, protocol: u16, reason: u32) -> Vec<u8> {
    let mut r = vec![0u8; 40];
    r[0..2].copy_from_slice(&1234u16.to_le_bytes()); // common_type
    r[8..16].copy_from_slice(&0xffff_8880_1234_5600u64.to_le_bytes());
    r[16..24].copy_from_slice(&location.to_le_bytes());
    r[24..26].copy_from_slice(&protocol.to_le_bytes());
    r[28..32].copy_from_slice(&reason.to_le_bytes());
    r
}

/// ```text
/// key = ctx->location
/// v = lookup(map, &key); if v: lock *v += 1; return 0
/// one = 1; update(map, &key, &one, BPF_NOEXIST)
/// if that failed (another CPU inserted first): v = lookup; if v: lock *v += 1
/// return 0
/// ```
fn drop_counter(map: i32) -> Vec<Insn> {
    let lookup_and_add = |skip_to_exit: i16| {
        let mut p = Vec::new();
        p.extend(ld_map(1, map));
        p.push(mov_reg(2, 10));
        p.push(add(2, -8));
        p.push(call(1));
        p.push(Insn::new(0x15, 0, 0, 3, 0)); // if r0 == 0 goto +3
        p.push(mov(1, 1));
        p.push(Insn::new(0xdb, 0, 1, 0, 0)); // lock *(u64 *)(r0 + 0) += r1
        p.push(Insn::new(0x05, 0, 0, skip_to_exit, 0));
        p
    };
    let mut p = vec![
        Insn::new(0x79, 2, 1, 16, 0), // r2 = ctx->location
        stx_dw(10, 2, -8),
    ];
    // Found: jump to the final `r0 = 0; exit` (past the 10-slot update block and the 9-slot
    // retry).
    p.extend(lookup_and_add(19));
    p.extend([
        Insn::new(0x7a, 10, 0, -16, 1), // *(u64 *)(fp - 16) = 1
    ]);
    p.extend(ld_map(1, map));
    p.extend([
        mov_reg(2, 10),
        add(2, -8),
        mov_reg(3, 10),
        add(3, -16),
        mov(4, 1), // BPF_NOEXIST
        call(2),
        Insn::new(0x15, 0, 0, 9, 0), // if r0 == 0 goto exit (+9)
    ]);
    p.extend(lookup_and_add(0));
    p.extend([mov(0, 0), exit()]);
    p
}

/// A synthetic stream of drops: a few hot locations and a tail of rare ones.
fn events(n: usize, seed: u64) -> Vec<u64> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match x % 10 {
                0..=4 => 0xffff_ffff_8100_0000,
                5..=7 => 0xffff_ffff_8100_1234,
                _ => 0xffff_ffff_8200_0000 + (x >> 8) % 13 * 0x40,
            }
        })
        .collect()
}

fn counts_in_map(bpf: &Bpf, map: Fd) -> HashMap<u64, u64> {
    let mut out = HashMap::new();
    let mut key = None;
    while let Ok(next) = bpf.map_next_key(map, key.as_deref()) {
        let value = bpf.map_lookup(map, &next).expect("value");
        let k = u64::from_le_bytes(next[..8].try_into().expect("8-byte key"));
        let v = u64::from_le_bytes(value[..8].try_into().expect("8-byte value"));
        out.insert(k, v);
        key = Some(next);
    }
    out
}

fn native_counts(stream: &[u64]) -> HashMap<u64, u64> {
    let mut m = HashMap::new();
    for &loc in stream {
        *m.entry(loc).or_insert(0) += 1;
    }
    m
}

#[test]
fn tracepoint_drop_counter_counts_by_location() {
    let bpf = Bpf::new();
    let map = bpf
        .map_create(&MapAttr::new(MapType::Hash, 8, 8, 1024))
        .expect("hash map");
    let fd = load(&bpf, ProgType::Tracepoint, &drop_counter(map.0 as i32)).expect("accepts");
    let stream = events(5000, 42);
    for (i, &loc) in stream.iter().enumerate() {
        let rec = kfree_skb_record(loc, 0x0800, 2);
        let checked = i % 7 == 0;
        assert_eq!(bpf.prog_run_tracing(fd, &rec, checked).expect("run"), 0);
    }
    assert_eq!(counts_in_map(&bpf, map), native_counts(&stream));
    // A record shorter than the field the program reads is refused.
    assert_eq!(
        bpf.prog_run_tracing(fd, &[0u8; 20], false)
            .map_err(|e| e.code()),
        Err(22)
    );
}

#[test]
fn tracepoint_drop_counter_loses_no_count_across_threads() {
    let bpf = Bpf::new();
    let map = bpf
        .map_create(&MapAttr::new(MapType::Hash, 8, 8, 1024))
        .expect("hash map");
    let fd = load(&bpf, ProgType::Tracepoint, &drop_counter(map.0 as i32)).expect("accepts");
    let streams: Vec<Vec<u64>> = (0..4).map(|t| events(4000, 7 + t)).collect();
    std::thread::scope(|s| {
        for stream in &streams {
            let bpf = &bpf;
            s.spawn(move || {
                for &loc in stream {
                    let rec = kfree_skb_record(loc, 0x86dd, 3);
                    bpf.prog_run_tracing(fd, &rec, false).expect("run");
                }
            });
        }
    });
    let all: Vec<u64> = streams.concat();
    assert_eq!(counts_in_map(&bpf, map), native_counts(&all));
}

#[test]
fn the_kernel_verifier_accepts_the_drop_counter() {
    if !kernel_available() {
        return;
    }
    let kmap = bpfkit_kernel::map_create(bpfkit_kernel::names::MAP_HASH, 8, 8, 1024, 0)
        .expect("kernel hash map");
    kload(ProgType::Tracepoint, &drop_counter(kmap.fd())).expect("kernel accepts");
}
