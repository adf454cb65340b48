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

const C: ArgType = ArgType::PtrToCtx;
const ANY: ArgType = ArgType::Anything;
const MAP: ArgType = ArgType::ConstMapPtr;
const MEM: ArgType = ArgType::PtrToMem;
const UNINIT: ArgType = ArgType::PtrToUninitMem;
const SIZE: ArgType = ArgType::ConstSize;
const SIZE0: ArgType = ArgType::ConstSizeOrZero;
const INT: RetType = RetType::Integer;

/// `(id, name, args, ret, gpl_only)` of the helpers the test environment knows, as in
/// `include/uapi/linux/bpf.h` and the kernel's `bpf_func_proto`s.
const HELPERS: &[(i32, &str, [ArgType; 5], RetType, bool)] = &[
    (
        1,
        "bpf_map_lookup_elem",
        [MAP, ArgType::PtrToMapKey, D, D, D],
        RetType::PtrToMapValueOrNull,
        false,
    ),
    (
        2,
        "bpf_map_update_elem",
        [MAP, ArgType::PtrToMapKey, ArgType::PtrToMapValue, ANY, D],
        INT,
        false,
    ),
    (
        3,
        "bpf_map_delete_elem",
        [MAP, ArgType::PtrToMapKey, D, D, D],
        INT,
        false,
    ),
    (4, "bpf_probe_read", [UNINIT, SIZE0, ANY, D, D], INT, true),
    (5, "bpf_ktime_get_ns", [D; 5], INT, false),
    (6, "bpf_trace_printk", [MEM, SIZE, D, D, D], INT, true),
    (7, "bpf_get_prandom_u32", [D; 5], INT, false),
    (8, "bpf_get_smp_processor_id", [D; 5], INT, false),
    (
        9,
        "bpf_skb_store_bytes",
        [C, ANY, MEM, SIZE, ANY],
        INT,
        false,
    ),
    (
        10,
        "bpf_l3_csum_replace",
        [C, ANY, ANY, ANY, ANY],
        INT,
        false,
    ),
    (
        11,
        "bpf_l4_csum_replace",
        [C, ANY, ANY, ANY, ANY],
        INT,
        false,
    ),
    (
        12,
        "bpf_tail_call",
        [C, MAP, ANY, D, D],
        RetType::Void,
        false,
    ),
    (14, "bpf_get_current_pid_tgid", [D; 5], INT, false),
    (15, "bpf_get_current_uid_gid", [D; 5], INT, false),
    (
        16,
        "bpf_get_current_comm",
        [UNINIT, SIZE, D, D, D],
        INT,
        false,
    ),
    (23, "bpf_redirect", [ANY, ANY, D, D, D], INT, false),
    (
        25,
        "bpf_perf_event_output",
        [C, MAP, ANY, MEM, SIZE0],
        INT,
        false,
    ),
    (
        26,
        "bpf_skb_load_bytes",
        [C, ANY, UNINIT, SIZE, D],
        INT,
        false,
    ),
    (44, "bpf_xdp_adjust_head", [C, ANY, D, D, D], INT, false),
    (
        112,
        "bpf_probe_read_user",
        [UNINIT, SIZE0, ANY, D, D],
        INT,
        true,
    ),
    (
        113,
        "bpf_probe_read_kernel",
        [UNINIT, SIZE0, ANY, D, D],
        INT,
        true,
    ),
    (
        130,
        "bpf_ringbuf_output",
        [MAP, MEM, SIZE0, ANY, D],
        INT,
        false,
    ),
    (
        28,
        "bpf_csum_diff",
        [
            ArgType::PtrToMemOrNull,
            SIZE0,
            ArgType::PtrToMemOrNull,
            SIZE0,
            ANY,
        ],
        INT,
        false,
    ),
    (27, "bpf_get_stackid", [C, MAP, ANY, D, D], INT, false),
    (39, "bpf_skb_pull_data", [C, ANY, D, D, D], INT, false),
    (51, "bpf_redirect_map", [MAP, ANY, ANY, D, D], INT, false),
    (
        131,
        "bpf_ringbuf_reserve",
        [MAP, ArgType::ConstAllocSizeOrZero, ANY, D, D],
        RetType::PtrToRingbufMemOrNull,
        false,
    ),
    (
        132,
        "bpf_ringbuf_submit",
        [ArgType::PtrToRingbufMemRelease, ANY, D, D, D],
        RetType::Void,
        false,
    ),
    (
        133,
        "bpf_ringbuf_discard",
        [ArgType::PtrToRingbufMemRelease, ANY, D, D, D],
        RetType::Void,
        false,
    ),
    (134, "bpf_ringbuf_query", [MAP, ANY, D, D, D], INT, false),
];

/// Helpers that move packet data (`bpf_helper_changes_pkt_data`).
fn changes_pkt_data(id: i32) -> bool {
    matches!(id, 9 | 10 | 11 | 39 | 44)
}

fn helper_allowed(prog_type: ProgType, id: i32) -> bool {
    let tracing = matches!(prog_type, ProgType::Kprobe | ProgType::Tracepoint);
    let tc = matches!(prog_type, ProgType::SchedCls | ProgType::SchedAct);
    match id {
        4 | 16 | 27 => tracing,
        26 => tc || prog_type == ProgType::SocketFilter,
        9..=11 | 39 => tc,
        28 => tc || prog_type == ProgType::Xdp,
        23 => tc || prog_type == ProgType::Xdp,
        44 | 51 => prog_type == ProgType::Xdp,
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
    // __sk_buff: u32 fields len (0) .. hash (68), tc_classid (72, tc only), data (76),
    // data_end (80), napi_id (84), data_meta (140), gso_size (176).
    if off < 0 || off % size as i32 != 0 {
        return None;
    }
    let tc = matches!(prog_type, ProgType::SchedCls | ProgType::SchedAct);
    match kind {
        AccessKind::Read => match (off, size) {
            (76, 4) if tc => Some(CtxField::PacketData),
            (152, 8) if tc => Some(CtxField::Scalar),
            // __sk_buff.sk: a socket pointer or NULL; bpfkit has no sockets (always NULL).
            (168, 8) => Some(CtxField::Scalar),
            (152, 8) if tc => Some(CtxField::Scalar),
            (80, 4) if tc => Some(CtxField::PacketEnd),
            (140, 4) if tc => Some(CtxField::PacketMeta),
            (72..=75, 1 | 2 | 4) if tc => Some(CtxField::Scalar),
            (0..=71 | 84..=87 | 160..=167 | 176..=179, 1 | 2 | 4) => Some(CtxField::Scalar),
            _ => None,
        },
        AccessKind::Write => match (off, size) {
            // cb[0..5], any size inside
            (48..=67, 1 | 2 | 4 | 8) if off + size as i32 <= 68 => Some(CtxField::Scalar),
            // mark, queue_mapping, priority, tc_index, tc_classid, tstamp for tc programs
            (8 | 12 | 32 | 44 | 72, 4) | (152, 8) if tc => Some(CtxField::Scalar),
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
        12 | 16 => Some(CtxField::Scalar),
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
            // `cg_skb_is_valid_access`, the few fields these tests use: packet pointers to
            // read, mark and cb to write.
            ProgType::CgroupSkb => match (off, size, kind) {
                (76, 4, AccessKind::Read) => Some(CtxField::PacketData),
                (80, 4, AccessKind::Read) => Some(CtxField::PacketEnd),
                (140, _, _) | (72, _, _) | (160, _, _) => None,
                (8, 4, AccessKind::Write) => Some(CtxField::Scalar),
                _ => skb_access(ProgType::SocketFilter, off, size, kind),
            },
            // pt_regs on x86-64: 21 u64 registers, read-only.
            ProgType::Kprobe => {
                (kind == AccessKind::Read && (0..168).contains(&off) && off % size as i32 == 0)
                    .then_some(CtxField::Scalar)
            }
            ProgType::Tracepoint => {
                (kind == AccessKind::Read && (8..8192).contains(&off) && off % size as i32 == 0)
                    .then_some(CtxField::Scalar)
            }
            // 12 u64 arguments, read-only.
            ProgType::RawTracepoint => {
                (kind == AccessKind::Read && (0..96).contains(&off) && off % size as i32 == 0)
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
                changes_pkt_data: changes_pkt_data(id),
            })
    }

    fn helper_name(&self, id: i32) -> Option<&'static str> {
        crate::helper_names::helper_name(id)
    }

    fn map(&self, handle: i32) -> Option<MapInfo> {
        usize::try_from(handle)
            .ok()
            .and_then(|i| self.maps.get(i))
            .copied()
    }
}
