//! bpfkit's spelling of the LD_IMM64 pseudo forms (the kernel prints a resolved address).
//!
//! | src | form                        | spelling                      |
//! |-----|-----------------------------|-------------------------------|
//! | 1   | `BPF_PSEUDO_MAP_FD`         | `map[fd:3]`                   |
//! | 2   | `BPF_PSEUDO_MAP_VALUE`      | `map[fd:3][0]+8`              |
//! | 3   | `BPF_PSEUDO_BTF_ID`         | `btf_var[id:123]`, `btf_var[id:123,fd:7]` |
//! | 4   | `BPF_PSEUDO_FUNC`           | `func[pc+5]`, `func[pc+5,next:7]` |
//! | 5   | `BPF_PSEUDO_MAP_IDX`        | `map[idx:0]`                  |
//! | 6   | `BPF_PSEUDO_MAP_IDX_VALUE`  | `map[idx:0][0]+8`             |
//!
//! `map[...]` follows bpftool's `map[id:N]` and `map[id:N][0]+off` (bpftool names maps by
//! kernel id; a program names them by descriptor or fd-array index). The kernel-syntax
//! assembler reads these back, with or without LLVM's `ll` suffix.

use crate::op::Op;
use crate::opcode as c;

/// The readable text of an LD_IMM64 with a pseudo source (`None` for a plain value or
/// anything that is not an LD_IMM64). Plug it into
/// [`PrintOptions::imm64`](super::PrintOptions::imm64) to print programs that assemble back.
#[must_use]
pub fn readable_imm64(op: &Op) -> Option<String> {
    let Op::LdImm64 {
        pseudo,
        imm,
        next_imm,
        ..
    } = *op
    else {
        return None;
    };
    // A map value offset is unsigned in the kernel (`u32 off = insn[1].imm`).
    let value_off = next_imm as u32;
    Some(match pseudo {
        c::PSEUDO_MAP_FD => format!("map[fd:{imm}]"),
        c::PSEUDO_MAP_VALUE => format!("map[fd:{imm}][0]+{value_off}"),
        c::PSEUDO_BTF_ID if next_imm == 0 => format!("btf_var[id:{imm}]"),
        c::PSEUDO_BTF_ID => format!("btf_var[id:{imm},fd:{next_imm}]"),
        c::PSEUDO_FUNC if next_imm == 0 => format!("func[pc{imm:+}]"),
        c::PSEUDO_FUNC => format!("func[pc{imm:+},next:{next_imm}]"),
        c::PSEUDO_MAP_IDX => format!("map[idx:{imm}]"),
        c::PSEUDO_MAP_IDX_VALUE => format!("map[idx:{imm}][0]+{value_off}"),
        _ => return None,
    })
}
