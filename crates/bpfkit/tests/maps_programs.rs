//! Maps used by running programs: several threads run a loaded program whose
//! `lock *(u64 *)(r0 + 0) += 1` goes through the value pointer `bpf_map_lookup_elem` returned,
//! while other threads use the API on the same map. No update may be lost.

use std::thread;

use bpfkit::maps::{MapAttr, MapType};
use bpfkit::prog::load::ProgLoadAttr;
use bpfkit::prog::run::TestRunAttr;
use bpfkit::progtype::ProgType;
use bpfkit::{Bpf, Errno, Fd};
use bpfkit_isa::Insn;

const THREADS: u64 = 4;
const RUNS: u32 = 5_000;

/// `key = 0 (u32 on the stack); r0 = lookup(map, &key); if r0: lock *(u64 *)r0 += 1`.
fn counter_prog(map: Fd, key_size: u32) -> Vec<Insn> {
    let store = if key_size == 8 { 0x7b } else { 0x63 };
    vec![
        Insn::new(0xb7, 1, 0, 0, 0),            // r1 = 0
        Insn::new(store, 10, 1, -8, 0),         // *(u32|u64 *)(r10 - 8) = r1
        Insn::new(0x18, 1, 1, 0, map.0 as i32), // r1 = map
        Insn::new(0, 0, 0, 0, 0),
        Insn::new(0xbf, 2, 10, 0, 0), // r2 = r10
        Insn::new(0x07, 2, 0, 0, -8), // r2 += -8
        Insn::new(0x85, 0, 0, 0, 1),  // call bpf_map_lookup_elem
        Insn::new(0x15, 0, 0, 2, 0),  // if r0 == 0 goto +2
        Insn::new(0xb7, 1, 0, 0, 1),  // r1 = 1
        Insn::new(0xdb, 0, 1, 0, 0),  // lock *(u64 *)(r0 + 0) += r1
        Insn::new(0xb7, 0, 0, 0, 0),  // r0 = 0
        Insn::new(0x95, 0, 0, 0, 0),  // exit
    ]
}

fn load(bpf: &Bpf, insns: &[Insn]) -> Result<Fd, Errno> {
    let attr = ProgLoadAttr {
        prog_type: ProgType::SocketFilter,
        insns,
        license: "GPL",
        log_level: 0,
        log_size: 0,
    };
    bpf.prog_load(&attr).map(|l| l.fd).map_err(|e| e.errno)
}

fn run_many(bpf: &Bpf, prog: Fd, churn: Option<Fd>) {
    let packet = [0u8; 64];
    thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                let attr = TestRunAttr {
                    data_in: &packet,
                    repeat: RUNS,
                    checked: false,
                    ..TestRunAttr::default()
                };
                let r = bpf.prog_test_run(prog, &attr);
                assert!(r.is_ok(), "{r:?}");
            });
        }
        if let Some(fd) = churn {
            s.spawn(move || {
                for i in 0..u64::from(RUNS) * 2 {
                    let k = (1000 + i % 50).to_ne_bytes();
                    if i % 3 == 2 {
                        let _ = bpf.map_delete_elem(fd, &k);
                    } else {
                        assert!(bpf.map_update_elem(fd, &k, &i.to_ne_bytes(), 0).is_ok());
                    }
                }
            });
        }
    });
}

fn sum(bpf: &Bpf, fd: Fd, key: &[u8]) -> Result<u64, Errno> {
    let v = bpf.map_lookup(fd, key)?;
    Ok(v.chunks(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
        .sum())
}

#[test]
fn programs_on_many_threads_count_exactly_in_an_array() -> Result<(), Errno> {
    let bpf = Bpf::new();
    let map = bpf.map_create(&MapAttr::new(MapType::Array, 4, 8, 1))?;
    let prog = load(&bpf, &counter_prog(map, 4))?;
    run_many(&bpf, prog, None);
    assert_eq!(
        sum(&bpf, map, &0u32.to_ne_bytes())?,
        THREADS * u64::from(RUNS)
    );
    Ok(())
}

#[test]
fn programs_count_exactly_in_a_hash_while_the_api_churns_it() -> Result<(), Errno> {
    let bpf = Bpf::new();
    let map = bpf.map_create(&MapAttr::new(MapType::Hash, 8, 8, 128))?;
    bpf.map_update_elem(map, &0u64.to_ne_bytes(), &0u64.to_ne_bytes(), 0)?;
    let prog = load(&bpf, &counter_prog(map, 8))?;
    run_many(&bpf, prog, Some(map));
    assert_eq!(
        sum(&bpf, map, &0u64.to_ne_bytes())?,
        THREADS * u64::from(RUNS)
    );
    Ok(())
}

#[test]
fn programs_count_exactly_in_a_percpu_array() -> Result<(), Errno> {
    let bpf = Bpf::new();
    let map = bpf.map_create(&MapAttr::new(MapType::PercpuArray, 4, 8, 1))?;
    let prog = load(&bpf, &counter_prog(map, 4))?;
    run_many(&bpf, prog, None);
    assert_eq!(
        sum(&bpf, map, &0u32.to_ne_bytes())?,
        THREADS * u64::from(RUNS)
    );
    Ok(())
}
