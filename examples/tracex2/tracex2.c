// SPDX-License-Identifier: GPL-2.0
/*
 * tracex2: kprobe programs after the kernel's samples/bpf/tracex2.
 *
 * count_drops (kprobe on kfree_skb_reason) counts calls per caller address:
 * the return address is read from the top of the stack at function entry.
 * write_hist (kprobe on ksys_write) builds a log2 histogram of write sizes
 * per process: the key is {tgid, log2(count)}, the value a counter.
 * On x86-64 the third argument (count) is in %rdx: PT_REGS_PARM3.
 */
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <linux/version.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, long);
	__type(value, long);
	__uint(max_entries, 1024);
} drop_callers SEC(".maps");

struct hist_key {
	__u32 tgid;
	__u32 slot; /* floor(log2(size)), 0 for size 0 and 1 */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(key_size, sizeof(struct hist_key));
	__uint(value_size, sizeof(__u64));
	__uint(max_entries, 1024);
} write_sizes SEC(".maps");

SEC("kprobe/kfree_skb_reason")
int count_drops(struct pt_regs *ctx)
{
	long caller = 0;
	long one = 1;
	long *count;

	bpf_probe_read_kernel(&caller, sizeof(caller), (void *)PT_REGS_SP(ctx));
	count = bpf_map_lookup_elem(&drop_callers, &caller);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&drop_callers, &caller, &one, BPF_NOEXIST);
	return 0;
}

/* floor(log2(v)) for v > 0 by binary search over the bit width; 0 for 0. */
static __always_inline __u32 log2_u32(__u32 v)
{
	__u32 r, shift;

	r = (v > 0xffff) << 4;
	v >>= r;
	shift = (v > 0xff) << 3;
	v >>= shift;
	r |= shift;
	shift = (v > 0xf) << 2;
	v >>= shift;
	r |= shift;
	shift = (v > 0x3) << 1;
	v >>= shift;
	r |= shift;
	return r | (v >> 1);
}

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 hi = v >> 32;

	return hi ? log2_u32(hi) + 32 : log2_u32(v);
}

SEC("kprobe/ksys_write")
int write_hist(struct pt_regs *ctx)
{
	struct hist_key key = {
		.tgid = bpf_get_current_pid_tgid() >> 32,
		.slot = log2_u64(PT_REGS_PARM3(ctx)),
	};
	__u64 one = 1;
	__u64 *count;

	count = bpf_map_lookup_elem(&write_sizes, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&write_sizes, &key, &one, BPF_NOEXIST);
	return 0;
}

char _license[] SEC("license") = "GPL";
__u32 _version SEC("version") = LINUX_VERSION_CODE;
