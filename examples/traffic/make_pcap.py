#!/usr/bin/env python3
"""Writes mixed.pcap: a small, deterministic capture for the examples and the README demo.

Every packet is built here field by field, with correct IPv4 header, TCP, UDP and ICMP
checksums (RFC 791/793/768/792, RFC 1071 sums), so that tcpdump decodes it cleanly and tests can
derive expected results from the packets themselves. The mix exercises every example:
IPv4 TCP/UDP/ICMP (sockex1), TCP to port 8080 (tc_rewrite), UDP to port 9 and ICMP echo requests
(xdp_globals), 802.1Q-tagged, MPLS, GRE, IP-in-IP and IPv6 flows (sockex3), ARP (nothing).
Usage: python3 make_pcap.py [OUT]   (default: mixed.pcap beside this script)
"""
import os
import struct
import sys

MAC_A = bytes([0x02, 0, 0, 0, 0, 0x0A])
MAC_B = bytes([0x02, 0, 0, 0, 0, 0x0B])


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4(a: str) -> bytes:
    return bytes(int(x) for x in a.split("."))


def ip6(last: int) -> bytes:
    return bytes([0x20, 0x01, 0x0D, 0xB8] + [0] * 11 + [last])


def l4_with_csum(proto: int, src: bytes, dst: bytes, hdr: bytes, at: int, pseudo: bool) -> bytes:
    seg = bytearray(hdr)
    seg[at:at + 2] = b"\0\0"
    if pseudo:
        if len(src) == 4:
            ph = src + dst + struct.pack("!BBH", 0, proto, len(seg))
        else:
            ph = src + dst + struct.pack("!I3xB", len(seg), proto)
        c = csum(ph + bytes(seg))
        if proto == 17 and c == 0:
            c = 0xFFFF
    else:
        c = csum(bytes(seg))
    seg[at:at + 2] = struct.pack("!H", c)
    return bytes(seg)


def tcp(src, dst, sport, dport, payload=b"", flags=0x18, seq=1):
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 65535, 0, 0) + payload
    return 6, l4_with_csum(6, src, dst, hdr, 16, True)


def udp(src, dst, sport, dport, payload=b""):
    hdr = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return 17, l4_with_csum(17, src, dst, hdr, 6, True)


def icmp_echo(ident, seq, payload=b"", reply=False):
    hdr = struct.pack("!BBHHH", 0 if reply else 8, 0, 0, ident, seq) + payload
    return 1, l4_with_csum(1, b"", b"", hdr, 2, False)


def ipv4(src, dst, l4, ident=1, ttl=64):
    proto, seg = l4
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), ident, 0, ttl, proto, 0, src, dst))
    hdr[10:12] = struct.pack("!H", csum(bytes(hdr)))
    return bytes(hdr) + seg


def ipv6(src, dst, l4, hop=64):
    proto, seg = l4
    return struct.pack("!IHBB16s16s", 6 << 28, len(seg), proto, hop, src, dst) + seg


def eth(ethertype, payload, src=MAC_A, dst=MAC_B):
    return dst + src + struct.pack("!H", ethertype) + payload


def packets():
    a, b, c = ip4("10.0.0.1"), ip4("10.0.0.2"), ip4("192.168.1.7")
    six_a, six_b = ip6(1), ip6(2)
    out = []
    for i in range(8):
        out.append(eth(0x0800, ipv4(a, b, tcp(a, b, 40000 + i, 8080, b"GET / HTTP/1.0\r\n\r\n"), ident=i)))
        out.append(eth(0x0800, ipv4(b, a, tcp(b, a, 80, 40000 + i, b"HTTP/1.0 200 OK\r\n\r\n" + bytes(i * 10)), ident=100 + i)))
    for i in range(6):
        out.append(eth(0x0800, ipv4(a, c, udp(a, c, 5353, 53, bytes([i]) * (20 + i)), ident=200 + i)))
    for i in range(3):
        out.append(eth(0x0800, ipv4(a, b, udp(a, b, 7000 + i, 9, b"discard me"), ident=300 + i)))
    for i in range(4):
        out.append(eth(0x0800, ipv4(c, a, icmp_echo(0x4242, i, bytes(range(32))), ident=400 + i)))
    for i in range(4):
        out.append(eth(0x86DD, ipv6(six_a, six_b, tcp(six_a, six_b, 50000 + i, 443, b"\x16\x03\x01"))))
        out.append(eth(0x86DD, ipv6(six_b, six_a, udp(six_b, six_a, 123, 123, bytes(48)))))
    # 802.1Q-tagged IPv4 TCP (VLAN 5).
    for i in range(3):
        inner = ipv4(a, c, tcp(a, c, 33000 + i, 22, b"SSH-2.0-x\r\n"), ident=500 + i)
        out.append(eth(0x8100, struct.pack("!HH", 5, 0x0800) + inner))
    # MPLS (label 16, bottom of stack) carrying IPv4 UDP.
    out.append(eth(0x8847, struct.pack("!I", (16 << 12) | (1 << 8) | 64) + ipv4(a, b, udp(a, b, 1000, 2000, b"mpls"), ident=600)))
    # GRE (no options) carrying IPv4 TCP; IP-in-IP carrying IPv4 UDP.
    gre_inner = ipv4(c, b, tcp(c, b, 1234, 80, b"gre"), ident=700)
    out.append(eth(0x0800, ipv4(a, b, (47, struct.pack("!HH", 0, 0x0800) + gre_inner), ident=701)))
    out.append(eth(0x0800, ipv4(a, b, (4, ipv4(c, a, udp(c, a, 4000, 4001, b"ipip"), ident=800)), ident=801)))
    # ARP request (no IP at all).
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, MAC_A, a, b"\0" * 6, b)
    out.append(eth(0x0806, arp, dst=b"\xff" * 6))
    return out


def write(path):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # LINKTYPE_ETHERNET
        for i, p in enumerate(packets()):
            f.write(struct.pack("<IIII", 1_700_000_000 + i // 10, (i % 10) * 100_000, len(p), len(p)))
            f.write(p)


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    write(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "mixed.pcap"))
