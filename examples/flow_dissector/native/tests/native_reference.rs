//! The natively compiled flow dissector against its specification: for every packet of the
//! corpus, the hash of the key the packet was built from (MurmurHash3_x86_32, seed 0), or 0 where
//! the packet has no flow to hash. This pins the C code down before the eBPF engines are compared
//! with it.

use bpfkit_flow_dissector::{murmur3::murmur3_x86_32, native, packets};

#[test]
fn native_hash_matches_the_specified_key_hash() {
    for case in packets::corpus() {
        let expected = case.key.as_deref().map_or(0, |key| murmur3_x86_32(key, 0));
        assert_eq!(native::flow_hash(&case.packet), expected, "{}", case.name);
        assert_eq!(
            native::flow_hash_mem(&case.packet),
            expected,
            "{} (flow_mem)",
            case.name
        );
    }
}

#[test]
fn keys_of_ipv4_and_ipv6_have_the_documented_lengths() {
    for case in packets::corpus() {
        if let Some(key) = &case.key {
            assert!(
                key.len() == 16 || key.len() == 40,
                "{}: {}",
                case.name,
                key.len()
            );
        }
    }
}

#[test]
fn bench_packet_is_a_64_byte_ipv4_tcp_frame() {
    let packet = packets::bench_packet();
    assert_eq!(packet.len(), 64);
    assert_eq!(&packet[12..14], &[0x08, 0x00]);
    assert_eq!(packet[14 + 9], 6);
    assert_ne!(native::flow_hash(&packet), 0);
}
