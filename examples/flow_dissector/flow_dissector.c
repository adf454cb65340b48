// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * flow_dissector.c: bpfkit's headline workload. Parses Ethernet, up to two 802.1Q / 802.1ad
 * VLAN tags, IPv4 (any IHL, options skipped) or IPv6, then TCP or UDP, and returns a 32-bit
 * hash of the 5-tuple (source and destination address, source and destination port, IP
 * protocol).
 *
 * The same source is built three ways:
 *   - clang-19 -O2 -target bpf -mcpu=v3 (build.sh): the eBPF program that bpfkit, the rbpf
 *     crate and (through the XDP entry point) the Linux kernel run;
 *   - natively with the `cc` crate (native/): the reference the tests and benches compare with.
 * It uses no maps and no helpers, so every engine can run it.
 *
 * Hash: MurmurHash3_x86_32 with seed 0 over the key bytes
 *     IPv4: saddr(4) daddr(4) sport(2) dport(2) proto(1) 0(3)     = 16 bytes
 *     IPv6: saddr(16) daddr(16) sport(2) dport(2) proto(1) 0(3)   = 40 bytes
 * where addresses and ports are in network byte order, exactly as they appear in the packet.
 * The key's 32-bit blocks are read little-endian as MurmurHash3 specifies (both eBPF and the
 * native targets here are little-endian). Any MurmurHash3 implementation (e.g. Python's
 * mmh3.hash(key, 0, signed=False)) gives the same value for the same key.
 *
 * Ports are hashed as 0 when the protocol is neither TCP (6) nor UDP (17), and for IPv4
 * fragments (MF set or a non-zero fragment offset), as the kernel's flow dissector does by
 * default. IPv6 extension headers are not walked: the next header is the protocol.
 *
 * Returns 0 when there is no flow to hash: a non-IP EtherType, a wrong IP version, an IHL
 * below 5, or a packet too short for a header it needs (Ethernet, a VLAN tag, the IP header
 * with its options, or the 4 bytes of TCP/UDP ports). A real 5-tuple hashes to 0 with
 * probability 2^-32.
 *
 * Entry points (each one is a program of its own section in the eBPF object):
 *   flow_hash(struct flow_ctx *)      section "flow": r1 points to {u64 data; u64 data_end},
 *                                     absolute packet pointers, the layout of rbpf's
 *                                     EbpfVmFixedMbuff with offsets 0 and 8. The benchmarked
 *                                     program.
 *   flow_hash_mem(data, len)          section "flow_mem": r1 = the packet, r2 = its length, the
 *                                     convention of `bpfkit run --mem-hex` and of the
 *                                     conformance suite (one flat memory block).
 *   flow_hash_xdp(struct xdp_md *)    section "xdp" (eBPF build only): the same dissector as an
 *                                     XDP program, so the Linux verifier and BPF_PROG_TEST_RUN
 *                                     can check it.
 * Every packet access is bounds-checked against data_end first, the way the kernel verifier
 * requires of a packet program.
 */

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "the EtherType constants and the hash's block reads assume a little-endian target");

#ifdef __bpf__
#define SEC(name) __attribute__((section(name), used))
/* eBPF has no alignment faults, and clang emits one load for a plain dereference. */
#define LOAD16(p) (*(const u16 *)(p))
#define LOAD32(p) (*(const u32 *)(p))
#else
#define SEC(name)
/* Natively the packet may sit at any address: memcpy is the defined way to load from it
 * (it compiles to one mov on x86-64). */
static inline u16 load16(const u8 *p)
{
	u16 v;
	__builtin_memcpy(&v, p, sizeof(v));
	return v;
}
static inline u32 load32(const u8 *p)
{
	u32 v;
	__builtin_memcpy(&v, p, sizeof(v));
	return v;
}
#define LOAD16(p) load16(p)
#define LOAD32(p) load32(p)
#endif

/* EtherTypes and the IPv4 fragment mask as they read from the wire on a little-endian CPU. */
#define BE16(x) ((u16)((((x) & 0xff) << 8) | (((x) >> 8) & 0xff)))
#define ETH_P_IP_WIRE BE16(0x0800)
#define ETH_P_IPV6_WIRE BE16(0x86DD)
#define ETH_P_8021Q_WIRE BE16(0x8100)
#define ETH_P_8021AD_WIRE BE16(0x88A8)
#define IP_MF_OFFSET_WIRE BE16(0x3FFF)

/* Fully unroll the small fixed loops (the eBPF build needs no loop; gcc spells it differently). */
#ifdef __clang__
#define UNROLL _Pragma("unroll")
#else
#define UNROLL _Pragma("GCC unroll 8")
#endif

#define ETH_HLEN 14
#define VLAN_HLEN 4
#define IPV4_MIN_HLEN 20
#define IPV6_HLEN 40
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define MAX_VLAN_TAGS 2

/* The context of the "flow" entry point: absolute pointers to the packet and one past it. */
struct flow_ctx {
	u64 data;
	u64 data_end;
};

static inline __attribute__((always_inline)) u32 rotl32(u32 x, int r)
{
	return (x << r) | (x >> (32 - r));
}

/* One MurmurHash3_x86_32 block step. */
static inline __attribute__((always_inline)) u32 murmur_block(u32 h, u32 k)
{
	k *= 0xcc9e2d51u;
	k = rotl32(k, 15);
	k *= 0x1b873593u;
	h ^= k;
	h = rotl32(h, 13);
	return h * 5 + 0xe6546b64u;
}

/* MurmurHash3_x86_32's tail: mix in the length, then the finalizer (fmix32). */
static inline __attribute__((always_inline)) u32 murmur_finish(u32 h, u32 len)
{
	h ^= len;
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

static inline __attribute__((always_inline)) u32 flow_dissect(const u8 *data, const u8 *data_end)
{
	const u8 *p = data;
	u32 h = 0; /* the seed */
	u32 key_len;
	u16 proto;
	u8 l4proto;
	int has_ports = 1;

	if (p + ETH_HLEN > data_end)
		return 0;
	proto = LOAD16(p + 12);
	p += ETH_HLEN;

UNROLL
	for (int i = 0; i < MAX_VLAN_TAGS; i++) {
		if (proto != ETH_P_8021Q_WIRE && proto != ETH_P_8021AD_WIRE)
			break;
		if (p + VLAN_HLEN > data_end)
			return 0;
		proto = LOAD16(p + 2); /* the encapsulated EtherType follows the 2-byte TCI */
		p += VLAN_HLEN;
	}

	if (proto == ETH_P_IP_WIRE) {
		u32 ihl;

		if (p + IPV4_MIN_HLEN > data_end)
			return 0;
		if ((p[0] >> 4) != 4)
			return 0;
		ihl = (u32)(p[0] & 0xf) * 4;
		if (ihl < IPV4_MIN_HLEN)
			return 0;
		if (LOAD16(p + 6) & IP_MF_OFFSET_WIRE)
			has_ports = 0;
		l4proto = p[9];
		h = murmur_block(h, LOAD32(p + 12)); /* saddr */
		h = murmur_block(h, LOAD32(p + 16)); /* daddr */
		key_len = 16;
		p += ihl;
		if (p > data_end) /* options run past the packet */
			return 0;
	} else if (proto == ETH_P_IPV6_WIRE) {
		if (p + IPV6_HLEN > data_end)
			return 0;
		if ((p[0] >> 4) != 6)
			return 0;
		l4proto = p[6]; /* next header */
UNROLL
		for (int i = 8; i < IPV6_HLEN; i += 4) /* saddr at 8..24, daddr at 24..40 */
			h = murmur_block(h, LOAD32(p + i));
		key_len = 40;
		p += IPV6_HLEN;
	} else {
		return 0;
	}

	if (l4proto != IPPROTO_TCP && l4proto != IPPROTO_UDP)
		has_ports = 0;
	if (has_ports) {
		if (p + 4 > data_end)
			return 0;
		h = murmur_block(h, LOAD32(p)); /* sport, dport */
	} else {
		h = murmur_block(h, 0);
	}
	h = murmur_block(h, l4proto);
	return murmur_finish(h, key_len);
}

SEC("flow")
u32 flow_hash(const struct flow_ctx *ctx)
{
	return flow_dissect((const u8 *)(unsigned long)ctx->data,
			    (const u8 *)(unsigned long)ctx->data_end);
}

SEC("flow_mem")
u32 flow_hash_mem(const u8 *data, u64 len)
{
	return flow_dissect(data, data + len);
}

#ifdef __bpf__
/* The kernel's XDP context (include/uapi/linux/bpf.h): 32-bit packet pointers. */
struct xdp_md {
	u32 data;
	u32 data_end;
	u32 data_meta;
	u32 ingress_ifindex;
	u32 rx_queue_index;
	u32 egress_ifindex;
};

SEC("xdp")
u32 flow_hash_xdp(const struct xdp_md *ctx)
{
	return flow_dissect((const u8 *)(unsigned long)ctx->data,
			    (const u8 *)(unsigned long)ctx->data_end);
}

char _license[] SEC("license") = "Dual MIT/GPL";
#endif
