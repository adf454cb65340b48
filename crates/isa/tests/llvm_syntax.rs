//! The kernel-syntax assembler against LLVM: every valid instruction of the probe corpus is
//! disassembled by `llvm-mc-19 --disassemble -show-encoding` (LLVM's own printer, with the
//! encoding beside each line), and each line LLVM prints must assemble to the encoding LLVM
//! shows. Skips, saying why, where llvm-mc-19 is not installed.

mod support;

use bpfkit_isa::asm::kernel;
use bpfkit_isa::{decode, insns_to_bytes, Insn, Op};
use std::io::Write;
use std::process::{Command, Stdio};

const LLVM_MC: &str = "llvm-mc-19";

/// LLVM prints these without all of their fields, so their text cannot give the bytes back:
/// an indirect packet load's immediate, and a local call (printed like a helper call).
fn llvm_drops_a_field(insn: &Insn) -> bool {
    (insn.code == 0x40 || insn.code == 0x48 || insn.code == 0x50) && insn.imm != 0
        || (insn.code == 0x85 && insn.src == 1)
}

/// Random slot pairs (a fixed-seed xorshift, so runs are repeatable), biased to known opcodes.
fn random_slots(n: usize) -> impl Iterator<Item = Vec<Insn>> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n).map(move |_| {
        let a = next();
        let b = next();
        // Small offsets and immediates are as interesting as the extremes.
        let small = |v: u64| {
            if v & 1 == 0 {
                (v >> 1) as i64 % 64
            } else {
                v as i64
            }
        };
        let first = Insn::new(
            (a & 0xff) as u8,
            ((a >> 8) % 11) as u8,
            ((a >> 12) % 11) as u8,
            small(a >> 16) as i16,
            small(b) as i32,
        );
        let insns = vec![first, Insn::new(0, 0, 0, 0, (b >> 32) as i32)];
        if first.is_ld_imm64() {
            insns
        } else {
            insns[..1].to_vec()
        }
    })
}

#[test]
fn every_line_llvm_prints_assembles_to_its_encoding() {
    let corpus: Vec<Vec<Insn>> = support::probes()
        .into_iter()
        .chain(random_slots(200_000))
        .filter(|p| matches!(decode(p, 0), Ok(op) if op.slots() == p.len() && !matches!(op, Op::LdImm64 { pseudo: 1.., .. })))
        .collect();
    let bytes: Vec<u8> = corpus.iter().flat_map(|p| insns_to_bytes(p)).collect();
    let input: String = bytes.iter().map(|b| format!("{b:#04x} ")).collect();
    let child = Command::new(LLVM_MC)
        .args([
            "--disassemble",
            "-triple=bpfel",
            "-mcpu=v4",
            "-show-encoding",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skipped: cannot run {LLVM_MC}: {e}");
            return;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .unwrap_or_else(|e| panic!("writing to {LLVM_MC}: {e}"));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{LLVM_MC}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let (mut checked, mut diffs) = (0, Vec::new());
    for line in text.lines() {
        let Some((asm, enc)) = line.split_once("# encoding: [") else {
            continue;
        };
        let want: Vec<u8> = enc
            .trim_end_matches(']')
            .split(',')
            .filter_map(|b| u8::from_str_radix(b.trim().trim_start_matches("0x"), 16).ok())
            .collect();
        let want_insns = bpfkit_isa::insns_from_bytes(&want).unwrap_or_default();
        if want_insns.first().is_some_and(llvm_drops_a_field) {
            continue;
        }
        checked += 1;
        match kernel::assemble(asm.trim()) {
            Ok(got) if got == want_insns => {}
            other => diffs.push(format!(
                "`{}`: want {want_insns:?}, got {other:?}",
                asm.trim()
            )),
        }
    }
    eprintln!(
        "{} instructions given to LLVM, {checked} lines checked",
        corpus.len()
    );
    assert!(checked > 1000, "too few lines checked: {checked}");
    assert!(
        diffs.is_empty(),
        "{} lines differ:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}
