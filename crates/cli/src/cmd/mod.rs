//! The subcommands, one module each.

pub mod asm;
pub mod btf_fmt;
pub mod conformance;
pub mod disasm;
pub mod map;
pub mod prog;
pub mod run;
pub mod run_object;
pub mod verify;
