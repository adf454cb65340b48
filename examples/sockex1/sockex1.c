// SPDX-License-Identifier: GPL-2.0
/*
 * sockex1: a socket filter that counts bytes per IP protocol.
 *
 * Behaviour follows the kernel's samples/bpf/sockex1: the IP protocol byte is
 * read with a classic-style absolute load (LD_ABS), used as the index into a
 * 256-entry array map, and the packet length is added atomically to that slot.
 * Unlike the sample, packets of every direction are counted: a capture file
 * carries no direction, and the sample's PACKET_OUTGOING test would count none.
 * The filter returns 0, so the socket it is attached to receives nothing.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>

/* LLVM turns these builtins into BPF_LD | BPF_ABS / BPF_IND loads. */
unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 256);
} proto_bytes SEC(".maps");

SEC("socket")
int count_proto_bytes(struct __sk_buff *skb)
{
	__u32 proto = load_byte(skb, ETH_HLEN + offsetof(struct iphdr, protocol));
	__u64 *bytes;

	bytes = bpf_map_lookup_elem(&proto_bytes, &proto);
	if (bytes)
		__sync_fetch_and_add(bytes, skb->len);
	return 0;
}

char _license[] SEC("license") = "GPL";
