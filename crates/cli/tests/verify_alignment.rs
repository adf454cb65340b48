//! `bpfkit verify --strict-alignment / --any-alignment`: the load flags reach the verifier.
//! The expected line is Linux 6.18's for the same program loaded with
//! `BPF_F_STRICT_ALIGNMENT` (tests/verifier/align.cases, `align_map_value_strict_misaligned`).

use std::process::{Command, Output};

fn verify(extra: &[&str]) -> Output {
    // *(u32 *)(r10 - 4) = 0; r2 = r10; r2 += -4; r1 = map[0] ll; call 1;
    // if r0 == 0 goto +1; r0 = *(u32 *)(r0 + 2); r0 = 0; exit
    let prog: [[u8; 8]; 10] = [
        [0x62, 0x0a, 0xfc, 0xff, 0, 0, 0, 0],
        [0xbf, 0xa2, 0, 0, 0, 0, 0, 0],
        [0x07, 0x02, 0, 0, 0xfc, 0xff, 0xff, 0xff],
        [0x18, 0x11, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0],
        [0x85, 0, 0, 0, 1, 0, 0, 0],
        [0x15, 0x00, 0x01, 0, 0, 0, 0, 0],
        [0x61, 0x00, 0x02, 0, 0, 0, 0, 0],
        [0xb7, 0x00, 0, 0, 0, 0, 0, 0],
        [0x95, 0x00, 0, 0, 0, 0, 0, 0],
    ];
    let name = format!("bpfkit-align-{}-{}.bin", std::process::id(), extra.join(""));
    let path = std::env::temp_dir().join(name);
    let bytes: Vec<u8> = prog.iter().flatten().copied().collect();
    if let Err(e) = std::fs::write(&path, bytes) {
        panic!("writing {}: {e}", path.display());
    }
    let mut args = vec![
        "verify",
        "--raw",
        path.to_str().unwrap_or_default(),
        "--map",
        "array:4:16:1",
    ];
    args.extend_from_slice(extra);
    match Command::new(env!("CARGO_BIN_EXE_bpfkit"))
        .args(&args)
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("running bpfkit: {e}"),
    }
}

#[test]
fn strict_alignment_rejects_a_misaligned_map_value_load() {
    let out = verify(&["--strict-alignment"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("\nmisaligned value access off 0+0+2 size 4\n"),
        "{stdout}"
    );
}

#[test]
fn without_the_flag_or_with_any_alignment_the_load_passes() {
    for extra in [&[][..], &["--strict-alignment", "--any-alignment"][..]] {
        let out = verify(extra);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{extra:?}: {stdout}");
        assert!(stdout.starts_with("accepted\n"), "{stdout}");
    }
}
