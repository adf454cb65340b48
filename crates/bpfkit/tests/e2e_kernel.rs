//! End-to-end against the running kernel: the same example objects loaded into Linux (maps
//! created and initialised as libbpf does, map references resolved, programs loaded with the
//! object's license) and into bpfkit ([`bpfkit::instantiate`]); every frame of the committed
//! capture is test-run in both (`BPF_PROG_TEST_RUN`), and return values, output frames and the
//! final contents of every map must agree. Socket filters are also compared with the
//! packet-socket semantics of `bpfkit run` (the frame from its Ethernet header). Skips, saying
//! why, where `bpf()` is unavailable.
#![allow(clippy::unwrap_used, reason = "in tests a panic is the failure report")]

mod e2e_support;

use bpfkit::loader::SlotTarget;
use bpfkit::prog::run::TestRunAttr;
use bpfkit::source::packets::run_frame;
use bpfkit_kernel as kernel;
use e2e_support::{example_dirs, load, mixed_pcap, pcap_frames};

/// The object's maps and programs in the kernel: maps created (global data initialised), map
/// references resolved, every program loaded, static prog_array slots filled.
struct InKernel {
    maps: Vec<kernel::Map>,
    progs: Vec<(String, kernel::Prog)>,
}

fn kernel_instantiate(obj: &bpfkit::loader::Object, name: &str) -> InKernel {
    let mut maps = Vec::new();
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
        maps.push(m);
    }
    let fds: Vec<i32> = maps.iter().map(kernel::Map::fd).collect();
    let mut progs = Vec::new();
    for p in &obj.programs {
        let mut insns = p.insns.clone();
        kernel::resolve_map_indices(&mut insns, &fds).unwrap();
        let loaded = kernel::prog_load(p.prog_type(), &insns[..], &obj.license, 1, 1 << 20);
        let prog = loaded
            .result
            .unwrap_or_else(|e| panic!("{name}: kernel load of {}: {e}\n{}", p.name, loaded.log));
        progs.push((p.name.clone(), prog));
    }
    for (def, m) in obj.maps.iter().zip(&maps) {
        for slot in &def.init_slots {
            if let SlotTarget::Program(target) = &slot.target {
                let (_, prog) = progs.iter().find(|(n, _)| n == target).unwrap();
                kernel::map_update(m, &slot.slot.to_le_bytes(), &prog.fd().to_le_bytes(), 0)
                    .unwrap();
            }
        }
    }
    InKernel { maps, progs }
}

/// Every map of the object holds the same entries in bpfkit and in the kernel.
fn same_maps(
    name: &str,
    obj: &bpfkit::loader::Object,
    bpf: &bpfkit::Bpf,
    inst: &bpfkit::instantiate::Instance,
    k: &InKernel,
) {
    for (def, km) in obj.maps.iter().zip(&k.maps) {
        if def.map_type == 3 {
            continue; // prog_array values are descriptors, different on each side
        }
        let fd = inst.map(&def.name).unwrap();
        let mut key: Option<Vec<u8>> = None;
        let mut n = 0;
        while let Ok(key_now) = bpf.map_next_key(fd, key.as_deref()) {
            let ours = bpf.map_lookup(fd, &key_now).unwrap();
            let theirs = kernel::map_lookup(km, &key_now).unwrap();
            assert_eq!(ours, theirs, "{name}: map {} key {key_now:02x?}", def.name);
            n += 1;
            key = Some(key_now);
        }
        // The kernel holds no key bpfkit lacks.
        let mut kkey: Option<Vec<u8>> = None;
        let mut kn = 0;
        while let Ok(next) = kernel::map_get_next_key(km, kkey.as_deref()) {
            kn += 1;
            kkey = Some(next);
        }
        assert_eq!(n, kn, "{name}: map {} entry count", def.name);
    }
}

fn compare(name: &str, prog_name: &str) {
    if let Err(why) = kernel::available() {
        eprintln!("skipping the kernel comparison of {name}: {why}");
        return;
    }
    let frames = pcap_frames(&mixed_pcap());
    for dir in example_dirs() {
        let (bpf, inst, obj) = load(&dir, name);
        let k = kernel_instantiate(&obj, name);
        let kprog = &k.progs.iter().find(|(n, _)| n == prog_name).unwrap().1;
        let fd = inst.prog(prog_name).unwrap();
        for (i, f) in frames.iter().enumerate() {
            let kr = kernel::prog_test_run(kprog, f, None, 1).unwrap();
            let b = bpf
                .prog_test_run(
                    fd,
                    &TestRunAttr {
                        data_in: f,
                        ..Default::default()
                    },
                )
                .unwrap();
            assert_eq!(b.retval, kr.retval, "{name}: frame {i}: r0");
            assert_eq!(b.data_out, kr.data_out, "{name}: frame {i}: output frame");
        }
        same_maps(name, &obj, &bpf, &inst, &k);
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

/// `bpfkit run`'s packet-socket semantics against the kernel: a socket filter on an `AF_PACKET`
/// socket sees the frame from its Ethernet header. The kernel's test run pulls 14 bytes first,
/// so the kernel gets the frame behind a 14-byte dummy Ethernet header (IPv4 EtherType): the
/// program then sees exactly the frame, `skb->len` its length, as on a packet socket.
fn compare_packet_socket(name: &str, prog_name: &str) {
    if let Err(why) = kernel::available() {
        eprintln!("skipping the kernel comparison of {name}: {why}");
        return;
    }
    let frames = pcap_frames(&mixed_pcap());
    for dir in example_dirs() {
        let (bpf, inst, obj) = load(&dir, name);
        let k = kernel_instantiate(&obj, name);
        let kprog = &k.progs.iter().find(|(n, _)| n == prog_name).unwrap().1;
        let fd = inst.prog(prog_name).unwrap();
        for (i, f) in frames.iter().enumerate() {
            let mut framed = vec![0u8; 12];
            framed.extend_from_slice(&[0x08, 0x00]);
            framed.extend_from_slice(f);
            let kr = kernel::prog_test_run(kprog, &framed, None, 1).unwrap();
            let b = run_frame(&bpf, fd, f).unwrap();
            assert_eq!(b.retval, kr.retval, "{name}: frame {i}: r0");
        }
        same_maps(name, &obj, &bpf, &inst, &k);
    }
}

#[test]
fn sockex1_on_a_packet_socket_agrees_with_the_kernel() {
    compare_packet_socket("sockex1", "count_proto_bytes");
}

#[test]
fn sockex3_on_a_packet_socket_agrees_with_the_kernel() {
    compare_packet_socket("sockex3", "flow_dissect");
}
