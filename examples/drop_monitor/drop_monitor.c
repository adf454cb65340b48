// SPDX-License-Identifier: GPL-2.0
/*
 * drop_monitor: a tracepoint program counting packet drops per code location,
 * the eBPF form of the kernel's drop monitor (net/core/drop_monitor.c).
 *
 * Attached to skb:kfree_skb, it reads the `location` field of the event and
 * increments a counter for it in a hash map; a second map counts drops per
 * drop reason. The context layout is the event's record as printed by
 * /sys/kernel/tracing/events/skb/kfree_skb/format (Linux 6.12+: rx_sk added).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct kfree_skb_event {
	__u64 common; /* common_type, common_flags, common_preempt_count, common_pid */
	__u64 skbaddr;
	__u64 location;
	__u64 rx_sk;
	__u16 protocol;
	__u16 pad;
	__u32 reason;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);
	__type(value, __u64);
	__uint(max_entries, 4096);
} drops_by_location SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 256);
} drops_by_reason SEC(".maps");

SEC("tracepoint/skb/kfree_skb")
int count_drop(struct kfree_skb_event *ev)
{
	__u64 location = ev->location;
	__u32 reason = ev->reason;
	__u64 one = 1;
	__u64 *count;

	count = bpf_map_lookup_elem(&drops_by_location, &location);
	if (!count) {
		if (bpf_map_update_elem(&drops_by_location, &location, &one, BPF_NOEXIST) == 0)
			goto by_reason;
		/* another CPU inserted the key first: count on its entry */
		count = bpf_map_lookup_elem(&drops_by_location, &location);
	}
	if (count)
		__sync_fetch_and_add(count, 1);

by_reason:
	count = bpf_map_lookup_elem(&drops_by_reason, &reason);
	if (count)
		__sync_fetch_and_add(count, 1);
	return 0;
}

char _license[] SEC("license") = "GPL";
