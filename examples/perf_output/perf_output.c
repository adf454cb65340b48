// SPDX-License-Identifier: GPL-2.0
/*
 * perf_output: packet samples through a perf event array, and call-stack counts.
 *
 * The tc and XDP programs send one sample per packet with bpf_perf_event_output
 * to the current CPU's perf event: a small header (the frame length and which
 * program sent it) followed by the first 64 bytes of the frame, which the helper
 * copies itself (the length in the upper 32 bits of the flags). The perf event
 * array has no max_entries: libbpf sizes it to the possible CPUs. The kprobe
 * program counts calls per kernel call stack with bpf_get_stackid.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>

#define SAMPLE_BYTES 64

struct sample_header {
	__u32 len;
	__u32 source; /* 1: tc, 2: xdp */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 16 * sizeof(__u64));
	__uint(max_entries, 64);
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 64);
} stack_counts SEC(".maps");

static __always_inline __u64 sample_flags(__u64 len)
{
	__u64 n = len < SAMPLE_BYTES ? len : SAMPLE_BYTES;

	return (n << 32) | BPF_F_CURRENT_CPU;
}

SEC("tc")
int tc_sample(struct __sk_buff *skb)
{
	struct sample_header hdr = { .len = skb->len, .source = 1 };

	bpf_perf_event_output(skb, &events, sample_flags(skb->len), &hdr, sizeof(hdr));
	return TC_ACT_OK;
}

SEC("xdp")
int xdp_sample(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct sample_header hdr = { .len = data_end - data, .source = 2 };

	bpf_perf_event_output(ctx, &events, sample_flags(hdr.len), &hdr, sizeof(hdr));
	return XDP_PASS;
}

SEC("kprobe/ksys_write")
int count_stacks(struct pt_regs *ctx)
{
	long id = bpf_get_stackid(ctx, &stacks, 0);
	__u64 one = 1, *n;
	__u32 key;

	if (id < 0)
		return 0;
	key = id;
	n = bpf_map_lookup_elem(&stack_counts, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&stack_counts, &key, &one, BPF_NOEXIST);
	return 0;
}

char _license[] SEC("license") = "GPL";
