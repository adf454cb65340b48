//! Shared helpers of the end-to-end tests: where the example objects are (the committed ones,
//! and the rebuilt ones when `BPFKIT_REBUILT_EXAMPLES_DIR` is set), instantiating one, and an
//! independent reader of classic pcap files (the tests' expected values never go through
//! bpfkit's own capture reader).
#![allow(dead_code, reason = "each test crate uses part of the helpers")]

use bpfkit::instantiate::{instantiate, Instance, InstantiateOptions};
use bpfkit::loader::Object;
use bpfkit::Bpf;
use std::path::PathBuf;

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every folder of example objects to test: the committed `examples/`, then the rebuilt one.
pub fn example_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![repo().join("examples")];
    match std::env::var_os("BPFKIT_REBUILT_EXAMPLES_DIR") {
        Some(d) => dirs.push(PathBuf::from(d)),
        None => eprintln!("note: BPFKIT_REBUILT_EXAMPLES_DIR unset: committed objects only"),
    }
    dirs
}

/// `dir/<name>/<name>.o` parsed and instantiated into a fresh table.
pub fn load(dir: &std::path::Path, name: &str) -> (Bpf, Instance, Object) {
    let path = dir.join(name).join(format!("{name}.o"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let obj = Object::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let bpf = Bpf::new();
    let inst = instantiate(&bpf, &obj, &InstantiateOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (bpf, inst, obj)
}

/// The committed capture used by the packet tests.
pub fn mixed_pcap() -> PathBuf {
    repo().join("examples/traffic/mixed.pcap")
}

/// Frames of a classic pcap file, parsed here from the format's definition (24-byte file
/// header with magic a1b2c3d4 in either byte order, 16-byte record headers).
pub fn pcap_frames(path: &std::path::Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let le = match &b[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        m => panic!("not a pcap file: magic {m:02x?}"),
    };
    let u32_at = |o: usize| {
        let w = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        }
    };
    let mut frames = Vec::new();
    let mut off = 24;
    while off + 16 <= b.len() {
        let incl = u32_at(off + 8) as usize;
        frames.push(b[off + 16..off + 16 + incl].to_vec());
        off += 16 + incl;
    }
    frames
}

/// The RFC 1071 Internet checksum of `data` (0 when a header with its checksum is valid).
pub fn inet_csum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += u32::from(w);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The u64 at `off` of a map value.
pub fn u64_at(v: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(v[off..off + 8].try_into().expect("8 bytes"))
}
