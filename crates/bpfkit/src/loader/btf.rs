//! BTF (BPF Type Format): the `.BTF` section clang emits with `-g`.
//!
//! The loader needs BTF for three things: map definitions in `.maps` (whose members encode the
//! map's type, sizes and limits in the *types* of struct members), the names of functions, and
//! the strings that `.BTF.ext` line info points at (file names and source lines). This parser
//! reads the header and every type record of `include/uapi/linux/btf.h` (kinds 1..=19), checking
//! each length against the section, and keeps the raw bytes so that the whole blob can be handed
//! to a kernel unchanged. It does not validate the type graph the way the kernel's
//! `btf_check_all_metas()` does; lookups that walk the graph are depth-limited so that a cyclic
//! or dangling graph gives an error, never a loop or a panic.

use super::error::LoadError;

/// `BTF_MAGIC`.
pub const BTF_MAGIC: u16 = 0xeb9f;
/// Deepest chain of modifiers/typedefs/arrays followed before giving up (libbpf uses 32).
const MAX_RESOLVE_DEPTH: usize = 32;

/// The kind of a BTF type (`BTF_KIND_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[expect(
    missing_docs,
    reason = "variants are the kernel's BTF_KIND_* names, documented there"
)]
pub enum BtfKind {
    Void,
    Int,
    Ptr,
    Array,
    Struct,
    Union,
    Enum,
    Fwd,
    Typedef,
    Volatile,
    Const,
    Restrict,
    Func,
    FuncProto,
    Var,
    Datasec,
    Float,
    DeclTag,
    TypeTag,
    Enum64,
}

impl BtfKind {
    fn from_raw(kind: u32) -> Option<Self> {
        Some(match kind {
            1 => Self::Int,
            2 => Self::Ptr,
            3 => Self::Array,
            4 => Self::Struct,
            5 => Self::Union,
            6 => Self::Enum,
            7 => Self::Fwd,
            8 => Self::Typedef,
            9 => Self::Volatile,
            10 => Self::Const,
            11 => Self::Restrict,
            12 => Self::Func,
            13 => Self::FuncProto,
            14 => Self::Var,
            15 => Self::Datasec,
            16 => Self::Float,
            17 => Self::DeclTag,
            18 => Self::TypeTag,
            19 => Self::Enum64,
            _ => return None,
        })
    }
}

/// A struct or union member (`struct btf_member`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BtfMember {
    /// Offset of the name in the string section.
    pub name_off: u32,
    /// Type id of the member.
    pub type_id: u32,
    /// Bit offset (the low 24 bits when the struct's kind_flag is set).
    pub bit_offset: u32,
}

/// A variable of a data section (`struct btf_var_secinfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BtfVarSecinfo {
    /// Type id of the `VAR`.
    pub type_id: u32,
    /// Byte offset of the variable in its section.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
}

/// One BTF type record, with the kind-specific data the loader uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtfType {
    /// The kind.
    pub kind: BtfKind,
    /// Offset of the name in the string section (0: anonymous).
    pub name_off: u32,
    /// `vlen` from `info` (members, parameters, enumerators, variables; linkage of a FUNC).
    pub vlen: u16,
    /// `size` (INT, STRUCT, UNION, ENUM, DATASEC, FLOAT) or `type` (PTR, TYPEDEF, modifiers,
    /// FUNC, FUNC_PROTO, VAR, DECL_TAG): the raw third word.
    pub size_or_type: u32,
    /// ARRAY: element type and element count.
    pub array: Option<(u32, u32)>,
    /// STRUCT/UNION members.
    pub members: Vec<BtfMember>,
    /// DATASEC variables.
    pub vars: Vec<BtfVarSecinfo>,
    /// Byte offset of this record inside `.BTF` (for error messages).
    pub offset: usize,
}

/// A parsed `.BTF` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Btf {
    /// The section's bytes exactly as in the object.
    pub raw: Vec<u8>,
    /// Types by id; index 0 is `void`.
    pub types: Vec<BtfType>,
    str_start: usize,
    str_len: usize,
}

fn err(offset: usize, reason: impl Into<String>) -> LoadError {
    LoadError::Btf {
        offset,
        reason: reason.into(),
    }
}

/// Reads a little-endian u32 at `off`, or an error naming the offset.
fn u32_at(b: &[u8], off: usize) -> Result<u32, LoadError> {
    off.checked_add(4)
        .and_then(|end| b.get(off..end))
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| err(off, "truncated: 4 bytes needed"))
}

impl Btf {
    /// Parses a `.BTF` section (little-endian only: the BPF target's byte order here).
    pub fn parse(raw: &[u8]) -> Result<Self, LoadError> {
        if raw.len() < 24 {
            return Err(err(
                0,
                format!("header needs 24 bytes, section has {}", raw.len()),
            ));
        }
        let magic = u16::from_le_bytes([raw[0], raw[1]]);
        if magic != BTF_MAGIC {
            return Err(err(
                0,
                format!("bad magic {magic:#06x} (expected 0xeb9f, little endian)"),
            ));
        }
        if raw[2] != 1 {
            return Err(err(2, format!("unsupported version {}", raw[2])));
        }
        let hdr_len = u32_at(raw, 4)? as usize;
        let (type_off, type_len) = (u32_at(raw, 8)? as usize, u32_at(raw, 12)? as usize);
        let (str_off, str_len) = (u32_at(raw, 16)? as usize, u32_at(raw, 20)? as usize);
        if hdr_len < 24 || hdr_len > raw.len() {
            return Err(err(4, format!("header length {hdr_len} out of range")));
        }
        let region = |off: usize, len: usize, what: &str| {
            hdr_len
                .checked_add(off)
                .and_then(|s| s.checked_add(len).map(|e| (s, e)))
                .filter(|&(_, e)| e <= raw.len())
                .ok_or_else(|| {
                    err(
                        hdr_len,
                        format!("{what} section ({off}+{len}) beyond the end"),
                    )
                })
        };
        let (t_start, t_end) = region(type_off, type_len, "type")?;
        let (s_start, _) = region(str_off, str_len, "string")?;
        if str_len == 0 || raw[s_start] != 0 {
            return Err(err(s_start, "string section must start with a NUL byte"));
        }
        let mut btf = Self {
            raw: raw.to_vec(),
            types: Vec::new(),
            str_start: s_start,
            str_len,
        };
        btf.types.push(BtfType {
            kind: BtfKind::Void,
            name_off: 0,
            vlen: 0,
            size_or_type: 0,
            array: None,
            members: Vec::new(),
            vars: Vec::new(),
            offset: 0,
        });
        let mut off = t_start;
        while off < t_end {
            let (ty, next) = Self::parse_type(&raw[..t_end], off)?;
            btf.types.push(ty);
            off = next;
        }
        Ok(btf)
    }

    fn parse_type(b: &[u8], off: usize) -> Result<(BtfType, usize), LoadError> {
        let name_off = u32_at(b, off)?;
        let info = u32_at(b, off + 4)?;
        let size_or_type = u32_at(b, off + 8)?;
        let raw_kind = (info >> 24) & 0x1f;
        let kind = BtfKind::from_raw(raw_kind)
            .ok_or_else(|| err(off, format!("unknown type kind {raw_kind}")))?;
        let vlen = (info & 0xffff) as u16;
        let kind_flag = info >> 31 == 1;
        let body = off + 12;
        let mut ty = BtfType {
            kind,
            name_off,
            vlen,
            size_or_type,
            array: None,
            members: Vec::new(),
            vars: Vec::new(),
            offset: off,
        };
        let n = usize::from(vlen);
        let end = match kind {
            BtfKind::Int | BtfKind::Var | BtfKind::DeclTag => body + 4,
            BtfKind::Array => {
                ty.array = Some((u32_at(b, body)?, u32_at(b, body + 8)?));
                body + 12
            }
            BtfKind::Struct | BtfKind::Union => {
                for i in 0..n {
                    let m = body + 12 * i;
                    let raw_off = u32_at(b, m + 8)?;
                    ty.members.push(BtfMember {
                        name_off: u32_at(b, m)?,
                        type_id: u32_at(b, m + 4)?,
                        bit_offset: if kind_flag {
                            raw_off & 0x00ff_ffff
                        } else {
                            raw_off
                        },
                    });
                }
                body + 12 * n
            }
            BtfKind::Enum | BtfKind::FuncProto => body + 8 * n,
            BtfKind::Enum64 => body + 12 * n,
            BtfKind::Datasec => {
                for i in 0..n {
                    let v = body + 12 * i;
                    ty.vars.push(BtfVarSecinfo {
                        type_id: u32_at(b, v)?,
                        offset: u32_at(b, v + 4)?,
                        size: u32_at(b, v + 8)?,
                    });
                }
                body + 12 * n
            }
            _ => body,
        };
        if end > b.len() {
            return Err(err(
                off,
                format!("type record ({kind:?}) runs past the type section"),
            ));
        }
        Ok((ty, end))
    }

    /// The type with id `id`.
    pub fn get(&self, id: u32) -> Result<&BtfType, LoadError> {
        self.types.get(id as usize).ok_or_else(|| {
            err(
                0,
                format!("type id {id} out of range ({} types)", self.types.len()),
            )
        })
    }

    /// The NUL-terminated string at `off` in the string section.
    pub fn str_at(&self, off: u32) -> Result<&str, LoadError> {
        let off = off as usize;
        if off >= self.str_len {
            return Err(err(
                self.str_start,
                format!("string offset {off} beyond {}", self.str_len),
            ));
        }
        let start = self.str_start + off;
        let tail = &self.raw[start..self.str_start + self.str_len];
        let len = tail
            .iter()
            .position(|&c| c == 0)
            .ok_or_else(|| err(start, "string not NUL-terminated"))?;
        std::str::from_utf8(&tail[..len]).map_err(|_| err(start, "string is not UTF-8"))
    }

    /// The name of type `id` ("" when anonymous).
    pub fn name_of(&self, id: u32) -> Result<&str, LoadError> {
        self.str_at(self.get(id)?.name_off)
    }

    /// Follows typedefs and modifiers (const, volatile, restrict, type tags) to the type they
    /// qualify; returns its id.
    pub fn skip_mods(&self, mut id: u32) -> Result<u32, LoadError> {
        for _ in 0..MAX_RESOLVE_DEPTH {
            let t = self.get(id)?;
            match t.kind {
                BtfKind::Typedef
                | BtfKind::Volatile
                | BtfKind::Const
                | BtfKind::Restrict
                | BtfKind::TypeTag => id = t.size_or_type,
                _ => return Ok(id),
            }
        }
        Err(err(
            self.get(id)?.offset,
            format!("type chain from id {id} too deep or cyclic"),
        ))
    }

    /// The size in bytes of type `id`, as C's `sizeof` (libbpf's `btf__resolve_size`).
    pub fn size_of(&self, id: u32) -> Result<u64, LoadError> {
        let mut mult: u64 = 1;
        let mut id = id;
        for _ in 0..MAX_RESOLVE_DEPTH {
            id = self.skip_mods(id)?;
            let t = self.get(id)?;
            let size = match t.kind {
                BtfKind::Int
                | BtfKind::Struct
                | BtfKind::Union
                | BtfKind::Enum
                | BtfKind::Enum64
                | BtfKind::Datasec
                | BtfKind::Float => u64::from(t.size_or_type),
                BtfKind::Ptr => 8,
                BtfKind::Var => {
                    id = t.size_or_type;
                    continue;
                }
                BtfKind::Array => {
                    let (elem, nelems) = t.array.unwrap_or((0, 0));
                    mult = mult
                        .checked_mul(u64::from(nelems))
                        .ok_or_else(|| err(t.offset, "array size overflows"))?;
                    id = elem;
                    continue;
                }
                other => {
                    return Err(err(
                        t.offset,
                        format!("type id {id} ({other:?}) has no size"),
                    ));
                }
            };
            return size
                .checked_mul(mult)
                .ok_or_else(|| err(t.offset, "type size overflows"));
        }
        Err(err(
            0,
            format!("type chain from id {id} too deep or cyclic"),
        ))
    }

    /// The id of the `DATASEC` named `name`, if any.
    pub fn datasec(&self, name: &str) -> Option<u32> {
        (1..self.types.len()).find_map(|i| {
            let t = &self.types[i];
            (t.kind == BtfKind::Datasec && self.str_at(t.name_off).ok() == Some(name))
                .then_some(i as u32)
        })
    }

    /// The blob with every `DATASEC`'s size and variable offsets filled in, as libbpf's
    /// `btf_fixup_datasec()` does before `BPF_BTF_LOAD`: clang leaves them 0 for the linker, and
    /// the kernel rejects a variable outside its section. `section_size` gives an ELF section's
    /// size by name, `var_offset` a variable's offset (its symbol's value) by section and name;
    /// sections or variables they do not know are left as they are.
    pub fn with_datasecs_fixed(
        &self,
        section_size: impl Fn(&str) -> Option<u32>,
        var_offset: impl Fn(&str, &str) -> Option<u32>,
    ) -> Result<Vec<u8>, LoadError> {
        let mut raw = self.raw.clone();
        for t in self.types.iter().filter(|t| t.kind == BtfKind::Datasec) {
            let sec = self.str_at(t.name_off)?;
            let Some(size) = section_size(sec) else {
                continue;
            };
            raw[t.offset + 8..t.offset + 12].copy_from_slice(&size.to_le_bytes());
            for (i, v) in t.vars.iter().enumerate() {
                let var = self.get(v.type_id)?;
                if let Some(off) = var_offset(sec, self.str_at(var.name_off)?) {
                    let at = t.offset + 12 + 12 * i + 4;
                    raw[at..at + 4].copy_from_slice(&off.to_le_bytes());
                }
            }
        }
        Ok(raw)
    }
}
