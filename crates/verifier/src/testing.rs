//! A small built-in [`Env`] for tests and for tools without a runtime: `__sk_buff` and
//! `xdp_md` contexts (a subset of the kernel's rules), a dozen common helpers with their
//! kernel prototypes, and maps declared by the caller (handle = index).

use crate::env::{AccessKind, ArgType, CtxField, Env, HelperProto, MapInfo, ProgType, RetType};

/// The built-in environment.
#[derive(Clone, Debug, Default)]
pub struct TestEnv {
    /// Maps by handle (index).
    pub maps: Vec<MapInfo>,
}

const D: ArgType = ArgType::DontCare;

/// `(id, name, args, ret, gpl_only)` of the helpers the test environment knows, as in
/// `include/uapi/linux/bpf.h` and the kernel's `bpf_func_proto`s.
const HELPERS: &[(i32, &str, [ArgType; 5], RetType, bool)] = &[
    (
        1,
        "bpf_map_lookup_elem",
        [ArgType::ConstMapPtr, ArgType::PtrToMapKey, D, D, D],
        RetType::PtrToMapValueOrNull,
        false,
    ),
    (
        2,
        "bpf_map_update_elem",
        [
            ArgType::ConstMapPtr,
            ArgType::PtrToMapKey,
            ArgType::PtrToMapValue,
            ArgType::Anything,
            D,
        ],
        RetType::Integer,
        false,
    ),
    (
        3,
        "bpf_map_delete_elem",
        [ArgType::ConstMapPtr, ArgType::PtrToMapKey, D, D, D],
        RetType::Integer,
        false,
    ),
    (
        4,
        "bpf_probe_read",
        [
            ArgType::PtrToUninitMem,
            ArgType::ConstSizeOrZero,
            ArgType::Anything,
            D,
            D,
        ],
        RetType::Integer,
        true,
    ),
    (5, "bpf_ktime_get_ns", [D; 5], RetType::Integer, false),
    (
        6,
        "bpf_trace_printk",
        [ArgType::PtrToMem, ArgType::ConstSize, D, D, D],
        RetType::Integer,
        true,
    ),
    (7, "bpf_get_prandom_u32", [D; 5], RetType::Integer, false),
    (
        8,
        "bpf_get_smp_processor_id",
        [D; 5],
        RetType::Integer,
        false,
    ),
    (
        12,
        "bpf_tail_call",
        [
            ArgType::PtrToCtx,
            ArgType::ConstMapPtr,
            ArgType::Anything,
            D,
            D,
        ],
        RetType::Void,
        false,
    ),
    (
        14,
        "bpf_get_current_pid_tgid",
        [D; 5],
        RetType::Integer,
        false,
    ),
    (
        26,
        "bpf_skb_load_bytes",
        [
            ArgType::PtrToCtx,
            ArgType::Anything,
            ArgType::PtrToUninitMem,
            ArgType::ConstSize,
            D,
        ],
        RetType::Integer,
        false,
    ),
];

fn helper_allowed(prog_type: ProgType, id: i32) -> bool {
    match id {
        4 => matches!(prog_type, ProgType::Kprobe | ProgType::Tracepoint),
        26 => matches!(
            prog_type,
            ProgType::SocketFilter | ProgType::SchedCls | ProgType::SchedAct
        ),
        _ => true,
    }
}

impl TestEnv {
    /// An environment with these maps (handle `i` is `maps[i]`).
    #[must_use]
    pub fn with_maps(maps: Vec<MapInfo>) -> TestEnv {
        TestEnv { maps }
    }
}

fn skb_access(prog_type: ProgType, off: i32, size: u32, kind: AccessKind) -> Option<CtxField> {
    // __sk_buff: 4-byte fields from 0 to 76 (len .. tc_classid); data at 76, data_end at 80.
    if off < 0 || off % size as i32 != 0 {
        return None;
    }
    let tc = matches!(prog_type, ProgType::SchedCls | ProgType::SchedAct);
    match kind {
        AccessKind::Read => match (off, size) {
            (76, 4) if tc => Some(CtxField::PacketData),
            (80, 4) if tc => Some(CtxField::PacketEnd),
            (0..=75, 1 | 2 | 4) => Some(CtxField::Scalar),
            _ => None,
        },
        AccessKind::Write => match (off, size) {
            // cb[0..5]
            (48..=67, 4) => Some(CtxField::Scalar),
            // mark, priority, tc_index for tc programs
            (8 | 32 | 44, 4) if tc => Some(CtxField::Scalar),
            _ => None,
        },
    }
}

fn xdp_access(off: i32, size: u32, kind: AccessKind) -> Option<CtxField> {
    if kind == AccessKind::Write || size != 4 {
        return None;
    }
    match off {
        0 => Some(CtxField::PacketData),
        4 => Some(CtxField::PacketEnd),
        8 => Some(CtxField::PacketMeta),
        12 | 16 | 20 => Some(CtxField::Scalar),
        _ => None,
    }
}

impl Env for TestEnv {
    fn ctx_access(
        &self,
        prog_type: ProgType,
        off: i32,
        size: u32,
        kind: AccessKind,
    ) -> Option<CtxField> {
        match prog_type {
            ProgType::SocketFilter | ProgType::SchedCls | ProgType::SchedAct => {
                skb_access(prog_type, off, size, kind)
            }
            ProgType::Xdp => xdp_access(off, size, kind),
            // pt_regs on x86-64: 21 u64 registers, read-only.
            ProgType::Kprobe => {
                (kind == AccessKind::Read && (0..168).contains(&off) && off % size as i32 == 0)
                    .then_some(CtxField::Scalar)
            }
            ProgType::Tracepoint => {
                (kind == AccessKind::Read && (8..4096).contains(&off) && off % size as i32 == 0)
                    .then_some(CtxField::Scalar)
            }
        }
    }

    fn helper(&self, prog_type: ProgType, id: i32) -> Option<HelperProto> {
        if !helper_allowed(prog_type, id) {
            return None;
        }
        HELPERS
            .iter()
            .find(|h| h.0 == id)
            .map(|&(_, name, args, ret, gpl_only)| HelperProto {
                name,
                args,
                ret,
                gpl_only,
            })
    }

    fn helper_name(&self, id: i32) -> Option<&'static str> {
        HELPERS.iter().find(|h| h.0 == id).map(|h| h.1)
    }

    fn map(&self, handle: i32) -> Option<MapInfo> {
        usize::try_from(handle)
            .ok()
            .and_then(|i| self.maps.get(i))
            .copied()
    }
}
