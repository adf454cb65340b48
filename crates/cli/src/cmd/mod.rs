//! The subcommands, one module each.

pub mod asm;
pub mod conformance;
pub mod disasm;
pub mod map;
pub mod prog;
pub mod run;
pub mod run_object;
pub mod verify;
