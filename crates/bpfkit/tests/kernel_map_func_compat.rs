//! Differential test of `check_map_func_compatibility`: every map type bpfkit implements passed
//! to every helper bpfkit implements that takes a map, loaded into the live kernel and into
//! bpfkit; the verdict, errno and first error line must be the same.
//!
//! Each program passes the map in the helper's map argument and plausible values in the others
//! (the context, a zeroed 64-byte stack buffer for memory, key and value pointers, 8 for sizes,
//! 0 for anything else), for a program type where the helper is available, so that the
//! compatibility check decides (or, where the kernel rejects the call earlier, the same earlier
//! check does). Skips, saying why, where `bpf()` is unavailable.

use bpfkit::helpers::registry;
use bpfkit::maps::{flags, MapAttr, MapType};
use bpfkit::prog::load::{ProgLoadAttr, ProgLoadOpts};
use bpfkit::Bpf;
use bpfkit_isa::Insn;
use bpfkit_kernel::table::{self, Outcome};
use bpfkit_kernel::ProgLoad;
use bpfkit_verifier::env::{ArgType, ProgType};

/// The attributes each map type is created with: (key_size, value_size, max_entries, flags).
fn attrs(t: MapType) -> (u32, u32, u32, u32) {
    match t {
        MapType::ProgArray | MapType::PerfEventArray | MapType::DevMap | MapType::DevMapHash => {
            (4, 4, 4, 0)
        }
        MapType::ArrayOfMaps | MapType::HashOfMaps => (4, 4, 4, 0),
        MapType::LpmTrie => (8, 8, 4, flags::BPF_F_NO_PREALLOC),
        MapType::Queue | MapType::Stack => (0, 8, 4, 0),
        MapType::RingBuf => (0, 0, 4096, 0),
        _ => (4, 8, 4, 0),
    }
}

/// The inner map template of maps of maps: an array of one 8-byte value.
const INNER: (u32, u32, u32, u32) = (2, 4, 8, 1);

fn ld_map(dst: u8, fd: i32) -> [Insn; 2] {
    [Insn::new(0x18, dst, 1, 0, fd), Insn::new(0, 0, 0, 0, 0)]
}

/// `r6 = r1`, a zeroed 64-byte stack buffer, the arguments, the call, `r0 = 0; exit`.
fn program(id: u32, args: &[ArgType; 5], map_fd: i32) -> Vec<Insn> {
    let mut p = vec![Insn::new(0xbf, 6, 1, 0, 0)];
    for off in (8..=64).step_by(8) {
        p.push(Insn::new(0x7a, 10, 0, -off, 0));
    }
    for (i, a) in args.iter().enumerate() {
        let r = i as u8 + 1;
        match a {
            ArgType::DontCare => break,
            ArgType::PtrToCtx => p.push(Insn::new(0xbf, r, 6, 0, 0)),
            ArgType::ConstMapPtr => p.extend(ld_map(r, map_fd)),
            ArgType::PtrToMapKey
            | ArgType::PtrToMapValue
            | ArgType::PtrToMem
            | ArgType::PtrToUninitMem
            | ArgType::PtrToMemOrNull => {
                p.push(Insn::new(0xbf, r, 10, 0, 0));
                p.push(Insn::new(0x07, r, 0, 0, -64));
            }
            ArgType::ConstSize | ArgType::ConstSizeOrZero | ArgType::ConstAllocSizeOrZero => {
                p.push(Insn::new(0xb7, r, 0, 0, 8));
            }
            _ => p.push(Insn::new(0xb7, r, 0, 0, 0)),
        }
    }
    p.push(Insn::new(0x85, 0, 0, 0, id as i32));
    p.push(Insn::new(0xb7, 0, 0, 0, 0));
    p.push(Insn::new(0x95, 0, 0, 0, 0));
    p
}

fn outcome(errno: Option<i32>, log: &str) -> Outcome {
    match errno {
        None => Outcome::Accepted,
        Some(e) => Outcome::Rejected {
            errno: bpfkit_kernel::Errno(e).name().to_string(),
            error: table::error_lines(log)
                .first()
                .map(|s| (*s).to_string())
                .unwrap_or_default(),
        },
    }
}

fn in_kernel(t: MapType, prog_type: ProgType, id: u32, args: &[ArgType; 5]) -> Outcome {
    let (k, v, m, f) = attrs(t);
    let inner = bpfkit_kernel::map_create(INNER.0, INNER.1, INNER.2, INNER.3, 0)
        .unwrap_or_else(|e| panic!("kernel inner map: {e:?}"));
    let map = if matches!(t, MapType::ArrayOfMaps | MapType::HashOfMaps) {
        bpfkit_kernel::map_create_outer(t.raw(), k, v, m, f, inner.fd())
    } else {
        bpfkit_kernel::map_create(t.raw(), k, v, m, f)
    }
    .unwrap_or_else(|e| panic!("kernel {}: {e:?}", t.name()));
    let insns = program(id, args, map.fd());
    let loaded = ProgLoad::new(prog_type.kernel_id()).load(&insns[..]);
    outcome(loaded.result.as_ref().err().map(|e| e.0), &loaded.log)
}

fn in_bpfkit(t: MapType, prog_type: ProgType, id: u32, args: &[ArgType; 5]) -> Outcome {
    let (k, v, m, f) = attrs(t);
    let bpf = Bpf::new();
    let inner = bpf
        .map_create(&MapAttr {
            map_type: INNER.0,
            key_size: INNER.1,
            value_size: INNER.2,
            max_entries: INNER.3,
            ..MapAttr::default()
        })
        .unwrap_or_else(|e| panic!("bpfkit inner map: {e}"));
    let fd = bpf
        .map_create(&MapAttr::new(t, k, v, m).flags(f).inner_map_fd(inner.0))
        .unwrap_or_else(|e| panic!("bpfkit {}: {e}", t.name()));
    let insns = program(id, args, fd.0 as i32);
    let attr = ProgLoadAttr {
        prog_type,
        insns: &insns,
        license: "GPL",
        log_level: 1,
        log_size: bpfkit_kernel::DEFAULT_LOG_SIZE,
    };
    match bpf.prog_load_with(&attr, &ProgLoadOpts::default()) {
        Ok(_) => Outcome::Accepted,
        Err(e) => outcome(Some(e.errno.code()), &e.log),
    }
}

#[test]
fn every_map_type_with_every_map_helper_matches_the_kernel() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let mut helpers: Vec<_> = registry::all()
        .iter()
        .filter(|d| d.proto.args.contains(&ArgType::ConstMapPtr))
        .collect();
    helpers.sort_by_key(|d| d.id);
    helpers.dedup_by_key(|d| d.id);
    let mut differences = Vec::new();
    let (mut pairs, mut compat_errors) = (0, 0);
    for d in &helpers {
        let Some(prog_type) = ProgType::ALL
            .into_iter()
            .find(|t| registry::lookup(*t, d.id as i32).is_some())
        else {
            continue;
        };
        for t in MapType::ALL {
            let kernel = in_kernel(t, prog_type, d.id, &d.proto.args);
            let ours = in_bpfkit(t, prog_type, d.id, &d.proto.args);
            pairs += 1;
            if let Outcome::Rejected { error, .. } = &kernel {
                compat_errors += usize::from(error.starts_with("cannot pass map_type"));
            }
            if kernel != ours {
                differences.push(format!(
                    "{} into {}#{} ({prog_type}): kernel {kernel}, bpfkit {ours}",
                    t.name(),
                    d.proto.name,
                    d.id
                ));
            }
        }
    }
    println!(
        "{pairs} (map type, helper) pairs compared with the kernel, {compat_errors} refused as \
         incompatible by it; {} differ",
        differences.len()
    );
    assert!(pairs >= 17 * 10, "only {pairs} pairs");
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
