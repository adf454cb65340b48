//! Fuzz target: any bytes, read as a program (plus a program type and log level from the first
//! two bytes; bit 3 of the second asks for the unprivileged rules), must get a verdict from the
//! verifier — never a panic, never a hang.
#![no_main]

use bpfkit_verifier::env::{MapInfo, MapType, ProgType};
use bpfkit_verifier::testing::TestEnv;
use bpfkit_verifier::{verify, Options, Privilege};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [ty, level, rest @ ..] = data else { return };
    let Ok(insns) = bpfkit_isa::insns_from_bytes(rest) else { return };
    let env = TestEnv::with_maps(vec![
        MapInfo { map_type: MapType::Hash, key_size: 4, value_size: 8, max_entries: 4 },
        MapInfo { map_type: MapType::Array, key_size: 4, value_size: 16, max_entries: 1 },
        MapInfo { map_type: MapType::ProgArray, key_size: 4, value_size: 4, max_entries: 4 },
    ]);
    let opts = Options {
        prog_type: ProgType::ALL[usize::from(*ty) % ProgType::ALL.len()],
        log_level: u32::from(*level & 7),
        license: "GPL".into(),
        privilege: if *level & 8 != 0 {
            Privilege::Unprivileged
        } else {
            Privilege::Privileged
        },
        ..Options::default()
    };
    let _ = verify(&insns, &env, &opts);
});
