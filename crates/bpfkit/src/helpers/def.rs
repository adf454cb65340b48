//! One helper's definition: its id, prototype (for the verifier), body (for the interpreter)
//! and the program types that may call it, side by side.

use bpfkit_verifier::env::{ArgType, HelperProto, ProgType, RetType};
use bpfkit_vm::Helper;

/// What calling the helper does.
#[derive(Clone, Copy, Debug)]
pub enum Body {
    /// Call this function.
    Call(Helper),
    /// `bpf_tail_call`: the interpreter performs the tail call itself.
    TailCall,
}

/// Which program types may call a helper, as Linux 6.18's `*_func_proto` functions answer for a
/// privileged program (pinned down by the `kernel_helper_sets` differential test).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Types {
    /// Every program type (`bpf_base_func_proto`).
    All,
    /// socket_filter, sched_cls, sched_act and cgroup_skb: the types whose helper sets build on
    /// `sk_filter_func_proto`.
    SocketAndTc,
    /// sched_cls and sched_act.
    Tc,
    /// sched_cls, sched_act and xdp.
    TcAndXdp,
    /// xdp only.
    Xdp,
    /// kprobe, tracepoint and raw_tracepoint.
    Tracing,
}

impl Types {
    /// Whether `t` is in the set.
    #[must_use]
    pub const fn contains(self, t: ProgType) -> bool {
        use ProgType as P;
        match self {
            Types::All => true,
            Types::SocketAndTc => matches!(
                t,
                P::SocketFilter | P::SchedCls | P::SchedAct | P::CgroupSkb
            ),
            Types::Tc => matches!(t, P::SchedCls | P::SchedAct),
            Types::TcAndXdp => matches!(t, P::SchedCls | P::SchedAct | P::Xdp),
            Types::Xdp => matches!(t, P::Xdp),
            Types::Tracing => matches!(t, P::Kprobe | P::Tracepoint | P::RawTracepoint),
        }
    }
}

/// A helper definition.
#[derive(Clone, Copy, Debug)]
pub struct HelperDef {
    /// The helper id (`BPF_FUNC_*`).
    pub id: u32,
    /// The prototype the verifier checks calls against.
    pub proto: HelperProto,
    /// What a call does.
    pub body: Body,
    /// The program types that may call it.
    pub types: Types,
}

/// Argument list shorthand: up to five types, the rest `DontCare`.
#[must_use]
pub const fn args<const N: usize>(a: [ArgType; N]) -> [ArgType; 5] {
    let mut out = [ArgType::DontCare; 5];
    let mut i = 0;
    while i < N {
        out[i] = a[i];
        i += 1;
    }
    out
}

/// A prototype of a helper that does not change packet data.
#[must_use]
pub const fn proto(
    name: &'static str,
    args: [ArgType; 5],
    ret: RetType,
    gpl_only: bool,
) -> HelperProto {
    HelperProto {
        name,
        args,
        ret,
        gpl_only,
        changes_pkt_data: false,
    }
}

/// The same prototype, for a helper that may move or resize the packet, so that the verifier
/// forgets every packet pointer after a call (`bpf_helper_changes_pkt_data`).
#[must_use]
pub const fn changes_pkt(p: HelperProto) -> HelperProto {
    HelperProto {
        changes_pkt_data: true,
        ..p
    }
}
