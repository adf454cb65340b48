//! Differential test: `Bpf::prog_load` + `Bpf::prog_test_run` against the kernel's
//! `BPF_PROG_LOAD` + `BPF_PROG_TEST_RUN` on the same programs and packets: the return value,
//! the output packet, and map contents. Skips, saying why, where `bpf()` is unavailable.

use bpfkit::maps::{MapAttr, MapType};
use bpfkit::prog::load::ProgLoadAttr;
use bpfkit::prog::run::TestRunAttr;
use bpfkit::progtype::access::{ctx_access, Direction};
use bpfkit::progtype::layout::{SK_BUFF_FIELDS, XDP_MD_FIELDS};
use bpfkit::{Bpf, Fd};
use bpfkit_isa::Insn;
use bpfkit_kernel::{map_create, map_lookup, prog_test_run, ProgLoad};
use bpfkit_verifier::env::ProgType;

/// Frames: IPv4/TCP to an ordinary MAC, an ARP broadcast, an IPv6/UDP multicast, an 802.3
/// length-framed packet, and an all-zero destination (the loopback device's own address).
fn frames() -> Vec<Vec<u8>> {
    let ipv4_tcp = {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
        f.extend([
            0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        f.extend([
            0x30, 0x39, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x20, 0, 0, 0, 0, 0,
        ]);
        f
    };
    let arp_broadcast = {
        let mut f = vec![0xff; 6];
        f.extend([0x02, 0, 0, 0, 0, 2, 0x08, 0x06]);
        f.extend([0, 1, 8, 0, 6, 4, 0, 1]);
        f.extend([0u8; 20]);
        f
    };
    let ipv6_multicast = {
        let mut f = vec![0x33, 0x33, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x86, 0xdd];
        f.extend([0x60, 0, 0, 0, 0, 8, 17, 64]);
        f.extend([0u8; 32]);
        f.extend([0, 53, 0, 53, 0, 8, 0, 0]);
        f
    };
    let ieee_802_3 = {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x00, 0x2e];
        f.extend([0xaa, 0xaa, 3, 0, 0, 0]);
        f.extend([0u8; 40]);
        f
    };
    let to_self = {
        let mut f = vec![0u8; 12];
        f.extend([0x08, 0x00]);
        f.extend([
            0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
        ]);
        f
    };
    vec![ipv4_tcp, arp_broadcast, ipv6_multicast, ieee_802_3, to_self]
}

fn bytes(insns: &[Insn]) -> Vec<u8> {
    insns.iter().flat_map(|i| i.to_bytes()).collect()
}

/// Loads and runs `insns` in the kernel and in bpfkit on `frame`; both must accept, and the
/// return values and output packets must agree.
fn compare(t: ProgType, insns: &[Insn], frame: &[u8], what: &str) -> Result<(), String> {
    let kernel = ProgLoad::new(t.kernel_id()).load(&bytes(insns)[..]);
    let kprog = kernel
        .result
        .map_err(|e| format!("{what}: kernel rejects ({e:?}): {}", kernel.log))?;
    let krun =
        prog_test_run(&kprog, frame, None, 1).map_err(|e| format!("{what}: kernel run {e:?}"))?;
    let bpf = Bpf::new();
    let attr = ProgLoadAttr {
        prog_type: t,
        insns,
        license: "GPL",
        log_level: 1,
        log_size: 1 << 20,
    };
    let loaded = bpf
        .prog_load(&attr)
        .map_err(|e| format!("{what}: bpfkit rejects ({e}): {}", e.log))?;
    for checked in [false, true] {
        let run = bpf
            .prog_test_run(
                loaded.fd,
                &TestRunAttr {
                    data_in: frame,
                    repeat: 1,
                    checked,
                    ..TestRunAttr::default()
                },
            )
            .map_err(|e| format!("{what}: bpfkit run {e}"))?;
        if run.retval != krun.retval || run.data_out != krun.data_out {
            return Err(format!(
                "{what} (checked={checked}): kernel retval {:#x} data {:02x?}, bpfkit retval {:#x} data {:02x?}",
                krun.retval, krun.data_out, run.retval, run.data_out
            ));
        }
    }
    Ok(())
}

#[test]
fn context_fields_read_the_same_values() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let mut errors = Vec::new();
    let mut compared = 0;
    for t in [
        ProgType::SocketFilter,
        ProgType::SchedCls,
        ProgType::SchedAct,
        ProgType::Xdp,
    ] {
        let fields = if t == ProgType::Xdp {
            XDP_MD_FIELDS
        } else {
            SK_BUFF_FIELDS
        };
        for f in fields {
            let off = f.off as i32;
            // Plain u32 fields only (pointers are compared through packet programs).
            if f.size != 4 || ["data", "data_end", "data_meta"].contains(&f.name) {
                continue;
            }
            if !ctx_access(t, off, 4, Direction::Read).allowed() {
                continue;
            }
            let prog = [
                Insn::new(0x61, 0, 1, off as i16, 0),
                Insn::new(0x95, 0, 0, 0, 0),
            ];
            for (i, frame) in frames().iter().enumerate() {
                compared += 1;
                if let Err(e) = compare(t, &prog, frame, &format!("{t} {} frame {i}", f.name)) {
                    errors.push(e);
                }
            }
        }
    }
    println!("{compared} field reads compared with the kernel");
    assert!(
        errors.is_empty(),
        "{} differences:\n{}",
        errors.len(),
        errors.join("\n")
    );
}

#[test]
fn ld_abs_and_ld_ind_read_the_same_bytes() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let mut errors = Vec::new();
    for t in [ProgType::SocketFilter, ProgType::SchedCls] {
        for (code, size) in [(0x30u8, 1), (0x28, 2), (0x20, 4)] {
            for off in [0i32, 1, 12, 13, 20, 30, 37, 38, 39, 40, 60, 1000] {
                let abs = [
                    Insn::new(0xbf, 6, 1, 0, 0),   // r6 = r1
                    Insn::new(code, 0, 0, 0, off), // r0 = ntoh(packet[off])
                    Insn::new(0x95, 0, 0, 0, 0),
                ];
                let ind = [
                    Insn::new(0xbf, 6, 1, 0, 0),                    // r6 = r1
                    Insn::new(0xb7, 2, 0, 0, 3),                    // r2 = 3
                    Insn::new((code & !0xe0) | 0x40, 0, 2, 0, off), // r0 = ntoh(packet[r2 + off])
                    Insn::new(0x95, 0, 0, 0, 0),
                ];
                for (i, frame) in frames().iter().enumerate() {
                    for (prog, kind) in [(&abs[..], "abs"), (&ind[..], "ind")] {
                        let what = format!("{t} ld_{kind} size {size} off {off} frame {i}");
                        if let Err(e) = compare(t, prog, frame, &what) {
                            errors.push(e);
                        }
                    }
                }
            }
        }
    }
    assert!(
        errors.is_empty(),
        "{} differences:\n{}",
        errors.len(),
        errors.join("\n")
    );
}

/// sockex1 as raw instructions: count bytes per IP protocol into an array map
/// (samples/bpf/sockex1_kern.c: `index = load_byte(skb, ETH_HLEN + offsetof(iphdr, protocol))`,
/// then `*value += skb->len`; a socket filter under test run sees the packet from layer 3, so
/// the protocol byte is at offset 9 there).
fn sockex1(map_fd: i32) -> Vec<Insn> {
    vec![
        Insn::new(0xbf, 6, 1, 0, 0),      // r6 = r1
        Insn::new(0x30, 0, 0, 0, 9),      // r0 = ld_abs_b [9]: IP protocol
        Insn::new(0x63, 10, 0, -4, 0),    // *(u32 *)(r10 - 4) = r0
        Insn::new(0x61, 7, 6, 0, 0),      // r7 = skb->len
        Insn::new(0x18, 1, 1, 0, map_fd), // r1 = map
        Insn::new(0, 0, 0, 0, 0),
        Insn::new(0xbf, 2, 10, 0, 0), // r2 = r10
        Insn::new(0x07, 2, 0, 0, -4), // r2 += -4
        Insn::new(0x85, 0, 0, 0, 1),  // call bpf_map_lookup_elem
        Insn::new(0x15, 0, 0, 1, 0),  // if r0 == 0 goto +1
        Insn::new(0xdb, 0, 7, 0, 0),  // lock *(u64 *)(r0 + 0) += r7
        Insn::new(0xb7, 0, 0, 0, 0),  // r0 = 0
        Insn::new(0x95, 0, 0, 0, 0),  // exit
    ]
}

#[test]
fn sockex1_counts_the_same_bytes_per_protocol() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let kmap = map_create(2, 4, 8, 256, 0).expect("kernel array map");
    let kprog =
        ProgLoad::new(ProgType::SocketFilter.kernel_id()).load(&bytes(&sockex1(kmap.fd()))[..]);
    let kprog = kprog
        .result
        .unwrap_or_else(|e| panic!("kernel rejects sockex1 ({e:?}): {}", kprog.log));

    let bpf = Bpf::new();
    let map = bpf
        .map_create(&MapAttr::new(MapType::Array, 4, 8, 256))
        .expect("bpfkit array map");
    let insns = sockex1(map.0 as i32);
    let attr = ProgLoadAttr {
        prog_type: ProgType::SocketFilter,
        insns: &insns,
        license: "GPL",
        log_level: 0,
        log_size: 0,
    };
    let prog = bpf
        .prog_load(&attr)
        .unwrap_or_else(|e| panic!("bpfkit rejects sockex1: {e} {}", e.log));

    for frame in frames() {
        for _ in 0..3 {
            prog_test_run(&kprog, &frame, None, 1).expect("kernel run");
            bpf.prog_test_run(
                prog.fd,
                &TestRunAttr {
                    data_in: &frame,
                    repeat: 1,
                    checked: false,
                    ..TestRunAttr::default()
                },
            )
            .expect("bpfkit run");
        }
    }
    for key in 0u32..256 {
        let k = key.to_le_bytes();
        let theirs = map_lookup(&kmap, &k).expect("kernel lookup");
        let ours = bpf.map_lookup(Fd(map.0), &k).expect("bpfkit lookup");
        assert_eq!(ours, theirs, "protocol {key}");
    }
}

/// `r1 = map` (LD_IMM64 with a map descriptor).
fn ld_map(reg: u8, fd: i32) -> [Insn; 2] {
    [Insn::new(0x18, reg, 1, 0, fd), Insn::new(0, 0, 0, 0, 0)]
}

/// The dispatcher of a sockex3-style parser: tail-call the program at index = IP protocol,
/// return 1 when the slot is empty.
fn dispatcher(prog_array: i32) -> Vec<Insn> {
    let mut p = vec![
        Insn::new(0xbf, 6, 1, 0, 0), // r6 = r1
        Insn::new(0x30, 0, 0, 0, 9), // r0 = ld_abs_b [9]
        Insn::new(0xbf, 3, 0, 0, 0), // r3 = r0
        Insn::new(0xbf, 1, 6, 0, 0), // r1 = r6
    ];
    p.extend(ld_map(2, prog_array));
    p.push(Insn::new(0x85, 0, 0, 0, 12)); // call bpf_tail_call
    p.push(Insn::new(0xb7, 0, 0, 0, 1)); // r0 = 1
    p.push(Insn::new(0x95, 0, 0, 0, 0));
    p
}

/// A leaf: r0 = skb->len + `tag`.
fn leaf(tag: i32) -> Vec<Insn> {
    vec![
        Insn::new(0x61, 0, 1, 0, 0),   // r0 = skb->len
        Insn::new(0x07, 0, 0, 0, tag), // r0 += tag
        Insn::new(0x95, 0, 0, 0, 0),
    ]
}

/// Adds 1 to counter[0] and tail-calls index 1 (itself) until Linux's limit stops it; then
/// returns the counter.
fn self_caller(prog_array: i32, counters: i32) -> Vec<Insn> {
    let mut p = vec![
        Insn::new(0xbf, 6, 1, 0, 0),   // r6 = r1
        Insn::new(0x62, 10, 0, -4, 0), // *(u32 *)(r10 - 4) = 0
    ];
    p.extend(ld_map(1, counters));
    p.extend([
        Insn::new(0xbf, 2, 10, 0, 0), // r2 = r10
        Insn::new(0x07, 2, 0, 0, -4), // r2 += -4
        Insn::new(0x85, 0, 0, 0, 1),  // call bpf_map_lookup_elem
        Insn::new(0x15, 0, 0, 1, 0),  // if r0 == 0 goto +1
        Insn::new(0x7a, 0, 0, 0, 0),  // placeholder, replaced below
        Insn::new(0xbf, 7, 0, 0, 0),  // r7 = r0 (the counter or NULL)
        Insn::new(0xbf, 1, 6, 0, 0),  // r1 = r6
    ]);
    // lock *(u64 *)(r0 + 0) += 1 needs a register: r8 = 1 first.
    let at = p.len() - 3;
    p[at] = Insn::new(0xdb, 0, 8, 0, 0);
    p.insert(0, Insn::new(0xb7, 8, 0, 0, 1)); // r8 = 1
    p.extend(ld_map(2, prog_array));
    p.extend([
        Insn::new(0xb7, 3, 0, 0, 1),  // r3 = 1
        Insn::new(0x85, 0, 0, 0, 12), // call bpf_tail_call
        Insn::new(0xb7, 0, 0, 0, 0),  // r0 = 0
        Insn::new(0x15, 7, 0, 1, 0),  // if r7 == 0 goto +1
        Insn::new(0x79, 0, 7, 0, 0),  // r0 = *(u64 *)(r7 + 0)
        Insn::new(0x95, 0, 0, 0, 0),
    ]);
    p
}

fn icmp_frame() -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    f.extend([
        0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    f.extend([8, 0, 0, 0, 0, 0, 0, 0]);
    f
}

#[test]
fn tail_calls_dispatch_and_stop_where_linux_stops() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let sf = ProgType::SocketFilter;
    // Kernel side.
    let kpa = map_create(3, 4, 4, 32, 0).expect("kernel prog array");
    let kcnt = map_create(2, 4, 8, 1, 0).expect("kernel counter");
    let kload = |insns: &[Insn]| {
        let l = ProgLoad::new(sf.kernel_id()).load(&bytes(insns)[..]);
        l.result
            .unwrap_or_else(|e| panic!("kernel rejects ({e:?}): {}", l.log))
    };
    let kentry = kload(&dispatcher(kpa.fd()));
    let ktcp = kload(&leaf(6000));
    let kudp = kload(&leaf(17000));
    let kself = kload(&self_caller(kpa.fd(), kcnt.fd()));
    for (idx, p) in [(6u32, &ktcp), (17, &kudp), (1, &kself)] {
        bpfkit_kernel::map_update(&kpa, &idx.to_le_bytes(), &p.fd().to_le_bytes(), 0)
            .expect("kernel prog array update");
    }
    // bpfkit side.
    let bpf = Bpf::new();
    let pa = bpf
        .map_create(&MapAttr::new(MapType::ProgArray, 4, 4, 32))
        .expect("prog array");
    let cnt = bpf
        .map_create(&MapAttr::new(MapType::Array, 4, 8, 1))
        .expect("counter");
    let load = |insns: Vec<Insn>| {
        let attr = ProgLoadAttr {
            prog_type: sf,
            insns: &insns,
            license: "GPL",
            log_level: 0,
            log_size: 0,
        };
        bpf.prog_load(&attr)
            .unwrap_or_else(|e| panic!("bpfkit rejects: {e} {}", e.log))
            .fd
    };
    let entry = load(dispatcher(pa.0 as i32));
    let tcp = load(leaf(6000));
    let udp = load(leaf(17000));
    let selfc = load(self_caller(pa.0 as i32, cnt.0 as i32));
    for (idx, p) in [(6u32, tcp), (17, udp), (1, selfc)] {
        bpf.map_update_elem(pa, &idx.to_le_bytes(), &p.0.to_le_bytes(), 0)
            .expect("update");
    }
    let mut frames = frames();
    frames.push(icmp_frame());
    for (i, frame) in frames.iter().enumerate() {
        let k = prog_test_run(&kentry, frame, None, 1).expect("kernel run");
        let ours = bpf
            .prog_test_run(
                entry,
                &TestRunAttr {
                    data_in: frame,
                    repeat: 1,
                    checked: false,
                    ..TestRunAttr::default()
                },
            )
            .expect("bpfkit run");
        assert_eq!(ours.retval, k.retval, "frame {i}");
        let kc = map_lookup(&kcnt, &0u32.to_le_bytes()).expect("kernel counter");
        let oc = bpf.map_lookup(cnt, &0u32.to_le_bytes()).expect("counter");
        assert_eq!(oc, kc, "counter after frame {i}");
        if i == frames.len() - 1 {
            // MAX_TAIL_CALL_CNT = 33 tail calls per run: the dispatcher's, then 32 of the
            // self-caller's, so the self-caller counts 33 times.
            assert_eq!(u64::from_le_bytes(oc[..8].try_into().expect("8 bytes")), 33);
        }
    }
}
