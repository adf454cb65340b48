//! The decoder's encoding checks against the live kernel's verifier.
//!
//! Every opcode byte is tried with a set of field values (registers, offsets and immediates
//! that some instruction uses and others must leave zero), behind a prelude that gives every
//! register a value. The kernel's verdict on the encoding is its log's error line when that
//! line is one of the encoding messages (`unknown opcode 8d`, `BPF_ALU uses reserved fields`,
//! ...); a program it rejects for anything else (an uninitialised read, a bad helper id) has
//! an encoding the kernel accepts. The decoder must accept exactly the encodings the kernel
//! accepts, and reject the others with the kernel's message. Skips, saying why, without the
//! `bpf()` system call.

mod support;

use bpfkit_isa::{decode_all, Insn};
use bpfkit_kernel::{available, names, ProgLoad};

/// The beginnings of the kernel's messages about an encoding (not about program state).
const ENCODING_MESSAGES: [&str; 14] = [
    "addr_space_cast insn can only",
    "unknown opcode",
    "uses reserved fields",
    "invalid BPF_ALU opcode",
    "invalid BPF_JMP/JMP32 opcode",
    "invalid bpf_ld_imm64 insn",
    "unrecognized bpf_ld_imm64 insn",
    "invalid BPF_LD_IMM insn",
    "BPF_ATOMIC uses invalid atomic opcode",
    "invalid atomic operand size",
    "invalid may_goto imm",
    "is invalid",
    "BPF_LDX uses reserved fields",
    "BPF_ST uses reserved fields",
];

/// The kernel's error line for the program, when it is about an encoding.
fn kernel_encoding_error(log: &str) -> Option<String> {
    let line = log.lines().rev().find(|l| {
        !l.is_empty() && !l.starts_with("processed ") && !l.starts_with("verification time")
    })?;
    ENCODING_MESSAGES
        .iter()
        .any(|m| line.contains(m))
        .then(|| line.to_string())
}

/// Errors of the kernel's passes before it checks instruction fields (control flow, map and
/// BTF lookups): a probe stopped by one of them says nothing about its encoding.
const EARLIER_ERRORS: [&str; 11] = [
    "jump out of range",
    "unreachable insn",
    "last insn is not an exit or jmp",
    "back-edge",
    "infinite loop",
    "failed to find BTF",
    "kernel btf_id",
    "is not pointing to valid bpf_map",
    "pseudo btf_id",
    "fd_idx without fd_array",
    "jump into the middle of ldimm64",
];

fn probes() -> Vec<Vec<Insn>> {
    let mut out = Vec::new();
    let fields: &[(u8, u8, i16, i32)] = &[
        (1, 0, 0, 0),
        (1, 2, 0, 0),
        (0, 0, 0, 0),
        (1, 0, 1, 0),
        (1, 2, 1, 0),
        (1, 0, 0, 1),
        (1, 2, 0, 1),
        (1, 0, -1, 0),
        (1, 0, 0, -1),
        (1, 2, 8, 0),
        (1, 2, 16, 0),
        (1, 2, 32, 0),
        (1, 0, 8, 0),
        (1, 0, 0, 16),
        (1, 0, 0, 32),
        (1, 0, 0, 64),
        (1, 0, 1, 16),
        (1, 2, 0, 16),
        (11, 0, 0, 0),
        (1, 11, 0, 0),
        (15, 15, 0, 0),
        (0, 1, 0, 0),
        (0, 0, 1, 0),
        (0, 0, 0, 1),
        (0, 0, 3, 0),
        (0, 0, 0, 3),
        (0, 1, 3, 0),
        (0, 2, 3, 0),
        (0, 2, 0, 3),
        (0, 2, 0, 5),
        (10, 2, -8, 0),
        (10, 2, -8, 1),
        (10, 2, -8, 0x40),
        (10, 2, -8, 0x41),
        (10, 2, -8, 0x50),
        (10, 2, -8, 0x51),
        (10, 2, -8, 0xa0),
        (10, 2, -8, 0xa1),
        (10, 2, -8, 0xe1),
        (10, 2, -8, 0xf1),
        (10, 2, -8, 0xe0),
        (10, 2, -8, 0x10),
        (10, 2, -8, 0x100),
        (10, 2, -8, 0x110),
        (10, 2, -8, 0x101),
        (2, 10, -8, 0x100),
        (10, 0, -8, 7),
    ];
    for code in 0..=255u8 {
        if code == 0x18 {
            continue;
        }
        for &(dst, src, off, imm) in fields {
            out.push(vec![Insn::new(code, dst, src, off, imm)]);
        }
    }
    // LD_IMM64: every src, a dirty first slot, and every field of the second slot.
    for src in 0..8u8 {
        for (off, second) in [
            (0, Insn::new(0, 0, 0, 0, 0)),
            (0, Insn::new(0, 0, 0, 0, 1)),
            (1, Insn::new(0, 0, 0, 0, 0)),
            (0, Insn::new(0, 1, 0, 0, 0)),
            (0, Insn::new(0, 0, 1, 0, 0)),
            (0, Insn::new(0, 0, 0, 1, 0)),
            (0, Insn::new(0xb7, 0, 0, 0, 0)),
        ] {
            out.push(vec![Insn::new(0x18, 1, src, off, 0), second]);
        }
    }
    out
}

#[test]
fn decoder_accepts_exactly_the_encodings_the_kernel_accepts() {
    if let Err(why) = available() {
        eprintln!("skipped: {why}");
        return;
    }
    let mut diffs = Vec::new();
    let mut inconclusive = 0;
    let probes = probes();
    for probe in &probes {
        let prog = support::kernel_probe(probe);
        let loaded = ProgLoad {
            log_level: 1,
            ..ProgLoad::new(names::PROG_SOCKET_FILTER)
        }
        .load(&prog);
        let last = loaded
            .log
            .lines()
            .rev()
            .find(|l| !l.is_empty() && !l.starts_with("processed "))
            .unwrap_or_default()
            .to_string();
        if EARLIER_ERRORS.iter().any(|e| last.contains(e)) {
            inconclusive += 1;
            continue;
        }
        let kernel = kernel_encoding_error(&loaded.log);
        let ours = decode_all(&prog).err();
        let agree = match (&kernel, &ours) {
            (None, None) => true,
            (Some(k), Some(e)) => *k == e.kind.kernel_message(),
            _ => false,
        };
        if !agree {
            diffs.push(format!(
                "{probe:?}: kernel {:?} [{last}] / ours {:?}",
                kernel,
                ours.map(|e| e.kind.kernel_message())
            ));
        }
    }
    eprintln!(
        "{} probes, {inconclusive} stopped by an earlier check",
        probes.len()
    );
    assert!(
        inconclusive * 10 < probes.len(),
        "too many inconclusive probes: {inconclusive}"
    );
    assert!(
        diffs.is_empty(),
        "{} of {} probes differ:\n{}",
        diffs.len(),
        probes.len(),
        diffs.join("\n")
    );
}
