//! Program types: which context a program sees and how it may access it.
//!
//! The kernel names each type `BPF_PROG_TYPE_*` and gives it a context structure from
//! `include/uapi/linux/bpf.h` (`struct __sk_buff`, `struct xdp_md`, `struct pt_regs`, ...), a
//! rule for which context bytes may be read or written (`*_is_valid_access` in
//! net/core/filter.c and kernel/trace/bpf_trace.c), and a helper set. This module holds the
//! first two as data; [`access::ctx_access`] answers the verifier's question for one access.

pub mod access;
pub mod layout;

use std::fmt;

/// A program type, numbered as `enum bpf_prog_type`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ProgType {
    /// Socket filter: `struct __sk_buff`, read-only but for `cb[]`.
    #[doc(alias = "BPF_PROG_TYPE_SOCKET_FILTER")]
    SocketFilter,
    /// kprobe: `struct pt_regs` (x86-64), read-only.
    #[doc(alias = "BPF_PROG_TYPE_KPROBE")]
    Kprobe,
    /// tc classifier: `struct __sk_buff` with direct packet access.
    #[doc(alias = "BPF_PROG_TYPE_SCHED_CLS")]
    SchedCls,
    /// tc action: as `SchedCls`.
    #[doc(alias = "BPF_PROG_TYPE_SCHED_ACT")]
    SchedAct,
    /// tracepoint: the event's raw record, read-only, past its first 8 bytes.
    #[doc(alias = "BPF_PROG_TYPE_TRACEPOINT")]
    Tracepoint,
    /// XDP: `struct xdp_md` with direct packet access.
    #[doc(alias = "BPF_PROG_TYPE_XDP")]
    Xdp,
    /// raw tracepoint: up to 12 u64 arguments, read-only.
    #[doc(alias = "BPF_PROG_TYPE_RAW_TRACEPOINT")]
    RawTracepoint,
}

impl ProgType {
    /// Every supported type.
    pub const ALL: [ProgType; 7] = [
        ProgType::SocketFilter,
        ProgType::Kprobe,
        ProgType::SchedCls,
        ProgType::SchedAct,
        ProgType::Tracepoint,
        ProgType::Xdp,
        ProgType::RawTracepoint,
    ];

    /// The kernel's number for the type (`enum bpf_prog_type`).
    #[must_use]
    pub const fn kernel_id(self) -> u32 {
        match self {
            ProgType::SocketFilter => 1,
            ProgType::Kprobe => 2,
            ProgType::SchedCls => 3,
            ProgType::SchedAct => 4,
            ProgType::Tracepoint => 5,
            ProgType::Xdp => 6,
            ProgType::RawTracepoint => 17,
        }
    }

    /// The kernel's name without the `BPF_PROG_TYPE_` prefix, lower case (`socket_filter`),
    /// as the CLI takes it.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            ProgType::SocketFilter => "socket_filter",
            ProgType::Kprobe => "kprobe",
            ProgType::SchedCls => "sched_cls",
            ProgType::SchedAct => "sched_act",
            ProgType::Tracepoint => "tracepoint",
            ProgType::Xdp => "xdp",
            ProgType::RawTracepoint => "raw_tracepoint",
        }
    }

    /// The type named `name` (see [`ProgType::name`]), if supported.
    #[must_use]
    pub fn from_name(name: &str) -> Option<ProgType> {
        ProgType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The type with kernel number `id`, if supported.
    #[must_use]
    pub fn from_kernel_id(id: u32) -> Option<ProgType> {
        ProgType::ALL.into_iter().find(|t| t.kernel_id() == id)
    }

    /// Size in bytes of the context structure the program's r1 points to.
    #[must_use]
    pub const fn ctx_size(self) -> u32 {
        match self {
            ProgType::SocketFilter | ProgType::SchedCls | ProgType::SchedAct => {
                layout::SK_BUFF_SIZE
            }
            ProgType::Xdp => layout::XDP_MD_SIZE,
            ProgType::Kprobe => layout::PT_REGS_SIZE,
            ProgType::Tracepoint => layout::PERF_MAX_TRACE_SIZE,
            ProgType::RawTracepoint => layout::RAW_TP_ARGS_SIZE,
        }
    }
}

impl fmt::Display for ProgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_round_trip() {
        for t in ProgType::ALL {
            assert_eq!(ProgType::from_name(t.name()), Some(t));
            assert_eq!(ProgType::from_kernel_id(t.kernel_id()), Some(t));
        }
        assert_eq!(ProgType::from_name("lwt_in"), None);
    }

    #[test]
    fn kernel_ids_match_the_uapi_enum() {
        // enum bpf_prog_type in include/uapi/linux/bpf.h.
        let Ok(header) = std::fs::read_to_string("/usr/include/linux/bpf.h") else {
            println!("skipped: /usr/include/linux/bpf.h is not installed");
            return;
        };
        let start = header
            .find("enum bpf_prog_type {")
            .expect("header has enum bpf_prog_type");
        let body = &header[start..];
        let body = &body[..body.find("};").expect("enum ends")];
        let names: Vec<&str> = body
            .lines()
            .filter_map(|l| l.trim().strip_prefix("BPF_PROG_TYPE_"))
            .map(|l| {
                l.trim_end_matches(',')
                    .split([' ', ','])
                    .next()
                    .unwrap_or("")
            })
            .collect();
        for t in ProgType::ALL {
            let idx = usize::try_from(t.kernel_id()).expect("small id");
            assert_eq!(names[idx].to_lowercase(), t.name(), "id {}", t.kernel_id());
        }
    }
}
