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

use bpfkit_isa::decode_all;
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

#[test]
fn decoder_accepts_exactly_the_encodings_the_kernel_accepts() {
    if let Err(why) = available() {
        eprintln!("skipped: {why}");
        return;
    }
    let mut diffs = Vec::new();
    let mut inconclusive = 0;
    let probes = support::probes();
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

/// Two bad instructions in one program: the kernel reports the one its up-front pass finds
/// (LDX fields, LD_IMM64 shape, unknown opcodes) before any it finds while verifying, and
/// `decode_all` reports the same one.
#[test]
fn decode_all_reports_the_error_the_kernel_reports_first() {
    if let Err(why) = available() {
        eprintln!("skipped: {why}");
        return;
    }
    let i = bpfkit_isa::Insn::new;
    let alu_reserved = i(0x07, 1, 2, 0, 1);
    let exit_reserved = i(0x95, 1, 0, 0, 0);
    let unknown = i(0x8d, 0, 0, 0, 0);
    let ldx_reserved = i(0x61, 1, 10, -4, 7);
    let bad_ld_imm64 = [i(0x18, 1, 0, 0, 0), i(0, 1, 0, 0, 0)];
    let cases: Vec<Vec<bpfkit_isa::Insn>> = vec![
        vec![alu_reserved, unknown],
        vec![unknown, alu_reserved],
        vec![alu_reserved, ldx_reserved],
        vec![ldx_reserved, unknown],
        vec![unknown, ldx_reserved],
        vec![alu_reserved, bad_ld_imm64[0], bad_ld_imm64[1]],
        vec![alu_reserved, exit_reserved],
    ];
    for probe in cases {
        let prog = support::kernel_probe(&probe);
        let loaded = ProgLoad {
            log_level: 1,
            ..ProgLoad::new(names::PROG_SOCKET_FILTER)
        }
        .load(&prog);
        let kernel = kernel_encoding_error(&loaded.log);
        let ours = decode_all(&prog).err().map(|e| e.kind.kernel_message());
        assert_eq!(kernel, ours, "{probe:?}");
    }
}
