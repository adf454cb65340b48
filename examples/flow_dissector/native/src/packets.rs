//! Packets for the flow dissector, each built from its fields so that the flow key the dissector
//! must hash is known without parsing the packet (the tests' independent expectation).

/// One packet of the corpus.
#[derive(Debug, Clone)]
pub struct Case {
    /// What the packet is, for failure messages.
    pub name: &'static str,
    /// The packet bytes, starting at the Ethernet header.
    pub packet: Vec<u8>,
    /// The bytes the dissector must hash (see flow_dissector.c), or `None` when it must return 0.
    pub key: Option<Vec<u8>>,
}

/// An IP flow: addresses, protocol and ports as they go on the wire.
#[derive(Debug, Clone, Copy)]
enum Addrs {
    V4([u8; 4], [u8; 4]),
    V6([u8; 16], [u8; 16]),
}

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMPV6: u8 = 58;

const SRC4: [u8; 4] = [192, 0, 2, 1];
const DST4: [u8; 4] = [198, 51, 100, 7];
const SRC6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
];
const DST6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x0a, 0, 0, 0x12, 0x34, 0, 0, 0, 0, 0xab, 0xcd,
];

/// Ethernet header (fixed MACs) with the given VLAN tags (TPID, TCI) and EtherType.
fn ethernet(vlans: &[(u16, u16)], ethertype: u16) -> Vec<u8> {
    let mut p = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01];
    for &(tpid, tci) in vlans {
        p.extend_from_slice(&tpid.to_be_bytes());
        p.extend_from_slice(&tci.to_be_bytes());
    }
    p.extend_from_slice(&ethertype.to_be_bytes());
    p
}

/// The Internet checksum (RFC 1071) of an IPv4 header.
fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// IPv4 header with `options` (a multiple of 4 bytes), the flags/fragment-offset field and the
/// length of what follows.
fn ipv4(
    proto: u8,
    src: [u8; 4],
    dst: [u8; 4],
    options: &[u8],
    frag: u16,
    payload: usize,
) -> Vec<u8> {
    let hlen = 20 + options.len();
    let total = (hlen + payload) as u16;
    let mut h = vec![0x40 | (hlen / 4) as u8, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34]);
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(options);
    let csum = ipv4_checksum(&h);
    h[10..12].copy_from_slice(&csum.to_be_bytes());
    h
}

/// IPv6 header (flow label 0x12345) with the given next header and payload length.
fn ipv6(next: u8, src: [u8; 16], dst: [u8; 16], payload: usize) -> Vec<u8> {
    let mut h = vec![0x60, 0x01, 0x23, 0x45];
    h.extend_from_slice(&(payload as u16).to_be_bytes());
    h.extend_from_slice(&[next, 64]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h
}

/// A TCP header (20 bytes, SYN) or a UDP header (8 bytes) with the given ports.
fn l4(proto: u8, sport: u16, dport: u16, payload: usize) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    if proto == IPPROTO_TCP {
        h.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        h.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
        h.extend_from_slice(&[0, 0]);
    }
    h
}

/// The flow key of flow_dissector.c: addresses, ports (0 when not hashed), protocol, 3 zeros.
fn key(addrs: Addrs, proto: u8, ports: Option<(u16, u16)>) -> Vec<u8> {
    let mut k = Vec::new();
    match addrs {
        Addrs::V4(s, d) => {
            k.extend_from_slice(&s);
            k.extend_from_slice(&d);
        }
        Addrs::V6(s, d) => {
            k.extend_from_slice(&s);
            k.extend_from_slice(&d);
        }
    }
    let (sport, dport) = ports.unwrap_or((0, 0));
    k.extend_from_slice(&sport.to_be_bytes());
    k.extend_from_slice(&dport.to_be_bytes());
    k.extend_from_slice(&[proto, 0, 0, 0]);
    k
}

/// A complete IPv4 packet and its key: Ethernet (+ VLANs), IPv4 with `options`, then an L4
/// header for TCP/UDP (other protocols get 8 bytes of opaque payload), then `payload` bytes.
fn v4_packet(
    vlans: &[(u16, u16)],
    proto: u8,
    options: &[u8],
    frag: u16,
    payload: usize,
) -> (Vec<u8>, Vec<u8>) {
    let (sport, dport) = (49152, 443);
    let l4h = if proto == IPPROTO_TCP || proto == IPPROTO_UDP {
        l4(proto, sport, dport, payload)
    } else {
        vec![8, 0, 0xf7, 0xff, 0, 0, 0, 0]
    };
    let mut p = ethernet(vlans, ETH_P_IP);
    p.extend(ipv4(proto, SRC4, DST4, options, frag, l4h.len() + payload));
    p.extend(&l4h);
    p.extend((0..payload).map(|i| i as u8));
    let fragment = frag & 0x3fff != 0;
    let ports =
        (!fragment && (proto == IPPROTO_TCP || proto == IPPROTO_UDP)).then_some((sport, dport));
    (p, key(Addrs::V4(SRC4, DST4), proto, ports))
}

/// A complete IPv6 packet and its key, like [`v4_packet`].
fn v6_packet(vlans: &[(u16, u16)], proto: u8, payload: usize) -> (Vec<u8>, Vec<u8>) {
    let (sport, dport) = (53, 33000);
    let l4h = if proto == IPPROTO_TCP || proto == IPPROTO_UDP {
        l4(proto, sport, dport, payload)
    } else {
        vec![128, 0, 0, 0, 0, 1, 0, 1]
    };
    let mut p = ethernet(vlans, ETH_P_IPV6);
    p.extend(ipv6(proto, SRC6, DST6, l4h.len() + payload));
    p.extend(&l4h);
    p.extend((0..payload).map(|i| i as u8));
    let ports = (proto == IPPROTO_TCP || proto == IPPROTO_UDP).then_some((sport, dport));
    (p, key(Addrs::V6(SRC6, DST6), proto, ports))
}

/// The benchmark's packet: a 64-byte Ethernet/IPv4/TCP frame (54 bytes of headers, 10 of data).
pub fn bench_packet() -> Vec<u8> {
    v4_packet(&[], IPPROTO_TCP, &[], 0, 10).0
}

/// The corpus: IPv4 and IPv6 over TCP, UDP and other protocols, VLAN and QinQ tags, IPv4 options
/// and fragments, truncations at every header, and non-IP frames.
pub fn corpus() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut ok = |name, (packet, key): (Vec<u8>, Vec<u8>)| {
        cases.push(Case {
            name,
            packet,
            key: Some(key),
        })
    };
    ok("ipv4 tcp 64 bytes", v4_packet(&[], IPPROTO_TCP, &[], 0, 10));
    ok("ipv4 udp", v4_packet(&[], IPPROTO_UDP, &[], 0, 32));
    ok(
        "ipv4 icmp (no ports)",
        v4_packet(&[], IPPROTO_ICMP, &[], 0, 0),
    );
    ok(
        "ipv4 tcp, DF set",
        v4_packet(&[], IPPROTO_TCP, &[], 0x4000, 0),
    );
    ok(
        "ipv4 udp, first fragment (MF)",
        v4_packet(&[], IPPROTO_UDP, &[], 0x2000, 16),
    );
    ok(
        "ipv4 udp, later fragment",
        v4_packet(&[], IPPROTO_UDP, &[], 0x00b9, 16),
    );
    // Record-route option padded with NOPs to 8 bytes (IHL 7), and the longest header (IHL 15).
    ok(
        "ipv4 tcp, IHL 7",
        v4_packet(&[], IPPROTO_TCP, &[7, 7, 4, 0, 0, 0, 0, 1], 0, 0),
    );
    ok(
        "ipv4 udp, IHL 15",
        v4_packet(&[], IPPROTO_UDP, &[1; 40], 0, 0),
    );
    ok("ipv6 tcp", v6_packet(&[], IPPROTO_TCP, 0));
    ok("ipv6 udp", v6_packet(&[], IPPROTO_UDP, 100));
    ok("ipv6 icmpv6 (no ports)", v6_packet(&[], IPPROTO_ICMPV6, 0));
    ok(
        "802.1Q ipv4 tcp",
        v4_packet(&[(ETH_P_8021Q, 100)], IPPROTO_TCP, &[], 0, 6),
    );
    ok(
        "802.1Q ipv6 udp",
        v6_packet(&[(ETH_P_8021Q, 0x2005)], IPPROTO_UDP, 0),
    );
    ok(
        "QinQ (802.1ad + 802.1Q) ipv4 udp",
        v4_packet(
            &[(ETH_P_8021AD, 10), (ETH_P_8021Q, 20)],
            IPPROTO_UDP,
            &[],
            0,
            0,
        ),
    );
    ok(
        "QinQ (802.1Q + 802.1Q) ipv6 tcp",
        v6_packet(&[(ETH_P_8021Q, 1), (ETH_P_8021Q, 2)], IPPROTO_TCP, 0),
    );

    let mut none = |name, packet: Vec<u8>| {
        cases.push(Case {
            name,
            packet,
            key: None,
        })
    };
    let (v4tcp, _) = v4_packet(&[], IPPROTO_TCP, &[], 0, 0);
    let (v6udp, _) = v6_packet(&[], IPPROTO_UDP, 0);
    let (v4opt, _) = v4_packet(&[], IPPROTO_UDP, &[1; 40], 0, 0);
    let (vlan4, _) = v4_packet(&[(ETH_P_8021Q, 100)], IPPROTO_TCP, &[], 0, 0);
    none("empty", Vec::new());
    none("ethernet cut at 13 bytes", v4tcp[..13].to_vec());
    none("ethernet only", v4tcp[..14].to_vec());
    none("ipv4 header cut at 19 bytes", v4tcp[..14 + 19].to_vec());
    none(
        "ipv4 tcp, ports cut at 3 bytes",
        v4tcp[..14 + 20 + 3].to_vec(),
    );
    none("ipv4 IHL 15, options cut", v4opt[..14 + 40].to_vec());
    none("ipv6 header cut at 39 bytes", v6udp[..14 + 39].to_vec());
    none(
        "ipv6 udp, ports cut at 2 bytes",
        v6udp[..14 + 40 + 2].to_vec(),
    );
    none("802.1Q tag cut", vlan4[..16].to_vec());
    none("802.1Q, inner ipv4 cut", vlan4[..18 + 10].to_vec());
    none("arp", {
        let mut p = ethernet(&[], ETH_P_ARP);
        p.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        p.extend([0u8; 20]);
        p
    });
    none("three VLAN tags (only two are parsed)", {
        let tags = [(ETH_P_8021AD, 1), (ETH_P_8021Q, 2), (ETH_P_8021Q, 3)];
        let mut p = ethernet(&tags, ETH_P_IP);
        p.extend_from_slice(&v4tcp[14..]);
        p
    });
    none("ethertype ipv4, version 6", {
        let mut p = v4tcp.clone();
        p[14] = 0x65;
        p
    });
    none("ethertype ipv6, version 4", {
        let mut p = v6udp.clone();
        p[14] = 0x40;
        p
    });
    none("ipv4 IHL 4", {
        let mut p = v4tcp.clone();
        p[14] = 0x44;
        p
    });
    cases
}
