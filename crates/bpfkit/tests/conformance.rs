//! The eBPF ISA conformance suite and bpfkit's own per-instruction tests (tests/isa/), run in
//! the checked and the fast interpreter through `bpfkit::conformance`.
//!
//! The suite is found through `BPFKIT_CONFORMANCE_DIR`, by default `../shared/conformance`
//! from the repository root; when it is absent the suite tests say so and pass. Every file of
//! `tests/` must pass (callx may only be reported unsupported), and every file of `negative/`
//! must fail for its own reason: the assembler for `invalid_*`, the decoder's reserved-field
//! check for `unused-*`, and so on (see `expected_rejection`).

use bpfkit::conformance::{data_files, run_file, Failure, Outcome, Rejection};
use bpfkit_isa::EncodingErrorKind;
use bpfkit_vm::ErrorKind;
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn suite_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("BPFKIT_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => repo_root().join("../shared/conformance"),
    };
    if dir.join("tests").is_dir() {
        Some(dir)
    } else {
        println!(
            "skipped: the conformance suite is not at {} (set BPFKIT_CONFORMANCE_DIR)",
            dir.display()
        );
        None
    }
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Runs every file of `dir` that must pass; returns (passed, unsupported) and fails with every
/// failure listed.
fn run_passing(dir: &Path) -> (usize, Vec<String>) {
    let files = data_files(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    assert!(!files.is_empty(), "no .data files in {}", dir.display());
    let mut failures = Vec::new();
    let mut unsupported = Vec::new();
    let mut passed = 0;
    for path in &files {
        match run_file(path) {
            Ok(outcome) if outcome.is_pass() => passed += 1,
            // Only uBPF's callx may be unsupported, and only by name.
            Ok(Outcome::Unsupported(what)) if what.starts_with("callx") => {
                unsupported.push(name(path));
            }
            Ok(outcome) => failures.push(format!("{}: {outcome}", name(path))),
            Err(e) => failures.push(format!("{}: {e}", name(path))),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    (passed, unsupported)
}

#[test]
fn conformance_suite_tests_pass_in_both_modes() {
    let Some(dir) = suite_dir() else { return };
    let (passed, unsupported) = run_passing(&dir.join("tests"));
    println!(
        "{passed} passed, {} unsupported: {unsupported:?}",
        unsupported.len()
    );
    assert_eq!(unsupported, ["callx.data"]);
    // The suite's FORMAT.md: 313 files in tests/.
    assert_eq!(passed + unsupported.len(), 313);
}

/// Checks that a negative file failed for its reason; `text` is the file's content.
fn expected_rejection(file: &str, text: &str, outcome: &Outcome) -> Result<(), String> {
    // Every `invalid_*` file's first instruction (the first line after `-- asm` that is not a
    // comment) is the bad one.
    let lines: Vec<&str> = text.lines().collect();
    let asm_at = lines
        .iter()
        .position(|l| l.trim() == "-- asm")
        .unwrap_or(lines.len());
    let first_asm_line = (asm_at + 1..lines.len())
        .find(|&i| {
            !lines[i]
                .split('#')
                .next()
                .unwrap_or_default()
                .trim()
                .is_empty()
        })
        .map_or(0, |i| i + 1);
    let ok = match file {
        // No program at all.
        "empty.data" | "empty_instructions.data" => {
            matches!(outcome, Outcome::Failed(Failure::NoProgram))
        }
        // `or %r0, %r10` reads r0 before anything wrote it: Linux says "R0 !read_ok".
        "error.data" => matches!(
            outcome,
            Outcome::Rejected(Rejection::Run(e)) if e.pc == 0 && e.kind == ErrorKind::UninitRegister(0)
        ),
        // ldxdw of bytes 11 22 33 44 55 66 77 88 (little endian) is 0x8877665544332211; the
        // file expects 0x89.. in the high half: only a 64-bit comparison catches it.
        "incorrect_return_value_high_bits.data" => matches!(
            outcome,
            Outcome::Failed(Failure::Mismatch {
                expected: 0x8977_6655_4433_2211,
                got: 0x8877_6655_4433_2211,
                ..
            })
        ),
        "invalid_unknown_directive.data" => matches!(
            outcome,
            Outcome::Rejected(Rejection::UnknownSection { name, .. }) if name == "Unknown directive"
        ),
        // Text the assembler must refuse, on the program's first line.
        f if f.starts_with("invalid_") => matches!(
            outcome,
            Outcome::Rejected(Rejection::Assemble { file_line, .. })
                | Outcome::Failed(Failure::Rejected(Rejection::Assemble { file_line, .. }))
                if *file_line == first_asm_line
        ),
        // Linux ignores an exit's offset (the isa decoder follows the live kernel): the program
        // `exit` is then refused for reading r0 before writing it, "R0 !read_ok".
        "unused-exit-offset.data" => matches!(
            outcome,
            Outcome::Rejected(Rejection::Run(e)) if e.pc == 0 && e.kind == ErrorKind::UninitRegister(0)
        ),
        // MOV64 with offset 1 is the arena `addr_space_cast`; imm 1 would convert, imm 0 is
        // refused with the kernel's message.
        "unused-mov64_reg-offset.data" => matches!(
            outcome,
            Outcome::Rejected(Rejection::Load(e))
                if e.pc == 0 && matches!(e.kind, ErrorKind::Encoding(EncodingErrorKind::AddrSpaceCast(0)))
        ),
        // Unused fields not zero: the decoder's "uses reserved fields" on the first slot.
        f if f.starts_with("unused-") => matches!(
            outcome,
            Outcome::Rejected(Rejection::Load(e))
                if e.pc == 0 && matches!(e.kind, ErrorKind::Encoding(EncodingErrorKind::ReservedFields(_)))
        ),
        _ => {
            return Err(format!(
                "{file}: a negative file this test does not know: {outcome}"
            ))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{file}: wrong reason: {outcome}"))
    }
}

#[test]
fn conformance_negative_files_fail_for_the_right_reason() {
    let Some(dir) = suite_dir() else { return };
    let files = data_files(&dir.join("negative")).unwrap_or_default();
    // FORMAT.md: 60 negative files.
    assert_eq!(files.len(), 60);
    let mut wrong = Vec::new();
    for path in &files {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let outcome = bpfkit::conformance::run_text(&text);
        if let Err(e) = expected_rejection(&name(path), &text, &outcome) {
            wrong.push(e);
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn own_isa_tests_pass_in_both_modes() {
    let (passed, unsupported) = run_passing(&repo_root().join("tests/isa"));
    assert!(unsupported.is_empty(), "{unsupported:?}");
    println!("{passed} tests/isa files passed");
}
