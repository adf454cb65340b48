//! The unprivileged oracle: loads on a thread without CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN and
//! CAP_NET_ADMIN get the kernel's unprivileged verdicts (expected values: the rules of
//! kernel/bpf/syscall.c `bpf_prog_load` and kernel/bpf/verifier.c), the calling thread keeps
//! its privileges, and the sysctl comes back to its value.
#![expect(
    clippy::unwrap_used,
    reason = "a failing oracle is the test failure to report"
)]

use bpfkit_isa::Insn;
use bpfkit_kernel::{names, Errno, ProgLoad, UnprivilegedBpf, UNPRIVILEGED_BPF_DISABLED};

/// `r0 = IMM; exit`.
fn ret(imm: i32) -> Vec<Insn> {
    vec![Insn::new(0xb7, 0, 0, 0, imm), Insn::new(0x95, 0, 0, 0, 0)]
}

fn guard() -> Option<UnprivilegedBpf> {
    match UnprivilegedBpf::enable() {
        Ok(g) => Some(g),
        Err(why) => {
            println!("skipped: {why}");
            None
        }
    }
}

#[test]
fn socket_filter_loads_and_other_types_need_privileges() {
    let Some(_g) = guard() else { return };
    // bpf_prog_load: only socket_filter and cgroup_skb without CAP_BPF ("always unpriv" in
    // is_net_admin_prog_type).
    for ty in [
        names::PROG_SOCKET_FILTER,
        names::prog_type_by_name("cgroup_skb").unwrap(),
    ] {
        let got = ProgLoad::new(ty).load_unprivileged(&ret(0)[..]);
        assert!(
            got.result.is_ok(),
            "type {ty}: {:?} {}",
            got.result,
            got.log
        );
    }
    for ty in [names::PROG_XDP, names::PROG_SCHED_CLS, names::PROG_KPROBE] {
        let got = ProgLoad::new(ty).load_unprivileged(&ret(0)[..]);
        assert_eq!(got.result.err(), Some(Errno::EPERM), "type {ty}");
        // The same load with privileges is accepted: the thread, not the process, dropped them.
        let got = ProgLoad::new(ty).load(&ret(0)[..]);
        assert!(got.result.is_ok(), "type {ty} privileged: {}", got.log);
    }
}

#[test]
fn verifier_rules_for_unprivileged_users() {
    let Some(_g) = guard() else { return };
    // r0 = r10; exit: returning the frame pointer leaks a kernel address.
    let leak = [Insn::new(0xbf, 0, 10, 0, 0), Insn::new(0x95, 0, 0, 0, 0)];
    let got = ProgLoad::new(names::PROG_SOCKET_FILTER).load_unprivileged(&leak[..]);
    assert_eq!(got.result.as_ref().err(), Some(&Errno::EACCES));
    assert!(
        got.log.contains("R0 leaks addr as return value"),
        "{}",
        got.log
    );
    // r0 = 0; r0 += 1; if r0 < 3 goto -2; exit: a bounded loop is a back-edge without CAP_BPF.
    let lp = [
        Insn::new(0xb7, 0, 0, 0, 0),
        Insn::new(0x07, 0, 0, 0, 1),
        Insn::new(0xa5, 0, 0, -2, 3),
        Insn::new(0x95, 0, 0, 0, 0),
    ];
    let got = ProgLoad::new(names::PROG_SOCKET_FILTER).load_unprivileged(&lp[..]);
    assert_eq!(got.result.as_ref().err(), Some(&Errno::EINVAL));
    assert!(
        got.log.contains("back-edge from insn 2 to 1"),
        "{}",
        got.log
    );
    let got = ProgLoad::new(names::PROG_SOCKET_FILTER).load(&lp[..]);
    assert!(got.result.is_ok(), "privileged: {}", got.log);
}

#[test]
fn more_than_4096_instructions_need_cap_bpf() {
    let Some(_g) = guard() else { return };
    // BPF_MAXINSNS = 4096 for !bpf_capable.
    for (n, ok) in [(4096usize, true), (4097, false)] {
        let mut p = vec![Insn::new(0xb7, 0, 0, 0, 0); n - 1];
        p.push(Insn::new(0x95, 0, 0, 0, 0));
        let got = ProgLoad::new(names::PROG_SOCKET_FILTER).load_unprivileged(&p[..]);
        if ok {
            assert!(got.result.is_ok(), "{n}: {}", got.log);
        } else {
            assert_eq!(got.result.err(), Some(Errno::E2BIG), "{n}");
        }
    }
}

#[test]
fn the_sysctl_is_restored() {
    let before = std::fs::read_to_string(UNPRIVILEGED_BPF_DISABLED).unwrap_or_default();
    {
        let Some(_g) = guard() else { return };
        let during = std::fs::read_to_string(UNPRIVILEGED_BPF_DISABLED).unwrap();
        assert_eq!(during.trim(), "0");
    }
    // Other tests of this binary may hold a guard right now; only check when none does.
    let after = std::fs::read_to_string(UNPRIVILEGED_BPF_DISABLED).unwrap();
    if after.trim() != "0" {
        assert_eq!(after, before);
    }
}

#[test]
fn the_sysctl_stays_open_until_the_last_guard_drops() {
    let Some(first) = guard() else { return };
    let Some(second) = guard() else { return };
    drop(first);
    // The second guard (its own open file description, as another process would hold) still
    // keeps unprivileged bpf() allowed.
    let now = std::fs::read_to_string(UNPRIVILEGED_BPF_DISABLED).unwrap();
    assert_eq!(now.trim(), "0");
    let sf = ProgLoad::new(names::PROG_SOCKET_FILTER).load_unprivileged(&ret(0)[..]);
    assert!(sf.result.is_ok(), "{}", sf.log);
    drop(second);
}
