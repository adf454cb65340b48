//! Loads through a map pointer (`check_ptr_to_map_access` and `btf_struct_walk`): a
//! privileged program may read the fields of the map's kernel struct (`struct bpf_array`,
//! `struct bpf_htab`, ... each starting with `struct bpf_map`), typed by the kernel's BTF,
//! never write them.
//!
//! The layouts come from [`super::map_struct`]. A read of an integer or enum field gives an
//! unknown scalar of the access size, as in Linux. A read of a pointer field gives, as in
//! Linux, a `PTR_TO_BTF_ID` ([`RegType::BtfPtr`]) when it points to a struct, read-only
//! untrusted memory ([`RegType::UntrustedMem`]) otherwise; the program may read through them
//! in turn ([`btf_access`]) where bpfkit describes the pointee (`struct bpf_map`, `struct
//! bpf_map_ops`, ...). Such loads are probe reads in Linux (a fault reads 0); the runtime turns
//! them into `dst = 0`, since the pointer fields of its map images are all NULL.

use super::map_struct::{map_struct, Ty, LARGEST_MAP_STRUCT, TYPES};
use crate::env::AccessKind;
use crate::reject::{Errno, Reject};
use crate::state::{MapRef, RegState, RegType};

/// What a walk found at the accessed bytes (`enum bpf_struct_walk_result`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Walk {
    /// An integer, an enum, or bytes inside an integer array (`WALK_SCALAR`).
    Scalar,
    /// A whole pointer member: to a struct (`WALK_PTR`, a `PTR_TO_BTF_ID` in Linux) or to
    /// anything else (`WALK_PTR_UNTRUSTED`).
    Ptr {
        /// Whether the pointee is a struct or union.
        to_struct: bool,
        /// The pointer type in [`TYPES`] (its pointee's name and description).
        ptr: u16,
    },
}

/// A name as `__btf_name_by_offset` gives it: `(anon)` for none.
fn btf_name(name: &'static str) -> &'static str {
    if name.is_empty() {
        "(anon)"
    } else {
        name
    }
}

fn ty(i: u16) -> Ty {
    TYPES
        .get(usize::from(i))
        .copied()
        .unwrap_or(Ty::Scalar { size: 0, int: true })
}

fn size_of(t: Ty) -> u32 {
    match t {
        Ty::Scalar { size, .. } | Ty::Struct { size, .. } => size,
        Ty::Ptr { .. } => 8,
        Ty::Array { elem, nelems, .. } => nelems.saturating_mul(size_of(ty(elem))),
    }
}

/// `btf_struct_access` on struct `root` for `size` bytes at `off` (≥ 0): what the bytes are,
/// or the kernel's message and errno.
///
/// # Errors
/// `access beyond struct ...`, `access beyond the end of member ...`, `cannot access ptr
/// member ...` (`EACCES`), `struct ... doesn't have field at offset ...` (`EINVAL`).
pub fn struct_walk(root: u16, off: u32, size: u32) -> Result<Walk, (Errno, String)> {
    let mut t = root;
    let mut off = off;
    // `PTR_UNTRUSTED`: set when the walk goes through a union of more than one member.
    let mut untrusted = false;
    // Each nested struct is at most one level deeper; the table is finite and acyclic by value.
    for _ in 0..TYPES.len() + 1 {
        let Ty::Struct {
            name,
            size: tsize,
            union,
            members,
        } = ty(t)
        else {
            return Err((Errno::EINVAL, "Type '(anon)' is not a struct".into()));
        };
        let tname = btf_name(name);
        if union && members.len() != 1 {
            untrusted = true;
        }
        if u64::from(off) + u64::from(size) > u64::from(tsize) {
            // A flexible array member at the end may be read past the struct's size.
            let beyond = || {
                (
                    Errno::EACCES,
                    format!("access beyond struct {tname} at off {off} size {size}"),
                )
            };
            let last = members.last().ok_or_else(beyond)?;
            let Ty::Array {
                first_elem,
                first_nelems: 0,
                ..
            } = ty(last.ty)
            else {
                return Err(beyond());
            };
            let moff = last.bit_offset / 8;
            if off < moff {
                return Err(beyond());
            }
            match ty(first_elem) {
                Ty::Scalar { int: true, .. } => return Ok(Walk::Scalar),
                Ty::Struct { size: esize, .. } if esize > 0 => {
                    off = (off - moff) % esize;
                    t = first_elem;
                    continue;
                }
                _ => return Err(beyond()),
            }
        }
        let mut next = None;
        for member in members {
            let mut moff = member.bit_offset / 8;
            if u64::from(off) + u64::from(size) <= u64::from(moff) {
                break;
            }
            if member.bitfield_size != 0 {
                let end_bit = member.bit_offset + member.bitfield_size;
                if off <= moff && end_bit.div_ceil(8) <= off + size {
                    return Ok(Walk::Scalar);
                }
                continue;
            }
            if off < moff {
                break;
            }
            let mut mtype = ty(member.ty);
            let mut mtype_idx = member.ty;
            let mut msize = size_of(mtype);
            let mtrue_end = moff + msize;
            if off >= mtrue_end {
                continue;
            }
            if let Ty::Array { elem, nelems, .. } = mtype {
                if nelems == 0 {
                    continue;
                }
                msize /= nelems;
                if msize == 0 {
                    continue;
                }
                moff += (off - moff) / msize * msize;
                mtype = ty(elem);
                mtype_idx = elem;
            }
            match mtype {
                Ty::Struct { .. } => {
                    // Continue inside the member (`WALK_STRUCT` at its start, else `goto again`).
                    next = Some((mtype_idx, off - moff));
                    break;
                }
                Ty::Ptr { to_struct, .. } => {
                    if msize != size || off != moff {
                        return Err((
                            Errno::EACCES,
                            format!(
                                "cannot access ptr member {} with moff {moff} in struct {tname} with off {off} size {size}",
                                btf_name(member.name)
                            ),
                        ));
                    }
                    return Ok(Walk::Ptr {
                        to_struct,
                        ptr: mtype_idx,
                    });
                }
                _ => {
                    if off + size > mtrue_end && !untrusted {
                        return Err((
                            Errno::EACCES,
                            format!(
                                "access beyond the end of member {} (mend:{mtrue_end}) in struct {tname} with off {off} size {size}",
                                btf_name(member.name)
                            ),
                        ));
                    }
                    return Ok(Walk::Scalar);
                }
            }
        }
        match next {
            Some((inner, inner_off)) => {
                t = inner;
                off = inner_off;
            }
            None => {
                return Err((
                    Errno::EINVAL,
                    format!("struct {tname} doesn't have field at offset {off}"),
                ))
            }
        }
    }
    Err((Errno::EINVAL, "struct walk does not end".into()))
}

/// The name of a struct in the table.
fn struct_name(i: u16) -> &'static str {
    match ty(i) {
        Ty::Struct { name, .. } => name,
        _ => "",
    }
}

/// `check_ptr_to_map_access` for a load or store of `size` bytes at `off` (the instruction's
/// offset plus the register's fixed offset) through register `regno`, a pointer to `map`.
/// Returns the loaded value's state for a read.
///
/// # Errors
/// The kernel's messages: `R1 is bpf_array invalid negative access: off=-8`, `only read from
/// bpf_array is supported`, and the struct walk's ([`struct_walk`]). A map type whose struct
/// bpfkit does not describe, or a read past the struct into a flexible array, is refused with
/// `map_ptr access not supported ...` (`ENOTSUPP`).
pub fn access(
    idx: usize,
    regno: u8,
    map: &MapRef,
    off: i32,
    size: u32,
    kind: AccessKind,
) -> Result<RegState, Reject> {
    let root = map_struct(map.type_id).ok_or_else(|| {
        Reject::new(
            Errno::ENOTSUPP,
            idx,
            format!("map_ptr access not supported for map type {}", map.type_id),
        )
    })?;
    let tname = struct_name(root);
    if off < 0 {
        return Err(Reject::new(
            Errno::EACCES,
            idx,
            format!("R{regno} is {tname} invalid negative access: off={off}"),
        ));
    }
    if kind != AccessKind::Read {
        return Err(Reject::new(
            Errno::EACCES,
            idx,
            format!("only read from {tname} is supported"),
        ));
    }
    let off = off as u32;
    let walk = struct_walk(root, off, size).map_err(|(errno, msg)| Reject::new(errno, idx, msg))?;
    if u64::from(off) + u64::from(size) > u64::from(LARGEST_MAP_STRUCT.min(size_of(ty(root)))) {
        // Linux reads the flexible array's elements (queue/stack slots, bloom filter bits);
        // bpfkit's image of the map ends with the struct.
        return Err(Reject::new(
            Errno::ENOTSUPP,
            idx,
            format!(
                "map_ptr access not supported by bpfkit past the end of struct {tname} (off {off} size {size})"
            ),
        ));
    }
    Ok(loaded(walk))
}

/// The register a load gets from what the walk found (`mark_btf_ld_reg`).
fn loaded(walk: Walk) -> RegState {
    match walk {
        Walk::Scalar => RegState::unknown(),
        Walk::Ptr { to_struct, ptr } => RegState {
            range: u32::from(ptr),
            ..RegState::pointer(if to_struct {
                RegType::BtfPtr
            } else {
                RegType::UntrustedMem
            })
        },
    }
}

/// The pointee's name of a `BtfPtr` register (its `range` is the pointer's type).
#[must_use]
pub fn pointee_name(ptr: u32) -> &'static str {
    match u16::try_from(ptr).map(ty) {
        Ok(Ty::Ptr { pointee, .. }) => pointee,
        _ => "",
    }
}

/// Loads and stores through a `BtfPtr` (`check_ptr_to_btf_access`) or an `UntrustedMem`
/// register (the `PTR_TO_MEM` branch of `check_mem_access`); `off` is the instruction's
/// offset plus the register's fixed offset.
///
/// # Errors
/// `R2 is ptr_bpf_map invalid negative access: off=-8`, `... invalid variable offset: off=76,
/// var_off=(0x0; 0x8)`, `only read is supported`, `R2 cannot write into
/// rdonly_untrusted_mem`, the struct walk's messages; `ENOTSUPP` for a struct bpfkit does not
/// describe.
pub fn btf_access(
    idx: usize,
    regno: u8,
    reg: &RegState,
    off: i32,
    size: u32,
    kind: AccessKind,
) -> Result<RegState, Reject> {
    if reg.ty == RegType::UntrustedMem {
        if kind != AccessKind::Read {
            return Err(Reject::new(
                Errno::EACCES,
                idx,
                format!("R{regno} cannot write into rdonly_untrusted_mem"),
            ));
        }
        // A probe read: any offset, the value unknown.
        return Ok(RegState::unknown());
    }
    let name = pointee_name(reg.range);
    if off < 0 {
        return Err(Reject::new(
            Errno::EACCES,
            idx,
            format!("R{regno} is ptr_{name} invalid negative access: off={off}"),
        ));
    }
    if reg.var.const_value() != Some(0) {
        let t = reg.var.var_off;
        return Err(Reject::new(
            Errno::EACCES,
            idx,
            format!(
                "R{regno} is ptr_{name} invalid variable offset: off={off}, var_off=({:#x}; {:#x})",
                t.value, t.mask
            ),
        ));
    }
    if kind != AccessKind::Read {
        return Err(Reject::new(Errno::EACCES, idx, "only read is supported"));
    }
    let target = match u16::try_from(reg.range).map(ty) {
        Ok(Ty::Ptr {
            target: Some(t), ..
        }) => t,
        _ => {
            return Err(Reject::new(
                Errno::ENOTSUPP,
                idx,
                format!(
                "bpfkit does not describe struct {name} (BTF of the kernel beyond the map structs)"
            ),
            ))
        }
    };
    let walk = struct_walk(target, off as u32, size)
        .map_err(|(errno, msg)| Reject::new(errno, idx, msg))?;
    Ok(loaded(walk))
}

/// Where a field of `struct bpf_map` or of a map type's struct lies: its byte offset from the
/// start of the struct `root` and its size, by member names from the root (`["map",
/// "max_entries"]` in `bpf_array`). `None` if there is no such member.
#[must_use]
pub fn field(root: u16, path: &[&str]) -> Option<(u32, u32)> {
    let mut t = root;
    let mut base = 0;
    let mut size = size_of(ty(root));
    for name in path {
        let Ty::Struct { members, .. } = ty(t) else {
            return None;
        };
        let member = members.iter().find(|m| m.name == *name)?;
        base += member.bit_offset / 8;
        t = member.ty;
        size = size_of(ty(t));
    }
    Some((base, size))
}

#[cfg(test)]
mod tests {
    //! Expected messages are Linux 6.18's for the same loads (tests/verifier/mapptr.cases and
    //! the map pointer sweep in crates/bpfkit/tests/map_ptr_sweep.rs).
    use super::super::map_struct::{BPF_ARRAY, BPF_HTAB, BPF_MAP};
    use super::*;

    #[test]
    fn fields_of_bpf_map_are_scalars_or_pointers() {
        assert_eq!(struct_walk(BPF_ARRAY, 76, 4), Ok(Walk::Scalar));
        assert_eq!(struct_walk(BPF_ARRAY, 68, 2), Ok(Walk::Scalar));
        assert_eq!(
            struct_walk(BPF_ARRAY, 40, 8),
            Ok(Walk::Ptr {
                to_struct: true,
                ptr: 5
            })
        );
        assert_eq!(struct_walk(BPF_ARRAY, 296, 4), Ok(Walk::Scalar));
    }

    #[test]
    fn bad_reads_get_the_kernels_messages() {
        let err = |root, off, size| struct_walk(root, off, size).map_err(|(_, m)| m);
        assert_eq!(
            err(BPF_HTAB, 68, 8),
            Err("access beyond the end of member key_size (mend:72) in struct bpf_map with off 68 size 8".into())
        );
        assert_eq!(
            err(BPF_ARRAY, 40, 4),
            Err(
                "cannot access ptr member ops with moff 40 in struct bpf_map with off 40 size 4"
                    .into()
            )
        );
        assert_eq!(
            err(BPF_ARRAY, 36, 4),
            Err("struct bpf_map doesn't have field at offset 36".into())
        );
        assert_eq!(
            err(BPF_ARRAY, 292, 8),
            Err("access beyond struct bpf_map at off 292 size 8".into())
        );
        assert_eq!(
            err(BPF_ARRAY, 312, 8),
            Err("access beyond struct bpf_array at off 312 size 8".into())
        );
    }

    #[test]
    fn every_offset_of_every_struct_gets_an_answer() {
        // No panic and no endless walk for any offset an instruction can hold.
        for root in 0..TYPES.len() as u16 {
            if !matches!(ty(root), Ty::Struct { .. }) {
                continue;
            }
            for off in (0..40_000).step_by(7) {
                for size in [1, 2, 4, 8] {
                    let _ = struct_walk(root, off, size);
                }
            }
        }
    }

    #[test]
    fn pointer_fields_give_typed_pointers_that_can_be_read_through() {
        use crate::state::RegType;
        // bpf_map.inner_map_meta: struct bpf_map *.
        let Ok(Walk::Ptr {
            to_struct: true,
            ptr,
        }) = struct_walk(BPF_ARRAY, 48, 8)
        else {
            panic!("inner_map_meta is a pointer to a struct");
        };
        let reg = loaded(Walk::Ptr {
            to_struct: true,
            ptr,
        });
        assert_eq!(reg.ty, RegType::BtfPtr);
        assert_eq!(pointee_name(reg.range), "bpf_map");
        let v = btf_access(0, 2, &reg, 76, 4, AccessKind::Read).map(|r| r.ty);
        assert_eq!(v, Ok(RegType::Scalar));
        let err = btf_access(0, 2, &reg, -8, 8, AccessKind::Read).map_err(|r| r.message);
        assert_eq!(
            err,
            Err("R2 is ptr_bpf_map invalid negative access: off=-8".to_string())
        );
        let err = btf_access(0, 2, &reg, 0, 8, AccessKind::Write).map_err(|r| r.message);
        assert_eq!(err, Err("only read is supported".to_string()));
        // bpf_map.security: void *, read-only untrusted memory.
        let Ok(
            w @ Walk::Ptr {
                to_struct: false, ..
            },
        ) = struct_walk(BPF_ARRAY, 56, 8)
        else {
            panic!("security is a pointer to void");
        };
        let mem = loaded(w);
        assert_eq!(mem.ty, RegType::UntrustedMem);
        assert!(btf_access(0, 2, &mem, 30000, 8, AccessKind::Read).is_ok());
    }

    #[test]
    fn fields_are_found_by_name() {
        assert_eq!(field(BPF_MAP, &["max_entries"]), Some((76, 4)));
        assert_eq!(field(BPF_ARRAY, &["map", "key_size"]), Some((68, 4)));
        assert_eq!(field(BPF_ARRAY, &["elem_size"]), Some((296, 4)));
        assert_eq!(field(BPF_ARRAY, &["nothing"]), None);
    }
}
