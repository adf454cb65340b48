//! End-to-end: the perf event example (`examples/perf_output`), instantiated from its clang-built
//! ELF object. Its perf event array has no `max_entries` and is sized to the possible CPUs as
//! libbpf sizes it; user space opens one output event per CPU, the tc and XDP programs run on
//! the committed capture, and the samples read back must be, frame by frame and in order, the
//! header the C source defines (frame length, program number) followed by the frame's first 64
//! bytes, computed here from the frame. The kprobe program counts calls per call stack: fired
//! through a hook with two different call chains, its counts must be per chain.
#![allow(clippy::unwrap_used, reason = "in tests a panic is the failure report")]

mod e2e_support;

use bpfkit::helpers::stack::{with_call_chain, CallChain};
use bpfkit::hook::{Hook, PtRegs};
use bpfkit::maps::cpu;
use bpfkit::source::packets::run_frame;
use bpfkit_verifier::env::ProgType;
use e2e_support::{example_dirs, load, mixed_pcap, pcap_frames};

/// `struct sample_header` then up to 64 frame bytes, as perf_output.c sends them.
fn expected_sample(frame: &[u8], source: u32) -> Vec<u8> {
    let mut s = (frame.len() as u32).to_le_bytes().to_vec();
    s.extend(source.to_le_bytes());
    s.extend(&frame[..frame.len().min(64)]);
    s
}

#[test]
fn samples_are_the_header_then_the_frame_start_in_order() {
    let frames = pcap_frames(&mixed_pcap());
    assert!(frames.len() > 20);
    for dir in example_dirs() {
        for (prog_name, source) in [("tc_sample", 1u32), ("xdp_sample", 2)] {
            let (bpf, inst, _) = load(&dir, "perf_output");
            let events = inst.map("events").unwrap();
            assert_eq!(
                bpf.map_info(events).unwrap().max_entries,
                cpu::possible_cpus(),
                "libbpf's sizing"
            );
            let mut rings = Vec::new();
            for c in 0..cpu::possible_cpus() {
                let ev = bpf.perf_event_open(c, 64).unwrap();
                bpf.map_update_elem(events, &c.to_ne_bytes(), &ev.0.to_ne_bytes(), 0)
                    .unwrap();
                rings.push(bpf.perf_event(ev).unwrap());
            }
            let prog = inst.prog(prog_name).unwrap();
            for f in &frames {
                run_frame(&bpf, prog, f).unwrap();
            }
            // One thread ran every frame, so every sample is in its CPU's ring, in order.
            let samples: Vec<Vec<u8>> = rings.iter().flat_map(|r| r.read()).collect();
            let want: Vec<Vec<u8>> = frames.iter().map(|f| expected_sample(f, source)).collect();
            assert_eq!(samples, want, "{prog_name} in {}", dir.display());
            assert!(rings.iter().all(|r| r.lost() == 0));
        }
    }
}

#[test]
fn stack_counts_are_per_call_chain() {
    let a = CallChain {
        kernel: vec![
            0xffff_ffff_8123_4560,
            0xffff_ffff_8100_1000,
            0xffff_ffff_8100_0010,
        ],
        user: Vec::new(),
    };
    let b = CallChain {
        kernel: vec![0xffff_ffff_8155_0000, 0xffff_ffff_8100_0010],
        user: Vec::new(),
    };
    for dir in example_dirs() {
        let (bpf, inst, _) = load(&dir, "perf_output");
        let hook = Hook::new("ksys_write", ProgType::Kprobe, 168).unwrap();
        let _link = hook
            .attach(&bpf, inst.prog("count_stacks").unwrap())
            .unwrap();
        let regs = PtRegs::with_args(&[1, 0, 8]);
        for chain in [&a, &b, &a, &a, &b] {
            with_call_chain(chain.clone(), || hook.fire(regs.as_bytes()).unwrap());
        }
        // Without a chain bpf_get_stackid fails and nothing is counted.
        hook.fire(regs.as_bytes()).unwrap();

        let stacks = inst.map("stacks").unwrap();
        let counts = inst.map("stack_counts").unwrap();
        let mut got = Vec::new();
        let mut key: Option<Vec<u8>> = None;
        while let Ok(k) = bpf.map_next_key(stacks, key.as_deref()) {
            let frames: Vec<u64> = bpf
                .map_lookup(stacks, &k)
                .unwrap()
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                .take_while(|&ip| ip != 0)
                .collect();
            let n = u64::from_le_bytes(bpf.map_lookup(counts, &k).unwrap()[..].try_into().unwrap());
            got.push((frames, n));
            key = Some(k);
        }
        got.sort();
        let mut want = vec![(a.kernel.clone(), 3), (b.kernel.clone(), 2)];
        want.sort();
        assert_eq!(got, want, "{}", dir.display());
    }
}
