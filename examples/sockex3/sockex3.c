// SPDX-License-Identifier: GPL-2.0
/*
 * sockex3: a flow parser split into socket-filter programs chained with
 * bpf_tail_call through a prog_array, after the kernel's samples/bpf/sockex3.
 *
 * flow_dissect reads the EtherType and tail-calls the parser for it; VLAN and
 * MPLS parsers strip their header and dispatch again; the IPv4 and IPv6
 * parsers record addresses (an IPv6 address is folded to 32 bits by XOR),
 * follow IP-in-IP, IPv6-in-IPv4 and GRE, and for TCP, UDP and ICMP account
 * {packets, bytes} per flow in a hash map. The offset of the next header
 * travels between programs in skb->cb[0]; the flow key being built lives in a
 * one-slot per-CPU array. The prog_array is filled statically (libbpf's
 * `.values = { [i] = &prog }` form, which produces relocations in .rel.maps).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(void *skb, unsigned long long off) asm("llvm.bpf.load.word");

#define PARSE_VLAN 1
#define PARSE_MPLS 2
#define PARSE_IP 3
#define PARSE_IPV6 4

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#define MPLS_BOTTOM_OF_STACK 0x100 /* S bit of a label stack entry */
#define GRE_CSUM 0x8000
#define GRE_ROUTING 0x4000
#define GRE_KEY 0x2000
#define GRE_SEQ 0x1000
#define GRE_VERSION 0x0007

struct flow_key {
	__u32 src;
	__u32 dst;
	__u32 ports; /* first four bytes of the L4 header, as loaded (host order) */
	__u32 ip_proto;
};

struct flow_stats {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct flow_key);
	__uint(max_entries, 1);
} flow_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct flow_key);
	__type(value, struct flow_stats);
	__uint(max_entries, 1024);
} flows SEC(".maps");

int parse_vlan(struct __sk_buff *skb);
int parse_mpls(struct __sk_buff *skb);
int parse_ipv4(struct __sk_buff *skb);
int parse_ipv6(struct __sk_buff *skb);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 8);
	__uint(key_size, sizeof(__u32));
	__array(values, int(void *));
} parsers SEC(".maps") = {
	.values = {
		[PARSE_VLAN] = (void *)&parse_vlan,
		[PARSE_MPLS] = (void *)&parse_mpls,
		[PARSE_IP] = (void *)&parse_ipv4,
		[PARSE_IPV6] = (void *)&parse_ipv6,
	},
};

static __always_inline void dispatch(struct __sk_buff *skb, __u32 eth_proto)
{
	switch (eth_proto) {
	case ETH_P_8021Q:
	case ETH_P_8021AD:
		bpf_tail_call(skb, &parsers, PARSE_VLAN);
		break;
	case ETH_P_MPLS_UC:
	case ETH_P_MPLS_MC:
		bpf_tail_call(skb, &parsers, PARSE_MPLS);
		break;
	case ETH_P_IP:
		bpf_tail_call(skb, &parsers, PARSE_IP);
		break;
	case ETH_P_IPV6:
		bpf_tail_call(skb, &parsers, PARSE_IPV6);
		break;
	}
}

static __always_inline struct flow_key *scratch_key(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&flow_scratch, &zero);
}

static __noinline void account(struct __sk_buff *skb, struct flow_key *scratch)
{
	struct flow_key key = *scratch;
	struct flow_stats *stats = bpf_map_lookup_elem(&flows, &key);

	if (stats) {
		__sync_fetch_and_add(&stats->packets, 1);
		__sync_fetch_and_add(&stats->bytes, skb->len);
	} else {
		struct flow_stats first = { .packets = 1, .bytes = skb->len };

		bpf_map_update_elem(&flows, &key, &first, BPF_ANY);
	}
}

static __always_inline void parse_l4(struct __sk_buff *skb, struct flow_key *key, __u32 ip_proto)
{
	__u32 nhoff = skb->cb[0];

	switch (ip_proto) {
	case IPPROTO_GRE: {
		__u32 flags = load_half(skb, nhoff);
		__u32 proto = load_half(skb, nhoff + 2);

		if (flags & (GRE_VERSION | GRE_ROUTING))
			break;
		nhoff += 4;
		if (flags & GRE_CSUM)
			nhoff += 4;
		if (flags & GRE_KEY)
			nhoff += 4;
		if (flags & GRE_SEQ)
			nhoff += 4;
		skb->cb[0] = nhoff;
		dispatch(skb, proto);
		break;
	}
	case IPPROTO_IPIP:
		dispatch(skb, ETH_P_IP);
		break;
	case IPPROTO_IPV6:
		dispatch(skb, ETH_P_IPV6);
		break;
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		key->ports = load_word(skb, nhoff);
		/* fall through */
	case IPPROTO_ICMP:
		key->ip_proto = ip_proto;
		account(skb, key);
		break;
	}
}

SEC("socket")
int flow_dissect(struct __sk_buff *skb)
{
	struct flow_key *key = scratch_key();

	if (!key)
		return 0;
	__builtin_memset(key, 0, sizeof(*key));
	skb->cb[0] = ETH_HLEN;
	dispatch(skb, load_half(skb, offsetof(struct ethhdr, h_proto)));
	return 0;
}

SEC("socket")
int parse_vlan(struct __sk_buff *skb)
{
	__u32 nhoff = skb->cb[0];
	__u32 proto = load_half(skb, nhoff + 2); /* encapsulated EtherType */

	skb->cb[0] = nhoff + 4;
	dispatch(skb, proto);
	return 0;
}

SEC("socket")
int parse_mpls(struct __sk_buff *skb)
{
	__u32 nhoff = skb->cb[0];
	__u32 label = load_word(skb, nhoff);

	nhoff += 4;
	skb->cb[0] = nhoff;
	if (!(label & MPLS_BOTTOM_OF_STACK))
		dispatch(skb, ETH_P_MPLS_UC);
	else if ((load_byte(skb, nhoff) & 0xf0) == 0x40)
		dispatch(skb, ETH_P_IP);
	else
		dispatch(skb, ETH_P_IPV6);
	return 0;
}

SEC("socket")
int parse_ipv4(struct __sk_buff *skb)
{
	struct flow_key *key = scratch_key();
	__u32 nhoff, ip_proto;

	if (!key)
		return 0;
	nhoff = skb->cb[0];
	if (load_half(skb, nhoff + offsetof(struct iphdr, frag_off)) & (IP_MF | IP_OFFSET))
		return 0;
	ip_proto = load_byte(skb, nhoff + offsetof(struct iphdr, protocol));
	if (ip_proto != IPPROTO_GRE) {
		key->src = load_word(skb, nhoff + offsetof(struct iphdr, saddr));
		key->dst = load_word(skb, nhoff + offsetof(struct iphdr, daddr));
	}
	nhoff += (load_byte(skb, nhoff) & 0xf) << 2;
	skb->cb[0] = nhoff;
	parse_l4(skb, key, ip_proto);
	return 0;
}

static __always_inline __u32 ipv6_addr_fold(struct __sk_buff *skb, __u32 off)
{
	return load_word(skb, off) ^ load_word(skb, off + 4) ^ load_word(skb, off + 8) ^
	       load_word(skb, off + 12);
}

SEC("socket")
int parse_ipv6(struct __sk_buff *skb)
{
	struct flow_key *key = scratch_key();
	__u32 nhoff, ip_proto;

	if (!key)
		return 0;
	nhoff = skb->cb[0];
	ip_proto = load_byte(skb, nhoff + offsetof(struct ipv6hdr, nexthdr));
	key->src = ipv6_addr_fold(skb, nhoff + offsetof(struct ipv6hdr, saddr));
	key->dst = ipv6_addr_fold(skb, nhoff + offsetof(struct ipv6hdr, daddr));
	skb->cb[0] = nhoff + sizeof(struct ipv6hdr);
	parse_l4(skb, key, ip_proto);
	return 0;
}

char _license[] SEC("license") = "GPL";
