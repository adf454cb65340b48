//! `.BTF.ext`: per-instruction debug records clang emits beside `.BTF`.
//!
//! Three tables, each grouped by ELF section name (`struct btf_ext_info_sec`): function info
//! (`struct bpf_func_info`: where each function starts and its BTF `FUNC` type), line info
//! (`struct bpf_line_info`: file, line, column and the source line's text, all as `.BTF` string
//! offsets) and CO-RE relocations (`struct bpf_core_relo`). In an object file instruction
//! offsets are in bytes from the start of the section; the kernel wants instruction indices,
//! which the linker computes. The layout is `include/uapi/linux/btf.h` and libbpf's
//! `btf_ext_parse_hdr()`; record sizes come from the file so newer, longer records still parse.

use super::error::LoadError;

/// A function start (`struct bpf_func_info`), offsets still in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFuncInfo {
    /// Byte offset of the function's first instruction in its section.
    pub insn_off: u32,
    /// BTF id of the `FUNC` type.
    pub type_id: u32,
}

/// A source position (`struct bpf_line_info`), offsets still in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawLineInfo {
    /// Byte offset of the instruction in its section.
    pub insn_off: u32,
    /// `.BTF` string offset of the file name.
    pub file_name_off: u32,
    /// `.BTF` string offset of the source line's text.
    pub line_off: u32,
    /// `line << 10 | column`.
    pub line_col: u32,
}

/// A CO-RE relocation (`struct bpf_core_relo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawCoreRelo {
    /// Byte offset of the instruction in its section.
    pub insn_off: u32,
    /// Local BTF type id the access starts from.
    pub type_id: u32,
    /// `.BTF` string offset of the access string (`0:1:2`).
    pub access_str_off: u32,
    /// `enum bpf_core_relo_kind`.
    pub kind: u32,
}

/// Records of one section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecRecords<T> {
    /// `.BTF` string offset of the ELF section name.
    pub sec_name_off: u32,
    /// Records in file order.
    pub records: Vec<T>,
}

/// A parsed `.BTF.ext`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BtfExt {
    /// Function info per section.
    pub func_info: Vec<SecRecords<RawFuncInfo>>,
    /// Line info per section.
    pub line_info: Vec<SecRecords<RawLineInfo>>,
    /// CO-RE relocations per section.
    pub core_relos: Vec<SecRecords<RawCoreRelo>>,
}

fn err(offset: usize, reason: impl Into<String>) -> LoadError {
    LoadError::BtfExt {
        offset,
        reason: reason.into(),
    }
}

fn u32_at(b: &[u8], off: usize) -> Result<u32, LoadError> {
    off.checked_add(4)
        .and_then(|end| b.get(off..end))
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| err(off, "truncated: 4 bytes needed"))
}

/// Parses one info table at `[start, start+len)`: `rec_size`, then per-section blocks.
fn parse_table<T>(
    b: &[u8],
    start: usize,
    len: usize,
    min_rec: usize,
    read: impl Fn(&[u8], usize) -> Result<T, LoadError>,
) -> Result<Vec<SecRecords<T>>, LoadError> {
    let mut out = Vec::new();
    if len == 0 {
        return Ok(out);
    }
    let end = start
        .checked_add(len)
        .filter(|&e| e <= b.len())
        .ok_or_else(|| {
            err(
                start,
                format!(
                    "table of {len} bytes runs past the section ({} bytes)",
                    b.len()
                ),
            )
        })?;
    let b = &b[..end];
    let rec_size = u32_at(b, start)? as usize;
    if rec_size < min_rec || !rec_size.is_multiple_of(4) {
        return Err(err(
            start,
            format!("record size {rec_size} invalid (minimum {min_rec})"),
        ));
    }
    let mut off = start + 4;
    while off < end {
        let sec_name_off = u32_at(b, off)?;
        let num = u32_at(b, off + 4)? as usize;
        off += 8;
        let bytes = num
            .checked_mul(rec_size)
            .filter(|&n| off.checked_add(n).is_some_and(|e| e <= end))
            .ok_or_else(|| {
                err(
                    off,
                    format!("{num} records of {rec_size} bytes run past the table"),
                )
            })?;
        let records = (0..num)
            .map(|i| read(b, off + i * rec_size))
            .collect::<Result<_, _>>()?;
        out.push(SecRecords {
            sec_name_off,
            records,
        });
        off += bytes;
    }
    Ok(out)
}

impl BtfExt {
    /// Parses a `.BTF.ext` section.
    pub fn parse(b: &[u8]) -> Result<Self, LoadError> {
        if b.len() < 24 {
            return Err(err(
                0,
                format!("header needs 24 bytes, section has {}", b.len()),
            ));
        }
        let magic = u16::from_le_bytes([b[0], b[1]]);
        if magic != super::btf::BTF_MAGIC {
            return Err(err(0, format!("bad magic {magic:#06x}")));
        }
        let hdr_len = u32_at(b, 4)? as usize;
        if hdr_len < 24 || hdr_len > b.len() {
            return Err(err(4, format!("header length {hdr_len} out of range")));
        }
        let table = |field: usize| -> Result<(usize, usize), LoadError> {
            let off = u32_at(b, field)? as usize;
            let len = u32_at(b, field + 4)? as usize;
            Ok((hdr_len.saturating_add(off), len))
        };
        let (fi_start, fi_len) = table(8)?;
        let (li_start, li_len) = table(16)?;
        let func_info = parse_table(b, fi_start, fi_len, 8, |b, o| {
            Ok(RawFuncInfo {
                insn_off: u32_at(b, o)?,
                type_id: u32_at(b, o + 4)?,
            })
        })?;
        let line_info = parse_table(b, li_start, li_len, 16, |b, o| {
            Ok(RawLineInfo {
                insn_off: u32_at(b, o)?,
                file_name_off: u32_at(b, o + 4)?,
                line_off: u32_at(b, o + 8)?,
                line_col: u32_at(b, o + 12)?,
            })
        })?;
        // The CO-RE table exists only in headers of 32 bytes or more.
        let core_relos = if hdr_len >= 32 {
            let (cr_start, cr_len) = table(24)?;
            parse_table(b, cr_start, cr_len, 16, |b, o| {
                Ok(RawCoreRelo {
                    insn_off: u32_at(b, o)?,
                    type_id: u32_at(b, o + 4)?,
                    access_str_off: u32_at(b, o + 8)?,
                    kind: u32_at(b, o + 12)?,
                })
            })?
        } else {
            Vec::new()
        };
        Ok(Self {
            func_info,
            line_info,
            core_relos,
        })
    }
}

/// libbpf's name for a CO-RE relocation kind (`enum bpf_core_relo_kind`).
#[must_use]
pub fn core_relo_kind_name(kind: u32) -> &'static str {
    match kind {
        0 => "byte_off",
        1 => "byte_sz",
        2 => "field_exists",
        3 => "signed",
        4 => "lshift_u64",
        5 => "rshift_u64",
        6 => "local_type_id",
        7 => "target_type_id",
        8 => "type_exists",
        9 => "type_size",
        10 => "enumval_exists",
        11 => "enumval_value",
        12 => "type_matches",
        _ => "unknown",
    }
}
