//! End-to-end: the map-in-map example (`examples/map_in_map`), instantiated from its ELF object
//! (statically initialised array of maps, a hash of maps filled here) and run on the committed
//! capture with packet-socket semantics. The inner maps' counts must equal what the test
//! computes by parsing the frames itself.
#![allow(clippy::unwrap_used, reason = "in tests a panic is the failure report")]

mod e2e_support;

use bpfkit::source::packets::run_frame;
use e2e_support::{example_dirs, load, mixed_pcap, pcap_frames, u64_at};

/// (IPv4 counts by protocol, IPv6 counts by next header), as count_by_family counts them.
fn expected(frames: &[Vec<u8>]) -> ([u64; 256], [u64; 256]) {
    let (mut v4, mut v6) = ([0u64; 256], [0u64; 256]);
    for f in frames {
        if f.len() < 14 {
            continue;
        }
        match u16::from_be_bytes([f[12], f[13]]) {
            0x0800 if f.len() > 14 + 9 => v4[usize::from(f[14 + 9])] += 1,
            0x86dd if f.len() > 14 + 6 => v6[usize::from(f[14 + 6])] += 1,
            _ => {}
        }
    }
    (v4, v6)
}

#[test]
fn inner_maps_count_per_family_and_per_ethertype() {
    let frames = pcap_frames(&mixed_pcap());
    let (v4, v6) = expected(&frames);
    assert!(v4.iter().sum::<u64>() > 0 && v6.iter().sum::<u64>() > 0);
    for dir in example_dirs() {
        let (bpf, inst, _) = load(&dir, "map_in_map");
        // Userspace fills the hash of maps: IPv6 frames also count into v6_protos through it.
        let by_ethertype = inst.map("by_ethertype").unwrap();
        let v6_fd = inst.map("v6_protos").unwrap();
        bpf.map_update_elem(
            by_ethertype,
            &0x86ddu16.to_le_bytes(),
            &v6_fd.0.to_le_bytes(),
            0,
        )
        .unwrap();
        let prog = inst.prog("count_by_family").unwrap();
        for f in &frames {
            run_frame(&bpf, prog, f).unwrap();
        }
        for proto in 0u32..256 {
            let k = proto.to_le_bytes();
            let got4 = u64_at(
                &bpf.map_lookup(inst.map("v4_protos").unwrap(), &k).unwrap(),
                0,
            );
            let got6 = u64_at(&bpf.map_lookup(v6_fd, &k).unwrap(), 0);
            let p = proto as usize;
            assert_eq!(got4, v4[p], "IPv4 protocol {proto} in {}", dir.display());
            // Counted twice: through per_family[1] and through by_ethertype[ETH_P_IPV6].
            assert_eq!(
                got6,
                2 * v6[p],
                "IPv6 next header {proto} in {}",
                dir.display()
            );
        }
    }
}
