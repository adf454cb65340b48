//! `bpf_redirect_map` (51) for XDP programs, with its prototype: the kernel's
//! `__bpf_xdp_redirect_map` (include/linux/filter.h) over a devmap, devmap_hash or cpumap.
//!
//! Flags outside the map type's mask (`BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS` for devmaps,
//! none for a cpumap) and the low two bits (`XDP_ABORTED`..`XDP_TX`, the
//! verdict to return when the key has no device) give `XDP_ABORTED`; a key with no device gives
//! those low bits (unless `BPF_F_BROADCAST`), and a device `XDP_REDIRECT`. The redirect the
//! program asked for last is kept for the caller of the run ([`take_map_redirect`]), as the
//! kernel keeps it in `bpf_redirect_info`.

use std::cell::Cell;

use super::abi::{self, ret};
use super::def::{args, proto, Body, HelperDef, Types};
use bpfkit_verifier::env::{ArgType as A, RetType as R};
use bpfkit_vm::Helper;

/// `BPF_F_BROADCAST`: redirect to every device of the map.
pub const BPF_F_BROADCAST: u64 = 1 << 3;
/// `BPF_F_EXCLUDE_INGRESS`: with `BPF_F_BROADCAST`, not to the receiving device.
pub const BPF_F_EXCLUDE_INGRESS: u64 = 1 << 4;
/// `XDP_ABORTED | XDP_DROP | XDP_PASS | XDP_TX`: the verdict bits of the flags.
const ACTION_MASK: u64 = 3;
/// `XDP_ABORTED`.
const XDP_ABORTED: u64 = 0;
/// `XDP_REDIRECT`.
const XDP_REDIRECT: u64 = 4;

/// A redirect through a map that a program requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapRedirect {
    /// The map's id.
    pub map_id: u32,
    /// The key (the `u32` the lookup used).
    pub key: u32,
    /// The device's ifindex (devmaps; `None` for a broadcast whose key has no device, and
    /// for a cpumap).
    pub ifindex: Option<u32>,
    /// The CPU the frame goes to (cpumap).
    pub cpu: Option<u32>,
    /// The flags kept for a broadcast (0 otherwise, as the kernel's `ri->flags`).
    pub flags: u64,
}

thread_local! {
    static LAST: Cell<Option<MapRedirect>> = const { Cell::new(None) };
}

/// Takes the map redirect this thread's last program run requested, if any.
pub fn take_map_redirect() -> Option<MapRedirect> {
    LAST.with(Cell::take)
}

extern "C" fn redirect_map(map: u64, key: u64, flags: u64, _: u64, _: u64) -> u64 {
    // SAFETY: ARG_CONST_MAP_PTR of a devmap or cpumap (the verifier checks the map type).
    let m = unsafe { abi::map(map) };
    // The kernel's lookups take a u32 key.
    let key = key as u32;
    let (flag_mask, ifindex, cpu) = if let Some(dev) = m.as_devmap() {
        let ifindex = dev.ifindex(key);
        (BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS, ifindex, None)
    } else if let Some(cpus) = m.as_cpumap() {
        (0, None, cpus.qsize(key).map(|_| key))
    } else {
        // xskmap is not in bpfkit; the verifier admits no other map.
        return XDP_ABORTED;
    };
    if flags & !(ACTION_MASK | flag_mask) != 0 {
        return XDP_ABORTED;
    }
    let found = ifindex.is_some() || cpu.is_some();
    if !found && flags & BPF_F_BROADCAST == 0 {
        LAST.with(|l| l.set(None));
        return flags & ACTION_MASK;
    }
    let kept = if flags & BPF_F_BROADCAST != 0 {
        flags
    } else {
        0
    };
    LAST.with(|l| {
        l.set(Some(MapRedirect {
            map_id: m.id(),
            key,
            ifindex,
            cpu,
            flags: kept,
        }));
    });
    ret(XDP_REDIRECT as i64)
}

/// The definitions.
pub fn defs() -> Vec<HelperDef> {
    vec![HelperDef {
        id: 51,
        proto: proto(
            "bpf_redirect_map",
            args([A::ConstMapPtr, A::Anything, A::Anything]),
            R::Integer,
            false,
        ),
        body: Body::Call(Helper::scalar(redirect_map)),
        types: Types::Xdp,
    }]
}
