//! End-to-end: the tracing examples (tracex2, drop monitor) attached to host-declared hooks and
//! fired by a small host program; the expected maps are computed by the test from the events
//! it fires.
#![allow(clippy::unwrap_used, reason = "in tests a panic is the failure report")]

mod e2e_support;

use bpfkit::hook::{Hook, PtRegs};
use bpfkit::source::hist::{group_log2, log2_text};
use bpfkit_verifier::env::ProgType;
use e2e_support::{example_dirs, load, u64_at};
use std::collections::HashMap;

/// floor(log2(v)), 0 for 0 and 1: the histogram slot of tracex2.c, computed natively.
fn log2(v: u64) -> u32 {
    if v == 0 {
        0
    } else {
        63 - v.leading_zeros()
    }
}

#[test]
fn tracex2_write_histogram_per_process() {
    let sizes: Vec<u64> = vec![0, 1, 2, 3, 4, 100, 512, 4096, 4097, 65536, 1 << 40, 7, 7, 7];
    let tgid = u64::from(std::process::id());
    let mut expected: HashMap<u32, u64> = HashMap::new();
    for &s in &sizes {
        *expected.entry(log2(s)).or_default() += 1;
    }
    for dir in example_dirs() {
        let (bpf, inst, _) = load(&dir, "tracex2");
        let hook = Hook::new("ksys_write", ProgType::Kprobe, 168).unwrap();
        let link = hook.attach(&bpf, inst.prog("write_hist").unwrap()).unwrap();
        for &s in &sizes {
            // ksys_write(fd, buf, count): count is the third argument (dx).
            let regs = PtRegs::with_args(&[1, 0, s]);
            assert_eq!(hook.fire(regs.as_bytes()).unwrap(), vec![0]);
        }
        drop(link);
        // Detached: firing changes nothing.
        assert_eq!(hook.attached_count(), 0);
        hook.fire(PtRegs::with_args(&[1, 0, 5]).as_bytes()).unwrap();

        let map = inst.map("write_sizes").unwrap();
        let mut got = HashMap::new();
        let mut key: Option<Vec<u8>> = None;
        while let Ok(k) = bpf.map_next_key(map, key.as_deref()) {
            let v = bpf.map_lookup(map, &k).unwrap();
            let pid = u32::from_le_bytes(k[..4].try_into().unwrap());
            assert_eq!(u64::from(pid), tgid, "the key's tgid is the host's");
            got.insert(
                u32::from_le_bytes(k[4..8].try_into().unwrap()),
                u64_at(&v, 0),
            );
            key = Some(k);
        }
        assert_eq!(got, expected, "{}", dir.display());

        // Printed as the kernel sample prints it: the 4..7 row holds the sizes 4, 7, 7, 7.
        let entries: Vec<(Vec<u8>, u64)> = got
            .iter()
            .map(|(slot, n)| {
                let mut k = (tgid as u32).to_le_bytes().to_vec();
                k.extend_from_slice(&slot.to_le_bytes());
                (k, *n)
            })
            .collect();
        let groups = group_log2(&entries);
        let text = log2_text("byte_size", &groups[&(tgid as u32).to_le_bytes().to_vec()]);
        let fours = sizes.iter().filter(|&&s| (4..8).contains(&s)).count();
        assert!(
            text.contains(&format!("{:>8} -> {:<8} : {:<8} |", 4, 7, fours)),
            "{text}"
        );
    }
}

#[test]
fn tracex2_count_drops_reads_the_return_address_through_probe_read() {
    for dir in example_dirs() {
        let (bpf, inst, _) = load(&dir, "tracex2");
        let hook = Hook::new("kfree_skb_reason", ProgType::Kprobe, 168).unwrap();
        let _link = hook
            .attach(&bpf, inst.prog("count_drops").unwrap())
            .unwrap();
        // The "stack" the program reads at sp: a return address per event.
        let callers = [
            0xffff_ffff_8100_1000u64,
            0xffff_ffff_8100_2000,
            0xffff_ffff_8100_1000,
        ];
        for c in callers {
            let stack = [c, 0];
            let regs = PtRegs {
                sp: stack.as_ptr() as u64,
                ..PtRegs::default()
            };
            hook.fire(regs.as_bytes()).unwrap();
        }
        let map = inst.map("drop_callers").unwrap();
        let get = |c: u64| u64_at(&bpf.map_lookup(map, &c.to_le_bytes()).unwrap(), 0);
        assert_eq!(get(callers[0]), 2);
        assert_eq!(get(callers[1]), 1);
    }
}

/// One `skb:kfree_skb` record in drop_monitor.c's layout.
fn kfree_skb_record(location: u64, reason: u32) -> Vec<u8> {
    let mut r = vec![0u8; 40];
    r[16..24].copy_from_slice(&location.to_le_bytes());
    r[32..34].copy_from_slice(&0x0800u16.to_le_bytes());
    r[36..40].copy_from_slice(&reason.to_le_bytes());
    r
}

#[test]
fn drop_monitor_counts_per_location_and_reason_with_two_programs_sharing_maps() {
    let events: Vec<(u64, u32)> = (0..200u64)
        .map(|i| {
            (
                0xffff_ffff_8200_0000 + (i * 7 % 13) * 0x40,
                (i * 5 % 9) as u32,
            )
        })
        .collect();
    for dir in example_dirs() {
        let (bpf, inst, _) = load(&dir, "drop_monitor");
        let hook = Hook::new("skb:kfree_skb", ProgType::Tracepoint, 40).unwrap();
        let prog = inst.prog("count_drop").unwrap();
        // The same program attached twice: every event counts twice in the shared maps.
        let first = hook.attach(&bpf, prog).unwrap();
        let second = hook.attach(&bpf, prog).unwrap();
        for &(loc, reason) in &events {
            let runs = hook.fire(&kfree_skb_record(loc, reason)).unwrap();
            assert_eq!(runs.len(), 2);
        }
        drop(second);
        drop(first);
        let mut by_loc: HashMap<u64, u64> = HashMap::new();
        let mut by_reason = [0u64; 256];
        for &(loc, reason) in &events {
            *by_loc.entry(loc).or_default() += 2;
            by_reason[reason as usize] += 2;
        }
        let locs = inst.map("drops_by_location").unwrap();
        for (loc, n) in &by_loc {
            let v = bpf.map_lookup(locs, &loc.to_le_bytes()).unwrap();
            assert_eq!(u64_at(&v, 0), *n);
        }
        let reasons = inst.map("drops_by_reason").unwrap();
        for (r, n) in by_reason.iter().enumerate() {
            let v = bpf.map_lookup(reasons, &(r as u32).to_le_bytes()).unwrap();
            assert_eq!(u64_at(&v, 0), *n, "reason {r}");
        }
    }
}

#[test]
fn hooks_refuse_other_program_types() {
    let dir = &example_dirs()[0];
    let (bpf, inst, _) = load(dir, "drop_monitor");
    let hook = Hook::new("ksys_write", ProgType::Kprobe, 168).unwrap();
    assert!(hook.attach(&bpf, inst.prog("count_drop").unwrap()).is_err());
    assert!(hook
        .attach(&bpf, inst.map("drops_by_reason").unwrap())
        .is_err());
}

#[test]
fn hooks_fire_from_several_threads_and_count_exactly() {
    const THREADS: u64 = 4;
    const EVENTS: u64 = 2000;
    let dir = &example_dirs()[0];
    let (bpf, inst, _) = load(dir, "drop_monitor");
    let hook = Hook::new("skb:kfree_skb", ProgType::Tracepoint, 40).unwrap();
    let _link = hook.attach(&bpf, inst.prog("count_drop").unwrap()).unwrap();
    // Every thread fires the same locations: the first insert races (BPF_NOEXIST), and the
    // program then counts on the winner's entry, so no event is lost.
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for i in 0..EVENTS {
                    let rec = kfree_skb_record(0xffff_ffff_8300_0000 + (i % 4) * 8, 2);
                    hook.fire(&rec).unwrap();
                }
            });
        }
    });
    let locs = inst.map("drops_by_location").unwrap();
    for l in 0..4u64 {
        let v = bpf
            .map_lookup(locs, &(0xffff_ffff_8300_0000 + l * 8).to_le_bytes())
            .unwrap();
        assert_eq!(u64_at(&v, 0), THREADS * EVENTS / 4, "location {l}");
    }
    let reasons = inst.map("drops_by_reason").unwrap();
    let v = bpf.map_lookup(reasons, &2u32.to_le_bytes()).unwrap();
    assert_eq!(u64_at(&v, 0), THREADS * EVENTS);
}

#[test]
fn a_link_keeps_its_program_after_the_descriptor_is_closed() {
    let dir = &example_dirs()[0];
    let (bpf, inst, _) = load(dir, "drop_monitor");
    let hook = Hook::new("skb:kfree_skb", ProgType::Tracepoint, 40).unwrap();
    let prog = inst.prog("count_drop").unwrap();
    let link = hook.attach(&bpf, prog).unwrap();
    // As in Linux, the link holds the program: closing its descriptor does not detach it.
    bpf.close(prog).unwrap();
    assert!(bpf.prog(prog).is_err());
    hook.fire(&kfree_skb_record(0x1234, 7)).unwrap();
    drop(link);
    hook.fire(&kfree_skb_record(0x1234, 7)).unwrap();
    let reasons = inst.map("drops_by_reason").unwrap();
    let v = bpf.map_lookup(reasons, &7u32.to_le_bytes()).unwrap();
    assert_eq!(
        u64_at(&v, 0),
        1,
        "one event while attached, none after the link is dropped"
    );
}
