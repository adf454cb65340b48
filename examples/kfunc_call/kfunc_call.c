// SPDX-License-Identifier: GPL-2.0
/*
 * kfunc_call: a tracepoint program that calls kernel functions (kfuncs).
 *
 * bpf_rcu_read_lock() and bpf_rcu_read_unlock() are kfuncs every program type
 * may call. They are declared as __ksym externs: clang leaves undefined
 * symbols and R_BPF_64_32 relocations on `call` instructions with
 * src = BPF_PSEUDO_KFUNC_CALL; libbpf puts the functions' BTF ids from the
 * running kernel's BTF there at load time.
 *
 * bpfkit has no kernel BTF: its loader refuses this object with an Extern
 * error naming the section, instruction and symbol. The example exists to show
 * that error; the kernel loads it (bpftool prog loadall).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern void bpf_rcu_read_lock(void) __ksym;
extern void bpf_rcu_read_unlock(void) __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} writes SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_write")
int count_writes(void *ctx)
{
	__u32 zero = 0;
	__u64 *n;

	bpf_rcu_read_lock();
	n = bpf_map_lookup_elem(&writes, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
	bpf_rcu_read_unlock();
	return 0;
}

char _license[] SEC("license") = "GPL";
