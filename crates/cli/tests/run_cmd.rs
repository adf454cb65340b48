//! `bpfkit run` and `bpfkit conformance` end to end: results on good input, clean errors (a
//! message on stderr, exit status 2, no panic) on bad input.

use std::path::PathBuf;
use std::process::{Command, Output};

fn bpfkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bpfkit"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start bpfkit: {e}"))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh scratch folder for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bpfkit-cli-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    p.to_string_lossy().into_owned()
}

/// Encodes slots `(code, dst, src, off, imm)` as RFC 9669 §3 lays them out.
fn prog(slots: &[(u8, u8, u8, i16, i32)]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(code, dst, src, off, imm) in slots {
        out.push(code);
        out.push(dst | (src << 4));
        out.extend_from_slice(&off.to_le_bytes());
        out.extend_from_slice(&imm.to_le_bytes());
    }
    out
}

/// r0 = *(u16 *)(r1 + 2); exit
fn ldxh_r1_2() -> Vec<u8> {
    prog(&[(0x69, 0, 1, 2, 0), (0x95, 0, 0, 0, 0)])
}

fn assert_clean_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert!(
        err.contains(needle),
        "stderr does not mention `{needle}`: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn run_prints_r0_in_hex_and_decimal() {
    let dir = scratch("run");
    let p = write(&dir, "p.bin", &ldxh_r1_2());
    // Bytes 2..4 of `aa bb 11 22` read as a little-endian u16: 0x2211 = 8721.
    let o = bpfkit(&["run", &p, "--mem-hex", "aa bb 11 22"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "r0 = 0x2211 (8721)");
    let m = write(&dir, "m.bin", &[0xaa, 0xbb, 0x11, 0x22]);
    let o = bpfkit(&["run", &p, "--mem", &m, "--checked", "--repeat", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("r0 = 0x2211 (8721)\n"), "{out}");
    assert!(out.contains("3 runs (checked): mean"), "{out}");
}

#[test]
fn run_rejects_bad_inputs_cleanly() {
    let dir = scratch("bad");
    let p = write(&dir, "p.bin", &ldxh_r1_2());
    assert_clean_error(
        &bpfkit(&["run", &dir.join("missing.bin").to_string_lossy()]),
        "cannot read program",
    );
    let t = write(&dir, "t.bin", &ldxh_r1_2()[..13]);
    assert_clean_error(&bpfkit(&["run", &t]), "truncated program: 13 bytes");
    let e = write(&dir, "e.bin", &[]);
    assert_clean_error(&bpfkit(&["run", &e]), "empty program");
    assert_clean_error(
        &bpfkit(&["run", &p, "--mem-hex", "aa bz"]),
        "not a hex digit",
    );
    assert_clean_error(
        &bpfkit(&["run", &p, "--mem-hex", "aab"]),
        "odd number of hex digits",
    );
    assert_clean_error(
        &bpfkit(&["run", &p, "--mem", &dir.join("nomem").to_string_lossy()]),
        "cannot read memory",
    );
    // Reading 2 bytes at offset 2 of a 3-byte memory: out of bounds, in both modes (fast mode
    // needs a clean checked trial run first).
    assert_clean_error(
        &bpfkit(&["run", &p, "--mem-hex", "aabb11", "--checked"]),
        "instruction 0: invalid read of 2 bytes",
    );
    assert_clean_error(
        &bpfkit(&["run", &p, "--mem-hex", "aabb11"]),
        "invalid read of 2 bytes",
    );
    // An unknown opcode, with its index.
    let u = write(
        &dir,
        "u.bin",
        &prog(&[(0xb7, 0, 0, 0, 0), (0xff, 0, 0, 0, 0)]),
    );
    assert_clean_error(&bpfkit(&["run", &u]), "instruction 1");
}

#[test]
fn run_stops_an_endless_loop_at_the_budget() {
    let dir = scratch("loop");
    // 0: ja -1; 1: exit
    let p = write(
        &dir,
        "loop.bin",
        &prog(&[(0x05, 0, 0, -1, 0), (0x95, 0, 0, 0, 0)]),
    );
    assert_clean_error(
        &bpfkit(&["run", &p, "--checked", "--budget", "100"]),
        "instruction budget of 100 exceeded",
    );
    assert_clean_error(
        &bpfkit(&["run", &p, "--budget", "100"]),
        "instruction budget of 100 exceeded",
    );
}

#[test]
fn run_survives_random_programs() {
    let dir = scratch("random");
    // A xorshift generator: reproducible byte strings of 8 to 64 bytes.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..40 {
        let len = 8 * (1 + (i % 8));
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let p = write(&dir, "r.bin", &bytes);
        let o = bpfkit(&[
            "run",
            &p,
            "--mem-hex",
            "00112233445566778899",
            "--budget",
            "10000",
        ]);
        assert!(
            matches!(o.status.code(), Some(0 | 2)),
            "{:?}: {}",
            bytes,
            stderr(&o)
        );
        assert!(
            !stderr(&o).contains("panicked"),
            "{:?}: {}",
            bytes,
            stderr(&o)
        );
    }
}

#[test]
fn run_handles_oversized_programs() {
    let dir = scratch("big");
    // 200,000 slots: r0 = 0, then 199,998 times r0 += 1, then exit.
    let mut slots = vec![(0xb7, 0, 0, 0, 0)];
    slots.extend(std::iter::repeat_n((0x07, 0, 0, 0, 1), 199_998));
    slots.push((0x95, 0, 0, 0, 0));
    let p = write(&dir, "big.bin", &prog(&slots));
    let o = bpfkit(&["run", &p]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "r0 = 0x30d3e (199998)");
    // Over the checked budget: a clean error.
    assert_clean_error(
        &bpfkit(&["run", &p, "--checked", "--budget", "1000"]),
        "instruction budget of 1000 exceeded",
    );
}

#[test]
fn conformance_reports_failures_and_sets_the_exit_status() {
    let dir = scratch("conf");
    write(
        &dir,
        "good.data",
        b"-- asm\nmov %r0, 7\nexit\n-- result\n0x7\n",
    );
    write(
        &dir,
        "bad.data",
        b"-- asm\nmov %r0, 7\nexit\n-- result\n0x8\n",
    );
    write(
        &dir,
        "callx.data",
        b"-- asm\nmov %r2, 5\ncall %r2\nexit\n-- result\n0x0\n",
    );
    let o = bpfkit(&["conformance", &dir.to_string_lossy()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("bad.data: checked interpreter returned 0x7, expected 0x8"),
        "{out}"
    );
    assert!(
        out.contains("UNSUPPORTED") && out.contains("callx"),
        "{out}"
    );
    assert!(
        out.trim_end()
            .ends_with("1 passed, 1 failed, 1 unsupported"),
        "{out}"
    );
    let o = bpfkit(&["conformance", &dir.join("good.data").to_string_lossy()]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o).trim(), "1 passed, 0 failed, 0 unsupported");
    assert_clean_error(
        &bpfkit(&["conformance", &dir.join("none").to_string_lossy()]),
        "cannot read",
    );
}

#[test]
fn conformance_passes_the_own_isa_tests() {
    let isa = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/isa");
    let o = bpfkit(&["conformance", &isa.to_string_lossy()]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(
        stdout(&o)
            .trim_end()
            .ends_with(" passed, 0 failed, 0 unsupported"),
        "{}",
        stdout(&o)
    );
}
