//! The flow dissector compiled natively from the same C source as the eBPF programs.

/// The context of the `flow` entry point, laid out as the C `struct flow_ctx`: the packet's
/// start and one-past-the-end as absolute addresses.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct FlowCtx {
    /// Address of the first packet byte.
    pub data: u64,
    /// Address one past the last packet byte.
    pub data_end: u64,
}

impl FlowCtx {
    /// The context describing `packet`.
    pub fn new(packet: &[u8]) -> Self {
        let range = packet.as_ptr_range();
        Self {
            data: range.start as u64,
            data_end: range.end as u64,
        }
    }
}

mod ffi {
    use super::FlowCtx;

    extern "C" {
        pub fn flow_hash(ctx: *const FlowCtx) -> u32;
        pub fn flow_hash_buf(buf: *const u8) -> u32;
    }
}

/// Runs the native `flow_hash` on `packet` (through a [`FlowCtx`]).
pub fn flow_hash(packet: &[u8]) -> u32 {
    let ctx = FlowCtx::new(packet);
    // SAFETY: `ctx` describes exactly the live slice `packet`, and the C code reads only bytes in
    // [data, data_end) after checking each access against data_end.
    unsafe { ffi::flow_hash(&ctx) }
}

/// Runs the native `flow_hash` on a prepared context, as the benchmark does.
///
/// # Safety
/// `ctx.data..ctx.data_end` must be a readable byte range for the duration of the call.
pub unsafe fn flow_hash_ctx(ctx: &FlowCtx) -> u32 {
    // SAFETY: the caller guarantees that the range the context describes is readable.
    unsafe { ffi::flow_hash(ctx) }
}

/// Runs the native `flow_hash_buf` on a length-prefixed block (see
/// [`crate::packets::flow_buf`]). Returns `None` when the block's length field claims more bytes
/// than the block holds (the C would then read past it).
pub fn flow_hash_buf(buf: &[u8]) -> Option<u32> {
    let len_field: [u8; 8] = buf.get(..8)?.try_into().ok()?;
    let len = u64::from_le_bytes(len_field);
    if len > (buf.len() - 8) as u64 {
        return None;
    }
    // The C struct's u64 length field needs 8-byte alignment: copy into u64 storage.
    let mut aligned = vec![0u64; buf.len().div_ceil(8)];
    for (word, chunk) in aligned.iter_mut().zip(buf.chunks(8)) {
        let mut bytes = [0u8; 8];
        bytes[..chunk.len()].copy_from_slice(chunk);
        *word = u64::from_ne_bytes(bytes);
    }
    // SAFETY: `aligned` holds the block's bytes, 8-byte aligned, starting with its length, which
    // was checked above to fit; the C code reads only the length field and bytes in
    // [data, data + len) after bounds checks.
    Some(unsafe { ffi::flow_hash_buf(aligned.as_ptr().cast()) })
}
