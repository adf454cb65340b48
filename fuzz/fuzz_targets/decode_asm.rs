//! Fuzzes the decoder, the printer and both assemblers with one input.
//!
//! The bytes are a program: decoding must not panic, and every instruction it accepts must
//! print, in both syntaxes, to text that assembles back to its canonical slots. The same bytes,
//! read as text, go to both assemblers, which must return (an error is fine) without panicking.
#![no_main]

use bpfkit_isa::asm::{conformance, kernel};
use bpfkit_isa::disasm::{print_insn, PrintOptions};
use bpfkit_isa::{decode, insns_from_bytes, Insn};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(insns) = insns_from_bytes(data) {
        check_program(&insns);
    }
    let text = String::from_utf8_lossy(data);
    let _ = conformance::assemble(&text);
    let _ = kernel::assemble(&text);
});

fn check_program(insns: &[Insn]) {
    let _ = bpfkit_isa::decode_all(insns);
    for idx in 0..insns.len() {
        let _ = print_insn(insns, idx, &PrintOptions::default());
        let Ok(op) = decode(insns, idx) else { continue };
        let want = op.encode();
        let text = conformance::print(&op);
        assert_eq!(conformance::assemble(&text).as_deref(), Ok(&want[..]), "conformance `{text}`");
        let text = kernel::print(insns, idx);
        assert_eq!(kernel::assemble(&text).as_deref(), Ok(&want[..]), "kernel `{text}`");
    }
}
