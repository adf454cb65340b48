//! The verifier case table of `tests/verifier/*.cases` (format: tests/verifier/README.md).
//!
//! - `the_table_is_well_formed_and_covers_every_category`: parses, ≥ 300 cases, and every file
//!   (one category of rules) has accepted and rejected cases.
//! - `the_table_says_what_linux_says`: every case is loaded into the running kernel
//!   (`BPF_PROG_LOAD`, privileged, log level 1); the test fails where the kernel's verdict, errno
//!   or first error line differs from the file. `BPFKIT_BLESS=1` rewrites the errno and error
//!   lines of cases whose verdict already agrees (never a verdict). Skips, saying why, where
//!   `bpf()` is unavailable.
//! - `bpfkit_and_llvm_assemble_every_case_alike`: bpfkit's kernel-syntax assembler and LLVM's
//!   (`llvm-mc`, when installed) give the same instructions for every case.
//! - `bpfkit_agrees_with_linux_on_the_table`: bpfkit's `Bpf::prog_load` on every case
//!   ([`run_bpfkit`]);
//!   fails on a verdict that differs from the table unless the case is listed in
//!   `tests/verifier/bpfkit-known-differences.txt`, and reports the agreement counts.
//! - `accepted_cases_run_alike_in_the_kernel_and_bpfkit`: every accepted socket_filter / cgroup_skb /
//!   sched_cls / sched_act / xdp case runs on the same packet with `BPF_PROG_TEST_RUN` in the
//!   kernel and with `Bpf::prog_test_run` in bpfkit's checked interpreter (the soundness oracle);
//!   fails on a fault or a different return value or packet, unless listed as a `run`
//!   difference.
#![expect(
    clippy::unwrap_used,
    reason = "a broken table or a failing tool is the test failure to report"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use bpfkit_isa::Insn;
use bpfkit_kernel::table::{self, normalise_log, Case, Expect, Outcome};

/// The table's folder.
fn table_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/verifier")
}

/// The table's cases; `BPFKIT_TABLE_FILTER=TEXT` keeps only the cases whose name contains TEXT.
fn load_table() -> Vec<Case> {
    let mut cases = table::load_dir(&table_dir()).unwrap_or_else(|e| panic!("{e}"));
    if let Ok(filter) = std::env::var("BPFKIT_TABLE_FILTER") {
        cases.retain(|c| c.name.contains(&filter));
    }
    cases
}

/// Assembles a case's program into instructions with map references as LD_IMM64 src=1/2 and
/// imm = map index, with bpfkit's kernel-syntax assembler. `Err` says why it could not.
fn assemble(case: &Case) -> Result<Vec<Insn>, String> {
    let text = case.asm_for_assembler().map_err(|e| e.to_string())?;
    let mut insns = bpfkit_isa::asm::kernel::assemble(&text).map_err(|e| e.to_string())?;
    table::resolve_map_refs(&mut insns);
    Ok(insns)
}

/// The same with LLVM's assembler (`llvm-mc -triple bpfel`), the reference for this syntax.
fn assemble_with_llvm(case: &Case) -> Result<Vec<Insn>, String> {
    let text = case.asm_for_assembler().map_err(|e| e.to_string())?;
    let mut insns = llvm_mc_assemble(&text)?;
    table::resolve_map_refs(&mut insns);
    Ok(insns)
}

/// The LLVM assembler available on this machine, if any.
fn llvm_mc() -> Option<&'static str> {
    ["llvm-mc-19", "llvm-mc"].into_iter().find(|tool| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Assembles with `llvm-mc` into an object, then takes its `.text` with `llvm-objcopy`.
fn llvm_mc_assemble(text: &str) -> Result<Vec<Insn>, String> {
    let mc = llvm_mc().ok_or("llvm-mc is not installed")?;
    let objcopy = mc.replace("llvm-mc", "llvm-objcopy");
    let dir = std::env::temp_dir().join(format!(
        "bpfkit-verifier-table-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (src, obj, bin) = (dir.join("p.s"), dir.join("p.o"), dir.join("p.bin"));
    std::fs::write(&src, text).map_err(|e| e.to_string())?;
    let run = |cmd: &mut Command| -> Result<(), String> {
        let out = cmd.output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    };
    run(Command::new(mc)
        .args(["-triple", "bpfel", "-mcpu=v4", "-filetype=obj", "-o"])
        .arg(&obj)
        .arg(&src))?;
    run(Command::new(&objcopy)
        .args(["-O", "binary", "--only-section=.text"])
        .arg(&obj)
        .arg(&bin))?;
    let bytes = std::fs::read(&bin).map_err(|e| e.to_string())?;
    std::fs::remove_dir_all(&dir).ok();
    bpfkit_isa::insns_from_bytes(&bytes).map_err(|e| e.to_string())
}

/// Loads a case with the runtime's `BPF_PROG_LOAD` (its verifier in the runtime's environment:
/// helpers, contexts, maps created in a fresh object table). `Err` when bpfkit cannot express
/// the case, saying why.
fn load_in_bpfkit(
    case: &Case,
    insns: &[Insn],
) -> Result<
    (
        bpfkit::Bpf,
        Result<bpfkit::Fd, bpfkit::prog::load::LoadError>,
    ),
    String,
> {
    load_in_bpfkit_at(case, insns, 1).map(|(bpf, loaded)| (bpf, loaded.map(|(fd, _)| fd)))
}

/// What [`load_in_bpfkit_at`] gives: the object table, and the descriptor with the log or the
/// error.
type LoadedAt = (
    bpfkit::Bpf,
    Result<(bpfkit::Fd, String), bpfkit::prog::load::LoadError>,
);

/// [`load_in_bpfkit`] at a given log level, keeping the log of an accepted load too.
fn load_in_bpfkit_at(case: &Case, insns: &[Insn], log_level: u32) -> Result<LoadedAt, String> {
    use bpfkit::maps::MapAttr;
    use bpfkit::prog::load::ProgLoadAttr;
    use bpfkit_verifier::env::ProgType;

    let prog_type = ProgType::from_name(&case.prog_type)
        .ok_or_else(|| format!("program type {} not modelled", case.prog_type))?;
    let bpf = bpfkit::Bpf::new();
    let mut fds = Vec::new();
    for m in &case.maps {
        let attr = MapAttr {
            map_type: bpfkit_kernel::names::map_type_by_name(&m.map_type)
                .ok_or_else(|| format!("map type {} unknown", m.map_type))?,
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries: m.max_entries,
            ..MapAttr::default()
        };
        let fd = bpf
            .map_create(&attr)
            .map_err(|e| format!("map {m} not modelled: {e}"))?;
        fds.push(i32::try_from(fd.0).map_err(|e| e.to_string())?);
    }
    let mut insns = insns.to_vec();
    bpfkit_kernel::resolve_map_indices(&mut insns, &fds).map_err(|e| e.to_string())?;
    let attr = ProgLoadAttr {
        prog_type,
        insns: &insns,
        license: &case.license,
        log_level,
        log_size: bpfkit_kernel::DEFAULT_LOG_SIZE,
    };
    let opts = bpfkit::prog::load::ProgLoadOpts {
        prog_flags: case.prog_flags(),
        expected_attach_type: case.expected_attach_type,
        unprivileged: case.unprivileged,
        ..Default::default()
    };
    let loaded = bpf.prog_load_with(&attr, &opts).map(|l| (l.fd, l.log));
    Ok((bpf, loaded))
}

/// What bpfkit makes of a case ([`load_in_bpfkit`]): its verdict, errno and first error line in
/// the same shape as the kernel's. This is the one function that connects the table to bpfkit.
fn run_bpfkit(case: &Case, insns: &[Insn]) -> Result<Outcome, String> {
    let (_bpf, loaded) = load_in_bpfkit(case, insns)?;
    Ok(match loaded {
        Ok(_) => Outcome::Accepted,
        Err(e) => Outcome::Rejected {
            errno: errno_name(e.errno.code()),
            error: table::error_lines(&e.log)
                .first()
                .map(|s| (*s).to_string())
                .unwrap_or_default(),
        },
    })
}

fn errno_name(e: i32) -> String {
    match bpfkit_kernel::Errno(e).name() {
        "E?" => format!("E{e}"),
        n => n.to_string(),
    }
}

fn same_verdict(expect: &Expect, got: &Outcome) -> bool {
    matches!(
        (expect, got),
        (Expect::Accept, Outcome::Accepted) | (Expect::Reject { .. }, Outcome::Rejected { .. })
    )
}

#[test]
fn the_table_is_well_formed_and_covers_every_category() {
    let cases = table::load_dir(&table_dir()).unwrap_or_else(|e| panic!("{e}"));
    assert!(cases.len() >= 300, "only {} cases", cases.len());
    let mut files: Vec<&Path> = cases.iter().map(|c| c.file.as_path()).collect();
    files.dedup();
    for f in files {
        let of_file = || cases.iter().filter(move |c| c.file == f);
        let accepts = of_file().filter(|c| c.expect == Expect::Accept).count();
        let rejects = of_file().count() - accepts;
        assert!(
            accepts > 0 && rejects > 0,
            "{}: {accepts} accepted and {rejects} rejected cases; every category needs both",
            f.display()
        );
    }
    for c in &cases {
        if let Expect::Reject { error, .. } = &c.expect {
            assert!(
                !error.is_empty(),
                "{}: a rejection needs `error:`",
                c.place()
            );
        }
        c.asm_for_assembler().unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn the_table_says_what_linux_says() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let bless = std::env::var_os("BPFKIT_BLESS").is_some();
    let cases = load_table();
    let mut failures = Vec::new();
    let mut blessed: Vec<(PathBuf, String, Outcome)> = Vec::new();
    // One guard for the whole run keeps unprivileged bpf() allowed (and restores the sysctl).
    let unprivileged = bpfkit_kernel::UnprivilegedBpf::enable();
    if let Err(why) = &unprivileged {
        println!("the `privilege: unprivileged` cases are skipped: {why}");
    }
    let mut skipped = 0;
    for c in &cases {
        if c.unprivileged && unprivileged.is_err() {
            skipped += 1;
            continue;
        }
        let insns = match assemble(c) {
            Ok(i) => i,
            Err(e) => {
                failures.push(format!("{}: does not assemble: {e}", c.place()));
                continue;
            }
        };
        let run = match table::run_in_kernel(c, &insns) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{}: setup failed: {e}", c.place()));
                continue;
            }
        };
        if let Err(why) = c.check(&run.outcome) {
            failures.push(format!("{}: the kernel disagrees: {why}", c.place()));
            if bless && same_verdict(&c.expect, &run.outcome) {
                blessed.push((c.file.clone(), c.name.clone(), run.outcome));
            }
        }
    }
    if bless {
        let mut files: Vec<&PathBuf> = blessed.iter().map(|b| &b.0).collect();
        files.dedup();
        for f in files {
            let text = std::fs::read_to_string(f).unwrap();
            let outcomes: Vec<(String, Outcome)> = blessed
                .iter()
                .filter(|b| &b.0 == f)
                .map(|b| (b.1.clone(), b.2.clone()))
                .collect();
            std::fs::write(f, table::rewrite_expectations(&text, &outcomes)).unwrap();
        }
        println!("blessed {} case(s)", blessed.len());
    }
    println!(
        "{} cases checked against the kernel ({} unprivileged), {} disagree; {skipped} skipped",
        cases.len() - skipped,
        cases.iter().filter(|c| c.unprivileged).count() - skipped,
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One entry of `tests/verifier/bpfkit-known-differences.txt`.
struct KnownDifference {
    name: String,
    kind: DifferenceKind,
}

/// What is known to differ.
#[derive(PartialEq, Eq)]
enum DifferenceKind {
    /// The verdict.
    Verdict,
    /// The verdict, and bpfkit does not finish on it: do not run it.
    Skip,
    /// Only a test run of the accepted program (r0 or the packet, or a checked-run fault).
    Run,
}

/// The cases where bpfkit is known to differ from Linux: a case name a line, optionally followed
/// by `skip` or `run`; `#` starts a comment.
fn known_differences() -> Vec<KnownDifference> {
    let path = table_dir().join("bpfkit-known-differences.txt");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut words = l.split('#').next()?.split_whitespace();
            let name = words.next()?.to_string();
            let kind = match words.next() {
                Some("skip") => DifferenceKind::Skip,
                Some("run") => DifferenceKind::Run,
                _ => DifferenceKind::Verdict,
            };
            Some(KnownDifference { name, kind })
        })
        .collect()
}

#[test]
fn bpfkit_agrees_with_linux_on_the_table() {
    let cases = load_table();
    let known = known_differences();
    // Names each case before running it, to find one that does not finish.
    let trace = std::env::var_os("BPFKIT_TABLE_TRACE").is_some();
    let (mut verdicts, mut lines, mut rejects, mut unmodelled) = (0, 0, 0, 0);
    let mut new_differences = Vec::new();
    let mut now_agree = Vec::new();
    for c in &cases {
        let insns = assemble(c).unwrap_or_else(|e| panic!("{}: {e}", c.place()));
        let listed = known
            .iter()
            .find(|k| k.name == c.name && k.kind != DifferenceKind::Run);
        if listed.is_some_and(|k| k.kind == DifferenceKind::Skip) {
            unmodelled += 1;
            println!("{}: not run on bpfkit: listed as skip", c.place());
            continue;
        }
        if trace {
            println!("bpfkit: {}", c.place());
        }
        // A panic is a bug to report, like a wrong verdict, without hiding the other cases.
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_bpfkit(c, &insns)));
        let ours = match run {
            Ok(Ok(o)) => o,
            Ok(Err(why)) => {
                unmodelled += 1;
                println!("{}: not run on bpfkit: {why}", c.place());
                continue;
            }
            Err(_) => {
                if listed.is_none() {
                    new_differences.push(format!("{}: bpfkit's verifier panicked", c.place()));
                }
                continue;
            }
        };
        let listed = listed.is_some();
        if same_verdict(&c.expect, &ours) {
            verdicts += 1;
            if listed {
                now_agree.push(c.name.clone());
            }
        } else if listed {
            println!("{}: known difference: bpfkit {ours}", c.place());
        } else {
            new_differences.push(format!(
                "{}: Linux {}, bpfkit {ours}",
                c.place(),
                match &c.expect {
                    Expect::Accept => "accept".to_string(),
                    Expect::Reject { errno, error } => format!("reject {errno}: {error}"),
                }
            ));
        }
        if let (Expect::Reject { .. }, Outcome::Rejected { .. }) = (&c.expect, &ours) {
            rejects += 1;
            if c.check(&ours).is_ok() {
                lines += 1;
            } else {
                println!(
                    "{}: first error line differs: {}",
                    c.place(),
                    c.check(&ours).unwrap_err()
                );
            }
        }
    }
    println!(
        "bpfkit vs Linux on {} cases: verdict agrees on {verdicts}, errno and first error line on \
         {lines} of {rejects} common rejections; {unmodelled} not run (not modelled or skipped); {} listed as known \
         differences",
        cases.len(),
        known
            .iter()
            .filter(|k| k.kind != DifferenceKind::Run)
            .count()
    );
    if !now_agree.is_empty() {
        println!(
            "these now agree with Linux; remove them from bpfkit-known-differences.txt: {}",
            now_agree.join(" ")
        );
    }
    assert!(
        new_differences.is_empty(),
        "bpfkit's verdict differs from Linux's ({}):\n{}",
        new_differences.len(),
        new_differences.join("\n")
    );
}

/// Gives every label defined in `text` a suffix, so that many programs can share one file.
fn rename_labels(text: &str, suffix: &str) -> String {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    let labels: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_suffix(':'))
        .filter(|l| !l.is_empty() && l.chars().all(is_ident))
        .collect();
    let mut out = String::new();
    let mut word = String::new();
    for c in text.chars().chain(std::iter::once('\n')) {
        if is_ident(c) {
            word.push(c);
            continue;
        }
        out.push_str(&word);
        if labels.contains(&word.as_str()) {
            out.push_str(suffix);
        }
        word.clear();
        out.push(c);
    }
    out.pop();
    out
}

/// Assembles every case with one `llvm-mc` run (case k in section `.text.k`, its labels made
/// unique), reading the sections back with the `object` crate: one process instead of two per
/// case. Falls back to one run per case when the batch fails, to say which case is wrong.
fn assemble_all_with_llvm(cases: &[Case]) -> Vec<Result<Vec<Insn>, String>> {
    use object::{Object, ObjectSection};

    let batch = || -> Result<Vec<Result<Vec<Insn>, String>>, String> {
        let mut text = String::new();
        for (k, c) in cases.iter().enumerate() {
            let body = c.asm_for_assembler().map_err(|e| e.to_string())?;
            text.push_str(&format!(".section .text.{k},\"ax\",@progbits\n"));
            text.push_str(&rename_labels(&body, &format!("__case{k}")));
        }
        let mc = llvm_mc().ok_or("llvm-mc is not installed")?;
        let dir =
            std::env::temp_dir().join(format!("bpfkit-verifier-table-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let (src, obj) = (dir.join("all.s"), dir.join("all.o"));
        std::fs::write(&src, &text).map_err(|e| e.to_string())?;
        let out = Command::new(mc)
            .args(["-triple", "bpfel", "-mcpu=v4", "-filetype=obj", "-o"])
            .arg(&obj)
            .arg(&src)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let bytes = std::fs::read(&obj).map_err(|e| e.to_string())?;
        std::fs::remove_dir_all(&dir).ok();
        let file = object::File::parse(&*bytes).map_err(|e| e.to_string())?;
        Ok((0..cases.len())
            .map(|k| {
                let section = file
                    .section_by_name(&format!(".text.{k}"))
                    .ok_or_else(|| format!("no section .text.{k}"))?;
                let data = section.data().map_err(|e| e.to_string())?;
                let mut insns = bpfkit_isa::insns_from_bytes(data).map_err(|e| e.to_string())?;
                table::resolve_map_refs(&mut insns);
                Ok(insns)
            })
            .collect())
    };
    batch().unwrap_or_else(|why| {
        println!("one llvm-mc run for all cases failed, assembling one by one: {why}");
        cases.iter().map(assemble_with_llvm).collect()
    })
}

#[test]
fn bpfkit_and_llvm_assemble_every_case_alike() {
    if llvm_mc().is_none() {
        println!("skipped: llvm-mc is not installed");
        return;
    }
    let cases = load_table();
    let llvm = assemble_all_with_llvm(&cases);
    let mut differ = Vec::new();
    for (c, llvm) in cases.iter().zip(llvm) {
        let ours = assemble(c);
        if ours != llvm {
            differ.push(format!(
                "{}:\n  bpfkit: {ours:?}\n  llvm:   {llvm:?}",
                c.place()
            ));
        }
    }
    println!(
        "{} cases assembled alike by bpfkit and LLVM, {} differ",
        cases.len() - differ.len(),
        differ.len()
    );
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

/// The packet both engines run accepted cases on: Ethernet, IPv4, TCP, 64 bytes.
fn test_packet() -> Vec<u8> {
    let mut p = vec![0u8; 64];
    p[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    p[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    p[12..14].copy_from_slice(&[0x08, 0x00]); // IPv4
    p[14] = 0x45; // version 4, 20-byte header
    p[16..18].copy_from_slice(&50u16.to_be_bytes()); // total length
    p[22] = 64; // TTL
    p[23] = 6; // TCP
    p[26..30].copy_from_slice(&[10, 0, 0, 1]);
    p[30..34].copy_from_slice(&[10, 0, 0, 2]);
    p[34..36].copy_from_slice(&1234u16.to_be_bytes());
    p[36..38].copy_from_slice(&80u16.to_be_bytes());
    p[46] = 0x50; // data offset 5
    p[47] = 0x02; // SYN
    p
}

#[test]
fn accepted_cases_run_alike_in_the_kernel_and_bpfkit() {
    use bpfkit::prog::run::TestRunAttr;

    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let packet = test_packet();
    let known = known_differences();
    let unprivileged = bpfkit_kernel::UnprivilegedBpf::enable();
    if let Err(why) = &unprivileged {
        println!("the `privilege: unprivileged` cases are skipped: {why}");
    }
    let (mut ran, mut same) = (0, 0);
    let mut differences = Vec::new();
    for c in load_table() {
        if c.expect != Expect::Accept
            || (c.unprivileged && unprivileged.is_err())
            || !matches!(
                c.prog_type.as_str(),
                "socket_filter" | "sched_cls" | "sched_act" | "xdp" | "cgroup_skb"
            )
            || known
                .iter()
                .any(|k| k.name == c.name && k.kind != DifferenceKind::Run)
        {
            continue;
        }
        let insns = assemble(&c).unwrap_or_else(|e| panic!("{}: {e}", c.place()));
        let kernel = table::run_in_kernel(&c, &insns).unwrap_or_else(|e| panic!("{e}"));
        let Some(prog) = &kernel.prog else { continue };
        let Ok((bpf, Ok(fd))) = load_in_bpfkit(&c, &insns) else {
            continue;
        };
        let k = bpfkit_kernel::prog_test_run(prog, &packet, None, 1)
            .unwrap_or_else(|e| panic!("{}: kernel test run: {e}", c.place()));
        let attr = TestRunAttr {
            data_in: &packet,
            checked: true,
            ..TestRunAttr::default()
        };
        ran += 1;
        let listed = known
            .iter()
            .any(|k| k.name == c.name && k.kind == DifferenceKind::Run);
        let problem = match bpf.prog_test_run(fd, &attr) {
            Ok(b) if b.retval == k.retval && b.data_out == k.data_out => {
                same += 1;
                continue;
            }
            Ok(b) => format!(
                "{}: kernel retval {:#x}, bpfkit {:#x}{}",
                c.place(),
                k.retval,
                b.retval,
                if b.data_out == k.data_out {
                    ""
                } else {
                    "; the packets differ"
                }
            ),
            Err(e) => format!("{}: bpfkit's checked run: {e}", c.place()),
        };
        if listed {
            println!("known run difference: {problem}");
        } else {
            differences.push(problem);
        }
    }
    println!(
        "{ran} accepted packet-type cases run in both (bpfkit checked): {same} alike (retval and \
         packet), {} differ (not listed)",
        differences.len()
    );
    assert!(ran > 100, "only {ran} cases ran");
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// The kernel's log of a case at `log_level` (its maps created afresh).
fn kernel_log_at(case: &Case, insns: &[Insn], log_level: u32) -> Result<String, String> {
    use bpfkit_kernel::names;
    let prog_type = names::prog_type_by_name(&case.prog_type)
        .ok_or_else(|| format!("unknown program type `{}`", case.prog_type))?;
    let mut maps = Vec::new();
    for m in &case.maps {
        let ty = names::map_type_by_name(&m.map_type)
            .ok_or_else(|| format!("unknown map type `{}`", m.map_type))?;
        maps.push(
            bpfkit_kernel::map_create(ty, m.key_size, m.value_size, m.max_entries, 0)
                .map_err(|e| format!("creating map {m}: {e}"))?,
        );
    }
    let fds: Vec<i32> = maps.iter().map(bpfkit_kernel::Map::fd).collect();
    let mut insns = insns.to_vec();
    bpfkit_kernel::resolve_map_indices(&mut insns, &fds).map_err(|e| e.to_string())?;
    let load = bpfkit_kernel::ProgLoad {
        license: &case.license,
        prog_flags: case.prog_flags(),
        expected_attach_type: case.expected_attach_type,
        log_level,
        ..bpfkit_kernel::ProgLoad::new(prog_type)
    };
    // An unprivileged case's log is the one an unprivileged user gets (the caller holds the
    // `UnprivilegedBpf` guard).
    let loaded = if case.unprivileged {
        load.load_unprivileged(&insns)
    } else {
        load.load(&insns)
    };
    Ok(loaded.log)
}

/// The first line where two logs differ, for the dump.
fn first_difference(kernel: &str, ours: &str) -> String {
    let (k, o): (Vec<&str>, Vec<&str>) = (kernel.lines().collect(), ours.lines().collect());
    let at = (0..k.len().max(o.len()))
        .find(|&i| k.get(i) != o.get(i))
        .unwrap_or(0);
    format!(
        "  line {}\n    kernel: {}\n    bpfkit: {}\n",
        at + 1,
        k.get(at).unwrap_or(&"<end>"),
        o.get(at).unwrap_or(&"<end>")
    )
}

/// Whether `BPFKIT_LOG_CASE=pattern` selects case `name`: the name, or a prefix ending in `*`.
fn shown(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// Level-2 logs are compared on cases whose kernel log is at most this many lines.
const LEVEL2_MAX_LINES: usize = 200;

/// Whole logs, bpfkit's against the kernel's: level 1 on every case bpfkit runs, level 2 on the
/// cases whose level-2 log is small ([`LEVEL2_MAX_LINES`]). Counts only: verdicts are
/// asserted by `bpfkit_agrees_with_linux_on_the_table`. `BPFKIT_LOG_DUMP=FILE` writes the first
/// differing line of every differing log; `BPFKIT_LOG_CASE=NAME` compares only that case (or
/// the cases starting with `PREFIX` for `PREFIX*`) and prints both logs.
#[test]
fn whole_logs_compared_with_linux() {
    use std::fmt::Write as _;
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let known = known_differences();
    let show = std::env::var("BPFKIT_LOG_CASE").ok();
    let mut dump = String::new();
    let mut counts = [(1u32, 0usize, 0usize), (2, 0, 0)];
    // Unprivileged cases are compared with the log of an unprivileged load; without the guard
    // (the sysctl cannot be set) they are left out of the counts.
    let unprivileged = bpfkit_kernel::UnprivilegedBpf::enable();
    if let Err(why) = &unprivileged {
        println!("the `privilege: unprivileged` cases are left out: {why}");
    }
    for c in load_table() {
        if known
            .iter()
            .any(|k| k.name == c.name && k.kind == DifferenceKind::Skip)
            || (c.unprivileged && unprivileged.is_err())
            || show.as_ref().is_some_and(|n| !shown(n, &c.name))
        {
            continue;
        }
        let insns = assemble(&c).unwrap_or_else(|e| panic!("{}: {e}", c.place()));
        for (level, compared, identical) in &mut counts {
            let Ok(theirs) = kernel_log_at(&c, &insns, *level) else {
                continue;
            };
            if *level == 2 && theirs.lines().count() > LEVEL2_MAX_LINES {
                continue;
            }
            let Ok((_bpf, loaded)) = load_in_bpfkit_at(&c, &insns, *level) else {
                continue;
            };
            let ours = match loaded {
                Ok((_, log)) => log,
                Err(e) => e.log,
            };
            let (theirs, ours) = (normalise_log(&theirs), normalise_log(&ours));
            if show.is_some() {
                println!(
                    "--- {} kernel, level {level}\n{theirs}\n--- bpfkit\n{ours}\n---",
                    c.name
                );
            }
            *compared += 1;
            if theirs == ours {
                *identical += 1;
            } else {
                let _ = write!(
                    dump,
                    "{} level {level}\n{}",
                    c.name,
                    first_difference(&theirs, &ours)
                );
            }
        }
    }
    if let Some(path) = std::env::var_os("BPFKIT_LOG_DUMP") {
        std::fs::write(path, &dump).unwrap();
    }
    for (level, compared, identical) in counts {
        println!(
            "whole level-{level} log identical to Linux's (map addresses and time aside): \
             {identical} of {compared}"
        );
    }
}
