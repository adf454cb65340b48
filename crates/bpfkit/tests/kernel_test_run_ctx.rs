//! Differential tests of `BPF_PROG_TEST_RUN`'s inputs and outputs against the live kernel:
//! the `__sk_buff` and `xdp_md` contexts a run takes in and gives back (which fields may be
//! set, the errnos for the others), the packet size limits, `data_size_out` too small
//! (`ENOSPC`), `bpf_xdp_adjust_head` with and without metadata, and raw tracepoint runs on
//! their `u64` arguments. Skips, saying why, where `bpf()` is unavailable.

mod prog_util;

use bpfkit::prog::run::TestRunAttr;
use bpfkit::progtype::access::{ctx_access, Direction};
use bpfkit::progtype::layout::SK_BUFF_FIELDS;
use bpfkit::Bpf;
use bpfkit_isa::Insn;
use bpfkit_verifier::env::ProgType;
use prog_util::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Runs `insns` of type `t` in the kernel (raw attributes) and in bpfkit with the same
/// inputs; errnos, return values, packets and contexts must agree.
fn compare(t: ProgType, insns: &[Insn], a: &RawAttr<'_>) -> Result<(), TestCaseError> {
    let kprog = kload(t, insns).map_err(TestCaseError::fail)?;
    let k = raw_test_run(&kprog, a);
    let bpf = Bpf::new();
    let fd = load(&bpf, t, insns).map_err(TestCaseError::fail)?;
    let ours = bpf.prog_test_run(
        fd,
        &TestRunAttr {
            data_in: a.data_in,
            repeat: a.repeat,
            checked: false,
            ctx_in: (!a.ctx_in.is_empty()).then_some(a.ctx_in),
            data_size_out: a.data_size_out,
        },
    );
    match ours {
        Err(e) => {
            prop_assert_eq!(e.code(), k.errno, "errno ({}); kernel {:?}", e, k);
        }
        Ok(o) => {
            prop_assert_eq!(k.errno, 0, "bpfkit ran, the kernel refused: {:?}", k);
            prop_assert_eq!(o.retval, k.retval, "retval");
            if a.data_out != 0 {
                prop_assert_eq!(&o.data_out, &k.data_out, "data_out");
            }
            if a.ctx_out != 0 {
                prop_assert_eq!(o.ctx_out.as_deref(), Some(&k.ctx_out[..]), "ctx_out");
            }
        }
    }
    Ok(())
}

/// A program that sums every `__sk_buff` field a test-run context can set (those `t` may
/// read), then writes the writable ones, and returns the sum.
fn skb_ctx_program(t: ProgType) -> Vec<Insn> {
    let mut p = vec![mov_reg(6, 1), mov(7, 0)];
    for f in SK_BUFF_FIELDS {
        let settable = [
            "mark",
            "priority",
            "ingress_ifindex",
            "ifindex",
            "cb[0]",
            "cb[1]",
            "cb[2]",
            "cb[3]",
            "cb[4]",
            "tstamp",
            "wire_len",
            "gso_segs",
            "gso_size",
            "hwtstamp",
        ];
        if !settable.contains(&f.name)
            || !ctx_access(t, f.off as i32, f.size, Direction::Read).allowed()
        {
            continue;
        }
        let op = if f.size == 8 { 0x79 } else { 0x61 };
        p.push(Insn::new(op, 0, 6, f.off as i16, 0));
        p.push(Insn::new(0x27, 7, 0, 0, 31)); // r7 *= 31
        p.push(Insn::new(0x0f, 7, 0, 0, 0)); // r7 += r0
    }
    for (name, off) in [
        ("mark", 8i16),
        ("priority", 32),
        ("cb[2]", 56),
        ("tc_index", 44),
    ] {
        if ctx_access(t, i32::from(off), 4, Direction::Write).allowed() {
            let _ = name;
            p.push(stx_w(6, 7, off));
        }
    }
    if ctx_access(t, 152, 8, Direction::Write).allowed() {
        p.push(stx_dw(6, 7, 152)); // tstamp = r7
    }
    p.push(mov_reg(0, 7));
    p.push(exit());
    p
}

fn runner(cases: u32) -> Option<TestRunner> {
    kernel_available().then(|| {
        TestRunner::new(Config {
            cases,
            ..Config::default()
        })
    })
}

/// A `__sk_buff` context: mostly the settable fields with random values; sometimes one other
/// byte set; wire_len, gso_segs and ifindex around their limits.
fn skb_ctx() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<[u8; 192]>(),
        0u8..8,
        prop_oneof![Just(0u32), 0u32..200, Just(65536), Just(65537)],
        prop_oneof![Just(0u32), 1u32..70000],
        prop_oneof![Just(0u32), Just(1), Just(0x7fff_0000)],
        prop_oneof![Just(0u32), Just(1)],
        0usize..192,
        prop_oneof![Just(192usize), Just(100), Just(200)],
    )
        .prop_map(|(rand, mode, wire, segs, ifindex, ingress, stray, size)| {
            let mut c = vec![0u8; 192];
            for (a, b) in [
                (8, 12),
                (32, 36),
                (48, 68),
                (152, 160),
                (176, 180),
                (184, 192),
            ] {
                c[a..b].copy_from_slice(&rand[a..b]);
            }
            c[160..164].copy_from_slice(&wire.to_le_bytes());
            c[164..168].copy_from_slice(&segs.to_le_bytes());
            c[40..44].copy_from_slice(&ifindex.to_le_bytes());
            c[36..40].copy_from_slice(&(ingress * 5).to_le_bytes());
            if mode == 0 {
                c[stray] |= 1;
            }
            c.resize(size, 0);
            if size > 192 && mode == 1 {
                c[195] = 9;
            }
            c
        })
}

#[test]
fn skb_contexts_match_the_kernel() {
    let Some(mut runner) = runner(150) else {
        return;
    };
    let frame = udp_frame(&[9; 30]);
    for t in [ProgType::SchedCls, ProgType::SocketFilter] {
        let prog = skb_ctx_program(t);
        runner
            .run(&skb_ctx(), |ctx| {
                compare(
                    t,
                    &prog,
                    &RawAttr {
                        data_in: &frame,
                        data_out: 4096,
                        ctx_in: &ctx,
                        ctx_out: 192,
                        ..RawAttr::default()
                    },
                )
            })
            .unwrap_or_else(|e| panic!("{t} test-run contexts differ from the kernel: {e}"));
    }
}

#[test]
fn packet_size_limits_and_enospc_match_the_kernel() {
    if !kernel_available() {
        return;
    }
    let ret2 = [mov(0, 2), exit()];
    let mut cases = 0;
    for t in [ProgType::SocketFilter, ProgType::SchedCls, ProgType::Xdp] {
        for len in [
            0usize, 13, 14, 33, 34, 53, 54, 3520, 3521, 3712, 3713, 4000, 73152, 73153,
        ] {
            for proto in [0x0800u16, 0x86dd, 0x0806] {
                let mut frame = vec![0u8; len];
                if len >= 14 {
                    frame[12..14].copy_from_slice(&proto.to_be_bytes());
                }
                for (data_out, hint) in [(80_000u32, 0u32), (80_000, 20)] {
                    let a = RawAttr {
                        data_in: &frame,
                        data_out,
                        data_size_out: hint,
                        ..RawAttr::default()
                    };
                    compare(t, &ret2, &a).unwrap_or_else(|e| {
                        panic!("{t} len {len} proto {proto:#x} hint {hint}: {e}")
                    });
                    cases += 1;
                }
            }
        }
    }
    println!("{cases} test runs compared");
}

/// `r7 = bpf_xdp_adjust_head(ctx, off)`; then, through the refreshed pointers, write 0xab at
/// data[0] when the packet has a byte; return r7.
fn adjust_program(off: i32) -> Vec<Insn> {
    vec![
        mov_reg(6, 1),
        mov(2, off),
        call(44),
        mov_reg(7, 0),
        ldx_w(2, 6, 0), // r2 = ctx->data
        ldx_w(3, 6, 4), // r3 = ctx->data_end
        mov_reg(4, 2),
        add(4, 1),
        Insn::new(0x2d, 4, 3, 1, 0), // if r4 > r3 goto +1
        Insn::new(0x72, 2, 0, 0, 0xab),
        mov_reg(0, 7),
        exit(),
    ]
}

#[test]
fn xdp_adjust_head_matches_the_kernel() {
    let Some(mut runner) = runner(300) else {
        return;
    };
    let strategy = (
        proptest::collection::vec(any::<u8>(), 14..300),
        prop_oneof![-260i32..130, Just(i32::MIN), Just(i32::MAX)],
        prop_oneof![
            Just(None),
            (0usize..=8).prop_map(|m| Some(m * 4)),
            (0usize..=56).prop_map(|m| Some(m * 4))
        ],
    );
    runner
        .run(&strategy, |(frame, off, meta)| {
            let mut ctx = Vec::new();
            if let Some(m) = meta {
                ctx = vec![0u8; 24];
                ctx[0..4].copy_from_slice(&(m as u32).to_le_bytes());
                ctx[4..8].copy_from_slice(&(frame.len() as u32).to_le_bytes());
            }
            compare(
                ProgType::Xdp,
                &adjust_program(off),
                &RawAttr {
                    data_in: &frame,
                    data_out: 4096,
                    ctx_in: &ctx,
                    ctx_out: if ctx.is_empty() { 0 } else { 24 },
                    ..RawAttr::default()
                },
            )
        })
        .unwrap_or_else(|e| panic!("bpf_xdp_adjust_head differs from the kernel: {e}"));
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
fn xdp_contexts_match_the_kernel() {
    let Some(mut runner) = runner(200) else {
        return;
    };
    // Returns ingress_ifindex * 1000 + rx_queue_index.
    let prog = vec![
        ldx_w(0, 1, 12),
        Insn::new(0x27, 0, 0, 0, 1000),
        ldx_w(2, 1, 16),
        Insn::new(0x0f, 0, 2, 0, 0),
        exit(),
    ];
    let field = || {
        prop_oneof![
            Just(0u32),
            Just(1),
            Just(4),
            Just(40),
            Just(64),
            Just(0x7fff_0000),
            any::<u32>()
        ]
    };
    let strategy = (
        proptest::collection::vec(any::<u8>(), 14..80),
        (field(), field(), field(), field(), field(), field()),
        prop_oneof![Just(24usize), Just(16), Just(28)],
        any::<bool>(),
    );
    // Devices other than lo exist in the kernel's namespace but not in bpfkit's model: name
    // only lo or a device that is absent here.
    let present = present_ifindexes();
    let absent = (5u32..).find(|i| !present.contains(i)).unwrap_or(0);
    runner
        .run(
            &strategy,
            |(frame, (data, end, meta, ingress, rxq, egress), size, fix)| {
                let ingress = match ingress % 3 {
                    0 => 0,
                    1 => 1,
                    _ => absent,
                };
                let mut ctx = vec![0u8; 28];
                let end = if fix { frame.len() as u32 } else { end };
                let data = if fix { data % 40 } else { data };
                let rxq = if fix { rxq % 2 } else { rxq };
                let meta = if fix { 0 } else { meta };
                let egress = if fix { 0 } else { egress };
                for (i, v) in [data, end, meta, ingress, rxq, egress]
                    .into_iter()
                    .enumerate()
                {
                    ctx[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
                }
                ctx.truncate(size);
                compare(
                    ProgType::Xdp,
                    &prog,
                    &RawAttr {
                        data_in: &frame,
                        data_out: 4096,
                        ctx_in: &ctx,
                        ctx_out: 24,
                        ..RawAttr::default()
                    },
                )
            },
        )
        .unwrap_or_else(|e| panic!("xdp_md test-run contexts differ from the kernel: {e}"));
}

#[test]
fn raw_tracepoint_runs_match_the_kernel() {
    if !kernel_available() {
        return;
    }
    // r0 = arg0 * 3 + arg2 (reads 24 bytes of arguments).
    let prog = vec![
        Insn::new(0x79, 2, 1, 0, 0),
        Insn::new(0x79, 3, 1, 16, 0),
        Insn::new(0x27, 2, 0, 0, 3),
        mov_reg(0, 2),
        Insn::new(0x0f, 0, 3, 0, 0),
        exit(),
    ];
    let args: Vec<u8> = [
        7u64,
        0xdead,
        0x1_0000_0005,
        4,
        5,
        6,
        7,
        8,
        9,
        10,
        11,
        12,
        13,
    ]
    .iter()
    .flat_map(|v| v.to_le_bytes())
    .collect();
    let mut cases = 0;
    for len in [0usize, 8, 16, 20, 24, 32, 96, 104] {
        for (data_in, repeat) in [(&[][..], 0u32), (&[0u8; 20][..], 0), (&[][..], 2)] {
            let a = RawAttr {
                data_in,
                ctx_in: &args[..len],
                repeat,
                ..RawAttr::default()
            };
            compare(ProgType::RawTracepoint, &prog, &a).unwrap_or_else(|e| {
                panic!(
                    "ctx {len} bytes, data {} repeat {repeat}: {e}",
                    data_in.len()
                )
            });
            cases += 1;
        }
    }
    println!("{cases} raw tracepoint runs compared");
}
