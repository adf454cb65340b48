//! Unprivileged loads, bpfkit against the running kernel's unprivileged `BPF_PROG_LOAD` (a
//! thread without CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN and CAP_NET_ADMIN; see
//! `bpfkit_kernel::UnprivilegedBpf`):
//!
//! - which helpers an unprivileged socket_filter may call, for every helper id Linux defines,
//!   and that `CAPABLE_ONLY_HELPERS` is exactly the set Linux keeps for CAP_BPF / CAP_PERFMON;
//! - the syscall's checks: program types (`EPERM`) and the 4096-instruction limit (`E2BIG`);
//! - `ProgLoadOpts::unprivileged` defaults to a privileged load;
//! - a sweep of pointer arithmetic (`sanitize_ptr_alu`, `sanitize_check_bounds`): map value and
//!   stack pointers moved by constants and bounded variables, with and without an access,
//!   compared on verdict, errno and first error line.
//!
//! Each test prints its agreement counts and skips, saying why, where unprivileged `bpf()` is
//! impossible.
#![expect(
    clippy::unwrap_used,
    reason = "a failing setup is the test failure to report"
)]

use std::path::Path;

use bpfkit::maps::MapAttr;
use bpfkit::prog::load::{ProgLoadAttr, ProgLoadOpts};
use bpfkit::Bpf;
use bpfkit_isa::Insn;
use bpfkit_kernel::table::{self, Case, Outcome};
use bpfkit_kernel::{ProgLoad, UnprivilegedBpf};
use bpfkit_verifier::env::ProgType;
use bpfkit_verifier::rules::unpriv::CAPABLE_ONLY_HELPERS;

/// The guard that allows unprivileged `bpf()`, or `None` after printing why the test skips.
fn unprivileged() -> Option<UnprivilegedBpf> {
    match UnprivilegedBpf::enable() {
        Ok(g) => Some(g),
        Err(why) => {
            println!("skipped: {why}");
            None
        }
    }
}

/// bpfkit's load of `insns` (maps by index, created in a fresh table) as `unprivileged` says.
fn bpfkit_outcome(
    prog_type: ProgType,
    maps: &[table::MapSpec],
    insns: &[Insn],
    unprivileged: bool,
) -> Outcome {
    let bpf = Bpf::new();
    let mut fds = Vec::new();
    for m in maps {
        let attr = MapAttr {
            map_type: bpfkit_kernel::names::map_type_by_name(&m.map_type).unwrap(),
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries: m.max_entries,
            ..MapAttr::default()
        };
        fds.push(i32::try_from(bpf.map_create(&attr).unwrap().0).unwrap());
    }
    let mut insns = insns.to_vec();
    bpfkit_kernel::resolve_map_indices(&mut insns, &fds).unwrap();
    let attr = ProgLoadAttr {
        prog_type,
        insns: &insns,
        license: "GPL",
        log_level: 1,
        log_size: bpfkit_kernel::DEFAULT_LOG_SIZE,
    };
    let opts = ProgLoadOpts {
        unprivileged,
        ..ProgLoadOpts::default()
    };
    match bpf.prog_load_with(&attr, &opts) {
        Ok(_) => Outcome::Accepted,
        Err(e) => Outcome::Rejected {
            errno: bpfkit_kernel::Errno(e.errno.code()).name().to_string(),
            error: table::error_lines(&e.log)
                .first()
                .map(|s| (*s).to_string())
                .unwrap_or_default(),
        },
    }
}

/// `r1..r5 = 0; call id; r0 = 0; exit`.
fn call_program(id: i32) -> Vec<Insn> {
    let mut p: Vec<Insn> = (1..=5).map(|r| Insn::new(0xb7, r, 0, 0, 0)).collect();
    p.push(Insn::new(0x85, 0, 0, 0, id));
    p.push(Insn::new(0xb7, 0, 0, 0, 0));
    p.push(Insn::new(0x95, 0, 0, 0, 0));
    p
}

fn refused(log: &str) -> bool {
    log.contains("cannot use helper") || log.contains("invalid func")
}

#[test]
fn helper_availability_without_privileges_matches_the_kernel() {
    let Some(_guard) = unprivileged() else { return };
    let sf = ProgType::SocketFilter;
    let mut capable_only = Vec::new();
    let mut differences = Vec::new();
    // Helper ids Linux 6.18 defines: 1..=211.
    for id in 1..=211 {
        let p = call_program(id);
        let load = ProgLoad::new(sf.kernel_id());
        let kernel_priv = !refused(&load.load(&p[..]).log);
        let kernel_unpriv = !refused(&load.load_unprivileged(&p[..]).log);
        if kernel_priv && !kernel_unpriv {
            capable_only.push(id);
        }
        let ours = |unprivileged| match bpfkit_outcome(sf, &[], &p, unprivileged) {
            Outcome::Accepted => true,
            Outcome::Rejected { error, .. } => !refused(&error),
        };
        // Where bpfkit's runtime lacks a helper even privileged, it lacks it unprivileged too.
        let expected = kernel_unpriv && ours(false);
        if ours(true) != expected {
            differences.push(format!(
                "helper {id}: unprivileged kernel {kernel_unpriv}, bpfkit {}",
                ours(true)
            ));
        }
    }
    println!(
        "211 helper ids compared without privileges; {} only for CAP_BPF/CAP_PERFMON",
        capable_only.len()
    );
    assert_eq!(capable_only, CAPABLE_ONLY_HELPERS.to_vec());
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn program_types_and_the_instruction_limit_match_the_kernel() {
    let Some(_guard) = unprivileged() else { return };
    let ret0 = [Insn::new(0xb7, 0, 0, 0, 0), Insn::new(0x95, 0, 0, 0, 0)];
    let errno = |r: Result<bpfkit_kernel::Prog, bpfkit_kernel::Errno>| match r {
        Ok(_) => "accept".to_string(),
        Err(e) => e.name().to_string(),
    };
    let ours = |o: Outcome| match o {
        Outcome::Accepted => "accept".to_string(),
        Outcome::Rejected { errno, .. } => errno,
    };
    let mut compared = 0;
    for t in ProgType::ALL {
        let kernel = errno(
            ProgLoad::new(t.kernel_id())
                .load_unprivileged(&ret0[..])
                .result,
        );
        assert_eq!(ours(bpfkit_outcome(t, &[], &ret0, true)), kernel, "{t}");
        compared += 1;
    }
    for n in [4096usize, 4097] {
        let mut p = vec![Insn::new(0xb7, 0, 0, 0, 0); n - 1];
        p.push(Insn::new(0x95, 0, 0, 0, 0));
        let kernel = errno(ProgLoad::new(1).load_unprivileged(&p[..]).result);
        let bpfkit = ours(bpfkit_outcome(ProgType::SocketFilter, &[], &p, true));
        assert_eq!(bpfkit, kernel, "{n} instructions");
        // Privileged, both take it.
        assert_eq!(
            ours(bpfkit_outcome(ProgType::SocketFilter, &[], &p, false)),
            "accept"
        );
        compared += 1;
    }
    println!("{compared} loads agree with the kernel's unprivileged verdict");
}

#[test]
fn the_runtime_loads_privileged_unless_asked() {
    // r0 = r10; exit: a leaked address, refused only without privileges (Linux 6.18:
    // `R0 leaks addr as return value`, tests/verifier/unpriv.cases).
    let p = [Insn::new(0xbf, 0, 10, 0, 0), Insn::new(0x95, 0, 0, 0, 0)];
    assert_eq!(
        bpfkit_outcome(ProgType::SocketFilter, &[], &p, false),
        Outcome::Accepted
    );
    assert_eq!(
        bpfkit_outcome(ProgType::SocketFilter, &[], &p, true),
        Outcome::Rejected {
            errno: "EACCES".into(),
            error: "R0 leaks addr as return value".into()
        }
    );
}

/// The lookup prologue: r0 = a value of map 0 (`hash:4:VS:4`), or exit.
const LOOKUP: &str = "    *(u32 *)(r10 - 4) = 0
    r2 = r10
    r2 += -4
    r1 = map[0] ll
    call 1
    if r0 == 0 goto out
";

/// The sweep's programs, as table cases (unprivileged socket filters).
fn sweep_cases() -> Vec<Case> {
    let mut text = String::new();
    let mut n = 0;
    let mut add = |map: Option<u32>, body: String| {
        n += 1;
        let map = map.map_or(String::new(), |vs| format!("map: hash:4:{vs}:4\n"));
        text.push_str(&format!(
            "=== sweep_{n}\ntype: socket_filter\n{map}privilege: unprivileged\nexpect: accept\n---\n{body}\n"
        ));
    };
    for vs in [8u32, 12] {
        for k in [-9i32, -1, 0, 1, 4, 7, 8, 11, 12, 13] {
            for access in [false, true] {
                let acc = if access {
                    "    r1 = *(u8 *)(r0 + 0)\n"
                } else {
                    ""
                };
                add(
                    Some(vs),
                    format!("{LOOKUP}    r0 += {k}\n{acc}out:\n    r0 = 0\n    exit"),
                );
            }
        }
        for mask in [0, 1, 3, 7, 15] {
            for adj in [-4i32, -1, 0, 2] {
                for op in ["+=", "-="] {
                    for pre in [0, 4] {
                        add(
                            Some(vs),
                            format!(
                                "{LOOKUP}    r1 = *(u8 *)(r0 + 0)\n    r1 &= {mask}\n    r1 += {adj}\n    r0 += {pre}\n    r0 {op} r1\n    r1 = *(u8 *)(r0 + 0)\nout:\n    r0 = 0\n    exit"
                            ),
                        );
                    }
                }
            }
        }
    }
    for k1 in [-520i32, -512, -511, -16, -8, -1, 0, 8] {
        for store in [false, true] {
            let st = if store {
                "    *(u8 *)(r2 + 0) = 0\n"
            } else {
                ""
            };
            add(
                None,
                format!("    r2 = r10\n    r2 += {k1}\n{st}    r0 = 0\n    exit"),
            );
        }
        for k2 in [-8i32, -1, 0, 4] {
            add(
                None,
                format!("    r2 = r10\n    r2 += {k1}\n    r3 = {k2}\n    r2 += r3\n    r0 = 0\n    exit"),
            );
        }
        for mask in [0, 3] {
            add(
                None,
                format!("    r3 = *(u32 *)(r1 + 0)\n    r3 &= {mask}\n    r2 = r10\n    r2 += {k1}\n    r2 += r3\n    r0 = 0\n    exit"),
            );
        }
    }
    table::parse(&text, Path::new("sweep")).unwrap()
}

#[test]
fn pointer_arithmetic_sweep_matches_the_kernel() {
    let Some(_guard) = unprivileged() else { return };
    let cases = sweep_cases();
    let (mut verdicts, mut lines, mut rejected) = (0, 0, 0);
    let mut differences = Vec::new();
    for c in &cases {
        let text = c.asm_for_assembler().unwrap();
        let mut insns = bpfkit_isa::asm::kernel::assemble(&text).unwrap();
        table::resolve_map_refs(&mut insns);
        let kernel = table::run_in_kernel(c, &insns).unwrap().outcome;
        let ours = bpfkit_outcome(ProgType::SocketFilter, &c.maps, &insns, true);
        match (&kernel, &ours) {
            (Outcome::Accepted, Outcome::Accepted) => verdicts += 1,
            (Outcome::Rejected { .. }, Outcome::Rejected { .. }) => {
                verdicts += 1;
                rejected += 1;
                if kernel == ours {
                    lines += 1;
                } else {
                    differences.push(format!(
                        "{}: kernel {kernel}, bpfkit {ours}\n{}",
                        c.name, c.asm
                    ));
                }
            }
            _ => differences.push(format!(
                "{}: kernel {kernel}, bpfkit {ours}\n{}",
                c.name, c.asm
            )),
        }
    }
    println!(
        "{} unprivileged pointer-arithmetic programs: verdict agrees on {verdicts}, errno and \
         first error line on {lines} of {rejected} rejections",
        cases.len()
    );
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// Runs unprivileged table cases in the kernel and in bpfkit; returns the report line and the
/// differences.
fn compare(what: &str, cases: &[Case]) -> Vec<String> {
    let (mut verdicts, mut lines, mut rejected) = (0, 0, 0);
    let mut differences = Vec::new();
    for c in cases {
        let text = c.asm_for_assembler().unwrap();
        let mut insns = bpfkit_isa::asm::kernel::assemble(&text).unwrap();
        table::resolve_map_refs(&mut insns);
        let kernel = table::run_in_kernel(c, &insns).unwrap().outcome;
        let ty = ProgType::from_name(&c.prog_type).unwrap();
        let ours = bpfkit_outcome(ty, &c.maps, &insns, true);
        let same_verdict = matches!(
            (&kernel, &ours),
            (Outcome::Accepted, Outcome::Accepted)
                | (Outcome::Rejected { .. }, Outcome::Rejected { .. })
        );
        if same_verdict {
            verdicts += 1;
        }
        if let Outcome::Rejected { .. } = kernel {
            rejected += 1;
            if kernel == ours {
                lines += 1;
            }
        }
        if kernel != ours {
            differences.push(format!(
                "{}: kernel {kernel}, bpfkit {ours}\n{}",
                c.name, c.asm
            ));
        }
    }
    println!(
        "{} unprivileged {what} programs: verdict agrees on {verdicts}, errno and first error \
         line on {lines} of {rejected} kernel rejections",
        cases.len()
    );
    differences
}

/// Unprivileged socket filter cases from `(maps, body)` pairs.
fn cases_of(programs: &[(String, String)]) -> Vec<Case> {
    let mut text = String::new();
    for (n, (maps, body)) in programs.iter().enumerate() {
        text.push_str(&format!(
            "=== p{n}\ntype: socket_filter\n{maps}privilege: unprivileged\nexpect: accept\n---\n{body}\n"
        ));
    }
    table::parse(&text, Path::new("generated")).unwrap()
}

#[test]
fn stack_writes_and_reads_sweep_matches_the_kernel() {
    let Some(_guard) = unprivileged() else { return };
    // What is stored: an immediate zero, another immediate, a known scalar, an unknown scalar,
    // a pointer (the context).
    let values = [
        ("imm0", None),
        ("imm5", None),
        ("r7", Some("    r7 = 0\n")),
        ("r8", Some("    r8 = *(u32 *)(r1 + 0)\n")),
        ("r1", None),
    ];
    let sizes = [("u8", 1i32), ("u16", 2), ("u32", 4), ("u64", 8)];
    let mut programs = Vec::new();
    for (wsz, wn) in sizes {
        for woff in (-16..0).filter(|o| o % wn == 0) {
            for (v, setup) in values {
                let store = match v {
                    "imm0" => format!("    *({wsz} *)(r10 {woff}) = 0\n"),
                    "imm5" => format!("    *({wsz} *)(r10 {woff}) = 5\n"),
                    r => format!("    *({wsz} *)(r10 {woff}) = {r}\n"),
                };
                let setup = setup.unwrap_or("");
                for (rsz, rn) in sizes {
                    // Reads at the same slot's offsets only (others repeat the uninit rule).
                    for roff in (-16..0).filter(|o| o % rn == 0 && (o - woff).abs() < 8) {
                        programs.push((
                            String::new(),
                            format!("{setup}{store}    r3 = *({rsz} *)(r10 {roff})\n    r0 = 0\n    exit"),
                        ));
                    }
                }
                // A helper reading the slot as a map key (key_size 8 at -8 or -16).
                for koff in [-16, -8] {
                    programs.push((
                        "map: hash:8:8:4\n".to_string(),
                        format!(
                            "{setup}{store}    r2 = r10\n    r2 += {koff}\n    r1 = map[0] ll\n    call 1\n    r0 = 0\n    exit"
                        ),
                    ));
                }
            }
        }
    }
    let differences = compare("stack write/read", &cases_of(&programs));
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn pointer_comparisons_sweep_matches_the_kernel() {
    let Some(_guard) = unprivileged() else { return };
    // r6 = ctx, r7 = map_value_or_null, r8 = map_value, r9 = unknown scalar, r4 = 0, r10 = fp.
    let prologue = "    r6 = r1
    *(u32 *)(r10 - 4) = 0
    r2 = r10
    r2 += -4
    r1 = map[0] ll
    call 1
    r7 = r0
    r2 = r10
    r2 += -4
    r1 = map[0] ll
    call 1
    if r0 == 0 goto out
    r8 = r0
    r9 = *(u32 *)(r6 + 0)
    r4 = 0
";
    let regs = ["6", "7", "8", "9", "4", "10"];
    let mut programs = Vec::new();
    for w in ["r", "w"] {
        for op in ["==", "!=", ">", "s<", "&"] {
            for d in regs {
                let srcs = regs
                    .iter()
                    .map(|s| format!("{w}{s}"))
                    .chain(["0".to_string(), "1".to_string()]);
                for s in srcs {
                    programs.push((
                        "map: hash:4:8:4\n".to_string(),
                        format!("{prologue}    if {w}{d} {op} {s} goto out\n    r0 = 1\nout:\n    r0 = 0\n    exit"),
                    ));
                }
            }
        }
    }
    let differences = compare("pointer comparison", &cases_of(&programs));
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn alu_on_pointers_sweep_matches_the_kernel() {
    let Some(_guard) = unprivileged() else { return };
    // r6 = ctx, r7 = map_value_or_null, r8 = map_value, r5 = fp, r9 = unknown scalar, r4 = 8.
    let prologue = "    r6 = r1
    *(u32 *)(r10 - 4) = 0
    r2 = r10
    r2 += -4
    r1 = map[0] ll
    call 1
    r7 = r0
    r2 = r10
    r2 += -4
    r1 = map[0] ll
    call 1
    if r0 == 0 goto out
    r8 = r0
    r9 = *(u32 *)(r6 + 0)
    r4 = 8
    r5 = r10
";
    let regs = ["6", "7", "8", "5", "9", "4"];
    let mut programs = Vec::new();
    let mut add = |line: String| {
        programs.push((
            "map: hash:4:16:4\n".to_string(),
            format!("{prologue}{line}\nout:\n    r0 = 0\n    exit"),
        ));
    };
    for w in ["r", "w"] {
        for d in regs {
            for op in ["+=", "-=", "*=", "&=", "|=", "<<=", "=", "= (s8)"] {
                let srcs = regs
                    .iter()
                    .map(|s| format!("{w}{s}"))
                    .chain(["0", "4", "-8"].map(String::from));
                for s in srcs {
                    let is_reg = s.starts_with(['r', 'w']);
                    if op == "= (s8)" && !is_reg {
                        continue;
                    }
                    let line = if op == "= (s8)" {
                        format!("    {w}{d} = (s8){s}")
                    } else {
                        format!("    {w}{d} {op} {s}")
                    };
                    add(line);
                }
            }
            add(format!("    {w}{d} = -{w}{d}"));
        }
        for d in regs {
            add(format!("    r{d} = be16 r{d}"));
        }
    }
    let differences = compare("pointer ALU", &cases_of(&programs));
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn values_through_the_stack_sweep_matches_the_kernel() {
    let Some(_guard) = unprivileged() else { return };
    // A value stored on the stack, read back and used as a map value offset: without CAP_BPF
    // only a stored zero keeps its value (scalar spills are not tracked).
    let prologue = "    *(u32 *)(r10 - 4) = 0
    r2 = r10
    r2 += -4
    r1 = map[0] ll
    call 1
    if r0 == 0 goto out
    r7 = *(u8 *)(r0 + 0)
    r7 &= 3
    r8 = 3
    r9 = 0
";
    let sizes = [("u8", 1i32), ("u16", 2), ("u32", 4), ("u64", 8)];
    let mut programs = Vec::new();
    for (wsz, wn) in sizes {
        for woff in [-16, -8 - wn] {
            for v in ["0", "3", "r7", "r8", "r9"] {
                for (rsz, rn) in sizes {
                    for roff in [woff, -16] {
                        if roff % rn != 0 {
                            continue;
                        }
                        programs.push((
                            "map: hash:4:16:4\n".to_string(),
                            format!(
                                "{prologue}    *(u64 *)(r10 - 16) = 0\n    *(u64 *)(r10 - 8) = 0\n    *({wsz} *)(r10 {woff}) = {v}\n    r3 = *({rsz} *)(r10 {roff})\n    r0 += r3\n    r0 = *(u8 *)(r0 + 0)\nout:\n    r0 = 0\n    exit"
                            ),
                        ));
                    }
                }
            }
        }
    }
    let differences = compare("stack value", &cases_of(&programs));
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
