//! Unit tests against the live kernel; each prints a skip reason when `bpf()` is unavailable.
#![expect(
    clippy::unwrap_used,
    reason = "a failing syscall in a test is the failure to report"
)]

use super::*;
use bpfkit_isa::Insn;

/// Returns true (after printing why) when the kernel cannot be used.
fn skip(test: &str) -> bool {
    match available() {
        Ok(()) => false,
        Err(why) => {
            println!("{test}: skipped: {why}");
            true
        }
    }
}

const MOV64_IMM: u8 = 0xb7;
const EXIT: u8 = 0x95;

#[test]
fn array_map_update_then_lookup_returns_the_value() {
    if skip("array_map") {
        return;
    }
    let map = map_create(names::MAP_ARRAY, 4, 8, 4, 0).expect("array map");
    let key = 2u32.to_le_bytes();
    // An array's elements exist from creation, zero-filled (kernel/bpf/arraymap.c).
    assert_eq!(map_lookup(&map, &key).unwrap(), vec![0; 8]);
    map_update(&map, &key, &0x1122_3344_5566_7788u64.to_le_bytes(), BPF_ANY).unwrap();
    assert_eq!(
        map_lookup(&map, &key).unwrap(),
        0x1122_3344_5566_7788u64.to_le_bytes().to_vec()
    );
    // Out-of-range index: ENOENT on lookup, E2BIG on update; arrays cannot delete (EINVAL).
    assert_eq!(map_lookup(&map, &9u32.to_le_bytes()), Err(Errno::ENOENT));
    assert_eq!(
        map_update(&map, &9u32.to_le_bytes(), &[0; 8], BPF_ANY),
        Err(Errno::E2BIG)
    );
    assert_eq!(map_delete(&map, &key), Err(Errno::EINVAL));
    // A key of the wrong size never reaches the kernel.
    assert_eq!(map_lookup(&map, &[0; 3]), Err(Errno::EINVAL));
}

#[test]
fn hash_map_flags_delete_and_iteration() {
    if skip("hash_map") {
        return;
    }
    let map = map_create(names::MAP_HASH, 4, 4, 8, 0).expect("hash map");
    assert_eq!(map_get_next_key(&map, None), Err(Errno::ENOENT));
    map_update(&map, &1u32.to_le_bytes(), &10u32.to_le_bytes(), BPF_NOEXIST).unwrap();
    assert_eq!(
        map_update(&map, &1u32.to_le_bytes(), &11u32.to_le_bytes(), BPF_NOEXIST),
        Err(Errno::EEXIST)
    );
    assert_eq!(
        map_update(&map, &2u32.to_le_bytes(), &20u32.to_le_bytes(), BPF_EXIST),
        Err(Errno::ENOENT)
    );
    map_update(&map, &2u32.to_le_bytes(), &20u32.to_le_bytes(), BPF_ANY).unwrap();
    let mut keys = Vec::new();
    let mut cur: Option<Vec<u8>> = None;
    while let Ok(k) = map_get_next_key(&map, cur.as_deref()) {
        keys.push(u32::from_le_bytes([k[0], k[1], k[2], k[3]]));
        cur = Some(k);
    }
    keys.sort_unstable();
    assert_eq!(keys, vec![1, 2]);
    map_delete(&map, &1u32.to_le_bytes()).unwrap();
    assert_eq!(map_lookup(&map, &1u32.to_le_bytes()), Err(Errno::ENOENT));
    assert_eq!(map_delete(&map, &1u32.to_le_bytes()), Err(Errno::ENOENT));
}

#[test]
fn percpu_lookup_returns_one_value_per_possible_cpu() {
    if skip("percpu") {
        return;
    }
    let map = map_create(names::MAP_PERCPU_ARRAY, 4, 4, 1, 0).expect("percpu array");
    // Values are copied 8-byte aligned, once per possible CPU (kernel/bpf/syscall.c).
    assert_eq!(map.lookup_size(), 8 * possible_cpus());
    let v = map_lookup(&map, &0u32.to_le_bytes()).unwrap();
    assert_eq!(v.len(), 8 * possible_cpus());
}

#[test]
fn socket_filter_returning_42_loads_and_runs() {
    if skip("r0_42") {
        return;
    }
    let prog = [
        Insn::new(MOV64_IMM, 0, 0, 0, 42),
        Insn::new(EXIT, 0, 0, 0, 0),
    ];
    let loaded = prog_load(names::PROG_SOCKET_FILTER, &prog[..], "GPL", 1, 1 << 16);
    let p = loaded.result.expect("the kernel accepts r0 = 42; exit");
    let run = prog_test_run(&p, &[0u8; 64], None, 1).expect("test run");
    assert_eq!(run.retval, 42);
    assert_eq!(run.data_out.len(), 64);
    // Raw bytes load the same way.
    let bytes = bpfkit_isa::insns_to_bytes(&prog);
    let again = prog_load(names::PROG_SOCKET_FILTER, &bytes, "GPL", 0, 0);
    assert!(again.result.is_ok());
}

#[test]
fn uninitialised_register_read_is_rejected_with_the_kernels_message() {
    if skip("reject") {
        return;
    }
    // r0 = r1 is fine (r1 = ctx), but r0 = r2 reads an uninitialised register.
    let prog = [Insn::new(0xbf, 0, 2, 0, 0), Insn::new(EXIT, 0, 0, 0, 0)];
    let loaded = prog_load(names::PROG_SOCKET_FILTER, &prog[..], "GPL", 1, 1 << 16);
    assert_eq!(loaded.result.err(), Some(Errno::EACCES));
    // kernel/bpf/verifier.c check_reg_arg: verbose(env, "R%d !read_ok\n", regno)
    assert!(loaded.log.contains("R2 !read_ok"), "log: {}", loaded.log);
}

#[test]
fn malformed_encoding_is_rejected_with_einval() {
    if skip("einval") {
        return;
    }
    // Opcode 0xff does not exist: "unknown opcode ff" and EINVAL.
    let prog = [Insn::new(0xff, 0, 0, 0, 0), Insn::new(EXIT, 0, 0, 0, 0)];
    let loaded = prog_load(names::PROG_SOCKET_FILTER, &prog[..], "GPL", 1, 1 << 16);
    assert_eq!(loaded.result.err(), Some(Errno::EINVAL));
    assert!(
        loaded.log.contains("unknown opcode ff"),
        "log: {}",
        loaded.log
    );
    // Not a multiple of 8: refused before the syscall.
    let short = prog_load(names::PROG_SOCKET_FILTER, &[0u8; 12][..], "GPL", 1, 4096);
    assert_eq!(short.result.err(), Some(Errno::EINVAL));
}

#[test]
fn map_indices_become_descriptors() {
    let mut prog = vec![
        Insn::new(0x18, 1, 1, 0, 1),
        Insn::new(0, 0, 0, 0, 0),
        Insn::new(0x18, 2, 0, 0, 7),
        Insn::new(0, 0, 0, 0, 0),
        Insn::new(0x18, 3, 2, 0, 0),
        Insn::new(0, 0, 0, 0, 4),
        Insn::new(EXIT, 0, 0, 0, 0),
    ];
    resolve_map_indices(&mut prog, &[30, 31]).unwrap();
    assert_eq!(prog[0].imm, 31);
    assert_eq!(prog[2].imm, 7, "src=0 is a plain constant");
    assert_eq!(prog[4].imm, 30);
    assert_eq!(prog[5].imm, 4, "the value offset stays");
    let err = resolve_map_indices(&mut prog, &[]).unwrap_err();
    assert_eq!(err.insn, 0);
}

#[test]
fn log_level_4_statistics_parse() {
    if skip("stats") {
        return;
    }
    let prog = [
        Insn::new(MOV64_IMM, 0, 0, 0, 0),
        Insn::new(EXIT, 0, 0, 0, 0),
    ];
    let loaded = ProgLoad {
        log_level: 4,
        ..ProgLoad::new(names::PROG_SOCKET_FILTER)
    }
    .load(&prog[..]);
    assert!(loaded.result.is_ok());
    let stats = VerifierStats::parse(&loaded.log).expect("statistics in a level-4 log");
    // Two straight-line instructions, nothing to branch on: 2 processed, no states.
    assert_eq!(stats.processed_insns, 2);
    assert_eq!(stats.insn_limit, 1_000_000);
    assert_eq!(stats.total_states, 0);
    assert!(stats.verification_time_us.is_some());
    assert_eq!(stats.stack_depth, vec![0]);
}
