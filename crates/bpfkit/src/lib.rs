//! bpfkit: the runtime — maps, helpers, program types, the `bpf()`-shaped object API, the ELF
//! loader and test runs.
//!
//! [`Bpf`] is the object table: the commands of the `bpf()` system call as methods, returning
//! the kernel's errno ([`Errno`]) on failure. A program is verified by `bpfkit-verifier` in the
//! runtime's environment ([`prog::env`]: context rules of [`progtype`], helper prototypes of
//! [`helpers::registry`], maps of the table), rewritten for bpfkit's context layouts
//! ([`prog::rewrite`]) and run by `bpfkit-vm`.
//!
//! ```
//! use bpfkit::maps::{MapAttr, MapType};
//! use bpfkit::prog::load::ProgLoadAttr;
//! use bpfkit::prog::run::TestRunAttr;
//! use bpfkit::Bpf;
//! use bpfkit_isa::Insn;
//! use bpfkit_verifier::env::ProgType;
//!
//! let bpf = Bpf::new();
//! let counts = bpf.map_create(&MapAttr::new(MapType::Array, 4, 8, 1)).unwrap();
//! // A socket filter adding skb->len to counts[0], returning 0.
//! let insns = [
//!     Insn::new(0x61, 6, 1, 0, 0),                 // r6 = *(u32 *)(r1 + 0): skb->len
//!     Insn::new(0x62, 10, 0, -4, 0),               // *(u32 *)(r10 - 4) = 0
//!     Insn::new(0x18, 1, 1, 0, counts.0 as i32),   // r1 = map[counts]
//!     Insn::new(0, 0, 0, 0, 0),
//!     Insn::new(0xbf, 2, 10, 0, 0),                // r2 = r10
//!     Insn::new(0x07, 2, 0, 0, -4),                // r2 += -4
//!     Insn::new(0x85, 0, 0, 0, 1),                 // call bpf_map_lookup_elem
//!     Insn::new(0x15, 0, 0, 1, 0),                 // if r0 == 0 goto +1
//!     Insn::new(0xdb, 0, 6, 0, 0),                 // lock *(u64 *)(r0 + 0) += r6
//!     Insn::new(0xb7, 0, 0, 0, 0),                 // r0 = 0
//!     Insn::new(0x95, 0, 0, 0, 0),                 // exit
//! ];
//! let attr = ProgLoadAttr {
//!     prog_type: ProgType::SocketFilter,
//!     insns: &insns,
//!     license: "GPL",
//!     log_level: 0,
//!     log_size: 0,
//! };
//! let prog = bpf.prog_load(&attr).unwrap();
//! let frame = [0u8; 60]; // a test run starts socket filters at layer 3: len = 60 - 14
//! bpf.prog_test_run(prog.fd, &TestRunAttr { data_in: &frame, ..Default::default() }).unwrap();
//! let value = bpf.map_lookup(counts, &0u32.to_le_bytes()).unwrap();
//! assert_eq!(u64::from_le_bytes(value[..8].try_into().unwrap()), 46);
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
pub mod conformance;
pub mod errno;
pub mod helpers;
pub mod hook;
pub mod instantiate;
pub mod loader;
pub mod maps;
pub mod object;
pub mod perf;
pub mod prog;
pub mod progtype;
pub mod source;
pub mod typed;
pub use errno::Errno;
pub use object::{Bpf, Fd, Object};
pub use typed::{Map, PerCpuMap, UpdateFlags};
