//! The examples do what their sources say, run in the kernel as the loader linked them.
//!
//! Each packet program is instantiated with `loader_util::kernel` and run with
//! `BPF_PROG_TEST_RUN` on packets built here; the expected map contents and output packets are
//! computed from those packets natively (lengths, checksums per RFC 1071, swapped addresses), not
//! taken from any program's output. Skips, saying why, where `bpf()` is unavailable.
//!
//! Socket filters: the kernel's test run strips the Ethernet header (`eth_type_trans`) before
//! running a socket filter, while the examples, like samples/bpf, are written for AF_PACKET
//! sockets that see the whole frame. The frame is therefore given behind a 14-byte dummy header,
//! so the program sees exactly the frame, and `skb->len` is the frame's length.

mod loader_util;

use bpfkit_kernel::{available, map_get_next_key, map_lookup, prog_test_run, Map};
use loader_util::kernel::instantiate;

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;

/// RFC 1071 Internet checksum of `data` (folded, complemented).
fn csum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet + IPv4 frame carrying `l4` (whose checksum, for TCP/UDP, is filled in).
fn ipv4_frame(proto: u8, src: [u8; 4], dst: [u8; 4], mut l4: Vec<u8>) -> Vec<u8> {
    let total = 20 + l4.len();
    let mut ip = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0,
        0,
        64,
        proto,
        0,
        0,
    ];
    ip.extend(src);
    ip.extend(dst);
    let c = csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let csum_at = match proto {
        TCP => Some(16),
        UDP => Some(6),
        ICMP => Some(2),
        _ => None,
    };
    if let Some(at) = csum_at {
        let mut covered = Vec::new();
        if proto != ICMP {
            covered.extend(src);
            covered.extend(dst);
            covered.extend([0, proto, (l4.len() >> 8) as u8, l4.len() as u8]);
        }
        covered.extend(&l4);
        let c = csum(&covered);
        l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
    f.extend(ip);
    f.extend(l4);
    f
}

fn tcp(sport: u16, dport: u16, payload: usize) -> Vec<u8> {
    let mut t = vec![0u8; 20 + payload];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[12] = 5 << 4;
    t
}

fn udp(sport: u16, dport: u16, payload: usize) -> Vec<u8> {
    let mut u = vec![0u8; 8 + payload];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u[4..6].copy_from_slice(&((8 + payload) as u16).to_be_bytes());
    u
}

fn icmp_echo(payload: usize) -> Vec<u8> {
    let mut i = vec![0u8; 8 + payload];
    i[0] = 8;
    i[4..8].copy_from_slice(&[0x12, 0x34, 0, 1]);
    i
}

fn u64_at(map: &Map, key: &[u8]) -> u64 {
    let v = map_lookup(map, key).unwrap_or_else(|e| panic!("lookup {key:?}: {e}"));
    u64::from_le_bytes(v[..8].try_into().expect("8 bytes"))
}

/// Runs a socket filter on a whole frame (see the module doc for the dummy header).
fn run_socket(prog: &bpfkit_kernel::Prog, frame: &[u8]) -> u32 {
    let mut data = vec![0u8; 12];
    data.extend([0x08, 0x00]);
    data.extend(frame);
    prog_test_run(prog, &data, None, 1)
        .expect("test run")
        .retval
}

fn kernel_or_skip() -> bool {
    match available() {
        Ok(()) => true,
        Err(why) => {
            println!("skipped: {why}");
            false
        }
    }
}

#[test]
fn sockex1_counts_bytes_per_protocol() {
    if !kernel_or_skip() {
        return;
    }
    let frames = [
        ipv4_frame(TCP, [10, 0, 0, 1], [10, 0, 0, 2], tcp(1000, 80, 100)),
        ipv4_frame(UDP, [10, 0, 0, 1], [10, 0, 0, 3], udp(53, 53, 30)),
        ipv4_frame(TCP, [10, 0, 0, 4], [10, 0, 0, 2], tcp(1001, 443, 0)),
        ipv4_frame(ICMP, [10, 0, 0, 1], [10, 0, 0, 2], icmp_echo(56)),
    ];
    for (path, obj) in loader_util::parsed("sockex1") {
        let k = instantiate(&obj, &path.display().to_string());
        for f in &frames {
            assert_eq!(run_socket(k.prog("count_proto_bytes"), f), 0);
        }
        let map = k.map(&obj, "proto_bytes");
        for proto in [TCP, UDP, ICMP, 2] {
            let want: usize = frames.iter().filter(|f| f[23] == proto).map(Vec::len).sum();
            assert_eq!(
                u64_at(map, &u32::from(proto).to_le_bytes()),
                want as u64,
                "{}: protocol {proto}",
                path.display()
            );
        }
    }
}

#[test]
fn sockex3_follows_tail_calls_to_the_flow_table() {
    if !kernel_or_skip() {
        return;
    }
    let plain = ipv4_frame(TCP, [192, 168, 1, 1], [192, 168, 1, 2], tcp(40000, 22, 10));
    // The same flow inside an 802.1Q tag: the VLAN parser strips it and tail-calls the IP one.
    let mut tagged = plain[..12].to_vec();
    tagged.extend([0x81, 0x00, 0x00, 0x05]);
    tagged.extend(&plain[12..]);
    let icmp = ipv4_frame(ICMP, [192, 168, 1, 3], [192, 168, 1, 2], icmp_echo(8));
    for (path, obj) in loader_util::parsed("sockex3") {
        let ctx = path.display().to_string();
        let k = instantiate(&obj, &ctx);
        for f in [&plain, &tagged, &icmp] {
            run_socket(k.prog("flow_dissect"), f);
        }
        // struct flow_key { src, dst, ports, ip_proto }: LD_ABS words are loaded in host order
        // from network-order bytes, i.e. the big-endian value, stored little-endian.
        let key = |src: [u8; 4], dst: [u8; 4], ports: u32, proto: u32| {
            let mut k = u32::from_be_bytes(src).to_le_bytes().to_vec();
            k.extend(u32::from_be_bytes(dst).to_le_bytes());
            k.extend(ports.to_le_bytes());
            k.extend(proto.to_le_bytes());
            k
        };
        let flows = k.map(&obj, "flows");
        let tcp_key = key([192, 168, 1, 1], [192, 168, 1, 2], (40000 << 16) | 22, 6);
        let v = map_lookup(flows, &tcp_key).unwrap_or_else(|e| panic!("{ctx}: tcp flow: {e}"));
        let (packets, bytes) = (
            u64::from_le_bytes(v[..8].try_into().expect("8")),
            u64::from_le_bytes(v[8..16].try_into().expect("8")),
        );
        assert_eq!(
            (packets, bytes),
            (2, (plain.len() + tagged.len()) as u64),
            "{ctx}: plain + VLAN-tagged"
        );
        let icmp_key = key([192, 168, 1, 3], [192, 168, 1, 2], 0, 1);
        let v = map_lookup(flows, &icmp_key).unwrap_or_else(|e| panic!("{ctx}: icmp flow: {e}"));
        assert_eq!(
            u64::from_le_bytes(v[..8].try_into().expect("8")),
            1,
            "{ctx}"
        );
        let mut n = 0;
        let mut cur = None;
        while let Ok(next) = map_get_next_key(flows, cur.as_deref()) {
            n += 1;
            cur = Some(next);
        }
        assert_eq!(n, 2, "{ctx}: two flows");
    }
}

#[test]
fn tc_rewrite_rewrites_and_keeps_checksums_valid() {
    if !kernel_or_skip() {
        return;
    }
    let to_8080 = ipv4_frame(TCP, [10, 1, 1, 1], [10, 9, 9, 9], tcp(5555, 8080, 12));
    let udp_8080 = ipv4_frame(UDP, [10, 1, 1, 1], [10, 9, 9, 9], udp(5555, 8080, 12));
    let other = ipv4_frame(TCP, [10, 1, 1, 1], [10, 9, 9, 9], tcp(5555, 8081, 12));
    for (path, obj) in loader_util::parsed("tc_rewrite") {
        let ctx = path.display().to_string();
        let k = instantiate(&obj, &ctx);
        for (frame, l4_csum) in [(&to_8080, 16usize), (&udp_8080, 6)] {
            let out = prog_test_run(k.prog("dnat"), frame, None, 1).expect("run");
            assert_eq!(out.retval, 0, "{ctx}: TC_ACT_OK");
            let mut want = frame.clone();
            want[30..34].copy_from_slice(&[10, 0, 0, 2]);
            want[36..38].copy_from_slice(&80u16.to_be_bytes());
            // ipv4_frame recomputes both checksums from scratch over the rewritten packet.
            want[34 + l4_csum..36 + l4_csum].fill(0);
            let rebuilt = ipv4_frame(want[23], [10, 1, 1, 1], [10, 0, 0, 2], want[34..].to_vec());
            assert_eq!(
                out.data_out, rebuilt,
                "{ctx}: rewritten frame with fresh checksums"
            );
            assert_eq!(
                csum(&out.data_out[14..34]),
                0,
                "{ctx}: IPv4 header checksum verifies"
            );
        }
        let out = prog_test_run(k.prog("dnat"), &other, None, 1).expect("run");
        assert_eq!(out.data_out, other, "{ctx}: other ports untouched");
        assert_eq!(
            u64_at(k.map(&obj, ".bss"), &0u32.to_le_bytes()),
            2,
            "{ctx}: rewritten counter"
        );
    }
}

#[test]
fn xdp_globals_drops_answers_and_counts() {
    if !kernel_or_skip() {
        return;
    }
    const XDP_DROP: u32 = 1;
    const XDP_PASS: u32 = 2;
    const XDP_TX: u32 = 3;
    let discard = ipv4_frame(UDP, [10, 0, 0, 1], [10, 0, 0, 2], udp(1234, 9, 4));
    let dns = ipv4_frame(UDP, [10, 0, 0, 1], [10, 0, 0, 2], udp(1234, 53, 4));
    let ping = ipv4_frame(ICMP, [10, 0, 0, 1], [10, 0, 0, 2], icmp_echo(16));
    for (path, obj) in loader_util::parsed("xdp_globals") {
        let ctx = path.display().to_string();
        let k = instantiate(&obj, &ctx);
        let prog = k.prog("xdp_filter");
        assert_eq!(
            prog_test_run(prog, &discard, None, 1).expect("run").retval,
            XDP_DROP,
            "{ctx}"
        );
        assert_eq!(
            prog_test_run(prog, &dns, None, 1).expect("run").retval,
            XDP_PASS,
            "{ctx}"
        );
        let out = prog_test_run(prog, &ping, None, 1).expect("run");
        assert_eq!(out.retval, XDP_TX, "{ctx}");
        // The reply: MACs and IPs swapped, ICMP type 0, checksum recomputed from scratch.
        let mut reply_icmp = ping[34..].to_vec();
        reply_icmp[0] = 0;
        reply_icmp[2..4].fill(0);
        let mut want = ipv4_frame(ICMP, [10, 0, 0, 2], [10, 0, 0, 1], reply_icmp);
        want[..6].copy_from_slice(&ping[6..12]);
        want[6..12].copy_from_slice(&ping[..6]);
        // The IPv4 header checksum is unchanged by swapping the two addresses.
        assert_eq!(out.data_out, want, "{ctx}: echo reply");
        let verdicts = map_lookup(k.map(&obj, ".bss"), &0u32.to_le_bytes()).expect("bss");
        let count =
            |v: usize| u64::from_le_bytes(verdicts[8 * v..8 * v + 8].try_into().expect("8"));
        assert_eq!(
            (count(1), count(2), count(3)),
            (1, 1, 1),
            "{ctx}: verdicts[] in .bss"
        );
        let seen = (discard.len() + dns.len() + ping.len()) as u64;
        assert_eq!(
            u64_at(k.map(&obj, ".data"), &0u32.to_le_bytes()),
            1000 + seen,
            "{ctx}: bytes_seen"
        );
    }
}

#[test]
fn cpuv4_signed_statistics() {
    if !kernel_or_skip() {
        return;
    }
    let mut frame = vec![0u8; 14];
    frame[12..14].copy_from_slice(&[0x88, 0xb5]); // local experimental EtherType
    let body: Vec<u8> = vec![
        0x80, 0xff, 0x7f, 0x01, 0xfe, 0x10, 0x90, 0x00, 0xc3, 0x3c, 0x81, 0x02, 0xaa, 0x55, 0xf0,
        0x0f,
    ];
    frame.extend(&body);
    let byte_sum: i64 = body.iter().map(|&b| i64::from(b as i8)).sum();
    let word_sum: i64 = body
        .chunks(2)
        .map(|w| i64::from(i16::from_be_bytes([w[0], w[1]])))
        .sum();
    let first_be = i64::from(u32::from_be_bytes([body[0], body[1], body[2], body[3]]));
    for (path, obj) in loader_util::parsed("cpuv4") {
        let ctx = path.display().to_string();
        let k = instantiate(&obj, &ctx);
        assert_eq!(
            prog_test_run(k.prog("signed_stats"), &frame, None, 1)
                .expect("run")
                .retval,
            2,
            "{ctx}"
        );
        let stats = k.map(&obj, "stats");
        let slot = |i: u32| u64_at(stats, &i.to_le_bytes()) as i64;
        // Rust's / and % truncate toward zero like BPF's sdiv/smod.
        assert_eq!(
            (slot(0), slot(1), slot(2), slot(3), slot(4), slot(5)),
            (1, byte_sum, word_sum, byte_sum / 16, byte_sum % 7, first_be),
            "{ctx}"
        );
    }
}

#[test]
fn legacy_maps_counts_frames() {
    if !kernel_or_skip() {
        return;
    }
    let frames = [
        ipv4_frame(UDP, [1, 1, 1, 1], [2, 2, 2, 2], udp(1, 2, 100)),
        ipv4_frame(TCP, [1, 1, 1, 1], [2, 2, 2, 2], tcp(1, 2, 500)),
    ];
    for (path, obj) in loader_util::parsed("legacy_maps") {
        let ctx = path.display().to_string();
        let k = instantiate(&obj, &ctx);
        for f in &frames {
            run_socket(k.prog("count_frames"), f);
        }
        // EtherType is loaded as two bytes in memory order: 08 00 -> key bytes 08 00.
        assert_eq!(
            u64_at(k.map(&obj, "frames_by_proto"), &[0x08, 0x00]),
            2,
            "{ctx}"
        );
        for f in &frames {
            let bucket = (f.len() / 64).min(15) as u32;
            let want = frames
                .iter()
                .filter(|g| (g.len() / 64).min(15) as u32 == bucket)
                .count() as u64;
            assert_eq!(
                u64_at(k.map(&obj, "frames_by_len"), &bucket.to_le_bytes()),
                want,
                "{ctx}: bucket {bucket}"
            );
        }
    }
}

/// The frames of the committed demo capture (classic pcap, little endian, Ethernet).
fn demo_frames() -> Vec<Vec<u8>> {
    let path = loader_util::source_dir().join("traffic/mixed.pcap");
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&data[..4], &0xa1b2_c3d4u32.to_le_bytes(), "pcap magic");
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= data.len() {
        let caplen = u32::from_le_bytes(data[at + 8..at + 12].try_into().expect("4")) as usize;
        frames.push(data[at + 16..at + 16 + caplen].to_vec());
        at += 16 + caplen;
    }
    frames
}

#[test]
fn sockex1_over_the_demo_capture() {
    if !kernel_or_skip() {
        return;
    }
    let frames = demo_frames();
    assert_eq!(
        frames.len(),
        44,
        "examples/traffic/make_pcap.py writes 44 frames"
    );
    // The program reads byte 23 (the IPv4 protocol field when the frame is plain IPv4) of every
    // frame, whatever it carries, and adds the frame's length to that slot.
    let mut want = [0u64; 256];
    for f in &frames {
        want[usize::from(f[23])] += f.len() as u64;
    }
    for (path, obj) in loader_util::parsed("sockex1") {
        let k = instantiate(&obj, &path.display().to_string());
        for f in &frames {
            run_socket(k.prog("count_proto_bytes"), f);
        }
        for (slot, &bytes) in want.iter().enumerate() {
            let got = u64_at(k.map(&obj, "proto_bytes"), &(slot as u32).to_le_bytes());
            assert_eq!(got, bytes, "{}: slot {slot}", path.display());
        }
    }
}

#[test]
fn xdp_globals_over_the_demo_capture() {
    if !kernel_or_skip() {
        return;
    }
    let frames = demo_frames();
    // Plain IPv4 (EtherType 0x0800, 20-byte header here): UDP to port 9 is dropped, ICMP echo
    // requests are answered, everything else passes.
    let (mut drop, mut tx) = (0u64, 0u64);
    for f in &frames {
        let ipv4 = f[12..14] == [0x08, 0x00];
        if ipv4 && f[23] == UDP && f[36..38] == [0, 9] {
            drop += 1;
        } else if ipv4 && f[23] == ICMP && f[34] == 8 && f[35] == 0 {
            tx += 1;
        }
    }
    assert_eq!(
        (drop, tx),
        (3, 4),
        "make_pcap.py: three discard datagrams, four pings"
    );
    let pass = frames.len() as u64 - drop - tx;
    for (path, obj) in loader_util::parsed("xdp_globals") {
        let ctx = path.display().to_string();
        let k = instantiate(&obj, &ctx);
        for f in &frames {
            prog_test_run(k.prog("xdp_filter"), f, None, 1).expect("run");
        }
        let verdicts = map_lookup(k.map(&obj, ".bss"), &0u32.to_le_bytes()).expect("bss");
        let count =
            |v: usize| u64::from_le_bytes(verdicts[8 * v..8 * v + 8].try_into().expect("8"));
        assert_eq!(
            (count(1), count(2), count(3)),
            (drop, pass, tx),
            "{ctx}: XDP_DROP, XDP_PASS, XDP_TX"
        );
    }
}
