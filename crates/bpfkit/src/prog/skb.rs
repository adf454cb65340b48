//! The socket buffer that socket_filter, sched_cls, sched_act and cgroup_skb programs run on.
//!
//! A program sees `struct __sk_buff` (include/uapi/linux/bpf.h). The kernel keeps its real
//! `struct sk_buff` elsewhere and rewrites every context access (`convert_ctx_access`). bpfkit
//! keeps the uapi image itself as the first 192 bytes of [`SkbCtx`], so every plain field is
//! read where the program expects it, and only the three packet pointers — 32-bit fields in the
//! uapi, 64-bit pointers in reality — move: loads of `data`, `data_end` and `data_meta` are
//! rewritten to 8-byte loads of the pointer fields that follow the image
//! (see [`SkbCtx::pointer_field`]).
//!
//! The packet lives in one buffer with head- and tailroom, as an skb's linear area does;
//! helpers that change the packet (`bpf_skb_store_bytes`, `bpf_skb_vlan_push`, ...) go through
//! [`SkBuff`] and refresh the pointers and `len` afterwards.

use crate::helpers::tunnel::TunnelInfo;
use crate::progtype::layout::SK_BUFF_SIZE;

/// Room kept before the packet for pushes (vlan_push, change_head).
pub const HEADROOM: usize = 256;
/// Room kept after the packet for change_tail.
pub const TAILROOM: usize = 256;
/// Ethernet header length (`ETH_HLEN`).
pub const ETH_HLEN: usize = 14;

/// Offsets of the `__sk_buff` fields the runtime fills (include/uapi/linux/bpf.h).
pub mod field {
    /// `len`
    pub const LEN: usize = 0;
    /// `pkt_type`
    pub const PKT_TYPE: usize = 4;
    /// `mark`
    pub const MARK: usize = 8;
    /// `queue_mapping`
    pub const QUEUE_MAPPING: usize = 12;
    /// `protocol` (network byte order, as the skb stores it)
    pub const PROTOCOL: usize = 16;
    /// `vlan_present`
    pub const VLAN_PRESENT: usize = 20;
    /// `vlan_tci`
    pub const VLAN_TCI: usize = 24;
    /// `vlan_proto`
    pub const VLAN_PROTO: usize = 28;
    /// `priority`
    pub const PRIORITY: usize = 32;
    /// `ingress_ifindex`
    pub const INGRESS_IFINDEX: usize = 36;
    /// `ifindex`
    pub const IFINDEX: usize = 40;
    /// `tc_index`
    pub const TC_INDEX: usize = 44;
    /// `cb[0]`
    pub const CB: usize = 48;
    /// `hash`
    pub const HASH: usize = 68;
    /// `tc_classid`
    pub const TC_CLASSID: usize = 72;
    /// `data` (rewritten)
    pub const DATA: usize = 76;
    /// `data_end` (rewritten)
    pub const DATA_END: usize = 80;
    /// `family` (of the socket, `skb->sk`)
    pub const FAMILY: usize = 88;
    /// `remote_ip4` (network byte order)
    pub const REMOTE_IP4: usize = 92;
    /// `local_ip4` (network byte order)
    pub const LOCAL_IP4: usize = 96;
    /// `remote_ip6[4]` (network byte order)
    pub const REMOTE_IP6: usize = 100;
    /// `local_ip6[4]` (network byte order)
    pub const LOCAL_IP6: usize = 116;
    /// `data_meta` (rewritten)
    pub const DATA_META: usize = 140;
    /// `tstamp`
    pub const TSTAMP: usize = 152;
    /// `wire_len`
    pub const WIRE_LEN: usize = 160;
    /// `gso_segs`
    pub const GSO_SEGS: usize = 164;
    /// `gso_size`
    pub const GSO_SIZE: usize = 176;
    /// `hwtstamp`
    pub const HWTSTAMP: usize = 184;
}

/// What r1 points to: the `__sk_buff` image, then the real packet pointers.
#[repr(C, align(8))]
#[derive(Debug, Clone)]
pub struct SkbCtx {
    /// `struct __sk_buff` at its uapi offsets.
    pub uapi: [u8; SK_BUFF_SIZE as usize],
    /// Address of the first packet byte (what `__sk_buff.data` means).
    pub data: u64,
    /// Address one past the last packet byte (`__sk_buff.data_end`).
    pub data_end: u64,
    /// Address of the metadata before the packet (`__sk_buff.data_meta`); equal to `data`
    /// when there is none.
    pub data_meta: u64,
}

impl SkbCtx {
    /// Byte offset of the `data` pointer in [`SkbCtx`].
    pub const DATA_PTR: i16 = SK_BUFF_SIZE as i16;
    /// Byte offset of the `data_end` pointer.
    pub const DATA_END_PTR: i16 = SK_BUFF_SIZE as i16 + 8;
    /// Byte offset of the `data_meta` pointer.
    pub const DATA_META_PTR: i16 = SK_BUFF_SIZE as i16 + 16;

    /// Where a load of uapi offset `off` really reads: `Some(offset)` of the 64-bit pointer
    /// field for `data`, `data_end` and `data_meta`, `None` for every other field (read in
    /// place).
    #[must_use]
    pub fn pointer_field(off: i32) -> Option<i16> {
        match usize::try_from(off).ok()? {
            field::DATA => Some(Self::DATA_PTR),
            field::DATA_END => Some(Self::DATA_END_PTR),
            field::DATA_META => Some(Self::DATA_META_PTR),
            _ => None,
        }
    }

    /// Reads a u32 field of the image.
    #[must_use]
    pub fn get_u32(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        if let Some(s) = self.uapi.get(off..off + 4) {
            b.copy_from_slice(s);
        }
        u32::from_le_bytes(b)
    }

    /// Writes a u32 field of the image (ignored past the end).
    pub fn set_u32(&mut self, off: usize, v: u32) {
        if let Some(d) = self.uapi.get_mut(off..off + 4) {
            d.copy_from_slice(&v.to_le_bytes());
        }
    }
}

/// A socket buffer: the context a program sees, followed by the packet storage.
///
/// `#[repr(C)]` with the context first, so the context pointer a helper receives in r1 is also
/// the address of the whole `SkBuff` (the kernel's `struct sk_buff *skb` argument).
#[repr(C)]
#[derive(Debug)]
pub struct SkBuff {
    ctx: SkbCtx,
    /// Headroom, packet, tailroom.
    buf: Vec<u8>,
    /// Index of the first packet byte in `buf`.
    head: usize,
    /// Packet length.
    len: usize,
    /// The tunnel metadata `bpf_skb_set_tunnel_key` attached (the kernel's metadata dst),
    /// which `bpf_skb_get_tunnel_key` reads back.
    pub tunnel: Option<TunnelInfo>,
}

impl SkBuff {
    /// A buffer holding `packet`, with an all-zero `__sk_buff` but for `len` (set to the
    /// packet's length); pointers are valid once the buffer is at its final address
    /// (see [`SkBuff::boxed`]).
    #[must_use]
    pub fn new(packet: &[u8]) -> Self {
        let mut buf = vec![0u8; HEADROOM + packet.len() + TAILROOM];
        buf[HEADROOM..HEADROOM + packet.len()].copy_from_slice(packet);
        let mut skb = SkBuff {
            ctx: SkbCtx {
                uapi: [0; SK_BUFF_SIZE as usize],
                data: 0,
                data_end: 0,
                data_meta: 0,
            },
            buf,
            head: HEADROOM,
            len: packet.len(),
            tunnel: None,
        };
        skb.refresh();
        skb
    }

    /// The buffer on the heap, so that the context address a program gets stays put.
    #[must_use]
    pub fn boxed(packet: &[u8]) -> Box<SkBuff> {
        let mut b = Box::new(SkBuff::new(packet));
        b.refresh();
        b
    }

    /// The packet bytes.
    #[must_use]
    pub fn packet(&self) -> &[u8] {
        &self.buf[self.head..self.head + self.len]
    }

    /// The packet bytes, mutable.
    pub fn packet_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.head..self.head + self.len]
    }

    /// The program's view of the context.
    #[must_use]
    pub fn ctx(&self) -> &SkbCtx {
        &self.ctx
    }

    /// The context, mutable (for setting fields such as `mark` before a run).
    pub fn ctx_mut(&mut self) -> &mut SkbCtx {
        &mut self.ctx
    }

    /// The context's address: the program's r1.
    pub fn ctx_ptr(&mut self) -> *mut SkbCtx {
        &raw mut self.ctx
    }

    /// The context as bytes (image and pointers), for the checked interpreter's region list.
    pub fn ctx_bytes_mut(&mut self) -> &mut [u8] {
        let ptr = (&raw mut self.ctx).cast::<u8>();
        // SAFETY: `SkbCtx` is `repr(C)` plain data (bytes and u64s, no padding: 192 + 3 * 8
        // bytes at 8-byte alignment), so viewing it as bytes for the borrow of `self` is sound.
        unsafe { std::slice::from_raw_parts_mut(ptr, std::mem::size_of::<SkbCtx>()) }
    }

    /// Removes `n` bytes from the front (the kernel's `__skb_pull`); `false` when too short.
    pub fn pull(&mut self, n: usize) -> bool {
        if n > self.len {
            return false;
        }
        self.head += n;
        self.len -= n;
        self.refresh();
        true
    }

    /// Adds `n` bytes in front (the kernel's `skb_push` after `skb_cow_head`), zeroed. When
    /// the headroom is used up the buffer is reallocated with fresh headroom, as
    /// `pskb_expand_head` does, so this always succeeds.
    pub fn push(&mut self, n: usize) -> bool {
        if n > self.head {
            let extra = n - self.head + HEADROOM;
            let mut buf = vec![0u8; extra + self.buf.len()];
            buf[extra..].copy_from_slice(&self.buf);
            self.buf = buf;
            self.head += extra;
        }
        self.head -= n;
        self.len += n;
        self.buf[self.head..self.head + n].fill(0);
        self.refresh();
        true
    }

    /// The whole packet storage (head- and tailroom included) as an address range, for the
    /// checked interpreter's region list.
    pub fn storage_range(&mut self) -> (u64, u64) {
        (self.buf.as_mut_ptr() as u64, self.buf.len() as u64)
    }

    /// The packet's protocol (`skb->protocol`) in host byte order.
    #[must_use]
    pub fn protocol(&self) -> u16 {
        u16::from_be_bytes((self.ctx.get_u32(field::PROTOCOL) as u16).to_le_bytes())
    }

    /// Sets `skb->protocol` from a host-order value (stored in network order, as the kernel
    /// stores it and a program reads it).
    pub fn set_protocol(&mut self, proto: u16) {
        let raw = u16::from_le_bytes(proto.to_be_bytes());
        self.ctx.set_u32(field::PROTOCOL, u32::from(raw));
    }

    /// Recomputes the packet pointers and `len` after the packet moved or changed size.
    pub fn refresh(&mut self) {
        let base = self.buf.as_ptr() as u64;
        self.ctx.data = base + self.head as u64;
        self.ctx.data_end = self.ctx.data + self.len as u64;
        self.ctx.data_meta = self.ctx.data;
        let len = u32::try_from(self.len).unwrap_or(u32::MAX);
        self.ctx.set_u32(field::LEN, len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_follow_the_packet() {
        let mut skb = SkBuff::boxed(&[1, 2, 3, 4, 5]);
        let data = skb.ctx().data;
        assert_eq!(skb.ctx().data_end - data, 5);
        assert_eq!(skb.ctx().get_u32(field::LEN), 5);
        assert!(skb.pull(2));
        assert_eq!(skb.packet(), &[3, 4, 5]);
        assert_eq!(skb.ctx().data, data + 2);
        assert!(skb.push(3));
        assert_eq!(skb.packet(), &[0, 0, 0, 3, 4, 5]);
        assert_eq!(skb.ctx().get_u32(field::LEN), 6);
        assert!(!skb.pull(7));
    }

    #[test]
    fn context_pointer_is_the_skbuff() {
        let mut skb = SkBuff::boxed(&[0; 20]);
        let whole = (&raw const *skb).cast::<u8>();
        assert_eq!(skb.ctx_ptr().cast::<u8>().cast_const(), whole);
        assert_eq!(std::mem::size_of::<SkbCtx>(), 192 + 24);
        assert_eq!(SkbCtx::pointer_field(76), Some(192));
        assert_eq!(SkbCtx::pointer_field(80), Some(200));
        assert_eq!(SkbCtx::pointer_field(140), Some(208));
        assert_eq!(SkbCtx::pointer_field(0), None);
    }
}
