//! `bpf_ringbuf_reserve`, `bpf_ringbuf_submit`, `bpf_ringbuf_discard` and
//! `bpf_ringbuf_query` called from programs: records reach the consumer in order with the
//! bytes the program wrote, discarded ones are skipped, a reservation the ring cannot hold (or
//! one with flags) is NULL, and the query reports the positions kernel/bpf/ringbuf.c defines.
//! The kernel's verifier must accept the same programs (checked when `bpf()` is available),
//! and must reject a program that leaks its reservation, as bpfkit's does; and the kernel, run
//! on the same events (`BPF_PROG_TEST_RUN` of the raw tracepoint program, its ring buffer read
//! through `mmap`), must give the same return values and records.

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

/// Records of a kernel ring buffer map of `size` bytes, read through its mmap'ed pages from
/// the consumer position to the producer position: (header `len` with its bits, data).
fn kernel_records(fd: i32, size: usize) -> Vec<(u32, Vec<u8>)> {
    const PAGE: usize = 4096;
    // SAFETY: mapping a ring buffer map's producer pages read-only at offset PAGE, as libbpf
    // does; the length is the producer page plus the data area mapped twice.
    let prod = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            PAGE + 2 * size,
            libc::PROT_READ,
            libc::MAP_SHARED,
            fd,
            PAGE as libc::off_t,
        )
    };
    // SAFETY: the consumer page, read-only (we only read the position).
    let cons = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            PAGE,
            libc::PROT_READ,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    assert!(
        prod != libc::MAP_FAILED && cons != libc::MAP_FAILED,
        "mmap ring buffer"
    );
    // SAFETY: both mappings are at least one page; positions are u64 at their starts; the data
    // area follows the producer page and is mapped twice, so a record never wraps.
    let out = unsafe {
        let mut c = *(cons as *const u64);
        let p = *(prod as *const u64);
        let data = (prod as *const u8).add(PAGE);
        let mut out = Vec::new();
        while c < p {
            let at = data.add((c as usize) & (size - 1));
            let len = *(at as *const u32);
            let n = (len & !(3 << 30)) as usize;
            out.push((len, std::slice::from_raw_parts(at.add(8), n).to_vec()));
            c += ((n + 8).div_ceil(8) * 8) as u64;
        }
        libc::munmap(prod, PAGE + 2 * size);
        libc::munmap(cons, PAGE);
        out
    };
    out
}

#[test]
fn programs_give_the_kernels_records_and_returns() {
    if !kernel_available() {
        return;
    }
    let events = [10u64, 11, 12, 13, 100, 7, 8, 9, 4, 2];
    for (size, flags, query) in [(16, 0, 3), (8, 0, 0), (2048, 0, 1), (16, 1, 3), (0, 0, 2)] {
        let kmap = map_create(names::MAP_RINGBUF, 0, 0, 4096, 0).expect("kernel ring buffer");
        let kprog = kload(
            ProgType::RawTracepoint,
            &program(kmap.fd(), size, flags, query),
        )
        .expect("kernel accepts");
        let (bpf, map, prog) = setup(size, flags, query);
        for &arg in &events {
            let args = arg.to_le_bytes();
            let k = raw_test_run(
                &kprog,
                &RawAttr {
                    ctx_in: &args,
                    ..RawAttr::default()
                },
            );
            assert_eq!(k.errno, 0, "kernel run");
            let ours = event(&bpf, prog, arg);
            assert_eq!(
                ours,
                u64::from(k.retval),
                "size {size} flags {flags} event {arg}"
            );
        }
        let theirs = kernel_records(kmap.fd(), 4096);
        let m = bpf.map(map).expect("map");
        let rb = m.as_ringbuf().expect("ring buffer");
        let mut ours = Vec::new();
        rb.consume(|r| ours.push(r.to_vec()));
        let submitted: Vec<Vec<u8>> = theirs
            .iter()
            .filter(|(len, _)| len & (3 << 30) == 0)
            .map(|(_, d)| d.clone())
            .collect();
        assert_eq!(
            ours, submitted,
            "size {size} flags {flags}: submitted records"
        );
        if size == 16 && flags == 0 {
            assert_eq!(ours.len(), 6, "the even events' records");
        }
    }
}
