//! End-to-end: the packet examples (sockex1, xdp_globals, tc_rewrite) instantiated from their
//! ELF objects and run on the committed capture, frame by frame, with expected results that
//! each test computes by parsing the frames itself.
#![allow(clippy::unwrap_used, reason = "in tests a panic is the failure report")]

mod e2e_support;

use bpfkit::source::capture::read_capture;
use bpfkit::source::packets::{run_frame, run_pipeline, XDP_PASS, XDP_TX};
use e2e_support::{example_dirs, inet_csum, load, mixed_pcap, pcap_frames, u64_at};

fn frames_under_test() -> Vec<Vec<u8>> {
    let bytes = std::fs::read(mixed_pcap()).unwrap();
    let frames: Vec<Vec<u8>> = read_capture(&bytes)
        .unwrap()
        .into_iter()
        .map(|f| f.data)
        .collect();
    // bpfkit's reader agrees with the test's own.
    assert_eq!(frames, pcap_frames(&mixed_pcap()));
    assert!(frames.len() > 20);
    frames
}

#[test]
fn sockex1_counts_bytes_per_ip_protocol_on_a_packet_socket() {
    let frames = frames_under_test();
    // Packet-socket semantics: byte 23 is the IPv4 protocol of an Ethernet frame (the program
    // does not check the EtherType), and skb->len is the whole frame.
    let mut expected = [0u64; 256];
    for f in &frames {
        if f.len() > 23 {
            expected[usize::from(f[23])] += f.len() as u64;
        }
    }
    assert!(expected[6] > 0 && expected[17] > 0 && expected[1] > 0);
    for dir in example_dirs() {
        let (bpf, inst, _) = load(&dir, "sockex1");
        let prog = inst.prog("count_proto_bytes").unwrap();
        for f in &frames {
            let run = run_frame(&bpf, prog, f).unwrap();
            assert_eq!(run.retval, 0, "the filter keeps nothing");
            assert!(!run.passes);
        }
        let map = inst.map("proto_bytes").unwrap();
        for (proto, want) in expected.iter().enumerate() {
            let v = bpf.map_lookup(map, &(proto as u32).to_le_bytes()).unwrap();
            assert_eq!(
                u64_at(&v, 0),
                *want,
                "protocol {proto} in {}",
                dir.display()
            );
        }
    }
}

/// The verdict xdp_globals.c gives a frame, and whether it is an echo request it answers.
fn xdp_expected(f: &[u8]) -> u32 {
    if f.len() < 34 || f[12..14] != [0x08, 0x00] {
        return XDP_PASS;
    }
    let ihl = usize::from(f[14] & 0xf) * 4;
    if ihl < 20 {
        return XDP_PASS;
    }
    let l4 = 14 + ihl;
    match f[23] {
        17 if f.len() >= l4 + 8 && f[l4 + 2..l4 + 4] == [0, 9] => 1, // XDP_DROP
        1 if f.len() >= l4 + 8 && f[l4] == 8 && f[l4 + 1] == 0 => XDP_TX,
        _ => XDP_PASS,
    }
}

#[test]
fn xdp_globals_drops_discard_answers_pings_and_counts_in_globals() {
    let frames = frames_under_test();
    let verdicts: Vec<u32> = frames.iter().map(|f| xdp_expected(f)).collect();
    assert!(verdicts.contains(&1) && verdicts.contains(&XDP_TX));
    for dir in example_dirs() {
        let (bpf, inst, _) = load(&dir, "xdp_globals");
        let prog = inst.prog("xdp_filter").unwrap();
        for (f, want) in frames.iter().zip(&verdicts) {
            let run = run_frame(&bpf, prog, f).unwrap();
            assert_eq!(run.retval, *want);
            if *want == XDP_TX {
                let out = &run.data_out;
                // MACs and IPv4 addresses swapped, echo reply with a valid checksum.
                assert_eq!(out[..6], f[6..12]);
                assert_eq!(out[6..12], f[..6]);
                assert_eq!(out[26..30], f[30..34]);
                assert_eq!(out[30..34], f[26..30]);
                let l4 = 14 + usize::from(f[14] & 0xf) * 4;
                assert_eq!(out[l4], 0);
                let ip_total = usize::from(u16::from_be_bytes([f[16], f[17]]));
                assert_eq!(inet_csum(&out[l4..14 + ip_total]), 0, "ICMP checksum");
                assert_eq!(inet_csum(&out[14..l4]), 0, "IPv4 header checksum");
            } else {
                assert_eq!(&run.data_out, f);
            }
        }
        // .data: bytes_seen starts at 1000; .bss: verdict counts.
        let data = bpf
            .map_lookup(inst.map(".data").unwrap(), &0u32.to_le_bytes())
            .unwrap();
        let total: u64 = frames.iter().map(|f| f.len() as u64).sum();
        assert_eq!(u64_at(&data, 0), 1000 + total);
        let bss = bpf
            .map_lookup(inst.map(".bss").unwrap(), &0u32.to_le_bytes())
            .unwrap();
        for v in 0..5u32 {
            let n = verdicts.iter().filter(|&&x| x == v).count() as u64;
            assert_eq!(u64_at(&bss, 8 * v as usize), n, "verdict {v}");
        }
        assert!(inst.frozen(".rodata"));
    }
}

#[test]
fn tc_rewrite_dnats_port_8080_with_valid_checksums() {
    let frames = frames_under_test();
    let mut rewritten = 0;
    for dir in example_dirs() {
        let (bpf, inst, _) = load(&dir, "tc_rewrite");
        let prog = inst.prog("dnat").unwrap();
        rewritten = 0;
        for f in &frames {
            let runs = run_pipeline(&bpf, &[prog], f).unwrap();
            let run = &runs[0];
            assert_eq!(run.retval, 0, "TC_ACT_OK");
            let is_match =
                f.len() > 38 && f[12..14] == [0x08, 0x00] && (f[23] == 6 || f[23] == 17) && {
                    let l4 = 14 + usize::from(f[14] & 0xf) * 4;
                    f[l4 + 2..l4 + 4] == 8080u16.to_be_bytes()
                };
            if !is_match {
                assert_eq!(&run.data_out, f);
                continue;
            }
            rewritten += 1;
            let out = &run.data_out;
            let ihl = usize::from(f[14] & 0xf) * 4;
            let l4 = 14 + ihl;
            assert_eq!(out[30..34], [10, 0, 0, 2]);
            assert_eq!(out[l4 + 2..l4 + 4], 80u16.to_be_bytes());
            assert_eq!(inet_csum(&out[14..l4]), 0, "IPv4 header checksum");
            // TCP checksum over the pseudo header (RFC 793).
            let total = usize::from(u16::from_be_bytes([out[16], out[17]]));
            let seg = &out[l4..14 + total];
            let mut pseudo = Vec::new();
            pseudo.extend_from_slice(&out[26..34]);
            pseudo.extend_from_slice(&[0, out[23]]);
            pseudo.extend_from_slice(&(seg.len() as u16).to_be_bytes());
            pseudo.extend_from_slice(seg);
            assert_eq!(inet_csum(&pseudo), 0, "L4 checksum");
        }
        let data = bpf
            .map_lookup(inst.map(".bss").unwrap(), &0u32.to_le_bytes())
            .unwrap();
        assert_eq!(u64_at(&data, 0), rewritten);
    }
    assert!(rewritten > 0);
}

#[test]
fn pcapng_capture_reads_as_the_same_frames_and_times() {
    let pcap = read_capture(&std::fs::read(mixed_pcap()).unwrap()).unwrap();
    let ng_path = e2e_support::repo().join("examples/pcap/mixed.pcapng");
    let ng = read_capture(&std::fs::read(&ng_path).unwrap()).unwrap();
    assert_eq!(ng, pcap);
    // The committed file is what its generator writes (when Python is here to run it).
    let out = std::env::temp_dir().join(format!("bpfkit-ng-{}.pcapng", std::process::id()));
    let gen = e2e_support::repo().join("examples/pcap/make_pcapng.py");
    match std::process::Command::new("python3")
        .arg(&gen)
        .arg(mixed_pcap())
        .arg(&out)
        .output()
    {
        Ok(o) if o.status.success() => {
            assert_eq!(
                std::fs::read(&out).unwrap(),
                std::fs::read(&ng_path).unwrap()
            );
            std::fs::remove_file(&out).ok();
        }
        other => eprintln!("skipping the generator check: python3 unavailable ({other:?})"),
    }
}

#[test]
fn damaged_captures_are_errors_or_frames_never_panics() {
    let pcap = std::fs::read(mixed_pcap()).unwrap();
    let ng = std::fs::read(e2e_support::repo().join("examples/pcap/mixed.pcapng")).unwrap();
    for file in [&pcap, &ng] {
        // Every truncation.
        for n in 0..file.len() {
            let _ = read_capture(&file[..n]);
        }
        // Byte flips at a deterministic spread of positions (xorshift), several per copy.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            let mut copy = file.clone();
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let pos = (x % copy.len() as u64) as usize;
                copy[pos] ^= (x >> 32) as u8 | 1;
            }
            let _ = read_capture(&copy);
        }
    }
}
