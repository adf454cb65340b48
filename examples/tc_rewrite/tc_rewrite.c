// SPDX-License-Identifier: GPL-2.0
/*
 * tc_rewrite: a tc (sched_cls) program doing destination NAT on IPv4.
 *
 * A TCP or UDP packet whose destination port is `match_port` gets its
 * destination address replaced by `target_addr` and its destination port by
 * `target_port`. The IPv4 header checksum is fixed with bpf_l3_csum_replace and
 * the TCP/UDP checksum (which covers the pseudo header, so the address too)
 * with bpf_l4_csum_replace, as in the kernel's samples/bpf/tcbpf1_kern.c.
 * A UDP checksum of 0 means "none" and is left alone (BPF_F_MARK_MANGLED_0).
 *
 * Configuration is global data: the ports in .rodata (frozen after load), the
 * address in .data (writable by userspace), the rewrite counter in .bss.
 * All multi-byte configuration values are in network byte order.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <stddef.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define IP_OFF ETH_HLEN
#define IP_CSUM_OFF (IP_OFF + offsetof(struct iphdr, check))
#define IP_DST_OFF (IP_OFF + offsetof(struct iphdr, daddr))

const volatile __be16 match_port = bpf_htons(8080);
const volatile __be16 target_port = bpf_htons(80);
__be32 target_addr = bpf_htonl(0x0a000002); /* 10.0.0.2 */
__u64 rewritten;

SEC("tc")
int dnat(struct __sk_buff *skb)
{
	__u32 l4_off, dport_off, csum_off, csum_flags = 0;
	__be32 old_addr, new_addr = target_addr;
	__be16 old_port, new_port = target_port;
	__u8 ihl_byte, proto;
	__be16 eth_proto;

	if (bpf_skb_load_bytes(skb, offsetof(struct ethhdr, h_proto), &eth_proto, 2) ||
	    eth_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, IP_OFF, &ihl_byte, 1) ||
	    bpf_skb_load_bytes(skb, IP_OFF + offsetof(struct iphdr, protocol), &proto, 1))
		return TC_ACT_OK;

	l4_off = IP_OFF + (ihl_byte & 0xf) * 4;
	if (proto == IPPROTO_TCP) {
		dport_off = l4_off + offsetof(struct tcphdr, dest);
		csum_off = l4_off + offsetof(struct tcphdr, check);
	} else if (proto == IPPROTO_UDP) {
		dport_off = l4_off + offsetof(struct udphdr, dest);
		csum_off = l4_off + offsetof(struct udphdr, check);
		csum_flags = BPF_F_MARK_MANGLED_0;
	} else {
		return TC_ACT_OK;
	}

	if (bpf_skb_load_bytes(skb, dport_off, &old_port, 2) || old_port != match_port)
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, IP_DST_OFF, &old_addr, 4))
		return TC_ACT_OK;

	/* The address is in both the IPv4 header checksum and the L4 pseudo header. */
	bpf_l4_csum_replace(skb, csum_off, old_addr, new_addr,
			    csum_flags | BPF_F_PSEUDO_HDR | sizeof(new_addr));
	bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_addr, new_addr, sizeof(new_addr));
	bpf_skb_store_bytes(skb, IP_DST_OFF, &new_addr, sizeof(new_addr), 0);

	bpf_l4_csum_replace(skb, csum_off, old_port, new_port, csum_flags | sizeof(new_port));
	bpf_skb_store_bytes(skb, dport_off, &new_port, sizeof(new_port), 0);

	__sync_fetch_and_add(&rewritten, 1);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
