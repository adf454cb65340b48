//! The buffer an XDP program runs on: `struct xdp_md` as the program sees it, with the packet
//! pointers it really loads after the rewrite (see [`super::skb`] for the idea).

use crate::progtype::layout::XDP_MD_SIZE;

/// Bytes of headroom before the packet (`XDP_PACKET_HEADROOM`).
pub const XDP_PACKET_HEADROOM: usize = 256;
/// Room after the packet for tail adjustments.
pub const XDP_TAILROOM: usize = 256;
/// Where `xdp_data_hard_end` lies from the buffer start: a test run's frame is a page (4096
/// bytes) whose last `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` (320 on x86-64) bytes
/// are reserved, so `bpf_xdp_adjust_tail` may grow the packet up to here.
pub const XDP_HARD_END: usize = 4096 - 320;
/// `sizeof(struct xdp_frame)`, which the kernel keeps free at the start of the headroom: the
/// lowest `bpf_xdp_adjust_head` may move the packet start to (with the metadata before it).
pub const XDP_FRAME_SIZE: usize = 40;
/// `ETH_HLEN`: the shortest packet `bpf_xdp_adjust_head` leaves.
const ETH_HLEN: usize = 14;
/// `-EINVAL`
const EINVAL: i64 = -22;

/// What r1 points to: the `xdp_md` image, then the real packet pointers.
#[repr(C, align(8))]
#[derive(Debug, Clone)]
pub struct XdpCtx {
    /// `struct xdp_md` at its uapi offsets (`ingress_ifindex`, `rx_queue_index`, ...).
    pub uapi: [u8; XDP_MD_SIZE as usize],
    /// Address of the first packet byte.
    pub data: u64,
    /// Address one past the last packet byte.
    pub data_end: u64,
    /// Address of the metadata before the packet (equal to `data` when there is none).
    pub data_meta: u64,
}

impl XdpCtx {
    /// Where a load of `xdp_md` offset `off` really reads: the pointer fields for `data` (0),
    /// `data_end` (4) and `data_meta` (8); `None` for the other fields (read in place).
    #[must_use]
    pub fn pointer_field(off: i32) -> Option<i16> {
        let base = XDP_MD_SIZE as i16;
        match off {
            0 => Some(base),
            4 => Some(base + 8),
            8 => Some(base + 16),
            _ => None,
        }
    }
}

/// An XDP buffer: context first (so r1 is also the buffer's address), then the packet storage.
#[repr(C)]
#[derive(Debug)]
pub struct XdpBuff {
    ctx: XdpCtx,
    buf: Vec<u8>,
    head: usize,
    len: usize,
    /// Metadata bytes right before the packet.
    meta: usize,
}

impl XdpBuff {
    /// A buffer holding `packet` on the heap (so the context address stays put).
    #[must_use]
    pub fn boxed(packet: &[u8]) -> Box<XdpBuff> {
        let len = (XDP_PACKET_HEADROOM + packet.len() + XDP_TAILROOM).max(XDP_HARD_END);
        let mut buf = vec![0u8; len];
        buf[XDP_PACKET_HEADROOM..XDP_PACKET_HEADROOM + packet.len()].copy_from_slice(packet);
        let mut b = Box::new(XdpBuff {
            ctx: XdpCtx {
                uapi: [0; XDP_MD_SIZE as usize],
                data: 0,
                data_end: 0,
                data_meta: 0,
            },
            buf,
            head: XDP_PACKET_HEADROOM,
            len: packet.len(),
            meta: 0,
        });
        b.refresh();
        b
    }

    /// A buffer whose first `meta` bytes of `frame` are metadata before the packet, as a test
    /// run with an `xdp_md` context whose `data` is `meta` lays it out (the packet still starts
    /// `XDP_PACKET_HEADROOM` bytes into the buffer). `None` when `meta` exceeds the frame.
    #[must_use]
    pub fn boxed_with_meta(frame: &[u8], meta: usize) -> Option<Box<XdpBuff>> {
        let packet = frame.get(meta..)?;
        let mut b = XdpBuff::boxed(packet);
        b.meta = meta;
        let head = b.head;
        b.buf
            .get_mut(head - meta..head)?
            .copy_from_slice(&frame[..meta]);
        b.refresh();
        Some(b)
    }

    /// Recomputes the packet pointers.
    pub fn refresh(&mut self) {
        let base = self.buf.as_ptr() as u64;
        self.ctx.data = base + self.head as u64;
        self.ctx.data_end = self.ctx.data + self.len as u64;
        self.ctx.data_meta = self.ctx.data - self.meta as u64;
    }

    /// `bpf_xdp_adjust_head(xdp, offset)`: moves the packet start by `offset` bytes (negative
    /// grows the packet into the headroom), carrying the metadata along. `-EINVAL` when the
    /// start would pass into the reserved `xdp_frame` area or leave less than an Ethernet
    /// header.
    pub fn adjust_head(&mut self, offset: i32) -> i64 {
        let data_start = (XDP_FRAME_SIZE + self.meta) as i64;
        let new = self.head as i64 + i64::from(offset);
        let end = (self.head + self.len) as i64;
        if new < data_start || new > end - ETH_HLEN as i64 {
            return EINVAL;
        }
        let new = new as usize;
        if self.meta > 0 {
            self.buf
                .copy_within(self.head - self.meta..self.head, new - self.meta);
        }
        self.len = (end as usize) - new;
        self.head = new;
        self.refresh();
        0
    }

    /// `bpf_xdp_adjust_tail(xdp, offset)`: moves the packet end by `offset` bytes (positive
    /// grows it, with zeroed bytes). `-EINVAL` when the end would pass `xdp_data_hard_end` or
    /// leave less than an Ethernet header (net/core/filter.c).
    pub fn adjust_tail(&mut self, offset: i32) -> i64 {
        let hard_end = XDP_HARD_END.min(self.buf.len()) as i64;
        let end = (self.head + self.len) as i64;
        let new_end = end + i64::from(offset);
        if new_end > hard_end || new_end < (self.head + ETH_HLEN) as i64 {
            return EINVAL;
        }
        let (end, new_end) = (end as usize, new_end as usize);
        if new_end > end {
            self.buf[end..new_end].fill(0);
        }
        self.len = new_end - self.head;
        self.refresh();
        0
    }

    /// The metadata followed by the packet (what a test run reports as `data_out`).
    #[must_use]
    pub fn meta_and_packet(&self) -> &[u8] {
        &self.buf[self.head - self.meta..self.head + self.len]
    }

    /// Metadata length in bytes.
    #[must_use]
    pub fn meta_len(&self) -> usize {
        self.meta
    }

    /// The packet.
    #[must_use]
    pub fn packet(&self) -> &[u8] {
        &self.buf[self.head..self.head + self.len]
    }

    /// The packet, mutable.
    pub fn packet_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.head..self.head + self.len]
    }

    /// The context, mutable.
    pub fn ctx_mut(&mut self) -> &mut XdpCtx {
        &mut self.ctx
    }

    /// The context's address: the program's r1.
    pub fn ctx_ptr(&mut self) -> *mut XdpCtx {
        &raw mut self.ctx
    }

    /// The context as bytes, for the checked interpreter's regions.
    pub fn ctx_bytes_mut(&mut self) -> &mut [u8] {
        let ptr = (&raw mut self.ctx).cast::<u8>();
        // SAFETY: `XdpCtx` is `repr(C)` plain data without padding (24 bytes, then three u64s
        // at 8-byte alignment), viewed as bytes for the borrow of `self`.
        unsafe { std::slice::from_raw_parts_mut(ptr, std::mem::size_of::<XdpCtx>()) }
    }

    /// The packet storage with its head- and tailroom, and the packet's place in it.
    pub fn storage_mut(&mut self) -> (&mut [u8], usize, usize) {
        (&mut self.buf, self.head, self.len)
    }
}
