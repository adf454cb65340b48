//! Program section names: libbpf's `SEC("...")` conventions mapped to program types.
//!
//! The table follows libbpf's `section_defs[]` (tools/lib/bpf/libbpf.c) for the program types
//! bpfkit knows how to describe. As in libbpf 1.x, a name either equals a definition exactly
//! (`socket`, `xdp`, `tc`) or starts with `prefix/` and the rest names the attach target
//! (`kprobe/ksys_write`, `tracepoint/skb/kfree_skb`). Program types are the kernel's numbers
//! (`enum bpf_prog_type` in include/uapi/linux/bpf.h); the runtime turns them into its own enum.

/// How a section name was matched: the program type and where it attaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionDef {
    /// `enum bpf_prog_type` number.
    pub prog_type: u32,
    /// The kernel's name for it, lowercase without `BPF_PROG_TYPE_` (`socket_filter`).
    pub prog_type_name: &'static str,
    /// The attach target after the prefix (`ksys_write`, `skb/kfree_skb`), if the convention has
    /// one and the name gives it.
    pub attach_to: Option<String>,
    /// True for return probes (`kretprobe/`, `uretprobe/`).
    pub is_return_probe: bool,
}

/// `BPF_PROG_TYPE_SOCKET_FILTER`
pub const SOCKET_FILTER: u32 = 1;
/// `BPF_PROG_TYPE_KPROBE` (also uprobes)
pub const KPROBE: u32 = 2;
/// `BPF_PROG_TYPE_SCHED_CLS`
pub const SCHED_CLS: u32 = 3;
/// `BPF_PROG_TYPE_SCHED_ACT`
pub const SCHED_ACT: u32 = 4;
/// `BPF_PROG_TYPE_TRACEPOINT`
pub const TRACEPOINT: u32 = 5;
/// `BPF_PROG_TYPE_XDP`
pub const XDP: u32 = 6;
/// `BPF_PROG_TYPE_PERF_EVENT`
pub const PERF_EVENT: u32 = 7;
/// `BPF_PROG_TYPE_CGROUP_SKB`
pub const CGROUP_SKB: u32 = 8;
/// `BPF_PROG_TYPE_RAW_TRACEPOINT`
pub const RAW_TRACEPOINT: u32 = 17;
/// `BPF_PROG_TYPE_FLOW_DISSECTOR`
pub const FLOW_DISSECTOR: u32 = 22;

/// (name, prog type, type name, kind): `Exact` matches the whole name, `Prefix` requires
/// `name/target`, `ExactOrPrefix` accepts both.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Match {
    Exact,
    Prefix,
    ExactOrPrefix,
}

const DEFS: &[(&str, u32, &str, Match)] = &[
    ("socket", SOCKET_FILTER, "socket_filter", Match::Exact),
    ("kprobe", KPROBE, "kprobe", Match::Prefix),
    ("kretprobe", KPROBE, "kprobe", Match::Prefix),
    ("uprobe", KPROBE, "kprobe", Match::ExactOrPrefix),
    ("uretprobe", KPROBE, "kprobe", Match::ExactOrPrefix),
    ("ksyscall", KPROBE, "kprobe", Match::Prefix),
    ("kretsyscall", KPROBE, "kprobe", Match::Prefix),
    ("tc", SCHED_CLS, "sched_cls", Match::Exact),
    ("classifier", SCHED_CLS, "sched_cls", Match::Exact),
    ("action", SCHED_ACT, "sched_act", Match::Exact),
    ("tracepoint", TRACEPOINT, "tracepoint", Match::Prefix),
    ("tp", TRACEPOINT, "tracepoint", Match::Prefix),
    (
        "raw_tracepoint",
        RAW_TRACEPOINT,
        "raw_tracepoint",
        Match::Prefix,
    ),
    ("raw_tp", RAW_TRACEPOINT, "raw_tracepoint", Match::Prefix),
    ("xdp", XDP, "xdp", Match::Exact),
    ("xdp.frags", XDP, "xdp", Match::Exact),
    ("perf_event", PERF_EVENT, "perf_event", Match::Exact),
    ("cgroup_skb/ingress", CGROUP_SKB, "cgroup_skb", Match::Exact),
    ("cgroup_skb/egress", CGROUP_SKB, "cgroup_skb", Match::Exact),
    (
        "flow_dissector",
        FLOW_DISSECTOR,
        "flow_dissector",
        Match::Exact,
    ),
];

/// Matches a program section name; `None` when no convention applies.
#[must_use]
pub fn classify(section: &str) -> Option<SectionDef> {
    for &(name, prog_type, prog_type_name, how) in DEFS {
        let attach_to = if section == name && how != Match::Prefix {
            None
        } else if let Some(rest) = section.strip_prefix(name).and_then(|r| r.strip_prefix('/')) {
            if how == Match::Exact || rest.is_empty() {
                continue;
            }
            Some(rest.to_string())
        } else {
            continue;
        };
        return Some(SectionDef {
            prog_type,
            prog_type_name,
            attach_to,
            is_return_probe: matches!(name, "kretprobe" | "uretprobe" | "kretsyscall"),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libbpf_conventions() {
        // Numbers from enum bpf_prog_type in include/uapi/linux/bpf.h.
        assert_eq!(classify("socket").map(|d| d.prog_type), Some(1));
        assert_eq!(
            classify("socket/0"),
            None,
            "libbpf 1.x matches `socket` exactly"
        );
        let k = classify("kprobe/ksys_write").unwrap_or_else(|| panic!("kprobe"));
        assert_eq!(
            (k.prog_type, k.attach_to.as_deref()),
            (2, Some("ksys_write"))
        );
        assert_eq!(classify("kprobe"), None, "kprobe needs a target");
        assert!(classify("kretprobe/x").is_some_and(|d| d.is_return_probe));
        assert_eq!(classify("uprobe").map(|d| d.prog_type), Some(2));
        assert_eq!(classify("tc").map(|d| d.prog_type), Some(3));
        assert_eq!(classify("classifier").map(|d| d.prog_type), Some(3));
        assert_eq!(classify("action").map(|d| d.prog_type), Some(4));
        let t = classify("tracepoint/skb/kfree_skb").unwrap_or_else(|| panic!("tp"));
        assert_eq!(
            (t.prog_type, t.attach_to.as_deref()),
            (5, Some("skb/kfree_skb"))
        );
        assert_eq!(classify("xdp").map(|d| d.prog_type), Some(6));
        assert_eq!(
            classify("raw_tracepoint/sched_switch").map(|d| d.prog_type),
            Some(17)
        );
        assert_eq!(classify("xdpfoo"), None);
        assert_eq!(classify(".text"), None);
    }
}
