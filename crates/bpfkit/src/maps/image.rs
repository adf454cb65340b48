//! A map's image of its Linux kernel struct (`struct bpf_array`, `struct bpf_htab`, ...,
//! each starting with `struct bpf_map`), so that a program reading fields through a map
//! pointer (`r0 = *(u32 *)(r1 + 76)`, `max_entries`) gets the value Linux would give.
//!
//! How: the map pointer a program holds is the address of its [`super::BpfMap`], and the
//! image is that struct's first field (`#[repr(C)]`), so a load at offset `off` from the map
//! pointer reads byte `off` of the image — no rewrite of the program is needed, and a load
//! that sees different maps on different paths reads each map's own image. The verifier only
//! allows reads inside the struct of the map's type (`bpfkit_verifier::rules::map_ptr`),
//! which is never larger than the image.
//!
//! What it holds: `map_type`, `key_size`, `value_size`, `max_entries`, `map_flags`, `id` and
//! `name` of `struct bpf_map`; `elem_size` and `index_mask` of `struct bpf_array`; `n_buckets`
//! and `elem_size` of `struct bpf_htab`. Every other byte is 0: pointers (bpfkit has no kernel addresses),
//! locks, reference counts, and the fields of the other map structs. Offsets come from the
//! verifier's description of the layouts, which a test checks against the kernel's BTF.

use super::{MapInfo, MapType};
use bpfkit_verifier::rules::map_ptr::field;
use bpfkit_verifier::rules::map_struct::{map_struct, BPF_ARRAY, BPF_HTAB, LARGEST_MAP_STRUCT};

/// `sizeof(struct htab_elem)` in Linux 6.18 x86-64 (checked against the kernel's BTF by
/// crates/verifier/tests/map_struct_btf.rs).
pub const HTAB_ELEM_SIZE: u32 = 48;

/// The image's size: the largest map struct bpfkit describes.
pub const IMAGE_SIZE: usize = LARGEST_MAP_STRUCT as usize;

/// The bytes of a map's kernel struct, 8-byte aligned as the kernel's allocation is.
#[repr(C, align(8))]
#[derive(Clone, PartialEq, Eq)]
pub struct KernelImage([u8; IMAGE_SIZE]);

impl std::fmt::Debug for KernelImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KernelImage({IMAGE_SIZE} bytes)")
    }
}

/// `roundup_pow_of_two`, 0 staying 0 and values above 2^31 giving 0 (the kernel refuses
/// such maps before).
fn roundup_pow_of_two(v: u32) -> u32 {
    v.checked_next_power_of_two().unwrap_or(0)
}

impl KernelImage {
    /// The image of a map with metadata `info`.
    #[must_use]
    pub fn new(info: &MapInfo) -> KernelImage {
        let mut image = KernelImage([0; IMAGE_SIZE]);
        let map_type = info.map_type as u32;
        let Some(root) = map_struct(map_type) else {
            return image;
        };
        let mut put = |path: &[&str], value: u64| {
            if let Some((off, size)) = field(root, path) {
                let (off, size) = (off as usize, size as usize);
                if size <= 8 && off + size <= IMAGE_SIZE {
                    image.0[off..off + size].copy_from_slice(&value.to_le_bytes()[..size]);
                }
            }
        };
        for (name, value) in [
            ("map_type", map_type),
            ("key_size", info.key_size),
            ("value_size", info.value_size),
            ("max_entries", info.max_entries),
            ("map_flags", info.map_flags),
            ("id", info.id),
        ] {
            put(&["map", name], u64::from(value));
        }
        if root == BPF_ARRAY {
            // array_map_alloc: elements are 8-byte aligned; the mask covers max_entries
            // rounded up to a power of two.
            put(&["elem_size"], u64::from(info.value_size.div_ceil(8) * 8));
            let mask = roundup_pow_of_two(info.max_entries).wrapping_sub(1);
            put(&["index_mask"], u64::from(mask));
        }
        if root == BPF_HTAB {
            put(
                &["n_buckets"],
                u64::from(roundup_pow_of_two(info.max_entries)),
            );
            // htab_map_alloc: the element header, the key, then the value or (per-CPU maps)
            // the pointer to the per-CPU values.
            let tail = if info.map_type.is_percpu() {
                8
            } else {
                info.value_size.div_ceil(8) * 8
            };
            let elem = HTAB_ELEM_SIZE + info.key_size.div_ceil(8) * 8 + tail;
            put(&["elem_size"], u64::from(elem));
        }
        if let Some((off, size)) = field(root, &["map", "name"]) {
            // BPF_OBJ_NAME_LEN bytes, NUL-terminated.
            let (off, size) = (off as usize, size as usize);
            let name = info.name.as_bytes();
            let n = name.len().min(size.saturating_sub(1));
            if off + size <= IMAGE_SIZE {
                image.0[off..off + n].copy_from_slice(&name[..n]);
            }
        }
        image
    }

    /// The bytes.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Whether a map type has a described struct (others read as zeros, and the verifier
/// refuses loads through their map pointers).
#[must_use]
pub fn described(map_type: MapType) -> bool {
    map_struct(map_type as u32).is_some()
}

#[cfg(test)]
mod tests {
    //! Expected bytes follow the kernel's `array_map_alloc` / `htab_map_alloc` arithmetic and
    //! the offsets of the 6.18 layout (`bpftool btf dump file /sys/kernel/btf/vmlinux`:
    //! `max_entries` at byte 76, `elem_size` at 296 in `struct bpf_array`).
    use super::*;

    fn info(map_type: MapType, value_size: u32, max_entries: u32) -> MapInfo {
        MapInfo {
            map_type,
            id: 7,
            key_size: 4,
            value_size,
            max_entries,
            map_flags: 0,
            name: "counters".into(),
        }
    }

    fn u32_at(image: &KernelImage, off: usize) -> u32 {
        let mut b = [0; 4];
        b.copy_from_slice(&image.bytes()[off..off + 4]);
        u32::from_le_bytes(b)
    }

    #[test]
    fn an_array_image_holds_its_sizes_where_linux_has_them() {
        let image = KernelImage::new(&info(MapType::Array, 12, 5));
        assert_eq!(u32_at(&image, 64), 2);
        assert_eq!(u32_at(&image, 68), 4);
        assert_eq!(u32_at(&image, 72), 12);
        assert_eq!(u32_at(&image, 76), 5);
        assert_eq!(u32_at(&image, 92), 7);
        assert_eq!(&image.bytes()[136..145], b"counters\0");
        assert_eq!(u32_at(&image, 296), 16);
        assert_eq!(u32_at(&image, 300), 7);
        // ops, a pointer, is 0.
        assert!(image.bytes()[40..48].iter().all(|b| *b == 0));
    }

    #[test]
    fn a_hash_image_holds_its_bucket_count() {
        let image = KernelImage::new(&info(MapType::Hash, 8, 100));
        assert_eq!(u32_at(&image, 64), 1);
        let (off, _) = field(BPF_HTAB, &["n_buckets"]).unwrap_or((0, 0));
        assert_eq!(off, 760);
        assert_eq!(u32_at(&image, 760), 128);
        // 48 (struct htab_elem) + 8 (key rounded up) + 8 (value).
        assert_eq!(u32_at(&image, 764), 64);
    }
}
