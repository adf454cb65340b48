// SPDX-License-Identifier: GPL-2.0
/* A cgroup firewall, as cgroup_skb programs see traffic (from the network header on):
 *
 * - ingress_filter drops UDP to the discard port (9) and counts packets and bytes per IP
 *   protocol (0 for what is not IPv4), reading the packet directly through data/data_end and
 *   the socket's family through skb->family;
 * - egress_ecn tags every packet with a mark and, for ECN-capable IPv4 traffic (ECT bits set
 *   in the TOS byte, read with bpf_skb_load_bytes), returns 3: pass, with a congestion
 *   notification, which only a BPF_CGROUP_INET_EGRESS program may return.
 *
 * Both count their verdicts per value. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define AF_INET 2
#define DISCARD_PORT 9

struct counter {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct counter);
} by_proto SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} verdicts SEC(".maps");

/* Returns the verdict itself, not a copy read back from the key on the stack: the verifier
 * does not track a 4-byte spill at an offset that is not 8-aligned, and would see an unknown
 * u32 at exit ("should have been in [0, 1]"). */
static __always_inline int count_verdict(__u32 verdict)
{
	__u32 key = verdict;
	__u64 *n = bpf_map_lookup_elem(&verdicts, &key);

	if (n)
		__sync_fetch_and_add(n, 1);
	return verdict;
}

SEC("cgroup_skb/ingress")
int ingress_filter(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data;
	struct udphdr *udp = (void *)(ip + 1);
	struct counter *c;
	__u32 proto = 0;
	__u32 verdict = 1;

	if (skb->family == AF_INET && (void *)(ip + 1) <= data_end) {
		proto = ip->protocol;
		if (proto == IPPROTO_UDP && ip->ihl == 5 && (void *)(udp + 1) <= data_end &&
		    udp->dest == bpf_htons(DISCARD_PORT))
			verdict = 0;
	}
	c = bpf_map_lookup_elem(&by_proto, &proto);
	if (c) {
		__sync_fetch_and_add(&c->packets, 1);
		__sync_fetch_and_add(&c->bytes, skb->len);
	}
	return count_verdict(verdict);
}

SEC("cgroup_skb/egress")
int egress_ecn(struct __sk_buff *skb)
{
	__u8 tos = 0;
	__u32 verdict = 1;

	skb->mark = 0x42;
	if (skb->protocol == bpf_htons(ETH_P_IP) && bpf_skb_load_bytes(skb, 1, &tos, 1) == 0 &&
	    (tos & 3) != 0)
		verdict = 3;
	return count_verdict(verdict);
}

char _license[] SEC("license") = "GPL";
