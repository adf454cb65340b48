// SPDX-License-Identifier: GPL-2.0
/*
 * cpuv4: an XDP program built with -mcpu=v4, so that the instructions added in
 * ISA v4 appear in clang's output: sign-extending loads (memsx), sign-extending
 * moves (movsx), signed division and modulo (sdiv/smod), unconditional byte
 * swaps (bswap) and the 32-bit-offset jump (gotol).
 *
 * For each frame with at least 16 bytes after the Ethernet header it treats
 * those bytes as signed numbers and records, in slots of an array map:
 *   [0] frames seen            [1] sum of the 16 bytes as __s8
 *   [2] sum of the 8 words as big-endian __s16
 *   [3] slot 1 / 16 (signed division, truncating toward zero)
 *   [4] slot 1 % 7 (signed modulo: takes the dividend's sign)
 *   [5] the first 4 bytes read as a big-endian __u32 (byte swap)
 * Slots 1..5 hold the values of the last frame; slot 0 counts.
 * LLVM emits gotol only for jumps beyond +-32767 slots; one is written in
 * inline assembly (a jump to the next instruction) to have it in the object.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __s64);
	__uint(max_entries, 6);
} stats SEC(".maps");

static __always_inline void put(__u32 slot, __s64 v)
{
	__s64 *p = bpf_map_lookup_elem(&stats, &slot);

	if (p)
		*p = v;
}

SEC("xdp")
int signed_stats(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__s8 *bytes = data + ETH_HLEN;
	__u16 *words = data + ETH_HLEN;
	__s64 byte_sum = 0, word_sum = 0;
	__u32 zero = 0;
	__s64 *frames;

	if (data + ETH_HLEN + 16 > data_end)
		return XDP_PASS;

#pragma clang loop unroll(full)
	for (int i = 0; i < 16; i++)
		byte_sum += bytes[i]; /* ldsx: sign-extending byte load */
#pragma clang loop unroll(full)
	for (int i = 0; i < 8; i++)
		word_sum += (__s16)__builtin_bswap16(words[i]); /* bswap16 + movsx */

	asm volatile("gotol +0" ::: "memory");

	frames = bpf_map_lookup_elem(&stats, &zero);
	if (frames)
		__sync_fetch_and_add(frames, 1);
	put(1, byte_sum);
	put(2, word_sum);
	put(3, byte_sum / 16); /* sdiv */
	put(4, byte_sum % 7);  /* smod */
	put(5, __builtin_bswap32(*(__u32 *)bytes));
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
