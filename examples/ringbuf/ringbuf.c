// SPDX-License-Identifier: GPL-2.0
/*
 * ringbuf: a BPF ring buffer producer.
 *
 * For every packet an XDP program reserves a record in a BPF_MAP_TYPE_RINGBUF
 * map, fills it with the frame length, EtherType and (for IPv4) the protocol
 * and addresses, and submits it; when the buffer is full the reservation fails
 * and the loss is counted in an array map instead. A second program emits the
 * same record for socket-filter hooks with bpf_ringbuf_output (copying from
 * the stack). Both pass every packet.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <stddef.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct packet_event {
	__u32 len;
	__u16 eth_proto; /* host byte order */
	__u8 ip_proto;   /* 0 unless IPv4 */
	__u8 pad;
	__u32 saddr;     /* network byte order, 0 unless IPv4 */
	__u32 daddr;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} lost SEC(".maps");

static __always_inline void count_lost(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&lost, &zero);

	if (n)
		__sync_fetch_and_add(n, 1);
}

SEC("xdp")
int xdp_events(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct packet_event *ev;

	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count_lost();
		return XDP_PASS;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->len = data_end - data;
	if ((void *)(eth + 1) <= data_end) {
		struct iphdr *ip = (void *)(eth + 1);

		ev->eth_proto = bpf_ntohs(eth->h_proto);
		if (eth->h_proto == bpf_htons(ETH_P_IP) && (void *)(ip + 1) <= data_end) {
			ev->ip_proto = ip->protocol;
			ev->saddr = ip->saddr;
			ev->daddr = ip->daddr;
		}
	}
	bpf_ringbuf_submit(ev, 0);
	return XDP_PASS;
}

SEC("socket")
int socket_events(struct __sk_buff *skb)
{
	struct packet_event ev = { .len = skb->len };
	__be16 proto;

	if (bpf_skb_load_bytes(skb, offsetof(struct ethhdr, h_proto), &proto, 2) == 0) {
		ev.eth_proto = bpf_ntohs(proto);
		if (proto == bpf_htons(ETH_P_IP)) {
			struct iphdr ip;

			if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) == 0) {
				ev.ip_proto = ip.protocol;
				ev.saddr = ip.saddr;
				ev.daddr = ip.daddr;
			}
		}
	}
	if (bpf_ringbuf_output(&events, &ev, sizeof(ev), 0))
		count_lost();
	return skb->len;
}

char _license[] SEC("license") = "GPL";
