//! End-to-end against the running kernel: the same example objects loaded into Linux (maps
//! created and initialised as libbpf does, map references resolved, programs loaded with the
//! object's license) and into bpfkit ([`bpfkit::instantiate`]); every frame of the committed
//! capture is test-run in both (`BPF_PROG_TEST_RUN`), and return values, output frames and the
//! final contents of every map must agree. Skips, saying why, where `bpf()` is unavailable.
#![allow(clippy::unwrap_used, reason = "in tests a panic is the failure report")]

mod e2e_support;

use bpfkit::prog::run::TestRunAttr;
use bpfkit_kernel as kernel;
use e2e_support::{example_dirs, load, mixed_pcap, pcap_frames};

fn compare(name: &str, prog_name: &str) {
    if let Err(why) = kernel::available() {
        eprintln!("skipping the kernel comparison of {name}: {why}");
        return;
    }
    let frames = pcap_frames(&mixed_pcap());
    for dir in example_dirs() {
        let (bpf, inst, obj) = load(&dir, name);
        // The kernel side.
        let mut kmaps = Vec::new();
        for def in &obj.maps {
            assert!(def.inner.is_none(), "{name}: map-in-map not compared here");
            let m = kernel::map_create(
                def.map_type,
                def.key_size,
                def.value_size,
                def.max_entries,
                def.map_flags,
            )
            .unwrap_or_else(|e| panic!("{name}: kernel map {}: {e}", def.name));
            if let Some(init) = &def.initial_value {
                kernel::map_update(&m, &0u32.to_le_bytes(), init, 0).unwrap();
            }
            kmaps.push(m);
        }
        let p = obj.program(prog_name).unwrap();
        let mut insns = p.insns.clone();
        let fds: Vec<i32> = kmaps.iter().map(kernel::Map::fd).collect();
        kernel::resolve_map_indices(&mut insns, &fds).unwrap();
        let loaded = kernel::prog_load(p.prog_type(), &insns[..], &obj.license, 1, 1 << 20);
        let kprog = loaded
            .result
            .unwrap_or_else(|e| panic!("{name}: kernel load: {e}\n{}", loaded.log));
        let fd = inst.prog(prog_name).unwrap();
        for (i, f) in frames.iter().enumerate() {
            let k = kernel::prog_test_run(&kprog, f, None, 1).unwrap();
            let b = bpf
                .prog_test_run(
                    fd,
                    &TestRunAttr {
                        data_in: f,
                        ..Default::default()
                    },
                )
                .unwrap();
            assert_eq!(b.retval, k.retval, "{name}: frame {i}: r0");
            assert_eq!(b.data_out, k.data_out, "{name}: frame {i}: output frame");
        }
        for (def, km) in obj.maps.iter().zip(&kmaps) {
            let fd = inst.map(&def.name).unwrap();
            let mut key: Option<Vec<u8>> = None;
            let mut n = 0;
            while let Ok(k) = bpf.map_next_key(fd, key.as_deref()) {
                let ours = bpf.map_lookup(fd, &k).unwrap();
                let theirs = kernel::map_lookup(km, &k).unwrap();
                assert_eq!(ours, theirs, "{name}: map {} key {k:02x?}", def.name);
                n += 1;
                key = Some(k);
            }
            // The kernel holds no key bpfkit lacks.
            let mut kkey: Option<Vec<u8>> = None;
            let mut kn = 0;
            while let Ok(k) = kernel::map_get_next_key(km, kkey.as_deref()) {
                kn += 1;
                kkey = Some(k);
            }
            assert_eq!(n, kn, "{name}: map {} entry count", def.name);
        }
    }
}

#[test]
fn sockex1_agrees_with_the_kernel() {
    compare("sockex1", "count_proto_bytes");
}

#[test]
fn xdp_globals_agrees_with_the_kernel() {
    compare("xdp_globals", "xdp_filter");
}

#[test]
fn tc_rewrite_agrees_with_the_kernel() {
    compare("tc_rewrite", "dnat");
}
