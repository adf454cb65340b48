//! End-to-end: the ring-buffer producer example (`examples/ringbuf`), instantiated from its ELF
//! object and run on the committed capture. Both programs — the XDP one (reserve / submit) and
//! the socket filter (`bpf_ringbuf_output` from the stack) — must emit one record per frame, in
//! order, each equal to what the test computes by parsing the frame itself.
#![allow(clippy::unwrap_used, reason = "in tests a panic is the failure report")]

mod e2e_support;

use bpfkit::source::packets::run_frame;
use e2e_support::{example_dirs, load, mixed_pcap, pcap_frames};

/// `struct packet_event` of ringbuf.c: len, eth_proto (host order), ip_proto, pad, saddr and
/// daddr (network order), as the C source defines it, computed from the frame.
fn expected_event(frame: &[u8]) -> [u8; 16] {
    let mut ev = [0u8; 16];
    ev[0..4].copy_from_slice(&(frame.len() as u32).to_le_bytes());
    if frame.len() >= 14 {
        let proto = u16::from_be_bytes([frame[12], frame[13]]);
        ev[4..6].copy_from_slice(&proto.to_le_bytes());
        if proto == 0x0800 && frame.len() >= 14 + 20 {
            ev[6] = frame[14 + 9];
            ev[8..12].copy_from_slice(&frame[14 + 12..14 + 16]);
            ev[12..16].copy_from_slice(&frame[14 + 16..14 + 20]);
        }
    }
    ev
}

#[test]
fn both_producers_emit_one_record_per_frame_in_order() {
    let frames = pcap_frames(&mixed_pcap());
    assert!(frames.len() > 20);
    for dir in example_dirs() {
        for prog_name in ["xdp_events", "socket_events"] {
            let (bpf, inst, _) = load(&dir, "ringbuf");
            let prog = inst.prog(prog_name).unwrap();
            for f in &frames {
                run_frame(&bpf, prog, f).unwrap();
            }
            let events = bpf.map(inst.map("events").unwrap()).unwrap();
            let rb = events.as_ringbuf().unwrap();
            let mut records = Vec::new();
            rb.consume(|r| records.push(r.to_vec()));
            let want: Vec<Vec<u8>> = frames.iter().map(|f| expected_event(f).to_vec()).collect();
            assert_eq!(
                records.len(),
                frames.len(),
                "{prog_name} in {}",
                dir.display()
            );
            assert_eq!(records, want, "{prog_name} records in {}", dir.display());
            let lost = bpf
                .map_lookup(inst.map("lost").unwrap(), &0u32.to_le_bytes())
                .unwrap();
            assert_eq!(lost, vec![0; 8], "{prog_name}: nothing lost");
        }
    }
}
