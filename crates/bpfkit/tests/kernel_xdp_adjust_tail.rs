//! Differential test: `bpf_xdp_adjust_tail` in bpfkit's runtime against the live kernel: its
//! return value and the packet a test run gives back, for shrinking, growing, and offsets past
//! either limit (less than an Ethernet header; past the frame's hard end). Skips, saying why,
//! where `bpf()` is unavailable.

use bpfkit::prog::load::ProgLoadAttr;
use bpfkit::prog::run::TestRunAttr;
use bpfkit::Bpf;
use bpfkit_isa::Insn;
use bpfkit_kernel::{names, prog_test_run, ProgLoad};
use bpfkit_verifier::env::ProgType;

/// `r0 = bpf_xdp_adjust_tail(ctx, offset); r0 = (r0 == 0) ? XDP_PASS : r0; exit`.
fn program(offset: i32) -> Vec<Insn> {
    vec![
        Insn::new(0xb7, 2, 0, 0, offset), // r2 = offset
        Insn::new(0x85, 0, 0, 0, 65),     // call bpf_xdp_adjust_tail
        Insn::new(0x55, 0, 0, 1, 0),      // if r0 != 0 goto +1
        Insn::new(0xb7, 0, 0, 0, 2),      // r0 = XDP_PASS
        Insn::new(0x95, 0, 0, 0, 0),      // exit
    ]
}

#[test]
fn xdp_adjust_tail_matches_the_kernel() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let packet: Vec<u8> = (0u8..64)
        .map(|b| b.wrapping_mul(29).wrapping_add(3))
        .collect();
    for offset in [0, -10, -50, -51, 10, 100, 3456, 3457, 4000, -64, i32::MIN] {
        let insns = program(offset);
        let bytes: Vec<u8> = insns.iter().flat_map(|i| i.to_bytes()).collect();
        let prog = ProgLoad::new(names::PROG_XDP).load(&bytes[..]);
        let log = prog.log;
        let prog = match prog.result {
            Ok(p) => p,
            Err(e) => panic!("kernel load: {e:?}: {log}"),
        };
        let kernel = prog_test_run(&prog, &packet, None, 1).expect("kernel test run");
        let bpf = Bpf::new();
        let loaded = bpf
            .prog_load(&ProgLoadAttr {
                prog_type: ProgType::Xdp,
                insns: &insns,
                license: "GPL",
                log_level: 0,
                log_size: 0,
            })
            .expect("bpfkit load");
        let attr = TestRunAttr {
            data_in: &packet,
            ..TestRunAttr::default()
        };
        let ours = bpf.prog_test_run(loaded.fd, &attr).expect("bpfkit run");
        assert_eq!(ours.retval, kernel.retval, "retval, offset {offset}");
        assert_eq!(ours.data_out, kernel.data_out, "packet, offset {offset}");
    }
}
