//! `bpfkit verify`: verdict, log and exit status (0 accepted, 1 rejected, 2 unusable input).
//! Expected texts are Linux 6.18's for the same programs (see crates/verifier/tests/data).

use std::path::PathBuf;
use std::process::{Command, Output};

fn bpfkit(args: &[&str]) -> Output {
    match Command::new(env!("CARGO_BIN_EXE_bpfkit"))
        .args(args)
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("running bpfkit: {e}"),
    }
}

fn raw(name: &str, insns: &[[u8; 8]]) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("bpfkit-verify-{}-{name}.bin", std::process::id()));
    let bytes: Vec<u8> = insns.iter().flatten().copied().collect();
    if let Err(e) = std::fs::write(&path, bytes) {
        panic!("writing {}: {e}", path.display());
    }
    path
}

const MOV_R0_0: [u8; 8] = [0xb7, 0x00, 0, 0, 0, 0, 0, 0];
const EXIT: [u8; 8] = [0x95, 0x00, 0, 0, 0, 0, 0, 0];

#[test]
fn an_accepted_program_exits_0_with_the_statistics_line() {
    let p = raw("ok", &[MOV_R0_0, EXIT]);
    let out = bpfkit(&["verify", "--raw", p.to_str().unwrap_or_default()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("accepted\n"), "{stdout}");
    assert!(stdout.contains(
        "processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0"
    ));
}

#[test]
fn a_rejected_program_exits_1_with_the_kernel_log() {
    let p = raw("r0", &[EXIT]);
    let out = bpfkit(&[
        "verify",
        "--raw",
        p.to_str().unwrap_or_default(),
        "--log-level",
        "1",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    // Linux 6.18, log level 1, for the single instruction `exit`.
    assert!(
        stdout.ends_with(
            "0: R1=ctx() R10=fp0\n0: (95) exit\nR0 !read_ok\nprocessed 1 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n"
        ),
        "{stdout}"
    );
}

#[test]
fn maps_are_declared_on_the_command_line() {
    // *(u32 *)(r10 - 4) = 0; r2 = r10; r2 += -4; r1 = map[0]; call 1; r0 = *(u64 *)(r0 + 0)
    let prog = [
        [0x62, 0x0a, 0xfc, 0xff, 0, 0, 0, 0],
        [0xbf, 0xa2, 0, 0, 0, 0, 0, 0],
        [0x07, 0x02, 0, 0, 0xfc, 0xff, 0xff, 0xff],
        [0x18, 0x11, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0],
        [0x85, 0, 0, 0, 1, 0, 0, 0],
        [0x79, 0x00, 0, 0, 0, 0, 0, 0],
        EXIT,
    ];
    let p = raw("map", &prog);
    let path = p.to_str().unwrap_or_default();
    let out = bpfkit(&["verify", "--raw", path, "--map", "hash:4:8:16"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("R0 invalid mem access 'map_value_or_null'"),
        "{stdout}"
    );
    // Without the map the reference names nothing: the kernel's bad-descriptor error.
    let out = bpfkit(&["verify", "--raw", path]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("fd 0 is not pointing to valid bpf_map"));
}

#[test]
fn unusable_input_exits_2() {
    let p = raw("short", &[]);
    std::fs::write(&p, [0u8; 5]).unwrap_or_default();
    let path = p.to_str().unwrap_or_default();
    assert_eq!(bpfkit(&["verify", "--raw", path]).status.code(), Some(2));
    assert_eq!(
        bpfkit(&["verify", "--raw", "/nonexistent/prog.bin"])
            .status
            .code(),
        Some(2)
    );
    let ok = raw("ok2", &[MOV_R0_0, EXIT]);
    let ok = ok.to_str().unwrap_or_default();
    assert_eq!(
        bpfkit(&["verify", "--raw", ok, "--type", "nosuchtype"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        bpfkit(&["verify", "--raw", ok, "--map", "hash:4"])
            .status
            .code(),
        Some(2)
    );
}

/// ELF input with line info: the log carries `; <source> @ <file>:<line>` lines as the kernel's
/// does. The expected source text is read from the example's C file itself.
#[test]
fn elf_logs_interleave_c_source_lines() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let obj = root.join("examples/sockex1/sockex1.o");
    let src = match std::fs::read_to_string(root.join("examples/sockex1/sockex1.c")) {
        Ok(s) => s,
        Err(e) => panic!("reading sockex1.c: {e}"),
    };
    let Some(obj_path) = obj.to_str() else {
        panic!("non-UTF-8 path");
    };
    let out = bpfkit(&["verify", obj_path, "--log-level", "2"]);
    assert_eq!(out.status.code(), Some(0));
    let log = String::from_utf8_lossy(&out.stdout);
    let (no, line) = src
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("bpf_map_lookup_elem(&proto_bytes"))
        .map(|(i, l)| (i + 1, l.trim().to_string()))
        .unwrap_or_else(|| panic!("sockex1.c calls bpf_map_lookup_elem"));
    let expected = format!("; {line} @ sockex1.c:{no}");
    assert!(
        log.lines().any(|l| l == expected),
        "no {expected:?} in:\n{log}"
    );
}
