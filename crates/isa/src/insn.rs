//! The raw 8-byte instruction slot and the newtypes that index programs.
//!
//! A program is a slice of [`Insn`] slots exactly as the kernel stores it: LD_IMM64 takes two
//! slots, and every instruction index (in errors, logs and jump offsets) counts slots. The
//! encoding is little endian: `code, dst:4|src:4, off:i16, imm:i32` (RFC 9669 §3).

use std::fmt;

/// One 8-byte instruction slot, fields as stored (nothing is validated here).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Insn {
    /// The opcode byte.
    pub code: u8,
    /// Destination register number (low nibble of byte 1).
    pub dst: u8,
    /// Source register number (high nibble of byte 1).
    pub src: u8,
    /// Signed 16-bit offset.
    pub off: i16,
    /// Signed 32-bit immediate.
    pub imm: i32,
}

impl Insn {
    /// Size of one slot in bytes.
    pub const SIZE: usize = 8;

    /// Builds a slot from its fields.
    #[must_use]
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        Self {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    /// Decodes one slot from its 8 bytes in memory order.
    #[must_use]
    pub const fn from_bytes(b: [u8; 8]) -> Self {
        Self {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Encodes the slot into its 8 bytes in memory order. Register fields above 15 are truncated
    /// to their low nibble.
    #[must_use]
    pub const fn to_bytes(self) -> [u8; 8] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [
            self.code,
            (self.dst & 0x0f) | (self.src << 4),
            off[0],
            off[1],
            imm[0],
            imm[1],
            imm[2],
            imm[3],
        ]
    }

    /// The slot as one little-endian 64-bit word (the conformance suite's `-- raw` form).
    #[must_use]
    pub const fn to_u64(self) -> u64 {
        u64::from_le_bytes(self.to_bytes())
    }

    /// The slot from one little-endian 64-bit word.
    #[must_use]
    pub const fn from_u64(word: u64) -> Self {
        Self::from_bytes(word.to_le_bytes())
    }

    /// The instruction class (`opcode & 7`).
    #[must_use]
    pub const fn class(self) -> u8 {
        crate::opcode::class(self.code)
    }

    /// True for the first slot of an LD_IMM64 (`LD | IMM | DW`, opcode 0x18).
    #[must_use]
    pub const fn is_ld_imm64(self) -> bool {
        self.code == crate::opcode::LD | crate::opcode::IMM | crate::opcode::DW
    }
}

impl fmt::Debug for Insn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Insn {{ code: {:#04x}, dst: {}, src: {}, off: {}, imm: {} }}",
            self.code, self.dst, self.src, self.off, self.imm
        )
    }
}

/// Errors turning bytes into slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BytesError {
    /// The input is empty.
    Empty,
    /// The length is not a multiple of 8.
    Truncated {
        /// Input length in bytes.
        len: usize,
    },
}

impl fmt::Display for BytesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "empty program: no instructions"),
            Self::Truncated { len } => write!(
                f,
                "truncated program: {len} bytes is not a multiple of 8 (last instruction, index {}, has {} of 8 bytes)",
                len / 8,
                len % 8
            ),
        }
    }
}

impl std::error::Error for BytesError {}

/// Splits bytes into instruction slots. Fails on empty or truncated input.
pub fn insns_from_bytes(bytes: &[u8]) -> Result<Vec<Insn>, BytesError> {
    if bytes.is_empty() {
        return Err(BytesError::Empty);
    }
    if !bytes.len().is_multiple_of(Insn::SIZE) {
        return Err(BytesError::Truncated { len: bytes.len() });
    }
    Ok(bytes
        .chunks_exact(Insn::SIZE)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            Insn::from_bytes(b)
        })
        .collect())
}

/// Serialises slots back into bytes.
#[must_use]
pub fn insns_to_bytes(insns: &[Insn]) -> Vec<u8> {
    insns.iter().flat_map(|i| i.to_bytes()).collect()
}

/// A register number 0..=10 (r10 is the read-only frame pointer).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Reg(u8);

impl Reg {
    /// Return value / exit code.
    pub const R0: Reg = Reg(0);
    /// First argument (the context at entry).
    pub const R1: Reg = Reg(1);
    /// Second argument.
    pub const R2: Reg = Reg(2);
    /// Third argument.
    pub const R3: Reg = Reg(3);
    /// Fourth argument.
    pub const R4: Reg = Reg(4);
    /// Fifth argument.
    pub const R5: Reg = Reg(5);
    /// Callee-saved.
    pub const R6: Reg = Reg(6);
    /// Callee-saved.
    pub const R7: Reg = Reg(7);
    /// Callee-saved.
    pub const R8: Reg = Reg(8);
    /// Callee-saved.
    pub const R9: Reg = Reg(9);
    /// Frame pointer (read-only).
    pub const R10: Reg = Reg(10);
    /// Number of registers.
    pub const COUNT: usize = 11;

    /// The register with this number, if it is 0..=10.
    #[must_use]
    pub const fn new(n: u8) -> Option<Reg> {
        if n <= 10 {
            Some(Reg(n))
        } else {
            None
        }
    }

    /// The register number.
    #[must_use]
    pub const fn num(self) -> u8 {
        self.0
    }

    /// The register number as an array index.
    #[must_use]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// The index of an instruction slot in a program.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct InsnIdx(pub usize);

impl fmt::Display for InsnIdx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_matches_rfc_layout() {
        // RFC 9669 §3.1: opcode 0x18 (lddw), dst r0, imm 0x55667788 as `0x5566778800000018`.
        let i = Insn::from_u64(0x5566_7788_0000_0018);
        assert_eq!(i.code, 0x18);
        assert_eq!(i.dst, 0);
        assert_eq!(i.imm, 0x5566_7788);
        // dst is the low nibble: `04 10 ...` is add32 with src r1.
        let j = Insn::from_bytes([0x04, 0x10, 0x00, 0x00, 0x01, 0, 0, 0]);
        assert_eq!((j.dst, j.src, j.imm), (0, 1, 1));
        assert_eq!(j.to_bytes(), [0x04, 0x10, 0, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn truncated_and_empty_inputs_are_errors() {
        assert_eq!(insns_from_bytes(&[]), Err(BytesError::Empty));
        assert_eq!(
            insns_from_bytes(&[0; 9]),
            Err(BytesError::Truncated { len: 9 })
        );
        assert_eq!(insns_from_bytes(&[0; 16]).map(|v| v.len()), Ok(2));
    }
}
