//! Differential sweep of loads through a map pointer (`check_ptr_to_map_access`): for maps of
//! several types, every offset from -8 to 8 bytes past the map type's struct and every size
//! 1/2/4/8, `r0 = *(SIZE *)(map + OFF)` is loaded into the running kernel and into bpfkit;
//! the verdict, errno and first error line must be the same. Stores are checked at a few
//! offsets. The only tolerated difference is the documented one: a read past the end of a
//! struct that ends in a flexible integer array (queue/stack slots) is refused by bpfkit
//! (docs/differences.md).
//!
//! The kernel is the only source of expected values. Skips, saying why, where `bpf()` is
//! unavailable.

mod sweep_util;

use bpfkit_kernel::table::{self, Outcome};
use sweep_util::{assemble, bpfkit_outcome, parse};

/// A map and the size of its kernel struct (from the kernel's BTF: `bpf_array` 312,
/// `bpf_htab` 832, `bpf_queue_stack` 312, `bpf_ringbuf_map` 304).
const MAPS: &[(&str, i32)] = &[
    ("array:4:12:5", 312),
    ("percpu_array:4:8:4", 312),
    ("prog_array:4:4:4", 312),
    ("hash:4:8:16", 832),
    ("lru_hash:4:8:16", 832),
    ("queue:0:4:4", 312),
    ("ringbuf:0:0:4096", 304),
];

fn case_text(map: &str, off: i32, size: u32, store: bool) -> String {
    let width = match size {
        1 => "u8",
        2 => "u16",
        4 => "u32",
        _ => "u64",
    };
    let sign = if off < 0 { '-' } else { '+' };
    let abs = off.unsigned_abs();
    let access = if store {
        format!("*({width} *)(r1 {sign} {abs}) = 0")
    } else {
        format!("r0 = *({width} *)(r1 {sign} {abs})")
    };
    let kind = map.split(':').next().unwrap_or(map);
    format!(
        "=== mapptr_sweep_{kind}_{off}_{size}\ntype: socket_filter\nmap: {map}\nexpect: accept\n---\n    r1 = map[0] ll\n    {access}\n    r0 = 0\n    exit\n"
    )
}

#[test]
fn bpfkit_and_linux_agree_on_every_load_through_a_map_pointer() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let mut total = 0;
    let mut flexible = 0;
    let mut accepted = 0;
    let mut disagreements = Vec::new();
    for &(map, struct_size) in MAPS {
        for off in -8..struct_size + 8 {
            for size in [1u32, 2, 4, 8] {
                let stores = [false, true];
                let kinds = if off % 64 == 0 {
                    &stores[..]
                } else {
                    &stores[..1]
                };
                for &store in kinds {
                    let case = parse(&case_text(map, off, size, store));
                    let insns = assemble(&case);
                    let kernel = match table::run_in_kernel(&case, &insns) {
                        Ok(run) => run.outcome,
                        Err(e) => panic!("{}: kernel setup: {e}", case.name),
                    };
                    let ours = bpfkit_outcome(&case, &insns);
                    total += 1;
                    if kernel == Outcome::Accepted {
                        accepted += 1;
                    }
                    if kernel == ours {
                        continue;
                    }
                    let past_end = i64::from(off) + i64::from(size) > i64::from(struct_size);
                    let refused_flexible = matches!(&ours, Outcome::Rejected { error, .. }
                        if error.starts_with("map_ptr access not supported by bpfkit past the end"));
                    if past_end && kernel == Outcome::Accepted && refused_flexible {
                        flexible += 1;
                        continue;
                    }
                    disagreements.push(format!("{}: Linux {kernel}, bpfkit {ours}", case.name));
                }
            }
        }
    }
    println!(
        "map pointer sweep: {total} programs ({accepted} accepted by Linux), bpfkit and Linux agree on {} (verdict, errno, first error line); {flexible} reads of a flexible array refused by bpfkit (documented)",
        total - disagreements.len() - flexible
    );
    assert!(accepted > 100, "Linux accepted only {accepted} loads");
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
