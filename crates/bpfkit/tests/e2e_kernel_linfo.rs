//! The verifier log with C source lines, against Linux: a small program with a missing NULL
//! check is compiled with clang-19 and loaded by bpftool (libbpf hands the kernel its line info)
//! and by [`bpfkit::instantiate`]; where the `; <source> @ <file>:<line>` lines fall — before
//! which instruction — and the error must be the same in both logs. Skips, saying why, without
//! root `bpf()`, clang-19 or bpftool.
#![allow(clippy::unwrap_used, reason = "in tests a panic is the failure report")]

use bpfkit::instantiate::{instantiate, InstantiateError, InstantiateOptions};
use bpfkit::loader::Object;
use bpfkit::Bpf;
use std::process::Command;

const SOURCE: &str = r#"#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 256);
} counts SEC(".maps");

SEC("socket")
int missing_null_check(struct __sk_buff *skb)
{
	__u32 key = skb->len & 0xff;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);

	if (skb->protocol == 0)
		return 1;
	if (skb->mark == 0)
		return 2;
	*v += skb->len;
	return 0;
}

char _license[] SEC("license") = "GPL";
"#;

/// The shape of a log: source lines verbatim, instruction lines as their index, the rest (the
/// error) verbatim; register states after an instruction and map addresses are left out.
fn skeleton(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| !l.is_empty() && !l.starts_with("processed "))
        .filter_map(|l| {
            if l.starts_with("; ") {
                return Some(l.to_string());
            }
            match l.split_once(": ") {
                // `N: (op) ...` is an instruction; `N: R1=...` a state line.
                Some((num, rest)) if num.bytes().all(|b| b.is_ascii_digit()) => {
                    rest.starts_with('(').then(|| num.to_string())
                }
                // `from 11 to 13: R0=...`: the jump, without the state.
                Some((jump, _)) if jump.starts_with("from ") => Some(jump.to_string()),
                _ => Some(l.to_string()),
            }
        })
        .collect()
}

fn tool_ok(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn source_lines_fall_where_the_kernel_puts_them() {
    if let Err(why) = bpfkit_kernel::available() {
        eprintln!("skipping: {why}");
        return;
    }
    if !tool_ok("clang-19", "--version") || !tool_ok("bpftool", "version") {
        eprintln!("skipping: clang-19 or bpftool is not installed");
        return;
    }
    let dir = std::env::temp_dir().join(format!("bpfkit-linfo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bad.c"), SOURCE).unwrap();
    let include = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let cc = Command::new("clang-19")
        .current_dir(&dir)
        .args([
            "-O2", "-g", "-target", "bpf", "-mcpu=v3", &include, "-c", "bad.c",
        ])
        .args(["-o", "bad.o"])
        .output()
        .unwrap();
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );

    // The kernel, through libbpf: the log is printed between BEGIN and END markers.
    let pin = format!("/sys/fs/bpf/bpfkit_linfo_{}", std::process::id());
    let out = Command::new("bpftool")
        .args(["prog", "load", dir.join("bad.o").to_str().unwrap(), &pin])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&pin);
    assert!(
        !out.status.success(),
        "the kernel accepted a missing NULL check"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let Some((_, rest)) = stderr.split_once("-- BEGIN PROG LOAD LOG --\n") else {
        eprintln!("skipping: bpftool printed no verifier log:\n{stderr}");
        return;
    };
    let kernel_log = rest.split("-- END PROG LOAD LOG --").next().unwrap();

    let obj = Object::parse(&std::fs::read(dir.join("bad.o")).unwrap()).unwrap();
    let err = instantiate(&Bpf::new(), &obj, &InstantiateOptions::default()).unwrap_err();
    let InstantiateError::ProgLoad { log, .. } = err else {
        panic!("expected a load error, got {err}")
    };
    std::fs::remove_dir_all(&dir).ok();
    let (ours, theirs) = (skeleton(&log), skeleton(kernel_log));
    assert!(ours.iter().any(|l| l.starts_with("; ")), "{log}");
    assert!(
        ours.iter().any(|l| l.contains("invalid mem access")),
        "{log}"
    );
    assert_eq!(ours, theirs, "bpfkit:\n{log}\nLinux:\n{kernel_log}");
}
