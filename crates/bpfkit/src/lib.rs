//! bpfkit: the runtime — maps, helpers, program types, the `bpf()`-shaped object API, the ELF
//! loader and test runs.
#![deny(unsafe_op_in_unsafe_fn)]
pub mod conformance;
pub mod errno;
pub mod helpers;
pub mod loader;
pub mod maps;
pub mod object;
pub mod prog;
pub mod progtype;
pub mod typed;
pub use errno::Errno;
pub use object::{Bpf, Fd, Object};
pub use typed::{Map, PerCpuMap, UpdateFlags};
