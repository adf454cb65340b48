//! The verifier case table of `tests/verifier/*.cases`: parsing, and running a case in the
//! kernel (see tests/verifier/README.md for the format).
//!
//! A case is a program in the kernel/LLVM assembler syntax with its program type, license,
//! maps and load flags, and the verdict the kernel gives it: `accept`, or `reject ERRNO` with
//! the first line of the verifier's error message. The table is kept honest by a test that loads
//! every case into the running kernel ([`run_in_kernel`]) and compares ([`Case::check`]).
//!
//! Assembling is the caller's: [`run_in_kernel`] takes the program as instructions, produced
//! from [`Case::asm_for_assembler`] (the text with the `map[I]` / `map_value[I] + OFF`
//! references turned into plain LD_IMM64 constants that [`resolve_map_refs`] recognises).

use std::fmt;
use std::path::{Path, PathBuf};

use bpfkit_isa::Insn;

use crate::errno::Errno;
use crate::names;
use crate::prog::{ProgLoad, BPF_F_ANY_ALIGNMENT, BPF_F_STRICT_ALIGNMENT};

/// A map a case needs, as `bpfkit verify --map TYPE:KEY_SIZE:VALUE_SIZE:MAX_ENTRIES` spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapSpec {
    /// The kernel's map type name without the prefix, lowercase (`hash`, `array`, ...).
    pub map_type: String,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
}

impl MapSpec {
    /// Parses `TYPE:KEY:VALUE:MAX`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.trim().split(':').collect();
        let [ty, k, v, m] = parts.as_slice() else {
            return Err(format!(
                "map `{s}`: expected TYPE:KEY_SIZE:VALUE_SIZE:MAX_ENTRIES"
            ));
        };
        if names::map_type_by_name(ty).is_none() {
            return Err(format!("map `{s}`: unknown map type `{ty}`"));
        }
        let num = |what: &str, t: &str| {
            t.parse::<u32>()
                .map_err(|_| format!("map `{s}`: {what} `{t}` is not a number"))
        };
        Ok(Self {
            map_type: (*ty).to_string(),
            key_size: num("key size", k)?,
            value_size: num("value size", v)?,
            max_entries: num("max entries", m)?,
        })
    }
}

impl fmt::Display for MapSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}",
            self.map_type, self.key_size, self.value_size, self.max_entries
        )
    }
}

/// The verdict a case expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// The program loads.
    Accept,
    /// The program is rejected with this errno (`EACCES` from the verifier's analysis, `EINVAL`
    /// from its structural checks, ...) and this first error line.
    Reject {
        /// The errno name, e.g. `EACCES`.
        errno: String,
        /// The first line of the verifier's error message (see [`error_lines`]).
        error: String,
    },
}

/// One case of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// The case's name, unique within the table.
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// The 1-based line of its `===` header.
    pub line: usize,
    /// Program type name (`socket_filter`, `sched_cls`, `xdp`, `kprobe`, `tracepoint`, ...).
    pub prog_type: String,
    /// The license string (default `GPL`).
    pub license: String,
    /// The maps, in index order (LD_IMM64 src=1/2 with imm = i names the i-th).
    pub maps: Vec<MapSpec>,
    /// Load flags by name: `strict_alignment`, `any_alignment`.
    pub flags: Vec<String>,
    /// `privilege: unprivileged`: the load is made without CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN
    /// and CAP_NET_ADMIN (default: privileged, as root).
    pub unprivileged: bool,
    /// The expected verdict.
    pub expect: Expect,
    /// The program text exactly as written (comments included).
    pub asm: String,
    /// The 1-based line where the program text starts.
    pub asm_line: usize,
    /// `expected_attach_type` by number (`attach:` by name, see [`names::ATTACH_TYPES`];
    /// default 0).
    pub expected_attach_type: u32,
}

/// A syntax error in a case file, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The file.
    pub file: PathBuf,
    /// The 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// The program flags a case may name.
const FLAGS: &[(&str, u32)] = &[
    ("strict_alignment", BPF_F_STRICT_ALIGNMENT),
    ("any_alignment", BPF_F_ANY_ALIGNMENT),
];

/// Parses one case file.
pub fn parse(text: &str, file: &Path) -> Result<Vec<Case>, ParseError> {
    let err = |line: usize, message: String| ParseError {
        file: file.to_path_buf(),
        line,
        message,
    };
    let mut cases = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let raw = lines[i];
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            i += 1;
            continue;
        }
        let Some(name) = t.strip_prefix("===") else {
            return Err(err(
                i + 1,
                format!("expected `=== NAME` to open a case, found `{t}`"),
            ));
        };
        let name = name.trim().to_string();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(err(i + 1, "a case name is one word".to_string()));
        }
        let header_line = i + 1;
        let mut case = Case {
            name,
            file: file.to_path_buf(),
            line: header_line,
            prog_type: String::new(),
            license: "GPL".to_string(),
            maps: Vec::new(),
            flags: Vec::new(),
            unprivileged: false,
            expect: Expect::Accept,
            asm: String::new(),
            asm_line: 0,
            expected_attach_type: 0,
        };
        let mut verdict: Option<(String, Option<String>)> = None;
        let mut error: Option<String> = None;
        i += 1;
        // Header fields up to `---`.
        loop {
            let Some(raw) = lines.get(i) else {
                return Err(err(
                    header_line,
                    "case has no `---` before its program".into(),
                ));
            };
            let t = raw.trim();
            i += 1;
            if t == "---" {
                break;
            }
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let Some((key, value)) = t.split_once(':') else {
                return Err(err(i, format!("expected `key: value`, found `{t}`")));
            };
            let value = value.trim();
            match key.trim() {
                "type" => {
                    if names::prog_type_by_name(value).is_none() {
                        return Err(err(i, format!("unknown program type `{value}`")));
                    }
                    case.prog_type = value.to_string();
                }
                "license" => case.license = value.to_string(),
                "attach" => {
                    case.expected_attach_type = names::attach_type_by_name(value)
                        .ok_or_else(|| err(i, format!("unknown attach type `{value}`")))?;
                }
                "map" => case
                    .maps
                    .push(MapSpec::parse(value).map_err(|m| err(i, m))?),
                "flags" => {
                    for f in value.split_whitespace() {
                        if !FLAGS.iter().any(|(n, _)| *n == f) {
                            return Err(err(i, format!("unknown flag `{f}`")));
                        }
                        case.flags.push(f.to_string());
                    }
                }
                "privilege" => {
                    case.unprivileged = match value {
                        "privileged" => false,
                        "unprivileged" => true,
                        _ => {
                            return Err(err(
                                i,
                                format!(
                                    "privilege is `privileged` or `unprivileged`, not `{value}`"
                                ),
                            ))
                        }
                    }
                }
                "expect" => {
                    let mut words = value.split_whitespace();
                    match (words.next(), words.next(), words.next()) {
                        (Some("accept"), None, None) => verdict = Some(("accept".into(), None)),
                        (Some("reject"), Some(e), None) if e.starts_with('E') => {
                            verdict = Some(("reject".into(), Some(e.to_string())));
                        }
                        _ => {
                            return Err(err(
                                i,
                                format!("expect is `accept` or `reject ERRNO`, not `{value}`"),
                            ))
                        }
                    }
                }
                "error" => error = Some(value.to_string()),
                other => return Err(err(i, format!("unknown field `{other}`"))),
            }
        }
        if case.prog_type.is_empty() {
            return Err(err(header_line, "case has no `type:`".into()));
        }
        case.expect = match (verdict, error) {
            (None, _) => return Err(err(header_line, "case has no `expect:`".into())),
            (Some((_, None)), None) => Expect::Accept,
            (Some((_, None)), Some(_)) => {
                return Err(err(header_line, "an accepted case has no `error:`".into()))
            }
            (Some((_, Some(errno))), error) => Expect::Reject {
                errno,
                error: error.unwrap_or_default(),
            },
        };
        // The program, up to the next case.
        case.asm_line = i + 1;
        let mut body = Vec::new();
        while let Some(raw) = lines.get(i) {
            if raw.trim_start().starts_with("===") {
                break;
            }
            body.push(*raw);
            i += 1;
        }
        while body.last().is_some_and(|l| l.trim().is_empty()) {
            body.pop();
        }
        case.asm = body.join("\n");
        if case.asm.trim().is_empty() {
            return Err(err(header_line, "case has an empty program".into()));
        }
        cases.push(case);
    }
    Ok(cases)
}

/// Reads and parses every `*.cases` file of `dir`, in file-name order; fails on duplicate names.
pub fn load_dir(dir: &Path) -> Result<Vec<Case>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cases"))
        .collect();
    files.sort();
    let mut all: Vec<Case> = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        for c in parse(&text, &f).map_err(|e| e.to_string())? {
            if let Some(prev) = all.iter().find(|p| p.name == c.name) {
                return Err(format!(
                    "{}:{}: case `{}` already defined at {}:{}",
                    c.file.display(),
                    c.line,
                    c.name,
                    prev.file.display(),
                    prev.line
                ));
            }
            all.push(c);
        }
    }
    Ok(all)
}

/// Low 32 bits of the placeholder constant standing for `map[I]` (plus I).
const MAP_FD_MARK: u32 = 0xbfc1_0000;
/// Low 32 bits of the placeholder constant standing for `map_value[I]` (plus I).
const MAP_VALUE_MARK: u32 = 0xbfc2_0000;

impl Case {
    /// The program text for an assembler: `#` comments removed, and every `map[I]` (a map
    /// pointer, LD_IMM64 src=1) and `map_value[I] + OFF` (the address of a value of array map
    /// I, src=2) replaced by a plain 64-bit constant `N ll` that [`resolve_map_refs`] turns back
    /// into the pseudo form after assembly.
    pub fn asm_for_assembler(&self) -> Result<String, ParseError> {
        let mut out = String::new();
        for (k, line) in self.asm.lines().enumerate() {
            let code = line.split('#').next().unwrap_or("");
            let rewritten = rewrite_map_ref(code).map_err(|message| ParseError {
                file: self.file.clone(),
                line: self.asm_line + k,
                message,
            })?;
            out.push_str(&rewritten);
            out.push('\n');
        }
        Ok(out)
    }

    /// The `BPF_F_*` bits of the case's flags.
    #[must_use]
    pub fn prog_flags(&self) -> u32 {
        FLAGS
            .iter()
            .filter(|(n, _)| self.flags.iter().any(|f| f == n))
            .fold(0, |acc, (_, b)| acc | b)
    }

    /// Compares an outcome with the expectation: `Ok` when they agree, else what differs.
    pub fn check(&self, got: &Outcome) -> Result<(), String> {
        match (&self.expect, got) {
            (Expect::Accept, Outcome::Accepted) => Ok(()),
            (Expect::Accept, Outcome::Rejected { errno, error }) => {
                Err(format!("expected accept, got reject {errno}: {error}"))
            }
            (Expect::Reject { errno, error }, Outcome::Accepted) => {
                Err(format!("expected reject {errno} ({error}), got accept"))
            }
            (
                Expect::Reject { errno, error },
                Outcome::Rejected {
                    errno: got_errno,
                    error: got_error,
                },
            ) => {
                if errno != got_errno {
                    Err(format!(
                        "expected reject {errno}, got reject {got_errno}: {got_error}"
                    ))
                } else if error != got_error {
                    Err(format!(
                        "error line differs:\n  expected: {error}\n  got:      {got_error}"
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// `file:line (name)`, for messages.
    #[must_use]
    pub fn place(&self) -> String {
        format!("{}:{} ({})", self.file.display(), self.line, self.name)
    }
}

/// Rewrites a `map[I]` or `map_value[I] + OFF` operand of one line into a placeholder constant.
fn rewrite_map_ref(code: &str) -> Result<String, String> {
    let Some(at) = code.find("map") else {
        return Ok(code.to_string());
    };
    let rest = &code[at..];
    let (mark, after) = if let Some(r) = rest.strip_prefix("map_value[") {
        (MAP_VALUE_MARK, r)
    } else if let Some(r) = rest.strip_prefix("map[") {
        (MAP_FD_MARK, r)
    } else {
        return Ok(code.to_string());
    };
    let Some((idx, tail)) = after.split_once(']') else {
        return Err(format!("`{}`: missing `]`", code.trim()));
    };
    let idx: u16 = idx
        .trim()
        .parse()
        .map_err(|_| format!("`{}`: map index `{idx}` is not a number", code.trim()))?;
    let tail = tail.trim();
    let (off, tail) = if mark == MAP_VALUE_MARK {
        match tail.strip_prefix('+') {
            Some(t) => {
                let t = t.trim_start();
                let end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
                let off: u32 = t[..end]
                    .parse()
                    .map_err(|_| format!("`{}`: expected `map_value[I] + OFF ll`", code.trim()))?;
                (off, t[end..].trim())
            }
            None => (0, tail),
        }
    } else {
        (0, tail)
    };
    if tail != "ll" {
        return Err(format!(
            "`{}`: a map reference is an LD_IMM64 and ends in `ll`",
            code.trim()
        ));
    }
    let value = (u64::from(off) << 32) | u64::from(mark | u32::from(idx));
    Ok(format!("{}{value:#x} ll", &code[..at]))
}

/// After assembling [`Case::asm_for_assembler`]'s text: turns the placeholder constants back
/// into LD_IMM64 src=1 (imm = map index) and src=2 (imm = map index, second imm = offset).
pub fn resolve_map_refs(insns: &mut [Insn]) {
    let mut i = 0;
    while i + 1 < insns.len() {
        if insns[i].is_ld_imm64() && insns[i].src == 0 {
            let lo = insns[i].imm as u32;
            match lo & 0xffff_0000 {
                MAP_FD_MARK if insns[i + 1].imm == 0 => {
                    insns[i].src = 1;
                    insns[i].imm = (lo & 0xffff) as i32;
                }
                MAP_VALUE_MARK => {
                    insns[i].src = 2;
                    insns[i].imm = (lo & 0xffff) as i32;
                }
                _ => {}
            }
            i += 2;
        } else {
            i += 1;
        }
    }
}

/// What a verifier made of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Loaded.
    Accepted,
    /// Rejected with an errno and the first error line.
    Rejected {
        /// The errno name.
        errno: String,
        /// The first line of the error message.
        error: String,
    },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Accepted => write!(f, "accept"),
            Self::Rejected { errno, error } => write!(f, "reject {errno}: {error}"),
        }
    }
}

/// The kernel's result for one case: the outcome, the whole log, and (when accepted) the
/// loaded program with the maps it uses, ready for `BPF_PROG_TEST_RUN`.
#[derive(Debug)]
pub struct KernelRun {
    /// Accepted or rejected, with the error line.
    pub outcome: Outcome,
    /// The level-1 verifier log.
    pub log: String,
    /// The program, when the kernel accepted it.
    pub prog: Option<crate::prog::Prog>,
    /// The case's maps, in index order.
    pub maps: Vec<crate::map::Map>,
}

/// The lines of the verifier's error message in a level-1 log of a rejected program: the lines
/// after the last instruction or state line (`N: ...`, `from N to M: ...`) and before the
/// statistics line (`processed N insns ...`).
#[must_use]
pub fn error_lines(log: &str) -> Vec<&str> {
    // Lines up to the statistics. Some messages lack their final newline, so the statistics
    // can start mid-line ("expected prog array map for tail callprocessed 3 insns ..."): the
    // part before them still belongs to the message.
    let mut lines: Vec<&str> = Vec::new();
    for line in log.lines() {
        let kept = strip_statistics(line);
        if kept.len() < line.len() {
            if !kept.is_empty() {
                lines.push(kept);
            }
            break;
        }
        lines.push(line);
    }
    let is_progress = |l: &str| {
        let digits = l.bytes().take_while(u8::is_ascii_digit).count();
        (digits > 0 && l[digits..].starts_with(':')) || l.starts_with("from ")
    };
    let start = lines
        .iter()
        .rposition(|l| is_progress(l))
        .map_or(0, |p| p + 1);
    lines[start..]
        .iter()
        .copied()
        .filter(|l| !l.trim().is_empty())
        .collect()
}

/// A verifier log with what legitimately differs between the kernel and bpfkit set aside, for
/// whole-log comparison: map addresses (the kernel's `0xffff...`, bpfkit's `map[id:N]`) with the
/// padding that aligns the state after them, and the verification time.
pub fn normalise_log(log: &str) -> String {
    log.lines()
        .map(|l| {
            let mut out = String::new();
            let mut rest = l;
            while let Some(i) = rest.find(" = 0xffff").or_else(|| rest.find(" = map[id:")) {
                out.push_str(&rest[..i]);
                out.push_str(" = MAP");
                let tail = &rest[i + 3..];
                let end = tail
                    .find(|ch: char| ch.is_whitespace())
                    .unwrap_or(tail.len());
                rest = &tail[end..];
            }
            out.push_str(rest);
            if out.contains(" = MAP") {
                // The address and the handle differ in length, and so does the padding that
                // aligns the state after them (`; R1=map_ptr(...)`).
                if let Some(at) = out.find(" ;") {
                    let head = out[..at].trim_end().len();
                    out.replace_range(head..at, "");
                }
            }
            // The time line, also where a message without a newline runs into it.
            if let Some(at) = out.find("verification time ") {
                out.truncate(at);
                out.push_str("verification time");
            }
            out
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The part of a log line before the statistics (`processed N insns (limit ...`), if any.
fn strip_statistics(line: &str) -> &str {
    let mut from = 0;
    while let Some(p) = line[from..].find("processed ") {
        let at = from + p;
        let rest = &line[at + "processed ".len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && rest[digits..].starts_with(" insns (limit ") {
            return &line[..at];
        }
        from = at + 1;
    }
    line
}

/// Loads a case (already assembled, map references resolved by index) into the kernel: creates
/// its maps, patches their descriptors in, loads at log level 1, and reports the outcome.
/// `Err` when the case's setup (a map) fails, which is a problem of the table, not a verdict,
/// or, for an unprivileged case, when unprivileged loads are impossible here (the reason).
pub fn run_in_kernel(case: &Case, insns: &[Insn]) -> Result<KernelRun, String> {
    let prog_type = names::prog_type_by_name(&case.prog_type)
        .ok_or_else(|| format!("unknown program type `{}`", case.prog_type))?;
    let mut maps = Vec::new();
    for (k, m) in case.maps.iter().enumerate() {
        let ty = names::map_type_by_name(&m.map_type)
            .ok_or_else(|| format!("unknown map type `{}`", m.map_type))?;
        let map = crate::map::map_create(ty, m.key_size, m.value_size, m.max_entries, 0)
            .map_err(|e| format!("creating map {k} ({m}): {e}"))?;
        maps.push(map);
    }
    let fds: Vec<i32> = maps.iter().map(crate::map::Map::fd).collect();
    let mut insns = insns.to_vec();
    crate::resolve_map_indices(&mut insns, &fds).map_err(|e| e.to_string())?;
    // Unprivileged cases load on a thread without capabilities: the sysctl must allow it.
    let _guard = if case.unprivileged {
        Some(crate::UnprivilegedBpf::enable()?)
    } else {
        None
    };
    let load = |log_level: u32| {
        let opts = ProgLoad {
            license: &case.license,
            prog_flags: case.prog_flags(),
            expected_attach_type: case.expected_attach_type,
            log_level,
            ..ProgLoad::new(prog_type)
        };
        if case.unprivileged {
            opts.load_unprivileged(&insns[..])
        } else {
            opts.load(&insns[..])
        }
    };
    let loaded = load(1);
    // A log that overflows the buffer turns any verdict into ENOSPC (the kernel keeps the tail
    // of the log, which holds the error). Ask again without a log for the real errno.
    let errno = match &loaded.result {
        Err(Errno::ENOSPC) => load(0).result.err(),
        Ok(_) => None,
        Err(e) => Some(*e),
    };
    let outcome = match errno {
        None => Outcome::Accepted,
        Some(e) => Outcome::Rejected {
            errno: errno_name(e),
            error: error_lines(&loaded.log)
                .first()
                .map(|s| (*s).to_string())
                .unwrap_or_default(),
        },
    };
    Ok(KernelRun {
        outcome,
        log: loaded.log,
        prog: loaded.result.ok(),
        maps,
    })
}

/// An errno's name, or `E<number>` for one [`Errno::name`] does not know.
fn errno_name(e: Errno) -> String {
    match e.name() {
        "E?" => format!("E{}", e.0),
        n => n.to_string(),
    }
}

/// Rewrites the `expect:` and `error:` lines of the cases in `text` (one file) to the given
/// outcomes, keyed by case name; other text is kept byte for byte. Used to record the kernel's
/// messages while writing cases (`BPFKIT_BLESS=1`); verdicts are reviewed by hand in the diff.
#[must_use]
pub fn rewrite_expectations(text: &str, outcomes: &[(String, Outcome)]) -> String {
    let mut out = String::new();
    let mut current: Option<&Outcome> = None;
    let mut in_header = false;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("===") {
            let name = name.trim();
            current = outcomes.iter().find(|(n, _)| n == name).map(|(_, o)| o);
            in_header = true;
            out.push_str(line);
            continue;
        }
        if in_header && t == "---" {
            in_header = false;
        }
        if in_header {
            if let Some(o) = current {
                if t.starts_with("error:") {
                    continue;
                }
                if t.starts_with("expect:") {
                    match o {
                        Outcome::Accepted => out.push_str("expect: accept\n"),
                        Outcome::Rejected { errno, error } => {
                            out.push_str(&format!("expect: reject {errno}\nerror: {error}\n"));
                        }
                    }
                    continue;
                }
            }
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on an unexpected error"
)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# a comment
=== uninit_r2
type: socket_filter
map: array:4:8:1
expect: reject EACCES
error: R2 !read_ok
---
    r0 = r2   # reads r2
    exit

=== ok
type: xdp
license: Dual MIT/GPL
flags: strict_alignment
expect: accept
---
    r1 = map_value[0] + 16 ll
    r2 = map[1] ll
    r0 = 0
    exit
";

    #[test]
    fn parses_fields_and_programs() {
        let cases = parse(SAMPLE, Path::new("x.cases")).unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].name, "uninit_r2");
        assert_eq!(cases[0].line, 2);
        assert_eq!(cases[0].maps[0].to_string(), "array:4:8:1");
        assert_eq!(
            cases[0].expect,
            Expect::Reject {
                errno: "EACCES".into(),
                error: "R2 !read_ok".into()
            }
        );
        assert_eq!(cases[0].asm, "    r0 = r2   # reads r2\n    exit");
        assert_eq!(cases[0].asm_line, 8);
        assert_eq!(cases[1].license, "Dual MIT/GPL");
        assert_eq!(cases[1].prog_flags(), BPF_F_STRICT_ALIGNMENT);
        assert_eq!(cases[1].expect, Expect::Accept);
    }

    #[test]
    fn bad_headers_name_their_line() {
        let e = parse("=== a\ntype: nope\n---\nexit\n", Path::new("f")).unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (2, "unknown program type `nope`")
        );
        let e = parse(
            "=== a\ntype: xdp\nexpect: maybe\n---\nexit\n",
            Path::new("f"),
        )
        .unwrap_err();
        assert_eq!(e.line, 3);
        let e = parse("r0 = 0\n", Path::new("f")).unwrap_err();
        assert_eq!(e.line, 1);
    }

    #[test]
    fn map_references_survive_assembly_as_placeholders() {
        let cases = parse(SAMPLE, Path::new("x.cases")).unwrap();
        let text = cases[1].asm_for_assembler().unwrap();
        assert!(text.contains("r1 = 0x10bfc20000 ll"), "{text}");
        assert!(text.contains("r2 = 0xbfc10001 ll"), "{text}");
        // What an assembler makes of `r1 = 0x10bfc20000 ll` and `r2 = 0xbfc10001 ll`:
        let mut insns = vec![
            Insn::new(0x18, 1, 0, 0, 0xbfc2_0000_u32 as i32),
            Insn::new(0, 0, 0, 0, 16),
            Insn::new(0x18, 2, 0, 0, 0xbfc1_0001_u32 as i32),
            Insn::new(0, 0, 0, 0, 0),
        ];
        resolve_map_refs(&mut insns);
        assert_eq!((insns[0].src, insns[0].imm, insns[1].imm), (2, 0, 16));
        assert_eq!((insns[2].src, insns[2].imm), (1, 1));
    }

    #[test]
    fn error_lines_follow_the_last_instruction() {
        let log = "0: R1=ctx() R10=fp0\n0: (bf) r0 = r2\nR2 !read_ok\nprocessed 1 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n";
        assert_eq!(error_lines(log), vec!["R2 !read_ok"]);
        let cfg = "unreachable insn 2\nprocessed 0 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n";
        assert_eq!(error_lines(cfg), vec!["unreachable insn 2"]);
        let joined = "0: (85) call bpf_tail_call#12\nexpected prog array map for tail callprocessed 3 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n";
        assert_eq!(
            error_lines(joined),
            vec!["expected prog array map for tail call"]
        );
    }

    #[test]
    fn rewriting_expectations_keeps_everything_else() {
        let outcomes = vec![
            (
                "uninit_r2".to_string(),
                Outcome::Rejected {
                    errno: "EACCES".into(),
                    error: "R2 !read_ok (new)".into(),
                },
            ),
            ("ok".to_string(), Outcome::Accepted),
        ];
        let out = rewrite_expectations(SAMPLE, &outcomes);
        assert_eq!(out, SAMPLE.replace("R2 !read_ok\n", "R2 !read_ok (new)\n"));
    }
}
