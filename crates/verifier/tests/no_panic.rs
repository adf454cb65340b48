//! Random programs never make the verifier panic or run away: every input gets a verdict.

use bpfkit_isa::Insn;
use bpfkit_verifier::env::{MapInfo, MapType, ProgType};
use bpfkit_verifier::testing::TestEnv;
use bpfkit_verifier::{verify, Options};
use proptest::prelude::*;

/// Opcodes that exercise every rule family, plus arbitrary bytes.
fn code() -> impl Strategy<Value = u8> {
    prop_oneof![
        prop::sample::select(vec![
            0x07u8, 0x0f, 0x17, 0x1f, 0x27, 0x37, 0x47, 0x4f, 0x57, 0x5f, 0x67, 0x77, 0x87, 0x97,
            0xa7, 0xb7, 0xbf, 0xc7, 0x04, 0x0c, 0xb4, 0xbc, 0xdc, 0xd4, 0x18, 0x61, 0x69, 0x71,
            0x79, 0x81, 0x62, 0x6a, 0x72, 0x7a, 0x63, 0x6b, 0x73, 0x7b, 0xc3, 0xdb, 0x05, 0x15,
            0x1d, 0x25, 0x2d, 0x35, 0x45, 0x55, 0x65, 0xa5, 0xb5, 0xc5, 0xd5, 0x16, 0x26, 0xa6,
            0x85, 0x95, 0x30, 0x50, 0x06,
        ]),
        any::<u8>(),
    ]
}

fn insn() -> impl Strategy<Value = Insn> {
    (
        code(),
        0u8..12,
        0u8..12,
        -12i16..12,
        prop_oneof![-16i32..16, any::<i32>()],
    )
        .prop_map(|(c, d, s, o, i)| {
            // Mostly small offsets so that jumps stay in range and stack offsets are negative.
            let off = if matches!(c & 7, 1..=3) {
                -8 * (o.abs() + 1)
            } else {
                o
            };
            Insn::new(
                c,
                d,
                s % 3,
                off,
                if c == 0x85 { i.rem_euclid(20) } else { i },
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]
    #[test]
    fn random_programs_get_a_verdict(mut prog in prop::collection::vec(insn(), 1..40), ty in 0usize..ProgType::ALL.len(), attach in 0u32..2, level in prop::sample::select(vec![0u32, 1, 2, 4, 7])) {
        // End with an exit most of the time, so exploration (not only the CFG check) runs.
        prog.push(Insn::new(0xb7, 0, 0, 0, 0));
        prog.push(Insn::new(0x95, 0, 0, 0, 0));
        let env = TestEnv::with_maps(vec![
            MapInfo { map_type: MapType::Hash, key_size: 4, value_size: 8, max_entries: 4 },
            MapInfo { map_type: MapType::Array, key_size: 4, value_size: 16, max_entries: 1 },
            MapInfo { map_type: MapType::ProgArray, key_size: 4, value_size: 4, max_entries: 4 },
        ]);
        let opts = Options { prog_type: ProgType::ALL[ty], log_level: level, license: "GPL".into(), expected_attach_type: attach, ..Options::default() };
        let _ = verify(&prog, &env, &opts);
        // And under the unprivileged rules.
        let opts = Options { privilege: bpfkit_verifier::Privilege::Unprivileged, ..opts };
        let _ = verify(&prog, &env, &opts);
    }
}
