//! The conformance suite against the conformance-syntax assembler and the decoder:
//! every `tests/*.data` program assembles (and matches its `-- raw` words where it has them),
//! decodes, and survives a print/assemble round trip; every `negative/invalid_*.data` text is
//! refused by the assembler; every `negative/unused-*.data` encoding is refused by the decoder
//! for a non-zero unused field.

mod support;

use bpfkit_isa::asm::conformance::{assemble, disassemble};
use bpfkit_isa::{decode_all, insns_from_bytes, EncodingErrorKind, Insn};
use bpfkit_kernel::{available, names, ProgLoad};

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_suite_program_assembles_decodes_and_round_trips() {
    let Some(dir) = support::suite_dir() else {
        return;
    };
    let files = support::data_files(&dir, "tests", "");
    assert!(
        files.len() >= 313,
        "expected the 313 suite files, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    let mut callx = 0;
    for path in &files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let text = read(path);
        let Some(asm) = support::section(&text, "asm") else {
            failures.push(format!("{name}: no -- asm section"));
            continue;
        };
        let insns = match assemble(&asm) {
            Ok(i) => i,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        if let Some(raw) = support::section(&text, "raw") {
            let words: Vec<Insn> = raw
                .split_whitespace()
                .filter_map(|w| u64::from_str_radix(w.trim_start_matches("0x"), 16).ok())
                .map(Insn::from_u64)
                .collect();
            if words != insns {
                failures.push(format!(
                    "{name}: assembled {insns:?}, -- raw says {words:?}"
                ));
            }
        }
        // uBPF's callx (JMP | CALL | X) is the one encoding the kernel, and the decoder, refuse.
        if insns.iter().any(|i| i.code == 0x8d) {
            callx += 1;
            assert!(decode_all(&insns).is_err(), "{name}: callx must not decode");
            continue;
        }
        if let Err(e) = decode_all(&insns) {
            failures.push(format!(
                "{name}: decoder rejects the assembled program: {e}"
            ));
            continue;
        }
        match disassemble(&insns).map(|t| assemble(&t)) {
            Ok(Ok(again)) if again == insns => {}
            other => failures.push(format!("{name}: round trip gave {other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} files failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    assert_eq!(callx, 1, "callx.data is the one callx program");
}

#[test]
fn every_invalid_text_is_refused_with_a_line() {
    let Some(dir) = support::suite_dir() else {
        return;
    };
    let files = support::data_files(&dir, "negative", "invalid_");
    assert!(
        files.len() >= 10,
        "expected the invalid_*.data files, found {}",
        files.len()
    );
    for path in &files {
        let text = read(path);
        let asm = support::section(&text, "asm").unwrap_or_default();
        match assemble(&asm) {
            Ok(insns) => panic!(
                "{}: assembled to {insns:?}, must be refused",
                path.display()
            ),
            Err(e) => {
                assert!(e.line > 0, "{}: error without a line: {e}", path.display());
                eprintln!(
                    "{}: {e}",
                    path.file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or_default()
                );
            }
        }
    }
}

/// The reason each invalid file must be refused for, as a word the error message contains.
#[test]
fn invalid_texts_are_refused_for_the_right_reason() {
    let Some(dir) = support::suite_dir() else {
        return;
    };
    let expect = [
        ("invalid_imm32_dec_range", "range"),
        ("invalid_imm32_hex_range", "range"),
        ("invalid_label", "unknown label"),
        ("invalid_lock", "operand"),
        ("invalid_lock2", "lock"),
        ("invalid_mnemonic", "unknown mnemonic"),
        ("invalid_offset", "memory operand"),
        ("invalid_offset_range", "range"),
        ("invalid_operand_count", "operand"),
        ("invalid_register", "register"),
        ("invalid_unknown_directive", "unknown mnemonic `--`"),
    ];
    for (file, word) in expect {
        let text = read(&dir.join("negative").join(format!("{file}.data")));
        let asm = support::section(&text, "asm").unwrap_or_default();
        let err = assemble(&asm).expect_err(file);
        assert!(
            err.message.contains(word),
            "{file}: `{err}` does not say `{word}`"
        );
    }
}

/// The one `unused-*` file whose unused field Linux does not check: an exit's offset. The
/// decoder follows Linux (and the test below checks, against the live kernel where it can, that
/// Linux still accepts it).
const LINUX_ACCEPTS: &str = "unused-exit-offset.data";

#[test]
fn every_unused_field_encoding_gets_the_kernels_verdict() {
    let Some(dir) = support::suite_dir() else {
        return;
    };
    let files = support::data_files(&dir, "negative", "unused-");
    assert!(
        files.len() >= 40,
        "expected the unused-*.data files, found {}",
        files.len()
    );
    let kernel_ok = match available() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("not compared with the kernel: {why}");
            false
        }
    };
    for path in &files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let text = read(path);
        let raw = support::section(&text, "raw").unwrap_or_default();
        let bytes: Vec<u8> = raw
            .split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap_or_else(|e| panic!("{name}: {b}: {e}")))
            .collect();
        let insns = insns_from_bytes(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ours = decode_all(&insns);
        if name == LINUX_ACCEPTS {
            assert!(
                ours.is_ok(),
                "{name}: Linux accepts it, the decoder says {ours:?}"
            );
        } else {
            let err = ours.expect_err(name);
            // Each file sets one unused field of its first instruction. (`mov64 %r0, %r1` with
            // offset 1 is Linux's arena address-space cast, refused for that reason.)
            assert_eq!(err.idx, 0, "{name}: {err}");
            assert!(
                matches!(
                    err.kind,
                    EncodingErrorKind::ReservedFields(_) | EncodingErrorKind::AddrSpaceCast(_)
                ),
                "{name}: rejected for {err}, not an unused field"
            );
        }
        if kernel_ok {
            // The first instruction alone, in a program that reaches it with every register
            // set: the kernel's last log line is our message, or it accepts what we accept.
            let probe = support::kernel_probe(&insns[..1]);
            let loaded = ProgLoad {
                log_level: 1,
                ..ProgLoad::new(names::PROG_SOCKET_FILTER)
            }
            .load(&probe);
            let last = loaded
                .log
                .lines()
                .rev()
                .find(|l| !l.is_empty() && !l.starts_with("processed "));
            match decode_all(&insns) {
                Ok(_) => assert!(
                    loaded.result.is_ok(),
                    "{name}: the kernel refuses it: {last:?}"
                ),
                Err(e) => assert_eq!(last, Some(e.kind.kernel_message().as_str()), "{name}"),
            }
        }
    }
}
