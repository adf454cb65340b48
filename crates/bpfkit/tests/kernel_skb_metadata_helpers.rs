//! Differential tests of the tc helpers that change skb metadata: `bpf_skb_vlan_push`,
//! `bpf_skb_vlan_pop`, `bpf_skb_set_tunnel_key`, `bpf_skb_get_tunnel_key` and
//! `bpf_clone_redirect`, against the live kernel.
//!
//! Each sched_cls program runs a random sequence of helper calls on a random frame, stores
//! every return value and the skb fields they change (`vlan_present`, `vlan_tci`,
//! `vlan_proto`, `protocol`, `len`, packet bytes read with `LD_ABS` / `LD_IND` after each
//! call, or the tunnel key read back) in an array map, and returns.
//! The kernel's `BPF_PROG_TEST_RUN` and bpfkit's must agree on the return value, the output
//! packet and the map value. Skips, saying why, where `bpf()` is unavailable.

mod prog_util;

use bpfkit::maps::{MapAttr, MapType};
use bpfkit::{Bpf, Fd};
use bpfkit_isa::Insn;
use bpfkit_kernel::{map_create, map_lookup, names, prog_test_run};
use bpfkit_verifier::env::ProgType;
use prog_util::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Bytes of the result record each program writes to its map.
const RECORD: usize = 128;
/// Where the record is built on the stack.
const REC: i16 = -128;

/// Zeroes the record, then runs `body` (which may store into it), then stores the record into
/// array `map` slot 0 and returns 0 (`TC_ACT_OK`).
fn with_record(map: i32, body: Vec<Insn>) -> Vec<Insn> {
    let mut p = vec![mov_reg(6, 1)];
    for i in 0..(RECORD as i16 / 8) {
        p.push(Insn::new(0x7a, 10, 0, REC + 8 * i, 0)); // *(u64 *)(r10 + o) = 0
    }
    p.extend(body);
    p.push(Insn::new(0x62, 10, 0, REC - 4, 0)); // key = 0
    p.extend(ld_map(1, map));
    p.push(mov_reg(2, 10));
    p.push(add(2, i32::from(REC) - 4));
    p.push(mov_reg(3, 10));
    p.push(add(3, i32::from(REC)));
    p.push(mov(4, 0));
    p.push(call(2)); // bpf_map_update_elem
    p.push(mov(0, 0));
    p.push(exit());
    p
}

/// Runs the program `build(map_fd)` in both and compares retval, packet and record.
fn compare(frame: &[u8], build: &dyn Fn(i32) -> Vec<Insn>) -> Result<(), TestCaseError> {
    let kmap = map_create(names::MAP_ARRAY, 4, RECORD as u32, 1, 0)
        .map_err(|e| TestCaseError::fail(format!("kernel map {e:?}")))?;
    let kprog = kload(ProgType::SchedCls, &build(kmap.fd())).map_err(TestCaseError::fail)?;
    let krun = match prog_test_run(&kprog, frame, None, 1) {
        Ok(r) => r,
        Err(e) => {
            // The kernel refuses the frame itself: so must bpfkit, with the same errno.
            let bpf = Bpf::new();
            let fd = load(&bpf, ProgType::SchedCls, &[mov(0, 0), exit()])
                .map_err(TestCaseError::fail)?;
            let ours = run(&bpf, fd, frame, None).map(|_| ()).map_err(|e| e.code());
            prop_assert_eq!(ours, Err(e.0), "refused frame");
            return Ok(());
        }
    };
    let krec = map_lookup(&kmap, &0u32.to_le_bytes())
        .map_err(|e| TestCaseError::fail(format!("kernel lookup {e:?}")))?;

    let bpf = Bpf::new();
    let map = bpf
        .map_create(&MapAttr::new(MapType::Array, 4, RECORD as u32, 1))
        .map_err(|e| TestCaseError::fail(format!("bpfkit map {e}")))?;
    let fd = load(&bpf, ProgType::SchedCls, &build(map.0 as i32)).map_err(TestCaseError::fail)?;
    // The checked run goes second, on a fresh map state that it overwrites the same way.
    let ours = run(&bpf, fd, frame, None).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    let rec = bpf
        .map_lookup(Fd(map.0), &0u32.to_le_bytes())
        .map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(ours.retval, krun.retval, "retval");
    prop_assert_eq!(&ours.data_out, &krun.data_out, "output packet");
    prop_assert_eq!(rec, krec, "record (helper returns and skb fields)");
    Ok(())
}

/// A helper call of the VLAN sequence.
#[derive(Clone, Debug)]
enum VlanOp {
    /// `bpf_skb_vlan_push(skb, proto, tci)`; `proto` in host order.
    Push(u16, u64),
    /// `bpf_skb_vlan_pop(skb)`
    Pop,
}

fn vlan_program(map: i32, ops: &[VlanOp]) -> Vec<Insn> {
    let mut body = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        body.push(mov_reg(1, 6));
        match op {
            VlanOp::Push(proto, tci) => {
                // The __be16 argument: htons(proto).
                body.push(mov(2, i32::from(proto.swap_bytes())));
                body.extend(ld64(3, *tci));
                body.push(call(18));
            }
            VlanOp::Pop => body.push(call(19)),
        }
        body.push(stx_w(10, 0, REC + 4 * i as i16));
        // LD_ABS reads the packet as the helper left it (an out-of-range read ends the
        // program with 0, before the record is stored, in both).
        body.push(Insn::new(0x28, 0, 0, 0, 12)); // r0 = ld_abs_h [12]
        body.push(stx_w(10, 0, REC + 32 + 4 * i as i16));
    }
    body.push(mov(7, 2));
    body.push(Insn::new(0x20, 0, 0, 0, 12)); // r0 = ld_abs_w [12]
    body.push(stx_w(10, 0, REC + 84));
    body.push(Insn::new(0x50, 0, 7, 0, 14)); // r0 = ld_ind_b [r7 + 14]
    body.push(stx_w(10, 0, REC + 88));
    // vlan_present, vlan_tci, vlan_proto, protocol, len after the sequence.
    for (j, off) in [20i16, 24, 28, 16, 0].into_iter().enumerate() {
        body.push(ldx_w(0, 6, off));
        body.push(stx_w(10, 0, REC + 64 + 4 * j as i16));
    }
    with_record(map, body)
}

/// Frames with zero to three VLAN tags (802.1Q or 802.1ad) over IPv4, an 802.3 length, or
/// nothing, of random lengths from the bare tags up.
fn tagged_frame() -> impl Strategy<Value = Vec<u8>> {
    let tag = prop_oneof![Just(0x8100u16), Just(0x88a8u16)];
    (
        proptest::collection::vec((tag, any::<u16>()), 0..3),
        prop_oneof![Just(0x0800u16), Just(0x0050), Just(0x86dd)],
        proptest::collection::vec(any::<u8>(), 0..24),
        any::<[u8; 12]>(),
    )
        .prop_map(|(tags, inner, payload, macs)| {
            let mut f = macs.to_vec();
            for (tpid, tci) in &tags {
                f.extend(tpid.to_be_bytes());
                f.extend(tci.to_be_bytes());
            }
            f.extend(inner.to_be_bytes());
            f.extend(payload);
            f
        })
}

fn runner(cases: u32) -> Option<TestRunner> {
    kernel_available().then(|| {
        TestRunner::new(Config {
            cases,
            ..Config::default()
        })
    })
}

#[test]
fn vlan_push_and_pop_match_the_kernel() {
    let Some(mut runner) = runner(200) else {
        return;
    };
    let op = prop_oneof![
        (
            prop_oneof![Just(0x8100u16), Just(0x88a8), any::<u16>()],
            prop_oneof![any::<u16>().prop_map(u64::from), any::<u64>()]
        )
            .prop_map(|(p, t)| VlanOp::Push(p, t)),
        Just(VlanOp::Pop),
    ];
    let strategy = (tagged_frame(), proptest::collection::vec(op, 1..7));
    runner
        .run(&strategy, |(frame, ops)| {
            compare(&frame, &|map| vlan_program(map, &ops))
        })
        .unwrap_or_else(|e| panic!("vlan helpers differ from the kernel: {e}"));
}

/// `set_tunnel_key(key[..set_size], set_flags)` (when `set`), then
/// `get_tunnel_key(out, get_size, get_flags)`; both returns and `out` go to the record.
fn tunnel_program(map: i32, set: Option<(&[u8], u64)>, get_size: i32, get_flags: u64) -> Vec<Insn> {
    const KEY: i16 = -240;
    let mut body = Vec::new();
    if let Some((key, flags)) = set {
        body.extend(stack_bytes(KEY, key));
        body.push(mov_reg(1, 6));
        body.push(mov_reg(2, 10));
        body.push(add(2, i32::from(KEY)));
        body.push(mov(3, key.len() as i32));
        body.extend(ld64(4, flags));
        body.push(call(21));
        body.push(stx_w(10, 0, REC));
    }
    body.push(mov_reg(1, 6));
    body.push(mov_reg(2, 10));
    body.push(add(2, i32::from(REC) + 8));
    body.push(mov(3, get_size));
    body.extend(ld64(4, get_flags));
    body.push(call(20));
    body.push(stx_w(10, 0, REC + 4));
    with_record(map, body)
}

#[test]
fn tunnel_keys_match_the_kernel() {
    let Some(mut runner) = runner(300) else {
        return;
    };
    let sizes = || {
        prop_oneof![
            Just(44usize),
            Just(28),
            Just(24),
            Just(22),
            Just(8),
            Just(40),
            Just(12)
        ]
    };
    let key = (any::<[u8; 32]>(), any::<[u8; 12]>(), 0u8..4).prop_map(|(a, b, zero)| {
        let mut k = a.to_vec();
        k.extend(b);
        // Mostly a valid key: no tunnel_ext, and a label only sometimes.
        if zero > 0 {
            k[22..24].fill(0);
        }
        if zero > 1 {
            k[24..28].fill(0);
        }
        k
    });
    let flags = prop_oneof![Just(0u64), Just(1), 0u64..64];
    let strategy = (
        any::<bool>(),
        key,
        sizes(),
        flags.clone(),
        sizes(),
        prop_oneof![Just(0u64), Just(1), Just(16), Just(17), 0u64..64],
    );
    let frame = udp_frame(&[1, 2, 3, 4]);
    runner
        .run(
            &strategy,
            |(set, key, set_size, set_flags, get_size, get_flags)| {
                let set = set.then_some((&key[..set_size], set_flags));
                compare(&frame, &|map| {
                    tunnel_program(map, set, get_size as i32, get_flags)
                })
            },
        )
        .unwrap_or_else(|e| panic!("tunnel key helpers differ from the kernel: {e}"));
}

/// Interface indices present in this network namespace.
fn present_ifindexes() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/sys/class/net") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let path = e.ok()?.path().join("ifindex");
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    })
    .collect()
}

#[test]
fn clone_redirect_matches_the_kernel() {
    if !kernel_available() {
        return;
    }
    let present = present_ifindexes();
    let frame = udp_frame(b"clone me");
    let mut compared = 0;
    for ifindex in [0u64, 1, 0x7fff_fff0, 0x1_0000_0001, 999_999] {
        // Devices other than lo exist in the kernel's namespace but not in bpfkit's model.
        if ifindex as u32 != 1 && present.contains(&(ifindex as u32)) {
            continue;
        }
        for flags in [0u64, 1, 2, 1 << 4, 1 << 32] {
            let mut body = vec![mov_reg(1, 6)];
            body.extend(ld64(2, ifindex));
            body.extend(ld64(3, flags));
            body.push(call(13));
            body.push(stx_w(10, 0, REC));
            compare(&frame, &|map| with_record(map, body.clone()))
                .unwrap_or_else(|e| panic!("ifindex {ifindex:#x} flags {flags:#x}: {e}"));
            compared += 1;
        }
    }
    println!("{compared} clone_redirect calls compared with the kernel");
}

#[test]
fn clone_redirect_refuses_typeless_gso_like_the_kernel() {
    if !kernel_available() {
        return;
    }
    let prog = |_: i32| vec![mov(2, 1), mov(3, 0), call(13), exit()];
    let frame = udp_frame(b"gso");
    let kprog = kload(ProgType::SchedCls, &prog(0)).expect("kernel load");
    let bpf = Bpf::new();
    let fd = load(&bpf, ProgType::SchedCls, &prog(0)).expect("bpfkit load");
    for gso_size in [0u32, 1400] {
        let mut ctx = vec![0u8; 192];
        ctx[176..180].copy_from_slice(&gso_size.to_le_bytes());
        let k = raw_test_run(
            &kprog,
            &RawAttr {
                data_in: &frame,
                data_out: 4096,
                ctx_in: &ctx,
                ctx_out: 192,
                ..RawAttr::default()
            },
        );
        assert_eq!(k.errno, 0, "kernel run");
        let ours = run(&bpf, fd, &frame, Some(&ctx)).expect("bpfkit run");
        assert_eq!(ours.retval, k.retval, "gso_size {gso_size}");
        assert_eq!(ours.ctx_out.as_deref(), Some(&k.ctx_out[..]), "ctx_out");
    }
}

#[test]
fn vlan_pop_of_short_tagged_frames_matches_the_kernel() {
    if !kernel_available() {
        return;
    }
    // 14 to 19 bytes with an 802.1Q or 802.1ad type: popping the in-packet tag needs 18 bytes
    // (-ENOMEM below), and a push first (metadata only) must not change that.
    for tpid in [0x8100u16, 0x88a8] {
        for len in 14..20 {
            let mut frame: Vec<u8> = (1..=12).collect();
            frame.extend(tpid.to_be_bytes());
            frame.resize(len, 0x5a);
            for ops in [
                vec![VlanOp::Pop],
                vec![VlanOp::Push(0x8100, 7), VlanOp::Pop, VlanOp::Pop],
            ] {
                compare(&frame, &|map| vlan_program(map, &ops))
                    .unwrap_or_else(|e| panic!("{tpid:#x} {len} bytes {ops:?}: {e}"));
            }
        }
    }
}
