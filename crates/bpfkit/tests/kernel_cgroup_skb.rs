//! Differential test of the `cgroup_skb` program type against the live kernel:
//!
//! - every context field a cgroup_skb program may read holds the same value in bpfkit's test
//!   run as in the kernel's `BPF_PROG_TEST_RUN` (the field is copied into `cb[0]` and read back
//!   from `ctx_out`, since the return value may only be 0 or 1), over several packets;
//! - programs that read the packet through `data`/`data_end` return the same values, with and
//!   without the egress attach type (which allows 0 to 3);
//! - the verifier's level-1 log of programs rejected by the exit-code check is the kernel's,
//!   byte for byte.
//!
//! Skips, saying why, where the `bpf()` system call is unavailable.

use bpfkit::prog::load::{ProgLoadAttr, ProgLoadOpts, CGROUP_INET_EGRESS, CGROUP_INET_INGRESS};
use bpfkit::prog::run::TestRunAttr;
use bpfkit::progtype::access::{ctx_access, Direction};
use bpfkit::progtype::layout::{SK_BUFF_FIELDS, SK_BUFF_SIZE};
use bpfkit::Bpf;
use bpfkit_isa::Insn;
use bpfkit_kernel::{prog_test_run, ProgLoad};
use bpfkit_verifier::env::ProgType;

const T: ProgType = ProgType::CgroupSkb;

/// Packets: IPv4/TCP, IPv6/UDP, ARP (no IP: the socket family stays unset), and IPv4 with
/// options and a payload.
fn frames() -> Vec<Vec<u8>> {
    let eth = |proto: [u8; 2]| {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        f.extend(proto);
        f
    };
    let mut ipv4_tcp = eth([0x08, 0x00]);
    ipv4_tcp.extend([
        0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 1, 2, 3, 192, 168, 7, 9,
    ]);
    ipv4_tcp.extend([
        0x30, 0x39, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x20, 0, 0, 0, 0, 0,
    ]);
    let mut ipv6_udp = eth([0x86, 0xdd]);
    ipv6_udp.extend([0x60, 0, 0, 0, 0, 8, 17, 64]);
    ipv6_udp.extend((1..=16).map(|b| b * 3));
    ipv6_udp.extend((1..=16).map(|b| 0xf0 | b));
    ipv6_udp.extend([0, 53, 0, 53, 0, 8, 0, 0]);
    let mut arp = eth([0x08, 0x06]);
    arp.extend([0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend([7u8; 20]);
    let mut ipv4_opts = eth([0x08, 0x00]);
    ipv4_opts.extend([
        0x46, 0, 0, 44, 0, 2, 0, 0, 1, 17, 0, 0, 172, 16, 0, 1, 172, 16, 0, 254, 1, 1, 1, 0,
    ]);
    ipv4_opts.extend([0x12, 0x34, 0x56, 0x78, 0, 12, 0, 0, 0xde, 0xad, 0xbe, 0xef]);
    vec![ipv4_tcp, ipv6_udp, arp, ipv4_opts]
}

fn bytes(insns: &[Insn]) -> Vec<u8> {
    insns.iter().flat_map(|i| i.to_bytes()).collect()
}

fn asm(text: &str) -> Vec<Insn> {
    bpfkit_isa::asm::kernel::assemble(text).unwrap_or_else(|e| panic!("{e}:\n{text}"))
}

/// The result of one run: return value, output packet, output context.
type Run = (u32, Vec<u8>, Vec<u8>);

/// Runs `insns` in the kernel and in bpfkit (fast and checked) on `frame` with a zeroed
/// `__sk_buff` as `ctx_in`; `Err` describes a rejection or a difference.
fn compare(insns: &[Insn], attach: u32, frame: &[u8], what: &str) -> Result<Run, String> {
    let ctx_in = vec![0u8; SK_BUFF_SIZE as usize];
    let kernel = ProgLoad {
        expected_attach_type: attach,
        ..ProgLoad::new(T.kernel_id())
    }
    .load(&bytes(insns)[..]);
    let kprog = kernel
        .result
        .map_err(|e| format!("{what}: kernel rejects ({e:?}): {}", kernel.log))?;
    let k = prog_test_run(&kprog, frame, Some(&ctx_in), 1)
        .map_err(|e| format!("{what}: kernel run {e:?}"))?;
    let kernel_run = (k.retval, k.data_out, k.ctx_out);
    let bpf = Bpf::new();
    let attr = ProgLoadAttr {
        prog_type: T,
        insns,
        license: "GPL",
        log_level: 1,
        log_size: 1 << 20,
    };
    let opts = ProgLoadOpts {
        expected_attach_type: attach,
        ..ProgLoadOpts::default()
    };
    let fd = bpf
        .prog_load_with(&attr, &opts)
        .map_err(|e| format!("{what}: bpfkit rejects ({e}): {}", e.log))?
        .fd;
    for checked in [false, true] {
        let run = bpf
            .prog_test_run(
                fd,
                &TestRunAttr {
                    data_in: frame,
                    checked,
                    ctx_in: Some(&ctx_in),
                    ..TestRunAttr::default()
                },
            )
            .map_err(|e| format!("{what}: bpfkit run (checked={checked}): {e}"))?;
        let ours = (run.retval, run.data_out, run.ctx_out.unwrap_or_default());
        if ours != kernel_run {
            return Err(format!(
                "{what} (checked={checked}):\n  kernel {kernel_run:02x?}\n  bpfkit {ours:02x?}"
            ));
        }
    }
    Ok(kernel_run)
}

fn report(errors: &[String]) {
    assert!(
        errors.is_empty(),
        "{} differences:\n{}",
        errors.len(),
        errors.join("\n")
    );
}

#[test]
fn context_fields_read_the_same_values() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let (mut errors, mut compared) = (Vec::new(), 0);
    let mut socket_fields_seen = Vec::new();
    for f in SK_BUFF_FIELDS {
        let off = i32::try_from(f.off).expect("small offset");
        if ["data", "data_end", "sk"].contains(&f.name)
            || !ctx_access(T, off, f.size, Direction::Read).allowed()
        {
            continue;
        }
        let (ld, st) = if f.size == 8 {
            ("u64", "u64")
        } else {
            ("u32", "u32")
        };
        let prog = asm(&format!(
            "r2 = *({ld} *)(r1 + {off})\n*({st} *)(r1 + 48) = r2\nr0 = 1\nexit\n"
        ));
        for (i, frame) in frames().iter().enumerate() {
            compared += 1;
            match compare(
                &prog,
                CGROUP_INET_INGRESS,
                frame,
                &format!("{} frame {i}", f.name),
            ) {
                Ok((_, _, ctx)) if (88..140).contains(&f.off) && ctx[48..52] != [0; 4] => {
                    socket_fields_seen.push(f.name);
                }
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
        }
    }
    println!("{compared} cgroup_skb field reads compared with the kernel");
    report(&errors);
    // The kernel's dummy socket carries the packet's addresses: the test must have seen them.
    for name in [
        "family",
        "remote_ip4",
        "local_ip4",
        "remote_ip6[0]",
        "local_ip6[3]",
    ] {
        assert!(
            socket_fields_seen.contains(&name),
            "{name} read 0 on every packet"
        );
    }
}

#[test]
fn packet_reads_and_return_values_agree() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    // r0 = 1 when the IP protocol byte (data + 9: cgroup_skb sees the packet from layer 3) is
    // TCP; the packet's first 8 bytes go into cb[0..2].
    let is_tcp = asm("r2 = *(u32 *)(r1 + 76)\n\
         r3 = *(u32 *)(r1 + 80)\n\
         r4 = r2\n\
         r4 += 20\n\
         r0 = 0\n\
         if r4 > r3 goto out\n\
         r5 = *(u64 *)(r2 + 0)\n\
         *(u64 *)(r1 + 48) = r5\n\
         r5 = *(u8 *)(r2 + 9)\n\
         if r5 != 6 goto out\n\
         r0 = 1\n\
         out:\n\
         exit\n");
    // Egress: r0 = (len / 4) & 3 (2 and 3 are the congestion-notification verdicts).
    let len_mod_4 = asm("r0 = *(u32 *)(r1 + 0)\nr0 >>= 2\nr0 &= 3\nexit\n");
    // bpf_skb_load_bytes of the 4 bytes at offset 12 of the network header (IPv4's source
    // address) into cb[1]; r0 = 1 when it succeeded.
    let load_bytes = asm("r6 = r1\n\
         r2 = 12\n\
         r3 = r10\n\
         r3 += -8\n\
         r4 = 4\n\
         call 26\n\
         r1 = *(u32 *)(r10 - 8)\n\
         *(u32 *)(r6 + 52) = r1\n\
         r0 = 0\n\
         if r0 s> 0 goto out\n\
         r0 = 1\n\
         out:\n\
         exit\n");
    let mut errors = Vec::new();
    let mut retvals = Vec::new();
    for (i, frame) in frames().iter().enumerate() {
        for (prog, attach, name) in [
            (&is_tcp, CGROUP_INET_INGRESS, "is_tcp"),
            (&len_mod_4, CGROUP_INET_EGRESS, "len_mod_4"),
            (&load_bytes, CGROUP_INET_INGRESS, "load_bytes"),
        ] {
            match compare(prog, attach, frame, &format!("{name} frame {i}")) {
                Ok((r, _, _)) => retvals.push(r),
                Err(e) => errors.push(e),
            }
        }
    }
    report(&errors);
    // Not a test that cannot fail: the programs must have taken different paths.
    assert!(retvals.contains(&0) && retvals.contains(&1) && retvals.iter().any(|&r| r > 1));
}

#[test]
fn exit_code_rejections_log_as_the_kernel_does() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let programs = [
        ("r0 = 2\nexit\n", CGROUP_INET_INGRESS),
        ("r0 = 4\nexit\n", CGROUP_INET_EGRESS),
        ("r0 = r1\nexit\n", CGROUP_INET_INGRESS),
        ("r0 = *(u32 *)(r1 + 0)\nexit\n", CGROUP_INET_INGRESS),
        (
            "r2 = *(u32 *)(r1 + 0)\nr0 = 2\nif r2 > 10 goto out\nr0 = 0\nout:\nexit\n",
            CGROUP_INET_INGRESS,
        ),
        // A subprogram's value, checked only at the main program's exit.
        ("call f\nexit\nf:\nr0 = -3\nexit\n", CGROUP_INET_INGRESS),
    ];
    let mut errors = Vec::new();
    let cases = programs
        .iter()
        .flat_map(|&(text, attach)| [(text, attach, 1), (text, attach, 2)]);
    for (text, attach, level) in cases {
        let insns = asm(text);
        {
            let kernel = ProgLoad {
                expected_attach_type: attach,
                log_level: level,
                ..ProgLoad::new(T.kernel_id())
            }
            .load(&bytes(&insns)[..]);
            assert!(kernel.result.is_err(), "the kernel accepts {text:?}");
            let bpf = Bpf::new();
            let attr = ProgLoadAttr {
                prog_type: T,
                insns: &insns,
                license: "GPL",
                log_level: level,
                log_size: 1 << 20,
            };
            let opts = ProgLoadOpts {
                expected_attach_type: attach,
                ..ProgLoadOpts::default()
            };
            let ours = match bpf.prog_load_with(&attr, &opts) {
                Ok(_) => String::from("(accepted)"),
                Err(e) => e.log,
            };
            // Level 2 adds the precision backtracking lines (`mark_precise: ...`) that bpfkit
            // does not print; compare the rest there.
            let strip = |log: &str| -> String {
                log.lines()
                    .filter(|l| level == 1 || !l.starts_with("mark_precise:"))
                    .map(|l| format!("{l}\n"))
                    .collect()
            };
            if strip(&ours) != strip(&kernel.log) {
                errors.push(format!(
                    "{text:?} at level {level}:\n--- kernel\n{}--- bpfkit\n{ours}",
                    kernel.log
                ));
            }
        }
    }
    report(&errors);
}

#[test]
fn only_ingress_and_egress_attach_types_load() {
    let bpf = Bpf::new();
    let insns = asm("r0 = 1\nexit\n");
    let attr = ProgLoadAttr {
        prog_type: T,
        insns: &insns,
        license: "GPL",
        log_level: 0,
        log_size: 0,
    };
    let load = |attach| {
        let opts = ProgLoadOpts {
            expected_attach_type: attach,
            ..ProgLoadOpts::default()
        };
        bpf.prog_load_with(&attr, &opts).map(|_| ())
    };
    assert!(load(CGROUP_INET_INGRESS).is_ok());
    assert!(load(CGROUP_INET_EGRESS).is_ok());
    // BPF_CGROUP_INET_SOCK_CREATE (2) is a cgroup_sock attach type: the kernel says EINVAL.
    let ours = load(2).map_err(|e| e.errno.code());
    assert_eq!(ours, Err(22));
    if bpfkit_kernel::available().is_ok() {
        let kernel = ProgLoad {
            expected_attach_type: 2,
            ..ProgLoad::new(T.kernel_id())
        }
        .load(&bytes(&insns)[..]);
        assert_eq!(kernel.result.err().map(|e| e.0), Some(22));
    }
}
