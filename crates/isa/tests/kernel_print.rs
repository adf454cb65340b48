//! The printer against the live kernel's verifier log: programs are loaded at log level 2 and
//! every instruction line of the log (`N: (xx) ...`, in the path walk and in the "Live regs"
//! listing) must be exactly what `print_insn` prints for slot N. Helper names come from the
//! installed uapi header (`/usr/include/linux/bpf.h`), an independent copy of the kernel's
//! table. Skips, saying why, without the `bpf()` system call.

mod support;

use bpfkit_isa::asm::kernel;
use bpfkit_isa::disasm::{print_insn, PrintOptions};
use bpfkit_isa::{decode, decode_all, Insn};
use bpfkit_kernel::{available, names, ProgLoad};

/// Helper names by id from the uapi header's `__BPF_FUNC_MAPPER`, prefixed `bpf_` as the
/// kernel's `func_id_str` has them.
fn helper_names() -> Option<Vec<String>> {
    let text = std::fs::read_to_string("/usr/include/linux/bpf.h").ok()?;
    let start = text
        .find("#define ___BPF_FUNC_MAPPER")
        .or_else(|| text.find("#define __BPF_FUNC_MAPPER"))?;
    let mut names = Vec::new();
    for line in text[start..].lines().skip(1) {
        if let Some(rest) = line.trim().strip_prefix("FN(") {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            names.push(format!("bpf_{name}"));
        }
        if !line.trim_end().ends_with('\\') {
            break;
        }
    }
    (names.len() > 100).then_some(names)
}

/// `(slot, text)` of every instruction line of a verifier log, without the state comment.
fn insn_lines(log: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for line in log.lines() {
        let line = line.trim_start();
        let Some((n, rest)) = line.split_once(": ") else {
            continue;
        };
        // The listing of a program with loops puts a strongly-connected-component number first.
        let Ok(n) = n
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .parse::<usize>()
        else {
            continue;
        };
        // The "Live regs before insn" listing puts ten liveness characters first.
        let rest = match rest.split_once(' ') {
            Some((live, r))
                if live.len() == 10 && live.chars().all(|c| c == '.' || c.is_ascii_digit()) =>
            {
                r
            }
            _ => rest,
        };
        if !(rest.starts_with('(') && rest.get(3..5) == Some(") ") || rest.starts_with("BUG")) {
            continue;
        }
        let text = rest.split(';').next().unwrap_or_default().trim_end();
        out.push((n, text.to_string()));
    }
    out
}

/// Hand-written programs for what the probes cannot reach: helper and local calls, LD_ABS with
/// the context in r6, every atomic, jumps both ways.
fn programs() -> Vec<Vec<Insn>> {
    let i = Insn::new;
    vec![
        // r1 = 0 ll (a plain LD_IMM64), calls to helpers that need no arguments, a local call.
        vec![
            i(0x18, 1, 0, 0, 0x55667788),
            i(0, 0, 0, 0, 0x11223344),
            i(0x85, 0, 0, 0, 5), // ktime_get_ns
            i(0x85, 0, 0, 0, 7), // get_prandom_u32
            i(0x85, 0, 0, 0, 8), // get_smp_processor_id
            i(0x85, 0, 1, 0, 1), // call pc+1
            i(0x95, 0, 0, 0, 0),
            i(0xb7, 0, 0, 0, -7),
            i(0x95, 0, 0, 0, 0),
        ],
        // Packet loads with r6 = skb.
        vec![
            i(0xbf, 6, 1, 0, 0),
            i(0x30, 0, 0, 0, 0),
            i(0x28, 0, 0, 0, 12),
            i(0x20, 0, 0, 0, -4),
            i(0xb7, 7, 0, 0, 2),
            i(0x50, 0, 7, 0, 3),
            i(0x48, 0, 7, 0, -1),
            i(0x40, 0, 7, 0, 0),
            i(0x95, 0, 0, 0, 0),
        ],
        // Every atomic on a stack slot, in both sizes.
        {
            let mut p = vec![
                i(0x7a, 10, 0, -8, 0),
                i(0xb7, 1, 0, 0, 1),
                i(0xb7, 0, 0, 0, 0),
            ];
            for code in [0xc3u8, 0xdb] {
                for imm in [0x00, 0x01, 0x40, 0x41, 0x50, 0x51, 0xa0, 0xa1, 0xe1, 0xf1] {
                    p.push(i(code, 10, 1, -8, imm));
                    p.push(i(0xb7, 1, 0, 0, 1));
                    p.push(i(0xb7, 0, 0, 0, 0));
                }
            }
            p.push(i(0x95, 0, 0, 0, 0));
            p
        },
        // Forward and backward jumps, gotol, may_goto.
        vec![
            i(0xb7, 0, 0, 0, 3),
            i(0x06, 0, 0, 0, 0),
            i(0x05, 0, 0, 0, 0),
            i(0xe5, 0, 0, 1, 0),
            i(0x07, 0, 0, 0, -1),
            i(0xa6, 0, 0, 1, -5),
            i(0x65, 0, 0, -3, 0),
            i(0x95, 0, 0, 0, 0),
        ],
    ]
}

#[test]
fn printer_matches_the_kernel_log_line_for_line() {
    if let Err(why) = available() {
        eprintln!("skipped: {why}");
        return;
    }
    let names = helper_names();
    if names.is_none() {
        eprintln!("no uapi header: helper calls are compared without names");
    }
    let lookup = |id: i32| -> Option<&'static str> {
        let names = names.as_ref()?;
        let name = names.get(usize::try_from(id).ok()?)?;
        // The names live as long as the test; leaking a few hundred short strings is fine.
        Some(Box::leak(name.clone().into_boxed_str()))
    };
    let opts = PrintOptions {
        helper_name: Some(&lookup),
        allow_ptr_leaks: true,
        ..PrintOptions::default()
    };
    let mut programs = programs();
    programs.extend(
        support::probes()
            .into_iter()
            .map(|p| support::kernel_probe(&p))
            .filter(|p| decode_all(p).is_ok()),
    );
    let (mut lines, mut diffs) = (0usize, Vec::new());
    let mut seen = std::collections::HashSet::new();
    for prog in &programs {
        let loaded = ProgLoad {
            log_level: 2,
            ..ProgLoad::new(names::PROG_SOCKET_FILTER)
        }
        .load(prog);
        for (n, kernel) in insn_lines(&loaded.log) {
            if names.is_none() && kernel.contains(" call ") {
                continue;
            }
            lines += 1;
            seen.insert(kernel.clone());
            let ours = print_insn(prog, n, &opts);
            if ours != kernel {
                diffs.push(format!(
                    "{:?} slot {n}: kernel `{kernel}`, ours `{ours}`",
                    prog.get(n)
                ));
            }
            // The kernel's text assembles back to the slot it prints (two for LD_IMM64), as
            // the decoder canonicalises it (an exit's offset, which Linux ignores, is dropped).
            let Ok(want) = decode(prog, n).map(|op| op.encode()) else {
                continue;
            };
            match kernel::assemble(&kernel) {
                Ok(got) if got == want => {}
                other => diffs.push(format!("`{kernel}` assembles to {other:?}, not {want:?}")),
            }
        }
    }
    eprintln!(
        "{} programs, {lines} instruction lines compared",
        programs.len()
    );
    assert!(lines > 1000, "too few lines compared: {lines}");
    diffs.dedup();
    // The hand-written programs' special lines were among those compared.
    let mut expected = vec![
        "(85) call pc+1",
        "(18) r1 = 0x1122334455667788",
        "(48) r0 = *(u16 *)skb[r7 + -1]",
        "(20) r0 = *(u32 *)skb[-4]",
        "(db) r1 = atomic64_fetch_xor((u64 *)(r10 -8), r1)",
        "(c3) r0 = atomic_cmpxchg((u32 *)(r10 -8), r0, r1)",
        "(c3) lock *(u32 *)(r10 -8) |= r1",
        "(06) gotol pc+0",
        "(e5) may_goto pc+1",
        "(65) if r0 s> 0x0 goto pc-3",
        "(a6) if w0 < 0xfffffffb goto pc+1",
    ];
    if names.is_some() {
        expected.push("(85) call bpf_ktime_get_ns#5");
    }
    for e in expected {
        assert!(seen.contains(e), "the kernel log has no line `{e}`");
    }
    assert!(
        diffs.is_empty(),
        "{} lines differ:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}
