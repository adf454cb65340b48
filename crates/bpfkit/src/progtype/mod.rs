//! Program types: which context a program sees and how it may access it.
//!
//! The kernel names each type `BPF_PROG_TYPE_*` and gives it a context structure from
//! `include/uapi/linux/bpf.h` (`struct __sk_buff`, `struct xdp_md`, `struct pt_regs`, ...), a
//! rule for which context bytes may be read or written (`*_is_valid_access` in
//! net/core/filter.c and kernel/trace/bpf_trace.c), and a helper set. This module holds the
//! first two as data; [`access::ctx_access`] answers the verifier's question for one access.
//! The type itself is the verifier's [`ProgType`], so both layers name types the same way.

pub mod access;
pub mod layout;

pub use bpfkit_verifier::env::ProgType;

/// Size in bytes of the context structure that a program of type `t` gets in r1.
#[must_use]
pub const fn ctx_size(t: ProgType) -> u32 {
    match t {
        ProgType::SocketFilter | ProgType::SchedCls | ProgType::SchedAct | ProgType::CgroupSkb => {
            layout::SK_BUFF_SIZE
        }
        ProgType::Xdp => layout::XDP_MD_SIZE,
        ProgType::Kprobe => layout::PT_REGS_SIZE,
        ProgType::Tracepoint => layout::PERF_MAX_TRACE_SIZE,
        ProgType::RawTracepoint => layout::RAW_TP_ARGS_SIZE,
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
