//! Soundness: a program the verifier accepts never makes the checked interpreter find a bad
//! memory access, and the fast interpreter returns what the checked one does.
//!
//! Random sched_cls programs are built from pieces that exercise the verifier's memory rules —
//! packet reads guarded (or not) by `data_end` checks, stack stores and loads at random
//! offsets, map lookups with and without a NULL check, ALU on the offsets — and loaded through
//! `Bpf::prog_load`. Every accepted one runs on packets of several lengths in both
//! interpreters. A rejected program is fine: the property is about accepted ones.

use bpfkit::maps::{MapAttr, MapType};
use bpfkit::prog::load::ProgLoadAttr;
use bpfkit::prog::run::TestRunAttr;
use bpfkit::Bpf;
use bpfkit_isa::Insn;
use bpfkit_verifier::env::ProgType;
use proptest::prelude::*;

/// One piece of a random program. Registers: r6 = ctx, r7 = data, r8 = data_end, r9 = map.
#[derive(Debug, Clone)]
enum Piece {
    /// `r0 = *(u8 *)(data + off)` behind `if data + end > data_end` (guarded when `end > off`).
    PacketRead { off: i16, end: i32 },
    /// `*(size *)(r10 + off) = imm`, then `r0 = *(size *)(r10 + off)`.
    Stack { off: i16, size: u8, imm: i32 },
    /// `r0 = bpf_map_lookup_elem(map, &key)`; with `check`, `if r0 == 0 goto skip`; then
    /// `r1 = *(u64 *)(r0 + off)`.
    Lookup { check: bool, off: i16 },
    /// `r0 op= imm` on a scalar.
    Alu { op: u8, imm: i32 },
    /// A packet read at a variable offset: `r1 = r0 & mask; r2 = data + r1`, guarded by
    /// `r2 + 1 > data_end`.
    VarPacketRead { mask: i32 },
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        (0i16..80, 0i32..90).prop_map(|(off, end)| Piece::PacketRead { off, end }),
        // Mostly aligned, in-frame offsets (what compilers emit), sometimes anything.
        (
            1i16..=64,
            prop::sample::select(vec![1u8, 2, 4, 8]),
            any::<i32>(),
            0u8..8
        )
            .prop_map(|(k, size, imm, wild)| {
                let off = if wild == 0 {
                    8 - 9 * k
                } else {
                    -k * i16::from(size)
                };
                Piece::Stack { off, size, imm }
            }),
        (0u8..4, -4i16..20).prop_map(|(c, off)| Piece::Lookup { check: c != 0, off }),
        (
            prop::sample::select(vec![0x07u8, 0x17, 0x27, 0x47, 0x57, 0x67, 0x77, 0xa7, 0xc7]),
            any::<i32>()
        )
            .prop_map(|(op, imm)| Piece::Alu { op, imm }),
        (0i32..128).prop_map(|mask| Piece::VarPacketRead { mask }),
    ]
}

fn size_bits(size: u8) -> u8 {
    match size {
        1 => 0x10,
        2 => 0x08,
        4 => 0x00,
        _ => 0x18,
    }
}

fn program(pieces: &[Piece], map_fd: i32) -> Vec<Insn> {
    let mut p = vec![
        Insn::new(0xbf, 6, 1, 0, 0),      // r6 = r1
        Insn::new(0x61, 7, 6, 76, 0),     // r7 = skb->data
        Insn::new(0x61, 8, 6, 80, 0),     // r8 = skb->data_end
        Insn::new(0x18, 9, 1, 0, map_fd), // r9 = map
        Insn::new(0, 0, 0, 0, 0),
        Insn::new(0xb7, 0, 0, 0, 0),   // r0 = 0
        Insn::new(0x7a, 10, 0, -8, 0), // *(u64 *)(r10 - 8) = 0: the lookup key
    ];
    for piece in pieces {
        match *piece {
            Piece::PacketRead { off, end } => p.extend([
                Insn::new(0xbf, 2, 7, 0, 0),   // r2 = data
                Insn::new(0x07, 2, 0, 0, end), // r2 += end
                Insn::new(0x2d, 2, 8, 1, 0),   // if r2 > data_end goto +1
                Insn::new(0x71, 0, 7, off, 0), // r0 = *(u8 *)(data + off)
            ]),
            Piece::Stack { off, size, imm } => p.extend([
                Insn::new(0x62 | size_bits(size), 10, 0, off, imm),
                Insn::new(0x61 | size_bits(size), 0, 10, off, 0),
            ]),
            Piece::Lookup { check, off } => {
                p.extend([
                    Insn::new(0xbf, 1, 9, 0, 0),  // r1 = map
                    Insn::new(0xbf, 2, 10, 0, 0), // r2 = r10
                    Insn::new(0x07, 2, 0, 0, -8), // r2 += -8
                    Insn::new(0x85, 0, 0, 0, 1),  // call bpf_map_lookup_elem
                ]);
                if check {
                    p.push(Insn::new(0x15, 0, 0, 1, 0)); // if r0 == 0 goto +1
                }
                p.push(Insn::new(0x79, 1, 0, off, 0)); // r1 = *(u64 *)(r0 + off)
                p.push(Insn::new(0xb7, 0, 0, 0, 0)); // r0 = 0
            }
            Piece::Alu { op, imm } => {
                // Shifts by 64 or more are rejected outright; keep most of them valid.
                let imm = if matches!(op, 0x67 | 0x77 | 0xc7) {
                    imm & 63
                } else {
                    imm
                };
                p.push(Insn::new(op, 0, 0, 0, imm));
            }
            Piece::VarPacketRead { mask } => p.extend([
                Insn::new(0xbf, 1, 0, 0, 0),    // r1 = r0
                Insn::new(0x57, 1, 0, 0, mask), // r1 &= mask
                Insn::new(0xbf, 2, 7, 0, 0),    // r2 = data
                Insn::new(0x0f, 2, 1, 0, 0),    // r2 += r1
                Insn::new(0xbf, 3, 2, 0, 0),    // r3 = r2
                Insn::new(0x07, 3, 0, 0, 1),    // r3 += 1
                Insn::new(0x2d, 3, 8, 1, 0),    // if r3 > data_end goto +1
                Insn::new(0x71, 0, 2, 0, 0),    // r0 = *(u8 *)(r2 + 0)
            ]),
        }
    }
    p.push(Insn::new(0x95, 0, 0, 0, 0));
    p
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn accepted_programs_run_clean_in_the_checked_interpreter(
        pieces in proptest::collection::vec(piece(), 1..8),
        lens in proptest::collection::vec(14usize..100, 3),
        fill in any::<u8>(),
    ) {
        let bpf = Bpf::new();
        let map = bpf.map_create(&MapAttr::new(MapType::Array, 8, 16, 4));
        // An 8-byte key on an array map is EINVAL: use a hash map with an 8-byte key instead.
        let map = match map {
            Ok(m) => m,
            Err(_) => bpf.map_create(&MapAttr::new(MapType::Hash, 8, 16, 4)).expect("hash map"),
        };
        bpf.map_update_elem(map, &0u64.to_le_bytes(), &[7u8; 16], 0).expect("seed element");
        let insns = program(&pieces, map.0 as i32);
        let attr = ProgLoadAttr {
            prog_type: ProgType::SchedCls,
            insns: &insns,
            license: "GPL",
            log_level: 0,
            log_size: 0,
        };
        let loaded = match bpf.prog_load(&attr) {
            Ok(l) => l,
            Err(e) => {
                if std::env::var_os("SOUNDNESS_VERBOSE").is_some() {
                    eprintln!("rejected: {e}");
                }
                return Ok(());
            }
        };
        if std::env::var_os("SOUNDNESS_VERBOSE").is_some() {
            eprintln!("accepted");
        }
        for len in lens {
            let frame: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
            let checked = bpf.prog_test_run(
                loaded.fd,
                &TestRunAttr { data_in: &frame, repeat: 1, checked: true, ..TestRunAttr::default() },
            );
            prop_assert!(checked.is_ok(), "accepted program violated memory safety: {:?}\n{:?}", checked, pieces);
            let fast = bpf
                .prog_test_run(loaded.fd, &TestRunAttr { data_in: &frame, repeat: 1, checked: false, ..TestRunAttr::default() })
                .expect("fast run");
            let checked = checked.expect("checked run");
            prop_assert_eq!(fast.retval, checked.retval);
            prop_assert_eq!(fast.data_out, checked.data_out);
        }
    }
}

/// The same random programs in the live kernel: bpfkit must give Linux's verdict (accept or
/// reject, and the errno). Skips, saying why, where `bpf()` is unavailable.
#[test]
fn random_programs_get_the_kernels_verdict() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let kmap = bpfkit_kernel::map_create(1, 8, 16, 4, 0).expect("kernel hash map");
    let bpf = Bpf::new();
    let map = bpf
        .map_create(&MapAttr::new(MapType::Hash, 8, 16, 4))
        .expect("hash map");
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 300,
        ..ProptestConfig::default()
    });
    let agree = std::cell::Cell::new(0u32);
    let result = runner.run(&proptest::collection::vec(piece(), 1..8), |pieces| {
        let ours = bpf.prog_load(&ProgLoadAttr {
            prog_type: ProgType::SchedCls,
            insns: &program(&pieces, map.0 as i32),
            license: "GPL",
            log_level: 1,
            log_size: 1 << 20,
        });
        let theirs_insns: Vec<u8> = program(&pieces, kmap.fd())
            .iter()
            .flat_map(|i| i.to_bytes())
            .collect();
        let theirs =
            bpfkit_kernel::ProgLoad::new(ProgType::SchedCls.kernel_id()).load(&theirs_insns[..]);
        let our_errno = ours.as_ref().err().map(|e| e.errno.code());
        let their_errno = theirs.result.as_ref().err().map(|e| e.0);
        prop_assert_eq!(
            our_errno,
            their_errno,
            "verdicts differ\nkernel log:\n{}\nbpfkit: {:?}",
            theirs.log,
            ours.as_ref().err().map(|e| e.log.clone())
        );
        agree.set(agree.get() + 1);
        Ok(())
    });
    println!("{} random programs got the kernel's verdict", agree.get());
    result.expect("bpfkit's verdicts equal the kernel's");
}
