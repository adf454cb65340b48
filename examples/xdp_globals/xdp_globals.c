// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_globals: an XDP program using direct packet access, global variables and
 * a bpf-to-bpf call.
 *
 * Packets are parsed in place (data/data_end bounds checks). UDP datagrams to
 * `blocked_port` (in .rodata, set before load) are dropped; ICMP echo requests
 * are answered by swapping the MAC and IP addresses in place and sending the
 * frame back (XDP_TX, type rewritten to echo reply with the checksum
 * adjusted); everything else passes. Per-verdict packet counts live in .bss,
 * the number of bytes inspected in .data (which starts non-zero on purpose,
 * so that .data has an initial image). The L4 parser is a separate function
 * (__noinline), called with BPF_PSEUDO_CALL. A drop is also reported with
 * bpf_trace_printk, whose format string is a literal in .rodata.str1.1.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/icmp.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

const volatile __u16 blocked_port = 9; /* discard */
__u64 bytes_seen = 1000;               /* .data: an arbitrary start value */
__u64 verdicts[XDP_REDIRECT + 1];      /* .bss */

#define DROP_FMT "xdp_globals: drop udp port %d\n"

enum l4_kind { L4_OTHER, L4_UDP_BLOCKED, L4_ICMP_ECHO };

/* Classifies the L4 payload of an IPv4 packet whose header ends at l4. */
static __noinline int classify_l4(struct iphdr *ip, void *l4, void *data_end)
{
	if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > data_end)
			return L4_OTHER;
		if (udp->dest == bpf_htons(blocked_port))
			return L4_UDP_BLOCKED;
	} else if (ip->protocol == IPPROTO_ICMP) {
		struct icmphdr *icmp = l4;

		if ((void *)(icmp + 1) > data_end)
			return L4_OTHER;
		if (icmp->type == ICMP_ECHO && icmp->code == 0)
			return L4_ICMP_ECHO;
	}
	return L4_OTHER;
}

static __always_inline void swap_macs(struct ethhdr *eth)
{
	unsigned char tmp[ETH_ALEN];

	__builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
}

static __always_inline int reply_echo(struct ethhdr *eth, struct iphdr *ip, struct icmphdr *icmp)
{
	__be32 addr = ip->saddr;
	__u32 sum;

	swap_macs(eth);
	ip->saddr = ip->daddr;
	ip->daddr = addr;
	/* RFC 1624 incremental update: type 8 -> 0 lowers the first word by 0x0800. */
	icmp->type = ICMP_ECHOREPLY;
	sum = (__u16)~icmp->checksum + (__u16)~bpf_htons(ICMP_ECHO << 8) + bpf_htons(ICMP_ECHOREPLY << 8);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	icmp->checksum = ~sum;
	return XDP_TX;
}

SEC("xdp")
int xdp_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	void *l4;
	int verdict = XDP_PASS;

	__sync_fetch_and_add(&bytes_seen, data_end - data);
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		goto out;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->ihl < 5)
		goto out;
	l4 = (void *)ip + ip->ihl * 4;

	switch (classify_l4(ip, l4, data_end)) {
	case L4_UDP_BLOCKED:
		bpf_trace_printk(DROP_FMT, sizeof(DROP_FMT), blocked_port);
		verdict = XDP_DROP;
		break;
	case L4_ICMP_ECHO:
		if (l4 + sizeof(struct icmphdr) <= data_end)
			verdict = reply_echo(eth, ip, l4);
		break;
	}
out:
	if (verdict >= 0 && verdict <= XDP_REDIRECT)
		__sync_fetch_and_add(&verdicts[verdict], 1);
	return verdict;
}

char _license[] SEC("license") = "GPL";
