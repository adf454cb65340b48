// SPDX-License-Identifier: GPL-2.0
/*
 * core_reloc: a kprobe that reads the current task's tgid through CO-RE.
 *
 * struct task_struct is declared locally with only the field used and
 * preserve_access_index, so clang records a CO-RE relocation (.BTF.ext) for
 * the field offset instead of a fixed number; libbpf resolves it against the
 * running kernel's BTF (/sys/kernel/btf/vmlinux) at load time.
 *
 * bpfkit has no kernel BTF to resolve against: its loader refuses this object
 * with a CoreRelocation error naming the section, instruction, type and access
 * string. The example exists to show that error; the kernel loads it (bpftool
 * prog loadall).
 */
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

struct task_struct {
	int tgid;
} __attribute__((preserve_access_index));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, int);
	__type(value, __u64);
	__uint(max_entries, 1024);
} calls_per_tgid SEC(".maps");

SEC("kprobe/ksys_write")
int count_writes(struct pt_regs *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	int tgid = BPF_CORE_READ(task, tgid);
	__u64 one = 1, *n;

	n = bpf_map_lookup_elem(&calls_per_tgid, &tgid);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&calls_per_tgid, &tgid, &one, BPF_NOEXIST);
	return 0;
}

char _license[] SEC("license") = "GPL";
