//! Opcode field constants of the eBPF instruction set (RFC 9669 §3, Linux `include/uapi/linux/bpf.h`).
//!
//! An opcode byte is split as `class (3 bits) | ...`: for ALU/JMP classes
//! `op (4 bits) | source (1 bit) | class (3 bits)`, for load/store classes
//! `mode (3 bits) | size (2 bits) | class (3 bits)`. The names are the kernel's, without the
//! `BPF_` prefix.

// Instruction classes (low 3 bits).
/// Non-standard load operations (LD_IMM64, legacy LD_ABS/LD_IND).
pub const LD: u8 = 0x00;
/// Load into register.
pub const LDX: u8 = 0x01;
/// Store immediate.
pub const ST: u8 = 0x02;
/// Store register.
pub const STX: u8 = 0x03;
/// 32-bit arithmetic.
pub const ALU: u8 = 0x04;
/// 64-bit jumps.
pub const JMP: u8 = 0x05;
/// 32-bit jumps.
pub const JMP32: u8 = 0x06;
/// 64-bit arithmetic.
pub const ALU64: u8 = 0x07;

// Sizes (bits 3-4 of load/store opcodes).
/// 4 bytes.
pub const W: u8 = 0x00;
/// 2 bytes.
pub const H: u8 = 0x08;
/// 1 byte.
pub const B: u8 = 0x10;
/// 8 bytes.
pub const DW: u8 = 0x18;

// Modes (bits 5-7 of load/store opcodes).
/// 64-bit immediate (with `LD | DW`).
pub const IMM: u8 = 0x00;
/// Legacy packet access, absolute offset.
pub const ABS: u8 = 0x20;
/// Legacy packet access, register + offset.
pub const IND: u8 = 0x40;
/// Regular memory access.
pub const MEM: u8 = 0x60;
/// Sign-extending load.
pub const MEMSX: u8 = 0x80;
/// Atomic read-modify-write.
pub const ATOMIC: u8 = 0xc0;

// Source bit (bit 3 of ALU/JMP opcodes).
/// Operand is the 32-bit immediate.
pub const K: u8 = 0x00;
/// Operand is the source register.
pub const X: u8 = 0x08;
/// `END` byte-order conversion to little endian (shares the source bit).
pub const TO_LE: u8 = 0x00;
/// `END` byte-order conversion to big endian (shares the source bit).
pub const TO_BE: u8 = 0x08;

// ALU operations (high 4 bits).
/// dst += src
pub const ADD: u8 = 0x00;
/// dst -= src
pub const SUB: u8 = 0x10;
/// dst *= src
pub const MUL: u8 = 0x20;
/// dst /= src (offset 1: signed)
pub const DIV: u8 = 0x30;
/// dst |= src
pub const OR: u8 = 0x40;
/// dst &= src
pub const AND: u8 = 0x50;
/// dst <<= src
pub const LSH: u8 = 0x60;
/// dst >>= src (logical)
pub const RSH: u8 = 0x70;
/// dst = -dst
pub const NEG: u8 = 0x80;
/// dst %= src (offset 1: signed)
pub const MOD: u8 = 0x90;
/// dst ^= src
pub const XOR: u8 = 0xa0;
/// dst = src (offset 8/16/32: sign-extending)
pub const MOV: u8 = 0xb0;
/// dst >>= src (arithmetic)
pub const ARSH: u8 = 0xc0;
/// byte-order conversion
pub const END: u8 = 0xd0;

// Jump operations (high 4 bits).
/// unconditional jump
pub const JA: u8 = 0x00;
/// jump if equal
pub const JEQ: u8 = 0x10;
/// jump if greater (unsigned)
pub const JGT: u8 = 0x20;
/// jump if greater or equal (unsigned)
pub const JGE: u8 = 0x30;
/// jump if `dst & src` is not zero
pub const JSET: u8 = 0x40;
/// jump if not equal
pub const JNE: u8 = 0x50;
/// jump if greater (signed)
pub const JSGT: u8 = 0x60;
/// jump if greater or equal (signed)
pub const JSGE: u8 = 0x70;
/// function call
pub const CALL: u8 = 0x80;
/// return
pub const EXIT: u8 = 0x90;
/// jump if less (unsigned)
pub const JLT: u8 = 0xa0;
/// jump if less or equal (unsigned)
pub const JLE: u8 = 0xb0;
/// jump if less (signed)
pub const JSLT: u8 = 0xc0;
/// jump if less or equal (signed)
pub const JSLE: u8 = 0xd0;

/// `JMP | JCOND`: the `may_goto` family (src selects the condition).
pub const JCOND: u8 = 0xe0;
/// JCOND src: `may_goto`.
pub const MAY_GOTO: u8 = 0;

// Atomic operations (in the immediate of `STX | ATOMIC`).
/// Also return the old value (or-ed into the atomic op).
pub const FETCH: i32 = 0x01;
/// Exchange (always with FETCH).
pub const XCHG: i32 = 0xe0 | FETCH;
/// Compare and exchange (always with FETCH).
pub const CMPXCHG: i32 = 0xf0 | FETCH;
/// Load-acquire (`BPF_LOAD_ACQ`, `BPF_ATOMIC_LOAD | BPF_ACQUIRE`).
pub const LOAD_ACQ: i32 = 0x100;
/// Store-release (`BPF_STORE_REL`, `BPF_ATOMIC_STORE | BPF_RELEASE`).
pub const STORE_REL: i32 = 0x110;
/// `ALU64 | MOV | X` offset of an arena address-space cast.
pub const ADDR_SPACE_CAST: i16 = 1;

// Pseudo source registers.
/// LD_IMM64: imm is a map file descriptor.
pub const PSEUDO_MAP_FD: u8 = 1;
/// LD_IMM64: imm is a map fd, the next imm an offset into its value.
pub const PSEUDO_MAP_VALUE: u8 = 2;
/// LD_IMM64: imm is a BTF id of a kernel variable.
pub const PSEUDO_BTF_ID: u8 = 3;
/// LD_IMM64: imm is the relative offset of a function.
pub const PSEUDO_FUNC: u8 = 4;
/// LD_IMM64: imm is an index into the program's fd array (a map).
pub const PSEUDO_MAP_IDX: u8 = 5;
/// LD_IMM64: imm is an index into the fd array, the next imm an offset into the map value.
pub const PSEUDO_MAP_IDX_VALUE: u8 = 6;
/// CALL: imm is the relative offset of a local function.
pub const PSEUDO_CALL: u8 = 1;
/// CALL: imm is the BTF id of a kernel function.
pub const PSEUDO_KFUNC_CALL: u8 = 2;

/// The class of an opcode.
#[must_use]
pub const fn class(code: u8) -> u8 {
    code & 0x07
}
/// The size field of a load/store opcode.
#[must_use]
pub const fn size(code: u8) -> u8 {
    code & 0x18
}
/// The mode field of a load/store opcode.
#[must_use]
pub const fn mode(code: u8) -> u8 {
    code & 0xe0
}
/// The operation field of an ALU/JMP opcode.
#[must_use]
pub const fn op(code: u8) -> u8 {
    code & 0xf0
}
/// The source bit of an ALU/JMP opcode.
#[must_use]
pub const fn source(code: u8) -> u8 {
    code & 0x08
}
/// Bytes accessed by a load/store of the given size field.
#[must_use]
pub const fn size_bytes(size: u8) -> u32 {
    match size {
        W => 4,
        H => 2,
        B => 1,
        _ => 8,
    }
}
