//! `bpfkit run OBJ --pcap`, `bpfkit prog` and `bpfkit map` on the committed examples: results
//! checked against values the test derives from the capture itself, and bad inputs giving clean
//! errors (exit status 2, a message, never a panic).
#![allow(clippy::unwrap_used, reason = "in tests a panic is the failure report")]

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bpfkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bpfkit"))
        .current_dir(repo())
        .args(args)
        .output()
        .expect("the bpfkit binary runs")
}

/// Frames of a classic little-endian pcap file, parsed here.
fn frames(path: &str) -> Vec<Vec<u8>> {
    let b = std::fs::read(repo().join(path)).unwrap();
    assert_eq!(&b[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= b.len() {
        let n = u32::from_le_bytes(b[off + 8..off + 12].try_into().unwrap()) as usize;
        out.push(b[off + 16..off + 16 + n].to_vec());
        off += 16 + n;
    }
    out
}

fn json_bytes(b: &[u8]) -> String {
    let v: Vec<String> = b.iter().map(|x| format!("\"0x{x:02x}\"")).collect();
    format!("[{}]", v.join(","))
}

const PCAP: &str = "examples/traffic/mixed.pcap";

#[test]
fn run_sockex1_json_has_bytes_per_protocol_in_bpftool_shape() {
    let out = bpfkit(&[
        "run",
        "examples/sockex1/sockex1.o",
        "--pcap",
        PCAP,
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = String::from_utf8(out.stdout).unwrap();
    let fs = frames(PCAP);
    let tcp: u64 = fs
        .iter()
        .filter(|f| f.len() > 23 && f[23] == 6)
        .map(|f| f.len() as u64)
        .sum();
    // bpftool's shape: bytes in memory order, then the BTF-formatted form (__u32 key, __u64
    // value in sockex1.c).
    let entry = format!(
        "{{\"key\":{},\"value\":{},\"formatted\":{{\"key\":6,\"value\":{tcp}}}}}",
        json_bytes(&6u32.to_le_bytes()),
        json_bytes(&tcp.to_le_bytes())
    );
    assert!(doc.contains(&entry), "{entry} not in {doc}");
    assert!(doc.contains(&format!("\"packets\":{}", fs.len())));
    assert!(doc.starts_with("{\"summary\":") && doc.trim_end().ends_with('}'));
}

#[test]
fn run_xdp_writes_what_passes_and_reports_per_packet_rewrites() {
    let dir = std::env::temp_dir().join(format!("bpfkit-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out_pcap = dir.join("out.pcap");
    let out = bpfkit(&[
        "run",
        "examples/xdp_globals/xdp_globals.o",
        "--pcap",
        PCAP,
        "-w",
        out_pcap.to_str().unwrap(),
        "--json",
        "--per-packet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fs = frames(PCAP);
    // Dropped: IPv4 UDP to port 9 (xdp_globals.c's blocked_port).
    let dropped = fs
        .iter()
        .filter(|f| f[12..14] == [8, 0] && f[23] == 17 && f[36..38] == [0, 9])
        .count();
    assert!(dropped > 0);
    let written = frames(out_pcap.to_str().unwrap());
    assert_eq!(written.len(), fs.len() - dropped);
    let doc = String::from_utf8(out.stdout).unwrap();
    // An echo request comes back as a reply: its per-packet data is the rewritten frame.
    let (i, ping) = fs
        .iter()
        .enumerate()
        .find(|(_, f)| f[12..14] == [8, 0] && f[23] == 1 && f[34] == 8)
        .unwrap();
    let mut reply = ping.clone();
    reply[..6].copy_from_slice(&ping[6..12]);
    reply[6..12].copy_from_slice(&ping[..6]);
    reply[26..30].copy_from_slice(&ping[30..34]);
    reply[30..34].copy_from_slice(&ping[26..30]);
    reply[34] = 0;
    // RFC 1624: the checksum rises by 0x0800 when the type goes from 8 to 0.
    let c = u32::from(u16::from_be_bytes([ping[36], ping[37]])) + 0x0800;
    let c = ((c & 0xffff) + (c >> 16)) as u16;
    reply[36..38].copy_from_slice(&c.to_be_bytes());
    let hex: String = reply.iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        doc.contains(&format!("{{\"index\":{i},\"r0\":3,\"data\":\"{hex}\"}}")),
        "{doc}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn hist_prints_a_map_as_the_kernel_samples_do() {
    // sockex1's proto_bytes read as a log2 histogram: slot 6 (TCP) is the 64 -> 127 row.
    let out = bpfkit(&[
        "run",
        "examples/sockex1/sockex1.o",
        "--pcap",
        PCAP,
        "--hist",
        "proto_bytes",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let fs = frames(PCAP);
    let tcp: u64 = fs
        .iter()
        .filter(|f| f.len() > 23 && f[23] == 6)
        .map(|f| f.len() as u64)
        .sum();
    assert!(
        text.contains(&format!("{:>14}       : count     distribution", "value")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{:>8} -> {:<8} : {:<8} |", 64, 127, tcp)),
        "{text}"
    );
}

#[test]
fn sockex3_json_formats_struct_keys_from_btf() {
    let out = bpfkit(&[
        "run",
        "examples/sockex3/sockex3.o",
        "--pcap",
        PCAP,
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = String::from_utf8(out.stdout).unwrap();
    // The GRE frame (IPv4 protocol 47) carries TCP 192.168.1.7:1234 -> 10.0.0.2:80; its flow
    // key is struct flow_key { src, dst, ports, ip_proto } in host order, one packet of the
    // frame's length.
    let fs = frames(PCAP);
    let gre = fs
        .iter()
        .find(|f| f[12..14] == [8, 0] && f[23] == 47)
        .unwrap();
    let want = format!(
        "\"formatted\":{{\"key\":{{\"src\":{},\"dst\":{},\"ports\":{},\"ip_proto\":6}},\"value\":{{\"packets\":1,\"bytes\":{}}}}}",
        u32::from_be_bytes([192, 168, 1, 7]),
        u32::from_be_bytes([10, 0, 0, 2]),
        (1234u32 << 16) | 80,
        gre.len()
    );
    assert!(doc.contains(&want), "{want} not in {doc}");
}

#[test]
fn prog_dump_interleaves_the_c_source() {
    let out = bpfkit(&["prog", "dump", "examples/sockex1/sockex1.o"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    // The source line as it is in the C file, trimmed, with its line number.
    let src = std::fs::read_to_string(repo().join("examples/sockex1/sockex1.c")).unwrap();
    let (n, line) = src
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("bpf_map_lookup_elem(&proto_bytes"))
        .unwrap();
    assert!(
        text.contains(&format!("; {} @ sockex1.c:{}", line.trim(), n + 1)),
        "{text}"
    );
    assert!(text.contains("call bpf_map_lookup_elem#1"));
    let list = bpfkit(&["prog", "list", "examples/tracex2/tracex2.o"]);
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(list.contains("kprobe name write_hist section kprobe/ksys_write"));
}

#[test]
fn map_dump_shows_global_data_initial_values() {
    let out = bpfkit(&[
        "map",
        "dump",
        "examples/xdp_globals/xdp_globals.o",
        "--map",
        ".data",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    // xdp_globals.c: __u64 bytes_seen = 1000, formatted from the .data section's BTF.
    assert!(text.contains("value: {\"bytes_seen\":1000}"), "{text}");
}

#[test]
fn bad_inputs_are_clean_errors() {
    let dir = std::env::temp_dir().join(format!("bpfkit-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let elf = std::fs::read(repo().join("examples/sockex1/sockex1.o")).unwrap();
    let truncated = dir.join("truncated.o");
    std::fs::write(&truncated, &elf[..elf.len() / 3]).unwrap();
    let junk = dir.join("junk.pcap");
    std::fs::write(&junk, b"definitely not a capture file").unwrap();
    let pcap = std::fs::read(repo().join(PCAP)).unwrap();
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &pcap[..pcap.len() - 7]).unwrap();
    let (t, j, c) = (
        truncated.to_str().unwrap(),
        junk.to_str().unwrap(),
        cut.to_str().unwrap(),
    );
    let cases: Vec<Vec<&str>> = vec![
        vec!["run", "examples/sockex1/sockex1.o"],
        vec![
            "run",
            "examples/sockex1/sockex1.o",
            "--pcap",
            "/nonexistent.pcap",
        ],
        vec!["run", "examples/sockex1/sockex1.o", "--pcap", j],
        vec!["run", "examples/sockex1/sockex1.o", "--pcap", c],
        vec![
            "run",
            "examples/sockex1/sockex1.o",
            "--pcap",
            PCAP,
            "--prog",
            "nope",
        ],
        vec![
            "run",
            "examples/drop_monitor/drop_monitor.o",
            "--pcap",
            PCAP,
        ],
        vec![
            "run",
            "examples/tracex2/tracex2.o",
            "--pcap",
            PCAP,
            "--prog",
            "write_hist",
        ],
        vec!["run", t, "--pcap", PCAP],
        vec!["run", "examples/core_reloc/core_reloc.o", "--pcap", PCAP],
        vec!["prog", "dump", t],
        vec![
            "prog",
            "dump",
            "examples/sockex1/sockex1.o",
            "--prog",
            "nope",
        ],
        vec!["map", "dump", "examples/sockex1/sockex1.o", "--map", "nope"],
        vec!["map", "dump", j],
        vec![
            "run",
            "examples/sockex1/sockex1.o",
            "--pcap",
            PCAP,
            "--checked",
        ],
        vec![
            "run",
            "examples/flow_dissector/flow_dissector.bin",
            "--pcap",
            PCAP,
        ],
        vec![
            "run",
            "examples/sockex1/sockex1.o",
            "--pcap",
            PCAP,
            "--hist",
            "nope",
        ],
    ];
    for args in cases {
        let out = bpfkit(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("bpfkit: error:"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
