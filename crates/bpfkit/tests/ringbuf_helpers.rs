//! `bpf_ringbuf_reserve`, `bpf_ringbuf_submit`, `bpf_ringbuf_discard` and
//! `bpf_ringbuf_query` called from programs: records reach the consumer in order with the
//! bytes the program wrote, discarded ones are skipped, a reservation the ring cannot hold (or
//! one with flags) is NULL, and the query reports the positions kernel/bpf/ringbuf.c defines.
//! The kernel's verifier must accept the same programs (checked when `bpf()` is available),
//! and must reject a program that leaks its reservation, as bpfkit's does.

mod prog_util;

use bpfkit::maps::{MapAttr, MapType};
use bpfkit::{Bpf, Fd};
use bpfkit_isa::Insn;
use bpfkit_kernel::{map_create, names};
use bpfkit_verifier::env::ProgType;
use prog_util::*;

/// Reserves `size` bytes (flags `flags`); on NULL returns 1. Otherwise writes the raw
/// tracepoint's first argument at offset 0 (when size >= 8), then discards the record when
/// the argument is odd or submits it, and returns `bpf_ringbuf_query(rb, query)`.
fn program(map: i32, size: i32, flags: i32, query: i32) -> Vec<Insn> {
    let mut p = vec![
        Insn::new(0x79, 6, 1, 0, 0), // r6 = arg0
    ];
    p.extend(ld_map(1, map));
    p.push(mov(2, size));
    p.push(mov(3, flags));
    p.push(call(131)); // bpf_ringbuf_reserve
    p.push(Insn::new(0x55, 0, 0, 2, 0)); // if r0 != 0 goto +2
    p.push(mov(0, 1));
    p.push(exit());
    p.push(mov_reg(1, 0));
    if size >= 8 {
        p.push(stx_dw(0, 6, 0)); // *(u64 *)(r0 + 0) = r6
    }
    p.push(mov(2, 0));
    p.push(mov_reg(7, 6));
    p.push(Insn::new(0x57, 7, 0, 0, 1)); // r7 &= 1
    p.push(Insn::new(0x15, 7, 0, 2, 0)); // if r7 == 0 goto +2
    p.push(call(133)); // bpf_ringbuf_discard
    p.push(Insn::new(0x05, 0, 0, 1, 0)); // goto +1
    p.push(call(132)); // bpf_ringbuf_submit
    p.extend(ld_map(1, map));
    p.push(mov(2, query));
    p.push(call(134)); // bpf_ringbuf_query
    p.push(exit());
    p
}

fn setup(size: i32, flags: i32, query: i32) -> (Bpf, Fd, Fd) {
    let bpf = Bpf::new();
    let map = bpf
        .map_create(&MapAttr::new(MapType::RingBuf, 0, 0, 4096))
        .expect("ring buffer");
    let prog = load(
        &bpf,
        ProgType::RawTracepoint,
        &program(map.0 as i32, size, flags, query),
    )
    .expect("bpfkit accepts");
    (bpf, map, prog)
}

fn event(bpf: &Bpf, prog: Fd, arg: u64) -> u64 {
    bpf.prog_run_tracing(prog, &arg.to_le_bytes(), false)
        .expect("run")
}

#[test]
fn submitted_records_arrive_in_order_and_discarded_ones_do_not() {
    // BPF_RB_PROD_POS: each record takes 8 (header) + 16 bytes.
    let (bpf, map, prog) = setup(16, 0, 3);
    let mut expected = Vec::new();
    for (i, arg) in [10u64, 11, 12, 13, 100, 7, 8].into_iter().enumerate() {
        let prod = event(&bpf, prog, arg);
        assert_eq!(
            prod,
            24 * (i as u64 + 1),
            "producer position after event {i}"
        );
        if arg % 2 == 0 {
            let mut rec = arg.to_le_bytes().to_vec();
            rec.extend([0u8; 8]);
            expected.push(rec);
        }
    }
    let m = bpf.map(map).expect("map");
    let rb = m.as_ringbuf().expect("ring buffer");
    let mut got = Vec::new();
    rb.consume(|r| got.push(r[..8].to_vec()));
    let expected: Vec<Vec<u8>> = expected.iter().map(|r| r[..8].to_vec()).collect();
    assert_eq!(got, expected);
}

#[test]
fn reservations_that_cannot_be_made_are_null() {
    // Flags other than 0 make the reservation fail: the program returns 1.
    let (bpf, _, prog) = setup(16, 1, 0);
    assert_eq!(event(&bpf, prog, 2), 1);
    // A 4096-byte ring holds records of at most 4096 - 8 - 1 bytes; 2048-byte records: the
    // second one fits (2056 + 2056 > 4095 does not), so the second event gets NULL.
    let (bpf, _, prog) = setup(2048, 0, 1);
    assert_eq!(event(&bpf, prog, 2), 4096, "BPF_RB_RING_SIZE");
    assert_eq!(event(&bpf, prog, 4), 1, "no room without a consumer");
}

#[test]
fn the_kernel_verifier_agrees_on_ringbuf_programs() {
    if !kernel_available() {
        return;
    }
    let kmap = map_create(names::MAP_RINGBUF, 0, 0, 4096, 0).expect("kernel ring buffer");
    let good = program(kmap.fd(), 16, 0, 3);
    kload(ProgType::RawTracepoint, &good).expect("kernel accepts");
    // Leak: reserve, never release.
    let mut leak = vec![];
    leak.extend(ld_map(1, kmap.fd()));
    leak.extend([mov(2, 8), mov(3, 0), call(131), mov(0, 0), exit()]);
    assert!(
        kload(ProgType::RawTracepoint, &leak).is_err(),
        "the kernel rejects a leaked reservation"
    );
    let bpf = Bpf::new();
    let map = bpf
        .map_create(&MapAttr::new(MapType::RingBuf, 0, 0, 4096))
        .expect("ring buffer");
    let mut leak = vec![];
    leak.extend(ld_map(1, map.0 as i32));
    leak.extend([mov(2, 8), mov(3, 0), call(131), mov(0, 0), exit()]);
    assert!(
        load(&bpf, ProgType::RawTracepoint, &leak).is_err(),
        "bpfkit rejects a leaked reservation"
    );
}
