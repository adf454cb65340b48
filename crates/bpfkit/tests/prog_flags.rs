//! `prog_flags` of `BPF_PROG_LOAD` (`ProgLoadOpts::prog_flags`): each bit alone on a trivial
//! program (`r0 = 0; exit`) of each program type, in the running kernel and in bpfkit. The
//! errno must be the same, except for the bits bpfkit refuses by design
//! (docs/differences.md): `BPF_F_XDP_HAS_FRAGS` and `BPF_F_XDP_DEV_BOUND_ONLY`, which Linux
//! accepts for XDP, and `BPF_F_TEST_REG_INVARIANTS` and `BPF_F_TOKEN_FD`. Skips, saying why,
//! where `bpf()` is unavailable.

use bpfkit::prog::load::{ProgLoadAttr, ProgLoadOpts};
use bpfkit_isa::Insn;
use bpfkit_verifier::env::ProgType;

/// Bits bpfkit refuses whatever Linux says: they need features bpfkit does not model.
const REFUSED_BY_DESIGN: u32 = (1 << 5) | (1 << 6) | (1 << 7) | (1 << 16);

fn program() -> Vec<Insn> {
    match bpfkit_isa::asm::kernel::assemble("r0 = 0\nexit\n") {
        Ok(i) => i,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn every_prog_flags_bit_gets_linuxs_errno() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    let insns = program();
    let mut compared = 0;
    let mut problems = Vec::new();
    for prog_type in [ProgType::SocketFilter, ProgType::SchedCls, ProgType::Xdp] {
        for bit in 0..20 {
            let flags = 1u32 << bit;
            let kernel = bpfkit_kernel::ProgLoad {
                license: "GPL",
                prog_flags: flags,
                ..bpfkit_kernel::ProgLoad::new(prog_type.kernel_id())
            }
            .load(insns.as_slice())
            .result
            .map(|_| ())
            .map_err(|e| e.0);
            let bpf = bpfkit::Bpf::new();
            let attr = ProgLoadAttr {
                prog_type,
                insns: &insns,
                license: "GPL",
                log_level: 0,
                log_size: 0,
            };
            let opts = ProgLoadOpts {
                prog_flags: flags,
                ..ProgLoadOpts::default()
            };
            let ours = bpf
                .prog_load_with(&attr, &opts)
                .map(|_| ())
                .map_err(|e| e.errno.code());
            if flags & REFUSED_BY_DESIGN != 0 {
                assert_eq!(ours, Err(22), "{prog_type:?} flag {flags:#x}");
                continue;
            }
            compared += 1;
            if kernel != ours {
                problems.push(format!(
                    "{prog_type:?} prog_flags {flags:#x}: Linux {kernel:?}, bpfkit {ours:?}"
                ));
            }
        }
    }
    println!("{compared} (type, flag) pairs compared with Linux");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
