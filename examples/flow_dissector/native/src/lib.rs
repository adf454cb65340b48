//! The flow-dissector example (examples/flow_dissector/flow_dissector.c) in every form the tests
//! and benches need: the committed eBPF programs, the same C compiled natively with the `cc`
//! crate, and a corpus of packets whose expected flow key is known from how they were built.
//!
//! Native compilation lives in this small crate (rather than in the benches crate) so that both
//! `crates/cli/tests/flow_dissector.rs` and `benches/` can use it as a plain dependency.

pub mod murmur3;
pub mod native;
pub mod packets;

/// Raw instructions of the `flow` section: `r1` points to a [`native::FlowCtx`]
/// (`{u64 data; u64 data_end}`, absolute pointers). The benchmarked program.
pub const PROGRAM_CTX: &[u8] = include_bytes!("../../flow_dissector_ctx.bin");

/// Raw instructions of the `flow_mem` section (`flow_dissector.bin`): `r1` = the packet,
/// `r2` = its length, the convention of `bpfkit run`.
pub const PROGRAM_MEM: &[u8] = include_bytes!("../../flow_dissector.bin");

/// Raw instructions of the `xdp` section: `r1` points to the kernel's `struct xdp_md`.
pub const PROGRAM_XDP: &[u8] = include_bytes!("../../flow_dissector_xdp.bin");

/// The committed ELF object holding all three programs.
pub const OBJECT: &[u8] = include_bytes!("../../flow_dissector.o");
