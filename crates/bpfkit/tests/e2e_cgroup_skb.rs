//! End-to-end: the `cgroup_firewall` example (two clang-built cgroup_skb programs, the egress
//! one loaded for `BPF_CGROUP_INET_EGRESS` from its section name) in bpfkit and in the running
//! kernel. Every frame of the committed capture, plus two ECN-capable IPv4 frames built here,
//! is test-run in both: return values, output frames, the context written back (`skb->mark`)
//! and the final maps must agree, and the verdict counts must be what a parse of the frames
//! done here says. Skips the kernel side, saying why, where `bpf()` is unavailable.
#![allow(clippy::unwrap_used, reason = "in tests a panic is the failure report")]

mod e2e_support;
mod loader_util;

use bpfkit::prog::run::TestRunAttr;
use bpfkit_kernel as kernel;
use e2e_support::{example_dirs, load, mixed_pcap, pcap_frames, u64_at};

const NAME: &str = "cgroup_firewall";

/// An Ethernet + IPv4/UDP frame with the given TOS byte and destination port.
fn ipv4_udp(tos: u8, dport: u16) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
    f.extend([
        0x45, tos, 0, 36, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    f.extend([0x12, 0x34]);
    f.extend(dport.to_be_bytes());
    f.extend([0, 16, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    f
}

/// What the programs decide for `frame`, from the source's rules: (ingress verdict, egress
/// verdict, IP protocol counted or 0).
fn expected(frame: &[u8]) -> (u32, u32, u8) {
    let ipv4 = frame[12..14] == [0x08, 0x00] && frame.len() >= 34;
    if !ipv4 {
        return (1, 1, 0);
    }
    let ip = &frame[14..];
    let proto = ip[9];
    let ihl5 = ip[0] & 0x0f == 5;
    let drop = proto == 17 && ihl5 && ip.len() >= 28 && ip[22..24] == [0, 9];
    let ecn = ip[1] & 3 != 0;
    (u32::from(!drop), if ecn { 3 } else { 1 }, proto)
}

#[test]
fn cgroup_firewall_agrees_with_the_kernel_and_its_source() {
    let mut frames = pcap_frames(&mixed_pcap());
    frames.push(ipv4_udp(0x02, 53)); // ECT(0)
    frames.push(ipv4_udp(0x03, 9)); // CE, to the discard port
    let ctx_in = vec![0u8; 192];
    let kernel_ok = kernel::available();
    if let Err(why) = &kernel_ok {
        eprintln!("skipping the kernel side: {why}");
    }
    for dir in example_dirs() {
        let (bpf, inst, obj) = load(&dir, NAME);
        let k = kernel_ok
            .is_ok()
            .then(|| loader_util::kernel::instantiate(&obj, NAME));
        let mut want_verdicts = [0u64; 4];
        let mut want_packets = [0u64; 256];
        for (i, f) in frames.iter().enumerate() {
            let (ingress, egress, proto) = expected(f);
            want_verdicts[ingress as usize] += 1;
            want_verdicts[egress as usize] += 1;
            want_packets[usize::from(proto)] += 1;
            for (prog, want) in [("ingress_filter", ingress), ("egress_ecn", egress)] {
                let attr = TestRunAttr {
                    data_in: f,
                    ctx_in: Some(&ctx_in),
                    ..Default::default()
                };
                let ours = bpf.prog_test_run(inst.prog(prog).unwrap(), &attr).unwrap();
                assert_eq!(ours.retval, want, "{prog} frame {i}: r0");
                let ctx_out = ours.ctx_out.unwrap();
                let mark = u32::from_le_bytes(ctx_out[8..12].try_into().unwrap());
                assert_eq!(mark, if prog == "egress_ecn" { 0x42 } else { 0 });
                if let Some(k) = &k {
                    let kr = kernel::prog_test_run(k.prog(prog), f, Some(&ctx_in), 1).unwrap();
                    assert_eq!(ours.retval, kr.retval, "{prog} frame {i}: r0");
                    assert_eq!(ours.data_out, kr.data_out, "{prog} frame {i}: output frame");
                    assert_eq!(ctx_out, kr.ctx_out, "{prog} frame {i}: ctx_out");
                }
            }
        }
        assert!(
            want_verdicts[0] > 0 && want_verdicts[3] > 0,
            "both rare verdicts occur"
        );
        let verdicts = inst.map("verdicts").unwrap();
        for (v, want) in want_verdicts.iter().enumerate() {
            let got = bpf.map_lookup(verdicts, &(v as u32).to_le_bytes()).unwrap();
            assert_eq!(u64_at(&got, 0), *want, "verdict {v} count");
        }
        let by_proto = inst.map("by_proto").unwrap();
        for (p, want) in want_packets.iter().enumerate() {
            let got = bpf.map_lookup(by_proto, &(p as u32).to_le_bytes()).unwrap();
            assert_eq!(u64_at(&got, 0), *want, "packets of protocol {p}");
        }
        if let Some(k) = &k {
            for name in ["verdicts", "by_proto"] {
                let (ours, theirs) = (inst.map(name).unwrap(), k.map(&obj, name));
                let entries = obj.maps[obj.map_index(name).unwrap()].max_entries;
                for key in 0..entries {
                    let key = key.to_le_bytes();
                    assert_eq!(
                        bpf.map_lookup(ours, &key).unwrap(),
                        kernel::map_lookup(theirs, &key).unwrap(),
                        "map {name} key {key:02x?}"
                    );
                }
            }
        }
    }
}
