//! The context a test run takes in and gives back (`ctx_in` / `ctx_out` of
//! `BPF_PROG_TEST_RUN`), checked field by field as net/bpf/test_run.c does:
//! `convert___skb_to_skb` / `convert_skb_to___skb` for socket and tc programs,
//! `xdp_convert_md_to_buff` / `xdp_convert_buff_to_md` for XDP.
//!
//! bpfkit models one network device, the loopback device (ifindex 1) that test runs use; a
//! context naming any other device gets `ENODEV`, as it would in a network namespace that has
//! only `lo`.

use super::skb::{field, SkbCtx};
use crate::errno::Errno;
use crate::progtype::layout::{SK_BUFF_SIZE, XDP_MD_SIZE};

/// `GSO_MAX_SEGS`
pub const GSO_MAX_SEGS: u32 = 65535;
/// `GSO_LEGACY_MAX_SIZE`
pub const GSO_LEGACY_MAX_SIZE: u32 = 65536;
/// The one device bpfkit models: the loopback device.
pub const LOOPBACK_IFINDEX: u32 = 1;
/// `ENODEV`
const ENODEV: i32 = 19;

fn einval(msg: String) -> Errno {
    Errno::Einval(msg.into())
}

/// `bpf_ctx_init`: the context padded or cut to `size` bytes; bytes past `size` must be zero
/// (`bpf_check_uarg_tail_zero`: `E2BIG` otherwise).
pub fn ctx_init(ctx_in: &[u8], size: usize) -> Result<Vec<u8>, Errno> {
    if let Some(tail) = ctx_in.get(size..) {
        if let Some(i) = tail.iter().position(|&b| b != 0) {
            return Err(Errno::E2big(
                format!(
                    "ctx_in byte {} is past the {size}-byte context and not zero",
                    size + i
                )
                .into(),
            ));
        }
    }
    let mut out = vec![0u8; size];
    let n = ctx_in.len().min(size);
    out[..n].copy_from_slice(&ctx_in[..n]);
    Ok(out)
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(w)
}

/// `struct __sk_buff` byte ranges a test-run context may set: mark, priority through ifindex,
/// cb, tstamp through gso_segs, gso_size, hwtstamp. Everything else must be zero.
const SKB_SETTABLE: [(usize, usize); 6] = [
    (field::MARK, field::MARK + 4),
    (field::PRIORITY, field::IFINDEX + 4),
    (field::CB, field::CB + 20),
    (field::TSTAMP, field::GSO_SEGS + 4),
    (field::GSO_SIZE, field::GSO_SIZE + 4),
    (field::HWTSTAMP, field::HWTSTAMP + 8),
];

/// The device a test-run `__sk_buff` context names (`ifindex` greater than 1 is looked up):
/// `ENODEV` for any but the loopback device.
pub fn skb_device(ctx: &[u8]) -> Result<(), Errno> {
    let ifindex = u32_at(ctx, field::IFINDEX);
    if ifindex > LOOPBACK_IFINDEX {
        return Err(Errno::Other(
            ENODEV,
            format!("ctx_in ifindex {ifindex}: no such device (bpfkit models only lo)").into(),
        ));
    }
    Ok(())
}

/// `convert___skb_to_skb`: checks a 192-byte `__sk_buff` and copies the settable fields into
/// the program's context. `pkt_len` is the skb length at that point (what `wire_len` defaults
/// to).
pub fn skb_ctx_in(ctx: &[u8], skb: &mut SkbCtx, pkt_len: u32) -> Result<(), Errno> {
    let mut allowed = [false; SK_BUFF_SIZE as usize];
    for (a, b) in SKB_SETTABLE {
        allowed[a..b].fill(true);
    }
    if let Some(off) = (0..ctx.len()).find(|&i| ctx[i] != 0 && !allowed[i]) {
        return Err(einval(format!(
            "ctx_in byte {off} is set, but a test run may set only mark, priority, \
             ingress_ifindex, ifindex, cb, tstamp, wire_len, gso_segs, gso_size and hwtstamp"
        )));
    }
    let wire_len = u32_at(ctx, field::WIRE_LEN);
    let pkt_len = if wire_len == 0 {
        pkt_len
    } else if wire_len < pkt_len || wire_len > GSO_LEGACY_MAX_SIZE {
        return Err(einval(format!(
            "ctx_in wire_len {wire_len} is below the packet length {pkt_len} or above {GSO_LEGACY_MAX_SIZE}"
        )));
    } else {
        wire_len
    };
    let gso_segs = u32_at(ctx, field::GSO_SEGS);
    if gso_segs > GSO_MAX_SEGS {
        return Err(einval(format!(
            "ctx_in gso_segs {gso_segs} is above {GSO_MAX_SEGS}"
        )));
    }
    for off in [field::MARK, field::PRIORITY, field::INGRESS_IFINDEX] {
        skb.set_u32(off, u32_at(ctx, off));
    }
    skb.uapi[field::CB..field::CB + 20].copy_from_slice(&ctx[field::CB..field::CB + 20]);
    skb.uapi[field::TSTAMP..field::TSTAMP + 8]
        .copy_from_slice(&ctx[field::TSTAMP..field::TSTAMP + 8]);
    skb.set_u32(field::WIRE_LEN, pkt_len);
    skb.set_u32(field::GSO_SEGS, gso_segs);
    // skb_shared_info keeps gso_size (and gso_segs) in 16 bits.
    skb.set_u32(field::GSO_SIZE, u32_at(ctx, field::GSO_SIZE) & 0xffff);
    skb.uapi[field::HWTSTAMP..field::HWTSTAMP + 8]
        .copy_from_slice(&ctx[field::HWTSTAMP..field::HWTSTAMP + 8]);
    Ok(())
}

/// `convert_skb_to___skb`: the context given back, `ctx` (the input, or zeros) with the
/// fields the kernel reports replaced by their values after the run.
pub fn skb_ctx_out(ctx: &[u8], skb: &SkbCtx) -> Vec<u8> {
    let mut out = ctx.to_vec();
    out.resize(SK_BUFF_SIZE as usize, 0);
    for (a, b) in [
        (field::MARK, field::MARK + 4),
        (field::PRIORITY, field::IFINDEX + 4),
        (field::CB, field::CB + 20),
        (field::TSTAMP, field::TSTAMP + 8),
        (field::WIRE_LEN, field::GSO_SEGS + 4),
        (field::HWTSTAMP, field::HWTSTAMP + 8),
    ] {
        out[a..b].copy_from_slice(&skb.uapi[a..b]);
    }
    out
}

/// `xdp_md` field offsets.
pub mod xdp_field {
    /// `data`
    pub const DATA: usize = 0;
    /// `data_end`
    pub const DATA_END: usize = 4;
    /// `data_meta`
    pub const DATA_META: usize = 8;
    /// `ingress_ifindex`
    pub const INGRESS_IFINDEX: usize = 12;
    /// `rx_queue_index`
    pub const RX_QUEUE_INDEX: usize = 16;
    /// `egress_ifindex`
    pub const EGRESS_IFINDEX: usize = 20;
}

/// What an `xdp_md` test-run context asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XdpCtxIn {
    /// Metadata bytes at the start of `data_in` (`xdp_md.data`).
    pub meta: usize,
    /// The receive queue (`rx_queue_index`) of the loopback device.
    pub rx_queue_index: u32,
}

/// The most metadata a test run may place before the packet: `skb_shared_info.meta_len` is
/// a `u8` (255, so 252 in steps of 4), and the metadata must leave the `xdp_frame` room of the
/// 256-byte headroom (216).
pub const XDP_MAX_META: u32 = 216;

/// The first checks of `bpf_prog_test_run_xdp` on its context: no `data_meta`, `data_end`
/// within the input, `data` (the metadata length) a multiple of 4 up to [`XDP_MAX_META`].
/// Returns `(metadata length, linear length)`: bytes of the input past `data_end` go to
/// fragments.
pub fn xdp_ctx_check(ctx: &[u8], data_size_in: usize) -> Result<(usize, usize), Errno> {
    let data = u32_at(ctx, xdp_field::DATA);
    let data_end = u32_at(ctx, xdp_field::DATA_END);
    let data_meta = u32_at(ctx, xdp_field::DATA_META);
    if data_meta != 0
        || data_end as usize > data_size_in
        || data > data_end
        || data & 3 != 0
        || data > XDP_MAX_META
    {
        return Err(einval(format!(
            "xdp_md ctx_in: data_meta must be 0 (is {data_meta}), data_end at most the input \
             size {data_size_in} (is {data_end}), data a metadata length of at most \
             {XDP_MAX_META} in steps of 4 (is {data})"
        )));
    }
    Ok((data as usize, data_end as usize))
}

/// `xdp_convert_md_to_buff`: the receive queue the context names.
pub fn xdp_ctx_in(ctx: &[u8], meta: usize) -> Result<XdpCtxIn, Errno> {
    if u32_at(ctx, xdp_field::EGRESS_IFINDEX) != 0 {
        return Err(einval("xdp_md ctx_in: egress_ifindex must be 0".into()));
    }
    let ingress = u32_at(ctx, xdp_field::INGRESS_IFINDEX);
    let rxq = u32_at(ctx, xdp_field::RX_QUEUE_INDEX);
    if ingress == 0 && rxq != 0 {
        return Err(einval(
            "xdp_md ctx_in: rx_queue_index needs an ingress_ifindex".into(),
        ));
    }
    if ingress != 0 {
        if ingress != LOOPBACK_IFINDEX {
            return Err(Errno::Other(
                ENODEV,
                format!("xdp_md ctx_in ingress_ifindex {ingress}: no such device").into(),
            ));
        }
        // The loopback device has one receive queue.
        if rxq >= 1 {
            return Err(einval(format!(
                "xdp_md ctx_in rx_queue_index {rxq}: lo has one receive queue"
            )));
        }
    }
    Ok(XdpCtxIn {
        meta,
        rx_queue_index: rxq,
    })
}

/// `xdp_convert_buff_to_md`: the context given back: `data` and `data_end` relative to the
/// metadata start, the rest as passed in.
pub fn xdp_ctx_out(ctx: &[u8], meta: usize, len: usize) -> Vec<u8> {
    let mut out = ctx.to_vec();
    out.resize(XDP_MD_SIZE as usize, 0);
    let put = |o: &mut Vec<u8>, off: usize, v: usize| {
        let v = u32::try_from(v).unwrap_or(u32::MAX);
        o[off..off + 4].copy_from_slice(&v.to_le_bytes());
    };
    put(&mut out, xdp_field::DATA, meta);
    put(&mut out, xdp_field::DATA_END, meta + len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_settable_skb_fields_may_be_set() {
        let mut skb = SkbCtx {
            uapi: [0; SK_BUFF_SIZE as usize],
            data: 0,
            data_end: 0,
            data_meta: 0,
        };
        let mut ctx = vec![0u8; SK_BUFF_SIZE as usize];
        ctx[field::MARK] = 7;
        ctx[field::CB + 19] = 1;
        assert!(skb_ctx_in(&ctx, &mut skb, 60).is_ok());
        assert_eq!(skb.get_u32(field::MARK), 7);
        assert_eq!(skb.get_u32(field::WIRE_LEN), 60);
        ctx[field::LEN] = 1;
        assert_eq!(
            skb_ctx_in(&ctx, &mut skb, 60).map_err(|e| e.code()),
            Err(22)
        );
        ctx[field::LEN] = 0;
        ctx[field::WIRE_LEN] = 10;
        assert_eq!(
            skb_ctx_in(&ctx, &mut skb, 60).map_err(|e| e.code()),
            Err(22)
        );
    }

    #[test]
    fn ctx_tail_must_be_zero() {
        assert_eq!(ctx_init(&[1, 2, 0, 0], 2).ok(), Some(vec![1, 2]));
        assert_eq!(ctx_init(&[1, 2, 0, 3], 2).map_err(|e| e.code()), Err(7));
        assert_eq!(ctx_init(&[1], 3).ok(), Some(vec![1, 0, 0]));
    }

    #[test]
    fn xdp_context_rules() {
        let mut ctx = vec![0u8; 24];
        ctx[4] = 64;
        assert_eq!(xdp_ctx_check(&ctx, 64).ok(), Some((0, 64)));
        assert_eq!(
            xdp_ctx_check(&ctx, 65).ok(),
            Some((0, 64)),
            "the rest in fragments"
        );
        assert!(xdp_ctx_check(&ctx, 63).is_err());
        ctx[0] = 6;
        assert!(
            xdp_ctx_check(&ctx, 64).is_err(),
            "metadata length not a multiple of 4"
        );
        ctx[0] = 8;
        assert_eq!(xdp_ctx_check(&ctx, 64).ok(), Some((8, 64)));
        ctx[16] = 1;
        assert!(xdp_ctx_in(&ctx, 8).is_err(), "queue without device");
        ctx[12] = 2;
        assert_eq!(xdp_ctx_in(&ctx, 8).map_err(|e| e.code()), Err(19));
        ctx[12] = 1;
        assert_eq!(xdp_ctx_in(&ctx, 8).map_err(|e| e.code()), Err(22));
        ctx[16] = 0;
        assert!(xdp_ctx_in(&ctx, 8).is_ok());
    }
}
