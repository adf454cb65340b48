//! Differential test: `bpf_trace_printk`'s return value (the length `bstr_printf` gives, without
//! the NUL, with a newline the format holds) from bpfkit's runtime against the live kernel's.
//!
//! A socket filter writes the format on its stack, calls the helper with fixed arguments and
//! returns its result; `BPF_PROG_TEST_RUN` gives the kernel's answer. Skips, saying why, where
//! `bpf()` is unavailable.

use bpfkit::prog::load::ProgLoadAttr;
use bpfkit::prog::run::TestRunAttr;
use bpfkit::Bpf;
use bpfkit_isa::Insn;
use bpfkit_kernel::{names, prog_test_run, ProgLoad};
use bpfkit_verifier::env::ProgType;

/// The program: `fmt` (NUL-terminated) at r10-64.., then
/// `r0 = bpf_trace_printk(fmt, len, a1, a2, a3); exit`.
fn program(fmt: &[u8], args: [i32; 3]) -> Vec<Insn> {
    let mut p: Vec<Insn> = fmt
        .iter()
        .chain(std::iter::once(&0u8))
        .enumerate()
        .map(|(i, b)| Insn::new(0x72, 10, 0, -64 + i as i16, i32::from(*b)))
        .collect();
    p.extend([
        Insn::new(0xbf, 1, 10, 0, 0),                   // r1 = r10
        Insn::new(0x07, 1, 0, 0, -64),                  // r1 += -64
        Insn::new(0xb7, 2, 0, 0, fmt.len() as i32 + 1), // r2 = size with the NUL
        Insn::new(0xb7, 3, 0, 0, args[0]),              // r3 = a1
        Insn::new(0xb7, 4, 0, 0, args[1]),              // r4 = a2
        Insn::new(0xb7, 5, 0, 0, args[2]),              // r5 = a3
        Insn::new(0x85, 0, 0, 0, 6),                    // call bpf_trace_printk
        Insn::new(0x95, 0, 0, 0, 0),                    // exit
    ]);
    p
}

#[test]
fn trace_printk_returns_what_the_kernel_returns() {
    if let Err(why) = bpfkit_kernel::available() {
        println!("skipped: {why}");
        return;
    }
    // Format, arguments, and the text C's printf makes of them (its length is the expected
    // return value, counted by hand).
    let cases: [(&[u8], [i32; 3], &str); 6] = [
        (b"bpfkit\n", [0, 0, 0], "bpfkit\n"),
        (b"no newline", [0, 0, 0], "no newline"),
        (b"x=%d\n", [42, 0, 0], "x=42\n"),
        (b"%d %u %x\n", [-7, 7, 255], "-7 7 ff\n"),
        (b"[%5d|%-4x]", [12, 10, 0], "[   12|a   ]"),
        (b"%lld %llx %%\n", [-1, -1, 0], "-1 ffffffffffffffff %\n"),
    ];
    let packet = [0u8; 64];
    for (fmt, args, text) in cases {
        let insns = program(fmt, args);
        let bytes: Vec<u8> = insns.iter().flat_map(|i| i.to_bytes()).collect();
        let prog = ProgLoad::new(names::PROG_SOCKET_FILTER).load(&bytes[..]);
        let log = prog.log;
        let prog = match prog.result {
            Ok(p) => p,
            Err(e) => panic!("kernel load of {fmt:?}: {e:?}: {log}"),
        };
        let kernel = prog_test_run(&prog, &packet, None, 1).expect("kernel test run");
        let bpf = Bpf::new();
        let loaded = bpf
            .prog_load(&ProgLoadAttr {
                prog_type: ProgType::SocketFilter,
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
        assert_eq!(
            kernel.retval as usize,
            text.len(),
            "kernel, format {text:?}"
        );
        assert_eq!(
            ours.retval,
            kernel.retval,
            "format {:?}",
            String::from_utf8_lossy(fmt)
        );
    }
}
