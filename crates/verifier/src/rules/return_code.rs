//! The return value check at the main program's exit (`check_return_code` in
//! kernel/bpf/verifier.c, Linux 6.18).
//!
//! Some program types give their return value a meaning with a range: a `cgroup_skb` program
//! returns 1 (pass) or 0 (drop), and one attached with `BPF_CGROUP_INET_EGRESS` may also return
//! 2 or 3 (the congestion notification bits). At the exit of the main program (never of a
//! subprogram: a subprogram's value is checked where the main program returns it) R0 must then
//! be a scalar whose signed 64-bit bounds lie in the range, else the load fails with `EINVAL`
//! and one of the kernel's two messages:
//!
//! - `At program exit the register R0 is not a known value (ctx)` for a pointer;
//! - `At program exit the register R0 has smin=2 smax=2 should have been in [0, 1]` for a
//!   scalar out of range (`verbose_invalid_scalar`: `smin=`/`smax=` only where the bound is not
//!   the type's extreme, `unknown scalar value` when neither is known).
//!
//! Of the types bpfkit models, only `cgroup_skb` has a range in 6.18: socket filters, tc, XDP,
//! kprobes (other than the session attach types), tracepoints and raw tracepoints (without a
//! BTF attach target) return whatever they like, pointers included for a privileged load.

use super::{einval, Cx};
use crate::env::ProgType;
use crate::reject::Reject;
use crate::state::{RegType, State};

/// `BPF_CGROUP_INET_INGRESS` (`enum bpf_attach_type`).
#[doc(alias = "BPF_CGROUP_INET_INGRESS")]
pub const CGROUP_INET_INGRESS: u32 = 0;
/// `BPF_CGROUP_INET_EGRESS` (`enum bpf_attach_type`).
#[doc(alias = "BPF_CGROUP_INET_EGRESS")]
pub const CGROUP_INET_EGRESS: u32 = 1;

/// The kernel's context string for the main program's exit (`exit_ctx`).
const EXIT_CTX: &str = "At program exit";

/// The values R0 may hold at the main program's exit, inclusive (`struct bpf_retval_range`), or
/// `None` when the type does not check it.
#[must_use]
pub fn exit_range(prog_type: ProgType, expected_attach_type: u32) -> Option<(i32, i32)> {
    match prog_type {
        ProgType::CgroupSkb if expected_attach_type == CGROUP_INET_EGRESS => Some((0, 3)),
        ProgType::CgroupSkb => Some((0, 1)),
        ProgType::SocketFilter
        | ProgType::Kprobe
        | ProgType::SchedCls
        | ProgType::SchedAct
        | ProgType::Tracepoint
        | ProgType::Xdp
        | ProgType::RawTracepoint => None,
    }
}

/// Whether the type checks R0 at the main program's exit under some attach type: the value of
/// R0 then matters for state pruning (the kernel's `mark_chain_precision(env, BPF_REG_0)`).
#[must_use]
pub fn checks_exit_value(prog_type: ProgType) -> bool {
    exit_range(prog_type, CGROUP_INET_INGRESS).is_some()
        || exit_range(prog_type, CGROUP_INET_EGRESS).is_some()
}

/// Checks R0 at the exit of the main program at `idx` (R0 is known to be initialised).
///
/// # Errors
/// `EINVAL` with the kernel's message when R0 is a pointer or a scalar outside the range.
pub fn check(cx: &Cx<'_>, st: &State, idx: usize) -> Result<(), Reject> {
    let Some((min, max)) = exit_range(cx.prog_type, cx.expected_attach_type) else {
        return Ok(());
    };
    let r0 = st.cur().regs[0];
    if r0.ty != RegType::Scalar {
        return Err(einval(
            idx,
            format!(
                "{EXIT_CTX} the register R0 is not a known value ({})",
                r0.ty.kernel_name()
            ),
        ));
    }
    let v = r0.var;
    if v.smin >= i64::from(min) && v.smax <= i64::from(max) {
        return Ok(());
    }
    let mut msg = format!("{EXIT_CTX} the register R0 has");
    if v.smin > i64::MIN {
        msg.push_str(&format!(" smin={}", v.smin));
    }
    if v.smax < i64::MAX {
        msg.push_str(&format!(" smax={}", v.smax));
    }
    if v.smin == i64::MIN && v.smax == i64::MAX {
        msg.push_str(" unknown scalar value");
    }
    msg.push_str(&format!(" should have been in [{min}, {max}]"));
    Err(einval(idx, msg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cfg::Cfg;
    use crate::num::Scalar;
    use crate::reject::Errno;
    use crate::state::RegState;
    use crate::testing::TestEnv;

    fn run(prog_type: ProgType, attach: u32, r0: RegState) -> Result<(), Reject> {
        let env = TestEnv::with_maps(Vec::new());
        let cfg = Cfg {
            subprogs: vec![0],
            prune_point: vec![false; 1],
        };
        let cx = Cx {
            env: &env,
            prog_type,
            expected_attach_type: attach,
            strict_alignment: false,
            privilege: crate::rules::unpriv::Privilege::Privileged,
            gpl: true,
            insns: &[],
            cfg: &cfg,
        };
        let mut st = State::entry();
        st.cur_mut().regs[0] = r0;
        check(&cx, &st, 7)
    }

    fn scalar(s: Scalar) -> RegState {
        let mut r = RegState::unknown();
        r.var = s;
        r
    }

    fn message(r: Result<(), Reject>) -> String {
        let e = r.expect_err("rejected");
        assert_eq!(e.errno, Errno::EINVAL);
        assert_eq!(e.insn_idx, 7);
        e.message
    }

    #[test]
    fn cgroup_skb_ingress_allows_zero_and_one() {
        for v in [0, 1] {
            assert!(run(ProgType::CgroupSkb, 0, scalar(Scalar::known(v))).is_ok());
        }
        assert_eq!(
            message(run(ProgType::CgroupSkb, 0, scalar(Scalar::known(2)))),
            "At program exit the register R0 has smin=2 smax=2 should have been in [0, 1]"
        );
    }

    #[test]
    fn cgroup_skb_egress_allows_up_to_three() {
        let r = scalar(Scalar::unsigned_range(0, 3));
        assert!(run(ProgType::CgroupSkb, CGROUP_INET_EGRESS, r).is_ok());
        assert!(run(ProgType::CgroupSkb, CGROUP_INET_INGRESS, r).is_err());
        assert_eq!(
            message(run(
                ProgType::CgroupSkb,
                CGROUP_INET_EGRESS,
                scalar(Scalar::known(4))
            )),
            "At program exit the register R0 has smin=4 smax=4 should have been in [0, 3]"
        );
    }

    #[test]
    fn unknown_and_one_sided_bounds_print_as_the_kernel_does() {
        assert_eq!(
            message(run(ProgType::CgroupSkb, 0, scalar(Scalar::unknown()))),
            "At program exit the register R0 has unknown scalar value should have been in [0, 1]"
        );
        assert_eq!(
            message(run(
                ProgType::CgroupSkb,
                0,
                scalar(Scalar::signed_range(i64::MIN, 0))
            )),
            "At program exit the register R0 has smax=0 should have been in [0, 1]"
        );
    }

    #[test]
    fn a_pointer_is_not_a_known_value() {
        assert_eq!(
            message(run(ProgType::CgroupSkb, 0, RegState::pointer(RegType::Ctx))),
            "At program exit the register R0 is not a known value (ctx)"
        );
    }

    #[test]
    fn other_types_return_anything() {
        for t in ProgType::ALL {
            if t == ProgType::CgroupSkb {
                continue;
            }
            assert!(run(t, 0, scalar(Scalar::unknown())).is_ok(), "{t}");
            assert!(run(t, 0, RegState::pointer(RegType::Stack)).is_ok(), "{t}");
        }
    }
}
