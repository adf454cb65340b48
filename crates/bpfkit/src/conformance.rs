//! The eBPF ISA conformance suite's runner: parse a `.data` file, assemble or decode its
//! program, run it in the checked and the fast interpreter, and compare r0 as a 64-bit value.
//!
//! The file format is the `bpf_conformance` project's (see `shared/conformance/FORMAT.md`):
//! sections opened by `-- asm`, `-- raw`, `-- mem`, `-- result`, `-- error` (and the notes
//! `-- c`, `-- no register offset`), `#` comments. A run follows the suite's conventions:
//! r1 = a private copy of the `-- mem` bytes (also the packet of LD_ABS / LD_IND), r2 = its
//! length, both 0 without memory; helper 5 is the "unwind" helper (returns r1; zero ends the
//! program with r0 = 0); `call %rN` (uBPF's callx, which Linux rejects) is reported
//! unsupported by name.
//!
//! A program is run checked first; only a clean checked run lets the same program run on the
//! same input in the fast interpreter (the checked run proves every access it makes valid). A
//! file with `-- error` passes when the program is rejected, and the [`Outcome::Rejected`]
//! value names the stage and reason, so tests can check that a negative file fails for the
//! right reason.

use bpfkit_isa::asm::conformance::assemble;
use bpfkit_isa::asm::AsmError;
use bpfkit_isa::{opcode, Insn};
use bpfkit_vm::{Helper, Helpers, Program, RunCtx, Vm, VmError};
use std::fmt;
use std::path::{Path, PathBuf};

/// The helper id of the suite's "unwind" helper.
pub const UNWIND_HELPER: u32 = 5;

/// The instruction budget of a conformance run (the suite's programs run a few thousand).
pub const BUDGET: u64 = 1_000_000;

/// A parsed test file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TestFile {
    /// The `-- asm` text and the file line of its first line.
    pub asm: Option<(String, usize)>,
    /// The `-- raw` program (it wins over `-- asm` when both are present).
    pub raw: Option<Vec<Insn>>,
    /// The `-- mem` bytes.
    pub mem: Option<Vec<u8>>,
    /// The `-- result` value.
    pub result: Option<u64>,
    /// The `-- error` text (empty when the section has none).
    pub error: Option<String>,
    /// Sections this runner does not know, with their line: they make the program invalid.
    pub unknown_sections: Vec<(usize, String)>,
}

/// A file that cannot be read as a test.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line in the file.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

fn parse_err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    None,
    Asm,
    Raw,
    Mem,
    Result,
    Error,
    Note,
    Unknown,
}

/// Parses a test file.
///
/// # Errors
/// A [`ParseError`] naming the line when a `-- raw`, `-- mem` or `-- result` section holds
/// something other than what the format allows, or a section appears twice.
pub fn parse(text: &str) -> Result<TestFile, ParseError> {
    let mut file = TestFile::default();
    let mut section = Section::None;
    let mut asm = String::new();
    let mut raw = Vec::new();
    let mut mem = Vec::new();
    let mut seen = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        let n = idx + 1;
        if let Some(name) = line.strip_prefix("-- ") {
            let name = name.trim();
            section = match name {
                "asm" => Section::Asm,
                "raw" => Section::Raw,
                "mem" => Section::Mem,
                "result" => Section::Result,
                "error" => Section::Error,
                "c" | "no register offset" => Section::Note,
                _ => {
                    file.unknown_sections.push((n, name.to_string()));
                    Section::Unknown
                }
            };
            if !matches!(section, Section::Note | Section::Unknown) {
                if seen.contains(&name.to_string()) {
                    return Err(parse_err(n, format!("section `-- {name}` appears twice")));
                }
                seen.push(name.to_string());
            }
            match section {
                Section::Asm => file.asm = Some((String::new(), n + 1)),
                Section::Error => file.error = Some(String::new()),
                _ => {}
            }
            continue;
        }
        let content = line.split('#').next().unwrap_or_default().trim();
        match section {
            // The assembler sees every line (comments included) so its line numbers map back.
            Section::Asm => {
                asm.push_str(line);
                asm.push('\n');
            }
            _ if content.is_empty() => {}
            Section::Raw => raw.extend(parse_raw_line(content, n)?),
            Section::Mem => {
                for tok in content.split_whitespace() {
                    let byte = u8::from_str_radix(tok, 16)
                        .map_err(|_| parse_err(n, format!("`{tok}` is not a hex byte")))?;
                    mem.push(byte);
                }
            }
            Section::Result => {
                if file.result.is_some() {
                    return Err(parse_err(n, "a second value in `-- result`"));
                }
                file.result =
                    Some(parse_u64(content).ok_or_else(|| {
                        parse_err(n, format!("`{content}` is not a 64-bit value"))
                    })?);
            }
            Section::Error => {
                let e = file.error.get_or_insert_with(String::new);
                if !e.is_empty() {
                    e.push('\n');
                }
                e.push_str(content);
            }
            Section::None => {
                return Err(parse_err(
                    n,
                    format!("text outside any section: `{content}`"),
                ));
            }
            Section::Note | Section::Unknown => {}
        }
    }
    if let Some((text, _)) = file.asm.as_mut() {
        *text = asm;
    }
    if seen.iter().any(|s| s == "raw") {
        file.raw = Some(raw);
    }
    if seen.iter().any(|s| s == "mem") {
        file.mem = Some(mem);
    }
    Ok(file)
}

/// One `-- raw` line: a little-endian 64-bit word (`0x5566778800000018`) or 8 bytes in memory
/// order (`18 00 00 00 88 77 66 55`).
fn parse_raw_line(content: &str, n: usize) -> Result<Vec<Insn>, ParseError> {
    let toks: Vec<&str> = content.split_whitespace().collect();
    match toks.as_slice() {
        [word] => {
            let hex = word
                .strip_prefix("0x")
                .or_else(|| word.strip_prefix("0X"))
                .unwrap_or(word);
            let w = u64::from_str_radix(hex, 16)
                .map_err(|_| parse_err(n, format!("`{word}` is not a 64-bit hex word")))?;
            Ok(vec![Insn::from_u64(w)])
        }
        bytes if bytes.len().is_multiple_of(8) => {
            let mut out = Vec::new();
            for chunk in bytes.chunks(8) {
                let mut b = [0u8; 8];
                for (slot, tok) in b.iter_mut().zip(chunk) {
                    *slot = u8::from_str_radix(tok, 16)
                        .map_err(|_| parse_err(n, format!("`{tok}` is not a hex byte")))?;
                }
                out.push(Insn::from_bytes(b));
            }
            Ok(out)
        }
        _ => Err(parse_err(n, "a raw line is one 64-bit word or 8 bytes")),
    }
}

fn parse_u64(s: &str) -> Option<u64> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else if let Some(neg) = s.strip_prefix('-') {
        neg.parse::<u64>().ok().map(u64::wrapping_neg)
    } else {
        s.parse().ok()
    }
}

/// The interpreter a result came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The checked interpreter.
    Checked,
    /// The fast interpreter.
    Fast,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Checked => "checked",
            Mode::Fast => "fast",
        })
    }
}

/// Why a program did not run to a result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// A section the format does not define (the program text is invalid).
    UnknownSection {
        /// File line.
        line: usize,
        /// The section name.
        name: String,
    },
    /// The assembler refused the `-- asm` text.
    Assemble {
        /// The assembler's error (its line is relative to the section).
        error: AsmError,
        /// The file line of the offending text.
        file_line: usize,
    },
    /// Decoding or translation refused the program (encoding checks, jump ranges, r10 writes).
    Load(VmError),
    /// The checked interpreter stopped with an error.
    Run(VmError),
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownSection { line, name } => {
                write!(f, "line {line}: unknown section `-- {name}`")
            }
            Self::Assemble { error, file_line } => {
                write!(f, "assembler: line {file_line}: {}", error.message)
            }
            Self::Load(e) => write!(f, "load: {e}"),
            Self::Run(e) => write!(f, "checked run: {e}"),
        }
    }
}

/// Why a test failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The file is not a readable test.
    Parse(ParseError),
    /// The file has neither `-- asm` nor `-- raw`: there is no program to run.
    NoProgram,
    /// The file has neither `-- result` nor `-- error`.
    NoExpectation,
    /// The file expects a result, but the program was rejected.
    Rejected(Rejection),
    /// The file expects an error, but the program ran in both modes.
    NotRejected {
        /// The r0 it returned.
        r0: u64,
    },
    /// r0 is not the expected value.
    Mismatch {
        /// Which interpreter.
        mode: Mode,
        /// The `-- result` value.
        expected: u64,
        /// The r0 it returned.
        got: u64,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Parse(e) => write!(f, "unreadable test file: {e}"),
            Self::NoProgram => write!(
                f,
                "no program: the file has no `-- asm` or `-- raw` section"
            ),
            Self::NoExpectation => write!(f, "the file has neither `-- result` nor `-- error`"),
            Self::Rejected(r) => write!(f, "expected a result, but rejected by {r}"),
            Self::NotRejected { r0 } => {
                write!(
                    f,
                    "expected an error, but the program ran and returned {r0:#x}"
                )
            }
            Self::Mismatch {
                mode,
                expected,
                got,
            } => {
                write!(
                    f,
                    "{mode} interpreter returned {got:#x}, expected {expected:#x}"
                )
            }
        }
    }
}

/// The outcome of one test file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Both interpreters returned the expected r0.
    Passed {
        /// The r0 both returned.
        r0: u64,
    },
    /// The file expects an error and the program was rejected, for this reason.
    Rejected(Rejection),
    /// The program uses something bpfkit deliberately does not run; the text names it.
    Unsupported(String),
    /// The test failed.
    Failed(Failure),
}

impl Outcome {
    /// Whether the outcome counts as a pass ([`Outcome::Passed`] or [`Outcome::Rejected`]).
    #[must_use]
    pub fn is_pass(&self) -> bool {
        matches!(self, Self::Passed { .. } | Self::Rejected(_))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Passed { r0 } => write!(f, "passed (r0 = {r0:#x})"),
            Self::Rejected(r) => write!(f, "rejected as expected by {r}"),
            Self::Unsupported(what) => write!(f, "unsupported: {what}"),
            Self::Failed(why) => write!(f, "FAILED: {why}"),
        }
    }
}

extern "C" fn unwind(r1: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    r1
}

/// The helper table of conformance runs: helper 5 is the unwind helper.
#[must_use]
pub fn helpers() -> Helpers {
    let mut h = Helpers::new();
    h.set(UNWIND_HELPER, Helper::unwind_on_zero(unwind));
    h
}

/// Runs the text of a test file.
#[must_use]
pub fn run_text(text: &str) -> Outcome {
    match parse(text) {
        Ok(file) => run(&file),
        Err(e) => Outcome::Failed(Failure::Parse(e)),
    }
}

/// Reads and runs a test file.
///
/// # Errors
/// The I/O error when the file cannot be read.
pub fn run_file(path: &Path) -> std::io::Result<Outcome> {
    Ok(run_text(&std::fs::read_to_string(path)?))
}

/// Runs a parsed test file.
#[must_use]
pub fn run(file: &TestFile) -> Outcome {
    let ran = load_and_run(file);
    match (ran, &file.error, file.result) {
        (Ran::Unsupported(what), _, _) => Outcome::Unsupported(what),
        (Ran::NoProgram, _, _) => Outcome::Failed(Failure::NoProgram),
        (Ran::Rejected(r), Some(_), _) => Outcome::Rejected(r),
        (Ran::Rejected(r), None, _) => Outcome::Failed(Failure::Rejected(r)),
        (Ran::Returned { checked, .. }, Some(_), _) => {
            Outcome::Failed(Failure::NotRejected { r0: checked })
        }
        (Ran::Returned { .. }, None, None) => Outcome::Failed(Failure::NoExpectation),
        (Ran::Returned { checked, fast }, None, Some(expected)) => {
            if checked != expected {
                Outcome::Failed(Failure::Mismatch {
                    mode: Mode::Checked,
                    expected,
                    got: checked,
                })
            } else if fast != expected {
                Outcome::Failed(Failure::Mismatch {
                    mode: Mode::Fast,
                    expected,
                    got: fast,
                })
            } else {
                Outcome::Passed { r0: checked }
            }
        }
    }
}

enum Ran {
    NoProgram,
    Unsupported(String),
    Rejected(Rejection),
    Returned { checked: u64, fast: u64 },
}

/// uBPF's callx: `JMP | CALL | X`, the target in a register.
const CALLX: u8 = opcode::JMP | opcode::CALL | opcode::X;

fn load_and_run(file: &TestFile) -> Ran {
    if let Some((line, name)) = file.unknown_sections.first() {
        return Ran::Rejected(Rejection::UnknownSection {
            line: *line,
            name: name.clone(),
        });
    }
    let insns = match (&file.raw, &file.asm) {
        (Some(raw), _) => raw.clone(),
        (None, Some((text, first_line))) => match assemble(text) {
            Ok(insns) => insns,
            Err(error) => {
                let file_line = if error.line == 0 {
                    *first_line
                } else {
                    first_line + error.line - 1
                };
                return Ran::Rejected(Rejection::Assemble { error, file_line });
            }
        },
        (None, None) => return Ran::NoProgram,
    };
    if let Some(pc) = insns.iter().position(|i| i.code == CALLX) {
        return Ran::Unsupported(format!(
            "callx (`call %rN` at instruction {pc}): a uBPF extension that Linux rejects"
        ));
    }
    let helpers = helpers();
    let program = match Program::new(&insns, &helpers) {
        Ok(p) => p,
        Err(e) => return Ran::Rejected(Rejection::Load(e)),
    };
    let checked = {
        let mut mem = file.mem.clone().unwrap_or_default();
        match program.run_checked(&run_ctx(file.mem.is_some(), &mut mem)) {
            Ok(r0) => r0,
            Err(e) => return Ran::Rejected(Rejection::Run(e)),
        }
    };
    // SAFETY: the checked interpreter just ran this program on this same input without error:
    // every load, store and atomic it executed was inside the run's stack frames, its memory or
    // what helpers returned, and calls stayed within MAX_CALL_FRAMES. The interpreter is
    // deterministic and the fast run starts from an identical copy of the memory (and the
    // helpers are pure), so it takes the same path and makes the same accesses.
    let vm = unsafe { Vm::from_program(program) };
    let mut mem = file.mem.clone().unwrap_or_default();
    let fast = vm.run_ctx(&run_ctx(file.mem.is_some(), &mut mem));
    Ran::Returned { checked, fast }
}

/// r1/r2 = the memory (also the packet), or 0/0 without `-- mem`.
fn run_ctx(has_mem: bool, mem: &mut [u8]) -> RunCtx<'_> {
    let ctx = RunCtx::new().with_budget(BUDGET);
    if has_mem {
        ctx.with_mem(mem)
    } else {
        ctx
    }
}

/// A program that ran cleanly in the checked interpreter on its input, and may therefore run
/// on that same input in the fast one (the `bpfkit run` command's engine).
///
/// The environment is the suite's: r1/r2 = a fresh copy of the memory (0/0 without memory),
/// helper 5 = unwind, no other helper. Every fast run starts from an identical copy of the
/// memory, so it repeats the checked run exactly.
pub struct TrialRun {
    vm: Vm,
    mem: Option<Vec<u8>>,
    checked_r0: u64,
}

impl TrialRun {
    /// Translates `insns` and runs them once in the checked interpreter with `budget`.
    ///
    /// # Errors
    /// The translation error or the checked run's fault.
    pub fn new(insns: &[Insn], mem: Option<Vec<u8>>, budget: u64) -> Result<Self, VmError> {
        let program = Program::new(insns, &helpers())?;
        let mut copy = mem.clone().unwrap_or_default();
        let checked_r0 =
            program.run_checked(&run_ctx(mem.is_some(), &mut copy).with_budget(budget))?;
        // SAFETY: the checked interpreter ran this program on this input without error, so
        // every access it made was valid and calls stayed within MAX_CALL_FRAMES; the
        // interpreter is deterministic, the only helper (unwind) is pure, and every fast run
        // (`run_fast`) starts from an identical copy of the same memory, so it repeats exactly
        // the accesses the checked run proved valid.
        let vm = unsafe { Vm::from_program(program) };
        Ok(Self {
            vm,
            mem,
            checked_r0,
        })
    }

    /// r0 of the checked run.
    #[must_use]
    pub fn checked_r0(&self) -> u64 {
        self.checked_r0
    }

    /// Runs once more in the checked interpreter (on a fresh copy of the memory).
    ///
    /// # Errors
    /// The run's fault (none, since the first checked run was clean; kept typed all the same).
    pub fn run_checked(&self, scratch: &mut Vec<u8>, budget: u64) -> Result<u64, VmError> {
        self.refresh(scratch);
        self.vm
            .run_checked(&run_ctx(self.mem.is_some(), scratch).with_budget(budget))
    }

    /// Runs in the fast interpreter on a fresh copy of the memory (copied into `scratch`).
    pub fn run_fast(&self, scratch: &mut Vec<u8>) -> u64 {
        self.refresh(scratch);
        self.vm.run_ctx(&run_ctx(self.mem.is_some(), scratch))
    }

    fn refresh(&self, scratch: &mut Vec<u8>) {
        scratch.clear();
        if let Some(m) = &self.mem {
            scratch.extend_from_slice(m);
        }
    }
}

/// Every `*.data` file under `dir` (recursively), sorted by path.
///
/// # Errors
/// The I/O error of a directory that cannot be read.
pub fn data_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "data") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_section_form() {
        let text = "# licence\n-- asm\nmov %r0, 1 # one\nexit\n-- mem\n01 ff\n 02\n-- raw\n\
                    0x00000001000000b7\nb7 00 00 00 02 00 00 00\n-- result\n0x10\n-- c\nint x;\n";
        let f = parse(text).unwrap_or_default();
        assert_eq!(f.asm.as_ref().map(|a| a.1), Some(3));
        assert_eq!(f.mem, Some(vec![1, 0xff, 2]));
        assert_eq!(
            f.raw,
            Some(vec![
                Insn::new(0xb7, 0, 0, 0, 1),
                Insn::new(0xb7, 0, 0, 0, 2)
            ])
        );
        assert_eq!(f.result, Some(16));
        assert!(f.unknown_sections.is_empty());
    }

    #[test]
    fn malformed_sections_are_errors_with_lines() {
        assert_eq!(parse("-- mem\nzz\n").map_err(|e| e.line), Err(2));
        assert_eq!(parse("-- result\n1\n2\n").map_err(|e| e.line), Err(3));
        assert_eq!(parse("-- raw\n01 02 03\n").map_err(|e| e.line), Err(2));
        assert_eq!(parse("exit\n").map_err(|e| e.line), Err(1));
        assert_eq!(parse("-- asm\n-- asm\n").map_err(|e| e.line), Err(2));
    }

    #[test]
    fn runs_and_compares_all_64_bits() {
        // lddw r0, 0x1122334455667788 (RFC 9669 §5.4 example encoding); exit.
        let ok = "-- raw\n0x5566778800000018\n0x1122334400000000\n0x0000000000000095\n\
                  -- result\n0x1122334455667788\n";
        assert_eq!(
            run_text(ok),
            Outcome::Passed {
                r0: 0x1122_3344_5566_7788
            }
        );
        let high = ok.replace("0x1122334455667788\n", "0x1122334555667788\n");
        assert!(matches!(
            run_text(&high),
            Outcome::Failed(Failure::Mismatch { .. })
        ));
    }
}
