//! The names of the kernel's helper functions by id, as `include/uapi/linux/bpf.h` numbers them
//! (`___BPF_FUNC_MAPPER`; the list is frozen at `cgrp_storage_delete` = 211). The table itself
//! is the verifier's (`bpfkit_verifier::helper_names`), which prints these in its log; this
//! module adds the reverse lookup and checks the table against the installed uapi header.

pub use bpfkit_verifier::helper_names::{helper_name, HELPER_NAMES};

/// The id of the helper named `name` (with or without the `bpf_` prefix).
#[must_use]
pub fn helper_id(name: &str) -> Option<i32> {
    let bare = name.strip_prefix("bpf_").unwrap_or(name);
    HELPER_NAMES
        .iter()
        .position(|n| n.strip_prefix("bpf_") == Some(bare))
        .and_then(|i| i32::try_from(i).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_well_known_helpers() {
        // Ids from include/uapi/linux/bpf.h.
        assert_eq!(helper_name(1), Some("bpf_map_lookup_elem"));
        assert_eq!(helper_name(12), Some("bpf_tail_call"));
        assert_eq!(helper_id("bpf_ringbuf_output"), Some(130));
        assert_eq!(helper_id("cgrp_storage_delete"), Some(211));
        assert_eq!(helper_name(212), None);
        assert_eq!(helper_name(-1), None);
    }

    #[test]
    fn table_matches_the_installed_uapi_header() {
        let Ok(header) = std::fs::read_to_string("/usr/include/linux/bpf.h") else {
            println!("skipped: /usr/include/linux/bpf.h is not installed");
            return;
        };
        // Linux 6.1 spells it `__BPF_FUNC_MAPPER(FN)`, newer headers `___BPF_FUNC_MAPPER(FN, ctx...)`.
        let Some(start) = header
            .find("#define ___BPF_FUNC_MAPPER")
            .or_else(|| header.find("#define __BPF_FUNC_MAPPER"))
        else {
            println!("skipped: the header has no helper mapper macro");
            return;
        };
        let names: Vec<String> = header[start..]
            .lines()
            .skip(1)
            .take_while(|l| !l.contains("/* */") && !l.trim().is_empty())
            .filter_map(|l| l.trim().strip_prefix("FN("))
            .filter_map(|l| l.split([',', ')']).next())
            .map(|n| format!("bpf_{n}"))
            .collect();
        assert!(names.len() > 200, "parsed only {} names", names.len());
        assert_eq!(HELPER_NAMES[..names.len()].to_vec(), names);
    }
}
