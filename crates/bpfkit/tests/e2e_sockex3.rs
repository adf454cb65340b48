//! End-to-end: sockex3, a flow dissector split into programs chained with `bpf_tail_call`
//! through a statically initialised prog_array, run on every frame of the committed capture
//! with packet-socket semantics. The expected flow table comes from a native dissector written
//! here from the C source's rules (VLAN, MPLS, IPv4 without fragments, IPv6, GRE, IP-in-IP; the
//! kernel's limit of 33 tail calls).
#![allow(clippy::unwrap_used, reason = "in tests a panic is the failure report")]

mod e2e_support;

use bpfkit::source::packets::run_frame;
use e2e_support::{example_dirs, load, mixed_pcap, pcap_frames, u64_at};
use std::collections::HashMap;

/// `MAX_TAIL_CALL_CNT` (include/linux/bpf.h).
const MAX_TAIL_CALLS: u32 = 33;

/// The flow key sockex3 would account `f` under, or `None` when it accounts nothing.
fn dissect(f: &[u8]) -> Option<[u32; 4]> {
    let byte = |o: usize| f.get(o).map(|&b| u32::from(b));
    let half = |o: usize| {
        f.get(o..o + 2)
            .map(|b| u32::from(u16::from_be_bytes([b[0], b[1]])))
    };
    let word = |o: usize| {
        f.get(o..o + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let fold = |o: usize| Some(word(o)? ^ word(o + 4)? ^ word(o + 8)? ^ word(o + 12)?);
    let mut key = [0u32; 4];
    let mut nhoff = 14usize;
    let mut proto = half(12)?;
    let mut tail_calls = 0;
    loop {
        tail_calls += 1;
        if tail_calls > MAX_TAIL_CALLS {
            return None;
        }
        let ip_proto = match proto {
            0x8100 | 0x88a8 => {
                proto = half(nhoff + 2)?;
                nhoff += 4;
                continue;
            }
            0x8847 | 0x8848 => {
                let label = word(nhoff)?;
                nhoff += 4;
                proto = if label & 0x100 == 0 {
                    0x8847
                } else if byte(nhoff)? & 0xf0 == 0x40 {
                    0x0800
                } else {
                    0x86dd
                };
                continue;
            }
            0x0800 => {
                if half(nhoff + 6)? & 0x3fff != 0 {
                    return None;
                }
                let p = byte(nhoff + 9)?;
                if p != 47 {
                    key[0] = word(nhoff + 12)?;
                    key[1] = word(nhoff + 16)?;
                }
                nhoff += ((byte(nhoff)? & 0xf) << 2) as usize;
                p
            }
            0x86dd => {
                let p = byte(nhoff + 6)?;
                key[0] = fold(nhoff + 8)?;
                key[1] = fold(nhoff + 24)?;
                nhoff += 40;
                p
            }
            _ => return None,
        };
        match ip_proto {
            47 => {
                let flags = half(nhoff)?;
                let inner = half(nhoff + 2)?;
                if flags & 0x4007 != 0 {
                    return None;
                }
                nhoff += 4;
                for bit in [0x8000, 0x2000, 0x1000] {
                    if flags & bit != 0 {
                        nhoff += 4;
                    }
                }
                proto = inner;
            }
            4 => proto = 0x0800,
            41 => proto = 0x86dd,
            6 | 17 => {
                key[2] = word(nhoff)?;
                key[3] = ip_proto;
                return Some(key);
            }
            1 => {
                key[3] = 1;
                return Some(key);
            }
            _ => return None,
        }
    }
}

#[test]
fn sockex3_flow_table_matches_a_native_dissector() {
    let frames = pcap_frames(&mixed_pcap());
    let mut expected: HashMap<[u32; 4], (u64, u64)> = HashMap::new();
    for f in &frames {
        if let Some(k) = dissect(f) {
            let e = expected.entry(k).or_default();
            e.0 += 1;
            e.1 += f.len() as u64;
        }
    }
    // The capture's GRE frame carries TCP 192.168.1.7:1234 -> 10.0.0.2:80 (as tcpdump decodes
    // it), and its IP-in-IP frame UDP 192.168.1.7:4000 -> 10.0.0.1:4001.
    assert!(expected.contains_key(&[0xc0a8_0107, 0x0a00_0002, (1234 << 16) | 80, 6]));
    assert!(expected.contains_key(&[0xc0a8_0107, 0x0a00_0001, (4000 << 16) | 4001, 17]));
    for dir in example_dirs() {
        let (bpf, inst, _) = load(&dir, "sockex3");
        let entry = inst.prog("flow_dissect").unwrap();
        for f in &frames {
            assert_eq!(run_frame(&bpf, entry, f).unwrap().retval, 0);
        }
        let flows = inst.map("flows").unwrap();
        let mut got = HashMap::new();
        let mut key: Option<Vec<u8>> = None;
        while let Ok(k) = bpf.map_next_key(flows, key.as_deref()) {
            let v = bpf.map_lookup(flows, &k).unwrap();
            let mut kk = [0u32; 4];
            for (i, w) in k.chunks(4).enumerate() {
                kk[i] = u32::from_le_bytes(w.try_into().unwrap());
            }
            got.insert(kk, (u64_at(&v, 0), u64_at(&v, 8)));
            key = Some(k);
        }
        assert_eq!(got, expected, "{}", dir.display());
    }
}
