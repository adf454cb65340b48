//! Running packet programs on frames: the verdict of each program and the frame it leaves.
//!
//! Each program type sees a frame the way the kernel hands one to it on receive:
//! - **socket filters** with packet-socket semantics (`AF_PACKET`, `SO_ATTACH_BPF`): the skb is
//!   pushed back to the MAC header before `run_filter()` (net/packet/af_packet.c), so the
//!   program sees the frame from the Ethernet header and `skb->len` is the whole frame; the
//!   return value is how many bytes the socket keeps (0 drops);
//! - **tc** (`sched_cls`, `sched_act`) and **XDP** programs as `BPF_PROG_TEST_RUN` runs them
//!   ([`Bpf::prog_test_run`]): from the Ethernet header, rewrites kept.
//!
//! Several programs form a pipeline in the given order (as XDP, then tc ingress, then sockets
//! do on the receive path): each sees the frame the previous one left, and a drop ends it.

use crate::prog::run::{TailCalls, TestRunAttr};
use crate::prog::skb::{field, SkBuff};
use crate::{Bpf, Errno, Fd};
use bpfkit_verifier::env::ProgType;
use bpfkit_vm::RunCtx;
use std::time::Instant;

/// `XDP_PASS`.
pub const XDP_PASS: u32 = 2;
/// `XDP_TX`.
pub const XDP_TX: u32 = 3;
/// `TC_ACT_SHOT`.
pub const TC_ACT_SHOT: u32 = 2;
/// `TC_ACT_STOLEN`.
pub const TC_ACT_STOLEN: u32 = 4;

/// What one program did to one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameRun {
    /// The program's return value (low 32 bits of r0).
    pub retval: u32,
    /// The frame after the program (for a socket filter: cut to what the socket keeps).
    pub data_out: Vec<u8>,
    /// Whether the frame goes on: socket filter r0 > 0; tc neither `TC_ACT_SHOT` nor
    /// `TC_ACT_STOLEN`; XDP `XDP_PASS` or `XDP_TX`; cgroup_skb bit 0 of r0 set.
    pub passes: bool,
    /// Nanoseconds the run took.
    pub duration_ns: u64,
}

/// Whether `retval` lets a frame go on, for a program of type `t`.
#[must_use]
pub fn passes(t: ProgType, retval: u32) -> bool {
    match t {
        ProgType::SocketFilter => retval != 0,
        ProgType::SchedCls | ProgType::SchedAct => retval != TC_ACT_SHOT && retval != TC_ACT_STOLEN,
        ProgType::Xdp => retval == XDP_PASS || retval == XDP_TX,
        // Bit 0 allows the packet; bit 1 (egress only) asks for a congestion notification.
        ProgType::CgroupSkb => retval & 1 == 1,
        _ => false,
    }
}

/// Runs the program behind `fd` on `frame` (an Ethernet frame).
///
/// # Errors
/// `EBADF`/`EINVAL` for a bad descriptor, `EINVAL` for a frame shorter than an Ethernet header,
/// `ENOTSUPP` for a program type that does not run on packets.
pub fn run_frame(bpf: &Bpf, fd: Fd, frame: &[u8]) -> Result<FrameRun, Errno> {
    let prog = bpf.prog(fd)?;
    let t = prog.prog_type();
    if frame.len() < crate::prog::skb::ETH_HLEN {
        return Err(Errno::Einval(
            format!(
                "frame has {} bytes, less than an Ethernet header",
                frame.len()
            )
            .into(),
        ));
    }
    match t {
        ProgType::SocketFilter => {
            let start = Instant::now();
            let (retval, kept) = run_packet_socket_filter(&prog, frame);
            let duration_ns = start.elapsed().as_nanos() as u64;
            Ok(FrameRun {
                retval,
                data_out: frame[..kept].to_vec(),
                passes: retval != 0,
                duration_ns,
            })
        }
        ProgType::SchedCls | ProgType::SchedAct | ProgType::Xdp | ProgType::CgroupSkb => {
            let start = Instant::now();
            let out = bpf.prog_test_run(
                fd,
                &TestRunAttr {
                    data_in: frame,
                    ..Default::default()
                },
            )?;
            let duration_ns = start.elapsed().as_nanos() as u64;
            Ok(FrameRun {
                retval: out.retval,
                passes: passes(t, out.retval),
                data_out: out.data_out,
                duration_ns,
            })
        }
        other => Err(Errno::Enotsupp(
            format!("{other} programs do not run on packets").into(),
        )),
    }
}

/// Runs `fds` in order on `frame`, each on what the previous one left, stopping after the
/// first program that drops it. Returns one [`FrameRun`] per program that ran.
///
/// # Errors
/// As [`run_frame`].
pub fn run_pipeline(bpf: &Bpf, fds: &[Fd], frame: &[u8]) -> Result<Vec<FrameRun>, Errno> {
    let mut runs: Vec<FrameRun> = Vec::with_capacity(fds.len());
    for &fd in fds {
        let input = runs.last().map_or(frame, |r| r.data_out.as_slice());
        let run = run_frame(bpf, fd, input)?;
        let stop = !run.passes;
        runs.push(run);
        if stop {
            break;
        }
    }
    Ok(runs)
}

/// `skb->protocol` (network byte order, as stored) and `skb->pkt_type` for a received frame
/// (`eth_type_trans()`); a unicast destination counts as this host's (`PACKET_HOST`).
fn eth_type_trans(frame: &[u8]) -> (u16, u32) {
    let dest = &frame[..6];
    let pkt_type = if dest == [0xff; 6] {
        1 // PACKET_BROADCAST
    } else if dest[0] & 1 != 0 {
        2 // PACKET_MULTICAST
    } else {
        0 // PACKET_HOST
    };
    let h_proto = u16::from_be_bytes([frame[12], frame[13]]);
    let proto = if h_proto >= 0x0600 {
        h_proto
    } else if frame.get(14..16) == Some(&[0xff, 0xff]) {
        0x0001 // ETH_P_802_3
    } else {
        0x0004 // ETH_P_802_2
    };
    (u16::from_le_bytes(proto.to_be_bytes()), pkt_type)
}

/// A socket filter on a packet socket: r0 and how many bytes of the frame the socket keeps
/// (`pskb_trim(skb, min(res, skb->len))` in `packet_rcv()`).
fn run_packet_socket_filter(prog: &crate::prog::load::LoadedProg, frame: &[u8]) -> (u32, usize) {
    let (protocol, pkt_type) = eth_type_trans(frame);
    let mut skb = SkBuff::boxed(frame);
    {
        let ctx = skb.ctx_mut();
        ctx.set_u32(field::PROTOCOL, u32::from(protocol));
        ctx.set_u32(field::PKT_TYPE, pkt_type);
        ctx.set_u32(field::IFINDEX, crate::prog::run::LOOPBACK_IFINDEX);
        ctx.set_u32(field::INGRESS_IFINDEX, crate::prog::run::LOOPBACK_IFINDEX);
    }
    let ctx_ptr = skb.ctx_ptr() as u64;
    let (data, data_end) = (skb.ctx().data, skb.ctx().data_end);
    let hook = TailCalls::default();
    // SAFETY: `[data, data_end)` is the live packet of `skb`, which this function owns and does
    // not touch from Rust while the program runs.
    let run = unsafe {
        RunCtx::new()
            .with_arg(1, ctx_ptr)
            .with_raw_packet(data, data_end - data)
    }
    .with_tail_calls(&hook);
    let r0 = prog.vm().run_ctx(&run) as u32;
    drop(run);
    let len = skb.packet().len();
    (r0, (r0 as usize).min(len).min(frame.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_kernel_constants() {
        assert!(passes(ProgType::Xdp, XDP_PASS));
        assert!(passes(ProgType::Xdp, XDP_TX));
        assert!(!passes(ProgType::Xdp, 1)); // XDP_DROP
        assert!(!passes(ProgType::Xdp, 0)); // XDP_ABORTED
        assert!(passes(ProgType::SchedCls, 0)); // TC_ACT_OK
        assert!(passes(ProgType::SchedCls, u32::MAX)); // TC_ACT_UNSPEC
        assert!(!passes(ProgType::SchedCls, TC_ACT_SHOT));
        assert!(!passes(ProgType::SocketFilter, 0));
        assert!(passes(ProgType::SocketFilter, 0xffff_ffff));
        // __cgroup_bpf_run_filter_skb: bit 0 allows, bit 1 is the congestion notification.
        assert!(passes(ProgType::CgroupSkb, 1));
        assert!(passes(ProgType::CgroupSkb, 3));
        assert!(!passes(ProgType::CgroupSkb, 0));
        assert!(!passes(ProgType::CgroupSkb, 2));
    }

    #[test]
    fn protocol_is_stored_in_network_order() {
        let mut f = [0u8; 20];
        f[12] = 0x08;
        f[0] = 0xff;
        f[1..6].fill(0xff);
        let (proto, pkt_type) = eth_type_trans(&f);
        assert_eq!(proto, u16::from_le_bytes([0x08, 0x00]));
        assert_eq!(pkt_type, 1);
    }
}
