//! `BPF_PROG_TEST_RUN`: run a loaded program on a packet, as the kernel's
//! `bpf_prog_test_run_skb` and `bpf_prog_test_run_xdp` (net/bpf/test_run.c) do.
//!
//! For socket and tc programs the packet becomes a socket buffer on the loopback device:
//! `eth_type_trans` sets `protocol` and `pkt_type` and pulls the Ethernet header; tc programs
//! get it pushed back (they see layer 2), socket filters start at layer 3, and on the way out
//! the kernel pushes the 14 header bytes back *zeroed* for them — so does bpfkit.

use super::load::LoadedProg;
use super::skb::{field, SkBuff, ETH_HLEN};
use super::xdp::XdpBuff;
use crate::errno::Errno;
use crate::helpers::abi;
use crate::maps::ProgEntry;
use crate::object::{Bpf, Fd};
use bpfkit_verifier::env::ProgType;
use bpfkit_vm::{RunCtx, TailCallHook, TailCallTarget, Vm};
use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

/// The inputs of a test run.
#[derive(Debug, Clone, Default)]
pub struct TestRunAttr<'a> {
    /// The packet (at least an Ethernet header for packet program types).
    pub data_in: &'a [u8],
    /// How many times to run (0 counts as 1); the duration is the mean.
    pub repeat: u32,
    /// Run in the checked interpreter (every access checked: the soundness oracle).
    pub checked: bool,
}

/// What a test run gives back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRunOutput {
    /// The program's return value (the low 32 bits of r0, as the kernel reports it).
    pub retval: u32,
    /// The packet after the last run.
    pub data_out: Vec<u8>,
    /// Mean nanoseconds per run.
    pub duration_ns: u32,
}

/// `ifindex` of the loopback device, which test runs use.
pub const LOOPBACK_IFINDEX: u32 = 1;

/// Resolves tail calls through prog arrays, keeping every program it hands out alive until the
/// run ends.
#[derive(Default)]
pub struct TailCalls {
    keep: RefCell<Vec<Arc<dyn ProgEntry>>>,
}

impl TailCallHook for TailCalls {
    fn tail_call_target(&self, map: u64, index: u32) -> TailCallTarget<'_> {
        // SAFETY: r2 of bpf_tail_call is an ARG_CONST_MAP_PTR the verifier checked: the address
        // of a map the running program holds.
        let m = unsafe { abi::map(map) };
        let Some(pa) = m.as_prog_array() else {
            return TailCallTarget::OutOfRange;
        };
        if index >= m.info().max_entries {
            return TailCallTarget::OutOfRange;
        }
        let Some(entry) = pa.get(index) else {
            return TailCallTarget::Empty;
        };
        let Some(prog) = entry.as_any().downcast_ref::<LoadedProg>() else {
            return TailCallTarget::Empty;
        };
        let vm: *const Vm = prog.vm();
        self.keep.borrow_mut().push(Arc::clone(&entry));
        // SAFETY: the Vm lives inside the Arc's allocation, which `keep` now holds until this
        // hook is dropped (after the run); the allocation does not move when `keep` grows.
        TailCallTarget::Program(unsafe { &*vm })
    }
}

/// `eth_type_trans` on the loopback device: the skb's `protocol` and `pkt_type`.
fn eth_type_trans(frame: &[u8]) -> (u16, u32) {
    let dest = &frame[..6];
    // The loopback device's address and broadcast address are both all zeros.
    let pkt_type = if dest == [0; 6] {
        0 // PACKET_HOST
    } else if dest[0] & 1 != 0 {
        2 // PACKET_MULTICAST (not the device's all-zero broadcast address)
    } else {
        3 // PACKET_OTHERHOST
    };
    let h_proto = u16::from_be_bytes([frame[12], frame[13]]);
    let proto = if h_proto >= 0x0600 {
        h_proto
    } else if frame.get(14..16) == Some(&[0xff, 0xff]) {
        0x0001 // ETH_P_802_3
    } else {
        0x0004 // ETH_P_802_2
    };
    // skb->protocol is stored in network byte order.
    (u16::from_le_bytes(proto.to_be_bytes()), pkt_type)
}

impl Bpf {
    /// `BPF_PROG_TEST_RUN` of the program behind `fd`.
    ///
    /// # Errors
    /// `EBADF`/`EINVAL` for a bad descriptor, `EINVAL` for a packet shorter than an Ethernet
    /// header, `ENOTSUPP` for program types without a test run, `EFAULT` when a checked run finds
    /// a violation (with the interpreter's message).
    pub fn prog_test_run(&self, fd: Fd, attr: &TestRunAttr<'_>) -> Result<TestRunOutput, Errno> {
        let prog = self.prog(fd)?;
        if attr.data_in.len() < ETH_HLEN {
            return Err(Errno::Einval(
                format!(
                    "data_in has {} bytes, less than an Ethernet header",
                    attr.data_in.len()
                )
                .into(),
            ));
        }
        match prog.prog_type() {
            ProgType::SocketFilter | ProgType::SchedCls | ProgType::SchedAct => {
                run_skb(&prog, attr)
            }
            ProgType::Xdp => run_xdp(&prog, attr),
            t => Err(Errno::Enotsupp(
                format!("no test run for {t} programs").into(),
            )),
        }
    }
}

/// Runs `prog` `repeat` times with r1 = `ctx`, the packet `[pkt, pkt + len)` for LD_ABS, and
/// (checked runs) the given regions. Returns the last r0 and the mean duration.
fn run_repeated(
    prog: &LoadedProg,
    attr: &TestRunAttr<'_>,
    ctx: u64,
    regions: &[(u64, u64)],
    packet: (u64, u64),
) -> Result<(u64, u32), Errno> {
    let repeat = attr.repeat.max(1);
    let hook = TailCalls::default();
    // SAFETY: `packet` is the live packet of the buffer the caller owns for the whole run.
    let mut ctx_run = unsafe {
        RunCtx::new()
            .with_arg(1, ctx)
            .with_raw_packet(packet.0, packet.1)
    }
    .with_tail_calls(&hook);
    for &(start, len) in regions {
        // SAFETY: the caller passes its context structure and packet storage, both alive and
        // not borrowed in Rust while the program runs.
        unsafe { ctx_run.add_raw_region(start, len, true) };
    }
    let start = Instant::now();
    let mut r0 = 0;
    for _ in 0..repeat {
        r0 = if attr.checked {
            prog.vm()
                .run_checked(&ctx_run)
                .map_err(|e| Errno::Efault(format!("checked run: {e}").into()))?
        } else {
            prog.vm().run_ctx(&ctx_run)
        };
    }
    let mean = start.elapsed().as_nanos() / u128::from(repeat);
    Ok((r0, u32::try_from(mean).unwrap_or(u32::MAX)))
}

fn run_skb(prog: &LoadedProg, attr: &TestRunAttr<'_>) -> Result<TestRunOutput, Errno> {
    let (protocol, pkt_type) = eth_type_trans(attr.data_in);
    let mut skb = SkBuff::boxed(attr.data_in);
    let is_l2 = matches!(prog.prog_type(), ProgType::SchedCls | ProgType::SchedAct);
    skb.pull(ETH_HLEN);
    if is_l2 {
        skb.push(ETH_HLEN);
        let n = attr.data_in.len().min(ETH_HLEN);
        skb.packet_mut()[..n].copy_from_slice(&attr.data_in[..n]);
    }
    {
        let ctx = skb.ctx_mut();
        ctx.set_u32(field::PROTOCOL, u32::from(protocol));
        ctx.set_u32(field::PKT_TYPE, pkt_type);
        ctx.set_u32(field::IFINDEX, LOOPBACK_IFINDEX);
    }
    let ctx_ptr = skb.ctx_ptr() as u64;
    let ctx_len = std::mem::size_of::<super::skb::SkbCtx>() as u64;
    let (data, data_end) = (skb.ctx().data, skb.ctx().data_end);
    let (r0, duration_ns) = run_repeated(
        prog,
        attr,
        ctx_ptr,
        &[(ctx_ptr, ctx_len), (data, data_end - data)],
        (data, data_end - data),
    )?;
    let mut data_out = skb.packet().to_vec();
    if !is_l2 {
        let mut out = vec![0u8; ETH_HLEN];
        out.append(&mut data_out);
        data_out = out;
    }
    Ok(TestRunOutput {
        retval: r0 as u32,
        data_out,
        duration_ns,
    })
}

fn run_xdp(prog: &LoadedProg, attr: &TestRunAttr<'_>) -> Result<TestRunOutput, Errno> {
    let mut xdp = XdpBuff::boxed(attr.data_in);
    let ctx_ptr = xdp.ctx_ptr() as u64;
    let ctx_len = std::mem::size_of::<super::xdp::XdpCtx>() as u64;
    xdp.ctx_mut().uapi[12..16].copy_from_slice(&LOOPBACK_IFINDEX.to_le_bytes());
    let (storage, _, _) = xdp.storage_mut();
    let (buf, buf_len) = (storage.as_mut_ptr() as u64, storage.len() as u64);
    let data = xdp.packet().as_ptr() as u64;
    let len = xdp.packet().len() as u64;
    let (r0, duration_ns) = run_repeated(
        prog,
        attr,
        ctx_ptr,
        &[(ctx_ptr, ctx_len), (buf, buf_len)],
        (data, len),
    )?;
    Ok(TestRunOutput {
        retval: r0 as u32,
        data_out: xdp.packet().to_vec(),
        duration_ns,
    })
}
