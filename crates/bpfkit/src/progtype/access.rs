//! Context access rules: may a program of a given type read or write `size` bytes at offset
//! `off` of its context, and what does a read yield?
//!
//! This is the kernel's `*_is_valid_access` family (net/core/filter.c: `bpf_skb_is_valid_access`,
//! `sk_filter_is_valid_access`, `tc_cls_act_is_valid_access`, `cg_skb_is_valid_access`,
//! `xdp_is_valid_access`;
//! kernel/trace/bpf_trace.c: `kprobe_prog_is_valid_access`, `tp_prog_is_valid_access`,
//! `raw_tp_prog_is_valid_access`) for a privileged load, expressed over the offsets of
//! [`super::layout`]. A differential test asks the live kernel the same question for every
//! offset, size and direction.

use super::layout::{
    PERF_MAX_TRACE_SIZE, PT_REGS_SIZE, RAW_TP_ARGS_SIZE, SK_BUFF_SIZE, XDP_MD_SIZE,
};
use super::ProgType;

/// Read or write.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Direction {
    /// A load from the context.
    Read,
    /// A store into the context.
    Write,
}

/// The verdict on one context access.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum CtxAccess {
    /// Not allowed (`invalid bpf_context access off=%d size=%d`).
    Denied,
    /// Allowed; a read yields a scalar.
    Scalar,
    /// Allowed; a read yields a pointer to the start of packet data (`PTR_TO_PACKET`).
    PacketData,
    /// Allowed; a read yields the packet end (`PTR_TO_PACKET_END`).
    PacketEnd,
    /// Allowed; a read yields the packet metadata start (`PTR_TO_PACKET_META`).
    PacketMeta,
    /// Allowed; a read yields a socket pointer or NULL (`PTR_TO_SOCK_COMMON_OR_NULL`).
    SockCommonOrNull,
}

impl CtxAccess {
    /// Whether the access is allowed.
    #[must_use]
    pub const fn allowed(self) -> bool {
        !matches!(self, CtxAccess::Denied)
    }
}

/// `__sk_buff` offsets used by the rules (`offsetof`, and `offsetofend - 1` as `..=`).
mod skb {
    use std::ops::RangeInclusive;
    pub const MARK: RangeInclusive<i32> = 8..=11;
    pub const QUEUE_MAPPING: RangeInclusive<i32> = 12..=15;
    pub const PRIORITY: RangeInclusive<i32> = 32..=35;
    pub const TC_INDEX: RangeInclusive<i32> = 44..=47;
    pub const CB: RangeInclusive<i32> = 48..=67;
    pub const CB_END: i32 = 68;
    pub const TC_CLASSID: RangeInclusive<i32> = 72..=75;
    pub const DATA: RangeInclusive<i32> = 76..=79;
    pub const DATA_END: RangeInclusive<i32> = 80..=83;
    pub const FAMILY_TILL_LOCAL_PORT: RangeInclusive<i32> = 88..=139;
    pub const REMOTE_IP4: RangeInclusive<i32> = 92..=95;
    pub const LOCAL_IP4: RangeInclusive<i32> = 96..=99;
    pub const REMOTE_IP6: RangeInclusive<i32> = 100..=115;
    pub const LOCAL_IP6: RangeInclusive<i32> = 116..=131;
    pub const DATA_META: RangeInclusive<i32> = 140..=143;
    pub const FLOW_KEYS: RangeInclusive<i32> = 144..=151;
    pub const TSTAMP: RangeInclusive<i32> = 152..=159;
    pub const WIRE_LEN: RangeInclusive<i32> = 160..=163;
    pub const SK: std::ops::RangeInclusive<i32> = 168..=175;
    pub const TSTAMP_TYPE: i32 = 180;
    pub const TSTAMP_TYPE_PAD: RangeInclusive<i32> = 181..=183;
    pub const HWTSTAMP: RangeInclusive<i32> = 184..=191;
}

/// `struct xdp_md` offsets.
mod xdp {
    pub const DATA: i32 = 0;
    pub const DATA_END: i32 = 4;
    pub const DATA_META: i32 = 8;
    pub const EGRESS_IFINDEX: i32 = 20;
}

/// The verdict for a `size`-byte access at `off` in the context of `prog_type`.
///
/// `size` is 1, 2, 4 or 8 (the verifier only asks with those).
#[must_use]
pub fn ctx_access(prog_type: ProgType, off: i32, size: u32, dir: Direction) -> CtxAccess {
    let Ok(size) = i32::try_from(size) else {
        return CtxAccess::Denied;
    };
    if size <= 0 {
        return CtxAccess::Denied;
    }
    let verdict = match prog_type {
        ProgType::SocketFilter => sk_filter(off, size, dir),
        ProgType::SchedCls | ProgType::SchedAct => tc_cls_act(off, size, dir),
        ProgType::Xdp => xdp_md(off, size, dir),
        ProgType::Kprobe => tracing(off, size, dir, PT_REGS_SIZE, true),
        ProgType::Tracepoint => tracepoint(off, size, dir),
        ProgType::RawTracepoint => tracing(off, size, dir, RAW_TP_ARGS_SIZE, false),
        ProgType::CgroupSkb => cg_skb(off, size, dir),
    };
    verdict.unwrap_or(CtxAccess::Denied)
}

/// [`ctx_access`] for a load without CAP_BPF: a cgroup_skb program may then neither read
/// `data`/`data_end` nor write `tstamp` (`cg_skb_is_valid_access` asks
/// `bpf_token_capable(..., CAP_BPF)`); every other rule is the same.
#[must_use]
pub fn ctx_access_unprivileged(
    prog_type: ProgType,
    off: i32,
    size: u32,
    dir: Direction,
) -> CtxAccess {
    if prog_type == ProgType::CgroupSkb
        && (skb::DATA.contains(&off)
            || skb::DATA_END.contains(&off)
            || (dir == Direction::Write && skb::TSTAMP.contains(&off)))
    {
        return CtxAccess::Denied;
    }
    ctx_access(prog_type, off, size, dir)
}

/// `bpf_ctx_narrow_access_ok`: a read narrower than the field, of a power-of-two size.
fn narrow_ok(size: i32, size_default: i32) -> bool {
    size <= size_default && (size & (size - 1)) == 0
}

/// `bpf_skb_is_valid_access`, the common tail of every `__sk_buff` rule. `Some(kind)` when
/// allowed, where `kind` is what the type-specific rule decided a read yields.
fn skb_common(off: i32, size: i32, dir: Direction, kind: CtxAccess) -> Option<CtxAccess> {
    let size_default = 4;
    let size_total = i32::try_from(SK_BUFF_SIZE).ok()?;
    if off < 0 || off >= size_total || off % size != 0 {
        return None;
    }
    let write = dir == Direction::Write;
    let mut kind = kind;
    match off {
        o if skb::CB.contains(&o) => {
            if off + size > skb::CB_END {
                return None;
            }
        }
        o if skb::REMOTE_IP6.contains(&o)
            || skb::LOCAL_IP6.contains(&o)
            || skb::REMOTE_IP4.contains(&o)
            || skb::LOCAL_IP4.contains(&o)
            || skb::DATA.contains(&o)
            || skb::DATA_META.contains(&o)
            || skb::DATA_END.contains(&o) =>
        {
            if size != size_default {
                return None;
            }
        }
        o if skb::FLOW_KEYS.contains(&o) => return None,
        o if skb::HWTSTAMP.contains(&o) => {
            if write || size != 8 {
                return None;
            }
        }
        o if skb::TSTAMP.contains(&o) => {
            if size != 8 {
                return None;
            }
        }
        o if skb::SK.contains(&o) => {
            // Linux 6.18 treats the whole 8-byte pointer as one field: only an aligned 8-byte
            // read of its start is allowed (the differential test pins this down).
            if write || size != 8 {
                return None;
            }
            kind = CtxAccess::SockCommonOrNull;
        }
        skb::TSTAMP_TYPE => return None,
        o if skb::TSTAMP_TYPE_PAD.contains(&o) => return None,
        _ => {
            if write {
                if size != size_default {
                    return None;
                }
            } else if !narrow_ok(size, size_default) {
                return None;
            }
        }
    }
    Some(kind)
}

/// `sk_filter_is_valid_access`.
fn sk_filter(off: i32, size: i32, dir: Direction) -> Option<CtxAccess> {
    let denied = [
        skb::TC_CLASSID,
        skb::DATA,
        skb::DATA_META,
        skb::DATA_END,
        skb::FAMILY_TILL_LOCAL_PORT,
        skb::TSTAMP,
        skb::WIRE_LEN,
        skb::HWTSTAMP,
    ];
    if denied.iter().any(|r| r.contains(&off)) {
        return None;
    }
    if dir == Direction::Write && !skb::CB.contains(&off) {
        return None;
    }
    skb_common(off, size, dir, CtxAccess::Scalar)
}

/// `tc_cls_act_is_valid_access`.
fn tc_cls_act(off: i32, size: i32, dir: Direction) -> Option<CtxAccess> {
    if dir == Direction::Write {
        let writable = [
            skb::MARK,
            skb::TC_INDEX,
            skb::PRIORITY,
            skb::TC_CLASSID,
            skb::CB,
            skb::TSTAMP,
            skb::QUEUE_MAPPING,
        ];
        if !writable.iter().any(|r| r.contains(&off)) {
            return None;
        }
    }
    let kind = match off {
        o if skb::DATA.contains(&o) => CtxAccess::PacketData,
        o if skb::DATA_META.contains(&o) => CtxAccess::PacketMeta,
        o if skb::DATA_END.contains(&o) => CtxAccess::PacketEnd,
        o if skb::FAMILY_TILL_LOCAL_PORT.contains(&o) => return None,
        skb::TSTAMP_TYPE => {
            return (size == 1).then_some(CtxAccess::Scalar);
        }
        _ => CtxAccess::Scalar,
    };
    skb_common(off, size, dir, kind)
}

/// `cg_skb_is_valid_access` for a privileged load (CAP_BPF: the packet pointers and a `tstamp`
/// store are allowed). Unlike socket filters and tc, cgroup programs may read the socket fields
/// (`family` to `local_port`); they may read but not write the packet.
fn cg_skb(off: i32, size: i32, dir: Direction) -> Option<CtxAccess> {
    if [skb::TC_CLASSID, skb::DATA_META, skb::WIRE_LEN]
        .iter()
        .any(|r| r.contains(&off))
    {
        return None;
    }
    if dir == Direction::Write {
        let writable = [skb::MARK, skb::PRIORITY, skb::CB, skb::TSTAMP];
        if !writable.iter().any(|r| r.contains(&off)) {
            return None;
        }
    }
    let kind = match off {
        o if skb::DATA.contains(&o) => CtxAccess::PacketData,
        o if skb::DATA_END.contains(&o) => CtxAccess::PacketEnd,
        _ => CtxAccess::Scalar,
    };
    skb_common(off, size, dir, kind)
}

/// `xdp_is_valid_access` for a program not attached to a devmap and not device-bound.
fn xdp_md(off: i32, size: i32, dir: Direction) -> Option<CtxAccess> {
    if off == xdp::EGRESS_IFINDEX || dir == Direction::Write {
        return None;
    }
    let kind = match off {
        xdp::DATA => CtxAccess::PacketData,
        xdp::DATA_META => CtxAccess::PacketMeta,
        xdp::DATA_END => CtxAccess::PacketEnd,
        _ => CtxAccess::Scalar,
    };
    let total = i32::try_from(XDP_MD_SIZE).ok()?;
    (off >= 0 && off < total && off % size == 0 && size == 4).then_some(kind)
}

/// `tp_prog_is_valid_access`. Its first test, `off < sizeof(void *)`, compares an `int` with a
/// `size_t`, so a negative offset converts to a huge unsigned value and passes; only the
/// alignment test then stands between it and acceptance. Linux accepts such loads, so we do.
fn tracepoint(off: i32, size: i32, dir: Direction) -> Option<CtxAccess> {
    let as_size_t = i64::from(off) as u64;
    let max = i32::try_from(PERF_MAX_TRACE_SIZE).ok()?;
    let ok = as_size_t >= 8 && off < max && dir == Direction::Read && off % size == 0;
    ok.then_some(CtxAccess::Scalar)
}

/// The read-only tracing contexts (`kprobe_prog_is_valid_access`, `bpf_tracing_ctx_access`): bytes `[0, total)`, aligned to the access size, and
/// (kprobe) not running past the end.
fn tracing(off: i32, size: i32, dir: Direction, total: u32, check_end: bool) -> Option<CtxAccess> {
    let total = i32::try_from(total).ok()?;
    let ok = off >= 0
        && off < total
        && dir == Direction::Read
        && off % size == 0
        && (!check_end || off + size <= total);
    ok.then_some(CtxAccess::Scalar)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{Read, Write};

    #[test]
    fn socket_filter_reads_len_and_writes_only_cb() {
        assert_eq!(
            ctx_access(ProgType::SocketFilter, 0, 4, Read),
            CtxAccess::Scalar
        );
        assert_eq!(
            ctx_access(ProgType::SocketFilter, 0, 1, Read),
            CtxAccess::Scalar
        );
        assert_eq!(
            ctx_access(ProgType::SocketFilter, 0, 4, Write),
            CtxAccess::Denied
        );
        assert_eq!(
            ctx_access(ProgType::SocketFilter, 48, 4, Write),
            CtxAccess::Scalar
        );
        assert_eq!(
            ctx_access(ProgType::SocketFilter, 76, 4, Read),
            CtxAccess::Denied
        );
    }

    #[test]
    fn tc_gets_packet_pointers() {
        assert_eq!(
            ctx_access(ProgType::SchedCls, 76, 4, Read),
            CtxAccess::PacketData
        );
        assert_eq!(
            ctx_access(ProgType::SchedCls, 80, 4, Read),
            CtxAccess::PacketEnd
        );
        assert_eq!(
            ctx_access(ProgType::SchedCls, 8, 4, Write),
            CtxAccess::Scalar
        );
        assert_eq!(
            ctx_access(ProgType::SchedCls, 0, 4, Write),
            CtxAccess::Denied
        );
    }

    #[test]
    fn cgroup_skb_reads_sockets_and_packets_and_writes_mark() {
        let t = ProgType::CgroupSkb;
        assert_eq!(ctx_access(t, 76, 4, Read), CtxAccess::PacketData);
        assert_eq!(ctx_access(t, 80, 4, Read), CtxAccess::PacketEnd);
        assert_eq!(ctx_access(t, 140, 4, Read), CtxAccess::Denied);
        assert_eq!(ctx_access(t, 92, 4, Read), CtxAccess::Scalar);
        assert_eq!(ctx_access(t, 8, 4, Write), CtxAccess::Scalar);
        assert_eq!(ctx_access(t, 44, 4, Write), CtxAccess::Denied);
        assert_eq!(ctx_access(t, 72, 4, Read), CtxAccess::Denied);
    }

    #[test]
    fn cgroup_skb_without_cap_bpf_has_no_packet_pointers() {
        let t = ProgType::CgroupSkb;
        assert_eq!(ctx_access_unprivileged(t, 76, 4, Read), CtxAccess::Denied);
        assert_eq!(ctx_access_unprivileged(t, 80, 4, Read), CtxAccess::Denied);
        assert_eq!(ctx_access_unprivileged(t, 152, 8, Write), CtxAccess::Denied);
        assert_eq!(ctx_access_unprivileged(t, 152, 8, Read), CtxAccess::Scalar);
        assert_eq!(ctx_access_unprivileged(t, 8, 4, Write), CtxAccess::Scalar);
    }

    #[test]
    fn xdp_is_read_only_u32() {
        assert_eq!(ctx_access(ProgType::Xdp, 0, 4, Read), CtxAccess::PacketData);
        assert_eq!(ctx_access(ProgType::Xdp, 0, 8, Read), CtxAccess::Denied);
        assert_eq!(ctx_access(ProgType::Xdp, 12, 4, Write), CtxAccess::Denied);
        assert_eq!(ctx_access(ProgType::Xdp, 20, 4, Read), CtxAccess::Denied);
    }

    #[test]
    fn tracing_contexts_are_read_only() {
        assert_eq!(
            ctx_access(ProgType::Kprobe, 160, 8, Read),
            CtxAccess::Scalar
        );
        assert_eq!(
            ctx_access(ProgType::Kprobe, 168, 8, Read),
            CtxAccess::Denied
        );
        assert_eq!(
            ctx_access(ProgType::Tracepoint, 0, 8, Read),
            CtxAccess::Denied
        );
        assert_eq!(
            ctx_access(ProgType::Tracepoint, 8, 8, Read),
            CtxAccess::Scalar
        );
        assert_eq!(
            ctx_access(ProgType::RawTracepoint, 88, 8, Write),
            CtxAccess::Denied
        );
    }
}
