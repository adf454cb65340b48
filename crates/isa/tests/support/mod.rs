//! Test support: finding the conformance suite and splitting its `.data` files into sections.

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
