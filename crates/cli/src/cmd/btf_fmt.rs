//! Map keys and values formatted from their BTF types, as `bpftool map dump` prints them when
//! the map has BTF (`btf_dumper.c`): integers as numbers, structs as objects by member name,
//! arrays as lists, global data sections as objects by variable name.
//!
//! Bitfields, floats and types bpfkit cannot size print as `null`; nothing here fails on a
//! malformed type (it is already through the loader's checks, but a bad type still prints
//! `null`, never panics).

use super::map::json_str;
use bpfkit::loader::btf::{Btf, BtfKind};

/// Nesting deeper than this prints `null` (BTF can describe cycles through pointers only, and
/// pointers are printed as numbers, but a corrupted file should not recurse without end).
const MAX_DEPTH: u32 = 32;

/// `bytes` formatted as type `id` of `btf`, as a JSON value.
#[must_use]
pub fn format(btf: &Btf, id: u32, bytes: &[u8]) -> String {
    let mut out = String::new();
    value(btf, id, bytes, 0, &mut out);
    out
}

/// The `int` encoding word of an INT type: (signed, bit offset, bits).
fn int_encoding(btf: &Btf, t: &bpfkit::loader::btf::BtfType) -> Option<(bool, u32, u32)> {
    let at = t.offset.checked_add(12)?;
    let w = btf.raw.get(at..at.checked_add(4)?)?;
    let enc = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
    Some((enc >> 24 & 1 != 0, enc >> 16 & 0xff, enc & 0xff))
}

fn le_uint(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 8 {
        return None;
    }
    let mut w = [0u8; 8];
    w[..b.len()].copy_from_slice(b);
    Some(u64::from_le_bytes(w))
}

fn value(btf: &Btf, id: u32, bytes: &[u8], depth: u32, out: &mut String) {
    if depth > MAX_DEPTH || format_into(btf, id, bytes, depth, out).is_none() {
        out.push_str("null");
    }
}

fn format_into(btf: &Btf, id: u32, bytes: &[u8], depth: u32, out: &mut String) -> Option<()> {
    let id = btf.skip_mods(id).ok()?;
    let t = btf.get(id).ok()?;
    match t.kind {
        BtfKind::Int => {
            let (signed, bit_off, bits) = int_encoding(btf, t)?;
            let size = usize::try_from(t.size_or_type).ok()?;
            let raw = le_uint(bytes.get(..size)?)?;
            if bit_off != 0 || bits == 0 || bits > 64 {
                return None;
            }
            let raw = if bits < 64 {
                raw & ((1u64 << bits) - 1)
            } else {
                raw
            };
            if bits == 1 && btf.name_of(id).ok() == Some("_Bool") {
                out.push_str(if raw != 0 { "true" } else { "false" });
            } else if signed {
                let shift = 64 - bits;
                out.push_str(&(((raw << shift) as i64) >> shift).to_string());
            } else {
                out.push_str(&raw.to_string());
            }
        }
        BtfKind::Ptr => out.push_str(&le_uint(bytes.get(..8)?)?.to_string()),
        BtfKind::Enum | BtfKind::Enum64 => {
            let size = usize::try_from(t.size_or_type).ok()?;
            out.push_str(&le_uint(bytes.get(..size)?)?.to_string());
        }
        BtfKind::Array => {
            let (elem, n) = t.array?;
            let esize = usize::try_from(btf.size_of(elem).ok()?).ok()?;
            out.push('[');
            for i in 0..usize::try_from(n).ok()? {
                if i > 0 {
                    out.push(',');
                }
                let start = i.checked_mul(esize)?;
                value(
                    btf,
                    elem,
                    bytes.get(start..start.checked_add(esize)?)?,
                    depth + 1,
                    out,
                );
            }
            out.push(']');
        }
        BtfKind::Struct | BtfKind::Union => {
            out.push('{');
            for (i, m) in t.members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let name = btf.str_at(m.name_off).unwrap_or("");
                out.push_str(&json_str(name));
                out.push(':');
                // Bitfields (a bit offset inside a byte, or kind_flag's packed size) print null.
                let bit = m.bit_offset & 0x00ff_ffff;
                if bit % 8 != 0 || m.bit_offset >> 24 != 0 {
                    out.push_str("null");
                    continue;
                }
                let start = usize::try_from(bit / 8).ok()?;
                value(btf, m.type_id, bytes.get(start..)?, depth + 1, out);
            }
            out.push('}');
        }
        BtfKind::Datasec => {
            out.push('{');
            for (i, v) in t.vars.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let var = btf.get(v.type_id).ok()?;
                out.push_str(&json_str(btf.str_at(var.name_off).unwrap_or("")));
                out.push(':');
                let start = usize::try_from(v.offset).ok()?;
                let end = start.checked_add(usize::try_from(v.size).ok()?)?;
                value(
                    btf,
                    var.size_or_type,
                    bytes.get(start..end)?,
                    depth + 1,
                    out,
                );
            }
            out.push('}');
        }
        BtfKind::Var => value(btf, t.size_or_type, bytes, depth + 1, out),
        _ => return None,
    }
    Some(())
}
