//! The members of the kernel's `union bpf_attr` used by this crate, as `#[repr(C)]` structs.
//!
//! Layouts follow include/uapi/linux/bpf.h. Each struct is padded to [`ATTR_SIZE`], the size of
//! the whole union in the uapi header, and built from `Default` so every byte the kernel reads
//! beyond the fields set is zero (the kernel rejects a non-zero tail it does not understand).

/// `sizeof(union bpf_attr)` in the uapi header this crate follows.
pub(crate) const ATTR_SIZE: usize = 144;

/// `BPF_MAP_CREATE`.
pub(crate) const BPF_MAP_CREATE: libc::c_long = 0;
/// `BPF_MAP_LOOKUP_ELEM`.
pub(crate) const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
/// `BPF_MAP_UPDATE_ELEM`.
pub(crate) const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
/// `BPF_MAP_DELETE_ELEM`.
pub(crate) const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
/// `BPF_MAP_GET_NEXT_KEY`.
pub(crate) const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;
/// `BPF_MAP_LOOKUP_AND_DELETE_ELEM`.
pub(crate) const BPF_MAP_LOOKUP_AND_DELETE_ELEM: libc::c_long = 21;
/// `BPF_PROG_LOAD`.
pub(crate) const BPF_PROG_LOAD: libc::c_long = 5;
/// `BPF_PROG_TEST_RUN`.
pub(crate) const BPF_PROG_TEST_RUN: libc::c_long = 10;

/// The anonymous struct used by `BPF_MAP_CREATE`.
#[repr(C)]
#[derive(Default)]
pub(crate) struct MapCreateAttr {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub inner_map_fd: u32,
    pub numa_node: u32,
    pub map_name: [u8; 16],
    pub map_ifindex: u32,
    pub btf_fd: u32,
    pub btf_key_type_id: u32,
    pub btf_value_type_id: u32,
    pub btf_vmlinux_value_type_id: u32,
    pub map_extra: u64,
    pub _pad: Pad<72>,
}

/// The anonymous struct used by `BPF_MAP_*_ELEM` and `BPF_MAP_GET_NEXT_KEY` (`value` doubles as
/// `next_key`).
#[repr(C)]
#[derive(Default)]
pub(crate) struct ElemAttr {
    pub map_fd: u32,
    pub _pad0: u32,
    pub key: u64,
    pub value: u64,
    pub flags: u64,
    pub _pad: Pad<112>,
}

/// The anonymous struct used by `BPF_PROG_LOAD`.
#[repr(C)]
#[derive(Default)]
pub(crate) struct ProgLoadAttr {
    pub prog_type: u32,
    pub insn_cnt: u32,
    pub insns: u64,
    pub license: u64,
    pub log_level: u32,
    pub log_size: u32,
    pub log_buf: u64,
    pub kern_version: u32,
    pub prog_flags: u32,
    pub prog_name: [u8; 16],
    pub prog_ifindex: u32,
    pub expected_attach_type: u32,
    /// prog_btf_fd … core_relo_cnt: BTF and attach fields this crate leaves zero.
    pub _btf_fields: Pad<48>,
    pub fd_array: u64,
    pub core_relos: u64,
    pub core_relo_rec_size: u32,
    /// Written back by kernels since 6.4: the log size that would have held the whole log.
    pub log_true_size: u32,
}

/// The `test` struct used by `BPF_PROG_TEST_RUN`.
#[repr(C)]
#[derive(Default)]
pub(crate) struct TestRunAttr {
    pub prog_fd: u32,
    pub retval: u32,
    pub data_size_in: u32,
    pub data_size_out: u32,
    pub data_in: u64,
    pub data_out: u64,
    pub repeat: u32,
    pub duration: u32,
    pub ctx_size_in: u32,
    pub ctx_size_out: u32,
    pub ctx_in: u64,
    pub ctx_out: u64,
    pub flags: u32,
    pub cpu: u32,
    pub batch_size: u32,
    pub _pad: Pad<68>,
}

/// `N` zero bytes (arrays above 32 elements have no `Default`).
#[repr(C)]
pub(crate) struct Pad<const N: usize>([u8; N]);

impl<const N: usize> Default for Pad<N> {
    fn default() -> Self {
        Self([0; N])
    }
}

const _: () = assert!(std::mem::size_of::<MapCreateAttr>() == ATTR_SIZE);
const _: () = assert!(std::mem::size_of::<ElemAttr>() == ATTR_SIZE);
const _: () = assert!(std::mem::size_of::<ProgLoadAttr>() == ATTR_SIZE);
const _: () = assert!(std::mem::size_of::<TestRunAttr>() == ATTR_SIZE);
const _: () = assert!(std::mem::offset_of!(ProgLoadAttr, fd_array) == 120);
const _: () = assert!(std::mem::offset_of!(TestRunAttr, flags) == 64);
const _: () = assert!(std::mem::offset_of!(MapCreateAttr, map_extra) == 64);

/// A pointer as the kernel's `__aligned_u64`.
pub(crate) fn ptr_u64<T>(p: *const T) -> u64 {
    p as usize as u64
}
