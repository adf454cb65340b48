//! `bpfkit verify --unprivileged`: Linux's unprivileged rules reach the verifier. The expected
//! verdicts and lines are Linux 6.18's for the same programs loaded without CAP_BPF and
//! CAP_PERFMON (tests/verifier/unpriv.cases: `unpriv_return_frame_pointer`,
//! `unpriv_bounded_loop_is_a_back_edge`); privileged, Linux accepts both.

use std::process::{Command, Output};

fn verify(name: &str, prog: &[[u8; 8]], extra: &[&str]) -> Output {
    let file = format!("bpfkit-unpriv-{}-{name}.bin", std::process::id());
    let path = std::env::temp_dir().join(file);
    let bytes: Vec<u8> = prog.iter().flatten().copied().collect();
    if let Err(e) = std::fs::write(&path, bytes) {
        panic!("writing {}: {e}", path.display());
    }
    let mut args = vec!["verify", "--raw", path.to_str().unwrap_or_default()];
    args.extend_from_slice(extra);
    let out = match Command::new(env!("CARGO_BIN_EXE_bpfkit"))
        .args(&args)
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("running bpfkit: {e}"),
    };
    std::fs::remove_file(&path).ok();
    out
}

/// r0 = r10; exit
const RETURN_FP: [[u8; 8]; 2] = [[0xbf, 0xa0, 0, 0, 0, 0, 0, 0], [0x95, 0, 0, 0, 0, 0, 0, 0]];

/// r0 = 0; loop: r0 += 1; if r0 < 3 goto loop; exit
const LOOP: [[u8; 8]; 4] = [
    [0xb7, 0, 0, 0, 0, 0, 0, 0],
    [0x07, 0, 0, 0, 1, 0, 0, 0],
    [0xa5, 0, 0xfe, 0xff, 3, 0, 0, 0],
    [0x95, 0, 0, 0, 0, 0, 0, 0],
];

#[test]
fn unprivileged_rejects_a_leaked_pointer_and_a_loop() {
    let out = verify("fp", &RETURN_FP, &["--unprivileged"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("\nR0 leaks addr as return value\n"),
        "{stdout}"
    );

    let out = verify("loop", &LOOP, &["--unprivileged"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("back-edge from insn 2 to 1\n"), "{stdout}");
}

#[test]
fn privileged_by_default_accepts_both() {
    for (name, prog) in [("fp-priv", &RETURN_FP[..]), ("loop-priv", &LOOP[..])] {
        let out = verify(name, prog, &[]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{name}: {stdout}");
        assert!(stdout.starts_with("accepted\n"), "{stdout}");
    }
}

#[test]
fn unprivileged_refuses_program_types_that_need_cap_bpf() {
    let out = verify("xdp", &RETURN_FP, &["--unprivileged", "--type", "xdp"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("EPERM"), "{stdout}");
}
