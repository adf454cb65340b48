//! Differential sweep of the alignment rules (`check_ptr_alignment`): for every pointer kind
//! (packet, packet with a variable offset, map value, map value with a variable offset,
//! context, stack, ring buffer record, map pointer), every offset 0..=16 and every access
//! size 1/2/4/8, with no flag, with `BPF_F_STRICT_ALIGNMENT` and with both alignment flags,
//! the same program is loaded into the running kernel and into bpfkit (`Bpf::prog_load_with`);
//! the verdict, the errno and the first error line must be the same.
//!
//! The kernel is the only source of expected values. Skips, saying why, where `bpf()` is
//! unavailable.

mod sweep_util;

use bpfkit_kernel::table::{self, Outcome};
use sweep_util::{assemble, bpfkit_outcome, parse};

/// A pointer kind: program type, maps, and the program around one access.
struct Kind {
    name: &'static str,
    prog_type: &'static str,
    maps: &'static [&'static str],
    /// The program, with `ACCESS` where the access goes; the access is through `BASE`.
    program: &'static str,
    base: &'static str,
    /// The access is a store (`*(SIZE *)(BASE + OFF) = 1`) rather than a load.
    store: bool,
}

const KINDS: &[Kind] = &[
    Kind {
        name: "pkt",
        prog_type: "xdp",
        maps: &[],
        program: "
    r2 = *(u32 *)(r1 + 0)
    r3 = *(u32 *)(r1 + 4)
    r4 = r2
    r4 += 32
    if r4 > r3 goto out
    ACCESS
out:
    r0 = 0
    exit",
        base: "r2",
        store: false,
    },
    Kind {
        name: "pkt_var",
        prog_type: "xdp",
        maps: &[],
        program: "
    r2 = *(u32 *)(r1 + 0)
    r3 = *(u32 *)(r1 + 4)
    r4 = r2
    r4 += 1
    if r4 > r3 goto out
    r5 = *(u8 *)(r2 + 0)
    r5 &= 0x1c
    r2 += r5
    r4 = r2
    r4 += 32
    if r4 > r3 goto out
    ACCESS
out:
    r0 = 0
    exit",
        base: "r2",
        store: false,
    },
    Kind {
        name: "map_value",
        prog_type: "socket_filter",
        maps: &["array:4:32:1"],
        program: "
    *(u32 *)(r10 - 4) = 0
    r2 = r10
    r2 += -4
    r1 = map[0] ll
    call 1
    if r0 == 0 goto out
    ACCESS
out:
    r0 = 0
    exit",
        base: "r0",
        store: true,
    },
    Kind {
        name: "map_value_var",
        prog_type: "socket_filter",
        maps: &["array:4:32:1"],
        program: "
    *(u32 *)(r10 - 4) = 0
    r2 = r10
    r2 += -4
    r1 = map[0] ll
    call 1
    if r0 == 0 goto out
    r1 = *(u8 *)(r0 + 0)
    r1 &= 6
    r0 += r1
    ACCESS
out:
    r0 = 0
    exit",
        base: "r0",
        store: false,
    },
    Kind {
        name: "ctx",
        prog_type: "sched_cls",
        maps: &[],
        program: "
    ACCESS
    r0 = 0
    exit",
        base: "r1",
        store: false,
    },
    Kind {
        name: "stack",
        prog_type: "socket_filter",
        maps: &[],
        program: "
    *(u64 *)(r10 - 8) = 0
    *(u64 *)(r10 - 16) = 0
    *(u64 *)(r10 - 24) = 0
    *(u64 *)(r10 - 32) = 0
    r2 = r10
    r2 += -32
    ACCESS
    r0 = 0
    exit",
        base: "r2",
        store: false,
    },
    Kind {
        name: "ringbuf",
        prog_type: "socket_filter",
        maps: &["ringbuf:0:0:4096"],
        program: "
    r1 = map[0] ll
    r2 = 32
    r3 = 0
    call 131
    if r0 == 0 goto out
    ACCESS
    r1 = r0
    r2 = 0
    call 132
out:
    r0 = 0
    exit",
        base: "r0",
        store: true,
    },
    Kind {
        name: "map_ptr",
        prog_type: "socket_filter",
        maps: &["hash:4:8:16"],
        program: "
    r1 = map[0] ll
    ACCESS
    r0 = 0
    exit",
        base: "r1",
        store: false,
    },
];

/// The flag sets of the sweep, as the table's `flags:` line names them.
const FLAG_SETS: &[&str] = &["", "strict_alignment", "strict_alignment any_alignment"];

fn case_text(kind: &Kind, flags: &str, off: u32, size: u32) -> String {
    let width = match size {
        1 => "u8",
        2 => "u16",
        4 => "u32",
        _ => "u64",
    };
    let access = if kind.store {
        format!("*({width} *)({} + {off}) = 1", kind.base)
    } else {
        format!("r0 = *({width} *)({} + {off})", kind.base)
    };
    let mut text = format!(
        "=== sweep_{}_{off}_{size}\ntype: {}\n",
        kind.name, kind.prog_type
    );
    for m in kind.maps {
        text.push_str(&format!("map: {m}\n"));
    }
    if !flags.is_empty() {
        text.push_str(&format!("flags: {flags}\n"));
    }
    text.push_str("expect: accept\n---");
    text.push_str(&kind.program.replace("ACCESS", &access));
    text.push('\n');
    text
}

#[test]
fn bpfkit_and_linux_agree_on_alignment_for_every_pointer_kind_offset_and_size() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let mut total = 0;
    let mut misaligned_by_kind = vec![0usize; KINDS.len()];
    let mut disagreements = Vec::new();
    for (k, kind) in KINDS.iter().enumerate() {
        for flags in FLAG_SETS {
            for off in 0..=16 {
                for size in [1, 2, 4, 8] {
                    let case = parse(&case_text(kind, flags, off, size));
                    let insns = assemble(&case);
                    let kernel = match table::run_in_kernel(&case, &insns) {
                        Ok(run) => run.outcome,
                        Err(e) => panic!("{}: kernel setup: {e}", case.name),
                    };
                    let ours = bpfkit_outcome(&case, &insns);
                    total += 1;
                    if let Outcome::Rejected { error, .. } = &kernel {
                        if error.starts_with("misaligned") {
                            misaligned_by_kind[k] += 1;
                        }
                    }
                    if kernel != ours {
                        disagreements.push(format!(
                            "{} [{flags}]: Linux {kernel}, bpfkit {ours}",
                            case.name
                        ));
                    }
                }
            }
        }
    }
    println!(
        "alignment sweep: {total} programs, bpfkit and Linux agree on {} (verdict, errno and first error line)",
        total - disagreements.len()
    );
    for (kind, n) in KINDS.iter().zip(&misaligned_by_kind) {
        println!("  {}: {n} misaligned rejections by Linux", kind.name);
    }
    // Every kind must have met the rule, or the sweep tested nothing about it.
    for (kind, n) in KINDS.iter().zip(&misaligned_by_kind) {
        assert!(
            *n > 0,
            "{}: Linux rejected nothing as misaligned",
            kind.name
        );
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
