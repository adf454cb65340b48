// SPDX-License-Identifier: GPL-2.0
/*
 * map_in_map: maps holding maps, declared with BTF and initialised statically.
 *
 * `per_family` is an array of two inner array maps (slot 0 counts IPv4 frames
 * by IP protocol, slot 1 IPv6 frames by next header); its inner map template
 * is given with __array(values, struct { ... }) and its slots are filled at
 * load time from `.values = { [0] = &v4_protos, [1] = &v6_protos }`, which
 * clang records as relocations in .rel.maps. `by_ethertype` is a hash of maps
 * keyed by EtherType with the same inner template, filled by userspace.
 * The socket filter picks the inner map for the frame's family and counts.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");

struct proto_counts {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 256);
};

struct proto_counts v4_protos SEC(".maps"), v6_protos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct proto_counts);
} per_family SEC(".maps") = {
	.values = { [0] = &v4_protos, [1] = &v6_protos },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 16);
	__type(key, __u16);
	__array(values, struct proto_counts);
} by_ethertype SEC(".maps");

SEC("socket")
int count_by_family(struct __sk_buff *skb)
{
	__u32 family, proto;
	__u16 ethertype = load_half(skb, offsetof(struct ethhdr, h_proto));
	__u64 *n;
	void *inner;

	if (ethertype == ETH_P_IP) {
		family = 0;
		proto = load_byte(skb, ETH_HLEN + offsetof(struct iphdr, protocol));
	} else if (ethertype == ETH_P_IPV6) {
		family = 1;
		proto = load_byte(skb, ETH_HLEN + offsetof(struct ipv6hdr, nexthdr));
	} else {
		return 0;
	}
	inner = bpf_map_lookup_elem(&per_family, &family);
	if (inner) {
		n = bpf_map_lookup_elem(inner, &proto);
		if (n)
			__sync_fetch_and_add(n, 1);
	}
	inner = bpf_map_lookup_elem(&by_ethertype, &ethertype);
	if (inner) {
		n = bpf_map_lookup_elem(inner, &proto);
		if (n)
			__sync_fetch_and_add(n, 1);
	}
	return 0;
}

char _license[] SEC("license") = "GPL";
