//! Dead code against the live kernel: the verifier checks only the instructions a path
//! reaches, and Linux then removes the rest (`opt_remove_dead_code`, `sanitize_dead_code`), so
//! a program whose unreachable part holds an instruction with reserved fields set, or a call
//! to a helper that does not exist, loads and runs. bpfkit's runtime must load it too (it
//! replaces unseen instructions before translating). Skips, saying why, where `bpf()` is
//! unavailable.

use bpfkit::prog::load::ProgLoadAttr;
use bpfkit::prog::run::TestRunAttr;
use bpfkit::Bpf;
use bpfkit_isa::Insn;
use bpfkit_kernel::{names, prog_test_run, ProgLoad};
use bpfkit_verifier::env::ProgType;

/// `r0 = 7; if r0 == 7 goto +1; <insn>; exit`: `insn` is dead.
fn with_dead(insn: Insn) -> Vec<Insn> {
    vec![
        Insn::new(0xb7, 0, 0, 0, 7), // r0 = 7
        Insn::new(0x15, 0, 0, 1, 7), // if r0 == 7 goto +1
        insn,                        // dead
        Insn::new(0x95, 0, 0, 0, 0), // exit
    ]
}

/// The kernel's and bpfkit's outcome: `Ok(retval)` or `Err(errno)`.
fn both(insns: &[Insn]) -> (Result<u32, i32>, Result<u32, i32>) {
    let packet = [0u8; 64];
    let bytes: Vec<u8> = insns.iter().flat_map(|i| i.to_bytes()).collect();
    let kernel = ProgLoad::new(names::PROG_SOCKET_FILTER).load(&bytes[..]);
    let kernel = match kernel.result {
        Ok(p) => Ok(prog_test_run(&p, &packet, None, 1)
            .expect("kernel test run")
            .retval),
        Err(e) => Err(e.0),
    };
    let bpf = Bpf::new();
    let loaded = bpf.prog_load(&ProgLoadAttr {
        prog_type: ProgType::SocketFilter,
        insns,
        license: "GPL",
        log_level: 0,
        log_size: 0,
    });
    let ours = match loaded {
        Ok(l) => {
            let attr = TestRunAttr {
                data_in: &packet,
                ..TestRunAttr::default()
            };
            Ok(bpf.prog_test_run(l.fd, &attr).expect("bpfkit run").retval)
        }
        Err(e) => Err(e.errno.code()),
    };
    (kernel, ours)
}

#[test]
fn dead_code_is_removed_as_in_linux() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let reserved_alu = Insn::new(0x04, 0, 0, 1, 1); // w0 += 1 with off = 1 (reserved)
    let unknown_helper = Insn::new(0x85, 0, 0, 0, 100_000); // call #100000
    let xdp_only_helper = Insn::new(0x85, 0, 0, 0, 44); // bpf_xdp_adjust_head
    for (what, insn) in [
        ("reserved fields", reserved_alu),
        ("unknown helper", unknown_helper),
        ("helper of another type", xdp_only_helper),
    ] {
        let (kernel, ours) = both(&with_dead(insn));
        assert_eq!(kernel, Ok(7), "kernel, dead {what}");
        assert_eq!(ours, kernel, "bpfkit, dead {what}");
    }
    // Reached, the same instruction with reserved fields is refused by both (EINVAL).
    let live = [
        Insn::new(0xb7, 0, 0, 0, 7),
        reserved_alu,
        Insn::new(0x95, 0, 0, 0, 0),
    ];
    let (kernel, ours) = both(&live);
    assert_eq!(kernel, Err(22), "kernel, live reserved fields");
    assert_eq!(ours, kernel, "bpfkit, live reserved fields");
}
