//! Differential test: bpfkit's context access rules against the live kernel's.
//!
//! For every program type bpfkit supports, every offset around its context, every access size
//! and both directions, load `r2 = *(size *)(r1 + off)` (or the store `*(size *)(r1 + off) = r2`)
//! into the kernel and compare its verdict with [`bpfkit::progtype::access::ctx_access`].
//! The types that load without capabilities (socket_filter, cgroup_skb) are probed once more
//! without them, against [`bpfkit::progtype::access::ctx_access_unprivileged`].
//! Skips, saying why, where the `bpf()` system call is unavailable.

use bpfkit::progtype::access::{ctx_access, ctx_access_unprivileged, Direction};
use bpfkit::progtype::{ctx_size, ProgType};
use bpfkit_isa::Insn;
use bpfkit_kernel::ProgLoad;

/// LDX/STX size fields by access size.
fn size_field(size: u32) -> u8 {
    match size {
        1 => 0x10,
        2 => 0x08,
        4 => 0x00,
        _ => 0x18,
    }
}

fn program(off: i16, size: u32, dir: Direction) -> Vec<u8> {
    let access = match dir {
        // ldx r2 = *(size *)(r1 + off)
        Direction::Read => Insn::new(0x61 | size_field(size), 2, 1, off, 0),
        // stx *(size *)(r1 + off) = r2
        Direction::Write => Insn::new(0x63 | size_field(size), 1, 2, off, 0),
    };
    [
        Insn::new(0xb7, 2, 0, 0, 0), // r2 = 0
        access,
        Insn::new(0xb7, 0, 0, 0, 0), // r0 = 0
        Insn::new(0x95, 0, 0, 0, 0), // exit
    ]
    .iter()
    .flat_map(|i| i.to_bytes())
    .collect()
}

fn offsets(t: ProgType) -> Vec<i16> {
    match t {
        // The tracepoint record is 8 KiB of uniform rules: probe its edges.
        ProgType::Tracepoint => (-8..40).chain(8150..8200).collect(),
        _ => {
            let size = i16::try_from(ctx_size(t)).expect("small context");
            (-8..size + 16).collect()
        }
    }
}

#[test]
fn context_access_rules_match_the_kernel() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let mut checked = 0;
    let mut disagreements = Vec::new();
    for t in ProgType::ALL {
        for off in offsets(t) {
            for size in [1u32, 2, 4, 8] {
                for dir in [Direction::Read, Direction::Write] {
                    let bytes = program(off, size, dir);
                    let quiet = ProgLoad {
                        log_level: 0,
                        ..ProgLoad::new(t.kernel_id())
                    };
                    let kernel_ok = quiet.load(&bytes[..]).result.is_ok();
                    let ours = ctx_access(t, i32::from(off), size, dir).allowed();
                    checked += 1;
                    if kernel_ok != ours {
                        let log = ProgLoad::new(t.kernel_id()).load(&bytes[..]).log;
                        let last = log
                            .lines()
                            .rev()
                            .find(|l| !l.starts_with("processed "))
                            .unwrap_or("")
                            .to_string();
                        disagreements.push(format!(
                            "{t} off={off} size={size} {dir:?}: kernel {} ({last}), bpfkit {}",
                            if kernel_ok { "accepts" } else { "rejects" },
                            if ours { "accepts" } else { "rejects" },
                        ));
                    }
                }
            }
        }
    }
    println!("{checked} context accesses compared with the kernel");
    assert!(
        disagreements.is_empty(),
        "{} of {checked} disagree:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

#[test]
fn unprivileged_context_access_rules_match_the_kernel() {
    let _guard = match bpfkit_kernel::UnprivilegedBpf::enable() {
        Ok(g) => g,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    let mut checked = 0;
    let mut disagreements = Vec::new();
    for t in [ProgType::SocketFilter, ProgType::CgroupSkb] {
        for off in offsets(t) {
            for size in [1u32, 2, 4, 8] {
                for dir in [Direction::Read, Direction::Write] {
                    let bytes = program(off, size, dir);
                    let loaded = ProgLoad::new(t.kernel_id()).load_unprivileged(&bytes[..]);
                    let kernel_ok = loaded.result.is_ok();
                    let ours = ctx_access_unprivileged(t, i32::from(off), size, dir).allowed();
                    checked += 1;
                    if kernel_ok != ours {
                        let last = loaded
                            .log
                            .lines()
                            .rev()
                            .find(|l| !l.starts_with("processed "))
                            .unwrap_or("")
                            .to_string();
                        disagreements.push(format!(
                            "{t} off={off} size={size} {dir:?} unprivileged: kernel {} ({last}), \
                             bpfkit {}",
                            if kernel_ok { "accepts" } else { "rejects" },
                            if ours { "accepts" } else { "rejects" },
                        ));
                    }
                }
            }
        }
    }
    println!("{checked} unprivileged context accesses compared with the kernel");
    assert!(
        disagreements.is_empty(),
        "{} of {checked} disagree:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}
