// SPDX-License-Identifier: GPL-2.0
/*
 * legacy_maps: maps declared the pre-BTF way, as `struct bpf_map_def` values in
 * the "maps" ELF section (what samples/bpf used before BTF-defined maps).
 *
 * libbpf 1.0 dropped support for this section, so `bpftool prog loadall`
 * refuses the object; bpfkit's loader still reads it, and its kernel
 * differential test loads it through the bpf() system call directly.
 * The socket filter counts frames per EtherType in a hash map and frames per
 * length bucket (len / 64, capped at 15) in an array map.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>

/* The layout libbpf < 1.0 and samples/bpf used: five consecutive __u32s. */
struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

struct bpf_map_def SEC("maps") frames_by_proto = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(__u16),
	.value_size = sizeof(__u64),
	.max_entries = 64,
};

struct bpf_map_def SEC("maps") frames_by_len = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 16,
};

SEC("socket")
int count_frames(struct __sk_buff *skb)
{
	__u32 bucket = skb->len / 64;
	__u16 proto = 0;
	__u64 one = 1, *n;

	if (bucket > 15)
		bucket = 15;
	n = bpf_map_lookup_elem(&frames_by_len, &bucket);
	if (n)
		__sync_fetch_and_add(n, 1);

	bpf_skb_load_bytes(skb, offsetof(struct ethhdr, h_proto), &proto, sizeof(proto));
	n = bpf_map_lookup_elem(&frames_by_proto, &proto);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&frames_by_proto, &proto, &one, BPF_NOEXIST);
	return 0;
}

char _license[] SEC("license") = "GPL";
