//! The buffer an XDP program runs on: `struct xdp_md` as the program sees it, with the packet
//! pointers it really loads after the rewrite (see [`super::skb`] for the idea).

use crate::progtype::layout::XDP_MD_SIZE;

/// Bytes of headroom before the packet (`XDP_PACKET_HEADROOM`).
pub const XDP_PACKET_HEADROOM: usize = 256;
/// Room after the packet for tail adjustments.
pub const XDP_TAILROOM: usize = 256;

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
}

impl XdpBuff {
    /// A buffer holding `packet` on the heap (so the context address stays put).
    #[must_use]
    pub fn boxed(packet: &[u8]) -> Box<XdpBuff> {
        let mut buf = vec![0u8; XDP_PACKET_HEADROOM + packet.len() + XDP_TAILROOM];
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
        });
        b.refresh();
        b
    }

    /// Recomputes the packet pointers.
    pub fn refresh(&mut self) {
        let base = self.buf.as_ptr() as u64;
        self.ctx.data = base + self.head as u64;
        self.ctx.data_end = self.ctx.data + self.len as u64;
        self.ctx.data_meta = self.ctx.data;
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
