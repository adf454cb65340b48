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
        pub fn flow_hash_mem(data: *const u8, len: u64) -> u32;
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

/// Runs the native `flow_hash_mem` (the `flow_mem` entry point) on `packet`.
pub fn flow_hash_mem(packet: &[u8]) -> u32 {
    // SAFETY: the C code reads only bytes in [packet, packet + len) after checking each access
    // against that end.
    unsafe { ffi::flow_hash_mem(packet.as_ptr(), packet.len() as u64) }
}
