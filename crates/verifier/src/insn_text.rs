//! Instruction text in the log: the one printer, `bpfkit_isa::disasm::print_insn` (the kernel's
//! `print_bpf_insn`), with the verifier's choices — helper names from the `Env`, map references
//! spelled with bpfkit's handles (`map[id:N]`) where the kernel prints a kernel address.

use bpfkit_isa::disasm::{print_insn, PrintOptions};
use bpfkit_isa::{Insn, Op};

/// bpfkit's spelling of an LD_IMM64 map reference: `map[id:N]`, `map[id:N][0]+OFF`.
fn map_handle(op: &Op) -> Option<String> {
    match *op {
        Op::LdImm64 { pseudo: 1, imm, .. } => Some(format!("map[id:{imm}]")),
        Op::LdImm64 {
            pseudo: 2,
            imm,
            next_imm,
            ..
        } => Some(format!("map[id:{imm}][0]+{next_imm}")),
        _ => None,
    }
}

/// The text of the instruction at slot `idx` (without the `N: ` prefix or newline), e.g.
/// `(b7) r0 = 0`. `helper_name` names helper ids for calls. Without `allow_ptr_leaks` (an
/// unprivileged load) a map reference prints as `0x0`, as the kernel hides its address.
pub fn insn_text(
    insns: &[Insn],
    idx: usize,
    helper_name: &dyn Fn(i32) -> Option<&'static str>,
    allow_ptr_leaks: bool,
) -> String {
    let handle: &dyn Fn(&Op) -> Option<String> = &map_handle;
    let opts = PrintOptions {
        helper_name: Some(helper_name),
        imm64: allow_ptr_leaks.then_some(handle),
        allow_ptr_leaks,
        ..PrintOptions::default()
    };
    print_insn(insns, idx, &opts)
}
