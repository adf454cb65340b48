//! Test support: finding the conformance suite, splitting its `.data` files into sections, and
//! wrapping one instruction into a program the kernel verifier will reach it in.
#![allow(dead_code, reason = "each test binary uses part of this module")]

use bpfkit_isa::Insn;
use std::path::PathBuf;

/// The conformance suite's folder: `BPFKIT_CONFORMANCE_DIR`, or `../shared/conformance` from the
/// repository root. `None` (after printing why) when it is absent, so the caller can skip.
pub fn suite_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("BPFKIT_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    };
    if dir.join("tests").is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: conformance suite not found at {} (set BPFKIT_CONFORMANCE_DIR)",
            dir.display()
        );
        None
    }
}

/// The `*.data` files of `dir/sub` whose name starts with `prefix`, sorted.
pub fn data_files(dir: &std::path::Path, sub: &str, prefix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(sub))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        name.starts_with(prefix) && name.ends_with(".data")
    });
    files.sort();
    files
}

/// The headers that open a section of a `.data` file (FORMAT.md). A `-- ` line naming anything
/// else is not a header: it stays in the section it appears in (so an assembler sees it).
const SECTIONS: [&str; 7] = [
    "asm",
    "raw",
    "mem",
    "result",
    "error",
    "c",
    "no register offset",
];

/// The text of section `name` (without its header), if the file has one.
pub fn section(text: &str, name: &str) -> Option<String> {
    let mut current: Option<&str> = None;
    let mut out: Option<String> = None;
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("-- ") {
            if let Some(s) = SECTIONS.iter().find(|s| **s == h.trim()) {
                current = Some(s);
                if *s == name {
                    out.get_or_insert_with(String::new);
                }
                continue;
            }
        }
        if current == Some(name) {
            if let Some(o) = out.as_mut() {
                o.push_str(line);
                o.push('\n');
            }
        }
    }
    out
}

/// Slots in front of the probe.
pub const PRELUDE: usize = 11;

/// `r0 = skb->len` (unknown to the verifier), `r1`..`r9 = 0`, `if r0 == 0 goto +1` (so both the
/// probe and what follows it are visited, even when the probe is an exit), the probe, then
/// forty `r0 = 0` (so forward jumps land) and `exit`.
pub fn kernel_probe(probe: &[Insn]) -> Vec<Insn> {
    let mut p = vec![Insn::new(0x61, 0, 1, 0, 0)];
    p.extend((1..10).map(|r| Insn::new(0xb7, r, 0, 0, 0)));
    p.push(Insn::new(0x15, 0, 0, probe.len() as i16, 0));
    assert_eq!(p.len(), PRELUDE);
    p.extend_from_slice(probe);
    p.extend((0..40).map(|_| Insn::new(0xb7, 0, 0, 0, 0)));
    p.push(Insn::new(0x95, 0, 0, 0, 0));
    p
}

/// One or two slots per probe: every opcode byte with field values that some instruction uses
/// and others must leave zero, and LD_IMM64 with every src and every second-slot field set.
pub fn probes() -> Vec<Vec<Insn>> {
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
