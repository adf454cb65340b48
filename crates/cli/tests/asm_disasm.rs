//! `bpfkit asm` and `bpfkit disasm` as a user runs them: encodings (RFC 9669's opcodes),
//! errors with file and line and a failing exit status, and text that goes round.

use std::path::PathBuf;
use std::process::{Command, Output};

fn bpfkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bpfkit"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run bpfkit: {e}"))
}

fn temp(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bpfkit-cli-asm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

#[test]
fn asm_prints_hex_words_in_both_syntaxes() {
    // r0 = 42 is `b7 00 00 00 2a 00 00 00`, exit is `95 00 ...` (RFC 9669 appendix A).
    let k = temp("k.s", b"r0 = 42\nexit\n");
    let out = bpfkit(&["asm", k.to_str().unwrap_or_default()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "0x0000002a000000b7\n0x0000000000000095\n"
    );
    let c = temp("c.data", b"mov %r0, 42\nexit\n");
    let out = bpfkit(&[
        "asm",
        "--syntax",
        "conformance",
        c.to_str().unwrap_or_default(),
    ]);
    assert_eq!(
        text(&out.stdout),
        "0x0000002a000000b7\n0x0000000000000095\n"
    );
}

#[test]
fn asm_errors_name_file_and_line_and_fail() {
    let bad = temp("bad.s", b"r0 = 1\nr0 += r11\nexit\n");
    let path = bad.to_str().unwrap_or_default();
    let out = bpfkit(&["asm", path]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("{path}:2:")) && err.contains("r11"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn disasm_output_assembles_back() {
    let src = temp(
        "p.s",
        b"r1 = 5\nL: r1 += -1\nif r1 s> 0 goto L\ncall bpf_ktime_get_ns\nr2 = map[fd:3] ll\nlock *(u64 *)(r10 -8) += r1\nexit\n",
    );
    let bin = src.with_extension("bin");
    let out = bpfkit(&[
        "asm",
        src.to_str().unwrap_or_default(),
        "-o",
        bin.to_str().unwrap_or_default(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let raw = std::fs::read(&bin).unwrap_or_default();
    assert_eq!(raw.len(), 8 * 8);
    for syntax in ["kernel", "conformance"] {
        let out = bpfkit(&[
            "disasm",
            "--syntax",
            syntax,
            bin.to_str().unwrap_or_default(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let listing = temp(&format!("listing.{syntax}"), &out.stdout);
        let again = listing.with_extension(format!("{syntax}.bin"));
        let out = bpfkit(&[
            "asm",
            "--syntax",
            syntax,
            listing.to_str().unwrap_or_default(),
            "-o",
            again.to_str().unwrap_or_default(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(std::fs::read(&again).unwrap_or_default(), raw, "{syntax}");
    }
    let out = bpfkit(&["disasm", bin.to_str().unwrap_or_default()]);
    let listing = text(&out.stdout);
    // As the kernel's verifier log prints them.
    assert!(
        listing.contains("3: (85) call bpf_ktime_get_ns#5"),
        "{listing}"
    );
    assert!(listing.contains("4: (18) r2 = map[fd:3]"), "{listing}");
}

#[test]
fn disasm_refuses_truncated_and_invalid_programs() {
    let odd = temp("odd.bin", &[0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95]);
    let out = bpfkit(&["disasm", odd.to_str().unwrap_or_default()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not a multiple of 8"),
        "{}",
        text(&out.stderr)
    );
    // An ALU instruction with a source register but the immediate form: reserved field.
    let bad = temp("bad.bin", &[0x07, 0x21, 0, 0, 1, 0, 0, 0]);
    let out = bpfkit(&["disasm", bad.to_str().unwrap_or_default()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("BPF_ALU uses reserved fields"),
        "{}",
        text(&out.stderr)
    );
}
