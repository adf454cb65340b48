//! bpfkit: the runtime — maps, helpers, program types, the `bpf()`-shaped object API, the ELF
//! loader and test runs.
#![deny(unsafe_op_in_unsafe_fn)]
pub mod conformance;
pub mod helpers;
pub mod loader;
pub mod prog;
pub mod progtype;
