//! `BPF_PROG_TEST_RUN`: run a loaded program on a packet, as the kernel's
//! `bpf_prog_test_run_skb` and `bpf_prog_test_run_xdp` (net/bpf/test_run.c) do.
//!
//! For socket, tc and cgroup_skb programs the packet becomes a socket buffer on the loopback
//! device, owned by a dummy socket with the packet's addresses:
//! `eth_type_trans` sets `protocol` and `pkt_type` and pulls the Ethernet header; tc programs
//! get it pushed back (they see layer 2), socket filters start at layer 3, and on the way out
//! the kernel pushes the 14 header bytes back *zeroed* for them — so does bpfkit.
//!
//! The input limits, the context a run may take in (`ctx_in`, see [`super::test_ctx`]) and give
//! back (`ctx_out`), and the `ENOSPC` of a too-small `data_size_out` follow the kernel. Raw
//! tracepoint programs run on their `u64` arguments as the kernel's
//! `bpf_prog_test_run_raw_tp` runs them; kprobe and tracepoint programs, which the kernel cannot
//! test-run, run on a caller-supplied context with [`Bpf::prog_run_tracing`].

use super::load::LoadedProg;
use super::skb::{field, SkBuff, ETH_HLEN};
use super::test_ctx;
use super::xdp::{XdpBuff, XDP_PACKET_HEADROOM};
use crate::errno::Errno;
use crate::helpers::abi;
use crate::maps::ProgEntry;
use crate::object::{Bpf, Fd};
use crate::progtype::{ctx_size, layout::RAW_TP_ARGS_SIZE};
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
    /// `ctx_in`: the context to start from (`struct __sk_buff` for socket and tc programs,
    /// `struct xdp_md` for XDP, the `u64` arguments for raw tracepoints); `None` for the
    /// type's default. When given, the output carries `ctx_out`.
    pub ctx_in: Option<&'a [u8]>,
    /// `data_size_out`: room for the output packet; 0 means no limit (the kernel's "no size
    /// hint"). A larger output is `ENOSPC`.
    pub data_size_out: u32,
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
    /// The context after the run, when one was passed in (`ctx_out`).
    pub ctx_out: Option<Vec<u8>>,
}

/// `ifindex` of the loopback device, which test runs use.
pub const LOOPBACK_IFINDEX: u32 = test_ctx::LOOPBACK_IFINDEX;
/// The page the kernel builds test-run buffers in.
const PAGE_SIZE: usize = 4096;
/// `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` on x86-64: tailroom of test-run buffers.
const SHINFO_SIZE: usize = 320;
/// `NET_SKB_PAD + NET_IP_ALIGN` on x86-64: headroom of skb test-run buffers.
const SKB_HEADROOM: usize = 64;
/// The largest skb test-run packet: a page less head- and tailroom.
pub const MAX_SKB_DATA: usize = PAGE_SIZE - SKB_HEADROOM - SHINFO_SIZE;
/// `MAX_SKB_FRAGS`: pages an XDP test-run packet may continue in.
const MAX_SKB_FRAGS: usize = 17;

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
    /// `EBADF`/`EINVAL` for a bad descriptor; `EINVAL` for a packet shorter than an Ethernet
    /// header or longer than the kernel's test-run page allows, and for a context with fields a
    /// test run may not set; `E2BIG` for non-zero context bytes past the structure; `ENODEV`
    /// for a context naming a device other than the loopback device; `ENOSPC` when the output
    /// packet exceeds `data_size_out`; `ENOTSUPP` for kprobe and tracepoint programs (see
    /// [`Bpf::prog_run_tracing`]); `EFAULT` when a checked run finds a violation.
    pub fn prog_test_run(&self, fd: Fd, attr: &TestRunAttr<'_>) -> Result<TestRunOutput, Errno> {
        let prog = self.prog(fd)?;
        let out = match prog.prog_type() {
            ProgType::SocketFilter
            | ProgType::SchedCls
            | ProgType::SchedAct
            | ProgType::CgroupSkb => run_skb(&prog, attr)?,
            ProgType::Xdp => run_xdp(&prog, attr)?,
            ProgType::RawTracepoint => run_raw_tp(&prog, attr)?,
            t => {
                return Err(Errno::Enotsupp(
                    format!("no test run for {t} programs (use prog_run_tracing)").into(),
                ))
            }
        };
        if attr.data_size_out != 0 && out.data_out.len() > attr.data_size_out as usize {
            return Err(Errno::Enospc(
                format!(
                    "the output packet has {} bytes, data_size_out is {}",
                    out.data_out.len(),
                    attr.data_size_out
                )
                .into(),
            ));
        }
        Ok(out)
    }

    /// Runs a tracing program (kprobe, tracepoint, raw_tracepoint) once on `ctx`: a
    /// `struct pt_regs` image, a tracepoint record, or the raw tracepoint's `u64` arguments.
    /// Returns r0. The kernel has no test run for kprobe and tracepoint programs; this is
    /// bpfkit's way to exercise them on synthetic events.
    ///
    /// # Errors
    /// `EINVAL` for other program types, for a context shorter than the highest byte the
    /// program reads, or longer than the type's context; `EFAULT` when a checked run finds a
    /// violation.
    pub fn prog_run_tracing(&self, fd: Fd, ctx: &[u8], checked: bool) -> Result<u64, Errno> {
        let prog = self.prog(fd)?;
        let t = prog.prog_type();
        if !matches!(
            t,
            ProgType::Kprobe | ProgType::Tracepoint | ProgType::RawTracepoint
        ) {
            return Err(Errno::Einval(
                format!("{t} is not a tracing program type").into(),
            ));
        }
        if ctx.len() > ctx_size(t) as usize {
            return Err(Errno::Einval(
                format!(
                    "the context has {} bytes; {t} contexts have at most {}",
                    ctx.len(),
                    ctx_size(t)
                )
                .into(),
            ));
        }
        run_on_ctx(&prog, ctx, checked)
    }
}

/// Runs `prog` once with r1 pointing to a copy of `ctx` (read-only, 8-byte aligned).
fn run_on_ctx(prog: &LoadedProg, ctx: &[u8], checked: bool) -> Result<u64, Errno> {
    if ctx.len() < prog.max_ctx_offset() as usize {
        return Err(Errno::Einval(
            format!(
                "the context has {} bytes but the program reads up to byte {}",
                ctx.len(),
                prog.max_ctx_offset()
            )
            .into(),
        ));
    }
    let mut words = vec![0u64; ctx.len().div_ceil(8).max(1)];
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
    bytes[..ctx.len()].copy_from_slice(ctx);
    let ptr = words.as_mut_ptr() as u64;
    let attr = TestRunAttr {
        checked,
        ..TestRunAttr::default()
    };
    let (r0, _) = run_repeated(prog, &attr, ptr, &[(ptr, ctx.len() as u64, false)], None)?;
    Ok(r0)
}

/// `bpf_prog_test_run_raw_tp`: no packet, no repeat, `ctx_in` the arguments (at most 12
/// `u64`s, at least as many bytes as the program reads).
fn run_raw_tp(prog: &LoadedProg, attr: &TestRunAttr<'_>) -> Result<TestRunOutput, Errno> {
    if !attr.data_in.is_empty() || attr.repeat != 0 {
        return Err(Errno::Einval(
            "raw tracepoint test runs take neither data_in nor repeat".into(),
        ));
    }
    let ctx = attr.ctx_in.unwrap_or(&[]);
    if ctx.len() > RAW_TP_ARGS_SIZE as usize {
        return Err(Errno::Einval(
            format!("ctx_in has {} bytes, more than 12 arguments", ctx.len()).into(),
        ));
    }
    let r0 = run_on_ctx(prog, ctx, attr.checked)?;
    Ok(TestRunOutput {
        retval: r0 as u32,
        data_out: Vec::new(),
        duration_ns: 0,
        ctx_out: None,
    })
}

/// Runs `prog` `repeat` times with r1 = `ctx`, the packet `[pkt, pkt + len)` for LD_ABS, and
/// (checked runs) the given regions `(start, len, writable)`. Returns the last r0 and the mean
/// duration.
/// The values that direct map-value loads (LD_IMM64 src=2: global data) point into: the one
/// value of each single-element array map the program uses. The checked interpreter must know
/// them, since no helper hands them out.
fn direct_value_regions(prog: &LoadedProg) -> Vec<(u64, u64)> {
    prog.maps()
        .iter()
        .filter(|m| m.info().map_type == crate::maps::MapType::Array && m.info().max_entries == 1)
        .filter_map(|m| {
            let value = m.lookup_ptr(&0u32.to_le_bytes());
            (!value.is_null()).then(|| (value as u64, u64::from(m.info().value_size)))
        })
        .collect()
}

fn run_repeated(
    prog: &LoadedProg,
    attr: &TestRunAttr<'_>,
    ctx: u64,
    regions: &[(u64, u64, bool)],
    packet: Option<(u64, u64)>,
) -> Result<(u64, u32), Errno> {
    let repeat = attr.repeat.max(1);
    let hook = TailCalls::default();
    let mut ctx_run = RunCtx::new().with_arg(1, ctx);
    if let Some((start, len)) = packet {
        // SAFETY: `packet` is the live packet of the buffer the caller owns for the whole run.
        ctx_run = unsafe { ctx_run.with_raw_packet(start, len) };
    }
    let mut ctx_run = ctx_run.with_tail_calls(&hook);
    for &(start, len, writable) in regions {
        // SAFETY: the caller passes its context structure and packet storage, both alive and
        // not borrowed in Rust while the program runs.
        unsafe { ctx_run.add_raw_region(start, len, writable) };
    }
    for m in prog.maps() {
        // SAFETY: a map's kernel image is the first field of its `BpfMap`, which the program
        // holds for its lifetime; the image never changes after creation and the region is
        // read-only, as the verifier allows only reads through map pointers.
        unsafe {
            ctx_run.add_raw_region(
                std::sync::Arc::as_ptr(m) as u64,
                crate::maps::image::IMAGE_SIZE as u64,
                false,
            );
        };
    }
    for (start, len) in direct_value_regions(prog) {
        // SAFETY: the value of a single-element array map lives in the map's storage for as
        // long as the map, which the program holds; programs write it only through pointers
        // the verifier checked, and no Rust reference to it is alive during the run.
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
    let size = attr.data_in.len();
    if !(ETH_HLEN..=MAX_SKB_DATA).contains(&size) {
        return Err(Errno::Einval(
            format!("data_in has {size} bytes; skb test runs take {ETH_HLEN} to {MAX_SKB_DATA}")
                .into(),
        ));
    }
    let ctx_in = attr
        .ctx_in
        .map(|c| test_ctx::ctx_init(c, crate::progtype::layout::SK_BUFF_SIZE as usize))
        .transpose()?;
    if let Some(c) = &ctx_in {
        test_ctx::skb_device(c)?;
    }
    let (protocol, pkt_type) = eth_type_trans(attr.data_in);
    // The kernel wants the whole network header of an IPv4 or IPv6 packet in the buffer.
    let l3 = size - ETH_HLEN;
    let raw = |p: u16| u16::from_le_bytes(p.to_be_bytes());
    let (ipv4, ipv6) = (raw(0x0800), raw(0x86dd));
    if (protocol == ipv4 && l3 < 20) || (protocol == ipv6 && l3 < 40) {
        return Err(Errno::Einval(
            format!("an IP packet of {l3} bytes is shorter than its network header").into(),
        ));
    }
    let mut skb = SkBuff::boxed(attr.data_in);
    let is_l2 = matches!(prog.prog_type(), ProgType::SchedCls | ProgType::SchedAct);
    skb.pull(ETH_HLEN);
    if is_l2 {
        skb.push(ETH_HLEN);
        skb.packet_mut()[..ETH_HLEN].copy_from_slice(&attr.data_in[..ETH_HLEN]);
    }
    {
        let ctx = skb.ctx_mut();
        ctx.set_u32(field::PROTOCOL, u32::from(protocol));
        ctx.set_u32(field::PKT_TYPE, pkt_type);
        ctx.set_u32(field::IFINDEX, LOOPBACK_IFINDEX);
        set_dummy_socket(ctx, protocol, &attr.data_in[ETH_HLEN..]);
    }
    if let Some(c) = &ctx_in {
        let len = skb.packet().len() as u32;
        test_ctx::skb_ctx_in(c, skb.ctx_mut(), len)?;
    }
    let ctx_ptr = skb.ctx_ptr() as u64;
    let ctx_len = std::mem::size_of::<super::skb::SkbCtx>() as u64;
    let (data, data_end) = (skb.ctx().data, skb.ctx().data_end);
    let (buf, buf_len) = skb.storage_range();
    let (r0, duration_ns) = run_repeated(
        prog,
        attr,
        ctx_ptr,
        &[(ctx_ptr, ctx_len, true), (buf, buf_len, true)],
        Some((data, data_end - data)),
    )?;
    if !is_l2 {
        skb.push(ETH_HLEN);
    }
    Ok(TestRunOutput {
        retval: r0 as u32,
        data_out: skb.packet().to_vec(),
        duration_ns,
        ctx_out: ctx_in.map(|c| test_ctx::skb_ctx_out(&c, skb.ctx())),
    })
}

/// The socket fields of the context (`family` to `local_port`, which cgroup_skb programs read
/// through `skb->sk`): the kernel's test run owns the skb by a dummy socket whose family and
/// addresses it takes from the packet's IP header (`bpf_prog_test_run_skb`): the local address
/// is the packet's source, the remote one its destination; ports stay 0.
fn set_dummy_socket(ctx: &mut super::skb::SkbCtx, protocol: u16, l3: &[u8]) {
    const AF_INET: u32 = 2;
    const AF_INET6: u32 = 10;
    let raw = |p: u16| u16::from_le_bytes(p.to_be_bytes());
    let mut put = |off: usize, bytes: &[u8]| {
        if let Some(dst) = ctx.uapi.get_mut(off..off + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    };
    if protocol == raw(0x0800) {
        put(field::FAMILY, &AF_INET.to_le_bytes());
        if let (Some(saddr), Some(daddr)) = (l3.get(12..16), l3.get(16..20)) {
            put(field::LOCAL_IP4, saddr);
            put(field::REMOTE_IP4, daddr);
        }
    } else if protocol == raw(0x86dd) {
        put(field::FAMILY, &AF_INET6.to_le_bytes());
        if let (Some(saddr), Some(daddr)) = (l3.get(8..24), l3.get(24..40)) {
            put(field::LOCAL_IP6, saddr);
            put(field::REMOTE_IP6, daddr);
        }
    }
}

fn run_xdp(prog: &LoadedProg, attr: &TestRunAttr<'_>) -> Result<TestRunOutput, Errno> {
    let total = attr.data_in.len();
    let ctx_in = attr
        .ctx_in
        .map(|c| test_ctx::ctx_init(c, crate::progtype::layout::XDP_MD_SIZE as usize))
        .transpose()?;
    let (meta, linear) = match &ctx_in {
        Some(c) => test_ctx::xdp_ctx_check(c, total)?,
        None => (0, total),
    };
    // Metadata comes out of the headroom; what does not fit in the page (or lies past the
    // context's data_end) goes to fragments.
    let max_linear = PAGE_SIZE - (XDP_PACKET_HEADROOM - meta) - SHINFO_SIZE;
    let linear = linear.min(max_linear);
    if total - meta < ETH_HLEN {
        return Err(Errno::Einval(
            format!("data_in has {total} bytes with {meta} of metadata: no Ethernet header").into(),
        ));
    }
    let mut xdp = XdpBuff::boxed_with_meta(&attr.data_in[..linear], meta)
        .ok_or_else(|| Errno::Einval("metadata longer than data_in".into()))?;
    let rx_queue_index = match &ctx_in {
        Some(c) => test_ctx::xdp_ctx_in(c, meta)?.rx_queue_index,
        None => 0,
    };
    let frags = &attr.data_in[linear..];
    if frags.len().div_ceil(PAGE_SIZE) > MAX_SKB_FRAGS {
        return Err(Errno::Enomem(
            format!("data_in needs more than {MAX_SKB_FRAGS} fragment pages").into(),
        ));
    }
    let ctx_ptr = xdp.ctx_ptr() as u64;
    let ctx_len = std::mem::size_of::<super::xdp::XdpCtx>() as u64;
    {
        let uapi = &mut xdp.ctx_mut().uapi;
        uapi[12..16].copy_from_slice(&LOOPBACK_IFINDEX.to_le_bytes());
        uapi[16..20].copy_from_slice(&rx_queue_index.to_le_bytes());
    }
    let (storage, _, _) = xdp.storage_mut();
    let (buf, buf_len) = (storage.as_mut_ptr() as u64, storage.len() as u64);
    let (r0, duration_ns) = run_repeated(
        prog,
        attr,
        ctx_ptr,
        &[(ctx_ptr, ctx_len, true), (buf, buf_len, true)],
        None,
    )?;
    let mut data_out = xdp.meta_and_packet().to_vec();
    data_out.extend_from_slice(frags);
    // `data_end` is the end of the linear part.
    let ctx_out = ctx_in.map(|c| test_ctx::xdp_ctx_out(&c, xdp.meta_len(), xdp.packet().len()));
    Ok(TestRunOutput {
        retval: r0 as u32,
        data_out,
        duration_ns,
        ctx_out,
    })
}
